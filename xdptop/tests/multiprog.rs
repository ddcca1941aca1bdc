//! libxdp's multi-program dispatcher on the lab (the ground xdptop's own
//! libxdp support stands on): two XDP programs loaded by `xdp-loader` on one
//! interface, as another loader on the user's host would. The dispatcher is
//! made of BPF trampolines (freplace), so this needs a kernel that has them:
//! it is skipped, loudly, where there are none (the 6.18 development host)
//! and runs in `cargo xtask vmtest`'s 6.1 and 6.12 guests, which fail the
//! run if it was skipped there.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;
use xdp_lab::{kernel, poll};

/// The two components, built from xdptop/tests/c/multiprog_NAME.bpf.c.
const COMPONENTS: [&str; 2] = ["first", "second"];

#[test]
fn xdp_loader_stacks_two_programs_in_a_dispatcher_and_both_see_every_packet() {
    require_root();
    if kernel::skip_without_trampolines() {
        return;
    }
    let objects = BpfObjects::build(&["multiprog_first", "multiprog_second"]);
    let (bpffs, lab) = setup("mprog", 1);
    let iface = &lab.links[0].xdp_if;

    let out = lab
        .xdp_command("xdp-loader")
        .env("LIBXDP_BPFFS", bpffs.path())
        .args(["load", "-m", "skb", "-p"])
        .arg(bpffs.path())
        .arg(iface)
        .args(objects.paths())
        .output()
        .expect("xdp-loader must be installed (apt-get install xdp-tools)");
    assert!(out.status.success(), "xdp-loader load: {}", stderr_of(&out));

    // `xdp-loader status IFACE`: the interface's line names the dispatcher,
    // and a ` =>` line under it each component.
    let out = lab
        .xdp_command("xdp-loader")
        .env("LIBXDP_BPFFS", bpffs.path())
        .args(["status", iface])
        .output()
        .expect("xdp-loader status");
    assert!(
        out.status.success(),
        "xdp-loader status: {}",
        stderr_of(&out)
    );
    let status = String::from_utf8_lossy(&out.stdout).into_owned();
    let own_line = status
        .lines()
        .find(|l| l.split_whitespace().next() == Some(iface.as_str()))
        .unwrap_or_else(|| panic!("no line for {iface} in:\n{status}"));
    assert!(
        own_line.contains("xdp_dispatcher"),
        "{iface} should run libxdp's dispatcher (a single program means libxdp fell back \
         to legacy mode):\n{status}"
    );
    let components: Vec<&str> = status
        .lines()
        .filter(|l| l.trim_start().starts_with("=>"))
        .collect();
    for name in COMPONENTS {
        let prog = format!("xdp_{name}");
        assert!(
            components
                .iter()
                .any(|l| l.split_whitespace().any(|w| w == prog)),
            "component {prog} missing under the dispatcher:\n{status}"
        );
    }
    assert_eq!(components.len(), COMPONENTS.len(), "{status}");

    // Both components run for every packet: the first passes it on (XDP_PASS
    // is a chain-call action) to the second.
    const N: u64 = 500;
    udp(&lab, 0, N, 64);
    for name in COMPONENTS {
        let pin = bpffs.path().join(format!("{name}_seen"));
        let seen = poll(
            Duration::from_secs(30),
            Duration::from_millis(100),
            || match array_u64(&pin, 0) {
                n if n >= N => Ok(n),
                n => Err(n),
            },
        )
        .unwrap_or_else(|n| panic!("{name} saw {n} of {N} packets"));
        assert_eq!(seen, N, "{name}");
    }

    let out = lab
        .xdp_command("xdp-loader")
        .env("LIBXDP_BPFFS", bpffs.path())
        .args(["unload", "--all", iface])
        .output()
        .expect("xdp-loader unload");
    assert!(
        out.status.success(),
        "xdp-loader unload: {}",
        stderr_of(&out)
    );
    assert_eq!(xdp_prog_id(&lab, iface), None, "unload left a program");
}

/// The probe xdp-lab skips tests by says what bpftool's probe says: trampoline
/// programs (fentry/fexit, `tracing`) and freplace (`ext`, libxdp's
/// dispatcher) work on this kernel or neither does. No on the 6.18 host, yes
/// on the VM kernels.
#[test]
fn the_trampoline_probe_agrees_with_bpftool() {
    require_root();
    let v: Value = serde_json::from_str(&bpftool(&["-j", "feature", "probe", "kernel"]))
        .expect("bpftool JSON");
    let types = &v["program_types"];
    let tracing = types["have_tracing_prog_type"].as_bool().expect("tracing");
    let ext = types["have_ext_prog_type"].as_bool().expect("ext");
    let probed = kernel::trampolines();
    assert_eq!(
        (probed.is_ok(), probed.is_ok()),
        (tracing, ext),
        "xdp-lab's probe: {probed:?}; bpftool: tracing {tracing}, ext {ext}"
    );
}
