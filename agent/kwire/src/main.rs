//! kwire: passive, wire-level Kafka observability. This binary wires the pieces: a packet source, the
//! engine, and the outputs. It is the only place that touches the terminal and the process exit status.
//!
//! Easy to get wrong: exit status 2 for unusable input (missing, unreadable, not a capture, damaged), yet
//! everything read before damage is still processed and reported; stdout carries only the requested
//! output (human summary or JSON lines), progress and errors go to stderr.

mod config;
mod drive;
mod human;
mod inputs;
mod otlp;
mod replay;
mod report;
mod run;
mod sink;
mod timeline;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "kwire",
    version,
    about = "Passive, wire-level Kafka observability: decodes Kafka traffic from packets and raises data-loss alerts.",
    after_help = "Examples:\n  kwire replay capture.pcapng                 readable summary and alerts of a capture\n  kwire replay capture.pcap --json | jq 'select(.type==\"alert\")'\n  kwire timeline capture.pcap --client my-consumer --topic orders --partition 0\n  kwire replay capture.pcap --ports 9092,9093 --config kwire.toml\n  kwire replay kafka.pcap kafka.pcap.1 kafka.pcap.2 --fail-on critical\n"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decode a pcap/pcapng capture into Kafka exchanges, notices and alerts.
    #[command(
        after_help = "Examples:\n  kwire replay tests/fixtures/harness/produce-acks-librdkafka-mock.pcap\n  kwire replay big.pcapng --json > exchanges.jsonl\n  kwire replay capture.pcap --ports 36333 --json --no-notices\n  kwire replay capture.pcap --otlp --otlp-endpoint http://collector:4317 --otlp-protocol grpc\n  OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 kwire replay capture.pcap --otlp --otlp-spool /var/lib/kwire/spool\n  kwire replay /var/lib/kwire/kafka.pcap*                     a rotated --write-pcap set, merged by time\n  kwire replay 'captures/*.pcapng' --fail-on critical         exit status 3 when a critical alert was raised\n  kwire replay capture.pcap --json --client my-consumer --topic orders --api OffsetCommit\n  kwire replay tls.pcap --tls-keylog keys.log                 Kafka over TLS: keys from the clients' SSLKEYLOGFILE\n\nJSON lines: {\"type\":\"exchange\"|\"notice\"|\"alert\"|\"summary\",...}; the summary is the last line.\n--topic/--group/--client/--api narrow what is printed (exchanges, alerts); the analysis and the\nsummary's counters cover the whole capture.\nExit status: 0 ok, 2 unusable or damaged input (what was read before the damage is still reported),\n1 --otlp alerts that could be neither delivered nor spooled, or were dropped (spool full, rejected),\n3 --fail-on: an alert of that severity or worse was printed (checked after 2 and 1)."
    )]
    Replay(ReplayArgs),
    /// Show what clients were told, served and committed per partition over time, with alerts in place.
    #[command(
        after_help = "Examples:\n  kwire timeline capture.pcap\n  kwire timeline capture.pcap --client kw-coop-1 --topic orders --partition 1\n  kwire timeline capture.pcap --json | jq 'select(.what==\"fetch_hwm\")'\n  kwire timeline kafka.pcap kafka.pcap.1 --client kw-coop-1\n  kwire timeline kafka.pcap --group orders-app --since 2026-11-22T18:51:00Z --until 2026-11-22T18:52:00Z -o rebalance.txt\n\nRows: listoffsets_latest/earliest/time, fetch_request, fetch_hwm, fetch_lso, fetched (end of the\nbatches served), fetch_error, produced, committed, commit_rejected, offset_fetch; group events: join\n(generation, assignor), sync (assigned and revoked partitions), leave, heartbeat (errors only),\nassignment (KIP-848); alerts appear inline."
    )]
    Timeline(TimelineArgs),
    /// Write the incident report of a capture: one self-contained HTML page (overview, one section per
    /// incident with its evidence and chart, context charts).
    #[command(
        after_help = "Examples:\n  kwire report capture.pcap -o report.html\n  kwire report 'kafka.pcap*' --ports 9092 --config kwire.toml -o incident.html\n  kwire report capture.pcap --topic orders --title 'orders, 22 Nov' -o orders.html\n\nThe page loads nothing from anywhere (no script, font or image), reads with JavaScript off and\nprints one incident per page. The same capture gives the same bytes. --topic/--group/--client narrow\nthe alerts and figures shown; the analysis sees the whole capture.\nExit status: 0 ok, 2 unusable or damaged input (the report of what was read is still written)."
    )]
    Report(report::ReportArgs),
    /// Watch live traffic (eBPF or libpcap) and print exchanges and alerts as they happen.
    #[command(
        after_help = "Examples:\n  kwire run --interface lo --ports 9092                      one readable line per alert\n  kwire run --source pcap --interface any --json | jq 'select(.type==\"alert\")'\n  kwire run --ports 9092 --write-pcap /var/lib/kwire/kafka.pcap --write-pcap-max-mb 100 --write-pcap-files 5\n  kwire run --health 127.0.0.1:9464 --log-format json --duration 60\n  kwire run --ports 9092 --duration 3600 --fail-on critical   exit status 3 if a critical alert was raised\n  kwire run --ports 9092 --report-dir /var/lib/kwire/reports  an HTML incident report after alerts (20 at most, 8 MB each)\n  kwire run --ports 9092 --otlp --otlp-endpoint http://collector:4317 --otlp-protocol grpc --otlp-spool /var/lib/kwire/spool\n  kwire run --source ebpf --ports 9093                          Kafka over TLS read in plaintext (OpenSSL uprobes, on by default)\n\nNeeds CAP_NET_RAW for libpcap (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN for eBPF). Stops on SIGINT/SIGTERM or\nafter --duration: prints the summary (JSON: last line, source counters under \"capture\"), exit status 0.\nExit status 2: cannot start (config, source, health address); 1: the source failed while running;\n3: --fail-on and an alert of that severity or worse was raised."
    )]
    Run(run::RunArgs),
}

/// Options shared by every command that reads a capture.
#[derive(Args, Clone)]
pub struct InputArgs {
    /// Capture files (pcap or pcapng; Ethernet, VLAN, Linux cooked SLL/SLL2, raw IP, BSD loopback); `-` reads
    /// standard input. Several files (or a quoted glob such as 'kafka.pcap*') are one capture, merged by
    /// packet timestamp: a rotated `kwire run --write-pcap` set replays as what `kwire run` saw.
    #[arg(required = true, num_args = 1.., value_name = "FILE")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Progress on stderr: auto (when stderr is a terminal and the file is large), always, never.
    #[arg(long, default_value = "auto")]
    pub progress: Progress,
    /// TLS key log (NSS format, as SSLKEYLOGFILE writes it): TLS 1.2/1.3 connections it has secrets for
    /// are decrypted and their Kafka decoded. The secrets appear in no output.
    #[arg(long, env = "KWIRE_TLS_KEYLOG", value_name = "FILE")]
    pub tls_keylog: Option<PathBuf>,
    /// Never map capture files into memory (by default a file of 64 MiB or more whose packets are big,
    /// as in loopback captures, is mapped once its first 16 MiB are read). For a file another process
    /// may truncate while kwire reads it, such as one tcpdump is still rotating: a mapped file cut short
    /// ends the process with SIGBUS.
    #[arg(long, env = "KWIRE_NO_MMAP", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_mmap: bool,
}

impl InputArgs {
    /// The capture files `paths` (expanded from `files`) as the driver reads them: progress and
    /// `--no-mmap` from these flags.
    pub fn files<'a>(&self, paths: &'a [PathBuf]) -> drive::Files<'a> {
        drive::Files {
            paths,
            progress: self.progress,
            read_mode: if self.no_mmap {
                kwire_capture::ReadMode::Read
            } else {
                kwire_capture::ReadMode::Auto
            },
        }
    }
}

/// The engine's options, the same on every command that runs the engine (`replay`, `timeline`,
/// `report`, `run`); each also has a config-file key and an environment variable.
#[derive(Args, Clone, Default)]
pub struct EngineArgs {
    /// Broker ports (comma-separated): what is decoded and, for `kwire run`, what the kernel filter
    /// keeps. Default: every TCP port, Kafka found by probing.
    #[arg(long, value_delimiter = ',', env = "KWIRE_PORTS")]
    pub ports: Vec<u16>,
    /// Config file (TOML): ports, limits, detectors on/off and thresholds. See README "Configuration".
    #[arg(long, env = "KWIRE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Largest Kafka frame buffered whole to be decoded, in bytes; larger frames are decoded by header.
    #[arg(long, env = "KWIRE_MAX_FRAME_BYTES")]
    pub max_frame_bytes: Option<usize>,
    /// Maximum TCP connections tracked at once (default 65536).
    #[arg(long, env = "KWIRE_MAX_FLOWS")]
    pub max_flows: Option<usize>,
    /// Bytes all connections may buffer together (frames being gathered, out-of-order TCP bytes, bytes
    /// of undecided connections), in MiB (default 64). Past it frames are decoded by header only.
    #[arg(long, env = "KWIRE_MEMORY_BUDGET_MB")]
    pub memory_budget_mb: Option<u64>,
}

#[derive(Args, Clone)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// One JSON object per line (exchange, notice, alert, summary) instead of the readable summary.
    #[arg(long)]
    pub json: bool,
    /// Leave out notice lines (orphans, gaps, desyncs) from --json output; they are still counted.
    #[arg(long)]
    pub no_notices: bool,
    /// Leave out exchange lines from --json output (alerts, notices and the summary remain).
    #[arg(long)]
    pub no_exchanges: bool,
    /// Write the output (JSON lines or the readable summary) to this file instead of stdout. Refused when it
    /// is one of the input captures.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Exit status 3 when an alert of this severity or worse was printed (for CI and cron jobs).
    #[arg(long, value_name = "SEVERITY")]
    pub fail_on: Option<FailOn>,
    #[command(flatten)]
    pub filter: OutputFilter,
    #[command(flatten)]
    pub otlp: otlp::OtlpArgs,
}

/// Output filters of `kwire replay`: the analysis sees the whole capture (a rebalance needs every member's
/// traffic); only what is printed is narrowed. Counters of the summary stay whole-capture.
#[derive(Args, Clone, Default)]
pub struct OutputFilter {
    /// Print only exchanges and alerts about this topic.
    #[arg(long)]
    pub topic: Option<String>,
    /// Print only exchanges and alerts about this consumer group (exchanges that name a group: commits,
    /// offset fetches, joins, syncs, heartbeats).
    #[arg(long)]
    pub group: Option<String>,
    /// Print only exchanges and alerts of this client.id.
    #[arg(long)]
    pub client: Option<String>,
    /// Print only exchanges of this API (name such as Fetch or OffsetCommit, or its key number); alerts
    /// are kept.
    #[arg(long)]
    pub api: Option<String>,
}

impl OutputFilter {
    pub fn is_set(&self) -> bool {
        self.topic.is_some() || self.group.is_some() || self.client.is_some() || self.api.is_some()
    }

    /// `--topic orders --client c1`, for the readable summary.
    pub fn describe(&self) -> String {
        let mut v = Vec::new();
        for (k, x) in [
            ("topic", &self.topic),
            ("group", &self.group),
            ("client", &self.client),
            ("api", &self.api),
        ] {
            if let Some(x) = x {
                v.push(format!("--{k} {x}"));
            }
        }
        v.join(" ")
    }

    /// Whether an exchange is printed.
    pub fn exchange(&self, x: &kwire_engine::ExchangeRecord) -> bool {
        let e = &x.exchange;
        if let Some(c) = &self.client {
            if e.request.client_id.as_deref() != Some(c.as_str()) {
                return false;
            }
        }
        if let Some(a) = &self.api {
            let name = kwire_kafka::api::api_name(e.api_key);
            if !(name.eq_ignore_ascii_case(a) || a.parse::<i16>().ok() == Some(e.api_key)) {
                return false;
            }
        }
        if self.topic.is_some() || self.group.is_some() {
            // Facts are computed when a topic or group filter is set (topic ids resolved to names).
            let Some(f) = x.facts.as_deref() else {
                return false;
            };
            if let Some(t) = &self.topic {
                if !f.parts.iter().any(|p| *p.topic == **t) {
                    return false;
                }
            }
            if let Some(g) = &self.group {
                if f.group.as_deref() != Some(g.as_str()) {
                    return false;
                }
            }
        }
        true
    }

    /// Whether an alert is printed (and counts for --fail-on).
    pub fn alert(&self, a: &kwire_engine::Alert) -> bool {
        if let Some(c) = &self.client {
            if a.client_id.as_deref() != Some(c.as_str()) {
                return false;
            }
        }
        if let Some(t) = &self.topic {
            if a.topic.as_deref() != Some(t.as_str()) {
                return false;
            }
        }
        if let Some(g) = &self.group {
            let in_group = match a.fields.get("group") {
                Some(kwire_engine::alert::FieldValue::Str(n)) => &**n == g.as_str(),
                Some(kwire_engine::alert::FieldValue::Static(n)) => *n == g.as_str(),
                _ => false,
            };
            if !in_group {
                return false;
            }
        }
        true
    }
}

/// `--fail-on`: the least severity that makes the exit status 3.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum FailOn {
    Critical,
    Warning,
}

impl FailOn {
    pub fn as_str(self) -> &'static str {
        match self {
            FailOn::Critical => "critical",
            FailOn::Warning => "warning",
        }
    }

    pub fn hit(self, worst: Option<kwire_engine::Severity>) -> bool {
        use kwire_engine::Severity;
        let least = match self {
            FailOn::Critical => Severity::Critical,
            FailOn::Warning => Severity::Warning,
        };
        worst.is_some_and(|w| w >= least)
    }

    /// What to say when `worst` makes the exit status 3 (None when it does not).
    pub fn message(self, worst: Option<kwire_engine::Severity>) -> Option<String> {
        self.hit(worst).then(|| {
            format!(
                "--fail-on {}: a {} alert was raised (exit status {})",
                self.as_str(),
                worst.map(|w| w.as_str()).unwrap_or("-"),
                EXIT_ALERTS
            )
        })
    }
}

/// Exit status when `--fail-on` matched.
pub const EXIT_ALERTS: u8 = 3;

#[derive(Args, Clone)]
pub struct TimelineArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Only this client.id.
    #[arg(long)]
    pub client: Option<String>,
    /// Only this topic.
    #[arg(long)]
    pub topic: Option<String>,
    /// Only this partition.
    #[arg(long)]
    pub partition: Option<i32>,
    /// Only this consumer group: its events (join, sync, leave, heartbeat errors), its commits and
    /// offset fetches, its alerts, and the rows of the clients seen joining it.
    #[arg(long)]
    pub group: Option<String>,
    /// Only rows at or after this time (RFC 3339, e.g. 2026-11-22T18:51:00Z; no offset = UTC).
    #[arg(long, value_parser = timeline::parse_time)]
    pub since: Option<kwire_flow::Timestamp>,
    /// Only rows at or before this time (RFC 3339).
    #[arg(long, value_parser = timeline::parse_time)]
    pub until: Option<kwire_flow::Timestamp>,
    /// Write to this file instead of stdout (refused when it is one of the inputs).
    #[arg(long, short = 'o')]
    pub output: Option<std::path::PathBuf>,
    /// `{"type":"timeline",...}`, `{"type":"group_event",...}` and `{"type":"alert",...}` lines instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Every row. By default a high watermark, last stable offset or log start offset row is shown only
    /// when its value changed for that client and partition.
    #[arg(long)]
    pub all: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Progress {
    Auto,
    Always,
    Never,
}

/// Where the output goes: `--output FILE` (created, truncated), else stdout.
pub fn output(path: Option<&std::path::Path>) -> Result<Box<dyn std::io::Write>, String> {
    match path {
        None => Ok(Box::new(std::io::stdout().lock())),
        Some(p) => std::fs::File::create(p)
            .map(|f| Box::new(f) as Box<dyn std::io::Write>)
            .map_err(|e| format!("--output {}: {e}", p.display())),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Command::Replay(args) => replay::run(&args),
        Command::Timeline(args) => timeline::run(&args),
        Command::Report(args) => report::run(&args),
        Command::Run(args) => run::run(&args),
    }
}
