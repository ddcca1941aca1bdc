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
use xdp_lab::{Lab, TempBpffs};

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
    let tmux = Tmux::start(&lab, bins, &bpffs)?;
    let pid = tmux.wait_xdptop()?;
    thread::sleep(WARM_UP);
    let (c0, s0, t0) = (proc::cpu(pid)?, proc::threads_total(pid)?, Instant::now());
    thread::sleep(window);
    let (c1, s1, t1) = (proc::cpu(pid)?, proc::threads_total(pid)?, Instant::now());
    let rss = proc::status_kb(pid, "VmHWM")?;
    let rss_now = proc::status_kb(pid, "VmRSS")?;
    let screen = tmux.capture()?;
    drop(tmux);
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

/// xdptop's dashboard in a detached tmux session on a private tmux server;
/// the server is killed on drop.
struct Tmux {
    socket: String,
    pid: std::cell::Cell<Option<u32>>,
}

impl Tmux {
    fn start(lab: &Lab, bins: &Bins, bpffs: &TempBpffs) -> anyhow::Result<Self> {
        let socket = format!("xdptop-bench-{}", std::process::id());
        let ifaces: Vec<&str> = lab.links.iter().map(|l| l.xdp_if.as_str()).collect();
        // exec: the pane's process becomes xdptop itself.
        let shell = format!(
            "exec nsenter --net={} -- {} --interval 1s --pin-dir {} {}",
            lab.xdp_netns_path().display(),
            bins.xdptop.display(),
            bpffs.path().display(),
            ifaces.join(" ")
        );
        let me = Self {
            socket,
            pid: Default::default(),
        };
        me.tmux(&[
            "new-session",
            "-d",
            "-x",
            "160",
            "-y",
            "50",
            "-s",
            "bench",
            &shell,
        ])?;
        Ok(me)
    }

    fn tmux(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .env_remove("TMUX")
            .output()
            .context("running tmux (install it)")?;
        if !out.status.success() {
            bail!(
                "tmux {args:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn capture(&self) -> anyhow::Result<String> {
        self.tmux(&["capture-pane", "-p", "-t", "bench"])
    }

    /// The pane's pid once it is xdptop and the first rates are on screen.
    fn wait_xdptop(&self) -> anyhow::Result<u32> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let pid: u32 = self
                .tmux(&["display-message", "-p", "-t", "bench", "#{pane_pid}"])?
                .trim()
                .parse()
                .context("tmux pane pid")?;
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "xdptop" {
                self.pid.set(Some(pid));
                return Ok(pid);
            }
            if Instant::now() > deadline {
                bail!("the dashboard did not come up:\n{}", self.capture()?);
            }
            thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
        // xdptop leaves on SIGHUP; make sure before the lab goes.
        if let Some(pid) = self.pid.get() {
            let alive = || std::path::Path::new(&format!("/proc/{pid}")).exists();
            let deadline = Instant::now() + Duration::from_secs(5);
            while alive() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(50));
            }
            if alive() {
                let pid = nix::unistd::Pid::from_raw(pid as i32);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
}
