//! `weak_acks`: Produce with acks=0 or acks=1. One alert per (client, topic, acks) with counts (`requests`,
//! and `records` sent: a retried record counts again, as it crossed the wire again), raised
//! `report_after_s` of packet time after the producer's first weak-acks request (counts so far) or at the
//! end of a replay, whichever comes first — the same in replay and live — and raised again only if it later
//! becomes critical. `critical` when the weak-acks traffic to a
//! partition overlaps a leader change of that partition (within `leader_change_window_s`): the window in
//! which acknowledged records are lost; `warning` otherwise. The critical line that follows a warning for
//! the same producer is a line of the same incident.

use std::collections::BTreeMap;

use kwire_flow::Timestamp;

use crate::alert::{Alert, AlertKind, Severity};
use crate::cluster::Cluster;
use crate::conn::ConnCtx;
use crate::detectors::WeakAcksConfig;
use crate::incident::{Condition, Harm, IncidentKey};
use crate::model::Tp;

/// Produce traffic of one (client, topic, acks).
#[derive(Debug, Clone)]
pub struct WeakProducer {
    pub client_id: Option<String>,
    pub ctx: ConnCtx,
    pub topic: String,
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
