//! Classic consumer-group protocol: JoinGroup (11, v0-9), Heartbeat (12, v0-4), LeaveGroup (13, v0-5),
//! SyncGroup (14, v0-5), DescribeGroups (15, v0-6), ListGroups (16, v0-5). Hand-decoded (see
//! `body/mod.rs`); subscriptions and assignments inside are decoded by `assignment.rs`.
//!
//! Easy to get wrong:
//! - JoinGroup v0 has no rebalance_timeout_ms (v1+); group_instance_id (static membership) from v5;
//!   the response's protocol_type only from v7 (so before v7 member metadata is decoded only when it
//!   parses exactly as a consumer subscription), skip_assignment v9;
//! - SyncGroup protocol_type/protocol_name only from v5: before that an assignment is decoded only when it
//!   parses exactly as a ConsumerProtocolAssignment; the follower's request has no assignments and an
//!   empty assignment in a response (error, or a member with nothing) is "no assignment";
//! - LeaveGroup v0-2 has one member_id, v3+ a members[] batch (with per-member errors in the response);
//! - ListGroups v0-2 requests have an EMPTY body.

use super::common::*;
use crate::assignment::{
    decode_assignment, decode_assignment_exact, decode_subscription, decode_subscription_exact,
    Assignment, Subscription,
};
use crate::wire::{Reader, WireResult};
use serde::Serialize;

const CONSUMER: &str = "consumer";

/// Decode a subscription when the protocol type says "consumer", or (protocol type unknown) only if the
/// bytes are an exact subscription of a known version.
fn subscription_for(protocol_type: Option<&str>, bytes: &[u8]) -> Option<Subscription> {
    match protocol_type {
        Some(CONSUMER) => decode_subscription(bytes),
        Some(_) => None,
        None => decode_subscription_exact(bytes),
    }
}

fn assignment_for(protocol_type: Option<&str>, bytes: &[u8]) -> Option<Assignment> {
    match protocol_type {
        Some(CONSUMER) => decode_assignment(bytes),
        Some(_) => None,
        None => decode_assignment_exact(bytes),
    }
}

// ---------------------------------------------------------------- JoinGroup

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JoinGroupRequest {
    pub group_id: String,
    pub session_timeout_ms: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebalance_timeout_ms: Option<i32>,
    pub member_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_instance_id: Option<String>,
    pub protocol_type: String,
    pub protocols: Vec<JoinGroupProtocol>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JoinGroupProtocol {
    /// Assignor name (range, roundrobin, cooperative-sticky, ...).
    pub name: String,
    pub metadata_len: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription: Option<Subscription>,
}

pub(crate) fn decode_join_group_request(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<JoinGroupRequest> {
    let flex = v >= 6;
    let group_id = r.string(flex)?;
    let session_timeout_ms = r.i32()?;
    let rebalance_timeout_ms = if v >= 1 { Some(r.i32()?) } else { None };
    let member_id = r.string(flex)?;
    let group_instance_id = if v >= 5 { r.opt_string(flex)? } else { None };
    let protocol_type = r.string(flex)?;
    let pt = protocol_type.clone();
    let protocols = read_vec(r, flex, |r| {
        let name = r.string(flex)?;
        let metadata = r.bytes(flex)?.unwrap_or(&[]);
        r.skip_tagged(flex)?;
        Ok(JoinGroupProtocol {
            name,
            metadata_len: metadata.len(),
            subscription: subscription_for(Some(&pt), metadata),
        })
    })?;
    let reason = if v >= 8 { r.opt_string(flex)? } else { None };
    r.skip_tagged(flex)?;
    Ok(JoinGroupRequest {
        group_id,
        session_timeout_ms,
        rebalance_timeout_ms,
        member_id,
        group_instance_id,
        protocol_type,
        protocols,
        reason,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JoinGroupResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_time_ms: Option<i32>,
    pub error_code: i16,
    pub generation_id: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_name: Option<String>,
    pub leader: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_assignment: Option<bool>,
    pub member_id: String,
    /// Only the leader gets the members (with their subscriptions).
    pub members: Vec<JoinGroupMember>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JoinGroupMember {
    pub member_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_instance_id: Option<String>,
    pub metadata_len: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription: Option<Subscription>,
}

pub(crate) fn decode_join_group_response(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<JoinGroupResponse> {
    let flex = v >= 6;
    let throttle_time_ms = if v >= 2 { Some(r.i32()?) } else { None };
    let error_code = r.i16()?;
    let generation_id = r.i32()?;
    let protocol_type = if v >= 7 { r.opt_string(flex)? } else { None };
    let protocol_name = r.opt_string(flex)?;
    let leader = r.string(flex)?;
    let skip_assignment = if v >= 9 { Some(r.bool()?) } else { None };
    let member_id = r.string(flex)?;
    let pt = protocol_type.clone();
    let members = read_vec(r, flex, |r| {
        let member_id = r.string(flex)?;
        let group_instance_id = if v >= 5 { r.opt_string(flex)? } else { None };
        let metadata = r.bytes(flex)?.unwrap_or(&[]);
        r.skip_tagged(flex)?;
        Ok(JoinGroupMember {
            member_id,
            group_instance_id,
            metadata_len: metadata.len(),
            subscription: subscription_for(pt.as_deref(), metadata),
        })
    })?;
    r.skip_tagged(flex)?;
    Ok(JoinGroupResponse {
        throttle_time_ms,
        error_code,
        generation_id,
        protocol_type,
        protocol_name,
        leader,
        skip_assignment,
        member_id,
        members,
    })
}

// ---------------------------------------------------------------- SyncGroup

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncGroupRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_instance_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_name: Option<String>,
    /// Only the leader sends assignments.
    pub assignments: Vec<SyncGroupAssignment>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncGroupAssignment {
    pub member_id: String,
    pub assignment_len: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignment: Option<Assignment>,
}

pub(crate) fn decode_sync_group_request(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<SyncGroupRequest> {
    let flex = v >= 4;
    let group_id = r.string(flex)?;
    let generation_id = r.i32()?;
    let member_id = r.string(flex)?;
    let group_instance_id = if v >= 3 { r.opt_string(flex)? } else { None };
    let (protocol_type, protocol_name) = if v >= 5 {
        (r.opt_string(flex)?, r.opt_string(flex)?)
    } else {
        (None, None)
    };
    let pt = protocol_type.clone();
    let assignments = read_vec(r, flex, |r| {
        let member_id = r.string(flex)?;
        let bytes = r.bytes(flex)?.unwrap_or(&[]);
        r.skip_tagged(flex)?;
        Ok(SyncGroupAssignment {
            member_id,
            assignment_len: bytes.len(),
            assignment: assignment_for(pt.as_deref(), bytes),
        })
    })?;
    r.skip_tagged(flex)?;
    Ok(SyncGroupRequest {
        group_id,
        generation_id,
        member_id,
        group_instance_id,
        protocol_type,
        protocol_name,
        assignments,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncGroupResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_time_ms: Option<i32>,
    pub error_code: i16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_name: Option<String>,
    pub assignment_len: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignment: Option<Assignment>,
}

pub(crate) fn decode_sync_group_response(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<SyncGroupResponse> {
    let flex = v >= 4;
    let throttle_time_ms = if v >= 1 { Some(r.i32()?) } else { None };
    let error_code = r.i16()?;
    let (protocol_type, protocol_name) = if v >= 5 {
        (r.opt_string(flex)?, r.opt_string(flex)?)
    } else {
        (None, None)
    };
    let bytes = r.bytes(flex)?.unwrap_or(&[]);
    let assignment = assignment_for(protocol_type.as_deref(), bytes);
    r.skip_tagged(flex)?;
    Ok(SyncGroupResponse {
        throttle_time_ms,
        error_code,
        protocol_type,
        protocol_name,
        assignment_len: bytes.len(),
        assignment,
    })
}

// ---------------------------------------------------------------- Heartbeat

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeartbeatRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_instance_id: Option<String>,
}

pub(crate) fn decode_heartbeat_request(r: &mut Reader<'_>, v: i16) -> WireResult<HeartbeatRequest> {
    let flex = v >= 4;
    let group_id = r.string(flex)?;
    let generation_id = r.i32()?;
    let member_id = r.string(flex)?;
    let group_instance_id = if v >= 3 { r.opt_string(flex)? } else { None };
    r.skip_tagged(flex)?;
    Ok(HeartbeatRequest {
        group_id,
        generation_id,
        member_id,
        group_instance_id,
    })
}

/// A response that is only (throttle_time_ms?, error_code): Heartbeat, AddOffsetsToTxn, ...
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_time_ms: Option<i32>,
    pub error_code: i16,
}

pub(crate) fn decode_heartbeat_response(r: &mut Reader<'_>, v: i16) -> WireResult<ErrorResponse> {
    let flex = v >= 4;
    let throttle_time_ms = if v >= 1 { Some(r.i32()?) } else { None };
    let error_code = r.i16()?;
    r.skip_tagged(flex)?;
    Ok(ErrorResponse {
        throttle_time_ms,
        error_code,
    })
}

// ---------------------------------------------------------------- LeaveGroup

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeaveGroupRequest {
    pub group_id: String,
    /// v0-2: the one member leaving; v3+: `members`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
    #[serde(skip_serializing_if = "is_empty")]
    pub members: Vec<LeaveGroupMember>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeaveGroupMember {
    pub member_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_instance_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Responses only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i16>,
}

pub(crate) fn decode_leave_group_request(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<LeaveGroupRequest> {
    let flex = v >= 4;
    let group_id = r.string(flex)?;
    let member_id = if v <= 2 { Some(r.string(flex)?) } else { None };
    let members = if v >= 3 {
        read_vec(r, flex, |r| {
            let member_id = r.string(flex)?;
            let group_instance_id = r.opt_string(flex)?;
            let reason = if v >= 5 { r.opt_string(flex)? } else { None };
            r.skip_tagged(flex)?;
            Ok(LeaveGroupMember {
                member_id,
                group_instance_id,
                reason,
                error_code: None,
            })
        })?
    } else {
        Vec::new()
    };
    r.skip_tagged(flex)?;
    Ok(LeaveGroupRequest {
        group_id,
        member_id,
        members,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeaveGroupResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_time_ms: Option<i32>,
    pub error_code: i16,
    #[serde(skip_serializing_if = "is_empty")]
    pub members: Vec<LeaveGroupMember>,
}

pub(crate) fn decode_leave_group_response(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<LeaveGroupResponse> {
    let flex = v >= 4;
    let throttle_time_ms = if v >= 1 { Some(r.i32()?) } else { None };
    let error_code = r.i16()?;
    let members = if v >= 3 {
        read_vec(r, flex, |r| {
            let member_id = r.string(flex)?;
            let group_instance_id = r.opt_string(flex)?;
            let error_code = Some(r.i16()?);
            r.skip_tagged(flex)?;
            Ok(LeaveGroupMember {
                member_id,
                group_instance_id,
                reason: None,
                error_code,
            })
        })?
    } else {
        Vec::new()
    };
    r.skip_tagged(flex)?;
    Ok(LeaveGroupResponse {
        throttle_time_ms,
        error_code,
        members,
    })
}

impl LeaveGroupResponse {
    pub(crate) fn collect_errors(&self, out: &mut Vec<i16>) {
        push_err(out, self.error_code);
        for m in &self.members {
            push_err(out, m.error_code.unwrap_or(0));
        }
    }
}
