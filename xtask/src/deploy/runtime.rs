//! The runtime stage's steps on this host (no container engine here): setcap on a copy of the binary,
//! getcap, its libraries, and the binary started the way runc starts the pod's process; docker when a
//! daemon answers.
//!
//! Easy to get wrong: the copies live in a directory uid 65532 can reach; the eBPF run attaches at
//! the cgroup2 root for a second (run it while no other test attaches there).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use super::dockerfile::{parse_caps, Dockerfile};
use super::{status, Checks, RUNTIME_LIBS, RUNTIME_UID};
use crate::agent::{Agent, Outputs, Spec};
use crate::proc;
use crate::tools::Paths;
/// Starts a program the way runc starts a container's process: bounding set = the added capabilities,
/// keepcaps, uid/gid 65532 without supplementary groups, permitted = effective = the added capabilities
/// (or none, with EMPTY_PERMITTED), no_new_privs when asked (allowPrivilegeEscalation: false), execve.
pub(super) const RUNC_LIKE: &str = r#"
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
pub(super) fn runtime_stage(
    paths: &Paths,
    df: &Dockerfile,
    bin: &Path,
    c: &mut Checks,
) -> Result<()> {
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
        live_as_pod(as_pod(&copy, false, false), &dir, source, mask, c)?;
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
pub(super) fn live_as_pod(
    cmd: Command,
    dir: &Path,
    source: &str,
    mask: u64,
    c: &mut Checks,
) -> Result<()> {
    let port = crate::broker::free_port()?.to_string();
    let args = [
        "--source",
        source,
        "--interface",
        "lo",
        "--ports",
        &port,
        "--duration",
        "2",
        "--json",
        "--log-format",
        "json",
    ];
    let what =
        format!("as the pod (uid {RUNTIME_UID}, file capabilities): kwire run --source {source}");
    let stem = format!("as-pod-{source}");
    let mut agent = Agent::start(Spec {
        cmd,
        args: args.iter().map(|a| a.to_string()).collect(),
        netns: None,
        outputs: Outputs::Files { dir, stem: &stem },
    })?;
    let ready = agent.wait_ready().is_ok();
    // the launcher has exec'd kwire once it answers
    let cap_eff = agent.cap_eff().filter(|_| ready);
    let stopped = agent.wait_exit()?;
    let st = stopped.status;
    let ok = st.success() && ready && cap_eff == Some(mask);
    c.check(
        ok,
        &format!("{what}: /readyz 200, CapEff {mask:#x}, exit 0"),
        format!(
            "exit {st}, ready {ready}, CapEff {cap_eff:?} (want {mask:#x}):\n{}",
            stopped
                .stderr
                .lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .join("\n")
        ),
    );
    Ok(())
}

pub(super) fn cap_number(name: &str) -> Option<u32> {
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

pub(super) fn set_mode(p: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", p.display()))
}

pub(super) struct RemoveOnDrop(PathBuf);
impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Docker: the client may be here without a daemon ("no container engine").
pub(super) fn docker_status(paths: &Paths, build: bool, c: &mut Checks) -> Result<()> {
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
