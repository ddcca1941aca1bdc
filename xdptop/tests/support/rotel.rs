//! A real OTLP collector for tests: `rotel` (PyPI) on free loopback ports,
//! with its detailed debug log captured and parsed into data points and
//! spans. Killed on drop. Used as `mod support;` from integration tests.
//!
//! The binary and the command line are [`xdp_lab::rotel`]'s. A missing
//! collector fails the test: it is never skipped.

#![allow(dead_code)] // each test file uses a different part

use std::{
    collections::BTreeMap,
    fs,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
    thread,
    time::Duration,
};

use xdp_lab::poll;

use super::netns::accepting;
pub use super::netns::free_port;

/// One number data point as rotel logged it.
#[derive(Clone, Debug, PartialEq)]
pub struct LoggedPoint {
    pub metric: String,
    pub unit: String,
    /// `Sum` or `Gauge`.
    pub data_type: String,
    pub monotonic: bool,
    /// e.g. `AGGREGATION_TEMPORALITY_CUMULATIVE` (sums only).
    pub temporality: String,
    pub attributes: BTreeMap<String, String>,
    pub resource: BTreeMap<String, String>,
    pub start_time_unix_nano: u64,
    pub time_unix_nano: u64,
    /// As printed (`10`, `12.5`).
    pub value: String,
    /// Which `ResourceMetrics` block of the log it came in, counting from 0.
    /// Rotel logs every request it receives as its own blocks (numbered from
    /// #0 again in each; it merges none, even 3 ms apart), and xdptop puts
    /// one ResourceMetrics in each request, so this numbers the requests.
    pub request: usize,
}

impl LoggedPoint {
    pub fn value_f64(&self) -> f64 {
        self.value
            .parse()
            .unwrap_or_else(|e| panic!("value {:?} of {}: {e}", self.value, self.metric))
    }

    pub fn attr(&self, k: &str) -> Option<&str> {
        self.attributes.get(k).map(String::as_str)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct LoggedSpan {
    pub name: String,
    pub kind: String,
    pub trace_id: String,
    pub attributes: BTreeMap<String, String>,
    pub resource: BTreeMap<String, String>,
}

pub struct Rotel {
    child: Child,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    dir: PathBuf,
    /// The network namespace rotel listens in (None: the test's own).
    netns: Option<PathBuf>,
}

static INSTANCE: AtomicUsize = AtomicUsize::new(0);

/// The rotel binary ([`xdp_lab::rotel::binary`]), or a panic that says how
/// to get one.
pub fn binary() -> PathBuf {
    xdp_lab::rotel::binary().unwrap_or_else(|e| panic!("{e:#}"))
}

impl Rotel {
    /// Starts rotel on two free ports and waits until it accepts.
    pub fn start() -> Self {
        Self::start_on(free_port(), free_port())
    }

    /// Starts rotel on the given loopback ports and waits until it accepts.
    pub fn start_on(grpc_port: u16, http_port: u16) -> Self {
        Self::start_on_in(grpc_port, http_port, None)
    }

    /// Starts rotel inside the network namespace at `netns` (e.g. a lab's
    /// `/run/netns/NAME`), so a process there reaches it on 127.0.0.1.
    pub fn start_in(netns: &Path) -> Self {
        Self::start_on_in(free_port(), free_port(), Some(netns))
    }

    pub fn start_on_in(grpc_port: u16, http_port: u16, netns: Option<&Path>) -> Self {
        let bin = binary();
        let n = INSTANCE.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("xdptop-rotel-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("creating rotel's temp dir");
        let grpc: SocketAddr = ([127, 0, 0, 1], grpc_port).into();
        let http: SocketAddr = ([127, 0, 0, 1], http_port).into();
        let log = fs::File::create(dir.join("stdout.log")).expect("rotel log file");
        let child = xdp_lab::rotel::command(&bin, netns, grpc, http)
            .args(["--debug-log", "metrics", "--debug-log", "traces"])
            .args(["--debug-log-verbosity", "detailed"])
            // Own pid and log files: tests run rotels side by side.
            .arg("--pid-file")
            .arg(dir.join("rotel.pid"))
            .arg("--log-file")
            .arg(dir.join("rotel.log"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let mut me = Self {
            child,
            grpc,
            http,
            dir,
            netns: netns.map(Path::to_path_buf),
        };
        me.wait_listening();
        me
    }

    fn wait_listening(&mut self) {
        poll(Duration::from_secs(20), Duration::from_millis(50), || {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("rotel exited at start ({status}):\n{}", self.log());
            }
            self.accepting().then_some(()).ok_or(())
        })
        .unwrap_or_else(|()| {
            panic!(
                "rotel did not listen on {} and {} within 20 s:\n{}",
                self.grpc,
                self.http,
                self.log()
            )
        });
    }

    /// Both ports accept a connection, tried from rotel's namespace.
    fn accepting(&self) -> bool {
        accepting(self.netns.as_deref(), &[self.grpc, self.http])
    }

    /// `localhost:PORT` for gRPC, as a user types it.
    pub fn grpc_endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.grpc.port())
    }

    pub fn http_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.http.port())
    }

    /// Everything rotel printed so far, colour codes removed.
    pub fn log(&self) -> String {
        let raw = fs::read_to_string(self.dir.join("stdout.log")).unwrap_or_default();
        strip_ansi(&raw)
    }

    pub fn points(&self) -> Vec<LoggedPoint> {
        parse(&self.log()).0
    }

    pub fn spans(&self) -> Vec<LoggedSpan> {
        parse(&self.log()).1
    }

    /// Polls the log until `done` holds for the points, or panics with the
    /// log after `timeout`.
    pub fn wait_points(
        &self,
        timeout: Duration,
        done: impl Fn(&[LoggedPoint]) -> bool,
    ) -> Vec<LoggedPoint> {
        poll(timeout, Duration::from_millis(100), || {
            let points = self.points();
            if done(&points) { Ok(points) } else { Err(points.len()) }
        })
        .unwrap_or_else(|n| {
            panic!(
                "rotel did not log the expected points within {timeout:?}; it logged {n} points:\n{}",
                tail(&self.log(), 4000)
            )
        })
    }

    pub fn wait_spans(
        &self,
        timeout: Duration,
        done: impl Fn(&[LoggedSpan]) -> bool,
    ) -> Vec<LoggedSpan> {
        poll(timeout, Duration::from_millis(100), || {
            let spans = self.spans();
            if done(&spans) { Ok(spans) } else { Err(()) }
        })
        .unwrap_or_else(|()| {
            panic!(
                "rotel did not log the expected spans within {timeout:?}:\n{}",
                tail(&self.log(), 4000)
            )
        })
    }
}

impl Drop for Rotel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn tail(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[derive(PartialEq)]
enum Section {
    Other,
    Resource,
    Point,
    Span,
}

/// Parses rotel's `--debug-log-verbosity detailed` text (the collector's
/// debug exporter layout) into points and spans.
pub fn parse(log: &str) -> (Vec<LoggedPoint>, Vec<LoggedSpan>) {
    let mut points = Vec::new();
    let mut spans = Vec::new();
    let mut resource = BTreeMap::new();
    let mut section = Section::Other;
    let mut metric = LoggedPoint {
        metric: String::new(),
        unit: String::new(),
        data_type: String::new(),
        monotonic: false,
        temporality: String::new(),
        attributes: BTreeMap::new(),
        resource: BTreeMap::new(),
        start_time_unix_nano: 0,
        time_unix_nano: 0,
        value: String::new(),
        request: 0,
    };
    let mut resource_metrics = 0;
    let mut point = metric.clone();
    let mut span: Option<LoggedSpan> = None;
    let flush_span = |span: &mut Option<LoggedSpan>, spans: &mut Vec<LoggedSpan>| {
        if let Some(s) = span.take() {
            spans.push(s);
        }
    };
    for line in log.lines() {
        let t = line.trim();
        if let Some(kv) = t.strip_prefix("-> ") {
            let Some((k, v)) = kv.split_once(": ") else {
                continue;
            };
            let v = v
                .strip_prefix("Str(")
                .and_then(|v| v.strip_suffix(')'))
                .unwrap_or(v)
                .to_owned();
            match section {
                Section::Resource => {
                    resource.insert(k.to_owned(), v);
                }
                Section::Point => {
                    point.attributes.insert(k.to_owned(), v);
                }
                Section::Span => {
                    if let Some(s) = span.as_mut() {
                        s.attributes.insert(k.to_owned(), v);
                    }
                }
                Section::Other => match k {
                    "Name" => metric.metric = v,
                    "Unit" => metric.unit = v,
                    "DataType" => metric.data_type = v,
                    "IsMonotonic" => metric.monotonic = v == "true",
                    "AggregationTemporality" => metric.temporality = v,
                    _ => {}
                },
            }
            continue;
        }
        if t.starts_with("ResourceMetrics #") || t.starts_with("ResourceSpans #") {
            if t.starts_with("ResourceMetrics #") {
                point.request = resource_metrics;
                resource_metrics += 1;
            }
            flush_span(&mut span, &mut spans);
            resource.clear();
            section = Section::Other;
        } else if t == "Resource attributes:" {
            section = Section::Resource;
        } else if t.starts_with("Metric #") {
            metric = LoggedPoint {
                resource: resource.clone(),
                ..point.clone()
            };
            metric.metric.clear();
            metric.unit.clear();
            metric.data_type.clear();
            metric.monotonic = false;
            metric.temporality.clear();
            section = Section::Other;
        } else if t.starts_with("NumberDataPoints #") {
            point = LoggedPoint {
                attributes: BTreeMap::new(),
                resource: resource.clone(),
                ..metric.clone()
            };
            section = Section::Other;
        } else if t == "Data point attributes:" {
            section = Section::Point;
        } else if let Some(v) = t.strip_prefix("StartTimestamp: ") {
            point.start_time_unix_nano = v.parse().unwrap_or(0);
        } else if let Some(v) = t.strip_prefix("Timestamp: ") {
            point.time_unix_nano = v.parse().unwrap_or(0);
        } else if let Some(v) = t.strip_prefix("Value: ") {
            point.value = v.to_owned();
            points.push(point.clone());
            section = Section::Other;
        } else if t.starts_with("Span #") {
            flush_span(&mut span, &mut spans);
            span = Some(LoggedSpan {
                name: String::new(),
                kind: String::new(),
                trace_id: String::new(),
                attributes: BTreeMap::new(),
                resource: resource.clone(),
            });
            section = Section::Other;
        } else if let Some(s) = span.as_mut().filter(|_| section != Section::Span) {
            if let Some((k, v)) = t.split_once(':') {
                match k.trim() {
                    "Name" => s.name = v.trim().to_owned(),
                    "Kind" => s.kind = v.trim().to_owned(),
                    "Trace ID" => s.trace_id = v.trim().to_owned(),
                    "Attributes" => section = Section::Span,
                    _ => {}
                }
            }
        } else if !t.is_empty() && section == Section::Span {
            section = Section::Other;
        }
    }
    flush_span(&mut span, &mut spans);
    (points, spans)
}
