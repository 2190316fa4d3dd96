//! Fuzz harnesses, shared by the cargo-fuzz targets (`fuzz_targets/*.rs`) and by the deterministic smoke
//! tests of `agent/kwire-kafka/tests/fuzz_smoke.rs` (which include this file with `#[path]`, so this file
//! must stay free of crate-level attributes and of dependencies other than kwire-flow, kwire-kafka and
//! serde_json).
//!
//! [`pipeline`] reads its input as a little program: byte 0 chooses the stream start and the limits
//! (defaults, or tiny limits that make every bound trip), then records `[control, len, bytes...]` feed
//! data or gaps to either direction and move packet time. The invariants checked after `on_close` are the
//! "nothing read is lost" accounting: every request counted is reported exactly once as an exchange,
//! every response counted is in one, every orphan counted was emitted.
//!
//! [`decode`] reads `[flags, key, version, body...]` and runs every decoder and parser on `body`; a
//! decoder may refuse, never panic, and never claim to have consumed more than it was given.

use kwire_flow::{Direction, Timestamp};
use kwire_kafka::body::{decode_request_checked, decode_response_checked};
use kwire_kafka::probe::{self, ProbeLimits};
use kwire_kafka::{header, KafkaConfig, KafkaConnection, KafkaEvent, StreamStart};

/// Control byte of a [`pipeline`] record: bit 0 direction (0 to the broker, 1 to the client); bits 1-2
/// the operation; bits 3-7 how much packet time passes (in ms) before it.
pub const OP_DATA: u8 = 0;
/// A gap of `len` bytes (0 = unknown length).
pub const OP_GAP: u8 = 1;
/// Data whose length takes two bytes (big-endian).
pub const OP_DATA_LONG: u8 = 2;
/// Ten minutes of packet time pass (pending requests age out).
pub const OP_WAIT: u8 = 3;

/// One record of a [`pipeline`] program (for building inputs by hand or from a generator).
pub fn record(out: &mut Vec<u8>, to_client: bool, op: u8, ms: u8, payload: &[u8]) {
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

/// Bytes → one Kafka connection → events; checks the accounting invariants.
pub fn pipeline(data: &[u8]) {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let start = if mode & 1 == 0 {
        StreamStart::Handshake
    } else {
        StreamStart::MidStream
    };
    let mut cfg = KafkaConfig::default();
    if mode & 2 != 0 {
        // Tiny limits: oversized frames, pending eviction, age-out and the resync window all trip.
        cfg.max_frame_bytes = 64;
        cfg.oversized_peek_bytes = 16;
        cfg.max_pending = 3;
        cfg.resync_window = 48;
        cfg.pending_max_age_ns = 5_000_000;
    }
    let mut conn = KafkaConnection::new(&cfg, start);
    let mut events: Vec<KafkaEvent> = Vec::new();
    let mut ts = Timestamp(1_700_000_000_000_000_000);
    while let Some((&c, r)) = rest.split_first() {
        rest = r;
        let dir = if c & 1 == 0 {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        ts = ts.add_nanos(i64::from(c >> 3) * 1_000_000);
        match (c >> 1) & 3 {
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
                conn.on_data(&cfg, dir, ts, &r[..n], &mut |e| events.push(e));
                rest = &r[n..];
            }
            OP_GAP => {
                let (len, r) = match rest.split_first() {
                    Some((&n, r)) => (u64::from(n), r),
                    None => (0, rest),
                };
                conn.on_gap(dir, ts, len, &mut |e| events.push(e));
                rest = r;
            }
            _ => ts = ts.add_nanos(600_000_000_000),
        }
    }
    conn.on_close(ts, &mut |e| events.push(e));
    check_accounting(&conn, &events);
}

/// After `on_close`: the counters and the events tell the same story.
fn check_accounting(conn: &KafkaConnection, events: &[KafkaEvent]) {
    let s = conn.stats();
    let (mut exchanges, mut answered, mut unanswered, mut orphans) = (0u64, 0u64, 0u64, 0u64);
    for e in events {
        match e {
            KafkaEvent::Exchange(x) => {
                exchanges += 1;
                assert!(
                    x.request.bytes >= 12,
                    "a request frame has at least a length and a v0 header: {x:?}"
                );
                match &x.response {
                    Some(r) => {
                        answered += 1;
                        assert!(
                            r.bytes >= 8,
                            "a response frame has at least a length and a correlation id: {x:?}"
                        );
                    }
                    None if !x.response_optional => unanswered += 1,
                    None => {}
                }
            }
            KafkaEvent::Orphan { bytes, .. } => {
                orphans += 1;
                assert!(*bytes >= 8);
            }
            // Notices, requests reported when sent, ...: not part of this accounting.
            _ => {}
        }
    }
    assert_eq!(
        exchanges, s.requests,
        "every request counted is reported once: {s:?}"
    );
    assert_eq!(
        answered, s.responses,
        "every response counted is in an exchange: {s:?}"
    );
    assert_eq!(unanswered, s.unanswered, "unanswered counter: {s:?}");
    assert_eq!(orphans, s.orphans, "orphan counter: {s:?}");
}

/// `[flags, key, version, body...]` through every decoder and parser.
pub fn decode(data: &[u8]) {
    if data.len() < 3 {
        return;
    }
    let flags = data[0];
    // Mostly real keys and plausible versions, sometimes anything.
    let key = if flags & 2 == 0 {
        i16::from(data[1] % 94)
    } else {
        i16::from_be_bytes([data[1], data[1] ^ data[2]])
    };
    let version = if flags & 4 == 0 {
        i16::from(data[2] % 20)
    } else {
        i16::from(data[2] as i8)
    };
    let body = &data[3..];
    if flags & 1 == 0 {
        let (res, consumed) = decode_request_checked(key, version, body);
        assert!(
            consumed <= body.len(),
            "request {key} v{version}: consumed {consumed} of {}",
            body.len()
        );
        if let Ok(b) = res {
            let _ = serde_json::to_string(&b).expect("a decoded body serialises");
            let _ = b.expects_no_response();
        }
        let _ = header::parse_request_header(body);
    } else {
        let (res, consumed) = decode_response_checked(key, version, body);
        assert!(
            consumed <= body.len(),
            "response {key} v{version}: consumed {consumed} of {}",
            body.len()
        );
        if let Ok(b) = res {
            let _ = serde_json::to_string(&b).expect("a decoded body serialises");
            let _ = b.error_codes();
        }
        let _ = header::parse_response_header(body, key, version);
    }
    let limits = ProbeLimits::default();
    let _ = probe::guess(body, &limits);
    let _ = probe::probe_request(body, &limits);
    let _ = probe::probe_request_frame(body);
    let _ = probe::probe_response(body, &limits, |c| c % 2 == 0);
    let _ = kwire_kafka::records::scan_record_set(body);
    let _ = kwire_kafka::assignment::decode_assignment(body);
    let _ = kwire_kafka::assignment::decode_subscription(body);
}
