//! The OTLP exporter: takes the engine's outputs on the engine's thread (conversion and metric
//! aggregation only, no IO there) and hands records to one sender thread over a bounded queue. The
//! sender batches, sends over gRPC or HTTP/protobuf, and keeps every alert it could not deliver in a
//! retry store (the on-disk spool when `spool_dir` is set, else a bounded in-memory queue) that it
//! re-sends, oldest first, when the backend answers again.
//!
//! Why this file is long: the engine-side half (queue, sampling, alert overflow) and the sender thread
//! (batches, retry store, backoff, the `finish` report) are the two ends of one queue: they share its
//! messages and counters, and each rule below spans both.
//!
//! Easy to get wrong:
//! - no alert silently lost: a full queue never drops an alert (it waits in a bounded overflow on the
//!   engine side); a full spool evicts the oldest batch and counts and logs it; what is still undelivered
//!   at the end is reported by `finish` so the CLI can say so and fail;
//! - spans and metrics are best effort live (a full queue drops spans, counted as `queue_full`), but a
//!   replay sets `backpressure` so every span of the capture is delivered: replay must give the same
//!   answers as live, and more;
//! - order: once anything waits in the retry store, new alert batches queue behind it, so a backend that
//!   comes back receives alerts in the order they were raised;
//! - sampling keeps a span when its trace id falls under the ratio (deterministic), and always keeps the
//!   span of an exchange that raised an alert: the alert follows its exchange in the output stream, so
//!   holding the last unsampled span is enough;
//! - the sender never blocks the capture: sends happen on its own thread with the endpoint timeout.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Metric as OtlpMetric, ResourceMetrics, ScopeMetrics,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

use kwire_engine::Output;
use kwire_flow::Timestamp;

use crate::catalog::Semconv;
use crate::convert::{alert_log, exchange_span, kv_str, ExchangeKey};
use crate::metrics::{ExportHealth, Health, MetricState};
use crate::settings::{percent_decode, OtlpSettings};
use crate::spool::Spool;
use crate::transport::{SendError, Transport};

/// Alerts per OTLP request at most.
const BATCH: usize = 512;
/// Spans per OTLP request at most (~1 MB encoded, under gRPC's 4 MB default): one request at a time is in
/// flight, so throughput is batch / round trip (measured with examples/export_rate: 512 spans per request
/// gave 13k spans/s against a collector answering in ~40 ms).
const SPAN_BATCH: usize = 2048;
/// How long a record may wait for its batch to fill.
const LINGER: Duration = Duration::from_millis(200);
/// Alerts kept on the engine side while the queue is full (then dropped, counted and logged).
const MAX_OVERFLOW: usize = 65_536;
/// In-memory retry store bound (alerts) when there is no spool directory.
const MAX_MEMORY_RETRY: u64 = 100_000;
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Defaults, documented in README "OpenTelemetry export".
pub const DEFAULT_QUEUE_SIZE: usize = 8192;
pub const DEFAULT_SPOOL_MAX_MB: u64 = 64;
pub const DEFAULT_METRICS_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub settings: OtlpSettings,
    /// Export exchanges as spans at all.
    pub spans: bool,
    /// Fraction of exchanges kept as spans (alerts' exchanges always kept).
    pub sample_ratio: f64,
    /// Metrics export period (packet time in a replay, wall time live).
    pub metrics_interval: Duration,
    pub spool_dir: Option<PathBuf>,
    pub spool_max_bytes: u64,
    pub queue_size: usize,
    /// Wait for queue space instead of dropping spans (replays).
    pub backpressure: bool,
    /// Resource attributes (service.name, host.name, k8s.*, OTEL_RESOURCE_ATTRIBUTES, ...).
    pub resource: Vec<(String, String)>,
    /// Names for the attributes semantic conventions v1.45.0 renamed (and the schema URL).
    pub semconv: Semconv,
}

/// A log line for the operator (the CLI prints it as plain text or JSON).
pub type LogFn = Arc<dyn Fn(LogLevel, String) + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Info,
    Warn,
    Error,
}

/// What the export did, at the end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportReport {
    pub alerts_delivered: u64,
    pub spans_delivered: u64,
    pub metric_exports: u64,
    /// Alerts waiting in the on-disk spool (re-sent by the next run with the same spool).
    pub alerts_spooled: u64,
    /// Alerts that could not be delivered and are not spooled: lost when this process ends.
    pub alerts_undelivered: u64,
    pub dropped: BTreeMap<(&'static str, &'static str), u64>,
    pub last_error: Option<String>,
}

enum Msg {
    Log(LogRecord),
    Span(Span),
    Metrics(Vec<OtlpMetric>),
    Flush(mpsc::Sender<()>),
}

/// Counters shared by the engine side and the sender thread.
#[derive(Default)]
struct Shared {
    queued: [AtomicU64; 3],
    dequeued: [AtomicU64; 3],
    alerts_delivered: AtomicU64,
    spans_delivered: AtomicU64,
    metric_exports: AtomicU64,
    spooled: AtomicU64,
    dropped: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    last_error: Mutex<Option<String>>,
}

const LOGS: usize = 0;
const TRACES: usize = 1;
const METRICS: usize = 2;
const SIGNALS: [&str; 3] = ["logs", "traces", "metrics"];

impl Shared {
    fn drop_n(&self, signal: usize, reason: &'static str, n: u64) {
        if n == 0 {
            return;
        }
        if let Ok(mut d) = self.dropped.lock() {
            *d.entry((SIGNALS[signal], reason)).or_insert(0) += n;
        }
    }
}

pub struct Exporter {
    tx: Option<SyncSender<Msg>>,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    opts: ExportOptions,
    metrics: MetricState,
    overflow: VecDeque<LogRecord>,
    held: Option<(ExchangeKey, Span)>,
    last_metrics: Option<Timestamp>,
    log: LogFn,
}

impl Exporter {
    /// Starts the sender thread. Fails on bad settings (certificates, headers) or an unusable spool
    /// directory; never because the backend is down.
    pub fn start(opts: ExportOptions, log: LogFn) -> Result<Exporter, String> {
        let transport = Transport::new(&opts.settings)?;
        let store = match &opts.spool_dir {
            Some(dir) => Store::Disk(Spool::open(dir, opts.spool_max_bytes).map_err(|e| {
                format!(
                    "OTLP spool {}: {e} (set --otlp-spool to a writable directory)",
                    dir.display()
                )
            })?),
            None => Store::Memory {
                batches: VecDeque::new(),
                records: 0,
            },
        };
        if store.records() > 0 {
            log(
                LogLevel::Info,
                format!(
                    "OTLP spool holds {} alerts from an earlier run: re-sending them first",
                    store.records()
                ),
            );
        }
        let shared = Arc::new(Shared::default());
        shared.spooled.store(store.records(), Ordering::Relaxed);
        let (tx, rx) = mpsc::sync_channel(opts.queue_size.max(16));
        let resource = Resource {
            attributes: opts
                .resource
                .iter()
                .map(|(k, v)| kv_str(k, v.clone()))
                .collect(),
            ..Default::default()
        };
        let mut sender = SenderThread {
            rx,
            transport,
            store,
            shared: shared.clone(),
            resource,
            schema_url: opts.semconv.schema_url(),
            log: log.clone(),
            logs: Vec::new(),
            spans: Vec::new(),
            logs_since: None,
            spans_since: None,
            next_retry: Instant::now(),
            backoff: Duration::from_secs(1),
            down: false,
        };
        let thread = std::thread::Builder::new()
            .name("kwire-otlp".into())
            .spawn(move || sender.run())
            .map_err(|e| format!("cannot start the OTLP export thread: {e}"))?;
        Ok(Exporter {
            tx: Some(tx),
            thread: Some(thread),
            shared,
            metrics: MetricState::new(opts.semconv),
            opts,
            overflow: VecDeque::new(),
            held: None,
            last_metrics: None,
            log,
        })
    }

    // The refused message comes back whole to wait in `overflow`; boxing it would allocate per send.
    #[allow(clippy::result_large_err)]
    fn send(&mut self, signal: usize, m: Msg) -> Result<(), Msg> {
        let Some(tx) = &self.tx else { return Err(m) };
        let r = if self.opts.backpressure {
            tx.send(m).map_err(|e| e.0)
        } else {
            match tx.try_send(m) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(m)) | Err(TrySendError::Disconnected(m)) => Err(m),
            }
        };
        if r.is_ok() {
            self.shared.queued[signal].fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    fn send_alert(&mut self, rec: LogRecord) {
        self.drain_overflow();
        if !self.overflow.is_empty() {
            self.push_overflow(rec);
            return;
        }
        if let Err(Msg::Log(rec)) = self.send(LOGS, Msg::Log(rec)) {
            self.push_overflow(rec);
        }
    }

    fn push_overflow(&mut self, rec: LogRecord) {
        if self.overflow.len() >= MAX_OVERFLOW {
            self.overflow.pop_front();
            self.shared.drop_n(LOGS, "queue_full", 1);
            (self.log)(
                LogLevel::Error,
                format!("OTLP export queue and overflow full ({MAX_OVERFLOW} alerts): oldest alert dropped"),
            );
        }
        self.overflow.push_back(rec);
    }

    fn drain_overflow(&mut self) {
        while let Some(rec) = self.overflow.pop_front() {
            if let Err(Msg::Log(rec)) = self.send(LOGS, Msg::Log(rec)) {
                self.overflow.push_front(rec);
                return;
            }
        }
    }

    fn send_span(&mut self, span: Span) {
        if self.send(TRACES, Msg::Span(span)).is_err() {
            self.shared.drop_n(TRACES, "queue_full", 1);
        }
    }

    /// One engine output.
    pub fn on_output(&mut self, o: &Output) {
        match o {
            Output::Exchange(x) => {
                self.metrics.on_exchange(x);
                if !self.opts.spans {
                    return;
                }
                let key = ExchangeKey::of(x);
                let span = exchange_span(x, self.opts.semconv);
                if key.sample_point() < self.opts.sample_ratio {
                    self.held = None;
                    self.send_span(span);
                } else {
                    self.held = Some((key, span));
                }
            }
            Output::Alert(a) => {
                self.metrics.on_alert(a);
                if let (Some((conn, corr, ts)), Some((k, _))) = (a.exchange, &self.held) {
                    if k.conn == conn && k.correlation_id == corr && k.request_ts == ts {
                        if let Some((_, span)) = self.held.take() {
                            self.send_span(span);
                        }
                    }
                }
                self.send_alert(alert_log(a, self.opts.semconv, wall_clock_ns()));
            }
            Output::Notice(_) | Output::Timeline(_) | Output::Group(_) => {}
        }
    }

    /// Time passes (packet time in a replay, wall time live): true when metrics are due (every
    /// `metrics_interval`); the caller then gathers the agent's health and calls `export_metrics`.
    pub fn tick(&mut self, now: Timestamp) -> bool {
        self.drain_overflow();
        match self.last_metrics {
            None => {
                self.last_metrics = Some(now);
                false
            }
            Some(t) => now.nanos_since(t) >= self.opts.metrics_interval.as_nanos() as i64,
        }
    }

    /// Sends a metrics snapshot as of `now`.
    pub fn export_metrics(&mut self, now: Timestamp, health: &Health) {
        self.last_metrics = Some(now);
        self.metrics.health = health.clone();
        self.metrics.export = self.export_health();
        let snap = self.metrics.snapshot(u64::try_from(now.0).unwrap_or(0));
        if self.send(METRICS, Msg::Metrics(snap)).is_err() {
            self.shared.drop_n(METRICS, "queue_full", 1);
        }
    }

    fn export_health(&self) -> ExportHealth {
        let mut h = ExportHealth::default();
        for (i, s) in SIGNALS.iter().enumerate() {
            let q = self.shared.queued[i].load(Ordering::Relaxed);
            let d = self.shared.dequeued[i].load(Ordering::Relaxed);
            let mut depth = q.saturating_sub(d);
            if i == LOGS {
                depth += self.overflow.len() as u64;
            }
            h.queue_depth.insert(*s, depth);
        }
        if let Ok(d) = self.shared.dropped.lock() {
            h.dropped = d.clone();
        }
        h.spooled_alerts = self.shared.spooled.load(Ordering::Relaxed);
        h
    }

    /// Metric series dropped because a table was full.
    pub fn series_dropped(&self) -> u64 {
        self.metrics.series_dropped
    }

    /// Sends the last metrics and everything queued, waits up to `timeout` for the backend, and stops
    /// the sender. Alerts still undelivered stay in the spool (if any) and are counted in the report.
    pub fn finish(mut self, now: Timestamp, health: &Health, timeout: Duration) -> ExportReport {
        let deadline = Instant::now() + timeout;
        self.held = None; // an unsampled span that raised no alert stays out
        while !self.overflow.is_empty() && Instant::now() < deadline {
            self.drain_overflow();
            if !self.overflow.is_empty() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        self.export_metrics(now, health);
        let (ack_tx, ack_rx) = mpsc::channel();
        if let Some(tx) = &self.tx {
            let left = deadline.saturating_duration_since(Instant::now());
            // Blocking send with a deadline: try until the queue has room.
            let mut msg = Msg::Flush(ack_tx);
            loop {
                match tx.try_send(msg) {
                    Ok(()) => break,
                    Err(TrySendError::Full(m)) if Instant::now() < deadline => {
                        msg = m;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => break,
                }
            }
            let _ = ack_rx.recv_timeout(left.max(Duration::from_millis(1)));
        }
        self.tx = None; // the sender sees the channel close and ends after its current work
        let undelivered_overflow = self.overflow.len() as u64;
        if let Some(t) = self.thread.take() {
            // It ends within one send timeout; wait for it only while we still have time.
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
        let spooled = self.shared.spooled.load(Ordering::Relaxed);
        let disk = self.opts.spool_dir.is_some();
        ExportReport {
            alerts_delivered: self.shared.alerts_delivered.load(Ordering::Relaxed),
            spans_delivered: self.shared.spans_delivered.load(Ordering::Relaxed),
            metric_exports: self.shared.metric_exports.load(Ordering::Relaxed),
            alerts_spooled: if disk { spooled } else { 0 },
            alerts_undelivered: if disk { 0 } else { spooled } + undelivered_overflow,
            dropped: self
                .shared
                .dropped
                .lock()
                .map(|d| d.clone())
                .unwrap_or_default(),
            last_error: self.shared.last_error.lock().ok().and_then(|e| e.clone()),
        }
    }
}

/// Where undelivered alert batches wait (encoded `ExportLogsServiceRequest`s).
enum Store {
    Disk(Spool),
    Memory {
        batches: VecDeque<(u64, Vec<u8>, u32)>,
        records: u64,
    },
}

impl Store {
    fn records(&self) -> u64 {
        match self {
            Store::Disk(s) => s.records(),
            Store::Memory { records, .. } => *records,
        }
    }

    fn is_empty(&self) -> bool {
        self.records() == 0
            && match self {
                Store::Disk(s) => s.batches() == 0,
                Store::Memory { batches, .. } => batches.is_empty(),
            }
    }

    /// Keeps a batch; returns (alerts evicted to make room, refused).
    fn push(&mut self, payload: Vec<u8>, n: u32) -> (u64, u64) {
        match self {
            Store::Disk(s) => {
                let o = s.push(&payload, n);
                let lost = if o.stored.is_none() { u64::from(n) } else { 0 };
                (o.evicted_records, lost)
            }
            Store::Memory { batches, records } => {
                let mut evicted = 0u64;
                while *records + u64::from(n) > MAX_MEMORY_RETRY {
                    let Some((_, _, k)) = batches.pop_front() else {
                        break;
                    };
                    *records -= u64::from(k);
                    evicted += u64::from(k);
                }
                let id = batches.back().map_or(0, |b| b.0 + 1);
                batches.push_back((id, payload, n));
                *records += u64::from(n);
                (evicted, 0)
            }
        }
    }

    /// The oldest batch: (id, payload, records).
    fn oldest(&mut self) -> Option<(u64, Vec<u8>, u32)> {
        match self {
            Store::Disk(s) => loop {
                let e = s.oldest()?;
                match s.read(e.id) {
                    Ok(p) => return Some((e.id, p, e.records)),
                    // A damaged batch is moved aside by the spool; go on with the next one.
                    Err(e2) if e2.kind() == std::io::ErrorKind::InvalidData => continue,
                    Err(_) => {
                        let _ = s.remove(e.id);
                    }
                }
            },
            Store::Memory { batches, .. } => batches.front().cloned(),
        }
    }

    fn remove(&mut self, id: u64) {
        match self {
            Store::Disk(s) => {
                let _ = s.remove(id);
            }
            Store::Memory { batches, records } => {
                if batches.front().is_some_and(|b| b.0 == id) {
                    if let Some((_, _, n)) = batches.pop_front() {
                        *records -= u64::from(n);
                    }
                }
            }
        }
    }
}

/// Now, for a log record's observed time (the one wall-clock read of the conversion path).
fn wall_clock_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

struct SenderThread {
    rx: Receiver<Msg>,
    transport: Transport,
    store: Store,
    shared: Arc<Shared>,
    resource: Resource,
    /// The semantic conventions version, on every resource and scope.
    schema_url: &'static str,
    log: LogFn,
    logs: Vec<LogRecord>,
    spans: Vec<Span>,
    logs_since: Option<Instant>,
    spans_since: Option<Instant>,
    next_retry: Instant,
    backoff: Duration,
    /// The backend failed last time (to log the state change once, not every batch).
    down: bool,
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "kwire".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    }
}

impl SenderThread {
    fn run(&mut self) {
        loop {
            let now = Instant::now();
            let mut wait = Duration::from_secs(1);
            for since in [self.logs_since, self.spans_since].into_iter().flatten() {
                wait = wait.min((since + LINGER).saturating_duration_since(now));
            }
            if !self.store.is_empty() {
                wait = wait.min(self.next_retry.saturating_duration_since(now));
            }
            match self.rx.recv_timeout(wait) {
                Ok(Msg::Log(r)) => {
                    self.dequeued(LOGS);
                    self.logs_since.get_or_insert_with(Instant::now);
                    self.logs.push(r);
                    if self.logs.len() >= BATCH {
                        self.flush_logs();
                    }
                }
                Ok(Msg::Span(s)) => {
                    self.dequeued(TRACES);
                    self.spans_since.get_or_insert_with(Instant::now);
                    self.spans.push(s);
                    if self.spans.len() >= SPAN_BATCH {
                        self.flush_spans();
                    }
                }
                Ok(Msg::Metrics(m)) => {
                    self.dequeued(METRICS);
                    self.send_metrics(m);
                }
                Ok(Msg::Flush(ack)) => {
                    self.flush_logs();
                    self.flush_spans();
                    self.retry(true);
                    let _ = ack.send(());
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.flush_logs();
                    self.flush_spans();
                    self.retry(true);
                    return;
                }
            }
            let now = Instant::now();
            if self.logs_since.is_some_and(|t| now >= t + LINGER) {
                self.flush_logs();
            }
            if self.spans_since.is_some_and(|t| now >= t + LINGER) {
                self.flush_spans();
            }
            if !self.store.is_empty() && now >= self.next_retry {
                self.retry(false);
            }
        }
    }

    fn dequeued(&self, signal: usize) {
        self.shared.dequeued[signal].fetch_add(1, Ordering::Relaxed);
    }

    fn failed(&mut self, what: &str, e: &SendError) {
        let msg = format!("OTLP {what}: {e}");
        if let Ok(mut l) = self.shared.last_error.lock() {
            *l = Some(msg.clone());
        }
        if !self.down {
            self.down = true;
            (self.log)(LogLevel::Error, msg);
        }
    }

    fn recovered(&mut self) {
        if self.down {
            self.down = false;
            (self.log)(LogLevel::Info, "OTLP backend reachable again".to_string());
        }
        self.backoff = Duration::from_secs(1);
    }

    fn update_spooled(&self) {
        self.shared
            .spooled
            .store(self.store.records(), Ordering::Relaxed);
    }

    fn logs_request(&self, records: Vec<LogRecord>) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(self.resource.clone()),
                scope_logs: vec![ScopeLogs {
                    scope: Some(scope()),
                    log_records: records,
                    schema_url: self.schema_url.into(),
                }],
                schema_url: self.schema_url.into(),
            }],
        }
    }

    fn flush_logs(&mut self) {
        self.logs_since = None;
        if self.logs.is_empty() {
            return;
        }
        let records = std::mem::take(&mut self.logs);
        let n = records.len() as u32;
        let req = self.logs_request(records);
        if !self.store.is_empty() {
            // Keep the order: this batch goes behind the ones already waiting.
            self.keep(req.encode_to_vec(), n);
            self.retry(false);
            return;
        }
        match self.transport.send_logs(&req) {
            Ok(sent) => {
                self.recovered();
                self.delivered_logs(u64::from(n), sent.rejected, sent.message);
            }
            Err(e) if e.retryable => {
                self.failed("alerts", &e);
                self.keep(req.encode_to_vec(), n);
                self.schedule_retry(&e);
            }
            Err(e) => {
                self.failed("alerts rejected", &e);
                self.shared.drop_n(LOGS, "rejected", u64::from(n));
            }
        }
    }

    fn delivered_logs(&mut self, n: u64, rejected: i64, message: Option<String>) {
        let rejected = u64::try_from(rejected).unwrap_or(0).min(n);
        self.shared
            .alerts_delivered
            .fetch_add(n - rejected, Ordering::Relaxed);
        if rejected > 0 {
            self.shared.drop_n(LOGS, "rejected", rejected);
            (self.log)(
                LogLevel::Error,
                format!(
                    "OTLP backend rejected {rejected} alerts: {}",
                    message.unwrap_or_default()
                ),
            );
        }
    }

    fn keep(&mut self, payload: Vec<u8>, n: u32) {
        let (evicted, refused) = self.store.push(payload, n);
        if evicted > 0 {
            self.shared.drop_n(LOGS, "spool_full", evicted);
            (self.log)(
                LogLevel::Error,
                format!("OTLP spool full: {evicted} oldest alerts dropped to keep the newest"),
            );
        }
        if refused > 0 {
            self.shared.drop_n(LOGS, "spool_full", refused);
            (self.log)(
                LogLevel::Error,
                format!("OTLP spool: could not keep a batch of {refused} alerts (larger than the spool bound, or the write failed); dropped"),
            );
        }
        self.update_spooled();
    }

    fn schedule_retry(&mut self, e: &SendError) {
        let wait = e.retry_after.unwrap_or(self.backoff).min(MAX_BACKOFF);
        self.next_retry = Instant::now() + wait;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    /// Re-sends waiting alert batches, oldest first, until one fails. `last_chance`: at the end, try
    /// once more even before the backoff is over.
    fn retry(&mut self, last_chance: bool) {
        if !last_chance && Instant::now() < self.next_retry {
            return;
        }
        while let Some((id, payload, n)) = self.store.oldest() {
            let req = match ExportLogsServiceRequest::decode(payload.as_slice()) {
                Ok(r) => r,
                Err(e) => {
                    (self.log)(
                        LogLevel::Error,
                        format!("OTLP spool: batch {id} does not decode ({e}); dropped"),
                    );
                    self.shared.drop_n(LOGS, "spool_damaged", u64::from(n));
                    self.store.remove(id);
                    continue;
                }
            };
            match self.transport.send_logs(&req) {
                Ok(sent) => {
                    self.recovered();
                    self.store.remove(id);
                    self.delivered_logs(u64::from(n), sent.rejected, sent.message);
                }
                Err(e) if e.retryable => {
                    self.failed("alerts", &e);
                    self.schedule_retry(&e);
                    break;
                }
                Err(e) => {
                    self.failed("alerts rejected", &e);
                    self.shared.drop_n(LOGS, "rejected", u64::from(n));
                    self.store.remove(id);
                }
            }
        }
        self.update_spooled();
    }

    fn flush_spans(&mut self) {
        self.spans_since = None;
        if self.spans.is_empty() {
            return;
        }
        let spans = std::mem::take(&mut self.spans);
        let n = spans.len() as u64;
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(self.resource.clone()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(scope()),
                    spans,
                    schema_url: self.schema_url.into(),
                }],
                schema_url: self.schema_url.into(),
            }],
        };
        match self.transport.send_traces(&req) {
            Ok(sent) => {
                let rejected = u64::try_from(sent.rejected).unwrap_or(0).min(n);
                self.shared
                    .spans_delivered
                    .fetch_add(n - rejected, Ordering::Relaxed);
                self.shared.drop_n(TRACES, "rejected", rejected);
            }
            Err(e) => {
                self.failed("spans", &e);
                self.shared.drop_n(TRACES, "send_failed", n);
            }
        }
    }

    fn send_metrics(&mut self, metrics: Vec<OtlpMetric>) {
        if metrics.is_empty() {
            return;
        }
        let req = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(self.resource.clone()),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(scope()),
                    metrics,
                    schema_url: self.schema_url.into(),
                }],
                schema_url: self.schema_url.into(),
            }],
        };
        match self.transport.send_metrics(&req) {
            Ok(_) => {
                self.shared.metric_exports.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                // Cumulative: the next export carries the totals again.
                self.failed("metrics", &e);
                self.shared.drop_n(METRICS, "send_failed", 1);
            }
        }
    }
}

/// Resource attributes for the agent: service.name (OTEL_SERVICE_NAME, default `kwire`),
/// service.version, host.name, then the config file's `[otlp.resource]`, then OTEL_RESOURCE_ATTRIBUTES
/// (`k=v,k2=v2`, percent-decoded), then K8S_NODE_NAME / K8S_POD_NAME / K8S_NAMESPACE / K8S_POD_UID when
/// set, and service.instance.id unless given (the pod UID, else a random UUID per process).
pub fn resource_attributes(
    file: &BTreeMap<String, String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<(String, String)> {
    let mut m: BTreeMap<String, String> = BTreeMap::new();
    m.insert("service.name".into(), "kwire".into());
    m.insert("service.version".into(), env!("CARGO_PKG_VERSION").into());
    let host = env("HOSTNAME")
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_default();
    if !host.is_empty() {
        m.insert("host.name".into(), host);
    }
    for (k, v) in file {
        m.insert(k.clone(), v.clone());
    }
    if let Some(list) = env("OTEL_RESOURCE_ATTRIBUTES") {
        for item in list.split(',') {
            if let Some((k, v)) = item.split_once('=') {
                // A value with a bad escape is kept as written.
                let v = v.trim();
                let (k, v) = (
                    k.trim(),
                    percent_decode(v).unwrap_or_else(|_| v.to_string()),
                );
                if !k.is_empty() {
                    m.insert(k.to_string(), v);
                }
            }
        }
    }
    for (var, key) in [
        ("K8S_NODE_NAME", "k8s.node.name"),
        ("K8S_POD_NAME", "k8s.pod.name"),
        ("K8S_NAMESPACE", "k8s.namespace.name"),
        ("K8S_POD_UID", "k8s.pod.uid"),
    ] {
        if let Some(v) = env(var).filter(|v| !v.is_empty()) {
            m.insert(key.into(), v);
        }
    }
    // service.instance.id (resource semconv, "service.instance.id": unique per instance of the
    // service): the pod's UID in Kubernetes (stable across restarts of the container, unique across
    // the DaemonSet), else a random UUID v4 per process from the kernel; an explicit value (file or
    // OTEL_RESOURCE_ATTRIBUTES) is kept.
    if !m.contains_key("service.instance.id") {
        let id = env("K8S_POD_UID")
            .filter(|v| !v.is_empty())
            .or_else(|| {
                std::fs::read_to_string("/proc/sys/kernel/random/uuid")
                    .ok()
                    .map(|u| u.trim().to_string())
            })
            .filter(|v| !v.is_empty());
        if let Some(id) = id {
            m.insert("service.instance.id".into(), id);
        }
    }
    if let Some(s) = env("OTEL_SERVICE_NAME").filter(|s| !s.is_empty()) {
        m.insert("service.name".into(), s);
    }
    m.into_iter().collect()
}
