//! Hostile-traffic benchmark: flow churn at a full flow table, timed through the real `kwire replay`.
//!
//! The capture (written once, cached under tests/out/bench/) is synthetic, made here field by field:
//! 65,536 one-packet flows fill the flow table (its default size), then waves of 65,536 new one-packet
//! flows without a SYN arrive, each wave 11 s of packet time after the previous one, so that every new
//! flow finds the table full and the previous wave idle for more than `evict_min_idle` (10 s): each new
//! flow evicts one. The packets are Ethernet / IPv4 / TCP ACK+PSH with 16 bytes of non-Kafka payload,
//! from a distinct client address each (10.x.y.z, port 40000) to one broker (10.255.0.1:9092). That is the
//! issue's recipe: 327,680 packets in all, which an O(n) eviction scan took 87 s of CPU to replay.
//!
//! Printed: packets, wall and CPU seconds, packets per second of CPU, and the summary's flow counters
//! (`evicted_full` must be 4 x 65,536 and `refused_table_full` 0, else the capture does not test what it
//! says).
//!
//! Memory (the global budget, `memory_budget_bytes`, default 64 MiB): two more captures, written once the
//! same way, replayed with their peak RSS (wait4's `ru_maxrss`) beside the budget's own peak:
//! `unique-client-ids` (one connection, 100,000 pipelined Metadata requests each with its own 1 KiB client
//! id, then their answers) and `half-frames` (40 connections each sending the header of a 15.9 MB
//! Metadata request and 15.8 MB of it, interleaved, none completing). Both must stay within the budget
//! plus a fixed overhead ([`RSS_OVERHEAD_MB`]: the binary, the bounded tables). Live (`--live`, needs
//! root): `kwire run --source pcap -i lo` for 30 s while 64 local connections (127.0.0.1 only) flood a
//! local listener with requests that each carry a new client id: packets the kernel dropped, and RSS
//! sampled every second (flat: the last sample within 10% of the one at 10 s).
//!
//! Easy to get wrong: this is a benchmark, not a test: it prints numbers and fails only when `kwire`
//! itself fails. The waves' packets are 1 µs apart, so a wave spans 65 ms of packet time and every flow
//! of the previous wave is idle for at least 10.9 s when it is evicted.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::agent::{Agent, Spec};
use crate::bench::Measured;
use crate::tools::{self, Paths};

/// Flows per wave: the default flow table size.
const WAVE: u32 = 65_536;
/// The filling wave plus four churn waves.
const WAVES: u32 = 5;
/// Packet time between waves.
const WAVE_GAP_NS: i64 = 11_000_000_000;
/// Packet time between packets of one wave.
const PACKET_GAP_NS: i64 = 1_000;
/// 2024-01-01T00:00:00Z.
const START_NS: i64 = 1_704_067_200_000_000_000;

fn csum(bytes: &[u8]) -> u16 {
    let mut sum = 0u32;
    let mut chunks = bytes.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// Ethernet / IPv4 / TCP (ACK|PSH, no options) from `src:40000` to 10.255.0.1:9092.
fn frame(src: [u8; 4], seq: u32, payload: &[u8]) -> Vec<u8> {
    let dst = [10, 255, 0, 1];
    let ip_len = 20 + 20 + payload.len();
    let mut f = Vec::with_capacity(14 + ip_len);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02]); // destination MAC
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]); // source MAC
    f.extend_from_slice(&0x0800u16.to_be_bytes()); // EtherType IPv4
    f.push(0x45); // version 4, IHL 5
    f.push(0); // DSCP/ECN
    f.extend_from_slice(&(ip_len as u16).to_be_bytes()); // total length
    f.extend_from_slice(&[0, 0]); // identification
    f.extend_from_slice(&0x4000u16.to_be_bytes()); // DF
    f.push(64); // TTL
    f.push(6); // TCP
    f.extend_from_slice(&[0, 0]); // header checksum (below)
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    let c = csum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&40000u16.to_be_bytes()); // source port
    f.extend_from_slice(&9092u16.to_be_bytes()); // destination port
    f.extend_from_slice(&seq.to_be_bytes()); // sequence number
    f.extend_from_slice(&1u32.to_be_bytes()); // acknowledgment number
    f.push(5 << 4); // data offset: 5 words
    f.push(0x18); // ACK|PSH (no SYN: a mid-stream flow)
    f.extend_from_slice(&512u16.to_be_bytes()); // window
    f.extend_from_slice(&[0, 0]); // checksum (not verified by kwire; left 0)
    f.extend_from_slice(&[0, 0]); // urgent pointer
    f.extend_from_slice(payload);
    f
}

/// Writes the churn capture (classic pcap, nanosecond timestamps, Ethernet); returns the packet count.
fn write_capture(path: &Path) -> Result<u64> {
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path)?);
    w.write_all(&0xa1b23c4du32.to_le_bytes())?; // magic: nanosecond pcap
    w.write_all(&2u16.to_le_bytes())?; // version 2.4
    w.write_all(&4u16.to_le_bytes())?;
    w.write_all(&[0u8; 8])?; // thiszone, sigfigs
    w.write_all(&65535u32.to_le_bytes())?; // snaplen
    w.write_all(&1u32.to_le_bytes())?; // LINKTYPE_ETHERNET
    let payload = *b"not-kafka-bytes!";
    let mut n = 0u64;
    for wave in 0..WAVES {
        for i in 0..WAVE {
            // A new address every packet, never reused: 10.(wave*16 + i>>16).(i>>8).(i).
            let src = [10, (wave * 16 + (i >> 16)) as u8, (i >> 8) as u8, i as u8];
            let ts = START_NS + i64::from(wave) * WAVE_GAP_NS + i64::from(i) * PACKET_GAP_NS;
            let f = frame(src, 1000 + i, &payload);
            w.write_all(&(ts.div_euclid(1_000_000_000) as u32).to_le_bytes())?;
            w.write_all(&(ts.rem_euclid(1_000_000_000) as u32).to_le_bytes())?;
            w.write_all(&(f.len() as u32).to_le_bytes())?; // captured length
            w.write_all(&(f.len() as u32).to_le_bytes())?; // original length
            w.write_all(&f)?;
            n += 1;
        }
    }
    w.flush()?;
    Ok(n)
}

/// Runs `cmd` (stdout to `stdout`) and returns its wall time, its own CPU time and peak RSS (wait4 rusage).
fn measure(cmd: &mut Command, stdout: File) -> Result<Measured> {
    let started = Instant::now();
    let child = cmd
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {cmd:?}"))?;
    crate::bench::reap(child, started).with_context(|| format!("{cmd:?}"))
}

/// RSS allowed beyond the memory budget: the binary and its libraries, the bounded summary and
/// analysis tables, allocator slack.
const RSS_OVERHEAD_MB: f64 = 64.0;

/// Writes a classic pcap (ns, Ethernet) of `packets` (ts, frame).
fn write_frames(
    path: &Path,
    mut packets: impl FnMut(&mut dyn FnMut(i64, &[u8]) -> Result<()>) -> Result<()>,
) -> Result<u64> {
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path)?);
    w.write_all(&0xa1b23c4du32.to_le_bytes())?;
    w.write_all(&2u16.to_le_bytes())?;
    w.write_all(&4u16.to_le_bytes())?;
    w.write_all(&[0u8; 8])?;
    w.write_all(&262_144u32.to_le_bytes())?;
    w.write_all(&1u32.to_le_bytes())?;
    let mut n = 0u64;
    packets(&mut |ts, f| {
        w.write_all(&(ts.div_euclid(1_000_000_000) as u32).to_le_bytes())?;
        w.write_all(&(ts.rem_euclid(1_000_000_000) as u32).to_le_bytes())?;
        w.write_all(&(f.len() as u32).to_le_bytes())?;
        w.write_all(&(f.len() as u32).to_le_bytes())?;
        w.write_all(f)?;
        n += 1;
        Ok(())
    })?;
    w.flush()?;
    Ok(n)
}

/// Ethernet / IPv4 / TCP between `src:sport` and 10.255.0.1:9092 (either direction).
fn tcp(
    src: [u8; 4],
    sport: u16,
    to_broker: bool,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = frame(src, seq, payload);
    if !to_broker {
        // Swap addresses and ports.
        let (a, b) = (f[26..30].to_vec(), f[30..34].to_vec());
        f[26..30].copy_from_slice(&b);
        f[30..34].copy_from_slice(&a);
        f[34..36].copy_from_slice(&9092u16.to_be_bytes());
        f[36..38].copy_from_slice(&sport.to_be_bytes());
    } else {
        f[34..36].copy_from_slice(&sport.to_be_bytes());
    }
    f[42..46].copy_from_slice(&ack.to_be_bytes());
    f[47] = flags;
    f[24..26].copy_from_slice(&[0, 0]);
    let c = csum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f
}

fn metadata_request(corr: i32, client_id: &str) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&3i16.to_be_bytes());
    b.extend_from_slice(&1i16.to_be_bytes());
    b.extend_from_slice(&corr.to_be_bytes());
    b.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    b.extend_from_slice(client_id.as_bytes());
    b.extend_from_slice(&0i32.to_be_bytes()); // topics: none
    let mut f = (b.len() as i32).to_be_bytes().to_vec();
    f.extend(b);
    f
}

fn metadata_response(corr: i32) -> Vec<u8> {
    let mut b = corr.to_be_bytes().to_vec();
    b.extend_from_slice(&0i32.to_be_bytes()); // brokers
    b.extend_from_slice(&1i32.to_be_bytes()); // controller
    b.extend_from_slice(&0i32.to_be_bytes()); // topics
    let mut f = (b.len() as i32).to_be_bytes().to_vec();
    f.extend(b);
    f
}

/// A handshake between `src:port` and the broker; returns the next (client, broker) sequence numbers.
fn handshake(
    emit: &mut dyn FnMut(i64, &[u8]) -> Result<()>,
    ts: i64,
    src: [u8; 4],
    port: u16,
) -> Result<(u32, u32)> {
    emit(ts, &tcp(src, port, true, 100, 0, 0x02, &[]))?;
    emit(ts + 1_000, &tcp(src, port, false, 900, 101, 0x12, &[]))?;
    emit(ts + 2_000, &tcp(src, port, true, 101, 901, 0x10, &[]))?;
    Ok((101, 901))
}

/// One connection, 100,000 pipelined requests with unique 1 KiB client ids, then their answers.
fn write_unique_ids(path: &Path) -> Result<u64> {
    write_frames(path, |emit| {
        let src = [10, 7, 0, 1];
        let (mut c, mut b) = handshake(emit, START_NS, src, 40001)?;
        let mut ts = START_NS + 10_000;
        let mut seg = Vec::new();
        let flush = |seg: &mut Vec<u8>,
                     seq: &mut u32,
                     to_broker: bool,
                     ack: u32,
                     ts: &mut i64,
                     emit: &mut dyn FnMut(i64, &[u8]) -> Result<()>|
         -> Result<()> {
            if seg.is_empty() {
                return Ok(());
            }
            *ts += 1_000;
            emit(*ts, &tcp(src, 40001, to_broker, *seq, ack, 0x18, seg))?;
            *seq = seq.wrapping_add(seg.len() as u32);
            seg.clear();
            Ok(())
        };
        for i in 0..100_000i32 {
            let id = format!("{i:08}-{}", "x".repeat(1015));
            seg.extend(metadata_request(i, &id));
            if seg.len() > 60_000 {
                flush(&mut seg, &mut c, true, b, &mut ts, emit)?;
            }
        }
        flush(&mut seg, &mut c, true, b, &mut ts, emit)?;
        for i in 0..100_000i32 {
            seg.extend(metadata_response(i));
            if seg.len() > 60_000 {
                flush(&mut seg, &mut b, false, c, &mut ts, emit)?;
            }
        }
        flush(&mut seg, &mut b, false, c, &mut ts, emit)
    })
}

/// 40 connections each gathering a 15.9 MB frame that never completes (64 KiB segments, interleaved).
fn write_half_frames(path: &Path) -> Result<u64> {
    const CONNS: u16 = 40;
    const CLAIMED: u32 = 15_900_000;
    const SENT: usize = 15_800_000;
    write_frames(path, |emit| {
        let mut seqs = Vec::new();
        let mut ts = START_NS;
        for i in 0..CONNS {
            let src = [10, 8, 0, 1 + i as u8];
            let (c, b) = handshake(emit, ts, src, 41000 + i)?;
            let mut head = (CLAIMED - 4).to_be_bytes().to_vec();
            head.extend_from_slice(&[0, 3, 0, 1, 0, 0, 0, 7, 0, 1, b'h']);
            ts += 10_000;
            emit(ts, &tcp(src, 41000 + i, true, c, b, 0x18, &head))?;
            seqs.push((src, 41000 + i, c + head.len() as u32, b));
        }
        let body = vec![0x41u8; 65_536];
        let mut sent = 0;
        while sent < SENT {
            for (src, port, seq, ack) in seqs.iter_mut() {
                ts += 1_000;
                emit(ts, &tcp(*src, *port, true, *seq, *ack, 0x10, &body))?;
                *seq = seq.wrapping_add(body.len() as u32);
            }
            sent += body.len();
        }
        Ok(())
    })
}

/// A capture written once under `dir` by `write`.
fn cached(dir: &Path, name: &str, write: fn(&Path) -> Result<u64>) -> Result<std::path::PathBuf> {
    let pcap = dir.join(name);
    if !pcap.exists() {
        eprintln!("bench-hostile: writing {} (once)", pcap.display());
        let tmp = pcap.with_extension("pcap.partial");
        write(&tmp)?;
        fs::rename(&tmp, &pcap)?;
    }
    Ok(pcap)
}

/// `kwire replay --json --no-notices --no-exchanges FILE > out`, measured; an error when kwire fails.
fn replay_measured(kwire: &Path, pcap: &Path, out: &Path) -> Result<Measured> {
    let m = measure(
        Command::new(kwire).arg("replay").arg(pcap).args([
            "--json",
            "--no-notices",
            "--no-exchanges",
        ]),
        File::create(out)?,
    )?;
    if m.status != 0 {
        bail!(
            "kwire replay exited with {} on {}",
            m.status,
            pcap.display()
        );
    }
    Ok(m)
}

/// The memory section: both captures replayed, peak RSS beside the budget.
fn memory(dir: &Path, kwire: &Path) -> Result<()> {
    println!("\nhostile memory: peak RSS of `kwire replay` beside the global budget (memory_budget_bytes 64 MiB; allowed: budget + {RSS_OVERHEAD_MB:.0} MB)");
    println!(
        "  {:<20} {:>8} {:>8} {:>9} {:>14} {:>8} {:>13} {:>9}",
        "capture",
        "MB",
        "wall s",
        "RSS MB",
        "budget peak MB",
        "refused",
        "summary bytes",
        "verdict"
    );
    type Write = fn(&Path) -> Result<u64>;
    let cases: [(&str, Write); 2] = [
        ("hostile-unique-client-ids.pcap", write_unique_ids),
        ("hostile-half-frames.pcap", write_half_frames),
    ];
    let mut over = Vec::new();
    for (name, write) in cases {
        let pcap = cached(dir, name, write)?;
        let out = dir.join(format!("{name}.jsonl"));
        let m = replay_measured(kwire, &pcap, &out)?;
        let text = fs::read_to_string(&out)?;
        let last = text.lines().last().unwrap_or_default();
        let summary: serde_json::Value = serde_json::from_str(last).context("summary line")?;
        let mem = &summary["memory"];
        let budget_mb = mem["budget_bytes"].as_f64().unwrap_or(0.0) / 1048576.0;
        let rss = m.max_rss_kb as f64 / 1024.0;
        let ok = rss <= budget_mb + RSS_OVERHEAD_MB;
        if !ok {
            over.push(name);
        }
        println!(
            "  {:<20} {:>8.0} {:>8.2} {:>9.0} {:>14.1} {:>8} {:>13} {:>9}",
            name.trim_start_matches("hostile-")
                .trim_end_matches(".pcap"),
            fs::metadata(&pcap)?.len() as f64 / 1e6,
            m.wall,
            rss,
            mem["peak_bytes"].as_f64().unwrap_or(0.0) / 1048576.0,
            mem["denied"].as_u64().unwrap_or(0),
            last.len(),
            if ok { "within" } else { "OVER" }
        );
    }
    if !over.is_empty() {
        bail!("peak RSS over the budget plus {RSS_OVERHEAD_MB} MB: {over:?}");
    }
    Ok(())
}

/// Local connections of the live flood, and how long it lasts (the bound: 60 s at most).
const FLOOD_CONNS: usize = 16;
const FLOOD_SECONDS: u64 = 20;

/// `kwire run` on lo (libpcap) while local connections flood a local listener with requests that each
/// carry a new 1 KiB client id: what the kernel dropped, and whether RSS stays flat.
fn live_flood(dir: &Path, kwire: &Path) -> Result<()> {
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("\nhostile live flood: skipped (capturing on lo needs root)");
        return Ok(());
    }
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let stop = Arc::new(AtomicBool::new(false));
    // The "broker": reads and discards (no answers: every request is a new client id, never confirmed
    // by a response, so this also floods the pending queues).
    {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            for s in listener.incoming() {
                let Ok(mut s) = s else { continue };
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 1 << 16];
                    while !stop.load(Ordering::Relaxed) {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {}
                        }
                    }
                });
            }
        });
    }
    let args: Vec<String> = [
        "--source",
        "pcap",
        "--interface",
        "lo",
        "--ports",
        &port.to_string(),
        "--json",
        "--no-exchanges",
        "--no-notices",
        "--duration",
        &(FLOOD_SECONDS + 8).to_string(),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let mut agent = Agent::start(Spec::new(kwire, &args, dir, "hostile-flood"))?;
    agent.wait_ready()?;
    let sent = Arc::new(AtomicU64::new(0));
    let mut senders = Vec::new();
    for c in 0..FLOOD_CONNS {
        let (stop, sent) = (Arc::clone(&stop), Arc::clone(&sent));
        senders.push(std::thread::spawn(move || -> Result<()> {
            use std::io::Write;
            let mut s = TcpStream::connect(("127.0.0.1", port))?;
            let mut i = 0i32;
            let mut batch = Vec::with_capacity(1 << 17);
            while !stop.load(Ordering::Relaxed) {
                batch.clear();
                while batch.len() < 1 << 16 {
                    let id = format!("flood-{c:02}-{i:010}-{}", "y".repeat(1000));
                    batch.extend(metadata_request(i, &id));
                    i = i.wrapping_add(1).max(0);
                }
                s.write_all(&batch)?;
                sent.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }));
    }
    let mut samples = Vec::new();
    for _ in 0..FLOOD_SECONDS {
        std::thread::sleep(Duration::from_secs(1));
        samples.push(agent.rss_mb());
    }
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        let _ = s.join();
    }
    let stopped = agent.wait_exit()?;
    if !stopped.status.success() {
        bail!("kwire run exited with {}", stopped.status);
    }
    let summary = stopped.summary()?;
    let seen = summary["packets"]["packets"].as_f64().unwrap_or(0.0);
    let dropped = summary["fidelity"]["kernel_drops"].as_f64().unwrap_or(0.0);
    let at10 = samples.get(9).copied().unwrap_or(0.0);
    let last = samples.last().copied().unwrap_or(0.0);
    let max = samples.iter().copied().fold(0.0, f64::max);
    println!(
        "\nhostile live flood: kwire run --source pcap -i lo for {FLOOD_SECONDS} s while {FLOOD_CONNS} local connections send requests with a new 1 KiB client id each (no answers)"
    );
    println!(
        "  {:>9} {:>12} {:>11} {:>9} {:>11} {:>11} {:>10} {:>6}",
        "sent MB",
        "packets seen",
        "kernel drop",
        "drop %",
        "RSS @10s MB",
        "RSS end MB",
        "RSS max MB",
        "flat"
    );
    println!(
        "  {:>9.0} {:>12.0} {:>11.0} {:>8.1}% {:>11.0} {:>11.0} {:>10.0} {:>6}",
        sent.load(Ordering::Relaxed) as f64 * 65536.0 / 1e6,
        seen,
        dropped,
        100.0 * dropped / (seen + dropped).max(1.0),
        at10,
        last,
        max,
        if last <= at10 * 1.1 { "yes" } else { "NO" }
    );
    println!(
        "  clients in the summary: {} rows + (other) {}; memory peak {:.1} MB of {:.0}",
        summary["clients"].as_array().map_or(0, |c| c.len()),
        summary["table_overflow"]["clients"],
        summary["memory"]["peak_bytes"].as_f64().unwrap_or(0.0) / 1048576.0,
        summary["memory"]["budget_bytes"].as_f64().unwrap_or(0.0) / 1048576.0,
    );
    Ok(())
}

pub fn bench_hostile(paths: &Paths) -> Result<()> {
    let dir = paths.out().join("bench");
    fs::create_dir_all(&dir)?;
    let pcap = dir.join("hostile-churn.pcap");
    let packets = if pcap.exists() {
        u64::from(WAVES) * u64::from(WAVE)
    } else {
        eprintln!(
            "bench-hostile: writing the churn capture {} (once)",
            pcap.display()
        );
        let tmp = pcap.with_extension("pcap.partial");
        let n = write_capture(&tmp)?;
        fs::rename(&tmp, &pcap)?;
        n
    };

    eprintln!("bench-hostile: building kwire (release)");
    let st = Command::new(tools::cargo())
        .args(["build", "--release", "--quiet", "-p", "kwire"])
        .current_dir(&paths.root)
        .status()?;
    if !st.success() {
        bail!("release build of kwire failed");
    }
    let kwire = paths.target_dir().join("release/kwire");
    let out = dir.join("hostile-churn.jsonl");

    let mut best: Option<Measured> = None;
    for _ in 0..3 {
        let m = replay_measured(&kwire, &pcap, &out)?;
        if best.as_ref().is_none_or(|b| m.cpu < b.cpu) {
            best = Some(m);
        }
        // A run well over a minute is the quadratic case: once is enough to see it.
        if best.as_ref().is_some_and(|b| b.cpu > 60.0) {
            break;
        }
    }
    let m = best.context("measured")?;
    let text = fs::read_to_string(&out)?;
    let summary: serde_json::Value = text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "summary")
        .context("no summary line in kwire's output")?;
    let flows = &summary["flows"];

    println!(
        "hostile churn: full flow table ({WAVE} flows), then {} waves of {WAVE} new SYN-less flows 11 s apart",
        WAVES - 1
    );
    println!("  file {}", pcap.display());
    println!(
        "  {:>9} {:>8} {:>8} {:>12} {:>13} {:>12} {:>9}",
        "packets", "wall s", "cpu s", "packets/s", "evicted_full", "refused_full", "expired"
    );
    println!(
        "  {:>9} {:>8.2} {:>8.2} {:>12.0} {:>13} {:>12} {:>9}",
        packets,
        m.wall,
        m.cpu,
        packets as f64 / m.cpu.max(1e-9),
        flows["evicted_full"].as_u64().unwrap_or(0),
        flows["refused_table_full"].as_u64().unwrap_or(0),
        flows["expired"].as_u64().unwrap_or(0),
    );
    memory(&dir, &kwire)?;
    live_flood(&dir, &kwire)?;
    Ok(())
}
