//! Selective decoding of Kafka request and response bodies into compact summaries (one struct per API we
//! care about, `Other` for the rest). Record payloads, SASL tokens and user data are never kept: record
//! sets are walked for batch headers only (`records.rs`), secrets become lengths.
//!
//! Entry points: `decode_request` / `decode_response` (Ok when the structure parsed; trailing bytes are
//! ignored), `decode_request_checked` / `decode_response_checked` (also return how many bytes were
//! consumed, so the caller can count trailing bytes), and `*_strict` (trailing bytes = `Trailing` error).
//!
//! Why every summarised API is decoded by hand (wire.rs) rather than with kafka-protocol 0.18:
//! - Produce and Fetch are the hot path: the crate's full message types cost ~30% (design.md);
//! - the crate dropped the versions older clients still send (Produce v0-2, Fetch v0-3, ListOffsets v0,
//!   OffsetCommit v0-1, OffsetFetch v0, CreateTopics v0-1, DeleteTopics v0) and a few newer ones
//!   (OffsetCommit/OffsetFetch v10 requests, InitProducerId v6 request);
//! - the crate's array decoder does `Vec::with_capacity(count_from_the_wire)`: a garbled or hostile
//!   4-byte count aborts the process on allocation failure. A passive observer fed arbitrary bytes cannot
//!   call it. kafka-protocol stays the reference: tests encode with it and compare with our decoding.
//!
//! Easy to get wrong:
//! - `body` starts AFTER the request/response header (the lead's header.rs handles header tagged fields);
//! - the api version of a response is the version of its request (remembered by correlation id);
//! - versions newer than we know are `UnsupportedVersion` for summarised APIs, but an API we do not
//!   summarise is never an error (`Other`);
//! - JSON is `#[serde(untagged)]`: a body serialises as its fields only; the caller adds `api`.

mod admin;
mod cluster;
mod common;
mod consumer_group;
mod epoch;
mod errors;
mod fetch;
mod group;
mod offsets;
mod other;
mod produce;
mod session;
#[cfg(test)]
mod tests;
mod txn;

pub use admin::*;
pub use cluster::*;
pub use common::{Inline, LeaderAndEpoch, NodeEndpoint, TopicPartitionIds, TopicRef};
pub use consumer_group::*;
pub use epoch::*;
pub use errors::{code as error_code, error_name};
pub use fetch::*;
pub use group::*;
pub use offsets::*;
pub use produce::*;
pub use session::*;
pub use txn::*;

use crate::api::key;
pub use crate::wire::BodyError;
use crate::wire::Reader;
use serde::Serialize;

/// A request we do not summarise: nothing but its existence (the header says which API).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OtherRequest {}

/// A response we do not summarise: the top-level throttle time and error code when the API's layout
/// puts them at a known place (see `other.rs`), else nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OtherResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_time_ms: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i16>,
}

/// A decoded request body.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum RequestBody {
    Produce(ProduceRequest),
    Fetch(FetchRequest),
    ListOffsets(ListOffsetsRequest),
    Metadata(MetadataRequest),
    OffsetCommit(OffsetCommitRequest),
    OffsetFetch(OffsetFetchRequest),
    FindCoordinator(FindCoordinatorRequest),
    JoinGroup(JoinGroupRequest),
    Heartbeat(HeartbeatRequest),
    LeaveGroup(LeaveGroupRequest),
    SyncGroup(SyncGroupRequest),
    SaslHandshake(SaslHandshakeRequest),
    ApiVersions(ApiVersionsRequest),
    SaslAuthenticate(SaslAuthenticateRequest),
    DescribeGroups(DescribeGroupsRequest),
    ListGroups(ListGroupsRequest),
    CreateTopics(CreateTopicsRequest),
    DeleteTopics(DeleteTopicsRequest),
    InitProducerId(InitProducerIdRequest),
    AddPartitionsToTxn(AddPartitionsToTxnRequest),
    AddOffsetsToTxn(AddOffsetsToTxnRequest),
    EndTxn(EndTxnRequest),
    TxnOffsetCommit(TxnOffsetCommitRequest),
    ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest),
    OffsetForLeaderEpoch(OffsetForLeaderEpochRequest),
    DeleteRecords(DeleteRecordsRequest),
    Other(OtherRequest),
}

/// A decoded response body.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ResponseBody {
    Produce(ProduceResponse),
    Fetch(FetchResponse),
    ListOffsets(ListOffsetsResponse),
    Metadata(MetadataResponse),
    OffsetCommit(OffsetCommitResponse),
    OffsetFetch(OffsetFetchResponse),
    FindCoordinator(FindCoordinatorResponse),
    JoinGroup(JoinGroupResponse),
    Heartbeat(ErrorResponse),
    LeaveGroup(LeaveGroupResponse),
    SyncGroup(SyncGroupResponse),
    SaslHandshake(SaslHandshakeResponse),
    ApiVersions(ApiVersionsResponse),
    SaslAuthenticate(SaslAuthenticateResponse),
    DescribeGroups(DescribeGroupsResponse),
    ListGroups(ListGroupsResponse),
    CreateTopics(CreateTopicsResponse),
    DeleteTopics(DeleteTopicsResponse),
    InitProducerId(InitProducerIdResponse),
    AddPartitionsToTxn(AddPartitionsToTxnResponse),
    AddOffsetsToTxn(ErrorResponse),
    EndTxn(EndTxnResponse),
    TxnOffsetCommit(TxnOffsetCommitResponse),
    ConsumerGroupHeartbeat(ConsumerGroupHeartbeatResponse),
    OffsetForLeaderEpoch(OffsetForLeaderEpochResponse),
    DeleteRecords(DeleteRecordsResponse),
    Other(OtherResponse),
}

impl ResponseBody {
    /// All distinct non-zero error codes anywhere in the response, sorted.
    pub fn error_codes(&self) -> Vec<i16> {
        let mut out = Vec::new();
        use common::push_err;
        match self {
            ResponseBody::Produce(x) => x.collect_errors(&mut out),
            ResponseBody::Fetch(x) => x.collect_errors(&mut out),
            ResponseBody::ListOffsets(x) => x.collect_errors(&mut out),
            ResponseBody::Metadata(x) => x.collect_errors(&mut out),
            ResponseBody::OffsetCommit(x) => collect_tpe(&x.topics, &mut out),
            ResponseBody::OffsetFetch(x) => x.collect_errors(&mut out),
            ResponseBody::FindCoordinator(x) => x.collect_errors(&mut out),
            ResponseBody::JoinGroup(x) => push_err(&mut out, x.error_code),
            ResponseBody::Heartbeat(x) => push_err(&mut out, x.error_code),
            ResponseBody::LeaveGroup(x) => x.collect_errors(&mut out),
            ResponseBody::SyncGroup(x) => push_err(&mut out, x.error_code),
            ResponseBody::SaslHandshake(x) => push_err(&mut out, x.error_code),
            ResponseBody::ApiVersions(x) => push_err(&mut out, x.error_code),
            ResponseBody::SaslAuthenticate(x) => push_err(&mut out, x.error_code),
            ResponseBody::DescribeGroups(x) => x
                .groups
                .iter()
                .for_each(|g| push_err(&mut out, g.error_code)),
            ResponseBody::ListGroups(x) => push_err(&mut out, x.error_code),
            ResponseBody::CreateTopics(x) => x
                .topics
                .iter()
                .for_each(|t| push_err(&mut out, t.error_code)),
            ResponseBody::DeleteTopics(x) => x
                .topics
                .iter()
                .for_each(|t| push_err(&mut out, t.error_code)),
            ResponseBody::InitProducerId(x) => push_err(&mut out, x.error_code),
            ResponseBody::AddPartitionsToTxn(x) => x.collect_errors(&mut out),
            ResponseBody::AddOffsetsToTxn(x) => push_err(&mut out, x.error_code),
            ResponseBody::EndTxn(x) => push_err(&mut out, x.error_code),
            ResponseBody::TxnOffsetCommit(x) => collect_tpe(&x.topics, &mut out),
            ResponseBody::ConsumerGroupHeartbeat(x) => push_err(&mut out, x.error_code),
            ResponseBody::OffsetForLeaderEpoch(x) => x.collect_errors(&mut out),
            ResponseBody::DeleteRecords(x) => x.collect_errors(&mut out),
            ResponseBody::Other(x) => push_err(&mut out, x.error_code.unwrap_or(0)),
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The response's throttle time, when its version has one.
    pub fn throttle_time_ms(&self) -> Option<i32> {
        match self {
            ResponseBody::Produce(x) => x.throttle_time_ms,
            ResponseBody::Fetch(x) => x.throttle_time_ms,
            ResponseBody::ListOffsets(x) => x.throttle_time_ms,
            ResponseBody::Metadata(x) => x.throttle_time_ms,
            ResponseBody::OffsetCommit(x) => x.throttle_time_ms,
            ResponseBody::OffsetFetch(x) => x.throttle_time_ms,
            ResponseBody::FindCoordinator(x) => x.throttle_time_ms,
            ResponseBody::JoinGroup(x) => x.throttle_time_ms,
            ResponseBody::Heartbeat(x) => x.throttle_time_ms,
            ResponseBody::LeaveGroup(x) => x.throttle_time_ms,
            ResponseBody::SyncGroup(x) => x.throttle_time_ms,
            ResponseBody::SaslHandshake(_) => None,
            ResponseBody::ApiVersions(x) => x.throttle_time_ms,
            ResponseBody::SaslAuthenticate(_) => None,
            ResponseBody::DescribeGroups(x) => x.throttle_time_ms,
            ResponseBody::ListGroups(x) => x.throttle_time_ms,
            ResponseBody::CreateTopics(x) => x.throttle_time_ms,
            ResponseBody::DeleteTopics(x) => x.throttle_time_ms,
            ResponseBody::InitProducerId(x) => x.throttle_time_ms,
            ResponseBody::AddPartitionsToTxn(x) => x.throttle_time_ms,
            ResponseBody::AddOffsetsToTxn(x) => x.throttle_time_ms,
            ResponseBody::EndTxn(x) => x.throttle_time_ms,
            ResponseBody::TxnOffsetCommit(x) => x.throttle_time_ms,
            ResponseBody::ConsumerGroupHeartbeat(x) => x.throttle_time_ms,
            ResponseBody::OffsetForLeaderEpoch(x) => x.throttle_time_ms,
            ResponseBody::DeleteRecords(x) => x.throttle_time_ms,
            ResponseBody::Other(x) => x.throttle_time_ms,
        }
    }
}

/// Highest version we decode for each summarised API key (the table's `decoded`); `None` = not
/// summarised (decoded as Other).
pub fn summarised_max_version(api_key: i16) -> Option<i16> {
    crate::api::api(api_key).and_then(|a| a.decoded)
}

fn check_version(api_key: i16, v: i16) -> Result<bool, BodyError> {
    match summarised_max_version(api_key) {
        None => Ok(false),
        Some(max) if (0..=max).contains(&v) => Ok(true),
        Some(_) => Err(BodyError::UnsupportedVersion),
    }
}

fn request_inner(api_key: i16, v: i16, r: &mut Reader<'_>) -> Result<RequestBody, BodyError> {
    if !check_version(api_key, v)? {
        return Ok(RequestBody::Other(OtherRequest {}));
    }
    Ok(match api_key {
        key::PRODUCE => RequestBody::Produce(produce::decode_request(r, v)?),
        key::FETCH => RequestBody::Fetch(fetch::decode_request(r, v)?),
        key::LIST_OFFSETS => RequestBody::ListOffsets(offsets::decode_list_offsets_request(r, v)?),
        key::METADATA => RequestBody::Metadata(cluster::decode_metadata_request(r, v)?),
        key::OFFSET_COMMIT => {
            RequestBody::OffsetCommit(offsets::decode_offset_commit_request(r, v)?)
        }
        key::OFFSET_FETCH => RequestBody::OffsetFetch(offsets::decode_offset_fetch_request(r, v)?),
        key::FIND_COORDINATOR => {
            RequestBody::FindCoordinator(cluster::decode_find_coordinator_request(r, v)?)
        }
        key::JOIN_GROUP => RequestBody::JoinGroup(group::decode_join_group_request(r, v)?),
        key::HEARTBEAT => RequestBody::Heartbeat(group::decode_heartbeat_request(r, v)?),
        key::LEAVE_GROUP => RequestBody::LeaveGroup(group::decode_leave_group_request(r, v)?),
        key::SYNC_GROUP => RequestBody::SyncGroup(group::decode_sync_group_request(r, v)?),
        key::SASL_HANDSHAKE => {
            RequestBody::SaslHandshake(session::decode_sasl_handshake_request(r, v)?)
        }
        key::API_VERSIONS => RequestBody::ApiVersions(session::decode_api_versions_request(r, v)?),
        key::SASL_AUTHENTICATE => {
            RequestBody::SaslAuthenticate(session::decode_sasl_authenticate_request(r, v)?)
        }
        key::DESCRIBE_GROUPS => {
            RequestBody::DescribeGroups(admin::decode_describe_groups_request(r, v)?)
        }
        key::LIST_GROUPS => RequestBody::ListGroups(admin::decode_list_groups_request(r, v)?),
        key::CREATE_TOPICS => RequestBody::CreateTopics(admin::decode_create_topics_request(r, v)?),
        key::DELETE_TOPICS => RequestBody::DeleteTopics(admin::decode_delete_topics_request(r, v)?),
        key::INIT_PRODUCER_ID => {
            RequestBody::InitProducerId(txn::decode_init_producer_id_request(r, v)?)
        }
        key::ADD_PARTITIONS_TO_TXN => {
            RequestBody::AddPartitionsToTxn(txn::decode_add_partitions_request(r, v)?)
        }
        key::ADD_OFFSETS_TO_TXN => {
            RequestBody::AddOffsetsToTxn(txn::decode_add_offsets_request(r, v)?)
        }
        key::END_TXN => RequestBody::EndTxn(txn::decode_end_txn_request(r, v)?),
        key::TXN_OFFSET_COMMIT => {
            RequestBody::TxnOffsetCommit(txn::decode_txn_offset_commit_request(r, v)?)
        }
        key::CONSUMER_GROUP_HEARTBEAT => {
            RequestBody::ConsumerGroupHeartbeat(consumer_group::decode_request(r, v)?)
        }
        key::DELETE_RECORDS => {
            RequestBody::DeleteRecords(epoch::decode_delete_records_request(r, v)?)
        }
        key::OFFSET_FOR_LEADER_EPOCH => {
            RequestBody::OffsetForLeaderEpoch(epoch::decode_offset_for_leader_epoch_request(r, v)?)
        }
        _ => RequestBody::Other(OtherRequest {}),
    })
}

fn response_inner(
    api_key: i16,
    v: i16,
    r: &mut Reader<'_>,
    body: &[u8],
) -> Result<ResponseBody, BodyError> {
    if !check_version(api_key, v)? {
        return Ok(ResponseBody::Other(other::decode_other_response(
            api_key, v, body,
        )));
    }
    Ok(match api_key {
        key::PRODUCE => ResponseBody::Produce(produce::decode_response(r, v)?),
        key::FETCH => ResponseBody::Fetch(fetch::decode_response(r, v)?),
        key::LIST_OFFSETS => {
            ResponseBody::ListOffsets(offsets::decode_list_offsets_response(r, v)?)
        }
        key::METADATA => ResponseBody::Metadata(cluster::decode_metadata_response(r, v)?),
        key::OFFSET_COMMIT => {
            ResponseBody::OffsetCommit(offsets::decode_offset_commit_response(r, v)?)
        }
        key::OFFSET_FETCH => {
            ResponseBody::OffsetFetch(offsets::decode_offset_fetch_response(r, v)?)
        }
        key::FIND_COORDINATOR => {
            ResponseBody::FindCoordinator(cluster::decode_find_coordinator_response(r, v)?)
        }
        key::JOIN_GROUP => ResponseBody::JoinGroup(group::decode_join_group_response(r, v)?),
        key::HEARTBEAT => ResponseBody::Heartbeat(group::decode_heartbeat_response(r, v)?),
        key::LEAVE_GROUP => ResponseBody::LeaveGroup(group::decode_leave_group_response(r, v)?),
        key::SYNC_GROUP => ResponseBody::SyncGroup(group::decode_sync_group_response(r, v)?),
        key::SASL_HANDSHAKE => {
            ResponseBody::SaslHandshake(session::decode_sasl_handshake_response(r, v)?)
        }
        key::API_VERSIONS => {
            // A broker answers an ApiVersions version it does not know with UNSUPPORTED_VERSION in
            // a v0 body (KIP-511), which can also parse, wrongly, as the version asked for (a v3
            // reading of it shows an empty list and a throttle time made of the list's bytes):
            // such an answer is read as v0 when v0 reads it whole.
            let mut r0 = r.clone();
            if v > 0 && r.clone().i16() == Ok(error_code::UNSUPPORTED_VERSION) {
                let mut whole = r.clone();
                if let Ok(x) = session::decode_api_versions_response(&mut whole, 0) {
                    if whole.is_empty() {
                        *r = whole;
                        return Ok(ResponseBody::ApiVersions(x));
                    }
                }
            }
            match session::decode_api_versions_response(r, v) {
                Ok(x) => ResponseBody::ApiVersions(x),
                Err(e) if v > 0 => match session::decode_api_versions_response(&mut r0, 0) {
                    Ok(x) if r0.is_empty() => {
                        *r = r0;
                        ResponseBody::ApiVersions(x)
                    }
                    _ => return Err(e),
                },
                Err(e) => return Err(e),
            }
        }
        key::SASL_AUTHENTICATE => {
            ResponseBody::SaslAuthenticate(session::decode_sasl_authenticate_response(r, v)?)
        }
        key::DESCRIBE_GROUPS => {
            ResponseBody::DescribeGroups(admin::decode_describe_groups_response(r, v)?)
        }
        key::LIST_GROUPS => ResponseBody::ListGroups(admin::decode_list_groups_response(r, v)?),
        key::CREATE_TOPICS => {
            ResponseBody::CreateTopics(admin::decode_create_topics_response(r, v)?)
        }
        key::DELETE_TOPICS => {
            ResponseBody::DeleteTopics(admin::decode_delete_topics_response(r, v)?)
        }
        key::INIT_PRODUCER_ID => {
            ResponseBody::InitProducerId(txn::decode_init_producer_id_response(r, v)?)
        }
        key::ADD_PARTITIONS_TO_TXN => {
            ResponseBody::AddPartitionsToTxn(txn::decode_add_partitions_response(r, v)?)
        }
        key::ADD_OFFSETS_TO_TXN => {
            ResponseBody::AddOffsetsToTxn(txn::decode_throttle_error_response(r, v)?)
        }
        key::END_TXN => ResponseBody::EndTxn(txn::decode_end_txn_response(r, v)?),
        key::TXN_OFFSET_COMMIT => {
            ResponseBody::TxnOffsetCommit(txn::decode_txn_offset_commit_response(r, v)?)
        }
        key::CONSUMER_GROUP_HEARTBEAT => {
            ResponseBody::ConsumerGroupHeartbeat(consumer_group::decode_response(r, v)?)
        }
        key::DELETE_RECORDS => {
            ResponseBody::DeleteRecords(epoch::decode_delete_records_response(r, v)?)
        }
        key::OFFSET_FOR_LEADER_EPOCH => ResponseBody::OffsetForLeaderEpoch(
            epoch::decode_offset_for_leader_epoch_response(r, v)?,
        ),
        _ => ResponseBody::Other(OtherResponse::default()),
    })
}

/// Decode a request body (the bytes after the request header). Trailing bytes are ignored.
pub fn decode_request(
    api_key: i16,
    api_version: i16,
    body: &[u8],
) -> Result<RequestBody, BodyError> {
    decode_request_checked(api_key, api_version, body).0
}

/// Decode a response body (the bytes after the response header). Trailing bytes are ignored.
pub fn decode_response(
    api_key: i16,
    api_version: i16,
    body: &[u8],
) -> Result<ResponseBody, BodyError> {
    decode_response_checked(api_key, api_version, body).0
}

/// Like `decode_request`, also returning the bytes consumed (on error: where decoding stopped).
/// `body.len() - consumed` on Ok is the number of trailing bytes. For `Other`, consumed is 0.
pub fn decode_request_checked(
    api_key: i16,
    api_version: i16,
    body: &[u8],
) -> (Result<RequestBody, BodyError>, usize) {
    let mut r = Reader::new(body);
    let res = request_inner(api_key, api_version, &mut r);
    let consumed = match &res {
        Ok(RequestBody::Other(_)) => body.len(),
        _ => r.pos(),
    };
    (res, consumed)
}

/// Like `decode_response`, also returning the bytes consumed (see `decode_request_checked`).
pub fn decode_response_checked(
    api_key: i16,
    api_version: i16,
    body: &[u8],
) -> (Result<ResponseBody, BodyError>, usize) {
    let mut r = Reader::new(body);
    let res = response_inner(api_key, api_version, &mut r, body);
    let consumed = match &res {
        Ok(ResponseBody::Other(_)) => body.len(),
        _ => r.pos(),
    };
    (res, consumed)
}

/// `decode_request`, but bytes left after the structure are a `Trailing` error.
pub fn decode_request_strict(
    api_key: i16,
    api_version: i16,
    body: &[u8],
) -> Result<RequestBody, BodyError> {
    let (res, consumed) = decode_request_checked(api_key, api_version, body);
    let decoded = res?;
    match body.len().saturating_sub(consumed) {
        0 => Ok(decoded),
        bytes => Err(BodyError::Trailing { bytes }),
    }
}

/// `decode_response`, but bytes left after the structure are a `Trailing` error.
pub fn decode_response_strict(
    api_key: i16,
    api_version: i16,
    body: &[u8],
) -> Result<ResponseBody, BodyError> {
    let (res, consumed) = decode_response_checked(api_key, api_version, body);
    let decoded = res?;
    match body.len().saturating_sub(consumed) {
        0 => Ok(decoded),
        bytes => Err(BodyError::Trailing { bytes }),
    }
}
