//! The dashboard's state and what keys do to it. `App` is owned by the UI
//! thread alone; it is fed Ticks and exporter status, and turns keys into
//! state changes plus, for kernel actions, a [`Command`] for the caller.

use std::{
    net::IpAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::{
    iface_stats::{IfaceStats, history_len},
    talkers::{self, SortBy},
};
use crate::{
    format::RateUnit,
    sample::{Health, Mode},
    sampler::Tick,
    status::ExportStatus,
};

/// How long a footer message stays.
pub const MESSAGE_TTL: Duration = Duration::from_secs(5);

/// Which screen is shown under any overlay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    Overview,
    Detail,
    /// The selected interface's top talkers (`t`).
    Talkers,
}

/// A box drawn over the view that takes the keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Overlay {
    Help,
    /// Asking whether to detach from the interface at this row.
    ConfirmDetach(usize),
}

/// Something the caller must do, because it touches the kernel or the
/// outside world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Quit,
    /// The user confirmed: detach xdptop from this interface.
    Detach(String),
    Attach(String),
    /// The view was reset (already done in `App`); tell the exporters.
    ViewReset,
    /// Switch talker counting on or off (the talkers view opened or closed,
    /// without `--talkers`).
    Talkers {
        interface: String,
        on: bool,
    },
}

/// A transient line in the footer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub text: String,
    pub error: bool,
    pub until: Instant,
}

pub struct App {
    pub host: String,
    pub interval: Duration,
    live: Vec<IfaceStats>,
    /// The view as it was when paused; samples keep updating `live`.
    frozen: Option<Vec<IfaceStats>>,
    /// Rows the user detached (and has not attached again).
    detached: Vec<bool>,
    pub selected: usize,
    pub view: View,
    pub overlay: Option<Overlay>,
    pub unit: RateUnit,
    pub export: Option<ExportStatus>,
    pub message: Option<Message>,
    pub ticks: u64,
    /// Whether the user reset the view since start (for wording).
    pub was_reset: bool,
    /// See [`crate::tui::Options::run_time_unknown`].
    pub run_time_unknown: Option<&'static str>,
    history: usize,
    /// `--talkers N`: how many talkers the samples list; `None`: not counted.
    pub talkers_top: Option<usize>,
    /// How the talkers view orders its lists (`s`).
    pub talker_sort: SortBy,
    /// The source selected in the talkers view (`None`: the top one).
    pub talker_selected: Option<IpAddr>,
    /// Without `--talkers`: the talkers view switches counting on while it
    /// is open, and the samples then list this many.
    pub talkers_on_demand: Option<usize>,
    /// The interface the talkers view switched counting on for.
    pub talkers_counting: Option<String>,
    /// Why switching counting on failed: interface, error.
    pub talkers_error: Option<(String, String)>,
}

impl App {
    /// `interfaces` gives the rows in order, before any sample arrives.
    pub fn new(host: impl Into<String>, interval: Duration, interfaces: &[String]) -> Self {
        let history = history_len(interval);
        let live = interfaces
            .iter()
            .map(|name| IfaceStats::new(Arc::from(name.as_str()), history))
            .collect::<Vec<_>>();
        Self {
            host: host.into(),
            interval,
            detached: vec![false; live.len()],
            live,
            frozen: None,
            selected: 0,
            view: View::Overview,
            overlay: None,
            unit: RateUnit::Bits,
            export: None,
            message: None,
            ticks: 0,
            run_time_unknown: None,
            was_reset: false,
            history,
            talkers_top: None,
            talker_sort: SortBy::default(),
            talker_selected: None,
            talkers_on_demand: None,
            talkers_counting: None,
            talkers_error: None,
        }
    }

    /// Without `--talkers`: `t` switches counting on while the view is open.
    pub fn with_talkers_on_demand(mut self, top: Option<usize>) -> Self {
        self.talkers_on_demand = top;
        self
    }

    /// How many talkers the samples list, when they are counted.
    pub fn talkers_listed(&self) -> Option<usize> {
        self.talkers_top.or(self.talkers_on_demand)
    }

    /// Talkers are counted: the samples list the `top` heaviest.
    pub fn with_talkers(mut self, top: Option<usize>) -> Self {
        self.talkers_top = top;
        self
    }

    /// The selected row's talkers in view order, if its sample has them.
    pub fn sorted_talkers(&self) -> Option<Vec<&crate::talkers::Talker>> {
        let t = self.selected_row()?.last.as_ref()?.talkers.as_ref()?;
        Some(talkers::sorted_sources(t, self.talker_sort))
    }

    /// The rows to draw: frozen while paused, live otherwise.
    pub fn rows(&self) -> &[IfaceStats] {
        self.frozen.as_deref().unwrap_or(&self.live)
    }

    pub fn selected_row(&self) -> Option<&IfaceStats> {
        self.rows().get(self.selected)
    }

    /// "since start (39s)" or "since reset (12s)": what the totals cover.
    pub fn session_label(&self) -> String {
        let secs = self
            .rows()
            .iter()
            .map(|r| r.session_secs)
            .fold(0.0, f64::max);
        let since = if self.was_reset { "reset" } else { "start" };
        format!("since {since} ({})", crate::format::span(secs))
    }

    pub fn paused(&self) -> bool {
        self.frozen.is_some()
    }

    pub fn is_detached(&self, row: usize) -> bool {
        self.detached.get(row).copied().unwrap_or(false)
    }

    /// Takes in a sampling instant. Interfaces not named at start get a row.
    pub fn on_tick(&mut self, tick: Tick) {
        self.ticks = self.ticks.saturating_add(1);
        for sample in tick.samples {
            let row = match self.live.iter().position(|r| r.name == sample.interface) {
                Some(i) => i,
                None => {
                    self.live
                        .push(IfaceStats::new(Arc::clone(&sample.interface), self.history));
                    self.detached.push(false);
                    self.live.len() - 1
                }
            };
            self.live[row].update(sample);
        }
    }

    pub fn on_export(&mut self, status: ExportStatus) {
        self.export = Some(status);
    }

    /// Drops an expired message; true if the screen changed.
    pub fn expire(&mut self, now: Instant) -> bool {
        if self.message.as_ref().is_some_and(|m| now >= m.until) {
            self.message = None;
            return true;
        }
        false
    }

    /// When the current message expires, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.message.as_ref().map(|m| m.until)
    }

    pub fn say(&mut self, text: impl Into<String>, error: bool, now: Instant) {
        self.message = Some(Message {
            text: text.into(),
            error,
            until: now + MESSAGE_TTL,
        });
    }

    /// Resets the view (totals, peaks, history); kernel counters untouched.
    pub fn reset_view(&mut self) {
        for row in &mut self.live {
            row.reset_view();
        }
        self.was_reset = true;
        if self.frozen.is_some() {
            self.frozen = Some(self.live.clone());
        }
    }

    /// Handles one key. State changes happen here; kernel actions come back
    /// as a [`Command`].
    pub fn handle_key(&mut self, key: KeyEvent, now: Instant) -> Option<Command> {
        if key.kind != KeyEventKind::Press {
            return None;
        }
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Some(Command::Quit);
        }
        match self.overlay.clone() {
            Some(Overlay::Help) => {
                match key.code {
                    KeyCode::Char('q') => return Some(Command::Quit),
                    KeyCode::Esc | KeyCode::Char('?') | KeyCode::Enter => self.overlay = None,
                    _ => {}
                }
                None
            }
            Some(Overlay::ConfirmDetach(row)) => self.confirm_key(key.code, row, now),
            None => self.view_key(key.code, now),
        }
    }

    fn confirm_key(&mut self, code: KeyCode, row: usize, now: Instant) -> Option<Command> {
        match code {
            KeyCode::Char('y' | 'Y') => {
                self.overlay = None;
                let name = self.live.get(row)?.name.to_string();
                Some(Command::Detach(name))
            }
            KeyCode::Char('n' | 'N' | 'q') | KeyCode::Esc => {
                self.overlay = None;
                self.say("detach cancelled", false, now);
                None
            }
            _ => None,
        }
    }

    /// Keys of the talkers view; false if `code` is not one of them.
    fn talkers_key(&mut self, code: KeyCode) -> bool {
        let step = match code {
            KeyCode::Down | KeyCode::Char('j') => 1,
            KeyCode::Up | KeyCode::Char('k') => -1,
            KeyCode::Home | KeyCode::Char('g') => isize::MIN,
            KeyCode::End | KeyCode::Char('G') => isize::MAX,
            KeyCode::Char('s') => {
                self.talker_sort = self.talker_sort.next();
                return true;
            }
            _ => return false,
        };
        if let Some(list) = self.sorted_talkers() {
            let moved = talkers::step(&list, self.talker_selected, step);
            self.talker_selected = moved;
        }
        true
    }

    fn view_key(&mut self, code: KeyCode, now: Instant) -> Option<Command> {
        let was = self.view;
        let command = self.view_key_inner(code, now);
        if was == View::Talkers
            && self.view != View::Talkers
            && let Some(interface) = self.talkers_counting.take()
        {
            // Leaving the view ends counting; a quit ends it with the process.
            return command.or(Some(Command::Talkers {
                interface,
                on: false,
            }));
        }
        command
    }

    /// Opens the talkers view of the selected interface; without
    /// `--talkers`, asks for counting to be switched on there.
    fn open_talkers(&mut self) -> Option<Command> {
        self.view = View::Talkers;
        self.talker_selected = None;
        self.talkers_on_demand?;
        let row = self.selected;
        let name = self.live.get(row)?.name.to_string();
        if self.is_detached(row) || self.mode_of(row) == Some(Mode::ReadOnly) {
            return None;
        }
        self.talkers_error = None;
        self.talkers_counting = Some(name.clone());
        Some(Command::Talkers {
            interface: name,
            on: true,
        })
    }

    fn view_key_inner(&mut self, code: KeyCode, now: Instant) -> Option<Command> {
        if self.view == View::Talkers && self.talkers_key(code) {
            return None;
        }
        // Rows shown, not rows known: while paused, new interfaces wait.
        let last = self.rows().len().saturating_sub(1);
        match code {
            KeyCode::Char('q') => return Some(Command::Quit),
            KeyCode::Char('?') => self.overlay = Some(Overlay::Help),
            KeyCode::Esc => self.view = View::Overview,
            KeyCode::Char('t') if self.view == View::Talkers => self.view = View::Overview,
            KeyCode::Char('t') if !self.rows().is_empty() => return self.open_talkers(),
            KeyCode::Enter if !self.rows().is_empty() => self.view = View::Detail,
            KeyCode::Down | KeyCode::Char('j') => {
                self.selected = (self.selected + 1).min(last);
            }
            KeyCode::Up | KeyCode::Char('k') => self.selected = self.selected.saturating_sub(1),
            KeyCode::Home | KeyCode::Char('g') => self.selected = 0,
            KeyCode::End | KeyCode::Char('G') => self.selected = last,
            KeyCode::Char('p' | ' ') => {
                self.frozen = match self.frozen {
                    Some(_) => None,
                    None => Some(self.live.clone()),
                };
                self.selected = self.selected.min(self.rows().len().saturating_sub(1));
            }
            KeyCode::Char('u') => self.unit = self.unit.toggle(),
            KeyCode::Char('r') => {
                self.reset_view();
                self.say(
                    "view reset: totals, peaks and history cleared (kernel counters untouched)",
                    false,
                    now,
                );
                return Some(Command::ViewReset);
            }
            KeyCode::Char('d') => self.ask_detach(now),
            KeyCode::Char('a') => return self.attach(now),
            _ => {}
        }
        None
    }

    fn mode_of(&self, row: usize) -> Option<Mode> {
        self.live.get(row)?.last.as_ref().map(|s| s.mode)
    }

    fn ask_detach(&mut self, now: Instant) {
        let Some(name) = self.live.get(self.selected).map(|r| r.name.clone()) else {
            return;
        };
        if self.is_detached(self.selected) {
            self.say(
                format!("{name} is already detached (a attaches again)"),
                false,
                now,
            );
        } else if self.mode_of(self.selected) == Some(Mode::ReadOnly) {
            self.say(
                format!("{name} runs another loader's program: xdptop has nothing to detach"),
                true,
                now,
            );
        } else {
            self.overlay = Some(Overlay::ConfirmDetach(self.selected));
        }
    }

    fn attach(&mut self, now: Instant) -> Option<Command> {
        let row = self.live.get(self.selected)?;
        let name = row.name.to_string();
        let lost = matches!(
            row.last.as_ref().map(|s| &s.health),
            Some(Health::Lost { .. })
        );
        if self.mode_of(self.selected) == Some(Mode::ReadOnly) && !self.is_detached(self.selected) {
            self.say(
                format!("{name} runs another loader's program: xdptop does not replace it"),
                true,
                now,
            );
            return None;
        }
        if !self.is_detached(self.selected) && !lost {
            self.say(format!("{name} is already attached"), false, now);
            return None;
        }
        Some(Command::Attach(name))
    }

    fn row_of(&self, interface: &str) -> Option<usize> {
        self.live.iter().position(|r| &*r.name == interface)
    }

    /// Records the outcome of a confirmed detach.
    pub fn detach_done(&mut self, interface: &str, result: anyhow::Result<()>, now: Instant) {
        match result {
            Ok(()) => {
                if let Some(row) = self.row_of(interface) {
                    self.detached[row] = true;
                }
                self.say(
                    format!("detached xdptop from {interface} (a attaches again)"),
                    false,
                    now,
                );
            }
            Err(e) => self.say(format!("detach {interface} failed: {e:#}"), true, now),
        }
    }

    /// Records the outcome of switching talker counting.
    pub fn talkers_done(
        &mut self,
        interface: &str,
        on: bool,
        result: anyhow::Result<u32>,
        now: Instant,
    ) {
        match result {
            Ok(_) => {}
            Err(e) => {
                let what = if on { "on" } else { "off" };
                let text = format!("{e:#}");
                self.say(
                    format!("switching talker counting {what} for {interface} failed: {text}"),
                    true,
                    now,
                );
                if on {
                    if self.talkers_counting.as_deref() == Some(interface) {
                        self.talkers_counting = None;
                    }
                    self.talkers_error = Some((interface.to_owned(), text));
                }
            }
        }
    }

    /// Records the outcome of an attach.
    pub fn attach_done(&mut self, interface: &str, result: anyhow::Result<Mode>, now: Instant) {
        match result {
            Ok(mode) => {
                if let Some(row) = self.row_of(interface) {
                    self.detached[row] = false;
                }
                self.say(
                    format!("attached xdptop to {interface} ({})", mode.as_str()),
                    false,
                    now,
                );
            }
            Err(e) => self.say(format!("attach {interface} failed: {e:#}"), true, now),
        }
    }
}
