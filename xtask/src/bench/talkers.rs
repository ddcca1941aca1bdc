//! Top talkers (issue 16): what a sample costs with 1k, 10k and 100k live
//! sources (the release-built `talkers_bench` reads and ranks the real,
//! pinned tables), and the tables' kernel memory at 2 and 64 CPUs, computed
//! by the formula `xdptop::bpf::talkers_kernel_memory` (which a lab test
//! checks against the kernel's own accounting).

use std::process::Command;

use anyhow::Context as _;
use xdp_lab::TempBpffs;

use super::{Table, support::Bins, verdict};

/// A sample's talkers work at 100k entries: at most this share of the
/// default 1 s interval.
const TARGET_MS_AT_100K: f64 = 100.0;
/// Kernel memory of the default tables at 64 CPUs.
const TARGET_MIB_AT_64: f64 = 32.0;

pub fn run(bins: &Bins) -> anyhow::Result<()> {
    let bpffs = TempBpffs::new("bench-talkers")?;
    let out = Command::new(&bins.talkers_bench)
        .arg(bpffs.path())
        .output()
        .with_context(|| format!("running {}", bins.talkers_bench.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "talkers_bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout)?;
    let mut t = Table::new(
        "Top talkers: one sample's read (sources: the mmapped sources array's slots in use, \
         found by its bitmap, and the LRU table by BPF_MAP_LOOKUP_BATCH; services: the \
         mmapped array, all 131328 slots scanned) and ranking (top 10), release build, \
         median of 15 (max in brackets); a sources array of 262144 slots, so that none \
         is freed as idle",
        &[
            "sources",
            "services",
            "read",
            "rank",
            "total (max)",
            "target",
            "verdict",
        ],
    );
    let mut peak = String::new();
    let mut services_alone = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["talkers", n, s, read, rank, max] => {
                let (read, rank, max): (f64, f64, f64) =
                    (read.parse()?, rank.parse()?, max.parse()?);
                let (target, met) = if *n == "100000" {
                    (
                        format!("<= {TARGET_MS_AT_100K} ms"),
                        verdict(read + rank <= TARGET_MS_AT_100K),
                    )
                } else {
                    (String::new(), String::new())
                };
                t.row(vec![
                    (*n).to_owned(),
                    (*s).to_owned(),
                    format!("{read:.2} ms"),
                    format!("{rank:.2} ms"),
                    format!("{:.2} ms ({max:.1})", read + rank),
                    target,
                    met,
                ]);
            }
            ["services", s, read] => services_alone.push(format!("{s}: {read} ms")),
            ["rss", kib] => peak = format!("{:.1} MB", kib.parse::<f64>()? / 1024.0),
            _ => anyhow::bail!("odd talkers_bench line: {line}"),
        }
    }
    t.print();
    println!(
        "the services array's scan alone (services with packets: median): {}",
        services_alone.join(", ")
    );
    println!("talkers_bench peak RSS with 100k sources read: {peak}");
    println!();

    let mut m = Table::new(
        "Top talkers: kernel memory of the tables (sources N, services a fixed 2 MiB array), \
         computed",
        &["--talkers-table", "2 CPUs", "64 CPUs", "target", "verdict"],
    );
    for n in [16_384u32, xdp_ebpf::TALKERS_MAX_ENTRIES, 262_144] {
        let mib = |cpus| xdptop::bpf::talkers_kernel_memory(n, cpus) as f64 / (1 << 20) as f64;
        let (target, met) = if n == xdp_ebpf::TALKERS_MAX_ENTRIES {
            (
                format!("<= {TARGET_MIB_AT_64} MiB at 64"),
                verdict(mib(64) <= TARGET_MIB_AT_64),
            )
        } else {
            (String::new(), String::new())
        };
        m.row(vec![
            n.to_string(),
            format!("{:.1} MiB", mib(2)),
            format!("{:.1} MiB", mib(64)),
            target,
            met,
        ]);
    }
    m.print();
    Ok(())
}
