//! The headless loop: the engine samples on this thread and hands each tick
//! to the outputs, then here, where it is printed as JSON lines (flushed one
//! by one), until `--count` is reached, stdout closes or a signal asks to
//! stop. One wake-up per tick: no thread hop, no polling of a stop flag.

use std::{
    io::{self, Write},
    sync::mpsc::{Receiver, Sender},
    thread,
    time::Duration,
};

use anyhow::Context as _;

use crate::{
    engine::{Command, Engine, Report},
    output::json,
    sampler::Tick,
};

/// Why the loop ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    CountReached,
    Signalled,
    /// The reader of stdout went away (e.g. `| head -1`).
    OutputClosed,
}

/// What happens to each tick after the outputs had it: JSON lines to `out`
/// when `json` is set; counts ticks against `count`.
pub struct Consumer<'a> {
    count: Option<u64>,
    json: bool,
    out: &'a mut dyn Write,
    seen: u64,
}

impl<'a> Consumer<'a> {
    pub fn new(count: Option<u64>, json: bool, out: &'a mut dyn Write) -> Self {
        Self {
            count,
            json,
            out,
            seen: 0,
        }
    }

    /// Handles one tick; `Some` says the loop is done.
    pub fn tick(&mut self, tick: &Tick) -> anyhow::Result<Option<End>> {
        if self.json {
            match json::write_tick(self.out, tick) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                    return Ok(Some(End::OutputClosed));
                }
                Err(e) => return Err(e).context("writing samples to stdout"),
            }
        }
        self.seen += 1;
        Ok(self
            .count
            .is_some_and(|n| self.seen >= n)
            .then_some(End::CountReached))
    }
}

/// Runs the engine on the calling thread until the consumer is done or a
/// [`Command::Stop`] arrives (see [`stop_on_signals`]).
pub fn run(
    engine: &mut Engine,
    interval: Duration,
    commands: &Receiver<Command>,
    consumer: &mut Consumer<'_>,
) -> anyhow::Result<End> {
    let mut end = Ok(End::Signalled);
    engine.run(interval, commands, &mut |report| match report {
        Report::Tick(tick) => match consumer.tick(&tick) {
            Ok(None) => true,
            Ok(Some(e)) => {
                end = Ok(e);
                false
            }
            Err(e) => {
                end = Err(e);
                false
            }
        },
        // Headless sends no attach or detach commands.
        Report::Done(_) => true,
    });
    end
}

/// Sends [`Command::Stop`] to `tx` on SIGTERM, SIGINT or SIGHUP (a daemon
/// is stopped, not killed). A thread blocked on the signal pipe delivers
/// it, so the sampling loop needs no polling.
pub fn stop_on_signals(tx: Sender<Command>) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])
        .context("installing the handlers for SIGTERM, SIGINT and SIGHUP")?;
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                log::debug!("signal {sig}: stopping");
                if tx.send(Command::Stop).is_err() {
                    break;
                }
            }
        })
        .context("starting the signal thread")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use std::sync::mpsc;

    use super::*;
    use crate::{
        engine::tests::{Recorder, engine_with},
        sample::{Mode, Reading},
        sampler::{FakeSource, Sampler},
    };

    fn sampler(n: u64) -> Sampler {
        let readings = (0..=n)
            .map(|i| {
                Ok(Reading {
                    packets: i * 10,
                    bytes: i * 1000,
                    epoch: 1,
                    detail: None,
                    actions: None,
                    run: None,
                })
            })
            .collect();
        Sampler::new(vec![Box::new(FakeSource {
            name: "veth0".into(),
            mode: Mode::Skb,
            readings,
        })])
    }

    /// `n` ticks one second apart (synthetic clocks: exact rates).
    fn ticks(n: u64) -> Vec<Tick> {
        let mut s = sampler(n);
        s.sample(0, 0);
        (1..=n)
            .map(|i| s.sample(i * 1_000_000_000, i * 1_000_000_000))
            .collect()
    }

    fn lines(out: Vec<u8>) -> Vec<Value> {
        String::from_utf8(out)
            .expect("utf8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
            .collect()
    }

    /// An engine over `sampler(n)` whose outputs record what they got.
    fn engine(n: u64) -> (Engine, Recorder) {
        let recorder = Recorder::default();
        (engine_with(sampler(n), &recorder), recorder)
    }

    #[test]
    fn json_lines_have_the_contract_fields() {
        let mut out = Vec::new();
        let ends: Vec<_> = {
            let mut c = Consumer::new(Some(2), true, &mut out);
            ticks(3).iter().map(|t| c.tick(t).expect("tick")).collect()
        };
        assert_eq!(
            ends,
            [None, Some(End::CountReached), Some(End::CountReached)]
        );
        let lines = lines(out);
        let first = &lines[0];
        assert_eq!(first["time_unix_nano"], 1_000_000_000u64);
        assert_eq!(first["interface"], "veth0");
        assert_eq!(first["packets"], 10);
        assert_eq!(first["bytes"], 1000);
        assert_eq!(first["pps"], 10.0);
        assert_eq!(first["bps"], 8000.0);
        assert_eq!(first["mode"], "skb");
        assert_eq!(first["health"]["state"], "ok");
    }

    #[test]
    fn the_loop_samples_until_the_count() {
        let mut out = Vec::new();
        let (mut engine, recorder) = engine(10);
        let (_keep, stop) = mpsc::channel();
        let end = {
            let mut c = Consumer::new(Some(3), true, &mut out);
            run(&mut engine, Duration::from_millis(1), &stop, &mut c).expect("run")
        };
        assert_eq!(end, End::CountReached);
        assert_eq!(recorder.ticks(), [1, 2, 3], "each tick exported once");
        let packets: Vec<_> = lines(out).iter().map(|l| l["packets"].clone()).collect();
        assert_eq!(packets, [10, 20, 30], "the baseline read is not printed");
    }

    #[test]
    fn a_stop_message_ends_the_loop() {
        let (tx, stop) = mpsc::channel();
        tx.send(Command::Stop).expect("send");
        let (mut engine, recorder) = engine(10);
        let mut out = Vec::new();
        let mut c = Consumer::new(None, true, &mut out);
        // Short: a stop that went unheard shows at the first tick, not in an hour.
        let end = run(&mut engine, Duration::from_millis(50), &stop, &mut c).expect("run");
        assert_eq!(end, End::Signalled);
        assert!(recorder.ticks().is_empty(), "no tick after the stop");
        assert!(out.is_empty(), "no line after the stop");
    }

    #[test]
    fn a_closed_stdout_is_a_clean_end() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let (_keep, stop) = mpsc::channel();
        let (mut engine, _) = engine(10);
        let mut closed = Closed;
        let mut c = Consumer::new(None, true, &mut closed);
        let end = run(&mut engine, Duration::from_millis(1), &stop, &mut c).expect("run");
        assert_eq!(end, End::OutputClosed);
    }
}
