//! Privileged lab tests of top talkers (`--talkers N`): raw frames from
//! chosen source addresses on the lab link, counted by the real program,
//! read back from xdptop's JSON lines. Each test makes its own namespaces
//! and bpffs; both vanish when it ends.

mod common;

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use common::*;
use serde_json::Value;
use xdp_lab::{
    Lab,
    frames::{self, IPPROTO_TCP, IPPROTO_UDP},
};

const WAIT: Duration = Duration::from_secs(20);

/// Sends `frames` raw on lab link 0 at the lab's safe rate; all must go out.
fn send_all(lab: &Lab, frames: &[Vec<u8>], rate: u64) -> (u64, u64) {
    let ns = lab.gen_netns().expect("generator namespace");
    let sent = frames::send_frames(
        &ns,
        &lab.links[0].gen_if,
        frames.iter().map(Vec::as_slice),
        rate,
    )
    .expect("sending frames");
    assert_eq!(sent, frames.len() as u64);
    let bytes = frames.iter().map(|f| f.len() as u64).sum();
    (sent, bytes)
}

/// Round-robin over the sources while each has frames left: every period
/// sees them in proportion.
fn interleave(per_source: Vec<Vec<Vec<u8>>>) -> Vec<Vec<u8>> {
    let longest = per_source.iter().map(Vec::len).max().unwrap_or(0);
    let mut out = Vec::new();
    for i in 0..longest {
        for frames in &per_source {
            if let Some(f) = frames.get(i) {
                out.push(f.clone());
            }
        }
    }
    out
}

fn f64_of(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn sum_of(list: &Value, field: &str) -> f64 {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|e| f64_of(&e[field]))
        .sum()
}

/// What every sample with talkers must satisfy: no negative or non-finite
/// rate, listed + other = the interface's rates, nobody above the
/// interface, heaviest first, no more entries than the table holds.
fn assert_consistent(v: &Value, top: usize) {
    let (pps, bps) = (f64_of(&v["pps"]), f64_of(&v["bps"]));
    for (list, other) in [("talkers", "talkers_other"), ("services", "services_other")] {
        let entries = v[list]
            .as_array()
            .unwrap_or_else(|| panic!("no {list}: {v}"));
        assert!(entries.len() <= top, "{v}");
        for e in entries {
            for f in ["pps", "bps"] {
                let x = f64_of(&e[f]);
                assert!(x.is_finite() && x >= 0.0, "{list} {f} {x}: {v}");
            }
            assert!(f64_of(&e["pps"]) <= pps * (1.0 + 1e-9) + 1e-9, "{v}");
            assert!(e["packets"].as_u64().expect("packets") <= packets(v), "{v}");
        }
        for w in entries.windows(2) {
            assert!(
                f64_of(&w[0]["pps"]) >= f64_of(&w[1]["pps"]),
                "{list} order: {v}"
            );
        }
        let (opps, obps) = (f64_of(&v[other]["pps"]), f64_of(&v[other]["bps"]));
        assert!(opps >= 0.0 && obps >= 0.0, "{v}");
        let lp = sum_of(&v[list], "pps") + opps;
        let lb = sum_of(&v[list], "bps") + obps;
        assert!(
            (lp - pps).abs() <= 1e-6 * pps.max(1.0),
            "{list}: {lp} != {pps}: {v}"
        );
        assert!(
            (lb - bps).abs() <= 1e-6 * bps.max(1.0),
            "{list}: {lb} != {bps}: {v}"
        );
    }
    let table = &v["talkers_table"];
    assert!(
        table["entries"].as_u64() <= table["capacity"].as_u64(),
        "{v}"
    );
}

/// (source, packets, bytes) of each listed talker, in order.
fn talkers(v: &Value) -> Vec<(String, u64, u64)> {
    v["talkers"]
        .as_array()
        .expect("talkers")
        .iter()
        .map(|t| {
            (
                t["source"].as_str().expect("source").to_owned(),
                t["packets"].as_u64().expect("packets"),
                t["bytes"].as_u64().expect("bytes"),
            )
        })
        .collect()
}

/// protocol/port -> (packets, bytes) of each listed service.
fn services(v: &Value) -> BTreeMap<String, (u64, u64)> {
    v["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|s| {
            (
                format!(
                    "{}/{}",
                    s["protocol"].as_str().expect("protocol"),
                    s["port"]
                ),
                (
                    s["packets"].as_u64().expect("packets"),
                    s["bytes"].as_u64().expect("bytes"),
                ),
            )
        })
        .collect()
}

/// Packets the "other" line of `field` stood for over all the samples:
/// the sum of its rate times each period.
///
/// The tables are read a moment before the interface's counters: packets
/// that arrive in between are the interface's in one period and the
/// tables' in the next, so they show as "other" first (and the next
/// period's listed rates are capped by as many). On the host the window is
/// short and the sum stays within [`other_slack`] of the truth; under
/// qemu's emulation reading the tables takes long enough for hundreds of
/// packets, so the check is left out there (every count is still exact).
fn other_packets(lines: &[Value], field: &str) -> f64 {
    lines
        .iter()
        .filter(|v| v[field].is_object())
        .map(|v| f64_of(&v[field]["pps"]) * f64_of(&v["period_s"]))
        .sum()
}

/// How far the "other" sum may stray: 1 % of what was sent (see
/// [`other_packets`]); `None` in a VM, where it is not checked.
fn other_slack(sent: u64) -> Option<f64> {
    (!xdp_lab::kernel::in_vm()).then(|| (sent as f64 / 100.0).max(1.0))
}

fn src(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, last)
}

#[test]
fn five_sources_are_exact_and_in_order() {
    let (bpffs, lab) = setup("tk5", 1);
    let iface = &lab.links[0].xdp_if;
    let dst = lab.links[0].xdp_ip;
    let args = ["--interval", "200ms", "--talkers", "10", iface.as_str()];
    let mut run = Running::start_healthy(&lab, bpffs.path(), &args, WAIT);

    let counts = [5000usize, 4000, 3000, 2000, 1000];
    // A payload size per source, so that bytes tell them apart too.
    let frame = |i: usize| frames::ipv4(src(10 + i as u8), dst, IPPROTO_UDP, 9, 18 + 10 * i);
    let per_source: Vec<Vec<Vec<u8>>> = counts
        .iter()
        .enumerate()
        .map(|(i, &n)| vec![frame(i); n])
        .collect();
    let want: Vec<(String, u64, u64)> = per_source
        .iter()
        .enumerate()
        .map(|(i, fs)| {
            (
                src(10 + i as u8).to_string(),
                fs.len() as u64,
                fs.iter().map(|f| f.len() as u64).sum(),
            )
        })
        .collect();
    // In 1000 rounds, source i sends 5 - i frames: at any moment the five
    // have sent in the proportions 5:4:3:2:1, so every busy period ranks
    // them in that order.
    let mut all = Vec::with_capacity(15_000);
    for _ in 0..1000 {
        for (i, n) in [5, 4, 3, 2, 1].into_iter().enumerate() {
            all.extend(std::iter::repeat_n(frame(i), n));
        }
    }
    let (sent, bytes) = send_all(&lab, &all, RATE);

    // All counted, then a quiet period: idle talkers rank by their totals.
    let v = run.wait_for(iface, WAIT, |v| packets(v) >= sent && v["pps"] == 0.0);
    assert_eq!(
        (packets(&v), v["bytes"].as_u64()),
        (sent, Some(bytes)),
        "{v}"
    );
    assert_eq!(talkers(&v), want, "{v}");
    assert_eq!(
        services(&v),
        BTreeMap::from([("udp/9".to_owned(), (sent, bytes))]),
        "{v}"
    );
    let lines = run.all_lines();
    for l in &lines {
        assert_consistent(l, 10);
    }
    // While they sent (at least 13 rounds in a period), in order by pps.
    // Busy as the tables saw it: they are read just before the counters,
    // so the period in which the traffic starts can be busy for the
    // interface and still empty in the tables (under the guests' TCG the
    // read takes long enough for that).
    let busy: Vec<&Value> = lines
        .iter()
        .filter(|l| {
            let listed: f64 = l["talkers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| f64_of(&t["pps"]))
                .sum();
            listed > 1000.0
        })
        .collect();
    assert!(!busy.is_empty(), "no sample saw the traffic");
    let want_order: Vec<String> = (10..15).map(|i| src(i).to_string()).collect();
    for l in &busy {
        let order: Vec<String> = talkers(l).into_iter().map(|t| t.0).collect();
        assert_eq!(order, want_order, "{l}");
    }
    // Every packet came from a listed source: the "other" line stood for none.
    if let Some(slack) = other_slack(sent) {
        let other = other_packets(&lines, "talkers_other");
        assert!(other <= slack, "{other}");
    }
    assert!(run.stop().success());
    // Switched off again when xdptop ends: the config map says 0.
    let config = bpffs.path().join("xdptop").join(iface).join("config");
    let dump = bpftool(&[
        "-j",
        "map",
        "dump",
        "pinned",
        config.to_str().expect("utf8"),
    ]);
    assert!(dump.contains("\"talkers\":0"), "{dump}");
}

#[test]
fn services_are_exact_per_protocol_and_port_and_odd_frames_are_other() {
    let (bpffs, lab) = setup("tksvc", 1);
    let iface = &lab.links[0].xdp_if;
    let (gen_ip, dst) = (lab.links[0].gen_ip, lab.links[0].xdp_ip);
    let args = ["--interval", "200ms", "--talkers", "10", iface.as_str()];
    let mut run = Running::start_healthy(&lab, bpffs.path(), &args, WAIT);

    let udp53 = frames::ipv4(gen_ip, dst, IPPROTO_UDP, 53, 30);
    let udp5353 = frames::ipv4(gen_ip, dst, IPPROTO_UDP, 5353, 40);
    let tcp53 = frames::ipv4(gen_ip, dst, IPPROTO_TCP, 53, 0);
    let tcp443 = frames::ipv4(gen_ip, dst, IPPROTO_TCP, 443, 0);
    // A VLAN tag is looked through: these are udp/53 from gen_ip as well.
    let tagged = frames::vlan(&udp53, 7);
    // The source is known, the service is not ("other").
    let fragment = frames::ipv4_later_fragment(gen_ip, dst, 100);
    let short_udp = frames::truncated(&udp53, 14 + 20 + 2);
    // Neither source nor service.
    let short_ip = frames::truncated(&udp53, 14 + 10);
    let arp = frames::arp();
    let groups: Vec<(&Vec<u8>, usize)> = vec![
        (&udp53, 300),
        (&udp5353, 200),
        (&tcp53, 150),
        (&tcp443, 100),
        (&tagged, 50),
        (&fragment, 40),
        (&short_udp, 20),
        (&short_ip, 30),
        (&arp, 10),
    ];
    let all = interleave(groups.iter().map(|(f, n)| vec![(*f).clone(); *n]).collect());
    let (sent, bytes) = send_all(&lab, &all, RATE);
    let len = |f: &Vec<u8>| f.len() as u64;

    let v = run.wait_for(iface, WAIT, |v| packets(v) >= sent && v["pps"] == 0.0);
    assert_eq!(
        (packets(&v), v["bytes"].as_u64()),
        (sent, Some(bytes)),
        "{v}"
    );
    assert_eq!(
        services(&v),
        BTreeMap::from([
            (
                "udp/53".to_owned(),
                (350, 300 * len(&udp53) + 50 * len(&tagged))
            ),
            ("udp/5353".to_owned(), (200, 200 * len(&udp5353))),
            ("tcp/53".to_owned(), (150, 150 * len(&tcp53))),
            ("tcp/443".to_owned(), (100, 100 * len(&tcp443))),
        ]),
        "{v}"
    );
    let from_gen: u64 = 300 + 200 + 150 + 100 + 50 + 40 + 20;
    let gen_bytes = 300 * len(&udp53)
        + 200 * len(&udp5353)
        + 150 * len(&tcp53)
        + 100 * len(&tcp443)
        + 50 * len(&tagged)
        + 40 * len(&fragment)
        + 20 * len(&short_udp);
    assert_eq!(
        talkers(&v),
        [(gen_ip.to_string(), from_gen, gen_bytes)],
        "{v}"
    );
    let lines = run.all_lines();
    for l in &lines {
        assert_consistent(l, 10);
    }
    // "other": fragments, short headers and ARP for services (100 frames);
    // short IP headers and ARP for sources (40 frames).
    if let Some(slack) = other_slack(sent) {
        let svc_other = other_packets(&lines, "services_other");
        let src_other = other_packets(&lines, "talkers_other");
        assert!((svc_other - 100.0).abs() <= slack, "{svc_other}");
        assert!((src_other - 40.0).abs() <= slack, "{src_other}");
    }
    assert!(run.stop().success());
}

#[test]
fn an_ipv6_source_is_a_talker_too() {
    let (bpffs, lab) = setup("tk6", 1);
    let iface = &lab.links[0].xdp_if;
    let args = ["--interval", "200ms", "--talkers", "5", iface.as_str()];
    let mut run = Running::start_healthy(&lab, bpffs.path(), &args, WAIT);
    // 2001:2::/48 is IPv6's benchmarking range (RFC 5180).
    let v6: IpAddr = "2001:2::10".parse().expect("ip");
    let v6_dst: IpAddr = "2001:2::1".parse().expect("ip");
    let six = frames::ip(v6, v6_dst, IPPROTO_UDP, 5353, 20);
    let four = frames::ipv4(src(20), lab.links[0].xdp_ip, IPPROTO_UDP, 5353, 20);
    let all = interleave(vec![vec![six.clone(); 700], vec![four.clone(); 300]]);
    let (sent, _) = send_all(&lab, &all, RATE);

    let v = run.wait_for(iface, WAIT, |v| packets(v) >= sent && v["pps"] == 0.0);
    assert_eq!(packets(&v), sent, "{v}");
    assert_eq!(
        talkers(&v),
        [
            ("2001:2::10".to_owned(), 700, 700 * six.len() as u64),
            (src(20).to_string(), 300, 300 * four.len() as u64),
        ],
        "{v}"
    );
    assert_eq!(
        services(&v)["udp/5353"],
        (1000, 700 * six.len() as u64 + 300 * four.len() as u64),
        "{v}"
    );
    assert_eq!(v["detail"]["l3"][xdp_ebpf::l3::IPV6], 700, "{v}");
    for l in &run.all_lines() {
        assert_consistent(l, 5);
    }
    assert!(run.stop().success());
}

/// A tiny deterministic generator (xorshift64): no dependency for a test.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// An address in 198.18.0.0/15, the lab's range.
    fn lab_addr(&mut self) -> Ipv4Addr {
        let low = (self.next() as u32) & 0x0001_ffff;
        Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) | low)
    }
}

#[test]
fn a_tiny_table_churns_and_the_output_stays_consistent() {
    let (bpffs, lab) = setup("tkevict", 1);
    let iface = &lab.links[0].xdp_if;
    let dst = lab.links[0].xdp_ip;
    // 16 sources: a test-only size, far below what 300 churning sources need.
    let args = [
        "--interval",
        "200ms",
        "--talkers",
        "5",
        "--talkers-table",
        "16",
        iface.as_str(),
    ];
    let mut run = Running::start_healthy(&lab, bpffs.path(), &args, WAIT);
    let steady = frames::ipv4(src(99), dst, IPPROTO_UDP, 9, 20);
    let mut rng = XorShift(0x5eed);
    let mut all = Vec::new();
    for round in 0..3 {
        for i in 0..300u32 {
            let a = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 100, 0)) + i);
            // Each round a random service too, so both tables churn.
            let port = 1 + (rng.next() % 200) as u16 + round;
            all.push(frames::ipv4(a, dst, IPPROTO_UDP, port, 18));
            all.push(steady.clone());
        }
    }
    let (sent, bytes) = send_all(&lab, &all, RATE / 2);
    let v = run.wait_for(iface, WAIT, |v| packets(v) >= sent && v["pps"] == 0.0);
    assert_eq!(
        (packets(&v), v["bytes"].as_u64()),
        (sent, Some(bytes)),
        "{v}"
    );
    let lines = run.all_lines();
    for l in &lines {
        assert_consistent(l, 5);
        assert!(l["talkers_table"]["capacity"].as_u64() == Some(16), "{l}");
    }
    // No ranking is asserted here: in a table this far too small, the
    // kernel's LRU (per-CPU free lists, not strict) can evict even the
    // steady sender on nearly every packet (in the 6.1 guest it showed 1
    // packet of ~800 in a period). What must hold is above: consistent
    // lines, exact totals; the flood test checks ranking with a real size.
    // Counted anew after an eviction, never more than it sent.
    let last = talkers(&v);
    let steady_count = last.iter().find(|t| t.0 == src(99).to_string());
    if let Some((_, p, _)) = steady_count {
        assert!(*p <= 900, "{v}");
    }
    assert!(run.stop().success());
}

#[test]
fn idle_slots_are_freed_and_new_sources_count_exactly_again() {
    let (bpffs, lab) = setup("tkfree", 1);
    let iface = &lab.links[0].xdp_if;
    let dst = lab.links[0].xdp_ip;
    // 64 slots (and 16 LRU entries for the sources that find none).
    let args = [
        "--interval",
        "200ms",
        "--talkers",
        "10",
        "--talkers-table",
        "64",
        iface.as_str(),
    ];
    let mut run = Running::start_healthy(&lab, bpffs.path(), &args, WAIT);
    let used = |v: &Value| v["talkers_table"]["entries"].as_u64().expect("entries");

    // Ten sources, under half the slots: nothing is freed. One of their
    // slots is then marked dead by hand, as an xdptop killed while freeing
    // leaves it; the next one to free must empty it too.
    let ten: Vec<Vec<u8>> = (0..10)
        .map(|i| frames::ipv4(src(100 + i), dst, IPPROTO_UDP, 9, 18))
        .collect();
    let (early, _) = send_all(&lab, &ten, RATE / 2);
    run.wait_for(iface, WAIT, |v| packets(v) >= early && used(v) == 10);
    let array = bpffs.path().join("xdptop").join(iface).join("sources");
    let dump: Value =
        serde_json::from_str(&bpftool(&["-j", "map", "dump", "pinned", path_str(&array)]))
            .expect("bpftool JSON");
    let slot = dump
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["formatted"]["value"]["key"].as_u64() != Some(0))
        .and_then(|e| e["formatted"]["key"].as_u64())
        .expect("a slot in use");
    let mut update = vec!["map", "update", "pinned", path_str(&array), "key", "hex"];
    let key: Vec<String> = (slot as u32)
        .to_le_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    update.extend(key.iter().map(String::as_str));
    update.extend(["value", "hex", "04"]);
    update.extend(["00"; 39]);
    bpftool(&update);
    run.wait_for(iface, WAIT, |v| used(v) == 10);

    // 300 sources, a frame each: more than the array holds.
    let once: Vec<Vec<u8>> = (0..300u32)
        .map(|i| {
            let a = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 50, 0)) + i);
            frames::ipv4(a, dst, IPPROTO_UDP, 9, 18)
        })
        .collect();
    let (burst, _) = send_all(&lab, &once, RATE / 2);
    let first = early + burst;
    let full = run.wait_for(iface, WAIT, |v| packets(v) >= first && used(v) > 32);
    assert_eq!(full["talkers_table"]["capacity"], 64, "{full}");
    // Idle for three reads in an array more than half full: freed, and
    // the dead slot with them.
    let freed = run.wait_for(iface, WAIT, |v| used(v) == 0);
    assert_eq!(packets(&freed), first, "{freed}");

    // Room again: five new sources, exact and in order.
    let counts = [500usize, 400, 300, 200, 100];
    let per_source: Vec<Vec<Vec<u8>>> = counts
        .iter()
        .enumerate()
        .map(|(i, &n)| vec![frames::ipv4(src(20 + i as u8), dst, IPPROTO_UDP, 9, 18); n])
        .collect();
    let (sent, _) = send_all(&lab, &interleave(per_source), RATE);
    let v = run.wait_for(iface, WAIT, |v| {
        packets(v) >= first + sent && v["pps"] == 0.0
    });
    assert_eq!(packets(&v), first + sent, "{v}");
    let got: Vec<(String, u64)> = talkers(&v)
        .into_iter()
        .map(|(a, p, _)| (a, p))
        .take(5)
        .collect();
    let want: Vec<(String, u64)> = counts
        .iter()
        .enumerate()
        .map(|(i, &n)| (src(20 + i as u8).to_string(), n as u64))
        .collect();
    assert_eq!(got, want, "{v}");
    assert_eq!(used(&v), 5, "{v}");
    for l in &run.all_lines() {
        assert_consistent(l, 10);
    }
    assert!(run.stop().success());
}

#[test]
fn a_spoofed_flood_keeps_memory_bounded_totals_exact_and_the_sender_on_top() {
    let (bpffs, lab) = setup("tkflood", 1);
    let iface = &lab.links[0].xdp_if;
    let dst = lab.links[0].xdp_ip;
    const INTERVAL: Duration = Duration::from_millis(500);
    // A table smaller than the flood: it must evict, and memory stays put.
    let args = [
        "--interval",
        "500ms",
        "--talkers",
        "10",
        "--talkers-table",
        "16384",
        iface.as_str(),
    ];
    let mut run = Running::start_healthy(&lab, bpffs.path(), &args, WAIT);
    let rss_before = xdp_lab::procfs::status_kb(run.pid(), "VmRSS").expect("VmRSS");

    // ~100k random sources in 198.18.0.0/15, one frame each, and a steady
    // sender every fourth frame.
    let steady_ip = src(77);
    let steady = frames::ipv4(steady_ip, dst, IPPROTO_UDP, 443, 40);
    let mut rng = XorShift(0xf100d);
    let mut all = Vec::with_capacity(135_000);
    let mut steady_sent = 0u64;
    for i in 0..100_000u32 {
        let mut a = rng.lab_addr();
        if a == steady_ip {
            a = Ipv4Addr::new(198, 19, 255, 254);
        }
        let port = 1024 + (rng.next() % 4096) as u16;
        all.push(frames::ipv4(a, dst, IPPROTO_UDP, port, 18));
        if i % 3 == 0 {
            all.push(steady.clone());
            steady_sent += 1;
        }
    }
    let (sent, bytes) = send_all(&lab, &all, 2 * RATE);

    let v = run.wait_for(iface, WAIT, |v| packets(v) >= sent && v["pps"] == 0.0);
    assert_eq!(
        (packets(&v), v["bytes"].as_u64()),
        (sent, Some(bytes)),
        "{v}"
    );
    let lines = run.all_lines();
    // Periods inside the flood: busy, after a busy one. The tables are read
    // just before the counters, so the period the flood starts in can be
    // busy for the interface and still empty in the tables (under the
    // guests' TCG the read takes long enough for that).
    let busy: Vec<&Value> = lines
        .windows(2)
        .filter(|w| w.iter().all(|l| f64_of(&l["pps"]) > 5_000.0))
        .map(|w| &w[1])
        .collect();
    assert!(busy.len() >= 2, "the flood lasted a few samples");
    for l in &lines {
        assert_consistent(l, 10);
        // The tick stays on time: no period much longer than the interval
        // (not under qemu's emulation, where timings mean nothing).
        let period = f64_of(&l["period_s"]);
        assert!(
            xdp_lab::kernel::in_vm() || period < INTERVAL.as_secs_f64() * 1.5,
            "late tick: {l}"
        );
    }
    for l in &busy {
        assert_eq!(l["talkers"][0]["source"], steady_ip.to_string(), "{l}");
        let cap = l["talkers_table"]["capacity"].as_u64().expect("capacity");
        assert_eq!(cap, 16_384);
    }
    // The steady sender took a slot of the sources array with its first
    // frame (the second of all, the array still empty) and, never idle,
    // kept it through the flood: every one of its frames is counted there.
    // (In the LRU table that held all sources before, the kernel's
    // non-strict LRU could evict even it, as seen on 6.1 under qemu.) The
    // first idle sample comes before it has been idle for three reads.
    let steady_seen = talkers(&v)
        .into_iter()
        .find(|t| t.0 == steady_ip.to_string())
        .map_or(0, |t| t.1);
    assert_eq!(steady_seen, steady_sent, "{v}");
    // xdptop's memory: the tables it reads are bounded by their capacity.
    let peak = xdp_lab::procfs::status_kb(run.pid(), "VmHWM").expect("VmHWM");
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!(
            "flood: {sent} frames, steady sender {steady_seen} of {steady_sent} counted at the \
             end, xdptop RSS before {rss_before} KiB, peak {peak} KiB, {} busy samples\n",
            busy.len()
        )
        .as_bytes(),
    );
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB");
    assert!(run.stop().success());
}

#[test]
fn a_port_scan_evicts_no_service() {
    let (bpffs, lab) = setup("tkscan", 1);
    let iface = &lab.links[0].xdp_if;
    let (gen_ip, dst) = (lab.links[0].gen_ip, lab.links[0].xdp_ip);
    // A tiny sources table: the services array does not depend on it.
    let args = [
        "--interval",
        "200ms",
        "--talkers",
        "5",
        "--talkers-table",
        "16",
        iface.as_str(),
    ];
    let mut run = Running::start_healthy(&lab, bpffs.path(), &args, WAIT);
    // udp/53 first, then a scan of 3000 TCP ports, 2000 UDP ports and 50
    // other protocols: an LRU table of services (64 entries at this size
    // before) would have evicted udp/53 and most of the scan; the array
    // keeps every one, exact.
    let dns = frames::ipv4(gen_ip, dst, IPPROTO_UDP, 53, 30);
    let mut all = vec![dns.clone(); 300];
    all.extend((1000..4000).map(|port| frames::ipv4(gen_ip, dst, IPPROTO_TCP, port, 0)));
    all.extend((20_000..22_000).map(|port| frames::ipv4(gen_ip, dst, IPPROTO_UDP, port, 0)));
    all.extend((140..190).map(|proto| frames::ipv4(gen_ip, dst, proto, 0, 8)));
    let (sent, bytes) = send_all(&lab, &all, RATE);
    // Idle, and the tables caught up: a scanned port that came in between
    // the tables' read and the counters' (a wide gap under the guests'
    // emulation) shows in the tables one period late, ranked above udp/53
    // there, with its rate capped to the interface's zero.
    let v = run.wait_for(iface, WAIT, |v| {
        packets(v) >= sent && v["pps"] == 0.0 && services(v).contains_key("udp/53")
    });
    assert_eq!(
        (packets(&v), v["bytes"].as_u64()),
        (sent, Some(bytes)),
        "{v}"
    );
    let listed = services(&v);
    assert_eq!(listed.len(), 5, "{v}");
    assert_eq!(listed["udp/53"], (300, 300 * dns.len() as u64), "{v}");
    // The other four listed are scanned ports, seen once each.
    for (service, (p, _)) in &listed {
        assert!(service == "udp/53" || *p == 1, "{service}: {p} in {v}");
    }
    for l in run.all_lines() {
        assert_consistent(&l, 5);
    }
    assert!(run.stop().success());
    // Every scanned service is in the kernel's array, exact: read it back
    // through bpftool (the slots with packets).
    let dir = bpffs.path().join("xdptop").join(iface).join("services");
    let dump = bpftool(&["-j", "map", "dump", "pinned", dir.to_str().expect("utf8")]);
    let dump: Value = serde_json::from_str(&dump).expect("bpftool JSON");
    let counted: Vec<(u64, u64)> = dump
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| {
            let slot = e["formatted"]["key"].as_u64()?;
            let packets = e["formatted"]["value"]["packets"].as_u64()?;
            (packets > 0).then_some((slot, packets))
        })
        .collect();
    assert_eq!(counted.len(), 1 + 3000 + 2000 + 50, "{counted:?}");
    assert!(counted.contains(&(65_536 + 53, 300)));
    assert!(
        counted
            .iter()
            .all(|&(slot, p)| slot == 65_536 + 53 || p == 1)
    );
}

/// `bytes_memlock` of a pinned map, as bpftool shows it.
fn memlock(pin: &std::path::Path) -> u64 {
    let out = bpftool(&["-j", "map", "show", "pinned", pin.to_str().expect("utf8")]);
    let v: Value = serde_json::from_str(&out).expect("bpftool JSON");
    v["bytes_memlock"].as_u64().expect("bytes_memlock")
}

#[test]
fn attachments_without_tables_or_with_small_ones_are_said_and_survived() {
    let (bpffs, lab) = setup("tkreuse", 1);
    let iface = lab.links[0].xdp_if.clone();
    let dir = bpffs.path().join("xdptop").join(&iface);
    let cpus = std::fs::read_to_string("/sys/devices/system/cpu/possible").expect("cpus");
    let cpus = cpus
        .trim()
        .rsplit(['-', ','])
        .next()
        .and_then(|n| n.parse::<u32>().ok())
        .expect("possible CPUs")
        + 1;

    // Without --talkers the tables are small (1024 sources) and idle.
    let out = xdptop_json(&lab, bpffs.path(), "1", &[&iface]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    check_memory(&dir, 1024, cpus);

    // --talkers on that attachment: it works with the small table and says so.
    let args = ["--interval", "200ms", "--talkers", "3", iface.as_str()];
    let mut run = Running::start_healthy(&lab, bpffs.path(), &args, WAIT);
    let f = frames::ipv4(src(5), lab.links[0].xdp_ip, IPPROTO_UDP, 9, 18);
    let (sent, _) = send_all(&lab, &vec![f; 100], RATE);
    let v = run.wait_for(&iface, WAIT, |v| packets(v) >= sent && v["pps"] == 0.0);
    assert_eq!(talkers(&v)[0].1, 100, "{v}");
    assert_eq!(v["talkers_table"]["capacity"], 1024, "{v}");
    assert!(run.stop().success());
    let err = run.stderr_lines().join("\n");
    assert!(
        err.contains("holds 1024 sources, fewer than --talkers-table 131072"),
        "{err}"
    );

    // An attachment of an xdptop from before talkers: no tables pinned.
    for name in ["config", "talkers", "services"] {
        std::fs::remove_file(dir.join(name)).expect("removing a talker pin");
    }
    let mut run = Running::start_healthy(&lab, bpffs.path(), &args, WAIT);
    let v = run.wait_for(&iface, WAIT, healthy);
    assert!(v.get("talkers").is_none(), "{v}");
    assert!(run.stop().success());
    let err = run.stderr_lines().join("\n");
    assert!(
        err.contains(&format!("re-attach: `xdptop --detach {iface}`")),
        "{err}"
    );

    // Tables of another layout (another version's, or someone's maps at
    // those paths): said, and the interface is watched without talkers.
    for (name, kind) in [
        ("config", "array"),
        ("talkers", "hash"),
        ("services", "hash"),
    ] {
        let path = dir.join(name);
        bpftool(&[
            "map",
            "create",
            path.to_str().expect("utf8"),
            "type",
            kind,
            "key",
            "4",
            "value",
            "8",
            "entries",
            "4",
            "name",
            "foreign",
        ]);
    }
    let mut run = Running::start_healthy(&lab, bpffs.path(), &args, WAIT);
    let v = run.wait_for(&iface, WAIT, healthy);
    assert!(v.get("talkers").is_none(), "{v}");
    assert!(run.stop().success());
    let err = run.stderr_lines().join("\n");
    assert!(err.contains("is not a table of the layout"), "{err}");

    // The way out it names works: detach, then --talkers loads fresh tables.
    detach(&lab, bpffs.path(), &iface);
    let out = xdptop(
        &lab,
        bpffs.path(),
        &[
            "--headless",
            "--json",
            "--count",
            "1",
            "--interval",
            "100ms",
            "--talkers",
            "3",
            &iface,
        ],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(v["talkers_table"]["capacity"], 131_072, "{v}");
    check_memory(&dir, 131_072, cpus);

    // A program pinned by an xdptop whose services table was an LRU hash
    // (same key and value sizes as today's array, told apart by the type):
    // re-used, it is still read as a hash. Stood in for by such a map, with
    // udp/53 at 7 packets, pinned where the program's array was.
    let lru = dir.join("services");
    std::fs::remove_file(&lru).expect("removing the services pin");
    let path = lru.to_str().expect("utf8");
    bpftool(&[
        "map",
        "create",
        path,
        "type",
        "lru_hash",
        "key",
        "4",
        "value",
        "16",
        "entries",
        "64",
        "name",
        "xdptop_services",
    ]);
    #[rustfmt::skip]
    bpftool(&[
        "map", "update", "pinned", path,
        "key", "53", "0", "17", "0",
        "value", "7", "0", "0", "0", "0", "0", "0", "0", "192", "1", "0", "0", "0", "0", "0", "0",
    ]);
    let mut run = Running::start_healthy(&lab, bpffs.path(), &args, WAIT);
    let v = run.wait_for(&iface, WAIT, |v| v["services"].is_array());
    assert_eq!(
        services(&v),
        BTreeMap::from([("udp/53".to_owned(), (7, 448))]),
        "{v}"
    );
    assert!(run.stop().success());
}

/// The kernel's account of the tables' memory matches the documented
/// formula within 1 %. Only Linux 6.5 and later report what a map really
/// takes (`map_mem_usage`); before, `bytes_memlock` is a page-rounded
/// key + value estimate, so there is nothing to compare.
fn check_memory(dir: &std::path::Path, sources: u32, cpus: u32) {
    let release = nix::sys::utsname::uname().expect("uname");
    let release = release.release().to_string_lossy().into_owned();
    let mut nums = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    if (nums.next().unwrap_or(0), nums.next().unwrap_or(0)) < (6, 5) {
        return;
    }
    let kernel = memlock(&dir.join("sources"))
        + memlock(&dir.join("talkers"))
        + memlock(&dir.join("services"));
    let formula = xdptop::bpf::talkers_kernel_memory(sources, cpus);
    assert!(
        kernel.abs_diff(formula) * 100 < kernel,
        "kernel {kernel} vs formula {formula}"
    );
}

/// Whether the talkers switch of `iface`'s program is on (bpftool's dump).
fn switch_on(bpffs: &std::path::Path, iface: &str) -> bool {
    let config = bpffs.join("xdptop").join(iface).join("config");
    if !config.exists() {
        return false;
    }
    let dump = bpftool(&["-j", "map", "dump", "pinned", path_str(&config)]);
    dump.contains("\"talkers\":1")
}

#[test]
fn the_switch_stays_on_while_anyone_counts_and_a_killed_reader_is_cleaned_up_after() {
    let (bpffs, lab) = setup("tkswitch", 1);
    let iface = lab.links[0].xdp_if.as_str();
    // A counts and reads only every hour: it never switches on again by
    // itself while this test runs.
    let mut a = Running::start(
        &lab,
        bpffs.path(),
        &["--interval", "1h", "--talkers", "3", iface],
    );
    xdp_lab::poll(WAIT, Duration::from_millis(50), || {
        switch_on(bpffs.path(), iface).then_some(()).ok_or(())
    })
    .expect("A switched counting on");
    // B counts too, then ends: A still counts, so the switch stays on.
    let mut b = Running::start_healthy(
        &lab,
        bpffs.path(),
        &["--interval", "200ms", "--talkers", "3", iface],
        WAIT,
    );
    assert!(b.stop().success());
    assert!(
        switch_on(bpffs.path(), iface),
        "B switched off A's counting"
    );
    // A killed outright cannot switch off: the switch stays on...
    a.kill();
    assert!(switch_on(bpffs.path(), iface));
    // ...until an xdptop watches the interface without talkers: nobody
    // counts (no lock held), so it switches the forgotten switch off.
    let mut c = Running::start_healthy(&lab, bpffs.path(), &["--interval", "200ms", iface], WAIT);
    assert!(
        !switch_on(bpffs.path(), iface),
        "left on with nobody counting"
    );
    assert!(c.stop().success());
}
