//! What the benchmarks share: the release build, the collector, the bench
//! venv, captured child processes and steady traffic.

use std::{
    io::{BufRead as _, BufReader},
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use xdp_lab::{Lab, Traffic, netns::accepting, poll, rotel};

use crate::exec::{cargo_build, exec, workspace_root};

/// Release binaries built for the benchmarks.
pub struct Bins {
    pub xdptop: PathBuf,
    pub render_bench: PathBuf,
    pub talkers_bench: PathBuf,
}

/// One release build of xdptop, the frame-render and talkers examples.
pub fn build_release() -> anyhow::Result<Bins> {
    eprintln!("bench: building xdptop --release (once)");
    let release = cargo_build(
        true,
        &[
            "--package",
            "xdptop",
            "--bin",
            "xdptop",
            "--example",
            "render_bench",
            "--example",
            "talkers_bench",
        ],
    )?;
    Ok(Bins {
        xdptop: release.join("xdptop"),
        render_bench: release.join("examples/render_bench"),
        talkers_bench: release.join("examples/talkers_bench"),
    })
}

/// Python of `<workspace>/.venv-bench`, made or refreshed from
/// scripts/requirements-bench.txt when its packages are missing.
pub fn bench_python() -> anyhow::Result<PathBuf> {
    let root = workspace_root();
    let venv = root.join(".venv-bench");
    let python = venv.join("bin/python");
    let ready = python.is_file()
        && Command::new(&python)
            .args([
                "-c",
                "import opentelemetry.exporter.otlp.proto.grpc, opentelemetry.sdk",
            ])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if ready {
        return Ok(python);
    }
    eprintln!(
        "bench: making {} for the seed exporter (Python OpenTelemetry SDK, from PyPI)",
        venv.display()
    );
    if !python.is_file() {
        exec(Command::new("python3").arg("-m").arg("venv").arg(&venv))
            .context("python3 -m venv (install python3-venv)")?;
    }
    exec(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(root.join("scripts/requirements-bench.txt")),
    )
    .context("installing scripts/requirements-bench.txt into .venv-bench")?;
    Ok(python)
}

/// rotel in the lab's XDP namespace (where xdptop's 127.0.0.1 is), with
/// the blackhole exporter.
pub struct Collector {
    child: Running,
    pub endpoint: String,
    dir: tempdir::Dir,
}

mod tempdir {
    /// A directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Collector {
    pub fn start(lab: &Lab) -> anyhow::Result<Self> {
        const GRPC: u16 = 14317;
        const HTTP: u16 = 14318;
        let dir = tempdir::Dir(
            std::env::temp_dir().join(format!("xdptop-bench-rotel-{}", std::process::id())),
        );
        std::fs::create_dir_all(&dir.0)?;
        let addr: SocketAddr = ([127, 0, 0, 1], GRPC).into();
        let netns = lab.xdp_netns_path();
        let mut cmd = rotel::command(
            &rotel::binary()?,
            Some(&netns),
            addr,
            ([127, 0, 0, 1], HTTP).into(),
        );
        cmd.arg("--pid-file")
            .arg(dir.0.join("rotel.pid"))
            .arg("--log-file")
            .arg(dir.0.join("rotel.log"));
        let child = Running::spawn("rotel", cmd)?;
        // Ok ends the wait (listening, or an error), Err goes on.
        poll(
            Duration::from_secs(20),
            Duration::from_millis(100),
            || match accepting(Some(&netns), &[addr]) {
                Ok(true) => Ok(Ok(())),
                Ok(false) => Err(()),
                Err(e) => Ok(Err(e)),
            },
        )
        .unwrap_or_else(|()| bail!("rotel did not listen on {addr} within 20 s"))?;
        Ok(Self {
            child,
            endpoint: addr.to_string(),
            dir,
        })
    }

    pub fn stop(mut self) {
        let _ = self.child.stop(Duration::from_secs(5));
        drop(self.dir);
    }
}

type Lines = Arc<Mutex<Vec<(Instant, String)>>>;

/// A child whose stdout and stderr lines are kept with their arrival time;
/// killed on drop.
pub struct Running {
    name: String,
    child: Child,
    pub started: Instant,
    pub stdout: Lines,
    pub stderr: Lines,
}

impl Running {
    pub fn spawn(name: &str, mut cmd: Command) -> anyhow::Result<Self> {
        let started = Instant::now();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {name}: {cmd:?}"))?;
        let stdout = collect(child.stdout.take());
        let stderr = collect(child.stderr.take());
        Ok(Self {
            name: name.to_owned(),
            child,
            started,
            stdout,
            stderr,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stdout_lines(&self) -> usize {
        self.stdout.lock().map(|l| l.len()).unwrap_or(0)
    }

    /// Waits until stdout has `n` lines; fails if the child exits first.
    pub fn wait_lines(&mut self, n: usize, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while self.stdout_lines() < n {
            if let Some(status) = self.child.try_wait()? {
                bail!("{} exited ({status}):\n{}", self.name, self.stderr_text());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} printed no {n} lines within {timeout:?}:\n{}",
                    self.name,
                    self.stderr_text()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    pub fn stderr_text(&self) -> String {
        let lines = self.stderr.lock().map(|l| l.clone()).unwrap_or_default();
        lines
            .into_iter()
            .map(|(_, l)| l)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// SIGTERM, then SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) -> anyhow::Result<ExitStatus> {
        if let Some(s) = self.child.try_wait()? {
            return Ok(s);
        }
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        loop {
            if let Some(s) = self.child.try_wait()? {
                // Let the reader threads take the last lines.
                thread::sleep(Duration::from_millis(50));
                return Ok(s);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let s = self.child.wait()?;
                bail!("{} ignored SIGTERM for {grace:?}; killed ({s})", self.name);
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn collect(pipe: Option<impl std::io::Read + Send + 'static>) -> Lines {
    let lines: Lines = Arc::default();
    if let Some(pipe) = pipe {
        let sink = Arc::clone(&lines);
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Ok(mut l) = sink.lock() {
                    l.push((Instant::now(), line));
                }
            }
        });
    }
    lines
}

/// Steady UDP traffic on some of a lab's links, one thread per link, until
/// stopped (or dropped).
pub struct Steady {
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Steady {
    pub fn start(lab: &Lab, links: usize, pps: u64, payload: usize) -> anyhow::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for link in lab.links.iter().take(links) {
            let netns = lab.gen_netns()?;
            let (src, dst) = (link.gen_ip, link.xdp_ip);
            let stop = Arc::clone(&stop);
            threads.push(thread::spawn(move || {
                // Tenth-of-a-second slices, so a stop is quick.
                let slice = Traffic::udp(src, dst, (pps / 10).max(1), payload, pps);
                while !stop.load(Ordering::Relaxed) {
                    if let Err(e) = xdp_lab::send(&netns, &slice) {
                        eprintln!("bench traffic to {dst} stopped: {e:#}");
                        return;
                    }
                }
            }));
        }
        Ok(Self { stop, threads })
    }
}

impl Drop for Steady {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
