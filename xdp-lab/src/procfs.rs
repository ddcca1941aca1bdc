//! A running process's CPU time and memory, and the machine's load, from
//! /proc: what the soak and the benchmarks measure xdptop with.

use std::{fs, time::Duration};

use anyhow::{Context as _, ensure};

/// CPU time of a process: its own (utime+stime, all threads) and that of
/// its waited-for children (cutime+cstime), from /proc/PID/stat, in steps
/// of [`tick`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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

/// The kernel's clock tick (1/CLK_TCK): the resolution of the times in
/// /proc/PID/stat.
pub fn tick() -> Duration {
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|h| *h > 0)
        .unwrap_or(100);
    Duration::from_secs_f64(1.0 / hz as f64)
}

/// CPU time of `pid` so far.
pub fn cpu(pid: u32) -> anyhow::Result<Cpu> {
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_stat(&stat, tick()).with_context(|| format!("reading {path}"))
}

/// The CPU times of a /proc/PID/stat line, in units of `tick`.
fn parse_stat(stat: &str, tick: Duration) -> anyhow::Result<Cpu> {
    // The command name may hold spaces; fields resume after its ')'.
    let (_, rest) = stat.rsplit_once(')').context("no ')' after the command")?;
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11) // state .. cmajflt; utime is field 14, i.e. rest[11]
        .take(4)
        .map(|s| s.parse().unwrap_or(0))
        .collect();
    ensure!(f.len() == 4, "too few fields for utime..cstime");
    let ticks = |n: u64| tick * u32::try_from(n).unwrap_or(u32::MAX);
    Ok(Cpu {
        own: ticks(f[0] + f[1]),
        children: ticks(f[2] + f[3]),
    })
}

/// A field of /proc/PID/status as written there (e.g. `7172 kB`, or the
/// hex of `CapEff`); `field` without its colon.
pub fn status_field(pid: u32, field: &str) -> anyhow::Result<String> {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    find_field(&status, field).with_context(|| format!("no {field} in {path}"))
}

fn find_field(status: &str, field: &str) -> Option<String> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_owned())
}

/// A `kB` field of /proc/PID/status (VmHWM: peak RSS, VmRSS: now), in KiB.
pub fn status_kb(pid: u32, field: &str) -> anyhow::Result<u64> {
    let value = status_field(pid, field)?;
    value
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("{field} of process {pid} is not a number of kB: {value:?}"))
}

/// On-CPU time of each live thread of `pid` (ns-precise schedstat), by
/// thread name, summed over threads of the same name.
pub fn threads(pid: u32) -> anyhow::Result<Vec<(String, Duration)>> {
    let mut by_name: Vec<(String, Duration)> = Vec::new();
    let tasks = format!("/proc/{pid}/task");
    for task in fs::read_dir(&tasks).with_context(|| format!("reading {tasks}"))? {
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

/// The 1, 5 and 15 minute load averages; zeros where /proc/loadavg cannot
/// be read.
pub fn loadavg() -> (f64, f64, f64) {
    let s = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut it = s.split_whitespace().map(|v| v.parse().unwrap_or(0.0));
    (
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_times_follow_the_command_name_even_with_spaces_and_parens() {
        let stat = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 5 1 20 0 1 0 99";
        let cpu = parse_stat(stat, Duration::from_millis(10)).expect("a stat line");
        assert_eq!(
            cpu,
            Cpu {
                own: Duration::from_millis(100),
                children: Duration::from_millis(60),
            }
        );
        assert_eq!(cpu.total(), Duration::from_millis(160));
        let later = Cpu {
            own: Duration::from_millis(130),
            ..cpu
        };
        assert_eq!(later.since(&cpu).own, Duration::from_millis(30));
        assert_eq!(cpu.since(&later).own, Duration::ZERO, "never negative");
    }

    #[test]
    fn a_malformed_stat_line_is_named() {
        let err = parse_stat("42 no-parens S 1", Duration::from_millis(10)).expect_err("no ')'");
        assert_eq!(err.to_string(), "no ')' after the command");
        let err = parse_stat("42 (short) S 1 2 3", Duration::from_millis(10)).expect_err("short");
        assert_eq!(err.to_string(), "too few fields for utime..cstime");
    }

    #[test]
    fn status_fields_are_found_by_exact_name() {
        let status =
            "Name:\txdptop\nVmHWM:\t    7428 kB\nVmRSS:\t    7172 kB\nCapEff:\t0000006000001000\n";
        assert_eq!(find_field(status, "VmRSS").as_deref(), Some("7172 kB"));
        assert_eq!(
            find_field(status, "CapEff").as_deref(),
            Some("0000006000001000")
        );
        assert_eq!(find_field(status, "Vm"), None, "a prefix is not a field");
    }

    #[test]
    fn this_process_can_be_read() {
        let me = std::process::id();
        assert!(status_kb(me, "VmRSS").expect("VmRSS") > 0);
        assert!(status_kb(me, "VmHWM").expect("VmHWM") >= status_kb(me, "VmRSS").expect("VmRSS"));
        let err = status_kb(me, "Name").expect_err("a name is not kB");
        assert!(
            err.to_string()
                .starts_with(&format!("Name of process {me} is not a number of kB: \"")),
            "{err}"
        );
        let err = status_kb(me, "NoSuchField").expect_err("no such field");
        assert_eq!(
            err.to_string(),
            format!("no NoSuchField in /proc/{me}/status")
        );
        cpu(me).expect("our own stat");
        assert!(threads_total(me).expect("our own threads") > Duration::ZERO);
        assert!((Duration::from_micros(100)..=Duration::from_millis(100)).contains(&tick()));
    }
}
