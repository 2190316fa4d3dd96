//! The consumer embedded protocol: `ConsumerProtocolSubscription` (JoinGroup protocol metadata, member
//! metadata in JoinGroup responses) and `ConsumerProtocolAssignment` (SyncGroup assignments). At the Kafka
//! protocol level these are opaque bytes; they follow this layout only when the group's protocol type is
//! "consumer" (Kafka Connect, Schema Registry etc. put other things there).
//!
//! Easy to get wrong:
//! - these structs are NOT flexible: classic i16 string / i32 array lengths, whatever the outer version;
//! - a newer subscription/assignment version than we know must still parse: read the fields we know and
//!   ignore the rest (Kafka does the same), so `decode_subscription` does not require consuming everything;
//! - SyncGroup before v5 does not say the protocol type: there `decode_assignment_exact` accepts the bytes
//!   only when they parse as an assignment consuming every byte; empty bytes (a follower's SyncGroup
//!   request, or an error response) mean "no assignment", not an empty assignment;
//! - user data is kept as a length only (it may hold anything, including application secrets).

use crate::wire::{Reader, WireResult};
use serde::Serialize;

/// A topic with partitions (owned, assigned).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicPartitions {
    pub topic: String,
    pub partitions: Vec<i32>,
}

/// ConsumerProtocolSubscription (versions 0-3).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Subscription {
    pub version: i16,
    pub topics: Vec<String>,
    /// Length of user_data; None when null.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_data_len: Option<usize>,
    /// v1+: partitions the member owns (cooperative rebalancing).
    pub owned_partitions: Vec<TopicPartitions>,
    /// v2+: generation the member last joined (-1 when unknown / before v2).
    pub generation_id: i32,
    /// v3+.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rack_id: Option<String>,
}

/// ConsumerProtocolAssignment (versions 0-3, same fields in all).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assignment {
    pub version: i16,
    pub partitions: Vec<TopicPartitions>,
    /// Length of user_data; None when null.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_data_len: Option<usize>,
}

/// Keep at most this many topics per subscription / assignment (the rest are dropped).
const MAX_TOPICS: usize = 10_000;
/// Keep at most this many partitions per topic.
const MAX_PARTITIONS: usize = 100_000;

fn topic_partitions(r: &mut Reader<'_>) -> WireResult<Vec<TopicPartitions>> {
    let n = r.array_len(false)?;
    let mut v = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        let topic = r.string(false)?;
        let partitions = r.i32_array(false, MAX_PARTITIONS)?;
        if v.len() < MAX_TOPICS {
            v.push(TopicPartitions { topic, partitions });
        }
    }
    Ok(v)
}

fn subscription(r: &mut Reader<'_>) -> WireResult<Subscription> {
    let version = r.i16()?;
    if version < 0 {
        return Err(r.malformed("negative subscription version"));
    }
    let topics = r.string_array(false, MAX_TOPICS)?;
    let user_data_len = r.bytes(false)?.map(|b| b.len());
    let owned_partitions = if version >= 1 {
        topic_partitions(r)?
    } else {
        Vec::new()
    };
    let generation_id = if version >= 2 { r.i32()? } else { -1 };
    let rack_id = if version >= 3 {
        r.opt_string(false)?
    } else {
        None
    };
    Ok(Subscription {
        version,
        topics,
        user_data_len,
        owned_partitions,
        generation_id,
        rack_id,
    })
}

fn assignment(r: &mut Reader<'_>) -> WireResult<Assignment> {
    let version = r.i16()?;
    if version < 0 {
        return Err(r.malformed("negative assignment version"));
    }
    let partitions = topic_partitions(r)?;
    let user_data_len = r.bytes(false)?.map(|b| b.len());
    Ok(Assignment {
        version,
        partitions,
        user_data_len,
    })
}

/// Decode a consumer-protocol subscription (JoinGroup metadata). Trailing bytes (newer versions) are
/// ignored. `None` for empty or unparseable bytes.
pub fn decode_subscription(bytes: &[u8]) -> Option<Subscription> {
    if bytes.is_empty() {
        return None;
    }
    subscription(&mut Reader::new(bytes)).ok()
}

/// Decode a subscription only if the bytes parse EXACTLY as one (every byte consumed, version 0-3). Used
/// when the protocol type is unknown (JoinGroup responses before v7).
pub fn decode_subscription_exact(bytes: &[u8]) -> Option<Subscription> {
    if bytes.is_empty() {
        return None;
    }
    let mut r = Reader::new(bytes);
    let s = subscription(&mut r).ok()?;
    (r.is_empty() && (0..=3).contains(&s.version)).then_some(s)
}

/// Decode a consumer-protocol assignment (SyncGroup), when the protocol type is known to be "consumer".
/// Trailing bytes (newer versions) are ignored. `None` for empty or unparseable bytes.
pub fn decode_assignment(bytes: &[u8]) -> Option<Assignment> {
    if bytes.is_empty() {
        return None;
    }
    assignment(&mut Reader::new(bytes)).ok()
}

/// Decode an assignment only if the bytes parse EXACTLY as one (every byte consumed, version 0-3). Used
/// when the protocol type is unknown (SyncGroup before v5).
pub fn decode_assignment_exact(bytes: &[u8]) -> Option<Assignment> {
    if bytes.is_empty() {
        return None;
    }
    let mut r = Reader::new(bytes);
    let a = assignment(&mut r).ok()?;
    (r.is_empty() && (0..=3).contains(&a.version)).then_some(a)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn str16(v: &mut Vec<u8>, s: &str) {
        v.extend_from_slice(&(s.len() as i16).to_be_bytes());
        v.extend_from_slice(s.as_bytes());
    }

    /// Assignment v0..: version, [topic, [partition]], user_data (null).
    pub(crate) fn assignment_bytes(version: i16, tps: &[(&str, &[i32])]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&version.to_be_bytes()); // version
        v.extend_from_slice(&(tps.len() as i32).to_be_bytes()); // assigned_partitions count
        for (t, ps) in tps {
            str16(&mut v, t); // topic
            v.extend_from_slice(&(ps.len() as i32).to_be_bytes()); // partitions count
            for p in *ps {
                v.extend_from_slice(&p.to_be_bytes()); // partition
            }
        }
        v.extend_from_slice(&(-1i32).to_be_bytes()); // user_data: null
        v
    }

    /// Subscription v3: version, topics, user_data, owned_partitions, generation_id, rack_id.
    pub(crate) fn subscription_v3(topics: &[&str], owned: &[(&str, &[i32])], gen: i32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&3i16.to_be_bytes()); // version 3
        v.extend_from_slice(&(topics.len() as i32).to_be_bytes()); // topics count
        for t in topics {
            str16(&mut v, t); // topic
        }
        v.extend_from_slice(&3i32.to_be_bytes()); // user_data length 3
        v.extend_from_slice(b"xyz"); // user_data (only its length is kept)
        v.extend_from_slice(&(owned.len() as i32).to_be_bytes()); // owned_partitions count
        for (t, ps) in owned {
            str16(&mut v, t); // topic
            v.extend_from_slice(&(ps.len() as i32).to_be_bytes()); // partitions count
            for p in *ps {
                v.extend_from_slice(&p.to_be_bytes()); // partition
            }
        }
        v.extend_from_slice(&gen.to_be_bytes()); // generation_id
        str16(&mut v, "rack-a"); // rack_id
        v
    }

    #[test]
    fn subscription_v3_roundtrip() {
        let b = subscription_v3(&["orders", "payments"], &[("orders", &[0, 2])], 7);
        let s = decode_subscription(&b).unwrap();
        assert_eq!(s.version, 3);
        assert_eq!(s.topics, vec!["orders", "payments"]);
        assert_eq!(s.user_data_len, Some(3));
        assert_eq!(
            s.owned_partitions,
            vec![TopicPartitions {
                topic: "orders".into(),
                partitions: vec![0, 2]
            }]
        );
        assert_eq!(s.generation_id, 7);
        assert_eq!(s.rack_id.as_deref(), Some("rack-a"));
        // v0: only topics and user data
        let mut v0 = Vec::new();
        v0.extend_from_slice(&0i16.to_be_bytes()); // version 0
        v0.extend_from_slice(&1i32.to_be_bytes()); // 1 topic
        str16(&mut v0, "t"); // topic
        v0.extend_from_slice(&(-1i32).to_be_bytes()); // user_data null
        let s = decode_subscription(&v0).unwrap();
        assert_eq!((s.version, s.generation_id, s.user_data_len), (0, -1, None));
    }

    #[test]
    fn assignment_exact() {
        let b = assignment_bytes(1, &[("orders", &[1, 3]), ("x", &[])]);
        let a = decode_assignment_exact(&b).unwrap();
        assert_eq!(a.partitions.len(), 2);
        assert_eq!(a.partitions[0].partitions, vec![1, 3]);
        let mut extra = b.clone();
        extra.push(0);
        assert!(decode_assignment_exact(&extra).is_none());
        assert!(decode_assignment(&extra).is_some());
        assert!(decode_assignment_exact(&[]).is_none());
    }
}
