//! The detail view of the selected interface: large rate charts over time
//! and, from xdptop's own per-CPU maps, per-CPU, protocol and size
//! breakdowns since the view was reset.

use std::collections::VecDeque;

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    style::{Color, Style, Stylize as _},
    symbols::Marker,
    text::{Line, Span},
    widgets::{Axis, Block, Chart, Dataset, GraphType, Paragraph, Wrap},
};

use super::{bars, verdicts};
use crate::{
    format::{self, RateUnit},
    sample::{Detail, Health, Mode},
    tui::{app::App, iface_stats::IfaceStats},
};

/// Rows the breakdown panels need: 4 network + 1 heading + 4 transport.
const BREAKDOWN_HEIGHT: u16 = 11;
/// Below this the charts give way to the verdicts panel's one-line form.
const MIN_CHART_HEIGHT: u16 = 12;

pub fn render(f: &mut Frame, app: &App, area: Rect) {
    let Some(row) = app.selected_row() else {
        f.render_widget(Paragraph::new("no interface selected"), area);
        return;
    };
    let detail = row.session_detail.as_ref().filter(|_| has_detail(row));
    let breakdown_h = if detail.is_some() {
        BREAKDOWN_HEIGHT
    } else {
        4
    };
    let has_verdicts = row.last.as_ref().is_some_and(|s| s.actions.is_some());
    // The panel when the charts keep room for a readable curve; one line
    // on small terminals.
    let panel =
        has_verdicts && area.height >= 2 + verdicts::PANEL_HEIGHT + MIN_CHART_HEIGHT + breakdown_h;
    let line = if has_verdicts && !panel {
        row.last.as_ref().and_then(|s| verdicts::line(s, app))
    } else {
        None
    };
    let [summary, panel_area, charts, breakdowns] = Layout::vertical([
        Constraint::Length(2 + u16::from(line.is_some())),
        Constraint::Length(if panel { verdicts::PANEL_HEIGHT } else { 0 }),
        Constraint::Min(0),
        Constraint::Length(breakdown_h),
    ])
    .areas(area);
    render_summary(f, app, row, line, summary);
    if panel {
        verdicts::render_panel(f, app, row, panel_area);
    }
    render_charts(f, app, row, charts);
    match detail {
        Some(d) => render_breakdowns(f, d, breakdowns),
        None => render_no_detail(f, row, breakdowns),
    }
}

/// The packets/s and bits/s (or bytes/s) charts side by side.
pub fn render_charts(f: &mut Frame, app: &App, row: &IfaceStats, area: Rect) {
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    let secs = app.interval.as_secs_f64();
    let pps = Series {
        title: format!(" {} packets/s ", row.name),
        values: row.history.pps(),
        scale: 1.0,
        fmt: format::pps,
        color: Color::Cyan,
    };
    render_chart(f, &pps, secs, left);
    let (unit, scale, fmt): (&str, f64, fn(f64) -> String) = match app.unit {
        RateUnit::Bits => ("bits/s", 1.0, format::bits_per_sec),
        RateUnit::Bytes => ("bytes/s", 0.125, format::bytes_per_sec),
    };
    let rate = Series {
        title: format!(" {} {unit} ", row.name),
        values: row.history.bps(),
        scale,
        fmt,
        color: Color::Magenta,
    };
    render_chart(f, &rate, secs, right);
}

/// One rate history to chart.
struct Series<'a> {
    title: String,
    values: &'a VecDeque<f64>,
    /// Applied to every value (bits to bytes).
    scale: f64,
    fmt: fn(f64) -> String,
    color: Color,
}

fn has_detail(row: &IfaceStats) -> bool {
    row.last.as_ref().is_some_and(|s| s.mode != Mode::ReadOnly)
}

fn render_summary(
    f: &mut Frame,
    app: &App,
    row: &IfaceStats,
    verdicts: Option<Line<'static>>,
    area: Rect,
) {
    let sample = row.last.as_ref();
    let mode = sample.map_or("-", |s| s.mode.as_str());
    let health = match sample.map(|s| &s.health) {
        None => Span::raw("waiting for the first sample"),
        Some(Health::Ok) => Span::styled("ok", Style::new().fg(Color::Green)),
        Some(Health::Lost { reason }) => Span::styled(
            format!("✗ LOST: {reason}"),
            Style::new().fg(Color::Red).bold(),
        ),
        Some(Health::NotObservable { reason }) => Span::styled(
            format!("✗ NOT OBSERVABLE: {reason}"),
            Style::new().fg(Color::Red).bold(),
        ),
    };
    let state = if app.is_detached(app.selected) {
        Span::styled("detached", Style::new().fg(Color::Yellow))
    } else {
        Span::raw(mode)
    };
    let first = Line::from(vec![
        Span::styled(format!(" {} ", row.name), Style::new().bold().reversed()),
        Span::raw("  "),
        state,
        Span::raw("  "),
        health,
        Span::raw(format!(
            "   now {}  {}   peak {}  {}",
            format::pps(sample.map_or(0.0, |s| s.pps)),
            format::rate(sample.map_or(0.0, |s| s.bps), app.unit),
            format::pps(row.peak_pps),
            format::rate(row.peak_bps, app.unit),
        )),
    ]);
    let second = Line::from(format!(
        " {} {} pkts {} · avg {} · kernel {} pkts {}",
        app.session_label(),
        format::packets(row.session_packets),
        format::bytes(row.session_bytes),
        row.avg_packet_size()
            .map_or_else(|| "-".into(), |a| format!("{a:.0} B")),
        format::packets(sample.map_or(0, |s| s.packets)),
        format::bytes(sample.map_or(0, |s| s.bytes)),
    ));
    let lines: Vec<Line> = [first, second].into_iter().chain(verdicts).collect();
    f.render_widget(Paragraph::new(lines), area);
}

/// A round axis top a little above `max` (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6,
/// 8 times a power of ten), so the labels read as round numbers.
fn nice_ceiling(max: f64) -> f64 {
    if !(max.is_finite() && max > 0.0) {
        return 1.0;
    }
    let want = max * 1.05;
    let pow = 10f64.powf(want.log10().floor());
    [1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .into_iter()
        .map(|m| m * pow)
        .find(|top| *top >= want)
        .unwrap_or(10.0 * pow)
}

fn render_chart(f: &mut Frame, series: &Series, interval_s: f64, area: Rect) {
    let values = series.values;
    // Two braille dots per cell: more points than that are not visible.
    let n = values.len().min(usize::from(area.width) * 2).max(1);
    let points: Vec<(f64, f64)> = values
        .iter()
        .skip(values.len().saturating_sub(n))
        .enumerate()
        .map(|(i, v)| ((i as f64 - (n - 1) as f64) * interval_s, v * series.scale))
        .collect();
    let window = (n - 1) as f64 * interval_s;
    let max = points.iter().map(|p| p.1).fold(0.0_f64, f64::max);
    let top = nice_ceiling(max);
    let dataset = Dataset::default()
        .marker(Marker::Braille)
        .graph_type(GraphType::Line)
        .style(Style::new().fg(series.color))
        .data(&points);
    let chart = Chart::new(vec![dataset])
        .block(Block::bordered().title(series.title.clone()))
        .x_axis(
            Axis::default()
                .bounds([-window.max(interval_s), 0.0])
                .labels([format!("-{}", format::span(window)), "now".to_string()])
                .style(Style::new().fg(Color::Gray)),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, top])
                .labels([
                    (series.fmt)(0.0),
                    (series.fmt)(top / 2.0),
                    (series.fmt)(top),
                ])
                .style(Style::new().fg(Color::Gray)),
        );
    f.render_widget(chart, area);
}

fn render_breakdowns(f: &mut Frame, d: &Detail, area: Rect) {
    let [protocols, sizes, cpus] = Layout::horizontal([
        Constraint::Ratio(1, 3),
        Constraint::Ratio(1, 3),
        Constraint::Ratio(1, 3),
    ])
    .areas(area);

    let block = Block::bordered().title(" Protocols · session ");
    let inner = block.inner(protocols);
    let l3_total = d.l3.iter().sum();
    let l4_total = d.l4.iter().sum();
    let named = |names: &[&str], values: &[u64]| -> Vec<(String, u64)> {
        names
            .iter()
            .map(|n| n.to_string())
            .zip(values.iter().copied())
            .collect()
    };
    let mut lines = bars::lines(
        &named(&xdp_ebpf::l3::NAMES, &d.l3),
        l3_total,
        inner.width,
        Color::Green,
    );
    lines.push(Line::from(" of IP packets:").fg(Color::Gray));
    lines.extend(bars::lines(
        &named(&xdp_ebpf::l4::NAMES, &d.l4),
        l4_total,
        inner.width,
        Color::Blue,
    ));
    f.render_widget(Paragraph::new(lines).block(block), protocols);

    let block = Block::bordered().title(" Packet sizes · session ");
    let inner = block.inner(sizes);
    let bounds = xdp_ebpf::SIZE_BUCKET_BOUNDS;
    let mut labels: Vec<String> = bounds.iter().map(|b| format!("≤{b}")).collect();
    labels.push(format!(">{}", bounds[bounds.len() - 1]));
    let items: Vec<(String, u64)> = labels.into_iter().zip(d.size_hist).collect();
    let total = d.size_hist.iter().sum();
    f.render_widget(
        Paragraph::new(bars::lines(&items, total, inner.width, Color::Yellow)).block(block),
        sizes,
    );

    let block = Block::bordered().title(" Per CPU · session ");
    let inner = block.inner(cpus);
    f.render_widget(
        Paragraph::new(cpu_lines(&d.per_cpu_packets, inner)).block(block),
        cpus,
    );
}

/// Busy CPUs in order; when they do not all fit, the busiest, and a count
/// of the rest.
fn cpu_lines(per_cpu: &[u64], area: Rect) -> Vec<Line<'static>> {
    let total = per_cpu.iter().sum();
    let mut busy: Vec<(usize, u64)> = per_cpu
        .iter()
        .copied()
        .enumerate()
        .filter(|c| c.1 > 0)
        .collect();
    let idle = per_cpu.len() - busy.len();
    if busy.is_empty() {
        return vec![Line::from(format!(
            "no packets yet ({} CPUs)",
            per_cpu.len()
        ))];
    }
    let rows = usize::from(area.height).max(1);
    let mut more = 0;
    if busy.len() > rows {
        busy.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        more = busy.len() - (rows - 1);
        busy.truncate(rows - 1);
        busy.sort_by_key(|c| c.0);
    }
    let items: Vec<(String, u64)> = busy.iter().map(|(i, n)| (format!("cpu{i}"), *n)).collect();
    let mut lines = bars::lines(&items, total, area.width, Color::Cyan);
    if more > 0 {
        lines.push(Line::from(format!("+{more} more busy, {idle} idle")).fg(Color::Gray));
    } else if idle > 0 && lines.len() < rows {
        lines.push(Line::from(format!("{idle} idle")).fg(Color::Gray));
    }
    lines
}

fn render_no_detail(f: &mut Frame, row: &IfaceStats, area: Rect) {
    let last = row.last.as_ref();
    let text = match last.map(|s| s.mode) {
        Some(Mode::ReadOnly) if last.is_some_and(|s| s.actions.is_some()) => format!(
            "{} runs another loader's program: xdptop counts its packets by verdict with an \
             fexit observer, without touching it, so there is no protocol, size or per-CPU \
             breakdown.",
            row.name
        ),
        Some(Mode::ReadOnly) => format!(
            "{} runs another loader's program: only the shared xdp_stats_map is readable \
             (packets and bytes), so there is no protocol, size or per-CPU breakdown.",
            row.name
        ),
        _ => "Breakdowns appear with the first sample from xdptop's per-CPU maps.".to_string(),
    };
    f.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: true })
            .block(Block::bordered().title(" Breakdowns ")),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::nice_ceiling;

    #[test]
    fn axis_tops_are_round_and_above_the_data() {
        assert_eq!(nice_ceiling(1_330_000.0), 1_500_000.0);
        assert_eq!(nice_ceiling(200.0), 250.0);
        assert_eq!(nice_ceiling(95.0), 100.0);
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(f64::NAN), 1.0);
        for max in [0.3, 7.0, 9.99, 123_456.0, 9.9e12] {
            let top = nice_ceiling(max);
            assert!(top > max && top <= max * 2.0, "{max} -> {top}");
        }
    }
}
