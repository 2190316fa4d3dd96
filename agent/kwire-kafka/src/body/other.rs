//! Responses of the APIs we do not summarise: read only the top-level throttle_time_ms / error_code when
//! the API's layout puts them at a fixed place, so `error_codes()` still sees e.g. a DescribeCluster
//! failure. Never an error: anything unexpected just leaves the fields `None`.
//!
//! Why a layout table and not kafka-protocol's `Decodable`: the crate pre-allocates arrays from wire
//! counts (see `body/mod.rs`). The table was derived from the crate's generated decoders (first fields
//! of each response) and we use the crate's `ApiKey::valid_versions()` to apply it only to versions
//! the crate knows, plus the removed inter-broker APIs 4-7 (their responses start with error_code).
//!
//! Easy to get wrong: several responses put error_code first (KRaft quorum APIs, delegation tokens,
//! OffsetDelete), ElectLeaders / DescribeLogDirs gained a top-level error_code only in later versions, and
//! AlterPartitionReassignments v1+ has a boolean between throttle_time_ms and error_code.

use super::OtherResponse;
use crate::api::key;
use crate::wire::Reader;
use kafka_protocol::messages::ApiKey;

#[derive(Clone, Copy)]
enum Layout {
    /// throttle_time_ms i32, error_code i16
    ThrottleError,
    /// throttle_time_ms i32, error_code i16 from version `n`
    ThrottleErrorFrom(i16),
    /// throttle_time_ms i32 from version `n` (first field), nothing else generic
    ThrottleFrom(i16),
    /// error_code i16 first, no throttle at a fixed place
    Error,
    /// error_code i16, throttle_time_ms i32
    ErrorThrottle,
    /// error_code i16, i64, throttle_time_ms i32 (Renew/ExpireDelegationToken)
    ErrorI64Throttle,
    /// throttle_time_ms i32, [bool from v1], error_code i16 (AlterPartitionReassignments)
    ThrottleBoolError,
}

fn layout(api_key: i16) -> Option<Layout> {
    use Layout::*;
    Some(match api_key {
        // Removed in Kafka 4.
        key::LEADER_AND_ISR..=key::CONTROLLED_SHUTDOWN => Error,
        key::DELETE_RECORDS
        | key::CREATE_ACLS
        | key::DELETE_ACLS
        | key::DESCRIBE_CONFIGS
        | key::ALTER_CONFIGS
        | key::ALTER_REPLICA_LOG_DIRS
        | key::CREATE_PARTITIONS
        | key::DELETE_GROUPS
        | key::INCREMENTAL_ALTER_CONFIGS
        | key::ALTER_CLIENT_QUOTAS
        | key::ALTER_USER_SCRAM_CREDENTIALS
        | key::DESCRIBE_PRODUCERS
        | key::DESCRIBE_TRANSACTIONS
        | key::CONSUMER_GROUP_DESCRIBE
        | key::DESCRIBE_TOPIC_PARTITIONS
        | key::SHARE_GROUP_DESCRIBE
        | key::DESCRIBE_SHARE_GROUP_OFFSETS => ThrottleFrom(0),
        key::OFFSET_FOR_LEADER_EPOCH => ThrottleFrom(2),
        key::DESCRIBE_ACLS
        | key::LIST_PARTITION_REASSIGNMENTS
        | key::DESCRIBE_CLIENT_QUOTAS
        | key::DESCRIBE_USER_SCRAM_CREDENTIALS
        | key::ALTER_PARTITION
        | key::UPDATE_FEATURES
        | key::FETCH_SNAPSHOT
        | key::DESCRIBE_CLUSTER
        | key::BROKER_REGISTRATION
        | key::BROKER_HEARTBEAT
        | key::UNREGISTER_BROKER
        | key::LIST_TRANSACTIONS
        | key::ALLOCATE_PRODUCER_IDS
        | key::CONTROLLER_REGISTRATION
        | key::GET_TELEMETRY_SUBSCRIPTIONS
        | key::PUSH_TELEMETRY
        | key::ASSIGN_REPLICAS_TO_DIRS
        | key::LIST_CONFIG_RESOURCES
        | key::SHARE_GROUP_HEARTBEAT
        | key::SHARE_FETCH
        | key::SHARE_ACKNOWLEDGE
        | key::ADD_RAFT_VOTER
        | key::REMOVE_RAFT_VOTER
        | key::UPDATE_RAFT_VOTER
        | key::ALTER_SHARE_GROUP_OFFSETS
        | key::DELETE_SHARE_GROUP_OFFSETS => ThrottleError,
        key::DESCRIBE_LOG_DIRS => ThrottleErrorFrom(3),
        key::ELECT_LEADERS => ThrottleErrorFrom(1),
        key::CREATE_DELEGATION_TOKEN
        | key::DESCRIBE_DELEGATION_TOKEN
        | key::VOTE
        | key::BEGIN_QUORUM_EPOCH
        | key::END_QUORUM_EPOCH
        | key::DESCRIBE_QUORUM => Error,
        key::RENEW_DELEGATION_TOKEN | key::EXPIRE_DELEGATION_TOKEN => ErrorI64Throttle,
        key::ALTER_PARTITION_REASSIGNMENTS => ThrottleBoolError,
        key::OFFSET_DELETE => ErrorThrottle,
        _ => return None,
    })
}

fn known_version(api_key: i16, v: i16) -> bool {
    if (key::LEADER_AND_ISR..=key::CONTROLLED_SHUTDOWN).contains(&api_key) {
        return (0..=7).contains(&v);
    }
    match ApiKey::try_from(api_key) {
        Ok(k) => {
            let range = k.valid_versions();
            // Older versions than the crate knows share the same leading fields for these APIs.
            v >= 0 && v <= range.max
        }
        Err(_) => false,
    }
}

/// Best-effort generic fields of a response we do not summarise.
pub(crate) fn decode_other_response(api_key: i16, v: i16, body: &[u8]) -> OtherResponse {
    let mut out = OtherResponse::default();
    let Some(l) = layout(api_key) else { return out };
    if !known_version(api_key, v) {
        return out;
    }
    let mut r = Reader::new(body);
    let _ = (|| -> Result<(), super::BodyError> {
        match l {
            Layout::ThrottleError => {
                out.throttle_time_ms = Some(r.i32()?);
                out.error_code = Some(r.i16()?);
            }
            Layout::ThrottleErrorFrom(n) => {
                out.throttle_time_ms = Some(r.i32()?);
                if v >= n {
                    out.error_code = Some(r.i16()?);
                }
            }
            Layout::ThrottleFrom(n) => {
                if v >= n {
                    out.throttle_time_ms = Some(r.i32()?);
                }
            }
            Layout::Error => out.error_code = Some(r.i16()?),
            Layout::ErrorThrottle => {
                out.error_code = Some(r.i16()?);
                out.throttle_time_ms = Some(r.i32()?);
            }
            Layout::ErrorI64Throttle => {
                out.error_code = Some(r.i16()?);
                r.i64()?;
                out.throttle_time_ms = Some(r.i32()?);
            }
            Layout::ThrottleBoolError => {
                out.throttle_time_ms = Some(r.i32()?);
                if v >= 1 {
                    r.bool()?;
                }
                out.error_code = Some(r.i16()?);
            }
        }
        Ok(())
    })();
    out
}
