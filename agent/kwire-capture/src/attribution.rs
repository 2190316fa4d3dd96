//! Who owns a socket, from its cgroup v2 id (what the eBPF hooks report): cgroup id → cgroup path
//! (by walking the cgroup2 mount), path → container id and Kubernetes pod UID (parsed from the names
//! container runtimes and the kubelet give cgroups), pod UID → pod name and namespace (from the
//! kubelet's `/var/log/pods/<namespace>_<name>_<uid>/` directories, when readable).
//!
//! Easy to get wrong:
//! - The cgroup id is the inode number of the cgroup's directory on the cgroup2 file system; there is
//!   no syscall from id to path, so the mount is walked. Walks are rate-limited (a cgroup that is gone
//!   never resolves, and its packets must not make us walk the tree for each one) and bounded in
//!   directories visited; the cache is bounded too and every limit is counted in [`ResolverStats`].
//! - Pod UIDs appear with underscores in systemd slice names (`kubepods-burstable-pod1a2b_3c4d.slice`)
//!   and with dashes in cgroupfs paths (`/kubepods/burstable/pod1a2b-3c4d/`): normalise to dashes.
//! - `crio-conmon-<id>.scope` is CRI-O's monitor process, not the container: never read it as one.
//! - Resolved [`Attribution`]s are shared (`Arc`): the engine keeps them per connection, so a cache
//!   eviction never invalidates what a connection already holds.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kwire_flow::Attribution;

/// Bounds of the resolver (defaults in [`ResolverLimits::default`]).
#[derive(Debug, Clone, Copy)]
pub struct ResolverLimits {
    /// Cgroup ids cached (resolved or not); when full the cache is cleared. Default 4096.
    pub max_cached: usize,
    /// Directories visited per walk of the cgroup2 mount. Default 100 000.
    pub max_walk_dirs: usize,
    /// Least time between two walks. Default 1 s.
    pub min_walk_interval: Duration,
    /// Entries of the pod log directory read per walk. Default 10 000.
    pub max_pod_dirs: usize,
}

impl Default for ResolverLimits {
    fn default() -> Self {
        ResolverLimits {
            max_cached: 4096,
            max_walk_dirs: 100_000,
            min_walk_interval: Duration::from_secs(1),
            max_pod_dirs: 10_000,
        }
    }
}

/// Counters of the resolver (monotonic).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ResolverStats {
    /// Cgroup ids looked up that were not cached.
    pub misses: u64,
    /// Walks of the cgroup2 mount.
    pub walks: u64,
    /// Walks stopped at `max_walk_dirs`.
    pub walks_truncated: u64,
    /// Lookups that found no cgroup with that id (cgroup gone, or outside the mount).
    pub unresolved: u64,
    /// Times the cache was cleared because it was full.
    pub cache_clears: u64,
}

/// Cgroup id → [`Attribution`], cached and bounded.
pub struct CgroupResolver {
    mount: PathBuf,
    pods_dir: PathBuf,
    limits: ResolverLimits,
    cache: HashMap<u64, Arc<Attribution>>,
    /// id → path relative to the mount ("/" for the root), from the last walk.
    paths: HashMap<u64, String>,
    /// pod UID → (namespace, name), from the last walk.
    pods: HashMap<String, (String, String)>,
    last_walk: Option<Instant>,
    stats: ResolverStats,
}

impl CgroupResolver {
    /// A resolver for the cgroup2 file system mounted at `mount`, reading pod names from
    /// `/var/log/pods`.
    pub fn new(mount: PathBuf) -> Self {
        Self::with(
            mount,
            PathBuf::from("/var/log/pods"),
            ResolverLimits::default(),
        )
    }

    pub fn with(mount: PathBuf, pods_dir: PathBuf, limits: ResolverLimits) -> Self {
        CgroupResolver {
            mount,
            pods_dir,
            limits,
            cache: HashMap::new(),
            paths: HashMap::new(),
            pods: HashMap::new(),
            last_walk: None,
            stats: ResolverStats::default(),
        }
    }

    pub fn stats(&self) -> ResolverStats {
        self.stats
    }

    pub fn mount(&self) -> &Path {
        &self.mount
    }

    /// The owner of cgroup `id`. Never fails: an id that cannot be resolved gives an attribution with
    /// the id alone (retried after the next walk).
    pub fn resolve(&mut self, id: u64) -> &Arc<Attribution> {
        let stale = match self.cache.get(&id) {
            Some(a) => a.cgroup.is_none() && self.may_walk(),
            None => true,
        };
        if stale {
            if !self.cache.contains_key(&id) {
                self.stats.misses += 1;
            }
            if !self.paths.contains_key(&id) && self.may_walk() {
                self.walk();
            }
            let a = self.build(id);
            if a.cgroup.is_none() {
                self.stats.unresolved += 1;
            }
            if self.cache.len() >= self.limits.max_cached && !self.cache.contains_key(&id) {
                self.cache.clear();
                self.stats.cache_clears += 1;
            }
            self.cache.insert(id, Arc::new(a));
        }
        self.cache.get(&id).expect("inserted above")
    }

    fn may_walk(&self) -> bool {
        self.last_walk
            .is_none_or(|t| t.elapsed() >= self.limits.min_walk_interval)
    }

    fn build(&self, id: u64) -> Attribution {
        let mut a = Attribution {
            cgroup_id: id,
            ..Attribution::default()
        };
        if let Some(path) = self.paths.get(&id) {
            a.container = container_id(path);
            a.pod_uid = pod_uid(path);
            if let Some((ns, name)) = a.pod_uid.as_ref().and_then(|u| self.pods.get(u)) {
                a.namespace = Some(ns.clone());
                a.pod = Some(name.clone());
            }
            a.cgroup = Some(path.clone());
        }
        a
    }

    /// Re-reads the cgroup tree and the pod directories.
    fn walk(&mut self) {
        self.last_walk = Some(Instant::now());
        self.stats.walks += 1;
        let (paths, truncated) = walk_cgroups(&self.mount, self.limits.max_walk_dirs);
        if truncated {
            self.stats.walks_truncated += 1;
        }
        self.paths = paths;
        self.pods = read_pod_dirs(&self.pods_dir, self.limits.max_pod_dirs);
    }
}

/// Directory inode → path relative to `mount` ("/" for the mount itself), at most `max_dirs`
/// directories; the flag says whether the walk stopped early.
pub fn walk_cgroups(mount: &Path, max_dirs: usize) -> (HashMap<u64, String>, bool) {
    let mut out = HashMap::new();
    let Ok(meta) = fs::metadata(mount) else {
        return (out, false);
    };
    out.insert(meta.ino(), "/".to_string());
    let mut stack = vec![(mount.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if !ft.is_dir() {
                continue;
            }
            if out.len() >= max_dirs {
                return (out, true);
            }
            let name = e.file_name().to_string_lossy().into_owned();
            let child_rel = format!("{rel}/{name}");
            if let Ok(m) = e.metadata() {
                out.insert(m.ino(), child_rel.clone());
            }
            stack.push((e.path(), child_rel));
        }
    }
    (out, false)
}

/// pod UID → (namespace, name) from the kubelet's log directories `<namespace>_<name>_<uid>`.
fn read_pod_dirs(dir: &Path, max: usize) -> HashMap<String, (String, String)> {
    let mut out = HashMap::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten().take(max) {
        if let Some((ns, name, uid)) = parse_pod_log_dir(&e.file_name().to_string_lossy()) {
            out.insert(uid.to_string(), (ns.to_string(), name.to_string()));
        }
    }
    out
}

/// `<namespace>_<name>_<uid>` (the kubelet's `/var/log/pods` entries; namespaces and pod names are
/// DNS names, so they hold no underscore) → (namespace, name, uid).
pub fn parse_pod_log_dir(name: &str) -> Option<(&str, &str, &str)> {
    let mut it = name.split('_');
    let (ns, pod, uid) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || ns.is_empty() || pod.is_empty() || !is_uid(uid) {
        return None;
    }
    Some((ns, pod, uid))
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A pod UID: a UUID (36 chars with dashes) or, for static pods, a 32-hex-digit hash.
fn is_uid(s: &str) -> bool {
    (32..=36).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
        && s.bytes().filter(|b| b.is_ascii_hexdigit()).count() == 32
}

/// The container id (64 hex digits) in a cgroup path, from the innermost component that names one:
/// `docker-<id>.scope`, `cri-containerd-<id>.scope`, `crio-<id>.scope`, `libpod-<id>.scope` (systemd
/// driver) or a bare `<id>` (cgroupfs driver: `/kubepods/besteffort/pod<uid>/<id>`, `/docker/<id>`).
pub fn container_id(path: &str) -> Option<String> {
    for comp in path.rsplit('/') {
        let base = comp.strip_suffix(".scope").unwrap_or(comp);
        let id = ["docker-", "cri-containerd-", "crio-", "libpod-"]
            .iter()
            .find_map(|p| base.strip_prefix(p))
            .unwrap_or(base);
        if is_hex64(id) {
            return Some(id.to_ascii_lowercase());
        }
    }
    None
}

/// The Kubernetes pod UID in a cgroup path, dashed: from `kubepods[-<qos>]-pod<uid>.slice` (systemd
/// driver, underscores for dashes) or a `pod<uid>` directory below a `kubepods` one (cgroupfs driver).
pub fn pod_uid(path: &str) -> Option<String> {
    let mut under_kubepods = false;
    for comp in path.split('/') {
        if let Some(slice) = comp
            .strip_prefix("kubepods")
            .and_then(|s| s.strip_suffix(".slice"))
        {
            if let Some(i) = slice.rfind("-pod") {
                let uid = slice[i + 4..].replace('_', "-");
                if is_uid(&uid) {
                    return Some(uid.to_ascii_lowercase());
                }
            }
        }
        if comp == "kubepods" || comp.starts_with("kubepods.") || comp.starts_with("kubepods-") {
            under_kubepods = true;
        }
        if under_kubepods {
            if let Some(uid) = comp.strip_prefix("pod") {
                let uid = uid.replace('_', "-");
                if is_uid(&uid) {
                    return Some(uid.to_ascii_lowercase());
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4c8f3b2a9d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a";
    const UID: &str = "0b1c2d3e-4f5a-6b7c-8d9e-0f1a2b3c4d5e";

    #[test]
    fn systemd_driver_containerd() {
        let p = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{ID}.scope",
            UID.replace('-', "_")
        );
        assert_eq!(container_id(&p).as_deref(), Some(ID));
        assert_eq!(pod_uid(&p).as_deref(), Some(UID));
    }

    #[test]
    fn systemd_driver_guaranteed_qos_crio() {
        let p = format!(
            "/kubepods.slice/kubepods-pod{}.slice/crio-{ID}.scope",
            UID.replace('-', "_")
        );
        assert_eq!(container_id(&p).as_deref(), Some(ID));
        assert_eq!(pod_uid(&p).as_deref(), Some(UID));
    }

    #[test]
    fn crio_conmon_is_not_a_container() {
        let p = format!("/kubepods.slice/kubepods-besteffort.slice/crio-conmon-{ID}.scope");
        assert_eq!(container_id(&p), None);
    }

    #[test]
    fn cgroupfs_driver() {
        let p = format!("/kubepods/besteffort/pod{UID}/{ID}");
        assert_eq!(container_id(&p).as_deref(), Some(ID));
        assert_eq!(pod_uid(&p).as_deref(), Some(UID));
        let p = format!("/kubepods/pod{UID}/{ID}");
        assert_eq!(pod_uid(&p).as_deref(), Some(UID));
    }

    #[test]
    fn docker_without_kubernetes() {
        let p = format!("/system.slice/docker-{ID}.scope");
        assert_eq!(container_id(&p).as_deref(), Some(ID));
        assert_eq!(pod_uid(&p), None);
        assert_eq!(container_id(&format!("/docker/{ID}")).as_deref(), Some(ID));
    }

    #[test]
    fn static_pod_uid_is_a_hash() {
        let p = "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0123456789abcdef0123456789abcdef.slice";
        assert_eq!(
            pod_uid(p).as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
    }

    #[test]
    fn plain_host_paths_have_neither() {
        for p in [
            "/",
            "/user.slice/user-0.slice/session-3.scope",
            "/system.slice/ssh.service",
            "/pod-not-under-kubepods",
            &format!("/notkube/pod{UID}"),
        ] {
            assert_eq!(container_id(p), None, "{p}");
            assert_eq!(pod_uid(p), None, "{p}");
        }
    }

    #[test]
    fn pod_log_dirs() {
        let name = format!("kafka_broker-0_{UID}");
        assert_eq!(parse_pod_log_dir(&name), Some(("kafka", "broker-0", UID)));
        assert_eq!(parse_pod_log_dir("kafka_broker-0"), None);
        assert_eq!(parse_pod_log_dir("a_b_c_d"), None);
        assert_eq!(parse_pod_log_dir("a_b_not-a-uid"), None);
    }

    /// A fake mount (plain directories; inode numbers play the cgroup ids) and pod log directory.
    #[test]
    fn resolver_walks_caches_and_names_pods() {
        let root = std::env::temp_dir().join(format!("kwire-attr-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let mount = root.join("cg");
        let pods = root.join("pods");
        let slice = format!(
            "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice",
            UID.replace('-', "_")
        );
        let ctr = mount
            .join(&slice)
            .join(format!("cri-containerd-{ID}.scope"));
        fs::create_dir_all(&ctr).unwrap();
        fs::create_dir_all(pods.join(format!("kafka_broker-0_{UID}"))).unwrap();
        let id = fs::metadata(&ctr).unwrap().ino();
        let root_id = fs::metadata(&mount).unwrap().ino();

        let mut r = CgroupResolver::with(mount.clone(), pods, ResolverLimits::default());
        let a = r.resolve(id).clone();
        assert_eq!(a.cgroup_id, id);
        assert_eq!(
            a.cgroup.as_deref(),
            Some(format!("/{slice}/cri-containerd-{ID}.scope").as_str())
        );
        assert_eq!(a.container.as_deref(), Some(ID));
        assert_eq!(a.pod_uid.as_deref(), Some(UID));
        assert_eq!(a.namespace.as_deref(), Some("kafka"));
        assert_eq!(a.pod.as_deref(), Some("broker-0"));
        assert_eq!(r.resolve(root_id).cgroup.as_deref(), Some("/"));
        // cached: no second walk
        r.resolve(id);
        assert_eq!(r.stats().walks, 1);
        // unknown id: attribution with the id alone, counted, no walk before the interval
        let unknown = r.resolve(u64::MAX).clone();
        assert_eq!(unknown.cgroup, None);
        assert_eq!(unknown.cgroup_id, u64::MAX);
        assert_eq!(r.stats().unresolved, 1);
        assert_eq!(r.stats().walks, 1);
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn resolver_is_bounded() {
        let root = std::env::temp_dir().join(format!("kwire-attr-bound-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for i in 0..5 {
            fs::create_dir_all(root.join(format!("d{i}/e"))).unwrap();
        }
        let (paths, truncated) = walk_cgroups(&root, 4);
        assert!(truncated);
        assert_eq!(paths.len(), 4);
        let limits = ResolverLimits {
            max_cached: 2,
            ..ResolverLimits::default()
        };
        let mut r = CgroupResolver::with(root.clone(), root.join("none"), limits);
        for id in 1..=5 {
            r.resolve(id);
        }
        assert!(r.cache.len() <= 2);
        assert!(r.stats().cache_clears >= 1);
        let _ = fs::remove_dir_all(&root);
    }
}
