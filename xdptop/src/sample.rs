//! The `Sample`: the one source of truth the TUI, `--json` and OTLP consume,
//! and the pure rate maths that produce it from cumulative kernel counters.

use std::sync::Arc;

use serde::Serialize;

/// How xdptop sees an interface's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// xdptop's program, attached in driver (native) mode.
    Native,
    /// xdptop's program, attached in generic (skb) mode.
    Skb,
    /// Another loader's program is attached; xdptop reads the shared
    /// `xdp_stats_map` and nothing else.
    ReadOnly,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Native => "native",
            Mode::Skb => "skb",
            Mode::ReadOnly => "read-only",
        }
    }
}

/// Whether the last read of an interface's counters worked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Health {
    Ok,
    /// The counters could not be read (interface gone, program replaced,
    /// map removed); the sample repeats the last known totals with zero rates.
    Lost {
        reason: String,
    },
    /// Nothing xdptop can read counts this interface's traffic (another
    /// loader's program that does not update the shared map, and no verdict
    /// observer): the reason says why. Like `Lost`, the sample repeats the
    /// last known totals with zero rates; it is never shown as healthy.
    NotObservable {
        reason: String,
    },
}

/// A source's error that means "not observable" rather than "lost": the
/// sampler turns it into [`Health::NotObservable`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotObservable(pub String);

/// xdptop's breakdown of an interface's traffic, summed over CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Detail {
    /// Packets by network protocol, indexed as `xdp_ebpf::l3`.
    pub l3: [u64; xdp_ebpf::l3::COUNT],
    /// IP packets by transport protocol, indexed as `xdp_ebpf::l4`.
    pub l4: [u64; xdp_ebpf::l4::COUNT],
    /// Packets by frame size, bucketed as `xdp_ebpf::SIZE_BUCKET_BOUNDS`.
    pub size_hist: [u64; xdp_ebpf::SIZE_BUCKETS],
    /// Packets counted on each possible CPU.
    pub per_cpu_packets: Vec<u64>,
}

/// One reading of an interface's cumulative counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reading {
    pub packets: u64,
    pub bytes: u64,
    /// Identity of the counter object (e.g. the kernel map id). When it
    /// changes, the counters restarted elsewhere and the rate re-baselines.
    pub epoch: u64,
    pub detail: Option<Detail>,
    /// Packets and bytes by the verdict of the interface's XDP program, from
    /// xdptop's fexit observer, cumulative since it attached; `None` where it
    /// cannot observe the program.
    pub actions: Option<ActionTotals>,
    /// The kernel's run-time statistics of the interface's XDP program
    /// (while `BPF_ENABLE_STATS` is on).
    pub run: Option<RunStats>,
}

/// A program's cumulative run time and run count, as the kernel reports
/// them with `BPF_ENABLE_STATS` on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    pub prog_id: u32,
    pub run_time_ns: u64,
    pub run_cnt: u64,
}

impl RunStats {
    /// Nanoseconds per run between two readings of the same program, when
    /// it ran in between.
    pub fn ns_per_run(prev: &RunStats, cur: &RunStats) -> Option<f64> {
        if prev.prog_id != cur.prog_id {
            return None;
        }
        let runs = cur.run_cnt.checked_sub(prev.run_cnt).filter(|&n| n > 0)?;
        let ns = cur.run_time_ns.checked_sub(prev.run_time_ns)?;
        Some(ns as f64 / runs as f64)
    }

    /// The share of one CPU the program ran between two readings `period_s`
    /// apart, in percent (bpftop's "Total CPU %"); 0 when it did not run.
    pub fn cpu_percent(prev: &RunStats, cur: &RunStats, period_s: f64) -> Option<f64> {
        if prev.prog_id != cur.prog_id || period_s <= 0.0 {
            return None;
        }
        let ns = cur.run_time_ns.checked_sub(prev.run_time_ns)?;
        Some(ns as f64 / (period_s * 1e9) * 100.0)
    }
}

/// Cumulative packets and bytes per XDP action, indexed as
/// [`xdp_ebpf::action`].
pub type ActionTotals = [Counts; xdp_ebpf::action::COUNT];

/// A packet and a byte counter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub packets: u64,
    pub bytes: u64,
}

/// One verdict in a sample: cumulative counts and rates over the period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct ActionStats {
    pub packets: u64,
    pub bytes: u64,
    /// Packets per second over the period.
    pub pps: f64,
    /// Bits per second over the period.
    pub bps: f64,
}

/// The JSON `actions` object: one entry per XDP verdict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Actions {
    pub pass: ActionStats,
    pub drop: ActionStats,
    pub tx: ActionStats,
    pub redirect: ActionStats,
    pub aborted: ActionStats,
}

impl Actions {
    /// The entry for `xdp_ebpf::action` index `i`.
    pub fn get(&self, i: usize) -> Option<&ActionStats> {
        use xdp_ebpf::action as a;
        Some(match i {
            a::ABORTED => &self.aborted,
            a::DROP => &self.drop,
            a::PASS => &self.pass,
            a::TX => &self.tx,
            a::REDIRECT => &self.redirect,
            _ => return None,
        })
    }

    fn get_mut(&mut self, i: usize) -> Option<&mut ActionStats> {
        use xdp_ebpf::action as a;
        Some(match i {
            a::ABORTED => &mut self.aborted,
            a::DROP => &mut self.drop,
            a::PASS => &mut self.pass,
            a::TX => &mut self.tx,
            a::REDIRECT => &mut self.redirect,
            _ => return None,
        })
    }

    /// Cumulative `cur`, with rates over `period_s` from `prev` when there is
    /// a valid previous reading (else zero rates: a baseline, not a spike).
    pub fn from_totals(cur: &ActionTotals, prev: Option<&ActionTotals>, period_s: f64) -> Self {
        let mut out = Actions::default();
        for (i, c) in cur.iter().enumerate() {
            let Some(slot) = out.get_mut(i) else { continue };
            slot.packets = c.packets;
            slot.bytes = c.bytes;
            let delta = prev.and_then(|p| {
                let p = p.get(i)?;
                Some((
                    c.packets.checked_sub(p.packets)?,
                    c.bytes.checked_sub(p.bytes)?,
                ))
            });
            if let Some((dp, db)) = delta
                && period_s > 0.0
            {
                slot.pps = dp as f64 / period_s;
                slot.bps = db as f64 * 8.0 / period_s;
            }
        }
        out
    }
}

/// One reading of an interface's talker tables: every entry's cumulative
/// counters (see `talkers.rs`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TalkerReading {
    /// Identity of the tables (the sources table's map id): counts in
    /// another table are not comparable.
    pub epoch: u64,
    /// Every place a source has counts in (see [`crate::talkers::SourceAt`]).
    pub sources: Vec<(crate::talkers::SourceAt, xdp_ebpf::Counter)>,
    pub services: Vec<(xdp_ebpf::ServiceKey, xdp_ebpf::Counter)>,
    /// The sources tables' fill.
    pub table: crate::talkers::Table,
}

/// One interface at one sampling instant. Rates cover the period since the
/// previous sample of the same interface.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sample {
    /// Wall-clock time of the read, nanoseconds since the Unix epoch.
    pub time_unix_nano: u64,
    pub interface: Arc<str>,
    pub mode: Mode,
    /// Cumulative kernel counters.
    pub packets: u64,
    pub bytes: u64,
    /// Packets per second over the last period.
    pub pps: f64,
    /// Bits per second over the last period.
    pub bps: f64,
    /// Length of the period the rates cover, in seconds (0 for the first).
    pub period_s: f64,
    /// The counters restarted (went backwards or were replaced) and this
    /// sample starts a new baseline: its rates are zero, not a spike.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rebaselined: bool,
    pub health: Health,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<Detail>,
    /// With `--talkers N`: the N heaviest sources and services (fields
    /// `talkers`, `talkers_other`, `services`, `services_other`,
    /// `talkers_table` of the JSON line).
    #[serde(flatten)]
    pub talkers: Option<crate::talkers::Talkers>,
    /// Per-verdict counts and rates (see [`Reading::actions`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actions: Option<Actions>,
    /// The interface's XDP program's mean run time per packet over the
    /// period (ns), from the kernel's BPF statistics; `None` when unknown
    /// (no CAP_SYS_ADMIN to enable them, no packet in the period).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_ns_per_packet: Option<f64>,
    /// The share of one CPU that program ran over the period, in percent
    /// (200 = two whole CPUs); `None` when unknown (no CAP_SYS_ADMIN, the
    /// first sample, the program changed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_cpu_percent: Option<f64>,
    /// When the cumulative series these counters belong to began: the
    /// interface's first sample, moved to a later sample's time when the
    /// counters restarted (re-baselined). OTLP's start time.
    #[serde(skip)]
    pub start_time_unix_nano: u64,
    /// The counters' increase since the previous sample of this interface;
    /// `None` when there is no valid previous reading (the first sample, a
    /// lost one, the first after a loss, a restart). Session totals add
    /// these up instead of re-detecting restarts.
    #[serde(skip)]
    pub delta: Option<Delta>,
}

/// What one period added to an interface's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delta {
    pub packets: u64,
    pub bytes: u64,
    /// `None` when either reading lacks a breakdown or its CPU count changed.
    pub detail: Option<Detail>,
}

impl Delta {
    /// `cur - prev`, or `None` if a packet or byte counter went backwards.
    pub fn between(prev: &Reading, cur: &Reading) -> Option<Self> {
        Some(Self {
            packets: cur.packets.checked_sub(prev.packets)?,
            bytes: cur.bytes.checked_sub(prev.bytes)?,
            detail: prev
                .detail
                .as_ref()
                .zip(cur.detail.as_ref())
                .and_then(|(p, c)| Detail::delta(p, c)),
        })
    }
}

impl Detail {
    /// `cur - prev` element-wise, or `None` if any counter went backwards or
    /// the CPU count changed (a new map: re-baseline).
    pub fn delta(prev: &Detail, cur: &Detail) -> Option<Detail> {
        fn sub<const N: usize>(a: &[u64; N], b: &[u64; N]) -> Option<[u64; N]> {
            let mut out = [0; N];
            for (o, (x, y)) in out.iter_mut().zip(b.iter().zip(a)) {
                *o = x.checked_sub(*y)?;
            }
            Some(out)
        }
        if prev.per_cpu_packets.len() != cur.per_cpu_packets.len() {
            return None;
        }
        let per_cpu_packets = prev
            .per_cpu_packets
            .iter()
            .zip(&cur.per_cpu_packets)
            .map(|(p, c)| c.checked_sub(*p))
            .collect::<Option<Vec<_>>>()?;
        Some(Detail {
            l3: sub(&prev.l3, &cur.l3)?,
            l4: sub(&prev.l4, &cur.l4)?,
            size_hist: sub(&prev.size_hist, &cur.size_hist)?,
            per_cpu_packets,
        })
    }

    /// Adds `delta` in, saturating; a change in the CPU count keeps what was
    /// counted per CPU so far, resized.
    pub fn add(&mut self, delta: &Detail) {
        fn add(a: &mut [u64], b: &[u64]) {
            for (x, y) in a.iter_mut().zip(b) {
                *x = x.saturating_add(*y);
            }
        }
        add(&mut self.l3, &delta.l3);
        add(&mut self.l4, &delta.l4);
        add(&mut self.size_hist, &delta.size_hist);
        if self.per_cpu_packets.len() != delta.per_cpu_packets.len() {
            self.per_cpu_packets.resize(delta.per_cpu_packets.len(), 0);
        }
        add(&mut self.per_cpu_packets, &delta.per_cpu_packets);
    }
}

/// Rates over one period.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rates {
    pub pps: f64,
    pub bps: f64,
    pub period_s: f64,
    pub rebaselined: bool,
}

/// `delta / seconds`, or `None` when the counter went backwards or no time
/// passed. Never negative.
pub fn per_second(prev: u64, cur: u64, period_ns: u64) -> Option<f64> {
    let delta = cur.checked_sub(prev)?;
    if period_ns == 0 {
        return None;
    }
    Some(delta as f64 * 1e9 / period_ns as f64)
}

/// Turns successive cumulative readings of one interface into rates.
#[derive(Clone, Debug, Default)]
pub struct RateTracker {
    /// (monotonic ns, packets, bytes, epoch) of the last baseline.
    last: Option<(u64, u64, u64, u64)>,
}

impl RateTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds a reading taken at `mono_ns` (a monotonic clock).
    ///
    /// The first reading, a changed epoch and any counter that went backwards
    /// start a new baseline with zero rates. A reading at the same instant
    /// as the previous one yields zero rates and keeps the baseline.
    pub fn update(&mut self, mono_ns: u64, packets: u64, bytes: u64, epoch: u64) -> Rates {
        let Some((t0, p0, b0, e0)) = self.last else {
            self.last = Some((mono_ns, packets, bytes, epoch));
            return Rates::default();
        };
        let period_ns = mono_ns.saturating_sub(t0);
        if period_ns == 0 {
            return Rates::default();
        }
        let rates = if e0 == epoch {
            per_second(p0, packets, period_ns).zip(per_second(b0, bytes, period_ns))
        } else {
            None
        };
        self.last = Some((mono_ns, packets, bytes, epoch));
        let period_s = period_ns as f64 / 1e9;
        match rates {
            Some((pps, byte_rate)) => Rates {
                pps,
                bps: byte_rate * 8.0,
                period_s,
                rebaselined: false,
            },
            None => Rates {
                period_s,
                rebaselined: true,
                ..Rates::default()
            },
        }
    }

    /// Forgets the baseline: the next reading starts afresh.
    pub fn reset(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn actions_carry_totals_and_rates_and_never_a_negative_rate() {
        let c = |packets, bytes| Counts { packets, bytes };
        let mut prev = ActionTotals::default();
        prev[xdp_ebpf::action::PASS] = c(100, 10_000);
        prev[xdp_ebpf::action::DROP] = c(50, 20_000);
        let mut cur = prev;
        cur[xdp_ebpf::action::PASS] = c(300, 30_000);
        cur[xdp_ebpf::action::DROP] = c(40, 16_000);
        let a = Actions::from_totals(&cur, Some(&prev), 2.0);
        assert_eq!(
            a.pass,
            ActionStats {
                packets: 300,
                bytes: 30_000,
                pps: 100.0,
                bps: 80_000.0
            }
        );
        assert_eq!((a.drop.packets, a.drop.pps, a.drop.bps), (40, 0.0, 0.0));
        let first = Actions::from_totals(&cur, None, 0.0);
        assert_eq!((first.pass.packets, first.pass.pps), (300, 0.0));
        let json = serde_json::to_value(a).expect("json");
        let keys: Vec<&str> = json
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.len(), 5);
        for name in xdp_ebpf::action::NAMES {
            assert!(json[name]["packets"].is_u64(), "{name}: {json}");
        }
    }

    #[test]
    fn run_time_per_packet_needs_runs_of_the_same_program() {
        let r = |prog_id, run_time_ns, run_cnt| RunStats {
            prog_id,
            run_time_ns,
            run_cnt,
        };
        assert_eq!(
            RunStats::ns_per_run(&r(1, 100, 10), &r(1, 600, 20)),
            Some(50.0)
        );
        assert_eq!(RunStats::ns_per_run(&r(1, 100, 10), &r(1, 100, 10)), None);
        assert_eq!(RunStats::ns_per_run(&r(1, 100, 10), &r(2, 600, 20)), None);
        assert_eq!(RunStats::ns_per_run(&r(1, 100, 10), &r(1, 50, 20)), None);
    }

    #[test]
    fn cpu_share_is_run_time_over_the_period() {
        let r = |prog_id, run_time_ns| RunStats {
            prog_id,
            run_time_ns,
            run_cnt: 0,
        };
        // 5 ms of run time in 0.5 s: 1 % of a CPU; idle: 0 %, not unknown.
        let pct = RunStats::cpu_percent(&r(1, 1_000), &r(1, 5_001_000), 0.5);
        assert!((pct.expect("known") - 1.0).abs() < 1e-9, "{pct:?}");
        assert_eq!(RunStats::cpu_percent(&r(1, 7), &r(1, 7), 1.0), Some(0.0));
        assert_eq!(RunStats::cpu_percent(&r(1, 7), &r(2, 9), 1.0), None);
        assert_eq!(RunStats::cpu_percent(&r(1, 9), &r(1, 7), 1.0), None);
        assert_eq!(RunStats::cpu_percent(&r(1, 7), &r(1, 9), 0.0), None);
    }

    #[test]
    fn first_reading_is_a_baseline() {
        let mut t = RateTracker::new();
        assert_eq!(t.update(5 * SEC, 100, 1000, 1), Rates::default());
    }

    #[test]
    fn steady_traffic() {
        let mut t = RateTracker::new();
        t.update(0, 100, 1_000, 1);
        let r = t.update(2 * SEC, 300, 3_000, 1);
        assert_eq!(r.pps, 100.0);
        assert_eq!(r.bps, 8_000.0);
        assert_eq!(r.period_s, 2.0);
        assert!(!r.rebaselined);
    }

    #[test]
    fn sub_second_period() {
        let mut t = RateTracker::new();
        t.update(0, 0, 0, 1);
        let r = t.update(SEC / 4, 25, 2_500, 1);
        assert_eq!(r.pps, 100.0);
        assert_eq!(r.bps, 80_000.0);
    }

    #[test]
    fn zero_period_keeps_baseline() {
        let mut t = RateTracker::new();
        t.update(SEC, 10, 10, 1);
        assert_eq!(t.update(SEC, 50, 50, 1), Rates::default());
        let r = t.update(2 * SEC, 20, 20, 1);
        assert_eq!(r.pps, 10.0);
    }

    #[test]
    fn counter_going_backwards_rebaselines() {
        let mut t = RateTracker::new();
        t.update(0, 1_000, 100_000, 1);
        let r = t.update(SEC, 5, 500, 1);
        assert!(r.rebaselined);
        assert_eq!((r.pps, r.bps), (0.0, 0.0));
        let r = t.update(2 * SEC, 15, 1_500, 1);
        assert_eq!((r.pps, r.bps), (10.0, 8_000.0));
    }

    #[test]
    fn only_bytes_going_backwards_rebaselines_too() {
        let mut t = RateTracker::new();
        t.update(0, 10, 1_000, 1);
        let r = t.update(SEC, 20, 10, 1);
        assert!(r.rebaselined);
        assert_eq!(r.pps, 0.0);
    }

    #[test]
    fn new_epoch_rebaselines_even_if_larger() {
        // Another loader's map with a larger count is not a spike.
        let mut t = RateTracker::new();
        t.update(0, 10, 100, 1);
        let r = t.update(SEC, 10_000_000, 1_000_000_000, 2);
        assert!(r.rebaselined);
        assert_eq!(r.pps, 0.0);
        let r = t.update(2 * SEC, 10_000_010, 1_000_000_100, 2);
        assert_eq!(r.pps, 10.0);
    }

    #[test]
    fn clock_going_backwards_is_a_zero_period() {
        let mut t = RateTracker::new();
        t.update(5 * SEC, 0, 0, 1);
        assert_eq!(t.update(4 * SEC, 10, 10, 1), Rates::default());
    }

    #[test]
    fn reset_forgets_the_baseline() {
        let mut t = RateTracker::new();
        t.update(0, 0, 0, 1);
        t.reset();
        assert_eq!(t.update(SEC, 1_000, 1_000, 1), Rates::default());
    }

    proptest! {
        #[test]
        fn rates_are_never_negative_nor_above_the_delta(
            readings in proptest::collection::vec((0u64..10 * SEC, any::<u64>(), any::<u64>(), 0u64..3), 1..50)
        ) {
            let mut t = RateTracker::new();
            let mut now = 0u64;
            let mut last: Option<(u64, u64)> = None;
            for (dt, p, b, e) in readings {
                now = now.saturating_add(dt);
                let r = t.update(now, p, b, e);
                prop_assert!(r.pps >= 0.0 && r.bps >= 0.0);
                prop_assert!(r.pps.is_finite() && r.bps.is_finite());
                if r.rebaselined {
                    prop_assert_eq!((r.pps, r.bps), (0.0, 0.0));
                }
                if let Some((lp, _)) = last {
                    if r.period_s > 0.0 && !r.rebaselined {
                        // The rate times the period gives back the delta.
                        let delta = (r.pps * r.period_s).round();
                        let want = (p - lp) as f64;
                        prop_assert!((delta - want).abs() <= want * 1e-9 + 1.0);
                    }
                }
                if dt > 0 || last.is_none() {
                    last = Some((p, b));
                }
            }
        }
    }
}
