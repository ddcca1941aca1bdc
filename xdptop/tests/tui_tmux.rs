//! The dashboard in a real terminal (tmux) on a veth lab: it shows the rate
//! the generator sends, `d` + `y` detaches (checked with `ip link`), `a`
//! attaches again, and `q` exits leaving the terminal in its normal mode.

mod common;

use std::{
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use common::*;
use xdp_lab::{Traffic, send};

struct Tmux {
    session: String,
}

impl Tmux {
    fn start(session: &str, command: &str) -> Self {
        let out = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                session,
                "-x",
                "120",
                "-y",
                "40",
                command,
            ])
            .output()
            .expect("tmux must be installed (apt-get install tmux)");
        assert!(out.status.success(), "tmux: {}", stderr_of(&out));
        Self {
            session: session.to_owned(),
        }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &str) {
        let out = Command::new("tmux")
            .args(["send-keys", "-t", &self.session, keys])
            .output()
            .expect("tmux send-keys");
        assert!(out.status.success());
    }

    fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen();
            if pred(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} on screen within {timeout:?}:\n{screen}"
            );
            thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .output();
    }
}

/// The PPS column of `iface`'s overview row, in packets/s.
fn row_pps(screen: &str, iface: &str) -> Option<f64> {
    let line = screen.lines().find(|l| {
        l.trim_start_matches(['│', ' ', '›'])
            .starts_with(&format!("{iface} "))
    })?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| w.ends_with("pps"))?;
    let value: f64 = words.get(at.checked_sub(1)?)?.parse().ok()?;
    let scale = match words[at] {
        "pps" => 1.0,
        "kpps" => 1e3,
        "Mpps" => 1e6,
        _ => return None,
    };
    Some(value * scale)
}

#[test]
fn the_dashboard_shows_the_rate_detaches_and_quits_cleanly() {
    let (bpffs, lab) = setup("tui", 1);
    let iface = lab.links[0].xdp_if.clone();
    let command = format!(
        "nsenter --net={} -- {XDPTOP} --pin-dir {} {iface}; echo EXITED:$?; \
         stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e echo | tr '\\n' ' '; echo; sleep 60",
        lab.xdp_netns_path().display(),
        bpffs.path().display()
    );
    let tmux = Tmux::start(&format!("xdptop-test-{}", std::process::id()), &command);

    // 2000 packets/s for as long as the test needs.
    const RATE: f64 = 2_000.0;
    let stop = Arc::new(AtomicBool::new(false));
    let generator = {
        let stop = Arc::clone(&stop);
        let ns = lab.gen_netns().expect("netns");
        let l = lab.links[0].clone();
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                send(
                    &ns,
                    &Traffic::udp(l.gen_ip, l.xdp_ip, 500, 100, RATE as u64),
                )
                .expect("send");
            }
        })
    };

    let screen = tmux.wait_for("a steady rate", Duration::from_secs(30), |s| {
        row_pps(s, &iface).is_some_and(|pps| (pps - RATE).abs() / RATE < 0.03)
    });
    assert!(
        screen.contains("native") || screen.contains("skb"),
        "{screen}"
    );

    tmux.keys("d");
    tmux.wait_for("the confirmation", Duration::from_secs(5), |s| {
        s.contains("Detach xdptop from")
    });
    tmux.keys("y");
    tmux.wait_for("the detached row", Duration::from_secs(10), |s| {
        s.contains("detached")
    });
    assert_eq!(
        xdp_prog_id(&lab, &iface),
        None,
        "ip link shows no XDP program after d"
    );

    // Let the sampler deliver samples of the detached interface (zero
    // rate) first, so the rate seen after `a` can only come from new samples.
    thread::sleep(Duration::from_millis(2_500));
    tmux.keys("a");
    tmux.wait_for("the rate again after a", Duration::from_secs(15), |s| {
        !s.contains("detached")
            && row_pps(s, &iface).is_some_and(|pps| (pps - RATE).abs() / RATE < 0.03)
    });
    assert!(
        xdp_prog_id(&lab, &iface).is_some(),
        "ip link shows the program again after a"
    );

    tmux.keys("q");
    let screen = tmux.wait_for("the exit", Duration::from_secs(10), |s| {
        s.contains("EXITED:")
    });
    stop.store(true, Ordering::Relaxed);
    generator.join().expect("generator");
    assert!(screen.contains("EXITED:0"), "{screen}");
    assert!(
        screen.contains("icanon echo"),
        "the terminal is back in canonical mode with echo:\n{screen}"
    );
}

#[test]
fn without_a_terminal_it_points_to_headless() {
    let out = Command::new(XDPTOP)
        .arg("lo")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("--headless"),
        "{}",
        stderr_of(&out)
    );
}
