//! The shipped Grafana dashboard and alert rules, read from `compose/`, as
//! PromQL a test can run against a real Prometheus.
//!
//! The rules' windows are minutes long (made for 15 s scrapes). Tests scrape
//! every second, so [`Alerts::compressed`] shrinks each window to seconds,
//! insisting that every substituted text still occurs in the rule (a rule
//! change that the tests would silently stop exercising fails here):
//!
//! | rule | in the file | compressed |
//! |---|---|---|
//! | stopped reporting | subquery `[1h:15s]`, fires `gt 60` (4 scrapes) | `[1h:1s]`, fires above 4 s (4 scrapes) |
//! | program gone | `min(attached) lt 1` | unchanged |
//! | traffic stopped | `max_over_time(pps[1m]) == 0` | `[3s]` |
//! | traffic spike | A `[2m]`, B `[1h] offset 2m` | A `[3s]`, B `[1h] offset 4s` |
//! | XDP drops | A `[2m]` (twice), `gt 10` | `[3s]`, unchanged |

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
};

use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

use super::prometheus::{Prometheus, label, value};

pub fn compose_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../compose")
}

/// Every dashboard query (with "All" selected) returns data from `prom`,
/// and the variables offer exactly `ifaces`, except the panels that query
/// a series in `absent`: series the run cannot have (verdicts on a kernel
/// without trampolines, talkers without `--talkers-export`); those must
/// return nothing.
#[track_caller]
pub fn assert_dashboard_has_data(prom: &Prometheus, ifaces: &[&str], absent: &[&str]) {
    for (title, expr) in dashboard_queries() {
        let e = grafana_all(&expr);
        if absent.iter().any(|a| expr.contains(&format!("{a}{{"))) {
            let r = prom.query(&e);
            assert!(r.is_empty(), "dashboard {title}: {e} has data: {r:?}");
            continue;
        }
        let r = prom.query(&e);
        assert!(!r.is_empty(), "dashboard {title}: {e} returned nothing");
        if title.starts_with("variable") {
            let offered: BTreeSet<&str> = r
                .iter()
                .filter_map(|x| label(x, "network_interface_name"))
                .collect();
            assert_eq!(
                offered,
                BTreeSet::from_iter(ifaces.iter().copied()),
                "{title}"
            );
        }
    }
}

/// `(title, expr)` of every dashboard panel target, and of every template
/// variable (its `label_values` selector, as `variable NAME`).
pub fn dashboard_queries() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(compose_dir().join("grafana/dashboards/xdptop.json"))
        .expect("dashboard");
    let d: Json = serde_json::from_str(&text).expect("dashboard JSON");
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().expect("targets") {
            out.push((
                p["title"].as_str().expect("title").to_owned(),
                t["expr"].as_str().expect("expr").to_owned(),
            ));
        }
    }
    for v in d["templating"]["list"].as_array().expect("templating") {
        let q = v["query"]["query"].as_str().expect("query");
        let inner = q
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
            .and_then(|q| q.rsplit_once(','))
            .map(|(sel, _)| sel.trim().to_owned())
            .expect("label_values(selector, label)");
        out.push((format!("variable {}", v["name"]), inner));
    }
    out
}

/// Grafana's expansion for "All" on every variable, and short intervals.
pub fn grafana_all(expr: &str) -> String {
    expr.replace("$__rate_interval", "4s")
        .replace("$__range", "1m")
        .replace("$interface", ".*")
        .replace("$host", ".*")
        .replace("$env", ".*")
}

pub struct Rule {
    /// refId -> PromQL, as in the file.
    pub queries: BTreeMap<String, String>,
    /// The condition's model (threshold or math).
    pub condition: Yaml,
}

/// The provisioned rules by uid.
pub fn alert_rules() -> BTreeMap<String, Rule> {
    let text = std::fs::read_to_string(
        compose_dir().join("grafana/provisioning/alerting/xdptop-rules.yaml"),
    )
    .expect("rules");
    let y: Yaml = serde_yaml::from_str(&text).expect("rules YAML");
    let mut out = BTreeMap::new();
    for g in y["groups"].as_sequence().expect("groups") {
        for r in g["rules"].as_sequence().expect("rules") {
            let uid = r["uid"].as_str().expect("uid").to_owned();
            let cond = r["condition"].as_str().expect("condition");
            let mut queries = BTreeMap::new();
            let mut condition = Yaml::Null;
            for d in r["data"].as_sequence().expect("data") {
                let id = d["refId"].as_str().expect("refId").to_owned();
                if let Some(e) = d["model"]["expr"].as_str() {
                    queries.insert(id.clone(), e.to_owned());
                }
                if id == cond {
                    condition = d["model"].clone();
                }
            }
            out.insert(uid, Rule { queries, condition });
        }
    }
    out
}

/// Replaces `from` with `to` in `expr`, insisting that it occurs.
pub fn compress(expr: &str, swaps: &[(&str, &str)]) -> String {
    let mut e = expr.to_owned();
    for (from, to) in swaps {
        assert!(
            e.contains(from),
            "{from} no longer in {expr}: update this test"
        );
        e = e.replace(from, to);
    }
    e
}

/// `{interface: value}` of a query result.
pub fn by_iface(result: &[Json]) -> BTreeMap<String, f64> {
    result
        .iter()
        .map(|e| {
            (
                label(e, "network_interface_name")
                    .expect("interface label")
                    .to_owned(),
                value(e),
            )
        })
        .collect()
}

/// The four alert rules' queries with windows compressed for 1 s scrapes,
/// and their conditions (checked to be what the predicates below encode).
pub struct Alerts {
    /// Seconds since each series' last sample.
    pub stopped: String,
    /// The rule's threshold, in seconds (for 15 s scrapes).
    pub stopped_after: f64,
    /// min of the attached gauge.
    pub gone: String,
    pub gone_below: f64,
    /// max pps over the (compressed) window, for interfaces that had traffic.
    pub traffic: String,
    /// Current pps and baseline.
    pub spike_a: String,
    pub spike_b: String,
    /// Drop share (%) over the (compressed) window.
    pub drops: String,
    /// The rule's threshold, in %.
    pub drops_above: f64,
}

/// The compose stack's Prometheus scrape interval, which the rules'
/// thresholds are made for.
pub const RULE_SCRAPE_S: f64 = 15.0;

impl Alerts {
    pub fn compressed() -> Self {
        let rules = alert_rules();
        let stopped = &rules["xdptop-stopped-reporting"];
        let stopped_cond = &stopped.condition["conditions"][0]["evaluator"];
        assert_eq!(stopped_cond["type"], Yaml::from("gt"));
        let gone = &rules["xdptop-xdp-program-gone"];
        let gone_cond = &gone.condition["conditions"][0]["evaluator"];
        assert_eq!(gone_cond["type"], Yaml::from("lt"));
        let traffic = &rules["xdptop-traffic-stopped"];
        assert_eq!(traffic.condition["expression"], Yaml::from("$A == 0"));
        let drops = &rules["xdptop-xdp-drops"];
        let drops_cond = &drops.condition["conditions"][0]["evaluator"];
        assert_eq!(drops_cond["type"], Yaml::from("gt"));
        let spike = &rules["xdptop-traffic-spike"];
        assert_eq!(
            spike.condition["expression"],
            Yaml::from("$A > 5 * $B && $A > 1000")
        );
        Self {
            stopped: compress(&stopped.queries["A"], &[("[1h:15s]", "[1h:1s]")]),
            stopped_after: stopped_cond["params"][0].as_f64().expect("threshold"),
            gone: gone.queries["A"].clone(),
            gone_below: gone_cond["params"][0].as_f64().expect("threshold"),
            traffic: compress(&traffic.queries["A"], &[("[1m]", "[3s]")]),
            spike_a: compress(&spike.queries["A"], &[("[2m]", "[3s]")]),
            // One scrape more than the window, for the 1 s scrape alignment.
            spike_b: compress(&spike.queries["B"], &[("offset 2m", "offset 4s")]),
            drops: compress(&drops.queries["A"], &[("[2m]", "[3s]")]),
            drops_above: drops_cond["params"][0].as_f64().expect("threshold"),
        }
    }

    /// The threshold `gt drops_above` on the drop share.
    pub fn drops_fire(&self, share: f64) -> bool {
        share > self.drops_above
    }

    /// "Stopped reporting" for `scrape_s`-second scrapes: the rule's
    /// threshold (60 s = 4 scrapes of 15 s) as the same number of scrapes.
    pub fn stopped_fires(&self, seconds_since: f64, scrape_s: f64) -> bool {
        seconds_since > self.stopped_after / RULE_SCRAPE_S * scrape_s
    }

    pub fn gone_fires(&self, attached: f64) -> bool {
        attached < self.gone_below
    }

    /// The math condition `$A == 0`.
    pub fn traffic_stopped_fires(max_pps: f64) -> bool {
        max_pps == 0.0
    }

    /// The math condition `$A > 5 * $B && $A > 1000`.
    pub fn spike_fires(a: f64, b: f64) -> bool {
        a > 5.0 * b && a > 1000.0
    }
}
