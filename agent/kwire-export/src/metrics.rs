//! Metric state kept between exports and turned into one OTLP metrics request per export: operation
//! durations (explicit-bucket histograms per API and broker), alerts by kind and
//! severity, offsets and consumer lag per group and partition, records and bytes per topic, and the
//! agent's own health. Cumulative temporality throughout: a lost export loses nothing, the next one
//! carries the totals.
//!
//! Easy to get wrong:
//! - every table here is bounded (series per metric, `MAX_SERIES`); what does not fit is counted in
//!   `series_dropped` and the exporter logs it, never grows without limit;
//! - a duration histogram counts straight into the explicit buckets it is exported with (OTLP's rule:
//!   bucket i holds bounds[i-1] < v <= bounds[i], one more bucket than bounds, the last +Inf) and keeps
//!   its own exact sum, min and max. It used to be an HdrHistogram (1 µs..1 h at 3 significant digits),
//!   bucketed at export: 188 KB of counters per series, which made the `MAX_SERIES` bound ~1.9 GB and
//!   grew a live agent by ~12 MB for every new set of broker addresses; its edges were also approximate
//!   (µs truncation, 0.1%). Only the explicit buckets were ever exported, so ~200 bytes of counters say
//!   the same, exactly;
//! - consumer lag is high watermark − committed offset for the same partition; either can be unknown
//!   (no Fetch seen for that partition yet): then no lag point, rather than a made-up one;
//! - series are counted on every exchange (live, for `/metrics`, and for OTLP), so they are keyed by
//!   typed values (shared names, the broker's socket address, `&'static` API and error names) in hash
//!   maps; attribute strings are made only when a snapshot is taken, where the series are sorted by them
//!   (the order the points always had). Each typed key maps to one attribute list and back (API and
//!   error *names* are kept, not codes: two unknown codes share the name `UNKNOWN`), so the series are
//!   the same ones the strings would make. Formatting per exchange was 18% of a live agent's CPU.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, AggregationTemporality, Gauge, Histogram, HistogramDataPoint,
    Metric as OtlpMetric, NumberDataPoint, Sum,
};

use kwire_engine::facts::Operation;
use kwire_engine::model::Name;
use kwire_engine::{Alert, ExchangeRecord};
use kwire_flow::Endpoint;
use kwire_kafka::api;
use kwire_kafka::body::error_name;
use rustc_hash::FxHashMap;

use crate::catalog::{self as c, Instrument, Metric, Semconv};
use crate::convert::{convention, kv_int, kv_str};

/// Series kept per metric at most; more are counted and dropped.
pub const MAX_SERIES: usize = 10_000;

/// Attribute values of one series, in the catalog's attribute order (None = absent).
type Key = Vec<Option<String>>;

/// One duration series: counts per explicit bucket (bounds of its metric, plus +Inf), exact sum, min,
/// max.
struct DurationSeries {
    counts: Box<[u64]>,
    count: u64,
    sum_s: f64,
    min_s: f64,
    max_s: f64,
}

/// The agent's own counters, set before each export (they come from the engine and the source).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Health {
    pub packets: u64,
    pub bytes: u64,
    pub tcp_gaps: u64,
    pub desyncs: u64,
    pub orphans: u64,
    pub flows_tracked: u64,
    pub flows_evicted_full: u64,
    pub flows_refused: u64,
    pub kernel_drops: u64,
    pub interface_drops: u64,
    pub ring_drops: u64,
}

/// Export pipeline counters, set by the exporter before each export.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ExportHealth {
    /// Per signal: items queued now.
    pub queue_depth: BTreeMap<&'static str, u64>,
    /// Per (signal, reason): items not delivered.
    pub dropped: BTreeMap<(&'static str, &'static str), u64>,
    pub spooled_alerts: u64,
}

/// A duration series before its attributes are written out.
#[derive(Clone, PartialEq, Eq, Hash)]
struct DurKey {
    /// `messaging.client.operation.duration`: the operation's name and type; None for
    /// `kwire.request.duration` (not a messaging operation).
    operation: Option<(&'static str, Option<&'static str>)>,
    destination: Option<Name>,
    group: Option<Name>,
    broker: Endpoint,
    error: Option<&'static str>,
    api: &'static str,
}

/// A typed series key: its metric and, written out, its attribute values.
trait SeriesKey {
    fn metric(&self) -> Metric;
    fn key(&self) -> Key;
}

/// The series of metric `m` in `map` with their attribute values, in the order of those values (the
/// order of the points in a snapshot).
fn series<K: SeriesKey, V>(map: &FxHashMap<K, V>, m: Metric) -> Vec<(Key, &V)> {
    let mut v: Vec<(Key, &V)> = map
        .iter()
        .filter(|(k, _)| k.metric() == m)
        .map(|(k, s)| (k.key(), s))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// The explicit bucket bounds (seconds) of a duration metric.
fn duration_bounds(m: Metric) -> &'static [f64] {
    if m == Metric::OperationDuration {
        c::DURATION_BOUNDS_S
    } else {
        c::REQUEST_BOUNDS_S
    }
}

impl DurKey {
    /// The explicit bucket bounds of its metric (seconds).
    fn bounds(&self) -> &'static [f64] {
        duration_bounds(self.metric())
    }
}

impl SeriesKey for DurKey {
    fn metric(&self) -> Metric {
        match self.operation {
            Some(_) => Metric::OperationDuration,
            None => Metric::RequestDuration,
        }
    }

    fn key(&self) -> Key {
        let m = self.metric();
        let [address, port] = server(self.broker);
        let api = (c::KAFKA_API, Some(self.api.to_string()));
        let error = (c::ERROR_TYPE, self.error.map(String::from));
        match self.operation {
            Some((op, op_type)) => key_of(
                m,
                &[
                    (c::MESSAGING_SYSTEM, Some("kafka".into())),
                    (c::OPERATION_NAME, Some(op.into())),
                    (c::OPERATION_TYPE, op_type.map(String::from)),
                    (
                        c::DESTINATION,
                        self.destination.as_deref().map(String::from),
                    ),
                    (c::CONSUMER_GROUP, self.group.as_deref().map(String::from)),
                    address,
                    port,
                    error,
                    api,
                ],
            ),
            None => key_of(m, &[api, address, port, error]),
        }
    }
}

/// A counter series before its attributes are written out.
#[derive(Clone, PartialEq, Eq, Hash)]
enum CountKey {
    Sent {
        topic: Name,
        partition: i32,
        broker: Endpoint,
        error: Option<&'static str>,
    },
    Consumed {
        group: Option<Name>,
        topic: Name,
        partition: i32,
        broker: Endpoint,
    },
    /// `kwire.produced.bytes` or `kwire.fetched.bytes` of a topic.
    Bytes(Metric, Name),
    /// An alert's kind and severity.
    Alert(&'static str, &'static str),
}

impl SeriesKey for CountKey {
    fn metric(&self) -> Metric {
        match self {
            CountKey::Sent { .. } => Metric::SentMessages,
            CountKey::Consumed { .. } => Metric::ConsumedMessages,
            CountKey::Bytes(m, _) => *m,
            CountKey::Alert(..) => Metric::Alerts,
        }
    }

    fn key(&self) -> Key {
        match self {
            CountKey::Sent {
                topic,
                partition,
                broker,
                error,
            } => {
                let [address, port] = server(*broker);
                key_of(
                    Metric::SentMessages,
                    &[
                        (c::MESSAGING_SYSTEM, Some("kafka".into())),
                        (c::OPERATION_NAME, Some("send".into())),
                        (c::DESTINATION, Some(topic.to_string())),
                        (c::PARTITION, Some(partition.to_string())),
                        address,
                        port,
                        (c::ERROR_TYPE, error.map(String::from)),
                    ],
                )
            }
            CountKey::Consumed {
                group,
                topic,
                partition,
                broker,
            } => {
                let [address, port] = server(*broker);
                key_of(
                    Metric::ConsumedMessages,
                    &[
                        (c::MESSAGING_SYSTEM, Some("kafka".into())),
                        (c::OPERATION_NAME, Some("receive".into())),
                        (c::CONSUMER_GROUP, group.as_deref().map(String::from)),
                        (c::DESTINATION, Some(topic.to_string())),
                        (c::PARTITION, Some(partition.to_string())),
                        address,
                        port,
                    ],
                )
            }
            CountKey::Bytes(_, topic) => vec![Some("kafka".into()), Some(topic.to_string())],
            CountKey::Alert(kind, severity) => {
                vec![Some((*kind).to_string()), Some((*severity).to_string())]
            }
        }
    }
}

/// `server.address` and `server.port` of a broker, as series attributes.
fn server(broker: Endpoint) -> [(&'static str, Option<String>); 2] {
    [
        (c::SERVER_ADDRESS, Some(broker.ip.to_string())),
        (c::SERVER_PORT, Some(broker.port.to_string())),
    ]
}

/// The entries of a table keyed by names, in the order of the names (`Arc<str>` orders as `str`).
fn sorted<K: Ord, V>(map: &FxHashMap<K, V>) -> Vec<(&K, &V)> {
    let mut v: Vec<(&K, &V)> = map.iter().collect();
    v.sort_by(|a, b| a.0.cmp(b.0));
    v
}

#[derive(Default)]
pub struct MetricState {
    /// Which names renamed attributes go under.
    pub semconv: Semconv,
    /// `messaging.client.operation.duration` (Metric::OperationDuration) and `kwire.request.duration`.
    durations: FxHashMap<DurKey, DurationSeries>,
    counters: FxHashMap<CountKey, u64>,
    high_watermarks: FxHashMap<(Name, i32), i64>,
    committed: FxHashMap<(Name, Name, i32), i64>,
    pub health: Health,
    pub export: ExportHealth,
    /// Series not kept because a table was full.
    pub series_dropped: u64,
    /// First packet time seen (start of the cumulative series), ns.
    start_ns: Option<u64>,
}

fn attrs_of(m: Metric, key: &[Option<String>], mode: Semconv) -> Vec<KeyValue> {
    let mut out = Vec::with_capacity(key.len());
    for (k, v) in m.def().attributes.iter().zip(key) {
        let Some(v) = v else { continue };
        for name in mode.names(k) {
            out.push(if *k == c::SERVER_PORT {
                kv_int(name, v.parse().unwrap_or(0))
            } else {
                kv_str(name, v.clone())
            });
        }
    }
    out
}

/// A series key in the order of the metric's catalog attributes, from (attribute, value) pairs.
fn key_of(m: Metric, pairs: &[(&str, Option<String>)]) -> Key {
    m.def()
        .attributes
        .iter()
        .map(|a| {
            pairs
                .iter()
                .find(|(k, _)| k == a)
                .and_then(|(_, v)| v.clone())
        })
        .collect()
}

impl MetricState {
    pub fn new(semconv: Semconv) -> Self {
        MetricState {
            semconv,
            ..MetricState::default()
        }
    }

    fn count(&mut self, key: CountKey, n: u64) {
        if n == 0 {
            return;
        }
        if let Some(v) = self.counters.get_mut(&key) {
            *v += n;
        } else if self.counters.len() < MAX_SERIES * 4 {
            self.counters.insert(key, n);
        } else {
            self.series_dropped += 1;
        }
    }

    fn seen(&mut self, ts_ns: u64) {
        self.start_ns.get_or_insert(ts_ns);
    }

    pub fn on_exchange(&mut self, x: &ExchangeRecord) {
        let e = &x.exchange;
        self.seen(u64::try_from(e.request_ts.0).unwrap_or(0));
        let facts = x.facts.as_deref();
        let conv = convention(facts);
        let broker = x.conn.broker;
        if let Some(r) = &e.response {
            let latency_ns = r.ts.nanos_since(e.request_ts).max(0) as u64;
            let error = x.failure_codes().first().map(|&c| error_name(c));
            let api = api::api_name(e.api_key);
            let key = match conv.operation_name {
                Some(op) => DurKey {
                    operation: Some((op, conv.operation_type)),
                    destination: facts
                        .filter(|f| f.single_topic().is_some())
                        .and_then(|f| f.parts.first())
                        .map(|p| p.topic.clone()),
                    group: facts.and_then(|f| f.group.clone()),
                    broker,
                    error,
                    api,
                },
                None => DurKey {
                    operation: None,
                    destination: None,
                    group: None,
                    broker,
                    error,
                    api,
                },
            };
            let full = self.durations.len() >= MAX_SERIES;
            let bounds = key.bounds();
            match self.durations.get_mut(&key) {
                Some(s) => s.record_in(bounds, latency_ns),
                None if full => self.series_dropped += 1,
                None => {
                    let mut s = DurationSeries::new(bounds);
                    s.record_in(bounds, latency_ns);
                    self.durations.insert(key, s);
                }
            }
        }
        let Some(f) = facts else { return };
        for p in &f.parts {
            if let Some(hwm) = p.high_watermark {
                let k = (p.topic.clone(), p.partition);
                if self.high_watermarks.len() < MAX_SERIES || self.high_watermarks.contains_key(&k)
                {
                    self.high_watermarks.insert(k, hwm);
                } else {
                    self.series_dropped += 1;
                }
            }
        }
        match f.operation {
            Operation::Send => {
                for p in &f.parts {
                    let sent = CountKey::Sent {
                        topic: p.topic.clone(),
                        partition: p.partition,
                        broker,
                        error: (p.error != 0).then(|| error_name(p.error)),
                    };
                    self.count(sent, p.records);
                    self.count(
                        CountKey::Bytes(Metric::ProducedBytes, p.topic.clone()),
                        p.bytes,
                    );
                }
            }
            Operation::Receive if e.response.is_some() => {
                for p in f.parts.iter().filter(|p| p.error == 0) {
                    let consumed = CountKey::Consumed {
                        group: f.group.clone(),
                        topic: p.topic.clone(),
                        partition: p.partition,
                        broker,
                    };
                    self.count(consumed, p.records);
                    self.count(
                        CountKey::Bytes(Metric::FetchedBytes, p.topic.clone()),
                        p.bytes,
                    );
                }
            }
            Operation::Settle if e.response.is_some() => {
                let Some(g) = &f.group else { return };
                for p in f.parts.iter().filter(|p| p.error == 0) {
                    let Some(o) = p.offset else { continue };
                    let k = (g.clone(), p.topic.clone(), p.partition);
                    if self.committed.len() < MAX_SERIES || self.committed.contains_key(&k) {
                        self.committed.insert(k, o);
                    } else {
                        self.series_dropped += 1;
                    }
                }
            }
            _ => {}
        }
    }

    pub fn on_alert(&mut self, a: &Alert) {
        self.seen(u64::try_from(a.ts.0).unwrap_or(0));
        self.count(CountKey::Alert(a.kind.as_str(), a.severity.as_str()), 1);
    }

    /// Every metric as of `now_ns` (packet time for a replay, wall time live).
    pub fn snapshot(&self, now_ns: u64) -> Vec<OtlpMetric> {
        let start = self.start_ns.unwrap_or(now_ns).min(now_ns);
        let point = |attributes: Vec<KeyValue>, v: number_data_point::Value| NumberDataPoint {
            attributes,
            start_time_unix_nano: start,
            time_unix_nano: now_ns,
            value: Some(v),
            ..Default::default()
        };
        let mut out = Vec::new();
        for m in Metric::ALL {
            let def = m.def();
            let mut points: Vec<NumberDataPoint> = Vec::new();
            let int = |attributes, n: u64| {
                point(
                    attributes,
                    number_data_point::Value::AsInt(i64::try_from(n).unwrap_or(i64::MAX)),
                )
            };
            match m {
                Metric::OperationDuration | Metric::RequestDuration => {
                    let bounds = duration_bounds(m);
                    let hps: Vec<HistogramDataPoint> = series(&self.durations, m)
                        .into_iter()
                        .map(|(k, s)| s.point(attrs_of(m, &k, self.semconv), start, now_ns, bounds))
                        .collect();
                    if !hps.is_empty() {
                        out.push(metric(
                            m,
                            Data::Histogram(Histogram {
                                data_points: hps,
                                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                            }),
                        ));
                    }
                    continue;
                }
                Metric::Alerts
                | Metric::SentMessages
                | Metric::ConsumedMessages
                | Metric::ProducedBytes
                | Metric::FetchedBytes => {
                    for (k, n) in series(&self.counters, m) {
                        points.push(int(attrs_of(m, &k, self.semconv), *n));
                    }
                }
                Metric::HighWatermark => {
                    for ((t, p), v) in sorted(&self.high_watermarks) {
                        points.push(point(
                            vec![
                                kv_str(c::DESTINATION, t.to_string()),
                                kv_str(c::PARTITION, p.to_string()),
                            ],
                            number_data_point::Value::AsInt(*v),
                        ));
                    }
                }
                Metric::CommittedOffset | Metric::ConsumerLag => {
                    for ((g, t, p), o) in sorted(&self.committed) {
                        let v = if m == Metric::CommittedOffset {
                            *o
                        } else {
                            match self.high_watermarks.get(&(t.clone(), *p)) {
                                Some(h) => (h - o).max(0),
                                None => continue,
                            }
                        };
                        points.push(point(
                            vec![
                                kv_str(c::CONSUMER_GROUP, g.to_string()),
                                kv_str(c::DESTINATION, t.to_string()),
                                kv_str(c::PARTITION, p.to_string()),
                            ],
                            number_data_point::Value::AsInt(v),
                        ));
                    }
                }
                Metric::Packets => points.push(int(vec![], self.health.packets)),
                Metric::Bytes => points.push(int(vec![], self.health.bytes)),
                Metric::TcpGaps => points.push(int(vec![], self.health.tcp_gaps)),
                Metric::KafkaDesyncs => points.push(int(vec![], self.health.desyncs)),
                Metric::KafkaOrphans => points.push(int(vec![], self.health.orphans)),
                Metric::FlowsTracked => points.push(int(vec![], self.health.flows_tracked)),
                Metric::CaptureDrops => {
                    for (reason, n) in [
                        ("kernel", self.health.kernel_drops),
                        ("interface", self.health.interface_drops),
                        ("ring_buffer", self.health.ring_drops),
                    ] {
                        points.push(int(vec![kv_str(c::DROP_REASON, reason)], n));
                    }
                }
                Metric::FlowsEvicted => {
                    for (reason, n) in [
                        ("table_full", self.health.flows_evicted_full),
                        ("refused", self.health.flows_refused),
                    ] {
                        points.push(int(vec![kv_str(c::DROP_REASON, reason)], n));
                    }
                }
                Metric::ExportQueueDepth => {
                    for (signal, n) in &self.export.queue_depth {
                        points.push(int(vec![kv_str(c::SIGNAL, *signal)], *n));
                    }
                }
                Metric::ExportDropped => {
                    for ((signal, reason), n) in &self.export.dropped {
                        points.push(int(
                            vec![kv_str(c::SIGNAL, *signal), kv_str(c::DROP_REASON, *reason)],
                            *n,
                        ));
                    }
                }
                Metric::ExportSpooled => points.push(int(vec![], self.export.spooled_alerts)),
            }
            if points.is_empty() {
                continue;
            }
            let data = match def.instrument {
                Instrument::Counter => Data::Sum(Sum {
                    data_points: points,
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                    is_monotonic: true,
                }),
                Instrument::Gauge | Instrument::Histogram => Data::Gauge(Gauge {
                    data_points: points,
                }),
            };
            out.push(metric(m, data));
        }
        out
    }
}

fn metric(m: Metric, data: Data) -> OtlpMetric {
    let def = m.def();
    OtlpMetric {
        name: def.name.to_string(),
        description: def.description.to_string(),
        unit: def.unit.to_string(),
        data: Some(data),
        ..Default::default()
    }
}

/// The bucket of a duration of `ns` nanoseconds among `bounds` (seconds): the first bound it does not
/// exceed, or `bounds.len()` (+Inf). Bounds are compared in whole nanoseconds.
fn bucket_of(bounds: &[f64], ns: u64) -> usize {
    bounds.partition_point(|b| ((b * 1e9).round() as u64) < ns)
}

impl DurationSeries {
    fn new(bounds: &[f64]) -> DurationSeries {
        DurationSeries {
            counts: vec![0; bounds.len() + 1].into_boxed_slice(),
            count: 0,
            sum_s: 0.0,
            min_s: 0.0,
            max_s: 0.0,
        }
    }

    /// One duration. The series was made for `key.bounds()`, the bounds `point` exports it with.
    fn record_in(&mut self, bounds: &[f64], ns: u64) {
        if let Some(c) = self.counts.get_mut(bucket_of(bounds, ns)) {
            *c = c.saturating_add(1);
        }
        self.count = self.count.saturating_add(1);
        let s = ns as f64 / 1e9;
        if self.count == 1 {
            self.min_s = s;
            self.max_s = s;
        } else {
            self.min_s = self.min_s.min(s);
            self.max_s = self.max_s.max(s);
        }
        self.sum_s += s;
    }

    fn point(
        &self,
        attributes: Vec<KeyValue>,
        start: u64,
        now: u64,
        bounds: &[f64],
    ) -> HistogramDataPoint {
        HistogramDataPoint {
            attributes,
            start_time_unix_nano: start,
            time_unix_nano: now,
            count: self.count,
            sum: Some(self.sum_s),
            bucket_counts: self.counts.to_vec(),
            explicit_bounds: bounds.to_vec(),
            min: Some(self.min_s),
            max: Some(self.max_s),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A duration lands in the first bucket whose bound it does not exceed (OTLP's `(lower, upper]`),
    /// to the nanosecond; past the last bound, in +Inf; sum, min, max and count are exact.
    #[test]
    fn durations_count_into_their_explicit_buckets() {
        let bounds = c::REQUEST_BOUNDS_S; // 100 µs, 250 µs, ...
        assert_eq!(bucket_of(bounds, 0), 0);
        assert_eq!(bucket_of(bounds, 100_000), 0, "at the bound: below it");
        assert_eq!(bucket_of(bounds, 100_001), 1, "one ns past: the next");
        assert_eq!(bucket_of(bounds, 250_000), 1);
        assert_eq!(bucket_of(bounds, 30_000_000_000), bounds.len() - 1);
        assert_eq!(bucket_of(bounds, 30_000_000_001), bounds.len(), "+Inf");
        let mut s = DurationSeries::new(bounds);
        for ns in [100_000, 100_001, 99_000, 40_000_000_000] {
            s.record_in(bounds, ns);
        }
        let p = s.point(vec![], 1, 2, bounds);
        assert_eq!(p.count, 4);
        assert_eq!(p.bucket_counts.len(), bounds.len() + 1);
        assert_eq!(p.bucket_counts[0], 2);
        assert_eq!(p.bucket_counts[1], 1);
        assert_eq!(p.bucket_counts[bounds.len()], 1);
        assert_eq!(p.bucket_counts.iter().sum::<u64>(), 4);
        assert_eq!(p.min, Some(99_000e-9));
        assert_eq!(p.max, Some(40.0));
        assert!((p.sum.unwrap() - (0.0002 + 1e-9 + 0.000099 + 40.0)).abs() < 1e-12);
    }
}
