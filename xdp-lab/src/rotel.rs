//! rotel (PyPI), the real OTLP collector the tests, the soak and the
//! benchmarks send to: where its binary is, and the command line they share.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, ensure};

use crate::{netns::command_in, workspace_root};

/// The rotel binary: `ROTEL`, else the workspace's `.venv` (made by
/// scripts/setup.sh): its `bin/rotel`, or the `rotel-agent` the PyPI wheel
/// ships inside its package. Also looked for under `CARGO_WORKSPACE_DIR`
/// first, if that is set. The error says how to get one.
pub fn binary() -> anyhow::Result<PathBuf> {
    let mut roots = Vec::new();
    if let Some(ws) = std::env::var_os("CARGO_WORKSPACE_DIR") {
        roots.push(PathBuf::from(ws));
    }
    roots.push(workspace_root());
    find(std::env::var_os("ROTEL").map(PathBuf::from), &roots)
}

fn find(explicit: Option<PathBuf>, roots: &[PathBuf]) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        ensure!(
            p.is_file(),
            "ROTEL={} does not exist: point it at a rotel binary",
            p.display()
        );
        return Ok(p);
    }
    for root in roots {
        let venv = root.join(".venv");
        let bin = venv.join("bin/rotel");
        if bin.is_file() {
            return Ok(bin);
        }
        // The wheel ships the agent inside the package, with no console
        // script; find it under any python3.x.
        if let Ok(libs) = std::fs::read_dir(venv.join("lib")) {
            for lib in libs.flatten() {
                let agent = lib.path().join("site-packages/rotel/rotel-agent");
                if agent.is_file() {
                    return Ok(agent);
                }
            }
        }
    }
    bail!(
        "rotel (the OTLP collector) is missing: run scripts/setup.sh (or `python3 -m venv .venv \
         && .venv/bin/pip install rotel` at the workspace root; looked in {roots:?}), or set \
         ROTEL=/path/to/rotel-agent"
    )
}

/// `bin start` on `grpc` and `http` with the blackhole exporter, in the
/// network namespace at `netns` (see [`command_in`]), or right here for
/// `None`. Callers add what they need: debug logs, `--pid-file` and
/// `--log-file` (give each rotel its own: tests run them side by side).
pub fn command(bin: &Path, netns: Option<&Path>, grpc: SocketAddr, http: SocketAddr) -> Command {
    let mut cmd = command_in(netns, bin);
    cmd.arg("start")
        .args(["--otlp-grpc-endpoint", &grpc.to_string()])
        .args(["--otlp-http-endpoint", &http.to_string()])
        .args(["--exporter", "blackhole"]);
    cmd
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xdp-lab-rotel-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn the_venv_binary_is_found_then_the_wheel_agent() {
        let root = temp("venv");
        let agent = root.join(".venv/lib/python3.11/site-packages/rotel/rotel-agent");
        fs::create_dir_all(agent.parent().expect("parent")).expect("mkdir");
        fs::write(&agent, "").expect("agent");
        assert_eq!(
            find(None, std::slice::from_ref(&root)).expect("the agent"),
            agent
        );
        let bin = root.join(".venv/bin/rotel");
        fs::create_dir_all(bin.parent().expect("parent")).expect("mkdir");
        fs::write(&bin, "").expect("bin");
        assert_eq!(
            find(None, std::slice::from_ref(&root)).expect("bin/rotel"),
            bin
        );
        assert_eq!(
            find(Some(agent.clone()), std::slice::from_ref(&root)).expect("ROTEL"),
            agent
        );
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn a_missing_rotel_says_how_to_get_one() {
        let err = find(Some("/nonexistent/rotel".into()), &[]).expect_err("no such file");
        assert_eq!(
            err.to_string(),
            "ROTEL=/nonexistent/rotel does not exist: point it at a rotel binary"
        );
        let root = temp("empty");
        let err = find(None, std::slice::from_ref(&root)).expect_err("no venv");
        assert_eq!(
            err.to_string(),
            format!(
                "rotel (the OTLP collector) is missing: run scripts/setup.sh (or `python3 -m \
                 venv .venv && .venv/bin/pip install rotel` at the workspace root; looked in \
                 [{root:?}]), or set ROTEL=/path/to/rotel-agent"
            )
        );
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn the_command_line_is_start_on_both_ports_to_the_blackhole() {
        let grpc = SocketAddr::from(([127, 0, 0, 1], 4000));
        let http = SocketAddr::from(([127, 0, 0, 1], 4001));
        let c = command(
            Path::new("/r/rotel"),
            Some(Path::new("/run/netns/x")),
            grpc,
            http,
        );
        assert_eq!(c.get_program(), "nsenter");
        let args: Vec<_> = c.get_args().collect();
        assert_eq!(
            args,
            [
                "--net=/run/netns/x",
                "--",
                "/r/rotel",
                "start",
                "--otlp-grpc-endpoint",
                "127.0.0.1:4000",
                "--otlp-http-endpoint",
                "127.0.0.1:4001",
                "--exporter",
                "blackhole"
            ]
        );
    }
}
