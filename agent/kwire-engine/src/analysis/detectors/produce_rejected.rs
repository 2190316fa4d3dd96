//! `produce_rejected`: records a producer sent that never made it into the log. A Produce partition answer
//! with an error (non-retriable: MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE, INVALID_RECORD,
//! TOPIC_AUTHORIZATION_FAILED, ...; or retriable: NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS, ...), or no
//! answer at all (timeout, connection closed), puts the batch on a watch list; an acknowledgement of the
//! same batch later (a retry that succeeds, or an idempotent producer's DUPLICATE_SEQUENCE_NUMBER, which
//! says the batch is already in the log) takes it off quietly. A batch still not acknowledged
//! `resend_window_s` of packet time after its last failed attempt is reported, with the other batches of
//! the same producer, partition and error due then: one line with the batches and records that never
//! made it. At the end of a replay, batches refused with an error are reported too; unanswered ones only
//! when the capture went on for the window after them (otherwise it may simply have ended before the
//! answer).
//!
//! `warning`; `critical` for an acks=all producer that never re-sent the batch (the application asked
//! for the strongest guarantee and dropped the records on the first refusal).
//!
//! The same batch across retries: an idempotent producer's batch is its producer id and base sequence;
//! a producer without sequences re-sends the same bytes, so its batch is its header (CRC, record count,
//! first timestamp). Never the record bytes. An idempotent producer that bumps its epoch re-numbers its
//! batches (new sequence, new CRC): the record count and first timestamp still match, and a match there
//! also clears the watch (a collision only makes the detector quieter, never louder). So does the first
//! part of a batch the Java client split after MESSAGE_TOO_LARGE (same first timestamp, fewer records).
//!
//! Easy to get wrong: acks=0 requests are not answered by Apache Kafka, so no answer is normal there;
//! the decision is made on packet time only (`tick` and the end of input), never on arrival order of the
//! retry's request; the watch list is bounded (`max_rejected_batches`, past it not watched, counted), and
//! healthy traffic costs one emptiness check per partition answer.

use std::collections::BTreeMap;

use kwire_flow::Timestamp;

use crate::analysis::detectors::ProduceRejectedConfig;
use crate::analysis::incident::{Condition, Harm, IncidentKey};
use crate::model::{ClientKey, ConnCtx, Tp, XRef};
use crate::output::alert::{Alert, AlertKind, Evidence, Severity};

/// No answer (unanswered request) in place of an error code.
pub const NO_ANSWER: i16 = i16::MIN;

/// DUPLICATE_SEQUENCE_NUMBER: the batch is already in the log.
pub const DUPLICATE_SEQUENCE: i16 = kwire_kafka::body::error_code::DUPLICATE_SEQUENCE_NUMBER;

/// What identifies one batch across retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchId {
    pub producer_id: i64,
    pub base_sequence: i32,
    pub crc: u32,
    pub record_count: i32,
    pub first_timestamp: i64,
}

impl BatchId {
    /// Whether `acked`, acknowledged, takes this watched batch off the list: the same batch, or the
    /// first part of it split (the Java client splits a batch refused MESSAGE_TOO_LARGE and re-sends
    /// the parts: the first part starts with the same record, so the same first timestamp, and holds
    /// fewer records).
    fn cleared_by(&self, acked: &BatchId) -> bool {
        self.same(acked)
            || (self.record_count > 1
                && acked.record_count < self.record_count
                && acked.record_count > 0
                && acked.first_timestamp == self.first_timestamp)
    }

    fn same(&self, o: &BatchId) -> bool {
        if self.producer_id >= 0 && self.base_sequence >= 0 {
            (self.producer_id == o.producer_id && self.base_sequence == o.base_sequence)
                || (self.record_count == o.record_count
                    && self.first_timestamp == o.first_timestamp)
        } else {
            self.crc == o.crc
                && self.record_count == o.record_count
                && self.first_timestamp == o.first_timestamp
        }
    }
}

/// A batch waiting to be acknowledged.
#[derive(Debug, Clone)]
pub struct Watched {
    pub id: BatchId,
    pub ctx: ConnCtx,
    pub acks: i16,
    /// The last answer: an error code, or [`NO_ANSWER`].
    pub error: i16,
    /// Whether any attempt was answered with an error (decides the end-of-input report).
    pub refused: bool,
    pub attempts: u32,
    pub first_ts: Timestamp,
    pub last_ts: Timestamp,
    /// The first and the latest failed attempt (the alert's evidence).
    pub first: Evidence,
    pub last: Evidence,
}

/// The detector's state: watched batches per (producer, partition), bounded.
#[derive(Debug, Default)]
pub struct ProduceRejects {
    watched: BTreeMap<(ClientKey, Tp), Vec<Watched>>,
    count: usize,
    max: usize,
    /// The latest packet time seen (observations and ticks): at the end of input, unanswered batches
    /// older than the window by it are due too.
    now: Option<Timestamp>,
    /// Failed batches not watched because `max_rejected_batches` were.
    pub dropped: u64,
}

/// The outcome of one batch in one Produce exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Acknowledged,
    /// An error code or [`NO_ANSWER`].
    Failed(i16),
}

impl Outcome {
    /// From the partition's error code in the answer (None: no answer).
    pub fn of(error: Option<i16>) -> Outcome {
        match error {
            Some(kwire_kafka::body::error_code::NONE) | Some(DUPLICATE_SEQUENCE) => {
                Outcome::Acknowledged
            }
            Some(e) => Outcome::Failed(e),
            None => Outcome::Failed(NO_ANSWER),
        }
    }
}

impl ProduceRejects {
    pub fn new(max: usize) -> Self {
        ProduceRejects {
            max,
            ..Default::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// One batch of one Produce exchange.
    #[allow(clippy::too_many_arguments)]
    pub fn observe(
        &mut self,
        client: &ClientKey,
        tp: &Tp,
        id: BatchId,
        outcome: Outcome,
        ctx: &ConnCtx,
        acks: i16,
        ts: Timestamp,
        xref: XRef,
    ) {
        let attempt = |role| Evidence {
            role,
            conn: ctx.id,
            broker: ctx.broker,
            xref,
            offset: None,
        };
        if self.now.is_none_or(|n| ts > n) {
            self.now = Some(ts);
        }
        match outcome {
            Outcome::Acknowledged => {
                if self.count == 0 {
                    return;
                }
                let key = (client.clone(), tp.clone());
                if let Some(v) = self.watched.get_mut(&key) {
                    let before = v.len();
                    v.retain(|w| !w.id.cleared_by(&id));
                    self.count -= before - v.len();
                    if v.is_empty() {
                        self.watched.remove(&key);
                    }
                }
            }
            Outcome::Failed(error) => {
                if error == NO_ANSWER && acks == 0 {
                    return;
                }
                let key = (client.clone(), tp.clone());
                if let Some(w) = self
                    .watched
                    .get_mut(&key)
                    .and_then(|v| v.iter_mut().find(|w| w.id.same(&id)))
                {
                    w.attempts += 1;
                    w.error = error;
                    w.refused |= error != NO_ANSWER;
                    w.last_ts = w.last_ts.max(ts);
                    w.ctx = ctx.clone();
                    w.last = attempt("last_attempt");
                    return;
                }
                if self.count >= self.max {
                    self.dropped += 1;
                    return;
                }
                self.count += 1;
                self.watched.entry(key).or_default().push(Watched {
                    id,
                    ctx: ctx.clone(),
                    acks,
                    error,
                    refused: error != NO_ANSWER,
                    attempts: 1,
                    first_ts: ts,
                    last_ts: ts,
                    first: attempt("first_attempt"),
                    last: attempt("last_attempt"),
                });
            }
        }
    }

    /// The alerts due at packet time `now` (None: the end of input), each with its incident: batches
    /// not acknowledged `resend_window_s` after their last failure (at the end, every refused batch).
    pub fn due(
        &mut self,
        cfg: &ProduceRejectedConfig,
        now: Option<Timestamp>,
    ) -> Vec<(Alert, Condition)> {
        if let Some(t) = now {
            if self.now.is_none_or(|n| t > n) {
                self.now = Some(t);
            }
        }
        if self.count == 0 {
            return Vec::new();
        }
        let window = (cfg.resend_window_s as i64).saturating_mul(Timestamp::NANOS_PER_SEC);
        let latest = self.now;
        let is_due = |w: &Watched| {
            let waited = latest.is_some_and(|t| t.nanos_since(w.last_ts) >= window);
            match now {
                Some(_) => waited,
                None => w.refused || waited,
            }
        };
        // Grouped by producer, partition, error and severity, in key order (deterministic).
        let mut groups: BTreeMap<(ClientKey, Tp, i16, bool), Vec<Watched>> = BTreeMap::new();
        let mut removed = 0;
        self.watched.retain(|(client, tp), v| {
            let mut keep = Vec::new();
            for w in v.drain(..) {
                if is_due(&w) {
                    let critical = w.acks == -1 && w.attempts == 1;
                    groups
                        .entry((client.clone(), tp.clone(), w.error, critical))
                        .or_default()
                        .push(w);
                    removed += 1;
                } else {
                    keep.push(w);
                }
            }
            *v = keep;
            !v.is_empty()
        });
        self.count -= removed;
        groups
            .into_iter()
            .map(|((client, tp, error, critical), ws)| {
                let a = alert(&client, &tp, error, critical, &ws);
                let cond = Condition {
                    key: IncidentKey::new(
                        AlertKind::ProduceRejected,
                        format!(
                            "client={:?}@{} topic={:?} partition={} error={}",
                            client.client_id,
                            client.host,
                            tp.topic,
                            tp.partition,
                            error_str(error)
                        ),
                    ),
                    harm: Harm::New,
                };
                (a, cond)
            })
            .collect()
    }
}

fn error_str(e: i16) -> &'static str {
    if e == NO_ANSWER {
        "NO_ANSWER"
    } else {
        kwire_kafka::body::error_name(e)
    }
}

/// Errors after which a producer retries on its own (Kafka's RetriableException family).
pub fn retriable(e: i16) -> bool {
    use kwire_kafka::body::error_code::*;
    matches!(
        e,
        NO_ANSWER
            | UNKNOWN_TOPIC_OR_PARTITION
            | LEADER_NOT_AVAILABLE
            | NOT_LEADER_OR_FOLLOWER
            | REQUEST_TIMED_OUT
            | BROKER_NOT_AVAILABLE
            | REPLICA_NOT_AVAILABLE
            | NETWORK_EXCEPTION
            | NOT_ENOUGH_REPLICAS
            | NOT_ENOUGH_REPLICAS_AFTER_APPEND
            | KAFKA_STORAGE_ERROR
            | FENCED_LEADER_EPOCH
            | UNKNOWN_LEADER_EPOCH
            | THROTTLING_QUOTA_EXCEEDED
    )
}

fn alert(client: &ClientKey, tp: &Tp, error: i16, critical: bool, ws: &[Watched]) -> Alert {
    let last = ws.iter().max_by_key(|w| w.last_ts).unwrap_or(&ws[0]);
    let records: i64 = ws.iter().map(|w| i64::from(w.id.record_count.max(0))).sum();
    let attempts = ws.iter().map(|w| w.attempts).max().unwrap_or(1);
    let first_ts = ws.iter().map(|w| w.first_ts).min().unwrap_or(last.first_ts);
    let idempotent = ws.iter().any(|w| w.id.producer_id >= 0);
    let acks = last.acks;
    let what = if error == NO_ANSWER {
        "was never answered (timeout or connection closed)".to_string()
    } else {
        format!("was refused with {}", error_str(error))
    };
    let after = if attempts > 1 {
        format!("after {attempts} attempts")
    } else {
        "and was never sent again".to_string()
    };
    let text = format!(
        "{tp}: {records} record(s) in {} batch(es) from {} {what} {after}; never acknowledged{}",
        ws.len(),
        client.client_id,
        if critical {
            ": an acks=all producer dropped them on the first refusal"
        } else {
            ""
        }
    );
    let sev = if critical {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let mut a = Alert::new(AlertKind::ProduceRejected, sev, last.last_ts, text)
        .on(&last.ctx, Some(&client.client_id))
        .tp(tp)
        .field("error", error_str(error))
        .field("retriable", retriable(error))
        .field("acks", acks)
        .field("batches", ws.len())
        .field("records", records)
        .field("attempts", attempts)
        .field("resent", attempts > 1)
        .field("idempotent", idempotent)
        .field("first_ts", first_ts)
        .field("last_ts", last.last_ts);
    // The first failed attempt of the batches, and the latest (when it is another exchange).
    let first = ws.iter().min_by_key(|w| w.first_ts).unwrap_or(last);
    a = a.evidence(first.first);
    if last.last.xref != first.first.xref {
        a = a.evidence(last.last);
    }
    if error != NO_ANSWER {
        a = a.field("error_code", error);
    }
    if idempotent {
        let seqs: Vec<i64> = ws.iter().map(|w| i64::from(w.id.base_sequence)).collect();
        a = a
            .field("producer_id", last.id.producer_id)
            .field("base_sequences", seqs);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{alert_json, ctx, t};

    fn id(crc: u32) -> BatchId {
        BatchId {
            producer_id: -1,
            base_sequence: -1,
            crc,
            record_count: 3,
            first_timestamp: 1_700_000_000_000,
        }
    }

    fn client() -> ClientKey {
        ClientKey {
            client_id: "p".into(),
            host: ctx().client.ip,
        }
    }

    fn tp() -> Tp {
        Tp::new("orders", 1)
    }

    fn cfg() -> ProduceRejectedConfig {
        ProduceRejectedConfig::default()
    }

    #[test]
    fn a_refused_batch_never_resent_fires_critical_for_acks_all() {
        let mut r = ProduceRejects::new(10);
        r.observe(
            &client(),
            &tp(),
            id(1),
            Outcome::of(Some(10)),
            &ctx(),
            -1,
            t(5),
            XRef::default(),
        );
        assert!(r.due(&cfg(), Some(t(30))).is_empty(), "within the window");
        let due = r.due(&cfg(), Some(t(65)));
        assert_eq!(due.len(), 1);
        let a = alert_json(&due[0].0);
        assert_eq!(a["severity"], "critical");
        assert_eq!(a["error"], "MESSAGE_TOO_LARGE");
        assert_eq!(a["error_code"], 10);
        assert_eq!(a["retriable"], false);
        assert_eq!((&a["records"], &a["batches"]), (&3.into(), &1.into()));
        assert_eq!(
            (&a["topic"], &a["partition"]),
            (&"orders".into(), &1.into())
        );
        assert!(r.is_empty());
    }

    #[test]
    fn quiet_when_the_retry_succeeds_or_the_answer_is_duplicate_sequence() {
        let mut r = ProduceRejects::new(10);
        r.observe(
            &client(),
            &tp(),
            id(1),
            Outcome::of(Some(19)),
            &ctx(),
            -1,
            t(1),
            XRef::default(),
        );
        r.observe(
            &client(),
            &tp(),
            id(1),
            Outcome::of(Some(0)),
            &ctx(),
            -1,
            t(2),
            XRef::default(),
        );
        assert!(r.is_empty());
        let mut idem = id(9);
        idem.producer_id = 42;
        idem.base_sequence = 7;
        r.observe(
            &client(),
            &tp(),
            idem,
            Outcome::of(None),
            &ctx(),
            -1,
            t(3),
            XRef::default(),
        );
        // Re-sent after an epoch bump: new sequence and CRC, same count and first timestamp.
        let mut again = idem;
        again.base_sequence = 0;
        again.crc = 5;
        r.observe(
            &client(),
            &tp(),
            again,
            Outcome::of(Some(46)),
            &ctx(),
            -1,
            t(4),
            XRef::default(),
        );
        assert!(r.is_empty());
        assert!(r.due(&cfg(), None).is_empty());
        // acks=0 with no answer is normal.
        r.observe(
            &client(),
            &tp(),
            id(2),
            Outcome::of(None),
            &ctx(),
            0,
            t(5),
            XRef::default(),
        );
        assert!(r.is_empty());
    }

    #[test]
    fn a_retried_batch_still_failing_is_a_warning_and_unanswered_waits_at_the_end() {
        let mut r = ProduceRejects::new(10);
        r.observe(
            &client(),
            &tp(),
            id(1),
            Outcome::of(Some(6)),
            &ctx(),
            -1,
            t(1),
            XRef::default(),
        );
        r.observe(
            &client(),
            &tp(),
            id(1),
            Outcome::of(Some(6)),
            &ctx(),
            -1,
            t(2),
            XRef::default(),
        );
        r.observe(
            &client(),
            &tp(),
            id(3),
            Outcome::of(None),
            &ctx(),
            1,
            t(2),
            XRef::default(),
        );
        let due = r.due(&cfg(), None);
        assert_eq!(
            due.len(),
            1,
            "the unanswered batch is not reported at the end"
        );
        let a = alert_json(&due[0].0);
        assert_eq!(a["severity"], "warning");
        assert_eq!((&a["attempts"], &a["resent"]), (&2.into(), &true.into()));
        assert_eq!(a["error"], "NOT_LEADER_OR_FOLLOWER");
        // Packet time goes on past the window (another producer's answer at 90 s): at the end the
        // unanswered batch is due too.
        assert!(r.due(&cfg(), Some(t(30))).is_empty());
        r.observe(
            &client(),
            &Tp::new("other", 0),
            id(8),
            Outcome::of(Some(0)),
            &ctx(),
            -1,
            t(90),
            XRef::default(),
        );
        let due = r.due(&cfg(), None);
        let a = alert_json(&due[0].0);
        assert_eq!(a["error"], "NO_ANSWER");
        assert!(a.get("error_code").is_none());
    }

    #[test]
    fn quiet_when_a_refused_batch_is_split_and_its_first_part_acknowledged() {
        let mut r = ProduceRejects::new(10);
        let mut big = id(1);
        big.record_count = 100;
        r.observe(
            &client(),
            &tp(),
            big,
            Outcome::of(Some(10)),
            &ctx(),
            -1,
            t(1),
            XRef::default(),
        );
        let mut part = id(2);
        part.record_count = 50;
        r.observe(
            &client(),
            &tp(),
            part,
            Outcome::of(Some(0)),
            &ctx(),
            -1,
            t(2),
            XRef::default(),
        );
        assert!(r.is_empty());
    }

    #[test]
    fn bounded_and_counted() {
        let mut r = ProduceRejects::new(1);
        r.observe(
            &client(),
            &tp(),
            id(1),
            Outcome::of(Some(10)),
            &ctx(),
            -1,
            t(1),
            XRef::default(),
        );
        r.observe(
            &client(),
            &tp(),
            id(2),
            Outcome::of(Some(10)),
            &ctx(),
            -1,
            t(1),
            XRef::default(),
        );
        assert_eq!(r.dropped, 1);
    }
}
