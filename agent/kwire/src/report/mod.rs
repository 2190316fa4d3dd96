//! `kwire report CAPTURE... -o report.html`, and `kwire run --report-dir DIR`: the incident write-up an
//! engineer would otherwise assemble by hand from broker logs and client errors, made from the wire. One
//! self-contained HTML file: an overview (capture, fidelity, brokers, clients with their software,
//! topics, groups, alerts by severity), one section per incident (what happened with the alert's own
//! figures, the exchanges it rests on, a chart, scope, likely cause, what to do) and context charts
//! (produce / fetch rates per topic, latency per API, rebalances per group).
//!
//! Rooms: [`collect`] keeps what the engine's outputs say (bounded), [`story`] turns an incident into
//! words, evidence rows and its chart, [`svg`] draws, [`html`] lays the page out.
//!
//! Easy to get wrong:
//! - the report reads the engine's typed findings the way `kwire replay` and `kwire timeline` do (the
//!   engine runs with timeline rows and exchange facts on); it never re-derives an alert's figures, so
//!   the page says what `--json` says;
//! - same capture, same bytes: no wall clock in the page, every map ordered, numbers at fixed precision;
//! - live (`--report-dir`), a report is written a moment after an alert (2 s of packet time, or 5 s of
//!   wall time when traffic stops), so the alerts one exchange raised together land in one file; files
//!   are bounded in number (`--report-max-files`) and size (`--report-max-mb`: a larger page is
//!   re-rendered with fewer incident sections, then skipped and logged).

pub mod collect;
pub mod html;
pub mod story;
pub mod svg;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;

use kwire_engine::{Engine, Output, Summary};
use kwire_flow::{Endpoint, Timestamp};

use crate::drive::drive_files;
use crate::{config, inputs, InputArgs, OutputFilter};
use collect::Collector;

#[derive(Args, Clone)]
pub struct ReportArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// The HTML file to write (`-` = standard output). Refused when it is one of the input captures.
    #[arg(long, short = 'o', value_name = "FILE", default_value = "report.html")]
    pub output: PathBuf,
    /// The page's title (default: "kwire report: <first file>").
    #[arg(long)]
    pub title: Option<String>,
    #[command(flatten)]
    pub filter: OutputFilter,
}

/// `kwire run --report-dir`.
#[derive(Args, Clone, Default)]
pub struct LiveReportArgs {
    /// Write an HTML incident report into this directory when an alert fires (a moment after it, so
    /// alerts raised together share one file). See `kwire report`.
    #[arg(long, value_name = "DIR", env = "KWIRE_REPORT_DIR")]
    pub report_dir: Option<PathBuf>,
    /// Reports written at most per run; later alerts are logged, not reported.
    #[arg(long, default_value_t = 20)]
    pub report_max_files: u32,
    /// Largest report in MB: a larger page is re-rendered with fewer incident sections, else skipped.
    #[arg(long, default_value_t = 8)]
    pub report_max_mb: u64,
}

/// What the page says about the input.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    pub files: Vec<String>,
    /// The live source's description (`kwire run`), None for files.
    pub live: Option<String>,
    pub packets: u64,
    pub bytes: u64,
    pub first_ts: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
    pub damage: Option<String>,
}

/// What the report reads from the engine besides its outputs.
pub struct EngineView {
    pub summary: Summary,
    /// (topic, partition) -> leader changes (cluster view).
    pub leader_changes: BTreeMap<(String, i32), Vec<Timestamp>>,
    /// (client id, host) -> "name/version" announced in ApiVersions.
    pub software: BTreeMap<(String, IpAddr), String>,
    /// "host:port" -> broker node id (Metadata).
    pub node_ids: BTreeMap<String, i32>,
}

impl EngineView {
    pub fn of(e: &Engine, summary: Summary) -> EngineView {
        let a = e.analyzer();
        EngineView {
            summary,
            leader_changes: a
                .cluster
                .leader_changes()
                .map(|(tp, v)| ((tp.topic.to_string(), tp.partition), v.to_vec()))
                .collect(),
            software: a
                .client_software()
                .map(|(k, n, v)| ((k.client_id.to_string(), k.host), format!("{n}/{v}")))
                .collect(),
            node_ids: a
                .cluster
                .brokers
                .iter()
                .map(|(id, addr)| (addr.clone(), *id))
                .collect(),
        }
    }

    /// "127.0.0.1:9092 (broker 2)".
    pub fn broker_name_plain(&self, b: &Endpoint) -> String {
        let addr = b.to_string();
        match self.node_ids.get(&addr) {
            Some(id) => format!("{addr} (broker {id})"),
            None => addr,
        }
    }

    /// The same, as HTML.
    pub fn broker_name(&self, b: &Endpoint) -> String {
        let addr = b.to_string();
        match self.node_ids.get(&addr) {
            Some(id) => format!("{} (broker {id})", story::code(&addr)),
            None => story::code(&addr),
        }
    }
}

/// The engine configuration a report needs on top of the user's: timeline rows and exchange facts.
fn report_config(cfg: &mut kwire_engine::EngineConfig) {
    cfg.timeline = true;
    cfg.exchange_facts = true;
    cfg.notices = true;
}

/// The inputs and the engine's configuration. `Err` is a one-line message (exit status 2).
fn prepare(args: &ReportArgs) -> Result<(Vec<PathBuf>, kwire_engine::EngineConfig), String> {
    let files = inputs::expand(&args.input.files)?;
    if args.output.as_os_str() != "-" {
        inputs::refuse_output_over_input(&args.output, &files)?;
    }
    let mut cfg = config::engine_config(&args.input.engine, args.input.tls_keylog.as_ref())?;
    report_config(&mut cfg);
    Ok((files, cfg))
}

pub fn run(args: &ReportArgs) -> ExitCode {
    let (files, cfg) = match prepare(args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("kwire: {e}");
            return ExitCode::from(2);
        }
    };
    let to_stdout = args.output.as_os_str() == "-";
    let mut c = Collector::new(args.filter.clone());
    let source = args.input.files(&files);
    let result = drive_files(source, cfg, &mut |o: &Output| {
        c.add(o);
        true
    });
    let run = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kwire: {e}");
            return ExitCode::from(2);
        }
    };
    let view = EngineView::of(&run.engine, run.summary());
    let cap = Capture {
        files: run.files.iter().map(|p| p.display().to_string()).collect(),
        live: None,
        packets: run.stats.packets,
        bytes: run.stats.bytes_read,
        first_ts: run.first_ts,
        last_ts: run.last_ts,
        damage: run.damage.as_ref().map(|d| d.to_string()),
    };
    let page = html::render(&c, &view, &cap, args.title.as_deref(), html::MAX_SECTIONS);
    let written = if to_stdout {
        let mut o = std::io::stdout().lock();
        o.write_all(page.as_bytes()).and_then(|_| o.flush())
    } else {
        std::fs::write(&args.output, page.as_bytes())
    };
    if let Err(e) = written {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("kwire: cannot write {}: {e}", args.output.display());
            return ExitCode::from(1);
        }
    }
    if !to_stdout {
        let incidents = story::incidents(&c, &view).len();
        eprintln!(
            "kwire: wrote {} ({} KB, {incidents} incident{})",
            args.output.display(),
            page.len().div_ceil(1024),
            if incidents == 1 { "" } else { "s" }
        );
    }
    if let Some(d) = run.damage {
        eprintln!("kwire: {d} (everything before it was processed and reported)");
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}

/// Packet time an alert waits for its siblings before its report is written.
const SETTLE_PACKET_NS: i64 = 2_000_000_000;
/// Wall time it waits when traffic stops.
const SETTLE_WALL: Duration = Duration::from_secs(5);

/// `kwire run --report-dir`: a collector fed by the live engine, writing a report after alerts.
pub struct LiveReporter {
    args: LiveReportArgs,
    dir: PathBuf,
    source: String,
    c: Collector,
    /// The first alert not yet in a report: its packet time, incident id, and when it came (wall).
    pending: Option<(Timestamp, String, Instant)>,
    pub written: u32,
    /// Alerts that came after the file bound.
    pub not_reported: u64,
}

impl LiveReporter {
    /// Creates the directory; `Err` is a one-line message (the agent does not start).
    pub fn new(args: &LiveReportArgs, source: String) -> Result<Option<LiveReporter>, String> {
        let Some(dir) = args.report_dir.clone() else {
            return Ok(None);
        };
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("--report-dir {}: {e}", dir.display()))?;
        Ok(Some(LiveReporter {
            args: args.clone(),
            dir,
            source,
            c: Collector::new(OutputFilter::default()),
            pending: None,
            written: 0,
            not_reported: 0,
        }))
    }

    /// What the engine needs to be configured with.
    pub fn configure(cfg: &mut kwire_engine::EngineConfig) {
        cfg.timeline = true;
        cfg.exchange_facts = true;
    }

    pub fn add(&mut self, o: &Output) {
        self.c.add(o);
        if let Output::Alert(a) = o {
            if self.written >= self.args.report_max_files {
                self.not_reported += 1;
                return;
            }
            if self.pending.is_none() {
                let id = story::str_field(a, "incident_id").unwrap_or_default();
                self.pending = Some((a.ts, id, Instant::now()));
            }
        }
    }

    /// Writes the pending report when its alert has settled (or `now` is the end). Returns the file
    /// written, or an error line to log.
    pub fn poll(&mut self, engine: &Engine, end: bool) -> Option<Result<PathBuf, String>> {
        let (ts, id, since) = self.pending.clone()?;
        let settled = end
            || engine.last_ts().nanos_since(ts) >= SETTLE_PACKET_NS
            || since.elapsed() >= SETTLE_WALL;
        if !settled {
            return None;
        }
        self.pending = None;
        self.written += 1;
        let view = EngineView::of(engine, engine.live_summary());
        let s = &view.summary;
        let cap = Capture {
            files: vec![self.source.clone()],
            live: Some(format!(
                "kwire run, report {} of at most {}",
                self.written, self.args.report_max_files
            )),
            packets: s.packets.packets,
            bytes: s.packets.bytes,
            first_ts: engine.first_ts(),
            last_ts: engine.first_ts().map(|_| engine.last_ts()),
            damage: None,
        };
        let max = self.args.report_max_mb.saturating_mul(1_000_000) as usize;
        let title = format!("kwire report: alert at {}", ts.to_rfc3339());
        let mut page = String::new();
        for sections in [html::MAX_SECTIONS, 10, 1] {
            page = html::render(&self.c, &view, &cap, Some(&title), sections);
            if page.len() <= max {
                break;
            }
        }
        if page.len() > max {
            return Some(Err(format!(
                "report of incident {id} not written: {} bytes, over --report-max-mb {}",
                page.len(),
                self.args.report_max_mb
            )));
        }
        let safe: String = id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = self
            .dir
            .join(format!("kwire-report-{:03}-{safe}.html", self.written));
        // Written whole then renamed: a reader never sees half a page.
        let tmp = path.with_extension("html.tmp");
        let r = std::fs::write(&tmp, page.as_bytes()).and_then(|_| std::fs::rename(&tmp, &path));
        Some(
            r.map(|_| path.clone())
                .map_err(|e| format!("--report-dir: {}: {e}", path.display())),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real capture fed packet by packet as `kwire run` feeds the engine: the report waits for the
    /// alerts raised close together (two late commits 0.55 s apart), writes one file for them, and
    /// stops at the file bound.
    #[test]
    fn live_reports_settle_group_alerts_and_stop_at_the_bound() {
        let dir = std::env::temp_dir().join(format!("kwire-live-report-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let args = LiveReportArgs {
            report_dir: Some(dir.clone()),
            report_max_files: 1,
            report_max_mb: 8,
        };
        let mut r = LiveReporter::new(&args, "pcap: lo".into())
            .unwrap()
            .unwrap();
        let mut cfg = kwire_engine::EngineConfig::default();
        LiveReporter::configure(&mut cfg);
        let mut engine = Engine::new(cfg);
        // Two late commits 0.55 s apart, each raising 4 alert lines at one instant.
        let pcap = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/harness/commit-after-revoke-twice-cooperative-mock.pcap");
        let mut file = inputs::Inputs::open(&[pcap], kwire_capture::ReadMode::Auto).unwrap();
        let mut written = Vec::new();
        while let Some((_, p)) = file.next_packet() {
            engine.on_packet(p.ts, p.link, p.data, &mut |o| r.add(&o));
            if let Some(w) = r.poll(&engine, false) {
                written.push(w.unwrap());
            }
        }
        engine.finish(&mut |o| r.add(&o));
        assert!(
            r.poll(&engine, true).is_none(),
            "nothing pending at the end"
        );
        assert_eq!(written.len(), 1, "{written:?}");
        let name = written[0]
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        assert!(
            name.starts_with("kwire-report-001-") && name.ends_with("-1.html"),
            "{name}"
        );
        let page = std::fs::read_to_string(&written[0]).unwrap();
        // The two commits 0.55 s apart settle into one report: 4 incidents, each with both lines.
        assert_eq!(page.matches("<article class=\"incident ").count(), 4);
        assert_eq!(page.matches("line 2 of 2").count(), 4);
        assert!(page.contains("report 1 of at most 1"));
        assert_eq!(r.not_reported, 0);
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file left"
        );
        // Past the bound, an alert is counted, not reported.
        let again = r.c.alerts[0].a.clone();
        r.add(&Output::Alert(Box::new(again)));
        assert_eq!(r.not_reported, 1);
        assert!(r.poll(&engine, true).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
