//! Incidents: repeated observations of one condition told as one story. A detector names the condition an
//! alert is about (its [`IncidentKey`]: the kind plus the detector's scope, e.g. client, partition and
//! end-of-log series for `listoffsets_regression`; group, member, partition and revocation for
//! `commit_after_revoke`) and says whether this observation is a new harm ([`Harm`]). The first observation
//! opens an incident and is an alert line; a new harm is another alert line of the same incident; the same
//! harm again is only counted. Every line carries `incident_id`, `occurrence` (observations so far,
//! this one included) and `incident_first_ts`; the summary lists each incident with its counts and
//! first/last times ([`IncidentReport`]).
//!
//! An incident closes when its detector says the condition ended (`recovered`), after `quiet_s` of packet
//! time without an observation (`quiet`), when the table is full and it is the one quiet the longest
//! (`evicted`, counted), or at the end of input (`end_of_input`). The next observation after a close opens
//! a new incident.
//!
//! Easy to get wrong: time is packet time only (the quiet check runs on every observation and on the
//! engine's tick, never on a clock); the id must not depend on hash-map order (it is the first
//! occurrence's timestamp and an open counter); a repeat is still an occurrence (it moves `last_ts` and
//! keeps the incident open) but never reaches the output as a line, so the summary's alert counts are
//! lines, and `repeats` says how many observations were folded into them. Both tables are bounded.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use kwire_flow::Timestamp;

use crate::output::alert::{Alert, AlertKind, Severity};

/// How repeated observations are grouped (the `[detectors.incidents]` table of the config file).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IncidentConfig {
    /// An incident without a new observation for this long (packet time) is closed. Default 300.
    pub quiet_s: u64,
    /// Incidents open at once. Default 10000; when full, the one quiet the longest is closed early
    /// (counted as `evicted`).
    pub max_open: usize,
    /// Closed incidents kept for the summary, the most recent ones. Default 1000; older ones are
    /// counted as `unlisted`.
    pub max_listed: usize,
}

impl Default for IncidentConfig {
    fn default() -> Self {
        IncidentConfig {
            quiet_s: 300,
            max_open: 10_000,
            max_listed: 1000,
        }
    }
}

impl IncidentConfig {
    pub fn quiet_ns(&self) -> i64 {
        (self.quiet_s as i64).saturating_mul(Timestamp::NANOS_PER_SEC)
    }
}

/// The condition an observation is about: the alert kind and the detector's scope (a readable string
/// made by the detector, unique for its condition, e.g. `client="app"@10.0.0.1 topic="t" partition=0
/// series=high_watermark`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct IncidentKey {
    pub kind: AlertKind,
    pub scope: String,
}

impl IncidentKey {
    pub fn new(kind: AlertKind, scope: String) -> IncidentKey {
        IncidentKey { kind, scope }
    }
}

/// How an observation compares with what its incident already reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Harm {
    /// A new harm by the detector's own judgement (a new lower end of log told): its own alert line.
    New,
    /// A commit of `offset`: its own line when it `moved` the group's committed offset, or when its offset
    /// or severity differs from the incident's last line; otherwise (the same offset again, answered the
    /// same way, nothing moved) a repeat.
    Commit { offset: i64, moved: bool },
    /// The same harm again: a repeat, unless the severity is worse than every line so far.
    Same,
}

/// A detector's finding about a condition: which one, and whether it is new harm.
#[derive(Debug, Clone)]
pub struct Condition {
    pub key: IncidentKey,
    pub harm: Harm,
}

/// Why an incident closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Closed {
    Recovered,
    Quiet,
    Evicted,
    EndOfInput,
}

impl Closed {
    pub fn as_str(self) -> &'static str {
        match self {
            Closed::Recovered => "recovered",
            Closed::Quiet => "quiet",
            Closed::Evicted => "evicted",
            Closed::EndOfInput => "end_of_input",
        }
    }
}

#[derive(Debug, Clone)]
struct Incident {
    id: String,
    seq: u64,
    kind: AlertKind,
    scope: String,
    first_ts: Timestamp,
    last_ts: Timestamp,
    occurrences: u64,
    lines: u64,
    worst: Severity,
    last_severity: Severity,
    last_offset: Option<i64>,
    client_id: Option<String>,
    topic: Option<String>,
    partition: Option<i32>,
}

/// One incident as the summary lists it.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentEntry {
    pub incident_id: String,
    pub alert: &'static str,
    /// The worst severity of its lines.
    pub severity: &'static str,
    /// The detector's scope (what makes observations the same condition).
    pub condition: String,
    pub client_id: Option<String>,
    pub topic: Option<String>,
    pub partition: Option<i32>,
    pub first_ts: String,
    pub last_ts: String,
    /// Observations of the condition, alert lines included.
    pub occurrences: u64,
    /// Alert lines written for it (the first observation and every new harm).
    pub alert_lines: u64,
    /// `recovered`, `quiet`, `evicted`, `end_of_input`, or null while open (a live summary).
    pub closed: Option<Closed>,
}

/// The summary's `incidents` entry.
#[derive(Debug, Default, Clone, Serialize)]
pub struct IncidentReport {
    pub opened: u64,
    /// Observations folded into an incident without an alert line of their own.
    pub repeats: u64,
    /// Incidents closed early because `max_open` were open.
    pub evicted: u64,
    /// Closed incidents no longer listed (more than `max_listed`).
    pub unlisted: u64,
    /// Open and recently closed incidents, in the order they opened.
    pub list: Vec<IncidentEntry>,
}

/// Open incidents by condition and the recently closed ones, bounded.
#[derive(Debug)]
pub struct Incidents {
    cfg: IncidentConfig,
    open: BTreeMap<IncidentKey, Incident>,
    closed: VecDeque<(Incident, Closed)>,
    next_seq: u64,
    repeats: u64,
    evicted: u64,
    unlisted: u64,
}

impl Incidents {
    pub fn new(cfg: IncidentConfig) -> Self {
        Incidents {
            cfg,
            open: BTreeMap::new(),
            closed: VecDeque::new(),
            next_seq: 1,
            repeats: 0,
            evicted: 0,
            unlisted: 0,
        }
    }

    pub fn config(&self) -> &IncidentConfig {
        &self.cfg
    }

    /// One observation of `cond`, raised as `alert`: the alert tagged with its incident when it is an
    /// alert line (the first observation or a new harm), None when it is a repeat (counted only).
    pub fn observe(&mut self, alert: Alert, cond: Condition) -> Option<Alert> {
        let ts = alert.ts;
        let quiet = self.cfg.quiet_ns();
        if self
            .open
            .get(&cond.key)
            .is_some_and(|i| ts.nanos_since(i.last_ts) > quiet)
        {
            self.close(&cond.key, Closed::Quiet);
        }
        let offset = match cond.harm {
            Harm::Commit { offset, .. } => Some(offset),
            _ => None,
        };
        if let Some(i) = self.open.get_mut(&cond.key) {
            i.occurrences += 1;
            if ts > i.last_ts {
                i.last_ts = ts;
            }
            let line = match cond.harm {
                Harm::New => true,
                Harm::Commit { offset, moved } => {
                    moved || i.last_offset != Some(offset) || i.last_severity != alert.severity
                }
                Harm::Same => alert.severity > i.worst,
            };
            if !line {
                self.repeats += 1;
                return None;
            }
            i.lines += 1;
            i.worst = i.worst.max(alert.severity);
            i.last_severity = alert.severity;
            i.last_offset = offset;
            let (id, n, first) = (i.id.clone(), i.occurrences, i.first_ts);
            return Some(tag(alert, id, n, first));
        }
        if self.open.len() >= self.cfg.max_open.max(1) {
            let oldest = self
                .open
                .iter()
                .min_by_key(|(_, i)| (i.last_ts, i.seq))
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.evicted += 1;
                self.close(&k, Closed::Evicted);
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        // Unique within a run (the counter) and, in practice, across runs and agents (packet time).
        let id = format!("{:016x}-{seq}", ts.0);
        self.open.insert(
            cond.key.clone(),
            Incident {
                id: id.clone(),
                seq,
                kind: cond.key.kind,
                scope: cond.key.scope,
                first_ts: ts,
                last_ts: ts,
                occurrences: 1,
                lines: 1,
                worst: alert.severity,
                last_severity: alert.severity,
                last_offset: offset,
                client_id: alert.client_id.as_deref().map(str::to_string),
                topic: alert.topic.as_deref().map(str::to_string),
                partition: alert.partition,
            },
        );
        Some(tag(alert, id, 1, ts))
    }

    /// The detector says the condition ended: the incident (if open) closes.
    pub fn close(&mut self, key: &IncidentKey, why: Closed) {
        let Some(i) = self.open.remove(key) else {
            return;
        };
        if self.cfg.max_listed == 0 {
            self.unlisted += 1;
            return;
        }
        if self.closed.len() >= self.cfg.max_listed {
            self.closed.pop_front();
            self.unlisted += 1;
        }
        self.closed.push_back((i, why));
    }

    /// Packet time advanced to `now`: incidents quiet for longer than `quiet_s` close.
    pub fn expire(&mut self, now: Timestamp) {
        let quiet = self.cfg.quiet_ns();
        let due: Vec<IncidentKey> = self
            .open
            .iter()
            .filter(|(_, i)| now.nanos_since(i.last_ts) > quiet)
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            self.close(&k, Closed::Quiet);
        }
    }

    /// End of input: every open incident closes.
    pub fn finish(&mut self) {
        let keys: Vec<IncidentKey> = self.open.keys().cloned().collect();
        for k in keys {
            self.close(&k, Closed::EndOfInput);
        }
    }

    /// Incidents open now.
    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    /// The summary's entry: counters, and the listed incidents (closed ones kept, then open ones) in the
    /// order they opened.
    pub fn report(&self) -> IncidentReport {
        let mut list: Vec<(u64, IncidentEntry)> = self
            .closed
            .iter()
            .map(|(i, why)| (i.seq, entry(i, Some(*why))))
            .chain(self.open.values().map(|i| (i.seq, entry(i, None))))
            .collect();
        list.sort_by_key(|(seq, _)| *seq);
        IncidentReport {
            opened: self.next_seq - 1,
            repeats: self.repeats,
            evicted: self.evicted,
            unlisted: self.unlisted,
            list: list.into_iter().map(|(_, e)| e).collect(),
        }
    }
}

fn tag(alert: Alert, id: String, occurrence: u64, first: Timestamp) -> Alert {
    alert
        .field("incident_id", id)
        .field("occurrence", occurrence)
        .field("incident_first_ts", first.to_rfc3339())
}

fn entry(i: &Incident, closed: Option<Closed>) -> IncidentEntry {
    IncidentEntry {
        incident_id: i.id.clone(),
        alert: i.kind.as_str(),
        severity: i.worst.as_str(),
        condition: i.scope.clone(),
        client_id: i.client_id.clone(),
        topic: i.topic.clone(),
        partition: i.partition,
        first_ts: i.first_ts.to_rfc3339(),
        last_ts: i.last_ts.to_rfc3339(),
        occurrences: i.occurrences,
        alert_lines: i.lines,
        closed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{alert_json, t};

    fn key(scope: &str) -> IncidentKey {
        IncidentKey::new(AlertKind::ListOffsetsRegression, scope.to_string())
    }

    fn alert(secs: i64, sev: Severity) -> Alert {
        Alert::new(
            AlertKind::ListOffsetsRegression,
            sev,
            t(secs),
            "x".to_string(),
        )
    }

    fn obs(
        inc: &mut Incidents,
        secs: i64,
        sev: Severity,
        scope: &str,
        harm: Harm,
    ) -> Option<Alert> {
        inc.observe(
            alert(secs, sev),
            Condition {
                key: key(scope),
                harm,
            },
        )
    }

    #[test]
    fn repeats_fold_into_one_incident_new_harm_is_a_line() {
        let mut inc = Incidents::new(IncidentConfig::default());
        let first = alert_json(&obs(&mut inc, 1, Severity::Warning, "a", Harm::New).unwrap());
        assert_eq!(first["occurrence"], 1);
        assert_eq!(first["incident_first_ts"], t(1).to_rfc3339());
        let id = first["incident_id"].as_str().unwrap().to_string();
        // Forty bounces: the same harm, counted only.
        for s in 2..42 {
            assert!(obs(&mut inc, s, Severity::Warning, "a", Harm::Same).is_none());
        }
        // Worse: a line of the same incident.
        let worse = alert_json(&obs(&mut inc, 42, Severity::Critical, "a", Harm::Same).unwrap());
        assert_eq!(worse["incident_id"], id.as_str());
        assert_eq!(worse["occurrence"], 42);
        assert_eq!(worse["incident_first_ts"], t(1).to_rfc3339());
        // A new harm: a line too.
        assert!(obs(&mut inc, 43, Severity::Warning, "a", Harm::New).is_some());
        // Another condition: its own incident.
        let other = alert_json(&obs(&mut inc, 43, Severity::Warning, "b", Harm::Same).unwrap());
        assert_ne!(other["incident_id"], id.as_str());
        let r = inc.report();
        assert_eq!((r.opened, r.repeats, r.list.len()), (2, 40, 2));
        let a = &r.list[0];
        assert_eq!(
            (a.occurrences, a.alert_lines, a.severity, a.closed),
            (43, 3, "critical", None)
        );
        assert_eq!(
            (a.first_ts.as_str(), a.last_ts.clone()),
            (t(1).to_rfc3339().as_str(), t(43).to_rfc3339())
        );
        inc.finish();
        assert_eq!(inc.report().list[0].closed, Some(Closed::EndOfInput));
    }

    #[test]
    fn commits_repeat_only_when_nothing_moved_or_changed() {
        let mut inc = Incidents::new(IncidentConfig::default());
        let commit = |offset, moved| Harm::Commit { offset, moved };
        assert!(obs(&mut inc, 1, Severity::Critical, "c", commit(6, true)).is_some());
        // The same offset again, the group's committed offset already 6: a repeat.
        assert!(obs(&mut inc, 2, Severity::Critical, "c", commit(6, false)).is_none());
        // The same offset again after the owner committed 7 (it moves it back): a line.
        assert!(obs(&mut inc, 3, Severity::Critical, "c", commit(6, true)).is_some());
        // Another offset: a line even when nothing moved.
        assert!(obs(&mut inc, 4, Severity::Critical, "c", commit(5, false)).is_some());
        // Refused this time: a line at its own severity, then repeats.
        assert!(obs(&mut inc, 5, Severity::Info, "c", commit(5, false)).is_some());
        assert!(obs(&mut inc, 6, Severity::Info, "c", commit(5, false)).is_none());
        let e = &inc.report().list[0];
        assert_eq!((e.occurrences, e.alert_lines), (6, 4));
    }

    #[test]
    fn quiet_recovered_and_evicted_close_and_a_new_incident_opens() {
        let cfg = IncidentConfig {
            quiet_s: 10,
            max_open: 2,
            max_listed: 2,
        };
        let mut inc = Incidents::new(cfg);
        let a = alert_json(&obs(&mut inc, 0, Severity::Warning, "a", Harm::New).unwrap());
        assert!(obs(&mut inc, 10, Severity::Warning, "a", Harm::Same).is_none());
        // 11 s after the last observation: closed as quiet, the same condition opens a new incident.
        let b = alert_json(&obs(&mut inc, 21, Severity::Warning, "a", Harm::Same).unwrap());
        assert_ne!(a["incident_id"], b["incident_id"]);
        assert_eq!(b["occurrence"], 1);
        inc.close(&key("a"), Closed::Recovered);
        assert!(obs(&mut inc, 22, Severity::Warning, "a", Harm::Same).is_some());
        // The table holds 2: a third condition evicts the one quiet the longest ("a" at 22 vs "b" at 23).
        assert!(obs(&mut inc, 23, Severity::Warning, "b", Harm::Same).is_some());
        assert!(obs(&mut inc, 24, Severity::Warning, "c", Harm::Same).is_some());
        assert_eq!(inc.open_count(), 2);
        let r = inc.report();
        assert_eq!((r.opened, r.evicted), (5, 1));
        // Listed: at most 2 closed (the latest) plus the 2 open.
        assert_eq!(r.unlisted, 1);
        let closed: Vec<Option<Closed>> = r.list.iter().map(|e| e.closed).collect();
        assert_eq!(
            closed,
            [Some(Closed::Recovered), Some(Closed::Evicted), None, None]
        );
        // The engine's tick closes quiet ones too.
        inc.expire(t(35));
        assert_eq!(inc.open_count(), 0);
    }
}
