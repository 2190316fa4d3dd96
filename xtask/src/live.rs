//! `cargo xtask live`: the live path checked against replay, with real brokers and real clients.
//!
//! For each scenario below: the broker starts, `kwire run --source pcap --interface lo --ports <broker
//! ports> --json --write-pcap tests/out/live/<scenario>.pcap --health ...` starts and is waited for until
//! `/readyz` answers 200, the scenario's client scripts run (the same steps as `cargo xtask capture`),
//! `/healthz` and `/metrics` are asked mid-run, kwire is stopped with SIGTERM, then `kwire replay` reads the pcap it wrote.
//! Checked: exit status 0 and a summary last; the source's counters show packets and 0 kernel/interface
//! drops; every packet seen was written; the live exchanges and alerts are the replay's (as multisets
//! of (client_id, api_key, api_version, correlation_id, ts, response_ts, error_codes, request, response)
//! and (alert, severity, client_id, topic, partition, the kind's offsets)); the whole outputs are byte
//! identical; the alerts are exactly those `agent/kwire/tests/alert_scenarios.rs` asserts for the
//! scenario's committed fixture (and the committed fixture, replayed, raises them too). The agent also
//! runs with `--otlp` to a real collector (rotel, gRPC): it must receive every alert (by kind), one span
//! per exchange and the metrics.
//! Then the agent's hygiene without a broker: /healthz, /readyz and an unknown path; SIGINT ends the run
//! with status 0 and a summary; `--duration` ends it alone; `--source auto` says which source is in use
//! and why; without CAP_NET_RAW (setpriv) the error names the capability.
//!
//! Easy to get wrong: kwire must be capturing before the first client connects (readiness = the source
//! is open and polled once), and stopped only after the last FIN was seen (a short pause before SIGTERM,
//! as `capture.rs` does for tcpdump). The kwire binary is run directly (not through `cargo run`, which
//! would receive the signals instead).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::agent::{
    self, build_kwire, join, of_type, replay, summary, Agent, Outputs, Spec, Stopped,
};
use crate::broker::{self, Broker};
use crate::capture;
use crate::collector::{self, Collector, Mode};
use crate::proc;
use crate::scenarios::{self, Scenario};
use crate::tally::{check, Report, Tally};
use crate::tools::Paths;

/// One expected alert: kind, severity, client id, topic, partition, and the kind's offsets.
struct Want {
    kind: &'static str,
    severity: &'static str,
    client: &'static str,
    topic: &'static str,
    partition: Option<i64>,
    fields: &'static [(&'static str, i64)],
}

const fn want(
    kind: &'static str,
    severity: &'static str,
    client: &'static str,
    topic: &'static str,
    partition: Option<i64>,
    fields: &'static [(&'static str, i64)],
) -> Want {
    Want {
        kind,
        severity,
        client,
        topic,
        partition,
        fields,
    }
}

/// Fields compared between live and replay alerts (where present): the kind's offsets and counts.
const ALERT_FIELDS: &[&str] = &[
    "previous_offset",
    "new_offset",
    "delta",
    "consumed_offset",
    "committed_offset",
    "new_owner_committed_offset",
    "new_owner_served_offset",
    "acks",
    "requests",
    "records",
    "generation",
];

/// The alerts of each scenario, as agent/kwire/tests/alert_scenarios.rs asserts them for the committed
/// fixture. Partitions marked `None` in a `commit_after_revoke` story come from the run's facts.
fn expected(name: &str, facts: &[Value]) -> Result<Vec<Want>> {
    Ok(match name {
        // weak_acks_librdkafka
        "produce-acks-librdkafka-mock" => vec![
            want(
                "weak_acks",
                "warning",
                "kw-acks0",
                "kw-acks",
                None,
                &[("acks", 0), ("requests", 6), ("records", 6)],
            ),
            want(
                "weak_acks",
                "warning",
                "kw-acks1",
                "kw-acks",
                None,
                &[("acks", 1), ("requests", 6), ("records", 6)],
            ),
        ],
        // follower_fetch_hwm_regression
        "follower-fetch-hwm-regression-mock" => vec![
            want(
                "listoffsets_regression",
                "critical",
                "kw-ff-reader",
                "kw-ff",
                Some(0),
                &[
                    ("previous_offset", 10),
                    ("new_offset", 4),
                    ("delta", 6),
                    ("consumed_offset", 10),
                ],
            ),
            want(
                "listoffsets_regression",
                "warning",
                "kw-ff-tail",
                "kw-ff",
                Some(1),
                &[("previous_offset", 10), ("new_offset", 4), ("delta", 6)],
            ),
        ],
        // listoffsets_regression_after_topic_recreate
        "listoffsets-recreate-tansu" => vec![
            want(
                "listoffsets_regression",
                "warning",
                "kw-rc-watch",
                "kw-rc",
                Some(0),
                &[("previous_offset", 5), ("new_offset", 2), ("delta", 3)],
            ),
            want(
                "listoffsets_regression",
                "critical",
                "kw-rc-consumer",
                "kw-rc",
                Some(0),
                &[
                    ("previous_offset", 5),
                    ("new_offset", 2),
                    ("delta", 3),
                    ("committed_offset", 5),
                    ("consumed_offset", 5),
                ],
            ),
            // acknowledged_then_lost (info): the records acknowledged before the deletion are gone,
            // explained by the admin client's DeleteTopics.
            want(
                "acknowledged_then_lost",
                "info",
                "kw-rc-producer",
                "kw-rc",
                Some(0),
                &[
                    ("first_lost_offset", 0),
                    ("last_lost_offset", 4),
                    ("lost_records", 5),
                ],
            ),
        ],
        // commit_after_revoke_cooperative (assert_stale_commit): the two partitions member 1 lost
        "commit-after-revoke-cooperative-mock" => {
            let lost: Vec<i64> = facts
                .iter()
                .find(|f| f["fact"] == "rebalanced")
                .and_then(|f| f["member1_lost"].as_array())
                .map(|a| a.iter().filter_map(Value::as_i64).collect())
                .unwrap_or_default();
            if lost.len() != 2 {
                bail!("{name}: the facts name no two lost partitions (rebalanced.member1_lost)");
            }
            let mut v = Vec::new();
            for p in lost {
                v.push(want(
                    "commit_after_revoke",
                    "critical",
                    "kw-carc-1",
                    "kw-carc",
                    Some(p),
                    &[
                        ("committed_offset", 6),
                        ("new_owner_committed_offset", 7),
                        ("new_owner_served_offset", 7),
                    ],
                ));
                v.push(want(
                    "committed_offset_regression",
                    "info",
                    "kw-carc-1",
                    "kw-carc",
                    Some(p),
                    &[
                        ("previous_offset", 7),
                        ("committed_offset", 6),
                        ("delta", 1),
                    ],
                ));
            }
            v
        }
        other => bail!("no expected alerts for {other}"),
    })
}

/// One per broker kind; three raise alerts (weak acks, a high watermark going back on a follower, a
/// topic re-created on tansu, a commit after revoke in a cooperative group).
const LIVE: &[&str] = &[
    "produce-acks-librdkafka-mock",
    "follower-fetch-hwm-regression-mock",
    "listoffsets-recreate-tansu",
    "commit-after-revoke-cooperative-mock",
];

/// Scenarios also watched with the eBPF source.
const LIVE_EBPF: &[&str] = &[
    "follower-fetch-hwm-regression-mock",
    "commit-after-revoke-cooperative-mock",
];

/// Runs a scenario's checks again once when the scenario itself could not be played (an `Err`: a client
/// story failed, e.g. a commit refused with REBALANCE_IN_PROGRESS when the group rebalanced later than the
/// story expected on a loaded machine). Failed *checks* of kwire are never retried: they are in the Report.
fn with_one_retry(name: &str, mut f: impl FnMut() -> Result<Report>) -> Result<Report> {
    match f() {
        Ok(r) => Ok(r),
        Err(e) => {
            println!(
                "retry {name}: the scenario could not be played ({e:#}); playing it once more"
            );
            f()
        }
    }
}

pub fn live(paths: &Paths, only: &[String]) -> Result<()> {
    for o in only {
        if !LIVE.contains(&o.as_str()) && o != "agent" && o != "ebpf" {
            bail!(
                "unknown live check {o:?}; known: agent, {}",
                LIVE.join(", ")
            );
        }
    }
    let dir = paths.out().join("live");
    fs::create_dir_all(&dir)?;
    let kwire = build_kwire(paths)?;
    let mut tally = Tally::new("live");
    if only.is_empty() || only.iter().any(|o| o == "agent") {
        let t = Instant::now();
        let report = agent_checks(paths, &kwire, &dir)?;
        tally.add("agent", report);
        println!("      agent checks in {:.1}s", t.elapsed().as_secs_f64());
    }
    for name in LIVE {
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        let t = Instant::now();
        let sc = scenarios::find(name).expect("known scenario");
        let report = with_one_retry(name, || scenario_checks(paths, &kwire, sc, &dir, "pcap"))
            .with_context(|| format!("live {name} (files in {})", dir.display()))?;
        tally.add(name, report);
        println!("      {name} in {:.1}s", t.elapsed().as_secs_f64());
    }
    // The same with the eBPF source (cgroup_skb at the cgroup v2 root): same exchanges and alerts as the
    // replay of what it wrote, and the connections' ends attributed to their cgroups.
    for name in LIVE_EBPF {
        if !only.is_empty() && !only.iter().any(|o| o == name || o == "ebpf") {
            continue;
        }
        let t = Instant::now();
        let sc = scenarios::find(name).expect("known scenario");
        let report = with_one_retry(name, || scenario_checks(paths, &kwire, sc, &dir, "ebpf"))
            .with_context(|| format!("live ebpf {name} (files in {})", dir.display()))?;
        let label = format!("{name} [ebpf]");
        tally.add(&label, report);
        println!("      {label} in {:.1}s", t.elapsed().as_secs_f64());
    }
    tally.finish("")
}

/// The eBPF scenario checks of `live` (the first of [`LIVE_EBPF`]) with a given kwire binary: `cargo
/// xtask ebpf-stable` runs them with the kwire a stable-only build of a fresh clone produced.
pub fn ebpf_with(paths: &Paths, kwire: &Path) -> Result<()> {
    let dir = paths.out().join("live-stable-only");
    fs::create_dir_all(&dir)?;
    let name = LIVE_EBPF[0];
    let sc = scenarios::find(name).expect("known scenario");
    let report = with_one_retry(name, || scenario_checks(paths, kwire, sc, &dir, "ebpf"))
        .with_context(|| format!("live ebpf {name} (files in {})", dir.display()))?;
    let mut tally = Tally::new("live ebpf, stable-only build");
    tally.add(&format!("{name} [ebpf, stable-only build]"), report);
    tally.finish(&format!(", {}", kwire.display()))
}

/// What the collector received: alerts by kind (log records), spans, spans carrying the client's
/// socket owner (`kwire.client.cgroup_id`, eBPF source), and whether the kwire.packets metric arrived.
fn received(collector: &Collector) -> (BTreeMap<String, u64>, usize, usize, bool) {
    let r = collector.received();
    let mut alerts: BTreeMap<String, u64> = BTreeMap::new();
    for kind in r.logs.iter().filter_map(|l| l.str_attr("kwire.alert.kind")) {
        *alerts.entry(kind.to_string()).or_default() += 1;
    }
    let owned = r
        .spans
        .iter()
        .filter(|s| {
            s.attr("kwire.client.cgroup_id")
                .is_some_and(|v| v.starts_with("Int("))
        })
        .count();
    (
        alerts,
        r.spans.len(),
        owned,
        r.metrics.contains("kwire.packets"),
    )
}

/// `/metrics` mid-run: status 200, every series under a kwire or messaging name (the names themselves
/// are checked against the catalog by kwire-export's `metrics_endpoint_names_are_the_catalog_names`),
/// packets counted, and requests timed (Kafka seen live, not only health counters).
fn check_metrics_text(got: Option<&(u16, String)>) -> Result<()> {
    let Some((200, text)) = got else {
        bail!("got {got:?}");
    };
    let value = |prefix: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        if !(l.starts_with("kwire_") || l.starts_with("messaging_")) {
            bail!("unexpected series: {l}");
        }
    }
    if value("kwire_packets_total") < 1.0 {
        bail!("kwire_packets_total is 0:\n{text}");
    }
    if value("kwire_request_duration_seconds_count")
        + value("messaging_client_operation_duration_seconds_count")
        < 1.0
    {
        bail!("no request timed:\n{text}");
    }
    Ok(())
}

/// An exchange without what depends on the connection (addresses, connection number).
fn exchange_key(x: &Value) -> String {
    let k = [
        "client_id",
        "api_key",
        "api_version",
        "correlation_id",
        "ts",
        "response_ts",
        "error_codes",
        "request",
        "response",
    ];
    let v: Vec<String> = k.iter().map(|f| x[*f].to_string()).collect();
    v.join("|")
}

fn alert_key(a: &Value) -> String {
    let mut s = format!(
        "{} {} client={} topic={} partition={}",
        a["alert"], a["severity"], a["client_id"], a["topic"], a["partition"]
    );
    for f in ALERT_FIELDS {
        if let Some(v) = a.get(*f) {
            s.push_str(&format!(" {f}={v}"));
        }
    }
    s
}

fn multiset<'a>(
    items: impl Iterator<Item = &'a Value>,
    key: fn(&Value) -> String,
) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for i in items {
        *m.entry(key(i)).or_insert(0) += 1;
    }
    m
}

fn same_multiset(what: &str, a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>) -> Result<()> {
    if a == b {
        return Ok(());
    }
    let mut diffs = Vec::new();
    for k in a.keys().chain(b.keys()) {
        let (x, y) = (
            a.get(k).copied().unwrap_or(0),
            b.get(k).copied().unwrap_or(0),
        );
        if x != y && diffs.len() < 6 {
            diffs.push(format!("live {x} × replay {y}: {k}"));
        }
    }
    diffs.dedup();
    bail!("{what} differ: {}", diffs.join("\n    "))
}

/// Alerts projected on what `Want` names.
fn matches_want(a: &Value, w: &Want) -> bool {
    a["alert"] == w.kind
        && a["severity"] == w.severity
        && a["client_id"] == w.client
        && a["topic"] == w.topic
        && a["partition"].as_i64() == w.partition
        && w.fields.iter().all(|(f, v)| a[*f].as_i64() == Some(*v))
}

fn alerts_are(alerts: &[&Value], wants: &[Want], project_fields: bool) -> Result<()> {
    let mut left: Vec<&Value> = alerts.to_vec();
    let mut missing = Vec::new();
    for w in wants {
        let hit = left.iter().position(|a| {
            if project_fields {
                matches_want(a, w)
            } else {
                a["alert"] == w.kind
                    && a["severity"] == w.severity
                    && a["client_id"] == w.client
                    && a["topic"] == w.topic
                    && a["partition"].as_i64() == w.partition
            }
        });
        match hit {
            Some(i) => {
                left.remove(i);
            }
            None => missing.push(format!(
                "{} {} {} {}/{:?} {:?}",
                w.kind, w.severity, w.client, w.topic, w.partition, w.fields
            )),
        }
    }
    if missing.is_empty() && left.is_empty() {
        return Ok(());
    }
    bail!(
        "missing: [{}]; unexpected: [{}]",
        missing.join("; "),
        left.iter()
            .map(|a| alert_key(a))
            .collect::<Vec<_>>()
            .join("; ")
    )
}

fn scenario_checks(
    paths: &Paths,
    kwire: &Path,
    sc: &Scenario,
    dir: &Path,
    source: &str,
) -> Result<Report> {
    let python = paths.require_python()?;
    let logs = paths.out().join("logs").join(format!("live-{}", sc.name));
    let _ = fs::remove_dir_all(&logs);
    fs::create_dir_all(&logs)?;
    let stem = if source == "pcap" {
        sc.name.to_string()
    } else {
        format!("{}.{source}", sc.name)
    };
    let pcap = dir.join(format!("{stem}.pcap"));
    for n in 0..8 {
        let p = if n == 0 {
            pcap.clone()
        } else {
            PathBuf::from(format!("{}.{n}", pcap.display()))
        };
        let _ = fs::remove_file(p);
    }

    let mut broker = Broker::start(sc.broker, paths, &logs)?;
    for (topic, parts) in sc.topics {
        broker.create_topic(topic, *parts)?;
    }
    let ports = broker.ports.clone();
    // A real OpenTelemetry collector receives what the live agent exports (--otlp).
    let mut collector = Collector::start(
        paths,
        collector::Config {
            dir: &logs,
            netns: None,
            host: "127.0.0.1",
            ports: None,
            mode: Mode::Print,
        },
    )?;
    let otlp_endpoint = format!("http://127.0.0.1:{}", collector.grpc_port);
    let args: Vec<String> = [
        "--otlp",
        "--otlp-endpoint",
        &otlp_endpoint,
        "--otlp-protocol",
        "grpc",
        "--source",
        source,
        "--interface",
        "lo",
        "--ports",
        &join(&ports),
        "--json",
        "--log-format",
        "json",
        "--write-pcap",
        &pcap.display().to_string(),
        "--write-pcap-max-mb",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut agent = Agent::start(Spec::new(kwire, &args, dir, &stem))?;
    let mut report = Report::new();
    let ready = agent.wait_ready();
    let ready_ok = ready.is_ok();
    check(&mut report, "/readyz answers 200 once capturing", || {
        ready.map(|_| ())
    });
    if !ready_ok {
        let _ = broker.stop();
        return Ok(report);
    }
    let steps = capture::run_steps(paths, &python, sc, &mut broker, &logs);
    let healthz = agent.get("/healthz");
    check(
        &mut report,
        "/healthz answers 200 while running",
        || match &healthz {
            Some((200, _)) => Ok(()),
            other => bail!("got {other:?}"),
        },
    );
    // /metrics is rendered by the capture loop for the scrape: once the steps' last packets have left
    // the kernel ring (50 ms block timeout), it counts every step.
    thread::sleep(Duration::from_millis(300));
    let metrics = agent.get("/metrics");
    check(
        &mut report,
        "/metrics: Prometheus text with packets and Kafka operations",
        || check_metrics_text(metrics.as_ref()),
    );
    thread::sleep(Duration::from_millis(300)); // the last FIN/ACKs
    let stopped = agent.stop("TERM");
    let _ = broker.stop();
    let steps =
        steps.with_context(|| format!("the scenario's steps (logs in {})", logs.display()))?;
    let Stopped {
        status,
        took,
        lines: ref live,
        ref stderr,
        ..
    } = stopped?;
    let code = status.code();
    let facts: Vec<Value> = steps
        .iter()
        .flat_map(|s| s["facts"].as_array().cloned().unwrap_or_default())
        .collect();

    check(&mut report, "SIGTERM: exit status 0, summary last", || {
        if code != Some(0) {
            bail!("exit {code:?}; stderr:\n{stderr}");
        }
        let s = summary(live)?;
        if s["run"]["stopped_by"] != "SIGTERM" {
            bail!("stopped_by {}", s["run"]["stopped_by"]);
        }
        if took > Duration::from_secs(5) {
            bail!("took {took:?} to stop");
        }
        Ok(())
    });
    check(
        &mut report,
        "stderr: JSON log lines with level and msg",
        || {
            for l in stderr.lines() {
                let v: Value = serde_json::from_str(l).with_context(|| format!("not JSON: {l}"))?;
                if !v["level"].is_string() || !v["msg"].is_string() {
                    bail!("no level/msg: {l}");
                }
            }
            if !stderr.contains(&format!("capturing with {source}")) {
                bail!("no \"capturing with {source}\" line: {stderr}");
            }
            Ok(())
        },
    );
    let sum = summary(live).cloned().unwrap_or(Value::Null);
    check(
        &mut report,
        "capture stats: packets seen, 0 kernel and interface drops, all written",
        || {
            let c = &sum["capture"];
            let packets = c["packets"].as_u64().unwrap_or(0);
            if packets == 0 {
                bail!("no packets: {c}");
            }
            if c["kernel_drops"] != 0
                || c["interface_drops"] != 0
                || c["ring_drops"].as_u64().unwrap_or(0) != 0
            {
                bail!("drops: {c}");
            }
            if sum["write_pcap"]["packets"].as_u64() != Some(packets) {
                bail!("written {} of {packets}", sum["write_pcap"]["packets"]);
            }
            if sum["packets"]["packets"].as_u64() != Some(packets) {
                bail!("engine saw {} of {packets}", sum["packets"]["packets"]);
            }
            Ok(())
        },
    );
    check(
        &mut report,
        "OTLP: the collector received every alert (by kind), a span per exchange, the metrics",
        || {
            let mut want: BTreeMap<String, u64> = BTreeMap::new();
            for a in of_type(live, "alert") {
                *want
                    .entry(a["alert"].as_str().unwrap_or("?").to_string())
                    .or_default() += 1;
            }
            let exchanges = of_type(live, "exchange").len();
            let t = Instant::now();
            loop {
                let (got, spans, _, metrics) = received(&collector);
                if got == want && spans == exchanges && metrics {
                    return Ok(());
                }
                if t.elapsed() > Duration::from_secs(10) {
                    bail!(
                        "collector has alerts {got:?} (want {want:?}), {spans} spans (want {exchanges}), kwire.packets metric: {metrics}"
                    );
                }
                thread::sleep(Duration::from_millis(100));
            }
        },
    );
    if source == "ebpf" {
        check(
            &mut report,
            "OTLP (eBPF): every span carries the client's socket owner (kwire.client.cgroup_id)",
            || {
                let (_, spans, owned, _) = received(&collector);
                if spans == 0 || owned != spans {
                    bail!("{owned} of {spans} spans carry kwire.client.cgroup_id");
                }
                Ok(())
            },
        );
    }
    collector.stop();
    let replayed = replay(kwire, &pcap, &ports);
    let (rep, _) = match replayed {
        Ok(r) => r,
        Err(e) => {
            check(&mut report, "kwire replay of the written pcap", || Err(e));
            return Ok(report);
        }
    };
    check(
        &mut report,
        "exchanges: live = replay (multiset, connection-independent fields)",
        || {
            let a = multiset(of_type(live, "exchange").into_iter(), exchange_key);
            let b = multiset(of_type(&rep, "exchange").into_iter(), exchange_key);
            if a.is_empty() {
                bail!("no exchanges");
            }
            same_multiset("exchanges", &a, &b)
        },
    );
    check(
        &mut report,
        "alerts: live = replay (kind, severity, client, topic, partition, offsets)",
        || {
            let a = multiset(of_type(live, "alert").into_iter(), alert_key);
            let b = multiset(of_type(&rep, "alert").into_iter(), alert_key);
            same_multiset("alerts", &a, &b)
        },
    );
    check(
        &mut report,
        "every line but the summary byte-identical to the replay's; same counters",
        || {
            // Socket owners (eBPF: client_cgroup_id, client_pod, ... broker_*) exist only live: a pcap
            // does not carry them.
            let strip = |v: &[Value]| -> Vec<String> {
                v.iter()
                    .filter(|l| l["type"] != "summary")
                    .map(|l| {
                        let mut l = l.clone();
                        if let Some(m) = l.as_object_mut() {
                            m.retain(|k, _| {
                                !((k.starts_with("client_") || k.starts_with("broker_"))
                                    && !matches!(
                                        k.as_str(),
                                        "client_id" | "client_addr" | "broker_addr"
                                    ))
                            });
                        }
                        l.to_string()
                    })
                    .collect()
            };
            let (a, b) = (strip(live), strip(&rep));
            if a != b {
                let i = a
                    .iter()
                    .zip(&b)
                    .position(|(x, y)| x != y)
                    .unwrap_or(a.len().min(b.len()));
                bail!(
                    "{} vs {} lines; first difference at line {}: {:?} vs {:?}",
                    a.len(),
                    b.len(),
                    i + 1,
                    a.get(i),
                    b.get(i)
                );
            }
            let mut ls = sum.clone();
            let mut rs = summary(&rep)?.clone();
            for k in ["capture", "write_pcap", "run"] {
                ls.as_object_mut().map(|m| m.remove(k));
            }
            rs.as_object_mut().map(|m| m.remove("file"));
            if ls != rs {
                bail!("summaries differ:\nlive   {ls}\nreplay {rs}");
            }
            Ok(())
        },
    );
    if source == "ebpf" {
        check(
            &mut report,
            "eBPF: exchanges attributed to the client's and the broker's cgroups",
            || {
                let xs = of_type(live, "exchange");
                let owned = xs
                    .iter()
                    .filter(|x| x["client_cgroup_id"].is_u64() && x["broker_cgroup_id"].is_u64())
                    .count();
                if xs.is_empty() || owned != xs.len() {
                    bail!(
                        "{owned} of {} exchanges carry client_cgroup_id and broker_cgroup_id",
                        xs.len()
                    );
                }
                Ok(())
            },
        );
    }
    let wants = expected(sc.name, &facts)?;
    check(
        &mut report,
        "alerts are exactly the ones alert_scenarios.rs asserts",
        || alerts_are(&of_type(live, "alert"), &wants, true),
    );
    check(
        &mut report,
        "the committed fixture raises the same alerts (kind, severity, client, partition)",
        || {
            let fixture = paths.fixtures().join(format!("{}.pcap", sc.name));
            let ffacts: Value =
                serde_json::from_str(&fs::read_to_string(capture::facts_path(&fixture))?)?;
            let fports: Vec<u16> = ffacts["broker"]["ports"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|p| p.as_u64().map(|p| p as u16))
                        .collect()
                })
                .unwrap_or_default();
            let story: Vec<Value> = ffacts["steps"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|s| s["facts"].as_array().cloned().unwrap_or_default())
                .collect();
            let (fl, _) = replay(kwire, &fixture, &fports)?;
            alerts_are(&of_type(&fl, "alert"), &expected(sc.name, &story)?, true)
        },
    );
    Ok(report)
}

/// Health endpoints, SIGINT, --duration, --source auto, and the missing-capability message.
fn agent_checks(paths: &Paths, kwire: &Path, dir: &Path) -> Result<Report> {
    let _ = paths;
    let mut report = Report::new();
    let port = broker::free_port()?;
    let base: Vec<String> = [
        "--source",
        "pcap",
        "--interface",
        "lo",
        "--ports",
        &port.to_string(),
        "--json",
        "--log-format",
        "json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();

    // SIGINT, health.
    let mut agent = Agent::start(Spec::new(kwire, &base, dir, "agent-sigint"))?;
    let ready = agent.wait_ready();
    check(
        &mut report,
        "/readyz 200 once the source is open and polled",
        || ready.map(|_| ()),
    );
    let health = agent.health;
    let http_get = |port: u16, path: &str| agent::http_get(None, port, path);
    check(
        &mut report,
        "/healthz 200 while running",
        || match http_get(health, "/healthz") {
            Some((200, b)) if b.starts_with("ok") => Ok(()),
            other => bail!("got {other:?}"),
        },
    );
    check(&mut report, "/readyz names the source", || {
        match http_get(health, "/readyz") {
            Some((200, b)) if b.contains("pcap") && b.contains("lo") => Ok(()),
            other => bail!("got {other:?}"),
        }
    });
    check(&mut report, "unknown path: 404", || {
        match http_get(health, "/metrics-nope") {
            Some((404, _)) => Ok(()),
            other => bail!("got {other:?}"),
        }
    });
    let Stopped {
        status,
        took,
        ref lines,
        ref stderr,
        ..
    } = agent.stop("INT")?;
    let code = status.code();
    check(
        &mut report,
        "SIGINT: exit 0 within 5 s, summary last with capture counters",
        || {
            if code != Some(0) {
                bail!("exit {code:?}: {stderr}");
            }
            if took > Duration::from_secs(5) {
                bail!("took {took:?}");
            }
            let s = summary(lines)?;
            if s["run"]["stopped_by"] != "SIGINT"
                || s["capture"]["source"] != "pcap"
                || !s["capture"]["kernel_drops"].is_u64()
            {
                bail!("summary: {s}");
            }
            Ok(())
        },
    );
    check(
        &mut report,
        "/healthz no longer answers after exit",
        || match http_get(health, "/healthz") {
            None => Ok(()),
            Some(x) => bail!("still answering {x:?}"),
        },
    );

    // --duration, --source auto.
    let mut args = base.clone();
    args[1] = "auto".into();
    args.extend(["--duration".to_string(), "1".to_string()]);
    let Stopped {
        status,
        took,
        ref lines,
        ref stderr,
        ..
    } = Agent::start(Spec::new(kwire, &args, dir, "agent-duration"))?.wait_exit()?;
    let code = status.code();
    check(
        &mut report,
        "--duration 1: exits alone with 0 and a summary",
        || {
            if code != Some(0) || took > Duration::from_secs(8) {
                bail!("exit {code:?} after {took:?}: {stderr}");
            }
            let s = summary(lines)?;
            if s["run"]["stopped_by"] != "duration" {
                bail!("summary: {s}");
            }
            Ok(())
        },
    );
    check(
        &mut report,
        "--source auto says which source is in use and why",
        || {
            let msgs: Vec<String> = stderr
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter_map(|v| v["msg"].as_str().map(String::from))
                .collect();
            let using_ebpf = msgs.iter().any(|m| m.starts_with("capturing with ebpf"));
            let fallback = msgs
                .iter()
                .any(|m| m.starts_with("eBPF unavailable: ") && m.contains("using libpcap on lo"))
                && msgs.iter().any(|m| m.starts_with("capturing with pcap"));
            // `--interface lo` given explicitly: auto honours it with libpcap and says so.
            let chosen = msgs
                .iter()
                .any(|m| m.starts_with("--interface lo given: using libpcap on lo"))
                && msgs.iter().any(|m| m.starts_with("capturing with pcap"));
            if !(using_ebpf || fallback || chosen) {
                bail!("stderr: {stderr}");
            }
            Ok(())
        },
    );

    // Without CAP_NET_RAW: the error names it. setpriv drops it from the bounding and inheritable sets.
    match proc::which("setpriv") {
        None => check(
            &mut report,
            "without CAP_NET_RAW: the error names it",
            || bail!("setpriv (util-linux) not found"),
        ),
        Some(setpriv) => {
            let out = Command::new(setpriv)
                .args(["--inh-caps=-net_raw", "--bounding-set=-net_raw"])
                .arg(kwire)
                .args([
                    "run",
                    "--source",
                    "pcap",
                    "--interface",
                    "lo",
                    "--duration",
                    "1",
                ])
                .output()?;
            let err = String::from_utf8_lossy(&out.stderr).to_string();
            check(
                &mut report,
                "without CAP_NET_RAW: exit 2, the error names CAP_NET_RAW and what to do",
                || {
                    if out.status.code() != Some(2)
                        || !err.contains("CAP_NET_RAW")
                        || !err.contains("setcap")
                    {
                        bail!("{}: {err}", out.status);
                    }
                    Ok(())
                },
            );
        }
    }
    Ok(report)
}

/// `cargo xtask demo`, live part: real clients against a real broker make alerts happen while
/// `kwire run --source auto` watches loopback and prints each alert as it fires (eBPF when it loads here,
/// libpcap otherwise; kwire says which on stderr).
pub fn demo_live(paths: &Paths, kwire: &Path, names: &[&str]) -> Result<()> {
    let python = paths.require_python()?;
    for name in names {
        let Some(sc) = scenarios::find(name) else {
            bail!("unknown scenario {name}")
        };
        let logs = paths.out().join("logs").join(format!("demo-{}", sc.name));
        let _ = fs::remove_dir_all(&logs);
        fs::create_dir_all(&logs)?;
        println!(
            "\n=== live: {} ===\n{}",
            sc.name,
            sc.summary.split_whitespace().collect::<Vec<_>>().join(" ")
        );
        let mut broker = Broker::start(sc.broker, paths, &logs)?;
        for (topic, parts) in sc.topics {
            broker.create_topic(topic, *parts)?;
        }
        let args: Vec<String> = ["--source", "auto", "--interface", "lo", "--ports"]
            .iter()
            .map(|s| s.to_string())
            .chain([join(&broker.ports)])
            .collect();
        let mut agent = Agent::start(Spec {
            cmd: Command::new(kwire),
            args,
            netns: None,
            outputs: Outputs::Terminal,
        })?;
        if let Err(e) = agent.wait_ready() {
            let _ = broker.stop();
            return Err(e.context("kwire run did not become ready"));
        }
        let steps = capture::run_steps(paths, &python, sc, &mut broker, &logs);
        thread::sleep(Duration::from_millis(300));
        agent.stop("INT")?;
        let _ = broker.stop();
        steps.with_context(|| format!("the scenario's clients (logs in {})", logs.display()))?;
    }
    Ok(())
}
