//! `kwire replay FILE`: a capture file through the engine to stdout.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Instant;

use kwire_capture::{CaptureError, PcapFile};
use kwire_engine::{Engine, EngineConfig, NoticeRecord, Output};

use crate::{human, Progress, ReplayArgs};

pub fn run(args: &ReplayArgs) -> ExitCode {
    let mut cfg = EngineConfig::default();
    cfg.ports = args.ports.clone();
    cfg.notices = !args.no_notices;
    cfg.kafka.max_frame_bytes = args.max_frame_bytes;
    cfg.flows.max_flows = args.max_flows.max(1);

    let mut file = match PcapFile::open(&args.file) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("kwire: {e}");
            return ExitCode::from(2);
        }
    };
    let stdout = io::stdout();
    let mut sink = Sink {
        w: BufWriter::with_capacity(1 << 16, stdout.lock()),
        json: args.json,
        err: None,
        human: human::Collector::default(),
    };
    let mut engine = Engine::new(cfg);
    let json = args.json;

    let total = file.len().unwrap_or(0);
    let show_progress = match args.progress {
        Progress::Always => true,
        Progress::Never => false,
        Progress::Auto => io::stderr().is_terminal() && total > 256 * 1024 * 1024,
    };
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut damage: Option<CaptureError> = None;
    let mut n: u64 = 0;
    loop {
        match file.next_packet() {
            Ok(Some(p)) => {
                engine.on_packet(p.ts, p.link, p.data, &mut |o| sink.emit(&o));
                n += 1;
                if show_progress && n % 65536 == 0 && last_report.elapsed().as_millis() >= 500 {
                    last_report = Instant::now();
                    let pos = file.position();
                    let secs = started.elapsed().as_secs_f64().max(1e-9);
                    eprint!(
                        "\rkwire: {:5.1}%  {} MB  {:.0} MB/s  {} packets",
                        100.0 * pos as f64 / total.max(1) as f64,
                        pos >> 20,
                        pos as f64 / secs / 1e6,
                        n
                    );
                }
            }
            Ok(None) => break,
            Err(e) => {
                damage = Some(e);
                break;
            }
        }
        if sink.err.is_some() {
            break;
        }
    }
    if show_progress {
        eprintln!();
    }
    engine.finish(&mut |o| sink.emit(&o));
    if let Some(d) = &damage {
        let n = NoticeRecord::new(engine.last_ts(), "capture_damaged", d.to_string());
        sink.emit(&Output::Notice(n));
    }
    let Sink { mut w, err: mut write_err, human: human_sum, .. } = sink;
    let fs = file.stats().clone();
    let summary = engine.summary();
    if json {
        let mut v = serde_json::to_value(summary).unwrap_or_default();
        if let Some(m) = v.as_object_mut() {
            m.insert("file".into(), human::file_json(&args.file, &fs, damage.as_ref()));
        }
        if write_err.is_none() {
            let r = serde_json::to_writer(&mut w, &v).map_err(io::Error::from).and_then(|_| w.write_all(b"\n"));
            if let Err(e) = r {
                write_err = Some(e);
            }
        }
    } else {
        let _ = human::print(&mut w, &args.file, &fs, summary, &human_sum, damage.as_ref(), started.elapsed());
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
    if let Some(d) = damage {
        eprintln!("kwire: {d} (everything before it was processed and reported)");
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}

/// Where outputs go: JSON lines, or the readable summary's collector.
struct Sink<W: Write> {
    w: W,
    json: bool,
    err: Option<io::Error>,
    human: human::Collector,
}

impl<W: Write> Sink<W> {
    fn emit(&mut self, o: &Output) {
        if !self.json {
            self.human.add(o);
            return;
        }
        if self.err.is_some() {
            return;
        }
        let r = serde_json::to_writer(&mut self.w, o).map_err(io::Error::from).and_then(|_| self.w.write_all(b"\n"));
        if let Err(e) = r {
            self.err = Some(e);
        }
    }
}
