//! Sampling cost of top talkers, for `cargo xtask bench`: the real talker
//! tables (xdptop's object, loaded and pinned under PIN_DIR, not attached)
//! filled with 1k, 10k and 100k sources and as many services (slots of the
//! services array with packets), read as the sampler reads them
//! (`TalkerTables::read`: the sources array's slots in use and the services
//! array through their mappings, the LRU table batched) and ranked
//! (`TalkerTracker::update`). The sources array has 262144 slots, so that
//! 100k sources fill less than half of it and none is freed as idle (they
//! get no packets here; in a real table, busy sources are never idle).
//!
//! Usage: `talkers_bench PIN_DIR` (a bpffs directory; needs root).
//! Prints `talkers ENTRIES SERVICES READ_MS RANK_MS MAX_TOTAL_MS` and
//! `services SERVICES READ_MS` (the services array alone) lines and a last
//! `rss PEAK_KIB` line.

use std::{net::Ipv4Addr, time::Instant};

use anyhow::Context as _;
use aya::{EbpfLoader, maps::Array};
use xdp_ebpf::{Counter, SourceSlot};
use xdptop::{
    bpf::{Pins, TalkerTables},
    talkers::TalkerTracker,
};

const IFACE: &str = "bench";
const ROUNDS: usize = 15;
/// Slots of the sources array: more than twice the largest fill.
const SLOTS: u32 = 262_144;

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .context("usage: talkers_bench PIN_DIR")?;
    let pins = Pins::new(&dir);
    pins.create_iface_dir(IFACE)?;
    let mut ebpf = EbpfLoader::with_btf(None)
        .map_pin_path(xdp_ebpf::CONFIG_MAP, pins.config(IFACE))
        .map_pin_path(xdp_ebpf::TALKERS_MAP, pins.talkers(IFACE))
        .map_pin_path(xdp_ebpf::SOURCES_MAP, pins.sources(IFACE))
        .map_pin_path(xdp_ebpf::SOURCES_USED_MAP, pins.sources_used(IFACE))
        .map_pin_path(xdp_ebpf::SERVICES_MAP, pins.services(IFACE))
        .map_max_entries(xdp_ebpf::SOURCES_MAP, SLOTS)
        .map_max_entries(xdp_ebpf::SOURCES_USED_MAP, SLOTS / 64)
        .load(xdp_ebpf::xdptop_object())
        .context("loading xdptop's object")?;
    let mut filled = 0u32;
    let mut filled_services = 0u32;
    for n in [1_000u32, 10_000, 100_000] {
        {
            // Slots as the program claims them: the key word, then the bit.
            let mut sources: Array<_, SourceSlot> =
                Array::try_from(ebpf.map_mut(xdp_ebpf::SOURCES_MAP).context("sources")?)?;
            for i in filled..n {
                let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + i);
                let raw = u32::from_ne_bytes(ip.octets());
                let slot = SourceSlot {
                    key: (u64::from(raw) << 32) | xdp_ebpf::source::V4,
                    packets: u64::from(i) + 1,
                    bytes: 64 * (u64::from(i) + 1),
                    addr: [0; 16],
                };
                sources.set(i, slot, 0)?;
            }
            let mut used: Array<_, u64> = Array::try_from(
                ebpf.map_mut(xdp_ebpf::SOURCES_USED_MAP)
                    .context("sources_used")?,
            )?;
            for word in filled / 64..n.div_ceil(64) {
                let bits = (word * 64..(word + 1) * 64)
                    .filter(|&i| i < n)
                    .fold(0u64, |b, i| b | 1 << (i % 64));
                used.set(word, bits, 0)?;
            }
        }
        filled = n;
        // A flood with random ports (a port scan) fills service slots too.
        let want_services = n.min(xdp_ebpf::SERVICE_SLOTS);
        {
            let mut services: Array<_, Counter> =
                Array::try_from(ebpf.map_mut(xdp_ebpf::SERVICES_MAP).context("services")?)?;
            for slot in filled_services..want_services {
                let c = Counter {
                    packets: 1,
                    bytes: 64,
                };
                services.set(slot, c, 0)?;
            }
        }
        filled_services = want_services;

        let mut tables =
            TalkerTables::open(&pins, IFACE, true)?.context("the tables are pinned")?;
        let mut tracker = TalkerTracker::new(10);
        let interface = Counter {
            packets: u64::MAX / 4,
            bytes: u64::MAX / 4,
        };
        // The first read is the baseline, as in the sampler.
        tracker.update(tables.read()?, None, 1.0);
        let (mut read_ms, mut rank_ms, mut total_max) = (Vec::new(), Vec::new(), 0f64);
        for _ in 0..ROUNDS {
            let t0 = Instant::now();
            let reading = tables.read()?;
            let t1 = Instant::now();
            anyhow::ensure!(
                reading.sources.len() == n as usize,
                "read {} of {n}",
                reading.sources.len()
            );
            let talkers = tracker.update(reading, Some(interface), 1.0);
            let t2 = Instant::now();
            anyhow::ensure!(talkers.talkers.len() == 10);
            read_ms.push((t1 - t0).as_secs_f64() * 1e3);
            rank_ms.push((t2 - t1).as_secs_f64() * 1e3);
            total_max = total_max.max((t2 - t0).as_secs_f64() * 1e3);
        }
        println!(
            "talkers {n} {want_services} {:.3} {:.3} {total_max:.3}",
            median(&mut read_ms),
            median(&mut rank_ms)
        );
        let mut services_ms = Vec::new();
        let mut services = Vec::new();
        for _ in 0..ROUNDS {
            services.clear();
            let t0 = Instant::now();
            tables.read_services(&mut services)?;
            services_ms.push(t0.elapsed().as_secs_f64() * 1e3);
            anyhow::ensure!(services.len() == want_services as usize);
        }
        println!("services {want_services} {:.3}", median(&mut services_ms));
    }
    let status = std::fs::read_to_string("/proc/self/status")?;
    let peak = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .unwrap_or("0");
    println!("rss {peak}");
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
