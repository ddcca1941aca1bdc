//! The validated configuration: everything `cli.rs` accepted, checked.

use std::{collections::HashSet, ffi::OsString, net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::{Context as _, bail};

use crate::{
    bpf::AttachMode,
    cli::{Cli, ModeArg, ProtocolArg},
    output::otlp::{OtlpArgs, OtlpConfig, Protocol},
};

/// Shortest and longest sampling interval accepted.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);
pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);
/// Most sources and services `--talkers` lists.
pub const MAX_TALKERS: usize = 1000;
/// Most sources and services `--talkers-export` sends per interface and
/// sample: each is a series in Prometheus.
pub const MAX_TALKERS_EXPORT: usize = 100;
/// Sources and services the dashboard's talkers view lists when it
/// switches counting on at run time (no `--talkers`).
pub const DASHBOARD_TALKERS: usize = 10;
/// Bounds of `--talkers-table`.
pub const MIN_TALKERS_TABLE: u32 = 16;
pub const MAX_TALKERS_TABLE: u32 = 1 << 22;
/// Linux's IFNAMSIZ less the terminating NUL.
const MAX_IFNAME: usize = 15;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Attach (or re-use) and sample.
    Watch,
    /// Detach and remove pins.
    Detach,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub action: Action,
    pub interfaces: Vec<String>,
    pub headless: bool,
    pub json: bool,
    pub count: Option<u64>,
    pub interval: Duration,
    pub mode: AttachMode,
    /// `--priority`: the run priority in a libxdp dispatcher.
    pub priority: Option<u32>,
    /// Set when `--otlp` or `OTEL_EXPORTER_OTLP_ENDPOINT` asks for export.
    pub otlp: Option<OtlpConfig>,
    /// Where to serve `/metrics` (`--prometheus`).
    pub prometheus: Option<SocketAddr>,
    pub pin_dir: PathBuf,
    pub verbose: u8,
    /// `--talkers N`: list and count talkers.
    pub talkers: Option<TalkersConfig>,
    /// `--talkers-export N`: sources and services exported per interface
    /// (counting is then on: `talkers` is set, with `top` at least N).
    pub talkers_export: Option<usize>,
}

/// `--talkers N` and `--talkers-table`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TalkersConfig {
    /// Sources and services listed per sample.
    pub top: usize,
    /// Entries of the sources table of a program loaded now.
    pub table: u32,
}

impl Config {
    /// Validates the command line, reading `OTEL_*` from the environment.
    pub fn from_cli(cli: Cli) -> anyhow::Result<Self> {
        Self::from_cli_env(cli, &|k| std::env::var(k).ok())
    }

    /// As [`Config::from_cli`], with `env` standing for the environment.
    pub fn from_cli_env(cli: Cli, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let interfaces = interfaces(&cli.interfaces)?;
        if interfaces.is_empty() {
            bail!("name at least one interface, e.g. `xdptop eth0` (see `ip link` for names)");
        }
        let count = match cli.count {
            None => None,
            Some(n) if n >= 1 && n <= i128::from(u64::MAX) => Some(n as u64),
            Some(n) => bail!("--count must be a whole number of samples, 1 or more (got {n})"),
        };
        if cli.interval < MIN_INTERVAL || cli.interval > MAX_INTERVAL {
            bail!(
                "--interval {} is out of range: use {} to {}",
                humantime::format_duration(cli.interval),
                humantime::format_duration(MIN_INTERVAL),
                humantime::format_duration(MAX_INTERVAL)
            );
        }
        if !cli.pin_dir.is_absolute() {
            bail!(
                "--pin-dir must be an absolute path (got {})",
                cli.pin_dir.display()
            );
        }
        if cli.json && !cli.headless && !cli.detach {
            bail!("--json prints to stdout, which the dashboard uses: add --headless");
        }
        let prometheus = cli.prometheus.as_deref().map(prometheus_addr).transpose()?;
        if cli.detach && prometheus.is_some() {
            bail!("--detach only detaches and exits: drop --prometheus");
        }
        if cli.detach && cli.priority.is_some() {
            bail!("--detach removes xdptop's program wherever it runs: drop --priority");
        }
        let talkers = match cli.talkers {
            None => None,
            Some(n) if n >= 1 && n <= MAX_TALKERS as i128 => Some(n as usize),
            Some(n) => bail!("--talkers must be 1 to {MAX_TALKERS} (got {n})"),
        };
        let talkers_export = talkers_export(&cli)?;
        let table = match cli.talkers_table {
            None => crate::bpf::DEFAULT_TALKERS_TABLE,
            Some(_) if talkers.is_none() && talkers_export.is_none() => {
                bail!(
                    "--talkers-table sizes the tables --talkers reads: add --talkers N (or \
                     --talkers-export N)"
                )
            }
            Some(n) if n >= i128::from(MIN_TALKERS_TABLE) && n <= i128::from(MAX_TALKERS_TABLE) => {
                n as u32
            }
            Some(n) => bail!(
                "--talkers-table must be {MIN_TALKERS_TABLE} to {MAX_TALKERS_TABLE} entries (got {n})"
            ),
        };
        let listed = talkers.is_some();
        // --talkers-export N alone counts the top N; with --talkers M, the
        // top max(N, M), listed in full in the JSON lines.
        let talkers = talkers
            .max(talkers_export)
            .map(|top| TalkersConfig { top, table });
        // Counting costs the program time per packet: only with a consumer,
        // the dashboard's talkers view, the --json lines or the exporters.
        if listed && cli.headless && !cli.json && !cli.detach {
            bail!(
                "--talkers --headless needs --json: the talkers are listed in the --json lines \
                 or in the dashboard's talkers view (t); --talkers-export N sends the top N to \
                 --otlp/--prometheus"
            );
        }
        let action = if cli.detach {
            if talkers.is_some() {
                bail!("--detach only detaches and exits: drop --talkers");
            }
            if cli.headless
                || cli.json
                || cli.count.is_some()
                || cli.otlp.is_some()
                || cli.otlp_protocol.is_some()
                || !cli.otlp_headers.is_empty()
                || cli.otlp_ca_file.is_some()
                || cli.otlp_interval.is_some()
            {
                bail!("--detach only detaches and exits: drop --headless/--json/--count/--otlp*");
            }
            Action::Detach
        } else {
            Action::Watch
        };
        let otlp = if action == Action::Watch {
            let args = OtlpArgs {
                endpoint: cli.otlp,
                protocol: cli.otlp_protocol.map(protocol),
                headers: cli.otlp_headers,
                ca_file: cli.otlp_ca_file,
                export_interval: cli.otlp_interval,
            };
            OtlpConfig::resolve(&args, env)?
        } else {
            None
        };
        if talkers_export.is_some() && otlp.is_none() && prometheus.is_none() {
            bail!(
                "--talkers-export sends the top talkers to the exporters: add --otlp ENDPOINT \
                 or --prometheus ADDR (or use --talkers N --headless --json to print them)"
            );
        }
        Ok(Self {
            action,
            interfaces,
            headless: cli.headless,
            json: cli.json,
            count,
            interval: cli.interval,
            mode: attach_mode(cli.mode),
            priority: cli.priority,
            otlp,
            prometheus,
            pin_dir: cli.pin_dir,
            verbose: cli.verbose,
            talkers,
            talkers_export,
        })
    }
}

/// `--talkers-export N`, checked.
fn talkers_export(cli: &Cli) -> anyhow::Result<Option<usize>> {
    let n = match cli.talkers_export {
        None => return Ok(None),
        Some(n) if n >= 1 && n <= MAX_TALKERS_EXPORT as i128 => n as usize,
        Some(n) => bail!(
            "--talkers-export must be 1 to {MAX_TALKERS_EXPORT} (got {n}): each source and \
             service exported is a series of its own; --talkers N lists up to {MAX_TALKERS} \
             in the --json lines"
        ),
    };
    if cli.detach {
        bail!("--detach only detaches and exits: drop --talkers-export");
    }
    Ok(Some(n))
}

fn attach_mode(m: ModeArg) -> AttachMode {
    match m {
        ModeArg::Auto => AttachMode::Auto,
        ModeArg::Native => AttachMode::Native,
        ModeArg::Skb => AttachMode::Skb,
    }
}

fn protocol(p: ProtocolArg) -> Protocol {
    match p {
        ProtocolArg::Grpc => Protocol::Grpc,
        ProtocolArg::HttpProtobuf => Protocol::HttpProtobuf,
    }
}

/// `--prometheus` takes an IP and a port, so the bind address (and with it
/// who can scrape) is explicit.
fn prometheus_addr(s: &str) -> anyhow::Result<SocketAddr> {
    s.trim().parse().map_err(|_| {
        anyhow::anyhow!(
            "--prometheus {s:?} is not IP:PORT: use e.g. 127.0.0.1:9464 (this host only) \
             or 0.0.0.0:9464 (any address)"
        )
    })
}

/// Checks interface names the way the kernel would, so a typo gives a clear
/// error before anything is loaded.
fn interfaces(raw: &[OsString]) -> anyhow::Result<Vec<String>> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for name in raw {
        let name = name
            .to_str()
            .with_context(|| format!("interface name {name:?} is not valid UTF-8"))?;
        validate_ifname(name)?;
        if !seen.insert(name) {
            bail!("interface {name} is named twice");
        }
        out.push(name.to_owned());
    }
    Ok(out)
}

pub fn validate_ifname(name: &str) -> anyhow::Result<()> {
    if name.is_empty() {
        bail!("an interface name cannot be empty");
    }
    if name.len() > MAX_IFNAME {
        // Show the start only: a pasted blob must not come back in full.
        let shown: String = name.chars().take(MAX_IFNAME + 1).collect();
        let more = if shown.len() < name.len() { "..." } else { "" };
        bail!(
            "interface name {shown:?}{more} is {} bytes, longer than Linux's {MAX_IFNAME} bytes",
            name.len()
        );
    }
    if name == "."
        || name == ".."
        || name.contains(['/', ':'])
        || name.chars().any(char::is_whitespace)
    {
        bail!("{name:?} is not a valid interface name");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    fn parse(args: &[&str]) -> anyhow::Result<Config> {
        let cli = Cli::try_parse_from(std::iter::once("xdptop").chain(args.iter().copied()))?;
        // Tests must not depend on the developer's OTEL_* variables.
        Config::from_cli_env(cli, &|_| None)
    }

    #[test]
    fn defaults() {
        let c = parse(&["eth0"]).expect("valid");
        assert_eq!(c.interfaces, ["eth0"]);
        assert_eq!(c.interval, Duration::from_secs(1));
        assert_eq!(c.mode, AttachMode::Auto);
        assert_eq!(c.priority, None);
        assert_eq!(c.action, Action::Watch);
        assert_eq!(c.pin_dir, PathBuf::from("/sys/fs/bpf"));
        assert_eq!(c.talkers, None);
    }

    #[test]
    fn talkers_flags() {
        let c = parse(&["--headless", "--json", "--talkers", "10", "eth0"]).expect("valid");
        assert_eq!(
            c.talkers,
            Some(TalkersConfig {
                top: 10,
                table: 131_072
            })
        );
        let c = parse(&[
            "--headless",
            "--json",
            "--talkers",
            "3",
            "--talkers-table",
            "16",
            "eth0",
        ])
        .expect("valid");
        assert_eq!(c.talkers, Some(TalkersConfig { top: 3, table: 16 }));
        // The dashboard's talkers view is a consumer too.
        let c = parse(&["--talkers", "5", "eth0"]).expect("valid");
        assert_eq!(c.talkers.map(|t| t.top), Some(5));
        assert!(!c.headless);
        for (args, want) in [
            (
                &["--headless", "--talkers", "5", "eth0"][..],
                "--talkers --headless needs --json: the talkers are listed in the --json lines \
                 or in the dashboard's talkers view (t); --talkers-export N sends the top N to \
                 --otlp/--prometheus",
            ),
            (
                &["--talkers", "0", "eth0"],
                "--talkers must be 1 to 1000 (got 0)",
            ),
            (
                &["--talkers", "1001", "eth0"],
                "--talkers must be 1 to 1000 (got 1001)",
            ),
            (
                &["--talkers-table", "4096", "eth0"],
                "--talkers-table sizes the tables --talkers reads: add --talkers N",
            ),
            (
                &["--talkers", "5", "--talkers-table", "8", "eth0"],
                "--talkers-table must be 16 to 4194304 entries (got 8)",
            ),
            (
                &["--detach", "--talkers", "5", "eth0"],
                "--detach only detaches and exits: drop --talkers",
            ),
        ] {
            let err = format!("{:#}", parse(args).expect_err("invalid"));
            assert!(err.contains(want), "{args:?}: {err}");
        }
    }

    #[test]
    fn talkers_export_flags() {
        let table = crate::bpf::DEFAULT_TALKERS_TABLE;
        // Alone, it turns counting on for the top N; no JSON needed.
        let c = parse(&[
            "--prometheus",
            "127.0.0.1:9464",
            "--talkers-export",
            "5",
            "eth0",
        ])
        .expect("valid");
        assert_eq!(c.talkers_export, Some(5));
        assert_eq!(c.talkers, Some(TalkersConfig { top: 5, table }));
        // With --talkers, the longer list is counted; the JSON lines list it.
        for (listed, exported, top) in [("10", "3", 10), ("3", "10", 10)] {
            let c = parse(&[
                "--headless",
                "--json",
                "--otlp",
                "localhost:4317",
                "--talkers",
                listed,
                "--talkers-export",
                exported,
                "eth0",
            ])
            .expect("valid");
            assert_eq!(c.talkers, Some(TalkersConfig { top, table }));
            assert_eq!(c.talkers_export, Some(exported.parse().expect("n")));
        }
        // --talkers-table sizes the tables it counts in too.
        let c = parse(&[
            "--prometheus",
            "127.0.0.1:0",
            "--talkers-export",
            "100",
            "--talkers-table",
            "1024",
            "eth0",
        ])
        .expect("valid");
        assert_eq!(
            c.talkers,
            Some(TalkersConfig {
                top: 100,
                table: 1024
            })
        );
        // OTLP from the environment counts as an exporter.
        let cli = Cli::try_parse_from(["xdptop", "--talkers-export", "2", "eth0"]).expect("clap");
        let env = |k: &str| (k == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| "localhost:4317".into());
        let c = Config::from_cli_env(cli, &env).expect("valid");
        assert_eq!(c.talkers_export, Some(2));
        assert!(c.otlp.is_some());
        for (args, want) in [
            (
                &[
                    "--prometheus",
                    "127.0.0.1:0",
                    "--talkers-export",
                    "0",
                    "eth0",
                ][..],
                "--talkers-export must be 1 to 100 (got 0)",
            ),
            (
                &[
                    "--prometheus",
                    "127.0.0.1:0",
                    "--talkers-export",
                    "101",
                    "eth0",
                ],
                "--talkers-export must be 1 to 100 (got 101)",
            ),
            (
                &[
                    "--prometheus",
                    "127.0.0.1:0",
                    "--talkers-export",
                    "-1",
                    "eth0",
                ],
                "--talkers-export must be 1 to 100 (got -1)",
            ),
            (
                &["--talkers-export", "5", "eth0"],
                "--talkers-export sends the top talkers to the exporters: add --otlp ENDPOINT \
                 or --prometheus ADDR",
            ),
            (
                &[
                    "--headless",
                    "--json",
                    "--talkers",
                    "5",
                    "--talkers-export",
                    "5",
                    "eth0",
                ],
                "add --otlp ENDPOINT or --prometheus ADDR",
            ),
            (
                &["--detach", "--talkers-export", "5", "eth0"],
                "--detach only detaches and exits: drop --talkers-export",
            ),
        ] {
            let err = format!("{:#}", parse(args).expect_err("invalid"));
            assert!(err.contains(want), "{args:?}: {err}");
        }
    }

    #[test]
    fn headless_json() {
        let c = parse(&[
            "--headless",
            "--json",
            "--count",
            "3",
            "--interval",
            "250ms",
            "a",
            "b",
        ])
        .expect("valid");
        assert_eq!(c.count, Some(3));
        assert_eq!(c.interval, Duration::from_millis(250));
        assert_eq!(c.interfaces, ["a", "b"]);
    }

    #[test]
    fn priority() {
        let c = parse(&["--priority", "50", "eth0"]).expect("valid");
        assert_eq!(c.priority, Some(50));
    }

    #[test]
    fn bad_values_are_errors_that_say_what_is_wrong() {
        for (args, want) in [
            (
                &["--interval", "0", "eth0"][..],
                "--interval 0s is out of range: use 10ms to 1h",
            ),
            (
                &["--interval", "0s", "eth0"],
                "--interval 0s is out of range",
            ),
            (
                &["--interval", "5ms", "eth0"],
                "--interval 5ms is out of range",
            ),
            (
                &["--interval", "2h", "eth0"],
                "--interval 2h is out of range",
            ),
            (&["--interval", "fast", "eth0"], "(try 250ms, 1s or 5s)"),
            (
                &["--count", "-1", "eth0"],
                "--count must be a whole number of samples, 1 or more (got -1)",
            ),
            (&["--count", "0", "eth0"], "1 or more (got 0)"),
            (
                &["--count", "x", "eth0"],
                "invalid value 'x' for '--count <N>'",
            ),
            (
                &["--mode", "turbo", "eth0"],
                "invalid value 'turbo' for '--mode <MODE>'",
            ),
            (
                &["--priority", "-1", "eth0"],
                "invalid value '-1' for '--priority <N>'",
            ),
            (
                &["--priority", "4294967296", "eth0"],
                "invalid value '4294967296' for '--priority <N>'",
            ),
            (
                &["--detach", "--priority", "20", "eth0"],
                "--detach removes xdptop's program wherever it runs: drop --priority",
            ),
            (&[], "name at least one interface"),
            (&["eth0", "eth0"], "interface eth0 is named twice"),
            (
                &["a-very-long-interface-name"],
                "is 26 bytes, longer than Linux's 15 bytes",
            ),
            (&["bad/name"], "\"bad/name\" is not a valid interface name"),
            (&["--json", "eth0"], "add --headless"),
            (
                &["--detach", "--headless", "eth0"],
                "--detach only detaches and exits: drop --headless/--json/--count/--otlp*",
            ),
            (
                &["--pin-dir", "relative", "eth0"],
                "--pin-dir must be an absolute path (got relative)",
            ),
            (
                &["--otlp", "localhost", "eth0"],
                "--otlp \"localhost\" is not a usable OTLP endpoint",
            ),
            (
                &["--otlp", "ftp://c:4317", "eth0"],
                "scheme ftp:// is not supported",
            ),
            (
                &["--otlp", "c:4317", "--otlp-protocol", "http/json", "eth0"],
                "invalid value 'http/json' for '--otlp-protocol <PROTOCOL>'",
            ),
            (
                &["--otlp", "c:4317", "--otlp-header", "novalue", "eth0"],
                "--otlp-header \"novalue\": write KEY=VALUE",
            ),
            (&["--otlp-header", "a=b", "eth0"], "need --otlp ENDPOINT"),
            (
                &["--detach", "--otlp-header", "a=b", "eth0"],
                "--detach only detaches and exits",
            ),
            (&["--otlp-interval", "1s", "eth0"], "need --otlp ENDPOINT"),
            (
                &["--otlp", "c:4317", "--otlp-interval", "0s", "eth0"],
                "--otlp-interval must be more than 0",
            ),
            (
                &["--otlp", "c:4317", "--otlp-interval", "often", "eth0"],
                "invalid value 'often' for '--otlp-interval <DURATION>'",
            ),
            (
                &["--detach", "--otlp-interval", "1s", "eth0"],
                "--detach only detaches and exits",
            ),
        ] {
            let err = parse(args).expect_err(&format!("{args:?} should be rejected"));
            let msg = format!("{err:#}");
            assert!(
                msg.contains(want),
                "{args:?}: {msg:?} does not say {want:?}"
            );
        }
    }

    #[test]
    fn otlp_flags() {
        let c = parse(&["eth0"]).expect("valid");
        assert!(c.otlp.is_none());
        let c = parse(&[
            "--otlp",
            "localhost:4318",
            "--otlp-protocol",
            "http/protobuf",
            "--otlp-header",
            "Authorization=Bearer x",
            "--otlp-header",
            "x-b=2",
            "eth0",
        ])
        .expect("valid");
        let o = c.otlp.expect("otlp on");
        assert_eq!(o.endpoint, "http://localhost:4318");
        assert_eq!(
            o.export_interval,
            crate::output::otlp::config::DEFAULT_EXPORT_INTERVAL
        );
        assert_eq!(o.protocol, crate::output::otlp::Protocol::HttpProtobuf);
        assert_eq!(
            o.headers,
            [
                ("authorization".to_owned(), "Bearer x".to_owned()),
                ("x-b".to_owned(), "2".to_owned())
            ]
        );
    }

    #[test]
    fn otlp_interval_flag_over_the_environment() {
        let env = |k: &str| match k {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("c:4317".to_owned()),
            "OTEL_METRIC_EXPORT_INTERVAL" => Some("5000".to_owned()),
            _ => None,
        };
        let cli = Cli::try_parse_from(["xdptop", "eth0"]).expect("parse");
        let c = Config::from_cli_env(cli, &env).expect("valid");
        assert_eq!(c.otlp.expect("on").export_interval, Duration::from_secs(5));
        let cli =
            Cli::try_parse_from(["xdptop", "--otlp-interval", "250ms", "eth0"]).expect("parse");
        let c = Config::from_cli_env(cli, &env).expect("valid");
        assert_eq!(
            c.otlp.expect("on").export_interval,
            Duration::from_millis(250)
        );
        let bad = |k: &str| match k {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("c:4317".to_owned()),
            "OTEL_METRIC_EXPORT_INTERVAL" => Some("5s".to_owned()),
            _ => None,
        };
        let cli = Cli::try_parse_from(["xdptop", "eth0"]).expect("parse");
        let err = Config::from_cli_env(cli, &bad).expect_err("5s is not milliseconds");
        assert!(
            format!("{err:#}").contains("OTEL_METRIC_EXPORT_INTERVAL"),
            "{err:#}"
        );
    }

    #[test]
    fn otel_endpoint_alone_enables_export_but_not_for_detach() {
        let env = |k: &str| (k == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| "c:4317".to_owned());
        let cli = Cli::try_parse_from(["xdptop", "eth0"]).expect("parse");
        let c = Config::from_cli_env(cli, &env).expect("valid");
        assert_eq!(c.otlp.expect("on").endpoint, "http://c:4317");
        let cli = Cli::try_parse_from(["xdptop", "--detach", "eth0"]).expect("parse");
        assert!(
            Config::from_cli_env(cli, &env)
                .expect("valid")
                .otlp
                .is_none()
        );
    }

    #[test]
    fn prometheus_address() {
        assert_eq!(parse(&["eth0"]).expect("valid").prometheus, None);
        let c = parse(&["--prometheus", "127.0.0.1:9464", "eth0"]).expect("valid");
        assert_eq!(c.prometheus, Some("127.0.0.1:9464".parse().expect("addr")));
        let c = parse(&["--prometheus", "[::1]:0", "eth0"]).expect("valid");
        assert_eq!(c.prometheus, Some("[::1]:0".parse().expect("addr")));
        for bad in ["9464", "localhost:9464", "127.0.0.1", "127.0.0.1:99999", ""] {
            let err = parse(&["--prometheus", bad, "eth0"]).expect_err(bad);
            assert!(err.to_string().contains("IP:PORT"), "{bad}: {err}");
        }
        let err = parse(&["--detach", "--prometheus", "127.0.0.1:9464", "eth0"])
            .expect_err("--detach with --prometheus");
        assert!(
            err.to_string()
                .contains("--detach only detaches and exits: drop --prometheus"),
            "{err}"
        );
    }

    #[test]
    fn non_utf8_name_is_an_error() {
        use std::os::unix::ffi::OsStringExt as _;
        let cli = Cli {
            interfaces: vec![OsString::from_vec(vec![0x65, 0xff])],
            ..Cli::try_parse_from(["xdptop"]).expect("parse")
        };
        let err = Config::from_cli(cli).expect_err("non-UTF-8");
        assert!(err.to_string().contains("UTF-8"), "{err}");
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::*;

        /// Flags, flag-like junk and values, so random vectors often parse
        /// far enough to reach the validation in `from_cli_env`.
        fn token() -> impl Strategy<Value = String> {
            prop_oneof![
                prop::sample::select(vec![
                    "--headless",
                    "--json",
                    "--count",
                    "--interval",
                    "--mode",
                    "--otlp",
                    "--otlp-protocol",
                    "--otlp-header",
                    "--otlp-ca-file",
                    "--otlp-interval",
                    "--prometheus",
                    "--detach",
                    "--pin-dir",
                    "-v",
                    "-vvv",
                    "--",
                    "-",
                    "--count=0",
                    "--interval=0",
                    "--mode=skb",
                    "eth0",
                    "lo",
                    "0",
                    "-1",
                    "1",
                    "1s",
                    "10ms",
                    "1h",
                    "2h",
                    "grpc",
                    "http/protobuf",
                    "a=b",
                    "=",
                    "localhost:4317",
                    "https://h:1",
                    "127.0.0.1:9464",
                    "[::1]:0",
                    "/sys/fs/bpf",
                    "relative",
                    "18446744073709551616",
                    "-9223372036854775809",
                    "1e9",
                    "NaN",
                    "∞",
                ])
                .prop_map(str::to_owned),
                "\\PC{0,20}",
                "[a-z0-9:/._=-]{0,24}",
            ]
        }

        fn env_value() -> impl Strategy<Value = Option<String>> {
            prop::option::of(prop_oneof![
                Just("localhost:4317".to_owned()),
                Just("grpc".to_owned()),
                Just("http/protobuf".to_owned()),
                Just("a=b,c=%20d".to_owned()),
                Just("1000".to_owned()),
                Just("0".to_owned()),
                "\\PC{0,16}",
            ])
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2_000))]

            /// Whatever the command line and the OTEL_* environment, parsing
            /// and validation return Ok or Err; they never panic, and what
            /// validates is within the documented bounds.
            #[test]
            fn random_command_lines_never_panic(
                args in prop::collection::vec(token(), 0..12),
                env in prop::collection::vec(env_value(), 7),
            ) {
                let Ok(cli) = Cli::try_parse_from(std::iter::once("xdptop".to_owned()).chain(args))
                else {
                    return Ok(());
                };
                let keys = [
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                    "OTEL_EXPORTER_OTLP_PROTOCOL",
                    "OTEL_EXPORTER_OTLP_HEADERS",
                    "OTEL_EXPORTER_OTLP_TIMEOUT",
                    "OTEL_RESOURCE_ATTRIBUTES",
                    "OTEL_SERVICE_NAME",
                    "OTEL_METRIC_EXPORT_INTERVAL",
                ];
                let lookup = |k: &str| keys.iter().position(|x| *x == k).and_then(|i| env[i].clone());
                if let Ok(c) = Config::from_cli_env(cli, &lookup) {
                    prop_assert!(!c.interfaces.is_empty());
                    prop_assert!(c.interval >= MIN_INTERVAL && c.interval <= MAX_INTERVAL);
                    prop_assert!(c.count.is_none_or(|n| n >= 1));
                    prop_assert!(c.interfaces.iter().all(|i| validate_ifname(i).is_ok()));
                    prop_assert!(c.pin_dir.is_absolute());
                    prop_assert!(c.otlp.is_none_or(|o| !o.export_interval.is_zero()));
                }
            }

            /// Interface names: any string is either accepted (and then a
            /// valid kernel name) or refused with a message, never a panic.
            #[test]
            fn any_interface_name_is_checked_without_panicking(name in "\\PC{0,40}") {
                match validate_ifname(&name) {
                    Ok(()) => {
                        prop_assert!(!name.is_empty() && name.len() <= MAX_IFNAME);
                        prop_assert!(!name.contains('/') && !name.contains(':'));
                    }
                    Err(e) => prop_assert!(e.to_string().len() < 200),
                }
            }
        }
    }
}
