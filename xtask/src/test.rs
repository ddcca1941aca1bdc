//! `cargo xtask test`: the whole test suite, as the README and CI run it.
//!
//! Builds as the calling user and runs the test binaries as root (through
//! `sudo -E` as cargo's runner, the way aya's projects do), since the lab
//! tests make namespaces, attach XDP and mount bpffs. Already root: no sudo.

use std::process::Command;

use crate::exec::{exec, sudo_env, workspace_root};

#[derive(clap::Args)]
pub struct Options {
    /// Extra arguments for `cargo test` (e.g. `-- --test-threads 1`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

pub fn run(opts: &Options) -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args(["test", "--workspace"]);
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("xtask: the lab tests run as root; sudo may ask for your password");
        cmd.args(["--config", &runner()]);
    }
    cmd.args(&opts.args);
    exec(&mut cmd)
}

/// cargo's runner: the test binaries through `sudo -E env PATH=… RUSTUP_HOME=…
/// CARGO_HOME=…`, so tests that run cargo or xdptop's tools find them as root.
fn runner() -> String {
    let words: Vec<String> = ["sudo".to_owned(), "-E".to_owned(), "env".to_owned()]
        .into_iter()
        .chain(sudo_env())
        .collect();
    let quoted: Vec<String> = words.iter().map(|w| format!("{w:?}")).collect();
    format!("target.'cfg(all())'.runner=[{}]", quoted.join(", "))
}
