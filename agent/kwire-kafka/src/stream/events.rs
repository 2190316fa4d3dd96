//! What a Kafka connection tells: [`KafkaEvent`]s (exchanges, requests at send time, orphan responses,
//! notices about the stream) and the per-connection counters [`KafkaStats`]. Plain data, no logic.
//!
//! Easy to get wrong: an [`Exchange`] exists only for a request that was confirmed (framed where framing
//! was known, or answered by a response that decoded); a request's `frame` is the number of the packet that
//! COMPLETED the frame, not the one that began it; [`Decoded::Skipped`] and [`Decoded::Failed`] keep the
//! header's facts (key, version, correlation id, size) even though the body is lost.

use kwire_flow::{Direction, Timestamp};

use crate::body::{BodyError, RequestBody, ResponseBody};

/// A body as far as we could decode it.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded<T> {
    Full(T),
    /// The body did not parse: the reason and the offset in the body.
    Failed(BodyError),
    /// Key or version we have no layout for: reported by header, skipped by length.
    UnknownVersion,
    /// Not decoded: oversized frame or bytes lost inside the frame.
    Skipped(SkipReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    Oversized,
    CaptureGap,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Oversized => "oversized",
            SkipReason::CaptureGap => "capture_gap",
        }
    }
}

impl<T> Decoded<T> {
    pub fn full(&self) -> Option<&T> {
        match self {
            Decoded::Full(t) => Some(t),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RequestInfo {
    /// The header's client id, shared by the connection's requests that repeat it.
    pub client_id: Option<std::sync::Arc<str>>,
    pub bytes: u32,
    pub body: Decoded<RequestBody>,
    /// Number of the captured packet that completed the frame, as the caller numbers packets (see
    /// [`super::KafkaConnection::set_frame`]; 0 = not numbered).
    pub frame: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResponseInfo {
    pub ts: Timestamp,
    pub bytes: u32,
    pub body: Decoded<ResponseBody>,
    /// Number of the captured packet that completed the frame (0 = not numbered).
    pub frame: u64,
}

/// One request and its response (if one came).
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    pub request_ts: Timestamp,
    pub correlation_id: i32,
    pub api_key: i16,
    pub api_version: i16,
    pub request: RequestInfo,
    pub response: Option<ResponseInfo>,
    /// True when no response was required (acks=0 Produce).
    pub response_optional: bool,
}

/// Why framing was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DesyncReason {
    /// A length prefix that no Kafka frame can have.
    BadLength,
    /// Bytes lost by the capture across a frame boundary.
    Gap,
    /// The connection was joined in the middle and the first bytes were not a frame start.
    MidStream,
}

impl DesyncReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DesyncReason::BadLength => "bad_length",
            DesyncReason::Gap => "gap",
            DesyncReason::MidStream => "mid_stream",
        }
    }
}

/// Something about the stream worth telling the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeKind {
    /// Framing lost; scanning for the next frame.
    Desync { reason: DesyncReason },
    /// Framing found again after skipping `skipped_bytes`.
    Resync { skipped_bytes: u64 },
    /// The capture lost `len` bytes inside one frame: that frame is lost, framing kept.
    FrameDamaged { len: u64 },
    /// A frame larger than `max_frame_bytes` was decoded by header only.
    OversizedFrame { len: u64 },
    /// A frame the global memory budget (`memory_budget_bytes`) could not hold while it was gathered:
    /// decoded by header only, its body lost.
    OverBudget { len: u64 },
    /// The connection carries TLS: nothing can be decoded.
    Tls,
    /// Raw SASL tokens follow SaslHandshake v0: counted, never decoded.
    SaslRawStart,
    /// A request header that did not parse (frame skipped by its length).
    MalformedHeader,
    /// The connection ended (or was given up) `missing` bytes before the end of a frame of `total`
    /// bytes (0 when even its length prefix was cut) of which `have` had arrived: that frame is lost.
    FrameTruncated { have: u64, missing: u64, total: u64 },
}

/// A group-membership request at the moment it is sent (JoinGroup, SyncGroup, LeaveGroup,
/// ConsumerGroupHeartbeat): group state must change when the member acts, not when the broker answers
/// (a JoinGroup response can come seconds later, after commits sent in between).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestSent {
    pub ts: Timestamp,
    pub correlation_id: i32,
    pub api_key: i16,
    pub api_version: i16,
    pub client_id: Option<std::sync::Arc<str>>,
    pub body: RequestBody,
}

#[derive(Debug, Clone, PartialEq)]
pub enum KafkaEvent {
    Exchange(Box<Exchange>),
    RequestSent(Box<RequestSent>),
    /// A response whose request was never seen (mid-stream join, or a request lost in a gap).
    Orphan {
        ts: Timestamp,
        correlation_id: i32,
        bytes: u32,
    },
    Notice {
        ts: Timestamp,
        dir: Direction,
        kind: NoticeKind,
    },
}

/// Counters for one connection, and (summed with [`KafkaStats::add`]) for a whole capture: the
/// engine's summary serialises them as they are.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct KafkaStats {
    pub requests: u64,
    pub responses: u64,
    pub orphans: u64,
    pub unanswered: u64,
    pub pending_evicted: u64,
    pub desyncs: u64,
    pub resync_skipped_bytes: u64,
    pub damaged_frames: u64,
    pub oversized_frames: u64,
    pub malformed_headers: u64,
    pub decode_errors: u64,
    pub unknown_versions: u64,
    pub sasl_raw_bytes: u64,
    pub tls_bytes: u64,
    /// Frames the connection ended in the middle of (see [`NoticeKind::FrameTruncated`]).
    pub truncated_frames: u64,
    /// Request frames found by probing (mid-stream join, resync after a gap) that no response ever
    /// confirmed: they may be bytes of a record that read as a request, so nothing of them was reported.
    pub unconfirmed_requests: u64,
    /// Frames decoded by header only because the engine's global memory budget could not hold them
    /// (see [`NoticeKind::OverBudget`]).
    pub budget_cut_frames: u64,
}

impl KafkaStats {
    /// Adds another connection's counters to these.
    pub fn add(&mut self, k: &KafkaStats) {
        self.requests += k.requests;
        self.responses += k.responses;
        self.orphans += k.orphans;
        self.unanswered += k.unanswered;
        self.pending_evicted += k.pending_evicted;
        self.desyncs += k.desyncs;
        self.resync_skipped_bytes += k.resync_skipped_bytes;
        self.damaged_frames += k.damaged_frames;
        self.oversized_frames += k.oversized_frames;
        self.malformed_headers += k.malformed_headers;
        self.decode_errors += k.decode_errors;
        self.unknown_versions += k.unknown_versions;
        self.sasl_raw_bytes += k.sasl_raw_bytes;
        self.tls_bytes += k.tls_bytes;
        self.truncated_frames += k.truncated_frames;
        self.unconfirmed_requests += k.unconfirmed_requests;
        self.budget_cut_frames += k.budget_cut_frames;
    }
}

impl RequestBody {
    /// acks=0 Produce: the broker is not required to answer.
    pub fn expects_no_response(&self) -> bool {
        matches!(self, RequestBody::Produce(p) if p.acks == 0)
    }
}
