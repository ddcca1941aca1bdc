//! The Rust mirror types must match the structs the compiled object describes
//! in its BTF, which is also what bpftool and libbpf readers see.

use std::{io::Write as _, mem::offset_of, process::Command};

use serde_json::Value;
use xdp_ebpf::{DataRec, Verdict, XdptopStats};

fn btf_struct(object: &[u8], name: &str) -> Value {
    let mut file = tempfile(name, object.len());
    file.1.write_all(object).expect("write object");
    let out = Command::new("bpftool")
        .args(["-j", "btf", "dump", "file"])
        .arg(&file.0)
        .output()
        .expect("bpftool must be installed (apt-get install bpftool)");
    let _ = std::fs::remove_file(&file.0);
    assert!(
        out.status.success(),
        "bpftool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dump: Value = serde_json::from_slice(&out.stdout).expect("bpftool JSON");
    dump["types"]
        .as_array()
        .expect("types")
        .iter()
        .find(|t| t["kind"] == "STRUCT" && t["name"] == name)
        .unwrap_or_else(|| panic!("struct {name} not in BTF"))
        .clone()
}

fn tempfile(name: &str, len: usize) -> (std::path::PathBuf, std::fs::File) {
    // Tests run in parallel and two may dump the same object: each call
    // gets its own file, so none truncates another's under bpftool.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // Cargo's per-target scratch directory: nothing is left in /tmp.
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("btf-{name}-{len}-{}-{n}.o", std::process::id()));
    let file = std::fs::File::create(&path).expect("create temp object");
    (path, file)
}

fn members(s: &Value) -> Vec<(String, u64)> {
    s["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            let name = m["name"].as_str().expect("name").to_owned();
            (name, m["bits_offset"].as_u64().expect("offset") / 8)
        })
        .collect()
}

#[test]
fn datarec_matches_btf() {
    let s = btf_struct(xdp_ebpf::xdptop_object(), "datarec");
    assert_eq!(s["size"].as_u64(), Some(size_of::<DataRec>() as u64));
    assert_eq!(
        size_of::<DataRec>(),
        16,
        "the seed's scrapers read 16 bytes"
    );
    assert_eq!(
        members(&s),
        vec![
            (
                "rx_packets".to_owned(),
                offset_of!(DataRec, rx_packets) as u64
            ),
            ("rx_bytes".to_owned(), offset_of!(DataRec, rx_bytes) as u64),
        ]
    );
}

#[test]
fn seed_style_datarec_is_the_same() {
    let ours = btf_struct(xdp_ebpf::xdptop_object(), "datarec");
    let seed = btf_struct(xdp_ebpf::seed_style_object(), "datarec");
    assert_eq!(members(&ours), members(&seed));
    assert_eq!(ours["size"], seed["size"]);
}

#[test]
fn xdptop_stats_matches_btf() {
    let s = btf_struct(xdp_ebpf::xdptop_object(), "xdptop_stats");
    assert_eq!(s["size"].as_u64(), Some(size_of::<XdptopStats>() as u64));
    assert_eq!(
        members(&s),
        vec![
            (
                "packets".to_owned(),
                offset_of!(XdptopStats, packets) as u64
            ),
            ("bytes".to_owned(), offset_of!(XdptopStats, bytes) as u64),
            ("l3".to_owned(), offset_of!(XdptopStats, l3) as u64),
            ("l4".to_owned(), offset_of!(XdptopStats, l4) as u64),
            (
                "size_hist".to_owned(),
                offset_of!(XdptopStats, size_hist) as u64
            ),
        ]
    );
}

#[test]
fn size_buckets_follow_the_bounds() {
    assert_eq!(xdp_ebpf::size_bucket(0), 0);
    assert_eq!(xdp_ebpf::size_bucket(64), 0);
    assert_eq!(xdp_ebpf::size_bucket(65), 1);
    assert_eq!(xdp_ebpf::size_bucket(1518), 5);
    assert_eq!(xdp_ebpf::size_bucket(1519), 6);
    assert_eq!(xdp_ebpf::size_bucket(9000), 6);
}

#[test]
fn talker_types_match_btf() {
    use xdp_ebpf::{Counter, SourceSlot, TalkerKey, XdptopConfig};
    let obj = xdp_ebpf::xdptop_object();
    let s = btf_struct(obj, "xdptop_talker_key");
    assert_eq!(s["size"].as_u64(), Some(size_of::<TalkerKey>() as u64));
    assert_eq!(members(&s), vec![("addr".to_owned(), 0)]);
    let s = btf_struct(obj, "xdptop_counter");
    assert_eq!(s["size"].as_u64(), Some(size_of::<Counter>() as u64));
    assert_eq!(
        members(&s),
        vec![
            ("packets".to_owned(), offset_of!(Counter, packets) as u64),
            ("bytes".to_owned(), offset_of!(Counter, bytes) as u64),
        ]
    );
    let s = btf_struct(obj, "xdptop_config");
    assert_eq!(s["size"].as_u64(), Some(size_of::<XdptopConfig>() as u64));
    assert_eq!(
        members(&s),
        vec![
            (
                "talkers".to_owned(),
                offset_of!(XdptopConfig, talkers) as u64
            ),
            (
                "source_mask".to_owned(),
                offset_of!(XdptopConfig, source_mask) as u64
            ),
        ]
    );
    let s = btf_struct(obj, "xdptop_source_slot");
    assert_eq!(s["size"].as_u64(), Some(size_of::<SourceSlot>() as u64));
    assert_eq!(
        members(&s),
        vec![
            ("key".to_owned(), offset_of!(SourceSlot, key) as u64),
            ("packets".to_owned(), offset_of!(SourceSlot, packets) as u64),
            ("bytes".to_owned(), offset_of!(SourceSlot, bytes) as u64),
            ("addr".to_owned(), offset_of!(SourceSlot, addr) as u64),
        ]
    );
}

#[test]
fn talker_tables_have_the_documented_defaults() {
    let obj = aya_obj::Object::parse(xdp_ebpf::xdptop_object()).expect("parse");
    let def = |name: &str| {
        let map = obj
            .maps
            .get(name)
            .unwrap_or_else(|| panic!("no map {name}"));
        (
            map.map_type(),
            map.key_size(),
            map.value_size(),
            map.max_entries(),
            map.map_flags(),
        )
    };
    let counter = size_of::<xdp_ebpf::Counter>() as u32;
    assert_eq!(
        def(xdp_ebpf::TALKERS_MAP),
        (
            xdp_ebpf::LRU_HASH_TYPE,
            16,
            counter,
            xdp_ebpf::TALKERS_MAX_ENTRIES / 8,
            0
        )
    );
    assert_eq!(
        def(xdp_ebpf::SOURCES_MAP),
        (
            xdp_ebpf::ARRAY_TYPE,
            4,
            size_of::<xdp_ebpf::SourceSlot>() as u32,
            xdp_ebpf::TALKERS_MAX_ENTRIES,
            xdp_ebpf::MMAPABLE
        )
    );
    assert_eq!(
        def(xdp_ebpf::SERVICES_MAP),
        (
            xdp_ebpf::ARRAY_TYPE,
            4,
            counter,
            xdp_ebpf::SERVICE_SLOTS,
            xdp_ebpf::MMAPABLE
        )
    );
}

#[test]
fn verdict_matches_btf() {
    let s = btf_struct(xdp_ebpf::verdicts_object(), "xdptop_verdict");
    assert_eq!(s["size"].as_u64(), Some(size_of::<Verdict>() as u64));
    assert_eq!(
        members(&s),
        vec![
            ("packets".to_owned(), offset_of!(Verdict, packets) as u64),
            ("bytes".to_owned(), offset_of!(Verdict, bytes) as u64),
        ]
    );
}
