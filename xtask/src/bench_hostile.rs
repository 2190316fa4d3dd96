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
//! Easy to get wrong: this is a benchmark, not a test: it prints numbers and fails only when `kwire`
//! itself fails. The waves' packets are 1 µs apart, so a wave spans 65 ms of packet time and every flow
//! of the previous wave is idle for at least 10.9 s when it is evicted.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

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

struct Measured {
    wall: f64,
    cpu: f64,
    status: i32,
}

/// Runs `cmd` (stdout to `stdout`) and returns its wall time and its own CPU time (wait4 rusage).
fn measure(cmd: &mut Command, stdout: File) -> Result<Measured> {
    let started = Instant::now();
    let child = cmd
        .stdout(Stdio::from(stdout))
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
    Ok(Measured {
        wall: started.elapsed().as_secs_f64(),
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        status: if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -1
        },
    })
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
        let m = measure(
            Command::new(&kwire).arg("replay").arg(&pcap).args([
                "--json",
                "--no-notices",
                "--no-exchanges",
            ]),
            File::create(&out)?,
        )?;
        if m.status != 0 {
            bail!(
                "kwire replay exited with {} on {}",
                m.status,
                pcap.display()
            );
        }
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
    Ok(())
}
