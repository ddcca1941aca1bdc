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
