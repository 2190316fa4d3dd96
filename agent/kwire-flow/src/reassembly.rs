//! One direction of a TCP connection: turns segments (in any order, with loss, duplicates and
//! truncation) into an ordered stream of [`Chunk`]s: `Data`, `Gap{len}`, `Fin`, `Rst`.
//!
//! Model: `next` is the sequence number of the next byte to deliver. A segment at or before `next` is
//! delivered straight from the caller's slice (zero-copy), trimmed of bytes already delivered. A segment
//! beyond `next` is copied into a bounded out-of-order buffer (sorted, non-overlapping pieces whose
//! `Vec`s are recycled through a small pool, so steady state does not allocate). Holes are closed by the
//! missing data, by the peer acknowledging past them ([`Reassembler::on_peer_ack`]: the capture lost
//! them), by the buffer bound, or at [`Reassembler::flush`]. Every hole closed without data is a `Gap`.
//! A SYN is never required: the first segment seen sets `next` (a SYN sets it to `seq + 1`).
//!
//! What is easy to get wrong:
//! * Sequence numbers wrap at 2^32: every comparison is `a.wrapping_sub(b) as i32` relative to `next`.
//!   That is only meaningful within ±2 GiB, hence the sanity bound: a segment more than 1 GiB away from
//!   `next` is a resync (count `resyncs`, emit `Gap{len: 0}` meaning "unknown length", start over at it).
//! * First copy wins: bytes already delivered or already buffered are trimmed from later copies (counted
//!   in `retransmitted_bytes` when the whole segment is old, `overlap_bytes` when only part of it is). An
//!   in-order segment that reaches into buffered data stops where the buffered (earlier) copy starts.
//! * Overlaps with different data (a garbage copy first, the real one later, or the reverse: an evasion
//!   or a broken middlebox) are compared, not just trimmed: against the buffered copy, and against the
//!   last `overlap_check_bytes` delivered (default 4 KiB, a ring filled as data is delivered, emptied at
//!   a gap or resync: it always ends at `next`). Differing bytes are counted in `overlap_mismatch_bytes`,
//!   the pushes that carried them in `overlap_mismatch_segments` (Suricata's
//!   `stream.reassembly_overlap_different_data`); the first copy still wins. Older overlaps are trimmed
//!   unchecked.
//! * Snaplen truncation: `payload.len() < payload_len`; the captured bytes are delivered and the rest is
//!   a `Gap` (counted in `truncated_bytes` too), so the stream never shifts.
//! * A FIN occupies one sequence number after the data: a peer ACK of `fin + 1` must not create a gap.
//!   Data after the FIN (or after an RST) is ignored and counted in `after_close_bytes`.
//! * ACK-based gaps assume the capture sees data before the ACK that covers it. A capture that reorders
//!   across CPUs can see the ACK first: the data then arrives "late", is trimmed as a retransmission, and
//!   a spurious `Gap` was emitted. That is the price of never stalling on a lost segment.
//! * Counters: every `Gap` emitted is counted in `gaps`/`gap_bytes`; the cause-specific counters
//!   (`truncated_bytes`, `ooo_dropped_bytes`) are subsets of `gap_bytes`, except that bytes still
//!   buffered at a resync are delivered first (with gaps for their holes), never dropped.

use std::collections::VecDeque;

use crate::budget::{Budget, Charge};
use crate::packet::TcpFlags;

/// What the reassembler delivers, in stream order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    /// In-order bytes (borrowed from the input segment or from the out-of-order buffer).
    Data(&'a [u8]),
    /// `len` bytes of the stream are missing here. `len == 0` means "unknown length" (a resync).
    Gap { len: u64 },
    /// The sender closed its direction (delivered after all data before it).
    Fin,
    /// The sender reset the connection.
    Rst,
}

/// Bounds of the out-of-order buffer of one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReassemblyLimits {
    /// Bytes held out of order before giving up the earliest hole (default 1 MiB).
    pub max_ooo_bytes: usize,
    /// Buffered pieces held out of order before giving up the earliest hole (default 256).
    pub max_ooo_segments: usize,
    /// Bytes delivered last kept to compare retransmissions with (default 4096; 0 turns the check off).
    /// Allocated as data is delivered, up to this bound.
    pub overlap_check_bytes: usize,
}

impl Default for ReassemblyLimits {
    fn default() -> Self {
        ReassemblyLimits {
            max_ooo_bytes: 1 << 20,
            max_ooo_segments: 256,
            overlap_check_bytes: 4096,
        }
    }
}

/// Counters of one direction. All are monotonic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReassemblyStats {
    /// Segments pushed (including bare ACKs).
    pub segments: u64,
    /// Bytes delivered as `Data`.
    pub bytes_delivered: u64,
    /// Bytes of segments that were entirely already delivered or buffered (retransmissions).
    pub retransmitted_bytes: u64,
    /// Bytes trimmed from segments that were partly new (overlaps).
    pub overlap_bytes: u64,
    /// Segments that arrived ahead of `next` and were buffered.
    pub ooo_segments: u64,
    /// `Gap` chunks emitted (any cause).
    pub gaps: u64,
    /// Total `len` of the `Gap` chunks emitted.
    pub gap_bytes: u64,
    /// Gap bytes declared because the out-of-order bound was hit (or a segment was larger than it).
    pub ooo_dropped_bytes: u64,
    /// Gap bytes that come from snaplen truncation (`payload.len() < payload_len`).
    pub truncated_bytes: u64,
    /// Payload bytes ignored because they came after this direction's FIN or RST.
    pub after_close_bytes: u64,
    /// Times the stream was restarted (sequence jump > 1 GiB or a SYN with a new ISN).
    pub resyncs: u64,
    /// Overlapping copies whose bytes differ from the copy kept (delivered or buffered): differing bytes.
    pub overlap_mismatch_bytes: u64,
    /// Pushes (segments) that carried at least one such differing byte.
    pub overlap_mismatch_segments: u64,
    /// RSTs from this side ignored: sequence number outside the receiver's window (see `connection`).
    pub rst_ignored: u64,
    /// SYNs from this side with a new ISN on a live connection, ignored (see `connection`).
    pub syn_ignored: u64,
}

/// Largest distance from `next` that is still believed to be the same stream.
const MAX_SEQ_JUMP: i64 = 1 << 30;
/// Free `Vec`s kept for reuse.
const POOL_MAX: usize = 16;

/// One buffered out-of-order piece: covers `[seq, seq + data.len() + lost)`; `lost` bytes at the end are
/// known to be missing (snaplen truncation).
#[derive(Debug)]
struct OooSeg {
    seq: u32,
    data: Vec<u8>,
    lost: u32,
}

impl OooSeg {
    fn len(&self) -> i64 {
        self.data.len() as i64 + i64::from(self.lost)
    }
}

/// Reassembles one direction of a TCP connection.
#[derive(Debug)]
pub struct Reassembler {
    limits: ReassemblyLimits,
    next: Option<u32>,
    isn: Option<u32>,
    fin_at: Option<u32>,
    fin_done: bool,
    rst_done: bool,
    buf: VecDeque<OooSeg>,
    buffered_bytes: usize,
    pool: Vec<Vec<u8>>,
    /// Ring of the last bytes delivered (`recent_len` valid bytes ending at `next`, the next write at
    /// `recent_pos` modulo its length); grows with the first bytes delivered up to its bound.
    recent: Vec<u8>,
    recent_len: usize,
    recent_pos: usize,
    /// Differing bytes found during the current call, committed to the stats at its end.
    mismatch_pending: u64,
    stats: ReassemblyStats,
    /// Out-of-order bytes charged to the engine's global budget (none without one).
    charge: Charge,
}

impl Default for Reassembler {
    fn default() -> Self {
        Reassembler::new(ReassemblyLimits::default())
    }
}

impl Reassembler {
    pub fn new(limits: ReassemblyLimits) -> Self {
        Reassembler {
            limits,
            next: None,
            isn: None,
            fin_at: None,
            fin_done: false,
            rst_done: false,
            buf: VecDeque::new(),
            buffered_bytes: 0,
            pool: Vec::new(),
            recent: Vec::new(),
            recent_len: 0,
            recent_pos: 0,
            mismatch_pending: 0,
            stats: ReassemblyStats::default(),
            charge: Charge::default(),
        }
    }

    /// Out-of-order bytes count against `budget` (shared by every connection of an engine): past it the
    /// earliest hole is given up as when `max_ooo_bytes` is reached (counted in `ooo_dropped_bytes` and by
    /// the budget's `denied`).
    pub fn set_budget(&mut self, budget: &Budget) {
        self.charge = Charge::new(budget);
    }

    pub fn stats(&self) -> &ReassemblyStats {
        &self.stats
    }
    /// Sequence number of the next byte to deliver (None before the first segment).
    pub fn next_seq(&self) -> Option<u32> {
        self.next
    }
    /// The ISN if a SYN was seen.
    pub fn isn(&self) -> Option<u32> {
        self.isn
    }
    /// True once any segment was seen.
    pub fn has_state(&self) -> bool {
        self.next.is_some()
    }
    /// True once the FIN was delivered.
    pub fn fin_delivered(&self) -> bool {
        self.fin_done
    }
    /// True once an RST was delivered.
    pub fn rst_delivered(&self) -> bool {
        self.rst_done
    }
    /// Bytes currently held out of order.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered_bytes
    }

    /// `seq - next` as a signed distance (0 before the first segment).
    fn rel(&self, seq: u32) -> i64 {
        match self.next {
            Some(n) => i64::from(seq.wrapping_sub(n) as i32),
            None => 0,
        }
    }

    fn advance(&mut self, n: i64) {
        if let Some(next) = self.next.as_mut() {
            *next = next.wrapping_add(n as u32);
        }
    }

    fn emit_gap<F: FnMut(Chunk<'_>)>(&mut self, len: i64, out: &mut F) {
        if len > 0 {
            self.stats.gaps += 1;
            self.stats.gap_bytes += len as u64;
            out(Chunk::Gap { len: len as u64 });
            self.advance(len);
            self.recent_len = 0;
        }
    }

    /// Remembers bytes just delivered (the tail of the ring of recent bytes). The ring grows with the data
    /// up to `overlap_check_bytes` (a connection that delivers 16 bytes holds 16), then wraps.
    fn remember(&mut self, data: &[u8]) {
        let cap = self.limits.overlap_check_bytes;
        if cap == 0 || data.is_empty() {
            return;
        }
        let data = data.get(data.len().saturating_sub(cap)..).unwrap_or(data);
        let mut rest = data;
        let len = self.recent.len();
        if len < cap {
            // Growing: linear, the next write is at the end.
            let (a, b) = rest.split_at(rest.len().min(cap - len));
            let want = (len + a.len()).max(self.recent.capacity() * 2).min(cap);
            self.recent.reserve_exact(want - len);
            self.recent.extend_from_slice(a);
            // `len` < cap, so the position is the length, or 0 once the ring is full (no division: this
            // runs for every delivered segment).
            self.recent_pos = if self.recent.len() == cap {
                0
            } else {
                self.recent.len()
            };
            rest = b;
        }
        if !rest.is_empty() {
            // Full: write at recent_pos, wrapping.
            let first = rest.len().min(cap - self.recent_pos);
            let (a, b) = rest.split_at(first);
            if let Some(dst) = self
                .recent
                .get_mut(self.recent_pos..self.recent_pos + a.len())
            {
                dst.copy_from_slice(a);
            }
            if let Some(dst) = self.recent.get_mut(..b.len()) {
                dst.copy_from_slice(b);
            }
            // rest.len() <= cap (data was cut to cap) and recent_pos < cap: one wrap at most.
            let pos = self.recent_pos + rest.len();
            self.recent_pos = if pos >= cap { pos - cap } else { pos };
        }
        self.recent_len = (self.recent_len + data.len()).min(cap);
    }

    /// Compares `bytes`, a copy of the stream at `rel` (relative to `next`, before it), with what was
    /// delivered there, where the ring still has it; differing bytes go to `mismatch_pending`.
    fn check_delivered(&mut self, rel: i64, bytes: &[u8]) {
        let cap = self.recent.len() as i64;
        let kept = self.recent_len as i64;
        // The part of [rel, rel + len) inside [-kept, 0).
        let lo = rel.max(-kept);
        let hi = (rel + bytes.len() as i64).min(0);
        if lo >= hi || cap == 0 {
            return;
        }
        let mut diff = 0u64;
        let mut r = lo;
        while r < hi {
            // Ring index of stream position r (r < 0 is r bytes before `next`, written at recent_pos).
            let at = (self.recent_pos as i64 + r).rem_euclid(cap);
            let n = (hi - r).min(cap - at);
            let ring = self
                .recent
                .get(at as usize..(at + n) as usize)
                .unwrap_or(&[]);
            let off = (r - rel) as usize;
            let copy = bytes.get(off..off + n as usize).unwrap_or(&[]);
            if ring != copy {
                diff += count_diff(ring, copy);
            }
            r += n;
        }
        self.mismatch_pending += diff;
    }

    /// Commits the differing bytes found during this call (one segment if any).
    fn commit_mismatch(&mut self) {
        if self.mismatch_pending > 0 {
            self.stats.overlap_mismatch_segments += 1;
            self.stats.overlap_mismatch_bytes += self.mismatch_pending;
            self.mismatch_pending = 0;
        }
    }

    pub(crate) fn count_rst_ignored(&mut self) {
        self.stats.rst_ignored += 1;
    }

    pub(crate) fn count_syn_ignored(&mut self) {
        self.stats.syn_ignored += 1;
    }

    /// Feed one segment of this direction; in-order bytes (and gaps, FIN, RST) go to `out` in stream order.
    pub fn push<F: FnMut(Chunk<'_>)>(
        &mut self,
        seq: u32,
        flags: TcpFlags,
        payload: &[u8],
        payload_len: u32,
        out: &mut F,
    ) {
        self.push_inner(seq, flags, payload, payload_len, out);
        self.commit_mismatch();
        self.charge.settle(self.buffered_bytes as u64);
    }

    fn push_inner<F: FnMut(Chunk<'_>)>(
        &mut self,
        seq: u32,
        flags: TcpFlags,
        payload: &[u8],
        payload_len: u32,
        out: &mut F,
    ) {
        self.stats.segments += 1;
        // Defensive: a payload longer than claimed is taken at its captured length.
        let captured_len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        let payload = payload.get(..captured_len as usize).unwrap_or(payload);
        let mut payload_len = payload_len.max(captured_len);
        if self.fin_done || self.rst_done {
            self.stats.after_close_bytes += u64::from(payload_len);
            return;
        }
        let mut seq = seq;
        if flags.syn() {
            let data_start = seq.wrapping_add(1);
            match self.isn {
                Some(isn) if isn == seq => {}
                Some(_) => self.resync(data_start, out),
                None if self.next.is_some() && self.rel(data_start) != 0 => {
                    self.resync(data_start, out)
                }
                None => {}
            }
            self.isn = Some(seq);
            seq = data_start;
            if self.next.is_none() {
                self.next = Some(seq);
            }
        }
        if self.next.is_none() {
            self.next = Some(seq);
        }
        if flags.rst() {
            // Deliver what is buffered (with its holes), then the reset.
            self.flush_buffer(out);
            self.rst_done = true;
            self.drop_buffer();
            out(Chunk::Rst);
            return;
        }
        if payload_len == 0 && !flags.fin() {
            return;
        }
        if self.rel(seq).abs() > MAX_SEQ_JUMP {
            self.resync(seq, out);
        }
        let mut data = payload;
        let mut lost = payload_len - captured_len;
        // Nothing after a known FIN belongs to the stream.
        if let Some(f) = self.fin_at {
            let end = seq.wrapping_add(payload_len);
            let over = i64::from(end.wrapping_sub(f) as i32);
            if over > 0 {
                let cut = over.min(i64::from(payload_len));
                self.stats.after_close_bytes += cut as u64;
                let cut_lost = cut.min(i64::from(lost));
                lost -= cut_lost as u32;
                let cut_data = (cut - cut_lost) as usize;
                data = data
                    .get(..data.len().saturating_sub(cut_data))
                    .unwrap_or(&[]);
                payload_len -= cut as u32;
            }
        }
        if flags.fin() && self.fin_at.is_none() {
            self.fin_at = Some(seq.wrapping_add(payload_len));
        }
        if payload_len > 0 {
            self.place(seq, data, lost, out);
        }
        self.check_fin(out);
    }

    /// The opposite direction acknowledged `ack`: if it is beyond what we delivered and we hold nothing to
    /// fill the hole, the bytes in between were lost by the capture: emit Gap and move on (then deliver
    /// buffered data).
    pub fn on_peer_ack<F: FnMut(Chunk<'_>)>(&mut self, ack: u32, out: &mut F) {
        if self.next.is_none() || self.fin_done || self.rst_done {
            return;
        }
        let mut target = ack;
        if let Some(f) = self.fin_at {
            // The FIN takes one sequence number: an ACK of fin + 1 covers data up to fin only.
            if i64::from(target.wrapping_sub(f) as i32) > 0 {
                target = f;
            }
        }
        let r = self.rel(target);
        if r <= 0 || r > MAX_SEQ_JUMP {
            return;
        }
        while self.rel(target) > 0 {
            let hole_end = match self.buf.front() {
                Some(front) if self.rel(front.seq) < self.rel(target) => front.seq,
                _ => target,
            };
            let gap = self.rel(hole_end);
            self.emit_gap(gap, out);
            self.drain_buffer(out);
        }
        self.check_fin(out);
        self.commit_mismatch();
        self.charge.settle(self.buffered_bytes as u64);
    }

    /// End of input or flow eviction: flush what is buffered (with Gaps for holes), and a pending FIN.
    pub fn flush<F: FnMut(Chunk<'_>)>(&mut self, out: &mut F) {
        if self.fin_done || self.rst_done {
            return;
        }
        self.flush_buffer(out);
        if let Some(f) = self.fin_at {
            let gap = self.rel(f);
            self.emit_gap(gap, out);
            self.check_fin(out);
        }
        self.commit_mismatch();
        self.charge.settle(self.buffered_bytes as u64);
    }

    /// Delivers every buffered piece, declaring the holes before them as gaps.
    fn flush_buffer<F: FnMut(Chunk<'_>)>(&mut self, out: &mut F) {
        while let Some(front) = self.buf.front() {
            let gap = self.rel(front.seq);
            self.emit_gap(gap, out);
            self.drain_buffer(out);
        }
    }

    fn drop_buffer(&mut self) {
        while let Some(seg) = self.buf.pop_front() {
            self.stats.after_close_bytes += seg.len() as u64;
            self.recycle(seg.data);
        }
        self.buffered_bytes = 0;
    }

    fn resync<F: FnMut(Chunk<'_>)>(&mut self, seq: u32, out: &mut F) {
        self.flush_buffer(out);
        self.stats.resyncs += 1;
        self.stats.gaps += 1;
        out(Chunk::Gap { len: 0 });
        self.next = Some(seq);
        self.fin_at = None;
        self.recent_len = 0;
    }

    fn check_fin<F: FnMut(Chunk<'_>)>(&mut self, out: &mut F) {
        if let Some(f) = self.fin_at {
            if !self.fin_done && self.rel(f) <= 0 {
                self.fin_done = true;
                self.drop_buffer();
                out(Chunk::Fin);
            }
        }
    }

    /// Places one (possibly truncated) segment: deliver if in order, else buffer (or force a gap).
    fn place<F: FnMut(Chunk<'_>)>(&mut self, seq: u32, data: &[u8], lost: u32, out: &mut F) {
        let len = data.len() as i64 + i64::from(lost);
        loop {
            let rel = self.rel(seq);
            if rel <= 0 {
                if rel + len <= 0 {
                    self.stats.retransmitted_bytes += len as u64;
                    self.check_delivered(rel, data);
                } else {
                    self.deliver_current(seq, data, lost, out);
                }
                return;
            }
            if data.len() <= self.limits.max_ooo_bytes && self.limits.max_ooo_segments > 0 {
                self.insert(seq, data, lost);
                self.enforce_bounds(out);
                return;
            }
            // Larger than the whole buffer: give up the hole before it (or before the earliest buffered
            // piece), then it is in order (or closer to it) and goes round again.
            let target = match self.buf.front() {
                Some(front) if self.rel(front.seq) < rel => front.seq,
                _ => seq,
            };
            let gap = self.rel(target);
            self.stats.ooo_dropped_bytes += gap.max(0) as u64;
            self.emit_gap(gap, out);
            self.drain_buffer(out);
        }
    }

    fn enforce_bounds<F: FnMut(Chunk<'_>)>(&mut self, out: &mut F) {
        loop {
            let over_budget = {
                let more = (self.buffered_bytes as u64).saturating_sub(self.charge.charged());
                more > 0 && !self.charge.fits(more)
            };
            if !(over_budget
                || self.buffered_bytes > self.limits.max_ooo_bytes
                || self.buf.len() > self.limits.max_ooo_segments)
            {
                break;
            }
            let Some(front) = self.buf.front() else { break };
            if over_budget {
                self.charge.deny(front.data.len() as u64);
            }
            let gap = self.rel(front.seq);
            self.stats.ooo_dropped_bytes += gap.max(0) as u64;
            self.emit_gap(gap, out);
            self.drain_buffer(out);
        }
    }

    /// Delivers a segment that starts at or before `next` and ends after it, merging with buffered
    /// pieces (which arrived first and therefore win where they overlap).
    fn deliver_current<F: FnMut(Chunk<'_>)>(
        &mut self,
        mut seq: u32,
        mut data: &[u8],
        mut lost: u32,
        out: &mut F,
    ) {
        loop {
            let behind = -self.rel(seq);
            if behind > 0 {
                let total = data.len() as i64 + i64::from(lost);
                let t = behind.min(total);
                self.stats.overlap_bytes += t as u64;
                let td = (t as usize).min(data.len());
                self.check_delivered(-behind, data.get(..td).unwrap_or(&[]));
                data = data.get(td..).unwrap_or(&[]);
                lost -= (t - td as i64) as u32;
                seq = seq.wrapping_add(t as u32);
            }
            if data.is_empty() && lost == 0 {
                break;
            }
            let room = match self.buf.front() {
                Some(front) => self.rel(front.seq),
                None => i64::MAX,
            };
            if room <= 0 {
                self.drain_buffer(out);
                continue;
            }
            let n = (data.len() as i64).min(room);
            if n > 0 {
                let (now, rest) = data.split_at(n as usize);
                out(Chunk::Data(now));
                self.remember(now);
                self.stats.bytes_delivered += n as u64;
                self.advance(n);
                data = rest;
                seq = seq.wrapping_add(n as u32);
            }
            let room_left = room - n;
            if data.is_empty() && lost > 0 && room_left > 0 {
                let g = i64::from(lost).min(room_left);
                self.stats.truncated_bytes += g as u64;
                self.emit_gap(g, out);
                lost -= g as u32;
                seq = seq.wrapping_add(g as u32);
            }
            if data.is_empty() && lost == 0 {
                break;
            }
            self.drain_buffer(out);
        }
        self.drain_buffer(out);
    }

    /// Delivers buffered pieces that start at or before `next`.
    fn drain_buffer<F: FnMut(Chunk<'_>)>(&mut self, out: &mut F) {
        while let Some(front) = self.buf.front() {
            let r = self.rel(front.seq);
            if r > 0 {
                break;
            }
            let Some(seg) = self.buf.pop_front() else {
                break;
            };
            self.buffered_bytes -= seg.data.len();
            let total = seg.len();
            let t = (-r).min(total);
            self.stats.overlap_bytes += t as u64;
            let td = (t as usize).min(seg.data.len());
            self.check_delivered(r, seg.data.get(..td).unwrap_or(&[]));
            let rest = seg.data.get(td..).unwrap_or(&[]);
            if !rest.is_empty() {
                out(Chunk::Data(rest));
                self.remember(rest);
                self.stats.bytes_delivered += rest.len() as u64;
                self.advance(rest.len() as i64);
            }
            let lost_rem = i64::from(seg.lost) - (t - td as i64);
            if lost_rem > 0 {
                self.stats.truncated_bytes += lost_rem as u64;
                self.emit_gap(lost_rem, out);
            }
            self.recycle(seg.data);
        }
    }

    /// Buffers the parts of `[seq, seq+len)` not already buffered (first copy wins).
    fn insert(&mut self, seq: u32, data: &[u8], lost: u32) {
        let start = self.rel(seq);
        let end = start + data.len() as i64 + i64::from(lost);
        let mut cur = start;
        let mut covered = 0i64;
        let mut inserted = false;
        let mut i = 0;
        while i < self.buf.len() && cur < end {
            let (s, e) = match self.buf.get(i) {
                Some(b) => {
                    let s = self.rel(b.seq);
                    (s, s + b.len())
                }
                None => break,
            };
            if e <= cur {
                i += 1;
                continue;
            }
            if s > cur {
                let pe = s.min(end);
                if self.insert_piece(i, seq, start, cur, pe, data) {
                    i += 1;
                }
                inserted = true;
                cur = pe;
            }
            if cur < end && s <= cur {
                let ov = e.min(end);
                covered += ov - cur;
                if let Some(b) = self.buf.get(i) {
                    // Captured bytes of both copies over [cur, ov).
                    let mine = data.get(
                        ((cur - start) as usize).min(data.len())
                            ..((ov - start) as usize).min(data.len()),
                    );
                    let theirs = b.data.get(
                        ((cur - s) as usize).min(b.data.len())
                            ..((ov - s) as usize).min(b.data.len()),
                    );
                    if let (Some(m), Some(t)) = (mine, theirs) {
                        let n = m.len().min(t.len());
                        if m.get(..n) != t.get(..n) {
                            self.mismatch_pending += count_diff(&m[..n], &t[..n]);
                        }
                    }
                }
                cur = ov;
            }
            i += 1;
        }
        if cur < end {
            self.insert_piece(i, seq, start, cur, end, data);
            inserted = true;
        }
        if inserted {
            self.stats.ooo_segments += 1;
            self.stats.overlap_bytes += covered as u64;
        } else {
            self.stats.retransmitted_bytes += covered as u64;
        }
    }

    /// Inserts the piece `[a, b)` (relative to `next`) of the segment that starts at `seg_start` (relative)
    /// / `seg_seq` (absolute) at index `idx`. Appends to the previous piece instead when it ends exactly
    /// at `a` without a lost tail (keeps the piece count low with small segments); returns true if a new
    /// piece was inserted at `idx`.
    fn insert_piece(
        &mut self,
        idx: usize,
        seg_seq: u32,
        seg_start: i64,
        a: i64,
        b: i64,
        data: &[u8],
    ) -> bool {
        let oa = (a - seg_start) as usize;
        let ob = (b - seg_start) as usize;
        let da = oa.min(data.len());
        let db = ob.min(data.len());
        let lost = (ob - oa.max(data.len()).min(ob)) as u32;
        let bytes = data.get(da..db).unwrap_or(&[]);
        if let Some(prev_idx) = idx.checked_sub(1) {
            let next = self.next.unwrap_or(0);
            if let Some(prev) = self.buf.get_mut(prev_idx) {
                let prev_end = i64::from(prev.seq.wrapping_sub(next) as i32) + prev.len();
                if prev.lost == 0 && prev_end == a {
                    prev.data.extend_from_slice(bytes);
                    prev.lost = lost;
                    self.buffered_bytes += bytes.len();
                    return false;
                }
            }
        }
        let mut v = self.pool.pop().unwrap_or_default();
        v.clear();
        v.extend_from_slice(bytes);
        self.buffered_bytes += v.len();
        let seg = OooSeg {
            seq: seg_seq.wrapping_add(oa as u32),
            data: v,
            lost,
        };
        if idx >= self.buf.len() {
            self.buf.push_back(seg);
        } else {
            self.buf.insert(idx, seg);
        }
        true
    }

    fn recycle(&mut self, v: Vec<u8>) {
        if self.pool.len() < POOL_MAX && v.capacity() <= 64 * 1024 {
            self.pool.push(v);
        }
    }
}

/// Number of positions where `a` and `b` differ (over the shorter length).
fn count_diff(a: &[u8], b: &[u8]) -> u64 {
    a.iter().zip(b).filter(|(x, y)| x != y).count() as u64
}
