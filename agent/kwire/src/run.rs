//! `kwire run`: the long-running agent. A live source (eBPF, or libpcap) feeds the same engine as
//! `kwire replay`; outputs are printed as they come (`--json`: the replay's JSON lines; otherwise one
//! readable line per alert); `--write-pcap` records what the source handed over, so that replaying that
//! file gives the same exchanges and alerts. Stops on SIGINT / SIGTERM or after `--duration`: the engine
//! is finished, the summary printed (with the source's counters under `"capture"`), the pcap flushed.
//!
//! What is easy to get wrong:
//! * Responsiveness: the loop never waits more than 100 ms in the source (signals, `--duration`, the
//!   once-a-second pcap flush and drop check all depend on it). Signal handlers only set flags
//!   (signal-hook); a second SIGINT/SIGTERM during shutdown exits at once (status 130).
//! * stdout is flushed after every batch of packets and after every alert, so `kwire run --json | jq`
//!   shows alerts live; logs and errors go to stderr only (plain, or `{"level":..,"msg":..}` lines).
//! * Memory: nothing here grows with traffic (counters only); the engine's tables are bounded by config.
//! * Exit status: 0 after a clean stop (signal or duration), 2 when the agent cannot start (config,
//!   source, health address, pcap directory), 1 when the source fails while running or stdout breaks.
//! * Health: `/healthz` is 200 while the capture loop runs (503 once it stops), `/readyz` 200 once the
//!   source is open and a first poll succeeded; served by one std::net thread, one short request at a time.
//! * `/metrics` (same port): the Prometheus text format of the same metrics the OTLP export sends, under
//!   the names the collector's Prometheus exporter gives them (`kwire_export::prometheus`). The text is
//!   rendered by the capture loop once a second and only handed to the health thread, so a scrape never
//!   touches the metric state (or slows the capture) and sees values at most a second old.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, ValueEnum};
use serde_json::{json, Map, Value};

use kwire_capture::ebpf::{self, EbpfOptions};
use kwire_capture::pcap_live::{PcapLive, PcapOptions, DEFAULT_BUFFER_MB, DEFAULT_SNAPLEN};
use kwire_capture::{LiveSource, PcapWriter, SourceStats, WriterOptions};
use kwire_engine::{Engine, NoticeRecord, Output, Severity};
use kwire_flow::Timestamp;

use crate::{config, InputArgs, Progress};

/// How long a stopping agent waits for the OTLP backend to take what is queued.
const EXPORT_FINISH_TIMEOUT: Duration = Duration::from_secs(10);

fn wall_clock() -> Timestamp {
    Timestamp(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0),
    )
}

/// Longest wait in the source before the loop looks at signals and timers again.
const POLL_MS: u64 = 100;
/// Packets handed over per poll at most.
const POLL_BATCH: usize = 1024;

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum SourceKind {
    /// eBPF when it loads here, libpcap otherwise (says which and why).
    Auto,
    Pcap,
    Ebpf,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum LogFormat {
    Plain,
    Json,
}

#[derive(Args, Clone)]
pub struct RunArgs {
    /// Packet source: auto (eBPF if it loads, else libpcap), pcap, ebpf.
    #[arg(long, default_value = "auto", env = "KWIRE_SOURCE")]
    pub source: SourceKind,
    /// Interfaces for libpcap (comma-separated; default `any` = all, Linux cooked headers). Given under
    /// `--source auto`, libpcap captures on them (eBPF sees every interface of the host and cannot pick).
    #[arg(long, value_delimiter = ',', env = "KWIRE_INTERFACE")]
    pub interface: Vec<String>,
    /// eBPF: the cgroup v2 directory to attach to (default: the cgroup v2 root, every pod and container
    /// of the node); e.g. one pod's or one service's cgroup to watch only its sockets.
    #[arg(long, env = "KWIRE_EBPF_CGROUP")]
    pub ebpf_cgroup: Option<PathBuf>,
    /// Broker ports (comma-separated): the kernel filter and the decoder. Default: all TCP, Kafka found by probing.
    #[arg(long, value_delimiter = ',', env = "KWIRE_PORTS")]
    pub ports: Vec<u16>,
    /// Config file (TOML): ports, limits, detectors. See README "Configuration".
    #[arg(long, env = "KWIRE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Largest Kafka frame buffered whole to be decoded, in bytes.
    #[arg(long, env = "KWIRE_MAX_FRAME_BYTES")]
    pub max_frame_bytes: Option<usize>,
    /// Maximum TCP connections tracked at once (default 65536).
    #[arg(long, env = "KWIRE_MAX_FLOWS")]
    pub max_flows: Option<usize>,
    /// Bytes all connections may buffer together, in MiB (default 64): see `kwire replay --help`.
    #[arg(long, env = "KWIRE_MEMORY_BUDGET_MB")]
    pub memory_budget_mb: Option<u64>,
    /// JSON lines (exchange, notice, alert; summary last) instead of one readable line per alert.
    #[arg(long)]
    pub json: bool,
    /// Leave out notice lines from --json output.
    #[arg(long)]
    pub no_notices: bool,
    /// Leave out exchange lines from --json output.
    #[arg(long)]
    pub no_exchanges: bool,
    /// Write the output (JSON lines or alert lines, then the summary) to this file instead of stdout;
    /// flushed like stdout (after every batch and every alert).
    #[arg(long, short = 'o', value_name = "FILE", env = "KWIRE_OUTPUT")]
    pub output: Option<PathBuf>,
    /// Record the packets the agent saw as pcap (ns) for a later `kwire replay`; rotated and bounded.
    #[arg(long, env = "KWIRE_WRITE_PCAP")]
    pub write_pcap: Option<PathBuf>,
    /// Rotate the pcap before it exceeds this many MB (0 = no size bound).
    #[arg(long, default_value_t = 100)]
    pub write_pcap_max_mb: u64,
    /// Rotate the pcap when its packets span this many seconds.
    #[arg(long)]
    pub write_pcap_seconds: Option<u64>,
    /// pcap files kept (FILE, FILE.1, ...; the oldest is deleted).
    #[arg(long, default_value_t = 5)]
    pub write_pcap_files: u32,
    /// Exit status 3 when an alert of this severity or worse was raised while running (checked when it
    /// stops, after the failure statuses).
    #[arg(long, value_name = "SEVERITY")]
    pub fail_on: Option<crate::FailOn>,
    /// Fleet rule: the cluster's networks (comma-separated CIDRs). Given, this agent analyses only the
    /// connections whose client is on this node, and those of clients outside these networks whose
    /// broker is on this node (README "A fleet of agents"). Default: every connection.
    #[arg(long, value_delimiter = ',', env = "KWIRE_CLUSTER_CIDRS")]
    pub cluster_cidrs: Vec<String>,
    /// Fleet rule: this node's networks besides its interfaces' addresses (e.g. the node's pod CIDR
    /// when libpcap runs in the host network namespace).
    #[arg(long, value_delimiter = ',', env = "KWIRE_NODE_CIDRS")]
    pub node_cidrs: Vec<String>,
    /// Serve GET /healthz, /readyz and /metrics on this address (e.g. 127.0.0.1:9464).
    #[arg(long, env = "KWIRE_HEALTH")]
    pub health: Option<SocketAddr>,
    /// Stop after this many seconds (default: until SIGINT/SIGTERM).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Logs on stderr: plain, or json ({"level":..,"msg":..} per line).
    #[arg(long, default_value = "plain", env = "KWIRE_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// libpcap kernel buffer per interface, in MiB.
    #[arg(long, default_value_t = DEFAULT_BUFFER_MB)]
    pub pcap_buffer_mb: u32,
    /// Bytes captured per packet at most.
    #[arg(long, default_value_t = DEFAULT_SNAPLEN)]
    pub snaplen: u32,
    /// Seconds between "capture stats" log lines (0 = never).
    #[arg(long, default_value_t = 60)]
    pub stats_interval: u64,
    #[command(flatten)]
    pub otlp: crate::otlp::OtlpArgs,
    #[command(flatten)]
    pub report: crate::report::LiveReportArgs,
}

/// Structured logs on stderr.
struct Log {
    json: bool,
}

impl Log {
    fn line(&self, level: &str, msg: &str, fields: Value) {
        let mut err = io::stderr().lock();
        if self.json {
            let mut m = Map::new();
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as i64)
                .unwrap_or(0);
            m.insert("ts".into(), Timestamp(now).to_rfc3339().into());
            m.insert("level".into(), level.into());
            m.insert("msg".into(), msg.into());
            if let Value::Object(f) = fields {
                m.extend(f);
            }
            let _ = writeln!(err, "{}", Value::Object(m));
        } else {
            if level == "info" {
                let _ = writeln!(err, "kwire: {msg}");
            } else {
                let _ = writeln!(err, "kwire: {level}: {msg}");
            }
        }
    }
    fn info(&self, msg: &str, fields: Value) {
        self.line("info", msg, fields)
    }
    fn warn(&self, msg: &str, fields: Value) {
        self.line("warning", msg, fields)
    }
    fn error(&self, msg: &str) {
        self.line("error", msg, json!({}))
    }
}

/// What the health endpoint reports.
#[derive(Default)]
struct Health {
    alive: AtomicBool,
    ready: AtomicBool,
    source: Mutex<String>,
    /// The last rendering of `/metrics` (Prometheus text format 0.0.4).
    metrics: Mutex<String>,
}

/// Outputs to stdout: JSON lines, or one readable line per alert. Counts only (bounded memory).
struct LiveSink<W: Write> {
    w: W,
    json: bool,
    exchanges: bool,
    err: Option<io::Error>,
    alerts: u64,
    critical: u64,
}

impl<W: Write> LiveSink<W> {
    fn emit(&mut self, o: &Output) {
        // Timeline rows and group events exist only for --report-dir: never printed here.
        if self.err.is_some() || matches!(o, Output::Timeline(_) | Output::Group(_)) {
            return;
        }
        let alert = match o {
            Output::Alert(a) => {
                self.alerts += 1;
                if a.severity == Severity::Critical {
                    self.critical += 1;
                }
                Some(a)
            }
            _ => None,
        };
        let r = if self.json {
            if matches!(o, Output::Exchange(_)) && !self.exchanges {
                return;
            }
            serde_json::to_writer(&mut self.w, o)
                .map_err(io::Error::from)
                .and_then(|_| self.w.write_all(b"\n"))
        } else if let Some(a) = alert {
            // The line `kwire replay` prints per alert in its readable summary.
            writeln!(
                self.w,
                "{:<8} {} {} [{}] {}",
                a.severity.as_str().to_uppercase(),
                a.ts.to_rfc3339(),
                a.kind.as_str(),
                a.client_id.as_deref().unwrap_or("-"),
                a.explanation
            )
        } else {
            Ok(())
        };
        let r = r.and_then(|_| {
            if alert.is_some() {
                self.w.flush()
            } else {
                Ok(())
            }
        });
        if let Err(e) = r {
            self.err = Some(e);
        }
    }

    fn flush(&mut self) {
        if self.err.is_none() {
            if let Err(e) = self.w.flush() {
                self.err = Some(e);
            }
        }
    }
}

fn input_args(a: &RunArgs) -> InputArgs {
    InputArgs {
        files: Vec::new(),
        ports: a.ports.clone(),
        config: a.config.clone(),
        max_frame_bytes: a.max_frame_bytes,
        max_flows: a.max_flows,
        memory_budget_mb: a.memory_budget_mb,
        progress: Progress::Never,
    }
}

/// Opens the source asked for; `auto` tries eBPF first and says why it fell back.
fn open_source(args: &RunArgs, ports: &[u16], log: &Log) -> Result<Box<dyn LiveSource>, String> {
    // Not given: every interface. Given: the user chose where to capture, which only libpcap can honour.
    let chosen = !args.interface.is_empty();
    let interfaces = if chosen {
        args.interface.clone()
    } else {
        vec!["any".to_string()]
    };
    let pcap = |reason: String| -> Result<Box<dyn LiveSource>, String> {
        let opts = PcapOptions {
            interfaces: interfaces.clone(),
            ports: ports.to_vec(),
            snaplen: args.snaplen,
            buffer_mb: args.pcap_buffer_mb,
            reason,
        };
        PcapLive::open(&opts)
            .map(|s| Box::new(s) as Box<dyn LiveSource>)
            .map_err(|e| e.to_string())
    };
    let ebpf_opts = EbpfOptions {
        ports: ports.to_vec(),
        cgroup: args.ebpf_cgroup.clone(),
        snap_len: args.snaplen,
    };
    let ifs = interfaces.join(",");
    match args.source {
        SourceKind::Pcap => pcap("libpcap chosen with --source pcap".into()),
        SourceKind::Ebpf => {
            if chosen {
                log.warn(
                    &format!("--interface {ifs} is ignored by --source ebpf: it sees the sockets of every interface"),
                    json!({"interface": ifs}),
                );
            }
            ebpf::open(&ebpf_opts).map_err(|r| format!("eBPF source unavailable: {r}"))
        }
        SourceKind::Auto if chosen => {
            log.info(
                &format!("--interface {ifs} given: using libpcap on {ifs} (--source auto)"),
                json!({"source": "pcap", "interface": ifs}),
            );
            pcap(format!("--interface {ifs} given with --source auto"))
        }
        SourceKind::Auto => match ebpf::open(&ebpf_opts) {
            Ok(s) => {
                log.info("using eBPF (--source auto)", json!({}));
                Ok(s)
            }
            Err(reason) => {
                log.info(
                    &format!("eBPF unavailable: {reason}; using libpcap on {ifs}"),
                    json!({"source": "pcap", "ebpf_error": reason}),
                );
                pcap(format!("eBPF unavailable: {reason}"))
            }
        },
    }
}

fn serve_health(listener: TcpListener, h: Arc<Health>) {
    for conn in listener.incoming() {
        let Ok(s) = conn else { continue };
        let _ = answer(s, &h);
    }
}

fn answer(mut s: TcpStream, h: &Health) -> io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(1)))?;
    s.set_write_timeout(Some(Duration::from_secs(1)))?;
    let mut line = String::new();
    BufReader::new((&s).take(4096)).read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let source = h.source.lock().map(|g| g.clone()).unwrap_or_default();
    let (code, body) = match (method, path) {
        ("GET" | "HEAD", "/healthz") => {
            if h.alive.load(Ordering::SeqCst) {
                (200, "ok\n".to_string())
            } else {
                (503, "stopped\n".to_string())
            }
        }
        ("GET" | "HEAD", "/readyz") => {
            if h.ready.load(Ordering::SeqCst) && h.alive.load(Ordering::SeqCst) {
                (200, format!("ready: {source}\n"))
            } else {
                (503, "not ready\n".to_string())
            }
        }
        ("GET" | "HEAD", "/metrics") => {
            (200, h.metrics.lock().map(|g| g.clone()).unwrap_or_default())
        }
        ("GET" | "HEAD", _) => (
            404,
            "not found (try /healthz, /readyz, /metrics)\n".to_string(),
        ),
        _ => (405, "method not allowed\n".to_string()),
    };
    let reason = match code {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let ctype = if path == "/metrics" && code == 200 {
        kwire_export::prometheus::CONTENT_TYPE
    } else {
        "text/plain"
    };
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    if method != "HEAD" {
        s.write_all(body.as_bytes())?;
    }
    s.flush()
}

/// The fleet rule's configuration: flags/env win over `[fleet]`; this node's addresses from its
/// interfaces plus `--node-cidrs`. None when no cluster CIDRs are given (rule off).
fn fleet(args: &RunArgs) -> Result<Option<kwire_engine::fleet::FleetConfig>, String> {
    use kwire_engine::fleet::parse_cidrs;
    let file = config::fleet_config(args.config.as_deref())?;
    let pick = |flag: &[String], file: &[String]| {
        if flag.is_empty() {
            file.join(",")
        } else {
            flag.join(",")
        }
    };
    let cluster = parse_cidrs(&pick(&args.cluster_cidrs, &file.cluster_cidrs))
        .map_err(|e| format!("--cluster-cidrs: {e}"))?;
    if cluster.is_empty() {
        return Ok(None);
    }
    let mut local = parse_cidrs(&pick(&args.node_cidrs, &file.node_cidrs))
        .map_err(|e| format!("--node-cidrs: {e}"))?;
    let addrs = kwire_capture::pcap_live::local_addresses()?;
    local.extend(addrs.into_iter().map(ipnet_of));
    Ok(Some(kwire_engine::fleet::FleetConfig {
        cluster_cidrs: cluster,
        local,
    }))
}

fn ipnet_of(ip: std::net::IpAddr) -> kwire_engine::fleet::IpNet {
    kwire_engine::fleet::IpNet::from(ip)
}

/// What `/metrics` counts of one output (the exporter counts the same for OTLP).
fn feed(m: &mut kwire_export::metrics::MetricState, o: &Output) {
    match o {
        Output::Exchange(x) => m.on_exchange(x),
        Output::Alert(a) => m.on_alert(a),
        _ => {}
    }
}

fn stats_json(name: &str, describe: &str, st: &SourceStats) -> Value {
    let mut v = serde_json::to_value(st).unwrap_or_else(|_| json!({}));
    if let Some(m) = v.as_object_mut() {
        m.insert("source".into(), name.into());
        m.insert("description".into(), describe.into());
    }
    v
}

/// Logs what `--report-dir` did.
fn report_written(log: &Log, r: Option<Result<PathBuf, String>>) {
    match r {
        Some(Ok(p)) => log.info(
            &format!("wrote incident report {}", p.display()),
            json!({"report": p.display().to_string()}),
        ),
        Some(Err(e)) => log.warn(&e, json!({})),
        None => {}
    }
}

pub fn run(args: &RunArgs) -> ExitCode {
    let log = Log {
        json: args.log_format == LogFormat::Json,
    };
    let mut cfg = match config::engine_config(&input_args(args)) {
        Ok(c) => c,
        Err(e) => {
            log.error(&e);
            return ExitCode::from(2);
        }
    };
    cfg.notices = !args.no_notices;
    match fleet(args) {
        Ok(Some(f)) => {
            log.info(
                &format!(
                    "fleet rule on: analysing connections whose client is on this node ({} networks), and those of clients outside {} whose broker is",
                    f.local.len(),
                    f.cluster_cidrs.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(",")
                ),
                json!({}),
            );
            cfg.fleet = f;
        }
        Ok(None) => {}
        Err(e) => {
            log.error(&e);
            return ExitCode::from(2);
        }
    }
    let ports = cfg.ports.clone();
    let export_log: kwire_export::LogFn = {
        let json = log.json;
        Arc::new(move |level, msg| {
            let l = Log { json };
            match level {
                kwire_export::LogLevel::Info => l.info(&msg, json!({})),
                kwire_export::LogLevel::Warn => l.warn(&msg, json!({})),
                kwire_export::LogLevel::Error => l.error(&msg),
            }
        })
    };
    let mut exporter = match config::otlp_config(args.config.as_deref())
        .and_then(|f| crate::otlp::start(&args.otlp, &f, false, export_log))
    {
        Ok(x) => x,
        Err(e) => {
            log.error(&e);
            return ExitCode::from(2);
        }
    };
    // `/metrics` on the health port: its own metric state (the exporter's lives on its side and exists
    // only with an OTLP endpoint), current attribute names, the resource attributes as labels.
    let mut prom = args.health.map(|_| {
        let resource: Vec<(String, String)> =
            kwire_export::exporter::resource_attributes(&Default::default(), &|k| {
                std::env::var(k).ok()
            })
            .into_iter()
            .filter(|(k, _)| {
                kwire_export::catalog::RESOURCE_ATTRIBUTES.contains(&k.as_str())
                    && k != "service.name"
            })
            .collect();
        (kwire_export::metrics::MetricState::default(), resource)
    });
    cfg.exchange_facts = exporter.is_some() || prom.is_some();
    if args.report.report_dir.is_some() {
        crate::report::LiveReporter::configure(&mut cfg);
    }

    // Signals first, so that a SIGTERM while the source opens still stops cleanly. A second one while
    // shutting down exits at once.
    let stop = Arc::new(AtomicBool::new(false));
    let got_int = Arc::new(AtomicBool::new(false));
    let got_term = Arc::new(AtomicBool::new(false));
    for (sig, flag) in [
        (signal_hook::consts::SIGINT, &got_int),
        (signal_hook::consts::SIGTERM, &got_term),
    ] {
        let r = signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&stop))
            .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&stop)))
            .and_then(|_| signal_hook::flag::register(sig, Arc::clone(flag)));
        if let Err(e) = r {
            log.error(&format!("cannot install signal handlers: {e}"));
            return ExitCode::from(2);
        }
    }

    let health = Arc::new(Health::default());
    if let Some(addr) = args.health {
        match TcpListener::bind(addr) {
            Ok(l) => {
                let h = Arc::clone(&health);
                let spawned = std::thread::Builder::new()
                    .name("kwire-health".into())
                    .spawn(move || serve_health(l, h));
                if let Err(e) = spawned {
                    log.error(&format!("cannot start the health thread: {e}"));
                    return ExitCode::from(2);
                }
                log.info(
                    &format!("health on http://{addr}/healthz and /readyz, metrics on /metrics"),
                    json!({}),
                );
            }
            Err(e) => {
                log.error(&format!("--health {addr}: cannot listen: {e}"));
                return ExitCode::from(2);
            }
        }
    }

    let mut writer = match &args.write_pcap {
        None => None,
        Some(p) => match PcapWriter::new(WriterOptions {
            path: p.clone(),
            max_bytes: (args.write_pcap_max_mb > 0).then(|| args.write_pcap_max_mb * 1_000_000),
            max_seconds: args.write_pcap_seconds,
            max_files: args.write_pcap_files,
        }) {
            Ok(w) => Some(w),
            Err(e) => {
                log.error(&format!("--write-pcap {}: {e}", p.display()));
                return ExitCode::from(2);
            }
        },
    };

    let mut source = match open_source(args, &ports, &log) {
        Ok(s) => s,
        Err(e) => {
            log.error(&e);
            return ExitCode::from(2);
        }
    };
    let describe = source.describe();
    log.info(
        &format!("capturing with {}: {describe}", source.name()),
        json!({"source": source.name()}),
    );
    if let Ok(mut g) = health.source.lock() {
        *g = format!("{}: {describe}", source.name());
    }
    health.alive.store(true, Ordering::SeqCst);

    let mut reporter = match crate::report::LiveReporter::new(
        &args.report,
        format!("{}: {describe}", source.name()),
    ) {
        Ok(r) => r,
        Err(e) => {
            log.error(&e);
            return ExitCode::from(2);
        }
    };
    let mut engine = Engine::new(cfg);
    let out = match crate::output(args.output.as_deref()) {
        Ok(o) => o,
        Err(e) => {
            log.error(&e);
            return ExitCode::from(2);
        }
    };
    let mut sink = LiveSink {
        w: io::BufWriter::with_capacity(1 << 16, out),
        json: args.json,
        exchanges: !args.no_exchanges,
        err: None,
        alerts: 0,
        critical: 0,
    };
    let started = Instant::now();
    let deadline = args
        .duration
        .map(|d| started + Duration::from_secs_f64(d.max(0.0)));
    let mut last_flush = Instant::now();
    let mut last_stats_log = Instant::now();
    let mut known_drops = 0u64;
    let mut writer_warned = false;
    let mut failure: Option<String> = None;
    let stopped_by;
    loop {
        if stop.load(Ordering::SeqCst) {
            stopped_by = if got_term.load(Ordering::SeqCst) {
                "SIGTERM"
            } else {
                "SIGINT"
            };
            break;
        }
        let now = Instant::now();
        let mut wait = POLL_MS;
        if let Some(d) = deadline {
            if now >= d {
                stopped_by = "duration";
                break;
            }
            wait = wait.min((d - now).as_millis() as u64 + 1);
        }
        let mut write_err = None;
        let polled = source.poll(POLL_BATCH, wait as u32, &mut |p| {
            // Evidence links name packets by their number in the --write-pcap file; without one a live
            // packet has no number.
            let frame = match writer.as_mut() {
                Some(w) => {
                    if let Err(e) = w.write(p.ts, p.link, p.data, p.orig_len) {
                        write_err = Some(e);
                    }
                    Some(w.last_frame()).filter(|&n| n > 0)
                }
                None => None,
            };
            engine.number_frames(frame);
            engine.on_packet_owned(p.ts, p.link, p.data, p.owner, &mut |o| {
                if let Some(x) = exporter.as_mut() {
                    x.on_output(&o);
                }
                if let Some((m, _)) = prom.as_mut() {
                    feed(m, &o);
                }
                if let Some(r) = reporter.as_mut() {
                    r.add(&o);
                }
                sink.emit(&o)
            });
        });
        if let Some(e) = write_err {
            if !writer_warned {
                writer_warned = true;
                log.warn(
                    &format!("--write-pcap stopped: {e} (the capture goes on)"),
                    json!({}),
                );
            }
        }
        match polled {
            Ok(_) => health.ready.store(true, Ordering::SeqCst),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                failure = Some(format!("{} source failed: {e}", source.name()));
                stopped_by = "error";
                break;
            }
        }
        sink.flush();
        if let Some(r) = reporter.as_mut() {
            report_written(&log, r.poll(&engine, false));
        }
        if sink.err.is_some() {
            stopped_by = "stdout closed";
            break;
        }
        if let Some(x) = exporter.as_mut() {
            // Live metrics follow the wall clock (an idle network still reports its health).
            let now = wall_clock();
            if x.tick(now) {
                let st = source.stats();
                x.export_metrics(now, &crate::otlp::health(&engine, Some(&st)));
            }
        }
        if last_flush.elapsed() >= Duration::from_secs(1) {
            last_flush = Instant::now();
            if let Some((m, resource)) = prom.as_mut() {
                let st = source.stats();
                m.health = crate::otlp::health(&engine, Some(&st));
                let now = u64::try_from(wall_clock().0).unwrap_or(0);
                let text = kwire_export::prometheus::render(&m.snapshot(now), resource);
                if let Ok(mut g) = health.metrics.lock() {
                    *g = text;
                }
            }
            if let Some(w) = writer.as_mut() {
                if let Err(e) = w.flush() {
                    if !writer_warned {
                        writer_warned = true;
                        log.warn(
                            &format!("--write-pcap stopped: {e} (the capture goes on)"),
                            json!({}),
                        );
                    }
                }
            }
            let st = source.stats();
            let drops = st.kernel_drops + st.ring_drops + st.interface_drops;
            if drops > known_drops {
                let msg = format!(
                    "{} packets dropped before kwire could read them ({} in all: kernel {}, ring {}, interface {}); expect gaps",
                    drops - known_drops,
                    drops,
                    st.kernel_drops,
                    st.ring_drops,
                    st.interface_drops
                );
                log.warn(&msg, json!({"kernel_drops": st.kernel_drops, "ring_drops": st.ring_drops, "interface_drops": st.interface_drops}));
                let n = NoticeRecord::new(engine.last_ts(), "capture_drops", msg);
                if engine.config().notices {
                    sink.emit(&Output::Notice(n));
                }
                known_drops = drops;
            }
            if args.stats_interval > 0
                && last_stats_log.elapsed() >= Duration::from_secs(args.stats_interval)
            {
                last_stats_log = Instant::now();
                let s = engine.summary();
                log.info(
                    "capture stats",
                    json!({"packets": st.packets, "bytes": st.bytes, "kernel_drops": st.kernel_drops,
                           "flows": engine.flows_tracked(), "exchanges": s.kafka.requests, "alerts": sink.alerts}),
                );
            }
        }
    }
    health.alive.store(false, Ordering::SeqCst);
    log.info(&format!("stopping ({stopped_by})"), json!({}));

    engine.finish(&mut |o| {
        if let Some(x) = exporter.as_mut() {
            x.on_output(&o);
        }
        if let Some(r) = reporter.as_mut() {
            r.add(&o);
        }
        sink.emit(&o)
    });
    if let Some(r) = reporter.as_mut() {
        report_written(&log, r.poll(&engine, true));
        if r.not_reported > 0 {
            log.warn(
                &format!(
                    "{} alerts came after --report-max-files {} reports and are in no report (kwire report on a --write-pcap capture writes one)",
                    r.not_reported, args.report.report_max_files
                ),
                json!({}),
            );
        }
    }
    let st = source.stats();
    let mut export_failed = false;
    if let Some(x) = exporter.take() {
        let report = x.finish(
            wall_clock(),
            &crate::otlp::health(&engine, Some(&st)),
            EXPORT_FINISH_TIMEOUT,
        );
        let spool = args.otlp.otlp_spool.is_some();
        let (msg, failed) = crate::otlp::describe(&report, spool);
        if failed {
            log.error(&msg);
        } else {
            log.info(&msg, json!({"alerts_delivered": report.alerts_delivered, "alerts_spooled": report.alerts_spooled}));
        }
        export_failed = failed;
    }
    let (wstats, wres) = match writer.take() {
        Some(w) => {
            let files = w.current_files();
            let (s, r) = w.finish();
            (Some((s, files)), r)
        }
        None => (None, Ok(())),
    };
    if let Err(e) = wres {
        log.warn(&format!("--write-pcap: {e}"), json!({}));
    }
    let secs = started.elapsed().as_secs_f64();
    let mut summary = engine.summary().clone();
    summary.fidelity.kernel_drops = st.kernel_drops + st.ring_drops + st.interface_drops;
    let summary = &summary;
    if args.json {
        let mut v = serde_json::to_value(summary).unwrap_or_default();
        if let Some(m) = v.as_object_mut() {
            m.insert("capture".into(), stats_json(source.name(), &describe, &st));
            if let Some((ws, files)) = &wstats {
                let mut w = serde_json::to_value(ws).unwrap_or_default();
                if let Some(wm) = w.as_object_mut() {
                    wm.insert(
                        "files".into(),
                        files
                            .iter()
                            .map(|f| f.display().to_string())
                            .collect::<Vec<_>>()
                            .into(),
                    );
                }
                m.insert("write_pcap".into(), w);
            }
            m.insert(
                "run".into(),
                json!({"seconds": (secs * 1000.0).round() / 1000.0, "stopped_by": stopped_by}),
            );
            // As `kwire replay` says them, so a replay of --write-pcap gives the same summary.
            m.insert(
                "first_ts".into(),
                engine.first_ts().map(|t| t.to_rfc3339()).into(),
            );
            m.insert(
                "last_ts".into(),
                engine
                    .first_ts()
                    .map(|_| engine.last_ts().to_rfc3339())
                    .into(),
            );
            m.insert("kwire_version".into(), env!("CARGO_PKG_VERSION").into());
        }
        if sink.err.is_none() {
            let r = serde_json::to_writer(&mut sink.w, &v)
                .map_err(io::Error::from)
                .and_then(|_| sink.w.write_all(b"\n"));
            if let Err(e) = r {
                sink.err = Some(e);
            }
        }
    } else if sink.err.is_none() {
        let k = &summary.kafka;
        let r = writeln!(
            sink.w,
            "kwire run: {} packets ({} dropped by the kernel), {} Kafka connections, {} requests, {} responses, {} alerts ({} critical); {:.1} s, stopped by {stopped_by}",
            st.packets,
            st.kernel_drops,
            summary.flows.kafka,
            k.requests,
            k.responses,
            sink.alerts,
            sink.critical,
            secs
        );
        let r = r.and_then(|_| crate::human::print_fidelity(&mut sink.w, &summary.fidelity));
        if let Err(e) = r {
            sink.err = Some(e);
        }
    }
    sink.flush();
    if let Some((ws, files)) = &wstats {
        let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        log.info(
            &format!(
                "wrote {} packets to {}",
                ws.packets,
                if names.is_empty() {
                    "no file (nothing captured)".to_string()
                } else {
                    names.join(", ")
                }
            ),
            json!({}),
        );
    }
    if let Some(f) = failure {
        log.error(&f);
        return ExitCode::from(1);
    }
    if export_failed {
        return ExitCode::from(1);
    }
    if let Some(e) = &sink.err {
        if e.kind() != io::ErrorKind::BrokenPipe {
            log.error(&format!("cannot write output: {e}"));
            return ExitCode::from(1);
        }
    }
    if let Some(f) = args.fail_on {
        let worst = summary.alerts.keys().map(|(_, sev)| *sev).max();
        if f.hit(worst) {
            log.error(&format!(
                "--fail-on {}: a {} alert was raised (exit status {})",
                f.as_str(),
                worst.map(|w| w.as_str()).unwrap_or("-"),
                crate::EXIT_ALERTS
            ));
            return ExitCode::from(crate::EXIT_ALERTS);
        }
    }
    ExitCode::SUCCESS
}
