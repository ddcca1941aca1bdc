//! `cargo xtask soak --minutes N`: xdptop under sustained load and faults.
//!
//! A veth lab at the highest packet rate the machine sustains without loss
//! (found by a short calibration), headless xdptop with `--json` to a file
//! and `--otlp` to a real collector (rotel, inside the lab namespace) that is
//! stopped for a while every minute, and a scraper loop running the seed's
//! `bpftool -j map lookup pinned ... key 0 0 0 0` every second. At the end:
//! counts exact against what the generator sent, RSS flat, no errors on
//! xdptop's stderr but the expected collector outages, and the samples the
//! collector received against the ones printed. Exits non-zero if a check
//! fails. Everything it makes is removed, also on failure or Ctrl-C.

use std::{
    collections::BTreeSet,
    fs::{self, File, OpenOptions},
    io::{BufRead as _, BufReader},
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde_json::Value;
use xdp_lab::{Lab, TempBpffs, Traffic, frame_len, poll, send};

use crate::exec::{cargo_build, rotel_binary};

#[derive(clap::Args)]
pub struct Options {
    /// How long the soak runs (after calibration).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1440))]
    minutes: u64,
    /// Skip calibration and send at this many packets/s.
    #[arg(long)]
    rate: Option<u64>,
    /// Use this xdptop binary instead of building one (release profile).
    #[arg(long, value_name = "PATH", env = XDPTOP_ENV)]
    xdptop: Option<PathBuf>,
    /// How long the collector stays down each minute.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    outage: Duration,
}

/// `--xdptop` for the run as root, after building as the user.
const XDPTOP_ENV: &str = "XDPTOP_SOAK_BIN";

/// UDP payload: 18 bytes make the smallest Ethernet frame (60 bytes), so the
/// most packets per second.
const PAYLOAD: usize = 18;
/// Fraction of the calibrated lossless rate the soak runs at: xdptop, the
/// collector and the scraper need CPU too on the same machine.
const MARGIN: f64 = 0.8;
const RSS_EVERY: Duration = Duration::from_secs(5);
/// RSS may grow by this much over the run (after a warm-up) and be "flat".
const RSS_SLACK_KIB: u64 = 2048;

pub fn run(opts: &Options) -> anyhow::Result<()> {
    if opts.outage >= Duration::from_secs(50) {
        bail!("--outage must be well under a minute");
    }
    if !crate::exec::is_root() {
        const WHY: &str = "the soak makes namespaces and attaches XDP";
        crate::exec::sudo_possible("soak", WHY)?;
        // Build as the user (no root-owned files in target/), then run the
        // soak as root on that binary.
        let xdptop = match &opts.xdptop {
            Some(p) => p.clone(),
            None => build_xdptop()?,
        };
        return crate::exec::rerun_with_sudo(WHY, &[(XDPTOP_ENV, &xdptop)]);
    }
    let xdptop = match &opts.xdptop {
        Some(p) => p.clone(),
        None => build_xdptop()?,
    };
    let rotel = rotel_binary()?;
    let work = std::env::temp_dir().join(format!("xdptop-soak-{}", std::process::id()));
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    // A private copy: a target directory shared with other checkouts may get
    // another build of xdptop in the same place while the soak runs.
    let copy = work.join("xdptop");
    fs::copy(&xdptop, &copy).with_context(|| format!("copying {}", xdptop.display()))?;
    let xdptop = copy;
    let stop = crate::exec::stop_flag()?;
    // Drop order cleans up: processes (inside `soak`), lab, bpffs.
    let bpffs = TempBpffs::new("soak").context("mounting the soak's own bpffs")?;
    let lab = Lab::with_prefix("xdptop-soak", "soak", 1).context("making the soak lab")?;
    let result = soak(opts, &xdptop, &rotel, &lab, bpffs.path(), &work, &stop);
    // The pinned link outlives xdptop: detach before the pins go.
    let _ = lab
        .xdp_command(&xdptop)
        .arg("--pin-dir")
        .arg(bpffs.path())
        .args(["--detach", &lab.links[0].xdp_if])
        .output();
    drop(lab);
    drop(bpffs);
    match &result {
        Ok(true) => {
            let _ = fs::remove_dir_all(&work);
        }
        _ => eprintln!("soak: logs kept in {}", work.display()),
    }
    match result? {
        true => Ok(()),
        false => bail!("the soak failed a check (see the table)"),
    }
}

fn soak(
    opts: &Options,
    xdptop: &Path,
    rotel: &Path,
    lab: &Lab,
    pin_dir: &Path,
    work: &Path,
    stop: &AtomicBool,
) -> anyhow::Result<bool> {
    let iface = lab.links[0].xdp_if.clone();
    let shared = pin_dir.join("xdp_stats_map");
    let load_start = loadavg();

    // Attach once, so calibration is counted by the real program.
    let out = lab
        .xdp_command(xdptop)
        .arg("--pin-dir")
        .arg(pin_dir)
        .args(["--headless", "--count", "1", "--interval", "100ms", &iface])
        .output()
        .context("running xdptop")?;
    if !out.status.success() {
        bail!(
            "xdptop could not attach: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (rate, calibration) = match opts.rate {
        Some(r) => (r, Vec::new()),
        None => calibrate(lab, &shared, stop)?,
    };
    for c in &calibration {
        println!(
            "calibration: target {:>9} pps -> sent {:>9.0} pps, {} lost",
            c.target.map_or("unpaced".to_owned(), |t| t.to_string()),
            c.achieved,
            c.lost
        );
    }
    println!(
        "soak: {} min at {rate} pps ({}-byte frames), collector down {:?} every minute",
        opts.minutes,
        frame_len(PAYLOAD),
        opts.outage
    );

    let (grpc, http) = (free_port()?, free_port()?);
    let rotel_log = work.join("rotel.log");
    let mut collector = Collector::start(rotel, lab, grpc, http, &rotel_log, work)?;

    let json_path = work.join("xdptop.jsonl");
    let err_path = work.join("xdptop.stderr");
    let base = bpftool_lookup(&shared)?;
    let mut xdptop_child = Proc(
        lab.xdp_command(xdptop)
            .arg("--pin-dir")
            .arg(pin_dir)
            .args(["--headless", "--json", "--interval", "1s", "--otlp"])
            .arg(format!("127.0.0.1:{grpc}"))
            .arg(&iface)
            .stdin(Stdio::null())
            .stdout(File::create(&json_path)?)
            .stderr(File::create(&err_path)?)
            .spawn()
            .context("starting xdptop")?,
    );
    let pid = xdptop_child.0.id();

    // The generator: 100 ms chunks, paced, until told to stop.
    let gen_stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let generator = {
        let ns = lab.gen_netns()?;
        let l = lab.links[0].clone();
        let (gen_stop, sent) = (Arc::clone(&gen_stop), Arc::clone(&sent));
        thread::spawn(move || -> anyhow::Result<()> {
            let chunk = (rate / 10).max(1);
            while !gen_stop.load(Ordering::Relaxed) {
                let n = send(&ns, &Traffic::udp(l.gen_ip, l.xdp_ip, chunk, PAYLOAD, rate))?;
                sent.fetch_add(n, Ordering::Relaxed);
            }
            Ok(())
        })
    };

    // The seed's scraper, every second.
    let scrape = Arc::new(Mutex::new(ScrapeStats::default()));
    let scraper = {
        let (scrape, gen_stop, shared) =
            (Arc::clone(&scrape), Arc::clone(&gen_stop), shared.clone());
        thread::spawn(move || {
            while !gen_stop.load(Ordering::Relaxed) {
                let r = bpftool_lookup(&shared);
                let mut s = scrape.lock().expect("scrape stats");
                match r {
                    Ok((p, _)) => {
                        s.reads += 1;
                        if p < s.last {
                            s.backwards += 1;
                        }
                        s.last = p;
                    }
                    Err(e) => {
                        s.errors += 1;
                        s.first_error.get_or_insert(format!("{e:#}"));
                    }
                }
                drop(s);
                thread::sleep(Duration::from_secs(1));
            }
        })
    };

    let started = Instant::now();
    let total = Duration::from_secs(opts.minutes * 60);
    let mut rss = Vec::new();
    let mut load = Vec::new();
    // The first reading once xdptop has started (not nsenter's).
    let mut next_rss = started + RSS_EVERY;
    let cpu_start = cpu_ticks(pid);
    let mut outages = 0u32;
    let mut interrupted = false;
    while started.elapsed() < total {
        if stop.load(Ordering::Relaxed) {
            interrupted = true;
            break;
        }
        if let Some(st) = xdptop_child.0.try_wait()? {
            eprintln!("soak: xdptop exited early: {st}");
            break;
        }
        let t = started.elapsed();
        // Down at 30 s into each minute for `outage`, then back.
        let in_minute = Duration::from_secs(t.as_secs() % 60);
        let down_now = in_minute >= Duration::from_secs(30)
            && in_minute < Duration::from_secs(30) + opts.outage;
        if down_now && collector.is_up() {
            collector.stop();
            outages += 1;
            println!("soak: {:>4}s collector stopped", t.as_secs());
        } else if !down_now && !collector.is_up() {
            collector.restart()?;
            println!("soak: {:>4}s collector started again", t.as_secs());
        }
        if Instant::now() >= next_rss {
            if let Some(kib) = rss_kib(pid) {
                rss.push((t, kib));
            }
            load.push(loadavg().0);
            next_rss += RSS_EVERY;
        }
        thread::sleep(Duration::from_millis(200));
    }
    let elapsed = started.elapsed();
    let cpu_used = cpu_ticks(pid)
        .zip(cpu_start)
        .map(|(end, start)| end - start);

    gen_stop.store(true, Ordering::Relaxed);
    let gen_result = generator
        .join()
        .map_err(|_| anyhow::anyhow!("generator panicked"))?;
    let _ = scraper.join();
    let sent = sent.load(Ordering::Relaxed);
    if !collector.is_up() {
        collector.restart()?;
    }
    // Two samples after the last packet, then the scraper's view.
    thread::sleep(Duration::from_millis(2500));
    let after = bpftool_lookup(&shared)?;
    let term_at = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )?;
    let exit = loop {
        if let Some(st) = xdptop_child.0.try_wait()? {
            break Some(st);
        }
        if term_at.elapsed() > Duration::from_secs(10) {
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let exit_time = term_at.elapsed();

    let lines: Vec<Value> = BufReader::new(File::open(&json_path)?)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect();
    let printed: BTreeSet<u64> = lines
        .iter()
        .filter_map(|l| l["time_unix_nano"].as_u64())
        .collect();
    let last = lines.last().cloned().unwrap_or(Value::Null);
    let rebaselined = lines.iter().filter(|l| l["rebaselined"] == true).count();
    let negative = lines
        .iter()
        .filter(|l| l["pps"].as_f64().is_none_or(|v| v < 0.0 || !v.is_finite()))
        .count();
    let max_pps = lines
        .iter()
        .filter_map(|l| l["pps"].as_f64())
        .fold(0.0, f64::max);

    // The last sample was pushed on SIGTERM: give the collector a moment.
    let last_t = last["time_unix_nano"].as_u64().unwrap_or(0);
    // Ok or Err, the last reading of the log is what the checks use.
    let (Ok((received, points)) | Err((received, points))) =
        poll(Duration::from_secs(10), Duration::from_millis(200), || {
            let r = collector_timestamps(&rotel_log);
            if r.0.contains(&last_t) { Ok(r) } else { Err(r) }
        });
    collector.stop();
    let missing = printed.difference(&received).count();
    let extra = received.difference(&printed).count();

    let stderr = fs::read_to_string(&err_path).unwrap_or_default();
    let (unexpected, failing_warnings, recoveries) = classify_stderr(&stderr);
    let scrape = scrape.lock().expect("scrape").clone();
    let load_end = loadavg();

    // ---- the table ----
    let want_packets = base.0 + sent;
    let want_bytes = base.1 + sent * frame_len(PAYLOAD);
    let json_packets = last["packets"].as_u64().unwrap_or(0);
    let json_bytes = last["bytes"].as_u64().unwrap_or(0);
    let achieved = sent as f64 / elapsed.as_secs_f64();
    let warm = rss
        .iter()
        .find(|(t, _)| *t >= elapsed / 5)
        .or(rss.first())
        .map_or(0, |r| r.1);
    let rss_first = rss.first().map_or(0, |r| r.1);
    let rss_last = rss.last().map_or(0, |r| r.1);
    let rss_max = rss.iter().map(|r| r.1).max().unwrap_or(0);
    let avg_load = load.iter().sum::<f64>() / load.len().max(1) as f64;

    let mut checks: Vec<(String, String, bool)> = Vec::new();
    let mut check = |name: &str, value: String, ok: bool| checks.push((name.into(), value, ok));
    check(
        "run length",
        format!(
            "{:.0} s (asked {} s)",
            elapsed.as_secs_f64(),
            total.as_secs()
        ),
        !interrupted && elapsed + Duration::from_secs(2) >= total,
    );
    check(
        "generator",
        format!(
            "{sent} packets, {achieved:.0} pps average (target {rate}){}",
            gen_result
                .as_ref()
                .err()
                .map(|e| format!(", error: {e:#}"))
                .unwrap_or_default()
        ),
        gen_result.is_ok() && sent > 0,
    );
    check(
        "xdptop JSON packets",
        format!("{json_packets} (want {want_packets})"),
        json_packets == want_packets,
    );
    check(
        "xdptop JSON bytes",
        format!("{json_bytes} (want {want_bytes})"),
        json_bytes == want_bytes,
    );
    check(
        "bpftool rx_packets",
        format!("{} (want {want_packets})", after.0),
        after.0 == want_packets,
    );
    check(
        "bpftool rx_bytes",
        format!("{} (want {want_bytes})", after.1),
        after.1 == want_bytes,
    );
    check(
        "scraper loop",
        format!(
            "{} reads, {} errors, {} went backwards{}",
            scrape.reads,
            scrape.errors,
            scrape.backwards,
            scrape
                .first_error
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default()
        ),
        scrape.errors == 0 && scrape.backwards == 0 && scrape.reads > 0,
    );
    check(
        "rates",
        format!(
            "{} samples, {negative} negative/NaN, {rebaselined} rebaselined, max {max_pps:.0} pps",
            lines.len()
        ),
        negative == 0 && rebaselined == 0 && max_pps <= rate as f64 * 1.5 + 1000.0,
    );
    check(
        "samples at the collector",
        format!(
            "{} of {} printed ({missing} missing, {extra} unknown, {points} points incl. resends)",
            printed.len() - missing,
            printed.len()
        ),
        missing == 0 && extra == 0,
    );
    check(
        "collector outages",
        format!("{outages} stops; {failing_warnings} 'export failing', {recoveries} 'recovered'"),
        outages == 0 || (failing_warnings >= 1 && recoveries >= 1),
    );
    check(
        "xdptop stderr",
        if unexpected.is_empty() {
            "only expected collector outages".to_owned()
        } else {
            format!("{} unexpected: {}", unexpected.len(), unexpected[0])
        },
        unexpected.is_empty(),
    );
    check(
        "RSS KiB first/warm/last/max",
        format!(
            "{rss_first} / {warm} / {rss_last} / {rss_max} ({} readings)",
            rss.len()
        ),
        !rss.is_empty() && rss_max <= warm + RSS_SLACK_KIB.max(warm / 10),
    );
    check(
        "SIGTERM exit",
        match exit {
            Some(st) => format!("{st} after {} ms", exit_time.as_millis()),
            None => "did not exit within 10 s".into(),
        },
        exit.is_some_and(|s| s.success()) && exit_time < Duration::from_secs(5),
    );
    check(
        "xdptop CPU",
        cpu_used.map_or("unknown".into(), |t| {
            let secs = t as f64 / clock_ticks() as f64;
            format!(
                "{secs:.1} s over the run ({:.1} % of one CPU)",
                100.0 * secs / elapsed.as_secs_f64()
            )
        }),
        true,
    );
    check(
        "load average (1 min)",
        format!(
            "start {:.2}, mean {avg_load:.2}, end {:.2} on {} CPUs",
            load_start.0,
            load_end.0,
            thread::available_parallelism().map_or(0, |n| n.get())
        ),
        true,
    );

    println!();
    println!("| check | value | ok |");
    println!("|---|---|---|");
    for (name, value, ok) in &checks {
        println!(
            "| {name} | {value} | {} |",
            if *ok { "yes" } else { "**NO**" }
        );
    }
    Ok(checks.iter().all(|c| c.2))
}

#[derive(Clone, Default)]
struct ScrapeStats {
    reads: u64,
    errors: u64,
    backwards: u64,
    last: u64,
    first_error: Option<String>,
}

struct Calibration {
    target: Option<u64>,
    achieved: f64,
    lost: u64,
}

/// Tries rising rates for two seconds each, until one is not reached (90 %)
/// or loses packets; the highest rate sent without loss, times [`MARGIN`],
/// is the soak's.
fn calibrate(
    lab: &Lab,
    shared: &Path,
    stop: &AtomicBool,
) -> anyhow::Result<(u64, Vec<Calibration>)> {
    let l = &lab.links[0];
    let ns = lab.gen_netns()?;
    let mut steps = Vec::new();
    let mut best = 0u64;
    let targets = [
        Some(25_000u64),
        Some(50_000),
        Some(100_000),
        Some(200_000),
        Some(400_000),
        Some(800_000),
        Some(1_600_000),
        None,
    ];
    for target in targets {
        if stop.load(Ordering::Relaxed) {
            bail!("interrupted");
        }
        let count = target.map_or(2_000_000, |t| t * 2);
        let before = bpftool_lookup(shared)?.0;
        let t0 = Instant::now();
        let mut traffic = Traffic::udp(l.gen_ip, l.xdp_ip, count, PAYLOAD, 1);
        traffic.rate_pps = target;
        let sent = send(&ns, &traffic)?;
        let secs = t0.elapsed().as_secs_f64();
        // Let the last packets through the veth queue.
        thread::sleep(Duration::from_millis(300));
        let counted = bpftool_lookup(shared)?.0 - before;
        let achieved = sent as f64 / secs;
        let lost = sent.saturating_sub(counted);
        steps.push(Calibration {
            target,
            achieved,
            lost,
        });
        if lost > 0 {
            break;
        }
        // What was actually sent counts, not what was asked for.
        best = best.max(achieved as u64);
        if target.is_some_and(|t| achieved < 0.9 * t as f64) {
            break;
        }
    }
    if best == 0 {
        bail!("not even 25 000 pps went through without loss; is the machine overloaded?");
    }
    Ok((((best as f64) * MARGIN) as u64, steps))
}

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// rotel in the lab's XDP namespace, appending its detailed debug log (the
/// data points it received) to one file across restarts.
struct Collector {
    cmd: Vec<std::ffi::OsString>,
    log: PathBuf,
    grpc: SocketAddr,
    netns: PathBuf,
    child: Option<Proc>,
}

impl Collector {
    fn start(
        rotel: &Path,
        lab: &Lab,
        grpc: u16,
        http: u16,
        log: &Path,
        work: &Path,
    ) -> anyhow::Result<Self> {
        let cmd = vec![
            format!("--net={}", lab.xdp_netns_path().display()).into(),
            "--".into(),
            rotel.as_os_str().to_owned(),
            "start".into(),
            "--otlp-grpc-endpoint".into(),
            format!("127.0.0.1:{grpc}").into(),
            "--otlp-http-endpoint".into(),
            format!("127.0.0.1:{http}").into(),
            "--exporter".into(),
            "blackhole".into(),
            "--debug-log".into(),
            "metrics".into(),
            "--debug-log-verbosity".into(),
            "detailed".into(),
            "--pid-file".into(),
            work.join("rotel.pid").into_os_string(),
            "--log-file".into(),
            work.join("rotel-own.log").into_os_string(),
        ];
        let mut me = Self {
            cmd,
            log: log.to_owned(),
            grpc: ([127, 0, 0, 1], grpc).into(),
            netns: lab.xdp_netns_path(),
            child: None,
        };
        me.restart()?;
        Ok(me)
    }

    fn is_up(&self) -> bool {
        self.child.is_some()
    }

    fn restart(&mut self) -> anyhow::Result<()> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new("nsenter")
            .args(&self.cmd)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting rotel")?;
        let mut child = Proc(child);
        // Ok ends the wait (listening, or an error), Err goes on.
        poll(Duration::from_secs(20), Duration::from_millis(50), || {
            if self.accepting() {
                return Ok(Ok(()));
            }
            match child.0.try_wait() {
                Ok(Some(st)) => Ok(Err(anyhow::anyhow!(
                    "rotel exited at start: {st} (see {})",
                    self.log.display()
                ))),
                Ok(None) => Err(()),
                Err(e) => Ok(Err(e.into())),
            }
        })
        .unwrap_or_else(|()| bail!("rotel did not listen within 20 s"))?;
        self.child = Some(child);
        Ok(())
    }

    /// SIGTERM (as systemd or podman would stop it), then SIGKILL.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(c.0.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = c.0.try_wait() {
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
            // Drop kills it.
        }
    }

    fn accepting(&self) -> bool {
        let Ok(ns) = File::open(&self.netns) else {
            return false;
        };
        let addr = self.grpc;
        thread::spawn(move || {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).is_ok()
                && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        })
        .join()
        .unwrap_or(false)
    }
}

/// Distinct sample times of `xdp.packets` in rotel's detailed log (the soak
/// lab has one interface), and the number of such points (resends after an
/// outage included).
fn collector_timestamps(log: &Path) -> (BTreeSet<u64>, usize) {
    let text = fs::read_to_string(log).unwrap_or_default();
    let mut times = BTreeSet::new();
    let mut points = 0;
    let mut metric = String::new();
    let mut pending: Option<u64> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix("-> Name: ") {
            metric = name.to_owned();
        } else if let Some(ts) = t.strip_prefix("Timestamp: ") {
            pending = ts.parse().ok().filter(|_| metric == "xdp.packets");
        } else if t.starts_with("Value: ") {
            if let Some(ts) = pending.take() {
                times.insert(ts);
                points += 1;
            }
        }
    }
    (times, points)
}

/// (unexpected warning/error lines, "export failing" warnings, recoveries).
fn classify_stderr(stderr: &str) -> (Vec<String>, usize, usize) {
    let mut unexpected = Vec::new();
    let (mut failing, mut recovered) = (0, 0);
    for line in stderr.lines() {
        if line.contains("export failing") {
            failing += 1;
        } else if line.contains("export recovered") {
            recovered += 1;
        } else if line.contains("WARN")
            || line.contains("ERROR")
            || line.contains("panicked")
            || line.to_lowercase().contains("error")
                && !line.contains("last error")
                && !line.contains("samples exported")
        {
            unexpected.push(line.to_owned());
        }
    }
    (unexpected, failing, recovered)
}

fn bpftool_lookup(pin: &Path) -> anyhow::Result<(u64, u64)> {
    let out = Command::new("bpftool")
        .args(["-j", "map", "lookup", "pinned"])
        .arg(pin)
        .args(["key", "0", "0", "0", "0"])
        .output()
        .context("running bpftool")?;
    if !out.status.success() {
        bail!("bpftool: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let v: Value = serde_json::from_slice(&out.stdout).context("bpftool's JSON")?;
    let f = &v["formatted"]["value"];
    Ok((
        f["rx_packets"].as_u64().context("rx_packets")?,
        f["rx_bytes"].as_u64().context("rx_bytes")?,
    ))
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th of the whole line.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(t).unwrap_or(100).max(1)
}

fn loadavg() -> (f64, f64, f64) {
    let s = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut it = s.split_whitespace().map(|v| v.parse().unwrap_or(0.0));
    (
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
    )
}

fn free_port() -> anyhow::Result<u16> {
    // The lab namespace has its own ports; one free here is a fine guess
    // there, and rotel fails loudly at start if it is taken.
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Builds xdptop (release: the soak measures what ships) and returns its path.
fn build_xdptop() -> anyhow::Result<PathBuf> {
    Ok(cargo_build(true, &["--package", "xdptop"])?.join("xdptop"))
}
