//! Removes the second view of TCP bytes seen at two hooks. Between two local sockets (loopback, two
//! pods of one node) the bytes leave one socket (cgroup egress) and arrive at the other (cgroup
//! ingress): the eBPF source sees them twice. The first view (egress: its owner is the sender) is
//! kept, the ingress view is dropped when the egress view already covered it.
//!
//! Easy to get wrong: the two views are often NOT the same packets, so a key of 5-tuple + seq + ack +
//! length + flags misses most of them. The egress hook sees the GSO super-packet TCP built (on
//! loopback with BIG TCP, up to ~95 KB, IPv4 total length 0); IP output then segments it to the MTU,
//! and ingress sees the pieces, with other lengths, IP ids and flags (measured on Linux 6.18). So the
//! test is by sequence space: per direction of a flow, remember how far the egress views reached
//! (`seq + payload + SYN + FIN`); an ingress view that ends at or before that point is a copy. A flow
//! seen only at ingress (the peer is remote or outside the attached cgroup) never has an egress entry,
//! so nothing of it is dropped; an egress view that went missing (ring full) leaves its ingress view
//! uncovered, so it is kept. The table is direct-mapped and fixed in size: a collision forgets a flow,
//! and at worst lets an ingress copy through (the reassembler then sees a retransmission); it never
//! drops bytes that no egress view carried, except when two flows share a 64-bit hash.

use kwire_flow::Timestamp;

/// Default number of flow-direction slots (a power of two).
pub const DEFAULT_SLOTS: usize = 64 * 1024;
/// How long an egress view vouches for later ingress views of the same bytes. Copies are
/// microseconds apart; the bound only keeps a stale entry (connection gone, port reused much later)
/// from hiding new traffic.
pub const DEFAULT_WINDOW_NS: i64 = 2_000_000_000;

/// Which hook a packet was seen at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// Leaving a local socket.
    Egress,
    /// Arriving at a local socket.
    Ingress,
}

#[derive(Clone, Copy)]
struct Slot {
    flow: u64,
    /// Sequence number just past the last byte an egress view carried.
    next_seq: u32,
    ts: i64,
}

pub struct Dedup {
    slots: Box<[Slot]>,
    mask: usize,
    window_ns: i64,
}

impl Default for Dedup {
    fn default() -> Self {
        Dedup::new(DEFAULT_SLOTS, DEFAULT_WINDOW_NS)
    }
}

/// What identifies a TCP segment's place in its flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentPos {
    /// Hash of the directional 5-tuple (addresses and ports, source first).
    pub flow: u64,
    pub seq: u32,
    /// `seq` + payload length + 1 for SYN + 1 for FIN (wrapping).
    pub end: u32,
}

impl Dedup {
    /// `slots` is rounded up to a power of two.
    pub fn new(slots: usize, window_ns: i64) -> Self {
        let n = slots.max(1).next_power_of_two();
        Dedup {
            slots: vec![
                Slot {
                    flow: 0,
                    next_seq: 0,
                    ts: i64::MIN,
                };
                n
            ]
            .into_boxed_slice(),
            mask: n - 1,
            window_ns,
        }
    }

    /// True when `ip_packet` (starting at the IP header; `wire_len` is its full length, the copy may
    /// be shorter) is an ingress view of bytes an egress view already carried. Egress views are never
    /// duplicates; packets that are not TCP over IP neither.
    pub fn is_duplicate(
        &mut self,
        ts: Timestamp,
        hook: Hook,
        ip_packet: &[u8],
        wire_len: u32,
    ) -> bool {
        let Some(pos) = segment_pos(ip_packet, wire_len) else {
            return false;
        };
        let slot = &mut self.slots[(pos.flow as usize) & self.mask];
        let same = slot.flow == pos.flow
            && slot.ts != i64::MIN
            && ts.0.abs_diff(slot.ts) <= self.window_ns as u64;
        match hook {
            Hook::Egress => {
                if same {
                    if seq_after(pos.end, slot.next_seq) {
                        slot.next_seq = pos.end;
                    }
                    slot.ts = ts.0;
                } else {
                    *slot = Slot {
                        flow: pos.flow,
                        next_seq: pos.end,
                        ts: ts.0,
                    };
                }
                false
            }
            // covered: end ≤ next_seq, and the segment starts inside what egress showed
            Hook::Ingress => {
                same && !seq_after(pos.end, slot.next_seq)
                    && seq_after(slot.next_seq.wrapping_add(1), pos.seq)
            }
        }
    }
}

/// `a` is after `b` in 32-bit sequence space (RFC 1982 style).
fn seq_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// Where a TCP segment sits in its flow, or None when the packet is not TCP over IPv4/6 (or too
/// short to tell).
pub fn segment_pos(p: &[u8], wire_len: u32) -> Option<SegmentPos> {
    let mut h = Mix::default();
    let (l4, tcp) = match p.first()? >> 4 {
        4 => {
            let ihl = usize::from(p[0] & 0x0f) * 4;
            if ihl < 20 || p.len() < ihl + 20 || p[9] != 6 {
                return None;
            }
            h.bytes(&p[12..20]); // addresses
            (ihl, &p[ihl..])
        }
        6 => {
            if p.len() < 60 || p[6] != 6 {
                return None;
            }
            h.bytes(&p[8..40]); // addresses
            (40, &p[40..])
        }
        _ => return None,
    };
    h.bytes(&tcp[0..4]); // ports
    let seq = u32::from_be_bytes(tcp[4..8].try_into().ok()?);
    let doff = usize::from(tcp[12] >> 4) * 4;
    let flags = tcp[13];
    let payload = (wire_len as usize).checked_sub(l4 + doff)?;
    let ctl = u32::from(flags & 0x02 != 0) + u32::from(flags & 0x01 != 0); // SYN, FIN
    Some(SegmentPos {
        flow: h.finish(),
        seq,
        end: seq.wrapping_add(payload as u32).wrapping_add(ctl),
    })
}

/// A small, fast, non-cryptographic hash (FxHash-style multiply-rotate over 8-byte words).
#[derive(Default)]
struct Mix(u64);

impl Mix {
    fn word(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn bytes(&mut self, b: &[u8]) {
        let mut chunks = b.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 56));
        }
    }
    fn finish(&self) -> u64 {
        // final avalanche so the low bits (the slot index) depend on every input bit
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4/TCP packet 127.0.0.1:sport → 127.0.0.1:dport; `ip_id` and the length field as given.
    fn v4(sport: u16, seq: u32, flags: u8, payload: usize, ip_id: u16) -> Vec<u8> {
        let total = 20 + 20 + payload;
        let mut p = vec![0u8; total];
        p[0] = 0x45;
        let len_field = if total > 65535 { 0 } else { total as u16 }; // BIG TCP: 0
        p[2..4].copy_from_slice(&len_field.to_be_bytes());
        p[4..6].copy_from_slice(&ip_id.to_be_bytes());
        p[8] = 64;
        p[9] = 6;
        p[12..16].copy_from_slice(&[127, 0, 0, 1]);
        p[16..20].copy_from_slice(&[127, 0, 0, 1]);
        let t = &mut p[20..];
        t[0..2].copy_from_slice(&sport.to_be_bytes());
        t[2..4].copy_from_slice(&(if sport == 9092 { 40000u16 } else { 9092 }).to_be_bytes());
        t[4..8].copy_from_slice(&seq.to_be_bytes());
        t[12] = 5 << 4;
        t[13] = flags;
        p
    }

    fn dup(d: &mut Dedup, ts: i64, hook: Hook, p: &[u8]) -> bool {
        d.is_duplicate(Timestamp(ts), hook, p, p.len() as u32)
    }

    #[test]
    fn identical_ingress_copy_is_dropped() {
        let mut d = Dedup::default();
        let p = v4(40000, 1000, 0x18, 100, 7);
        assert!(!dup(&mut d, 0, Hook::Egress, &p));
        assert!(dup(&mut d, 3_000, Hook::Ingress, &p));
    }

    /// What loopback does on Linux 6.18: one 95 KB egress super-packet (IPv4 length 0) arrives at
    /// ingress as pieces with other lengths, IP ids and flags. Every piece is a copy.
    #[test]
    fn resegmented_ingress_pieces_are_dropped() {
        let mut d = Dedup::default();
        let big = v4(9092, 5000, 0x18, 95_232, 0x0309);
        assert!(!dup(&mut d, 0, Hook::Egress, &big));
        let a = v4(9092, 5000, 0x10, 47_616, 0x0309);
        let b = v4(9092, 5000 + 47_616, 0x18, 47_616, 0x030a);
        assert!(dup(&mut d, 10, Hook::Ingress, &a));
        assert!(dup(&mut d, 20, Hook::Ingress, &b));
    }

    #[test]
    fn ingress_beyond_what_egress_carried_is_kept() {
        let mut d = Dedup::default();
        assert!(!dup(
            &mut d,
            0,
            Hook::Egress,
            &v4(40000, 1000, 0x18, 100, 1)
        ));
        // the next segment's egress view was lost (ring full): its ingress view is new bytes
        assert!(!dup(
            &mut d,
            5,
            Hook::Ingress,
            &v4(40000, 1100, 0x18, 100, 2)
        ));
        // partly beyond
        assert!(!dup(
            &mut d,
            5,
            Hook::Ingress,
            &v4(40000, 1050, 0x18, 100, 2)
        ));
    }

    #[test]
    fn flows_seen_only_at_ingress_are_kept() {
        let mut d = Dedup::default();
        let p = v4(40000, 1000, 0x18, 100, 1);
        assert!(!dup(&mut d, 0, Hook::Ingress, &p));
        assert!(!dup(&mut d, 1, Hook::Ingress, &p)); // a real retransmission from a remote peer
                                                     // the other direction's egress does not vouch for this one
        assert!(!dup(&mut d, 2, Hook::Egress, &v4(9092, 1000, 0x18, 100, 1)));
        assert!(!dup(&mut d, 3, Hook::Ingress, &p));
    }

    #[test]
    fn syn_fin_and_pure_acks() {
        let mut d = Dedup::default();
        let syn = v4(40000, 99, 0x02, 0, 1);
        assert!(!dup(&mut d, 0, Hook::Egress, &syn));
        assert!(dup(&mut d, 1, Hook::Ingress, &syn));
        let ack = v4(40000, 100, 0x10, 0, 2);
        assert!(!dup(&mut d, 2, Hook::Egress, &ack));
        assert!(dup(&mut d, 3, Hook::Ingress, &ack));
        let fin = v4(40000, 100, 0x11, 0, 3);
        assert!(!dup(&mut d, 4, Hook::Egress, &fin));
        assert!(dup(&mut d, 5, Hook::Ingress, &fin));
    }

    #[test]
    fn stale_entries_vouch_for_nothing() {
        let mut d = Dedup::default();
        let p = v4(40000, 1000, 0x18, 100, 1);
        assert!(!dup(&mut d, 0, Hook::Egress, &p));
        assert!(!dup(&mut d, DEFAULT_WINDOW_NS + 1, Hook::Ingress, &p));
    }

    #[test]
    fn sequence_wrap() {
        let mut d = Dedup::default();
        let p = v4(40000, u32::MAX - 10, 0x18, 100, 1);
        assert!(!dup(&mut d, 0, Hook::Egress, &p));
        assert!(dup(
            &mut d,
            1,
            Hook::Ingress,
            &v4(40000, u32::MAX - 10, 0x10, 50, 1)
        ));
        assert!(dup(&mut d, 1, Hook::Ingress, &v4(40000, 39, 0x18, 50, 2)));
        assert!(!dup(&mut d, 1, Hook::Ingress, &v4(40000, 89, 0x18, 50, 3)));
    }

    #[test]
    fn not_tcp_is_never_a_duplicate() {
        let mut d = Dedup::default();
        let mut p = v4(40000, 1, 0x10, 0, 1);
        p[9] = 17; // UDP
        assert!(!dup(&mut d, 0, Hook::Egress, &p));
        assert!(!dup(&mut d, 0, Hook::Ingress, &p));
        assert!(!dup(&mut d, 0, Hook::Ingress, &[0x45, 0, 0]));
        assert!(!dup(&mut d, 0, Hook::Ingress, &[]));
    }

    #[test]
    fn ipv6() {
        let mut p = vec![0u8; 40 + 20 + 10];
        p[0] = 0x60;
        p[6] = 6;
        p[23] = 1;
        p[39] = 1;
        p[44..48].copy_from_slice(&500u32.to_be_bytes());
        p[52] = 5 << 4;
        p[53] = 0x18;
        let mut d = Dedup::default();
        assert!(!dup(&mut d, 0, Hook::Egress, &p));
        assert!(dup(&mut d, 1, Hook::Ingress, &p));
    }

    #[test]
    fn table_is_bounded() {
        let mut d = Dedup::new(4, DEFAULT_WINDOW_NS);
        for port in 1000..2000u16 {
            dup(&mut d, 0, Hook::Egress, &v4(port, 0, 0x10, 0, 0));
        }
        assert_eq!(d.slots.len(), 4);
    }
}
