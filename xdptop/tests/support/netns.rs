//! Reaching into a lab's network namespace (`/run/netns/NAME`) from a test:
//! a child process started there, or a closure run there, and free ports.

use std::{fs, net::TcpListener, path::Path, process::Command, thread};

/// A port nothing listens on right now (the OS picks it).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// `bin` to be started in the network namespace at `netns`, or right here
/// for `None`. nsenter execs `bin`: the child's pid is `bin`'s.
pub fn command_in(netns: Option<&Path>, bin: &Path) -> Command {
    match netns {
        Some(ns) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net={}", ns.display())).arg("--").arg(bin);
            c
        }
        None => Command::new(bin),
    }
}

/// Runs `f` in the network namespace at `netns` (on a helper thread:
/// `setns` affects only the calling thread), or right here for `None`.
pub fn in_netns<T: Send + 'static>(
    netns: Option<&Path>,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    match netns {
        None => f(),
        Some(ns) => {
            let file = fs::File::open(ns)
                .unwrap_or_else(|e| panic!("opening the namespace {}: {e}", ns.display()));
            thread::spawn(move || {
                nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                    .expect("entering the namespace");
                f()
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
        }
    }
}
