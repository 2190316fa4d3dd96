//! OTLP export against a real OpenTelemetry collector (rotel, started per test on its own ports):
//! `kwire replay --json --otlp` of real scenario captures, and what the collector received compared with
//! the JSON lines of the same run — alerts as log records (severity, body, attributes, link to the
//! exchange's span), exchanges as spans (name, kind, packet-time start/end, attributes), metrics (names
//! and values) — over gRPC and over HTTP/protobuf; sampling that keeps alerts' exchanges; alerts kept in
//! the spool while the collector is down and delivered exactly once when it is back, across runs and
//! with the collector stopped in the middle of an export.
//!
//! Easy to get wrong: rotel prints a request only after answering it, so every check waits for what it
//! expects (`wait_for`) and then compares exactly.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use support::rotel::*;

use kwire_capture::PcapFile;
use kwire_engine::{Engine, EngineConfig, Output};
use kwire_export::catalog::{
    Metric, SpanConvention, DURATION_BOUNDS_S, REQUEST_BOUNDS_S, SCHEMA_URL, SPAN_ATTRIBUTES,
    SPAN_CONVENTIONS,
};
use kwire_export::exporter::resource_attributes;
use kwire_export::{ExportOptions, Exporter, Health, OtlpFileConfig, OtlpSettings};

const WAIT: Duration = Duration::from_secs(30);

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../tests/fixtures/harness/{name}.pcap"))
}

struct Run {
    lines: Vec<Value>,
    stderr: String,
    code: Option<i32>,
}

impl Run {
    fn of(&self, t: &str) -> Vec<&Value> {
        self.lines.iter().filter(|l| l["type"] == t).collect()
    }
}

fn replay(name: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kwire"));
    cmd.arg("replay")
        .arg(fixture(name))
        .arg("--json")
        .args(args);
    for k in [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "KWIRE_OTLP",
        "KWIRE_OTLP_SPOOL",
        "OTEL_TRACES_SAMPLER",
        "OTEL_SEMCONV_STABILITY_OPT_IN",
        "KWIRE_OTLP_SEMCONV",
    ] {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run kwire");
    Run {
        lines: String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code(),
    }
}

fn wall_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// RFC 3339 (`2026-11-22T18:51:00.693563Z`, as kwire writes it) to Unix nanoseconds.
fn rfc3339_ns(s: &str) -> u64 {
    let (date, time) = s.trim_end_matches('Z').split_once('T').expect("T");
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    // days from civil (Howard Hinnant's algorithm)
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let frac_ns: i64 = format!("{frac:0<9}")[..9].parse().unwrap();
    ((days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2]) * 1_000_000_000 + frac_ns) as u64
}

fn s(v: &str) -> Value {
    Value::String(v.to_string())
}

fn i(v: i64) -> Value {
    Value::from(v)
}

fn port_of(addr: &str) -> i64 {
    addr.rsplit_once(':').unwrap().1.parse().unwrap()
}

/// The catalog's convention for a span, by its `kwire.api` (a follower's Fetch is not a receive: told
/// apart by `messaging.operation.name`).
fn convention_of(sp: &Span) -> &'static SpanConvention {
    let api = sp.attributes["kwire.api"].as_str().unwrap();
    SPAN_CONVENTIONS
        .iter()
        .find(|c| {
            c.apis.contains(&api)
                && sp
                    .attributes
                    .get("messaging.operation.name")
                    .and_then(|v| v.as_str())
                    == c.operation_name
        })
        .unwrap_or(&SPAN_CONVENTIONS[3])
}

/// Every span as the catalog's table (which cites the spec section) says: kind, name, the attributes
/// it must carry, may carry and never carries, and the schema URL.
fn check_conventions(got: &Received) {
    let allowed: std::collections::BTreeSet<&str> = SPAN_ATTRIBUTES.iter().copied().collect();
    for sp in &got.spans {
        let c = convention_of(sp);
        let why = format!("span {:?} ({}): {}", sp.name, c.spec, attrs_line(sp));
        assert_eq!(sp.kind, c.kind_name(), "{why}");
        for k in c.required {
            assert!(sp.attributes.contains_key(*k), "{k} missing on {why}");
        }
        for k in c.never {
            assert!(!sp.attributes.contains_key(*k), "{k} must not be on {why}");
        }
        for k in sp.attributes.keys() {
            assert!(
                allowed.contains(k.as_str()),
                "{k} is not in the catalog: {why}"
            );
        }
        if let (Some(op), Some(t)) = (c.operation_name, c.operation_type) {
            assert_eq!(sp.attributes["messaging.operation.name"], s(op), "{why}");
            assert_eq!(sp.attributes["messaging.operation.type"], s(t), "{why}");
            assert_eq!(sp.attributes["messaging.system.name"], s("kafka"), "{why}");
        }
        let server = format!(
            "{}:{}",
            sp.attributes["server.address"].as_str().unwrap(),
            sp.attributes["server.port"]
        );
        assert_eq!(
            sp.attributes["network.peer.address"],
            sp.attributes["server.address"]
        );
        assert_eq!(
            sp.attributes["network.peer.port"],
            sp.attributes["server.port"]
        );
        let want = match (
            c.operation_name,
            sp.attributes.get("messaging.destination.name"),
        ) {
            (Some(op), Some(t)) => format!("{op} {}", t.as_str().unwrap()),
            (Some(op), None) => format!("{op} {server}"),
            (None, _) => format!("{} {server}", sp.attributes["kwire.api"].as_str().unwrap()),
        };
        assert_eq!(sp.name, want, "{why}");
        // kafka.offset only on a span of one record (or a commit of one partition).
        if sp.attributes.contains_key("kafka.offset") && c.operation_type != Some("settle") {
            assert!(
                !sp.attributes.contains_key("messaging.batch.message_count"),
                "{why}"
            );
        }
        if let Some(n) = sp.attributes.get("messaging.batch.message_count") {
            assert_ne!(*n, i(1), "a lone record is not a batch: {why}");
        }
        assert_eq!(sp.schema_url, SCHEMA_URL, "{why}");
        assert_eq!(sp.scope_schema_url, SCHEMA_URL, "{why}");
        assert!(sp.resource.contains_key("service.instance.id"), "{why}");
    }
}

fn attrs_line(sp: &Span) -> String {
    serde_json::to_string(&sp.attributes).unwrap()
}

/// Every metric point carries the attributes its catalog entry (which cites the spec section) requires
/// and only the ones it lists; the operation duration has the advised buckets.
fn check_metric_conventions(got: &Received) {
    for m in &got.metrics {
        let Some(def) = Metric::ALL
            .iter()
            .map(|m| m.def())
            .find(|d| d.name == m.name)
        else {
            continue;
        };
        assert_eq!(m.schema_url, SCHEMA_URL, "{}", m.name);
        for p in &m.points {
            for k in def.required {
                assert!(
                    p.attributes.contains_key(*k),
                    "{} ({}): {k} missing on {:?}",
                    m.name,
                    def.spec,
                    p.attributes
                );
            }
            for k in p.attributes.keys() {
                assert!(
                    def.attributes.contains(&k.as_str()),
                    "{} ({}): {k} not in the catalog",
                    m.name,
                    def.spec
                );
            }
            if let PointValue::Histogram { bounds, .. } = &p.value {
                let want = if def.name == "messaging.client.operation.duration" {
                    DURATION_BOUNDS_S
                } else {
                    REQUEST_BOUNDS_S
                };
                assert_eq!(bounds.as_slice(), want, "{}", m.name);
            }
        }
    }
}

/// Every exchange line has exactly one span, with its times and identity.
/// Returns how many were ApiVersions negotiations (UNSUPPORTED_VERSION, not an error).
fn check_spans(run: &Run, got: &Received) -> usize {
    check_conventions(got);
    let mut negotiated = 0;
    let exchanges = run.of("exchange");
    assert_eq!(got.spans.len(), exchanges.len(), "{}", got.summary());
    for x in exchanges {
        let corr = x["correlation_id"].as_i64().unwrap();
        let port = port_of(x["client_addr"].as_str().unwrap());
        let m: Vec<&Span> = got
            .spans
            .iter()
            .filter(|sp| {
                sp.attributes.get("kwire.correlation_id") == Some(&i(corr))
                    && sp.attributes.get("network.local.port") == Some(&i(port))
            })
            .collect();
        assert_eq!(m.len(), 1, "one span for exchange {x}");
        let sp = m[0];
        assert_eq!(
            sp.start_unix_nano,
            rfc3339_ns(x["ts"].as_str().unwrap()),
            "{x}"
        );
        match x["latency_us"].as_i64() {
            Some(us) => assert_eq!(sp.duration_nanos(), us as u64 * 1000, "{x}"),
            None => assert_eq!(
                sp.attributes.get("kwire.no_response"),
                Some(&Value::Bool(true))
            ),
        }
        assert_eq!(sp.attributes["kwire.api"], x["api"]);
        assert_eq!(
            sp.attributes.get("messaging.client.id"),
            x["client_id"].as_str().map(s).as_ref()
        );
        assert_eq!(
            sp.attributes["server.port"],
            i(port_of(x["broker_addr"].as_str().unwrap()))
        );
        let errors = x["errors"].as_array().unwrap();
        // Version negotiation (ApiVersions answered UNSUPPORTED_VERSION, the client retries lower) keeps
        // its code on the exchange line but is no error of the span.
        if x["api"] == "ApiVersions" && *errors == vec![s("UNSUPPORTED_VERSION")] {
            negotiated += 1;
            assert!(!sp.attributes.contains_key("error.type"), "{x}");
            assert_ne!(sp.status_code, "error", "{x}");
            continue;
        }
        match errors.first() {
            Some(e) => {
                assert_eq!(sp.attributes["error.type"], *e);
                assert_eq!(sp.status_code, "error");
            }
            None => assert!(!sp.attributes.contains_key("error.type")),
        }
        assert_eq!(sp.resource["service.name"], s("kwire"));
    }
    negotiated
}

fn point<'a>(points: &'a [Point], attrs: &[(&str, Value)]) -> Option<&'a Point> {
    points
        .iter()
        .find(|p| attrs.iter().all(|(k, v)| p.attributes.get(*k) == Some(v)))
}

#[test]
fn alerts_spans_and_metrics_over_grpc() {
    let started = wall_ns();
    let c = Collector::start();
    let ep = c.grpc_endpoint();
    let run = replay(
        "commit-after-revoke-cooperative-mock",
        &["--otlp", "--otlp-endpoint", &ep, "--otlp-protocol", "grpc"],
        &[],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let alerts = run.of("alert");
    assert_eq!(alerts.len(), 4);
    let n_exchanges = run.of("exchange").len();
    let got = c.wait_for(WAIT, |r| {
        r.logs.len() >= 4 && r.spans.len() >= n_exchanges && r.metric("kwire.packets").is_some()
    });
    assert!(
        run.stderr
            .contains(&format!("OTLP: 4 alerts, {n_exchanges} spans")),
        "{}",
        run.stderr
    );

    // Alerts: one log record each, with the alert's own values.
    assert_eq!(got.logs.len(), 4, "{}", got.summary());
    for a in &alerts {
        let kind = a["alert"].as_str().unwrap();
        let part = a["partition"].as_i64().unwrap();
        let l: Vec<&Log> = got
            .logs
            .iter()
            .filter(|l| {
                l.attributes["kwire.alert.kind"] == s(kind)
                    && l.attributes["messaging.destination.partition.id"] == s(&part.to_string())
            })
            .collect();
        assert_eq!(l.len(), 1, "{kind} p{part}");
        let l = l[0];
        let (num, text) = match a["severity"].as_str().unwrap() {
            "critical" => (17, "CRITICAL"),
            "info" => (9, "INFO"),
            other => panic!("{other}"),
        };
        assert_eq!((l.severity_number, l.severity_text.as_str()), (num, text));
        assert_eq!(l.body, a["explanation"].as_str().unwrap());
        assert_eq!(l.event_name.as_deref(), Some("kwire.alert"));
        assert_eq!(l.timestamp_unix_nano, rfc3339_ns(a["ts"].as_str().unwrap()));
        // Observed by this run (wall clock), not at the capture's packet time.
        assert!(
            l.observed_timestamp_unix_nano >= started
                && l.observed_timestamp_unix_nano <= wall_ns(),
            "observed {} (run started {started})",
            l.observed_timestamp_unix_nano
        );
        assert_eq!(l.attributes["kwire.alert.id"], a["alert_id"]);
        assert_eq!(a["alert_id"].as_str().unwrap().len(), 32);
        assert_eq!(l.attributes["messaging.system.name"], s("kafka"));
        assert_eq!(
            (l.schema_url.as_str(), l.scope_schema_url.as_str()),
            (SCHEMA_URL, SCHEMA_URL)
        );
        assert_eq!(l.attributes["kwire.alert.severity"], a["severity"]);
        assert_eq!(l.attributes["messaging.destination.name"], s("kw-carc"));
        assert_eq!(l.attributes["messaging.consumer.group.name"], s("kw-carc"));
        assert_eq!(l.attributes["messaging.client.id"], s("kw-carc-1"));
        assert_eq!(l.attributes["kwire.alert.committed_offset"], i(6));
        assert_eq!(
            l.attributes["server.port"],
            i(port_of(a["broker_addr"].as_str().unwrap()))
        );
        // Linked to the span of the commit that raised it.
        let sp: Vec<&Span> = got
            .spans
            .iter()
            .filter(|sp| sp.trace_id == l.trace_id && sp.span_id == l.span_id)
            .collect();
        assert_eq!(sp.len(), 1, "alert {kind} links to its exchange's span");
        let sp = sp[0];
        assert_eq!(sp.name, "commit kw-carc");
        assert_eq!(sp.kind, "client");
        assert_eq!(sp.attributes["messaging.operation.type"], s("settle"));
        assert_eq!(sp.attributes["messaging.operation.name"], s("commit"));
        assert_eq!(sp.attributes["messaging.consumer.group.name"], s("kw-carc"));
        assert_eq!(sp.attributes["kwire.api"], s("OffsetCommit"));
    }
    assert_eq!(got.logs[0].resource["service.name"], s("kwire"));

    // Exchanges: every one a span; producers and consumers named after their topic. The 13 ApiVersions
    // answered UNSUPPORTED_VERSION (the clients retried lower) are not errors, in spans or metrics.
    assert_eq!(check_spans(&run, &got), 13);
    check_metric_conventions(&got);
    let negotiation_as_error = got
        .metrics
        .iter()
        .flat_map(|m| m.points.iter().map(move |p| (&m.name, p)))
        .filter(|(_, p)| p.attributes.get("error.type") == Some(&s("UNSUPPORTED_VERSION")))
        .map(|(n, _)| n.clone())
        .collect::<Vec<_>>();
    assert!(negotiation_as_error.is_empty(), "{negotiation_as_error:?}");
    assert!(
        got.metrics
            .iter()
            .flat_map(|m| &m.points)
            .any(|p| p.attributes.get("error.type") == Some(&s("REBALANCE_IN_PROGRESS"))),
        "real errors still are: {}",
        got.summary()
    );
    let ids: std::collections::BTreeSet<&str> = alerts
        .iter()
        .map(|a| a["alert_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), alerts.len(), "one id per alert");
    let sends = got.spans_named("send kw-carc");
    assert!(!sends.is_empty());
    assert!(sends.iter().all(|sp| sp.kind == "client"
        && sp.attributes["messaging.operation.type"] == s("send")
        && sp.attributes["messaging.destination.name"] == s("kw-carc")));
    let receives = got.spans_named("receive kw-carc");
    assert!(!receives.is_empty());
    // The consumer's group, learnt from its JoinGroup on the coordinator connection, is on the
    // receive spans of its fetch connections once it joined.
    assert!(receives.iter().all(|sp| sp.kind == "client"));
    assert!(
        receives
            .iter()
            .any(|sp| sp.attributes.get("messaging.consumer.group.name") == Some(&s("kw-carc"))),
        "{}",
        got.summary()
    );
    // Cluster-management calls are not messaging operations.
    let metadata: Vec<&Span> = got.spans_with("kwire.api", "Metadata");
    assert!(!metadata.is_empty());
    for sp in metadata {
        assert!(sp.name.starts_with("Metadata "), "{}", sp.name);
        assert!(!sp.attributes.contains_key("messaging.operation.name"));
    }
    assert!(got
        .spans
        .iter()
        .all(|sp| !sp.name.starts_with("JoinGroup kw-carc")
            && !sp.name.starts_with("Heartbeat kw-carc")));
    let mgmt = got.latest_points("kwire.request.duration");
    assert!(point(&mgmt, &[("kwire.api", s("Metadata"))]).is_some());
    let ops = got.latest_points("messaging.client.operation.duration");
    assert!(point(&ops, &[("kwire.api", s("Metadata"))]).is_none());

    // Metrics: the values the JSON lines and summary give.
    let summary = run.of("summary")[0];
    let packets = got.latest_points("kwire.packets");
    assert_eq!(
        packets[0].value,
        PointValue::Int(summary["packets"]["packets"].as_i64().unwrap())
    );
    let alerts_pts = got.latest_points("kwire.alerts");
    for (kind, sev) in [
        ("commit_after_revoke", "critical"),
        ("committed_offset_regression", "info"),
    ] {
        let p = point(
            &alerts_pts,
            &[
                ("kwire.alert.kind", s(kind)),
                ("kwire.alert.severity", s(sev)),
            ],
        )
        .unwrap_or_else(|| panic!("kwire.alerts {kind}"));
        assert_eq!(p.value, PointValue::Int(2));
    }
    let commits = run
        .of("exchange")
        .iter()
        .filter(|x| x["api"] == "OffsetCommit" && !x["response_ts"].is_null())
        .count() as u64;
    let durations = got.latest_points("messaging.client.operation.duration");
    let commit_points: Vec<&Point> = durations
        .iter()
        .filter(|p| p.attributes.get("kwire.api") == Some(&s("OffsetCommit")))
        .collect();
    assert_eq!(commit_points.len(), 1, "one series: {commit_points:?}");
    let p = commit_points[0];
    for (k, v) in [
        ("messaging.operation.name", s("commit")),
        ("messaging.operation.type", s("settle")),
        ("messaging.destination.name", s("kw-carc")),
        ("messaging.consumer.group.name", s("kw-carc")),
        ("messaging.system.name", s("kafka")),
    ] {
        assert_eq!(p.attributes.get(k), Some(&v), "{k}");
    }
    match &p.value {
        PointValue::Histogram {
            count,
            bucket_counts,
            bounds,
            ..
        } => {
            assert_eq!(*count, commits);
            assert_eq!(bucket_counts.iter().sum::<u64>(), commits);
            assert_eq!(bucket_counts.len(), bounds.len() + 1);
        }
        other => panic!("{other:?}"),
    }
    // Committed offsets: the last accepted commit per partition; lag = high watermark - committed.
    let mut last_commit: BTreeMap<i64, i64> = BTreeMap::new();
    for x in run.of("exchange") {
        if x["api"] == "OffsetCommit" && x["errors"].as_array().unwrap().is_empty() {
            for t in x["request"]["topics"].as_array().unwrap() {
                for p in t["partitions"].as_array().unwrap() {
                    last_commit.insert(
                        p["partition"].as_i64().unwrap(),
                        p["committed_offset"].as_i64().unwrap(),
                    );
                }
            }
        }
    }
    let committed = got.latest_points("kwire.consumer.committed_offset");
    let hwm = got.latest_points("kwire.partition.high_watermark");
    let lag = got.latest_points("kwire.consumer.lag");
    for (part, off) in &last_commit {
        let tp = [
            ("messaging.destination.name", s("kw-carc")),
            ("messaging.destination.partition.id", s(&part.to_string())),
        ];
        let c = point(&committed, &tp).unwrap_or_else(|| panic!("committed p{part}"));
        assert_eq!(c.value, PointValue::Int(*off));
        assert_eq!(c.attributes["messaging.consumer.group.name"], s("kw-carc"));
        if let (Some(h), Some(l)) = (point(&hwm, &tp), point(&lag, &tp)) {
            assert_eq!(l.value.as_f64(), (h.value.as_f64() - *off as f64).max(0.0));
        }
    }
    assert!(!lag.is_empty(), "lag points");

    // What arrives is exactly the catalog the dashboards are checked against (names, units, kinds);
    // only the export-drop counter has no point when nothing was dropped.
    use kwire_export::catalog::Instrument;
    let received: std::collections::BTreeSet<&str> =
        got.metrics.iter().map(|m| m.name.as_str()).collect();
    for m in Metric::ALL {
        let def = m.def();
        if m == Metric::ExportDropped {
            continue;
        }
        let Some(r) = got.metric(def.name) else {
            panic!("{} not exported (received {received:?})", def.name)
        };
        assert_eq!(r.unit, def.unit, "{}", def.name);
        let kind = match def.instrument {
            Instrument::Counter => "sum",
            Instrument::Gauge => "gauge",
            Instrument::Histogram => "histogram",
        };
        assert_eq!(r.kind, kind, "{}", def.name);
    }
    for name in &received {
        assert!(
            Metric::ALL.iter().any(|m| m.def().name == *name),
            "{name} is exported but not in the catalog"
        );
    }
}

#[test]
fn alerts_spans_and_metrics_over_http() {
    let c = Collector::start();
    let ep = c.http_endpoint();
    let run = replay(
        "acks1-leader-change-mock",
        &["--otlp"],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &ep),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let n = run.of("exchange").len();
    let got = c.wait_for(WAIT, |r| {
        !r.logs.is_empty()
            && r.spans.len() >= n
            && r.metric("messaging.client.sent.messages").is_some()
    });
    assert_eq!(got.logs.len(), 1, "{}", got.summary());
    let l = &got.logs[0];
    assert_eq!(l.attributes["kwire.alert.kind"], s("weak_acks"));
    assert_eq!(
        (l.severity_number, l.severity_text.as_str()),
        (17, "CRITICAL")
    );
    assert_eq!(l.attributes["kwire.alert.acks"], i(1));
    assert_eq!(l.attributes["messaging.client.id"], s("kw-lc-acks1"));
    assert_eq!(l.attributes["messaging.destination.name"], s("kw-lc"));
    assert_eq!(check_spans(&run, &got), 7);

    // Every Produce: a producer span with its record count and the offset the broker assigned.
    let mut records = 0i64;
    let mut bytes = 0i64;
    for x in run.of("exchange").iter().filter(|x| x["api"] == "Produce") {
        let p = &x["request"]["topics"][0]["partitions"][0];
        let n: i64 = p["batches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["record_count"].as_i64().unwrap())
            .sum();
        records += n;
        bytes += p["record_bytes"].as_i64().unwrap();
        let sp = got
            .spans
            .iter()
            .find(|sp| {
                sp.attributes.get("kwire.correlation_id") == Some(&x["correlation_id"])
                    && sp.attributes.get("network.local.port")
                        == Some(&i(port_of(x["client_addr"].as_str().unwrap())))
            })
            .unwrap();
        assert_eq!(sp.name, "send kw-lc");
        assert_eq!(sp.kind, "client");
        assert_eq!(sp.attributes["messaging.destination.partition.id"], s("0"));
        let base = &x["response"]["topics"][0]["partitions"][0];
        if n == 1 {
            // One record: its offset, and no batch count (kafka#span-attributes).
            assert!(!sp.attributes.contains_key("messaging.batch.message_count"));
            if base["error_code"] == 0 {
                assert_eq!(sp.attributes["kafka.offset"], base["base_offset"]);
            }
        } else {
            assert_eq!(sp.attributes["messaging.batch.message_count"], i(n));
            assert!(!sp.attributes.contains_key("kafka.offset"), "{n} records");
        }
    }
    assert!(records > 0);
    let topic = [("messaging.destination.name", s("kw-lc"))];
    let sent = got.latest_points("messaging.client.sent.messages");
    let sent_total: i64 = sent
        .iter()
        .filter(|p| p.attributes.get("messaging.destination.name") == Some(&s("kw-lc")))
        .map(|p| {
            assert_eq!(p.attributes["messaging.operation.name"], s("send"));
            assert_eq!(p.attributes["messaging.system.name"], s("kafka"));
            assert!(p.attributes.contains_key("server.address"));
            p.value.as_f64() as i64
        })
        .sum();
    assert_eq!(sent_total, records);
    check_metric_conventions(&got);
    let produced = got.latest_points("kwire.produced.bytes");
    assert_eq!(
        point(&produced, &topic).unwrap().value,
        PointValue::Int(bytes)
    );
    let m = got.metric("messaging.client.sent.messages").unwrap();
    assert_eq!((m.kind.as_str(), m.monotonic), ("sum", Some(true)));
    assert_eq!(m.unit, "{message}");
}

#[test]
fn sampling_keeps_every_alert_exchange() {
    let c = Collector::start();
    let ep = c.grpc_endpoint();
    let run = replay(
        "commit-after-revoke-cooperative-mock",
        &[
            "--otlp",
            "--otlp-endpoint",
            &ep,
            "--otlp-protocol",
            "grpc",
            "--otlp-sample-ratio",
            "0",
        ],
        &[],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let got = c.wait_for(WAIT, |r| {
        r.logs.len() >= 4 && r.metric("kwire.packets").is_some()
    });
    std::thread::sleep(Duration::from_millis(300));
    let got = c.received().max_by(got);
    let linked: std::collections::BTreeSet<(String, String)> = got
        .logs
        .iter()
        .map(|l| (l.trace_id.clone(), l.span_id.clone()))
        .collect();
    let spans: std::collections::BTreeSet<(String, String)> = got
        .spans
        .iter()
        .map(|sp| (sp.trace_id.clone(), sp.span_id.clone()))
        .collect();
    assert!(!linked.is_empty());
    assert_eq!(
        spans,
        linked,
        "only (and all) the exchanges behind alerts: {}",
        got.summary()
    );
    assert!(got.spans.len() < run.of("exchange").len());
}

trait MaxBy {
    fn max_by(self, other: Received) -> Received;
}

impl MaxBy for Received {
    /// The later of two snapshots (more records).
    fn max_by(self, other: Received) -> Received {
        if self.spans.len() + self.logs.len() >= other.spans.len() + other.logs.len() {
            self
        } else {
            other
        }
    }
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kwire-otlp-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn alerts_wait_in_the_spool_for_the_next_run() {
    let mut c = Collector::start();
    let ep = c.grpc_endpoint();
    c.stop();
    let spool = tempdir("spool-runs");
    let sp = spool.to_str().unwrap();
    let base = [
        "--otlp",
        "--otlp-endpoint",
        ep.as_str(),
        "--otlp-protocol",
        "grpc",
    ];

    // Collector down, no spool: the alerts are lost and kwire says so (exit 1).
    let lost = replay("commit-after-revoke-cooperative-mock", &base, &[]);
    assert_eq!(lost.code, Some(1), "{}", lost.stderr);
    assert!(
        lost.stderr.contains("4 alerts could NOT be delivered"),
        "{}",
        lost.stderr
    );
    // Spans are best effort: the ones that could not be sent are counted, not kept.
    let spans = lost.of("exchange").len();
    assert!(
        lost.stderr.contains(&format!("traces send_failed {spans}")),
        "{}",
        lost.stderr
    );

    // A spool too small for one batch: the alerts are dropped by policy, counted, logged, and the run
    // fails.
    let tiny = tempdir("spool-tiny");
    let mut tiny_args = base.to_vec();
    tiny_args.extend([
        "--otlp-spool",
        tiny.to_str().unwrap(),
        "--otlp-spool-max-mb",
        "0",
    ]);
    let full = replay("commit-after-revoke-cooperative-mock", &tiny_args, &[]);
    assert_eq!(full.code, Some(1), "{}", full.stderr);
    assert!(full.stderr.contains("logs spool_full 4"), "{}", full.stderr);
    assert!(
        full.stderr.contains("could not keep a batch of 4 alerts"),
        "{}",
        full.stderr
    );
    let _ = std::fs::remove_dir_all(&tiny);

    // Collector down, with a spool: kept on disk, exit 0.
    let mut args = base.to_vec();
    args.extend(["--otlp-spool", sp]);
    let first = replay("commit-after-revoke-cooperative-mock", &args, &[]);
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    assert!(
        first.stderr.contains("4 alerts wait in the spool"),
        "{}",
        first.stderr
    );

    // Back up: the next run sends the spooled alerts first, then its own; each arrives once.
    c.restart();
    let second = replay("acks1-leader-change-mock", &args, &[]);
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    assert!(
        second.stderr.contains("OTLP: 5 alerts"),
        "{}",
        second.stderr
    );
    let got = c.wait_for(WAIT, |r| r.logs.len() >= 5);
    std::thread::sleep(Duration::from_millis(300));
    let got = c.received().max_by(got);
    let mut kinds: Vec<(String, String)> = got
        .logs
        .iter()
        .map(|l| {
            (
                l.attributes["kwire.alert.kind"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                l.attributes
                    .get("messaging.destination.partition.id")
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
            )
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            ("commit_after_revoke".to_string(), "\"0\"".to_string()),
            ("commit_after_revoke".to_string(), "\"1\"".to_string()),
            (
                "committed_offset_regression".to_string(),
                "\"0\"".to_string()
            ),
            (
                "committed_offset_regression".to_string(),
                "\"1\"".to_string()
            ),
            ("weak_acks".to_string(), String::new()),
        ],
        "{}",
        got.summary()
    );
    let left: Vec<_> = std::fs::read_dir(&spool).unwrap().flatten().collect();
    assert!(
        left.iter()
            .all(|e| !e.file_name().to_string_lossy().ends_with(".pb")),
        "spool emptied"
    );
    let _ = std::fs::remove_dir_all(&spool);
}

/// Every alert of the alert scenarios, as the engine raises them.
fn scenario_alerts() -> Vec<Output> {
    let mut out = Vec::new();
    for name in [
        "commit-after-revoke-cooperative-mock",
        "commit-after-revoke-eager-mock",
        "commit-after-revoke-kip848-mock",
        "acks1-leader-change-mock",
        "commit-ahead-and-regression-mock",
        "follower-fetch-hwm-regression-mock",
        "listoffsets-recreate-tansu",
        "offset-reset-jump-mock",
        "stale-owner-commit-mock",
        "txn-offset-commit-mock",
    ] {
        let mut f = PcapFile::open(&fixture(name)).unwrap();
        let mut e = Engine::new(EngineConfig::default());
        let mut keep = |o: Output| {
            if matches!(o, Output::Alert(_)) {
                out.push(o);
            }
        };
        while let Ok(Some(p)) = f.next_packet() {
            e.on_packet(p.ts, p.link, p.data, &mut keep);
        }
        e.finish(&mut keep);
    }
    out
}

fn key(a: &Output) -> String {
    match a {
        Output::Alert(a) => format!(
            "{} {} {:?} {:?}",
            a.kind.as_str(),
            a.ts.to_rfc3339(),
            a.client_id,
            a.partition
        ),
        _ => unreachable!(),
    }
}

fn log_key(l: &Log) -> String {
    let ns = l.timestamp_unix_nano as i64;
    let ts = kwire_flow::Timestamp(ns).to_rfc3339();
    let client = l
        .attributes
        .get("messaging.client.id")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let part = l
        .attributes
        .get("messaging.destination.partition.id")
        .and_then(|v| v.as_str())
        .map(|p| p.parse::<i32>().unwrap());
    format!(
        "{} {} {:?} {:?}",
        l.attributes["kwire.alert.kind"].as_str().unwrap(),
        ts,
        client,
        part
    )
}

#[test]
fn collector_stopped_midway_every_alert_delivered_once() {
    let alerts = scenario_alerts();
    assert!(alerts.len() >= 12, "{} alerts", alerts.len());
    let mut c = Collector::start();
    let spool = tempdir("spool-midway");
    let file = OtlpFileConfig::default();
    let ep = c.grpc_endpoint();
    let env = move |k: &str| match k {
        "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(ep.clone()),
        "OTEL_EXPORTER_OTLP_PROTOCOL" => Some("grpc".to_string()),
        "OTEL_EXPORTER_OTLP_TIMEOUT" => Some("2000".to_string()),
        _ => None,
    };
    let opts = ExportOptions {
        settings: OtlpSettings::resolve(&file, &env).unwrap(),
        spans: false,
        sample_ratio: 1.0,
        metrics_interval: Duration::from_secs(3600),
        spool_dir: Some(spool.clone()),
        spool_max_bytes: 1 << 20,
        queue_size: 64,
        backpressure: false,
        resource: resource_attributes(&Default::default(), &|_| None),
        semconv: Default::default(),
    };
    let logs: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let l2 = logs.clone();
    let mut x = Exporter::start(opts, Arc::new(move |_, m| l2.lock().unwrap().push(m))).unwrap();
    let half = alerts.len() / 2;
    for a in &alerts[..half] {
        x.on_output(a);
    }
    c.wait_for(WAIT, |r| r.logs.len() >= half);
    c.stop();
    for a in &alerts[half..] {
        x.on_output(a);
    }
    // The sender fails, keeps them on disk, and retries with backoff.
    let spooled = || {
        std::fs::read_dir(&spool)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".pb"))
                    .count()
            })
            .unwrap_or(0)
    };
    let t = std::time::Instant::now();
    while spooled() == 0 && t.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(spooled() > 0, "alerts spooled while the collector is down");
    c.restart();
    let got = c.wait_for(WAIT, |r| r.logs.len() >= alerts.len());
    let report = x.finish(
        kwire_flow::Timestamp(0),
        &Health::default(),
        Duration::from_secs(10),
    );
    std::thread::sleep(Duration::from_millis(300));
    let got = c.received().max_by(got);
    let mut want: Vec<String> = alerts.iter().map(key).collect();
    let mut have: Vec<String> = got.logs.iter().map(log_key).collect();
    want.sort();
    have.sort();
    assert_eq!(have, want, "every alert exactly once");
    assert_eq!(report.alerts_delivered, alerts.len() as u64);
    assert_eq!((report.alerts_spooled, report.alerts_undelivered), (0, 0));
    assert_eq!(spooled(), 0);
    let said = logs.lock().unwrap().join("\n");
    assert!(said.contains("reachable again"), "{said}");
    let _ = std::fs::remove_dir_all(&spool);
}

#[test]
fn bad_settings_stop_kwire_before_it_reads_and_say_what_to_fix() {
    let r = replay(
        "produce-acks-librdkafka-mock",
        &["--otlp"],
        &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")],
    );
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.lines.is_empty(),
        "nothing decoded before the settings are right"
    );
    assert!(r.stderr.contains("http/json"), "{}", r.stderr);
    assert!(r.stderr.contains("grpc or http/protobuf"), "{}", r.stderr);
    let r = replay(
        "produce-acks-librdkafka-mock",
        &["--otlp", "--otlp-sample-ratio", "1.5"],
        &[],
    );
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("from 0 to 1"), "{}", r.stderr);
    // Header values are secrets: an invalid one is reported by name, never by value.
    let r = replay(
        "produce-acks-librdkafka-mock",
        &["--otlp"],
        &[(
            "OTEL_EXPORTER_OTLP_HEADERS",
            "authorization=Bearer s3cret\u{7f}",
        )],
    );
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("\"authorization\""), "{}", r.stderr);
    assert!(!r.stderr.contains("s3cret"), "{}", r.stderr);
}

/// The names kwire used before v1.45.0, for dashboards that depend on them: `legacy` emits only the old
/// names (and the v1.44.0 schema URL), `OTEL_SEMCONV_STABILITY_OPT_IN=messaging/dup` both.
#[test]
fn semconv_switch_legacy_and_dup() {
    let c = Collector::start();
    let ep = c.grpc_endpoint();
    let args = [
        "--otlp",
        "--otlp-endpoint",
        ep.as_str(),
        "--otlp-protocol",
        "grpc",
    ];
    let run = replay(
        "acks1-leader-change-mock",
        &args,
        &[("KWIRE_OTLP_SEMCONV", "legacy")],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let n = run.of("exchange").len();
    let got = c.wait_for(WAIT, |r| {
        !r.logs.is_empty()
            && r.spans.len() >= n
            && r.metric("messaging.client.sent.messages").is_some()
    });
    let sends = got.spans_named("send kw-lc");
    assert!(!sends.is_empty());
    for sp in &sends {
        assert_eq!(sp.attributes["messaging.system"], s("kafka"));
        assert!(!sp.attributes.contains_key("messaging.system.name"));
        assert!(sp.attributes.contains_key("client.port"));
        assert!(!sp.attributes.contains_key("network.local.port"));
        assert!(!sp.attributes.contains_key("kafka.offset"));
        assert_eq!(sp.schema_url, kwire_export::catalog::LEGACY_SCHEMA_URL);
    }
    assert_eq!(got.logs[0].attributes["messaging.system"], s("kafka"));
    let sent = got.latest_points("messaging.client.sent.messages");
    assert!(sent
        .iter()
        .all(|p| p.attributes.contains_key("messaging.system")
            && !p.attributes.contains_key("messaging.system.name")));

    let c2 = Collector::start();
    let ep2 = c2.grpc_endpoint();
    let args2 = [
        "--otlp",
        "--otlp-endpoint",
        ep2.as_str(),
        "--otlp-protocol",
        "grpc",
    ];
    let run = replay(
        "acks1-leader-change-mock",
        &args2,
        &[
            ("OTEL_SEMCONV_STABILITY_OPT_IN", "http,messaging/dup"),
            ("KWIRE_OTLP_SEMCONV", "legacy"),
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let got = c2.wait_for(WAIT, |r| r.spans.len() >= n);
    for sp in got.spans_named("send kw-lc") {
        assert_eq!(sp.attributes["messaging.system"], s("kafka"));
        assert_eq!(sp.attributes["messaging.system.name"], s("kafka"));
        assert_eq!(
            sp.attributes["client.port"],
            sp.attributes["network.local.port"]
        );
        assert_eq!(sp.kind, "client", "new single values under dup");
        assert_eq!(sp.schema_url, SCHEMA_URL);
    }
}
