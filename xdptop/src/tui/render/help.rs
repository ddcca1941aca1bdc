//! The `?` overlay: every key, and what reset and detach do and do not do.

use ratatui::{
    Frame,
    layout::Rect,
    style::{Color, Style, Stylize as _},
    text::{Line, Span},
    widgets::{Block, Clear, Padding, Paragraph, Wrap},
};

use crate::{
    manual::{KEYS, KEYS_NOTE},
    tui::{app::App, ui::centered},
};

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
    lines.push(Line::from(KEYS_NOTE));
    let popup = centered(area, 64, 17);
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
