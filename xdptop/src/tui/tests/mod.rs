//! Tests of the dashboard as a whole: keys and actions against a fake
//! `Control`, and snapshots of the screen fed by a fake sample source.

mod fixture;
mod keys;
mod screens;
mod talkers;

use std::time::Instant;

use ratatui::{
    Terminal,
    backend::TestBackend,
    crossterm::event::{KeyCode, KeyEvent},
};

use crate::tui::{App, ui};

/// The real UI drawn into a test terminal of `width` × `height`.
fn draw(app: &App, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal.draw(|f| ui::draw(f, app)).expect("draw");
    terminal
}

/// The screen [`draw`] makes, as text.
fn screen(app: &App, width: u16, height: u16) -> String {
    draw(app, width, height).backend().to_string()
}

fn press(app: &mut App, code: KeyCode) {
    let _ = app.handle_key(KeyEvent::from(code), Instant::now());
}
