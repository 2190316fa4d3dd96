//! Idempotent / transactional producer APIs: InitProducerId (22, v0-6), AddPartitionsToTxn (24, v0-5),
//! AddOffsetsToTxn (25, v0-4), EndTxn (26, v0-5), TxnOffsetCommit (28, v0-5). Hand-decoded (see
//! `body/mod.rs`; the crate also lacks the v6 InitProducerId request).
//!
//! Easy to get wrong:
//! - InitProducerId's transactional_id is null for idempotent-only producers; v3+ carries the current
//!   producer id/epoch (epoch bump, KIP-360); v6 adds 2PC fields (KIP-939);
//! - AddPartitionsToTxn v4+ batches several transactions (brokers verifying, KIP-890) and answers per
//!   transaction; v0-3 is one transaction. The summary always uses `transactions[]` / `results[]`;
//! - TxnOffsetCommit carries generation/member only from v3 (KIP-447), leader epoch from v2;
//!   flexible from v3 (AddPartitionsToTxn, AddOffsetsToTxn, EndTxn too), InitProducerId from v2;
//! - EndTxn v5 responses return the (possibly bumped) producer id / epoch (KIP-890).

use super::common::*;
use super::group::ErrorResponse;
use super::offsets::{topic_partition_errors, OffsetCommitPartition, TopicPartitionErrors};
use crate::wire::{Reader, WireResult};
use serde::Serialize;

// ---------------------------------------------------------------- InitProducerId

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InitProducerIdRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transactional_id: Option<String>,
    pub transaction_timeout_ms: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub producer_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub producer_epoch: Option<i16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_2pc: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_prepared_txn: Option<bool>,
}

pub(crate) fn decode_init_producer_id_request(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<InitProducerIdRequest> {
    let flex = v >= 2;
    let transactional_id = r.opt_string(flex)?;
    let transaction_timeout_ms = r.i32()?;
    let (producer_id, producer_epoch) = if v >= 3 {
        (Some(r.i64()?), Some(r.i16()?))
    } else {
        (None, None)
    };
    let (enable_2pc, keep_prepared_txn) = if v >= 6 {
        (Some(r.bool()?), Some(r.bool()?))
    } else {
        (None, None)
    };
    r.skip_tagged(flex)?;
    Ok(InitProducerIdRequest {
        transactional_id,
        transaction_timeout_ms,
        producer_id,
        producer_epoch,
        enable_2pc,
        keep_prepared_txn,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InitProducerIdResponse {
    pub throttle_time_ms: Option<i32>,
    pub error_code: i16,
    pub producer_id: i64,
    pub producer_epoch: i16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ongoing_txn_producer_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ongoing_txn_producer_epoch: Option<i16>,
}

pub(crate) fn decode_init_producer_id_response(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<InitProducerIdResponse> {
    let flex = v >= 2;
    let throttle_time_ms = Some(r.i32()?);
    let error_code = r.i16()?;
    let producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let (ongoing_txn_producer_id, ongoing_txn_producer_epoch) = if v >= 6 {
        (Some(r.i64()?), Some(r.i16()?))
    } else {
        (None, None)
    };
    r.skip_tagged(flex)?;
    Ok(InitProducerIdResponse {
        throttle_time_ms,
        error_code,
        producer_id,
        producer_epoch,
        ongoing_txn_producer_id,
        ongoing_txn_producer_epoch,
    })
}

// ---------------------------------------------------------------- AddPartitionsToTxn

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AddPartitionsToTxnRequest {
    pub transactions: Vec<TxnPartitions>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TxnPartitions {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_only: Option<bool>,
    pub topics: Vec<TopicPartitionIds>,
}

fn txn_topics(r: &mut Reader<'_>, flex: bool) -> WireResult<Vec<TopicPartitionIds>> {
    read_vec(r, flex, |r| {
        let name = Some(r.string(flex)?);
        let partitions = r.i32_array(flex, MAX_IDS)?;
        r.skip_tagged(flex)?;
        Ok(TopicPartitionIds {
            name,
            topic_id: None,
            partitions,
        })
    })
}

pub(crate) fn decode_add_partitions_request(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<AddPartitionsToTxnRequest> {
    let flex = v >= 3;
    let transactions = if v >= 4 {
        read_vec(r, flex, |r| {
            let transactional_id = r.string(flex)?;
            let producer_id = r.i64()?;
            let producer_epoch = r.i16()?;
            let verify_only = Some(r.bool()?);
            let topics = txn_topics(r, flex)?;
            r.skip_tagged(flex)?;
            Ok(TxnPartitions {
                transactional_id,
                producer_id,
                producer_epoch,
                verify_only,
                topics,
            })
        })?
    } else {
        let transactional_id = r.string(flex)?;
        let producer_id = r.i64()?;
        let producer_epoch = r.i16()?;
        let topics = txn_topics(r, flex)?;
        vec![TxnPartitions {
            transactional_id,
            producer_id,
            producer_epoch,
            verify_only: None,
            topics,
        }]
    };
    r.skip_tagged(flex)?;
    Ok(AddPartitionsToTxnRequest { transactions })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AddPartitionsToTxnResponse {
    pub throttle_time_ms: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i16>,
    pub results: Vec<TxnResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TxnResult {
    /// v4+ (v0-3 answer for the request's one transaction).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transactional_id: Option<String>,
    pub topics: Vec<TopicPartitionErrors>,
}

pub(crate) fn decode_add_partitions_response(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<AddPartitionsToTxnResponse> {
    let flex = v >= 3;
    let throttle_time_ms = Some(r.i32()?);
    let (error_code, results) = if v >= 4 {
        let error_code = Some(r.i16()?);
        let results = read_vec(r, flex, |r| {
            let transactional_id = Some(r.string(flex)?);
            let topics = topic_partition_errors(r, flex, false)?;
            r.skip_tagged(flex)?;
            Ok(TxnResult {
                transactional_id,
                topics,
            })
        })?;
        (error_code, results)
    } else {
        let topics = topic_partition_errors(r, flex, false)?;
        (
            None,
            vec![TxnResult {
                transactional_id: None,
                topics,
            }],
        )
    };
    r.skip_tagged(flex)?;
    Ok(AddPartitionsToTxnResponse {
        throttle_time_ms,
        error_code,
        results,
    })
}

impl AddPartitionsToTxnResponse {
    pub(crate) fn collect_errors(&self, out: &mut Vec<i16>) {
        push_err(out, self.error_code.unwrap_or(0));
        for t in &self.results {
            super::offsets::collect_tpe(&t.topics, out);
        }
    }
}

// ---------------------------------------------------------------- AddOffsetsToTxn / EndTxn

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AddOffsetsToTxnRequest {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub group_id: String,
}

pub(crate) fn decode_add_offsets_request(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<AddOffsetsToTxnRequest> {
    let flex = v >= 3;
    let transactional_id = r.string(flex)?;
    let producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let group_id = r.string(flex)?;
    r.skip_tagged(flex)?;
    Ok(AddOffsetsToTxnRequest {
        transactional_id,
        producer_id,
        producer_epoch,
        group_id,
    })
}

/// `throttle_time_ms, error_code` responses of the transaction APIs (flexible from v3).
pub(crate) fn decode_throttle_error_response(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<ErrorResponse> {
    let flex = v >= 3;
    let throttle_time_ms = Some(r.i32()?);
    let error_code = r.i16()?;
    r.skip_tagged(flex)?;
    Ok(ErrorResponse {
        throttle_time_ms,
        error_code,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndTxnRequest {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// true = commit, false = abort.
    pub committed: bool,
}

pub(crate) fn decode_end_txn_request(r: &mut Reader<'_>, v: i16) -> WireResult<EndTxnRequest> {
    let flex = v >= 3;
    let transactional_id = r.string(flex)?;
    let producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let committed = r.bool()?;
    r.skip_tagged(flex)?;
    Ok(EndTxnRequest {
        transactional_id,
        producer_id,
        producer_epoch,
        committed,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndTxnResponse {
    pub throttle_time_ms: Option<i32>,
    pub error_code: i16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub producer_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub producer_epoch: Option<i16>,
}

pub(crate) fn decode_end_txn_response(r: &mut Reader<'_>, v: i16) -> WireResult<EndTxnResponse> {
    let flex = v >= 3;
    let throttle_time_ms = Some(r.i32()?);
    let error_code = r.i16()?;
    let (producer_id, producer_epoch) = if v >= 5 {
        (Some(r.i64()?), Some(r.i16()?))
    } else {
        (None, None)
    };
    r.skip_tagged(flex)?;
    Ok(EndTxnResponse {
        throttle_time_ms,
        error_code,
        producer_id,
        producer_epoch,
    })
}

// ---------------------------------------------------------------- TxnOffsetCommit

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TxnOffsetCommitRequest {
    pub transactional_id: String,
    pub group_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation_id: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_instance_id: Option<String>,
    pub topics: Vec<TxnOffsetCommitTopic>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TxnOffsetCommitTopic {
    pub name: String,
    pub partitions: Vec<OffsetCommitPartition>,
}

pub(crate) fn decode_txn_offset_commit_request(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<TxnOffsetCommitRequest> {
    let flex = v >= 3;
    let transactional_id = r.string(flex)?;
    let group_id = r.string(flex)?;
    let producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let (generation_id, member_id, group_instance_id) = if v >= 3 {
        (Some(r.i32()?), Some(r.string(flex)?), r.opt_string(flex)?)
    } else {
        (None, None, None)
    };
    let topics = read_vec(r, flex, |r| {
        let name = r.string(flex)?;
        let partitions = read_vec(r, flex, |r| {
            let partition = r.i32()?;
            let committed_offset = r.i64()?;
            let committed_leader_epoch = if v >= 2 { Some(r.i32()?) } else { None };
            let committed_metadata_len = r.str_bytes(flex)?.map(|m| m.len());
            r.skip_tagged(flex)?;
            Ok(OffsetCommitPartition {
                partition,
                committed_offset,
                committed_leader_epoch,
                commit_timestamp: None,
                committed_metadata_len,
            })
        })?;
        r.skip_tagged(flex)?;
        Ok(TxnOffsetCommitTopic { name, partitions })
    })?;
    r.skip_tagged(flex)?;
    Ok(TxnOffsetCommitRequest {
        transactional_id,
        group_id,
        producer_id,
        producer_epoch,
        generation_id,
        member_id,
        group_instance_id,
        topics,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TxnOffsetCommitResponse {
    pub throttle_time_ms: Option<i32>,
    pub topics: Vec<TopicPartitionErrors>,
}

pub(crate) fn decode_txn_offset_commit_response(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<TxnOffsetCommitResponse> {
    let flex = v >= 3;
    let throttle_time_ms = Some(r.i32()?);
    let topics = topic_partition_errors(r, flex, false)?;
    r.skip_tagged(flex)?;
    Ok(TxnOffsetCommitResponse {
        throttle_time_ms,
        topics,
    })
}
