//! Privileged end-to-end tests of the kernel side on a veth lab: the real XDP
//! program, exact counts seen by xdptop's JSON, bpftool and a libbpf reader.
//! Each test makes its own namespaces and bpffs; both vanish when it ends.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;
use xdp_lab::{Traffic, frame_len, poll, send};

/// How long a sample may take to show up ([`lab_wait`]: longer in a VM).
fn wait() -> Duration {
    lab_wait(Duration::from_secs(15))
}

#[test]
fn exact_counts_in_json_bpftool_and_libbpf() {
    let (bpffs, lab) = setup("exact", 1);
    let iface = &lab.links[0].xdp_if;
    let mut run =
        Running::start_healthy(&lab, bpffs.path(), &["--interval", "200ms", iface], wait());

    const N: u64 = 1_000;
    const PAYLOAD: usize = 100;
    udp(&lab, 0, N, PAYLOAD);
    let bytes = N * frame_len(PAYLOAD);
    let v = run.wait_for(iface, wait(), |v| packets(v) >= N);
    assert_eq!((packets(&v), v["bytes"].as_u64()), (N, Some(bytes)), "{v}");
    assert!(v["mode"] == "native" || v["mode"] == "skb", "{v}");
    let d = &v["detail"];
    assert_eq!(d["l3"][xdp_ebpf::l3::IPV4], N, "{v}");
    assert_eq!(d["l4"][xdp_ebpf::l4::UDP], N, "{v}");
    assert_eq!(
        d["size_hist"][xdp_ebpf::size_bucket(frame_len(PAYLOAD))],
        N,
        "{v}"
    );
    let per_cpu: u64 = d["per_cpu_packets"]
        .as_array()
        .expect("per_cpu")
        .iter()
        .map(|c| c.as_u64().expect("u64"))
        .sum();
    assert_eq!(per_cpu, N);

    let shared = bpffs.path().join("xdp_stats_map");
    assert_eq!(bpftool_lookup(&shared), (N, bytes));
    assert_eq!(libbpf_lookup(&shared), (N, bytes));

    let status = run.stop();
    assert!(status.success(), "SIGTERM should be a clean exit: {status}");
}

#[test]
fn count_and_interval_shape_the_output() {
    let (bpffs, lab) = setup("count", 1);
    let iface = &lab.links[0].xdp_if;
    let out = xdptop_json(&lab, bpffs.path(), "3", &[iface]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .expect("utf8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 3);
    let times: Vec<u64> = lines
        .iter()
        .map(|l| l["time_unix_nano"].as_u64().expect("time"))
        .collect();
    for pair in times.windows(2) {
        let gap = Duration::from_nanos(pair[1] - pair[0]);
        assert!(
            gap > Duration::from_millis(50) && gap < Duration::from_millis(500),
            "samples should be ~100ms apart: {gap:?}"
        );
    }
    for l in &lines {
        for field in ["interface", "packets", "bytes", "pps", "bps"] {
            assert!(!l[field].is_null(), "{field} missing in {l}");
        }
    }
}

#[test]
fn attachment_outlives_xdptop_is_reused_and_detaches() {
    let (bpffs, lab) = setup("reuse", 1);
    let iface = &lab.links[0].xdp_if;
    let out = xdptop_json(&lab, bpffs.path(), "1", &[iface]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let first_id = xdp_prog_id(&lab, iface).expect("attached after the first run");
    let shared = bpffs.path().join("xdp_stats_map");
    assert_eq!(
        bpftool_lookup(&shared),
        (0, 0),
        "key 0 exists before any packet"
    );

    // xdptop has exited: the pinned link keeps counting for the scrapers.
    udp(&lab, 0, 500, 64);
    assert_eq!(bpftool_lookup(&shared), (500, 500 * frame_len(64)));

    let out = xdptop_json(&lab, bpffs.path(), "1", &[iface]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("re-using"), "{}", stderr_of(&out));
    assert_eq!(
        xdp_prog_id(&lab, iface),
        Some(first_id),
        "no second program"
    );
    let line: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(
        packets(&line),
        500,
        "per-interface counts carry over: {line}"
    );

    detach(&lab, bpffs.path(), iface);
    assert_eq!(xdp_prog_id(&lab, iface), None, "detached");
    assert!(
        !bpffs.path().join("xdptop").exists(),
        "xdptop's pins removed"
    );
    // The shared map is the scrapers' and stays, counts intact.
    assert_eq!(bpftool_lookup(&shared), (500, 500 * frame_len(64)));

    // Detaching again is harmless and says so.
    let out = xdptop(&lab, bpffs.path(), &["--detach", iface]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("not attached"));
}

#[test]
fn priority_places_the_program_in_a_dispatcher_and_is_noted_elsewhere() {
    let (bpffs, lab) = setup("prio", 1);
    let iface = &lab.links[0].xdp_if;
    let out = xdptop(
        &lab,
        bpffs.path(),
        &[
            "--headless",
            "--json",
            "--count",
            "1",
            "--priority",
            "50",
            iface,
        ],
    );
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    if xdp_lab::kernel::trampolines().is_ok() {
        // libxdp's dispatcher (the vmtest guests): the component's priority.
        assert!(err.contains("added xdptop's program (id "), "{err}");
        assert!(err.contains(", priority 50, chain on XDP_PASS)"), "{err}");
    } else {
        assert!(
            err.contains(&format!(
                "{iface}: --priority 50 has no effect: xdptop runs a single program there"
            )),
            "{err}"
        );
    }
    udp(&lab, 0, 100, 64);
    let out = xdptop_json(&lab, bpffs.path(), "1", &[iface]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let line: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(packets(&line), 100, "{line}");
    detach(&lab, bpffs.path(), iface);
    assert_eq!(xdp_prog_id(&lab, iface), None, "detached");
}

#[test]
fn two_interfaces_are_counted_apart_and_summed_in_the_shared_map() {
    let (bpffs, lab) = setup("two", 2);
    let (a, b) = (&lab.links[0].xdp_if, &lab.links[1].xdp_if);
    let mut run =
        Running::start_healthy(&lab, bpffs.path(), &["--interval", "200ms", a, b], wait());

    udp(&lab, 0, 300, 18);
    udp(&lab, 1, 700, 1000);
    let va = run.wait_for(a, wait(), |v| packets(v) >= 300);
    let vb = run.wait_for(b, wait(), |v| packets(v) >= 700);
    assert_eq!((packets(&va), va["bytes"].as_u64()), (300, Some(300 * 60)));
    assert_eq!(
        (packets(&vb), vb["bytes"].as_u64()),
        (700, Some(700 * 1042))
    );
    let shared = bpffs.path().join("xdp_stats_map");
    assert_eq!(bpftool_lookup(&shared), (1000, 300 * 60 + 700 * 1042));
    assert_ne!(
        xdp_prog_id(&lab, a),
        xdp_prog_id(&lab, b),
        "one program per interface"
    );
    assert!(run.stop().success());
}

#[test]
fn another_loaders_program_is_watched_read_only() {
    let (bpffs, lab) = setup("foreign", 1);
    let iface = &lab.links[0].xdp_if;
    xdp_loader_load(&lab, bpffs.path(), iface);
    let foreign_id = xdp_prog_id(&lab, iface).expect("xdp-loader attached a program");

    let mut run = Running::start(&lab, bpffs.path(), &["--interval", "200ms", iface]);
    let v = run.wait_for(iface, wait(), healthy);
    assert_eq!(v["mode"], "read-only", "{v}");
    assert!(
        v["detail"].is_null(),
        "no breakdowns without xdptop's program: {v}"
    );
    udp(&lab, 0, 400, 200);
    let v = run.wait_for(iface, wait(), |v| packets(v) >= 400);
    assert_eq!(
        (packets(&v), v["bytes"].as_u64()),
        (400, Some(400 * frame_len(200)))
    );
    assert_eq!(
        xdp_prog_id(&lab, iface),
        Some(foreign_id),
        "the other program stays"
    );
    assert!(run.stderr_lines().iter().any(|l| l.contains("read-only")));
    assert!(run.stop().success());
    assert!(
        !bpffs.path().join("xdptop").join(iface).exists(),
        "no pins of ours left"
    );
}

#[test]
fn an_incompatible_pinned_map_is_refused_and_left_untouched() {
    let (bpffs, lab) = setup("badpin", 1);
    let iface = &lab.links[0].xdp_if;
    let pin = bpffs.path().join("xdp_stats_map");
    bpftool(&[
        "map",
        "create",
        pin.to_str().expect("utf8"),
        "type",
        "array",
        "key",
        "4",
        "value",
        "8",
        "entries",
        "5",
        "name",
        "xdp_stats_map",
    ]);
    let id_before = map_id(&pin);

    let out = xdptop(&lab, bpffs.path(), &["--headless", "--count", "1", iface]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(err.contains("refusing to use the pinned map"), "{err}");
    assert!(err.contains("type is array (want hash)"), "{err}");
    assert!(err.contains("value size is 8 (want 16)"), "{err}");
    assert!(err.contains("max_entries is 5 (want 1)"), "{err}");
    assert_eq!(map_id(&pin), id_before, "the pin is untouched");
    assert_eq!(xdp_prog_id(&lab, iface), None, "nothing attached");
}

#[test]
fn a_vanished_interface_is_reported_while_the_others_keep_sampling() {
    let (bpffs, lab) = setup("vanish", 2);
    let (a, b) = (&lab.links[0].xdp_if, &lab.links[1].xdp_if);
    let mut run =
        Running::start_healthy(&lab, bpffs.path(), &["--interval", "200ms", a, b], wait());

    lab.delete_link(1).expect("deleting the veth");
    let v = run.wait_for(b, wait(), |v| v["health"]["state"] == "lost");
    assert!(
        v["health"]["reason"]
            .as_str()
            .expect("reason")
            .contains("gone"),
        "{v}"
    );
    assert_eq!(v["pps"], 0.0);

    udp(&lab, 0, 200, 64);
    let v = run.wait_for(a, wait(), |v| packets(v) >= 200);
    assert_eq!(packets(&v), 200);
    assert_eq!(v["health"]["state"], "ok");
    assert!(run.stop().success());
}

#[test]
fn errors_a_user_will_hit_are_clear() {
    let (bpffs, lab) = setup("errors", 1);
    let out = xdptop(&lab, bpffs.path(), &["--headless", "nosuch0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("unknown interface nosuch0"),
        "{}",
        stderr_of(&out)
    );

    let plain = std::env::temp_dir();
    let out = xdptop(&lab, &plain, &["--headless", &lab.links[0].xdp_if]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("mount -t bpf bpf"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn unprivileged_runs_name_the_missing_capabilities() {
    let (bpffs, lab) = setup("caps", 1);
    let iface = &lab.links[0].xdp_if;
    let out = lab
        .xdp_command("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(XDPTOP)
        .env("LIBXDP_BPFFS", bpffs.path())
        .args(["--headless", "--count", "1", "--pin-dir"])
        .arg(bpffs.path())
        .arg(iface)
        .output()
        .expect("setpriv (util-linux)");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(err.contains("missing: CAP_BPF, CAP_NET_ADMIN"), "{err}");
    assert!(err.contains("setcap cap_bpf,cap_net_admin+ep"), "{err}");
    assert_eq!(xdp_prog_id(&lab, iface), None);
}

#[test]
fn protocols_and_sizes_are_broken_down() {
    let (bpffs, lab) = setup("proto", 1);
    let iface = &lab.links[0].xdp_if;
    let mut run =
        Running::start_healthy(&lab, bpffs.path(), &["--interval", "200ms", iface], wait());

    let l = &lab.links[0];
    let ns = lab.gen_netns().expect("netns");
    let mut icmp = Traffic::udp(l.gen_ip, l.xdp_ip, 50, 56, RATE);
    icmp.proto = xdp_lab::Proto::Icmp;
    send(&ns, &icmp).expect("ping");
    let mut syn = Traffic::udp(l.gen_ip, l.xdp_ip, 30, 0, 1_000);
    syn.proto = xdp_lab::Proto::TcpSyn;
    syn.dst_port = 80;
    send(&ns, &syn).expect("syn");
    send(&ns, &Traffic::udp(l.gen_ip, l.xdp_ip, 20, 1458, RATE)).expect("udp");

    let v = run.wait_for(iface, wait(), |v| packets(v) >= 100);
    let d = &v["detail"];
    assert_eq!(packets(&v), 100, "{v}");
    assert_eq!(d["l3"][xdp_ebpf::l3::IPV4], 100, "{v}");
    assert_eq!(d["l4"][xdp_ebpf::l4::ICMP], 50, "{v}");
    assert_eq!(d["l4"][xdp_ebpf::l4::TCP], 30, "{v}");
    assert_eq!(d["l4"][xdp_ebpf::l4::UDP], 20, "{v}");
    // 1458-byte UDP payloads make 1500-byte frames: the <=1518 bucket.
    assert_eq!(d["size_hist"][5], 20, "{v}");
    assert!(run.stop().success());
}

#[test]
fn an_interface_that_comes_back_is_attached_again() {
    let (bpffs, mut lab) = setup("back", 1);
    let iface = lab.links[0].xdp_if.clone();
    let mut run =
        Running::start_healthy(&lab, bpffs.path(), &["--interval", "200ms", &iface], wait());
    udp(&lab, 0, 100, 64);
    run.wait_for(&iface, wait(), |v| packets(v) >= 100);

    lab.delete_link(0).expect("delete");
    run.wait_for(&iface, wait(), |v| v["health"]["state"] == "lost");
    lab.recreate_link(0).expect("recreate");
    let v = run.wait_for(&iface, wait(), healthy);
    assert_eq!(
        packets(&v),
        100,
        "counts continue in the same stats map: {v}"
    );
    assert!(xdp_prog_id(&lab, &iface).is_some(), "attached again");

    udp(&lab, 0, 50, 64);
    let v = run.wait_for(&iface, wait(), |v| packets(v) >= 150);
    assert_eq!(packets(&v), 150);
    assert!(v["pps"].as_f64().expect("pps") >= 0.0);
    assert!(run.stop().success());
}

#[test]
fn sigkill_leaves_counting_running_and_the_next_run_picks_it_up() {
    let (bpffs, lab) = setup("kill", 1);
    let iface = &lab.links[0].xdp_if;
    let mut run =
        Running::start_healthy(&lab, bpffs.path(), &["--interval", "200ms", iface], wait());
    let id = xdp_prog_id(&lab, iface).expect("attached");
    run.kill();

    udp(&lab, 0, 300, 64);
    let shared = bpffs.path().join("xdp_stats_map");
    assert_eq!(
        bpftool_lookup(&shared).0,
        300,
        "counting goes on without xdptop"
    );
    let out = xdptop_json(&lab, bpffs.path(), "1", &[iface]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(packets(&v), 300);
    assert_eq!(xdp_prog_id(&lab, iface), Some(id));
}

#[test]
fn a_removed_shared_pin_is_pinned_again() {
    let (bpffs, lab) = setup("repin", 1);
    let iface = &lab.links[0].xdp_if;
    let mut run =
        Running::start_healthy(&lab, bpffs.path(), &["--interval", "100ms", iface], wait());
    let shared = bpffs.path().join("xdp_stats_map");
    udp(&lab, 0, 40, 64);
    run.wait_for(iface, wait(), |v| packets(v) >= 40);
    std::fs::remove_file(&shared).expect("rm pin");
    poll(wait(), Duration::from_millis(50), || {
        shared.exists().then_some(()).ok_or(())
    })
    .unwrap_or_else(|()| panic!("the pin was not recreated"));
    assert_eq!(bpftool_lookup(&shared).0, 40, "the same map, counts intact");
    assert!(run.stop().success());
}

/// CAP_NET_ADMIN is capability 12, CAP_PERFMON 38, CAP_BPF 39.
const KEPT_CAPS: u64 = (1 << 12) | (1 << 38) | (1 << 39);

fn cap_field(pid: u32, field: &str) -> u64 {
    let hex = xdp_lab::procfs::status_field(pid, field).unwrap_or_else(|e| panic!("{e:#}"));
    u64::from_str_radix(&hex, 16).unwrap_or_else(|e| panic!("{field} {hex:?}: {e}"))
}

#[test]
fn only_cap_bpf_cap_net_admin_and_cap_perfmon_are_kept_after_attaching() {
    let (bpffs, lab) = setup("dropcaps", 1);
    let iface = &lab.links[0].xdp_if;
    let mut run =
        Running::start_healthy(&lab, bpffs.path(), &["--interval", "100ms", iface], wait());
    let pid = run.pid();
    // Where xdptop joined libxdp's dispatcher (kernels with BPF trampolines),
    // it keeps CAP_SYS_ADMIN too: libxdp needs it to change the dispatcher.
    let prog = xdp_prog_id(&lab, iface).expect("xdptop attached");
    let name: Value =
        serde_json::from_str(&bpftool(&["-j", "prog", "show", "id", &prog.to_string()]))
            .expect("bpftool JSON");
    let kept = if name["name"] == "xdp_dispatcher" {
        KEPT_CAPS | (1 << 21)
    } else {
        KEPT_CAPS
    };
    assert_eq!(cap_field(pid, "CapEff"), kept, "effective set");
    assert_eq!(cap_field(pid, "CapPrm"), kept, "permitted set");
    assert_eq!(cap_field(pid, "CapBnd"), kept, "bounding set");
    assert!(run.stop().success());
}

#[test]
fn cap_bpf_and_cap_net_admin_alone_are_enough() {
    let (bpffs, lab) = setup("capsonly", 1);
    let iface = &lab.links[0].xdp_if;
    let mut child = lab
        .xdp_command("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=+bpf,+net_admin",
            "--ambient-caps=+bpf,+net_admin",
            "--",
        ])
        .arg(XDPTOP)
        .env("LIBXDP_BPFFS", bpffs.path())
        .args([
            "--headless",
            "--json",
            "--interval",
            "300ms",
            "--talkers",
            "3",
        ])
        .arg("--pin-dir")
        .arg(bpffs.path())
        .arg(iface)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("setpriv (util-linux)");
    if !kernel_accepts_the_cap_bpf_only_program() {
        // The verifier also walks the branch the CAP_PERFMON variant takes
        // (Spectre v1: mispredicted branches are checked as real paths) and
        // rejects its packet-pointer subtraction without CAP_PERFMON. Linux
        // 6.17 inserts a speculation barrier there instead. Before that,
        // xdptop must refuse with the way out: grant CAP_PERFMON.
        let status = poll(wait() * 4, Duration::from_millis(100), || {
            child.try_wait().expect("wait").ok_or(())
        })
        .unwrap_or_else(|()| panic!("xdptop kept running on a kernel that refuses the program"));
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err)
            .expect("stderr");
        assert_eq!(status.code(), Some(1), "{err}");
        assert!(err.contains("CAP_PERFMON"), "{err}");
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            format!(
                "lab: the CAP_BPF-only program is refused on Linux {}: xdptop said so and \
                 named CAP_PERFMON\n",
                kernel_release()
            )
            .as_bytes(),
        );
        assert_eq!(
            xdp_prog_id(&lab, iface),
            None,
            "a refused load left a program"
        );
        return;
    }
    // Attached (under qemu's emulation that can take seconds), then traffic.
    poll(wait() * 4, Duration::from_millis(100), || {
        xdp_prog_id(&lab, iface).ok_or(())
    })
    .unwrap_or_else(|()| panic!("xdptop did not attach to {iface}"));
    udp(&lab, 0, 100, 64);
    let stdout = child.stdout.take().expect("stdout");
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let last = poll(wait() * 4, Duration::from_millis(10), || {
        let v: Value = serde_json::from_str(&lines.try_recv().map_err(|_| ())?).expect("JSON");
        if packets(&v) >= 100 { Ok(v) } else { Err(()) }
    })
    .unwrap_or_else(|()| panic!("no sample counted the 100 packets"));
    assert_eq!(packets(&last), 100, "{last}");
    // Top talkers work without CAP_PERFMON too: the tables were verified,
    // switched on and read after the capabilities were dropped.
    let gen_ip = lab.links[0].gen_ip.to_string();
    assert_eq!(last["talkers"][0]["source"], gen_ip.as_str(), "{last}");
    assert_eq!(last["talkers"][0]["packets"], 100, "{last}");
    assert_eq!(last["services"][0]["packets"], 100, "{last}");
    assert!(last["run_ns_per_packet"].is_null(), "{last}");
    assert!(last["run_cpu_percent"].is_null(), "{last}");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("the run time per packet needs CAP_SYS_ADMIN"),
        "{}",
        stderr_of(&out)
    );
}

/// Issue 15: as root, the kernel's BPF statistics are on while xdptop runs,
/// and each sample with traffic carries the interface's program's mean run
/// time per packet.
#[test]
fn the_run_time_per_packet_is_measured_while_xdptop_runs() {
    let (bpffs, lab) = setup("runtime", 1);
    let iface = &lab.links[0].xdp_if;
    let mut run =
        Running::start_healthy(&lab, bpffs.path(), &["--interval", "200ms", iface], wait());
    let first = run.wait_for(iface, wait(), healthy);
    assert!(
        first["run_ns_per_packet"].is_null(),
        "no packet yet: {first}"
    );
    udp(&lab, 0, 2_000, 64);
    let v = run.wait_for(iface, wait(), |v| !v["run_ns_per_packet"].is_null());
    let ns = v["run_ns_per_packet"].as_f64().expect("a number");
    assert!(ns > 0.0 && ns < 1e6, "{ns} ns per packet: {v}");
    // The same period's CPU share: the program ran, and within one CPU
    // per CPU of the host.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let cpu = v["run_cpu_percent"]
        .as_f64()
        .expect("a CPU share with the run time");
    assert!(cpu > 0.0 && cpu <= 100.0 * cpus, "{cpu} % of a CPU: {v}");
    assert!(run.stop().success());
    // Idle periods have no runs: no figure rather than a made-up one.
    let lines = run.all_lines();
    assert!(
        lines.iter().any(|l| l["pps"].as_f64() == Some(0.0)),
        "an idle sample: {lines:?}"
    );
    assert!(
        lines
            .iter()
            .filter(|l| l["pps"].as_f64() == Some(0.0))
            .all(|l| l["run_ns_per_packet"].is_null()),
        "{lines:?}"
    );
}

/// `uname -r`.
fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .expect("uname")
        .release()
        .to_string_lossy()
        .into_owned()
}

/// Whether the verifier lets the CAP_BPF-only variant load without
/// CAP_PERFMON: from Linux 6.17 on (see the caller), by the release.
fn kernel_accepts_the_cap_bpf_only_program() -> bool {
    let release = kernel_release();
    let mut nums = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let version = (nums.next().unwrap_or(0), nums.next().unwrap_or(0));
    version >= (6, 17)
}

#[test]
fn detaching_a_busy_interface_is_noticed_while_packets_still_flow() {
    // A busy link skips the bpf_link check (moving counters prove the
    // program runs); once detached its counters stand still and the check
    // must come back at once, not after the traffic ends.
    let (bpffs, lab) = setup("busydetach", 1);
    let iface = lab.links[0].xdp_if.clone();
    let mut run =
        Running::start_healthy(&lab, bpffs.path(), &["--interval", "100ms", &iface], wait());
    let l = &lab.links[0];
    let (src, dst) = (l.gen_ip, l.xdp_ip);
    let ns = lab.gen_netns().expect("generator namespace");
    // 8 s of traffic at the lab's safe rate.
    let traffic = std::thread::spawn(move || {
        send(&ns, &Traffic::udp(src, dst, 8 * RATE, 64, RATE)).expect("send")
    });
    run.wait_for(&iface, wait(), |v| {
        v["pps"].as_f64().is_some_and(|p| p > 1000.0)
    });

    detach(&lab, bpffs.path(), &iface);
    let lost = run.wait_for(&iface, Duration::from_secs(3), |v| {
        v["health"]["state"] == "lost"
    });
    assert!(
        !traffic.is_finished(),
        "the detach must be seen while packets still arrive"
    );
    assert!(
        lost["health"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("detached")),
        "{lost}"
    );
    assert_eq!(traffic.join().expect("traffic thread"), 8 * RATE);
    assert!(run.stop().success());
}

/// Issue 15's "never silently wrong": xdptop attached and detached (the
/// shared map stays, with its counts), then another program loaded the
/// legacy way (`ip link ... xdpgeneric`) that updates no map. The shared
/// map is frozen: xdptop must not show it as a healthy idle interface.
#[test]
fn a_frozen_shared_map_under_another_program_is_not_observable() {
    let (bpffs, lab) = setup("frozen", 1);
    let iface = &lab.links[0].xdp_if;
    let shared = bpffs.path().join("xdp_stats_map");
    let mut run =
        Running::start_healthy(&lab, bpffs.path(), &["--interval", "200ms", iface], wait());
    udp(&lab, 0, 100, 64);
    run.wait_for(iface, wait(), |v| packets(v) == 100);
    assert!(run.stop().success());
    detach(&lab, bpffs.path(), iface);
    let frozen = (100, 100 * frame_len(64));
    assert_eq!(bpftool_lookup(&shared), frozen, "the shared map stays");

    ip_link_load_legacy(&lab, iface, xdp_ebpf::EMPTY_OBJECT_PATH);
    let foreign = xdp_prog_id(&lab, iface).expect("a program on the interface");

    let mut run = Running::start(&lab, bpffs.path(), &["--interval", "200ms", iface]);
    run.wait_for(iface, wait(), |_| true);
    udp(&lab, 0, 500, 64);
    if xdp_lab::kernel::trampolines().is_ok() {
        // xdptop observes the program's verdicts (tests/verdicts.rs): they
        // are the interface's counts, never the frozen map's.
        let v = run.wait_for(iface, wait(), |v| packets(v) >= 500);
        assert_eq!(
            (packets(&v), v["bytes"].as_u64()),
            (500, Some(500 * frame_len(64)))
        );
        assert_eq!(v["actions"]["pass"]["packets"], 500, "{v}");
        assert!(run.stop().success());
        assert!(
            run.all_lines()
                .iter()
                .all(|l| l["health"]["state"] == "ok" && packets(l) <= 500),
            "{:?}",
            run.all_lines()
        );
        assert_eq!(bpftool_lookup(&shared), frozen, "the map is left alone");
        assert_eq!(xdp_prog_id(&lab, iface), Some(foreign), "the program stays");
        return;
    }
    // Samples after the traffic: every one says why, none is "ok".
    let seen = run.all_lines().len();
    let deadline = std::time::Instant::now() + wait();
    while run.all_lines().len() < seen + 3 {
        assert!(std::time::Instant::now() < deadline, "no samples");
        run.wait_for(iface, wait(), |_| true);
    }
    assert!(run.stop().success());
    let lines = run.all_lines();
    assert!(lines.len() >= 4, "{lines:?}");
    for v in &lines {
        assert_eq!(v["mode"], "read-only", "{v}");
        assert_eq!(v["health"]["state"], "not-observable", "{v}");
        assert_eq!((packets(v), v["bytes"].as_u64()), (0, Some(0)), "{v}");
        assert_eq!(
            (v["pps"].as_f64(), v["bps"].as_f64()),
            (Some(0.0), Some(0.0))
        );
        assert!(v["actions"].is_null(), "{v}");
        let reason = v["health"]["reason"].as_str().expect("a reason");
        assert!(
            reason.contains(&format!(
                "another loader's XDP program {foreign} (xdp_pass)"
            )) && reason.contains(&format!("does not update {}", shared.display()))
                && reason.contains("no BPF trampolines"),
            "{reason}"
        );
    }
    let err = run.stderr_lines();
    assert!(
        err.iter()
            .any(|l| l.contains(&format!("{iface}: not observable"))
                && l.contains("does not update")),
        "said in the log: {err:?}"
    );
    assert_eq!(bpftool_lookup(&shared), frozen, "the map is left alone");
    assert_eq!(xdp_prog_id(&lab, iface), Some(foreign), "the program stays");
    assert!(
        !bpffs.path().join("xdptop").join(iface).exists(),
        "no pins of ours left"
    );
}
