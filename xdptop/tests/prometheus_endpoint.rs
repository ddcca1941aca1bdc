//! `--prometheus`: the `/metrics` endpoint serves the sampler's Ticks under
//! the collector path's series names and labels.

mod support;

use std::net::SocketAddr;

use support::{http, ticks};
use xdptop::output::prometheus::PrometheusEndpoint;

fn local() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// The sample lines (not comments) of an exposition, sorted.
fn samples(body: &str) -> Vec<&str> {
    let mut v: Vec<&str> = body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    v.sort_unstable();
    v
}

const EXPECTED: &[&str] = &[
    r#"xdp_xdp_attached_ratio{network_interface_name="veth-a",xdp_mode="native",host_name="lab-host"} 1.0"#,
    r#"xdp_xdp_attached_ratio{network_interface_name="veth-b",xdp_mode="skb",host_name="lab-host"} 0.0"#,
    r#"xdp_xdp_bit_rate_per_second{network_interface_name="veth-a",xdp_mode="native",host_name="lab-host"} 256000.0"#,
    r#"xdp_xdp_bit_rate_per_second{network_interface_name="veth-b",xdp_mode="skb",host_name="lab-host"} 0.0"#,
    r#"xdp_xdp_bytes_total{network_interface_name="veth-a",xdp_mode="native",host_name="lab-host"} 96000"#,
    r#"xdp_xdp_bytes_total{network_interface_name="veth-b",xdp_mode="skb",host_name="lab-host"} 700"#,
    r#"xdp_xdp_packet_rate_per_second{network_interface_name="veth-a",xdp_mode="native",host_name="lab-host"} 500.0"#,
    r#"xdp_xdp_packet_rate_per_second{network_interface_name="veth-b",xdp_mode="skb",host_name="lab-host"} 0.0"#,
    r#"xdp_xdp_packets_total{network_interface_name="veth-a",xdp_mode="native",host_name="lab-host"} 1500"#,
    r#"xdp_xdp_packets_total{network_interface_name="veth-b",xdp_mode="skb",host_name="lab-host"} 7"#,
];

#[test]
fn serves_the_latest_tick_with_collector_names_and_labels() {
    let ep = PrometheusEndpoint::start_with_host(local(), "lab-host").expect("start");
    let (first, second) = ticks::two_interfaces();
    ep.update(&first);
    ep.update(&second);

    let r = http::get(ep.local_addr(), "/metrics", &[]).expect("GET /metrics");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(samples(&r.body), EXPECTED, "{}", r.body);
    // Classic text format: counters are typed under their `_total` name.
    assert!(
        r.body.contains("# TYPE xdp_xdp_packets_total counter\n"),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("# TYPE xdp_xdp_packet_rate_per_second gauge\n"),
        "{}",
        r.body
    );
}

#[test]
fn speaks_openmetrics_when_asked() {
    let ep = PrometheusEndpoint::start_with_host(local(), "lab-host").expect("start");
    let (first, second) = ticks::two_interfaces();
    ep.update(&first);
    ep.update(&second);
    // What Prometheus sends.
    let accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                  version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let r = http::get(ep.local_addr(), "/metrics?x=1", &[("Accept", accept)]).expect("GET");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("Content-Type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert_eq!(samples(&r.body), EXPECTED, "{}", r.body);
    assert!(
        r.body.contains("# TYPE xdp_xdp_packets counter\n"),
        "{}",
        r.body
    );
    assert!(r.body.ends_with("# EOF\n"), "{}", r.body);
}

#[test]
fn before_the_first_tick_there_are_no_series() {
    let ep = PrometheusEndpoint::start_with_host(local(), "h").expect("start");
    let r = http::get(ep.local_addr(), "/metrics", &[]).expect("GET");
    assert_eq!(r.status, 200);
    assert_eq!(samples(&r.body), Vec::<&str>::new(), "{}", r.body);
}

#[test]
fn the_latest_tick_replaces_the_previous_one() {
    let ep = PrometheusEndpoint::start_with_host(local(), "h").expect("start");
    let (first, second) = ticks::two_interfaces();
    ep.update(&second);
    ep.update(&first);
    let r = http::get(ep.local_addr(), "/metrics", &[]).expect("GET");
    let body = r.body;
    assert!(
        body.contains(r#"xdp_xdp_packets_total{network_interface_name="veth-a",xdp_mode="native",host_name="h"} 1000"#),
        "{body}"
    );
    // The first tick has no rates yet and veth-b was still readable.
    assert!(
        body.contains(r#"xdp_xdp_packet_rate_per_second{network_interface_name="veth-a",xdp_mode="native",host_name="h"} 0.0"#),
        "{body}"
    );
    assert!(
        body.contains(r#"xdp_xdp_attached_ratio{network_interface_name="veth-b",xdp_mode="skb",host_name="h"} 1.0"#),
        "{body}"
    );
}

#[test]
fn other_paths_and_methods_are_refused() {
    let ep = PrometheusEndpoint::start_with_host(local(), "h").expect("start");
    for path in ["/", "/metrics/", "/favicon.ico", "/metricsx"] {
        let r = http::get(ep.local_addr(), path, &[]).expect("GET");
        assert_eq!(r.status, 404, "{path}");
    }
    let r = http::request(
        ep.local_addr(),
        "POST",
        "/metrics",
        &[("Content-Length", "0")],
    )
    .expect("POST");
    assert_eq!(r.status, 405);
}

#[test]
fn a_taken_address_is_a_clear_error() {
    let ep = PrometheusEndpoint::start_with_host(local(), "h").expect("start");
    let err = PrometheusEndpoint::start_with_host(ep.local_addr(), "h").expect_err("port in use");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("--prometheus") && msg.contains(&ep.local_addr().to_string()),
        "{msg}"
    );
}

#[test]
fn dropping_stops_the_server() {
    let ep = PrometheusEndpoint::start_with_host(local(), "h").expect("start");
    let addr = ep.local_addr();
    assert_eq!(http::get(addr, "/metrics", &[]).expect("GET").status, 200);
    drop(ep);
    assert!(
        http::get(addr, "/metrics", &[]).is_err(),
        "still serving after drop"
    );
    // And the port is free again.
    let again = PrometheusEndpoint::start_with_host(addr, "h").expect("rebind after drop");
    assert_eq!(again.local_addr(), addr);
}

#[test]
fn the_readme_mapping_tables_match_the_served_names() {
    struct Row {
        otel: &'static str,
        prometheus: &'static str,
        unit: &'static str,
    }
    for file in ["compose/README.md", "README.md"] {
        let path = format!("{}/../{file}", env!("CARGO_MANIFEST_DIR"));
        let readme = std::fs::read_to_string(path).expect(file);
        for (otel, prometheus, unit) in xdptop::output::names::all_metrics() {
            let m = Row {
                otel,
                prometheus,
                unit,
            };
            let row = format!("| `{}` |", m.otel);
            let has = |what: &str| {
                readme
                    .lines()
                    .any(|l| l.starts_with(&row) && l.contains(&format!("`{what}`")))
            };
            assert!(
                has(m.prometheus),
                "{file} has no row mapping {} to {}",
                m.otel,
                m.prometheus
            );
            assert!(
                has(m.unit),
                "{file} has no row giving {} the unit {}",
                m.otel,
                m.unit
            );
        }
    }
}

/// Issue 15: where a sample carries verdicts, `/metrics` adds one series per
/// verdict, labelled `xdp_action`, as the collector makes of
/// `xdp.action.packets` / `xdp.action.bytes`.
#[test]
fn verdicts_are_a_series_per_action() {
    use xdptop::{
        sample::Mode,
        sampler::{FakeSource, Sampler, verdict_reading},
    };
    let reading = |pass, drop| Ok(verdict_reading(pass, drop));
    let mut sampler = Sampler::new(vec![Box::new(FakeSource {
        name: "fw0".into(),
        mode: Mode::ReadOnly,
        readings: [reading(0, 0), reading(1_000, 500)].into_iter().collect(),
    })]);
    let ep = PrometheusEndpoint::start_with_host(local(), "lab-host").expect("start");
    ep.update(&sampler.sample(1, 1));
    ep.update(&sampler.sample(2, 1_000_000_001));
    let r = http::get(ep.local_addr(), "/metrics", &[]).expect("GET /metrics");
    let lines = samples(&r.body);
    let series = |metric: &str, action: &str, v: u64| {
        format!(
            r#"{metric}{{network_interface_name="fw0",xdp_mode="read-only",host_name="lab-host",xdp_action="{action}"}} {v}"#
        )
    };
    for want in [
        series("xdp_xdp_action_packets_total", "pass", 1_000),
        series("xdp_xdp_action_packets_total", "drop", 500),
        series("xdp_xdp_action_packets_total", "tx", 0),
        series("xdp_xdp_action_bytes_total", "pass", 100_000),
        series("xdp_xdp_action_bytes_total", "drop", 250_000),
    ] {
        assert!(lines.contains(&want.as_str()), "{want} in {}", r.body);
    }
    assert!(
        r.body
            .contains("# TYPE xdp_xdp_action_packets_total counter\n"),
        "{}",
        r.body
    );
}

/// Issues 15 and 16: the run-time gauge where a sample knows it, and with
/// `--talkers-export N` a series per listed source and service (the top N
/// only), labelled as the collector labels `source.address`,
/// `network.transport` and `destination.port`.
#[test]
fn run_time_and_top_talkers_are_gauges() {
    let (first, second) = ticks::talkers_and_run_time();
    let series = |ep: &PrometheusEndpoint| {
        let r = http::get(ep.local_addr(), "/metrics", &[]).expect("GET /metrics");
        assert_eq!(r.status, 200);
        r.body
    };
    let iface = r#"network_interface_name="veth-t",xdp_mode="native",host_name="h""#;
    // Without --talkers-export: the run time, no talkers.
    let ep = PrometheusEndpoint::start_with_host(local(), "h").expect("start");
    ep.update(&first);
    let body = series(&ep);
    assert!(
        !body.contains("run_time"),
        "unknown on the first sample: {body}"
    );
    ep.update(&second);
    let body = series(&ep);
    let run = format!("xdp_xdp_program_run_time_per_packet_nanoseconds{{{iface}}} 40.0");
    assert!(samples(&body).contains(&run.as_str()), "{body}");
    assert!(
        body.contains("# TYPE xdp_xdp_program_run_time_per_packet_nanoseconds gauge\n"),
        "{body}"
    );
    assert!(
        !body.contains("talker") && !body.contains("service"),
        "{body}"
    );

    let ep = PrometheusEndpoint::start_with_host(local(), "h")
        .expect("start")
        .with_talkers(2);
    ep.update(&second);
    let body = series(&ep);
    let talkers: Vec<&str> = samples(&body)
        .into_iter()
        .filter(|l| l.contains("talker") || l.contains("service"))
        .collect();
    let want = [
        format!(
            r#"xdp_xdp_service_bit_rate_per_second{{{iface},network_transport="tcp",destination_port="443"}} 120000.0"#
        ),
        format!(
            r#"xdp_xdp_service_bit_rate_per_second{{{iface},network_transport="udp",destination_port="53"}} 240000.0"#
        ),
        format!(
            r#"xdp_xdp_service_packet_rate_per_second{{{iface},network_transport="tcp",destination_port="443"}} 150.0"#
        ),
        format!(
            r#"xdp_xdp_service_packet_rate_per_second{{{iface},network_transport="udp",destination_port="53"}} 300.0"#
        ),
        format!(
            r#"xdp_xdp_talker_bit_rate_per_second{{{iface},source_address="198.18.0.10"}} 200000.0"#
        ),
        format!(
            r#"xdp_xdp_talker_bit_rate_per_second{{{iface},source_address="2001:2::10"}} 160000.0"#
        ),
        format!(
            r#"xdp_xdp_talker_packet_rate_per_second{{{iface},source_address="198.18.0.10"}} 250.0"#
        ),
        format!(
            r#"xdp_xdp_talker_packet_rate_per_second{{{iface},source_address="2001:2::10"}} 200.0"#
        ),
    ];
    assert_eq!(talkers, want, "{body}");
    assert!(
        body.contains("# TYPE xdp_xdp_talker_packet_rate_per_second gauge\n"),
        "{body}"
    );
    // A sample without talkers (the first) serves none.
    ep.update(&first);
    assert!(!series(&ep).contains("talker"));
}
