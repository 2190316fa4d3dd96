//! deploy/Dockerfile read as instructions, its own checks, the binary its builder step makes, and what
//! that binary's `kwire run --help` accepts.
//!
//! Easy to get wrong: continuation lines are joined and comments inside a continued instruction
//! dropped; the setcap string is the runtime (last) stage's, the build line (`cargo xtask pgo --locked`) the builder's.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use super::{Checks, RUNTIME_UID};
use crate::proc;
use crate::tools::{self, Paths};
/// deploy/Dockerfile, read as instructions (continuation lines joined).
pub(super) struct Dockerfile {
    /// (stage name, instructions as (KEYWORD, rest))
    pub(super) stages: Vec<(String, Vec<(String, String)>)>,
    /// The builder's build command line (`cargo xtask pgo --locked`: the PGO binary the bench measures).
    pub(super) cargo_build: Vec<String>,
    /// The runtime stage's setcap capability string, e.g. `cap_net_raw,cap_bpf+ep`.
    pub(super) setcap: String,
    /// Capability names as Kubernetes spells them (NET_RAW, BPF, ...), sorted.
    pub(super) caps: BTreeSet<String>,
}

impl Dockerfile {
    pub(super) fn read(file: &Path) -> Result<Dockerfile> {
        let text =
            fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let mut instructions = Vec::new();
        let mut cur = String::new();
        for line in text.lines() {
            let t = line.trim();
            if cur.is_empty() && (t.is_empty() || t.starts_with('#')) {
                continue;
            }
            if t.starts_with('#') {
                continue; // comment inside a continued instruction
            }
            if let Some(body) = t.strip_suffix('\\') {
                cur.push_str(body);
                cur.push(' ');
            } else {
                cur.push_str(t);
                instructions.push(std::mem::take(&mut cur));
            }
        }
        let mut stages: Vec<(String, Vec<(String, String)>)> = Vec::new();
        for ins in instructions {
            let (kw, rest) = ins.split_once(char::is_whitespace).unwrap_or((&ins, ""));
            let kw = kw.to_ascii_uppercase();
            let rest = rest.trim().to_string();
            if kw == "FROM" {
                let words: Vec<&str> = rest.split_whitespace().collect();
                let name = match words.iter().position(|w| w.eq_ignore_ascii_case("AS")) {
                    Some(i) => words.get(i + 1).copied().unwrap_or("").to_string(),
                    None => format!("stage{}", stages.len()),
                };
                stages.push((name, vec![(kw, rest)]));
            } else if let Some(last) = stages.last_mut() {
                last.1.push((kw, rest));
            }
        }
        let run_words = |stage: &(String, Vec<(String, String)>)| -> Vec<Vec<String>> {
            stage
                .1
                .iter()
                .filter(|(k, _)| k == "RUN")
                .map(|(_, r)| r.split_whitespace().map(str::to_string).collect())
                .collect()
        };
        let mut cargo_build = Vec::new();
        let mut setcap = String::new();
        for (i, stage) in stages.iter().enumerate() {
            for words in run_words(stage) {
                if let Some(p) = words
                    .windows(2)
                    .position(|w| w[0] == "cargo" && (w[1] == "build" || w[1] == "xtask"))
                {
                    cargo_build = words[p..]
                        .iter()
                        .take_while(|w| *w != "&&" && *w != ";")
                        .cloned()
                        .collect();
                }
                if i + 1 == stages.len() {
                    if let Some(p) = words.iter().position(|w| w == "setcap") {
                        setcap = words.get(p + 1).cloned().unwrap_or_default();
                    }
                }
            }
        }
        let caps = parse_caps(&setcap);
        Ok(Dockerfile {
            stages,
            cargo_build,
            setcap,
            caps,
        })
    }

    pub(super) fn check(&self, paths: &Paths, c: &mut Checks) -> Result<()> {
        let names: Vec<&str> = self.stages.iter().map(|s| s.0.as_str()).collect();
        c.check(
            self.stages.len() >= 2,
            &format!("Dockerfile: multi-stage ({})", names.join(" -> ")),
            "fewer than 2 stages".into(),
        );
        let Some(last) = self.stages.last() else {
            bail!("deploy/Dockerfile has no FROM");
        };
        let user = last
            .1
            .iter()
            .rev()
            .find(|(k, _)| k == "USER")
            .map(|(_, r)| r.clone())
            .unwrap_or_default();
        let uid = user.split(':').next().unwrap_or("").parse::<u32>().ok();
        c.check(uid.is_some_and(|u| u != 0) && uid == Some(RUNTIME_UID), &format!("Dockerfile: runtime stage runs as USER {user}"), format!("the last USER must be numeric {RUNTIME_UID} (runAsNonRoot can only verify a numeric uid), found {user:?}"));
        c.check(
            last.1.iter().any(|(k, r)| {
                k == "COPY" && r.contains("--from=") && r.contains("/usr/local/bin/kwire")
            }),
            "Dockerfile: runtime stage copies the built kwire to /usr/local/bin/kwire",
            "no COPY --from=<builder> ... /usr/local/bin/kwire".into(),
        );
        let entry = last
            .1
            .iter()
            .rev()
            .find(|(k, _)| k == "ENTRYPOINT")
            .map(|(_, r)| r.clone())
            .unwrap_or_default();
        c.check(
            entry.contains("/usr/local/bin/kwire"),
            "Dockerfile: ENTRYPOINT is /usr/local/bin/kwire",
            format!("ENTRYPOINT {entry:?}"),
        );
        c.check(
            self.setcap.ends_with("+ep") && !self.caps.is_empty(),
            &format!("Dockerfile: setcap {} /usr/local/bin/kwire", self.setcap),
            format!(
                "no `setcap <caps>+ep /usr/local/bin/kwire` in the runtime stage (found {:?})",
                self.setcap
            ),
        );
        c.check(
            !self.caps.contains("SYS_ADMIN"),
            "Dockerfile: no CAP_SYS_ADMIN",
            "CAP_SYS_ADMIN is not needed on kernels >= 5.8 (CAP_BPF + CAP_PERFMON)".into(),
        );
        let want = PGO_BUILD;
        c.check(
            self.cargo_build == want,
            &format!("Dockerfile: builder runs `{}`", self.cargo_build.join(" ")),
            format!("expected `{}`", want.join(" ")),
        );
        // the eBPF toolchain as setup.rs installs it
        let setup = fs::read_to_string(paths.root.join("xtask/src/setup.rs"))?;
        let konst = |name: &str| -> Option<String> {
            let i = setup.find(&format!("const {name}: &str = \""))?;
            let rest = &setup[i..];
            let start = rest.find('"')? + 1;
            let end = rest[start..].find('"')? + start;
            Some(rest[start..end].to_string())
        };
        let all = self
            .stages
            .iter()
            .flat_map(|s| s.1.iter())
            .map(|(k, r)| format!("{k} {r}"))
            .collect::<Vec<_>>()
            .join("\n");
        for (what, needle) in [
            (
                "bpf-linker version",
                konst("BPF_LINKER_VERSION").map(|v| format!("BPF_LINKER_VERSION={v}")),
            ),
            (
                "LLVM prefix",
                konst("LLVM_PREFIX").map(|v| format!("LLVM_PREFIX={v}")),
            ),
            ("LLVM package", konst("LLVM_DEV")),
        ] {
            let ok = needle.as_ref().is_some_and(|n| all.contains(n.as_str()));
            c.check(
                ok,
                &format!(
                    "Dockerfile: {what} as in xtask/src/setup.rs ({})",
                    needle.clone().unwrap_or_default()
                ),
                "differs from setup.rs (or setup.rs no longer names it)".into(),
            );
        }
        for needle in [
            "--component rust-src",
            "--features llvm-22",
            "libpcap-dev",
            "libpcap0.8",
        ] {
            c.check(
                all.contains(needle),
                &format!("Dockerfile: installs {needle}"),
                "missing".into(),
            );
        }
        Ok(())
    }
}

/// `cap_net_raw,cap_bpf+ep` -> {NET_RAW, BPF}.
pub(super) fn parse_caps(s: &str) -> BTreeSet<String> {
    let list = s.split(['+', '=']).next().unwrap_or("");
    list.split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| c.trim_start_matches("cap_").to_ascii_uppercase())
        .collect()
}

/// The builder's build line: kwire with PGO (xtask/src/pgo.rs), the lock file as committed.
const PGO_BUILD: [&str; 4] = ["cargo", "xtask", "pgo", "--locked"];

/// The kwire binary to check: the Dockerfile's own build (`--build`), else target/debug/kwire.
pub(super) fn binary(paths: &Paths, dockerfile: &Dockerfile, build: bool) -> Result<PathBuf> {
    if build {
        let t = Instant::now();
        let (prog, args) = dockerfile
            .cargo_build
            .split_first()
            .ok_or_else(|| anyhow!("no `cargo xtask pgo` line in deploy/Dockerfile"))?;
        let prog = if prog == "cargo" {
            tools::cargo()
        } else {
            prog.clone()
        };
        eprintln!(
            "    running the Dockerfile's builder step on the host: {}",
            dockerfile.cargo_build.join(" ")
        );
        let st = Command::new(prog)
            .args(args)
            .current_dir(&paths.root)
            .status()
            .context("cargo build")?;
        if !st.success() {
            bail!(
                "the Dockerfile's `{}` failed on the host ({st})",
                dockerfile.cargo_build.join(" ")
            );
        }
        eprintln!("    built in {:.0}s", t.elapsed().as_secs_f64());
        return Ok(paths.target_dir().join("pgo/release/kwire"));
    }
    // The Dockerfile's builder step in the debug profile, `--locked` kept: the PGO build takes about seven
    // minutes (`--build` runs it as written). Also brings target/debug/kwire up to date.
    let bin = paths.target_dir().join("debug/kwire");
    let args = ["build", "--locked", "-p", "kwire"];
    let st = Command::new(tools::cargo())
        .args(args)
        .arg("--quiet")
        .current_dir(&paths.root)
        .status()
        .context("cargo build")?;
    if !st.success() {
        bail!(
            "the Dockerfile's builder step (`cargo {}`, debug profile) failed on the host ({st})",
            args.join(" ")
        );
    }
    let age = fs::metadata(&bin)?
        .modified()?
        .elapsed()
        .unwrap_or_default()
        .as_secs();
    eprintln!(
        "    binary: {} (the Dockerfile's build step in the debug profile, built {} min ago; --build: the PGO build)",
        bin.display(),
        age / 60
    );
    Ok(bin)
}

/// The long flags and `[env: NAME=]` variables of `kwire run --help`.
pub(super) struct RunHelp {
    pub(super) flags: BTreeSet<String>,
    pub(super) envs: BTreeSet<String>,
}

impl RunHelp {
    pub(super) fn read(bin: &Path) -> Result<RunHelp> {
        let text = proc::run_quiet(
            "kwire run --help",
            Command::new(bin).args(["run", "--help"]),
            Duration::from_secs(30),
        )?;
        let mut flags = BTreeSet::new();
        let mut envs = BTreeSet::new();
        for line in text.lines() {
            let t = line.trim_start();
            if t.starts_with("--") || t.starts_with("-") {
                for w in t.split([' ', ',']) {
                    if let Some(f) = w.strip_prefix("--") {
                        flags.insert(format!("--{}", f.split(['=', '<']).next().unwrap_or(f)));
                    }
                }
            }
            if let Some(i) = t.find("[env: ") {
                let rest = &t[i + 6..];
                envs.insert(rest.split(['=', ']']).next().unwrap_or("").to_string());
            }
        }
        Ok(RunHelp { flags, envs })
    }
}
