//! `cargo xtask vmtest [--kernel 6.1|6.12|all] [-- TEST ARGS]`: the lab test
//! suite against other kernels than the host's.
//!
//! Builds the privileged test binaries once on the host (`cargo test
//! --no-run`), then boots each kernel installed from Debian's packages with
//! virtme-ng (qemu, TCG: KVM fails here) on the host's own root filesystem,
//! read-only, and runs the binaries inside as root. A results directory
//! under `target/vmtest/` is the guest's only writable host directory; the
//! test binaries' logs and exit codes come back through it and are read
//! after the guest powers off. Reports per kernel (its release as the guest
//! saw it) and fails if any test failed, any binary did not finish, or a
//! test that needs BPF trampolines was skipped (the VM kernels have them:
//! see `xdp_lab::kernel`). qemu runs in its own process group, ended by that
//! group's id on Ctrl-C or a timeout; the results directory is removed
//! whatever happens.

use std::{
    fmt::Write as _,
    fs,
    io::{BufRead as _, BufReader, Read},
    os::unix::{fs::PermissionsExt as _, process::CommandExt as _},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, atomic::AtomicBool, atomic::Ordering},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde_json::Value;
use xdp_lab::kernel::SKIP_MARKER;

use crate::exec::{without_xtask_env, workspace_root};

/// The integration test targets of the `xdptop` package that run in the
/// guests: the privileged lab suite and the tests that need trampolines
/// (xdp-loader's dispatcher, xdptop joining it, the fexit verdict observer).
/// (The TUI/tmux test and the benchmarks add nothing a kernel changes.)
const GUEST_TESTS: &[&str] = &[
    "lab",
    "hardening",
    "otlp_lab",
    "prometheus_lab",
    "multiprog",
    "dispatcher",
    "talkers",
    "verdicts",
];

/// The kernels, by the name `--kernel` takes, with the Debian package that
/// installs each.
const KERNELS: &[(&str, &str)] = &[
    ("6.1", "linux-image-amd64 (Debian 12's own kernel)"),
    ("6.12", "linux-image-6.12-amd64"),
];

/// A guest that has not powered off by then is stopped and fails the run:
/// twice the slowest seen (12 min, on a loaded host), and two of them fit
/// in CI's 90 minutes with the host suite.
const GUEST_TIMEOUT: Duration = Duration::from_secs(25 * 60);

#[derive(clap::Args)]
pub struct Options {
    /// Which kernel to boot: 6.1, 6.12 or all.
    #[arg(long, default_value = "all", value_parser = ["6.1", "6.12", "all"])]
    kernel: String,
    /// A test target of the xdptop package to run (repeatable; default: lab,
    /// hardening, otlp_lab, prometheus_lab, multiprog, dispatcher, talkers,
    /// verdicts).
    #[arg(long = "test", value_name = "NAME")]
    tests: Vec<String>,
    /// Arguments for every test binary, e.g. a test name filter.
    #[arg(last = true)]
    args: Vec<String>,
}

pub fn run(opts: &Options) -> anyhow::Result<()> {
    if !crate::exec::is_root() {
        const WHY: &str =
            "the guests run the lab tests as root and the kernel images are readable by root only";
        crate::exec::sudo_possible("vmtest", WHY)?;
        return crate::exec::rerun_with_sudo(WHY, &[]);
    }
    let root = workspace_root();
    let vng = Tools::find(&root)?;
    let kernels: Vec<Kernel> = KERNELS
        .iter()
        .filter(|(name, _)| opts.kernel == "all" || opts.kernel == *name)
        .map(|&(name, package)| Kernel::find(name, package))
        .collect::<anyhow::Result<_>>()?;
    let tests: Vec<&str> = if opts.tests.is_empty() {
        GUEST_TESTS.to_vec()
    } else {
        opts.tests.iter().map(String::as_str).collect()
    };
    let binaries = build(&root, &tests)?;
    let stop = crate::exec::stop_flag()?;

    let mut reports = Vec::new();
    for kernel in &kernels {
        if stop.load(Ordering::Relaxed) {
            bail!("interrupted");
        }
        let report = run_guest(&root, &vng, kernel, &binaries, &opts.args, &stop)?;
        println!("{}", report.render());
        reports.push(report);
    }

    println!("\nvmtest summary:");
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for r in &reports {
        println!("  {}", r.headline());
        passed += r.passed();
        failed += r.failed();
        skipped += r.ignored() + r.skipped.len();
    }
    let problems: Vec<String> = reports.iter().flat_map(Report::problems).collect();
    for p in &problems {
        println!("  {p}");
    }
    println!("vmtest: {passed} passed, {failed} failed, {skipped} skipped");
    if !problems.is_empty() {
        bail!(
            "{} problem(s) on the VM kernels (each kernel's failed tests' output is above)",
            problems.len()
        );
    }
    Ok(())
}

/// virtme-ng's `vng` and what it runs.
struct Tools {
    vng: PathBuf,
    /// PATH with vng's directory first: vng runs `virtme-run` from PATH.
    path: std::ffi::OsString,
}

impl Tools {
    fn find(root: &Path) -> anyhow::Result<Self> {
        let venv_bin = root.join(".venv/bin");
        let host_path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![venv_bin];
        dirs.extend(std::env::split_paths(&host_path));
        let which = |name: &str| dirs.iter().map(|d| d.join(name)).find(|p| p.is_file());
        let vng = which("vng").context(
            "virtme-ng (vng) is not installed: run scripts/setup.sh, which puts it in .venv \
             (or `.venv/bin/pip install -r scripts/requirements-test.txt`)",
        )?;
        if which("qemu-system-x86_64").is_none() {
            bail!("qemu-system-x86_64 is missing: apt-get install qemu-system-x86");
        }
        if which("busybox").is_none() && !Path::new("/bin/busybox").exists() {
            bail!(
                "virtme-ng needs busybox for the initramfs of a distribution kernel: \
                 apt-get install busybox-static"
            );
        }
        let path =
            std::env::join_paths(dirs.iter().filter(|d| d.is_dir())).context("joining PATH")?;
        Ok(Tools { vng, path })
    }
}

/// An installed kernel image and its release.
struct Kernel {
    name: &'static str,
    image: PathBuf,
    release: String,
}

impl Kernel {
    /// The newest `/boot/vmlinuz-NAME.*` with its modules installed.
    fn find(name: &'static str, package: &str) -> anyhow::Result<Self> {
        let prefix = format!("vmlinuz-{name}.");
        let mut found: Vec<String> = fs::read_dir("/boot")
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|f| f.starts_with(&prefix))
                    .map(|f| f["vmlinuz-".len()..].to_owned())
                    .filter(|release| Path::new("/lib/modules").join(release).is_dir())
                    .collect()
            })
            .unwrap_or_default();
        found.sort_by_key(|release| version_key(release));
        let Some(release) = found.pop() else {
            bail!(
                "no {name} kernel in /boot (with its modules in /lib/modules): \
                 apt-get install {package}, or run scripts/setup.sh"
            );
        };
        let image = Path::new("/boot").join(format!("vmlinuz-{release}"));
        // vng reads the image as the calling user.
        fs::File::open(&image).with_context(|| {
            format!(
                "{} is not readable (Debian installs it 0600): run as root, or \
                 `sudo chmod 0644 {0}`",
                image.display()
            )
        })?;
        Ok(Kernel {
            name,
            image,
            release,
        })
    }
}

/// "6.12.117+deb12-amd64" → [6, 12, 117, 12]: numbers in order, to sort by.
fn version_key(release: &str) -> Vec<u64> {
    release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// A test executable from `cargo test --no-run`.
struct Binary {
    name: String,
    exe: PathBuf,
    /// Its package's directory: cargo runs tests there.
    dir: PathBuf,
}

/// `cargo test -p xdptop --no-run --test NAME...` on the host; the
/// executables from its JSON messages.
/// Runs `exe args` as root in a guest booted with `kernel` (6.1 or 6.12),
/// as vmtest runs a test binary; returns what it printed, or an error with
/// its output when it failed.
pub fn run_in_guest(kernel: &str, exe: &Path, args: &[String]) -> anyhow::Result<String> {
    let &(name, package) = KERNELS
        .iter()
        .find(|(k, _)| *k == kernel)
        .with_context(|| format!("no kernel {kernel} in vmtest's list"))?;
    let root = workspace_root();
    let tools = Tools::find(&root)?;
    let kernel = Kernel::find(name, package)?;
    let binary = Binary {
        name: exe
            .file_name()
            .map_or_else(|| "command".into(), |n| n.to_string_lossy().into_owned()),
        exe: exe.to_path_buf(),
        dir: root.clone(),
    };
    let stop = crate::exec::stop_flag()?;
    let mut report = run_guest(&root, &tools, &kernel, &[binary], args, &stop)?;
    if let Some(why) = report.unfinished {
        bail!("{why}");
    }
    let result = report.binaries.pop().context("no result from the guest")?;
    if result.rc != Some(0) {
        bail!(
            "`{} {}` failed in the {} guest (exit {:?}):\n{}",
            exe.display(),
            args.join(" "),
            report.release,
            result.rc,
            result.log
        );
    }
    Ok(result.log)
}

fn build(root: &Path, tests: &[&str]) -> anyhow::Result<Vec<Binary>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    without_xtask_env(&mut cmd).current_dir(root).args([
        "test",
        "-p",
        "xdptop",
        "--no-run",
        "--message-format=json-render-diagnostics",
    ]);
    for t in tests {
        cmd.args(["--test", t]);
    }
    eprintln!(
        "xtask: building the test binaries on the host: cargo test -p xdptop --no-run --test {}",
        tests.join(" --test ")
    );
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo test --no-run")?;
    if !out.status.success() {
        bail!("building the test binaries failed: {}", out.status);
    }
    let mut binaries = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if v["reason"] != "compiler-artifact" || v["profile"]["test"] != true {
            continue;
        }
        let (Some(exe), Some(name), Some(manifest)) = (
            v["executable"].as_str(),
            v["target"]["name"].as_str(),
            v["manifest_path"].as_str(),
        ) else {
            continue;
        };
        let dir = Path::new(manifest)
            .parent()
            .context("manifest path")?
            .to_path_buf();
        binaries.push(Binary {
            name: name.to_owned(),
            exe: PathBuf::from(exe),
            dir,
        });
    }
    for t in tests {
        if !binaries.iter().any(|b| b.name == *t) {
            bail!("cargo built no test binary called {t}");
        }
    }
    binaries.sort_by_key(|b| tests.iter().position(|t| *t == b.name));
    Ok(binaries)
}

/// The results directory; removed on drop, whatever happened.
struct ResultsDir(PathBuf);

impl Drop for ResultsDir {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.0) {
            eprintln!("xtask: removing {}: {e}", self.0.display());
        }
        // target/vmtest itself, once empty.
        if let Some(parent) = self.0.parent() {
            let _ = fs::remove_dir(parent);
        }
    }
}

/// qemu (under vng) in its own process group, whose id is vng's pid; the
/// group is killed on drop. vng is reaped only after that, so the group id
/// cannot be reused by an unrelated process in the meantime.
struct Guest {
    child: Child,
    status: Option<std::process::ExitStatus>,
}

impl Guest {
    fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.id() as i32)
    }

    /// Whether vng has exited, without reaping it.
    fn vng_exited(&self) -> bool {
        use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        !matches!(
            waitid(Id::Pid(self.pid()), flags),
            Ok(WaitStatus::StillAlive)
        )
    }

    /// SIGTERM to the group unless vng is gone, SIGKILL to whatever is left
    /// in it (qemu, if vng died first), then reaps vng; returns its status.
    fn end(&mut self) -> Option<std::process::ExitStatus> {
        use nix::sys::signal::{Signal, killpg};
        if self.status.is_none() {
            if !self.vng_exited() {
                let _ = killpg(self.pid(), Signal::SIGTERM);
                let deadline = Instant::now() + Duration::from_secs(5);
                while Instant::now() < deadline && !self.vng_exited() {
                    thread::sleep(Duration::from_millis(100));
                }
            }
            let _ = killpg(self.pid(), Signal::SIGKILL);
            self.status = self.child.wait().ok();
        }
        self.status
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        self.end();
    }
}

fn run_guest(
    root: &Path,
    tools: &Tools,
    kernel: &Kernel,
    binaries: &[Binary],
    args: &[String],
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<Report> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let dir = target.join("vmtest").join(kernel.name);
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let results = ResultsDir(dir.clone());
    let script = dir.join("guest.sh");
    fs::write(&script, guest_script(&dir, binaries, args)?)
        .with_context(|| format!("writing {}", script.display()))?;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755))?;
    // Tests write scratch files into CARGO_TARGET_TMPDIR (target/tmp), which
    // is read-only in the guest: an overlay makes it writable there, and
    // what the guest writes vanishes with it.
    let target_tmp = target.join("tmp");
    fs::create_dir_all(&target_tmp)?;

    let mut cmd = Command::new(&tools.vng);
    cmd.env("PATH", &tools.path)
        .current_dir(root)
        .arg("--run")
        .arg(&kernel.image)
        .args([
            "--disable-kvm",
            "--cpus",
            "2",
            "--memory",
            "3G",
            "--user",
            "root",
        ])
        .arg("--rwdir")
        .arg(&dir)
        .arg("--overlay-rwdir")
        .arg(&target_tmp)
        .arg("--exec")
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    eprintln!(
        "xtask: booting {} ({}) with qemu (TCG) for {} test binaries",
        kernel.release,
        kernel.image.display(),
        binaries.len()
    );
    let started = Instant::now();
    let mut guest = Guest {
        child: cmd
            .spawn()
            .with_context(|| format!("starting {}", tools.vng.display()))?,
        status: None,
    };
    let label = format!("[{}]", kernel.name);
    let console = Arc::new(std::sync::Mutex::new(String::new()));
    let mut readers = Vec::new();
    let out: Box<dyn Read + Send> = Box::new(guest.child.stdout.take().context("stdout")?);
    let err: Box<dyn Read + Send> = Box::new(guest.child.stderr.take().context("stderr")?);
    for pipe in [out, err] {
        let label = label.clone();
        let console = Arc::clone(&console);
        readers.push(thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                println!("{label} {line}");
                if let Ok(mut c) = console.lock() {
                    c.push_str(&line);
                    c.push('\n');
                }
            }
        }));
    }
    loop {
        if stop.load(Ordering::Relaxed) {
            guest.end();
            bail!("interrupted: the {} guest was stopped", kernel.release);
        }
        if started.elapsed() > GUEST_TIMEOUT {
            guest.end();
            bail!(
                "the {} guest did not finish within {:?}; stopped",
                kernel.release,
                GUEST_TIMEOUT
            );
        }
        if guest.vng_exited() {
            break;
        }
        thread::sleep(Duration::from_millis(200));
    }
    // Anything vng left in its group (it should be nothing) goes too.
    let status = guest.end().context("waiting for vng")?;
    for r in readers {
        let _ = r.join();
    }
    let elapsed = started.elapsed();
    let console = console.lock().map(|c| c.clone()).unwrap_or_default();
    let report = Report::read(kernel, &results.0, binaries, status, elapsed, &console);
    drop(results);
    Ok(report)
}

/// The script the guest runs as root: bpffs, veth, then each binary with
/// its output and exit code into the results directory.
fn guest_script(dir: &Path, binaries: &[Binary], args: &[String]) -> anyhow::Result<String> {
    let q = |p: &Path| shell_quote(&p.to_string_lossy());
    let path = std::env::var("PATH").unwrap_or_default();
    let mut s = String::new();
    writeln!(s, "#!/bin/sh")?;
    writeln!(
        s,
        "# Written by cargo xtask vmtest; runs in the guest as root."
    )?;
    writeln!(s, "out={}", q(dir))?;
    writeln!(s, "export PATH={}", shell_quote(&path))?;
    writeln!(s, "export HOME=/root RUST_BACKTRACE=1")?;
    writeln!(s, "export XDP_LAB_VM=\"$(uname -r)\"")?;
    writeln!(s, "uname -r > \"$out/release\"")?;
    writeln!(
        s,
        "mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf || echo 'guest: no bpffs'"
    )?;
    writeln!(s, "modprobe veth || echo 'guest: modprobe veth failed'")?;
    writeln!(s, "echo \"guest: $(uname -r) up, $(nproc) CPUs\"")?;
    let quoted_args: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
    for b in binaries {
        writeln!(s, "echo \"guest: running {} ...\"", b.name)?;
        writeln!(s, "t0=$(date +%s)")?;
        writeln!(
            s,
            "(cd {} && {} {}) > \"$out/{}.log\" 2>&1",
            q(&b.dir),
            q(&b.exe),
            quoted_args.join(" "),
            b.name
        )?;
        writeln!(s, "echo $? > \"$out/{}.rc\"", b.name)?;
        writeln!(
            s,
            "echo \"guest: {}: $(grep '^test result:' \"$out/{}.log\" | tail -n 1) ($(( $(date +%s) - t0 )) s)\"",
            b.name, b.name
        )?;
    }
    writeln!(s, "touch \"$out/done\"")?;
    Ok(s)
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// One test binary's outcome in a guest.
struct BinaryResult {
    name: String,
    /// Everything it printed.
    log: String,
    rc: Option<i32>,
    /// From libtest's `test result:` line: passed, failed, ignored.
    counts: Option<(usize, usize, usize)>,
    failed: Vec<String>,
    /// libtest's `failures:` section (the failed tests' output).
    failure_output: String,
}

struct Report {
    kernel: String,
    release: String,
    elapsed: Duration,
    binaries: Vec<BinaryResult>,
    /// `binary::test: reason` for each test skipped for want of trampolines.
    skipped: Vec<String>,
    /// The guest did not get to the end of its script.
    unfinished: Option<String>,
}

impl Report {
    fn read(
        kernel: &Kernel,
        dir: &Path,
        binaries: &[Binary],
        status: std::process::ExitStatus,
        elapsed: Duration,
        console: &str,
    ) -> Self {
        let release = fs::read_to_string(dir.join("release"))
            .map(|r| r.trim().to_owned())
            .unwrap_or_else(|_| kernel.release.clone());
        let unfinished = (!dir.join("done").exists()).then(|| {
            let tail: Vec<&str> = console.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            format!(
                "the guest stopped before the end of its script (vng: {status}); its last \
                 console lines:\n{}",
                tail.join("\n")
            )
        });
        let mut skipped = Vec::new();
        let results = binaries
            .iter()
            .map(|b| {
                let log =
                    fs::read_to_string(dir.join(format!("{}.log", b.name))).unwrap_or_default();
                let rc = fs::read_to_string(dir.join(format!("{}.rc", b.name)))
                    .ok()
                    .and_then(|r| r.trim().parse().ok());
                for line in log.lines() {
                    if let Some(rest) = line.strip_prefix(SKIP_MARKER) {
                        skipped.push(format!("{}::{}", b.name, rest.trim_start_matches(": ")));
                    }
                }
                let mut result = parse_log(&b.name, &log, rc);
                result.log = log;
                result
            })
            .collect();
        Report {
            kernel: kernel.name.to_owned(),
            release,
            elapsed,
            binaries: results,
            skipped,
            unfinished,
        }
    }

    /// Passed for libtest, less those that only printed the skip marker.
    fn passed(&self) -> usize {
        let passed: usize = self
            .binaries
            .iter()
            .filter_map(|b| b.counts)
            .map(|c| c.0)
            .sum();
        passed.saturating_sub(self.skipped.len())
    }

    fn failed(&self) -> usize {
        self.binaries
            .iter()
            .filter_map(|b| b.counts)
            .map(|c| c.1)
            .sum()
    }

    fn ignored(&self) -> usize {
        self.binaries
            .iter()
            .filter_map(|b| b.counts)
            .map(|c| c.2)
            .sum()
    }

    /// Everything that fails the run, one line each.
    fn problems(&self) -> Vec<String> {
        let on = format!("on {}", self.release);
        let mut p = Vec::new();
        if let Some(why) = &self.unfinished {
            p.push(format!("{on}: {}", why.lines().next().unwrap_or_default()));
        }
        for b in &self.binaries {
            for t in &b.failed {
                p.push(format!("FAILED {on}: {}::{t}", b.name));
            }
            match (b.rc, b.counts) {
                (None, _) => p.push(format!("{on}: {} did not run to the end", b.name)),
                (Some(rc), None) => p.push(format!(
                    "{on}: {} exited with {rc} without a test result line",
                    b.name
                )),
                (Some(rc), Some(_)) if rc != 0 && b.failed.is_empty() => {
                    p.push(format!("{on}: {} exited with {rc}", b.name))
                }
                _ => {}
            }
        }
        for s in &self.skipped {
            p.push(format!(
                "{on}: skipped, but this kernel must have BPF trampolines: {s}"
            ));
        }
        p
    }

    fn headline(&self) -> String {
        let verdict = if self.problems().is_empty() {
            "ok"
        } else {
            "FAILED"
        };
        format!(
            "{} ({}): {verdict}: {} passed, {} failed, {} ignored, {} skipped for want of \
             trampolines, in {:.0?}",
            self.kernel,
            self.release,
            self.passed(),
            self.failed(),
            self.ignored(),
            self.skipped.len(),
            Duration::from_secs(self.elapsed.as_secs())
        )
    }

    fn render(&self) -> String {
        let mut s = format!("\nvmtest on {} (kernel {}):\n", self.release, self.kernel);
        for b in &self.binaries {
            let counts = match b.counts {
                Some((p, f, i)) => format!("{p} passed, {f} failed, {i} ignored"),
                None => "no test result".to_owned(),
            };
            let _ = writeln!(s, "  {:<16} {counts}", b.name);
        }
        for b in &self.binaries {
            if !b.failure_output.is_empty() {
                let _ = writeln!(
                    s,
                    "--- {} on {}: failures ---\n{}",
                    b.name, self.release, b.failure_output
                );
            }
        }
        if let Some(why) = &self.unfinished {
            let _ = writeln!(s, "{why}");
        }
        for p in self.problems() {
            let _ = writeln!(s, "  {p}");
        }
        let _ = write!(s, "  {}", self.headline());
        s
    }
}

/// libtest's output: the `test result:` counts, the failed tests, and the
/// `failures:` section with their output.
fn parse_log(name: &str, log: &str, rc: Option<i32>) -> BinaryResult {
    let mut counts = None;
    let mut failed = Vec::new();
    for line in log.lines() {
        if let Some(rest) = line.strip_prefix("test result: ") {
            let num = |word: &str| -> Option<usize> {
                rest.split(';')
                    .map(str::trim)
                    .find_map(|part| part.strip_suffix(word))
                    .and_then(|n| n.trim().rsplit(' ').next()?.parse().ok())
            };
            counts = Some((
                num(" passed").unwrap_or(0),
                num(" failed").unwrap_or(0),
                num(" ignored").unwrap_or(0),
            ));
        } else if let Some(test) = line
            .strip_prefix("test ")
            .and_then(|l| l.strip_suffix(" ... FAILED"))
        {
            failed.push(test.to_owned());
        }
    }
    let failure_output = log
        .find("\nfailures:\n")
        .map(|i| log[i + 1..].to_owned())
        .unwrap_or_default();
    BinaryResult {
        name: name.to_owned(),
        log: String::new(),
        rc,
        counts,
        failed,
        failure_output,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtest_output_is_counted_and_failures_named() {
        let log = "running 3 tests\n\
                   test a ... ok\n\
                   test b ... FAILED\n\
                   test c ... ignored\n\n\
                   failures:\n\n---- b stdout ----\nboom\n\n\
                   failures:\n    b\n\n\
                   test result: FAILED. 1 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 1.00s\n";
        let r = parse_log("lab", log, Some(101));
        assert_eq!(r.counts, Some((1, 1, 1)));
        assert_eq!(r.failed, vec!["b".to_owned()]);
        assert!(r.failure_output.contains("boom"), "{}", r.failure_output);
        let ok = parse_log(
            "lab",
            "test result: ok. 12 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 9.1s\n",
            Some(0),
        );
        assert_eq!(ok.counts, Some((12, 0, 0)));
        assert!(ok.failed.is_empty() && ok.failure_output.is_empty());
    }

    #[test]
    fn releases_sort_by_their_numbers() {
        let mut r = vec!["6.1.0-9-amd64", "6.1.0-57-amd64", "6.1.0-10-amd64"];
        r.sort_by_key(|s| version_key(s));
        assert_eq!(r, ["6.1.0-9-amd64", "6.1.0-10-amd64", "6.1.0-57-amd64"]);
    }

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
