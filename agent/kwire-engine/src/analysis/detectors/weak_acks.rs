//! `weak_acks`: Produce with acks=0 or acks=1. One alert per (client, topic, acks) with counts (`requests`,
//! and `records` sent: a retried record counts again, as it crossed the wire again), raised
//! `report_after_s` of packet time after the producer's first weak-acks request (counts so far) or at the
//! end of a replay, whichever comes first — the same in replay and live — and raised again only if it later
//! becomes critical. `critical` when the weak-acks traffic to a
//! partition overlaps a leader change of that partition (within `leader_change_window_s`): the window in
//! which acknowledged records are lost; `warning` otherwise. The critical line that follows a warning for
//! the same producer is a line of the same incident.

use std::collections::hash_map::Entry;
use std::collections::BTreeMap;
use std::net::IpAddr;

use kwire_flow::Timestamp;
use kwire_kafka::body::{ProduceRequest, ProduceTopic};

use crate::analysis::cluster::Cluster;
use crate::analysis::detectors::WeakAcksConfig;
use crate::analysis::incident::{Condition, Harm, IncidentKey};
use crate::model::{ConnCtx, XRef};
use crate::model::{Name, Tp};
use crate::output::alert::{Alert, AlertKind, Evidence, Severity};
use rustc_hash::FxHashMap;

/// (client id, host, topic, acks).
type ProducerKey = (Name, IpAddr, Name, i16);

/// The detector's state: weak-acks producers by (client id, host, topic, acks), bounded
/// (`max_weak_producers`, default 10,000; producers past it are counted in `dropped`, never tracked).
/// Hashed (every acks=0/1 Produce looks its producer up; a B-tree compared the names' bytes at every
/// level), and `due` sorts what it raises by key: the alerts come in the same order as ever.
#[derive(Debug, Default)]
pub struct WeakAcks {
    producers: FxHashMap<ProducerKey, WeakProducer>,
    max: usize,
    /// Weak-acks producers not tracked because the table was full.
    pub dropped: u64,
}

impl WeakAcks {
    pub fn new(max: usize) -> Self {
        WeakAcks {
            producers: FxHashMap::default(),
            max,
            dropped: 0,
        }
    }

    /// One acks=0/1 Produce request's traffic to one topic.
    #[allow(clippy::too_many_arguments)]
    pub fn observe(
        &mut self,
        ctx: &ConnCtx,
        cid: Option<&str>,
        client_id: &Name,
        topic: Name,
        p: &ProduceRequest,
        t: &ProduceTopic,
        ts: Timestamp,
        xref: XRef,
    ) {
        let seen = |role| Evidence {
            role,
            conn: ctx.id,
            broker: ctx.broker,
            xref,
            offset: None,
        };
        let key = (client_id.clone(), ctx.client.ip, topic.clone(), p.acks);
        let full = self.producers.len() >= self.max;
        let w = match self.producers.entry(key) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(_) if full => {
                self.dropped += 1;
                return;
            }
            Entry::Vacant(v) => v.insert(WeakProducer {
                client_id: cid.map(str::to_string),
                ctx: ctx.clone(),
                topic,
                acks: p.acks,
                requests: 0,
                records: 0,
                idempotent: false,
                transactional: false,
                first_ts: ts,
                last_ts: ts,
                partitions: BTreeMap::new(),
                reported: None,
                first: seen("first"),
                last: seen("last"),
            }),
        };
        w.last = seen("last");
        w.requests += 1;
        w.last_ts = ts;
        w.transactional |= p.transactional_id.is_some();
        for part in &t.partitions {
            let e = w.partitions.entry(part.partition).or_insert((ts, ts));
            e.1 = ts;
            for b in &part.batches {
                w.records += b.record_count.max(0) as u64;
                w.idempotent |= b.producer_id >= 0;
                w.transactional |= b.transactional;
            }
        }
    }

    /// The alerts due at packet time `now` (all of them at the end: `now` None), each with its
    /// incident: producers first seen more than `report_after_s` ago not yet reported, or reported as
    /// a warning and now critical.
    pub fn due(
        &mut self,
        cfg: &WeakAcksConfig,
        cluster: &Cluster,
        now: Option<Timestamp>,
    ) -> Vec<(Alert, Condition)> {
        let after = (cfg.report_after_s as i64).saturating_mul(1_000_000_000);
        let mut due = Vec::new();
        for (k, w) in self.producers.iter_mut() {
            if now.is_some_and(|t| t.nanos_since(w.first_ts) < after) {
                continue;
            }
            if w.reported == Some(Severity::Critical) {
                continue;
            }
            if let Some(a) = finish(cfg, w, cluster) {
                if w.reported.is_none() || a.severity > w.reported.unwrap_or(a.severity) {
                    w.reported = Some(a.severity);
                    due.push((k, a, condition(w)));
                }
            }
        }
        due.sort_unstable_by(|a, b| a.0.cmp(b.0));
        due.into_iter().map(|(_, a, c)| (a, c)).collect()
    }
}

/// Produce traffic of one (client, topic, acks).
#[derive(Debug, Clone)]
pub struct WeakProducer {
    pub client_id: Option<String>,
    pub ctx: ConnCtx,
    pub topic: Name,
    pub acks: i16,
    pub requests: u64,
    pub records: u64,
    pub idempotent: bool,
    pub transactional: bool,
    pub first_ts: Timestamp,
    pub last_ts: Timestamp,
    /// First and last produce time per partition.
    pub partitions: BTreeMap<i32, (Timestamp, Timestamp)>,
    /// Severity of the alert already raised for this producer (a long-running agent raises it after
    /// `report_after_s` of packet time, then again only if it becomes critical).
    pub reported: Option<Severity>,
    /// The first and the latest weak-acks Produce (the alert's evidence).
    pub first: Evidence,
    pub last: Evidence,
}

pub fn finish(cfg: &WeakAcksConfig, p: &WeakProducer, cluster: &Cluster) -> Option<Alert> {
    if !cfg.enabled || (p.acks == 0 && !cfg.acks0) || (p.acks == 1 && !cfg.acks1) {
        return None;
    }
    let window = (cfg.leader_change_window_s as i64).saturating_mul(1_000_000_000);
    let overlap = p.partitions.iter().find_map(|(part, (from, to))| {
        let tp = Tp::new(&p.topic, *part);
        cluster
            .leader_change_near(&tp, *from, *to, window)
            .map(|ts| (*part, ts))
    });
    let sev = if overlap.is_some() {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let risk = if p.acks == 0 {
        "acks=0: the producer never learns whether a record was written"
    } else {
        "acks=1: a record acknowledged by the leader alone is lost if the leader fails before followers copy it"
    };
    let mut explanation = format!(
        "{} produced {} requests to topic {} with {}",
        p.client_id.as_deref().unwrap_or("(no client id)"),
        p.requests,
        p.topic,
        risk
    );
    if let Some((part, ts)) = overlap {
        explanation.push_str(&format!(
            "; partition {part} changed leader at {} while it was producing",
            ts.to_rfc3339()
        ));
    }
    let mut a = Alert::new(AlertKind::WeakAcks, sev, p.first_ts, explanation)
        .on(&p.ctx, p.client_id.as_deref())
        .field("acks", p.acks)
        .field("idempotent", p.idempotent)
        .field("transactional", p.transactional)
        .field("requests", p.requests)
        .field("records", p.records)
        .field("first_ts", p.first_ts.to_rfc3339())
        .field("last_ts", p.last_ts.to_rfc3339())
        .field(
            "partitions",
            p.partitions.keys().copied().collect::<Vec<i32>>(),
        );
    a.topic = Some(p.topic.clone());
    a = a.evidence(p.first);
    if p.last.xref != p.first.xref {
        a = a.evidence(p.last);
    }
    if let Some((part, ts)) = overlap {
        a = a
            .field("leader_change_partition", part)
            .field("leader_change_ts", ts.to_rfc3339());
    }
    Some(a)
}

/// The incident: one producer (client id, host) writing one topic with one weak acks value.
pub fn condition(p: &WeakProducer) -> Condition {
    Condition {
        key: IncidentKey::new(
            AlertKind::WeakAcks,
            format!(
                "client={:?}@{} topic={:?} acks={}",
                p.client_id.as_deref().unwrap_or_default(),
                p.ctx.client.ip,
                p.topic,
                p.acks
            ),
        ),
        harm: Harm::New,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{ctx, t};

    fn producer(acks: i16) -> WeakProducer {
        WeakProducer {
            client_id: Some("p".into()),
            ctx: ctx(),
            topic: "orders".into(),
            acks,
            requests: 3,
            records: 30,
            idempotent: false,
            transactional: false,
            first_ts: t(10),
            last_ts: t(20),
            partitions: [(0, (t(10), t(20)))].into_iter().collect(),
            reported: None,
            first: Evidence {
                role: "first",
                conn: 1,
                broker: ctx().broker,
                xref: XRef::default(),
                offset: None,
            },
            last: Evidence {
                role: "last",
                conn: 1,
                broker: ctx().broker,
                xref: XRef::default(),
                offset: None,
            },
        }
    }

    #[test]
    fn warning_without_leader_change_critical_with_one() {
        let mut cluster = Cluster::new(100);
        let a = finish(&WeakAcksConfig::default(), &producer(1), &cluster).unwrap();
        assert_eq!(a.severity, Severity::Warning);
        assert_eq!(a.fields["requests"], 3);
        cluster.on_leader_moved(&Tp::new("orders", 0), t(15), None);
        let a = finish(&WeakAcksConfig::default(), &producer(1), &cluster).unwrap();
        assert_eq!(a.severity, Severity::Critical);
        assert_eq!(a.fields["leader_change_partition"], 0);
    }

    #[test]
    fn quiet_when_disabled_for_that_acks() {
        let cfg = WeakAcksConfig {
            acks0: false,
            ..WeakAcksConfig::default()
        };
        assert!(finish(&cfg, &producer(0), &Cluster::new(10)).is_none());
        assert!(finish(&cfg, &producer(1), &Cluster::new(10)).is_some());
    }
}
