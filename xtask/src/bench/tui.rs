//! Issue 3: the dashboard's cost. CPU use of `xdptop` running in tmux on a
//! lab with four busy interfaces at a 1 s interval (its threads' schedstat
//! over the window, ns-precise: utime+stime from /proc/PID/stat counts in
//! 10 ms ticks, too coarse for a few tens of ms; shown beside it), and frame render time from the release-built `render_bench`
//! example (the real UI drawn to ratatui's TestBackend).

use std::{
    process::Command,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use xdp_lab::{Lab, TempBpffs, poll, tmux::Tmux};

use super::{
    Table,
    proc::{self},
    support::{Bins, Steady},
    verdict,
};

const LINKS: usize = 4;
const PPS: u64 = 5_000;
const WARM_UP: Duration = Duration::from_secs(3);
const TARGET_CPU_PCT: f64 = 1.0;

pub fn run(bins: &Bins, window: Duration) -> anyhow::Result<()> {
    let renders = render_times(bins)?;
    let bpffs = TempBpffs::new("bench-tui")?;
    let lab = Lab::new("xbench-tui", LINKS)?;
    let traffic = Steady::start(&lab, LINKS, PPS, 200)?;
    let dashboard = Dashboard::start(&lab, bins, &bpffs)?;
    let pid = dashboard.pid;
    thread::sleep(WARM_UP);
    let (c0, s0, t0) = (proc::cpu(pid)?, proc::threads_total(pid)?, Instant::now());
    thread::sleep(window);
    let (c1, s1, t1) = (proc::cpu(pid)?, proc::threads_total(pid)?, Instant::now());
    let rss = proc::status_kb(pid, "VmHWM")?;
    let rss_now = proc::status_kb(pid, "VmRSS")?;
    let screen = dashboard.tmux.capture(false)?;
    drop(dashboard);
    drop(traffic);
    let missing: Vec<&str> = lab
        .links
        .iter()
        .map(|l| l.xdp_if.as_str())
        .filter(|i| !screen.contains(i))
        .collect();
    if !missing.is_empty() {
        bail!("the dashboard did not show {missing:?}:\n{screen}");
    }

    let ticks = c1.since(&c0).own;
    let cpu = s1.saturating_sub(s0);
    let pct = cpu.as_secs_f64() * 100.0 / (t1 - t0).as_secs_f64();
    let mut t = Table::new(
        format!(
            "Dashboard cost: xdptop in tmux (160x50), {LINKS} interfaces at {} kpps each, \
             1 s interval, {} s window after {} s warm-up; frames: release build, TestBackend",
            PPS / 1000,
            window.as_secs(),
            WARM_UP.as_secs()
        ),
        &["figure", "value", "target", "verdict"],
    );
    t.row(vec![
        "CPU (% of one core)".into(),
        format!(
            "{pct:.3} % ({:.1} ms; stat: {} ms)",
            cpu.as_secs_f64() * 1000.0,
            ticks.as_millis()
        ),
        format!("<= {TARGET_CPU_PCT} %"),
        verdict(pct <= TARGET_CPU_PCT),
    ]);
    t.row(vec![
        "peak RSS / RSS at the end".into(),
        format!("{} / {}", proc::mb(rss), proc::mb(rss_now)),
        String::new(),
        String::new(),
    ]);
    for r in renders {
        t.row(vec![
            format!("frame {} {} (median / p99)", r.size, r.view),
            format!("{:.0} / {:.0} us", r.median_us, r.p99_us),
            String::new(),
            String::new(),
        ]);
    }
    t.print();
    Ok(())
}

struct Render {
    size: String,
    view: String,
    median_us: f64,
    p99_us: f64,
}

fn render_times(bins: &Bins) -> anyhow::Result<Vec<Render>> {
    let out = Command::new(&bins.render_bench)
        .output()
        .with_context(|| format!("running {}", bins.render_bench.display()))?;
    if !out.status.success() {
        bail!(
            "render_bench failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|l| l.strip_prefix("render "))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            anyhow::ensure!(f.len() == 5, "odd render_bench line: {l}");
            Ok(Render {
                size: f[0].to_owned(),
                view: f[1].to_owned(),
                median_us: f[3].parse()?,
                p99_us: f[4].parse()?,
            })
        })
        .collect()
}

/// xdptop's dashboard in the lab's tmux driver; on drop the tmux server
/// goes, and xdptop (which leaves on SIGHUP) is made sure to go with it
/// before the lab does.
struct Dashboard {
    tmux: Tmux,
    pid: u32,
}

impl Dashboard {
    fn start(lab: &Lab, bins: &Bins, bpffs: &TempBpffs) -> anyhow::Result<Self> {
        let socket = std::env::temp_dir().join(format!("xdptop-bench-{}.sock", std::process::id()));
        let ifaces: Vec<&str> = lab.links.iter().map(|l| l.xdp_if.as_str()).collect();
        // exec: the pane's process becomes xdptop itself.
        let shell = format!(
            "exec nsenter --net={} -- {} --interval 1s --pin-dir {} {}",
            lab.xdp_netns_path().display(),
            bins.xdptop.display(),
            bpffs.path().display(),
            ifaces.join(" ")
        );
        let tmux = Tmux::start(socket, 160, 50, &shell)?;
        // Ok ends the wait (with the pid or an error), Err goes on.
        let pid = poll(Duration::from_secs(30), Duration::from_millis(200), || {
            let pid = match tmux.display("#{pane_pid}").map(|p| p.parse::<u32>()) {
                Ok(Ok(pid)) => pid,
                Ok(Err(e)) => return Ok(Err(anyhow::Error::new(e).context("tmux pane pid"))),
                Err(e) => return Ok(Err(e)),
            };
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "xdptop" {
                Ok(Ok(pid))
            } else {
                Err(())
            }
        })
        .unwrap_or_else(|()| {
            Err(anyhow::anyhow!(
                "the dashboard did not come up:\n{}",
                tmux.capture(false).unwrap_or_default()
            ))
        })?;
        Ok(Self { tmux, pid })
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.tmux.command().arg("kill-server").output();
        let alive = || std::path::Path::new(&format!("/proc/{}", self.pid)).exists();
        let _ = poll(Duration::from_secs(5), Duration::from_millis(50), || {
            if alive() { Err(()) } else { Ok(()) }
        });
        if alive() {
            let pid = nix::unistd::Pid::from_raw(self.pid as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}
