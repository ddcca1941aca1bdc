//! Sends encoded requests over OTLP/gRPC (tonic) or OTLP/HTTP (reqwest).
//! Every call is bounded by the configured timeout; connections are made
//! lazily and re-made after failures by the clients themselves.

use anyhow::Context as _;
use opentelemetry_proto::tonic::collector::{
    metrics::v1::{ExportMetricsServiceRequest, metrics_service_client::MetricsServiceClient},
    trace::v1::{ExportTraceServiceRequest, trace_service_client::TraceServiceClient},
};
use prost::Message as _;
use tonic::{
    metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap},
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint},
};

use super::config::{OtlpConfig, Protocol};

// One per exporter, built once: the size difference between variants costs
// nothing worth a Box.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Client {
    Grpc {
        metrics: MetricsServiceClient<Channel>,
        traces: TraceServiceClient<Channel>,
        headers: MetadataMap,
        timeout: std::time::Duration,
    },
    Http {
        client: reqwest::Client,
        metrics_url: String,
        traces_url: String,
    },
    /// Records requests in memory (worker tests).
    #[cfg(test)]
    Fake(fake::Collector),
}

impl Client {
    /// Needs a tokio runtime context (tonic spawns its connection task).
    pub fn new(cfg: &OtlpConfig) -> anyhow::Result<Self> {
        let ca = match &cfg.ca_file {
            Some(p) => Some(
                std::fs::read(p)
                    .with_context(|| format!("cannot read the OTLP CA file {}", p.display()))?,
            ),
            None => None,
        };
        match cfg.protocol {
            Protocol::Grpc => {
                let mut endpoint = Endpoint::from_shared(cfg.endpoint.clone())
                    .with_context(|| format!("OTLP endpoint {}", cfg.endpoint))?
                    .connect_timeout(cfg.timeout)
                    .timeout(cfg.timeout)
                    .tcp_nodelay(true)
                    .user_agent(concat!("xdptop/", env!("CARGO_PKG_VERSION")))?;
                if cfg.endpoint.starts_with("https://") {
                    let tls = match &ca {
                        Some(pem) => {
                            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem))
                        }
                        None => ClientTlsConfig::new().with_native_roots(),
                    };
                    endpoint = endpoint
                        .tls_config(tls)
                        .context("setting up TLS for the OTLP endpoint")?;
                }
                let channel = endpoint.connect_lazy();
                let mut headers = MetadataMap::new();
                for (k, v) in &cfg.headers {
                    let key = AsciiMetadataKey::from_bytes(k.as_bytes())
                        .with_context(|| format!("OTLP header name {k:?}"))?;
                    let value = AsciiMetadataValue::try_from(v.as_str())
                        .with_context(|| format!("OTLP header {k:?} value"))?;
                    headers.insert(key, value);
                }
                Ok(Client::Grpc {
                    metrics: MetricsServiceClient::new(channel.clone()),
                    traces: TraceServiceClient::new(channel),
                    headers,
                    timeout: cfg.timeout,
                })
            }
            Protocol::HttpProtobuf => {
                let mut headers = reqwest::header::HeaderMap::new();
                for (k, v) in &cfg.headers {
                    headers.insert(
                        reqwest::header::HeaderName::from_bytes(k.as_bytes())
                            .with_context(|| format!("OTLP header name {k:?}"))?,
                        reqwest::header::HeaderValue::from_str(v)
                            .with_context(|| format!("OTLP header {k:?} value"))?,
                    );
                }
                let mut builder = reqwest::Client::builder()
                    .timeout(cfg.timeout)
                    .connect_timeout(cfg.timeout)
                    .user_agent(concat!("xdptop/", env!("CARGO_PKG_VERSION")))
                    .default_headers(headers);
                if let Some(pem) = &ca {
                    builder = builder.add_root_certificate(
                        reqwest::Certificate::from_pem(pem)
                            .context("the OTLP CA file is not a PEM certificate")?,
                    );
                }
                Ok(Client::Http {
                    client: builder.build().context("building the OTLP HTTP client")?,
                    metrics_url: format!("{}/v1/metrics", cfg.endpoint),
                    traces_url: format!("{}/v1/traces", cfg.endpoint),
                })
            }
        }
    }

    pub async fn send_metrics(&mut self, req: ExportMetricsServiceRequest) -> Result<(), String> {
        match self {
            Client::Grpc {
                metrics,
                headers,
                timeout,
                ..
            } => {
                let req = grpc_request(req, headers, *timeout);
                let resp = metrics.export(req).await.map_err(grpc_error)?;
                match resp.into_inner().partial_success {
                    Some(p) if p.rejected_data_points > 0 => Err(format!(
                        "collector rejected {} data points: {}",
                        p.rejected_data_points, p.error_message
                    )),
                    _ => Ok(()),
                }
            }
            Client::Http {
                client,
                metrics_url,
                ..
            } => post(client, metrics_url, req.encode_to_vec()).await,
            #[cfg(test)]
            Client::Fake(c) => {
                tokio::time::sleep(c.delay).await;
                c.metrics(&req)
            }
        }
    }

    pub async fn send_traces(&mut self, req: ExportTraceServiceRequest) -> Result<(), String> {
        match self {
            Client::Grpc {
                traces,
                headers,
                timeout,
                ..
            } => {
                let req = grpc_request(req, headers, *timeout);
                traces.export(req).await.map_err(grpc_error)?;
                Ok(())
            }
            Client::Http {
                client, traces_url, ..
            } => post(client, traces_url, req.encode_to_vec()).await,
            #[cfg(test)]
            Client::Fake(c) => c.traces(&req),
        }
    }
}

#[cfg(test)]
pub(crate) mod fake {
    use std::sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    };

    use opentelemetry_proto::tonic::{
        collector::{
            metrics::v1::ExportMetricsServiceRequest, trace::v1::ExportTraceServiceRequest,
        },
        metrics::v1::metric,
    };

    /// A collector in memory: what each metrics request carried, and a
    /// number of metrics requests to refuse first.
    #[derive(Clone, Default)]
    pub(crate) struct Collector {
        /// Per accepted metrics request, the time of each sample in it (as
        /// the first metric, `xdp.packets`, carries them).
        pub requests: Arc<Mutex<Vec<Vec<u64>>>>,
        pub spans: Arc<AtomicUsize>,
        pub refuse: Arc<AtomicUsize>,
        /// Metrics requests refused so far.
        pub refused: Arc<AtomicUsize>,
        /// How long each metrics request takes.
        pub delay: std::time::Duration,
    }

    impl Collector {
        pub fn metrics(&self, req: &ExportMetricsServiceRequest) -> Result<(), String> {
            if self
                .refuse
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                self.refused.fetch_add(1, Ordering::SeqCst);
                return Err("refused by the fake collector".into());
            }
            let times = req
                .resource_metrics
                .iter()
                .flat_map(|r| &r.scope_metrics)
                .filter_map(|s| s.metrics.first())
                .flat_map(|m| match &m.data {
                    Some(metric::Data::Sum(sum)) => {
                        sum.data_points.iter().map(|p| p.time_unix_nano).collect()
                    }
                    _ => Vec::new(),
                })
                .collect();
            self.requests
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(times);
            Ok(())
        }

        pub fn traces(&self, req: &ExportTraceServiceRequest) -> Result<(), String> {
            let n = req
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len())
                .sum::<usize>();
            self.spans.fetch_add(n, Ordering::SeqCst);
            Ok(())
        }

        /// A copy of the requests so far.
        pub fn requests(&self) -> Vec<Vec<u64>> {
            self.requests
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone()
        }
    }
}

fn grpc_request<T>(
    msg: T,
    headers: &MetadataMap,
    timeout: std::time::Duration,
) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    *req.metadata_mut() = headers.clone();
    req.set_timeout(timeout);
    req
}

fn grpc_error(s: tonic::Status) -> String {
    use std::error::Error as _;
    // The transport's own message ("transport error") hides the cause
    // (connection refused, timed out...): walk to it.
    with_causes(format!("gRPC {:?}: {}", s.code(), s.message()), s.source())
}

/// `head: cause: cause...`, each cause once (tonic and hyper repeat their
/// sources in their own messages), plus a hint when the causes show that
/// one side spoke TLS and the other did not.
pub(crate) fn with_causes(head: String, mut src: Option<&dyn std::error::Error>) -> String {
    let mut msg = head;
    while let Some(e) = src {
        let text = e.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        src = e.source();
    }
    if msg.contains("InvalidContentType") || msg.contains("corrupt message") {
        msg.push_str(
            " (the TLS handshake failed: the collector does not answer TLS on this port; \
             use http://HOST:PORT if it is a plaintext collector)",
        );
    }
    msg
}

async fn post(client: &reqwest::Client, url: &str, body: Vec<u8>) -> Result<(), String> {
    let resp = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
        .body(body)
        .send()
        .await
        .map_err(|e| {
            use std::error::Error as _;
            with_causes(format!("POST {url}: {e}"), e.source())
        })?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let body = resp.bytes().await.unwrap_or_default();
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    Err(format!("POST {url}: HTTP {status} {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);
    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for E {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    /// The message a plaintext collector gave an https:// exporter before:
    /// the cause three times over and no word of TLS.
    #[test]
    fn a_tls_mismatch_is_named_and_causes_are_not_repeated() {
        let cause = "received corrupt message of type InvalidContentType";
        let inner = E(cause, None);
        let outer = E("transport error", Some(Box::new(inner)));
        let msg = with_causes(format!("gRPC Unavailable: {cause}"), Some(&outer));
        assert_eq!(msg.matches(cause).count(), 1, "{msg}");
        assert!(msg.contains("transport error"), "{msg}");
        assert!(msg.contains("TLS handshake failed"), "{msg}");
        assert!(msg.contains("http://"), "{msg}");
    }
}
