//! The two real-protocol brokers the harness can start: librdkafka's mock cluster (through
//! `kwire-mockbroker`) and tansu. Both listen on loopback ports chosen at run time, never 9092.
//!
//! Easy to get wrong: the mock picks its own random ports (read them from `BOOTSTRAP`); tansu
//! is given a port probed free just before it starts, so there is a small race with other
//! programs: a start that fails is retried on another port. Topics are created before the
//! capture starts, so captures hold only the clients' traffic.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

use crate::proc::{self, Out, Proc};
use crate::tools::{self, Paths};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BrokerKind {
    /// librdkafka's mock cluster with this many brokers (ids 1..=n)
    Mock(u32),
    /// tansu, in-memory storage, one broker (id 111)
    Tansu,
}

pub struct Broker {
    pub kind: BrokerKind,
    proc: Proc,
    pub bootstrap: String,
    pub ports: Vec<u16>,
    pub version: String,
    tansu: Option<std::path::PathBuf>,
}

const START_TIMEOUT: Duration = Duration::from_secs(20);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

impl Broker {
    pub fn start(kind: BrokerKind, paths: &Paths, logs: &Path) -> Result<Broker> {
        match kind {
            BrokerKind::Mock(n) => start_mock(n, paths, logs),
            BrokerKind::Tansu => {
                let mut last = None;
                for _ in 0..3 {
                    match start_tansu(paths, logs) {
                        Ok(b) => return Ok(b),
                        Err(e) => last = Some(e),
                    }
                }
                Err(last.expect("tried"))
            }
        }
    }

    /// Sends one command line to kwire-mockbroker; returns what followed `OK`.
    pub fn mock_command(&mut self, line: &str) -> Result<String> {
        if !matches!(self.kind, BrokerKind::Mock(_)) {
            bail!("{line:?} is a mock-broker command; this broker is tansu");
        }
        mock_line(&mut self.proc, line, COMMAND_TIMEOUT)
    }

    pub fn create_topic(&mut self, name: &str, partitions: u32) -> Result<()> {
        match self.kind {
            BrokerKind::Mock(n) => {
                let rf = n.min(3);
                self.mock_command(&format!("create_topic {name} {partitions} {rf}"))?;
            }
            BrokerKind::Tansu => {
                let bin = self.tansu.clone().expect("tansu path");
                let mut cmd = Command::new(bin);
                cmd.args([
                    "topic",
                    "create",
                    name,
                    "--partitions",
                    &partitions.to_string(),
                    "--broker",
                ])
                .arg(format!("tcp://{}", self.bootstrap));
                proc::run_quiet(
                    &format!("tansu topic create {name}"),
                    &mut cmd,
                    COMMAND_TIMEOUT,
                )?;
            }
        }
        Ok(())
    }

    pub fn describe(&self) -> Value {
        match self.kind {
            BrokerKind::Mock(n) => {
                json!({"kind": "librdkafka-mock", "brokers": n, "librdkafka": self.version,
                                          "bootstrap": self.bootstrap, "ports": self.ports})
            }
            BrokerKind::Tansu => {
                json!({"kind": "tansu", "brokers": 1, "broker_id": 111, "tansu": self.version,
                                        "storage": "memory", "bootstrap": self.bootstrap, "ports": self.ports})
            }
        }
    }

    /// Restarts the broker on the same port (tansu only: its in-memory storage comes back empty, as a
    /// broker that lost what it had not flushed) and creates `topics` again, as an operator's tooling
    /// would: that CreateTopics (from the `tansu topic` client) is on the wire when capturing.
    pub fn restart(&mut self, paths: &Paths, logs: &Path, topics: &[(&str, u32)]) -> Result<()> {
        if self.kind != BrokerKind::Tansu {
            bail!("only tansu can be restarted mid-story");
        }
        let _ = self.proc.signal("TERM");
        let _ = self.proc.wait_timeout(Duration::from_secs(5));
        let port = self.ports[0];
        let end = Instant::now() + START_TIMEOUT;
        let fresh = loop {
            match start_tansu_on(paths, logs, port, "broker-restarted.log") {
                Ok(b) => break b,
                // The port may still be held for a moment.
                Err(e) if Instant::now() < end => {
                    let _ = e;
                    thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(e.context(format!("restarting tansu on port {port}"))),
            }
        };
        *self = fresh;
        for (t, p) in topics {
            self.create_topic(t, *p)?;
        }
        Ok(())
    }

    /// Some(exit status) if the broker process is gone (it should outlive every step).
    pub fn exited(&mut self) -> Option<String> {
        self.proc.try_wait().ok().flatten().map(|st| st.to_string())
    }

    /// Stops the broker: `quit` for the mock (clean teardown), SIGTERM for tansu; killed after 5 s.
    pub fn stop(mut self) -> Result<()> {
        match self.kind {
            BrokerKind::Mock(_) => {
                if let Some(mut stdin) = self.proc.stdin.take() {
                    let _ = stdin.write_all(b"quit\n");
                }
            }
            BrokerKind::Tansu => {
                let _ = self.proc.signal("TERM");
            }
        }
        let _ = self.proc.wait_timeout(Duration::from_secs(5));
        Ok(())
    }
}

fn start_mock(n: u32, paths: &Paths, logs: &Path) -> Result<Broker> {
    let bin = tools::mockbroker_or_build(paths)?;
    let mut cmd = Command::new(&bin);
    cmd.args(["--brokers", &n.to_string()]);
    let (proc, bootstrap, ports) = spawn_mock(&mut cmd, logs)?;
    let mut b = Broker {
        kind: BrokerKind::Mock(n),
        proc,
        bootstrap,
        ports,
        version: String::new(),
        tansu: None,
    };
    b.version = b.mock_command("version")?;
    Ok(b)
}

/// Starts the mock broker `cmd` (the binary with its arguments, perhaps inside a network namespace)
/// and waits for its BOOTSTRAP line: the process, the bootstrap servers and their ports.
pub fn spawn_mock(cmd: &mut Command, logs: &Path) -> Result<(Proc, String, Vec<u16>)> {
    let log = logs.join("broker.log");
    let proc = Proc::spawn("kwire-mockbroker", cmd, true, Out::Lines, Out::File(&log))?;
    let rx = proc.stdout.as_ref().expect("piped");
    let line = proc::wait_for_line(
        rx,
        START_TIMEOUT,
        "kwire-mockbroker's BOOTSTRAP line",
        |l| l.starts_with("BOOTSTRAP "),
        |_| {},
    )
    .with_context(|| {
        format!(
            "kwire-mockbroker did not start; its log:\n{}",
            proc::tail(&log, 20)
        )
    })?;
    let bootstrap = line.trim_start_matches("BOOTSTRAP ").trim().to_string();
    let ports = bootstrap
        .split(',')
        .map(|hp| {
            hp.rsplit(':')
                .next()
                .unwrap_or("")
                .parse::<u16>()
                .with_context(|| format!("bad bootstrap {bootstrap:?}"))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((proc, bootstrap, ports))
}

/// A loopback port that was free a moment ago (the kernel's ephemeral range, never 9092).
pub fn free_port() -> Result<u16> {
    for _ in 0..20 {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        if port != 9092 {
            return Ok(port);
        }
    }
    bail!("no free loopback port")
}

fn start_tansu(paths: &Paths, logs: &Path) -> Result<Broker> {
    start_tansu_on(paths, logs, free_port()?, "broker.log")
}

fn start_tansu_on(paths: &Paths, logs: &Path, port: u16, log_name: &str) -> Result<Broker> {
    let bin = paths.require_tansu()?;
    let version = tools::tansu_version(paths)?;
    let url = format!("tcp://127.0.0.1:{port}");
    let mut cmd = Command::new(&bin);
    cmd.args([
        "broker",
        "--listener-url",
        &url,
        "--advertised-listener-url",
        &url,
        "--storage-engine",
        "memory://tansu/",
    ])
    .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT");
    let log = logs.join(log_name);
    let mut proc = Proc::spawn("tansu", &mut cmd, false, Out::File(&log), Out::File(&log))?;
    let end = Instant::now() + START_TIMEOUT;
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        if let Some(st) = proc.try_wait()? {
            bail!(
                "tansu exited ({st}) before listening on {port}; its log:\n{}",
                proc::tail(&log, 20)
            );
        }
        if Instant::now() >= end {
            bail!(
                "tansu did not listen on {port} within {}s; its log:\n{}",
                START_TIMEOUT.as_secs(),
                proc::tail(&log, 20)
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
    Ok(Broker {
        kind: BrokerKind::Tansu,
        proc,
        bootstrap: format!("127.0.0.1:{port}"),
        ports: vec![port],
        version,
        tansu: Some(bin),
    })
}

/// One command line to a kwire-mockbroker process (stdin and stdout piped); what followed `OK`.
pub fn mock_line(p: &mut Proc, line: &str, timeout: Duration) -> Result<String> {
    let stdin = p
        .stdin
        .as_mut()
        .ok_or_else(|| anyhow!("mock broker stdin closed"))?;
    writeln!(stdin, "{line}")
        .and_then(|_| stdin.flush())
        .context("writing to kwire-mockbroker")?;
    let rx = p.stdout.as_ref().expect("piped");
    let reply = proc::recv_line(rx, timeout, &format!("reply to {line:?}"))?
        .ok_or_else(|| anyhow!("kwire-mockbroker exited while running {line:?}"))?;
    if reply == "OK" {
        Ok(String::new())
    } else if let Some(v) = reply.strip_prefix("OK ") {
        Ok(v.to_string())
    } else {
        bail!("kwire-mockbroker: {line:?} -> {reply}")
    }
}
