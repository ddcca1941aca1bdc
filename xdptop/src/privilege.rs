//! Capabilities: what loading and attaching need, checked up front with an
//! error that says exactly what is missing and how to grant it.

use std::collections::HashSet;

use caps::{CapSet, Capability, errors::CapsError};
use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit, setrlimit};

/// What can go wrong with capabilities; callers match on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Loading and attaching need capabilities this process lacks.
    #[error(
        "xdptop needs CAP_BPF and CAP_NET_ADMIN to {action} (missing: {}). Run it as root \
         (`sudo xdptop ...`), or grant them to the binary: `sudo setcap cap_bpf,cap_net_admin+ep {exe}`",
        names(.missing)
    )]
    Missing {
        action: String,
        missing: Vec<Capability>,
        /// This binary's path, for the setcap command.
        exe: String,
    },
    /// A capability set could not be read: not the same as an empty one.
    #[error("reading this process's {set} capability set")]
    Read {
        set: &'static str,
        #[source]
        source: CapsError,
    },
    #[error("dropping capabilities")]
    Drop(#[source] CapsError),
}

fn names(caps: &[Capability]) -> String {
    let names: Vec<String> = caps.iter().map(|c| c.to_string()).collect();
    names.join(", ")
}

fn read(set: CapSet) -> Result<HashSet<Capability>, Error> {
    caps::read(None, set).map_err(|source| Error::Read {
        set: match set {
            CapSet::Ambient => "ambient",
            CapSet::Bounding => "bounding",
            CapSet::Effective => "effective",
            CapSet::Inheritable => "inheritable",
            CapSet::Permitted => "permitted",
        },
        source,
    })
}

/// CAP_BPF loads programs and creates maps; CAP_NET_ADMIN attaches to an
/// interface. CAP_SYS_ADMIN stands in for both on kernels before 5.8.
pub const NEEDED: [Capability; 2] = [Capability::CAP_BPF, Capability::CAP_NET_ADMIN];

/// The needed capabilities missing from the effective set.
pub fn missing() -> Result<Vec<Capability>, Error> {
    let effective = read(CapSet::Effective)?;
    let has = |c| effective.contains(&c);
    if has(Capability::CAP_SYS_ADMIN) && !has(Capability::CAP_BPF) {
        // Pre-5.8 kernels know no CAP_BPF; CAP_SYS_ADMIN covers it there.
        return Ok(if has(Capability::CAP_NET_ADMIN) {
            vec![]
        } else {
            vec![Capability::CAP_NET_ADMIN]
        });
    }
    Ok(NEEDED.into_iter().filter(|&c| !has(c)).collect())
}

/// Fails with a clear message unless xdptop can load and attach.
pub fn check(action: &str) -> Result<(), Error> {
    let missing = missing()?;
    if missing.is_empty() {
        return Ok(());
    }
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "xdptop".into());
    Err(Error::Missing {
        action: action.to_owned(),
        missing,
        exe,
    })
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
pub fn may_subtract_pointers() -> Result<bool, Error> {
    let effective = read(CapSet::Effective)?;
    Ok(effective.contains(&Capability::CAP_PERFMON)
        || effective.contains(&Capability::CAP_SYS_ADMIN))
}

/// Whether CAP_SYS_ADMIN is effective: libxdp opens the programs of an
/// interface's dispatcher by id, which needs it.
pub fn has_sys_admin() -> bool {
    read(CapSet::Effective).is_ok_and(|e| e.contains(&Capability::CAP_SYS_ADMIN))
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

/// Drops every capability but [`KEPT`] and `also` from all sets (effective,
/// permitted, inheritable, ambient, and the bounding set where allowed), so
/// a bug in xdptop cannot be used for more than it needs.
pub fn drop_all_but_kept(also: &[Capability]) -> Result<(), Error> {
    let keep: HashSet<Capability> = KEPT.into_iter().chain(also.iter().copied()).collect();
    let permitted = read(CapSet::Permitted)?;
    let keep: HashSet<Capability> = keep.intersection(&permitted).copied().collect();
    // The bounding set first: dropping from it needs CAP_SETPCAP, which the
    // next step removes. Without CAP_SETPCAP (setcap'ed binary) it is skipped.
    if read(CapSet::Effective)?.contains(&Capability::CAP_SETPCAP) {
        for cap in caps::all().difference(&keep) {
            let _ = caps::drop(None, CapSet::Bounding, *cap);
        }
    }
    caps::clear(None, CapSet::Ambient).ok();
    caps::clear(None, CapSet::Inheritable).ok();
    caps::set(None, CapSet::Effective, &keep).map_err(Error::Drop)?;
    caps::set(None, CapSet::Permitted, &keep).map_err(Error::Drop)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_capabilities_are_named_with_the_fix() {
        let err = Error::Missing {
            action: "detach".into(),
            missing: vec![Capability::CAP_BPF, Capability::CAP_NET_ADMIN],
            exe: "/usr/bin/xdptop".into(),
        };
        assert_eq!(
            err.to_string(),
            "xdptop needs CAP_BPF and CAP_NET_ADMIN to detach (missing: CAP_BPF, CAP_NET_ADMIN). \
             Run it as root (`sudo xdptop ...`), or grant them to the binary: \
             `sudo setcap cap_bpf,cap_net_admin+ep /usr/bin/xdptop`"
        );
    }

    #[test]
    fn this_process_capabilities_can_be_read() {
        // Whatever the test runs as: reading is not an error here.
        missing().expect("the effective set is readable");
        may_subtract_pointers().expect("the effective set is readable");
    }
}
