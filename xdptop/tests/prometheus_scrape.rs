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
    ticks::{SEC, reading, source},
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
            let tick = self.sampler.sample(wall_ns(), self.mono);
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
        .expect("endpoint");
    let prom = Prometheus::start(&[ep.local_addr()], SCRAPE);
    let alerts = Alerts::compressed();
    let mut lab = Lab::new();

    // ---- P1: traffic on veth-a and veth-c, veth-b lost.
    lab.run(&ep, P1_TICKS);
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

    assert_dashboard_has_data(&prom, &["veth-a", "veth-b", "veth-c"]);
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
