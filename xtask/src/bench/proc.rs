//! CPU time and memory of a running process: [`xdp_lab::procfs`], and how
//! the tables print a size.

pub use xdp_lab::procfs::{Cpu, cpu, status_kb, threads, threads_total};

pub fn mb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1024.0)
}
