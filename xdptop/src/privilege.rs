//! Capabilities: what loading and attaching need, checked up front with an
//! error that says exactly what is missing and how to grant it.

use anyhow::bail;
use caps::{CapSet, Capability};

/// CAP_BPF loads programs and creates maps; CAP_NET_ADMIN attaches to an
/// interface. CAP_SYS_ADMIN stands in for both on kernels before 5.8.
pub const NEEDED: [Capability; 2] = [Capability::CAP_BPF, Capability::CAP_NET_ADMIN];

/// The needed capabilities missing from the effective set.
pub fn missing() -> Vec<Capability> {
    let has = |c| caps::has_cap(None, CapSet::Effective, c).unwrap_or(false);
    if has(Capability::CAP_SYS_ADMIN) && !has(Capability::CAP_BPF) {
        // Pre-5.8 kernels know no CAP_BPF; CAP_SYS_ADMIN covers it there.
        return if has(Capability::CAP_NET_ADMIN) {
            vec![]
        } else {
            vec![Capability::CAP_NET_ADMIN]
        };
    }
    NEEDED.into_iter().filter(|&c| !has(c)).collect()
}

/// Fails with a clear message unless xdptop can load and attach.
pub fn check(action: &str) -> anyhow::Result<()> {
    let missing = missing();
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = missing.iter().map(|c| c.to_string()).collect();
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "xdptop".into());
    bail!(
        "xdptop needs CAP_BPF and CAP_NET_ADMIN to {action} (missing: {}). Run it as root \
         (`sudo xdptop ...`), or grant them to the binary: `sudo setcap cap_bpf,cap_net_admin+ep {exe}`",
        names.join(", ")
    )
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; lift it so map
/// creation does not fail there. Harmless elsewhere.
pub fn raise_memlock() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads the struct we pass for the call's duration.
    let ret = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) };
    if ret != 0 {
        log::debug!(
            "could not raise RLIMIT_MEMLOCK: {}",
            std::io::Error::last_os_error()
        );
    }
}
