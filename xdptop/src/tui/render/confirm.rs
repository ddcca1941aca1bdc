//! The y/n question before detaching: detaching stops the counting other
//! readers of the shared map depend on.

use ratatui::{
    Frame,
    layout::Rect,
    style::{Color, Style, Stylize as _},
    text::{Line, Span},
    widgets::{Block, Clear, Padding, Paragraph, Wrap},
};

use crate::tui::{app::App, ui::centered};

pub fn render(f: &mut Frame, app: &App, row: usize, area: Rect) {
    let name = app
        .rows()
        .get(row)
        .map_or_else(|| "?".into(), |r| r.name.to_string());
    let lines = vec![
        Line::from(vec![
            Span::raw("Detach xdptop from "),
            Span::styled(name, Style::new().bold()),
            Span::raw("?"),
        ]),
        Line::from(
            "Its program stops counting there; scrapers of xdp_stats_map stop seeing its packets.",
        ),
        Line::from(""),
        Line::from(vec![
            Span::styled("y", Style::new().bold().fg(Color::Red)),
            Span::raw(" detach    "),
            Span::styled("n", Style::new().bold().fg(Color::Green)),
            Span::raw(" / esc keep it"),
        ]),
    ];
    let popup = centered(area, 54, 8);
    f.render_widget(Clear, popup);
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: true }).block(
            Block::bordered()
                .title(" Confirm detach ")
                .padding(Padding::horizontal(1))
                .fg(Color::Yellow),
        ),
        popup,
    );
}
