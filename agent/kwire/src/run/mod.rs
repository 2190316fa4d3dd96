//! `kwire run`: the long-running agent, in the driver shape of [`crate::drive`]: a live source (eBPF, or
//! libpcap) feeds the same engine as `kwire replay`, and its outputs the same sinks; they are printed as
//! they come (`--json`: the replay's JSON lines; otherwise one
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
//!   the names the collector's Prometheus exporter gives them (`kwire_export::prometheus`). A scrape asks
//!   the capture loop for a rendering and waits for it (made between two polls; after 1 s the last one is
//!   served): the health thread never touches the metric state, and with nobody scraping nothing is rendered.
//!
//! Rooms: [`agent`] (start, the polling loop, stop; the `--write-pcap` recorder and the signals),
//! [`source`] (which live source, the fleet rule's node networks), [`health`] (`/healthz`, `/readyz`,
//! `/metrics`), [`log`] (stderr logs, plain or JSON).

mod agent;
mod health;
mod log;
mod source;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use kwire_capture::pcap_live::{DEFAULT_BUFFER_MB, DEFAULT_SNAPLEN};

use agent::Agent;
use log::Log;

/// `kwire run`: start, watch until told to stop, stop. A start that fails is exit status 2.
pub fn run(args: &RunArgs) -> ExitCode {
    let log = Log::new(args.log_format);
    let mut agent = match Agent::start(args, log) {
        Ok(a) => a,
        Err(e) => {
            log.error(&e);
            return ExitCode::from(2);
        }
    };
    let stop = agent.watch();
    agent.stop(stop)
}

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
    #[arg(long, short = 'i', value_delimiter = ',', env = "KWIRE_INTERFACE")]
    pub interface: Vec<String>,
    /// eBPF: the cgroup v2 directory to attach to (default: the cgroup v2 root, every pod and container
    /// of the node); e.g. one pod's or one service's cgroup to watch only its sockets (and, with the TLS
    /// uprobes, only its processes' plaintext).
    #[arg(long, env = "KWIRE_EBPF_CGROUP")]
    pub ebpf_cgroup: Option<PathBuf>,
    /// eBPF: read TLS plaintext with uprobes on OpenSSL (`SSL_write`/`SSL_read`) in every process of
    /// the node (or of `--ebpf-cgroup`) that maps it (shared libssl, librdkafka with OpenSSL linked in,
    /// node): on or off.
    #[arg(long, default_value = "on", env = "KWIRE_TLS_UPROBES", value_parser = ["on", "off"])]
    pub tls_uprobes: String,
    /// eBPF: more files holding OpenSSL to attach the TLS uprobes to at start (comma-separated),
    /// besides those found mapped by running processes (rescanned every second).
    #[arg(long, value_delimiter = ',', env = "KWIRE_TLS_LIB")]
    pub tls_lib: Vec<PathBuf>,
    #[command(flatten)]
    pub engine: crate::EngineArgs,
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
