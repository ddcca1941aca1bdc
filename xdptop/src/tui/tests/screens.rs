//! Snapshots of the screen at 80×24 and 120×40, and no panic at any size.

use std::time::{Duration, Instant};

use ratatui::crossterm::event::KeyCode;

use super::{draw, fixture, press, screen};
use crate::{
    status::{ExportState, ExportStatus},
    tui::App,
};

fn detail_app() -> App {
    let mut app = fixture::app();
    press(&mut app, KeyCode::Enter);
    app
}

fn help_app() -> App {
    let mut app = fixture::app();
    press(&mut app, KeyCode::Char('?'));
    app
}

fn confirm_app() -> App {
    let mut app = fixture::app();
    press(&mut app, KeyCode::Char('d'));
    app
}

#[test]
fn overview_80x24() {
    insta::assert_snapshot!(screen(&fixture::app(), 80, 24));
}

#[test]
fn overview_120x40() {
    insta::assert_snapshot!(screen(&fixture::app(), 120, 40));
}

#[test]
fn detail_80x24() {
    insta::assert_snapshot!(screen(&detail_app(), 80, 24));
}

#[test]
fn detail_120x40() {
    insta::assert_snapshot!(screen(&detail_app(), 120, 40));
}

#[test]
fn detail_of_a_read_only_interface_says_why_breakdowns_are_absent() {
    let mut app = fixture::app();
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Enter);
    let s = screen(&app, 120, 40);
    assert!(s.contains("another loader's program"), "{s}");
    assert!(s.contains("xdp_stats_map"), "{s}");
    insta::assert_snapshot!(s);
}

#[test]
fn help_80x24() {
    insta::assert_snapshot!(screen(&help_app(), 80, 24));
}

#[test]
fn help_120x40() {
    insta::assert_snapshot!(screen(&help_app(), 120, 40));
}

#[test]
fn confirm_detach_80x24() {
    insta::assert_snapshot!(screen(&confirm_app(), 80, 24));
}

#[test]
fn confirm_detach_120x40() {
    insta::assert_snapshot!(screen(&confirm_app(), 120, 40));
}

/// Paused, in bytes, with a failing exporter and a fresh message.
#[test]
fn paused_bytes_failing_export_120x40() {
    let mut app = fixture::app();
    press(&mut app, KeyCode::Char('p'));
    press(&mut app, KeyCode::Char('u'));
    app.on_export(ExportStatus {
        target: "otlp grpc http://localhost:4317".into(),
        state: ExportState::Failing,
        exported: 150,
        dropped: 12,
        last_error: Some("connection refused".into()),
    });
    let s = screen(&app, 120, 40);
    for want in [
        "PAUSED",
        "failing",
        "connection refused",
        "12 dropped",
        "B/S",
    ] {
        assert!(s.contains(want), "missing {want:?} in\n{s}");
    }
    insta::assert_snapshot!(s);
}

#[test]
fn drawing_does_not_change_the_app() {
    let app = detail_app();
    let first = screen(&app, 100, 30);
    assert_eq!(screen(&app, 100, 30), first);
}

#[test]
fn an_empty_app_draws_before_any_sample() {
    let app = App::new("h", Duration::from_secs(1), &fixture::names());
    let s = screen(&app, 80, 24);
    assert!(s.contains("waiting for the first sample"), "{s}");
}

#[test]
fn no_size_panics_in_any_view() {
    let apps = [
        fixture::app(),
        detail_app(),
        help_app(),
        confirm_app(),
        App::new("h", Duration::from_secs(1), &[]),
    ];
    let sizes = [0u16, 1, 2, 3, 4, 5, 7, 10, 20, 33, 80];
    for app in &apps {
        for &w in &sizes {
            for &h in &sizes {
                draw(app, w, h);
            }
        }
        draw(app, 20, 5);
        draw(app, 1000, 400);
        draw(app, 2000, 3);
        draw(app, 3, 1000);
    }
}

#[test]
fn a_detached_row_says_so_and_how_to_attach_again() {
    let mut app = fixture::app();
    app.detach_done("eth0", Ok(()), Instant::now());
    let s = screen(&app, 100, 30);
    assert!(s.contains("xdptop detached · a attaches again"), "{s}");
    assert!(s.contains("detached xdptop from eth0"), "{s}");
}

#[test]
fn a_20x5_terminal_still_shows_rates() {
    let s = screen(&fixture::app(), 20, 5);
    assert!(s.contains("eth0"), "{s}");
    insta::assert_snapshot!(s);
}

/// Snapshots show text only; the colours that carry meaning are checked
/// here: a lost interface in red, the selected row reversed.
#[test]
fn lost_rows_are_red_and_the_selection_is_highlighted() {
    use ratatui::style::{Color, Modifier};
    let terminal = draw(&fixture::app(), 120, 40);
    let buf = terminal.backend().buffer();
    let find = |text: &str| {
        (0..buf.area.height)
            .find_map(|y| {
                let line: String = (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect();
                line.find(text)
                    .map(|i| (line[..i].chars().count() as u16, y))
            })
            .unwrap_or_else(|| panic!("{text:?} not on screen"))
    };
    let (x, y) = find("LOST");
    assert_eq!(buf[(x, y)].fg, Color::Red);
    let (x, y) = find("›eth0");
    assert!(buf[(x + 1, y)].modifier.contains(Modifier::REVERSED));
    let (x, y) = find("veth-lab0");
    assert!(!buf[(x, y)].modifier.contains(Modifier::REVERSED));
}

/// An interface whose program xdptop observes: 900 kpps pass, drops rising
/// by 50 kpps per second, 48 ns per packet; `run` false: no run time known.
fn verdicts_app(run: bool) -> App {
    use crate::{
        sample::{ActionTotals, Counts, Mode, Reading, RunStats},
        sampler::{FakeSource, Sampler},
    };
    let reading = |i: u64| {
        let drops = 50_000 * i * (i + 1) / 2;
        let mut a = ActionTotals::default();
        a[xdp_ebpf::action::PASS] = Counts {
            packets: 900_000 * i,
            bytes: 900_000 * i * 100,
        };
        a[xdp_ebpf::action::DROP] = Counts {
            packets: drops,
            bytes: drops * 500,
        };
        let packets = 900_000 * i + drops;
        Ok(Reading {
            packets,
            bytes: 900_000 * i * 100 + drops * 500,
            epoch: 1,
            detail: None,
            actions: Some(a),
            run: run.then_some(RunStats {
                prog_id: 7,
                run_time_ns: 48 * packets,
                run_cnt: packets,
            }),
        })
    };
    let mut sampler = Sampler::new(vec![Box::new(FakeSource {
        name: "fw0".into(),
        mode: Mode::ReadOnly,
        readings: (0..5).map(reading).collect(),
    })]);
    let mut app = App::new("lab-1", Duration::from_secs(1), &["fw0".to_owned()]);
    for i in 0..5 {
        app.on_tick(sampler.sample(
            1_700_000_000 * fixture::SEC + i * fixture::SEC,
            i * fixture::SEC,
        ));
    }
    app
}

/// Issue 15: where xdptop observes the interface's program, the detail view
/// shows its verdicts over the last period with their shares and
/// sparklines, and the program's run time per packet and CPU share, from
/// the same samples as `--json`.
#[test]
fn detail_shows_the_verdicts_and_the_run_time_per_packet() {
    let mut app = verdicts_app(true);
    press(&mut app, KeyCode::Enter);
    let s = screen(&app, 120, 40);
    // 200 kpps of 1.1 Mpps dropped in the last second; 48 ns × 1.1 M.
    assert!(s.contains("Verdicts · 48 ns/packet · 5.3 % CPU"), "{s}");
    assert!(s.contains("drop       200 kpps   18.2%"), "{s}");
    insta::assert_snapshot!(s);
}

/// On a small terminal the verdicts fold into one line above the charts.
#[test]
fn detail_80x24_folds_the_verdicts_into_a_line() {
    let mut app = verdicts_app(true);
    press(&mut app, KeyCode::Enter);
    let s = screen(&app, 80, 24);
    assert!(
        s.contains(
            "verdicts  48 ns/packet · 5.3 % CPU · pass 900 kpps 81.8% · drop 200 kpps 18.2%"
        ),
        "{s}"
    );
    insta::assert_snapshot!(s);
}

/// The overview's VERDICT column: the drop share of each observed
/// interface; absent when no interface's verdicts are observed.
#[test]
fn the_overview_shows_the_drop_share() {
    let app = verdicts_app(true);
    let s = screen(&app, 120, 40);
    assert!(s.contains("VERDICT"), "{s}");
    assert!(s.contains("drop 18.2%"), "{s}");
    insta::assert_snapshot!(s);
    let plain = screen(&fixture::app(), 120, 40);
    assert!(!plain.contains("VERDICT"), "{plain}");
}

/// Without CAP_SYS_ADMIN the kernel's statistics stay off: the run time
/// says what it needs instead of a blank.
#[test]
fn the_run_time_says_it_needs_cap_sys_admin() {
    let mut app = verdicts_app(false);
    app.run_time_unknown = Some("needs CAP_SYS_ADMIN");
    press(&mut app, KeyCode::Enter);
    let s = screen(&app, 120, 40);
    assert!(
        s.contains("Verdicts · ns/packet needs CAP_SYS_ADMIN "),
        "{s}"
    );
    let s = screen(&app, 80, 24);
    assert!(
        s.contains("verdicts  ns/packet needs CAP_SYS_ADMIN ·"),
        "{s}"
    );
}

/// Issue 15: an interface nothing can count is never a healthy idle row: it
/// says so, and why, where the rates would be.
#[test]
fn a_row_that_cannot_be_observed_says_why() {
    use crate::{
        sample::{Mode, NotObservable},
        sampler::{FakeSource, Sampler},
    };
    let not = || {
        Err(anyhow::Error::new(NotObservable(
            "another loader's XDP program 42 (xdp_fw) on fw0 does not update xdp_stats_map".into(),
        )))
    };
    let mut sampler = Sampler::new(vec![Box::new(FakeSource {
        name: "fw0".into(),
        mode: Mode::ReadOnly,
        readings: (0..3).map(|_| not()).collect(),
    })]);
    let mut app = App::new("lab-1", Duration::from_secs(1), &["fw0".to_owned()]);
    for i in 0..3 {
        app.on_tick(sampler.sample(i * fixture::SEC, i * fixture::SEC));
    }
    let s = screen(&app, 120, 40);
    assert!(
        s.contains("✗ NOT OBSERVABLE: another loader's XDP program 42"),
        "{s}"
    );
    assert!(!s.contains(" ok "), "{s}");
    press(&mut app, KeyCode::Enter);
    let s = screen(&app, 120, 40);
    assert!(s.contains("✗ NOT OBSERVABLE"), "{s}");
}
