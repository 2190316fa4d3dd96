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
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::agent::{self, Agent, Outputs, Spec, Stopped};
use crate::collector::{self, Collector, Mode};
use crate::tally::Tally;
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

impl AgentOut {
    fn of(stopped: &Stopped) -> Result<AgentOut> {
        let flows = &stopped.summary()?["flows"];
        Ok(AgentOut {
            exchanges: stopped.of_type("exchange").len(),
            alert_ids: stopped
                .of_type("alert")
                .iter()
                .map(|a| a["alert_id"].as_str().unwrap_or("").to_string())
                .collect(),
            fleet_skipped: flows["fleet_skipped"].as_u64().unwrap_or(0),
            kafka_flows: flows["kafka"].as_u64().unwrap_or(0),
        })
    }
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

impl Received {
    fn of(r: &collector::Received) -> Received {
        let mut got = Received::default();
        for s in &r.spans {
            *got.spans.entry(s.service.clone()).or_default() += 1;
        }
        got.alert_ids = r
            .logs
            .iter()
            .filter_map(|l| l.str_attr("kwire.alert.id").map(str::to_string))
            .collect();
        for p in &r.points {
            let Some(v) = &p.value else { continue };
            if p.metric == "messaging.client.sent.messages" {
                // One point per partition here (one partition): the last export's value wins.
                got.sent.insert(p.service.clone(), v.parse().unwrap_or(-1));
            }
            if about_traffic(&p.metric) && v != "0" {
                let mut a: Vec<String> = p.attrs.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                a.sort();
                got.points
                    .entry((p.metric.clone(), a.join(", ")))
                    .or_default()
                    .insert(p.service.clone(), v.clone());
            }
        }
        got
    }
}

pub fn fleet_check(paths: &Paths) -> Result<()> {
    let dir = paths.out().join("fleet");
    fs::create_dir_all(&dir)?;
    let kwire = crate::agent::build_kwire(paths)?;
    let python = paths.venv().join("bin/python");
    let tansu = paths.require_tansu()?;
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
    let addr = |port: u16| SocketAddr::from(([10, 99, 0, 1], port));
    agent::wait_listening(Some(&net.nc), addr(9092), Duration::from_secs(15))?;
    let collector = Collector::start(
        paths,
        collector::Config {
            dir: &dir,
            netns: Some(&net.nb),
            host: BROKER_IP,
            ports: Some((4317, 4318)),
            mode: Mode::Print,
        },
    )?;
    agent::wait_listening(Some(&net.nc), addr(4317), Duration::from_secs(15))?;
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
    let cgroup = cg.dir.display().to_string();
    let mut tally = Tally::new("fleet-check");
    for (i, (name, agents, cidrs, times)) in runs.iter().enumerate() {
        let from = collector.printed();
        let mut procs = Vec::new();
        for (ns, dev, service) in agents {
            let mut cmd = if *dev == EBPF {
                Net::exec_net_only(ns, &kwire)
            } else {
                Net::exec(ns, &kwire)
            };
            cmd.env("OTEL_SERVICE_NAME", service);
            let source = if *dev == EBPF {
                vec!["--source", "ebpf", "--ebpf-cgroup", cgroup.as_str()]
            } else {
                vec!["--source", "pcap", "--interface", dev]
            };
            let endpoint = format!("http://{BROKER_IP}:4317");
            let mut args = [source.as_slice(), &["--ports", "9092", "--json"]].concat();
            // --duration only bounds a run whose signal got lost.
            args.extend(["--duration", "9", "--otlp", "--otlp-protocol", "grpc"]);
            args.extend(["--otlp-endpoint", &endpoint]);
            if !cidrs.is_empty() {
                args.extend(["--cluster-cidrs", cidrs]);
            }
            let stem = format!("run{i}-{service}");
            let agent = Agent::start(Spec {
                cmd,
                args: args.iter().map(|a| a.to_string()).collect(),
                netns: Some(ns),
                outputs: Outputs::Files {
                    dir: &dir,
                    stem: &stem,
                },
            })?;
            procs.push((service.to_string(), agent));
        }
        for (service, agent) in &mut procs {
            agent
                .wait_ready()
                .with_context(|| format!("{name}: {service}"))?;
        }
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
        // The last FIN/ACKs, then SIGTERM (`ip netns exec` execs kwire: the child is kwire itself).
        thread::sleep(Duration::from_secs(1));
        let mut outs = BTreeMap::new();
        for (service, agent) in procs {
            let stopped = agent.stop("TERM")?;
            if !stopped.status.success() {
                bail!("{name}: {service} exited {}", stopped.status);
            }
            outs.insert(service, AgentOut::of(&stopped)?);
        }
        thread::sleep(Duration::from_millis(500));
        let got = Received::of(&collector.received_since(from));
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
        tally.add(name, checks);
    }
    drop(collector);
    drop(net);
    tally.finish(&format!("; files in {}", dir.display()))
}
