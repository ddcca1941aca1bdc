//! Issue 4: headless `xdptop --otlp` against a re-creation of the seed's
//! exporter (scripts/bench/seed_exporter.py: bpftool per sample + the
//! Python OTel SDK), same lab, traffic, interval and collector, one run.
//!
//! CPU per sample: utime+stime over a steady window (after a warm-up that
//! leaves start-up out), divided by the samples printed in that window; for
//! the seed including its bpftool children (cutime+cstime). Peak RSS is
//! VmHWM; for the seed plus bpftool's own peak RSS, since one bpftool at a
//! time runs beside the interpreter. bpftool's peak is measured by GNU
//! `time -f %M` (a fork of a tiny process): the seed's own RUSAGE_CHILDREN
//! is no use, as Python spawns with vfork and a vfork child's maxrss is
//! the parent's high-water mark.

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

/// Short enough for many samples in a short run.
const INTERVAL_MS: u64 = 200;
const WARM_UP: Duration = Duration::from_secs(3);
const TARGET_CPU_RATIO: f64 = 20.0;
const TARGET_RSS_FRACTION: f64 = 1.0 / 3.0;

struct Measured {
    cpu: Cpu,
    samples: usize,
    /// Peak, and at the end of the window (both with bpftool for the seed).
    rss_kb: u64,
    now_kb: u64,
}

pub fn run(bins: &Bins, window: Duration) -> anyhow::Result<()> {
    let python = bench_python()?;
    let bpffs = TempBpffs::new("bench-otlp")?;
    let lab = Lab::new("xbench-otlp", 1)?;
    let collector = Collector::start(&lab)?;
    let traffic = Steady::start(&lab, 1, 10_000, 64)?;
    let iface = lab.links[0].xdp_if.clone();

    let mut cmd = lab.xdp_command(&bins.xdptop);
    cmd.args(["--headless", "--json", "--interval"])
        .arg(format!("{INTERVAL_MS}ms"))
        .args(["--otlp", &collector.endpoint, "--pin-dir"])
        .arg(bpffs.path())
        .arg(&iface);
    let mut xdptop = Running::spawn("xdptop", cmd)?;
    // Its first sample means the shared map is pinned for the seed to read.
    xdptop.wait_lines(1, Duration::from_secs(30))?;

    let mut cmd = lab.xdp_command(&python);
    cmd.arg(workspace_root().join("scripts/bench/seed_exporter.py"))
        .arg("--pin")
        .arg(bpffs.path().join("xdp_stats_map"))
        .args(["--endpoint", &collector.endpoint, "--interval"])
        .arg(format!("{}", INTERVAL_MS as f64 / 1000.0));
    let mut seed = Running::spawn("seed exporter", cmd)?;
    seed.wait_lines(1, Duration::from_secs(60))?;

    thread::sleep(WARM_UP);
    let before = [snapshot(&xdptop)?, snapshot(&seed)?];
    thread::sleep(window);
    let after = [snapshot(&xdptop)?, snapshot(&seed)?];

    let bpftool_kb = bpftool_peak_kb(&lab, &bpffs.path().join("xdp_stats_map"))?;
    let x_status = xdptop.stop(Duration::from_secs(10))?;
    let s_status = seed.stop(Duration::from_secs(10))?;
    drop(traffic);
    collector.stop();
    anyhow::ensure!(x_status.success(), "xdptop: {x_status}");
    anyhow::ensure!(s_status.success(), "seed exporter: {s_status}");
    let exported = xdptop
        .stderr_text()
        .lines()
        .find(|l| l.contains("samples exported"))
        .map(str::to_owned)
        .unwrap_or_else(|| "no export summary from xdptop".into());
    let seed_errors = seed.stderr_text();

    let x = measured(&before[0], &after[0], 0);
    let s = measured(&before[1], &after[1], bpftool_kb);
    print(&x, &s, window, bpftool_kb);
    let per_thread: Vec<String> = after[0]
        .threads
        .iter()
        .map(|(name, t)| {
            let t0 = before[0].threads.iter().find(|(n, _)| n == name);
            let d = t.saturating_sub(t0.map_or(Duration::ZERO, |(_, d)| *d));
            format!(
                "{name} {:.3} ms",
                d.as_secs_f64() * 1000.0 / x.samples.max(1) as f64
            )
        })
        .collect();
    println!(
        "xdptop's CPU per sample by thread in the window (schedstat, ns-precise): {}",
        per_thread.join(", ")
    );
    println!("xdptop's own count at exit: {exported}");
    if !seed_errors.trim().is_empty() {
        println!("seed exporter stderr: {}", seed_errors.trim());
    }
    Ok(())
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

fn measured(before: &Snapshot, after: &Snapshot, children_kb: u64) -> Measured {
    Measured {
        cpu: after.cpu.since(&before.cpu),
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

fn per_sample_ms(m: &Measured) -> f64 {
    m.cpu.total().as_secs_f64() * 1000.0 / m.samples.max(1) as f64
}

fn print(x: &Measured, s: &Measured, window: Duration, bpftool_kb: u64) {
    let mut t = Table::new(
        format!(
            "OTLP export: headless xdptop vs the seed's Python exporter \
             (one lab, 10 kpps, {INTERVAL_MS} ms interval, same rotel collector, \
             {} s window after {} s warm-up; CPU resolution {} ms)",
            window.as_secs(),
            WARM_UP.as_secs(),
            proc::tick().as_millis()
        ),
        &[
            "figure",
            "xdptop",
            "seed (python+bpftool)",
            "target",
            "verdict",
        ],
    );
    let (xc, sc) = (per_sample_ms(x), per_sample_ms(s));
    t.row(vec![
        "samples in window".into(),
        x.samples.to_string(),
        s.samples.to_string(),
        String::new(),
        String::new(),
    ]);
    t.row(vec![
        "CPU in window (own + children)".into(),
        format!("{} ms", x.cpu.total().as_millis()),
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
        format!("{sc:.3} ms"),
        format!(">= {TARGET_CPU_RATIO:.0}x less"),
        format!("{} ({ratio:.0}x)", verdict(ratio >= TARGET_CPU_RATIO)),
    ]);
    let fraction = x.rss_kb as f64 / s.rss_kb.max(1) as f64;
    t.row(vec![
        "peak RSS".into(),
        proc::mb(x.rss_kb),
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
        proc::mb(s.now_kb),
        String::new(),
        format!("({:.2})", x.now_kb as f64 / s.now_kb.max(1) as f64),
    ]);
    t.print();
}
