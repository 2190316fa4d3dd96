//! From a line to its packets, checked the way a person checks it: with Wireshark. For every exchange of
//! every harness fixture, `request_frame` / `response_frame` are the numbers tshark gives the packets
//! where it shows the reassembled request and response (same TCP connection, same correlation id), and
//! `community_id` is the Community ID tshark computes for that connection. Alerts carry `evidence`: the
//! exchanges they rest on, with the same frame numbers as those exchanges' own lines.
//!
//! Needs tshark (installed by `cargo xtask setup`); without it the test fails: it is the check.
//!
//! Easy to get wrong: the harness's brokers listen on random ports, so tshark must be told to decode
//! them as Kafka (`-d tcp.port==P,kafka`); one packet can end several Kafka PDUs (fields come
//! comma-joined).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use common::{replay, repo};
use serde_json::Value;

/// (client port, broker port, correlation id, to broker) -> frame number where tshark shows the PDU.
type Pdus = BTreeMap<(u16, u16, i64, bool), u64>;

fn tshark(pcap: &Path, broker_ports: &BTreeSet<u16>) -> (Pdus, BTreeMap<(u16, u16), String>) {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(pcap)
        .args(["-n", "--enable-protocol", "communityid"]);
    for p in broker_ports {
        cmd.args(["-d", &format!("tcp.port=={p},kafka")]);
    }
    cmd.args([
        "-T",
        "fields",
        "-e",
        "frame.number",
        "-e",
        "tcp.srcport",
        "-e",
        "tcp.dstport",
        "-e",
        "communityid",
        "-e",
        "kafka.correlation_id",
    ]);
    let out = cmd
        .output()
        .expect("tshark is needed for this test: run `cargo xtask setup`");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut pdus = Pdus::new();
    let mut ids = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let (frame, sp, dp): (u64, u16, u16) = (
            f[0].parse().unwrap(),
            f[1].parse().unwrap(),
            f[2].parse().unwrap(),
        );
        let to_broker = broker_ports.contains(&dp);
        let (client, broker) = if to_broker { (sp, dp) } else { (dp, sp) };
        if !f[3].is_empty() {
            ids.insert((client, broker), f[3].to_string());
        }
        for corr in f[4].split(',').filter(|c| !c.is_empty()) {
            pdus.entry((client, broker, corr.parse().unwrap(), to_broker))
                .or_insert(frame);
        }
    }
    (pdus, ids)
}

fn port(addr: &Value) -> u16 {
    addr.as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn frame_numbers_and_community_ids_agree_with_wireshark() {
    let dir = repo().join("tests/fixtures/harness");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "{files:?}");
    let mut checked = 0;
    for f in files {
        let r = replay(&f, &[]);
        let brokers: BTreeSet<u16> = r
            .exchanges()
            .iter()
            .map(|e| port(&e["broker_addr"]))
            .collect();
        let (pdus, ids) = tshark(&f, &brokers);
        for e in r.exchanges() {
            let (c, b) = (port(&e["client_addr"]), port(&e["broker_addr"]));
            let corr = e["correlation_id"].as_i64().unwrap();
            let what = format!("{}: {e}", f.display());
            assert_eq!(
                e["request_frame"].as_u64(),
                pdus.get(&(c, b, corr, true)).copied(),
                "request frame, {what}"
            );
            if !e["response_ts"].is_null() {
                assert_eq!(
                    e["response_frame"].as_u64(),
                    pdus.get(&(c, b, corr, false)).copied(),
                    "response frame, {what}"
                );
            }
            assert_eq!(
                e["community_id"].as_str(),
                ids.get(&(c, b)).map(String::as_str),
                "community id, {what}"
            );
            checked += 1;
        }
    }
    assert!(checked > 1000, "{checked} exchanges checked");
}

/// A regression's evidence is the exchange that told the higher end and the one that told the lower,
/// with their offsets and the frames of their own exchange lines; a late commit's is the SyncGroup whose
/// answer revoked the partition and the commit itself.
#[test]
fn alerts_name_the_exchanges_they_rest_on() {
    let f = repo().join("tests/fixtures/harness/follower-fetch-hwm-regression-mock.pcap");
    let r = replay(&f, &[]);
    let frames: BTreeMap<(i64, i64), (u64, u64)> = r
        .exchanges()
        .iter()
        .map(|e| {
            (
                (
                    e["conn"].as_i64().unwrap(),
                    e["correlation_id"].as_i64().unwrap(),
                ),
                (
                    e["request_frame"].as_u64().unwrap(),
                    e["response_frame"].as_u64().unwrap_or(0),
                ),
            )
        })
        .collect();
    let alerts = r.of_type("alert");
    assert!(!alerts.is_empty());
    for a in &alerts {
        assert_eq!(a["alert"], "listoffsets_regression");
        let ev = a["evidence"].as_array().unwrap();
        let roles: Vec<&str> = ev.iter().map(|e| e["role"].as_str().unwrap()).collect();
        assert_eq!(roles, ["before", "trigger"], "{a}");
        assert_eq!(ev[0]["offset"], a["previous_offset"]);
        assert_eq!(ev[1]["offset"], a["new_offset"]);
        assert_eq!(ev[1]["broker_addr"], a["broker_addr"]);
        for e in ev {
            let key = (
                e["conn"].as_i64().unwrap(),
                e["correlation_id"].as_i64().unwrap(),
            );
            assert_eq!(
                Some(&(
                    e["request_frame"].as_u64().unwrap(),
                    e["response_frame"].as_u64().unwrap()
                )),
                frames.get(&key),
                "{e}"
            );
        }
    }
    // The first alert: told 10 by the leader, then 4 by the lagging follower.
    let ev = alerts[0]["evidence"].as_array().unwrap();
    assert_eq!(
        (ev[0]["offset"].as_i64(), ev[1]["offset"].as_i64()),
        (Some(10), Some(4))
    );
    assert_ne!(ev[0]["broker_addr"], ev[1]["broker_addr"]);

    let f = repo().join("tests/fixtures/harness/commit-after-revoke-cooperative-mock.pcap");
    let r = replay(&f, &[]);
    let a = &r.of_type("alert")[0];
    assert_eq!(a["alert"], "commit_after_revoke");
    let ev = a["evidence"].as_array().unwrap();
    let what: Vec<(&str, &str)> = ev
        .iter()
        .map(|e| (e["role"].as_str().unwrap(), e["api"].as_str().unwrap()))
        .collect();
    assert_eq!(
        what,
        [("revocation", "SyncGroup"), ("trigger", "OffsetCommit")]
    );
    // weak_acks is raised from a producer's traffic as a whole: its first and latest weak-acks Produce,
    // here to the old leader and then to the new one.
    let r = replay(
        &repo().join("tests/fixtures/harness/acks1-leader-change-mock.pcap"),
        &[],
    );
    let a = r
        .of_type("alert")
        .into_iter()
        .find(|a| a["alert"] == "weak_acks" && a["severity"] == "critical")
        .expect("the critical weak_acks alert");
    let ev = a["evidence"].as_array().unwrap();
    let roles: Vec<(&str, &str)> = ev
        .iter()
        .map(|e| (e["role"].as_str().unwrap(), e["api"].as_str().unwrap()))
        .collect();
    assert_eq!(roles, [("first", "Produce"), ("last", "Produce")]);
    assert_ne!(ev[0]["broker_addr"], ev[1]["broker_addr"], "{a}");
    assert!(ev[0]["request_frame"].as_u64() < ev[1]["request_frame"].as_u64());
    // The quiet side: a capture without alerts has no evidence anywhere, and exchange lines of a
    // capture are numbered from 1.
    let r = replay(
        &repo().join("tests/fixtures/harness/group-eager-mock.pcap"),
        &[],
    );
    assert!(r.of_type("alert").is_empty());
    let first = r
        .exchanges()
        .iter()
        .filter_map(|e| e["request_frame"].as_u64())
        .min();
    assert!(first.is_some_and(|n| n >= 1));
}
