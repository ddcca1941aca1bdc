//! Running commands with errors that name the command that failed.

use std::{path::PathBuf, process::Command};

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

pub use xdp_lab::{output, workspace_root};

/// Removes from `cmd`'s environment what `cargo run` set for xtask itself
/// (`CARGO_PKG_NAME=xtask`, `CARGO_MANIFEST_DIR`, ...). Build scripts such as
/// ring's declare `rerun-if-env-changed` on those names, so a cargo started
/// from here with them set would rebuild ring and everything above it, and
/// the next plain `cargo build` would do it again.
pub fn without_xtask_env(cmd: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("CARGO_PKG_")
            || matches!(
                name,
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_MANIFEST_LINKS"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
            )
        {
            cmd.env_remove(name);
        }
    }
    cmd
}

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
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Ok(target.join(if release { "release" } else { "debug" }))
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
