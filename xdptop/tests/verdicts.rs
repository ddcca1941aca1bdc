//! Issue 15: the verdicts of any XDP program, counted by xdptop's fexit
//! observer without touching the program: a legacy program loaded with
//! `ip link`, and a libxdp chain that xdptop joins. The firewall
//! (xdptop/tests/c/udp_over_100_firewall.bpf.c) drops UDP payloads over 100
//! bytes and passes the rest.
//!
//! fexit needs BPF trampolines: these tests skip, loudly, where the kernel
//! has none (the 6.18 development host; tests/lab.rs checks what xdptop says
//! there) and run in `cargo xtask vmtest`'s 6.1 and 6.12 guests.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;
use xdp_lab::{Lab, frame_len};

/// Generous: under qemu's TCG, loading takes seconds.
const WAIT: Duration = Duration::from_secs(60);
const SMALL: usize = 64;
const LARGE: usize = 400;
const N_SMALL: u64 = 1_000;
const N_LARGE: u64 = 500;

/// (packets, bytes) of verdict `name` in a sample's `actions`.
fn action(v: &Value, name: &str) -> (u64, u64) {
    let a = &v["actions"][name];
    (
        a["packets"]
            .as_u64()
            .unwrap_or_else(|| panic!("no actions.{name}: {v}")),
        a["bytes"].as_u64().expect("bytes"),
    )
}

/// Every verdict's (packets, bytes), in `xdp_ebpf::action` order.
fn actions(v: &Value) -> Vec<(u64, u64)> {
    xdp_ebpf::action::NAMES
        .iter()
        .map(|n| action(v, n))
        .collect()
}

/// Sends the small and the large packets; waits for a sample that has
/// them all; checks every verdict's increase exactly against `before`:
/// the firewall drops the large ones.
fn send_and_check(run: &Running, lab: &Lab, iface: &str, before: &Value) -> Value {
    send_and_check_with(run, lab, iface, before, true)
}

/// [`send_and_check`]; without the firewall (`firewall` false) every
/// packet passes.
fn send_and_check_with(
    run: &Running,
    lab: &Lab,
    iface: &str,
    before: &Value,
    firewall: bool,
) -> Value {
    udp(lab, 0, N_SMALL, SMALL);
    udp(lab, 0, N_LARGE, LARGE);
    let small = (N_SMALL, N_SMALL * frame_len(SMALL));
    let large = (N_LARGE, N_LARGE * frame_len(LARGE));
    let mut want = vec![(0, 0); xdp_ebpf::action::COUNT];
    if firewall {
        want[xdp_ebpf::action::PASS] = small;
        want[xdp_ebpf::action::DROP] = large;
    } else {
        want[xdp_ebpf::action::PASS] = (small.0 + large.0, small.1 + large.1);
    }
    let base = actions(before);
    let v = run.wait_for(iface, WAIT, |v| {
        let now = actions(v);
        now[xdp_ebpf::action::PASS].0 - base[xdp_ebpf::action::PASS].0
            >= want[xdp_ebpf::action::PASS].0
            && now[xdp_ebpf::action::DROP].0 - base[xdp_ebpf::action::DROP].0
                >= want[xdp_ebpf::action::DROP].0
    });
    let now = actions(&v);
    let grew: Vec<(u64, u64)> = now
        .iter()
        .zip(&base)
        .map(|(n, b)| (n.0 - b.0, n.1 - b.1))
        .collect();
    assert_eq!(
        grew, want,
        "per verdict (aborted, drop, pass, tx, redirect): {v}"
    );
    assert_eq!(v["health"]["state"], "ok", "{v}");
    v
}

/// A program loaded the legacy way: xdptop counts its verdicts, and the
/// interface's packets and bytes are their sum; the program stays.
#[test]
fn a_legacy_programs_verdicts_are_counted_exactly_and_it_is_left_alone() {
    let Some(Case {
        fw,
        bpffs,
        lab,
        iface,
    }) = Case::new("vlegacy", FIREWALL)
    else {
        return;
    };
    ip_link_load_legacy(&lab, &iface, fw.path());
    let fw_id = xdp_prog_id(&lab, &iface).expect("the firewall runs");

    let mut run = Running::start(&lab, bpffs.path(), &["--interval", "200ms", &iface]);
    let first = run.wait_for(&iface, WAIT, healthy);
    assert_eq!(first["mode"], "read-only", "{first}");
    assert!(first["detail"].is_null(), "{first}");
    let v = send_and_check(&run, &lab, &iface, &first);
    let total = N_SMALL + N_LARGE;
    let bytes = N_SMALL * frame_len(SMALL) + N_LARGE * frame_len(LARGE);
    assert_eq!(
        (
            packets(&v) - packets(&first),
            v["bytes"].as_u64().expect("bytes") - first["bytes"].as_u64().expect("bytes")
        ),
        (total, bytes),
        "the interface's counts are the verdicts' sum: {v}"
    );
    // Rates are per verdict too, and never negative.
    let lines = run.all_lines();
    assert!(
        lines
            .iter()
            .filter(|l| l["interface"] == iface.as_str())
            .all(|l| xdp_ebpf::action::NAMES
                .iter()
                .all(|n| l["actions"][n]["pps"].as_f64().is_some_and(|x| x >= 0.0))),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["actions"]["drop"]["pps"].as_f64() > Some(0.0)),
        "a drop rate while dropping"
    );
    // As root the kernel's BPF statistics are on: the firewall's cost.
    assert!(
        lines
            .iter()
            .any(|l| l["run_ns_per_packet"].as_f64().is_some_and(|ns| ns > 0.0)),
        "the firewall's run time per packet: {lines:?}"
    );
    assert!(run.stop().success());
    assert_eq!(
        xdp_prog_id(&lab, &iface),
        Some(fw_id),
        "the program id is unchanged"
    );
    assert!(
        !bpffs.path().join("xdptop").join(&iface).exists(),
        "no pins of ours"
    );
    assert!(
        !bpffs.path().join("xdp_stats_map").exists(),
        "no shared map made for a program that does not use one"
    );
    let err = run.stderr_lines();
    assert!(
        err.iter()
            .any(|l| l.contains(&format!("observing the verdicts of XDP program {fw_id}"))),
        "{err:?}"
    );
}

/// The firewall loaded by xdp-loader (a libxdp dispatcher), xdptop joins it
/// and observes the dispatcher: the whole chain's verdicts, exact. xdptop's
/// own counter, first in the chain, sees every packet.
#[test]
fn a_libxdp_chains_verdicts_are_counted_exactly() {
    let Some(Case {
        fw,
        bpffs,
        lab,
        iface,
    }) = Case::new("vchain", FIREWALL)
    else {
        return;
    };
    let bpffs = bpffs.path();
    loader_ok(
        &lab,
        bpffs,
        &["load", "-p", path_str(bpffs), &iface, fw.path()],
    );

    let mut run = Running::start(&lab, bpffs, &["--interval", "200ms", &iface]);
    let first = run.wait_for(&iface, WAIT, |v| healthy(v) && !v["actions"].is_null());
    assert!(
        first["mode"] == "native" || first["mode"] == "skb",
        "{first}"
    );
    let v = send_and_check(&run, &lab, &iface, &first);
    // Lab traffic is exact: xdptop's own count (first in the chain) agrees.
    let v = run.wait_for(&iface, WAIT, |x| {
        packets(x) - packets(&first) >= N_SMALL + N_LARGE
            && x["time_unix_nano"].as_u64() >= v["time_unix_nano"].as_u64()
    });
    assert_eq!(packets(&v) - packets(&first), N_SMALL + N_LARGE, "{v}");
    let dispatcher = xdp_prog_id(&lab, &iface).expect("the dispatcher");
    let mut err = run.stderr_lines();
    assert!(
        err.iter().any(|l| l.contains(&format!(
            "observing the verdicts of XDP program {dispatcher}"
        ))),
        "the dispatcher is observed: {err:?}"
    );

    // Another program joins: libxdp swaps the dispatcher (a new id). The
    // observer follows it; the counts go on, exact (the new program, an
    // XDP_PASS one, runs after the firewall and changes no verdict).
    loader_ok(
        &lab,
        bpffs,
        &[
            "load",
            "-p",
            path_str(bpffs),
            &iface,
            xdp_ebpf::EMPTY_OBJECT_PATH,
        ],
    );
    let swapped = xdp_prog_id(&lab, &iface).expect("the new dispatcher");
    assert_ne!(swapped, dispatcher, "libxdp made a new dispatcher");
    wait_for_log(
        &run,
        &mut err,
        &format!("observing the verdicts of XDP program {swapped}"),
    );
    let before = run.wait_for(&iface, WAIT, healthy);
    assert!(
        actions(&before)
            .iter()
            .zip(actions(&v))
            .all(|(now, then)| now.0 >= then.0 && now.1 >= then.1)
            && packets(&before) >= packets(&v),
        "no step back: {before}"
    );
    let after = send_and_check(&run, &lab, &iface, &before);
    let after = run.wait_for(&iface, WAIT, |x| {
        packets(x) - packets(&before) >= N_SMALL + N_LARGE
            && x["time_unix_nano"].as_u64() >= after["time_unix_nano"].as_u64()
    });
    assert_eq!(
        packets(&after) - packets(&before),
        N_SMALL + N_LARGE,
        "{after}"
    );
    assert!(run.stop().success());
    // Rates never negative, not even across the swap.
    for l in run.all_lines() {
        for n in xdp_ebpf::action::NAMES {
            assert!(
                l["actions"][n]["pps"].as_f64().is_some_and(|x| x >= 0.0),
                "{l}"
            );
        }
    }

    detach(&lab, bpffs, &iface);
    loader_ok(&lab, bpffs, &["unload", &iface, "--all"]);
    assert_eq!(xdp_prog_id(&lab, &iface), None);
}

/// On an interface without XDP, xdptop makes libxdp's dispatcher with its
/// counter as the only program. libxdp (1.3) then runs that program in
/// place of the dispatcher's main function (freplace), where the kernel
/// takes no fexit (EBUSY): xdptop observes the program that replaces it.
/// When the firewall joins and leaves, libxdp swaps the dispatcher twice,
/// between that form and a real chain; the verdicts stay exact throughout.
#[test]
fn the_verdicts_of_the_dispatcher_xdptop_makes_are_counted_exactly() {
    let Some(Case {
        fw,
        bpffs,
        lab,
        iface,
    }) = Case::new("vown", FIREWALL)
    else {
        return;
    };
    let bpffs = bpffs.path();
    let mut run = Running::start(&lab, bpffs, &["--interval", "200ms", &iface]);
    let first = run.wait_for(&iface, WAIT, |v| healthy(v) && !v["actions"].is_null());
    let dispatcher = xdp_prog_id(&lab, &iface).expect("xdptop's dispatcher");
    let mut err = run.stderr_lines();
    let observing = |id: u64| format!("observing the verdicts of XDP program {id}");
    assert!(
        err.iter().any(|l| l.contains(&observing(dispatcher)))
            && err
                .iter()
                .any(|l| l.contains("in place of its main function")),
        "the lone component is observed for the dispatcher: {err:?}"
    );
    let alone = send_and_check_with(&run, &lab, &iface, &first, false);

    // The firewall joins: a real chain, observed at the dispatcher.
    loader_ok(
        &lab,
        bpffs,
        &["load", "-p", path_str(bpffs), &iface, fw.path()],
    );
    let chain = xdp_prog_id(&lab, &iface).expect("the new dispatcher");
    assert_ne!(chain, dispatcher, "libxdp made a new dispatcher");
    wait_for_log(&run, &mut err, &observing(chain));
    let before = run.wait_for(&iface, WAIT, healthy);
    let with_fw = send_and_check(&run, &lab, &iface, &before);

    // The firewall leaves: xdptop's counter alone again, a third dispatcher.
    let fw_id = component_id(&lab, bpffs, &iface, "xdp_fw");
    loader_ok(&lab, bpffs, &["unload", &iface, "--id", &fw_id.to_string()]);
    let last = xdp_prog_id(&lab, &iface).expect("the third dispatcher");
    assert_ne!(last, chain, "libxdp made a new dispatcher");
    wait_for_log(&run, &mut err, &observing(last));
    let before = run.wait_for(&iface, WAIT, healthy);
    let end = send_and_check_with(&run, &lab, &iface, &before, false);
    // Nothing went back across the swaps.
    for (later, earlier) in [(&with_fw, &alone), (&end, &with_fw)] {
        assert!(
            actions(later)
                .iter()
                .zip(actions(earlier))
                .all(|(l, e)| l.0 >= e.0 && l.1 >= e.1),
            "{earlier} then {later}"
        );
    }
    assert!(run.stop().success());
    detach(&lab, bpffs, &iface);
    assert_eq!(xdp_prog_id(&lab, &iface), None);
}

/// Waits until xdptop's log has a line with `want`, keeping what it read.
fn wait_for_log(run: &Running, err: &mut Vec<String>, want: &str) {
    xdp_lab::poll(WAIT, Duration::from_millis(100), || {
        err.extend(run.stderr_lines());
        err.iter().any(|l| l.contains(want)).then_some(()).ok_or(())
    })
    .unwrap_or_else(|()| panic!("no log line with {want:?}: {err:?}"));
}

/// The stand-in firewall (tests/c/udp_over_100_firewall.bpf.c).
const FIREWALL: &str = "udp_over_100_firewall";
