//! Every name kwire exports to OpenTelemetry, in one place: the metrics (one enum, house rule 9), the
//! attributes of alert log records and exchange spans, the resource attributes, and the conventions each
//! span and metric follows ([`SPAN_CONVENTIONS`], [`MetricDef::spec`]), each citing the section of the
//! OpenTelemetry semantic conventions it implements. Dashboards and the tests that check them (and the
//! test against a real collector) read this catalog; the exporter uses the same constants, so a name
//! cannot be exported without being listed here.
//!
//! The conventions followed are those of semantic conventions v1.45.0 ([`SCHEMA_URL`], set on every
//! resource and scope): messaging spans
//! (<https://opentelemetry.io/docs/specs/semconv/messaging/messaging-spans/>), messaging metrics
//! (<https://opentelemetry.io/docs/specs/semconv/messaging/messaging-metrics/>) and the Kafka page
//! (<https://opentelemetry.io/docs/specs/semconv/messaging/kafka/>). The names v1.45.0 renamed
//! ([`RENAMED`]) are available under their old names with [`Semconv::Legacy`] or under both with
//! [`Semconv::Dup`], the transition rules of those pages (`OTEL_SEMCONV_STABILITY_OPT_IN`).
//!
//! Easy to get wrong: OpenTelemetry names are dotted (`kwire.alerts`); a Prometheus backend sees them
//! translated by the collector (`kwire_alerts_total`: dots to underscores, a unit suffix, `_total` on
//! monotonic sums, `_bucket`/`_sum`/`_count` on histograms). `prometheus_name` applies those rules, and
//! dashboards query the translated names. Attribute values are bounded: no per-record or per-request
//! value ever becomes a metric attribute (client ids and pods go on spans and logs only).
//!
//! Only Produce, Fetch (a consumer's), OffsetCommit and TxnOffsetCommit are messaging operations
//! (`send`, `receive`, `commit`): they carry `messaging.*` operation attributes and are timed in
//! `messaging.client.operation.duration`. Cluster-management calls (ApiVersions, Metadata, JoinGroup,
//! Heartbeat, FindCoordinator, follower fetches, ...) are plain CLIENT spans named
//! `{kwire.api} {server.address}:{server.port}` without `messaging.system.name`/`messaging.operation.*`,
//! timed in `kwire.request.duration`. `kwire.api` is always the Kafka API name.

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_semantic_conventions::attribute as semconv;

/// The semantic conventions version kwire follows (by default): on every resource and scope.
pub const SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.45.0";
/// The version whose names [`Semconv::Legacy`] emits (the last before the v1.45.0 renames).
pub const LEGACY_SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.44.0";

/// Which attribute names to emit for the ones semantic conventions v1.45.0 renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Semconv {
    /// The current names (default).
    #[default]
    Current,
    /// The names kwire used before (v1.44.0 and earlier), for dashboards that depend on them.
    Legacy,
    /// Both, for a seamless transition (the spec's `messaging/dup`).
    Dup,
}

impl Semconv {
    /// From `OTEL_SEMCONV_STABILITY_OPT_IN` (a comma-separated list: `messaging/dup` wins over
    /// `messaging`, as the transition rules say), else kwire's own setting (`current`, `legacy`, `dup`;
    /// `KWIRE_OTLP_SEMCONV` or the config file's `semconv`), else [`Semconv::Current`].
    pub fn resolve(opt_in: Option<&str>, kwire: Option<&str>) -> Result<Semconv, String> {
        if let Some(list) = opt_in {
            let values: Vec<&str> = list.split(',').map(str::trim).collect();
            if values.contains(&"messaging/dup") {
                return Ok(Semconv::Dup);
            }
            if values.contains(&"messaging") {
                return Ok(Semconv::Current);
            }
        }
        match kwire.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("current") => Ok(Semconv::Current),
            Some("legacy") => Ok(Semconv::Legacy),
            Some("dup") => Ok(Semconv::Dup),
            Some(other) => Err(format!(
                "semantic conventions {other:?}: use current, legacy or dup"
            )),
        }
    }

    /// The names to emit for catalog attribute `key` (one, or two under `Dup`).
    pub fn names(self, key: &'static str) -> impl Iterator<Item = &'static str> {
        let old = RENAMED
            .iter()
            .find(|(new, _)| *new == key)
            .map(|(_, old)| *old);
        let (a, b) = match (self, old) {
            (_, None) | (Semconv::Current, _) => (Some(key), None),
            (Semconv::Legacy, Some(old)) => (Some(old), None),
            (Semconv::Dup, Some(old)) => (Some(key), Some(old)),
        };
        a.into_iter().chain(b)
    }

    pub fn schema_url(self) -> &'static str {
        match self {
            Semconv::Legacy => LEGACY_SCHEMA_URL,
            Semconv::Current | Semconv::Dup => SCHEMA_URL,
        }
    }
}

/// How a metric is aggregated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instrument {
    /// Monotonic cumulative sum.
    Counter,
    /// Last value.
    Gauge,
    /// Explicit-bucket histogram (counted straight into its buckets, `metrics::DurationSeries`).
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
    /// Attribute keys its data points may carry (bounded values only), current names.
    pub attributes: &'static [&'static str],
    /// Of those, the ones every data point carries.
    pub required: &'static [&'static str],
    /// The semantic-conventions section it follows (`kwire.*` metrics are kwire's own).
    pub spec: &'static str,
}

/// v1.45.0: renamed from `messaging.system` (the semantic conventions crate is at v1.42.0).
pub const MESSAGING_SYSTEM: &str = "messaging.system.name";
pub const OPERATION_NAME: &str = semconv::MESSAGING_OPERATION_NAME;
pub const OPERATION_TYPE: &str = semconv::MESSAGING_OPERATION_TYPE;
pub const DESTINATION: &str = semconv::MESSAGING_DESTINATION_NAME;
pub const PARTITION: &str = semconv::MESSAGING_DESTINATION_PARTITION_ID;
pub const CONSUMER_GROUP: &str = semconv::MESSAGING_CONSUMER_GROUP_NAME;
pub const CLIENT_ID: &str = semconv::MESSAGING_CLIENT_ID;
/// v1.45.0: renamed from `messaging.kafka.offset`. Only on spans of one record (Kafka page: "If span
/// describes operation on a single message"), and on a commit of one partition (the offset committed).
pub const KAFKA_OFFSET: &str = "kafka.offset";
pub const BATCH_COUNT: &str = semconv::MESSAGING_BATCH_MESSAGE_COUNT;
pub const SERVER_ADDRESS: &str = semconv::SERVER_ADDRESS;
pub const SERVER_PORT: &str = semconv::SERVER_PORT;
pub const CLIENT_ADDRESS: &str = semconv::CLIENT_ADDRESS;
pub const CLIENT_PORT: &str = semconv::CLIENT_PORT;
/// The broker's socket, from the client's side of the connection (spans are the client's view).
pub const PEER_ADDRESS: &str = semconv::NETWORK_PEER_ADDRESS;
pub const PEER_PORT: &str = semconv::NETWORK_PEER_PORT;
/// The client's socket on a span (kwire used `client.address`/`client.port` before: [`RENAMED`]).
pub const LOCAL_ADDRESS: &str = semconv::NETWORK_LOCAL_ADDRESS;
pub const LOCAL_PORT: &str = semconv::NETWORK_LOCAL_PORT;
pub const ERROR_TYPE: &str = semconv::ERROR_TYPE;
/// v1.45.0: renamed from `messaging.kafka.cluster.id`; the Kafka cluster id from Metadata responses.
pub const CLUSTER_ID: &str = "kafka.cluster.id";

/// Names renamed by semantic conventions v1.45.0 (and kwire's move of the client socket on spans to
/// `network.local.*`): (current, before).
pub const RENAMED: &[(&str, &str)] = &[
    (MESSAGING_SYSTEM, "messaging.system"),
    (KAFKA_OFFSET, "messaging.kafka.offset"),
    (CLUSTER_ID, "messaging.kafka.cluster.id"),
    (LOCAL_ADDRESS, "client.address"),
    (LOCAL_PORT, "client.port"),
];

/// The Kafka API of an exchange (`Produce`, `Fetch`, `OffsetCommit`, ...): bounded, one per API key.
pub const KAFKA_API: &str = "kwire.api";
pub const ALERT_KIND: &str = "kwire.alert.kind";
/// The alert's deterministic id (`alert_id` in the JSON line): a backend de-duplicates on it.
pub const ALERT_ID: &str = "kwire.alert.id";
pub const ALERT_SEVERITY: &str = "kwire.alert.severity";
pub const SIGNAL: &str = "kwire.signal";
pub const DROP_REASON: &str = "kwire.drop.reason";

/// The metrics, one variant each; `def()` gives the name and shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    OperationDuration,
    RequestDuration,
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

/// Upper bounds (seconds) of `messaging.client.operation.duration`: the spec's advised
/// `ExplicitBucketBoundaries` (messaging-metrics, "Metric: messaging.client.operation.duration").
pub const DURATION_BOUNDS_S: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Upper bounds (seconds) of kwire's own `kwire.request.duration`: from 100 µs (loopback) to 30 s.
pub const REQUEST_BOUNDS_S: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75,
    1.0, 2.5, 5.0, 7.5, 10.0, 30.0,
];

const TP: &[&str] = &[DESTINATION, PARTITION];
const GROUP_TP: &[&str] = &[CONSUMER_GROUP, DESTINATION, PARTITION];
const TOPIC: &[&str] = &[MESSAGING_SYSTEM, DESTINATION];
const SYSTEM_AND_OPERATION: &[&str] = &[MESSAGING_SYSTEM, OPERATION_NAME];
const OWN: &str = "kwire's own metric";

impl Metric {
    pub const ALL: [Metric; 21] = [
        Metric::OperationDuration,
        Metric::RequestDuration,
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
                    "Time from a Produce, consumer Fetch or offset commit request to its response on the wire.",
                    &[
                        MESSAGING_SYSTEM,
                        OPERATION_NAME,
                        OPERATION_TYPE,
                        DESTINATION,
                        CONSUMER_GROUP,
                        SERVER_ADDRESS,
                        SERVER_PORT,
                        ERROR_TYPE,
                        KAFKA_API,
                    ],
                ),
                Metric::RequestDuration => (
                    "kwire.request.duration",
                    Histogram,
                    "s",
                    "Time from a cluster-management request (Metadata, JoinGroup, Heartbeat, ...) to its response on the wire, per API and broker.",
                    &[KAFKA_API, SERVER_ADDRESS, SERVER_PORT, ERROR_TYPE],
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
                    "Records producers sent (from record batch headers), per partition and broker; error.type when the broker refused them.",
                    &[
                        MESSAGING_SYSTEM,
                        OPERATION_NAME,
                        DESTINATION,
                        PARTITION,
                        SERVER_ADDRESS,
                        SERVER_PORT,
                        ERROR_TYPE,
                    ],
                ),
                Metric::ConsumedMessages => (
                    "messaging.client.consumed.messages",
                    Counter,
                    "{message}",
                    "Records consumers fetched (from record batch headers), per group, partition and broker.",
                    &[
                        MESSAGING_SYSTEM,
                        OPERATION_NAME,
                        CONSUMER_GROUP,
                        DESTINATION,
                        PARTITION,
                        SERVER_ADDRESS,
                        SERVER_PORT,
                    ],
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
        let (required, spec): (&'static [&'static str], _) = match self {
            Metric::OperationDuration => (
                SYSTEM_AND_OPERATION,
                "messaging-metrics#metric-messagingclientoperationduration",
            ),
            Metric::SentMessages => (
                SYSTEM_AND_OPERATION,
                "messaging-metrics#metric-messagingclientsentmessages",
            ),
            Metric::ConsumedMessages => (
                SYSTEM_AND_OPERATION,
                "messaging-metrics#metric-messagingclientconsumedmessages",
            ),
            Metric::RequestDuration => (&[KAFKA_API, SERVER_ADDRESS, SERVER_PORT], OWN),
            Metric::Alerts => (&[ALERT_KIND, ALERT_SEVERITY], OWN),
            Metric::ConsumerLag | Metric::CommittedOffset => (GROUP_TP, OWN),
            Metric::HighWatermark => (TP, OWN),
            Metric::ProducedBytes | Metric::FetchedBytes => (TOPIC, OWN),
            _ => (&[], OWN),
        };
        MetricDef {
            name,
            instrument,
            unit,
            description,
            attributes,
            required,
            spec,
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
    ALERT_ID,
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

/// How exchange spans are made, per operation: the one table the exporter and the test against a real
/// collector both read. Section names are those of the spec pages linked in the module doc.
#[derive(Debug, Clone, Copy)]
pub struct SpanConvention {
    /// `messaging.operation.type` (None: not a messaging operation).
    pub operation_type: Option<&'static str>,
    /// `messaging.operation.name` (None: not a messaging operation).
    pub operation_name: Option<&'static str>,
    /// The Kafka APIs it covers (`kwire.api`).
    pub apis: &'static [&'static str],
    pub kind: SpanKind,
    /// The span name, with `{destination}` = `messaging.destination.name` when the exchange has one
    /// topic, else omitted; `{server}` = `server.address:server.port`.
    pub name: &'static str,
    /// Attributes every such span carries.
    pub required: &'static [&'static str],
    /// Attributes it carries when the condition in the spec holds (and kwire knows the value).
    pub conditional: &'static [&'static str],
    /// Attributes it never carries.
    pub never: &'static [&'static str],
    /// Spec sections this follows.
    pub spec: &'static str,
}

impl SpanConvention {
    /// `SpanKind` as collectors print it (`client`).
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
            SpanKind::Server => "server",
            SpanKind::Internal => "internal",
            SpanKind::Unspecified => "unspecified",
        }
    }
}

const MESSAGING_REQUIRED: &[&str] = &[
    MESSAGING_SYSTEM,
    OPERATION_NAME,
    OPERATION_TYPE,
    KAFKA_API,
    SERVER_ADDRESS,
    SERVER_PORT,
    PEER_ADDRESS,
    PEER_PORT,
    LOCAL_ADDRESS,
    LOCAL_PORT,
];

/// Send, receive, settle, and everything else, in that order.
pub const SPAN_CONVENTIONS: [SpanConvention; 4] = [
    SpanConvention {
        operation_type: Some("send"),
        operation_name: Some("send"),
        apis: &["Produce"],
        // A passive observer never injects a creation context into the records: "PRODUCER if the
        // context of the Send span is used as creation context, otherwise CLIENT".
        kind: SpanKind::Client,
        name: "send {destination}",
        required: MESSAGING_REQUIRED,
        conditional: &[DESTINATION, PARTITION, BATCH_COUNT, KAFKA_OFFSET, ERROR_TYPE, CLIENT_ID, CLUSTER_ID],
        never: &[CONSUMER_GROUP],
        spec: "messaging-spans#span-kind (send: CLIENT without creation context), #span-name, #operation-types; kafka#span-attributes",
    },
    SpanConvention {
        operation_type: Some("receive"),
        operation_name: Some("receive"),
        apis: &["Fetch"],
        kind: SpanKind::Client,
        name: "receive {destination}",
        required: MESSAGING_REQUIRED,
        conditional: &[DESTINATION, PARTITION, BATCH_COUNT, KAFKA_OFFSET, CONSUMER_GROUP, ERROR_TYPE, CLIENT_ID, CLUSTER_ID],
        never: &[],
        spec: "messaging-spans#span-kind (receive: CLIENT), #span-name; kafka#span-attributes (messaging.consumer.group.name)",
    },
    SpanConvention {
        operation_type: Some("settle"),
        operation_name: Some("commit"),
        apis: &["OffsetCommit", "TxnOffsetCommit"],
        kind: SpanKind::Client,
        name: "commit {destination}",
        required: MESSAGING_REQUIRED,
        conditional: &[DESTINATION, PARTITION, KAFKA_OFFSET, CONSUMER_GROUP, ERROR_TYPE, CLIENT_ID, CLUSTER_ID],
        never: &[BATCH_COUNT],
        spec: "messaging-spans#span-kind (settle: CLIENT); kafka#examples (commit span)",
    },
    SpanConvention {
        operation_type: None,
        operation_name: None,
        apis: &[],
        kind: SpanKind::Client,
        name: "{api} {server}",
        required: &[KAFKA_API, SERVER_ADDRESS, SERVER_PORT, PEER_ADDRESS, PEER_PORT, LOCAL_ADDRESS, LOCAL_PORT],
        conditional: &[CONSUMER_GROUP, CLIENT_ID, CLUSTER_ID, ERROR_TYPE, DESTINATION, PARTITION],
        never: &[MESSAGING_SYSTEM, OPERATION_NAME, OPERATION_TYPE, BATCH_COUNT, KAFKA_OFFSET],
        spec: "not a messaging operation (messaging-spans#operation-types lists none for cluster management): a CLIENT span, named like messaging-spans#span-name's server.address:server.port fallback",
    },
];

/// Attributes an exchange span may carry.
pub const SPAN_ATTRIBUTES: &[&str] = &[
    PEER_ADDRESS,
    PEER_PORT,
    LOCAL_ADDRESS,
    LOCAL_PORT,
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
    fn semconv_switch() {
        let names = |m: Semconv, k| m.names(k).collect::<Vec<_>>();
        assert_eq!(
            names(Semconv::Current, MESSAGING_SYSTEM),
            ["messaging.system.name"]
        );
        assert_eq!(
            names(Semconv::Legacy, MESSAGING_SYSTEM),
            ["messaging.system"]
        );
        assert_eq!(
            names(Semconv::Dup, KAFKA_OFFSET),
            ["kafka.offset", "messaging.kafka.offset"]
        );
        assert_eq!(names(Semconv::Legacy, DESTINATION), [DESTINATION]);
        let r = |a, b| Semconv::resolve(a, b).unwrap();
        assert_eq!(r(None, None), Semconv::Current);
        assert_eq!(
            r(Some("http,messaging/dup,messaging"), Some("legacy")),
            Semconv::Dup
        );
        assert_eq!(r(Some("messaging"), Some("legacy")), Semconv::Current);
        assert_eq!(r(Some("http"), Some("legacy")), Semconv::Legacy);
        assert!(Semconv::resolve(None, Some("old")).is_err());
        assert_eq!(Semconv::Legacy.schema_url(), LEGACY_SCHEMA_URL);
    }

    #[test]
    fn semconv_names() {
        assert_eq!(DESTINATION, "messaging.destination.name");
        assert_eq!(PARTITION, "messaging.destination.partition.id");
        assert_eq!(CONSUMER_GROUP, "messaging.consumer.group.name");
        assert_eq!(KAFKA_OFFSET, "kafka.offset");
        assert_eq!(MESSAGING_SYSTEM, "messaging.system.name");
        assert_eq!(OPERATION_TYPE, "messaging.operation.type");
    }
}
