use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{PacketBuilder, TcpHeader, VlanId};

use crate::packet::*;

const PAYLOAD: &[u8] = b"\x00\x00\x00\x0aKAFKA-BODY";

fn tcp(seq: u32, ack: u32) -> TcpHeader {
    let mut t = TcpHeader::new(40000, 9092, seq, 512);
    t.ack = true;
    t.psh = true;
    t.acknowledgment_number = ack;
    t
}

fn v4_ip(payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ipv4([10, 0, 0, 2], [10, 0, 0, 1], 64).tcp_header(tcp(1000, 77));
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

fn v6_ip(payload: &[u8]) -> Vec<u8> {
    let mut src = [0u8; 16];
    src[15] = 2;
    let mut dst = [0u8; 16];
    dst[15] = 1;
    let b = PacketBuilder::ipv6(src, dst, 64).tcp_header(tcp(1000, 77));
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

fn check_v4(seg: &TcpSegment<'_>, payload: &[u8]) {
    assert_eq!(
        seg.src,
        Endpoint::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 40000)
    );
    assert_eq!(
        seg.dst,
        Endpoint::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 9092)
    );
    assert_eq!(seg.seq, 1000);
    assert_eq!(seg.ack, 77);
    assert_eq!(seg.window, 512);
    assert!(seg.flags.ack() && seg.flags.psh() && !seg.flags.syn() && !seg.flags.fin());
    assert_eq!(seg.payload, payload);
    assert_eq!(seg.payload_len as usize, payload.len());
}

#[test]
fn ethernet_ipv4() {
    let b = PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4([10, 0, 0, 2], [10, 0, 0, 1], 64)
        .tcp_header(tcp(1000, 77));
    let mut f = Vec::new();
    b.write(&mut f, PAYLOAD).unwrap();
    let seg = decode_tcp(LinkType::from_dlt(1), &f).unwrap();
    check_v4(&seg, PAYLOAD);
}

#[test]
fn ethernet_ipv6() {
    let mut f = vec![2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 0x86, 0xdd]; // dst, src, EtherType IPv6
    f.extend(v6_ip(PAYLOAD));
    let seg = decode_tcp(LinkType::Ethernet, &f).unwrap();
    assert_eq!(
        seg.src.ip,
        IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 2))
    );
    assert_eq!(seg.src.to_string(), "[::2]:40000");
    assert_eq!(seg.payload, PAYLOAD);
    assert_eq!(seg.payload_len, PAYLOAD.len() as u32);
}

#[test]
fn vlan_and_qinq() {
    let b = PacketBuilder::ethernet2([1; 6], [2; 6])
        .single_vlan(VlanId::try_new(42).unwrap())
        .ipv4([10, 0, 0, 2], [10, 0, 0, 1], 64)
        .tcp_header(tcp(1000, 77));
    let mut f = Vec::new();
    b.write(&mut f, PAYLOAD).unwrap();
    assert_eq!(&f[12..14], &[0x81, 0x00]);
    check_v4(&decode_tcp(LinkType::Ethernet, &f).unwrap(), PAYLOAD);

    let b = PacketBuilder::ethernet2([1; 6], [2; 6])
        .double_vlan(VlanId::try_new(100).unwrap(), VlanId::try_new(200).unwrap())
        .ipv4([10, 0, 0, 2], [10, 0, 0, 1], 64)
        .tcp_header(tcp(1000, 77));
    let mut f = Vec::new();
    b.write(&mut f, PAYLOAD).unwrap();
    assert_eq!(f.len(), 14 + 8 + 20 + 20 + PAYLOAD.len());
    check_v4(&decode_tcp(LinkType::Ethernet, &f).unwrap(), PAYLOAD);
}

#[test]
fn ethernet_padding_is_not_payload() {
    // A bare ACK: 14 + 20 + 20 = 54 bytes, padded to the 60-byte minimum with 6 bytes.
    let b = PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4([10, 0, 0, 2], [10, 0, 0, 1], 64)
        .tcp_header(tcp(1000, 77));
    let mut f = Vec::new();
    b.write(&mut f, &[]).unwrap();
    assert_eq!(f.len(), 54);
    f.extend_from_slice(&[0xAA; 6]); // padding
    let seg = decode_tcp(LinkType::Ethernet, &f).unwrap();
    assert_eq!(seg.payload, b"");
    assert_eq!(seg.payload_len, 0);
    // Same with 2 bytes of payload and 4 of padding, plus a 4-byte FCS.
    let mut f = Vec::new();
    b_clone().write(&mut f, b"hi").unwrap();
    f.extend_from_slice(&[0; 4]);
    f.extend_from_slice(&[0xDE, 0xAD, 0xBE, 0xEF]);
    let seg = decode_tcp(LinkType::Ethernet, &f).unwrap();
    assert_eq!(seg.payload, b"hi");
    assert_eq!(seg.payload_len, 2);
}

fn b_clone() -> etherparse::PacketBuilderStep<TcpHeader> {
    PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4([10, 0, 0, 2], [10, 0, 0, 1], 64)
        .tcp_header(tcp(1000, 77))
}

#[test]
fn linux_sll() {
    let mut f = vec![
        0, 0, // packet type: to us
        0, 1, // ARPHRD_ETHER
        0, 6, // address length
        1, 2, 3, 4, 5, 6, 0, 0, // address (8 bytes)
        0x08, 0x00, // protocol: IPv4
    ];
    f.extend(v4_ip(PAYLOAD));
    check_v4(&decode_tcp(LinkType::from_dlt(113), &f).unwrap(), PAYLOAD);
    // ARP over SLL is not IP
    f[14] = 0x08;
    f[15] = 0x06;
    assert_eq!(decode_tcp(LinkType::LinuxSll, &f), Err(PacketError::NotIp));
    assert_eq!(
        decode_tcp(LinkType::LinuxSll, &f[..10]),
        Err(PacketError::Truncated)
    );
}

#[test]
fn linux_sll2() {
    let mut f = vec![
        0x86, 0xdd, // protocol: IPv6
        0, 0, // reserved
        0, 0, 0, 1, // interface index
        0, 1, // ARPHRD_ETHER
        4, // packet type: outgoing
        6, // address length
        1, 2, 3, 4, 5, 6, 0, 0, // address (8 bytes)
    ];
    f.extend(v6_ip(PAYLOAD));
    let seg = decode_tcp(LinkType::from_dlt(276), &f).unwrap();
    assert_eq!(seg.dst.to_string(), "[::1]:9092");
    assert_eq!(seg.payload, PAYLOAD);
    assert_eq!(
        decode_tcp(LinkType::LinuxSll2, &f[..19]),
        Err(PacketError::Truncated)
    );
}

#[test]
fn null_and_loop() {
    // DLT_NULL: family in the writer's byte order (little-endian here), AF_INET = 2.
    let mut f = vec![2, 0, 0, 0];
    f.extend(v4_ip(PAYLOAD));
    check_v4(&decode_tcp(LinkType::from_dlt(0), &f).unwrap(), PAYLOAD);
    // Big-endian writer, AF_INET6 = 30 (macOS).
    let mut f = vec![0, 0, 0, 30];
    f.extend(v6_ip(PAYLOAD));
    assert_eq!(decode_tcp(LinkType::Null, &f).unwrap().payload, PAYLOAD);
    // DLT_LOOP: big-endian, AF_INET6 = 24 (OpenBSD).
    let mut f = vec![0, 0, 0, 24];
    f.extend(v6_ip(PAYLOAD));
    assert_eq!(
        decode_tcp(LinkType::from_dlt(108), &f).unwrap().payload,
        PAYLOAD
    );
    // unknown family
    let mut f = vec![0, 0, 0, 7];
    f.extend(v4_ip(PAYLOAD));
    assert_eq!(decode_tcp(LinkType::Loop, &f), Err(PacketError::NotIp));
}

#[test]
fn raw_ip() {
    let f = v4_ip(PAYLOAD);
    for dlt in [101, 12, 14, 228] {
        check_v4(&decode_tcp(LinkType::from_dlt(dlt), &f).unwrap(), PAYLOAD);
    }
    let f = v6_ip(PAYLOAD);
    for dlt in [101, 229] {
        assert_eq!(
            decode_tcp(LinkType::from_dlt(dlt), &f).unwrap().payload,
            PAYLOAD
        );
    }
    assert_eq!(LinkType::from_dlt(147), LinkType::Unsupported(147));
    assert_eq!(
        decode_tcp(LinkType::Unsupported(147), &f),
        Err(PacketError::UnsupportedLink(147))
    );
}

#[test]
fn snaplen_truncated() {
    let big = vec![0x5A; 1000];
    let mut f = Vec::new();
    b_clone().write(&mut f, &big).unwrap();
    // Cut 10 bytes into the payload.
    let seg = decode_tcp(LinkType::Ethernet, &f[..54 + 10]).unwrap();
    assert_eq!(seg.payload, &big[..10]);
    assert_eq!(seg.payload_len, 1000);
    // Cut at the end of the TCP header: empty captured payload, full claimed length.
    let seg = decode_tcp(LinkType::Ethernet, &f[..54]).unwrap();
    assert_eq!(seg.payload.len(), 0);
    assert_eq!(seg.payload_len, 1000);
    // IPv6 as well
    let f6 = v6_ip(&big);
    let seg = decode_tcp(LinkType::Raw, &f6[..60 + 7]).unwrap();
    assert_eq!(seg.payload.len(), 7);
    assert_eq!(seg.payload_len, 1000);
    // Inside the TCP header / IP header / Ethernet header
    assert_eq!(
        decode_tcp(LinkType::Ethernet, &f[..40]),
        Err(PacketError::Truncated)
    );
    assert_eq!(
        decode_tcp(LinkType::Ethernet, &f[..20]),
        Err(PacketError::Truncated)
    );
    assert_eq!(
        decode_tcp(LinkType::Ethernet, &f[..10]),
        Err(PacketError::Truncated)
    );
    assert_eq!(
        decode_tcp(LinkType::Raw, &f6[..30]),
        Err(PacketError::Truncated)
    );
    assert_eq!(decode_tcp(LinkType::Raw, &[]), Err(PacketError::Truncated));
}

#[test]
fn tso_zero_total_length_uses_frame() {
    let mut f = v4_ip(PAYLOAD);
    f[2] = 0; // total length = 0 (segmentation offload)
    f[3] = 0;
    let seg = decode_tcp(LinkType::Raw, &f).unwrap();
    assert_eq!(seg.payload, PAYLOAD);
}

#[test]
fn not_tcp_not_ip_fragment_malformed() {
    let b = PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4([10, 0, 0, 2], [10, 0, 0, 1], 64)
        .udp(1, 2);
    let mut f = Vec::new();
    b.write(&mut f, b"x").unwrap();
    assert_eq!(decode_tcp(LinkType::Ethernet, &f), Err(PacketError::NotTcp));
    // ARP EtherType
    let mut arp = vec![0u8; 60];
    arp[12] = 0x08;
    arp[13] = 0x06;
    assert_eq!(
        decode_tcp(LinkType::Ethernet, &arp),
        Err(PacketError::NotIp)
    );
    // LLDP EtherType
    arp[12] = 0x88;
    arp[13] = 0xcc;
    assert_eq!(
        decode_tcp(LinkType::Ethernet, &arp),
        Err(PacketError::NotIp)
    );
    // fragment: set "more fragments"
    let mut f = v4_ip(PAYLOAD);
    f[6] = 0x20;
    assert_eq!(decode_tcp(LinkType::Raw, &f), Err(PacketError::Fragment));
    // non-first fragment (offset 8)
    let mut f = v4_ip(PAYLOAD);
    f[7] = 1;
    assert_eq!(decode_tcp(LinkType::Raw, &f), Err(PacketError::Fragment));
    // TCP data offset 2 (< 5)
    let mut f = v4_ip(PAYLOAD);
    f[20 + 12] = 0x20;
    assert_eq!(decode_tcp(LinkType::Raw, &f), Err(PacketError::Malformed));
    // IP version 5
    let mut f = v4_ip(PAYLOAD);
    f[0] = 0x55;
    assert_eq!(decode_tcp(LinkType::Raw, &f), Err(PacketError::NotIp));
    // IHL 3 (< 5)
    let mut f = v4_ip(PAYLOAD);
    f[0] = 0x43;
    assert_eq!(decode_tcp(LinkType::Raw, &f), Err(PacketError::Malformed));
}

#[test]
fn flags_debug() {
    assert_eq!(
        format!("{:?}", TcpFlags::SYN | TcpFlags::ACK),
        "TcpFlags(SYN|ACK)"
    );
    assert_eq!(format!("{:?}", TcpFlags::NONE), "TcpFlags()");
}

#[test]
fn never_panics_on_garbage() {
    // Every prefix of a real frame, plus byte flips, for every link type.
    let mut f = Vec::new();
    b_clone().write(&mut f, PAYLOAD).unwrap();
    let links = [
        LinkType::Ethernet,
        LinkType::Null,
        LinkType::Loop,
        LinkType::Raw,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
    ];
    for link in links {
        for n in 0..=f.len() {
            let _ = decode_tcp(link, &f[..n]);
        }
        for i in 0..f.len() {
            let mut g = f.clone();
            g[i] ^= 0xFF;
            let _ = decode_tcp(link, &g);
        }
    }
}
