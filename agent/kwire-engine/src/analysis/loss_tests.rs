//! The loss detectors (`acknowledged_then_lost`, `produce_rejected`, `log_truncated`) driven through
//! [`Analyzer::on_exchange`] with decoded exchanges, as the engine calls it: what each exchange of a
//! story makes the analysis say, exact offsets, partitions and client ids, one firing and one quiet case
//! each. The real-traffic versions are the harness fixtures (agent/kwire/tests/alert_scenarios.rs).
//!
//! Easy to get wrong: the analysis reads the request and the response together (the partition's batches
//! from the request, the base offset from the response), and time is the packet time of each.

use kwire_flow::Timestamp;
use kwire_kafka::body::*;
use kwire_kafka::records::BatchInfo;
use kwire_kafka::{Decoded, Exchange, RequestInfo, ResponseInfo};

use crate::analysis::detectors::DetectorConfig;
use crate::analysis::{Analyzer, Finding};
use crate::config::AnalysisLimits;
use crate::testutil::{alert_json, ctx, t};

fn analyzer() -> Analyzer {
    Analyzer::new(DetectorConfig::default(), &AnalysisLimits::default(), false)
}

fn exchange(
    client: &str,
    at: Timestamp,
    req: RequestBody,
    resp: Option<ResponseBody>,
    corr: i32,
) -> Exchange {
    let api_key = match &req {
        RequestBody::Produce(_) => 0,
        RequestBody::Fetch(_) => 1,
        RequestBody::OffsetForLeaderEpoch(_) => 23,
        _ => 3,
    };
    Exchange {
        request_ts: at,
        correlation_id: corr,
        api_key,
        api_version: 12,
        request: RequestInfo {
            client_id: Some(client.into()),
            bytes: 100,
            body: Decoded::Full(req),
            frame: 0,
        },
        response_optional: false,
        response: resp.map(|b| ResponseInfo {
            ts: at.add_nanos(1_000_000),
            bytes: 100,
            body: Decoded::Full(b),
            frame: 0,
        }),
    }
}

/// Runs one exchange; returns the alert lines as JSON.
fn feed(a: &mut Analyzer, x: &Exchange) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    a.on_exchange(&ctx(), x, &mut |f| {
        if let Finding::Alert(al) = f {
            out.push(alert_json(&al));
        }
    });
    out
}

fn batch(base: i64, records: i32, crc: u32) -> BatchInfo {
    let mut b = BatchInfo::empty();
    b.base_offset = base;
    b.last_offset_delta = records - 1;
    b.record_count = records;
    b.magic = 2;
    b.truncated = false;
    b.crc = crc;
    b.first_timestamp = 1_700_000_000_000;
    b
}

fn produce(acks: i16, b: BatchInfo) -> RequestBody {
    RequestBody::Produce(ProduceRequest {
        transactional_id: None,
        acks,
        timeout_ms: 30_000,
        topics: Inline::from_vec(vec![ProduceTopic {
            name: Some("orders".into()),
            topic_id: None,
            partitions: Inline::from_vec(vec![ProducePartition {
                partition: 0,
                record_bytes: 100,
                batches: [b].into_iter().collect(),
                batches_omitted: 0,
                records_malformed: false,
            }]),
        }]),
    })
}

fn produced(error_code: i16, base_offset: i64) -> ResponseBody {
    ResponseBody::Produce(ProduceResponse {
        topics: Inline::from_vec(vec![ProduceTopicResponse {
            name: Some("orders".into()),
            topic_id: None,
            partitions: Inline::from_vec(vec![ProducePartitionResponse {
                partition: 0,
                error_code,
                base_offset,
                log_append_time_ms: None,
                log_start_offset: None,
                record_errors: 0,
                error_message: None,
                current_leader: None,
            }]),
        }]),
        throttle_time_ms: Some(0),
        node_endpoints: Vec::new(),
    })
}

fn fetch(offset: i64) -> RequestBody {
    RequestBody::Fetch(FetchRequest {
        replica_id: Some(-1),
        max_wait_ms: 500,
        min_bytes: 1,
        max_bytes: None,
        isolation_level: Some(0),
        session_id: None,
        session_epoch: None,
        topics: vec![FetchTopic {
            name: Some("orders".into()),
            topic_id: None,
            partitions: vec![FetchPartition {
                partition: 0,
                current_leader_epoch: Some(4),
                fetch_offset: offset,
                last_fetched_epoch: Some(4),
                log_start_offset: None,
                partition_max_bytes: 1 << 20,
            }],
        }],
        forgotten_topics: 0,
        rack_id: None,
        cluster_id: None,
    })
}

fn fetched(
    hwm: i64,
    batches: Vec<BatchInfo>,
    diverging_epoch: Option<EpochEndOffset>,
) -> ResponseBody {
    ResponseBody::Fetch(FetchResponse {
        throttle_time_ms: Some(0),
        error_code: Some(0),
        session_id: Some(0),
        topics: vec![FetchTopicResponse {
            name: Some("orders".into()),
            topic_id: None,
            partitions: vec![FetchPartitionResponse {
                partition: 0,
                error_code: 0,
                high_watermark: hwm,
                last_stable_offset: Some(hwm),
                log_start_offset: Some(0),
                aborted_transactions: None,
                preferred_read_replica: Some(-1),
                diverging_epoch,
                current_leader: None,
                record_bytes: 0,
                batches: batches.into(),
                batches_omitted: 0,
                records_malformed: false,
            }],
        }],
        node_endpoints: Vec::new(),
    })
}

fn epoch_asked(epoch: i32) -> RequestBody {
    RequestBody::OffsetForLeaderEpoch(OffsetForLeaderEpochRequest {
        replica_id: Some(-1),
        topics: vec![EpochTopic {
            name: "orders".into(),
            partitions: vec![EpochPartition {
                partition: 0,
                current_leader_epoch: Some(5),
                leader_epoch: epoch,
            }],
        }],
    })
}

fn epoch_ends(epoch: i32, end_offset: i64) -> ResponseBody {
    ResponseBody::OffsetForLeaderEpoch(OffsetForLeaderEpochResponse {
        throttle_time_ms: Some(0),
        topics: vec![EpochTopicResult {
            name: "orders".into(),
            partitions: vec![EpochPartitionResult {
                error_code: 0,
                partition: 0,
                leader_epoch: Some(epoch),
                end_offset,
            }],
        }],
    })
}

#[test]
fn log_truncated_fires_when_the_epoch_ends_before_what_the_consumer_read() {
    let mut a = analyzer();
    // The consumer is served offsets 0-11.
    let served = feed(
        &mut a,
        &exchange(
            "c",
            t(1),
            fetch(0),
            Some(fetched(12, vec![batch(0, 12, 1)], None)),
            1,
        ),
    );
    assert!(served.is_empty());
    // After a leader change it asks where epoch 4 ends: 12, nothing read is gone (quiet).
    let ok = feed(
        &mut a,
        &exchange("c", t(2), epoch_asked(4), Some(epoch_ends(4, 12)), 2),
    );
    assert!(ok.is_empty(), "{ok:#?}");
    // Later: epoch 4 ends at 9 on the new leader: 9, 10, 11 it read are gone.
    let got = feed(
        &mut a,
        &exchange("c", t(3), epoch_asked(4), Some(epoch_ends(4, 9)), 3),
    );
    assert_eq!(got.len(), 1, "{got:#?}");
    let j = &got[0];
    assert_eq!(j["alert"], "log_truncated");
    assert_eq!(j["severity"], "critical");
    assert_eq!(
        (&j["client_id"], &j["topic"], &j["partition"]),
        (&"c".into(), &"orders".into(), &0.into())
    );
    assert_eq!(
        (
            &j["first_gone_offset"],
            &j["last_gone_offset"],
            &j["gone_records"]
        ),
        (&9.into(), &11.into(), &3.into())
    );
}

#[test]
fn log_truncated_from_a_fetch_diverging_epoch_and_quiet_without_one() {
    let mut a = analyzer();
    assert!(feed(
        &mut a,
        &exchange("c", t(1), fetch(12), Some(fetched(12, vec![], None)), 1)
    )
    .is_empty());
    let d = EpochEndOffset {
        epoch: 4,
        end_offset: 10,
    };
    let got = feed(
        &mut a,
        &exchange("c", t(2), fetch(12), Some(fetched(10, vec![], Some(d))), 2),
    );
    let j = got
        .iter()
        .find(|j| j["alert"] == "log_truncated")
        .expect("log_truncated");
    assert_eq!(j["detected_by"], "fetch_diverging_epoch");
    assert_eq!(
        (
            &j["first_gone_offset"],
            &j["last_gone_offset"],
            &j["gone_records"]
        ),
        (&10.into(), &11.into(), &2.into())
    );
}

#[test]
fn acknowledged_then_lost_on_a_lower_high_watermark_and_quiet_on_a_higher_one() {
    let mut a = analyzer();
    // acks=all producer: 10 records acknowledged at 0-9 by the broker of `ctx()`.
    let p = feed(
        &mut a,
        &exchange(
            "p",
            t(1),
            produce(-1, batch(0, 10, 7)),
            Some(produced(0, 0)),
            1,
        ),
    );
    assert!(p.is_empty());
    // A consumer told high watermark 10 by the same broker (the cluster view knows no leader): quiet.
    assert!(feed(
        &mut a,
        &exchange("c", t(2), fetch(0), Some(fetched(10, vec![], None)), 2)
    )
    .is_empty());
    // Then 6: records 6-9 are gone.
    let got = feed(
        &mut a,
        &exchange("c", t(3), fetch(10), Some(fetched(6, vec![], None)), 3),
    );
    let j = got
        .iter()
        .find(|j| j["alert"] == "acknowledged_then_lost")
        .expect("acknowledged_then_lost");
    assert_eq!(j["severity"], "critical");
    assert_eq!(
        (&j["client_id"], &j["told_by_client_id"]),
        (&"p".into(), &"c".into())
    );
    assert_eq!(
        (
            &j["first_lost_offset"],
            &j["last_lost_offset"],
            &j["lost_records"]
        ),
        (&6.into(), &9.into(), &4.into())
    );
    assert_eq!(j["told_by"], "fetch_hwm");
}

#[test]
fn produce_rejected_at_the_end_and_quiet_when_the_same_batch_is_retried() {
    let mut a = analyzer();
    // kw-retry: NOT_ENOUGH_REPLICAS, then the same batch (same CRC) acknowledged.
    feed(
        &mut a,
        &exchange(
            "kw-retry",
            t(1),
            produce(-1, batch(-1, 2, 11)),
            Some(produced(19, -1)),
            1,
        ),
    );
    feed(
        &mut a,
        &exchange(
            "kw-retry",
            t(2),
            produce(-1, batch(-1, 2, 11)),
            Some(produced(0, 0)),
            2,
        ),
    );
    // kw-big: MESSAGE_TOO_LARGE; a different batch (other CRC, a later first record) is acknowledged
    // later.
    let mut later = batch(-1, 1, 23);
    later.first_timestamp += 5;
    feed(
        &mut a,
        &exchange(
            "kw-big",
            t(3),
            produce(-1, batch(-1, 3, 22)),
            Some(produced(10, -1)),
            3,
        ),
    );
    feed(
        &mut a,
        &exchange("kw-big", t(4), produce(-1, later), Some(produced(0, 2)), 4),
    );
    let mut out = Vec::new();
    a.finish(&mut |f| {
        if let Finding::Alert(al) = f {
            out.push(alert_json(&al));
        }
    });
    assert_eq!(out.len(), 1, "{out:#?}");
    let j = &out[0];
    assert_eq!(
        (&j["alert"], &j["severity"]),
        (&"produce_rejected".into(), &"critical".into())
    );
    assert_eq!(
        (&j["client_id"], &j["topic"], &j["partition"]),
        (&"kw-big".into(), &"orders".into(), &0.into())
    );
    assert_eq!(
        (&j["error"], &j["records"], &j["attempts"]),
        (&"MESSAGE_TOO_LARGE".into(), &3.into(), &1.into())
    );
}
