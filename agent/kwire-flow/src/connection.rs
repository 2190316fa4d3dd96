//! Both directions of one TCP connection: a [`Reassembler`] per [`Side`]. Which side is the client is not
//! decided here: the engine's application state names it from the SYN (`kwire_engine::pipeline::conn`).
//!
//! [`TcpConnection::on_segment`] first lets the segment's ACK close holes in the *other* direction
//! (the ACK acknowledges data the other side sent earlier, so its gaps come first in causal order), then
//! feeds the segment to its own direction.
//!
//! What is easy to get wrong:
//! * Port reuse: a new SYN on a key whose direction already has state with another ISN is a *new*
//!   connection only if a receiving stack would take it as one: the old connection is closed, or was
//!   never established (only one direction seen), or the peer answers the new SYN with a SYN+ACK that
//!   acknowledges its ISN. A SYN with a new ISN on a live, established connection is what a stack
//!   answers with a challenge ACK (RFC 5961 §4): it is ignored whole (its ACK too), counted in the
//!   sender's `syn_ignored`, and remembered so that the peer's SYN+ACK can still confirm it. The
//!   connection cannot say "new connection" through [`Chunk`], so the caller checks
//!   [`TcpConnection::is_port_reuse`] before `on_segment`, flushes this one and replaces it.
//! * RST: honoured only if its sequence number lies where the sender's next byte can be, as a receiving
//!   stack checks it (RFC 5961 §3, in spirit): from the lower of (next byte expected from that side,
//!   last ACK the peer sent) to the higher plus the peer's receive window (the window field scaled by the
//!   window-scale option when both SYNs were seen, else by the largest scale, 14; at least 64 KiB). An
//!   RST outside is ignored (no chunk, the connection lives on) and counted in the sender's
//!   `rst_ignored`. With nothing to compare against (no sequence seen from that side, no ACK from the
//!   peer: e.g. the RST refusing a SYN) it is honoured.
//! * Closing: `is_closed` is FIN both ways (delivered, i.e. after all data before them) or an honoured RST.

use crate::flow_key::{FlowKey, Side};
use crate::packet::TcpSegment;
use crate::reassembly::{Chunk, Reassembler, ReassemblyLimits};
use crate::table::FlowState;
use crate::time::Timestamp;

/// State of one TCP connection (both directions).
#[derive(Debug)]
pub struct TcpConnection {
    pub key: FlowKey,
    a: Reassembler,
    b: Reassembler,
    pub first_ts: Timestamp,
    pub last_ts: Timestamp,
    /// Segments seen (both directions).
    pub segments: u64,
    /// What each side told its peer (index 0: side A, 1: side B).
    views: [SideView; 2],
    /// A SYN with a new ISN ignored on this live connection: (sender, ISN), until the peer confirms it.
    held_syn: Option<(Side, u32)>,
}

/// What one side's segments said about its receive side.
#[derive(Clone, Copy, Debug, Default)]
struct SideView {
    /// Last acknowledgment number it sent (the next byte it expects from its peer).
    ack: Option<u32>,
    /// Last window field it sent outside a SYN (unscaled).
    window: Option<u16>,
    /// Its SYN, if seen: the window-scale option it carried.
    syn: Option<Option<u8>>,
}

/// Largest window-scale shift (RFC 7323 §2.3).
const MAX_WSCALE: u8 = 14;
/// Smallest receive window assumed when checking an RST.
const MIN_RST_WINDOW: u64 = 65_535;

fn idx(side: Side) -> usize {
    match side {
        Side::A => 0,
        Side::B => 1,
    }
}

impl TcpConnection {
    pub fn new(key: FlowKey, ts: Timestamp, limits: ReassemblyLimits) -> Self {
        TcpConnection {
            key,
            a: Reassembler::new(limits),
            b: Reassembler::new(limits),
            first_ts: ts,
            last_ts: ts,
            segments: 0,
            views: [SideView::default(); 2],
            held_syn: None,
        }
    }

    /// Both directions' out-of-order bytes count against `budget` (see [`Reassembler::set_budget`]).
    pub fn with_budget(mut self, budget: &crate::budget::Budget) -> Self {
        self.a.set_budget(budget);
        self.b.set_budget(budget);
        self
    }

    fn reassembler_mut(&mut self, side: Side) -> &mut Reassembler {
        match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }

    /// Both directions seen: the handshake completed or data flows both ways.
    fn is_established(&self) -> bool {
        self.a.has_state() && self.b.has_state()
    }

    /// A SYN from `side` whose ISN is not the one this direction already has.
    fn is_new_isn(&self, side: Side, seg: &TcpSegment<'_>) -> bool {
        if !seg.flags.syn() || seg.flags.rst() {
            return false;
        }
        let r = self.reassembler(side);
        r.has_state() && r.isn() != Some(seg.seq)
    }

    /// The receive window `side` advertised, scaled, if it sent a window.
    fn receive_window(&self, side: Side) -> Option<u64> {
        let v = &self.views[idx(side)];
        let w = u64::from(v.window?);
        let shift = match (self.views[0].syn, self.views[1].syn) {
            // RFC 7323: scaling is in effect only if both SYNs carried the option.
            (Some(Some(_)), Some(Some(_))) => v.syn.flatten().unwrap_or(0).min(MAX_WSCALE),
            (Some(_), Some(_)) => 0,
            _ => MAX_WSCALE,
        };
        Some(w << shift)
    }

    /// Whether an RST sent by `side` with sequence number `seq` would be accepted by its peer.
    fn rst_acceptable(&self, side: Side, seq: u32) -> bool {
        let next = self.reassembler(side).next_seq();
        let acked = self.views[idx(side.other())].ack;
        let (lo, hi) = match (next, acked) {
            (None, None) => return true,
            (Some(x), None) | (None, Some(x)) => (x, x),
            (Some(n), Some(a)) => {
                if (a.wrapping_sub(n) as i32) >= 0 {
                    (n, a)
                } else {
                    (a, n)
                }
            }
        };
        let win = self
            .receive_window(side.other())
            .unwrap_or(u64::from(u16::MAX) << MAX_WSCALE)
            .max(MIN_RST_WINDOW);
        let span = u64::from(hi.wrapping_sub(lo));
        u64::from(seq.wrapping_sub(lo)) <= span + win
    }

    /// The reassembler of the data sent by `side`.
    pub fn reassembler(&self, side: Side) -> &Reassembler {
        match side {
            Side::A => &self.a,
            Side::B => &self.b,
        }
    }

    /// True if `seg` (sent by `side`) is a SYN that starts a new connection on this key: that direction
    /// already has state and the SYN's ISN is not the one already seen. The caller should `flush` this
    /// connection, report it ended, and start a fresh one for the segment.
    /// On a live, established connection only a SYN+ACK acknowledging a SYN held back from the peer counts.
    pub fn is_port_reuse(&self, side: Side, seg: &TcpSegment<'_>) -> bool {
        if !self.is_new_isn(side, seg) {
            return false;
        }
        if self.is_closed() || !self.is_established() {
            return true;
        }
        seg.flags.ack() && self.held_syn == Some((side.other(), seg.ack.wrapping_sub(1)))
    }

    /// Feeds one segment sent by `side`; chunks of either direction go to `out` tagged with their side.
    pub fn on_segment<F: FnMut(Side, Chunk<'_>)>(
        &mut self,
        ts: Timestamp,
        side: Side,
        seg: &TcpSegment<'_>,
        out: &mut F,
    ) {
        if ts > self.last_ts {
            self.last_ts = ts;
        }
        self.segments += 1;
        if self.is_new_isn(side, seg) && self.is_established() && !self.is_closed() {
            // A stray SYN: a receiving stack would answer it with a challenge ACK, not a new connection.
            self.reassembler_mut(side).count_syn_ignored();
            self.held_syn = Some((side, seg.seq));
            return;
        }
        if seg.flags.rst() && !self.rst_acceptable(side, seg.seq) {
            self.reassembler_mut(side).count_rst_ignored();
            return;
        }
        let v = &mut self.views[idx(side)];
        if seg.flags.syn() {
            v.syn = Some(seg.wscale);
        } else {
            v.window = Some(seg.window);
        }
        if seg.flags.ack() && !seg.flags.rst() {
            v.ack = Some(seg.ack);
        }
        let (this, other) = match side {
            Side::A => (&mut self.a, &mut self.b),
            Side::B => (&mut self.b, &mut self.a),
        };
        if seg.flags.ack() && !seg.flags.rst() {
            let peer = side.other();
            other.on_peer_ack(seg.ack, &mut |c| out(peer, c));
        }
        this.push(seg.seq, seg.flags, seg.payload, seg.payload_len, &mut |c| {
            out(side, c)
        });
    }

    /// End of input or eviction: flush both directions (A first, then B: deterministic).
    pub fn flush<F: FnMut(Side, Chunk<'_>)>(&mut self, out: &mut F) {
        self.a.flush(&mut |c| out(Side::A, c));
        self.b.flush(&mut |c| out(Side::B, c));
    }

    /// FIN both ways or RST.
    pub fn is_closed(&self) -> bool {
        (self.a.fin_delivered() && self.b.fin_delivered())
            || self.a.rst_delivered()
            || self.b.rst_delivered()
    }
}

impl FlowState for TcpConnection {
    fn is_closed(&self) -> bool {
        TcpConnection::is_closed(self)
    }
}
