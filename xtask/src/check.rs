//! `cargo xtask test` (everything CI runs), `cargo xtask tidy` (house rules checked by reading the tree)
//! and `cargo xtask demo` (the README's first command).
//!
//! Easy to get wrong: `test` and `demo` must work on a fresh machine of this kind, so both run `setup`
//! first (apt as root, the eBPF toolchain, Python tools into .tools/) - `demo` before it builds kwire;
//! every step says what it runs and fails with the step's name.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::tools::{self, Paths};
use crate::{e2e, setup};

fn step(name: &str, cmd: &mut Command) -> Result<()> {
    let t = Instant::now();
    eprintln!("==> {name}");
    let st = cmd
        .status()
        .with_context(|| format!("{name}: cannot start {cmd:?}"))?;
    if !st.success() {
        bail!("{name} failed ({st})");
    }
    eprintln!("    {name}: ok in {:.0}s", t.elapsed().as_secs_f64());
    Ok(())
}

/// Free bytes on the filesystem that holds `dir` (None when it cannot be asked).
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a properly sized out-parameter.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

/// What a fresh clone's `cargo xtask test` writes: the debug and release targets, the eBPF and
/// stable-only builds, captures and browser screenshots (8.7 GB measured on a fresh clone; room to spare).
const TEST_NEEDS_GB: u64 = 14;

pub fn test(paths: &Paths) -> Result<()> {
    let started = Instant::now();
    // A full disk shows up twenty minutes in as an LLVM "IO failure on output stream"; say it first.
    // Most of it goes to the target directory (elsewhere when CARGO_TARGET_DIR says so; not made yet on a
    // fresh clone, then the checkout's filesystem is the one).
    let target = paths.target_dir();
    let dir = if target.exists() {
        target
    } else {
        paths.root.clone()
    };
    if let Some(free) = free_bytes(&dir) {
        let gb = free / (1 << 30);
        if gb < TEST_NEEDS_GB {
            eprintln!(
                "warning: {gb} GB free under {}; cargo xtask test writes about 9 GB (builds, captures, \
                 screenshots) and wants {TEST_NEEDS_GB} GB free, or it may fail late with \"No space left \
                 on device\". Free space first (`cargo clean` in other checkouts, old captures under tests/out/).",
                dir.display()
            );
        }
    }
    eprintln!("==> setup (tools for the real-traffic tests)");
    setup::setup(paths)?;
    tidy(paths)?;
    let cargo = tools::cargo();
    if Command::new(&cargo)
        .args(["fmt", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        step(
            "cargo fmt --check",
            Command::new(&cargo)
                .args(["fmt", "--all", "--", "--check"])
                .current_dir(&paths.root),
        )?;
    }
    step(
        "cargo test (unit, property, fuzz smoke, public captures, fixtures, robustness)",
        Command::new(&cargo)
            // CI explores a fixed set of property cases (same answer on every run); random exploration
            // is for local runs (`cargo test` without it) and cargo-fuzz. Override to explore.
            .env(
                "PROPTEST_RNG_SEED",
                std::env::var("PROPTEST_RNG_SEED").unwrap_or_else(|_| "20261122".into()),
            )
            .args([
                "test",
                "--workspace",
                "--exclude",
                "kwire-mockbroker",
                "--exclude",
                "pcap-loop",
            ])
            .current_dir(&paths.root),
    )?;
    crate::report_check::report_check(paths, &[])?; // every fixture's report in a real browser
                                                    // The cargo-fuzz targets, 30 s of wall time each (the long runs are `cargo xtask fuzz --cpu-minutes`).
    let targets: Vec<String> = crate::fuzz::TARGETS.iter().map(|s| s.to_string()).collect();
    let fuzzed = crate::fuzz::fuzz(paths, &targets, crate::fuzz::Budget::Wall(30), false)?;
    if fuzzed.iter().any(|o| !o.crashes.is_empty()) {
        bail!("cargo xtask fuzz: crashes found (inputs kept under fuzz/artifacts/)");
    }
    eprintln!("==> e2e: real brokers + real clients captured live, replayed through kwire");
    e2e::e2e(paths, false)?;
    crate::ebpf_object::ebpf_repro(paths)?; // the committed eBPF object is what the source builds
    crate::ebpf_check::ebpf_check(paths, &["--megabytes".into(), "20".into()])?; // eBPF source: attribution, detach on kill
    crate::tls_check::tls_check(paths, &[])?; // Kafka over TLS via the OpenSSL uprobes = the plaintext leg
    crate::ebpf_object::ebpf_stable(paths)?; // a stable-only build of a fresh clone runs the eBPF source
    crate::live::live(paths, &[])?; // `kwire run` live on lo vs replay of the pcap it wrote
    crate::deploy::deploy_check(paths)?; // deploy/: helm lint/template, k8s schemas, caps, non-root start
    crate::fleet::fleet_check(paths)?; // the fleet rule: two netns, two agents, one collector (~15 s)
    eprintln!("==> crosscheck: kwire vs an independent decoder on every fixture");
    e2e::crosscheck(paths)?;
    eprintln!(
        "all tests passed in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The house rules that a reading of the tree can check (the per-file rules are in `crate::tidy`).
pub fn tidy(paths: &Paths) -> Result<()> {
    eprintln!("==> tidy");
    let mut problems = Vec::new();
    // kwire-tls joins the core crates when it exists (TLS decryption inside the engine's pipeline).
    let core = [
        "agent/kwire-flow",
        "agent/kwire-kafka",
        "agent/kwire-engine",
        "agent/kwire-tls",
    ];
    let forbidden_deps = [
        "tokio",
        "pcap",
        "aya",
        "opentelemetry",
        "reqwest",
        "hyper",
        "tonic",
    ];
    let rel = |f: &Path| {
        f.strip_prefix(&paths.root)
            .unwrap_or(f)
            .display()
            .to_string()
    };
    for c in core {
        let Ok(manifest) = fs::read_to_string(paths.root.join(c).join("Cargo.toml")) else {
            continue; // a core crate that does not exist (yet)
        };
        let deps = manifest
            .split("[dependencies]")
            .nth(1)
            .unwrap_or("")
            .split("\n[")
            .next()
            .unwrap_or("");
        for line in deps.lines() {
            let name = line.split(['=', '.', ' ']).next().unwrap_or("").trim();
            if forbidden_deps.iter().any(|f| name.starts_with(f)) {
                problems.push(format!(
                    "{c}: core crate depends on {name} (core crates do no IO)"
                ));
            }
        }
        for f in tools::files_under(&paths.root.join(c).join("src"), &["rs"]) {
            let text = fs::read_to_string(&f)?;
            problems.extend(crate::tidy::core_problems(&rel(&f), &text));
        }
    }
    for dir in ["agent", "xtask/src", "tests/mockbroker/src"] {
        for f in tools::files_under(&paths.root.join(dir), &["rs"]) {
            let text = fs::read_to_string(&f)?;
            let rel = rel(&f);
            let is_module =
                rel.contains("/src/") && !rel.contains("/src/tests/") && !rel.ends_with("tests.rs");
            if is_module && !text.trim_start().starts_with("//!") {
                problems.push(format!("{rel}: module does not open with a //! doc (what it is, what is easy to get wrong)"));
            }
            if text.lines().any(|l| l.trim_start().starts_with("#[ignore")) {
                problems.push(format!("{rel}: #[ignore] test (benchmarks belong in cargo xtask bench; tests must run)"));
            }
            if dir == "agent" {
                problems.extend(crate::tidy::long_file_problem(&rel, &text));
            }
        }
    }
    if problems.is_empty() {
        eprintln!("    tidy: ok");
        Ok(())
    } else {
        for p in &problems {
            eprintln!("    {p}");
        }
        bail!("tidy: {} problem(s)", problems.len())
    }
}

/// The README's first command: builds kwire, replays bundled captures of real clients, then (when this
/// machine can capture: root, tools installed by `setup`) watches real clients live and prints alerts as
/// they fire.
pub fn demo(paths: &Paths) -> Result<()> {
    let cargo = tools::cargo();
    // The build itself needs setup's tools (libpcap headers from apt, the nightly toolchain and
    // bpf-linker for the eBPF programs), and the live part needs its brokers and clients: on a fresh
    // machine `cargo xtask demo` must work as the README's first command. Setup is idempotent (what is
    // present is only listed).
    eprintln!("==> setup (what building kwire and the live part need)");
    setup::setup(paths)?;
    step(
        "build kwire (release)",
        Command::new(&cargo)
            .args(["build", "--release", "--quiet", "-p", "kwire"])
            .current_dir(&paths.root),
    )?;
    let kwire = paths.target_dir().join("release").join("kwire");
    let fixtures = paths.fixtures();
    for name in [
        "produce-acks-librdkafka-mock.pcap",
        "commit-after-revoke-cooperative-mock.pcap",
    ] {
        let f = fixtures.join(name);
        println!(
            "\n$ kwire replay {}",
            f.strip_prefix(&paths.root).unwrap_or(&f).display()
        );
        let st = Command::new(&kwire)
            .arg("replay")
            .arg(&f)
            .current_dir(&paths.root)
            .status()?;
        if !st.success() {
            bail!("kwire replay {} failed ({st})", f.display());
        }
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !root {
        println!("\n(live part skipped: capturing needs root; run `sudo cargo xtask demo`)");
        return Ok(());
    }
    crate::live::demo_live(
        paths,
        &kwire,
        &[
            "acks1-leader-change-mock",
            "follower-fetch-hwm-regression-mock",
            "commit-after-revoke-cooperative-mock",
        ],
    )?;
    println!("\nMore: kwire replay FILE --json | jq 'select(.type==\"alert\")'; kwire timeline FILE --client ID; kwire run --help; cargo xtask bench");
    println!("To an OpenTelemetry backend: kwire replay FILE --otlp --otlp-endpoint http://COLLECTOR:4317 --otlp-protocol grpc (deploy/, dashboards/)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The disk check reads the filesystem of the checkout (statvfs): a real, non-zero figure there, and
    /// no figure for a path that does not exist (the check then stays quiet).
    #[test]
    fn free_bytes_reads_the_filesystem() {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        assert!(free_bytes(here).is_some_and(|b| b > 0));
        assert_eq!(free_bytes(Path::new("/no/such/dir/kwire")), None);
    }
}
