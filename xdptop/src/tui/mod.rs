//! The terminal dashboard. The UI thread alone owns [`App`] and draws it;
//! everything else reaches it as an [`Event`] on one channel: keys from an
//! input thread, [`Tick`]s and command outcomes from the sampling thread
//! (the engine), [`ExportStatus`] from the exporter. Kernel actions go back
//! out as requests through the caller's [`Control`]; their outcomes arrive
//! later as [`Event::Done`], so the keys stay responsive meanwhile.
//!
//! ```text
//! engine ──Tick, Done─┐
//! exporter ─Export────┼──> Receiver<Event> ──> run(): App ──draw──> terminal
//! input thread ─Input─┘                           │
//!                                                 └──> Control (attach/detach/reset requests)
//! ```
//!
//! `session::run_dashboard` wires it to the engine; the tests drive
//! [`handle_event`] directly.

pub mod app;
pub mod iface_stats;
mod render;
pub mod talkers;
mod terminal;
pub mod ui;

#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

pub use app::{App, Command};
pub use iface_stats::history_len;
pub use terminal::{ensure_terminal, run};

use crate::{engine::Outcome, sampler::Tick, status::ExportStatus};

/// Everything the dashboard reacts to, in arrival order.
#[derive(Debug)]
pub enum Event {
    /// A terminal event (key, resize); sent by `run`'s own input thread.
    Input(ratatui::crossterm::event::Event),
    /// A sampling instant: one sample per interface.
    Tick(Tick),
    /// How a requested attach or detach ended.
    Done(Outcome),
    /// The exporter's latest state, shown in the header.
    Export(ExportStatus),
    /// Leave the dashboard (sent on SIGINT/SIGTERM/SIGHUP, or by the caller,
    /// e.g. when the sampler ends).
    Quit,
}

/// What `run` needs to know; the caller resolves it (no I/O in the UI).
#[derive(Clone, Debug)]
pub struct Options {
    /// Shown in the header; see [`crate::host::name`].
    pub host: String,
    /// The sampling interval, shown in the header and sizing the history.
    pub interval: Duration,
    /// Rows in order, shown before the first sample arrives.
    pub interfaces: Vec<String>,
    /// Why no run time per packet can be known this run, in a few words
    /// ("needs CAP_SYS_ADMIN"), shown where the figure would be.
    pub run_time_unknown: Option<&'static str>,
    /// `--talkers N`: the samples list the N heaviest talkers.
    pub talkers: Option<usize>,
    /// Without `--talkers`: the talkers view switches counting on while it
    /// is open (a [`Control::talkers`] request), and lists this many.
    pub talkers_on_demand: Option<usize>,
}

/// Kernel-side actions the dashboard asks for; implemented by the caller.
/// Requests only: each returns at once, and an attach or detach reports
/// back as [`Event::Done`].
pub trait Control {
    /// Detach xdptop from the interface (after the user confirmed).
    fn detach(&mut self, interface: &str);
    /// Attach again.
    fn attach(&mut self, interface: &str);
    /// Operator reset of the view (for exporting an event); no kernel change.
    fn view_reset(&mut self) {}
    /// Switch talker counting on or off for the interface; reports back as
    /// [`Event::Done`].
    fn talkers(&mut self, interface: &str, on: bool);
}

/// Carries out a [`Command`] from a key and records its outcome in `app`.
/// Returns false when the dashboard should end.
pub fn perform(app: &mut App, command: Command, control: &mut dyn Control, now: Instant) -> bool {
    match command {
        Command::Quit => return false,
        Command::Detach(name) => {
            control.detach(&name);
            app.say(format!("detaching xdptop from {name}..."), false, now);
        }
        Command::Attach(name) => {
            control.attach(&name);
            app.say(format!("attaching xdptop to {name}..."), false, now);
        }
        Command::ViewReset => control.view_reset(),
        Command::Talkers { interface, on } => control.talkers(&interface, on),
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
        Event::Done(Outcome::Attached { interface, result }) => {
            app.attach_done(&interface, result, now);
            true
        }
        Event::Done(Outcome::Detached { interface, result }) => {
            app.detach_done(&interface, result, now);
            true
        }
        Event::Done(Outcome::Talkers {
            interface,
            on,
            result,
        }) => {
            app.talkers_done(&interface, on, result, now);
            true
        }
        Event::Quit => false,
    }
}
