//! Top-level layout. Drawing is a pure function of `&App`: no I/O, no
//! clock, no state changes, so the same state always gives the same screen.
//!
//! ```text
//! ┌──────────────────────────────────────────────────────────────────────┐
//! │ xdptop  host lab-1  every 1s  2 interfaces  bit/s          PAUSED    │ header
//! │ export otlp grpc http://…:4317  ok  1.20 k sent  0 dropped           │ (if any)
//! │┌ Interfaces · totals since view reset ──────────────────────────────┐│
//! ││ IFACE MODE    PPS      BIT/S   PPS HISTORY  PACKETS  BYTES  AVG ...││ overview
//! ││›eth0  native  1.24 Mpps 9.87 Gbit/s ▂▃▅▇█▇  12.3 M   1.23 GB ...  ││  or detail
//! │└────────────────────────────────────────────────────────────────────┘│
//! │ q quit  ↑↓ select  ⏎ detail  r reset  d detach  ...  ? help          │ footer
//! └──────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! `t` puts the talkers view (`render/talkers.rs`) in the middle instead.
//! Help and the detach confirmation are drawn over the middle.

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
};

use super::{
    app::{App, Overlay, View},
    render,
};

pub fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    let header_height = render::header::height(app);
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(header_height),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    render::header::render(f, app, header);
    match app.view {
        View::Overview => render::table::render(f, app, body),
        View::Detail => render::detail::render(f, app, body),
        View::Talkers => render::talkers::render(f, app, body),
    }
    render::footer::render(f, app, footer);
    match &app.overlay {
        Some(Overlay::Help) => render::help::render(f, app, area),
        Some(Overlay::ConfirmDetach(row)) => render::confirm::render(f, app, *row, area),
        None => {}
    }
}

/// A `width`×`height` box centred in `area`, shrunk to fit it.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}
