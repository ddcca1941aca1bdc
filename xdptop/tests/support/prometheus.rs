//! Starts Debian's real `prometheus` on a free 127.0.0.1 port with its own
//! temporary storage, scraping the targets a test names, and queries it over
//! its HTTP API. Stopped and cleaned up on drop.
//!
//! With [`Prometheus::start_in`] it runs inside a network namespace (a lab's
//! `/run/netns/NAME`, where xdptop listens on that namespace's 127.0.0.1);
//! its API is then reached from a helper thread that entered the namespace.
//!
//! The binary comes from `$PROMETHEUS`, else `prometheus` on PATH; a missing
//! binary fails the test with a hint (CI installs it: never skipped).

use std::{
    fs,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Stdio},
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::Value;
use xdp_lab::poll;

use super::{
    http,
    netns::{command_in, free_port, in_netns},
};

pub struct Prometheus {
    child: Child,
    dir: PathBuf,
    pub addr: SocketAddr,
    /// The network namespace it listens in (None: the test's own).
    netns: Option<PathBuf>,
}

/// The `prometheus` binary to run.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("PROMETHEUS") {
        return PathBuf::from(p);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("prometheus"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "prometheus not found: install Debian's `prometheus` package (apt-get install \
             prometheus) or set PROMETHEUS=/path/to/prometheus"
        )
    })
}

fn temp_dir(tag: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("xdptop-{tag}-{}-{nanos}", std::process::id()));
    fs::create_dir_all(&dir).expect("creating a temp dir");
    dir
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` (job `xdptop`, `honor_labels`,
    /// as compose/prometheus/prometheus.yml does) every `scrape_interval`.
    pub fn start(targets: &[SocketAddr], scrape_interval: Duration) -> Self {
        Self::start_in(targets, scrape_interval, None)
    }

    /// As [`Self::start`], inside the network namespace at `netns` (e.g.
    /// `lab.xdp_netns_path()`): the targets and its own listen address are
    /// that namespace's. `None` is the test's own namespace.
    pub fn start_in(
        targets: &[SocketAddr],
        scrape_interval: Duration,
        netns: Option<&Path>,
    ) -> Self {
        let dir = temp_dir("prometheus");
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let secs = scrape_interval.as_secs().max(1);
        let config = format!(
            "global:\n  scrape_interval: {secs}s\n  evaluation_interval: {secs}s\n\
             scrape_configs:\n  - job_name: xdptop\n    honor_labels: true\n    \
             static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        );
        fs::write(dir.join("prometheus.yml"), config).expect("writing prometheus.yml");
        let bin = binary();
        // A port picked as free may be taken before prometheus binds it: retry.
        for _ in 0..5 {
            let addr = SocketAddr::from(([127, 0, 0, 1], in_netns(netns, free_port)));
            let log = fs::File::create(dir.join("prometheus.log")).expect("log file");
            let child = command_in(netns, &bin)
                .arg(format!(
                    "--config.file={}",
                    dir.join("prometheus.yml").display()
                ))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
            let mut p = Self {
                child,
                dir: dir.clone(),
                addr,
                netns: netns.map(Path::to_path_buf),
            };
            if p.wait_ready(Duration::from_secs(30)) {
                // Target discovery is throttled (5 s): wait for the first
                // scrape of every target, so tests start with history.
                poll(Duration::from_secs(30), Duration::from_millis(100), || {
                    (p.query("up").len() >= targets.len())
                        .then_some(())
                        .ok_or(())
                })
                .unwrap_or_else(|()| panic!("no scrape yet:\n{}", p.log()));
                return p;
            }
            let _ = p.child.kill();
            let _ = p.child.wait();
            // Keep the directory for the next attempt: forget without Drop.
            std::mem::forget(p);
        }
        panic!(
            "prometheus did not become ready; its log:\n{}",
            fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
        );
    }

    fn wait_ready(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(r) = self.get("/-/ready") {
                if r.status == 200 {
                    return true;
                }
            }
            thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// GET from the HTTP API, from the namespace Prometheus runs in.
    fn get(&self, path_and_query: &str) -> std::io::Result<http::Response> {
        let (addr, path) = (self.addr, path_and_query.to_owned());
        in_netns(self.netns.as_deref(), move || http::get(addr, &path, &[]))
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs an instant query; returns `data.result` (a vector's elements)
    /// or panics with Prometheus' error.
    pub fn query(&self, expr: &str) -> Vec<Value> {
        let r = self
            .get(&format!("/api/v1/query?query={}", http::encode(expr)))
            .unwrap_or_else(|e| panic!("querying {expr}: {e}"));
        let v: Value = serde_json::from_str(&r.body)
            .unwrap_or_else(|e| panic!("{expr}: bad JSON ({e}): {}", r.body));
        assert_eq!(v["status"], "success", "{expr}: {}", r.body);
        match &v["data"]["result"] {
            Value::Array(a) => a.clone(),
            // A scalar result: [time, "value"] — wrap it like a one-element vector.
            other => vec![serde_json::json!({ "metric": {}, "value": other })],
        }
    }

    /// Polls `expr` until it returns at least one element.
    pub fn wait_for(&self, expr: &str, timeout: Duration) -> Vec<Value> {
        poll(timeout, Duration::from_millis(250), || {
            let r = self.query(expr);
            if r.is_empty() { Err(()) } else { Ok(r) }
        })
        .unwrap_or_else(|()| {
            panic!(
                "{expr} returned nothing within {timeout:?}; prometheus log:\n{}",
                self.log()
            )
        })
    }
}

/// The numeric value of one element of a query result.
pub fn value(elem: &Value) -> f64 {
    elem["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no value in {elem}"))
}

/// A label of one element of a query result.
pub fn label<'a>(elem: &'a Value, name: &str) -> Option<&'a str> {
    elem["metric"][name].as_str()
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}
