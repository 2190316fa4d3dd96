//! `kwire replay FILE...`: capture files through the engine to stdout (or `--output`), in the driver
//! shape of [`crate::drive`]: the files are the source, the sinks the output (JSON lines or the readable
//! summary) and, with `--otlp`, the exporter.
//!
//! Easy to get wrong: `--output` is checked against the inputs before anything is opened for writing (an
//! output over the capture would truncate it); output filters narrow only what is printed (the engine sees
//! every packet); `--fail-on` counts the alerts printed, and its status 3 comes after the output (1),
//! damage (2) and export (1) statuses.

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use kwire_engine::{EngineConfig, Severity};
use kwire_export::Exporter;

use crate::drive::{drive_files, FileRun, Sinks};
use crate::sink::{Exchanges, Flush, Form, OutputSink};
use crate::{config, human, inputs, otlp, ReplayArgs};

/// How long the end of a replay waits for the OTLP backend to take what is queued.
const EXPORT_FINISH_TIMEOUT: Duration = Duration::from_secs(30);

pub fn run(args: &ReplayArgs) -> ExitCode {
    let (files, mut sinks, cfg) = match prepare(args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("kwire: {e}");
            return ExitCode::from(2);
        }
    };
    let source = args.input.files(&files);
    let run = match drive_files(source, cfg, &mut sinks) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kwire: {e}");
            return ExitCode::from(2);
        }
    };
    let export_failed = finish_export(sinks.otlp.take(), &run, args);
    let worst = sinks.out.tally().worst;
    let write_err = write_summary(sinks.out, &run, args);
    exit_status(write_err, run, export_failed, worst, args)
}

/// Everything before the first packet: the inputs, the output guard, the exporter, the engine's
/// configuration, the output. `Err` is a one-line message (exit status 2).
fn prepare(args: &ReplayArgs) -> Result<(Vec<PathBuf>, Sinks, EngineConfig), String> {
    let files = inputs::expand(&args.input.files)?;
    // Before anything is opened for writing (the output file, an OTLP spool).
    if let Some(o) = &args.output {
        inputs::refuse_output_over_input(o, &files)?;
    }
    let otlp_file = config::otlp_config(args.input.engine.config.as_deref())?;
    let exporter = otlp::start(&args.otlp, &otlp_file, true, otlp::stderr_log())?;
    let mut cfg = config::engine_config(&args.input.engine, args.input.tls_keylog.as_ref())?;
    cfg.notices = !args.no_notices;
    // Topic and group filters read the exchange's resolved facts (topic ids named).
    cfg.exchange_facts =
        exporter.is_some() || args.filter.topic.is_some() || args.filter.group.is_some();
    let form = if args.json {
        Form::JsonLines(Exchanges::unless_left_out(args.no_exchanges))
    } else {
        Form::Summary(Box::default())
    };
    let out = OutputSink::new(
        crate::output(args.output.as_deref())?,
        form,
        args.filter.clone(),
        Flush::AtEnd,
    );
    let mut sinks = Sinks::output_only(out);
    sinks.otlp = exporter;
    Ok((files, sinks, cfg))
}

/// Waits for the backend to take what is queued; whether alerts were lost (exit status 1).
fn finish_export(exporter: Option<Exporter>, run: &FileRun, args: &ReplayArgs) -> bool {
    let Some(x) = exporter else {
        return false;
    };
    let report = x.finish(
        run.engine.last_ts(),
        &otlp::health(&run.engine, None),
        EXPORT_FINISH_TIMEOUT,
    );
    let (msg, failed) = otlp::describe(&report, args.otlp.otlp_spool.is_some());
    eprintln!("kwire: {msg}");
    failed
}

/// The summary: the last JSON line, or the readable summary. The first write error, if any.
fn write_summary(mut out: OutputSink, run: &FileRun, args: &ReplayArgs) -> Option<io::Error> {
    let summary = run.summary();
    if args.json {
        let mut v = serde_json::to_value(&summary).unwrap_or_default();
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
        out.json_summary(&v);
    } else {
        out.closing(|mut w, form| {
            if let Form::Summary(c) = form {
                // Errors show at the flush below (the summary is written whole or not at all).
                let _ = human::print(&mut w, run, &summary, c, &args.filter);
            }
            Ok(())
        });
    }
    out.finish()
}

/// Exit status: 1 output broken (not a closed pipe), 2 damaged input, 1 alerts not exported, 3
/// `--fail-on`, in that order.
fn exit_status(
    write_err: Option<io::Error>,
    run: FileRun,
    export_failed: bool,
    worst: Option<Severity>,
    args: &ReplayArgs,
) -> ExitCode {
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
        if let Some(msg) = f.message(worst) {
            eprintln!("kwire: {msg}");
            return ExitCode::from(crate::EXIT_ALERTS);
        }
    }
    ExitCode::SUCCESS
}
