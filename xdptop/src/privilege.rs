//! Capabilities: what loading and attaching need, checked up front with an
//! error that says exactly what is missing and how to grant it.

use anyhow::bail;
use caps::{CapSet, Capability};
use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit, setrlimit};

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
    if let Err(e) = setrlimit(Resource::RLIMIT_MEMLOCK, RLIM_INFINITY, RLIM_INFINITY) {
        log::debug!(
            "could not raise RLIMIT_MEMLOCK: {}",
            std::io::Error::from(e)
        );
    }
}

/// Lifts the soft RLIMIT_NOFILE to the hard limit: each watched interface
/// holds a few descriptors, and the usual soft limit of 1024 would end a
/// few hundred interfaces short. Harmless when already there.
pub fn raise_nofile() {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    if soft < hard {
        if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            log::debug!("could not raise RLIMIT_NOFILE: {}", std::io::Error::from(e));
        }
    }
}

/// The soft RLIMIT_NOFILE, for error messages.
pub fn nofile_limit() -> Option<u64> {
    getrlimit(Resource::RLIMIT_NOFILE)
        .ok()
        .map(|(soft, _)| soft)
}

/// Whether the verifier lets this process subtract packet pointers
/// (`allow_ptr_leaks`: CAP_PERFMON, or CAP_SYS_ADMIN before it existed).
pub fn may_subtract_pointers() -> bool {
    let has = |c| caps::has_cap(None, CapSet::Effective, c).unwrap_or(false);
    has(Capability::CAP_PERFMON) || has(Capability::CAP_SYS_ADMIN)
}

/// What xdptop keeps after attaching: attaching again when an interface
/// returns, and the dashboard's detach/attach keys, need exactly these
/// (CAP_PERFMON only if it was there: it selects the faster program, and a
/// re-attached interface should get the same one). Reading maps through the
/// fds already open needs none.
pub const KEPT: [Capability; 3] = [
    Capability::CAP_BPF,
    Capability::CAP_NET_ADMIN,
    Capability::CAP_PERFMON,
];

/// Drops every capability but [`KEPT`] from all sets (effective, permitted,
/// inheritable, ambient, and the bounding set where allowed), so a bug in
/// xdptop cannot be used for more than it needs.
pub fn drop_all_but_kept() -> anyhow::Result<()> {
    use std::collections::HashSet;
    let keep: HashSet<Capability> = KEPT.into_iter().collect();
    let permitted = caps::read(None, CapSet::Permitted).unwrap_or_default();
    let keep: HashSet<Capability> = keep.intersection(&permitted).copied().collect();
    // The bounding set first: dropping from it needs CAP_SETPCAP, which the
    // next step removes. Without CAP_SETPCAP (setcap'ed binary) it is skipped.
    if caps::has_cap(None, CapSet::Effective, Capability::CAP_SETPCAP).unwrap_or(false) {
        for cap in caps::all().difference(&keep) {
            let _ = caps::drop(None, CapSet::Bounding, *cap);
        }
    }
    caps::clear(None, CapSet::Ambient).ok();
    caps::clear(None, CapSet::Inheritable).ok();
    caps::set(None, CapSet::Effective, &keep)
        .map_err(|e| anyhow::anyhow!("dropping capabilities: {e}"))?;
    caps::set(None, CapSet::Permitted, &keep)
        .map_err(|e| anyhow::anyhow!("dropping capabilities: {e}"))?;
    Ok(())
}
