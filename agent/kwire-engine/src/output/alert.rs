//! Alerts: what kwire exists to say. One closed set of kinds, three severities, the common fields of the
//! output contract, plus each kind's own fields, typed ([`Fields`]): numbers, booleans, shared names,
//! timestamps; encoders render them.
//!
//! Easy to get wrong: `ts` is packet time; `explanation` is one line an operator understands without
//! knowing kwire; kind-specific fields are snake_case, never change meaning, and keep the order in which
//! the detector set them (setting a field again replaces its value in place).

use std::sync::Arc;

use serde_json::Value;

use kwire_flow::{Attribution, Endpoint, Timestamp};

use crate::model::{ConnCtx, Name, Tp, XRef};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl serde::Serialize for Severity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The alert kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlertKind {
    ListOffsetsRegression,
    CommitAfterRevoke,
    WeakAcks,
    StaleOwnerCommit,
    CommitAheadOfFetch,
    OffsetResetJump,
    CommittedOffsetRegression,
    AcknowledgedThenLost,
    ProduceRejected,
    LogTruncated,
}

impl AlertKind {
    pub const ALL: [AlertKind; 10] = [
        AlertKind::ListOffsetsRegression,
        AlertKind::CommitAfterRevoke,
        AlertKind::WeakAcks,
        AlertKind::StaleOwnerCommit,
        AlertKind::CommitAheadOfFetch,
        AlertKind::OffsetResetJump,
        AlertKind::CommittedOffsetRegression,
        AlertKind::AcknowledgedThenLost,
        AlertKind::ProduceRejected,
        AlertKind::LogTruncated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::ListOffsetsRegression => "listoffsets_regression",
            AlertKind::CommitAfterRevoke => "commit_after_revoke",
            AlertKind::WeakAcks => "weak_acks",
            AlertKind::StaleOwnerCommit => "stale_owner_commit",
            AlertKind::CommitAheadOfFetch => "commit_ahead_of_fetch",
            AlertKind::OffsetResetJump => "offset_reset_jump",
            AlertKind::CommittedOffsetRegression => "committed_offset_regression",
            AlertKind::AcknowledgedThenLost => "acknowledged_then_lost",
            AlertKind::ProduceRejected => "produce_rejected",
            AlertKind::LogTruncated => "log_truncated",
        }
    }
}

/// The value of one kind-specific alert field.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Null,
    Bool(bool),
    Int(i64),
    Str(Name),
    Static(&'static str),
    /// Packet time (rendered RFC 3339).
    Ts(Timestamp),
    /// A structured value (lists of partitions, members): rare, built only when an alert fires.
    Json(Value),
}

impl FieldValue {
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            FieldValue::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            FieldValue::Str(s) => Some(s),
            FieldValue::Static(s) => Some(s),
            _ => None,
        }
    }

    /// The value as JSON (for encoders that want a tree).
    pub fn to_json(&self) -> Value {
        match self {
            FieldValue::Null => Value::Null,
            FieldValue::Bool(b) => Value::Bool(*b),
            FieldValue::Int(i) => Value::from(*i),
            FieldValue::Str(s) => Value::String(s.to_string()),
            FieldValue::Static(s) => Value::String(s.to_string()),
            FieldValue::Ts(t) => Value::String(t.to_rfc3339()),
            FieldValue::Json(v) => v.clone(),
        }
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for FieldValue {
            fn from(v: $t) -> Self {
                FieldValue::Int(v as i64)
            }
        }
        impl PartialEq<$t> for FieldValue {
            fn eq(&self, o: &$t) -> bool {
                self.as_i64() == Some(*o as i64)
            }
        }
    )*};
}
from_int!(i16, i32, i64, u32, u64, usize);

impl From<bool> for FieldValue {
    fn from(v: bool) -> Self {
        FieldValue::Bool(v)
    }
}
impl PartialEq<bool> for FieldValue {
    fn eq(&self, o: &bool) -> bool {
        *self == FieldValue::Bool(*o)
    }
}
impl From<&str> for FieldValue {
    fn from(v: &str) -> Self {
        FieldValue::Str(Arc::from(v))
    }
}
impl<T: Into<Value>> From<Vec<T>> for FieldValue {
    fn from(v: Vec<T>) -> Self {
        FieldValue::Json(Value::from(v))
    }
}
impl PartialEq<&str> for FieldValue {
    fn eq(&self, o: &&str) -> bool {
        self.as_str() == Some(*o)
    }
}
impl From<String> for FieldValue {
    fn from(v: String) -> Self {
        FieldValue::Str(Arc::from(v))
    }
}
impl From<Name> for FieldValue {
    fn from(v: Name) -> Self {
        FieldValue::Str(v)
    }
}
impl From<&Name> for FieldValue {
    fn from(v: &Name) -> Self {
        FieldValue::Str(v.clone())
    }
}
impl From<Timestamp> for FieldValue {
    fn from(v: Timestamp) -> Self {
        FieldValue::Ts(v)
    }
}
impl From<Value> for FieldValue {
    /// Scalars become typed values; only lists and objects stay JSON.
    fn from(v: Value) -> Self {
        match v {
            Value::Null => FieldValue::Null,
            Value::Bool(b) => FieldValue::Bool(b),
            Value::String(s) => FieldValue::Str(Arc::from(s)),
            Value::Number(n) if n.is_i64() => FieldValue::Int(n.as_i64().unwrap_or_default()),
            other => FieldValue::Json(other),
        }
    }
}
impl<T: Into<FieldValue>> From<Option<T>> for FieldValue {
    fn from(v: Option<T>) -> Self {
        v.map(Into::into).unwrap_or(FieldValue::Null)
    }
}

/// An alert's own fields, in the order the detector set them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields(Vec<(&'static str, FieldValue)>);

impl Fields {
    /// Sets `k`: replaces its value in place when present, appends otherwise.
    pub fn set(&mut self, k: &'static str, v: FieldValue) {
        match self.0.iter_mut().find(|(n, _)| *n == k) {
            Some(slot) => slot.1 = v,
            None => self.0.push((k, v)),
        }
    }

    pub fn get(&self, k: &str) -> Option<&FieldValue> {
        self.0.iter().find(|(n, _)| *n == k).map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &FieldValue)> {
        self.0.iter().map(|(k, v)| (*k, v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::ops::Index<&str> for Fields {
    type Output = FieldValue;
    fn index(&self, k: &str) -> &FieldValue {
        static NULL: FieldValue = FieldValue::Null;
        self.get(k).unwrap_or(&NULL)
    }
}

/// One exchange an alert rests on, named so that a person can open it: in Wireshark by its packet
/// numbers, in kwire's own lines by connection and correlation id.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evidence {
    /// What it is to the alert: `trigger` (the exchange that raised it), `before` (the one that told
    /// the value compared with), ...
    pub role: &'static str,
    pub conn: u64,
    pub broker: Endpoint,
    pub xref: XRef,
    /// The offset this exchange told, served or committed, when the alert compares offsets.
    pub offset: Option<i64>,
}

impl Evidence {
    /// An offset observation as evidence.
    pub fn of_obs(role: &'static str, o: &crate::analysis::timeline::Obs) -> Evidence {
        Evidence {
            role,
            conn: o.conn,
            broker: o.broker,
            xref: o.xref,
            offset: Some(o.offset),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Alert {
    pub kind: AlertKind,
    pub severity: Severity,
    pub ts: Timestamp,
    pub client_id: Option<Name>,
    pub client: Option<Endpoint>,
    pub broker: Option<Endpoint>,
    /// Who owns the client's / the broker's socket (live eBPF sources only).
    pub client_owner: Option<Arc<Attribution>>,
    pub broker_owner: Option<Arc<Attribution>>,
    pub topic: Option<Name>,
    pub partition: Option<i32>,
    pub explanation: String,
    /// The kind's own fields.
    pub fields: Fields,
    /// The exchange that raised it (connection id, correlation id, request time), when one did; set by
    /// the engine. Not in the JSON line: exporters use it to link the alert to the exchange's span.
    pub exchange: Option<(u64, i32, Timestamp)>,
    /// The exchanges it rests on (`trigger` added by the engine when a detector did not name it).
    pub evidence: Vec<Evidence>,
}

impl Alert {
    pub fn new(kind: AlertKind, severity: Severity, ts: Timestamp, explanation: String) -> Alert {
        Alert {
            kind,
            severity,
            ts,
            client_id: None,
            client: None,
            broker: None,
            client_owner: None,
            broker_owner: None,
            topic: None,
            partition: None,
            explanation,
            fields: Fields::default(),
            exchange: None,
            evidence: Vec::new(),
        }
    }

    /// Names an exchange it rests on (kept in the order given).
    pub fn evidence(mut self, e: Evidence) -> Alert {
        self.evidence.push(e);
        self
    }

    pub fn on(mut self, ctx: &ConnCtx, client_id: Option<&str>) -> Alert {
        self.client_id = client_id.map(Arc::from);
        self.client = Some(ctx.client);
        self.broker = Some(ctx.broker);
        self.client_owner = ctx.client_owner.clone();
        self.broker_owner = ctx.broker_owner.clone();
        self
    }

    pub fn tp(mut self, tp: &Tp) -> Alert {
        self.topic = Some(tp.topic.clone());
        self.partition = Some(tp.partition);
        self
    }

    pub fn field(mut self, k: &'static str, v: impl Into<FieldValue>) -> Alert {
        self.fields.set(k, v.into());
        self
    }

    /// A deterministic id (32 hex digits) so that a backend can de-duplicate one alert reported twice
    /// (two agents that both saw the connection, or a capture replayed twice): FNV-1a 128 over the kind,
    /// the client (id and address), the broker, the topic-partition and the evidence exchange. The
    /// exchange is named by what both ends of the wire see alike (client and broker address and
    /// correlation id), never by kwire's connection number or a packet time, which differ between two
    /// capture points. An alert with no evidence exchange (weak_acks, raised from a producer's traffic
    /// as a whole) adds its severity and acks instead: one producer, topic and acks has at most one
    /// line per severity, and both ends of the wire see the same values.
    pub fn id(&self) -> String {
        let mut h = Fnv128::new();
        h.str(self.kind.as_str());
        h.opt_str(self.client_id.as_deref());
        h.opt_str(self.client.map(|c| c.to_string()).as_deref());
        h.opt_str(self.broker.map(|b| b.to_string()).as_deref());
        h.opt_str(self.topic.as_deref());
        h.opt_i64(self.partition.map(i64::from));
        match self.exchange {
            Some((_, correlation_id, _)) => {
                h.str("exchange");
                h.opt_i64(Some(i64::from(correlation_id)));
            }
            None => {
                h.str("no_exchange");
                h.str(self.severity.as_str());
                h.opt_i64(self.fields.get("acks").and_then(FieldValue::as_i64));
            }
        }
        format!("{:032x}", h.0)
    }
}

/// FNV-1a, 128 bits (fixed constants: ids must not change across builds or platforms, which std's
/// hashers do not promise). Each value is length-prefixed so that ("ab", "c") and ("a", "bc") differ.
struct Fnv128(u128);

impl Fnv128 {
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013B;

    fn new() -> Self {
        Fnv128(0x6c62_272e_07bb_0142_62b8_2175_6295_c58d)
    }

    fn bytes(&mut self, b: &[u8]) {
        for x in (b.len() as u64).to_le_bytes().iter().chain(b) {
            self.0 ^= u128::from(*x);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.bytes(&[1]);
                self.str(s);
            }
            None => self.bytes(&[0]),
        }
    }

    fn opt_i64(&mut self, v: Option<i64>) {
        match v {
            Some(v) => {
                self.bytes(&[1]);
                self.bytes(&v.to_le_bytes());
            }
            None => self.bytes(&[0]),
        }
    }
}

/// Optional timestamp as a field (null when absent).
pub fn ts_value(ts: Option<Timestamp>) -> FieldValue {
    ts.map(FieldValue::Ts).unwrap_or(FieldValue::Null)
}

#[cfg(test)]
mod id_tests {
    use super::*;

    fn alert(corr: i32, conn: u64, request_ts: i64) -> Alert {
        let mut a = Alert::new(
            AlertKind::CommitAfterRevoke,
            Severity::Critical,
            Timestamp(request_ts + 500),
            "x".into(),
        );
        a.client_id = Some(Arc::from("kw-carc-1"));
        a.client = Some(Endpoint::new("10.0.0.2".parse().unwrap(), 40000));
        a.broker = Some(Endpoint::new("10.0.0.1".parse().unwrap(), 9092));
        a.topic = Some(Arc::from("kw-carc"));
        a.partition = Some(1);
        a.exchange = Some((conn, corr, Timestamp(request_ts)));
        a
    }

    #[test]
    fn same_evidence_same_id_across_capture_points() {
        // Another agent numbers the connection differently and sees the request 40 µs later.
        let here = alert(17, 3, 1_000_000);
        let there = alert(17, 9, 1_040_000);
        assert_eq!(here.id(), there.id());
        assert_eq!(here.id().len(), 32);
        assert_ne!(here.id(), alert(18, 3, 1_000_000).id());
        let mut other_part = alert(17, 3, 1_000_000);
        other_part.partition = Some(2);
        assert_ne!(here.id(), other_part.id());
        let mut other_kind = alert(17, 3, 1_000_000);
        other_kind.kind = AlertKind::CommittedOffsetRegression;
        assert_ne!(here.id(), other_kind.id());
    }
}
