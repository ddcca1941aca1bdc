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

use std::os::fd::AsFd as _;

use aya::{
    EbpfLoader,
    programs::{FExit, ProgramError},
};

use super::sys;

/// An fexit observer attached to one program.
pub struct Observer {
    /// Owns the program, its map and its link: dropping it detaches the
    /// observer.
    _ebpf: aya::Ebpf,
}

impl Observer {
    /// Loads and attaches the observer to program `prog_id`; `Err` says why
    /// it cannot, in words for the operator.
    pub fn attach(prog_id: u32) -> Result<Self, String> {
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
                "XDP program {prog_id} ({}) was loaded without BTF, which fexit needs to \
                 observe it",
                info.name
            ));
        };
        // No target BTF: the observer has no CO-RE relocations (a test in
        // xdp-ebpf checks), so the kernel's BTF need not be parsed.
        let mut ebpf = EbpfLoader::with_btf(None)
            .load(xdp_ebpf::verdicts_object())
            .map_err(|e| format!("loading xdptop's verdict observer: {e}"))?;
        let program: &mut FExit = ebpf
            .program_mut(xdp_ebpf::VERDICTS_PROGRAM)
            .ok_or("the embedded observer object has no program")?
            .try_into()
            .map_err(|e| format!("xdptop's observer is not an fexit program: {e}"))?;
        program
            .load_for_program(target.as_fd(), func)
            .map_err(|e| refused(prog_id, &info.name, "load", &e))?;
        program
            .attach()
            .map_err(|e| refused(prog_id, &info.name, "attach", &e))?;
        Ok(Self { _ebpf: ebpf })
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
        Some(libc::EPERM) => "observing verdicts needs CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN \
                              (run xdptop as root)"
            .to_owned(),
        _ => format!(
            "the kernel refused to {step} xdptop's fexit observer on XDP program {prog_id} \
             ({name}): {}",
            super::error::chain(e)
        ),
    }
}

fn no_trampolines() -> String {
    "this kernel has no BPF trampolines, so fexit programs (which observe verdicts) cannot \
     load: `bpftool feature probe kernel` lists program type `tracing` as unavailable"
        .to_owned()
}
