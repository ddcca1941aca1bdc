//! Turns every interface's counters into `Sample`s, once per call: rates,
//! and the one decision whether a counter restarted (the sample's delta and
//! series start time). The reading is behind [`CounterSource`] so that the
//! TUI and the exporters can be tested with fake sources; the maths is in
//! `sample.rs`; the schedule and the thread are the engine's.

use std::{
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use crate::{
    sample::{
        Actions, Delta, Health, Mode, NotObservable, RateTracker, Reading, Sample, TalkerReading,
    },
    talkers::TalkerTracker,
};

/// Something that yields cumulative counters for one interface.
pub trait CounterSource: Send {
    fn interface(&self) -> &str;
    fn mode(&self) -> Mode;
    /// Reads the counters now. An error marks the interface as lost for this
    /// sample; the sampler keeps calling, so a source may recover.
    fn read(&mut self) -> anyhow::Result<Reading>;
    /// Reads the talker tables, when the source has them and talkers were
    /// asked for (`None` otherwise). Called just before [`Self::read`], so
    /// the interface's counters always include what the tables counted.
    fn read_talkers(&mut self) -> Option<anyhow::Result<TalkerReading>> {
        None
    }
    /// Switches talker counting on or off at run time (the dashboard's
    /// talkers view); returns the sources table's capacity. An error says
    /// why there are no talkers here.
    fn count_talkers(&mut self, _on: bool) -> anyhow::Result<u32> {
        anyhow::bail!(
            "no talker tables: they are counted by xdptop's own program only, and one that \
             an earlier xdptop loaded has none (see the log)"
        )
    }
}

/// One sampling instant: a sample per interface, in the order given.
#[derive(Clone, Debug)]
pub struct Tick {
    /// Counts from 0 at the baseline read; the engine keeps the baseline to
    /// itself, so every tick it hands on (from 1 on) carries real rates.
    pub seq: u64,
    pub samples: Vec<Sample>,
}

struct Tracked {
    source: Box<dyn CounterSource>,
    name: Arc<str>,
    rates: RateTracker,
    /// The last good reading; lost samples repeat its totals.
    last: Reading,
    /// Whether `last` is a baseline the next good reading can be compared
    /// with: false before the first read and while the counters are lost.
    comparable: bool,
    was_lost: bool,
    /// The health of the last sample, to log a change once.
    last_health: Option<Health>,
    /// Start of the current cumulative series; `None` before the first sample.
    start_time_unix_nano: Option<u64>,
    /// With `--talkers`: the previous talker tables.
    talkers: Option<TalkerTracker>,
    /// Whether a failed talkers read was already logged.
    talkers_failing: bool,
}

/// Turns sources into samples; owns the per-interface rate state.
pub struct Sampler {
    tracked: Vec<Tracked>,
    seq: u64,
    /// `--talkers N`: how many sources and services a sample lists (0: none).
    talkers_top: usize,
}

impl Sampler {
    pub fn new(sources: Vec<Box<dyn CounterSource>>) -> Self {
        let tracked = sources
            .into_iter()
            .map(|source| Tracked {
                name: Arc::from(source.interface()),
                source,
                rates: RateTracker::new(),
                last: Reading::default(),
                comparable: false,
                was_lost: false,
                last_health: None,
                start_time_unix_nano: None,
                talkers: None,
                talkers_failing: false,
            })
            .collect();
        Self {
            tracked,
            seq: 0,
            talkers_top: 0,
        }
    }

    /// Lists the `top` heaviest sources and services in every sample of an
    /// interface whose source has talker tables (`--talkers N`).
    pub fn with_talkers(mut self, top: usize) -> Self {
        self.talkers_top = top;
        self
    }

    /// Swaps in a freshly attached source for `interface` (the dashboard's
    /// attach); its rates and series go on, re-baselining if its counters
    /// are another object. Returns false if no such interface is watched.
    pub fn replace(&mut self, interface: &str, source: Box<dyn CounterSource>) -> bool {
        match self.tracked.iter_mut().find(|t| &*t.name == interface) {
            Some(t) => {
                t.source = source;
                true
            }
            None => false,
        }
    }

    /// Switches talker counting on or off for `interface` (the dashboard's
    /// talkers view); returns the sources table's capacity. Counting that
    /// starts again is a new baseline, never a spike.
    pub fn count_talkers(&mut self, interface: &str, on: bool) -> anyhow::Result<u32> {
        let Some(t) = self.tracked.iter_mut().find(|t| &*t.name == interface) else {
            anyhow::bail!("{interface} is not one of the watched interfaces");
        };
        t.talkers = None;
        t.source.count_talkers(on)
    }

    /// Reads every source once. `wall_ns` stamps the samples; `mono_ns`
    /// (monotonic) times the rates.
    pub fn sample(&mut self, wall_ns: u64, mono_ns: u64) -> Tick {
        let samples = self
            .tracked
            .iter_mut()
            .map(|t| sample_one(t, wall_ns, mono_ns, self.talkers_top))
            .collect();
        let tick = Tick {
            seq: self.seq,
            samples,
        };
        self.seq += 1;
        tick
    }
}

fn sample_one(t: &mut Tracked, wall_ns: u64, mono_ns: u64, talkers_top: usize) -> Sample {
    let recovered = t.was_lost;
    // Before the interface's counters: they then include all the tables have.
    let talker_reading = if talkers_top > 0 {
        read_talkers(t)
    } else {
        None
    };
    if talker_reading.is_none() {
        // Not counting (or unreadable): the next reading is a new baseline.
        t.talkers = None;
    }
    let mut prev_actions = None;
    let mut prev_run = None;
    let (health, reading, delta) = match t.source.read() {
        Ok(reading) => {
            if t.was_lost {
                log::info!("{}: counters readable again", t.name);
                // Whatever happened meanwhile is not one period's traffic.
                t.rates.reset();
            }
            t.was_lost = false;
            t.last_health = Some(Health::Ok);
            let delta = t
                .comparable
                .then(|| Delta::between(&t.last, &reading))
                .flatten();
            prev_actions = t.comparable.then_some(t.last.actions).flatten();
            prev_run = t.comparable.then_some(t.last.run).flatten();
            t.last = reading.clone();
            t.comparable = true;
            (Health::Ok, reading, delta)
        }
        Err(e) => {
            let reason = format!("{e:#}");
            let health = if e.downcast_ref::<NotObservable>().is_some() {
                Health::NotObservable { reason }
            } else {
                Health::Lost { reason }
            };
            // Said once when the state (or its reason) changes, not per sample.
            if t.last_health.as_ref() != Some(&health) {
                match &health {
                    Health::NotObservable { reason } => {
                        log::warn!("{}: not observable: {reason}", t.name)
                    }
                    Health::Lost { reason }
                        if !matches!(t.last_health, Some(Health::Lost { .. })) =>
                    {
                        log::warn!("{}: {reason}", t.name)
                    }
                    _ => {}
                }
            }
            t.last_health = Some(health.clone());
            t.was_lost = true;
            t.comparable = false;
            t.rates.reset();
            (health, t.last.clone(), None)
        }
    };
    let rates = if health == Health::Ok {
        let mut r = t
            .rates
            .update(mono_ns, reading.packets, reading.bytes, reading.epoch);
        // The first good read after a loss starts a new baseline.
        r.rebaselined |= recovered;
        r
    } else {
        Default::default()
    };
    let prev_actions = prev_actions.filter(|_| !rates.rebaselined);
    let actions = reading
        .actions
        .as_ref()
        .map(|cur| Actions::from_totals(cur, prev_actions.as_ref(), rates.period_s));
    // prev_run is set on a good read only.
    let runs = prev_run.zip(reading.run);
    let run_ns_per_packet = runs.and_then(|(p, c)| crate::sample::RunStats::ns_per_run(&p, &c));
    let run_cpu_percent = runs
        .filter(|_| !rates.rebaselined)
        .and_then(|(p, c)| crate::sample::RunStats::cpu_percent(&p, &c, rates.period_s));
    // A restart's increase is unknown: no delta, and a new series begins.
    let delta = delta.filter(|_| !rates.rebaselined);
    let start = match t.start_time_unix_nano {
        Some(start) if !rates.rebaselined => start,
        _ => wall_ns,
    };
    t.start_time_unix_nano = Some(start);
    let talkers = match (talker_reading, &health) {
        (Some(tr), Health::Ok) => {
            let tracker = t
                .talkers
                .get_or_insert_with(|| TalkerTracker::new(talkers_top));
            let interface = delta.as_ref().map(|d| xdp_ebpf::Counter {
                packets: d.packets,
                bytes: d.bytes,
            });
            Some(tracker.update(tr, interface, rates.period_s))
        }
        _ => None,
    };
    Sample {
        time_unix_nano: wall_ns,
        interface: Arc::clone(&t.name),
        mode: t.source.mode(),
        packets: reading.packets,
        bytes: reading.bytes,
        pps: rates.pps,
        bps: rates.bps,
        period_s: rates.period_s,
        rebaselined: rates.rebaselined,
        health,
        detail: reading.detail,
        talkers,
        actions,
        run_ns_per_packet,
        run_cpu_percent,
        start_time_unix_nano: start,
        delta,
    }
}

/// The talker tables of `t`'s source, if it has them; a failure is logged
/// once and leaves the sample without talkers.
fn read_talkers(t: &mut Tracked) -> Option<TalkerReading> {
    match t.source.read_talkers()? {
        Ok(r) => {
            if t.talkers_failing {
                log::info!("{}: talker tables readable again", t.name);
            }
            t.talkers_failing = false;
            Some(r)
        }
        Err(e) => {
            if !t.talkers_failing {
                log::warn!("{}: talkers: {e:#}", t.name);
            }
            t.talkers_failing = true;
            // The next good read is a new baseline.
            t.talkers = None;
            None
        }
    }
}

/// Nanoseconds since the Unix epoch.
pub fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A source with scripted readings, for tests of everything downstream.
#[derive(Debug)]
pub struct FakeSource {
    pub name: String,
    pub mode: Mode,
    pub readings: std::collections::VecDeque<anyhow::Result<Reading>>,
}

impl CounterSource for FakeSource {
    fn interface(&self) -> &str {
        &self.name
    }
    fn mode(&self) -> Mode {
        self.mode
    }
    fn read(&mut self) -> anyhow::Result<Reading> {
        self.readings
            .pop_front()
            .unwrap_or_else(|| Err(anyhow::anyhow!("no more scripted readings")))
    }
}

/// A scripted reading of a program's verdicts: `pass` packets of 100
/// bytes and `drop` packets of 500, for tests of everything downstream.
pub fn verdict_reading(pass: u64, drop: u64) -> Reading {
    let mut a = crate::sample::ActionTotals::default();
    a[xdp_ebpf::action::PASS] = crate::sample::Counts {
        packets: pass,
        bytes: pass * 100,
    };
    a[xdp_ebpf::action::DROP] = crate::sample::Counts {
        packets: drop,
        bytes: drop * 500,
    };
    Reading {
        packets: pass + drop,
        bytes: pass * 100 + drop * 500,
        epoch: 1,
        detail: None,
        actions: Some(a),
        run: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(packets: u64, bytes: u64) -> anyhow::Result<Reading> {
        Ok(Reading {
            packets,
            bytes,
            epoch: 1,
            detail: None,
            actions: None,
            run: None,
        })
    }

    fn fake(name: &str, readings: Vec<anyhow::Result<Reading>>) -> Box<dyn CounterSource> {
        Box::new(FakeSource {
            name: name.into(),
            mode: Mode::Native,
            readings: readings.into(),
        })
    }

    /// A source with talker tables counting only while switched on: its one
    /// source sends every packet of the interface.
    struct Switchable {
        inner: FakeSource,
        on: bool,
        sent: u64,
    }

    impl CounterSource for Switchable {
        fn interface(&self) -> &str {
            self.inner.interface()
        }
        fn mode(&self) -> Mode {
            self.inner.mode()
        }
        fn read(&mut self) -> anyhow::Result<Reading> {
            let r = self.inner.read()?;
            self.sent = r.packets;
            Ok(r)
        }
        fn read_talkers(&mut self) -> Option<anyhow::Result<TalkerReading>> {
            self.on.then(|| {
                // The table counted while on; the next read() is 10 more.
                let packets = self.sent + 10;
                Ok(TalkerReading {
                    epoch: 1,
                    sources: vec![(
                        crate::talkers::SourceAt {
                            key: std::net::IpAddr::from([198, 18, 0, 1]).into(),
                            slot: Some(0),
                        },
                        xdp_ebpf::Counter {
                            packets,
                            bytes: packets * 100,
                        },
                    )],
                    services: Vec::new(),
                    table: crate::talkers::Table {
                        entries: 1,
                        capacity: 1024,
                        ..Default::default()
                    },
                })
            })
        }
        fn count_talkers(&mut self, on: bool) -> anyhow::Result<u32> {
            self.on = on;
            Ok(1024)
        }
    }

    #[test]
    fn talkers_switched_on_at_run_time_start_from_a_new_baseline() {
        let mut s = Sampler::new(vec![
            Box::new(Switchable {
                inner: FakeSource {
                    name: "a".into(),
                    mode: Mode::Native,
                    readings: (0..8).map(|i| reading(i * 10, i * 1000)).collect(),
                },
                on: false,
                sent: 0,
            }),
            fake("b", (0..8).map(|i| reading(i, i)).collect()),
        ])
        .with_talkers(10);
        let sec = 1_000_000_000;
        s.sample(0, 0);
        assert_eq!(s.sample(1, sec).samples[0].talkers, None, "off");
        assert_eq!(s.count_talkers("a", true).expect("switched"), 1024);
        let first = s.sample(2, 2 * sec).samples.remove(0);
        let t = first.talkers.expect("counting");
        assert_eq!(t.talkers[0].pps, 0.0, "a baseline, not a spike");
        let next = s.sample(3, 3 * sec).samples.remove(0);
        assert_eq!(next.talkers.expect("counting").talkers[0].pps, 10.0);
        s.count_talkers("a", false).expect("switched off");
        assert_eq!(s.sample(4, 4 * sec).samples[0].talkers, None);
        s.count_talkers("a", true).expect("on again");
        let again = s.sample(5, 5 * sec).samples.remove(0);
        assert_eq!(again.talkers.expect("counting").talkers[0].pps, 0.0);
        // A source without tables says so; an unknown interface too.
        let err = s.count_talkers("b", true).expect_err("no tables");
        assert!(format!("{err:#}").contains("no talker tables"), "{err:#}");
        let err = s.count_talkers("zz", true).expect_err("unknown");
        assert!(
            format!("{err:#}").contains("not one of the watched"),
            "{err:#}"
        );
    }

    #[test]
    fn one_sample_per_interface_per_tick() {
        let mut s = Sampler::new(vec![
            fake("a", vec![reading(0, 0), reading(10, 1000)]),
            fake("b", vec![reading(5, 50), reading(5, 50)]),
        ]);
        let t0 = s.sample(100, 0);
        assert_eq!(t0.seq, 0);
        assert_eq!(t0.samples.len(), 2);
        let t1 = s.sample(200, 1_000_000_000);
        assert_eq!(t1.seq, 1);
        let a = &t1.samples[0];
        assert_eq!((&*a.interface, a.packets, a.bytes), ("a", 10, 1000));
        assert_eq!((a.pps, a.bps, a.time_unix_nano), (10.0, 8000.0, 200));
        assert_eq!(t1.samples[1].pps, 0.0);
    }

    #[test]
    fn a_lost_interface_keeps_totals_and_recovers_without_a_spike() {
        let mut s = Sampler::new(vec![fake(
            "a",
            vec![
                reading(0, 0),
                reading(10, 100),
                Err(anyhow::anyhow!("interface a is gone")),
                reading(1_000, 10_000),
                reading(1_010, 10_100),
            ],
        )]);
        s.sample(0, 0);
        s.sample(1, 1_000_000_000);
        let lost = &s.sample(2, 2_000_000_000).samples[0];
        assert!(matches!(&lost.health, Health::Lost { reason } if reason.contains("gone")));
        assert_eq!((lost.packets, lost.pps), (10, 0.0));
        let back = &s.sample(3, 3_000_000_000).samples[0];
        assert_eq!((back.health.clone(), back.pps), (Health::Ok, 0.0));
        assert!(back.rebaselined, "a new baseline after the loss");
        let next = &s.sample(4, 4_000_000_000).samples[0];
        assert_eq!(next.pps, 10.0);
    }

    #[test]
    fn verdicts_flow_into_the_sample_with_rates_and_a_baseline_after_a_loss() {
        let with = |pass, drop| Ok(verdict_reading(pass, drop));
        let mut s = Sampler::new(vec![fake(
            "a",
            vec![
                with(0, 0),
                with(10, 4),
                Err(anyhow::anyhow!("gone")),
                with(30, 8),
                with(40, 8),
            ],
        )]);
        let mut next = |i: u64| s.sample(i, i * 1_000_000_000).samples.remove(0);
        let a = next(0).actions.expect("actions");
        assert_eq!((a.pass.packets, a.pass.pps), (0, 0.0));
        let a = next(1).actions.expect("actions");
        assert_eq!(
            (a.pass.packets, a.pass.pps, a.pass.bps),
            (10, 10.0, 8_000.0)
        );
        assert_eq!((a.drop.packets, a.drop.pps, a.drop.bps), (4, 4.0, 16_000.0));
        let lost = next(2).actions.expect("the last totals");
        assert_eq!((lost.pass.packets, lost.pass.pps), (10, 0.0));
        let back = next(3).actions.expect("actions");
        assert_eq!((back.pass.packets, back.pass.pps), (30, 0.0), "a baseline");
        let a = next(4).actions.expect("actions");
        assert_eq!((a.pass.pps, a.drop.pps), (10.0, 0.0));
    }

    #[test]
    fn a_source_that_cannot_be_observed_is_never_ok() {
        let not = || Err(anyhow::Error::new(NotObservable("no trampolines".into())));
        let mut s = Sampler::new(vec![fake(
            "a",
            vec![not(), not(), reading(7, 70), reading(9, 90)],
        )]);
        for i in 0..2 {
            let x = s.sample(i, i * 1_000_000_000).samples.remove(0);
            assert_eq!(
                x.health,
                Health::NotObservable {
                    reason: "no trampolines".into()
                }
            );
            assert_eq!((x.packets, x.pps, x.delta), (0, 0.0, None));
        }
        let x = s.sample(2, 2_000_000_000).samples.remove(0);
        assert_eq!((x.health, x.packets, x.pps), (Health::Ok, 7, 0.0));
        assert!(
            x.rebaselined,
            "counts that appear are a baseline, not a spike"
        );
        let x = s.sample(3, 3_000_000_000).samples.remove(0);
        assert_eq!(x.pps, 2.0);
    }

    #[test]
    fn the_sample_carries_its_delta_and_series_start() {
        let other_map = Ok(Reading {
            packets: 5_000,
            bytes: 50_000,
            epoch: 2,
            detail: None,
            actions: None,
            run: None,
        });
        let mut s = Sampler::new(vec![fake(
            "a",
            vec![
                reading(100, 1_000),
                reading(110, 1_100),
                reading(105, 1_050),
                reading(120, 1_200),
                Err(anyhow::anyhow!("gone")),
                reading(130, 1_300),
                other_map,
                reading(140, 1_400),
            ],
        )]);
        let got: Vec<(Option<(u64, u64)>, u64)> = (0..8u64)
            .map(|i| {
                let x = s.sample(i * 10, i * 1_000_000_000).samples.remove(0);
                let d = x.delta.map(|d| (d.packets, d.bytes));
                (d, x.start_time_unix_nano)
            })
            .collect();
        assert_eq!(
            got,
            [
                (None, 0),             // first: a baseline, the series starts
                (Some((10, 100)), 0),  // an increase
                (None, 20),            // backwards: a restart, a new series
                (Some((15, 150)), 20), // counting on from the restart
                (None, 20),            // lost: nothing known, the series goes on
                (None, 50),            // back after a loss: a new baseline
                (None, 60),            // another map (epoch): a new series
                (None, 70),            // backwards from the other map's counts
            ]
        );
    }

    #[test]
    fn breakdown_deltas_need_both_readings_and_the_same_cpus() {
        let with = |p: u64, cpus: usize| {
            Ok(Reading {
                packets: p,
                bytes: p,
                epoch: 1,
                detail: Some(crate::sample::Detail {
                    l3: [p, 0, 0, 0],
                    per_cpu_packets: vec![p; cpus],
                    ..Default::default()
                }),
                actions: None,
                run: None,
            })
        };
        let mut s = Sampler::new(vec![fake("a", vec![with(10, 2), with(15, 2), with(20, 3)])]);
        let mut detail = |i: u64| {
            let x = s.sample(i, i * 1_000_000_000).samples.remove(0);
            x.delta
                .map(|d| d.detail.map(|d| (d.l3[0], d.per_cpu_packets)))
        };
        assert_eq!(detail(0), None);
        assert_eq!(detail(1), Some(Some((5, vec![5, 5]))));
        assert_eq!(detail(2), Some(None), "the CPU count changed");
    }
}
