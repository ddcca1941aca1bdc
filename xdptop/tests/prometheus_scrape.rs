//! End to end with Debian's real `prometheus`: it scrapes xdptop's `/metrics`
//! endpoint (served in-process from FakeSource ticks with known numbers), and
//! every query of the shipped Grafana dashboard and alert rules is run
//! against it through the HTTP API.
//!
//! The alert rules' windows are minutes long; here Prometheus scrapes every
//! second and the windows are compressed to seconds (each substitution is
//! checked to apply), so the test shows each expression returning what its
//! rule needs: nothing to fire while traffic flows, "traffic stopped" and
//! "spike" once they happen, "stopped reporting" once the endpoint is gone.

mod support;

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    thread,
    time::Duration,
};

use support::{
    grafana::{Alerts, assert_dashboard_has_data, by_iface},
    prometheus::{Prometheus, label, value},
    ticks::{SEC, fixture_talkers, reading, source},
};
use xdptop::{
    output::prometheus::PrometheusEndpoint,
    sample::{Mode, Reading},
    sampler::{Sampler, Tick, wall_ns},
};

const SCRAPE: Duration = Duration::from_secs(1);
const TICK: Duration = Duration::from_millis(250);
const P1_TICKS: u64 = 24;
const P2_TICKS: u64 = 20;

/// `r` with the verdicts of its packets (a quarter dropped, or none) and
/// the program's run statistics (40 ns per packet), as the observer and
/// the kernel would report them.
fn observed(r: anyhow::Result<Reading>, dropped_quarter: bool) -> anyhow::Result<Reading> {
    let mut r = r?;
    let drop = if dropped_quarter { r.packets / 4 } else { 0 };
    let mut a = xdptop::sample::ActionTotals::default();
    a[xdp_ebpf::action::PASS].packets = r.packets - drop;
    a[xdp_ebpf::action::DROP].packets = drop;
    r.actions = Some(a);
    r.run = Some(xdptop::sample::RunStats {
        prog_id: 9,
        run_time_ns: 40 * r.packets,
        run_cnt: r.packets,
    });
    Ok(r)
}

struct Lab {
    sampler: Sampler,
    mono: u64,
    last: Option<Tick>,
}

impl Lab {
    fn new() -> Self {
        // veth-a: 100 pps for P1, then 10 000 pps (a spike) for P2.
        let mut a: Vec<anyhow::Result<Reading>> = Vec::new();
        let mut c: Vec<anyhow::Result<Reading>> = Vec::new();
        for i in 0..P1_TICKS {
            a.push(reading(100 * i, 6_400 * i));
            // veth-c: 50 pps for P1, then nothing.
            c.push(reading(50 * i, 3_000 * i));
        }
        let (a0, c0) = (100 * (P1_TICKS - 1), 50 * (P1_TICKS - 1));
        for j in 1..=P2_TICKS {
            a.push(reading(
                a0 + 10_000 * j,
                6_400 * (P1_TICKS - 1) + 640_000 * j,
            ));
            c.push(reading(c0, 3_000 * (P1_TICKS - 1)));
        }
        // veth-b: readable once, then its map is gone.
        let mut b = vec![reading(7, 700)];
        b.extend((1..P1_TICKS + P2_TICKS).map(|_| Err(anyhow::anyhow!("map removed"))));
        // veth-a's program drops a quarter of its packets, veth-c's none;
        // veth-b (read-only, lost) has no observer.
        let a = a.into_iter().map(|r| observed(r, true)).collect();
        let c = c.into_iter().map(|r| observed(r, false)).collect();
        Self {
            sampler: Sampler::new(vec![
                source("veth-a", Mode::Native, a),
                source("veth-b", Mode::ReadOnly, b),
                source("veth-c", Mode::Skb, c),
            ]),
            mono: 0,
            last: None,
        }
    }

    /// Samples `n` ticks, 1 s apart on the sampler's clock, `TICK` apart in
    /// real time, pushing each to the endpoint.
    fn run(&mut self, ep: &PrometheusEndpoint, n: u64) {
        for _ in 0..n {
            let mut tick = self.sampler.sample(wall_ns(), self.mono);
            // veth-a lists talkers (the endpoint exports the top 2).
            tick.samples[0].talkers = Some(fixture_talkers());
            self.mono += SEC;
            ep.update(&tick);
            self.last = Some(tick);
            thread::sleep(TICK);
        }
    }

    fn last(&self, iface: &str) -> &xdptop::sample::Sample {
        self.last
            .as_ref()
            .and_then(|t| t.samples.iter().find(|s| &*s.interface == iface))
            .expect("a tick with that interface")
    }
}

#[test]
fn dashboard_and_alert_queries_against_a_real_prometheus() {
    let ep = PrometheusEndpoint::start_with_host(SocketAddr::from(([127, 0, 0, 1], 0)), "lab-host")
        .expect("endpoint")
        .with_talkers(2);
    let prom = Prometheus::start(&[ep.local_addr()], SCRAPE);
    let alerts = Alerts::compressed();
    let mut lab = Lab::new();

    // ---- P1: traffic on veth-a and veth-c, veth-b lost.
    lab.run(&ep, P1_TICKS - 4);
    // Drops, while both flow (the compressed window lies inside P1): a
    // quarter of veth-a's packets, above the threshold; none of veth-c's;
    // veth-b has no verdicts, so no share at all.
    let share = by_iface(&prom.query(&alerts.drops));
    assert_eq!(
        share.keys().map(String::as_str).collect::<Vec<_>>(),
        ["veth-a", "veth-c"],
        "{share:?}"
    );
    assert!((share["veth-a"] - 25.0).abs() < 1e-9, "{share:?}");
    assert!(alerts.drops_fire(share["veth-a"]), "{share:?}");
    assert_eq!(share["veth-c"], 0.0, "{share:?}");
    assert!(!alerts.drops_fire(share["veth-c"]), "{share:?}");
    lab.run(&ep, 4);
    // Let two more scrapes see the final P1 tick, then compare exactly.
    thread::sleep(SCRAPE * 3);
    let packets = by_iface(&prom.wait_for("xdp_xdp_packets_total", Duration::from_secs(20)));
    for iface in ["veth-a", "veth-b", "veth-c"] {
        assert_eq!(
            packets.get(iface).copied(),
            Some(lab.last(iface).packets as f64),
            "Prometheus' counter for {iface} is not the value xdptop fed"
        );
    }
    let pps = by_iface(&prom.query("xdp_xdp_packet_rate_per_second"));
    assert_eq!(
        pps,
        BTreeMap::from([
            ("veth-a".into(), 100.0),
            ("veth-b".into(), 0.0),
            ("veth-c".into(), 50.0)
        ])
    );
    let bps = by_iface(&prom.query("xdp_xdp_bit_rate_per_second"));
    assert_eq!(bps["veth-a"], 6_400.0 * 8.0);
    let one = prom.query(r#"xdp_xdp_bytes_total{network_interface_name="veth-a"}"#);
    assert_eq!(value(&one[0]), lab.last("veth-a").bytes as f64);
    assert_eq!(label(&one[0], "host_name"), Some("lab-host"));
    assert_eq!(label(&one[0], "xdp_mode"), Some("native"));

    assert_dashboard_has_data(&prom, &["veth-a", "veth-b", "veth-c"], &[]);
    // Issue 15: per-verdict rates (as the verdicts panel sums them) and the
    // run-time gauge, for the observed interfaces only.
    let verdicts = prom.query(
        "max by (network_interface_name, xdp_action) (rate(xdp_xdp_action_packets_total[1m]))",
    );
    let rate_of = |iface: &str, action: &str| {
        verdicts
            .iter()
            .find(|e| {
                label(e, "network_interface_name") == Some(iface)
                    && label(e, "xdp_action") == Some(action)
            })
            .map(value)
    };
    // Ticks come 250 ms apart in real time (1 s on the sampler's clock), so
    // rate() is not the sampler's pps; the split between verdicts is exact.
    let (dropped, passed) = (
        rate_of("veth-a", "drop").expect("veth-a drops"),
        rate_of("veth-a", "pass").expect("veth-a passes"),
    );
    assert!(
        passed > 0.0 && (dropped / (dropped + passed) - 0.25).abs() < 1e-9,
        "{verdicts:?}"
    );
    assert_eq!(rate_of("veth-c", "drop"), Some(0.0), "{verdicts:?}");
    assert!(rate_of("veth-c", "pass") > Some(0.0), "{verdicts:?}");
    assert_eq!(rate_of("veth-b", "pass"), None, "no observer there");
    let run = by_iface(&prom.query("xdp_xdp_program_run_time_per_packet_nanoseconds"));
    assert_eq!(
        run,
        BTreeMap::from([("veth-a".into(), 40.0), ("veth-c".into(), 40.0)])
    );
    // Issue 16: the top 2 sources and services of veth-a, by label.
    let sources: BTreeMap<String, f64> = prom
        .query("xdp_xdp_talker_packet_rate_per_second")
        .iter()
        .map(|e| {
            (
                label(e, "source_address").expect("source").to_owned(),
                value(e),
            )
        })
        .collect();
    assert_eq!(
        sources,
        BTreeMap::from([("198.18.0.10".into(), 250.0), ("2001:2::10".into(), 200.0)])
    );
    let services: BTreeMap<(String, String), f64> = prom
        .query("xdp_xdp_service_bit_rate_per_second")
        .iter()
        .map(|e| {
            (
                (
                    label(e, "network_transport").expect("transport").to_owned(),
                    label(e, "destination_port").expect("port").to_owned(),
                ),
                value(e),
            )
        })
        .collect();
    assert_eq!(
        services,
        BTreeMap::from([
            (("tcp".into(), "443".into()), 120_000.0),
            (("udp".into(), "53".into()), 240_000.0)
        ])
    );
    // Scraped directly there is no env label: the seed's env="demo" finds
    // nothing, which is why the env variable has an All (.*) option.
    assert!(
        prom.query(r#"xdp_xdp_packets_total{env=~"demo"}"#)
            .is_empty()
    );

    let Alerts {
        stopped: stopped_a,
        stopped_after,
        gone: gone_a,
        gone_below,
        traffic: traffic_a,
        spike_a,
        spike_b,
        drops,
        ..
    } = alerts;
    let spiking = Alerts::spike_fires;

    // While xdptop runs, "stopped" sees fresh samples everywhere.
    let since = by_iface(&prom.query(&stopped_a));
    assert_eq!(since.len(), 3, "{since:?}");
    assert!(
        since.values().all(|s| *s < stopped_after && *s < 5.0),
        "{since:?}"
    );
    // Only veth-b lost its program.
    let attached = by_iface(&prom.query(&gone_a));
    let firing: BTreeSet<&str> = attached
        .iter()
        .filter(|(_, v)| **v < gone_below)
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(firing, BTreeSet::from(["veth-b"]), "{attached:?}");
    // Traffic flows on both live interfaces; veth-b (lost) is left out.
    let flowing = by_iface(&prom.query(&traffic_a));
    assert_eq!(
        flowing.keys().map(String::as_str).collect::<Vec<_>>(),
        ["veth-a", "veth-c"]
    );
    assert!(flowing.values().all(|v| *v > 0.0), "{flowing:?}");
    // Steady traffic is no spike.
    let (a, b) = (
        by_iface(&prom.query(&spike_a)),
        by_iface(&prom.query(&spike_b)),
    );
    assert!(!spiking(a["veth-a"], b["veth-a"]), "{a:?} {b:?}");

    // ---- P2: veth-a jumps to 10 000 pps, veth-c goes quiet. The spike is
    // judged once it fills the (compressed) window, before the baseline
    // window (whose 1h is not compressed) takes much of it in.
    lab.run(&ep, 14);
    let (a, b) = (
        by_iface(&prom.query(&spike_a)),
        by_iface(&prom.query(&spike_b)),
    );
    assert!(
        spiking(a["veth-a"], b["veth-a"]),
        "spike must fire for veth-a: {a:?} {b:?}"
    );
    assert!(!spiking(a["veth-c"], b["veth-c"]), "{a:?} {b:?}");
    lab.run(&ep, P2_TICKS - 14);
    // veth-c has had no packets in the window: no share, nothing to fire,
    // rather than 0/0; veth-a still drops a quarter at 10 000 pps.
    let share = by_iface(&prom.query(&drops));
    assert_eq!(
        share.keys().map(String::as_str).collect::<Vec<_>>(),
        ["veth-a"],
        "{share:?}"
    );
    assert!((share["veth-a"] - 25.0).abs() < 1e-9, "{share:?}");
    let quiet = by_iface(&prom.query(&traffic_a));
    assert_eq!(
        quiet.get("veth-c"),
        Some(&0.0),
        "traffic stopped must fire for veth-c: {quiet:?}"
    );
    assert!(quiet["veth-a"] > 0.0, "{quiet:?}");

    // ---- P3: xdptop stops (the endpoint goes away).
    drop(ep);
    thread::sleep(SCRAPE * 6);
    let since = by_iface(&prom.query(&stopped_a));
    assert_eq!(
        since.len(),
        3,
        "stopped must still see every series: {since:?}"
    );
    assert!(since.values().all(|s| *s > 4.0), "{since:?}");
    thread::sleep(SCRAPE * 2);
    let later = by_iface(&prom.query(&stopped_a));
    assert!(
        later.iter().all(|(k, v)| *v > since[k]),
        "time since last sample must grow: {since:?} {later:?}"
    );
    // The other rules go quiet rather than misfire on a stopped xdptop.
    assert!(
        prom.query(&traffic_a).is_empty(),
        "traffic stopped must leave this to 'stopped'"
    );
    assert!(prom.query(&gone_a).is_empty());
}
