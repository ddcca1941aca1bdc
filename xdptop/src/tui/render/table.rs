//! The overview: one row per interface. Columns are added in order of
//! importance while they fit; spare width goes to the sparklines.

use ratatui::{
    Frame,
    layout::{Alignment, Constraint, Layout, Rect},
    style::{Color, Modifier, Style, Stylize as _},
    text::Line,
    widgets::{Block, Cell, HighlightSpacing, Row, Table, TableState},
};

use super::bars::spark;
use crate::{
    format,
    sample::Health,
    tui::{app::App, iface_stats::IfaceStats},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Col {
    Iface,
    Mode,
    Pps,
    Rate,
    Verdict,
    PpsSpark,
    Packets,
    Bytes,
    Avg,
    PeakPps,
    PeakRate,
    RateSpark,
}

/// Display order.
const COLUMNS: [Col; 12] = [
    Col::Iface,
    Col::Mode,
    Col::Pps,
    Col::Rate,
    Col::Verdict,
    Col::PpsSpark,
    Col::Packets,
    Col::Bytes,
    Col::Avg,
    Col::PeakPps,
    Col::PeakRate,
    Col::RateSpark,
];

/// Order of importance: what stays on a narrow terminal. The verdict
/// column is there only while some interface's verdicts are observed.
const PRIORITY: [Col; 12] = [
    Col::Iface,
    Col::Pps,
    Col::Mode,
    Col::Rate,
    Col::Verdict,
    Col::PpsSpark,
    Col::Packets,
    Col::Bytes,
    Col::Avg,
    Col::PeakPps,
    Col::PeakRate,
    Col::RateSpark,
];

const SPARK_MIN: u16 = 8;

fn min_width(col: Col, iface_w: u16) -> u16 {
    match col {
        Col::Iface => iface_w,
        Col::Mode => 9,
        Col::Pps | Col::PeakPps => 9,
        Col::Rate => 11,
        Col::PeakRate => 11,
        Col::Packets => 7,
        Col::Bytes => 8,
        Col::Avg => 6,
        // `redirect 100.0%`
        Col::Verdict => 15,
        Col::PpsSpark | Col::RateSpark => SPARK_MIN,
    }
}

fn title(col: Col, app: &App) -> String {
    let unit = app.unit.heading().to_uppercase();
    match col {
        Col::Iface => "IFACE".into(),
        Col::Mode => "MODE".into(),
        Col::Pps => "PPS".into(),
        Col::Rate => unit,
        Col::Verdict => "VERDICT".into(),
        Col::PpsSpark => "PPS HISTORY".into(),
        Col::Packets => "PACKETS".into(),
        Col::Bytes => "BYTES".into(),
        Col::Avg => "AVG".into(),
        Col::PeakPps => "PEAK PPS".into(),
        Col::PeakRate => format!("PEAK {unit}"),
        Col::RateSpark => format!("{unit} HISTORY"),
    }
}

/// The columns that fit in `width` and their widths.
fn layout(width: u16, iface_w: u16, verdicts: bool) -> Vec<(Col, u16)> {
    let mut used = 0u16;
    let mut cols = Vec::new();
    for col in PRIORITY
        .into_iter()
        .filter(|c| verdicts || *c != Col::Verdict)
    {
        let w = min_width(col, iface_w);
        let gap = u16::from(!cols.is_empty());
        if used.saturating_add(gap + w) > width {
            break;
        }
        used += gap + w;
        cols.push((col, w));
    }
    cols.sort_by_key(|(c, _)| COLUMNS.iter().position(|d| d == c));
    let sparks = cols.iter().filter(|(c, _)| is_spark(*c)).count() as u16;
    if sparks > 0 {
        let spare = width.saturating_sub(used);
        let mut rest = spare % sparks;
        for (c, w) in &mut cols {
            if is_spark(*c) {
                *w += spare / sparks + u16::from(rest > 0);
                rest = rest.saturating_sub(1);
            }
        }
    }
    cols
}

fn is_spark(col: Col) -> bool {
    matches!(col, Col::PpsSpark | Col::RateSpark)
}

fn right(text: String) -> Cell<'static> {
    Cell::from(Line::from(text).alignment(Alignment::Right))
}

fn cell(col: Col, w: u16, row: &IfaceStats, app: &App) -> Cell<'static> {
    let sample = row.last.as_ref();
    let pps = sample.map_or(0.0, |s| s.pps);
    let bps = sample.map_or(0.0, |s| s.bps);
    match col {
        Col::Iface => Cell::from(row.name.to_string()).bold(),
        Col::Mode => Cell::from(sample.map_or("-", |s| s.mode.as_str())),
        Col::Pps => right(format::pps(pps)).fg(Color::Cyan),
        Col::Rate => right(format::rate(bps, app.unit)).fg(Color::Magenta),
        Col::PpsSpark => Cell::from(spark(row.history.pps(), usize::from(w))).fg(Color::Cyan),
        Col::RateSpark => Cell::from(spark(row.history.bps(), usize::from(w))).fg(Color::Magenta),
        Col::Packets => right(format::packets(row.session_packets)),
        Col::Bytes => right(format::bytes(row.session_bytes)),
        Col::Avg => right(
            row.avg_packet_size()
                .map_or_else(|| "-".into(), |a| format!("{a:.0} B")),
        ),
        Col::PeakPps => right(format::pps(row.peak_pps)),
        Col::PeakRate => right(format::rate(row.peak_bps, app.unit)),
        Col::Verdict => {
            let (text, style) = super::verdicts::cell(sample);
            right(text).style(style)
        }
    }
}

/// A row whose numbers would mislead: the mode column, then one note.
fn note_row(
    cols: &[(Col, u16)],
    row: &IfaceStats,
    mode: Cell<'static>,
    note: String,
    style: Style,
) -> Row<'static> {
    let mut cells = vec![Cell::from(row.name.to_string()).bold()];
    let has_mode = cols.iter().any(|(c, _)| *c == Col::Mode);
    if has_mode {
        cells.push(mode);
    }
    let rest = cols.len().saturating_sub(1 + usize::from(has_mode));
    if rest > 0 {
        let span = u16::try_from(rest).unwrap_or(u16::MAX);
        cells.push(Cell::from(note).style(style).column_span(span));
    }
    Row::new(cells)
}

fn row(cols: &[(Col, u16)], index: usize, row: &IfaceStats, app: &App) -> Row<'static> {
    let mode = || Cell::from(row.last.as_ref().map_or("-", |s| s.mode.as_str()));
    if app.is_detached(index) {
        return note_row(
            cols,
            row,
            Cell::from("detached").fg(Color::Yellow),
            "xdptop detached · a attaches again".into(),
            Style::new().fg(Color::Yellow),
        );
    }
    match row.last.as_ref().map(|s| &s.health) {
        None => note_row(
            cols,
            row,
            mode(),
            "waiting for the first sample…".into(),
            Style::new().add_modifier(Modifier::DIM),
        ),
        Some(Health::Lost { reason }) => note_row(
            cols,
            row,
            mode(),
            format!("✗ LOST: {reason}"),
            Style::new().fg(Color::Red).bold(),
        ),
        Some(Health::NotObservable { reason }) => note_row(
            cols,
            row,
            mode(),
            format!("✗ NOT OBSERVABLE: {reason}"),
            Style::new().fg(Color::Red).bold(),
        ),
        Some(Health::Ok) => Row::new(cols.iter().map(|(c, w)| cell(*c, *w, row, app))),
    }
}

/// Below this many spare rows the overview is the table alone.
const MIN_CHART_HEIGHT: u16 = 10;

/// The table and, when there is room below it, the selected interface's
/// rate charts.
pub fn render(f: &mut Frame, app: &App, area: Rect) {
    // Borders and the heading row.
    let wanted = u16::try_from(app.rows().len())
        .unwrap_or(u16::MAX)
        .saturating_add(3);
    match app.selected_row() {
        Some(row) if area.height >= wanted.saturating_add(MIN_CHART_HEIGHT) => {
            let [table, charts] =
                Layout::vertical([Constraint::Length(wanted), Constraint::Min(0)]).areas(area);
            render_table(f, app, table);
            super::detail::render_charts(f, app, row, charts);
        }
        _ => render_table(f, app, area),
    }
}

fn render_table(f: &mut Frame, app: &App, area: Rect) {
    // On a very short terminal the rows matter more than the frame.
    let framed = area.height > 4 || usize::from(area.height) >= app.rows().len() + 3;
    let block = if framed {
        Block::bordered().title(format!(" Interfaces · totals {} ", app.session_label()))
    } else {
        Block::new()
    };
    let inner = block.inner(area);
    let rows = app.rows();
    let iface_w = rows
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(5, 15) as u16;
    // One cell for the selection mark.
    let verdicts = rows
        .iter()
        .any(|r| r.last.as_ref().is_some_and(|s| s.actions.is_some()));
    let cols = layout(inner.width.saturating_sub(1), iface_w, verdicts);
    let header = Row::new(cols.iter().map(|(c, _)| {
        let t = title(*c, app);
        match c {
            Col::Iface | Col::Mode | Col::PpsSpark | Col::RateSpark => Cell::from(t),
            _ => right(t),
        }
    }))
    .style(
        Style::new()
            .bold()
            .fg(Color::Gray)
            .add_modifier(Modifier::UNDERLINED),
    );
    let table = Table::new(
        rows.iter().enumerate().map(|(i, r)| row(&cols, i, r, app)),
        cols.iter().map(|(_, w)| Constraint::Length(*w)),
    )
    .header(header)
    .block(block)
    .column_spacing(1)
    .highlight_symbol("›")
    .highlight_spacing(HighlightSpacing::Always)
    .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    // A local state: drawing must not change the App.
    let mut state = TableState::new().with_selected(Some(app.selected));
    f.render_stateful_widget(table, area, &mut state);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_give_way_in_order_and_sparklines_take_the_rest() {
        let names = |cols: &[(Col, u16)]| cols.iter().map(|(c, _)| *c).collect::<Vec<_>>();
        let narrow = layout(40, 5, true);
        assert_eq!(names(&narrow), [Col::Iface, Col::Mode, Col::Pps, Col::Rate]);
        // Rates outrank the mode on a very narrow terminal.
        assert_eq!(names(&layout(19, 9, false)), [Col::Iface, Col::Pps]);
        let wide = layout(200, 5, true);
        assert_eq!(wide.len(), COLUMNS.len());
        let total: u16 = wide.iter().map(|(_, w)| w).sum::<u16>() + (wide.len() as u16 - 1);
        assert_eq!(total, 200);
        assert!(layout(0, 5, true).is_empty());
        // Verdicts come right after the rates, and only where observed.
        assert_eq!(
            names(&layout(60, 5, true)),
            [Col::Iface, Col::Mode, Col::Pps, Col::Rate, Col::Verdict]
        );
        assert!(!names(&layout(200, 5, false)).contains(&Col::Verdict));
    }
}
