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

// ---------------------------------------------------------------------------------------------------------
// Overlays: outer headers written by hand, field by field; the inner packets by etherparse's builder.
// ---------------------------------------------------------------------------------------------------------

/// Ethernet II header with `ether_type`, then `payload`.
fn eth(ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x0B, 0x02, 0, 0, 0, 0, 0x0A]; // dst MAC, src MAC
    f.extend_from_slice(&ether_type.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// IPv4 header (no options, DF, checksum left 0: not verified) carrying `proto`, then `payload`.
fn outer_v4(proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x45, 0]; // version 4 IHL 5, DSCP
    f.extend_from_slice(&((20 + payload.len()) as u16).to_be_bytes()); // total length
    f.extend_from_slice(&[0, 0, 0x40, 0]); // identification, DF
    f.extend_from_slice(&[64, proto, 0, 0]); // TTL, protocol, checksum
    f.extend_from_slice(&[192, 168, 0, 1, 192, 168, 0, 2]); // node addresses
    f.extend_from_slice(payload);
    f
}

/// IPv6 header carrying `next`, then `payload`.
fn outer_v6(next: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x60, 0, 0, 0]; // version 6, traffic class, flow label
    f.extend_from_slice(&(payload.len() as u16).to_be_bytes()); // payload length
    f.extend_from_slice(&[next, 64]); // next header, hop limit
    f.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]); // source
    f.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]); // destination
    f.extend_from_slice(payload);
    f
}

/// UDP header (source port 51000: the tunnel's entropy; checksum 0) to `dst_port`, then `payload`.
fn udp(dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = 51000u16.to_be_bytes().to_vec();
    f.extend_from_slice(&dst_port.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes()); // length
    f.extend_from_slice(&[0, 0]); // checksum
    f.extend_from_slice(payload);
    f
}

/// VXLAN header (I flag, VNI 4096), then `inner` (an Ethernet frame).
fn vxlan(inner: &[u8]) -> Vec<u8> {
    let mut f = vec![0x08, 0, 0, 0]; // flags: I; reserved
    f.extend_from_slice(&[0x00, 0x10, 0x00, 0]); // VNI 4096; reserved
    f.extend_from_slice(inner);
    f
}

/// The Kafka segment of the other tests as an Ethernet frame.
fn inner_eth() -> Vec<u8> {
    let mut f = Vec::new();
    b_clone().write(&mut f, PAYLOAD).unwrap();
    f
}

#[test]
fn vxlan_on_both_ports_is_decapsulated() {
    for port in [4789, 8472] {
        let f = eth(0x0800, &outer_v4(17, &udp(port, &vxlan(&inner_eth()))));
        let seg = decode_tcp(LinkType::Ethernet, &f).unwrap();
        check_v4(&seg, PAYLOAD);
        assert_eq!(seg.encap, 1);
        // Over IPv6 and a cooked capture too.
        let f = outer_v6(17, &udp(port, &vxlan(&inner_eth())));
        let seg = decode_tcp(LinkType::Raw, &f).unwrap();
        check_v4(&seg, PAYLOAD);
    }
    // The inner frame's Ethernet padding is not payload: a bare ACK padded to 60 bytes.
    let mut bare = Vec::new();
    b_clone().write(&mut bare, &[]).unwrap();
    bare.extend_from_slice(&[0xAA; 6]);
    let f = eth(0x0800, &outer_v4(17, &udp(4789, &vxlan(&bare))));
    let seg = decode_tcp(LinkType::Ethernet, &f).unwrap();
    assert_eq!((seg.payload, seg.payload_len), (&b""[..], 0));
    // Not VXLAN: the I flag clear, another port, a header cut short.
    let mut no_i = vxlan(&inner_eth());
    no_i[0] = 0;
    let f = eth(0x0800, &outer_v4(17, &udp(4789, &no_i)));
    assert_eq!(decode_tcp(LinkType::Ethernet, &f), Err(PacketError::NotTcp));
    let f = eth(0x0800, &outer_v4(17, &udp(4790, &vxlan(&inner_eth()))));
    assert_eq!(decode_tcp(LinkType::Ethernet, &f), Err(PacketError::NotTcp));
    let f = eth(0x0800, &outer_v4(17, &udp(4789, &[0x08, 0, 0])));
    assert_eq!(
        decode_tcp(LinkType::Ethernet, &f),
        Err(PacketError::Truncated)
    );
    // An inner ARP frame: the outer packet was IP, so "not TCP".
    let mut arp = vec![0u8; 60];
    arp[12] = 0x08;
    arp[13] = 0x06;
    let f = eth(0x0800, &outer_v4(17, &udp(4789, &vxlan(&arp))));
    assert_eq!(decode_tcp(LinkType::Ethernet, &f), Err(PacketError::NotTcp));
}

#[test]
fn vxlan_snaplen_cut_inside_the_inner_payload() {
    let big = vec![0x5A; 1000];
    let mut inner = Vec::new();
    b_clone().write(&mut inner, &big).unwrap();
    let f = eth(0x0800, &outer_v4(17, &udp(8472, &vxlan(&inner))));
    // Outer 14 + 20 + 8 + 8, inner 14 + 20 + 20, then 10 payload bytes.
    let cut = 50 + 54 + 10;
    let seg = decode_tcp(LinkType::Ethernet, &f[..cut]).unwrap();
    assert_eq!(seg.payload, &big[..10]);
    assert_eq!(seg.payload_len, 1000);
}

#[test]
fn geneve_with_options_and_either_payload() {
    // ver 0, opt len 2 words; flags; protocol 0x6558 (Ethernet); VNI 7; one 8-byte option.
    let mut g = vec![0x02, 0x00, 0x65, 0x58, 0, 0, 7, 0];
    g.extend_from_slice(&[0x01, 0x02, 0x80, 0x01, 0xDE, 0xAD, 0xBE, 0xEF]); // class, type, len 1 word, data
    let mut f = g.clone();
    f.extend(inner_eth());
    let pkt = outer_v4(17, &udp(6081, &f));
    let seg = decode_tcp(LinkType::Raw, &pkt).unwrap();
    check_v4(&seg, PAYLOAD);
    assert_eq!(seg.encap, 1);
    // Protocol 0x0800: an IPv4 packet right after the header.
    let mut f = vec![0x00, 0x00, 0x08, 0x00, 0, 0, 7, 0];
    f.extend(v4_ip(PAYLOAD));
    check_v4(
        &decode_tcp(LinkType::Raw, &outer_v4(17, &udp(6081, &f))).unwrap(),
        PAYLOAD,
    );
    // Version 1 is not Geneve as we know it; options longer than the packet are a cut.
    let mut v1 = g.clone();
    v1[0] |= 0x40;
    v1.extend(inner_eth());
    assert_eq!(
        decode_tcp(LinkType::Raw, &outer_v4(17, &udp(6081, &v1))),
        Err(PacketError::NotTcp)
    );
    let long = [0x3F, 0, 0x65, 0x58, 0, 0, 7, 0];
    assert_eq!(
        decode_tcp(LinkType::Raw, &outer_v4(17, &udp(6081, &long))),
        Err(PacketError::Truncated)
    );
}

#[test]
fn ip_in_ip_both_numbers_under_both_versions() {
    let pkt = eth(0x0800, &outer_v4(4, &v4_ip(PAYLOAD)));
    let seg = decode_tcp(LinkType::Ethernet, &pkt).unwrap();
    check_v4(&seg, PAYLOAD);
    assert_eq!(seg.encap, 1);
    let pkt = outer_v6(4, &v4_ip(PAYLOAD));
    let seg = decode_tcp(LinkType::Raw, &pkt).unwrap();
    check_v4(&seg, PAYLOAD);
    for outer in [outer_v4(41, &v6_ip(PAYLOAD)), outer_v6(41, &v6_ip(PAYLOAD))] {
        let seg = decode_tcp(LinkType::Raw, &outer).unwrap();
        assert_eq!(seg.src.to_string(), "[::2]:40000");
        assert_eq!(seg.payload, PAYLOAD);
        assert_eq!(seg.encap, 1);
    }
    // IPv4 inside, cut inside its header.
    assert_eq!(
        decode_tcp(LinkType::Raw, &outer_v4(4, &v4_ip(PAYLOAD)[..12])),
        Err(PacketError::Truncated)
    );
}

#[test]
fn gre_with_ethernet_or_ip_payload() {
    // Flags K and S (key 0x0000_2a2a, sequence 9), protocol 0x6558: an Ethernet frame.
    let mut g = vec![0x30, 0x00, 0x65, 0x58];
    g.extend_from_slice(&[0, 0, 0x2a, 0x2a, 0, 0, 0, 9]);
    g.extend(inner_eth());
    let pkt = eth(0x0800, &outer_v4(47, &g));
    let seg = decode_tcp(LinkType::Ethernet, &pkt).unwrap();
    check_v4(&seg, PAYLOAD);
    assert_eq!(seg.encap, 1);
    // Flag C (checksum + reserved), protocol 0x0800, over IPv6.
    let mut g = vec![0x80, 0x00, 0x08, 0x00, 0xAB, 0xCD, 0, 0];
    g.extend(v4_ip(PAYLOAD));
    check_v4(
        &decode_tcp(LinkType::Raw, &outer_v6(47, &g)).unwrap(),
        PAYLOAD,
    );
    // Protocol 0x86DD: IPv6.
    let mut g = vec![0x00, 0x00, 0x86, 0xDD];
    g.extend(v6_ip(PAYLOAD));
    assert_eq!(
        decode_tcp(LinkType::Raw, &outer_v4(47, &g))
            .unwrap()
            .payload,
        PAYLOAD
    );
    // Version 1 (PPTP), ERSPAN type II (0x88BE), a header cut short.
    let mut v1 = vec![0x20, 0x01, 0x88, 0x0B, 0, 0, 0, 0];
    v1.extend(v4_ip(PAYLOAD));
    assert_eq!(
        decode_tcp(LinkType::Raw, &outer_v4(47, &v1)),
        Err(PacketError::NotTcp)
    );
    let mut erspan = vec![0x10, 0x00, 0x88, 0xBE, 0, 0, 0, 1];
    erspan.extend(inner_eth());
    assert_eq!(
        decode_tcp(LinkType::Raw, &outer_v4(47, &erspan)),
        Err(PacketError::NotTcp)
    );
    assert_eq!(
        decode_tcp(LinkType::Raw, &outer_v4(47, &[0x30, 0, 0x65, 0x58, 0, 0])),
        Err(PacketError::Truncated)
    );
}

#[test]
fn tunnels_nest_two_deep_at_most() {
    // VXLAN inside GRE (two levels): decoded.
    let vx = eth(0x0800, &outer_v4(17, &udp(4789, &vxlan(&inner_eth()))));
    let mut g = vec![0x00, 0x00, 0x65, 0x58];
    g.extend(&vx);
    let two = outer_v4(47, &g);
    let seg = decode_tcp(LinkType::Raw, &two).unwrap();
    check_v4(&seg, PAYLOAD);
    assert_eq!(seg.encap, 2);
    // One more IP-in-IP around it: three levels, refused.
    assert_eq!(
        decode_tcp(LinkType::Raw, &outer_v4(4, &two)),
        Err(PacketError::TunnelTooDeep)
    );
    assert_eq!(MAX_ENCAP_DEPTH, 2);
    // An outer fragment is a fragment, whatever it carries.
    let mut frag = outer_v4(17, &udp(4789, &vxlan(&inner_eth())));
    frag[6] = 0x20; // more fragments
    assert_eq!(decode_tcp(LinkType::Raw, &frag), Err(PacketError::Fragment));
}

#[test]
fn window_scale_option_of_syn_segments() {
    let mut h = TcpHeader::new(40000, 9092, 1000, 64240);
    h.syn = true;
    h.set_options(&[
        etherparse::TcpOptionElement::MaximumSegmentSize(1460),
        etherparse::TcpOptionElement::Noop,
        etherparse::TcpOptionElement::WindowScale(7),
    ])
    .unwrap();
    let mut f = Vec::new();
    PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4([10, 0, 0, 2], [10, 0, 0, 1], 64)
        .tcp_header(h.clone())
        .write(&mut f, &[])
        .unwrap();
    assert_eq!(decode_tcp(LinkType::Ethernet, &f).unwrap().wscale, Some(7)); // fast path
    let mut f = Vec::new();
    PacketBuilder::ipv6([0; 16], [1; 16], 64)
        .tcp_header(h.clone())
        .write(&mut f, &[])
        .unwrap();
    assert_eq!(decode_tcp(LinkType::Raw, &f).unwrap().wscale, Some(7)); // general path
                                                                        // Not a SYN: the option is not looked at.
    h.syn = false;
    h.ack = true;
    let mut f = Vec::new();
    PacketBuilder::ipv4([10, 0, 0, 2], [10, 0, 0, 1], 64)
        .tcp_header(h)
        .write(&mut f, &[])
        .unwrap();
    assert_eq!(decode_tcp(LinkType::Raw, &f).unwrap().wscale, None);
    assert_eq!(
        decode_tcp(LinkType::Raw, &v4_ip(PAYLOAD)).unwrap().wscale,
        None
    );
}

#[test]
fn tunnels_never_panic_on_garbage() {
    let vx = eth(0x0800, &outer_v4(17, &udp(4789, &vxlan(&inner_eth()))));
    let mut g = vec![0xB0, 0x00, 0x65, 0x58, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2];
    g.extend(&vx);
    let gre = eth(0x0800, &outer_v4(47, &g));
    for f in [vx, gre] {
        for n in 0..=f.len() {
            let _ = decode_tcp(LinkType::Ethernet, &f[..n]);
        }
        for i in 0..f.len() {
            for x in [0xFF, 0x40, 0x01] {
                let mut g = f.clone();
                g[i] ^= x;
                let _ = decode_tcp(LinkType::Ethernet, &g);
            }
        }
    }
}

/// The encoders' IPv4 endpoint form is byte for byte what `Display` (std's `SocketAddr`) writes;
/// IPv6 is left to `Display`.
#[test]
fn endpoint_write_v4_matches_display() {
    for (ip, port) in [
        ([0, 0, 0, 0], 0),
        ([255, 255, 255, 255], 65535),
        ([10, 0, 0, 1], 9092),
        ([1, 22, 133, 4], 100),
        ([127, 0, 0, 1], 10),
        ([192, 168, 100, 99], 1000),
        ([9, 99, 199, 200], 10_000),
    ] {
        let e = Endpoint::new(IpAddr::V4(Ipv4Addr::from(ip)), port);
        let mut b = [0u8; 21];
        let n = e.write_v4(&mut b).unwrap();
        assert_eq!(std::str::from_utf8(&b[..n]).unwrap(), e.to_string());
    }
    let v6 = Endpoint::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 9092);
    assert_eq!(v6.write_v4(&mut [0u8; 21]), None);
    assert_eq!(v6.to_string(), "[::1]:9092");
}
