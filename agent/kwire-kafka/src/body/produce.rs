//! Produce (api key 0), versions 0-13, request and response, decoded by hand: this is the hot path, so no
//! kafka-protocol message types (they cost ~30% and the crate stops at v3), one pass, record bytes are
//! skipped by length and only batch headers are read (`records.rs`).
//!
//! Easy to get wrong:
//! - v0-2 have no transactional_id; v3+ start with it (nullable);
//! - v9+ is flexible (compact lengths, tagged fields after every struct);
//! - v13 names topics by id (topic_id) instead of name;
//! - response: throttle_time_ms comes AFTER the topics (v1+), log_append_time_ms from v2, log_start_offset
//!   from v5, record_errors / error_message from v8, current_leader (tag 0 per partition) and
//!   node_endpoints (tag 0 top level) from v10;
//! - acks=0 requests normally get no response from Apache Kafka (other brokers do answer).

use super::common::*;
use crate::records::{scan_record_set, Batches};
use crate::wire::{Reader, TopicName, Uuid, WireResult};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProduceRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transactional_id: Option<String>,
    pub acks: i16,
    pub timeout_ms: i32,
    pub topics: Inline<ProduceTopic>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProduceTopic {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<TopicName>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<Uuid>,
    pub partitions: Inline<ProducePartition>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProducePartition {
    pub partition: i32,
    /// Size of the record set (0 when null).
    pub record_bytes: usize,
    pub batches: Batches,
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub batches_omitted: u32,
    #[serde(skip_serializing_if = "is_false")]
    pub records_malformed: bool,
}

pub(crate) fn decode_request(r: &mut Reader<'_>, v: i16) -> WireResult<ProduceRequest> {
    let flex = v >= 9;
    let transactional_id = if v >= 3 { r.opt_string(flex)? } else { None };
    let acks = r.i16()?;
    let timeout_ms = r.i32()?;
    let topics = read_vec(r, flex, |r| {
        let (name, topic_id) = if v >= 13 {
            (None, r.uuid()?)
        } else {
            (Some(r.name(flex)?), None)
        };
        let partitions = read_vec(r, flex, |r| {
            let partition = r.i32()?;
            let records = r.bytes(flex)?.unwrap_or(&[]);
            let s = scan_record_set(records);
            r.skip_tagged(flex)?;
            Ok(ProducePartition {
                partition,
                record_bytes: records.len(),
                batches: s.batches,
                batches_omitted: s.batches_omitted,
                records_malformed: s.malformed,
            })
        })?;
        r.skip_tagged(flex)?;
        Ok(ProduceTopic {
            name,
            topic_id,
            partitions,
        })
    })?;
    r.skip_tagged(flex)?;
    Ok(ProduceRequest {
        transactional_id,
        acks,
        timeout_ms,
        topics,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProduceResponse {
    pub topics: Inline<ProduceTopicResponse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_time_ms: Option<i32>,
    #[serde(skip_serializing_if = "is_empty")]
    pub node_endpoints: Vec<NodeEndpoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProduceTopicResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<TopicName>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<Uuid>,
    pub partitions: Inline<ProducePartitionResponse>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProducePartitionResponse {
    pub partition: i32,
    pub error_code: i16,
    pub base_offset: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_append_time_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_start_offset: Option<i64>,
    /// Number of per-batch record errors (v8+).
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub record_errors: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_leader: Option<LeaderAndEpoch>,
}

pub(crate) fn decode_response(r: &mut Reader<'_>, v: i16) -> WireResult<ProduceResponse> {
    let flex = v >= 9;
    let topics = read_vec(r, flex, |r| {
        let (name, topic_id) = if v >= 13 {
            (None, r.uuid()?)
        } else {
            (Some(r.name(flex)?), None)
        };
        let partitions = read_vec(r, flex, |r| {
            let partition = r.i32()?;
            let error_code = r.i16()?;
            let base_offset = r.i64()?;
            let log_append_time_ms = if v >= 2 { Some(r.i64()?) } else { None };
            let log_start_offset = if v >= 5 { Some(r.i64()?) } else { None };
            let mut record_errors = 0u32;
            let mut error_message = None;
            if v >= 8 {
                let n = r.array_len(flex)?;
                for _ in 0..n {
                    r.i32()?; // batch_index
                    r.skip_string(flex)?; // batch_index_error_message
                    r.skip_tagged(flex)?;
                }
                record_errors = u32::try_from(n).unwrap_or(u32::MAX);
                error_message = r.opt_string(flex)?;
            }
            let mut current_leader = None;
            r.tagged_fields(flex, |tag, t| {
                if tag == 0 && v >= 10 {
                    current_leader = Some(LeaderAndEpoch::read(t, true)?);
                }
                Ok(())
            })?;
            Ok(ProducePartitionResponse {
                partition,
                error_code,
                base_offset,
                log_append_time_ms,
                log_start_offset,
                record_errors,
                error_message,
                current_leader,
            })
        })?;
        r.skip_tagged(flex)?;
        Ok(ProduceTopicResponse {
            name,
            topic_id,
            partitions,
        })
    })?;
    let throttle_time_ms = if v >= 1 { Some(r.i32()?) } else { None };
    let mut node_endpoints = Vec::new();
    r.tagged_fields(flex, |tag, t| {
        if tag == 0 && v >= 10 {
            node_endpoints = NodeEndpoint::read_compact_array(t)?;
        }
        Ok(())
    })?;
    Ok(ProduceResponse {
        topics,
        throttle_time_ms,
        node_endpoints,
    })
}

impl ProduceResponse {
    pub(crate) fn collect_errors(&self, out: &mut Vec<i16>) {
        for t in &self.topics {
            for p in &t.partitions {
                push_err(out, p.error_code);
            }
        }
    }
}
