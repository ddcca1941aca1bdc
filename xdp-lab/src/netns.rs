//! Reaching into a network namespace (e.g. a lab's `/run/netns/NAME`): a
//! child process started there, a closure run there, whether something
//! listens there, and free ports.
//!
//! Every function takes `Option<&Path>`: `None` means right here, the
//! caller's own namespace.

use std::{
    ffi::OsStr,
    fs::File,
    net::{SocketAddr, TcpListener, TcpStream},
    path::Path,
    process::Command,
    thread,
    time::Duration,
};

use anyhow::Context as _;
use nix::sched::{CloneFlags, setns};

/// A loopback port nothing listens on right now (the OS picks it). A port
/// free here is a fine guess in a lab's namespace too, which has its own
/// ports: a server started there on it fails loudly if it is taken.
pub fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(l.local_addr().context("the bound address")?.port())
}

/// `program` to be started in the network namespace at `netns`, or right
/// here for `None`. nsenter execs `program`, so the child's pid is
/// `program`'s; unlike `ip netns exec` it leaves /sys (and so the bpffs
/// mounts) alone.
pub fn command_in(netns: Option<&Path>, program: impl AsRef<OsStr>) -> Command {
    match netns {
        Some(ns) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net={}", ns.display()))
                .arg("--")
                .arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// Runs `f` in the network namespace at `netns` (on a helper thread:
/// `setns` affects only the calling thread), or right here for `None`. A
/// panic in `f` goes on in the caller.
pub fn in_netns<T: Send>(netns: Option<&Path>, f: impl FnOnce() -> T + Send) -> anyhow::Result<T> {
    let Some(ns) = netns else {
        return Ok(f());
    };
    let file = File::open(ns).with_context(|| format!("opening the namespace {}", ns.display()))?;
    thread::scope(|s| {
        s.spawn(move || -> anyhow::Result<T> {
            setns(&file, CloneFlags::CLONE_NEWNET)
                .with_context(|| format!("entering the namespace {}", ns.display()))?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

/// Whether every one of `addrs` accepts a TCP connection (within 200 ms
/// each), tried from the network namespace at `netns`.
pub fn accepting(netns: Option<&Path>, addrs: &[SocketAddr]) -> anyhow::Result<bool> {
    in_netns(netns, || {
        addrs
            .iter()
            .all(|a| TcpStream::connect_timeout(a, Duration::from_millis(200)).is_ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn here_is_the_callers_own_namespace() {
        let port = free_port().expect("a free port");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        assert!(!accepting(None, &[addr]).expect("no namespace to enter"));
        let l = TcpListener::bind(addr).expect("the free port can be bound");
        assert!(accepting(None, &[addr]).expect("no namespace to enter"));
        drop(l);
        assert_eq!(in_netns(None, || 7).expect("no namespace to enter"), 7);
        let c = command_in(None, "true");
        assert_eq!(c.get_program(), "true");
        assert_eq!(c.get_args().count(), 0);
    }

    #[test]
    fn a_namespace_is_entered_with_nsenter() {
        let c = command_in(Some(Path::new("/run/netns/lab-x")), "rotel");
        assert_eq!(c.get_program(), "nsenter");
        let args: Vec<_> = c.get_args().collect();
        assert_eq!(args, ["--net=/run/netns/lab-x", "--", "rotel"]);
    }

    #[test]
    fn a_missing_namespace_is_named() {
        let err = in_netns(Some(Path::new("/run/netns/xdp-lab-no-such-ns")), || ())
            .expect_err("there is no such namespace");
        assert_eq!(
            format!("{err:#}"),
            "opening the namespace /run/netns/xdp-lab-no-such-ns: No such file or directory \
             (os error 2)"
        );
    }

    #[test]
    fn a_panic_in_the_namespace_goes_on_in_the_caller() {
        // The caller's own namespace, entered by path: no root needed.
        let own = Path::new("/proc/self/ns/net");
        let caught = std::panic::catch_unwind(|| in_netns(Some(own), || panic!("boom in there")))
            .expect_err("the panic is the caller's");
        assert_eq!(caught.downcast_ref::<&str>(), Some(&"boom in there"));
    }
}
