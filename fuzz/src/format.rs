//! The input formats of the two fuzz targets, as encoders (for seeds and hand-written regression
//! inputs) and decoders (for the harnesses). Standard library only: `xtask` includes this file with
//! `#[path]` to write the seed corpora, the harnesses and the `fuzz_smoke` tests use it to read them.
//!
//! `engine_packets`: byte 0 chooses the engine configuration ([`ENGINE_TINY_LIMITS`],
//! [`ENGINE_PORT_FILTER`]), then packet records `[ctrl u8][dt u32 BE][len u16 BE][len bytes]`: ctrl bits
//! 0-2 index [`LINKS`], bit 3 makes `dt` negative (time going backwards), bit 4 counts `dt` in seconds
//! instead of microseconds (jumps of years).
//!
//! `kafka_stream`: byte 0 chooses the stream start (bit 0: 0 Handshake, 1 MidStream), tiny limits (bit 1)
//! or, with bit 7, the decoder mode (the rest is `[flags, key, version, body...]`); then records `[ctrl,
//! ...]` as [`stream_record`] writes them.
//!
//! Easy to get wrong: every decoder must accept any bytes (a record cut short at the end of the input
//! takes what is there), and an encoder must never write a record its decoder reads differently (seeds
//! would then not be the captures they came from).

/// Link types an `engine_packets` record may carry, indexed by ctrl bits 0-2 (kwire_flow::LinkType DLTs).
pub const LINKS: [u32; 8] = [1, 0, 108, 101, 228, 229, 113, 276];
/// Engine config bit: tiny flow table, reassembly, Kafka and analysis bounds (every bound trips).
pub const ENGINE_TINY_LIMITS: u8 = 1;
/// Engine config bit: only port 9092 is Kafka (otherwise every port, found by probing).
pub const ENGINE_PORT_FILTER: u8 = 2;

const CTRL_NEGATIVE: u8 = 8;
const CTRL_SECONDS: u8 = 16;

/// One packet record of an `engine_packets` input. `dlt`: a pcap link type (must be in [`LINKS`],
/// else the record is not written and false is returned); `dt_ns`: packet time since the previous one.
pub fn packet_record(out: &mut Vec<u8>, dlt: u32, dt_ns: i64, data: &[u8]) -> bool {
    let Some(link) = LINKS.iter().position(|&l| l == dlt & 0xffff) else {
        return false;
    };
    let mut ctrl = link as u8;
    if dt_ns < 0 {
        ctrl |= CTRL_NEGATIVE;
    }
    let abs = dt_ns.unsigned_abs();
    let micros = abs / 1_000;
    let dt = if micros <= u64::from(u32::MAX) {
        micros as u32
    } else {
        ctrl |= CTRL_SECONDS;
        (abs / 1_000_000_000).min(u64::from(u32::MAX)) as u32
    };
    let data = &data[..data.len().min(usize::from(u16::MAX))];
    out.push(ctrl);
    out.extend_from_slice(&dt.to_be_bytes());
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
    true
}

/// One packet read from an `engine_packets` input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// Index into [`LINKS`].
    pub link: usize,
    /// Packet time since the previous packet, in nanoseconds (may be negative).
    pub dt_ns: i64,
    pub data: &'a [u8],
}

/// The packets of an `engine_packets` input (after the config byte).
pub fn packets(mut rest: &[u8]) -> impl Iterator<Item = Packet<'_>> {
    std::iter::from_fn(move || {
        let (&ctrl, r) = rest.split_first()?;
        let mut num = [0u8; 6];
        let n = r.len().min(6);
        num[..n].copy_from_slice(&r[..n]);
        let r = &r[n..];
        let dt = i64::from(u32::from_be_bytes([num[0], num[1], num[2], num[3]]));
        let len = usize::from(u16::from_be_bytes([num[4], num[5]])).min(r.len());
        let unit = if ctrl & CTRL_SECONDS != 0 {
            1_000_000_000
        } else {
            1_000
        };
        let dt_ns = if ctrl & CTRL_NEGATIVE != 0 {
            -dt * unit
        } else {
            dt * unit
        };
        let (data, r) = r.split_at(len);
        rest = r;
        Some(Packet {
            link: usize::from(ctrl & 7),
            dt_ns,
            data,
        })
    })
}

/// `kafka_stream` mode bit: the connection joins mid-stream (else it starts with a handshake).
pub const STREAM_MIDSTREAM: u8 = 1;
/// `kafka_stream` mode bit: tiny limits (oversized frames, pending eviction, age-out, resync window).
pub const STREAM_TINY_LIMITS: u8 = 2;
/// `kafka_stream` mode bit: the input is `[flags, key, version, body...]` for the body decoders.
pub const STREAM_DECODE: u8 = 0x80;

/// Control byte of a `kafka_stream` record: bit 0 direction (0 to the broker, 1 to the client); bits 1-2
/// the operation; bits 3-7 how much packet time passes (in ms) before it.
pub const OP_DATA: u8 = 0;
/// A gap of `len` bytes (0 = unknown length).
pub const OP_GAP: u8 = 1;
/// Data whose length takes two bytes (big-endian).
pub const OP_DATA_LONG: u8 = 2;
/// Ten minutes of packet time pass (pending requests age out).
pub const OP_WAIT: u8 = 3;

/// One record of a `kafka_stream` input. Data longer than one record holds (255 bytes for [`OP_DATA`],
/// 65,535 for [`OP_DATA_LONG`]) is cut: use [`stream_data`] for payloads of any length.
pub fn stream_record(out: &mut Vec<u8>, to_client: bool, op: u8, ms: u8, payload: &[u8]) {
    out.push(u8::from(to_client) | (op & 3) << 1 | (ms & 0x1f) << 3);
    match op & 3 {
        OP_DATA => {
            let n = payload.len().min(255);
            out.push(n as u8);
            out.extend_from_slice(&payload[..n]);
        }
        OP_DATA_LONG => {
            let n = payload.len().min(65_535);
            out.extend_from_slice(&(n as u16).to_be_bytes());
            out.extend_from_slice(&payload[..n]);
        }
        OP_GAP => out.push(payload.first().copied().unwrap_or(0)),
        _ => {}
    }
}

/// A payload of any length as `kafka_stream` data records (the first carries `ms` of packet time).
pub fn stream_data(out: &mut Vec<u8>, to_client: bool, ms: u8, payload: &[u8]) {
    let mut first = true;
    for piece in payload.chunks(65_535) {
        let op = if piece.len() > 255 {
            OP_DATA_LONG
        } else {
            OP_DATA
        };
        stream_record(out, to_client, op, if first { ms } else { 0 }, piece);
        first = false;
    }
}

/// One step read from a `kafka_stream` input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    Data {
        to_client: bool,
        ms: u8,
        bytes: &'a [u8],
    },
    Gap {
        to_client: bool,
        ms: u8,
        len: u8,
    },
    Wait {
        ms: u8,
    },
}

/// The steps of a `kafka_stream` input (after the mode byte).
pub fn steps(mut rest: &[u8]) -> impl Iterator<Item = Step<'_>> {
    std::iter::from_fn(move || {
        let (&c, r) = rest.split_first()?;
        rest = r;
        let to_client = c & 1 == 1;
        let ms = c >> 3;
        Some(match (c >> 1) & 3 {
            OP_DATA | OP_DATA_LONG => {
                let (n, r) = if (c >> 1) & 3 == OP_DATA {
                    match rest.split_first() {
                        Some((&n, r)) => (usize::from(n), r),
                        None => (0, rest),
                    }
                } else if rest.len() >= 2 {
                    (
                        usize::from(u16::from_be_bytes([rest[0], rest[1]])),
                        &rest[2..],
                    )
                } else {
                    (0, &rest[rest.len()..])
                };
                let n = n.min(r.len());
                rest = &r[n..];
                Step::Data {
                    to_client,
                    ms,
                    bytes: &r[..n],
                }
            }
            OP_GAP => {
                let (len, r) = match rest.split_first() {
                    Some((&n, r)) => (n, r),
                    None => (0, rest),
                };
                rest = r;
                Step::Gap { to_client, ms, len }
            }
            _ => Step::Wait { ms },
        })
    })
}
