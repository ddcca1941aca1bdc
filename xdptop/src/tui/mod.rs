//! The terminal dashboard. The UI thread alone owns [`App`] and draws it;
//! everything else reaches it as an [`Event`] on one channel: keys from an
//! input thread, [`Tick`]s from the sampler, [`ExportStatus`] from the
//! exporter. Kernel actions go back out through the caller's [`Control`].
//!
//! ```text
//! sampler ──Tick──────┐
//! exporter ─Export────┼──> Receiver<Event> ──> run(): App ──draw──> terminal
//! input thread ─Input─┘                           │
//!                                                 └──> Control (detach/attach)
//! ```
//!
//! Wiring it up (the sampler sends `Tick`s on its own channel; forward
//! them, and give the exporter a clone of the sender too):
//!
//! ```no_run
//! # use std::{sync::mpsc, thread, time::Duration};
//! # use xdptop::{sample::Mode, sampler::{self, Sampler}, tui};
//! # struct Kernel;
//! # impl tui::Control for Kernel {
//! #     fn detach(&mut self, _: &str) -> anyhow::Result<()> { Ok(()) }
//! #     fn attach(&mut self, _: &str) -> anyhow::Result<Mode> { Ok(Mode::Native) }
//! # }
//! # fn main() -> anyhow::Result<()> {
//! let interval = Duration::from_secs(1);
//! let (events_tx, events) = mpsc::channel();
//! let (ticks_tx, ticks) = mpsc::sync_channel(4);
//! let (_sampler, _stop) = sampler::spawn(Sampler::new(vec![]), interval, ticks_tx);
//! let tx = events_tx.clone();
//! thread::spawn(move || {
//!     for tick in ticks {
//!         if tx.send(tui::Event::Tick(tick)).is_err() {
//!             break;
//!         }
//!     }
//! });
//! let options = tui::Options {
//!     host: tui::hostname(),
//!     interval,
//!     interfaces: vec!["eth0".into()],
//! };
//! tui::run(options, events, events_tx, &mut Kernel)?;
//! # Ok(())
//! # }
//! ```

pub mod app;
pub mod model;
mod render;
mod terminal;
pub mod ui;

#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

pub use app::{App, Command};
pub use model::history_len;
pub use terminal::{ensure_terminal, hostname, run};

use crate::{sample::Mode, sampler::Tick, status::ExportStatus};

/// Everything the dashboard reacts to, in arrival order.
#[derive(Debug)]
pub enum Event {
    /// A terminal event (key, resize); sent by `run`'s own input thread.
    Input(ratatui::crossterm::event::Event),
    /// A sampling instant: one sample per interface.
    Tick(Tick),
    /// The exporter's latest state, shown in the header.
    Export(ExportStatus),
    /// Leave the dashboard (sent on SIGINT/SIGTERM/SIGHUP, or by the caller,
    /// e.g. when the sampler ends).
    Quit,
}

/// What `run` needs to know; the caller resolves it (no I/O in the UI).
#[derive(Clone, Debug)]
pub struct Options {
    /// Shown in the header; see [`hostname`].
    pub host: String,
    /// The sampling interval, shown in the header and sizing the history.
    pub interval: Duration,
    /// Rows in order, shown before the first sample arrives.
    pub interfaces: Vec<String>,
}

/// Kernel-side actions the dashboard asks for; implemented by the caller.
pub trait Control {
    /// Detach xdptop from the interface (after the user confirmed).
    fn detach(&mut self, interface: &str) -> anyhow::Result<()>;
    /// Attach again; returns the mode it got.
    fn attach(&mut self, interface: &str) -> anyhow::Result<Mode>;
    /// Operator reset of the view (for exporting an event); no kernel change.
    fn view_reset(&mut self) {}
}

/// Carries out a [`Command`] from a key and records its outcome in `app`.
/// Returns false when the dashboard should end.
pub fn perform(app: &mut App, command: Command, control: &mut dyn Control, now: Instant) -> bool {
    match command {
        Command::Quit => return false,
        Command::Detach(name) => {
            let result = control.detach(&name);
            app.detach_done(&name, result, now);
        }
        Command::Attach(name) => {
            let result = control.attach(&name);
            app.attach_done(&name, result, now);
        }
        Command::ViewReset => control.view_reset(),
    }
    true
}

/// Applies one event to `app`. Returns false when the dashboard should end.
pub fn handle_event(app: &mut App, event: Event, control: &mut dyn Control, now: Instant) -> bool {
    use ratatui::crossterm::event::Event as Term;
    match event {
        Event::Input(Term::Key(key)) => match app.handle_key(key, now) {
            Some(command) => perform(app, command, control, now),
            None => true,
        },
        // Resizes and anything else only need a redraw.
        Event::Input(_) => true,
        Event::Tick(tick) => {
            app.on_tick(tick);
            true
        }
        Event::Export(status) => {
            app.on_export(status);
            true
        }
        Event::Quit => false,
    }
}
