//! xdptop: top for XDP. `run()` parses the command line, validates it, picks
//! the dashboard or the headless loop, and tears down in order.

pub mod bpf;
pub mod cli;
pub mod config;
pub mod format;
pub mod headless;
pub mod otlp;
pub mod privilege;
pub mod sample;
pub mod sampler;
pub mod status;
pub mod tui;

use std::{io::IsTerminal as _, process::ExitCode, sync::mpsc};

use anyhow::{Context as _, bail};
use clap::Parser as _;

use crate::{
    bpf::{Detached, Pins},
    config::{Action, Config},
    sampler::{CounterSource, Sampler},
};

/// Exit code for a command line that does not validate.
const EXIT_USAGE: u8 = 2;

/// The whole program; `main` only calls this.
pub fn run() -> ExitCode {
    let cli = cli::Cli::parse();
    let config = match Config::from_cli(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("xdptop: {e:#}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    init_logging(&config);
    match execute(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xdptop: {e:#}");
            ExitCode::FAILURE
        }
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
    builder.format_target(false).init();
}

fn execute(config: &Config) -> anyhow::Result<()> {
    let pins = Pins::new(&config.pin_dir);
    match config.action {
        Action::Detach => detach(config, &pins),
        Action::Watch => watch(config, &pins),
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

fn watch(config: &Config, pins: &Pins) -> anyhow::Result<()> {
    let terminal = std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    if !config.headless && !terminal {
        bail!(
            "xdptop's dashboard needs a terminal; use --headless (with --json or --otlp) \
             for scripts and services"
        );
    }
    privilege::check("load and attach its XDP program")?;
    pins.check_bpffs()?;
    privilege::raise_memlock();
    // Every name must resolve before anything is attached.
    for iface in &config.interfaces {
        if bpf::ifindex(iface).is_none() {
            bail!("unknown interface {iface} in this network namespace (see `ip link`)");
        }
    }
    let exporter = match &config.otlp {
        Some(cfg) => {
            Some(otlp::Exporter::start(cfg, |_| {}).context("starting the OTLP exporter")?)
        }
        None => None,
    };
    let mut sources: Vec<Box<dyn CounterSource>> = Vec::new();
    for iface in &config.interfaces {
        let attached =
            bpf::watch(pins, iface, config.mode).with_context(|| format!("watching {iface}"))?;
        log::info!("{}", attached.note);
        if let Some(e) = &exporter {
            e.event("attach", Some(iface));
        }
        sources.push(Box::new(bpf::Watched::new(
            pins.clone(),
            iface,
            config.mode,
            attached.source,
        )));
    }
    privilege::drop_all_but_kept()?;
    if !config.headless {
        bail!("the dashboard is not built yet; use --headless --json");
    }
    let stop = headless::stop_flag()?;
    let (tx, rx) = mpsc::sync_channel(64);
    let (sampler, stop_sampler) = sampler::spawn(Sampler::new(sources), config.interval, tx);
    let mut stdout = std::io::stdout().lock();
    let end = headless::run(
        &rx,
        &stop,
        config.count,
        config.json,
        &mut stdout,
        &mut |tick| {
            if let Some(e) = &exporter {
                e.export(tick);
            }
        },
    );
    let _ = stop_sampler.send(());
    drop(rx);
    let _ = sampler.join();
    log::debug!("headless loop ended: {end:?}");
    if let Some(e) = exporter {
        let status = e.shutdown(SHUTDOWN_TIMEOUT);
        log::info!(
            "{}: {} samples exported, {} dropped{}",
            status.target,
            status.exported,
            status.dropped,
            status
                .last_error
                .map(|e| format!(", last error: {e}"))
                .unwrap_or_default()
        );
    }
    end.map(drop)
}

/// How long the last OTLP push may take on exit.
const SHUTDOWN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);
