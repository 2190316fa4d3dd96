//! `kwire replay FILE...`: capture files through the engine to stdout (or `--output`).
//!
//! Easy to get wrong: `--output` is checked against the inputs before anything is opened for writing (an
//! output over the capture would truncate it); output filters narrow only what is printed (the engine sees
//! every packet); `--fail-on` counts the alerts printed, and its status 3 comes after the damage (2) and
//! export (1) statuses.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use std::path::PathBuf;

use kwire_capture::{CaptureError, FileStats};
use kwire_flow::Timestamp;

use crate::inputs::{self, Inputs};
use kwire_engine::{Engine, EngineConfig, NoticeRecord, Output, Severity};

use crate::{config, human, otlp, InputArgs, OutputFilter, Progress, ReplayArgs};

/// How long the end of a replay waits for the OTLP backend to take what is queued.
const EXPORT_FINISH_TIMEOUT: Duration = Duration::from_secs(30);

/// What reading a whole file produced besides the outputs.
pub struct FileRun {
    pub engine: Engine,
    pub stats: FileStats,
    pub damage: Option<CaptureError>,
    pub took: Duration,
    /// The input files, globs expanded.
    pub files: Vec<PathBuf>,
    /// Timestamps of the first and last packet read (the capture's time range).
    pub first_ts: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
}

/// Packets between two `tick` calls (the exporter's metrics clock is packet time).
const TICK_PACKETS: u64 = 1024;

/// Opens the captures (several files are merged by packet time) and runs every packet through a new
/// engine; outputs go to `emit` (the capture-damage notice included). `Err` is a one-line message for
/// stderr (exit status 2). `files` are the inputs already expanded ([`inputs::expand`]).
pub fn run_file(
    input: &InputArgs,
    files: &[PathBuf],
    cfg: EngineConfig,
    emit: &mut dyn FnMut(&Output) -> bool,
    tick: &mut dyn FnMut(&Engine),
) -> Result<FileRun, String> {
    // `-` reads standard input (e.g. `tcpdump -w - | kwire replay -`).
    let mut file = Inputs::open(files)?;
    let mut engine = Engine::new(cfg);
    // Unknown for standard input: progress then shows bytes and rate but no percentage.
    let total = file.len();
    let show_progress = match input.progress {
        Progress::Always => true,
        Progress::Never => false,
        Progress::Auto => {
            io::stderr().is_terminal() && total.is_some_and(|t| t > 256 * 1024 * 1024)
        }
    };
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut n: u64 = 0;
    let mut first_ts = None;
    let mut last_ts = None;
    let go_on = std::cell::Cell::new(true);
    let mut out = |o: Output| {
        if !emit(&o) {
            go_on.set(false);
        }
    };
    while let Some((frame, p)) = file.next_packet() {
        first_ts.get_or_insert(p.ts);
        last_ts = Some(p.ts);
        // Several files merge into one stream: each packet keeps its number in its own file.
        engine.number_frames(Some(frame));
        engine.on_packet(p.ts, p.link, p.data, &mut out);
        n += 1;
        if n.is_multiple_of(TICK_PACKETS) {
            tick(&engine);
        }
        if show_progress && n.is_multiple_of(65536) && last_report.elapsed().as_millis() >= 500 {
            last_report = Instant::now();
            let line = progress_line(file.position(), total, started.elapsed(), n);
            eprint!("\r{line}");
        }
        if !go_on.get() {
            break;
        }
    }
    if show_progress {
        eprintln!();
    }
    let damage = file.take_damage();
    engine.finish(&mut out);
    if let Some(d) = &damage {
        out(Output::Notice(NoticeRecord::new(
            engine.last_ts(),
            "capture_damaged",
            d.to_string(),
        )));
    }
    Ok(FileRun {
        engine,
        stats: file.stats(),
        damage,
        took: started.elapsed(),
        files: files.to_vec(),
        first_ts,
        last_ts,
    })
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

pub fn run(args: &ReplayArgs) -> ExitCode {
    let files = match inputs::expand(&args.input.files) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("kwire: {e}");
            return ExitCode::from(2);
        }
    };
    // Before anything is opened for writing (the output file, an OTLP spool).
    if let Some(o) = &args.output {
        if let Err(e) = inputs::refuse_output_over_input(o, &files) {
            eprintln!("kwire: {e}");
            return ExitCode::from(2);
        }
    }
    let otlp_file = config::otlp_config(args.input.config.as_deref());
    let mut exporter =
        match otlp_file.and_then(|f| otlp::start(&args.otlp, &f, true, otlp::stderr_log())) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("kwire: {e}");
                return ExitCode::from(2);
            }
        };
    let cfg = match config::engine_config(&args.input) {
        Ok(mut c) => {
            c.notices = !args.no_notices;
            // Topic and group filters read the exchange's resolved facts (topic ids named).
            c.exchange_facts =
                exporter.is_some() || args.filter.topic.is_some() || args.filter.group.is_some();
            c
        }
        Err(e) => {
            eprintln!("kwire: {e}");
            return ExitCode::from(2);
        }
    };
    let out = match crate::output(args.output.as_deref()) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("kwire: {e}");
            return ExitCode::from(2);
        }
    };
    let mut sink = Sink {
        w: BufWriter::with_capacity(1 << 16, out),
        json: args.json,
        exchanges: !args.no_exchanges,
        err: None,
        human: human::Collector::default(),
        filter: args.filter.clone(),
        worst: None,
    };
    // Both callbacks reach the exporter; they never run at the same time.
    let shared = std::cell::RefCell::new(exporter.take());
    let emitted = run_file(
        &args.input,
        &files,
        cfg,
        &mut |o| {
            if let Some(x) = shared.borrow_mut().as_mut() {
                x.on_output(o);
            }
            sink.emit(o)
        },
        &mut |engine| {
            if let Some(x) = shared.borrow_mut().as_mut() {
                if x.tick(engine.last_ts()) {
                    x.export_metrics(engine.last_ts(), &otlp::health(engine, None));
                }
            }
        },
    );
    exporter = shared.into_inner();
    let run = match emitted {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kwire: {e}");
            return ExitCode::from(2);
        }
    };
    let mut export_failed = false;
    if let Some(x) = exporter.take() {
        let report = x.finish(
            run.engine.last_ts(),
            &otlp::health(&run.engine, None),
            EXPORT_FINISH_TIMEOUT,
        );
        let (msg, failed) = otlp::describe(&report, args.otlp.otlp_spool.is_some());
        eprintln!("kwire: {msg}");
        export_failed = failed;
    }
    let Sink {
        mut w,
        err: mut write_err,
        human: human_sum,
        worst,
        ..
    } = sink;
    let mut summary = run.engine.summary().clone();
    summary.fidelity.snaplen_cut_packets = run.stats.truncated_packets;
    let summary = &summary;
    if args.json {
        let mut v = serde_json::to_value(summary).unwrap_or_default();
        if let Some(m) = v.as_object_mut() {
            m.insert(
                "file".into(),
                human::file_json(&run.files, &run.stats, run.damage.as_ref()),
            );
            m.insert(
                "first_ts".into(),
                run.first_ts.map(|t| t.to_rfc3339()).into(),
            );
            m.insert("last_ts".into(), run.last_ts.map(|t| t.to_rfc3339()).into());
            m.insert("kwire_version".into(), env!("CARGO_PKG_VERSION").into());
            if args.filter.is_set() {
                m.insert("output_filter".into(), args.filter.describe().into());
            }
        }
        if write_err.is_none() {
            let r = serde_json::to_writer(&mut w, &v)
                .map_err(io::Error::from)
                .and_then(|_| w.write_all(b"\n"));
            if let Err(e) = r {
                write_err = Some(e);
            }
        }
    } else {
        let _ = human::print(
            &mut w,
            &run.files,
            &run.stats,
            summary,
            &human_sum,
            &args.filter,
            run.damage.as_ref(),
            run.took,
        );
    }
    if let Err(e) = w.flush() {
        write_err.get_or_insert(e);
    }
    if let Some(e) = write_err {
        if e.kind() != io::ErrorKind::BrokenPipe {
            eprintln!("kwire: cannot write output: {e}");
            return ExitCode::from(1);
        }
    }
    if let Some(d) = run.damage {
        eprintln!("kwire: {d} (everything before it was processed and reported)");
        return ExitCode::from(2);
    }
    if export_failed {
        return ExitCode::from(1);
    }
    if let Some(f) = args.fail_on {
        if f.hit(worst) {
            eprintln!(
                "kwire: --fail-on {}: a {} alert was raised (exit status {})",
                f.as_str(),
                worst.map(|w| w.as_str()).unwrap_or("-"),
                crate::EXIT_ALERTS
            );
            return ExitCode::from(crate::EXIT_ALERTS);
        }
    }
    ExitCode::SUCCESS
}

/// Where outputs go: JSON lines, or the readable summary's collector.
struct Sink<W: Write> {
    w: W,
    json: bool,
    exchanges: bool,
    err: Option<io::Error>,
    human: human::Collector,
    filter: OutputFilter,
    /// The most severe alert printed (for --fail-on).
    worst: Option<Severity>,
}

impl<W: Write> Sink<W> {
    /// Returns false once output can no longer be written (e.g. a closed pipe): stop reading.
    fn emit(&mut self, o: &Output) -> bool {
        match o {
            Output::Exchange(x) if !self.filter.exchange(x) => return true,
            Output::Alert(a) => {
                if !self.filter.alert(a) {
                    return true;
                }
                self.worst = self.worst.max(Some(a.severity));
            }
            _ => {}
        }
        if !self.json {
            self.human.add(o);
            return true;
        }
        if self.err.is_some() {
            return false;
        }
        if matches!(o, Output::Exchange(_)) && !self.exchanges {
            return true;
        }
        let r = serde_json::to_writer(&mut self.w, o)
            .map_err(io::Error::from)
            .and_then(|_| self.w.write_all(b"\n"));
        if let Err(e) = r {
            self.err = Some(e);
            return false;
        }
        true
    }
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
