//! ListOffsets (2, v0-10), OffsetCommit (8, v0-10) and OffsetFetch (9, v0-10): the offset APIs, every
//! version in one decoder each. By hand because the legacy versions (ListOffsets v0, OffsetCommit v0-1,
//! OffsetFetch v0) are not in kafka-protocol 0.18, and the crate pre-allocates from wire counts.
//!
//! Easy to get wrong:
//! - ListOffsets v0 asks for `max_num_offsets` and answers with an array `old_style_offsets`; v1+ answers
//!   one (timestamp, offset). Timestamps -1 = latest, -2 = earliest, -3 = max timestamp, -4 = earliest
//!   local, -5 = latest tiered;
//! - OffsetCommit: v0 has no generation/member; v1 alone has a per-partition commit_timestamp; v2-4 have
//!   retention_time_ms; v6 committed_leader_epoch; v7 group_instance_id; v8 flexible; v10 topic ids.
//!   generation_id_or_member_epoch is a classic generation or a KIP-848 member epoch;
//! - OffsetFetch: v2+ has a top-level error_code and a null topic list = "all topics"; v8+ batches
//!   several groups (`groups[]`). The summary ALWAYS uses `groups[]` (one group for v0-7, whose response
//!   group has no group_id) so the engine has one shape to read;
//! - committed metadata strings are kept as a length only.

use super::common::*;
use crate::wire::{Reader, Uuid, WireResult};
use serde::Serialize;

// ---------------------------------------------------------------- ListOffsets

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListOffsetsRequest {
    pub replica_id: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isolation_level: Option<i8>,
    pub topics: Vec<ListOffsetsTopic>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListOffsetsTopic {
    pub name: String,
    pub partitions: Vec<ListOffsetsPartition>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListOffsetsPartition {
    pub partition: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_leader_epoch: Option<i32>,
    pub timestamp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_num_offsets: Option<i32>,
}

pub(crate) fn decode_list_offsets_request(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<ListOffsetsRequest> {
    let flex = v >= 6;
    let replica_id = r.i32()?;
    let isolation_level = if v >= 2 { Some(r.i8()?) } else { None };
    let topics = read_vec(r, flex, |r| {
        let name = r.string(flex)?;
        let partitions = read_vec(r, flex, |r| {
            let partition = r.i32()?;
            let current_leader_epoch = if v >= 4 { Some(r.i32()?) } else { None };
            let timestamp = r.i64()?;
            let max_num_offsets = if v == 0 { Some(r.i32()?) } else { None };
            r.skip_tagged(flex)?;
            Ok(ListOffsetsPartition {
                partition,
                current_leader_epoch,
                timestamp,
                max_num_offsets,
            })
        })?;
        r.skip_tagged(flex)?;
        Ok(ListOffsetsTopic { name, partitions })
    })?;
    let timeout_ms = if v >= 10 { Some(r.i32()?) } else { None };
    r.skip_tagged(flex)?;
    Ok(ListOffsetsRequest {
        replica_id,
        isolation_level,
        topics,
        timeout_ms,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListOffsetsResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_time_ms: Option<i32>,
    pub topics: Vec<ListOffsetsTopicResponse>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListOffsetsTopicResponse {
    pub name: String,
    pub partitions: Vec<ListOffsetsPartitionResponse>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListOffsetsPartitionResponse {
    pub partition: i32,
    pub error_code: i16,
    /// v0 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_style_offsets: Option<Vec<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader_epoch: Option<i32>,
}

pub(crate) fn decode_list_offsets_response(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<ListOffsetsResponse> {
    let flex = v >= 6;
    let throttle_time_ms = if v >= 2 { Some(r.i32()?) } else { None };
    let topics = read_vec(r, flex, |r| {
        let name = r.string(flex)?;
        let partitions = read_vec(r, flex, |r| {
            let partition = r.i32()?;
            let error_code = r.i16()?;
            let mut p = ListOffsetsPartitionResponse {
                partition,
                error_code,
                old_style_offsets: None,
                timestamp: None,
                offset: None,
                leader_epoch: None,
            };
            if v == 0 {
                let n = r.array_len(false)?;
                let mut offs = Vec::with_capacity(n.min(64));
                for _ in 0..n {
                    let o = r.i64()?;
                    if offs.len() < MAX_IDS {
                        offs.push(o);
                    }
                }
                p.old_style_offsets = Some(offs);
            } else {
                p.timestamp = Some(r.i64()?);
                p.offset = Some(r.i64()?);
                if v >= 4 {
                    p.leader_epoch = Some(r.i32()?);
                }
            }
            r.skip_tagged(flex)?;
            Ok(p)
        })?;
        r.skip_tagged(flex)?;
        Ok(ListOffsetsTopicResponse { name, partitions })
    })?;
    r.skip_tagged(flex)?;
    Ok(ListOffsetsResponse {
        throttle_time_ms,
        topics,
    })
}

impl ListOffsetsResponse {
    pub(crate) fn collect_errors(&self, out: &mut Vec<i16>) {
        for t in &self.topics {
            for p in &t.partitions {
                push_err(out, p.error_code);
            }
        }
    }
}

// ---------------------------------------------------------------- OffsetCommit

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OffsetCommitRequest {
    pub group_id: String,
    /// v1+: generation id (classic group) or member epoch (KIP-848 group).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation_id_or_member_epoch: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_instance_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_time_ms: Option<i64>,
    pub topics: Vec<OffsetCommitTopic>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OffsetCommitTopic {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<Uuid>,
    pub partitions: Vec<OffsetCommitPartition>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OffsetCommitPartition {
    pub partition: i32,
    pub committed_offset: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub committed_leader_epoch: Option<i32>,
    /// v1 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit_timestamp: Option<i64>,
    /// Length of committed_metadata (None when null); the text itself is not kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub committed_metadata_len: Option<usize>,
}

pub(crate) fn decode_offset_commit_request(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<OffsetCommitRequest> {
    let flex = v >= 8;
    let group_id = r.string(flex)?;
    let (generation_id_or_member_epoch, member_id) = if v >= 1 {
        (Some(r.i32()?), Some(r.string(flex)?))
    } else {
        (None, None)
    };
    let group_instance_id = if v >= 7 { r.opt_string(flex)? } else { None };
    let retention_time_ms = if (2..=4).contains(&v) {
        Some(r.i64()?)
    } else {
        None
    };
    let topics = read_vec(r, flex, |r| {
        let (name, topic_id) = if v >= 10 {
            (None, r.uuid()?)
        } else {
            (Some(r.string(flex)?), None)
        };
        let partitions = read_vec(r, flex, |r| {
            let partition = r.i32()?;
            let committed_offset = r.i64()?;
            let committed_leader_epoch = if v >= 6 { Some(r.i32()?) } else { None };
            let commit_timestamp = if v == 1 { Some(r.i64()?) } else { None };
            let committed_metadata_len = r.str_bytes(flex)?.map(|m| m.len());
            r.skip_tagged(flex)?;
            Ok(OffsetCommitPartition {
                partition,
                committed_offset,
                committed_leader_epoch,
                commit_timestamp,
                committed_metadata_len,
            })
        })?;
        r.skip_tagged(flex)?;
        Ok(OffsetCommitTopic {
            name,
            topic_id,
            partitions,
        })
    })?;
    r.skip_tagged(flex)?;
    Ok(OffsetCommitRequest {
        group_id,
        generation_id_or_member_epoch,
        member_id,
        group_instance_id,
        retention_time_ms,
        topics,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OffsetCommitResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_time_ms: Option<i32>,
    pub topics: Vec<TopicPartitionErrors>,
}

/// A topic with per-partition error codes (OffsetCommit, TxnOffsetCommit, AddPartitionsToTxn responses).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopicPartitionErrors {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<Uuid>,
    pub partitions: Vec<PartitionError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PartitionError {
    pub partition: i32,
    pub error_code: i16,
}

/// `[name|topic_id, [partition, error_code, tagged], tagged]`, shared by several responses.
pub(crate) fn topic_partition_errors(
    r: &mut Reader<'_>,
    flex: bool,
    by_id: bool,
) -> WireResult<Vec<TopicPartitionErrors>> {
    read_vec(r, flex, |r| {
        let (name, topic_id) = if by_id {
            (None, r.uuid()?)
        } else {
            (Some(r.string(flex)?), None)
        };
        let partitions = read_vec(r, flex, |r| {
            let partition = r.i32()?;
            let error_code = r.i16()?;
            r.skip_tagged(flex)?;
            Ok(PartitionError {
                partition,
                error_code,
            })
        })?;
        r.skip_tagged(flex)?;
        Ok(TopicPartitionErrors {
            name,
            topic_id,
            partitions,
        })
    })
}

pub(crate) fn collect_tpe(topics: &[TopicPartitionErrors], out: &mut Vec<i16>) {
    for t in topics {
        for p in &t.partitions {
            push_err(out, p.error_code);
        }
    }
}

pub(crate) fn decode_offset_commit_response(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<OffsetCommitResponse> {
    let flex = v >= 8;
    let throttle_time_ms = if v >= 3 { Some(r.i32()?) } else { None };
    let topics = topic_partition_errors(r, flex, v >= 10)?;
    r.skip_tagged(flex)?;
    Ok(OffsetCommitResponse {
        throttle_time_ms,
        topics,
    })
}

// ---------------------------------------------------------------- OffsetFetch

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OffsetFetchRequest {
    /// One group for v0-7; the request's `groups[]` for v8+.
    pub groups: Vec<OffsetFetchRequestGroup>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_stable: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OffsetFetchRequestGroup {
    pub group_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_epoch: Option<i32>,
    /// None = all topics (null list, v2+).
    pub topics: Option<Vec<TopicPartitionIds>>,
}

pub(crate) fn decode_offset_fetch_request(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<OffsetFetchRequest> {
    let flex = v >= 6;
    let topics = |r: &mut Reader<'_>| {
        read_opt_vec(r, flex, |r| {
            let (name, topic_id) = if v >= 10 {
                (None, r.uuid()?)
            } else {
                (Some(r.string(flex)?), None)
            };
            let partitions = r.i32_array(flex, MAX_IDS)?;
            r.skip_tagged(flex)?;
            Ok(TopicPartitionIds {
                name,
                topic_id,
                partitions,
            })
        })
    };
    let groups = if v <= 7 {
        let group_id = r.string(flex)?;
        let topics = topics(r)?;
        vec![OffsetFetchRequestGroup {
            group_id,
            member_id: None,
            member_epoch: None,
            topics,
        }]
    } else {
        read_vec(r, flex, |r| {
            let group_id = r.string(flex)?;
            let (member_id, member_epoch) = if v >= 9 {
                (r.opt_string(flex)?, Some(r.i32()?))
            } else {
                (None, None)
            };
            let topics = topics(r)?;
            r.skip_tagged(flex)?;
            Ok(OffsetFetchRequestGroup {
                group_id,
                member_id,
                member_epoch,
                topics,
            })
        })?
    };
    let require_stable = if v >= 7 { Some(r.bool()?) } else { None };
    r.skip_tagged(flex)?;
    Ok(OffsetFetchRequest {
        groups,
        require_stable,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OffsetFetchResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_time_ms: Option<i32>,
    /// One group (without group_id) for v0-7; the response's `groups[]` for v8+.
    pub groups: Vec<OffsetFetchResponseGroup>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OffsetFetchResponseGroup {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// Group-level error (v2+; 0 before).
    pub error_code: i16,
    pub topics: Vec<OffsetFetchTopic>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OffsetFetchTopic {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<Uuid>,
    pub partitions: Vec<OffsetFetchPartition>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OffsetFetchPartition {
    pub partition: i32,
    /// -1 when the group has no committed offset for the partition.
    pub committed_offset: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub committed_leader_epoch: Option<i32>,
    pub error_code: i16,
}

pub(crate) fn decode_offset_fetch_response(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<OffsetFetchResponse> {
    let flex = v >= 6;
    let throttle_time_ms = if v >= 3 { Some(r.i32()?) } else { None };
    let topics = |r: &mut Reader<'_>| {
        read_vec(r, flex, |r| {
            let (name, topic_id) = if v >= 10 {
                (None, r.uuid()?)
            } else {
                (Some(r.string(flex)?), None)
            };
            let partitions = read_vec(r, flex, |r| {
                let partition = r.i32()?;
                let committed_offset = r.i64()?;
                let committed_leader_epoch = if v >= 5 { Some(r.i32()?) } else { None };
                r.skip_string(flex)?; // metadata
                let error_code = r.i16()?;
                r.skip_tagged(flex)?;
                Ok(OffsetFetchPartition {
                    partition,
                    committed_offset,
                    committed_leader_epoch,
                    error_code,
                })
            })?;
            r.skip_tagged(flex)?;
            Ok(OffsetFetchTopic {
                name,
                topic_id,
                partitions,
            })
        })
    };
    let groups = if v <= 7 {
        let t = topics(r)?;
        let error_code = if v >= 2 { r.i16()? } else { 0 };
        vec![OffsetFetchResponseGroup {
            group_id: None,
            error_code,
            topics: t,
        }]
    } else {
        read_vec(r, flex, |r| {
            let group_id = Some(r.string(flex)?);
            let t = topics(r)?;
            let error_code = r.i16()?;
            r.skip_tagged(flex)?;
            Ok(OffsetFetchResponseGroup {
                group_id,
                error_code,
                topics: t,
            })
        })?
    };
    r.skip_tagged(flex)?;
    Ok(OffsetFetchResponse {
        throttle_time_ms,
        groups,
    })
}

impl OffsetFetchResponse {
    pub(crate) fn collect_errors(&self, out: &mut Vec<i16>) {
        for g in &self.groups {
            push_err(out, g.error_code);
            for t in &g.topics {
                for p in &t.partitions {
                    push_err(out, p.error_code);
                }
            }
        }
    }
}
