//! Text bars and sparklines: pure string building, so they fit in table
//! cells and snapshot as readable text.

use std::collections::VecDeque;

use ratatui::{
    style::{Color, Style},
    text::{Line, Span},
};

use crate::format;

const SPARK: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
const EIGHTHS: [char; 8] = ['▏', '▎', '▍', '▌', '▋', '▊', '▉', '█'];

/// The newest `width` values as a sparkline, right-aligned, scaled to the
/// largest of them. Zero is a blank, any traffic at least the lowest bar.
pub fn spark(values: &VecDeque<f64>, width: usize) -> String {
    let shown = values.len().min(width);
    let max = values
        .iter()
        .skip(values.len() - shown)
        .copied()
        .fold(0.0_f64, f64::max);
    spark_scaled(values, width, max)
}

/// [`spark`] on a given scale: `max` is a full bar (values above it too), so
/// several sparklines can share one scale.
pub fn spark_scaled(values: &VecDeque<f64>, width: usize, max: f64) -> String {
    let shown = values.len().min(width);
    let recent = values.iter().skip(values.len() - shown);
    let mut out = " ".repeat(width - shown);
    for v in recent {
        out.push(if *v > 0.0 && max > 0.0 {
            let level = ((v / max) * 8.0).ceil().clamp(1.0, 8.0) as usize;
            SPARK[level - 1]
        } else {
            ' '
        });
    }
    out
}

/// A horizontal bar `width` cells wide, filled to `part / whole`, with
/// eighth-cell resolution.
pub fn bar(part: u64, whole: u64, width: usize) -> String {
    if whole == 0 || width == 0 {
        return " ".repeat(width);
    }
    let eighths = (part.min(whole) as f64 / whole as f64 * (width * 8) as f64).round() as usize;
    let mut out = "█".repeat(eighths / 8);
    if let Some(partial) = (eighths % 8).checked_sub(1) {
        out.push(EIGHTHS[partial]);
    }
    let used = out.chars().count();
    out.push_str(&" ".repeat(width.saturating_sub(used)));
    out
}

/// `label  ████▌   42.0%  1.24 k` lines over `width` cells; the count, then
/// the bar give way on narrow panels.
pub fn lines(items: &[(String, u64)], whole: u64, width: u16, color: Color) -> Vec<Line<'static>> {
    let width = usize::from(width);
    let label_w = items
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0);
    const PCT: usize = 6;
    const COUNT: usize = 7;
    let mut bar_w = width.saturating_sub(label_w + 1 + 1 + PCT + 1 + COUNT);
    let show_count = bar_w >= 4;
    if !show_count {
        bar_w = width.saturating_sub(label_w + 1 + 1 + PCT);
    }
    items
        .iter()
        .map(|(label, value)| {
            let mut spans = vec![
                Span::raw(format!("{label:<label_w$} ")),
                Span::styled(bar(*value, whole, bar_w), Style::new().fg(color)),
                Span::raw(format!(" {:>PCT$}", format::percent(*value, whole))),
            ];
            if show_count {
                spans.push(Span::raw(format!(" {:>COUNT$}", format::packets(*value))));
            }
            Line::from(spans)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_is_right_aligned_scaled_and_blank_at_zero() {
        let v: VecDeque<f64> = [0.0, 1.0, 4.0, 8.0].into();
        assert_eq!(spark(&v, 6), "   ▁▄█");
        assert_eq!(spark(&v, 2), "▄█");
        assert_eq!(spark(&v, 0), "");
        assert_eq!(spark(&VecDeque::new(), 3), "   ");
        // On a shared scale a small series stays small.
        assert_eq!(spark_scaled(&v, 4, 80.0), " ▁▁▁");
        assert_eq!(spark_scaled(&v, 4, 4.0), " ▂██");
    }

    #[test]
    fn bars_fill_in_eighths() {
        assert_eq!(bar(1, 2, 4), "██  ");
        assert_eq!(bar(1, 16, 2), "▏ ");
        assert_eq!(bar(5, 5, 3), "███");
        assert_eq!(bar(0, 0, 2), "  ");
        assert_eq!(bar(9, 5, 2), "██");
    }
}
