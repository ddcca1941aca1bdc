//! Reaching into a lab's network namespace from a test: [`xdp_lab::netns`],
//! failing the test (a panic) where the lab returns an error.

use std::path::Path;

pub use xdp_lab::netns::command_in;

/// A port nothing listens on right now (the OS picks it).
pub fn free_port() -> u16 {
    xdp_lab::netns::free_port().unwrap_or_else(|e| panic!("{e:#}"))
}

/// Runs `f` in the network namespace at `netns`, or right here for `None`.
pub fn in_netns<T: Send>(netns: Option<&Path>, f: impl FnOnce() -> T + Send) -> T {
    xdp_lab::netns::in_netns(netns, f).unwrap_or_else(|e| panic!("{e:#}"))
}

/// Every one of `addrs` accepts a connection, tried from `netns`.
pub fn accepting(netns: Option<&Path>, addrs: &[std::net::SocketAddr]) -> bool {
    xdp_lab::netns::accepting(netns, addrs).unwrap_or_else(|e| panic!("{e:#}"))
}
