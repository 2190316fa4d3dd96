//! Socket owners from a live source (eBPF cgroup hooks) travel with exchanges and alerts: the client's
//! cgroup/container/pod on `client_*` fields, the broker's on `broker_*`; replays carry none.

mod support;

use std::sync::Arc;

use kwire_engine::{Engine, EngineConfig, Output};
use kwire_flow::{Attribution, LinkType, LocalEnd, Timestamp};
use support::{request_frame, response_frame, tcp_frame, Ep, KafkaApi, Pair, ACK};

#[test]
fn owners_reach_exchange_lines() {
    let client = Ep::new(10, 0, 0, 1, 40000);
    let broker = Ep::new(10, 0, 0, 2, 9092);
    let p = Pair::new(KafkaApi::Metadata, 7, "app-1", 1);
    let app = Arc::new(Attribution {
        cgroup_id: 4242,
        cgroup: Some("/kubepods.slice/kubepods-pod1234.slice/cri-containerd-abc.scope".into()),
        container: Some("abc".into()),
        pod_uid: Some("1234".into()),
        pod: Some("orders-7f9".into()),
        namespace: Some("shop".into()),
        pid: None,
        comm: None,
    });
    let kafka = Arc::new(Attribution {
        cgroup_id: 99,
        pod: Some("kafka-0".into()),
        ..Attribution::default()
    });
    let mut engine = Engine::new(EngineConfig::default());
    let mut lines = Vec::new();
    let mut out = |o: Output| lines.push(serde_json::to_value(&o).unwrap());
    // The request seen on the client's egress, the response on the broker's egress.
    let req = tcp_frame(client, broker, 1000, 1, ACK, &p.request);
    engine.on_packet_owned(
        Timestamp(1_000),
        LinkType::Ethernet,
        &req,
        Some((LocalEnd::Src, &app)),
        &mut out,
    );
    let resp = tcp_frame(
        broker,
        client,
        1,
        1000 + p.request.len() as u32,
        ACK,
        &p.response,
    );
    engine.on_packet_owned(
        Timestamp(2_000),
        LinkType::Ethernet,
        &resp,
        Some((LocalEnd::Src, &kafka)),
        &mut out,
    );
    engine.finish(&mut out);
    let x = lines
        .iter()
        .find(|l| l["type"] == "exchange")
        .expect("an exchange");
    assert_eq!(x["client_id"], "app-1");
    assert_eq!(x["client_cgroup_id"], 4242);
    assert_eq!(x["client_pod"], "orders-7f9");
    assert_eq!(x["client_namespace"], "shop");
    assert_eq!(x["client_container"], "abc");
    assert_eq!(x["broker_cgroup_id"], 99);
    assert_eq!(x["broker_pod"], "kafka-0");

    // A replay (no owners) has none of these fields.
    let mut engine = Engine::new(EngineConfig::default());
    let mut lines = Vec::new();
    let mut out = |o: Output| lines.push(serde_json::to_value(&o).unwrap());
    engine.on_packet(Timestamp(1_000), LinkType::Ethernet, &req, &mut out);
    engine.on_packet(Timestamp(2_000), LinkType::Ethernet, &resp, &mut out);
    engine.finish(&mut out);
    let x = lines.iter().find(|l| l["type"] == "exchange").unwrap();
    assert!(x.get("client_pod").is_none() && x.get("client_cgroup_id").is_none());
}

/// A long-running agent must not wait for the end: a weak-acks producer is reported `report_after_s` of
/// packet time after its first request, once, with the counts so far; nothing more while it goes on.
#[test]
fn weak_acks_reported_while_running_once() {
    let client = Ep::new(10, 0, 0, 1, 40000);
    let broker = Ep::new(10, 0, 0, 2, 9092);
    let mut engine = Engine::new(EngineConfig::default());
    let mut alerts = Vec::new();
    let mut seq_c = 1000u32;
    let mut seq_b = 1u32;
    let sec = 1_000_000_000i64;
    for i in 0..200i64 {
        let (request, response) = produce_v3_acks1(i as i32);
        let req = tcp_frame(client, broker, seq_c, seq_b, ACK, &request);
        let resp = tcp_frame(
            broker,
            client,
            seq_b,
            seq_c + request.len() as u32,
            ACK,
            &response,
        );
        seq_c += request.len() as u32;
        seq_b += response.len() as u32;
        let mut out = |o: Output| {
            if let Output::Alert(a) = o {
                alerts.push((i, a.fields["requests"].as_i64().unwrap()));
            }
        };
        engine.on_packet(Timestamp(i * sec), LinkType::Ethernet, &req, &mut out);
        engine.on_packet(
            Timestamp(i * sec + 1000),
            LinkType::Ethernet,
            &resp,
            &mut out,
        );
    }
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let (when, requests) = alerts[0];
    assert!(
        (60..=62).contains(&when),
        "reported after 60 s of packet time, at {when}"
    );
    assert!(
        (60..=62).contains(&requests),
        "with the counts so far: {requests}"
    );
    let mut more = Vec::new();
    engine.finish(&mut |o| {
        if let Output::Alert(a) = o {
            more.push(a);
        }
    });
    assert!(more.is_empty(), "not again at the end");
}

/// Produce v3, acks=1, topic "t" partition 0, null records; and its response (base offset = correlation id).
fn produce_v3_acks1(corr: i32) -> (Vec<u8>, Vec<u8>) {
    let mut b = vec![0xFF, 0xFF]; // transactional id: null
    b.extend_from_slice(&1i16.to_be_bytes()); // acks
    b.extend_from_slice(&1000i32.to_be_bytes()); // timeout
    b.extend_from_slice(&1i32.to_be_bytes()); // topics
    b.extend_from_slice(&[0, 1, b't']);
    b.extend_from_slice(&1i32.to_be_bytes()); // partitions
    b.extend_from_slice(&0i32.to_be_bytes()); // partition 0
    b.extend_from_slice(&(-1i32).to_be_bytes()); // records: null
    let mut r = 1i32.to_be_bytes().to_vec(); // topics
    r.extend_from_slice(&[0, 1, b't']);
    r.extend_from_slice(&1i32.to_be_bytes()); // partitions
    r.extend_from_slice(&0i32.to_be_bytes()); // partition 0
    r.extend_from_slice(&0i16.to_be_bytes()); // error
    r.extend_from_slice(&i64::from(corr).to_be_bytes()); // base offset
    r.extend_from_slice(&(-1i64).to_be_bytes()); // log append time
    r.extend_from_slice(&0i32.to_be_bytes()); // throttle
    (
        request_frame(0, 3, corr, "p1", &b),
        response_frame(corr, &r),
    )
}

/// Connection churn (what a node agent sees for hours): many short connections, never closed cleanly,
/// with a small flow table. What the engine holds stays within its bound, and what it dropped is counted.
#[test]
fn memory_bounded_under_connection_churn() {
    let broker = Ep::new(10, 0, 0, 2, 9092);
    let mut cfg = EngineConfig::default();
    cfg.flows.max_flows = 256;
    let mut engine = Engine::new(cfg);
    let mut exchanges = 0u64;
    let sec = 1_000_000_000i64;
    for i in 0..20_000u32 {
        let client = Ep::new(10, 1, (i >> 8) as u8, i as u8, 40000 + (i % 20000) as u16);
        let p = Pair::new(KafkaApi::Metadata, i as i32, "churn", 1);
        // One request, no response, no FIN: the connection just goes quiet.
        let req = tcp_frame(client, broker, 1000, 1, ACK, &p.request);
        let ts = Timestamp(i64::from(i) * sec / 100); // 100 new connections per second
        engine.on_packet(ts, LinkType::Ethernet, &req, &mut |o| {
            if matches!(o, Output::Exchange(_)) {
                exchanges += 1;
            }
        });
        assert!(
            engine.flows_tracked() <= 256,
            "flow table over its bound at {i}"
        );
    }
    engine.finish(&mut |o| {
        if matches!(o, Output::Exchange(_)) {
            exchanges += 1;
        }
    });
    let s = engine.summary();
    // Every connection is accounted for: finished after eviction, expiry or at the end, or refused.
    assert_eq!(s.flows.tcp_connections + s.flows.refused_table_full, 20_000);
    assert!(
        s.flows.evicted_full + s.flows.refused_table_full > 0,
        "the bound was hit and counted"
    );
    // Joined mid-stream (no SYN) and never answered, a request found by probing is not confirmed: it is
    // counted for each finished connection, and nothing of it is reported.
    assert_eq!(exchanges, 0);
    assert_eq!(
        s.kafka.unconfirmed_requests, s.flows.tcp_connections,
        "each finished connection counts its unconfirmed request"
    );
}
