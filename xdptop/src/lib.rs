//! xdptop: top for XDP. `run()` parses the command line, validates it, picks
//! the dashboard or the headless loop, and tears down in order.

pub mod cli;
pub mod config;
pub mod prometheus;
pub mod sample;
pub mod sampler;
pub mod status;

use std::process::ExitCode;

use clap::Parser as _;

/// The whole program; `main` only calls this.
pub fn run() -> ExitCode {
    let cli = cli::Cli::parse();
    match config::Config::from_cli(cli) {
        Ok(_config) => {
            eprintln!("xdptop: not wired yet");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("xdptop: {e:#}");
            ExitCode::from(2)
        }
    }
}
