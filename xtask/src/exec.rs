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
    Ok(target_dir().join(if release { "release" } else { "debug" }))
}

/// Cargo's target directory: `CARGO_TARGET_DIR`, else the workspace's.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
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

pub fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

fn sudo_installed() -> bool {
    Command::new("sudo")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn root_message(task: &str, why: &str, sudo: bool) -> String {
    if sudo {
        format!(
            "{why}, so it needs root; sudo cannot ask for a password here (no terminal):\n  \
             sudo -E env \"PATH=$PATH\" cargo xtask {task}"
        )
    } else {
        format!(
            "{why}, so it needs root, and sudo is not installed: run `cargo xtask {task}` as root"
        )
    }
}

/// For a task that needs root, run as a user: fails, with the command to
/// run instead, unless sudo is installed and can ask for a password (a
/// terminal) or needs none. Call it before building anything.
pub fn sudo_possible(task: &str, why: &str) -> anyhow::Result<()> {
    use std::io::IsTerminal as _;
    let sudo = sudo_installed();
    let can_ask = sudo
        && (std::io::stdin().is_terminal()
            || Command::new("sudo")
                .args(["-n", "true"])
                .output()
                .is_ok_and(|o| o.status.success()));
    if !can_ask {
        bail!("{}", root_message(task, why, sudo));
    }
    Ok(())
}

/// Runs this same `cargo xtask` command again through sudo (after the
/// caller built what it needs as the user, so target/ gets no root-owned
/// files) and returns its outcome. `env` goes to the root run, e.g. the
/// path of a binary built.
pub fn rerun_with_sudo(why: &str, env: &[(&str, &std::path::Path)]) -> anyhow::Result<()> {
    eprintln!("xtask: {why}, so it runs as root; sudo may ask for your password");
    let exe = std::env::current_exe().context("finding xtask's own path")?;
    let mut cmd = Command::new("sudo");
    cmd.args(["-E", "env"]).args(sudo_env());
    for (name, value) in env {
        cmd.arg(format!("{name}={}", value.display()));
    }
    exec(cmd.arg(exe).args(std::env::args_os().skip(1)))
}

/// `sudo -E` keeps the environment but not PATH (sudo's secure_path), and
/// some sudoers reset HOME: `NAME=VALUE` words for `env` that pass PATH and
/// rustup's homes on, so cargo and the tools on the user's PATH work as root.
pub fn sudo_env() -> Vec<String> {
    let home = std::env::var("HOME").unwrap_or_default();
    let var = |name: &str, default: String| std::env::var(name).unwrap_or(default);
    vec![
        format!("PATH={}", var("PATH", String::new())),
        format!(
            "RUSTUP_HOME={}",
            var("RUSTUP_HOME", format!("{home}/.rustup"))
        ),
        format!("CARGO_HOME={}", var("CARGO_HOME", format!("{home}/.cargo"))),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_message_shows_the_sudo_line_or_says_sudo_is_missing() {
        assert_eq!(
            root_message("demo", "the demo makes network namespaces", true),
            "the demo makes network namespaces, so it needs root; sudo cannot ask for a \
             password here (no terminal):\n  sudo -E env \"PATH=$PATH\" cargo xtask demo"
        );
        assert_eq!(
            root_message("soak", "the soak attaches XDP", false),
            "the soak attaches XDP, so it needs root, and sudo is not installed: run \
             `cargo xtask soak` as root"
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
