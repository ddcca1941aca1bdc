//! Every name xdptop puts on the wire, in one place: [`METRICS`] is the one
//! table of metric names, units, descriptions and Prometheus series that the
//! OTLP encoder, the `/metrics` endpoint and the README tests read.
//!
//! The Prometheus names are what the collector's translator makes with its
//! default `add_metric_suffixes: true` (and `namespace: xdp`): `{...}`
//! annotation units vanish, `/s` becomes `_per_second`, a gauge of unit `1`
//! gets `_ratio`, monotonic sums get `_total`, and a unit already spelled in
//! the name is not repeated (`By` adds nothing to `xdp.bytes`, `bit` nothing
//! to `xdp.bit.rate`). So `xdp.packets` and `xdp.bytes` become
//! `xdp_xdp_packets_total` and `xdp_xdp_bytes_total`, the series the user's
//! Grafana already queries. `compose/README.md` has the mapping in full.
//!
//! Every data point carries [`ATTR_INTERFACE`] and [`ATTR_MODE`]; Prometheus
//! shows them as [`LABEL_INTERFACE`] and [`LABEL_MODE`].

use crate::sample::{ActionTotals, Counts, Health, Sample};

/// Cumulative packets counted by the XDP program (the kernel counter).
pub const PACKETS: &str = "xdp.packets";
/// Cumulative bytes counted by the XDP program (the kernel counter).
pub const BYTES: &str = "xdp.bytes";
/// Packets per second over the last sampling period, as shown on screen.
pub const PACKET_RATE: &str = "xdp.packet.rate";
/// Bits per second over the last sampling period, as shown on screen.
pub const BIT_RATE: &str = "xdp.bit.rate";
/// 1 while the interface's counters are readable, 0 when lost.
pub const ATTACHED: &str = "xdp.attached";

/// The observed XDP program's mean run time per packet over the period
/// (`run_ns_per_packet`), from the kernel's BPF statistics; a gauge, sent
/// only for samples where it is known.
pub const RUN_TIME_PER_PACKET: &str = "xdp.program.run_time_per_packet";

/// Which number of a sample a metric carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Id {
    Packets,
    Bytes,
    PacketRate,
    BitRate,
    Attached,
}

/// How a metric is exported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A cumulative monotonic sum (OTLP) / counter (Prometheus).
    Counter,
    Gauge,
}

/// One exported metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metric {
    pub id: Id,
    /// OTel metric name.
    pub otel: &'static str,
    /// UCUM unit, as OTLP carries it.
    pub unit: &'static str,
    pub kind: Kind,
    /// The Prometheus series the collector (and `--prometheus`) make of it.
    pub prometheus: &'static str,
    /// OTLP description and Prometheus `# HELP`.
    pub description: &'static str,
}

/// Every metric, in the order requests and `/metrics` list them.
pub const METRICS: [Metric; 5] = [
    Metric {
        id: Id::Packets,
        otel: PACKETS,
        unit: "{packet}",
        kind: Kind::Counter,
        prometheus: "xdp_xdp_packets_total",
        description: "Packets counted by XDP on the interface (cumulative kernel counter).",
    },
    Metric {
        id: Id::Bytes,
        otel: BYTES,
        unit: "By",
        kind: Kind::Counter,
        prometheus: "xdp_xdp_bytes_total",
        description: "Bytes counted by XDP on the interface (cumulative kernel counter).",
    },
    Metric {
        id: Id::PacketRate,
        otel: PACKET_RATE,
        unit: "{packet}/s",
        kind: Kind::Gauge,
        prometheus: "xdp_xdp_packet_rate_per_second",
        description: "Packets per second over the last sample period, as xdptop shows it.",
    },
    Metric {
        id: Id::BitRate,
        otel: BIT_RATE,
        unit: "bit/s",
        kind: Kind::Gauge,
        prometheus: "xdp_xdp_bit_rate_per_second",
        description: "Bits per second over the last sample period, as xdptop shows it.",
    },
    Metric {
        id: Id::Attached,
        otel: ATTACHED,
        unit: "1",
        kind: Kind::Gauge,
        prometheus: "xdp_xdp_attached_ratio",
        description: "1 while the interface's XDP counters are readable, 0 once they are lost.",
    },
];

/// Cumulative packets by the verdict of the interface's XDP program (xdptop's
/// fexit observer), one data point per verdict with [`ATTR_ACTION`].
pub const ACTION_PACKETS: &str = "xdp.action.packets";
/// Cumulative bytes by verdict, as [`ACTION_PACKETS`].
pub const ACTION_BYTES: &str = "xdp.action.bytes";

/// Which per-verdict number a metric carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionId {
    Packets,
    Bytes,
}

/// A per-verdict metric: a cumulative sum with one data point per verdict,
/// exported only for interfaces whose samples carry verdicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActionMetric {
    pub id: ActionId,
    pub otel: &'static str,
    pub unit: &'static str,
    pub prometheus: &'static str,
    pub description: &'static str,
}

/// The per-verdict metrics, after [`METRICS`] in requests and `/metrics`.
pub const ACTION_METRICS: [ActionMetric; 2] = [
    ActionMetric {
        id: ActionId::Packets,
        otel: ACTION_PACKETS,
        unit: "{packet}",
        prometheus: "xdp_xdp_action_packets_total",
        description: "Packets by the verdict of the interface's XDP program, counted by xdptop's \
                      fexit observer since it attached (cumulative).",
    },
    ActionMetric {
        id: ActionId::Bytes,
        otel: ACTION_BYTES,
        unit: "By",
        prometheus: "xdp_xdp_action_bytes_total",
        description: "Bytes by the verdict of the interface's XDP program, counted by xdptop's \
                      fexit observer since it attached (cumulative).",
    },
];

impl ActionId {
    /// The number of `c` this metric carries.
    pub fn of(self, c: &Counts) -> u64 {
        match self {
            ActionId::Packets => c.packets,
            ActionId::Bytes => c.bytes,
        }
    }
}

/// A gauge that not every sample carries (its data point is left out where
/// the sample has no value), described like a [`Metric`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionalGauge {
    pub otel: &'static str,
    pub unit: &'static str,
    pub prometheus: &'static str,
    pub description: &'static str,
}

/// The run-time gauge, after the per-verdict metrics in requests and
/// `/metrics`. The collector's translator spells the unit `ns` as
/// `_nanoseconds`.
pub const RUN_TIME: OptionalGauge = OptionalGauge {
    otel: RUN_TIME_PER_PACKET,
    unit: "ns",
    prometheus: "xdp_xdp_program_run_time_per_packet_nanoseconds",
    description: "Mean run time per packet of the interface's XDP program over the last sample \
                  period, from the kernel's BPF statistics (run_time_ns / run_cnt); absent \
                  when unknown.",
};

/// `--talkers-export N`: the packets/s of each of the N heaviest sources of
/// an interface, attribute [`ATTR_SOURCE`].
pub const TALKER_PACKET_RATE: &str = "xdp.talker.packet.rate";
/// Bits/s of each of the N heaviest sources.
pub const TALKER_BIT_RATE: &str = "xdp.talker.bit.rate";
/// Packets/s of each of the N heaviest services, attributes
/// [`ATTR_TRANSPORT`] and [`ATTR_PORT`].
pub const SERVICE_PACKET_RATE: &str = "xdp.service.packet.rate";
/// Bits/s of each of the N heaviest services.
pub const SERVICE_BIT_RATE: &str = "xdp.service.bit.rate";

/// Sources or services.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing {
    Sources,
    Services,
}

/// Which rate of a talker a metric carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rate {
    Packets,
    Bits,
}

/// A per-talker metric: a gauge with one data point per listed source (or
/// service) of a sample. Rates only, no cumulative sums: a talker's count
/// restarts from zero whenever the kernel's LRU table evicts it, at a
/// moment no sample sees, and a talker's series comes and goes as it
/// enters and leaves the top N, so a counter would show false resets (or
/// hide real ones) to Prometheus' `rate()`. The rates are the very numbers
/// the JSON `talkers`/`services` carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TalkerMetric {
    pub listing: Listing,
    pub rate: Rate,
    pub otel: &'static str,
    pub unit: &'static str,
    pub prometheus: &'static str,
    pub description: &'static str,
}

/// The per-talker metrics, after the run-time gauge, only with
/// `--talkers-export N`.
pub const TALKER_METRICS: [TalkerMetric; 4] = [
    TalkerMetric {
        listing: Listing::Sources,
        rate: Rate::Packets,
        otel: TALKER_PACKET_RATE,
        unit: "{packet}/s",
        prometheus: "xdp_xdp_talker_packet_rate_per_second",
        description: "Packets per second from one of the interface's N heaviest sources over the \
                      last sample period (--talkers-export N).",
    },
    TalkerMetric {
        listing: Listing::Sources,
        rate: Rate::Bits,
        otel: TALKER_BIT_RATE,
        unit: "bit/s",
        prometheus: "xdp_xdp_talker_bit_rate_per_second",
        description: "Bits per second from one of the interface's N heaviest sources over the \
                      last sample period (--talkers-export N).",
    },
    TalkerMetric {
        listing: Listing::Services,
        rate: Rate::Packets,
        otel: SERVICE_PACKET_RATE,
        unit: "{packet}/s",
        prometheus: "xdp_xdp_service_packet_rate_per_second",
        description: "Packets per second to one of the interface's N heaviest services \
                      (transport protocol and destination port) over the last sample period \
                      (--talkers-export N).",
    },
    TalkerMetric {
        listing: Listing::Services,
        rate: Rate::Bits,
        otel: SERVICE_BIT_RATE,
        unit: "bit/s",
        prometheus: "xdp_xdp_service_bit_rate_per_second",
        description: "Bits per second to one of the interface's N heaviest services over the \
                      last sample period (--talkers-export N).",
    },
];

/// An attribute value of a talker's data point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttrValue {
    Str(String),
    Int(i64),
}

impl std::fmt::Display for AttrValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttrValue::Str(s) => f.write_str(s),
            AttrValue::Int(i) => write!(f, "{i}"),
        }
    }
}

/// One listed source or service: its attributes and rates.
#[derive(Clone, Debug, PartialEq)]
pub struct TalkerEntry {
    pub attrs: Vec<(&'static str, AttrValue)>,
    pub pps: f64,
    pub bps: f64,
}

/// The first `n` sources and services of a sample (heaviest first), as
/// both outputs keep them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TalkerValues {
    pub sources: Vec<TalkerEntry>,
    pub services: Vec<TalkerEntry>,
}

impl TalkerValues {
    /// The top `n` of `s`'s talkers; `None` without talkers or for `n` 0.
    pub fn of(s: &Sample, n: usize) -> Option<Self> {
        let t = s.talkers.as_ref().filter(|_| n > 0)?;
        Some(Self {
            sources: t
                .talkers
                .iter()
                .take(n)
                .map(|x| TalkerEntry {
                    attrs: vec![(ATTR_SOURCE, AttrValue::Str(x.source.to_string()))],
                    pps: x.pps,
                    bps: x.bps,
                })
                .collect(),
            services: t
                .services
                .iter()
                .take(n)
                .map(|x| TalkerEntry {
                    attrs: vec![
                        (ATTR_TRANSPORT, AttrValue::Str(x.protocol.clone())),
                        (ATTR_PORT, AttrValue::Int(i64::from(x.port))),
                    ],
                    pps: x.pps,
                    bps: x.bps,
                })
                .collect(),
        })
    }

    pub fn entries(&self, listing: Listing) -> &[TalkerEntry] {
        match listing {
            Listing::Sources => &self.sources,
            Listing::Services => &self.services,
        }
    }

    /// Data points this adds to a request (for batch sizing).
    pub fn data_points(&self) -> usize {
        2 * (self.sources.len() + self.services.len())
    }
}

impl TalkerMetric {
    pub fn value(&self, e: &TalkerEntry) -> f64 {
        match self.rate {
            Rate::Packets => e.pps,
            Rate::Bits => e.bps,
        }
    }
}

/// `(OTel name, Prometheus series, unit)` of every metric xdptop can
/// export, in order: the table the READMEs must show.
pub fn all_metrics() -> Vec<(&'static str, &'static str, &'static str)> {
    METRICS
        .iter()
        .map(|m| (m.otel, m.prometheus, m.unit))
        .chain(
            ACTION_METRICS
                .iter()
                .map(|m| (m.otel, m.prometheus, m.unit)),
        )
        .chain([(RUN_TIME.otel, RUN_TIME.prometheus, RUN_TIME.unit)])
        .chain(
            TALKER_METRICS
                .iter()
                .map(|m| (m.otel, m.prometheus, m.unit)),
        )
        .collect()
}

/// The table row of `id`.
pub fn metric(id: Id) -> &'static Metric {
    METRICS
        .iter()
        .find(|m| m.id == id)
        .expect("every Id has a row in METRICS")
}

/// A metric's value in one sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    Int(u64),
    Double(f64),
}

/// The numbers of one sample that the metrics carry, as both outputs keep
/// them (a queued OTLP point, the latest `/metrics` series).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Values {
    pub packets: u64,
    pub bytes: u64,
    pub pps: f64,
    pub bps: f64,
    /// The counters were readable (health ok).
    pub attached: bool,
    /// Cumulative packets and bytes per verdict, where observed.
    pub actions: Option<ActionTotals>,
    /// The program's run time per packet (ns), where known.
    pub run_ns_per_packet: Option<f64>,
}

impl Values {
    pub fn of(s: &Sample) -> Self {
        Self {
            packets: s.packets,
            bytes: s.bytes,
            pps: s.pps,
            bps: s.bps,
            attached: s.health == Health::Ok,
            actions: s.actions.map(|a| {
                let mut totals = ActionTotals::default();
                for (i, t) in totals.iter_mut().enumerate() {
                    if let Some(x) = a.get(i) {
                        *t = Counts {
                            packets: x.packets,
                            bytes: x.bytes,
                        };
                    }
                }
                totals
            }),
            run_ns_per_packet: s.run_ns_per_packet,
        }
    }

    /// What metric `id` says.
    pub fn get(&self, id: Id) -> Value {
        match id {
            Id::Packets => Value::Int(self.packets),
            Id::Bytes => Value::Int(self.bytes),
            Id::PacketRate => Value::Double(self.pps),
            Id::BitRate => Value::Double(self.bps),
            Id::Attached => Value::Int(u64::from(self.attached)),
        }
    }
}

/// Data point attribute: the interface name (OTel semantic convention).
pub const ATTR_INTERFACE: &str = "network.interface.name";
/// Data point attribute of the per-verdict metrics: `pass`, `drop`, `tx`,
/// `redirect` or `aborted` (`xdp_ebpf::action::NAMES`).
pub const ATTR_ACTION: &str = "xdp.action";
/// Its Prometheus label.
pub const LABEL_ACTION: &str = "xdp_action";
/// Data point attribute of the per-source metrics: the IPv4 or IPv6
/// address (OTel semantic convention `source.address`).
pub const ATTR_SOURCE: &str = "source.address";
/// Data point attributes of the per-service metrics: `tcp`, `udp`, `icmp`,
/// `icmpv6`, `sctp`, … or the protocol number (`network.transport`), and the
/// destination port, an integer (0 for protocols without ports).
pub const ATTR_TRANSPORT: &str = "network.transport";
pub const ATTR_PORT: &str = "destination.port";
/// Data point attribute: native, skb or read-only.
pub const ATTR_MODE: &str = "xdp.mode";
/// Prometheus labels: the attribute names with `.` turned into `_`.
pub const LABEL_INTERFACE: &str = "network_interface_name";
pub const LABEL_MODE: &str = "xdp_mode";
/// Prometheus label for the resource's `host.name`.
pub const LABEL_HOST: &str = "host_name";

/// The Prometheus label of a data point attribute: `.` turned into `_`, as
/// the collector's prometheus exporter does.
pub fn prometheus_label(attr: &str) -> String {
    attr.replace('.', "_")
}

/// Instrumentation scope of everything xdptop exports.
pub const SCOPE: &str = "xdptop";
/// Default `service.name`; `OTEL_SERVICE_NAME` overrides it.
pub const SERVICE_NAME: &str = "xdptop";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_the_attributes_with_underscores() {
        assert_eq!(ATTR_INTERFACE.replace('.', "_"), LABEL_INTERFACE);
        assert_eq!(ATTR_MODE.replace('.', "_"), LABEL_MODE);
        assert_eq!(ATTR_ACTION.replace('.', "_"), LABEL_ACTION);
        // The talker attributes are turned into labels by the exporter.
        assert_eq!(prometheus_label(ATTR_SOURCE), "source_address");
        assert_eq!(prometheus_label(ATTR_TRANSPORT), "network_transport");
        assert_eq!(prometheus_label(ATTR_PORT), "destination_port");
    }

    #[test]
    fn every_name_is_unique() {
        let all = all_metrics();
        let otel: std::collections::BTreeSet<_> = all.iter().map(|m| m.0).collect();
        let prom: std::collections::BTreeSet<_> = all.iter().map(|m| m.1).collect();
        assert_eq!((otel.len(), prom.len()), (all.len(), all.len()), "{all:?}");
        for (o, p, _) in all {
            // The collector's translation: namespace, dots to underscores.
            assert!(
                p.starts_with(&format!("xdp_{}", o.replace('.', "_"))),
                "{o} {p}"
            );
        }
    }

    #[test]
    fn every_id_has_one_row() {
        for id in [
            Id::Packets,
            Id::Bytes,
            Id::PacketRate,
            Id::BitRate,
            Id::Attached,
        ] {
            assert_eq!(METRICS.iter().filter(|m| m.id == id).count(), 1);
            assert_eq!(metric(id).id, id);
        }
    }
}
