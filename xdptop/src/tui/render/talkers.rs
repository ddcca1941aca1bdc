//! The talkers view (`t`) of the selected interface: its heaviest sources
//! and services side by side (stacked when narrow), an "other" line each so
//! that listed + other = the interface, the sources table's fill, and the
//! selected source's packets/s history.
//!
//! ```text
//! ┌ Talkers · eth0 1.33 Mpps · top 10 by pps · sorted by pps (s) ───────┐
//! │ SOURCE        PPS  BIT/S SHARE PACKETS│ SERVICE   PPS  BIT/S SHARE …│
//! │›198.18.0.10  …                        │ udp/53    …                 │
//! │ other        …                        │ other     …                 │
//! │table 6/131072 sources · … a freed or evicted source is counted anew …│
//! │┌ 198.18.0.10 packets/s · last 39s (↑↓ selects) ─────────────────────┐│
//! ││                                      ▂▃▅▇█▇▅▃▂▁▂▃▅▇█▇▅             ││
//! │└────────────────────────────────────────────────────────────────────┘│
//! └──────────────────────────────────────────────────────────────────────┘
//! ```

use ratatui::{
    Frame,
    layout::{Alignment, Constraint, Layout, Rect},
    style::{Color, Modifier, Style, Stylize as _},
    text::{Line, Span},
    widgets::{
        Block, Borders, Cell, HighlightSpacing, Paragraph, Row, Sparkline, Table, TableState, Wrap,
    },
};

use crate::{
    bpf::IDLE_TALKERS_TABLE,
    format::{self, RateUnit},
    sample::{Mode, Sample},
    talkers::{Other, Talkers},
    tui::{app::App, iface_stats::IfaceStats, talkers as view},
};

/// Inner width from which sources and services sit side by side.
const SIDE_BY_SIDE: u16 = 100;
/// Fewest rows of the sparkline's box, borders included.
const SPARK_MIN: u16 = 3;

pub fn render(f: &mut Frame, app: &App, area: Rect) {
    let Some(row) = app.selected_row() else {
        f.render_widget(Paragraph::new("no interface selected"), area);
        return;
    };
    let sample = row.last.as_ref();
    let talkers = sample.and_then(|s| s.talkers.as_ref());
    let block = Block::bordered().title(title(app, row, talkers.is_some()));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let (Some(sample), Some(talkers)) = (sample, talkers) else {
        render_none(f, app, row, inner);
        return;
    };
    let beside = inner.width >= SIDE_BY_SIDE;
    // Heading + listed + other, for each list.
    let source_h = u16::try_from(talkers.talkers.len() + 2).unwrap_or(u16::MAX);
    let service_h = u16::try_from(talkers.services.len() + 2).unwrap_or(u16::MAX);
    let lists_h = if beside {
        source_h.max(service_h)
    } else {
        source_h.saturating_add(service_h)
    };
    let note = table_note(app, talkers);
    let note_h =
        u16::try_from(wrapped_lines(&note, usize::from(inner.width)).clamp(1, 3)).unwrap_or(3);
    // The sparkline takes what the lists leave, at least SPARK_MIN rows.
    let spark_h = inner
        .height
        .saturating_sub(lists_h.saturating_add(note_h))
        .max(SPARK_MIN);
    let lists_h = lists_h.min(inner.height.saturating_sub(note_h + spark_h));
    let [lists, note_area, spark] = Layout::vertical([
        Constraint::Length(lists_h),
        Constraint::Length(note_h),
        Constraint::Min(spark_h),
    ])
    .areas(inner);
    let (left, right) = if beside {
        let [l, r] = Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)])
            .areas(lists);
        (l, r)
    } else {
        let [l, r] =
            Layout::vertical([Constraint::Length(source_h), Constraint::Min(0)]).areas(lists);
        (l, r)
    };
    f.render_widget(
        Paragraph::new(note).wrap(Wrap { trim: true }).dim(),
        note_area,
    );
    render_sources(f, app, sample, talkers, left, beside);
    render_services(f, app, sample, talkers, right);
    render_spark(f, app, row, spark);
}

fn title(app: &App, row: &IfaceStats, counted: bool) -> String {
    let rate = row.last.as_ref().map_or_else(String::new, |s| {
        format!(" {} {}", format::pps(s.pps), format::rate(s.bps, app.unit))
    });
    match app.talkers_listed() {
        Some(n) if counted => format!(
            " Talkers · {}{rate} · top {n} by pps · sorted by {} (s) ",
            row.name,
            app.talker_sort.label(app.unit),
        ),
        _ => format!(" Talkers · {} ", row.name),
    }
}

/// Why there are no talkers, and how to get them.
fn render_none(f: &mut Frame, app: &App, row: &IfaceStats, area: Rect) {
    let name = &row.name;
    let mode = row.last.as_ref().map(|s| s.mode);
    let health_ok = matches!(
        row.last.as_ref().map(|s| &s.health),
        Some(crate::sample::Health::Ok)
    );
    let error = app
        .talkers_error
        .as_ref()
        .filter(|(i, _)| **i == **name)
        .map(|(_, e)| e);
    let text = if mode == Some(Mode::ReadOnly) {
        format!(
            "No talkers on {name}: another loader's program holds {name}, and talkers are \
             counted by xdptop's own program only. xdptop reads the shared xdp_stats_map \
             there and nothing else."
        )
    } else if app.is_detached(app.selected) {
        format!("xdptop is detached from {name}: no talkers (a attaches again).")
    } else if let Some(e) = error {
        format!(
            "No talkers on {name}: {e}\n\nTo count talkers there, re-attach: `xdptop --detach \
             {name}`, then start xdptop again (with --talkers N to count from the start)."
        )
    } else if app.talkers_listed().is_none() {
        format!(
            "Talkers are not counted in this run. Start xdptop with --talkers N to count \
             them, e.g.\n\n    xdptop --talkers 10 {name}"
        )
    } else if mode.is_none() {
        "Waiting for the first sample…".to_owned()
    } else if !health_ok {
        format!("No talkers from {name} while its counters cannot be read.")
    } else if app.talkers_counting.as_deref() == Some(&**name) || app.talkers_top.is_some() {
        format!(
            "Counting talkers on {name}: the first rates come with the next samples…\n\n\
             Without --talkers, counting runs only while this view is open (it costs the \
             XDP program some nanoseconds per packet)."
        )
    } else {
        format!(
            "No talkers from {name}: the program attached there has no talker tables (an \
             earlier xdptop loaded it; the log says so). To count talkers, re-attach: \
             `xdptop --detach {name}`, then start xdptop again."
        )
    };
    f.render_widget(Paragraph::new(text).wrap(Wrap { trim: false }), area);
}

/// "table 6/131072 sources · …" with the eviction caveat the issue asks to
/// be stated wherever counts are shown.
fn table_note(app: &App, t: &Talkers) -> String {
    let table = t.talkers_table;
    let idle = if table.capacity == IDLE_TALKERS_TABLE {
        " (the idle size: the program was loaded without --talkers; --detach and start \
         with --talkers for the full size)"
    } else {
        ""
    };
    let while_open = if app.talkers_top.is_none() {
        " Counted only while this view is open."
    } else {
        ""
    };
    let overflow = if table.overflow > 0 {
        format!(
            " + {}/{} in the overflow table",
            table.overflow, table.overflow_capacity
        )
    } else {
        String::new()
    };
    format!(
        "table {}/{} sources{overflow}{idle} · packets since first seen; a freed or \
         evicted source is counted anew when it returns.{while_open}",
        table.entries, table.capacity
    )
}

/// Lines `text` takes when wrapped at spaces to `width` cells.
fn wrapped_lines(text: &str, width: usize) -> usize {
    let width = width.max(1);
    let mut lines = 1;
    let mut used = 0;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let w = word.chars().count();
        let need = if used == 0 { w } else { used + 1 + w };
        if need <= width {
            used = need;
        } else {
            lines += 1;
            used = w.min(width);
        }
    }
    lines
}

/// Share of the interface's packets/s, `42.0%`; `-` when it had none.
fn share(pps: f64, sample: &Sample) -> String {
    format::share(pps, sample.pps)
}

fn right(text: String) -> Cell<'static> {
    Cell::from(Line::from(text).alignment(Alignment::Right))
}

/// Widths of the number columns: pps, rate, share, packets.
const NUMBERS: [u16; 4] = [10, 11, 6, 8];

fn widths() -> Vec<Constraint> {
    std::iter::once(Constraint::Fill(1))
        .chain(NUMBERS.iter().map(|w| Constraint::Length(*w)))
        .collect()
}

fn header(first: &str, unit: RateUnit) -> Row<'static> {
    let mut cells = vec![Cell::from(first.to_owned())];
    for t in ["PPS", &unit.heading().to_uppercase(), "SHARE", "PACKETS"] {
        cells.push(right(t.to_owned()));
    }
    Row::new(cells).style(
        Style::new()
            .bold()
            .fg(Color::Gray)
            .add_modifier(Modifier::UNDERLINED),
    )
}

fn numbers(
    pps: f64,
    bps: f64,
    packets: Option<u64>,
    sample: &Sample,
    unit: RateUnit,
) -> [Cell<'static>; 4] {
    [
        right(format::pps(pps)).fg(Color::Cyan),
        right(format::rate(bps, unit)).fg(Color::Magenta),
        right(share(pps, sample)),
        right(packets.map_or_else(|| "-".to_owned(), format::packets)),
    ]
}

fn other_row(other: &Other, sample: &Sample, unit: RateUnit) -> Row<'static> {
    let mut cells = vec![Cell::from("other")];
    cells.extend(numbers(other.pps, other.bps, None, sample, unit));
    Row::new(cells).add_modifier(Modifier::DIM)
}

fn table<'a>(rows: Vec<Row<'static>>, head: Row<'static>, block: Block<'a>) -> Table<'a> {
    Table::new(rows, widths())
        .header(head)
        .block(block)
        .column_spacing(1)
        .highlight_symbol("›")
        .highlight_spacing(HighlightSpacing::Always)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
}

fn render_sources(
    f: &mut Frame,
    app: &App,
    sample: &Sample,
    talkers: &Talkers,
    area: Rect,
    beside: bool,
) {
    let sources = view::sorted_sources(talkers, app.talker_sort);
    let mut rows: Vec<Row> = sources
        .iter()
        .map(|t| {
            let mut cells = vec![Cell::from(t.source.to_string()).bold()];
            cells.extend(numbers(t.pps, t.bps, Some(t.packets), sample, app.unit));
            Row::new(cells)
        })
        .collect();
    rows.push(other_row(&talkers.talkers_other, sample, app.unit));
    let block = if beside {
        Block::new().borders(Borders::RIGHT)
    } else {
        Block::new()
    };
    let selected = view::selected_index(&sources, app.talker_selected);
    // A local state: drawing must not change the App.
    let mut state = TableState::new().with_selected(selected);
    f.render_stateful_widget(
        table(rows, header("SOURCE", app.unit), block),
        area,
        &mut state,
    );
}

fn render_services(f: &mut Frame, app: &App, sample: &Sample, talkers: &Talkers, area: Rect) {
    let mut rows: Vec<Row> = view::sorted_services(talkers, app.talker_sort)
        .iter()
        .map(|s| {
            let name = if s.port == 0 {
                s.protocol.clone()
            } else {
                format!("{}/{}", s.protocol, s.port)
            };
            let mut cells = vec![Cell::from(name).bold()];
            cells.extend(numbers(s.pps, s.bps, Some(s.packets), sample, app.unit));
            Row::new(cells)
        })
        .collect();
    rows.push(other_row(&talkers.services_other, sample, app.unit));
    let mut state = TableState::new();
    f.render_stateful_widget(
        table(rows, header("SERVICE", app.unit), Block::new()),
        area,
        &mut state,
    );
}

/// The selected source's packets/s over time, newest on the right.
fn render_spark(f: &mut Frame, app: &App, row: &IfaceStats, area: Rect) {
    let selected = app
        .sorted_talkers()
        .and_then(|list| view::selected_index(&list, app.talker_selected).map(|i| list[i].source));
    let Some(source) = selected else {
        f.render_widget(Paragraph::new(" no source listed yet").dim(), area);
        return;
    };
    let history = row.talker_history.get(&source);
    let secs = app.interval.as_secs_f64() * history.map_or(0, |h| h.len()) as f64;
    let block = Block::bordered().title(Line::from(vec![
        Span::raw(format!(" {source} ")).bold(),
        Span::raw(format!(
            "packets/s · last {} (↑↓ selects) ",
            format::span(secs)
        )),
    ]));
    let width = usize::from(block.inner(area).width);
    let values: Vec<f64> = history.map_or_else(Vec::new, |h| h.iter().copied().collect());
    let shown = &values[values.len().saturating_sub(width)..];
    // Right-aligned like the overview's sparklines; tenths keep low rates visible.
    let data: Vec<u64> = std::iter::repeat_n(0, width - shown.len())
        .chain(shown.iter().map(|v| (v * 10.0).round() as u64))
        .collect();
    f.render_widget(
        Sparkline::default()
            .block(block)
            .data(&data)
            .style(Style::new().fg(Color::Cyan)),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::wrapped_lines;

    #[test]
    fn wrapping_counts_lines_at_word_breaks() {
        assert_eq!(wrapped_lines("", 10), 1);
        assert_eq!(wrapped_lines("aaaa bbbb", 9), 1);
        assert_eq!(wrapped_lines("aaaa bbbb", 8), 2);
        assert_eq!(wrapped_lines("aaaa bbbb cccc", 9), 2);
        assert_eq!(wrapped_lines("a b c", 1), 3);
    }
}
