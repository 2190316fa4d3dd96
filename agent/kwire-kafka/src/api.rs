//! API keys: one table ([`APIS`]) of every key of Apache Kafka 4.1 plus the inter-broker keys it removed
//! (LeaderAndIsr 4, StopReplica 5, UpdateMetadata 6, ControlledShutdown 7) that captures from older
//! clusters still contain: number, name, newest version, first flexible version (which fixes the header
//! versions) and the newest version our body decoders summarise. The named constants ([`key`]) come from
//! the same table: code that tests an API key uses a name, never a number.
//!
//! Easy to get wrong: the response header version follows the API key and version (ApiVersions responses
//! always use header v0 so that a client can parse them whatever it asked), and ControlledShutdown v0 is the
//! one request that uses request header v0 (no client id). The table was generated from kafka-protocol
//! 0.18 (`ApiKey::valid_versions` and each message's `header_version`) and a test checks it against the
//! crate; the removed keys are described by hand because the crate dropped them. Keys 88 and 89 are not in
//! the table (no Kafka release names them): they are "Unknown".

/// One API key as kwire knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Api {
    pub key: i16,
    /// Kafka's name, e.g. `Produce`.
    pub name: &'static str,
    /// Newest version Kafka 4.1 (or the last release that had the key) defines.
    pub newest: i16,
    /// First version with flexible headers (request header v2, response header v1); [`NEVER`] if none,
    /// [`ALWAYS`] if all.
    pub first_flexible: i16,
    /// Newest version the body decoders summarise (`body::decode_*`); `None`: decoded as `Other`.
    pub decoded: Option<i16>,
}

impl Api {
    /// Does `version` of this API use flexible headers?
    pub fn flexible(&self, version: i16) -> bool {
        self.first_flexible != NEVER && version >= self.first_flexible
    }
}

/// `first_flexible` of an API that never uses flexible headers.
pub const NEVER: i16 = i16::MAX;
/// `first_flexible` of an API whose every version uses flexible headers (whatever version a peer sends).
pub const ALWAYS: i16 = i16::MIN;

macro_rules! api_table {
    ($(api!($key:literal, $konst:ident, $name:literal, $newest:literal, $flex:expr, $decoded:expr),)*) => {
        /// API keys by name.
        pub mod key {
            $(pub const $konst: i16 = $key;)*
        }

        /// Every API key we know, sorted by key.
        pub const APIS: &[Api] = &[
            $(Api { key: $key, name: $name, newest: $newest, first_flexible: $flex, decoded: $decoded },)*
        ];
    };
}

#[rustfmt::skip]
api_table! {
    // key, NAME, name, newest version, first flexible version, newest version decoded
    api!(0, PRODUCE, "Produce", 13, 9, Some(13)),
    api!(1, FETCH, "Fetch", 18, 12, Some(18)),
    api!(2, LIST_OFFSETS, "ListOffsets", 10, 6, Some(10)),
    api!(3, METADATA, "Metadata", 13, 9, Some(13)),
    api!(4, LEADER_AND_ISR, "LeaderAndIsr", 7, 4, None),
    api!(5, STOP_REPLICA, "StopReplica", 4, 2, None),
    api!(6, UPDATE_METADATA, "UpdateMetadata", 8, 6, None),
    api!(7, CONTROLLED_SHUTDOWN, "ControlledShutdown", 3, 3, None),
    api!(8, OFFSET_COMMIT, "OffsetCommit", 10, 8, Some(10)),
    api!(9, OFFSET_FETCH, "OffsetFetch", 10, 6, Some(10)),
    api!(10, FIND_COORDINATOR, "FindCoordinator", 6, 3, Some(6)),
    api!(11, JOIN_GROUP, "JoinGroup", 9, 6, Some(9)),
    api!(12, HEARTBEAT, "Heartbeat", 4, 4, Some(4)),
    api!(13, LEAVE_GROUP, "LeaveGroup", 5, 4, Some(5)),
    api!(14, SYNC_GROUP, "SyncGroup", 5, 4, Some(5)),
    api!(15, DESCRIBE_GROUPS, "DescribeGroups", 6, 5, Some(6)),
    api!(16, LIST_GROUPS, "ListGroups", 5, 3, Some(5)),
    api!(17, SASL_HANDSHAKE, "SaslHandshake", 1, NEVER, Some(1)),
    api!(18, API_VERSIONS, "ApiVersions", 4, 3, Some(4)),
    api!(19, CREATE_TOPICS, "CreateTopics", 7, 5, Some(7)),
    api!(20, DELETE_TOPICS, "DeleteTopics", 6, 4, Some(6)),
    api!(21, DELETE_RECORDS, "DeleteRecords", 2, 2, Some(2)),
    api!(22, INIT_PRODUCER_ID, "InitProducerId", 6, 2, Some(6)),
    api!(23, OFFSET_FOR_LEADER_EPOCH, "OffsetForLeaderEpoch", 4, 4, Some(4)),
    api!(24, ADD_PARTITIONS_TO_TXN, "AddPartitionsToTxn", 5, 3, Some(5)),
    api!(25, ADD_OFFSETS_TO_TXN, "AddOffsetsToTxn", 4, 3, Some(4)),
    api!(26, END_TXN, "EndTxn", 5, 3, Some(5)),
    api!(27, WRITE_TXN_MARKERS, "WriteTxnMarkers", 1, ALWAYS, None),
    api!(28, TXN_OFFSET_COMMIT, "TxnOffsetCommit", 5, 3, Some(5)),
    api!(29, DESCRIBE_ACLS, "DescribeAcls", 3, 2, None),
    api!(30, CREATE_ACLS, "CreateAcls", 3, 2, None),
    api!(31, DELETE_ACLS, "DeleteAcls", 3, 2, None),
    api!(32, DESCRIBE_CONFIGS, "DescribeConfigs", 4, 4, None),
    api!(33, ALTER_CONFIGS, "AlterConfigs", 2, 2, None),
    api!(34, ALTER_REPLICA_LOG_DIRS, "AlterReplicaLogDirs", 2, 2, None),
    api!(35, DESCRIBE_LOG_DIRS, "DescribeLogDirs", 4, 2, None),
    api!(36, SASL_AUTHENTICATE, "SaslAuthenticate", 2, 2, Some(2)),
    api!(37, CREATE_PARTITIONS, "CreatePartitions", 3, 2, None),
    api!(38, CREATE_DELEGATION_TOKEN, "CreateDelegationToken", 3, 2, None),
    api!(39, RENEW_DELEGATION_TOKEN, "RenewDelegationToken", 2, 2, None),
    api!(40, EXPIRE_DELEGATION_TOKEN, "ExpireDelegationToken", 2, 2, None),
    api!(41, DESCRIBE_DELEGATION_TOKEN, "DescribeDelegationToken", 3, 2, None),
    api!(42, DELETE_GROUPS, "DeleteGroups", 2, 2, None),
    api!(43, ELECT_LEADERS, "ElectLeaders", 2, 2, None),
    api!(44, INCREMENTAL_ALTER_CONFIGS, "IncrementalAlterConfigs", 1, 1, None),
    api!(45, ALTER_PARTITION_REASSIGNMENTS, "AlterPartitionReassignments", 1, ALWAYS, None),
    api!(46, LIST_PARTITION_REASSIGNMENTS, "ListPartitionReassignments", 0, ALWAYS, None),
    api!(47, OFFSET_DELETE, "OffsetDelete", 0, NEVER, None),
    api!(48, DESCRIBE_CLIENT_QUOTAS, "DescribeClientQuotas", 1, 1, None),
    api!(49, ALTER_CLIENT_QUOTAS, "AlterClientQuotas", 1, 1, None),
    api!(50, DESCRIBE_USER_SCRAM_CREDENTIALS, "DescribeUserScramCredentials", 0, ALWAYS, None),
    api!(51, ALTER_USER_SCRAM_CREDENTIALS, "AlterUserScramCredentials", 0, ALWAYS, None),
    api!(52, VOTE, "Vote", 2, ALWAYS, None),
    api!(53, BEGIN_QUORUM_EPOCH, "BeginQuorumEpoch", 1, 1, None),
    api!(54, END_QUORUM_EPOCH, "EndQuorumEpoch", 1, 1, None),
    api!(55, DESCRIBE_QUORUM, "DescribeQuorum", 2, ALWAYS, None),
    api!(56, ALTER_PARTITION, "AlterPartition", 3, ALWAYS, None),
    api!(57, UPDATE_FEATURES, "UpdateFeatures", 2, ALWAYS, None),
    api!(58, ENVELOPE, "Envelope", 0, ALWAYS, None),
    api!(59, FETCH_SNAPSHOT, "FetchSnapshot", 1, ALWAYS, None),
    api!(60, DESCRIBE_CLUSTER, "DescribeCluster", 2, ALWAYS, None),
    api!(61, DESCRIBE_PRODUCERS, "DescribeProducers", 0, ALWAYS, None),
    api!(62, BROKER_REGISTRATION, "BrokerRegistration", 4, ALWAYS, None),
    api!(63, BROKER_HEARTBEAT, "BrokerHeartbeat", 1, ALWAYS, None),
    api!(64, UNREGISTER_BROKER, "UnregisterBroker", 0, ALWAYS, None),
    api!(65, DESCRIBE_TRANSACTIONS, "DescribeTransactions", 0, ALWAYS, None),
    api!(66, LIST_TRANSACTIONS, "ListTransactions", 2, ALWAYS, None),
    api!(67, ALLOCATE_PRODUCER_IDS, "AllocateProducerIds", 0, ALWAYS, None),
    api!(68, CONSUMER_GROUP_HEARTBEAT, "ConsumerGroupHeartbeat", 1, ALWAYS, Some(1)),
    api!(69, CONSUMER_GROUP_DESCRIBE, "ConsumerGroupDescribe", 1, ALWAYS, None),
    api!(70, CONTROLLER_REGISTRATION, "ControllerRegistration", 0, ALWAYS, None),
    api!(71, GET_TELEMETRY_SUBSCRIPTIONS, "GetTelemetrySubscriptions", 0, ALWAYS, None),
    api!(72, PUSH_TELEMETRY, "PushTelemetry", 0, ALWAYS, None),
    api!(73, ASSIGN_REPLICAS_TO_DIRS, "AssignReplicasToDirs", 0, ALWAYS, None),
    api!(74, LIST_CONFIG_RESOURCES, "ListConfigResources", 1, ALWAYS, None),
    api!(75, DESCRIBE_TOPIC_PARTITIONS, "DescribeTopicPartitions", 0, ALWAYS, None),
    api!(76, SHARE_GROUP_HEARTBEAT, "ShareGroupHeartbeat", 1, ALWAYS, None),
    api!(77, SHARE_GROUP_DESCRIBE, "ShareGroupDescribe", 1, ALWAYS, None),
    api!(78, SHARE_FETCH, "ShareFetch", 1, ALWAYS, None),
    api!(79, SHARE_ACKNOWLEDGE, "ShareAcknowledge", 1, ALWAYS, None),
    api!(80, ADD_RAFT_VOTER, "AddRaftVoter", 0, ALWAYS, None),
    api!(81, REMOVE_RAFT_VOTER, "RemoveRaftVoter", 0, ALWAYS, None),
    api!(82, UPDATE_RAFT_VOTER, "UpdateRaftVoter", 0, ALWAYS, None),
    api!(83, INITIALIZE_SHARE_GROUP_STATE, "InitializeShareGroupState", 0, ALWAYS, None),
    api!(84, READ_SHARE_GROUP_STATE, "ReadShareGroupState", 0, ALWAYS, None),
    api!(85, WRITE_SHARE_GROUP_STATE, "WriteShareGroupState", 0, ALWAYS, None),
    api!(86, DELETE_SHARE_GROUP_STATE, "DeleteShareGroupState", 0, ALWAYS, None),
    api!(87, READ_SHARE_GROUP_STATE_SUMMARY, "ReadShareGroupStateSummary", 0, ALWAYS, None),
    api!(90, DESCRIBE_SHARE_GROUP_OFFSETS, "DescribeShareGroupOffsets", 0, ALWAYS, None),
    api!(91, ALTER_SHARE_GROUP_OFFSETS, "AlterShareGroupOffsets", 0, ALWAYS, None),
    api!(92, DELETE_SHARE_GROUP_OFFSETS, "DeleteShareGroupOffsets", 0, ALWAYS, None),
}

/// Highest API key number we know of (DeleteShareGroupOffsets = 92 in Kafka 4.1).
pub const MAX_KNOWN_API_KEY: i16 = key::DELETE_SHARE_GROUP_OFFSETS;

/// How many versions beyond the newest we know we still accept as "plausible" (a newer broker/client):
/// such frames are reported by header and skipped by length.
const FUTURE_VERSION_SLACK: i16 = 3;

/// The table's row for `key`, if some Kafka release defined it.
pub fn api(key: i16) -> Option<&'static Api> {
    // Keys from 0 are nearly dense and the table is sorted: the row at index `key` is the one asked for
    // up to the first gap (every hot API); past it, a binary search. Asked per frame and per exchange.
    if let Some(a) = usize::try_from(key).ok().and_then(|i| APIS.get(i)) {
        if a.key == key {
            return Some(a);
        }
    }
    APIS.binary_search_by_key(&key, |a| a.key)
        .ok()
        .map(|i| &APIS[i])
}

/// Name of an API key, e.g. `Produce`; `Unknown` for keys no Kafka release defines.
pub fn api_name(key: i16) -> &'static str {
    api(key).map_or("Unknown", |a| a.name)
}

/// Highest version of `key` known to us (None for unknown keys).
pub fn max_known_version(key: i16) -> Option<i16> {
    api(key).map(|a| a.newest)
}

/// Is (`key`, `version`) something a real client or broker could plausibly send? Used by the probe.
pub fn is_plausible(key: i16, version: i16) -> bool {
    match max_known_version(key) {
        Some(max) => version >= 0 && version <= max + FUTURE_VERSION_SLACK,
        None => false,
    }
}

/// Is `version` within what we know for `key` (beyond it, the body layout is unknown and is skipped)?
pub fn is_known_version(key: i16, version: i16) -> bool {
    max_known_version(key).is_some_and(|max| (0..=max).contains(&version))
}

/// Request header version (0, 1 or 2) for this key and version.
pub fn request_header_version(key: i16, version: i16) -> i16 {
    match api(key) {
        Some(a) if a.key == key::CONTROLLED_SHUTDOWN && version == 0 => 0,
        Some(a) if a.flexible(version) => 2,
        _ => 1,
    }
}

/// Response header version (0 or 1) for this key and version.
pub fn response_header_version(key: i16, version: i16) -> i16 {
    match api(key) {
        Some(a) if a.key == key::API_VERSIONS => 0,
        Some(a) if a.flexible(version) => 1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The indexed lookup finds what a search of the table finds, for every key and around it.
    #[test]
    fn lookup_matches_the_table() {
        for key in -3..300i16 {
            let searched = APIS.iter().find(|a| a.key == key);
            assert_eq!(
                api(key).map(|a| a.key),
                searched.map(|a| a.key),
                "key {key}"
            );
        }
        assert!(api(i16::MIN).is_none() && api(i16::MAX).is_none());
    }

    #[test]
    fn names() {
        assert_eq!(api_name(0), "Produce");
        assert_eq!(api_name(7), "ControlledShutdown");
        assert_eq!(api_name(18), "ApiVersions");
        assert_eq!(api_name(68), "ConsumerGroupHeartbeat");
        assert_eq!(api_name(10000), "Unknown");
        assert_eq!(api_name(-1), "Unknown");
    }

    #[test]
    fn header_versions() {
        assert_eq!(request_header_version(0, 8), 1);
        assert_eq!(request_header_version(0, 9), 2);
        assert_eq!(response_header_version(0, 9), 1);
        // ApiVersions: flexible request header from v3, response header always v0.
        assert_eq!(request_header_version(18, 3), 2);
        assert_eq!(response_header_version(18, 3), 0);
        assert_eq!(request_header_version(7, 0), 0);
        assert_eq!(request_header_version(7, 1), 1);
        assert_eq!(request_header_version(1, 12), 2);
        assert_eq!(response_header_version(1, 11), 0);
    }

    /// The table says what kafka-protocol says, for every key it knows and every version (even impossible
    /// ones: header versions are asked of whatever a peer sends).
    #[test]
    fn table_matches_kafka_protocol() {
        use kafka_protocol::messages::ApiKey;
        let mut crate_keys = 0;
        for k in -1..=200i16 {
            let Ok(ck) = ApiKey::try_from(k) else {
                assert!(api(k).is_none() || (4..=7).contains(&k), "{k}");
                continue;
            };
            crate_keys += 1;
            let a = api(k).unwrap_or_else(|| panic!("key {k} missing"));
            assert_eq!(a.name, format!("{ck:?}"));
            assert_eq!(a.newest, ck.valid_versions().max, "{}", a.name);
            for v in [-3, -1, 0, 1, 2, 3, 4, 5, 6, 8, 9, 12, 13, 18, 40, i16::MAX] {
                assert_eq!(
                    request_header_version(k, v),
                    ck.request_header_version(v),
                    "{} v{v}",
                    a.name
                );
                assert_eq!(
                    response_header_version(k, v),
                    ck.response_header_version(v),
                    "{} v{v}",
                    a.name
                );
            }
        }
        assert_eq!(crate_keys + 4, APIS.len());
        assert!(
            APIS.windows(2).all(|w| w[0].key < w[1].key),
            "sorted by key"
        );
        assert_eq!(key::PRODUCE, 0);
        assert_eq!(key::CONSUMER_GROUP_HEARTBEAT, 68);
        assert_eq!(api(key::FETCH).and_then(|a| a.decoded), Some(18));
    }

    #[test]
    fn plausibility() {
        assert!(is_plausible(0, 0));
        assert!(is_plausible(1, 18));
        assert!(!is_plausible(1, 40));
        assert!(!is_plausible(10000, 0));
        assert!(!is_plausible(7, 1000));
    }
}
