//! Byte-level tests of framing, correlation and the special streams (TLS, raw SASL, acks=0).

use kwire_flow::{Direction, Timestamp};

use super::*;
use crate::body::{RequestBody, ResponseBody};

const T: Timestamp = Timestamp(1_000_000_000);

/// A request frame: length, api key, version, correlation id, client id "c", body.
fn req(key: i16, ver: i16, corr: i32, body: &[u8]) -> Vec<u8> {
    req_as(b"c", key, ver, corr, body)
}

/// A request frame (header v1) with client id `id`.
fn req_as(id: &[u8], key: i16, ver: i16, corr: i32, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&key.to_be_bytes());
    f.extend_from_slice(&ver.to_be_bytes());
    f.extend_from_slice(&corr.to_be_bytes());
    f.extend_from_slice(&(id.len() as i16).to_be_bytes());
    f.extend_from_slice(id);
    f.extend_from_slice(body);
    let mut out = (f.len() as i32).to_be_bytes().to_vec();
    out.extend(f);
    out
}

/// A response frame (header v0): length, correlation id, body.
fn resp(corr: i32, body: &[u8]) -> Vec<u8> {
    let mut out = ((4 + body.len()) as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&corr.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// ApiVersions v0: empty request body; response error 0 and no keys.
const AV_RESP: [u8; 6] = [0, 0, 0, 0, 0, 0];

/// Produce v3 with the given acks, one topic "t", partition 0, null records.
fn produce_v3(acks: i16) -> Vec<u8> {
    let mut b = vec![0xFF, 0xFF]; // transactional_id null
    b.extend_from_slice(&acks.to_be_bytes());
    b.extend_from_slice(&1000i32.to_be_bytes()); // timeout
    b.extend_from_slice(&1i32.to_be_bytes()); // 1 topic
    b.extend_from_slice(&[0, 1, b't']);
    b.extend_from_slice(&1i32.to_be_bytes()); // 1 partition
    b.extend_from_slice(&0i32.to_be_bytes()); // partition 0
    b.extend_from_slice(&(-1i32).to_be_bytes()); // records null
    b
}

fn produce_v3_resp() -> Vec<u8> {
    let mut b = 1i32.to_be_bytes().to_vec(); // 1 topic
    b.extend_from_slice(&[0, 1, b't']);
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes()); // partition
    b.extend_from_slice(&0i16.to_be_bytes()); // error
    b.extend_from_slice(&42i64.to_be_bytes()); // base offset
    b.extend_from_slice(&(-1i64).to_be_bytes()); // log append time
    b.extend_from_slice(&0i32.to_be_bytes()); // throttle
    b
}

fn run(start: StreamStart, steps: &[(Direction, Vec<u8>)]) -> (Vec<KafkaEvent>, KafkaStats) {
    let cfg = KafkaConfig::default();
    let mut k = KafkaConnection::new(&cfg, start);
    let mut ev = Vec::new();
    for (d, bytes) in steps {
        k.on_data(&cfg, *d, T, bytes, &mut |e| ev.push(e));
    }
    k.on_close(T, &mut |e| ev.push(e));
    (ev, k.stats())
}

fn exchanges(ev: &[KafkaEvent]) -> Vec<&Exchange> {
    ev.iter()
        .filter_map(|e| match e {
            KafkaEvent::Exchange(x) => Some(&**x),
            _ => None,
        })
        .collect()
}

#[test]
fn a_connections_client_id_is_one_shared_allocation_until_it_changes() {
    let mut reqs = Vec::new();
    for (i, id) in [&b"app-1"[..], b"app-1", b"app-2", b"app-2", b"\xffx"]
        .iter()
        .enumerate()
    {
        reqs.extend(req_as(id, 18, 0, i as i32, &[]));
    }
    let mut answers = Vec::new();
    for i in 0..5 {
        answers.extend(resp(i, &AV_RESP));
    }
    let (ev, _) = run(
        StreamStart::Handshake,
        &[(Direction::ToServer, reqs), (Direction::ToClient, answers)],
    );
    let ids: Vec<_> = exchanges(&ev)
        .iter()
        .map(|e| e.request.client_id.clone().expect("client id"))
        .collect();
    assert_eq!(
        ids.iter().map(|c| &**c).collect::<Vec<_>>(),
        ["app-1", "app-1", "app-2", "app-2", "\u{FFFD}x"]
    );
    assert!(std::sync::Arc::ptr_eq(&ids[0], &ids[1]));
    assert!(std::sync::Arc::ptr_eq(&ids[2], &ids[3]));
    assert!(!std::sync::Arc::ptr_eq(&ids[1], &ids[2]));
}

#[test]
fn pipelined_requests_match_by_correlation_id() {
    let mut both = req(18, 0, 7, &[]);
    both.extend(req(18, 0, 8, &[]));
    let mut answers = resp(7, &AV_RESP);
    answers.extend(resp(8, &AV_RESP));
    let (ev, st) = run(
        StreamStart::Handshake,
        &[(Direction::ToServer, both), (Direction::ToClient, answers)],
    );
    let x = exchanges(&ev);
    assert_eq!(
        x.iter().map(|e| e.correlation_id).collect::<Vec<_>>(),
        vec![7, 8]
    );
    assert!(x
        .iter()
        .all(|e| e.response.is_some() && e.request.client_id.as_deref() == Some("c")));
    assert_eq!(
        (st.requests, st.responses, st.orphans, st.unanswered),
        (2, 2, 0, 0)
    );
}

#[test]
fn acks0_with_and_without_a_response() {
    // Apache Kafka: no response to acks=0; the next response completes it as "none required".
    let (ev, st) = run(
        StreamStart::Handshake,
        &[
            (Direction::ToServer, req(0, 3, 1, &produce_v3(0))),
            (Direction::ToServer, req(18, 0, 2, &[])),
            (Direction::ToClient, resp(2, &AV_RESP)),
        ],
    );
    let x = exchanges(&ev);
    assert_eq!(x[0].correlation_id, 1);
    assert!(x[0].response.is_none() && x[0].response_optional);
    assert_eq!(
        st.unanswered, 0,
        "acks=0 without a response is not 'unanswered'"
    );
    // The librdkafka mock and tansu do answer acks=0: matched like any other.
    let (ev, _) = run(
        StreamStart::Handshake,
        &[
            (Direction::ToServer, req(0, 3, 1, &produce_v3(0))),
            (Direction::ToClient, resp(1, &produce_v3_resp())),
        ],
    );
    let x = exchanges(&ev);
    assert!(x[0].response.is_some());
    match &x[0].response.as_ref().unwrap().body {
        Decoded::Full(ResponseBody::Produce(p)) => {
            assert_eq!(p.topics[0].partitions[0].base_offset, 42)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn one_byte_segments_give_the_same_exchange() {
    let r = req(0, 3, 5, &produce_v3(1));
    let a = resp(5, &produce_v3_resp());
    let mut steps: Vec<(Direction, Vec<u8>)> =
        r.iter().map(|b| (Direction::ToServer, vec![*b])).collect();
    steps.extend(a.iter().map(|b| (Direction::ToClient, vec![*b])));
    let (ev, st) = run(StreamStart::Handshake, &steps);
    assert_eq!(exchanges(&ev).len(), 1);
    assert_eq!((st.requests, st.responses), (1, 1));
}

#[test]
fn tls_is_detected_and_not_decoded() {
    let hello = vec![0x16, 0x03, 0x01, 0x00, 0x30, 1, 0, 0, 0x2c, 3, 3];
    let (ev, st) = run(
        StreamStart::Handshake,
        &[
            (Direction::ToServer, hello),
            (Direction::ToClient, vec![0x16, 3, 3, 0, 10, 2]),
        ],
    );
    assert!(ev.iter().any(|e| matches!(
        e,
        KafkaEvent::Notice {
            kind: NoticeKind::Tls,
            ..
        }
    )));
    assert!(exchanges(&ev).is_empty());
    assert_eq!(st.requests, 0);
    assert!(st.tls_bytes > 0);
}

#[test]
fn raw_sasl_tokens_after_handshake_v0_are_counted_not_decoded() {
    let mut mech = vec![0, 5];
    mech.extend_from_slice(b"PLAIN");
    let mut mresp = vec![0, 0, 0, 0, 0, 1, 0, 5]; // error 0, 1 mechanism
    mresp.extend_from_slice(b"PLAIN");
    // The PLAIN token: length-prefixed, "\0user\0secret" (must never be decoded or kept).
    let token = b"\0alice\0s3cret-password";
    let mut tok = (token.len() as i32).to_be_bytes().to_vec();
    tok.extend_from_slice(token);
    let (ev, st) = run(
        StreamStart::Handshake,
        &[
            (Direction::ToServer, req(17, 0, 1, &mech)),
            (Direction::ToClient, resp(1, &mresp)),
            (Direction::ToServer, tok.clone()),
            (Direction::ToClient, vec![0, 0, 0, 0]), // empty server token
            (Direction::ToServer, req(18, 0, 2, &[])),
            (Direction::ToClient, resp(2, &AV_RESP)),
        ],
    );
    assert!(ev.iter().any(|e| matches!(
        e,
        KafkaEvent::Notice {
            kind: NoticeKind::SaslRawStart,
            ..
        }
    )));
    let x = exchanges(&ev);
    assert_eq!(
        x.iter().map(|e| e.api_key).collect::<Vec<_>>(),
        vec![17, 18],
        "Kafka resumes after the tokens"
    );
    assert_eq!(st.sasl_raw_bytes, tok.len() as u64 + 4);
    assert_eq!((st.orphans, st.malformed_headers, st.desyncs), (0, 0, 0));
    assert!(
        !format!("{ev:?}").contains("s3cret"),
        "SASL secrets must never reach an event"
    );
}

#[test]
fn gap_inside_a_frame_keeps_framing() {
    let cfg = KafkaConfig::default();
    let mut k = KafkaConnection::new(&cfg, StreamStart::Handshake);
    let mut ev = Vec::new();
    let big = req(0, 3, 1, &produce_v3(1));
    // First 20 bytes arrive, then 5 bytes are lost, then the rest and another request.
    k.on_data(&cfg, Direction::ToServer, T, &big[..20], &mut |e| {
        ev.push(e)
    });
    k.on_gap(Direction::ToServer, T, 5, &mut |e| ev.push(e));
    k.on_data(&cfg, Direction::ToServer, T, &big[25..], &mut |e| {
        ev.push(e)
    });
    k.on_data(
        &cfg,
        Direction::ToServer,
        T,
        &req(18, 0, 2, &[]),
        &mut |e| ev.push(e),
    );
    k.on_data(
        &cfg,
        Direction::ToClient,
        T,
        &resp(1, &produce_v3_resp()),
        &mut |e| ev.push(e),
    );
    k.on_data(&cfg, Direction::ToClient, T, &resp(2, &AV_RESP), &mut |e| {
        ev.push(e)
    });
    let x = exchanges(&ev);
    assert_eq!(x.len(), 2);
    assert_eq!(x[0].request.body, Decoded::Skipped(SkipReason::CaptureGap));
    assert!(
        x[0].response.is_some(),
        "the damaged request's response still pairs"
    );
    assert_eq!(k.stats().desyncs, 0);
    assert_eq!(k.stats().damaged_frames, 1);
}

#[test]
fn oversized_frames_are_decoded_by_header_and_skipped() {
    let cfg = KafkaConfig {
        max_frame_bytes: 64,
        ..KafkaConfig::default()
    };
    let mut k = KafkaConnection::new(&cfg, StreamStart::Handshake);
    let mut ev = Vec::new();
    let mut body = produce_v3(1);
    body.extend(std::iter::repeat_n(0u8, 500));
    let big = req(0, 3, 9, &body);
    for chunk in big.chunks(100) {
        k.on_data(&cfg, Direction::ToServer, T, chunk, &mut |e| ev.push(e));
    }
    k.on_data(
        &cfg,
        Direction::ToServer,
        T,
        &req(18, 0, 10, &[]),
        &mut |e| ev.push(e),
    );
    let mut answers = resp(9, &produce_v3_resp());
    answers.extend(resp(10, &AV_RESP));
    k.on_data(&cfg, Direction::ToClient, T, &answers, &mut |e| ev.push(e));
    let x = exchanges(&ev);
    assert_eq!(x.len(), 2);
    assert_eq!((x[0].api_key, x[0].correlation_id), (0, 9));
    assert_eq!(x[0].request.body, Decoded::Skipped(SkipReason::Oversized));
    assert_eq!(x[0].request.bytes as usize, big.len());
    assert_eq!(k.stats().oversized_frames, 1);
}

#[test]
fn mid_stream_join_resyncs_and_counts_orphans() {
    let first = req(0, 3, 1, &produce_v3(1));
    // Joined 7 bytes into a request and in the middle of the broker's stream.
    let (ev, st) = run(
        StreamStart::MidStream,
        &[
            (
                Direction::ToServer,
                [&first[7..], &req(18, 0, 2, &[])[..]].concat(),
            ),
            (
                Direction::ToClient,
                [resp(1, &produce_v3_resp()), resp(2, &AV_RESP)].concat(),
            ),
        ],
    );
    let x = exchanges(&ev);
    assert_eq!(x.len(), 1, "{ev:?}");
    assert_eq!(x[0].correlation_id, 2);
    assert!(x[0].response.is_some());
    assert_eq!(
        st.orphans, 1,
        "the response to the request we joined in the middle of: {ev:?}"
    );
    assert!(st.resync_skipped_bytes >= (first.len() - 7) as u64);
}

/// A header guessed at a join is no frame until its frame completes: a gap inside it loses sync (the
/// guess can no longer be confirmed), where the same gap in a frame framed since the handshake only
/// damages that frame.
#[test]
fn gap_inside_a_guessed_frame_loses_sync() {
    let cfg = KafkaConfig::default();
    let mut k = KafkaConnection::new(&cfg, StreamStart::MidStream);
    let mut ev = Vec::new();
    let big = req(0, 3, 1, &produce_v3(1));
    k.on_data(&cfg, Direction::ToServer, T, &big[..20], &mut |e| {
        ev.push(e)
    });
    k.on_gap(Direction::ToServer, T, 5, &mut |e| ev.push(e));
    k.on_data(&cfg, Direction::ToServer, T, &big[25..], &mut |e| {
        ev.push(e)
    });
    k.on_close(T, &mut |e| ev.push(e));
    assert!(ev.iter().any(|e| matches!(
        e,
        KafkaEvent::Notice {
            kind: NoticeKind::Desync {
                reason: DesyncReason::Gap
            },
            ..
        }
    )));
    let st = k.stats();
    assert_eq!((st.desyncs, st.damaged_frames), (1, 0));
    assert!(exchanges(&ev).is_empty(), "{ev:?}");
}

/// Oversized frames keep only their head while gathered; the budget reservation is the head, not the
/// frame, and framing continues after the skipped rest.
#[test]
fn oversized_frame_in_small_chunks_keeps_framing() {
    let cfg = KafkaConfig {
        max_frame_bytes: 64,
        oversized_peek_bytes: 16,
        ..KafkaConfig::default()
    };
    let mut k = KafkaConnection::new(&cfg, StreamStart::Handshake);
    let mut ev = Vec::new();
    let mut body = produce_v3(1);
    body.extend(std::iter::repeat_n(0u8, 200));
    let first = req(0, 3, 4, &body);
    let stream = [&first[..], &req(18, 0, 5, &[])[..]].concat();
    for chunk in stream.chunks(3) {
        k.on_data(&cfg, Direction::ToServer, T, chunk, &mut |e| ev.push(e));
    }
    let mut answers = resp(4, &produce_v3_resp());
    answers.extend(resp(5, &AV_RESP));
    k.on_data(&cfg, Direction::ToClient, T, &answers, &mut |e| ev.push(e));
    let x = exchanges(&ev);
    assert_eq!(
        x.iter()
            .map(|e| (e.correlation_id, e.response.is_some()))
            .collect::<Vec<_>>(),
        vec![(4, true), (5, true)]
    );
    assert_eq!(x[0].request.body, Decoded::Skipped(SkipReason::Oversized));
    assert_eq!(x[0].request.bytes as usize, first.len());
    assert_eq!((k.stats().oversized_frames, k.stats().desyncs), (1, 0));
}

/// Produce v3, topic "t" partition 0, one v2 record batch (base offset 100, 5 records) of `len` bytes.
fn produce_v3_with_batch(len: usize) -> Vec<u8> {
    let mut batch = Vec::new();
    batch.extend_from_slice(&100i64.to_be_bytes()); // base offset
    batch.extend_from_slice(&((len - 12) as i32).to_be_bytes()); // batch length
    batch.extend_from_slice(&0i32.to_be_bytes()); // partition leader epoch
    batch.push(2); // magic
    batch.extend_from_slice(&0i32.to_be_bytes()); // crc
    batch.extend_from_slice(&0i16.to_be_bytes()); // attributes
    batch.extend_from_slice(&4i32.to_be_bytes()); // last offset delta
    batch.extend_from_slice(&7i64.to_be_bytes()); // base timestamp
    batch.extend_from_slice(&7i64.to_be_bytes()); // max timestamp
    batch.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    batch.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    batch.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    batch.extend_from_slice(&5i32.to_be_bytes()); // records
    batch.resize(len, 0xab);
    let mut b = vec![0xFF, 0xFF]; // transactional_id null
    b.extend_from_slice(&1i16.to_be_bytes()); // acks
    b.extend_from_slice(&1000i32.to_be_bytes()); // timeout
    b.extend_from_slice(&1i32.to_be_bytes()); // 1 topic
    b.extend_from_slice(&[0, 1, b't']);
    b.extend_from_slice(&1i32.to_be_bytes()); // 1 partition
    b.extend_from_slice(&0i32.to_be_bytes()); // partition 0
    b.extend_from_slice(&(len as i32).to_be_bytes());
    b.extend(batch);
    b
}

/// A 20 KB Produce (between the walk threshold and the size gathered when the budget holds it) in 1 KiB
/// chunks: gathered whole with room in the budget, walked when the budget cannot hold it, and decoded to
/// the same body either way, never cut to its header.
#[test]
fn medium_frame_is_gathered_or_walked_by_budget_with_the_same_body() {
    let frame = req(0, 3, 9, &produce_v3_with_batch(20_000));
    let decode = |limit: u64| {
        let cfg = KafkaConfig::default();
        let budget = kwire_flow::Budget::new(limit);
        let mut k = KafkaConnection::new(&cfg, StreamStart::Handshake);
        k.set_budget(&budget);
        let mut ev = Vec::new();
        for chunk in frame.chunks(1024) {
            k.on_data(&cfg, Direction::ToServer, T, chunk, &mut |e| ev.push(e));
        }
        k.on_data(
            &cfg,
            Direction::ToClient,
            T,
            &resp(9, &produce_v3_resp()),
            &mut |e| ev.push(e),
        );
        let body = exchanges(&ev)[0].request.body.clone();
        (body, budget.stats())
    };
    let (gathered, roomy) = decode(1 << 20);
    let (walked, tight) = decode(4096);
    assert!(roomy.peak >= frame.len() as u64, "{roomy:?}");
    assert!(tight.peak < 4096 && tight.denied == 0, "{tight:?}");
    assert_eq!(gathered, walked);
    let Decoded::Full(RequestBody::Produce(p)) = walked else {
        panic!("{walked:?}")
    };
    let part = &p.topics[0].partitions[0];
    assert_eq!(part.record_bytes, 20_000);
    assert_eq!(
        part.batches
            .iter()
            .map(|b| (b.base_offset, b.record_count))
            .collect::<Vec<_>>(),
        vec![(100, 5)]
    );
}
