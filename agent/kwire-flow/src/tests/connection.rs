use std::net::{IpAddr, Ipv4Addr};

use super::reassembly::{Sink, O};
use crate::connection::TcpConnection;
use crate::flow_key::{Direction, FlowKey, Side};
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
    assert_eq!(c.client, Some(Side::B));
    assert_eq!(c.direction(Side::B), Some(Direction::ToServer));
    assert_eq!(c.direction(Side::A), Some(Direction::ToClient));
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
fn syn_ack_names_server_and_port_reuse() {
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
    assert_eq!(c.client, Some(Side::B));
    r.feed(
        &mut c,
        2,
        &seg(client, server, 101, 501, TcpFlags::ACK, b"x"),
    );
    let same = seg(client, server, 100, 0, TcpFlags::SYN, b"");
    assert!(c.is_port_reuse(Side::B, &same));
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
    assert_eq!(c.client, None);
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
