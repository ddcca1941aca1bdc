//! xdptop: top for XDP. `run()` parses the command line, validates it, picks
//! the dashboard or the headless loop, and tears down in order.
//!
//! No `unsafe` outside `bpf/sys.rs`, the bpf(2) calls aya lacks.
#![deny(unsafe_code)]

pub mod bpf;
pub mod cli;
pub mod config;
pub mod engine;
pub mod format;
pub mod headless;
pub mod host;
pub mod logbuf;
pub mod manual;
pub mod output;
pub mod privilege;
pub mod sample;
pub mod sampler;
pub mod session;
pub mod status;
pub mod talkers;
pub mod tui;

use std::{io::IsTerminal as _, process::ExitCode};

use clap::{Parser as _, error::ErrorKind};

use crate::{
    bpf::{Detached, Pins},
    config::{Action, Config},
};

/// Exit code for a command line that does not validate.
pub(crate) const EXIT_USAGE: u8 = 2;

/// The whole program; `main` only calls this.
pub fn run() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let config = match Config::from_cli(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("xdptop: {}", clip(&format!("{e:#}")));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    init_logging(&config);
    let result = execute(&config);
    logbuf::flush_to_stderr();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xdptop: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--help` and `--version` print as clap makes them; a command line that
/// does not parse gets one line on stderr (clap's message without the usage
/// block) and exit code 2, like a value that does not validate.
fn usage_error(e: &clap::Error) -> ExitCode {
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    eprintln!(
        "xdptop: {} (see `xdptop --help`)",
        clip(&one_line(&e.to_string()))
    );
    ExitCode::from(EXIT_USAGE)
}

/// clap's multi-line error as one line: the message and its hints, without
/// the usage block and the "try --help" footer.
pub fn one_line(rendered: &str) -> String {
    let mut usage = false;
    let parts: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .filter(|l| {
            if l.starts_with("Usage:") {
                usage = true;
            } else if l.is_empty() {
                usage = false;
            }
            !usage && !l.is_empty() && !l.starts_with("For more information")
        })
        .map(|l| l.strip_prefix("error: ").unwrap_or(l))
        .collect();
    parts.join("; ")
}

/// Longest usage error printed: a pasted blob as an argument must not come
/// back as a screenful.
const MAX_USAGE_ERROR: usize = 300;

/// `s`, cut to [`MAX_USAGE_ERROR`] characters with a marker.
pub fn clip(s: &str) -> String {
    match s.char_indices().nth(MAX_USAGE_ERROR) {
        None => s.to_owned(),
        Some((i, _)) => format!("{}... ({} more bytes)", &s[..i], s.len() - i),
    }
}

/// stderr logging, journald-friendly: no colours or timestamps when stderr
/// is not a terminal (journald adds its own).
fn init_logging(config: &Config) {
    let default = match config.verbose {
        0 if config.headless => "info",
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default));
    if !std::io::stderr().is_terminal() {
        builder.format_timestamp(None);
    }
    if config.action == Action::Watch && !config.headless {
        // The dashboard owns the terminal; see logbuf.
        builder.target(env_logger::Target::Pipe(Box::new(logbuf::Writer)));
    }
    builder.format_target(false).init();
}

fn execute(config: &Config) -> anyhow::Result<()> {
    let pins = Pins::new(&config.pin_dir);
    match config.action {
        Action::Detach => detach(config, &pins),
        Action::Watch => session::watch(config, &pins),
    }
}

fn detach(config: &Config, pins: &Pins) -> anyhow::Result<()> {
    privilege::check("detach")?;
    pins.check_bpffs()?;
    for iface in &config.interfaces {
        match bpf::detach(pins, iface)? {
            Detached::Detached { prog_id } => {
                println!("{iface}: detached xdptop's program (id {prog_id}) and removed its pins")
            }
            Detached::RemovedStalePins => {
                println!("{iface}: xdptop was no longer attached; removed its stale pins")
            }
            Detached::NotAttached => println!(
                "{iface}: xdptop is not attached (nothing under {})",
                pins.own_dir().display()
            ),
        }
    }
    Ok(())
}
