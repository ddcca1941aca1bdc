//! What the running kernel allows, found by trying it, and skipping tests
//! that need what it lacks, loudly.
//!
//! BPF trampolines (fentry/fexit, and the `ext`/freplace programs libxdp's
//! multi-program dispatcher is made of) are missing on some kernels even when
//! BTF and XDP work: the development host's 6.18 is one (`bpftool feature
//! probe kernel` lists program types `tracing` and `ext` as unavailable, and
//! libxdp then silently falls back to a single program). [`trampolines`]
//! finds out by loading and attaching the smallest fexit program there is;
//! [`skip_without_trampolines`] turns a "no" into a skipped test with a
//! [`SKIP_MARKER`] line that `cargo xtask vmtest` looks for: a test that needs
//! trampolines must not be skipped on the VM kernels, which have them.

use std::{ffi::CStr, fs, io::Write as _, os::fd::RawFd, sync::OnceLock};

/// The start of the line a skipped test prints on the process's real stderr
/// (past the test harness's capture): `MARKER: TEST: REASON`.
pub const SKIP_MARKER: &str = "xdp-lab: SKIPPED, needs BPF trampolines";

/// The kernel function the probe attaches fexit to: `bpf_fentry_test1`
/// exists for exactly this kind of use (net/bpf/test_run.c) on every kernel
/// with BPF and networking.
const PROBE_TARGET: &str = "bpf_fentry_test1";

/// `Ok` when this kernel can load and attach an fexit program (so it has BPF
/// trampolines); otherwise why not, e.g. "loading an fexit program on
/// bpf_fentry_test1 failed: Unknown error 524 (ENOTSUPP)". Probed once per
/// process. Needs root (or CAP_BPF + CAP_PERFMON).
pub fn trampolines() -> Result<(), String> {
    static PROBED: OnceLock<Result<(), String>> = OnceLock::new();
    PROBED.get_or_init(probe_fexit).clone()
}

/// For a test that needs BPF trampolines: `true` (the caller returns at
/// once) when the kernel has none, after printing
/// `SKIP_MARKER: TEST: REASON` on the real stderr, where `cargo test` shows
/// it even for a passing test.
pub fn skip_without_trampolines() -> bool {
    match trampolines() {
        Ok(()) => false,
        Err(reason) => {
            let thread = std::thread::current();
            let test = thread.name().unwrap_or("?");
            let line = format!("{SKIP_MARKER}: {test}: {reason}\n");
            // Not eprintln!: the harness captures that for passing tests.
            let _ = std::io::stderr().write_all(line.as_bytes());
            true
        }
    }
}

/// Whether this process runs inside `cargo xtask vmtest`'s guest (it sets
/// `XDP_LAB_VM` to the kernel release): an emulated CPU (qemu TCG) many
/// times slower than the host, where counts are exact but timings mean
/// nothing.
pub fn in_vm() -> bool {
    std::env::var_os("XDP_LAB_VM").is_some()
}

fn probe_fexit() -> Result<(), String> {
    let btf = fs::read("/sys/kernel/btf/vmlinux")
        .map_err(|e| format!("no kernel BTF (/sys/kernel/btf/vmlinux: {e})"))?;
    let id = btf_func_id(&btf, PROBE_TARGET)?
        .ok_or_else(|| format!("the kernel's BTF has no function {PROBE_TARGET}"))?;
    let prog = Fd(load_fexit(id)
        .map_err(|e| format!("loading an fexit program on {PROBE_TARGET} failed: {e}"))?);
    let link = Fd(attach_tracing(prog.0)
        .map_err(|e| format!("attaching an fexit program to {PROBE_TARGET} failed: {e}"))?);
    drop(link);
    Ok(())
}

/// An owned file descriptor from the bpf syscall, closed on drop.
struct Fd(RawFd);

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: the descriptor is ours and closed once.
        unsafe { libc::close(self.0) };
    }
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_RAW_TRACEPOINT_OPEN: libc::c_long = 17;
const BPF_PROG_TYPE_TRACING: u32 = 26;
const BPF_TRACE_FEXIT: u32 = 25;

/// `union bpf_attr` for BPF_PROG_LOAD, up to `attach_btf_obj_fd` (Linux 5.11
/// layout; older kernels accept it as long as the tail is zero).
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    prog_btf_fd: u32,
    func_info_rec_size: u32,
    func_info: u64,
    func_info_cnt: u32,
    line_info_rec_size: u32,
    line_info: u64,
    line_info_cnt: u32,
    attach_btf_id: u32,
    attach_btf_obj_fd: u32,
    _pad: u32,
}

/// `union bpf_attr` for BPF_RAW_TRACEPOINT_OPEN (a tracing program with no
/// name attaches to its BTF target).
#[repr(C)]
#[derive(Default)]
struct RawTracepointAttr {
    name: u64,
    prog_fd: u32,
    _pad: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> Result<RawFd, String> {
    // SAFETY: `attr` is a properly sized, zero-padded bpf_attr for `cmd`
    // whose pointers (if any) outlive the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if ret < 0 {
        let err = std::io::Error::last_os_error();
        let root = nix::unistd::Uid::effective().is_root();
        let name = match err.raw_os_error() {
            Some(libc::EPERM) if !root => " (EPERM: run as root)",
            Some(libc::EPERM) => " (EPERM, as root)",
            Some(524) => " (ENOTSUPP: no BPF trampolines on this kernel)",
            Some(libc::EINVAL) => " (EINVAL)",
            _ => "",
        };
        return Err(format!("{err}{name}"));
    }
    Ok(ret as RawFd)
}

/// `r0 = 0; exit`: an fexit program must return 0.
fn load_fexit(btf_id: u32) -> Result<RawFd, String> {
    let insns: [u64; 2] = [0xb7, 0x95];
    let license = c"GPL";
    let mut log = vec![0u8; 4096];
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_TRACING,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        expected_attach_type: BPF_TRACE_FEXIT,
        attach_btf_id: btf_id,
        ..Default::default()
    };
    attr.prog_name[..13].copy_from_slice(b"xdp_lab_tramp");
    bpf(BPF_PROG_LOAD, &mut attr).map_err(|e| {
        let text = CStr::from_bytes_until_nul(&log)
            .map(|s| s.to_string_lossy().trim().to_owned())
            .unwrap_or_default();
        match text.lines().last() {
            Some(last) if !last.is_empty() => format!("{e}; verifier: {last}"),
            _ => e,
        }
    })
}

fn attach_tracing(prog_fd: RawFd) -> Result<RawFd, String> {
    let mut attr = RawTracepointAttr {
        prog_fd: prog_fd as u32,
        ..Default::default()
    };
    bpf(BPF_RAW_TRACEPOINT_OPEN, &mut attr)
}

/// The type id of the BTF `FUNC` called `name`, from raw BTF (the format of
/// /sys/kernel/btf/vmlinux: a header, then the type records, then strings).
fn btf_func_id(btf: &[u8], name: &str) -> Result<Option<u32>, String> {
    let bad = || "malformed kernel BTF".to_owned();
    let u32_at = |off: usize| -> Result<u32, String> {
        let b = btf.get(off..off + 4).ok_or_else(bad)?;
        Ok(u32::from_ne_bytes(b.try_into().map_err(|_| bad())?))
    };
    if btf.len() < 24 || u16::from_ne_bytes([btf[0], btf[1]]) != 0xeb9f {
        return Err(bad());
    }
    let hdr_len = u32_at(4)? as usize;
    let (type_off, type_len) = (u32_at(8)? as usize, u32_at(12)? as usize);
    let str_off = u32_at(16)? as usize;
    let types = hdr_len + type_off;
    let strings = hdr_len + str_off;
    let name_at = |off: usize| -> &[u8] {
        let s = btf.get(strings + off..).unwrap_or_default();
        &s[..s.iter().position(|&b| b == 0).unwrap_or(s.len())]
    };
    let mut pos = types;
    let mut id = 1u32;
    while pos < types + type_len {
        let (name_off, info) = (u32_at(pos)? as usize, u32_at(pos + 4)?);
        let kind = (info >> 24) & 0x1f;
        let vlen = (info & 0xffff) as usize;
        if kind == 12 && name_at(name_off) == name.as_bytes() {
            return Ok(Some(id));
        }
        let extra = match kind {
            1 | 14 | 17 => 4,             // INT, VAR, DECL_TAG
            3 => 12,                      // ARRAY
            4 | 5 | 15 | 19 => 12 * vlen, // STRUCT, UNION, DATASEC, ENUM64
            6 | 13 => 8 * vlen,           // ENUM, FUNC_PROTO
            2 | 7..=12 | 16 | 18 => 0,    // PTR, FWD, TYPEDEF.., FUNC, FLOAT, TYPE_TAG
            other => return Err(format!("unknown BTF kind {other} in the kernel's BTF")),
        };
        pos += 12 + extra;
        id += 1;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_btf_is_walked_to_a_known_function() {
        let Ok(btf) = fs::read("/sys/kernel/btf/vmlinux") else {
            let _ = std::io::stderr()
                .write_all(b"xdp-lab: no /sys/kernel/btf/vmlinux, BTF walk not checked\n");
            return;
        };
        // Found, with an id inside the type section; a made-up name is not.
        let id = btf_func_id(&btf, PROBE_TARGET)
            .expect("walk")
            .expect("found");
        assert!(id > 1, "{id}");
        assert_eq!(btf_func_id(&btf, "no_such_function_xdp_lab"), Ok(None));
    }

    #[test]
    fn garbage_is_not_btf() {
        assert!(btf_func_id(&[0u8; 64], "x").is_err());
        assert!(btf_func_id(b"", "x").is_err());
    }
}
