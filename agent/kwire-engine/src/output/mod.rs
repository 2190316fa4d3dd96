//! What the engine hands to the edge: a closed set of typed findings ([`Output`]): exchanges, notices,
//! alerts and timeline rows. They carry timestamps, socket addresses, numbers and shared names; nothing
//! here is formatted. The encoders are siblings at the edge: [`json`] (one JSON object per line, the
//! output contract of ARCHITECTURE.md), the readable summary and the timeline table (the `kwire`
//! binary), OTLP (`kwire-export`).
//!
//! Easy to get wrong: record keys/values and SASL bytes never reach these types (the decoders keep only
//! batch headers and lengths); timestamps are packet time; a finding is built only when someone will
//! read it (timeline rows only with `EngineConfig::timeline`).

pub mod alert;
pub mod community_id;
pub mod json;
mod json_bodies;

use kwire_flow::{Direction, Endpoint, Timestamp};
use kwire_kafka::{Decoded, Exchange, NoticeKind};

use crate::model::{ConnCtx, Name, Tp};
use crate::output::alert::Alert;

#[derive(Debug, Clone)]
pub enum Output {
    Exchange(ExchangeRecord),
    Notice(NoticeRecord),
    Alert(Box<Alert>),
    Timeline(Box<TimelineRecord>),
    /// A consumer group event (join, sync, leave, heartbeat error): `kwire timeline` only.
    Group(Box<GroupEventRecord>),
}

/// One consumer group event, as `kwire timeline` shows it: built only with `EngineConfig::timeline`.
#[derive(Debug, Clone)]
pub struct GroupEventRecord {
    pub ts: Timestamp,
    pub client_id: Name,
    pub client: Endpoint,
    pub broker: Endpoint,
    pub conn: u64,
    pub group: Name,
    /// `join`, `sync`, `leave`, `heartbeat` (errors only), `assignment` (KIP-848 heartbeat with one).
    pub what: &'static str,
    pub member_id: Option<String>,
    /// Generation (classic) or member epoch (KIP-848), when the exchange tells it.
    pub generation: Option<i32>,
    /// The assignor (JoinGroup response's protocol name).
    pub protocol: Option<String>,
    /// Partitions the member now owns (sync, assignment), and those it owned before and lost.
    pub assigned: Vec<Tp>,
    pub revoked: Vec<Tp>,
    pub error: Option<&'static str>,
}

/// ApiVersions' api key.
const API_VERSIONS: i16 = kwire_kafka::api::key::API_VERSIONS;
/// UNSUPPORTED_VERSION: to an ApiVersions request, "too new, here are the versions I have".
const UNSUPPORTED_VERSION: i16 = kwire_kafka::body::error_code::UNSUPPORTED_VERSION;

/// One request and its response, on one connection.
#[derive(Debug, Clone)]
pub struct ExchangeRecord {
    pub conn: ConnCtx,
    pub exchange: Box<Exchange>,
    /// Messaging facts resolved against the cluster view; only with `EngineConfig::exchange_facts`.
    /// Not part of the JSON line (its fields are there already, unresolved).
    pub facts: Option<Box<crate::analysis::facts::ExchangeFacts>>,
}

impl ExchangeRecord {
    /// Distinct non-zero error codes of the response (empty when none or no response).
    pub fn error_codes(&self) -> Vec<i16> {
        match self.exchange.response.as_ref().map(|r| &r.body) {
            Some(Decoded::Full(b)) => b.error_codes(),
            _ => Vec::new(),
        }
    }

    /// The error codes that mean something went wrong: [`Self::error_codes`] without version negotiation
    /// (an ApiVersions request newer than the broker answered with UNSUPPORTED_VERSION, after which the
    /// client retries with a version the broker named). The summary's error table and the exporters'
    /// error status and error metrics use these; the exchange line keeps every code.
    pub fn failure_codes(&self) -> Vec<i16> {
        let mut codes = self.error_codes();
        if self.exchange.api_key == API_VERSIONS {
            codes.retain(|&c| c != UNSUPPORTED_VERSION);
        }
        codes
    }

    pub fn latency_us(&self) -> Option<i64> {
        self.exchange
            .response
            .as_ref()
            .map(|r| r.ts.nanos_since(self.exchange.request_ts) / 1000)
    }
}

/// Something about the capture or a stream worth telling: gaps, desyncs, orphans, drops.
#[derive(Debug, Clone)]
pub struct NoticeRecord {
    pub ts: Timestamp,
    pub notice: Notice,
    /// The connection it happened on (id, client, broker), when it is about one.
    pub conn: Option<(u64, Endpoint, Endpoint)>,
    pub direction: Option<Direction>,
    pub correlation_id: Option<i32>,
    pub bytes: Option<u64>,
}

/// The kinds of notice. Their snake-case names and messages are rendered by the encoders.
#[derive(Debug, Clone)]
pub enum Notice {
    /// A response whose request was not captured.
    Orphan,
    /// Something the Kafka stream reported (desync, resync, damaged or oversized frame, TLS, raw SASL,
    /// malformed header).
    Stream(NoticeKind),
    /// Raised outside the engine (the capture layer: `capture_damaged`, `capture_drops`, ...), with its
    /// message already written.
    Other { name: &'static str, message: String },
}

impl Notice {
    /// Snake-case kind: `orphan`, `desync`, `resync`, `frame_damaged`, `oversized_frame`, `tls`,
    /// `sasl_raw`, `malformed_header`, or the capture layer's own.
    pub fn name(&self) -> &'static str {
        match self {
            Notice::Orphan => "orphan",
            Notice::Stream(k) => match k {
                NoticeKind::Desync { .. } => "desync",
                NoticeKind::Resync { .. } => "resync",
                NoticeKind::FrameDamaged { .. } => "frame_damaged",
                NoticeKind::OversizedFrame { .. } => "oversized_frame",
                NoticeKind::OverBudget { .. } => "over_budget",
                NoticeKind::Tls => "tls",
                NoticeKind::SaslRawStart => "sasl_raw",
                NoticeKind::MalformedHeader => "malformed_header",
                NoticeKind::FrameTruncated { .. } => "frame_truncated",
            },
            Notice::Other { name, .. } => name,
        }
    }
}

impl NoticeRecord {
    /// A notice of the capture layer, with its message.
    pub fn new(ts: Timestamp, name: &'static str, message: String) -> Self {
        NoticeRecord::of(ts, Notice::Other { name, message })
    }

    pub fn of(ts: Timestamp, notice: Notice) -> Self {
        NoticeRecord {
            ts,
            notice,
            conn: None,
            direction: None,
            correlation_id: None,
            bytes: None,
        }
    }

    pub fn on_conn(mut self, c: &ConnCtx) -> Self {
        self.conn = Some((c.id, c.client, c.broker));
        self
    }

    pub fn dir(mut self, d: Direction) -> Self {
        self.direction = Some(d);
        self
    }
}

/// One row of `kwire timeline`: one offset a client was told, served, committed or read back.
#[derive(Debug, Clone)]
pub struct TimelineRecord {
    pub ts: Timestamp,
    pub client_id: Name,
    pub client: Endpoint,
    pub broker: Endpoint,
    pub conn: u64,
    pub topic: Name,
    pub partition: i32,
    /// `listoffsets_latest`, `listoffsets_earliest`, `listoffsets_time`, `fetch_request`, `fetch_hwm`,
    /// `fetch_lso`, `fetch_log_start`, `fetched`, `fetch_error`, `produced`, `committed`, `commit_rejected`,
    /// `offset_fetch`.
    pub what: &'static str,
    pub offset: i64,
    pub leader_epoch: Option<i32>,
    pub error: Option<&'static str>,
    pub group: Option<Name>,
}

impl TimelineRecord {
    pub fn new(
        ts: Timestamp,
        client_id: &Name,
        ctx: &ConnCtx,
        tp: &Tp,
        what: &'static str,
        offset: i64,
    ) -> Self {
        TimelineRecord {
            ts,
            client_id: client_id.clone(),
            client: ctx.client,
            broker: ctx.broker,
            conn: ctx.id,
            topic: tp.topic.clone(),
            partition: tp.partition,
            what,
            offset,
            leader_epoch: None,
            error: None,
            group: None,
        }
    }
}
