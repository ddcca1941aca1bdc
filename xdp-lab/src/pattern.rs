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
