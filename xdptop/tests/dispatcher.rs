//! xdptop as a libxdp citizen (issue 14): its counter joins the multiprog
//! dispatcher that `xdp-loader` uses, next to a stand-in operator firewall
//! (xdptop/tests/c/stand_in_firewall.bpf.c: drops UDP packets longer than
//! 200 bytes, priority 10), in both orders, and leaves it alone on detach.
//!
//! The dispatcher is made of freplace programs (BPF trampolines): these
//! tests skip, loudly, where the kernel has none (the 6.18 development
//! host, where xdptop attaches one program on a bpf_link as before and
//! tests/lab.rs covers that), and run in `cargo xtask vmtest`'s 6.1 and
//! 6.12 guests. The skip line is xdp-lab's marker (`xdp_lab::kernel` on the
//! vmtest branch), which vmtest fails on inside a guest.

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Duration,
};

use common::*;
use serde_json::Value;
use xdp_lab::Lab;

/// Generous: under qemu's TCG, loading a dispatcher takes seconds.
const WAIT: Duration = Duration::from_secs(60);
/// Frames the firewall passes (64-byte payload) and drops (400-byte).
const SMALL: usize = 64;
const BIG: usize = 400;

#[test]
fn xdptop_joins_an_xdp_loader_firewall_counts_first_and_detaches_alone() {
    let Some(Case {
        fw,
        bpffs,
        lab,
        iface,
    }) = Case::new("dispjoin", FIREWALL)
    else {
        return;
    };
    let bpffs = bpffs.path();

    load_firewall(&lab, bpffs, &iface, &fw);
    assert_eq!(components(&lab, bpffs, &iface), [(10, "xdp_fw".into())]);

    // xdptop joins, first in the chain; the firewall keeps its verdicts.
    let mut run = Running::start_env(
        &lab,
        bpffs,
        &["--interval", "200ms", &iface],
        &[("LIBXDP_BPFFS", bpffs)],
    );
    let first = run.wait_for(&iface, WAIT, healthy);
    assert_eq!(packets(&first), 0, "{first}");
    let joined = components(&lab, bpffs, &iface);
    assert_eq!(
        joined,
        [(0, "xdptop_count".into()), (10, "xdp_fw".into())],
        "{}",
        status_text(&lab, bpffs, &iface)
    );
    assert!(
        run.stderr_lines()
            .iter()
            .any(|l| l.contains("to the existing (1 other program(s)) libxdp dispatcher")),
        "the attach note says it joined"
    );
    udp(&lab, 0, 300, SMALL);
    udp(&lab, 0, 200, BIG);
    let v = run.wait_for(&iface, WAIT, |v| packets(v) >= 500);
    assert_eq!(packets(&v), 500, "every packet, dropped or not: {v}");
    assert_eq!(fw_verdicts(bpffs), (300, 200), "the firewall still decides");
    assert_eq!(bpftool_lookup(&bpffs.join("xdp_stats_map")).0, 500);
    assert!(run.stop().success());

    // A second run re-uses the component: no second copy.
    let out = one_sample(&lab, bpffs, &iface);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("re-using xdptop's component"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(components(&lab, bpffs, &iface), joined);

    // The operator unloads the firewall by id: xdptop keeps counting, exactly.
    let fw_id = component_id(&lab, bpffs, &iface, "xdp_fw");
    loader_ok(&lab, bpffs, &["unload", &iface, "-i", &fw_id.to_string()]);
    assert_eq!(
        components(&lab, bpffs, &iface),
        [(0, "xdptop_count".into())]
    );
    let run = Running::start_env(
        &lab,
        bpffs,
        &["--interval", "200ms", &iface],
        &[("LIBXDP_BPFFS", bpffs)],
    );
    run.wait_for(&iface, WAIT, |v| healthy(v) && packets(v) == 500);
    udp(&lab, 0, 100, BIG);
    let v = run.wait_for(&iface, WAIT, |v| packets(v) >= 600);
    assert_eq!(packets(&v), 600, "{v}");
    drop(run);

    // --detach: xdptop's was the last program, so libxdp removes the
    // dispatcher and its pins.
    detach(&lab, bpffs, &iface);
    assert_eq!(xdp_prog_id(&lab, &iface), None, "no XDP left on {iface}");
    assert_eq!(libxdp_pins(bpffs), Vec::<PathBuf>::new(), "libxdp's pins");
    assert!(!bpffs.join("xdptop").exists(), "xdptop's pins");
}

#[test]
fn xdp_loader_joins_xdptop_and_its_firewall_outlives_xdptop_detach() {
    let Some(Case {
        fw,
        bpffs,
        lab,
        iface,
    }) = Case::new("dispfirst", FIREWALL)
    else {
        return;
    };
    let bpffs = bpffs.path();

    // xdptop first: it makes the dispatcher, so xdp-loader can add to it.
    let out = one_sample(&lab, bpffs, &iface);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("to a new libxdp dispatcher"),
        "{}",
        stderr_of(&out)
    );
    load_firewall(&lab, bpffs, &iface, &fw);
    assert_eq!(
        components(&lab, bpffs, &iface),
        [(0, "xdptop_count".into()), (10, "xdp_fw".into())],
        "{}",
        status_text(&lab, bpffs, &iface)
    );

    let run = Running::start_env(
        &lab,
        bpffs,
        &["--interval", "200ms", &iface],
        &[("LIBXDP_BPFFS", bpffs)],
    );
    run.wait_for(&iface, WAIT, healthy);
    udp(&lab, 0, 150, SMALL);
    udp(&lab, 0, 50, BIG);
    let v = run.wait_for(&iface, WAIT, |v| packets(v) >= 200);
    assert_eq!(packets(&v), 200, "{v}");
    assert_eq!(fw_verdicts(bpffs), (150, 50));
    drop(run);

    // --detach removes xdptop only: the firewall still drops.
    detach(&lab, bpffs, &iface);
    assert_eq!(components(&lab, bpffs, &iface), [(10, "xdp_fw".into())]);
    udp(&lab, 0, 20, BIG);
    let verdicts = xdp_lab::poll(WAIT, Duration::from_millis(100), || {
        match fw_verdicts(bpffs) {
            v @ (150, 70) => Ok(v),
            v => Err(v),
        }
    });
    assert_eq!(verdicts, Ok((150, 70)));
    assert!(!bpffs.join("xdptop").exists(), "xdptop's pins");

    unload_all(&lab, bpffs, &iface);
}

#[test]
fn a_program_added_and_removed_by_xdp_loader_keeps_the_stream_exact() {
    let Some(Case {
        fw,
        bpffs,
        lab,
        iface,
    }) = Case::new("dispcont", FIREWALL)
    else {
        return;
    };
    let bpffs = bpffs.path();

    let mut run = Running::start_env(
        &lab,
        bpffs,
        &["--interval", "100ms", &iface],
        &[("LIBXDP_BPFFS", bpffs)],
    );
    run.wait_for(&iface, WAIT, healthy);
    let mut sent = 0;
    for round in 0..3 {
        udp(&lab, 0, 100, SMALL);
        sent += 100;
        // Each load and unload replaces the dispatcher (a new program id);
        // xdptop's component is re-linked into the new one.
        if round == 0 {
            load_firewall(&lab, bpffs, &iface, &fw);
        } else if round == 1 {
            let id = component_id(&lab, bpffs, &iface, "xdp_fw");
            loader_ok(&lab, bpffs, &["unload", &iface, "-i", &id.to_string()]);
        }
        let v = run.wait_for(&iface, WAIT, |v| packets(v) >= sent);
        assert_eq!(packets(&v), sent, "{v}");
    }
    assert!(run.stop().success());
    let lines: Vec<Value> = run
        .all_lines()
        .into_iter()
        .filter(|v| v["interface"] == iface.as_str())
        .collect();
    for v in &lines {
        assert!(healthy(v), "never lost: {v}");
        assert!(v.get("rebaselined").is_none(), "never re-baselined: {v}");
        assert!(v["pps"].as_f64().expect("pps") >= 0.0, "{v}");
    }
    assert!(
        lines.windows(2).all(|w| packets(&w[0]) <= packets(&w[1])),
        "packets never go back"
    );
    detach(&lab, bpffs, &iface);
    assert_eq!(xdp_prog_id(&lab, &iface), None);
}

#[test]
fn with_priority_xdptop_runs_after_the_firewall_and_counts_what_it_passes() {
    let Some(Case {
        fw,
        bpffs,
        lab,
        iface,
    }) = Case::new("dispprio", FIREWALL)
    else {
        return;
    };
    let bpffs = bpffs.path();
    load_firewall(&lab, bpffs, &iface, &fw);

    let mut run = Running::start_env(
        &lab,
        bpffs,
        &["--interval", "200ms", "--priority", "50", &iface],
        &[("LIBXDP_BPFFS", bpffs)],
    );
    run.wait_for(&iface, WAIT, healthy);
    assert_eq!(
        components(&lab, bpffs, &iface),
        [(10, "xdp_fw".into()), (50, "xdptop_count".into())],
        "{}",
        status_text(&lab, bpffs, &iface)
    );
    udp(&lab, 0, 300, SMALL);
    udp(&lab, 0, 200, BIG);
    assert_eq!(
        xdp_lab::poll(WAIT, Duration::from_millis(100), || {
            match fw_verdicts(bpffs) {
                v @ (300, 200) => Ok(v),
                v => Err(v),
            }
        }),
        Ok((300, 200))
    );
    // Behind the firewall, xdptop sees only what it passed on (the two
    // run in the same XDP call, so its count is final once the
    // firewall's is).
    run.wait_for(&iface, WAIT, |v| packets(v) >= 300);
    run.wait_for(&iface, WAIT, |_| true);
    assert!(run.stop().success());
    let seen: Vec<u64> = run
        .all_lines()
        .iter()
        .filter(|v| v["interface"] == iface.as_str())
        .map(packets)
        .collect();
    assert_eq!(seen.last(), Some(&300), "{seen:?}");
    assert!(seen.iter().all(|&p| p <= 300), "{seen:?}");

    // A later run without --priority re-uses the component where it is
    // and says how to move it.
    let out = one_sample(&lab, bpffs, &iface);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains(&format!(
            "It stays at priority 50, not 0: to move it, `xdptop --detach {iface}`"
        )),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(
        components(&lab, bpffs, &iface),
        [(10, "xdp_fw".into()), (50, "xdptop_count".into())]
    );

    detach(&lab, bpffs, &iface);
    assert_eq!(components(&lab, bpffs, &iface), [(10, "xdp_fw".into())]);
    unload_all(&lab, bpffs, &iface);
}

#[test]
fn a_loader_holding_libxdps_lock_is_named_after_ten_seconds() {
    let Some(Case {
        fw: _,
        bpffs,
        lab,
        iface,
    }) = Case::new("displock", FIREWALL)
    else {
        return;
    };
    let bpffs = bpffs.path();
    let dir = bpffs.join("xdp");
    std::fs::create_dir_all(&dir).expect("libxdp's state directory");
    // A stuck loader: holds libxdp's lock (flock on the directory, as
    // libxdp takes it) and does nothing. --no-fork: flock execs `sleep`,
    // so the holder is `sleep` with this pid.
    let mut stuck = Command::new("flock")
        .args(["--exclusive", "--no-fork"])
        .arg(&dir)
        .args(["sleep", "300"])
        .spawn()
        .expect("flock (util-linux)");
    let held = xdp_lab::poll(WAIT, Duration::from_millis(50), || {
        let free = Command::new("flock")
            .args(["--exclusive", "--nonblock"])
            .arg(&dir)
            .arg("true")
            .status()
            .expect("flock");
        if free.success() { Err(()) } else { Ok(()) }
    });
    assert_eq!(held, Ok(()), "the stand-in loader took the lock");

    let start = std::time::Instant::now();
    let out = one_sample(&lab, bpffs, &iface);
    let waited = start.elapsed();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "libxdp's lock on {} has been held by sleep (pid {}) for 10s",
            dir.display(),
            stuck.id()
        )),
        "{err}"
    );
    assert!(waited >= Duration::from_secs(10), "{waited:?}");
    assert_eq!(xdp_prog_id(&lab, &iface), None, "nothing attached");

    // Once the loader lets go, xdptop goes ahead.
    stuck.kill().expect("end the stand-in loader");
    stuck.wait().expect("reap it");
    let out = one_sample(&lab, bpffs, &iface);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        components(&lab, bpffs, &iface),
        [(0, "xdptop_count".into())]
    );
    detach(&lab, bpffs, &iface);
    assert_eq!(xdp_prog_id(&lab, &iface), None);
}

#[test]
fn a_full_dispatcher_is_refused_with_what_to_do_and_left_as_it_was() {
    let Some(Case {
        fw,
        bpffs,
        lab,
        iface,
    }) = Case::new("dispfull", FIREWALL)
    else {
        return;
    };
    let bpffs = bpffs.path();
    // Ten copies of the firewall: as many programs as a dispatcher holds.
    let mut args = vec!["load", "-p", path_str(bpffs), &iface];
    args.extend(std::iter::repeat_n(fw.path(), 10));
    loader_ok(&lab, bpffs, &args);
    let before = component_lines(&lab, bpffs, &iface);
    assert_eq!(before.len(), 10, "{}", status_text(&lab, bpffs, &iface));

    let out = one_sample(&lab, bpffs, &iface);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "the libxdp dispatcher on {iface} already runs the most programs it can hold (10)"
        )) && err.contains(&format!("`xdp-loader unload {iface} -i ID` removes one")),
        "{err}"
    );
    assert_eq!(component_lines(&lab, bpffs, &iface), before, "untouched");
    assert!(!bpffs.join("xdptop").exists(), "no pins left behind");
    udp(&lab, 0, 10, SMALL);
    assert_eq!(
        xdp_lab::poll(WAIT, Duration::from_millis(100), || {
            match fw_verdicts(bpffs) {
                // The copies share the pinned counters: each counts.
                v @ (100, 0) => Ok(v),
                v => Err(v),
            }
        }),
        Ok((100, 0)),
        "the firewalls still run"
    );
    unload_all(&lab, bpffs, &iface);
}

#[test]
fn without_libxdp_xdptop_watches_a_dispatcher_and_names_the_package() {
    let Some(Case {
        fw,
        bpffs,
        lab,
        iface,
    }) = Case::new("displess", FIREWALL)
    else {
        return;
    };
    let bpffs = bpffs.path();
    load_firewall(&lab, bpffs, &iface, &fw);
    let before = components(&lab, bpffs, &iface);

    // libxdp "uninstalled" for xdptop alone: /dev/null over the library,
    // in a mount namespace of its own.
    let lib = std::fs::canonicalize(format!(
        "/usr/lib/{}-linux-gnu/libxdp.so.1",
        std::env::consts::ARCH
    ))
    .expect("libxdp1 is installed (scripts/setup.sh)");
    let out = lab
        .xdp_command("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --bind /dev/null "$0" && exec "$@""#)
        .arg(&lib)
        .arg(XDPTOP)
        .env("LIBXDP_BPFFS", bpffs)
        .arg("--pin-dir")
        .arg(bpffs)
        .args(["--headless", "--json", "--count", "1", &iface])
        .output()
        .expect("unshare (util-linux)");
    // It cannot join the dispatcher, so it watches it as another loader's
    // program (its verdicts, through the fexit observer), and says why it
    // did not join and what to install.
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    let line: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(line["mode"], "read-only", "{line}");
    assert!(
        err.contains(&format!(
            "{iface} runs a libxdp dispatcher that xdptop cannot join: libxdp is not installed"
        )) && err.contains("`apt-get install libxdp1`"),
        "{err}"
    );
    assert_eq!(components(&lab, bpffs, &iface), before, "untouched");
    unload_all(&lab, bpffs, &iface);
}

#[test]
fn a_single_program_left_by_an_earlier_run_is_kept_named_and_detached() {
    let Some(Case {
        fw,
        bpffs,
        lab,
        iface,
    }) = Case::new("displink", FIREWALL)
    else {
        return;
    };
    let bpffs = bpffs.path();
    // What an earlier xdptop left (and what one without CAP_SYS_ADMIN
    // makes): a single program on a pinned bpf_link.
    let out = lab
        .xdp_command("setpriv")
        .args(["--bounding-set=-sys_admin", "--"])
        .arg(XDPTOP)
        .env("LIBXDP_BPFFS", bpffs)
        .arg("--pin-dir")
        .arg(bpffs)
        .args(["--headless", "--json", "--count", "1", &iface])
        .output()
        .expect("setpriv (util-linux)");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let single = xdp_prog_id(&lab, &iface).expect("attached");
    assert!(
        bpffs
            .join("xdptop")
            .join(&iface)
            .join("link_native")
            .exists()
            || bpffs.join("xdptop").join(&iface).join("link_skb").exists(),
        "a pinned bpf_link"
    );

    // As root now: it is re-used as it is, and xdptop says how to move it.
    let out = one_sample(&lab, bpffs, &iface);
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "It holds {iface} alone, so xdp-loader cannot add programs there: \
             `xdptop --detach {iface}` and start xdptop again to join libxdp's dispatcher"
        )),
        "{err}"
    );
    assert_eq!(xdp_prog_id(&lab, &iface), Some(single), "the same program");

    // --detach removes it; the next run joins a dispatcher that
    // xdp-loader can add to.
    detach(&lab, bpffs, &iface);
    assert_eq!(xdp_prog_id(&lab, &iface), None);
    let out = one_sample(&lab, bpffs, &iface);
    assert!(out.status.success(), "{}", stderr_of(&out));
    load_firewall(&lab, bpffs, &iface, &fw);
    assert_eq!(
        components(&lab, bpffs, &iface),
        [(0, "xdptop_count".into()), (10, "xdp_fw".into())]
    );
    detach(&lab, bpffs, &iface);
    unload_all(&lab, bpffs, &iface);
}

/// `xdp-loader load` of the stand-in firewall, its pins in `bpffs`.
fn load_firewall(lab: &Lab, bpffs: &Path, iface: &str, fw: &Firewall) {
    loader_ok(
        lab,
        bpffs,
        &["load", "-p", path_str(bpffs), iface, fw.path()],
    );
}

/// `xdptop --headless --json --count 1 IFACE`, to completion.
fn one_sample(lab: &Lab, bpffs: &Path, iface: &str) -> Output {
    xdptop(lab, bpffs, &["--headless", "--json", "--count", "1", iface])
}

/// Every pin libxdp keeps under `bpffs/xdp/` (its state directory itself
/// may stay).
fn libxdp_pins(bpffs: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(bpffs.join("xdp"))
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// The stand-in firewall (tests/c/stand_in_firewall.bpf.c).
const FIREWALL: &str = "stand_in_firewall";

/// (passed, dropped) from the stand-in firewall's pinned counters.
fn fw_verdicts(bpffs: &Path) -> (u64, u64) {
    let pin = bpffs.join("fw_verdicts");
    (array_u64(&pin, 0), array_u64(&pin, 1))
}
