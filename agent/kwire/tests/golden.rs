//! Golden outputs: every committed fixture and every capture of ../shared/pcaps/public replayed through the
//! real `kwire` binary, four ways (`replay --json`, the readable summary, `timeline`, `timeline --json
//! --all`), compared byte for byte with tests/golden/<set>/<capture>.<kind>.
//!
//! These snapshots are what lets the engine be rebuilt inside (typed findings, new encoders, moved
//! modules) with proof that no output changed. When an output changes on purpose, refresh them with
//! `UPDATE_EXPECT=1 cargo test -p kwire --test golden` and review the diff like code.
//!
//! Easy to get wrong: the readable summary ends with the wall time the decode took ("decoded in ...");
//! that one line is masked, nothing else is. Paths are given relative to the repository / shared corpus
//! so the snapshot does not depend on where the checkout lives.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{repo, shared};

/// The four views of one capture.
const VIEWS: [(&str, &[&str]); 4] = [
    ("jsonl", &["replay", "--json"]),
    ("txt", &["replay"]),
    ("timeline.txt", &["timeline"]),
    ("timeline.jsonl", &["timeline", "--json", "--all"]),
];

fn captures_in(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(
                p.extension().and_then(|x| x.to_str()),
                Some("pcap" | "pcapng")
            ) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Runs one view of one capture from `cwd` (so the capture's path in the output is relative).
fn view(cwd: &Path, rel: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kwire"))
        .args(args)
        .arg(rel)
        .args(["--progress", "never"])
        .current_dir(cwd)
        .output()
        .expect("run kwire");
    let mut s = String::from_utf8(out.stdout).expect("utf-8 output");
    if !out.status.success() {
        let _ = writeln!(
            s,
            "[exit status {:?}] {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    mask(&s)
}

fn mask(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for line in s.lines() {
        if line.trim_start().starts_with("decoded in ") {
            out.push_str("  decoded in [masked]");
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

fn check_set(set: &str, root: &Path, captures: &[PathBuf]) {
    assert!(
        !captures.is_empty(),
        "{set}: no captures under {}",
        root.display()
    );
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let golden = repo().join("tests/golden").join(set);
    std::fs::create_dir_all(&golden).unwrap();
    let mut failures = Vec::new();
    let mut expected_files = Vec::new();
    for cap in captures {
        let rel = cap.strip_prefix(root).unwrap();
        let stem = rel.to_string_lossy().replace('/', "__");
        for (kind, args) in VIEWS {
            let name = format!("{stem}.{kind}");
            expected_files.push(name.clone());
            let path = golden.join(&name);
            let got = view(root, rel, args);
            if update {
                if std::fs::read_to_string(&path).ok().as_deref() != Some(got.as_str()) {
                    std::fs::write(&path, &got).unwrap();
                    eprintln!("updated {}", path.display());
                }
                continue;
            }
            match std::fs::read_to_string(&path) {
                Ok(want) if want == got => {}
                Ok(want) => {
                    let first = want
                        .lines()
                        .zip(got.lines())
                        .position(|(a, b)| a != b)
                        .unwrap_or(want.lines().count().min(got.lines().count()));
                    failures.push(format!(
                        "{name}: differs from line {}\n  want: {}\n  got:  {}",
                        first + 1,
                        want.lines().nth(first).unwrap_or("<end>"),
                        got.lines().nth(first).unwrap_or("<end>")
                    ));
                }
                Err(_) => failures.push(format!("{name}: no golden file {}", path.display())),
            }
        }
    }
    // A golden file whose capture is gone is stale: say so rather than keep it silently.
    for e in std::fs::read_dir(&golden).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().to_string();
        if !expected_files.contains(&n) {
            if update {
                std::fs::remove_file(golden.join(&n)).unwrap();
            } else {
                failures.push(format!("{n}: golden file without a capture (remove it)"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{set}: {} output(s) differ from tests/golden/{set} (if the change is intended: \
         UPDATE_EXPECT=1 cargo test -p kwire --test golden, then review the diff)\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn fixtures_outputs_are_unchanged() {
    let root = repo().join("tests/fixtures");
    check_set("fixtures", &root, &captures_in(&root));
}

#[test]
fn public_captures_outputs_are_unchanged() {
    let root = shared().join("pcaps/public");
    check_set("public", &root, &captures_in(&root));
}
