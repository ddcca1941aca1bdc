//! A dashboard with known numbers: four interfaces driven through the real
//! `Sampler` by scripted `FakeSource`s, one second apart; eth0 also has
//! talker tables (seven sources, one of them IPv6, and six services).

use std::{collections::VecDeque, net::IpAddr, time::Duration};

use xdp_ebpf::{Counter, ServiceKey, TalkerKey};

use crate::{
    sample::{Detail, Mode, Reading, TalkerReading},
    sampler::{CounterSource, FakeSource, Sampler, Tick},
    status::{ExportState, ExportStatus},
    talkers::{SourceAt, Table},
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

/// How many talkers the fixture's samples list.
pub const TOP: usize = 5;

/// eth0's per-tick packets/s.
fn eth0_pps(i: u64) -> u64 {
    1_000_000 + 30_000 * (i % 12)
}

/// Sources: address, percent of eth0's packets, bytes a packet, packets
/// counted before the first tick. 3% of the packets have no source (ARP).
const SOURCES: [(&str, u64, u64, u64); 7] = [
    ("198.18.0.10", 35, 1400, 0),
    ("198.18.0.11", 25, 400, 0),
    ("2001:db8:18::2", 15, 1200, 0),
    ("198.18.0.12", 10, 600, 90_000_000),
    ("198.18.7.200", 5, 800, 0),
    ("198.18.3.3", 4, 500, 0),
    ("198.18.9.1", 3, 1000, 0),
];

/// Services: protocol, port, percent of packets, bytes a packet.
const SERVICES: [(u8, u16, u64, u64); 6] = [
    (17, 53, 50, 1000),
    (6, 443, 30, 1200),
    (6, 80, 10, 500),
    (1, 0, 5, 100),
    (17, 123, 3, 200),
    (17, 5353, 2, 300),
];

/// eth0's tables at each tick, in step with its counters.
fn tables() -> VecDeque<TalkerReading> {
    let mut sent = 0u64;
    (0..TICKS)
        .map(|i| {
            if i > 0 {
                sent += eth0_pps(i);
            }
            let sources = SOURCES
                .iter()
                .zip(0..)
                .map(|(&(a, pct, size, base), slot)| {
                    let addr: IpAddr = a.parse().expect("an address");
                    let packets = base + sent / 100 * pct;
                    (
                        SourceAt {
                            key: TalkerKey::from(addr),
                            slot: Some(slot),
                        },
                        Counter {
                            packets,
                            bytes: packets * size,
                        },
                    )
                })
                .collect();
            let services = SERVICES
                .iter()
                .map(|&(protocol, port, pct, size)| {
                    let packets = sent / 100 * pct;
                    (
                        ServiceKey {
                            port,
                            protocol,
                            pad: 0,
                        },
                        Counter {
                            packets,
                            bytes: packets * size,
                        },
                    )
                })
                .collect();
            TalkerReading {
                epoch: 1,
                sources,
                services,
                table: Table {
                    entries: SOURCES.len(),
                    capacity: 131_072,
                    ..Table::default()
                },
            }
        })
        .collect()
}

/// A scripted source with talker tables.
struct Talking {
    inner: FakeSource,
    tables: VecDeque<TalkerReading>,
}

impl CounterSource for Talking {
    fn interface(&self) -> &str {
        self.inner.interface()
    }
    fn mode(&self) -> Mode {
        self.inner.mode()
    }
    fn read(&mut self) -> anyhow::Result<Reading> {
        self.inner.read()
    }
    fn read_talkers(&mut self) -> Option<anyhow::Result<TalkerReading>> {
        self.tables.pop_front().map(Ok)
    }
}

pub fn ticks() -> Vec<Tick> {
    let mut lost = readings(500_000, 300, true, |_| 2_000);
    for r in lost.iter_mut().skip(TICKS as usize - 3) {
        *r = Err(anyhow::anyhow!("interface eth1 is gone (ifindex 7)"));
    }
    let sources: Vec<Box<dyn CounterSource>> = vec![
        Box::new(Talking {
            inner: FakeSource {
                name: "eth0".into(),
                mode: Mode::Native,
                // A slow swell to 1.33 Mpps of 1000-byte frames.
                readings: readings(7_000_000_000, 1_000, true, eth0_pps),
            },
            tables: tables(),
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
    let mut sampler = Sampler::new(sources).with_talkers(TOP);
    (0..TICKS)
        .map(|i| sampler.sample(1_700_000_000 * SEC + i * SEC, i * SEC))
        .collect()
}

/// The app after all ticks, with a healthy exporter.
pub fn app() -> App {
    let mut app = App::new("lab-1", Duration::from_secs(1), &names()).with_talkers(Some(TOP));
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
