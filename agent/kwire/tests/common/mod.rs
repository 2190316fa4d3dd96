//! Helpers shared by the CLI tests: run the real `kwire` binary and parse its JSON lines.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Repository root (two levels above this crate).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// The shared folder beside the repo (`../shared`), or `$KWIRE_SHARED`.
pub fn shared() -> PathBuf {
    if let Ok(s) = std::env::var("KWIRE_SHARED") {
        return PathBuf::from(s);
    }
    let beside = repo().join("../shared");
    if beside.exists() {
        return beside;
    }
    PathBuf::from("/work/shared")
}

/// A file of the shared public corpus, read in place (never copied into the repo).
pub fn public(rel: &str) -> PathBuf {
    let p = shared().join("pcaps/public").join(rel);
    assert!(p.exists(), "missing shared capture {} (the ../shared corpus must sit beside the repo, or set KWIRE_SHARED)", p.display());
    p
}

pub struct Run {
    pub status: i32,
    pub stderr: String,
    pub lines: Vec<Value>,
}

impl Run {
    pub fn of_type(&self, t: &str) -> Vec<&Value> {
        self.lines.iter().filter(|l| l["type"] == t).collect()
    }
    pub fn exchanges(&self) -> Vec<&Value> {
        self.of_type("exchange")
    }
    pub fn summary(&self) -> &Value {
        self.lines
            .last()
            .filter(|l| l["type"] == "summary")
            .expect("last line is the summary")
    }
    /// (api name, version) -> (requests, responses) from the summary.
    pub fn api_counts(&self) -> Vec<(String, i64, i64, i64)> {
        self.summary()["apis"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["api"].as_str().unwrap().to_string(),
                    a["api_version"].as_i64().unwrap(),
                    a["requests"].as_i64().unwrap(),
                    a["responses"].as_i64().unwrap(),
                )
            })
            .collect()
    }
    pub fn client_ids(&self) -> Vec<String> {
        self.summary()["clients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["client_id"].as_str().unwrap().to_string())
            .collect()
    }
    pub fn kafka(&self, field: &str) -> i64 {
        self.summary()["kafka"][field]
            .as_i64()
            .unwrap_or_else(|| panic!("no kafka.{field}"))
    }
}

/// Runs `kwire replay FILE --json [extra...]`.
pub fn replay(file: &Path, extra: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_kwire"))
        .arg("replay")
        .arg(file)
        .arg("--json")
        .args(extra)
        .output()
        .expect("run kwire");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 output");
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    Run {
        status: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        lines,
    }
}

/// Raw stdout bytes of a replay (for byte-for-byte determinism checks).
pub fn replay_bytes(file: &Path, extra: &[&str]) -> (i32, Vec<u8>) {
    let out = Command::new(env!("CARGO_BIN_EXE_kwire"))
        .arg("replay")
        .arg(file)
        .args(extra)
        .output()
        .expect("run kwire");
    (out.status.code().unwrap_or(-1), out.stdout)
}

/// Removes a line's packet numbers (`request_frame`, `response_frame`, also inside an alert's
/// `evidence`): they name packets of the file replayed, so splitting, dropping, swapping or
/// re-segmenting packets renumbers them while every conclusion stays the same.
pub fn strip_frames(v: &mut Value) {
    if let Some(m) = v.as_object_mut() {
        m.remove("request_frame");
        m.remove("response_frame");
        if let Some(Value::Array(ev)) = m.get_mut("evidence") {
            for e in ev.iter_mut().filter_map(Value::as_object_mut) {
                e.remove("request_frame");
                e.remove("response_frame");
            }
        }
    }
}
