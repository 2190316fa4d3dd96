//! `cargo xtask bench`, live section: the highest sustained Kafka produce+fetch rate on loopback that
//! `kwire run` follows with zero loss, and the agent's CPU seconds per GB, pcap and eBPF side by side.
//!
//! One mock broker; per source and target rate, a fresh 96-partition topic (the mock keeps ~5 MB per
//! partition), `kwire run --source S --interface lo --ports P --json --no-exchanges` started and
//! awaited on /readyz, then tests/harness/bench_rate.py producing and fetching a fixed volume at the
//! target rate, then SIGTERM and the agent's JSON summary read. Zero loss = no kernel, ring or
//! interface drops and no TCP gaps. CPU is utime+stime from /proc/<pid>/stat, from ready to exit
//! (read while the exited agent is a zombie, before it is reaped).
//!
//! Easy to get wrong: it is a benchmark: it prints numbers and never fails on them; a run that
//! cannot start or finish prints its row as failed and the next one goes on.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::broker::{self, Broker, BrokerKind};
use crate::proc::{self, Out, Proc};
use crate::tools::{self, Paths};

const PARTITIONS: u32 = 96;
const MEGABYTES: u32 = 200;
/// Target produce rates in MB/s; 0 = unthrottled.
const RATES: [u32; 5] = [25, 50, 100, 200, 0];
const SOURCES: [&str; 2] = ["pcap", "ebpf"];

struct Row {
    target: u32,
    produce_mbps: f64,
    wire_mbps: f64,
    drops: u64,
    gaps: u64,
    gap_bytes: u64,
    desyncs: u64,
    cpu_s_per_gb: f64,
}

pub fn bench_live(paths: &Paths) -> Result<()> {
    eprintln!("bench live: building kwire (release)");
    let st = Command::new(tools::cargo())
        .args(["build", "--release", "--quiet", "-p", "kwire"])
        .current_dir(&paths.root)
        .status()?;
    if !st.success() {
        bail!("`cargo build --release -p kwire` failed");
    }
    let kwire = paths.target_dir().join("release/kwire");
    let python = paths.require_python()?;
    let dir = paths.out().join("bench").join("live");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    let mut broker = Broker::start(BrokerKind::Mock(1), paths, &dir)?;
    let port = broker.ports[0];
    let tck = clock_ticks();

    println!(
        "\nkwire run live on lo (mock broker, {PARTITIONS} partitions, {MEGABYTES} MB of 10 kB records \
         produced and fetched at once per run)"
    );
    let mut n = 0;
    for src in SOURCES {
        println!("\nsource {src}:");
        println!(
            "  {:>12} {:>12} {:>12}  {:<44} {:>10}",
            "target MB/s", "produce MB/s", "wire MB/s", "loss", "CPU s/GB"
        );
        let mut best: Option<Row> = None;
        let mut lossy = false;
        for target in RATES {
            n += 1;
            let label = if target == 0 {
                "unthrottled".to_string()
            } else {
                target.to_string()
            };
            let r = one(
                &kwire,
                &python,
                paths,
                &mut broker,
                port,
                &dir,
                src,
                target,
                n,
                tck,
            );
            match r {
                Ok(row) => {
                    let lossless = row.drops == 0 && row.gaps == 0;
                    let loss = format!(
                        "{} (drops {}, gaps {} / {} B, desyncs {})",
                        if lossless { "no " } else { "yes" },
                        row.drops,
                        row.gaps,
                        row.gap_bytes,
                        row.desyncs
                    );
                    println!(
                        "  {:>12} {:>12.0} {:>12.0}  {:<44} {:>10.2}",
                        label, row.produce_mbps, row.wire_mbps, loss, row.cpu_s_per_gb
                    );
                    lossy |= !lossless;
                    if lossless
                        && best
                            .as_ref()
                            .is_none_or(|b| row.produce_mbps > b.produce_mbps)
                    {
                        best = Some(row);
                    }
                }
                Err(e) => println!("  {label:>12}  run failed: {e:#}"),
            }
        }
        match best {
            Some(b) => println!(
                "  highest zero-loss rate: {}{:.0} MB/s produced ({:.0} MB/s on the wire, target {}), {:.2} CPU s/GB",
                if lossy { "" } else { ">= " },
                b.produce_mbps,
                b.wire_mbps,
                if b.target == 0 { "unthrottled".to_string() } else { b.target.to_string() },
                b.cpu_s_per_gb
            ),
            None => println!("  highest zero-loss rate: none (every run lost data or failed)"),
        }
        if !lossy {
            println!("  (no run lost data: the bound is the load generator's, not the agent's)");
        }
    }
    let _ = broker.stop();
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn one(
    kwire: &Path,
    python: &Path,
    paths: &Paths,
    broker: &mut Broker,
    port: u16,
    dir: &Path,
    src: &str,
    target: u32,
    n: u32,
    tck: f64,
) -> Result<Row> {
    let topic = format!("kw-rate-{src}-{n}");
    broker.create_topic(&topic, PARTITIONS)?;
    let stem = format!(
        "{src}-{}",
        if target == 0 {
            "max".into()
        } else {
            target.to_string()
        }
    );
    let mut agent = Agent::start(
        kwire,
        &[
            "--source",
            src,
            "--interface",
            "lo",
            "--ports",
            &port.to_string(),
            "--json",
            "--no-exchanges",
            "--no-notices",
        ],
        dir,
        &stem,
    )?;
    agent.wait_ready()?;
    let cpu0 = agent.cpu_ticks().unwrap_or(0);

    let log = dir.join(format!("{stem}.load.log"));
    let mut cmd = Command::new(python);
    cmd.arg(paths.harness().join("bench_rate.py"))
        .args(["--bootstrap", &broker.bootstrap, "--topic", &topic])
        .args(["--group", &format!("kw-bench-rate-{n}")])
        .args(["--partitions", &PARTITIONS.to_string()])
        .args(["--megabytes", &MEGABYTES.to_string()])
        .args(["--rate-mbps", &target.to_string()])
        .current_dir(paths.harness())
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let mut p = Proc::spawn(
        "bench_rate.py",
        &mut cmd,
        false,
        Out::Lines,
        Out::File(&log),
    )?;
    let rx = p.stdout.take().expect("piped");
    let st = p.wait_timeout(Duration::from_secs(120))?;
    let mut fact = None;
    while let Ok(Some(l)) = proc::recv_line(&rx, Duration::from_secs(1), "load output") {
        if let Some(j) = l.strip_prefix("FACT ") {
            fact = Some(serde_json::from_str::<Value>(j)?);
        }
    }
    if !st.success() {
        bail!("bench_rate.py failed ({st}):\n{}", proc::tail(&log, 5));
    }
    let fact = fact.context("no FACT line from bench_rate.py")?;
    thread::sleep(Duration::from_millis(300));
    let (sum, cpu1) = agent.stop()?;
    let secs = fact["seconds"].as_f64().unwrap_or(f64::NAN);
    let moved =
        fact["records"].as_f64().unwrap_or(0.0) * fact["value_bytes"].as_f64().unwrap_or(0.0);
    let c = &sum["capture"];
    let u = |v: &Value| v.as_u64().unwrap_or(0);
    let wire = u(&c["bytes"]) as f64;
    let cpu = cpu1.saturating_sub(cpu0) as f64 / tck;
    Ok(Row {
        target,
        produce_mbps: moved / secs / 1e6,
        wire_mbps: wire / secs / 1e6,
        drops: u(&c["kernel_drops"]) + u(&c["ring_drops"]) + u(&c["interface_drops"]),
        gaps: u(&sum["tcp"]["gaps"]),
        gap_bytes: u(&sum["tcp"]["gap_bytes"]),
        desyncs: u(&sum["kafka"]["desyncs"]),
        cpu_s_per_gb: if wire > 0.0 {
            cpu / (wire / 1e9)
        } else {
            f64::NAN
        },
    })
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Status code of `GET path` on 127.0.0.1:port (None when nothing answers); after live.rs.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.split_whitespace().nth(1)?.parse().ok()
}

/// A running `kwire run` (after live.rs's Agent), holding its Child so its pid can be read;
/// killed and reaped on drop unless it exited.
struct Agent {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
    health: u16,
}

impl Agent {
    fn start(kwire: &Path, args: &[&str], dir: &Path, stem: &str) -> Result<Agent> {
        let health = broker::free_port()?;
        let stdout = dir.join(format!("{stem}.live.jsonl"));
        let stderr = dir.join(format!("{stem}.live.stderr.txt"));
        let child = Command::new(kwire)
            .arg("run")
            .args(args)
            .arg("--health")
            .arg(format!("127.0.0.1:{health}"))
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout)?)
            .stderr(fs::File::create(&stderr)?)
            .spawn()
            .context("starting kwire run")?;
        Ok(Agent {
            child,
            stdout,
            stderr,
            health,
        })
    }

    fn wait_ready(&mut self) -> Result<()> {
        let t = Instant::now();
        loop {
            if http_status(self.health, "/readyz") == Some(200) {
                return Ok(());
            }
            if let Some(st) = self.child.try_wait()? {
                bail!(
                    "kwire run exited ({st}) before it was ready:\n{}",
                    proc::tail(&self.stderr, 20)
                );
            }
            if t.elapsed() > Duration::from_secs(20) {
                bail!(
                    "/readyz not 200 within 20s:\n{}",
                    proc::tail(&self.stderr, 20)
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// utime + stime (clock ticks) of the whole process, from /proc/<pid>/stat.
    fn cpu_ticks(&self) -> Option<u64> {
        stat(self.child.id()).map(|(_, t)| t)
    }

    /// SIGTERM; waits for the exit, reading the CPU time while it is a zombie; returns the JSON
    /// summary (the last stdout line) and the CPU ticks.
    fn stop(mut self) -> Result<(Value, u64)> {
        let pid = self.child.id();
        let mut ticks = self.cpu_ticks().unwrap_or(0);
        let st = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()?;
        if !st.success() {
            bail!("kill -TERM {pid} failed");
        }
        let end = Instant::now() + Duration::from_secs(20);
        while let Some((state, t)) = stat(pid) {
            ticks = ticks.max(t);
            if state == 'Z' || state == 'X' {
                break;
            }
            if Instant::now() > end {
                bail!("kwire run did not exit within 20s of SIGTERM");
            }
            thread::sleep(Duration::from_millis(10));
        }
        let st = self.child.wait()?;
        let out = fs::read_to_string(&self.stdout).unwrap_or_default();
        let last = out
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .with_context(|| {
                format!(
                    "kwire run ({st}) printed nothing: {}",
                    proc::tail(&self.stderr, 10)
                )
            })?;
        let v: Value = serde_json::from_str(last).context("the summary line is not JSON")?;
        if v["type"] != "summary" {
            bail!("kwire run ({st}): the last line is not the summary");
        }
        Ok((v, ticks))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// (state, utime + stime) of a process.
fn stat(pid: u32) -> Option<(char, u64)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // fields after "(comm)": state is field 3, utime 14, stime 15
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let state = f.first()?.chars().next()?;
    let ut: u64 = f.get(11)?.parse().ok()?;
    let stt: u64 = f.get(12)?.parse().ok()?;
    Some((state, ut + stt))
}
