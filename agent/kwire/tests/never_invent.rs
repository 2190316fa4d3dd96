//! Nothing is concluded from bytes that were not confirmed, and only Kafka is Kafka. Captures are built
//! here byte by byte (Ethernet/IPv4/TCP from kwire-engine's test support, a Kafka v2 record batch below),
//! written as classic pcap files and replayed with the real `kwire` binary; every output a user can get
//! (`--json`, the readable summary, `kwire timeline` in both forms) is searched for canary strings.
//!
//! 1. A connection joined mid-stream inside a Produce request whose record value holds valid Kafka request
//!    frames (client id and topic are canaries, correlation ids the very ones the client uses next): the
//!    frames found by probing count only once a response confirms them, so nothing of them reaches any
//!    output; they are counted (`unconfirmed_requests`, a fidelity reason). The quiet case: the same
//!    conversation with its handshake.
//! 2. TCP that is not Kafka (HTTP, SSH, Redis, random bytes, each with its handshake) is "other": no
//!    Kafka counters, no Kafka notices. The quiet case: a Kafka conversation beside them is Kafka.
//!
//! Easy to get wrong: the canary must be searched for in its base64 form too (JSON encoders of bytes);
//! a test that only checks `--json` would miss the readable and timeline outputs.

mod common;
#[path = "../../kwire-engine/tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::Command;

use base64::Engine as _;
use common::replay;
use support::{request_frame, response_frame, tcp_frame, Ep, ACK, PSH, SYN};

const CLIENT: Ep = Ep::new(10, 0, 0, 2, 40000);
const BROKER: Ep = Ep::new(10, 0, 0, 1, 9092);
const CANARY_CLIENT: &str = "CANARY-CLI-5e1f0c";
const CANARY_TOPIC: &str = "CANARY-TOPIC-a9d27b";
const T0: i64 = 1_700_000_000_000_000_000;

/// One packet: nanoseconds after T0 and its Ethernet frame.
struct P(i64, Vec<u8>);

/// A classic pcap (nanosecond timestamps, Ethernet) in a fresh temp directory.
fn write_pcap(name: &str, packets: &[P]) -> PathBuf {
    let mut b = Vec::new();
    b.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    b.extend_from_slice(&0i32.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&65535u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    for P(t, frame) in packets {
        let ts = T0 + t;
        b.extend_from_slice(&((ts / 1_000_000_000) as u32).to_le_bytes());
        b.extend_from_slice(&((ts % 1_000_000_000) as u32).to_le_bytes());
        b.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        b.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        b.extend_from_slice(frame);
    }
    let dir = std::env::temp_dir().join(format!("kwire-never-invent-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, b).unwrap();
    path
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(&(s.len() as i16).to_be_bytes());
    b.extend_from_slice(s.as_bytes());
}

fn varint(b: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let byte = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            b.push(byte);
            break;
        }
        b.push(byte | 0x80);
    }
}

/// A Kafka v2 record batch with one record whose value is `value` (no key, no headers).
fn record_batch(value: &[u8]) -> Vec<u8> {
    let mut rec = vec![0u8]; // attributes
    varint(&mut rec, 0); // timestamp delta
    varint(&mut rec, 0); // offset delta
    varint(&mut rec, -1); // key: null
    varint(&mut rec, value.len() as i64);
    rec.extend_from_slice(value);
    varint(&mut rec, 0); // headers
    let mut record = Vec::new();
    varint(&mut record, rec.len() as i64);
    record.extend(rec);

    let mut after_len = Vec::new();
    after_len.extend_from_slice(&0i32.to_be_bytes()); // partition leader epoch
    after_len.push(2); // magic
    after_len.extend_from_slice(&0u32.to_be_bytes()); // crc (not checked by a passive observer)
    after_len.extend_from_slice(&0i16.to_be_bytes()); // attributes
    after_len.extend_from_slice(&0i32.to_be_bytes()); // last offset delta
    after_len.extend_from_slice(&(T0 / 1_000_000).to_be_bytes()); // first timestamp
    after_len.extend_from_slice(&(T0 / 1_000_000).to_be_bytes()); // max timestamp
    after_len.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    after_len.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    after_len.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    after_len.extend_from_slice(&1i32.to_be_bytes()); // records
    after_len.extend(record);
    let mut batch = 0i64.to_be_bytes().to_vec(); // base offset
    batch.extend_from_slice(&(after_len.len() as i32).to_be_bytes());
    batch.extend(after_len);
    batch
}

/// Produce v3 (acks=1) of `records` to topic "orders" partition 0.
fn produce_request(corr: i32, records: &[u8]) -> Vec<u8> {
    let mut b = vec![0xff, 0xff]; // transactional id: null
    b.extend_from_slice(&1i16.to_be_bytes()); // acks
    b.extend_from_slice(&30_000i32.to_be_bytes()); // timeout
    b.extend_from_slice(&1i32.to_be_bytes());
    put_str(&mut b, "orders");
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes()); // partition
    b.extend_from_slice(&(records.len() as i32).to_be_bytes());
    b.extend_from_slice(records);
    request_frame(0, 3, corr, "real-producer", &b)
}

fn produce_response(corr: i32) -> Vec<u8> {
    let mut b = 1i32.to_be_bytes().to_vec();
    put_str(&mut b, "orders");
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes()); // partition
    b.extend_from_slice(&0i16.to_be_bytes()); // error
    b.extend_from_slice(&41i64.to_be_bytes()); // base offset
    b.extend_from_slice(&(-1i64).to_be_bytes()); // log append time
    b.extend_from_slice(&0i32.to_be_bytes()); // throttle
    response_frame(corr, &b)
}

/// Metadata v1 for one topic.
fn metadata_request(corr: i32, client: &str, topic: &str) -> Vec<u8> {
    let mut b = 1i32.to_be_bytes().to_vec();
    put_str(&mut b, topic);
    request_frame(3, 1, corr, client, &b)
}

fn metadata_response(corr: i32) -> Vec<u8> {
    let mut b = 1i32.to_be_bytes().to_vec(); // brokers
    b.extend_from_slice(&1i32.to_be_bytes());
    put_str(&mut b, "broker-1");
    b.extend_from_slice(&9092i32.to_be_bytes());
    b.extend_from_slice(&(-1i16).to_be_bytes()); // rack
    b.extend_from_slice(&1i32.to_be_bytes()); // controller
    b.extend_from_slice(&0i32.to_be_bytes()); // topics
    response_frame(corr, &b)
}

/// JoinGroup v0 (reported when sent, so a held event must not leak either).
fn join_request(corr: i32) -> Vec<u8> {
    let mut b = Vec::new();
    put_str(&mut b, CANARY_TOPIC); // group id
    b.extend_from_slice(&10_000i32.to_be_bytes());
    put_str(&mut b, ""); // member id
    put_str(&mut b, "consumer");
    b.extend_from_slice(&1i32.to_be_bytes());
    put_str(&mut b, "range");
    b.extend_from_slice(&0i32.to_be_bytes()); // metadata: empty bytes
    request_frame(11, 0, corr, CANARY_CLIENT, &b)
}

/// The client's bytes: a Produce (corr 7) whose record value is three valid request frames with canary
/// names and the correlation ids the client uses next (8, 9, 10), then the real requests 8 and 9.
/// Returns (client bytes, offset of the first forged frame, broker bytes).
fn conversation() -> (Vec<u8>, usize, Vec<u8>) {
    let mut forged = metadata_request(8, CANARY_CLIENT, CANARY_TOPIC);
    forged.extend(join_request(9));
    forged.extend(metadata_request(10, CANARY_CLIENT, CANARY_TOPIC));
    let produce = produce_request(7, &record_batch(&forged));
    let at = produce
        .windows(forged.len())
        .position(|w| w == forged.as_slice())
        .unwrap();
    let mut client = produce;
    client.extend(metadata_request(8, "real-consumer", "orders"));
    client.extend(metadata_request(9, "real-consumer", "orders"));
    let mut broker = produce_response(7);
    broker.extend(metadata_response(8));
    broker.extend(metadata_response(9));
    (client, at, broker)
}

/// Packets for a conversation: optionally a handshake, the client's bytes from `from` on in one segment,
/// then the broker's answer.
fn packets(client: &[u8], from: usize, broker: &[u8], handshake: bool) -> Vec<P> {
    let (cisn, bisn) = (1000u32, 5000u32);
    let mut v = Vec::new();
    if handshake {
        v.push(P(0, tcp_frame(CLIENT, BROKER, cisn, 0, SYN, &[])));
        v.push(P(
            1_000,
            tcp_frame(BROKER, CLIENT, bisn, cisn + 1, SYN | ACK, &[]),
        ));
        v.push(P(
            2_000,
            tcp_frame(CLIENT, BROKER, cisn + 1, bisn + 1, ACK, &[]),
        ));
    }
    let c = cisn + 1 + from as u32;
    let cend = cisn + 1 + client.len() as u32;
    v.push(P(
        1_000_000,
        tcp_frame(CLIENT, BROKER, c, bisn + 1, ACK | PSH, &client[from..]),
    ));
    v.push(P(
        2_000_000,
        tcp_frame(BROKER, CLIENT, bisn + 1, cend, ACK | PSH, broker),
    ));
    v.push(P(
        3_000_000,
        tcp_frame(
            CLIENT,
            BROKER,
            cend,
            bisn + 1 + broker.len() as u32,
            ACK,
            &[],
        ),
    ));
    v
}

/// Every output a user can get of one capture, as text.
fn all_outputs(pcap: &PathBuf) -> Vec<(String, String)> {
    let kwire = env!("CARGO_BIN_EXE_kwire");
    let runs: [&[&str]; 4] = [
        &["replay", "--json"],
        &["replay"],
        &["timeline", "--json"],
        &["timeline"],
    ];
    runs.iter()
        .map(|args| {
            let out = Command::new(kwire).args(*args).arg(pcap).output().unwrap();
            assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            (args.join(" "), text)
        })
        .collect()
}

fn assert_no_canary(outputs: &[(String, String)]) {
    let b64 = base64::engine::general_purpose::STANDARD;
    for canary in [CANARY_CLIENT, CANARY_TOPIC] {
        for form in [canary.to_string(), b64.encode(canary)] {
            for (what, text) in outputs {
                assert!(
                    !text.contains(&form),
                    "`kwire {what}` shows {form}:\n{text}"
                );
            }
        }
    }
}

#[test]
fn request_frames_inside_a_record_joined_mid_stream_are_never_reported() {
    let (client, at, broker) = conversation();
    let pcap = write_pcap(
        "forged-mid-stream.pcap",
        &packets(&client, at, &broker, false),
    );
    assert_no_canary(&all_outputs(&pcap));
    let r = replay(&pcap, &[]);
    let ex: Vec<(String, i64, bool)> = r
        .exchanges()
        .iter()
        .map(|e| {
            (
                e["client_id"].as_str().unwrap_or("").to_string(),
                e["correlation_id"].as_i64().unwrap(),
                !e["response_ts"].is_null(),
            )
        })
        .collect();
    assert_eq!(
        ex,
        vec![
            ("real-consumer".to_string(), 8, true),
            ("real-consumer".to_string(), 9, true)
        ]
    );
    assert_eq!(r.kafka("unconfirmed_requests"), 3);
    assert_eq!(r.kafka("requests"), 2);
    let f = &r.summary()["fidelity"];
    assert_eq!(f["unconfirmed_requests"], 3);
    assert!(
        f["reasons"]
            .as_array()
            .unwrap()
            .contains(&"unconfirmed_requests".into()),
        "{f}"
    );
    assert!(
        r.of_type("alert").is_empty()
            && r.summary()["clients"].to_string().contains("real-consumer")
    );
}

/// The quiet case: with its handshake the Produce is framed from its first byte, its record value is never
/// read as frames, and every request is confirmed.
#[test]
fn the_same_conversation_with_its_handshake_is_decoded_whole() {
    let (client, _, broker) = conversation();
    let pcap = write_pcap("forged-with-syn.pcap", &packets(&client, 0, &broker, true));
    assert_no_canary(&all_outputs(&pcap));
    let r = replay(&pcap, &[]);
    let ex: Vec<(String, i64)> = r
        .exchanges()
        .iter()
        .map(|e| {
            (
                e["client_id"].as_str().unwrap().to_string(),
                e["correlation_id"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ex,
        vec![
            ("real-producer".to_string(), 7),
            ("real-consumer".to_string(), 8),
            ("real-consumer".to_string(), 9)
        ]
    );
    assert_eq!(r.kafka("unconfirmed_requests"), 0);
    assert_eq!(r.summary()["fidelity"]["complete"], true);
}

/// One TCP connection with a handshake: the client's bytes, then (optionally) the server's, as sent.
fn conn(port: u16, server_first: Option<&[u8]>, client: &[u8], server: &[u8], t: i64) -> Vec<P> {
    let c = Ep::new(10, 0, 1, 7, port);
    let s = Ep::new(10, 0, 1, 8, 8000 + port % 1000);
    let (mut cs, mut ss) = (100u32, 900u32);
    let mut v = vec![
        P(t, tcp_frame(c, s, cs, 0, SYN, &[])),
        P(t + 1_000, tcp_frame(s, c, ss, cs + 1, SYN | ACK, &[])),
        P(t + 2_000, tcp_frame(c, s, cs + 1, ss + 1, ACK, &[])),
    ];
    cs += 1;
    ss += 1;
    if let Some(b) = server_first {
        v.push(P(t + 3_000, tcp_frame(s, c, ss, cs, ACK | PSH, b)));
        ss += b.len() as u32;
    }
    v.push(P(t + 4_000, tcp_frame(c, s, cs, ss, ACK | PSH, client)));
    cs += client.len() as u32;
    if !server.is_empty() {
        v.push(P(t + 5_000, tcp_frame(s, c, ss, cs, ACK | PSH, server)));
    }
    v
}

#[test]
fn http_ssh_redis_and_random_bytes_are_other_tcp_with_no_kafka_notice() {
    let mut random = support::Rng(7).bytes(300);
    random[0] = 0x9c; // no length prefix a Kafka request can have
    let mut p = Vec::new();
    p.extend(conn(
        41001,
        None,
        b"GET / HTTP/1.1\r\nHost: 10.0.1.8:8001\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6 Python/3.11.2\r\nContent-Length: 2\r\n\r\nok",
        0,
    ));
    p.extend(conn(
        41002,
        Some(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"),
        b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n",
        &[0, 0, 5, 0xdc, 4, 20, 1, 2, 3, 4],
        1_000_000,
    ));
    p.extend(conn(
        41003,
        None,
        b"*1\r\n$4\r\nPING\r\n",
        b"+PONG\r\n",
        2_000_000,
    ));
    p.extend(conn(41004, None, &random, &random[..40], 3_000_000));
    let pcap = write_pcap("other-tcp.pcap", &p);
    let r = replay(&pcap, &[]);
    let flows = &r.summary()["flows"];
    assert_eq!(
        (flows["kafka"].as_i64(), flows["not_kafka"].as_i64()),
        (Some(0), Some(4)),
        "{flows}"
    );
    for field in [
        "requests",
        "desyncs",
        "malformed_headers",
        "oversized_frames",
        "orphans",
    ] {
        assert_eq!(r.kafka(field), 0, "kafka.{field}");
    }
    assert!(r.of_type("notice").is_empty(), "{:?}", r.of_type("notice"));
    let text = &all_outputs(&pcap)[1].1;
    assert!(
        text.contains("4 connections: 0 Kafka, 0 TLS, 4 other"),
        "{text}"
    );

    // The quiet case: a Kafka conversation beside them is Kafka, and only it.
    let (client, _, broker) = conversation();
    let mut both = packets(&client, 0, &broker, true);
    both.extend(p.into_iter().map(|P(t, f)| P(t + 10_000_000, f)));
    let r = replay(&write_pcap("other-tcp-and-kafka.pcap", &both), &[]);
    let flows = &r.summary()["flows"];
    assert_eq!(
        (flows["kafka"].as_i64(), flows["not_kafka"].as_i64()),
        (Some(1), Some(4)),
        "{flows}"
    );
    assert_eq!(r.kafka("requests"), 3);
    assert!(r.of_type("notice").is_empty());
}

/// A real web server's traffic (curl against Python's http.server, captured with tcpdump on lo; see
/// tests/fixtures/other/README.md): three connections, all "other", no Kafka counter, no notice.
#[test]
fn a_captured_web_server_conversation_is_other_tcp() {
    let pcap = common::repo().join("tests/fixtures/other/web-curl.pcap");
    let r = replay(&pcap, &[]);
    let flows = &r.summary()["flows"];
    assert_eq!(
        (
            flows["tcp_connections"].as_i64(),
            flows["kafka"].as_i64(),
            flows["not_kafka"].as_i64()
        ),
        (Some(3), Some(0), Some(3)),
        "{flows}"
    );
    assert_eq!(r.kafka("requests"), 0);
    assert_eq!(r.kafka("desyncs"), 0);
    assert!(r.of_type("notice").is_empty() && r.exchanges().is_empty());
}
