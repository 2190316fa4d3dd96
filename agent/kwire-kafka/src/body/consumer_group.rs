//! ConsumerGroupHeartbeat (68, v0-1): the KIP-848 consumer group protocol. One RPC replaces
//! Join/Sync/Heartbeat; the broker computes assignments and sends them in the response.
//!
//! Easy to get wrong:
//! - always flexible; topics are named by ID in `topic_partitions` and in the assignment;
//! - most request fields are nullable and sent only when they changed (null = "unchanged"), so a null
//!   `subscribed_topic_names` does NOT mean "no subscription";
//! - member_epoch: 0 = join, -1 = leave, -2 = static leave; the response's `assignment` is null when
//!   unchanged (a nullable struct: one i8 marker, negative = null, 1 = present);
//! - v1 adds `subscribed_topic_regex` (KIP-848 server-side regex) and the client generates member_id.

use super::common::*;
use crate::wire::{Reader, WireResult};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsumerGroupHeartbeatRequest {
    pub group_id: String,
    pub member_id: String,
    pub member_epoch: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    /// None = unchanged since the last heartbeat.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscribed_topic_names: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscribed_topic_regex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_assignor: Option<String>,
    /// Partitions the member owns; None = unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_partitions: Option<Vec<TopicPartitionIds>>,
}

fn topic_partitions(r: &mut Reader<'_>) -> WireResult<Option<Vec<TopicPartitionIds>>> {
    read_opt_vec(r, true, |r| {
        let topic_id = r.uuid()?;
        let partitions = r.i32_array(true, MAX_IDS)?;
        r.skip_tagged(true)?;
        Ok(TopicPartitionIds {
            name: None,
            topic_id,
            partitions,
        })
    })
}

pub(crate) fn decode_request(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<ConsumerGroupHeartbeatRequest> {
    let group_id = r.string(true)?;
    let member_id = r.string(true)?;
    let member_epoch = r.i32()?;
    let instance_id = r.opt_string(true)?;
    let rack_id = r.opt_string(true)?;
    let rebalance_timeout_ms = r.i32()?;
    let subscribed_topic_names = match r.opt_array_len(true)? {
        None => None,
        Some(n) => {
            let mut v = Vec::with_capacity(n.min(64));
            for _ in 0..n {
                v.push(r.string(true)?);
            }
            Some(v)
        }
    };
    let subscribed_topic_regex = if v >= 1 { r.opt_string(true)? } else { None };
    let server_assignor = r.opt_string(true)?;
    let topic_partitions = topic_partitions(r)?;
    r.skip_tagged(true)?;
    Ok(ConsumerGroupHeartbeatRequest {
        group_id,
        member_id,
        member_epoch,
        instance_id,
        rack_id,
        rebalance_timeout_ms,
        subscribed_topic_names,
        subscribed_topic_regex,
        server_assignor,
        topic_partitions,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsumerGroupHeartbeatResponse {
    pub throttle_time_ms: Option<i32>,
    pub error_code: i16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// The member's target assignment; None = unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignment: Option<CghAssignment>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CghAssignment {
    pub topic_partitions: Vec<TopicPartitionIds>,
}

pub(crate) fn decode_response(
    r: &mut Reader<'_>,
    _v: i16,
) -> WireResult<ConsumerGroupHeartbeatResponse> {
    let throttle_time_ms = Some(r.i32()?);
    let error_code = r.i16()?;
    let error_message = r.opt_string(true)?;
    let member_id = r.opt_string(true)?;
    let member_epoch = r.i32()?;
    let heartbeat_interval_ms = r.i32()?;
    // Nullable struct: a negative marker byte is null (as Kafka's generated readers do).
    let assignment = if r.i8()? < 0 {
        None
    } else {
        let tps = topic_partitions(r)?.unwrap_or_default();
        r.skip_tagged(true)?;
        Some(CghAssignment {
            topic_partitions: tps,
        })
    };
    r.skip_tagged(true)?;
    Ok(ConsumerGroupHeartbeatResponse {
        throttle_time_ms,
        error_code,
        error_message,
        member_id,
        member_epoch,
        heartbeat_interval_ms,
        assignment,
    })
}
