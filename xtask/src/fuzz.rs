//! `cargo xtask fuzz`: the cargo-fuzz targets of `fuzz/` (nightly, libFuzzer), seeded from the committed
//! fixtures and the shared public captures, run for a wall-time or a CPU-time budget, with what libFuzzer
//! reached (runs, exec/s, cov, ft) and the CPU seconds the fuzzer really used.
//!
//! ```text
//! cargo xtask fuzz [--target T]... [--minutes N | --seconds N | --cpu-minutes N] [--asan]
//! ```
//!
//! KWIRE_FUZZ_ARGS adds libFuzzer flags (whitespace-separated).
//!
//! Steps: install cargo-fuzz (and rustup's nightly) if missing; `cargo +nightly fuzz build`; write each
//! target's seeds to `fuzz/seeds/<target>/` (rebuilt every run, from the captures); run the fuzzer binary
//! on `fuzz/corpus/<target>/` (kept between runs) plus the seeds; crash inputs land in
//! `fuzz/artifacts/<target>/` and fail the command.
//!
//! Easy to get wrong:
//! - the machine is shared, so wall time says little: CPU time comes from /proc/<pid>/stat while the
//!   fuzzer runs (`--cpu-minutes` stops it with SIGINT once reached) and from wait4's rusage at the end;
//! - libFuzzer prints its final stats on SIGINT only with `-print_final_stats=1`, and exits 72 then;
//!   a Ctrl-C (or a SIGINT to the fuzzer) stops the current target and this still reports it;
//! - the fuzzer is built without a sanitizer by default (kwire's crates have no `unsafe`; overflow checks
//!   and debug assertions are on, as cargo-fuzz builds by default): ASan halves exec/s for nothing here.
//!   `--asan` turns it back on;
//! - the fuzz crate has its own workspace and target dir (`fuzz/target`), never the main one.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::tools::{self, Paths};

// Shared with the fuzz crate and the fuzz_smoke tests (the stream decoders are not used here).
#[allow(dead_code)]
#[path = "../../fuzz/src/format.rs"]
mod format;
#[path = "../../fuzz/src/seeds.rs"]
mod seeds;

/// The targets, in the order they run.
pub const TARGETS: [&str; 2] = ["engine_packets", "kafka_stream"];

/// How long each target runs.
#[derive(Clone, Copy, Debug)]
pub enum Budget {
    /// Wall seconds per target (libFuzzer's `-max_total_time`).
    Wall(u64),
    /// CPU seconds the fuzzer process uses (user + system), however long that takes.
    Cpu(u64),
}

/// What one run reached.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub target: String,
    pub runs: u64,
    /// libFuzzer's average exec/s (per wall second).
    pub exec_per_sec: u64,
    pub cov: u64,
    pub ft: u64,
    pub corpus: u64,
    pub cpu_secs: f64,
    pub wall_secs: f64,
    pub peak_rss_mb: u64,
    /// Crash, timeout and OOM inputs written during this run.
    pub crashes: Vec<PathBuf>,
    pub exit: String,
}

pub fn fuzz_args(paths: &Paths, args: &[String]) -> Result<()> {
    let mut targets: Vec<String> = Vec::new();
    let mut budget = Budget::Wall(60);
    let mut asan = false;
    let mut it = args.iter();
    let num = |v: Option<&String>, what: &str| -> Result<f64> {
        v.and_then(|s| s.parse::<f64>().ok())
            .filter(|n| *n > 0.0)
            .with_context(|| format!("{what} needs a positive number"))
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--target" => {
                let t = it.next().context("--target needs a name")?;
                if !TARGETS.contains(&t.as_str()) {
                    bail!("unknown fuzz target {t:?}; known: {}", TARGETS.join(", "));
                }
                targets.push(t.clone());
            }
            "--minutes" => budget = Budget::Wall((num(it.next(), a)? * 60.0) as u64),
            "--seconds" => budget = Budget::Wall(num(it.next(), a)? as u64),
            "--cpu-minutes" => budget = Budget::Cpu((num(it.next(), a)? * 60.0) as u64),
            "--asan" => asan = true,
            other => bail!("unexpected argument {other:?}; usage: cargo xtask fuzz [--target T]... [--minutes N | --seconds N | --cpu-minutes N] [--asan]"),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|s| s.to_string()).collect();
    }
    let outcomes = fuzz(paths, &targets, budget, asan)?;
    if outcomes.iter().any(|o| !o.crashes.is_empty()) {
        bail!("the fuzzers found crashes (inputs kept under fuzz/artifacts/; replay one with `fuzz/target/x86_64-unknown-linux-gnu/release/<target> <file>`)");
    }
    Ok(())
}

/// Installs what is missing, builds, seeds and runs each target; prints one line per target.
pub fn fuzz(paths: &Paths, targets: &[String], budget: Budget, asan: bool) -> Result<Vec<Outcome>> {
    ensure_cargo_fuzz()?;
    let fuzz_dir = paths.root.join("fuzz");
    let target_dir = fuzz_dir.join("target");
    let t = Instant::now();
    eprintln!("==> cargo +nightly fuzz build {}", targets.join(" "));
    for target in targets {
        let mut cmd = Command::new("cargo");
        cmd.args(["+nightly", "fuzz", "build", "--sanitizer"])
            .arg(if asan { "address" } else { "none" })
            .arg("--target-dir")
            .arg(&target_dir)
            .arg(target)
            .current_dir(&fuzz_dir)
            .env_remove("CARGO_TARGET_DIR");
        let st = cmd.status().context("cargo +nightly fuzz build")?;
        if !st.success() {
            bail!("cargo +nightly fuzz build {target} failed ({st})");
        }
    }
    eprintln!("    built in {:.0}s", t.elapsed().as_secs_f64());
    let mut outcomes = Vec::new();
    for target in targets {
        let seeds_dir = write_seeds(paths, target)?;
        let bin = target_dir
            .join("x86_64-unknown-linux-gnu/release")
            .join(target);
        let o = run_target(paths, target, &bin, &seeds_dir, budget)?;
        print_outcome(&o);
        let stop = o.exit.starts_with("interrupted");
        outcomes.push(o);
        if stop {
            eprintln!("    interrupted: the remaining targets are not run");
            break;
        }
    }
    if outcomes.len() > 1 {
        println!("\nfuzz summary");
        for o in &outcomes {
            print_outcome(o);
        }
    }
    Ok(outcomes)
}

fn print_outcome(o: &Outcome) {
    println!(
        "{:<15} runs {:>11}  exec/s {:>6} (per CPU s {:>6.0})  cov {:>5}  ft {:>6}  corpus {:>5}  CPU {:>7.0}s  wall {:>6.0}s  peak RSS {:>4} MB  crashes {}  ({})",
        o.target,
        o.runs,
        o.exec_per_sec,
        if o.cpu_secs > 0.0 { o.runs as f64 / o.cpu_secs } else { 0.0 },
        o.cov,
        o.ft,
        o.corpus,
        o.cpu_secs,
        o.wall_secs,
        o.peak_rss_mb,
        o.crashes.len(),
        o.exit
    );
    for c in &o.crashes {
        println!("    crash input: {}", c.display());
    }
}

/// `cargo fuzz` and the nightly toolchain, installed if missing (what `cargo xtask setup` calls too).
pub fn ensure_cargo_fuzz() -> Result<String> {
    let nightly = || {
        Command::new("rustup")
            .args(["run", "nightly", "rustc", "--version"])
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
    };
    if nightly().is_none() {
        eprintln!("==> rustup toolchain install nightly --profile minimal");
        let st = Command::new("rustup")
            .args(["toolchain", "install", "nightly", "--profile", "minimal"])
            .status()
            .context("rustup (cargo-fuzz needs rustup's nightly toolchain)")?;
        if !st.success() || nightly().is_none() {
            bail!("rustup toolchain install nightly failed ({st})");
        }
    }
    let version = || {
        Command::new(tools::cargo())
            .args(["fuzz", "--version"])
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    if let Some(v) = version() {
        return Ok(v);
    }
    eprintln!("==> cargo install cargo-fuzz --locked");
    let st = Command::new(tools::cargo())
        .args(["install", "cargo-fuzz", "--locked"])
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .context("cargo install cargo-fuzz")?;
    if !st.success() {
        bail!("cargo install cargo-fuzz --locked failed ({st})");
    }
    version().context("cargo fuzz does not run after installing it")
}

/// Writes `fuzz/seeds/<target>/` afresh from the captures; returns the directory.
fn write_seeds(paths: &Paths, target: &str) -> Result<PathBuf> {
    let dir = paths.root.join("fuzz/seeds").join(target);
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(&dir)?;
    let files = seeds::capture_files(&paths.root, &shared(paths));
    let mut n = 0usize;
    let mut bytes = 0usize;
    for f in &files {
        let pkts = seeds::read_capture(f);
        let list = if target == "engine_packets" {
            seeds::engine_seeds(&pkts)
        } else {
            seeds::stream_seeds(&pkts)
        };
        let stem = f.file_stem().and_then(|s| s.to_str()).unwrap_or("capture");
        for (i, s) in list.iter().enumerate() {
            fs::write(dir.join(format!("{stem}-{i:03}")), s)?;
            n += 1;
            bytes += s.len();
        }
    }
    if target == "kafka_stream" {
        for (i, s) in seeds::decoder_seeds().iter().enumerate() {
            fs::write(dir.join(format!("decoder-{i:03}")), s)?;
            n += 1;
            bytes += s.len();
        }
    }
    // Regression inputs (crashes found and fixed) are seeds too.
    let regressions = paths.root.join("fuzz/regressions").join(target);
    if let Ok(rd) = fs::read_dir(&regressions) {
        for e in rd.flatten() {
            if e.path().is_file() {
                fs::copy(
                    e.path(),
                    dir.join(format!("regression-{}", e.file_name().to_string_lossy())),
                )?;
                n += 1;
            }
        }
    }
    eprintln!(
        "==> {target}: {n} seeds ({bytes} bytes) from {} captures in {}",
        files.len(),
        dir.strip_prefix(&paths.root).unwrap_or(&dir).display()
    );
    if n == 0 {
        bail!("{target}: no seeds (no captures under tests/fixtures/harness or ../shared/pcaps/public)");
    }
    Ok(dir)
}

/// The shared corpus beside the repo (`../shared`), or KWIRE_SHARED, or /work/shared.
fn shared(paths: &Paths) -> PathBuf {
    if let Some(s) = std::env::var_os("KWIRE_SHARED") {
        return PathBuf::from(s);
    }
    let beside = paths.root.join("../shared");
    if beside.exists() {
        return beside;
    }
    PathBuf::from("/work/shared")
}

/// user + system CPU seconds of a live process, from /proc/<pid>/stat; None once it is gone.
fn proc_cpu_secs(pid: i32) -> Option<(f64, char)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: fields after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let state = f.first()?.chars().next()?;
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(((utime + stime) / hz, state))
}

/// Kills the fuzzer if xtask returns early.
struct Guard(i32);

impl Drop for Guard {
    fn drop(&mut self) {
        if self.0 > 0 {
            unsafe {
                libc::kill(self.0, libc::SIGKILL);
                libc::waitpid(self.0, std::ptr::null_mut(), 0);
            }
        }
    }
}

fn run_target(
    paths: &Paths,
    target: &str,
    bin: &Path,
    seeds_dir: &Path,
    budget: Budget,
) -> Result<Outcome> {
    let fuzz_dir = paths.root.join("fuzz");
    let corpus = fuzz_dir.join("corpus").join(target);
    let artifacts = fuzz_dir.join("artifacts").join(target);
    let logs = fuzz_dir.join("logs");
    for d in [&corpus, &artifacts, &logs] {
        fs::create_dir_all(d)?;
    }
    let before: Vec<PathBuf> = list(&artifacts);
    let log = logs.join(format!("{target}.log"));
    let max_time = match budget {
        Budget::Wall(s) => s.max(1),
        // No wall limit of its own: stopped by SIGINT when the CPU budget is reached.
        Budget::Cpu(_) => 0,
    };
    let mut artifact_prefix = artifacts.clone().into_os_string();
    artifact_prefix.push("/");
    let mut cmd = Command::new(bin);
    cmd.arg(&corpus)
        .arg(seeds_dir)
        .arg(format!("-max_len={}", seeds::MAX_SEED + 1024))
        .arg(format!("-max_total_time={max_time}"))
        .arg("-print_final_stats=1")
        .arg("-timeout=30")
        .arg("-rss_limit_mb=2048")
        .arg({
            let mut a = std::ffi::OsString::from("-artifact_prefix=");
            a.push(&artifact_prefix);
            a
        })
        // Extra libFuzzer flags (e.g. `-dict=F`, `-rss_limit_mb=N`), split on whitespace.
        .args(
            std::env::var("KWIRE_FUZZ_ARGS")
                .unwrap_or_default()
                .split_whitespace(),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log)?);
    eprintln!(
        "==> fuzz {target}: {} (log {})",
        match budget {
            Budget::Wall(s) => format!("{s} s wall"),
            Budget::Cpu(s) => format!("{s} CPU s"),
        },
        log.strip_prefix(&paths.root).unwrap_or(&log).display()
    );
    let started = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let pid = child.id() as i32;
    let mut guard = Guard(pid);
    // Ctrl-C reaches the fuzzer too (same process group): it prints its final stats and exits 72; this
    // process stays to report them (set after the spawn: the child keeps the default disposition).
    unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
    let mut interrupted = false;
    let mut last_report = Instant::now();
    let hard_stop = match budget {
        Budget::Wall(s) => Some(Duration::from_secs(s + 300)),
        Budget::Cpu(_) => None,
    };
    while let Some((cpu, state)) = proc_cpu_secs(pid) {
        if state == 'Z' {
            break;
        }
        if let Budget::Cpu(limit) = budget {
            if !interrupted && cpu >= limit as f64 {
                unsafe { libc::kill(pid, libc::SIGINT) };
                interrupted = true;
            }
        }
        if hard_stop.is_some_and(|h| started.elapsed() > h) {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if last_report.elapsed() > Duration::from_secs(600) {
            eprintln!(
                "    {target}: {:.0} CPU s in {:.0} s wall",
                cpu,
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // Reap with wait4: the rusage is the fuzzer's exact CPU time.
    let mut status = 0i32;
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    guard.0 = 0;
    drop(child);
    if r != pid {
        bail!("wait4 on the {target} fuzzer failed");
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let mut o = parse_log(&fs::read_to_string(&log).unwrap_or_default());
    o.target = target.to_string();
    o.cpu_secs = tv(ru.ru_utime) + tv(ru.ru_stime);
    o.wall_secs = started.elapsed().as_secs_f64();
    o.exit = if libc::WIFEXITED(status) {
        match libc::WEXITSTATUS(status) {
            0 => "done".to_string(),
            72 if interrupted => "CPU budget reached".to_string(),
            72 => "interrupted (SIGINT)".to_string(),
            c => format!("exit {c}"),
        }
    } else {
        format!("signal {}", libc::WTERMSIG(status))
    };
    o.crashes = list(&artifacts)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    unsafe { libc::signal(libc::SIGINT, libc::SIG_DFL) };
    let stopped = libc::WIFEXITED(status) && matches!(libc::WEXITSTATUS(status), 0 | 72);
    if o.crashes.is_empty() && !stopped {
        bail!(
            "the {target} fuzzer stopped unexpectedly ({}); see {}:\n{}",
            o.exit,
            log.display(),
            crate::proc::tail(&log, 20)
        );
    }
    Ok(o)
}

fn list(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// libFuzzer's status lines (`#N ... cov: C ft: F corp: K/..`) and final stats (`stat::...: V`).
fn parse_log(text: &str) -> Outcome {
    let mut o = Outcome::default();
    let field = |line: &str, key: &str| -> Option<u64> {
        let i = line.find(key)? + key.len();
        line[i..]
            .split(|c: char| !c.is_ascii_digit())
            .find(|s| !s.is_empty())?
            .parse()
            .ok()
    };
    for line in text.lines() {
        if line.starts_with('#') || line.starts_with("Done") {
            if let Some(v) = field(line, " cov: ") {
                o.cov = v;
            }
            if let Some(v) = field(line, " ft: ") {
                o.ft = v;
            }
            if let Some(v) = field(line, " corp: ") {
                o.corpus = v;
            }
            if let Some(v) = field(line, "#") {
                o.runs = o.runs.max(v);
            }
        }
        if let Some(v) = line.strip_prefix("stat::number_of_executed_units: ") {
            o.runs = v.trim().parse().unwrap_or(o.runs);
        }
        if let Some(v) = line.strip_prefix("stat::average_exec_per_sec: ") {
            o.exec_per_sec = v.trim().parse().unwrap_or(0);
        }
        if let Some(v) = line.strip_prefix("stat::peak_rss_mb: ") {
            o.peak_rss_mb = v.trim().parse().unwrap_or(0);
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libfuzzer_stats() {
        let log = "INFO: Seed: 1\n#2\tINITED cov: 10 ft: 11 corp: 1/1b exec/s: 0 rss: 30Mb\n\
                   #1048576\tpulse  cov: 1234 ft: 5678 corp: 321/45Kb lim: 4096 exec/s: 9000 rss: 400Mb\n\
                   ==1== libFuzzer: run interrupted; exiting\n\
                   stat::number_of_executed_units: 1100000\nstat::average_exec_per_sec:     8800\n\
                   stat::new_units_added:          12\nstat::slowest_unit_time_sec:    0\nstat::peak_rss_mb:              412\n";
        let o = parse_log(log);
        assert_eq!(
            (o.runs, o.exec_per_sec, o.cov, o.ft, o.corpus, o.peak_rss_mb),
            (1_100_000, 8800, 1234, 5678, 321, 412)
        );
    }

    #[test]
    fn engine_seed_round_trips_through_the_format() {
        let mut s = vec![0u8];
        assert!(format::packet_record(&mut s, 1, 0, &[1, 2, 3]));
        assert!(format::packet_record(
            &mut s,
            113,
            -2_000_000_000_000_000,
            &[4]
        ));
        assert!(
            !format::packet_record(&mut s, 147, 5, &[5]),
            "DLT 147 is not a link kwire reads"
        );
        let p: Vec<_> = format::packets(&s[1..]).collect();
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].link, p[0].dt_ns, p[0].data), (0, 0, &[1u8, 2, 3][..]));
        assert_eq!(
            (p[1].link, p[1].dt_ns, p[1].data),
            (6, -2_000_000_000_000_000, &[4u8][..])
        );
    }
}
