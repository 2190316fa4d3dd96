//! `cargo xtask bench`, the captures: production-like traffic of nine real clients (tests/harness/bench_mix.py)
//! against a 3-broker librdkafka mock cluster, recorded by tcpdump in both shapes, and today's big-batch
//! load; plus the pieces the live section shares (network namespace, mock cluster, the client mix).
//!
//! Realistic shapes: "1500" = clients, mock and tcpdump inside a network namespace whose `lo` has MTU
//! 1500 and TSO/GSO/GRO off, so the kernel itself cuts every segment to 1448 bytes of payload (captured
//! natively, nothing rewritten); "loopback" = the same load in a namespace whose `lo` keeps its MTU 65536
//! (segments up to 64 KiB). Each capture stops when its file reaches `--megabytes`. When network
//! namespaces are unavailable both are taken on the host's `lo` and the 1500-byte file is cut from the
//! loopback one by [`resegment`] (the facts file says so). Cached under tests/out/bench/ with a
//! `.facts.json` beside each file (clients, exchanges, packets, how it was made).
//!
//! Easy to get wrong:
//! - With TSO/GSO on, `lo` at MTU 1500 still carries 64 KiB segments: the offloads are turned off with
//!   ethtool and read back; a namespace where that fails is not used.
//! - tcpdump without `--immediate-mode` and with a 1 GiB ring (TPACKET_V3 blocks) keeps up with the load;
//!   its "dropped by kernel" counter is checked and a capture with drops is refused. On `lo` its "received
//!   by filter" counts each packet twice (both directions), "captured" once.
//! - `ip netns exec` execs the program, so the pid we hold is the program's own and `Proc`'s kill-on-drop
//!   still reaches it; the namespace itself is deleted on drop (and a stale one of the same name first).
//! - The mock has no CreateTopics: the mix's topics (`bench_mix.py --topics`) are created through the
//!   mock's stdin before the clients start.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use kwire_capture::PcapFile;
use kwire_flow::LinkType;
use serde_json::{json, Value};

use crate::broker::BrokerKind;
use crate::capture;
use crate::proc::{self, Out, Proc};
use crate::scenarios::{Scenario, Step};
use crate::tools::{self, Paths};

const MSS: usize = 1448;
/// Brokers in the mock cluster the mix runs against.
pub const BROKERS: u32 = 3;
/// A capture that has not reached its size by then is stopped anyway (the load is ~15 MB/s).
const MAX_CAPTURE_S: u64 = 900;

/// Which packets a capture holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Shape {
    /// 1500-byte MTU: what the traffic looks like on a real NIC.
    Eth1500,
    /// Loopback's MTU 65536: few, large segments.
    Loopback,
}

impl Shape {
    pub fn tag(self) -> &'static str {
        match self {
            Shape::Eth1500 => "1500",
            Shape::Loopback => "lo",
        }
    }
}

/// A network namespace of our own (deleted on drop) with `lo` up.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// `kwbench-<tag>`; with `mtu1500`, `lo` gets MTU 1500 and TSO/GSO/GRO off (checked).
    pub fn create(tag: &str, mtu1500: bool) -> Result<Netns> {
        let name = format!("kwbench-{tag}");
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        run(Command::new("ip").args(["netns", "add", &name]))?;
        let ns = Netns { name };
        run(ns.command("ip").args(["link", "set", "lo", "up"]))?;
        if mtu1500 {
            run(ns.command("ip").args(["link", "set", "lo", "mtu", "1500"]))?;
            run(ns
                .command("ethtool")
                .args(["-K", "lo", "tso", "off", "gso", "off", "gro", "off"]))?;
            let k = ns
                .command("ethtool")
                .args(["-k", "lo"])
                .output()
                .context("ethtool -k lo")?;
            let text = String::from_utf8_lossy(&k.stdout);
            for f in [
                "tcp-segmentation-offload: off",
                "generic-segmentation-offload: off",
                "generic-receive-offload: off",
            ] {
                if !text.lines().any(|l| l.trim().starts_with(f)) {
                    bail!("in {}, ethtool -k lo does not say {f:?}", ns.name);
                }
            }
        }
        Ok(ns)
    }

    /// `ip netns exec <name> <program>`.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs a short command; fails with its stderr on a non-zero exit.
pub fn run(cmd: &mut Command) -> Result<String> {
    let what = format!("{cmd:?}");
    proc::run_quiet(&what, cmd, Duration::from_secs(30))
}

/// `cmd` inside `ns` when given, else on the host.
fn in_ns(ns: Option<&Netns>, program: impl AsRef<OsStr>) -> Command {
    match ns {
        Some(ns) => ns.command(program),
        None => Command::new(program),
    }
}

/// kwire-mockbroker with [`BROKERS`] brokers, in a namespace or on the host, with the mix's topics.
pub struct Cluster {
    proc: Proc,
    pub bootstrap: String,
    pub ports: Vec<u16>,
    pub version: String,
}

impl Cluster {
    pub fn start(paths: &Paths, ns: Option<&Netns>, logs: &Path) -> Result<Cluster> {
        let bin = tools::mockbroker_or_build(paths)?;
        let mut cmd = in_ns(ns, &bin);
        cmd.args(["--brokers", &BROKERS.to_string()]);
        let (proc, bootstrap, ports) = crate::broker::spawn_mock(&mut cmd, logs)?;
        let mut c = Cluster {
            proc,
            bootstrap,
            ports,
            version: String::new(),
        };
        c.version = c.command("version")?;
        Ok(c)
    }

    fn command(&mut self, line: &str) -> Result<String> {
        crate::broker::mock_line(&mut self.proc, line, Duration::from_secs(10))
    }

    pub fn create_topic(&mut self, name: &str, partitions: u32) -> Result<()> {
        self.command(&format!("create_topic {name} {partitions} {BROKERS}"))
            .map(|_| ())
    }

    pub fn describe(&self) -> Value {
        json!({"kind": "librdkafka-mock", "brokers": BROKERS, "librdkafka": self.version,
               "ports": self.ports})
    }

    pub fn stop(mut self) {
        if let Some(mut stdin) = self.proc.stdin.take() {
            let _ = stdin.write_all(b"quit\n");
        }
        let _ = self.proc.wait_timeout(Duration::from_secs(5));
    }
}

/// The nine clients of tests/harness/bench_mix.py, running until [`Mix::stop`].
pub struct Mix {
    proc: Proc,
    out: Receiver<String>,
    log: PathBuf,
}

impl Mix {
    /// Creates the mix's topics on `cluster`, then starts the clients.
    pub fn start(
        paths: &Paths,
        ns: Option<&Netns>,
        cluster: &mut Cluster,
        logs: &Path,
    ) -> Result<Mix> {
        let python = paths.require_python()?;
        let script = paths.harness().join("bench_mix.py");
        let topics = proc::run_quiet(
            "bench_mix.py --topics",
            Command::new(&python)
                .arg(&script)
                .arg("--topics")
                .current_dir(paths.harness()),
            Duration::from_secs(30),
        )?;
        for l in topics.lines() {
            let mut w = l.split_whitespace();
            if let (Some(t), Some(n)) = (w.next(), w.next()) {
                cluster.create_topic(t, n.parse()?)?;
            }
        }
        let log = logs.join("bench_mix.log");
        let mut cmd = in_ns(ns, &python);
        cmd.arg(&script)
            .args(["--bootstrap", &cluster.bootstrap, "--seconds"])
            .arg(MAX_CAPTURE_S.to_string())
            .current_dir(paths.harness())
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1");
        let mut proc = Proc::spawn("bench_mix.py", &mut cmd, true, Out::Lines, Out::File(&log))?;
        let out = proc.stdout.take().expect("piped");
        Ok(Mix { proc, out, log })
    }

    /// None while the clients run; their failure otherwise.
    pub fn failed(&mut self) -> Option<String> {
        match self.proc.try_wait() {
            Ok(None) => None,
            Ok(Some(st)) => Some(format!(
                "bench_mix.py exited early ({st}):\n{}",
                proc::tail(&self.log, 20)
            )),
            Err(e) => Some(e.to_string()),
        }
    }

    /// Tells every client to stop (a line on stdin), waits, returns the FACT lines.
    pub fn stop(mut self) -> Result<Vec<Value>> {
        if let Some(mut stdin) = self.proc.stdin.take() {
            let _ = stdin.write_all(b"stop\n");
        }
        let st = self.proc.wait_timeout(Duration::from_secs(90))?;
        let mut facts = Vec::new();
        while let Ok(Some(l)) = proc::recv_line(&self.out, Duration::from_secs(2), "FACT lines") {
            if let Some(j) = l.strip_prefix("FACT ") {
                facts.push(serde_json::from_str::<Value>(j)?);
            }
        }
        if !st.success() {
            bail!("bench_mix.py failed ({st}):\n{}", proc::tail(&self.log, 20));
        }
        Ok(facts)
    }
}

/// tcpdump writing a file (or /dev/null), in a namespace or on the host.
pub struct Dump {
    proc: Proc,
    stderr: Receiver<String>,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct DumpStats {
    pub captured: u64,
    pub received: u64,
    pub dropped: u64,
}

impl Dump {
    /// `args` go before `-w FILE FILTER` (interface, buffer, CPU pinning is the caller's).
    pub fn start(mut cmd: Command, file: &Path, filter: &str) -> Result<Dump> {
        tools::require_tcpdump()?;
        cmd.arg("-n").arg("-w").arg(file);
        if !filter.is_empty() {
            cmd.arg(filter);
        }
        let (proc, stderr) = proc::spawn_tcpdump(&mut cmd)?;
        Ok(Dump { proc, stderr })
    }

    /// SIGINT, then its counters.
    pub fn stop(mut self) -> Result<DumpStats> {
        thread::sleep(Duration::from_millis(300));
        self.proc.signal("INT")?;
        self.proc.wait_timeout(Duration::from_secs(30))?;
        let mut s = DumpStats::default();
        let mut seen = false;
        while let Ok(Some(l)) =
            proc::recv_line(&self.stderr, Duration::from_secs(2), "tcpdump's counters")
        {
            let n = l.split_whitespace().next().and_then(|w| w.parse().ok());
            if let Some(n) = n {
                if l.contains("packets captured") {
                    s.captured = n;
                    seen = true;
                } else if l.contains("received by filter") {
                    s.received = n;
                } else if l.contains("dropped by kernel") {
                    s.dropped = n;
                }
            }
        }
        if !seen {
            bail!("tcpdump printed no \"packets captured\" line");
        }
        Ok(s)
    }
}

pub fn port_filter(ports: &[u16]) -> String {
    ports
        .iter()
        .map(|p| format!("tcp port {p}"))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// The cached realistic capture of this shape and size: (pcap, facts), made when missing.
pub fn realistic(
    paths: &Paths,
    kwire: &Path,
    shape: Shape,
    megabytes: u32,
    recapture: bool,
) -> Result<(PathBuf, Value)> {
    let dir = paths.out().join("bench");
    fs::create_dir_all(&dir)?;
    let file = dir.join(format!("realistic-{}-{megabytes}mb.pcap", shape.tag()));
    let facts_file = capture::facts_path(&file);
    if !recapture && file.exists() && facts_file.exists() {
        let v = serde_json::from_str(&fs::read_to_string(&facts_file)?)?;
        return Ok((file, v));
    }
    let started = Instant::now();
    let logs = dir.join(format!("logs-realistic-{}", shape.tag()));
    let _ = fs::remove_dir_all(&logs);
    fs::create_dir_all(&logs)?;
    let ns = match Netns::create(&format!("cap{}", shape.tag()), shape == Shape::Eth1500) {
        Ok(ns) => Some(ns),
        Err(e) => {
            eprintln!(
                "bench: no network namespace ({e:#}); capturing on the host's lo{}",
                if shape == Shape::Eth1500 {
                    " and cutting the packets to 1500 bytes afterwards"
                } else {
                    ""
                }
            );
            None
        }
    };
    let how = match (&ns, shape) {
        (Some(ns), Shape::Eth1500) => format!(
            "captured natively on lo with MTU 1500 and TSO/GSO/GRO off, in network namespace {}",
            ns.name
        ),
        (Some(ns), Shape::Loopback) => format!(
            "captured on lo with its MTU 65536, in network namespace {}",
            ns.name
        ),
        (None, Shape::Eth1500) => "captured on the host's lo (MTU 65536), then cut into 1500-byte packets (MSS 1448, sequence numbers and IP lengths rewritten): network namespaces were unavailable".into(),
        (None, Shape::Loopback) => "captured on the host's lo (MTU 65536)".into(),
    };
    eprintln!(
        "bench: capturing about {megabytes} MB of production-like traffic ({} packets; once, cached in {})",
        if shape == Shape::Eth1500 { "1500-byte" } else { "loopback-sized" },
        dir.display()
    );
    let raw = if ns.is_none() && shape == Shape::Eth1500 {
        file.with_extension("lo.pcap.partial")
    } else {
        file.with_extension("pcap.partial")
    };
    let mut cluster = Cluster::start(paths, ns.as_ref(), &logs)?;
    let filter = port_filter(&cluster.ports);
    let mut td = in_ns(ns.as_ref(), tools::require_tcpdump()?);
    td.args(["-i", "lo", "-s", "0", "-B", "1048576"]);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        td.args(["-Z", "root"]); // keep the file ours, not the tcpdump user's
    }
    let dump = Dump::start(td, &raw, &filter)?;
    let mut mix = match Mix::start(paths, ns.as_ref(), &mut cluster, &logs) {
        Ok(m) => m,
        Err(e) => {
            let _ = dump.stop();
            return Err(e);
        }
    };
    let target = u64::from(megabytes) * 1_000_000;
    let t0 = Instant::now();
    let mut early = None;
    let mut last_note = Instant::now();
    while fs::metadata(&raw).map(|m| m.len()).unwrap_or(0) < target {
        if let Some(e) = mix.failed() {
            early = Some(e);
            break;
        }
        if t0.elapsed() > Duration::from_secs(MAX_CAPTURE_S) {
            eprintln!("bench: {MAX_CAPTURE_S}s passed before the capture reached {megabytes} MB: stopping there");
            break;
        }
        if last_note.elapsed() > Duration::from_secs(15) {
            last_note = Instant::now();
            eprintln!(
                "bench:   {:.0} MB after {:.0}s",
                fs::metadata(&raw).map(|m| m.len()).unwrap_or(0) as f64 / 1e6,
                t0.elapsed().as_secs_f64()
            );
        }
        thread::sleep(Duration::from_millis(200));
    }
    let load_seconds = t0.elapsed().as_secs_f64();
    let facts_mix = mix.stop();
    let stats = dump.stop();
    let broker = cluster.describe();
    cluster.stop();
    drop(ns);
    let checked = (|| {
        if let Some(e) = early {
            bail!(e);
        }
        let facts_mix = facts_mix?;
        let stats = stats?;
        if stats.dropped > 0 {
            bail!(
                "tcpdump: {} packets dropped by kernel: the capture is incomplete",
                stats.dropped
            );
        }
        Ok((facts_mix, stats))
    })();
    let (facts_mix, stats) = match checked {
        Ok(v) => v,
        Err(e) => {
            let _ = fs::remove_file(&raw);
            return Err(e.context(format!(
                "capturing the realistic load (logs in {})",
                logs.display()
            )));
        }
    };
    if raw != file.with_extension("pcap.partial") {
        eprintln!("bench: cutting the capture into 1500-byte packets");
        let tmp = file.with_extension("pcap.partial");
        resegment(&raw, &tmp)?;
        fs::remove_file(&raw)?;
        fs::rename(&tmp, &file)?;
    } else {
        fs::rename(&raw, &file)?;
    }
    let summary = kwire_summary(kwire, &file)?;
    let bytes = fs::metadata(&file)?.len();
    let exchanges = summary["kafka"]["requests"].as_u64().unwrap_or(0);
    let packets = summary["packets"]["packets"].as_u64().unwrap_or(0);
    let clients: Vec<Value> = facts_mix
        .iter()
        .filter(|f| f["fact"] == "bench_client")
        .cloned()
        .collect();
    let load = facts_mix
        .iter()
        .find(|f| f["fact"] == "bench_mix")
        .cloned()
        .unwrap_or(Value::Null);
    let facts = json!({
        "kind": "realistic",
        "shape": shape.tag(),
        "how": how,
        "summary": "nine confluent-kafka clients against a 3-broker librdkafka mock cluster (tests/harness/bench_mix.py): \
                    four producers (acks=all idempotent linger 20 ms; acks=1 lz4 linger 10 ms; acks=all zstd 256 KiB batches \
                    linger 50 ms; acks=1 linger 0 with 100-400 B records; 0.7-3 MB/s each), a 3-member consumer group \
                    (range assignor, async commit every second, joining at 0, 4 and 10 s), a lag monitor (ListOffsets \
                    every 250 ms, OffsetFetch every second) and a Metadata poller (every 500 ms)",
        "megabytes_target": megabytes,
        "bytes": bytes,
        "packets": packets,
        "bytes_per_packet": (bytes as f64 / packets.max(1) as f64).round(),
        "exchanges": exchanges,
        "exchanges_per_mb": (exchanges as f64 / (bytes as f64 / 1e6)).round(),
        "tcp_connections": summary["flows"]["tcp_connections"],
        "load_seconds": (load_seconds * 10.0).round() / 10.0,
        "broker": broker,
        "filter": filter,
        "tcpdump": {"captured": stats.captured, "received_by_filter": stats.received,
                    "dropped_by_kernel": stats.dropped},
        "clients": clients,
        "load": load,
        "kwire_clients": summary["clients"],
        "apis": summary["apis"],
        "seconds_to_build": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    });
    fs::write(&facts_file, serde_json::to_string_pretty(&facts)? + "\n")?;
    Ok((file, facts))
}

/// `kwire replay FILE --json --no-exchanges --no-notices`: the summary line.
pub fn kwire_summary(kwire: &Path, file: &Path) -> Result<Value> {
    let out = Command::new(kwire)
        .arg("replay")
        .arg(file)
        .args([
            "--json",
            "--no-exchanges",
            "--no-notices",
            "--progress",
            "never",
        ])
        .stderr(Stdio::null())
        .output()
        .context("kwire replay")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .context("kwire replay printed nothing")?;
    let v: Value = serde_json::from_str(last)?;
    if v["type"] != "summary" {
        bail!(
            "kwire replay {}: the last line is not the summary",
            file.display()
        );
    }
    Ok(v)
}

fn big_batch_scenario(megabytes: u32) -> Scenario {
    let mb: &'static str = Box::leak(megabytes.to_string().into_boxed_str());
    let args: &'static [&'static str] = Box::leak(
        vec![
            "--topic",
            "kw-bench",
            "--partitions",
            "96",
            "--megabytes",
            mb,
        ]
        .into_boxed_slice(),
    );
    let steps: &'static [Step] = Box::leak(
        vec![Step {
            script: "bench_load.py",
            args,
            timeout_s: 1200,
        }]
        .into_boxed_slice(),
    );
    Scenario {
        name: "bench-load",
        broker: BrokerKind::Mock(1),
        // The mock keeps about 5 MB per partition (older segments are deleted): spread the load so that
        // everything produced can still be consumed afterwards.
        topics: &[("kw-bench", 96)],
        steps,
        summary: "benchmark load: confluent-kafka producer (acks=1, large batches) and consumer group moving 1000-byte records through the librdkafka mock",
    }
}

/// Today's big-batch files (one producer, one consumer, ~3 exchanges per MB): (loopback, 1500, port).
pub fn big_batch(
    paths: &Paths,
    megabytes: u32,
    recapture: bool,
) -> Result<(PathBuf, PathBuf, u16)> {
    let dir = paths.out().join("bench");
    fs::create_dir_all(&dir)?;
    let lo = dir.join(format!("bench-loopback-{megabytes}mb.pcap"));
    let eth = dir.join(format!("bench-1500-{megabytes}mb.pcap"));
    let facts = capture::facts_path(&lo);
    if recapture || !lo.exists() || !facts.exists() {
        let _ = fs::remove_file(&eth);
        eprintln!("bench: capturing {megabytes} MB of big batches produced and consumed through the mock broker (once; cached in {})", dir.display());
        std::env::set_var("KWIRE_TCPDUMP_BULK", "1");
        capture::capture(paths, &big_batch_scenario(megabytes), &lo)?;
    }
    let facts: Value = serde_json::from_str(&fs::read_to_string(&facts)?)?;
    let port = facts["broker"]["ports"][0]
        .as_u64()
        .context("broker port in the facts file")? as u16;
    if !eth.exists() {
        eprintln!("bench: cutting the big-batch capture into 1500-byte packets");
        let tmp = eth.with_extension("pcap.partial");
        resegment(&lo, &tmp)?;
        fs::rename(&tmp, &eth)?;
    }
    Ok((lo, eth, port))
}

/// Rewrites a capture's TCP segments into packets of at most `MSS` payload bytes (IPv4 only; other
/// packets are copied as they are).
pub fn resegment(src: &Path, dst: &Path) -> Result<(u64, u64)> {
    let mut r = PcapFile::open(src).map_err(|e| anyhow!("{e}"))?;
    let mut w = BufWriter::with_capacity(1 << 20, File::create(dst)?);
    // pcap header, nanosecond timestamps, Ethernet.
    w.write_all(&0xa1b23c4du32.to_le_bytes())?;
    w.write_all(&2u16.to_le_bytes())?;
    w.write_all(&4u16.to_le_bytes())?;
    w.write_all(&[0u8; 8])?;
    w.write_all(&262144u32.to_le_bytes())?;
    w.write_all(&1u32.to_le_bytes())?;
    let (mut packets, mut bytes) = (0u64, 0u64);
    let mut buf = Vec::with_capacity(2048);
    let mut write = |w: &mut BufWriter<File>, ts: i64, data: &[u8]| -> Result<()> {
        w.write_all(&((ts / 1_000_000_000) as u32).to_le_bytes())?;
        w.write_all(&((ts % 1_000_000_000) as u32).to_le_bytes())?;
        w.write_all(&(data.len() as u32).to_le_bytes())?;
        w.write_all(&(data.len() as u32).to_le_bytes())?;
        w.write_all(data)?;
        packets += 1;
        bytes += data.len() as u64 + 16;
        Ok(())
    };
    while let Some(p) = r.next_packet().map_err(|e| anyhow!("{e}"))? {
        let d = p.data;
        let ipv4 = p.link == LinkType::Ethernet
            && d.len() > 34
            && d[12] == 8
            && d[13] == 0
            && d[14] >> 4 == 4;
        if !ipv4 || d[23] != 6 {
            write(&mut w, p.ts.0, d)?;
            continue;
        }
        let ihl = usize::from(d[14] & 0x0f) * 4;
        let tcp = 14 + ihl;
        if d.len() < tcp + 20 {
            write(&mut w, p.ts.0, d)?;
            continue;
        }
        let thl = usize::from(d[tcp + 12] >> 4) * 4;
        let hdr = tcp + thl;
        let total = usize::from(u16::from_be_bytes([d[16], d[17]]));
        let end = (14 + total).min(d.len());
        if end <= hdr + MSS {
            write(&mut w, p.ts.0, d)?;
            continue;
        }
        let seq = u32::from_be_bytes([d[tcp + 4], d[tcp + 5], d[tcp + 6], d[tcp + 7]]);
        let mut off = hdr;
        while off < end {
            let n = MSS.min(end - off);
            buf.clear();
            buf.extend_from_slice(&d[..hdr]);
            buf.extend_from_slice(&d[off..off + n]);
            let ip_len = (ihl + thl + n) as u16;
            buf[16..18].copy_from_slice(&ip_len.to_be_bytes());
            buf[24] = 0;
            buf[25] = 0;
            let mut sum = 0u32;
            for c in buf[14..14 + ihl].chunks(2) {
                sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
            }
            while sum > 0xffff {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            buf[24..26].copy_from_slice(&(!(sum as u16)).to_be_bytes());
            let s = seq.wrapping_add((off - hdr) as u32);
            buf[tcp + 4..tcp + 8].copy_from_slice(&s.to_be_bytes());
            write(&mut w, p.ts.0, &buf)?;
            off += n;
        }
    }
    w.flush()?;
    Ok((packets, bytes))
}
