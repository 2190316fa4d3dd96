//! `cargo xtask bench`: replay speed of kwire beside its peers, measured in the same run on the same file.
//!
//! 1. Builds (once, cached under tests/out/bench/) a capture of real client traffic: the librdkafka mock
//!    broker and a confluent-kafka producer + consumer moving `--megabytes` of records, captured on
//!    loopback (64 KiB segments: "loopback-sized"), then the same traffic cut into 1500-byte Ethernet
//!    packets (MSS 1448, sequence numbers and IP lengths rewritten) as it would look on a real NIC.
//! 2. Times, on each file: `kwire replay` (readable summary, every exchange decoded), `kwire replay --json`
//!    into /dev/null, tshark's Kafka decode (`-d tcp.port==P,kafka -T fields -e kafka.api_key`) and a plain
//!    libpcap read loop; wall time, CPU time and peak RSS of each process (wait4 rusage).
//! 3. Live (bench_live.rs; `--no-live` skips it, `--live-only` runs only it): `kwire run` on lo, pcap
//!    and eBPF, under rate-limited produce+fetch loads: highest zero-loss rate and CPU s/GB.
//!
//! Easy to get wrong: this is a benchmark, not a test: it prints numbers and never fails on them. Files are
//! read from the page cache after a warm-up read, so the numbers are CPU, not disk.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use kwire_capture::PcapFile;
use kwire_flow::LinkType;

use crate::broker::BrokerKind;
use crate::capture;
use crate::scenarios::{Scenario, Step};
use crate::tools::{self, Paths};

const MSS: usize = 1448;

fn scenario(megabytes: u32) -> Scenario {
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

struct Measured {
    wall: f64,
    cpu: f64,
    max_rss_kb: i64,
    status: i32,
}

/// Runs a command to completion with stdout to /dev/null and returns its own resource usage. Peak RSS
/// comes from GNU time when installed: a child's `ru_maxrss` from wait4 starts at the RSS of the parent
/// it was forked from (this xtask), which would hide a small tool's real peak.
fn measure(cmd: &mut Command) -> Result<Measured> {
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
    let started = Instant::now();
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {cmd:?}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data; wait4 fills it for the child we just spawned and reaps it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    if r != pid {
        bail!("wait4 failed for {cmd:?}");
    }
    std::mem::forget(child);
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let max_rss_kb = if gnu_time {
        let kb = fs::read_to_string(&rss_file)
            .ok()
            .and_then(|t| t.lines().last().and_then(|l| l.trim().parse().ok()));
        let _ = fs::remove_file(&rss_file);
        kb.unwrap_or(ru.ru_maxrss)
    } else {
        ru.ru_maxrss
    };
    Ok(Measured {
        wall: started.elapsed().as_secs_f64(),
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        max_rss_kb,
        status: if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -1
        },
    })
}

/// Rewrites a capture's TCP segments into packets of at most `MSS` payload bytes (IPv4 only; other
/// packets are copied as they are).
fn resegment(src: &Path, dst: &Path) -> Result<(u64, u64)> {
    let mut r = PcapFile::open(src).map_err(|e| anyhow::anyhow!("{e}"))?;
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
    while let Some(p) = r.next_packet().map_err(|e| anyhow::anyhow!("{e}"))? {
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

fn packets_in(path: &Path) -> Result<u64> {
    let mut r = PcapFile::open(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut n = 0;
    while r
        .next_packet()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .is_some()
    {
        n += 1;
    }
    Ok(n)
}

pub fn bench(paths: &Paths, args: &[String]) -> Result<()> {
    let mut megabytes = 300u32;
    let mut skip_tshark = false;
    let mut live = true;
    let mut live_only = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--megabytes" => megabytes = it.next().context("--megabytes N")?.parse()?,
            "--no-tshark" => skip_tshark = true,
            "--no-live" => live = false,
            "--live-only" => live_only = true,
            other => bail!(
                "unknown bench option {other} (--megabytes N, --no-tshark, --no-live, --live-only)"
            ),
        }
    }
    if live_only {
        return crate::bench_live::bench_live(paths);
    }
    let dir = paths.out().join("bench");
    fs::create_dir_all(&dir)?;
    let lo = dir.join(format!("bench-loopback-{megabytes}mb.pcap"));
    let eth = dir.join(format!("bench-1500-{megabytes}mb.pcap"));
    let facts = capture::facts_path(&lo);
    if !lo.exists() || !facts.exists() {
        eprintln!("bench: capturing {megabytes} MB of records produced and consumed through the mock broker (once; cached in {})", dir.display());
        std::env::set_var("KWIRE_TCPDUMP_BULK", "1");
        capture::capture(paths, &scenario(megabytes), &lo)?;
    }
    let facts: serde_json::Value = serde_json::from_str(&fs::read_to_string(&facts)?)?;
    let port = facts["broker"]["ports"][0]
        .as_u64()
        .context("broker port in the facts file")?;
    if !eth.exists() {
        eprintln!("bench: cutting the capture into 1500-byte packets");
        let tmp = eth.with_extension("pcap.partial");
        resegment(&lo, &tmp)?;
        fs::rename(&tmp, &eth)?;
    }

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
    let kwire = rel.join("kwire");
    let pcap_loop = rel.join("pcap-loop");
    let tshark = crate::proc::which("tshark");

    println!(
        "kwire replay benchmark (one core per process; file in page cache; same run, same files)"
    );
    for (label, file) in [("1500-byte packets", &eth), ("loopback-sized packets", &lo)] {
        let size = warm(file)?;
        let pkts = packets_in(file)?;
        println!(
            "\n{label}: {} ({:.0} MB, {} packets, {:.0} B/packet)",
            file.display(),
            size as f64 / 1e6,
            pkts,
            size as f64 / pkts.max(1) as f64
        );
        println!(
            "  {:<44} {:>9} {:>9} {:>11} {:>10} {:>9}",
            "tool", "wall s", "cpu s", "MB/s", "Mpkt/s", "RSS MB"
        );
        let row = |name: &str, cmd: &mut Command, runs: usize| -> Result<()> {
            let mut best: Option<Measured> = None;
            for _ in 0..runs {
                let m = measure(cmd)?;
                if best.as_ref().is_none_or(|b| m.wall < b.wall) {
                    best = Some(m);
                }
            }
            let m = best.expect("ran");
            let note = if m.status != 0 {
                format!("  (exit {})", m.status)
            } else {
                String::new()
            };
            println!(
                "  {:<44} {:>9.2} {:>9.2} {:>11.0} {:>10.2} {:>9.1}{note}",
                name,
                m.wall,
                m.cpu,
                size as f64 / m.wall / 1e6,
                pkts as f64 / m.wall / 1e6,
                m.max_rss_kb as f64 / 1024.0
            );
            Ok(())
        };
        row(
            "kwire replay (decode all, summary)",
            Command::new(&kwire)
                .arg("replay")
                .arg(file)
                .args(["--progress", "never"]),
            3,
        )?;
        row(
            "kwire replay --json > /dev/null",
            Command::new(&kwire)
                .arg("replay")
                .arg(file)
                .args(["--json", "--progress", "never"]),
            1,
        )?;
        row(
            "libpcap read loop (pcap_next_ex)",
            Command::new(&pcap_loop).arg(file),
            3,
        )?;
        match (&tshark, skip_tshark) {
            (Some(t), false) => row(
                &format!("tshark -d tcp.port=={port},kafka -e kafka.api_key"),
                Command::new(t).arg("-n").arg("-r").arg(file).args([
                    "-d",
                    &format!("tcp.port=={port},kafka"),
                    "-T",
                    "fields",
                    "-e",
                    "kafka.api_key",
                ]),
                1,
            )?,
            (None, _) => println!("  tshark: not installed (cargo xtask setup installs it)"),
            (_, true) => println!("  tshark: skipped (--no-tshark)"),
        }
    }
    if live {
        crate::bench_live::bench_live(paths)?;
    }
    Ok(())
}
