//! The objects of one manifest set (the plain DaemonSet, a `helm template` rendering) checked against
//! the policy, `kwire run --help` and the Dockerfile; the chart's defaults against the plain manifest;
//! the collector config.
//!
//! Easy to get wrong: a hostPath's read-only flag is on the mount, not the volume; `$(VAR)` references
//! only see variables defined before them in the list.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Result;
use serde_json::Value;

use super::dockerfile::RunHelp;
use super::{get, status, strs, strs_arr, Checks, Deploy, OTEL_ENV, RUNTIME_UID};
/// What a rendering of the DaemonSet must look like.
#[derive(Clone)]
pub(super) struct Expect {
    pub(super) caps: BTreeSet<String>,
    pub(super) host_network: bool,
    pub(super) otlp: bool,
}

impl Expect {
    pub(super) fn default_values(caps: &BTreeSet<String>) -> Expect {
        Expect {
            caps: caps.clone(),
            host_network: false,
            otlp: true,
        }
    }
}

/// Checks the objects of one manifest set; returns the DaemonSet's agent container and pod spec.
/// Two checks: the policy (every problem of the small checks below, together) and the flags and
/// variables against `kwire run --help`.
pub(super) fn check_objects(
    d: &Deploy,
    docs: &[Value],
    label: &str,
    expect: Expect,
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
    let mut p = pod_policy(pod, &expect); // problems of this DaemonSet
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
    let a = Agent::of(&agent, pod);
    p.extend(agent_identity(&a, &expect));
    p.extend(host_paths(&a));
    p.extend(command_and_env(&a, &expect));
    p.extend(health_probes(&a));
    p.extend(config_file(d, docs, label, &a)?);
    let ns = ds["metadata"]["namespace"].as_str().unwrap_or("?");
    c.check(p.is_empty(), &format!("{label}: DaemonSet {ns}/{} policy (caps {}, non-root, no privileged, host paths, probes, config)", ds["metadata"]["name"].as_str().unwrap_or("?"), expect.caps.iter().cloned().collect::<Vec<_>>().join(",")), p.join("; "));
    let pending = unknown_to_kwire(&a, &d.help);
    c.check(pending.is_empty(), &format!("{label}: every flag and KWIRE_* variable is in `kwire run --help` ({} flags, {} variables)", a.args.iter().filter(|a| a.starts_with("--")).count(), a.env_names.iter().filter(|n| n.starts_with("KWIRE_")).count()), format!("{} does not know {} (the OTLP options come with the OTLP export; rebuild kwire if it has them)", d.bin.display(), pending.join(", ")));
    Ok(Some((agent, pod.clone())))
}

/// The agent container, read once: its pod, args, env and mounts.
struct Agent<'a> {
    ct: &'a Value,
    pod: &'a Value,
    args: Vec<String>,
    env: Vec<&'a Value>,
    env_names: Vec<String>,
    volumes: BTreeMap<String, &'a Value>,
    mounts: Vec<&'a Value>,
}

impl<'a> Agent<'a> {
    fn of(ct: &'a Value, pod: &'a Value) -> Agent<'a> {
        let env = strs_arr(&ct["env"]);
        let env_names = env
            .iter()
            .filter_map(|e| e["name"].as_str().map(str::to_string))
            .collect();
        Agent {
            ct,
            pod,
            args: strs(&ct["args"]),
            env,
            env_names,
            volumes: strs_arr(&pod["volumes"])
                .into_iter()
                .filter_map(|v| Some((v["name"].as_str()?.to_string(), v)))
                .collect(),
            mounts: strs_arr(&ct["volumeMounts"]),
        }
    }

    fn env_value(&self, name: &str) -> Option<String> {
        self.env
            .iter()
            .find(|e| e["name"] == name)
            .and_then(|e| e["value"].as_str())
            .map(str::to_string)
    }
}

/// The pod: host namespaces, service account token, seccomp; every container unprivileged, dropping
/// ALL capabilities, with a read-only root file system.
fn pod_policy(pod: &Value, expect: &Expect) -> Vec<String> {
    let mut p = Vec::new();
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
    if get(&pod["securityContext"], "seccompProfile.type") != "RuntimeDefault" {
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
    p
}

/// The agent's capabilities (the Dockerfile's setcap list), privilege escalation, non-root uid.
fn agent_identity(a: &Agent, expect: &Expect) -> Vec<String> {
    let mut p = Vec::new();
    let (sc, psc) = (&a.ct["securityContext"], &a.pod["securityContext"]);
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
    p
}

/// Host paths: which are mounted where, read-only; the cgroup2 tree and pod logs, nothing more.
fn host_paths(a: &Agent) -> Vec<String> {
    let mut p = Vec::new();
    let mut host_mounts = BTreeMap::new();
    for m in &a.mounts {
        let vol = a
            .volumes
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
    p
}

/// `kwire run ...`, the OpenTelemetry variables kwire reads, `--otlp` as expected, `$(VAR)` order,
/// the resource attributes, the protocol and a writable spool.
fn command_and_env(a: &Agent, expect: &Expect) -> Vec<String> {
    let mut p = Vec::new();
    let cmd = strs(&a.ct["command"]);
    if cmd != ["/usr/local/bin/kwire"] || a.args.first().map(String::as_str) != Some("run") {
        p.push(format!(
            "command/args should be /usr/local/bin/kwire run ..., found {cmd:?} {:?}",
            a.args.first()
        ));
    }
    let unknown_otel: Vec<String> = a
        .env_names
        .iter()
        .filter(|n| n.starts_with("OTEL_") && !OTEL_ENV.contains(&n.as_str()))
        .cloned()
        .collect();
    if !unknown_otel.is_empty() {
        p.push(format!(
            "OpenTelemetry variables kwire does not read: {unknown_otel:?}"
        ));
    }
    if expect.otlp != a.args.iter().any(|a| a == "--otlp") {
        p.push(format!(
            "--otlp should be {}",
            if expect.otlp { "given" } else { "absent" }
        ));
    }
    // $(VAR) references must name variables defined earlier in the list
    for (i, e) in a.env.iter().enumerate() {
        let v = e["value"].as_str().unwrap_or("");
        for part in v.split("$(").skip(1) {
            let var = part.split(')').next().unwrap_or("");
            if !a.env_names[..i].iter().any(|n| n == var) {
                p.push(format!(
                    "env {} refers to $({var}), which is not defined before it",
                    a.env_names[i]
                ));
            }
        }
    }
    if expect.otlp {
        let ra = a.env_value("OTEL_RESOURCE_ATTRIBUTES").unwrap_or_default();
        for k in [
            "k8s.node.name=$(K8S_NODE_NAME)",
            "k8s.pod.name=$(K8S_POD_NAME)",
            "k8s.namespace.name=$(K8S_NAMESPACE)",
        ] {
            if !ra.contains(k) {
                p.push(format!("OTEL_RESOURCE_ATTRIBUTES lacks {k}"));
            }
        }
        let proto = a
            .env_value("OTEL_EXPORTER_OTLP_PROTOCOL")
            .unwrap_or_default();
        if !["grpc", "http/protobuf"].contains(&proto.as_str()) {
            p.push(format!(
                "OTEL_EXPORTER_OTLP_PROTOCOL {proto:?} is neither grpc nor http/protobuf"
            ));
        }
        if let Some(spool) = a.env_value("KWIRE_OTLP_SPOOL") {
            if !a
                .mounts
                .iter()
                .any(|m| m["mountPath"].as_str() == Some(spool.as_str()) && m["readOnly"] != true)
            {
                p.push(format!("KWIRE_OTLP_SPOOL {spool} is not a writable volume (the root file system is read-only)"));
            }
        }
    }
    p
}

/// The probes hit the --health port.
fn health_probes(a: &Agent) -> Vec<String> {
    let mut p = Vec::new();
    let health_port = a
        .args
        .iter()
        .position(|a| a == "--health")
        .and_then(|i| a.args.get(i + 1))
        .and_then(|a| a.rsplit(':').next()?.parse::<u64>().ok());
    let named = strs_arr(&a.ct["ports"])
        .into_iter()
        .find(|x| x["name"] == "health")
        .and_then(|x| x["containerPort"].as_u64());
    if health_port.is_none() || health_port != named {
        p.push(format!(
            "--health port {health_port:?} differs from the container's `health` port {named:?}"
        ));
    }
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        if get(&a.ct[probe], "httpGet.path") != path {
            p.push(format!("{probe} should GET {path}"));
        }
    }
    p
}

/// The config file: mounted where KWIRE_CONFIG says, and accepted by kwire.
fn config_file(d: &Deploy, docs: &[Value], label: &str, a: &Agent) -> Result<Vec<String>> {
    let mut p = Vec::new();
    let Some(cfg) = a.env_value("KWIRE_CONFIG") else {
        return Ok(p);
    };
    let dir = Path::new(&cfg)
        .parent()
        .and_then(Path::to_str)
        .unwrap_or("");
    let key = Path::new(&cfg)
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or("");
    let m = a.mounts.iter().find(|m| m["mountPath"] == dir);
    let cm_name = m
        .and_then(|m| a.volumes.get(m["name"].as_str().unwrap_or("")))
        .and_then(|v| get(v, "configMap.name").as_str());
    let cm = docs.iter().find(|d| {
        d["kind"] == "ConfigMap" && Some(d["metadata"]["name"].as_str().unwrap_or("")) == cm_name
    });
    match cm.and_then(|cm| cm["data"][key].as_str()) {
        None => p.push(format!(
            "KWIRE_CONFIG {cfg}: no ConfigMap key {key} mounted at {dir}"
        )),
        Some(toml) => {
            let file = d.out.join(format!(
                "{}.kwire.toml",
                label.replace([' ', '/', '(', ')', '+'], "_")
            ));
            fs::write(&file, toml)?;
            let fixture = d.paths.fixtures().join("produce-acks-librdkafka-mock.pcap");
            let (ok, text) = status(
                Command::new(&d.bin)
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
    Ok(p)
}

/// The `--flags` and `KWIRE_*` variables `kwire run --help` does not list.
fn unknown_to_kwire(a: &Agent, help: &RunHelp) -> Vec<String> {
    let mut missing_flags: Vec<String> = a
        .args
        .iter()
        .filter(|a| a.starts_with("--"))
        .map(|a| a.split('=').next().unwrap_or(a).to_string())
        .filter(|f| !help.flags.contains(f))
        .collect();
    missing_flags.dedup();
    let missing_env = a
        .env_names
        .iter()
        .filter(|n| n.starts_with("KWIRE_") && !help.envs.contains(*n));
    missing_flags
        .into_iter()
        .chain(missing_env.cloned())
        .collect()
}

/// The chart's defaults run the same agent as the plain manifest.
pub(super) fn same_agent(plain: &(Value, Value), helm: &(Value, Value), c: &mut Checks) {
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

pub(super) fn check_collector(cfg: &Value, plain_docs: &[Value], c: &mut Checks) {
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
