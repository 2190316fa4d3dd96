//! Link layer → TCP segment: [`decode_tcp`] slices one captured frame into a [`TcpSegment`] without copying.
//!
//! Supported link types ([`LinkType`]): Ethernet (with VLAN / QinQ through etherparse), Linux cooked
//! capture v1 (SLL, 16-byte header) and v2 (SLL2, 20-byte header), BSD loopback NULL (host-endian family)
//! and LOOP (big-endian family), and raw IPv4/IPv6. IP parsing (options, IPv6 extension headers) is
//! etherparse's lax parser, so snaplen-truncated frames still yield their headers and partial payload.
//!
//! What is easy to get wrong:
//! * Ethernet pads short frames to 60 bytes: a bare ACK carries 6 bytes of padding after the IP packet.
//!   The TCP payload must be bounded by the IP total length (IPv4) / payload length (IPv6), never by the
//!   frame length. etherparse's lax slicing does that when the length field is consistent.
//! * Snaplen truncation: `payload.len()` is what was captured; `payload_len` is what the IP header says was
//!   sent. Reassembly needs both (it reports the missing bytes as a gap instead of desynchronising).
//! * Segmentation offload: a capture taken on the sending host can show IPv4 total length 0 or IPv6
//!   payload length 0 (TSO/GSO). Then the frame length is the only length there is and we use it.
//! * NULL loopback stores the address family in the *writer's* byte order; we accept both orders and the
//!   AF_INET6 values of the different BSDs (24, 28, 30) plus Linux's 10.
//! * SLL/SLL2 are parsed by hand (etherparse 0.21 has no lax SLL entry point): the protocol field is an
//!   EtherType for IP; anything else is `NotIp`.
//! * IP fragments are reported as [`PacketError::Fragment`] (the caller counts them); we do not reassemble
//!   IP fragments (Kafka traffic over TCP with PMTU discovery practically never fragments). That holds for
//!   tunnels too: a fragmented outer packet (an overlay whose MTU was not lowered) is counted, not decoded.
//!
//! Overlays (pod networks, cloud fabrics) are decapsulated, hand-parsed with bounds checks because
//! etherparse 0.21 knows none of them: VXLAN (UDP destination port 4789, and 8472 as Flannel and the Linux
//! default use), Geneve (UDP 6081; options skipped by their length), IP-in-IP (IP protocol 4: IPv4
//! inside, 41: IPv6 inside, under either IP version), and GRE version 0 (protocol 47; checksum, key and
//! sequence fields skipped; Ethernet (0x6558, transparent bridging) or IP payloads; ERSPAN and the other
//! payload types are "not TCP"). At most [`MAX_ENCAP_DEPTH`] tunnel headers are removed; a packet nested
//! deeper is [`PacketError::TunnelTooDeep`]. The segment says how many it went through
//! ([`TcpSegment::encap`]). What is easy to get wrong there:
//! * The flow key is the inner 5-tuple: the tunnel id (VNI, GRE key) is not part of it, so two tenants
//!   with the same inner addresses and ports would share a flow (overlays in one capture rarely overlap).
//! * Ports are how VXLAN and Geneve are recognised: a tunnel on another port stays "not TCP". A UDP packet
//!   to those ports that is not a tunnel (VXLAN without the I flag, Geneve version != 0) is "not TCP";
//!   an inner packet that is not IP is "not TCP" too (the outer one was IP).
//! * The inner packet's lengths bound its payload (like any IP packet), not the outer packet's: a VXLAN
//!   frame's inner Ethernet padding is excluded the same way.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use etherparse::{ether_type, ip_number, EtherType, LaxNetSlice, LaxSlicedPacket, TransportSlice};

/// Link-layer header type of a capture (pcap `LINKTYPE_*` / `DLT_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// LINKTYPE_ETHERNET (1).
    Ethernet,
    /// DLT_NULL (0): 4-byte address family in the byte order of the host that wrote the file.
    Null,
    /// DLT_LOOP (108, OpenBSD): 4-byte address family, big-endian.
    Loop,
    /// LINKTYPE_RAW (101), also DLT_RAW values 12 and 14 written by some OSes: IPv4 or IPv6 by version nibble.
    Raw,
    /// LINKTYPE_IPV4 (228).
    Ipv4,
    /// LINKTYPE_IPV6 (229).
    Ipv6,
    /// LINKTYPE_LINUX_SLL (113): Linux cooked capture v1 (`tcpdump -i any` on older libpcap).
    LinuxSll,
    /// LINKTYPE_LINUX_SLL2 (276): Linux cooked capture v2 (`tcpdump -i any` on libpcap >= 1.10).
    LinuxSll2,
    /// Anything else; carries the raw value for error messages.
    Unsupported(u32),
}

impl LinkType {
    /// Maps a pcap/pcapng link-type value. Only the low 16 bits are the type: in pcap file headers the
    /// upper bits may carry FCS information, which we ignore (the FCS, if any, lies beyond the IP length).
    pub fn from_dlt(dlt: u32) -> LinkType {
        match dlt & 0xFFFF {
            1 => LinkType::Ethernet,
            0 => LinkType::Null,
            108 => LinkType::Loop,
            101 | 12 | 14 => LinkType::Raw,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            113 => LinkType::LinuxSll,
            276 => LinkType::LinuxSll2,
            _ => LinkType::Unsupported(dlt),
        }
    }

    /// The canonical LINKTYPE value (for writing or printing).
    pub fn to_dlt(&self) -> u32 {
        match self {
            LinkType::Ethernet => 1,
            LinkType::Null => 0,
            LinkType::Loop => 108,
            LinkType::Raw => 101,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
            LinkType::LinuxSll => 113,
            LinkType::LinuxSll2 => 276,
            LinkType::Unsupported(v) => *v,
        }
    }
}

/// One TCP endpoint (IP address and port).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
}

impl Endpoint {
    pub fn new(ip: IpAddr, port: u16) -> Endpoint {
        Endpoint { ip, port }
    }

    /// `1.2.3.4:9092` written into `buf` (the first `n` bytes, returned) for an IPv4 endpoint; None for
    /// IPv6 (`Display` writes those). Encoders write two addresses per exchange: this skips the
    /// formatting machinery.
    pub fn write_v4(&self, buf: &mut [u8; 21]) -> Option<usize> {
        let IpAddr::V4(v4) = self.ip else {
            return None;
        };
        /// Appends the decimal digits of `v` (< 100,000) at `n`; returns the new length.
        fn put(buf: &mut [u8; 21], n: usize, v: u32) -> usize {
            let mut digits = [0u8; 6];
            let pairs = [v / 10_000, v / 100, v].map(crate::time::two_digits);
            for (k, p) in pairs.iter().enumerate() {
                digits[2 * k..2 * k + 2].copy_from_slice(p);
            }
            let skip = match v {
                0..=9 => 5,
                10..=99 => 4,
                100..=999 => 3,
                1_000..=9_999 => 2,
                _ => 1,
            };
            let len = 6 - skip;
            buf[n..n + len].copy_from_slice(&digits[skip..]);
            n + len
        }
        let mut n = 0;
        for (i, o) in v4.octets().into_iter().enumerate() {
            if i > 0 {
                buf[n] = b'.';
                n += 1;
            }
            n = put(buf, n, u32::from(o));
        }
        buf[n] = b':';
        n = put(buf, n + 1, u32::from(self.port));
        Some(n)
    }
}

impl fmt::Display for Endpoint {
    /// `1.2.3.4:9092` or `[::1]:9092`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&SocketAddr::new(self.ip, self.port), f)
    }
}

/// TCP flags (the low byte of the flags field: FIN SYN RST PSH ACK URG ECE CWR).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: TcpFlags = TcpFlags(0x01);
    pub const SYN: TcpFlags = TcpFlags(0x02);
    pub const RST: TcpFlags = TcpFlags(0x04);
    pub const PSH: TcpFlags = TcpFlags(0x08);
    pub const ACK: TcpFlags = TcpFlags(0x10);
    pub const NONE: TcpFlags = TcpFlags(0);

    pub fn bits(&self) -> u8 {
        self.0
    }
    pub fn contains(&self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
    pub fn syn(&self) -> bool {
        self.contains(Self::SYN)
    }
    pub fn fin(&self) -> bool {
        self.contains(Self::FIN)
    }
    pub fn rst(&self) -> bool {
        self.contains(Self::RST)
    }
    pub fn ack(&self) -> bool {
        self.contains(Self::ACK)
    }
    pub fn psh(&self) -> bool {
        self.contains(Self::PSH)
    }
}

impl std::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl fmt::Debug for TcpFlags {
    /// e.g. `TcpFlags(SYN|ACK)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(u8, &str); 8] = [
            (0x02, "SYN"),
            (0x10, "ACK"),
            (0x08, "PSH"),
            (0x01, "FIN"),
            (0x04, "RST"),
            (0x20, "URG"),
            (0x40, "ECE"),
            (0x80, "CWR"),
        ];
        f.write_str("TcpFlags(")?;
        let mut first = true;
        for (bit, name) in NAMES {
            if self.0 & bit != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        f.write_str(")")
    }
}

/// One decoded TCP segment, borrowing the captured frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    pub src: Endpoint,
    pub dst: Endpoint,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub window: u16,
    /// What was captured of the TCP payload (Ethernet padding excluded).
    pub payload: &'a [u8],
    /// What the IP header says the payload is: `>= payload.len()`, larger when snaplen cut the frame.
    pub payload_len: u32,
    /// Window-scale option (shift count) of a SYN segment; None otherwise or when absent.
    pub wscale: Option<u8>,
    /// Tunnel headers removed to reach this segment (0: not tunnelled).
    pub encap: u8,
}

/// Why a frame did not yield a TCP segment. The caller counts these; none of them is fatal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketError {
    /// The frame ends before the link, IP or TCP header is complete.
    Truncated,
    /// Not an IP packet (ARP, LLDP, unknown EtherType / address family, ...).
    NotIp,
    /// IP, but not TCP (UDP, ICMP, ...).
    NotTcp,
    /// An IP fragment; not reassembled.
    Fragment,
    /// The link type is not supported (carries the raw LINKTYPE value).
    UnsupportedLink(u32),
    /// Header content is invalid (bad IP version/IHL, TCP data offset < 5, ...).
    Malformed,
    /// Tunnels nested deeper than [`MAX_ENCAP_DEPTH`].
    TunnelTooDeep,
}

/// Tunnel headers (VXLAN, Geneve, IP-in-IP, GRE) removed at most from one packet.
pub const MAX_ENCAP_DEPTH: u8 = 2;
/// UDP destination ports of VXLAN: IANA's, and Linux's / Flannel's.
const VXLAN_PORTS: [u16; 2] = [4789, 8472];
/// UDP destination port of Geneve.
const GENEVE_PORT: u16 = 6081;
/// EtherType of transparent Ethernet bridging (an Ethernet frame inside GRE or Geneve).
const ETHER_BRIDGING: u16 = 0x6558;

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PacketError::Truncated => f.write_str("truncated before the end of the TCP header"),
            PacketError::NotIp => f.write_str("not IP"),
            PacketError::NotTcp => f.write_str("not TCP"),
            PacketError::Fragment => f.write_str("IP fragment"),
            PacketError::UnsupportedLink(v) => write!(f, "unsupported link type {v}"),
            PacketError::Malformed => f.write_str("malformed header"),
            PacketError::TunnelTooDeep => write!(f, "more than {MAX_ENCAP_DEPTH} tunnels deep"),
        }
    }
}

impl std::error::Error for PacketError {}

/// Decodes one captured frame of link type `link` into a TCP segment.
pub fn decode_tcp(link: LinkType, data: &[u8]) -> Result<TcpSegment<'_>, PacketError> {
    decode_at(link, data, 0)
}

/// `depth`: tunnel headers already removed.
fn decode_at(link: LinkType, data: &[u8], depth: u8) -> Result<TcpSegment<'_>, PacketError> {
    if link == LinkType::Ethernet {
        if let Some(mut seg) = fast_ethernet_ipv4_tcp(data) {
            seg.encap = depth;
            return Ok(seg);
        }
    }
    let sliced = match link {
        LinkType::Ethernet => {
            LaxSlicedPacket::from_ethernet(data).map_err(|_| PacketError::Truncated)?
        }
        LinkType::Raw | LinkType::Ipv4 | LinkType::Ipv6 => from_ip(data)?,
        LinkType::Null | LinkType::Loop => {
            let fam = data.get(0..4).ok_or(PacketError::Truncated)?;
            let fam = [fam[0], fam[1], fam[2], fam[3]];
            // The family is a small number: whichever byte order gives one is the writer's.
            let le = u32::from_le_bytes(fam);
            let family = if le <= 0xFFFF {
                le
            } else {
                u32::from_be_bytes(fam)
            };
            match family {
                // AF_INET everywhere; AF_INET6 on Linux (10), Windows (23), NetBSD/OpenBSD (24),
                // FreeBSD (28), macOS (30).
                2 | 10 | 23 | 24 | 28 | 30 => from_ip(data.get(4..).unwrap_or(&[]))?,
                _ => return Err(PacketError::NotIp),
            }
        }
        LinkType::LinuxSll => {
            // 16 bytes: packet type(2) ARPHRD(2) addr len(2) addr(8) protocol(2).
            let proto = data.get(14..16).ok_or(PacketError::Truncated)?;
            let proto = u16::from_be_bytes([proto[0], proto[1]]);
            from_ether_type(proto, data.get(16..).unwrap_or(&[]))?
        }
        LinkType::LinuxSll2 => {
            // 20 bytes: protocol(2) reserved(2) ifindex(4) ARPHRD(2) packet type(1) addr len(1) addr(8).
            let proto = data.get(0..2).ok_or(PacketError::Truncated)?;
            if data.len() < 20 {
                return Err(PacketError::Truncated);
            }
            let proto = u16::from_be_bytes([proto[0], proto[1]]);
            from_ether_type(proto, data.get(20..).unwrap_or(&[]))?
        }
        LinkType::Unsupported(v) => return Err(PacketError::UnsupportedLink(v)),
    };
    from_sliced(&sliced, depth)
}

/// What a tunnel header says follows it.
#[derive(Clone, Copy)]
enum Inner {
    Ethernet,
    EtherType(u16),
    Ip,
}

/// Decodes the packet inside a tunnel (one more level deep).
fn decode_inner(inner: Inner, data: &[u8], depth: u8) -> Result<TcpSegment<'_>, PacketError> {
    if depth >= MAX_ENCAP_DEPTH {
        return Err(PacketError::TunnelTooDeep);
    }
    let depth = depth + 1;
    let r = match inner {
        Inner::Ethernet => decode_at(LinkType::Ethernet, data, depth),
        Inner::Ip => decode_at(LinkType::Raw, data, depth),
        Inner::EtherType(et) => match from_ether_type(et, data) {
            Ok(p) => from_sliced(&p, depth),
            Err(e) => Err(e),
        },
    };
    // The outer packet was IP: whatever it carried that is not IP is "not TCP".
    r.map_err(|e| match e {
        PacketError::NotIp | PacketError::UnsupportedLink(_) => PacketError::NotTcp,
        e => e,
    })
}

/// A UDP datagram to a VXLAN or Geneve port: the tunnelled packet.
fn decap_udp(dst_port: u16, p: &[u8], depth: u8) -> Result<TcpSegment<'_>, PacketError> {
    if VXLAN_PORTS.contains(&dst_port) {
        // flags(1: I = 0x08, VNI valid) reserved(3) VNI(3) reserved(1), then an Ethernet frame.
        let h = p.get(..8).ok_or(PacketError::Truncated)?;
        if h[0] & 0x08 == 0 {
            return Err(PacketError::NotTcp);
        }
        return decode_inner(Inner::Ethernet, p.get(8..).unwrap_or(&[]), depth);
    }
    if dst_port == GENEVE_PORT {
        // ver(2 bits) opt len(6 bits, 4-byte words) | O C flags | protocol type(2) | VNI(3) reserved(1).
        let h = p.get(..8).ok_or(PacketError::Truncated)?;
        if h[0] >> 6 != 0 {
            return Err(PacketError::NotTcp);
        }
        let len = 8 + usize::from(h[0] & 0x3F) * 4;
        let inner = p.get(len..).ok_or(PacketError::Truncated)?;
        let proto = u16::from_be_bytes([h[2], h[3]]);
        let kind = if proto == ETHER_BRIDGING {
            Inner::Ethernet
        } else {
            Inner::EtherType(proto)
        };
        return decode_inner(kind, inner, depth);
    }
    Err(PacketError::NotTcp)
}

/// GRE (RFC 2784 / 2890), version 0: flags and version(2) protocol type(2), then checksum + reserved
/// (if C), key (if K), sequence number (if S), each 4 bytes.
fn decap_gre(p: &[u8], depth: u8) -> Result<TcpSegment<'_>, PacketError> {
    let h = p.get(..4).ok_or(PacketError::Truncated)?;
    let flags = u16::from_be_bytes([h[0], h[1]]);
    // Version 1 is PPTP's enhanced GRE; the routing bit (RFC 1701) is obsolete: neither carries Kafka.
    if flags & 0x0007 != 0 || flags & 0x4000 != 0 {
        return Err(PacketError::NotTcp);
    }
    let len = 4 + [0x8000u16, 0x2000, 0x1000]
        .iter()
        .filter(|&&bit| flags & bit != 0)
        .count()
        * 4;
    let inner = p.get(len..).ok_or(PacketError::Truncated)?;
    let proto = u16::from_be_bytes([h[2], h[3]]);
    let kind = if proto == ETHER_BRIDGING {
        Inner::Ethernet
    } else {
        Inner::EtherType(proto)
    };
    decode_inner(kind, inner, depth)
}

/// The window-scale option of a SYN's options (kind 3).
fn window_scale(options: &[u8]) -> Option<u8> {
    use etherparse::TcpOptionElement;
    etherparse::TcpOptionsIterator::from_slice(options)
        .map_while(Result::ok)
        .find_map(|o| match o {
            TcpOptionElement::WindowScale(s) => Some(s),
            _ => None,
        })
}

/// The common case — Ethernet, IPv4 without fragmentation, a complete TCP header, IP total length
/// consistent with the capture — through etherparse's zero-copy header slices. `None` sends the frame
/// down the general path (VLAN, IPv6, truncation, fragments, odd lengths), which gives the same answer
/// for these frames. Why: the general path builds a `LaxSlicedPacket`, whose copies were ~20% of a whole
/// replay profile on 1500-byte packets.
#[inline]
fn fast_ethernet_ipv4_tcp(data: &[u8]) -> Option<TcpSegment<'_>> {
    if data.len() < 14 + 20 + 20 || data[12] != 0x08 || data[13] != 0x00 {
        return None;
    }
    let ip = etherparse::Ipv4HeaderSlice::from_slice(&data[14..]).ok()?;
    if ip.protocol() != ip_number::TCP || ip.is_fragmenting_payload() {
        return None;
    }
    let ihl = ip.slice().len();
    let total = usize::from(ip.total_len());
    let ip_end = 14 + total;
    if total < ihl + 20 || ip_end > data.len() {
        return None;
    }
    let tcp = etherparse::TcpHeaderSlice::from_slice(&data[14 + ihl..ip_end]).ok()?;
    let payload = &data[14 + ihl + tcp.slice().len()..ip_end];
    let wscale = if tcp.syn() {
        window_scale(tcp.options())
    } else {
        None
    };
    Some(TcpSegment {
        src: Endpoint::new(IpAddr::V4(ip.source_addr()), tcp.source_port()),
        dst: Endpoint::new(IpAddr::V4(ip.destination_addr()), tcp.destination_port()),
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        flags: TcpFlags(tcp.slice().get(13).copied().unwrap_or(0)),
        window: tcp.window_size(),
        payload,
        payload_len: payload.len() as u32,
        wscale,
        encap: 0,
    })
}

fn from_ip(data: &[u8]) -> Result<LaxSlicedPacket<'_>, PacketError> {
    use etherparse::err::ip::{HeaderError, LaxHeaderSliceError};
    match LaxSlicedPacket::from_ip(data) {
        Ok(p) => Ok(p),
        Err(LaxHeaderSliceError::Len(_)) => Err(PacketError::Truncated),
        Err(LaxHeaderSliceError::Content(HeaderError::UnsupportedIpVersion { .. })) => {
            Err(PacketError::NotIp)
        }
        Err(LaxHeaderSliceError::Content(_)) => Err(PacketError::Malformed),
    }
}

fn from_ether_type(proto: u16, data: &[u8]) -> Result<LaxSlicedPacket<'_>, PacketError> {
    let et = EtherType(proto);
    match et {
        ether_type::IPV4
        | ether_type::IPV6
        | ether_type::VLAN_TAGGED_FRAME
        | ether_type::PROVIDER_BRIDGING
        | ether_type::VLAN_DOUBLE_TAGGED_FRAME => Ok(LaxSlicedPacket::from_ether_type(et, data)),
        _ => Err(PacketError::NotIp),
    }
}

fn stop_error(p: &LaxSlicedPacket<'_>) -> PacketError {
    use etherparse::err::packet::SliceError;
    match &p.stop_err {
        Some((SliceError::Len(_), _)) => PacketError::Truncated,
        Some(_) => PacketError::Malformed,
        None => PacketError::NotIp,
    }
}

fn from_sliced<'a>(p: &LaxSlicedPacket<'a>, depth: u8) -> Result<TcpSegment<'a>, PacketError> {
    let (ip_start, claimed_ip_len, src_ip, dst_ip, ip_payload) = match &p.net {
        Some(LaxNetSlice::Ipv4(v4)) => {
            let h = v4.header();
            let total = usize::from(h.total_len());
            // total_len smaller than the header: TSO capture or junk; etherparse falls back to the slice.
            let claimed = (total >= h.slice().len()).then_some(total);
            (
                h.slice().as_ptr() as usize,
                claimed,
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                v4.payload(),
            )
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            let h = v6.header();
            let pl = usize::from(h.payload_length());
            let claimed = (pl != 0).then_some(40 + pl);
            (
                h.slice().as_ptr() as usize,
                claimed,
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                v6.payload(),
            )
        }
        Some(LaxNetSlice::Arp(_)) => return Err(PacketError::NotIp),
        None => return Err(stop_error(p)),
    };
    if ip_payload.fragmented {
        return Err(PacketError::Fragment);
    }
    let tcp = match &p.transport {
        Some(TransportSlice::Tcp(tcp)) => tcp,
        Some(TransportSlice::Udp(udp)) => {
            return decap_udp(udp.destination_port(), udp.payload(), depth)
        }
        Some(_) => return Err(PacketError::NotTcp),
        None => {
            if p.stop_err.is_some() {
                return Err(stop_error(p));
            }
            return match ip_payload.ip_number {
                ip_number::TCP => Err(PacketError::Truncated),
                ip_number::IPV4 | ip_number::IPV6 => {
                    decode_inner(Inner::Ip, ip_payload.payload, depth)
                }
                ip_number::GRE => decap_gre(ip_payload.payload, depth),
                _ => Err(PacketError::NotTcp),
            };
        }
    };
    let payload = tcp.payload();
    let payload_len = match (ip_payload.incomplete, claimed_ip_len) {
        (true, Some(claimed)) => {
            // Bytes from the IP header start to the TCP payload start (IP header, extensions, TCP header).
            let hdrs = (payload.as_ptr() as usize).saturating_sub(ip_start);
            claimed.saturating_sub(hdrs).max(payload.len())
        }
        _ => payload.len(),
    };
    Ok(TcpSegment {
        src: Endpoint::new(src_ip, tcp.source_port()),
        dst: Endpoint::new(dst_ip, tcp.destination_port()),
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        flags: TcpFlags(tcp.slice().get(13).copied().unwrap_or(0)),
        window: tcp.window_size(),
        payload,
        payload_len: u32::try_from(payload_len).unwrap_or(u32::MAX),
        wscale: if tcp.syn() {
            window_scale(tcp.options())
        } else {
            None
        },
        encap: depth,
    })
}
