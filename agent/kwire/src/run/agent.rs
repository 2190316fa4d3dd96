//! The running agent: the live source, the `--write-pcap` recorder, the engine and the sinks
//! ([`crate::drive::Sinks`]), in three steps: [`Agent::start`] opens everything (or says why it
//! cannot: exit status 2), [`Agent::watch`] polls until a [`Stop`], [`Agent::stop`] finishes the engine,
//! writes the summary and says the exit status.
//!
//! Easy to get wrong:
//! - order at start: signals before the source (a SIGTERM while it opens still stops cleanly), the
//!   source before the report directory and the output (their errors come after the source's);
//! - the loop never waits more than [`POLL_MS`] in the source: signals, `--duration`, a scrape waiting
//!   for its `/metrics` rendering, the once-a-second work (the pcap flush, the drop check) all depend on it;
//! - a packet is recorded before the engine sees it: its number in the `--write-pcap` file is the
//!   number evidence links name (none without a file);
//! - stdout is flushed after every batch (and by the sink after every alert); a closed stdout stops the
//!   agent like a signal, but the summary is still counted and the exit status still judged.

use std::io;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use kwire_capture::{LivePacket, LiveSource, PcapWriter, WriterOptions, WriterStats};
use kwire_engine::{Engine, NoticeRecord, Output};

use super::health::{self, Health};
use super::log::{wall_clock, Log};
use super::{source, RunArgs};
use crate::drive::{MetricsPage, Sinks};
use crate::report::LiveReporter;
use crate::sink::{Exchanges, Flush, Form, OutputSink};
use crate::{config, otlp, OutputFilter};

/// How long a stopping agent waits for the OTLP backend to take what is queued.
const EXPORT_FINISH_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait in the source before the loop looks at signals and timers again.
pub const POLL_MS: u64 = 100;
/// Packets handed over per poll at most.
const POLL_BATCH: usize = 1024;

/// Why the agent stopped.
pub enum Stop {
    /// SIGINT or SIGTERM.
    Signal(&'static str),
    /// `--duration` elapsed.
    Duration,
    /// The source failed while running: the message (exit status 1).
    SourceFailed(String),
    /// Writing the output failed (a closed pipe included).
    OutputClosed,
}

impl Stop {
    /// As the summary's `run.stopped_by` and the log say it.
    fn word(&self) -> &'static str {
        match self {
            Stop::Signal(s) => s,
            Stop::Duration => "duration",
            Stop::SourceFailed(_) => "error",
            Stop::OutputClosed => "stdout closed",
        }
    }
}

/// SIGINT and SIGTERM set flags (no work in the handler); a second one while stopping exits at once
/// (status 130).
struct Signals {
    stop: Arc<AtomicBool>,
    term: Arc<AtomicBool>,
}

impl Signals {
    fn install() -> Result<Signals, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let int = Arc::new(AtomicBool::new(false));
        let term = Arc::new(AtomicBool::new(false));
        for (sig, flag) in [
            (signal_hook::consts::SIGINT, &int),
            (signal_hook::consts::SIGTERM, &term),
        ] {
            signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&stop))
                .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&stop)))
                .and_then(|_| signal_hook::flag::register(sig, Arc::clone(flag)))
                .map_err(|e| format!("cannot install signal handlers: {e}"))?;
        }
        Ok(Signals { stop, term })
    }

    /// The signal that asked to stop, if one did.
    fn received(&self) -> Option<&'static str> {
        if !self.stop.load(Ordering::SeqCst) {
            return None;
        }
        Some(if self.term.load(Ordering::SeqCst) {
            "SIGTERM"
        } else {
            "SIGINT"
        })
    }
}

/// `--write-pcap`: what the source handed over, for a later `kwire replay`. A write error is logged
/// once; the capture goes on without the file.
struct Recorder {
    w: PcapWriter,
    /// The last error of the batch in hand.
    failed: Option<io::Error>,
    warned: bool,
}

impl Recorder {
    fn open(args: &RunArgs) -> Result<Option<Recorder>, String> {
        let Some(p) = &args.write_pcap else {
            return Ok(None);
        };
        let w = PcapWriter::new(WriterOptions {
            path: p.clone(),
            max_bytes: (args.write_pcap_max_mb > 0).then(|| args.write_pcap_max_mb * 1_000_000),
            max_seconds: args.write_pcap_seconds,
            max_files: args.write_pcap_files,
        })
        .map_err(|e| format!("--write-pcap {}: {e}", p.display()))?;
        Ok(Some(Recorder {
            w,
            failed: None,
            warned: false,
        }))
    }

    /// Writes `p`; its number in the file (None before the first packet written).
    fn record(&mut self, p: &LivePacket<'_>) -> Option<u64> {
        if let Err(e) = self.w.write(p.ts, p.link, p.data, p.orig_len) {
            self.failed = Some(e);
        }
        Some(self.w.last_frame()).filter(|&n| n > 0)
    }

    fn warn_once(&mut self, e: io::Error, log: &Log) {
        if !self.warned {
            self.warned = true;
            log.warn(
                &format!("--write-pcap stopped: {e} (the capture goes on)"),
                json!({}),
            );
        }
    }

    /// After a batch: says so if writing failed.
    fn after_batch(&mut self, log: &Log) {
        if let Some(e) = self.failed.take() {
            self.warn_once(e, log);
        }
    }

    fn flush(&mut self, log: &Log) {
        if let Err(e) = self.w.flush() {
            self.warn_once(e, log);
        }
    }

    /// Closes the file: its counters and the files of the set.
    fn finish(self, log: &Log) -> (WriterStats, Vec<PathBuf>) {
        let files = self.w.current_files();
        let (stats, r) = self.w.finish();
        if let Err(e) = r {
            log.warn(&format!("--write-pcap: {e}"), json!({}));
        }
        (stats, files)
    }
}

/// The wall-clock timers of the loop.
struct Timers {
    started: Instant,
    deadline: Option<Instant>,
    last_second: Instant,
    last_stats_log: Instant,
    /// Drops already told about.
    known_drops: u64,
}

/// A started agent; see the module doc.
pub struct Agent<'a> {
    args: &'a RunArgs,
    log: Log,
    signals: Signals,
    health: Arc<Health>,
    source: Box<dyn LiveSource>,
    recorder: Option<Recorder>,
    engine: Engine,
    sinks: Sinks,
    timers: Timers,
}

impl<'a> Agent<'a> {
    /// Opens everything `args` asks for. `Err` is a one-line message (exit status 2).
    pub fn start(args: &'a RunArgs, log: Log) -> Result<Agent<'a>, String> {
        let mut cfg = config::engine_config(
            &args.engine,
            // Live TLS is read through uprobes, not a key log (no flag; a config file's applies).
            None,
        )?;
        cfg.notices = !args.no_notices;
        if let Some(f) = source::fleet(args)? {
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
        let otlp_file = config::otlp_config(args.engine.config.as_deref())?;
        let exporter = otlp::start(&args.otlp, &otlp_file, false, log.for_export())?;
        let metrics = args.health.map(|_| MetricsPage::from_env());
        cfg.exchange_facts = exporter.is_some() || metrics.is_some();
        if args.report.report_dir.is_some() {
            LiveReporter::configure(&mut cfg);
        }
        // Signals first, so that a SIGTERM while the source opens still stops cleanly.
        let signals = Signals::install()?;
        let health = Arc::new(Health::default());
        if let Some(addr) = args.health {
            health::serve(addr, &health, &log)?;
        }
        let recorder = Recorder::open(args)?;
        let source = source::open(args, &cfg.ports, &log)?;
        let describe = source.describe();
        log.info(
            &format!("capturing with {}: {describe}", source.name()),
            json!({"source": source.name()}),
        );
        health.alive(format!("{}: {describe}", source.name()));
        let reports = LiveReporter::new(&args.report, format!("{}: {describe}", source.name()))?;
        let engine = Engine::new(cfg);
        let form = if args.json {
            Form::JsonLines(Exchanges::unless_left_out(args.no_exchanges))
        } else {
            Form::AlertLines
        };
        let out = OutputSink::new(
            crate::output(args.output.as_deref())?,
            form,
            OutputFilter::default(),
            Flush::AfterEachAlert,
        );
        let started = Instant::now();
        Ok(Agent {
            args,
            log,
            signals,
            health,
            source,
            recorder,
            engine,
            sinks: Sinks {
                out,
                otlp: exporter,
                metrics,
                reports,
            },
            timers: Timers {
                started,
                deadline: args
                    .duration
                    .map(|d| started + Duration::from_secs_f64(d.max(0.0))),
                last_second: Instant::now(),
                last_stats_log: Instant::now(),
                known_drops: 0,
            },
        })
    }

    /// Polls the source until a signal, `--duration`, a source failure or a broken output.
    pub fn watch(&mut self) -> Stop {
        loop {
            let wait = match self.next_wait() {
                ControlFlow::Continue(w) => w,
                ControlFlow::Break(stop) => return stop,
            };
            if let Err(stop) = self.poll(wait) {
                return stop;
            }
            self.sinks.out.flush();
            if self.health.metrics_wanted() {
                self.render_metrics();
            }
            if let Some(r) = self.sinks.reports.as_mut() {
                report_written(&self.log, r.poll(&self.engine, false));
            }
            if !self.sinks.out.is_ok() {
                return Stop::OutputClosed;
            }
            // Live metrics follow the wall clock (an idle network still reports its health).
            let (engine, source) = (&self.engine, &self.source);
            self.sinks
                .tick_otlp(wall_clock(), || otlp::health(engine, Some(&source.stats())));
            if self.timers.last_second.elapsed() >= Duration::from_secs(1) {
                self.timers.last_second = Instant::now();
                self.every_second();
            }
        }
    }

    /// How long the next poll may wait, or why to stop now.
    fn next_wait(&self) -> ControlFlow<Stop, u64> {
        if let Some(sig) = self.signals.received() {
            return ControlFlow::Break(Stop::Signal(sig));
        }
        let now = Instant::now();
        let mut wait = POLL_MS;
        if let Some(d) = self.timers.deadline {
            if now >= d {
                return ControlFlow::Break(Stop::Duration);
            }
            wait = wait.min((d - now).as_millis() as u64 + 1);
        }
        ControlFlow::Continue(wait)
    }

    /// One batch of packets: recorded, then through the engine to the sinks.
    fn poll(&mut self, wait_ms: u64) -> Result<(), Stop> {
        let Agent {
            source,
            recorder,
            engine,
            sinks,
            ..
        } = self;
        let polled = source.poll(POLL_BATCH, wait_ms as u32, &mut |p| {
            if let Some(pl) = p.plain {
                // TLS plaintext (eBPF uprobes): not a packet, never written to --write-pcap.
                let who = p.owner.map(|(_, w)| w);
                engine.on_plaintext(p.ts, pl.src, pl.dst, pl.at, p.data, who, &mut |o| {
                    sinks.emit(&o)
                });
                return;
            }
            // Evidence links name packets by their number in the --write-pcap file; without one a live
            // packet has no number.
            let frame = recorder.as_mut().and_then(|r| r.record(p));
            engine.number_frames(frame);
            engine.on_packet_owned(p.ts, p.link, p.data, p.owner, &mut |o| sinks.emit(&o));
        });
        if let Some(r) = self.recorder.as_mut() {
            r.after_batch(&self.log);
        }
        match polled {
            Ok(_) => {
                self.health.ready();
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(Stop::SourceFailed(format!(
                "{} source failed: {e}",
                self.source.name()
            ))),
        }
    }

    /// The `/metrics` page, rendered for the scrape that waits for it (see `health.rs`).
    fn render_metrics(&mut self) {
        if let Some(m) = self.sinks.metrics.as_mut() {
            let st = self.source.stats();
            let now = u64::try_from(wall_clock().0).unwrap_or(0);
            let text = m.render(otlp::health(&self.engine, Some(&st)), now);
            self.health.publish_metrics(text);
        }
    }

    /// Once a second: the pcap flush, drops told, the stats line.
    fn every_second(&mut self) {
        if let Some(r) = self.recorder.as_mut() {
            r.flush(&self.log);
        }
        self.tell_drops();
        let interval = self.args.stats_interval;
        if interval > 0 && self.timers.last_stats_log.elapsed() >= Duration::from_secs(interval) {
            self.timers.last_stats_log = Instant::now();
            let st = self.source.stats();
            let s = self.engine.summary();
            self.log.info(
                "capture stats",
                json!({"packets": st.packets, "bytes": st.bytes, "kernel_drops": st.kernel_drops,
                       "flows": self.engine.flows_tracked(), "exchanges": s.kafka.requests, "alerts": self.sinks.out.tally().alerts}),
            );
        }
    }

    /// Packets the kernel or the ring dropped since last time: a warning and a `capture_drops` notice.
    fn tell_drops(&mut self) {
        let st = self.source.stats();
        let drops = st.kernel_drops + st.ring_drops + st.interface_drops;
        if drops <= self.timers.known_drops {
            return;
        }
        let msg = format!(
            "{} packets dropped before kwire could read them ({} in all: kernel {}, ring {}, interface {}); expect gaps",
            drops - self.timers.known_drops,
            drops,
            st.kernel_drops,
            st.ring_drops,
            st.interface_drops
        );
        self.log.warn(&msg, json!({"kernel_drops": st.kernel_drops, "ring_drops": st.ring_drops, "interface_drops": st.interface_drops}));
        let n = NoticeRecord::new(self.engine.last_ts(), "capture_drops", msg);
        if self.engine.config().notices {
            // To the output only: the notice is about this agent's capture, not about Kafka.
            self.sinks.out.emit(&Output::Notice(n));
        }
        self.timers.known_drops = drops;
    }

    /// Finishes the engine, the reports, the export and the pcap; writes the summary; the exit status.
    pub fn stop(mut self, stop: Stop) -> ExitCode {
        let log = self.log;
        self.health.stopped();
        log.info(&format!("stopping ({})", stop.word()), json!({}));
        // The `/metrics` page is not rendered again.
        self.sinks.metrics = None;
        let sinks = &mut self.sinks;
        // TLS plaintext the eBPF source still holds for reordering.
        let engine = &mut self.engine;
        self.source.flush(&mut |p| {
            if let Some(pl) = p.plain {
                let who = p.owner.map(|(_, w)| w);
                engine.on_plaintext(p.ts, pl.src, pl.dst, pl.at, p.data, who, &mut |o| {
                    sinks.emit(&o)
                });
            }
        });
        self.engine.finish(&mut |o| sinks.emit(&o));
        if let Some(r) = self.sinks.reports.as_mut() {
            report_written(&log, r.poll(&self.engine, true));
            if r.not_reported > 0 {
                log.warn(
                    &format!(
                        "{} alerts came after --report-max-files {} reports and are in no report (kwire report on a --write-pcap capture writes one)",
                        r.not_reported, self.args.report.report_max_files
                    ),
                    json!({}),
                );
            }
        }
        let st = self.source.stats();
        let export_failed = self.finish_export(&st);
        let written = self.recorder.take().map(|r| r.finish(&log));
        let secs = self.timers.started.elapsed().as_secs_f64();
        let mut summary = self.engine.summary().clone();
        summary.fidelity.kernel_drops = st.kernel_drops + st.ring_drops + st.interface_drops;
        let closing = Closing {
            summary: &summary,
            source: &st,
            written: written.as_ref(),
            secs,
            stop: &stop,
        };
        if self.args.json {
            self.json_summary(&closing);
        } else {
            self.readable_summary(&closing);
        }
        let write_err = self.sinks.out.finish();
        if let Some((ws, files)) = &written {
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
        exit_status(&log, stop, export_failed, write_err, &summary, self.args)
    }

    /// Waits for the backend to take what is queued; whether alerts were lost (exit status 1).
    fn finish_export(&mut self, st: &kwire_capture::SourceStats) -> bool {
        let Some(x) = self.sinks.otlp.take() else {
            return false;
        };
        let report = x.finish(
            wall_clock(),
            &otlp::health(&self.engine, Some(st)),
            EXPORT_FINISH_TIMEOUT,
        );
        let spool = self.args.otlp.otlp_spool.is_some();
        let (msg, failed) = otlp::describe(&report, spool);
        if failed {
            self.log.error(&msg);
        } else {
            self.log.info(&msg, json!({"alerts_delivered": report.alerts_delivered, "alerts_spooled": report.alerts_spooled}));
        }
        failed
    }

    /// The last JSON line: the engine's summary with the source's, the pcap's and the run's figures.
    fn json_summary(&mut self, c: &Closing<'_>) {
        let mut v = serde_json::to_value(c.summary).unwrap_or_default();
        if let Some(m) = v.as_object_mut() {
            m.insert(
                "capture".into(),
                // Described again: the eBPF source's TLS uprobes attach to files found while running.
                source::stats_json(self.source.name(), &self.source.describe(), c.source),
            );
            if let Some((ws, files)) = c.written {
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
                json!({"seconds": (c.secs * 1000.0).round() / 1000.0, "stopped_by": c.stop.word()}),
            );
            // As `kwire replay` says them, so a replay of --write-pcap gives the same summary.
            let e = &self.engine;
            m.insert(
                "first_ts".into(),
                e.first_ts().map(|t| t.to_rfc3339()).into(),
            );
            m.insert(
                "last_ts".into(),
                e.first_ts().map(|_| e.last_ts().to_rfc3339()).into(),
            );
            m.insert("kwire_version".into(), env!("CARGO_PKG_VERSION").into());
        }
        self.sinks.out.json_summary(&v);
    }

    /// The readable closing lines: one line of counts, then the fidelity.
    fn readable_summary(&mut self, c: &Closing<'_>) {
        let tally = self.sinks.out.tally();
        let (s, st) = (c.summary, c.source);
        self.sinks.out.closing(|mut w, _| {
            writeln!(
                w,
                "kwire run: {} packets ({} dropped by the kernel), {} Kafka connections, {} requests, {} responses, {} alerts ({} critical); {:.1} s, stopped by {}",
                st.packets,
                st.kernel_drops,
                s.flows.kafka,
                s.kafka.requests,
                s.kafka.responses,
                tally.alerts,
                tally.critical,
                c.secs,
                c.stop.word()
            )?;
            crate::human::print_fidelity(&mut w, &s.fidelity)
        });
    }
}

/// What the closing summary says besides the engine's counters.
struct Closing<'c> {
    summary: &'c kwire_engine::Summary,
    source: &'c kwire_capture::SourceStats,
    written: Option<&'c (WriterStats, Vec<PathBuf>)>,
    secs: f64,
    stop: &'c Stop,
}

/// 1: the source failed, alerts not exported, or the output broke (not a closed pipe); 3: `--fail-on`;
/// in that order. 0 otherwise.
fn exit_status(
    log: &Log,
    stop: Stop,
    export_failed: bool,
    write_err: Option<io::Error>,
    summary: &kwire_engine::Summary,
    args: &RunArgs,
) -> ExitCode {
    if let Stop::SourceFailed(f) = stop {
        log.error(&f);
        return ExitCode::from(1);
    }
    if export_failed {
        return ExitCode::from(1);
    }
    if let Some(e) = write_err {
        if e.kind() != io::ErrorKind::BrokenPipe {
            log.error(&format!("cannot write output: {e}"));
            return ExitCode::from(1);
        }
    }
    if let Some(f) = args.fail_on {
        let worst = summary.alerts.keys().map(|(_, sev)| *sev).max();
        if let Some(msg) = f.message(worst) {
            log.error(&msg);
            return ExitCode::from(crate::EXIT_ALERTS);
        }
    }
    ExitCode::SUCCESS
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
