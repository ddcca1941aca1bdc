//! Top talkers: per-source and per-service deltas, rates and ranking, as
//! pure functions over the kernel tables' cumulative counters (read by
//! `bpf/talkers.rs`). The sampler keeps one [`TalkerTracker`] per interface.
//!
//! A source's counts lie in one or more slots of the sources array (two CPUs
//! may claim two slots for one source), or in the LRU table that takes what
//! finds no slot: each place is tracked on its own and the places of one
//! address are added up. A slot freed when idle, or an LRU entry evicted
//! under churn, loses its counts, and when the address comes back it starts
//! again from zero. Such an entry is counted anew: its whole count is this
//! period's (never a negative delta), and its `packets`/`bytes` are since it
//! was last (re-)created.

use std::{collections::HashMap, hash::Hash, net::IpAddr};

use serde::Serialize;
use xdp_ebpf::{Counter, ServiceKey, TalkerKey};

use crate::sample::TalkerReading;

/// One source in a sample.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Talker {
    pub source: IpAddr,
    /// The kernel's counts since the entry was created.
    pub packets: u64,
    pub bytes: u64,
    pub pps: f64,
    /// Bits per second.
    pub bps: f64,
}

/// One service (transport protocol + destination port) in a sample.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Service {
    /// `tcp`, `udp`, `icmp`, `icmpv6`, … or the protocol number.
    pub protocol: String,
    /// Destination port; 0 for protocols without ports.
    pub port: u16,
    pub packets: u64,
    pub bytes: u64,
    pub pps: f64,
    pub bps: f64,
}

/// What the listed entries leave of the interface's rates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Other {
    pub pps: f64,
    pub bps: f64,
}

/// Fill of the sources table, to tell when evictions are likely: the
/// sources array's slots in use, and the LRU table that takes the sources
/// that find no slot (`overflow`; programs loaded before the array have
/// only an LRU table, which is then `entries`/`capacity`, overflow 0/0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Table {
    pub entries: usize,
    pub capacity: u32,
    pub overflow: usize,
    pub overflow_capacity: u32,
}

/// Where some of a source's counts lie: a slot of the sources array, or
/// the LRU table (`slot: None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceAt {
    pub key: TalkerKey,
    pub slot: Option<u32>,
}

/// The talkers part of a sample: the N heaviest sources and services, and
/// what the rest adds up to (`listed + other = the interface's rates`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Talkers {
    pub talkers: Vec<Talker>,
    pub talkers_other: Other,
    pub services: Vec<Service>,
    pub services_other: Other,
    pub talkers_table: Table,
}

/// An entry's counts and its increase over the period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Moved<K> {
    pub key: K,
    pub total: Counter,
    pub delta: Counter,
}

/// The increase of one entry: `cur - prev`, or all of `cur` when the entry
/// is new or restarted (evicted, then created again with smaller counts).
pub fn entry_delta(prev: Option<&Counter>, cur: &Counter) -> Counter {
    match prev {
        Some(p) if cur.packets >= p.packets && cur.bytes >= p.bytes => Counter {
            packets: cur.packets - p.packets,
            bytes: cur.bytes - p.bytes,
        },
        _ => *cur,
    }
}

/// The `n` heaviest entries by packets over the period (the same period for
/// all, so by pps), ties broken by total packets, then by key. The listed
/// deltas are then capped, heaviest first, so that together they never
/// exceed the interface's own increase (`limit`): tables read a moment
/// before the interface's counters, or an entry created during the previous
/// read and counted whole, cannot make the talkers outweigh the interface.
pub fn top_n<K: Ord + Copy>(mut all: Vec<Moved<K>>, n: usize, limit: Counter) -> Vec<Moved<K>> {
    let order = |a: &Moved<K>, b: &Moved<K>| {
        b.delta
            .packets
            .cmp(&a.delta.packets)
            .then(b.total.packets.cmp(&a.total.packets))
            .then(a.key.cmp(&b.key))
    };
    if n == 0 {
        return Vec::new();
    }
    if all.len() > n {
        all.select_nth_unstable_by(n - 1, order);
        all.truncate(n);
    }
    all.sort_unstable_by(order);
    let mut left = limit;
    for m in &mut all {
        m.delta.packets = m.delta.packets.min(left.packets);
        m.delta.bytes = m.delta.bytes.min(left.bytes);
        left.packets -= m.delta.packets;
        left.bytes -= m.delta.bytes;
    }
    all
}

/// What the interface's increase leaves after the listed entries' (never
/// below zero).
pub fn rest<K>(listed: &[Moved<K>], interface: Counter) -> Counter {
    let (p, b) = listed.iter().fold((0u64, 0u64), |(p, b), m| {
        (
            p.saturating_add(m.delta.packets),
            b.saturating_add(m.delta.bytes),
        )
    });
    Counter {
        packets: interface.packets.saturating_sub(p),
        bytes: interface.bytes.saturating_sub(b),
    }
}

/// (pps, bps) of an increase over `period_s` seconds; zero for no period.
pub fn rates(delta: Counter, period_s: f64) -> (f64, f64) {
    if period_s > 0.0 {
        (
            delta.packets as f64 / period_s,
            delta.bytes as f64 * 8.0 / period_s,
        )
    } else {
        (0.0, 0.0)
    }
}

/// foldhash, seeded per process: fast on 100k keys per tick, and the seed
/// keeps spoofed sources from choosing colliding keys.
type Map<K> = HashMap<K, Counter, foldhash::fast::RandomState>;

/// One table's previous reading, to take deltas from. Two maps swap roles
/// each tick, so a busy table costs no allocation per tick.
#[derive(Debug)]
struct Table1<K> {
    prev: Map<K>,
    next: Map<K>,
}

impl<K: Hash + Eq + Copy> Table1<K> {
    fn new() -> Self {
        Self {
            prev: Map::default(),
            next: Map::default(),
        }
    }

    /// Deltas against the previous reading (zero when not `comparable`);
    /// the reading becomes the next baseline.
    fn update(&mut self, entries: Vec<(K, Counter)>, comparable: bool) -> Vec<Moved<K>> {
        self.next.clear();
        self.next.reserve(entries.len());
        let mut moved = Vec::with_capacity(entries.len());
        for (key, total) in entries {
            let delta = if comparable {
                entry_delta(self.prev.get(&key), &total)
            } else {
                Counter::default()
            };
            self.next.insert(key, total);
            moved.push(Moved { key, total, delta });
        }
        std::mem::swap(&mut self.prev, &mut self.next);
        // Memory follows the table: after a flood, give it back.
        if self.next.capacity() > 4 * self.prev.len().max(1024) {
            self.next = Map::default();
        }
        moved
    }
}

fn sum(a: Counter, b: Counter) -> Counter {
    Counter {
        packets: a.packets.saturating_add(b.packets),
        bytes: a.bytes.saturating_add(b.bytes),
    }
}

/// Adds up the places of each address: one line per source.
fn by_source(
    places: Vec<Moved<SourceAt>>,
    index: &mut HashMap<TalkerKey, usize, foldhash::fast::RandomState>,
) -> Vec<Moved<TalkerKey>> {
    use std::collections::hash_map::Entry;
    index.clear();
    let mut out: Vec<Moved<TalkerKey>> = Vec::with_capacity(places.len());
    for m in places {
        match index.entry(m.key.key) {
            Entry::Occupied(e) => {
                let line = &mut out[*e.get()];
                line.total = sum(line.total, m.total);
                line.delta = sum(line.delta, m.delta);
            }
            Entry::Vacant(e) => {
                e.insert(out.len());
                out.push(Moved {
                    key: m.key.key,
                    total: m.total,
                    delta: m.delta,
                });
            }
        }
    }
    if index.capacity() > 4 * out.len().max(1024) {
        *index = HashMap::default();
    }
    out
}

/// Per-interface state: the previous tables, and which tables they were.
#[derive(Debug)]
pub struct TalkerTracker {
    top: usize,
    epoch: Option<u64>,
    sources: Table1<SourceAt>,
    services: Table1<ServiceKey>,
    /// Scratch for [`by_source`], kept to spare an allocation per tick.
    index: HashMap<TalkerKey, usize, foldhash::fast::RandomState>,
}

impl TalkerTracker {
    /// Keeps the `top` heaviest sources and services.
    pub fn new(top: usize) -> Self {
        Self {
            top,
            epoch: None,
            sources: Table1::new(),
            services: Table1::new(),
            index: HashMap::default(),
        }
    }

    /// Turns a reading into the sample's talkers. `interface` is the
    /// interface's increase over the same period (`None`: no valid previous
    /// reading, so no rates, only a new baseline), `period_s` its length.
    pub fn update(
        &mut self,
        reading: TalkerReading,
        interface: Option<Counter>,
        period_s: f64,
    ) -> Talkers {
        let comparable = interface.is_some() && self.epoch == Some(reading.epoch);
        self.epoch = Some(reading.epoch);
        let limit = interface.unwrap_or_default();
        let table = reading.table;
        let places = self.sources.update(reading.sources, comparable);
        let sources = top_n(by_source(places, &mut self.index), self.top, limit);
        let services = top_n(
            self.services.update(reading.services, comparable),
            self.top,
            limit,
        );
        let other = |listed_rest: Counter| {
            let (pps, bps) = if comparable {
                rates(listed_rest, period_s)
            } else {
                (0.0, 0.0)
            };
            Other { pps, bps }
        };
        Talkers {
            talkers_other: other(rest(&sources, limit)),
            services_other: other(rest(&services, limit)),
            talkers: sources
                .iter()
                .map(|m| {
                    let (pps, bps) = rates(m.delta, period_s);
                    Talker {
                        source: m.key.ip(),
                        packets: m.total.packets,
                        bytes: m.total.bytes,
                        pps,
                        bps,
                    }
                })
                .collect(),
            services: services
                .iter()
                .map(|m| {
                    let (pps, bps) = rates(m.delta, period_s);
                    Service {
                        protocol: protocol_name(m.key.protocol),
                        port: m.key.port,
                        packets: m.total.packets,
                        bytes: m.total.bytes,
                        pps,
                        bps,
                    }
                })
                .collect(),
            talkers_table: table,
        }
    }
}

/// IANA keyword of an IP protocol number (lower case), or the number.
pub fn protocol_name(protocol: u8) -> String {
    match protocol {
        1 => "icmp",
        2 => "igmp",
        6 => "tcp",
        17 => "udp",
        33 => "dccp",
        41 => "ipv6",
        47 => "gre",
        50 => "esp",
        58 => "icmpv6",
        89 => "ospf",
        103 => "pim",
        112 => "vrrp",
        132 => "sctp",
        136 => "udplite",
        _ => return protocol.to_string(),
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn c(packets: u64, bytes: u64) -> Counter {
        Counter { packets, bytes }
    }

    fn v4(last: u8) -> TalkerKey {
        TalkerKey::from(IpAddr::from([198, 18, 0, last]))
    }

    fn at(last: u8, slot: u32) -> SourceAt {
        SourceAt {
            key: v4(last),
            slot: Some(slot),
        }
    }

    fn reading(epoch: u64, sources: &[(u8, u64)]) -> TalkerReading {
        TalkerReading {
            epoch,
            sources: sources
                .iter()
                .map(|&(a, p)| (at(a, u32::from(a)), c(p, p * 100)))
                .collect(),
            services: vec![(
                ServiceKey {
                    port: 53,
                    protocol: 17,
                    pad: 0,
                },
                c(sources.iter().map(|s| s.1).sum(), 0),
            )],
            table: Table {
                entries: sources.len(),
                capacity: 16,
                ..Table::default()
            },
        }
    }

    #[test]
    fn deltas_count_new_and_restarted_entries_anew() {
        assert_eq!(entry_delta(Some(&c(10, 100)), &c(15, 150)), c(5, 50));
        assert_eq!(entry_delta(None, &c(15, 150)), c(15, 150));
        // Evicted, then back with fewer packets: a new entry, not -7.
        assert_eq!(entry_delta(Some(&c(10, 100)), &c(3, 30)), c(3, 30));
        assert_eq!(entry_delta(Some(&c(10, 100)), &c(11, 50)), c(11, 50));
    }

    #[test]
    fn ranked_by_period_packets_then_total_then_key() {
        let m = |k: u8, total: u64, delta: u64| Moved {
            key: k,
            total: c(total, total),
            delta: c(delta, delta),
        };
        let all = vec![
            m(1, 10, 5),
            m(2, 50, 5),
            m(3, 100, 1),
            m(4, 7, 9),
            m(5, 50, 5),
        ];
        let keys: Vec<u8> = top_n(all.clone(), 3, c(100, 100))
            .iter()
            .map(|m| m.key)
            .collect();
        assert_eq!(keys, [4, 2, 5]);
        let keys: Vec<u8> = top_n(all, 10, c(100, 100)).iter().map(|m| m.key).collect();
        assert_eq!(keys, [4, 2, 5, 1, 3]);
    }

    #[test]
    fn idle_talkers_rank_by_their_totals() {
        let mut t = TalkerTracker::new(10);
        let sends = [(1, 5000), (2, 4000), (3, 3000), (4, 2000), (5, 1000)];
        t.update(reading(1, &sends), None, 0.0);
        let got = t.update(reading(1, &sends), Some(c(0, 0)), 1.0);
        let order: Vec<(String, u64)> = got
            .talkers
            .iter()
            .map(|t| (t.source.to_string(), t.packets))
            .collect();
        assert_eq!(
            order,
            [
                ("198.18.0.1".to_owned(), 5000),
                ("198.18.0.2".to_owned(), 4000),
                ("198.18.0.3".to_owned(), 3000),
                ("198.18.0.4".to_owned(), 2000),
                ("198.18.0.5".to_owned(), 1000),
            ]
        );
        assert!(got.talkers.iter().all(|t| t.pps == 0.0));
    }

    #[test]
    fn listed_plus_other_is_the_interface() {
        let mut t = TalkerTracker::new(2);
        t.update(reading(1, &[(1, 0), (2, 0), (3, 0)]), None, 0.0);
        // 60 + 30 + 10 from the sources, 5 more from frames that have none (ARP).
        let got = t.update(
            reading(1, &[(1, 60), (2, 30), (3, 10)]),
            Some(c(105, 10_500)),
            2.0,
        );
        let pps: Vec<f64> = got.talkers.iter().map(|t| t.pps).collect();
        assert_eq!(pps, [30.0, 15.0]);
        assert_eq!(got.talkers_other.pps, 7.5, "10 + 5 packets in 2 s");
        assert_eq!(got.talkers[0].bps, 60.0 * 100.0 * 8.0 / 2.0);
        assert_eq!(got.services[0].pps, 50.0);
        assert_eq!(got.services_other.pps, 2.5);
        assert_eq!(got.services[0].protocol, "udp");
        assert_eq!(
            got.talkers_table,
            Table {
                entries: 3,
                capacity: 16,
                ..Table::default()
            }
        );
    }

    #[test]
    fn a_new_table_is_a_new_baseline() {
        let mut t = TalkerTracker::new(5);
        t.update(reading(1, &[(1, 100)]), None, 0.0);
        let got = t.update(reading(2, &[(1, 500)]), Some(c(10, 1000)), 1.0);
        assert_eq!(got.talkers[0].pps, 0.0, "another map id: no rate");
        assert_eq!(got.talkers_other.pps, 0.0);
        let got = t.update(reading(2, &[(1, 510)]), Some(c(10, 1000)), 1.0);
        assert_eq!(got.talkers[0].pps, 10.0);
    }

    #[test]
    fn the_places_of_one_source_add_up_and_each_has_its_own_delta() {
        let mut t = TalkerTracker::new(5);
        let lru = SourceAt {
            key: v4(1),
            slot: None,
        };
        let with = |places: &[(SourceAt, u64)]| TalkerReading {
            epoch: 1,
            sources: places.iter().map(|&(k, p)| (k, c(p, p))).collect(),
            ..TalkerReading::default()
        };
        t.update(
            with(&[(at(1, 3), 100), (lru, 40), (at(2, 9), 10)]),
            None,
            0.0,
        );
        // Slot 3 is freed (idle), a new one (7) takes the source's packets.
        let got = t.update(
            with(&[(at(1, 7), 25), (lru, 45), (at(2, 9), 20)]),
            Some(c(40, 40)),
            1.0,
        );
        let lines: Vec<(String, u64, f64)> = got
            .talkers
            .iter()
            .map(|t| (t.source.to_string(), t.packets, t.pps))
            .collect();
        assert_eq!(
            lines,
            [
                ("198.18.0.1".to_owned(), 70, 30.0),
                ("198.18.0.2".to_owned(), 20, 10.0)
            ],
            "25 new in slot 7 and 5 in the LRU: not 70 - 140"
        );
    }

    #[test]
    fn names_of_protocols() {
        assert_eq!(protocol_name(6), "tcp");
        assert_eq!(protocol_name(58), "icmpv6");
        assert_eq!(protocol_name(253), "253");
    }

    proptest! {
        /// Under any churn (entries appearing, vanishing, coming back with
        /// any counts), no rate is negative or NaN, no talker and no sum of
        /// talkers exceeds the interface, and listed + other = interface.
        #[test]
        fn consistent_under_churn(
            steps in proptest::collection::vec(
                (proptest::collection::vec((0u8..40, 0u64..1000), 0..30), 0u64..20_000, 1u64..3),
                1..20,
            ),
            top in 0usize..8,
        ) {
            let mut t = TalkerTracker::new(top);
            let mut first = true;
            for (sources, iface_packets, epoch) in steps {
                let mut uniq: HashMap<u8, u64> = HashMap::new();
                for (a, p) in sources {
                    uniq.insert(a, p);
                }
                let sources: Vec<(u8, u64)> = uniq.into_iter().collect();
                let iface = c(iface_packets, iface_packets * 100);
                let got = t.update(reading(epoch, &sources), (!first).then_some(iface), 1.0);
                first = false;
                prop_assert!(got.talkers.len() <= top);
                let mut sum = 0.0;
                for x in &got.talkers {
                    prop_assert!(x.pps >= 0.0 && x.pps.is_finite());
                    prop_assert!(x.pps <= iface_packets as f64);
                    sum += x.pps;
                }
                prop_assert!(sum <= iface_packets as f64 + 1e-6);
                prop_assert!(got.talkers_other.pps >= 0.0);
                if got.talkers_other.pps > 0.0 || sum > 0.0 {
                    prop_assert!((sum + got.talkers_other.pps - iface_packets as f64).abs() < 1e-6);
                }
                for w in got.talkers.windows(2) {
                    prop_assert!(w[0].pps >= w[1].pps);
                }
            }
        }
    }
}
