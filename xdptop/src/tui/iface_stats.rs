//! What the dashboard knows about one interface, derived from its `Sample`s:
//! totals since the view was reset, peaks, and rate history. The kernel
//! counters are only ever read from samples, never changed.

use std::{collections::VecDeque, sync::Arc, time::Duration};

use super::talkers::TalkerHistory;
use crate::sample::{Actions, Detail, Health, Sample};

/// How far back the sparklines and charts can look.
const HISTORY_SPAN: Duration = Duration::from_secs(600);
const MIN_HISTORY: usize = 300;
/// Bounds memory at very short intervals (10 ms).
const MAX_HISTORY: usize = 60_000;

/// Samples kept per interface for `interval`: ten minutes' worth, at least
/// 300 and at most 60 000.
pub fn history_len(interval: Duration) -> usize {
    let per = interval.as_secs_f64().max(1e-3);
    let n = (HISTORY_SPAN.as_secs_f64() / per).ceil() as usize;
    n.clamp(MIN_HISTORY, MAX_HISTORY)
}

/// Ring buffer of rates, oldest first.
#[derive(Clone, Debug)]
pub struct History {
    cap: usize,
    pps: VecDeque<f64>,
    bps: VecDeque<f64>,
}

impl History {
    pub fn new(cap: usize) -> Self {
        let cap = cap.max(1);
        Self {
            cap,
            pps: VecDeque::with_capacity(cap.min(1024)),
            bps: VecDeque::with_capacity(cap.min(1024)),
        }
    }

    fn push(&mut self, pps: f64, bps: f64) {
        if self.pps.len() == self.cap {
            self.pps.pop_front();
            self.bps.pop_front();
        }
        self.pps.push_back(pps);
        self.bps.push_back(bps);
    }

    fn clear(&mut self) {
        self.pps.clear();
        self.bps.clear();
    }

    pub fn len(&self) -> usize {
        self.pps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pps.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Packets/s, oldest first.
    pub fn pps(&self) -> &VecDeque<f64> {
        &self.pps
    }

    /// Bits/s, oldest first.
    pub fn bps(&self) -> &VecDeque<f64> {
        &self.bps
    }
}

/// Packets/s per verdict (indexed as [`xdp_ebpf::action`]), oldest first,
/// for the verdict sparklines; empty until a sample has verdicts.
#[derive(Clone, Debug)]
pub struct VerdictHistory {
    cap: usize,
    pps: [VecDeque<f64>; xdp_ebpf::action::COUNT],
}

impl VerdictHistory {
    fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            pps: Default::default(),
        }
    }

    /// Zero rates for a lost sample (`None`) keep the time axis even.
    fn push(&mut self, actions: Option<&Actions>) {
        for (i, ring) in self.pps.iter_mut().enumerate() {
            if ring.len() == self.cap {
                ring.pop_front();
            }
            ring.push_back(
                actions
                    .and_then(|a| a.get(i))
                    .map_or(0.0, |x| finite(x.pps)),
            );
        }
    }

    fn clear(&mut self) {
        self.pps.iter_mut().for_each(VecDeque::clear);
    }

    /// Packets/s of verdict `i`, oldest first.
    pub fn pps(&self, i: usize) -> Option<&VecDeque<f64>> {
        self.pps.get(i)
    }
}

/// One interface as the view sees it.
#[derive(Clone, Debug)]
pub struct IfaceStats {
    pub name: Arc<str>,
    /// The latest sample, if any arrived yet.
    pub last: Option<Sample>,
    /// Packets and bytes since the view was reset (or since start).
    pub session_packets: u64,
    pub session_bytes: u64,
    /// Seconds of sampling the session totals cover.
    pub session_secs: f64,
    pub peak_pps: f64,
    pub peak_bps: f64,
    pub history: History,
    /// Breakdowns since the view was reset; `None` until a sample has them.
    pub session_detail: Option<Detail>,
    /// Per-verdict rates; `None` until a sample has verdicts.
    pub verdicts: Option<VerdictHistory>,
    /// Packets/s history of each listed talker (`--talkers`).
    pub talker_history: TalkerHistory,
}

impl IfaceStats {
    pub fn new(name: Arc<str>, history: usize) -> Self {
        Self {
            name,
            last: None,
            session_packets: 0,
            session_bytes: 0,
            session_secs: 0.0,
            peak_pps: 0.0,
            peak_bps: 0.0,
            history: History::new(history),
            session_detail: None,
            verdicts: None,
            talker_history: TalkerHistory::default(),
        }
    }

    /// Takes in the interface's sample of a new tick.
    ///
    /// Totals grow by the sample's delta, the counters' increase since the
    /// previous sample as the sampler measured it; a restart, a loss or the
    /// first sample has none and adds nothing (what happened meanwhile is
    /// unknown, and must not be a spike).
    pub fn update(&mut self, sample: Sample) {
        let lost = matches!(
            sample.health,
            Health::Lost { .. } | Health::NotObservable { .. }
        );
        if let Some(delta) = &sample.delta {
            self.session_packets = self.session_packets.saturating_add(delta.packets);
            self.session_bytes = self.session_bytes.saturating_add(delta.bytes);
            self.session_secs += finite(sample.period_s);
        }
        if let Some(cur) = &sample.detail {
            let acc = self.session_detail.get_or_insert_with(|| Detail {
                per_cpu_packets: vec![0; cur.per_cpu_packets.len()],
                ..Detail::default()
            });
            if let Some(d) = sample.delta.as_ref().and_then(|d| d.detail.as_ref()) {
                acc.add(d);
            }
        }
        // Rates are never negative nor NaN from the sampler; guard anyway so
        // one bad value cannot poison the peaks.
        let pps = finite(sample.pps);
        let bps = finite(sample.bps);
        self.peak_pps = self.peak_pps.max(pps);
        self.peak_bps = self.peak_bps.max(bps);
        // A baseline (first reading, or first after a loss) covers no period:
        // its zero rates are not a measurement, so keep them off the charts.
        // Lost samples do go in, as zeros, to keep the time axis even.
        if lost || sample.period_s > 0.0 {
            self.history.push(pps, bps);
            let cap = self.history.capacity();
            match (&sample.actions, &mut self.verdicts) {
                (Some(a), v) => v
                    .get_or_insert_with(|| VerdictHistory::new(cap))
                    .push(Some(a)),
                // Verdicts were seen before: a gap, as zeros.
                (None, Some(v)) => v.push(None),
                (None, None) => {}
            }
        }
        match &sample.talkers {
            Some(t) if sample.period_s > 0.0 => self.talker_history.update(t),
            Some(_) => {}
            None => self.talker_history.clear(),
        }
        self.last = Some(sample);
    }

    /// Clears totals, peaks, history and breakdowns; the next sample's
    /// increase over the latest one counts from zero.
    pub fn reset_view(&mut self) {
        self.session_packets = 0;
        self.session_bytes = 0;
        self.session_secs = 0.0;
        self.peak_pps = 0.0;
        self.peak_bps = 0.0;
        self.history.clear();
        if let Some(v) = &mut self.verdicts {
            v.clear();
        }
        self.talker_history.clear();
        self.session_detail = self.session_detail.as_ref().map(|d| Detail {
            per_cpu_packets: vec![0; d.per_cpu_packets.len()],
            ..Detail::default()
        });
    }

    /// Average frame size since the view was reset, in bytes.
    pub fn avg_packet_size(&self) -> Option<f64> {
        (self.session_packets > 0).then(|| self.session_bytes as f64 / self.session_packets as f64)
    }
}

fn finite(v: f64) -> f64 {
    if v.is_finite() && v > 0.0 { v } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        sample::{Mode, Reading},
        sampler::{FakeSource, Sampler},
    };

    fn sample(packets: u64, bytes: u64, pps: f64) -> Sample {
        Sample {
            time_unix_nano: 0,
            interface: Arc::from("eth0"),
            mode: Mode::Native,
            packets,
            bytes,
            pps,
            bps: pps * 8_000.0,
            period_s: 1.0,
            rebaselined: false,
            health: Health::Ok,
            detail: None,
            talkers: None,
            actions: None,
            run_ns_per_packet: None,
            run_cpu_percent: None,
            start_time_unix_nano: 0,
            delta: None,
        }
    }

    fn stats() -> IfaceStats {
        IfaceStats::new(Arc::from("eth0"), 4)
    }

    const SEC: u64 = 1_000_000_000;

    fn r(packets: u64, bytes: u64) -> anyhow::Result<Reading> {
        Ok(Reading {
            packets,
            bytes,
            epoch: 1,
            detail: None,
            actions: None,
            run: None,
        })
    }

    /// Samples one second apart of scripted readings, through the real
    /// sampler (which decides restarts and deltas); the first is its baseline.
    fn sampled(readings: Vec<anyhow::Result<Reading>>) -> Vec<Sample> {
        let n = readings.len() as u64;
        let mut sampler = Sampler::new(vec![Box::new(FakeSource {
            name: "eth0".into(),
            mode: Mode::Native,
            readings: readings.into(),
        })]);
        (0..n)
            .map(|i| sampler.sample(i * SEC, i * SEC).samples.remove(0))
            .collect()
    }

    /// `stats()` after taking in `samples`; the session packets after each.
    fn feed(s: &mut IfaceStats, samples: Vec<Sample>) -> Vec<u64> {
        samples
            .into_iter()
            .map(|x| {
                s.update(x);
                s.session_packets
            })
            .collect()
    }

    #[test]
    fn totals_count_from_the_first_sample_not_from_boot() {
        let mut s = stats();
        let after = feed(
            &mut s,
            sampled(vec![r(1_000_000, 9_000_000), r(1_000_100, 9_010_000)]),
        );
        assert_eq!(after, [0, 100]);
        assert_eq!(s.session_bytes, 10_000);
        assert_eq!(s.avg_packet_size(), Some(100.0));
        assert_eq!(s.session_secs, 1.0);
    }

    #[test]
    fn counters_going_backwards_add_nothing_and_rebaseline() {
        let mut s = stats();
        let samples = sampled(vec![
            r(1_000, 10_000),
            r(1_010, 10_100),
            r(5, 50),
            r(25, 250),
        ]);
        assert_eq!(feed(&mut s, samples), [0, 10, 10, 30]);
        assert_eq!(s.session_bytes, 300);
    }

    #[test]
    fn a_rebaselined_sample_adds_nothing_even_when_larger() {
        let mut s = stats();
        let other_map = |packets, bytes| {
            Ok(Reading {
                packets,
                bytes,
                epoch: 2,
                detail: None,
                actions: None,
                run: None,
            })
        };
        let samples = sampled(vec![
            r(10, 100),
            other_map(10_000_000, 100_000_000),
            other_map(10_000_005, 100_000_050),
        ]);
        assert!(samples[1].rebaselined);
        assert_eq!(feed(&mut s, samples), [0, 0, 5]);
    }

    #[test]
    fn after_lost_samples_the_first_good_one_is_a_new_baseline() {
        let mut s = stats();
        let samples = sampled(vec![
            r(10, 100),
            Err(anyhow::anyhow!("gone")),
            r(900, 9_000),
            r(901, 9_010),
        ]);
        assert_eq!(feed(&mut s, samples), [0, 0, 0, 1]);
    }

    #[test]
    fn reset_clears_the_view_and_counts_on_from_the_latest_counters() {
        let mut s = stats();
        let mut samples = sampled(vec![r(0, 0), r(50, 500), r(60, 600)]);
        let last = samples.pop().expect("three samples");
        feed(&mut s, samples);
        s.reset_view();
        assert_eq!(
            (s.session_packets, s.peak_pps, s.session_secs),
            (0, 0.0, 0.0)
        );
        assert!(s.history.is_empty());
        // The kernel counters in the sample are untouched by the reset.
        assert_eq!(s.last.as_ref().map(|l| l.packets), Some(50));
        s.update(last);
        assert_eq!(s.session_packets, 10);
    }

    #[test]
    fn peaks_and_a_bounded_history() {
        let mut s = stats();
        for (i, pps) in [1.0, 9.0, 3.0, 4.0, 5.0, 6.0].into_iter().enumerate() {
            s.update(sample(i as u64, i as u64, pps));
        }
        assert_eq!(s.peak_pps, 9.0);
        assert_eq!(s.peak_bps, 72_000.0);
        assert_eq!(s.history.len(), 4);
        assert_eq!(
            s.history.pps().iter().copied().collect::<Vec<_>>(),
            [3.0, 4.0, 5.0, 6.0]
        );
        let mut nan = sample(6, 6, f64::NAN);
        nan.bps = f64::INFINITY;
        s.update(nan);
        assert_eq!((s.peak_pps, s.peak_bps), (9.0, 72_000.0));
    }

    #[test]
    fn breakdowns_accumulate_deltas_and_survive_a_map_restart() {
        let detail = |tcp: u64, cpu0: u64| Detail {
            l3: [tcp, 0, 0, 0],
            l4: [tcp, 0, 0, 0],
            size_hist: [tcp, 0, 0, 0, 0, 0, 0],
            per_cpu_packets: vec![cpu0, tcp - cpu0],
        };
        let with = |packets, bytes, tcp, cpu0| {
            Ok(Reading {
                packets,
                bytes,
                epoch: 1,
                detail: Some(detail(tcp, cpu0)),
                actions: None,
                run: None,
            })
        };
        let mut s = stats();
        feed(
            &mut s,
            sampled(vec![
                with(100, 1000, 100, 40),
                with(110, 1100, 110, 45),
                // Restarted: the counters went backwards.
                with(3, 30, 3, 3),
                with(5, 50, 5, 3),
            ]),
        );
        let d = s.session_detail.as_ref().expect("detail");
        assert_eq!(d.l4[0], 12);
        assert_eq!(d.per_cpu_packets, [5, 7]);
    }

    #[test]
    fn a_baseline_sample_is_kept_off_the_history() {
        let mut s = stats();
        let mut first = sample(0, 0, 0.0);
        first.period_s = 0.0;
        s.update(first);
        assert!(s.history.is_empty());
        s.update(sample(10, 100, 10.0));
        assert_eq!(s.history.len(), 1);
    }

    #[test]
    fn history_length_covers_ten_minutes_within_bounds() {
        assert_eq!(history_len(Duration::from_secs(1)), 600);
        assert_eq!(history_len(Duration::from_secs(5)), 300);
        assert_eq!(history_len(Duration::from_millis(250)), 2_400);
        assert_eq!(history_len(Duration::from_millis(10)), 60_000);
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::*;
        use crate::{
            sample::Reading,
            sampler::{CounterSource, FakeSource, Sampler},
        };

        /// One scripted read: counters (small steps, big jumps, drops to
        /// zero, values near u64::MAX), a map epoch, or a failed read.
        fn read() -> impl Strategy<Value = Option<(u64, u64, u64)>> {
            prop::option::weighted(
                0.9,
                (
                    prop_oneof![0u64..1_000, any::<u64>(), (u64::MAX - 1_000)..=u64::MAX],
                    prop_oneof![0u64..100_000, any::<u64>(), (u64::MAX - 1_000)..=u64::MAX],
                    0u64..3,
                ),
            )
        }

        fn check(s: &IfaceStats) -> Result<(), TestCaseError> {
            prop_assert!(s.session_secs.is_finite() && s.session_secs >= 0.0);
            for v in [s.peak_pps, s.peak_bps] {
                prop_assert!(v.is_finite() && v >= 0.0, "peak {}", v);
            }
            for v in s.history.pps().iter().chain(s.history.bps()) {
                prop_assert!(v.is_finite() && *v >= 0.0, "history {}", v);
            }
            if let Some(avg) = s.avg_packet_size() {
                prop_assert!(avg.is_finite() && avg >= 0.0);
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1_000))]

            /// Random counter sequences through the real sampler into the
            /// session totals: no negative, NaN or infinite value anywhere,
            /// and the totals never exceed the sum of the counters' rises.
            #[test]
            fn sampler_to_session_totals_stay_sane(
                reads in prop::collection::vec(read(), 1..60),
                steps in prop::collection::vec(0u64..3_000_000_000, 60),
                reset_at in prop::option::of(0usize..60),
            ) {
                let readings = reads
                    .iter()
                    .map(|r| match r {
                        Some((packets, bytes, epoch)) => Ok(Reading {
                            packets: *packets,
                            bytes: *bytes,
                            epoch: *epoch,
                            detail: None,
                            actions: None,
                            run: None,
                        }),
                        None => Err(anyhow::anyhow!("gone")),
                    })
                    .collect();
                let source: Box<dyn CounterSource> = Box::new(FakeSource {
                    name: "eth0".into(),
                    mode: crate::sample::Mode::Native,
                    readings,
                });
                let mut sampler = Sampler::new(vec![source]);
                let mut stats = IfaceStats::new(Arc::from("eth0"), 16);
                let (mut mono, mut rises) = (0u64, 0u128);
                let mut prev: Option<u64> = None;
                for (i, r) in reads.iter().enumerate() {
                    mono = mono.saturating_add(steps[i]);
                    let sample = sampler.sample(mono, mono).samples.remove(0);
                    prop_assert!(sample.pps.is_finite() && sample.pps >= 0.0);
                    prop_assert!(sample.bps.is_finite() && sample.bps >= 0.0);
                    if let Some((p, _, _)) = r {
                        if let Some(q) = prev {
                            rises += u128::from(p.saturating_sub(q));
                        }
                        prev = Some(*p);
                    }
                    stats.update(sample);
                    if reset_at == Some(i) {
                        stats.reset_view();
                    }
                    check(&stats)?;
                    prop_assert!(u128::from(stats.session_packets) <= rises);
                }
            }

            /// Samples with any field values at all (NaN, infinities,
            /// negative rates) cannot poison peaks, history or totals.
            #[test]
            fn arbitrary_samples_cannot_poison_the_view(
                samples in prop::collection::vec(
                    (any::<u64>(), any::<u64>(), any::<f64>(), any::<f64>(), any::<f64>(), any::<bool>(), any::<bool>()),
                    1..40,
                ),
            ) {
                let mut stats = IfaceStats::new(Arc::from("eth0"), 8);
                for (packets, bytes, pps, bps, period_s, rebaselined, lost) in samples {
                    let mut s = sample(packets, bytes, pps);
                    s.bps = bps;
                    s.period_s = period_s;
                    s.rebaselined = rebaselined;
                    if lost {
                        s.health = Health::Lost { reason: "x".into() };
                    }
                    stats.update(s);
                    check(&stats)?;
                }
            }
        }
    }
}
