//! What the engine produces: a closed set of outputs, each serialised as one JSON object per line
//! (`"type"` = `exchange` | `notice`; the CLI adds `summary`). Field names follow the output contract in
//! ARCHITECTURE.md and never change meaning; additions are fine.
//!
//! Easy to get wrong: record keys/values and SASL bytes never reach these types (the decoders keep only
//! batch headers and lengths), timestamps are packet time in RFC 3339, and map-like fields must serialise
//! in a deterministic order.

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use kwire_flow::{Direction, Timestamp};
use kwire_kafka::body::error_name;
use kwire_kafka::{api, Decoded, Exchange};

use crate::alert::Alert;
use crate::conn::ConnCtx;
use crate::timeline::TimelineRecord;

#[derive(Debug, Clone)]
pub enum Output {
    Exchange(Box<ExchangeRecord>),
    Notice(NoticeRecord),
    Alert(Box<Alert>),
    Timeline(Box<TimelineRecord>),
}

impl Serialize for Output {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Output::Exchange(e) => e.serialize(s),
            Output::Notice(n) => n.serialize(s),
            Output::Alert(a) => a.serialize(s),
            Output::Timeline(t) => t.serialize(s),
        }
    }
}

/// One request and its response, on one connection.
#[derive(Debug, Clone)]
pub struct ExchangeRecord {
    pub conn: ConnCtx,
    pub exchange: Exchange,
    /// Messaging facts resolved against the cluster view; only with `EngineConfig::exchange_facts`.
    /// Not part of the JSON line (its fields are there already, unresolved).
    pub facts: Option<Box<crate::facts::ExchangeFacts>>,
}

impl ExchangeRecord {
    /// Distinct non-zero error codes of the response (empty when none or no response).
    pub fn error_codes(&self) -> Vec<i16> {
        match self.exchange.response.as_ref().map(|r| &r.body) {
            Some(Decoded::Full(b)) => b.error_codes(),
            _ => Vec::new(),
        }
    }

    pub fn latency_us(&self) -> Option<i64> {
        self.exchange
            .response
            .as_ref()
            .map(|r| r.ts.nanos_since(self.exchange.request_ts) / 1000)
    }
}

fn status<T>(d: &Decoded<T>) -> Option<String> {
    match d {
        Decoded::Full(_) => None,
        Decoded::Failed(e) => Some(format!("decode_error: {e}")),
        Decoded::UnknownVersion => Some("unknown_version".to_string()),
        Decoded::Skipped(r) => Some(format!("skipped: {}", r.as_str())),
    }
}

impl Serialize for ExchangeRecord {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = &self.exchange;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", "exchange")?;
        m.serialize_entry("ts", &e.request_ts.to_rfc3339())?;
        m.serialize_entry("conn", &self.conn.id)?;
        m.serialize_entry("client_addr", &self.conn.client.to_string())?;
        m.serialize_entry("broker_addr", &self.conn.broker.to_string())?;
        for (k, v) in owner_fields(&self.conn) {
            m.serialize_entry(&k, &v)?;
        }
        m.serialize_entry("client_id", &e.request.client_id)?;
        m.serialize_entry("api_key", &e.api_key)?;
        m.serialize_entry("api", api::api_name(e.api_key))?;
        m.serialize_entry("api_version", &e.api_version)?;
        m.serialize_entry("correlation_id", &e.correlation_id)?;
        m.serialize_entry(
            "response_ts",
            &e.response.as_ref().map(|r| r.ts.to_rfc3339()),
        )?;
        m.serialize_entry("latency_us", &self.latency_us())?;
        let codes = self.error_codes();
        let names: Vec<&str> = codes.iter().map(|&c| error_name(c)).collect();
        m.serialize_entry("error_codes", &codes)?;
        m.serialize_entry("errors", &names)?;
        m.serialize_entry("request_bytes", &e.request.bytes)?;
        m.serialize_entry("response_bytes", &e.response.as_ref().map(|r| r.bytes))?;
        if e.response_optional {
            m.serialize_entry("response_optional", &true)?;
        }
        m.serialize_entry("request", &e.request.body.full())?;
        if let Some(st) = status(&e.request.body) {
            m.serialize_entry("request_status", &st)?;
        }
        if let Some(r) = &e.response {
            m.serialize_entry("response", &r.body.full())?;
            if let Some(st) = status(&r.body) {
                m.serialize_entry("response_status", &st)?;
            }
        } else {
            m.serialize_entry("response", &None::<()>)?;
        }
        m.end()
    }
}

/// Something about the capture or a stream worth telling: gaps, desyncs, orphans, drops.
#[derive(Debug, Clone, Serialize)]
pub struct NoticeRecord {
    #[serde(rename = "type")]
    pub kind_type: &'static str,
    pub ts: String,
    /// Snake-case kind: `orphan`, `desync`, `resync`, `frame_damaged`, `oversized_frame`, `tls`, `sasl_raw`,
    /// `malformed_header`, `flow_table_full`, `capture_damaged`.
    pub notice: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conn: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker_addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

impl NoticeRecord {
    pub fn new(ts: Timestamp, notice: &'static str, message: String) -> Self {
        NoticeRecord {
            kind_type: "notice",
            ts: ts.to_rfc3339(),
            notice,
            message,
            conn: None,
            client_addr: None,
            broker_addr: None,
            direction: None,
            correlation_id: None,
            bytes: None,
        }
    }

    pub fn on_conn(mut self, c: &ConnCtx) -> Self {
        self.conn = Some(c.id);
        self.client_addr = Some(c.client.to_string());
        self.broker_addr = Some(c.broker.to_string());
        self
    }

    pub fn dir(mut self, d: Direction) -> Self {
        self.direction = Some(match d {
            Direction::ToServer => "to_broker",
            Direction::ToClient => "to_client",
        });
        self
    }
}

/// `client_pod`, `client_container`, `client_cgroup`, ... and `broker_*` of a connection whose socket
/// owners a live source resolved (nothing for replays).
pub fn owner_fields(c: &ConnCtx) -> Vec<(String, serde_json::Value)> {
    let mut out = Vec::new();
    for (prefix, who) in [("client", &c.client_owner), ("broker", &c.broker_owner)] {
        let Some(who) = who else { continue };
        if let Ok(serde_json::Value::Object(m)) = serde_json::to_value(&**who) {
            for (k, v) in m {
                out.push((format!("{prefix}_{k}"), v));
            }
        }
    }
    out
}
