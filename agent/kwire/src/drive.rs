//! The driver shape every command shares: a **source** of packets, the **engine**, and the **sinks** its
//! outputs fan out to. `kwire replay`, `timeline` and `report` read capture files ([`drive_files`]);
//! `kwire run` polls a live source (`run::agent::Agent::watch`). Both hand every output to one [`Sinks`] (or, for
//! `timeline` and `report`, to their own [`Consumer`]).
//!
//! ```text
//! source                    engine                         sinks
//! files (Inputs, merged) ─┐                              ┌─ OutputSink: JSON lines | readable summary | alert lines
//! live (eBPF | libpcap) ──┴─► Engine::on_packet ─► Output ┼─ OTLP exporter (spans, logs, metrics)
//!   └─ PcapWriter (--write-pcap: numbers live packets)    ├─ /metrics state (run --health)
//!                                                        └─ incident reports (run --report-dir)
//! ```
//!
//! Easy to get wrong:
//! - every sink sees every output in the engine's order; the output filters live in the `OutputSink`
//!   only (OTLP and the reports see the whole capture);
//! - clocks: a replay's metrics follow packet time ([`Consumer::tick`] every [`TICK_PACKETS`] packets),
//!   live metrics follow the wall clock (an idle network still reports its health);
//! - packets are numbered as Wireshark numbers them in their own file (several inputs: per file), live
//!   in the `--write-pcap` file, else not at all: evidence links name those numbers;
//! - a broken output (closed pipe) stops the reading after the packet in hand; the engine is still
//!   finished and the summary still counted.

use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use kwire_capture::{CaptureError, FileStats, ReadMode};
use kwire_engine::{Engine, EngineConfig, NoticeRecord, Output};
use kwire_export::Exporter;
use kwire_flow::Timestamp;

use crate::inputs::Inputs;
use crate::report::LiveReporter;
use crate::sink::OutputSink;
use crate::Progress;

/// Packets between two [`Consumer::tick`] calls (the exporter's metrics clock is packet time).
pub const TICK_PACKETS: u64 = 1024;

/// What a source's packets feed: the outputs, in the engine's order, and the packet-time clock.
pub trait Consumer {
    /// One output; false once outputs can no longer be written (stop reading).
    fn output(&mut self, o: &Output) -> bool;
    /// Called every [`TICK_PACKETS`] packets of a capture.
    fn tick(&mut self, _engine: &Engine) {}
}

/// A closure is a consumer without a clock (`kwire timeline`, `kwire report`).
impl<F: FnMut(&Output) -> bool> Consumer for F {
    fn output(&mut self, o: &Output) -> bool {
        self(o)
    }
}

/// The `/metrics` state of `kwire run --health`: its own metric state (the exporter's lives on its side
/// and exists only with an OTLP endpoint) and the resource attributes as labels.
pub struct MetricsPage {
    pub state: kwire_export::metrics::MetricState,
    pub resource: Vec<(String, String)>,
}

impl MetricsPage {
    /// Current attribute names; the resource attributes (from the standard variables) as labels.
    pub fn from_env() -> MetricsPage {
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
        MetricsPage {
            state: kwire_export::metrics::MetricState::default(),
            resource,
        }
    }

    /// The page's text (Prometheus text format 0.0.4) with the agent's `health` at `now_ns`.
    pub fn render(&mut self, health: kwire_export::Health, now_ns: u64) -> String {
        self.state.health = health;
        kwire_export::prometheus::render(&self.state.snapshot(now_ns), &self.resource)
    }

    /// What `/metrics` counts of one output (the exporter counts the same for OTLP).
    fn feed(&mut self, o: &Output) {
        match o {
            Output::Exchange(x) => self.state.on_exchange(x),
            Output::Alert(a) => self.state.on_alert(a),
            _ => {}
        }
    }
}

/// Every sink of replay and run; each one there when asked for.
pub struct Sinks {
    pub out: OutputSink,
    pub otlp: Option<Exporter>,
    pub metrics: Option<MetricsPage>,
    pub reports: Option<LiveReporter>,
}

impl Sinks {
    /// Just the output sink.
    pub fn output_only(out: OutputSink) -> Sinks {
        Sinks {
            out,
            otlp: None,
            metrics: None,
            reports: None,
        }
    }

    /// One output to every sink, in this order: OTLP, `/metrics`, reports, the output.
    pub fn emit(&mut self, o: &Output) {
        if let Some(x) = self.otlp.as_mut() {
            x.on_output(o);
        }
        if let Some(m) = self.metrics.as_mut() {
            m.feed(o);
        }
        if let Some(r) = self.reports.as_mut() {
            r.add(o);
        }
        self.out.emit(o);
    }

    /// The exporter's metrics at `now` when their interval has passed.
    pub fn tick_otlp(&mut self, now: Timestamp, health: impl FnOnce() -> kwire_export::Health) {
        if let Some(x) = self.otlp.as_mut() {
            if x.tick(now) {
                x.export_metrics(now, &health());
            }
        }
    }
}

impl Consumer for Sinks {
    fn output(&mut self, o: &Output) -> bool {
        self.emit(o);
        self.out.is_ok()
    }

    fn tick(&mut self, engine: &Engine) {
        self.tick_otlp(engine.last_ts(), || crate::otlp::health(engine, None));
    }
}

/// The capture files of a command: expanded ([`crate::inputs::expand`]), with how progress is shown.
pub struct Files<'a> {
    pub paths: &'a [PathBuf],
    pub progress: Progress,
    /// Map big files or always `read` them (`--no-mmap`).
    pub read_mode: ReadMode,
}

/// What reading a whole capture produced besides the outputs.
pub struct FileRun {
    pub engine: Engine,
    pub stats: FileStats,
    pub damage: Option<CaptureError>,
    pub took: Duration,
    /// The input files, globs expanded.
    pub files: Vec<PathBuf>,
    /// Timestamp of the first packet read (the capture's time range starts there).
    pub first_ts: Option<Timestamp>,
    /// Timestamp of the last packet read.
    pub last_ts: Option<Timestamp>,
}

impl FileRun {
    /// The engine's summary with what only the files know (packets cut by the snaplen).
    pub fn summary(&self) -> kwire_engine::Summary {
        let mut summary = self.engine.summary().clone();
        summary.fidelity.snaplen_cut_packets = self.stats.truncated_packets;
        summary
    }
}

/// Opens the captures (several files are merged by packet time, `-` is standard input) and runs every
/// packet through a new engine; outputs go to `to` (the capture-damage notice included). `Err` is a
/// one-line message for stderr (exit status 2).
pub fn drive_files(
    src: Files<'_>,
    cfg: EngineConfig,
    to: &mut dyn Consumer,
) -> Result<FileRun, String> {
    let mut file = Inputs::open(src.paths, src.read_mode)?;
    let mut engine = Engine::new(cfg);
    let mut progress = ProgressLine::new(src.progress, file.len());
    let mut n: u64 = 0;
    let mut first_ts = None;
    let mut last_ts = None;
    let mut go_on = true;
    while let Some((frame, p)) = file.next_packet() {
        first_ts.get_or_insert(p.ts);
        last_ts = Some(p.ts);
        // Several files merge into one stream: each packet keeps its number in its own file.
        engine.number_frames(Some(frame));
        engine.on_packet(p.ts, p.link, p.data, &mut |o| {
            if !to.output(&o) {
                go_on = false;
            }
        });
        n += 1;
        if n.is_multiple_of(TICK_PACKETS) {
            to.tick(&engine);
        }
        if progress.due(n) {
            progress.show(n, file.position());
        }
        if !go_on {
            break;
        }
    }
    progress.end();
    let damage = file.take_damage();
    engine.finish(&mut |o| {
        to.output(&o);
    });
    if let Some(d) = &damage {
        to.output(&Output::Notice(NoticeRecord::new(
            engine.last_ts(),
            "capture_damaged",
            d.to_string(),
        )));
    }
    Ok(FileRun {
        engine,
        stats: file.stats(),
        damage,
        took: progress.started.elapsed(),
        files: src.paths.to_vec(),
        first_ts,
        last_ts,
    })
}

/// The progress line on stderr while files are read.
struct ProgressLine {
    shown: bool,
    /// The inputs' total size; unknown for standard input (no percentage then).
    total: Option<u64>,
    started: Instant,
    last_report: Instant,
}

impl ProgressLine {
    fn new(progress: Progress, total: Option<u64>) -> ProgressLine {
        let shown = match progress {
            Progress::Always => true,
            Progress::Never => false,
            Progress::Auto => {
                io::stderr().is_terminal() && total.is_some_and(|t| t > 256 * 1024 * 1024)
            }
        };
        ProgressLine {
            shown,
            total,
            started: Instant::now(),
            last_report: Instant::now(),
        }
    }

    /// Whether the line is due after the `n`th packet (every 64Ki packets, twice a second at most).
    fn due(&self, n: u64) -> bool {
        self.shown && n.is_multiple_of(65536) && self.last_report.elapsed().as_millis() >= 500
    }

    /// The line after the `n`th packet, `pos` bytes into the inputs.
    fn show(&mut self, n: u64, pos: u64) {
        self.last_report = Instant::now();
        let line = progress_line(pos, self.total, self.started.elapsed(), n);
        eprint!("\r{line}");
    }

    fn end(&self) {
        if self.shown {
            eprintln!();
        }
    }
}

/// The progress line: a percentage only when the total size is known (not for standard input).
fn progress_line(pos: u64, total: Option<u64>, took: Duration, packets: u64) -> String {
    let secs = took.as_secs_f64().max(1e-9);
    let pct = match total {
        Some(t) if t > 0 => format!("{:5.1}%  ", 100.0 * pos as f64 / t as f64),
        _ => String::new(),
    };
    format!(
        "kwire: {pct}{} MB  {:.0} MB/s  {packets} packets",
        pos >> 20,
        pos as f64 / secs / 1e6
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_has_a_percentage_only_when_the_size_is_known() {
        let t = Duration::from_secs(2);
        assert_eq!(
            progress_line(50 << 20, Some(200 << 20), t, 1000),
            "kwire:  25.0%  50 MB  26 MB/s  1000 packets"
        );
        // Standard input: no size (the old line said `11927554400.0%`).
        assert_eq!(
            progress_line(11_927_554_400 / 100, None, t, 7),
            "kwire: 113 MB  60 MB/s  7 packets"
        );
    }
}
