//! The committed eBPF object (ebpf/kwire-ebpf.bpf.o) and the checks that it is what the source builds:
//!
//! - `cargo xtask ebpf-object`: builds the kernel programs from source (the same build.rs path as every
//!   build with the nightly toolchain) and rewrites the object and its manifest (hashes, toolchain).
//! - `cargo xtask ebpf-repro` (CI): builds them from source and fails unless the bytes equal the
//!   committed object and the manifest's hashes hold, so nothing unreviewed ships to stable-only builds.
//! - `cargo xtask ebpf-stable` (CI): a fresh clone of HEAD built with `cargo build -p kwire` where the
//!   nightly toolchain is unavailable (PATH holds only the stable toolchain's own bin directory: no
//!   rustup, no bpf-linker), asserted to have linked the committed object, then that binary runs
//!   `kwire run --source ebpf` on a real scenario with the same checks as `cargo xtask live`.
//!
//! Easy to get wrong: the check must see which object went in, not guess it: kwire-capture's build.rs
//! writes `$OUT_DIR/kwire-ebpf.origin`, and the build's JSON messages give that OUT_DIR. The stable-only
//! build shares the target dir (the dependencies are already built, so only the clone's own crates
//! compile), which overwrites the uplifted target/debug/kwire: the binary is copied out at once and the
//! checkout's own kwire is re-linked at the end. The clone is of HEAD: uncommitted changes are not in it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;

use crate::tools::{self, Paths};

#[path = "../../agent/kwire-capture/ebpf_object.rs"]
mod obj;

/// What `cargo build` says about kwire-capture's build script and the binaries it linked.
struct Built {
    out_dir: PathBuf,
    executables: Vec<PathBuf>,
}

impl Built {
    fn origin(&self) -> Result<String> {
        let f = self.out_dir.join("kwire-ebpf.origin");
        Ok(fs::read_to_string(&f)
            .with_context(|| format!("{} (written by kwire-capture's build.rs)", f.display()))?
            .trim()
            .to_string())
    }

    fn object(&self) -> Result<Vec<u8>> {
        let f = self.out_dir.join("kwire-ebpf");
        fs::read(&f).with_context(|| f.display().to_string())
    }
}

/// Runs `cargo build --message-format=json <args>` in `dir`; stderr passes through.
fn cargo_build(cmd: &mut Command, dir: &Path, args: &[&str]) -> Result<Built> {
    let out = cmd
        .args(["build", "--message-format=json"])
        .args(args)
        .current_dir(dir)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cargo build {args:?}"))?;
    ensure!(
        out.status.success(),
        "cargo build {} failed ({}) in {}",
        args.join(" "),
        out.status,
        dir.display()
    );
    let mut out_dir = None;
    let mut executables = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let pkg = v["package_id"].as_str().unwrap_or("");
        if v["reason"] == "build-script-executed" && pkg.contains("kwire-capture") {
            out_dir = v["out_dir"].as_str().map(PathBuf::from);
        }
        if let Some(e) = v["executable"].as_str() {
            executables.push(PathBuf::from(e));
        }
    }
    Ok(Built {
        out_dir: out_dir.context("no build-script-executed message for kwire-capture")?,
        executables,
    })
}

/// The build that `cargo xtask ebpf-check` makes anyway (release ebpf_tap): from source here.
fn build_from_source(paths: &Paths) -> Result<Built> {
    let built = cargo_build(
        &mut Command::new(tools::cargo()),
        &paths.root,
        &[
            "--release",
            "--quiet",
            "-p",
            "kwire-capture",
            "--features",
            "ebpf",
            "--example",
            "ebpf_tap",
        ],
    )?;
    let origin = built.origin()?;
    ensure!(
        origin == "source",
        "kwire-capture's build.rs used the {origin} eBPF object, not one built from source: the nightly \
         toolchain, its rust-src or bpf-linker is missing (see the build's warning; `cargo xtask setup` \
         installs them)"
    );
    Ok(built)
}

fn tool_version(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("{cmd:?}"))?;
    ensure!(out.status.success(), "{cmd:?} failed ({})", out.status);
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn toolchain() -> Result<(String, String)> {
    Ok((
        tool_version(Command::new("rustup").args(["run", "nightly", "rustc", "-V"]))?,
        tool_version(Command::new("bpf-linker").arg("--version"))?,
    ))
}

/// `cargo xtask ebpf-object`: rewrites ebpf/kwire-ebpf.bpf.o and its manifest from a source build.
pub fn ebpf_object(paths: &Paths) -> Result<()> {
    let built = build_from_source(paths)?;
    let bytes = built.object()?;
    let (rustc, bpf_linker) = toolchain()?;
    let m = obj::Manifest {
        object_sha256: obj::sha256_hex(&bytes),
        sources_sha256: obj::sources_digest(&paths.root)?,
        rustc,
        bpf_linker,
    };
    fs::write(paths.root.join(obj::OBJECT), &bytes)?;
    fs::write(paths.root.join(obj::MANIFEST), m.render())?;
    println!(
        "wrote {} ({} bytes, sha256 {}) and {}: review and commit both",
        obj::OBJECT,
        bytes.len(),
        m.object_sha256,
        obj::MANIFEST
    );
    Ok(())
}

/// `cargo xtask ebpf-repro`: the committed object is byte for byte what the source builds.
pub fn ebpf_repro(paths: &Paths) -> Result<()> {
    let t = Instant::now();
    eprintln!(
        "==> ebpf-repro: the committed {} is what the source builds",
        obj::OBJECT
    );
    const REFRESH: &str = "if the change is intended, review it and refresh the committed object with \
                           `cargo xtask ebpf-object` (it rewrites the object and its manifest), then commit both";
    let m = obj::Manifest::parse(
        &fs::read_to_string(paths.root.join(obj::MANIFEST)).context(obj::MANIFEST)?,
    )
    .map_err(anyhow::Error::msg)?;
    let committed = fs::read(paths.root.join(obj::OBJECT)).context(obj::OBJECT)?;
    ensure!(
        obj::sha256_hex(&committed) == m.object_sha256,
        "{} does not match the SHA-256 in {}; {REFRESH}",
        obj::OBJECT,
        obj::MANIFEST
    );
    let sources = obj::sources_digest(&paths.root)?;
    ensure!(
        sources == m.sources_sha256,
        "the eBPF sources changed since {} was built (digest {sources}, manifest {}); {REFRESH}",
        obj::OBJECT,
        m.sources_sha256
    );
    let built = build_from_source(paths)?;
    let bytes = built.object()?;
    if bytes != committed {
        let (rustc, linker) = toolchain().unwrap_or_default();
        let first = bytes
            .iter()
            .zip(&committed)
            .position(|(a, b)| a != b)
            .unwrap_or(bytes.len().min(committed.len()));
        bail!(
            "the eBPF object built from source ({} bytes, sha256 {}) differs from the committed {} ({} bytes, sha256 {}), first at byte {first}.\n\
             committed with: {} / {}\n\
             built with:     {rustc} / {linker}\n\
             A different nightly or bpf-linker changes the bytes; so does any change to ebpf/. {REFRESH}",
            bytes.len(),
            obj::sha256_hex(&bytes),
            obj::OBJECT,
            committed.len(),
            m.object_sha256,
            m.rustc,
            m.bpf_linker
        );
    }
    eprintln!(
        "    ebpf-repro: ok in {:.0}s ({} bytes, sha256 {}, built here from source)",
        t.elapsed().as_secs_f64(),
        bytes.len(),
        m.object_sha256
    );
    Ok(())
}

fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .with_context(|| format!("git {args:?}"))?;
    ensure!(
        out.status.success(),
        "git {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The stable toolchain's own bin directory (real cargo and rustc, not rustup's proxies).
fn stable_bin() -> Result<PathBuf> {
    let rustc = match proc_which("rustup") {
        Some(rustup) => PathBuf::from(tool_version(Command::new(rustup).args([
            "which",
            "--toolchain",
            "stable",
            "rustc",
        ]))?),
        None => proc_which("rustc").context("no rustc on PATH")?,
    };
    Ok(rustc
        .parent()
        .context("rustc has no directory")?
        .to_path_buf())
}

fn proc_which(name: &str) -> Option<PathBuf> {
    crate::proc::which(name)
}

/// PATH for a machine with only stable Rust: the stable toolchain's bin, then every PATH entry that
/// holds neither rustup (nor its proxies) nor bpf-linker.
fn stable_only_path(stable: &Path) -> Result<std::ffi::OsString> {
    let mut dirs = vec![stable.to_path_buf()];
    let path = std::env::var_os("PATH").unwrap_or_default();
    for d in std::env::split_paths(&path) {
        let has = |n: &str| d.join(n).exists();
        if !has("rustup") && !has("bpf-linker") && !has("cargo") && !has("rustc") {
            dirs.push(d);
        }
    }
    Ok(std::env::join_paths(dirs)?)
}

/// `cargo xtask ebpf-stable`: a fresh clone built without the nightly toolchain runs the eBPF source.
pub fn ebpf_stable(paths: &Paths) -> Result<()> {
    let started = Instant::now();
    eprintln!("==> ebpf-stable: a fresh clone of HEAD built with only stable Rust, then `kwire run --source ebpf` on real traffic");
    let head = git(&paths.root, &["rev-parse", "HEAD"])?;
    if !git(
        &paths.root,
        &["status", "--porcelain", "--untracked-files=no"],
    )?
    .is_empty()
    {
        eprintln!("    note: uncommitted changes are not in the clone (it is HEAD {head})");
    }
    let clone = std::env::temp_dir().join(format!("kwire-stable-only-{}", std::process::id()));
    let _ = fs::remove_dir_all(&clone);
    fs::create_dir_all(&clone)?;
    git(&clone, &["init", "--quiet"])?;
    git(
        &clone,
        &[
            "fetch",
            "--quiet",
            "--depth",
            "1",
            &paths.root.display().to_string(),
            "HEAD",
        ],
    )?;
    git(&clone, &["checkout", "--quiet", "FETCH_HEAD"])?;

    let stable = stable_bin()?;
    let path = stable_only_path(&stable)?;
    // The build's view: no rustup, no bpf-linker, a cargo and rustc that are the stable toolchain.
    let probe = |name: &str| std::env::split_paths(&path).any(|d| d.join(name).exists());
    ensure!(
        !probe("rustup") && !probe("bpf-linker"),
        "the stable-only PATH still reaches rustup or bpf-linker: {path:?}"
    );
    let rustc_v = tool_version(Command::new(stable.join("rustc")).arg("-V"))?;
    ensure!(
        !rustc_v.contains("nightly"),
        "{} is not a stable toolchain: {rustc_v}",
        stable.display()
    );
    eprintln!(
        "    clone {} ({head}); toolchain {rustc_v}; no rustup, no bpf-linker on PATH",
        clone.display()
    );
    let t = Instant::now();
    // The clone shares the workspace's target directory (its dependencies are built there already), and
    // cargo names a build script's output directory by a hash of the package (its path relative to the
    // workspace, so the clone hashes like the workspace), the toolchain and the profile, incremental
    // setting included. The clone takes the opposite of the workspace build's setting: its build script
    // then runs in a directory of its own, never finds the workspace build's aya-build output there and
    // is never skipped as fresh. (With the same setting on both sides, CARGO_INCREMENTAL=0 exported for
    // the whole run made this check fail on the workspace build's aya-build directory.)
    let workspace_incremental = std::env::var("CARGO_INCREMENTAL").map_or(true, |v| v != "0");
    let mut cmd = Command::new(stable.join("cargo"));
    cmd.env("PATH", &path)
        .env("CARGO_TARGET_DIR", paths.target_dir())
        .env("RUSTUP_TOOLCHAIN", "stable")
        .env(
            "CARGO_INCREMENTAL",
            if workspace_incremental { "0" } else { "1" },
        );
    for k in [
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO",
        "KWIRE_EBPF_OBJECT",
        "RUSTUP_HOME",
    ] {
        cmd.env_remove(k);
    }
    let built = cargo_build(&mut cmd, &clone, &["--quiet", "-p", "kwire"])?;
    let bin = built
        .executables
        .iter()
        .find(|e| e.file_name().is_some_and(|n| n == "kwire"))
        .context("the build linked no kwire binary")?;
    let kwire = clone.join("kwire");
    fs::copy(bin, &kwire).with_context(|| format!("copy {}", bin.display()))?;
    let origin = built.origin()?;
    ensure!(
        origin == "committed",
        "the stable-only build used the {origin} eBPF object (expected the committed one)"
    );
    let m = obj::Manifest::parse(&fs::read_to_string(clone.join(obj::MANIFEST))?)
        .map_err(anyhow::Error::msg)?;
    ensure!(
        obj::sha256_hex(&built.object()?) == m.object_sha256,
        "the object the stable-only build embedded is not the committed one"
    );
    ensure!(
        !built.out_dir.join("aya-build").exists(),
        "the stable-only build ran aya-build ({})",
        built.out_dir.display()
    );
    eprintln!(
        "    built kwire in {:.0}s with the committed eBPF object (sha256 {})",
        t.elapsed().as_secs_f64(),
        m.object_sha256
    );
    // The checkout's own kwire back in target/debug (the clone's build replaced the uplifted file).
    let relink = Command::new(tools::cargo())
        .args(["build", "--quiet", "-p", "kwire"])
        .current_dir(&paths.root)
        .status()?;
    ensure!(relink.success(), "re-linking this checkout's kwire failed");

    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root && std::env::var_os("CI").is_none() {
        eprintln!("    ebpf-stable: live part SKIPPED (needs root); the build part passed");
    } else {
        crate::live::ebpf_with(paths, &kwire)?;
    }
    let _ = fs::remove_dir_all(&clone);
    eprintln!(
        "    ebpf-stable: ok in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
