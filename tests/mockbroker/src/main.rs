//! `kwire-mockbroker`: librdkafka's mock Kafka cluster as a process, for kwire's capture harness.
//!
//! Starts `rdkafka::mocking::MockCluster` (real TCP listeners on 127.0.0.1, random ports, speaking
//! the real Kafka protocol), prints `BOOTSTRAP host:port,...` on stdout, then reads one command per
//! line on stdin and answers each with one line: `OK` (or `OK <value>`) or `ERR <message>`.
//! End of stdin, or `quit`, tears the cluster down and exits 0.
//!
//! Commands (broker ids are 1..=N; "-1" means all brokers where librdkafka allows it):
//!
//! ```text
//! bootstrap                                print the bootstrap list again (OK host:port,...)
//! version                                  the librdkafka version (OK 2.12.1)
//! create_topic T PARTS RF                  create a topic (the mock has no CreateTopics API)
//! partition_leader T P BROKER|none         move a partition's leader (none = leaderless)
//! partition_follower T P BROKER            preferred read replica for KIP-392 follower fetching
//! follower_watermarks T P LO|- HI|-        the follower's own watermarks ("-" = follow the leader)
//! broker_down B / broker_up B              drop and refuse connections / accept them again
//! broker_rtt B MS                          add round-trip delay to a broker's responses
//! broker_rack B RACK                       rack reported in Metadata (needed for follower fetching)
//! coordinator group|transaction KEY B      pin a group's / transactional id's coordinator
//! request_errors API ERR [ERR...]          push error codes answered to the next requests of API
//! clear_request_errors API                 drop the pushed errors of API
//! topic_error T ERR                        error returned for T in Metadata
//! apiversion API MIN MAX|none              restrict (or with none: disable) an API's version range
//! quit
//! ```
//!
//! API is a name (`Produce`, `Fetch`, `ListOffsets`, `OffsetCommit`, ...) or its numeric key; ERR is
//! the Kafka error code as a number (e.g. 6 NOT_LEADER_OR_FOLLOWER, 27 REBALANCE_IN_PROGRESS,
//! 22 ILLEGAL_GENERATION) or librdkafka's negative internal codes (-195 = _TRANSPORT: disconnect).
//!
//! The same commands are also served on a Unix socket, so that client scripts can inject faults in
//! the middle of a story (the harness's stdin belongs to xtask): `<tmp>/kwire-mockbroker-<P>.sock`,
//! where P is the port of the first broker in the bootstrap list (scripts know it from
//! `--bootstrap`). One command per line, one reply line each, as on stdin; any number of
//! connections. The path is printed on stderr and removed at exit. Nothing on it is Kafka traffic,
//! so captures filtered on the broker ports never see it.
//!
//! Easy to get wrong: the mock's faults are not Apache Kafka's behaviour (broker_down does not move
//! leaders; the mock answers acks=0 Produce requests). Stdout carries only protocol lines: logs go
//! to stderr so the harness can parse stdout line by line.

use std::io::{BufRead, Write};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use rdkafka::mocking::{MockCluster, MockCoordinator};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

fn main() -> Result<()> {
    let brokers = parse_args()?;
    let cluster = MockCluster::new(brokers).context("creating the librdkafka mock cluster")?;
    let bootstrap = cluster.bootstrap_servers();
    let (tx, rx) = mpsc::channel::<Request>();
    let control = control_path(&bootstrap)?;
    let _ = std::fs::remove_file(&control);
    let listener =
        UnixListener::bind(&control).with_context(|| format!("binding {}", control.display()))?;
    eprintln!("kwire-mockbroker: control socket {}", control.display());
    {
        let tx = tx.clone();
        thread::spawn(move || serve_control(listener, tx));
    }
    let stdout = std::io::stdout();
    {
        let mut out = stdout.lock();
        writeln!(out, "BOOTSTRAP {bootstrap}")?;
        out.flush()?;
    }
    // stdin: commands from xtask; its replies go to stdout. End of stdin = quit.
    thread::spawn(move || {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            let (rtx, rrx) = mpsc::channel();
            let quit = line.split_whitespace().next() == Some("quit");
            if tx.send(Request::Command(line, rtx)).is_err() {
                return;
            }
            if let Ok(Some(answer)) = rrx.recv() {
                let _ = reply(&stdout, &answer);
            }
            if quit {
                return;
            }
        }
        let _ = tx.send(Request::Quit);
    });
    // Every command runs here, on the thread that owns the cluster, in arrival order.
    for req in rx {
        match req {
            Request::Quit => break,
            Request::Command(line, rtx) => {
                let words: Vec<&str> = line.split_whitespace().collect();
                if words.is_empty() || words[0].starts_with('#') {
                    let _ = rtx.send(None);
                    continue;
                }
                if words[0] == "quit" {
                    let _ = rtx.send(Some("OK".to_string()));
                    break;
                }
                let answer = match run(&cluster, &words) {
                    Ok(Some(v)) => format!("OK {v}"),
                    Ok(None) => "OK".to_string(),
                    Err(e) => format!("ERR {e:#}"),
                };
                eprintln!("kwire-mockbroker: {line} -> {answer}");
                let _ = rtx.send(Some(answer));
            }
        }
    }
    let _ = std::fs::remove_file(&control);
    drop(cluster);
    Ok(())
}

/// A command line and where its reply goes (None: nothing to answer, e.g. a comment).
enum Request {
    Command(String, mpsc::Sender<Option<String>>),
    Quit,
}

/// `<tmp>/kwire-mockbroker-<port of the first broker>.sock`.
fn control_path(bootstrap: &str) -> Result<PathBuf> {
    let first = bootstrap.split(',').next().unwrap_or_default();
    let port = first
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .ok_or_else(|| anyhow!("bad bootstrap list {bootstrap:?}"))?;
    Ok(std::env::temp_dir().join(format!("kwire-mockbroker-{port}.sock")))
}

fn serve_control(listener: UnixListener, tx: mpsc::Sender<Request>) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let tx = tx.clone();
        thread::spawn(move || {
            let Ok(mut w) = conn.try_clone() else { return };
            for line in std::io::BufReader::new(conn).lines() {
                let Ok(line) = line else { return };
                let (rtx, rrx) = mpsc::channel();
                if tx.send(Request::Command(line, rtx)).is_err() {
                    return;
                }
                let answer = match rrx.recv() {
                    Ok(Some(a)) => a,
                    Ok(None) => "OK".to_string(),
                    Err(_) => return,
                };
                if writeln!(w, "{answer}").and_then(|_| w.flush()).is_err() {
                    return;
                }
            }
        });
    }
}

fn parse_args() -> Result<i32> {
    let mut brokers = 3;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--brokers" => {
                brokers = args
                    .next()
                    .ok_or_else(|| anyhow!("--brokers needs a number"))?
                    .parse()
                    .context("--brokers")?
            }
            "-h" | "--help" => {
                eprintln!("usage: kwire-mockbroker [--brokers N]   (commands on stdin; see the source's header)");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (usage: kwire-mockbroker [--brokers N])"),
        }
    }
    if !(1..=64).contains(&brokers) {
        bail!("--brokers must be 1..=64");
    }
    Ok(brokers)
}

fn reply(stdout: &std::io::Stdout, line: &str) -> Result<()> {
    let mut out = stdout.lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

type Cluster = MockCluster<'static, rdkafka::producer::DefaultProducerContext>;

fn run(c: &Cluster, w: &[&str]) -> Result<Option<String>> {
    let want = |n: usize, usage: &str| -> Result<()> {
        if w.len() != n + 1 {
            bail!("usage: {} {usage}", w[0]);
        }
        Ok(())
    };
    match w[0] {
        "bootstrap" => {
            want(0, "")?;
            return Ok(Some(c.bootstrap_servers()));
        }
        "version" => {
            want(0, "")?;
            return Ok(Some(rdkafka::util::get_rdkafka_version().1));
        }
        "create_topic" => {
            want(3, "TOPIC PARTITIONS REPLICATION_FACTOR")?;
            c.create_topic(w[1], num(w[2])?, num(w[3])?)?;
        }
        "partition_leader" => {
            want(3, "TOPIC PARTITION BROKER|none")?;
            let b = if w[3] == "none" {
                None
            } else {
                Some(num(w[3])?)
            };
            c.partition_leader(w[1], num(w[2])?, b)?;
        }
        "partition_follower" => {
            want(3, "TOPIC PARTITION BROKER")?;
            c.partition_follower(w[1], num(w[2])?, num(w[3])?)?;
        }
        "follower_watermarks" => {
            want(4, "TOPIC PARTITION LOW|- HIGH|-")?;
            c.follower_watermarks(w[1], num(w[2])?, opt_i64(w[3])?, opt_i64(w[4])?)?;
        }
        "broker_down" => {
            want(1, "BROKER")?;
            c.broker_down(num(w[1])?)?;
        }
        "broker_up" => {
            want(1, "BROKER")?;
            c.broker_up(num(w[1])?)?;
        }
        "broker_rtt" => {
            want(2, "BROKER MILLISECONDS")?;
            c.broker_round_trip_time(num(w[1])?, Duration::from_millis(w[2].parse()?))?;
        }
        "broker_rack" => {
            want(2, "BROKER RACK")?;
            c.broker_rack(num(w[1])?, w[2])?;
        }
        "coordinator" => {
            want(3, "group|transaction KEY BROKER")?;
            let which = match w[1] {
                "group" => MockCoordinator::Group(w[2].to_string()),
                "transaction" | "txn" => MockCoordinator::Transaction(w[2].to_string()),
                other => bail!("coordinator kind must be group or transaction, not {other:?}"),
            };
            c.coordinator(which, num(w[3])?)?;
        }
        "request_errors" => {
            if w.len() < 3 {
                bail!("usage: request_errors API ERR [ERR...]");
            }
            let errs = w[2..]
                .iter()
                .map(|e| resp_err(e))
                .collect::<Result<Vec<_>>>()?;
            c.request_errors(api_key(w[1])?, &errs);
        }
        "clear_request_errors" => {
            want(1, "API")?;
            c.clear_request_errors(api_key(w[1])?);
        }
        "topic_error" => {
            want(2, "TOPIC ERR")?;
            c.topic_error(w[1], resp_err(w[2])?)?;
        }
        "apiversion" => {
            want(3, "API MIN MAX|none")?;
            let (min, max) = if w[3] == "none" {
                (None, None)
            } else {
                (Some(w[2].parse::<i16>()?), Some(w[3].parse::<i16>()?))
            };
            c.apiversion(api_key(w[1])?, min, max)?;
        }
        other => bail!("unknown command {other:?}"),
    }
    Ok(None)
}

fn num(s: &str) -> Result<i32> {
    s.parse::<i32>()
        .with_context(|| format!("not a number: {s:?}"))
}

fn opt_i64(s: &str) -> Result<Option<i64>> {
    if s == "-" {
        Ok(None)
    } else {
        Ok(Some(
            s.parse::<i64>()
                .with_context(|| format!("not an offset: {s:?}"))?,
        ))
    }
}

fn resp_err(s: &str) -> Result<RDKafkaRespErr> {
    let code: i32 = s
        .parse()
        .with_context(|| format!("error code must be a number, not {s:?}"))?;
    RDKafkaRespErr::try_from(code).map_err(|_| anyhow!("unknown error code {code}"))
}

/// The APIs the mock implements (plus the admin ones it refuses), by name or number.
fn api_key(s: &str) -> Result<RDKafkaApiKey> {
    use RDKafkaApiKey as K;
    const KEYS: &[(&str, i16, RDKafkaApiKey)] = &[
        ("Produce", 0, K::Produce),
        ("Fetch", 1, K::Fetch),
        ("ListOffsets", 2, K::ListOffsets),
        ("Metadata", 3, K::Metadata),
        ("OffsetCommit", 8, K::OffsetCommit),
        ("OffsetFetch", 9, K::OffsetFetch),
        ("FindCoordinator", 10, K::FindCoordinator),
        ("JoinGroup", 11, K::JoinGroup),
        ("Heartbeat", 12, K::Heartbeat),
        ("LeaveGroup", 13, K::LeaveGroup),
        ("SyncGroup", 14, K::SyncGroup),
        ("DescribeGroups", 15, K::DescribeGroups),
        ("ListGroups", 16, K::ListGroups),
        ("ApiVersions", 18, K::ApiVersion),
        ("CreateTopics", 19, K::CreateTopics),
        ("DeleteTopics", 20, K::DeleteTopics),
        ("InitProducerId", 22, K::InitProducerId),
        ("OffsetForLeaderEpoch", 23, K::OffsetForLeaderEpoch),
        ("AddPartitionsToTxn", 24, K::AddPartitionsToTxn),
        ("AddOffsetsToTxn", 25, K::AddOffsetsToTxn),
        ("EndTxn", 26, K::EndTxn),
        ("TxnOffsetCommit", 28, K::TxnOffsetCommit),
    ];
    let by_num = s.parse::<i16>().ok();
    KEYS.iter()
        .find(|(name, n, _)| name.eq_ignore_ascii_case(s) || Some(*n) == by_num)
        .map(|(_, _, k)| *k)
        .ok_or_else(|| anyhow!("unknown or unsupported API {s:?}"))
}
