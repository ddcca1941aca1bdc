//! Keys and actions: what each key does to the App, that kernel actions
//! reach the caller's `Control` only when they should, and that their
//! outcomes (arriving later as events) show.

use std::time::Instant;

use ratatui::crossterm::event::{
    Event as Term, KeyCode, KeyEvent, KeyEventKind, KeyEventState, KeyModifiers,
};

use super::fixture;
use crate::{
    engine::Outcome,
    format::RateUnit,
    sample::{Delta, Mode},
    sampler::Tick,
    status::ExportStatus,
    tui::{
        App, Control, Event,
        app::{MESSAGE_TTL, Overlay, View},
        handle_event,
    },
};

/// Records requests and answers them as the engine would, later: the
/// outcomes wait in `pending` until [`keys`] delivers them as events.
#[derive(Default)]
struct FakeControl {
    calls: Vec<String>,
    fail: bool,
    pending: Vec<Outcome>,
}

impl Control for FakeControl {
    fn detach(&mut self, interface: &str) {
        self.calls.push(format!("detach {interface}"));
        let result = if self.fail {
            Err(anyhow::anyhow!("link {interface} is busy"))
        } else {
            Ok(())
        };
        self.pending.push(Outcome::Detached {
            interface: interface.to_owned(),
            result,
        });
    }
    fn attach(&mut self, interface: &str) {
        self.calls.push(format!("attach {interface}"));
        let result = if self.fail {
            Err(anyhow::anyhow!("no XDP support on {interface}"))
        } else {
            Ok(Mode::Skb)
        };
        self.pending.push(Outcome::Attached {
            interface: interface.to_owned(),
            result,
        });
    }
    fn view_reset(&mut self) {
        self.calls.push("view_reset".into());
    }
    fn talkers(&mut self, interface: &str, on: bool) {
        self.calls.push(format!("talkers {interface} {on}"));
        let result = if self.fail {
            Err(anyhow::anyhow!("no talker tables"))
        } else {
            Ok(1024)
        };
        self.pending.push(Outcome::Talkers {
            interface: interface.to_owned(),
            on,
            result,
        });
    }
}

fn key(code: KeyCode) -> Event {
    Event::Input(Term::Key(KeyEvent::from(code)))
}

/// Feeds keys, each followed by the outcomes of what it requested; returns
/// whether the dashboard keeps running after the last.
fn keys(app: &mut App, control: &mut FakeControl, codes: &[KeyCode]) -> bool {
    codes.iter().all(|c| {
        let on = handle_event(app, key(*c), control, Instant::now());
        for outcome in std::mem::take(&mut control.pending) {
            assert!(handle_event(
                app,
                Event::Done(outcome),
                control,
                Instant::now()
            ));
        }
        on
    })
}

fn message(app: &App) -> String {
    app.message
        .as_ref()
        .map(|m| m.text.clone())
        .unwrap_or_default()
}

#[test]
fn selection_moves_and_stays_in_range() {
    let (mut app, mut c) = (fixture::app(), FakeControl::default());
    keys(&mut app, &mut c, &[KeyCode::Up]);
    assert_eq!(app.selected, 0);
    keys(&mut app, &mut c, &[KeyCode::Char('j'), KeyCode::Down]);
    assert_eq!(app.selected, 2);
    keys(
        &mut app,
        &mut c,
        &[KeyCode::Down, KeyCode::Down, KeyCode::Down],
    );
    assert_eq!(app.selected, 3);
    keys(&mut app, &mut c, &[KeyCode::Char('k')]);
    assert_eq!(app.selected_row().map(|r| &*r.name), Some("wlan0"));
}

#[test]
fn enter_opens_the_detail_view_and_esc_closes_it() {
    let (mut app, mut c) = (fixture::app(), FakeControl::default());
    keys(&mut app, &mut c, &[KeyCode::Enter]);
    assert_eq!(app.view, View::Detail);
    keys(&mut app, &mut c, &[KeyCode::Down]);
    assert_eq!((app.view, app.selected), (View::Detail, 1));
    keys(&mut app, &mut c, &[KeyCode::Esc]);
    assert_eq!(app.view, View::Overview);
}

#[test]
fn reset_clears_the_view_tells_control_and_leaves_kernel_counters() {
    let (mut app, mut c) = (fixture::app(), FakeControl::default());
    let kernel = app.rows()[0].last.as_ref().map(|s| s.packets);
    assert!(app.rows()[0].session_packets > 0);
    keys(&mut app, &mut c, &[KeyCode::Char('r')]);
    let row = &app.rows()[0];
    assert_eq!((row.session_packets, row.session_bytes), (0, 0));
    assert_eq!((row.peak_pps, row.peak_bps), (0.0, 0.0));
    assert!(row.history.is_empty());
    assert_eq!(row.last.as_ref().map(|s| s.packets), kernel);
    assert_eq!(c.calls, ["view_reset"]);
    assert!(message(&app).contains("kernel counters untouched"));
}

fn next_tick(app: &App, extra: u64) -> Tick {
    let mut s = app.rows()[0].last.clone().expect("a sample");
    s.packets += extra;
    s.bytes += extra * 1_000;
    s.pps = extra as f64;
    s.delta = Some(Delta {
        packets: extra,
        bytes: extra * 1_000,
        detail: None,
    });
    Tick {
        seq: 99,
        samples: vec![s],
    }
}

#[test]
fn pause_freezes_the_view_while_samples_keep_arriving() {
    let (mut app, mut c) = (fixture::app(), FakeControl::default());
    let before = app.rows()[0].session_packets;
    keys(&mut app, &mut c, &[KeyCode::Char('p')]);
    assert!(app.paused());
    let tick = next_tick(&app, 500);
    handle_event(&mut app, Event::Tick(tick), &mut c, Instant::now());
    assert_eq!(app.rows()[0].session_packets, before);
    // Space resumes, and the samples that came meanwhile are all counted.
    keys(&mut app, &mut c, &[KeyCode::Char(' ')]);
    assert!(!app.paused());
    assert_eq!(app.rows()[0].session_packets, before + 500);
}

#[test]
fn reset_while_paused_shows_the_reset_view() {
    let (mut app, mut c) = (fixture::app(), FakeControl::default());
    keys(&mut app, &mut c, &[KeyCode::Char('p'), KeyCode::Char('r')]);
    assert!(app.paused());
    assert_eq!(app.rows()[0].session_packets, 0);
}

#[test]
fn detach_asks_first_and_no_keeps_the_attachment() {
    let (mut app, mut c) = (fixture::app(), FakeControl::default());
    keys(&mut app, &mut c, &[KeyCode::Char('d')]);
    assert_eq!(app.overlay, Some(Overlay::ConfirmDetach(0)));
    // Other keys do nothing while the question is open; q cancels, it does
    // not quit.
    assert!(keys(
        &mut app,
        &mut c,
        &[KeyCode::Char('r'), KeyCode::Char('q')]
    ));
    assert_eq!(app.overlay, None);
    assert!(c.calls.is_empty());
    assert!(!app.is_detached(0));
}

#[test]
fn detach_confirmed_calls_control_and_marks_the_row() {
    let (mut app, mut c) = (fixture::app(), FakeControl::default());
    keys(
        &mut app,
        &mut c,
        &[KeyCode::Down, KeyCode::Char('d'), KeyCode::Char('y')],
    );
    assert_eq!(c.calls, ["detach veth-lab0"]);
    assert!(app.is_detached(1));
    assert!(message(&app).contains("detached xdptop from veth-lab0"));
    // Attach again: Control is asked and the row is attached with its mode.
    keys(&mut app, &mut c, &[KeyCode::Char('a')]);
    assert_eq!(c.calls, ["detach veth-lab0", "attach veth-lab0"]);
    assert!(!app.is_detached(1));
    assert!(message(&app).contains("(skb)"), "{}", message(&app));
}

#[test]
fn a_requested_detach_shows_as_pending_until_its_outcome_arrives() {
    let (mut app, mut c) = (fixture::app(), FakeControl::default());
    let now = Instant::now();
    for code in [KeyCode::Char('d'), KeyCode::Char('y')] {
        assert!(handle_event(&mut app, key(code), &mut c, now));
    }
    assert_eq!(c.calls, ["detach eth0"]);
    assert!(!app.is_detached(0), "not detached before the outcome");
    assert_eq!(message(&app), "detaching xdptop from eth0...");
    // Keys still work meanwhile.
    assert!(handle_event(&mut app, key(KeyCode::Down), &mut c, now));
    assert_eq!(app.selected, 1);
    let outcome = c.pending.pop().expect("an outcome");
    assert!(handle_event(&mut app, Event::Done(outcome), &mut c, now));
    assert!(app.is_detached(0));
    assert!(message(&app).contains("detached xdptop from eth0"));
}

#[test]
fn a_failed_detach_is_reported_and_the_row_stays_attached() {
    let (mut app, mut c) = (
        fixture::app(),
        FakeControl {
            fail: true,
            ..Default::default()
        },
    );
    keys(&mut app, &mut c, &[KeyCode::Char('d'), KeyCode::Char('y')]);
    assert!(!app.is_detached(0));
    let m = app.message.as_ref().expect("message");
    assert!(m.error && m.text.contains("link eth0 is busy"), "{m:?}");
}

#[test]
fn read_only_interfaces_cannot_be_detached_or_attached() {
    let (mut app, mut c) = (fixture::app(), FakeControl::default());
    keys(
        &mut app,
        &mut c,
        &[KeyCode::Down, KeyCode::Down, KeyCode::Char('d')],
    );
    assert_eq!(app.overlay, None);
    assert!(message(&app).contains("another loader's program"));
    keys(&mut app, &mut c, &[KeyCode::Char('a')]);
    assert!(c.calls.is_empty());
}

#[test]
fn attach_only_when_detached_or_lost() {
    let (mut app, mut c) = (fixture::app(), FakeControl::default());
    keys(&mut app, &mut c, &[KeyCode::Char('a')]);
    assert!(c.calls.is_empty());
    assert!(message(&app).contains("already attached"));
    // eth1's counters are lost: attaching again is allowed.
    keys(&mut app, &mut c, &[KeyCode::Char('G'), KeyCode::Char('a')]);
    assert_eq!(c.calls, ["attach eth1"]);
}

#[test]
fn quit_keys_end_the_loop() {
    let (mut app, mut c) = (fixture::app(), FakeControl::default());
    assert!(!keys(&mut app, &mut c, &[KeyCode::Char('q')]));
    let ctrl_c = Event::Input(Term::Key(KeyEvent::new(
        KeyCode::Char('c'),
        KeyModifiers::CONTROL,
    )));
    keys(&mut app, &mut c, &[KeyCode::Char('d')]);
    assert!(!handle_event(&mut app, ctrl_c, &mut c, Instant::now()));
    assert!(!handle_event(&mut app, Event::Quit, &mut c, Instant::now()));
    assert!(c.calls.is_empty());
}

#[test]
fn help_takes_the_keys_until_closed() {
    let (mut app, mut c) = (fixture::app(), FakeControl::default());
    keys(
        &mut app,
        &mut c,
        &[KeyCode::Char('?'), KeyCode::Char('r'), KeyCode::Char('d')],
    );
    assert_eq!(app.overlay, Some(Overlay::Help));
    assert!(c.calls.is_empty());
    keys(&mut app, &mut c, &[KeyCode::Esc]);
    assert_eq!(app.overlay, None);
}

#[test]
fn units_toggle_and_key_releases_are_ignored() {
    let (mut app, mut c) = (fixture::app(), FakeControl::default());
    keys(&mut app, &mut c, &[KeyCode::Char('u')]);
    assert_eq!(app.unit, RateUnit::Bytes);
    let release = KeyEvent {
        code: KeyCode::Char('u'),
        modifiers: KeyModifiers::NONE,
        kind: KeyEventKind::Release,
        state: KeyEventState::NONE,
    };
    handle_event(
        &mut app,
        Event::Input(Term::Key(release)),
        &mut c,
        Instant::now(),
    );
    assert_eq!(app.unit, RateUnit::Bytes);
}

#[test]
fn messages_expire() {
    let mut app = fixture::app();
    let now = Instant::now();
    app.say("hello", false, now);
    assert!(!app.expire(now));
    assert_eq!(app.next_deadline(), Some(now + MESSAGE_TTL));
    assert!(app.expire(now + MESSAGE_TTL));
    assert!(app.message.is_none());
}

#[test]
fn ticks_and_export_status_update_the_app() {
    let (mut app, mut c) = (
        App::new("h", std::time::Duration::from_secs(1), &[]),
        FakeControl::default(),
    );
    for t in fixture::ticks().into_iter().take(2) {
        handle_event(&mut app, Event::Tick(t), &mut c, Instant::now());
    }
    // Interfaces not named at start get rows, in sample order.
    let names: Vec<&str> = app.rows().iter().map(|r| &*r.name).collect();
    assert_eq!(names, ["eth0", "veth-lab0", "wlan0", "eth1"]);
    assert_eq!(app.ticks, 2);
    let status = ExportStatus {
        target: "t".into(),
        ..Default::default()
    };
    handle_event(
        &mut app,
        Event::Export(status.clone()),
        &mut c,
        Instant::now(),
    );
    assert_eq!(app.export, Some(status));
}

/// Without --talkers, the talkers view switches counting on for its
/// interface while open, and off when it closes (any way but quitting).
#[test]
fn the_talkers_view_counts_only_while_open_without_the_flag() {
    let mut app = fixture::app()
        .with_talkers(None)
        .with_talkers_on_demand(Some(10));
    let mut control = FakeControl::default();
    assert!(keys(&mut app, &mut control, &[KeyCode::Char('t')]));
    assert_eq!(app.view, View::Talkers);
    assert_eq!(app.talkers_counting.as_deref(), Some("eth0"));
    assert!(keys(
        &mut app,
        &mut control,
        &[KeyCode::Down, KeyCode::Char('s')]
    ));
    assert!(keys(&mut app, &mut control, &[KeyCode::Esc]));
    assert_eq!(app.talkers_counting, None);
    // t closes too, and so does Enter (to the detail view).
    assert!(keys(
        &mut app,
        &mut control,
        &[
            KeyCode::Char('t'),
            KeyCode::Char('t'),
            KeyCode::Char('t'),
            KeyCode::Enter
        ]
    ));
    assert_eq!(app.view, View::Detail);
    assert_eq!(
        control.calls,
        [
            "talkers eth0 true",
            "talkers eth0 false",
            "talkers eth0 true",
            "talkers eth0 false",
            "talkers eth0 true",
            "talkers eth0 false",
        ]
    );
    // Another loader's program (wlan0): nothing to switch on.
    control.calls.clear();
    assert!(keys(
        &mut app,
        &mut control,
        &[
            KeyCode::Esc,
            KeyCode::Down,
            KeyCode::Down,
            KeyCode::Char('t'),
            KeyCode::Esc
        ]
    ));
    assert!(control.calls.is_empty(), "{:?}", control.calls);
}

#[test]
fn with_the_flag_the_talkers_view_switches_nothing() {
    let mut app = fixture::app();
    let mut control = FakeControl::default();
    assert!(keys(
        &mut app,
        &mut control,
        &[KeyCode::Char('t'), KeyCode::Esc]
    ));
    assert!(control.calls.is_empty(), "{:?}", control.calls);
}

#[test]
fn a_failed_switch_is_said_in_the_footer_and_in_the_view() {
    let mut app = fixture::app()
        .with_talkers(None)
        .with_talkers_on_demand(Some(10));
    let mut control = FakeControl {
        fail: true,
        ..FakeControl::default()
    };
    assert!(keys(&mut app, &mut control, &[KeyCode::Char('t')]));
    assert!(
        message(&app).contains("no talker tables"),
        "{}",
        message(&app)
    );
    assert_eq!(app.talkers_counting, None);
    assert_eq!(
        app.talkers_error,
        Some(("eth0".into(), "no talker tables".into()))
    );
    // Closing does not switch off what never went on.
    assert!(keys(&mut app, &mut control, &[KeyCode::Esc]));
    assert_eq!(control.calls, ["talkers eth0 true"]);
}
