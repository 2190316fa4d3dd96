//! Builds the eBPF kernel programs (ebpf/kwire-ebpf) for the BPF target with aya-build when the `ebpf`
//! feature is on, as the aya template does; the object lands in `$OUT_DIR/kwire-ebpf` and `ebpf.rs`
//! embeds it. Without the feature this does nothing.
//!
//! Easy to get wrong: the kernel crate is its own workspace (excluded from the root one), so the inner
//! `cargo build --package kwire-ebpf` must run from its directory; and a missing toolchain must say what
//! to do (`cargo xtask setup`) instead of failing deep inside rustc or the linker.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "ebpf")]
    if let Err(e) = ebpf::build() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

#[cfg(feature = "ebpf")]
mod ebpf {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    const HOW: &str = "run `cargo xtask setup` (it installs the nightly toolchain's rust-src, LLVM 22 and \
                       bpf-linker), or build without the eBPF source: `cargo build -p kwire --no-default-features`";

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

    pub fn build() -> Result<(), String> {
        let manifest =
            PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
        let root = manifest.join("../..");
        let kernel = root.join("ebpf/kwire-ebpf");
        let common = root.join("ebpf/kwire-ebpf-common");
        println!("cargo:rerun-if-changed={}", common.display());
        println!("cargo:rerun-if-env-changed=PATH");
        check_toolchain()
            .map_err(|what| format!("cannot build the eBPF kernel programs: {what}; {HOW}"))?;
        let kernel = kernel
            .canonicalize()
            .map_err(|e| format!("{}: {e}", kernel.display()))?;
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
        let out = PathBuf::from(std::env::var("OUT_DIR").map_err(|e| e.to_string())?);
        if !Path::new(&out.join("kwire-ebpf")).is_file() {
            return Err(format!(
                "aya-build produced no {}/kwire-ebpf",
                out.display()
            ));
        }
        Ok(())
    }
}
