//! Checks of the test-support collector (`tests/support/rotel.rs`), not of kwire: its parser against
//! real rotel output saved in `tests/support/rotel_sample.txt` (exact values, including the quirks:
//! integral doubles print as ints, multi-line strings, events, non-string bodies), and the live
//! collector: ports open, stop closes them, restart reopens the same ones, and what was received
//! before a restart is kept (OTLP/HTTP JSON requests built by hand, so no Python is needed).
//! Easy to get wrong: rotel prints a request only after answering it, so always `wait_for`.

mod support;

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::json;
use support::rotel::*;

fn sample() -> Received {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/rotel_sample.txt"
    );
    parse(&std::fs::read_to_string(path).expect("rotel_sample.txt"))
}

#[test]
fn sample_spans_parse_exactly() {
    let r = sample();
    assert_eq!(r.spans.len(), 12, "{}", r.summary());
    let produce = r.spans_named("Produce orders");
    assert_eq!(produce.len(), 2);
    let s = produce[0];
    assert_eq!(s.kind, "client");
    assert_eq!(s.trace_id, "0102030405060708090a0b0c0d0e0f10");
    assert_eq!(s.parent_span_id, "1112131415161718");
    assert_eq!(s.span_id, "011c75d56b30d587");
    assert_eq!(s.start_unix_nano, 1_700_000_000_123_456_789);
    assert_eq!(s.end_unix_nano, 1_700_000_000_124_956_789);
    assert_eq!(s.duration_nanos(), 1_500_000);
    assert_eq!(s.status_code, "error");
    assert_eq!(s.status_message, "broker said NOT_LEADER");
    assert_eq!(s.scope, "sample.tracer");
    assert_eq!(s.attributes.len(), 9);
    assert_eq!(s.attributes["proto"], json!("g"));
    assert_eq!(s.attributes["messaging.system"], json!("kafka"));
    assert_eq!(s.attributes["kafka.partition"], json!(7));
    assert_eq!(s.attributes["ratio"], json!(0.25));
    assert_eq!(s.attributes["ok"], json!(true));
    assert_eq!(s.attributes["tags"], json!(["a", "b"]));
    assert_eq!(s.attributes["nums"], json!([1, 2]));
    assert_eq!(s.attributes["empty"], json!(""));
    assert_eq!(s.attributes["quote"], json!("he said \"hi\", x=1"));
    assert_eq!(s.resource["service.name"], json!("kwire-sample"));
    assert_eq!(s.resource["service.version"], json!("1.2.3"));
    assert_eq!(s.resource["host.count"], json!(3));
    assert!(s.events.is_empty());
    // the same span over OTLP/HTTP (gzip) arrives identical but for its id and the tag
    assert_eq!(produce[1].attributes["proto"], json!("h"));
    assert_eq!(produce[1].duration_nanos(), 1_500_000);
    assert_eq!(produce[1].parent_span_id, "1112131415161718");

    let internal = r.spans_named("internal one")[0];
    assert_eq!(
        (
            internal.kind.as_str(),
            internal.parent_span_id.as_str(),
            internal.status_code.as_str()
        ),
        ("internal", "", "unset")
    );
    assert_eq!(internal.duration_nanos(), 42);
    for (name, kind) in [
        ("kind SERVER", "server"),
        ("kind PRODUCER", "producer"),
        ("kind CONSUMER", "consumer"),
    ] {
        let spans = r.spans_named(name);
        assert_eq!(spans.len(), 2, "{name}");
        assert!(spans
            .iter()
            .all(|s| s.kind == kind && s.duration_nanos() == 1000));
    }
    assert_eq!(r.spans_with("proto", "h").len(), 5);

    // several spans in one request, an event (its attributes stay out of the span's) and a link
    let a = r.spans_named("batched a")[0];
    assert_eq!(
        (a.kind.as_str(), a.start_unix_nano, a.end_unix_nano),
        ("server", 10, 20)
    );
    assert!(a.attributes.is_empty());
    assert_eq!(a.events.len(), 1);
    assert_eq!(a.events[0].name, "ev1");
    assert_eq!(a.events[0].time_unix_nano, 11);
    assert_eq!(a.events[0].attributes["k"], json!("v"));
    assert_eq!(a.resource["service.name"], json!("edge"));
    let b = r.spans_named("batched b")[0];
    assert_eq!(
        (b.span_id.as_str(), b.start_unix_nano, b.end_unix_nano),
        ("e7485cf5892062c7", 30, 40)
    );
    assert!(b.attributes.is_empty() && b.events.is_empty());
}

#[test]
fn sample_logs_parse_exactly() {
    let r = sample();
    assert_eq!(r.logs.len(), 6, "{}", r.summary());
    let alerts = r.logs_with("kwire.alert", "listoffsets_regression");
    assert_eq!(alerts.len(), 2);
    let l = alerts[0];
    assert_eq!(l.severity_number, 13);
    assert_eq!(l.severity_text, "WARN");
    assert_eq!(
        l.body,
        "listoffsets_regression: end of log went back from 120 to 100"
    );
    assert_eq!(l.timestamp_unix_nano, 1_700_000_001_000_000_000);
    assert_eq!(l.observed_timestamp_unix_nano, 1_700_000_001_000_000_500);
    assert_eq!(l.trace_id, "0102030405060708090a0b0c0d0e0f10");
    assert_eq!(l.span_id, "2122232425262728");
    assert_eq!(l.flags, 1);
    assert_eq!(l.event_name.as_deref(), Some("kwire.alert"));
    assert_eq!(l.scope, "kwire.alerts");
    assert_eq!(l.attributes["kafka.partition"], json!(3));
    assert_eq!(l.attributes["kwire.lost"], json!(20));
    assert_eq!(l.attributes["multi"], json!("line1\nline2"));
    assert_eq!(l.attributes.len(), 5);
    assert_eq!(l.resource["service.name"], json!("kwire-sample"));
    assert_eq!(r.logs_with("kafka.partition", 3).len(), 2);
    assert_eq!(alerts[1].attributes["proto"], json!("h"));

    let second = &r.logs[1];
    assert_eq!(
        (second.severity_number, second.severity_text.as_str()),
        (17, "ERROR")
    );
    assert_eq!(second.body, "second");
    assert_eq!(
        (second.trace_id.as_str(), second.span_id.as_str()),
        ("", "")
    );
    assert_eq!(second.event_name, None);
    assert_eq!(second.timestamp_unix_nano, 1_700_000_002_000_000_000);

    // non-string bodies stay as rotel prints them
    assert_eq!(r.logs[4].body, "Int(42)");
    assert_eq!(r.logs[4].severity_number, 0);
    assert!(r.logs[4].attributes.is_empty());
    assert_eq!(r.logs[5].body, "Map(a:Int(1), b:Str(x))");
    assert_eq!(r.logs[5].attributes["m"], json!("x"));
}

#[test]
fn sample_metrics_parse_exactly() {
    let r = sample();
    assert_eq!(r.metrics.len(), 16, "{}", r.summary());
    assert_eq!(r.metrics_named("kwire.exchanges").len(), 2);

    let ex = &r.metrics[0];
    assert_eq!(ex.name, "kwire.exchanges");
    assert_eq!(ex.unit, "{exchange}");
    assert_eq!(ex.description, "Kafka exchanges seen");
    assert_eq!(ex.kind, "sum");
    assert_eq!(ex.monotonic, Some(true));
    assert_eq!(ex.temporality.as_deref(), Some("cumulative"));
    assert_eq!(ex.scope, "kwire.meter");
    assert_eq!(ex.resource["service.name"], json!("kwire-sample"));
    assert_eq!(ex.points.len(), 2);
    assert_eq!(ex.points[0].attributes["api"], json!("Fetch"));
    assert_eq!(ex.points[0].value, PointValue::Int(5));
    assert_eq!(ex.points[0].start_time_unix_nano, 1_795_381_805_517_198_948);
    assert_eq!(ex.points[0].time_unix_nano, 1_795_381_805_517_742_856);
    assert_eq!(ex.points[1].attributes["api"], json!("Produce"));
    assert_eq!(ex.points[1].value, PointValue::Int(2));

    let bytes = &r.metrics[1];
    assert_eq!(
        (
            bytes.name.as_str(),
            bytes.unit.as_str(),
            bytes.description.as_str()
        ),
        ("kwire.bytes", "By", "")
    );
    assert_eq!(bytes.points[0].value, PointValue::Double(1.5));
    let conns = &r.metrics[2];
    assert_eq!((conns.kind.as_str(), conns.monotonic), ("sum", Some(false)));
    assert_eq!(conns.points[0].value, PointValue::Int(2));
    let lag = &r.metrics[3];
    assert_eq!(
        (
            lag.name.as_str(),
            lag.kind.as_str(),
            lag.monotonic,
            lag.temporality.as_deref()
        ),
        ("kwire.lag", "gauge", None, None)
    );
    assert_eq!(lag.points[0].attributes["partition"], json!(0));
    assert_eq!(lag.points[0].value, PointValue::Int(17));
    assert_eq!(lag.points[0].start_time_unix_nano, 0);
    assert_eq!(r.metrics[4].points[0].value, PointValue::Double(0.75));

    let lat = r.metric("kwire.latency").unwrap();
    assert_eq!((lat.kind.as_str(), lat.unit.as_str()), ("histogram", "ms"));
    assert_eq!(lat.temporality.as_deref(), Some("cumulative"));
    assert_eq!(
        lat.points[0].attributes["proto"],
        json!("h"),
        "metric() is the last block"
    );
    assert_eq!(
        lat.points[0].value,
        PointValue::Histogram {
            count: 5,
            sum: 24.5,
            bounds: vec![1.0, 5.0, 10.0],
            bucket_counts: vec![1, 2, 1, 1],
            min: Some(0.5),
            max: Some(12.0),
        }
    );

    // the quirks: a double 2.0 prints as `2`, big and tiny numbers print without exponent
    let f = r.metric("edge.fcount").unwrap();
    assert_eq!(f.temporality.as_deref(), Some("delta"));
    assert_eq!(f.points[0].value, PointValue::Int(2));
    assert_eq!(f.points[0].value.as_f64(), 2.0);
    assert!(f.points[0].attributes.is_empty());
    assert_eq!(
        r.metric("edge.big").unwrap().points[0].value,
        PointValue::Int(-12_345_678_901)
    );
    assert_eq!(
        r.metric("edge.tiny").unwrap().points[0].value,
        PointValue::Double(1e-20)
    );
    assert_eq!(
        r.metric("edge.huge").unwrap().points[0].value,
        PointValue::Double(1e300)
    );

    // latest point per attribute set over both exports (the HTTP one came later)
    let latest = r.latest_points("kwire.exchanges");
    assert_eq!(latest.len(), 4, "proto g/h x api Fetch/Produce");
    let fetch_h: Vec<_> = latest
        .iter()
        .filter(|p| p.attributes["proto"] == "h" && p.attributes["api"] == "Fetch")
        .collect();
    assert_eq!(fetch_h.len(), 1);
    assert_eq!(fetch_h[0].value, PointValue::Int(5));
}

#[test]
fn nested_values_and_continuations() {
    let text = "ResourceSpans #0\nResource attributes:\n     -> r: Str(x)\nInstrumentationScope s 1\nSpan #0\n    Name           : n\n    Kind           : SPAN_KIND_PRODUCER\nAttributes:\n     -> list: Slice(Str(a, b), Str(c)d), Int(3), Double(1.5), Bool(false), Slice(Int(1)))\n     -> map: Map(k:Str(v), n:Int(2))\n     -> three: Str(x\n\ny)\n     -> bytes: Bytes([1, 2])\n     -> none: Empty\n";
    let r = parse(text);
    assert_eq!(r.spans.len(), 1);
    let a = &r.spans[0].attributes;
    assert_eq!(a["list"], json!(["a, b", "c)d", 3, 1.5, false, [1]]));
    assert_eq!(a["map"], json!({"k": "v", "n": 2}));
    assert_eq!(a["three"], json!("x\n\ny"));
    assert_eq!(a["bytes"], json!("Bytes([1, 2])"));
    assert_eq!(a["none"], json!(null));
    assert_eq!(r.spans[0].kind, "producer");
    assert_eq!(r.spans[0].resource["r"], json!("x"));
}

fn accepts(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    )
    .is_ok()
}

#[test]
fn collector_stops_and_restarts_on_the_same_ports() {
    let t = Instant::now();
    let mut c = Collector::start();
    eprintln!("rotel ready in {:?}", t.elapsed());
    let (g, h) = (c.grpc_port(), c.http_port());
    assert_ne!(g, h);
    assert_eq!(c.grpc_endpoint(), format!("http://127.0.0.1:{g}"));
    assert_eq!(c.http_endpoint(), format!("http://127.0.0.1:{h}"));
    assert!(accepts(g) && accepts(h));
    assert!(c.is_running());
    let t = Instant::now();
    c.stop();
    eprintln!("rotel stopped (SIGTERM) in {:?}", t.elapsed());
    assert!(!c.is_running());
    assert!(!accepts(g) && !accepts(h), "ports still open after stop");
    let t = Instant::now();
    c.restart();
    eprintln!("rotel restarted in {:?}", t.elapsed());
    assert_eq!((c.grpc_port(), c.http_port()), (g, h));
    assert!(accepts(g) && accepts(h));
    c.kill();
    assert!(!accepts(g) && !accepts(h), "ports still open after kill");
    assert!(c.received().is_empty());
}

fn log_json(n: i64, body: &str) -> String {
    json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "live"}}]},
        "scopeLogs": [{"scope": {"name": "live.scope"}, "logRecords": [{
            "timeUnixNano": "1700000000000000001",
            "severityNumber": 13,
            "severityText": "WARN",
            "body": {"stringValue": body},
            "attributes": [
                {"key": "n", "value": {"intValue": n.to_string()}},
                {"key": "d", "value": {"doubleValue": 0.5}}
            ],
            "traceId": "0102030405060708090a0b0c0d0e0f10",
            "spanId": "1112131415161718"
        }]}]
    }]})
    .to_string()
}

#[test]
fn collector_keeps_what_it_received_across_a_restart() {
    let mut c = Collector::start();
    let ep = c.http_endpoint();
    assert_eq!(post_otlp_json(&ep, "/v1/logs", &log_json(1, "before")), 200);
    let spans = json!({"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"scope": {"name": "s"}, "spans": [{
        "traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "2122232425262728",
        "name": "Fetch", "kind": 3, "startTimeUnixNano": "1000", "endTimeUnixNano": "3500",
        "attributes": [{"key": "kafka.api_version", "value": {"intValue": "12"}}]
    }]}]}]});
    assert_eq!(post_otlp_json(&ep, "/v1/traces", &spans.to_string()), 200);
    // rotel's JSON decoding drops a data point's `"asInt": "7"` (int64 as a string, as the OTLP/JSON
    // spec writes it) but takes a number; attribute `intValue` strings are fine
    let metrics = json!({"resourceMetrics": [{"resource": {"attributes": []}, "scopeMetrics": [{"scope": {"name": "s"}, "metrics": [{
        "name": "kwire.exchanges", "unit": "1",
        "sum": {"aggregationTemporality": 2, "isMonotonic": true, "dataPoints": [
            {"asInt": 7, "timeUnixNano": "2000", "attributes": [{"key": "api", "value": {"stringValue": "Fetch"}}]}
        ]}
    }]}]}]});
    assert_eq!(
        post_otlp_json(&ep, "/v1/metrics", &metrics.to_string()),
        200
    );
    let r = c.wait_for(Duration::from_secs(10), |r| {
        !r.logs.is_empty() && !r.spans.is_empty() && !r.metrics.is_empty()
    });
    let l = &r.logs[0];
    assert_eq!(
        (l.severity_number, l.body.as_str(), l.scope.as_str()),
        (13, "before", "live.scope")
    );
    assert_eq!(
        (l.attributes["n"].clone(), l.attributes["d"].clone()),
        (json!(1), json!(0.5))
    );
    assert_eq!(l.resource["service.name"], json!("live"));
    assert_eq!(l.trace_id, "0102030405060708090a0b0c0d0e0f10");
    let s = &r.spans[0];
    assert_eq!(
        (s.name.as_str(), s.kind.as_str(), s.duration_nanos()),
        ("Fetch", "client", 2500)
    );
    assert_eq!(s.attributes["kafka.api_version"], json!(12));
    assert_eq!(
        r.latest_points("kwire.exchanges")[0].value,
        PointValue::Int(7)
    );

    c.restart();
    assert_eq!(post_otlp_json(&ep, "/v1/logs", &log_json(2, "after")), 200);
    let r = c.wait_for(Duration::from_secs(10), |r| r.logs.len() == 2);
    assert_eq!(r.logs_with("n", 1)[0].body, "before");
    assert_eq!(r.logs_with("n", 2)[0].body, "after");
    assert_eq!(r.spans.len(), 1);
}
