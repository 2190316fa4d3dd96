//! Rebuilds the kernel programs when bpf-linker changes (it links them), as the aya template does.

fn main() {
    let Some(path) = std::env::var_os("PATH") else {
        return;
    };
    if let Some(linker) = std::env::split_paths(&path)
        .map(|d| d.join("bpf-linker"))
        .find(|p| p.is_file())
    {
        println!("cargo:rerun-if-changed={}", linker.display());
    }
}
