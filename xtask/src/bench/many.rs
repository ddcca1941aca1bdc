//! Issue 7: 64 interfaces watched by one `xdptop --headless --json`:
//! time to attach all and to the first sample, CPU per tick (schedstat of
//! its threads, ns-precise: a tick costs less than /proc/PID/stat's 10 ms
//! resolution), peak RSS, and exact counts (a known number of packets sent on every interface must be
//! every interface's `packets` in the JSON).

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use xdp_lab::{Lab, TempBpffs, Traffic};

use super::{
    Table,
    proc::{self},
    support::{Bins, Running},
    verdict,
};

const LINKS: usize = 64;
const PACKETS: u64 = 1_000;
/// Ticks measured for the per-tick cost (the sends fall inside them).
const TICKS: usize = 20;

pub fn run(bins: &Bins) -> anyhow::Result<()> {
    let bpffs = TempBpffs::new("bench-many")?;
    let made = Instant::now();
    let lab = Lab::new("xbench-many", LINKS)?;
    let lab_time = made.elapsed();
    let mut cmd = lab.xdp_command(&bins.xdptop);
    cmd.args(["--headless", "--json", "--interval", "1s", "--pin-dir"])
        .arg(bpffs.path())
        .args(lab.links.iter().map(|l| &l.xdp_if));
    let mut xdptop = Running::spawn("xdptop", cmd)?;
    xdptop.wait_lines(LINKS, Duration::from_secs(120))?;
    let first = xdptop
        .stdout
        .lock()
        .map(|l| l[0].0)
        .unwrap_or(xdptop.started)
        - xdptop.started;
    // The last attach note on stderr marks all attached.
    let attached = xdptop
        .stderr
        .lock()
        .ok()
        .and_then(|l| {
            l.iter()
                .rev()
                .find(|(_, l)| l.contains(&lab.links[LINKS - 1].xdp_if))
                .map(|(t, _)| *t)
        })
        .map(|t| t - xdptop.started);

    let (c0, n0) = (proc::threads_total(xdptop.pid())?, xdptop.stdout_lines());
    let netns = lab.gen_netns()?;
    for l in &lab.links {
        let sent = xdp_lab::send(
            &netns,
            &Traffic::udp(l.gen_ip, l.xdp_ip, PACKETS, 18, 50_000),
        )?;
        anyhow::ensure!(sent == PACKETS, "sent {sent} on {}", l.gen_if);
    }
    xdptop.wait_lines(n0 + TICKS * LINKS, Duration::from_secs(TICKS as u64 * 3))?;
    let (c1, n1) = (proc::threads_total(xdptop.pid())?, xdptop.stdout_lines());
    let rss = proc::status_kb(xdptop.pid(), "VmHWM")?;
    let rss_now = proc::status_kb(xdptop.pid(), "VmRSS")?;
    xdptop.stop(Duration::from_secs(10))?;
    let last = last_packets(&xdptop)?;

    let wrong: Vec<String> = lab
        .links
        .iter()
        .filter_map(|l| match last.get(&l.xdp_if) {
            Some(&p) if p == PACKETS => None,
            got => Some(format!("{}: {got:?}", l.xdp_if)),
        })
        .collect();
    drop(lab);
    let ticks = ((n1 - n0) / LINKS).max(1);
    let per_tick = c1.saturating_sub(c0).as_secs_f64() * 1000.0 / ticks as f64;
    let mut t = Table::new(
        format!(
            "Many interfaces: one headless xdptop --json on {LINKS} veth interfaces, 1 s interval, \
             {PACKETS} packets sent on each (lab of {LINKS} pairs made in {:.1} s)",
            lab_time.as_secs_f64()
        ),
        &["figure", "value", "target", "verdict"],
    );
    t.row(vec![
        "start to all attached".into(),
        attached.map_or("not logged".into(), |d| format!("{:.2} s", d.as_secs_f64())),
        String::new(),
        String::new(),
    ]);
    t.row(vec![
        "start to first sample (incl. one interval)".into(),
        format!("{:.2} s", first.as_secs_f64()),
        String::new(),
        String::new(),
    ]);
    t.row(vec![
        format!("CPU per tick ({LINKS} samples, {ticks} ticks)"),
        format!("{per_tick:.3} ms"),
        String::new(),
        String::new(),
    ]);
    t.row(vec![
        "peak RSS / RSS at the end".into(),
        format!("{} / {}", proc::mb(rss), proc::mb(rss_now)),
        String::new(),
        String::new(),
    ]);
    t.row(vec![
        "interfaces with exact counts".into(),
        format!("{} / {LINKS}", LINKS - wrong.len()),
        format!("{LINKS} / {LINKS}"),
        verdict(wrong.is_empty()),
    ]);
    t.print();
    if !wrong.is_empty() {
        bail!("counts not exact: {}", wrong.join(", "));
    }
    Ok(())
}

/// Each interface's `packets` in its last JSON line.
fn last_packets(xdptop: &Running) -> anyhow::Result<BTreeMap<String, u64>> {
    let lines = xdptop.stdout.lock().map(|l| l.clone()).unwrap_or_default();
    let mut last = BTreeMap::new();
    for (_, l) in lines {
        let v: serde_json::Value =
            serde_json::from_str(&l).with_context(|| format!("JSON line {l}"))?;
        if let (Some(i), Some(p)) = (v["interface"].as_str(), v["packets"].as_u64()) {
            last.insert(i.to_owned(), p);
        }
    }
    Ok(last)
}
