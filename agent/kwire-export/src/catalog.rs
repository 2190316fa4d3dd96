//! Every name kwire exports to OpenTelemetry, in one place: the metrics (one enum, house rule 9), the
//! attributes of alert log records and exchange spans, and the resource attributes. Dashboards and the
//! tests that check them read this catalog; the exporter uses the same constants, so a name cannot be
//! exported without being listed here.
//!
//! Easy to get wrong: OpenTelemetry names are dotted (`kwire.alerts`); a Prometheus backend sees them
//! translated by the collector (`kwire_alerts_total`: dots to underscores, a unit suffix, `_total` on
//! monotonic sums, `_bucket`/`_sum`/`_count` on histograms). `prometheus_name` applies those rules, and
//! dashboards query the translated names. Attribute values are bounded: no per-record or per-request
//! value ever becomes a metric attribute (client ids and pods go on spans and logs only).
//!
//! `messaging.operation.name` is `send` (Produce), `receive` (Fetch), `commit` (OffsetCommit,
//! TxnOffsetCommit) or the Kafka API name for every other request; `kwire.api` is always the API name.

use opentelemetry_semantic_conventions::attribute as semconv;

/// How a metric is aggregated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instrument {
    /// Monotonic cumulative sum.
    Counter,
    /// Last value.
    Gauge,
    /// Explicit-bucket histogram (filled from an HdrHistogram).
    Histogram,
}

/// One exported metric.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    pub name: &'static str,
    pub instrument: Instrument,
    /// UCUM unit (`s`, `By`, `{alert}`).
    pub unit: &'static str,
    pub description: &'static str,
    /// Attribute keys its data points may carry (bounded values only).
    pub attributes: &'static [&'static str],
}

pub const MESSAGING_SYSTEM: &str = semconv::MESSAGING_SYSTEM;
pub const OPERATION_NAME: &str = semconv::MESSAGING_OPERATION_NAME;
pub const OPERATION_TYPE: &str = semconv::MESSAGING_OPERATION_TYPE;
pub const DESTINATION: &str = semconv::MESSAGING_DESTINATION_NAME;
pub const PARTITION: &str = semconv::MESSAGING_DESTINATION_PARTITION_ID;
pub const CONSUMER_GROUP: &str = semconv::MESSAGING_CONSUMER_GROUP_NAME;
pub const CLIENT_ID: &str = semconv::MESSAGING_CLIENT_ID;
pub const KAFKA_OFFSET: &str = semconv::MESSAGING_KAFKA_OFFSET;
pub const BATCH_COUNT: &str = semconv::MESSAGING_BATCH_MESSAGE_COUNT;
pub const SERVER_ADDRESS: &str = semconv::SERVER_ADDRESS;
pub const SERVER_PORT: &str = semconv::SERVER_PORT;
pub const CLIENT_ADDRESS: &str = semconv::CLIENT_ADDRESS;
pub const CLIENT_PORT: &str = semconv::CLIENT_PORT;
pub const ERROR_TYPE: &str = semconv::ERROR_TYPE;
/// Not (yet) in the semantic conventions crate: the Kafka cluster id from Metadata responses.
pub const CLUSTER_ID: &str = "messaging.kafka.cluster.id";

/// The Kafka API of an exchange (`Produce`, `Fetch`, `OffsetCommit`, ...): bounded, one per API key.
pub const KAFKA_API: &str = "kwire.api";
pub const ALERT_KIND: &str = "kwire.alert.kind";
pub const ALERT_SEVERITY: &str = "kwire.alert.severity";
pub const SIGNAL: &str = "kwire.signal";
pub const DROP_REASON: &str = "kwire.drop.reason";

/// The metrics, one variant each; `def()` gives the name and shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    OperationDuration,
    Alerts,
    ConsumerLag,
    CommittedOffset,
    HighWatermark,
    SentMessages,
    ConsumedMessages,
    ProducedBytes,
    FetchedBytes,
    Packets,
    Bytes,
    CaptureDrops,
    TcpGaps,
    KafkaDesyncs,
    KafkaOrphans,
    FlowsTracked,
    FlowsEvicted,
    ExportQueueDepth,
    ExportDropped,
    ExportSpooled,
}

/// Upper bounds (seconds) of the operation-duration histogram buckets: from 100 µs (loopback) to 30 s
/// (long-polling Fetch with a large max wait).
pub const DURATION_BOUNDS_S: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75,
    1.0, 2.5, 5.0, 7.5, 10.0, 30.0,
];

const TP: &[&str] = &[DESTINATION, PARTITION];
const GROUP_TP: &[&str] = &[CONSUMER_GROUP, DESTINATION, PARTITION];
const TOPIC: &[&str] = &[MESSAGING_SYSTEM, DESTINATION];

impl Metric {
    pub const ALL: [Metric; 20] = [
        Metric::OperationDuration,
        Metric::Alerts,
        Metric::ConsumerLag,
        Metric::CommittedOffset,
        Metric::HighWatermark,
        Metric::SentMessages,
        Metric::ConsumedMessages,
        Metric::ProducedBytes,
        Metric::FetchedBytes,
        Metric::Packets,
        Metric::Bytes,
        Metric::CaptureDrops,
        Metric::TcpGaps,
        Metric::KafkaDesyncs,
        Metric::KafkaOrphans,
        Metric::FlowsTracked,
        Metric::FlowsEvicted,
        Metric::ExportQueueDepth,
        Metric::ExportDropped,
        Metric::ExportSpooled,
    ];

    pub const fn def(self) -> MetricDef {
        use Instrument::*;
        let (name, instrument, unit, description, attributes): (_, _, _, _, &'static [&'static str]) =
            match self {
                Metric::OperationDuration => (
                    "messaging.client.operation.duration",
                    Histogram,
                    "s",
                    "Time from a Kafka request to its response on the wire, per API (kwire.api) and broker.",
                    &[
                        MESSAGING_SYSTEM,
                        OPERATION_NAME,
                        KAFKA_API,
                        SERVER_ADDRESS,
                        SERVER_PORT,
                        ERROR_TYPE,
                    ],
                ),
                Metric::Alerts => (
                    "kwire.alerts",
                    Counter,
                    "{alert}",
                    "Data-loss alerts raised, by kind and severity.",
                    &[ALERT_KIND, ALERT_SEVERITY],
                ),
                Metric::ConsumerLag => (
                    "kwire.consumer.lag",
                    Gauge,
                    "{message}",
                    "High watermark minus the group's committed offset, per group and partition.",
                    GROUP_TP,
                ),
                Metric::CommittedOffset => (
                    "kwire.consumer.committed_offset",
                    Gauge,
                    "{offset}",
                    "Latest offset a group committed (accepted by the broker), per partition.",
                    GROUP_TP,
                ),
                Metric::HighWatermark => (
                    "kwire.partition.high_watermark",
                    Gauge,
                    "{offset}",
                    "Latest high watermark a broker told a consumer, per partition.",
                    TP,
                ),
                Metric::SentMessages => (
                    "messaging.client.sent.messages",
                    Counter,
                    "{message}",
                    "Records produced (from record batch headers), per topic.",
                    TOPIC,
                ),
                Metric::ConsumedMessages => (
                    "messaging.client.consumed.messages",
                    Counter,
                    "{message}",
                    "Records fetched (from record batch headers), per topic.",
                    TOPIC,
                ),
                Metric::ProducedBytes => (
                    "kwire.produced.bytes",
                    Counter,
                    "By",
                    "Record batch bytes produced, per topic.",
                    TOPIC,
                ),
                Metric::FetchedBytes => (
                    "kwire.fetched.bytes",
                    Counter,
                    "By",
                    "Record batch bytes fetched, per topic.",
                    TOPIC,
                ),
                Metric::Packets => (
                    "kwire.packets",
                    Counter,
                    "{packet}",
                    "Packets the agent decoded.",
                    &[],
                ),
                Metric::Bytes => (
                    "kwire.captured.bytes",
                    Counter,
                    "By",
                    "Bytes of the packets the agent decoded.",
                    &[],
                ),
                Metric::CaptureDrops => (
                    "kwire.capture.drops",
                    Counter,
                    "{packet}",
                    "Packets lost before decoding: kernel, interface, ring buffer.",
                    &[DROP_REASON],
                ),
                Metric::TcpGaps => (
                    "kwire.tcp.gaps",
                    Counter,
                    "{gap}",
                    "Holes in reassembled TCP streams (lost or uncaptured segments).",
                    &[],
                ),
                Metric::KafkaDesyncs => (
                    "kwire.kafka.desyncs",
                    Counter,
                    "{desync}",
                    "Times Kafka framing was lost on a stream and scanned for again.",
                    &[],
                ),
                Metric::KafkaOrphans => (
                    "kwire.kafka.orphans",
                    Counter,
                    "{response}",
                    "Responses whose request was not captured.",
                    &[],
                ),
                Metric::FlowsTracked => (
                    "kwire.flows.tracked",
                    Gauge,
                    "{flow}",
                    "TCP connections tracked now.",
                    &[],
                ),
                Metric::FlowsEvicted => (
                    "kwire.flows.evicted",
                    Counter,
                    "{flow}",
                    "Connections dropped from the full flow table (table_full) or never tracked (refused).",
                    &[DROP_REASON],
                ),
                Metric::ExportQueueDepth => (
                    "kwire.export.queue.depth",
                    Gauge,
                    "{item}",
                    "Items waiting in the export queue, per signal.",
                    &[SIGNAL],
                ),
                Metric::ExportDropped => (
                    "kwire.export.dropped",
                    Counter,
                    "{item}",
                    "Items not delivered, per signal and reason (queue_full, spool_full, rejected, send_failed).",
                    &[SIGNAL, DROP_REASON],
                ),
                Metric::ExportSpooled => (
                    "kwire.export.spool.alerts",
                    Gauge,
                    "{alert}",
                    "Alerts waiting in the on-disk spool for the backend to come back.",
                    &[],
                ),
            };
        MetricDef {
            name,
            instrument,
            unit,
            description,
            attributes,
        }
    }
}

/// The name a Prometheus backend sees for a metric, as the collector's Prometheus exporters translate it
/// (`prometheus` / `prometheusremotewrite` with default settings): dots to underscores, the unit's word
/// appended unless the name already ends with it (units in braces are dropped), `_total` on counters.
/// Histograms add `_bucket`, `_sum` and `_count` to this base name.
pub fn prometheus_name(def: &MetricDef) -> String {
    let mut n = def.name.replace('.', "_");
    let unit = match def.unit {
        "s" => "seconds",
        "By" => "bytes",
        "ms" => "milliseconds",
        _ => "",
    };
    if !unit.is_empty() && !n.ends_with(&format!("_{unit}")) {
        n.push('_');
        n.push_str(unit);
    }
    if def.instrument == Instrument::Counter && !n.ends_with("_total") {
        n.push_str("_total");
    }
    n
}

/// The Prometheus label for an attribute key (dots to underscores).
pub fn prometheus_label(key: &str) -> String {
    key.replace('.', "_")
}

/// Attributes of every alert log record (plus `kwire.alert.<field>` for each of the kind's own fields).
pub const ALERT_LOG_ATTRIBUTES: &[&str] = &[
    ALERT_KIND,
    ALERT_SEVERITY,
    MESSAGING_SYSTEM,
    CLIENT_ID,
    DESTINATION,
    PARTITION,
    CONSUMER_GROUP,
    SERVER_ADDRESS,
    SERVER_PORT,
    CLIENT_ADDRESS,
    CLIENT_PORT,
];

/// Prefix of an alert's own fields on its log record (`kwire.alert.previous_offset`, ...).
pub const ALERT_FIELD_PREFIX: &str = "kwire.alert.";

/// Attributes an exchange span may carry.
pub const SPAN_ATTRIBUTES: &[&str] = &[
    MESSAGING_SYSTEM,
    OPERATION_NAME,
    OPERATION_TYPE,
    KAFKA_API,
    DESTINATION,
    PARTITION,
    KAFKA_OFFSET,
    CONSUMER_GROUP,
    CLIENT_ID,
    CLUSTER_ID,
    BATCH_COUNT,
    SERVER_ADDRESS,
    SERVER_PORT,
    CLIENT_ADDRESS,
    CLIENT_PORT,
    ERROR_TYPE,
    "kwire.api_version",
    "kwire.correlation_id",
    "kwire.request.bytes",
    "kwire.response.bytes",
    "kwire.no_response",
    // The client's and broker's socket owners when a live eBPF source attributed them.
    "kwire.client.pod",
    "kwire.client.namespace",
    "kwire.client.container",
    "kwire.client.pod_uid",
    "kwire.client.cgroup",
    "kwire.client.cgroup_id",
    "kwire.client.pid",
    "kwire.client.comm",
    "kwire.broker.pod",
    "kwire.broker.namespace",
    "kwire.broker.container",
    "kwire.broker.pod_uid",
    "kwire.broker.cgroup",
    "kwire.broker.cgroup_id",
    "kwire.broker.pid",
    "kwire.broker.comm",
];

/// Resource attributes of everything kwire exports (the agent itself).
pub const RESOURCE_ATTRIBUTES: &[&str] = &[
    "service.name",
    "service.version",
    "service.instance.id",
    "host.name",
    "k8s.node.name",
    "k8s.pod.name",
    "k8s.namespace.name",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_names() {
        let name = |m: Metric| prometheus_name(&m.def());
        assert_eq!(
            name(Metric::OperationDuration),
            "messaging_client_operation_duration_seconds"
        );
        assert_eq!(name(Metric::Alerts), "kwire_alerts_total");
        assert_eq!(name(Metric::ProducedBytes), "kwire_produced_bytes_total");
        assert_eq!(name(Metric::ConsumerLag), "kwire_consumer_lag");
        assert_eq!(name(Metric::FlowsTracked), "kwire_flows_tracked");
        assert_eq!(
            name(Metric::SentMessages),
            "messaging_client_sent_messages_total"
        );
    }

    #[test]
    fn names_unique_and_bounded_attributes() {
        let mut names: Vec<&str> = Metric::ALL.iter().map(|m| m.def().name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Metric::ALL.len());
        for m in Metric::ALL {
            for a in m.def().attributes {
                assert_ne!(*a, CLIENT_ID, "{m:?}: client ids are unbounded");
            }
        }
    }

    #[test]
    fn semconv_names() {
        assert_eq!(DESTINATION, "messaging.destination.name");
        assert_eq!(PARTITION, "messaging.destination.partition.id");
        assert_eq!(CONSUMER_GROUP, "messaging.consumer.group.name");
        assert_eq!(KAFKA_OFFSET, "messaging.kafka.offset");
        assert_eq!(OPERATION_TYPE, "messaging.operation.type");
    }
}
