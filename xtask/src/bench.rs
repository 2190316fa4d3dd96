//! `cargo xtask bench`: replay speed of kwire beside its peers, measured in the same run on the same files,
//! then the live agent (bench_live.rs).
//!
//! 1. Captures (bench_capture.rs, once, cached under tests/out/bench/): production-like traffic of nine
//!    real clients against a 3-broker mock cluster, in 1500-byte packets (captured natively in a network
//!    namespace at MTU 1500) and loopback-sized packets; and today's big-batch load (one producer, one
//!    consumer, ~3 exchanges per MB: it measures the packet path, not exchange handling), both shapes.
//! 2. Times, on each file, as whole processes: `kwire replay` (readable summary, every exchange decoded),
//!    `kwire replay --json` into /dev/null, `kwire replay --otlp` to a local rotel collector (gRPC,
//!    blackhole exporter), a plain libpcap read loop (xtask/pcap-loop) and tshark's Kafka decode. Prints
//!    MB/s, packets/s, exchanges/s, ns per packet and per exchange, peak RSS, the ratio to the libpcap
//!    loop, and the issue's targets beside what was measured. Also written to tests/out/bench/results.json.
//! 3. Live (bench_live.rs): the agent on the realistic load, and the veth ladder (tcpreplay at rising
//!    rates, kwire and `tcpdump -w /dev/null` each on the receiving end), and Kafka over TLS read by
//!    the OpenSSL uprobes beside the plaintext leg of the same traffic (`--no-tls` skips it,
//!    `--tls-only` runs only it).
//!
//! Easy to get wrong: this is a benchmark, not a test: it prints numbers and never fails on them (the
//! targets are printed, not asserted). Files are read from the page cache after a warm-up read, so the
//! numbers are CPU, not disk. Rates use wall time of the best of several runs: the machine is shared.
//! Peak RSS comes from GNU time: a child's `ru_maxrss` from wait4 starts at the RSS of this xtask.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::bench_capture::{self as cap, Shape};
use crate::collector::{self, Collector, Mode};
use crate::tools::{self, Paths};

const USAGE: &str = "cargo xtask bench [--megabytes N] [--recapture] [--no-tshark] [--no-otlp] [--no-big-batch]
                   [--no-live] [--live-only] [--no-ladder] [--live-seconds S] [--ladder-mbps R,R,...]
                   [--live-big-batch] [--no-tls|--tls-only] [--tls-megabytes N] [--run-args \"ARGS\"]";

pub struct Options {
    pub megabytes: u32,
    pub recapture: bool,
    pub tshark: bool,
    pub otlp: bool,
    pub big_batch: bool,
    pub replay: bool,
    pub live: bool,
    pub ladder: bool,
    pub live_seconds: u32,
    /// tcpreplay rates in Mbit/s; 0 = as fast as it goes
    pub ladder_mbps: Vec<u32>,
    pub live_big_batch: bool,
    /// the live TLS section (kwire on Kafka over TLS, uprobes, beside the plaintext leg)
    pub tls: bool,
    /// only the live TLS section: no replay, no realistic capture, no realistic live run, no ladder
    pub tls_only: bool,
    /// MB produced (and fetched back) over TLS by tests/harness/tls_load.py: twice that of Kafka traffic
    pub tls_megabytes: u32,
    /// extra arguments for every `kwire run` of the live section (e.g. `--snaplen 2048`)
    pub run_args: Vec<String>,
    /// measure the PGO build (`cargo xtask pgo`), the one to deploy; false: the plain release build
    pub pgo: bool,
}

fn options(args: &[String]) -> Result<Options> {
    let mut o = Options {
        megabytes: 300,
        recapture: false,
        tshark: true,
        otlp: true,
        big_batch: true,
        replay: true,
        live: true,
        ladder: true,
        live_seconds: 30,
        ladder_mbps: vec![500, 1000, 1500, 2000, 0],
        live_big_batch: false,
        tls: true,
        tls_only: false,
        tls_megabytes: 500,
        run_args: Vec::new(),
        pgo: true,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |what: &str| it.next().with_context(|| format!("{a} needs {what}"));
        match a.as_str() {
            "--megabytes" => o.megabytes = val("N")?.parse()?,
            "--recapture" => o.recapture = true,
            "--no-tshark" => o.tshark = false,
            "--no-otlp" => o.otlp = false,
            "--no-big-batch" => o.big_batch = false,
            "--no-live" => o.live = false,
            "--live-only" => o.replay = false,
            "--no-ladder" => o.ladder = false,
            "--live-seconds" => o.live_seconds = val("S")?.parse()?,
            "--ladder-mbps" => {
                o.ladder_mbps = val("R,R,...")?
                    .split(',')
                    .map(|r| r.trim().parse())
                    .collect::<Result<_, _>>()?
            }
            "--live-big-batch" => o.live_big_batch = true,
            "--no-tls" => o.tls = false,
            "--tls-only" => o.tls_only = true,
            "--tls-megabytes" => o.tls_megabytes = val("N")?.parse()?,
            "--no-pgo" => o.pgo = false,
            "--run-args" => {
                o.run_args = val("\"ARGS\"")?
                    .split_whitespace()
                    .map(str::to_string)
                    .collect()
            }
            other => bail!("unknown bench option {other}\nusage: {USAGE}"),
        }
    }
    Ok(o)
}

pub struct Measured {
    pub wall: f64,
    /// user + system seconds
    pub cpu: f64,
    /// user seconds (the tool's own work) and system seconds (mostly the kernel copying the file)
    pub user: f64,
    pub sys: f64,
    pub max_rss_kb: i64,
    pub status: i32,
}

/// Runs a command to completion with stdout to /dev/null (stderr to `stderr` or /dev/null) and returns
/// its own resource usage. Peak RSS comes from GNU time when installed: a child's `ru_maxrss` from wait4
/// starts at the RSS of the parent it was forked from (this xtask), which would hide a small tool's peak.
pub fn measure(cmd: &mut Command, stderr: Option<&Path>) -> Result<Measured> {
    let rss_file = std::env::temp_dir().join(format!("kwire-bench-rss-{}", std::process::id()));
    let gnu_time = Path::new("/usr/bin/time").exists();
    let mut wrapped;
    let cmd = if gnu_time {
        wrapped = Command::new("/usr/bin/time");
        wrapped
            .arg("-f")
            .arg("%M")
            .arg("-o")
            .arg(&rss_file)
            .arg(cmd.get_program())
            .args(cmd.get_args());
        &mut wrapped
    } else {
        cmd
    };
    let err = match stderr {
        Some(p) => Stdio::from(File::create(p)?),
        None => Stdio::null(),
    };
    let started = Instant::now();
    let child = cmd
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .with_context(|| format!("starting {cmd:?}"))?;
    let m = reap(child, started).with_context(|| format!("{cmd:?}"))?;
    if !gnu_time {
        return Ok(m);
    }
    let kb = fs::read_to_string(&rss_file)
        .ok()
        .and_then(|t| t.lines().last().and_then(|l| l.trim().parse().ok()));
    let _ = fs::remove_file(&rss_file);
    Ok(Measured {
        max_rss_kb: kb.unwrap_or(m.max_rss_kb),
        ..m
    })
}

/// Waits for `child` (spawned at `started`) with wait4: wall time, its own CPU time, its ru_maxrss and
/// exit status.
pub fn reap(child: Child, started: Instant) -> Result<Measured> {
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data; wait4 fills it for the child we just spawned and reaps it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    if r != pid {
        bail!("wait4 failed");
    }
    std::mem::forget(child);
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(Measured {
        wall: started.elapsed().as_secs_f64(),
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        user: tv(ru.ru_utime),
        sys: tv(ru.ru_stime),
        max_rss_kb: ru.ru_maxrss,
        status: if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -1
        },
    })
}

fn warm(path: &Path) -> Result<u64> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            return Ok(n);
        }
        n += k as u64;
    }
}

/// One file of the table.
struct Bench {
    label: String,
    file: PathBuf,
    /// what the capture holds, one line
    about: String,
    ports: Vec<u16>,
    realistic: bool,
    shape: Shape,
}

/// One tool on one file.
struct Row {
    tool: String,
    m: Measured,
    note: String,
}

pub fn bench(paths: &Paths, args: &[String]) -> Result<()> {
    let o = options(args)?;
    eprintln!("bench: building kwire and the libpcap loop (release)");
    let st = Command::new(tools::cargo())
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "kwire",
            "-p",
            "pcap-loop",
        ])
        .current_dir(&paths.root)
        .status()?;
    if !st.success() {
        bail!("release build failed (the libpcap loop needs libpcap-dev: run cargo xtask setup)");
    }
    let rel = paths.target_dir().join("release");
    let pcap_loop = rel.join("pcap-loop");
    // The binary measured is the one to deploy: PGO (see pgo.rs), unless --no-pgo.
    let kwire = if o.pgo {
        crate::pgo::build(paths, false)?
    } else {
        rel.join("kwire")
    };
    println!(
        "kwire measured: {} ({})",
        kwire.strip_prefix(&paths.root).unwrap_or(&kwire).display(),
        if o.pgo {
            "release, fat LTO, PGO trained on the committed fixtures: cargo xtask pgo"
        } else {
            "release, fat LTO, no PGO (--no-pgo)"
        }
    );

    if o.tls_only {
        return crate::bench_live::tls_only(paths, &kwire, &o);
    }
    let mut benches = Vec::new();
    let mut realistic_1500 = None;
    for shape in [Shape::Eth1500, Shape::Loopback] {
        let (file, f) = cap::realistic(paths, &kwire, shape, o.megabytes, o.recapture)?;
        if shape == Shape::Eth1500 {
            realistic_1500 = Some((file.clone(), f.clone()));
        }
        let ports = f["broker"]["ports"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_u64())
                    .map(|p| p as u16)
                    .collect()
            })
            .unwrap_or_default();
        benches.push(Bench {
            label: format!(
                "realistic, {} packets",
                if shape == Shape::Eth1500 {
                    "1500-byte"
                } else {
                    "loopback-sized"
                }
            ),
            file,
            about: format!(
                "{} clients, {} connections, {} s of load; {}",
                f["clients"].as_array().map_or(0, |c| c.len()),
                f["tcp_connections"],
                f["load_seconds"],
                f["how"].as_str().unwrap_or("")
            ),
            ports,
            realistic: true,
            shape,
        });
    }
    if o.big_batch && o.replay {
        let (lo, eth, port) = cap::big_batch(paths, o.megabytes, o.recapture)?;
        for (shape, file) in [(Shape::Eth1500, eth), (Shape::Loopback, lo)] {
            benches.push(Bench {
                label: format!(
                    "big batches, {} packets",
                    if shape == Shape::Eth1500 { "1500-byte" } else { "loopback-sized" }
                ),
                file,
                about: format!(
                    "one producer (acks=1, 1 MB batches) and one consumer, 1000-byte records, one mock broker{}",
                    if shape == Shape::Eth1500 {
                        "; cut from the loopback capture into 1500-byte packets"
                    } else {
                        ""
                    }
                ),
                ports: vec![port],
                realistic: false,
                shape,
            });
        }
    }

    let mut results = Vec::new();
    if o.replay {
        let collector = if o.otlp {
            let dir = paths.out().join("bench");
            let cfg = collector::Config {
                dir: &dir,
                netns: None,
                host: "127.0.0.1",
                ports: None,
                mode: Mode::Discard,
            };
            match Collector::start(paths, cfg) {
                Ok(c) => Some(c),
                Err(e) => {
                    println!("(no OTLP row: {e:#})");
                    None
                }
            }
        } else {
            None
        };
        println!(
            "kwire replay benchmark: whole processes, one core each, file in the page cache, same run, same files"
        );
        for b in &benches {
            results.push(replay_block(
                paths,
                &kwire,
                o.pgo.then_some(rel.join("kwire").as_path()),
                &pcap_loop,
                b,
                &o,
                collector.as_ref(),
            )?);
        }
        let out = paths.out().join("bench").join("results.json");
        fs::write(
            &out,
            serde_json::to_string_pretty(&json!({"replay": results}))? + "\n",
        )?;
        println!("\n(written to {})", out.display());
    }
    if o.live {
        let (file, facts) = match realistic_1500 {
            Some(v) => v,
            None => unreachable!("the realistic capture is always made"),
        };
        crate::bench_live::bench_live(paths, &kwire, &o, &file, &facts)?;
    }
    Ok(())
}

/// Where the gap to the libpcap loop is: both pay the kernel's copy of the file (system time; kwire's is
/// the smaller, it reads 256 KiB per call where libpcap's stdio reads 4 KiB), so what a target leaves
/// kwire is user time. Printed beside the targets so that every
/// run says how many nanoseconds per exchange kwire's own work takes and how many the target allows.
fn budget_line(k: &Measured, l: &Measured, exch: u64, target: f64) {
    let per = |s: f64| s * 1e9 / exch.max(1) as f64;
    // At `target` times the loop's speed, kwire's user time may be what is left after its system time.
    let allowed = (l.cpu / target - k.sys).max(0.0);
    println!(
        "  where the time goes: system (reading the file) kwire {:.3} s, loop {:.3} s; user kwire {:.3} s ({:.0} ns per exchange), \
         loop {:.3} s; the {target}x target leaves kwire {:.3} s of user time ({:.0} ns per exchange)",
        k.sys,
        l.sys,
        k.user,
        per(k.user),
        l.user,
        allowed,
        per(allowed)
    );
}

/// `kwire` is the binary measured (PGO unless --no-pgo); `plain`, when given, the release build without
/// PGO (what `cargo build --release` and the Docker image make), measured in one row of its own.
#[allow(clippy::too_many_arguments)]
fn replay_block(
    paths: &Paths,
    kwire: &Path,
    plain: Option<&Path>,
    pcap_loop: &Path,
    b: &Bench,
    o: &Options,
    collector: Option<&Collector>,
) -> Result<Value> {
    let size = warm(&b.file)?;
    let s = cap::kwire_summary(kwire, &b.file)?;
    let pkts = s["packets"]["packets"].as_u64().unwrap_or(0);
    let exch = s["kafka"]["requests"].as_u64().unwrap_or(0);
    let mb = size as f64 / 1e6;
    println!("\n{}: {}", b.label, b.file.display());
    println!(
        "  {:.0} MB, {} packets ({:.0} B/packet), {} exchanges ({:.0} per MB)",
        mb,
        pkts,
        size as f64 / pkts.max(1) as f64,
        exch,
        exch as f64 / mb
    );
    println!("  {}", b.about);
    println!(
        "  {:<40} {:>7} {:>6} {:>6} {:>6} {:>7} {:>8} {:>8} {:>7} {:>8} {:>7} {:>9}",
        "tool",
        "wall s",
        "cpu s",
        "user",
        "sys",
        "MB/s",
        "kpkt/s",
        "kexch/s",
        "ns/pkt",
        "ns/exch",
        "RSS MB",
        "x libpcap"
    );
    let best = |cmd: &mut Command, runs: usize, err: Option<&Path>| -> Result<Measured> {
        let mut best: Option<Measured> = None;
        for _ in 0..runs {
            let m = measure(cmd, err)?;
            if best.as_ref().is_none_or(|b| m.wall < b.wall) {
                best = Some(m);
            }
        }
        Ok(best.expect("ran"))
    };
    let replay_of = |bin: &Path, extra: &[&str]| {
        let mut c = Command::new(bin);
        c.arg("replay")
            .arg(&b.file)
            .args(["--progress", "never"])
            .args(extra);
        c
    };
    let replay = |extra: &[&str]| replay_of(kwire, extra);
    let mut rows = Vec::new();
    rows.push(Row {
        tool: "kwire replay (every exchange decoded)".into(),
        m: best(&mut replay(&[]), 3, None)?,
        note: String::new(),
    });
    if let Some(plain) = plain {
        rows.push(Row {
            tool: "  same, release build without PGO".into(),
            m: best(&mut replay_of(plain, &[]), 3, None)?,
            note: String::new(),
        });
    }
    rows.push(Row {
        tool: "kwire replay --json > /dev/null".into(),
        m: best(&mut replay(&["--json"]), 2, None)?,
        note: String::new(),
    });
    if let Some(c) = collector {
        let err = paths.out().join("bench").join("otlp-row.stderr.txt");
        let ep = format!("http://127.0.0.1:{}", c.grpc_port);
        let m = best(
            &mut replay(&["--otlp", "--otlp-endpoint", &ep, "--otlp-protocol", "grpc"]),
            1,
            Some(&err),
        )?;
        let text = fs::read_to_string(&err).unwrap_or_default();
        let note = text
            .lines()
            .find(|l| l.contains("OTLP:"))
            .map(|l| l.trim_start_matches("kwire: ").to_string())
            .unwrap_or_else(|| "no OTLP line on stderr".into());
        rows.push(Row {
            tool: "kwire replay --otlp (gRPC, local rotel)".into(),
            m,
            note,
        });
    }
    rows.push(Row {
        tool: "libpcap read loop (pcap_next_ex)".into(),
        m: best(Command::new(pcap_loop).arg(&b.file), 3, None)?,
        note: String::new(),
    });
    match (crate::proc::which("tshark"), o.tshark) {
        (Some(t), true) => {
            let mut c = Command::new(t);
            c.arg("-n").arg("-r").arg(&b.file);
            for p in &b.ports {
                c.args(["-d", &format!("tcp.port=={p},kafka")]);
            }
            c.args(["-T", "fields", "-e", "kafka.api_key"]);
            rows.push(Row {
                tool: "tshark Kafka decode (-e kafka.api_key)".into(),
                m: best(&mut c, 1, None)?,
                note: String::new(),
            });
        }
        (None, _) => println!("  (tshark: not installed; cargo xtask setup installs it)"),
        (_, false) => {}
    }
    let libpcap_wall = rows
        .iter()
        .find(|r| r.tool.starts_with("libpcap"))
        .map(|r| r.m.wall)
        .unwrap_or(f64::NAN);
    let mut out = Vec::new();
    for r in &rows {
        let m = &r.m;
        let status = if m.status != 0 {
            format!(" (exit {})", m.status)
        } else {
            String::new()
        };
        println!(
            "  {:<40} {:>7.2} {:>6.2} {:>6.2} {:>6.2} {:>7.0} {:>8.0} {:>8.1} {:>7.0} {:>8.0} {:>7.1} {:>8.2}x{status}",
            r.tool,
            m.wall,
            m.cpu,
            m.user,
            m.sys,
            mb / m.wall,
            pkts as f64 / m.wall / 1e3,
            exch as f64 / m.wall / 1e3,
            m.wall * 1e9 / pkts.max(1) as f64,
            m.wall * 1e9 / exch.max(1) as f64,
            m.max_rss_kb as f64 / 1024.0,
            libpcap_wall / m.wall,
        );
        if !r.note.is_empty() {
            println!("  {:<40} {}", "", r.note);
        }
        out.push(json!({
            "tool": r.tool, "wall_s": m.wall, "cpu_s": m.cpu, "user_s": m.user, "sys_s": m.sys, "peak_rss_mb": m.max_rss_kb as f64 / 1024.0,
            "exit": m.status, "mb_per_s": mb / m.wall, "packets_per_s": pkts as f64 / m.wall,
            "exchanges_per_s": exch as f64 / m.wall, "note": r.note,
        }));
    }
    let find = |p: &str| rows.iter().find(|r| r.tool.starts_with(p)).map(|r| &r.m);
    if let (Some(k), Some(j), Some(l)) = (
        find("kwire replay ("),
        find("kwire replay --json"),
        find("libpcap"),
    ) {
        let yes = |ok: bool| if ok { "met" } else { "NOT met" };
        let rss = k.max_rss_kb.max(j.max_rss_kb) as f64 / 1024.0;
        match (b.realistic, b.shape) {
            (true, Shape::Eth1500) => {
                let ratio = l.wall / k.wall;
                let eps = exch as f64 / k.wall;
                let json_ratio = j.wall / k.wall;
                println!(
                    "  targets: kwire {ratio:.2}x the libpcap loop (>= 0.9x: {}; by CPU time {:.2}x); {:.0}k exchanges/s (>= 1,000k: {}); \
                     peak RSS {rss:.0} MB (<= 64: {}); --json {json_ratio:.2}x the plain replay's time (<= 1.5x: {})",
                    yes(ratio >= 0.9),
                    l.cpu / k.cpu,
                    eps / 1e3,
                    yes(eps >= 1e6),
                    yes(rss <= 64.0),
                    yes(json_ratio <= 1.5)
                );
                budget_line(k, l, exch, 0.9);
            }
            (true, Shape::Loopback) => {
                let ratio = l.wall / k.wall;
                println!(
                    "  target: kwire {ratio:.2}x the libpcap loop (>= 1x: {}; by CPU time {:.2}x)",
                    yes(ratio >= 1.0),
                    l.cpu / k.cpu
                );
                budget_line(k, l, exch, 1.0);
            }
            _ => {}
        }
    }
    Ok(json!({
        "file": b.file.display().to_string(), "label": b.label, "bytes": size, "packets": pkts,
        "exchanges": exch, "rows": out,
    }))
}
