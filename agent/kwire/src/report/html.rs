//! The report page: one HTML document with its CSS inline and its charts as inline SVG. No script, no
//! font, image or style sheet from anywhere else: it opens the same offline, in a mail attachment, on
//! paper (print styles: each incident on its own page, no navigation).
//!
//! Why this file is long: it is the page, top to bottom (inline CSS, overview, incident sections, context
//! charts) in the order a reader meets it; the words and charts it places live in `story` and `svg`.
//!
//! Easy to get wrong: every string from the wire (client ids, topics, groups, member ids, software names)
//! goes through [`esc`]; the page has no clock in it (no "generated at"), so the same capture gives the
//! same bytes; tables are cut at a bound with the count of what was left out, never silently.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use kwire_engine::{AlertKind, Severity};
use kwire_flow::Timestamp;

use super::collect::{Collector, Key};
use super::story::{self, code, dur, tm, Incident};
use super::svg::{self, Marker, Plot, Series, Shape};
use super::{Capture, EngineView};

/// Rows of a listing table before the rest are counted.
const MAX_ROWS: usize = 200;
/// Incidents written out in full; the others are listed only.
pub const MAX_SECTIONS: usize = 100;
/// Series of a context chart.
const MAX_LINES: usize = 7;

/// HTML-escaped text.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if c.is_control() => o.push('\u{fffd}'),
            c => o.push(c),
        }
    }
    o
}

const CSS: &str = r#"
:root{--ink:#1d2125;--mute:#5b636b;--line:#d9dee3;--bg:#f6f7f9;--crit:#b3261e;--critbg:#fdecea;--warn:#8a5300;--warnbg:#fff4e0;--info:#0b5cad;--infobg:#e8f1fb;--ok:#17663a;--okbg:#e6f4ea}
*{box-sizing:border-box}
html{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);background:var(--bg)}
body{margin:0}
.wrap{max-width:1120px;margin:0 auto;padding:0 24px}
header.top{background:#1f2a36;color:#fff;padding:18px 0 16px}
header.top .brand{font-size:12px;letter-spacing:.08em;text-transform:uppercase;color:#9fb3c8}
header.top h1{margin:2px 0 4px;font-size:24px}
header.top .sub{margin:0;color:#c9d6e3;font-size:13px}
main{padding:18px 24px 40px}
h2{font-size:20px;margin:28px 0 10px}
h3{font-size:15px;margin:18px 0 6px;color:#30373e;text-transform:uppercase;letter-spacing:.04em}
code{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#eef1f4;padding:0 3px;border-radius:3px;overflow-wrap:anywhere}
b.v{font-variant-numeric:tabular-nums;background:#fff3b0;padding:0 3px;border-radius:2px}
time{font-variant-numeric:tabular-nums;white-space:nowrap}
.verdict{border-left:6px solid;padding:12px 16px;border-radius:4px;font-size:17px;font-weight:600;margin:4px 0 14px}
.sev-critical{border-color:var(--crit)}.verdict.sev-critical{background:var(--critbg);color:var(--crit)}
.sev-warning{border-color:#e69f00}.verdict.sev-warning{background:var(--warnbg);color:var(--warn)}
.sev-info{border-color:var(--info)}.verdict.sev-info{background:var(--infobg);color:var(--info)}
.sev-none{border-color:var(--ok)}.verdict.sev-none{background:var(--okbg);color:var(--ok)}
.badge{display:inline-block;font-size:11px;font-weight:700;letter-spacing:.05em;padding:1px 7px;border-radius:10px;color:#fff;vertical-align:2px}
.badge.critical{background:var(--crit)}.badge.warning{background:#b36b00}.badge.info{background:var(--info)}
nav.toc{background:#fff;border:1px solid var(--line);border-radius:6px;padding:8px 14px;font-size:14px}
nav.toc a{margin-right:14px}
a{color:#0b5cad}
.card{background:#fff;border:1px solid var(--line);border-radius:6px;padding:12px 16px;margin:10px 0}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:14px}
table{border-collapse:collapse;width:100%;font-size:13.5px;background:#fff}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{background:#eef1f4;font-weight:600;white-space:nowrap}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.trigger td{background:#fff3f0;font-weight:600}
td>code{white-space:nowrap}
td.wf>code{white-space:normal;overflow-wrap:normal;word-break:normal}
.tw{overflow-x:auto}
td.wf{min-width:150px}
table.kv th{width:34%;background:#f7f8fa}
.fid-ok{color:var(--ok);font-weight:600}.fid-bad{color:var(--warn);font-weight:600}
article.incident{background:#fff;border:1px solid var(--line);border-left:6px solid;border-radius:6px;padding:6px 20px 14px;margin:20px 0}
article.incident h2{margin:12px 0 4px}
p.meta{color:var(--mute);font-size:13px;margin:0 0 6px}
p.what{font-size:15.5px;line-height:1.6;margin:6px 0}
.hint{color:var(--mute);font-size:12.5px;margin:4px 0}
figure{margin:10px 0;padding:0}
figcaption{color:var(--mute);font-size:12.5px}
svg.chart{width:100%;height:auto;display:block;background:#fff;border:1px solid var(--line);border-radius:4px}
svg .grid{stroke:#e6e9ec;stroke-width:1}
svg .frame{fill:none;stroke:#b9c0c7;stroke-width:1}
svg text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif}
svg .ax{font-size:11.5px;fill:#5b636b}
svg .lg{font-size:12px;fill:#1d2125}
svg .mk{font-size:11.5px;font-weight:600}
svg .ln{font-size:12.5px;font-weight:600;fill:#1d2125}
svg .ls{font-size:10.5px;fill:#5b636b}
svg .bt{font-size:11px;fill:#fff;font-weight:600}
svg .bt.dark{fill:#1d2125;font-weight:400}
svg .dl{font-size:11px;font-weight:600}
svg .nt{font-size:12px;font-weight:700;paint-order:stroke;stroke:#fff;stroke-width:4px;stroke-linejoin:round}
svg .lane0{fill:#fafbfc}svg .lane1{fill:#f1f3f5}
svg .empty{fill:#fafbfc;stroke:#d9dee3}
svg .nodata{font-size:13px;fill:#5b636b}
.advice{background:#f3f8f4;border:1px solid #cfe5d6;border-radius:4px;padding:8px 12px}
details{margin:8px 0}
summary{cursor:pointer;color:var(--mute);font-size:13px}
ul{margin:4px 0 4px 20px;padding:0}
li{margin:2px 0}
footer{color:var(--mute);font-size:12.5px;border-top:1px solid var(--line);margin-top:30px;padding-top:10px}
@media (max-width:800px){.grid2{grid-template-columns:1fr}}
@media print{
 html{background:#fff;font-size:11pt}
 header.top{background:#fff;color:#000;border-bottom:2px solid #000}
 header.top .brand,header.top .sub{color:#333}
 nav.toc{display:none}
 article.incident{break-before:page;border:1px solid #999;border-left:6px solid}
 figure,table,svg{break-inside:avoid}
 a{color:inherit;text-decoration:none}
 details>summary{display:none}
 details{display:block}
}
"#;

fn sev_class(s: Option<Severity>) -> &'static str {
    match s {
        Some(Severity::Critical) => "critical",
        Some(Severity::Warning) => "warning",
        Some(Severity::Info) => "info",
        None => "none",
    }
}

fn badge(s: Severity) -> String {
    format!(
        r#"<span class="badge {}">{}</span>"#,
        sev_class(Some(s)),
        s.as_str().to_uppercase()
    )
}

fn ts_opt(t: Option<Timestamp>) -> String {
    t.map(tm).unwrap_or_else(|| "-".into())
}

fn more(out: &mut String, left: usize, what: &str) {
    if left > 0 {
        let _ = write!(
            out,
            r#"<p class="hint">… and {left} more {what} not listed.</p>"#
        );
    }
}

/// The whole page.
pub fn render(
    c: &Collector,
    v: &EngineView,
    cap: &Capture,
    title: Option<&str>,
    max_sections: usize,
) -> String {
    let incs = story::incidents(c, v);
    let worst = incs.iter().map(|i| i.severity).max();
    let mut o = String::with_capacity(256 * 1024);
    let title = title
        .map(str::to_string)
        .unwrap_or_else(|| match cap.files.len() {
            0 => "kwire report".into(),
            1 => format!("kwire report: {}", cap.files[0]),
            k => format!("kwire report: {} and {} more", cap.files[0], k - 1),
        });
    let _ = write!(
        o,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><meta name=\"generator\" content=\"kwire {}\"><title>{}</title><style>{CSS}</style></head><body>\n",
        env!("CARGO_PKG_VERSION"),
        esc(&title)
    );
    let range = match (cap.first_ts, cap.last_ts) {
        (Some(a), Some(b)) => format!("{} → {} ({})", tm(a), tm(b), dur(b.nanos_since(a))),
        _ => "no packets".into(),
    };
    let _ = write!(
        o,
        r#"<header class="top"><div class="wrap"><div class="brand">kwire · incident report from the wire</div><h1>{}</h1><p class="sub">{range}</p></div></header><main class="wrap">"#,
        esc(&title)
    );
    // Verdict.
    let count = |s: Severity| incs.iter().filter(|i| i.severity == s).count();
    let verdict = match worst {
        Some(Severity::Critical) => format!(
            "{} critical incident{}: data was lost, skipped or will be processed again.",
            count(Severity::Critical),
            if count(Severity::Critical) == 1 {
                ""
            } else {
                "s"
            }
        ),
        Some(Severity::Warning) => format!(
            "{} warning{}: data at risk, no loss seen.",
            count(Severity::Warning),
            if count(Severity::Warning) == 1 {
                ""
            } else {
                "s"
            }
        ),
        Some(Severity::Info) => format!(
            "No data loss seen; {} incident{} worth a look.",
            count(Severity::Info),
            if count(Severity::Info) == 1 { "" } else { "s" }
        ),
        None => "No alerts: no data loss seen in what was captured.".into(),
    };
    let mut extra = String::new();
    if !v.summary.fidelity.complete() {
        extra = " The capture is incomplete (see Fidelity): conclusions may be missing.".into();
    }
    let _ = write!(
        o,
        r#"<div class="verdict sev-{}">{}{}</div>"#,
        sev_class(worst),
        esc(&verdict),
        esc(&extra)
    );
    if c.filter().is_set() {
        let _ = write!(
            o,
            r#"<p class="hint">Filter {}: alerts, clients, brokers, topics and rates are of what matched; the analysis saw the whole capture.</p>"#,
            code(&c.filter().describe())
        );
    }
    // Contents.
    o.push_str(r##"<nav class="toc"><b>Contents</b> · <a href="#overview">Overview</a><a href="#incidents">Incidents</a><a href="#context">Context charts</a><a href="#reading">How to read this report</a></nav>"##);

    overview(&mut o, c, v, cap, &incs);

    // Incidents.
    let _ = write!(o, r#"<section id="incidents"><h2>Incidents</h2>"#);
    if incs.is_empty() {
        o.push_str(r#"<p>No alert was raised: no sign of data loss, skipped records or reprocessing in this capture.</p>"#);
    }
    for inc in incs.iter().take(max_sections) {
        incident(&mut o, inc, &incs, c, v);
    }
    more(
        &mut o,
        incs.len().saturating_sub(max_sections),
        "incidents (listed in the overview)",
    );
    o.push_str("</section>");

    context(&mut o, c, v);
    reading(&mut o, c);
    let _ = writeln!(
        o,
        r#"<footer>Made by kwire {} from packets only (Kafka protocol headers and offsets; record keys, values and headers are never decoded, SASL bytes never kept). The same capture gives the same page, byte for byte. No script, font or image is loaded from anywhere.</footer></main></body></html>"#,
        env!("CARGO_PKG_VERSION")
    );
    o
}

fn overview(o: &mut String, c: &Collector, v: &EngineView, cap: &Capture, incs: &[Incident]) {
    let s = &v.summary;
    o.push_str(r#"<section id="overview"><h2>Overview</h2><div class="grid2"><div class="card"><h3>Capture</h3><table class="kv">"#);
    let files = cap
        .files
        .iter()
        .take(20)
        .map(|f| code(f))
        .collect::<Vec<_>>()
        .join("<br>");
    let _ = write!(
        o,
        "<tr><th>{}</th><td>{files}{}</td></tr>",
        if cap.live.is_some() {
            "source"
        } else {
            "files"
        },
        if cap.files.len() > 20 {
            format!("<br>… {} more", cap.files.len() - 20)
        } else {
            String::new()
        }
    );
    if let Some(l) = &cap.live {
        let _ = write!(o, "<tr><th>live</th><td>{}</td></tr>", esc(l));
    }
    let _ = write!(
        o,
        "<tr><th>from</th><td>{}</td></tr><tr><th>to</th><td>{}</td></tr>",
        ts_opt(cap.first_ts),
        ts_opt(cap.last_ts)
    );
    if let (Some(a), Some(b)) = (cap.first_ts, cap.last_ts) {
        let _ = write!(
            o,
            "<tr><th>duration</th><td>{}</td></tr>",
            dur(b.nanos_since(a))
        );
    }
    // As the readable summary: decrypted TLS connections are Kafka too.
    let decrypted = if s.tls.decrypted > 0 {
        format!(", {} decrypted", s.tls.decrypted)
    } else {
        String::new()
    };
    let _ = write!(
        o,
        "<tr><th>packets</th><td>{}</td></tr><tr><th>bytes</th><td>{}</td></tr><tr><th>TCP connections</th><td>{} ({} Kafka, {} TLS{decrypted})</td></tr><tr><th>Kafka requests</th><td>{} ({} answered)</td></tr>",
        svg::group_digits(cap.packets as i64),
        svg::group_digits(cap.bytes as i64),
        s.flows.tcp_connections,
        s.flows.kafka,
        s.flows.tls,
        svg::group_digits(s.kafka.requests as i64),
        svg::group_digits(s.kafka.responses as i64)
    );
    if let Some(d) = &cap.damage {
        let _ = write!(o, "<tr><th>damage</th><td class=\"fid-bad\">{} (everything before it is in this report)</td></tr>", esc(d));
    }
    o.push_str("</table></div>");
    // Fidelity.
    let f = &s.fidelity;
    o.push_str(r#"<div class="card"><h3>Fidelity</h3>"#);
    if f.complete() && cap.damage.is_none() {
        o.push_str(r#"<p class="fid-ok">Complete: every connection seen from its start, both directions, no bytes missing, no bound hit.</p>"#);
    } else {
        o.push_str(r#"<p class="fid-bad">Conclusions may be incomplete:</p><ul>"#);
        if f.snaplen_cut_packets + f.snaplen_cut_bytes > 0 {
            let _ = write!(o, "<li><b>snaplen</b>: {} packets cut short, {} bytes missing — frames in them are decoded by header only.</li>", f.snaplen_cut_packets, f.snaplen_cut_bytes);
        }
        if f.lost_bytes > 0 {
            let _ = write!(o, "<li><b>gaps</b>: {} holes in TCP streams, {} bytes never captured — exchanges in them are missing.</li>", f.gaps, f.lost_bytes);
        }
        if f.kernel_drops > 0 {
            let _ = write!(
                o,
                "<li><b>drops</b>: {} packets lost before kwire read them.</li>",
                f.kernel_drops
            );
        }
        if f.midstream_connections > 0 {
            let _ = write!(o, "<li><b>mid-stream joins</b>: {} connections started before the capture — what their clients were told earlier is unknown.</li>", f.midstream_connections);
        }
        if f.one_direction_connections > 0 {
            let _ = write!(o, "<li><b>one direction only</b>: {} connections — requests without answers or the reverse.</li>", f.one_direction_connections);
        }
        if f.flows_evicted + f.flows_refused > 0 {
            let _ = write!(
                o,
                "<li><b>flow table full</b>: {} connections evicted, {} refused.</li>",
                f.flows_evicted, f.flows_refused
            );
        }
        if f.limits.any() {
            let l = &f.limits;
            let _ = write!(o, "<li><b>analysis limits</b>: {} offset observations, {} group members, {} partitions, {} producers not tracked.</li>", l.timelines_dropped, l.groups_dropped, l.cluster_dropped, l.weak_producers_dropped);
        }
        o.push_str("</ul>");
    }
    if c.dropped.any() {
        let d = &c.dropped;
        let _ = write!(
            o,
            r#"<p class="hint">This report's own bounds left out: {} offset points, {} offset series, {} group events, {} alert lines, {} clients, {} brokers, {} topics, {} chart series.</p>"#,
            d.points,
            d.series,
            d.group_events,
            d.alerts,
            d.clients,
            d.brokers,
            d.topics,
            d.rollup_series
        );
    }
    if !c.notices.is_empty() {
        let list: Vec<String> = c
            .notices
            .iter()
            .map(|(k, n)| format!("{} {k}", n))
            .collect();
        let _ = write!(
            o,
            r#"<p class="hint">Notices: {}.</p>"#,
            esc(&list.join(", "))
        );
    }
    o.push_str("</div></div>");

    // Alerts by severity.
    o.push_str(r#"<h3>Alerts</h3>"#);
    if incs.is_empty() {
        o.push_str("<p>None.</p>");
    } else {
        let mut counts: BTreeMap<(std::cmp::Reverse<Severity>, &'static str), (usize, u64, u64)> =
            BTreeMap::new();
        for i in incs {
            let e = counts
                .entry((std::cmp::Reverse(i.severity), i.kind.as_str()))
                .or_default();
            e.0 += 1;
            e.1 += i.lines.len() as u64;
            e.2 += i.occurrences();
        }
        o.push_str(r#"<table><tr><th>severity</th><th>alert</th><th class="n">incidents</th><th class="n">alert lines</th><th class="n">observations</th></tr>"#);
        for ((sev, kind), (k, l, obs)) in &counts {
            let _ = write!(
                o,
                r#"<tr><td>{}</td><td>{}</td><td class="n">{k}</td><td class="n">{l}</td><td class="n">{obs}</td></tr>"#,
                badge(sev.0),
                code(kind)
            );
        }
        o.push_str("</table>");
        o.push_str(r#"<p class="hint">One incident is one condition (one client and partition, one member and revocation, one producer and acks): its repeats are counted, not repeated.</p>"#);
        o.push_str(r#"<table><tr><th></th><th>alert</th><th>client</th><th>partition</th><th>first seen</th><th class="n">seen</th><th>in figures</th></tr>"#);
        for i in incs.iter().take(MAX_ROWS) {
            let a = i.first();
            let _ = write!(
                o,
                r##"<tr><td>{}</td><td><a href="#{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td class="n">{}</td><td>{}</td></tr>"##,
                badge(i.severity),
                i.anchor(),
                esc(i.kind.as_str()),
                code(a.client_id.as_deref().unwrap_or("-")),
                code(&story::tp(a)),
                tm(a.ts),
                i.occurrences(),
                esc(&story::key_figures(a))
            );
        }
        o.push_str("</table>");
        more(o, incs.len().saturating_sub(MAX_ROWS), "incidents");
    }

    // Brokers.
    o.push_str(r#"<h3>Brokers</h3><table><tr><th>address</th><th>node id</th><th class="n">exchanges</th><th class="n">clients</th></tr>"#);
    for (b, i) in c.brokers.iter().take(MAX_ROWS) {
        let id = v
            .node_ids
            .get(&b.to_string())
            .map(|i| i.to_string())
            .unwrap_or_else(|| "-".into());
        let _ = write!(
            o,
            r#"<tr><td>{}</td><td>{id}</td><td class="n">{}</td><td class="n">{}</td></tr>"#,
            code(&b.to_string()),
            svg::group_digits(i.exchanges as i64),
            i.clients.len()
        );
    }
    o.push_str("</table>");
    more(o, c.brokers.len().saturating_sub(MAX_ROWS), "brokers");

    // Clients.
    o.push_str(r#"<h3>Clients</h3><table><tr><th>client.id</th><th>software (ApiVersions)</th><th>addresses</th><th>pod</th><th class="n">exchanges</th><th>seen</th></tr>"#);
    for ((id, ip), i) in c.clients.iter().take(MAX_ROWS) {
        let sw = v
            .software
            .get(&(id.to_string(), *ip))
            .cloned()
            .unwrap_or_else(|| "not announced".into());
        let addrs: Vec<String> = i.addrs.iter().take(3).map(|a| a.to_string()).collect();
        let extra = if i.addrs.len() > 3 {
            format!(" +{}", i.addrs.len() - 3)
        } else {
            String::new()
        };
        let _ = write!(
            o,
            r#"<tr><td>{}</td><td>{}</td><td>{}{extra}</td><td>{}</td><td class="n">{}</td><td>{} – {}</td></tr>"#,
            code(if id.is_empty() { "(none)" } else { id }),
            esc(&sw),
            esc(&addrs.join(", ")),
            esc(i.pod.as_deref().unwrap_or("-")),
            svg::group_digits(i.exchanges as i64),
            i.first_ts
                .map(|t| svg::clock(t.0, 1_000_000))
                .unwrap_or_default(),
            i.last_ts
                .map(|t| svg::clock(t.0, 1_000_000))
                .unwrap_or_default(),
        );
    }
    o.push_str("</table>");
    more(o, c.clients.len().saturating_sub(MAX_ROWS), "clients");

    // Topics.
    o.push_str(r#"<h3>Topics</h3><table><tr><th>topic</th><th class="n">partitions seen</th><th class="n">produce requests</th><th class="n">records produced</th><th class="n">bytes produced</th><th class="n">records fetched</th><th>producers</th><th>consumers</th></tr>"#);
    if c.topics.is_empty() {
        o.push_str(r#"<tr><td colspan="8">No produce or fetch traffic.</td></tr>"#);
    }
    for (t, i) in c.topics.iter().take(MAX_ROWS) {
        let names = |s: &BTreeSet<kwire_engine::model::Name>| {
            let v: Vec<String> = s.iter().take(6).map(|x| x.to_string()).collect();
            let more = if s.len() > 6 {
                format!(" +{}", s.len() - 6)
            } else {
                String::new()
            };
            format!("{}{more}", esc(&v.join(", ")))
        };
        let _ = write!(
            o,
            r#"<tr><td>{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td>{}</td><td>{}</td></tr>"#,
            code(t),
            i.partitions.len(),
            svg::group_digits(i.produce_requests as i64),
            svg::group_digits(i.produced_records as i64),
            svg::group_digits(i.produced_bytes as i64),
            svg::group_digits(i.fetched_records as i64),
            names(&i.producers),
            names(&i.consumers)
        );
    }
    o.push_str("</table>");
    more(o, c.topics.len().saturating_sub(MAX_ROWS), "topics");

    // Groups.
    o.push_str(r#"<h3>Consumer groups</h3><table><tr><th>group</th><th>members (client.id)</th><th>generations</th><th>assignor</th><th class="n">rebalances (joins)</th></tr>"#);
    if c.groups.is_empty() {
        o.push_str(r#"<tr><td colspan="5">No consumer group traffic.</td></tr>"#);
    }
    for (g, evs) in c.groups.iter().take(MAX_ROWS) {
        let members: BTreeSet<&str> = evs.iter().map(|e| &*e.e.client_id).collect();
        let gens: BTreeSet<i32> = evs.iter().filter_map(|e| e.e.generation).collect();
        // A join answered with an error (MEMBER_ID_REQUIRED) names no protocol: "" is not an assignor.
        let protos: BTreeSet<&str> = evs
            .iter()
            .filter_map(|e| e.e.protocol.as_deref())
            .filter(|p| !p.is_empty())
            .collect();
        let protos = if protos.is_empty() {
            "-".to_string()
        } else {
            protos.into_iter().collect::<Vec<_>>().join(", ")
        };
        let joins = evs
            .iter()
            .filter(|e| e.e.what == "join" && e.e.error.is_none())
            .count();
        let gen = match (gens.first(), gens.last()) {
            (Some(a), Some(b)) if a == b => a.to_string(),
            (Some(a), Some(b)) => format!("{a} – {b}"),
            _ => "-".into(),
        };
        let _ = write!(
            o,
            r#"<tr><td>{}</td><td>{}</td><td>{gen}</td><td>{}</td><td class="n">{joins}</td></tr>"#,
            code(g),
            esc(&members.into_iter().collect::<Vec<_>>().join(", ")),
            esc(&protos)
        );
    }
    o.push_str("</table>");
    o.push_str("</section>");
}

fn incident(o: &mut String, inc: &Incident, all: &[Incident], c: &Collector, v: &EngineView) {
    let a = inc.first();
    let _ = write!(
        o,
        r#"<article class="incident sev-{}" id="{}"><h2>{} {} <span style="font-weight:400">on</span> {}</h2>"#,
        sev_class(Some(inc.severity)),
        inc.anchor(),
        badge(inc.severity),
        esc(inc.kind.as_str()),
        code(&story::tp(a))
    );
    let mut meta = format!("incident {}", esc(&inc.id));
    if let Some(e) = inc.entry {
        let _ = write!(
            meta,
            " · first {} · last {} · {} observation{} in {} alert line{}{}",
            esc(&e.first_ts),
            esc(&e.last_ts),
            e.occurrences,
            if e.occurrences == 1 { "" } else { "s" },
            e.alert_lines,
            if e.alert_lines == 1 { "" } else { "s" },
            e.closed
                .map(|c| format!(" · closed: {}", c.as_str()))
                .unwrap_or_else(|| " · still open".into())
        );
    }
    let _ = write!(o, r#"<p class="meta">{meta}</p>"#);
    o.push_str("<h3>What happened</h3>");
    for (k, l) in inc.lines.iter().enumerate() {
        if inc.lines.len() > 1 {
            let _ = write!(
                o,
                r#"<p class="meta">{} line {} of {} · occurrence {}</p>"#,
                badge(l.a.severity),
                k + 1,
                inc.lines.len(),
                story::int(&l.a, "occurrence").unwrap_or(1)
            );
        }
        let _ = write!(
            o,
            r#"<p class="what">{}</p>"#,
            story::what_happened(&l.a, v)
        );
    }
    if inc.occurrences() > inc.lines.len() as u64 {
        let _ = write!(
            o,
            r#"<p class="hint">The same condition was observed {} times in all; {} repeats of what these lines say were counted, not written.</p>"#,
            inc.occurrences(),
            inc.occurrences() - inc.lines.len() as u64
        );
    }
    // Same exchange, other incidents.
    let related: Vec<String> = all
        .iter()
        .filter(|o| {
            o.id != inc.id
                && o.lines.iter().any(|ol| {
                    inc.lines
                        .iter()
                        .any(|l| l.a.exchange.is_some() && ol.a.exchange == l.a.exchange)
                })
        })
        .map(|o| {
            format!(
                r##"<a href="#{}">{} on {}</a>"##,
                o.anchor(),
                esc(o.kind.as_str()),
                esc(&story::tp(o.first()))
            )
        })
        .collect();
    if !related.is_empty() {
        let _ = write!(
            o,
            r#"<p class="hint">The same exchange also raised: {}.</p>"#,
            related.join(", ")
        );
    }

    o.push_str("<h3>Trigger and evidence</h3>");
    let rows = story::evidence(inc, c, v);
    if rows.is_empty() {
        o.push_str(r#"<p class="hint">The exchanges behind this alert are no longer in the report's memory (bounded); the alert's own fields are below.</p>"#);
    } else {
        let frames = rows
            .iter()
            .any(|r| r.x.is_some_and(|x| x.request_frame.is_some()));
        let _ = write!(
            o,
            r#"<div class="tw"><table><tr><th>time (UTC)</th><th>client</th><th>broker</th><th>what</th><th>value</th><th class="n">corr. id</th>{}<th>Wireshark filter</th></tr>"#,
            if frames { "<th>frames</th>" } else { "" }
        );
        for r in rows.iter().take(MAX_ROWS) {
            let corr =
                r.x.map(|x| x.correlation_id.to_string())
                    .unwrap_or_else(|| "-".into());
            let filter = match r.x {
                Some(x) => match x.request_frame {
                    Some(f) => format!("frame.number == {f}"),
                    None => format!(
                        "tcp.port == {} &amp;&amp; kafka.correlation_id == {}",
                        x.client.port, x.correlation_id
                    ),
                },
                None => "-".into(),
            };
            let frames_td = if frames {
                let f = r.x.map(|x| {
                    format!(
                        "{} → {}",
                        x.request_frame
                            .map(|f| f.to_string())
                            .unwrap_or_else(|| "-".into()),
                        x.response_frame
                            .map(|f| f.to_string())
                            .unwrap_or_else(|| "-".into())
                    )
                });
                format!("<td>{}</td>", f.unwrap_or_else(|| "-".into()))
            } else {
                String::new()
            };
            let _ = write!(
                o,
                r#"<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class="n">{corr}</td>{frames_td}<td class="wf"><code>{filter}</code></td></tr>"#,
                if r.trigger { r#" class="trigger""# } else { "" },
                story::tm_short(r.ts),
                code(&r.client),
                esc(&r.broker),
                esc(&r.what),
                esc(&r.value)
            );
        }
        o.push_str("</table></div>");
        more(o, rows.len().saturating_sub(MAX_ROWS), "rows");
        o.push_str(r#"<p class="hint">Highlighted: the observation that raised the alert. Open the capture in Wireshark (Decode As… Kafka on the broker ports) and paste a filter to see the exchange.</p>"#);
    }

    let caption = match inc.kind {
        AlertKind::CommitAfterRevoke | AlertKind::StaleOwnerCommit => "One lane per group member: bars are the partitions each owned from its SyncGroup (or KIP-848 heartbeat) on; the diamond is the revocation of the incident's partition, the red cross the late commit.",
        AlertKind::WeakAcks => "Produce requests per second to the topic, this producer (red) apart from the others by acks; grey dashed lines are leader changes of the topic's partitions, the red line the alert.",
        _ => "Steps hold the last value told, served or committed; grey series are other clients' views of the same partition; the red line is the alert, grey dashed lines leader changes.",
    };
    let _ = write!(
        o,
        "<figure>{}<figcaption>{caption}</figcaption></figure>",
        story::chart(inc, c, v)
    );

    o.push_str("<h3>Scope</h3><ul>");
    for s in story::scope(inc, all, c) {
        let _ = write!(o, "<li>{s}</li>");
    }
    o.push_str("</ul><h3>Likely cause</h3><ul>");
    for s in story::causes(a, v) {
        let _ = write!(o, "<li>{s}</li>");
    }
    o.push_str("</ul><h3>What to do</h3>");
    let advice = story::str_field(a, "remediation").unwrap_or_else(|| {
        kwire_engine::analysis::remediation::remediation(
            a.kind,
            kwire_engine::analysis::remediation::Library::Unknown,
        )
    });
    let _ = write!(
        o,
        r#"<p class="advice">{}</p><p class="hint">Long form: docs/alerts.md, section {}.</p>"#,
        esc(&advice),
        code(a.kind.as_str())
    );
    // Every field, as --json has it.
    o.push_str(r#"<details><summary>Every field of the alert line (as <code>kwire replay --json</code> prints it)</summary><table class="kv">"#);
    if let Ok(serde_json::Value::Object(m)) = serde_json::to_value(a) {
        for (k, val) in m {
            if k == "remediation" || k == "type" {
                continue;
            }
            let text = match &val {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let _ = write!(o, "<tr><th>{}</th><td>{}</td></tr>", esc(&k), esc(&text));
        }
    }
    o.push_str("</table></details></article>");
}

fn top_keys<F: Fn(&Key) -> Option<String>>(
    c: &Collector,
    f: F,
    by_n: bool,
) -> Vec<(String, Vec<(u64, u64)>)> {
    let mut m: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    for (k, aggs) in &c.rollup.series {
        let Some(name) = f(k) else { continue };
        let e = m.entry(name).or_insert_with(|| vec![(0, 0); aggs.len()]);
        for (i, g) in aggs.iter().enumerate() {
            e[i].0 += g.n;
            e[i].1 += g.sum;
        }
    }
    let mut v: Vec<_> = m.into_iter().collect();
    let total =
        |x: &Vec<(u64, u64)>| -> u64 { x.iter().map(|p| if by_n { p.0 } else { p.1 }).sum() };
    v.sort_by(|a, b| total(&b.1).cmp(&total(&a.1)).then(a.0.cmp(&b.0)));
    v.truncate(MAX_LINES);
    v
}

/// The last bucket any context series has data in (every context chart spans the same time).
fn last_bucket(c: &Collector) -> usize {
    c.rollup
        .series
        .values()
        .filter_map(|v| v.iter().rposition(|x| x.n > 0))
        .max()
        .unwrap_or(0)
}

/// The time range of the context charts: the first bucket's start to the last used bucket's end.
fn context_range(c: &Collector) -> Option<(i64, i64)> {
    let r = &c.rollup;
    r.origin?;
    Some((r.bucket_ts(0).0, r.bucket_ts(last_bucket(c) + 1).0))
}

fn rate_plot(c: &Collector, title: &str, y: &str, lines: Vec<(String, Vec<f64>)>) -> String {
    let r = &c.rollup;
    let last = last_bucket(c);
    let series = lines
        .into_iter()
        .enumerate()
        .map(|(i, (label, vals))| {
            let mut s = Series::new(label, svg::PALETTE[i % svg::PALETTE.len()], Shape::Line);
            s.marker = [
                Marker::Circle,
                Marker::Square,
                Marker::Diamond,
                Marker::Triangle,
                Marker::Cross,
                Marker::None,
                Marker::Circle,
            ][i % 7];
            s.width = 1.8;
            s.points = vals[..=last.min(vals.len().saturating_sub(1))]
                .iter()
                .enumerate()
                .map(|(i, v)| (r.bucket_ts(i).0 + r.width_ns / 2, *v))
                .collect();
            // Markers on every bucket would be noise: keep them for short series only.
            if s.points.len() > 40 {
                s.marker = Marker::None;
            }
            s
        })
        .collect();
    svg::plot(&Plot {
        title: title.into(),
        series,
        y_label: y.into(),
        y_from_zero: true,
        height: 190.0,
        t_range: context_range(c),
        ..Default::default()
    })
}

fn context(o: &mut String, c: &Collector, v: &EngineView) {
    let r = &c.rollup;
    let secs = (r.width_ns.max(1) as f64) / 1e9;
    let _ = write!(
        o,
        r#"<section id="context"><h2>Context charts</h2><p class="hint">Aggregated in buckets of {} over the capture (up to {} buckets).</p>"#,
        dur(r.width_ns.max(1)),
        super::collect::BUCKETS
    );
    let produce = top_keys(
        c,
        |k| match k {
            Key::Produce(t) => Some(t.to_string()),
            _ => None,
        },
        false,
    );
    let lines = produce
        .into_iter()
        .map(|(k, v)| (k, v.iter().map(|p| p.1 as f64 / secs).collect()))
        .collect();
    let _ = write!(
        o,
        "<h3>Records produced per second, per topic</h3><figure>{}</figure>",
        rate_plot(
            c,
            "Records produced per second per topic",
            "records/s",
            lines
        )
    );
    let fetch = top_keys(
        c,
        |k| match k {
            Key::Fetch(t) => Some(t.to_string()),
            _ => None,
        },
        false,
    );
    let lines = fetch
        .into_iter()
        .map(|(k, v)| (k, v.iter().map(|p| p.1 as f64 / secs).collect()))
        .collect();
    let _ = write!(
        o,
        "<h3>Records fetched per second, per topic</h3><figure>{}</figure>",
        rate_plot(
            c,
            "Records fetched per second per topic",
            "records/s",
            lines
        )
    );
    let lat = top_keys(
        c,
        |k| match k {
            Key::Latency { api, .. } => Some(api.to_string()),
            _ => None,
        },
        true,
    );
    let lines = lat
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                v.iter()
                    .map(|p| {
                        if p.0 > 0 {
                            p.1 as f64 / p.0 as f64 / 1000.0
                        } else {
                            0.0
                        }
                    })
                    .collect(),
            )
        })
        .collect();
    let _ = write!(o, "<h3>Request latency per API (mean per bucket)</h3><figure>{}<figcaption>Request to response on the wire, as the capture point saw it. Fetch and JoinGroup wait on purpose (max.wait.ms, rebalance delay).</figcaption></figure>", rate_plot(c, "Mean request latency per API", "ms", lines));
    // Latency table per API and broker.
    let mut tab: BTreeMap<(&'static str, String), (u64, u64, u64)> = BTreeMap::new();
    for (k, aggs) in &r.series {
        if let Key::Latency { api, broker } = k {
            let e = tab.entry((api, v.broker_name_plain(broker))).or_default();
            for g in aggs {
                e.0 += g.n;
                e.1 += g.sum;
                e.2 = e.2.max(g.max);
            }
        }
    }
    o.push_str(r#"<details><summary>Latency per API and broker</summary><table><tr><th>API</th><th>broker</th><th class="n">answered</th><th class="n">mean</th><th class="n">max</th></tr>"#);
    for ((api, b), (cnt, sum, max)) in tab.iter().take(MAX_ROWS) {
        let _ = write!(
            o,
            r#"<tr><td>{}</td><td>{}</td><td class="n">{cnt}</td><td class="n">{}</td><td class="n">{}</td></tr>"#,
            esc(api),
            esc(b),
            dur((*sum / (*cnt).max(1)) as i64 * 1000),
            dur(*max as i64 * 1000)
        );
    }
    o.push_str("</table></details>");
    let joins = top_keys(
        c,
        |k| match k {
            Key::Joins(g) => Some(g.to_string()),
            _ => None,
        },
        true,
    );
    if joins.is_empty() {
        o.push_str("<h3>Rebalances per group</h3><p>No consumer group joined in this capture.</p>");
    } else {
        let last = last_bucket(c);
        let series = joins
            .into_iter()
            .enumerate()
            .map(|(i, (g, vals))| {
                let mut s = Series::new(
                    format!("group {g}"),
                    svg::PALETTE[i % svg::PALETTE.len()],
                    Shape::Bars,
                );
                s.points = vals[..=last]
                    .iter()
                    .enumerate()
                    .filter(|(_, x)| x.0 > 0)
                    .map(|(i, x)| (r.bucket_ts(i).0 + r.width_ns / 2, x.0 as f64))
                    .collect();
                s
            })
            .collect();
        let _ = write!(
            o,
            "<h3>Rebalances per group (JoinGroup answers per bucket)</h3><figure>{}</figure>",
            svg::plot(&Plot {
                title: "JoinGroup answers per group over time".into(),
                series,
                y_label: "joins".into(),
                y_from_zero: true,
                integers: true,
                height: 150.0,
                t_range: context_range(c),
                ..Default::default()
            })
        );
    }
    o.push_str("</section>");
}

fn reading(o: &mut String, _c: &Collector) {
    o.push_str(r#"<section id="reading"><h2>How to read this report</h2><div class="card"><ul>
<li><b>Incidents</b> are conditions, not lines: a partition told a lower end of log forty times is one incident with forty observations. Each has the paragraph of what happened (figures highlighted are the alert's own fields, exactly as <code>kwire replay --json</code> prints them), the exchanges it rests on, a chart, what else was touched, the causes that fit and what to do.</li>
<li><b>Told, served, committed</b>: <i>told</i> is an end of log a broker gave the client (Fetch high watermark or last stable offset, ListOffsets latest); <i>served</i> the end of the record batches a Fetch returned; <i>committed</i> an OffsetCommit the broker accepted. Offsets of one partition only compare with each other.</li>
<li><b>Times</b> are packet times in UTC from the capture, to the microsecond; correlation ids and the Wireshark filters open the same exchanges in the capture file.</li>
<li><b>What is not here</b>: record keys, values and headers (never decoded), credentials and SASL bytes (never kept). Client ids, topics, groups and member ids are the wire's own strings.</li>
<li><b>Fidelity</b> says when the capture may hide something (gaps, connections joined mid-stream, one direction): an incident seen is real; an incident not seen may still have happened there.</li>
</ul></div></section>"#);
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn escapes_markup_and_controls() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(esc("a\u{0}b"), "a\u{fffd}b");
    }
}
