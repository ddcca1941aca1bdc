//! The headless loop: print samples as JSON lines (flushed one by one) until
//! `--count` is reached or a signal asks to stop.

use std::{
    io::{self, Write},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc::{Receiver, RecvTimeoutError},
    },
    time::Duration,
};

use anyhow::Context as _;

use crate::sampler::Tick;

/// How often the loop looks at the stop flag while waiting for a tick.
const POLL: Duration = Duration::from_millis(100);

/// Why the loop ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    CountReached,
    Signalled,
    /// The reader of stdout went away (e.g. `| head -1`).
    OutputClosed,
    SamplerStopped,
}

/// Consumes ticks; `on_tick` runs for each (exporters), `out` gets JSON lines
/// when `json` is set.
pub fn run(
    ticks: &Receiver<Tick>,
    stop: &AtomicBool,
    count: Option<u64>,
    json: bool,
    out: &mut dyn Write,
    on_tick: &mut dyn FnMut(&Tick),
) -> anyhow::Result<End> {
    let mut seen = 0u64;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(End::Signalled);
        }
        let tick = match ticks.recv_timeout(POLL) {
            Ok(t) => t,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return Ok(End::SamplerStopped),
        };
        on_tick(&tick);
        if json {
            match write_json(out, &tick) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(End::OutputClosed),
                Err(e) => return Err(e).context("writing samples to stdout"),
            }
        }
        seen += 1;
        if count.is_some_and(|n| seen >= n) {
            return Ok(End::CountReached);
        }
    }
}

fn write_json(out: &mut dyn Write, tick: &Tick) -> io::Result<()> {
    for sample in &tick.samples {
        serde_json::to_writer(&mut *out, sample)?;
        out.write_all(b"\n")?;
    }
    // One flush per tick: a script reading line by line sees it at once.
    out.flush()
}

/// Sets a flag on SIGTERM, SIGINT and SIGHUP (a daemon is stopped, not killed).
pub fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, Arc::clone(&flag))
            .with_context(|| format!("installing the handler for signal {sig}"))?;
    }
    Ok(flag)
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use serde_json::Value;

    use super::*;
    use crate::sample::{Mode, Reading};
    use crate::sampler::{FakeSource, Sampler};

    fn ticks(n: u64) -> Receiver<Tick> {
        let readings = (0..=n)
            .map(|i| {
                Ok(Reading {
                    packets: i * 10,
                    bytes: i * 1000,
                    epoch: 1,
                    detail: None,
                })
            })
            .collect();
        let mut s = Sampler::new(vec![Box::new(FakeSource {
            name: "veth0".into(),
            mode: Mode::Skb,
            readings,
        })]);
        let (tx, rx) = mpsc::channel();
        s.sample(0, 0);
        for i in 1..=n {
            tx.send(s.sample(i * 1_000_000_000, i * 1_000_000_000))
                .expect("send");
        }
        rx
    }

    fn run_sync(rx: &Receiver<Tick>, count: Option<u64>) -> (End, Vec<Value>, u64) {
        let stop = AtomicBool::new(false);
        let mut out = Vec::new();
        let mut exported = 0;
        let end = run(rx, &stop, count, true, &mut out, &mut |_| exported += 1).expect("run");
        let lines = String::from_utf8(out).expect("utf8");
        let values = lines
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
            .collect();
        (end, values, exported)
    }

    #[test]
    fn json_lines_have_the_contract_fields() {
        let rx = ticks(3);
        let (end, lines, exported) = run_sync(&rx, Some(2));
        assert_eq!(end, End::CountReached);
        assert_eq!((lines.len(), exported), (2, 2));
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
    fn ends_when_the_sampler_stops() {
        let rx = ticks(2);
        let (end, lines, _) = run_sync(&rx, None);
        assert_eq!((end, lines.len()), (End::SamplerStopped, 2));
    }

    #[test]
    fn a_set_stop_flag_ends_the_loop() {
        let rx = ticks(2);
        let stop = AtomicBool::new(true);
        let end = run(&rx, &stop, None, true, &mut Vec::new(), &mut |_| {}).expect("run");
        assert_eq!(end, End::Signalled);
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
        let rx = ticks(1);
        let stop = AtomicBool::new(false);
        let end = run(&rx, &stop, None, true, &mut Closed, &mut |_| {}).expect("run");
        assert_eq!(end, End::OutputClosed);
    }
}
