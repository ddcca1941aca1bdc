//! End to end on a veth lab: xdptop with `--json --otlp` against a real
//! collector (rotel). Every data point the collector logs must equal a value
//! xdptop printed for the same sample, exported once.

mod common;
mod support;

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use common::*;
use serde_json::Value;
use support::rotel::{LoggedPoint, Rotel, free_port};
use xdp_lab::frame_len;

/// How long a sample or an effect may take ([`lab_wait`]: longer in a VM).
fn wait() -> Duration {
    lab_wait(Duration::from_secs(20))
}

/// (metric, time) -> the points the collector logged for it.
fn index(points: &[LoggedPoint], iface: &str) -> HashMap<(String, u64), Vec<LoggedPoint>> {
    let mut map: HashMap<(String, u64), Vec<LoggedPoint>> = HashMap::new();
    for p in points
        .iter()
        .filter(|p| p.attr("network.interface.name") == Some(iface))
    {
        map.entry((p.metric.clone(), p.time_unix_nano))
            .or_default()
            .push(p.clone());
    }
    map
}

fn assert_same(line: &Value, points: &HashMap<(String, u64), Vec<LoggedPoint>>) {
    let t = line["time_unix_nano"].as_u64().expect("time");
    for (metric, field) in [
        ("xdp.packets", "packets"),
        ("xdp.bytes", "bytes"),
        ("xdp.packet.rate", "pps"),
        ("xdp.bit.rate", "bps"),
    ] {
        let got = points
            .get(&(metric.to_owned(), t))
            .unwrap_or_else(|| panic!("no {metric} point at {t} for {line}"));
        if !xdp_lab::kernel::in_vm() {
            assert_eq!(got.len(), 1, "{metric} at {t} exported {} times", got.len());
        }
        // Under qemu's emulation (cargo xtask vmtest) a request can still be
        // in flight when xdptop exits; the exporter then resends that batch
        // in its last push (at least once at shutdown, by design: see
        // `requeue` in src/otlp/worker.rs), so a point may arrive twice
        // there, but always with the same value. The batching test below
        // checks that such repeats come only from the last push.
        let want = line[field].as_f64().expect("number");
        for p in got {
            let have = p.value_f64();
            assert!(
                (have - want).abs() <= want.abs() * 1e-12,
                "{metric} at {t}: collector has {have}, xdptop printed {want}"
            );
        }
    } // Issue 15: the run time per packet, exactly where the line has one.
    let run = points.get(&("xdp.program.run_time_per_packet".to_owned(), t));
    match line["run_ns_per_packet"].as_f64() {
        Some(want) => {
            let got = run.unwrap_or_else(|| panic!("no run time point at {t} for {line}"));
            assert!(
                got.iter().all(|p| p.value_f64() == want && p.unit == "ns"),
                "{got:?} {line}"
            );
        }
        None => assert!(
            run.is_none(),
            "a run time at {t} xdptop did not print: {run:?}"
        ),
    }
}

#[test]
fn the_collector_receives_exactly_what_xdptop_printed() {
    let (bpffs, lab) = setup("otlpeq", 1);
    let iface = lab.links[0].xdp_if.clone();
    let rotel = Rotel::start_in(&lab.xdp_netns_path());
    let mut run = Running::start_healthy(
        &lab,
        bpffs.path(),
        &[
            "--interval",
            "200ms",
            "--otlp",
            &rotel.grpc_endpoint(),
            &iface,
        ],
        wait(),
    );
    send_udp(&lab, 0, 700, 100);
    run.wait_for(&iface, wait(), |v| v["packets"] == 700);
    run.wait_for(&iface, wait(), |_| true);
    let status = run.stop();
    assert!(status.success(), "{status}");
    let lines = run.all_lines();
    assert!(lines.len() >= 3);
    let last_t = lines.last().expect("lines")["time_unix_nano"]
        .as_u64()
        .expect("t");

    // The last sample, pushed on SIGTERM, must be there too.
    let points = rotel.wait_points(wait(), |ps| {
        ps.iter()
            .any(|p| p.metric == "xdp.bit.rate" && p.time_unix_nano == last_t)
    });
    let by_key = index(&points, &iface);
    for line in &lines {
        assert_same(line, &by_key);
    }
    let p = &by_key[&("xdp.packets".to_owned(), last_t)][0];
    assert_eq!(
        (p.data_type.as_str(), p.monotonic, p.unit.as_str()),
        ("Sum", true, "{packet}")
    );
    assert_eq!(
        p.resource.get("service.name").map(String::as_str),
        Some("xdptop")
    );
    assert!(p.resource.contains_key("host.name"));
    assert_eq!(p.value_f64(), 700.0);
    let b = &by_key[&("xdp.bytes".to_owned(), last_t)][0];
    assert_eq!(b.value_f64(), (700 * frame_len(100)) as f64);
    // As root the run time is known in periods with packets: it arrived
    // (assert_same above checked each value).
    assert!(
        lines.iter().any(|l| l["run_ns_per_packet"].is_f64()),
        "{lines:?}"
    );
    assert!(
        by_key
            .keys()
            .any(|(m, _)| m == "xdp.program.run_time_per_packet")
    );
    // Nothing was exported that xdptop did not print.
    let printed: std::collections::HashSet<u64> = lines
        .iter()
        .map(|l| l["time_unix_nano"].as_u64().expect("t"))
        .collect();
    for ((_, t), _) in by_key.iter() {
        assert!(
            printed.contains(t),
            "point at {t} matches no printed sample"
        );
    }
    // The attach event became a span.
    rotel.wait_spans(wait(), |s| s.iter().any(|s| s.name.contains("attach")));
}

/// `--interval 100ms --otlp-interval 1s --count 25`: every sample printed
/// reaches the collector exactly once, in a handful of requests instead of
/// 25, the last ones in the push at exit.
#[test]
fn samples_are_batched_per_export_interval_and_all_arrive_once() {
    let (bpffs, lab) = setup("otlpbatch", 1);
    let iface = lab.links[0].xdp_if.clone();
    let rotel = Rotel::start_in(&lab.xdp_netns_path());
    let mut run = Running::start(
        &lab,
        bpffs.path(),
        &[
            "-v",
            "--interval",
            "100ms",
            "--otlp-interval",
            "1s",
            "--count",
            "25",
            "--otlp",
            &rotel.grpc_endpoint(),
            &iface,
        ],
    );
    assert!(run.wait(wait()).success());
    let lines = run.all_lines();
    assert_eq!(lines.len(), 25);
    let times: Vec<u64> = lines
        .iter()
        .map(|l| l["time_unix_nano"].as_u64().expect("t"))
        .collect();
    rotel.wait_points(wait(), |ps| {
        ps.iter().filter(|p| p.metric == "xdp.bit.rate").count() >= times.len()
    });
    // A little longer: duplicates would arrive now.
    std::thread::sleep(Duration::from_millis(500));
    let points = rotel.points();
    assert!(points.len() >= 25 * 5);
    let by_key = index(&points, &iface);
    for line in &lines {
        assert_same(line, &by_key);
    }
    let mut per_request: std::collections::BTreeMap<usize, Vec<u64>> = Default::default();
    for p in points.iter().filter(|p| p.metric == "xdp.packets") {
        assert!(times.contains(&p.time_unix_nano), "not printed: {p:?}");
        per_request
            .entry(p.request)
            .or_default()
            .push(p.time_unix_nano);
    }
    let sizes: Vec<usize> = per_request.values().map(Vec::len).collect();
    eprintln!("samples per request: {sizes:?}");
    if xdp_lab::kernel::in_vm() {
        // See assert_same: under emulation the batch in flight at exit may
        // go again in the last push; a repeat anywhere else is a bug, and
        // so is a missing sample. The pace is not checked there: the first
        // request's connection set-up alone can outlast the 2.5 s run, and
        // then every sample goes in the last push (seen on 6.1 under TCG on
        // a loaded host). Batching still has to hold: not a request each.
        let last = *per_request.keys().last().expect("requests");
        let mut seen = std::collections::HashSet::new();
        for (request, ts) in &per_request {
            for t in ts {
                if !seen.insert(*t) {
                    assert_eq!(*request, last, "sample {t} repeated before the last push");
                }
            }
        }
        assert_eq!(seen.len(), 25, "every sample");
        assert!((1..=8).contains(&sizes.len()), "{sizes:?}");
    } else {
        assert_eq!(sizes.iter().sum::<usize>(), 25, "each sample once");
        // 2.5 s: the first at once, then about one a second, then the rest
        // at exit (4 on time; 25 without an export interval).
        assert!((3..=7).contains(&sizes.len()), "{sizes:?}");
    }
    let stderr = run.stderr_lines().join("\n");
    assert!(
        stderr.contains("at most one request per 1s"),
        "the start-up line names the interval:\n{stderr}"
    );
}

#[test]
fn a_collector_down_at_start_delays_nothing_and_gets_everything_later() {
    let (bpffs, lab) = setup("otlpdown", 1);
    let iface = lab.links[0].xdp_if.clone();
    let (grpc, http) = (free_port(), free_port());
    let endpoint = format!("127.0.0.1:{grpc}");
    let mut run = Running::start(
        &lab,
        bpffs.path(),
        &["--interval", "200ms", "--otlp", &endpoint, &iface],
    );
    let mut start = Instant::now();
    let first = run.wait_for(&iface, wait(), |_| true);
    if xdp_lab::kernel::in_vm() {
        // Under qemu's emulation (cargo xtask vmtest) loading and attaching
        // alone take seconds, which is not what this checks: there the pace
        // is timed from the first sample (five intervals, not six samples).
        start = Instant::now();
    }
    for _ in 0..5 {
        run.wait_for(&iface, wait(), |_| true);
    }
    // Six samples at 200 ms with the collector down: still on time.
    assert!(
        start.elapsed() < Duration::from_millis(1_800),
        "{:?}",
        start.elapsed()
    );

    let rotel = Rotel::start_on_in(grpc, http, Some(&lab.xdp_netns_path()));
    let first_t = first["time_unix_nano"].as_u64().expect("t");
    rotel.wait_points(wait(), |ps| {
        ps.iter()
            .any(|p| p.metric == "xdp.packets" && p.time_unix_nano == first_t)
    });
    assert!(run.stop().success());
}

#[test]
fn a_malformed_endpoint_is_a_clear_startup_error() {
    let out = std::process::Command::new(XDPTOP)
        .args(["--headless", "--otlp", "localhost", "lo"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr_of(&out);
    assert!(err.contains("port"), "{err}");
}

/// Issue 16: `--talkers 10 --talkers-export 3 --otlp`: five known sources
/// send in the proportions 5:4:3:2:1; for every sample xdptop printed, the
/// collector has exactly the first three listed sources and the (two)
/// services, each with the rate the JSON line gives it, at the sample's time.
#[test]
fn the_collector_receives_the_top_talkers_xdptop_printed() {
    let (bpffs, lab) = setup("otlptalk", 1);
    let iface = lab.links[0].xdp_if.clone();
    let rotel = Rotel::start_in(&lab.xdp_netns_path());
    let mut run = Running::start_healthy(
        &lab,
        bpffs.path(),
        &[
            "--interval",
            "200ms",
            "--otlp-interval",
            "1s",
            "--otlp",
            &rotel.grpc_endpoint(),
            "--talkers",
            "10",
            "--talkers-export",
            "3",
            "--talkers-table",
            "1024",
            &iface,
        ],
        wait(),
    );
    let sent = five_talkers(&lab, 400, 3_000);
    let total: u64 = sent.iter().map(|s| s.1).sum();
    run.wait_for(&iface, wait(), |v| v["packets"] == total);
    run.wait_for(&iface, wait(), |_| true);
    assert!(run.stop().success());
    let lines: Vec<Value> = run
        .all_lines()
        .into_iter()
        .filter(|l| l["interface"] == iface.as_str())
        .collect();
    let last_t = lines.last().expect("lines")["time_unix_nano"]
        .as_u64()
        .expect("t");
    let points = rotel.wait_points(wait(), |ps| {
        ps.iter()
            .any(|p| p.metric == "xdp.service.bit.rate" && p.time_unix_nano == last_t)
    });
    // (metric, time) -> {key: value} as the collector logged them.
    let mut got: HashMap<(String, u64), Vec<(String, f64)>> = HashMap::new();
    for p in points
        .iter()
        .filter(|p| p.attr("network.interface.name") == Some(&*iface))
    {
        let key = match p.metric.as_str() {
            "xdp.talker.packet.rate" | "xdp.talker.bit.rate" => {
                assert_eq!(p.data_type, "Gauge");
                p.attr("source.address").expect("source.address").to_owned()
            }
            "xdp.service.packet.rate" | "xdp.service.bit.rate" => format!(
                "{}/{}",
                p.attr("network.transport").expect("network.transport"),
                p.attr("destination.port").expect("destination.port")
            ),
            _ => continue,
        };
        got.entry((p.metric.clone(), p.time_unix_nano))
            .or_default()
            .push((key, p.value_f64()));
    }
    let mut seen_sources = std::collections::BTreeSet::new();
    for l in &lines {
        let t = l["time_unix_nano"].as_u64().expect("t");
        for (metric, list, field) in [
            ("xdp.talker.packet.rate", "talkers", "pps"),
            ("xdp.talker.bit.rate", "talkers", "bps"),
            ("xdp.service.packet.rate", "services", "pps"),
            ("xdp.service.bit.rate", "services", "bps"),
        ] {
            let want: Vec<(String, f64)> = l[list]
                .as_array()
                .expect("listed")
                .iter()
                .take(3)
                .map(|e| {
                    let key = match e.get("source") {
                        Some(s) => s.as_str().expect("source").to_owned(),
                        None => {
                            format!("{}/Int({})", e["protocol"].as_str().expect("p"), e["port"])
                        }
                    };
                    (key, e[field].as_f64().expect("rate"))
                })
                .collect();
            let have = got
                .get(&(metric.to_owned(), t))
                .cloned()
                .unwrap_or_default();
            if xdp_lab::kernel::in_vm() {
                // The batch in flight at exit may arrive twice there (see
                // assert_same); each copy is the same.
                let n = want.len().max(1);
                assert!(have.len() % n == 0, "{metric} at {t}: {have:?}");
                assert_eq!(have[..want.len()], want[..], "{metric} at {t}: {l}");
            } else {
                assert_eq!(have, want, "{metric} at {t}: {l}");
            }
            if metric == "xdp.talker.packet.rate" {
                seen_sources.extend(want.into_iter().map(|w| w.0));
            }
        }
    }
    let top3: std::collections::BTreeSet<String> =
        sent.iter().take(3).map(|s| s.0.clone()).collect();
    assert_eq!(
        seen_sources, top3,
        "only the three heaviest were ever exported"
    );
}
