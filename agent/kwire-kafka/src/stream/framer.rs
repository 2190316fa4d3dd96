//! The framer: one direction's bytes in, frames out. Kafka frames are a 4-byte big-endian length, then
//! exactly that many bytes. One [`State`] says where the direction stands; every transition is in this file
//! and drawn in ARCHITECTURE.md ("The framer").
//!
//! What it tells the connection ([`FrameSink`]): a whole frame (decoded in place when it arrived in one
//! chunk, else gathered in a buffer bounded by `max_frame_bytes`), a walked frame (a big Produce request or
//! Fetch response whose record bytes were skipped by count, see `skeleton`), a frame whose body is lost
//! (oversized, over the memory budget, or damaged by a capture gap: its header is still told), notices,
//! and sync lost / found by probing (which start a new sync epoch on the connection).
//!
//! Gaps: when the capture lost bytes inside a frame whose length we know, that frame is lost but the framing
//! is not (the rest is skipped by count). Otherwise the direction goes to [`State::Scanning`]: it looks for
//! a plausible request header (client side, confirmed by a whole-frame decode when the frame is at hand) or
//! a response whose correlation id we are waiting for (server side). A direction joined mid-stream starts
//! in [`State::Joining`]: its very first bytes are taken as a frame start when they look like one
//! ([`Origin::Guessed`]), else it scans.
//!
//! Easy to get wrong: a header guessed at a join is no frame until its frame completes: a gap inside it
//! loses sync instead of being reported as a damaged frame (found by tests/pipeline_props.rs: 1-3 byte
//! segments, the first ones reordered, bytes 2.. of an ApiVersions request read as a Produce v3 header).
//! Its frame ending, whichever way (decoded, walked, told by header, skipped to its end), ends the guess.
//! The bytes held to judge a join, or being scanned, are not contiguous with what follows a gap: gluing
//! them to it would invent a header. Decisions that cost memory (gather whole or keep the header only)
//! are taken once per frame, when its gathering starts, and a frame admitted whole holds its full size in
//! the budget from the start, so that connections gathering together cannot pass it.

use kwire_flow::{Charge, Direction};

use super::events::{DesyncReason, NoticeKind, SkipReason};
use super::KafkaConfig;
use crate::api;
use crate::header::{be_i16, be_i32};
use crate::parse::Parse;
use crate::probe;
use crate::skeleton::{Shape, Skeleton};

/// Produce requests and Fetch responses larger than this may be walked (record bytes skipped by count,
/// the frame never held) rather than gathered whole; smaller frames are always gathered.
const SKELETON_MIN_FRAME: u64 = 8 * 1024;
/// ... and up to this size they are still gathered whole when the memory budget holds them (walked when
/// it does not, so a budget under pressure costs no decoding): a walk costs ~5,800 instructions a frame
/// before its skeleton is decoded, and copying up to 32 KiB that the kernel just wrote into the read
/// buffer costs less. Measured on the realistic 1500-byte bench file (2026-12-07): walking from 8 KiB
/// -> from 32 KiB was -2.4% instructions and ~-2.7% CPU (pinned medians of 15 alternating runs), from
/// 64 KiB +0.6% against 32 KiB; same output but the memory budget's peak (234 KB -> 649 KB).
const GATHER_PREFERRED_MAX: u64 = 32 * 1024;

/// Hard ceiling on any length prefix we follow (2 GiB-1 is the i32 maximum anyway).
const MAX_LENGTH_PREFIX: i32 = i32::MAX;

/// Bytes gathered at a join to judge the first header.
const JOIN_PEEK: usize = 16;

/// A gathered frame's allocation is kept for the next one up to this size (bounded memory per idle
/// connection).
const REUSE_MAX: usize = 64 * 1024;

/// What the framer tells, and asks, the connection it frames for. Calls come in stream order.
pub(super) trait FrameSink {
    /// A whole frame (length prefix excluded).
    fn frame(&mut self, dir: Direction, frame: &[u8]);
    /// A walked frame of `total` bytes (prefix included).
    fn walked(&mut self, dir: Direction, skeleton: &Skeleton, total: u64);
    /// A frame of `total` bytes whose body is lost; `head` holds its first bytes after the prefix.
    fn lost(&mut self, dir: Direction, head: &[u8], total: u64, reason: SkipReason);
    /// Something about the stream (desync, resync, damaged, oversized, over budget).
    fn notice(&mut self, dir: Direction, kind: NoticeKind);
    /// Framing was lost: what follows is scanned, and frames found belong to a new sync epoch.
    fn sync_lost(&mut self, dir: Direction);
    /// Framing was found by probing: a new sync epoch, trusted only once a response confirms it.
    fn sync_found(&mut self, dir: Direction);
    /// Raw SASL tokens flow in this direction (after SaslHandshake v0): any length, counted not decoded.
    fn raw_sasl(&self, dir: Direction) -> bool;
    /// Bytes of raw SASL tokens skipped by count.
    fn raw_sasl_bytes(&mut self, n: u64);
    /// A request with this correlation id waits for its response.
    fn awaits(&self, correlation_id: i32) -> bool;
    /// May the first response seen after a join carry this correlation id?
    fn joins_with(&self, correlation_id: i32) -> bool;
    /// Key and version of the request waiting with this correlation id.
    fn api_of(&self, correlation_id: i32) -> Option<(i16, i16)>;
}

/// What a call needs besides the bytes.
pub(super) struct Env<'a, S> {
    pub cfg: &'a KafkaConfig,
    /// The engine's global memory budget, as this connection holds it.
    pub charge: &'a mut Charge,
    pub sink: &'a mut S,
}

/// Where a frame in progress starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Where framing is known (handshake, a previous frame, a frame found by scanning).
    Framed,
    /// At a header guessed from the first bytes of a direction joined mid-stream.
    Guessed,
}

/// Why a frame is decoded by header only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// Larger than `max_frame_bytes`.
    Oversized,
    /// The global memory budget could not hold it.
    OverBudget,
}

/// How much of a frame being gathered is kept (decided once, when its gathering starts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    Undecided,
    /// The whole frame (its size is reserved in the budget).
    Whole,
    /// Its first `bytes` (prefix included: the header, or only the prefix when not even the header
    /// fits the budget); the rest is skipped.
    Head {
        bytes: u64,
        cut: Cut,
    },
}

/// Where one direction stands. `buf` (beside the state, so its allocation is reused) holds what the state
/// says.
#[derive(Debug)]
enum State {
    /// First bytes of a direction joined mid-stream: up to 16 are held in `buf` until they can be judged.
    Joining,
    /// Between frames; `buf` holds 0 to 3 bytes of the next length prefix. The next frame starts at
    /// `origin`.
    Boundary { origin: Origin },
    /// A frame of `total` bytes (prefix included) being gathered in `buf`.
    Gathering {
        total: u64,
        origin: Origin,
        keep: Keep,
    },
    /// A big Produce request / Fetch response being walked: `walked` bytes after the prefix went to the
    /// skeleton (record bytes skipped, never buffered). `buf` is empty.
    Walking {
        total: u64,
        walked: u64,
        skeleton: Box<Skeleton>,
        origin: Origin,
    },
    /// The rest of a frame, `left` bytes, is skipped by count (after its header, or a gap). `buf` is empty.
    Skipping { left: u64, origin: Origin },
    /// Framing lost: scanning `buf` (bounded by `resync_window`) for a frame start; `skipped` bytes were
    /// discarded so far (told when framing is found again).
    Scanning { skipped: u64 },
}

/// How a direction ended (see [`Framer::close`]).
pub(super) enum Closed {
    /// In the middle of a frame: `have` of its `total` bytes (0 when even its length prefix was cut) had
    /// arrived, `missing` had not.
    Truncated { have: u64, missing: u64, total: u64 },
    /// While scanning: these bytes were skipped.
    Scanning { skipped: u64 },
    /// At a boundary, or where the loss was told already (skipping) or nothing is known (joining).
    Quiet,
}

/// One direction's framing.
#[derive(Debug)]
pub(super) struct Framer {
    dir: Direction,
    state: State,
    buf: Vec<u8>,
}

impl Framer {
    /// A direction starting at a frame boundary (the handshake was seen).
    pub fn at_boundary(dir: Direction) -> Self {
        Framer {
            dir,
            state: State::Boundary {
                origin: Origin::Framed,
            },
            buf: Vec::new(),
        }
    }

    /// A direction joined mid-stream.
    pub fn joining(dir: Direction) -> Self {
        Framer {
            dir,
            state: State::Joining,
            buf: Vec::new(),
        }
    }

    /// Bytes this direction holds against the budget: its buffer, or a whole frame's size from the start
    /// of its gathering (a reservation).
    pub fn held(&self) -> u64 {
        let cap = self.buf.capacity() as u64;
        match self.state {
            State::Gathering {
                total,
                keep: Keep::Whole,
                ..
            } => cap.max(total),
            _ => cap,
        }
    }

    /// In-order bytes of this direction.
    pub fn feed<S: FrameSink>(&mut self, env: &mut Env<'_, S>, mut data: &[u8]) {
        while !data.is_empty() {
            let consumed = match self.state {
                State::Joining => self.join(env, data),
                State::Scanning { .. } => self.scan(env, data),
                _ => self.framed(env, data),
            };
            data = data.get(consumed..).unwrap_or(&[]);
        }
    }

    fn scanning(&self) -> bool {
        matches!(self.state, State::Scanning { .. })
    }

    /// Feeds held bytes (a judged join, a found frame start) through the framed states; what is left
    /// when sync is lost again stays in `buf` for the scanner.
    fn replay<S: FrameSink>(&mut self, env: &mut Env<'_, S>, mut rest: &[u8]) {
        while !rest.is_empty() && !self.scanning() {
            let n = self.framed(env, rest);
            rest = &rest[n..];
        }
        if !rest.is_empty() {
            self.buf.extend_from_slice(rest);
        }
    }

    /// The capture lost `len` bytes of this direction (0 = unknown amount).
    pub fn gap(&mut self, sink: &mut impl FrameSink, len: u64) {
        match &mut self.state {
            State::Joining => {
                // The bytes held to judge the first header are not contiguous with what follows the gap.
                let skipped = self.buf.len() as u64;
                self.buf.clear();
                self.state = State::Scanning { skipped };
            }
            State::Scanning { skipped } => {
                // Whatever we were scanning is no longer contiguous with what comes next.
                *skipped += self.buf.len() as u64;
                self.buf.clear();
            }
            State::Boundary { .. } if self.buf.is_empty() && len == 0 => {}
            State::Boundary { .. } => self.lose_sync(sink, DesyncReason::Gap),
            State::Gathering { .. } | State::Walking { .. } | State::Skipping { .. } => {
                if !self.damage(sink, len) {
                    self.lose_sync(sink, DesyncReason::Gap);
                }
            }
        }
    }

    /// A gap of `len` bytes inside a frame of known length: when it ends inside the same frame, the frame
    /// is lost (its header still told) and framing survives. False when framing cannot survive: unknown
    /// amount, a gap past the frame's end, or a frame started at a guessed header.
    fn damage(&mut self, sink: &mut impl FrameSink, len: u64) -> bool {
        let (total, remaining, origin) = match &self.state {
            State::Gathering { total, origin, .. } => {
                (*total, total - self.buf.len() as u64, *origin)
            }
            State::Walking {
                total,
                walked,
                origin,
                ..
            } => (*total, total.saturating_sub(4 + walked), *origin),
            State::Skipping { left, origin } => (0, *left, *origin),
            _ => return false,
        };
        if len == 0 || len > remaining || origin == Origin::Guessed {
            return false;
        }
        let state = std::mem::replace(
            &mut self.state,
            State::Boundary {
                origin: Origin::Framed,
            },
        );
        // What we have of the frame's start, to tell its header (none when it was being skipped: its
        // header was told already). The buffer's allocation goes with it.
        let buffered = std::mem::take(&mut self.buf);
        let head = match state {
            State::Gathering { .. } => Some(buffered),
            State::Walking { skeleton, .. } => {
                // The walked frame's first bytes (its header) are the skeleton's first bytes.
                let mut head = vec![0u8; 4];
                head.extend_from_slice(&skeleton.skel[..skeleton.skel.len().min(4096)]);
                Some(head)
            }
            _ => None,
        };
        let left = remaining - len;
        if left > 0 {
            self.state = State::Skipping {
                left,
                origin: Origin::Framed,
            };
        }
        sink.notice(self.dir, NoticeKind::FrameDamaged { len });
        if let Some(head) = head.filter(|h| h.len() >= 4) {
            sink.lost(self.dir, &head[4..], total, SkipReason::CaptureGap);
        }
        true
    }

    /// The direction ended (connection closed, evicted, or end of input).
    pub fn close(&mut self) -> Closed {
        match &mut self.state {
            State::Boundary { .. } | State::Gathering { .. } if !self.buf.is_empty() => {
                let have = self.buf.len() as u64;
                let total = match self.state {
                    State::Gathering { total, .. } => total,
                    _ => 0,
                };
                Closed::Truncated {
                    have,
                    missing: total.saturating_sub(have),
                    total,
                }
            }
            State::Walking { total, walked, .. } => {
                let have = 4 + *walked;
                Closed::Truncated {
                    have,
                    missing: total.saturating_sub(have),
                    total: *total,
                }
            }
            State::Scanning { skipped } => {
                let scanned = *skipped + self.buf.len() as u64;
                *skipped = 0;
                Closed::Scanning { skipped: scanned }
            }
            _ => Closed::Quiet,
        }
    }

    fn lose_sync(&mut self, sink: &mut impl FrameSink, reason: DesyncReason) {
        let held = match self.state {
            State::Skipping { left, .. } => left,
            State::Walking { walked, .. } => walked,
            _ => 0,
        };
        let skipped = self.buf.len() as u64 + held;
        self.buf.clear();
        self.state = State::Scanning { skipped };
        sink.sync_lost(self.dir);
        sink.notice(self.dir, NoticeKind::Desync { reason });
    }

    /// First bytes of a direction joined mid-stream: a frame start if they look like one.
    fn join<S: FrameSink>(&mut self, env: &mut Env<'_, S>, data: &[u8]) -> usize {
        let take = data.len().min(JOIN_PEEK.saturating_sub(self.buf.len()));
        self.buf.extend_from_slice(&data[..take]);
        let verdict = match self.dir {
            Direction::ToServer => probe::probe_request(&self.buf, &env.cfg.probe),
            Direction::ToClient => {
                let sink = &*env.sink;
                probe::probe_response(&self.buf, &env.cfg.probe, |c| sink.joins_with(c))
            }
        };
        match verdict {
            Parse::NeedMore(_) if take == data.len() => {}
            Parse::Done(..) | Parse::NeedMore(_) => {
                // Replay the collected header bytes through the framed states.
                let head = std::mem::take(&mut self.buf);
                self.state = State::Boundary {
                    origin: Origin::Guessed,
                };
                self.replay(env, &head);
            }
            Parse::Broken { .. } => {
                // The collected bytes stay in `buf` for the scanner.
                self.state = State::Scanning { skipped: 0 };
                env.sink.notice(
                    self.dir,
                    NoticeKind::Desync {
                        reason: DesyncReason::MidStream,
                    },
                );
            }
        }
        take
    }

    fn length_ok<S: FrameSink>(&self, env: &Env<'_, S>, len: i32) -> bool {
        // Raw SASL tokens may be empty.
        let min = if env.sink.raw_sasl(self.dir) {
            0
        } else {
            match self.dir {
                Direction::ToServer => probe::MIN_REQUEST_LEN,
                Direction::ToClient => probe::MIN_RESPONSE_LEN,
            }
        };
        (min..MAX_LENGTH_PREFIX).contains(&len)
    }

    /// Framing known (every state but joining and scanning). Returns how many bytes of `data` were
    /// consumed (0 when only the state changed).
    fn framed<S: FrameSink>(&mut self, env: &mut Env<'_, S>, data: &[u8]) -> usize {
        match &mut self.state {
            State::Skipping { left, .. } => {
                let n = (*left).min(data.len() as u64);
                *left -= n;
                if *left == 0 {
                    self.state = State::Boundary {
                        origin: Origin::Framed,
                    };
                }
                if env.sink.raw_sasl(self.dir) {
                    env.sink.raw_sasl_bytes(n);
                }
                n as usize
            }
            State::Boundary { origin } => {
                let origin = *origin;
                self.boundary(env, data, origin)
            }
            State::Gathering { .. } => self.gather(env, data),
            State::Walking { .. } => self.walk(env, data),
            State::Joining | State::Scanning { .. } => 0,
        }
    }

    fn boundary<S: FrameSink>(
        &mut self,
        env: &mut Env<'_, S>,
        data: &[u8],
        origin: Origin,
    ) -> usize {
        if self.buf.is_empty() && data.len() >= 4 {
            // Fast path: the whole frame is in `data`: decode in place.
            let len = i32::from_be_bytes([data[0], data[1], data[2], data[3]]);
            if !self.length_ok(env, len) {
                self.lose_sync(env.sink, DesyncReason::BadLength);
                return 0;
            }
            let total = 4 + len as u64;
            if total <= data.len() as u64 && total <= env.cfg.max_frame_bytes as u64 {
                let total = total as usize;
                self.state = State::Boundary {
                    origin: Origin::Framed,
                };
                env.sink.frame(self.dir, &data[4..total]);
                return total;
            }
            self.state = State::Gathering {
                total,
                origin,
                keep: Keep::Undecided,
            };
            return 0;
        }
        // Gather the length prefix.
        let n = (4 - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() < 4 {
            return n;
        }
        let len = i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        if !self.length_ok(env, len) {
            self.lose_sync(env.sink, DesyncReason::BadLength);
            return n;
        }
        self.state = State::Gathering {
            total: 4 + len as u64,
            origin,
            keep: Keep::Undecided,
        };
        n
    }

    fn gather<S: FrameSink>(&mut self, env: &mut Env<'_, S>, data: &[u8]) -> usize {
        let State::Gathering {
            total,
            origin,
            keep,
        } = self.state
        else {
            return 0;
        };
        // Big Produce requests and Fetch responses are walked, not gathered: once the bytes that name the
        // API are here (api key + version, or the correlation id), hand the frame to a Skeleton.
        let walk = total > GATHER_PREFERRED_MAX
            || (total > SKELETON_MIN_FRAME
                && keep == Keep::Undecided
                && !self.fits_whole(env, total));
        if walk && !env.sink.raw_sasl(self.dir) {
            let id_bytes = match self.dir {
                Direction::ToServer => 12,
                Direction::ToClient => 8,
            };
            if self.buf.len() < id_bytes {
                let n = (id_bytes - self.buf.len()).min(data.len());
                self.buf.extend_from_slice(&data[..n]);
                if self.buf.len() == id_bytes {
                    // Else not a walked frame: gathered with the rest.
                    self.start_walk(env, total, origin);
                }
                return n;
            }
        }
        let keep = match keep {
            Keep::Undecided => self.decide_keep(env, total),
            decided => decided,
        };
        self.state = State::Gathering {
            total,
            origin,
            keep,
        };
        let target = match keep {
            Keep::Head { bytes, .. } => bytes,
            _ => total,
        } as usize;
        let n = (target - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() < target {
            return n;
        }
        let frame = std::mem::take(&mut self.buf);
        match keep {
            Keep::Head { bytes, cut } => {
                let left = total - bytes;
                // The rest is skipped at the frame's footing; a frame that ends here ends its guess.
                self.state = if left > 0 {
                    State::Skipping { left, origin }
                } else {
                    State::Boundary {
                        origin: Origin::Framed,
                    }
                };
                let kind = match cut {
                    Cut::Oversized => NoticeKind::OversizedFrame { len: total - 4 },
                    Cut::OverBudget => NoticeKind::OverBudget { len: total - 4 },
                };
                env.sink.notice(self.dir, kind);
                if frame.len() > 4 {
                    env.sink
                        .lost(self.dir, &frame[4..], total, SkipReason::Oversized);
                }
            }
            _ => {
                self.state = State::Boundary {
                    origin: Origin::Framed,
                };
                env.sink.frame(self.dir, &frame[4..]);
            }
        }
        // Give the allocation back for reuse unless it is large.
        if frame.capacity() <= REUSE_MAX && self.buf.capacity() == 0 {
            let mut frame = frame;
            frame.clear();
            self.buf = frame;
        }
        n
    }

    /// Whether the frame could be gathered whole now: not oversized, and the buffer's growth (none when
    /// its capacity already holds the frame) fits the budget.
    fn fits_whole<S: FrameSink>(&self, env: &Env<'_, S>, total: u64) -> bool {
        let more = total.saturating_sub(self.buf.capacity() as u64);
        total <= env.cfg.max_frame_bytes as u64 && (more == 0 || env.charge.fits(more))
    }

    /// Gathering a frame grows this connection's buffer: an oversized frame, or one past the engine's
    /// global budget, keeps only its header (or only its length prefix when not even that fits).
    fn decide_keep<S: FrameSink>(&self, env: &mut Env<'_, S>, total: u64) -> Keep {
        let cap = self.buf.capacity() as u64;
        let cut = if total > env.cfg.max_frame_bytes as u64 {
            Cut::Oversized
        } else if self.fits_whole(env, total) {
            return Keep::Whole;
        } else {
            env.charge.deny(total);
            Cut::OverBudget
        };
        let full = (env.cfg.oversized_peek_bytes as u64 + 4).min(total);
        let bytes = if env.charge.fits(full.saturating_sub(cap)) {
            full
        } else {
            env.charge.deny(full);
            4
        };
        Keep::Head { bytes, cut }
    }

    /// The first bytes of a big frame are in `buf`: walk it if it is a Produce request or a Fetch response.
    fn start_walk<S: FrameSink>(&mut self, env: &mut Env<'_, S>, total: u64, origin: Origin) {
        let (key, ver, header_flex) = match self.dir {
            Direction::ToServer => {
                let (Ok(k), Ok(v)) = (be_i16(&self.buf, 4), be_i16(&self.buf, 6)) else {
                    return;
                };
                (k, v, api::request_header_version(k, v) >= 2)
            }
            Direction::ToClient => {
                let Ok(corr) = be_i32(&self.buf, 4) else {
                    return;
                };
                let Some((k, v)) = env.sink.api_of(corr) else {
                    return;
                };
                (k, v, api::response_header_version(k, v) >= 1)
            }
        };
        let Some(shape) = Shape::of(key, ver, self.dir == Direction::ToServer) else {
            return;
        };
        let mut skeleton = Box::new(Skeleton::new(
            shape,
            ver,
            header_flex,
            env.cfg.max_frame_bytes,
        ));
        skeleton.feed(&self.buf[4..]);
        let walked = (self.buf.len() - 4) as u64;
        self.buf.clear();
        self.state = State::Walking {
            total,
            walked,
            skeleton,
            origin,
        };
    }

    /// Bytes of a frame being walked.
    fn walk<S: FrameSink>(&mut self, env: &mut Env<'_, S>, data: &[u8]) -> usize {
        let State::Walking {
            total,
            walked,
            skeleton,
            ..
        } = &mut self.state
        else {
            return 0;
        };
        let left = total.saturating_sub(4).saturating_sub(*walked);
        let n = (left.min(data.len() as u64)) as usize;
        skeleton.feed(&data[..n]);
        *walked += n as u64;
        if *walked + 4 < *total {
            return n;
        }
        let done = std::mem::replace(
            &mut self.state,
            State::Boundary {
                origin: Origin::Framed,
            },
        );
        if let State::Walking {
            total, skeleton, ..
        } = done
        {
            env.sink.walked(self.dir, &skeleton, total);
        }
        n
    }

    /// Scanning for a frame start. Returns bytes consumed.
    fn scan<S: FrameSink>(&mut self, env: &mut Env<'_, S>, data: &[u8]) -> usize {
        let cfg = env.cfg;
        let room = cfg.resync_window.saturating_sub(self.buf.len()).max(1);
        let n = room.min(data.len());
        let grow = (self.buf.len() + n).saturating_sub(self.buf.capacity()) as u64;
        if grow > 0 && !env.charge.fits(grow) {
            // Over the global budget: these bytes are skipped unscanned (and what was kept is no longer
            // contiguous with what follows).
            env.charge.deny(n as u64);
            if let State::Scanning { skipped } = &mut self.state {
                *skipped += (self.buf.len() + n) as u64;
            }
            self.buf.clear();
            return n;
        }
        self.buf.extend_from_slice(&data[..n]);
        let buf = std::mem::take(&mut self.buf);
        let mut found = None;
        let mut need_more_at = None;
        // A request candidate whose whole frame is buffered must decode; one that runs past the buffer is
        // remembered, and a later complete, valid candidate wins over it (a 4-byte "length" inside a body,
        // e.g. a timeout of 1000 ms, reads like a frame start; the real next frame inside its span does not lie).
        let mut incomplete = None;
        for i in 0..buf.len() {
            let rest = &buf[i..];
            let p = match self.dir {
                Direction::ToServer => match probe::probe_request(rest, &cfg.probe) {
                    Parse::Done(..) => match probe::confirm_request(rest) {
                        Parse::NeedMore(_) => {
                            incomplete.get_or_insert(i);
                            Parse::broken(0, "frame not whole yet")
                        }
                        confirmed => confirmed,
                    },
                    other => other,
                },
                Direction::ToClient => {
                    let sink = &*env.sink;
                    probe::probe_response(rest, &cfg.probe, |c| sink.awaits(c))
                }
            };
            match p {
                Parse::Done(..) => {
                    found = Some(i);
                    break;
                }
                Parse::NeedMore(_) => {
                    need_more_at = Some(i);
                    break;
                }
                Parse::Broken { .. } => {}
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
        let State::Scanning { skipped } = &mut self.state else {
            return n;
        };
        match found {
            Some(i) => {
                let skipped_bytes = *skipped + i as u64;
                env.sink
                    .notice(self.dir, NoticeKind::Resync { skipped_bytes });
                self.state = State::Boundary {
                    origin: Origin::Framed,
                };
                // A chain of frames found by probing: its own epoch, trusted only once confirmed.
                env.sink.sync_found(self.dir);
                self.replay(env, &buf[i..]);
            }
            None => {
                // Keep the undecided part: from a candidate still waiting for its bytes, else at most the
                // last 64 bytes (a header never needs more).
                let keep_from = match need_more_at {
                    Some(k) if buf.len() - k < cfg.resync_window => k,
                    _ => buf.len().saturating_sub(64),
                };
                *skipped += keep_from as u64;
                self.buf.extend_from_slice(&buf[keep_from..]);
            }
        }
        n
    }
}
