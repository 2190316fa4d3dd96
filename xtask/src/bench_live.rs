//! `cargo xtask bench`, live section: `kwire run` watching real traffic, its loss, CPU and memory.
//!
//! 1. Realistic load: the nine clients of tests/harness/bench_mix.py against a 3-broker mock in a network
//!    namespace whose `lo` has MTU 1500 (offloads off) for `--live-seconds`, `kwire run` (libpcap on that
//!    `lo`, then eBPF) and `tcpdump -w /dev/null` beside it. CPU seconds per GB on the wire and per million
//!    exchanges, peak RSS (and RSS beyond the configured libpcap ring), loss.
//! 2. The veth ladder (`--no-ladder` skips it): the realistic 1500-byte capture replayed by tcpreplay onto
//!    one end of a veth pair (in a namespace of its own; as many copies of the file as ~6 s at the rate
//!    need, each with its addresses rewritten by `tcprewrite --seed=N`, so every copy is the whole
//!    conversations again on new addresses) at each rate of `--ladder-mbps`, tcpreplay pinned to CPU 0,
//!    the receiver pinned to CPU 1: first
//!    `kwire run --source pcap` on the other end, then `tcpdump -w /dev/null` there on the same load.
//!    Loss = the source's kernel/ring/interface drops, TCP gaps, and packets sent but never seen.
//! 3. Kafka over TLS (`--no-tls` skips it, `--tls-only` runs only it): tansu behind stunnel4 with a
//!    throwaway CA (tls_check.rs's `TlsBroker`), tests/harness/tls_load.py producing `--tls-megabytes`
//!    (500) MB in 100 kB records over TLS and fetching them back; `kwire run --source ebpf` on the TLS
//!    port (OpenSSL uprobes on) and a second one on the stunnel→tansu leg with `--tls-uprobes off` (the
//!    same Kafka bytes in plaintext on the wire), side by side: Kafka bytes, CPU s, CPU s per GB of
//!    Kafka, peak RSS, exchanges, ring drops. Also written to tests/out/bench/live-tls.json. Needs root.
//! 4. `--live-big-batch`: the old ladder: a producer and a consumer moving 200 MB of 10 kB records on the
//!    host's `lo` at rising target rates, libpcap and eBPF: the highest zero-loss rate.
//!
//! `--run-args "ARGS"` adds arguments to every `kwire run` (e.g. `--snaplen 2048` to see what the
//! libpcap ring's slot size does).
//!
//! CPU is utime+stime from /proc/<pid>/stat, from ready to exit (read while the exited agent is a
//! zombie, before it is reaped); peak RSS is VmHWM read just before SIGTERM.
//!
//! Easy to get wrong:
//! - Not `tcpreplay --unique-ip` for the ladder's loops: it rewrites each loop's addresses so that the
//!   two directions of a connection stop matching (measured: after the first loop every connection was
//!   two one-way flows, requests never answered, responses ignored as not Kafka), so CPU per GB was
//!   flattered by ignored bytes and memory filled with unanswered requests. `tcprewrite --seed` maps
//!   every address by one function, both directions alike; the copies are cached beside the capture.
//! - It is a benchmark: it prints numbers and never fails on them; a run that cannot start or finish
//!   prints its row as failed and the next one goes on.
//! - The agent's health port lives in the namespace it runs in: /readyz is asked from a thread that
//!   entered that namespace (setns), never from the host.
//! - Replaying the same file twice repeats its connections and TCP sequence numbers: on the same
//!   addresses the second copy would look like retransmissions and the agent would skip it (cheap, and
//!   wrong); hence a copy per `--seed`, each on its own addresses.
//! - The TLS section's GB are the Kafka bytes, counted once: the plaintext leg's TCP payload. The TLS
//!   agent's own plaintext count is about twice that (the client's and stunnel's OpenSSL are both
//!   probed; one end's copy is dropped in user space), its packet bytes are TLS records. Both agents
//!   run at once (they share the load and the machine), each one's CPU from its readiness to its exit.
//! - The eBPF source attaches at the cgroup root: it sees the namespace's sockets from the host, and
//!   conflicts with another program attached there at the same time (that row then fails).

use std::fs;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::agent::{self, Agent, Outputs, Spec, Stopped};
use crate::bench::Options;
use crate::bench_capture::{self as cap, Cluster, Dump, Mix, Netns};
use crate::broker::{Broker, BrokerKind};
use crate::proc::{self, Out, Proc};
use crate::tls_check::TlsBroker;
use crate::tools::{self, Paths};

/// kwire's default libpcap kernel buffer (`--pcap-buffer-mb`), MiB: RSS is reported beyond it.
const PCAP_RING_MB: f64 = 128.0;
/// Every agent here prints only alerts and the summary.
const QUIET: &[&str] = &["--json", "--no-exchanges", "--no-notices"];
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
    let tck = agent::clock_ticks();
    realistic_live(paths, kwire, o, &dir, tck)?;
    if o.ladder {
        ladder(kwire, o, &dir, tck, realistic_1500, facts)?;
    }
    if o.tls {
        tls_live(paths, kwire, o, &dir, tck)?;
    }
    if o.live_big_batch {
        big_batch_ladder(paths, kwire, &dir, tck)?;
    }
    Ok(())
}

/// `cargo xtask bench --tls-only`: the TLS section alone.
pub fn tls_only(paths: &Paths, kwire: &Path, o: &Options) -> Result<()> {
    let dir = paths.out().join("bench").join("live");
    fs::create_dir_all(&dir)?;
    tls_live(paths, kwire, o, &dir, agent::clock_ticks())
}

/// Kafka over TLS: the agent with uprobes on the TLS port beside the agent on the plaintext leg.
fn tls_live(paths: &Paths, kwire: &Path, o: &Options, dir: &Path, tck: f64) -> Result<()> {
    println!(
        "\nkwire run live, Kafka over TLS: tansu behind stunnel4, tests/harness/tls_load.py producing {} MB in \
         100 kB records (confluent-kafka, acks=1) over TLS and fetching them back; kwire --source ebpf on the TLS \
         port (OpenSSL uprobes) and on the stunnel->tansu plaintext leg (--tls-uprobes off), both at once",
        o.tls_megabytes
    );
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("  skipped: needs root (eBPF, uprobes)");
        return Ok(());
    }
    let dir = dir.join("tls");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    match tls_run(paths, kwire, o, &dir, tck) {
        Ok((rows, fact)) => {
            println!(
                "  {:<34} {:>8} {:>7} {:>10} {:>6} {:>8} {:>6} {:>9} {:>10}",
                "agent",
                "Kafka MB",
                "wire MB",
                "uprobe MB",
                "CPU s",
                "CPU s/GB",
                "RSS MB",
                "exchanges",
                "ring drops"
            );
            let f = |r: &Value, k: &str| r[k].as_f64().unwrap_or(f64::NAN);
            for r in &rows {
                println!(
                    "  {:<34} {:>8.0} {:>7.0} {:>10.0} {:>6.2} {:>8.2} {:>6.0} {:>9} {:>10}",
                    r["agent"].as_str().unwrap_or(""),
                    f(r, "kafka_bytes") / 1e6,
                    f(r, "wire_bytes") / 1e6,
                    f(r, "uprobe_plaintext_bytes") / 1e6,
                    f(r, "cpu_s"),
                    f(r, "cpu_s_per_gb"),
                    f(r, "peak_rss_mb"),
                    r["exchanges"].as_u64().unwrap_or(0),
                    r["ring_drops"].as_u64().unwrap_or(0),
                );
            }
            println!(
                "  (Kafka MB: the plaintext leg's TCP payload, the same Kafka bytes for both rows, CPU s/GB is per \
                 GB of it; wire MB: what each agent's cgroup_skb programs took; uprobe MB: plaintext copied by the \
                 uprobes, both ends of each TLS connection (client and stunnel); CPU from readiness to exit, the \
                 uprobes' own kernel-side copies run in the probed processes and are not counted)"
            );
            println!(
                "  load: {} records of {} bytes produced in {} s, {} fetched back in {} s",
                fact["produced"],
                fact["record_bytes"],
                fact["produce_seconds"],
                fact["consumed"],
                fact["fetch_seconds"]
            );
            let out = paths.out().join("bench").join("live-tls.json");
            fs::write(
                &out,
                serde_json::to_string_pretty(&json!({
                    "megabytes": o.tls_megabytes,
                    "load": fact,
                    "agents": rows,
                }))? + "\n",
            )?;
            println!("  (written to {})", out.display());
        }
        Err(e) => println!("  run failed: {e:#}"),
    }
    Ok(())
}

fn tls_run(
    paths: &Paths,
    kwire: &Path,
    o: &Options,
    dir: &Path,
    tck: f64,
) -> Result<(Vec<Value>, Value)> {
    let python = paths.require_python()?;
    let tb = TlsBroker::start(paths, dir, &[("kw-bench", 1)])?;
    let start = |port: u16, extra: &[&str], stem: &str| -> Result<Agent> {
        let args = strings(&["--source", "ebpf", "--ports", &port.to_string()]);
        let args = [args, strings(extra), strings(QUIET), o.run_args.clone()].concat();
        let mut a = Agent::start(Spec::new(kwire, &args, dir, stem))?;
        a.wait_ready()
            .with_context(|| format!("{stem} not ready"))?;
        Ok(a)
    };
    let tls_agent = start(tb.tls_port, &[], "kwire-tls")?;
    let plain_agent = start(tb.plain_port, &["--tls-uprobes", "off"], "kwire-plain")?;
    let cpu0 = [
        tls_agent.cpu_ticks().unwrap_or(0),
        plain_agent.cpu_ticks().unwrap_or(0),
    ];

    let log = dir.join("tls_load.log");
    let mut cmd = Command::new(&python);
    cmd.arg(paths.harness().join("tls_load.py"))
        .args(["--bootstrap", &format!("127.0.0.1:{}", tb.tls_port)])
        .arg("--ca")
        .arg(&tb.ca)
        .args(["--topic", "kw-bench"])
        .args(["--megabytes", &o.tls_megabytes.to_string()])
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let mut p = Proc::spawn("tls_load.py", &mut cmd, false, Out::Lines, Out::File(&log))?;
    let rx = p.stdout.take().expect("piped");
    let st = p.wait_timeout(Duration::from_secs(300))?;
    let mut fact = None;
    while let Ok(Some(l)) = proc::recv_line(&rx, Duration::from_secs(1), "load output") {
        if let Some(j) = l.strip_prefix("FACT ") {
            fact = Some(serde_json::from_str::<Value>(j)?);
        }
    }
    if !st.success() {
        bail!("tls_load.py failed ({st}):\n{}", proc::tail(&log, 5));
    }
    let fact = fact.context("no FACT line from tls_load.py")?;
    thread::sleep(Duration::from_secs(2));

    let mut runs = Vec::new();
    for (a, cpu0) in [tls_agent, plain_agent].into_iter().zip(cpu0) {
        let hwm = a.hwm_mb();
        runs.push(AgentRun::new(&a.stop("TERM")?, cpu0, tck, hwm)?);
    }
    // The Kafka traffic: the plaintext leg's TCP payload (the same bytes the TLS clients sent and
    // received); the TLS agent's own plaintext count is about twice that (both ends are probed).
    let kafka = runs[1].u("tcp", "bytes_delivered");
    let mut rows = Vec::new();
    for (r, label) in runs.iter().zip([
        "TLS port, OpenSSL uprobes",
        "plaintext leg, --tls-uprobes off",
    ]) {
        rows.push(json!({
            "agent": label,
            "kafka_bytes": kafka,
            "wire_bytes": r.wire_bytes(),
            "uprobe_plaintext_bytes": r.u("plaintext", "bytes"),
            "cpu_s": r.cpu_s,
            "cpu_s_per_gb": r.cpu_s / (kafka as f64 / 1e9),
            "peak_rss_mb": r.hwm_mb,
            "exchanges": r.u("kafka", "requests"),
            "responses": r.u("kafka", "responses"),
            "ring_drops": r.u("capture", "ring_drops") + r.u("capture", "plaintext_ring_drops"),
            "kernel_drops": r.u("capture", "kernel_drops"),
            "tls_attach_failed": r.u("capture", "tls_attach_failed"),
            "capture": r.summary["capture"]["description"],
        }));
    }
    drop(tb);
    Ok((rows, fact))
}

/// What one `kwire run` did.
struct AgentRun {
    summary: Value,
    cpu_s: f64,
    hwm_mb: f64,
}

impl AgentRun {
    /// From a stopped agent: its summary, the CPU it used since `cpu0` ticks, the peak RSS read before.
    fn new(stopped: &Stopped, cpu0: u64, tck: f64, hwm_mb: f64) -> Result<AgentRun> {
        Ok(AgentRun {
            summary: stopped
                .summary()
                .with_context(|| format!("kwire run ({}): {}", stopped.status, stopped.stderr))?
                .clone(),
            cpu_s: stopped.cpu_ticks.saturating_sub(cpu0) as f64 / tck,
            hwm_mb,
        })
    }

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
    let (cmd, netns) = if src == "pcap" {
        (ns.command(kwire), Some(ns.name.as_str()))
    } else {
        (Command::new(kwire), None)
    };
    let args = strings(&["--source", src, "--interface", "lo", "--ports", &ports]);
    let mut agent = Agent::start(Spec {
        cmd,
        args: [args, strings(QUIET), o.run_args.clone()].concat(),
        netns,
        outputs: Outputs::Files {
            dir: &logs,
            stem: src,
        },
    })?;
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
    let stopped = agent.stop("TERM")?;
    let d = dump.stop().ok();
    cluster.stop();
    Ok((AgentRun::new(&stopped, cpu0, tck, hwm)?, d, secs))
}

/// Copies of the capture the ladder replays at most (top speed: ~8 x 300 MB in about 6 s).
const MAX_COPIES: usize = 8;

/// `n` copies of `file`, the Nth with every IP address mapped by `tcprewrite --seed=N` (one function
/// for all addresses, so both directions of a connection stay one connection), made once and kept in
/// `dir` while they are newer than `file`.
fn ladder_copies(file: &Path, n: usize, dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let tcprewrite = proc::which("tcprewrite").context(
        "tcprewrite not installed (Debian's tcpreplay package has it: cargo xtask setup)",
    )?;
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let made = fs::metadata(file)?.modified()?;
    let mut out = Vec::new();
    for i in 1..=n {
        let copy = dir.join(format!("{stem}.seed{i}.pcap"));
        let fresh = fs::metadata(&copy)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t >= made);
        if !fresh {
            let mut c = Command::new(&tcprewrite);
            c.arg(format!("--seed={i}"))
                .arg("--infile")
                .arg(file)
                .arg("--outfile")
                .arg(&copy);
            proc::run_quiet("tcprewrite", &mut c, Duration::from_secs(300))?;
        }
        out.push(copy);
    }
    Ok(out)
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
        "\nveth ladder: {} ({:.0} MB) replayed by tcpreplay onto a veth pair at each rate (as many copies as \
         ~{STEP_SECONDS:.0} s need, up to {MAX_COPIES}, each on new addresses by tcprewrite --seed), tcpreplay on CPU 0, the receiver on CPU 1; kwire run --source pcap (ring \
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
    // Beside the capture (kept between runs), not in the live logs folder (emptied by every run).
    let copies = ladder_copies(file, MAX_COPIES, file.parent().unwrap_or(dir))?;
    let replay = |rate: u32, tag: &str| -> Result<Sent> {
        let n = if rate == 0 {
            MAX_COPIES
        } else {
            ((f64::from(rate) * 1e6 / 8.0 * STEP_SECONDS / size).ceil() as usize)
                .clamp(2, MAX_COPIES)
        };
        let mut c = pinned(0, &tcpreplay);
        c.args(["-i", "kwv-tx", "-K"]);
        if rate == 0 {
            c.arg("--topspeed");
        } else {
            c.arg(format!("--mbps={rate}"));
        }
        c.args(&copies[..n]);
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
            let args = strings(&["--source", "pcap", "--interface", "kwv-rx", "--ports"]);
            let args = [
                args,
                vec![ports.join(",")],
                strings(QUIET),
                o.run_args.clone(),
            ]
            .concat();
            let stem = format!("ladder-{label}");
            let mut agent = Agent::start(Spec {
                cmd: pinned(1, kwire),
                args,
                netns: Some(&ns.name),
                outputs: Outputs::Files { dir, stem: &stem },
            })?;
            agent.wait_ready()?;
            let cpu0 = agent.cpu_ticks().unwrap_or(0);
            let sent = replay(rate, &format!("kwire-{label}"))?;
            thread::sleep(Duration::from_millis(500));
            let hwm = agent.hwm_mb();
            let stopped = agent.stop("TERM")?;
            Ok((AgentRun::new(&stopped, cpu0, tck, hwm)?, sent))
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
    let args = strings(&[
        "--source",
        src,
        "--interface",
        "lo",
        "--ports",
        &port.to_string(),
    ]);
    let args = [args, strings(QUIET)].concat();
    let mut agent = Agent::start(Spec::new(kwire, &args, dir, &stem))?;
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
    let a = AgentRun::new(&agent.stop("TERM")?, cpu0, tck, 0.0)?;
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

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}
