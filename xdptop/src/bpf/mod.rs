//! The kernel side: load, pin, attach, re-use and detach xdptop's XDP
//! program, and read its maps. See `pins.rs` for the layout on bpffs.

mod attach;
mod dispatcher;
mod error;
#[allow(unsafe_code)]
mod libxdp;
mod observer;
mod pins;
mod reader;
#[allow(unsafe_code)]
mod sys;
mod watched;

pub use attach::{Attached, Detached, detach, watch, watches_foreign};
pub use dispatcher::{LIBXDP_PACKAGES, RUN_PRIO, in_use as uses_dispatcher, libxdp_dir};
pub use error::Error;
pub use pins::{MapLayout, Pins, check_shared_map};
pub use reader::{ForeignSource, OwnSource, reading_from_per_cpu};
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

/// The interface's index in this network namespace, if it exists.
pub fn ifindex(name: &str) -> Option<u32> {
    nix::net::if_::if_nametoindex(name).ok()
}
