//! `cargo xtask`: the project's developer tasks, one module per command.

mod bench;
mod check;
mod demo;
mod exec;
mod package;
mod screenshots;
mod soak;
mod test;
mod vmtest;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "xdptop's developer tasks")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Measure xdptop against its baselines and print the figures side by side.
    Bench(bench::Options),
    /// The static checks CI runs: rustfmt, clippy -D warnings, clang-format.
    Check,
    /// A throw-away veth lab with varied traffic and xdptop's dashboard on it (root).
    Demo(demo::Options),
    /// The .deb and .rpm operators install: target/package/xdptop_VERSION_amd64.deb
    /// and xdptop-VERSION-1.x86_64.rpm, with man page, completions and the unit.
    Package(package::Options),
    /// The whole test suite; test binaries run as root (sudo when needed).
    Test(test::Options),
    /// Hours of load and faults compressed into minutes: a lab at the highest
    /// lossless rate, a collector restarted every minute, a scraper loop (root).
    Soak(soak::Options),
    /// PNG screenshots of the dashboard on the demo lab, into screenshots/ (root).
    Screenshots(screenshots::Options),
    /// The lab suite on other kernels (6.1, 6.12) booted with qemu through
    /// virtme-ng; fails if a test fails or a trampoline test is skipped there.
    Vmtest(vmtest::Options),
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Command::Bench(opts) => bench::run(&opts),
        Command::Check => check::run(),
        Command::Demo(opts) => demo::run(&opts),
        Command::Package(opts) => package::run(&opts),
        Command::Test(opts) => test::run(&opts),
        Command::Soak(opts) => soak::run(&opts),
        Command::Screenshots(opts) => screenshots::run(&opts),
        Command::Vmtest(opts) => vmtest::run(&opts),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}
