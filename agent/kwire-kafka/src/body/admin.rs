//! Group and topic administration: DescribeGroups (15, v0-6), ListGroups (16, v0-5), CreateTopics (19,
//! v0-7), DeleteTopics (20, v0-6): names and error codes, plus group members' assignments when the group
//! is a "consumer" group. Hand-decoded (see `body/mod.rs`; the crate lacks CreateTopics v0-1, DeleteTopics v0).
//!
//! Easy to get wrong:
//! - DescribeGroups flexible from v5, group_instance_id v4+, authorized_operations v3+, error_message v6+;
//!   member metadata/assignment are opaque unless protocol_type is "consumer";
//! - ListGroups v0-2 requests are EMPTY; states_filter v4+, types_filter v5+;
//! - CreateTopics: validate_only v1+, throttle first from v2, error_message v1+, topic configs in the
//!   response v5+ (with a tagged topic_config_error_code), topic_id v7+;
//! - DeleteTopics: v0-5 send topic names, v6+ topics[{name?, topic_id}]; throttle v1+, error_message v5+.

use super::common::*;
use crate::assignment::{decode_assignment, decode_subscription, Assignment, Subscription};
use crate::wire::{Reader, Uuid, WireResult};
use serde::Serialize;

// ---------------------------------------------------------------- DescribeGroups

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DescribeGroupsRequest {
    pub groups: Vec<String>,
}

pub(crate) fn decode_describe_groups_request(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<DescribeGroupsRequest> {
    let flex = v >= 5;
    let groups = r.string_array(flex, MAX_IDS)?;
    if v >= 3 {
        r.bool()?; // include_authorized_operations
    }
    r.skip_tagged(flex)?;
    Ok(DescribeGroupsRequest { groups })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DescribeGroupsResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_time_ms: Option<i32>,
    pub groups: Vec<DescribedGroup>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DescribedGroup {
    pub error_code: i16,
    pub group_id: String,
    pub group_state: String,
    pub protocol_type: String,
    /// The assignor in use.
    pub protocol_data: String,
    pub members: Vec<DescribedGroupMember>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DescribedGroupMember {
    pub member_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription: Option<Subscription>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignment: Option<Assignment>,
}

pub(crate) fn decode_describe_groups_response(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<DescribeGroupsResponse> {
    let flex = v >= 5;
    let throttle_time_ms = if v >= 1 { Some(r.i32()?) } else { None };
    let groups = read_vec(r, flex, |r| {
        let error_code = r.i16()?;
        if v >= 6 {
            r.skip_string(flex)?; // error_message
        }
        let group_id = r.string(flex)?;
        let group_state = r.string(flex)?;
        let protocol_type = r.string(flex)?;
        let protocol_data = r.string(flex)?;
        let consumer = protocol_type == "consumer";
        let members = read_vec(r, flex, |r| {
            let member_id = r.string(flex)?;
            let group_instance_id = if v >= 4 { r.opt_string(flex)? } else { None };
            let client_id = r.string(flex)?;
            let client_host = r.string(flex)?;
            let metadata = r.bytes(flex)?.unwrap_or(&[]);
            let assignment = r.bytes(flex)?.unwrap_or(&[]);
            r.skip_tagged(flex)?;
            Ok(DescribedGroupMember {
                member_id,
                group_instance_id,
                client_id,
                client_host,
                subscription: if consumer {
                    decode_subscription(metadata)
                } else {
                    None
                },
                assignment: if consumer {
                    decode_assignment(assignment)
                } else {
                    None
                },
            })
        })?;
        if v >= 3 {
            r.i32()?; // authorized_operations
        }
        r.skip_tagged(flex)?;
        Ok(DescribedGroup {
            error_code,
            group_id,
            group_state,
            protocol_type,
            protocol_data,
            members,
        })
    })?;
    r.skip_tagged(flex)?;
    Ok(DescribeGroupsResponse {
        throttle_time_ms,
        groups,
    })
}

// ---------------------------------------------------------------- ListGroups

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListGroupsRequest {
    #[serde(skip_serializing_if = "is_empty")]
    pub states_filter: Vec<String>,
    #[serde(skip_serializing_if = "is_empty")]
    pub types_filter: Vec<String>,
}

pub(crate) fn decode_list_groups_request(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<ListGroupsRequest> {
    let flex = v >= 3;
    let states_filter = if v >= 4 {
        r.string_array(flex, 64)?
    } else {
        Vec::new()
    };
    let types_filter = if v >= 5 {
        r.string_array(flex, 64)?
    } else {
        Vec::new()
    };
    r.skip_tagged(flex)?;
    Ok(ListGroupsRequest {
        states_filter,
        types_filter,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListGroupsResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_time_ms: Option<i32>,
    pub error_code: i16,
    pub groups: Vec<ListedGroup>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListedGroup {
    pub group_id: String,
    pub protocol_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_type: Option<String>,
}

pub(crate) fn decode_list_groups_response(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<ListGroupsResponse> {
    let flex = v >= 3;
    let throttle_time_ms = if v >= 1 { Some(r.i32()?) } else { None };
    let error_code = r.i16()?;
    let groups = read_vec(r, flex, |r| {
        let group_id = r.string(flex)?;
        let protocol_type = r.string(flex)?;
        let group_state = if v >= 4 { Some(r.string(flex)?) } else { None };
        let group_type = if v >= 5 { Some(r.string(flex)?) } else { None };
        r.skip_tagged(flex)?;
        Ok(ListedGroup {
            group_id,
            protocol_type,
            group_state,
            group_type,
        })
    })?;
    r.skip_tagged(flex)?;
    Ok(ListGroupsResponse {
        throttle_time_ms,
        error_code,
        groups,
    })
}

// ---------------------------------------------------------------- CreateTopics

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreateTopicsRequest {
    pub topics: Vec<CreatableTopic>,
    pub timeout_ms: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validate_only: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreatableTopic {
    pub name: String,
    /// -1 = broker default (or explicit assignments).
    pub num_partitions: i32,
    pub replication_factor: i16,
    /// Number of explicit partition assignments.
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub assignments: u32,
    /// Number of topic configs given.
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub configs: u32,
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

pub(crate) fn decode_create_topics_request(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<CreateTopicsRequest> {
    let flex = v >= 5;
    let topics = read_vec(r, flex, |r| {
        let name = r.string(flex)?;
        let num_partitions = r.i32()?;
        let replication_factor = r.i16()?;
        let na = r.array_len(flex)?;
        for _ in 0..na {
            r.i32()?; // partition_index
            r.i32_array(flex, 0)?; // broker_ids
            r.skip_tagged(flex)?;
        }
        let nc = r.array_len(flex)?;
        for _ in 0..nc {
            r.skip_string(flex)?; // name
            r.skip_string(flex)?; // value
            r.skip_tagged(flex)?;
        }
        r.skip_tagged(flex)?;
        Ok(CreatableTopic {
            name,
            num_partitions,
            replication_factor,
            assignments: count(na),
            configs: count(nc),
        })
    })?;
    let timeout_ms = r.i32()?;
    let validate_only = if v >= 1 { Some(r.bool()?) } else { None };
    r.skip_tagged(flex)?;
    Ok(CreateTopicsRequest {
        topics,
        timeout_ms,
        validate_only,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreateTopicsResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_time_ms: Option<i32>,
    pub topics: Vec<TopicResult>,
}

/// Per-topic outcome of CreateTopics / DeleteTopics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopicResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<Uuid>,
    pub error_code: i16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_partitions: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication_factor: Option<i16>,
}

pub(crate) fn decode_create_topics_response(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<CreateTopicsResponse> {
    let flex = v >= 5;
    let throttle_time_ms = if v >= 2 { Some(r.i32()?) } else { None };
    let topics = read_vec(r, flex, |r| {
        let name = Some(r.string(flex)?);
        let topic_id = if v >= 7 { r.uuid()? } else { None };
        let error_code = r.i16()?;
        let error_message = if v >= 1 { r.opt_string(flex)? } else { None };
        let (mut num_partitions, mut replication_factor) = (None, None);
        if v >= 5 {
            num_partitions = Some(r.i32()?);
            replication_factor = Some(r.i16()?);
            if let Some(n) = r.opt_array_len(flex)? {
                for _ in 0..n {
                    r.skip_string(flex)?; // name
                    r.skip_string(flex)?; // value
                    r.skip(1 + 1 + 1)?; // read_only, config_source, is_sensitive
                    r.skip_tagged(flex)?;
                }
            }
        }
        r.skip_tagged(flex)?; // 0: topic_config_error_code
        Ok(TopicResult {
            name,
            topic_id,
            error_code,
            error_message,
            num_partitions,
            replication_factor,
        })
    })?;
    r.skip_tagged(flex)?;
    Ok(CreateTopicsResponse {
        throttle_time_ms,
        topics,
    })
}

// ---------------------------------------------------------------- DeleteTopics

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeleteTopicsRequest {
    pub topics: Vec<TopicRef>,
    pub timeout_ms: i32,
}

pub(crate) fn decode_delete_topics_request(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<DeleteTopicsRequest> {
    let flex = v >= 4;
    let topics = if v >= 6 {
        read_vec(r, flex, |r| {
            let name = r.opt_string(flex)?;
            let topic_id = r.uuid()?;
            r.skip_tagged(flex)?;
            Ok(TopicRef { name, topic_id })
        })?
    } else {
        read_vec(r, flex, |r| {
            Ok(TopicRef {
                name: Some(r.string(flex)?),
                topic_id: None,
            })
        })?
    };
    let timeout_ms = r.i32()?;
    r.skip_tagged(flex)?;
    Ok(DeleteTopicsRequest { topics, timeout_ms })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeleteTopicsResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_time_ms: Option<i32>,
    pub topics: Vec<TopicResult>,
}

pub(crate) fn decode_delete_topics_response(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<DeleteTopicsResponse> {
    let flex = v >= 4;
    let throttle_time_ms = if v >= 1 { Some(r.i32()?) } else { None };
    let topics = read_vec(r, flex, |r| {
        let name = r.opt_string(flex)?;
        let topic_id = if v >= 6 { r.uuid()? } else { None };
        let error_code = r.i16()?;
        let error_message = if v >= 5 { r.opt_string(flex)? } else { None };
        r.skip_tagged(flex)?;
        Ok(TopicResult {
            name,
            topic_id,
            error_code,
            error_message,
            num_partitions: None,
            replication_factor: None,
        })
    })?;
    r.skip_tagged(flex)?;
    Ok(DeleteTopicsResponse {
        throttle_time_ms,
        topics,
    })
}
