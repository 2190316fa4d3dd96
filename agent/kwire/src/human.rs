//! The readable summary printed by `kwire replay` without `--json`.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use kwire_capture::{CaptureError, FileStats};
use kwire_engine::incident::IncidentReport;
use kwire_engine::{Alert, Output, Severity, Summary};
use kwire_flow::{Endpoint, Timestamp};

/// What the readable summary needs beyond the engine's counters.
#[derive(Default)]
pub struct Collector {
    first_ts: Option<Timestamp>,
    last_ts: Option<Timestamp>,
    notices: BTreeMap<&'static str, u64>,
    /// Exchanges per broker endpoint (bounded by the flow table); listed sorted by their text.
    brokers: BTreeMap<Endpoint, u64>,
    alerts: Vec<Alert>,
    alerts_omitted: u64,
}

/// Alerts listed one by one in the readable summary (the rest are counted).
const MAX_LISTED_ALERTS: usize = 50;
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
                if self.alerts.len() < MAX_LISTED_ALERTS {
                    self.alerts.push((**a).clone());
                } else {
                    self.alerts_omitted += 1;
                }
            }
            Output::Timeline(_) => {}
        }
    }
}

pub fn file_json(path: &Path, fs: &FileStats, damage: Option<&CaptureError>) -> serde_json::Value {
    serde_json::json!({
        "path": path.display().to_string(),
        "packets": fs.packets,
        "bytes_read": fs.bytes_read,
        "truncated_packets": fs.truncated_packets,
        "caplen_exceeds_origlen": fs.caplen_exceeds_origlen,
        "bad_records": fs.bad_records,
        "unsupported_blocks": fs.unsupported_blocks,
        "sections": fs.sections,
        "damage": damage.map(|d| d.to_string()),
    })
}

pub fn print(
    w: &mut impl Write,
    path: &Path,
    fs: &FileStats,
    s: &Summary,
    c: &Collector,
    damage: Option<&CaptureError>,
    took: Duration,
) -> io::Result<()> {
    writeln!(w, "kwire replay {}", path.display())?;
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
    writeln!(
        w,
        "  tcp        {} connections: {} Kafka, {} TLS, {} other{}{}",
        f.tcp_connections,
        f.kafka,
        f.tls,
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
    for cl in s.clients.values() {
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
    for a in s.apis.values() {
        let label = if first {
            "  apis      "
        } else {
            "            "
        };
        first = false;
        writeln!(
            w,
            "{label} {:<24} v{:<3} {:>8} requests {:>8} responses",
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
    if c.alerts.is_empty() {
        writeln!(w, "  alerts     none")?;
    } else {
        let crit = c
            .alerts
            .iter()
            .filter(|a| a.severity == Severity::Critical)
            .count();
        writeln!(
            w,
            "  alerts     {} ({} critical)",
            c.alerts.len() as u64 + c.alerts_omitted,
            crit
        )?;
        for a in &c.alerts {
            writeln!(
                w,
                "    {:<8} {} {} [{}] {}",
                a.severity.as_str().to_uppercase(),
                a.ts.to_rfc3339(),
                a.kind.as_str(),
                a.client_id.as_deref().unwrap_or("-"),
                a.explanation
            )?;
        }
        if c.alerts_omitted > 0 {
            writeln!(
                w,
                "    ... and {} more (use --json for all)",
                c.alerts_omitted
            )?;
        }
    }
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
