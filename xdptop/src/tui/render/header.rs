//! The top lines: host, interval, units, pause state and, with an exporter,
//! its target and health.

use ratatui::{
    Frame,
    layout::{Alignment, Rect},
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::Paragraph,
};

use crate::{
    format,
    status::{ExportState, ExportStatus},
    tui::app::App,
};

/// One line, plus one for the exporter when there is one.
pub fn height(app: &App) -> u16 {
    if app.export.is_some() { 2 } else { 1 }
}

pub fn render(f: &mut Frame, app: &App, area: Rect) {
    let rows = app.rows().len();
    let title = Line::from(vec![
        Span::styled(
            " xdptop ",
            Style::new().bold().fg(Color::Black).bg(Color::Cyan),
        ),
        Span::raw("  host "),
        Span::styled(app.host.clone(), Style::new().bold()),
        Span::raw("  every "),
        Span::styled(
            humantime::format_duration(app.interval).to_string(),
            Style::new().bold(),
        ),
        Span::raw(format!(
            "  {rows} interface{}  rates in {}",
            if rows == 1 { "" } else { "s" },
            app.unit.heading()
        )),
    ]);
    let first = Rect {
        height: area.height.min(1),
        ..area
    };
    f.render_widget(Paragraph::new(title), first);
    if app.paused() {
        let paused = Span::styled(
            " PAUSED ",
            Style::new()
                .fg(Color::Black)
                .bg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
        );
        f.render_widget(Paragraph::new(paused).alignment(Alignment::Right), first);
    }
    if let (Some(status), true) = (&app.export, area.height > 1) {
        let second = Rect {
            y: area.y + 1,
            height: 1,
            ..area
        };
        f.render_widget(Paragraph::new(export_line(status)), second);
    }
}

fn export_line(s: &ExportStatus) -> Line<'static> {
    let (state, color) = match s.state {
        ExportState::Ok => ("● ok", Color::Green),
        ExportState::Connecting => ("◌ connecting", Color::Yellow),
        ExportState::Failing => ("✗ failing", Color::Red),
    };
    let mut spans = vec![
        Span::raw(" export "),
        Span::styled(s.target.clone(), Style::new().bold()),
        Span::raw("  "),
        Span::styled(state, Style::new().fg(color).bold()),
        Span::raw(format!("  {} sent  ", format::packets(s.exported))),
        Span::styled(
            format!("{} dropped", format::packets(s.dropped)),
            if s.dropped > 0 {
                Style::new().fg(Color::Yellow)
            } else {
                Style::new()
            },
        ),
    ];
    if let (Some(e), false) = (&s.last_error, s.state == ExportState::Ok) {
        spans.push(Span::styled(
            format!("  last error: {e}"),
            Style::new().fg(Color::Red),
        ));
    }
    Line::from(spans)
}
