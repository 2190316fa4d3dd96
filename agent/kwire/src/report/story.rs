//! The words and pictures of one incident: the alert lines grouped by incident, the "What happened"
//! paragraph with the alert's own figures, the evidence rows (the exchanges the alert rests on), the
//! chart that fits its kind, the scope (what else was touched around it) and the causes that fit.
//!
//! Why this file is long: every alert kind has its arm in each of the incident's parts (what happened,
//! key figures, evidence, chart, scope, causes): a kind's whole story is told, and a new kind added, here.
//!
//! Easy to get wrong: every figure in a paragraph is a typed field of the alert line, printed as it is
//! (grouped digits only) — never recomputed, so the report says what `--json` says; a field the
//! detector did not set is left out of the sentence, not printed as 0; names from the wire are escaped
//! ([`esc`]); the same incident's later lines are occurrences, not sections of their own.

use std::collections::{BTreeMap, BTreeSet};

use kwire_engine::alert::FieldValue;
use kwire_engine::incident::IncidentEntry;
use kwire_engine::{Alert, AlertKind, Severity};
use kwire_flow::Timestamp;

use super::collect::{AlertLine, Collector, Key, Point, XRef};
use super::html::esc;
use super::svg::{self, Bar, Dot, Lane, Lanes, Marker, Plot, Series, Shape, VMark};
use super::EngineView;

/// One incident: its alert lines (first observation and every new harm) and the summary's entry.
pub struct Incident<'a> {
    pub id: String,
    pub kind: AlertKind,
    pub severity: Severity,
    pub lines: Vec<&'a AlertLine>,
    pub entry: Option<&'a IncidentEntry>,
}

impl Incident<'_> {
    pub fn first(&self) -> &Alert {
        &self.lines[0].a
    }

    pub fn anchor(&self) -> String {
        format!("inc-{}", self.id)
    }

    pub fn occurrences(&self) -> u64 {
        self.entry
            .map(|e| e.occurrences)
            .unwrap_or(self.lines.len() as u64)
    }
}

/// The incidents of the collected alert lines, most severe first, then by time.
pub fn incidents<'a>(c: &'a Collector, v: &'a EngineView) -> Vec<Incident<'a>> {
    let mut by_id: BTreeMap<String, Vec<&AlertLine>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for (i, l) in c.alerts.iter().enumerate() {
        let id = str_field(&l.a, "incident_id").unwrap_or_else(|| format!("line-{i}"));
        if !by_id.contains_key(&id) {
            order.push(id.clone());
        }
        by_id.entry(id).or_default().push(l);
    }
    let mut out: Vec<Incident> = order
        .into_iter()
        .map(|id| {
            let lines = by_id.remove(&id).unwrap_or_default();
            let severity = lines
                .iter()
                .map(|l| l.a.severity)
                .max()
                .unwrap_or(Severity::Info);
            let entry = v
                .summary
                .incidents
                .list
                .iter()
                .find(|e| e.incident_id == id);
            Incident {
                kind: lines[0].a.kind,
                severity,
                lines,
                entry,
                id,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.first().ts.cmp(&b.first().ts))
            .then(a.id.cmp(&b.id))
    });
    out
}

// ------------------------------------------------------------------------------------------------
// Fields and formatting.
// ------------------------------------------------------------------------------------------------

pub fn int(a: &Alert, k: &str) -> Option<i64> {
    a.fields.get(k).and_then(FieldValue::as_i64)
}

pub fn str_field(a: &Alert, k: &str) -> Option<String> {
    match a.fields.get(k)? {
        FieldValue::Str(s) => Some(s.to_string()),
        FieldValue::Static(s) => Some(s.to_string()),
        FieldValue::Ts(t) => Some(t.to_rfc3339()),
        FieldValue::Int(i) => Some(i.to_string()),
        FieldValue::Bool(b) => Some(b.to_string()),
        FieldValue::Json(j) => Some(j.to_string()),
        FieldValue::Null => None,
    }
}

fn bool_field(a: &Alert, k: &str) -> Option<bool> {
    match a.fields.get(k)? {
        FieldValue::Bool(b) => Some(*b),
        _ => None,
    }
}

/// A timestamp field (typed, or RFC 3339 text).
pub fn ts_field(a: &Alert, k: &str) -> Option<Timestamp> {
    match a.fields.get(k)? {
        FieldValue::Ts(t) => Some(*t),
        FieldValue::Str(s) => crate::timeline::parse_time(s).ok(),
        _ => None,
    }
}

/// A figure: grouped digits, bold.
pub fn n(v: i64) -> String {
    format!(r#"<b class="v">{}</b>"#, svg::group_digits(v))
}

/// Every number and time of an alert's own fields, as a closing sentence ("Figures: lost records 5,
/// ...") for the kinds whose paragraph does not name each one.
fn figures(a: &Alert) -> String {
    use kwire_engine::alert::FieldValue;
    let parts: Vec<String> = a
        .fields
        .iter()
        .filter_map(|(k, v)| {
            let label = k.replace('_', " ");
            match v {
                FieldValue::Int(i) => Some(format!("{label} {}", n(*i))),
                FieldValue::Ts(t) => Some(format!("{label} {}", tm(*t))),
                FieldValue::Str(t) if k.ends_with("_ts") => {
                    Some(format!("{label} <time>{}</time>", esc(t)))
                }
                _ => None,
            }
        })
        .collect();
    if parts.is_empty() {
        return String::new();
    }
    format!(" Figures: {}.", parts.join(", "))
}

/// A name from the wire.
pub fn code(s: &str) -> String {
    format!("<code>{}</code>", esc(s))
}

/// A moment, exact.
pub fn tm(t: Timestamp) -> String {
    format!("<time>{}</time>", t.to_rfc3339())
}

/// A moment in a table: the time of day to the microsecond (the full RFC 3339 time in its title).
pub fn tm_short(t: Timestamp) -> String {
    let full = t.to_rfc3339();
    let day = full.get(11..26).unwrap_or(&full).to_string();
    format!("<time title=\"{full}\">{day}</time>")
}

/// A duration, readable.
pub fn dur(ns: i64) -> String {
    let ns = ns.abs();
    if ns < 1_000_000 {
        format!("{} µs", ns / 1000)
    } else if ns < 1_000_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else if ns < 120_000_000_000 {
        format!("{:.2} s", ns as f64 / 1e9)
    } else if ns < 7_200_000_000_000 {
        format!("{} min {} s", ns / 60_000_000_000, ns / 1_000_000_000 % 60)
    } else {
        format!(
            "{} h {} min",
            ns / 3_600_000_000_000,
            ns / 60_000_000_000 % 60
        )
    }
}

pub fn tp(a: &Alert) -> String {
    match (&a.topic, a.partition) {
        (Some(t), Some(p)) => format!("{t}-{p}"),
        (Some(t), None) => t.to_string(),
        _ => "-".into(),
    }
}

fn who(a: &Alert) -> String {
    let mut s = code(a.client_id.as_deref().unwrap_or("(no client.id)"));
    if let Some(c) = a.client {
        s.push_str(&format!(" at {}", esc(&c.to_string())));
    }
    if let Some(sw) = str_field(a, "client_software") {
        s.push_str(&format!(" ({})", esc(&sw)));
    }
    s
}

fn broker(a: &Alert, v: &EngineView) -> String {
    match a.broker {
        Some(b) => v.broker_name(&b),
        None => "-".into(),
    }
}

fn end_of_log(a: &Alert) -> &'static str {
    match str_field(a, "end_of_log").as_deref() {
        Some("last_stable_offset") => "last stable offset (read_committed end of log)",
        _ => "high watermark (end of log)",
    }
}

fn source_words(s: &str) -> &'static str {
    match s {
        "fetch_hwm" => "a Fetch response's high watermark",
        "fetch_lso" => "a Fetch response's last stable offset",
        "listoffsets" => "a ListOffsets(latest) answer",
        "fetched" => "the records it was served",
        "committed" => "its committed offset",
        _ => "an earlier answer",
    }
}

fn error_of(code: i64) -> String {
    format!(
        "{} ({code})",
        kwire_kafka::body::error_name(i16::try_from(code).unwrap_or(i16::MIN))
    )
}

// ------------------------------------------------------------------------------------------------
// What happened.
// ------------------------------------------------------------------------------------------------

/// The "What happened" paragraph of one alert line.
pub fn what_happened(a: &Alert, v: &EngineView) -> String {
    let mut s = String::new();
    let part = code(&tp(a));
    let group = str_field(a, "group").map(|g| code(&g)).unwrap_or_default();
    let member = str_field(a, "member_id")
        .map(|m| code(&m))
        .unwrap_or_default();
    match a.kind {
        AlertKind::ListOffsetsRegression => {
            s.push_str(&format!(
                "At {}, client {} was told by broker {}{} that the {} of {} is {}",
                tm(a.ts),
                who(a),
                broker(a, v),
                str_field(a, "broker_role")
                    .map(|r| format!(" (the partition's {r} in the cluster view)"))
                    .unwrap_or_default(),
                end_of_log(a),
                part,
                int(a, "new_offset").map(n).unwrap_or_default(),
            ));
            if let Some(src) = str_field(a, "new_source") {
                s.push_str(&format!(" ({})", source_words(&src)));
            }
            if let (Some(d), Some(p)) = (int(a, "delta"), int(a, "previous_offset")) {
                s.push_str(&format!(": {} below the {} it had been told", n(d), n(p)));
                if let Some(pt) = ts_field(a, "previous_ts") {
                    s.push_str(&format!(" at {}", tm(pt)));
                }
                if let Some(pb) = str_field(a, "previous_broker") {
                    s.push_str(&format!(" by broker {}", code(&pb)));
                }
                if let Some(src) = str_field(a, "previous_source") {
                    s.push_str(&format!(" through {}", source_words(&src)));
                }
                s.push('.');
            } else {
                s.push('.');
            }
            let consumed = int(a, "consumed_offset");
            let committed = int(a, "committed_offset");
            if consumed.is_some() || committed.is_some() {
                s.push_str(" The client had already ");
                let mut parts = Vec::new();
                if let Some(c) = consumed {
                    parts.push(format!("consumed up to {}", n(c)));
                }
                if let Some(c) = committed {
                    parts.push(format!("committed {}", n(c)));
                }
                s.push_str(&parts.join(" and "));
                s.push_str(": records it has processed are gone from this broker's view. A consumer that trusts the lower end resets, rereads or (Spark: failOnDataLoss) fails.");
            } else {
                s.push_str(" The client had not consumed past the lower end: nothing it processed is affected yet, but a consumer here would see the log shrink.");
            }
            if let (Some(pe), Some(ne)) =
                (int(a, "previous_leader_epoch"), int(a, "new_leader_epoch"))
            {
                if pe == ne {
                    s.push_str(&format!(" The leader epoch stayed {}.", n(ne)));
                } else {
                    s.push_str(&format!(
                        " The leader epoch went from {} to {}.",
                        n(pe),
                        n(ne)
                    ));
                }
            }
            if let Some(r) = int(a, "preferred_read_replica").filter(|r| *r >= 0) {
                s.push_str(&format!(
                    " The leader sent the client to read replica {}.",
                    n(r)
                ));
            }
        }
        AlertKind::CommitAfterRevoke => {
            s.push_str(&format!(
                "At {}, member {member} ({}) of group {group} committed offset {} for {part}",
                tm(a.ts),
                who(a),
                int(a, "committed_offset").map(n).unwrap_or_default()
            ));
            if let Some(g) = int(a, "generation") {
                s.push_str(&format!(" in generation {}", n(g)));
            }
            s.push_str(", a partition a rebalance had taken from it");
            if let Some(r) = ts_field(a, "revoked_ts") {
                s.push_str(&format!(
                    ": it was revoked at {} ({} earlier",
                    tm(r),
                    dur(a.ts.nanos_since(r))
                ));
                if let Some(g) = int(a, "revoked_generation") {
                    s.push_str(&format!(", generation {}", n(g)));
                }
                s.push(')');
            }
            if let Some(c) = ts_field(a, "revocation_complete_ts") {
                s.push_str(&format!(" and the revocation was complete at {}", tm(c)));
            }
            s.push_str(". ");
            match bool_field(a, "accepted") {
                Some(true) => s.push_str("The broker accepted the commit (brokers check the generation, not who owns the partition)"),
                Some(false) => s.push_str(&format!(
                    "The broker refused it with {}",
                    int(a, "broker_error_code").map(error_of).unwrap_or_default()
                )),
                None => s.push_str("No answer to the commit was captured"),
            }
            s.push('.');
            if let Some(o) = str_field(a, "new_owner") {
                s.push_str(&format!(" The new owner {}", code(&o)));
                if let Some(c) = str_field(a, "new_owner_client_id") {
                    s.push_str(&format!(" ({})", code(&c)));
                }
                let mut facts = Vec::new();
                if let Some(c) = int(a, "new_owner_committed_offset") {
                    facts.push(format!("had committed {}", n(c)));
                }
                if let Some(c) = int(a, "new_owner_served_offset") {
                    facts.push(format!("had been served up to {}", n(c)));
                }
                if facts.is_empty() {
                    s.push_str(" owns it now.");
                } else {
                    s.push_str(&format!(" {}.", facts.join(" and ")));
                }
            }
            if let Some(r) = int(a, "records_reread") {
                s.push_str(&format!(
                    " The group's committed offset moved back: {} records will be processed again.",
                    n(r)
                ));
            }
            if let Some(r) = int(a, "records_skipped") {
                s.push_str(&format!(
                    " The group's committed offset moved past what the owner was served: {} records will be skipped.",
                    n(r)
                ));
            }
        }
        AlertKind::StaleOwnerCommit => {
            s.push_str(&format!(
                "At {}, member {member} ({}) of group {group}, still acting on the assignment of generation {}, committed {} for {part}, which generation {} gives to {}. ",
                tm(a.ts),
                who(a),
                int(a, "member_generation").map(n).unwrap_or_default(),
                int(a, "committed_offset").map(n).unwrap_or_default(),
                int(a, "current_generation").map(n).unwrap_or_default(),
                str_field(a, "current_owner").map(|o| code(&o)).unwrap_or_default(),
            ));
            match bool_field(a, "accepted") {
                Some(true) => s.push_str("The broker accepted it: the group's committed offset is now the stale member's."),
                Some(false) => s.push_str(&format!(
                    "The broker refused it with {}: the offset did not move, but the stale member was still processing records another member owns (duplicates downstream).",
                    int(a, "broker_error_code").map(error_of).unwrap_or_default()
                )),
                None => s.push_str("No answer to the commit was captured."),
            }
        }
        AlertKind::CommitAheadOfFetch => {
            s.push_str(&format!("At {}, {}", tm(a.ts), who(a)));
            if !member.is_empty() {
                s.push_str(&format!(" (member {member} of group {group})"));
            }
            s.push_str(&format!(
                " committed offset {} for {part} but had only been served records up to {}",
                int(a, "committed_offset").map(n).unwrap_or_default(),
                int(a, "served_offset").map(n).unwrap_or_default(),
            ));
            if let Some(t) = ts_field(a, "served_ts") {
                s.push_str(&format!(" (at {})", tm(t)));
            }
            s.push_str(&format!(
                ": {} records skipped without being consumed. ",
                int(a, "skipped").map(n).unwrap_or_default()
            ));
            match bool_field(a, "accepted") {
                Some(true) => s.push_str("The broker accepted the commit."),
                Some(false) => s.push_str("The broker refused the commit."),
                None => {}
            }
        }
        AlertKind::OffsetResetJump => {
            s.push_str(&format!(
                "{} fetched {part} at offset {}",
                who(a),
                int(a, "out_of_range_offset").map(n).unwrap_or_default()
            ));
            if let Some(t) = ts_field(a, "out_of_range_ts") {
                s.push_str(&format!(" at {}", tm(t)));
            }
            s.push_str(&format!(
                " and broker {} answered OFFSET_OUT_OF_RANGE. At {} it resumed at {}: {} records were skipped, never fetched.",
                broker(a, v),
                tm(a.ts),
                int(a, "resumed_offset").map(n).unwrap_or_default(),
                int(a, "skipped").map(n).unwrap_or_default()
            ));
        }
        AlertKind::CommittedOffsetRegression => {
            s.push_str(&format!(
                "At {}, member {member} ({}) committed {} for {part} in group {group}, moving the group's committed offset back from {}",
                tm(a.ts),
                who(a),
                int(a, "committed_offset").map(n).unwrap_or_default(),
                int(a, "previous_offset").map(n).unwrap_or_default(),
            ));
            if let Some(m) = str_field(a, "previous_member_id") {
                s.push_str(&format!(" (committed by {}", code(&m)));
                if let Some(t) = ts_field(a, "previous_ts") {
                    s.push_str(&format!(" at {}", tm(t)));
                }
                s.push(')');
            }
            s.push_str(&format!(
                ": {} records will be processed again.",
                int(a, "delta").map(n).unwrap_or_default()
            ));
        }
        AlertKind::AcknowledgedThenLost => {
            s.push_str(&format!(
                "{} record(s) of {part}, offsets {} to {}, were acknowledged to {} (acks={}) by {} at {}, and at {} {} told {} an end of log of {}",
                int(a, "lost_records").map(n).unwrap_or_default(),
                int(a, "first_lost_offset").map(n).unwrap_or_default(),
                int(a, "last_lost_offset").map(n).unwrap_or_default(),
                who(a),
                str_field(a, "acks").unwrap_or_default(),
                str_field(a, "leader_before").map(|b| code(&b)).unwrap_or_default(),
                ts_field(a, "acknowledged_ts").map(tm).unwrap_or_default(),
                tm(a.ts),
                str_field(a, "leader_after").map(|b| code(&b)).unwrap_or_default(),
                str_field(a, "told_by_client_id").map(|c| code(&c)).unwrap_or_default(),
                int(a, "told_end_offset").map(n).unwrap_or_default(),
            ));
            match str_field(a, "deleted_by") {
                Some(d) => s.push_str(&format!(
                    ": explained by {} from {}, a deliberate deletion.",
                    code(&d),
                    str_field(a, "deleted_by_client_id")
                        .map(|c| code(&c))
                        .unwrap_or_default()
                )),
                None => s.push_str(": the records are gone."),
            }
        }
        AlertKind::ProduceRejected => {
            s.push_str(&format!(
                "{} record(s) in {} batch(es) that {} produced to {part} with acks={} were answered {} ({} attempt(s), the last at {}) and never acknowledged.",
                int(a, "records").map(n).unwrap_or_default(),
                int(a, "batches").map(n).unwrap_or_default(),
                who(a),
                int(a, "acks").unwrap_or_default(),
                str_field(a, "error").map(|e| code(&e)).unwrap_or_default(),
                int(a, "attempts").map(n).unwrap_or_default(),
                ts_field(a, "last_ts").map(tm).unwrap_or_default(),
            ));
        }
        AlertKind::LogTruncated => {
            s.push_str(&format!(
                "At {}, {} found the log of {part} truncated under it: {}",
                tm(a.ts),
                who(a),
                esc(&a.explanation)
            ));
        }
        AlertKind::WeakAcks => {
            s.push_str(&format!(
                "{} produced {} requests ({} records) to topic {} with {}",
                who(a),
                int(a, "requests").map(n).unwrap_or_default(),
                int(a, "records").map(n).unwrap_or_default(),
                code(a.topic.as_deref().unwrap_or("-")),
                match int(a, "acks") {
                    Some(0) => "<b class=\"v\">acks=0</b>: no acknowledgement at all".to_string(),
                    Some(k) =>
                        format!("<b class=\"v\">acks={k}</b>: acknowledged by the leader alone"),
                    None => "weak acks".to_string(),
                }
            ));
            if let (Some(f), Some(l)) = (ts_field(a, "first_ts"), ts_field(a, "last_ts")) {
                s.push_str(&format!(", from {} to {}", tm(f), tm(l)));
            }
            if let Some(FieldValue::Json(p)) = a.fields.get("partitions") {
                s.push_str(&format!(", partitions {}", esc(&p.to_string())));
            }
            s.push('.');
            let idem = bool_field(a, "idempotent");
            let txn = bool_field(a, "transactional");
            if idem.is_some() || txn.is_some() {
                s.push_str(&format!(
                    " Idempotent: {}; transactional: {}.",
                    if idem == Some(true) { "yes" } else { "no" },
                    if txn == Some(true) { "yes" } else { "no" }
                ));
            }
            if let Some(t) = ts_field(a, "leader_change_ts") {
                s.push_str(&format!(
                    " Partition {} changed leader at {} while it was producing: records the old leader acknowledged alone may be gone.",
                    int(a, "leader_change_partition").map(n).unwrap_or_default(),
                    tm(t)
                ));
            } else {
                s.push_str(" No leader changed while it produced: nothing is known lost, but one broker failure can lose acknowledged records.");
            }
        }
    }
    if matches!(
        a.kind,
        AlertKind::AcknowledgedThenLost | AlertKind::ProduceRejected | AlertKind::LogTruncated
    ) {
        s.push_str(&figures(a));
    }
    s
}

/// One line for the incident list and the occurrences table: the alert's key figures.
pub fn key_figures(a: &Alert) -> String {
    let f = |k: &str| {
        int(a, k)
            .map(svg::group_digits)
            .unwrap_or_else(|| "-".into())
    };
    match a.kind {
        AlertKind::ListOffsetsRegression => format!(
            "told {} after {} (−{})",
            f("new_offset"),
            f("previous_offset"),
            f("delta")
        ),
        AlertKind::CommitAfterRevoke => {
            let mut s = format!("late commit {}", f("committed_offset"));
            if let Some(r) = int(a, "records_reread") {
                s.push_str(&format!(", {} reread", svg::group_digits(r)));
            }
            if let Some(r) = int(a, "records_skipped") {
                s.push_str(&format!(", {} skipped", svg::group_digits(r)));
            }
            s
        }
        AlertKind::StaleOwnerCommit => format!(
            "commit {} by generation {} (current {})",
            f("committed_offset"),
            f("member_generation"),
            f("current_generation")
        ),
        AlertKind::CommitAheadOfFetch => format!(
            "commit {} past served {} ({} skipped)",
            f("committed_offset"),
            f("served_offset"),
            f("skipped")
        ),
        AlertKind::OffsetResetJump => format!(
            "{} out of range, resumed {} ({} skipped)",
            f("out_of_range_offset"),
            f("resumed_offset"),
            f("skipped")
        ),
        AlertKind::CommittedOffsetRegression => format!(
            "committed {} after {} (−{})",
            f("committed_offset"),
            f("previous_offset"),
            f("delta")
        ),
        AlertKind::WeakAcks => format!(
            "acks={}, {} requests, {} records",
            f("acks"),
            f("requests"),
            f("records")
        ),
        AlertKind::AcknowledgedThenLost => format!(
            "{} acknowledged, end told {} ({} lost)",
            f("last_lost_offset"),
            f("told_end_offset"),
            f("lost_records")
        ),
        AlertKind::ProduceRejected => {
            format!("{} records, {} attempt(s)", f("records"), f("attempts"))
        }
        AlertKind::LogTruncated => esc(&a.explanation),
    }
}

// ------------------------------------------------------------------------------------------------
// Evidence.
// ------------------------------------------------------------------------------------------------

/// One row of "Trigger and evidence".
pub struct EvRow {
    pub ts: Timestamp,
    pub client: String,
    pub broker: String,
    pub what: String,
    pub value: String,
    pub x: Option<XRef>,
    pub trigger: bool,
}

fn what_words(what: &str) -> &str {
    match what {
        "listoffsets_latest" => "ListOffsets(latest) answer",
        "listoffsets_earliest" => "ListOffsets(earliest) answer",
        "listoffsets_time" => "ListOffsets(time) answer",
        "fetch_request" => "Fetch request position",
        "fetch_hwm" => "Fetch response high watermark",
        "fetch_lso" => "Fetch response last stable offset",
        "fetch_log_start" => "Fetch response log start offset",
        "fetched" => "served: end of the batches returned",
        "fetch_error" => "Fetch error",
        "produced" => "base offset assigned",
        "committed" => "commit accepted",
        "commit_rejected" => "commit refused",
        "offset_fetch" => "OffsetFetch answer",
        other => other,
    }
}

/// The timestamps an alert names (its own and every time field).
fn times_of(a: &Alert) -> BTreeSet<Timestamp> {
    let mut v = BTreeSet::new();
    for (k, f) in a.fields.iter() {
        if k == "incident_first_ts" {
            continue;
        }
        match f {
            FieldValue::Ts(t) => {
                v.insert(*t);
            }
            FieldValue::Str(s) if k.ends_with("_ts") => {
                if let Ok(t) = crate::timeline::parse_time(s) {
                    v.insert(t);
                }
            }
            _ => {}
        }
    }
    v
}

/// The exchanges an alert rests on: the one that raised it, and the observations at the moments its
/// fields name (the earlier end of log, the revocation, the served records, ...).
///
/// HOOK: alerts are gaining an `evidence` list (frames, correlation ids, times, brokers of every
/// exchange the detector used). When `Alert` carries it, list those exchanges here first; the rows
/// found by time below then only add what the list does not name.
pub fn evidence(inc: &Incident, c: &Collector, v: &EngineView) -> Vec<EvRow> {
    let mut rows: Vec<EvRow> = Vec::new();
    let mut seen: BTreeSet<(Timestamp, String, String)> = BTreeSet::new();
    for l in &inc.lines {
        let a = &l.a;
        if let Some(x) = l.x {
            let key = (x.request_ts, x.api().to_string(), "trigger".to_string());
            if seen.insert(key) {
                rows.push(EvRow {
                    ts: x.request_ts,
                    client: a.client_id.as_deref().unwrap_or("-").to_string(),
                    broker: v.broker_name_plain(&x.broker),
                    what: format!("{} v{}: raised the alert", x.api(), x.api_version),
                    value: key_figures(a),
                    x: Some(x),
                    trigger: true,
                });
            }
        }
        let times = times_of(a);
        let (Some(topic), Some(partition)) = (a.topic.clone(), a.partition) else {
            // weak_acks names a topic only: every record the producer was told it wrote there while
            // the alert's window lasted (answers come a moment after the last request).
            if let Some(topic) = &a.topic {
                let from = ts_field(a, "first_ts").unwrap_or(a.ts);
                let to = ts_field(a, "last_ts")
                    .unwrap_or(a.ts)
                    .add_nanos(5_000_000_000);
                for ((client, t, part), pts) in &c.offsets {
                    if t != topic || Some(client) != a.client_id.as_ref() {
                        continue;
                    }
                    for p in pts
                        .iter()
                        .filter(|p| p.what == "produced" && p.ts >= from && p.ts <= to)
                    {
                        push_point(&mut rows, &mut seen, client, (t, *part), p, v, a);
                    }
                }
            }
            continue;
        };
        let figures: BTreeSet<i64> = a.fields.iter().filter_map(|(_, f)| f.as_i64()).collect();
        let new_source = str_field(a, "new_source");
        let prev_ts = ts_field(a, "previous_ts");
        let prev_source = str_field(a, "previous_source");
        for ((client, t, part), pts) in &c.offsets {
            if *t != topic || *part != partition {
                continue;
            }
            let own = Some(client) == a.client_id.as_ref();
            for p in pts.iter() {
                // At the alert's own time, only the observation it is about (not the log start offset
                // the same Fetch answer also carried).
                let at_alert = own
                    && p.ts == a.ts
                    && figures.contains(&p.offset)
                    && new_source
                        .as_deref()
                        .is_none_or(|s| source_of(p.what) == Some(s));
                let earlier = times.contains(&p.ts)
                    && figures.contains(&p.offset)
                    && !(Some(p.ts) == prev_ts
                        && prev_source.is_some()
                        && source_of(p.what).map(str::to_string) != prev_source);
                if earlier || at_alert {
                    push_point(&mut rows, &mut seen, client, (t, *part), p, v, a);
                }
            }
        }
        if let Some(g) = str_field(a, "group") {
            if let Some(evs) = c.groups.get(g.as_str()) {
                for e in evs.iter().filter(|e| times.contains(&e.e.ts)) {
                    let key = (e.e.ts, e.e.what.to_string(), e.e.client_id.to_string());
                    if !seen.insert(key) {
                        continue;
                    }
                    let mut value = match e.e.generation {
                        Some(gen) => format!("generation {gen}"),
                        None => String::new(),
                    };
                    if !e.e.revoked.is_empty() {
                        value.push_str(&format!("; revoked {}", tps(&e.e.revoked)));
                    }
                    if !e.e.assigned.is_empty() || e.e.what == "sync" {
                        value.push_str(&format!("; assigned {}", tps(&e.e.assigned)));
                    }
                    if let Some(err) = e.e.error {
                        value.push_str(&format!("; {err}"));
                    }
                    rows.push(EvRow {
                        ts: e.e.ts,
                        client: e.e.client_id.to_string(),
                        broker: v.broker_name_plain(&e.e.broker),
                        what: format!("group {}: {}", e.e.group, e.e.what),
                        value: value.trim_start_matches("; ").to_string(),
                        x: e.x,
                        trigger: false,
                    });
                }
            }
        }
        if let Some(t) = ts_field(a, "leader_change_ts") {
            let key = (t, "leader".to_string(), String::new());
            if seen.insert(key) {
                rows.push(EvRow {
                    ts: t,
                    client: "-".into(),
                    broker: "-".into(),
                    what: "leader change (cluster view: Metadata or a NOT_LEADER answer)".into(),
                    value: format!(
                        "partition {}",
                        int(a, "leader_change_partition")
                            .map(svg::group_digits)
                            .unwrap_or_else(|| "-".into())
                    ),
                    x: None,
                    trigger: false,
                });
            }
        }
    }
    // The exchange that raised the alert is shown once: by its observation rows when there are any.
    let shown: BTreeSet<(u64, i32)> = rows
        .iter()
        .filter(|r| !r.what.ends_with(": raised the alert"))
        .filter_map(|r| r.x.map(|x| (x.conn, x.correlation_id)))
        .collect();
    rows.retain(|r| {
        !(r.what.ends_with(": raised the alert")
            && r.x
                .is_some_and(|x| shown.contains(&(x.conn, x.correlation_id))))
    });
    rows.sort_by(|a, b| a.ts.cmp(&b.ts).then(b.trigger.cmp(&a.trigger)));
    rows
}

/// The `new_source` / `previous_source` name of a timeline row kind.
fn source_of(what: &str) -> Option<&'static str> {
    match what {
        "fetch_hwm" => Some("fetch_hwm"),
        "fetch_lso" => Some("fetch_lso"),
        "listoffsets_latest" => Some("listoffsets"),
        _ => None,
    }
}

fn push_point(
    rows: &mut Vec<EvRow>,
    seen: &mut BTreeSet<(Timestamp, String, String)>,
    client: &str,
    (topic, partition): (&str, i32),
    p: &Point,
    v: &EngineView,
    a: &Alert,
) {
    let key = (p.ts, p.what.to_string(), client.to_string());
    if !seen.insert(key) {
        return;
    }
    let mut value = svg::group_digits(p.offset);
    if let Some(e) = p.epoch {
        value.push_str(&format!(" (leader epoch {e})"));
    }
    if let Some(err) = p.error {
        value.push_str(&format!(" {err}"));
    }
    let trigger = Some(client) == a.client_id.as_deref() && p.ts == a.ts;
    let what = match p.x {
        Some(x) => format!(
            "{} v{}: {}, {topic}-{partition}",
            x.api(),
            x.api_version,
            what_words(p.what)
        ),
        None => format!("{}, {topic}-{partition}", what_words(p.what)),
    };
    rows.push(EvRow {
        ts: p.ts,
        client: client.to_string(),
        broker: v.broker_name_plain(&p.broker),
        what,
        value,
        x: p.x,
        trigger,
    });
}

pub fn tps(v: &[kwire_engine::model::Tp]) -> String {
    // One topic: "kw-carc [0, 1]"; several: each "topic-p".
    let topics: BTreeSet<&str> = v.iter().map(|t| &*t.topic).collect();
    if v.is_empty() {
        return "[]".into();
    }
    if topics.len() == 1 {
        let parts: Vec<String> = v.iter().map(|t| t.partition.to_string()).collect();
        format!("{} [{}]", v[0].topic, parts.join(", "))
    } else {
        v.iter()
            .map(|t| format!("{}-{}", t.topic, t.partition))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

// ------------------------------------------------------------------------------------------------
// Charts.
// ------------------------------------------------------------------------------------------------

/// The window around an incident that its chart shows: the incident's first and last times, widened
/// by 5 minutes before and 1 after (everything, for short captures).
fn window(inc: &Incident) -> (i64, i64) {
    let first = inc.lines.iter().map(|l| l.a.ts.0).min().unwrap_or(0);
    let last = inc.lines.iter().map(|l| l.a.ts.0).max().unwrap_or(0);
    (first - 300_000_000_000, last + 60_000_000_000)
}

pub fn chart(inc: &Incident, c: &Collector, v: &EngineView) -> String {
    match inc.kind {
        AlertKind::CommitAfterRevoke | AlertKind::StaleOwnerCommit => lanes_chart(inc, c, v),
        AlertKind::WeakAcks => acks_chart(inc, c, v),
        _ => offsets_chart(inc, c, v),
    }
}

fn leader_marks(v: &EngineView, topic: &str, partition: Option<i32>, w: (i64, i64)) -> Vec<VMark> {
    let mut out = Vec::new();
    for ((t, p), times) in &v.leader_changes {
        if t != topic || partition.is_some_and(|x| x != *p) {
            continue;
        }
        for ts in times.iter().filter(|ts| ts.0 >= w.0 && ts.0 <= w.1) {
            out.push(VMark {
                t: ts.0,
                label: format!("leader change p{p}"),
                color: svg::GREY,
                strong: false,
            });
        }
    }
    out
}

fn alert_marks(inc: &Incident) -> Vec<VMark> {
    let mut out: Vec<VMark> = Vec::new();
    for l in &inc.lines {
        if out.iter().any(|m| m.t == l.a.ts.0) {
            continue;
        }
        out.push(VMark {
            t: l.a.ts.0,
            label: format!("alert: {}", key_figures(&l.a)),
            color: svg::RED,
            strong: true,
        });
    }
    out
}

fn offsets_chart(inc: &Incident, c: &Collector, v: &EngineView) -> String {
    let a = inc.first();
    let (Some(topic), Some(partition)) = (a.topic.clone(), a.partition) else {
        return String::new();
    };
    let w = window(inc);
    let me = a.client_id.clone().unwrap_or_default();
    let own = c.offsets.get(&(me.clone(), topic.clone(), partition));
    let pick =
        |what: &[&str], pts: Option<&std::collections::VecDeque<Point>>| -> Vec<(i64, f64)> {
            pts.map(|p| {
                p.iter()
                    .filter(|p| what.contains(&p.what) && p.ts.0 >= w.0 && p.ts.0 <= w.1)
                    .map(|p| (p.ts.0, p.offset as f64))
                    .collect()
            })
            .unwrap_or_default()
        };
    let mut series = Vec::new();
    let styles: [(&[&str], &str, &'static str, Marker, bool); 7] = [
        (
            &["fetch_hwm"],
            "told: high watermark (Fetch)",
            svg::BLUE,
            Marker::Circle,
            false,
        ),
        (
            &["fetch_lso"],
            "told: last stable offset (Fetch)",
            svg::PURPLE,
            Marker::Square,
            false,
        ),
        (
            &["listoffsets_latest"],
            "told: ListOffsets latest",
            svg::SKY,
            Marker::Diamond,
            false,
        ),
        (
            &["fetch_request"],
            "position (Fetch request)",
            svg::INK,
            Marker::None,
            true,
        ),
        (
            &["fetched"],
            "served (end of batches returned)",
            svg::GREEN,
            Marker::Triangle,
            false,
        ),
        (
            &["committed"],
            "committed",
            svg::ORANGE,
            Marker::Square,
            false,
        ),
        (
            &["fetch_error"],
            "Fetch error",
            svg::RED,
            Marker::Cross,
            false,
        ),
    ];
    for (what, label, color, m, dash) in styles {
        let pts = pick(what, own);
        if pts.is_empty() {
            continue;
        }
        let mut s = Series::new(format!("{me}: {label}"), color, Shape::Step);
        s.marker = m;
        s.dash = dash;
        s.hold = what[0] != "fetch_error";
        if what[0] == "fetch_error" {
            s.width = 0.0;
        }
        s.points = pts;
        series.push(s);
    }
    // Other clients' views of the same partition: what they were told, what they committed.
    let mut others = 0;
    for ((client, t, p), pts) in &c.offsets {
        if *t != topic || *p != partition || *client == me || others >= 4 {
            continue;
        }
        let told = pick(&["fetch_hwm", "listoffsets_latest", "fetch_lso"], Some(pts));
        let committed = pick(&["committed"], Some(pts));
        if told.is_empty() && committed.is_empty() {
            continue;
        }
        others += 1;
        if !told.is_empty() {
            let mut s = Series::new(format!("{client}: told"), svg::GREY, Shape::Step);
            s.dash = true;
            s.width = 1.5;
            s.marker = Marker::Circle;
            s.points = told;
            s.hold = true;
            series.push(s);
        }
        if !committed.is_empty() {
            let mut s = Series::new(format!("{client}: committed"), svg::GREY, Shape::Step);
            s.width = 1.5;
            s.marker = Marker::Square;
            s.points = committed;
            s.hold = true;
            series.push(s);
        }
    }
    let mut marks = leader_marks(v, &topic, Some(partition), w);
    marks.extend(alert_marks(inc));
    svg::plot(&Plot {
        title: format!(
            "Offsets of {topic}-{partition} over time as {me} and other clients saw them"
        ),
        series,
        marks,
        notes: notes(a, v),
        y_label: "offset".into(),
        integers: true,
        height: 260.0,
        ..Default::default()
    })
}

/// The values an offset alert compares, labelled where they were observed.
fn notes(a: &Alert, v: &EngineView) -> Vec<svg::Note> {
    let mut out = Vec::new();
    let mut note = |t: Option<Timestamp>, val: Option<i64>, text: String, color: &'static str| {
        if let (Some(t), Some(val)) = (t, val) {
            out.push(svg::Note {
                t: t.0,
                v: val as f64,
                text,
                color,
            });
        }
    };
    let by = |b: Option<String>| {
        b.map(|b| match v.node_ids.get(&b) {
            Some(id) => format!(" by broker {id}"),
            None => format!(" by {b}"),
        })
        .unwrap_or_default()
    };
    let g = |k: &str| int(a, k).map(svg::group_digits).unwrap_or_default();
    match a.kind {
        AlertKind::ListOffsetsRegression => {
            note(
                ts_field(a, "previous_ts"),
                int(a, "previous_offset"),
                format!(
                    "told {}{}",
                    g("previous_offset"),
                    by(str_field(a, "previous_broker"))
                ),
                svg::BLUE,
            );
            note(
                Some(a.ts),
                int(a, "new_offset"),
                format!(
                    "told {}{}",
                    g("new_offset"),
                    by(a.broker.map(|b| b.to_string()))
                ),
                svg::RED,
            );
        }
        AlertKind::CommitAheadOfFetch => {
            note(
                ts_field(a, "served_ts"),
                int(a, "served_offset"),
                format!("served {}", g("served_offset")),
                svg::GREEN,
            );
            note(
                Some(a.ts),
                int(a, "committed_offset"),
                format!("committed {}", g("committed_offset")),
                svg::RED,
            );
        }
        AlertKind::OffsetResetJump => {
            note(
                ts_field(a, "out_of_range_ts"),
                int(a, "out_of_range_offset"),
                format!("{} out of range", g("out_of_range_offset")),
                svg::ORANGE,
            );
            note(
                Some(a.ts),
                int(a, "resumed_offset"),
                format!("resumed at {}", g("resumed_offset")),
                svg::RED,
            );
        }
        AlertKind::CommittedOffsetRegression => {
            note(
                ts_field(a, "previous_ts"),
                int(a, "previous_offset"),
                format!("committed {}", g("previous_offset")),
                svg::ORANGE,
            );
            note(
                Some(a.ts),
                int(a, "committed_offset"),
                format!("moved back to {}", g("committed_offset")),
                svg::RED,
            );
        }
        _ => {}
    }
    out
}

/// Ownership over time, one lane per member of the group.
fn lanes_chart(inc: &Incident, c: &Collector, _v: &EngineView) -> String {
    let a = inc.first();
    let Some(group) = str_field(a, "group") else {
        return String::new();
    };
    let hot = a
        .topic
        .clone()
        .zip(a.partition)
        .map(|(t, p)| kwire_engine::model::Tp {
            topic: t,
            partition: p,
        });
    let w = window(inc);
    let Some(evs) = c.groups.get(group.as_str()) else {
        return svg::lanes(&Lanes {
            title: format!("Members of group {group}"),
            ..Default::default()
        });
    };
    let evs: Vec<_> = evs
        .iter()
        .filter(|e| e.e.ts.0 >= w.0 && e.e.ts.0 <= w.1)
        .collect();
    let end = evs
        .iter()
        .map(|e| e.e.ts.0)
        .chain(inc.lines.iter().map(|l| l.a.ts.0))
        .max()
        .unwrap_or(0);
    // Lanes in order of first appearance; keyed by member id (client id when the event has none).
    let mut order: Vec<(String, String)> = Vec::new();
    for e in &evs {
        let key =
            e.e.member_id
                .clone()
                .unwrap_or_else(|| e.e.client_id.to_string());
        if !order.iter().any(|(k, _)| *k == key) {
            order.push((key, e.e.client_id.to_string()));
        }
    }
    let alert_members: BTreeSet<String> = inc
        .lines
        .iter()
        .filter_map(|l| str_field(&l.a, "member_id"))
        .collect();
    let mut lanes = Vec::new();
    for (key, client) in order.iter().take(12) {
        let mine: Vec<_> = evs
            .iter()
            .filter(|e| e.e.member_id.as_deref().unwrap_or(&e.e.client_id) == key.as_str())
            .collect();
        let mut bars = Vec::new();
        let mut dots = Vec::new();
        let mut open: Option<(i64, String, bool)> = None;
        for e in &mine {
            let t = e.e.ts.0;
            let ends = matches!(e.e.what, "sync" | "assignment" | "leave");
            if ends {
                if let Some((t0, text, h)) = open.take() {
                    bars.push(Bar {
                        t0,
                        t1: t,
                        text,
                        hot: h,
                    });
                }
            }
            match e.e.what {
                "sync" | "assignment" if !e.e.assigned.is_empty() => {
                    let is_hot = hot.as_ref().is_some_and(|h| e.e.assigned.contains(h));
                    let text = format!(
                        "gen {}: {}",
                        e.e.generation
                            .map(|g| g.to_string())
                            .unwrap_or_else(|| "?".into()),
                        tps(&e.e.assigned)
                    );
                    open = Some((t, text, is_hot));
                }
                "join" => dots.push(Dot {
                    t,
                    marker: Marker::Circle,
                    color: svg::GREY,
                    label: match (e.e.generation, e.e.error) {
                        (_, Some(err)) => format!("join: {err}"),
                        (Some(g), None) => format!("join gen {g}"),
                        _ => "join".into(),
                    },
                }),
                "leave" => dots.push(Dot {
                    t,
                    marker: Marker::Square,
                    color: svg::INK,
                    label: "leave".into(),
                }),
                "heartbeat" => dots.push(Dot {
                    t,
                    marker: Marker::Triangle,
                    color: svg::GREY,
                    label: String::new(),
                }),
                _ => {}
            }
            if hot.as_ref().is_some_and(|h| e.e.revoked.contains(h)) {
                dots.push(Dot {
                    t,
                    marker: Marker::Diamond,
                    color: svg::ORANGE,
                    label: format!(
                        "revoked p{}",
                        hot.as_ref().map(|h| h.partition).unwrap_or_default()
                    ),
                });
            }
        }
        if let Some((t0, text, h)) = open.take() {
            bars.push(Bar {
                t0,
                t1: end,
                text,
                hot: h,
            });
        }
        // Commits of the incident's partition by this member's client, and by the alert's client when
        // it committed for this member (a transactional producer's TxnOffsetCommit names the
        // consumer's member id).
        let mut committers: Vec<String> = vec![client.clone()];
        if alert_members.contains(key) {
            for l in &inc.lines {
                if let Some(cid) = l.a.client_id.as_deref() {
                    if !committers.iter().any(|c| c == cid) {
                        committers.push(cid.to_string());
                    }
                }
            }
        }
        for committer in &committers {
            if let Some(h) = &hot {
                if let Some(pts) =
                    c.offsets
                        .get(&(committer.as_str().into(), h.topic.clone(), h.partition))
                {
                    for p in pts.iter().filter(|p| {
                        matches!(p.what, "committed" | "commit_rejected")
                            && p.ts.0 >= w.0
                            && p.ts.0 <= w.1
                    }) {
                        let late = inc.lines.iter().any(|l| {
                            l.a.ts == p.ts
                                && str_field(&l.a, "member_id").as_deref() == Some(key.as_str())
                        }) || (alert_members.contains(key)
                            && inc.lines.iter().any(|l| l.a.ts == p.ts));
                        dots.push(Dot {
                            t: p.ts.0,
                            marker: if late { Marker::Cross } else { Marker::Circle },
                            color: if late { svg::RED } else { svg::GREEN },
                            label: format!(
                                "{}{} {}",
                                if late { "late " } else { "" },
                                if p.what == "committed" {
                                    "commit"
                                } else {
                                    "refused commit"
                                },
                                svg::group_digits(p.offset)
                            ),
                        });
                    }
                }
            }
        }
        dots.sort_by_key(|d| d.t);
        lanes.push(Lane {
            label: client.clone(),
            sub: key.clone(),
            bars,
            dots,
        });
    }
    let mut marks = Vec::new();
    for l in &inc.lines {
        for k in ["revoked_ts"] {
            if let Some(t) = ts_field(&l.a, k) {
                if !marks.iter().any(|m: &VMark| m.t == t.0) {
                    marks.push(VMark {
                        t: t.0,
                        label: "revoked".into(),
                        color: svg::ORANGE,
                        strong: false,
                    });
                }
            }
        }
    }
    marks.extend(alert_marks(inc));
    let hot_name = hot
        .as_ref()
        .map(|h| format!("{}-{}", h.topic, h.partition))
        .unwrap_or_default();
    svg::lanes(&Lanes {
        title: format!(
            "Members of group {group} over time: assignments, revocation of {hot_name}, commits"
        ),
        lanes,
        marks,
        legend: vec![
            (format!("owns {hot_name}"), svg::BLUE, Marker::None),
            ("owns other partitions".into(), "#c9d6e3", Marker::None),
            (format!("commit of {hot_name}"), svg::GREEN, Marker::Circle),
            ("late commit".into(), svg::RED, Marker::Cross),
            (format!("{hot_name} revoked"), svg::ORANGE, Marker::Diamond),
            ("join".into(), svg::GREY, Marker::Circle),
            ("heartbeat error".into(), svg::GREY, Marker::Triangle),
            ("leave".into(), svg::INK, Marker::Square),
        ],
    })
}

/// Produce rate of the alert's topic by acks, this producer apart.
fn acks_chart(inc: &Incident, c: &Collector, v: &EngineView) -> String {
    let a = inc.first();
    let Some(topic) = a.topic.clone() else {
        return String::new();
    };
    let me = a.client_id.clone().unwrap_or_default();
    let r = &c.rollup;
    let secs = r.width_ns as f64 / 1e9;
    let mut sums: BTreeMap<(bool, i16), Vec<u64>> = BTreeMap::new();
    for (k, aggs) in &r.series {
        let Key::Acks {
            topic: t,
            acks,
            client,
        } = k
        else {
            continue;
        };
        if *t != topic {
            continue;
        }
        let e = sums
            .entry((*client == me, *acks))
            .or_insert_with(|| vec![0; aggs.len()]);
        for (i, g) in aggs.iter().enumerate() {
            e[i] += g.n;
        }
    }
    let last = sums
        .values()
        .filter_map(|v| v.iter().rposition(|x| *x > 0))
        .max()
        .unwrap_or(0);
    let acks_name = |k: i16| {
        if k == -1 {
            "all".to_string()
        } else {
            k.to_string()
        }
    };
    let mut series = Vec::new();
    let mut i = 0;
    for ((mine, acks), counts) in sums.iter().rev() {
        let label = if *mine {
            format!("{me} (acks={})", acks_name(*acks))
        } else {
            format!("other producers, acks={}", acks_name(*acks))
        };
        let color = if *mine {
            svg::RED
        } else {
            [svg::BLUE, svg::GREEN, svg::PURPLE][i % 3]
        };
        if !*mine {
            i += 1;
        }
        let mut s = Series::new(label, color, Shape::Bars);
        s.points = counts[..=last]
            .iter()
            .enumerate()
            .filter(|(_, x)| **x > 0)
            .map(|(i, x)| (r.bucket_ts(i).0 + r.width_ns / 2, *x as f64 / secs))
            .collect();
        series.push(s);
    }
    let w = (i64::MIN / 2, i64::MAX / 2);
    let mut marks = leader_marks(v, &topic, None, w);
    marks.extend(alert_marks(inc));
    let n = series.len();
    for (i, s) in series.iter_mut().enumerate() {
        s.slot = Some((i, n));
    }
    svg::plot(&Plot {
        title: format!("Produce requests per second to {topic} by acks"),
        t_range: r
            .origin
            .map(|_| (r.bucket_ts(0).0, r.bucket_ts(last + 1).0)),
        series,
        marks,
        y_label: "produce requests/s".into(),
        y_from_zero: true,
        height: 220.0,
        ..Default::default()
    })
}

// ------------------------------------------------------------------------------------------------
// Scope and causes.
// ------------------------------------------------------------------------------------------------

/// What else was touched around the incident, as list items (HTML).
pub fn scope(inc: &Incident, all: &[Incident], c: &Collector) -> Vec<String> {
    let a = inc.first();
    let mut out = Vec::new();
    let near = |b: &Alert| (b.ts.0 - a.ts.0).abs() <= 60_000_000_000;
    match a.kind {
        AlertKind::ListOffsetsRegression => {
            // Other clients told a lower end by the same broker.
            for o in all.iter().filter(|o| o.id != inc.id && o.kind == a.kind) {
                let b = o.first();
                if b.broker == a.broker && near(b) {
                    out.push(format!(
                        "{} on {} was told {} by the same broker at {} (<a href=\"#{}\">incident</a>).",
                        code(b.client_id.as_deref().unwrap_or("-")),
                        code(&tp(b)),
                        n(int(b, "new_offset").unwrap_or_default()),
                        tm(b.ts),
                        o.anchor()
                    ));
                }
            }
            if let (Some(topic), Some(p), Some(prev)) =
                (&a.topic, a.partition, int(a, "previous_offset"))
            {
                for ((client, t, part), pts) in &c.offsets {
                    if t != topic || *part != p || Some(client) == a.client_id.as_ref() {
                        continue;
                    }
                    let low = pts.iter().find(|x| {
                        matches!(x.what, "fetch_hwm" | "listoffsets_latest" | "fetch_lso")
                            && Some(x.broker) == a.broker
                            && x.offset < prev
                            && x.ts >= a.ts.add_nanos(-5_000_000_000)
                    });
                    if let Some(x) = low {
                        out.push(format!(
                            "{} was also told {} for {} by that broker at {}.",
                            code(client),
                            n(x.offset),
                            code(&tp(a)),
                            tm(x.ts)
                        ));
                    }
                }
            }
        }
        AlertKind::CommitAfterRevoke
        | AlertKind::StaleOwnerCommit
        | AlertKind::CommitAheadOfFetch
        | AlertKind::CommittedOffsetRegression => {
            let member = str_field(a, "member_id");
            for o in all.iter().filter(|o| o.id != inc.id) {
                let b = o.first();
                if str_field(b, "member_id") == member && near(b) {
                    out.push(format!(
                        "{} on {} by the same member at {} (<a href=\"#{}\">incident</a>).",
                        esc(b.kind.as_str()),
                        code(&tp(b)),
                        tm(b.ts),
                        o.anchor()
                    ));
                }
            }
        }
        AlertKind::WeakAcks => {
            for o in all.iter().filter(|o| o.id != inc.id && o.kind == a.kind) {
                let b = o.first();
                out.push(format!(
                    "{} also produced to {} with acks={} (<a href=\"#{}\">incident</a>).",
                    code(b.client_id.as_deref().unwrap_or("-")),
                    code(b.topic.as_deref().unwrap_or("-")),
                    int(b, "acks").unwrap_or_default(),
                    o.anchor()
                ));
            }
            let mut strong: BTreeSet<String> = BTreeSet::new();
            for k in c.rollup.series.keys() {
                if let Key::Acks {
                    topic,
                    acks: -1,
                    client,
                } = k
                {
                    if Some(topic) == a.topic.as_ref() {
                        strong.insert(client.to_string());
                    }
                }
            }
            if !strong.is_empty() {
                out.push(format!(
                    "Producers of the same topic with acks=all: {}.",
                    strong
                        .iter()
                        .map(|s| code(s))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        AlertKind::OffsetResetJump
        | AlertKind::AcknowledgedThenLost
        | AlertKind::ProduceRejected
        | AlertKind::LogTruncated => {
            for o in all.iter().filter(|o| o.id != inc.id && o.kind == a.kind) {
                let b = o.first();
                if near(b) {
                    out.push(format!(
                        "{} {} on {} too at {} (<a href=\"#{}\">incident</a>).",
                        code(b.client_id.as_deref().unwrap_or("-")),
                        esc(b.kind.as_str()),
                        code(&tp(b)),
                        tm(b.ts),
                        o.anchor()
                    ));
                }
            }
        }
    }
    if out.is_empty() {
        out.push("Nothing else seen on the wire within a minute of it: no other client, partition or member was touched the same way.".into());
    }
    out
}

/// Causes that fit the evidence, most likely first (HTML list items).
pub fn causes(a: &Alert, v: &EngineView) -> Vec<String> {
    let mut out = Vec::new();
    match a.kind {
        AlertKind::ListOffsetsRegression => {
            let role = str_field(a, "broker_role");
            let same_broker = str_field(a, "previous_broker")
                .zip(a.broker)
                .is_some_and(|(p, b)| p == b.to_string());
            let epoch_moved = int(a, "previous_leader_epoch") != int(a, "new_leader_epoch");
            if role.as_deref() == Some("follower") {
                out.push("The answer came from a follower (fetch from follower, KIP-392) that had not caught up: its high watermark lags the leader's. Expected to recover by itself; a consumer that reads from it must not treat the lower end as truth.".into());
            }
            if epoch_moved {
                out.push("Leadership moved (the leader epoch changed): the new leader's log end was behind — a hand-off to a replica that was out of sync, or an unclean leader election.".into());
            }
            if same_broker && !epoch_moved && role.as_deref() != Some("follower") {
                out.push("The same broker, in the same leader epoch, told a lower end: the log was truncated or the topic was deleted and re-created under the same name (offsets restart), or the broker restarted from older data.".into());
            }
            if out.is_empty() {
                out.push("Another broker answered with an older view of the partition (a lagging replica, a leader hand-off, or stale metadata).".into());
            }
        }
        AlertKind::CommitAfterRevoke => {
            out.push("The consumer committed offsets it had buffered for partitions the rebalance took away (an asynchronous or periodic commit that ran after the revocation), instead of committing in the revoke callback.".into());
            if int(a, "generation") > int(a, "revoked_generation") {
                out.push("The commit carried the new generation, so the broker could not tell it was stale: brokers check the generation, not who owns the partition.".into());
            }
        }
        AlertKind::StaleOwnerCommit => {
            out.push("The member was evicted (processing longer than max.poll.interval.ms, or a session timeout) and went on processing and committing with its old assignment.".into());
        }
        AlertKind::CommitAheadOfFetch => {
            out.push("The application committed an offset it computed itself (for example the high watermark, or a position advanced by seek) instead of the last processed record + 1.".into());
        }
        AlertKind::OffsetResetJump => {
            out.push("The committed or requested offset was no longer in the log (retention deleted it, or the topic was re-created), and auto.offset.reset=latest moved the consumer to the end.".into());
        }
        AlertKind::CommittedOffsetRegression => {
            out.push("A member committed an older offset than the group had: a stale or evicted member, a restarted job with an old checkpoint, or a manual reset.".into());
        }
        AlertKind::AcknowledgedThenLost => {
            if str_field(a, "deleted_by").is_some() {
                out.push("The topic or its records were deleted on purpose between the acknowledgement and the lower end.".into());
            } else if str_field(a, "acks").as_deref() == Some("all") {
                out.push("Records acknowledged with acks=all are gone: an unclean leader election, or a single replica that crashed before flushing (min.insync.replicas=1, or a broker with in-memory storage).".into());
            } else {
                out.push("Records acknowledged by the leader alone (acks=1) were lost when leadership moved to a replica that had not copied them.".into());
            }
        }
        AlertKind::ProduceRejected => {
            out.push("The broker refused the batch (too large, invalid, not authorized) or never answered it, and the application did not re-send: the delivery error was dropped.".into());
        }
        AlertKind::LogTruncated => {
            out.push("The partition's log was truncated below what the consumer had read: a new leader without those records (unclean election, or acks=1 data not replicated).".into());
        }
        AlertKind::WeakAcks => {
            out.push("The producer is configured with acks=0 or acks=1 (explicitly, or by an old client default), without idempotence.".into());
            if ts_field(a, "leader_change_ts").is_some() {
                out.push("A leader changed while it produced: records acknowledged only by the old leader are lost if the new leader had not copied them.".into());
            }
        }
    }
    if let Some(sw) = str_field(a, "client_software") {
        out.push(format!(
            "The client announced itself as {} (ApiVersions): the advice below is for that library.",
            code(&sw)
        ));
    } else {
        let _ = v;
        out.push("The client did not announce its software (ApiVersions v3+ not captured): the advice below is generic.".into());
    }
    out
}
