//! Named check results: each check of `live`, `e2e` and `fleet-check` is a name and a `Result`,
//! printed `ok`/`FAIL` as it comes, counted, and the run fails at the end naming every failure.
//!
//! Easy to get wrong: a failed check must not stop the others (all are reported), so checks return
//! their `Result` into a [`Report`] instead of `?`; only a step that makes the rest meaningless (a
//! broker that did not start) returns early.

use std::time::Instant;

use anyhow::{bail, Result};

/// A scenario's checks, in order.
pub type Report = Vec<(String, Result<()>)>;

pub fn check(report: &mut Report, what: impl Into<String>, f: impl FnOnce() -> Result<()>) {
    report.push((what.into(), f()));
}

/// What a whole command's checks came to.
pub struct Tally {
    what: &'static str,
    started: Instant,
    pub passed: usize,
    failures: Vec<String>,
}

impl Tally {
    pub fn new(what: &'static str) -> Tally {
        Tally {
            what,
            started: Instant::now(),
            passed: 0,
            failures: Vec::new(),
        }
    }

    /// Prints and counts one scenario's checks.
    pub fn add(&mut self, name: &str, report: Report) {
        for (check, res) in report {
            match res {
                Ok(()) => {
                    self.passed += 1;
                    println!("ok    {name}: {check}");
                }
                Err(e) => {
                    println!("FAIL  {name}: {check}: {e:#}");
                    self.failures.push(format!("{name}: {check}"));
                }
            }
        }
    }

    /// Prints the count (and `note`, e.g. where the files are); fails naming every failed check.
    pub fn finish(self, note: &str) -> Result<()> {
        println!(
            "{}: {} passed, {} failed ({:.0}s{note})",
            self.what,
            self.passed,
            self.failures.len(),
            self.started.elapsed().as_secs_f64()
        );
        if !self.failures.is_empty() {
            bail!("{} failed: {}", self.what, self.failures.join("; "));
        }
        Ok(())
    }
}
