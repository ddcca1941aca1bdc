//! The line `xdptop --version` prints: the crate version, the git commit the
//! binary was built from, and the cargo features it was built with, as
//! `XDPTOP_VERSION` for `cli.rs`.
//!
//! The commit comes from `XDPTOP_GIT_COMMIT` if set (a distribution building
//! from a tarball may know it), else from `git` when the source is a
//! checkout; a tarball without `.git` says "unknown commit".

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

fn main() {
    println!("cargo:rerun-if-env-changed=XDPTOP_GIT_COMMIT");
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let commit = match env::var("XDPTOP_GIT_COMMIT") {
        Ok(c) if !c.trim().is_empty() => Some(c.trim().to_owned()),
        _ => git_commit(&manifest),
    };
    let commit = match commit {
        Some(c) => format!("commit {c}"),
        None => "unknown commit".to_owned(),
    };
    let mut features: Vec<String> = env::vars()
        .filter_map(|(k, _)| {
            k.strip_prefix("CARGO_FEATURE_")
                .map(|f| f.to_lowercase().replace('_', "-"))
        })
        .collect();
    features.sort();
    let features = if features.is_empty() {
        "none".to_owned()
    } else {
        features.join(",")
    };
    let version = env::var("CARGO_PKG_VERSION").expect("set by cargo");
    println!("cargo:rustc-env=XDPTOP_VERSION={version} ({commit}, features: {features})");
}

/// `git rev-parse --short=12 HEAD` when the workspace is the top of a git
/// checkout, and the files that change when HEAD moves, so a new commit
/// rebuilds the version line (and only that: not every index change, not
/// other branches).
fn git_commit(dir: &Path) -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        // Building as root in a user's checkout (sudo) must still read it.
        let out = Command::new("git")
            .args(["-c", "safe.directory=*", "-C"])
            .arg(dir)
            .args(args)
            .output()
            .ok()?;
        let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
        (out.status.success() && !s.is_empty()).then_some(s)
    };
    // Only this repository's own checkout: a tarball unpacked inside some
    // other repository (a distribution's packaging tree) has no commit.
    let top = PathBuf::from(git(&["rev-parse", "--show-toplevel"])?);
    let workspace = dir.parent()?;
    if top.canonicalize().ok()? != workspace.canonicalize().ok()? {
        return None;
    }
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    let abs = |p: String| {
        let p = PathBuf::from(p);
        if p.is_absolute() { p } else { dir.join(p) }
    };
    if let Some(git_dir) = git(&["rev-parse", "--git-dir"]).map(abs) {
        rerun_if_exists(&git_dir.join("HEAD"));
    }
    if let Some(common) = git(&["rev-parse", "--git-common-dir"]).map(abs) {
        rerun_if_exists(&common.join("packed-refs"));
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            let loose = common.join(&branch);
            if loose.exists() {
                rerun_if_exists(&loose);
            } else if let Some(parent) = loose.parent() {
                // Packed now; a commit will write the loose file here.
                rerun_if_exists(parent);
            }
        }
    }
    Some(commit)
}

fn rerun_if_exists(path: &Path) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
