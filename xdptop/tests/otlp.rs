//! The OTLP mirror against a real collector (rotel): every Sample arrives
//! once with its own values and time; a collector that is down, black-holed
//! or slow never holds up the caller; shutdown is prompt.

mod support;

use std::{
    collections::BTreeMap,
    net::TcpListener,
    sync::mpsc,
    time::{Duration, Instant},
};

use support::{
    rotel::{LoggedPoint, Rotel, free_port},
    tls::TlsFront,
};
use xdptop::{
    output::{
        names,
        otlp::{Exporter, OtlpArgs, OtlpConfig, Protocol},
    },
    sample::{Mode, Reading, Sample},
    sampler::{CounterSource, FakeSource, Sampler, Tick, wall_ns},
    status::{ExportState, ExportStatus},
};

const SEC: u64 = 1_000_000_000;
/// Odd period so that rates are not round numbers: the test then shows
/// doubles travel unchanged.
const PERIOD_NS: u64 = 750_000_000;

fn reading(packets: u64, bytes: u64) -> anyhow::Result<Reading> {
    Ok(Reading {
        packets,
        bytes,
        epoch: 1,
        detail: None,
        actions: None,
        run: None,
    })
}

fn fake(name: &str, mode: Mode, readings: Vec<anyhow::Result<Reading>>) -> Box<dyn CounterSource> {
    Box::new(FakeSource {
        name: name.into(),
        mode,
        readings: readings.into(),
    })
}

/// Five ticks of two interfaces with known numbers: `veth-b` loses its
/// counters at tick 3 and comes back lower (restarted) at tick 4.
fn scripted_ticks() -> Vec<Tick> {
    let mut s = Sampler::new(vec![
        fake(
            "veth-a",
            Mode::Native,
            vec![
                reading(1_000_000, 64_000_000),
                reading(1_001_000, 64_064_000),
                reading(1_002_500, 64_160_000),
                reading(1_004_000, 64_256_001),
                reading(1_004_100, 64_262_400),
            ],
        ),
        fake(
            "veth-b",
            Mode::Skb,
            vec![
                reading(10, 1_000),
                reading(20, 2_000),
                reading(37, 3_333),
                Err(anyhow::anyhow!("map gone")),
                reading(5, 500),
            ],
        ),
    ]);
    let base = wall_ns();
    (0..5)
        .map(|i| s.sample(base + i * PERIOD_NS, i * PERIOD_NS))
        .collect()
}

/// A never-ending supply of ticks for timing tests.
fn steady_source() -> Sampler {
    let readings = (0..10_000u64)
        .map(|i| reading(i * 100, i * 6_400))
        .collect();
    Sampler::new(vec![fake("veth-a", Mode::Native, readings)])
}

fn config(endpoint: &str, protocol: Protocol) -> OtlpConfig {
    OtlpConfig::resolve(
        &OtlpArgs {
            endpoint: Some(endpoint.to_owned()),
            protocol: Some(protocol),
            headers: vec!["x-test=xdptop".into()],
            ca_file: None,
            export_interval: None,
        },
        &|_| None,
    )
    .expect("valid config")
    .expect("export on")
}

/// A request per `export`, as before export intervals: for the tests that
/// push a burst and wait for it to arrive (the default interval would keep
/// all but the first sample queued until a later `export` or `shutdown`).
/// Pacing has its own test, `requests_are_paced_by_the_export_interval`.
fn unpaced(mut cfg: OtlpConfig) -> OtlpConfig {
    cfg.export_interval = Duration::ZERO;
    cfg
}

fn start(cfg: &OtlpConfig) -> (Exporter, mpsc::Receiver<ExportStatus>) {
    let (tx, rx) = mpsc::channel();
    let exporter = Exporter::start(cfg, move |s| {
        let _ = tx.send(s);
    })
    .expect("exporter starts");
    (exporter, rx)
}

/// The value a Sample gives each metric, as rotel prints it parsed back.
fn expected(metric: &str, s: &Sample) -> f64 {
    match metric {
        names::PACKETS => s.packets as f64,
        names::BYTES => s.bytes as f64,
        names::PACKET_RATE => s.pps,
        names::BIT_RATE => s.bps,
        names::ATTACHED => f64::from(u8::from(s.health == xdptop::sample::Health::Ok)),
        other => panic!("unexpected metric {other}"),
    }
}

const METRICS: [(&str, &str, &str); 5] = [
    (names::PACKETS, "{packet}", "Sum"),
    (names::BYTES, "By", "Sum"),
    (names::PACKET_RATE, "{packet}/s", "Gauge"),
    (names::BIT_RATE, "bit/s", "Gauge"),
    (names::ATTACHED, "1", "Gauge"),
];

/// Every sample appears exactly once per metric, with its values, time,
/// attributes and the right descriptor.
fn assert_mirrors(points: &[LoggedPoint], samples: &[&Sample]) {
    for (metric, unit, data_type) in METRICS {
        let of_metric: Vec<&LoggedPoint> = points.iter().filter(|p| p.metric == metric).collect();
        assert_eq!(
            of_metric.len(),
            samples.len(),
            "{metric}: one point per sample, no more, no less"
        );
        for p in &of_metric {
            assert_eq!(p.unit, unit, "{metric} unit");
            assert_eq!(p.data_type, data_type, "{metric} type");
            if data_type == "Sum" {
                assert!(p.monotonic, "{metric} is monotonic");
                assert_eq!(p.temporality, "AGGREGATION_TEMPORALITY_CUMULATIVE");
            }
        }
        for s in samples {
            let matching: Vec<_> = of_metric
                .iter()
                .filter(|p| {
                    p.attr(names::ATTR_INTERFACE) == Some(&*s.interface)
                        && p.time_unix_nano == s.time_unix_nano
                })
                .collect();
            assert_eq!(
                matching.len(),
                1,
                "{metric} for {} at {}",
                s.interface,
                s.time_unix_nano
            );
            let p = matching[0];
            assert_eq!(
                p.value_f64(),
                expected(metric, s),
                "{metric} value for {} at {} ({s:?})",
                s.interface,
                s.time_unix_nano
            );
            assert_eq!(p.attr(names::ATTR_MODE), Some(s.mode.as_str()));
        }
    }
}

fn all_samples(ticks: &[Tick]) -> Vec<&Sample> {
    ticks.iter().flat_map(|t| &t.samples).collect()
}

/// Exports [`scripted_ticks`] and waits until rotel logged as many points
/// as the samples have metrics; returns the ticks and those points.
fn export_scripted(exporter: &Exporter, rotel: &Rotel) -> (Vec<Tick>, Vec<LoggedPoint>) {
    let ticks = scripted_ticks();
    for t in &ticks {
        exporter.export(t);
    }
    let want = all_samples(&ticks).len() * METRICS.len();
    let points = rotel.wait_points(Duration::from_secs(15), |p| p.len() >= want);
    (ticks, points)
}

#[test]
fn grpc_mirrors_every_sample_exactly() {
    let rotel = Rotel::start();
    let (exporter, status) = start(&unpaced(config(&rotel.grpc_endpoint(), Protocol::Grpc)));
    let (ticks, points) = export_scripted(&exporter, &rotel);
    let samples = all_samples(&ticks);
    // A little longer: duplicates would arrive now.
    std::thread::sleep(Duration::from_millis(500));
    let points = {
        let later = rotel.points();
        assert!(later.len() >= points.len());
        later
    };
    assert_mirrors(&points, &samples);

    // Resource: who sent it.
    let res = &points[0].resource;
    assert_eq!(res.get("service.name").map(String::as_str), Some("xdptop"));
    assert!(
        res.get("host.name").is_some_and(|h| !h.is_empty()),
        "{res:?}"
    );
    assert!(res.contains_key("service.instance.id"), "{res:?}");

    // Cumulative start times: the first sample, moved to the restart.
    let start_of = |iface: &str, tick: usize| {
        let s = &ticks[tick]
            .samples
            .iter()
            .find(|s| &*s.interface == iface)
            .expect("sample");
        points
            .iter()
            .find(|p| {
                p.metric == names::PACKETS
                    && p.attr(names::ATTR_INTERFACE) == Some(iface)
                    && p.time_unix_nano == s.time_unix_nano
            })
            .expect("point")
            .start_time_unix_nano
    };
    let t0 = ticks[0].samples[0].time_unix_nano;
    assert_eq!(start_of("veth-a", 4), t0);
    assert_eq!(start_of("veth-b", 3), t0, "a lost read is not a restart");
    assert_eq!(
        start_of("veth-b", 4),
        ticks[4].samples[1].time_unix_nano,
        "counters went backwards: a new series starts"
    );

    // The lost tick reports detached; the rest attached.
    let attached: BTreeMap<u64, String> = points
        .iter()
        .filter(|p| p.metric == names::ATTACHED && p.attr(names::ATTR_INTERFACE) == Some("veth-b"))
        .map(|p| (p.time_unix_nano, p.value.clone()))
        .collect();
    assert_eq!(
        attached.values().map(String::as_str).collect::<Vec<_>>(),
        ["1", "1", "1", "0", "1"]
    );

    // After the points are logged, so the two debug logs cannot interleave.
    exporter.event("attach", Some("veth-a"));
    let spans = rotel.wait_spans(Duration::from_secs(10), |s| !s.is_empty());
    assert_eq!(spans.len(), 1, "{spans:?}");
    assert_eq!(spans[0].name, "attach");
    assert_eq!(spans[0].kind, "SPAN_KIND_INTERNAL");
    assert_eq!(
        spans[0]
            .attributes
            .get(names::ATTR_INTERFACE)
            .map(String::as_str),
        Some("veth-a")
    );
    assert_eq!(
        spans[0].resource.get("service.name").map(String::as_str),
        Some("xdptop")
    );

    let fin = exporter.shutdown(Duration::from_secs(5));
    assert_eq!(fin.state, ExportState::Ok, "{fin:?}");
    assert_eq!(fin.exported, samples.len() as u64);
    assert_eq!(fin.dropped, 0);
    let seen: Vec<ExportStatus> = status.try_iter().collect();
    assert!(seen.iter().all(|s| s.state == ExportState::Ok), "{seen:?}");
}

#[test]
fn http_protobuf_mirrors_every_sample_too() {
    let rotel = Rotel::start();
    let (exporter, _status) = start(&unpaced(config(
        &rotel.http_endpoint(),
        Protocol::HttpProtobuf,
    )));
    let (ticks, points) = export_scripted(&exporter, &rotel);
    let samples = all_samples(&ticks);
    assert_mirrors(&points, &samples);
    exporter.event("reset", None);
    let spans = rotel.wait_spans(Duration::from_secs(10), |s| !s.is_empty());
    assert_eq!(spans[0].name, "reset");
    assert!(spans[0].attributes.is_empty(), "no interface given");
    let fin = exporter.shutdown(Duration::from_secs(5));
    assert_eq!(
        (fin.state, fin.exported),
        (ExportState::Ok, samples.len() as u64)
    );
}

/// Runs `n` ticks `interval` apart through `exporter`, returning the ticks
/// and the slowest `export` call.
fn pace(
    sampler: &mut Sampler,
    exporter: &Exporter,
    n: usize,
    interval: Duration,
    mono: &mut u64,
) -> (Vec<Tick>, Duration) {
    let mut slowest = Duration::ZERO;
    let mut ticks = Vec::new();
    for _ in 0..n {
        let tick = sampler.sample(wall_ns(), *mono);
        *mono += u64::try_from(interval.as_nanos()).expect("small");
        let t0 = Instant::now();
        exporter.export(&tick);
        slowest = slowest.max(t0.elapsed());
        ticks.push(tick);
        std::thread::sleep(interval);
    }
    (ticks, slowest)
}

#[test]
fn collector_down_at_start_then_up_mid_run() {
    let (grpc, http) = (free_port(), free_port());
    let interval = Duration::from_millis(100);
    let (exporter, status) = start(&unpaced(config(
        &format!("127.0.0.1:{grpc}"),
        Protocol::Grpc,
    )));
    let mut sampler = steady_source();
    let mut mono = 0;

    let (before, slowest_down) = pace(&mut sampler, &exporter, 10, interval, &mut mono);
    let failing = status
        .recv_timeout(Duration::from_secs(5))
        .expect("a status while the collector is down");
    assert_eq!(failing.state, ExportState::Failing, "{failing:?}");
    let err = failing.last_error.clone().unwrap_or_default();
    assert!(
        err.to_lowercase().contains("refused") || err.contains("connect"),
        "the error says why: {err}"
    );

    let rotel = Rotel::start_on(grpc, http);
    let (after, slowest_up) = pace(&mut sampler, &exporter, 10, interval, &mut mono);
    for slowest in [slowest_down, slowest_up] {
        assert!(
            slowest < interval / 2,
            "export() took {slowest:?}, it must never wait for the collector"
        );
    }

    // Samples queued while it was down arrive too, with their own times.
    let all: Vec<&Sample> = before
        .iter()
        .chain(&after)
        .flat_map(|t| &t.samples)
        .collect();
    let points = rotel.wait_points(Duration::from_secs(20), |p| {
        p.iter().filter(|p| p.metric == names::PACKETS).count() >= all.len()
    });
    assert_mirrors(&points, &all);
    let fin = exporter.shutdown(Duration::from_secs(5));
    assert_eq!(fin.state, ExportState::Ok, "recovered by itself: {fin:?}");
    assert_eq!((fin.dropped, fin.last_error), (0, None));
    assert_eq!(fin.exported, all.len() as u64);
    let states: Vec<ExportState> = status.try_iter().map(|s| s.state).collect();
    assert_eq!(states.last(), Some(&ExportState::Ok), "{states:?}");
}

#[test]
fn black_holed_collector_never_blocks_and_memory_stays_bounded() {
    // Accepts connections and never answers: the worst kind of collector.
    let hole = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = hole.local_addr().expect("addr").port();
    let mut cfg = config(&format!("127.0.0.1:{port}"), Protocol::Grpc);
    cfg.timeout = Duration::from_millis(300);
    cfg.queue_samples = 8;
    let (exporter, status) = start(&cfg);
    let mut sampler = steady_source();
    let mut mono = 0;
    let interval = Duration::from_millis(50);
    let (_, slowest) = pace(&mut sampler, &exporter, 30, interval, &mut mono);
    assert!(slowest < interval / 2, "export() took {slowest:?}");
    assert!(
        exporter.dropped() >= 30 - 2 * 8,
        "8 samples queued plus at most 8 in flight; older ones are dropped and counted \
         (dropped {})",
        exporter.dropped()
    );
    let failing = status
        .recv_timeout(Duration::from_secs(5))
        .expect("a status after the request timeout");
    assert_eq!(failing.state, ExportState::Failing);

    let t0 = Instant::now();
    let fin = exporter.shutdown(Duration::from_secs(1));
    assert!(
        t0.elapsed() < Duration::from_millis(1300),
        "shutdown took {:?} against a black hole",
        t0.elapsed()
    );
    assert_eq!(fin.state, ExportState::Failing, "{fin:?}");
    assert!(fin.dropped >= 30 - 2 * 8, "{fin:?}");
    drop(hole);
}

#[test]
fn shutdown_pushes_the_last_sample_promptly() {
    let rotel = Rotel::start();
    let (exporter, _status) = start(&config(&rotel.grpc_endpoint(), Protocol::Grpc));
    let mut sampler = steady_source();
    let ticks: Vec<Tick> = (0..3)
        .map(|i| sampler.sample(wall_ns() + i, i * SEC))
        .collect();
    for t in &ticks {
        exporter.export(t);
    }
    // No pause: the worker may not even have started sending.
    let t0 = Instant::now();
    let fin = exporter.shutdown(Duration::from_secs(3));
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    assert_eq!(fin.exported, 3, "{fin:?}");
    let last = &ticks[2].samples[0];
    rotel.wait_points(Duration::from_secs(10), |p| {
        p.iter().any(|p| {
            p.metric == names::PACKETS
                && p.time_unix_nano == last.time_unix_nano
                && p.value_f64() == last.packets as f64
        })
    });
}

/// Sampling every 100 ms with a 1 s export interval: the collector gets
/// about one request a second, each carrying every sample since the
/// previous one, and still every sample exactly once with its own time.
#[test]
fn requests_are_paced_by_the_export_interval() {
    let rotel = Rotel::start();
    let mut cfg = config(&rotel.grpc_endpoint(), Protocol::Grpc);
    cfg.export_interval = Duration::from_secs(1);
    let (exporter, status) = start(&cfg);
    let mut sampler = steady_source();
    let mut mono = 0;
    let n = 30;
    let interval = Duration::from_millis(100);
    let (ticks, slowest) = pace(&mut sampler, &exporter, n, interval, &mut mono);
    assert!(slowest < interval / 2, "export() took {slowest:?}");
    // What the last wake left queued goes out in the last push.
    let fin = exporter.shutdown(Duration::from_secs(5));
    assert_eq!(
        (fin.state.clone(), fin.exported, fin.dropped),
        (ExportState::Ok, n as u64, 0),
        "{fin:?}"
    );

    let samples = all_samples(&ticks);
    rotel.wait_points(Duration::from_secs(15), |p| {
        p.len() >= samples.len() * METRICS.len()
    });
    // A little longer: duplicates would arrive now.
    std::thread::sleep(Duration::from_millis(500));
    let points = rotel.points();
    assert_mirrors(&points, &samples);

    // Requests as rotel logged them, and as the exporter counted its
    // attempts (one status each): the same number.
    let mut per_request: BTreeMap<usize, usize> = BTreeMap::new();
    for p in points.iter().filter(|p| p.metric == names::PACKETS) {
        *per_request.entry(p.request).or_default() += 1;
    }
    let attempts = status.try_iter().count();
    assert_eq!(per_request.len(), attempts, "{per_request:?}");
    // 3 s of samples: the first at once, then one request about every
    // second (every 9th or 10th sample), then the last push: 5 when the
    // sleeps are on time, a few more on a loaded machine; 30 without
    // pacing.
    assert!(
        (3..=8).contains(&per_request.len()),
        "{} requests for {n} samples: {per_request:?}",
        per_request.len()
    );
    let sizes: Vec<usize> = per_request.values().copied().collect();
    eprintln!("samples per request: {sizes:?}");
    // (One more only if the worker took over 100 ms to wake.)
    assert!(sizes[0] <= 2, "the first sample goes at once: {sizes:?}");
    assert!(
        sizes.iter().any(|&k| k >= 5),
        "requests carry many samples: {sizes:?}"
    );
}

#[test]
fn bad_endpoint_is_a_clear_error() {
    let err = OtlpConfig::resolve(
        &OtlpArgs {
            endpoint: Some("localhost".into()),
            ..OtlpArgs::default()
        },
        &|_| None,
    )
    .expect_err("no port");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("--otlp") && msg.contains("localhost:4317"),
        "names the flag and shows the form that works: {msg}"
    );
}

fn one_interface_ticks(name: &str, n: u64) -> Vec<Tick> {
    let readings = (0..n).map(|i| reading(i * 10, i * 1_000)).collect();
    let mut s = Sampler::new(vec![fake(name, Mode::Skb, readings)]);
    let base = wall_ns();
    (0..n).map(|i| s.sample(base + i * SEC, i * SEC)).collect()
}

fn tls_config(front: &TlsFront, protocol: Protocol, ca: bool) -> OtlpConfig {
    OtlpConfig::resolve(
        &OtlpArgs {
            endpoint: Some(format!("https://127.0.0.1:{}", front.addr.port())),
            protocol: Some(protocol),
            headers: Vec::new(),
            ca_file: ca.then(|| front.ca_file().to_owned()),
            export_interval: None,
        },
        &|_| None,
    )
    .expect("valid config")
    .expect("export on")
}

#[test]
fn https_with_a_private_ca_file_over_grpc_and_http() {
    let rotel = Rotel::start();
    for (backend, protocol, iface) in [
        (rotel.grpc, Protocol::Grpc, "tls-grpc"),
        (rotel.http, Protocol::HttpProtobuf, "tls-http"),
    ] {
        let front = TlsFront::start(backend);
        let (exporter, _status) = start(&unpaced(tls_config(&front, protocol, true)));
        let ticks = one_interface_ticks(iface, 3);
        for t in &ticks {
            exporter.export(t);
        }
        let points = rotel.wait_points(Duration::from_secs(15), |p| {
            p.iter()
                .filter(|p| p.attr(names::ATTR_INTERFACE) == Some(iface))
                .count()
                >= 3 * METRICS.len()
        });
        let mine: Vec<LoggedPoint> = points
            .into_iter()
            .filter(|p| p.attr(names::ATTR_INTERFACE) == Some(iface))
            .collect();
        assert_mirrors(&mine, &all_samples(&ticks));
        let fin = exporter.shutdown(Duration::from_secs(5));
        assert_eq!((fin.state, fin.exported), (ExportState::Ok, 3), "{iface}");
    }
}

#[test]
fn https_refuses_a_collector_it_does_not_trust() {
    let rotel = Rotel::start();
    let front = TlsFront::start(rotel.grpc);
    // No CA file: the system roots do not know the test CA.
    let (exporter, status) = start(&tls_config(&front, Protocol::Grpc, false));
    exporter.export(&one_interface_ticks("veth-a", 1)[0]);
    let s = status
        .recv_timeout(Duration::from_secs(10))
        .expect("a status");
    assert_eq!(s.state, ExportState::Failing, "{s:?}");
    let err = s.last_error.unwrap_or_default().to_lowercase();
    assert!(
        err.contains("certificate") || err.contains("issuer"),
        "the error names the certificate problem: {err}"
    );
    let t0 = Instant::now();
    exporter.shutdown(Duration::from_secs(1));
    assert!(t0.elapsed() < Duration::from_millis(1300));
    assert!(rotel.points().is_empty(), "nothing got through");
}

/// A gRPC metrics receiver that records each request's metadata and
/// refuses those without the expected `authorization` (rotel checks none).
struct Guarded {
    token: &'static str,
    seen: std::sync::Arc<std::sync::Mutex<Vec<tonic::metadata::MetadataMap>>>,
}

#[tonic::async_trait]
impl opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::MetricsService
    for Guarded
{
    async fn export(
        &self,
        req: tonic::Request<
            opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest,
        >,
    ) -> Result<
        tonic::Response<
            opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse,
        >,
        tonic::Status,
    > {
        let meta = req.metadata().clone();
        let ok = meta.get("authorization").and_then(|v| v.to_str().ok()) == Some(self.token);
        self.seen.lock().expect("lock").push(meta);
        if ok {
            Ok(tonic::Response::new(Default::default()))
        } else {
            Err(tonic::Status::unauthenticated("bad token"))
        }
    }
}

#[test]
fn grpc_carries_the_auth_headers_and_a_refusal_is_clear() {
    use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::MetricsServiceServer;

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let port = free_port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let server = tonic::transport::Server::builder()
        .add_service(MetricsServiceServer::new(Guarded {
            token: "Bearer s3cret",
            seen: std::sync::Arc::clone(&seen),
        }))
        .serve(([127, 0, 0, 1], port).into());
    rt.spawn(server);
    let endpoint = format!("127.0.0.1:{port}");
    let with_headers = |headers: &[&str]| {
        let mut cfg = OtlpConfig::resolve(
            &OtlpArgs {
                endpoint: Some(endpoint.clone()),
                protocol: Some(Protocol::Grpc),
                headers: headers.iter().map(|h| h.to_string()).collect(),
                ca_file: None,
                export_interval: None,
            },
            &|k| (k == "OTEL_EXPORTER_OTLP_HEADERS").then(|| "x-tenant=blue".to_owned()),
        )
        .expect("valid config")
        .expect("export on");
        cfg.timeout = Duration::from_secs(3);
        cfg
    };
    let ticks = one_interface_ticks("veth-a", 1);

    // The right token (flag) and the variable's header both arrive.
    let (exporter, status) = start(&with_headers(&["authorization=Bearer s3cret"]));
    exporter.export(&ticks[0]);
    let s = status
        .recv_timeout(Duration::from_secs(10))
        .expect("a status");
    assert_eq!(s.state, ExportState::Ok, "{s:?}");
    exporter.shutdown(Duration::from_secs(1));
    {
        let seen = seen.lock().expect("lock");
        let meta = seen.last().expect("a request arrived");
        assert_eq!(
            meta.get("authorization").and_then(|v| v.to_str().ok()),
            Some("Bearer s3cret")
        );
        assert_eq!(
            meta.get("x-tenant").and_then(|v| v.to_str().ok()),
            Some("blue")
        );
    }

    // A wrong token: the status says failing and names the refusal.
    let (exporter, status) = start(&with_headers(&["authorization=Bearer wrong"]));
    exporter.export(&ticks[0]);
    let s = status
        .recv_timeout(Duration::from_secs(10))
        .expect("a status");
    assert_eq!(s.state, ExportState::Failing, "{s:?}");
    let err = s.last_error.clone().unwrap_or_default();
    assert!(
        err.to_lowercase().contains("unauthenticated") && err.contains("bad token"),
        "the refusal is named: {err}"
    );
    let t0 = Instant::now();
    exporter.shutdown(Duration::from_secs(1));
    assert!(t0.elapsed() < Duration::from_millis(1300));
    // The refused sample was tried again in the last push, same header.
    let seen = seen.lock().expect("lock");
    assert!(seen.len() >= 2);
    assert!(
        seen[1..]
            .iter()
            .all(|m| m.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer wrong"))
    );
}

/// Issues 15 and 16 through the real exporter to a real collector: the
/// run-time gauge where a sample knows it, and with `with_talkers(2)` (as
/// `--talkers-export 2` sets) a gauge point per listed source and service,
/// the top 2 only, with the OTel attribute names.
#[test]
fn run_time_and_top_talkers_reach_the_collector() {
    let rotel = Rotel::start();
    let (exporter, _status) = start(&unpaced(config(&rotel.grpc_endpoint(), Protocol::Grpc)));
    let exporter = exporter.with_talkers(2);
    let (first, second) = support::ticks::talkers_and_run_time();
    exporter.export(&first);
    exporter.export(&second);
    let t = second.samples[0].time_unix_nano;
    // 2 × 5 interface points, 1 run time, 2 × (2 sources + 2 services).
    rotel.wait_points(Duration::from_secs(15), |p| p.len() >= 10 + 1 + 8);
    std::thread::sleep(Duration::from_millis(300));
    let points = rotel.points();
    let of = |metric: &str| -> Vec<&LoggedPoint> {
        points.iter().filter(|p| p.metric == metric).collect()
    };
    let run = of(names::RUN_TIME_PER_PACKET);
    assert_eq!(run.len(), 1, "only the sample that knows it: {run:?}");
    assert_eq!(
        (run[0].unit.as_str(), run[0].data_type.as_str()),
        ("ns", "Gauge")
    );
    assert_eq!((run[0].time_unix_nano, run[0].value_f64()), (t, 40.0));
    assert_eq!(run[0].attr(names::ATTR_INTERFACE), Some("veth-t"));

    let sources = |metric: &str| -> Vec<(String, f64)> {
        of(metric)
            .iter()
            .map(|p| {
                assert_eq!(p.data_type, "Gauge", "{metric}");
                assert_eq!(p.time_unix_nano, t);
                assert_eq!(p.attr(names::ATTR_INTERFACE), Some("veth-t"));
                assert_eq!(p.attr(names::ATTR_MODE), Some("native"));
                (
                    p.attr(names::ATTR_SOURCE)
                        .expect("source.address")
                        .to_owned(),
                    p.value_f64(),
                )
            })
            .collect()
    };
    assert_eq!(
        sources(names::TALKER_PACKET_RATE),
        [
            ("198.18.0.10".to_owned(), 250.0),
            ("2001:2::10".to_owned(), 200.0)
        ]
    );
    assert_eq!(
        sources(names::TALKER_BIT_RATE),
        [
            ("198.18.0.10".to_owned(), 200_000.0),
            ("2001:2::10".to_owned(), 160_000.0)
        ]
    );
    assert_eq!(of(names::TALKER_PACKET_RATE)[0].unit, "{packet}/s");
    assert_eq!(of(names::TALKER_BIT_RATE)[0].unit, "bit/s");
    let services: Vec<(String, String, f64)> = of(names::SERVICE_PACKET_RATE)
        .iter()
        .map(|p| {
            (
                p.attr(names::ATTR_TRANSPORT).expect("transport").to_owned(),
                p.attr(names::ATTR_PORT).expect("port").to_owned(),
                p.value_f64(),
            )
        })
        .collect();
    // The port is an integer attribute, as OTel's destination.port is.
    assert_eq!(
        services,
        [
            ("udp".to_owned(), "Int(53)".to_owned(), 300.0),
            ("tcp".to_owned(), "Int(443)".to_owned(), 150.0)
        ]
    );
    assert_eq!(of(names::SERVICE_BIT_RATE).len(), 2);
    // The interface's own metrics are unchanged beside them.
    assert_mirrors(&points, &[&first.samples[0], &second.samples[0]]);
    let fin = exporter.shutdown(Duration::from_secs(5));
    assert_eq!((fin.exported, fin.dropped), (2, 0), "{fin:?}");
}
