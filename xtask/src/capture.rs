//! `cargo xtask capture <scenario>`: broker up, tcpdump on `lo` filtered to the broker's ports,
//! the scenario's client scripts in order, tcpdump stopped and its counters checked, broker down.
//!
//! Easy to get wrong: without `--immediate-mode` a short run can capture nothing, so the
//! "packets captured / dropped by kernel" lines are always read and checked; with it, the
//! default buffer drops bursts (see -B below). tcpdump must be
//! stopped with SIGINT (not killed) so it flushes and prints them. Everything started is stopped
//! on every path: `Proc` kills on drop, and tcpdump is stopped before an error is returned.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc::Receiver;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::broker::Broker;
use crate::proc::{self, Out, Proc};
use crate::scenarios::Scenario;
use crate::tools::{self, Paths};

pub struct Tcpdump {
    proc: Proc,
    stderr: Receiver<String>,
    pub filter: String,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct DumpStats {
    pub captured: u64,
    pub received: u64,
    pub dropped: u64,
}

impl Tcpdump {
    /// Starts tcpdump on loopback for these TCP ports and waits for "listening on".
    pub fn start(file: &Path, ports: &[u16]) -> Result<Tcpdump> {
        let bin = tools::require_tcpdump()?;
        let filter = ports
            .iter()
            .map(|p| format!("tcp port {p}"))
            .collect::<Vec<_>>()
            .join(" or ");
        let mut cmd = Command::new(bin);
        // -B: with --immediate-mode libpcap uses a TPACKET_V2 ring of fixed-size slots, each the
        // snap length (-s 0 = 256 KiB): the default 2 MiB buffer holds only ~8 packets and a
        // burst while tcpdump is descheduled is "dropped by kernel". 128 MiB holds ~500.
        if std::env::var_os("KWIRE_TCPDUMP_BULK").is_some() {
            // Benchmark loads (hundreds of MB in seconds): libpcap's block ring (TPACKET_V3, no
            // --immediate-mode) with a 1 GiB buffer keeps up where per-packet slots drop.
            cmd.args(["-i", "lo", "-s", "0", "-B", "1048576", "-n"]);
        } else {
            cmd.args([
                "-i",
                "lo",
                "-s",
                "0",
                "-B",
                "131072",
                "-U",
                "--immediate-mode",
                "-n",
            ]);
        }
        if running_as_root() {
            cmd.args(["-Z", "root"]); // keep the file owned by us, not by the tcpdump user
        }
        cmd.arg("-w").arg(file).arg(&filter);
        let (proc, stderr) = proc::spawn_tcpdump(&mut cmd)?;
        Ok(Tcpdump {
            proc,
            stderr,
            filter,
        })
    }

    /// SIGINT, wait for exit, parse the counters. Fails if the kernel dropped packets.
    pub fn stop(mut self) -> Result<DumpStats> {
        // let the last segments (FIN/ACK of closing clients) reach the file
        thread::sleep(Duration::from_millis(300));
        self.proc.signal("INT")?;
        self.proc.wait_timeout(Duration::from_secs(10))?;
        let mut stats = DumpStats::default();
        let mut seen = false;
        let mut all = Vec::new();
        while let Ok(Some(l)) =
            proc::recv_line(&self.stderr, Duration::from_secs(2), "tcpdump's counters")
        {
            let n = l
                .split_whitespace()
                .next()
                .and_then(|w| w.parse::<u64>().ok());
            if let Some(n) = n {
                if l.contains("packets captured") {
                    stats.captured = n;
                    seen = true;
                } else if l.contains("received by filter") {
                    stats.received = n;
                } else if l.contains("dropped by kernel") {
                    stats.dropped = n;
                }
            }
            all.push(l);
        }
        if !seen {
            bail!(
                "tcpdump printed no \"packets captured\" line: {}",
                all.join(" | ")
            );
        }
        if stats.dropped > 0 {
            bail!(
                "tcpdump: {} packets dropped by kernel: the capture is incomplete",
                stats.dropped
            );
        }
        Ok(stats)
    }
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// What one capture produced: the pcap and a JSON description (facts) of what happened.
pub struct Captured {
    pub pcap: PathBuf,
    pub facts_file: PathBuf,
    pub facts: Value,
    pub seconds: f64,
}

/// `<out>.pcap` → `<out>.facts.json`
pub fn facts_path(pcap: &Path) -> PathBuf {
    let stem = pcap
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    pcap.with_file_name(format!("{stem}.facts.json"))
}

pub fn capture(paths: &Paths, sc: &Scenario, out: &Path) -> Result<Captured> {
    let started = Instant::now();
    let python = paths.require_python()?;
    let tcpdump_version = tools::tcpdump_version(&tools::require_tcpdump()?)?;
    if let Some(dir) = out.parent() {
        fs::create_dir_all(dir)?;
    }
    let logs = paths.out().join("logs").join(sc.name);
    let _ = fs::remove_dir_all(&logs);
    fs::create_dir_all(&logs)?;

    let mut broker = Broker::start(sc.broker, paths, &logs)?;
    for (topic, parts) in sc.topics {
        broker.create_topic(topic, *parts)?;
    }
    let partial = out.with_extension("pcap.partial");
    let dump = match Tcpdump::start(&partial, &broker.ports) {
        Ok(d) => d,
        Err(e) => {
            let _ = fs::remove_file(&partial);
            return Err(e);
        }
    };
    let filter = dump.filter.clone();
    let steps = run_steps(paths, &python, sc, &mut broker, &logs);
    let stats = dump.stop();
    let broker_desc = broker.describe();
    let _ = broker.stop();
    let checked = steps.and_then(|steps| {
        let stats = stats?;
        if stats.captured == 0 {
            bail!(
                "tcpdump captured nothing on ports {:?}",
                broker_desc["ports"]
            );
        }
        Ok((steps, stats))
    });
    let (steps, stats) = match checked {
        Ok(v) => v,
        Err(e) => {
            let _ = fs::remove_file(&partial); // never leave a half capture beside the fixtures
            return Err(e.context(format!(
                "capturing {} (logs in {})",
                sc.name,
                logs.display()
            )));
        }
    };
    fs::rename(&partial, out)
        .with_context(|| format!("moving the capture to {}", out.display()))?;
    let bytes = fs::metadata(out)?.len();
    let seconds = started.elapsed().as_secs_f64();
    let rel = |p: &Path| {
        p.strip_prefix(&paths.root)
            .unwrap_or(p)
            .display()
            .to_string()
    };
    let facts = json!({
        "scenario": sc.name,
        "summary": sc.summary,
        "command": format!("cargo xtask capture {} --out {}", sc.name, rel(out)),
        "broker": broker_desc,
        "capture": {
            "file": out.file_name().map(|f| f.to_string_lossy().to_string()),
            "tool": format!("tcpdump {tcpdump_version}"),
            "interface": "lo",
            "link_type": "EN10MB",
            "filter": filter,
            "packets_captured": stats.captured,
            "packets_received_by_filter": stats.received,
            "packets_dropped_by_kernel": stats.dropped,
            "bytes": bytes,
        },
        "topics": sc.topics.iter().map(|(t, p)| json!({"name": t, "partitions": p})).collect::<Vec<_>>(),
        "steps": steps,
        "seconds": (seconds * 10.0).round() / 10.0,
    });
    let facts_file = facts_path(out);
    fs::write(&facts_file, serde_json::to_string_pretty(&facts)? + "\n")?;
    Ok(Captured {
        pcap: out.to_path_buf(),
        facts_file,
        facts,
        seconds,
    })
}

/// Runs the scenario's client scripts in order against `broker`; returns each step's facts. Shared
/// with `cargo xtask live`, which captures with `kwire run` instead of tcpdump.
pub fn run_steps(
    paths: &Paths,
    python: &Path,
    sc: &Scenario,
    broker: &mut Broker,
    logs: &Path,
) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for (i, step) in sc.steps.iter().enumerate() {
        let t = Instant::now();
        if step.script == crate::scenarios::RESTART_BROKER {
            broker
                .restart(paths, logs, sc.topics)
                .with_context(|| format!("step {} of {}: restarting the broker", i + 1, sc.name))?;
            out.push(json!({
                "script": step.script,
                "args": step.args,
                "seconds": (t.elapsed().as_secs_f64() * 100.0).round() / 100.0,
                "facts": [{"fact": "broker_restarted", "ports": broker.ports,
                           "topics_created": sc.topics.iter().map(|(t, p)| json!({"name": t, "partitions": p})).collect::<Vec<_>>()}],
            }));
            continue;
        }
        let script = paths.harness().join(step.script);
        let log = logs.join(format!(
            "step{}-{}.log",
            i + 1,
            step.script.trim_end_matches(".py")
        ));
        let mut cmd = Command::new(python);
        cmd.arg(&script)
            .args(step.args)
            .arg("--bootstrap")
            .arg(&broker.bootstrap)
            .current_dir(paths.harness())
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1");
        let what = format!("{} {}", step.script, step.args.join(" "));
        let mut p = Proc::spawn(&what, &mut cmd, false, Out::Lines, Out::File(&log))?;
        let rx = p.stdout.take().expect("piped");
        let status = p.wait_timeout(Duration::from_secs(step.timeout_s));
        let mut facts = Vec::new();
        while let Ok(Some(l)) = proc::recv_line(&rx, Duration::from_secs(2), "script output") {
            if let Some(j) = l.strip_prefix("FACT ") {
                facts.push(
                    serde_json::from_str::<Value>(j)
                        .with_context(|| format!("bad FACT line from {what}: {j}"))?,
                );
            }
        }
        let status = status.with_context(|| {
            format!(
                "step {} of {}: {what}\n{}",
                i + 1,
                sc.name,
                proc::tail(&log, 30)
            )
        })?;
        if let Some(st) = broker.exited() {
            bail!(
                "the broker exited ({st}) during step {} of {}: {what}\n{}",
                i + 1,
                sc.name,
                proc::tail(&logs.join("broker.log"), 20)
            );
        }
        if !status.success() {
            bail!(
                "step {} of {} failed ({status}): {what}\n--- {}:\n{}",
                i + 1,
                sc.name,
                log.display(),
                proc::tail(&log, 30)
            );
        }
        out.push(json!({
            "script": step.script,
            "args": step.args,
            "seconds": (t.elapsed().as_secs_f64() * 100.0).round() / 100.0,
            "facts": facts,
        }));
    }
    Ok(out)
}
