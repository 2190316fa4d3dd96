//! `acknowledged_then_lost`: records the broker acknowledged to a producer are gone from the log. Not a
//! risk (that is `weak_acks`) but the proof: per partition the offsets acknowledged to producers are
//! remembered (a Produce response's base offset plus the batch's record count, with the acks used, the
//! broker that answered and the leader epoch known then), and the partition's end of log is watched. The
//! records are gone when
//! - the partition's leader later tells an end of log below them (ListOffsets latest, a Fetch high
//!   watermark; the request sent after the acknowledgement arrived), or
//! - OffsetForLeaderEpoch says the epoch they were acknowledged in ends before them, or
//! - a Produce response hands out their offsets again (a base offset at or below an offset acknowledged
//!   before that request was sent): the log was cut and refilled.
//!
//! `critical`, with the producers, acks, offsets lost (first..last, count), leaders and epochs before and
//! after. `info` when a DeleteTopics / DeleteRecords seen on the wire between the acknowledgement and the
//! proof explains it (a deliberate deletion), naming the client that deleted.
//!
//! Easy to get wrong:
//! - acks=1 (and acks=0 answered) records are not replicated when acknowledged: the high watermark is
//!   allowed to stay below them until followers copy them. Such a span counts only once an end at or above
//!   it was told by the leader (it was replicated), or when its offsets are handed out again; acks=all
//!   records are below the high watermark when acknowledged, so any lower end told afterwards is proof;
//! - one agent may see two clusters with the same topic names: a span is compared only with what a broker
//!   of its own cluster says (the same address, or the same cluster id from Metadata);
//! - a newly elected leader's high watermark may lag its predecessor's for a moment: a lower end told
//!   by ListOffsets / Fetch proves loss only of spans acknowledged in the epoch it tells (or when either
//!   epoch is unknown); across epochs OffsetForLeaderEpoch and a reuse of the offsets are the proof;
//! - only the partition's leader tells the truth about the end of log: a follower serving reads (KIP-392)
//!   lags by design. The leader is the cluster view's (Metadata); when unknown, the broker that
//!   acknowledged the records is trusted;
//! - the read_committed end (last stable offset) is below open transactions: transactional records are
//!   never compared with it;
//! - an idempotent producer's retry of a batch already written is answered with the batch's original base
//!   offset: the same producer id and sequence at the same offset is a duplicate, not a reuse;
//! - bounded: `max_acked_partitions` partitions (past it not tracked, counted), [`MAX_SPANS`] spans each
//!   (contiguous batches of one producer, acks, leader and epoch merge into one span; past the bound the
//!   oldest span is forgotten, counted), [`MAX_DELETIONS`] deletions remembered. Hot path: one hash
//!   lookup per partition answer, no string formatting; the leader check runs only when a span is at stake.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use kwire_flow::{Endpoint, Timestamp};

use crate::analysis::incident::{Condition, Harm, IncidentKey};
use crate::model::{same_name, Name, Tp};
use crate::output::alert::{Alert, AlertKind, Evidence, Severity};

/// Spans of acknowledged offsets kept per partition.
pub const MAX_SPANS: usize = 32;

/// Deletions (DeleteTopics topics, DeleteRecords partitions) remembered, the most recent ones.
pub const MAX_DELETIONS: usize = 1024;

/// Who produced, and how: the part of a span that must be equal for two batches to merge.
#[derive(Debug, Clone)]
pub struct Producer {
    pub client_id: Name,
    pub client: Endpoint,
    pub acks: i16,
    /// The broker that acknowledged (the leader then).
    pub leader: Endpoint,
    pub epoch: Option<i32>,
    pub producer_id: i64,
    pub transactional: bool,
}

/// Compared on every acknowledgement (does the batch extend the last span?): the numbers first, the
/// client id by pointer before bytes (one connection's acknowledgements share its id).
impl PartialEq for Producer {
    fn eq(&self, o: &Self) -> bool {
        self.producer_id == o.producer_id
            && self.acks == o.acks
            && self.epoch == o.epoch
            && self.transactional == o.transactional
            && self.client == o.client
            && self.leader == o.leader
            && same_name(&self.client_id, &o.client_id)
    }
}

/// Contiguous offsets acknowledged to one producer by one leader.
#[derive(Debug, Clone)]
pub struct Span {
    pub first: i64,
    /// One past the last acknowledged offset.
    pub end: i64,
    pub who: Producer,
    /// Sequence of the first batch and one past the last (idempotent producers; -1 otherwise).
    pub seq_first: i32,
    pub seq_end: i32,
    /// When the first and the last acknowledgement arrived.
    pub first_ts: Timestamp,
    pub last_ts: Timestamp,
    /// Known replicated: acks=all, or an end at or above `end` told by the leader since.
    pub confirmed: bool,
    /// The Produce whose answer acknowledged the span's first offsets (the alert's evidence).
    pub acked_by: Option<Evidence>,
}

/// One acknowledged batch (or several, of one partition in one request).
#[derive(Debug, Clone)]
pub struct Ack {
    pub base_offset: i64,
    pub records: i64,
    pub who: Producer,
    pub base_sequence: i32,
    /// When the Produce request was sent and its response arrived.
    pub request_ts: Timestamp,
    pub ts: Timestamp,
    /// The Produce exchange, as evidence names it.
    pub evidence: Option<Evidence>,
}

/// What told the end of log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Told {
    ListOffsets,
    FetchHwm,
    OffsetForLeaderEpoch,
    /// A Produce response handing out the offsets again.
    ProduceReuse,
}

impl Told {
    pub fn as_str(self) -> &'static str {
        match self {
            Told::ListOffsets => "listoffsets",
            Told::FetchHwm => "fetch_hwm",
            Told::OffsetForLeaderEpoch => "offset_for_leader_epoch",
            Told::ProduceReuse => "produce_base_offset",
        }
    }
}

/// A told end of log, as the detector needs it.
#[derive(Debug, Clone)]
pub struct EndTold {
    pub end: i64,
    pub source: Told,
    /// The read_committed end (last stable offset): transactional spans are not compared with it.
    pub committed_series: bool,
    pub broker: Endpoint,
    pub epoch: Option<i32>,
    /// When the request that asked was sent (only acknowledgements that arrived before it count) and
    /// when the answer arrived.
    pub request_ts: Timestamp,
    pub ts: Timestamp,
    pub client_id: Name,
    pub client: Endpoint,
}

/// A deliberate deletion seen on the wire.
#[derive(Debug, Clone)]
pub struct Deletion {
    pub ts: Timestamp,
    pub topic: Name,
    /// DeleteRecords: the partition and the offset records were deleted before; None for DeleteTopics.
    pub records: Option<(i32, i64)>,
    pub client_id: Name,
    pub client: Endpoint,
    /// The DeleteTopics / DeleteRecords exchange.
    pub evidence: Option<Evidence>,
}

/// Records proven gone.
#[derive(Debug, Clone)]
pub struct Loss {
    pub tp: Tp,
    /// The lost spans (each cut to its lost part), in offset order.
    pub lost: Vec<Span>,
    pub told: EndTold,
    pub deletion: Option<Deletion>,
}

impl Loss {
    pub fn first_lost(&self) -> i64 {
        self.lost.iter().map(|s| s.first).min().unwrap_or(0)
    }
    pub fn last_lost(&self) -> i64 {
        self.lost
            .iter()
            .map(|s| s.end.saturating_sub(1))
            .max()
            .unwrap_or(0)
    }
    pub fn records(&self) -> i64 {
        self.lost
            .iter()
            .fold(0i64, |t, s| t.saturating_add(s.end.saturating_sub(s.first)))
    }
}

/// The detector's state: acknowledged spans per partition and recent deletions.
#[derive(Debug, Default)]
pub struct AckLedger {
    parts: FxHashMap<Tp, VecDeque<Span>>,
    deletions: VecDeque<Deletion>,
    max_parts: usize,
    /// Partitions not tracked because `max_acked_partitions` were.
    pub partitions_dropped: u64,
    /// Spans forgotten (oldest first) because a partition had [`MAX_SPANS`].
    pub spans_forgotten: u64,
}

impl AckLedger {
    pub fn new(max_parts: usize) -> Self {
        AckLedger {
            max_parts,
            ..Default::default()
        }
    }

    /// Whether acknowledged offsets of `tp` are remembered (one hash lookup: the hot path's check).
    pub fn watching(&self, tp: &Tp) -> bool {
        self.parts.contains_key(tp)
    }

    /// A DeleteTopics or DeleteRecords request (answered without error, or not answered).
    pub fn on_deletion(&mut self, d: Deletion) {
        if self.deletions.len() >= MAX_DELETIONS {
            self.deletions.pop_front();
        }
        self.deletions.push_back(d);
    }

    /// A Produce answer acknowledged `ack` on `tp`. Returns the records it proves lost when it hands out
    /// offsets acknowledged before (by a broker of the same cluster: `same_cluster`).
    pub fn on_ack(
        &mut self,
        tp: &Tp,
        ack: Ack,
        same_cluster: impl Fn(Endpoint, Endpoint) -> bool,
    ) -> Option<Loss> {
        if ack.base_offset < 0 || ack.records <= 0 {
            return None;
        }
        let mut loss = None;
        if let Some(spans) = self.parts.get_mut(tp) {
            let before =
                |s: &Span| s.last_ts < ack.request_ts && same_cluster(s.who.leader, ack.who.leader);
            let reused = spans.iter().any(|s| s.end > ack.base_offset && before(s));
            if reused && !is_duplicate(spans, &ack) {
                let told = EndTold {
                    end: ack.base_offset,
                    source: Told::ProduceReuse,
                    committed_series: false,
                    broker: ack.who.leader,
                    epoch: ack.who.epoch,
                    request_ts: ack.request_ts,
                    ts: ack.ts,
                    client_id: ack.who.client_id.clone(),
                    client: ack.who.client,
                };
                // Every span acknowledged before the request is cut, confirmed or not: the offsets were
                // handed out again.
                let lost = cut(spans, ack.base_offset, before);
                loss = self.loss(tp, lost, told);
            } else if reused {
                return None;
            }
        } else if self.parts.len() >= self.max_parts {
            self.partitions_dropped += 1;
            return None;
        }
        let spans = self.parts.entry(tp.clone()).or_default();
        let end = ack.base_offset.saturating_add(ack.records);
        let seq_end = if ack.base_sequence >= 0 {
            ack.base_sequence.wrapping_add(ack.records as i32)
        } else {
            -1
        };
        if let Some(last) = spans.back_mut() {
            if last.end == ack.base_offset
                && last.who == ack.who
                && (ack.base_sequence < 0 || last.seq_end == ack.base_sequence)
            {
                last.end = end;
                last.seq_end = seq_end;
                last.last_ts = ack.ts;
                return loss;
            }
        }
        if spans.len() >= MAX_SPANS {
            spans.pop_front();
            self.spans_forgotten += 1;
        }
        spans.push_back(Span {
            first: ack.base_offset,
            end,
            confirmed: ack.who.acks == -1,
            who: ack.who,
            seq_first: ack.base_sequence,
            seq_end,
            first_ts: ack.ts,
            last_ts: ack.ts,
            acked_by: ack.evidence,
        });
        loss
    }

    /// An end of log told for `tp`. `is_leader` says whether the telling broker leads the partition
    /// (None when the cluster view does not know); it is asked only when a span is at stake. Only spans
    /// acknowledged in the cluster of the telling broker (`same_cluster`) and in the leader epoch it
    /// tells (or either epoch unknown) can be proven lost this way: a newly elected leader's high
    /// watermark may lag its predecessor's for a moment, OffsetForLeaderEpoch and a reuse of the offsets
    /// prove those. `told` is built only when `tp` is watched: the hot path (every Fetch partition's high
    /// watermark) looks the partition up once.
    pub fn on_end(
        &mut self,
        tp: &Tp,
        told: impl FnOnce() -> EndTold,
        is_leader: impl FnOnce() -> Option<bool>,
        same_cluster: impl Fn(Endpoint, Endpoint) -> bool,
    ) -> Option<Loss> {
        let spans = self.parts.get_mut(tp)?;
        let told = told();
        let at_stake =
            |s: &Span| s.last_ts < told.request_ts && same_cluster(s.who.leader, told.broker);
        let same_epoch = |s: &Span| match (s.who.epoch, told.epoch) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        let below = spans
            .iter()
            .any(|s| s.confirmed && s.end > told.end && at_stake(s) && same_epoch(s));
        let to_confirm = spans
            .iter()
            .any(|s| !s.confirmed && s.end <= told.end && at_stake(s));
        if !below && !to_confirm {
            return None;
        }
        let trusted = match is_leader() {
            Some(l) => l,
            None => spans
                .iter()
                .any(|s| s.who.leader == told.broker && at_stake(s)),
        };
        if !trusted {
            return None;
        }
        for s in spans.iter_mut() {
            if !s.confirmed && s.end <= told.end && at_stake(s) {
                s.confirmed = true;
            }
        }
        if !below {
            return None;
        }
        let committed = told.committed_series;
        let lost = cut(spans, told.end, |s| {
            s.confirmed && at_stake(s) && same_epoch(s) && !(committed && s.who.transactional)
        });
        self.loss(tp, lost, told)
    }

    /// OffsetForLeaderEpoch (answered by the leader): `epoch` ends at `end`. Spans acknowledged in that
    /// epoch beyond it are gone.
    pub fn on_epoch_end(
        &mut self,
        tp: &Tp,
        epoch: i32,
        told: EndTold,
        same_cluster: impl Fn(Endpoint, Endpoint) -> bool,
    ) -> Option<Loss> {
        let spans = self.parts.get_mut(tp)?;
        let in_epoch = |s: &Span| {
            s.who.epoch == Some(epoch)
                && s.last_ts < told.request_ts
                && same_cluster(s.who.leader, told.broker)
        };
        if !spans.iter().any(|s| in_epoch(s) && s.end > told.end) {
            return None;
        }
        let lost = cut(spans, told.end, in_epoch);
        self.loss(tp, lost, told)
    }

    fn loss(&self, tp: &Tp, lost: Vec<Span>, told: EndTold) -> Option<Loss> {
        if lost.is_empty() {
            return None;
        }
        let since = lost.iter().map(|s| s.first_ts).min()?;
        let first = lost.iter().map(|s| s.first).min()?;
        let deletion = self
            .deletions
            .iter()
            .rev()
            .find(|d| {
                d.topic == tp.topic
                    && d.ts >= since
                    && d.ts <= told.ts
                    && d.records
                        .is_none_or(|(p, off)| p == tp.partition && (off < 0 || off > first))
            })
            .cloned();
        Some(Loss {
            tp: tp.clone(),
            lost,
            told,
            deletion,
        })
    }
}

/// Whether `ack` is an idempotent producer's retry of a batch already acknowledged at the same offset.
fn is_duplicate(spans: &VecDeque<Span>, ack: &Ack) -> bool {
    ack.who.producer_id >= 0
        && ack.base_sequence >= 0
        && spans.iter().any(|s| {
            s.who.producer_id == ack.who.producer_id
                && s.seq_first >= 0
                && ack.base_sequence >= s.seq_first
                && ack.base_sequence < s.seq_end
                && s.first + i64::from(ack.base_sequence - s.seq_first) == ack.base_offset
        })
}

/// Cuts the spans chosen by `which` at `end`: the parts at or above it are removed and returned.
fn cut(spans: &mut VecDeque<Span>, end: i64, which: impl Fn(&Span) -> bool) -> Vec<Span> {
    let mut lost = Vec::new();
    spans.retain_mut(|s| {
        if s.end <= end || !which(s) {
            return true;
        }
        let mut gone = s.clone();
        gone.first = gone.first.max(end);
        lost.push(gone);
        if s.first >= end {
            return false;
        }
        s.end = end;
        true
    });
    lost.sort_by_key(|s| s.first);
    lost
}

/// The incident: the lost offsets of one partition (each proof of new offsets is a new harm).
pub fn condition(l: &Loss) -> Condition {
    Condition {
        key: IncidentKey::new(
            AlertKind::AcknowledgedThenLost,
            format!(
                "topic={:?} partition={} first_lost={}",
                l.tp.topic,
                l.tp.partition,
                l.first_lost()
            ),
        ),
        harm: Harm::New,
    }
}

fn acks_str(acks: i16) -> &'static str {
    match acks {
        -1 => "all",
        0 => "0",
        1 => "1",
        _ => "other",
    }
}

/// The alert: named after the first producer whose records were lost, on the broker that told.
pub fn alert(l: &Loss) -> Alert {
    let first = &l.lost[0];
    let (first_lost, last_lost, records) = (l.first_lost(), l.last_lost(), l.records());
    let all = l.lost.iter().any(|s| s.who.acks == -1);
    let weak = l.lost.iter().any(|s| s.who.acks != -1);
    let why = match (&l.deletion, all, weak) {
        (Some(d), _, _) => format!(
            "explained by {} from {} at {}: a deliberate deletion",
            match d.records {
                None => "a DeleteTopics",
                Some(_) => "a DeleteRecords",
            },
            d.client_id,
            d.ts.to_rfc3339()
        ),
        (None, true, _) => {
            "acknowledged with acks=all: the broker broke its promise (an unclean leader \
             election, or a single replica that crashed before flushing)"
                .to_string()
        }
        (None, false, _) => {
            "acknowledged by the leader alone (acks=1): the producer's risk came true, the \
             records were lost with that leader's log"
                .to_string()
        }
    };
    let how = match l.told.source {
        Told::ProduceReuse => format!(
            "a Produce answer from {} handed out offset {} again",
            l.told.broker, l.told.end
        ),
        Told::OffsetForLeaderEpoch => format!(
            "OffsetForLeaderEpoch from {} says epoch {} ends at {}",
            l.told.broker,
            l.told.epoch.unwrap_or(-1),
            l.told.end
        ),
        Told::ListOffsets => format!(
            "ListOffsets(latest) from the leader {} answered {}",
            l.told.broker, l.told.end
        ),
        Told::FetchHwm => format!(
            "a Fetch response from the leader {} gave high watermark {}",
            l.told.broker, l.told.end
        ),
    };
    let text = format!(
        "{}: {records} record(s) at offsets {first_lost}..{last_lost} acknowledged to {} by {} are gone: \
         {how}; {why}",
        l.tp, first.who.client_id, first.who.leader
    );
    let sev = if l.deletion.is_some() {
        Severity::Info
    } else {
        Severity::Critical
    };
    let producers: Vec<serde_json::Value> = l
        .lost
        .iter()
        .map(|s| {
            serde_json::json!({
                "client_id": &*s.who.client_id,
                "client_addr": s.who.client.to_string(),
                "acks": s.who.acks,
                "first_offset": s.first,
                "last_offset": s.end.saturating_sub(1),
                "records": s.end.saturating_sub(s.first),
                "leader": s.who.leader.to_string(),
                "leader_epoch": s.who.epoch,
                "acknowledged_ts": s.first_ts.to_rfc3339(),
            })
        })
        .collect();
    let mut a = Alert::new(AlertKind::AcknowledgedThenLost, sev, l.told.ts, text).tp(&l.tp);
    a.client_id = Some(first.who.client_id.clone());
    a.client = Some(first.who.client);
    a.broker = Some(l.told.broker);
    a = a
        .field("acks", acks_str(first.who.acks))
        .field("first_lost_offset", first_lost)
        .field("last_lost_offset", last_lost)
        .field("lost_records", records)
        .field("producers", serde_json::Value::Array(producers))
        .field("acknowledged_ts", first.first_ts)
        .field("leader_before", first.who.leader.to_string())
        .field("leader_epoch_before", first.who.epoch)
        .field("told_end_offset", l.told.end)
        .field("told_by", l.told.source.as_str())
        .field("told_by_client_id", l.told.client_id.clone())
        .field("told_by_client_addr", l.told.client.to_string())
        .field("leader_after", l.told.broker.to_string())
        .field("leader_epoch_after", l.told.epoch);
    if let Some(d) = &l.deletion {
        a = a
            .field(
                "deleted_by",
                match d.records {
                    None => "delete_topics",
                    Some(_) => "delete_records",
                },
            )
            .field("deleted_by_client_id", d.client_id.clone())
            .field("deleted_by_client_addr", d.client.to_string())
            .field("deleted_ts", d.ts);
        if let Some(e) = d.evidence {
            a = a.evidence(e);
        }
    }
    // The Produce that acknowledged the first lost offsets; the engine adds the exchange that told less.
    if let Some(e) = first.acked_by {
        a = a.evidence(e);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{alert_json, broker_ep, client_ep, t};
    use std::net::{IpAddr, Ipv4Addr};

    fn who(acks: i16) -> Producer {
        Producer {
            client_id: "p".into(),
            client: client_ep(),
            acks,
            leader: broker_ep(),
            epoch: Some(3),
            producer_id: -1,
            transactional: false,
        }
    }

    fn ack(base: i64, records: i64, acks: i16, secs: i64) -> Ack {
        Ack {
            evidence: None,
            base_offset: base,
            records,
            who: who(acks),
            base_sequence: -1,
            request_ts: t(secs),
            ts: t(secs),
        }
    }

    fn end(offset: i64, secs: i64, source: Told) -> EndTold {
        EndTold {
            end: offset,
            source,
            committed_series: false,
            broker: broker_ep(),
            epoch: Some(3),
            request_ts: t(secs),
            ts: t(secs),
            client_id: "watch".into(),
            client: client_ep(),
        }
    }

    fn tp() -> Tp {
        Tp::new("orders", 0)
    }

    /// One cluster: every broker is of it.
    fn same(_: Endpoint, _: Endpoint) -> bool {
        true
    }

    #[test]
    fn fires_when_the_leader_tells_an_end_below_acks_all_records() {
        let mut l = AckLedger::new(10);
        for i in 0..5 {
            assert!(l.on_ack(&tp(), ack(i, 1, -1, 1 + i), same).is_none());
        }
        // One span 0..5 (merged).
        assert_eq!(l.parts[&tp()].len(), 1);
        // The end told as 5: nothing lost.
        assert!(l
            .on_end(&tp(), || end(5, 10, Told::ListOffsets), || Some(true), same)
            .is_none());
        let loss = l
            .on_end(&tp(), || end(2, 11, Told::ListOffsets), || Some(true), same)
            .expect("lost");
        assert_eq!(
            (loss.first_lost(), loss.last_lost(), loss.records()),
            (2, 4, 3)
        );
        let a = alert_json(&alert(&loss));
        assert_eq!(a["severity"], "critical");
        assert_eq!(a["acks"], "all");
        assert_eq!(a["client_id"], "p");
        assert_eq!(
            (
                &a["first_lost_offset"],
                &a["last_lost_offset"],
                &a["lost_records"]
            ),
            (&2.into(), &4.into(), &3.into())
        );
        assert_eq!(
            (&a["leader_epoch_before"], &a["leader_epoch_after"]),
            (&3.into(), &3.into())
        );
        assert!(a["explanation"].as_str().unwrap().contains("acks=all"));
        // Told again: already reported (cut from the ledger).
        assert!(l
            .on_end(&tp(), || end(2, 12, Told::ListOffsets), || Some(true), same)
            .is_none());
    }

    #[test]
    fn quiet_on_a_follower_a_request_older_than_the_ack_and_unreplicated_acks1() {
        let mut l = AckLedger::new(10);
        l.on_ack(&tp(), ack(0, 5, -1, 5), same);
        // A follower (KIP-392) lags by design.
        assert!(l
            .on_end(&tp(), || end(2, 10, Told::FetchHwm), || Some(false), same)
            .is_none());
        // A new leader (epoch 4) whose high watermark lags for a moment: not proof.
        let mut newer = end(2, 10, Told::FetchHwm);
        newer.epoch = Some(4);
        assert!(l.on_end(&tp(), || newer, || Some(true), same).is_none());
        // A broker of another cluster with the same topic name: not compared.
        assert!(l
            .on_end(
                &tp(),
                || end(2, 10, Told::ListOffsets),
                || None,
                |_, _| false
            )
            .is_none());
        // A ListOffsets sent before the acknowledgement arrived.
        assert!(l
            .on_end(&tp(), || end(2, 4, Told::ListOffsets), || Some(true), same)
            .is_none());
        // acks=1 records above the high watermark: not replicated yet, normal.
        l.on_ack(&tp(), ack(5, 3, 1, 6), same);
        assert!(l
            .on_end(&tp(), || end(5, 7, Told::FetchHwm), || Some(true), same)
            .is_none());
        // Once the leader told 8, the acks=1 span was replicated; a later 6 proves loss of 6, 7.
        assert!(l
            .on_end(&tp(), || end(8, 8, Told::FetchHwm), || Some(true), same)
            .is_none());
        let loss = l
            .on_end(&tp(), || end(6, 9, Told::FetchHwm), || Some(true), same)
            .unwrap();
        assert_eq!((loss.first_lost(), loss.last_lost()), (6, 7));
        let a = alert_json(&alert(&loss));
        assert_eq!(a["acks"], "1");
        assert!(a["explanation"].as_str().unwrap().contains("acks=1"));
    }

    #[test]
    fn offsets_handed_out_again_prove_loss_and_a_deletion_makes_it_info() {
        let mut l = AckLedger::new(10);
        for i in 0..5 {
            l.on_ack(&tp(), ack(i, 1, -1, 1 + i), same);
        }
        l.on_deletion(Deletion {
            evidence: None,
            ts: t(20),
            topic: "orders".into(),
            records: None,
            client_id: "admin".into(),
            client: Endpoint::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9)), 5000),
        });
        let loss = l.on_ack(&tp(), ack(0, 1, -1, 30), same).expect("reused");
        assert_eq!(
            (loss.first_lost(), loss.last_lost(), loss.records()),
            (0, 4, 5)
        );
        let a = alert_json(&alert(&loss));
        assert_eq!(a["severity"], "info");
        assert_eq!(a["deleted_by"], "delete_topics");
        assert_eq!(a["deleted_by_client_id"], "admin");
        assert_eq!(a["told_by"], "produce_base_offset");
        // The new record is remembered, the old ones are not.
        assert_eq!(l.parts[&tp()].len(), 1);
        assert_eq!(l.parts[&tp()][0].first, 0);
        assert_eq!(l.parts[&tp()][0].first_ts, t(30));
    }

    #[test]
    fn quiet_when_a_topic_is_deleted_before_anything_was_produced() {
        let mut l = AckLedger::new(10);
        l.on_deletion(Deletion {
            evidence: None,
            ts: t(1),
            topic: "orders".into(),
            records: None,
            client_id: "admin".into(),
            client: client_ep(),
        });
        assert!(l.on_ack(&tp(), ack(0, 1, -1, 2), same).is_none());
        assert!(l.on_ack(&tp(), ack(1, 1, -1, 3), same).is_none());
        assert!(l
            .on_end(&tp(), || end(2, 4, Told::ListOffsets), || Some(true), same)
            .is_none());
    }

    #[test]
    fn an_idempotent_duplicate_is_not_a_reuse() {
        let mut l = AckLedger::new(10);
        let mut a = ack(0, 5, -1, 1);
        a.who.producer_id = 7;
        a.base_sequence = 0;
        l.on_ack(&tp(), a.clone(), same);
        let mut again = ack(0, 5, -1, 2);
        again.who.producer_id = 7;
        again.base_sequence = 0;
        assert!(l.on_ack(&tp(), again, same).is_none());
        assert_eq!(l.parts[&tp()][0].end, 5);
    }

    #[test]
    fn offset_for_leader_epoch_ends_the_epoch_before_acknowledged_records() {
        let mut l = AckLedger::new(10);
        l.on_ack(&tp(), ack(0, 10, -1, 1), same);
        // Epoch 2 says nothing about records acknowledged in epoch 3.
        assert!(l
            .on_epoch_end(&tp(), 2, end(4, 5, Told::OffsetForLeaderEpoch), same)
            .is_none());
        let loss = l
            .on_epoch_end(&tp(), 3, end(7, 5, Told::OffsetForLeaderEpoch), same)
            .unwrap();
        assert_eq!((loss.first_lost(), loss.last_lost()), (7, 9));
    }

    #[test]
    fn bounded_partitions_and_spans_are_counted() {
        let mut l = AckLedger::new(1);
        l.on_ack(&tp(), ack(0, 1, -1, 1), same);
        l.on_ack(&Tp::new("other", 0), ack(0, 1, -1, 1), same);
        assert_eq!(l.partitions_dropped, 1);
        for i in 0..(MAX_SPANS as i64 + 3) {
            // Gaps between batches: one span each.
            l.on_ack(&tp(), ack(10 + 2 * i, 1, -1, 2), same);
        }
        assert_eq!(l.parts[&tp()].len(), MAX_SPANS);
        assert_eq!(l.spans_forgotten, 4);
    }
}
