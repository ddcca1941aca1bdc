//! Running commands with errors that name the command that failed.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

/// Runs `cmd` to completion, inheriting stdio; fails naming the command.
pub fn exec(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed: {status}");
    }
    Ok(())
}

/// The workspace root (xtask lives one level below it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the workspace")
        .to_path_buf()
}

pub use xdp_lab::output;

/// `cargo build --quiet [--release] ARGS` in the workspace, with the cargo
/// that runs us; returns the directory of that profile's binaries.
pub fn cargo_build(release: bool, args: &[&str]) -> anyhow::Result<PathBuf> {
    let root = workspace_root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root).args(["build", "--quiet"]);
    if release {
        cmd.arg("--release");
    }
    exec(cmd.args(args))?;
    Ok(target_dir().join(if release { "release" } else { "debug" }))
}

/// Cargo's target directory: `CARGO_TARGET_DIR`, else the workspace's.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The rotel collector: `ROTEL`, else the workspace's `.venv` (made by
/// scripts/setup.sh): its `bin/rotel`, or the `rotel-agent` the PyPI wheel
/// ships inside its package.
pub fn rotel_binary() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("ROTEL") {
        return Ok(PathBuf::from(p));
    }
    let venv = workspace_root().join(".venv");
    let bin = venv.join("bin/rotel");
    if bin.is_file() {
        return Ok(bin);
    }
    if let Ok(libs) = std::fs::read_dir(venv.join("lib")) {
        for lib in libs.flatten() {
            let agent = lib.path().join("site-packages/rotel/rotel-agent");
            if agent.is_file() {
                return Ok(agent);
            }
        }
    }
    bail!(
        "rotel (the OTLP collector) is not in {}: run scripts/setup.sh (or `python3 -m venv \
         .venv && .venv/bin/pip install rotel` at the workspace root), or set \
         ROTEL=/path/to/rotel-agent",
        venv.display()
    )
}

/// A flag that SIGINT, SIGTERM and SIGHUP set, so a task that made a lab
/// gets to clean up instead of dying mid-way.
pub fn stop_flag() -> anyhow::Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    use anyhow::Context as _;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, std::sync::Arc::clone(&stop))
            .context("installing signal handlers")?;
    }
    Ok(stop)
}

/// Fails unless we run as root, showing the sudo line for `cargo xtask TASK`.
pub fn require_root(task: &str, why: &str) -> anyhow::Result<()> {
    if !nix::unistd::Uid::effective().is_root() {
        bail!("{}", root_message(task, why));
    }
    Ok(())
}

fn root_message(task: &str, why: &str) -> String {
    format!("{why}, so it needs root:\n  sudo -E env \"PATH=$PATH\" cargo xtask {task}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_message_shows_the_sudo_line() {
        assert_eq!(
            root_message("demo", "the demo makes network namespaces"),
            "the demo makes network namespaces, so it needs root:\n  \
             sudo -E env \"PATH=$PATH\" cargo xtask demo"
        );
    }

    #[test]
    fn a_failing_command_is_named_with_its_stderr() {
        let err = output(Command::new("sh").args(["-c", "echo oops >&2; exit 3"]))
            .expect_err("exit 3 is a failure")
            .to_string();
        assert!(err.contains("\"sh\" \"-c\""), "{err}");
        assert!(
            err.contains("exit status: 3") && err.contains("oops"),
            "{err}"
        );
        let err = output(&mut Command::new("/nonexistent/tool"))
            .expect_err("a missing program is a failure")
            .to_string();
        assert!(
            err.contains("could not start \"/nonexistent/tool\""),
            "{err}"
        );
    }
}
