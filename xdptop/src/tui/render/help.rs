//! The `?` overlay: every key, and what reset and detach do and do not do.

use ratatui::{
    Frame,
    layout::Rect,
    style::{Color, Style, Stylize as _},
    text::{Line, Span},
    widgets::{Block, Clear, Padding, Paragraph, Wrap},
};

use crate::tui::{app::App, ui::centered};

const KEYS: [(&str, &str); 9] = [
    ("↑ ↓  j k", "select an interface"),
    ("enter / esc", "open / close its detail view"),
    ("r", "reset the view: totals, peaks, history"),
    ("d", "detach xdptop from the interface (asks y/n)"),
    ("a", "attach xdptop again"),
    ("p  space", "pause the view (samples keep arriving)"),
    ("u", "show rates in bits or bytes per second"),
    ("?", "this help"),
    ("q  ctrl-c", "quit (attachments stay in place)"),
];

pub fn render(f: &mut Frame, _app: &App, area: Rect) {
    let mut lines: Vec<Line> = KEYS
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!("{k:>11}  "), Style::new().bold().fg(Color::Cyan)),
                Span::raw(*what),
            ])
        })
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::from(
        "Reset never zeroes the kernel counters: other scrapers and Prometheus rate() rely on them.",
    ));
    let popup = centered(area, 64, 15);
    f.render_widget(Clear, popup);
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::bordered()
                .title(" Keys · esc closes ")
                .padding(Padding::horizontal(1))
                .bold(),
        ),
        popup,
    );
}
