//! `cargo xtask ebpf-check`: the eBPF live source on a real kernel with real Kafka traffic.
//!
//! 1. A unique child cgroup under the cgroup2 mount; the librdkafka mock broker and confluent-kafka
//!    clients are moved into it before they exec (`sh -c 'echo $$ > cgroup.procs; exec ...'`).
//! 2. `ebpf_tap` (kwire-capture's example: the eBPF source feeding the engine) attached there with a
//!    port filter that excludes the broker (a first producer must go unseen), then switched to the
//!    broker's ports at run time, decodes the traffic; asserted: Produce and Fetch exchanges with the clients' ids and responses, every
//!    connection attributed to the child cgroup's id and path on both ends, no ring or kernel drops,
//!    ingress copies of local traffic removed, no TCP gaps.
//! 3. A holder (`ebpf_tap --mode hold`) is killed with SIGTERM, then another with SIGKILL: bpftool
//!    must then show none of its programs, links or cgroup attachments.
//! 4. Not a timed test: the same produce+fetch load (bench_load.py) captured by eBPF and by libpcap
//!    (tcpdump), numbers printed side by side.
//!
//! Easy to get wrong: under CI (env CI) or as root this FAILS when eBPF cannot load, it never skips;
//! only a non-root, non-CI run skips (it cannot create cgroups or load programs). Everything started
//! is stopped and the cgroup removed on every path (guards kill what is left in it). Attaching at a
//! child cgroup, never the root, keeps parallel tests and agents out of each other's way.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use serde_json::Value;

use crate::proc::{self, Out, Proc};
use crate::tools::{self, Paths};

const TOPIC: &str = "kw-ebpf";
const PRODUCER: &str = "kw-ebpf-producer";
const CONSUMER: &str = "kw-ebpf-consumer";
/// Produces while the port filter excludes the broker: must not be captured.
const UNSEEN: &str = "kw-ebpf-unseen";
const RECORDS: &str = "5";

pub fn ebpf_check(paths: &Paths, args: &[String]) -> Result<()> {
    let mut megabytes = 50u32;
    let mut measure = true;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--megabytes" => {
                megabytes = it
                    .next()
                    .context("--megabytes N")?
                    .parse()
                    .context("--megabytes N")?
            }
            "--no-measure" => measure = false,
            other => bail!("ebpf-check: unknown option {other} (--megabytes N, --no-measure)"),
        }
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let ci = std::env::var_os("CI").is_some();
    if !root && !ci {
        eprintln!("==> ebpf-check: SKIPPED: needs root (cgroups, BPF programs); under CI or as root it runs and must pass");
        return Ok(());
    }
    let started = Instant::now();
    eprintln!("==> ebpf-check: eBPF cgroup_skb source on real Kafka traffic in a child cgroup");
    let r = run(paths, megabytes, measure);
    match &r {
        Ok(()) => eprintln!(
            "    ebpf-check: ok in {:.0}s",
            started.elapsed().as_secs_f64()
        ),
        Err(_) => eprintln!(
            "    ebpf-check: FAILED after {:.0}s",
            started.elapsed().as_secs_f64()
        ),
    }
    r
}

fn run(paths: &Paths, megabytes: u32, measure: bool) -> Result<()> {
    let python = paths.require_python()?;
    let bpftool = bpftool()?;
    let tap = build_tap(paths)?;
    let broker_bin = tools::mockbroker_or_build(paths)?;
    let logs = paths.out().join("ebpf-check");
    let _ = fs::remove_dir_all(&logs);
    fs::create_dir_all(&logs)?;

    let cg = ChildCgroup::create()?;
    eprintln!("    child cgroup {} (id {})", cg.dir.display(), cg.id);
    let mut broker = MockBroker::start(&broker_bin, &cg, &logs.join("broker.log"))?;
    broker.command(&format!("create_topic {TOPIC} 1 1"))?;
    ensure!(
        cg.pids()?.len() == 1,
        "the mock broker is not in {} (cgroup.procs: {:?})",
        cg.dir.display(),
        cg.pids()?
    );
    let ports = broker
        .ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",");

    // 2. decode real traffic, check attribution
    let t = Instant::now();
    // Attached with a port nobody uses: the first producer must not be seen; then the filter is
    // switched to the broker's ports at run time.
    let mut tap_p = Tap::start(&tap, &cg.dir, "1", "decode", &logs.join("tap-decode.log"))?;
    eprintln!(
        "    attached: {}",
        tap_p.ready["describe"].as_str().unwrap_or("?")
    );
    let harness = paths.harness();
    let client = |action: &str, id: &str| -> Result<()> {
        let log = logs.join(format!("{id}.log"));
        let mut cmd = in_cgroup(&cg.dir, &python);
        cmd.arg(harness.join("confluent_client.py"))
            .args([
                action,
                "--topic",
                TOPIC,
                "--partitions",
                "1",
                "--count",
                RECORDS,
            ])
            .args(["--client-id", id, "--bootstrap", &broker.bootstrap])
            .current_dir(&harness)
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1");
        let mut p = Proc::spawn(id, &mut cmd, false, Out::File(&log), Out::File(&log))?;
        let st = p.wait_timeout(Duration::from_secs(60))?;
        ensure!(
            st.success(),
            "{id} failed ({st}):\n{}",
            proc::tail(&log, 20)
        );
        Ok(())
    };
    client("produce", UNSEEN)?;
    tap_p.set_ports(&ports)?;
    client("produce", PRODUCER)?;
    client("consume", CONSUMER)?;
    let (outputs, stats) = tap_p.finish()?;
    let mut jsonl = String::new();
    for v in outputs.iter().chain(std::iter::once(&stats)) {
        jsonl.push_str(&v.to_string());
        jsonl.push('\n');
    }
    fs::write(logs.join("tap-decode.jsonl"), jsonl)?;
    check_decoded(&outputs, &stats, &cg)?;
    eprintln!(
        "    decode + attribution: ok in {:.1}s ({} packets, {} ingress copies removed, {} exchanges)",
        t.elapsed().as_secs_f64(),
        stats["source"]["packets"],
        stats["source"]["duplicates"],
        outputs.iter().filter(|o| o["type"] == "exchange").count()
    );

    // 3. killed holders leave nothing attached, and do not disturb another instance on the cgroup
    let bystander = Tap::start(
        &tap,
        &cg.dir,
        &ports,
        "hold",
        &logs.join("tap-hold-bystander.log"),
    )?;
    for sig in ["TERM", "KILL"] {
        let t = Instant::now();
        kill_check(&tap, &bpftool, &cg, &ports, sig, &logs)?;
        eprintln!(
            "    SIG{sig}: programs, links and cgroup attachments gone ({:.1}s)",
            t.elapsed().as_secs_f64()
        );
    }
    let attached = cgroup_prog_ids(&bpftool, &cg.dir)?;
    let linked = linked_prog_ids(&bpftool)?;
    for id in bystander.prog_ids() {
        ensure!(
            attached.contains(&id) && linked.contains(&id),
            "another instance's program {id} was detached when the holders died"
        );
    }
    bystander.finish()?;
    eprintln!("    a second instance on the same cgroup stayed attached throughout");

    broker.stop();

    // 4. eBPF vs libpcap on the same load
    if measure {
        compare(
            paths,
            &python,
            &broker_bin,
            &tap,
            &bpftool,
            &cg,
            megabytes,
            &logs,
        )?;
    }
    drop(cg);
    Ok(())
}

/// Builds `ebpf_tap` (release: its numbers are measured) with the eBPF feature.
fn build_tap(paths: &Paths) -> Result<PathBuf> {
    let t = Instant::now();
    let st = Command::new(tools::cargo())
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "kwire-capture",
            "--features",
            "ebpf",
            "--example",
            "ebpf_tap",
        ])
        .current_dir(&paths.root)
        .status()
        .context("running cargo build --example ebpf_tap")?;
    ensure!(
        st.success(),
        "building ebpf_tap (kwire-capture --features ebpf) failed ({st}); if the eBPF toolchain is missing: run `cargo xtask setup`"
    );
    if t.elapsed() > Duration::from_secs(5) {
        eprintln!("    built ebpf_tap in {:.0}s", t.elapsed().as_secs_f64());
    }
    Ok(paths.target_dir().join("release/examples/ebpf_tap"))
}

fn bpftool() -> Result<PathBuf> {
    proc::which("bpftool")
        .or_else(|| Some(PathBuf::from("/usr/sbin/bpftool")).filter(|p| p.is_file()))
        .ok_or_else(|| anyhow!("bpftool not found: run `cargo xtask setup` (as root: apt bpftool)"))
}

/// `program args...` run after moving itself into `cg` (so everything it starts is in there too).
pub(crate) fn in_cgroup(cg: &Path, program: &Path) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"echo $$ > "$KWIRE_CGROUP/cgroup.procs" && exec "$@""#)
        .arg("sh")
        .arg(program)
        .env("KWIRE_CGROUP", cg);
    cmd
}

/// A cgroup made for this run; on drop everything left in it is killed and it is removed.
pub(crate) struct ChildCgroup {
    pub(crate) dir: PathBuf,
    /// cgroup v2 id: the directory's inode number.
    id: u64,
    /// path relative to the cgroup2 mount, as the source reports it
    rel: String,
}

impl ChildCgroup {
    pub(crate) fn create() -> Result<ChildCgroup> {
        let mount = kwire_capture::ebpf::cgroup2_mount()
            .ok_or_else(|| anyhow!("no cgroup2 file system mounted (see /proc/self/mountinfo)"))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!("kwire-ebpf-check-{}-{nanos}", std::process::id());
        let dir = mount.join(&name);
        fs::create_dir(&dir).with_context(|| format!("creating cgroup {}", dir.display()))?;
        let id = fs::metadata(&dir)?.ino();
        Ok(ChildCgroup {
            dir,
            id,
            rel: format!("/{name}"),
        })
    }

    fn pids(&self) -> Result<Vec<u32>> {
        let s = fs::read_to_string(self.dir.join("cgroup.procs"))?;
        Ok(s.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }
}

impl Drop for ChildCgroup {
    fn drop(&mut self) {
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            let pids = self.pids().unwrap_or_default();
            if pids.is_empty() || Instant::now() >= end {
                break;
            }
            if fs::write(self.dir.join("cgroup.kill"), "1").is_err() {
                for p in pids {
                    // SAFETY: kill(2) on pids read from our own cgroup.
                    unsafe { libc::kill(p as i32, libc::SIGKILL) };
                }
            }
            thread::sleep(Duration::from_millis(50));
        }
        for _ in 0..40 {
            if fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "    warning: could not remove cgroup {}",
            self.dir.display()
        );
    }
}

/// kwire-mockbroker started inside the cgroup.
struct MockBroker {
    proc: Proc,
    bootstrap: String,
    ports: Vec<u16>,
}

impl MockBroker {
    fn start(bin: &Path, cg: &ChildCgroup, log: &Path) -> Result<MockBroker> {
        let mut cmd = in_cgroup(&cg.dir, bin);
        cmd.args(["--brokers", "1"]);
        let proc = Proc::spawn(
            "kwire-mockbroker",
            &mut cmd,
            true,
            Out::Lines,
            Out::File(log),
        )?;
        let line = proc::wait_for_line(
            proc.stdout.as_ref().expect("piped"),
            Duration::from_secs(20),
            "kwire-mockbroker's BOOTSTRAP line",
            |l| l.starts_with("BOOTSTRAP "),
            |_| {},
        )
        .with_context(|| format!("mock broker did not start:\n{}", proc::tail(log, 20)))?;
        let bootstrap = line.trim_start_matches("BOOTSTRAP ").trim().to_string();
        let ports = bootstrap
            .split(',')
            .map(|hp| hp.rsplit(':').next().unwrap_or("").parse::<u16>())
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("bad bootstrap {bootstrap:?}"))?;
        Ok(MockBroker {
            proc,
            bootstrap,
            ports,
        })
    }

    fn command(&mut self, line: &str) -> Result<String> {
        crate::broker::mock_line(&mut self.proc, line, Duration::from_secs(10))
    }

    fn stop(mut self) {
        if let Some(mut stdin) = self.proc.stdin.take() {
            use std::io::Write;
            let _ = stdin.write_all(b"quit\n");
        }
        let _ = self.proc.wait_timeout(Duration::from_secs(5));
    }
}

/// A running `ebpf_tap`.
struct Tap {
    proc: Proc,
    ready: Value,
    log: PathBuf,
    /// outputs read while waiting for an answer to a command
    early: Vec<Value>,
}

impl Tap {
    fn start(bin: &Path, cg: &Path, ports: &str, mode: &str, log: &Path) -> Result<Tap> {
        let mut cmd = Command::new(bin);
        cmd.arg("--cgroup")
            .arg(cg)
            .args(["--ports", ports, "--mode", mode]);
        let proc = Proc::spawn("ebpf_tap", &mut cmd, true, Out::Lines, Out::File(log))?;
        let line = proc::wait_for_line(
            proc.stdout.as_ref().expect("piped"),
            Duration::from_secs(30),
            "ebpf_tap's READY line",
            |l| l.starts_with("READY "),
            |_| {},
        )
        .with_context(|| {
            format!(
                "the eBPF source did not load and attach:\n{}",
                proc::tail(log, 40)
            )
        })?;
        let ready: Value = serde_json::from_str(line.trim_start_matches("READY "))?;
        Ok(Tap {
            proc,
            ready,
            log: log.to_path_buf(),
            early: Vec::new(),
        })
    }

    /// Changes the kernel's port filter of the running tap (`EbpfSource::set_ports`).
    fn set_ports(&mut self, ports: &str) -> Result<()> {
        use std::io::Write;
        let stdin = self.proc.stdin.as_mut().context("ebpf_tap stdin closed")?;
        writeln!(stdin, "ports {ports}")?;
        stdin.flush()?;
        let rx = self.proc.stdout.as_ref().expect("piped");
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let left = end.saturating_duration_since(Instant::now());
            ensure!(!left.is_zero(), "ebpf_tap did not answer `ports {ports}`");
            let l = proc::recv_line(rx, left, "ebpf_tap's tap_ports line")?
                .ok_or_else(|| anyhow!("ebpf_tap exited:\n{}", proc::tail(&self.log, 20)))?;
            let v: Value = serde_json::from_str(&l)
                .with_context(|| format!("ebpf_tap printed a line that is not JSON: {l}"))?;
            if v["type"] == "tap_ports" {
                ensure!(
                    v["error"].is_null(),
                    "set_ports({ports}) failed: {}",
                    v["error"]
                );
                return Ok(());
            }
            self.early.push(v);
        }
    }

    fn prog_ids(&self) -> Vec<u64> {
        self.ready["prog_ids"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default()
    }

    /// Ends the tap (EOF on stdin), returns its JSON outputs and its final `tap_stats` line.
    fn finish(mut self) -> Result<(Vec<Value>, Value)> {
        drop(self.proc.stdin.take());
        let rx = self.proc.stdout.take().expect("piped");
        let mut outputs = std::mem::take(&mut self.early);
        let mut stats = None;
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            let left = end.saturating_duration_since(Instant::now());
            ensure!(!left.is_zero(), "ebpf_tap did not finish within 60s");
            let Some(l) = proc::recv_line(&rx, left, "ebpf_tap output")? else {
                break;
            };
            let v: Value = serde_json::from_str(&l)
                .with_context(|| format!("ebpf_tap printed a line that is not JSON: {l}"))?;
            if v["type"] == "tap_stats" {
                stats = Some(v);
            } else {
                outputs.push(v);
            }
        }
        let st = self.proc.wait_timeout(Duration::from_secs(10))?;
        ensure!(
            st.success(),
            "ebpf_tap failed ({st}):\n{}",
            proc::tail(&self.log, 30)
        );
        let stats = stats.ok_or_else(|| anyhow!("ebpf_tap printed no tap_stats line"))?;
        if let Some(e) = stats["poll_error"].as_str() {
            bail!("ebpf_tap: polling the ring buffer failed: {e}");
        }
        Ok((outputs, stats))
    }
}

fn check_decoded(outputs: &[Value], stats: &Value, cg: &ChildCgroup) -> Result<()> {
    let exchanges: Vec<&Value> = outputs.iter().filter(|o| o["type"] == "exchange").collect();
    for (api, client) in [("Produce", PRODUCER), ("Fetch", CONSUMER)] {
        let n = exchanges
            .iter()
            .filter(|e| e["api"] == api && e["client_id"] == client && !e["response_ts"].is_null())
            .count();
        ensure!(
            n > 0,
            "no answered {api} exchange from client id {client} among {} exchanges (apis: {:?})",
            exchanges.len(),
            exchanges
                .iter()
                .map(|e| format!("{}/{}", e["api"], e["client_id"]))
                .collect::<Vec<_>>()
        );
    }
    ensure!(
        !exchanges.iter().any(|e| e["client_id"] == UNSEEN),
        "{UNSEEN} produced while the port filter excluded the broker, yet was captured"
    );
    for e in &exchanges {
        for end in ["client", "broker"] {
            let id = &e[format!("{end}_cgroup_id")];
            let path = &e[format!("{end}_cgroup")];
            ensure!(
                id.as_u64() == Some(cg.id) && path.as_str() == Some(cg.rel.as_str()),
                "{} exchange of {}: {end} attributed to cgroup {id} {path}, expected {} {}",
                e["api"],
                e["client_id"],
                cg.id,
                cg.rel
            );
        }
    }
    let owners = stats["owners"].as_array().cloned().unwrap_or_default();
    ensure!(
        owners.len() == 1
            && owners[0]["cgroup_id"].as_u64() == Some(cg.id)
            && owners[0]["cgroup"].as_str() == Some(cg.rel.as_str()),
        "packets carry owners {owners:?}, expected only cgroup {} {}",
        cg.id,
        cg.rel
    );
    let src = &stats["source"];
    ensure!(
        src["packets"].as_u64().unwrap_or(0) > 0,
        "no packets: {src}"
    );
    ensure!(
        src["ring_drops"] == 0 && src["kernel_drops"] == 0 && src["truncated"] == 0,
        "the source lost packets: {src}"
    );
    // Both ends are local: every ingress view repeats an egress view and must be removed.
    ensure!(
        src["duplicates"].as_u64().unwrap_or(0) > 0,
        "no ingress copies removed although both ends are in the cgroup: {src}"
    );
    let tcp = &stats["engine"]["tcp"];
    ensure!(
        tcp["gaps"] == 0,
        "the engine saw TCP gaps in what the source delivered: {tcp}"
    );
    let kafka = &stats["engine"]["kafka"];
    ensure!(
        kafka["desyncs"] == 0 && kafka["damaged_frames"] == 0,
        "Kafka stream damage: {kafka}"
    );
    Ok(())
}

/// Program ids attached at `cg` (bpftool cgroup show).
fn cgroup_prog_ids(bpftool: &Path, cg: &Path) -> Result<Vec<u64>> {
    let out = Command::new(bpftool)
        .args(["-j", "cgroup", "show"])
        .arg(cg)
        .output()?;
    ensure!(
        out.status.success(),
        "bpftool cgroup show {}: {}",
        cg.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    Ok(v.as_array()
        .map(|a| a.iter().filter_map(|p| p["id"].as_u64()).collect())
        .unwrap_or_default())
}

/// Program ids that have a BPF link (bpftool link list).
fn linked_prog_ids(bpftool: &Path) -> Result<Vec<u64>> {
    let out = Command::new(bpftool)
        .args(["-j", "link", "list"])
        .output()?;
    ensure!(
        out.status.success(),
        "bpftool link list: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    Ok(v.as_array()
        .map(|a| a.iter().filter_map(|l| l["prog_id"].as_u64()).collect())
        .unwrap_or_default())
}

fn prog_exists(bpftool: &Path, id: u64) -> bool {
    Command::new(bpftool)
        .args(["prog", "show", "id", &id.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn kill_check(
    tap: &Path,
    bpftool: &Path,
    cg: &ChildCgroup,
    ports: &str,
    sig: &str,
    logs: &Path,
) -> Result<()> {
    let mut holder = Tap::start(
        tap,
        &cg.dir,
        ports,
        "hold",
        &logs.join(format!("tap-hold-{sig}.log")),
    )?;
    let ids = holder.prog_ids();
    ensure!(
        ids.len() == 2,
        "holder reported programs {ids:?}, expected 2"
    );
    let attached = cgroup_prog_ids(bpftool, &cg.dir)?;
    let linked = linked_prog_ids(bpftool)?;
    for id in &ids {
        ensure!(
            attached.contains(id),
            "program {id} not attached at {} (bpftool: {attached:?})",
            cg.dir.display()
        );
        ensure!(
            linked.contains(id),
            "program {id} has no BPF link (bpftool link list: {linked:?})"
        );
    }
    holder.proc.signal(sig)?;
    let st = holder.proc.wait_timeout(Duration::from_secs(10))?;
    if sig == "TERM" {
        ensure!(
            st.success(),
            "holder did not exit cleanly on SIGTERM ({st}):\n{}",
            proc::tail(&holder.log, 20)
        );
    }
    // Freeing a program after its last reference goes is deferred (RCU): poll.
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let attached = cgroup_prog_ids(bpftool, &cg.dir)?;
        let linked = linked_prog_ids(bpftool)?;
        let left: Vec<String> = ids
            .iter()
            .filter_map(|id| {
                let mut why = Vec::new();
                if attached.contains(id) {
                    why.push("attached");
                }
                if linked.contains(id) {
                    why.push("linked");
                }
                if prog_exists(bpftool, *id) {
                    why.push("loaded");
                }
                (!why.is_empty()).then(|| format!("program {id}: {}", why.join("+")))
            })
            .collect();
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= end {
            bail!(
                "after SIG{sig} of the holder, still present: {}",
                left.join(", ")
            );
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// A child started with std's Command and reaped with wait4 to read its CPU time.
struct RawChild(std::process::Child, bool);

impl RawChild {
    /// SIGINT, then wait4 (≤ 10 s): exit status and (user, system) CPU seconds.
    fn interrupt_and_reap(&mut self) -> Result<(i32, f64, f64)> {
        let pid = self.0.id() as i32;
        // SAFETY: signalling and reaping our own child.
        unsafe { libc::kill(pid, libc::SIGINT) };
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let mut status = 0;
            // SAFETY: wait4 into local status and a zeroed rusage.
            let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
            let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
            if r == pid {
                self.1 = true;
                let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
                return Ok((status, s(ru.ru_utime), s(ru.ru_stime)));
            }
            ensure!(r == 0, "wait4: {}", std::io::Error::last_os_error());
            ensure!(
                Instant::now() < end,
                "tcpdump did not exit within 10s of SIGINT"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RawChild {
    fn drop(&mut self) {
        if !self.1 {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Sets kernel.bpf_stats_enabled (programs' run time and count) for its life, then restores it.
struct BpfStats(Option<String>);

impl BpfStats {
    const PATH: &'static str = "/proc/sys/kernel/bpf_stats_enabled";
    fn enable() -> BpfStats {
        let old = fs::read_to_string(Self::PATH).ok();
        let _ = fs::write(Self::PATH, "1");
        BpfStats(old)
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            let _ = fs::write(Self::PATH, old.trim());
        }
    }
}

/// (run_time_ns, run_cnt) summed over programs.
fn prog_run_stats(bpftool: &Path, ids: &[u64]) -> (u64, u64) {
    let mut total = (0, 0);
    for id in ids {
        if let Ok(out) = Command::new(bpftool)
            .args(["-j", "prog", "show", "id", &id.to_string()])
            .output()
        {
            let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            total.0 += v["run_time_ns"].as_u64().unwrap_or(0);
            total.1 += v["run_cnt"].as_u64().unwrap_or(0);
        }
    }
    total
}

/// One run of the measurement load against a fresh mock broker in the cgroup (a broker that already
/// served one such load is much slower for the next: the comparison would measure the broker).
struct LoadRun<'a> {
    paths: &'a Paths,
    python: &'a Path,
    broker_bin: &'a Path,
    cg: &'a ChildCgroup,
    megabytes: u32,
    logs: &'a Path,
}

impl LoadRun<'_> {
    /// Starts a broker, calls `capture_start(ports)`, runs the load, calls `capture_stop`; returns the
    /// load's wall time and what the capture returned.
    fn run<C, T>(
        &self,
        tag: &str,
        capture_start: impl FnOnce(&str) -> Result<C>,
        capture_stop: impl FnOnce(C) -> Result<T>,
    ) -> Result<(f64, T)> {
        let mut broker = MockBroker::start(
            self.broker_bin,
            self.cg,
            &self.logs.join(format!("broker-{tag}.log")),
        )?;
        // The mock keeps about 5 MB per partition (older segments are deleted): spread the load so
        // that everything produced can still be fetched back.
        let partitions = (self.megabytes / 3).max(1) + 1;
        broker.command(&format!("create_topic kw-ebpf-bench {partitions} 1"))?;
        let ports = broker
            .ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let capture = capture_start(&ports)?;
        let log = self.logs.join(format!("load-{tag}.log"));
        let mut cmd = in_cgroup(&self.cg.dir, self.python);
        cmd.arg(self.paths.harness().join("bench_load.py"))
            .args(["--bootstrap", &broker.bootstrap, "--topic", "kw-ebpf-bench"])
            .args(["--partitions", &partitions.to_string()])
            .args(["--megabytes", &self.megabytes.to_string()])
            .current_dir(self.paths.harness())
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1");
        let t = Instant::now();
        let mut p = Proc::spawn(
            "bench_load.py",
            &mut cmd,
            false,
            Out::File(&log),
            Out::File(&log),
        )?;
        let st = p.wait_timeout(Duration::from_secs(300))?;
        let load_s = t.elapsed().as_secs_f64();
        ensure!(
            st.success(),
            "bench_load.py failed ({st}):\n{}",
            proc::tail(&log, 20)
        );
        let out = capture_stop(capture)?;
        broker.stop();
        Ok((load_s, out))
    }
}

/// tcpdump's "N packets captured" and "N packets dropped by kernel" lines.
fn tcpdump_counters(stderr: &std::sync::mpsc::Receiver<String>) -> (u64, u64) {
    let (mut captured, mut dropped) = (0u64, 0u64);
    while let Ok(Some(l)) = proc::recv_line(stderr, Duration::from_secs(2), "tcpdump counters") {
        let n = l
            .split_whitespace()
            .next()
            .and_then(|w| w.parse::<u64>().ok())
            .unwrap_or(0);
        if l.contains("packets captured") {
            captured = n;
        } else if l.contains("dropped by kernel") {
            dropped = n;
        }
    }
    (captured, dropped)
}

#[allow(clippy::too_many_arguments)]
fn compare(
    paths: &Paths,
    python: &Path,
    broker_bin: &Path,
    tap: &Path,
    bpftool: &Path,
    cg: &ChildCgroup,
    megabytes: u32,
    logs: &Path,
) -> Result<()> {
    eprintln!("    measuring: {megabytes} MB produced and fetched back (bench_load.py) four times: no capture, eBPF, eBPF + decoding, libpcap");
    let runs = LoadRun {
        paths,
        python,
        broker_bin,
        cg,
        megabytes,
        logs,
    };
    let (base_s, ()) = runs.run("baseline", |_| Ok(()), |()| Ok(()))?;

    // eBPF: count mode (capture, dedup, attribution; no Kafka decoding)
    let bpf_stats = BpfStats::enable();
    let (ebpf_s, (stats, run_ns, run_cnt)) = runs.run(
        "ebpf",
        |ports| Tap::start(tap, &cg.dir, ports, "count", &logs.join("tap-count.log")),
        |tap_p| {
            let (run_ns, run_cnt) = prog_run_stats(bpftool, &tap_p.prog_ids());
            let (_, stats) = tap_p.finish()?;
            Ok((stats, run_ns, run_cnt))
        },
    )?;
    drop(bpf_stats);
    let s = &stats["source"];
    let cpu = stats["cpu_s"]["user"].as_f64().unwrap_or(0.0)
        + stats["cpu_s"]["system"].as_f64().unwrap_or(0.0);
    let bytes = s["bytes"].as_u64().unwrap_or(0);
    let gb = bytes as f64 / 1e9;

    // eBPF + the engine: what the agent costs when it also decodes Kafka
    let (dec_s, dec) = runs.run(
        "ebpf-decode",
        |ports| {
            Tap::start(
                tap,
                &cg.dir,
                ports,
                "decode",
                &logs.join("tap-decode-load.log"),
            )
        },
        |tap_p| {
            tap_p
                .finish()
                .map(|(outputs, stats)| (outputs.len(), stats))
        },
    )?;
    let (dec_outputs, dec_stats) = dec;
    let dec_cpu = dec_stats["cpu_s"]["user"].as_f64().unwrap_or(0.0)
        + dec_stats["cpu_s"]["system"].as_f64().unwrap_or(0.0);
    let dec_gb = dec_stats["source"]["bytes"].as_u64().unwrap_or(0) as f64 / 1e9;

    // libpcap: tcpdump on lo with the same ports, bulk ring (no immediate mode), to /dev/null
    let tcpdump = tools::require_tcpdump()?;
    let (pcap_s, (captured, dropped, pcap_cpu)) = runs.run(
        "pcap",
        |ports| {
            let filter = ports
                .split(',')
                .map(|p| format!("tcp port {p}"))
                .collect::<Vec<_>>()
                .join(" or ");
            let mut cmd = Command::new(&tcpdump);
            // -B 64 MiB: about the eBPF ring's size (a 1 GiB buffer costs seconds of CPU to set up)
            cmd.args([
                "-i",
                "lo",
                "-s",
                "0",
                "-B",
                "65536",
                "-n",
                "-w",
                "/dev/null",
                &filter,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
            let mut child = RawChild(cmd.spawn().context("starting tcpdump")?, false);
            let stderr = proc_lines(child.0.stderr.take().expect("piped"));
            proc::wait_for_line(
                &stderr,
                Duration::from_secs(10),
                "tcpdump's \"listening on\"",
                |l| l.contains("listening on"),
                |_| {},
            )?;
            Ok((child, stderr))
        },
        |(mut child, stderr)| {
            thread::sleep(Duration::from_millis(300));
            let (_, user, sys) = child.interrupt_and_reap()?;
            let (captured, dropped) = tcpdump_counters(&stderr);
            Ok((captured, dropped, user + sys))
        },
    )?;

    println!("ebpf-check measurement: {megabytes} MB of 1000-byte records produced (acks=1) and fetched back by confluent-kafka through the librdkafka mock, all on loopback, a fresh broker per run:");
    println!("  no capture : load {base_s:.1}s");
    println!(
        "  eBPF       : load {ebpf_s:.1}s  {} packets, {:.1} MB delivered, {} ingress copies removed, ring drops {}, kernel drops {}; agent CPU {:.2}s ({:.2} s/GB); kernel programs {:.3}s over {} runs ({:.1} us/run)",
        s["packets"],
        bytes as f64 / 1e6,
        s["duplicates"],
        s["ring_drops"],
        s["kernel_drops"],
        cpu,
        if gb > 0.0 { cpu / gb } else { 0.0 },
        run_ns as f64 / 1e9,
        run_cnt,
        if run_cnt > 0 { run_ns as f64 / run_cnt as f64 / 1e3 } else { 0.0 },
    );
    println!(
        "  eBPF+decode: load {dec_s:.1}s  {} packets, ring drops {}; agent CPU {dec_cpu:.2}s ({:.2} s/GB), {dec_outputs} outputs, {} requests, {} gaps",
        dec_stats["source"]["packets"],
        dec_stats["source"]["ring_drops"],
        if dec_gb > 0.0 { dec_cpu / dec_gb } else { 0.0 },
        dec_stats["engine"]["kafka"]["requests"],
        dec_stats["engine"]["tcp"]["gaps"],
    );
    println!(
        "  libpcap    : load {pcap_s:.1}s  {captured} packets (tcpdump -i lo -B 64MiB -w /dev/null), dropped by kernel {dropped}; tcpdump CPU {pcap_cpu:.2}s"
    );
    ensure!(
        s["packets"].as_u64().unwrap_or(0) > 0,
        "eBPF captured nothing of the load"
    );
    Ok(())
}

fn proc_lines(r: std::process::ChildStderr) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for l in std::io::BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}
