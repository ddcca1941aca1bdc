//! The talkers view (`t`): snapshots at 80×24 and 120×40 from the fixture's
//! eth0 tables (an IPv6 source, an "other" line), what it says where there
//! are no talkers, and what its keys do.

use std::time::{Duration, Instant};

use ratatui::crossterm::event::KeyCode;

use super::{draw, fixture, press, screen};
use crate::tui::{App, app::View, talkers::SortBy};

fn talkers_app() -> App {
    let mut app = fixture::app();
    press(&mut app, KeyCode::Char('t'));
    app
}

#[test]
fn talkers_80x24() {
    let s = screen(&talkers_app(), 80, 24);
    for want in [
        "198.18.0.10",
        "2001:db8:18::2",
        "other",
        "udp/53",
        "table 7/131072",
    ] {
        assert!(s.contains(want), "missing {want:?} in\n{s}");
    }
    insta::assert_snapshot!(s);
}

#[test]
fn talkers_120x40() {
    let s = screen(&talkers_app(), 120, 40);
    for want in [
        "top 5 by pps",
        "sorted by pps",
        "2001:db8:18::2",
        "35.0%",
        "counted anew when it returns",
        "198.18.0.10 packets/s",
    ] {
        assert!(s.contains(want), "missing {want:?} in\n{s}");
    }
    insta::assert_snapshot!(s);
}

/// Sorted by packets (the long-lived 198.18.0.12 first), in bytes, the
/// IPv6 source selected: its sparkline shows.
#[test]
fn talkers_sorted_by_packets_in_bytes_120x40() {
    let mut app = talkers_app();
    press(&mut app, KeyCode::Char('s'));
    press(&mut app, KeyCode::Char('s'));
    press(&mut app, KeyCode::Char('u'));
    // 198.18.0.12, .10, .11, then the IPv6 source.
    for _ in 0..3 {
        press(&mut app, KeyCode::Down);
    }
    let s = screen(&app, 120, 40);
    assert!(s.contains("sorted by packets"), "{s}");
    assert!(s.contains("2001:db8:18::2 packets/s"), "{s}");
    assert!(s.contains("B/S"), "{s}");
    insta::assert_snapshot!(s);
}

/// listed + other = the interface, on screen: the shares add up to 100%.
#[test]
fn listed_and_other_shares_add_up_to_the_interface() {
    let app = talkers_app();
    let row = app.selected_row().expect("eth0");
    let sample = row.last.as_ref().expect("a sample");
    let t = sample.talkers.as_ref().expect("talkers");
    let listed: f64 = t.talkers.iter().map(|t| t.pps).sum();
    assert!((listed + t.talkers_other.pps - sample.pps).abs() < 1e-6);
    assert_eq!(t.talkers.len(), fixture::TOP);
    // 4% + 3% unlisted sources and 3% without a source (ARP).
    assert!((t.talkers_other.pps / sample.pps - 0.10).abs() < 1e-9);
    let s = screen(&app, 120, 40);
    assert!(s.contains("10.0%"), "{s}");
}

#[test]
fn without_talkers_the_view_says_how_to_get_them() {
    let mut app = App::new("lab-1", Duration::from_secs(1), &fixture::names());
    for mut t in fixture::ticks() {
        for s in &mut t.samples {
            s.talkers = None;
        }
        app.on_tick(t);
    }
    press(&mut app, KeyCode::Char('t'));
    let s = screen(&app, 80, 24);
    assert!(s.contains("xdptop --talkers 10 eth0"), "{s}");
}

#[test]
fn a_read_only_interface_says_why_it_has_no_talkers() {
    let mut app = fixture::app();
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Char('t'));
    let s = screen(&app, 120, 40);
    assert!(s.contains("Talkers · wlan0"), "{s}");
    assert!(s.contains("another loader's program holds wlan0"), "{s}");
}

#[test]
fn t_opens_and_closes_and_keys_move_the_source_not_the_interface() {
    let mut app = fixture::app();
    press(&mut app, KeyCode::Char('t'));
    assert_eq!(app.view, View::Talkers);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    assert_eq!(app.selected, 0, "still eth0");
    assert_eq!(
        app.talker_selected,
        Some("2001:db8:18::2".parse().expect("ip"))
    );
    press(&mut app, KeyCode::End);
    assert_eq!(
        app.talker_selected,
        Some("198.18.7.200".parse().expect("ip"))
    );
    press(&mut app, KeyCode::Home);
    assert_eq!(
        app.talker_selected,
        Some("198.18.0.10".parse().expect("ip"))
    );
    press(&mut app, KeyCode::Char('s'));
    assert_eq!(app.talker_sort, SortBy::Rate);
    press(&mut app, KeyCode::Char('t'));
    assert_eq!(app.view, View::Overview);
    // Outside the view, ↓ selects interfaces again and s does nothing.
    press(&mut app, KeyCode::Char('s'));
    assert_eq!(app.talker_sort, SortBy::Rate);
    press(&mut app, KeyCode::Down);
    assert_eq!(app.selected, 1);
    press(&mut app, KeyCode::Char('t'));
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.view, View::Overview);
}

#[test]
fn each_listed_source_keeps_a_history_for_its_sparkline() {
    let app = talkers_app();
    let row = app.selected_row().expect("eth0");
    assert_eq!(row.talker_history.len(), fixture::TOP);
    let h = row
        .talker_history
        .get(&"198.18.0.10".parse().expect("ip"))
        .expect("history");
    // One point a tick with a period (not the first sample).
    assert_eq!(h.len() as u64, fixture::TICKS - 1);
    // The last tick: 1.09 Mpps, 35% of it.
    assert_eq!(h.back().copied(), Some(381_500.0));
}

#[test]
fn before_the_first_sample_the_view_waits() {
    for on_demand in [None, Some(10)] {
        let mut app = App::new("lab-1", Duration::from_secs(1), &fixture::names())
            .with_talkers(Some(5).filter(|_| on_demand.is_none()))
            .with_talkers_on_demand(on_demand);
        press(&mut app, KeyCode::Char('t'));
        let s = screen(&app, 80, 24);
        assert!(s.contains("Waiting for the first sample"), "{s}");
    }
}

#[test]
fn no_size_panics_in_the_talkers_view() {
    let apps = [talkers_app(), {
        let mut a = App::new("h", Duration::from_secs(1), &fixture::names());
        press(&mut a, KeyCode::Char('t'));
        a
    }];
    let sizes = [0u16, 1, 2, 3, 4, 5, 7, 10, 20, 33, 80, 120];
    for app in &apps {
        for &w in &sizes {
            for &h in &sizes {
                draw(app, w, h);
            }
        }
    }
}

/// The fixture's ticks without talkers, as before counting is switched on.
fn app_without_talkers(on_demand: bool) -> App {
    let mut app = App::new("lab-1", Duration::from_secs(1), &fixture::names())
        .with_talkers_on_demand(on_demand.then_some(10));
    for mut t in fixture::ticks() {
        for s in &mut t.samples {
            s.talkers = None;
        }
        app.on_tick(t);
    }
    app
}

#[test]
fn switched_on_at_run_time_the_view_waits_for_the_next_samples() {
    let mut app = app_without_talkers(true);
    press(&mut app, KeyCode::Char('t'));
    let s = screen(&app, 80, 24);
    assert!(s.contains("Counting talkers on eth0"), "{s}");
    assert!(s.contains("only while this view is open"), "{s}");
    app.talkers_done(
        "eth0",
        true,
        Err(anyhow::anyhow!("no talker tables")),
        Instant::now(),
    );
    let s = screen(&app, 80, 24);
    assert!(s.contains("No talkers on eth0: no talker tables"), "{s}");
    assert!(s.contains("xdptop --detach"), "{s}");
}

/// Counted on demand in a table of the idle size: the note says both.
#[test]
fn an_idle_size_table_and_on_demand_counting_are_said() {
    let mut app = App::new("lab-1", Duration::from_secs(1), &fixture::names())
        .with_talkers_on_demand(Some(10));
    for mut t in fixture::ticks() {
        for s in &mut t.samples {
            if let Some(t) = s.talkers.as_mut() {
                t.talkers_table.capacity = crate::bpf::IDLE_TALKERS_TABLE;
            }
        }
        app.on_tick(t);
    }
    press(&mut app, KeyCode::Char('t'));
    let s = screen(&app, 120, 40);
    assert!(s.contains("table 7/1024 sources (the idle size"), "{s}");
    assert!(s.contains("Counted only"), "{s}");
    assert!(s.contains("top 10 by pps"), "{s}");
    insta::assert_snapshot!(s);
}

/// Sources in the overflow table (no slot left in the array) are said.
#[test]
fn the_overflow_table_is_said_when_it_holds_sources() {
    let mut app =
        App::new("lab-1", Duration::from_secs(1), &fixture::names()).with_talkers(Some(10));
    for mut t in fixture::ticks() {
        for s in &mut t.samples {
            if let Some(t) = s.talkers.as_mut() {
                t.talkers_table.overflow = 3;
                t.talkers_table.overflow_capacity = 16_384;
            }
        }
        app.on_tick(t);
    }
    press(&mut app, KeyCode::Char('t'));
    let s = screen(&app, 120, 40);
    assert!(
        s.contains("table 7/131072 sources + 3/16384 in the overflow table"),
        "{s}"
    );
}
