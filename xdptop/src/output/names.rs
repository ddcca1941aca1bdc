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
/// Data point attribute: native, skb or read-only.
pub const ATTR_MODE: &str = "xdp.mode";
/// Prometheus labels: the attribute names with `.` turned into `_`.
pub const LABEL_INTERFACE: &str = "network_interface_name";
pub const LABEL_MODE: &str = "xdp_mode";
/// Prometheus label for the resource's `host.name`.
pub const LABEL_HOST: &str = "host_name";

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
