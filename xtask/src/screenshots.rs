//! `cargo xtask screenshots`: PNGs of the real dashboard running on the
//! demo's lab and traffic, into `screenshots/`.
//!
//! xdptop runs in a detached tmux session of a fixed size; after the traffic
//! pattern has run long enough for the charts to have a shape, the pane is
//! captured with its colours (`tmux capture-pane -e`) for each view, turned
//! into SVG here ([`ansi`], [`svg`]) and into PNG by `rsvg-convert`
//! (librsvg2-bin). Text uses DejaVu Sans Mono (fonts-dejavu-core); borders,
//! bars and braille charts are drawn as shapes.

mod ansi;
mod svg;

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::{Arc, atomic::Ordering},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use xdp_lab::{Lab, TempBpffs, tmux::Tmux};

use crate::{
    demo::{Generators, build_xdptop},
    exec::{exec, output, workspace_root},
};

/// The terminal the screenshots show.
const WIDTH: usize = 120;
const HEIGHT: usize = 36;

#[derive(clap::Args)]
pub struct Options {
    /// Seconds of traffic before the first screenshot (the demo pattern
    /// repeats every 25 s), so the charts have a shape.
    #[arg(long, default_value_t = 28)]
    warmup: u64,
    /// Directory for the PNGs [default: screenshots/ in the workspace].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// The views captured, in order: file stem, keys that open it, and text
/// that shows it is on screen.
const VIEWS: [(&str, &str, &str); 4] = [
    ("overview", "", "Interfaces"),
    ("detail", "Enter", "Protocols"),
    ("talkers", "Escape t", "SERVICE"),
    ("help", "Escape ?", "Keys"),
];

pub fn run(opts: &Options) -> anyhow::Result<()> {
    // Fail before the lab and the wait if a tool is missing.
    output(Command::new("tmux").arg("-V")).context("tmux is needed (apt-get install tmux)")?;
    output(Command::new("rsvg-convert").arg("--version"))
        .context("rsvg-convert is needed (apt-get install librsvg2-bin)")?;
    if !crate::exec::is_root() {
        const WHY: &str = "the screenshots run xdptop on a lab of network namespaces";
        crate::exec::sudo_possible("screenshots", WHY)?;
        // Build as the user (no root-owned files in target/); the run as
        // root finds it up to date.
        build_xdptop()?;
        return crate::exec::rerun_with_sudo(WHY, &[]);
    }
    let out_dir = opts
        .out
        .clone()
        .unwrap_or_else(|| workspace_root().join("screenshots"));
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let xdptop = build_xdptop()?;

    let stop = crate::exec::stop_flag()?;

    // Declared in this order so they drop in reverse: tmux (and xdptop in
    // it) first, then traffic, the lab, and the bpffs with the pins.
    let work = WorkDir::new()?;
    let bpffs = TempBpffs::new("shots").context("mounting a bpffs for the screenshots")?;
    let lab = Lab::with_prefix("xdptop-shots", "demo", 2).context("making the lab")?;
    let generators = Generators::start(&lab, Arc::clone(&stop))?;
    let result = (|| {
        // Not `exec`: the shell reaps xdptop and prints its status (tmux
        // 3.3a has been seen to leave a dead pane's process unreaped).
        let mut command = format!("nsenter --net={} --", quote(&lab.xdp_netns_path()));
        for arg in [
            xdptop.as_path(),
            Path::new("--pin-dir"),
            bpffs.path(),
            Path::new("--talkers"),
            Path::new(crate::demo::DEMO_TALKERS),
        ] {
            command.push(' ');
            command.push_str(&quote(arg));
        }
        for link in &lab.links {
            command.push(' ');
            command.push_str(&link.xdp_if);
        }
        // The shell stays (until the server is killed) to show the status.
        command.push_str("; echo XDPTOP-EXITED:$?; sleep 600");
        let tmux = Tmux::start(work.0.join("tmux.sock"), WIDTH, HEIGHT, &command)?;
        let size = tmux.display("#{pane_width}x#{pane_height}")?;
        if size != format!("{WIDTH}x{HEIGHT}") {
            bail!("the tmux pane is {size} instead of {WIDTH}x{HEIGHT}");
        }
        tmux.wait_for(
            "the first sample",
            Duration::from_secs(30),
            Some(&stop),
            |s| s.contains("Interfaces") && s.contains("pps"),
        )?;
        let until = Instant::now() + Duration::from_secs(opts.warmup);
        while Instant::now() < until {
            if stop.load(Ordering::Relaxed) {
                bail!("interrupted");
            }
            thread::sleep(Duration::from_millis(200));
        }
        for (name, keys, marker) in VIEWS {
            for key in keys.split_whitespace() {
                tmux.keys(key)?;
            }
            tmux.wait_for(name, Duration::from_secs(10), Some(&stop), |s| {
                s.contains(marker)
            })?;
            let capture = tmux.capture(true)?;
            let svg = work.0.join(format!("{name}.svg"));
            std::fs::write(&svg, svg::render(&ansi::parse(&capture, WIDTH, HEIGHT)))
                .with_context(|| format!("writing {}", svg.display()))?;
            let png = out_dir.join(format!("{name}.png"));
            exec(Command::new("rsvg-convert").arg("-o").arg(&png).arg(&svg))?;
            println!("{}", png.display());
        }
        tmux.keys("q")?;
        let screen = tmux.wait_for("xdptop's exit", Duration::from_secs(20), Some(&stop), |s| {
            s.contains("XDPTOP-EXITED:")
        })?;
        if !screen.contains("XDPTOP-EXITED:0") {
            bail!("xdptop failed; the screen shows:\n{screen}");
        }
        Ok(())
    })();
    generators.stop();
    drop(lab);
    drop(bpffs);
    drop(work);
    result
}

/// A scratch directory for the SVGs and tmux's socket; removed on drop.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("xdptop-shots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Quotes a path for the shell tmux runs the command with.
fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}
