//! `cargo xtask bench`, live section: `kwire run` watching real traffic, its loss, CPU and memory.
//!
//! 1. Realistic load: the nine clients of tests/harness/bench_mix.py against a 3-broker mock in a network
//!    namespace whose `lo` has MTU 1500 (offloads off) for `--live-seconds`, `kwire run` (libpcap on that
//!    `lo`, then eBPF) and `tcpdump -w /dev/null` beside it. CPU seconds per GB on the wire and per million
//!    exchanges, peak RSS (and RSS beyond the configured libpcap ring), loss.
//! 2. The veth ladder (`--no-ladder` skips it): the realistic 1500-byte capture replayed by tcpreplay onto
//!    one end of a veth pair (in a namespace of its own; `--unique-ip`, so every loop is new connections)
//!    at each rate of `--ladder-mbps`, tcpreplay pinned to CPU 0, the receiver pinned to CPU 1: first
//!    `kwire run --source pcap` on the other end, then `tcpdump -w /dev/null` there on the same load.
//!    Loss = the source's kernel/ring/interface drops, TCP gaps, and packets sent but never seen.
//! 3. `--live-big-batch`: the old ladder: a producer and a consumer moving 200 MB of 10 kB records on the
//!    host's `lo` at rising target rates, libpcap and eBPF: the highest zero-loss rate.
//!
//! `--run-args "ARGS"` adds arguments to every `kwire run` (e.g. `--snaplen 2048` to see what the
//! libpcap ring's slot size does).
//!
//! CPU is utime+stime from /proc/<pid>/stat, from ready to exit (read while the exited agent is a
//! zombie, before it is reaped); peak RSS is VmHWM read just before SIGTERM.
//!
//! Easy to get wrong:
//! - It is a benchmark: it prints numbers and never fails on them; a run that cannot start or finish
//!   prints its row as failed and the next one goes on.
//! - The agent's health port lives in the namespace it runs in: /readyz is asked from a thread that
//!   entered that namespace (setns), never from the host.
//! - Replaying a file in a loop repeats its TCP sequence numbers: without `--unique-ip` the second loop
//!   would look like retransmissions and the agent would skip it (cheap, and wrong).
//! - The eBPF source attaches at the cgroup root: it sees the namespace's sockets from the host, and
//!   conflicts with another program attached there at the same time (that row then fails).

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::bench::Options;
use crate::bench_capture::{self as cap, Cluster, Dump, Mix, Netns};
use crate::broker::{self, Broker, BrokerKind};
use crate::proc::{self, Out, Proc};
use crate::tools::{self, Paths};

/// kwire's default libpcap kernel buffer (`--pcap-buffer-mb`), MiB: RSS is reported beyond it.
const PCAP_RING_MB: f64 = 128.0;
/// Seconds of traffic per ladder step (the file is looped to last about this long).
const STEP_SECONDS: f64 = 6.0;

pub fn bench_live(
    paths: &Paths,
    kwire: &Path,
    o: &Options,
    realistic_1500: &Path,
    facts: &Value,
) -> Result<()> {
    if !o.run_args.is_empty() {
        println!(
            "\n(every kwire run below also gets: {})",
            o.run_args.join(" ")
        );
    }
    let dir = paths.out().join("bench").join("live");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    let tck = clock_ticks();
    realistic_live(paths, kwire, o, &dir, tck)?;
    if o.ladder {
        ladder(kwire, o, &dir, tck, realistic_1500, facts)?;
    }
    if o.live_big_batch {
        big_batch_ladder(paths, kwire, &dir, tck)?;
    }
    Ok(())
}

/// What one `kwire run` did.
struct AgentRun {
    summary: Value,
    cpu_s: f64,
    hwm_mb: f64,
}

impl AgentRun {
    fn u(&self, a: &str, b: &str) -> u64 {
        self.summary[a][b].as_u64().unwrap_or(0)
    }
    fn drops(&self) -> u64 {
        self.u("capture", "kernel_drops")
            + self.u("capture", "ring_drops")
            + self.u("capture", "interface_drops")
    }
    fn wire_bytes(&self) -> f64 {
        self.u("capture", "bytes") as f64
    }
    fn loss(&self) -> String {
        let lossless = self.drops() == 0 && self.u("tcp", "gaps") == 0;
        format!(
            "{} (drops {}, gaps {})",
            if lossless { "none" } else { "LOSS" },
            self.drops(),
            self.u("tcp", "gaps"),
        )
    }
}

fn realistic_live(paths: &Paths, kwire: &Path, o: &Options, dir: &Path, tck: f64) -> Result<()> {
    println!(
        "\nkwire run live, realistic load: the nine clients of the realistic capture for {} s against a 3-broker mock \
         in a network namespace (lo MTU 1500, offloads off); tcpdump -w /dev/null beside the agent",
        o.live_seconds
    );
    println!(
        "  {:<6} {:>8} {:>6} {:>9} {:>9} {:<26} {:>9} {:>6} {:>8} {:>11} {:>13}",
        "source",
        "wire MB",
        "MB/s",
        "packets",
        "exchanges",
        "kwire loss",
        "tcpdump",
        "CPU s",
        "CPU s/GB",
        "CPU s/M exch",
        "RSS MB (ring)"
    );
    for src in ["pcap", "ebpf"] {
        match realistic_one(paths, kwire, o, dir, tck, src) {
            Ok((a, dump, secs)) => {
                let gb = a.wire_bytes() / 1e9;
                let exch = a.u("kafka", "requests");
                let ring = if src == "pcap" { PCAP_RING_MB } else { 0.0 };
                println!(
                    "  {:<6} {:>8.0} {:>6.1} {:>9} {:>9} {:<26} {:>9} {:>6.2} {:>8.2} {:>11.2} {:>13}",
                    src,
                    a.wire_bytes() / 1e6,
                    a.wire_bytes() / 1e6 / secs,
                    a.u("capture", "packets"),
                    exch,
                    a.loss(),
                    match dump {
                        Some(d) if d.dropped == 0 => "no drops".to_string(),
                        Some(d) => format!("{} drops", d.dropped),
                        None => "-".into(),
                    },
                    a.cpu_s,
                    a.cpu_s / gb,
                    a.cpu_s / (exch as f64 / 1e6),
                    if ring > 0.0 {
                        format!("{:.0} (+{:.0})", a.hwm_mb, a.hwm_mb - ring)
                    } else {
                        format!("{:.0}", a.hwm_mb)
                    },
                );
            }
            Err(e) => println!("  {src:<6} run failed: {e:#}"),
        }
    }
    println!(
        "  targets (libpcap): CPU <= 1 s per GB; RSS <= 64 MB beyond the {PCAP_RING_MB:.0} MiB ring; no loss where tcpdump has none"
    );
    Ok(())
}

fn realistic_one(
    paths: &Paths,
    kwire: &Path,
    o: &Options,
    dir: &Path,
    tck: f64,
    src: &str,
) -> Result<(AgentRun, Option<cap::DumpStats>, f64)> {
    let ns = Netns::create("live", true)?;
    let logs = dir.join(format!("realistic-{src}"));
    fs::create_dir_all(&logs)?;
    let mut cluster = Cluster::start(paths, Some(&ns), &logs)?;
    let ports = cluster
        .ports
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let filter = cap::port_filter(&cluster.ports);
    let (mut cmd, agent_ns) = if src == "pcap" {
        (ns.command(kwire), Some(ns.name.as_str()))
    } else {
        (Command::new(kwire), None)
    };
    cmd.args([
        "run",
        "--source",
        src,
        "--interface",
        "lo",
        "--ports",
        &ports,
    ])
    .args(["--json", "--no-exchanges", "--no-notices"])
    .args(&o.run_args);
    let mut agent = Agent::start(cmd, agent_ns, &logs, src)?;
    agent.wait_ready()?;
    let mut td = ns.command(tools::require_tcpdump()?);
    td.args(["-i", "lo"]);
    let dump = Dump::start(td, Path::new("/dev/null"), &filter)?;
    let cpu0 = agent.cpu_ticks().unwrap_or(0);
    let mut mix = Mix::start(paths, Some(&ns), &mut cluster, &logs)?;
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs(u64::from(o.live_seconds));
    while Instant::now() < end {
        if let Some(e) = mix.failed() {
            bail!(e);
        }
        thread::sleep(Duration::from_millis(200));
    }
    mix.stop()?;
    let secs = t0.elapsed().as_secs_f64();
    thread::sleep(Duration::from_millis(500));
    let hwm = agent.hwm_mb();
    let (summary, cpu1) = agent.stop()?;
    let d = dump.stop().ok();
    cluster.stop();
    Ok((
        AgentRun {
            summary,
            cpu_s: cpu1.saturating_sub(cpu0) as f64 / tck,
            hwm_mb: hwm,
        },
        d,
        secs,
    ))
}

/// What tcpreplay said it did.
#[derive(Default)]
struct Sent {
    packets: u64,
    bytes: u64,
    seconds: f64,
    mbps: f64,
    pps: f64,
    failed: u64,
}

fn ladder(
    kwire: &Path,
    o: &Options,
    dir: &Path,
    tck: f64,
    file: &Path,
    facts: &Value,
) -> Result<()> {
    let Some(tcpreplay) = proc::which("tcpreplay") else {
        println!("\nveth ladder: skipped (tcpreplay not installed: cargo xtask setup installs it)");
        return Ok(());
    };
    if facts["how"]
        .as_str()
        .is_some_and(|h| h.contains("cut into 1500-byte"))
    {
        println!("  (the 1500-byte capture was rewritten from a loopback one: see its facts)");
    }
    let ns = match Netns::create("ladder", false) {
        Ok(ns) => ns,
        Err(e) => {
            println!("\nveth ladder: skipped (no network namespace: {e:#})");
            return Ok(());
        }
    };
    cap::run(ns.command("ip").args([
        "link", "add", "kwv-tx", "type", "veth", "peer", "name", "kwv-rx",
    ]))?;
    for dev in ["kwv-tx", "kwv-rx"] {
        cap::run(ns.command("ip").args(["link", "set", dev, "up"]))?;
    }
    let size = fs::metadata(file)?.len() as f64;
    let ports: Vec<String> = facts["broker"]["ports"]
        .as_array()
        .map(|a| a.iter().map(|p| p.to_string()).collect())
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // `program` in the namespace, pinned to `cpu` when there are two
    let pinned = |cpu: usize, program: &Path| -> Command {
        if cpus >= 2 {
            let mut c = ns.command("taskset");
            c.args(["-c", &cpu.to_string()]).arg(program);
            c
        } else {
            ns.command(program)
        }
    };
    println!(
        "\nveth ladder: {} ({:.0} MB) replayed by tcpreplay onto a veth pair at each rate (looped with --unique-ip \
         for ~{STEP_SECONDS:.0} s), tcpreplay on CPU 0, the receiver on CPU 1; kwire run --source pcap (ring \
         {PCAP_RING_MB:.0} MiB), then tcpdump -w /dev/null (default buffer), each alone on the same load",
        file.display(),
        size / 1e6
    );
    println!(
        "  {:>6} | {:<71} | tcpdump -w /dev/null",
        "", "kwire run --source pcap"
    );
    println!(
        "  {:>6} | {:>9} {:>6} {:>8} {:>7} {:>6} {:>8} {:>10} {:>9} | {:>9} {:>8} {:>7}",
        "target",
        "sent Mbps",
        "kpps",
        "drops",
        "missed",
        "gaps",
        "CPU s/GB",
        "CPU s/M ex",
        "RSS-ring",
        "sent Mbps",
        "drops",
        "missed"
    );
    let replay = |rate: u32, tag: &str| -> Result<Sent> {
        let loops = if rate == 0 {
            8
        } else {
            ((f64::from(rate) * 1e6 / 8.0 * STEP_SECONDS / size).ceil() as u64).max(2)
        };
        let mut c = pinned(0, &tcpreplay);
        c.args(["-i", "kwv-tx", "-K", "--unique-ip"]);
        c.arg(format!("--loop={loops}"));
        if rate == 0 {
            c.arg("--topspeed");
        } else {
            c.arg(format!("--mbps={rate}"));
        }
        c.arg(file);
        let log = dir.join(format!("tcpreplay-{tag}.log"));
        let out = proc::run_quiet("tcpreplay", &mut c, Duration::from_secs(300))?;
        fs::write(&log, &out)?;
        Ok(parse_tcpreplay(&out))
    };
    let (mut kwire_best, mut tcpdump_best) = (0.0f64, 0.0f64);
    let best = |m: f64| {
        if m > 0.0 {
            format!("{m:.0} Mbps")
        } else {
            "none of these rates".to_string()
        }
    };
    for &rate in &o.ladder_mbps {
        let label = if rate == 0 {
            "top".to_string()
        } else {
            rate.to_string()
        };
        // kwire alone
        let k = (|| -> Result<(AgentRun, Sent)> {
            let mut cmd = pinned(1, kwire);
            cmd.args(["run", "--source", "pcap", "--interface", "kwv-rx"])
                .args(["--ports", &ports.join(",")])
                .args(["--json", "--no-exchanges", "--no-notices"])
                .args(&o.run_args);
            let mut agent = Agent::start(cmd, Some(&ns.name), dir, &format!("ladder-{label}"))?;
            agent.wait_ready()?;
            let cpu0 = agent.cpu_ticks().unwrap_or(0);
            let sent = replay(rate, &format!("kwire-{label}"))?;
            thread::sleep(Duration::from_millis(500));
            let hwm = agent.hwm_mb();
            let (summary, cpu1) = agent.stop()?;
            Ok((
                AgentRun {
                    summary,
                    cpu_s: cpu1.saturating_sub(cpu0) as f64 / tck,
                    hwm_mb: hwm,
                },
                sent,
            ))
        })();
        // tcpdump alone
        let t = (|| -> Result<(cap::DumpStats, Sent)> {
            let mut cmd = pinned(1, &tools::require_tcpdump()?);
            cmd.args(["-i", "kwv-rx"]);
            let dump = Dump::start(cmd, Path::new("/dev/null"), "")?;
            let sent = replay(rate, &format!("tcpdump-{label}"))?;
            let st = dump.stop()?;
            Ok((st, sent))
        })();
        let left = match &k {
            Ok((a, s)) => {
                // sent but neither delivered nor counted as dropped by the socket (veth backlog)
                let missed = s
                    .packets
                    .saturating_sub(a.u("capture", "packets") + a.drops());
                let lossless = a.drops() == 0 && a.u("tcp", "gaps") == 0 && missed == 0;
                if lossless {
                    kwire_best = kwire_best.max(s.mbps);
                }
                format!(
                    "{:>9.0} {:>6.0} {:>8} {:>7} {:>6} {:>8.2} {:>10.2} {:>9.0}",
                    s.mbps,
                    s.pps / 1e3,
                    a.drops(),
                    missed,
                    a.u("tcp", "gaps"),
                    a.cpu_s / (a.wire_bytes() / 1e9),
                    a.cpu_s / (a.u("kafka", "requests") as f64 / 1e6),
                    a.hwm_mb - PCAP_RING_MB,
                )
            }
            Err(e) => format!("failed: {e:#}"),
        };
        let right = match &t {
            Ok((d, s)) => {
                // "received by filter" also counts what was still in the ring at SIGINT
                let missed = s
                    .packets
                    .saturating_sub(d.received.max(d.captured + d.dropped));
                if d.dropped == 0 && missed == 0 {
                    tcpdump_best = tcpdump_best.max(s.mbps);
                }
                format!("{:>9.0} {:>8} {:>7}", s.mbps, d.dropped, missed)
            }
            Err(e) => format!("failed: {e:#}"),
        };
        println!("  {label:>6} | {left} | {right}");
        for (what, s) in [
            ("kwire", k.as_ref().ok().map(|x| &x.1)),
            ("tcpdump", t.as_ref().ok().map(|x| &x.1)),
        ] {
            if let Some(s) = s.filter(|s| s.failed > 0) {
                println!(
                    "          (tcpreplay beside {what}: {} packets failed to send)",
                    s.failed
                );
            }
        }
    }
    println!(
        "  highest rate without loss: kwire {}, tcpdump {} (missed = sent by tcpreplay, never delivered to the socket)",
        best(kwire_best),
        best(tcpdump_best)
    );
    println!("  targets: zero loss wherever tcpdump has none; CPU <= 1 s per GB; RSS <= 64 MB beyond the ring");
    Ok(())
}

/// tcpreplay's "Actual:" and "Rated:" lines.
fn parse_tcpreplay(out: &str) -> Sent {
    let mut s = Sent::default();
    let num = |w: &str| {
        w.trim_matches(|c: char| !c.is_ascii_digit() && c != '.')
            .parse::<f64>()
            .unwrap_or(0.0)
    };
    for l in out.lines().map(str::trim) {
        let w: Vec<&str> = l.split_whitespace().collect();
        if l.starts_with("Actual:") && w.len() >= 7 {
            // Actual: 471833 packets (393814173 bytes) sent in 3.15 seconds
            s.packets = num(w[1]) as u64;
            s.bytes = num(w[3]) as u64;
            s.seconds = num(w[7.min(w.len() - 1)]);
            if let Some(i) = w.iter().position(|x| *x == "in") {
                s.seconds = w.get(i + 1).map_or(0.0, |x| num(x));
            }
        } else if l.starts_with("Rated:") {
            // Rated: 125000000.0 Bps, 1000.00 Mbps, 149788.25 pps
            for (i, x) in w.iter().enumerate() {
                if x.starts_with("Mbps") && i > 0 {
                    s.mbps = num(w[i - 1]);
                } else if x.starts_with("pps") && i > 0 {
                    s.pps = num(w[i - 1]);
                }
            }
        } else if l.starts_with("Failed packets:") {
            s.failed = w.last().map_or(0, |x| num(x) as u64);
        }
    }
    s
}

// ---------------------------------------------------------------------------------------------
// The old big-batch ladder (`--live-big-batch`).

const PARTITIONS: u32 = 96;
const MEGABYTES: u32 = 200;
/// Target produce rates in MB/s; 0 = unthrottled.
const RATES: [u32; 5] = [25, 50, 100, 200, 0];

struct Row {
    target: u32,
    produce_mbps: f64,
    wire_mbps: f64,
    lossless: bool,
    loss: String,
    cpu_s_per_gb: f64,
}

fn big_batch_ladder(paths: &Paths, kwire: &Path, dir: &Path, tck: f64) -> Result<()> {
    let python = paths.require_python()?;
    let mut broker = Broker::start(BrokerKind::Mock(1), paths, dir)?;
    let port = broker.ports[0];
    println!(
        "\nkwire run live on the host's lo, big batches (one mock broker, {PARTITIONS} partitions, {MEGABYTES} MB of \
         10 kB records produced and fetched at once per run)"
    );
    let mut n = 0;
    for src in ["pcap", "ebpf"] {
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
            match big_batch_one(
                kwire,
                &python,
                paths,
                &mut broker,
                port,
                dir,
                src,
                target,
                n,
                tck,
            ) {
                Ok(row) => {
                    println!(
                        "  {:>12} {:>12.0} {:>12.0}  {:<44} {:>10.2}",
                        label, row.produce_mbps, row.wire_mbps, row.loss, row.cpu_s_per_gb
                    );
                    lossy |= !row.lossless;
                    if row.lossless
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
fn big_batch_one(
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
    let mut cmd = Command::new(kwire);
    cmd.args(["run", "--source", src, "--interface", "lo", "--ports"])
        .arg(port.to_string())
        .args(["--json", "--no-exchanges", "--no-notices"]);
    let mut agent = Agent::start(cmd, None, dir, &stem)?;
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
    let (summary, cpu1) = agent.stop()?;
    let a = AgentRun {
        summary,
        cpu_s: cpu1.saturating_sub(cpu0) as f64 / tck,
        hwm_mb: 0.0,
    };
    let secs = fact["seconds"].as_f64().unwrap_or(f64::NAN);
    let moved =
        fact["records"].as_f64().unwrap_or(0.0) * fact["value_bytes"].as_f64().unwrap_or(0.0);
    let wire = a.wire_bytes();
    Ok(Row {
        target,
        produce_mbps: moved / secs / 1e6,
        wire_mbps: wire / secs / 1e6,
        lossless: a.drops() == 0 && a.u("tcp", "gaps") == 0,
        loss: a.loss(),
        cpu_s_per_gb: if wire > 0.0 {
            a.cpu_s / (wire / 1e9)
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

/// Status code of `GET path` on 127.0.0.1:port (None when nothing answers), asked from inside the
/// network namespace `ns` when given (a thread of our own enters it with setns).
fn http_status(ns: Option<&str>, port: u16, path: &str) -> Option<u16> {
    let ns = ns.map(|n| format!("/var/run/netns/{n}"));
    let path = path.to_string();
    thread::spawn(move || -> Option<u16> {
        if let Some(ns) = ns {
            let f = fs::File::open(ns).ok()?;
            // SAFETY: setns on a valid namespace fd changes only this (short-lived) thread's network
            // namespace; sockets it creates belong there.
            if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return None;
            }
        }
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
    })
    .join()
    .ok()
    .flatten()
}

/// A running `kwire run` holding its Child so its pid can be read; killed and reaped on drop unless
/// it exited. The command may be wrapped (`ip netns exec`, `taskset`, `nice`): they all exec, so the
/// pid is kwire's own.
struct Agent {
    child: Child,
    ns: Option<String>,
    stdout: PathBuf,
    stderr: PathBuf,
    health: u16,
}

impl Agent {
    /// `cmd` is the whole `kwire run ...` command; `--health` is added.
    fn start(mut cmd: Command, ns: Option<&str>, dir: &Path, stem: &str) -> Result<Agent> {
        let health = broker::free_port()?;
        let stdout = dir.join(format!("{stem}.live.jsonl"));
        let stderr = dir.join(format!("{stem}.live.stderr.txt"));
        let child = cmd
            .arg("--health")
            .arg(format!("127.0.0.1:{health}"))
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout)?)
            .stderr(fs::File::create(&stderr)?)
            .spawn()
            .context("starting kwire run")?;
        Ok(Agent {
            child,
            ns: ns.map(str::to_string),
            stdout,
            stderr,
            health,
        })
    }

    fn wait_ready(&mut self) -> Result<()> {
        let t = Instant::now();
        loop {
            if http_status(self.ns.as_deref(), self.health, "/readyz") == Some(200) {
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

    /// Peak resident set (VmHWM) so far, MB.
    fn hwm_mb(&self) -> f64 {
        fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            })
            .map_or(f64::NAN, |kb| kb / 1024.0)
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
