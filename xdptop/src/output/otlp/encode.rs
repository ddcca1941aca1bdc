//! Samples and events to OTLP protobuf requests. Pure; no I/O.
//!
//! Timestamps: a data point's `time_unix_nano` is its Sample's
//! `time_unix_nano` (the wall-clock instant the sampler read the map), so the
//! collector, `--json` and the screen name the same instant. For the
//! cumulative sums, `start_time_unix_nano` is the time of the first sample
//! xdptop took of that interface, moved to a sample's own time when the
//! counters restart (re-baselined, or went backwards), which tells the
//! backend that the series was reset. Gauges carry no start time.

use std::sync::Arc;

use opentelemetry_proto::tonic::{
    collector::{metrics::v1::ExportMetricsServiceRequest, trace::v1::ExportTraceServiceRequest},
    common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value},
    metrics::v1::{
        AggregationTemporality, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
        metric, number_data_point,
    },
    resource::v1::Resource,
    trace::v1::{ResourceSpans, ScopeSpans, Span, span::SpanKind},
};

use crate::output::names::{self, AttrValue, Kind, TalkerValues, Value, Values};
use crate::sample::{Mode, Sample};

/// One Sample as queued for export: the numbers only, about 190 bytes
/// (`point_stays_small` checks), plus, with `--talkers-export N`, the top N
/// sources and services on the heap.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Point {
    pub time_unix_nano: u64,
    pub start_time_unix_nano: u64,
    pub interface: Arc<str>,
    pub mode: Mode,
    pub values: Values,
    pub talkers: Option<Arc<TalkerValues>>,
}

impl Point {
    /// `s` with its `talkers` top (0: none) sources and services.
    pub fn new(s: &Sample, talkers: usize) -> Self {
        Self {
            time_unix_nano: s.time_unix_nano,
            start_time_unix_nano: s.start_time_unix_nano,
            interface: Arc::clone(&s.interface),
            mode: s.mode,
            values: Values::of(s),
            talkers: TalkerValues::of(s, talkers).map(Arc::new),
        }
    }

    /// Data points this point puts in a request.
    pub fn data_points(&self) -> usize {
        names::METRICS.len()
            + self
                .values
                .actions
                .map_or(0, |a| a.len() * names::ACTION_METRICS.len())
            + usize::from(self.values.run_ns_per_packet.is_some())
            + self.talkers.as_ref().map_or(0, |t| t.data_points())
    }
}

/// An operator event, exported as a zero-length span.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Event {
    pub name: String,
    pub interface: Option<Arc<str>>,
    pub time_unix_nano: u64,
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn kv_str(key: &str, value: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.to_owned()))
}

fn kv_attr(key: &str, value: &AttrValue) -> KeyValue {
    match value {
        AttrValue::Str(s) => kv_str(key, s),
        AttrValue::Int(i) => kv(key, any_value::Value::IntValue(*i)),
    }
}

pub(crate) fn resource(attrs: &[(String, String)]) -> Resource {
    Resource {
        attributes: attrs.iter().map(|(k, v)| kv_str(k, v)).collect(),
        ..Default::default()
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: names::SCOPE.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        ..Default::default()
    }
}

/// Counters beyond i64 (never in practice) saturate rather than wrap.
fn number(v: Value) -> number_data_point::Value {
    match v {
        Value::Int(v) => number_data_point::Value::AsInt(i64::try_from(v).unwrap_or(i64::MAX)),
        Value::Double(v) => number_data_point::Value::AsDouble(v),
    }
}

/// One request holding every point, five metrics each with a data point per
/// queued Sample (a backlog after an outage keeps each sample's own time).
pub(crate) fn metrics_request(
    resource: &Resource,
    points: &[Point],
) -> ExportMetricsServiceRequest {
    let attrs = |p: &Point| {
        vec![
            kv_str(names::ATTR_INTERFACE, &p.interface),
            kv_str(names::ATTR_MODE, p.mode.as_str()),
        ]
    };
    let dp = |p: &Point, start: u64, value| NumberDataPoint {
        attributes: attrs(p),
        start_time_unix_nano: start,
        time_unix_nano: p.time_unix_nano,
        value: Some(value),
        ..Default::default()
    };
    let metric = |m: &names::Metric| {
        let data = match m.kind {
            Kind::Counter => metric::Data::Sum(Sum {
                data_points: points
                    .iter()
                    .map(|p| dp(p, p.start_time_unix_nano, number(p.values.get(m.id))))
                    .collect(),
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            }),
            Kind::Gauge => metric::Data::Gauge(Gauge {
                data_points: points
                    .iter()
                    .map(|p| dp(p, 0, number(p.values.get(m.id))))
                    .collect(),
            }),
        };
        Metric {
            name: m.otel.to_owned(),
            unit: m.unit.to_owned(),
            description: m.description.to_owned(),
            data: Some(data),
            ..Default::default()
        }
    };
    let mut metrics: Vec<Metric> = names::METRICS.iter().map(metric).collect();
    // Per verdict, for the points that carry verdicts: one data point per
    // point and verdict, told apart by `xdp.action`.
    if points.iter().any(|p| p.values.actions.is_some()) {
        for m in &names::ACTION_METRICS {
            let data_points = points
                .iter()
                .filter_map(|p| Some((p, p.values.actions.as_ref()?)))
                .flat_map(|(p, totals)| {
                    totals.iter().enumerate().map(move |(i, c)| {
                        let mut point =
                            dp(p, p.start_time_unix_nano, number(Value::Int(m.id.of(c))));
                        point
                            .attributes
                            .push(kv_str(names::ATTR_ACTION, xdp_ebpf::action::NAMES[i]));
                        point
                    })
                })
                .collect();
            metrics.push(Metric {
                name: m.otel.to_owned(),
                unit: m.unit.to_owned(),
                description: m.description.to_owned(),
                data: Some(metric::Data::Sum(Sum {
                    data_points,
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                    is_monotonic: true,
                })),
                ..Default::default()
            });
        }
    }
    // The run time, where known.
    let run: Vec<NumberDataPoint> = points
        .iter()
        .filter_map(|p| {
            let ns = p.values.run_ns_per_packet?;
            Some(dp(p, 0, number(Value::Double(ns))))
        })
        .collect();
    if !run.is_empty() {
        let m = &names::RUN_TIME;
        metrics.push(Metric {
            name: m.otel.to_owned(),
            unit: m.unit.to_owned(),
            description: m.description.to_owned(),
            data: Some(metric::Data::Gauge(Gauge { data_points: run })),
            ..Default::default()
        });
    }
    // With --talkers-export: one data point per listed source or service.
    for m in &names::TALKER_METRICS {
        let data_points: Vec<NumberDataPoint> = points
            .iter()
            .filter_map(|p| Some((p, p.talkers.as_ref()?)))
            .flat_map(|(p, t)| {
                t.entries(m.listing).iter().map(move |e| {
                    let mut point = dp(p, 0, number(Value::Double(m.value(e))));
                    point
                        .attributes
                        .extend(e.attrs.iter().map(|(k, v)| kv_attr(k, v)));
                    point
                })
            })
            .collect();
        if !data_points.is_empty() {
            metrics.push(Metric {
                name: m.otel.to_owned(),
                unit: m.unit.to_owned(),
                description: m.description.to_owned(),
                data: Some(metric::Data::Gauge(Gauge { data_points })),
                ..Default::default()
            });
        }
    }
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource.clone()),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(scope()),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

pub(crate) fn trace_request(resource: &Resource, events: &[Event]) -> ExportTraceServiceRequest {
    let spans = events
        .iter()
        .map(|e| Span {
            trace_id: e.trace_id.to_vec(),
            span_id: e.span_id.to_vec(),
            name: e.name.clone(),
            kind: SpanKind::Internal as i32,
            start_time_unix_nano: e.time_unix_nano,
            end_time_unix_nano: e.time_unix_nano,
            attributes: e
                .interface
                .iter()
                .map(|i| kv_str(names::ATTR_INTERFACE, i))
                .collect(),
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource.clone()),
            scope_spans: vec![ScopeSpans {
                scope: Some(scope()),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(iface: &str, t: u64, packets: u64) -> Point {
        Point {
            time_unix_nano: t,
            start_time_unix_nano: 7,
            interface: Arc::from(iface),
            mode: Mode::Skb,
            values: Values {
                packets,
                bytes: packets * 100,
                pps: 1.5,
                bps: 1200.0,
                attached: true,
                actions: None,
                run_ns_per_packet: None,
            },
            talkers: None,
        }
    }

    #[test]
    fn every_point_in_every_metric_with_its_own_time() {
        let req = metrics_request(
            &resource(&[("service.name".into(), "xdptop".into())]),
            &[point("a", 10, 1), point("b", 10, 2), point("a", 20, 3)],
        );
        let metrics = &req.resource_metrics[0].scope_metrics[0].metrics;
        let names: Vec<_> = metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                names::PACKETS,
                names::BYTES,
                names::PACKET_RATE,
                names::BIT_RATE,
                names::ATTACHED
            ]
        );
        let Some(metric::Data::Sum(sum)) = &metrics[0].data else {
            panic!("packets is a sum")
        };
        assert!(sum.is_monotonic);
        assert_eq!(
            sum.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );
        let got: Vec<_> = sum
            .data_points
            .iter()
            .map(|d| (d.time_unix_nano, d.start_time_unix_nano, d.value))
            .collect();
        assert_eq!(
            got,
            [
                (10, 7, Some(number(Value::Int(1)))),
                (10, 7, Some(number(Value::Int(2)))),
                (20, 7, Some(number(Value::Int(3))))
            ]
        );
        let Some(metric::Data::Gauge(g)) = &metrics[3].data else {
            panic!("bit rate is a gauge")
        };
        assert_eq!(
            g.data_points[1].value,
            Some(number_data_point::Value::AsDouble(1200.0))
        );
        assert_eq!(g.data_points[1].attributes[0].key, names::ATTR_INTERFACE);
    }

    #[test]
    fn verdicts_are_one_data_point_per_verdict_where_observed() {
        let mut observed = point("fw0", 10, 15);
        let mut totals = crate::sample::ActionTotals::default();
        totals[xdp_ebpf::action::PASS] = crate::sample::Counts {
            packets: 10,
            bytes: 1_000,
        };
        totals[xdp_ebpf::action::DROP] = crate::sample::Counts {
            packets: 5,
            bytes: 2_500,
        };
        observed.values.actions = Some(totals);
        let req = metrics_request(&resource(&[]), &[point("a", 10, 1), observed]);
        let metrics = &req.resource_metrics[0].scope_metrics[0].metrics;
        assert_eq!(metrics.len(), names::METRICS.len() + 2);
        let Some(metric::Data::Sum(bytes)) = &metrics[names::METRICS.len() + 1].data else {
            panic!("action bytes is a sum")
        };
        assert_eq!(metrics[names::METRICS.len() + 1].name, names::ACTION_BYTES);
        let got: Vec<(String, String, Option<number_data_point::Value>)> = bytes
            .data_points
            .iter()
            .map(|d| {
                let attr = |k: &str| {
                    d.attributes
                        .iter()
                        .find(|a| a.key == k)
                        .and_then(|a| a.value.clone()?.value)
                        .map(|v| match v {
                            any_value::Value::StringValue(s) => s,
                            other => format!("{other:?}"),
                        })
                        .unwrap_or_default()
                };
                (
                    attr(names::ATTR_INTERFACE),
                    attr(names::ATTR_ACTION),
                    d.value,
                )
            })
            .collect();
        let want: Vec<(String, String, Option<number_data_point::Value>)> = xdp_ebpf::action::NAMES
            .iter()
            .zip([0, 2_500, 1_000, 0, 0])
            .map(|(n, b)| ("fw0".into(), (*n).into(), Some(number(Value::Int(b)))))
            .collect();
        assert_eq!(got, want, "only the observed interface, every verdict");
        // Without verdicts anywhere, the request is as before.
        let plain = metrics_request(&resource(&[]), &[point("a", 10, 1)]);
        assert_eq!(
            plain.resource_metrics[0].scope_metrics[0].metrics.len(),
            names::METRICS.len()
        );
    }

    fn attr_of(d: &NumberDataPoint, k: &str) -> Option<any_value::Value> {
        d.attributes
            .iter()
            .find(|a| a.key == k)
            .and_then(|a| a.value.clone()?.value)
    }

    fn str_of(s: &str) -> Option<any_value::Value> {
        Some(any_value::Value::StringValue(s.to_owned()))
    }

    #[test]
    fn the_run_time_is_a_gauge_only_where_known() {
        let mut known = point("fw0", 10, 15);
        known.values.run_ns_per_packet = Some(41.25);
        let req = metrics_request(&resource(&[]), &[point("a", 10, 1), known]);
        let metrics = &req.resource_metrics[0].scope_metrics[0].metrics;
        assert_eq!(metrics.len(), names::METRICS.len() + 1);
        let m = &metrics[names::METRICS.len()];
        assert_eq!(
            (m.name.as_str(), m.unit.as_str()),
            ("xdp.program.run_time_per_packet", "ns")
        );
        let Some(metric::Data::Gauge(g)) = &m.data else {
            panic!("the run time is a gauge")
        };
        assert_eq!(g.data_points.len(), 1, "only the sample that knows it");
        let d = &g.data_points[0];
        assert_eq!(d.value, Some(number_data_point::Value::AsDouble(41.25)));
        assert_eq!(d.time_unix_nano, 10);
        assert_eq!(attr_of(d, names::ATTR_INTERFACE), str_of("fw0"));
    }

    /// A sample of the real sampler with talkers: three sources and two
    /// services, heaviest first.
    fn sample_with_talkers() -> Sample {
        use crate::talkers::{Other, Service, Table, Talker, Talkers};
        let mut s = crate::sampler::Sampler::new(vec![Box::new(crate::sampler::FakeSource {
            name: "veth-t".into(),
            mode: Mode::Native,
            readings: [Ok(crate::sample::Reading {
                packets: 60,
                bytes: 6000,
                epoch: 1,
                ..Default::default()
            })]
            .into_iter()
            .collect(),
        })])
        .sample(10, 0)
        .samples
        .remove(0);
        let talker = |ip: &str, pps: f64| Talker {
            source: ip.parse().expect("ip"),
            packets: pps as u64,
            bytes: pps as u64 * 100,
            pps,
            bps: pps * 800.0,
        };
        let service = |protocol: &str, port, pps: f64| Service {
            protocol: protocol.into(),
            port,
            packets: pps as u64,
            bytes: pps as u64 * 100,
            pps,
            bps: pps * 800.0,
        };
        s.talkers = Some(Talkers {
            talkers: vec![
                talker("198.18.0.10", 30.0),
                talker("2001:2::10", 20.0),
                talker("198.18.0.12", 10.0),
            ],
            talkers_other: Other::default(),
            services: vec![service("udp", 53, 40.0), service("icmp", 0, 20.0)],
            services_other: Other::default(),
            talkers_table: Table::default(),
        });
        s
    }

    #[test]
    fn talkers_are_gauges_per_source_and_service_top_n_only() {
        let s = sample_with_talkers();
        // Without --talkers-export, nothing of them.
        let plain = metrics_request(&resource(&[]), &[Point::new(&s, 0)]);
        assert_eq!(
            plain.resource_metrics[0].scope_metrics[0].metrics.len(),
            names::METRICS.len()
        );
        let p = Point::new(&s, 2);
        assert_eq!(p.data_points(), names::METRICS.len() + 2 * (2 + 2));
        let req = metrics_request(&resource(&[]), &[p]);
        let metrics = &req.resource_metrics[0].scope_metrics[0].metrics;
        let talkers: Vec<&Metric> = metrics[names::METRICS.len()..].iter().collect();
        let got: Vec<(&str, &str)> = talkers
            .iter()
            .map(|m| (m.name.as_str(), m.unit.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("xdp.talker.packet.rate", "{packet}/s"),
                ("xdp.talker.bit.rate", "bit/s"),
                ("xdp.service.packet.rate", "{packet}/s"),
                ("xdp.service.bit.rate", "bit/s"),
            ]
        );
        let points = |i: usize| {
            let Some(metric::Data::Gauge(g)) = &talkers[i].data else {
                panic!("talker metrics are gauges")
            };
            g.data_points.clone()
        };
        let sources: Vec<_> = points(0)
            .iter()
            .map(|d| {
                assert_eq!(attr_of(d, names::ATTR_INTERFACE), str_of("veth-t"));
                assert_eq!(attr_of(d, names::ATTR_MODE), str_of("native"));
                assert_eq!(d.start_time_unix_nano, 0, "a gauge");
                (attr_of(d, names::ATTR_SOURCE), d.value)
            })
            .collect();
        assert_eq!(
            sources,
            [
                (str_of("198.18.0.10"), Some(number(Value::Double(30.0)))),
                (str_of("2001:2::10"), Some(number(Value::Double(20.0)))),
            ],
            "the top 2 of 3, heaviest first"
        );
        let bits: Vec<_> = points(1).iter().map(|d| d.value).collect();
        assert_eq!(
            bits,
            [
                Some(number(Value::Double(24_000.0))),
                Some(number(Value::Double(16_000.0)))
            ]
        );
        let services: Vec<_> = points(2)
            .iter()
            .map(|d| {
                (
                    attr_of(d, names::ATTR_TRANSPORT),
                    attr_of(d, names::ATTR_PORT),
                    d.value,
                )
            })
            .collect();
        assert_eq!(
            services,
            [
                (
                    str_of("udp"),
                    Some(any_value::Value::IntValue(53)),
                    Some(number(Value::Double(40.0)))
                ),
                (
                    str_of("icmp"),
                    Some(any_value::Value::IntValue(0)),
                    Some(number(Value::Double(20.0)))
                ),
            ]
        );
    }

    #[test]
    fn point_stays_small() {
        // 4096 of them are held while the collector is away.
        assert!(size_of::<Point>() <= 200, "{}", size_of::<Point>());
    }

    #[test]
    fn huge_counters_saturate() {
        assert_eq!(
            number(Value::Int(u64::MAX)),
            number_data_point::Value::AsInt(i64::MAX)
        );
    }
}
