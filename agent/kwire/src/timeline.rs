//! `kwire timeline FILE...`: per-client offset timelines as a table (or JSON lines), with alerts in place.
//!
//! Easy to get wrong: rows are produced when an exchange completes (its response), but carry the time of
//! what they describe (a fetch request's offset at request time): they are sorted by time before printing,
//! held in memory up to [`MAX_HELD_ROWS`] (then printed sorted in batches, which may break the order
//! across batches: narrow with --client/--topic/--partition).

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use kwire_engine::model::Name;
use kwire_engine::Output;

use crate::{config, replay, TimelineArgs};

/// Rows held for sorting before printing.
const MAX_HELD_ROWS: usize = 2_000_000;

pub fn run(args: &TimelineArgs) -> ExitCode {
    let files = match crate::inputs::expand(&args.input.files) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("kwire: {e}");
            return ExitCode::from(2);
        }
    };
    let mut cfg = match config::engine_config(&args.input) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kwire: {e}");
            return ExitCode::from(2);
        }
    };
    cfg.timeline = true;
    cfg.notices = false;
    let stdout = io::stdout();
    let mut w = BufWriter::new(stdout.lock());
    let mut rows = 0u64;
    // (RFC 3339 time, arrival order, line): RFC 3339 with fixed-width fractions sorts as text.
    let mut held: Vec<(String, u64, String)> = Vec::new();
    let flush =
        |held: &mut Vec<(String, u64, String)>, w: &mut BufWriter<io::StdoutLock<'_>>| -> bool {
            held.sort();
            let mut ok = true;
            for (_, _, l) in held.drain(..) {
                if writeln!(w, "{l}").is_err() {
                    ok = false;
                    break;
                }
            }
            ok
        };
    if !args.json {
        let _ = writeln!(
            w,
            "{:<27} {:<24} {:<22} {:<20} {:>12}  {:<21} {:>4}  note",
            "ts", "client", "what", "partition", "offset", "broker", "conn"
        );
    }
    let mut ok = true;
    // Last value of the "told" rows per (client, topic, partition, what), to show changes only.
    let mut last: std::collections::HashMap<(Name, Name, i32, &'static str), i64> =
        std::collections::HashMap::new();
    let result = replay::run_file(
        &args.input,
        &files,
        cfg,
        &mut |o| {
            if !ok {
                return false;
            }
            let line = match o {
                Output::Timeline(t) => {
                    let ts = t.ts.to_rfc3339();
                    if !matches_filter(args, Some(&t.client_id), Some(&t.topic), Some(t.partition))
                    {
                        return true;
                    }
                    if !args.all && matches!(t.what, "fetch_hwm" | "fetch_lso" | "fetch_log_start")
                    {
                        let key = (t.client_id.clone(), t.topic.clone(), t.partition, t.what);
                        if last.insert(key, t.offset) == Some(t.offset) {
                            return true;
                        }
                    }
                    if args.json {
                        serde_json::to_string(t).ok().map(|l| (ts, l))
                    } else {
                        let mut note = Vec::new();
                        if let Some(e) = t.leader_epoch {
                            note.push(format!("epoch {e}"));
                        }
                        if let Some(e) = t.error {
                            note.push(e.to_string());
                        }
                        if let Some(g) = &t.group {
                            note.push(format!("group {g}"));
                        }
                        Some((
                            ts,
                            format!(
                                "{:<27} {:<24} {:<22} {:<20} {:>12}  {:<21} {:>4}  {}",
                                t.ts,
                                t.client_id,
                                t.what,
                                format!("{}-{}", t.topic, t.partition),
                                t.offset,
                                t.broker.to_string(),
                                t.conn,
                                note.join(", ")
                            ),
                        ))
                    }
                }
                Output::Alert(a) => {
                    if !matches_filter(
                        args,
                        a.client_id.as_deref(),
                        a.topic.as_deref(),
                        a.partition,
                    ) {
                        return true;
                    }
                    let ts = a.ts.to_rfc3339();
                    if args.json {
                        serde_json::to_string(a).ok().map(|l| (ts, l))
                    } else {
                        Some((
                            ts,
                            format!(
                                "{:<27} {:<24} !! {} {}: {}",
                                a.ts.to_rfc3339(),
                                a.client_id.as_deref().unwrap_or("-"),
                                a.severity.as_str().to_uppercase(),
                                a.kind.as_str(),
                                a.explanation
                            ),
                        ))
                    }
                }
                _ => None,
            };
            if let Some((ts, l)) = line {
                rows += 1;
                held.push((ts, rows, l));
                if held.len() >= MAX_HELD_ROWS && !flush(&mut held, &mut w) {
                    ok = false;
                }
            }
            ok
        },
        &mut |_| {},
    );
    flush(&mut held, &mut w);
    let _ = w.flush();
    match result {
        Err(e) => {
            eprintln!("kwire: {e}");
            ExitCode::from(2)
        }
        Ok(run) => {
            if rows == 0 && !args.json {
                eprintln!("kwire: no timeline rows matched (check --client/--topic/--partition; `kwire replay` lists the clients)");
            }
            if let Some(d) = run.damage {
                eprintln!("kwire: {d} (everything before it was processed and reported)");
                return ExitCode::from(2);
            }
            ExitCode::SUCCESS
        }
    }
}

fn matches_filter(
    args: &TimelineArgs,
    client: Option<&str>,
    topic: Option<&str>,
    partition: Option<i32>,
) -> bool {
    if args.client.as_deref().is_some_and(|c| client != Some(c)) {
        return false;
    }
    if args.topic.as_deref().is_some_and(|t| topic != Some(t)) {
        return false;
    }
    if args
        .partition
        .is_some_and(|p| partition.is_some_and(|x| x != p))
    {
        return false;
    }
    true
}
