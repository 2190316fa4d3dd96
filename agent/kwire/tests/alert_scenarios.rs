//! Every alert kind made to happen for real: real client libraries (confluent-kafka / librdkafka,
//! kafka-python, aiokafka) against real Kafka-protocol brokers (librdkafka's mock cluster, tansu),
//! captured by `cargo xtask fixtures` into tests/fixtures/harness/ (see its README: command, versions,
//! client ids and the story of each file). Each test replays one capture with the real `kwire` binary and
//! asserts the EXACT alerts it raises — kind, severity, client, group / member, topic, partition, offsets —
//! and that nothing else is raised (counted by kind and severity, against the summary too).
//!
//! The expected values come from the scenario's facts (`<name>.facts.json`: what the client libraries
//! themselves reported — delivered offsets, watermarks, assignments, member ids, commits and their error
//! codes, every fault injected), not from kwire's output. Values that change when a capture is regenerated
//! (ports, member ids, timestamps) are read from the facts file, never written here.
//!
//! Easy to get wrong: the mock broker's member ids sort in creation order only by luck, so which
//! partitions a range assignor moves is read from the facts (`rebalanced`), and the literal partitions
//! asserted below are checked against them first; a regenerated capture that differs fails loudly there.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use common::{replay, repo, Run};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------------------
// Helpers: fixtures, facts, alerts.
// ---------------------------------------------------------------------------------------------------------

fn fixture(name: &str) -> PathBuf {
    let p = repo()
        .join("tests/fixtures/harness")
        .join(format!("{name}.pcap"));
    assert!(
        p.exists(),
        "missing fixture {} (made by `cargo xtask fixtures {name}`)",
        p.display()
    );
    p
}

fn facts(name: &str) -> Value {
    let p = repo()
        .join("tests/fixtures/harness")
        .join(format!("{name}.facts.json"));
    serde_json::from_str(
        &std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
    )
    .expect("facts JSON")
}

/// Every FACT line of every step, in order.
fn story(f: &Value) -> Vec<&Value> {
    f["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["facts"].as_array().unwrap().iter())
        .collect()
}

/// The facts of one kind, optionally of one client id.
fn facts_of<'a>(f: &'a Value, kind: &str, client: Option<&str>) -> Vec<&'a Value> {
    story(f)
        .into_iter()
        .filter(|x| x["fact"] == kind && client.is_none_or(|c| x["client_id"] == c))
        .collect()
}

/// "127.0.0.1:<port>" of mock broker `id` (1-based; the bootstrap list is in broker id order) or of tansu.
fn broker(f: &Value, id: usize) -> String {
    format!("127.0.0.1:{}", f["broker"]["ports"][id - 1])
}

fn run(name: &str) -> Run {
    let r = replay(&fixture(name), &[]);
    assert_eq!(r.status, 0, "{name}: kwire failed: {}", r.stderr);
    assert_eq!(r.kafka("decode_errors"), 0, "{name}: decode errors");
    r
}

fn alerts(r: &Run) -> Vec<&Value> {
    r.of_type("alert")
}

/// Exactly these alerts by (kind, severity) — nothing else — both in the alert lines and in the summary.
fn assert_alert_counts(name: &str, r: &Run, expected: &[(&str, &str, u64)]) {
    let mut want: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (k, s, n) in expected {
        *want.entry((k.to_string(), s.to_string())).or_default() += n;
    }
    let mut got: BTreeMap<(String, String), u64> = BTreeMap::new();
    for a in alerts(r) {
        *got.entry((
            a["alert"].as_str().unwrap().to_string(),
            a["severity"].as_str().unwrap().to_string(),
        ))
        .or_default() += 1;
    }
    assert_eq!(
        got,
        want,
        "{name}: alerts by kind and severity: {:#?}",
        alerts(r)
    );
    let summary: BTreeMap<(String, String), u64> = r.summary()["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                (
                    a["alert"].as_str().unwrap().to_string(),
                    a["severity"].as_str().unwrap().to_string(),
                ),
                a["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(summary, want, "{name}: the summary's alert counts");
}

/// The alerts of one kind, for one client id, ordered by partition.
fn alerts_of<'a>(r: &'a Run, kind: &str, client: &str) -> Vec<&'a Value> {
    let mut v: Vec<&Value> = alerts(r)
        .into_iter()
        .filter(|a| a["alert"] == kind && a["client_id"] == client)
        .collect();
    v.sort_by_key(|a| a["partition"].as_i64());
    v
}

fn the<'a>(v: Vec<&'a Value>, what: &str) -> &'a Value {
    assert_eq!(v.len(), 1, "expected exactly one {what}: {v:#?}");
    v[0]
}

/// RFC 3339 timestamps of the same format compare as strings.
fn ts(v: &Value) -> &str {
    v.as_str().expect("timestamp")
}

/// The exchange of `api` sent by `client` at `at` (request time).
fn exchange_at<'a>(r: &'a Run, api: &str, client: &str, at: &str) -> &'a Value {
    the(
        r.exchanges()
            .into_iter()
            .filter(|x| x["api"] == api && x["client_id"] == client && x["ts"] == at)
            .collect(),
        &format!("{api} of {client} at {at}"),
    )
}

// ---------------------------------------------------------------------------------------------------------
// The fixtures made before this file: weak acks from three libraries, and captures that must stay quiet.
// ---------------------------------------------------------------------------------------------------------

/// acks=0 and acks=1 producers of one library: one `weak_acks` warning each (no leader moved), with the
/// request and record counts the README states (6 records, one per request, record i to partition i % 3).
fn assert_weak_acks_of(name: &str, topic: &str, prefix: &str) {
    let r = run(name);
    assert_alert_counts(name, &r, &[("weak_acks", "warning", 2)]);
    for acks in [0, 1] {
        let client = format!("{prefix}{acks}");
        let a = the(
            alerts_of(&r, "weak_acks", &client),
            &format!("weak_acks of {client}"),
        );
        assert_eq!(a["topic"], topic, "{name}");
        assert_eq!(
            a["partition"],
            Value::Null,
            "{name}: one alert per client, topic and acks"
        );
        assert_eq!(a["acks"], acks, "{name}");
        assert_eq!(a["requests"], 6, "{name}");
        assert_eq!(a["records"], 6, "{name}");
        assert_eq!(a["partitions"], serde_json::json!([0, 1, 2]), "{name}");
        assert_eq!(a["idempotent"], false, "{name}");
        assert_eq!(a["transactional"], false, "{name}");
        assert!(
            a.get("leader_change_ts").is_none(),
            "{name}: no leader change"
        );
    }
    // acks=all producers (kw-...-acksall) raise nothing.
    assert!(alerts(&r)
        .iter()
        .all(|a| !a["client_id"].as_str().unwrap().ends_with("acksall")));
}

#[test]
fn weak_acks_librdkafka() {
    assert_weak_acks_of("produce-acks-librdkafka-mock", "kw-acks", "kw-acks");
}

#[test]
fn weak_acks_kafka_python() {
    assert_weak_acks_of("produce-kafka-python-tansu", "kw-py", "kw-py-acks");
}

#[test]
fn weak_acks_aiokafka() {
    assert_weak_acks_of("produce-aiokafka-mock", "kw-aio", "kw-aio-acks");
}

/// Rebalances with hand-off commits (eager, cooperative, kafka-python's Java-like group), ListOffsets and
/// Metadata, compressed batches: real, healthy traffic raises nothing at all.
#[test]
fn healthy_captures_raise_nothing() {
    for name in [
        "group-eager-mock",
        "group-cooperative-mock",
        "group-kafka-python-tansu",
        "listoffsets-metadata-tansu",
        "produce-compression-librdkafka-tansu",
    ] {
        let r = run(name);
        assert_alert_counts(name, &r, &[]);
    }
}

// ---------------------------------------------------------------------------------------------------------
// 1. KIP-392 follower fetching from a lagging replica.
// ---------------------------------------------------------------------------------------------------------

#[test]
fn follower_fetch_hwm_regression() {
    let name = "follower-fetch-hwm-regression-mock";
    let f = facts(name);
    let r = run(name);
    assert_alert_counts(
        name,
        &r,
        &[
            ("listoffsets_regression", "critical", 1),
            ("listoffsets_regression", "warning", 1),
        ],
    );

    // What the clients reported: 10 records per partition; the reader consumed 0..9 from the leader with a
    // cached high watermark of 10, then its cached high watermark became 4; the tail's too.
    let produced = the(facts_of(&f, "produced", Some("kw-ff-producer")), "produced");
    assert_eq!(
        produced["offsets"]["0"],
        serde_json::json!((0..10).collect::<Vec<_>>())
    );
    let consumed = the(facts_of(&f, "consumed", Some("kw-ff-reader")), "consumed");
    assert_eq!(
        (
            consumed["cached_high"].as_i64(),
            consumed["offsets"].as_array().unwrap().len()
        ),
        (Some(10), 10)
    );
    let wm = the(
        facts_of(&f, "watermarks", Some("kw-ff-reader")),
        "reader watermarks",
    );
    assert_eq!(
        (wm["cached_high"].as_i64(), wm["position"].as_i64()),
        (Some(4), Some(10))
    );
    let wm = the(
        facts_of(&f, "watermarks", Some("kw-ff-tail")),
        "tail watermarks",
    );
    assert_eq!(wm["cached_high"], 4);
    let (leader, follower) = (broker(&f, 1), broker(&f, 3));

    // The reader had consumed up to 10 when the follower told it 4: critical.
    let a = the(
        alerts_of(&r, "listoffsets_regression", "kw-ff-reader"),
        "reader regression",
    );
    assert_eq!(a["severity"], "critical");
    assert_eq!(
        (a["topic"].as_str(), a["partition"].as_i64()),
        (Some("kw-ff"), Some(0))
    );
    assert_eq!(a["broker_addr"], follower.as_str());
    assert_eq!(a["previous_broker"], leader.as_str());
    assert_eq!(
        (a["previous_offset"].as_i64(), a["previous_source"].as_str()),
        (Some(10), Some("fetch_hwm"))
    );
    assert_eq!(
        (a["new_offset"].as_i64(), a["new_source"].as_str()),
        (Some(4), Some("fetch_hwm"))
    );
    assert_eq!(a["delta"], 6);
    assert_eq!(a["consumed_offset"], 10);
    assert_eq!(a["end_of_log"], "high_watermark");
    assert!(
        a.get("committed_offset").is_none(),
        "the reader never committed"
    );
    assert!(ts(&a["previous_ts"]) < ts(&a["ts"]));

    // The tail consumer was only told 10 (by the leader) before 4 (by the follower): warning.
    let a = the(
        alerts_of(&r, "listoffsets_regression", "kw-ff-tail"),
        "tail regression",
    );
    assert_eq!(a["severity"], "warning");
    assert_eq!(
        (a["topic"].as_str(), a["partition"].as_i64()),
        (Some("kw-ff"), Some(1))
    );
    assert_eq!(a["broker_addr"], follower.as_str());
    assert_eq!(a["previous_broker"], leader.as_str());
    assert_eq!(
        (
            a["previous_offset"].as_i64(),
            a["new_offset"].as_i64(),
            a["delta"].as_i64()
        ),
        (Some(10), Some(4), Some(6))
    );
    assert_eq!(a["previous_source"], "fetch_hwm");
    assert!(a.get("consumed_offset").is_none() && a.get("committed_offset").is_none());

    // The Fetch that told the reader 10 came from the leader naming replica 3; the one that told it 4 from 3.
    let fetches: Vec<&Value> = r
        .exchanges()
        .into_iter()
        .filter(|x| {
            x["api"] == "Fetch"
                && x["client_id"] == "kw-ff-reader"
                && x["response"]["topics"].is_array()
        })
        .collect();
    let preferred: Vec<i64> = fetches
        .iter()
        .flat_map(|x| x["response"]["topics"].as_array().unwrap().iter())
        .flat_map(|t| t["partitions"].as_array().unwrap().iter())
        .filter_map(|p| p["preferred_read_replica"].as_i64())
        .filter(|r| *r >= 0)
        .collect();
    assert!(
        !preferred.is_empty() && preferred.iter().all(|r| *r == 3),
        "the leader named replica 3: {preferred:?}"
    );
}

/// `kwire timeline` around the regression: the reader's rows for kw-ff-0, in time order, end with the
/// leader telling 10 and the follower telling 4, the alert in place (table and JSON).
#[test]
fn timeline_around_the_follower_regression() {
    let name = "follower-fetch-hwm-regression-mock";
    let f = facts(name);
    let (leader, follower) = (broker(&f, 1), broker(&f, 3));
    let file = fixture(name);
    let args = [
        "--client",
        "kw-ff-reader",
        "--topic",
        "kw-ff",
        "--partition",
        "0",
    ];
    let out = Command::new(env!("CARGO_BIN_EXE_kwire"))
        .arg("timeline")
        .arg(&file)
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(out.status.success());
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!lines.is_empty());
    for l in &lines {
        assert_eq!(
            (
                l["client_id"].as_str(),
                l["topic"].as_str(),
                l["partition"].as_i64()
            ),
            (Some("kw-ff-reader"), Some("kw-ff"), Some(0)),
            "filtered: {l}"
        );
    }
    for w in lines.windows(2) {
        assert!(
            ts(&w[0]["ts"]) <= ts(&w[1]["ts"]),
            "rows in time order: {} then {}",
            w[0],
            w[1]
        );
    }
    let rows: Vec<&Value> = lines.iter().filter(|l| l["type"] == "timeline").collect();
    let alert_at = lines
        .iter()
        .position(|l| l["type"] == "alert")
        .expect("the alert is in the timeline");
    assert_eq!(lines.iter().filter(|l| l["type"] == "alert").count(), 1);
    assert_eq!(lines[alert_at]["alert"], "listoffsets_regression");
    assert_eq!(lines[alert_at]["severity"], "critical");

    // Served: 10 records from the leader, one batch per Fetch (the mock returns one batch per response).
    let fetched: Vec<i64> = rows
        .iter()
        .filter(|l| l["what"] == "fetched")
        .map(|l| l["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(fetched, (1..=10).collect::<Vec<_>>());
    assert!(rows
        .iter()
        .filter(|l| l["what"] == "fetched")
        .all(|l| l["broker_addr"] == leader.as_str()));
    // Right before the alert: the follower's fetch_hwm 4 (its LSO row shares the timestamp), after the
    // leader's last fetch_hwm 10; every high watermark before was 10 from the leader.
    let before: Vec<&Value> = lines[..alert_at]
        .iter()
        .filter(|l| l["what"] == "fetch_hwm")
        .collect();
    let (last, earlier) = before.split_last().unwrap();
    assert_eq!(
        (last["offset"].as_i64(), last["broker_addr"].as_str()),
        (Some(4), Some(follower.as_str()))
    );
    assert_eq!(last["ts"], lines[alert_at]["ts"]);
    assert!(earlier
        .iter()
        .all(|l| l["offset"] == 10 && l["broker_addr"] == leader.as_str()));
    // The fetch that got 4 asked for offset 10 on the follower.
    let asked: Vec<&Value> = lines[..alert_at]
        .iter()
        .filter(|l| l["what"] == "fetch_request" && l["broker_addr"] == follower.as_str())
        .collect();
    assert!(
        !asked.is_empty() && asked.iter().all(|l| l["offset"] == 10),
        "{asked:?}"
    );
    // Later follower answers repeat 4: no second alert (the baseline moved to 4).
    assert!(lines[alert_at + 1..]
        .iter()
        .filter(|l| l["what"] == "fetch_hwm")
        .all(|l| l["offset"] == 4));

    // The table shows the same alert inline.
    let out = Command::new(env!("CARGO_BIN_EXE_kwire"))
        .arg("timeline")
        .arg(&file)
        .args(args)
        .output()
        .unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.lines().next().unwrap().starts_with("ts "));
    assert_eq!(
        table
            .lines()
            .filter(|l| l.contains("!! CRITICAL listoffsets_regression"))
            .count(),
        1
    );
    assert_eq!(
        table.lines().count(),
        lines.len() + 1,
        "one table line per JSON line, plus the header"
    );
}

// ---------------------------------------------------------------------------------------------------------
// 2. ListOffsets(latest) after a topic is deleted and re-created (tansu).
// ---------------------------------------------------------------------------------------------------------

#[test]
fn listoffsets_regression_after_topic_recreate() {
    let name = "listoffsets-recreate-tansu";
    let f = facts(name);
    let r = run(name);
    assert_alert_counts(
        name,
        &r,
        &[
            ("listoffsets_regression", "warning", 1),
            ("listoffsets_regression", "critical", 1),
            ("acknowledged_then_lost", "info", 1),
        ],
    );

    let highs = |c: &str| {
        facts_of(&f, "watermarks", Some(c))
            .iter()
            .map(|w| w["high"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(highs("kw-rc-watch"), [5, 2]);
    assert_eq!(highs("kw-rc-consumer"), [2]);
    let commit = the(facts_of(&f, "committed", Some("kw-rc-consumer")), "commit");
    assert_eq!(
        (
            commit["offsets"]["0"].as_i64(),
            commit["errors"]["0"].as_i64()
        ),
        (Some(5), Some(0))
    );
    assert_eq!(facts_of(&f, "deleted", Some("kw-rc-admin")).len(), 1);
    assert_eq!(facts_of(&f, "created", Some("kw-rc-admin")).len(), 1);
    let tansu = broker(&f, 1);

    // Only asked before (5), told 2 now: warning. librdkafka asks with isolation read_committed.
    let a = the(
        alerts_of(&r, "listoffsets_regression", "kw-rc-watch"),
        "watch regression",
    );
    assert_eq!(a["severity"], "warning");
    assert_eq!(
        (
            a["topic"].as_str(),
            a["partition"].as_i64(),
            a["broker_addr"].as_str()
        ),
        (Some("kw-rc"), Some(0), Some(tansu.as_str()))
    );
    assert_eq!(
        (a["previous_offset"].as_i64(), a["previous_source"].as_str()),
        (Some(5), Some("listoffsets"))
    );
    assert_eq!(
        (
            a["new_offset"].as_i64(),
            a["new_source"].as_str(),
            a["delta"].as_i64()
        ),
        (Some(2), Some("listoffsets"), Some(3))
    );
    assert_eq!(a["end_of_log"], "last_stable_offset");
    assert!(a.get("consumed_offset").is_none() && a.get("committed_offset").is_none());

    // Consumed and committed 5 before, told 2 now: critical. Its last read_committed end before was the
    // Fetch LSO 5 (same series as ListOffsets isolation 1).
    let a = the(
        alerts_of(&r, "listoffsets_regression", "kw-rc-consumer"),
        "consumer regression",
    );
    assert_eq!(a["severity"], "critical");
    assert_eq!(
        (a["topic"].as_str(), a["partition"].as_i64()),
        (Some("kw-rc"), Some(0))
    );
    assert_eq!(
        (a["previous_offset"].as_i64(), a["previous_source"].as_str()),
        (Some(5), Some("fetch_lso"))
    );
    assert_eq!(
        (
            a["new_offset"].as_i64(),
            a["new_source"].as_str(),
            a["delta"].as_i64()
        ),
        (Some(2), Some("listoffsets"), Some(3))
    );
    assert_eq!(
        (
            a["committed_offset"].as_i64(),
            a["consumed_offset"].as_i64()
        ),
        (Some(5), Some(5))
    );
    // The consumer's ListOffsets came on a new connection (a new process): the timeline is per client.id +
    // host, not per connection.
    let last_lo = r
        .exchanges()
        .into_iter()
        .rfind(|x| x["api"] == "ListOffsets" && x["client_id"] == "kw-rc-consumer")
        .unwrap();
    assert_eq!(last_lo["response_ts"], a["ts"]);
    let commit_x = r
        .exchanges()
        .into_iter()
        .find(|x| x["api"] == "OffsetCommit" && x["client_id"] == "kw-rc-consumer")
        .unwrap();
    assert_ne!(last_lo["conn"], commit_x["conn"]);

    // The 5 records acknowledged before the deletion are gone: the re-created topic handed offset 0 out
    // again. A deliberate deletion by kw-rc-admin explains it: info, naming the client that deleted.
    let produced = facts_of(&f, "produced", Some("kw-rc-producer"));
    let offsets = |i: usize| -> Vec<i64> {
        produced[i]["offsets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o.as_i64().unwrap())
            .collect()
    };
    assert_eq!((offsets(0), offsets(1)), (vec![0, 1, 2, 3, 4], vec![0, 1]));
    let a = the(
        alerts_of(&r, "acknowledged_then_lost", "kw-rc-producer"),
        "acknowledged then lost",
    );
    assert_eq!(a["severity"], "info");
    assert_eq!(
        (
            a["topic"].as_str(),
            a["partition"].as_i64(),
            a["broker_addr"].as_str()
        ),
        (Some("kw-rc"), Some(0), Some(tansu.as_str()))
    );
    assert_eq!(
        (
            a["first_lost_offset"].as_i64(),
            a["last_lost_offset"].as_i64(),
            a["lost_records"].as_i64()
        ),
        (Some(0), Some(4), Some(5))
    );
    assert_eq!(a["acks"], "all");
    assert_eq!(
        (a["told_by"].as_str(), a["told_end_offset"].as_i64()),
        (Some("produce_base_offset"), Some(0))
    );
    assert_eq!(
        (a["deleted_by"].as_str(), a["deleted_by_client_id"].as_str()),
        (Some("delete_topics"), Some("kw-rc-admin"))
    );
    let delete_x = r
        .exchanges()
        .into_iter()
        .find(|x| x["api"] == "DeleteTopics")
        .unwrap();
    assert_eq!(delete_x["client_id"], "kw-rc-admin");
    assert_eq!(a["deleted_ts"], delete_x["ts"]);
    assert_eq!(a["producers"][0]["records"], 5);
}

// ---------------------------------------------------------------------------------------------------------
// 3-5. A member commits partitions a rebalance took from it: cooperative, eager, KIP-848.
// ---------------------------------------------------------------------------------------------------------

/// The story of `alert_stories.py stale-commit` for group `g` (= client id prefix): checks the facts, then
/// exactly two `commit_after_revoke` criticals and two `committed_offset_regression` infos, for the two
/// partitions member 1 lost, and nothing else.
fn assert_stale_commit(name: &str, g: &str, lost: [i64; 2], protocol_generations: (i64, i64)) {
    let f = facts(name);
    let r = run(name);
    assert_alert_counts(
        name,
        &r,
        &[
            ("commit_after_revoke", "critical", 2),
            ("committed_offset_regression", "info", 2),
        ],
    );
    let (c1, c2) = (format!("{g}-1"), format!("{g}-2"));

    // The facts: member 1 lost `lost`, member 2 got them; both committed 7; member 1 then committed 6
    // for them, accepted (error 0).
    let rb = the(facts_of(&f, "rebalanced", None), "rebalanced");
    let lost_v = serde_json::json!(lost);
    assert_eq!(
        rb["member1_lost"], lost_v,
        "{name}: which partitions moved (see the facts)"
    );
    assert_eq!(rb["member2_owns"], lost_v);
    let (m1, m2) = (
        rb["member1_id"].as_str().unwrap(),
        rb["member2_id"].as_str().unwrap(),
    );
    let commits = |c: &str, why: &str| {
        facts_of(&f, "committed", Some(c))
            .into_iter()
            .filter(|x| x["why"] == why)
            .collect::<Vec<_>>()
    };
    let stale = the(commits(&c1, "stale"), "stale commit");
    let m2_commit = the(commits(&c2, "step4"), "member 2's commit");
    for p in lost {
        let k = p.to_string();
        assert_eq!(
            (stale["offsets"][&k].as_i64(), stale["errors"][&k].as_i64()),
            (Some(6), Some(0)),
            "{name}"
        );
        assert_eq!(
            (
                m2_commit["offsets"][&k].as_i64(),
                m2_commit["errors"][&k].as_i64()
            ),
            (Some(7), Some(0)),
            "{name}"
        );
    }
    assert_eq!(stale["member_id"], m1);

    let car = alerts_of(&r, "commit_after_revoke", &c1);
    let reg = alerts_of(&r, "committed_offset_regression", &c1);
    assert_eq!((car.len(), reg.len()), (2, 2), "{name}: all from member 1");
    for (i, p) in lost.iter().enumerate() {
        let a = car[i];
        assert_eq!(a["severity"], "critical");
        assert_eq!(
            (a["topic"].as_str(), a["partition"].as_i64()),
            (Some(g), Some(*p))
        );
        assert_eq!(
            (a["group"].as_str(), a["member_id"].as_str()),
            (Some(g), Some(m1))
        );
        assert_eq!(a["committed_offset"], 6);
        assert_eq!(
            (a["accepted"].as_bool(), a["broker_error_code"].as_i64()),
            (Some(true), Some(0))
        );
        assert_eq!(a["new_owner"], m2);
        assert_eq!(
            (
                a["new_owner_committed_offset"].as_i64(),
                a["new_owner_served_offset"].as_i64()
            ),
            (Some(7), Some(7))
        );
        // generation: the member's generation / epoch at the stale commit; revoked in the one before.
        assert_eq!(
            (a["generation"].as_i64(), a["revoked_generation"].as_i64()),
            (Some(protocol_generations.1), Some(protocol_generations.0))
        );
        assert!(
            ts(&a["revoked_ts"]) <= ts(&a["revocation_complete_ts"])
                && ts(&a["revocation_complete_ts"]) <= ts(&a["ts"])
        );
        // It is the OffsetCommit the facts call "stale", accepted by the broker.
        let x = exchange_at(&r, "OffsetCommit", &c1, ts(&a["ts"]));
        assert_eq!(x["request"]["member_id"], m1);
        assert_eq!(
            x["request"]["generation_id_or_member_epoch"],
            a["generation"]
        );
        assert_eq!(x["error_codes"], serde_json::json!([]));

        let b = reg[i];
        assert_eq!(b["severity"], "info");
        assert_eq!(
            (
                b["topic"].as_str(),
                b["partition"].as_i64(),
                b["ts"].as_str()
            ),
            (Some(g), Some(*p), a["ts"].as_str())
        );
        assert_eq!(
            (
                b["previous_offset"].as_i64(),
                b["committed_offset"].as_i64(),
                b["delta"].as_i64()
            ),
            (Some(7), Some(6), Some(1))
        );
        assert_eq!(
            (b["member_id"].as_str(), b["previous_member_id"].as_str()),
            (Some(m1), Some(m2))
        );
    }
}

/// Cooperative-sticky: kw-carc-1 keeps [2, 3]; its on_revoke hand-off commit (6 for [0, 1], generation 3,
/// after the SyncGroup that dropped them, before rejoining) stays quiet; the commit of 6 for [0, 1] in
/// generation 4, after kw-carc-2 owns them and committed 7, is critical.
#[test]
fn commit_after_revoke_cooperative() {
    let name = "commit-after-revoke-cooperative-mock";
    let f = facts(name);
    let hand_off = the(
        facts_of(&f, "committed", Some("kw-carc-1"))
            .into_iter()
            .filter(|x| x["why"] == "on_revoke" && x["offsets"]["0"] == 6)
            .collect(),
        "hand-off",
    );
    assert_eq!(hand_off["errors"], serde_json::json!({"0": 0, "1": 0}));
    assert_stale_commit(name, "kw-carc", [0, 1], (3, 4));
}

/// `kwire timeline --json` of kw-carc-1 on kw-carc-0: its commits (4; the hand-off 6; the stale 6 with
/// both alerts right after it, at the same timestamp) and, at its final rejoin, the 7 kw-carc-2
/// committed, read back.
#[test]
fn timeline_around_the_stale_commit() {
    let name = "commit-after-revoke-cooperative-mock";
    let out = Command::new(env!("CARGO_BIN_EXE_kwire"))
        .arg("timeline")
        .arg(fixture(name))
        .args([
            "--client",
            "kw-carc-1",
            "--topic",
            "kw-carc",
            "--partition",
            "0",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for w in lines.windows(2) {
        assert!(
            ts(&w[0]["ts"]) <= ts(&w[1]["ts"]),
            "rows in time order: {} then {}",
            w[0],
            w[1]
        );
    }
    let story: Vec<(String, i64)> = lines
        .iter()
        .filter(|l| {
            l["type"] == "alert"
                || [
                    "committed",
                    "commit_rejected",
                    "offset_fetch",
                    "listoffsets_earliest",
                ]
                .contains(&l["what"].as_str().unwrap_or(""))
        })
        .map(|l| match l["type"].as_str() {
            Some("alert") => (
                format!(
                    "{} {}",
                    l["alert"].as_str().unwrap(),
                    l["severity"].as_str().unwrap()
                ),
                l["committed_offset"].as_i64().unwrap(),
            ),
            _ => (
                l["what"].as_str().unwrap().to_string(),
                l["offset"].as_i64().unwrap(),
            ),
        })
        .collect();
    let want: Vec<(String, i64)> = [
        ("listoffsets_earliest", 0),
        ("committed", 4),
        ("committed", 6),
        ("committed", 6),
        ("commit_after_revoke critical", 6),
        ("committed_offset_regression info", 6),
        ("offset_fetch", 7),
    ]
    .iter()
    .map(|(w, o)| (w.to_string(), *o))
    .collect();
    assert_eq!(story, want);
    let stale = lines.iter().position(|l| l["type"] == "alert").unwrap();
    assert_eq!(lines[stale - 1]["what"], "committed");
    assert_eq!(lines[stale - 1]["ts"], lines[stale]["ts"]);
    assert_eq!(lines[stale - 1]["group"], "kw-carc");
    // Served before the rebalance: 6 (records 0-5), never more on this partition.
    let fetched: Vec<i64> = lines
        .iter()
        .filter(|l| l["what"] == "fetched")
        .map(|l| l["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(fetched.last(), Some(&6));
}

/// Rows in time order, per client and partition, over whole files. A bug these captures found: rows are
/// produced when an exchange completes but carry the request's time, so a long-polling Fetch (librdkafka's
/// 500 ms fetch.wait.max.ms) printed its `fetch_request` row after rows of exchanges that completed
/// meanwhile (kw-carc-1's OffsetCommit of 4 at 00.693563 before the fetch_request of 00.693333).
#[test]
fn timeline_rows_in_time_order() {
    for name in [
        "commit-after-revoke-cooperative-mock",
        "follower-fetch-hwm-regression-mock",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_kwire"))
            .arg("timeline")
            .arg(fixture(name))
            .arg("--json")
            .output()
            .unwrap();
        assert!(out.status.success());
        let lines: Vec<Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        // Per client and partition (what one `--client --topic --partition` view shows).
        let mut last: BTreeMap<(String, String, i64), String> = BTreeMap::new();
        for l in &lines {
            let key = (
                l["client_id"].as_str().unwrap_or("").to_string(),
                l["topic"].as_str().unwrap_or("").to_string(),
                l["partition"].as_i64().unwrap_or(-1),
            );
            let t = ts(&l["ts"]).to_string();
            if let Some(prev) = last.get(&key) {
                assert!(
                    prev.as_str() <= t.as_str(),
                    "{name}: {key:?}: {prev} then {l}"
                );
            }
            last.insert(key, t);
        }
    }
}

/// Range (eager): kw-care-1 gives up everything at its rejoin (generation 3) and gets [0, 1] back; it then
/// commits 6 for [2, 3], which kw-care-2 owns and committed 7 for.
#[test]
fn commit_after_revoke_eager() {
    assert_stale_commit("commit-after-revoke-eager-mock", "kw-care", [2, 3], (2, 3));
}

/// KIP-848 (ConsumerGroupHeartbeat; the mock's range target assignment): kw-cark-1 is told to give up
/// [2, 3] (epoch 2), commits 6 for them in its revoke callback (quiet), acknowledges in a heartbeat, and
/// at epoch 3 commits 6 for them again after kw-cark-2 committed 7.
#[test]
fn commit_after_revoke_kip848() {
    let name = "commit-after-revoke-kip848-mock";
    let r = run(name);
    assert!(
        r.exchanges()
            .iter()
            .any(|x| x["api"] == "ConsumerGroupHeartbeat"),
        "a KIP-848 group"
    );
    assert!(
        !r.exchanges().iter().any(|x| x["api"] == "JoinGroup"),
        "no classic JoinGroup"
    );
    assert_stale_commit(name, "kw-cark", [2, 3], (2, 3));
}

// ---------------------------------------------------------------------------------------------------------
// 6. Transactions: TxnOffsetCommit, clean then stale.
// ---------------------------------------------------------------------------------------------------------

/// The facts of txn-offset-commit-mock, checked: (member 1 id, member 2 id, TxnOffsetCommit exchanges).
fn txn_story<'a>(f: &'a Value, r: &'a Run) -> (&'a str, &'a str, Vec<&'a Value>) {
    let rb = the(facts_of(f, "rebalanced", None), "rebalanced");
    assert_eq!(
        (rb["member1_owns"].clone(), rb["member2_owns"].clone()),
        (serde_json::json!([0]), serde_json::json!([1]))
    );
    let (m1, m2) = (
        rb["member1_id"].as_str().unwrap(),
        rb["member2_id"].as_str().unwrap(),
    );
    let txns = facts_of(f, "transaction", Some("kw-tx-producer"));
    let got: Vec<(String, Value)> = txns
        .iter()
        .map(|t| (t["why"].as_str().unwrap().to_string(), t["offsets"].clone()))
        .collect();
    assert_eq!(
        got,
        [
            ("clean".to_string(), serde_json::json!({"0": 4, "1": 4})),
            ("clean".to_string(), serde_json::json!({"0": 6, "1": 6})),
            ("stale".to_string(), serde_json::json!({"0": 7, "1": 7})),
            ("ahead".to_string(), serde_json::json!({"0": 9})),
        ]
    );
    assert!(txns.iter().all(|t| t["member_id"] == m1));
    let c2 = the(
        facts_of(f, "committed", Some("kw-tx-2")),
        "kw-tx-2's commit",
    );
    assert_eq!(c2["offsets"], serde_json::json!({"1": 7}));
    // Four TxnOffsetCommits on the wire, all accepted (the mock, like Apache Kafka, checks no ownership).
    let tocs: Vec<&Value> = r
        .exchanges()
        .into_iter()
        .filter(|x| x["api"] == "TxnOffsetCommit")
        .collect();
    assert_eq!(tocs.len(), 4);
    assert!(tocs
        .iter()
        .all(|x| x["client_id"] == "kw-tx-producer" && x["error_codes"] == serde_json::json!([])));
    (m1, m2, tocs)
}

/// Transactions 1 and 2 (clean) raise nothing; transaction 3's TxnOffsetCommit for the input partition
/// kw-tx-1 lost is a critical commit_after_revoke (sent by the producer, on behalf of member kw-tx-1);
/// transaction 4 commits 9 for kw-txin-0 where kw-tx-1 was served only up to 7: commit_ahead_of_fetch.
///
/// A detector gap this capture found: kwire used to look for "served" in the committing client's timeline
/// (kw-tx-producer, which never fetched) instead of the group member's consumer (kw-tx-1), and raised no
/// commit_ahead_of_fetch for transaction 4. Expected: one warning, client kw-tx-producer (the sender),
/// member kw-tx-1, consumer kw-tx-1, served 7 (kw-tx-1's), skipped 2.
#[test]
fn txn_offset_commit() {
    let name = "txn-offset-commit-mock";
    let f = facts(name);
    let r = run(name);
    let (m1, m2, tocs) = txn_story(&f, &r);

    let a = the(
        alerts_of(&r, "commit_after_revoke", "kw-tx-producer"),
        "stale TxnOffsetCommit",
    );
    assert_eq!(a["severity"], "critical");
    assert_eq!(
        (a["topic"].as_str(), a["partition"].as_i64()),
        (Some("kw-txin"), Some(1))
    );
    assert_eq!(
        (a["group"].as_str(), a["member_id"].as_str()),
        (Some("kw-tx"), Some(m1))
    );
    assert_eq!(a["committed_offset"], 7);
    assert_eq!(
        (a["accepted"].as_bool(), a["broker_error_code"].as_i64()),
        (Some(true), Some(0))
    );
    assert_eq!(a["new_owner"], m2);
    assert_eq!(
        (
            a["new_owner_committed_offset"].as_i64(),
            a["new_owner_served_offset"].as_i64()
        ),
        (Some(7), Some(7))
    );
    assert_eq!(
        (a["generation"].as_i64(), a["revoked_generation"].as_i64()),
        (Some(3), Some(2))
    );
    assert_eq!(a["ts"], tocs[2]["ts"]);
    assert_eq!(tocs[2]["request"]["member_id"], m1);

    let ahead: Vec<&Value> = alerts(&r)
        .into_iter()
        .filter(|a| a["alert"] == "commit_ahead_of_fetch")
        .collect();
    let a = the(
        ahead,
        "commit_ahead_of_fetch for transaction 4 (see the doc above)",
    );
    assert_eq!(
        (a["severity"].as_str(), a["client_id"].as_str()),
        (Some("warning"), Some("kw-tx-producer"))
    );
    assert_eq!(
        a["consumer_client_id"], "kw-tx-1",
        "whose consumer was served"
    );
    assert_eq!(
        (a["topic"].as_str(), a["partition"].as_i64()),
        (Some("kw-txin"), Some(0))
    );
    assert_eq!(
        (a["group"].as_str(), a["member_id"].as_str()),
        (Some("kw-tx"), Some(m1))
    );
    assert_eq!(
        (
            a["committed_offset"].as_i64(),
            a["served_offset"].as_i64(),
            a["skipped"].as_i64()
        ),
        (Some(9), Some(7), Some(2))
    );
    assert_eq!(a["ts"], tocs[3]["ts"]);
    assert_alert_counts(
        name,
        &r,
        &[
            ("commit_after_revoke", "critical", 1),
            ("commit_ahead_of_fetch", "warning", 1),
        ],
    );
}

// ---------------------------------------------------------------------------------------------------------
// 7. acks=1 while the partition leader moves.
// ---------------------------------------------------------------------------------------------------------

#[test]
fn weak_acks_critical_across_a_leader_change() {
    let name = "acks1-leader-change-mock";
    let f = facts(name);
    let r = run(name);
    assert_alert_counts(name, &r, &[("weak_acks", "critical", 1)]);
    let moves: Vec<&str> = facts_of(&f, "mock", None)
        .iter()
        .map(|m| m["command"].as_str().unwrap())
        .collect();
    assert_eq!(
        moves,
        ["partition_leader kw-lc 0 1", "partition_leader kw-lc 0 2"]
    );
    for c in ["kw-lc-acks1", "kw-lc-acksall"] {
        let p = the(facts_of(&f, "produced", Some(c)), "produced");
        assert_eq!(
            p["offsets"].as_array().unwrap().len(),
            10,
            "{c}: 10 records delivered"
        );
    }

    // Each producer's 6th record went to the old leader (broker 1) and got NOT_LEADER_OR_FOLLOWER, then was
    // retried on broker 2: 11 Produce requests each, one error 6.
    for c in ["kw-lc-acks1", "kw-lc-acksall"] {
        let produce: Vec<&Value> = r
            .exchanges()
            .into_iter()
            .filter(|x| x["api"] == "Produce" && x["client_id"] == c)
            .collect();
        assert_eq!(produce.len(), 11, "{c}");
        let failed: Vec<&&Value> = produce
            .iter()
            .filter(|x| x["error_codes"] == serde_json::json!([6]))
            .collect();
        assert_eq!(failed.len(), 1, "{c}");
        assert_eq!(failed[0]["broker_addr"], broker(&f, 1).as_str());
    }
    let first_error = r
        .exchanges()
        .into_iter()
        .filter(|x| x["api"] == "Produce" && x["error_codes"] == serde_json::json!([6]))
        .map(|x| x["response_ts"].as_str().unwrap().to_string())
        .min()
        .unwrap();

    let a = the(alerts_of(&r, "weak_acks", "kw-lc-acks1"), "weak_acks");
    assert_eq!(a["severity"], "critical");
    assert_eq!(
        (a["topic"].as_str(), a["partition"].clone()),
        (Some("kw-lc"), Value::Null)
    );
    assert_eq!(a["acks"], 1);
    // Requests and records as sent: the retried record is counted twice (10 delivered, 11 sent).
    assert_eq!(
        (a["requests"].as_i64(), a["records"].as_i64()),
        (Some(11), Some(11))
    );
    assert_eq!(a["partitions"], serde_json::json!([0]));
    assert_eq!(a["leader_change_partition"], 0);
    assert_eq!(
        a["leader_change_ts"].as_str().unwrap(),
        first_error,
        "the first response that showed the move"
    );
    assert!(
        ts(&a["first_ts"]) < ts(&a["leader_change_ts"])
            && ts(&a["leader_change_ts"]) < ts(&a["last_ts"])
    );
    // The acks=all producer raises nothing.
    assert!(alerts_of(&r, "weak_acks", "kw-lc-acksall").is_empty());
}

// ---------------------------------------------------------------------------------------------------------
// 8. A commit beyond what was served, then a lower commit.
// ---------------------------------------------------------------------------------------------------------

#[test]
fn commit_ahead_of_fetch_then_regression() {
    let name = "commit-ahead-and-regression-mock";
    let f = facts(name);
    let r = run(name);
    assert_alert_counts(
        name,
        &r,
        &[
            ("commit_ahead_of_fetch", "warning", 1),
            ("committed_offset_regression", "info", 1),
        ],
    );
    let commits: Vec<(String, i64, i64)> = facts_of(&f, "committed", Some("kw-ca-consumer"))
        .iter()
        .map(|c| {
            (
                c["why"].as_str().unwrap().to_string(),
                c["offsets"]["0"].as_i64().unwrap(),
                c["errors"]["0"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        commits,
        [
            ("consumed".into(), 6, 0),
            ("skip_to_end".into(), 10, 0),
            ("rewind".into(), 6, 0)
        ]
    );
    let wm = the(
        facts_of(&f, "watermarks", Some("kw-ca-consumer")),
        "watermarks",
    );
    assert_eq!(wm["high"], 10);
    let member = the(facts_of(&f, "assigned", Some("kw-ca-consumer")), "assigned")["member_id"]
        .as_str()
        .unwrap()
        .to_string();

    let a = the(
        alerts_of(&r, "commit_ahead_of_fetch", "kw-ca-consumer"),
        "commit ahead",
    );
    assert_eq!(a["severity"], "warning");
    assert_eq!(
        (a["topic"].as_str(), a["partition"].as_i64()),
        (Some("kw-ca"), Some(0))
    );
    assert_eq!(
        (a["group"].as_str(), a["member_id"].as_str()),
        (Some("kw-ca"), Some(member.as_str()))
    );
    assert_eq!(
        (
            a["committed_offset"].as_i64(),
            a["served_offset"].as_i64(),
            a["skipped"].as_i64()
        ),
        (Some(10), Some(6), Some(4))
    );
    assert_eq!(a["accepted"], true);
    assert!(ts(&a["served_ts"]) < ts(&a["ts"]));

    let b = the(
        alerts_of(&r, "committed_offset_regression", "kw-ca-consumer"),
        "regression",
    );
    assert_eq!(b["severity"], "info");
    assert_eq!(
        (
            b["topic"].as_str(),
            b["partition"].as_i64(),
            b["group"].as_str()
        ),
        (Some("kw-ca"), Some(0), Some("kw-ca"))
    );
    assert_eq!(
        (
            b["previous_offset"].as_i64(),
            b["committed_offset"].as_i64(),
            b["delta"].as_i64()
        ),
        (Some(10), Some(6), Some(4))
    );
    assert_eq!(
        (b["member_id"].as_str(), b["previous_member_id"].as_str()),
        (Some(member.as_str()), Some(member.as_str()))
    );
    assert_eq!(b["previous_ts"], a["ts"]);
}

// ---------------------------------------------------------------------------------------------------------
// 9. OFFSET_OUT_OF_RANGE and a jump to the end.
// ---------------------------------------------------------------------------------------------------------

#[test]
fn offset_reset_jump_to_latest() {
    let name = "offset-reset-jump-mock";
    let f = facts(name);
    let r = run(name);
    assert_alert_counts(name, &r, &[("offset_reset_jump", "warning", 1)]);
    let reset = the(facts_of(&f, "reset", Some("kw-orj-consumer")), "reset");
    assert_eq!(
        (
            reset["assigned_at"].as_i64(),
            reset["partition_eof_at"].as_i64(),
            reset["cached_low"].as_i64()
        ),
        (Some(0), Some(10), Some(4))
    );
    assert!(reset["librdkafka_log"][0]
        .as_str()
        .unwrap()
        .contains("offset reset (at offset 0"));

    let a = the(
        alerts_of(&r, "offset_reset_jump", "kw-orj-consumer"),
        "offset_reset_jump",
    );
    assert_eq!(a["severity"], "warning");
    assert_eq!(
        (a["topic"].as_str(), a["partition"].as_i64()),
        (Some("kw-orj"), Some(0))
    );
    assert_eq!(
        (
            a["out_of_range_offset"].as_i64(),
            a["resumed_offset"].as_i64(),
            a["skipped"].as_i64()
        ),
        (Some(0), Some(10), Some(10))
    );
    assert_eq!(
        a["broker_addr"],
        broker(&f, 3).as_str(),
        "resumed on the follower"
    );
    assert!(ts(&a["out_of_range_ts"]) < ts(&a["ts"]));
    // The OFFSET_OUT_OF_RANGE came from the follower (broker 3), the reset's ListOffsets from the leader.
    let oor: Vec<&Value> = r
        .exchanges()
        .into_iter()
        .filter(|x| x["api"] == "Fetch" && x["error_codes"] == serde_json::json!([1]))
        .collect();
    assert_eq!(oor.len(), 1);
    assert_eq!(oor[0]["broker_addr"], broker(&f, 3).as_str());
    let lo: Vec<&Value> = r
        .exchanges()
        .into_iter()
        .filter(|x| x["api"] == "ListOffsets" && x["client_id"] == "kw-orj-consumer")
        .collect();
    assert_eq!(lo.len(), 1);
    assert_eq!(lo[0]["broker_addr"], broker(&f, 1).as_str());
}

// ---------------------------------------------------------------------------------------------------------
// 10. Split brain: a stalled member commits after the group moved on.
// ---------------------------------------------------------------------------------------------------------

/// kw-so-1 (kafka-python) owned [0, 1] in generation 2, was stopped past its session timeout; kw-so-2 got
/// [0, 1] in generation 3 and committed 6; woken, kw-so-1 commits 4 with its old member id and generation
/// 2 — before any JoinGroup — and the broker rejects it (UNKNOWN_MEMBER_ID): `info`, one per partition.
#[test]
fn stale_owner_commit_after_a_stall() {
    let name = "stale-owner-commit-mock";
    let f = facts(name);
    let r = run(name);
    assert_alert_counts(name, &r, &[("stale_owner_commit", "info", 2)]);

    let owned = the(
        facts_of(&f, "committed", Some("kw-so-1"))
            .into_iter()
            .filter(|c| c["why"] == "owned")
            .collect(),
        "kw-so-1's commit",
    );
    assert_eq!(
        (owned["owns"].clone(), owned["generation"].as_i64()),
        (serde_json::json!([0, 1]), Some(2))
    );
    let m1 = owned["member_id"].as_str().unwrap();
    let zombie = the(
        facts_of(&f, "committed", Some("kw-so-1"))
            .into_iter()
            .filter(|c| c["why"] == "zombie")
            .collect(),
        "zombie commit",
    );
    assert_eq!(
        (zombie["ok"].as_bool(), zombie["error"].as_str()),
        (Some(false), Some("CommitFailedError"))
    );
    assert_eq!(zombie["offsets"], serde_json::json!({"0": 4, "1": 4}));
    let m2 = the(
        facts_of(&f, "assigned", Some("kw-so-2")),
        "kw-so-2 assigned",
    );
    assert_eq!(m2["now_owns"], serde_json::json!([0, 1]));
    let m2 = m2["member_id"].as_str().unwrap();
    let c2 = the(
        facts_of(&f, "committed", Some("kw-so-2")),
        "kw-so-2's commit",
    );
    assert_eq!(
        (c2["offsets"].clone(), c2["errors"].clone()),
        (
            serde_json::json!({"0": 6, "1": 6}),
            serde_json::json!({"0": 0, "1": 0})
        )
    );
    let story_order: Vec<String> = story(&f)
        .iter()
        .map(|x| {
            format!(
                "{}:{}",
                x["fact"].as_str().unwrap(),
                x["why"].as_str().or(x["signal"].as_str()).unwrap_or("")
            )
        })
        .collect();
    let at = |s: &str| {
        story_order
            .iter()
            .position(|x| x == s)
            .unwrap_or_else(|| panic!("{s} in {story_order:?}"))
    };
    assert!(
        at("stopped:SIGSTOP") < at("continued:SIGCONT")
            && at("continued:SIGCONT") < at("committed:zombie")
    );

    let v = alerts_of(&r, "stale_owner_commit", "kw-so-1");
    assert_eq!(v.len(), 2);
    for (a, p) in v.iter().zip([0, 1]) {
        assert_eq!(a["severity"], "info");
        assert_eq!(
            (a["topic"].as_str(), a["partition"].as_i64()),
            (Some("kw-so"), Some(p))
        );
        assert_eq!(
            (a["group"].as_str(), a["member_id"].as_str()),
            (Some("kw-so"), Some(m1))
        );
        assert_eq!(
            (
                a["member_generation"].as_i64(),
                a["committed_offset"].as_i64()
            ),
            (Some(2), Some(4))
        );
        assert_eq!(
            (
                a["current_owner"].as_str(),
                a["current_generation"].as_i64()
            ),
            (Some(m2), Some(3))
        );
        assert_eq!(
            (a["accepted"].as_bool(), a["broker_error_code"].as_i64()),
            (Some(false), Some(25))
        );
        assert_eq!(
            a["broker_addr"],
            broker(&f, 1).as_str(),
            "the pinned coordinator"
        );
    }
    // The rejected OffsetCommit carries the old identity, and kw-so-1 never rejoined before it.
    let x = exchange_at(&r, "OffsetCommit", "kw-so-1", ts(&v[0]["ts"]));
    assert_eq!(
        (
            x["request"]["member_id"].as_str(),
            x["request"]["generation_id_or_member_epoch"].as_i64()
        ),
        (Some(m1), Some(2))
    );
    assert_eq!(x["errors"], serde_json::json!(["UNKNOWN_MEMBER_ID"]));
    let joins: Vec<&Value> = r
        .exchanges()
        .into_iter()
        .filter(|j| j["api"] == "JoinGroup" && j["client_id"] == "kw-so-1")
        .collect();
    assert_eq!(joins.len(), 1, "kw-so-1 joined once, at the start");
    assert!(ts(&joins[0]["ts"]) < ts(&x["ts"]));
}

// ---------------------------------------------------------------------------------------------------------
// 11. Incidents: a member committing a revoked partition again and again; a consumer bouncing between the
//     leader and a lagging follower.
// ---------------------------------------------------------------------------------------------------------

/// The summary's incidents (`{"incidents": {"list": [...]}}`) of one alert kind and client.
fn incidents_of<'a>(r: &'a Run, kind: &str, client: &str) -> Vec<&'a Value> {
    r.summary()["incidents"]["list"]
        .as_array()
        .expect("the summary lists incidents")
        .iter()
        .filter(|i| i["alert"] == kind && i["client_id"] == client)
        .collect()
}

/// `alert_stories.py stale-commit --twice` for group `g`: member 1 commits the two partitions it lost 6
/// (rewinding member 2's 7), 6 again at once (nothing changed: a repeat), then 5 after member 2 committed
/// 9. Each late commit that does new harm is its own `commit_after_revoke` line with what it rewinds; the
/// repeat is folded into the same incident (occurrence 2, no line); the hand-off commit in the revoke
/// callback (cooperative) stays quiet.
///
/// Before this, kwire raised one `commit_after_revoke` per revocation: the commit of 5 rewinding member 2's
/// 9 showed only as `committed_offset_regression` (info).
fn assert_commit_after_revoke_twice(name: &str, g: &str) {
    let f = facts(name);
    let r = run(name);
    let (c1, c2) = (format!("{g}-1"), format!("{g}-2"));
    let rb = the(facts_of(&f, "rebalanced", None), "rebalanced");
    let lost: Vec<i64> = rb["member1_lost"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_i64().unwrap())
        .collect();
    assert_eq!(lost.len(), 2, "{name}: member 1 lost two partitions");
    assert_eq!(rb["member2_owns"], rb["member1_lost"]);
    let (m1, m2) = (
        rb["member1_id"].as_str().unwrap(),
        rb["member2_id"].as_str().unwrap(),
    );
    let commit = |c: &str, why: &str| {
        the(
            facts_of(&f, "committed", Some(c))
                .into_iter()
                .filter(|x| x["why"] == why)
                .collect(),
            &format!("{c}'s {why} commit"),
        )
    };
    // What the clients did, per lost partition: (who, why, offset), every one accepted (error 0).
    let story = [
        (c2.as_str(), "step4", 7),
        (c1.as_str(), "stale", 6),
        (c1.as_str(), "stale_again", 6),
        (c2.as_str(), "owned_9", 9),
        (c1.as_str(), "stale_later", 5),
    ];
    for (c, why, offset) in story {
        let x = commit(c, why);
        for p in &lost {
            let k = p.to_string();
            assert_eq!(
                (x["offsets"][&k].as_i64(), x["errors"][&k].as_i64()),
                (Some(offset), Some(0)),
                "{name}: {c} {why} on partition {p}"
            );
        }
    }
    assert_eq!(commit(&c1, "stale_later")["member_id"], m1);

    assert_alert_counts(
        name,
        &r,
        &[
            ("commit_after_revoke", "critical", 4),
            ("committed_offset_regression", "info", 4),
        ],
    );
    // The OffsetCommits of member 1 for the lost partitions after member 2's first commit, in order: stale
    // (6), stale_again (6), stale_later (5).
    let partitions = |x: &Value| -> Vec<i64> {
        x["request"]["topics"][0]["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["partition"].as_i64().unwrap())
            .collect()
    };
    let m2_first = r
        .exchanges()
        .into_iter()
        .find(|x| x["api"] == "OffsetCommit" && x["client_id"] == c2.as_str())
        .expect("member 2 committed")["ts"]
        .as_str()
        .unwrap();
    let late: Vec<&Value> = r
        .exchanges()
        .into_iter()
        .filter(|x| {
            x["api"] == "OffsetCommit"
                && x["client_id"] == c1.as_str()
                && ts(&x["ts"]) > m2_first
                && partitions(x) == lost
        })
        .collect();
    assert_eq!(late.len(), 3, "{name}: member 1's late OffsetCommits");
    let offsets: Vec<i64> = late
        .iter()
        .map(|x| {
            x["request"]["topics"][0]["partitions"][0]["committed_offset"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(offsets, [6, 6, 5]);
    assert!(late
        .iter()
        .all(|x| x["error_codes"] == serde_json::json!([]) && x["request"]["member_id"] == m1));

    let car = alerts_of(&r, "commit_after_revoke", &c1);
    assert_eq!(car.len(), 4, "{name}: all from member 1");
    for p in &lost {
        let lines: Vec<&Value> = car
            .iter()
            .copied()
            .filter(|a| a["partition"].as_i64() == Some(*p))
            .collect();
        assert_eq!(lines.len(), 2, "{name}: partition {p}");
        let (a, b) = (lines[0], lines[1]);
        // Both lines are one incident; the repeat between them is its occurrence 2.
        assert_eq!(a["incident_id"], b["incident_id"]);
        assert_eq!(
            (a["occurrence"].as_i64(), b["occurrence"].as_i64()),
            (Some(1), Some(3))
        );
        assert_eq!(a["incident_first_ts"], a["ts"]);
        assert_eq!(b["incident_first_ts"], a["ts"]);
        for (x, line, owner_committed, reread) in [(late[0], a, 7, 1), (late[2], b, 9, 4)] {
            assert_eq!(line["severity"], "critical");
            assert_eq!(line["ts"], x["ts"], "{name}: at the late OffsetCommit");
            assert_eq!(
                (
                    line["topic"].as_str(),
                    line["group"].as_str(),
                    line["member_id"].as_str()
                ),
                (Some(g), Some(g), Some(m1))
            );
            assert_eq!(
                line["generation"],
                x["request"]["generation_id_or_member_epoch"]
            );
            assert_eq!(
                line["committed_offset"],
                x["request"]["topics"][0]["partitions"][0]["committed_offset"]
            );
            assert_eq!(line["new_owner"], m2);
            assert_eq!(
                (
                    line["new_owner_committed_offset"].as_i64(),
                    line["new_owner_served_offset"].as_i64()
                ),
                (Some(owner_committed), Some(owner_committed))
            );
            // Rewinds the new owner's committed offset: that many records will be processed again.
            assert_eq!(line["records_reread"], reread, "{name}: {line}");
            assert!(line.get("records_skipped").is_none());
            assert!(line["explanation"]
                .as_str()
                .unwrap()
                .contains(&format!("{reread} records will be processed again")));
            assert_eq!(
                (
                    line["accepted"].as_bool(),
                    line["broker_error_code"].as_i64()
                ),
                (Some(true), Some(0))
            );
        }
        // The repeat (6 again, the group's committed offset already 6) raised no line of its own.
        assert!(alerts(&r).iter().all(|a| a["ts"] != late[1]["ts"]));
    }
    // The group's committed offset went back twice per partition: 7 → 6, 9 → 5, both from member 2's.
    let reg = alerts_of(&r, "committed_offset_regression", &c1);
    for p in &lost {
        let got: Vec<(i64, i64, i64, &str)> = reg
            .iter()
            .filter(|a| a["partition"].as_i64() == Some(*p))
            .map(|a| {
                (
                    a["previous_offset"].as_i64().unwrap(),
                    a["committed_offset"].as_i64().unwrap(),
                    a["delta"].as_i64().unwrap(),
                    a["previous_member_id"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(got, [(7, 6, 1, m2), (9, 5, 4, m2)], "{name}: partition {p}");
    }
    // The summary: one commit_after_revoke incident per lost partition, 3 occurrences, 2 lines.
    let inc = incidents_of(&r, "commit_after_revoke", &c1);
    assert_eq!(inc.len(), 2, "{name}: {inc:#?}");
    for i in &inc {
        assert_eq!(
            (
                i["occurrences"].as_i64(),
                i["alert_lines"].as_i64(),
                i["severity"].as_str()
            ),
            (Some(3), Some(2), Some("critical"))
        );
        assert_eq!(i["first_ts"], late[0]["ts"]);
        assert_eq!(i["last_ts"], late[2]["ts"]);
        assert!(i["condition"].as_str().unwrap().contains(m1));
    }
    assert_eq!(
        r.summary()["incidents"]["repeats"],
        2,
        "{name}: the two folded commits"
    );
}

#[test]
fn commit_after_revoke_twice_eager() {
    assert_commit_after_revoke_twice("commit-after-revoke-twice-eager-mock", "kw-c2e");
}

/// Cooperative-sticky: also the hand-off commit (6 for the two partitions, in on_revoke, before rejoining)
/// stays quiet.
#[test]
fn commit_after_revoke_twice_cooperative() {
    let name = "commit-after-revoke-twice-cooperative-mock";
    let f = facts(name);
    let hand_off = the(
        facts_of(&f, "committed", Some("kw-c2c-1"))
            .into_iter()
            .filter(|x| {
                x["why"] == "on_revoke"
                    && x["offsets"].as_object().unwrap().values().all(|o| o == 6)
            })
            .collect(),
        "hand-off",
    );
    let r = run(name);
    let x = the(
        r.exchanges()
            .into_iter()
            .filter(|x| {
                x["api"] == "OffsetCommit"
                    && x["client_id"] == "kw-c2c-1"
                    && x["ts"].as_str() < alerts(&r)[0]["ts"].as_str()
                    && x["request"]["topics"][0]["partitions"][0]["committed_offset"] == 6
            })
            .collect(),
        "the hand-off OffsetCommit",
    );
    assert_eq!(hand_off["errors"].as_object().unwrap().len(), 2);
    assert!(
        alerts(&r).iter().all(|a| a["ts"] != x["ts"]),
        "the hand-off is quiet"
    );
    assert_commit_after_revoke_twice(name, "kw-c2c");
}

/// KIP-392 bounce: kw-fb-reader consumed 10 records from the leader (broker 1); follower 3 lags at 4 while
/// the leader's end is 12. The leader tells 12 and names replica 3, the follower answers
/// OFFSET_OUT_OF_RANGE with high watermark 4, librdkafka reverts to the leader: 12, 4, 12, 4, ... (about
/// 50 times), then 12, 3, ... when the follower lags further, until it catches up.
///
/// One incident, two lines: the drop to 4 and the new lower value 3, both compared with the same 12
/// told by the leader; every other low answer is counted in it. It ends `recovered` when the follower
/// tells 12. Before this, kwire ignored the high watermark of OFFSET_OUT_OF_RANGE answers (nothing at
/// all here); counting them with one alert per re-baselined drop would have been one line per bounce.
#[test]
fn follower_bounce_is_one_incident() {
    let name = "follower-fetch-bounce-mock";
    let f = facts(name);
    let r = run(name);
    let (leader, follower) = (broker(&f, 1), broker(&f, 3));
    let consumed = facts_of(&f, "consumed", Some("kw-fb-reader"));
    assert_eq!(consumed.len(), 2);
    assert_eq!(
        (
            consumed[0]["offsets"].clone(),
            consumed[0]["cached_high"].as_i64()
        ),
        (serde_json::json!((0..10).collect::<Vec<_>>()), Some(10))
    );
    assert_eq!(
        (
            consumed[1]["offsets"].clone(),
            consumed[1]["cached_high"].as_i64()
        ),
        (serde_json::json!([10, 11]), Some(12))
    );
    // librdkafka's own log: one revert per follower answer, told 4 (then 3) by broker 3.
    let reverts = the(facts_of(&f, "reverts", Some("kw-fb-reader")), "reverts");
    let told: Vec<i64> = reverts["high_watermarks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_i64().unwrap())
        .collect();
    assert_eq!(reverts["brokers"], serde_json::json!([3]));
    let fours = told.iter().take_while(|h| **h == 4).count();
    assert!(
        fours >= 10 && told[fours..].iter().all(|h| *h == 3) && told.len() > fours + 10,
        "{told:?}"
    );

    // On the wire: the follower's answers to the reader with a high watermark below 12, in order.
    let low: Vec<(&str, i64)> = r
        .exchanges()
        .into_iter()
        .filter(|x| {
            x["api"] == "Fetch"
                && x["client_id"] == "kw-fb-reader"
                && x["broker_addr"] == follower.as_str()
        })
        .filter_map(|x| {
            let p = &x["response"]["topics"][0]["partitions"][0];
            let h = p["high_watermark"].as_i64()?;
            (h < 12).then(|| {
                assert_eq!(p["error_code"], 1, "OFFSET_OUT_OF_RANGE: {x}");
                (x["response_ts"].as_str().unwrap(), h)
            })
        })
        .collect();
    assert_eq!(
        low.iter().map(|(_, h)| *h).collect::<Vec<_>>(),
        told,
        "every answer librdkafka reverted on"
    );

    assert_alert_counts(name, &r, &[("listoffsets_regression", "critical", 2)]);
    let v = alerts_of(&r, "listoffsets_regression", "kw-fb-reader");
    let (a, b) = (v[0], v[1]);
    assert_eq!(a["incident_id"], b["incident_id"]);
    for (line, (at, new), occurrence) in [(a, low[0], 1), (b, low[fours], fours + 1)] {
        assert_eq!(line["ts"], at);
        assert_eq!(
            (line["topic"].as_str(), line["partition"].as_i64()),
            (Some("kw-fb"), Some(0))
        );
        assert_eq!(line["broker_addr"], follower.as_str());
        assert_eq!(line["new_offset"], new);
        assert_eq!(line["occurrence"], occurrence);
        assert_eq!(line["incident_first_ts"], low[0].0);
        // The same "before" on every line: the 12 the leader told, named for what it is.
        assert_eq!(
            (
                line["previous_offset"].as_i64(),
                line["previous_source"].as_str(),
                line["compared_with"].as_str()
            ),
            (Some(12), Some("fetch_hwm"), Some("told"))
        );
        assert_eq!(line["previous_told_offset"], 12);
        assert_eq!(line["previous_broker"], leader.as_str());
        assert_eq!(line["delta"], 12 - new);
        // Below the 10 it consumed: critical.
        assert_eq!(line["consumed_offset"], 10);
        assert!(line.get("committed_offset").is_none());
    }
    assert!(b["explanation"]
        .as_str()
        .unwrap()
        .contains("lower than the 4 told earlier"));
    // The summary: one incident, every low answer an occurrence, closed when the follower caught up.
    let inc = incidents_of(&r, "listoffsets_regression", "kw-fb-reader");
    let i = the(inc, "the bounce's incident");
    assert_eq!(i["incident_id"], a["incident_id"]);
    assert_eq!(
        (
            i["occurrences"].as_u64(),
            i["alert_lines"].as_i64(),
            i["closed"].as_str()
        ),
        (Some(low.len() as u64), Some(2), Some("recovered"))
    );
    assert_eq!(
        (i["first_ts"].as_str(), i["last_ts"].as_str()),
        (Some(low[0].0), Some(low[low.len() - 1].0))
    );
    assert_eq!(r.summary()["incidents"]["repeats"], low.len() as u64 - 2);
    // It recovered on the follower telling 12 again: the fetch that served records 10 and 11.
    let caught_up = r
        .exchanges()
        .into_iter()
        .filter(|x| {
            x["api"] == "Fetch"
                && x["client_id"] == "kw-fb-reader"
                && x["broker_addr"] == follower.as_str()
        })
        .find(|x| x["response"]["topics"][0]["partitions"][0]["high_watermark"] == 12)
        .expect("the follower caught up");
    assert!(ts(&caught_up["response_ts"]) > low[low.len() - 1].0);
}

/// Actionable alerts: the broker that told the lower end of log is named for its role (the follower the
/// leader sent the consumer to), the client's software is the one it announced in ApiVersions, and the
/// remediation is librdkafka's own; a commit after revoke names the new owner's client id.
#[test]
fn alerts_say_what_to_do_and_who() {
    let name = "follower-fetch-bounce-mock";
    let f = facts(name);
    let r = run(name);
    let follower = broker(&f, 3);
    for a in alerts_of(&r, "listoffsets_regression", "kw-fb-reader") {
        assert_eq!(a["broker_addr"], follower.as_str());
        assert_eq!(a["broker_role"], "follower", "{a}");
        assert!(
            a["client_software"]
                .as_str()
                .unwrap()
                .starts_with("confluent-kafka-python/"),
            "{a}"
        );
        assert!(a["remediation"].as_str().unwrap().contains("ISR"), "{a}");
    }

    let r = run("commit-after-revoke-cooperative-mock");
    let late = alerts_of(&r, "commit_after_revoke", "kw-carc-1");
    assert!(!late.is_empty());
    for a in late {
        assert_eq!(a["new_owner_client_id"], "kw-carc-2", "{a}");
        let text = a["remediation"].as_str().unwrap();
        assert!(text.contains("revoke callback"), "{text}");
        assert!(
            text.contains("incremental_unassign"),
            "librdkafka advice: {text}"
        );
    }
    // Every alert of another library carries advice too.
    let r = run("produce-kafka-python-tansu");
    for a in alerts(&r) {
        assert!(a["remediation"].as_str().is_some_and(|t| !t.is_empty()));
    }
}

// ---------------------------------------------------------------------------------------------------------
// From risk to proof: acknowledged records gone, refused records never re-sent.
// ---------------------------------------------------------------------------------------------------------

#[test]
fn acknowledged_then_lost_after_a_broker_restart() {
    let name = "acked-lost-restart-tansu";
    let f = facts(name);
    let r = run(name);
    assert_alert_counts(
        name,
        &r,
        &[
            ("acknowledged_then_lost", "critical", 1),
            ("listoffsets_regression", "warning", 1),
        ],
    );
    // The story, as the clients reported it.
    let produced = facts_of(&f, "produced", Some("kw-rl-producer"));
    let offsets = |i: usize| -> Vec<i64> {
        produced[i]["offsets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o.as_i64().unwrap())
            .collect()
    };
    assert_eq!((offsets(0), offsets(1)), (vec![0, 1, 2, 3, 4], vec![0, 1]));
    let highs: Vec<i64> = facts_of(&f, "watermarks", Some("kw-rl-watch"))
        .iter()
        .map(|w| w["high"].as_i64().unwrap())
        .collect();
    assert_eq!(highs, [5, 0]);
    assert_eq!(facts_of(&f, "broker_restarted", None).len(), 1);
    let tansu = broker(&f, 1);

    let a = the(
        alerts_of(&r, "acknowledged_then_lost", "kw-rl-producer"),
        "acknowledged then lost",
    );
    assert_eq!(a["severity"], "critical");
    assert_eq!(
        (
            a["topic"].as_str(),
            a["partition"].as_i64(),
            a["broker_addr"].as_str()
        ),
        (Some("kw-rl"), Some(0), Some(tansu.as_str()))
    );
    assert_eq!(
        (
            a["first_lost_offset"].as_i64(),
            a["last_lost_offset"].as_i64(),
            a["lost_records"].as_i64()
        ),
        (Some(0), Some(4), Some(5))
    );
    assert_eq!(a["acks"], "all");
    // Told by the watcher's ListOffsets(latest) to the (restarted) leader, below what was acknowledged.
    assert_eq!(
        (
            a["told_by"].as_str(),
            a["told_end_offset"].as_i64(),
            a["told_by_client_id"].as_str()
        ),
        (Some("listoffsets"), Some(0), Some("kw-rl-watch"))
    );
    assert_eq!(
        (a["leader_before"].as_str(), a["leader_after"].as_str()),
        (Some(tansu.as_str()), Some(tansu.as_str()))
    );
    assert!(a.get("deleted_by").is_none(), "no deletion on the wire");
    assert!(a["explanation"].as_str().unwrap().contains("acks=all"));
    let p = &a["producers"][0];
    assert_eq!(
        (
            p["client_id"].as_str(),
            p["first_offset"].as_i64(),
            p["last_offset"].as_i64()
        ),
        (Some("kw-rl-producer"), Some(0), Some(4))
    );
    // The alert's time is the ListOffsets answer that proved it.
    let lo = r
        .exchanges()
        .into_iter()
        .rfind(|x| x["api"] == "ListOffsets" && x["client_id"] == "kw-rl-watch")
        .unwrap();
    assert_eq!(lo["response_ts"], a["ts"]);
}

#[test]
fn produce_rejected_and_never_resent() {
    let name = "produce-rejected-mock";
    let f = facts(name);
    let r = run(name);
    // kw-pr-retry's NOT_ENOUGH_REPLICAS was retried and acknowledged: quiet. kw-pr-big's
    // MESSAGE_TOO_LARGE was never re-sent: critical (acks=all).
    assert_alert_counts(name, &r, &[("produce_rejected", "critical", 1)]);
    let failed = the(
        facts_of(&f, "delivery_failed", Some("kw-pr-big")),
        "delivery failure",
    );
    assert_eq!(
        (failed["code"].as_i64(), failed["retriable"].as_bool()),
        (Some(10), Some(false))
    );
    let retried = the(facts_of(&f, "produced", Some("kw-pr-retry")), "retry");
    assert_eq!(retried["offsets"][0], 0);
    assert!(alerts_of(&r, "produce_rejected", "kw-pr-retry").is_empty());
    let produces = |c: &str| -> Vec<Vec<i64>> {
        r.exchanges()
            .into_iter()
            .filter(|x| x["api"] == "Produce" && x["client_id"] == c)
            .map(|x| {
                x["error_codes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e.as_i64().unwrap())
                    .collect()
            })
            .collect()
    };
    assert_eq!(produces("kw-pr-retry"), [vec![19], vec![]]);
    assert_eq!(produces("kw-pr-big"), [vec![10], vec![]]);

    let a = the(
        alerts_of(&r, "produce_rejected", "kw-pr-big"),
        "produce rejected",
    );
    assert_eq!(a["severity"], "critical");
    assert_eq!(
        (a["topic"].as_str(), a["partition"].as_i64()),
        (Some("kw-pr"), Some(0))
    );
    assert_eq!(
        (
            a["error"].as_str(),
            a["error_code"].as_i64(),
            a["retriable"].as_bool()
        ),
        (Some("MESSAGE_TOO_LARGE"), Some(10), Some(false))
    );
    assert_eq!(
        (
            a["records"].as_i64(),
            a["batches"].as_i64(),
            a["attempts"].as_i64(),
            a["resent"].as_bool(),
            a["acks"].as_i64()
        ),
        (Some(1), Some(1), Some(1), Some(false), Some(-1))
    );
    let refused = r
        .exchanges()
        .into_iter()
        .find(|x| x["api"] == "Produce" && x["client_id"] == "kw-pr-big")
        .unwrap();
    assert_eq!(refused["response_ts"], a["ts"]);
}

#[test]
fn produce_rejected_when_the_broker_refuses_an_old_produce_version() {
    let name = "old-produce-refused-mock";
    let f = facts(name);
    let r = run(name);
    assert_alert_counts(name, &r, &[("produce_rejected", "critical", 1)]);
    let failed = the(
        facts_of(&f, "delivery_failed", Some("kw-old-producer")),
        "delivery failure",
    );
    assert_eq!(failed["error"], "KafkaConnectionError");
    assert!(facts_of(&f, "mock", None)
        .iter()
        .any(|m| m["command"] == "apiversion Produce 8 10"));
    // The one Produce v7 request, never answered (the mock closed the connection).
    let produce = the(
        r.exchanges()
            .into_iter()
            .filter(|x| x["api"] == "Produce")
            .collect(),
        "Produce",
    );
    assert_eq!(
        (
            produce["client_id"].as_str(),
            produce["api_version"].as_i64(),
            produce["response_ts"].is_null()
        ),
        (Some("kw-old-producer"), Some(7), true)
    );
    let a = the(
        alerts_of(&r, "produce_rejected", "kw-old-producer"),
        "produce rejected",
    );
    assert_eq!(a["severity"], "critical");
    assert_eq!(
        (a["topic"].as_str(), a["partition"].as_i64()),
        (Some("kw-op"), Some(0))
    );
    assert_eq!(
        (
            a["error"].as_str(),
            a["records"].as_i64(),
            a["attempts"].as_i64(),
            a["resent"].as_bool(),
            a["acks"].as_i64()
        ),
        (Some("NO_ANSWER"), Some(1), Some(1), Some(false), Some(-1))
    );
    assert!(a.get("error_code").is_none());
    assert_eq!(a["ts"], produce["ts"]);
}
