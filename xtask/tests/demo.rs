//! `cargo xtask demo` as a newcomer runs it, in a real terminal (tmux): with
//! the tree built, the dashboard shows non-zero, changing rates within a
//! minute; `q` ends it; afterwards none of its namespaces, links, XDP
//! attachments, pins or processes remain. Without root it shows the sudo
//! line instead.
//!
//! The demo is the built xtask binary (`cargo xtask` is `cargo run` of it);
//! the test builds xdptop first, so the demo's own `cargo build` finds
//! nothing to do. Other tests may run labs in parallel: only the demo's
//! own names (it is the `xdptop-demo-<pid>-…` namespaces) are looked at.

use std::{
    collections::BTreeSet,
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Command, Output},
    thread,
    time::{Duration, Instant},
};

use xdp_lab::{
    tmux::{Tmux, row_pps},
    workspace_root,
};

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("could not start {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run(cmd).stdout).into_owned()
}

/// A process as /proc shows it: pid, parent, start time (to tell a reused
/// pid apart) and command name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Proc {
    pid: u32,
    ppid: u32,
    start: u64,
    comm: String,
}

fn proc_stat(pid: u32) -> Option<Proc> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm is in parentheses and may contain spaces: split after the last ')'.
    let (head, rest) = stat.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_owned();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Proc {
        pid,
        ppid: fields.get(1)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
        comm,
    })
}

fn all_procs() -> Vec<Proc> {
    fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter_map(proc_stat)
        .collect()
}

/// `pid` and all its descendants.
fn tree(pid: u32) -> BTreeSet<Proc> {
    let procs = all_procs();
    let mut found: BTreeSet<Proc> = procs.iter().filter(|p| p.pid == pid).cloned().collect();
    loop {
        let more: Vec<Proc> = procs
            .iter()
            .filter(|p| found.iter().any(|f| f.pid == p.ppid) && !found.contains(*p))
            .cloned()
            .collect();
        if more.is_empty() {
            return found;
        }
        found.extend(more);
    }
}

fn demo_namespaces() -> BTreeSet<String> {
    stdout(Command::new("ip").args(["netns", "list"]))
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("xdptop-demo"))
        .map(str::to_owned)
        .collect()
}

/// `bpftool -j ... show id N` succeeds: the kernel object still exists.
fn bpf_object_exists(kind: &str, id: u64) -> bool {
    Command::new("bpftool")
        .args([kind, "show", "id", &id.to_string()])
        .output()
        .expect("bpftool (apt-get install bpftool)")
        .status
        .success()
}

fn json_id(out: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(out).expect("bpftool JSON");
    v["id"].as_u64().unwrap_or_else(|| panic!("no id in {out}"))
}

/// What the demo made, for the checks and for cleaning up after a failure.
struct Made {
    xtask: u32,
    namespaces: [String; 2],
    bpffs: PathBuf,
}

impl Drop for Made {
    fn drop(&mut self) {
        if !thread::panicking() {
            return;
        }
        // The test failed: end xdptop and the demo (which then cleans up),
        // wait for it a little, then remove what is left.
        let running = tree(self.xtask);
        for p in running.iter().rev() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p.pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while proc_stat(self.xtask).is_some() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(100));
        }
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        let _ = nix::mount::umount2(&self.bpffs, nix::mount::MntFlags::MNT_DETACH);
        let _ = fs::remove_dir(&self.bpffs);
    }
}

/// A demo running in tmux, with what it made.
struct Demo {
    // Dropped first: on a failure, end the demo gracefully while tmux runs.
    made: Made,
    tmux: Tmux,
    started: Instant,
    /// Time spent in the demo's own cargo build.
    building: Duration,
}

/// The demo's kernel objects and processes, seen while it runs.
struct Running {
    processes: BTreeSet<Proc>,
    links: Vec<u64>,
    programs: Vec<u64>,
}

impl Demo {
    /// Starts the demo and waits until xdptop runs in it.
    fn start(tag: &str) -> Self {
        assert!(
            nix::unistd::Uid::effective().is_root(),
            "the demo test needs root (network namespaces, XDP, bpffs): run it with sudo"
        );
        // A built tree: xdptop as the demo builds it (a no-op when it is
        // current), outside the minute the demo gets.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        run(Command::new(cargo).current_dir(workspace_root()).args([
            "build",
            "--quiet",
            "--package",
            "xdptop",
        ]));
        // The minute runs from the start, except while the demo's own cargo
        // build runs: a no-op here, but it may wait for another cargo's lock
        // on a shared target directory.
        let started = Instant::now();
        let mut building = Duration::ZERO;
        let socket = std::env::temp_dir().join(format!(
            "xdptop-demo-test-{tag}-{}.tmux",
            std::process::id()
        ));
        let tmux = Tmux::start(
            socket,
            120,
            40,
            &format!("{XTASK} demo; echo DEMO-EXITED:$?; sleep 600"),
        )
        .expect("tmux");
        let shell: u32 = tmux
            .display("#{pane_pid}")
            .expect("tmux")
            .parse()
            .expect("pane_pid");
        let xtask = loop {
            let t = Instant::now();
            let procs = tree(shell);
            if procs.iter().any(|p| p.comm == "xdptop") {
                break procs
                    .into_iter()
                    .find(|p| p.ppid == shell && p.comm == "xtask")
                    .expect("xtask runs under the shell");
            }
            assert!(
                started.elapsed() < Duration::from_secs(60) + building
                    && building < Duration::from_secs(600),
                "xdptop did not start within {:?} (of which cargo build {building:?}):\n{}",
                started.elapsed(),
                tmux.capture(false).expect("tmux")
            );
            thread::sleep(Duration::from_millis(100));
            if procs.iter().any(|p| p.comm == "cargo") {
                building += t.elapsed();
            }
        };
        let made = Made {
            xtask: xtask.pid,
            namespaces: [
                format!("xdptop-demo-{}-0-x", xtask.pid),
                format!("xdptop-demo-{}-0-g", xtask.pid),
            ],
            bpffs: PathBuf::from(format!("/tmp/xdptop-bpffs-demo-{}-0", xtask.pid)),
        };
        Self {
            made,
            tmux,
            started,
            building,
        }
    }

    /// Time left of the minute.
    fn left(&self) -> Duration {
        (Duration::from_secs(60) + self.building).saturating_sub(self.started.elapsed())
    }

    /// What the demo made, checked to be there, so that the checks of
    /// [`Demo::assert_nothing_left`] can fail.
    fn running(&self) -> Running {
        let made = &self.made;
        let processes = tree(made.xtask);
        assert!(
            processes
                .iter()
                .any(|p| p.comm == "xdptop" && p.ppid == made.xtask),
            "xdptop runs as the demo's child: {processes:?}"
        );
        let namespaces = demo_namespaces();
        for ns in &made.namespaces {
            assert!(namespaces.contains(ns), "{ns} in {namespaces:?}");
        }
        let mounts = fs::read_to_string("/proc/mounts").expect("/proc/mounts");
        let bpffs = made.bpffs.display().to_string();
        assert!(
            mounts
                .lines()
                .any(|l| l.split(' ').nth(1) == Some(bpffs.as_str())),
            "the demo's bpffs {bpffs} is mounted:\n{mounts}"
        );
        let mut links = Vec::new();
        let mut programs = Vec::new();
        for iface in ["demo0", "demo1"] {
            let dir = made.bpffs.join("xdptop").join(iface);
            let pin = fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("link_"))
                })
                .unwrap_or_else(|| panic!("no pinned link in {}", dir.display()));
            let link = stdout(
                Command::new("bpftool")
                    .args(["-j", "link", "show", "pinned"])
                    .arg(&pin),
            );
            links.push(json_id(&link));
            let v: serde_json::Value = serde_json::from_str(&link).expect("bpftool JSON");
            programs.push(v["prog_id"].as_u64().expect("prog_id"));
            let shown =
                stdout(Command::new("ip").args(["-n", &made.namespaces[0], "link", "show", iface]));
            assert!(shown.contains("xdp"), "{iface} has XDP attached: {shown}");
        }
        assert!(
            !Path::new("/sys/fs/bpf/xdptop/demo0").exists(),
            "the host's bpffs is untouched"
        );
        Running {
            processes,
            links,
            programs,
        }
    }

    /// Waits for the demo to exit, which must be with 0, and then checks
    /// [`Demo::assert_nothing_left`].
    fn assert_exits_cleanly(&self, running: &Running) {
        let screen = self
            .tmux
            .wait_for("the demo's exit", Duration::from_secs(20), None, |s| {
                s.contains("DEMO-EXITED:")
            })
            .expect("tmux");
        assert!(
            screen.contains("DEMO-EXITED:0"),
            "the demo exits with 0:\n{screen}"
        );
        self.assert_nothing_left(running);
    }

    /// None of its processes, namespaces, links, programs or pins is left
    /// (the kernel frees namespaces, links and programs asynchronously:
    /// allow it a few seconds).
    fn assert_nothing_left(&self, running: &Running) {
        let made = &self.made;
        let bpffs = made.bpffs.display().to_string();
        let deadline = Instant::now() + Duration::from_secs(10);
        let leftovers = loop {
            let mut left = Vec::new();
            for p in &running.processes {
                if proc_stat(p.pid).is_some_and(|now| now.start == p.start) {
                    left.push(format!("process {} ({})", p.pid, p.comm));
                }
            }
            let now = demo_namespaces();
            left.extend(
                made.namespaces
                    .iter()
                    .filter(|n| now.contains(*n))
                    .map(|n| format!("namespace {n}")),
            );
            let mounts = fs::read_to_string("/proc/mounts").expect("/proc/mounts");
            if mounts.contains(&bpffs) {
                left.push(format!("bpffs mount {bpffs}"));
            }
            if made.bpffs.exists() {
                left.push(format!("directory {bpffs}"));
            }
            left.extend(
                running
                    .links
                    .iter()
                    .filter(|&&id| bpf_object_exists("link", id))
                    .map(|id| format!("bpf link {id}")),
            );
            left.extend(
                running
                    .programs
                    .iter()
                    .filter(|&&id| bpf_object_exists("prog", id))
                    .map(|id| format!("XDP program {id}")),
            );
            let host_links = stdout(Command::new("ip").args(["-o", "link", "show"]));
            left.extend(
                host_links
                    .lines()
                    .filter_map(|l| l.split(": ").nth(1))
                    .map(|n| n.split('@').next().unwrap_or(n))
                    .filter(|n| ["demo0", "demo1", "gdemo0", "gdemo1"].contains(n))
                    .map(|n| format!("link {n} in the root namespace")),
            );
            if left.is_empty() || Instant::now() > deadline {
                break left;
            }
            thread::sleep(Duration::from_millis(250));
        };
        assert!(leftovers.is_empty(), "the demo left {leftovers:?}");
    }
}

#[test]
fn the_demo_shows_changing_rates_and_leaves_nothing_behind() {
    let demo = Demo::start("rates");
    // Non-zero, changing rates on both links within the minute.
    let mut seen = BTreeSet::new();
    demo.tmux
        .wait_for("changing rates", demo.left(), None, |s| {
            if let (Some(a), Some(b)) = (row_pps(s, "demo0"), row_pps(s, "demo1")) {
                if a > 0.0 && b > 0.0 {
                    seen.insert((a as u64, b as u64));
                }
            }
            seen.len() >= 3
        })
        .expect("tmux");
    let running = demo.running();

    demo.tmux.keys("q").expect("tmux");
    demo.assert_exits_cleanly(&running);
}

/// `kill PID` (SIGTERM to the demo alone, as `timeout` or a supervisor
/// sends it) ends xdptop too, and the demo cleans up.
#[test]
fn a_sigterm_to_the_demo_ends_it_and_it_cleans_up() {
    let demo = Demo::start("sigterm");
    demo.tmux
        .wait_for("a rate", demo.left(), None, |s| {
            row_pps(s, "demo0").is_some_and(|pps| pps > 0.0)
        })
        .expect("tmux");
    let running = demo.running();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(demo.made.xtask as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("kill");
    demo.assert_exits_cleanly(&running);
}

#[test]
fn without_root_the_demo_shows_the_sudo_line() {
    // As root, run a copy of the binary as nobody (the target directory may
    // not be readable for nobody); otherwise run it as we are.
    let out = if nix::unistd::Uid::effective().is_root() {
        let dir = std::env::temp_dir().join(format!("xdptop-demo-nonroot-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod");
        let copy = dir.join("xtask");
        fs::copy(XTASK, &copy).expect("copy xtask");
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&copy)
            .arg("demo")
            .output()
            .expect("setpriv (util-linux)");
        let _ = fs::remove_dir_all(&dir);
        out
    } else {
        Command::new(XTASK).arg("demo").output().expect("xtask")
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("needs root")
            && stderr.contains("sudo -E env \"PATH=$PATH\" cargo xtask demo"),
        "{stderr}"
    );
}
