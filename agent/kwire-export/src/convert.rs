//! kwire outputs as OTLP records: an alert becomes a log record, an exchange a span. Pure functions of
//! the output (no clock, no IO), so the same capture gives the same records.
//!
//! Easy to get wrong:
//! - span and event timestamps are packet time (request and response as seen on the wire), never the
//!   export time;
//! - ids are deterministic (a hash of the connection, correlation id and request time), so replaying a
//!   capture twice gives the same trace ids, and an alert's log record carries the trace and span id of
//!   the exchange that raised it;
//! - spans carry no record keys or values and no SASL bytes (the decoders never keep them) and no
//!   client id on metrics; span names stay low-cardinality (messaging-spans#span-name):
//!   `{operation} {topic}`; `{operation}` when the exchange spans several topics; `{operation}
//!   {server.address}:{server.port}` when it has none; `{kwire.api} {server.address}:{server.port}` for
//!   cluster-management calls, which are not messaging operations (never a group: it is not a
//!   destination);
//! - every span is CLIENT (the catalog's table says why, per operation);
//! - a log record's observed time is the export's wall clock, its time the packet time.

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, SeverityNumber};
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Span, Status};
use serde_json::Value;

use kwire_engine::alert::FieldValue;
use kwire_engine::facts::{ExchangeFacts, Operation};
use kwire_engine::{Alert, ExchangeRecord, Severity};
use kwire_flow::{Attribution, Endpoint, Timestamp};
use kwire_kafka::api;
use kwire_kafka::body::error_name;

use crate::catalog::{self as c, Semconv};

fn kv(k: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: k.to_string(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

pub fn kv_str(k: &str, v: impl Into<String>) -> KeyValue {
    kv(k, any_value::Value::StringValue(v.into()))
}

pub fn kv_int(k: &str, v: i64) -> KeyValue {
    kv(k, any_value::Value::IntValue(v))
}

pub fn kv_bool(k: &str, v: bool) -> KeyValue {
    kv(k, any_value::Value::BoolValue(v))
}

fn json_any(v: &Value) -> Option<AnyValue> {
    let value = match v {
        Value::Null => return None,
        Value::Bool(b) => any_value::Value::BoolValue(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => any_value::Value::IntValue(i),
            None => any_value::Value::DoubleValue(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => any_value::Value::StringValue(s.clone()),
        other => any_value::Value::StringValue(other.to_string()),
    };
    Some(AnyValue { value: Some(value) })
}

fn ts_nanos(t: Timestamp) -> u64 {
    u64::try_from(t.0).unwrap_or(0)
}

/// splitmix64: a fixed, well-mixed hash step (ids must be stable across runs and builds, which
/// std's hashers do not promise).
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Which exchange a span or alert belongs to: connection, correlation id, request time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExchangeKey {
    pub conn: u64,
    pub correlation_id: i32,
    pub request_ts: Timestamp,
}

impl ExchangeKey {
    pub fn of(x: &ExchangeRecord) -> Self {
        ExchangeKey {
            conn: x.conn.id,
            correlation_id: x.exchange.correlation_id,
            request_ts: x.exchange.request_ts,
        }
    }

    /// (trace id, span id): 16 and 8 bytes, never all zero.
    pub fn ids(&self) -> ([u8; 16], [u8; 8]) {
        let a = mix(self.conn ^ 0x6b77_6972_6500_0001);
        let b = mix(a ^ (self.correlation_id as u32 as u64));
        let c = mix(b ^ (self.request_ts.0 as u64));
        let d = mix(c ^ 0x6b77_6972_6500_0002);
        let mut t = [0u8; 16];
        t[..8].copy_from_slice(&(c | 1).to_be_bytes());
        t[8..].copy_from_slice(&d.to_be_bytes());
        let s = mix(d ^ 0x6b77_6972_6500_0003) | 1;
        (t, s.to_be_bytes())
    }

    /// A number in [0, 1) from the trace id: the sampling decision (like the TraceIdRatio sampler).
    pub fn sample_point(&self) -> f64 {
        let (t, _) = self.ids();
        let mut low = [0u8; 8];
        low.copy_from_slice(&t[8..]);
        (u64::from_be_bytes(low) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A socket address as the `*.address` / `*.port` pair (the address without brackets for IPv6).
fn push_addr(attrs: &mut Vec<KeyValue>, host_key: &str, port_key: &str, addr: Endpoint) {
    attrs.push(kv_str(host_key, addr.ip.to_string()));
    attrs.push(kv_int(port_key, addr.port.into()));
}

/// `kwire.client.pod`, `kwire.broker.namespace`, ...: the socket owners a live source resolved.
fn push_owners(attrs: &mut Vec<KeyValue>, who: &str, owner: Option<&Attribution>) {
    let Some(o) = owner else { return };
    let key = |what: &str| format!("kwire.{who}.{what}");
    attrs.push(kv_int(&key("cgroup_id"), o.cgroup_id as i64));
    let strings = [
        ("cgroup", &o.cgroup),
        ("container", &o.container),
        ("pod_uid", &o.pod_uid),
        ("pod", &o.pod),
        ("namespace", &o.namespace),
    ];
    for (what, v) in strings {
        if let Some(v) = v {
            attrs.push(kv_str(&key(what), v.clone()));
        }
    }
    if let Some(pid) = o.pid {
        attrs.push(kv_int(&key("pid"), pid.into()));
    }
    if let Some(comm) = &o.comm {
        attrs.push(kv_str(&key("comm"), comm.clone()));
    }
}

/// An alert field as an OTLP value.
fn field_value(v: &FieldValue) -> Option<AnyValue> {
    let value = match v {
        FieldValue::Null => return None,
        FieldValue::Bool(b) => any_value::Value::BoolValue(*b),
        FieldValue::Int(i) => any_value::Value::IntValue(*i),
        FieldValue::Str(s) => any_value::Value::StringValue(s.to_string()),
        FieldValue::Static(s) => any_value::Value::StringValue(s.to_string()),
        FieldValue::Ts(t) => any_value::Value::StringValue(t.to_rfc3339()),
        FieldValue::Json(j) => return json_any(j),
    };
    Some(AnyValue { value: Some(value) })
}

/// The convention an exchange follows (the catalog's table): send, receive, settle or not messaging.
pub fn convention(facts: Option<&ExchangeFacts>) -> &'static c::SpanConvention {
    let i = match facts.map(|f| f.operation) {
        Some(Operation::Send) => 0,
        Some(Operation::Receive) => 1,
        Some(Operation::Settle) => 2,
        _ => 3,
    };
    &c::SPAN_CONVENTIONS[i]
}

/// `messaging.operation.name` of a messaging exchange (None for cluster-management calls).
pub fn operation_name(facts: Option<&ExchangeFacts>) -> Option<&'static str> {
    convention(facts).operation_name
}

/// Pushes `key` under the name(s) the semantic-conventions mode says.
fn push(attrs: &mut Vec<KeyValue>, mode: Semconv, key: &'static str, v: any_value::Value) {
    for k in mode.names(key) {
        attrs.push(kv(k, v.clone()));
    }
}

/// The span of one exchange, as the catalog's [`c::SPAN_CONVENTIONS`] say.
pub fn exchange_span(x: &ExchangeRecord, mode: Semconv) -> Span {
    use any_value::Value::{IntValue, StringValue};
    let e = &x.exchange;
    let facts = x.facts.as_deref();
    let key = ExchangeKey::of(x);
    let (trace_id, span_id) = key.ids();
    let conv = convention(facts);
    let api_name = api::api_name(e.api_key);
    let topic = facts.and_then(|f| f.single_topic());
    let group = facts.and_then(|f| f.group.as_deref());
    let broker = x.conn.broker;
    let name = match (conv.operation_name, topic) {
        (Some(op), Some(t)) => format!("{op} {t}"),
        // Several topics: the destination is omitted (messaging-spans#span-name).
        (Some(op), None) if facts.is_some_and(|f| !f.parts.is_empty()) => op.to_string(),
        // No destination at all: server.address:server.port.
        (Some(op), None) => format!("{op} {broker}"),
        (None, _) => format!("{api_name} {broker}"),
    };
    let mut attrs = Vec::with_capacity(24);
    if let (Some(op), Some(t)) = (conv.operation_name, conv.operation_type) {
        push(
            &mut attrs,
            mode,
            c::MESSAGING_SYSTEM,
            StringValue("kafka".into()),
        );
        attrs.push(kv_str(c::OPERATION_NAME, op));
        attrs.push(kv_str(c::OPERATION_TYPE, t));
    }
    attrs.push(kv_str(c::KAFKA_API, api_name));
    if let Some(f) = facts {
        if let Some(t) = topic {
            attrs.push(kv_str(c::DESTINATION, t));
        }
        if let [p] = f.parts.as_slice() {
            attrs.push(kv_str(c::PARTITION, p.partition.to_string()));
            let offset = match f.operation {
                Operation::Send | Operation::Receive => p.record_offset,
                Operation::Settle => p.offset,
                Operation::Other => None,
            };
            if let Some(o) = offset {
                push(&mut attrs, mode, c::KAFKA_OFFSET, IntValue(o));
            }
        }
        if f.operation == Operation::Send || f.operation == Operation::Receive {
            let n: u64 = f.parts.iter().map(|p| p.records).sum();
            // A batch operation: the count (0 for an empty fetch); none on a lone record.
            if n != 1 && (f.operation == Operation::Send || e.response.is_some()) {
                attrs.push(kv_int(c::BATCH_COUNT, n as i64));
            }
        }
        if let Some(g) = group.filter(|_| f.operation != Operation::Send) {
            attrs.push(kv_str(c::CONSUMER_GROUP, g));
        }
        if let Some(id) = &f.cluster_id {
            push(&mut attrs, mode, c::CLUSTER_ID, StringValue(id.to_string()));
        }
    }
    if let Some(cid) = &e.request.client_id {
        attrs.push(kv_str(c::CLIENT_ID, cid.to_string()));
    }
    push_addr(&mut attrs, c::SERVER_ADDRESS, c::SERVER_PORT, broker);
    push_addr(&mut attrs, c::PEER_ADDRESS, c::PEER_PORT, broker);
    push(
        &mut attrs,
        mode,
        c::LOCAL_ADDRESS,
        StringValue(x.conn.client.ip.to_string()),
    );
    push(
        &mut attrs,
        mode,
        c::LOCAL_PORT,
        IntValue(x.conn.client.port.into()),
    );
    attrs.push(kv_int("kwire.api_version", e.api_version.into()));
    attrs.push(kv_int("kwire.correlation_id", e.correlation_id.into()));
    attrs.push(kv_int("kwire.request.bytes", e.request.bytes.into()));
    if let Some(r) = &e.response {
        attrs.push(kv_int("kwire.response.bytes", r.bytes.into()));
    } else {
        attrs.push(kv_bool("kwire.no_response", true));
    }
    push_owners(&mut attrs, "client", x.conn.client_owner.as_deref());
    push_owners(&mut attrs, "broker", x.conn.broker_owner.as_deref());
    let codes = x.failure_codes();
    let status = match codes.first() {
        Some(&code) => {
            attrs.push(kv_str(c::ERROR_TYPE, error_name(code)));
            Some(Status {
                message: codes
                    .iter()
                    .map(|&c| error_name(c))
                    .collect::<Vec<_>>()
                    .join(","),
                code: StatusCode::Error as i32,
            })
        }
        None => None,
    };
    let start = ts_nanos(e.request_ts);
    let end = e.response.as_ref().map_or(start, |r| ts_nanos(r.ts));
    Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_vec(),
        name,
        kind: conv.kind as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end.max(start),
        attributes: attrs,
        status,
        ..Default::default()
    }
}

/// OTel severity of an alert: info → INFO, warning → WARN, critical → ERROR (data loss is an error of
/// the system watched, not a fatal error of kwire).
pub fn severity_number(s: Severity) -> SeverityNumber {
    match s {
        Severity::Info => SeverityNumber::Info,
        Severity::Warning => SeverityNumber::Warn,
        Severity::Critical => SeverityNumber::Error,
    }
}

/// The log record of one alert; `exchange` links it to the span of the exchange that raised it.
/// `observed_ns` is when the agent observed it (the exporter's wall clock), `time_unix_nano` the packet
/// time of the event (a replay of an old capture keeps the old event time, observed now).
pub fn alert_log(a: &Alert, mode: Semconv, observed_ns: u64) -> LogRecord {
    let mut attrs = vec![
        kv_str(c::ALERT_ID, a.id()),
        kv_str(c::ALERT_KIND, a.kind.as_str()),
        kv_str(c::ALERT_SEVERITY, a.severity.as_str()),
    ];
    push(
        &mut attrs,
        mode,
        c::MESSAGING_SYSTEM,
        any_value::Value::StringValue("kafka".into()),
    );
    if let Some(cid) = &a.client_id {
        attrs.push(kv_str(c::CLIENT_ID, cid.to_string()));
    }
    if let Some(t) = &a.topic {
        attrs.push(kv_str(c::DESTINATION, t.to_string()));
    }
    if let Some(p) = a.partition {
        attrs.push(kv_str(c::PARTITION, p.to_string()));
    }
    if let Some(g) = a.fields.get("group").and_then(FieldValue::as_str) {
        attrs.push(kv_str(c::CONSUMER_GROUP, g.to_string()));
    }
    if let Some(b) = a.broker {
        push_addr(&mut attrs, c::SERVER_ADDRESS, c::SERVER_PORT, b);
    }
    if let Some(cl) = a.client {
        push_addr(&mut attrs, c::CLIENT_ADDRESS, c::CLIENT_PORT, cl);
    }
    push_owners(&mut attrs, "client", a.client_owner.as_deref());
    push_owners(&mut attrs, "broker", a.broker_owner.as_deref());
    for (k, v) in a.fields.iter() {
        if let Some(value) = field_value(v) {
            attrs.push(KeyValue {
                key: format!("{}{k}", c::ALERT_FIELD_PREFIX),
                value: Some(value),
                ..Default::default()
            });
        }
    }
    let (trace_id, span_id) = match a.exchange {
        Some((conn, correlation_id, request_ts)) => {
            let (t, s) = ExchangeKey {
                conn,
                correlation_id,
                request_ts,
            }
            .ids();
            (t.to_vec(), s.to_vec())
        }
        None => (Vec::new(), Vec::new()),
    };
    let t = ts_nanos(a.ts);
    LogRecord {
        time_unix_nano: t,
        observed_time_unix_nano: observed_ns,
        severity_number: severity_number(a.severity) as i32,
        severity_text: a.severity.as_str().to_uppercase(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(a.explanation.clone())),
        }),
        attributes: attrs,
        trace_id,
        span_id,
        event_name: "kwire.alert".to_string(),
        ..Default::default()
    }
}
