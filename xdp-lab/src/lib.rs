//! Throw-away labs for xdptop's tests, demo and benchmarks.
//!
//! A [`Lab`] is two network namespaces made for the occasion, joined by veth
//! pairs: the XDP side (where xdptop runs) and the generator side. Links get
//! addresses from 198.18.0.0/15 (set aside for benchmarking), IPv6 is off and
//! neighbours are static, so nothing but the generator's packets reach the
//! XDP side: N packets sent means N counted. Everything is removed on drop,
//! also when a test panics.

mod bpffs;
mod lab;
mod pattern;
mod traffic;

pub use bpffs::TempBpffs;
pub use lab::{Lab, LinkPair, ip};
pub use pattern::{Phase, demo_phases, play};
pub use traffic::{Proto, Traffic, frame_len, send};
