//! A varying traffic pattern for the demo and the screenshots: ramps, bursts,
//! quiet spells, mixed sizes and protocols, so every chart has a shape.

use std::{
    fs::File,
    net::Ipv4Addr,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use crate::traffic::{Proto, Traffic, send};

/// One step of the pattern: what to send for how long.
#[derive(Clone, Debug)]
pub struct Phase {
    pub proto: Proto,
    pub rate_pps: u64,
    pub payloads: Vec<usize>,
    pub duration: Duration,
}

/// The demo's loop for link number `link` (links differ so rows differ).
pub fn demo_phases(link: usize) -> Vec<Phase> {
    let scale = 1 + link as u64;
    let mixed = vec![18, 64, 200, 512, 1000, 1400, 100, 40];
    let mut phases = Vec::new();
    // A ramp up...
    for step in 1..=5u64 {
        phases.push(Phase {
            proto: Proto::Udp,
            rate_pps: 800 * step * scale,
            payloads: mixed.clone(),
            duration: Duration::from_secs(2),
        });
    }
    // ...a burst of small packets...
    phases.push(Phase {
        proto: Proto::Udp,
        rate_pps: 12_000 * scale,
        payloads: vec![18],
        duration: Duration::from_secs(2),
    });
    // ...pings and connection attempts...
    phases.push(Phase {
        proto: Proto::Icmp,
        rate_pps: 300 * scale,
        payloads: vec![56, 1000],
        duration: Duration::from_secs(3),
    });
    phases.push(Phase {
        proto: Proto::TcpSyn,
        rate_pps: 100 * scale,
        payloads: vec![0],
        duration: Duration::from_secs(3),
    });
    // ...big frames, then a quiet spell.
    phases.push(Phase {
        proto: Proto::Udp,
        rate_pps: 2_500 * scale,
        payloads: vec![1458],
        duration: Duration::from_secs(4),
    });
    phases.push(Phase {
        proto: Proto::Udp,
        rate_pps: 50,
        payloads: vec![64],
        duration: Duration::from_secs(3),
    });
    phases
}

/// A steady sender of the demo from an extra address of a lab link, so the
/// talkers view has several sources and services to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DemoTalker {
    /// Last octet of the source address, in the link's /24 (198.18.i.host).
    pub host: u8,
    pub dst_port: u16,
    pub rate_pps: u64,
    pub payload: usize,
}

/// The demo's steady talkers of link number `link`: four sources of
/// different weights, ports and sizes (links differ so views differ).
pub fn demo_talkers(link: usize) -> Vec<DemoTalker> {
    let scale = 1 + link as u64;
    [
        (10, 53, 1_200, 80),
        (11, 443, 700, 1200),
        (23, 123, 300, 48),
        (42, 5353, 120, 400),
    ]
    .into_iter()
    .map(|(host, dst_port, rate, payload)| DemoTalker {
        host,
        dst_port,
        rate_pps: rate * scale,
        payload,
    })
    .collect()
}

/// Sends `talker`'s UDP from `src` to `dst` at its rate, from namespace
/// `netns`, until `stop` is set.
pub fn play_steady(
    netns: &File,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    talker: DemoTalker,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    const SLICE_MS: u64 = 250;
    while !stop.load(Ordering::Relaxed) {
        send(
            netns,
            &Traffic {
                proto: Proto::Udp,
                src,
                dst,
                dst_port: talker.dst_port,
                count: (talker.rate_pps * SLICE_MS / 1000).max(1),
                payloads: vec![talker.payload],
                rate_pps: Some(talker.rate_pps),
            },
        )?;
    }
    Ok(())
}

/// Plays `phases` in a loop from namespace `netns` until `stop` is set.
pub fn play(
    netns: &File,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    phases: &[Phase],
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    // Short slices so a stop request is honoured within a fraction of a second.
    const SLICE: Duration = Duration::from_millis(250);
    loop {
        for phase in phases {
            let slices = (phase.duration.as_millis() / SLICE.as_millis()).max(1);
            for _ in 0..slices {
                if stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                let count = (phase.rate_pps * SLICE.as_millis() as u64 / 1000).max(1);
                send(
                    netns,
                    &Traffic {
                        proto: phase.proto,
                        src,
                        dst,
                        dst_port: if phase.proto == Proto::TcpSyn { 80 } else { 9 },
                        count,
                        payloads: phase.payloads.clone(),
                        rate_pps: Some(phase.rate_pps),
                    },
                )?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_talkers_differ_in_weight_port_and_address() {
        let t = demo_talkers(0);
        let mut hosts: Vec<u8> = t.iter().map(|t| t.host).collect();
        hosts.dedup();
        assert_eq!(hosts.len(), 4);
        assert!(
            t.iter().all(|t| ![1, 2].contains(&t.host)),
            "not the link's own"
        );
        assert!(t.windows(2).all(|w| w[0].rate_pps > w[1].rate_pps));
        assert_eq!(demo_talkers(1)[0].rate_pps, 2 * t[0].rate_pps);
    }
}
