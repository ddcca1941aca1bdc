//! The sampling thread's loop. It alone owns the counter sources (through
//! the [`Sampler`]), the [`Outputs`] and the kernel actions ([`Kernel`]);
//! everything else talks to it over channels:
//!
//! ```text
//!  kernel maps ─▶ sources ─▶ Sampler ─Tick─▶ Outputs (OTLP, /metrics)
//!                    ▲                   └──▶ report: Report::Tick ──▶ dashboard / JSON lines
//!  Command ─────────┘ attach, detach           Report::Done(Outcome) ──▶ dashboard
//!  (dashboard keys,   view reset, stop
//!   signals)
//! ```
//!
//! Every tick goes to the outputs and then to the report, once, with the
//! same values. A command is carried out between ticks (an attach, with its
//! load and verifier run, happens here, never on the dashboard's thread), and
//! its outcome comes back as a report, so the dashboard's keys stay
//! responsive meanwhile.

use std::{
    sync::mpsc::{Receiver, RecvTimeoutError},
    thread,
    time::{Duration, Instant},
};

use anyhow::Context as _;

use crate::{
    output::Outputs,
    sample::Mode,
    sampler::{CounterSource, Sampler, Tick, wall_ns},
};

/// What the dashboard (or the signal thread) asks the sampling thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Attach xdptop to the interface again (or re-use its attachment).
    Attach(String),
    /// Detach xdptop from the interface and remove its pins.
    Detach(String),
    /// The operator reset the view: exported as an event; no kernel change.
    ViewReset,
    /// Switch talker counting on or off for the interface (the dashboard's
    /// talkers view, when xdptop runs without `--talkers`).
    Talkers { interface: String, on: bool },
    /// End the loop (SIGTERM and friends in headless mode).
    Stop,
}

/// How a command ended.
#[derive(Debug)]
pub enum Outcome {
    Attached {
        interface: String,
        result: anyhow::Result<Mode>,
    },
    Detached {
        interface: String,
        result: anyhow::Result<()>,
    },
    /// Talker counting switched; the result is the sources table's capacity.
    Talkers {
        interface: String,
        on: bool,
        result: anyhow::Result<u32>,
    },
}

/// What the sampling thread hands on.
#[derive(Debug)]
pub enum Report {
    Tick(Tick),
    Done(Outcome),
}

/// The kernel actions behind [`Command::Attach`] and [`Command::Detach`].
pub trait Kernel: Send {
    /// Attaches (or finds) xdptop's program on `interface` and returns the
    /// source that reads its counters.
    fn attach(&mut self, interface: &str) -> anyhow::Result<Box<dyn CounterSource>>;
    /// Detaches xdptop from `interface` and removes its pins.
    fn detach(&mut self, interface: &str) -> anyhow::Result<()>;
}

/// The sources, the outputs and the kernel, owned by one thread.
pub struct Engine {
    sampler: Sampler,
    outputs: Outputs,
    kernel: Box<dyn Kernel>,
    /// Interfaces whose talker counting was switched on by a command, to
    /// switch on again on a source attached anew.
    talkers_on: Vec<String>,
}

/// Whether the loop goes on.
enum Flow {
    Continue,
    Stop,
}

impl Engine {
    pub fn new(sampler: Sampler, outputs: Outputs, kernel: Box<dyn Kernel>) -> Self {
        Self {
            sampler,
            outputs,
            kernel,
            talkers_on: Vec::new(),
        }
    }

    /// The outputs, for their last push once the loop has ended.
    pub fn into_outputs(self) -> Outputs {
        self.outputs
    }

    /// Runs [`Engine::run`] on a thread named `sampler`; the thread returns
    /// the engine's outputs when the loop ends, so that their last push
    /// happens after the last tick and cannot be skipped.
    pub fn spawn(
        mut self,
        interval: Duration,
        commands: Receiver<Command>,
        mut report: impl FnMut(Report) -> bool + Send + 'static,
    ) -> anyhow::Result<thread::JoinHandle<Outputs>> {
        thread::Builder::new()
            .name("sampler".into())
            .spawn(move || {
                self.run(interval, &commands, &mut report);
                self.into_outputs()
            })
            .context("starting the sampler thread")
    }

    /// Samples on the calling thread: a baseline read at once (not handed
    /// on), then one tick every `interval` on a fixed schedule (no drift),
    /// each published to the outputs and then given to `report`. Commands
    /// are carried out as they arrive, between ticks. Returns when `report`
    /// returns false, on [`Command::Stop`], or when every command sender is
    /// gone (one wake-up per tick or command, no polling).
    pub fn run(
        &mut self,
        interval: Duration,
        commands: &Receiver<Command>,
        report: &mut dyn FnMut(Report) -> bool,
    ) {
        let start = Instant::now();
        let mono =
            |now: Instant| u64::try_from(now.duration_since(start).as_nanos()).unwrap_or(u64::MAX);
        let mut next = start;
        let baseline = self.sampler.sample(wall_ns(), mono(start));
        debug_assert_eq!(baseline.seq, 0);
        loop {
            next += interval;
            // After a long stall (suspend, overload, a slow attach), skip
            // missed ticks instead of bursting to catch up.
            let now = Instant::now();
            while next <= now {
                next += interval;
            }
            // Commands until the tick is due.
            loop {
                let wait = next.saturating_duration_since(Instant::now());
                match commands.recv_timeout(wait) {
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => return,
                    Ok(command) => {
                        if let Flow::Stop = self.command(command, report) {
                            return;
                        }
                    }
                }
            }
            let tick = self.sampler.sample(wall_ns(), mono(Instant::now()));
            self.outputs.publish(&tick);
            if !report(Report::Tick(tick)) {
                return;
            }
        }
    }

    fn command(&mut self, command: Command, report: &mut dyn FnMut(Report) -> bool) -> Flow {
        let outcome = match command {
            Command::Stop => return Flow::Stop,
            Command::ViewReset => {
                self.outputs.event("view-reset", None);
                return Flow::Continue;
            }
            Command::Attach(interface) => {
                let result = self.attach(&interface);
                Outcome::Attached { interface, result }
            }
            Command::Talkers { interface, on } => {
                let result = self.sampler.count_talkers(&interface, on);
                self.talkers_on.retain(|i| *i != interface);
                if on && result.is_ok() {
                    self.talkers_on.push(interface.clone());
                }
                Outcome::Talkers {
                    interface,
                    on,
                    result,
                }
            }
            Command::Detach(interface) => {
                let result = self.kernel.detach(&interface);
                if result.is_ok() {
                    self.outputs.event("detach", Some(&interface));
                }
                Outcome::Detached { interface, result }
            }
        };
        if report(Report::Done(outcome)) {
            Flow::Continue
        } else {
            Flow::Stop
        }
    }

    fn attach(&mut self, interface: &str) -> anyhow::Result<Mode> {
        let source = self.kernel.attach(interface)?;
        let mode = source.mode();
        // The sampler reads the new source from its next tick on.
        if !self.sampler.replace(interface, source) {
            anyhow::bail!("{interface} is not one of the watched interfaces");
        }
        if self.talkers_on.iter().any(|i| i == interface)
            && let Err(e) = self.sampler.count_talkers(interface, true)
        {
            log::warn!("{interface}: talkers after the attach: {e:#}");
        }
        self.outputs.event("attach", Some(interface));
        Ok(mode)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::{Arc, Mutex, mpsc};

    use super::*;
    use crate::{
        output::Output,
        sample::Reading,
        sampler::{CounterSource, FakeSource},
    };

    fn counting(name: &str, mode: Mode, from: u64) -> Box<dyn CounterSource> {
        Box::new(FakeSource {
            name: name.into(),
            mode,
            readings: (0..1000)
                .map(|i| {
                    Ok(Reading {
                        packets: from + i * 10,
                        bytes: (from + i * 10) * 100,
                        epoch: from,
                        detail: None,
                        actions: None,
                        run: None,
                    })
                })
                .collect(),
        })
    }

    /// Attaches in skb mode with counters from 1000; detach fails for "b".
    pub(crate) struct FakeKernel;

    impl Kernel for FakeKernel {
        fn attach(&mut self, interface: &str) -> anyhow::Result<Box<dyn CounterSource>> {
            match interface {
                "nope0" => anyhow::bail!("unknown interface nope0"),
                _ => Ok(counting(interface, Mode::Skb, 1000)),
            }
        }

        fn detach(&mut self, interface: &str) -> anyhow::Result<()> {
            match interface {
                "b" => anyhow::bail!("b is not attached"),
                _ => Ok(()),
            }
        }
    }

    /// Records what reaches the outputs.
    #[derive(Clone, Default)]
    pub(crate) struct Recorder(Arc<Mutex<Vec<String>>>);

    impl Recorder {
        /// The seq of every tick published, in order.
        pub(crate) fn ticks(&self) -> Vec<u64> {
            self.0
                .lock()
                .expect("lock")
                .iter()
                .filter_map(|l| l.strip_prefix("tick ")?.parse().ok())
                .collect()
        }

        /// Every event published, as "name interface".
        pub(crate) fn events(&self) -> Vec<String> {
            self.0
                .lock()
                .expect("lock")
                .iter()
                .filter(|l| !l.starts_with("tick "))
                .cloned()
                .collect()
        }
    }

    /// An engine over `sampler` with [`FakeKernel`], publishing to `recorder`.
    pub(crate) fn engine_with(sampler: Sampler, recorder: &Recorder) -> Engine {
        let mut outputs = Outputs::default();
        outputs.push(Box::new(recorder.clone()));
        Engine::new(sampler, outputs, Box::new(FakeKernel))
    }

    impl Output for Recorder {
        fn publish(&mut self, tick: &Tick) {
            self.0
                .lock()
                .expect("lock")
                .push(format!("tick {}", tick.seq));
        }
        fn event(&mut self, name: &str, interface: Option<&str>) {
            self.0
                .lock()
                .expect("lock")
                .push(format!("{name} {}", interface.unwrap_or("-")));
        }
    }

    fn engine(recorder: &Recorder) -> Engine {
        let sampler = Sampler::new(vec![
            counting("a", Mode::Native, 0),
            counting("b", Mode::Native, 0),
        ]);
        engine_with(sampler, recorder)
    }

    #[test]
    fn commands_are_carried_out_between_ticks_and_reported() {
        let recorder = Recorder::default();
        let (commands_tx, commands) = mpsc::channel();
        let (reports_tx, reports) = mpsc::channel();
        let handle = engine(&recorder)
            .spawn(Duration::from_millis(20), commands, move |r| {
                reports_tx.send(r).is_ok()
            })
            .expect("spawn");
        let next = || {
            reports
                .recv_timeout(Duration::from_secs(10))
                .expect("a report")
        };
        let tick = |r: Report| match r {
            Report::Tick(t) => t,
            other => panic!("expected a tick, got {other:?}"),
        };

        let first = tick(next());
        assert_eq!(first.seq, 1, "the baseline tick is kept back");
        assert_eq!(first.samples[0].mode, Mode::Native);

        commands_tx.send(Command::Attach("a".into())).expect("send");
        commands_tx.send(Command::Detach("b".into())).expect("send");
        commands_tx
            .send(Command::Attach("nope0".into()))
            .expect("send");
        commands_tx.send(Command::ViewReset).expect("send");
        let mut done = Vec::new();
        let mut after = None;
        while done.len() < 3 {
            match next() {
                Report::Done(o) => done.push(o),
                Report::Tick(t) => after = Some(t),
            }
        }
        match &done[0] {
            Outcome::Attached { interface, result } => {
                assert_eq!(interface, "a");
                assert_eq!(result.as_ref().expect("attached"), &Mode::Skb);
            }
            other => panic!("{other:?}"),
        }
        match &done[1] {
            Outcome::Detached { interface, result } => {
                assert_eq!(interface, "b");
                let err = result.as_ref().expect_err("b fails");
                assert_eq!(err.to_string(), "b is not attached");
            }
            other => panic!("{other:?}"),
        }
        match &done[2] {
            Outcome::Attached { interface, result } => {
                assert_eq!(interface, "nope0");
                let err = result.as_ref().expect_err("no such interface");
                assert_eq!(err.to_string(), "unknown interface nope0");
            }
            other => panic!("{other:?}"),
        }

        // The new source is read from the next tick on: its mode, and its
        // counters (another object) start a new baseline, not a spike.
        let swapped = loop {
            let t = after.take().unwrap_or_else(|| tick(next()));
            if t.samples[0].mode == Mode::Skb {
                break t;
            }
        };
        assert!(swapped.samples[0].rebaselined);
        assert_eq!(swapped.samples[0].pps, 0.0);
        assert_eq!(swapped.samples[0].packets, 1000);
        let later = tick(next());
        assert!(later.samples[0].pps > 0.0);

        drop(commands_tx);
        let outputs = handle.join().expect("the thread ends when commands close");
        outputs.shutdown();

        assert_eq!(recorder.events(), ["attach a", "view-reset -"]);
        // Every tick reached the outputs once, in order, from seq 1 on.
        let ticks = recorder.ticks();
        assert_eq!(ticks, (1..=ticks.len() as u64).collect::<Vec<_>>());
        assert!(ticks.len() as u64 >= later.seq);
    }

    #[test]
    fn talker_switches_are_carried_out_and_reported() {
        let recorder = Recorder::default();
        let mut e = engine(&recorder);
        let mut done = Vec::new();
        for interface in ["a", "zz"] {
            let command = Command::Talkers {
                interface: interface.into(),
                on: true,
            };
            assert!(matches!(
                e.command(command, &mut |r| {
                    done.push(r);
                    true
                }),
                Flow::Continue
            ));
        }
        let errors: Vec<String> = done
            .iter()
            .map(|r| match r {
                Report::Done(Outcome::Talkers {
                    on: true, result, ..
                }) => format!("{:#}", result.as_ref().expect_err("fakes have no tables")),
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(errors[0].contains("no talker tables"), "{errors:?}");
        assert!(
            errors[1].contains("zz is not one of the watched"),
            "{errors:?}"
        );
        assert!(
            e.talkers_on.is_empty(),
            "failed switches are not re-applied"
        );
    }

    #[test]
    fn stop_ends_the_loop_and_a_refused_report_too() {
        let recorder = Recorder::default();
        let (tx, commands) = mpsc::channel();
        tx.send(Command::Stop).expect("send");
        let mut e = engine(&recorder);
        // Long: a stop that went unheard fails here instead of ticking.
        e.run(Duration::from_secs(3600), &commands, &mut |r| {
            panic!("no report after a stop: {r:?}")
        });

        let mut e = engine(&recorder);
        let (_keep, commands) = mpsc::channel::<Command>();
        let mut seen = 0;
        e.run(Duration::from_millis(1), &commands, &mut |_| {
            seen += 1;
            seen < 3
        });
        assert_eq!(seen, 3);
    }
}
