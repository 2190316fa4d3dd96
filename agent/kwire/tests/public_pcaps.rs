//! Every capture of ../shared/pcaps/public replayed in place, with what its SOURCES.md and its bytes say
//! it contains: requests per API key and version, responses matched, orphans, acks, client ids, and
//! decoded values checked against the bytes.

mod common;

use common::{public, replay, Run};
use serde_json::Value;

/// (api, version, requests, responses)
type Apis<'a> = &'a [(&'a str, i64, i64, i64)];

fn check(file: &str, apis: Apis<'_>, orphans: i64, clients: &[&str]) -> Run {
    check_with(file, apis, orphans, clients, 0)
}

fn check_with(
    file: &str,
    apis: Apis<'_>,
    orphans: i64,
    clients: &[&str],
    decode_errors: i64,
) -> Run {
    let run = replay(&public(file), &[]);
    assert_eq!(run.status, 0, "{file}: exit status, stderr: {}", run.stderr);
    let got = run.api_counts();
    let want: Vec<(String, i64, i64, i64)> = apis
        .iter()
        .map(|(a, v, q, r)| (a.to_string(), *v, *q, *r))
        .collect();
    let mut got_sorted = got.clone();
    got_sorted.sort();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    assert_eq!(
        got_sorted, want_sorted,
        "{file}: requests/responses per API version"
    );
    assert_eq!(run.kafka("orphans"), orphans, "{file}: orphan responses");
    assert_eq!(
        run.kafka("decode_errors"),
        decode_errors,
        "{file}: bodies that failed to decode"
    );
    assert_eq!(run.kafka("desyncs"), 0, "{file}: desyncs");
    let mut ids = run.client_ids();
    ids.sort();
    let mut want_ids: Vec<String> = clients.iter().map(|s| s.to_string()).collect();
    want_ids.sort();
    assert_eq!(ids, want_ids, "{file}: client ids");
    // Exchanges agree with the summary.
    let n: i64 = apis.iter().map(|a| a.2).sum();
    assert_eq!(
        run.exchanges().len() as i64,
        n,
        "{file}: one exchange line per request"
    );
    run
}

fn acks(run: &Run) -> Vec<(String, i64)> {
    run.summary()["produce_acks"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_i64().unwrap()))
        .collect()
}

fn find<'a>(run: &'a Run, api: &str, corr: i64) -> &'a Value {
    run.exchanges()
        .into_iter()
        .find(|e| e["api"] == api && e["correlation_id"] == corr)
        .unwrap_or_else(|| panic!("no {api} exchange with correlation id {corr}"))
}

#[test]
fn deepflow_produce() {
    let r = check(
        "deepflow/00-produce-v2.pcap",
        &[("Produce", 2, 1, 1)],
        0,
        &["console-producer"],
    );
    assert_eq!(acks(&r), vec![("1".into(), 1)]);
    let r = check(
        "deepflow/00-produce-v7-sw8.pcap",
        &[("Produce", 7, 1, 1)],
        0,
        &["kafka-python-producer-1"],
    );
    assert_eq!(acks(&r), vec![("1".into(), 1)]);
    let e = &r.exchanges()[0];
    assert_eq!(
        e["broker_addr"].as_str().unwrap().rsplit(':').next(),
        Some("36333"),
        "Kafka found on a non-9092 port"
    );
    let b = &e["request"]["topics"][0]["partitions"][0]["batches"][0];
    assert_eq!(b["magic"], 2);
    assert_eq!(b["compression"], "none");
    // Record keys/values (and the sw8 tracing header inside the record) are never output.
    let line = serde_json::to_string(e).unwrap();
    assert!(!line.contains("sw8"), "record headers must not be exported");
    let r = check(
        "deepflow/00-produce-v9.pcap",
        &[("Produce", 9, 1, 1)],
        0,
        &["console-producer"],
    );
    assert_eq!(acks(&r), vec![("1".into(), 1)]);
    // One packet: a Produce request joined mid-stream, no response in the file. A frame found by probing
    // counts only once answered (record bytes can read as requests), so it is counted, not reported.
    let r = check("deepflow/produce-v9-old-2024.pcap", &[], 0, &[]);
    assert_eq!(r.kafka("unconfirmed_requests"), 1);
    assert_eq!(r.kafka("unanswered"), 0);
    assert!(r.exchanges().is_empty());
}

#[test]
fn deepflow_fetch() {
    let r = check(
        "deepflow/01-fetch-v12-ok.pcap",
        &[("Fetch", 12, 1, 1)],
        0,
        &["consumer-console-consumer-8919-1"],
    );
    let e = find(&r, "Fetch", 15603);
    let p = &e["request"]["topics"][0];
    assert_eq!(p["name"], "zqy-test");
    assert_eq!(p["partitions"][0]["fetch_offset"], 36);
    assert_eq!(e["request"]["session_id"], 791048645);
    assert_eq!(e["latency_us"], 499610);
    check(
        "deepflow/01-fetch-v12-perf.pcap",
        &[("Fetch", 12, 1, 1)],
        0,
        &["consumer-console-consumer-84107-1"],
    );
    // The oracle (deepflow's expected output) says status code 5120 for this response.
    let r = check(
        "deepflow/01-fetch-v12-unknown.pcap",
        &[("Fetch", 12, 1, 1)],
        0,
        &["consumer-console-consumer-84107-1"],
    );
    assert_eq!(r.exchanges()[0]["error_codes"], serde_json::json!([5120]));
    let r = check(
        "deepflow/mixed-with-unsupported.pcap",
        &[
            ("Fetch", 13, 1, 1),
            ("OffsetCommit", 8, 1, 1),
            ("Heartbeat", 4, 1, 1),
        ],
        0,
        &["consumer-frauddetectionservice-1"],
    );
    let f = r
        .exchanges()
        .into_iter()
        .find(|e| e["api"] == "Fetch")
        .unwrap();
    // An incremental fetch session: no partitions listed, session id and epoch carried.
    assert_eq!(f["request"]["session_id"], 1191256040);
    assert_eq!(f["request"]["session_epoch"], 3684);
    assert_eq!(f["request"]["topics"], serde_json::json!([]));
}

#[test]
fn deepflow_groups() {
    // deepflow's oracle: JoinGroup and SyncGroup responses carry error -1, group zzzz12.
    let r = check(
        "deepflow/11-join-group-v7.pcap",
        &[("JoinGroup", 7, 1, 1)],
        0,
        &["consumer-zzzz12-1"],
    );
    let e = &r.exchanges()[0];
    assert_eq!(e["request"]["group_id"], "zzzz12");
    assert_eq!(e["request"]["protocol_type"], "consumer");
    assert_eq!(e["request"]["protocols"][1]["name"], "cooperative-sticky");
    assert_eq!(
        e["request"]["protocols"][0]["subscription"]["topics"],
        serde_json::json!(["zqy-topic1"])
    );
    assert_eq!(e["error_codes"], serde_json::json!([-1]));
    check(
        "deepflow/13-leave-group-v4.pcap",
        &[("LeaveGroup", 4, 1, 1)],
        0,
        &["consumer-zzzz12-1"],
    );
    let r = check(
        "deepflow/14-sync-group-v5.pcap",
        &[("SyncGroup", 5, 1, 1)],
        0,
        &["consumer-zzzz12-1"],
    );
    let e = &r.exchanges()[0];
    assert_eq!(e["request"]["generation_id"], 7);
    let a = &e["response"]["assignment"]["partitions"][0];
    assert_eq!(a["topic"], "zqy-topic1");
    assert_eq!(a["partitions"], serde_json::json!([0, 1, 2]));
    let r = check(
        "deepflow/18-api-versions-v3.pcap",
        &[("ApiVersions", 3, 1, 1)],
        0,
        &["adminclient-1"],
    );
    assert!(
        r.exchanges()[0]["response"]["api_keys"]
            .as_array()
            .unwrap()
            .len()
            > 40
    );
}

#[test]
fn ndpi() {
    let r = check(
        "ndpi/kafka-2024-05.pcapng",
        &[
            ("Produce", 9, 1, 1),
            ("Metadata", 12, 1, 1),
            ("ApiVersions", 3, 1, 1),
            ("InitProducerId", 4, 1, 1),
        ],
        0,
        &["console-producer"],
    );
    assert_eq!(acks(&r), vec![("-1".into(), 1)]);
    // kafka.pcap: librdkafka, and an asymmetric flow holding only responses (orphans).
    let r = check(
        "ndpi/kafka.pcap",
        &[
            ("Produce", 3, 2, 2),
            ("Metadata", 2, 3, 3),
            ("ApiVersions", 0, 2, 2),
        ],
        3,
        &["rdkafka"],
    );
    // Three one-packet connections joined mid-stream hold a request each and no answer: unconfirmed.
    assert_eq!(r.kafka("unconfirmed_requests"), 3);
    assert_eq!(acks(&r), vec![("1".into(), 2)]);
    let offsets: Vec<i64> = r
        .exchanges()
        .into_iter()
        .filter(|e| e["api"] == "Produce")
        .map(|e| {
            e["response"]["topics"][0]["partitions"][0]["base_offset"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(offsets, vec![11222049, 11222050]);
    let orphan_bytes: i64 = r
        .of_type("notice")
        .iter()
        .filter(|n| n["notice"] == "orphan")
        .map(|n| n["bytes"].as_i64().unwrap())
        .sum();
    assert_eq!(orphan_bytes, 590, "SOURCES.md: 590 orphan response bytes");
    // kafka.pcapng is the union of the two.
    let r = check(
        "ndpi/kafka.pcapng",
        &[
            ("Produce", 3, 2, 2),
            ("Produce", 9, 1, 1),
            ("Metadata", 2, 3, 3),
            ("Metadata", 12, 1, 1),
            ("ApiVersions", 0, 2, 2),
            ("ApiVersions", 3, 1, 1),
            ("InitProducerId", 4, 1, 1),
        ],
        3,
        &["console-producer", "rdkafka"],
    );
    assert_eq!(r.kafka("unconfirmed_requests"), 3);
    assert_eq!(acks(&r), vec![("-1".into(), 1), ("1".into(), 2)]);
}

#[test]
fn wireshark_simple_apis() {
    let one = |file: &str, api: &str, v: i64| check(file, &[(api, v, 1, 1)], 0, &["test"]);
    one("wireshark-wiki/api-versions.pcapng", "ApiVersions", 0);
    one("wireshark-wiki/create-topics.pcapng", "CreateTopics", 0);
    one("wireshark-wiki/delete-topics.pcapng", "DeleteTopics", 0);
    one("wireshark-wiki/describe-groups.pcapng", "DescribeGroups", 0);
    one("wireshark-wiki/heartbeat.pcapng", "Heartbeat", 0);
    one("wireshark-wiki/leave-group.pcapng", "LeaveGroup", 0);
    one("wireshark-wiki/list-groups.pcapng", "ListGroups", 0);
    one("wireshark-wiki/request-missing.pcapng", "Heartbeat", 0);
    one("wireshark-wiki/stop-replica.pcapng", "StopReplica", 0);
    one("wireshark-wiki/leader-and-isr.pcapng", "LeaderAndIsr", 0);
    let r = one("wireshark-wiki/sync-group.pcapng", "SyncGroup", 0);
    assert_eq!(r.exchanges()[0]["error_codes"], serde_json::json!([25]));
    check(
        "wireshark-wiki/group-coordinator.pcapng",
        &[("FindCoordinator", 0, 2, 2)],
        0,
        &["test"],
    );
    check(
        "wireshark-wiki/join-group.pcapng",
        &[("JoinGroup", 0, 1, 1), ("JoinGroup", 1, 1, 1)],
        0,
        &["test"],
    );
    check(
        "wireshark-wiki/join-group.v1-2016-11-19.pcapng",
        &[("JoinGroup", 0, 1, 1), ("JoinGroup", 1, 1, 1)],
        0,
        &["test"],
    );
    check(
        "wireshark-wiki/update-metadata.pcapng",
        &[
            ("UpdateMetadata", 0, 1, 1),
            ("UpdateMetadata", 1, 1, 1),
            ("UpdateMetadata", 2, 1, 1),
        ],
        0,
        &["test"],
    );
}

#[test]
fn wireshark_sasl_handshake_is_recognised() {
    let r = check(
        "wireshark-wiki/sasl-handshake.pcapng",
        &[("SaslHandshake", 0, 1, 1)],
        0,
        &["test"],
    );
    let e = &r.exchanges()[0];
    assert_eq!(e["request"]["mechanism"], "unknown_mechanism");
    assert_eq!(e["response"]["mechanisms"], serde_json::json!(["GSSAPI"]));
    // The broker refused (ILLEGAL_SASL_STATE), so no raw tokens follow.
    assert_eq!(e["error_codes"], serde_json::json!([34]));
    assert_eq!(r.kafka("sasl_raw_bytes"), 0);
}

#[test]
fn wireshark_offsets_commits_fetches() {
    let r = check(
        "wireshark-wiki/offsets.pcapng",
        &[("ListOffsets", 0, 2, 2), ("ListOffsets", 1, 2, 2)],
        0,
        &["test"],
    );
    let e = find(&r, "ListOffsets", 0);
    assert_eq!(
        e["request"]["topics"][0]["partitions"][0]["max_num_offsets"],
        100
    );
    let e = find(&r, "ListOffsets", 2);
    assert_eq!(e["response"]["topics"][1]["partitions"][1]["offset"], -1);
    let r = check(
        "wireshark-wiki/offset-commit.pcapng",
        &[
            ("OffsetCommit", 0, 1, 1),
            ("OffsetCommit", 1, 1, 1),
            ("OffsetCommit", 2, 1, 1),
        ],
        0,
        &["test"],
    );
    let v1 = find(&r, "OffsetCommit", 1);
    assert_eq!(v1["request"]["group_id"], "group1");
    assert_eq!(v1["request"]["generation_id_or_member_epoch"], 10);
    assert_eq!(
        v1["request"]["topics"][0]["partitions"][1]["committed_offset"],
        10
    );
    assert_eq!(
        v1["request"]["topics"][0]["partitions"][1]["commit_timestamp"],
        1000
    );
    assert_eq!(
        find(&r, "OffsetCommit", 2)["request"]["retention_time_ms"],
        1000
    );
    check(
        "wireshark-wiki/offset-fetch.pcapng",
        &[("OffsetFetch", 0, 2, 2), ("OffsetFetch", 1, 2, 2)],
        0,
        &["test"],
    );
    let r = check(
        "wireshark-wiki/fetch.pcapng",
        &[
            ("Fetch", 0, 2, 2),
            ("Fetch", 1, 2, 2),
            ("Fetch", 2, 2, 2),
            ("Fetch", 3, 2, 2),
        ],
        0,
        &["test"],
    );
    for e in r.exchanges() {
        let p = &e["response"]["topics"][0]["partitions"][0];
        if e["request"]["topics"][0]["name"] == "topic1" {
            assert_eq!(p["high_watermark"], 7, "HWM of topic1");
            let batches = p["batches"].as_array().unwrap();
            let magic = if e["api_version"].as_i64().unwrap() < 2 {
                0
            } else {
                1
            };
            assert!(
                batches.iter().all(|b| b["magic"] == magic),
                "message set magic {magic}"
            );
            assert_eq!(batches[0]["base_offset"], 0);
            assert_eq!(batches[1]["base_offset"], 1);
        } else {
            assert_eq!(p["error_code"], 3);
            assert_eq!(p["high_watermark"], -1);
        }
    }
}

#[test]
fn wireshark_produce_legacy_codecs() {
    let r = check(
        "wireshark-wiki/produce.pcapng",
        &[("Produce", 2, 4, 4), ("Metadata", 2, 4, 4)],
        0,
        &["console-producer"],
    );
    assert_eq!(acks(&r), vec![("1".into(), 4)]);
    let codecs: Vec<String> = r
        .exchanges()
        .into_iter()
        .filter(|e| e["api"] == "Produce")
        .map(|e| {
            e["request"]["topics"][0]["partitions"][0]["batches"][0]["compression"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(codecs, vec!["none", "gzip", "snappy", "lz4"]);
    let md = r
        .exchanges()
        .into_iter()
        .find(|e| e["api"] == "Metadata")
        .unwrap();
    assert_eq!(md["response"]["cluster_id"], "gwIFBTE2RWe3_E8_nJZHfQ");
}

#[test]
fn wireshark_fake_servers_give_orphans() {
    // These files come from a fake in-process server whose responses carry the wrong correlation id.
    let r = check(
        "wireshark-wiki/controlled-shutdown.pcapng",
        &[("ControlledShutdown", 1, 1, 0)],
        1,
        &["test"],
    );
    assert_eq!(r.kafka("unanswered"), 1);
    // ControlledShutdown v0 uses request header v0: no client id at all.
    check(
        "wireshark-wiki/controlled-shutdown.v1-2016-11-22.pcapng",
        &[("ControlledShutdown", 0, 1, 0)],
        1,
        &[""],
    );
    let r = check(
        "wireshark-wiki/unsupported-version.pcapng",
        &[
            ("ControlledShutdown", 0, 1, 0),
            ("ControlledShutdown", 1000, 1, 0),
            ("ApiVersions", 0, 1, 0),
            ("Unknown", 0, 1, 0),
        ],
        4,
        &["", "test"],
    );
    assert_eq!(
        r.kafka("unknown_versions"),
        2,
        "key 10000 and ControlledShutdown v1000 reported by header"
    );
    let unknown = r
        .exchanges()
        .into_iter()
        .find(|e| e["api"] == "Unknown")
        .unwrap();
    assert_eq!(unknown["api_key"], 10000);
    check(
        "wireshark-wiki/unsupported-version.v3-2016-12-10.pcapng",
        &[
            ("ControlledShutdown", 0, 1, 0),
            ("ControlledShutdown", 1000, 1, 0),
            ("Unknown", 0, 1, 0),
        ],
        3,
        &["", "test"],
    );
    // Malformed string lengths: requests reported, never a panic.
    // One request has a string length that runs past the body (tshark flags it malformed too).
    let r = check_with(
        "wireshark-wiki/string-type.pcapng",
        &[("DeleteTopics", 0, 3, 0)],
        0,
        &["test"],
        1,
    );
    assert_eq!(r.kafka("unanswered"), 3);
    let bad: Vec<_> = r
        .exchanges()
        .into_iter()
        .filter(|e| e["request_status"].is_string())
        .collect();
    assert_eq!(bad.len(), 1);
    assert!(bad[0]["request_status"]
        .as_str()
        .unwrap()
        .starts_with("decode_error"));
}

#[test]
fn same_file_same_output_byte_for_byte() {
    for f in [
        "ndpi/kafka.pcapng",
        "wireshark-wiki/produce.pcapng",
        "wireshark-wiki/fetch.pcapng",
    ] {
        let a = common::replay_bytes(&public(f), &["--json"]);
        let b = common::replay_bytes(&public(f), &["--json"]);
        assert_eq!(a, b, "{f}");
    }
}

#[test]
fn ports_narrow_the_search() {
    let r = replay(
        &public("deepflow/00-produce-v7-sw8.pcap"),
        &["--ports", "9092"],
    );
    assert_eq!(
        r.exchanges().len(),
        0,
        "traffic on 36333 is outside --ports 9092"
    );
    assert!(r.summary()["packets"]["filtered_by_port"].as_i64().unwrap() > 0);
    let r = replay(
        &public("deepflow/00-produce-v7-sw8.pcap"),
        &["--ports", "36333"],
    );
    assert_eq!(r.exchanges().len(), 1);
}

/// (file, [(client_id, topic, acks, requests)]) of a capture's weak_acks warnings.
type WeakAcksOf<'a> = (&'a str, &'a [(&'a str, &'a str, i64, i64)]);

/// Every public capture raises exactly the alerts its traffic shows: the acks=1 producers, and nothing else.
#[test]
fn public_captures_raise_exactly_their_alerts() {
    // Every file not listed: no alert.
    let weak: &[WeakAcksOf] = &[
        (
            "deepflow/00-produce-v2.pcap",
            &[("console-producer", "topic2", 1, 1)],
        ),
        (
            "deepflow/00-produce-v7-sw8.pcap",
            &[("kafka-python-producer-1", "quickstart-events", 1, 1)],
        ),
        (
            "deepflow/00-produce-v9.pcap",
            &[("console-producer", "zqy-test", 1, 1)],
        ),
        // deepflow/produce-v9-old-2024.pcap: its one acks=1 Produce was joined mid-stream and never
        // answered, so it is not confirmed and raises nothing.
        ("ndpi/kafka.pcap", &[("rdkafka", "LB_MAIN_LOG_INPUT", 1, 2)]),
        // The console-producer in this file uses acks=-1: no alert for it.
        (
            "ndpi/kafka.pcapng",
            &[("rdkafka", "LB_MAIN_LOG_INPUT", 1, 2)],
        ),
        (
            "wireshark-wiki/produce.pcapng",
            &[("console-producer", "topic2", 1, 4)],
        ),
    ];
    let root = common::shared().join("pcaps/public");
    let mut files = Vec::new();
    for dir in ["deepflow", "ndpi", "wireshark-wiki"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.ends_with(".pcap") || name.ends_with(".pcapng") {
                files.push(format!("{dir}/{name}"));
            }
        }
    }
    files.sort();
    assert_eq!(files.len(), 42, "every capture of the corpus");
    for f in files {
        let r = replay(&public(&f), &["--no-exchanges"]);
        let alerts: Vec<(String, String, String, String, i64, i64)> = r
            .of_type("alert")
            .iter()
            .map(|a| {
                (
                    a["alert"].as_str().unwrap().to_string(),
                    a["severity"].as_str().unwrap().to_string(),
                    a["client_id"].as_str().unwrap_or_default().to_string(),
                    a["topic"].as_str().unwrap_or_default().to_string(),
                    a["acks"].as_i64().unwrap_or(99),
                    a["requests"].as_i64().unwrap_or(-1),
                )
            })
            .collect();
        let want: Vec<(String, String, String, String, i64, i64)> = weak
            .iter()
            .find(|(name, _)| *name == f)
            .map(|(_, w)| {
                w.iter()
                    .map(|(c, t, acks, n)| {
                        (
                            "weak_acks".into(),
                            "warning".into(),
                            c.to_string(),
                            t.to_string(),
                            *acks,
                            *n,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(alerts, want, "{f}");
    }
}

/// deepflow shipped its own expected parse of these captures (`oracle/*.result`, KafkaInfo dumps): every
/// request and response it lists must be ours too — correlation id, API, version, client id, sizes, status
/// code, topic and group where it names them.
#[test]
fn deepflow_oracle_agrees() {
    let dir = common::shared().join("pcaps/public/deepflow");
    let field = |line: &str, name: &str| -> Option<String> {
        let at = line.find(&format!(" {name}: "))? + name.len() + 3;
        let rest = &line[at..];
        let v = if let Some(r) = rest.strip_prefix('"') {
            r[..r.find('"')?].to_string()
        } else {
            rest[..rest.find([',', ' '])?].to_string()
        };
        Some(
            v.trim_start_matches("Some(")
                .trim_end_matches(')')
                .to_string(),
        )
    };
    let mut checked = 0;
    let mut files: Vec<_> = std::fs::read_dir(dir.join("oracle"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for oracle in files {
        let stem = oracle.file_stem().unwrap().to_string_lossy().to_string();
        let run = replay(&dir.join(format!("{stem}.pcap")), &[]);
        let text = std::fs::read_to_string(&oracle).unwrap();
        for line in text.lines().filter(|l| l.starts_with("KafkaInfo")) {
            let corr: i64 = field(line, "correlation_id").unwrap().parse().unwrap();
            let x = run
                .exchanges()
                .into_iter()
                .find(|e| e["correlation_id"] == corr)
                .unwrap_or_else(|| panic!("{stem}: no exchange for correlation id {corr}"));
            assert_eq!(
                x["api"].as_str(),
                field(line, "api_key").as_deref(),
                "{stem}: api"
            );
            assert_eq!(
                x["api_version"].to_string(),
                field(line, "api_version").unwrap(),
                "{stem}: version"
            );
            if line.contains("msg_type: Request") {
                assert_eq!(
                    x["client_id"].as_str(),
                    field(line, "client_id").as_deref(),
                    "{stem}: client id"
                );
                let size: i64 = field(line, "req_msg_size").unwrap().parse().unwrap();
                assert_eq!(
                    x["request_bytes"],
                    size + 4,
                    "{stem}: request size (theirs excludes the length prefix)"
                );
                if let Some(g) = field(line, "group_id").filter(|g| !g.is_empty()) {
                    assert_eq!(
                        x["request"]["group_id"].as_str(),
                        Some(g.as_str()),
                        "{stem}: group"
                    );
                }
            } else {
                let size: i64 = field(line, "resp_msg_size").unwrap().parse().unwrap();
                assert_eq!(x["response_bytes"], size + 4, "{stem}: response size");
                // Their verdict is `status` (Ok / ServerError / ClientError); `status_code` is only meaningful
                // with an error (with Ok it is sometimes a stray value, e.g. -2 on flexible Heartbeat v4).
                let status: i64 = field(line, "status_code").unwrap().parse().unwrap();
                let codes: Vec<i64> = x["error_codes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_i64().unwrap())
                    .collect();
                if line.contains("status: Ok") {
                    assert!(codes.is_empty(), "{stem}: status Ok but {codes:?}");
                } else {
                    assert!(
                        codes.contains(&status),
                        "{stem}: status {status} not in {codes:?}"
                    );
                }
            }
            if let Some(t) = field(line, "topic_name").filter(|t| !t.is_empty()) {
                assert!(
                    serde_json::to_string(x)
                        .unwrap()
                        .contains(&format!("\"{t}\"")),
                    "{stem}: topic {t}"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 24, "every KafkaInfo line of the 10 oracle files");
}
