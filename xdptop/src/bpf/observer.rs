//! The verdict observer: xdptop's fexit program (`xdp-ebpf/bpf/verdicts.bpf.c`)
//! attached to the XDP program that runs on an interface, counting packets
//! and bytes per verdict without reloading or replacing that program.
//!
//! It needs BPF trampolines (the development host's 6.18 has none), a target
//! loaded with BTF, and CAP_SYS_ADMIN (to open the target by id) with
//! CAP_BPF and CAP_PERFMON. [`Observer::attach`] says in words which one is
//! missing: that text goes to the log, the dashboard row and the JSON
//! `health` of an interface that cannot be observed.
//!
//! The observer is not pinned: it lives while xdptop runs.

use std::{
    os::fd::{AsFd as _, OwnedFd},
    time::{Duration, Instant},
};

use aya::{
    EbpfLoader,
    maps::{Map, MapData, PerCpuArray},
    programs::{FExit, ProgramError},
};
use xdp_ebpf::Verdict;

use super::sys;
use crate::sample::{ActionTotals, Counts, RunStats};

/// An fexit observer attached to one program.
pub struct Observer {
    /// The program it stands for: the one on the interface.
    program: u32,
    /// Owns the program and its link: dropping it detaches the observer.
    _ebpf: aya::Ebpf,
    counts: PerCpuArray<MapData, Verdict>,
}

impl Observer {
    /// Loads and attaches the observer to program `prog_id`; `Err` says why
    /// it cannot, in words for the operator.
    pub fn attach(prog_id: u32) -> Result<Self, Refusal> {
        Self::try_attach(prog_id).map_err(|why| {
            // These do not change while xdptop runs.
            let permanent = why == no_trampolines() || why.starts_with(NEEDS_CAPS);
            Refusal { why, permanent }
        })
    }

    fn try_attach(prog_id: u32) -> Result<Self, String> {
        let (target, info, func) = open_target(prog_id)?;
        match Self::load(prog_id, prog_id, target.as_fd(), &info.name, func) {
            Err(Busy(why)) => {
                // libxdp (1.3 at least) runs a lone component by replacing
                // the dispatcher's main function with it (freplace): that
                // function's trampoline then takes no fexit (EBUSY). The
                // component returns the interface's verdicts: observe it.
                let Some(ext) = replacement_of(prog_id, func) else {
                    return Err(why);
                };
                let (ext_fd, ext_info, ext_func) = open_target(ext)?;
                let o = Self::load(prog_id, ext, ext_fd.as_fd(), &ext_info.name, ext_func)
                    .map_err(|Busy(w)| w)?;
                log::info!(
                    "XDP program {prog_id} ({}) runs program {ext} ({}) in place of its main \
                     function (a libxdp dispatcher with one program): observing that one",
                    info.name,
                    ext_info.name
                );
                Ok(o)
            }
            other => other.map_err(|Busy(w)| w),
        }
    }

    /// The observer on function `func` of `target` (program `target_id`:
    /// `program`, or the extension that replaces `program`'s main function),
    /// standing for program `program`; `Err(Busy)` carries the reason.
    fn load(
        program: u32,
        target_id: u32,
        target: std::os::fd::BorrowedFd<'_>,
        name: &str,
        func: u32,
    ) -> Result<Self, Busy> {
        // No target BTF: the observer has no CO-RE relocations (a test in
        // xdp-ebpf checks), so the kernel's BTF need not be parsed.
        let mut ebpf = EbpfLoader::with_btf(None)
            .load(xdp_ebpf::verdicts_object())
            .map_err(|e| Busy(format!("loading xdptop's verdict observer: {e}")))?;
        let program_mut: &mut FExit = ebpf
            .program_mut(xdp_ebpf::VERDICTS_PROGRAM)
            .ok_or_else(|| Busy("the embedded observer object has no program".into()))?
            .try_into()
            .map_err(|e| Busy(format!("xdptop's observer is not an fexit program: {e}")))?;
        program_mut
            .load_for_program(target, func)
            .map_err(|e| Busy(refused(target_id, name, "load", &e)))?;
        program_mut
            .attach()
            .map_err(|e| Busy(refused(target_id, name, "attach", &e)))?;
        let counts = match ebpf.take_map(xdp_ebpf::VERDICTS_MAP) {
            Some(map @ Map::PerCpuArray(_)) => {
                PerCpuArray::try_from(map).map_err(|e| Busy(format!("the observer's map: {e}")))?
            }
            _ => {
                return Err(Busy(
                    "the embedded observer object has no verdicts map".into(),
                ));
            }
        };
        Ok(Self {
            program,
            _ebpf: ebpf,
            counts,
        })
    }
}

/// A refusal's words (the kernel's EBUSY among them).
struct Busy(String);

/// Opens program `prog_id` with its info and the BTF id of its main
/// function, or says why it cannot be observed.
fn open_target(prog_id: u32) -> Result<(OwnedFd, sys::ProgInfo, u32), String> {
    let target = sys::prog_fd_by_id(prog_id).map_err(|e| match e.raw_os_error() {
        Some(libc::EPERM) => format!(
            "opening XDP program {prog_id} to observe it needs CAP_SYS_ADMIN (run xdptop as root)"
        ),
        Some(libc::ENOENT) => format!("XDP program {prog_id} is gone"),
        _ => format!("opening XDP program {prog_id}: {e}"),
    })?;
    let info = sys::prog_info(target.as_fd())
        .map_err(|e| format!("reading XDP program {prog_id}'s info: {e}"))?;
    let Some(func) = info.main_func else {
        return Err(format!(
            "XDP program {prog_id} ({}) was loaded without BTF, which fexit needs to observe it",
            info.name
        ));
    };
    Ok((target, info, func))
}

/// The extension program (freplace) that replaces function `func` of
/// program `prog_id`, from the kernel's tracing links.
fn replacement_of(prog_id: u32, func: u32) -> Option<u32> {
    sys::links()
        .filter_map(|fd| sys::link_info(fd.as_fd()).ok())
        .find(|l| {
            l.link_type == sys::LINK_TYPE_TRACING
                && l.target_prog == prog_id
                && l.target_btf_id == func
        })
        .map(|l| l.prog_id)
}

impl Observer {
    /// The program it stands for: the one on the interface.
    pub fn program(&self) -> u32 {
        self.program
    }

    /// Cumulative counts since the observer was attached, summed over CPUs.
    pub fn read(&self) -> Result<ActionTotals, aya::maps::MapError> {
        let mut total = ActionTotals::default();
        for (i, slot) in total.iter_mut().enumerate() {
            for cpu in self.counts.get(&(i as u32), 0)?.iter() {
                slot.packets = slot.packets.wrapping_add(cpu.packets);
                slot.bytes = slot.bytes.wrapping_add(cpu.bytes);
            }
        }
        Ok(total)
    }
}

/// Keeps an observer on whatever XDP program runs on one interface: when
/// that program changes (libxdp swaps its dispatcher when a program is added
/// or removed, a loader restarts), the old observer's last counts are kept
/// and a new one is attached to the new program, so the totals go on without
/// a gap in what was counted or a step back.
pub struct Follower {
    iface: String,
    ifindex: u32,
    observer: Option<Observer>,
    /// What the observers dropped so far had counted.
    base: ActionTotals,
    /// Why there is no observer now, and for which program.
    why_not: Option<(u32, String)>,
    /// The kernel or the process cannot run observers at all (no
    /// trampolines, no capability): no point asking again.
    never: bool,
    /// The observed program, open for its run-time statistics.
    target: Option<(u32, OwnedFd)>,
    /// After a refusal that may pass (EBUSY seen once in a 6.1 guest right
    /// after libxdp built a dispatcher): when to ask again, and the wait
    /// after that.
    retry: Option<Retry>,
}

impl Follower {
    /// Observes the program on `ifindex` now, if it can; [`Self::why_not`]
    /// says why not.
    pub fn new(iface: &str, ifindex: u32) -> Self {
        match sys::xdp_prog_id(ifindex) {
            Ok(Some(id)) => Self::for_program(iface, ifindex, id),
            Ok(None) => Self::without(iface, ifindex, format!("no XDP program runs on {iface}")),
            Err(e) => Self::without(
                iface,
                ifindex,
                format!("asking which XDP program runs on {iface}: {e}"),
            ),
        }
    }

    /// Observes program `prog_id`, which runs on `ifindex`.
    pub fn for_program(iface: &str, ifindex: u32, prog_id: u32) -> Self {
        let mut f = Self::without(iface, ifindex, String::new());
        f.why_not = None;
        f.attach(prog_id);
        f
    }

    fn without(iface: &str, ifindex: u32, why: String) -> Self {
        Self {
            iface: iface.to_owned(),
            ifindex,
            observer: None,
            base: ActionTotals::default(),
            why_not: Some((0, why)),
            never: false,
            target: None,
            retry: None,
        }
    }

    fn attach(&mut self, prog_id: u32) {
        if super::run_time_stats_on() {
            self.target = sys::prog_fd_by_id(prog_id).ok().map(|fd| (prog_id, fd));
        }
        // A refusal that holds for the whole run is found once, not per
        // interface (a hundred interfaces on a kernel without trampolines).
        static NEVER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        if let Some(why) = NEVER.get() {
            self.never = true;
            self.why_not = Some((prog_id, why.clone()));
            return;
        }
        match Observer::attach(prog_id) {
            Ok(o) => {
                log::info!(
                    "{}: observing the verdicts of XDP program {prog_id} (fexit)",
                    self.iface
                );
                self.observer = Some(o);
                self.why_not = None;
                self.retry = None;
            }
            Err(refusal) => {
                let why = refusal.why;
                if self.why_not.as_ref().is_none_or(|(_, w)| *w != why) {
                    log::warn!("{}: verdicts not observable: {why}", self.iface);
                }
                self.never = refusal.permanent;
                if refusal.permanent {
                    let _ = NEVER.set(why.clone());
                    self.retry = None;
                } else {
                    let same = self.why_not.as_ref().is_some_and(|(id, _)| *id == prog_id);
                    self.retry = Some(Retry::after(
                        Instant::now(),
                        self.retry.filter(|_| same).map(|r| r.wait),
                    ));
                }
                self.why_not = Some((prog_id, why));
            }
        }
    }

    /// Why no verdicts are observed, if so.
    pub fn why_not(&self) -> Option<&str> {
        self.why_not.as_ref().map(|(_, w)| w.as_str())
    }

    /// Refused for a reason that may pass: [`Self::read`] tries again.
    pub fn may_retry(&self) -> bool {
        !self.never && self.observer.is_none() && self.retry.is_some()
    }

    pub fn is_observing(&self) -> bool {
        self.observer.is_some()
    }

    /// The verdict totals now, following a program change first; `None`
    /// while nothing is observed.
    pub fn read(&mut self) -> Option<ActionTotals> {
        let ifindex = self.ifindex;
        self.read_on(|| sys::xdp_prog_id(ifindex).ok().flatten())
    }

    /// [`Self::read`] when the caller knows the interface's program
    /// already (`on_iface`, asked only if needed): no second netlink query.
    pub fn read_on(&mut self, on_iface: impl FnOnce() -> Option<u32>) -> Option<ActionTotals> {
        if self.never {
            return None;
        }
        let now = on_iface();
        let current = self
            .observer
            .as_ref()
            .map(Observer::program)
            .or(self.why_not.as_ref().map(|(id, _)| *id));
        if let Some(id) = now
            && Some(id) != current
        {
            if let Some(old) = self.observer.take() {
                // What the old one counted up to its detach is kept.
                if let Ok(last) = old.read() {
                    add(&mut self.base, &last);
                }
                log::info!(
                    "{}: the XDP program changed (id {} -> {id}); observing the new one",
                    self.iface,
                    old.program
                );
            }
            self.attach(id);
        } else if let Some(id) = now
            && self.observer.is_none()
            && self.retry.is_some_and(|r| r.due(Instant::now()))
        {
            self.attach(id);
        }
        let counts = self.observer.as_ref()?.read().ok()?;
        let mut total = self.base;
        add(&mut total, &counts);
        Some(total)
    }
}

impl Follower {
    /// The observed program's run time and runs so far, while the kernel's
    /// BPF statistics are on.
    pub fn run_stats(&self) -> Option<RunStats> {
        let (prog_id, fd) = self.target.as_ref()?;
        let (run_time_ns, run_cnt) = sys::prog_run_stats(fd.as_fd()).ok()?;
        Some(RunStats {
            prog_id: *prog_id,
            run_time_ns,
            run_cnt,
        })
    }
}

/// When to try a refused attach again: soon at first, then less often, so
/// a lasting refusal costs a load attempt every half minute at most.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Retry {
    at: Instant,
    wait: Duration,
}

impl Retry {
    const FIRST: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(30);

    /// The next try after a refusal at `now`, `last` being the wait before
    /// this refusal (None for a first refusal).
    fn after(now: Instant, last: Option<Duration>) -> Self {
        let wait = last.map_or(Self::FIRST, |w| (w * 2).min(Self::MAX));
        Self {
            at: now + wait,
            wait,
        }
    }

    fn due(self, now: Instant) -> bool {
        now >= self.at
    }
}

fn add(into: &mut ActionTotals, more: &ActionTotals) {
    for (a, b) in into.iter_mut().zip(more) {
        *a = Counts {
            packets: a.packets.wrapping_add(b.packets),
            bytes: a.bytes.wrapping_add(b.bytes),
        };
    }
}

/// Why the kernel refused the observer, in the operator's words.
fn refused(prog_id: u32, name: &str, step: &str, e: &ProgramError) -> String {
    let errno = std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .and_then(std::io::Error::raw_os_error)
        .or(match e {
            ProgramError::SyscallError(s) => s.io_error.raw_os_error(),
            _ => None,
        });
    let full_caps = crate::privilege::has_sys_admin();
    match errno {
        // 524 is the kernel's ENOTSUPP; EPERM with every capability is what
        // a kernel without trampolines answers for tracing programs (6.18
        // here: `bpftool feature probe kernel` lists `tracing` as unavailable).
        Some(524) | Some(libc::EOPNOTSUPP) => no_trampolines(),
        Some(libc::EPERM) if full_caps => no_trampolines(),
        Some(libc::EPERM) => format!("{NEEDS_CAPS} (run xdptop as root)"),
        _ => format!(
            "the kernel refused to {step} xdptop's fexit observer on XDP program {prog_id} \
             ({name}): {}",
            super::error::chain(e)
        ),
    }
}

const NEEDS_CAPS: &str = "observing verdicts needs CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN";

/// Why an observer could not be attached.
#[derive(Debug)]
pub struct Refusal {
    /// In the operator's words.
    pub why: String,
    /// Nothing will change it while xdptop runs (the kernel, capabilities).
    pub permanent: bool,
}

fn no_trampolines() -> String {
    "this kernel has no BPF trampolines, so fexit programs (which observe verdicts) cannot \
     load: `bpftool feature probe kernel` lists program type `tracing` as unavailable"
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_attaches_are_retried_sooner_first_then_every_half_minute() {
        let t0 = Instant::now();
        let first = Retry::after(t0, None);
        assert_eq!(first.wait, Duration::from_secs(1));
        assert!(!first.due(t0));
        assert!(first.due(t0 + Duration::from_secs(1)));
        let waits: Vec<u64> =
            std::iter::successors(Some(first), |r| Some(Retry::after(r.at, Some(r.wait))))
                .take(8)
                .map(|r| r.wait.as_secs())
                .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
    }
}
