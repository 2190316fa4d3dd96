//! `cargo xtask pgo`: kwire built with profile-guided optimisation (PGO), the binary the benchmark measures
//! and the one to deploy. Three steps, each an ordinary cargo or LLVM command:
//!
//! 1. an instrumented release build (`-Cprofile-generate`) in `target/pgo-train`;
//! 2. training: that binary replays every committed fixture (tests/fixtures: real clients' traffic of
//!    every API kwire decodes, alerts firing and quiet) as `replay`, `replay --json` and `timeline`,
//!    each run writing a raw profile; `llvm-profdata merge` makes `target/pgo/kwire.profdata`;
//! 3. the optimised release build (`-Cprofile-use`) in `target/pgo`: `target/pgo/release/kwire`.
//!
//! Why: on the realistic 1500-byte bench capture (traffic none of the fixtures is), the PGO build takes
//! ~11% less CPU than the same release build without it (plain replay and `--json`, pinned medians of 11
//! alternating runs); training on the bench capture itself did no better (0.887x against 0.899x), so the
//! profile comes from the fixtures alone and the build needs nothing but a checkout. The engine's
//! profile is flat (no function above 4%): branch layout and inlining across the whole pipeline is
//! where the gain is, not one hot loop.
//!
//! Easy to get wrong: the profile format belongs to the LLVM that rustc uses; `llvm-profdata` must be
//! the same major version (rustc -vV says which; `cargo xtask setup` installs llvm-22 for bpf-linker,
//! rustup's `llvm-tools` component is the other source). Two target directories, not the shared
//! `target/release`: RUSTFLAGS are part of cargo's fingerprint, and one directory would rebuild every
//! crate each time the flags changed. A profile older than the source still builds (functions that
//! changed are optimised without it): rerun `cargo xtask pgo` after changing the engine.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::tools::{self, Paths};

/// Builds the PGO kwire (all three steps, each brought up to date) and returns its path. `locked`:
/// both cargo builds with `--locked` (the Docker image's build).
pub fn build(paths: &Paths, locked: bool) -> Result<PathBuf> {
    let started = Instant::now();
    let profdata_tool = llvm_profdata()?;
    let target = paths.target_dir();
    let train_dir = target.join("pgo-train");
    let pgo_dir = target.join("pgo");
    let raw = pgo_dir.join("raw");
    let merged = pgo_dir.join("kwire.profdata");

    eprintln!("pgo: 1/3 instrumented build (target/pgo-train)");
    let instrumented = cargo_build(
        paths,
        locked,
        &train_dir,
        &format!("-Cprofile-generate={}", raw.display()),
    )?;

    // Every capture under tests/fixtures, sorted: the same training on every machine.
    let fixtures = tools::files_under(&paths.root.join("tests/fixtures"), &["pcap", "pcapng"]);
    if fixtures.is_empty() {
        bail!("no captures under tests/fixtures to train on");
    }
    let stamp_file = pgo_dir.join("kwire.profdata.stamp");
    let stamp = training_stamp(&instrumented, &fixtures)?;
    if merged.exists() && fs::read_to_string(&stamp_file).ok().as_deref() == Some(stamp.as_str()) {
        eprintln!(
            "pgo: 2/3 training skipped: {} was made by this instrumented binary from these fixtures",
            rel(paths, &merged)
        );
    } else {
        eprintln!("pgo: 2/3 training on the committed fixtures");
        train(
            &instrumented,
            &fixtures,
            &raw,
            &profdata_tool,
            &pgo_dir,
            &merged,
        )?;
        fs::write(&stamp_file, &stamp)?;
        eprintln!(
            "pgo:     {} runs over {} fixtures -> {}",
            fixtures.len() * 3,
            fixtures.len(),
            rel(paths, &merged)
        );
    }

    eprintln!("pgo: 3/3 optimised build (target/pgo)");
    let kwire = cargo_build(
        paths,
        locked,
        &pgo_dir,
        &format!("-Cprofile-use={}", merged.display()),
    )?;
    eprintln!(
        "pgo: {} ({:.0} s)",
        rel(paths, &kwire),
        started.elapsed().as_secs_f64()
    );
    Ok(kwire)
}

/// What a profile was made from: the instrumented binary's bytes and every training capture's name
/// and bytes (SHA-256). Training twice does not count exactly the same (some hash seed or timing outside
/// the engine's tables), and a changed profile makes step 3 rebuild every crate (~4 minutes): so an
/// unchanged binary trained on unchanged fixtures keeps its profile.
fn training_stamp(instrumented: &Path, fixtures: &[PathBuf]) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(
        fs::read(instrumented).with_context(|| format!("reading {}", instrumented.display()))?,
    );
    for f in fixtures {
        h.update(f.file_name().unwrap_or_default().as_encoded_bytes());
        h.update(fs::read(f).with_context(|| format!("reading {}", f.display()))?);
    }
    Ok(format!("{:x}\n", h.finalize()))
}

/// Step 2: every fixture replayed by the instrumented binary, the raw profiles merged into `merged`.
fn train(
    instrumented: &Path,
    fixtures: &[PathBuf],
    raw: &Path,
    profdata_tool: &Path,
    pgo_dir: &Path,
    merged: &Path,
) -> Result<()> {
    let _ = fs::remove_dir_all(raw);
    fs::create_dir_all(raw)?;
    for f in fixtures {
        for args in [&["replay"][..], &["replay", "--json"], &["timeline"]] {
            // Exit status 1 = alerts at --fail-on (none by default), 2 = damaged input: both are
            // training too; only a run that could not start is an error.
            Command::new(instrumented)
                .args(args)
                .arg(f)
                .env("LLVM_PROFILE_FILE", raw.join("kwire-%p-%m.profraw"))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .with_context(|| format!("running {}", instrumented.display()))?;
        }
    }
    let fresh = pgo_dir.join("kwire.profdata.new");
    let st = Command::new(profdata_tool)
        .arg("merge")
        .arg("-o")
        .arg(&fresh)
        .arg(raw)
        .status()
        .with_context(|| format!("running {}", profdata_tool.display()))?;
    if !st.success() {
        bail!("{} merge failed ({st})", profdata_tool.display());
    }
    // Hundreds of MB of raw profiles, merged now.
    let _ = fs::remove_dir_all(raw);
    // A profile equal to the last one is not rewritten: rustc tracks the file, and step 3 would rebuild
    // every crate for nothing.
    if fs::read(&fresh)? != fs::read(merged).unwrap_or_default() {
        fs::rename(&fresh, merged)?;
    } else {
        fs::remove_file(&fresh)?;
    }
    Ok(())
}

fn rel(paths: &Paths, p: &Path) -> String {
    p.strip_prefix(&paths.root)
        .unwrap_or(p)
        .display()
        .to_string()
}

/// `cargo build --release -p kwire` into `dir` with `rustflags` added to any the caller set.
fn cargo_build(paths: &Paths, locked: bool, dir: &Path, rustflags: &str) -> Result<PathBuf> {
    let flags = match std::env::var("RUSTFLAGS") {
        Ok(f) if !f.trim().is_empty() => format!("{f} {rustflags}"),
        _ => rustflags.to_string(),
    };
    let mut cmd = Command::new(tools::cargo());
    cmd.args(["build", "--release", "--quiet", "-p", "kwire"]);
    if locked {
        cmd.arg("--locked");
    }
    let st = cmd
        .env("CARGO_TARGET_DIR", dir)
        .env("RUSTFLAGS", flags)
        .current_dir(&paths.root)
        .status()?;
    if !st.success() {
        bail!("cargo build (RUSTFLAGS {rustflags}) failed ({st}); a plain `cargo build --release -p kwire` shows why");
    }
    Ok(dir.join("release").join("kwire"))
}

/// The `llvm-profdata` of rustc's LLVM major version: `llvm-profdata-N` on PATH (Debian's llvm-N, which
/// setup installs), rustup's llvm-tools, or a plain `llvm-profdata` of that version.
fn llvm_profdata() -> Result<PathBuf> {
    let vv = Command::new("rustc")
        .arg("-vV")
        .output()
        .context("running rustc -vV")?;
    let text = String::from_utf8_lossy(&vv.stdout).into_owned();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
    };
    let major = field("LLVM version:")
        .and_then(|v| v.split('.').next().map(str::to_string))
        .context("rustc -vV names no LLVM version")?;
    if let Some(p) = crate::proc::which(&format!("llvm-profdata-{major}")) {
        return Ok(p);
    }
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .context("running rustc --print sysroot")?;
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_string();
    if let Some(host) = field("host:") {
        let p = Path::new(&sysroot)
            .join("lib/rustlib")
            .join(host)
            .join("bin/llvm-profdata");
        if p.exists() {
            return Ok(p);
        }
    }
    if let Some(p) = crate::proc::which("llvm-profdata") {
        let v = Command::new(&p).arg("--version").output()?;
        let v = String::from_utf8_lossy(&v.stdout).into_owned();
        if v.contains(&format!("LLVM version {major}.")) {
            return Ok(p);
        }
    }
    bail!(
        "no llvm-profdata for rustc's LLVM {major}: run `cargo xtask setup` (installs llvm-{major} with \
         bpf-linker's LLVM) or `rustup component add llvm-tools`"
    )
}
