//! The dashboard in a real terminal (tmux) on a veth lab: it shows the rate
//! the generator sends, `t` shows the generator's address as a talker with
//! counting switched on in the kernel only while the view is open, `d` + `y`
//! detaches (checked with `ip link`), `a` attaches again, and `q` exits
//! leaving the terminal in its normal mode.

mod common;

use std::{
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::Duration,
};

use common::*;
use xdp_lab::{
    Traffic, send,
    tmux::{Tmux, row_pps},
};

#[test]
fn the_dashboard_shows_the_rate_detaches_and_quits_cleanly() {
    let (bpffs, lab) = setup("tui", 1);
    let iface = lab.links[0].xdp_if.clone();
    let command = format!(
        "LIBXDP_BPFFS={1} nsenter --net={0} -- {XDPTOP} --pin-dir {1} {iface}; echo EXITED:$?; \
         stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e echo | tr '\\n' ' '; echo; echo STTY-DONE; sleep 60",
        lab.xdp_netns_path().display(),
        bpffs.path().display()
    );
    let socket = std::env::temp_dir().join(format!("xdptop-test-tui-{}.tmux", std::process::id()));
    let tmux = Tmux::start(socket, 120, 40, &command).expect("tmux");

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

    let screen = tmux
        .wait_for("a steady rate", Duration::from_secs(30), None, |s| {
            row_pps(s, &iface).is_some_and(|pps| (pps - RATE).abs() / RATE < 0.03)
        })
        .expect("tmux");
    assert!(
        screen.contains("native") || screen.contains("skb"),
        "{screen}"
    );

    // Talkers on demand: no --talkers, so `t` switches counting on.
    let config = bpffs.path().join("xdptop").join(&iface).join("config");
    let switch = || {
        bpftool(&[
            "-j",
            "map",
            "dump",
            "pinned",
            config.to_str().expect("utf8"),
        ])
    };
    assert!(switch().contains("\"talkers\":0"), "off before t");
    tmux.keys("t").expect("tmux");
    let source = lab.links[0].gen_ip.to_string();
    let screen = tmux
        .wait_for(
            "the generator as a talker",
            Duration::from_secs(15),
            None,
            |s| {
                s.lines()
                    .any(|l| l.contains(&source) && l.contains("kpps") && l.contains("%"))
            },
        )
        .expect("tmux");
    assert!(screen.contains("table 1/1024 sources"), "{screen}");
    assert!(
        switch().contains("\"talkers\":1"),
        "on while the view is open"
    );
    tmux.keys("Escape").expect("tmux");
    tmux.wait_for("the overview again", Duration::from_secs(5), None, |s| {
        s.contains("t talkers")
    })
    .expect("tmux");
    // The engine switches it off between ticks.
    let mut off = false;
    for _ in 0..50 {
        if switch().contains("\"talkers\":0") {
            off = true;
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    assert!(off, "off once the view closed: {}", switch());

    tmux.keys("d").expect("tmux");
    tmux.wait_for("the confirmation", Duration::from_secs(5), None, |s| {
        s.contains("Detach xdptop from")
    })
    .expect("tmux");
    tmux.keys("y").expect("tmux");
    tmux.wait_for("the detached row", Duration::from_secs(10), None, |s| {
        s.contains("detached")
    })
    .expect("tmux");
    assert_eq!(
        xdp_prog_id(&lab, &iface),
        None,
        "ip link shows no XDP program after d"
    );

    // Let the sampler deliver samples of the detached interface (zero
    // rate) first, so the rate seen after `a` can only come from new samples.
    thread::sleep(Duration::from_millis(2_500));
    tmux.keys("a").expect("tmux");
    tmux.wait_for(
        "the rate again after a",
        Duration::from_secs(15),
        None,
        |s| {
            !s.contains("detached")
                && row_pps(s, &iface).is_some_and(|pps| (pps - RATE).abs() / RATE < 0.03)
        },
    )
    .expect("tmux");
    assert!(
        xdp_prog_id(&lab, &iface).is_some(),
        "ip link shows the program again after a"
    );

    tmux.keys("q").expect("tmux");
    let screen = tmux
        // The stty line comes after EXITED: wait for both.
        .wait_for("the exit", Duration::from_secs(10), None, |s| {
            s.contains("EXITED:") && s.contains("STTY-DONE")
        })
        .expect("tmux");
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
