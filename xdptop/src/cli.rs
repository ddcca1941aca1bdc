//! The command line, as scripts and the README use it. Values are checked
//! further in `config.rs`; clap types stop there.

use std::{ffi::OsString, path::PathBuf, time::Duration};

use clap::{Parser, ValueEnum};

/// top for XDP: live packets/s and bits/s per interface, counted by an XDP
/// program that also feeds the shared pinned `xdp_stats_map`.
///
/// Keys in the dashboard: r reset view, d detach, p pause, u units, ? help,
/// q quit. Quitting leaves the program attached (the bpftool/libbpf scrapers
/// depend on it); `--detach` removes it.
#[derive(Debug, Parser)]
#[command(name = "xdptop", version = VERSION, about, long_about = None, after_help = AFTER_HELP)]
pub struct Cli {
    /// Interfaces to watch (e.g. eth0). xdptop attaches its counting program
    /// to each, or re-uses the attachment a previous run left.
    #[arg(value_name = "IFACE")]
    pub interfaces: Vec<OsString>,

    /// No dashboard: sample, print (with --json) and export until stopped.
    #[arg(long)]
    pub headless: bool,

    /// Print one JSON object per interface per sample on stdout.
    #[arg(long)]
    pub json: bool,

    /// Stop after N samples (per interface).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub count: Option<i128>,

    /// Time between samples, e.g. 250ms, 1s, 5s.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,

    /// Attach mode: auto tries native (driver) mode, then falls back to skb.
    #[arg(long, value_enum, default_value_t = ModeArg::Auto)]
    pub mode: ModeArg,

    /// Run priority of xdptop's program in a libxdp dispatcher (lower runs
    /// earlier). Default 0: first in the chain, so it counts every packet
    /// the interface receives. At a later position it counts only what the
    /// programs before it pass on. Ignored where xdptop attaches a single
    /// program.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub priority: Option<u32>,

    /// Push every sample over OTLP to this collector. `host:port` means
    /// plaintext gRPC (http://host:port); http:// and https:// URLs work too.
    /// Default: OTEL_EXPORTER_OTLP_ENDPOINT, if set.
    #[arg(long, value_name = "ENDPOINT")]
    pub otlp: Option<String>,

    /// OTLP transport. Default: OTEL_EXPORTER_OTLP_PROTOCOL, else grpc.
    #[arg(long, value_enum, value_name = "PROTOCOL")]
    pub otlp_protocol: Option<ProtocolArg>,

    /// Extra OTLP request header, e.g. `authorization=Bearer TOKEN`
    /// (repeatable; replaces the same name from OTEL_EXPORTER_OTLP_HEADERS).
    #[arg(long = "otlp-header", value_name = "KEY=VALUE")]
    pub otlp_headers: Vec<String>,

    /// CA bundle (PEM) to trust for an https:// OTLP endpoint instead of the
    /// system roots. Default: OTEL_EXPORTER_OTLP_CERTIFICATE.
    #[arg(long, value_name = "PATH")]
    pub otlp_ca_file: Option<PathBuf>,

    /// At most one OTLP request per DURATION, e.g. 1s, 10s: each carries
    /// every sample since the previous one, with its own timestamp.
    /// Default: OTEL_METRIC_EXPORT_INTERVAL (milliseconds), else 5s.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub otlp_interval: Option<Duration>,

    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464),
    /// with the same series names the collector path gives.
    #[arg(long, value_name = "ADDR")]
    pub prometheus: Option<String>,

    /// Top talkers: list the N heaviest sources (IPv4/IPv6 address) and
    /// services (protocol + destination port) of each interface, by
    /// packets/s, with the rest as "other", in the dashboard's talkers view
    /// (t) or the --json lines (talkers, talkers_other, services,
    /// services_other; --headless needs --json). Counting runs in the XDP
    /// program only while an xdptop with --talkers runs; without it the
    /// dashboard counts only while its talkers view is open.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub talkers: Option<i128>,

    /// Export the N heaviest sources and services of each interface over
    /// OTLP and /metrics (packets/s and bits/s gauges; 1 to 100). Turns
    /// talker counting on (top N, or --talkers M if that is more); needs
    /// --otlp or --prometheus. Every new source is a new series: keep N
    /// small (see the README, "Exporting talkers").
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub talkers_export: Option<i128>,

    /// Slots of the sources table when --talkers loads the program
    /// (rounded up to a power of two); when more than half are in use,
    /// sources idle for three samples are freed, and sources that find no
    /// slot go to an LRU table an eighth of its size. About 52 bytes of
    /// kernel memory per slot whatever the CPU count, plus a fixed 2 MiB
    /// array for the services (exact, never evicted): the default 131072
    /// takes 8.5 MiB per interface. Sizes below 1024 are for tests.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub talkers_table: Option<i128>,

    /// Detach xdptop from the IFACEs, remove its pins for them, and exit.
    #[arg(long)]
    pub detach: bool,

    /// bpffs directory for pins: the shared map is DIR/xdp_stats_map, and
    /// xdptop's own pins live in DIR/xdptop/.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/sys/fs/bpf",
        env = "XDPTOP_PIN_DIR"
    )]
    pub pin_dir: PathBuf,

    /// More log output on stderr (-v info, -vv debug); RUST_LOG also works.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// What `xdptop --version` prints after the name: the version, the git
/// commit and the cargo features, e.g. `0.1.0 (commit 84582c7d1e2f, features:
/// none)`; made by `build.rs` ("unknown commit" outside a git checkout).
pub const VERSION: &str = env!("XDPTOP_VERSION");

const AFTER_HELP: &str = "\
Privileges: attaching needs root, or CAP_BPF + CAP_NET_ADMIN (e.g. `sudo setcap \
cap_bpf,cap_net_admin+ep $(command -v xdptop)`); with CAP_PERFMON as well it loads a \
faster program. Once attached, xdptop drops every other capability; it keeps these \
to attach again when an interface returns and for the dashboard's detach/attach keys.

Examples:
  sudo xdptop eth0
  xdptop --headless --json --count 5 eth0
  xdptop --otlp localhost:4317 --headless eth0
  xdptop --prometheus 127.0.0.1:9464 --headless eth0
  xdptop --headless --json --talkers 10 eth0
  xdptop --headless --prometheus 127.0.0.1:9464 --talkers-export 5 eth0
  sudo xdptop --talkers 10 eth0
  xdptop --detach eth0";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    Auto,
    Native,
    Skb,
}

/// `--otlp-protocol`; `config.rs` maps it to `otlp::Protocol`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProtocolArg {
    /// OTLP/gRPC (default port 4317).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (default port 4318).
    #[value(name = "http/protobuf")]
    HttpProtobuf,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d =
        humantime::parse_duration(s.trim()).map_err(|e| format!("{e} (try 250ms, 1s or 5s)"))?;
    Ok(d)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::Cli;

    #[test]
    fn every_option_is_in_the_readme_table() {
        let readme = include_str!("../../README.md");
        for arg in Cli::command().get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if ["help", "version"].contains(&long) {
                continue;
            }
            // `--otlp` must not pass on the strength of `--otlp-header`.
            let cells = [format!("`--{long}`"), format!("`--{long} ")];
            assert!(
                readme
                    .lines()
                    .any(|l| l.starts_with("| `") && cells.iter().any(|c| l.contains(c))),
                "README.md's option table has no row for --{long}"
            );
        }
    }
}
