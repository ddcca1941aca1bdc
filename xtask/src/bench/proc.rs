//! CPU time and memory of a running process, from /proc.

use std::{fs, time::Duration};

use anyhow::Context as _;

/// CPU time of `pid`: its own (utime+stime, all threads) and that of its
/// waited-for children (cutime+cstime), from /proc/PID/stat.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cpu {
    pub own: Duration,
    pub children: Duration,
}

impl Cpu {
    pub fn total(&self) -> Duration {
        self.own + self.children
    }

    pub fn since(&self, earlier: &Cpu) -> Cpu {
        Cpu {
            own: self.own.saturating_sub(earlier.own),
            children: self.children.saturating_sub(earlier.children),
        }
    }
}

/// The kernel's clock tick: the resolution of the times in /proc/PID/stat.
pub fn tick() -> Duration {
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|h| *h > 0)
        .unwrap_or(100);
    Duration::from_secs_f64(1.0 / hz as f64)
}

pub fn cpu(pid: u32) -> anyhow::Result<Cpu> {
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name may hold spaces; fields resume after its ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed stat")?;
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11) // state .. cmajflt; utime is field 14, i.e. rest[11]
        .take(4)
        .map(|s| s.parse().unwrap_or(0))
        .collect();
    anyhow::ensure!(f.len() == 4, "short {path}");
    let t = tick();
    Ok(Cpu {
        own: t * (f[0] + f[1]) as u32,
        children: t * (f[2] + f[3]) as u32,
    })
}

/// A `kB` field of /proc/PID/status (VmHWM: peak RSS, VmRSS: now).
pub fn status_kb(pid: u32, field: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no {field} in {path}"))
}

pub fn mb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1024.0)
}

/// On-CPU time of each live thread of `pid` (ns-precise schedstat), by
/// thread name, summed over threads of the same name.
pub fn threads(pid: u32) -> anyhow::Result<Vec<(String, Duration)>> {
    let mut by_name: Vec<(String, Duration)> = Vec::new();
    for task in fs::read_dir(format!("/proc/{pid}/task"))? {
        let dir = task?.path();
        let name = fs::read_to_string(dir.join("comm")).unwrap_or_default();
        let ns: u64 = fs::read_to_string(dir.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        let name = name.trim().to_owned();
        match by_name.iter_mut().find(|(n, _)| *n == name) {
            Some((_, t)) => *t += Duration::from_nanos(ns),
            None => by_name.push((name, Duration::from_nanos(ns))),
        }
    }
    Ok(by_name)
}

/// On-CPU time of all live threads of `pid`, ns-precise (schedstat).
pub fn threads_total(pid: u32) -> anyhow::Result<Duration> {
    Ok(threads(pid)?.into_iter().map(|(_, t)| t).sum())
}
