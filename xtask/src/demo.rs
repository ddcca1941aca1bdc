//! `cargo xtask demo`: a throw-away lab with varied traffic and xdptop's
//! dashboard on it. Everything it makes (namespaces, links, attachments,
//! pins, processes) is removed on quit, Ctrl-C or failure.

use std::{
    path::PathBuf,
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use xdp_lab::{Lab, TempBpffs};

use crate::exec::{cargo_build, is_root, rerun_with_sudo, sudo_possible};

#[derive(clap::Args)]
pub struct Options {
    /// Also push the samples to this OTLP collector (passed to xdptop).
    #[arg(long, value_name = "ENDPOINT")]
    otlp: Option<String>,
    /// Number of lab interfaces.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=8))]
    links: u8,
    /// Extra arguments for xdptop (e.g. `-- --interval 500ms`).
    #[arg(last = true)]
    xdptop_args: Vec<String>,
}

/// Set when the demo re-runs itself under sudo: xdptop is already built.
const BUILT_ENV: &str = "XDPTOP_DEMO_BIN";
const WHY: &str = "the demo makes network namespaces and attaches XDP";
/// `--talkers` of the demo's (and the screenshots') xdptop.
pub(crate) const DEMO_TALKERS: &str = "10";

pub fn run(opts: &Options) -> anyhow::Result<()> {
    if !is_root() {
        // Build as the user (no root-owned files in target/), then run the
        // lab part through sudo.
        sudo_possible("demo", WHY)?;
        let xdptop = build_xdptop()?;
        return rerun_with_sudo(WHY, &[(BUILT_ENV, &xdptop)]);
    }
    let xdptop = match std::env::var_os(BUILT_ENV) {
        Some(path) => PathBuf::from(path),
        None => build_xdptop()?,
    };
    // Signals end the wait below instead of killing us before cleanup.
    let stop = crate::exec::stop_flag()?;

    // Drop order does the cleanup: traffic stops, then the lab (namespaces,
    // links and with them the attachments) goes, then the bpffs (pins).
    let bpffs = TempBpffs::new("demo").context("mounting the demo's own bpffs")?;
    let lab = Lab::with_prefix("xdptop-demo", "demo", usize::from(opts.links))
        .context("making the demo lab")?;
    let generators = Generators::start(&lab, Arc::clone(&stop))?;

    let mut cmd = lab.xdp_command(&xdptop);
    cmd.arg("--pin-dir").arg(bpffs.path());
    if let Some(endpoint) = &opts.otlp {
        cmd.args(["--otlp", endpoint]);
    }
    // Talkers counted from the start, for the talkers view (`t`).
    if !opts.xdptop_args.iter().any(|a| a.starts_with("--talkers")) {
        cmd.args(["--talkers", DEMO_TALKERS]);
    }
    cmd.args(&opts.xdptop_args);
    cmd.args(lab.links.iter().map(|l| l.xdp_if.as_str()));
    let result = run_dashboard(&mut cmd, &stop);

    generators.stop();
    drop(lab);
    drop(bpffs);
    result
}

/// Runs the dashboard until it exits. A signal to the demo alone (`kill`,
/// `timeout`) is passed on to xdptop as SIGTERM, so the demo does not sit
/// behind a dashboard that never heard of it, and cleans up; xdptop gets
/// [`KILL_AFTER`] to end before it is killed.
fn run_dashboard(cmd: &mut Command, stop: &AtomicBool) -> anyhow::Result<()> {
    const KILL_AFTER: Duration = Duration::from_secs(5);
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .with_context(|| format!("could not start {shown}"))?;
    let pid = Pid::from_raw(i32::try_from(child.id()).context("child pid")?);
    let mut signalled: Option<Instant> = None;
    loop {
        if let Some(status) = child
            .try_wait()
            .with_context(|| format!("waiting for {shown}"))?
        {
            if !status.success() {
                bail!("{shown} failed: {status}");
            }
            return Ok(());
        }
        match signalled {
            None if stop.load(Ordering::Relaxed) => {
                // nsenter has exec'd xdptop: the child is xdptop.
                let _ = kill(pid, Signal::SIGTERM);
                signalled = Some(Instant::now());
            }
            Some(at) if at.elapsed() > KILL_AFTER => {
                let _ = child.kill();
            }
            _ => {}
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Builds xdptop with the cargo that runs us, and returns its path.
pub(crate) fn build_xdptop() -> anyhow::Result<PathBuf> {
    Ok(cargo_build(false, &["--package", "xdptop"])?.join("xdptop"))
}

/// Traffic threads: the varying pattern per lab link, and the steady
/// talkers from more addresses of each link.
pub(crate) struct Generators {
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Generators {
    pub(crate) fn start(lab: &Lab, stop: Arc<AtomicBool>) -> anyhow::Result<Self> {
        // Every address first, so that a failure leaves no thread behind.
        let mut talkers = Vec::new();
        for i in 0..lab.links.len() {
            for talker in xdp_lab::demo_talkers(i) {
                let src = lab
                    .add_source(i, talker.host)
                    .context("adding a demo source address")?;
                talkers.push((i, src, talker, lab.gen_netns()?));
            }
        }
        let mut threads = Vec::new();
        for (i, link) in lab.links.iter().enumerate() {
            let netns = lab.gen_netns()?;
            let (src, dst) = (link.gen_ip, link.xdp_ip);
            let stop = Arc::clone(&stop);
            threads.push(thread::spawn(move || {
                let phases = xdp_lab::demo_phases(i);
                if let Err(e) = xdp_lab::play(&netns, src, dst, &phases, &stop) {
                    eprintln!("demo traffic on link {i} stopped: {e:#}");
                }
            }));
        }
        // Steady senders from more addresses of each link, for the talkers
        // view.
        for (i, src, talker, netns) in talkers {
            let dst = lab.links[i].xdp_ip;
            let stop = Arc::clone(&stop);
            threads.push(thread::spawn(move || {
                if let Err(e) = xdp_lab::play_steady(&netns, src, dst, talker, &stop) {
                    eprintln!("demo talker {src} on link {i} stopped: {e:#}");
                }
            }));
        }
        Ok(Self { stop, threads })
    }

    pub(crate) fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
    }
}
