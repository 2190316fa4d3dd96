//! The committed eBPF object (`ebpf/kwire-ebpf.bpf.o`) and its manifest (`ebpf/kwire-ebpf.bpf.o.sha256`):
//! file names, the manifest's format and the digest of the kernel programs' sources. Shared, by
//! `#[path]`, by kwire-capture's build.rs (which links the committed object where the nightly toolchain
//! is missing) and by xtask (`ebpf-object` writes both files, `ebpf-repro` checks them).
//!
//! Easy to get wrong: the sources digest must cover everything the object is built from (both crates'
//! sources and manifests, the kernel workspace's manifest, lock file and cargo config) and nothing a
//! checkout adds (`target/`, editor files), and must not depend on where the checkout is: it hashes
//! paths relative to the repository root, in sorted order, with each file's length.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The committed object, relative to the repository root.
pub const OBJECT: &str = "ebpf/kwire-ebpf.bpf.o";
/// Its manifest: hashes and the toolchain that built it.
pub const MANIFEST: &str = "ebpf/kwire-ebpf.bpf.o.sha256";
/// What the object is built from: files under these (relative to the repository root) ending in
/// `.rs`, `.toml` or `.lock`, `target/` excluded.
pub const SOURCES: &[&str] = &[
    "ebpf/Cargo.toml",
    "ebpf/Cargo.lock",
    "ebpf/.cargo",
    "ebpf/kwire-ebpf",
    "ebpf/kwire-ebpf-common",
];

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The files [`SOURCES`] names, relative to `root`, sorted.
pub fn source_files(root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = SOURCES.iter().map(PathBuf::from).collect();
    while let Some(rel) = stack.pop() {
        let abs = root.join(&rel);
        let meta = fs::metadata(&abs)?;
        if meta.is_dir() {
            for e in fs::read_dir(&abs)? {
                let name = e?.file_name();
                if name != "target" {
                    stack.push(rel.join(name));
                }
            }
        } else if rel
            .extension()
            .is_some_and(|x| x == "rs" || x == "toml" || x == "lock")
        {
            out.push(rel);
        }
    }
    out.sort();
    Ok(out)
}

/// SHA-256 over (relative path, length, contents) of every source file, in sorted order.
pub fn sources_digest(root: &Path) -> io::Result<String> {
    let mut h = Sha256::new();
    for rel in source_files(root)? {
        let bytes = fs::read(root.join(&rel))?;
        let name = rel.to_string_lossy().replace('\\', "/");
        h.update(name.as_bytes());
        h.update([0]);
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// `ebpf/kwire-ebpf.bpf.o.sha256`: `key value` lines, `#` comments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub object_sha256: String,
    pub sources_sha256: String,
    /// `rustc -V` of the nightly toolchain that built it.
    pub rustc: String,
    /// `bpf-linker --version`.
    pub bpf_linker: String,
}

impl Manifest {
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let get = |key: &str| -> Result<String, String> {
            text.lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .find_map(|l| {
                    l.strip_prefix(key)?
                        .strip_prefix(' ')
                        .map(|v| v.trim().to_string())
                })
                .ok_or_else(|| format!("{MANIFEST} has no `{key}` line"))
        };
        Ok(Manifest {
            object_sha256: get("object-sha256")?,
            sources_sha256: get("sources-sha256")?,
            rustc: get("rustc")?,
            bpf_linker: get("bpf-linker")?,
        })
    }

    /// Only xtask writes manifests; build.rs only reads them.
    #[allow(dead_code)]
    pub fn render(&self) -> String {
        format!(
            "# The committed eBPF object ebpf/kwire-ebpf.bpf.o: what kwire links where the nightly toolchain\n\
             # is missing (kwire-capture's build.rs checks both hashes first). Written by `cargo xtask\n\
             # ebpf-object`; CI (`cargo xtask ebpf-repro`) rebuilds it from source and compares byte for byte.\n\
             object-sha256 {}\nsources-sha256 {}\nrustc {}\nbpf-linker {}\n",
            self.object_sha256, self.sources_sha256, self.rustc, self.bpf_linker
        )
    }
}
