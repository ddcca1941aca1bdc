//! The talkers view's own state, kept by the dashboard: how the listed
//! sources and services are sorted, which source is selected, and a short
//! packets/s history of each listed source for its sparkline. Pure: fed the
//! samples' talkers, no I/O.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
};

use crate::talkers::{Service, Talker, Talkers};

/// Points of packets/s history kept per source: enough for a wide
/// sparkline, and bounded (at most `--talkers` sources are kept).
pub const TALKER_HISTORY: usize = 240;

/// What the talkers view sorts its lists by. The sampler picks the N
/// heaviest by packets/s; the view orders those N.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortBy {
    #[default]
    Pps,
    /// Bits (or bytes) per second.
    Rate,
    /// Cumulative packets since the kernel first saw the entry.
    Packets,
}

impl SortBy {
    /// The next order, as `s` cycles them.
    pub fn next(self) -> Self {
        match self {
            SortBy::Pps => SortBy::Rate,
            SortBy::Rate => SortBy::Packets,
            SortBy::Packets => SortBy::Pps,
        }
    }

    pub fn label(self, unit: crate::format::RateUnit) -> &'static str {
        match self {
            SortBy::Pps => "pps",
            SortBy::Rate => unit.heading(),
            SortBy::Packets => "packets",
        }
    }
}

/// The fields an order looks at, for sources and services alike.
fn key(pps: f64, bps: f64, packets: u64, by: SortBy) -> (f64, f64) {
    match by {
        SortBy::Pps => (pps, packets as f64),
        SortBy::Rate => (bps, pps),
        SortBy::Packets => (packets as f64, pps),
    }
}

fn descending(a: (f64, f64), b: (f64, f64)) -> std::cmp::Ordering {
    b.0.total_cmp(&a.0).then(b.1.total_cmp(&a.1))
}

/// The sources in view order (heaviest first; ties keep the sampler's order).
pub fn sorted_sources(talkers: &Talkers, by: SortBy) -> Vec<&Talker> {
    let mut v: Vec<&Talker> = talkers.talkers.iter().collect();
    v.sort_by(|a, b| {
        descending(
            key(a.pps, a.bps, a.packets, by),
            key(b.pps, b.bps, b.packets, by),
        )
    });
    v
}

/// The services in view order.
pub fn sorted_services(talkers: &Talkers, by: SortBy) -> Vec<&Service> {
    let mut v: Vec<&Service> = talkers.services.iter().collect();
    v.sort_by(|a, b| {
        descending(
            key(a.pps, a.bps, a.packets, by),
            key(b.pps, b.bps, b.packets, by),
        )
    });
    v
}

/// The selected source's row in `sources`: the selected address where it
/// is listed, else the first row.
pub fn selected_index(sources: &[&Talker], selected: Option<IpAddr>) -> Option<usize> {
    if sources.is_empty() {
        return None;
    }
    Some(
        selected
            .and_then(|a| sources.iter().position(|t| t.source == a))
            .unwrap_or(0),
    )
}

/// The address `step` rows from the selected one (clamped to the list).
pub fn step(sources: &[&Talker], selected: Option<IpAddr>, step: isize) -> Option<IpAddr> {
    let at = selected_index(sources, selected)?;
    let to = at.saturating_add_signed(step).min(sources.len() - 1);
    Some(sources[to].source)
}

/// Packets/s history of each listed source, oldest first.
#[derive(Clone, Debug, Default)]
pub struct TalkerHistory {
    by_source: HashMap<IpAddr, VecDeque<f64>>,
}

impl TalkerHistory {
    /// Takes in a sample's talkers: one point per listed source; a source
    /// no longer listed loses its history (it may come back, from zero).
    pub fn update(&mut self, talkers: &Talkers) {
        self.by_source
            .retain(|a, _| talkers.talkers.iter().any(|t| t.source == *a));
        for t in &talkers.talkers {
            let h = self.by_source.entry(t.source).or_default();
            if h.len() == TALKER_HISTORY {
                h.pop_front();
            }
            h.push_back(if t.pps.is_finite() {
                t.pps.max(0.0)
            } else {
                0.0
            });
        }
    }

    pub fn clear(&mut self) {
        self.by_source.clear();
    }

    pub fn get(&self, source: &IpAddr) -> Option<&VecDeque<f64>> {
        self.by_source.get(source)
    }

    /// Sources with a history.
    pub fn len(&self) -> usize {
        self.by_source.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_source.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::RateUnit;

    fn talker(last: u8, pps: f64, bps: f64, packets: u64) -> Talker {
        Talker {
            source: IpAddr::from([198, 18, 0, last]),
            packets,
            bytes: packets * 100,
            pps,
            bps,
        }
    }

    fn talkers(list: Vec<Talker>) -> Talkers {
        Talkers {
            talkers: list,
            ..Talkers::default()
        }
    }

    fn order(t: &Talkers, by: SortBy) -> Vec<u8> {
        sorted_sources(t, by)
            .iter()
            .map(|t| match t.source {
                IpAddr::V4(a) => a.octets()[3],
                IpAddr::V6(_) => 0,
            })
            .collect()
    }

    #[test]
    fn sorts_by_pps_rate_or_packets_and_cycles() {
        let t = talkers(vec![
            talker(1, 300.0, 100.0, 10),
            talker(2, 200.0, 900.0, 5),
            talker(3, 100.0, 500.0, 1000),
        ]);
        assert_eq!(order(&t, SortBy::Pps), [1, 2, 3]);
        assert_eq!(order(&t, SortBy::Rate), [2, 3, 1]);
        assert_eq!(order(&t, SortBy::Packets), [3, 1, 2]);
        assert_eq!(SortBy::Pps.next().next().next(), SortBy::Pps);
        assert_eq!(SortBy::Rate.label(RateUnit::Bytes), "B/s");
        // Ties: packets break a pps tie.
        let t = talkers(vec![talker(1, 10.0, 0.0, 5), talker(2, 10.0, 0.0, 50)]);
        assert_eq!(order(&t, SortBy::Pps), [2, 1]);
    }

    #[test]
    fn selection_follows_the_address_and_falls_back_to_the_top() {
        let t = talkers(vec![
            talker(1, 300.0, 0.0, 0),
            talker(2, 200.0, 0.0, 0),
            talker(3, 100.0, 0.0, 0),
        ]);
        let list = sorted_sources(&t, SortBy::Pps);
        let a = |n: u8| IpAddr::from([198, 18, 0, n]);
        assert_eq!(selected_index(&list, None), Some(0));
        assert_eq!(step(&list, None, 1), Some(a(2)));
        assert_eq!(step(&list, Some(a(2)), 1), Some(a(3)));
        assert_eq!(step(&list, Some(a(3)), 1), Some(a(3)), "stays at the end");
        assert_eq!(step(&list, Some(a(1)), -1), Some(a(1)), "stays at the top");
        // Re-sorted, the selection stays on the same address.
        let list = sorted_sources(&t, SortBy::Packets);
        assert_eq!(
            list[selected_index(&list, Some(a(3))).expect("listed")].source,
            a(3)
        );
        // Gone from the list: the top row.
        assert_eq!(selected_index(&list, Some(a(9))), Some(0));
        assert_eq!(selected_index(&[], Some(a(1))), None);
        assert_eq!(step(&[], Some(a(1)), 1), None);
    }

    #[test]
    fn history_is_bounded_and_pruned_when_a_source_leaves() {
        let mut h = TalkerHistory::default();
        for i in 0..(TALKER_HISTORY + 50) {
            h.update(&talkers(vec![
                talker(1, i as f64, 0.0, 0),
                talker(2, 1.0, 0.0, 0),
            ]));
        }
        let one = h.get(&IpAddr::from([198, 18, 0, 1])).expect("listed");
        assert_eq!(one.len(), TALKER_HISTORY);
        assert_eq!(one.back(), Some(&((TALKER_HISTORY + 49) as f64)));
        assert_eq!(h.len(), 2);
        // Source 2 leaves the list: its history goes; 3 starts fresh.
        h.update(&talkers(vec![
            talker(1, 5.0, 0.0, 0),
            talker(3, f64::NAN, 0.0, 0),
        ]));
        assert_eq!(h.len(), 2);
        assert!(h.get(&IpAddr::from([198, 18, 0, 2])).is_none());
        let three = h.get(&IpAddr::from([198, 18, 0, 3])).expect("new");
        assert_eq!(three.iter().copied().collect::<Vec<_>>(), [0.0]);
        h.update(&Talkers::default());
        assert!(h.is_empty());
    }
}
