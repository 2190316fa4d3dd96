//! The OTLP transport against a real collector: rotel (a Rust OpenTelemetry collector from PyPI,
//! installed into .tools/venv by `cargo xtask setup`), started per test on free ports with its
//! debug exporter, which prints every log record, span and metric it receives.
//!
//! Easy to get wrong: these tests must FAIL, never skip, when rotel is missing; ports are picked free
//! per test (tests run in parallel); rotel's stdout is read by a thread so it never blocks on a full pipe.

use kwire_export::settings::{OtlpFileConfig, OtlpSettings};
use kwire_export::transport::Transport;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn rotel_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("KWIRE_ROTEL") {
        return PathBuf::from(p);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let lib = root.join(".tools/venv/lib");
    if let Ok(dirs) = std::fs::read_dir(&lib) {
        for d in dirs.flatten() {
            if d.file_name().to_string_lossy().starts_with("python3") {
                let p = d.path().join("site-packages/rotel/rotel-agent");
                if p.is_file() {
                    return p;
                }
            }
        }
    }
    panic!(
        "rotel (the OpenTelemetry collector these tests send to) is not installed under {}/python3*/site-packages/rotel/rotel-agent: run `cargo xtask setup` (or set KWIRE_ROTEL)",
        lib.display()
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Rotel {
    child: Child,
    output: Arc<Mutex<String>>,
    grpc: u16,
    http: u16,
}

impl Rotel {
    fn start() -> Rotel {
        Self::start_on(free_port(), free_port())
    }

    fn start_on(grpc: u16, http: u16) -> Rotel {
        let bin = rotel_binary();
        let mut child = Command::new(&bin)
            .args(["start", "--otlp-grpc-endpoint"])
            .arg(format!("127.0.0.1:{grpc}"))
            .arg("--otlp-http-endpoint")
            .arg(format!("127.0.0.1:{http}"))
            .args(["--exporter", "blackhole"])
            .args([
                "--debug-log",
                "logs",
                "--debug-log",
                "traces",
                "--debug-log",
                "metrics",
            ])
            .args(["--debug-log-verbosity", "detailed"])
            // Its own pid file, so parallel instances do not fight over /tmp/rotel-agent.pid.
            .arg("--pid-file")
            .arg(std::env::temp_dir().join(format!("kwire-rotel-{grpc}.pid")))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e} (run `cargo xtask setup`)",
                    bin.display()
                )
            });
        let output = Arc::new(Mutex::new(String::new()));
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let out = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut o = out.lock().unwrap();
                    o.push_str(&line);
                    o.push('\n');
                }
            });
        }
        let r = Rotel {
            child,
            output,
            grpc,
            http,
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        for port in [grpc, http] {
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "rotel did not listen on {port} within 5 s; it said:\n{}",
                    r.output()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        r
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Waits until rotel printed `needle` (its debug exporter prints asynchronously).
    fn wait_for(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.output().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "rotel never printed {needle:?}; it said:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Rotel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn settings(vars: &[(&str, String)]) -> OtlpSettings {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    OtlpSettings::resolve(&OtlpFileConfig::default(), &|k| map.get(k).cloned()).unwrap()
}

fn string(s: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(s.to_string())),
    })
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![KeyValue {
            key: "service.name".into(),
            value: string("kwire-transport-test"),
            ..Default::default()
        }],
        ..Default::default()
    })
}

fn logs(marker: &str) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    time_unix_nano: 1_700_000_000_000_000_000,
                    severity_number: 13,
                    severity_text: "WARN".into(),
                    body: string(marker),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn traces(marker: &str) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![7; 16],
                    span_id: vec![9; 8],
                    name: marker.to_string(),
                    start_time_unix_nano: 1_700_000_000_000_000_000,
                    end_time_unix_nano: 1_700_000_000_001_000_000,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn metrics(marker: &str) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: marker.to_string(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: vec![NumberDataPoint {
                            time_unix_nano: 1_700_000_000_000_000_000,
                            value: Some(number_data_point::Value::AsInt(42)),
                            ..Default::default()
                        }],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn send_all_three(rotel: &Rotel, transport: &mut Transport, tag: &str) {
    let sent = transport.send_logs(&logs(&format!("log-{tag}"))).unwrap();
    assert_eq!((sent.rejected, sent.message), (0, None));
    rotel.wait_for(&format!("log-{tag}"));
    transport
        .send_traces(&traces(&format!("span-{tag}")))
        .unwrap();
    rotel.wait_for(&format!("span-{tag}"));
    transport
        .send_metrics(&metrics(&format!("metric-{tag}")))
        .unwrap();
    rotel.wait_for(&format!("metric-{tag}"));
}

#[test]
fn grpc_reaches_rotel_plain_and_gzip() {
    let rotel = Rotel::start();
    let mut t = Transport::new(&settings(&[
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".into()),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{}", rotel.grpc),
        ),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "authorization=Bearer%20secret,x-tenant=t1".into(),
        ),
    ]))
    .unwrap();
    send_all_three(&rotel, &mut t, "grpc-plain");
    assert!(rotel.output().contains("LogRecord #"), "{}", rotel.output());

    let mut t = Transport::new(&settings(&[
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".into()),
        ("OTEL_EXPORTER_OTLP_INSECURE", "true".into()),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("127.0.0.1:{}", rotel.grpc),
        ),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip".into()),
    ]))
    .unwrap();
    send_all_three(&rotel, &mut t, "grpc-gzip");
}

#[test]
fn http_reaches_rotel_plain_and_gzip() {
    let rotel = Rotel::start();
    let mut t = Transport::new(&settings(&[(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        format!("http://127.0.0.1:{}/", rotel.http),
    )]))
    .unwrap();
    send_all_three(&rotel, &mut t, "http-plain");

    let mut t = Transport::new(&settings(&[
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{}", rotel.http),
        ),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip".into()),
        ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=k".into()),
    ]))
    .unwrap();
    send_all_three(&rotel, &mut t, "http-gzip");
}

#[test]
fn http_error_status_is_not_retryable_and_says_what_the_server_said() {
    let rotel = Rotel::start();
    let mut t = Transport::new(&settings(&[(
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
        format!("http://127.0.0.1:{}/no/such/path", rotel.http),
    )]))
    .unwrap();
    let e = t.send_logs(&logs("never")).unwrap_err();
    assert!(!e.retryable, "{e}");
    assert!(e.message.contains("404"), "{e}");
    assert!(e.message.contains("/no/such/path"), "{e}");
}

#[test]
fn closed_port_fails_fast_and_retryable_then_recovers_when_the_collector_starts() {
    let (grpc_port, http_port) = (free_port(), free_port());
    let mut grpc = Transport::new(&settings(&[
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".into()),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{grpc_port}"),
        ),
    ]))
    .expect("construction must not need the collector");
    let mut http = Transport::new(&settings(&[(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        format!("http://127.0.0.1:{http_port}"),
    )]))
    .expect("construction must not need the collector");
    for _ in 0..2 {
        let start = Instant::now();
        let e = grpc.send_logs(&logs("down")).unwrap_err();
        assert!(e.retryable, "{e}");
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
        assert!(e.message.contains("Unavailable"), "{e}");
        let start = Instant::now();
        let e = http.send_logs(&logs("down")).unwrap_err();
        assert!(e.retryable, "{e}");
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
        assert!(e.message.contains("cannot connect"), "{e}");
    }
    // The same Transport works once the collector is up (the spool re-sends through it).
    let rotel = Rotel::start_on(grpc_port, http_port);
    send_all_three(&rotel, &mut grpc, "recovered-grpc");
    send_all_three(&rotel, &mut http, "recovered-http");
    // And fails again, retryable, when it goes away.
    drop(rotel);
    let start = Instant::now();
    let e = grpc.send_logs(&logs("gone")).unwrap_err();
    assert!(e.retryable, "{e}");
    assert!(http.send_logs(&logs("gone")).unwrap_err().retryable);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_silent_peer_costs_at_most_the_timeout() {
    // Accepts connections (the kernel does) but never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    for protocol in ["grpc", "http/protobuf"] {
        let mut t = Transport::new(&settings(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.into()),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{port}"),
            ),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "700".into()),
        ]))
        .unwrap();
        let start = Instant::now();
        let e = t.send_logs(&logs("silence")).unwrap_err();
        let took = start.elapsed();
        assert!(e.retryable, "{protocol}: {e}");
        assert!(
            took >= Duration::from_millis(600),
            "{protocol}: {took:?} {e}"
        );
        assert!(
            took < Duration::from_millis(2000),
            "{protocol}: {took:?} {e}"
        );
        assert!(e.message.contains("700ms"), "{protocol}: {e}");
    }
}

#[test]
fn grpc_to_the_http_port_is_not_retryable_and_explains() {
    let rotel = Rotel::start();
    let mut t = Transport::new(&settings(&[
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".into()),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{}", rotel.http),
        ),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000".into()),
    ]))
    .unwrap();
    let e = t.send_logs(&logs("wrong-port")).unwrap_err();
    // rotel's HTTP port answers h2c too, with a 404: tonic maps it to UNIMPLEMENTED.
    assert!(!e.retryable, "{e}");
    assert!(
        e.message.contains("Unimplemented") && e.message.contains("404"),
        "{e}"
    );
}

/// Makes a CA, a server certificate for 127.0.0.1 and a client certificate with the openssl command.
fn make_certs(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run openssl: {e} (apt-get install openssl)"));
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("client.ext"),
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=kwire test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    run(&ca);
    for who in ["server", "client"] {
        let (key, csr, pem, ext) = (
            format!("{who}.key"),
            format!("{who}.csr"),
            format!("{who}.pem"),
            format!("{who}.ext"),
        );
        let mut req = vec!["req"];
        req.extend(ec);
        req.extend(["-keyout", &key, "-out", &csr, "-subj", "/CN=kwire test"]);
        run(&req);
        run(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            &ext,
        ]);
    }
}

/// TLS and mTLS handshakes, over both protocols, against `openssl s_server` requiring a client
/// certificate (rotel's receivers have no TLS). s_server does not speak OTLP, so a request that got
/// through the handshake fails afterwards; what is checked is WHICH error each configuration gets.
#[test]
fn tls_uses_the_ca_file_and_the_client_certificate() {
    let dir = std::env::temp_dir().join(format!("kwire-tls-test-{}", std::process::id()));
    make_certs(&dir);
    let port = free_port();
    let mut server = Command::new("openssl")
        .args(["s_server", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .args([
            "-cert",
            "server.pem",
            "-key",
            "server.key",
            "-CAfile",
            "ca.pem",
            "-Verify",
            "1",
        ])
        .args(["-alpn", "h2,http/1.1", "-www"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_server");
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "openssl s_server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let path = |f: &str| dir.join(f).display().to_string();
    let send = |protocol: &str, extra: &[(&str, String)]| {
        let mut vars = vec![
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.to_string()),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("https://127.0.0.1:{port}"),
            ),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "1500".to_string()),
        ];
        vars.extend(extra.iter().cloned());
        let mut t = Transport::new(&settings(&vars)).unwrap();
        t.send_logs(&logs("tls")).unwrap_err().message
    };
    let ca = ("OTEL_EXPORTER_OTLP_CERTIFICATE", path("ca.pem"));
    let cert = ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", path("client.pem"));
    let key = ("OTEL_EXPORTER_OTLP_CLIENT_KEY", path("client.key"));
    for protocol in ["grpc", "http/protobuf"] {
        // Only the webpki roots: our test CA is unknown.
        let e = send(protocol, &[]);
        assert!(e.contains("UnknownIssuer"), "{protocol}: {e}");
        eprintln!("{protocol} without the CA: {e}");
        // CA but no client certificate: the server wants one.
        let e = send(protocol, std::slice::from_ref(&ca));
        assert!(
            !e.contains("UnknownIssuer") && e.to_lowercase().contains("certificate"),
            "{protocol}: {e}"
        );
        eprintln!("{protocol} without a client certificate: {e}");
        // CA and client certificate: the handshake completes; s_server then does not speak OTLP.
        let e = send(protocol, &[ca.clone(), cert.clone(), key.clone()]);
        assert!(!e.to_lowercase().contains("certificate"), "{protocol}: {e}");
        eprintln!("{protocol} with mTLS: {e}");
    }
    // Unreadable files are a construction error naming the file.
    let bad = settings(&[
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("https://127.0.0.1:{port}"),
        ),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", path("missing.pem")),
    ]);
    let e = Transport::new(&bad).unwrap_err();
    assert!(e.contains("missing.pem"), "{e}");
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
