//! Socket owners from a live source (eBPF cgroup hooks) travel with exchanges and alerts: the client's
//! cgroup/container/pod on `client_*` fields, the broker's on `broker_*`; replays carry none.

mod support;

use std::sync::Arc;

use kwire_engine::{Engine, EngineConfig, Output};
use kwire_flow::{Attribution, LinkType, LocalEnd, Timestamp};
use support::{tcp_frame, Ep, KafkaApi, Pair, ACK};

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
