//! A real OpenTelemetry collector for tests: runs rotel (pip package `rotel`, installed into
//! `.tools/venv` by `cargo xtask setup`) with OTLP gRPC and HTTP receivers on two free loopback
//! ports, and gives back what it received as structured spans, log records and metrics.
//!
//! rotel 0.0.1a15 has no structured exporter (no file/JSON exporter), so this parses its
//! `--debug-log … --debug-log-verbosity detailed` text from stdout; `rotel_sample.txt` beside this
//! file is real output and `tests/rotel_support.rs` pins the parser to it. Easy to get wrong:
//! - Metric data point values print as plain numbers: an int `5` and a double `5.0` both print
//!   `Value: 5`. A value with `.`/`e`/`inf`/`NaN`, or an integer outside i64, is `Double`, any
//!   other is `Int`: compare with [`PointValue::as_f64`] when the type does not matter.
//!   Attributes do keep their type (`Int(3)`, `Double(0.25)`, `Str(x)`, `Bool(true)`, `Slice(..)`).
//! - Strings are printed raw: a value with a newline spans several lines and is joined back, unless
//!   a continuation line itself looks like one of rotel's header lines. Values inside `Slice(..)` and
//!   `Map(..)` are split heuristically (a string holding `), Str(` would be cut).
//! - A non-string log body is kept as rotel prints it (`Int(42)`, `Map(a:Int(1), …)`).
//! - Every export is its own block: a cumulative metric shows up once per export, so use
//!   [`Received::latest_points`] (or [`Received::metric`], the last block) rather than all points.
//! - rotel prints a request only after accepting it: poll with [`Collector::wait_for`], never
//!   read once right after the exporter returned. [`Collector::stop`] is a graceful SIGTERM
//!   (~2 s, rotel prints what it holds); [`Collector::kill`] is SIGKILL.
//! - Each run's stdout goes to its own file in the collector's temp dir, so nothing is lost across
//!   restarts; the dir is removed on drop unless the thread is panicking (then it is kept, and
//!   named in the panic messages).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use serde_json::Value;

/// How long rotel may take to accept connections (it takes ~30 ms on an idle machine).
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a graceful stop may take before SIGKILL (rotel needs ~2 s after SIGTERM).
const STOP_TIMEOUT: Duration = Duration::from_secs(8);

/// The rotel collector binary: `$KWIRE_ROTEL`, else `.tools/venv/lib/python3*/site-packages/rotel/rotel-agent`
/// under the workspace root. Panics (the test fails, never skips) when it is not there.
pub fn rotel_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("KWIRE_ROTEL").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "KWIRE_ROTEL={} is not a file (rotel not installed: run `cargo xtask setup`)",
            p.display()
        );
        return p;
    }
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/venv/lib");
    let mut found: Vec<PathBuf> = fs::read_dir(&lib)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
        .map(|e| e.path().join("site-packages/rotel/rotel-agent"))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    match found.pop() {
        Some(p) => p,
        None => panic!(
            "rotel not installed: run `cargo xtask setup` (looked for {}/python3*/site-packages/rotel/rotel-agent; or set KWIRE_ROTEL)",
            lib.display()
        ),
    }
}

/// A running (or stopped) rotel with its own ports and temp dir.
pub struct Collector {
    bin: PathBuf,
    dir: PathBuf,
    grpc_port: u16,
    http_port: u16,
    child: Option<Child>,
    /// runs started so far; run `n` writes `run-n.stdout` / `run-n.stderr`
    runs: u32,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl Collector {
    /// Starts rotel on two free loopback ports and waits until both accept connections.
    pub fn start() -> Collector {
        let bin = rotel_binary();
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "kwire-rotel-{}-{seq}-{}",
            std::process::id(),
            nanos_now() % 1_000_000_000
        ));
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let mut c = Collector {
            bin,
            dir,
            grpc_port: 0,
            http_port: 0,
            child: None,
            runs: 0,
        };
        // Ports are probed free, then handed to rotel: another process may take one in between,
        // so a run that dies before it is ready is retried on fresh ports.
        let mut last = String::new();
        for attempt in 0..5 {
            c.grpc_port = free_port(seq, attempt * 2);
            c.http_port = free_port(seq, attempt * 2 + 1);
            match c.spawn_and_wait() {
                Ok(()) => return c,
                Err(e) => last = e,
            }
        }
        panic!("rotel did not start: {last}");
    }

    /// `http://127.0.0.1:PORT` of the OTLP/gRPC receiver.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    /// `http://127.0.0.1:PORT` of the OTLP/HTTP receiver (paths /v1/traces, /v1/logs, /v1/metrics).
    pub fn http_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// Endpoint for an `OTEL_EXPORTER_OTLP_PROTOCOL` value: `grpc` or `http/protobuf` (`http/json`).
    pub fn endpoint_for(&self, protocol: &str) -> String {
        if protocol == "grpc" {
            self.grpc_endpoint()
        } else {
            self.http_endpoint()
        }
    }

    pub fn grpc_port(&self) -> u16 {
        self.grpc_port
    }

    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// The temp dir holding each run's stdout/stderr.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the rotel process is running.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(ch) => ch.try_wait().ok().flatten().is_none(),
            None => false,
        }
    }

    /// Graceful stop: SIGTERM, wait (rotel prints what it still holds), SIGKILL after 8 s.
    /// What was received so far stays in [`Collector::received`].
    pub fn stop(&mut self) {
        if let Some(mut ch) = self.child.take() {
            if ch.try_wait().ok().flatten().is_none() {
                let _ = Command::new("kill")
                    .args(["-TERM", &ch.id().to_string()])
                    .stderr(Stdio::null())
                    .status();
                let deadline = Instant::now() + STOP_TIMEOUT;
                while ch.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            let _ = ch.kill();
            let _ = ch.wait();
        }
    }

    /// Abrupt stop: SIGKILL and wait (a crash: anything rotel accepted but had not printed is lost).
    pub fn kill(&mut self) {
        if let Some(mut ch) = self.child.take() {
            let _ = ch.kill();
            let _ = ch.wait();
        }
    }

    /// Stops rotel if it runs, then starts it again on the same ports and waits until ready.
    pub fn restart(&mut self) {
        self.stop();
        // The old listeners are gone once the process is reaped, but retry a while in case a port
        // is still held (or was briefly taken by someone else).
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match self.spawn_and_wait() {
                Ok(()) => return,
                Err(e) if Instant::now() >= deadline => {
                    panic!("rotel did not restart on the same ports: {e}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// Everything received over all runs so far.
    pub fn received(&self) -> Received {
        let mut all = Received::default();
        for text in self.outputs() {
            let r = parse(&text);
            all.spans.extend(r.spans);
            all.logs.extend(r.logs);
            all.metrics.extend(r.metrics);
        }
        all
    }

    /// Raw stdout of every run so far, concatenated (for debugging a failing test).
    pub fn raw_output(&self) -> String {
        self.outputs().concat()
    }

    /// Polls [`Collector::received`] until `pred` holds; panics with a summary after `timeout`.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&Received) -> bool) -> Received {
        let deadline = Instant::now() + timeout;
        loop {
            let r = self.received();
            if pred(&r) {
                return r;
            }
            if Instant::now() >= deadline {
                panic!(
                    "collector did not receive what was expected within {timeout:?}; received:\n{}\nrotel output in {}; last stderr:\n{}",
                    r.summary(),
                    self.dir.display(),
                    self.stderr_tail(self.runs)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn outputs(&self) -> Vec<String> {
        (1..=self.runs)
            .map(|n| {
                let text = fs::read(self.dir.join(format!("run-{n}.stdout"))).unwrap_or_default();
                let mut text = String::from_utf8_lossy(&text).into_owned();
                // rotel writes a block with one print!, but never parse a line still being written
                text.truncate(text.rfind('\n').map_or(0, |i| i + 1));
                text
            })
            .collect()
    }

    fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = [
            "start",
            "--otlp-grpc-endpoint",
            &format!("127.0.0.1:{}", self.grpc_port),
            "--otlp-http-endpoint",
            &format!("127.0.0.1:{}", self.http_port),
            "--exporter",
            "blackhole",
            "--debug-log",
            "traces",
            "--debug-log",
            "logs",
            "--debug-log",
            "metrics",
            "--debug-log-verbosity",
            "detailed",
            // print each request as it arrives (no 200 ms batch timer, nothing held at a kill)
            "--disable-batching",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // never the shared defaults in /tmp (tests run several collectors at once)
        a.push("--pid-file".into());
        a.push(self.dir.join("rotel.pid").display().to_string());
        a.push("--log-file".into());
        a.push(self.dir.join("rotel.log").display().to_string());
        a
    }

    /// Starts a new run on the current ports and waits until both accept connections.
    fn spawn_and_wait(&mut self) -> Result<(), String> {
        self.runs += 1;
        let n = self.runs;
        let out =
            File::create(self.dir.join(format!("run-{n}.stdout"))).map_err(|e| e.to_string())?;
        let err =
            File::create(self.dir.join(format!("run-{n}.stderr"))).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&self.bin);
        cmd.args(self.args())
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("ROTEL_") {
                cmd.env_remove(k);
            }
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", self.bin.display()))?;
        let started = Instant::now();
        let addrs = [self.grpc_port, self.http_port].map(|p| SocketAddr::from(([127, 0, 0, 1], p)));
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "rotel exited ({status}) before accepting connections on {addrs:?}\ncommand: {} {}\n{}",
                    self.bin.display(),
                    self.args().join(" "),
                    self.stderr_tail(n)
                ));
            }
            if addrs
                .iter()
                .all(|a| TcpStream::connect_timeout(a, Duration::from_millis(200)).is_ok())
            {
                // a port taken by someone else also accepts: rotel then exits at once (status 1,
                // "unable to bind"), so look again before calling it ready
                std::thread::sleep(Duration::from_millis(30));
                if child.try_wait().ok().flatten().is_none() {
                    self.child = Some(child);
                    return Ok(());
                }
                continue;
            }
            if started.elapsed() > READY_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "rotel did not accept connections on {addrs:?} within {READY_TIMEOUT:?}\ncommand: {} {}\n{}",
                    self.bin.display(),
                    self.args().join(" "),
                    self.stderr_tail(n)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The end of run `n`'s stderr and stdout (rotel logs to stdout), ANSI colours removed.
    fn stderr_tail(&self, n: u32) -> String {
        let mut s = String::new();
        for ext in ["stderr", "stdout"] {
            let p = self.dir.join(format!("run-{n}.{ext}"));
            let text = strip_ansi(&String::from_utf8_lossy(&fs::read(&p).unwrap_or_default()));
            let tail: String = text
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            s.push_str(&format!("--- {} (last 30 lines):\n{tail}\n", p.display()));
        }
        s
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill();
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn nanos_now() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// A loopback port that is free now, below Linux's ephemeral range (32768+) so that neither the
/// kernel's `bind(0)` in parallel tests nor an outgoing connection lands on it after a stop.
fn free_port(seq: u32, k: u32) -> u16 {
    let mut x = (nanos_now() as u64)
        ^ ((std::process::id() as u64) << 32)
        ^ ((seq as u64) << 16)
        ^ k as u64;
    for _ in 0..1000 {
        // xorshift
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = 20000 + (x % 12000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ params final-byte(@..~)
            for d in chars.by_ref() {
                if ('@'..='~').contains(&d) && d != '[' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Sends one OTLP/HTTP JSON request (`path` like `/v1/logs`) with std only; returns the status code.
/// For live checks of the collector itself; kwire's exporter is what the real tests exercise.
pub fn post_otlp_json(http_endpoint: &str, path: &str, body: &str) -> u16 {
    use std::io::Read;
    let hostport = http_endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let mut s = TcpStream::connect(hostport).unwrap_or_else(|e| panic!("connect {hostport}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    resp.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in reply: {resp:?}"))
}

// ---------------------------------------------------------------------------------------------
// What was received

pub type Attrs = BTreeMap<String, Value>;

/// Everything the collector printed, in arrival order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Received {
    pub spans: Vec<Span>,
    pub logs: Vec<Log>,
    /// One entry per metric per export (a cumulative counter exported 3 times is here 3 times).
    pub metrics: Vec<Metric>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Span {
    pub name: String,
    /// `server`, `client`, `producer`, `consumer`, `internal` (or `unspecified`)
    pub kind: String,
    /// lower-case hex; "" when absent
    pub trace_id: String,
    pub span_id: String,
    /// "" for a root span
    pub parent_span_id: String,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    /// `unset`, `ok`, `error`
    pub status_code: String,
    pub status_message: String,
    pub attributes: Attrs,
    pub events: Vec<SpanEvent>,
    pub resource: Attrs,
    /// instrumentation scope name
    pub scope: String,
    /// The resource's and the scope's schema URL ("" when absent).
    pub schema_url: String,
    pub scope_schema_url: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanEvent {
    pub name: String,
    pub time_unix_nano: u64,
    pub attributes: Attrs,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Log {
    /// 1..=24 (WARN = 13, ERROR = 17); 0 unspecified
    pub severity_number: i32,
    pub severity_text: String,
    /// the string body; a body of another type as rotel prints it (`Int(42)`)
    pub body: String,
    pub timestamp_unix_nano: u64,
    pub observed_timestamp_unix_nano: u64,
    /// lower-case hex; "" when absent
    pub trace_id: String,
    pub span_id: String,
    pub flags: u32,
    pub attributes: Attrs,
    pub resource: Attrs,
    pub event_name: Option<String>,
    pub scope: String,
    /// The resource's and the scope's schema URL ("" when absent).
    pub schema_url: String,
    pub scope_schema_url: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metric {
    pub name: String,
    pub unit: String,
    pub description: String,
    /// `sum`, `gauge`, `histogram` (also `exponential_histogram`, `summary`)
    pub kind: String,
    /// sums only
    pub monotonic: Option<bool>,
    /// `cumulative` / `delta` (sums and histograms)
    pub temporality: Option<String>,
    pub points: Vec<Point>,
    pub resource: Attrs,
    pub scope: String,
    /// The resource's and the scope's schema URL ("" when absent).
    pub schema_url: String,
    pub scope_schema_url: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub attributes: Attrs,
    pub start_time_unix_nano: u64,
    pub time_unix_nano: u64,
    pub value: PointValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PointValue {
    /// a number printed without `.` (an integral double is indistinguishable: see the module doc)
    Int(i64),
    Double(f64),
    /// explicit-bucket histogram (exponential histograms and summaries: count/sum/min/max only).
    /// `sum` is NaN when absent.
    Histogram {
        count: u64,
        sum: f64,
        bounds: Vec<f64>,
        bucket_counts: Vec<u64>,
        min: Option<f64>,
        max: Option<f64>,
    },
}

impl PointValue {
    /// The number (a histogram's sum).
    pub fn as_f64(&self) -> f64 {
        match self {
            PointValue::Int(i) => *i as f64,
            PointValue::Double(d) => *d,
            PointValue::Histogram { sum, .. } => *sum,
        }
    }
}

impl Span {
    pub fn duration_nanos(&self) -> u64 {
        self.end_unix_nano.saturating_sub(self.start_unix_nano)
    }
}

impl Received {
    /// Log records whose attribute `key` equals `value` (`"weak_acks"`, `3`, `true`, `json!(..)`).
    pub fn logs_with(&self, key: &str, value: impl Into<Value>) -> Vec<&Log> {
        let v = value.into();
        self.logs
            .iter()
            .filter(|l| l.attributes.get(key) == Some(&v))
            .collect()
    }

    /// Spans whose attribute `key` equals `value`.
    pub fn spans_with(&self, key: &str, value: impl Into<Value>) -> Vec<&Span> {
        let v = value.into();
        self.spans
            .iter()
            .filter(|s| s.attributes.get(key) == Some(&v))
            .collect()
    }

    pub fn spans_named(&self, name: &str) -> Vec<&Span> {
        self.spans.iter().filter(|s| s.name == name).collect()
    }

    /// The most recently received block of metric `name`.
    pub fn metric(&self, name: &str) -> Option<&Metric> {
        self.metrics.iter().rev().find(|m| m.name == name)
    }

    /// Every received block of metric `name`, in arrival order.
    pub fn metrics_named(&self, name: &str) -> Vec<&Metric> {
        self.metrics.iter().filter(|m| m.name == name).collect()
    }

    /// Over every block of metric `name`: per attribute set, the point with the latest timestamp
    /// (for a cumulative metric: its current value). Sorted by attribute set.
    pub fn latest_points(&self, name: &str) -> Vec<Point> {
        let mut by: BTreeMap<String, Point> = BTreeMap::new();
        for p in self.metrics_named(name).into_iter().flat_map(|m| &m.points) {
            let key = serde_json::to_string(&p.attributes).unwrap();
            match by.get(&key) {
                Some(old) if old.time_unix_nano > p.time_unix_nano => {}
                _ => {
                    by.insert(key, p.clone());
                }
            }
        }
        by.into_values().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty() && self.logs.is_empty() && self.metrics.is_empty()
    }

    /// Short human-readable account of what was received (for panic messages).
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} spans, {} log records, {} metric blocks\n",
            self.spans.len(),
            self.logs.len(),
            self.metrics.len()
        );
        for sp in self.spans.iter().take(40) {
            s.push_str(&format!(
                "  span {:?} kind={} dur={}ns status={} attrs={}\n",
                sp.name,
                sp.kind,
                sp.duration_nanos(),
                sp.status_code,
                attrs_str(&sp.attributes)
            ));
        }
        for l in self.logs.iter().take(40) {
            let body: String = l.body.chars().take(100).collect();
            s.push_str(&format!(
                "  log sev={} {:?} body={body:?} attrs={}\n",
                l.severity_number,
                l.severity_text,
                attrs_str(&l.attributes)
            ));
        }
        for m in self.metrics.iter().take(60) {
            let pts: Vec<String> = m
                .points
                .iter()
                .take(8)
                .map(|p| format!("{}={:?}", attrs_str(&p.attributes), p.value))
                .collect();
            s.push_str(&format!(
                "  metric {} ({}) {}\n",
                m.name,
                m.kind,
                pts.join(" ")
            ));
        }
        s
    }
}

fn attrs_str(a: &Attrs) -> String {
    serde_json::to_string(a).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Parsing rotel's detailed debug text

/// Where `     -> key: value` lines currently go.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Section {
    None,
    Resource,
    ItemAttrs,
    PointAttrs,
    Event,
    EventAttrs,
    Descriptor,
    /// scope attributes, links, exemplars: not kept
    Ignored,
}

/// A value that may go on over the next lines (strings are printed raw, newlines included).
#[derive(Clone, Copy, PartialEq, Debug)]
enum Target {
    Attr(Section),
    Body,
}

enum Item {
    None,
    Span(Span),
    Log(Log),
    Metric(Metric),
}

struct Parser {
    out: Received,
    resource: Attrs,
    scope: String,
    schema_url: String,
    scope_schema_url: String,
    item: Item,
    section: Section,
    pending: Option<(Target, String, String)>,
}

/// Column-0 line starts that rotel prints (anything else after a value continues that value).
const HEADS: &[&str] = &[
    "ResourceSpans #",
    "ResourceLog #",
    "ResourceLogs #",
    "ResourceMetrics #",
    "Resource SchemaURL:",
    "Resource attributes:",
    "ScopeSpans #",
    "ScopeLogs #",
    "ScopeMetrics #",
    "ScopeSpans SchemaURL:",
    "ScopeLogs SchemaURL:",
    "ScopeMetrics SchemaURL:",
    "InstrumentationScope ",
    "Span #",
    "Start time:",
    "End time:",
    "Attributes:",
    "Events:",
    "Links:",
    "SpanEvent #",
    "SpanLink #",
    "LogRecord #",
    "ObservedTimestamp:",
    "Timestamp:",
    "SeverityText:",
    "SeverityNumber:",
    "EventName:",
    "Body:",
    "Flags:",
    "Metric #",
    "Descriptor:",
    "NumberDataPoints #",
    "HistogramDataPoints #",
    "ExponentialHistogramDataPoints #",
    "SummaryDataPoints #",
    "Data point attributes:",
    "StartTimestamp:",
    "Count:",
    "Sum:",
    "Min:",
    "Max:",
    "ExplicitBounds #",
    "Buckets #",
    "Bucket [",
    "Bucket (",
    "QuantileValue #",
    "Value:",
    "Exemplars:",
    "Exemplar #",
    "DroppedAttributesCount:",
];

/// `    Key            : value` fields of spans and log records.
const FIELDS: &[&str] = &[
    "Trace ID",
    "Parent ID",
    "ID",
    "Span ID",
    "Name",
    "Kind",
    "Status code",
    "Status message",
    "TraceState",
    "Trace state",
    "Flags",
];

fn is_structural(line: &str) -> bool {
    if line.starts_with('\x1b') || line.trim_start().starts_with("-> ") || line.trim() == "->" {
        return true;
    }
    if HEADS.iter().any(|h| line.starts_with(h)) {
        return true;
    }
    indented_field(line).is_some()
}

/// `    Trace ID       : abc` -> ("Trace ID", "abc")
fn indented_field(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix("    ")?;
    if rest.starts_with(' ') {
        return None;
    }
    let (k, v) = rest.split_once(':')?;
    let k = k.trim_end();
    FIELDS
        .contains(&k)
        .then(|| (k, v.strip_prefix(' ').unwrap_or(v)))
}

fn after<'a>(line: &'a str, head: &str) -> &'a str {
    let v = &line[head.len()..];
    v.strip_prefix(' ').unwrap_or(v)
}

fn num<T: std::str::FromStr + Default>(s: &str) -> T {
    s.trim().parse().unwrap_or_default()
}

fn float(s: &str) -> f64 {
    s.trim().parse().unwrap_or(f64::NAN)
}

/// `SPAN_KIND_CLIENT` -> `client`
fn enum_name(s: &str, prefix: &str) -> String {
    s.trim().trim_start_matches(prefix).to_ascii_lowercase()
}

/// Parses the text rotel printed (one run's stdout, or a saved sample).
pub fn parse(text: &str) -> Received {
    let mut p = Parser {
        out: Received::default(),
        resource: Attrs::new(),
        scope: String::new(),
        schema_url: String::new(),
        scope_schema_url: String::new(),
        item: Item::None,
        section: Section::None,
        pending: None,
    };
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if !is_structural(line) {
            if let Some((_, _, raw)) = &mut p.pending {
                raw.push('\n');
                raw.push_str(line);
            }
            continue;
        }
        p.flush_pending();
        p.line(line);
    }
    p.flush_pending();
    p.finish_item();
    p.out
}

impl Parser {
    fn finish_item(&mut self) {
        match std::mem::replace(&mut self.item, Item::None) {
            Item::None => {}
            Item::Span(s) => self.out.spans.push(s),
            Item::Log(l) => self.out.logs.push(l),
            Item::Metric(m) => self.out.metrics.push(m),
        }
    }

    fn flush_pending(&mut self) {
        let Some((target, key, raw)) = self.pending.take() else {
            return;
        };
        let value = parse_value(&raw);
        let map = match (target, &mut self.item) {
            (Target::Body, Item::Log(l)) => {
                l.body = match value {
                    Value::String(s) => s,
                    _ => raw,
                };
                return;
            }
            (Target::Attr(Section::Resource), _) => &mut self.resource,
            (Target::Attr(Section::ItemAttrs), Item::Span(s)) => &mut s.attributes,
            (Target::Attr(Section::ItemAttrs), Item::Log(l)) => &mut l.attributes,
            (Target::Attr(Section::PointAttrs), Item::Metric(m)) => match m.points.last_mut() {
                Some(pt) => &mut pt.attributes,
                None => return,
            },
            (Target::Attr(Section::EventAttrs), Item::Span(s)) => match s.events.last_mut() {
                Some(e) => &mut e.attributes,
                None => return,
            },
            _ => return,
        };
        map.insert(key, value);
    }

    fn line(&mut self, line: &str) {
        if line.starts_with('\x1b') {
            return; // rotel's own log lines (coloured) share stdout
        }
        let trimmed = line.trim_start();
        if let Some(kv) = trimmed.strip_prefix("-> ") {
            return self.arrow(kv);
        }
        if let Some((k, v)) = indented_field(line) {
            return self.field(k, v);
        }
        let s = line;
        if s.starts_with("ResourceSpans #")
            || s.starts_with("ResourceLog #")
            || s.starts_with("ResourceLogs #")
            || s.starts_with("ResourceMetrics #")
        {
            self.finish_item();
            self.resource = Attrs::new();
            self.scope.clear();
            self.schema_url.clear();
            self.scope_schema_url.clear();
            self.section = Section::None;
        } else if let Some(url) = s.strip_prefix("Resource SchemaURL:") {
            self.schema_url = url.trim().to_string();
        } else if let Some(url) = s
            .strip_prefix("ScopeSpans SchemaURL:")
            .or_else(|| s.strip_prefix("ScopeLogs SchemaURL:"))
            .or_else(|| s.strip_prefix("ScopeMetrics SchemaURL:"))
        {
            self.scope_schema_url = url.trim().to_string();
        } else if s.starts_with("Resource attributes:") {
            self.section = Section::Resource;
        } else if s.starts_with("InstrumentationScope attributes") {
            self.section = Section::Ignored;
        } else if let Some(rest) = s.strip_prefix("InstrumentationScope ") {
            self.finish_item();
            self.scope = rest.split(' ').next().unwrap_or("").to_string();
            self.section = Section::None;
        } else if s.starts_with("ScopeSpans #")
            || s.starts_with("ScopeLogs #")
            || s.starts_with("ScopeMetrics #")
        {
            self.finish_item();
            self.section = Section::None;
        } else if s.starts_with("Span #") {
            self.finish_item();
            self.item = Item::Span(Span {
                resource: self.resource.clone(),
                scope: self.scope.clone(),
                schema_url: self.schema_url.clone(),
                scope_schema_url: self.scope_schema_url.clone(),
                ..Span::default()
            });
            self.section = Section::None;
        } else if s.starts_with("LogRecord #") {
            self.finish_item();
            self.item = Item::Log(Log {
                resource: self.resource.clone(),
                scope: self.scope.clone(),
                schema_url: self.schema_url.clone(),
                scope_schema_url: self.scope_schema_url.clone(),
                ..Log::default()
            });
            self.section = Section::None;
        } else if s.starts_with("Metric #") {
            self.finish_item();
            self.item = Item::Metric(Metric {
                resource: self.resource.clone(),
                scope: self.scope.clone(),
                schema_url: self.schema_url.clone(),
                scope_schema_url: self.scope_schema_url.clone(),
                ..Metric::default()
            });
            self.section = Section::None;
        } else if s.starts_with("Attributes:") {
            self.section = Section::ItemAttrs;
        } else if s.starts_with("Data point attributes:") {
            self.section = Section::PointAttrs;
        } else if s.starts_with("Descriptor:") {
            self.section = Section::Descriptor;
        } else if s.starts_with("Events:") {
            self.section = Section::Event;
        } else if s.starts_with("SpanEvent #") {
            if let Item::Span(sp) = &mut self.item {
                sp.events.push(SpanEvent::default());
            }
            self.section = Section::Event;
        } else if s.starts_with("Links:")
            || s.starts_with("SpanLink #")
            || s.starts_with("Exemplars:")
            || s.starts_with("Exemplar #")
        {
            self.section = Section::Ignored;
        } else {
            self.item_line(s);
        }
    }

    /// `key: value` after `-> `, by section.
    fn arrow(&mut self, kv: &str) {
        let (k, v) = match kv.split_once(": ") {
            Some((k, v)) => (k, v),
            None => (kv.trim_end_matches(':'), ""),
        };
        match self.section {
            Section::Resource | Section::ItemAttrs | Section::PointAttrs | Section::EventAttrs => {
                self.pending = Some((Target::Attr(self.section), k.to_string(), v.to_string()));
            }
            Section::Event => {
                if let Item::Span(sp) = &mut self.item {
                    if k.starts_with("Attributes") {
                        self.section = Section::EventAttrs;
                    } else if let Some(e) = sp.events.last_mut() {
                        match k {
                            "Name" => e.name = v.to_string(),
                            "Timestamp" => e.time_unix_nano = num(v),
                            _ => {}
                        }
                    }
                }
            }
            Section::Descriptor => {
                if let Item::Metric(m) = &mut self.item {
                    match k {
                        "Name" => m.name = v.to_string(),
                        "Description" => m.description = v.to_string(),
                        "Unit" => m.unit = v.to_string(),
                        "DataType" => {
                            m.kind = match v.trim() {
                                "ExponentialHistogram" => "exponential_histogram".into(),
                                other => other.to_ascii_lowercase(),
                            }
                        }
                        "IsMonotonic" => m.monotonic = Some(v.trim() == "true"),
                        "AggregationTemporality" => {
                            m.temporality = Some(enum_name(v, "AGGREGATION_TEMPORALITY_"))
                        }
                        _ => {}
                    }
                }
            }
            Section::None | Section::Ignored => {}
        }
    }

    /// `    Key     : value` lines of spans and logs.
    fn field(&mut self, k: &str, v: &str) {
        match &mut self.item {
            Item::Span(s) => match k {
                "Trace ID" => s.trace_id = v.trim().to_string(),
                "Parent ID" => s.parent_span_id = v.trim().to_string(),
                "ID" => s.span_id = v.trim().to_string(),
                "Name" => s.name = v.to_string(),
                "Kind" => s.kind = enum_name(v, "SPAN_KIND_"),
                "Status code" => s.status_code = enum_name(v, "STATUS_CODE_"),
                "Status message" => s.status_message = v.to_string(),
                _ => {}
            },
            Item::Log(l) => match k {
                "Trace ID" => l.trace_id = v.trim().to_string(),
                "Span ID" => l.span_id = v.trim().to_string(),
                _ => {}
            },
            _ => {}
        }
    }

    /// Column-0 `Key: value` lines inside a span, log record or metric.
    fn item_line(&mut self, s: &str) {
        match &mut self.item {
            Item::Span(sp) => {
                if s.starts_with("Start time:") {
                    sp.start_unix_nano = num(after(s, "Start time:"));
                } else if s.starts_with("End time:") {
                    sp.end_unix_nano = num(after(s, "End time:"));
                }
            }
            Item::Log(l) => {
                if s.starts_with("ObservedTimestamp:") {
                    l.observed_timestamp_unix_nano = num(after(s, "ObservedTimestamp:"));
                } else if s.starts_with("Timestamp:") {
                    l.timestamp_unix_nano = num(after(s, "Timestamp:"));
                } else if s.starts_with("SeverityText:") {
                    l.severity_text = after(s, "SeverityText:").to_string();
                } else if s.starts_with("SeverityNumber:") {
                    // SEVERITY_NUMBER_WARN(13)
                    let v = after(s, "SeverityNumber:");
                    l.severity_number = v
                        .rsplit_once('(')
                        .map(|(_, n)| num(n.trim_end_matches(')')))
                        .unwrap_or_else(|| num(v));
                } else if s.starts_with("EventName:") {
                    l.event_name = Some(after(s, "EventName:").to_string());
                } else if s.starts_with("Flags:") {
                    l.flags = num(after(s, "Flags:"));
                } else if s.starts_with("Body:") {
                    self.pending =
                        Some((Target::Body, String::new(), after(s, "Body:").to_string()));
                }
            }
            Item::Metric(m) => metric_line(m, s),
            Item::None => {}
        }
        if s.starts_with("NumberDataPoints #")
            || s.starts_with("HistogramDataPoints #")
            || s.starts_with("ExponentialHistogramDataPoints #")
            || s.starts_with("SummaryDataPoints #")
        {
            self.section = Section::None;
        }
    }
}

fn metric_line(m: &mut Metric, s: &str) {
    let hist = || PointValue::Histogram {
        count: 0,
        sum: f64::NAN,
        bounds: vec![],
        bucket_counts: vec![],
        min: None,
        max: None,
    };
    if s.starts_with("NumberDataPoints #")
        || s.starts_with("HistogramDataPoints #")
        || s.starts_with("ExponentialHistogramDataPoints #")
        || s.starts_with("SummaryDataPoints #")
    {
        m.points.push(Point {
            attributes: Attrs::new(),
            start_time_unix_nano: 0,
            time_unix_nano: 0,
            value: if s.starts_with("Number") {
                PointValue::Double(f64::NAN)
            } else {
                hist()
            },
        });
        return;
    }
    let Some(p) = m.points.last_mut() else {
        return;
    };
    if s.starts_with("StartTimestamp:") {
        p.start_time_unix_nano = num(after(s, "StartTimestamp:"));
    } else if s.starts_with("Timestamp:") {
        p.time_unix_nano = num(after(s, "Timestamp:"));
    } else if s.starts_with("Value:") {
        let v = after(s, "Value:").trim();
        p.value = match v.parse::<i64>() {
            Ok(i) if !v.contains(['.', 'e', 'E']) => PointValue::Int(i),
            _ => PointValue::Double(float(v)),
        };
    } else if let PointValue::Histogram {
        count,
        sum,
        bounds,
        bucket_counts,
        min,
        max,
    } = &mut p.value
    {
        if s.starts_with("Count:") {
            *count = num(after(s, "Count:"));
        } else if s.starts_with("Sum:") {
            *sum = float(after(s, "Sum:"));
        } else if s.starts_with("Min:") {
            *min = Some(float(after(s, "Min:")));
        } else if s.starts_with("Max:") {
            *max = Some(float(after(s, "Max:")));
        } else if let Some(rest) = s.strip_prefix("ExplicitBounds #") {
            // ExplicitBounds #0: 1
            bounds.push(float(rest.split_once(':').map_or("", |(_, v)| v)));
        } else if let Some(rest) = s.strip_prefix("Buckets #") {
            // Buckets #0, Count: 1
            bucket_counts.push(num(rest.split_once("Count:").map_or("", |(_, v)| v)));
        }
    }
}

/// `Str(x)`, `Int(3)`, `Double(0.25)`, `Bool(true)`, `Slice(..)`, `Map(k:..)`, `Bytes(..)`, `Empty`.
fn parse_value(raw: &str) -> Value {
    if let Some(s) = raw.strip_prefix("Str(").and_then(|r| r.strip_suffix(')')) {
        return Value::String(s.to_string());
    }
    if raw.starts_with("Slice(") || raw.starts_with("Map(") {
        let mut i = 0;
        let v = parse_any(raw, &mut i);
        if i == raw.len() {
            return v;
        }
        return Value::String(raw.to_string());
    }
    let mut i = 0;
    parse_any(raw, &mut i)
}

const TAGS: &[&str] = &[
    "Str(", "Int(", "Double(", "Bool(", "Slice(", "Map(", "Bytes(", "Empty",
];

fn starts_value(s: &str) -> bool {
    TAGS.iter().any(|t| s.starts_with(t))
}

/// Whether a list item (`Slice`) or entry (`Map`) may start at `s`.
fn starts_item(s: &str, in_map: bool) -> bool {
    if !in_map {
        return starts_value(s);
    }
    s.split_once(':').is_some_and(|(_, v)| starts_value(v))
}

/// One value at `s[*i..]`, advancing `i` past it.
fn parse_any(s: &str, i: &mut usize) -> Value {
    let rest = &s[*i..];
    if rest.starts_with("Empty") {
        *i += 5;
        return Value::Null;
    }
    let Some(open) = rest.find('(') else {
        *i = s.len();
        return Value::String(rest.to_string());
    };
    let tag = &rest[..open];
    let body_start = *i + open + 1;
    match tag {
        "Slice" | "Map" => {
            let in_map = tag == "Map";
            *i = body_start;
            let mut arr = Vec::new();
            let mut obj = serde_json::Map::new();
            loop {
                if *i >= s.len() {
                    break;
                }
                if s[*i..].starts_with(')') {
                    *i += 1;
                    break;
                }
                if in_map {
                    let Some(colon) = s[*i..].find(':') else {
                        *i = s.len();
                        break;
                    };
                    let key = s[*i..*i + colon].to_string();
                    *i += colon + 1;
                    obj.insert(key, parse_any(s, i));
                } else {
                    arr.push(parse_any(s, i));
                }
                if s[*i..].starts_with(", ") {
                    *i += 2;
                }
            }
            if in_map {
                Value::Object(obj)
            } else {
                Value::Array(arr)
            }
        }
        "Str" => {
            // the first `)` followed by the end, a closing `)`, or `, ` and another item
            let mut j = body_start;
            while let Some(k) = s[j..].find(')') {
                let end = j + k;
                let after = &s[end + 1..];
                let ok = after.is_empty()
                    || after.starts_with(')')
                    || after
                        .strip_prefix(", ")
                        .is_some_and(|a| starts_item(a, true) || starts_item(a, false));
                if ok {
                    *i = end + 1;
                    return Value::String(s[body_start..end].to_string());
                }
                j = end + 1;
            }
            *i = s.len();
            Value::String(s[body_start..].to_string())
        }
        _ => {
            let end = s[body_start..]
                .find(')')
                .map_or(s.len(), |k| body_start + k);
            let inner = &s[body_start..end];
            *i = (end + 1).min(s.len());
            match tag {
                "Int" => inner
                    .parse::<i64>()
                    .map(Value::from)
                    .unwrap_or_else(|_| Value::String(inner.to_string())),
                "Double" => inner
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .unwrap_or_else(|| Value::String(inner.to_string())),
                "Bool" => Value::Bool(inner == "true"),
                _ => Value::String(format!("{tag}({inner})")),
            }
        }
    }
}
