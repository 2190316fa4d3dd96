//! `cargo xtask tls-check`: Kafka over TLS, read by kwire's OpenSSL uprobes, against the plaintext
//! view of the very same exchanges.
//!
//! 1. A throwaway CA and a server certificate for 127.0.0.1 (openssl); tansu listening in plaintext
//!    on P1 and advertising P2; stunnel4 terminating TLS on P2 and forwarding to P1.
//! 2. Two agents at once: `kwire run --source ebpf --ports P2` (TLS uprobes on, the default) and
//!    `kwire run --source ebpf --ports P1 --tls-uprobes off` (the stunnel→tansu leg, plaintext on the
//!    wire: the same Kafka bytes, the plaintext run of the same scenario).
//! 3. Clients in a child cgroup, over TLS: confluent-kafka (`security.protocol=SSL`,
//!    `ssl.ca.location`; OpenSSL linked statically into the wheel's librdkafka, LOCAL symbols),
//!    kafka-python and aiokafka (`ssl_context`; Python's shared libssl): weak-acks producers (acks=1)
//!    of all three, a consumer group commit, a topic deleted and re-created under a consumer, and the
//!    commit-after-revoke story (confluent-kafka, cooperative-sticky: a member commits partitions a
//!    rebalance took from it, tansu accepts) (the harness scripts, run with their client classes
//!    wrapped to speak TLS); the same story with kafka-python (`tls_broker.py story stale`, eager);
//!    then kafkajs on Node (OpenSSL linked into the node binary, exported
//!    symbols) writes with acks=1 and commits in a group. aiokafka and Node write through a memory
//!    BIO: their plaintext is tied to its connection by the thread's next send. Not kcat: Debian bookworm's librdkafka 2.0.2 cannot read tansu's
//!    ApiVersions v3 response ("Read underflow"; kwire decodes it), and its TLS is the shared libssl
//!    that kafka-python and aiokafka already exercise.
//! 4. The TLS agent must show the same exchanges (client ids, APIs, correlation ids, topics, offsets)
//!    and the same alerts as the plaintext agent, the alerts each story is there for (`WANTED`), every exchange owned by the clients' cgroup (so the
//!    plaintext came from the clients' own OpenSSL, not only stunnel's), both libraries attached, no
//!    attach failure, no ring drop.
//! 5. After SIGTERM, and again after SIGKILL of a fresh agent, `bpftool prog` / `bpftool link` show
//!    none of its uprobe programs (perf-event links belong to the process's descriptors).
//! 6. An agent with `--ebpf-cgroup` on a fresh child cgroup sees the TLS plaintext of a client in it
//!    and none of the same client run outside it.
//!
//! Easy to get wrong: the agent finds a library when a process maps it, on its once-a-second rescan,
//! and a process that talks sooner loses its first exchanges: a warm-up process maps both libraries
//! first and the clients start only once the uprobe links for them are there (bpftool), stable. Everything started is stopped on every path
//! (`Proc` kills on drop, the cgroup guard kills what is left in it). Needs root: without it, and
//! outside CI, the check says SKIPPED; as root, any failure to attach fails it.

use std::collections::BTreeMap;
use std::fs;
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use serde_json::Value;

use crate::agent::{Agent, Spec};
use crate::broker::free_port;
use crate::ebpf_check::ChildCgroup;
use crate::proc::{self, Out, Proc};
use crate::tools::Paths;

/// Runs a harness script with the Kafka client classes wrapped to speak TLS to the test's CA.
const WRAPPER: &str = r#"
import os, runpy, ssl, sys, time
cg = os.environ.get("KW_TLS_CGROUP")
if cg:
    with open(os.path.join(cg, "cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))
ca = os.environ["KW_TLS_CA"]
script = sys.argv[1]
sys.argv = sys.argv[1:]
import confluent_kafka, confluent_kafka.admin
extra = {"security.protocol": "SSL", "ssl.ca.location": ca}
class Producer(confluent_kafka.Producer):
    def __init__(self, conf, **kw):
        super().__init__({**conf, **extra}, **kw)
class Consumer(confluent_kafka.Consumer):
    def __init__(self, conf, **kw):
        super().__init__({**conf, **extra}, **kw)
admin_init = confluent_kafka.admin.AdminClient.__init__
def admin_tls(self, conf, **kw):
    admin_init(self, {**conf, **extra}, **kw)
confluent_kafka.admin.AdminClient.__init__ = admin_tls
confluent_kafka.Producer = Producer
confluent_kafka.Consumer = Consumer
import kafka
ctx = ssl.create_default_context(cafile=ca)
def wrap(cls):
    class W(cls):
        def __init__(self, *a, **kw):
            kw["security_protocol"] = "SSL"
            kw["ssl_context"] = ctx
            super().__init__(*a, **kw)
    W.__name__ = cls.__name__
    return W
kafka.KafkaProducer = wrap(kafka.KafkaProducer)
kafka.KafkaConsumer = wrap(kafka.KafkaConsumer)
kafka.KafkaAdminClient = wrap(kafka.KafkaAdminClient)
import aiokafka
aiokafka.AIOKafkaProducer = wrap(aiokafka.AIOKafkaProducer)
aiokafka.AIOKafkaConsumer = wrap(aiokafka.AIOKafkaConsumer)
time.sleep(float(os.environ.get("KW_TLS_SLEEP", "0")))
sys.path.insert(0, os.path.dirname(script))
runpy.run_path(script, run_name="__main__")
"#;

/// (script, args): the client steps, run in order with `--bootstrap 127.0.0.1:P2` appended, by
/// Python with the scripts' client classes wrapped to speak TLS (`WRAPPER`): confluent-kafka
/// (librdkafka with OpenSSL linked into the wheel), kafka-python and aiokafka (Python's ssl module:
/// the shared libssl).
#[rustfmt::skip]
const STEPS: &[(&str, &[&str])] = &[
    ("confluent_client.py", &["produce", "--topic", "kw-tls", "--partitions", "1", "--count", "6", "--acks", "1", "--client-id", "kw-tls-rdk1"]),
    ("kafka_python_client.py", &["produce", "--topic", "kw-tls", "--partitions", "1", "--count", "4", "--acks", "1", "--client-id", "kw-tls-py1"]),
    ("aiokafka_client.py", &["produce", "--topic", "kw-tls", "--partitions", "1", "--count", "3", "--acks", "1", "--client-id", "kw-tls-aio1"]),
    ("kafka_python_client.py", &["consume", "--topic", "kw-tls", "--count", "13", "--group", "kw-tls-pyg", "--client-id", "kw-tls-pyc"]),
    ("alert_stories.py", &["recreate", "--topic", "kw-rc"]),
    // The commit-after-revoke story on tansu: a cooperative-sticky rebalance takes two partitions of
    // kw-tls-carc from kw-tls-carc-1 (hand-off commit in its revoke callback), both members commit 7,
    // then kw-tls-carc-1 commits 6 for the two it lost: tansu accepts it.
    ("alert_stories.py", &["stale-commit", "--topic", "kw-tls-carc", "--group", "kw-tls-carc", "--prefix", "kw-tls-carc", "--protocol", "cooperative-sticky", "--commit-on-revoke"]),
];

/// Alerts the TLS agent must raise (kind, severity, client id, how many), besides being the plaintext
/// agent's: acks=1 from each of the four libraries, the topic re-created, the stale commit of
/// confluent-kafka (cooperative) and of kafka-python (eager) (one critical per partition lost).
const WANTED: &[(&str, &str, &str, usize)] = &[
    ("weak_acks", "warning", "kw-tls-rdk1", 1),
    ("weak_acks", "warning", "kw-tls-py1", 1),
    ("weak_acks", "warning", "kw-tls-aio1", 1),
    ("weak_acks", "warning", "kw-tls-node", 1),
    ("listoffsets_regression", "critical", "kw-rc-consumer", 1),
    ("commit_after_revoke", "critical", "kw-tls-carc-1", 2),
    ("commit_after_revoke", "critical", "kw-tls-stale-1", 2),
];

/// Fields of alerts compared besides kind, severity, client, topic and partition.
const ALERT_FIELDS: &[&str] = &[
    "acks",
    "requests",
    "records",
    "previous_offset",
    "new_offset",
    "delta",
    "committed_offset",
    "consumed_offset",
];

fn run(what: &str, cmd: &mut Command) -> Result<()> {
    proc::run_quiet(what, cmd, Duration::from_secs(60)).map(|_| ())
}

fn wait_port(port: u16, p: &mut Proc, what: &str) -> Result<()> {
    let end = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(st) = p.try_wait()? {
            bail!("{what} exited ({st}) before listening on {port}");
        }
        ensure!(
            Instant::now() < end,
            "{what} did not listen on {port} in 20 s"
        );
        thread::sleep(Duration::from_millis(30));
    }
    Ok(())
}

/// `kwire run ARGS` through the one agent harness (`crate::agent`), once ready (its programs attached).
fn start_agent(kwire: &Path, args: &[&str], dir: &Path, stem: &str) -> Result<Agent> {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let mut a = Agent::start(Spec::new(kwire, &args, dir, stem))?;
    a.wait_ready()
        .with_context(|| format!("{stem} not ready"))?;
    Ok(a)
}

fn bpftool_json(args: &[&str]) -> Result<Vec<Value>> {
    let out = Command::new("bpftool")
        .args(args)
        .arg("-j")
        .output()
        .context("bpftool")?;
    ensure!(out.status.success(), "bpftool {args:?} failed");
    Ok(serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap_or_default())
}

/// Ids of loaded programs named like kwire's TLS programs (names are cut to 15 bytes).
fn tls_prog_ids() -> Result<Vec<u64>> {
    Ok(bpftool_json(&["prog", "list"])?
        .iter()
        .filter(|p| {
            let n = p["name"].as_str().unwrap_or("");
            n.starts_with("kwire_ssl") || n.starts_with("kwire_sock")
        })
        .filter_map(|p| p["id"].as_u64())
        .collect())
}

/// Links whose program is one of `ids`.
fn links_of(ids: &[u64]) -> Result<usize> {
    Ok(bpftool_json(&["link", "list"])?
        .iter()
        .filter(|l| l["prog_id"].as_u64().is_some_and(|p| ids.contains(&p)))
        .count())
}

/// Waits (30 s at most) until the TLS programs have more links than `before` and the count held still
/// for two rescans: the libraries a warm-up process mapped are attached.
fn wait_attached(before: usize, ids: &[u64]) -> Result<()> {
    let end = Instant::now() + Duration::from_secs(30);
    let (mut last, mut since) = (before, Instant::now());
    loop {
        let now = links_of(ids)?;
        if now != last {
            (last, since) = (now, Instant::now());
        } else if now > before && since.elapsed() > Duration::from_millis(2500) {
            eprintln!("    warm-up: the libraries are attached ({before} -> {now} links)");
            return Ok(());
        }
        ensure!(
            Instant::now() < end,
            "the TLS uprobes did not attach to the warm-up process's libraries in 30 s \
             ({before} -> {now} links of programs {ids:?})"
        );
        thread::sleep(Duration::from_millis(200));
    }
}

fn wait_gone(what: &str) -> Result<()> {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let left = tls_prog_ids()?;
        if left.is_empty() {
            return Ok(());
        }
        ensure!(
            Instant::now() < end,
            "after {what}: kwire TLS programs still loaded: {left:?}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// The TLS agent's exchanges against the plaintext leg's: every TLS exchange is there with the
/// same request (and the same response when the TLS side has one); what the plaintext leg has
/// besides (an exchange, or a response the TLS side lacks) must be at the end of its connection:
/// bytes stunnel received or sent while the client was closing, which never crossed the TLS
/// connection or were never read. Returns how many such tail items there were.
fn same_exchanges(tls: &[Value], plain: &[Value]) -> Result<usize> {
    let px: Vec<&Value> = plain.iter().filter(|l| l["type"] == "exchange").collect();
    ensure!(!px.is_empty(), "the plaintext agent saw no exchange");
    let mut wanted: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, x) in px.iter().enumerate() {
        wanted.entry(request_key(x)).or_default().push(i);
    }
    // plaintext index → matched fully (request and response)
    let mut matched = vec![false; px.len()];
    // Exchanges with a response first, matched on it too: a client's connections repeat requests
    // (same id, same correlation id), so the one without a response must take what is left.
    let mut tx: Vec<&Value> = tls.iter().filter(|l| l["type"] == "exchange").collect();
    tx.sort_by_key(|x| x["response"].is_null());
    for x in tx {
        let k = request_key(x);
        let Some(v) = wanted.get_mut(&k) else {
            bail!("an exchange over TLS the plaintext leg does not have: {k}");
        };
        // Among the candidates (the same response, or any for an exchange without one), the one
        // nearest in time: two connections of one client can carry the same request with the same
        // answer (a bootstrap connection and the coordinator's both asking FindCoordinator).
        let t = seconds(x);
        let pick = v
            .iter()
            .enumerate()
            .filter(|(_, i)| x["response"].is_null() || px[**i]["response"] == x["response"])
            .min_by(|(_, a), (_, b)| {
                (seconds(px[**a]) - t)
                    .abs()
                    .total_cmp(&(seconds(px[**b]) - t).abs())
            })
            .map_or(0, |(n, _)| n);
        let Some(i) = (!v.is_empty()).then(|| v.remove(pick)) else {
            bail!("an exchange over TLS the plaintext leg does not have: {k}");
        };
        if x["response"].is_null() {
            continue;
        }
        ensure!(
            x["response"] == px[i]["response"],
            "responses differ for {k}:\n  TLS       {}\n  plaintext {}",
            x["response"],
            px[i]["response"]
        );
        matched[i] = true;
    }
    // Unmatched plaintext exchanges must be a suffix of their connection.
    let mut by_conn: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, x) in px.iter().enumerate() {
        by_conn
            .entry(x["conn"].as_u64().unwrap_or(0))
            .or_default()
            .push(i);
    }
    let mut tail = 0;
    for idx in by_conn.values_mut() {
        idx.sort_by(|a, b| px[*a]["ts"].as_str().cmp(&px[*b]["ts"].as_str()));
        let first_missing = idx.iter().position(|i| !matched[*i]);
        if let Some(p) = first_missing {
            for i in &idx[p..] {
                ensure!(
                    !matched[*i],
                    "over TLS, {} is missing but later exchanges of its connection are there",
                    request_key(px[idx[p]])
                );
                tail += 1;
            }
        }
    }
    ensure!(
        tail * 10 <= px.len(),
        "{tail} of the plaintext leg's {} exchanges missing over TLS",
        px.len()
    );
    Ok(tail)
}

/// An exchange's request time, seconds within its month (enough to compare two runs of one check).
fn seconds(x: &Value) -> f64 {
    let ts = x["ts"].as_str().unwrap_or("");
    let num = |r: std::ops::Range<usize>| ts.get(r).and_then(|t| t.parse::<f64>().ok());
    // 2026-12-07T00:21:15.571381Z
    match (
        num(8..10),
        num(11..13),
        num(14..16),
        ts.get(17..).map(|t| t.trim_end_matches('Z')),
    ) {
        (Some(d), Some(h), Some(m), Some(sec)) => {
            d * 86_400.0 + h * 3_600.0 + m * 60.0 + sec.parse::<f64>().unwrap_or(0.0)
        }
        _ => 0.0,
    }
}

fn request_key(x: &Value) -> String {
    [
        "client_id",
        "api",
        "api_version",
        "correlation_id",
        "request",
    ]
    .iter()
    .map(|f| x[*f].to_string())
    .collect::<Vec<_>>()
    .join("|")
}

fn alert_key(a: &Value) -> String {
    let mut s = format!(
        "{} {} client={} topic={} partition={}",
        a["alert"], a["severity"], a["client_id"], a["topic"], a["partition"]
    );
    for f in ALERT_FIELDS {
        if let Some(v) = a.get(*f) {
            s.push_str(&format!(" {f}={v}"));
        }
    }
    s
}

fn multiset(lines: &[Value], t: &str, key: fn(&Value) -> String) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for l in lines.iter().filter(|l| l["type"] == t) {
        *m.entry(key(l)).or_insert(0) += 1;
    }
    m
}

fn same(what: &str, tls: &BTreeMap<String, u64>, plain: &BTreeMap<String, u64>) -> Result<()> {
    if tls == plain {
        return Ok(());
    }
    let mut d = Vec::new();
    for (k, n) in tls {
        let m = plain.get(k).copied().unwrap_or(0);
        if *n != m {
            d.push(format!("  TLS {n} / plaintext {m}: {k}"));
        }
    }
    for (k, m) in plain {
        if !tls.contains_key(k) {
            d.push(format!("  TLS 0 / plaintext {m}: {k}"));
        }
    }
    d.truncate(20);
    bail!("{what} differ:\n{}", d.join("\n"))
}

/// Kafka over TLS on loopback: a throwaway CA and a server certificate for 127.0.0.1 (openssl),
/// tansu listening in plaintext on `plain_port` and advertising `tls_port`, stunnel4 terminating TLS
/// on `tls_port` and forwarding to `plain_port`. Both are stopped on drop. Shared by tls-check and
/// the live benchmark's TLS section.
pub struct TlsBroker {
    pub plain_port: u16,
    pub tls_port: u16,
    /// The CA certificate clients must trust (`ssl.ca.location`).
    pub ca: PathBuf,
    tunnel: Proc,
    broker: Proc,
}

impl TlsBroker {
    /// Makes the certificates in `dir`, starts tansu and stunnel (logs in `dir`), creates `topics`
    /// (name, partitions), returns once both ports accept connections.
    pub fn start(paths: &Paths, dir: &Path, topics: &[(&str, u32)]) -> Result<TlsBroker> {
        let stunnel = proc::which("stunnel4")
            .or_else(|| proc::which("stunnel"))
            .ok_or_else(|| anyhow!("stunnel4 not found: run `cargo xtask setup` as root"))?;
        let tansu = paths.require_tansu()?;
        let d = |f: &str| dir.join(f);
        run(
            "openssl req (CA)",
            Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                ])
                .args(["-subj", "/CN=kwire tls-check CA", "-keyout"])
                .arg(d("ca.key"))
                .arg("-out")
                .arg(d("ca.pem")),
        )?;
        run(
            "openssl req (server)",
            Command::new("openssl")
                .args([
                    "req",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-subj",
                    "/CN=127.0.0.1",
                    "-keyout",
                ])
                .arg(d("server.key"))
                .arg("-out")
                .arg(d("server.csr")),
        )?;
        fs::write(d("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n")?;
        run(
            "openssl x509 (sign)",
            Command::new("openssl")
                .args(["x509", "-req", "-days", "1", "-in"])
                .arg(d("server.csr"))
                .arg("-CA")
                .arg(d("ca.pem"))
                .arg("-CAkey")
                .arg(d("ca.key"))
                .args(["-CAcreateserial", "-out"])
                .arg(d("server.pem"))
                .arg("-extfile")
                .arg(d("ext.cnf")),
        )?;
        let (p1, p2) = (free_port()?, free_port()?);
        let log = d("tansu.log");
        let mut broker = Proc::spawn(
            "tansu",
            Command::new(&tansu)
                .args(["broker", "--listener-url"])
                .arg(format!("tcp://127.0.0.1:{p1}"))
                .arg("--advertised-listener-url")
                .arg(format!("tcp://127.0.0.1:{p2}"))
                .args(["--storage-engine", "memory://tansu/"])
                .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT"),
            false,
            Out::File(&log),
            Out::File(&log),
        )?;
        wait_port(p1, &mut broker, "tansu")?;
        for (topic, parts) in topics {
            run(
                "tansu topic create",
                Command::new(&tansu)
                    .args(["topic", "create", topic, "--partitions"])
                    .arg(parts.to_string())
                    .arg("--broker")
                    .arg(format!("tcp://127.0.0.1:{p1}")),
            )?;
        }
        fs::write(
            d("stunnel.conf"),
            format!(
                "foreground = yes\npid =\n[kafka]\naccept = 127.0.0.1:{p2}\nconnect = 127.0.0.1:{p1}\ncert = {}\nkey = {}\n",
                d("server.pem").display(),
                d("server.key").display()
            ),
        )?;
        let slog = d("stunnel.log");
        let mut tunnel = Proc::spawn(
            "stunnel",
            Command::new(&stunnel).arg(d("stunnel.conf")),
            false,
            Out::File(&slog),
            Out::File(&slog),
        )?;
        wait_port(p2, &mut tunnel, "stunnel")?;
        Ok(TlsBroker {
            plain_port: p1,
            tls_port: p2,
            ca: d("ca.pem"),
            tunnel,
            broker,
        })
    }
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        // stunnel first: no client is left half-connected to a stopped broker
        self.tunnel.kill();
        self.broker.kill();
    }
}

pub fn tls_check(paths: &Paths, args: &[String]) -> Result<()> {
    if let Some(a) = args.first() {
        bail!("tls-check: unknown option {a}");
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root && std::env::var_os("CI").is_none() {
        eprintln!("==> tls-check: SKIPPED: needs root (uprobes, cgroups); under CI or as root it runs and must pass");
        return Ok(());
    }
    ensure!(root, "tls-check needs root (uprobes, cgroups)");
    let started = Instant::now();
    eprintln!("==> tls-check: Kafka over TLS (tansu behind stunnel4) read by the OpenSSL uprobes");
    // Played twice at most: on a loaded machine an exchange of the TLS leg was seen missing (2 runs in
    // about 10; see README "Kafka over TLS"): the failure is printed, never hidden, and a second
    // failure fails the check.
    match check_once(paths, started) {
        Ok(()) => Ok(()),
        Err(e) => {
            println!("retry tls-check: {e:#}; playing it once more");
            wait_gone("the failed attempt")?;
            check_once(paths, started)
        }
    }
}

/// Runs harness scripts over TLS against the TLS port: Python with `WRAPPER` (written into `dir`),
/// each script's output kept in `dir/client-<name>.out`.
struct Clients<'a> {
    python: PathBuf,
    harness: PathBuf,
    dir: &'a Path,
    tls_port: u16,
    ca: &'a Path,
}

impl Clients<'_> {
    /// `script sargs --bootstrap 127.0.0.1:<TLS port>`, in `cgroup` when given (else where xtask runs).
    fn run(&self, name: &str, script: &str, sargs: &[&str], cgroup: Option<&Path>) -> Result<()> {
        let mut cmd = Command::new(&self.python);
        cmd.arg(self.dir.join("tls_wrap.py"))
            .arg(self.harness.join(script))
            .args(sargs)
            .arg("--bootstrap")
            .arg(format!("127.0.0.1:{}", self.tls_port))
            .env("KW_TLS_CA", self.ca)
            .env("KW_TLS_SLEEP", "0.5")
            .env("PYTHONPATH", &self.harness);
        if let Some(cg) = cgroup {
            cmd.env("KW_TLS_CGROUP", cg);
        }
        let out = proc::run_quiet(script, &mut cmd, Duration::from_secs(180))
            .with_context(|| format!("{script} {sargs:?} over TLS"))?;
        fs::write(self.dir.join(format!("client-{name}.out")), out)?;
        Ok(())
    }
}

/// One whole play of the check: broker, agents, clients, comparison, detach.
fn check_once(paths: &Paths, started: Instant) -> Result<()> {
    let python = paths.require_python()?;
    let dir = paths.out().join("tls-check");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    ensure!(
        tls_prog_ids()?.is_empty(),
        "kwire TLS programs are loaded before the check started (another agent?)"
    );

    // 1. CA, certificate, tansu, stunnel.
    let tb = TlsBroker::start(
        paths,
        &dir,
        &[
            ("kw-tls", 1),
            ("kw-rc", 1),
            ("kw-tls-carc", 4),
            ("kw-tls-node", 2),
        ],
    )?;
    let (p1, p2) = (tb.plain_port, tb.tls_port);
    let d = |f: &str| dir.join(f);
    eprintln!("    tansu plaintext on {p1}, stunnel TLS on {p2} (advertised)");

    // 2. The agents.
    let kwire = crate::agent::build_kwire(paths)?;
    let (s1, s2) = (p1.to_string(), p2.to_string());
    let tls_agent = start_agent(
        &kwire,
        &["--source", "ebpf", "--ports", &s2, "--json"],
        &dir,
        "kwire-tls",
    )?;
    let plain_agent = start_agent(
        &kwire,
        &[
            "--source",
            "ebpf",
            "--ports",
            &s1,
            "--json",
            "--tls-uprobes",
            "off",
        ],
        &dir,
        "kwire-plain",
    )?;
    let ids = tls_prog_ids()?;
    ensure!(
        ids.len() >= 6,
        "kwire run's TLS programs are not all loaded: {ids:?}"
    );
    let links = links_of(&ids)?;
    eprintln!("    agents running; TLS programs {ids:?} with {links} links (bpftool)");
    ensure!(links >= 2, "no links of the TLS programs listed by bpftool");

    // 3. Warm-up: a process that maps both libraries (python's ssl: libssl; confluent_kafka: the
    // wheel's librdkafka), until the agent's rescan has attached to them (more uprobe links, then
    // stable for two rescans). Discovery is what this tests, not a race of the first client with the
    // once-a-second rescan on a loaded CI machine.
    let mut warm = Proc::spawn(
        "warm-up",
        Command::new(&python).args(["-c", "import ssl, confluent_kafka, time; time.sleep(120)"]),
        false,
        Out::Null,
        Out::Null,
    )?;
    // Node links OpenSSL statically and exports its symbols: the node binary itself is attached.
    let mut warm_node = Proc::spawn(
        "warm-up (node)",
        Command::new("node").args(["-e", "setTimeout(() => {}, 120000)"]),
        false,
        Out::Null,
        Out::Null,
    )?;
    wait_attached(links, &ids)?;
    warm.kill();
    warm_node.kill();

    // 4. The clients, in a child cgroup.
    let cg = ChildCgroup::create()?;
    let cg_id = fs::metadata(&cg.dir)?.ino();
    fs::write(d("tls_wrap.py"), WRAPPER)?;
    let harness = paths.harness();
    let clients = Clients {
        python: python.clone(),
        harness: harness.clone(),
        dir: &dir,
        tls_port: p2,
        ca: &tb.ca,
    };
    for (n, (script, sargs)) in STEPS.iter().enumerate() {
        let t = Instant::now();
        clients.run(&n.to_string(), script, sargs, Some(&cg.dir))?;
        eprintln!(
            "    {script} {} over TLS ({:.1}s)",
            sargs.join(" "),
            t.elapsed().as_secs_f64()
        );
    }
    // The commit-after-revoke story once more with kafka-python (eager, range), Python's libssl.
    let t = Instant::now();
    let ca = tb.ca.display().to_string();
    let stale = ["story", "stale", "--ca", &ca];
    clients.run("stale", "tls_broker.py", &stale, Some(&cg.dir))?;
    eprintln!(
        "    tls_broker.py story stale (kafka-python: kw-tls-stale-1 commits what it lost) over TLS ({:.1}s)",
        t.elapsed().as_secs_f64()
    );
    // kafkajs on Node (its own OpenSSL, a memory BIO like asyncio's): acks=1 writes, a group commit.
    let t = Instant::now();
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        r#"echo $$ > "$1/cgroup.procs" && shift && exec "$@""#,
        "sh",
    ])
    .arg(&cg.dir)
    .arg("node")
    .arg(harness.join("kafkajs_client.js"))
    .arg("--bootstrap")
    .arg(format!("127.0.0.1:{p2}"))
    .arg("--ca")
    .arg(&tb.ca)
    .args(["--topic", "kw-tls-node", "--group", "kw-tls-node-group"])
    .env("NODE_PATH", paths.tools().join("node/node_modules"));
    let out = proc::run_quiet("kafkajs_client.js", &mut cmd, Duration::from_secs(180))
        .context("kafkajs_client.js over TLS (kafkajs: `cargo xtask setup`)")?;
    fs::write(d("client-node.out"), out)?;
    eprintln!(
        "    node kafkajs_client.js (kw-tls-node, acks=1; group kw-tls-node-group) over TLS ({:.1}s)",
        t.elapsed().as_secs_f64()
    );
    thread::sleep(Duration::from_secs(2));
    let tls_lines = tls_agent.stop("TERM")?.lines;
    let plain_lines = plain_agent.stop("TERM")?.lines;
    wait_gone("SIGTERM")?;
    eprintln!("    SIGTERM: no kwire TLS program left (bpftool prog list)");

    // 5. Same exchanges, same alerts; the plaintext came from the clients' own OpenSSL.
    let summary = tls_lines
        .last()
        .filter(|l| l["type"] == "summary")
        .ok_or_else(|| anyhow!("the TLS agent's last line is not the summary"))?;
    let cap = &summary["capture"];
    let describe = cap["description"].as_str().unwrap_or("");
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    ensure!(
        n(&cap["tls_attach_failed"]) == 0,
        "a uprobe could not be attached: {describe}"
    );
    ensure!(
        describe.contains("libssl.so")
            && describe.contains("librdkafka")
            && describe.contains("node"),
        "libssl, the wheel's librdkafka and node are not all attached: {describe}"
    );
    for f in [
        "ring_drops",
        "kernel_drops",
        "plaintext_ring_drops",
        "plaintext_copy_failed",
        "plaintext_truncated_calls",
        "plaintext_no_socket",
    ] {
        ensure!(n(&cap[f]) == 0, "capture.{f} = {} (want 0)", cap[f]);
    }
    let pt = &summary["plaintext"];
    ensure!(
        n(&pt["connections"]) > 0 && n(&pt["bytes"]) > 0,
        "no plaintext analysed: {pt}"
    );
    let tail = same_exchanges(&tls_lines, &plain_lines)?;
    let tls_a = multiset(&tls_lines, "alert", alert_key);
    let plain_a = multiset(&plain_lines, "alert", alert_key);
    same("alerts", &tls_a, &plain_a)?;
    for (kind, severity, client, count) in WANTED {
        let got = tls_lines
            .iter()
            .filter(|a| {
                a["type"] == "alert"
                    && a["alert"] == *kind
                    && a["severity"] == *severity
                    && a["client_id"] == *client
            })
            .count();
        ensure!(
            got == *count,
            "{got} {severity} {kind} alerts of {client} over TLS (want {count}): {tls_a:#?}"
        );
    }
    // The stale commit: the offsets the story committed (6, over the new owner's 7).
    for a in tls_lines
        .iter()
        .filter(|a| a["type"] == "alert" && a["alert"] == "commit_after_revoke")
    {
        ensure!(
            a["committed_offset"] == 6 && a["new_owner_committed_offset"] == 7,
            "commit_after_revoke over TLS with other offsets than the story's (6 over 7): {a}"
        );
    }
    let xs: Vec<&Value> = tls_lines
        .iter()
        .filter(|l| l["type"] == "exchange")
        .collect();
    let foreign: Vec<String> = xs
        .iter()
        .filter(|x| x["client_cgroup_id"].as_u64() != Some(cg_id))
        .map(|x| format!("{} {}", x["client_id"], x["api"]))
        .take(5)
        .collect();
    ensure!(
        foreign.is_empty(),
        "exchanges not read from the clients' own OpenSSL (client cgroup id not {cg_id}): {foreign:?}"
    );
    let commits = xs.iter().filter(|x| x["api"] == "OffsetCommit").count();
    ensure!(commits > 0, "no OffsetCommit over TLS");
    eprintln!(
        "    same {} exchanges ({} OffsetCommit) and {} alerts as the plaintext leg ({tail} more there, each at the end of its connection: sent while the client closed); {} plaintext bytes on {} connections; all from cgroup {cg_id}",
        xs.len(),
        commits,
        tls_a.values().sum::<u64>(),
        pt["bytes"],
        pt["connections"]
    );
    eprintln!("    {describe}");
    drop(cg);

    // 6. `--ebpf-cgroup` scopes the uprobes as it scopes the packet hooks: a client in that cgroup is
    // seen, the same client outside it (and stunnel's end) is not.
    let inside = ChildCgroup::create()?;
    let inside_dir = inside.dir.display().to_string();
    let scoped = start_agent(
        &kwire,
        &[
            "--source",
            "ebpf",
            "--ports",
            &s2,
            "--json",
            "--ebpf-cgroup",
            &inside_dir,
        ],
        &dir,
        "kwire-scoped",
    )?;
    for (who, cgroup) in [
        ("kw-tls-in", Some(inside.dir.as_path())),
        ("kw-tls-out", None),
    ] {
        let sargs = [
            "produce",
            "--topic",
            "kw-tls",
            "--partitions",
            "1",
            "--count",
            "2",
            "--acks",
            "1",
            "--client-id",
            who,
        ];
        clients.run(who, "kafka_python_client.py", &sargs, cgroup)?;
    }
    thread::sleep(Duration::from_secs(2));
    let scoped_lines = scoped.stop("TERM")?.lines;
    let by = |c: &str| {
        scoped_lines
            .iter()
            .filter(|l| l["type"] == "exchange" && l["client_id"] == c)
            .count()
    };
    let (seen_in, seen_out) = (by("kw-tls-in"), by("kw-tls-out"));
    ensure!(
        seen_in > 0 && seen_out == 0,
        "--ebpf-cgroup {inside_dir}: {seen_in} exchanges of the client inside (want some), {seen_out} of the one outside (want none)"
    );
    drop(inside);
    eprintln!(
        "    --ebpf-cgroup: {seen_in} exchanges of the client inside the cgroup, none of the same client outside it"
    );

    // 7. SIGKILL leaves nothing behind either.
    let killed = start_agent(
        &kwire,
        &["--source", "ebpf", "--ports", &s2, "--json"],
        &dir,
        "kwire-killed",
    )?;
    ensure!(
        !tls_prog_ids()?.is_empty(),
        "the second agent's TLS programs are not loaded"
    );
    let _ = killed.stop("KILL");
    wait_gone("SIGKILL")?;
    eprintln!("    SIGKILL: no kwire TLS program left (bpftool prog list)");
    drop(tb);
    eprintln!(
        "==> tls-check passed in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::same_exchanges;

    fn x(
        conn: u64,
        corr: u64,
        api: &str,
        ts: &str,
        response: serde_json::Value,
    ) -> serde_json::Value {
        json!({"type": "exchange", "conn": conn, "client_id": "c", "api": api, "api_version": 2,
               "correlation_id": corr, "request": {"key": "g"}, "ts": ts, "response": response})
    }

    /// A client's bootstrap connection and its coordinator connection both ask FindCoordinator with the
    /// same correlation id and get the same answer; the bootstrap one was closed before its answer was
    /// read over TLS. The answered TLS exchange pairs with the plaintext one nearest in time, and the
    /// unread answer is a tail of its connection (found, not an error).
    #[test]
    fn same_request_on_two_connections_pairs_by_time() {
        let fc = json!({"node_id": 1});
        let plain = vec![
            x(
                1,
                3,
                "FindCoordinator",
                "2026-12-07T00:21:15.571411Z",
                fc.clone(),
            ),
            x(
                2,
                3,
                "FindCoordinator",
                "2026-12-07T00:21:18.806843Z",
                fc.clone(),
            ),
            x(
                2,
                4,
                "Fetch",
                "2026-12-07T00:21:18.900000Z",
                json!({"n": 1}),
            ),
        ];
        let tls = vec![
            x(
                7,
                3,
                "FindCoordinator",
                "2026-12-07T00:21:15.571381Z",
                serde_json::Value::Null,
            ),
            x(8, 3, "FindCoordinator", "2026-12-07T00:21:18.806815Z", fc),
            x(
                8,
                4,
                "Fetch",
                "2026-12-07T00:21:18.899990Z",
                json!({"n": 1}),
            ),
        ];
        // (the check allows one unread tail in ten exchanges)
        let (mut plain, mut tls) = (plain, tls);
        for corr in 5..12 {
            let ts = format!("2026-12-07T00:21:19.{corr:06}Z");
            plain.push(x(2, corr, "Fetch", &ts, json!({"n": corr})));
            tls.push(x(8, corr, "Fetch", &ts, json!({"n": corr})));
        }
        assert_eq!(same_exchanges(&tls, &plain).unwrap(), 1);
        // A response missing in the middle of a connection is still an error.
        let mut gap = tls.clone();
        gap[1]["response"] = serde_json::Value::Null;
        assert!(same_exchanges(&gap, &plain).is_err());
    }
}
