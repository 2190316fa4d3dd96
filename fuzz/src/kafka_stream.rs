//! The `kafka_stream` harness: bytes → chunks and gaps of both directions of one
//! `kwire_kafka::KafkaConnection` (Handshake or MidStream start, default or tiny limits) → `on_close`,
//! then the invariants below. Mode bit 7 instead runs the body decoders and parsers on one body
//! ([`decode`]). Input format: `format.rs`. Shared with `agent/kwire-kafka/tests/fuzz_smoke.rs`, which
//! includes this file and `format.rs` with `#[path]` (so: no crate-level attributes, only kwire-flow,
//! kwire-kafka and serde_json, and `crate::format` must be the format module).
//!
//! Invariants after `on_close`:
//! - accounting: every request counted is reported exactly once as an exchange, every response counted
//!   is in one, every orphan counted was emitted (`check_accounting`);
//! - never invent: an exchange's request header (api key, version, correlation id) is 8 bytes the
//!   client sent, its client id is bytes the client sent, and a response is paired only with a
//!   correlation id the broker sent; its time is not before the request's (`check_not_invented`).
//!
//! Easy to get wrong: the "sent bytes" are each direction's data concatenated across gaps, so a pattern
//! found there may straddle a gap; the check can miss an invention glued across a gap but never blames
//! a correct one.

use kwire_flow::{Direction, Timestamp};
use kwire_kafka::body::{decode_request_checked, decode_response_checked};
use kwire_kafka::probe::{self, ProbeLimits};
use kwire_kafka::{header, KafkaConfig, KafkaConnection, KafkaEvent, StreamStart};

use crate::format::{self, Step};

/// Runs one `kafka_stream` input; returns the number of exchanges reported.
pub fn run(data: &[u8]) -> usize {
    let Some((&mode, rest)) = data.split_first() else {
        return 0;
    };
    if mode & format::STREAM_DECODE != 0 {
        decode(rest);
        return 0;
    }
    let start = if mode & format::STREAM_MIDSTREAM == 0 {
        StreamStart::Handshake
    } else {
        StreamStart::MidStream
    };
    let mut cfg = KafkaConfig::default();
    if mode & format::STREAM_TINY_LIMITS != 0 {
        cfg.max_frame_bytes = 64;
        cfg.oversized_peek_bytes = 16;
        cfg.max_pending = 3;
        cfg.resync_window = 48;
        cfg.pending_max_age_ns = 5_000_000;
    }
    let mut conn = KafkaConnection::new(&cfg, start);
    let mut events: Vec<KafkaEvent> = Vec::new();
    let mut sent: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut ts = Timestamp(1_700_000_000_000_000_000);
    let dir = |to_client: bool| {
        if to_client {
            Direction::ToClient
        } else {
            Direction::ToServer
        }
    };
    for step in format::steps(rest) {
        match step {
            Step::Data {
                to_client,
                ms,
                bytes,
            } => {
                ts = ts.add_nanos(i64::from(ms) * 1_000_000);
                sent[usize::from(to_client)].extend_from_slice(bytes);
                conn.on_data(&cfg, dir(to_client), ts, bytes, &mut |e| events.push(e));
            }
            Step::Gap { to_client, ms, len } => {
                ts = ts.add_nanos(i64::from(ms) * 1_000_000);
                conn.on_gap(dir(to_client), ts, u64::from(len), &mut |e| events.push(e));
            }
            Step::Wait { ms } => {
                ts = ts.add_nanos(i64::from(ms) * 1_000_000 + 600_000_000_000);
            }
        }
    }
    conn.on_close(ts, &mut |e| events.push(e));
    check_accounting(&conn, &events);
    check_not_invented(&events, &sent[0], &sent[1]);
    events
        .iter()
        .filter(|e| matches!(e, KafkaEvent::Exchange(_)))
        .count()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Nothing an exchange says came from anywhere but the bytes of its direction.
fn check_not_invented(events: &[KafkaEvent], to_server: &[u8], to_client: &[u8]) {
    for e in events {
        let KafkaEvent::Exchange(x) = e else { continue };
        let mut hdr = Vec::with_capacity(8);
        hdr.extend_from_slice(&x.api_key.to_be_bytes());
        hdr.extend_from_slice(&x.api_version.to_be_bytes());
        hdr.extend_from_slice(&x.correlation_id.to_be_bytes());
        assert!(
            contains(to_server, &hdr),
            "an exchange whose request header the client never sent: {x:?}"
        );
        if let Some(id) = &x.request.client_id {
            if !id.contains('\u{fffd}') {
                assert!(
                    contains(to_server, id.as_bytes()),
                    "a client id the client never sent: {x:?}"
                );
            }
        }
        if let Some(r) = &x.response {
            assert!(
                contains(to_client, &x.correlation_id.to_be_bytes()),
                "a response paired with a correlation id the broker never sent: {x:?}"
            );
            assert!(r.ts >= x.request_ts, "a response before its request: {x:?}");
        }
    }
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

/// `[flags, key, version, body...]` through every decoder and parser; a decoder may refuse, never
/// panic, and never claim to have consumed more than it was given.
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
