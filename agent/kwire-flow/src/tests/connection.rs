use std::net::{IpAddr, Ipv4Addr};

use super::reassembly::{Sink, O};
use crate::connection::TcpConnection;
use crate::flow_key::{FlowKey, Side};
use crate::packet::{Endpoint, TcpFlags, TcpSegment};
use crate::reassembly::ReassemblyLimits;
use crate::time::Timestamp;

fn ep(last: u8, port: u16) -> Endpoint {
    Endpoint::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)), port)
}

fn seg<'a>(
    src: Endpoint,
    dst: Endpoint,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    p: &'a [u8],
) -> TcpSegment<'a> {
    TcpSegment {
        src,
        dst,
        seq,
        ack,
        flags,
        window: 100,
        payload: p,
        payload_len: p.len() as u32,
        wscale: None,
        encap: 0,
    }
}

struct Rec(Vec<(Side, O)>);
impl Rec {
    fn feed(&mut self, c: &mut TcpConnection, ts: i64, s: &TcpSegment<'_>) {
        let (_, side) = FlowKey::from_segment(s);
        let mut out = Vec::new();
        c.on_segment(Timestamp(ts), side, s, &mut |sd, ch| {
            let mut k = Sink::default();
            k.take(ch);
            out.push((sd, k.0.remove(0)));
        });
        self.0.extend(out);
    }
}

#[test]
fn handshake_exchange_close() {
    let client = ep(2, 40000);
    let server = ep(1, 9092);
    let (key, cside) = FlowKey::new(client, server);
    assert_eq!(cside, Side::B);
    let mut c = TcpConnection::new(key, Timestamp(1), ReassemblyLimits::default());
    let mut r = Rec(Vec::new());
    r.feed(&mut c, 1, &seg(client, server, 100, 0, TcpFlags::SYN, b""));
    r.feed(
        &mut c,
        2,
        &seg(server, client, 500, 101, TcpFlags::SYN | TcpFlags::ACK, b""),
    );
    r.feed(
        &mut c,
        3,
        &seg(client, server, 101, 501, TcpFlags::ACK, b""),
    );
    r.feed(
        &mut c,
        4,
        &seg(client, server, 101, 501, TcpFlags::ACK, b"req"),
    );
    // response acks 106: the client's bytes 104..106 were lost by the capture
    r.feed(
        &mut c,
        5,
        &seg(server, client, 501, 106, TcpFlags::ACK, b"resp"),
    );
    r.feed(
        &mut c,
        6,
        &seg(client, server, 106, 505, TcpFlags::FIN | TcpFlags::ACK, b""),
    );
    assert!(!c.is_closed());
    r.feed(
        &mut c,
        7,
        &seg(server, client, 505, 107, TcpFlags::FIN | TcpFlags::ACK, b""),
    );
    assert!(c.is_closed());
    assert_eq!(
        r.0,
        vec![
            (Side::B, O::D(b"req".to_vec())),
            (Side::B, O::G(2)),
            (Side::A, O::D(b"resp".to_vec())),
            (Side::B, O::F),
            (Side::A, O::F),
        ]
    );
    assert_eq!(c.first_ts, Timestamp(1));
    assert_eq!(c.last_ts, Timestamp(7));
    assert_eq!(c.segments, 7);
}

#[test]
fn syn_ack_without_its_syn_then_port_reuse() {
    let client = ep(2, 40000);
    let server = ep(1, 9092);
    let (key, _) = FlowKey::new(client, server);
    let mut c = TcpConnection::new(key, Timestamp(1), ReassemblyLimits::default());
    let mut r = Rec(Vec::new());
    // the capture missed the SYN
    r.feed(
        &mut c,
        1,
        &seg(server, client, 500, 101, TcpFlags::SYN | TcpFlags::ACK, b""),
    );
    r.feed(
        &mut c,
        2,
        &seg(client, server, 101, 501, TcpFlags::ACK, b"x"),
    );
    // Both directions seen and nothing closed: a SYN whose ISN this side never showed is not a new
    // connection (a receiving stack answers it with a challenge ACK).
    let same = seg(client, server, 100, 0, TcpFlags::SYN, b"");
    assert!(!c.is_port_reuse(Side::B, &same));
    let rst = seg(client, server, 102, 0, TcpFlags::RST, b"");
    assert!(!c.is_port_reuse(Side::B, &rst));
    r.feed(&mut c, 3, &rst);
    assert!(c.is_closed());
    // a retransmitted SYN+ACK with the same ISN is not reuse
    let synack = seg(server, client, 500, 101, TcpFlags::SYN | TcpFlags::ACK, b"");
    assert!(!c.is_port_reuse(Side::A, &synack));
}

#[test]
fn mid_stream_flush_order() {
    let a = ep(1, 9092);
    let b = ep(2, 40000);
    let (key, _) = FlowKey::new(a, b);
    let mut c = TcpConnection::new(key, Timestamp(1), ReassemblyLimits::default());
    let mut r = Rec(Vec::new());
    r.feed(&mut c, 1, &seg(b, a, 1000, 0, TcpFlags::NONE, b"ab"));
    r.feed(&mut c, 1, &seg(b, a, 1005, 0, TcpFlags::NONE, b"fg"));
    r.feed(&mut c, 1, &seg(a, b, 7000, 0, TcpFlags::NONE, b"A"));
    r.feed(&mut c, 1, &seg(a, b, 7003, 0, TcpFlags::NONE, b"D"));
    let mut out = Vec::new();
    c.flush(&mut |s, ch| {
        let mut k = Sink::default();
        k.take(ch);
        out.push((s, k.0.remove(0)));
    });
    assert_eq!(
        out,
        vec![
            (Side::A, O::G(2)),
            (Side::A, O::D(b"D".to_vec())),
            (Side::B, O::G(3)),
            (Side::B, O::D(b"fg".to_vec())),
        ]
    );
}

/// A segment with a window field and a window-scale option (SYN only).
#[allow(clippy::too_many_arguments)]
fn segw<'a>(
    src: Endpoint,
    dst: Endpoint,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    window: u16,
    wscale: Option<u8>,
    p: &'a [u8],
) -> TcpSegment<'a> {
    TcpSegment {
        window,
        wscale,
        ..seg(src, dst, seq, ack, flags, p)
    }
}

/// Handshake with window scale 7 both ways (windows of 512 << 7 = 64 KiB), then one request and
/// response: client ISN 1000, server ISN 5000.
fn established(r: &mut Rec) -> (TcpConnection, Endpoint, Endpoint) {
    let client = ep(2, 40000);
    let server = ep(1, 9092);
    let (key, _) = FlowKey::new(client, server);
    let mut c = TcpConnection::new(key, Timestamp(1), ReassemblyLimits::default());
    let syn = TcpFlags::SYN;
    let synack = TcpFlags::SYN | TcpFlags::ACK;
    let a = TcpFlags::ACK;
    r.feed(
        &mut c,
        1,
        &segw(client, server, 1000, 0, syn, 64240, Some(7), b""),
    );
    r.feed(
        &mut c,
        2,
        &segw(server, client, 5000, 1001, synack, 65160, Some(7), b""),
    );
    r.feed(
        &mut c,
        3,
        &segw(client, server, 1001, 5001, a, 512, None, b"request"),
    );
    r.feed(
        &mut c,
        4,
        &segw(server, client, 5001, 1008, a, 512, None, b"response"),
    );
    (c, client, server)
}

/// RST checked against the receiver's window (RFC 5961 in spirit): one far outside is ignored and
/// counted, the connection goes on; one at the next expected byte ends it.
#[test]
fn rst_outside_the_window_is_ignored_and_counted() {
    let mut r = Rec(Vec::new());
    let (mut c, client, server) = established(&mut r);
    // A blind RST "from the server" 1 GiB away from anything the server sent.
    let blind = segw(
        server,
        client,
        5009 + (1 << 30),
        0,
        TcpFlags::RST,
        0,
        None,
        b"",
    );
    r.feed(&mut c, 5, &blind);
    // One byte past the highest acceptable: the client acknowledged 5001, the server has sent up to
    // 5009, the client's window is 512 << 7: 5001 + 8 + 65,536 is the last acceptable sequence number.
    let past = segw(
        server,
        client,
        5009 + 65_536 + 1,
        0,
        TcpFlags::RST,
        0,
        None,
        b"",
    );
    r.feed(&mut c, 6, &past);
    assert!(!c.is_closed());
    assert_eq!(c.reassembler(Side::A).stats().rst_ignored, 2);
    // The conversation goes on.
    let a = TcpFlags::ACK;
    r.feed(
        &mut c,
        7,
        &segw(client, server, 1008, 5009, a, 512, None, b"more"),
    );
    r.feed(
        &mut c,
        8,
        &segw(server, client, 5009, 1012, a, 512, None, b"answer"),
    );
    // A real RST at the server's next byte is honoured.
    r.feed(
        &mut c,
        9,
        &segw(server, client, 5015, 0, TcpFlags::RST, 0, None, b""),
    );
    assert!(c.is_closed());
    assert_eq!(c.reassembler(Side::A).stats().rst_ignored, 2);
    let (cs, ss) = (Side::B, Side::A);
    assert_eq!(
        r.0,
        vec![
            (cs, O::D(b"request".to_vec())),
            (ss, O::D(b"response".to_vec())),
            (cs, O::D(b"more".to_vec())),
            (ss, O::D(b"answer".to_vec())),
            (ss, O::R),
        ]
    );
}

/// Inside the window but not at the next byte (data the capture lost may precede it): honoured.
#[test]
fn rst_inside_the_window_is_honoured() {
    let mut r = Rec(Vec::new());
    let (mut c, client, server) = established(&mut r);
    r.feed(
        &mut c,
        5,
        &segw(
            client,
            server,
            1008 + 30_000,
            0,
            TcpFlags::RST,
            0,
            None,
            b"",
        ),
    );
    assert!(c.is_closed());
    assert_eq!(c.reassembler(Side::B).stats().rst_ignored, 0);
    assert_eq!(r.0.last(), Some(&(Side::B, O::R)));
}

/// The window scale comes from the SYNs: with scale 0 on one side (no option), windows are not scaled and
/// an RST 100 KiB ahead is outside; with no SYN seen, the largest scale is assumed.
#[test]
fn rst_window_follows_the_window_scale_option() {
    let client = ep(2, 40000);
    let server = ep(1, 9092);
    let (key, _) = FlowKey::new(client, server);
    let syn = TcpFlags::SYN;
    let synack = TcpFlags::SYN | TcpFlags::ACK;
    let a = TcpFlags::ACK;
    let rst = TcpFlags::RST;
    let mut r = Rec(Vec::new());
    let mut c = TcpConnection::new(key, Timestamp(1), ReassemblyLimits::default());
    r.feed(
        &mut c,
        1,
        &segw(client, server, 1000, 0, syn, 64240, Some(7), b""),
    );
    // The server's SYN+ACK has no window-scale option: scaling is off both ways.
    r.feed(
        &mut c,
        2,
        &segw(server, client, 5000, 1001, synack, 65160, None, b""),
    );
    r.feed(
        &mut c,
        3,
        &segw(client, server, 1001, 5001, a, 65535, None, b"x"),
    );
    r.feed(
        &mut c,
        4,
        &segw(server, client, 5001, 1002, a, 65535, None, b"y"),
    );
    r.feed(
        &mut c,
        5,
        &segw(client, server, 1002 + 100_000, 0, rst, 0, None, b""),
    );
    assert!(!c.is_closed());
    assert_eq!(c.reassembler(Side::B).stats().rst_ignored, 1);
    // Mid-stream (no SYN): window 512 is taken as 512 << 14 = 8 MiB.
    let mut m = TcpConnection::new(key, Timestamp(1), ReassemblyLimits::default());
    r.feed(&mut m, 1, &segw(client, server, 1, 7, a, 512, None, b"x"));
    r.feed(&mut m, 2, &segw(server, client, 7, 2, a, 512, None, b"y"));
    r.feed(
        &mut m,
        3,
        &segw(client, server, 2 + (9 << 20), 0, rst, 0, None, b""),
    );
    assert!(!m.is_closed());
    r.feed(
        &mut m,
        4,
        &segw(client, server, 2 + (7 << 20), 0, rst, 0, None, b""),
    );
    assert!(m.is_closed());
    assert_eq!(m.reassembler(Side::B).stats().rst_ignored, 1);
}

/// A stray SYN with a new ISN in the middle of a live connection is ignored whole (no resync, no gap,
/// its ACK field unused) and counted; the stream goes on as if it never came.
#[test]
fn stray_syn_on_an_established_connection_is_ignored() {
    let mut r = Rec(Vec::new());
    let (mut c, client, server) = established(&mut r);
    // Its ACK would acknowledge 100 bytes the server never sent: unused.
    let stray = segw(
        client,
        server,
        777_777,
        5109,
        TcpFlags::SYN | TcpFlags::ACK,
        512,
        None,
        b"",
    );
    assert!(!c.is_port_reuse(Side::B, &stray));
    r.feed(&mut c, 5, &stray);
    let stray = segw(client, server, 888_888, 0, TcpFlags::SYN, 512, None, b"");
    assert!(!c.is_port_reuse(Side::B, &stray));
    r.feed(&mut c, 6, &stray);
    assert_eq!(c.reassembler(Side::B).stats().syn_ignored, 2);
    assert_eq!(c.reassembler(Side::B).stats().resyncs, 0);
    let a = TcpFlags::ACK;
    r.feed(
        &mut c,
        7,
        &segw(client, server, 1008, 5009, a, 512, None, b"more"),
    );
    r.feed(
        &mut c,
        8,
        &segw(server, client, 5009, 1012, a, 512, None, b"answer"),
    );
    let (cs, ss) = (Side::B, Side::A);
    assert_eq!(
        r.0,
        vec![
            (cs, O::D(b"request".to_vec())),
            (ss, O::D(b"response".to_vec())),
            (cs, O::D(b"more".to_vec())),
            (ss, O::D(b"answer".to_vec())),
        ]
    );
    assert_eq!(c.reassembler(Side::A).stats().gaps, 0);
    assert_eq!(c.reassembler(Side::B).stats().gaps, 0);
}

/// Port reuse is still seen: after a close, and when the peer answers the new SYN with a SYN+ACK that
/// acknowledges it (the capture missed the close, or the client restarted).
#[test]
fn new_syn_is_port_reuse_after_close_or_when_the_peer_accepts_it() {
    let mut r = Rec(Vec::new());
    let (mut c, client, server) = established(&mut r);
    let syn = segw(
        client,
        server,
        900_000,
        0,
        TcpFlags::SYN,
        64240,
        Some(7),
        b"",
    );
    assert!(!c.is_port_reuse(Side::B, &syn));
    r.feed(&mut c, 5, &syn);
    // The server's SYN+ACK for another ISN does not confirm it.
    let other = segw(
        server,
        client,
        70_000,
        123,
        TcpFlags::SYN | TcpFlags::ACK,
        65160,
        Some(7),
        b"",
    );
    assert!(!c.is_port_reuse(Side::A, &other));
    let answer = segw(
        server,
        client,
        70_000,
        900_001,
        TcpFlags::SYN | TcpFlags::ACK,
        65160,
        Some(7),
        b"",
    );
    assert!(c.is_port_reuse(Side::A, &answer));
    // After FIN both ways, a new SYN is a new connection at once.
    let mut r = Rec(Vec::new());
    let (mut c, client, server) = established(&mut r);
    let fa = TcpFlags::FIN | TcpFlags::ACK;
    r.feed(
        &mut c,
        5,
        &segw(client, server, 1008, 5009, fa, 512, None, b""),
    );
    r.feed(
        &mut c,
        6,
        &segw(server, client, 5009, 1009, fa, 512, None, b""),
    );
    assert!(c.is_closed());
    assert!(c.is_port_reuse(Side::B, &syn));
    // Not established (only the client was ever seen): a new ISN is a new connection too.
    let (key, _) = FlowKey::new(client, server);
    let mut h = TcpConnection::new(key, Timestamp(1), ReassemblyLimits::default());
    r.feed(
        &mut h,
        1,
        &segw(client, server, 1000, 0, TcpFlags::SYN, 64240, Some(7), b""),
    );
    assert!(h.is_port_reuse(Side::B, &syn));
}
