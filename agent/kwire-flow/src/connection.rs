//! Both directions of one TCP connection: a [`Reassembler`] per [`Side`], plus who the client is.
//!
//! [`TcpConnection::on_segment`] first lets the segment's ACK close holes in the *other* direction
//! (the ACK acknowledges data the other side sent earlier, so its gaps come first in causal order), then
//! feeds the segment to its own direction.
//!
//! What is easy to get wrong:
//! * The client is whoever sent a SYN without ACK; a SYN+ACK names the server. Mid-stream pickups have no
//!   SYN: `client` stays `None` and the caller guesses (e.g. by the Kafka port).
//! * Port reuse: a new SYN on a key whose direction already has state with another ISN is a *new*
//!   connection. The connection cannot say "new connection" through [`Chunk`], so the caller checks
//!   [`TcpConnection::is_port_reuse`] before `on_segment`, flushes this one and replaces it.
//! * Closing: `is_closed` is FIN both ways (delivered, i.e. after all data before them) or any RST.

use crate::flow_key::{Direction, FlowKey, Side};
use crate::packet::TcpSegment;
use crate::reassembly::{Chunk, Reassembler, ReassemblyLimits};
use crate::table::FlowState;
use crate::time::Timestamp;

/// State of one TCP connection (both directions).
#[derive(Debug)]
pub struct TcpConnection {
    pub key: FlowKey,
    /// Who sent the SYN (without ACK), or the peer of whoever sent the SYN+ACK; None if not seen.
    pub client: Option<Side>,
    a: Reassembler,
    b: Reassembler,
    pub first_ts: Timestamp,
    pub last_ts: Timestamp,
    /// Segments seen (both directions).
    pub segments: u64,
}

impl TcpConnection {
    pub fn new(key: FlowKey, ts: Timestamp, limits: ReassemblyLimits) -> Self {
        TcpConnection {
            key,
            client: None,
            a: Reassembler::new(limits),
            b: Reassembler::new(limits),
            first_ts: ts,
            last_ts: ts,
            segments: 0,
        }
    }

    /// The reassembler of the data sent by `side`.
    pub fn reassembler(&self, side: Side) -> &Reassembler {
        match side {
            Side::A => &self.a,
            Side::B => &self.b,
        }
    }

    /// Direction of data sent by `side`, if the client is known.
    pub fn direction(&self, side: Side) -> Option<Direction> {
        self.client.map(|c| {
            if c == side {
                Direction::ToServer
            } else {
                Direction::ToClient
            }
        })
    }

    /// True if `seg` (sent by `side`) is a SYN that starts a new connection on this key: that direction
    /// already has state and the SYN's ISN is not the one already seen. The caller should `flush` this
    /// connection, report it ended, and start a fresh one for the segment.
    pub fn is_port_reuse(&self, side: Side, seg: &TcpSegment<'_>) -> bool {
        if !seg.flags.syn() || seg.flags.rst() {
            return false;
        }
        let r = self.reassembler(side);
        r.has_state() && r.isn() != Some(seg.seq)
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
        if self.client.is_none() && seg.flags.syn() && !seg.flags.rst() {
            self.client = Some(if seg.flags.ack() { side.other() } else { side });
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
