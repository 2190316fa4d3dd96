//! `ebpf_tap`: opens the eBPF live source and, depending on `--mode`, feeds every packet to the engine
//! and prints its outputs as JSON lines (`decode`), only counts packets (`count`), or just holds the
//! programs attached (`hold`). `cargo xtask ebpf-check` drives it: it is the "agent" whose attribution,
//! decoding, detach-on-death and cost the check measures, independent of `kwire run`.
//!
//! ```text
//! ebpf_tap [--cgroup DIR] [--ports P,P] [--snap N] [--mode decode|count|hold]
//! ```
//! Prints `READY {json}` once attached, then (decode) one JSON object per engine output, and at the end
//! one `{"type":"tap_stats", ...}` line. A `ports P,Q` line on standard input changes the kernel's
//! port filter (answered by a `{"type":"tap_ports", ...}` line). Stops on SIGTERM, SIGINT or end of
//! standard input.
//!
//! Easy to get wrong: the ring is drained after the stop request before the engine finishes, so the
//! last packets are not lost; SIGKILL skips all of that on purpose (the check then verifies the kernel
//! detached the programs by itself).

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use kwire_capture::ebpf::{EbpfOptions, EbpfSource};
use kwire_capture::{LivePacket, LiveSource};
use kwire_engine::{Engine, EngineConfig};
use kwire_flow::LocalEnd;
use serde_json::json;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

#[derive(PartialEq)]
enum Mode {
    Decode,
    Count,
    Hold,
}

fn usage() -> ! {
    eprintln!("usage: ebpf_tap [--cgroup DIR] [--ports P,P] [--snap N] [--mode decode|count|hold]");
    std::process::exit(2)
}

fn main() {
    let mut opts = EbpfOptions::default();
    let mut mode = Mode::Decode;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--cgroup" => opts.cgroup = Some(PathBuf::from(val())),
            "--ports" => {
                opts.ports = val()
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().unwrap_or_else(|_| usage()))
                    .collect()
            }
            "--snap" => opts.snap_len = val().parse().unwrap_or_else(|_| usage()),
            "--mode" => {
                mode = match val().as_str() {
                    "decode" => Mode::Decode,
                    "count" => Mode::Count,
                    "hold" => Mode::Hold,
                    _ => usage(),
                }
            }
            _ => usage(),
        }
    }
    // SAFETY: installing a handler that only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
    }
    // stdin: `ports P,Q` lines change the kernel's port filter at run time; EOF stops.
    let (ports_tx, ports_rx) = mpsc::channel::<Vec<u16>>();
    std::thread::spawn(move || {
        for line in io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if let Some(list) = line.trim().strip_prefix("ports") {
                let ports = list
                    .split(',')
                    .filter_map(|s| s.trim().parse().ok())
                    .collect();
                if ports_tx.send(ports).is_err() {
                    break;
                }
            }
        }
        STOP.store(true, Ordering::SeqCst);
    });
    let started = Instant::now();
    let mut src = match EbpfSource::open(&opts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ebpf_tap: {e}");
            std::process::exit(1);
        }
    };
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let (_, cgroup_id) = src.cgroup();
    let ready = json!({
        "describe": src.describe(),
        "prog_ids": src.program_ids(),
        "cgroup_id": cgroup_id,
        "pid": std::process::id(),
    });
    let _ = writeln!(out, "READY {ready}");
    let _ = out.flush();

    // No port list in the engine: the kernel filters (and its ports may change), the engine probes.
    let mut engine = Engine::new(EngineConfig::default());
    // cgroup id → (path, packets); packets per owner end
    let mut owners: BTreeMap<u64, (Option<String>, u64)> = BTreeMap::new();
    let (mut src_end, mut dst_end) = (0u64, 0u64);
    let mut outputs = 0u64;
    let mut handle =
        |p: &LivePacket<'_>, engine: &mut Engine, out: &mut BufWriter<io::StdoutLock<'_>>| {
            if let Some((end, who)) = p.owner {
                let e = owners
                    .entry(who.cgroup_id)
                    .or_insert_with(|| (who.cgroup.clone(), 0));
                e.1 += 1;
                match end {
                    LocalEnd::Src => src_end += 1,
                    LocalEnd::Dst => dst_end += 1,
                }
            }
            if mode == Mode::Decode {
                engine.on_packet_owned(p.ts, p.link, p.data, p.owner, &mut |o| {
                    outputs += 1;
                    let _ = serde_json::to_writer(&mut *out, &o);
                    let _ = out.write_all(b"\n");
                });
            }
        };
    let mut poll_err = None;
    while !STOP.load(Ordering::SeqCst) {
        while let Ok(ports) = ports_rx.try_recv() {
            let r = src.set_ports(&ports);
            let line = json!({"type": "tap_ports", "ports": ports, "error": r.err().map(|e| e.to_string())});
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
        if mode == Mode::Hold {
            std::thread::sleep(std::time::Duration::from_millis(50));
            continue;
        }
        if let Err(e) = src.poll(1024, 100, &mut |p| handle(p, &mut engine, &mut out)) {
            poll_err = Some(e.to_string());
            break;
        }
    }
    // What is still in the ring was captured before the stop: hand it over too.
    if mode != Mode::Hold {
        while let Ok(n) = src.poll(4096, 0, &mut |p| handle(p, &mut engine, &mut out)) {
            if n == 0 {
                break;
            }
        }
        if mode == Mode::Decode {
            engine.finish(&mut |o| {
                outputs += 1;
                let _ = serde_json::to_writer(&mut out, &o);
                let _ = out.write_all(b"\n");
            });
        }
    }
    let owners: Vec<_> = owners
        .into_iter()
        .map(|(id, (path, n))| json!({"cgroup_id": id, "cgroup": path, "packets": n}))
        .collect();
    let stats = json!({
        "type": "tap_stats",
        "source": src.stats(),
        "resolver": src.resolver_stats(),
        "owners": owners,
        "owner_end": {"src": src_end, "dst": dst_end},
        "outputs": outputs,
        "engine": engine.summary(),
        "cpu_s": cpu_seconds(),
        "wall_s": started.elapsed().as_secs_f64(),
        "poll_error": poll_err,
    });
    let _ = writeln!(out, "{stats}");
    let _ = out.flush();
    drop(src);
}

/// (user, system) CPU seconds of this process.
fn cpu_seconds() -> serde_json::Value {
    // SAFETY: getrusage into a zeroed struct.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    json!({"user": s(ru.ru_utime), "system": s(ru.ru_stime)})
}
