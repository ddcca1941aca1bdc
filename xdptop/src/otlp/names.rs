//! Every name xdptop puts on the wire, in one place.
//!
//! | OTel metric | type | unit | Prometheus (collector `namespace: xdp`) |
//! |---|---|---|---|
//! | [`PACKETS`] `xdp.packets` | cumulative monotonic sum (int) | `{packet}` | `xdp_xdp_packets_total` |
//! | [`BYTES`] `xdp.bytes` | cumulative monotonic sum (int) | `By` | `xdp_xdp_bytes_total` |
//! | [`PACKET_RATE`] `xdp.packet.rate` | gauge (double) | `{packet}/s` | `xdp_xdp_packet_rate_per_second` |
//! | [`BIT_RATE`] `xdp.bit.rate` | gauge (double) | `bit/s` | `xdp_xdp_bit_rate_bit_per_second` |
//! | [`ATTACHED`] `xdp.attached` | gauge (int, 0 or 1) | `1` | `xdp_xdp_attached_ratio` |
//!
//! The Prometheus names are what the collector's translator makes with its
//! default `add_metric_suffixes: true`: `{...}` annotation units vanish, `/s`
//! becomes `_per_second`, a gauge of unit `1` gets `_ratio`, monotonic sums
//! get `_total`, and `By` adds `_bytes` only when the name does not already
//! end in it. So `xdp.packets` and `xdp.bytes` become `xdp_xdp_packets_total`
//! and `xdp_xdp_bytes_total`, the series the user's Grafana already queries.
//! Rate and attached names depend on the collector's unit table more than the
//! counters do; check them against the compose stack before building
//! dashboards on them.
//!
//! Every data point carries [`ATTR_INTERFACE`] and [`ATTR_MODE`]; Prometheus
//! shows them as `network_interface_name` and `xdp_mode`.

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

pub const UNIT_PACKETS: &str = "{packet}";
pub const UNIT_BYTES: &str = "By";
pub const UNIT_PACKET_RATE: &str = "{packet}/s";
pub const UNIT_BIT_RATE: &str = "bit/s";
pub const UNIT_ATTACHED: &str = "1";

/// Data point attribute: the interface name (OTel semantic convention).
pub const ATTR_INTERFACE: &str = "network.interface.name";
/// Data point attribute: native, skb or read-only.
pub const ATTR_MODE: &str = "xdp.mode";

/// Instrumentation scope of everything xdptop exports.
pub const SCOPE: &str = "xdptop";
/// Default `service.name`; `OTEL_SERVICE_NAME` overrides it.
pub const SERVICE_NAME: &str = "xdptop";
