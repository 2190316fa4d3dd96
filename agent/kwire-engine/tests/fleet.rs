//! The fleet rule end to end in the engine: the same connection fed to the agent of the client's node
//! and to the agent of the broker's node gives its exchange to exactly one of them (the client's, or
//! the broker's for a client outside `cluster_cidrs`), and the other counts it as `fleet_skipped`.

mod support;

use kwire_engine::fleet::{parse_cidrs, FleetConfig};
use kwire_engine::{Engine, EngineConfig, Output};
use kwire_flow::{LinkType, Timestamp};
use support::{tcp_frame, Ep, KafkaApi, Pair, ACK};

/// Runs one Metadata exchange between `client` and `broker` through an agent whose node has `local`;
/// returns (exchange lines, fleet_skipped).
fn agent(client: Ep, broker: Ep, local: &str) -> (Vec<serde_json::Value>, u64) {
    let p = Pair::new(KafkaApi::Metadata, 7, "app-1", 1);
    let cfg = EngineConfig {
        fleet: FleetConfig {
            cluster_cidrs: parse_cidrs("10.0.0.0/8").unwrap(),
            local: parse_cidrs(local).unwrap(),
        },
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(cfg);
    let mut lines = Vec::new();
    let mut out = |o: Output| {
        if matches!(o, Output::Exchange(_)) {
            lines.push(serde_json::to_value(&o).unwrap())
        }
    };
    let req = tcp_frame(client, broker, 1000, 1, ACK, &p.request);
    engine.on_packet(Timestamp(1_000), LinkType::Ethernet, &req, &mut out);
    let resp = tcp_frame(
        broker,
        client,
        1,
        1000 + p.request.len() as u32,
        ACK,
        &p.response,
    );
    engine.on_packet(Timestamp(2_000), LinkType::Ethernet, &resp, &mut out);
    engine.finish(&mut out);
    let skipped = serde_json::to_value(engine.summary()).unwrap()["flows"]["fleet_skipped"]
        .as_u64()
        .unwrap_or(0);
    (lines, skipped)
}

#[test]
fn a_connection_in_the_cluster_is_analysed_by_the_client_node_only() {
    let client = Ep::new(10, 1, 0, 7, 40000);
    let broker = Ep::new(10, 2, 0, 9, 9092);
    let (a, a_skip) = agent(client, broker, "10.1.0.0/24");
    let (b, b_skip) = agent(client, broker, "10.2.0.0/24");
    assert_eq!((a.len(), a_skip), (1, 0));
    assert_eq!(a[0]["client_id"], "app-1");
    assert_eq!(a[0]["correlation_id"], 7);
    assert_eq!((b.len(), b_skip), (0, 1));
}

#[test]
fn a_client_outside_the_cluster_is_analysed_by_the_broker_node_only() {
    let client = Ep::new(203, 0, 113, 5, 40000);
    let broker = Ep::new(10, 2, 0, 9, 9092);
    let (b, b_skip) = agent(client, broker, "10.2.0.0/24");
    let (other, other_skip) = agent(client, broker, "10.1.0.0/24");
    assert_eq!((b.len(), b_skip), (1, 0));
    assert_eq!(b[0]["client_id"], "app-1");
    assert_eq!((other.len(), other_skip), (0, 1));
}

#[test]
fn rule_off_every_agent_analyses_it() {
    let client = Ep::new(10, 1, 0, 7, 40000);
    let broker = Ep::new(10, 2, 0, 9, 9092);
    let p = Pair::new(KafkaApi::Metadata, 7, "app-1", 1);
    let mut engine = Engine::new(EngineConfig::default());
    let mut n = 0;
    let mut out = |o: Output| n += matches!(o, Output::Exchange(_)) as usize;
    let req = tcp_frame(client, broker, 1000, 1, ACK, &p.request);
    engine.on_packet(Timestamp(1_000), LinkType::Ethernet, &req, &mut out);
    let resp = tcp_frame(
        broker,
        client,
        1,
        1000 + p.request.len() as u32,
        ACK,
        &p.response,
    );
    engine.on_packet(Timestamp(2_000), LinkType::Ethernet, &resp, &mut out);
    engine.finish(&mut out);
    assert_eq!(n, 1);
    // The summary line does not change for users without the rule.
    let s = serde_json::to_value(engine.summary()).unwrap();
    assert!(s["flows"].get("fleet_skipped").is_none(), "{s}");
}
