//! Metadata (3, v0-13) and FindCoordinator (10, v0-6): what the cluster tells clients about brokers,
//! leaders, epochs, topic ids and coordinators. Hand-decoded (see `body/mod.rs` for why not the crate).
//!
//! Easy to get wrong:
//! - Metadata request: v0 asks for all topics with an EMPTY list, v1+ with a NULL list (empty = none);
//!   v10+ topics carry an id and a nullable name;
//! - Metadata response: throttle v3+, rack v1+, cluster_id v2+, controller_id v1+, is_internal v1+,
//!   leader_epoch v7+, offline_replicas v5+, authorized operations v8+ (cluster-level only v8-10),
//!   topic ids v10+, top-level error_code v13+;
//! - FindCoordinator: v0-3 one key / one coordinator; v4+ batches keys (`coordinator_keys`) and answers
//!   `coordinators[]` each with its own error code. key_type 0 = group, 1 = transaction, 2 = share.

use super::common::*;
use crate::wire::{Reader, Uuid, WireResult};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetadataRequest {
    /// True when the request asks for every topic.
    pub all_topics: bool,
    pub topics: Vec<TopicRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_auto_topic_creation: Option<bool>,
}

pub(crate) fn decode_metadata_request(r: &mut Reader<'_>, v: i16) -> WireResult<MetadataRequest> {
    let flex = v >= 9;
    let topics = read_opt_vec(r, flex, |r| {
        let topic_id = if v >= 10 { r.uuid()? } else { None };
        let name = if v >= 10 {
            r.opt_string(flex)?
        } else {
            Some(r.string(flex)?)
        };
        r.skip_tagged(flex)?;
        Ok(TopicRef { name, topic_id })
    })?;
    let allow_auto_topic_creation = if v >= 4 { Some(r.bool()?) } else { None };
    if (8..=10).contains(&v) {
        r.bool()?; // include_cluster_authorized_operations
    }
    if v >= 8 {
        r.bool()?; // include_topic_authorized_operations
    }
    r.skip_tagged(flex)?;
    let all_topics = match &topics {
        None => true,
        Some(t) => v == 0 && t.is_empty(),
    };
    Ok(MetadataRequest {
        all_topics,
        topics: topics.unwrap_or_default(),
        allow_auto_topic_creation,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetadataResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_time_ms: Option<i32>,
    pub brokers: Vec<NodeEndpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub controller_id: Option<i32>,
    pub topics: Vec<MetadataTopic>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i16>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetadataTopic {
    pub error_code: i16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_internal: Option<bool>,
    pub partitions: Vec<MetadataPartition>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetadataPartition {
    pub error_code: i16,
    pub partition_index: i32,
    pub leader_id: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader_epoch: Option<i32>,
    pub replica_nodes: Vec<i32>,
    pub isr_nodes: Vec<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offline_replicas: Option<Vec<i32>>,
}

pub(crate) fn decode_metadata_response(r: &mut Reader<'_>, v: i16) -> WireResult<MetadataResponse> {
    let flex = v >= 9;
    let throttle_time_ms = if v >= 3 { Some(r.i32()?) } else { None };
    let brokers = read_vec(r, flex, |r| {
        let node_id = r.i32()?;
        let host = r.string(flex)?;
        let port = r.i32()?;
        let rack = if v >= 1 { r.opt_string(flex)? } else { None };
        r.skip_tagged(flex)?;
        Ok(NodeEndpoint {
            node_id,
            host,
            port,
            rack,
        })
    })?;
    let cluster_id = if v >= 2 { r.opt_string(flex)? } else { None };
    let controller_id = if v >= 1 { Some(r.i32()?) } else { None };
    let topics = read_vec(r, flex, |r| {
        let error_code = r.i16()?;
        let name = r.opt_string(flex)?;
        let topic_id = if v >= 10 { r.uuid()? } else { None };
        let is_internal = if v >= 1 { Some(r.bool()?) } else { None };
        let partitions = read_vec(r, flex, |r| {
            let error_code = r.i16()?;
            let partition_index = r.i32()?;
            let leader_id = r.i32()?;
            let leader_epoch = if v >= 7 { Some(r.i32()?) } else { None };
            let replica_nodes = r.i32_array(flex, MAX_IDS)?;
            let isr_nodes = r.i32_array(flex, MAX_IDS)?;
            let offline_replicas = if v >= 5 {
                Some(r.i32_array(flex, MAX_IDS)?)
            } else {
                None
            };
            r.skip_tagged(flex)?;
            Ok(MetadataPartition {
                error_code,
                partition_index,
                leader_id,
                leader_epoch,
                replica_nodes,
                isr_nodes,
                offline_replicas,
            })
        })?;
        if v >= 8 {
            r.i32()?; // topic_authorized_operations
        }
        r.skip_tagged(flex)?;
        Ok(MetadataTopic {
            error_code,
            name,
            topic_id,
            is_internal,
            partitions,
        })
    })?;
    if (8..=10).contains(&v) {
        r.i32()?; // cluster_authorized_operations
    }
    let error_code = if v >= 13 { Some(r.i16()?) } else { None };
    r.skip_tagged(flex)?;
    Ok(MetadataResponse {
        throttle_time_ms,
        brokers,
        cluster_id,
        controller_id,
        topics,
        error_code,
    })
}

impl MetadataResponse {
    pub(crate) fn collect_errors(&self, out: &mut Vec<i16>) {
        push_err(out, self.error_code.unwrap_or(0));
        for t in &self.topics {
            push_err(out, t.error_code);
            for p in &t.partitions {
                push_err(out, p.error_code);
            }
        }
    }
}

// ---------------------------------------------------------------- FindCoordinator

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FindCoordinatorRequest {
    /// v0-3.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// v1+: 0 group, 1 transaction, 2 share.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_type: Option<i8>,
    /// v4+.
    #[serde(skip_serializing_if = "is_empty")]
    pub coordinator_keys: Vec<String>,
}

pub(crate) fn decode_find_coordinator_request(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<FindCoordinatorRequest> {
    let flex = v >= 3;
    let key = if v <= 3 { Some(r.string(flex)?) } else { None };
    let key_type = if v >= 1 { Some(r.i8()?) } else { None };
    let coordinator_keys = if v >= 4 {
        r.string_array(flex, MAX_IDS)?
    } else {
        Vec::new()
    };
    r.skip_tagged(flex)?;
    Ok(FindCoordinatorRequest {
        key,
        key_type,
        coordinator_keys,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FindCoordinatorResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_time_ms: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    #[serde(skip_serializing_if = "is_empty")]
    pub coordinators: Vec<Coordinator>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Coordinator {
    pub key: String,
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub error_code: i16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

pub(crate) fn decode_find_coordinator_response(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<FindCoordinatorResponse> {
    let flex = v >= 3;
    let mut out = FindCoordinatorResponse {
        throttle_time_ms: None,
        error_code: None,
        error_message: None,
        node_id: None,
        host: None,
        port: None,
        coordinators: Vec::new(),
    };
    if v >= 1 {
        out.throttle_time_ms = Some(r.i32()?);
    }
    if v <= 3 {
        out.error_code = Some(r.i16()?);
        if v >= 1 {
            out.error_message = r.opt_string(flex)?;
        }
        out.node_id = Some(r.i32()?);
        out.host = Some(r.string(flex)?);
        out.port = Some(r.i32()?);
    } else {
        out.coordinators = read_vec(r, flex, |r| {
            let key = r.string(flex)?;
            let node_id = r.i32()?;
            let host = r.string(flex)?;
            let port = r.i32()?;
            let error_code = r.i16()?;
            let error_message = r.opt_string(flex)?;
            r.skip_tagged(flex)?;
            Ok(Coordinator {
                key,
                node_id,
                host,
                port,
                error_code,
                error_message,
            })
        })?;
    }
    r.skip_tagged(flex)?;
    Ok(out)
}

impl FindCoordinatorResponse {
    pub(crate) fn collect_errors(&self, out: &mut Vec<i16>) {
        push_err(out, self.error_code.unwrap_or(0));
        for c in &self.coordinators {
            push_err(out, c.error_code);
        }
    }
}
