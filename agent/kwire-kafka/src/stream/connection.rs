//! The connection: both directions' framers, and what their frames mean. Requests are parsed and wait in
//! a bounded queue; responses are paired with them by correlation id; SASL v0 raw tokens and TLS are
//! recognised; requests framed where framing was only found by probing are held until a response
//! confirms them.
//!
//! [`KafkaConnection::on_data`] is THE entry point for bytes: in-order bytes of one direction with the
//! time of the packet that brought them. Every source feeds it the same way (TCP reassembly, decrypted TLS,
//! plaintext captured at the socket); [`KafkaConnection::on_gap`] says bytes were lost,
//! [`KafkaConnection::on_close`] that the connection ended.
//!
//! Sync epochs: the client direction's framing is trusted when it is known (from the handshake, or since
//! a response answered a request of the current epoch); each loss of sync, and each frame start found by
//! probing, begins a new epoch. A request framed while untrusted is held, its `RequestSent` too, until a
//! response answers its correlation id: that confirms it and the later requests of its epoch (one chain of
//! lengths from a confirmed frame), never the earlier ones. The broker direction needs no epoch: a
//! response is only ever taken for one whose request waits.
//!
//! Easy to get wrong: responses are matched by correlation id against requests of the SAME connection;
//! with duplicate ids the newest waiting request wins over an untrusted older one (record bytes can forge
//! request frames with the very ids the client uses next), and a response that does not decode confirms
//! nothing. After SaslHandshake v0 the client sends raw SASL tokens (length-prefixed but not Kafka
//! requests) and the broker answers likewise: those bytes are counted, never decoded or kept. TLS is
//! detected on a direction's first bytes and the connection ignored.

use kwire_flow::{Budget, Charge, Direction, Timestamp};

use super::events::{
    Decoded, Exchange, KafkaEvent, KafkaStats, NoticeKind, RequestInfo, RequestSent, ResponseInfo,
    SkipReason,
};
use super::framer::{Closed, Env, FrameSink, Framer};
use super::{KafkaConfig, StreamStart};
use crate::api::{self, key};
use crate::body::{self, BodyError, RequestBody, ResponseBody};
use crate::header::{self, be_i16, be_i32};
use crate::pending::{PendingQueue, PendingRequest};
use crate::probe;
use crate::skeleton::Skeleton;

/// How far below the first request seen a response's correlation id may be to be taken as a frame start
/// (an orphan) at the start of a joined stream.
const MAX_JOIN_ORPHAN_DISTANCE: i32 = 1024;

/// Kafka state of one TCP connection. Roles must be known: the caller says which direction is which.
pub struct KafkaConnection {
    to_server: Framer,
    to_client: Framer,
    meaning: Meaning,
    /// Bytes of both directions' buffers charged to the engine's global budget.
    charge: Charge,
}

/// Everything of a connection but its framers: what the frames mean.
struct Meaning {
    pending: PendingQueue<Waiting>,
    tls: bool,
    stats: KafkaStats,
    /// Number of the captured packet whose bytes are being fed (0 = not numbered).
    frame: u64,
    /// Bytes seen per direction (to recognise a direction's first bytes).
    seen: Seen,
    /// Raw SASL tokens flow (after SaslHandshake v0), per direction.
    sasl: RawSasl,
    /// The client direction's sync epoch.
    client_sync: SyncEpoch,
    /// The latest request's client id, shared by the requests that repeat it (see `client_id`).
    client_id: Option<std::sync::Arc<str>>,
}

#[derive(Debug, Default)]
struct Seen {
    to_server: u64,
    to_client: u64,
}

#[derive(Debug, Default)]
struct RawSasl {
    to_server: bool,
    to_client: bool,
}

/// Whether the client direction's framing is known, and which chain of frames it is.
#[derive(Debug)]
struct SyncEpoch {
    /// Framing here is known, not guessed: from the handshake, or from a frame a response confirmed.
    /// Requests framed while false count only once answered.
    trusted: bool,
    /// Incremented each time framing is lost or found by probing: requests remember the epoch they were
    /// framed in, so that a response confirms the chain of frames it belongs to and nothing from before.
    epoch: u32,
}

impl SyncEpoch {
    /// A new chain of frames, trusted only once confirmed.
    fn next(&mut self) {
        self.trusted = false;
        self.epoch = self.epoch.wrapping_add(1);
    }
}

/// A request waiting for its response.
#[derive(Debug)]
struct Waiting {
    /// The exchange as it will be told, boxed when the request is framed: the response is set in place,
    /// so the decoded bodies are not moved again through the queue and the pairing.
    x: Box<Exchange>,
    /// Framed where framing was trusted (see [`SyncEpoch`]), or since confirmed by its response.
    trusted: bool,
    /// The client direction's sync epoch it was framed in.
    epoch: u32,
    /// Its [`RequestSent`] event, held while the request is not trusted.
    sent: Option<Box<RequestSent>>,
}

/// Why a frame's body is not decoded.
#[derive(Debug, Clone)]
enum LostBody {
    Skipped(SkipReason),
    Failed(BodyError),
}

impl LostBody {
    fn decoded<T>(&self) -> Decoded<T> {
        match self {
            LostBody::Skipped(r) => Decoded::Skipped(*r),
            LostBody::Failed(e) => Decoded::Failed(*e),
        }
    }
}

/// A frame of `total` bytes whose body is not decoded (`body` says why); `head` holds its first bytes
/// (after the length prefix), enough for the header.
struct LostFrame<'a> {
    head: &'a [u8],
    total: u64,
    body: LostBody,
}

/// API keys whose requests are also reported when sent.
fn reported_when_sent(api_key: i16) -> bool {
    matches!(
        api_key,
        key::JOIN_GROUP | key::LEAVE_GROUP | key::SYNC_GROUP | key::CONSUMER_GROUP_HEARTBEAT
    )
}

impl KafkaConnection {
    pub fn new(cfg: &KafkaConfig, start: StreamStart) -> Self {
        let framer = |dir| match start {
            StreamStart::Handshake => Framer::at_boundary(dir),
            StreamStart::MidStream => Framer::joining(dir),
        };
        KafkaConnection {
            to_server: framer(Direction::ToServer),
            to_client: framer(Direction::ToClient),
            meaning: Meaning {
                pending: PendingQueue::new(cfg.max_pending),
                tls: false,
                stats: KafkaStats::default(),
                frame: 0,
                seen: Seen::default(),
                sasl: RawSasl::default(),
                client_sync: SyncEpoch {
                    trusted: start == StreamStart::Handshake,
                    epoch: 0,
                },
                client_id: None,
            },
            charge: Charge::default(),
        }
    }

    /// Frame buffers count against `budget`, shared by every connection of an engine: a frame that
    /// would take it past its limit is decoded by header only ([`NoticeKind::OverBudget`]).
    pub fn set_budget(&mut self, budget: &Budget) {
        self.charge = Charge::new(budget);
    }

    /// Charges what the buffers hold now (after each call that may have grown or freed them).
    fn settle(&mut self) {
        let held = self.to_server.held() + self.to_client.held();
        self.charge.settle(held);
    }

    /// The bytes fed next come from captured packet number `n` (as Wireshark numbers a file's packets,
    /// from 1; 0 = not numbered): frames completed by them carry it.
    pub fn set_frame(&mut self, n: u64) {
        self.meaning.frame = n;
    }

    pub fn stats(&self) -> KafkaStats {
        let mut s = self.meaning.stats;
        s.pending_evicted = self.meaning.pending.evicted;
        s
    }

    pub fn is_tls(&self) -> bool {
        self.meaning.tls
    }

    /// In-order bytes of one direction (`dir`), carried by a packet of time `ts`: the one entry point for
    /// bytes, whatever their source. Events come out through `out` in stream order.
    pub fn on_data(
        &mut self,
        cfg: &KafkaConfig,
        dir: Direction,
        ts: Timestamp,
        data: &[u8],
        out: &mut impl FnMut(KafkaEvent),
    ) {
        let m = &mut self.meaning;
        if m.tls {
            m.stats.tls_bytes += data.len() as u64;
            return;
        }
        let seen = match dir {
            Direction::ToServer => &mut m.seen.to_server,
            Direction::ToClient => &mut m.seen.to_client,
        };
        let first = *seen == 0;
        *seen += data.len() as u64;
        if first && probe::is_tls_record(data) {
            m.tls = true;
            m.stats.tls_bytes += data.len() as u64;
            out(KafkaEvent::Notice {
                ts,
                dir,
                kind: NoticeKind::Tls,
            });
            return;
        }
        let framer = match dir {
            Direction::ToServer => &mut self.to_server,
            Direction::ToClient => &mut self.to_client,
        };
        let mut sink = Sink { m, ts, out };
        framer.feed(
            &mut Env {
                cfg,
                charge: &mut self.charge,
                sink: &mut sink,
            },
            data,
        );
        self.meaning.expire(cfg, ts, out);
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
        if !self.meaning.tls {
            let framer = match dir {
                Direction::ToServer => &mut self.to_server,
                Direction::ToClient => &mut self.to_client,
            };
            let mut sink = Sink {
                m: &mut self.meaning,
                ts,
                out,
            };
            framer.gap(&mut sink, len);
        }
        self.settle();
    }

    /// Connection closed or evicted, or end of input: pending requests are completed as unanswered.
    pub fn on_close(&mut self, ts: Timestamp, out: &mut impl FnMut(KafkaEvent)) {
        // A frame the connection ended in the middle of is lost: counted and told, never silent (not a
        // guessed join, nor a frame being skipped after a notice); bytes scanned while resyncing are
        // counted.
        for (dir, framer) in [
            (Direction::ToServer, &mut self.to_server),
            (Direction::ToClient, &mut self.to_client),
        ] {
            match framer.close() {
                Closed::Truncated {
                    have,
                    missing,
                    total,
                } => {
                    self.meaning.stats.truncated_frames += 1;
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
                Closed::Scanning { skipped } => self.meaning.stats.resync_skipped_bytes += skipped,
                Closed::Quiet => {}
            }
        }
        let m = &mut self.meaning;
        let drained: Vec<_> = m.pending.drain().collect();
        for p in drained {
            m.complete(p, None, out);
        }
    }
}

/// The framer's view of the connection while it feeds one direction.
struct Sink<'a, F> {
    m: &'a mut Meaning,
    ts: Timestamp,
    out: &'a mut F,
}

impl<F: FnMut(KafkaEvent)> FrameSink for Sink<'_, F> {
    fn frame(&mut self, dir: Direction, frame: &[u8]) {
        self.m.on_frame(dir, self.ts, Frame::Whole(frame), self.out);
    }

    fn walked(&mut self, dir: Direction, w: &Skeleton, total: u64) {
        if w.failed || !w.complete() {
            // The structure did not parse: report the frame by header, body not decoded.
            self.m.stats.decode_errors += 1;
            let lost = LostFrame {
                head: &w.skel,
                total,
                body: LostBody::Failed(BodyError::Malformed {
                    at: 0,
                    what: "record set structure",
                }),
            };
            self.m.frame_lost(dir, self.ts, lost, self.out);
            return;
        }
        let walked = Frame::Walked { skeleton: w, total };
        self.m.on_frame(dir, self.ts, walked, self.out);
    }

    fn lost(&mut self, dir: Direction, head: &[u8], total: u64, reason: SkipReason) {
        let lost = LostFrame {
            head,
            total,
            body: LostBody::Skipped(reason),
        };
        self.m.frame_lost(dir, self.ts, lost, self.out);
    }

    fn notice(&mut self, dir: Direction, kind: NoticeKind) {
        let s = &mut self.m.stats;
        match kind {
            NoticeKind::Desync { .. } => s.desyncs += 1,
            NoticeKind::Resync { skipped_bytes } => s.resync_skipped_bytes += skipped_bytes,
            NoticeKind::FrameDamaged { .. } => s.damaged_frames += 1,
            NoticeKind::OversizedFrame { .. } => s.oversized_frames += 1,
            NoticeKind::OverBudget { .. } => s.budget_cut_frames += 1,
            _ => {}
        }
        (self.out)(KafkaEvent::Notice {
            ts: self.ts,
            dir,
            kind,
        });
    }

    fn sync_lost(&mut self, dir: Direction) {
        if dir == Direction::ToServer {
            self.m.client_sync.next();
        }
    }

    fn sync_found(&mut self, dir: Direction) {
        if dir == Direction::ToServer {
            self.m.client_sync.next();
        }
    }

    fn raw_sasl(&self, dir: Direction) -> bool {
        match dir {
            Direction::ToServer => self.m.sasl.to_server,
            Direction::ToClient => self.m.sasl.to_client,
        }
    }

    fn raw_sasl_bytes(&mut self, n: u64) {
        self.m.stats.sasl_raw_bytes += n;
    }

    fn awaits(&self, correlation_id: i32) -> bool {
        self.m.pending.contains(correlation_id)
    }

    fn joins_with(&self, c: i32) -> bool {
        // At the very start of a joined stream, a plausible response is accepted when no request is known
        // yet, when it answers one we saw, or when it answers one sent shortly before the first request we
        // saw (correlation ids grow): those are the orphans of the join.
        let pending = &self.m.pending;
        match pending.oldest_correlation_id() {
            None => true,
            Some(o) => pending.contains(c) || (c < o && o - c <= MAX_JOIN_ORPHAN_DISTANCE),
        }
    }

    fn api_of(&self, correlation_id: i32) -> Option<(i16, i16)> {
        self.m.pending.peek(correlation_id)
    }
}

/// A frame as the framer handed it over.
#[derive(Clone, Copy)]
enum Frame<'a> {
    /// A whole frame, length prefix excluded.
    Whole(&'a [u8]),
    /// A walked frame of `total` bytes (prefix included): its skeleton stands for its bytes, and gives
    /// each partition its record-set summary back once decoded.
    Walked { skeleton: &'a Skeleton, total: u64 },
}

impl<'a> Frame<'a> {
    /// The bytes to decode (length prefix excluded).
    fn bytes(self) -> &'a [u8] {
        match self {
            Frame::Whole(b) => b,
            Frame::Walked { skeleton, .. } => &skeleton.skel,
        }
    }

    /// The frame's real size, length prefix included.
    fn total(self) -> u64 {
        match self {
            Frame::Whole(b) => b.len() as u64 + 4,
            Frame::Walked { total, .. } => total,
        }
    }
}

impl Meaning {
    fn on_frame(
        &mut self,
        dir: Direction,
        ts: Timestamp,
        f: Frame<'_>,
        out: &mut impl FnMut(KafkaEvent),
    ) {
        match dir {
            Direction::ToServer => self.on_request(ts, f, out),
            Direction::ToClient => self.on_response(ts, f, out),
        }
    }

    fn on_request(&mut self, ts: Timestamp, f: Frame<'_>, out: &mut impl FnMut(KafkaEvent)) {
        let (frame, total) = (f.bytes(), f.total());
        let bytes = total.min(u64::from(u32::MAX)) as u32;
        if self.sasl.to_server {
            if probe::probe_request_frame(frame) {
                self.sasl.to_server = false;
            } else {
                self.stats.sasl_raw_bytes += u64::from(bytes);
                return;
            }
        }
        let (hdr, body_at) = match header::parse_request_header_raw(frame) {
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
        let body = if api::is_known_version(hdr.api_key, hdr.api_version) {
            let decoded =
                body::decode_request(hdr.api_key, hdr.api_version, body_bytes).map(|mut b| {
                    if let (Frame::Walked { skeleton, .. }, RequestBody::Produce(p)) = (f, &mut b) {
                        skeleton.patch_request(p);
                    }
                    b
                });
            counted(&mut self.stats, decoded)
        } else {
            self.stats.unknown_versions += 1;
            Decoded::UnknownVersion
        };
        let expects_response = !matches!(&body, Decoded::Full(b) if b.expects_no_response());
        let client_id = self.client_id(hdr.client_id);
        let sent = match (reported_when_sent(hdr.api_key), &body) {
            (true, Decoded::Full(b)) => Some(Box::new(RequestSent {
                ts,
                correlation_id: hdr.correlation_id,
                api_key: hdr.api_key,
                api_version: hdr.api_version,
                client_id: client_id.clone(),
                body: b.clone(),
            })),
            _ => None,
        };
        let info = RequestInfo {
            client_id,
            bytes,
            body,
            frame: self.frame,
        };
        let p = self.pending_request(ts, &hdr, info, expects_response, sent, out);
        if let Some(old) = self.pending.push(p) {
            self.complete(old, None, out);
        }
    }

    /// The client id for a header's id bytes: the connection's current one when the bytes are the same
    /// (a client sends one id on all its requests: one allocation per connection), else a new one.
    fn client_id(&mut self, raw: Option<&[u8]>) -> Option<std::sync::Arc<str>> {
        let raw = raw?;
        if self.client_id.as_ref().is_none_or(|c| c.as_bytes() != raw) {
            self.client_id = Some(crate::wire::lossy_string(raw).into());
        }
        self.client_id.clone()
    }

    /// A request just framed, as it waits for its response: trusted (counted, its [`RequestSent`] told
    /// now) when the client direction's framing is, else held until a response confirms it.
    fn pending_request(
        &mut self,
        ts: Timestamp,
        hdr: &header::RawRequestHeader<'_>,
        request: RequestInfo,
        expects_response: bool,
        sent: Option<Box<RequestSent>>,
        out: &mut impl FnMut(KafkaEvent),
    ) -> PendingRequest<Waiting> {
        let x = Box::new(Exchange {
            request_ts: ts,
            correlation_id: hdr.correlation_id,
            api_key: hdr.api_key,
            api_version: hdr.api_version,
            request,
            response: None,
            response_optional: !expects_response,
        });
        let (trusted, epoch) = (self.client_sync.trusted, self.client_sync.epoch);
        let sent = if trusted {
            self.stats.requests += 1;
            if let Some(s) = sent {
                out(KafkaEvent::RequestSent(s));
            }
            None
        } else {
            sent
        };
        PendingRequest {
            correlation_id: hdr.correlation_id,
            api_key: hdr.api_key,
            api_version: hdr.api_version,
            ts,
            expects_response,
            data: Waiting {
                x,
                trusted,
                epoch,
                sent,
            },
        }
    }

    fn on_response(&mut self, ts: Timestamp, f: Frame<'_>, out: &mut impl FnMut(KafkaEvent)) {
        let (frame, total) = (f.bytes(), f.total());
        let bytes = total.min(u64::from(u32::MAX)) as u32;
        let Ok(corr) = be_i32(frame, 0) else {
            if self.sasl.to_client {
                self.stats.sasl_raw_bytes += u64::from(bytes);
            } else {
                self.stats.malformed_headers += 1;
            }
            return;
        };
        let Some((api_key, api_version)) = self.pending.peek(corr) else {
            if self.sasl.to_client {
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
        self.sasl.to_client = false;
        let body = match header::parse_response_header(frame, api_key, api_version) {
            Err(_) => Decoded::Failed(BodyError::Truncated { at: 0 }),
            Ok((_, body_at)) => {
                let body_bytes = frame.get(body_at..).unwrap_or(&[]);
                if api_key == key::SASL_HANDSHAKE
                    && api_version == 0
                    && be_i16(body_bytes, 0) == Ok(0)
                {
                    // SaslHandshake v0 accepted: raw SASL tokens follow in both directions.
                    self.sasl.to_server = true;
                    self.sasl.to_client = true;
                    out(KafkaEvent::Notice {
                        ts,
                        dir: Direction::ToServer,
                        kind: NoticeKind::SaslRawStart,
                    });
                }
                if api::is_known_version(api_key, api_version) {
                    let decoded =
                        body::decode_response(api_key, api_version, body_bytes).map(|mut b| {
                            if let (Frame::Walked { skeleton, .. }, ResponseBody::Fetch(x)) =
                                (f, &mut b)
                            {
                                skeleton.patch_response(x);
                            }
                            b
                        });
                    counted(&mut self.stats, decoded)
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

    /// A frame whose body is lost (oversized, over budget, a capture gap inside it, a walk that failed):
    /// told by its header.
    fn frame_lost(
        &mut self,
        dir: Direction,
        ts: Timestamp,
        lost: LostFrame<'_>,
        out: &mut impl FnMut(KafkaEvent),
    ) {
        let LostFrame { head, total, body } = lost;
        let bytes = total.min(u64::from(u32::MAX)) as u32;
        match dir {
            Direction::ToServer => {
                if self.sasl.to_server {
                    return;
                }
                let Ok((hdr, _)) = header::parse_request_header_raw(head) else {
                    self.stats.malformed_headers += 1;
                    return;
                };
                let info = RequestInfo {
                    client_id: self.client_id(hdr.client_id),
                    bytes,
                    body: body.decoded(),
                    frame: self.frame,
                };
                let p = self.pending_request(ts, &hdr, info, true, None, out);
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
                            body: body.decoded(),
                            frame: self.frame,
                        },
                        out,
                    );
                } else if !self.sasl.to_client {
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
            if epoch == self.client_sync.epoch {
                self.client_sync.trusted = true;
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
        let mut x = p.data.x;
        x.response = resp;
        out(KafkaEvent::Exchange(x));
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
}

/// A body's decode as an exchange carries it; a failure is counted in `decode_errors`.
fn counted<T>(stats: &mut KafkaStats, decoded: Result<T, BodyError>) -> Decoded<T> {
    match decoded {
        Ok(b) => Decoded::Full(b),
        Err(e) => {
            stats.decode_errors += 1;
            Decoded::Failed(e)
        }
    }
}
