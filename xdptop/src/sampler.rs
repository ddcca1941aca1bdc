//! Reads every interface's counters once per interval and turns them into
//! `Sample`s. The reading is behind [`CounterSource`] so that the TUI and the
//! exporters can be tested with fake sources; the maths is in `sample.rs`.

use std::{
    sync::{
        Arc,
        mpsc::{self, Receiver, RecvTimeoutError, SyncSender},
    },
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use crate::sample::{Health, Mode, RateTracker, Reading, Sample};

/// Something that yields cumulative counters for one interface.
pub trait CounterSource: Send {
    fn interface(&self) -> &str;
    fn mode(&self) -> Mode;
    /// Reads the counters now. An error marks the interface as lost for this
    /// sample; the sampler keeps calling, so a source may recover.
    fn read(&mut self) -> anyhow::Result<Reading>;
}

/// One sampling instant: a sample per interface, in the order given.
#[derive(Clone, Debug)]
pub struct Tick {
    /// Counts from 0 at the baseline read; [`spawn`] keeps the baseline to
    /// itself, so every tick it sends (from 1 on) carries real rates.
    pub seq: u64,
    pub samples: Vec<Sample>,
}

struct Tracked {
    source: Box<dyn CounterSource>,
    name: Arc<str>,
    rates: RateTracker,
    last: Reading,
    was_lost: bool,
}

/// Turns sources into samples; owns the per-interface rate state.
pub struct Sampler {
    tracked: Vec<Tracked>,
    seq: u64,
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
                was_lost: false,
            })
            .collect();
        Self { tracked, seq: 0 }
    }

    /// Reads every source once. `wall_ns` stamps the samples; `mono_ns`
    /// (monotonic) times the rates.
    pub fn sample(&mut self, wall_ns: u64, mono_ns: u64) -> Tick {
        let samples = self
            .tracked
            .iter_mut()
            .map(|t| sample_one(t, wall_ns, mono_ns))
            .collect();
        let tick = Tick {
            seq: self.seq,
            samples,
        };
        self.seq += 1;
        tick
    }
}

fn sample_one(t: &mut Tracked, wall_ns: u64, mono_ns: u64) -> Sample {
    let recovered = t.was_lost;
    let (health, reading) = match t.source.read() {
        Ok(reading) => {
            if t.was_lost {
                log::info!("{}: counters readable again", t.name);
                // Whatever happened meanwhile is not one period's traffic.
                t.rates.reset();
            }
            t.was_lost = false;
            t.last = reading.clone();
            (Health::Ok, reading)
        }
        Err(e) => {
            let reason = format!("{e:#}");
            if !t.was_lost {
                log::warn!("{}: {reason}", t.name);
            }
            t.was_lost = true;
            t.rates.reset();
            (Health::Lost { reason }, t.last.clone())
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
    }
}

/// Nanoseconds since the Unix epoch.
pub fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Runs [`drive`] on its own thread, sending each tick to `tx`. The thread
/// ends when `stop` receives a message or is dropped, or when the receiver
/// of `tx` is gone.
pub fn spawn(
    mut sampler: Sampler,
    interval: Duration,
    tx: SyncSender<Tick>,
) -> (thread::JoinHandle<()>, mpsc::Sender<()>) {
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let handle = thread::Builder::new()
        .name("sampler".into())
        .spawn(move || {
            drive(&mut sampler, interval, &stop_rx, |tick| {
                tx.send(tick).is_ok()
            })
        })
        .expect("spawning the sampler thread");
    (handle, stop_tx)
}

/// Samples on the calling thread: a baseline read at once (not handed on),
/// then one tick every `interval` on a fixed schedule (no drift), each
/// given to `on_tick`. Returns when `on_tick` returns false, or when `stop`
/// receives a message or is dropped (one wake-up per tick, no polling).
pub fn drive(
    sampler: &mut Sampler,
    interval: Duration,
    stop: &Receiver<()>,
    mut on_tick: impl FnMut(Tick) -> bool,
) {
    let start = Instant::now();
    let mono =
        |now: Instant| u64::try_from(now.duration_since(start).as_nanos()).unwrap_or(u64::MAX);
    let mut next = start;
    let baseline = sampler.sample(wall_ns(), mono(start));
    debug_assert_eq!(baseline.seq, 0);
    loop {
        next += interval;
        // After a long stall (suspend, overload), skip missed ticks instead
        // of bursting to catch up.
        let now = Instant::now();
        while next <= now {
            next += interval;
        }
        match stop.recv_timeout(next - now) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        if !on_tick(sampler.sample(wall_ns(), mono(Instant::now()))) {
            return;
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(packets: u64, bytes: u64) -> anyhow::Result<Reading> {
        Ok(Reading {
            packets,
            bytes,
            epoch: 1,
            detail: None,
        })
    }

    fn fake(name: &str, readings: Vec<anyhow::Result<Reading>>) -> Box<dyn CounterSource> {
        Box::new(FakeSource {
            name: name.into(),
            mode: Mode::Native,
            readings: readings.into(),
        })
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
    fn the_thread_ticks_and_stops() {
        let (tx, rx) = mpsc::sync_channel(16);
        let readings = (0..100).map(|i| reading(i * 10, i * 100)).collect();
        let (handle, stop) = spawn(
            Sampler::new(vec![fake("a", readings)]),
            Duration::from_millis(10),
            tx,
        );
        let first = rx.recv().expect("tick");
        let second = rx.recv().expect("tick");
        assert_eq!((first.seq, second.seq), (1, 2));
        assert!(first.samples[0].pps > 0.0);
        stop.send(()).expect("stop");
        handle.join().expect("join");
    }
}
