//! The validated OTLP settings: `--otlp*` flags over the standard `OTEL_*`
//! environment variables, checked once at startup so that a typo is a clear
//! error and not a silent stream of failed exports.
//!
//! Variables honoured (flags win over each):
//! - `OTEL_EXPORTER_OTLP_ENDPOINT`: enables export like `--otlp` does.
//! - `OTEL_EXPORTER_OTLP_PROTOCOL`: `grpc` or `http/protobuf`.
//! - `OTEL_EXPORTER_OTLP_HEADERS`: `k=v,k2=v2` (values percent-decoded);
//!   `--otlp-header` replaces a header of the same name.
//! - `OTEL_EXPORTER_OTLP_CERTIFICATE`: CA bundle (PEM) for https.
//! - `OTEL_EXPORTER_OTLP_TIMEOUT`: per-request timeout in milliseconds.
//! - `OTEL_METRIC_EXPORT_INTERVAL`: at most one request per this many
//!   milliseconds (`--otlp-interval`); default [`DEFAULT_EXPORT_INTERVAL`],
//!   not the spec's 60 s, so the collector stays close to the screen.
//! - `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context as _, bail};

use crate::output::names;

/// The OTLP transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/gRPC (default port 4317).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (default port 4318).
    HttpProtobuf,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
        }
    }

    fn parse(s: &str) -> anyhow::Result<Self> {
        match s.trim() {
            "grpc" => Ok(Protocol::Grpc),
            "http/protobuf" => Ok(Protocol::HttpProtobuf),
            "http/json" => {
                bail!("OTLP protocol http/json is not supported: use grpc or http/protobuf")
            }
            other => bail!("unknown OTLP protocol {other:?}: use grpc or http/protobuf"),
        }
    }
}

/// Per-request timeout when `OTEL_EXPORTER_OTLP_TIMEOUT` is unset. Shorter
/// than the spec's 10 s: a black-holed collector costs queue space, not time
/// on the sampling path, but we want to notice sooner.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Samples held while the collector is away (about 170 bytes each, with the
/// per-verdict counts); beyond
/// this the oldest are dropped and counted.
pub const DEFAULT_QUEUE_SAMPLES: usize = 4096;
/// At most one metrics request per this long when neither `--otlp-interval`
/// nor `OTEL_METRIC_EXPORT_INTERVAL` says otherwise. Prometheus scrapes the
/// collector every 15 s (compose/), so a fresher push changes nothing it
/// stores; each request costs far more CPU than a sample (the seed pushed
/// every 5 s too). The OTel spec's 60 s would leave Grafana a minute behind.
pub const DEFAULT_EXPORT_INTERVAL: Duration = Duration::from_secs(5);

/// What the command line says about OTLP, in the exporter's own types
/// (clap's stop in `config.rs`).
#[derive(Clone, Debug, Default)]
pub struct OtlpArgs {
    pub endpoint: Option<String>,
    pub protocol: Option<Protocol>,
    pub headers: Vec<String>,
    pub ca_file: Option<PathBuf>,
    pub export_interval: Option<Duration>,
}

#[derive(Clone, PartialEq)]
pub struct OtlpConfig {
    pub protocol: Protocol,
    /// `scheme://host:port` for gRPC; for HTTP the base URL, without a
    /// trailing slash, to which `/v1/metrics` and `/v1/traces` are appended.
    pub endpoint: String,
    /// Lower-case names, validated as HTTP header / gRPC metadata.
    pub headers: Vec<(String, String)>,
    /// PEM CA bundle trusted for https instead of the system roots.
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
    /// At most about one metrics request per this long: each carries every
    /// sample queued since the previous one. Zero sends one per `export`
    /// (not reachable from the command line; tests use it).
    pub export_interval: Duration,
    pub queue_samples: usize,
    /// Resource attributes, including `service.name`, `host.name` and
    /// `service.instance.id`.
    pub resource: Vec<(String, String)>,
}

impl OtlpConfig {
    /// `None` when neither `--otlp` nor `OTEL_EXPORTER_OTLP_ENDPOINT` asks
    /// for export. `env` looks up a variable (`std::env::var(..).ok()` in
    /// production; a map in tests).
    pub fn resolve(
        args: &OtlpArgs,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Option<Self>> {
        let env = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let (raw_endpoint, from_flag) = match (&args.endpoint, env("OTEL_EXPORTER_OTLP_ENDPOINT")) {
            (Some(e), _) => (e.clone(), true),
            (None, Some(e)) => (e, false),
            (None, None) => {
                if !args.headers.is_empty()
                    || args.ca_file.is_some()
                    || args.protocol.is_some()
                    || args.export_interval.is_some()
                {
                    bail!(
                        "--otlp-protocol/--otlp-header/--otlp-ca-file/--otlp-interval need \
                         --otlp ENDPOINT"
                    );
                }
                return Ok(None);
            }
        };
        let protocol = match (args.protocol, env("OTEL_EXPORTER_OTLP_PROTOCOL")) {
            (Some(p), _) => p,
            (None, Some(p)) => Protocol::parse(&p).context("in OTEL_EXPORTER_OTLP_PROTOCOL")?,
            (None, None) => Protocol::Grpc,
        };
        let source = if from_flag {
            "--otlp"
        } else {
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        };
        let endpoint = parse_endpoint(&raw_endpoint, protocol).with_context(|| {
            format!(
                "{source} {raw_endpoint:?} is not a usable OTLP endpoint (try localhost:4317, \
                 http://host:4317 or https://host:4317)"
            )
        })?;

        let mut headers = match env("OTEL_EXPORTER_OTLP_HEADERS") {
            Some(h) => parse_pairs(&h).context("in OTEL_EXPORTER_OTLP_HEADERS")?,
            None => Vec::new(),
        };
        for h in &args.headers {
            let (k, v) = h
                .split_once('=')
                .with_context(|| format!("--otlp-header {h:?}: write KEY=VALUE"))?;
            headers.retain(|(old, _)| !old.eq_ignore_ascii_case(k.trim()));
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        let headers = headers
            .into_iter()
            .map(|(k, v)| check_header(&k, &v).map(|()| (k.to_ascii_lowercase(), v)))
            .collect::<anyhow::Result<Vec<_>>>()?;

        let https = endpoint.starts_with("https://");
        let ca_file = match (&args.ca_file, env("OTEL_EXPORTER_OTLP_CERTIFICATE")) {
            (Some(p), _) => {
                if !https {
                    bail!("--otlp-ca-file is for https:// endpoints (got {endpoint})");
                }
                Some(p.clone())
            }
            // A CA in the environment is harmless for a plaintext endpoint.
            (None, Some(p)) if https => Some(PathBuf::from(p)),
            (None, _) => None,
        };
        if let Some(p) = &ca_file {
            let pem = std::fs::read(p)
                .with_context(|| format!("cannot read the OTLP CA file {}", p.display()))?;
            if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                bail!("OTLP CA file {} holds no PEM certificate", p.display());
            }
        }

        let timeout = match env("OTEL_EXPORTER_OTLP_TIMEOUT") {
            Some(ms) => positive_ms("OTEL_EXPORTER_OTLP_TIMEOUT", &ms)?,
            None => DEFAULT_TIMEOUT,
        };

        let export_interval = match (args.export_interval, env("OTEL_METRIC_EXPORT_INTERVAL")) {
            (Some(d), _) => {
                if d.is_zero() {
                    bail!("--otlp-interval must be more than 0 (e.g. 1s)");
                }
                d
            }
            (None, Some(ms)) => positive_ms("OTEL_METRIC_EXPORT_INTERVAL", &ms)?,
            (None, None) => DEFAULT_EXPORT_INTERVAL,
        };

        let resource = resource(&env)?;
        Ok(Some(Self {
            protocol,
            endpoint,
            headers,
            ca_file,
            timeout,
            export_interval,
            queue_samples: DEFAULT_QUEUE_SAMPLES,
            resource,
        }))
    }

    /// For the status line and logs: `otlp grpc http://localhost:4317`.
    pub fn target(&self) -> String {
        format!("otlp {} {}", self.protocol.as_str(), self.endpoint)
    }
}

/// Header values are often credentials: `{:?}` shows names only.
impl std::fmt::Debug for OtlpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(k, _)| format!("{k}=<redacted>"))
            .collect();
        f.debug_struct("OtlpConfig")
            .field("protocol", &self.protocol)
            .field("endpoint", &self.endpoint)
            .field("headers", &headers)
            .field("ca_file", &self.ca_file)
            .field("timeout", &self.timeout)
            .field("export_interval", &self.export_interval)
            .field("queue_samples", &self.queue_samples)
            .field("resource", &self.resource)
            .finish()
    }
}

/// Normalises an endpoint: `host:port` means plaintext (`http://host:port`);
/// `http://` and `https://` URLs are taken as they are.
pub fn parse_endpoint(raw: &str, protocol: Protocol) -> anyhow::Result<String> {
    let raw = raw.trim();
    if raw.is_empty() {
        bail!("the endpoint is empty");
    }
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("the endpoint contains spaces or control characters");
    }
    let has_scheme = raw.contains("://");
    if raw.ends_with("://") {
        bail!("no host after {raw}");
    }
    let full = if has_scheme {
        raw.to_owned()
    } else {
        format!("http://{raw}")
    };
    let uri: http::Uri = full.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => bail!("scheme {other}:// is not supported: use http:// or https://"),
        None => bail!("no scheme"),
    }
    let authority = uri.authority().context("no host")?;
    if authority.host().is_empty() {
        bail!("no host");
    }
    if authority.as_str().contains('@') {
        bail!("credentials in the URL are not supported: use --otlp-header");
    }
    // `http::Uri` reports a port that does not fit a u16 as no port at all:
    // look at the text, so the error says what is wrong with it.
    let port_text = authority
        .as_str()
        .rsplit_once(':')
        .filter(|(host, _)| !host.starts_with('[') || host.ends_with(']'))
        .map(|(_, port)| port);
    match port_text {
        Some(p)
            if !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (p.parse::<u16>().is_err() || uri.port_u16() == Some(0)) =>
        {
            bail!("port {p} is out of range: use 1 to 65535")
        }
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {}
        Some(p) if !p.is_empty() => bail!("invalid port {p:?}"),
        Some(_) => bail!("no port after the colon: write host:port, e.g. localhost:4317"),
        None if !has_scheme => bail!("no port: write host:port, e.g. localhost:4317"),
        None => {}
    }
    if uri.query().is_some() || raw.contains('#') {
        bail!("an OTLP endpoint takes no query or fragment");
    }
    let path = uri.path().trim_end_matches('/');
    if protocol == Protocol::Grpc && !path.is_empty() {
        bail!("a gRPC endpoint takes no path (got {path})");
    }
    let scheme = uri.scheme_str().unwrap_or("http");
    Ok(format!("{scheme}://{authority}{path}"))
}

/// `k=v,k2=v2` as in `OTEL_EXPORTER_OTLP_HEADERS` and
/// `OTEL_RESOURCE_ATTRIBUTES`: entries trimmed, values percent-decoded.
pub fn parse_pairs(s: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (k, v) = entry
            .split_once('=')
            .with_context(|| format!("{entry:?} is not key=value"))?;
        let k = percent_decode(k.trim()).with_context(|| format!("in {entry:?}"))?;
        let v = percent_decode(v.trim()).with_context(|| format!("in {entry:?}"))?;
        if k.is_empty() {
            bail!("{entry:?} has an empty key");
        }
        out.retain(|(old, _)| *old != k);
        out.push((k, v));
    }
    Ok(out)
}

/// A variable holding a duration in whole milliseconds, more than 0.
fn positive_ms(name: &str, value: &str) -> anyhow::Result<Duration> {
    let ms: u64 = value
        .trim()
        .parse()
        .with_context(|| format!("{name} {value:?} is not a whole number of milliseconds"))?;
    if ms == 0 {
        bail!("{name} must be more than 0 ms");
    }
    Ok(Duration::from_millis(ms))
}

fn percent_decode(s: &str) -> anyhow::Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .with_context(|| format!("bad percent escape in {s:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).with_context(|| format!("{s:?} does not decode to UTF-8"))
}

fn check_header(name: &str, value: &str) -> anyhow::Result<()> {
    http::HeaderName::from_bytes(name.as_bytes())
        .with_context(|| format!("OTLP header name {name:?} is not a valid header name"))?;
    http::HeaderValue::from_str(value)
        .with_context(|| format!("OTLP header {name:?} has a value that is not printable ASCII"))?;
    if name.eq_ignore_ascii_case("content-type") || name.starts_with(':') {
        bail!("OTLP header {name:?} is set by xdptop itself");
    }
    Ok(())
}

fn resource(env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Vec<(String, String)>> {
    let mut attrs = match env("OTEL_RESOURCE_ATTRIBUTES") {
        Some(s) => parse_pairs(&s).context("in OTEL_RESOURCE_ATTRIBUTES")?,
        None => Vec::new(),
    };
    let mut set = |k: &str, v: String, override_: bool| {
        if override_ {
            attrs.retain(|(old, _)| old != k);
        }
        if !attrs.iter().any(|(old, _)| old == k) {
            attrs.push((k.to_owned(), v));
        }
    };
    match env("OTEL_SERVICE_NAME") {
        Some(name) => set("service.name", name.trim().to_owned(), true),
        None => set("service.name", names::SERVICE_NAME.to_owned(), false),
    }
    set("host.name", crate::host::name(), false);
    // Random per process: two xdptop daemons on one host stay apart, and a
    // restart is visibly a new instance (its counters start a new series).
    set(
        "service.instance.id",
        uuid::Uuid::new_v4().to_string(),
        false,
    );
    set(
        "service.version",
        env!("CARGO_PKG_VERSION").to_owned(),
        false,
    );
    Ok(attrs)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn resolve(args: OtlpArgs, env: &[(&str, &str)]) -> anyhow::Result<Option<OtlpConfig>> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        OtlpConfig::resolve(&args, &|k| env.get(k).cloned())
    }

    fn flag(endpoint: &str) -> OtlpArgs {
        OtlpArgs {
            endpoint: Some(endpoint.into()),
            ..OtlpArgs::default()
        }
    }

    fn attr<'a>(c: &'a OtlpConfig, k: &str) -> Option<&'a str> {
        c.resource
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn endpoints_normalise() {
        use Protocol::*;
        for (raw, proto, want) in [
            ("localhost:4317", Grpc, "http://localhost:4317"),
            (" localhost:4317 ", Grpc, "http://localhost:4317"),
            ("127.0.0.1:9", Grpc, "http://127.0.0.1:9"),
            ("[::1]:4317", Grpc, "http://[::1]:4317"),
            ("http://collector:4317", Grpc, "http://collector:4317"),
            ("http://collector:4317/", Grpc, "http://collector:4317"),
            ("https://collector", Grpc, "https://collector"),
            ("https://c.example:443", Grpc, "https://c.example:443"),
            ("localhost:4318", HttpProtobuf, "http://localhost:4318"),
            ("http://c:4318/otlp/", HttpProtobuf, "http://c:4318/otlp"),
        ] {
            assert_eq!(parse_endpoint(raw, proto).expect(raw), want, "{raw}");
        }
    }

    #[test]
    fn malformed_endpoints_are_errors_that_say_why() {
        for (raw, want) in [
            ("", "the endpoint is empty"),
            ("   ", "the endpoint is empty"),
            ("localhost", "no port: write host:port"),
            ("localhost:", "no port after the colon"),
            ("localhost:port", "invalid port \"port\""),
            ("localhost:99999", "port 99999 is out of range"),
            ("localhost:0", "port 0 is out of range"),
            ("ftp://localhost:4317", "scheme ftp:// is not supported"),
            ("http://:4317", "no host"),
            // The http crate's own words; `resolve` puts the flag and the
            // value in front of them.
            ("http://", "no host after http://"),
            (
                "http://local host:4317",
                "contains spaces or control characters",
            ),
            ("http://c:4317/v1/metrics", "a gRPC endpoint takes no path"),
            ("http://c:4317?x=1", "takes no query or fragment"),
            (
                "http://user:pw@c:4317",
                "credentials in the URL are not supported",
            ),
        ] {
            let err = parse_endpoint(raw, Protocol::Grpc)
                .expect_err(&format!("{raw:?} should be rejected"));
            assert!(err.to_string().contains(want), "{raw:?}: {err}");
        }
    }

    #[test]
    fn an_out_of_range_port_is_named_as_such_not_as_missing() {
        for raw in ["localhost:99999", "http://c:70000", "c:0"] {
            let err = parse_endpoint(raw, Protocol::Grpc).expect_err(raw);
            assert!(err.to_string().contains("out of range"), "{raw}: {err}");
        }
    }

    #[test]
    fn error_names_the_flag_and_the_value() {
        let err = resolve(flag("ftp://x:1"), &[]).expect_err("bad");
        let msg = format!("{err:#}");
        assert!(msg.contains("--otlp") && msg.contains("ftp://x:1"), "{msg}");
        assert!(msg.contains("http://"), "says what works: {msg}");
    }

    #[test]
    fn no_endpoint_no_export() {
        assert_eq!(resolve(OtlpArgs::default(), &[]).expect("ok"), None);
        let orphan = OtlpArgs {
            headers: vec!["a=b".into()],
            ..OtlpArgs::default()
        };
        let err = resolve(orphan, &[]).expect_err("a header without an endpoint");
        assert!(
            err.to_string()
                .contains("--otlp-protocol/--otlp-header/--otlp-ca-file/--otlp-interval need"),
            "{err}"
        );
    }

    #[test]
    fn defaults() {
        let c = resolve(flag("localhost:4317"), &[])
            .expect("ok")
            .expect("on");
        assert_eq!(c.protocol, Protocol::Grpc);
        assert_eq!(c.endpoint, "http://localhost:4317");
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        assert_eq!(c.export_interval, DEFAULT_EXPORT_INTERVAL);
        assert!(c.headers.is_empty());
        assert_eq!(attr(&c, "service.name"), Some("xdptop"));
        assert!(attr(&c, "host.name").is_some_and(|h| !h.is_empty()));
        let id = attr(&c, "service.instance.id").expect("instance id");
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
        assert_eq!(c.target(), "otlp grpc http://localhost:4317");
    }

    #[test]
    fn environment_is_honoured_and_flags_win() {
        let env = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://envhost:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "Authorization=Bearer%20abc, x-tenant=t1",
            ),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "1500"),
            ("OTEL_SERVICE_NAME", "edge-xdp"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "service.name=ignored,deployment.environment=lab,host.name=h1",
            ),
        ];
        let c = resolve(OtlpArgs::default(), &env).expect("ok").expect("on");
        assert_eq!(c.endpoint, "http://envhost:4318");
        assert_eq!(c.protocol, Protocol::HttpProtobuf);
        assert_eq!(
            c.headers,
            [
                ("authorization".into(), "Bearer abc".into()),
                ("x-tenant".into(), "t1".into())
            ]
        );
        assert_eq!(c.timeout, Duration::from_millis(1500));
        assert_eq!(attr(&c, "service.name"), Some("edge-xdp"));
        assert_eq!(attr(&c, "deployment.environment"), Some("lab"));
        assert_eq!(attr(&c, "host.name"), Some("h1"), "given host.name kept");

        let flags = OtlpArgs {
            endpoint: Some("localhost:4317".into()),
            protocol: Some(Protocol::Grpc),
            headers: vec!["X-Tenant=t2".into(), "k=a=b".into()],
            ca_file: None,
            export_interval: None,
        };
        let c = resolve(flags, &env).expect("ok").expect("on");
        assert_eq!(c.endpoint, "http://localhost:4317");
        assert_eq!(c.protocol, Protocol::Grpc);
        assert_eq!(
            c.headers,
            [
                ("authorization".into(), "Bearer abc".into()),
                ("x-tenant".into(), "t2".into()),
                ("k".into(), "a=b".into())
            ]
        );
    }

    #[test]
    fn bad_settings_are_errors_that_name_the_setting() {
        /// Flags, environment, and what the error must say.
        type Case = (OtlpArgs, Vec<(&'static str, &'static str)>, &'static str);
        let cases: Vec<Case> = vec![
            (
                flag("localhost:4317"),
                vec![("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")],
                "in OTEL_EXPORTER_OTLP_PROTOCOL: OTLP protocol http/json is not supported",
            ),
            (
                flag("localhost:4317"),
                vec![("OTEL_EXPORTER_OTLP_PROTOCOL", "udp")],
                "in OTEL_EXPORTER_OTLP_PROTOCOL: unknown OTLP protocol \"udp\"",
            ),
            (
                flag("localhost:4317"),
                vec![("OTEL_EXPORTER_OTLP_HEADERS", "novalue")],
                "in OTEL_EXPORTER_OTLP_HEADERS: \"novalue\" is not key=value",
            ),
            (
                flag("localhost:4317"),
                vec![("OTEL_EXPORTER_OTLP_HEADERS", "a=%zz")],
                "in OTEL_EXPORTER_OTLP_HEADERS: in \"a=%zz\": bad percent escape",
            ),
            (
                flag("localhost:4317"),
                vec![("OTEL_EXPORTER_OTLP_TIMEOUT", "5s")],
                "OTEL_EXPORTER_OTLP_TIMEOUT \"5s\" is not a whole number of milliseconds",
            ),
            (
                flag("localhost:4317"),
                vec![("OTEL_EXPORTER_OTLP_TIMEOUT", "0")],
                "OTEL_EXPORTER_OTLP_TIMEOUT must be more than 0 ms",
            ),
            (
                flag("localhost:4317"),
                vec![("OTEL_RESOURCE_ATTRIBUTES", "=x")],
                "in OTEL_RESOURCE_ATTRIBUTES: \"=x\" has an empty key",
            ),
            (
                vec_headers(&["noequals"]),
                vec![],
                "--otlp-header \"noequals\": write KEY=VALUE",
            ),
            (
                vec_headers(&["bad name=x"]),
                vec![],
                "OTLP header name \"bad name\" is not a valid header name",
            ),
            (
                vec_headers(&["k=line\nbreak"]),
                vec![],
                "OTLP header \"k\" has a value that is not printable ASCII",
            ),
            (
                vec_headers(&["content-type=text/plain"]),
                vec![],
                "OTLP header \"content-type\" is set by xdptop itself",
            ),
            (
                OtlpArgs {
                    ca_file: Some("/etc/hostname".into()),
                    ..flag("http://c:4317")
                },
                vec![],
                "--otlp-ca-file is for https:// endpoints (got http://c:4317)",
            ),
            (
                OtlpArgs {
                    ca_file: Some("/nonexistent/ca.pem".into()),
                    ..flag("https://c:4317")
                },
                vec![],
                "cannot read the OTLP CA file /nonexistent/ca.pem: No such file",
            ),
            (
                OtlpArgs {
                    ca_file: Some("/etc/hostname".into()),
                    ..flag("https://c:4317")
                },
                vec![],
                "OTLP CA file /etc/hostname holds no PEM certificate",
            ),
        ];
        for (args, env, want) in cases {
            let shown = format!("{args:?} {env:?}");
            let err = resolve(args, &env).expect_err(&format!("{shown} should be rejected"));
            let msg = format!("{err:#}");
            assert!(msg.contains(want), "{shown}: {msg:?} does not say {want:?}");
        }
    }

    #[test]
    fn export_interval_from_the_flag_over_the_environment() {
        let env = [("OTEL_METRIC_EXPORT_INTERVAL", " 250 ")];
        let c = resolve(flag("localhost:4317"), &env)
            .expect("ok")
            .expect("on");
        assert_eq!(c.export_interval, Duration::from_millis(250));
        let with_flag = OtlpArgs {
            export_interval: Some(Duration::from_secs(5)),
            ..flag("localhost:4317")
        };
        let c = resolve(with_flag.clone(), &env).expect("ok").expect("on");
        assert_eq!(c.export_interval, Duration::from_secs(5), "the flag wins");
        // A value the flag overrides is not looked at.
        let bad_env = [("OTEL_METRIC_EXPORT_INTERVAL", "soon")];
        let c = resolve(with_flag, &bad_env).expect("ok").expect("on");
        assert_eq!(c.export_interval, Duration::from_secs(5));
        // Set but empty counts as unset, as for the other variables.
        let c = resolve(
            flag("localhost:4317"),
            &[("OTEL_METRIC_EXPORT_INTERVAL", " ")],
        )
        .expect("ok")
        .expect("on");
        assert_eq!(c.export_interval, DEFAULT_EXPORT_INTERVAL);
    }

    #[test]
    fn bad_export_intervals_are_errors_that_name_their_source() {
        for bad in ["1s", "0", "-5", "1.5", "60000ms", "18446744073709551616"] {
            let env = [("OTEL_METRIC_EXPORT_INTERVAL", bad)];
            let err = resolve(flag("localhost:4317"), &env).expect_err(bad);
            let msg = format!("{err:#}");
            assert!(msg.contains("OTEL_METRIC_EXPORT_INTERVAL"), "{bad}: {msg}");
        }
        let zero = OtlpArgs {
            export_interval: Some(Duration::ZERO),
            ..flag("localhost:4317")
        };
        let err = resolve(zero, &[]).expect_err("zero");
        assert!(err.to_string().contains("--otlp-interval"), "{err}");
        // Without an endpoint the flag has nothing to pace.
        let orphan = OtlpArgs {
            export_interval: Some(Duration::from_secs(1)),
            ..OtlpArgs::default()
        };
        let err = resolve(orphan, &[]).expect_err("no endpoint");
        assert!(err.to_string().contains("--otlp-interval"), "{err}");
        // The variable alone does not turn export on.
        assert_eq!(
            resolve(
                OtlpArgs::default(),
                &[("OTEL_METRIC_EXPORT_INTERVAL", "500")]
            )
            .expect("ok"),
            None
        );
    }

    fn vec_headers(h: &[&str]) -> OtlpArgs {
        OtlpArgs {
            headers: h.iter().map(|s| (*s).to_owned()).collect(),
            ..flag("localhost:4317")
        }
    }

    #[test]
    fn debug_output_hides_header_values() {
        let args = OtlpArgs {
            headers: vec!["authorization=Bearer s3cret".into()],
            ..flag("localhost:4317")
        };
        let c = resolve(args, &[]).expect("ok").expect("on");
        let shown = format!("{c:?}");
        assert!(
            shown.contains("authorization") && !shown.contains("s3cret"),
            "{shown}"
        );
    }

    #[test]
    fn env_ca_is_ignored_for_plaintext() {
        let env = [("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent.pem")];
        let c = resolve(flag("localhost:4317"), &env)
            .expect("ok")
            .expect("on");
        assert_eq!(c.ca_file, None);
    }

    #[test]
    fn pairs_parse() {
        assert_eq!(
            parse_pairs(" a=1 ,b = x%2Cy,,a=2").expect("ok"),
            [("b".into(), "x,y".into()), ("a".into(), "2".into())]
        );
        let err = parse_pairs("a=%4").expect_err("short escape");
        assert_eq!(
            format!("{err:#}"),
            "in \"a=%4\": bad percent escape in \"%4\""
        );
        let err = parse_pairs("a=%ff").expect_err("not UTF-8");
        assert!(
            format!("{err:#}").starts_with("in \"a=%ff\": \"%ff\" does not decode to UTF-8"),
            "{err:#}"
        );
    }
}
