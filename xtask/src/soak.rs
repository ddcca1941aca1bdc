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
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, ExitStatus, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde_json::Value;
use xdp_lab::{
    Lab, TempBpffs, Traffic, bpftool_lookup, frame_len, netns, poll, procfs, rotel, send,
};

use crate::exec::cargo_build;

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
    let rotel = rotel::binary()?;
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
    teardown(&xdptop, lab, bpffs, &work, matches!(result, Ok(true)));
    match result? {
        true => Ok(()),
        false => bail!("the soak failed a check (see the table)"),
    }
}

/// Detaches xdptop, removes the lab and the bpffs, and removes the work
/// directory if the soak `passed`, else says where its logs are.
fn teardown(xdptop: &Path, lab: Lab, bpffs: TempBpffs, work: &Path, passed: bool) {
    // The pinned link outlives xdptop: detach before the pins go.
    let _ = lab
        .xdp_command(xdptop)
        .arg("--pin-dir")
        .arg(bpffs.path())
        .args(["--detach", &lab.links[0].xdp_if])
        .output();
    drop(lab);
    drop(bpffs);
    if passed {
        let _ = fs::remove_dir_all(work);
    } else {
        eprintln!("soak: logs kept in {}", work.display());
    }
}

/// The whole soak in the lab: calibration, the run, the end; prints the
/// table and says whether every check passed.
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
    let load_start = procfs::loadavg();

    attach_once(lab, xdptop, pin_dir, &iface)?;
    let rate = soak_rate(opts, lab, &shared, stop)?;

    let (grpc, http) = (netns::free_port()?, netns::free_port()?);
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
    let load = Load::start(lab, &shared, rate)?;
    let watched = watch(opts, &mut xdptop_child, &mut collector, stop)?;
    let (gen_result, sent, scrape) = load.stop()?;
    if !collector.is_up() {
        collector.restart()?;
    }
    let ending = terminate(&mut xdptop_child, &shared)?;

    let samples = Samples::read(&json_path)?;
    // The last sample was pushed on SIGTERM: give the collector a moment.
    let (received, points) = collector_received(&rotel_log, samples.last_time());
    collector.stop();
    let stderr = fs::read_to_string(&err_path).unwrap_or_default();
    let findings = Findings {
        rate,
        sent,
        gen_result,
        base,
        watched,
        ending,
        samples,
        received,
        points,
        stderr,
        scrape,
        load_start,
        load_end: procfs::loadavg(),
    };
    let checks = findings.checks();
    print_table(&checks);
    Ok(checks.iter().all(|c| c.ok))
}

/// Attaches once, so calibration is counted by the real program.
fn attach_once(lab: &Lab, xdptop: &Path, pin_dir: &Path, iface: &str) -> anyhow::Result<()> {
    let out = lab
        .xdp_command(xdptop)
        .arg("--pin-dir")
        .arg(pin_dir)
        .args(["--headless", "--count", "1", "--interval", "100ms", iface])
        .output()
        .context("running xdptop")?;
    if !out.status.success() {
        bail!(
            "xdptop could not attach: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// `--rate`, or the calibrated one; prints the calibration steps and what
/// the soak will do.
fn soak_rate(opts: &Options, lab: &Lab, shared: &Path, stop: &AtomicBool) -> anyhow::Result<u64> {
    let (rate, calibration) = match opts.rate {
        Some(r) => (r, Vec::new()),
        None => calibrate(lab, shared, stop)?,
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
    Ok(rate)
}

/// The load on the lab while the soak runs: the generator (100 ms chunks,
/// paced) and the seed's scraper (every second), until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    scrape: Arc<Mutex<ScrapeStats>>,
    generator: thread::JoinHandle<anyhow::Result<()>>,
    scraper: thread::JoinHandle<()>,
}

impl Load {
    fn start(lab: &Lab, shared: &Path, rate: u64) -> anyhow::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let generator = {
            let ns = lab.gen_netns()?;
            let l = lab.links[0].clone();
            let (stop, sent) = (Arc::clone(&stop), Arc::clone(&sent));
            thread::spawn(move || -> anyhow::Result<()> {
                let chunk = (rate / 10).max(1);
                while !stop.load(Ordering::Relaxed) {
                    let n = send(&ns, &Traffic::udp(l.gen_ip, l.xdp_ip, chunk, PAYLOAD, rate))?;
                    sent.fetch_add(n, Ordering::Relaxed);
                }
                Ok(())
            })
        };
        let scrape = Arc::new(Mutex::new(ScrapeStats::default()));
        let scraper = {
            let (scrape, stop, shared) =
                (Arc::clone(&scrape), Arc::clone(&stop), shared.to_owned());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let r = bpftool_lookup(&shared);
                    scrape.lock().expect("scrape stats").record(r);
                    thread::sleep(Duration::from_secs(1));
                }
            })
        };
        Ok(Self {
            stop,
            sent,
            scrape,
            generator,
            scraper,
        })
    }

    /// Stops both; the generator's result, packets sent, scraper's record.
    fn stop(self) -> anyhow::Result<(anyhow::Result<()>, u64, ScrapeStats)> {
        self.stop.store(true, Ordering::Relaxed);
        let gen_result = self
            .generator
            .join()
            .map_err(|_| anyhow::anyhow!("generator panicked"))?;
        let _ = self.scraper.join();
        let scrape = self.scrape.lock().expect("scrape").clone();
        Ok((gen_result, self.sent.load(Ordering::Relaxed), scrape))
    }
}

/// What happened while the soak ran.
struct Watched {
    elapsed: Duration,
    /// How long it was asked to run.
    total: Duration,
    interrupted: bool,
    outages: u32,
    /// (time into the run, xdptop's VmRSS in KiB), every [`RSS_EVERY`].
    rss: Vec<(Duration, u64)>,
    /// The 1-minute load average, every [`RSS_EVERY`].
    load: Vec<f64>,
    /// xdptop's utime+stime over the run.
    cpu_used: Option<Duration>,
}

/// Runs for `--minutes` (or until stopped, or xdptop exits): takes the
/// collector down at 30 s into each minute for `--outage`, and reads
/// xdptop's RSS and the load average.
fn watch(
    opts: &Options,
    xdptop: &mut Proc,
    collector: &mut Collector,
    stop: &AtomicBool,
) -> anyhow::Result<Watched> {
    let pid = xdptop.0.id();
    let started = Instant::now();
    let total = Duration::from_secs(opts.minutes * 60);
    let mut rss = Vec::new();
    let mut load = Vec::new();
    // The first reading once xdptop has started (not nsenter's).
    let mut next_rss = started + RSS_EVERY;
    let cpu_start = procfs::cpu(pid);
    let mut outages = 0u32;
    let mut interrupted = false;
    while started.elapsed() < total {
        if stop.load(Ordering::Relaxed) {
            interrupted = true;
            break;
        }
        if let Some(st) = xdptop.0.try_wait()? {
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
            if let Ok(kib) = procfs::status_kb(pid, "VmRSS") {
                rss.push((t, kib));
            }
            load.push(procfs::loadavg().0);
            next_rss += RSS_EVERY;
        }
        thread::sleep(Duration::from_millis(200));
    }
    let elapsed = started.elapsed();
    let cpu_used = procfs::cpu(pid)
        .and_then(|end| Ok(end.since(&cpu_start?).own))
        .ok();
    Ok(Watched {
        elapsed,
        total,
        interrupted,
        outages,
        rss,
        load,
        cpu_used,
    })
}

/// How xdptop ended, and the scraper's last view before that.
struct Ending {
    /// bpftool's (rx_packets, rx_bytes) after the last packet.
    after: (u64, u64),
    /// None: it did not exit within 10 s of SIGTERM.
    exit: Option<ExitStatus>,
    exit_time: Duration,
}

/// Lets two samples pass after the last packet, reads the map as the
/// scraper does, then SIGTERMs xdptop and times its exit.
fn terminate(xdptop: &mut Proc, shared: &Path) -> anyhow::Result<Ending> {
    thread::sleep(Duration::from_millis(2500));
    let after = bpftool_lookup(shared)?;
    let term_at = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(xdptop.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )?;
    let exit = loop {
        if let Some(st) = xdptop.0.try_wait()? {
            break Some(st);
        }
        if term_at.elapsed() > Duration::from_secs(10) {
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    Ok(Ending {
        after,
        exit,
        exit_time: term_at.elapsed(),
    })
}

/// What xdptop printed: its JSON lines.
struct Samples {
    count: usize,
    /// Their distinct sample times.
    printed: BTreeSet<u64>,
    last: Value,
    rebaselined: usize,
    /// Negative, NaN or missing rates.
    negative: usize,
    max_pps: f64,
}

impl Samples {
    fn read(json_path: &Path) -> anyhow::Result<Self> {
        let lines: Vec<Value> = BufReader::new(File::open(json_path)?)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str(&l).ok())
            .collect();
        Ok(Self {
            count: lines.len(),
            printed: lines
                .iter()
                .filter_map(|l| l["time_unix_nano"].as_u64())
                .collect(),
            last: lines.last().cloned().unwrap_or(Value::Null),
            rebaselined: lines.iter().filter(|l| l["rebaselined"] == true).count(),
            negative: lines
                .iter()
                .filter(|l| l["pps"].as_f64().is_none_or(|v| v < 0.0 || !v.is_finite()))
                .count(),
            max_pps: lines
                .iter()
                .filter_map(|l| l["pps"].as_f64())
                .fold(0.0, f64::max),
        })
    }

    fn last_time(&self) -> u64 {
        self.last["time_unix_nano"].as_u64().unwrap_or(0)
    }
}

/// What rotel's log holds (see [`collector_timestamps`]) once it has the
/// sample at `last_time`, or after 10 s.
fn collector_received(rotel_log: &Path, last_time: u64) -> (BTreeSet<u64>, usize) {
    // Ok or Err, the last reading of the log is what the checks use.
    let (Ok(r) | Err(r)) = poll(Duration::from_secs(10), Duration::from_millis(200), || {
        let r = collector_timestamps(rotel_log);
        if r.0.contains(&last_time) {
            Ok(r)
        } else {
            Err(r)
        }
    });
    r
}

/// Everything the checks look at.
struct Findings {
    rate: u64,
    sent: u64,
    gen_result: anyhow::Result<()>,
    /// bpftool's counts before the soak (calibration included).
    base: (u64, u64),
    watched: Watched,
    ending: Ending,
    samples: Samples,
    /// Sample times the collector got, and its points incl. resends.
    received: BTreeSet<u64>,
    points: usize,
    stderr: String,
    scrape: ScrapeStats,
    load_start: (f64, f64, f64),
    load_end: (f64, f64, f64),
}

/// One row of the table.
struct Check {
    name: &'static str,
    value: String,
    ok: bool,
}

impl Check {
    fn new(name: &'static str, value: String, ok: bool) -> Self {
        Self { name, value, ok }
    }
}

impl Findings {
    /// The table's rows, in order.
    fn checks(&self) -> Vec<Check> {
        let mut checks = self.traffic_checks();
        checks.extend(self.count_checks());
        checks.extend(self.collector_checks());
        checks.extend(self.process_checks());
        checks
    }

    /// The run and the generator.
    fn traffic_checks(&self) -> Vec<Check> {
        let Watched {
            elapsed,
            total,
            interrupted,
            ..
        } = self.watched;
        let (sent, rate) = (self.sent, self.rate);
        let achieved = sent as f64 / elapsed.as_secs_f64();
        vec![
            Check::new(
                "run length",
                format!(
                    "{:.0} s (asked {} s)",
                    elapsed.as_secs_f64(),
                    total.as_secs()
                ),
                !interrupted && elapsed + Duration::from_secs(2) >= total,
            ),
            Check::new(
                "generator",
                format!(
                    "{sent} packets, {achieved:.0} pps average (target {rate}){}",
                    self.gen_result
                        .as_ref()
                        .err()
                        .map(|e| format!(", error: {e:#}"))
                        .unwrap_or_default()
                ),
                self.gen_result.is_ok() && sent > 0,
            ),
        ]
    }

    /// Exact counts in xdptop's JSON and bpftool's view, the scraper loop,
    /// and the rates xdptop printed.
    fn count_checks(&self) -> Vec<Check> {
        let want_packets = self.base.0 + self.sent;
        let want_bytes = self.base.1 + self.sent * frame_len(PAYLOAD);
        let last = &self.samples.last;
        let json_packets = last["packets"].as_u64().unwrap_or(0);
        let json_bytes = last["bytes"].as_u64().unwrap_or(0);
        let after = self.ending.after;
        let scrape = &self.scrape;
        let Samples {
            count,
            rebaselined,
            negative,
            max_pps,
            ..
        } = self.samples;
        vec![
            Check::new(
                "xdptop JSON packets",
                format!("{json_packets} (want {want_packets})"),
                json_packets == want_packets,
            ),
            Check::new(
                "xdptop JSON bytes",
                format!("{json_bytes} (want {want_bytes})"),
                json_bytes == want_bytes,
            ),
            Check::new(
                "bpftool rx_packets",
                format!("{} (want {want_packets})", after.0),
                after.0 == want_packets,
            ),
            Check::new(
                "bpftool rx_bytes",
                format!("{} (want {want_bytes})", after.1),
                after.1 == want_bytes,
            ),
            Check::new(
                "scraper loop",
                format!(
                    "{} reads, {} errors, {} went backwards{}",
                    scrape.reads,
                    scrape.errors,
                    scrape.backwards,
                    scrape
                        .first_error
                        .as_ref()
                        .map(|e| format!(" (first: {e})"))
                        .unwrap_or_default()
                ),
                scrape.errors == 0 && scrape.backwards == 0 && scrape.reads > 0,
            ),
            Check::new(
                "rates",
                format!(
                    "{count} samples, {negative} negative/NaN, {rebaselined} rebaselined, max \
                     {max_pps:.0} pps"
                ),
                negative == 0 && rebaselined == 0 && max_pps <= self.rate as f64 * 1.5 + 1000.0,
            ),
        ]
    }

    /// Every printed sample at the collector, through its outages, and
    /// nothing on xdptop's stderr but those outages.
    fn collector_checks(&self) -> Vec<Check> {
        let printed = &self.samples.printed;
        let missing = printed.difference(&self.received).count();
        let extra = self.received.difference(printed).count();
        let (unexpected, failing_warnings, recoveries) = classify_stderr(&self.stderr);
        let (outages, points) = (self.watched.outages, self.points);
        vec![
            Check::new(
                "samples at the collector",
                format!(
                    "{} of {} printed ({missing} missing, {extra} unknown, {points} points incl. \
                     resends)",
                    printed.len() - missing,
                    printed.len()
                ),
                missing == 0 && extra == 0,
            ),
            Check::new(
                "collector outages",
                format!(
                    "{outages} stops; {failing_warnings} 'export failing', {recoveries} \
                     'recovered'"
                ),
                outages == 0 || (failing_warnings >= 1 && recoveries >= 1),
            ),
            Check::new(
                "xdptop stderr",
                if unexpected.is_empty() {
                    "only expected collector outages".to_owned()
                } else {
                    format!("{} unexpected: {}", unexpected.len(), unexpected[0])
                },
                unexpected.is_empty(),
            ),
        ]
    }

    /// xdptop as a process: flat RSS, a quick clean exit on SIGTERM, its
    /// CPU; and the machine's load, for the record.
    fn process_checks(&self) -> Vec<Check> {
        let Watched {
            elapsed,
            ref rss,
            ref load,
            cpu_used,
            ..
        } = self.watched;
        let Ending {
            exit, exit_time, ..
        } = self.ending;
        let warm = rss
            .iter()
            .find(|(t, _)| *t >= elapsed / 5)
            .or(rss.first())
            .map_or(0, |r| r.1);
        let rss_first = rss.first().map_or(0, |r| r.1);
        let rss_last = rss.last().map_or(0, |r| r.1);
        let rss_max = rss.iter().map(|r| r.1).max().unwrap_or(0);
        let avg_load = load.iter().sum::<f64>() / load.len().max(1) as f64;
        vec![
            Check::new(
                "RSS KiB first/warm/last/max",
                format!(
                    "{rss_first} / {warm} / {rss_last} / {rss_max} ({} readings)",
                    rss.len()
                ),
                !rss.is_empty() && rss_max <= warm + RSS_SLACK_KIB.max(warm / 10),
            ),
            Check::new(
                "SIGTERM exit",
                match exit {
                    Some(st) => format!("{st} after {} ms", exit_time.as_millis()),
                    None => "did not exit within 10 s".into(),
                },
                exit.is_some_and(|s| s.success()) && exit_time < Duration::from_secs(5),
            ),
            Check::new(
                "xdptop CPU",
                cpu_used.map_or("unknown".into(), |t| {
                    let secs = t.as_secs_f64();
                    format!(
                        "{secs:.1} s over the run ({:.1} % of one CPU)",
                        100.0 * secs / elapsed.as_secs_f64()
                    )
                }),
                true,
            ),
            Check::new(
                "load average (1 min)",
                format!(
                    "start {:.2}, mean {avg_load:.2}, end {:.2} on {} CPUs",
                    self.load_start.0,
                    self.load_end.0,
                    thread::available_parallelism().map_or(0, |n| n.get())
                ),
                true,
            ),
        ]
    }
}

fn print_table(checks: &[Check]) {
    println!();
    println!("| check | value | ok |");
    println!("|---|---|---|");
    for Check { name, value, ok } in checks {
        println!(
            "| {name} | {value} | {} |",
            if *ok { "yes" } else { "**NO**" }
        );
    }
}

#[derive(Clone, Default)]
struct ScrapeStats {
    reads: u64,
    errors: u64,
    backwards: u64,
    last: u64,
    first_error: Option<String>,
}

impl ScrapeStats {
    /// One read of the scraper: it must succeed and never go backwards.
    fn record(&mut self, read: anyhow::Result<(u64, u64)>) {
        match read {
            Ok((p, _)) => {
                self.reads += 1;
                if p < self.last {
                    self.backwards += 1;
                }
                self.last = p;
            }
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert(format!("{e:#}"));
            }
        }
    }
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
    rotel: PathBuf,
    netns: PathBuf,
    grpc: SocketAddr,
    http: SocketAddr,
    /// Its own pid and log files.
    work: PathBuf,
    log: PathBuf,
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
        let mut me = Self {
            rotel: rotel.to_owned(),
            netns: lab.xdp_netns_path(),
            grpc: ([127, 0, 0, 1], grpc).into(),
            http: ([127, 0, 0, 1], http).into(),
            work: work.to_owned(),
            log: log.to_owned(),
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
        let child = rotel::command(&self.rotel, Some(&self.netns), self.grpc, self.http)
            .args([
                "--debug-log",
                "metrics",
                "--debug-log-verbosity",
                "detailed",
            ])
            .arg("--pid-file")
            .arg(self.work.join("rotel.pid"))
            .arg("--log-file")
            .arg(self.work.join("rotel-own.log"))
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
        netns::accepting(Some(&self.netns), &[self.grpc]).unwrap_or(false)
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

/// Builds xdptop (release: the soak measures what ships) and returns its path.
fn build_xdptop() -> anyhow::Result<PathBuf> {
    Ok(cargo_build(true, &["--package", "xdptop"])?.join("xdptop"))
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt as _;

    use super::*;

    /// A passing soak of one minute, as the README's table shows one.
    fn passing() -> Findings {
        let sent = 1_000;
        let t = |s| Duration::from_secs(s);
        Findings {
            rate: 20,
            sent,
            gen_result: Ok(()),
            base: (500, 500 * frame_len(PAYLOAD)),
            watched: Watched {
                elapsed: Duration::from_millis(60_200),
                total: t(60),
                interrupted: false,
                outages: 1,
                rss: vec![(t(5), 7000), (t(15), 7100), (t(60), 7200)],
                load: vec![1.0, 2.0],
                cpu_used: Some(Duration::from_millis(300)),
            },
            ending: Ending {
                after: (1_500, 1_500 * frame_len(PAYLOAD)),
                exit: Some(ExitStatus::from_raw(0)),
                exit_time: Duration::from_millis(40),
            },
            samples: Samples {
                count: 3,
                printed: BTreeSet::from([1, 2, 3]),
                last: serde_json::json!({"packets": 1_500, "bytes": 1_500 * frame_len(PAYLOAD)}),
                rebaselined: 0,
                negative: 0,
                max_pps: 25.0,
            },
            received: BTreeSet::from([1, 2, 3]),
            points: 4,
            stderr: "[WARN ] otlp: export failing: connection refused\n[INFO ] otlp: export \
                     recovered\n"
                .to_owned(),
            scrape: ScrapeStats {
                reads: 59,
                ..ScrapeStats::default()
            },
            load_start: (1.5, 0.0, 0.0),
            load_end: (1.25, 0.0, 0.0),
        }
    }

    fn rows(f: &Findings) -> Vec<(&'static str, String, bool)> {
        f.checks()
            .into_iter()
            .map(|c| (c.name, c.value, c.ok))
            .collect()
    }

    #[test]
    fn the_table_has_every_check_in_order() {
        let cpus = thread::available_parallelism().map_or(0, |n| n.get());
        let yes = |name, value: &str| (name, value.to_owned(), true);
        assert_eq!(
            rows(&passing()),
            [
                yes("run length", "60 s (asked 60 s)"),
                yes("generator", "1000 packets, 17 pps average (target 20)"),
                yes("xdptop JSON packets", "1500 (want 1500)"),
                yes("xdptop JSON bytes", "90000 (want 90000)"),
                yes("bpftool rx_packets", "1500 (want 1500)"),
                yes("bpftool rx_bytes", "90000 (want 90000)"),
                yes("scraper loop", "59 reads, 0 errors, 0 went backwards"),
                yes(
                    "rates",
                    "3 samples, 0 negative/NaN, 0 rebaselined, max 25 pps"
                ),
                yes(
                    "samples at the collector",
                    "3 of 3 printed (0 missing, 0 unknown, 4 points incl. resends)"
                ),
                yes(
                    "collector outages",
                    "1 stops; 1 'export failing', 1 'recovered'"
                ),
                yes("xdptop stderr", "only expected collector outages"),
                yes(
                    "RSS KiB first/warm/last/max",
                    "7000 / 7100 / 7200 / 7200 (3 readings)"
                ),
                yes("SIGTERM exit", "exit status: 0 after 40 ms"),
                yes("xdptop CPU", "0.3 s over the run (0.5 % of one CPU)"),
                (
                    "load average (1 min)",
                    format!("start 1.50, mean 1.50, end 1.25 on {cpus} CPUs"),
                    true
                ),
            ]
        );
    }

    #[test]
    fn a_failing_soak_says_what_failed() {
        let mut f = passing();
        f.gen_result = Err(anyhow::anyhow!("sendto: no buffer space"));
        f.ending.after.0 -= 1;
        f.received.remove(&2);
        f.stderr.push_str("[ERROR] sampler: map read failed\n");
        f.scrape.errors = 1;
        f.scrape.first_error = Some("bpftool: gone".into());
        f.ending.exit = None;
        let failed: Vec<_> = rows(&f)
            .into_iter()
            .filter(|r| !r.2)
            .map(|(name, value, _)| format!("{name}: {value}"))
            .collect();
        assert_eq!(
            failed,
            [
                "generator: 1000 packets, 17 pps average (target 20), error: sendto: no buffer \
                 space",
                "bpftool rx_packets: 1499 (want 1500)",
                "scraper loop: 59 reads, 1 errors, 0 went backwards (first: bpftool: gone)",
                "samples at the collector: 2 of 3 printed (1 missing, 0 unknown, 4 points incl. \
                 resends)",
                "xdptop stderr: 1 unexpected: [ERROR] sampler: map read failed",
                "SIGTERM exit: did not exit within 10 s",
            ]
        );
    }

    #[test]
    fn the_scraper_counts_errors_and_reads_that_go_backwards() {
        let mut s = ScrapeStats::default();
        s.record(Ok((10, 600)));
        s.record(Ok((9, 540)));
        s.record(Err(anyhow::anyhow!("first")));
        s.record(Err(anyhow::anyhow!("second")));
        s.record(Ok((12, 720)));
        assert_eq!(
            (s.reads, s.errors, s.backwards, s.last),
            (3, 2, 1, 12),
            "reads, errors, backwards, last"
        );
        assert_eq!(s.first_error.as_deref(), Some("first"));
    }
}
