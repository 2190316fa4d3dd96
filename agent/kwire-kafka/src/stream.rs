//! One Kafka connection: the bytes of both directions in, [`KafkaEvent`]s out.
//!
//! Per direction a small state machine frames the stream (4-byte length, then exactly that many bytes).
//! Frames that arrive whole in one chunk are decoded in place (no copy); a frame split across chunks is
//! gathered in a per-direction buffer bounded by `max_frame_bytes`. Bigger frames (a 100 MB Fetch
//! response) are decoded by header only and the rest is skipped by count, never buffered whole.
//!
//! Gaps: when the capture lost bytes inside a frame whose length we know, the frame is lost but the
//! framing is not (we skip the rest by count). Otherwise the direction goes to resync: we scan for a
//! plausible request header (client side) or a response whose correlation id we are waiting for (server
//! side). Mid-stream joins start in the same scanning mode, except that the very first bytes may be taken
//! as a frame when they look like one.
//!
//! Easy to get wrong: responses are matched by correlation id against requests of the SAME connection;
//! after SaslHandshake v0 the client sends raw SASL tokens (length-prefixed but not Kafka requests) and
//! the broker answers likewise: those bytes are counted, never decoded or kept. TLS is detected and the
//! connection ignored.

use kwire_flow::{Direction, Timestamp};

use crate::body::{self, BodyError, RequestBody, ResponseBody};
use crate::header::{self, be_i16, be_i32};
use crate::pending::{PendingQueue, PendingRequest};
use crate::probe::{self, Probe, ProbeLimits};
use crate::skeleton::{Shape, Skeleton};

/// Limits of the Kafka layer (per connection unless said otherwise).
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// Largest frame gathered in memory to be decoded whole. Larger frames are decoded by header and
    /// skipped. Default 16 MiB.
    pub max_frame_bytes: usize,
    /// How much of an oversized frame is kept to decode its header. Default 4 KiB.
    pub oversized_peek_bytes: usize,
    /// Requests waiting for a response, per connection. Default 1024.
    pub max_pending: usize,
    /// A request without a response after this much packet time is completed as unanswered. Default 300 s.
    pub pending_max_age_ns: i64,
    /// Bytes kept while scanning for a frame boundary after a gap. Default 256 KiB.
    pub resync_window: usize,
    pub probe: ProbeLimits,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            max_frame_bytes: 16 * 1024 * 1024,
            oversized_peek_bytes: 4096,
            max_pending: 1024,
            pending_max_age_ns: 300 * 1_000_000_000,
            resync_window: 256 * 1024,
            probe: ProbeLimits::default(),
        }
    }
}

/// How a connection's byte streams begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamStart {
    /// The TCP handshake was seen: both directions start on a frame boundary.
    Handshake,
    /// Joined mid-stream: frame boundaries must be found.
    MidStream,
}

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
    pub client_id: Option<String>,
    pub bytes: u32,
    pub body: Decoded<RequestBody>,
    /// Number of the captured packet that completed the frame, as the caller numbers packets (see
    /// [`KafkaConnection::set_frame`]; 0 = not numbered).
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

/// Why a frame's body is not decoded.
#[derive(Debug, Clone)]
enum Lost {
    Skipped(SkipReason),
    Failed(BodyError),
}

impl Lost {
    fn decoded<T>(&self) -> Decoded<T> {
        match self {
            Lost::Skipped(r) => Decoded::Skipped(*r),
            Lost::Failed(e) => Decoded::Failed(e.clone()),
        }
    }
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
    pub client_id: Option<String>,
    pub body: RequestBody,
}

/// API keys whose requests are also reported when sent.
fn reported_when_sent(api_key: i16) -> bool {
    matches!(api_key, 11 | 13 | 14 | 68)
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

/// Counters for one connection (summed by the engine).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// First bytes of a direction joined mid-stream: take them as a frame start if they look like one.
    Start,
    InSync,
    /// Scanning for a frame start in `buf`.
    Resync,
}

/// Where a frame under assembly stands.
#[derive(Debug, Default)]
struct Partial {
    /// Total length of the frame including its 4-byte prefix (0 until the prefix is complete).
    total: u64,
    /// Bytes of the frame still to discard (oversized frame after its peek, or damaged frame).
    skip: u64,
    /// The global memory budget could not hold this frame: only its header is kept (decided once per
    /// frame, when its gathering starts; None until then).
    cut: Option<bool>,
    /// Bytes kept of a frame decoded by header only (oversized or cut): its header, or only its length
    /// prefix when not even the header fits the budget (decided with `cut`).
    peek: Option<u64>,
}

#[derive(Debug)]
struct DirState {
    mode: Mode,
    buf: Vec<u8>,
    partial: Partial,
    /// Bytes discarded while resyncing (reported when framing is found again).
    resync_skipped: u64,
    /// Raw SASL tokens are flowing in this direction (after SaslHandshake v0).
    sasl_raw: bool,
    /// Bytes seen in this direction (to recognise its first bytes).
    seen: u64,
    /// A big Produce request / Fetch response being walked (record bytes skipped, never buffered).
    walker: Option<Box<Skeleton>>,
    /// Frame bytes (after the length prefix) handed to the walker so far.
    walked: u64,
    /// The frame in progress starts where a mid-stream join guessed a header (Start mode) and has not
    /// completed yet: a gap inside it loses sync instead of reporting it as a damaged frame, since the
    /// guess can no longer be confirmed (found by tests/pipeline_props.rs: 1-3 byte segments, the first
    /// ones reordered, bytes 2.. of an ApiVersions request read as a Produce v3 header).
    guessed: bool,
    /// Framing here is known, not guessed: from the handshake, or from a frame the other direction
    /// confirmed (a response answered a request framed in this sync epoch). Requests framed while false
    /// count only once answered.
    trusted: bool,
    /// Incremented each time framing is lost: requests remember the epoch they were framed in, so that a
    /// response confirms the chain of frames it belongs to and nothing from before it.
    epoch: u32,
}

impl DirState {
    fn new(start: StreamStart) -> Self {
        DirState {
            mode: match start {
                StreamStart::Handshake => Mode::InSync,
                StreamStart::MidStream => Mode::Start,
            },
            buf: Vec::new(),
            partial: Partial::default(),
            resync_skipped: 0,
            sasl_raw: false,
            seen: 0,
            walker: None,
            walked: 0,
            guessed: false,
            trusted: start == StreamStart::Handshake,
            epoch: 0,
        }
    }
}

/// A request waiting for its response.
#[derive(Debug)]
struct Waiting {
    info: RequestInfo,
    /// Framed where framing was trusted (see [`DirState::trusted`]), or since confirmed by its response.
    trusted: bool,
    /// The client direction's sync epoch it was framed in.
    epoch: u32,
    /// Its [`RequestSent`] event, held while the request is not trusted.
    sent: Option<Box<RequestSent>>,
}

/// Kafka state of one TCP connection. Roles must be known: the caller says which direction is which.
pub struct KafkaConnection {
    to_server: DirState,
    to_client: DirState,
    pending: PendingQueue<Waiting>,
    tls: bool,
    stats: KafkaStats,
    /// Number of the captured packet whose bytes are being fed (0 = not numbered).
    frame: u64,
    /// Bytes of both directions' buffers charged to the engine's global budget.
    charge: kwire_flow::Charge,
}

/// Frames larger than this that are Produce requests or Fetch responses are walked (record bytes skipped
/// by count) rather than gathered. Smaller frames cost less to gather and decode whole.
const SKELETON_MIN_FRAME: u64 = 8 * 1024;

/// How far below the first request seen a response's correlation id may be to be taken as a frame start
/// (an orphan) at the start of a joined stream.
const MAX_JOIN_ORPHAN_DISTANCE: i32 = 1024;

/// Hard ceiling on any length prefix we follow (2 GiB-1 is the i32 maximum anyway).
const MAX_LENGTH_PREFIX: i32 = i32::MAX;

impl KafkaConnection {
    pub fn new(cfg: &KafkaConfig, start: StreamStart) -> Self {
        KafkaConnection {
            to_server: DirState::new(start),
            to_client: DirState::new(start),
            pending: PendingQueue::new(cfg.max_pending),
            tls: false,
            stats: KafkaStats::default(),
            frame: 0,
            charge: kwire_flow::Charge::default(),
        }
    }

    /// Frame buffers count against `budget`, shared by every connection of an engine: a frame that
    /// would take it past its limit is decoded by header only ([`NoticeKind::OverBudget`]).
    pub fn set_budget(&mut self, budget: &kwire_flow::Budget) {
        self.charge = kwire_flow::Charge::new(budget);
    }

    /// Charges what the buffers hold now (after each call that may have grown or freed them): a frame
    /// admitted for gathering holds its whole size from the start (a reservation), so that connections
    /// gathering at the same time cannot together pass the budget.
    fn settle(&mut self) {
        fn held(d: &DirState) -> u64 {
            let cap = d.buf.capacity() as u64;
            let gathering = d.partial.total > 0
                && d.partial.cut == Some(false)
                && d.partial.skip == 0
                && d.walker.is_none();
            if gathering {
                cap.max(d.partial.total)
            } else {
                cap
            }
        }
        let held = held(&self.to_server) + held(&self.to_client);
        self.charge.settle(held);
    }

    /// The bytes fed next come from captured packet number `n` (as Wireshark numbers a file's packets,
    /// from 1; 0 = not numbered): frames completed by them carry it.
    pub fn set_frame(&mut self, n: u64) {
        self.frame = n;
    }

    pub fn stats(&self) -> KafkaStats {
        let mut s = self.stats;
        s.pending_evicted = self.pending.evicted;
        s
    }

    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// In-order bytes of one direction.
    pub fn on_data(
        &mut self,
        cfg: &KafkaConfig,
        dir: Direction,
        ts: Timestamp,
        mut data: &[u8],
        out: &mut impl FnMut(KafkaEvent),
    ) {
        if self.tls {
            self.stats.tls_bytes += data.len() as u64;
            return;
        }
        let first = self.dir(dir).seen == 0;
        self.dir_mut(dir).seen += data.len() as u64;
        if first {
            if probe::is_tls_record(data) {
                self.tls = true;
                self.stats.tls_bytes += data.len() as u64;
                out(KafkaEvent::Notice {
                    ts,
                    dir,
                    kind: NoticeKind::Tls,
                });
                return;
            }
        }
        while !data.is_empty() {
            let consumed = match self.dir(dir).mode {
                Mode::Start => self.on_start(cfg, dir, ts, data, out),
                Mode::InSync => self.in_sync(cfg, dir, ts, data, out),
                Mode::Resync => self.resync(cfg, dir, ts, data, out),
            };
            data = data.get(consumed..).unwrap_or(&[]);
        }
        self.expire(cfg, ts, out);
        self.settle();
    }

    /// The capture lost `len` bytes of this direction (0 = unknown amount).
    pub fn on_gap(
        &mut self,
        dir: Direction,
        ts: Timestamp,
        len: u64,
        out: &mut impl FnMut(KafkaEvent),
    ) {
        self.on_gap_inner(dir, ts, len, out);
        self.settle();
    }

    fn on_gap_inner(
        &mut self,
        dir: Direction,
        ts: Timestamp,
        len: u64,
        out: &mut impl FnMut(KafkaEvent),
    ) {
        if self.tls {
            return;
        }
        let d = self.dir_mut(dir);
        match d.mode {
            Mode::InSync => {
                let p = &d.partial;
                let mid_frame = p.skip > 0 || !d.buf.is_empty() || d.walker.is_some();
                if mid_frame && p.total > 0 && len > 0 && !d.guessed {
                    let remaining = if p.skip > 0 {
                        p.skip
                    } else if d.walker.is_some() {
                        p.total.saturating_sub(4 + d.walked)
                    } else {
                        p.total - d.buf.len() as u64
                    };
                    if len <= remaining {
                        // Framing survives: the rest of this frame is skipped by count.
                        let was_skipping = p.skip > 0;
                        let mut buffered = std::mem::take(&mut d.buf);
                        if let Some(w) = d.walker.take() {
                            // The walked frame's first bytes (its header) are the skeleton's first bytes.
                            buffered = [0u8; 4].to_vec();
                            buffered.extend_from_slice(&w.skel[..w.skel.len().min(4096)]);
                            d.walked = 0;
                        }
                        d.partial.skip = remaining - len;
                        self.stats.damaged_frames += 1;
                        out(KafkaEvent::Notice {
                            ts,
                            dir,
                            kind: NoticeKind::FrameDamaged { len },
                        });
                        if !was_skipping && buffered.len() >= 4 {
                            // We still have the header: report the exchange with its body lost (its size
                            // is `partial.total`, so that is reset only after).
                            self.frame_lost(dir, ts, &buffered[4..], SkipReason::CaptureGap, out);
                        }
                        let d = self.dir_mut(dir);
                        if d.partial.skip == 0 {
                            d.partial.total = 0;
                        }
                        return;
                    }
                }
                if !mid_frame && len == 0 {
                    return;
                }
                self.lose_sync(dir, ts, DesyncReason::Gap, out);
            }
            Mode::Start => {
                // The bytes held to judge the first header are not contiguous with what follows the gap:
                // gluing them to it would invent a header (found by tests/pipeline_props.rs).
                let d = self.dir_mut(dir);
                d.mode = Mode::Resync;
                d.resync_skipped += d.buf.len() as u64;
                d.buf.clear();
            }
            Mode::Resync => {
                // Whatever we were scanning is no longer contiguous with what comes next.
                let d = self.dir_mut(dir);
                d.resync_skipped += d.buf.len() as u64;
                d.buf.clear();
            }
        }
    }

    /// Connection closed or evicted, or end of input: pending requests are completed as unanswered.
    pub fn on_close(&mut self, ts: Timestamp, out: &mut impl FnMut(KafkaEvent)) {
        // A frame the connection ended in the middle of is lost: counted and told, never silent. Only
        // in sync (a guessed mid-stream header is no frame until confirmed); bytes being skipped after a
        // notice (oversized, damaged) were told already; bytes scanned while resyncing are counted.
        for dir in [Direction::ToServer, Direction::ToClient] {
            let d = self.dir_mut(dir);
            let unfinished = match d.mode {
                Mode::InSync if d.partial.skip == 0 => {
                    let have = if d.walker.is_some() {
                        4 + d.walked
                    } else {
                        d.buf.len() as u64
                    };
                    (have > 0).then(|| {
                        let total = d.partial.total;
                        (have, total.saturating_sub(have), total)
                    })
                }
                Mode::Resync => {
                    let scanned = d.resync_skipped + d.buf.len() as u64;
                    d.resync_skipped = 0;
                    self.stats.resync_skipped_bytes += scanned;
                    None
                }
                _ => None,
            };
            if let Some((have, missing, total)) = unfinished {
                self.stats.truncated_frames += 1;
                out(KafkaEvent::Notice {
                    ts,
                    dir,
                    kind: NoticeKind::FrameTruncated {
                        have,
                        missing,
                        total,
                    },
                });
            }
        }
        let drained: Vec<_> = self.pending.drain().collect();
        for p in drained {
            self.complete(p, None, out);
        }
    }

    fn expire(&mut self, cfg: &KafkaConfig, now: Timestamp, out: &mut impl FnMut(KafkaEvent)) {
        if self.pending.is_empty() {
            return;
        }
        let mut expired = Vec::new();
        self.pending
            .expire(now, cfg.pending_max_age_ns, |p| expired.push(p));
        for p in expired {
            self.complete(p, None, out);
        }
    }

    fn dir(&self, dir: Direction) -> &DirState {
        match dir {
            Direction::ToServer => &self.to_server,
            Direction::ToClient => &self.to_client,
        }
    }

    fn dir_mut(&mut self, dir: Direction) -> &mut DirState {
        match dir {
            Direction::ToServer => &mut self.to_server,
            Direction::ToClient => &mut self.to_client,
        }
    }

    fn lose_sync(
        &mut self,
        dir: Direction,
        ts: Timestamp,
        reason: DesyncReason,
        out: &mut impl FnMut(KafkaEvent),
    ) {
        let d = self.dir_mut(dir);
        d.resync_skipped += d.buf.len() as u64 + d.partial.skip + d.walked;
        d.buf.clear();
        d.walker = None;
        d.walked = 0;
        d.partial = Partial::default();
        d.mode = Mode::Resync;
        d.guessed = false;
        d.trusted = false;
        d.epoch = d.epoch.wrapping_add(1);
        self.stats.desyncs += 1;
        out(KafkaEvent::Notice {
            ts,
            dir,
            kind: NoticeKind::Desync { reason },
        });
    }

    /// First bytes of a direction of a connection joined mid-stream.
    fn on_start(
        &mut self,
        cfg: &KafkaConfig,
        dir: Direction,
        ts: Timestamp,
        data: &[u8],
        out: &mut impl FnMut(KafkaEvent),
    ) -> usize {
        // Accumulate up to 16 bytes to judge the first frame header.
        let d = self.dir_mut(dir);
        let take = data.len().min(16usize.saturating_sub(d.buf.len()));
        d.buf.extend_from_slice(&data[..take]);
        let verdict = match dir {
            Direction::ToServer => probe::probe_request(&d.buf, &cfg.probe),
            Direction::ToClient => {
                // At the very start of a joined stream, a plausible response is accepted when no request is
                // known yet, when it answers one we saw, or when it answers one sent shortly before the
                // first request we saw (correlation ids grow): those are the orphans of the join.
                let pending = &self.pending;
                let oldest = pending.oldest_correlation_id();
                probe::probe_response(&self.to_client.buf, &cfg.probe, |c| match oldest {
                    None => true,
                    Some(o) => pending.contains(c) || (c < o && o - c <= MAX_JOIN_ORPHAN_DISTANCE),
                })
            }
        };
        match verdict {
            Probe::NeedMore if take == data.len() => take,
            Probe::Yes | Probe::NeedMore => {
                // Replay the collected header bytes through the in-sync path.
                let d = self.dir_mut(dir);
                let head = std::mem::take(&mut d.buf);
                d.mode = Mode::InSync;
                d.guessed = true;
                let mut rest = &head[..];
                while !rest.is_empty() && self.dir(dir).mode == Mode::InSync {
                    let n = self.in_sync(cfg, dir, ts, rest, out);
                    rest = &rest[n..];
                }
                if !rest.is_empty() {
                    // Lost sync while replaying: hand what is left to the scanner.
                    self.dir_mut(dir).buf.extend_from_slice(rest);
                }
                take
            }
            Probe::No => {
                let d = self.dir_mut(dir);
                d.mode = Mode::Resync;
                self.stats.desyncs += 1;
                out(KafkaEvent::Notice {
                    ts,
                    dir,
                    kind: NoticeKind::Desync {
                        reason: DesyncReason::MidStream,
                    },
                });
                // The collected bytes stay in `buf` for the scanner.
                take
            }
        }
    }

    /// Framing known. Returns how many bytes of `data` were consumed.
    fn in_sync(
        &mut self,
        cfg: &KafkaConfig,
        dir: Direction,
        ts: Timestamp,
        data: &[u8],
        out: &mut impl FnMut(KafkaEvent),
    ) -> usize {
        // 1. Skipping the tail of an oversized or damaged frame.
        {
            let d = self.dir_mut(dir);
            if d.partial.skip > 0 {
                let n = (d.partial.skip.min(data.len() as u64)) as usize;
                d.partial.skip -= n as u64;
                if d.partial.skip == 0 {
                    d.partial.total = 0;
                    d.guessed = false;
                }
                if d.sasl_raw {
                    self.stats.sasl_raw_bytes += n as u64;
                }
                return n;
            }
        }
        // 2. Fast path: at a frame boundary (nothing buffered, no frame being walked) and the whole frame is
        // in `data`: decode in place.
        if self.dir(dir).buf.is_empty()
            && self.dir(dir).walker.is_none()
            && self.dir(dir).partial.total == 0
        {
            if data.len() >= 4 {
                let len = i32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                if !self.length_ok(dir, len) {
                    self.lose_sync(dir, ts, DesyncReason::BadLength, out);
                    return 0;
                }
                let total = 4 + len as u64;
                if total <= data.len() as u64 && total <= cfg.max_frame_bytes as u64 {
                    let total = total as usize;
                    self.on_frame(cfg, dir, ts, &data[4..total], out);
                    return total;
                }
                let d = self.dir_mut(dir);
                d.partial.total = total;
                d.partial.cut = None;
                d.partial.peek = None;
            }
            // fall through to buffering
        }
        // 3. Gather into the buffer.
        let d = self.dir_mut(dir);
        if d.partial.total == 0 {
            let need = 4 - d.buf.len();
            let n = need.min(data.len());
            d.buf.extend_from_slice(&data[..n]);
            if d.buf.len() < 4 {
                return n;
            }
            let len = i32::from_be_bytes([d.buf[0], d.buf[1], d.buf[2], d.buf[3]]);
            if !self.length_ok(dir, len) {
                self.lose_sync(dir, ts, DesyncReason::BadLength, out);
                return n;
            }
            let d = self.dir_mut(dir);
            d.partial.total = 4 + len as u64;
            d.partial.cut = None;
            d.partial.peek = None;
            return n;
        }
        if d.walker.is_some() {
            return self.feed_walker(cfg, dir, ts, data, out);
        }
        let total = d.partial.total;
        // Big Produce requests and Fetch responses are walked, not gathered: once the bytes that name the
        // API are here (api key + version, or the correlation id), hand the frame to a Skeleton.
        if total > SKELETON_MIN_FRAME && !d.sasl_raw {
            let id_bytes = match dir {
                Direction::ToServer => 12,
                Direction::ToClient => 8,
            };
            if d.buf.len() < id_bytes {
                let n = (id_bytes - d.buf.len()).min(data.len());
                d.buf.extend_from_slice(&data[..n]);
                if d.buf.len() < id_bytes {
                    return n;
                }
                if self.start_walker(cfg, dir) {
                    return n;
                }
                // Not a walked frame: continue gathering below with the rest of this chunk.
                return n;
            }
        }
        let oversized = total > cfg.max_frame_bytes as u64;
        // Gathering a frame grows this connection's buffer: past the engine's global budget only its
        // header is kept, as for an oversized frame (decided once, when gathering starts).
        let cut = !oversized && {
            let d = self.dir(dir);
            let more = total.saturating_sub(d.buf.capacity() as u64);
            match d.partial.cut {
                Some(c) => c,
                None => {
                    let c = more > 0 && !self.charge.fits(more);
                    if c {
                        self.charge.deny(total);
                    }
                    self.dir_mut(dir).partial.cut = Some(c);
                    c
                }
            }
        };
        let target = if oversized || cut {
            let full = (cfg.oversized_peek_bytes as u64 + 4).min(total);
            let have = self.dir(dir).buf.capacity() as u64;
            match self.dir(dir).partial.peek {
                Some(p) => p,
                None => {
                    // Not even the header fits: keep the length prefix only (the frame is lost whole).
                    let p = if self.charge.fits(full.saturating_sub(have)) {
                        full
                    } else {
                        self.charge.deny(full);
                        4
                    };
                    self.dir_mut(dir).partial.peek = Some(p);
                    p
                }
            }
        } else {
            total
        } as usize;
        let d = self.dir_mut(dir);
        let n = (target - d.buf.len()).min(data.len());
        d.buf.extend_from_slice(&data[..n]);
        if d.buf.len() < target {
            return n;
        }
        let frame = std::mem::take(&mut d.buf);
        if oversized || cut {
            d.partial.skip = total - target as u64;
            let kind = if oversized {
                self.stats.oversized_frames += 1;
                NoticeKind::OversizedFrame { len: total - 4 }
            } else {
                self.stats.budget_cut_frames += 1;
                NoticeKind::OverBudget { len: total - 4 }
            };
            out(KafkaEvent::Notice { ts, dir, kind });
            if frame.len() > 4 {
                self.frame_lost(dir, ts, &frame[4..], SkipReason::Oversized, out);
            }
            if self.dir(dir).partial.skip == 0 {
                self.dir_mut(dir).partial.total = 0;
            }
        } else {
            self.dir_mut(dir).partial.total = 0;
            self.on_frame(cfg, dir, ts, &frame[4..], out);
        }
        // Give the allocation back for reuse unless it is large (bounded memory per idle connection).
        let d = self.dir_mut(dir);
        if frame.capacity() <= 64 * 1024 && d.buf.capacity() == 0 {
            let mut frame = frame;
            frame.clear();
            d.buf = frame;
        }
        n
    }

    /// The first bytes of a big frame are buffered: start walking it if it is a Produce request or a
    /// Fetch response. Returns true if a walker took it.
    fn start_walker(&mut self, cfg: &KafkaConfig, dir: Direction) -> bool {
        let d = self.dir(dir);
        let (key, ver, header_flex) = match dir {
            Direction::ToServer => {
                let (Ok(k), Ok(v)) = (be_i16(&d.buf, 4), be_i16(&d.buf, 6)) else {
                    return false;
                };
                (k, v, crate::api::request_header_version(k, v) >= 2)
            }
            Direction::ToClient => {
                let Ok(corr) = be_i32(&d.buf, 4) else {
                    return false;
                };
                let Some((k, v)) = self.pending.peek(corr) else {
                    return false;
                };
                (k, v, crate::api::response_header_version(k, v) >= 1)
            }
        };
        let Some(shape) = Shape::of(key, ver, dir == Direction::ToServer) else {
            return false;
        };
        let mut w = Box::new(Skeleton::new(shape, ver, header_flex, cfg.max_frame_bytes));
        let d = self.dir_mut(dir);
        w.feed(&d.buf[4..]);
        d.walked = (d.buf.len() - 4) as u64;
        d.buf.clear();
        d.walker = Some(w);
        true
    }

    /// Bytes of a frame being walked. Returns bytes consumed.
    fn feed_walker(
        &mut self,
        cfg: &KafkaConfig,
        dir: Direction,
        ts: Timestamp,
        data: &[u8],
        out: &mut impl FnMut(KafkaEvent),
    ) -> usize {
        let d = self.dir_mut(dir);
        let left = d.partial.total.saturating_sub(4).saturating_sub(d.walked);
        let n = (left.min(data.len() as u64)) as usize;
        if let Some(w) = d.walker.as_mut() {
            w.feed(&data[..n]);
        }
        d.walked += n as u64;
        if d.walked + 4 < d.partial.total {
            return n;
        }
        let total = d.partial.total;
        d.partial.total = 0;
        d.walked = 0;
        if let Some(w) = d.walker.take() {
            self.on_walked(cfg, dir, ts, &w, total, out);
        }
        n
    }

    /// A walked frame is complete: decode its skeleton, give partitions their record sets back.
    fn on_walked(
        &mut self,
        cfg: &KafkaConfig,
        dir: Direction,
        ts: Timestamp,
        w: &Skeleton,
        total: u64,
        out: &mut impl FnMut(KafkaEvent),
    ) {
        self.dir_mut(dir).guessed = false;
        if w.failed || !w.complete() {
            // The structure did not parse: report the frame by header, body not decoded.
            self.stats.decode_errors += 1;
            self.frame_lost_sized(
                dir,
                ts,
                &w.skel,
                total,
                Lost::Failed(BodyError::Malformed {
                    at: 0,
                    what: "record set structure",
                }),
                out,
            );
            return;
        }
        let _ = cfg;
        match dir {
            Direction::ToServer => self.on_request_with(ts, &w.skel, total, Some(w), out),
            Direction::ToClient => self.on_response_with(ts, &w.skel, total, Some(w), out),
        }
    }

    fn length_ok(&self, dir: Direction, len: i32) -> bool {
        let min = match dir {
            Direction::ToServer => probe::MIN_REQUEST_LEN,
            Direction::ToClient => probe::MIN_RESPONSE_LEN,
        };
        // Raw SASL tokens may be empty.
        let min = if self.dir(dir).sasl_raw { 0 } else { min };
        (min..MAX_LENGTH_PREFIX).contains(&len)
    }

    /// Scanning for a frame start. Returns bytes consumed.
    fn resync(
        &mut self,
        cfg: &KafkaConfig,
        dir: Direction,
        ts: Timestamp,
        data: &[u8],
        out: &mut impl FnMut(KafkaEvent),
    ) -> usize {
        let d = self.dir_mut(dir);
        let room = cfg.resync_window.saturating_sub(d.buf.len()).max(1);
        let n = room.min(data.len());
        let grow = (d.buf.len() + n).saturating_sub(d.buf.capacity()) as u64;
        if grow > 0 && !self.charge.fits(grow) {
            // Over the global budget: these bytes are skipped unscanned (and what was kept is no longer
            // contiguous with what follows).
            self.charge.deny(n as u64);
            let d = self.dir_mut(dir);
            d.resync_skipped += (d.buf.len() + n) as u64;
            d.buf.clear();
            return n;
        }
        let d = self.dir_mut(dir);
        d.buf.extend_from_slice(&data[..n]);
        let buf = std::mem::take(&mut self.dir_mut(dir).buf);
        let mut found = None;
        let mut need_more_at = None;
        // A request candidate whose whole frame is buffered must decode; one that runs past the buffer is
        // remembered, and a later complete, valid candidate wins over it (a 4-byte "length" inside a body,
        // e.g. a timeout of 1000 ms, reads like a frame start; the real next frame inside its span does not lie).
        let mut incomplete = None;
        for i in 0..buf.len() {
            let rest = &buf[i..];
            let p = match dir {
                Direction::ToServer => match probe::probe_request(rest, &cfg.probe) {
                    Probe::Yes => match probe::confirm_request(rest) {
                        Some(true) => Probe::Yes,
                        Some(false) => Probe::No,
                        None => {
                            incomplete.get_or_insert(i);
                            Probe::No
                        }
                    },
                    other => other,
                },
                Direction::ToClient => {
                    let pending = &self.pending;
                    probe::probe_response(rest, &cfg.probe, |c| pending.contains(c))
                }
            };
            match p {
                Probe::Yes => {
                    found = Some(i);
                    break;
                }
                Probe::NeedMore => {
                    need_more_at = Some(i);
                    break;
                }
                Probe::No => {}
            }
        }
        if found.is_none() {
            if let Some(j) = incomplete {
                // Wait for the rest of that candidate, within the window.
                if buf.len() - j < cfg.resync_window {
                    need_more_at = Some(need_more_at.map_or(j, |k| k.min(j)));
                }
            }
        }
        match found {
            Some(i) => {
                let skipped = self.dir(dir).resync_skipped + i as u64;
                self.stats.resync_skipped_bytes += skipped;
                out(KafkaEvent::Notice {
                    ts,
                    dir,
                    kind: NoticeKind::Resync {
                        skipped_bytes: skipped,
                    },
                });
                let d = self.dir_mut(dir);
                d.resync_skipped = 0;
                d.mode = Mode::InSync;
                // A chain of frames found by probing: its own epoch, trusted only once confirmed.
                d.trusted = false;
                d.epoch = d.epoch.wrapping_add(1);
                let mut rest = &buf[i..];
                while !rest.is_empty() && self.dir(dir).mode == Mode::InSync {
                    let k = self.in_sync(cfg, dir, ts, rest, out);
                    rest = &rest[k..];
                }
                if !rest.is_empty() {
                    self.dir_mut(dir).buf.extend_from_slice(rest);
                }
            }
            None => {
                // Keep the undecided part: from a candidate still waiting for its bytes, else at most the
                // last 64 bytes (a header never needs more).
                let keep_from = match need_more_at {
                    Some(k) if buf.len() - k < cfg.resync_window => k,
                    _ => buf.len().saturating_sub(64),
                };
                let d = self.dir_mut(dir);
                d.resync_skipped += keep_from as u64;
                d.buf.extend_from_slice(&buf[keep_from..]);
            }
        }
        n
    }

    /// A complete frame (without its length prefix).
    fn on_frame(
        &mut self,
        _cfg: &KafkaConfig,
        dir: Direction,
        ts: Timestamp,
        frame: &[u8],
        out: &mut impl FnMut(KafkaEvent),
    ) {
        self.dir_mut(dir).guessed = false;
        match dir {
            Direction::ToServer => self.on_request(ts, frame, out),
            Direction::ToClient => self.on_response(ts, frame, out),
        }
    }

    fn on_request(&mut self, ts: Timestamp, frame: &[u8], out: &mut impl FnMut(KafkaEvent)) {
        self.on_request_with(ts, frame, frame.len() as u64 + 4, None, out)
    }

    /// A request frame (or a walked frame's skeleton, `total` being the real size).
    fn on_request_with(
        &mut self,
        ts: Timestamp,
        frame: &[u8],
        total: u64,
        walked: Option<&Skeleton>,
        out: &mut impl FnMut(KafkaEvent),
    ) {
        let bytes = total.min(u64::from(u32::MAX)) as u32;
        if self.to_server.sasl_raw {
            if probe::probe_request_frame(frame) {
                self.to_server.sasl_raw = false;
            } else {
                self.stats.sasl_raw_bytes += u64::from(bytes);
                return;
            }
        }
        let (hdr, body_at) = match header::parse_request_header(frame) {
            Ok(h) => h,
            Err(_) => {
                self.stats.malformed_headers += 1;
                out(KafkaEvent::Notice {
                    ts,
                    dir: Direction::ToServer,
                    kind: NoticeKind::MalformedHeader,
                });
                return;
            }
        };
        let body_bytes = frame.get(body_at..).unwrap_or(&[]);
        let body = if crate::api::is_known_version(hdr.api_key, hdr.api_version) {
            match body::decode_request(hdr.api_key, hdr.api_version, body_bytes) {
                Ok(mut b) => {
                    if let (Some(w), RequestBody::Produce(p)) = (walked, &mut b) {
                        w.patch_request(p);
                    }
                    Decoded::Full(b)
                }
                Err(e) => {
                    self.stats.decode_errors += 1;
                    Decoded::Failed(e)
                }
            }
        } else {
            self.stats.unknown_versions += 1;
            Decoded::UnknownVersion
        };
        let expects_response = !matches!(&body, Decoded::Full(b) if b.expects_no_response());
        let sent = match (reported_when_sent(hdr.api_key), &body) {
            (true, Decoded::Full(b)) => Some(Box::new(RequestSent {
                ts,
                correlation_id: hdr.correlation_id,
                api_key: hdr.api_key,
                api_version: hdr.api_version,
                client_id: hdr.client_id.clone(),
                body: b.clone(),
            })),
            _ => None,
        };
        let info = RequestInfo {
            client_id: hdr.client_id,
            bytes,
            body,
            frame: self.frame,
        };
        let p = PendingRequest {
            correlation_id: hdr.correlation_id,
            api_key: hdr.api_key,
            api_version: hdr.api_version,
            ts,
            expects_response,
            data: self.waiting(info, sent, out),
        };
        if let Some(old) = self.pending.push(p) {
            self.complete(old, None, out);
        }
    }

    /// A request just framed: trusted (counted, its [`RequestSent`] told now) when the client direction's
    /// framing is, else held until a response confirms it.
    fn waiting(
        &mut self,
        info: RequestInfo,
        sent: Option<Box<RequestSent>>,
        out: &mut impl FnMut(KafkaEvent),
    ) -> Waiting {
        let (trusted, epoch) = (self.to_server.trusted, self.to_server.epoch);
        let sent = if trusted {
            self.stats.requests += 1;
            if let Some(s) = sent {
                out(KafkaEvent::RequestSent(s));
            }
            None
        } else {
            sent
        };
        Waiting {
            info,
            trusted,
            epoch,
            sent,
        }
    }

    fn on_response(&mut self, ts: Timestamp, frame: &[u8], out: &mut impl FnMut(KafkaEvent)) {
        self.on_response_with(ts, frame, frame.len() as u64 + 4, None, out)
    }

    /// A response frame (or a walked frame's skeleton, `total` being the real size).
    fn on_response_with(
        &mut self,
        ts: Timestamp,
        frame: &[u8],
        total: u64,
        walked: Option<&Skeleton>,
        out: &mut impl FnMut(KafkaEvent),
    ) {
        let bytes = total.min(u64::from(u32::MAX)) as u32;
        let Ok(corr) = be_i32(frame, 0) else {
            if self.to_client.sasl_raw {
                self.stats.sasl_raw_bytes += u64::from(bytes);
            } else {
                self.stats.malformed_headers += 1;
            }
            return;
        };
        let Some((api_key, api_version)) = self.pending.peek(corr) else {
            if self.to_client.sasl_raw {
                self.stats.sasl_raw_bytes += u64::from(bytes);
                return;
            }
            self.stats.orphans += 1;
            out(KafkaEvent::Orphan {
                ts,
                correlation_id: corr,
                bytes,
            });
            return;
        };
        self.to_client.sasl_raw = false;
        let body = match header::parse_response_header(frame, api_key, api_version) {
            Err(_) => Decoded::Failed(BodyError::Truncated { at: 0 }),
            Ok((_, body_at)) => {
                let body_bytes = frame.get(body_at..).unwrap_or(&[]);
                if api_key == 17 && api_version == 0 && be_i16(body_bytes, 0) == Ok(0) {
                    // SaslHandshake v0 accepted: raw SASL tokens follow in both directions.
                    self.to_server.sasl_raw = true;
                    self.to_client.sasl_raw = true;
                    out(KafkaEvent::Notice {
                        ts,
                        dir: Direction::ToServer,
                        kind: NoticeKind::SaslRawStart,
                    });
                }
                if crate::api::is_known_version(api_key, api_version) {
                    match body::decode_response(api_key, api_version, body_bytes) {
                        Ok(mut b) => {
                            if let (Some(w), ResponseBody::Fetch(f)) = (walked, &mut b) {
                                w.patch_response(f);
                            }
                            Decoded::Full(b)
                        }
                        Err(e) => {
                            self.stats.decode_errors += 1;
                            Decoded::Failed(e)
                        }
                    }
                } else {
                    Decoded::UnknownVersion
                }
            }
        };
        let frame = self.frame;
        self.pair(
            corr,
            ResponseInfo {
                ts,
                bytes,
                body,
                frame,
            },
            out,
        );
    }

    /// Header of a frame whose body is lost (oversized, or a capture gap inside it).
    fn frame_lost(
        &mut self,
        dir: Direction,
        ts: Timestamp,
        head: &[u8],
        reason: SkipReason,
        out: &mut impl FnMut(KafkaEvent),
    ) {
        let total = self.dir(dir).partial.total;
        self.frame_lost_sized(dir, ts, head, total, Lost::Skipped(reason), out);
    }

    /// A frame of `total` bytes whose body is not decoded (`status` says why); `head` holds its first
    /// bytes (after the length prefix), enough for the header.
    fn frame_lost_sized(
        &mut self,
        dir: Direction,
        ts: Timestamp,
        head: &[u8],
        total: u64,
        status: Lost,
        out: &mut impl FnMut(KafkaEvent),
    ) {
        let bytes = total.min(u64::from(u32::MAX)) as u32;
        match dir {
            Direction::ToServer => {
                if self.to_server.sasl_raw {
                    return;
                }
                let Ok((hdr, _)) = header::parse_request_header(head) else {
                    self.stats.malformed_headers += 1;
                    return;
                };
                let info = RequestInfo {
                    client_id: hdr.client_id,
                    bytes,
                    body: status.decoded(),
                    frame: self.frame,
                };
                let p = PendingRequest {
                    correlation_id: hdr.correlation_id,
                    api_key: hdr.api_key,
                    api_version: hdr.api_version,
                    ts,
                    expects_response: true,
                    data: self.waiting(info, None, out),
                };
                if let Some(old) = self.pending.push(p) {
                    self.complete(old, None, out);
                }
            }
            Direction::ToClient => {
                let Ok(corr) = be_i32(head, 0) else { return };
                if self.pending.contains(corr) {
                    self.pair(
                        corr,
                        ResponseInfo {
                            ts,
                            bytes,
                            body: status.decoded(),
                            frame: self.frame,
                        },
                        out,
                    );
                } else if !self.to_client.sasl_raw {
                    self.stats.orphans += 1;
                    out(KafkaEvent::Orphan {
                        ts,
                        correlation_id: corr,
                        bytes,
                    });
                }
            }
        }
    }

    fn pair(&mut self, corr: i32, resp: ResponseInfo, out: &mut impl FnMut(KafkaEvent)) {
        // Record bytes can forge request frames with the very correlation ids the client uses next: when
        // the oldest request with this id is not trusted and a later one has the same id, the later one
        // is the real request (forged frames precede the real ones they imitate).
        let newest = {
            let mut same_id = self.pending.iter().filter(|p| p.correlation_id == corr);
            let oldest_untrusted = same_id.next().is_some_and(|p| !p.data.trusted);
            oldest_untrusted && same_id.next().is_some()
        };
        let m = if newest {
            self.pending.take_newest(corr)
        } else {
            self.pending.take(corr)
        };
        let Some(m) = m else {
            return;
        };
        for u in m.unanswered {
            self.complete(u, None, out);
        }
        let mut req = m.request;
        if !req.data.trusted && !matches!(resp.body, Decoded::Full(_)) {
            // A response that does not decode as the answer to this request confirms nothing: the request
            // stays unconfirmed and the response is an orphan.
            let bytes = resp.bytes;
            self.complete(req, None, out);
            self.stats.orphans += 1;
            out(KafkaEvent::Orphan {
                ts: resp.ts,
                correlation_id: corr,
                bytes,
            });
            return;
        }
        // Requests held since their framing was found by probing: this answer confirms the request and
        // the frames framed after it in the same epoch (one chain of lengths from a confirmed frame), but
        // nothing before it (record bytes can read as frames that happen to lead to a real boundary).
        let mut later = Vec::new();
        if !req.data.trusted {
            let epoch = req.data.epoch;
            req.data.trusted = true;
            self.stats.requests += 1;
            if let Some(s) = req.data.sent.take() {
                out(KafkaEvent::RequestSent(s));
            }
            for p in self.pending.iter_mut() {
                if !p.data.trusted && p.data.epoch == epoch {
                    p.data.trusted = true;
                    self.stats.requests += 1;
                    later.extend(p.data.sent.take());
                }
            }
            if epoch == self.to_server.epoch {
                self.to_server.trusted = true;
            }
        }
        self.stats.responses += 1;
        self.complete(req, Some(resp), out);
        for s in later {
            out(KafkaEvent::RequestSent(s));
        }
    }

    fn complete(
        &mut self,
        p: PendingRequest<Waiting>,
        resp: Option<ResponseInfo>,
        out: &mut impl FnMut(KafkaEvent),
    ) {
        if !p.data.trusted {
            // Never confirmed: it may be record bytes that read as a request. Nothing of it is told.
            self.stats.unconfirmed_requests += 1;
            return;
        }
        if resp.is_none() && p.expects_response {
            self.stats.unanswered += 1;
        }
        out(KafkaEvent::Exchange(Box::new(Exchange {
            request_ts: p.ts,
            correlation_id: p.correlation_id,
            api_key: p.api_key,
            api_version: p.api_version,
            request: p.data.info,
            response: resp,
            response_optional: !p.expects_response,
        })));
    }
}

impl RequestBody {
    /// acks=0 Produce: the broker is not required to answer.
    pub fn expects_no_response(&self) -> bool {
        matches!(self, RequestBody::Produce(p) if p.acks == 0)
    }
}

#[allow(unused)]
fn _assert_response_body_used(_: &ResponseBody) {}

#[cfg(test)]
mod tests {
    //! Byte-level tests of framing, correlation and the special streams (TLS, raw SASL, acks=0).
    use super::*;

    const T: Timestamp = Timestamp(1_000_000_000);

    /// A request frame: length, api key, version, correlation id, client id "c", body.
    fn req(key: i16, ver: i16, corr: i32, body: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&key.to_be_bytes());
        f.extend_from_slice(&ver.to_be_bytes());
        f.extend_from_slice(&corr.to_be_bytes());
        f.extend_from_slice(&[0, 1, b'c']); // client id "c"
        f.extend_from_slice(body);
        let mut out = (f.len() as i32).to_be_bytes().to_vec();
        out.extend(f);
        out
    }

    /// A response frame (header v0): length, correlation id, body.
    fn resp(corr: i32, body: &[u8]) -> Vec<u8> {
        let mut out = ((4 + body.len()) as i32).to_be_bytes().to_vec();
        out.extend_from_slice(&corr.to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    /// ApiVersions v0: empty request body; response error 0 and no keys.
    const AV_RESP: [u8; 6] = [0, 0, 0, 0, 0, 0];

    /// Produce v3 with the given acks, one topic "t", partition 0, null records.
    fn produce_v3(acks: i16) -> Vec<u8> {
        let mut b = vec![0xFF, 0xFF]; // transactional_id null
        b.extend_from_slice(&acks.to_be_bytes());
        b.extend_from_slice(&1000i32.to_be_bytes()); // timeout
        b.extend_from_slice(&1i32.to_be_bytes()); // 1 topic
        b.extend_from_slice(&[0, 1, b't']);
        b.extend_from_slice(&1i32.to_be_bytes()); // 1 partition
        b.extend_from_slice(&0i32.to_be_bytes()); // partition 0
        b.extend_from_slice(&(-1i32).to_be_bytes()); // records null
        b
    }

    fn produce_v3_resp() -> Vec<u8> {
        let mut b = 1i32.to_be_bytes().to_vec(); // 1 topic
        b.extend_from_slice(&[0, 1, b't']);
        b.extend_from_slice(&1i32.to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes()); // partition
        b.extend_from_slice(&0i16.to_be_bytes()); // error
        b.extend_from_slice(&42i64.to_be_bytes()); // base offset
        b.extend_from_slice(&(-1i64).to_be_bytes()); // log append time
        b.extend_from_slice(&0i32.to_be_bytes()); // throttle
        b
    }

    fn run(start: StreamStart, steps: &[(Direction, Vec<u8>)]) -> (Vec<KafkaEvent>, KafkaStats) {
        let cfg = KafkaConfig::default();
        let mut k = KafkaConnection::new(&cfg, start);
        let mut ev = Vec::new();
        for (d, bytes) in steps {
            k.on_data(&cfg, *d, T, bytes, &mut |e| ev.push(e));
        }
        k.on_close(T, &mut |e| ev.push(e));
        (ev, k.stats())
    }

    fn exchanges(ev: &[KafkaEvent]) -> Vec<&Exchange> {
        ev.iter()
            .filter_map(|e| match e {
                KafkaEvent::Exchange(x) => Some(&**x),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn pipelined_requests_match_by_correlation_id() {
        let mut both = req(18, 0, 7, &[]);
        both.extend(req(18, 0, 8, &[]));
        let mut answers = resp(7, &AV_RESP);
        answers.extend(resp(8, &AV_RESP));
        let (ev, st) = run(
            StreamStart::Handshake,
            &[(Direction::ToServer, both), (Direction::ToClient, answers)],
        );
        let x = exchanges(&ev);
        assert_eq!(
            x.iter().map(|e| e.correlation_id).collect::<Vec<_>>(),
            vec![7, 8]
        );
        assert!(x
            .iter()
            .all(|e| e.response.is_some() && e.request.client_id.as_deref() == Some("c")));
        assert_eq!(
            (st.requests, st.responses, st.orphans, st.unanswered),
            (2, 2, 0, 0)
        );
    }

    #[test]
    fn acks0_with_and_without_a_response() {
        // Apache Kafka: no response to acks=0; the next response completes it as "none required".
        let (ev, st) = run(
            StreamStart::Handshake,
            &[
                (Direction::ToServer, req(0, 3, 1, &produce_v3(0))),
                (Direction::ToServer, req(18, 0, 2, &[])),
                (Direction::ToClient, resp(2, &AV_RESP)),
            ],
        );
        let x = exchanges(&ev);
        assert_eq!(x[0].correlation_id, 1);
        assert!(x[0].response.is_none() && x[0].response_optional);
        assert_eq!(
            st.unanswered, 0,
            "acks=0 without a response is not 'unanswered'"
        );
        // The librdkafka mock and tansu do answer acks=0: matched like any other.
        let (ev, _) = run(
            StreamStart::Handshake,
            &[
                (Direction::ToServer, req(0, 3, 1, &produce_v3(0))),
                (Direction::ToClient, resp(1, &produce_v3_resp())),
            ],
        );
        let x = exchanges(&ev);
        assert!(x[0].response.is_some());
        match &x[0].response.as_ref().unwrap().body {
            Decoded::Full(ResponseBody::Produce(p)) => {
                assert_eq!(p.topics[0].partitions[0].base_offset, 42)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn one_byte_segments_give_the_same_exchange() {
        let r = req(0, 3, 5, &produce_v3(1));
        let a = resp(5, &produce_v3_resp());
        let mut steps: Vec<(Direction, Vec<u8>)> =
            r.iter().map(|b| (Direction::ToServer, vec![*b])).collect();
        steps.extend(a.iter().map(|b| (Direction::ToClient, vec![*b])));
        let (ev, st) = run(StreamStart::Handshake, &steps);
        assert_eq!(exchanges(&ev).len(), 1);
        assert_eq!((st.requests, st.responses), (1, 1));
    }

    #[test]
    fn tls_is_detected_and_not_decoded() {
        let hello = vec![0x16, 0x03, 0x01, 0x00, 0x30, 1, 0, 0, 0x2c, 3, 3];
        let (ev, st) = run(
            StreamStart::Handshake,
            &[
                (Direction::ToServer, hello),
                (Direction::ToClient, vec![0x16, 3, 3, 0, 10, 2]),
            ],
        );
        assert!(ev.iter().any(|e| matches!(
            e,
            KafkaEvent::Notice {
                kind: NoticeKind::Tls,
                ..
            }
        )));
        assert!(exchanges(&ev).is_empty());
        assert_eq!(st.requests, 0);
        assert!(st.tls_bytes > 0);
    }

    #[test]
    fn raw_sasl_tokens_after_handshake_v0_are_counted_not_decoded() {
        let mut mech = vec![0, 5];
        mech.extend_from_slice(b"PLAIN");
        let mut mresp = vec![0, 0, 0, 0, 0, 1, 0, 5]; // error 0, 1 mechanism
        mresp.extend_from_slice(b"PLAIN");
        // The PLAIN token: length-prefixed, "\0user\0secret" (must never be decoded or kept).
        let token = b"\0alice\0s3cret-password";
        let mut tok = (token.len() as i32).to_be_bytes().to_vec();
        tok.extend_from_slice(token);
        let (ev, st) = run(
            StreamStart::Handshake,
            &[
                (Direction::ToServer, req(17, 0, 1, &mech)),
                (Direction::ToClient, resp(1, &mresp)),
                (Direction::ToServer, tok.clone()),
                (Direction::ToClient, vec![0, 0, 0, 0]), // empty server token
                (Direction::ToServer, req(18, 0, 2, &[])),
                (Direction::ToClient, resp(2, &AV_RESP)),
            ],
        );
        assert!(ev.iter().any(|e| matches!(
            e,
            KafkaEvent::Notice {
                kind: NoticeKind::SaslRawStart,
                ..
            }
        )));
        let x = exchanges(&ev);
        assert_eq!(
            x.iter().map(|e| e.api_key).collect::<Vec<_>>(),
            vec![17, 18],
            "Kafka resumes after the tokens"
        );
        assert_eq!(st.sasl_raw_bytes, tok.len() as u64 + 4);
        assert_eq!((st.orphans, st.malformed_headers, st.desyncs), (0, 0, 0));
        assert!(
            !format!("{ev:?}").contains("s3cret"),
            "SASL secrets must never reach an event"
        );
    }

    #[test]
    fn gap_inside_a_frame_keeps_framing() {
        let cfg = KafkaConfig::default();
        let mut k = KafkaConnection::new(&cfg, StreamStart::Handshake);
        let mut ev = Vec::new();
        let big = req(0, 3, 1, &produce_v3(1));
        // First 20 bytes arrive, then 5 bytes are lost, then the rest and another request.
        k.on_data(&cfg, Direction::ToServer, T, &big[..20], &mut |e| {
            ev.push(e)
        });
        k.on_gap(Direction::ToServer, T, 5, &mut |e| ev.push(e));
        k.on_data(&cfg, Direction::ToServer, T, &big[25..], &mut |e| {
            ev.push(e)
        });
        k.on_data(
            &cfg,
            Direction::ToServer,
            T,
            &req(18, 0, 2, &[]),
            &mut |e| ev.push(e),
        );
        k.on_data(
            &cfg,
            Direction::ToClient,
            T,
            &resp(1, &produce_v3_resp()),
            &mut |e| ev.push(e),
        );
        k.on_data(&cfg, Direction::ToClient, T, &resp(2, &AV_RESP), &mut |e| {
            ev.push(e)
        });
        let x = exchanges(&ev);
        assert_eq!(x.len(), 2);
        assert_eq!(x[0].request.body, Decoded::Skipped(SkipReason::CaptureGap));
        assert!(
            x[0].response.is_some(),
            "the damaged request's response still pairs"
        );
        assert_eq!(k.stats().desyncs, 0);
        assert_eq!(k.stats().damaged_frames, 1);
    }

    #[test]
    fn oversized_frames_are_decoded_by_header_and_skipped() {
        let cfg = KafkaConfig {
            max_frame_bytes: 64,
            ..KafkaConfig::default()
        };
        let mut k = KafkaConnection::new(&cfg, StreamStart::Handshake);
        let mut ev = Vec::new();
        let mut body = produce_v3(1);
        body.extend(std::iter::repeat_n(0u8, 500));
        let big = req(0, 3, 9, &body);
        for chunk in big.chunks(100) {
            k.on_data(&cfg, Direction::ToServer, T, chunk, &mut |e| ev.push(e));
        }
        k.on_data(
            &cfg,
            Direction::ToServer,
            T,
            &req(18, 0, 10, &[]),
            &mut |e| ev.push(e),
        );
        let mut answers = resp(9, &produce_v3_resp());
        answers.extend(resp(10, &AV_RESP));
        k.on_data(&cfg, Direction::ToClient, T, &answers, &mut |e| ev.push(e));
        let x = exchanges(&ev);
        assert_eq!(x.len(), 2);
        assert_eq!((x[0].api_key, x[0].correlation_id), (0, 9));
        assert_eq!(x[0].request.body, Decoded::Skipped(SkipReason::Oversized));
        assert_eq!(x[0].request.bytes as usize, big.len());
        assert_eq!(k.stats().oversized_frames, 1);
    }

    #[test]
    fn mid_stream_join_resyncs_and_counts_orphans() {
        let first = req(0, 3, 1, &produce_v3(1));
        // Joined 7 bytes into a request and in the middle of the broker's stream.
        let (ev, st) = run(
            StreamStart::MidStream,
            &[
                (
                    Direction::ToServer,
                    [&first[7..], &req(18, 0, 2, &[])[..]].concat(),
                ),
                (
                    Direction::ToClient,
                    [resp(1, &produce_v3_resp()), resp(2, &AV_RESP)].concat(),
                ),
            ],
        );
        let x = exchanges(&ev);
        assert_eq!(x.len(), 1, "{ev:?}");
        assert_eq!(x[0].correlation_id, 2);
        assert!(x[0].response.is_some());
        assert_eq!(
            st.orphans, 1,
            "the response to the request we joined in the middle of: {ev:?}"
        );
        assert!(st.resync_skipped_bytes >= (first.len() - 7) as u64);
    }
}
