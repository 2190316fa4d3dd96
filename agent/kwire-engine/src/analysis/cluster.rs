//! The cluster as clients were told it: brokers, partition leaders and leader epochs, topic ids ↔ names,
//! group coordinators, and the moments a partition's leadership changed (a new leader or epoch in Metadata,
//! or NOT_LEADER_OR_FOLLOWER / FENCED_LEADER_EPOCH / LEADER_NOT_AVAILABLE in a response).
//!
//! Easy to get wrong: different clients see Metadata at different times; a change is recorded once, at the
//! first response that shows it. Tables are bounded (`max_topics`), counted when full.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use kwire_flow::Timestamp;
use kwire_kafka::body::MetadataResponse;
use kwire_kafka::wire::Uuid;

use crate::model::{Interner, Name, Tp};

/// Error codes that say the partition's leadership moved.
pub const LEADER_ERRORS: [i16; 3] = [5, 6, 74];

/// Leader changes remembered per partition.
const MAX_CHANGES_PER_PARTITION: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leader {
    pub id: i32,
    pub epoch: Option<i32>,
}

#[derive(Debug, Default)]
pub struct Cluster {
    pub brokers: BTreeMap<i32, String>,
    topic_names: FxHashMap<Uuid, Name>,
    /// Every name the analysis keeps (topics, client ids, groups), shared.
    pub names: Interner,
    /// Looked up for every partition of every Produce and Fetch: hashed, never iterated.
    leaders: FxHashMap<Tp, Leader>,
    changes: BTreeMap<Tp, Vec<Timestamp>>,
    max_partitions: usize,
    /// Cluster id per broker endpoint (from Metadata responses on connections to it), bounded.
    cluster_ids: BTreeMap<kwire_flow::Endpoint, String>,
    /// Partitions not tracked because the table was full.
    pub dropped: u64,
}

impl Cluster {
    pub fn new(max_partitions: usize) -> Self {
        Cluster {
            max_partitions,
            ..Default::default()
        }
    }

    /// The topic's name, from the name itself or its id; `id:<uuid>` when the id was never resolved.
    pub fn topic(&self, name: Option<&str>, id: Option<&Uuid>) -> Name {
        match (name, id) {
            (Some(n), _) if !n.is_empty() => self.names.get(n),
            (_, Some(id)) => self
                .topic_names
                .get(id)
                .cloned()
                .unwrap_or_else(|| self.names.get(&format!("id:{id}"))),
            _ => self.names.get(""),
        }
    }

    /// A Metadata response on a connection to `broker` named the cluster.
    pub fn note_cluster_id(&mut self, broker: kwire_flow::Endpoint, id: &str) {
        const MAX_BROKERS: usize = 4096;
        if self.cluster_ids.get(&broker).is_some_and(|c| c == id) {
            return;
        }
        if self.cluster_ids.len() < MAX_BROKERS || self.cluster_ids.contains_key(&broker) {
            self.cluster_ids.insert(broker, id.to_string());
        }
    }

    /// The cluster id of the broker at `broker`, when known.
    pub fn cluster_id_of(&self, broker: &kwire_flow::Endpoint) -> Option<&str> {
        self.cluster_ids.get(broker).map(String::as_str)
    }

    pub fn leader(&self, tp: &Tp) -> Option<Leader> {
        self.leaders.get(tp).copied()
    }

    pub fn on_metadata(&mut self, ts: Timestamp, m: &MetadataResponse) {
        for b in &m.brokers {
            self.brokers
                .insert(b.node_id, format!("{}:{}", b.host, b.port));
        }
        for t in &m.topics {
            let (Some(name), Some(id)) = (t.name.as_deref(), t.topic_id.as_ref()) else {
                if t.name.is_none() {
                    continue;
                }
                self.on_topic_partitions(ts, t.name.as_deref().unwrap_or_default(), &t.partitions);
                continue;
            };
            if self.topic_names.len() < self.max_partitions || self.topic_names.contains_key(id) {
                self.topic_names.insert(*id, self.names.get(name));
            }
            self.on_topic_partitions(ts, name, &t.partitions);
        }
    }

    fn on_topic_partitions(
        &mut self,
        ts: Timestamp,
        name: &str,
        parts: &[kwire_kafka::body::MetadataPartition],
    ) {
        for p in parts {
            if p.error_code != 0 || p.leader_id < 0 {
                continue;
            }
            let tp = Tp::of(&self.names.get(name), p.partition_index);
            let new = Leader {
                id: p.leader_id,
                epoch: p.leader_epoch.filter(|e| *e >= 0),
            };
            match self.leaders.get(&tp).copied() {
                None => {
                    if self.leaders.len() >= self.max_partitions {
                        self.dropped += 1;
                        continue;
                    }
                    self.leaders.insert(tp, new);
                }
                Some(old) => {
                    let moved = old.id != new.id;
                    let newer_epoch = matches!((old.epoch, new.epoch), (Some(a), Some(b)) if b > a);
                    let older_epoch = matches!((old.epoch, new.epoch), (Some(a), Some(b)) if b < a);
                    if older_epoch {
                        // Stale metadata from a lagging broker: keep what we know.
                        continue;
                    }
                    if moved || newer_epoch {
                        self.record_change(&tp, ts);
                    }
                    self.leaders.insert(tp, new);
                }
            }
        }
    }

    /// A response said the leadership of `tp` moved (error code or a new current leader).
    /// A partition's answer in a Produce or Fetch response: a "not the leader" error moves its leader
    /// (to the one the broker named, when it did). Returns whether it was such an error.
    pub fn on_partition_error(
        &mut self,
        tp: &Tp,
        ts: Timestamp,
        error_code: i16,
        current_leader: Option<kwire_kafka::body::LeaderAndEpoch>,
    ) -> bool {
        if !LEADER_ERRORS.contains(&error_code) {
            return false;
        }
        let l = current_leader.map(|l| Leader {
            id: l.leader_id,
            epoch: Some(l.leader_epoch),
        });
        self.on_leader_moved(tp, ts, l);
        true
    }

    pub fn on_leader_moved(&mut self, tp: &Tp, ts: Timestamp, leader: Option<Leader>) {
        self.record_change(tp, ts);
        if let Some(l) = leader.filter(|l| l.id >= 0) {
            self.leaders.insert(tp.clone(), l);
        }
    }

    fn record_change(&mut self, tp: &Tp, ts: Timestamp) {
        if !self.changes.contains_key(tp) && self.changes.len() >= self.max_partitions {
            self.dropped += 1;
            return;
        }
        let v = self.changes.entry(tp.clone()).or_default();
        // Several clients report the same move within a moment: one change per second is enough.
        if v.last()
            .is_some_and(|l| ts.nanos_since(*l).abs() < 1_000_000_000)
        {
            return;
        }
        if v.len() >= MAX_CHANGES_PER_PARTITION {
            v.remove(0);
        }
        v.push(ts);
    }

    /// Every partition's recorded leadership changes, in partition order (the last
    /// `MAX_CHANGES_PER_PARTITION` of each, at most one a second): `kwire report` marks them on its charts.
    pub fn leader_changes(&self) -> impl Iterator<Item = (&Tp, &[Timestamp])> {
        self.changes.iter().map(|(tp, v)| (tp, v.as_slice()))
    }

    /// The first leader change of `tp` within [from - window, to + window], if any.
    pub fn leader_change_near(
        &self,
        tp: &Tp,
        from: Timestamp,
        to: Timestamp,
        window_ns: i64,
    ) -> Option<Timestamp> {
        let lo = from.add_nanos(-window_ns);
        let hi = to.add_nanos(window_ns);
        self.changes
            .get(tp)?
            .iter()
            .copied()
            .find(|t| *t >= lo && *t <= hi)
    }
}
