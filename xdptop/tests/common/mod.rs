//! Shared helpers for the privileged lab tests: running xdptop inside a lab
//! namespace, reading its JSON lines, and the seed's two scrapers.
#![allow(dead_code)] // each test binary uses a different subset

use std::{
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    sync::mpsc::{self, Receiver},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;
use xdp_lab::{Lab, TempBpffs, Traffic, poll, send};

pub const XDPTOP: &str = env!("CARGO_BIN_EXE_xdptop");

/// A lab test's timeout: `host` on the host; at least 60 s under qemu's
/// emulation (`cargo xtask vmtest`), where attaching through libxdp's
/// dispatcher and the verdict observer's fexit trampoline take seconds each
/// on two busy emulated CPUs.
pub fn lab_wait(host: Duration) -> Duration {
    if xdp_lab::kernel::in_vm() {
        host.max(Duration::from_secs(60))
    } else {
        host
    }
}

/// Fails the test early, with a clear reason, when it cannot run here.
pub fn require_root() {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "the lab tests need root (network namespaces, XDP, bpffs): run them with sudo"
    );
}

/// A fresh bpffs and a lab of `links` veth pairs, both named after `tag`.
pub fn setup(tag: &str, links: usize) -> (TempBpffs, Lab) {
    require_root();
    let bpffs = TempBpffs::new(tag).expect("bpffs");
    let lab = Lab::new(tag, links).expect("lab");
    (bpffs, lab)
}

/// The lab's safe rate: slow enough that the veth queue never overflows,
/// so sent == counted.
pub const RATE: u64 = 20_000;

/// Sends `count` UDP packets over lab link `link` at [`RATE`]; returns how
/// many were sent.
pub fn send_udp(lab: &Lab, link: usize, count: u64, payload: usize) -> u64 {
    let l = &lab.links[link];
    let ns = lab.gen_netns().expect("generator namespace");
    send(&ns, &Traffic::udp(l.gen_ip, l.xdp_ip, count, payload, RATE)).expect("send")
}

/// As [`send_udp`], and all `count` must go out.
pub fn udp(lab: &Lab, link: usize, count: u64, payload: usize) {
    assert_eq!(send_udp(lab, link, count, payload), count);
}

pub fn packets(v: &Value) -> u64 {
    v["packets"].as_u64().expect("packets")
}

/// The sample says the interface is attached and read.
pub fn healthy(v: &Value) -> bool {
    v["health"]["state"] == "ok"
}

/// An xdptop process in the lab's XDP namespace; killed on drop.
pub struct Running {
    child: Child,
    lines: Receiver<Value>,
    /// Every line received so far, in order.
    seen: std::cell::RefCell<Vec<Value>>,
    stderr: Receiver<String>,
    /// Set once the process was waited for: its stdout then ends soon.
    exited: std::cell::Cell<bool>,
}

impl Running {
    /// Starts `xdptop --headless --json ARGS` in the XDP namespace, with
    /// libxdp's state in `pin_dir` too (`LIBXDP_BPFFS`): where the kernel
    /// runs libxdp's dispatcher, its pins then stay in the test's bpffs.
    pub fn start(lab: &Lab, pin_dir: &Path, args: &[&str]) -> Self {
        Self::start_env(lab, pin_dir, args, &[])
    }

    /// As [`Self::start`], with these environment variables set.
    pub fn start_env(lab: &Lab, pin_dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> Self {
        let mut cmd = lab.xdp_command(XDPTOP);
        cmd.env("LIBXDP_BPFFS", pin_dir)
            .envs(env.iter().copied())
            .args(["--headless", "--json", "--pin-dir"])
            .arg(pin_dir)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("starting xdptop");
        let stdout = child.stdout.take().expect("stdout");
        let err_pipe = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let (etx, stderr) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(err_pipe).lines() {
                let Ok(line) = line else { break };
                eprintln!("xdptop: {line}");
                if etx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Default::default(),
            stderr,
            exited: Default::default(),
        }
    }

    /// As [`Self::start`], then waits until the interface named last in
    /// `args` is [`healthy`].
    pub fn start_healthy(lab: &Lab, pin_dir: &Path, args: &[&str], timeout: Duration) -> Self {
        let run = Self::start(lab, pin_dir, args);
        let iface = args.last().expect("an interface, last");
        run.wait_for(iface, timeout, healthy);
        run
    }

    /// Waits for a JSON line about `iface` that satisfies `pred`.
    pub fn wait_for(&self, iface: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        let mut last = None;
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(v) => {
                    self.seen.borrow_mut().push(v.clone());
                    if v["interface"] == iface {
                        if pred(&v) {
                            return v;
                        }
                        last = Some(v);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        panic!("no matching sample for {iface} within {timeout:?}; last: {last:?}");
    }

    /// Every JSON line printed so far; all of them once the process was
    /// waited for (`stop`, `wait`, `kill`): then this reads its stdout to the
    /// end, as the reader thread may still hold the last lines.
    pub fn all_lines(&self) -> Vec<Value> {
        let mut seen = self.seen.borrow_mut();
        if self.exited.get() {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match self.lines.recv_timeout(Duration::from_millis(100)) {
                    Ok(v) => seen.push(v),
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    Err(mpsc::RecvTimeoutError::Timeout) => assert!(
                        Instant::now() < deadline,
                        "xdptop's stdout did not end within 10 s of its exit"
                    ),
                }
            }
        } else {
            seen.extend(self.lines.try_iter());
        }
        seen.clone()
    }

    /// Waits until the process exits by itself; returns its status.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        self.wait_exit(timeout, &format!("within {timeout:?}"))
    }

    /// Polls for the exit; the panic after `timeout` says "did not exit
    /// `within`".
    fn wait_exit(&mut self, timeout: Duration, within: &str) -> ExitStatus {
        let status = poll(timeout, Duration::from_millis(50), || {
            self.child.try_wait().expect("wait").ok_or(())
        })
        .unwrap_or_else(|()| panic!("xdptop did not exit {within}"));
        self.exited.set(true);
        status
    }

    /// Stderr lines so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no chance to clean anything up.
    pub fn kill(&mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
        self.exited.set(true);
    }

    /// SIGTERM, then waits; returns the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        self.wait_exit(Duration::from_secs(10), "within 10 s of SIGTERM")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs xdptop to completion in the lab's XDP namespace (libxdp's state in
/// `pin_dir` too, as with [`Running::start`]).
pub fn xdptop(lab: &Lab, pin_dir: &Path, args: &[&str]) -> Output {
    lab.xdp_command(XDPTOP)
        .env("LIBXDP_BPFFS", pin_dir)
        .arg("--pin-dir")
        .arg(pin_dir)
        .args(args)
        .output()
        .expect("running xdptop")
}

/// The seed's bpftool scraper ([`xdp_lab::bpftool_lookup`]): (rx_packets,
/// rx_bytes) of key 0.
pub fn bpftool_lookup(pin: &Path) -> (u64, u64) {
    xdp_lab::bpftool_lookup(pin).unwrap_or_else(|e| panic!("{e:#}"))
}

/// Builds (once per test binary) and runs the libbpf C scraper.
pub fn libbpf_lookup(pin: &Path) -> (u64, u64) {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let exe = BUILT.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/seed_scraper.c");
        let exe = Path::new(env!("CARGO_TARGET_TMPDIR")).join("seed_scraper");
        let out = Command::new("cc")
            .arg("-O2")
            .arg("-o")
            .arg(&exe)
            .arg(&src)
            .arg("-lbpf")
            .output()
            .expect("cc must be installed");
        assert!(
            out.status.success(),
            "building the libbpf scraper (needs libbpf-dev): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        exe
    });
    let out = Command::new(exe)
        .arg(pin)
        .output()
        .expect("running the scraper");
    assert!(
        out.status.success(),
        "scraper: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf8");
    let mut it = text
        .split_whitespace()
        .map(|w| w.parse::<u64>().expect("number"));
    (it.next().expect("packets"), it.next().expect("bytes"))
}

/// The XDP program id on `iface` per `ip -j link show`, if any.
pub fn xdp_prog_id(lab: &Lab, iface: &str) -> Option<u64> {
    let out = lab
        .ip_xdp(&["-j", "-d", "link", "show", "dev", iface])
        .expect("ip link");
    let v: Value = serde_json::from_str(&out).expect("ip JSON");
    v[0]["xdp"]["prog"]["id"].as_u64()
}

/// `xdptop --headless --json --count COUNT --interval 100ms IFACES` to
/// completion.
pub fn xdptop_json(lab: &Lab, pin_dir: &Path, count: &str, ifaces: &[&str]) -> Output {
    let args = [
        "--headless",
        "--json",
        "--count",
        count,
        "--interval",
        "100ms",
    ];
    xdptop(lab, pin_dir, &[&args[..], ifaces].concat())
}

/// Runs bpftool with `args`, which must succeed; returns its stdout.
pub fn bpftool(args: &[&str]) -> String {
    let out = Command::new("bpftool")
        .args(args)
        .output()
        .expect("bpftool");
    assert!(
        out.status.success(),
        "bpftool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A path as the `&str` an argument list wants.
pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

/// Value `key` of a `__u32 -> __u64` array pinned at `pin`.
pub fn array_u64(pin: &Path, key: u32) -> u64 {
    let key: Vec<String> = key.to_le_bytes().iter().map(u8::to_string).collect();
    let mut args = vec![
        "-j",
        "map",
        "lookup",
        "pinned",
        pin.to_str().expect("utf8"),
        "key",
    ];
    args.extend(key.iter().map(String::as_str));
    let v: Value = serde_json::from_str(&bpftool(&args)).expect("bpftool JSON");
    v["formatted"]["value"]
        .as_u64()
        .unwrap_or_else(|| panic!("no formatted value in {v}"))
}

/// XDP objects built with clang from xdptop/tests/c/NAME.bpf.c into a fresh
/// directory under the temp dir (one per test), removed on drop.
pub struct BpfObjects {
    dir: PathBuf,
    objects: Vec<PathBuf>,
}

impl BpfObjects {
    pub fn build(names: &[&str]) -> Self {
        let test = std::thread::current()
            .name()
            .unwrap_or("t")
            .replace("::", "-");
        let dir = std::env::temp_dir().join(format!("xdptop-bpf-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut built = BpfObjects {
            dir,
            objects: Vec::new(),
        };
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c");
        // asm/types.h (from linux/bpf.h) is in the multiarch directory on
        // Debian, which `-target bpf` does not search.
        let multiarch = format!("/usr/include/{}-linux-gnu", std::env::consts::ARCH);
        for name in names {
            let input = src.join(format!("{name}.bpf.c"));
            let output = built.dir.join(format!("{name}.bpf.o"));
            let out = Command::new("clang")
                .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror", "-c"])
                .arg(&input)
                .arg("-o")
                .arg(&output)
                .arg("-I")
                .arg(&multiarch)
                .output()
                .expect("clang must be installed (apt-get install clang libbpf-dev)");
            assert!(
                out.status.success(),
                "clang {}: {}",
                input.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            built.objects.push(output);
        }
        built
    }

    pub fn paths(&self) -> &[PathBuf] {
        &self.objects
    }
}

impl Drop for BpfObjects {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The id of the map pinned at `pin`.
pub fn map_id(pin: &Path) -> u64 {
    let v: Value = serde_json::from_str(&bpftool(&[
        "-j",
        "map",
        "show",
        "pinned",
        pin.to_str().expect("utf8"),
    ]))
    .expect("JSON");
    v["id"].as_u64().expect("id")
}

/// Loads the seed-style program on `iface` with xdp-loader, as another
/// loader would, its pins (and libxdp's) kept in `bpffs`. As a single
/// program (`LIBXDP_SKIP_DISPATCHER`), as `ip link` or xdp-loader on a
/// kernel without BPF trampolines attaches it: xdptop cannot join that and
/// watches it read-only. Joining libxdp's dispatcher is tests/dispatcher.rs.
pub fn xdp_loader_load(lab: &Lab, bpffs: &Path, iface: &str) {
    let out = lab
        .xdp_command("xdp-loader")
        .env("LIBXDP_BPFFS", bpffs)
        .env("LIBXDP_SKIP_DISPATCHER", "1")
        .args(["load", "-m", "skb", "-p"])
        .arg(bpffs)
        .arg(iface)
        .arg(xdp_ebpf::SEED_STYLE_OBJECT_PATH)
        .output()
        .expect("xdp-loader must be installed (apt-get install xdp-tools)");
    assert!(out.status.success(), "xdp-loader: {}", stderr_of(&out));
}

/// Loads `object`'s `sec xdp` program on `iface` the legacy way, as an
/// operator would: `ip link set dev IFACE xdpgeneric obj OBJECT sec xdp`.
///
/// iproute2 creates `xdp/globals` on the first bpffs it finds; `ip -n`
/// remounts /sys, hiding /sys/fs/bpf, so it would pick whatever bpffs
/// another test has mounted meanwhile (and fail when that test unmounts it,
/// seen in a guest). So `ip` runs in a throw-away mount namespace with a
/// fresh bpffs of its own on /sys/fs/bpf, which vanishes with it.
pub fn ip_link_load_legacy(lab: &Lab, iface: &str, object: &str) {
    let script = format!(
        "mount -t bpf bpf /sys/fs/bpf && exec ip link set dev {iface} xdpgeneric obj {object} sec xdp"
    );
    let out = lab
        .xdp_command("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("unshare (util-linux)");
    assert!(out.status.success(), "{script}: {}", stderr_of(&out));
}

pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Five lab sources, 198.18.0.10 to .14, sending UDP in the proportions
/// 5:4:3:2:1 (`rounds` rounds, interleaved so that every period ranks them
/// in that order), the even ones to port 53, the odd ones to port 443, raw
/// on lab link 0 at `rate` packets/s. Returns (source, packets) heaviest
/// first, for the talker exports' lab tests.
pub fn five_talkers(lab: &Lab, rounds: usize, rate: u64) -> Vec<(String, u64)> {
    use xdp_lab::frames;
    let dst = lab.links[0].xdp_ip;
    let src = |i: usize| std::net::Ipv4Addr::new(198, 18, 0, 10 + i as u8);
    let frame = |i: usize| {
        let port = if i.is_multiple_of(2) { 53 } else { 443 };
        frames::ipv4(src(i), dst, frames::IPPROTO_UDP, port, 32)
    };
    let mut all = Vec::with_capacity(rounds * 15);
    for _ in 0..rounds {
        for (i, n) in [5, 4, 3, 2, 1].into_iter().enumerate() {
            all.extend(std::iter::repeat_n(frame(i), n));
        }
    }
    let ns = lab.gen_netns().expect("generator namespace");
    let sent = frames::send_frames(
        &ns,
        &lab.links[0].gen_if,
        all.iter().map(Vec::as_slice),
        rate,
    )
    .expect("sending frames");
    assert_eq!(sent, all.len() as u64);
    (0..5)
        .map(|i| (src(i).to_string(), (5 - i as u64) * rounds as u64))
        .collect()
}

// xdp-loader (xdp-tools), for the tests next to libxdp's dispatcher.

/// `xdp-loader unload --all IFACE`: no XDP must be left.
pub fn unload_all(lab: &Lab, bpffs: &Path, iface: &str) {
    loader_ok(lab, bpffs, &["unload", "--all", iface]);
    assert_eq!(xdp_prog_id(lab, iface), None);
}

/// `xdptop --detach IFACE`, which must succeed.
pub fn detach(lab: &Lab, bpffs: &Path, iface: &str) {
    let out = xdptop(lab, bpffs, &["--detach", iface]);
    assert!(out.status.success(), "{}", stderr_of(&out));
}

/// `xdp-loader ARGS` in the XDP namespace with libxdp's pins in `bpffs`.
/// One at a time: xdp-tools 1.3 (Debian 12) refuses to run while another
/// xdp-loader holds its program lock file (a tool lock, not libxdp's), and
/// these tests run in parallel.
pub fn loader(lab: &Lab, bpffs: &Path, args: &[&str]) -> Output {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    lab.xdp_command("xdp-loader")
        .env("LIBXDP_BPFFS", bpffs)
        .args(args)
        .output()
        .expect("xdp-loader must be installed (apt-get install xdp-tools)")
}

pub fn loader_ok(lab: &Lab, bpffs: &Path, args: &[&str]) {
    let out = loader(lab, bpffs, args);
    assert!(
        out.status.success(),
        "xdp-loader {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr_of(&out)
    );
}

pub fn status_text(lab: &Lab, bpffs: &Path, iface: &str) -> String {
    let out = loader(lab, bpffs, &["status", iface]);
    assert!(
        out.status.success(),
        "xdp-loader status: {}",
        stderr_of(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The dispatcher's components as `xdp-loader status` lists them, in run
/// order: (priority, program name). Its component lines read
/// ` =>  PRIO  NAME  ID  TAG  ACTIONS`.
pub fn components(lab: &Lab, bpffs: &Path, iface: &str) -> Vec<(u32, String)> {
    component_lines(lab, bpffs, iface)
        .into_iter()
        .map(|(prio, name, _)| (prio, name))
        .collect()
}

pub fn component_id(lab: &Lab, bpffs: &Path, iface: &str, name: &str) -> u32 {
    component_lines(lab, bpffs, iface)
        .into_iter()
        .find(|(_, n, _)| n == name)
        .map(|(_, _, id)| id)
        .unwrap_or_else(|| panic!("no {name} on {iface}"))
}

pub fn component_lines(lab: &Lab, bpffs: &Path, iface: &str) -> Vec<(u32, String, u32)> {
    let status = status_text(lab, bpffs, iface);
    let own = status
        .lines()
        .find(|l| l.split_whitespace().next() == Some(iface))
        .unwrap_or_else(|| panic!("no line for {iface} in:\n{status}"));
    assert!(
        own.contains("xdp_dispatcher"),
        "{iface} should run libxdp's dispatcher:\n{status}"
    );
    status
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("=>"))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let num = |i: usize| -> u32 {
                w.get(i)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("column {i} of {l:?}"))
            };
            (num(0), w[1].to_owned(), num(2))
        })
        .collect()
}

/// A test firewall (xdptop/tests/c/NAME.bpf.c) built with clang into its
/// own temp directory.
pub struct Firewall(BpfObjects);

impl Firewall {
    pub fn build(name: &str) -> Self {
        Firewall(BpfObjects::build(&[name]))
    }

    pub fn path(&self) -> &str {
        path_str(&self.0.paths()[0])
    }
}

/// What a test of XDP next to libxdp's dispatcher or under the verdict
/// observer starts from: its firewall built, a one-link lab, its bpffs.
/// `None` (the test skips, loudly) on a kernel without BPF trampolines.
pub struct Case {
    pub fw: Firewall,
    pub bpffs: TempBpffs,
    pub lab: Lab,
    pub iface: String,
}

impl Case {
    pub fn new(tag: &str, firewall: &str) -> Option<Case> {
        require_root();
        if xdp_lab::kernel::skip_without_trampolines() {
            return None;
        }
        let fw = Firewall::build(firewall);
        let (bpffs, lab) = setup(tag, 1);
        let iface = lab.links[0].xdp_if.clone();
        Some(Case {
            fw,
            bpffs,
            lab,
            iface,
        })
    }
}
