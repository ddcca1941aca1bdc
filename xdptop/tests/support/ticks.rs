//! Ticks with known numbers, made by the real `Sampler` from `FakeSource`s.

use std::collections::VecDeque;

use xdptop::{
    sample::{Mode, Reading},
    sampler::{CounterSource, FakeSource, Sampler, Tick},
};

pub const SEC: u64 = 1_000_000_000;

pub fn reading(packets: u64, bytes: u64) -> anyhow::Result<Reading> {
    Ok(Reading {
        packets,
        bytes,
        epoch: 1,
        detail: None,
        actions: None,
        run: None,
    })
}

pub fn source(
    name: &str,
    mode: Mode,
    readings: Vec<anyhow::Result<Reading>>,
) -> Box<dyn CounterSource> {
    Box::new(FakeSource {
        name: name.into(),
        mode,
        readings: VecDeque::from(readings),
    })
}

/// Two ticks one second apart:
/// - `veth-a` (native): 1000 → 1500 packets, 64 000 → 96 000 bytes, so
///   500 pps and 256 000 bit/s, attached;
/// - `veth-b` (skb): 7 packets / 700 bytes, then its counters are lost, so
///   totals stay, rates are 0 and it is not attached.
pub fn two_interfaces() -> (Tick, Tick) {
    let mut sampler = Sampler::new(vec![
        source(
            "veth-a",
            Mode::Native,
            vec![reading(1000, 64_000), reading(1500, 96_000)],
        ),
        source(
            "veth-b",
            Mode::Skb,
            vec![reading(7, 700), Err(anyhow::anyhow!("map is gone"))],
        ),
    ]);
    let first = sampler.sample(1_700_000_000 * SEC, 0);
    let second = sampler.sample(1_700_000_001 * SEC, SEC);
    (first, second)
}

/// A reading whose program ran `runs` times in `run_ns` nanoseconds in all
/// (the kernel's BPF statistics), for the run-time gauge.
pub fn reading_with_run(
    packets: u64,
    bytes: u64,
    runs: u64,
    run_ns: u64,
) -> anyhow::Result<Reading> {
    let mut r = reading(packets, bytes)?;
    r.run = Some(xdptop::sample::RunStats {
        prog_id: 42,
        run_time_ns: run_ns,
        run_cnt: runs,
    });
    Ok(r)
}

/// The talkers of a fixture sample: three sources (one IPv6) and three
/// services, heaviest first, as the sampler ranks them.
pub fn fixture_talkers() -> xdptop::talkers::Talkers {
    use xdptop::talkers::{Other, Service, Table, Talker, Talkers};
    let talker = |ip: &str, pps: f64| Talker {
        source: ip.parse().expect("ip"),
        packets: pps as u64 * 4,
        bytes: pps as u64 * 400,
        pps,
        bps: pps * 800.0,
    };
    let service = |protocol: &str, port, pps: f64| Service {
        protocol: protocol.into(),
        port,
        packets: pps as u64 * 4,
        bytes: pps as u64 * 400,
        pps,
        bps: pps * 800.0,
    };
    Talkers {
        talkers: vec![
            talker("198.18.0.10", 250.0),
            talker("2001:2::10", 200.0),
            talker("198.18.0.12", 50.0),
        ],
        talkers_other: Other::default(),
        services: vec![
            service("udp", 53, 300.0),
            service("tcp", 443, 150.0),
            service("icmp", 0, 50.0),
        ],
        services_other: Other::default(),
        talkers_table: Table {
            entries: 3,
            capacity: 1024,
            ..Table::default()
        },
    }
}

/// Two ticks of `veth-t` (native), one second apart: 500 pps, the program
/// ran 500 times in 20 000 ns (40 ns per packet), and the second tick lists
/// [`fixture_talkers`].
pub fn talkers_and_run_time() -> (Tick, Tick) {
    let mut sampler = Sampler::new(vec![source(
        "veth-t",
        Mode::Native,
        vec![
            reading_with_run(1000, 100_000, 1000, 40_000),
            reading_with_run(1500, 150_000, 1500, 60_000),
        ],
    )]);
    let first = sampler.sample(1_700_000_000 * SEC, 0);
    let mut second = sampler.sample(1_700_000_001 * SEC, SEC);
    second.samples[0].talkers = Some(fixture_talkers());
    (first, second)
}
