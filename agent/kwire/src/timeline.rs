//! `kwire timeline FILE...`: per-client offset timelines and consumer group events (join, sync with the
//! partitions assigned and revoked, leave, heartbeat errors) as a table (or JSON lines), with alerts in
//! place; `--group`, `--since`, `--until` narrow it, `-o` writes it to a file.
//!
//! `--group G` keeps G's events, rows naming G (commits, offset fetches), alerts about G and the rows of
//! clients seen joining or syncing in G (a consumer's fetches do not name its group on the wire); a
//! client's rows before its first event in G are not kept.
//!
//! Easy to get wrong: rows are produced when an exchange completes (its response), but carry the time of
//! what they describe (a fetch request's offset at request time): they are sorted by time before printing,
//! held in memory up to [`MAX_HELD_ROWS`] (then printed sorted in batches, which may break the order
//! across batches: narrow with --client/--topic/--partition).

use std::collections::HashSet;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use kwire_engine::model::Name;
use kwire_engine::{EngineConfig, Output};
use kwire_flow::Timestamp;

use crate::drive::drive_files;
use crate::{config, TimelineArgs};

/// Rows held for sorting before printing.
const MAX_HELD_ROWS: usize = 2_000_000;

/// The output of `kwire timeline` (`--output` or stdout).
type Out = Box<dyn Write>;

/// The inputs, the engine's configuration (timeline rows on, notices off) and the output. `Err` is a
/// one-line message (exit status 2).
fn prepare(args: &TimelineArgs) -> Result<(Vec<PathBuf>, EngineConfig, Out), String> {
    let files = crate::inputs::expand(&args.input.files)?;
    let mut cfg = config::engine_config(&args.input.engine, args.input.tls_keylog.as_ref())?;
    cfg.timeline = true;
    cfg.notices = false;
    if let Some(o) = &args.output {
        crate::inputs::refuse_output_over_input(o, &files)?;
    }
    let out = crate::output(args.output.as_deref())?;
    Ok((files, cfg, out))
}

pub fn run(args: &TimelineArgs) -> ExitCode {
    let (files, cfg, out) = match prepare(args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("kwire: {e}");
            return ExitCode::from(2);
        }
    };
    let mut w = BufWriter::new(out);
    let mut rows = 0u64;
    // Clients seen in --group's events (their offset rows do not name the group).
    let mut members: HashSet<Name> = HashSet::new();
    let in_window =
        |ts: Timestamp| args.since.is_none_or(|s| ts >= s) && args.until.is_none_or(|u| ts <= u);
    // (RFC 3339 time, arrival order, line): RFC 3339 with fixed-width fractions sorts as text.
    let mut held: Vec<(String, u64, String)> = Vec::new();
    let flush =
        |held: &mut Vec<(String, u64, String)>, w: &mut BufWriter<Box<dyn Write>>| -> bool {
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
    let source = args.input.files(&files);
    let result = drive_files(source, cfg, &mut |o: &Output| {
        if !ok {
            return false;
        }
        let line = match o {
            Output::Timeline(t) => {
                let ts = t.ts.to_rfc3339();
                if !matches_filter(args, Some(&t.client_id), Some(&t.topic), Some(t.partition))
                    || !in_window(t.ts)
                {
                    return true;
                }
                if let Some(g) = &args.group {
                    let named = t.group.as_deref().map(|x| x == g);
                    if !named.unwrap_or_else(|| members.contains(&t.client_id)) {
                        return true;
                    }
                }
                if !args.all && matches!(t.what, "fetch_hwm" | "fetch_lso" | "fetch_log_start") {
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
            Output::Group(e) => {
                if args.group.as_deref().is_some_and(|g| *e.group != *g) {
                    return true;
                }
                if args.group.is_some() {
                    members.insert(e.client_id.clone());
                }
                let parts = || e.assigned.iter().chain(&e.revoked);
                let partitions_match = parts().next().is_none()
                    || parts()
                        .any(|tp| matches_filter(args, None, Some(&tp.topic), Some(tp.partition)));
                if !matches_filter(args, Some(&e.client_id), None, None)
                    || !partitions_match
                    || !in_window(e.ts)
                {
                    return true;
                }
                let ts = e.ts.to_rfc3339();
                if args.json {
                    serde_json::to_string(&Output::Group(e.clone()))
                        .ok()
                        .map(|l| (ts, l))
                } else {
                    let list = |v: &[kwire_engine::model::Tp]| {
                        v.iter()
                            .map(|tp| format!("{}-{}", tp.topic, tp.partition))
                            .collect::<Vec<_>>()
                            .join(" ")
                    };
                    let mut note = Vec::new();
                    if let Some(m) = &e.member_id {
                        note.push(format!("member {m}"));
                    }
                    if let Some(p) = &e.protocol {
                        note.push(format!("assignor {p}"));
                    }
                    if e.what == "sync" || e.what == "assignment" {
                        note.push(format!("assigned [{}]", list(&e.assigned)));
                    }
                    if !e.revoked.is_empty() {
                        note.push(format!("revoked [{}]", list(&e.revoked)));
                    }
                    if let Some(err) = e.error {
                        note.push(err.to_string());
                    }
                    Some((
                        ts,
                        format!(
                            "{:<27} {:<24} {:<22} {:<20} {:>12}  {:<21} {:>4}  {}",
                            e.ts,
                            e.client_id,
                            format!("group_{}", e.what),
                            format!("group {}", e.group),
                            e.generation
                                .map(|g| format!("gen {g}"))
                                .unwrap_or_else(|| "-".into()),
                            e.broker.to_string(),
                            e.conn,
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
                ) || !in_window(a.ts)
                {
                    return true;
                }
                if let Some(g) = &args.group {
                    let named = a.fields.get("group").and_then(|v| v.as_str());
                    let about = match named {
                        Some(n) => n == g,
                        None => a.client_id.as_ref().is_some_and(|c| members.contains(c)),
                    };
                    if !about {
                        return true;
                    }
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
    });
    flush(&mut held, &mut w);
    let _ = w.flush();
    match result {
        Err(e) => {
            eprintln!("kwire: {e}");
            ExitCode::from(2)
        }
        Ok(run) => {
            if rows == 0 && !args.json {
                eprintln!("kwire: no timeline rows matched (check --client/--topic/--partition/--group/--since/--until; `kwire replay` lists the clients)");
            }
            if let Some(d) = run.damage {
                eprintln!("kwire: {d} (everything before it was processed and reported)");
                return ExitCode::from(2);
            }
            ExitCode::SUCCESS
        }
    }
}

/// `--since` / `--until`: RFC 3339 (`2026-11-22T18:51:00Z`, `2026-11-22 18:51:00.5+01:00`); without an
/// offset the time is UTC. Written here (days-from-civil, Howard Hinnant's algorithm) like the printing
/// side in kwire-flow: no date crate for one format.
pub fn parse_time(s: &str) -> Result<Timestamp, String> {
    let bad = || format!("{s:?}: expected RFC 3339, e.g. 2026-11-22T18:51:00Z");
    let b = s.trim().as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return Err(bad());
    }
    if b[13] != b':' || b[16] != b':' {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        let t = std::str::from_utf8(&b[r]).map_err(|_| bad())?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        t.parse::<i64>().map_err(|_| bad())
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return Err(bad());
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return Err(bad());
        }
        for _ in (i - start).min(9)..9 {
            nanos *= 10;
        }
    }
    let offset_s = match &b[i..] {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), rest @ ..] if rest.len() == 5 && rest[2] == b':' => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let o = oh * 3600 + om * 60;
            if *sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return Err(bad()),
    };
    // Days from civil (proleptic Gregorian).
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset_s;
    Ok(Timestamp::from_secs_nanos(secs, nanos as u32))
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

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn rfc3339_round_trips() {
        for s in [
            "2026-11-22T18:51:06.249042Z",
            "1970-01-01T00:00:00.000000Z",
            "2000-02-29T23:59:59.999999Z",
        ] {
            assert_eq!(parse_time(s).unwrap().to_rfc3339(), s);
        }
        assert_eq!(
            parse_time("2026-11-22 19:51:06+01:00")
                .unwrap()
                .to_rfc3339(),
            "2026-11-22T18:51:06.000000Z"
        );
        assert_eq!(
            parse_time("2026-11-22T18:51:06.5").unwrap().to_rfc3339(),
            "2026-11-22T18:51:06.500000Z"
        );
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("2026-13-01T00:00:00Z").is_err());
        assert!(parse_time("2026-11-22T18:51:06.Z").is_err());
    }
}
