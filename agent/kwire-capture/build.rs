//! Provides the eBPF kernel programs (ebpf/kwire-ebpf) as `$OUT_DIR/kwire-ebpf` for `ebpf.rs` to embed,
//! when the `ebpf` feature is on; without it this does nothing. Two ways, chosen by
//! `KWIRE_EBPF_OBJECT` (`auto`, the default; `source`; `committed`):
//! - from source, with aya-build as the aya template does (nightly toolchain, rust-src, bpf-linker:
//!   `cargo xtask setup`); `auto` does this whenever that toolchain is present;
//! - the committed object `ebpf/kwire-ebpf.bpf.o`, after checking its SHA-256 and the digest of the
//!   kernel sources against `ebpf/kwire-ebpf.bpf.o.sha256`; `auto` does this, with a cargo warning
//!   saying why, when the toolchain is missing (a machine with only stable Rust). CI rebuilds the object
//!   from source and compares it byte for byte (`cargo xtask ebpf-repro`).
//!
//! `$OUT_DIR/kwire-ebpf.origin` says which (`source` or `committed`), for xtask's checks.
//!
//! Easy to get wrong: the kernel crates form their own workspace (ebpf/, excluded from the root one),
//! so the inner `cargo build --package kwire-ebpf` must run from its directory; the committed object
//! must never be used for sources it was not built from (the digest check; editing the kernel programs
//! needs the toolchain); and the committed object is little-endian (bpfel): a big-endian host needs
//! the toolchain.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "ebpf")]
    if let Err(e) = ebpf::build() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

#[cfg(feature = "ebpf")]
#[path = "ebpf_object.rs"]
mod ebpf_object;

#[cfg(feature = "ebpf")]
mod ebpf {
    use std::fs;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use super::ebpf_object::{self as obj, Manifest};

    const HOW: &str =
        "run `cargo xtask setup` (it installs the nightly toolchain's rust-src, LLVM 22 and \
                       bpf-linker)";

    fn which(name: &str) -> Option<PathBuf> {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    }

    /// What is missing from the eBPF toolchain, if anything.
    fn check_toolchain() -> Result<(), String> {
        if which("rustup").is_none() {
            return Err(
                "rustup is not on PATH (the kernel programs build with the nightly toolchain)"
                    .into(),
            );
        }
        let sysroot = Command::new("rustup")
            .args(["run", "nightly", "rustc", "--print", "sysroot"])
            .output()
            .map_err(|e| format!("cannot run rustup: {e}"))?;
        if !sysroot.status.success() {
            return Err("the nightly toolchain is not installed".into());
        }
        let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
        if !sysroot.join("lib/rustlib/src/rust/library/core").is_dir() {
            return Err(
                "the nightly toolchain has no rust-src component (needed for -Z build-std=core)"
                    .into(),
            );
        }
        if which("bpf-linker").is_none() {
            return Err("bpf-linker is not on PATH".into());
        }
        Ok(())
    }

    fn env(key: &str) -> Result<String, String> {
        std::env::var(key).map_err(|e| format!("{key}: {e}"))
    }

    pub fn build() -> Result<(), String> {
        let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR")?);
        let root = manifest_dir
            .join("../..")
            .canonicalize()
            .map_err(|e| format!("{}: {e}", manifest_dir.display()))?;
        let out = PathBuf::from(env("OUT_DIR")?);
        for s in obj::SOURCES {
            println!("cargo:rerun-if-changed={}", root.join(s).display());
        }
        println!(
            "cargo:rerun-if-changed={}",
            root.join(obj::OBJECT).display()
        );
        println!(
            "cargo:rerun-if-changed={}",
            root.join(obj::MANIFEST).display()
        );
        println!("cargo:rerun-if-env-changed=PATH");
        println!("cargo:rerun-if-env-changed=KWIRE_EBPF_OBJECT");
        let mode = std::env::var("KWIRE_EBPF_OBJECT").unwrap_or_else(|_| "auto".into());
        let origin = match mode.as_str() {
            "source" => {
                check_toolchain().map_err(|what| {
                    format!("cannot build the eBPF kernel programs (KWIRE_EBPF_OBJECT=source): {what}; {HOW}")
                })?;
                from_source(&root, &out)?;
                "source"
            }
            "committed" => {
                committed(&root, &out)?;
                "committed"
            }
            "auto" | "" => match check_toolchain() {
                Ok(()) => {
                    from_source(&root, &out)?;
                    "source"
                }
                Err(what) => {
                    committed(&root, &out).map_err(|e| {
                        format!("{e}\n(the eBPF toolchain is missing, so the committed object was the fallback: {what}; {HOW})")
                    })?;
                    println!(
                        "cargo:warning=eBPF kernel programs: using the committed, hash-checked {} (cannot build them here: {what}; to build from source, {HOW})",
                        obj::OBJECT
                    );
                    "committed"
                }
            },
            other => {
                return Err(format!(
                    "KWIRE_EBPF_OBJECT={other:?}: expected auto, source or committed"
                ))
            }
        };
        fs::write(out.join("kwire-ebpf.origin"), origin).map_err(|e| e.to_string())?;
        Ok(())
    }

    fn from_source(root: &Path, out: &Path) -> Result<(), String> {
        let kernel = root.join("ebpf/kwire-ebpf");
        // aya-build runs `cargo build --package kwire-ebpf` in the current directory.
        std::env::set_current_dir(&kernel).map_err(|e| format!("cd {}: {e}", kernel.display()))?;
        let root_dir = kernel.to_str().ok_or("non-UTF-8 path")?;
        aya_build::build_ebpf(
            [aya_build::Package {
                name: "kwire-ebpf",
                root_dir,
                ..Default::default()
            }],
            aya_build::Toolchain::default(),
        )
        .map_err(|e| {
            format!("building the eBPF kernel programs failed: {e:#}; if a tool is missing, {HOW}")
        })?;
        let built = out.join("kwire-ebpf");
        let bytes = fs::read(&built)
            .map_err(|e| format!("aya-build produced no {}: {e}", built.display()))?;
        // Not an error here (the kernel programs are being edited, or the nightly moved on): CI's
        // `cargo xtask ebpf-repro` is where a stale committed object fails.
        let committed = fs::read_to_string(root.join(obj::MANIFEST))
            .ok()
            .and_then(|t| Manifest::parse(&t).ok());
        if let Some(m) = committed {
            if m.object_sha256 != obj::sha256_hex(&bytes) {
                println!(
                    "cargo:warning=the eBPF object built from source differs from the committed {}; after review, refresh it with `cargo xtask ebpf-object`",
                    obj::OBJECT
                );
            }
        }
        Ok(())
    }

    fn committed(root: &Path, out: &Path) -> Result<(), String> {
        let endian = env("CARGO_CFG_TARGET_ENDIAN")?;
        if endian != "little" {
            return Err(format!(
                "the committed eBPF object is little-endian (bpfel) and this target is {endian}-endian: the kernel programs must be built from source; {HOW}"
            ));
        }
        let text = fs::read_to_string(root.join(obj::MANIFEST))
            .map_err(|e| format!("{}: {e}", obj::MANIFEST))?;
        let m = Manifest::parse(&text)?;
        let bytes =
            fs::read(root.join(obj::OBJECT)).map_err(|e| format!("{}: {e}", obj::OBJECT))?;
        let got = obj::sha256_hex(&bytes);
        if got != m.object_sha256 {
            return Err(format!(
                "{} has SHA-256 {got}, {} says {}: the object is not the reviewed one (restore it with git, or rebuild it with the toolchain: `cargo xtask ebpf-object`)",
                obj::OBJECT,
                obj::MANIFEST,
                m.object_sha256
            ));
        }
        let sources =
            obj::sources_digest(root).map_err(|e| format!("hashing the eBPF sources: {e}"))?;
        if sources != m.sources_sha256 {
            return Err(format!(
                "the eBPF kernel sources (ebpf/) changed since {} was built (digest {sources}, {} says {}): changed kernel programs must be built from source; {HOW}, then `cargo xtask ebpf-object`",
                obj::OBJECT,
                obj::MANIFEST,
                m.sources_sha256
            ));
        }
        fs::write(out.join("kwire-ebpf"), &bytes).map_err(|e| e.to_string())?;
        Ok(())
    }
}
