//! Child processes with deadlines: every wait has a timeout, every started process is stopped.
//!
//! Easy to get wrong: a child whose stdout nobody reads blocks once the pipe fills; a
//! `read_line` on a hung child never returns. So stdout/stderr are drained by threads into
//! channels and every wait is a `recv_timeout` or a `try_wait` loop with a deadline. `Proc`
//! kills its child on drop, so an early `?` return cannot leave a broker or tcpdump running.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// A running child, killed (SIGKILL) and reaped on drop unless it already exited.
pub struct Proc {
    pub name: String,
    child: Child,
    pub stdin: Option<ChildStdin>,
    /// stdout lines, when stdout was piped
    pub stdout: Option<Receiver<String>>,
    /// stderr lines, when stderr was piped
    pub stderr: Option<Receiver<String>>,
}

/// How to wire a child's stdout / stderr.
pub enum Out<'a> {
    /// Lines arrive on a channel.
    Lines,
    /// Appended to a log file.
    File(&'a Path),
    Null,
    /// The parent's own stream (the user sees it).
    Inherit,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command, stdin: bool, out: Out, err: Out) -> Result<Proc> {
        cmd.stdin(if stdin { Stdio::piped() } else { Stdio::null() });
        cmd.stdout(stdio(&out)?);
        cmd.stderr(stdio(&err)?);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {name} ({cmd:?})"))?;
        let stdout = match out {
            Out::Lines => Some(lines(child.stdout.take().expect("piped"))),
            _ => None,
        };
        let stderr = match err {
            Out::Lines => Some(lines(child.stderr.take().expect("piped"))),
            _ => None,
        };
        Ok(Proc {
            name: name.to_string(),
            stdin: child.stdin.take(),
            child,
            stdout,
            stderr,
        })
    }

    /// The child's pid.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// None while running.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// Waits for the child to exit; kills it and fails after `timeout`.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait()? {
                return Ok(st);
            }
            if Instant::now() >= end {
                self.kill();
                bail!(
                    "{} did not finish within {}s (killed)",
                    self.name,
                    timeout.as_secs()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal by name (INT, TERM) through kill(1): std has no signal API.
    pub fn signal(&self, sig: &str) -> Result<()> {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .stderr(Stdio::null())
            .status()
            .context("running kill(1)")?;
        if !st.success() {
            bail!("kill -{sig} {} ({}) failed", self.child.id(), self.name);
        }
        Ok(())
    }

    pub fn kill(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn stdio(o: &Out) -> Result<Stdio> {
    Ok(match o {
        Out::Lines => Stdio::piped(),
        Out::Null => Stdio::null(),
        Out::Inherit => Stdio::inherit(),
        Out::File(p) => Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("opening log {}", p.display()))?,
        ),
    })
}

fn lines<R: Read + Send + 'static>(r: R) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            match line {
                Ok(l) => {
                    if tx.send(l).is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    });
    rx
}

/// Next line from `rx` within `timeout`; Ok(None) when the stream ended (child closed it).
pub fn recv_line(rx: &Receiver<String>, timeout: Duration, what: &str) -> Result<Option<String>> {
    match rx.recv_timeout(timeout) {
        Ok(l) => Ok(Some(l)),
        Err(RecvTimeoutError::Disconnected) => Ok(None),
        Err(RecvTimeoutError::Timeout) => Err(anyhow!(
            "timed out after {}s waiting for {what}",
            timeout.as_secs()
        )),
    }
}

/// Waits for a line satisfying `pred`; returns it, or fails on timeout / end of stream.
/// Lines that do not match are passed to `other`.
pub fn wait_for_line(
    rx: &Receiver<String>,
    timeout: Duration,
    what: &str,
    mut pred: impl FnMut(&str) -> bool,
    mut other: impl FnMut(&str),
) -> Result<String> {
    let end = Instant::now() + timeout;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("timed out after {}s waiting for {what}", timeout.as_secs());
        }
        match recv_line(rx, left, what)? {
            Some(l) if pred(&l) => return Ok(l),
            Some(l) => other(&l),
            None => bail!("stream ended while waiting for {what}"),
        }
    }
}

/// Runs a short command to completion with a timeout: its exit status, stdout and stderr.
pub fn output(
    name: &str,
    cmd: &mut Command,
    timeout: Duration,
) -> Result<(ExitStatus, String, String)> {
    let mut p = Proc::spawn(name, cmd, false, Out::Lines, Out::Lines)?;
    let st = p.wait_timeout(timeout)?;
    let drain = |rx: &Option<Receiver<String>>| -> String {
        let mut s = String::new();
        if let Some(rx) = rx {
            while let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
                s.push_str(&l);
                s.push('\n');
            }
        }
        s
    };
    Ok((st, drain(&p.stdout), drain(&p.stderr)))
}

/// Runs a short command to completion (output captured) with a timeout; fails on non-zero exit.
pub fn run_quiet(name: &str, cmd: &mut Command, timeout: Duration) -> Result<String> {
    let (st, out, err) = output(name, cmd, timeout)?;
    if !st.success() {
        bail!("{name} failed ({st}):\n{out}{err}");
    }
    Ok(out + &err)
}

/// Starts tcpdump (`cmd`: the whole command) and waits for its "listening on" line; the process and
/// its stderr lines (the counters come there at exit).
pub fn spawn_tcpdump(cmd: &mut Command) -> Result<(Proc, Receiver<String>)> {
    let mut proc = Proc::spawn("tcpdump", cmd, false, Out::Null, Out::Lines)?;
    let stderr = proc.stderr.take().expect("piped");
    let mut early = Vec::new();
    wait_for_line(
        &stderr,
        Duration::from_secs(10),
        "tcpdump's \"listening on\"",
        |l| l.contains("listening on"),
        |l| early.push(l.to_string()),
    )
    .with_context(|| {
        format!(
            "tcpdump did not start (it needs root or CAP_NET_RAW): {}",
            early.join(" | ")
        )
    })?;
    Ok((proc, stderr))
}

/// The last `n` lines of a log file, for error messages.
pub fn tail(path: &Path, n: usize) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    let from = lines.len().saturating_sub(n);
    lines[from..].join("\n")
}

/// Finds an executable on PATH.
pub fn which(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
