//! TLS plaintext from a live uprobe source (`Engine::on_plaintext`): it feeds a connection's Kafka
//! stage without TCP reassembly, replaces the TLS verdict of the same connection's packets, is cut
//! anywhere (a response read in many small `SSL_read` calls decodes whole), and the bytes of one
//! connection seen at both of its ends are analysed once.

mod support;

use std::net::IpAddr;
use std::sync::Arc;

use kwire_engine::{Engine, EngineConfig, Output};
use kwire_flow::{Attribution, Endpoint, LinkType, LocalEnd, Timestamp};
use support::{tcp_frame, Ep, KafkaApi, Pair, ACK, PSH, SYN};

const CLIENT: Ep = Ep::new(127, 0, 0, 1, 41000);
const BROKER: Ep = Ep::new(127, 0, 0, 1, 19093);

fn ep(e: Ep) -> Endpoint {
    Endpoint::new(IpAddr::V4(e.ip), e.port)
}

/// A TLS 1.2 handshake record header and a few bytes (what the packets carry).
fn tls_record() -> Vec<u8> {
    let mut r = vec![
        0x16, 0x03, 0x01, 0x00, 0x20, 0x01, 0x00, 0x00, 0x1c, 0x03, 0x03,
    ];
    r.resize(37, 0x42);
    r
}

fn app() -> Arc<Attribution> {
    Arc::new(Attribution {
        cgroup_id: 777,
        pod: Some("orders-1".into()),
        ..Attribution::default()
    })
}

struct Run {
    engine: Engine,
    lines: Vec<serde_json::Value>,
}

impl Run {
    fn new() -> Run {
        Run {
            engine: Engine::new(EngineConfig::default()),
            lines: Vec::new(),
        }
    }
    fn packet(&mut self, ns: i64, frame: &[u8]) {
        let lines = &mut self.lines;
        self.engine.on_packet(
            Timestamp(ns),
            LinkType::Ethernet,
            frame,
            &mut |o: Output| lines.push(serde_json::to_value(&o).unwrap()),
        );
    }
    fn plain(&mut self, ns: i64, src: Ep, dst: Ep, at: LocalEnd, data: &[u8]) {
        let lines = &mut self.lines;
        let who = app();
        self.engine.on_plaintext(
            Timestamp(ns),
            ep(src),
            ep(dst),
            at,
            data,
            Some(&who),
            &mut |o: Output| lines.push(serde_json::to_value(&o).unwrap()),
        );
    }
    fn finish(mut self) -> (Vec<serde_json::Value>, serde_json::Value) {
        let lines = &mut self.lines;
        self.engine
            .finish(&mut |o: Output| lines.push(serde_json::to_value(&o).unwrap()));
        let summary = serde_json::to_value(self.engine.summary()).unwrap();
        (self.lines, summary)
    }
}

fn exchanges(lines: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    lines.iter().filter(|l| l["type"] == "exchange").collect()
}

#[test]
fn plaintext_replaces_the_tls_packets_and_decodes_whole() {
    let mut run = Run::new();
    // The TCP handshake and a ClientHello: the packets alone say "TLS".
    run.packet(1_000, &tcp_frame(CLIENT, BROKER, 100, 0, SYN, &[]));
    run.packet(2_000, &tcp_frame(BROKER, CLIENT, 500, 101, SYN | ACK, &[]));
    let hello = tls_record();
    run.packet(
        3_000,
        &tcp_frame(CLIENT, BROKER, 101, 501, PSH | ACK, &hello),
    );

    // The client process writes a Metadata request (one SSL_write) and reads the response in 7-byte
    // SSL_read calls, the last one short.
    let p = Pair::new(KafkaApi::Metadata, 41, "tls-app", 4);
    run.plain(10_000, CLIENT, BROKER, LocalEnd::Src, &p.request);
    for (i, piece) in p.response.chunks(7).enumerate() {
        run.plain(20_000 + i as i64, BROKER, CLIENT, LocalEnd::Dst, piece);
    }
    // More TLS records of the same connection: covered by the plaintext, not analysed.
    run.packet(
        30_000,
        &tcp_frame(
            CLIENT,
            BROKER,
            101 + hello.len() as u32,
            501,
            PSH | ACK,
            &hello,
        ),
    );
    let (lines, summary) = run.finish();

    let x = exchanges(&lines);
    assert_eq!(x.len(), 1, "{lines:#?}");
    assert_eq!(x[0]["client_id"], "tls-app");
    assert_eq!(x[0]["correlation_id"], 41);
    assert_eq!(x[0]["api"], "Metadata");
    assert_eq!(x[0]["client_addr"], "127.0.0.1:41000");
    assert_eq!(x[0]["broker_addr"], "127.0.0.1:19093");
    assert_eq!(x[0]["client_cgroup_id"], 777);
    assert_eq!(x[0]["client_pod"], "orders-1");
    assert!(x[0].get("broker_cgroup_id").is_none());

    let pt = &summary["plaintext"];
    let reads = p.response.len().div_ceil(7) as u64;
    assert_eq!(pt["chunks"], 1 + reads);
    assert_eq!(pt["bytes"], (p.request.len() + p.response.len()) as u64);
    assert_eq!(pt["connections"], 1);
    assert_eq!(pt["tls_packets_covered"], 1);
    assert_eq!(pt["other_end_chunks"], 0);
    assert_eq!(summary["flows"]["kafka"], 1);
    assert_eq!(summary["flows"]["tls"], 0);
    assert_eq!(summary["kafka"]["requests"], 1);
    assert_eq!(summary["kafka"]["responses"], 1);
    // Plaintext chunks are not packets.
    assert_eq!(summary["packets"]["packets"], 4);
}

#[test]
fn both_ends_seen_are_analysed_once() {
    // A client and a TLS proxy both use OpenSSL on this node: the proxy reads what the client wrote.
    let mut run = Run::new();
    let p = Pair::new(KafkaApi::Heartbeat, 9, "both-ends", 1);
    run.plain(1_000, CLIENT, BROKER, LocalEnd::Src, &p.request); // client's SSL_write
    run.plain(1_500, CLIENT, BROKER, LocalEnd::Dst, &p.request); // proxy's SSL_read
    run.plain(2_000, BROKER, CLIENT, LocalEnd::Src, &p.response); // proxy's SSL_write
    run.plain(2_500, BROKER, CLIENT, LocalEnd::Dst, &p.response); // client's SSL_read
                                                                  // A last request the client wrote and whose response it never read (it closed first): the
                                                                  // proxy's write still completes the exchange.
    let q = Pair::new(KafkaApi::Heartbeat, 10, "both-ends", 2);
    run.plain(3_000, CLIENT, BROKER, LocalEnd::Src, &q.request);
    run.plain(3_500, CLIENT, BROKER, LocalEnd::Dst, &q.request);
    run.plain(4_000, BROKER, CLIENT, LocalEnd::Src, &q.response);
    let (lines, summary) = run.finish();
    let x = exchanges(&lines);
    assert_eq!(x.len(), 2, "{lines:#?}");
    assert_eq!(x[0]["client_id"], "both-ends");
    assert_eq!(x[0]["api"], "Heartbeat");
    assert_eq!(x[0]["correlation_id"], 9);
    assert_eq!(x[1]["correlation_id"], 10);
    assert!(!x[1]["response"].is_null(), "{:#}", x[1]);
    assert_eq!(summary["plaintext"]["chunks"], 7);
    assert_eq!(summary["plaintext"]["other_end_chunks"], 3);
    assert_eq!(summary["plaintext"]["connections"], 1);
}

#[test]
fn ports_filter_plaintext_and_no_plaintext_adds_no_summary_field() {
    let cfg = EngineConfig {
        ports: vec![9092],
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(cfg);
    let p = Pair::new(KafkaApi::ApiVersions, 1, "elsewhere", 3);
    let mut lines = Vec::new();
    let mut out = |o: Output| lines.push(serde_json::to_value(&o).unwrap());
    engine.on_plaintext(
        Timestamp(1),
        ep(CLIENT),
        ep(BROKER),
        LocalEnd::Src,
        &p.request,
        None,
        &mut out,
    );
    engine.finish(&mut out);
    assert!(exchanges(&lines).is_empty());
    let s = serde_json::to_value(engine.summary()).unwrap();
    assert_eq!(s["plaintext"]["filtered_by_port"], 1);
    assert_eq!(s["plaintext"]["connections"], 0);

    // A run with packets only: no "plaintext" key (replay outputs unchanged).
    let mut engine = Engine::new(EngineConfig::default());
    let frame = tcp_frame(CLIENT, BROKER, 1, 1, PSH | ACK, &p.request);
    engine.on_packet(Timestamp(1), LinkType::Ethernet, &frame, &mut |_o| {});
    engine.finish(&mut |_o| {});
    let s = serde_json::to_value(engine.summary()).unwrap();
    assert!(s.get("plaintext").is_none());
}
