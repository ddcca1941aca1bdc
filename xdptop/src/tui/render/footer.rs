//! The bottom line: the latest action's outcome while it is fresh, the keys
//! otherwise.

use ratatui::{
    Frame,
    layout::Rect,
    style::{Color, Style},
    text::{Line, Span},
    widgets::Paragraph,
};

use crate::tui::app::{App, View};

/// Key, what it does; the order is the order of importance at a narrow width.
fn keys(app: &App) -> Vec<(&'static str, &'static str)> {
    let enter = match app.view {
        View::Overview => ("⏎", "detail"),
        View::Detail | View::Talkers => ("esc", "back"),
    };
    let pause = if app.paused() {
        ("p", "resume")
    } else {
        ("p", "pause")
    };
    let unit = match app.unit {
        crate::format::RateUnit::Bits => ("u", "bytes"),
        crate::format::RateUnit::Bytes => ("u", "bits"),
    };
    if app.view == View::Talkers {
        return vec![
            ("q", "quit"),
            ("↑↓", "source"),
            enter,
            ("s", "sort"),
            unit,
            pause,
            ("r", "reset"),
            ("?", "help"),
        ];
    }
    vec![
        ("q", "quit"),
        ("↑↓", "select"),
        enter,
        ("t", "talkers"),
        ("r", "reset"),
        ("d", "detach"),
        ("a", "attach"),
        pause,
        unit,
        ("?", "help"),
    ]
}

fn push(spans: &mut Vec<Span<'static>>, (key, what): &(&'static str, &'static str)) {
    spans.push(Span::styled(*key, Style::new().bold().fg(Color::Cyan)));
    spans.push(Span::raw(format!(" {what}  ")));
}

pub fn render(f: &mut Frame, app: &App, area: Rect) {
    let line = match &app.message {
        Some(m) => {
            let color = if m.error { Color::Red } else { Color::Green };
            Line::from(Span::styled(
                format!(" {}", m.text),
                Style::new().fg(color).bold(),
            ))
        }
        None => {
            // Drop the least important keys that do not fit; "? help"
            // always stays, it lists them all.
            let all = keys(app);
            let cost = |(k, w): &(&str, &str)| k.chars().count() + w.chars().count() + 3;
            let help = all.last().map_or(0, cost);
            let mut budget = usize::from(area.width).saturating_sub(1 + help);
            let mut spans = vec![Span::raw(" ")];
            for item in &all[..all.len() - 1] {
                if cost(item) > budget {
                    break;
                }
                budget -= cost(item);
                push(&mut spans, item);
            }
            if let Some(item) = all.last() {
                push(&mut spans, item);
            }
            Line::from(spans)
        }
    };
    f.render_widget(Paragraph::new(line), area);
}
