//! The terminal side: checking there is one, entering and always leaving raw
//! mode, the input thread, and the event loop that owns the `App`.

use std::{
    io::IsTerminal as _,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc::{Receiver, RecvTimeoutError, Sender},
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use ratatui::{DefaultTerminal, crossterm::event};

use super::{App, Control, Event, Options, handle_event, ui};

/// How often the input thread looks at the stop and signal flags.
const INPUT_POLL: Duration = Duration::from_millis(100);
/// Longest sleep of the UI thread with nothing to do; it only redraws when
/// something changed, so this costs nothing visible.
const IDLE_WAKE: Duration = Duration::from_secs(1);

/// Fails unless stdin and stdout are both terminals, pointing to headless.
pub fn ensure_terminal() -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        bail!(
            "xdptop's dashboard needs a terminal; use --headless (with --json or --otlp) for scripts and services"
        );
    }
    Ok(())
}

/// Leaves raw mode and the alternate screen however `run` ends. A panic is
/// covered by the hook `ratatui::try_init` installs.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// SIGINT, SIGTERM and SIGHUP set a flag instead of killing the process, so
/// the terminal is restored; the default actions come back on drop.
struct Signals(Vec<signal_hook::SigId>);

impl Signals {
    fn register(flag: &Arc<AtomicBool>) -> anyhow::Result<Self> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let mut ids = Signals(Vec::new());
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            let id = signal_hook::flag::register(sig, Arc::clone(flag))
                .context("installing signal handlers")?;
            ids.0.push(id);
        }
        Ok(ids)
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for id in self.0.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

/// Runs the dashboard until the user quits or an [`Event::Quit`] arrives.
///
/// The caller creates the channel (`std::sync::mpsc::channel()`), keeps
/// clones of `events_tx` for its sampler and exporter (sending
/// [`Event::Tick`] and [`Event::Export`]), and passes both ends here;
/// `run` uses `events_tx` for its input thread. SIGINT, SIGTERM and SIGHUP
/// end the dashboard cleanly while it runs. Returns after the terminal is
/// restored; quitting leaves the attachments in place.
pub fn run(
    options: Options,
    events: Receiver<Event>,
    events_tx: Sender<Event>,
    control: &mut dyn Control,
) -> anyhow::Result<()> {
    ensure_terminal()?;
    let mut app = App::new(options.host, options.interval, &options.interfaces)
        .with_talkers(options.talkers)
        .with_talkers_on_demand(options.talkers_on_demand);
    app.run_time_unknown = options.run_time_unknown;

    let stop = Arc::new(AtomicBool::new(false));
    let signalled = Arc::new(AtomicBool::new(false));
    let _signals = Signals::register(&signalled)?;
    let input = spawn_input(events_tx, Arc::clone(&stop), signalled)?;

    let result = (|| {
        // Before init: a half-done init (raw mode on, no alternate screen)
        // is undone too.
        let _restore = Restore;
        let mut terminal = ratatui::try_init().context("setting up the terminal")?;
        event_loop(&mut terminal, &mut app, &events, control)
    })();

    stop.store(true, Ordering::Relaxed);
    // The input thread wakes within INPUT_POLL; joining keeps it from
    // reading keys meant for the shell.
    let _ = input.join();
    result
}

fn spawn_input(
    tx: Sender<Event>,
    stop: Arc<AtomicBool>,
    signalled: Arc<AtomicBool>,
) -> anyhow::Result<thread::JoinHandle<()>> {
    thread::Builder::new()
        .name("tui-input".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if signalled.swap(false, Ordering::Relaxed) {
                    let _ = tx.send(Event::Quit);
                }
                let ev = match event::poll(INPUT_POLL) {
                    Ok(true) => event::read().map(Event::Input),
                    Ok(false) => continue,
                    Err(e) => Err(e),
                };
                match ev {
                    Ok(ev) => {
                        if tx.send(ev).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        log::error!("reading the terminal: {e}");
                        let _ = tx.send(Event::Quit);
                        return;
                    }
                }
            }
        })
        .context("spawning the input thread")
}

fn event_loop(
    terminal: &mut DefaultTerminal,
    app: &mut App,
    events: &Receiver<Event>,
    control: &mut dyn Control,
) -> anyhow::Result<()> {
    let mut dirty = true;
    loop {
        if dirty {
            terminal
                .draw(|f| ui::draw(f, app))
                .context("drawing the dashboard")?;
            dirty = false;
        }
        let now = Instant::now();
        let wait = app
            .next_deadline()
            .map_or(IDLE_WAKE, |d| d.saturating_duration_since(now))
            .min(IDLE_WAKE);
        match events.recv_timeout(wait) {
            Ok(first) => {
                // Apply everything queued before drawing once, so a burst
                // of keys or ticks never lags behind.
                let mut next = Some(first);
                while let Some(ev) = next {
                    if !handle_event(app, ev, control, Instant::now()) {
                        return Ok(());
                    }
                    next = events.try_recv().ok();
                }
                dirty = true;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        }
        dirty |= app.expire(Instant::now());
    }
}
