//! OffsetForLeaderEpoch (api key 23, versions 0-4) and DeleteRecords (api key 21, versions 0-2), decoded by
//! hand. OffsetForLeaderEpoch is how a consumer (KIP-320) or a follower asks "where does epoch E end on
//! your log?": an end offset below the position the consumer had fetched means the log was truncated under
//! it. DeleteRecords is a deliberate deletion of a partition's records up to an offset (it moves the log
//! start, never the end): it is kept so that a loss can be told from a purge.
//!
//! Easy to get wrong:
//! - OffsetForLeaderEpoch request: replica_id (first field) from v3, current_leader_epoch per partition from
//!   v2, flexible from v4; response: throttle_time_ms first from v2, then per partition error_code BEFORE
//!   partition, leader_epoch from v1, end_offset; an unknown epoch is answered with end_offset -1 (and
//!   leader_epoch -1), which is not a truncation;
//! - followers send replica_id >= 0 (v3+): that is replication, not a client;
//! - DeleteRecords: flexible from v2; the response gives the new low watermark per partition.

use super::common::*;
use crate::wire::{Reader, WireResult};
use serde::Serialize;

// ---------------------------------------------------------------- OffsetForLeaderEpoch

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OffsetForLeaderEpochRequest {
    /// The replica_id field (v3+): -1 for consumers, -2 (debug) or a broker id for followers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica_id: Option<i32>,
    pub topics: Vec<EpochTopic>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpochTopic {
    pub name: String,
    pub partitions: Vec<EpochPartition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EpochPartition {
    pub partition: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_leader_epoch: Option<i32>,
    /// The epoch whose end offset is asked (the epoch of the last record the client fetched).
    pub leader_epoch: i32,
}

pub(crate) fn decode_offset_for_leader_epoch_request(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<OffsetForLeaderEpochRequest> {
    let flex = v >= 4;
    let replica_id = if v >= 3 { Some(r.i32()?) } else { None };
    let topics = read_vec(r, flex, |r| {
        let name = r.string(flex)?;
        let partitions = read_vec(r, flex, |r| {
            let partition = r.i32()?;
            let current_leader_epoch = if v >= 2 { Some(r.i32()?) } else { None };
            let leader_epoch = r.i32()?;
            r.skip_tagged(flex)?;
            Ok(EpochPartition {
                partition,
                current_leader_epoch,
                leader_epoch,
            })
        })?;
        r.skip_tagged(flex)?;
        Ok(EpochTopic { name, partitions })
    })?;
    r.skip_tagged(flex)?;
    Ok(OffsetForLeaderEpochRequest { replica_id, topics })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OffsetForLeaderEpochResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_time_ms: Option<i32>,
    pub topics: Vec<EpochTopicResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpochTopicResult {
    pub name: String,
    pub partitions: Vec<EpochPartitionResult>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EpochPartitionResult {
    pub error_code: i16,
    pub partition: i32,
    /// The largest epoch not above the one asked (v1+; -1 when unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader_epoch: Option<i32>,
    /// Where that epoch ends on the leader's log (-1 when unknown).
    pub end_offset: i64,
}

pub(crate) fn decode_offset_for_leader_epoch_response(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<OffsetForLeaderEpochResponse> {
    let flex = v >= 4;
    let throttle_time_ms = if v >= 2 { Some(r.i32()?) } else { None };
    let topics = read_vec(r, flex, |r| {
        let name = r.string(flex)?;
        let partitions = read_vec(r, flex, |r| {
            let error_code = r.i16()?;
            let partition = r.i32()?;
            let leader_epoch = if v >= 1 { Some(r.i32()?) } else { None };
            let end_offset = r.i64()?;
            r.skip_tagged(flex)?;
            Ok(EpochPartitionResult {
                error_code,
                partition,
                leader_epoch,
                end_offset,
            })
        })?;
        r.skip_tagged(flex)?;
        Ok(EpochTopicResult { name, partitions })
    })?;
    r.skip_tagged(flex)?;
    Ok(OffsetForLeaderEpochResponse {
        throttle_time_ms,
        topics,
    })
}

impl OffsetForLeaderEpochResponse {
    pub(crate) fn collect_errors(&self, out: &mut Vec<i16>) {
        for t in &self.topics {
            for p in &t.partitions {
                push_err(out, p.error_code);
            }
        }
    }
}

// ---------------------------------------------------------------- DeleteRecords

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeleteRecordsRequest {
    pub topics: Vec<DeleteRecordsTopic>,
    pub timeout_ms: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeleteRecordsTopic {
    pub name: String,
    pub partitions: Vec<DeleteRecordsPartition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DeleteRecordsPartition {
    pub partition: i32,
    /// Records before this offset are deleted (-1: up to the high watermark).
    pub offset: i64,
}

pub(crate) fn decode_delete_records_request(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<DeleteRecordsRequest> {
    let flex = v >= 2;
    let topics = read_vec(r, flex, |r| {
        let name = r.string(flex)?;
        let partitions = read_vec(r, flex, |r| {
            let partition = r.i32()?;
            let offset = r.i64()?;
            r.skip_tagged(flex)?;
            Ok(DeleteRecordsPartition { partition, offset })
        })?;
        r.skip_tagged(flex)?;
        Ok(DeleteRecordsTopic { name, partitions })
    })?;
    let timeout_ms = r.i32()?;
    r.skip_tagged(flex)?;
    Ok(DeleteRecordsRequest { topics, timeout_ms })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeleteRecordsResponse {
    pub throttle_time_ms: Option<i32>,
    pub topics: Vec<DeleteRecordsTopicResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeleteRecordsTopicResult {
    pub name: String,
    pub partitions: Vec<DeleteRecordsPartitionResult>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DeleteRecordsPartitionResult {
    pub partition: i32,
    pub low_watermark: i64,
    pub error_code: i16,
}

pub(crate) fn decode_delete_records_response(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<DeleteRecordsResponse> {
    let flex = v >= 2;
    let throttle_time_ms = Some(r.i32()?);
    let topics = read_vec(r, flex, |r| {
        let name = r.string(flex)?;
        let partitions = read_vec(r, flex, |r| {
            let partition = r.i32()?;
            let low_watermark = r.i64()?;
            let error_code = r.i16()?;
            r.skip_tagged(flex)?;
            Ok(DeleteRecordsPartitionResult {
                partition,
                low_watermark,
                error_code,
            })
        })?;
        r.skip_tagged(flex)?;
        Ok(DeleteRecordsTopicResult { name, partitions })
    })?;
    r.skip_tagged(flex)?;
    Ok(DeleteRecordsResponse {
        throttle_time_ms,
        topics,
    })
}

impl DeleteRecordsResponse {
    pub(crate) fn collect_errors(&self, out: &mut Vec<i16>) {
        for t in &self.topics {
            for p in &t.partitions {
                push_err(out, p.error_code);
            }
        }
    }
}
