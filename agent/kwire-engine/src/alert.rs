//! Alerts: what kwire exists to say. One closed set of kinds, three severities, the common fields of the
//! output contract, plus each kind's own fields.
//!
//! Easy to get wrong: `ts` is packet time (RFC 3339); `explanation` is one line an operator understands
//! without knowing kwire; kind-specific fields are snake_case and never change meaning.

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{Map, Value};

use kwire_flow::Timestamp;

use crate::conn::ConnCtx;
use crate::model::Tp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
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
}

impl AlertKind {
    pub const ALL: [AlertKind; 7] = [
        AlertKind::ListOffsetsRegression,
        AlertKind::CommitAfterRevoke,
        AlertKind::WeakAcks,
        AlertKind::StaleOwnerCommit,
        AlertKind::CommitAheadOfFetch,
        AlertKind::OffsetResetJump,
        AlertKind::CommittedOffsetRegression,
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
        }
    }
}

#[derive(Debug, Clone)]
pub struct Alert {
    pub kind: AlertKind,
    pub severity: Severity,
    pub ts: Timestamp,
    pub client_id: Option<String>,
    pub client_addr: Option<String>,
    pub broker_addr: Option<String>,
    pub topic: Option<String>,
    pub partition: Option<i32>,
    pub explanation: String,
    /// The kind's own fields.
    pub fields: Map<String, Value>,
    /// The exchange that raised it (connection id, correlation id, request time), when one did; set by
    /// the engine. Not in the JSON line: exporters use it to link the alert to the exchange's span.
    pub exchange: Option<(u64, i32, Timestamp)>,
}

impl Alert {
    pub fn new(kind: AlertKind, severity: Severity, ts: Timestamp, explanation: String) -> Alert {
        Alert {
            kind,
            severity,
            ts,
            client_id: None,
            client_addr: None,
            broker_addr: None,
            topic: None,
            partition: None,
            explanation,
            fields: Map::new(),
            exchange: None,
        }
    }

    pub fn on(mut self, ctx: &ConnCtx, client_id: Option<&str>) -> Alert {
        self.client_id = client_id.map(str::to_string);
        self.client_addr = Some(ctx.client.to_string());
        self.broker_addr = Some(ctx.broker.to_string());
        for (k, v) in crate::output::owner_fields(ctx) {
            self.fields.insert(k, v);
        }
        self
    }

    pub fn tp(mut self, tp: &Tp) -> Alert {
        self.topic = Some(tp.topic.clone());
        self.partition = Some(tp.partition);
        self
    }

    pub fn field(mut self, k: &str, v: impl Into<Value>) -> Alert {
        self.fields.insert(k.to_string(), v.into());
        self
    }
}

impl Serialize for Alert {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", "alert")?;
        m.serialize_entry("alert", self.kind.as_str())?;
        m.serialize_entry("severity", self.severity.as_str())?;
        m.serialize_entry("ts", &self.ts.to_rfc3339())?;
        m.serialize_entry("client_id", &self.client_id)?;
        m.serialize_entry("client_addr", &self.client_addr)?;
        m.serialize_entry("broker_addr", &self.broker_addr)?;
        m.serialize_entry("topic", &self.topic)?;
        m.serialize_entry("partition", &self.partition)?;
        m.serialize_entry("explanation", &self.explanation)?;
        for (k, v) in &self.fields {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// Optional timestamp as RFC 3339 JSON (null when absent).
pub fn ts_value(ts: Option<Timestamp>) -> Value {
    ts.map(|t| Value::String(t.to_rfc3339()))
        .unwrap_or(Value::Null)
}
