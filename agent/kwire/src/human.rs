//! The readable summary printed by `kwire replay` without `--json`.
//!
//! Easy to get wrong: every alert is counted (the list is bounded, the counts are not): the verdict and
//! the `alerts` line come from the counts, never from the list; criticals are listed before warnings and
//! infos whatever their time, so 61 warnings then 2 criticals still show both criticals.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;

use kwire_capture::{CaptureError, FileStats};
use kwire_engine::incident::IncidentReport;
use kwire_engine::{Alert, Output, Severity, Summary};
use kwire_flow::{Endpoint, Timestamp};

use crate::drive::FileRun;
use crate::OutputFilter;

/// What the readable summary needs beyond the engine's counters.
#[derive(Default)]
pub struct Collector {
    first_ts: Option<Timestamp>,
    last_ts: Option<Timestamp>,
    notices: BTreeMap<&'static str, u64>,
    /// Exchanges per broker endpoint (bounded by the flow table); listed sorted by their text.
    brokers: BTreeMap<Endpoint, u64>,
    /// Alerts kept to be listed, per severity (most severe first), each in arrival order and bounded by
    /// [`MAX_LISTED_ALERTS`].
    listed: BTreeMap<Reverse<Severity>, Vec<Alert>>,
    /// Every alert counted per (severity, kind, client id): bounded by kinds x client ids (client ids
    /// beyond [`MAX_ALERT_GROUPS`] groups are counted under "(other clients)").
    groups: BTreeMap<(Reverse<Severity>, &'static str, String), AlertGroup>,
    /// Alerts per severity, and in all.
    per_severity: BTreeMap<Reverse<Severity>, u64>,
    total: u64,
}

/// Alerts of one severity, kind and client.
#[derive(Clone, Copy)]
struct AlertGroup {
    count: u64,
    first: Timestamp,
    last: Timestamp,
}

/// Alerts of one severity kept to be listed one by one. When there are more alerts than this in all,
/// criticals are still listed (up to this bound) and the others are shown as counts per kind and client.
const MAX_LISTED_ALERTS: usize = 50;
/// Distinct (severity, kind, client) groups counted by name.
const MAX_ALERT_GROUPS: usize = 1000;
/// Groups shown per severity when alerts are summarised.
const MAX_SHOWN_GROUPS: usize = 30;
/// Incidents with folded repeats listed in the readable summary.
const MAX_LISTED_INCIDENTS: usize = 20;

impl Collector {
    pub fn add(&mut self, o: &Output) {
        match o {
            Output::Exchange(e) => {
                let ts = e.exchange.request_ts;
                if self.first_ts.is_none_or(|f| ts < f) {
                    self.first_ts = Some(ts);
                }
                if self.last_ts.is_none_or(|l| ts > l) {
                    self.last_ts = Some(ts);
                }
                *self.brokers.entry(e.conn.broker).or_insert(0) += 1;
            }
            Output::Notice(n) => *self.notices.entry(n.notice.name()).or_insert(0) += 1,
            Output::Alert(a) => {
                let sev = Reverse(a.severity);
                self.total += 1;
                *self.per_severity.entry(sev).or_insert(0) += 1;
                let list = self.listed.entry(sev).or_default();
                if list.len() < MAX_LISTED_ALERTS {
                    list.push((**a).clone());
                }
                let mut client = a.client_id.as_deref().unwrap_or("-").to_string();
                let mut key = (sev, a.kind.as_str(), client.clone());
                if !self.groups.contains_key(&key) && self.groups.len() >= MAX_ALERT_GROUPS {
                    client = "(other clients)".into();
                    key = (sev, a.kind.as_str(), client);
                }
                let g = self.groups.entry(key).or_insert(AlertGroup {
                    count: 0,
                    first: a.ts,
                    last: a.ts,
                });
                g.count += 1;
                g.first = g.first.min(a.ts);
                g.last = g.last.max(a.ts);
            }
            Output::Timeline(_) | Output::Group(_) => {}
        }
    }

    fn count(&self, s: Severity) -> u64 {
        self.per_severity.get(&Reverse(s)).copied().unwrap_or(0)
    }

    /// Alert kinds of one severity, most frequent first (ties by name).
    fn kinds(&self, s: Severity) -> Vec<(&'static str, u64)> {
        let mut k: BTreeMap<&'static str, u64> = BTreeMap::new();
        for ((sev, kind, _), g) in &self.groups {
            if sev.0 == s {
                *k.entry(kind).or_insert(0) += g.count;
            }
        }
        let mut v: Vec<_> = k.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v
    }

    /// One line: what the alerts mean for the data.
    pub fn verdict(&self) -> String {
        let names = |s: Severity| -> String {
            self.kinds(s)
                .iter()
                .map(|(k, _)| *k)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let plural = |n: u64| if n == 1 { "" } else { "s" };
        let (c, w, i) = (
            self.count(Severity::Critical),
            self.count(Severity::Warning),
            self.count(Severity::Info),
        );
        if c > 0 {
            format!(
                "{c} critical alert{} ({}): data was lost, skipped or will be processed again",
                plural(c),
                names(Severity::Critical)
            )
        } else if w > 0 {
            format!(
                "{w} warning{} ({}): data at risk, no loss seen",
                plural(w),
                names(Severity::Warning)
            )
        } else if i > 0 {
            format!(
                "no data loss seen; {i} info alert{} ({})",
                plural(i),
                names(Severity::Info)
            )
        } else {
            "no alerts: no data loss seen in what was captured".into()
        }
    }
}

/// The `file` object of the JSON summary: `path` is the first input; `paths` lists them all when there
/// are several (merged by packet time).
pub fn file_json(
    paths: &[PathBuf],
    fs: &FileStats,
    damage: Option<&CaptureError>,
) -> serde_json::Value {
    let mut v = serde_json::json!({
        "path": paths.first().map(|p| p.display().to_string()),
        "packets": fs.packets,
        "bytes_read": fs.bytes_read,
        "truncated_packets": fs.truncated_packets,
        "caplen_exceeds_origlen": fs.caplen_exceeds_origlen,
        "bad_records": fs.bad_records,
        "unsupported_blocks": fs.unsupported_blocks,
        "sections": fs.sections,
        "damage": damage.map(|d| d.to_string()),
    });
    if paths.len() > 1 {
        v["paths"] = paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .into();
    }
    v
}

/// The readable summary of a replay: `run` is what reading the files gave, `s` its summary.
pub fn print(
    w: &mut impl Write,
    run: &FileRun,
    s: &Summary,
    c: &Collector,
    filter: &OutputFilter,
) -> io::Result<()> {
    let (paths, fs, damage, took) = (&run.files, &run.stats, run.damage.as_ref(), run.took);
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    writeln!(w, "kwire replay {}", names.join(" "))?;
    writeln!(w, "  verdict    {}", c.verdict())?;
    print_fidelity(w, &s.fidelity)?;
    if filter.is_set() {
        writeln!(
            w,
            "  filter     {}: alerts, brokers and the Kafka time range are of what matched; the other counters are of the whole capture",
            filter.describe()
        )?;
    }
    let mb = fs.bytes_read as f64 / 1e6;
    write!(w, "  capture    {} packets, {:.1} MB", fs.packets, mb)?;
    if let (Some(f), Some(l)) = (&c.first_ts, &c.last_ts) {
        write!(w, ", Kafka traffic from {f} to {l}")?;
    }
    writeln!(w)?;
    if fs.truncated_packets + fs.caplen_exceeds_origlen + fs.bad_records > 0 {
        writeln!(
            w,
            "             {} packets cut by the snaplen, {} with caplen > original length, {} bad records skipped",
            fs.truncated_packets, fs.caplen_exceeds_origlen, fs.bad_records
        )?;
    }
    let p = &s.packets;
    let not_decoded =
        p.not_ip + p.not_tcp + p.truncated + p.ip_fragments + p.unsupported_link + p.malformed;
    writeln!(
        w,
        "  packets    {} TCP segments; {} not decoded (not IP {}, not TCP {}, truncated {}, fragments {}, unsupported link {}, malformed {}); {} filtered by --ports",
        p.tcp_segments, not_decoded, p.not_ip, p.not_tcp, p.truncated, p.ip_fragments, p.unsupported_link, p.malformed, p.filtered_by_port
    )?;
    let f = &s.flows;
    // A decrypted TLS connection is Kafka too: say so here, not only in the tls line below.
    let tls = if s.tls.decrypted > 0 {
        format!("{} TLS ({} decrypted)", f.tls, s.tls.decrypted)
    } else {
        format!("{} TLS", f.tls)
    };
    writeln!(
        w,
        "  tcp        {} connections: {} Kafka, {tls}, {} other{}{}",
        f.tcp_connections,
        f.kafka,
        f.not_kafka,
        if f.port_reuse > 0 {
            format!(", {} port reuses", f.port_reuse)
        } else {
            String::new()
        },
        if f.evicted_full + f.refused_table_full > 0 {
            format!(
                ", flow table full: {} evicted, {} refused",
                f.evicted_full, f.refused_table_full
            )
        } else {
            String::new()
        }
    )?;
    let t = &s.tcp;
    writeln!(
        w,
        "             {} gaps ({} bytes lost), {} bytes retransmitted, {} out-of-order segments, {} bytes dropped by the reorder bound",
        t.gaps, t.gap_bytes, t.retransmitted_bytes, t.out_of_order_segments, t.ooo_dropped_bytes
    )?;
    let tl = &s.tls;
    if tl.connections > 0 {
        writeln!(
            w,
            "  tls        {} connections: {} decrypted, {} without keys{}; {} records decrypted, {} failed, {} directions unreadable after a gap",
            tl.connections,
            tl.decrypted,
            tl.without_keys,
            if tl.unsupported > 0 {
                format!(", {} of a suite not decrypted", tl.unsupported)
            } else {
                String::new()
            },
            tl.records_decrypted,
            tl.records_failed,
            tl.directions_stopped
        )?;
    }
    let k = &s.kafka;
    writeln!(
        w,
        "  kafka      {} requests, {} responses matched, {} orphan responses, {} unanswered, {} desyncs ({} bytes skipped)",
        k.requests, k.responses, k.orphans, k.unanswered, k.desyncs, k.resync_skipped_bytes
    )?;
    if k.decode_errors
        + k.unknown_versions
        + k.oversized_frames
        + k.damaged_frames
        + k.malformed_headers
        > 0
    {
        writeln!(
            w,
            "             {} bodies not decoded, {} unknown versions, {} oversized frames, {} frames damaged by gaps, {} malformed headers",
            k.decode_errors, k.unknown_versions, k.oversized_frames, k.damaged_frames, k.malformed_headers
        )?;
    }
    if k.truncated_frames > 0 {
        writeln!(
            w,
            "             {} frames cut by the end of their connection (lost)",
            k.truncated_frames
        )?;
    }
    if k.tls_bytes + k.sasl_raw_bytes > 0 {
        writeln!(
            w,
            "             {} TLS bytes, {} raw SASL bytes (not decoded)",
            k.tls_bytes, k.sasl_raw_bytes
        )?;
    }
    if !c.brokers.is_empty() {
        let mut b: Vec<String> = c
            .brokers
            .iter()
            .map(|(b, n)| format!("{b} ({n})"))
            .collect();
        b.sort();
        writeln!(w, "  brokers    {}", b.join(", "))?;
    }
    let mut first = true;
    for cl in s.clients_sorted() {
        let label = if first {
            "  clients   "
        } else {
            "            "
        };
        first = false;
        let name = if cl.client_id.is_empty() {
            "(no client id)"
        } else {
            &cl.client_id
        };
        writeln!(
            w,
            "{label} {name}: {} exchanges on {} connections",
            cl.exchanges, cl.connections
        )?;
    }
    let mut first = true;
    // The names' column: 24 wide, wider when a name is longer (GetTelemetrySubscriptions, ...).
    let width = s
        .apis
        .values()
        .map(|a| a.api.len())
        .max()
        .unwrap_or(0)
        .max(24);
    for a in s.apis.values() {
        let label = if first {
            "  apis      "
        } else {
            "            "
        };
        first = false;
        writeln!(
            w,
            "{label} {:<width$} v{:<3} {:>8} requests {:>8} responses",
            a.api, a.api_version, a.requests, a.responses
        )?;
    }
    if !s.produce_acks.is_empty() {
        let a: Vec<String> = s
            .produce_acks
            .iter()
            .map(|(acks, n)| format!("acks={acks}: {n}"))
            .collect();
        writeln!(w, "  produce    {}", a.join(", "))?;
    }
    if s.errors.is_empty() {
        writeln!(w, "  errors     none")?;
    } else {
        let e: Vec<String> = s
            .errors
            .values()
            .map(|e| format!("{} ({}) x{}", e.error, e.error_code, e.count))
            .collect();
        writeln!(w, "  errors     {}", e.join(", "))?;
    }
    if !c.notices.is_empty() {
        let n: Vec<String> = c.notices.iter().map(|(k, v)| format!("{k} x{v}")).collect();
        writeln!(w, "  notices    {}", n.join(", "))?;
    }
    print_alerts(w, c)?;
    print_suppressed(w, &s.suppressed)?;
    print_incidents(w, &s.incidents)?;
    if let Some(d) = damage {
        writeln!(w, "  DAMAGED    {d}")?;
    }
    let secs = took.as_secs_f64();
    if secs >= 0.01 {
        writeln!(w, "  decoded in {:.2} s ({:.0} MB/s)", secs, mb / secs)?;
    } else {
        writeln!(w, "  decoded in {:.1} ms", secs * 1000.0)?;
    }
    Ok(())
}

/// Every alert counted; criticals first, then warnings, then infos. When there are more than
/// [`MAX_LISTED_ALERTS`] in all, criticals are listed (up to that bound) and the rest are counts per kind
/// and client.
fn print_alerts(w: &mut impl Write, c: &Collector) -> io::Result<()> {
    if c.total == 0 {
        return writeln!(w, "  alerts     none");
    }
    writeln!(
        w,
        "  alerts     {} ({} critical, {} warning, {} info)",
        c.total,
        c.count(Severity::Critical),
        c.count(Severity::Warning),
        c.count(Severity::Info)
    )?;
    let one_by_one = c.total <= MAX_LISTED_ALERTS as u64;
    for (sev, list) in &c.listed {
        let n = c.count(sev.0);
        if one_by_one || sev.0 == Severity::Critical {
            for a in list {
                writeln!(
                    w,
                    "    {:<8} {} {} [{}] {}",
                    a.severity.as_str().to_uppercase(),
                    a.ts.to_rfc3339(),
                    a.kind.as_str(),
                    a.client_id.as_deref().unwrap_or("-"),
                    a.explanation
                )?;
                print_evidence(w, a)?;
            }
            if n > list.len() as u64 {
                writeln!(
                    w,
                    "    ... and {} more {} (use --json for all):",
                    n - list.len() as u64,
                    sev.0.as_str()
                )?;
                print_groups(w, c, sev.0)?;
            }
        } else {
            writeln!(
                w,
                "    {:<8} {n} alerts by kind and client (use --json for each):",
                sev.0.as_str().to_uppercase()
            )?;
            print_groups(w, c, sev.0)?;
        }
    }
    Ok(())
}

/// The packets an alert rests on, to open in Wireshark (`frame.number == N`): one line, when the
/// packets are numbered (a file replayed, or a live capture written with --write-pcap).
fn print_evidence(w: &mut impl Write, a: &kwire_engine::alert::Alert) -> io::Result<()> {
    let parts: Vec<String> = a
        .evidence
        .iter()
        .filter(|e| e.xref.request_frame > 0)
        .map(|e| {
            let frames = if e.xref.response_frame > 0 {
                format!("{}→{}", e.xref.request_frame, e.xref.response_frame)
            } else {
                e.xref.request_frame.to_string()
            };
            let offset = e
                .offset
                .map(|o| format!(", offset {o}"))
                .unwrap_or_default();
            format!(
                "{} frames {frames} ({} {}{offset})",
                e.role,
                kwire_kafka::api::api_name(e.xref.api_key),
                e.broker
            )
        })
        .collect();
    if parts.is_empty() {
        return Ok(());
    }
    writeln!(w, "             evidence: {}", parts.join("; "))
}

/// The `fidelity` line: `complete`, or what may make conclusions incomplete, one line each with figures.
pub fn print_fidelity(w: &mut impl Write, f: &kwire_engine::stats::Fidelity) -> io::Result<()> {
    if f.complete() {
        return writeln!(w, "  fidelity   complete");
    }
    writeln!(
        w,
        "  fidelity   incomplete: alerts and figures may be missing because of"
    )?;
    let mut lines = Vec::new();
    if f.snaplen_cut_packets + f.snaplen_cut_bytes > 0 {
        lines.push(format!(
            "{} packets cut by the snaplen ({} TCP payload bytes missing): Kafka frames in them are not decoded (capture with -s 0)",
            f.snaplen_cut_packets, f.snaplen_cut_bytes
        ));
    }
    if f.lost_bytes > 0 {
        lines.push(format!(
            "{} bytes lost in gaps of TCP streams (packets not captured; {} gaps in all): exchanges in them are missing",
            f.lost_bytes, f.gaps
        ));
    }
    if f.kernel_drops > 0 {
        lines.push(format!(
            "{} packets dropped by the kernel before kwire saw them",
            f.kernel_drops
        ));
    }
    if f.midstream_connections > 0 {
        lines.push(format!(
            "{} Kafka connection{} joined mid-stream (no SYN seen): group state and earlier offsets unknown",
            f.midstream_connections,
            if f.midstream_connections == 1 { "" } else { "s" }
        ));
    }
    if f.one_direction_connections > 0 {
        lines.push(format!(
            "{} Kafka connection{} with bytes in one direction only: requests without responses (or the reverse)",
            f.one_direction_connections,
            if f.one_direction_connections == 1 { "" } else { "s" }
        ));
    }
    if f.unconfirmed_requests > 0 {
        lines.push(format!(
            "{} request{} found mid-stream that no response confirmed: left out (they may be record bytes that read as requests)",
            f.unconfirmed_requests,
            if f.unconfirmed_requests == 1 { "" } else { "s" }
        ));
    }
    if f.memory_budget_denied > 0 {
        lines.push(format!(
            "the memory budget (memory_budget_bytes) refused {} buffer{}: frames decoded by header only, out-of-order holes given up",
            f.memory_budget_denied,
            if f.memory_budget_denied == 1 { "" } else { "s" }
        ));
    }
    if f.flows_evicted + f.flows_refused > 0 {
        lines.push(format!(
            "flow table full (max_flows): {} connections evicted, {} refused",
            f.flows_evicted, f.flows_refused
        ));
    }
    if f.tls_without_keys > 0 {
        lines.push(format!(
            "{} TLS connection{} not decrypted: no key for {} (replay with --tls-keylog FILE, a key log written by the clients' SSLKEYLOGFILE)",
            f.tls_without_keys,
            if f.tls_without_keys == 1 { "" } else { "s" },
            if f.tls_without_keys == 1 { "it" } else { "them" }
        ));
    }
    if f.tls_records_lost > 0 {
        lines.push(format!(
            "{} TLS record{} with keys that could not be decrypted (wrong key log, damaged bytes or a capture gap): exchanges in them are missing",
            f.tls_records_lost,
            if f.tls_records_lost == 1 { "" } else { "s" }
        ));
    }
    let l = &f.limits;
    if l.any() {
        let mut hit = Vec::new();
        for (n, what) in [
            (
                l.timelines_dropped,
                "offset observations (max_clients, max_partitions_per_client)",
            ),
            (
                l.groups_dropped,
                "group members (max_groups, max_members_per_group)",
            ),
            (l.cluster_dropped, "partitions (max_partitions)"),
            (
                l.weak_producers_dropped,
                "weak-acks producers (max_weak_producers)",
            ),
            (
                l.acked_partitions_dropped,
                "partitions' acknowledged offsets (max_acked_partitions)",
            ),
            (
                l.rejected_batches_dropped,
                "refused Produce batches (max_rejected_batches)",
            ),
        ] {
            if n > 0 {
                hit.push(format!("{n} {what}"));
            }
        }
        lines.push(format!(
            "analysis limits hit, not tracked: {}",
            hit.join(", ")
        ));
    }
    for l in lines {
        writeln!(w, "             - {l}")?;
    }
    Ok(())
}

/// The `[[suppress]]` rules with what each held back (only when the config has rules).
fn print_suppressed(
    w: &mut impl Write,
    rules: &[kwire_engine::analysis::suppress::Suppressed],
) -> io::Result<()> {
    if rules.is_empty() {
        return Ok(());
    }
    let total: u64 = rules.iter().map(|r| r.count).sum();
    writeln!(
        w,
        "  suppressed {total} alert{} by {} [[suppress]] rule{} of the config (not listed above)",
        if total == 1 { "" } else { "s" },
        rules.len(),
        if rules.len() == 1 { "" } else { "s" }
    )?;
    for r in rules {
        writeln!(
            w,
            "    {:>6} x {}{}",
            r.count,
            r.describe(),
            r.reason
                .as_deref()
                .map(|x| format!(" ({x})"))
                .unwrap_or_default()
        )?;
    }
    Ok(())
}

/// Counts per kind and client of one severity, most frequent first.
fn print_groups(w: &mut impl Write, c: &Collector, s: Severity) -> io::Result<()> {
    let mut g: Vec<_> = c
        .groups
        .iter()
        .filter(|((sev, _, _), _)| sev.0 == s)
        .collect();
    g.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(b.0)));
    for ((_, kind, client), n) in g.iter().take(MAX_SHOWN_GROUPS) {
        writeln!(
            w,
            "      {:>6} x {kind} [{client}] {} to {}",
            n.count,
            n.first.to_rfc3339(),
            n.last.to_rfc3339()
        )?;
    }
    if g.len() > MAX_SHOWN_GROUPS {
        let rest: u64 = g.iter().skip(MAX_SHOWN_GROUPS).map(|(_, n)| n.count).sum();
        writeln!(
            w,
            "      ... {rest} more in {} other groups",
            g.len() - MAX_SHOWN_GROUPS
        )?;
    }
    Ok(())
}

/// Incidents whose repeats were folded (no line of their own), with their counts: the rest of the story
/// of the alerts above.
fn print_incidents(w: &mut impl Write, r: &IncidentReport) -> io::Result<()> {
    if r.repeats == 0 {
        return Ok(());
    }
    writeln!(
        w,
        "  incidents  {} ({} repeated observations folded into their alerts)",
        r.opened, r.repeats
    )?;
    let repeated: Vec<_> = r
        .list
        .iter()
        .filter(|i| i.occurrences > i.alert_lines)
        .collect();
    for i in repeated.iter().take(MAX_LISTED_INCIDENTS) {
        let place = match (&i.topic, i.partition) {
            (Some(t), Some(p)) => format!(" {t}-{p}"),
            (Some(t), None) => format!(" {t}"),
            _ => String::new(),
        };
        writeln!(
            w,
            "    {} [{}]{place}: {} occurrences in {} alert lines, {} to {}{}",
            i.alert,
            i.client_id.as_deref().unwrap_or("-"),
            i.occurrences,
            i.alert_lines,
            i.first_ts,
            i.last_ts,
            i.closed
                .map(|c| format!(", {}", c.as_str()))
                .unwrap_or_default()
        )?;
    }
    if repeated.len() > MAX_LISTED_INCIDENTS {
        writeln!(
            w,
            "    ... and {} more (the JSON summary lists them)",
            repeated.len() - MAX_LISTED_INCIDENTS
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kwire_engine::AlertKind;

    fn alert(kind: AlertKind, sev: Severity, secs: i64, client: &str) -> Output {
        let mut a = Alert::new(
            kind,
            sev,
            Timestamp(1_700_000_000_000_000_000 + secs * 1_000_000_000),
            format!("{} at {secs}", kind.as_str()),
        );
        a.client_id = Some(client.into());
        Output::Alert(Box::new(a))
    }

    fn alerts_section(c: &Collector) -> Vec<String> {
        let mut out = Vec::new();
        print_alerts(&mut out, c).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    /// The case: 61 warnings, then 2 criticals. The old summary kept the first 50 in time order
    /// and said `alerts 65 (0 critical)`.
    #[test]
    fn criticals_after_many_warnings_are_counted_and_listed_first() {
        let mut c = Collector::default();
        for i in 0..61 {
            let client = if i % 3 == 0 { "c-b" } else { "c-a" };
            c.add(&alert(AlertKind::WeakAcks, Severity::Warning, i, client));
        }
        c.add(&alert(
            AlertKind::CommittedOffsetRegression,
            Severity::Info,
            70,
            "c-a",
        ));
        c.add(&alert(
            AlertKind::CommittedOffsetRegression,
            Severity::Info,
            71,
            "c-a",
        ));
        c.add(&alert(
            AlertKind::CommitAfterRevoke,
            Severity::Critical,
            80,
            "c-a",
        ));
        c.add(&alert(
            AlertKind::CommitAfterRevoke,
            Severity::Critical,
            81,
            "c-b",
        ));
        assert_eq!(
            c.verdict(),
            "2 critical alerts (commit_after_revoke): data was lost, skipped or will be processed again"
        );
        let l = alerts_section(&c);
        assert_eq!(l[0], "  alerts     65 (2 critical, 61 warning, 2 info)");
        assert_eq!(
            l[1],
            "    CRITICAL 2023-11-14T22:14:40.000000Z commit_after_revoke [c-a] commit_after_revoke at 80"
        );
        assert_eq!(
            l[2],
            "    CRITICAL 2023-11-14T22:14:41.000000Z commit_after_revoke [c-b] commit_after_revoke at 81"
        );
        // More than 50 in all: the warnings and infos are counts per kind and client.
        assert_eq!(
            l[3],
            "    WARNING  61 alerts by kind and client (use --json for each):"
        );
        assert_eq!(
            l[4],
            "          40 x weak_acks [c-a] 2023-11-14T22:13:21.000000Z to 2023-11-14T22:14:19.000000Z"
        );
        assert_eq!(
            l[5],
            "          21 x weak_acks [c-b] 2023-11-14T22:13:20.000000Z to 2023-11-14T22:14:20.000000Z"
        );
        assert_eq!(
            l[6],
            "    INFO     2 alerts by kind and client (use --json for each):"
        );
        assert_eq!(
            l[7],
            "           2 x committed_offset_regression [c-a] 2023-11-14T22:14:30.000000Z to 2023-11-14T22:14:31.000000Z"
        );
        assert_eq!(l.len(), 8, "{l:#?}");
    }

    #[test]
    fn criticals_beyond_the_bound_are_counted_by_kind_and_client() {
        let mut c = Collector::default();
        for i in 0..(MAX_LISTED_ALERTS as i64 + 7) {
            c.add(&alert(
                AlertKind::CommitAfterRevoke,
                Severity::Critical,
                i,
                "c-a",
            ));
        }
        let l = alerts_section(&c);
        assert_eq!(l[0], "  alerts     57 (57 critical, 0 warning, 0 info)");
        assert_eq!(l.len(), 1 + 50 + 2, "{l:#?}");
        assert_eq!(l[51], "    ... and 7 more critical (use --json for all):");
        assert!(
            l[52].starts_with("          57 x commit_after_revoke [c-a] "),
            "{}",
            l[52]
        );
    }

    #[test]
    fn verdict_without_criticals() {
        let mut c = Collector::default();
        assert_eq!(
            c.verdict(),
            "no alerts: no data loss seen in what was captured"
        );
        c.add(&alert(
            AlertKind::CommittedOffsetRegression,
            Severity::Info,
            1,
            "c",
        ));
        assert_eq!(
            c.verdict(),
            "no data loss seen; 1 info alert (committed_offset_regression)"
        );
        c.add(&alert(AlertKind::WeakAcks, Severity::Warning, 2, "c"));
        assert_eq!(
            c.verdict(),
            "1 warning (weak_acks): data at risk, no loss seen"
        );
    }
}
