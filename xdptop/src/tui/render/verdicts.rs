//! The verdicts of an interface's XDP program (from xdptop's fexit
//! observer) and its cost: the overview's VERDICT cell, the detail view's
//! one line (small terminals) or panel with a sparkline per verdict.

use ratatui::{
    Frame,
    layout::Rect,
    style::{Color, Style},
    text::{Line, Span},
    widgets::{Block, Paragraph},
};

use super::bars::spark_scaled;
use crate::{
    format,
    sample::{Actions, Sample},
    tui::{app::App, iface_stats::IfaceStats},
};

/// Display order: what an operator looks for first.
const ORDER: [usize; xdp_ebpf::action::COUNT] = [
    xdp_ebpf::action::PASS,
    xdp_ebpf::action::DROP,
    xdp_ebpf::action::TX,
    xdp_ebpf::action::REDIRECT,
    xdp_ebpf::action::ABORTED,
];

/// Rows the panel needs: one per verdict and its borders.
pub const PANEL_HEIGHT: u16 = xdp_ebpf::action::COUNT as u16 + 2;

fn name(i: usize) -> &'static str {
    xdp_ebpf::action::NAMES.get(i).copied().unwrap_or("?")
}

fn total_pps(a: &Actions) -> f64 {
    ORDER.iter().filter_map(|&i| a.get(i)).map(|x| x.pps).sum()
}

/// Red for packets lost to a drop or an abort.
fn style(i: usize, pps: f64) -> Style {
    match i {
        xdp_ebpf::action::DROP | xdp_ebpf::action::ABORTED if pps > 0.0 => {
            Style::new().fg(Color::Red)
        }
        _ => Style::new(),
    }
}

/// The overview's cell: the drop share of the period's packets, or the
/// non-pass verdict with the larger share when another one leads (`tx
/// 40.0%` on a reflector): its `xdp_ebpf::action` index and share in %;
/// `None` in an idle period.
pub fn headline(a: &Actions) -> Option<(usize, f64)> {
    let total = total_pps(a);
    if total <= 0.0 {
        return None;
    }
    let share = |i| a.get(i).map_or(0.0, |x| x.pps) * 100.0 / total;
    let lead = ORDER[1..]
        .iter()
        .copied()
        .max_by(|&x, &y| share(x).total_cmp(&share(y)).then(y.cmp(&x)))
        .filter(|&i| share(i) > share(xdp_ebpf::action::DROP))
        .unwrap_or(xdp_ebpf::action::DROP);
    Some((lead, share(lead)))
}

/// The overview's VERDICT cell text and style.
pub fn cell(sample: Option<&Sample>) -> (String, Style) {
    match sample.and_then(|s| s.actions.as_ref()).map(headline) {
        Some(Some((i, pct))) => (format!("{} {pct:.1}%", name(i)), style(i, pct)),
        Some(None) => ("idle".into(), Style::new()),
        None => ("-".into(), Style::new()),
    }
}

/// The program's cost: `48 ns/packet · 0.3 % CPU`, or why it is unknown.
fn cost(s: &Sample, app: &App) -> String {
    let ns = match (s.run_ns_per_packet, app.run_time_unknown) {
        (Some(ns), _) => format!("{ns:.0} ns/packet"),
        (None, Some(why)) => format!("ns/packet {why}"),
        (None, None) => "- ns/packet".into(),
    };
    match s.run_cpu_percent {
        Some(cpu) => format!("{ns} · {cpu:.1} % CPU"),
        None => ns,
    }
}

/// The verdicts over the last period in one line, for small terminals:
/// ` verdicts  48 ns/packet · 5.3 % CPU · pass 900 kpps 81.8% · drop 200 kpps 18.2%`;
/// tx, redirect and aborted only when some were seen.
pub fn line(s: &Sample, app: &App) -> Option<Line<'static>> {
    let a = s.actions.as_ref()?;
    let total = total_pps(a);
    let mut spans = vec![
        Span::styled(" verdicts ", Style::new().bold()),
        Span::raw(format!(" {}", cost(s, app))),
    ];
    for &i in &ORDER {
        let Some(x) = a.get(i) else { continue };
        let always = matches!(i, xdp_ebpf::action::PASS | xdp_ebpf::action::DROP);
        if !always && x.pps <= 0.0 {
            continue;
        }
        let share = if total > 0.0 {
            format!(" {}", format::share(x.pps, total))
        } else {
            String::new()
        };
        spans.push(Span::raw(" ·"));
        let text = format!(" {} {}{share}", name(i), format::pps(x.pps));
        spans.push(Span::styled(text, style(i, x.pps)));
    }
    Some(Line::from(spans))
}

/// The panel: per verdict its rate, share, bit/s (or bytes/s) and a
/// sparkline of its packets/s, all on one scale so heights compare.
pub fn render_panel(f: &mut Frame, app: &App, row: &IfaceStats, area: Rect) {
    let Some(s) = row.last.as_ref() else { return };
    let Some(a) = s.actions.as_ref() else { return };
    let block = Block::bordered().title(format!(" Verdicts · {} ", cost(s, app)));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let total = total_pps(a);
    // name, pps, share, rate: the sparklines get the rest.
    const TEXT: usize = 8 + 1 + 10 + 1 + 7 + 1 + 12 + 1;
    let spark_w = usize::from(inner.width).saturating_sub(TEXT);
    let history = row.verdicts.as_ref();
    let max = ORDER
        .iter()
        .filter_map(|&i| history?.pps(i))
        .flat_map(|h| h.iter().rev().take(spark_w))
        .copied()
        .fold(0.0_f64, f64::max);
    let lines: Vec<Line> = ORDER
        .iter()
        .filter_map(|&i| Some((i, a.get(i)?)))
        .map(|(i, x)| {
            let share = format::share(x.pps, total);
            let values = history.and_then(|h| h.pps(i));
            let sparkline =
                values.map_or_else(|| " ".repeat(spark_w), |v| spark_scaled(v, spark_w, max));
            Line::from(vec![
                Span::styled(format!("{:<8}", name(i)), style(i, x.pps).bold()),
                Span::styled(format!(" {:>10}", format::pps(x.pps)), style(i, x.pps)),
                Span::raw(format!(" {share:>7}")),
                Span::raw(format!(" {:>12} ", format::rate(x.bps, app.unit))),
                Span::styled(sparkline, style(i, x.pps).fg(Color::Cyan)),
            ])
        })
        .collect();
    f.render_widget(Paragraph::new(lines), inner);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::ActionStats;
    use xdp_ebpf::action::{ABORTED, DROP, TX};

    fn actions(pass: f64, drop: f64, tx: f64, redirect: f64, aborted: f64) -> Actions {
        let s = |pps| ActionStats {
            pps,
            ..ActionStats::default()
        };
        Actions {
            pass: s(pass),
            drop: s(drop),
            tx: s(tx),
            redirect: s(redirect),
            aborted: s(aborted),
        }
    }

    #[test]
    fn the_overview_shows_drops_unless_another_verdict_leads() {
        assert_eq!(
            headline(&actions(900.0, 100.0, 0.0, 0.0, 0.0)),
            Some((DROP, 10.0))
        );
        // Everything passes: 0 % dropped, said as such.
        assert_eq!(
            headline(&actions(50.0, 0.0, 0.0, 0.0, 0.0)),
            Some((DROP, 0.0))
        );
        assert_eq!(
            headline(&actions(0.0, 10.0, 60.0, 30.0, 0.0)),
            Some((TX, 60.0))
        );
        // A tie keeps the drop share.
        assert_eq!(
            headline(&actions(50.0, 25.0, 25.0, 0.0, 0.0)),
            Some((DROP, 25.0))
        );
        assert_eq!(
            headline(&actions(0.0, 0.0, 0.0, 0.0, 4.0)),
            Some((ABORTED, 100.0))
        );
        assert_eq!(headline(&actions(0.0, 0.0, 0.0, 0.0, 0.0)), None);
    }
}
