//! The kernel side: load, pin, attach, re-use and detach xdptop's XDP
//! program, and read its maps. See `pins.rs` for the layout on bpffs.

mod attach;
mod dispatcher;
mod error;
#[allow(unsafe_code)]
mod libxdp;
mod lock;
mod observer;
mod pins;
mod reader;
#[allow(unsafe_code)]
mod sys;
mod talkers;
mod watched;

pub use attach::{Attached, Detached, detach, watch, watches_foreign};
pub use dispatcher::in_use as uses_dispatcher;
pub use error::Error;
pub use observer::Observer;
pub use pins::{MapLayout, Pins, check_shared_map};
pub use reader::{ForeignSource, OwnSource};
pub use talkers::{TalkerTables, kernel_memory as talkers_kernel_memory};
pub use watched::Watched;

/// How to attach: the kernel side's own type (clap's `cli::ModeArg` stops
/// in `config.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMode {
    /// Native (driver) mode, falling back to skb mode.
    Auto,
    Native,
    Skb,
}

/// How to watch an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchOptions {
    pub mode: AttachMode,
    /// Run priority in libxdp's dispatcher (`--priority`); `None` means
    /// priority 0 (`dispatcher::RUN_PRIO`), first in the chain. A single program has no chain, so
    /// there it only earns a note.
    pub priority: Option<u32>,
    /// With `--talkers`: count sources and services while watching; a fresh
    /// load sizes the sources table this many entries (`--talkers-table`).
    pub talkers_table: Option<u32>,
    /// Without `--talkers`, for the dashboard: open the talker tables idle,
    /// so that its talkers view can switch counting on at run time
    /// ([`crate::sampler::CounterSource::count_talkers`]).
    pub talkers_on_demand: bool,
}

/// `--talkers-table` default: sources (the services array has a fixed size).
pub const DEFAULT_TALKERS_TABLE: u32 = xdp_ebpf::TALKERS_MAX_ENTRIES;

/// What a load with `--talkers-table n` sizes: the sources array's slots
/// (`n` rounded up to a power of two, as the program masks its hash), the
/// LRU table for the sources that find no slot (an eighth of them, at least
/// 16), and the bitmap of the slots in use (a u64 word per 64 slots).
pub fn source_tables(n: u32) -> (u32, u32, u32) {
    let slots = n.next_power_of_two();
    (slots, (slots / 8).max(16), slots.div_ceil(64))
}
/// Sources table of a program loaded without `--talkers`: the tables are
/// allocated in full at load, so they stay small (about 60 KiB) until
/// talkers are asked for; a later `--talkers` run on that attachment says
/// how to get larger.
/// (The services array has its fixed 2 MiB either way.)
pub const IDLE_TALKERS_TABLE: u32 = 1024;

/// The interface's index in this network namespace, if it exists.
pub fn ifindex(name: &str) -> Option<u32> {
    nix::net::if_::if_nametoindex(name).ok()
}

/// The `BPF_ENABLE_STATS` fd, held for the rest of the run once enabled.
static RUN_TIME_STATS: std::sync::OnceLock<std::os::fd::OwnedFd> = std::sync::OnceLock::new();

/// Turns on the kernel's run-time statistics of BPF programs until xdptop
/// exits (the fd is closed with the process), for the observed programs'
/// time per packet. Needs CAP_SYS_ADMIN: the error says so.
pub fn enable_run_time_stats() -> Result<(), RunTimeUnknown> {
    if RUN_TIME_STATS.get().is_some() {
        return Ok(());
    }
    match aya::sys::enable_stats(aya::sys::Stats::RunTime).map_err(|e| e.io_error) {
        Ok(fd) => {
            let _ = RUN_TIME_STATS.set(fd);
            Ok(())
        }
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => Err(RunTimeUnknown {
            short: "needs CAP_SYS_ADMIN",
            why: "the run time per packet needs CAP_SYS_ADMIN (BPF_ENABLE_STATS): run xdptop \
                  as root"
                .to_owned(),
        }),
        Err(e) => Err(RunTimeUnknown {
            short: "unknown",
            why: format!(
                "the run time per packet is unknown: enabling the kernel's BPF statistics \
                 failed: {e}"
            ),
        }),
    }
}

/// Why the run time per packet is unknown for the whole run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunTimeUnknown {
    /// In a few words, for a dashboard cell ("needs CAP_SYS_ADMIN").
    pub short: &'static str,
    /// The sentence for the log.
    pub why: String,
}

/// Whether [`enable_run_time_stats`] succeeded.
pub fn run_time_stats_on() -> bool {
    RUN_TIME_STATS.get().is_some()
}
