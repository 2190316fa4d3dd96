//! kwire: passive, wire-level Kafka observability. This binary wires the pieces: a packet source, the
//! engine, and the outputs. It is the only place that touches the terminal and the process exit status.
//!
//! Easy to get wrong: exit status 2 for unusable input (missing, unreadable, not a capture, damaged), yet
//! everything read before damage is still processed and reported; stdout carries only the requested
//! output (human summary or JSON lines), progress and errors go to stderr.

mod human;
mod replay;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "kwire",
    version,
    about = "Passive, wire-level Kafka observability: decodes Kafka traffic from packets.",
    after_help = "Examples:\n  kwire replay capture.pcapng                 readable summary of a capture\n  kwire replay capture.pcap --json | jq 'select(.type==\"exchange\")'\n  kwire replay capture.pcap --ports 9092,9093  only these broker ports\n"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decode a pcap/pcapng capture into Kafka request/response exchanges.
    #[command(after_help = "Examples:\n  kwire replay tests/fixtures/harness/produce-acks-librdkafka-mock.pcap\n  kwire replay big.pcapng --json > exchanges.jsonl\n  kwire replay capture.pcap --ports 36333 --json --no-notices\n\nExit status: 0 ok, 2 unusable or damaged input (what was read before the damage is still reported).")]
    Replay(ReplayArgs),
}

#[derive(Args, Clone)]
pub struct ReplayArgs {
    /// Capture file (pcap or pcapng; Ethernet, VLAN, Linux cooked SLL/SLL2, raw IP, BSD loopback).
    pub file: PathBuf,
    /// One JSON object per line (exchange, notice, summary) instead of the readable summary.
    #[arg(long)]
    pub json: bool,
    /// Broker ports to decode (comma-separated). Default: every TCP port, Kafka found by probing.
    #[arg(long, value_delimiter = ',', env = "KWIRE_PORTS")]
    pub ports: Vec<u16>,
    /// Leave out notice lines (orphans, gaps, desyncs) from --json output; they are still counted.
    #[arg(long)]
    pub no_notices: bool,
    /// Largest Kafka frame buffered whole to be decoded, in bytes; larger frames are decoded by header.
    #[arg(long, default_value_t = 16 * 1024 * 1024, env = "KWIRE_MAX_FRAME_BYTES")]
    pub max_frame_bytes: usize,
    /// Maximum TCP connections tracked at once.
    #[arg(long, default_value_t = 65536, env = "KWIRE_MAX_FLOWS")]
    pub max_flows: usize,
    /// Progress on stderr: auto (when stderr is a terminal and the file is large), always, never.
    #[arg(long, default_value = "auto")]
    pub progress: Progress,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Progress {
    Auto,
    Always,
    Never,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Command::Replay(args) => replay::run(&args),
    }
}
