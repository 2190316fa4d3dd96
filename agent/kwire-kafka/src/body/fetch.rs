//! Fetch (api key 1), versions 0-18, request and response, decoded by hand: the hot path (responses carry
//! the records), so one pass, no kafka-protocol message types (the crate also starts at v4), record bytes
//! skipped by length, only batch headers read.
//!
//! Easy to get wrong:
//! - request: max_bytes from v3, isolation_level v4, log_start_offset v5, sessions + forgotten topics v7,
//!   current_leader_epoch v9, rack_id v11, flexible + last_fetched_epoch v12, topic ids v13, replica_id
//!   moves from a field (v0-14) to the replica_state tagged field (tag 1, v15+);
//! - response: throttle_time_ms from v1 (first field), last_stable_offset + aborted_transactions v4,
//!   log_start_offset v5, top-level error_code + session_id v7, preferred_read_replica v11; tagged per
//!   partition: 0 diverging_epoch, 1 current_leader, 2 snapshot_id; top-level tag 0 node_endpoints (v16+);
//! - the record set may end with a partial batch (brokers cut at max_bytes): normal, marked truncated;
//! - an incremental fetch session (v7+) response lists only partitions that changed: an absent partition
//!   does not mean "no data".

use super::common::*;
use crate::records::{scan_record_set, Batches};
use crate::wire::{Reader, TopicName, Uuid, WireResult};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FetchRequest {
    /// The replica_id field (v0-14) or replica_state.replica_id (v15+); -1 for consumers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica_id: Option<i32>,
    pub max_wait_ms: i32,
    pub min_bytes: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isolation_level: Option<i8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_epoch: Option<i32>,
    pub topics: Vec<FetchTopic>,
    /// Number of forgotten topic-partitions (v7+).
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub forgotten_topics: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rack_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FetchTopic {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<TopicName>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<Uuid>,
    pub partitions: Vec<FetchPartition>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FetchPartition {
    pub partition: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_leader_epoch: Option<i32>,
    pub fetch_offset: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_fetched_epoch: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_start_offset: Option<i64>,
    pub partition_max_bytes: i32,
}

fn topic_ref(
    r: &mut Reader<'_>,
    v: i16,
    flex: bool,
) -> WireResult<(Option<TopicName>, Option<Uuid>)> {
    Ok(if v >= 13 {
        (None, r.uuid()?)
    } else {
        (Some(r.name(flex)?), None)
    })
}

pub(crate) fn decode_request(r: &mut Reader<'_>, v: i16) -> WireResult<FetchRequest> {
    let flex = v >= 12;
    let mut replica_id = if v <= 14 { Some(r.i32()?) } else { None };
    let max_wait_ms = r.i32()?;
    let min_bytes = r.i32()?;
    let max_bytes = if v >= 3 { Some(r.i32()?) } else { None };
    let isolation_level = if v >= 4 { Some(r.i8()?) } else { None };
    let (session_id, session_epoch) = if v >= 7 {
        (Some(r.i32()?), Some(r.i32()?))
    } else {
        (None, None)
    };
    let topics = read_vec(r, flex, |r| {
        let (name, topic_id) = topic_ref(r, v, flex)?;
        let partitions = read_vec(r, flex, |r| {
            let partition = r.i32()?;
            let current_leader_epoch = if v >= 9 { Some(r.i32()?) } else { None };
            let fetch_offset = r.i64()?;
            let last_fetched_epoch = if v >= 12 { Some(r.i32()?) } else { None };
            let log_start_offset = if v >= 5 { Some(r.i64()?) } else { None };
            let partition_max_bytes = r.i32()?;
            r.skip_tagged(flex)?; // 0 replica_directory_id (v17), 1 high_watermark (v18)
            Ok(FetchPartition {
                partition,
                current_leader_epoch,
                fetch_offset,
                last_fetched_epoch,
                log_start_offset,
                partition_max_bytes,
            })
        })?;
        r.skip_tagged(flex)?;
        Ok(FetchTopic {
            name,
            topic_id,
            partitions,
        })
    })?;
    let mut forgotten_topics = 0u32;
    if v >= 7 {
        let n = r.array_len(flex)?;
        for _ in 0..n {
            topic_ref(r, v, flex)?;
            let parts = r.array_len(flex)?;
            r.skip(
                parts
                    .checked_mul(4)
                    .ok_or_else(|| r.malformed("partition count"))?,
            )?;
            r.skip_tagged(flex)?;
            forgotten_topics =
                forgotten_topics.saturating_add(u32::try_from(parts).unwrap_or(u32::MAX));
        }
    }
    let rack_id = if v >= 11 { r.opt_string(flex)? } else { None };
    let mut cluster_id = None;
    r.tagged_fields(flex, |tag, t| {
        match tag {
            0 => cluster_id = t.opt_string(true)?,
            1 if v >= 15 => {
                replica_id = Some(t.i32()?); // replica_state.replica_id (then replica_epoch i64)
            }
            _ => {}
        }
        Ok(())
    })?;
    if v >= 15 && replica_id.is_none() {
        replica_id = Some(-1); // replica_state absent: a consumer
    }
    Ok(FetchRequest {
        replica_id,
        max_wait_ms,
        min_bytes,
        max_bytes,
        isolation_level,
        session_id,
        session_epoch,
        topics,
        forgotten_topics,
        rack_id,
        cluster_id,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FetchResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_time_ms: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<i32>,
    pub topics: Vec<FetchTopicResponse>,
    #[serde(skip_serializing_if = "is_empty")]
    pub node_endpoints: Vec<NodeEndpoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FetchTopicResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<TopicName>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<Uuid>,
    pub partitions: Vec<FetchPartitionResponse>,
}

/// KIP-320 diverging epoch (tag 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EpochEndOffset {
    pub epoch: i32,
    pub end_offset: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FetchPartitionResponse {
    pub partition: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_stable_offset: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_start_offset: Option<i64>,
    /// Number of aborted transactions listed (v4+; None when null or absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aborted_transactions: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_read_replica: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diverging_epoch: Option<EpochEndOffset>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_leader: Option<LeaderAndEpoch>,
    pub record_bytes: usize,
    pub batches: Batches,
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub batches_omitted: u32,
    #[serde(skip_serializing_if = "is_false")]
    pub records_malformed: bool,
}

pub(crate) fn decode_response(r: &mut Reader<'_>, v: i16) -> WireResult<FetchResponse> {
    let flex = v >= 12;
    let throttle_time_ms = if v >= 1 { Some(r.i32()?) } else { None };
    let (error_code, session_id) = if v >= 7 {
        (Some(r.i16()?), Some(r.i32()?))
    } else {
        (None, None)
    };
    let topics = read_vec(r, flex, |r| {
        let (name, topic_id) = topic_ref(r, v, flex)?;
        let partitions = read_vec(r, flex, |r| {
            let partition = r.i32()?;
            let error_code = r.i16()?;
            let high_watermark = r.i64()?;
            let last_stable_offset = if v >= 4 { Some(r.i64()?) } else { None };
            let log_start_offset = if v >= 5 { Some(r.i64()?) } else { None };
            let aborted_transactions = if v >= 4 {
                match r.opt_array_len(flex)? {
                    None => None,
                    Some(n) => {
                        for _ in 0..n {
                            r.skip(16)?; // producer_id i64, first_offset i64
                            r.skip_tagged(flex)?;
                        }
                        Some(u32::try_from(n).unwrap_or(u32::MAX))
                    }
                }
            } else {
                None
            };
            let preferred_read_replica = if v >= 11 { Some(r.i32()?) } else { None };
            let records = r.bytes(flex)?.unwrap_or(&[]);
            let s = scan_record_set(records);
            let mut diverging_epoch = None;
            let mut current_leader = None;
            r.tagged_fields(flex, |tag, t| {
                match tag {
                    0 => {
                        let epoch = t.i32()?;
                        let end_offset = t.i64()?;
                        diverging_epoch = Some(EpochEndOffset { epoch, end_offset });
                    }
                    1 => current_leader = Some(LeaderAndEpoch::read(t, true)?),
                    _ => {} // 2 snapshot_id (KRaft internal)
                }
                Ok(())
            })?;
            Ok(FetchPartitionResponse {
                partition,
                error_code,
                high_watermark,
                last_stable_offset,
                log_start_offset,
                aborted_transactions,
                preferred_read_replica,
                diverging_epoch,
                current_leader,
                record_bytes: records.len(),
                batches: s.batches,
                batches_omitted: s.batches_omitted,
                records_malformed: s.malformed,
            })
        })?;
        r.skip_tagged(flex)?;
        Ok(FetchTopicResponse {
            name,
            topic_id,
            partitions,
        })
    })?;
    let mut node_endpoints = Vec::new();
    r.tagged_fields(flex, |tag, t| {
        if tag == 0 && v >= 16 {
            node_endpoints = NodeEndpoint::read_compact_array(t)?;
        }
        Ok(())
    })?;
    Ok(FetchResponse {
        throttle_time_ms,
        error_code,
        session_id,
        topics,
        node_endpoints,
    })
}

impl FetchResponse {
    pub(crate) fn collect_errors(&self, out: &mut Vec<i16>) {
        push_err(out, self.error_code.unwrap_or(0));
        for t in &self.topics {
            for p in &t.partitions {
                push_err(out, p.error_code);
            }
        }
    }
}
