//! Throw-away labs for xdptop's tests, demo and benchmarks.
//!
//! A [`Lab`] is two network namespaces made for the occasion, joined by veth
//! pairs: the XDP side (where xdptop runs) and the generator side. Links get
//! addresses from 198.18.0.0/15 (set aside for benchmarking), IPv6 is off and
//! neighbours are static, so nothing but the generator's packets reach the
//! XDP side: N packets sent means N counted. Everything is removed on drop,
//! also when a test panics.
//!
//! Also here, for the same users: [`poll`] to wait for a condition, [`output`]
//! to run a command, [`netns`] to reach into a lab's namespace, [`rotel`] to
//! find and start the OTLP collector, [`procfs`] to measure a process,
//! [`bpftool_lookup`] to read the shared map as the seed's scraper does,
//! [`tmux`] to drive xdptop's dashboard in a real terminal, and [`kernel`] to
//! find what the running kernel allows (BPF trampolines) and skip, loudly,
//! the tests that need what it lacks.

mod bpffs;
mod command;
pub mod frames;
pub mod kernel;
mod lab;
pub mod netns;
mod pattern;
mod poll;
pub mod procfs;
pub mod rotel;
mod scraper;
pub mod tmux;
mod traffic;

pub use bpffs::TempBpffs;
pub use command::output;
pub use lab::{Lab, LinkPair, ip};
pub use pattern::{DemoTalker, Phase, demo_phases, demo_talkers, play, play_steady};
pub use poll::poll;
pub use scraper::bpftool_lookup;
pub use traffic::{Proto, Traffic, frame_len, send};

/// The root of the workspace xdp-lab is part of (the crates live one level
/// below it): where `.venv`, `scripts/` and `compose/` are.
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xdp-lab is inside the workspace")
        .to_path_buf()
}
