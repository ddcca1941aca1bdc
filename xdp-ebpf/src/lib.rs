//! xdptop's XDP program, compiled from C by the build script, and the
//! `#[repr(C)]` mirrors of the structs its maps hold (`bpf/xdp_stats.h`).

/// Bytes with the 8-byte alignment an ELF parser expects.
#[repr(C, align(8))]
pub struct Aligned<T: ?Sized>(pub T);

macro_rules! object {
    ($name:literal) => {{
        static BYTES: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(
            env!("OUT_DIR"),
            "/",
            $name,
            ".bpf.o"
        )));
        &BYTES.0
    }};
}

/// xdptop's counting program (`bpf/xdp_stats.bpf.c`).
pub fn xdptop_object() -> &'static [u8] {
    object!("xdp_stats")
}

/// The seed host's style of program: one hash lookup and two atomic adds into
/// the pinned `xdp_stats_map`. Tests load it the way another loader would.
pub fn seed_style_object() -> &'static [u8] {
    object!("seed_style")
}

/// Benchmark only: xdptop's program counting every source in the LRU table
/// ([`TALKERS_MAP`]), as it did before the sources array.
pub fn xdptop_sources_lru_object() -> &'static [u8] {
    object!("xdp_stats_sources_lru")
}

/// Benchmark only: xdptop's program with the talkers compiled out, as it
/// was before them.
pub fn xdptop_no_talkers_object() -> &'static [u8] {
    object!("xdp_stats_no_talkers")
}

/// Benchmark only: xdptop's program counting talkers by source only (the
/// services array left out), to show what each table costs.
pub fn xdptop_sources_only_object() -> &'static [u8] {
    object!("xdp_stats_sources_only")
}

/// Benchmark only: xdptop's program counting talkers by service only (the
/// sources table left out).
pub fn xdptop_services_only_object() -> &'static [u8] {
    object!("xdp_stats_services_only")
}

/// An XDP program that only returns `XDP_PASS`: the benchmark's floor.
pub fn empty_object() -> &'static [u8] {
    object!("empty")
}

/// xdptop's verdict observer (`bpf/verdicts.bpf.c`): an fexit program for
/// the XDP program on an interface, counting packets and bytes by verdict.
pub fn verdicts_object() -> &'static [u8] {
    object!("verdicts")
}

/// Where the built seed-style object lies, for tools such as `xdp-loader`
/// that load from a file. Valid on the machine that built this crate.
pub const SEED_STYLE_OBJECT_PATH: &str = concat!(env!("OUT_DIR"), "/seed_style.bpf.o");

/// Where the built [`empty_object`] lies (an XDP_PASS program that updates no
/// map), for `ip link ... obj` in tests.
pub const EMPTY_OBJECT_PATH: &str = concat!(env!("OUT_DIR"), "/empty.bpf.o");

/// Name of the program section in [`xdptop_object`].
pub const XDPTOP_PROGRAM: &str = "xdptop_count";
/// Name of the program in [`seed_style_object`].
pub const SEED_STYLE_PROGRAM: &str = "xdp_stats_prog";
/// Name of the program in [`verdicts_object`].
pub const VERDICTS_PROGRAM: &str = "xdptop_verdict";
/// Its per-CPU map: one [`Verdict`] per XDP action.
pub const VERDICTS_MAP: &str = "xdptop_verdicts";

/// Name of the program in [`empty_object`].
pub const EMPTY_PROGRAM: &str = "xdp_pass";

/// `volatile const` in xdptop's program: 1 when the loader lacks CAP_PERFMON,
/// so the program avoids what the verifier then forbids (pointer subtraction,
/// variable indexes into map values) at a small cost per packet.
pub const CAP_BPF_ONLY: &str = "cap_bpf_only";

/// The seed's shared map, read by bpftool and libbpf scrapers.
pub const STATS_MAP: &str = "xdp_stats_map";
/// xdptop's own per-CPU counters, one program instance per interface.
pub const XDPTOP_STATS_MAP: &str = "xdptop_stats";
/// Run-time switches ([`XdptopConfig`], one slot) that xdptop writes.
pub const CONFIG_MAP: &str = "xdptop_config";
/// Per-source packet and byte counters ([`TalkerKey`] -> [`Counter`], LRU)
/// for the sources that find no slot in [`SOURCES_MAP`] (and, in programs
/// loaded before that array, for all sources).
pub const TALKERS_MAP: &str = "xdptop_talkers";
/// Per-source counters in an mmapable array of [`SourceSlot`]s, claimed by
/// the program and freed by xdptop (see `bpf/xdp_stats.h`).
pub const SOURCES_MAP: &str = "xdptop_sources";
/// One bit per slot of [`SOURCES_MAP`] (u64 words, mmapable), set by the
/// program when it claims the slot and cleared by xdptop when it frees it.
pub const SOURCES_USED_MAP: &str = "xdptop_sources_used";
/// Per-service counters: an array of [`Counter`]s, one slot per service
/// ([`service_slot`]), mmapable ([`MMAPABLE`]). xdptop programs loaded
/// before it was an array have an LRU hash ([`ServiceKey`] -> [`Counter`],
/// [`LRU_HASH_TYPE`]) under the same name.
pub const SERVICES_MAP: &str = "xdptop_services";
/// `max_entries` of [`SOURCES_MAP`] in the object (`XDPTOP_TALKERS_MAX_ENTRIES`);
/// [`TALKERS_MAP`] has an eighth of it.
pub const TALKERS_MAX_ENTRIES: u32 = 131_072;
/// Slots a source probes in [`SOURCES_MAP`] before it goes to [`TALKERS_MAP`].
pub const SOURCE_PROBES: u32 = 8;
/// States of a [`SourceSlot`]'s key word (its low byte; 0: empty).
pub mod source {
    /// An IPv4 source, its address in the high 32 bits (as in the packet).
    pub const V4: u64 = 1;
    /// An IPv6 source, a hash of it in the high 32 bits, the address in `addr`.
    pub const V6: u64 = 2;
    /// An IPv6 slot whose address is being written.
    pub const BUSY: u64 = 3;
    /// A slot xdptop is freeing.
    pub const DEAD: u64 = 4;
}
/// `BPF_MAP_TYPE_LRU_HASH`, the sources table's type.
pub const LRU_HASH_TYPE: u32 = 9;
/// `BPF_MAP_TYPE_ARRAY`, the services table's type.
pub const ARRAY_TYPE: u32 = 2;
/// `BPF_F_MMAPABLE`, the services array's flag.
pub const MMAPABLE: u32 = 1 << 10;

/// First slot of TCP services in [`SERVICES_MAP`] (`XDPTOP_SERVICE_TCP`).
pub const SERVICE_TCP: u32 = 0;
/// First slot of UDP services (`XDPTOP_SERVICE_UDP`).
pub const SERVICE_UDP: u32 = 65_536;
/// First slot of the other protocols, one each, port 0 (`XDPTOP_SERVICE_PROTO`).
pub const SERVICE_PROTO: u32 = 131_072;
/// Slots of [`SERVICES_MAP`] (`XDPTOP_SERVICE_SLOTS`): 2 × 65536 + 256.
pub const SERVICE_SLOTS: u32 = 131_072 + 256;
/// IP protocol numbers with a slot per port.
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;

/// The slot of [`SERVICES_MAP`] that counts `key`, as the program files it;
/// `None` for a key it never counts (a port for a protocol other than TCP
/// and UDP).
pub fn service_slot(key: ServiceKey) -> Option<u32> {
    match key.protocol {
        IPPROTO_TCP => Some(SERVICE_TCP + u32::from(key.port)),
        IPPROTO_UDP => Some(SERVICE_UDP + u32::from(key.port)),
        p if key.port == 0 => Some(SERVICE_PROTO + u32::from(p)),
        _ => None,
    }
}

/// The service that slot `slot` of [`SERVICES_MAP`] counts.
pub fn service_of_slot(slot: u32) -> ServiceKey {
    let (protocol, port) = if slot < SERVICE_UDP {
        (IPPROTO_TCP, slot - SERVICE_TCP)
    } else if slot < SERVICE_PROTO {
        (IPPROTO_UDP, slot - SERVICE_UDP)
    } else {
        ((slot - SERVICE_PROTO) as u8, 0)
    };
    ServiceKey {
        port: port as u16,
        protocol,
        pad: 0,
    }
}

/// `max_entries` of [`STATS_MAP`]: only key 0 is used.
pub const STATS_MAP_MAX_ENTRIES: u32 = 1;
/// `BPF_MAP_TYPE_HASH`, the seed's map type.
pub const STATS_MAP_TYPE: u32 = 1;

/// `struct datarec`: the value at key 0 of `xdp_stats_map`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DataRec {
    pub rx_packets: u64,
    pub rx_bytes: u64,
}

/// Index into [`XdptopStats::l3`].
pub mod l3 {
    pub const IPV4: usize = 0;
    pub const IPV6: usize = 1;
    pub const ARP: usize = 2;
    pub const OTHER: usize = 3;
    pub const COUNT: usize = 4;
    pub const NAMES: [&str; COUNT] = ["ipv4", "ipv6", "arp", "other"];
}

/// Index into [`XdptopStats::l4`] (IPv4 and IPv6 packets only).
pub mod l4 {
    pub const TCP: usize = 0;
    pub const UDP: usize = 1;
    pub const ICMP: usize = 2;
    pub const OTHER: usize = 3;
    pub const COUNT: usize = 4;
    pub const NAMES: [&str; COUNT] = ["tcp", "udp", "icmp", "other"];
}

/// Upper bounds (bytes, L2 frame without FCS) of the size histogram buckets;
/// the last bucket has no bound.
pub const SIZE_BUCKET_BOUNDS: [u64; SIZE_BUCKETS - 1] = [64, 128, 256, 512, 1024, 1518];
pub const SIZE_BUCKETS: usize = 7;

/// `struct xdptop_stats`: one CPU's counters for one interface.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdptopStats {
    pub packets: u64,
    pub bytes: u64,
    pub l3: [u64; l3::COUNT],
    pub l4: [u64; l4::COUNT],
    pub size_hist: [u64; SIZE_BUCKETS],
}

impl XdptopStats {
    /// Adds `other` into `self`, wrapping as the kernel's counters do.
    pub fn accumulate(&mut self, other: &Self) {
        self.packets = self.packets.wrapping_add(other.packets);
        self.bytes = self.bytes.wrapping_add(other.bytes);
        for (a, b) in self.l3.iter_mut().zip(other.l3) {
            *a = a.wrapping_add(b);
        }
        for (a, b) in self.l4.iter_mut().zip(other.l4) {
            *a = a.wrapping_add(b);
        }
        for (a, b) in self.size_hist.iter_mut().zip(other.size_hist) {
            *a = a.wrapping_add(b);
        }
    }
}

/// XDP actions, as the observer indexes [`VERDICTS_MAP`]: the kernel's
/// `enum xdp_action` values 0 to 4.
pub mod action {
    pub const ABORTED: usize = 0;
    pub const DROP: usize = 1;
    pub const PASS: usize = 2;
    pub const TX: usize = 3;
    pub const REDIRECT: usize = 4;
    pub const COUNT: usize = 5;
    /// As in the JSON `actions` object and the `xdp.action` attribute.
    pub const NAMES: [&str; COUNT] = ["aborted", "drop", "pass", "tx", "redirect"];
}

/// `struct xdptop_verdict`: one CPU's packets and bytes for one verdict.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub packets: u64,
    pub bytes: u64,
}

/// The histogram bucket of a frame of `len` bytes, as the XDP program files it.
pub fn size_bucket(len: u64) -> usize {
    SIZE_BUCKET_BOUNDS
        .iter()
        .position(|&bound| len <= bound)
        .unwrap_or(SIZE_BUCKETS - 1)
}

/// `struct xdptop_config`: run-time switches.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdptopConfig {
    /// 1: count sources and services.
    pub talkers: u32,
    /// Slots of [`SOURCES_MAP`] minus one (a power of two minus one).
    pub source_mask: u32,
}
/// `struct xdptop_source_slot`: one slot of [`SOURCES_MAP`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceSlot {
    /// 0: empty; else a [`source`] state in the low byte.
    pub key: u64,
    pub packets: u64,
    pub bytes: u64,
    /// The IPv6 address of a [`source::V6`] slot.
    pub addr: [u8; 16],
}

/// `struct xdptop_talker_key`: a source address, IPv4 as IPv4-mapped IPv6.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TalkerKey {
    pub addr: [u8; 16],
}

impl TalkerKey {
    /// The address as the program stores it.
    pub fn ip(&self) -> std::net::IpAddr {
        std::net::Ipv6Addr::from(self.addr).to_canonical()
    }
}

impl From<std::net::IpAddr> for TalkerKey {
    fn from(ip: std::net::IpAddr) -> Self {
        let v6 = match ip {
            std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            std::net::IpAddr::V6(v6) => v6,
        };
        Self { addr: v6.octets() }
    }
}

/// A service: transport protocol number and destination port (host byte
/// order; 0 for protocols other than TCP and UDP). The program files it in
/// a slot of its services array ([`service_slot`]); it is also the key of
/// the LRU services table of programs loaded by earlier xdptops (their
/// `struct xdptop_service_key`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey {
    pub port: u16,
    pub protocol: u8,
    pub pad: u8,
}

/// `struct xdptop_counter`: packets and bytes since the entry was created.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counter {
    pub packets: u64,
    pub bytes: u64,
}

// SAFETY: all three are #[repr(C)] structs of u64 fields only, without padding.
#[cfg(feature = "aya")]
unsafe impl aya::Pod for DataRec {}
#[cfg(feature = "aya")]
unsafe impl aya::Pod for XdptopStats {}
#[cfg(feature = "aya")]
unsafe impl aya::Pod for Verdict {}
// SAFETY: #[repr(C)] structs of integer fields without padding (the C side
// names its padding `pad`), so every bit pattern is valid.
#[cfg(feature = "aya")]
unsafe impl aya::Pod for XdptopConfig {}
#[cfg(feature = "aya")]
unsafe impl aya::Pod for TalkerKey {}
#[cfg(feature = "aya")]
unsafe impl aya::Pod for ServiceKey {}
#[cfg(feature = "aya")]
unsafe impl aya::Pod for Counter {}
#[cfg(feature = "aya")]
unsafe impl aya::Pod for SourceSlot {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_slot_is_one_service_and_back() {
        for slot in (0..SERVICE_SLOTS).filter(|&s| {
            // The protocol slots of TCP and UDP stay unused (their packets
            // go by port).
            s != SERVICE_PROTO + u32::from(IPPROTO_TCP)
                && s != SERVICE_PROTO + u32::from(IPPROTO_UDP)
        }) {
            assert_eq!(service_slot(service_of_slot(slot)), Some(slot), "{slot}");
        }
        let key = |protocol, port| ServiceKey {
            port,
            protocol,
            pad: 0,
        };
        assert_eq!(service_slot(key(IPPROTO_UDP, 53)), Some(65_536 + 53));
        assert_eq!(service_slot(key(IPPROTO_TCP, 65_535)), Some(65_535));
        assert_eq!(service_slot(key(1, 0)), Some(131_073));
        assert_eq!(service_slot(key(255, 0)), Some(SERVICE_SLOTS - 1));
        assert_eq!(service_slot(key(132, 80)), None);
    }
}
