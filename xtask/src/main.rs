//! `cargo xtask`: the project's chores: demo, test, tidy, bench, and the real-traffic capture harness.
//!
//! ```text
//! cargo xtask setup                         install tcpdump/tshark/cmake (apt), Python clients and
//!                                           tansu (into .tools/), build the mock broker
//! cargo xtask list                          the capture scenarios
//! cargo xtask capture <scenario> [--out F]  one capture (default tests/out/<scenario>.pcap)
//! cargo xtask fixtures [scenario...]        regenerate the committed captures in tests/fixtures/harness/
//! cargo xtask e2e [--reuse]                 fresh captures replayed through `kwire replay --json`, checked
//! cargo xtask crosscheck                    committed fixtures: kwire vs tests/harness/wire_summary.py
//! cargo xtask ebpf-check [--no-measure]     the eBPF source on real Kafka traffic in a child cgroup
//! cargo xtask tls-check                    Kafka over TLS (tansu behind stunnel4) read by the OpenSSL uprobes
//! cargo xtask ebpf-object                  rebuild the committed eBPF object from source (+ manifest)
//! cargo xtask ebpf-repro                   the committed eBPF object is byte for byte the source's build
//! cargo xtask ebpf-stable                  a fresh clone built with only stable Rust runs the eBPF source
//! cargo xtask fuzz [--cpu-minutes N]       the cargo-fuzz targets, seeded from the captures (fuzz.rs)
//! cargo xtask live [check...]               `kwire run` live on lo vs `kwire replay` of the pcap it wrote
//! ```
//!
//! Easy to get wrong: xtask must stay light (anyhow, serde_json, std only: no tokio); every wait
//! has a timeout and every process it starts is stopped, on errors too (see proc.rs).

mod agent;
mod bench;
mod bench_capture;
mod bench_hostile;
mod bench_live;
mod broker;
mod capture;
mod check;
mod collector;
mod deploy;
mod e2e;
mod ebpf_check;
mod ebpf_object;
mod fleet;
mod fuzz;
mod live;
mod pgo;
mod proc;
mod report_check;
mod scenarios;
mod setup;
mod tally;
mod tidy;
mod tls_check;
mod tools;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Result};

use crate::tools::Paths;

const USAGE: &str = "usage: cargo xtask <command>
  demo                           install what is missing (setup), build kwire, replay bundled captures of real clients (the README's first command)
  test                           everything CI runs: setup, tidy, fmt, cargo test, e2e, crosscheck
  bench-hostile                  flow churn at a full 65,536-flow table (synthetic capture): packets/s
  fuzz [--target T]... [--minutes N | --seconds N | --cpu-minutes N] [--asan]
                                 the cargo-fuzz targets (engine_packets, kafka_stream; nightly, cargo-fuzz installed if
                                 missing) seeded from the fixtures and public captures, N minutes of wall time each
                                 (default 1) or until the fuzzer used N CPU minutes; prints runs, exec/s, cov, ft, CPU s;
                                 a crash fails (input kept in fuzz/artifacts/)
  tidy                           house rules: core crates do no IO, module docs, no #[ignore], long files say why
  pgo [--locked]                 kwire built with profile-guided optimisation, trained on the committed fixtures
                                 (~11% less CPU than the plain release build): target/pgo/release/kwire
  bench [--megabytes N] [--recapture] [--no-tshark] [--no-otlp] [--no-big-batch] [--no-live|--live-only]
        [--no-ladder] [--live-seconds S] [--ladder-mbps R,R,..] [--live-big-batch] [--no-tls|--tls-only]
        [--tls-megabytes N] [--run-args ARGS] [--no-pgo]
                                 replay speed of kwire (plain, --json, --otlp) beside a libpcap loop and tshark
                                 on production-like captures (nine clients, 1500-byte and loopback packets, built
                                 once) and the big-batch one; live: the agent on that load (CPU s/GB, per M
                                 exchanges, RSS), a tcpreplay ladder onto a veth pair, kwire vs tcpdump, and
                                 Kafka over TLS (uprobes) beside its plaintext leg: CPU s per GB of each
  setup                          install the harness's tools (apt needs root), build the mock broker
  list                           list the capture scenarios
  capture <scenario> [--out F]   capture one scenario (default tests/out/<scenario>.pcap)
  fixtures [scenario...]         regenerate committed captures in tests/fixtures/harness/
  e2e [--reuse]                  capture 2 scenarios into tests/out/e2e and check `kwire replay --json`
                                 (--reuse: replay existing captures there instead of capturing)
  crosscheck                     replay every committed fixture through kwire and through
                                 tests/harness/wire_summary.py; requests per client id and API must agree
  report-check [fixture...]      `kwire report` of every fixture rendered by headless chromium: screenshots
                                 not blank, charts drawn, no console message or network request
                                 (tests/out/report-check/)
  ebpf-check [--megabytes N] [--no-measure]
                                 load the eBPF programs at a child cgroup, decode real clients' traffic
                                 there (attribution checked), kill holders (SIGTERM, SIGKILL: nothing
                                 stays attached), then eBPF vs libpcap on an N MB load (default 50)
  tls-check                      Kafka over TLS (tansu behind stunnel4, throwaway CA): `kwire run --source ebpf` reads it
                                 with OpenSSL uprobes and must match the plaintext leg (exchanges, alerts); detach on exit
  ebpf-object                    rebuild ebpf/kwire-ebpf.bpf.o from source (nightly toolchain) and rewrite its
                                 manifest ebpf/kwire-ebpf.bpf.o.sha256 (review, then commit both)
  ebpf-repro                     build the kernel programs from source; fail unless the bytes equal the
                                 committed ebpf/kwire-ebpf.bpf.o (what stable-only machines link)
  ebpf-stable                    fresh clone of HEAD, `cargo build -p kwire` with nightly unavailable (only the
                                 stable toolchain, no rustup, no bpf-linker), then `kwire run --source ebpf` on a
                                 real scenario (as root)
  live [check...]                `kwire run --source pcap` on lo during real scenarios, stopped by SIGTERM;
                                 its exchanges and alerts must equal `kwire replay` of the pcap it wrote and
                                 the fixtures' alerts; plus health, SIGINT, --duration, CAP_NET_RAW checks
                                 (checks: agent, or scenario names; default all)
  deploy-check [--build] [--docker]
                                 validate deploy/: helm lint/template, Kubernetes schemas, privileges vs the
                                 Dockerfile's setcap, the binary started as uid 65532 with file capabilities only
                                 (--build: the Dockerfile's release build first; --docker: docker build if a daemon answers)
  fleet-check                    the fleet rule with real peers: two network namespaces on a veth pair (tansu
                                 + rotel in one, confluent-kafka producers in the other), one `kwire run --source
                                 pcap` per side, one collector: every exchange, alert and sent record once";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let paths = Paths::new();
    let Some(cmd) = args.first() else {
        println!("{USAGE}");
        return Ok(());
    };
    match cmd.as_str() {
        "setup" => setup::setup(&paths),
        "test" => check::test(&paths),
        "tidy" => check::tidy(&paths),
        "demo" => check::demo(&paths),
        "bench" => bench::bench(&paths, &args[1..]),
        "pgo" => {
            let locked = match args.get(1).map(String::as_str) {
                None => false,
                Some("--locked") => true,
                Some(other) => bail!("unexpected argument {other:?}\n{USAGE}"),
            };
            crate::pgo::build(&paths, locked).map(|k| println!("{}", k.display()))
        }
        "bench-hostile" => bench_hostile::bench_hostile(&paths),
        "fuzz" => fuzz::fuzz_args(&paths, &args[1..]),
        "list" => {
            for s in scenarios::SCENARIOS {
                println!(
                    "{:<38} {}",
                    s.name,
                    s.summary.split_whitespace().collect::<Vec<_>>().join(" ")
                );
            }
            Ok(())
        }
        "capture" => {
            let mut name = None;
            let mut out = None;
            let mut it = args[1..].iter();
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--out" => {
                        out = Some(PathBuf::from(
                            it.next()
                                .ok_or_else(|| anyhow::anyhow!("--out needs a file"))?,
                        ))
                    }
                    s if !s.starts_with('-') && name.is_none() => name = Some(s.to_string()),
                    other => bail!("unexpected argument {other:?}\n{USAGE}"),
                }
            }
            let Some(name) = name else {
                bail!("capture needs a scenario: {}", scenarios::names())
            };
            let sc = scenarios::find(&name).ok_or_else(|| {
                anyhow::anyhow!("unknown scenario {name:?}; known: {}", scenarios::names())
            })?;
            let out = out.unwrap_or_else(|| paths.out().join(format!("{name}.pcap")));
            let out = if out.is_absolute() {
                out
            } else {
                std::env::current_dir()?.join(out)
            };
            let c = capture::capture(&paths, sc, &out)?;
            println!(
                "{}: {} packets, {} bytes, {:.1}s\n  {}\n  {}",
                sc.name,
                c.facts["capture"]["packets_captured"],
                c.facts["capture"]["bytes"],
                c.seconds,
                c.pcap.display(),
                c.facts_file.display()
            );
            Ok(())
        }
        "fixtures" => {
            let wanted: Vec<&str> = args[1..].iter().map(|s| s.as_str()).collect();
            for w in &wanted {
                if scenarios::find(w).is_none() {
                    bail!("unknown scenario {w:?}; known: {}", scenarios::names());
                }
            }
            let started = Instant::now();
            let dir = paths.fixtures();
            for sc in scenarios::SCENARIOS
                .iter()
                .filter(|s| wanted.is_empty() || wanted.contains(&s.name))
            {
                let c = capture::capture(&paths, sc, &dir.join(format!("{}.pcap", sc.name)))?;
                println!(
                    "{:<38} {:>5} packets {:>8} bytes {:>6.1}s",
                    sc.name,
                    c.facts["capture"]["packets_captured"],
                    c.facts["capture"]["bytes"],
                    c.seconds
                );
            }
            println!("fixtures done in {:.0}s (now update tests/fixtures/harness/README.md if counts changed)", started.elapsed().as_secs_f64());
            Ok(())
        }
        "crosscheck" => e2e::crosscheck(&paths),
        "report-check" => report_check::report_check(&paths, &args[1..]),
        "ebpf-check" => ebpf_check::ebpf_check(&paths, &args[1..]),
        "tls-check" => tls_check::tls_check(&paths, &args[1..]),
        "ebpf-object" => ebpf_object::ebpf_object(&paths),
        "ebpf-repro" => ebpf_object::ebpf_repro(&paths),
        "ebpf-stable" => ebpf_object::ebpf_stable(&paths),
        "live" => live::live(&paths, &args[1..]),
        "deploy-check" => deploy::deploy_check_args(&paths, &args[1..]),
        "fleet-check" => fleet::fleet_check(&paths),
        "e2e" => {
            let reuse = args[1..].iter().any(|a| a == "--reuse");
            e2e::e2e(&paths, reuse)
        }
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command {other:?}\n{USAGE}"),
    }
}
