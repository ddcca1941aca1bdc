//! What the manual page says beyond the options clap describes: the
//! dashboard keys, exit codes, environment, files and capabilities.
//! `cargo xtask package` renders `xdptop.8` from `cli::Cli` plus these, so
//! the page cannot drift from `--help`, the `?` overlay or the code (the
//! tests below tie each table to its source).

/// The dashboard's keys, as the `?` overlay shows them.
pub const KEYS: [(&str, &str); 11] = [
    ("↑ ↓  j k", "select an interface (a source in talkers)"),
    ("enter / esc", "open / close its detail view"),
    ("t / esc", "its top talkers: sources and services"),
    ("s", "sort the talkers by pps, bit/s or packets"),
    ("r", "reset the view: totals, peaks, history"),
    ("d", "detach xdptop from the interface (asks y/n)"),
    ("a", "attach xdptop again"),
    ("p  space", "pause the view (samples keep arriving)"),
    ("u", "show rates in bits or bytes per second"),
    ("?", "this help"),
    ("q  ctrl-c", "quit (attachments stay in place)"),
];

/// What the keys do not do, under the table in the overlay.
pub const KEYS_NOTE: &str = "Reset never zeroes the kernel counters: other scrapers and \
                             Prometheus rate() rely on them.";

/// Exit status and its meaning.
pub const EXIT_STATUS: [(u8, &str); 3] = [
    (
        0,
        "Done: --count samples were taken, a SIGTERM, SIGINT or SIGHUP ended the run \
         (after a last OTLP push), or --detach finished.",
    ),
    (1, "An error; the message on stderr says what to do."),
    (
        crate::EXIT_USAGE,
        "An invalid command line: an unknown flag, or a value (or environment variable) \
         that does not validate.",
    ),
];

/// Environment variables xdptop reads. Command-line flags win over each.
pub const ENVIRONMENT: [(&str, &str); 11] = [
    (
        "XDPTOP_PIN_DIR",
        "bpffs directory for pins, as --pin-dir (default /sys/fs/bpf).",
    ),
    (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTLP collector to push every sample to; enables export as --otlp does.",
    ),
    (
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "grpc (default) or http/protobuf, as --otlp-protocol.",
    ),
    (
        "OTEL_EXPORTER_OTLP_HEADERS",
        "Request headers, key=value pairs separated by commas, values percent-encoded \
         (e.g. authorization=Bearer%20TOKEN); --otlp-header replaces one of the same name. \
         Keep secrets here (in the service's settings file), not on the command line.",
    ),
    (
        "OTEL_EXPORTER_OTLP_CERTIFICATE",
        "CA bundle (PEM) for an https:// endpoint, as --otlp-ca-file.",
    ),
    (
        "OTEL_EXPORTER_OTLP_TIMEOUT",
        "Per-request timeout in milliseconds.",
    ),
    (
        "OTEL_METRIC_EXPORT_INTERVAL",
        "At most one OTLP request per this many milliseconds, as --otlp-interval (default 5000).",
    ),
    (
        "OTEL_SERVICE_NAME",
        "The service.name resource attribute (default xdptop).",
    ),
    (
        "OTEL_RESOURCE_ATTRIBUTES",
        "Extra resource attributes, key=value pairs separated by commas.",
    ),
    (
        "RUST_LOG",
        "Log filter for stderr (e.g. debug), as -v and -vv.",
    ),
    (
        "XDPTOP_ARGS",
        "Read by xdptop.service only: the interfaces and flags the service runs with.",
    ),
];

/// Files xdptop uses, and the service's own.
pub const FILES: [(&str, &str); 5] = [
    (
        "/sys/fs/bpf/xdp_stats_map",
        "The shared packet counter map (key 0: rx_packets, rx_bytes) that bpftool and libbpf \
         scrapers read; reused if it already exists and matches, never replaced.",
    ),
    (
        "/sys/fs/bpf/xdptop/",
        "xdptop's own per-interface maps (IFACE/stats; IFACE/config, IFACE/talkers and \
         IFACE/services for the top talkers) and the pinned links that keep its program attached \
         after it exits; --detach IFACE removes them.",
    ),
    (
        "/etc/default/xdptop",
        "Settings of xdptop.service on Debian and Ubuntu: XDPTOP_ARGS and the OTEL_* variables \
         (mode 0600: it may hold auth headers).",
    ),
    (
        "/etc/sysconfig/xdptop",
        "The same on RHEL, Fedora and other rpm-based systems.",
    ),
    (
        "/usr/lib/systemd/system/xdptop.service",
        "The systemd unit: xdptop --headless $XDPTOP_ARGS with only CAP_BPF, CAP_NET_ADMIN and \
         CAP_PERFMON. Enable it with systemctl enable --now xdptop.",
    ),
];

/// Paragraphs of the CAPABILITIES section.
pub const CAPABILITIES: [&str; 3] = [
    "Loading, pinning and attaching the XDP program needs root, or CAP_BPF and CAP_NET_ADMIN \
     (e.g. setcap cap_bpf,cap_net_admin,cap_perfmon+ep /usr/bin/xdptop), and a bpffs mounted \
     on /sys/fs/bpf (systemd mounts it).",
    "CAP_PERFMON (or root) lets the verifier accept the faster program variant; without it \
     xdptop loads a variant that needs Linux 6.17 or later.",
    "Once its programs are attached, xdptop drops every other capability (effective, \
     permitted, inheritable, ambient and bounding sets). It keeps CAP_BPF and CAP_NET_ADMIN \
     (and CAP_PERFMON) to attach again when an interface comes back and for the dashboard's \
     detach and attach keys. Reading the counters needs none.",
];

/// Related manual pages.
pub const SEE_ALSO: [(&str, &str); 4] = [
    ("bpftool", "8"),
    ("xdp-loader", "8"),
    ("systemctl", "1"),
    ("capabilities", "7"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_otel_variable_the_code_reads_is_documented() {
        let source = include_str!("output/otlp/config.rs");
        let mut rest = source;
        let mut seen = 0;
        while let Some(at) = rest.find("\"OTEL_") {
            let name: String = rest[at + 1..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                .collect();
            rest = &rest[at + 1..];
            if name == "OTEL_" {
                continue; // a prefix in a message, not a variable
            }
            seen += 1;
            assert!(
                ENVIRONMENT.iter().any(|(n, _)| *n == name),
                "{name} is read in output/otlp/config.rs but missing from manual::ENVIRONMENT"
            );
        }
        assert!(
            seen >= 6,
            "found only {seen} OTEL_ names: did config.rs move?"
        );
    }

    #[test]
    fn the_pin_dir_variable_is_the_one_clap_reads() {
        use clap::CommandFactory as _;
        let cmd = crate::cli::Cli::command();
        let pin_dir = cmd
            .get_arguments()
            .find(|a| a.get_long() == Some("pin-dir"))
            .expect("--pin-dir exists");
        let env = pin_dir.get_env().expect("--pin-dir reads a variable");
        assert!(ENVIRONMENT.iter().any(|(n, _)| *n == env));
    }

    #[test]
    fn the_service_settings_files_are_the_ones_the_unit_and_packages_use() {
        let unit = include_str!("../../packaging/xdptop.service");
        assert!(
            unit.contains("EnvironmentFile=-/etc/default/xdptop"),
            "{unit}"
        );
        assert!(unit.contains("$XDPTOP_ARGS"));
        let manifest = include_str!("../Cargo.toml");
        for (file, _) in &FILES[2..] {
            assert!(
                manifest.contains(file),
                "xdptop/Cargo.toml does not package {file}"
            );
        }
    }
}
