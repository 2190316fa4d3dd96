//! Test support shared by the pipeline property tests (and, through `#[path]`, by the CLI robustness tests
//! of the `kwire` crate): hand-built Ethernet/IPv4/TCP frames and minimal valid Kafka frames.
//!
//! Everything is written out field by field (tests are data): no packet or Kafka library is used, so the
//! bytes under test do not come from the code under test.
//!
//! Easy to get wrong: Ethernet pads frames to 60 bytes (the padding is NOT TCP payload; the IPv4 total
//! length says where the packet ends); checksums are computed for realism (Wireshark opens these files
//! cleanly) although the pipeline does not verify them; the Kafka request header v1 has a non-nullable
//! i16-length client id here (the header also allows null, which these builders never produce).
#![allow(dead_code)]

use std::net::Ipv4Addr;

/// TCP flag bits.
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

/// One IPv4 TCP endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ep {
    pub ip: Ipv4Addr,
    pub port: u16,
}

impl Ep {
    pub const fn new(a: u8, b: u8, c: u8, d: u8, port: u16) -> Ep {
        Ep {
            ip: Ipv4Addr::new(a, b, c, d),
            port,
        }
    }
}

impl std::fmt::Display for Ep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.ip, self.port)
    }
}

fn csum_add(mut sum: u32, bytes: &[u8]) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

fn csum_fold(mut sum: u32) -> u16 {
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet II / IPv4 / TCP frame (20-byte TCP header, no options), padded to 60 bytes.
pub fn tcp_frame(src: Ep, dst: Ep, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let ip_len = 20 + 20 + payload.len();
    assert!(ip_len <= 0xFFFF, "payload too large for one IPv4 packet");
    let mut f = Vec::with_capacity(14 + ip_len + 6);
    // Ethernet: dst MAC, src MAC, EtherType IPv4.
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    // IPv4 header.
    let ip_start = f.len();
    f.push(0x45); // version 4, IHL 5
    f.push(0); // DSCP/ECN
    f.extend_from_slice(&(ip_len as u16).to_be_bytes()); // total length
    f.extend_from_slice(&[0, 0]); // identification
    f.extend_from_slice(&0x4000u16.to_be_bytes()); // DF, fragment offset 0
    f.push(64); // TTL
    f.push(6); // protocol TCP
    f.extend_from_slice(&[0, 0]); // header checksum (below)
    f.extend_from_slice(&src.ip.octets());
    f.extend_from_slice(&dst.ip.octets());
    let c = csum_fold(csum_add(0, &f[ip_start..ip_start + 20]));
    f[ip_start + 10..ip_start + 12].copy_from_slice(&c.to_be_bytes());
    // TCP header.
    let tcp_start = f.len();
    f.extend_from_slice(&src.port.to_be_bytes());
    f.extend_from_slice(&dst.port.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&ack.to_be_bytes());
    f.push(5 << 4); // data offset 5 words
    f.push(flags);
    f.extend_from_slice(&65535u16.to_be_bytes()); // window
    f.extend_from_slice(&[0, 0]); // checksum (below)
    f.extend_from_slice(&[0, 0]); // urgent pointer
    f.extend_from_slice(payload);
    // TCP checksum over the pseudo header, header and payload.
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&src.ip.octets());
    pseudo.extend_from_slice(&dst.ip.octets());
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    let c = csum_fold(csum_add(csum_add(0, &pseudo), &f[tcp_start..]));
    f[tcp_start + 16..tcp_start + 18].copy_from_slice(&c.to_be_bytes());
    // Ethernet minimum frame size (without FCS).
    while f.len() < 60 {
        f.push(0);
    }
    f
}

// ---------------------------------------------------------------------------------------------------------
// Kafka frames: minimal, valid bodies for a few API keys.
// ---------------------------------------------------------------------------------------------------------

fn put_str(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(&(s.len() as i16).to_be_bytes());
    b.extend_from_slice(s.as_bytes());
}

/// Request frame with its 4-byte length prefix; header v1 (api key, version, correlation id, client id).
pub fn request_frame(
    api_key: i16,
    api_version: i16,
    correlation_id: i32,
    client_id: &str,
    body: &[u8],
) -> Vec<u8> {
    let mut f = vec![0; 4];
    f.extend_from_slice(&api_key.to_be_bytes());
    f.extend_from_slice(&api_version.to_be_bytes());
    f.extend_from_slice(&correlation_id.to_be_bytes());
    put_str(&mut f, client_id);
    f.extend_from_slice(body);
    let len = (f.len() - 4) as i32;
    f[..4].copy_from_slice(&len.to_be_bytes());
    f
}

/// Response frame with its 4-byte length prefix; header v0 (correlation id only).
pub fn response_frame(correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut f = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    f.extend_from_slice(&correlation_id.to_be_bytes());
    f.extend_from_slice(body);
    f
}

/// The three APIs the conversations are made of (all with non-flexible headers and bodies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KafkaApi {
    /// ApiVersions v0: empty request; response error_code, [api_key, min, max].
    ApiVersions,
    /// Metadata v1: request [topic name] (or null = all topics); response brokers, controller, topics.
    Metadata,
    /// Heartbeat v0: request group_id, generation_id, member_id; response error_code.
    Heartbeat,
}

impl KafkaApi {
    pub const ALL: [KafkaApi; 3] = [
        KafkaApi::ApiVersions,
        KafkaApi::Metadata,
        KafkaApi::Heartbeat,
    ];

    pub fn key_version(self) -> (i16, i16) {
        match self {
            KafkaApi::ApiVersions => (18, 0),
            KafkaApi::Metadata => (3, 1),
            KafkaApi::Heartbeat => (12, 0),
        }
    }

    /// A request body; `n` varies its content (topic count, generation id, ...).
    pub fn request_body(self, n: u32) -> Vec<u8> {
        let mut b = Vec::new();
        match self {
            KafkaApi::ApiVersions => {}
            KafkaApi::Metadata => {
                let topics = n % 4;
                if topics == 0 {
                    b.extend_from_slice(&(-1i32).to_be_bytes()); // null array: all topics
                } else {
                    b.extend_from_slice(&(topics as i32).to_be_bytes());
                    for t in 0..topics {
                        put_str(&mut b, &format!("topic-{t}"));
                    }
                }
            }
            KafkaApi::Heartbeat => {
                put_str(&mut b, "group-1");
                b.extend_from_slice(&(n as i32).to_be_bytes()); // generation id
                put_str(&mut b, &format!("member-{}", n % 7));
            }
        }
        b
    }

    /// A response body; `n` varies its size (ApiVersions lists `n % 60` keys, Metadata `n % 5` topics).
    pub fn response_body(self, n: u32) -> Vec<u8> {
        let mut b = Vec::new();
        match self {
            KafkaApi::ApiVersions => {
                b.extend_from_slice(&0i16.to_be_bytes()); // error_code
                let keys = n % 60;
                b.extend_from_slice(&(keys as i32).to_be_bytes());
                for k in 0..keys {
                    b.extend_from_slice(&(k as i16).to_be_bytes()); // api key
                    b.extend_from_slice(&0i16.to_be_bytes()); // min version
                    b.extend_from_slice(&3i16.to_be_bytes()); // max version
                }
            }
            KafkaApi::Metadata => {
                b.extend_from_slice(&1i32.to_be_bytes()); // brokers: 1
                b.extend_from_slice(&1i32.to_be_bytes()); //   node_id
                put_str(&mut b, "broker-1"); //   host
                b.extend_from_slice(&9092i32.to_be_bytes()); //   port
                b.extend_from_slice(&(-1i16).to_be_bytes()); //   rack: null
                b.extend_from_slice(&1i32.to_be_bytes()); // controller_id
                let topics = n % 5;
                b.extend_from_slice(&(topics as i32).to_be_bytes());
                for t in 0..topics {
                    b.extend_from_slice(&0i16.to_be_bytes()); // error_code
                    put_str(&mut b, &format!("topic-{t}")); // name
                    b.push(0); // is_internal
                    b.extend_from_slice(&1i32.to_be_bytes()); // partitions: 1
                    b.extend_from_slice(&0i16.to_be_bytes()); //   error_code
                    b.extend_from_slice(&0i32.to_be_bytes()); //   partition index
                    b.extend_from_slice(&1i32.to_be_bytes()); //   leader
                    b.extend_from_slice(&1i32.to_be_bytes()); //   replicas: [1]
                    b.extend_from_slice(&1i32.to_be_bytes());
                    b.extend_from_slice(&1i32.to_be_bytes()); //   isr: [1]
                    b.extend_from_slice(&1i32.to_be_bytes());
                }
            }
            KafkaApi::Heartbeat => {
                // error_code: 0 mostly, REBALANCE_IN_PROGRESS (27) sometimes.
                let code: i16 = if n.is_multiple_of(3) { 27 } else { 0 };
                b.extend_from_slice(&code.to_be_bytes());
            }
        }
        b
    }
}

/// One request/response pair of a generated conversation.
#[derive(Clone, Debug)]
pub struct Pair {
    pub api: KafkaApi,
    pub correlation_id: i32,
    pub client_id: String,
    pub request: Vec<u8>,
    pub response: Vec<u8>,
}

impl Pair {
    pub fn new(api: KafkaApi, correlation_id: i32, client_id: &str, n: u32) -> Pair {
        let (k, v) = api.key_version();
        Pair {
            api,
            correlation_id,
            client_id: client_id.to_string(),
            request: request_frame(k, v, correlation_id, client_id, &api.request_body(n)),
            response: response_frame(correlation_id, &api.response_body(n)),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// A tiny deterministic PRNG (SplitMix64) for generators outside proptest.
// ---------------------------------------------------------------------------------------------------------

pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}
