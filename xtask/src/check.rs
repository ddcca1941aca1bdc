//! `cargo xtask check`: formatting and lints for Rust and C, as CI runs them.

use std::process::Command;

use anyhow::Context as _;

use crate::exec::{exec, workspace_root};

pub fn run() -> anyhow::Result<()> {
    let root = workspace_root();
    exec(
        Command::new("cargo")
            .current_dir(&root)
            .args(["fmt", "--all", "--check"]),
    )?;
    exec(Command::new("cargo").current_dir(&root).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    let mut c_files = Vec::new();
    for dir in ["xdp-ebpf/bpf", "xdptop/tests/c"] {
        for entry in std::fs::read_dir(root.join(dir)).with_context(|| format!("listing {dir}"))? {
            let path = entry?.path();
            if matches!(path.extension().and_then(|e| e.to_str()), Some("c" | "h")) {
                c_files.push(path);
            }
        }
    }
    c_files.sort();
    exec(
        Command::new("clang-format")
            .current_dir(&root)
            .args(["--dry-run", "--Werror"])
            .args(&c_files),
    )
}
