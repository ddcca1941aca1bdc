//! The quick start's first steps where there is no sudo (a minimal image,
//! where the user is root and `sudo` is not installed): run as another user,
//! `scripts/setup.sh` and the root-needing xtask commands say to run them as
//! root instead of failing with `sudo: command not found`. (As root they
//! never call sudo; with sudo they re-run themselves through it.)
//!
//! "No sudo" is a PATH without it; "another user" is nobody (setpriv) when
//! the tests run as root. With a stand-in sudo that prints its arguments,
//! the re-runs are checked word for word.

use std::{
    fs,
    os::unix::fs::{PermissionsExt as _, symlink},
    path::{Path, PathBuf},
    process::{Command, Output},
};

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// A directory nobody can read, with a PATH of only `tools` (linked from
/// /usr/bin) and copies of `files`; removed on drop.
struct NoSudo {
    dir: PathBuf,
}

impl NoSudo {
    fn new(tag: &str, tools: &[&str], files: &[(&Path, &str)]) -> Self {
        let dir = std::env::temp_dir().join(format!("xdptop-nosudo-{tag}-{}", std::process::id()));
        fs::create_dir_all(dir.join("bin")).expect("temp dir");
        for d in [&dir, &dir.join("bin")] {
            fs::set_permissions(d, fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        for tool in tools {
            symlink(Path::new("/usr/bin").join(tool), dir.join("bin").join(tool)).expect("link");
        }
        for (from, name) in files {
            fs::copy(from, dir.join(name)).expect("copy");
        }
        Self { dir }
    }

    /// Runs `program args` as nobody (as root) or as we are, with PATH
    /// pointing at our bin/ only.
    fn run(&self, program: &Path, args: &[&str]) -> Output {
        assert!(!self.dir.join("bin/sudo").exists());
        let path = self.dir.join("bin");
        let mut cmd = if nix::unistd::Uid::effective().is_root() {
            let mut c = Command::new("/usr/bin/setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                .arg(program);
            c
        } else {
            Command::new(program)
        };
        cmd.args(args)
            .env("PATH", &path)
            .current_dir(&self.dir)
            .output()
            .expect("run")
    }
}

impl Drop for NoSudo {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn setup_without_root_or_sudo_says_to_run_it_as_root() {
    let setup = workspace().join("scripts/setup.sh");
    // setup.sh finds the repository from its own path: a copy in scripts/.
    let env = NoSudo::new("setup", &["id", "readlink", "dirname"], &[]);
    fs::create_dir_all(env.dir.join("scripts")).expect("mkdir");
    fs::set_permissions(env.dir.join("scripts"), fs::Permissions::from_mode(0o755)).expect("chmod");
    fs::copy(&setup, env.dir.join("scripts/setup.sh")).expect("copy");
    let out = env.run(Path::new("/usr/bin/bash"), &["scripts/setup.sh"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("needs root; sudo is not installed: run it as root"),
        "{stderr}"
    );
    assert!(!stderr.contains("command not found"), "{stderr}");
}

#[test]
fn root_tasks_without_root_or_sudo_say_to_run_them_as_root() {
    let env = NoSudo::new("xtask", &[], &[(Path::new(XTASK), "xtask")]);
    let xtask = env.dir.join("xtask");
    for (task, args) in [
        ("demo", &[][..]),
        ("soak", &["--minutes", "1"][..]),
        ("bench", &["--only", "program"][..]),
    ] {
        let mut all = vec![task];
        all.extend_from_slice(args);
        let out = env.run(&xtask, &all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{task}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "needs root, and sudo is not installed: run `cargo xtask {task}` as root"
            )),
            "{task}: {stderr}"
        );
        // It stopped before building anything.
        assert!(!stderr.contains("Compiling"), "{task}: {stderr}");
    }
}

#[test]
fn with_sudo_setup_and_root_tasks_run_themselves_again_through_it() {
    let env = NoSudo::new(
        "withsudo",
        &["id", "readlink", "dirname"],
        &[(Path::new(XTASK), "xtask")],
    );
    fs::create_dir_all(env.dir.join("scripts")).expect("mkdir");
    fs::set_permissions(env.dir.join("scripts"), fs::Permissions::from_mode(0o755)).expect("chmod");
    fs::copy(
        workspace().join("scripts/setup.sh"),
        env.dir.join("scripts/setup.sh"),
    )
    .expect("copy");
    // A sudo that prints its arguments and succeeds (so NoSudo::run, which
    // insists on no sudo, is not used here).
    let sudo = env.dir.join("bin/sudo");
    fs::write(&sudo, "#!/bin/sh\necho \"sudo $*\"\n").expect("write");
    fs::set_permissions(&sudo, fs::Permissions::from_mode(0o755)).expect("chmod");
    let run = |program: &Path, args: &[&str]| {
        let path = env.dir.join("bin");
        let mut cmd = if nix::unistd::Uid::effective().is_root() {
            let mut c = Command::new("/usr/bin/setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                .arg(program);
            c
        } else {
            Command::new(program)
        };
        cmd.args(args)
            .env("PATH", &path)
            .env("HOME", "/nonexistent")
            .env_remove("RUSTUP_HOME")
            .env_remove("CARGO_HOME")
            .current_dir(&env.dir)
            .output()
            .expect("run")
    };

    let out = run(Path::new("/usr/bin/bash"), &["scripts/setup.sh", "--flag"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let setup = env.dir.join("scripts/setup.sh");
    assert_eq!(stdout.trim(), format!("sudo -- {} --flag", setup.display()));

    let out = run(&env.dir.join("xtask"), &["bench", "--only", "program"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains("so it runs as root; sudo may ask for your password"),
        "{stderr}"
    );
    // The `sudo -n true` probe, then the run as root with PATH and rustup's
    // homes passed on (sudo's secure_path would drop ~/.cargo/bin).
    let want = format!(
        "sudo -E env PATH={} RUSTUP_HOME=/nonexistent/.rustup CARGO_HOME=/nonexistent/.cargo {} \
         bench --only program",
        env.dir.join("bin").display(),
        env.dir.join("xtask").display()
    );
    assert_eq!(stdout.lines().last(), Some(want.as_str()), "{stdout}");
}

#[test]
fn the_readme_quick_start_and_tasks_do_not_need_sudo_typed() {
    let readme = fs::read_to_string(workspace().join("README.md")).expect("README.md");
    let quick = readme
        .split("## Quick start")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("a Quick start section");
    let first = quick
        .lines()
        .skip_while(|l| *l != "```sh")
        .nth(1)
        .expect("a command block");
    assert!(
        first.starts_with("scripts/setup.sh && cargo xtask demo "),
        "the first command must work as root without sudo: {first}"
    );
    for line in readme.lines() {
        assert!(
            !line.contains("sudo -E env") && !line.contains("sudo cargo xtask"),
            "xtask commands get root themselves; the README should not type sudo: {line}"
        );
    }
}
