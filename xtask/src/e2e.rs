//! `cargo xtask e2e`: fresh captures from real clients, replayed through `kwire replay --json`,
//! checked against what the scenario is known to contain.
//!
//! The checks follow the JSON output contract in the design notes ("Output contract"): one object
//! per line with `type`; exchanges carry `client_id`, `api_key`, `api_version`, `response_ts`
//! (null when unanswered), `error_codes` and the decoded request fields (`acks` for Produce),
//! looked up at the top level or under `request`.
//! Easy to get wrong: brokers that are not Apache Kafka (the mock, tansu) answer acks=0 Produce
//! requests and the clients then drop the connection, so acks=0 exchanges may or may not be paired:
//! never require a response for them.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::capture;
use crate::proc::{Out, Proc};
use crate::scenarios;
use crate::tally::{check, Report, Tally};
use crate::tools::{self, Paths};

/// (scenario, checks): one mock, one tansu.
const E2E: &[&str] = &["produce-acks-librdkafka-mock", "produce-kafka-python-tansu"];

pub fn e2e(paths: &Paths, reuse: bool) -> Result<()> {
    let dir = paths.out().join("e2e");
    std::fs::create_dir_all(&dir)?;
    crate::agent::build_kwire(paths).context("the kwire CLI must build before e2e can run")?;
    let mut tally = Tally::new("e2e");
    for name in E2E {
        let sc = scenarios::find(name).expect("known scenario");
        let pcap = dir.join(format!("{name}.pcap"));
        if !(reuse && pcap.is_file() && capture::facts_path(&pcap).is_file()) {
            let c = capture::capture(paths, sc, &pcap)?;
            println!(
                "captured {name}: {} bytes in {:.1}s",
                c.facts["capture"]["bytes"], c.seconds
            );
        }
        let facts: Value =
            serde_json::from_str(&std::fs::read_to_string(capture::facts_path(&pcap))?)?;
        let lines = replay(paths, &pcap, &facts)?;
        let mut report = match *name {
            "produce-acks-librdkafka-mock" => check_produce(
                &lines,
                &[("kw-acks0", 0), ("kw-acks1", 1), ("kw-acksall", -1)],
                None,
            ),
            "produce-kafka-python-tansu" => check_produce(
                &lines,
                &[
                    ("kw-py-acks0", 0),
                    ("kw-py-acks1", 1),
                    ("kw-py-acksall", -1),
                ],
                Some("kw-py-consumer"),
            ),
            _ => unreachable!(),
        };
        let oracle = oracle(paths, &pcap);
        check(
            &mut report,
            "same requests per client id and API as an independent decoder (wire_summary.py)",
            || compare_with_oracle(&lines, &oracle?),
        );
        tally.add(name, report);
    }
    tally.finish("")
}

/// `cargo xtask crosscheck`: every committed fixture through `kwire replay --json` and through
/// wire_summary.py; requests and answers per (client id, API) must agree.
pub fn crosscheck(paths: &Paths) -> Result<()> {
    crate::agent::build_kwire(paths).context("the kwire CLI must build before e2e can run")?;
    let mut failed = 0;
    let mut passed = 0;
    for sc in scenarios::SCENARIOS {
        let pcap = paths.fixtures().join(format!("{}.pcap", sc.name));
        if !pcap.is_file() {
            println!("skip  {}: no committed capture", sc.name);
            continue;
        }
        let facts: Value =
            serde_json::from_str(&std::fs::read_to_string(capture::facts_path(&pcap))?)?;
        let res = replay(paths, &pcap, &facts)
            .and_then(|lines| compare_with_oracle(&lines, &oracle(paths, &pcap)?));
        match res {
            Ok(()) => {
                passed += 1;
                println!("ok    {}", sc.name);
            }
            Err(e) => {
                failed += 1;
                println!("FAIL  {}: {e:#}", sc.name);
            }
        }
    }
    println!("crosscheck: {passed} passed, {failed} failed");
    if failed > 0 {
        bail!("kwire and wire_summary.py disagree on {failed} fixture(s)");
    }
    Ok(())
}

/// Runs `cargo run -p kwire -- replay FILE --json --ports ...`; returns the parsed lines.
fn replay(paths: &Paths, pcap: &Path, facts: &Value) -> Result<Vec<Value>> {
    let ports: Vec<String> = facts["broker"]["ports"]
        .as_array()
        .map(|a| a.iter().map(|p| p.to_string()).collect())
        .unwrap_or_default();
    // outputs go to tests/out/replay/ (gitignored), never beside a committed fixture
    let dir = paths.out().join("replay");
    std::fs::create_dir_all(&dir)?;
    let stem = pcap
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let out_file = dir.join(format!("{stem}.jsonl"));
    let err_file = dir.join(format!("{stem}.stderr.txt"));
    let _ = std::fs::remove_file(&out_file);
    let _ = std::fs::remove_file(&err_file);
    let mut cmd = Command::new(tools::cargo());
    cmd.current_dir(&paths.root)
        .args(["run", "--quiet", "-p", "kwire", "--", "replay"])
        .arg(pcap)
        .arg("--json");
    if !ports.is_empty() {
        cmd.arg("--ports").arg(ports.join(","));
    }
    cmd.stdin(Stdio::null());
    let mut p = Proc::spawn(
        "kwire replay",
        &mut cmd,
        false,
        Out::File(&out_file),
        Out::File(&err_file),
    )?;
    let st = p.wait_timeout(Duration::from_secs(300))?;
    let stdout = std::fs::read_to_string(&out_file).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_file).unwrap_or_default();
    if !st.success() {
        bail!(
            "kwire replay {} failed ({st}):\n{}",
            pcap.display(),
            stderr
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    let mut lines = Vec::new();
    for (i, l) in stdout.lines().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(l)
            .with_context(|| format!("kwire output line {} is not JSON: {l}", i + 1))?;
        lines.push(v);
    }
    Ok(lines)
}

/// tests/harness/wire_summary.py --json: kafka-python's schema-generated decoders over the same pcap.
fn oracle(paths: &Paths, pcap: &Path) -> Result<Value> {
    let python = paths.require_python()?;
    let mut cmd = Command::new(python);
    cmd.arg(paths.harness().join("wire_summary.py"))
        .arg(pcap)
        .arg("--json")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let out = crate::proc::run_quiet("wire_summary.py", &mut cmd, Duration::from_secs(120))?;
    let line = out.lines().find(|l| l.starts_with('{')).unwrap_or("");
    serde_json::from_str(line).with_context(|| format!("wire_summary.py output is not JSON: {out}"))
}

/// Every (client id, API key): same number of requests, and of answered ones, in both readings.
fn compare_with_oracle(lines: &[Value], oracle: &Value) -> Result<()> {
    let mut kwire: BTreeMap<(String, i64), (u64, u64)> = BTreeMap::new();
    for x in exchanges(lines) {
        let cid = x["client_id"].as_str().unwrap_or("").to_string();
        let e = kwire
            .entry((cid, x["api_key"].as_i64().unwrap_or(-1)))
            .or_default();
        e.0 += 1;
        if !x["response_ts"].is_null() {
            e.1 += 1;
        }
    }
    let mut theirs: BTreeMap<(String, i64), (u64, u64)> = BTreeMap::new();
    for (cid, apis) in oracle["requests"].as_object().into_iter().flatten() {
        for (key, v) in apis.as_object().into_iter().flatten() {
            let key: i64 = key.parse().unwrap_or(-1);
            theirs.insert(
                (cid.clone(), key),
                (v[0].as_u64().unwrap_or(0), v[1].as_u64().unwrap_or(0)),
            );
        }
    }
    let keys: std::collections::BTreeSet<_> = kwire.keys().chain(theirs.keys()).cloned().collect();
    let diffs: Vec<String> = keys
        .into_iter()
        .filter_map(|k| {
            let a = kwire.get(&k).copied().unwrap_or_default();
            let b = theirs.get(&k).copied().unwrap_or_default();
            (a != b).then(|| {
                format!(
                    "{} api {}: kwire {} requests/{} answered, oracle {}/{}",
                    k.0, k.1, a.0, a.1, b.0, b.1
                )
            })
        })
        .collect();
    if !diffs.is_empty() {
        bail!("{}", diffs.join("; "));
    }
    Ok(())
}

fn exchanges(lines: &[Value]) -> impl Iterator<Item = &Value> {
    lines.iter().filter(|l| l["type"] == "exchange")
}

/// A decoded request field: at the top level of the exchange, or under `request`.
fn req_field<'a>(x: &'a Value, name: &str) -> &'a Value {
    match x.get(name) {
        Some(v) => v,
        None => &x["request"][name],
    }
}

/// Records in a Produce request, when the output lists batches with `record_count`.
fn produce_records(x: &Value) -> Option<i64> {
    let mut n = 0;
    for t in req_field(x, "topics").as_array()? {
        for p in t["partitions"].as_array()? {
            for b in p["batches"].as_array()? {
                n += b["record_count"].as_i64()?;
            }
        }
    }
    Some(n)
}

fn error_free(x: &Value) -> bool {
    match &x["error_codes"] {
        Value::Array(a) => a.iter().all(|e| e.as_i64() == Some(0)),
        Value::Null => true,
        _ => false,
    }
}

/// The checks both e2e scenarios share: contract shape, handshakes, Produce per acks value.
fn check_produce(lines: &[Value], producers: &[(&str, i64)], consumer: Option<&str>) -> Report {
    let mut r = Report::new();
    check(
        &mut r,
        "output follows the contract (type on every line, summary last)",
        || {
            if lines.is_empty() {
                bail!("no output lines");
            }
            for l in lines {
                match l["type"].as_str() {
                    Some("exchange" | "alert" | "timeline" | "summary" | "notice") => {}
                    other => bail!("unexpected type {other:?} in {l}"),
                }
            }
            if lines.last().map(|l| l["type"] != "summary").unwrap_or(true) {
                bail!("last line is not the summary");
            }
            for x in exchanges(lines) {
                for f in [
                    "ts",
                    "client_addr",
                    "broker_addr",
                    "client_id",
                    "api_key",
                    "api",
                    "api_version",
                    "correlation_id",
                    "response_ts",
                    "latency_us",
                    "error_codes",
                ] {
                    if x.get(f).is_none() {
                        bail!("exchange without `{f}`: {x}");
                    }
                }
            }
            Ok(())
        },
    );
    let mut clients: Vec<&str> = producers.iter().map(|p| p.0).collect();
    clients.extend(consumer);
    for c in &clients {
        check(
            &mut r,
            format!("{c}: ApiVersions and Metadata exchanges, answered"),
            || {
                for (key, api) in [(18, "ApiVersions"), (3, "Metadata")] {
                    let xs: Vec<&Value> = exchanges(lines)
                        .filter(|x| x["client_id"] == *c && x["api_key"] == key)
                        .collect();
                    if xs.is_empty() {
                        bail!("no {api} exchange from {c}");
                    }
                    if xs.iter().any(|x| x["response_ts"].is_null()) {
                        bail!("an {api} request from {c} has no response");
                    }
                }
                Ok(())
            },
        );
    }
    for (c, acks) in producers {
        check(
            &mut r,
            format!("{c}: 6 Produce requests with acks={acks}"),
            || {
                let xs: Vec<&Value> = exchanges(lines)
                    .filter(|x| x["client_id"] == *c && x["api_key"] == 0)
                    .collect();
                if xs.len() != 6 {
                    bail!("{} Produce exchanges, expected 6", xs.len());
                }
                let seen: BTreeMap<String, usize> = xs.iter().fold(BTreeMap::new(), |mut m, x| {
                    *m.entry(req_field(x, "acks").to_string()).or_default() += 1;
                    m
                });
                if xs
                    .iter()
                    .any(|x| req_field(x, "acks").as_i64() != Some(*acks))
                {
                    bail!("acks values seen {seen:?}, expected all {acks}");
                }
                // one record per request, when the output says how many records a request carries
                if let Some(x) = xs
                    .iter()
                    .find(|x| produce_records(x).is_some_and(|n| n != 1))
                {
                    bail!(
                        "a Produce request with {:?} records, expected 1: {x}",
                        produce_records(x)
                    );
                }
                if *acks != 0 {
                    if let Some(x) = xs
                        .iter()
                        .find(|x| x["response_ts"].is_null() || x["latency_us"].is_null())
                    {
                        bail!("acks={acks} Produce without a matched response: {x}");
                    }
                    if let Some(x) = xs.iter().find(|x| !error_free(x)) {
                        bail!("Produce with an error: {x}");
                    }
                }
                Ok(())
            },
        );
    }
    if let Some(c) = consumer {
        check(
            &mut r,
            format!("{c}: group join, Fetch and an accepted OffsetCommit"),
            || {
                for (key, api) in [
                    (10, "FindCoordinator"),
                    (11, "JoinGroup"),
                    (14, "SyncGroup"),
                    (1, "Fetch"),
                    (8, "OffsetCommit"),
                ] {
                    let xs: Vec<&Value> = exchanges(lines)
                        .filter(|x| x["client_id"] == c && x["api_key"] == key)
                        .collect();
                    if xs.is_empty() {
                        bail!("no {api} exchange from {c}");
                    }
                    if key == 8
                        && !xs
                            .iter()
                            .any(|x| !x["response_ts"].is_null() && error_free(x))
                    {
                        bail!("no answered, error-free OffsetCommit from {c}");
                    }
                }
                Ok(())
            },
        );
    }
    check(
        &mut r,
        "most requests are answered (responses matched)",
        || {
            let total = exchanges(lines).count();
            let answered = exchanges(lines)
                .filter(|x| !x["response_ts"].is_null())
                .count();
            if total == 0 || answered * 10 < total * 9 {
                bail!("{answered} of {total} exchanges have a response");
            }
            Ok(())
        },
    );
    r
}
