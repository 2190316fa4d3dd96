//! The `kwire run` harness every xtask check shares: build kwire, start `kwire run` (directly or
//! through a wrapper that execs it), wait for `/readyz`, ask its health endpoints, measure its CPU and
//! memory from /proc, stop it with a signal and read what it printed.
//!
//! Used by `live` (scenarios, agent hygiene, the demo), `bench` (live section), `bench-hostile` (the
//! live flood), `fleet-check` (one agent per network namespace) and `deploy-check` (the binary
//! started as the pod).
//!
//! Easy to get wrong:
//! - The command may be a wrapper (`ip netns exec`, `nsenter`, `taskset`, the runc-like launcher of
//!   deploy-check): every one of them execs, so the child's pid is kwire's own and /proc/<pid> is kwire.
//! - The agent's health port lives in the network namespace it runs in: it is asked from a thread that
//!   entered that namespace (setns), never from the host.
//! - CPU time is read while the exited agent is a zombie (before it is reaped): after the reap
//!   /proc/<pid> is gone and the last ticks with it.
//! - kwire must be run directly, not through `cargo run` (which would receive the signals instead).

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::broker;
use crate::proc::{self, Out, Proc};
use crate::tools::{self, Paths};

/// How long an agent may take to become ready, and to exit after its signal.
const READY_WITHIN: Duration = Duration::from_secs(20);
const EXIT_WITHIN: Duration = Duration::from_secs(20);

/// `cargo build -p kwire` (debug); the binary's path.
pub fn build_kwire(paths: &Paths) -> Result<PathBuf> {
    let st = Command::new(tools::cargo())
        .current_dir(&paths.root)
        .args(["build", "--quiet", "-p", "kwire"])
        .status()
        .context("cargo build -p kwire")?;
    if !st.success() {
        bail!("`cargo build -p kwire` failed");
    }
    Ok(paths.target_dir().join("debug/kwire"))
}

/// Where an agent's stdout and stderr go.
pub enum Outputs<'a> {
    /// `<dir>/<stem>.live.jsonl` and `<dir>/<stem>.live.stderr.txt` (replaced), read back at the end.
    Files { dir: &'a Path, stem: &'a str },
    /// The terminal (the demo: the user watches alerts as they fire); nothing is read back.
    Terminal,
}

/// One `kwire run` to start.
pub struct Spec<'a> {
    /// kwire itself, or a wrapper that execs it (with the wrapper's arguments and environment).
    pub cmd: Command,
    /// The arguments after `run`; `--health 127.0.0.1:<free port>` is added.
    pub args: Vec<String>,
    /// The network namespace it runs in (its health port is asked there).
    pub netns: Option<&'a str>,
    pub outputs: Outputs<'a>,
}

impl<'a> Spec<'a> {
    /// `kwire run ARGS` on the host, outputs in files.
    pub fn new(kwire: &Path, args: &[String], dir: &'a Path, stem: &'a str) -> Spec<'a> {
        Spec {
            cmd: Command::new(kwire),
            args: args.to_vec(),
            netns: None,
            outputs: Outputs::Files { dir, stem },
        }
    }
}

/// A running `kwire run`, killed and reaped on drop unless it exited.
pub struct Agent {
    proc: Proc,
    netns: Option<String>,
    files: Option<(PathBuf, PathBuf)>,
    pub health: u16,
}

/// What a finished `kwire run` did.
pub struct Stopped {
    pub status: ExitStatus,
    /// From the signal (or the start of the wait) to the exit.
    pub took: Duration,
    /// utime + stime, clock ticks, read last while it was a zombie.
    pub cpu_ticks: u64,
    /// stdout, one JSON value a line (empty for [`Outputs::Terminal`]).
    pub lines: Vec<Value>,
    pub stderr: String,
}

impl Stopped {
    pub fn summary(&self) -> Result<&Value> {
        summary(&self.lines)
    }

    pub fn of_type(&self, t: &str) -> Vec<&Value> {
        of_type(&self.lines, t)
    }
}

impl Agent {
    pub fn start(spec: Spec) -> Result<Agent> {
        let Spec {
            mut cmd,
            args,
            netns,
            outputs,
        } = spec;
        let health = broker::free_port()?;
        cmd.arg("run")
            .args(&args)
            .arg("--health")
            .arg(format!("127.0.0.1:{health}"));
        let (proc, files) = match outputs {
            Outputs::Files { dir, stem } => {
                let stdout = dir.join(format!("{stem}.live.jsonl"));
                let stderr = dir.join(format!("{stem}.live.stderr.txt"));
                let _ = fs::remove_file(&stdout);
                let _ = fs::remove_file(&stderr);
                let p = Proc::spawn(
                    "kwire run",
                    &mut cmd,
                    false,
                    Out::File(&stdout),
                    Out::File(&stderr),
                )?;
                (p, Some((stdout, stderr)))
            }
            Outputs::Terminal => (
                Proc::spawn("kwire run", &mut cmd, false, Out::Inherit, Out::Inherit)?,
                None,
            ),
        };
        Ok(Agent {
            proc,
            netns: netns.map(str::to_string),
            files,
            health,
        })
    }

    /// `GET path` on the agent's health port: (status, body), None when nothing answers.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.netns.as_deref(), self.health, path)
    }

    /// Waits until /readyz says 200 (or the agent exits, or 20 s pass); how long it took.
    pub fn wait_ready(&mut self) -> Result<Duration> {
        let t = Instant::now();
        loop {
            if let Some((200, _)) = self.get("/readyz") {
                return Ok(t.elapsed());
            }
            if let Some(st) = self.proc.try_wait()? {
                bail!(
                    "kwire run exited ({st}) before it was ready:\n{}",
                    self.stderr_tail()
                );
            }
            if t.elapsed() > READY_WITHIN {
                bail!("/readyz not 200 within 20s:\n{}", self.stderr_tail());
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn stderr_tail(&self) -> String {
        match &self.files {
            Some((_, err)) => proc::tail(err, 20),
            None => "(see its messages above)".into(),
        }
    }

    /// utime + stime (clock ticks) so far.
    pub fn cpu_ticks(&self) -> Option<u64> {
        stat(self.proc.id()).map(|(_, t)| t)
    }

    /// Peak resident set (VmHWM) so far, MB.
    pub fn hwm_mb(&self) -> f64 {
        self.status_field("VmHWM:")
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    }

    /// Resident set (VmRSS) now, MB (0 once it exited).
    pub fn rss_mb(&self) -> f64 {
        self.status_field("VmRSS:")
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }

    /// Effective capabilities (CapEff of /proc/<pid>/status).
    pub fn cap_eff(&self) -> Option<u64> {
        u64::from_str_radix(self.status_field("CapEff:")?.trim(), 16).ok()
    }

    fn status_field(&self, name: &str) -> Option<String> {
        let s = fs::read_to_string(format!("/proc/{}/status", self.proc.id())).ok()?;
        let l = s.lines().find(|l| l.starts_with(name))?;
        Some(l[name.len()..].trim().to_string())
    }

    /// Sends `sig` (TERM, INT), waits for the exit (20 s, then killed: an error), reads the outputs.
    pub fn stop(self, sig: &str) -> Result<Stopped> {
        let ticks = self.cpu_ticks().unwrap_or(0);
        self.proc.signal(sig)?;
        self.finish(ticks, &format!("SIG{sig}"))
    }

    /// Waits for an exit of its own (`--duration`) within 20 s.
    pub fn wait_exit(self) -> Result<Stopped> {
        self.finish(0, "its --duration")
    }

    fn finish(mut self, mut ticks: u64, after: &str) -> Result<Stopped> {
        let t = Instant::now();
        let pid = self.proc.id();
        while let Some((state, now)) = stat(pid) {
            ticks = ticks.max(now);
            if state == 'Z' || state == 'X' {
                break;
            }
            if t.elapsed() > EXIT_WITHIN {
                self.proc.kill();
                bail!("kwire run did not exit within 20s of {after} (killed)");
            }
            thread::sleep(Duration::from_millis(10));
        }
        let took = t.elapsed();
        let status = self.proc.wait_timeout(Duration::from_secs(5))?;
        let (lines, stderr) = match &self.files {
            Some((out, err)) => {
                let text = fs::read_to_string(out).unwrap_or_default();
                let lines = parse_lines(&text).with_context(|| format!("{}", out.display()))?;
                (lines, fs::read_to_string(err).unwrap_or_default())
            }
            None => (Vec::new(), String::new()),
        };
        Ok(Stopped {
            status,
            took,
            cpu_ticks: ticks,
            lines,
            stderr,
        })
    }
}

/// (state, utime + stime) of a process, from /proc/<pid>/stat.
fn stat(pid: u32) -> Option<(char, u64)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // fields after "(comm)": state is field 3, utime 14, stime 15
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let state = f.first()?.chars().next()?;
    let ut: u64 = f.get(11)?.parse().ok()?;
    let stt: u64 = f.get(12)?.parse().ok()?;
    Some((state, ut + stt))
}

/// The kernel's clock ticks per second (CPU times in /proc are counted in them).
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Runs `f` on a thread of its own that entered the network namespace `netns` (setns) when given.
pub fn in_netns<T: Send>(netns: Option<&str>, f: impl FnOnce() -> Option<T> + Send) -> Option<T> {
    let ns = netns.map(|n| format!("/var/run/netns/{n}"));
    thread::scope(|s| {
        s.spawn(move || {
            if let Some(ns) = ns {
                let file = fs::File::open(ns).ok()?;
                // SAFETY: setns on a valid namespace fd changes only this (short-lived) thread's
                // network namespace; sockets it creates belong there.
                if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return None;
                }
            }
            f()
        })
        .join()
        .ok()
        .flatten()
    })
}

/// Status code and body of `GET path` on 127.0.0.1:port, asked in `netns` when given (None when
/// nothing answers).
pub fn http_get(netns: Option<&str>, port: u16, path: &str) -> Option<(u16, String)> {
    in_netns(netns, || {
        let mut s = TcpStream::connect_timeout(
            &SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_secs(2),
        )
        .ok()?;
        s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
        write!(s, "GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n").ok()?;
        let mut buf = String::new();
        s.read_to_string(&mut buf).ok()?;
        let code = buf.split_whitespace().nth(1)?.parse().ok()?;
        let body = buf.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        Some((code, body))
    })
}

/// Waits until something accepts a TCP connection to `addr` (from inside `netns` when given).
pub fn wait_listening(netns: Option<&str>, addr: SocketAddr, within: Duration) -> Result<()> {
    let t = Instant::now();
    loop {
        let up = in_netns(netns, || {
            TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()
        });
        if up.is_some() {
            return Ok(());
        }
        if t.elapsed() > within {
            bail!(
                "nothing listens on {addr}{} within {}s",
                netns.map(|n| format!(" in {n}")).unwrap_or_default(),
                within.as_secs()
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// `kwire replay FILE --json [--ports P]`: the parsed lines and the text.
pub fn replay(kwire: &Path, pcap: &Path, ports: &[u16]) -> Result<(Vec<Value>, String)> {
    let mut cmd = Command::new(kwire);
    cmd.arg("replay").arg(pcap).arg("--json");
    if !ports.is_empty() {
        cmd.arg("--ports").arg(join(ports));
    }
    let out = cmd
        .output()
        .with_context(|| format!("kwire replay {}", pcap.display()))?;
    if !out.status.success() {
        bail!(
            "kwire replay {} failed ({}): {}",
            pcap.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    Ok((parse_lines(&text)?, text))
}

/// One JSON value per non-empty line.
pub fn parse_lines(out: &str) -> Result<Vec<Value>> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("line {} is not JSON: {l}", i + 1))
        })
        .collect()
}

/// Ports as kwire's `--ports` takes them.
pub fn join(ports: &[u16]) -> String {
    ports
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

pub fn of_type<'a>(lines: &'a [Value], t: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["type"] == t).collect()
}

/// The summary, which must be the last line.
pub fn summary(lines: &[Value]) -> Result<&Value> {
    lines
        .last()
        .filter(|l| l["type"] == "summary")
        .ok_or_else(|| anyhow::anyhow!("the last line is not the summary"))
}
