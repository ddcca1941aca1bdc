//! Issue 4: headless `xdptop --otlp` against a re-creation of the seed's
//! exporter (scripts/bench/seed_exporter.py: bpftool per sample + the
//! Python OTel SDK), same lab, traffic, interval and collector, one run per
//! sampling interval (1 s, xdptop's default, and 200 ms). xdptop runs twice
//! in each: as shipped (a request carries the samples of up to 5 s) and
//! with one request per sample, as the seed sends, so both costs are in
//! view.
//!
//! CPU per sample: on-CPU time over a steady window (after a warm-up that
//! leaves start-up out), divided by the samples printed in that window. For
//! xdptop the sum of its threads' schedstat (ns-precise; utime+stime is
//! printed too); for the seed utime+stime including its bpftool children
//! (cutime+cstime; 10 ms ticks are plenty there). Peak RSS is VmHWM; for
//! the seed plus bpftool's own peak RSS, since one bpftool at a time runs
//! beside the interpreter. bpftool's peak is measured by GNU `time -f %M`
//! (a fork of a tiny process): the seed's own RUSAGE_CHILDREN is no use, as
//! Python spawns with vfork and a vfork child's maxrss is the parent's
//! high-water mark.

use std::{thread, time::Duration};

use anyhow::Context as _;
use xdp_lab::{Lab, TempBpffs};

use super::{
    Table,
    proc::{self, Cpu},
    support::{Bins, Collector, Running, Steady, bench_python},
    verdict,
};
use crate::exec::workspace_root;

/// Sampling intervals compared: xdptop's default, and one short enough for
/// many samples (and several per export request) in a short run.
const INTERVALS_MS: [u64; 2] = [1000, 200];
const WARM_UP: Duration = Duration::from_secs(3);
const TARGET_CPU_RATIO: f64 = 20.0;
const TARGET_RSS_FRACTION: f64 = 1.0 / 3.0;

struct Measured {
    cpu: Cpu,
    /// ns-precise on-CPU time of the threads (xdptop only).
    threads: Option<Duration>,
    samples: usize,
    /// Peak, and at the end of the window (both with bpftool for the seed).
    rss_kb: u64,
    now_kb: u64,
}

impl Measured {
    /// xdptop by schedstat, the seed by utime+stime with children.
    fn per_sample_ms(&self) -> f64 {
        let cpu = self.threads.unwrap_or_else(|| self.cpu.total());
        cpu.as_secs_f64() * 1000.0 / self.samples.max(1) as f64
    }
}

pub fn run(bins: &Bins, window: Duration) -> anyhow::Result<()> {
    for (i, interval_ms) in INTERVALS_MS.into_iter().enumerate() {
        if i > 0 {
            println!();
        }
        run_at(bins, window, interval_ms)?;
    }
    Ok(())
}

fn run_at(bins: &Bins, window: Duration, interval_ms: u64) -> anyhow::Result<()> {
    let python = bench_python()?;
    let bpffs = TempBpffs::new("bench-otlp")?;
    let lab = Lab::new("xbench-otlp", 1)?;
    let collector = Collector::start(&lab)?;
    let traffic = Steady::start(&lab, 1, 10_000, 64)?;
    let iface = lab.links[0].xdp_if.clone();

    let spawn_xdptop = |name: &str, extra: &[&str]| -> anyhow::Result<Running> {
        let mut cmd = lab.xdp_command(&bins.xdptop);
        cmd.args(["--headless", "--json", "--interval"])
            .arg(format!("{interval_ms}ms"))
            .args(["--otlp", &collector.endpoint])
            .args(extra)
            .arg("--pin-dir")
            .arg(bpffs.path())
            .arg(&iface);
        let mut r = Running::spawn(name, cmd)?;
        // Its first sample means the shared map is pinned for the others.
        r.wait_lines(1, Duration::from_secs(30))?;
        Ok(r)
    };
    let mut xdptop = spawn_xdptop("xdptop", &[])?;
    // The second re-uses the first's attachment: same maps, same counts.
    let per_sample = format!("{interval_ms}ms");
    let mut each = spawn_xdptop(
        "xdptop, a request per sample",
        &["--otlp-interval", &per_sample],
    )?;

    let mut cmd = lab.xdp_command(&python);
    cmd.arg(workspace_root().join("scripts/bench/seed_exporter.py"))
        .arg("--pin")
        .arg(bpffs.path().join("xdp_stats_map"))
        .args(["--endpoint", &collector.endpoint, "--interval"])
        .arg(format!("{}", interval_ms as f64 / 1000.0));
    let mut seed = Running::spawn("seed exporter", cmd)?;
    seed.wait_lines(1, Duration::from_secs(60))?;

    thread::sleep(WARM_UP);
    let before = [snapshot(&xdptop)?, snapshot(&each)?, snapshot(&seed)?];
    thread::sleep(window);
    let after = [snapshot(&xdptop)?, snapshot(&each)?, snapshot(&seed)?];

    let bpftool_kb = bpftool_peak_kb(&lab, &bpffs.path().join("xdp_stats_map"))?;
    let x_status = xdptop.stop(Duration::from_secs(10))?;
    let e_status = each.stop(Duration::from_secs(10))?;
    let s_status = seed.stop(Duration::from_secs(10))?;
    drop(traffic);
    collector.stop();
    anyhow::ensure!(x_status.success(), "xdptop: {x_status}");
    anyhow::ensure!(
        e_status.success(),
        "xdptop (a request per sample): {e_status}"
    );
    anyhow::ensure!(s_status.success(), "seed exporter: {s_status}");
    let exported = |r: &Running| {
        r.stderr_text()
            .lines()
            .find(|l| l.contains("samples exported"))
            .map(str::to_owned)
            .unwrap_or_else(|| "no export summary from xdptop".into())
    };
    let seed_errors = seed.stderr_text();

    let x = measured(&before[0], &after[0], 0, true);
    let e = measured(&before[1], &after[1], 0, true);
    let s = measured(&before[2], &after[2], bpftool_kb, false);
    print(&x, &e, &s, window, bpftool_kb, interval_ms);
    println!(
        "xdptop's CPU per sample by thread (schedstat): {}",
        per_thread(&before[0], &after[0], x.samples)
    );
    println!(
        "the same with a request per sample: {}",
        per_thread(&before[1], &after[1], e.samples)
    );
    println!(
        "xdptop's CPU by utime+stime (10 ms ticks): {} ms, and {} ms with a request per sample",
        x.cpu.total().as_millis(),
        e.cpu.total().as_millis()
    );
    println!("xdptop's own count at exit: {}", exported(&xdptop));
    println!("with a request per sample: {}", exported(&each));
    if !seed_errors.trim().is_empty() {
        println!("seed exporter stderr: {}", seed_errors.trim());
    }
    Ok(())
}

fn per_thread(before: &Snapshot, after: &Snapshot, samples: usize) -> String {
    after
        .threads
        .iter()
        .map(|(name, t)| {
            let t0 = before.threads.iter().find(|(n, _)| n == name);
            let d = t.saturating_sub(t0.map_or(Duration::ZERO, |(_, d)| *d));
            format!(
                "{name} {:.3} ms",
                d.as_secs_f64() * 1000.0 / samples.max(1) as f64
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

struct Snapshot {
    cpu: Cpu,
    threads: Vec<(String, Duration)>,
    samples: usize,
    hwm_kb: u64,
    rss_kb: u64,
}

fn snapshot(r: &Running) -> anyhow::Result<Snapshot> {
    Ok(Snapshot {
        cpu: proc::cpu(r.pid())?,
        threads: proc::threads(r.pid())?,
        samples: r.stdout_lines(),
        hwm_kb: proc::status_kb(r.pid(), "VmHWM")?,
        rss_kb: proc::status_kb(r.pid(), "VmRSS")?,
    })
}

fn measured(before: &Snapshot, after: &Snapshot, children_kb: u64, by_threads: bool) -> Measured {
    let sum = |s: &Snapshot| s.threads.iter().map(|(_, t)| *t).sum::<Duration>();
    let threads = by_threads.then(|| sum(after).saturating_sub(sum(before)));
    Measured {
        cpu: after.cpu.since(&before.cpu),
        threads,
        samples: after.samples - before.samples,
        rss_kb: after.hwm_kb + children_kb,
        now_kb: after.rss_kb + children_kb,
    }
}

/// bpftool's own peak RSS for the seed's lookup (largest of five runs).
fn bpftool_peak_kb(lab: &Lab, pin: &std::path::Path) -> anyhow::Result<u64> {
    let mut peak = 0;
    for _ in 0..5 {
        let out = lab
            .xdp_command("/usr/bin/time")
            .args(["-f", "%M", "bpftool", "-j", "map", "lookup", "pinned"])
            .arg(pin)
            .args(["key", "0", "0", "0", "0"])
            .output()
            .context("running /usr/bin/time (install the `time` package)")?;
        anyhow::ensure!(out.status.success(), "bpftool lookup failed: {out:?}");
        let kb: u64 = String::from_utf8_lossy(&out.stderr)
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .context("no peak RSS from time -f %M")?;
        peak = peak.max(kb);
    }
    Ok(peak)
}

fn print(
    x: &Measured,
    e: &Measured,
    s: &Measured,
    window: Duration,
    bpftool_kb: u64,
    interval_ms: u64,
) {
    let mut t = Table::new(
        format!(
            "OTLP export: headless xdptop vs the seed's Python exporter \
             (one lab, 10 kpps, {interval_ms} ms interval, same rotel collector, \
             {} s window after {} s warm-up)",
            window.as_secs(),
            WARM_UP.as_secs(),
        ),
        &[
            "figure",
            "xdptop",
            "xdptop, request/sample",
            "seed (python+bpftool)",
            "target",
            "verdict",
        ],
    );
    let (xc, ec, sc) = (x.per_sample_ms(), e.per_sample_ms(), s.per_sample_ms());
    t.row(vec![
        "samples in window".into(),
        x.samples.to_string(),
        e.samples.to_string(),
        s.samples.to_string(),
        String::new(),
        String::new(),
    ]);
    t.row(vec![
        "CPU in window".into(),
        format!(
            "{:.1} ms",
            x.threads.unwrap_or_default().as_secs_f64() * 1000.0
        ),
        format!(
            "{:.1} ms",
            e.threads.unwrap_or_default().as_secs_f64() * 1000.0
        ),
        format!(
            "{} + {} ms",
            s.cpu.own.as_millis(),
            s.cpu.children.as_millis()
        ),
        String::new(),
        String::new(),
    ]);
    let ratio = sc / xc.max(1e-9);
    t.row(vec![
        "CPU per sample".into(),
        format!("{xc:.3} ms"),
        format!("{ec:.3} ms ({:.0}x less)", sc / ec.max(1e-9)),
        format!("{sc:.3} ms"),
        format!(">= {TARGET_CPU_RATIO:.0}x less"),
        format!("{} ({ratio:.0}x)", verdict(ratio >= TARGET_CPU_RATIO)),
    ]);
    let fraction = x.rss_kb as f64 / s.rss_kb.max(1) as f64;
    t.row(vec![
        "peak RSS".into(),
        proc::mb(x.rss_kb),
        proc::mb(e.rss_kb),
        format!(
            "{} ({} + {})",
            proc::mb(s.rss_kb),
            proc::mb(s.rss_kb - bpftool_kb),
            proc::mb(bpftool_kb)
        ),
        "<= 1/3".into(),
        format!(
            "{} ({:.2})",
            verdict(fraction <= TARGET_RSS_FRACTION),
            fraction
        ),
    ]);
    t.row(vec![
        "RSS at the end of the window".into(),
        proc::mb(x.now_kb),
        proc::mb(e.now_kb),
        proc::mb(s.now_kb),
        String::new(),
        format!("({:.2})", x.now_kb as f64 / s.now_kb.max(1) as f64),
    ]);
    t.print();
}
