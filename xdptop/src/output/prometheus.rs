//! `--prometheus ADDR`: xdptop's own `/metrics` endpoint, for hosts that
//! Prometheus scrapes directly instead of receiving OTLP through a collector.
//!
//! It serves the same `Tick`s the dashboard shows, under exactly the series
//! names and labels that the OpenTelemetry Collector's `prometheus` exporter
//! (contrib, `namespace: xdp`) gives xdptop's OTLP metrics, so one Grafana
//! dashboard and one set of alerts work on either path (see
//! `compose/README.md` for the mapping and where it comes from):
//!
//! The names, units and help texts are [`names::METRICS`]; the README and
//! `compose/README.md` show the same table.
//!
//! Labels: `network_interface_name`, `xdp_mode`, `host_name` (and
//! `xdp_action` on the per-verdict series, `source_address` or
//! `network_transport` + `destination_port` on the talker series, as the
//! collector makes of those attributes). The collector
//! path adds `job`/`instance` (from `service.name`/`service.instance.id`),
//! `otel_scope_*` and its const label `env`; on the direct path Prometheus
//! sets `job`/`instance` from its scrape config.
//!
//! The HTTP server runs on its own thread; [`PrometheusEndpoint::update`] only
//! swaps a pointer, so the sampler or the dashboard never waits on a scrape.

use std::{
    io::Read as _,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    thread,
};

use anyhow::{Context as _, anyhow};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric as _},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
    registry::Registry,
};

use super::names::{
    self, Kind, LABEL_ACTION, LABEL_HOST, LABEL_INTERFACE, LABEL_MODE, TalkerValues, Value, Values,
};
use crate::sampler::Tick;

const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// One interface's numbers from the latest tick.
#[derive(Clone, Debug)]
struct Series {
    interface: Arc<str>,
    mode: &'static str,
    values: Values,
    /// With `--talkers-export N`: the top N sources and services.
    talkers: Option<TalkerValues>,
}

/// What the next scrape reports. Replaced whole on every update.
#[derive(Debug, Default)]
struct Snapshot {
    series: Vec<Series>,
}

#[derive(Debug)]
struct Shared {
    host: String,
    latest: Mutex<Arc<Snapshot>>,
}

impl Shared {
    fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.latest.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Encodes the latest snapshot at scrape time. The counters are the kernel's
/// cumulative values, so they are constants per scrape, not `inc()`ed here.
#[derive(Debug)]
struct TickCollector(Arc<Shared>);

impl Collector for TickCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snap = self.0.snapshot();
        let host = self.0.host.as_str();
        let labels = |s: &Series| {
            [
                (LABEL_INTERFACE, s.interface.to_string()),
                (LABEL_MODE, s.mode.to_owned()),
                (LABEL_HOST, host.to_owned()),
            ]
        };
        // The encoder appends `_total` to counter names itself.
        let base = |name: &'static str| name.strip_suffix("_total").unwrap_or(name);
        for m in &names::METRICS {
            let (name, kind) = match m.kind {
                Kind::Counter => (base(m.prometheus), MetricType::Counter),
                Kind::Gauge => (m.prometheus, MetricType::Gauge),
            };
            let mut family = encoder.encode_descriptor(name, m.description, None, kind)?;
            for s in &snap.series {
                let set = labels(s);
                match (m.kind, s.values.get(m.id)) {
                    (Kind::Counter, Value::Int(v)) => {
                        ConstCounter::new(v).encode(family.encode_family(&set)?)?
                    }
                    (Kind::Counter, Value::Double(v)) => {
                        ConstCounter::new(v).encode(family.encode_family(&set)?)?
                    }
                    (Kind::Gauge, Value::Int(v)) => {
                        ConstGauge::new(v as f64).encode(family.encode_family(&set)?)?
                    }
                    (Kind::Gauge, Value::Double(v)) => {
                        ConstGauge::new(v).encode(family.encode_family(&set)?)?
                    }
                }
            }
        }
        // Per verdict, for the interfaces whose samples carry verdicts.
        if snap.series.iter().any(|s| s.values.actions.is_some()) {
            for m in &names::ACTION_METRICS {
                let mut family = encoder.encode_descriptor(
                    base(m.prometheus),
                    m.description,
                    None,
                    MetricType::Counter,
                )?;
                for s in &snap.series {
                    let Some(totals) = &s.values.actions else {
                        continue;
                    };
                    for (i, c) in totals.iter().enumerate() {
                        let [a, b, c2] = labels(s);
                        let set = [
                            a,
                            b,
                            c2,
                            (LABEL_ACTION, xdp_ebpf::action::NAMES[i].to_owned()),
                        ];
                        ConstCounter::new(m.id.of(c)).encode(family.encode_family(&set)?)?;
                    }
                }
            }
        }
        // The run time, where known.
        if snap
            .series
            .iter()
            .any(|s| s.values.run_ns_per_packet.is_some())
        {
            let m = &names::RUN_TIME;
            let mut family =
                encoder.encode_descriptor(m.prometheus, m.description, None, MetricType::Gauge)?;
            for s in &snap.series {
                if let Some(ns) = s.values.run_ns_per_packet {
                    ConstGauge::new(ns).encode(family.encode_family(&labels(s))?)?;
                }
            }
        }
        // Per source and per service, with --talkers-export.
        for m in &names::TALKER_METRICS {
            let listed = |s: &Series| -> usize {
                s.talkers.as_ref().map_or(0, |t| t.entries(m.listing).len())
            };
            if !snap.series.iter().any(|s| listed(s) > 0) {
                continue;
            }
            let mut family =
                encoder.encode_descriptor(m.prometheus, m.description, None, MetricType::Gauge)?;
            for s in &snap.series {
                let Some(t) = &s.talkers else { continue };
                for e in t.entries(m.listing) {
                    let mut set: Vec<(String, String)> = labels(s)
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect();
                    set.extend(
                        e.attrs
                            .iter()
                            .map(|(k, v)| (names::prometheus_label(k), v.to_string())),
                    );
                    ConstGauge::new(m.value(e)).encode(family.encode_family(&set)?)?;
                }
            }
        }
        Ok(())
    }
}

/// A running `/metrics` endpoint. Dropping it stops the server thread.
pub struct PrometheusEndpoint {
    shared: Arc<Shared>,
    server: Arc<tiny_http::Server>,
    local_addr: SocketAddr,
    thread: Option<thread::JoinHandle<()>>,
    /// `--talkers-export N`: sources and services served per interface.
    talkers: usize,
}

impl std::fmt::Debug for PrometheusEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusEndpoint")
            .field("local_addr", &self.local_addr)
            .field("host", &self.shared.host)
            .finish()
    }
}

impl PrometheusEndpoint {
    /// Starts serving `http://ADDR/metrics`, labelling series with
    /// [`default_host_name`]. Port 0 picks a free port (see [`Self::local_addr`]).
    pub fn start(addr: SocketAddr) -> anyhow::Result<Self> {
        Self::start_with_host(addr, default_host_name())
    }

    /// As [`Self::start`], with an explicit `host_name` label value: pass the
    /// `host.name` the OTLP resource uses so both paths give the same series.
    pub fn start_with_host(addr: SocketAddr, host: impl Into<String>) -> anyhow::Result<Self> {
        let server = tiny_http::Server::http(addr)
            .map_err(|e| anyhow!("{e}"))
            .with_context(|| {
                format!(
                    "--prometheus {addr}: cannot listen there (address in use, or not one of \
                     this host's addresses?)"
                )
            })?;
        let local_addr = server
            .server_addr()
            .to_ip()
            .context("the /metrics server is not on an IP address")?;
        let server = Arc::new(server);
        let mut registry = Registry::default();
        let shared = Arc::new(Shared {
            host: host.into(),
            latest: Mutex::new(Arc::new(Snapshot::default())),
        });
        registry.register_collector(Box::new(TickCollector(Arc::clone(&shared))));
        let thread = thread::Builder::new()
            .name("prometheus".into())
            .spawn({
                let server = Arc::clone(&server);
                move || serve(&server, &registry)
            })
            .context("spawning the /metrics server thread")?;
        Ok(Self {
            shared,
            server,
            local_addr,
            thread: Some(thread),
            talkers: 0,
        })
    }

    /// Serves the top `n` sources and services of each sample that lists
    /// talkers (`--talkers-export N`; 0, the default: none).
    pub fn with_talkers(mut self, n: usize) -> Self {
        self.talkers = n;
        self
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Makes `tick` what the next scrape reports. Cheap: it copies a few
    /// numbers per interface and swaps a pointer; it never waits for a scrape.
    pub fn update(&self, tick: &Tick) {
        let series = tick
            .samples
            .iter()
            .map(|s| Series {
                interface: Arc::clone(&s.interface),
                mode: s.mode.as_str(),
                values: Values::of(s),
                talkers: TalkerValues::of(s, self.talkers),
            })
            .collect();
        let snap = Arc::new(Snapshot { series });
        // The lock only guards the pointer swap; encoding happens on a clone.
        *self
            .shared
            .latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = snap;
    }
}

impl Drop for PrometheusEndpoint {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `host.name` from `OTEL_RESOURCE_ATTRIBUTES` if set there (as the OTLP
/// resource would use it), else [`crate::host::name`].
pub fn default_host_name() -> String {
    std::env::var("OTEL_RESOURCE_ATTRIBUTES")
        .ok()
        .and_then(|attrs| host_from_resource_attributes(&attrs))
        .unwrap_or_else(crate::host::name)
}

/// `host.name` out of an `OTEL_RESOURCE_ATTRIBUTES` value (`k=v,k=v`).
fn host_from_resource_attributes(attrs: &str) -> Option<String> {
    attrs.split(',').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k.trim() == "host.name" && !v.trim().is_empty()).then(|| v.trim().to_owned())
    })
}

fn serve(server: &tiny_http::Server, registry: &Registry) {
    // `recv` fails once `unblock` is called from Drop.
    while let Ok(mut req) = server.recv() {
        // Drain a body if any, so keep-alive connections stay in sync.
        let _ = std::io::copy(&mut req.as_reader().take(64 * 1024), &mut std::io::sink());
        let response = respond(&req, registry);
        if let Err(e) = req.respond(response) {
            log::debug!("/metrics: writing the response failed: {e}");
        }
    }
}

fn respond(
    req: &tiny_http::Request,
    registry: &Registry,
) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let path = req.url().split('?').next().unwrap_or("");
    if path != "/metrics" {
        return text(
            404,
            "text/plain; charset=utf-8",
            "not found: try /metrics\n".into(),
        );
    }
    if !matches!(
        req.method(),
        tiny_http::Method::Get | tiny_http::Method::Head
    ) {
        return text(405, "text/plain; charset=utf-8", "use GET\n".into());
    }
    // Prometheus asks for OpenMetrics first; anything else gets the classic
    // text format, which every scraper and `curl` reads.
    let openmetrics = req.headers().iter().any(|h| {
        h.field.equiv("Accept") && h.value.as_str().contains("application/openmetrics-text")
    });
    let mut body = String::new();
    let (encoded, content_type) = if openmetrics {
        (
            prometheus_client::encoding::text::encode(&mut body, registry),
            OPENMETRICS_CONTENT_TYPE,
        )
    } else {
        (
            prometheus_client::encoding::prometheus_text::encode(&mut body, registry),
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        )
    };
    match encoded {
        Ok(()) => text(200, content_type, body),
        Err(_) => text(500, "text/plain; charset=utf-8", "encoding failed\n".into()),
    }
}

fn text(
    status: u16,
    content_type: &str,
    body: String,
) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let mut r = tiny_http::Response::from_data(body.into_bytes()).with_status_code(status);
    if let Ok(h) = tiny_http::Header::from_bytes(&b"Content-Type"[..], content_type.as_bytes()) {
        r.add_header(h);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_name_comes_from_resource_attributes_when_set() {
        assert_eq!(
            host_from_resource_attributes("service.namespace=lab, host.name = edge-1 ,x=y"),
            Some("edge-1".to_owned())
        );
        assert_eq!(host_from_resource_attributes("host.name="), None);
        assert_eq!(host_from_resource_attributes("a=b"), None);
    }
}
