//! What an exchange means in messaging terms, resolved against the cluster view: the operation (send,
//! receive, commit), the consumer group, and per topic-partition the offset, records, bytes, high watermark
//! and error. Exporters (OpenTelemetry spans and metrics) read these facts instead of walking each API's
//! body themselves. Computed only when `EngineConfig::exchange_facts` is on.
//!
//! Easy to get wrong:
//! - topics are named by id in newer versions (Produce v13, Fetch v13+, OffsetCommit v10): names come
//!   from the cluster view (Metadata responses seen earlier); an unknown id stays as its UUID text;
//! - a follower's Fetch (replica id >= 0) is replication, not consumption: it keeps its facts (its high
//!   watermarks are real) but its operation is `Other`, so consumed-record counters skip it;
//! - records and bytes come from record batch headers (control batches are not records); offsets are the
//!   response's (Produce base offset, ListOffsets offset) or the request's (Fetch position, commit).

use kwire_kafka::body::{RequestBody, ResponseBody};
use kwire_kafka::records::BatchInfo;
use kwire_kafka::{Decoded, Exchange};

use crate::analysis::cluster::Cluster;
use crate::model::Name;

/// The messaging operation of an exchange (OpenTelemetry `messaging.operation.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Produce.
    Send,
    /// A consumer's Fetch.
    Receive,
    /// OffsetCommit, TxnOffsetCommit.
    Settle,
    /// Everything else (metadata, group membership, follower fetches, admin).
    Other,
}

impl Operation {
    /// `messaging.operation.type`, when the exchange has one.
    pub fn type_str(self) -> Option<&'static str> {
        match self {
            Operation::Send => Some("send"),
            Operation::Receive => Some("receive"),
            Operation::Settle => Some("settle"),
            Operation::Other => None,
        }
    }
}

/// One topic-partition of an exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartFact {
    /// Shared with the cluster view (no copy per exchange).
    pub topic: Name,
    pub partition: i32,
    /// Produce: base offset assigned; Fetch: position asked for; commit: offset committed; ListOffsets:
    /// offset returned.
    pub offset: Option<i64>,
    /// Records in the partition's record batches (data batches only).
    pub records: u64,
    /// Bytes of the partition's record set.
    pub bytes: u64,
    /// Fetch responses without error.
    pub high_watermark: Option<i64>,
    /// The offset of the partition's one record, when it holds exactly one (Produce: the base offset
    /// assigned; Fetch: from the record batch header). None for zero or several records.
    pub record_offset: Option<i64>,
    /// The partition's error code in the response (0 = none or no response).
    pub error: i16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeFacts {
    pub operation: Operation,
    pub group: Option<Name>,
    pub parts: Vec<PartFact>,
    /// The Kafka cluster id of the broker, when a Metadata response on a connection to it said so.
    pub cluster_id: Option<Name>,
}

impl ExchangeFacts {
    /// The one topic of the exchange, if all its partitions are in the same topic.
    pub fn single_topic(&self) -> Option<&str> {
        let first = self.parts.first()?;
        self.parts
            .iter()
            .all(|p| p.topic == first.topic)
            .then_some(&*first.topic)
    }
}

fn records_of(batches: &[BatchInfo]) -> u64 {
    batches
        .iter()
        .filter(|b| !b.control)
        .map(|b| u64::try_from(b.record_count).unwrap_or(0))
        .sum()
}

fn part(topic: &Name, partition: i32) -> PartFact {
    PartFact {
        topic: topic.clone(),
        partition,
        offset: None,
        records: 0,
        bytes: 0,
        high_watermark: None,
        record_offset: None,
        error: 0,
    }
}

/// The offset of the one data record of `batches`, when there is exactly one.
fn single_record_offset(batches: &[BatchInfo]) -> Option<i64> {
    let mut data = batches.iter().filter(|b| !b.control && b.record_count > 0);
    let b = data.next()?;
    (data.next().is_none() && b.record_count == 1)
        .then(|| b.base_offset.saturating_add(i64::from(b.last_offset_delta)))
}

fn find<'a>(parts: &'a mut [PartFact], topic: &str, partition: i32) -> Option<&'a mut PartFact> {
    parts
        .iter_mut()
        .find(|p| p.partition == partition && &*p.topic == topic)
}

/// The facts of one exchange; `cluster_id` is the broker's, if known; `consumer_group` is the group the
/// client is a member of (used for a consumer's Fetch, which does not name its group).
pub fn exchange_facts(
    x: &Exchange,
    cluster: &Cluster,
    cluster_id: Option<&str>,
    consumer_group: Option<&str>,
) -> ExchangeFacts {
    let req = x.request.body.full();
    let resp = x.response.as_ref().and_then(|r| match &r.body {
        Decoded::Full(b) => Some(b),
        _ => None,
    });
    let mut f = ExchangeFacts {
        operation: Operation::Other,
        group: None,
        parts: Vec::new(),
        cluster_id: cluster_id.map(|c| cluster.names.get(c)),
    };
    // Group ids and topic names are interned: facts share them (the interner counts what it cannot).
    let group = |g: &str| Some(cluster.names.get(g));
    let name = |n: Option<&str>, id| cluster.topic(n, id);
    match req {
        Some(RequestBody::Produce(p)) => {
            f.operation = Operation::Send;
            for t in &p.topics {
                let topic = name(t.name.as_deref(), t.topic_id.as_ref());
                for pp in &t.partitions {
                    let mut pf = part(&topic, pp.partition);
                    pf.records = records_of(&pp.batches);
                    pf.bytes = pp.record_bytes as u64;
                    f.parts.push(pf);
                }
            }
            if let Some(ResponseBody::Produce(r)) = resp {
                for t in &r.topics {
                    let topic = name(t.name.as_deref(), t.topic_id.as_ref());
                    for rp in &t.partitions {
                        if let Some(pf) = find(&mut f.parts, &topic, rp.partition) {
                            pf.error = rp.error_code;
                            if rp.error_code == 0 && rp.base_offset >= 0 {
                                pf.offset = Some(rp.base_offset);
                                if pf.records == 1 {
                                    pf.record_offset = Some(rp.base_offset);
                                }
                            }
                        }
                    }
                }
            }
        }
        Some(RequestBody::Fetch(q)) => {
            let follower = q.replica_id.is_some_and(|r| r >= 0);
            f.operation = if follower {
                Operation::Other
            } else {
                f.group = consumer_group.and_then(group);
                Operation::Receive
            };
            for t in &q.topics {
                let topic = name(t.name.as_deref(), t.topic_id.as_ref());
                for qp in &t.partitions {
                    let mut pf = part(&topic, qp.partition);
                    pf.offset = Some(qp.fetch_offset);
                    f.parts.push(pf);
                }
            }
            if let Some(ResponseBody::Fetch(r)) = resp {
                for t in &r.topics {
                    let topic = name(t.name.as_deref(), t.topic_id.as_ref());
                    for rp in &t.partitions {
                        // Incremental fetch sessions answer for partitions the request did not list.
                        if find(&mut f.parts, &topic, rp.partition).is_none() {
                            f.parts.push(part(&topic, rp.partition));
                        }
                        let Some(pf) = find(&mut f.parts, &topic, rp.partition) else {
                            continue;
                        };
                        pf.error = rp.error_code;
                        pf.records = records_of(&rp.batches);
                        pf.record_offset = single_record_offset(&rp.batches);
                        pf.bytes = rp.record_bytes as u64;
                        if rp.error_code == 0 && rp.high_watermark >= 0 {
                            pf.high_watermark = Some(rp.high_watermark);
                        }
                    }
                }
            }
        }
        Some(RequestBody::OffsetCommit(c)) => {
            f.operation = Operation::Settle;
            f.group = group(&c.group_id);
            for t in &c.topics {
                let topic = name(t.name.as_deref(), t.topic_id.as_ref());
                for cp in &t.partitions {
                    let mut pf = part(&topic, cp.partition);
                    pf.offset = Some(cp.committed_offset);
                    f.parts.push(pf);
                }
            }
            if let Some(ResponseBody::OffsetCommit(r)) = resp {
                set_errors(&mut f.parts, &r.topics, cluster);
            }
        }
        Some(RequestBody::TxnOffsetCommit(c)) => {
            f.operation = Operation::Settle;
            f.group = group(&c.group_id);
            for t in &c.topics {
                for cp in &t.partitions {
                    let mut pf = part(&cluster.names.get(&t.name), cp.partition);
                    pf.offset = Some(cp.committed_offset);
                    f.parts.push(pf);
                }
            }
            if let Some(ResponseBody::TxnOffsetCommit(r)) = resp {
                set_errors(&mut f.parts, &r.topics, cluster);
            }
        }
        Some(RequestBody::ListOffsets(l)) => {
            for t in &l.topics {
                let topic = cluster.names.get(&t.name);
                for lp in &t.partitions {
                    f.parts.push(part(&topic, lp.partition));
                }
            }
            if let Some(ResponseBody::ListOffsets(r)) = resp {
                for t in &r.topics {
                    for rp in &t.partitions {
                        if let Some(pf) = find(&mut f.parts, &t.name, rp.partition) {
                            pf.error = rp.error_code;
                            if rp.error_code == 0 {
                                pf.offset = rp.offset.or_else(|| {
                                    rp.old_style_offsets
                                        .as_ref()
                                        .and_then(|o| o.first().copied())
                                });
                            }
                        }
                    }
                }
            }
        }
        Some(RequestBody::OffsetFetch(o)) => {
            if let [g] = o.groups.as_slice() {
                f.group = group(&g.group_id);
            }
        }
        Some(RequestBody::JoinGroup(j)) => f.group = group(&j.group_id),
        Some(RequestBody::SyncGroup(s)) => f.group = group(&s.group_id),
        Some(RequestBody::Heartbeat(h)) => f.group = group(&h.group_id),
        Some(RequestBody::LeaveGroup(l)) => f.group = group(&l.group_id),
        Some(RequestBody::ConsumerGroupHeartbeat(h)) => f.group = group(&h.group_id),
        Some(RequestBody::AddOffsetsToTxn(a)) => f.group = group(&a.group_id),
        Some(RequestBody::DescribeGroups(d)) => {
            if let [g] = d.groups.as_slice() {
                f.group = group(g);
            }
        }
        _ => {}
    }
    f
}

fn set_errors(
    parts: &mut [PartFact],
    topics: &[kwire_kafka::body::TopicPartitionErrors],
    cluster: &Cluster,
) {
    for t in topics {
        let topic = cluster.topic(t.name.as_deref(), t.topic_id.as_ref());
        for pe in &t.partitions {
            if let Some(pf) = find(parts, &topic, pe.partition) {
                pf.error = pe.error_code;
            }
        }
    }
}
