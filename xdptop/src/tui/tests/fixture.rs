//! A dashboard with known numbers: four interfaces driven through the real
//! `Sampler` by scripted `FakeSource`s, one second apart.

use std::{collections::VecDeque, time::Duration};

use crate::{
    sample::{Detail, Mode, Reading},
    sampler::{CounterSource, FakeSource, Sampler, Tick},
    status::{ExportState, ExportStatus},
    tui::App,
};

pub const SEC: u64 = 1_000_000_000;
pub const TICKS: u64 = 40;

pub fn names() -> Vec<String> {
    ["eth0", "veth-lab0", "wlan0", "eth1"]
        .map(String::from)
        .to_vec()
}

/// Breakdown of `p` packets (a multiple of 100, so every share is exact).
fn detail(p: u64) -> Detail {
    let pct = |n: u64| p / 100 * n;
    Detail {
        l3: [pct(90), pct(9), pct(1), 0],
        l4: [pct(70), pct(20), pct(8), pct(1)],
        size_hist: [pct(20), pct(5), pct(5), pct(10), pct(10), pct(50), 0],
        per_cpu_packets: vec![pct(40), pct(30), pct(20), pct(10), 0, 0],
    }
}

/// Cumulative readings for per-tick rates `pps(i)`, `size` bytes a packet.
fn readings(
    start: u64,
    size: u64,
    with_detail: bool,
    pps: impl Fn(u64) -> u64,
) -> VecDeque<anyhow::Result<Reading>> {
    let mut packets = start;
    (0..TICKS)
        .map(|i| {
            if i > 0 {
                packets += pps(i);
            }
            Ok(Reading {
                packets,
                bytes: packets * size,
                epoch: 1,
                detail: with_detail.then(|| detail(packets)),
                actions: None,
                run: None,
            })
        })
        .collect()
}

pub fn ticks() -> Vec<Tick> {
    let mut lost = readings(500_000, 300, true, |_| 2_000);
    for r in lost.iter_mut().skip(TICKS as usize - 3) {
        *r = Err(anyhow::anyhow!("interface eth1 is gone (ifindex 7)"));
    }
    let sources: Vec<Box<dyn CounterSource>> = vec![
        Box::new(FakeSource {
            name: "eth0".into(),
            mode: Mode::Native,
            // A slow swell to 1.33 Mpps of 1000-byte frames.
            readings: readings(7_000_000_000, 1_000, true, |i| {
                1_000_000 + 30_000 * (i % 12)
            }),
        }),
        Box::new(FakeSource {
            name: "veth-lab0".into(),
            mode: Mode::Skb,
            readings: readings(0, 200, true, |i| 900 + 100 * ((i * 7) % 5)),
        }),
        Box::new(FakeSource {
            name: "wlan0".into(),
            mode: Mode::ReadOnly,
            readings: readings(12_345, 500, false, |i| if i % 10 < 5 { 100 } else { 200 }),
        }),
        Box::new(FakeSource {
            name: "eth1".into(),
            mode: Mode::Native,
            readings: lost,
        }),
    ];
    let mut sampler = Sampler::new(sources);
    (0..TICKS)
        .map(|i| sampler.sample(1_700_000_000 * SEC + i * SEC, i * SEC))
        .collect()
}

/// The app after all ticks, with a healthy exporter.
pub fn app() -> App {
    let mut app = App::new("lab-1", Duration::from_secs(1), &names());
    for t in ticks() {
        app.on_tick(t);
    }
    app.on_export(ExportStatus {
        target: "otlp grpc http://localhost:4317".into(),
        state: ExportState::Ok,
        exported: 156,
        dropped: 0,
        last_error: None,
    });
    app
}
