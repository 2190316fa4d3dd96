//! `cargo xtask fleet-check`: the fleet rule (README "A fleet of agents") with real peers on two
//! "nodes". Two network namespaces joined by a veth pair: the broker's (tansu on 10.99.0.1:9092, and the
//! collector, rotel, on 10.99.0.1:4317) and the clients' (confluent-kafka producers at 10.99.0.2 with
//! acks 0 and 1, so that weak_acks alerts fire). One `kwire run --source pcap` per namespace on its own
//! veth, both exporting to the one collector (each under its own `OTEL_SERVICE_NAME`).
//!
//! Runs, and what each must show:
//! 1. both agents, `--cluster-cidrs 10.99.0.0/24` (the client is in the cluster): the client side's
//!    agent analyses every connection, the broker side's skips all of them (`fleet_skipped`); the
//!    collector receives one span per exchange, one log record per alert (distinct `kwire.alert.id`s)
//!    and `messaging.client.sent.messages` adds up to the records produced, from one agent only;
//! 2. the client side's agent alone: the same, nothing lost;
//! 3. the broker side's agent alone, the client outside the cluster (`--cluster-cidrs 10.99.0.1/32`):
//!    it analyses every connection (rule 2), same counts;
//! 4. the client side's agent on eBPF (`--source ebpf --ebpf-cgroup`, confined to a child cgroup holding
//!    the producers: the eBPF source attributes their sockets, so the client is local) and the broker
//!    side's on libpcap, the client in the cluster: again every item exactly once;
//! 5. control: both agents with the rule off: everything twice (what the rule prevents). A note says
//!    that the two copies of an alert share their `kwire.alert.id` (a backend can de-duplicate)
//!    (an alert without an evidence exchange hashes its packet time, which differs by microseconds
//!    between the two capture points), so a backend cannot de-duplicate those copies by id.
//!
//! Easy to get wrong: the agents must capture before the first client connects (they are started, then
//! `/readyz` is polled inside their namespace's view through the veth); the collector's output file is
//! shared by all runs, so each run reads only what was appended after it started; namespaces and
//! processes are removed even when a check fails (a guard's Drop).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::tools::Paths;

const BROKER_IP: &str = "10.99.0.1";
const CLIENT_IP: &str = "10.99.0.2";
const RECORDS_PER_PRODUCER: usize = 3;
const ACKS: [&str; 2] = ["0", "1"];
/// In a run's agent list, in place of an interface: the eBPF source on the producers' cgroup.
const EBPF: &str = "ebpf";

struct Net {
    nb: String,
    nc: String,
    vb: String,
    vc: String,
    children: Vec<Child>,
}

impl Drop for Net {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.nb, &self.nc] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn ip(args: &[&str]) -> Result<()> {
    let st = Command::new("ip")
        .args(args)
        .status()
        .with_context(|| format!("ip {}", args.join(" ")))?;
    if !st.success() {
        bail!("ip {} failed ({st})", args.join(" "));
    }
    Ok(())
}

impl Net {
    fn new() -> Result<Net> {
        let id = std::process::id();
        let net = Net {
            nb: format!("kwfb{id}"),
            nc: format!("kwfc{id}"),
            vb: format!("kwvb{id}"),
            vc: format!("kwvc{id}"),
            children: Vec::new(),
        };
        ip(&["netns", "add", &net.nb])?;
        ip(&["netns", "add", &net.nc])?;
        ip(&[
            "link", "add", &net.vb, "type", "veth", "peer", "name", &net.vc,
        ])?;
        ip(&["link", "set", &net.vb, "netns", &net.nb])?;
        ip(&["link", "set", &net.vc, "netns", &net.nc])?;
        ip(&[
            "-n",
            &net.nb,
            "addr",
            "add",
            &format!("{BROKER_IP}/24"),
            "dev",
            &net.vb,
        ])?;
        ip(&[
            "-n",
            &net.nc,
            "addr",
            "add",
            &format!("{CLIENT_IP}/24"),
            "dev",
            &net.vc,
        ])?;
        for (ns, dev) in [(&net.nb, &net.vb), (&net.nc, &net.vc)] {
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(net)
    }

    fn exec(ns: &str, bin: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).arg(bin);
        c
    }

    /// Like [`Net::exec`] but entering only the network namespace: `ip netns exec` also mounts a sysfs
    /// of its own, which hides the cgroup2 file system an eBPF source attaches to.
    fn exec_net_only(ns: &str, bin: &Path) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{ns}")).arg(bin);
        c
    }
}

/// What one agent printed (--json) and its summary.
struct AgentOut {
    exchanges: usize,
    alert_ids: Vec<String>,
    fleet_skipped: u64,
    kafka_flows: u64,
}

fn read_agent(path: &Path) -> Result<AgentOut> {
    let text = fs::read_to_string(path)?;
    let mut out = AgentOut {
        exchanges: 0,
        alert_ids: Vec::new(),
        fleet_skipped: 0,
        kafka_flows: 0,
    };
    let mut summary = false;
    for l in text.lines() {
        let v: Value = serde_json::from_str(l).with_context(|| format!("not JSON: {l}"))?;
        match v["type"].as_str() {
            Some("exchange") => out.exchanges += 1,
            Some("alert") => out
                .alert_ids
                .push(v["alert_id"].as_str().unwrap_or("").to_string()),
            Some("summary") => {
                summary = true;
                out.fleet_skipped = v["flows"]["fleet_skipped"].as_u64().unwrap_or(0);
                out.kafka_flows = v["flows"]["kafka"].as_u64().unwrap_or(0);
            }
            _ => {}
        }
    }
    if !summary {
        bail!("{}: no summary line", path.display());
    }
    Ok(out)
}

/// What the collector printed after `from` bytes: spans per agent, alert ids, and the last value of
/// `messaging.client.sent.messages` per agent (cumulative: the last export holds the total).
#[derive(Default, Debug)]
struct Received {
    spans: BTreeMap<String, usize>,
    alert_ids: Vec<String>,
    sent: BTreeMap<String, i64>,
    /// Every data point of a metric about the Kafka traffic (not the agent's own health), by metric name
    /// and its attributes: the agents that exported it with a non-zero value (cumulative: last wins).
    points: BTreeMap<(String, String), BTreeMap<String, String>>,
}

/// Metrics about the Kafka traffic seen (each connection's share must come from one agent); the
/// agent's own health (packets, drops, flows, export queue) comes from every agent.
fn about_traffic(metric: &str) -> bool {
    metric.starts_with("messaging.")
        || [
            "kwire.alerts",
            "kwire.request.duration",
            "kwire.request.bytes",
            "kwire.response.bytes",
            "kwire.produced.bytes",
            "kwire.fetched.bytes",
            "kwire.consumer.lag",
            "kwire.consumer.committed_offset",
            "kwire.partition.high_watermark",
        ]
        .contains(&metric)
}

fn read_collector(path: &Path, from: usize) -> Result<Received> {
    let bytes = fs::read(path)?;
    let text = String::from_utf8_lossy(&bytes[from.min(bytes.len())..]).to_string();
    let mut r = Received::default();
    let mut agent = String::new();
    let (mut in_log, mut in_sent) = (false, false);
    // The metric being read, whether its descriptor is being read, and the current point's attributes.
    let (mut metric, mut in_descriptor, mut attrs) = (String::new(), false, Vec::<String>::new());
    for l in text.lines() {
        let l = l.trim();
        if l == "Descriptor:" {
            in_descriptor = true;
            continue;
        }
        if l.starts_with("NumberDataPoints #") || l.starts_with("HistogramDataPoints #") {
            in_descriptor = false;
            attrs.clear();
            continue;
        }
        if let Some(n) = l.strip_prefix("-> Name: ") {
            if in_descriptor {
                metric = n.to_string();
            }
        } else if l.starts_with("-> ") && !in_descriptor && !metric.is_empty() && !in_log {
            attrs.push(l.to_string());
        } else if let (Some(v), true) = (
            l.strip_prefix("Value: ")
                .or_else(|| l.strip_prefix("Count: ")),
            about_traffic(&metric),
        ) {
            if v != "0" {
                let mut a = attrs.clone();
                a.sort();
                r.points
                    .entry((metric.clone(), a.join(", ")))
                    .or_default()
                    .insert(agent.clone(), v.to_string());
            }
        }
        if l.starts_with("Span #")
            || l.starts_with("LogRecord #")
            || l.starts_with("ResourceMetrics #")
        {
            metric.clear();
        }
        if let Some(s) = l.strip_prefix("-> service.name: Str(") {
            agent = s.trim_end_matches(')').to_string();
        } else if l.starts_with("Span #") {
            *r.spans.entry(agent.clone()).or_default() += 1;
            in_log = false;
        } else if l.starts_with("LogRecord #") {
            in_log = true;
        } else if l.starts_with("Metric #") {
            in_log = false;
            in_sent = false;
        } else if l == "-> Name: messaging.client.sent.messages" {
            in_sent = true;
        } else if let Some(v) = l.strip_prefix("Value: ") {
            if in_sent {
                // One point per partition here (one partition): the last export's value wins.
                r.sent.insert(agent.clone(), v.parse().unwrap_or(-1));
            }
        } else if let Some(id) = l.strip_prefix("-> kwire.alert.id: Str(") {
            if in_log {
                r.alert_ids.push(id.trim_end_matches(')').to_string());
            }
        }
    }
    Ok(r)
}

fn wait_port(ns: &str, host: &str, port: u16, python: &Path) -> Result<()> {
    let t = Instant::now();
    loop {
        let ok = Net::exec(ns, python)
            .args([
                "-c",
                &format!("import socket; socket.create_connection(('{host}', {port}), 1)"),
            ])
            .stderr(Stdio::null())
            .status()?
            .success();
        if ok {
            return Ok(());
        }
        if t.elapsed() > Duration::from_secs(15) {
            bail!("nothing listens on {host}:{port} in {ns}");
        }
        thread::sleep(Duration::from_millis(100));
    }
}

pub fn fleet_check(paths: &Paths) -> Result<()> {
    let started = Instant::now();
    let dir = paths.out().join("fleet");
    fs::create_dir_all(&dir)?;
    let kwire = crate::live::build_kwire(paths)?;
    let python = paths.venv().join("bin/python");
    let tansu = paths.require_tansu()?;
    let rotel = fs::read_dir(paths.venv().join("lib"))?
        .flatten()
        .map(|d| d.path().join("site-packages/rotel/rotel-agent"))
        .find(|p| p.exists())
        .context("rotel not installed: run `cargo xtask setup`")?;
    let mut net = Net::new()?;
    let url = format!("tcp://{BROKER_IP}:9092");
    let log = |name: &str| -> Result<fs::File> { Ok(fs::File::create(dir.join(name))?) };
    net.children.push(
        Net::exec(&net.nb, &tansu)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdout(log("tansu.log")?)
            .stderr(log("tansu.err")?)
            .spawn()?,
    );
    let collector_out = dir.join("rotel.out");
    net.children.push(
        Net::exec(&net.nb, &rotel)
            .args([
                "start",
                "--otlp-grpc-endpoint",
                &format!("{BROKER_IP}:4317"),
            ])
            .args(["--otlp-http-endpoint", &format!("{BROKER_IP}:4318")])
            .args(["--exporter", "blackhole", "--disable-batching"])
            .args(["--debug-log", "traces", "--debug-log", "logs"])
            .args([
                "--debug-log",
                "metrics",
                "--debug-log-verbosity",
                "detailed",
            ])
            .arg("--pid-file")
            .arg(dir.join("rotel.pid"))
            .arg("--log-file")
            .arg(dir.join("rotel.log"))
            .current_dir(&dir)
            .stdout(fs::File::create(&collector_out)?)
            .stderr(log("rotel.err")?)
            .spawn()?,
    );
    wait_port(&net.nc, BROKER_IP, 9092, &python)?;
    wait_port(&net.nc, BROKER_IP, 4317, &python)?;
    let st = Net::exec(&net.nb, &tansu)
        .args([
            "topic",
            "create",
            "kwf",
            "--partitions",
            "1",
            "--broker",
            &url,
        ])
        .stdout(Stdio::null())
        .status()?;
    if !st.success() {
        bail!("tansu topic create failed ({st})");
    }

    // (name, agents as (namespace, interface, service name), cluster CIDRs, times each item is seen)
    let (nb, nc, vb, vc) = (
        net.nb.clone(),
        net.nc.clone(),
        net.vb.clone(),
        net.vc.clone(),
    );
    type Run<'a> = (&'a str, Vec<(&'a str, &'a str, &'a str)>, &'a str, usize);
    let runs: Vec<Run> = vec![
        (
            "both agents, client in the cluster",
            vec![
                (&nb, &vb, "kwire-broker-node"),
                (&nc, &vc, "kwire-client-node"),
            ],
            "10.99.0.0/24",
            1,
        ),
        (
            "client side's agent only",
            vec![(&nc, &vc, "kwire-client-node")],
            "10.99.0.0/24",
            1,
        ),
        (
            "broker side's agent only, client outside the cluster",
            vec![(&nb, &vb, "kwire-broker-node")],
            "10.99.0.1/32",
            1,
        ),
        (
            "client side's agent on eBPF (the producers' cgroup), broker side's on libpcap",
            vec![
                (&nb, &vb, "kwire-broker-node"),
                (&nc, EBPF, "kwire-client-node-ebpf"),
            ],
            "10.99.0.0/24",
            1,
        ),
        (
            "control: both agents, rule off (everything twice)",
            vec![
                (&nb, &vb, "kwire-broker-node"),
                (&nc, &vc, "kwire-client-node"),
            ],
            "",
            2,
        ),
    ];
    // The producers run in a child cgroup, to which an eBPF agent is confined (never the root: other
    // tests and agents on this host stay out of it). Under CI or as root eBPF must load: no skip.
    let cg = crate::ebpf_check::ChildCgroup::create()?;
    let mut failures = Vec::new();
    let mut passed = 0;
    for (i, (name, agents, cidrs, times)) in runs.iter().enumerate() {
        let from = fs::metadata(&collector_out).map(|m| m.len() as usize)?;
        let mut procs = Vec::new();
        for (ns, dev, service) in agents {
            let out = dir.join(format!("run{i}-{service}.jsonl"));
            let mut cmd = if *dev == EBPF {
                Net::exec_net_only(ns, &kwire)
            } else {
                Net::exec(ns, &kwire)
            };
            cmd.arg("run");
            if *dev == EBPF {
                cmd.args(["--source", "ebpf", "--ebpf-cgroup"]).arg(&cg.dir);
            } else {
                cmd.args(["--source", "pcap", "--interface", dev]);
            }
            cmd.args(["--ports", "9092"])
                .args([
                    "--json",
                    "--duration",
                    "9",
                    "--otlp",
                    "--otlp-protocol",
                    "grpc",
                ])
                .args(["--otlp-endpoint", &format!("http://{BROKER_IP}:4317")])
                .env("OTEL_SERVICE_NAME", service)
                .stdout(fs::File::create(&out)?)
                .stderr(fs::File::create(dir.join(format!("run{i}-{service}.err")))?);
            if !cidrs.is_empty() {
                cmd.args(["--cluster-cidrs", cidrs]);
            }
            procs.push((service.to_string(), out, cmd.spawn()?));
        }
        // The agents capture within a second (libpcap opens at once); give them two.
        thread::sleep(Duration::from_secs(2));
        let script = format!(
            "from confluent_kafka import Producer\n\
             for acks in {ACKS:?}:\n\
             \x20   p = Producer({{'bootstrap.servers': '{BROKER_IP}:9092', 'acks': acks, 'client.id': 'kwf-acks' + acks}})\n\
             \x20   for i in range({RECORDS_PER_PRODUCER}):\n\
             \x20       p.produce('kwf', b'r%d' % i)\n\
             \x20       p.flush(10)\n"
        );
        let ip_netns = Path::new("ip");
        let st = crate::ebpf_check::in_cgroup(&cg.dir, ip_netns)
            .args(["netns", "exec", &nc])
            .arg(&python)
            .args(["-c", &script])
            .status()?;
        if !st.success() {
            bail!("{name}: the producers failed ({st})");
        }
        // The last FIN/ACKs, then SIGTERM (`ip netns exec` execs kwire: the child is kwire itself);
        // --duration 30 only bounds a run whose signal got lost.
        thread::sleep(Duration::from_secs(1));
        for (_, _, child) in &procs {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        let mut outs = BTreeMap::new();
        for (service, out, mut child) in procs {
            let st = child.wait()?;
            if !st.success() {
                bail!("{name}: {service} exited {st}");
            }
            outs.insert(service, read_agent(&out)?);
        }
        thread::sleep(Duration::from_millis(500));
        let got = read_collector(&collector_out, from)?;
        let produced = (ACKS.len() * RECORDS_PER_PRODUCER) as i64;
        let exchanges: usize = outs.values().map(|o| o.exchanges).sum();
        let alerts: Vec<&String> = outs.values().flat_map(|o| &o.alert_ids).collect();
        let analysing: Vec<&String> = outs
            .iter()
            .filter(|(_, o)| o.exchanges > 0)
            .map(|(s, _)| s)
            .collect();
        let distinct: BTreeSet<&String> = got.alert_ids.iter().collect();
        let spans: usize = got.spans.values().sum();
        let sent: i64 = got.sent.values().sum();
        let mut checks: Vec<(String, Result<()>)> = Vec::new();
        let mut check = |what: &str, ok: bool, detail: String| {
            checks.push((
                what.to_string(),
                if ok {
                    Ok(())
                } else {
                    Err(anyhow::anyhow!(detail))
                },
            ))
        };
        let one = exchanges / *times;
        check(
            "the producers' exchanges seen",
            one >= 2 * ACKS.len() && exchanges.is_multiple_of(*times),
            format!("{exchanges} exchange lines"),
        );
        check(
            &format!("analysed by {} agent(s)", times),
            analysing.len() == *times,
            format!("agents with exchanges: {analysing:?}"),
        );
        check(
            "weak_acks alerts: one per weak producer, per analysing agent",
            alerts.len() == ACKS.len() * times,
            format!("{} alerts", alerts.len()),
        );
        check(
            "collector: one span per exchange line",
            spans == exchanges,
            format!("{spans} spans for {exchanges} exchanges ({:?})", got.spans),
        );
        check(
            "collector: one log record per alert",
            got.alert_ids.len() == alerts.len()
                && got.alert_ids.len() == ACKS.len() * times
                // Two agents' copies of one alert share its id (a backend de-duplicates on it).
                && distinct.len() == ACKS.len(),
            format!(
                "{} log records, {} distinct alert ids, {} alert lines",
                got.alert_ids.len(),
                distinct.len(),
                alerts.len()
            ),
        );
        let shared: Vec<String> = got
            .points
            .iter()
            .filter(|(_, by)| by.len() != *times)
            .map(|((m, a), by)| format!("{m} {{{a}}} from {:?}", by.keys().collect::<Vec<_>>()))
            .collect();
        check(
            &format!(
                "collector: every point of the traffic metrics from exactly {} agent(s) ({} points)",
                times,
                got.points.len()
            ),
            !got.points.is_empty() && shared.is_empty(),
            format!("{shared:?}"),
        );
        check(
            "collector: messaging.client.sent.messages adds up to the records produced",
            sent == produced * *times as i64,
            format!("{:?} (produced {produced})", got.sent),
        );
        if !cidrs.is_empty() && agents.len() == 2 {
            let skipped: u64 = outs.values().map(|o| o.fleet_skipped).sum();
            let kafka: u64 = outs.values().map(|o| o.kafka_flows).sum::<u64>() / 2;
            check(
                "the other agent counts every connection as fleet_skipped",
                skipped == kafka && kafka > 0,
                format!("fleet_skipped {skipped}, Kafka connections {kafka}"),
            );
        }
        if *times > 1 {
            // The control run: both agents raised every alert; the copies share their alert_id.
            println!(
                "note  {name}: {} alert log records, {} distinct kwire.alert.id values",
                got.alert_ids.len(),
                distinct.len()
            );
        }
        for (what, r) in checks {
            match r {
                Ok(()) => {
                    passed += 1;
                    println!("ok    {name}: {what}");
                }
                Err(e) => {
                    println!("FAIL  {name}: {what}: {e:#}");
                    failures.push(format!("{name}: {what}"));
                }
            }
        }
    }
    drop(net);
    println!(
        "fleet-check: {passed} passed, {} failed ({:.0}s; files in {})",
        failures.len(),
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    if !failures.is_empty() {
        bail!("fleet-check failed: {}", failures.join("; "));
    }
    Ok(())
}
