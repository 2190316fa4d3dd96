//! The eBPF live source: loads the kernel programs of `ebpf/kwire-ebpf` with aya, attaches them at a
//! cgroup v2 directory (`cgroup_skb` egress and ingress; the cgroup2 root by default, so every pod and
//! container of the node is seen whatever its network namespace), and reads the packets they copy
//! into a ring buffer. Each packet comes with its socket's owner ([`CgroupResolver`]).
//!
//! Easy to get wrong:
//! - Probe before loading and say why not (capabilities, bpf(), cgroup2): `kwire run --source auto`
//!   falls back to libpcap on an `Err`, and the operator must learn what was missing.
//! - Attach through BPF links (kernel ≥ 5.7: aya uses them), never with a pinned or legacy
//!   `BPF_PROG_ATTACH`: a link belongs to our file descriptor, so the programs detach when the process
//!   dies, even by SIGKILL. `CgroupAttachMode::Single`: links are always multi-attach in the kernel
//!   and aya's `AllowMultiple` makes `bpf_link_create` fail with EINVAL. Several agents (or tests)
//!   on one cgroup each have their own links and do not disturb each other.
//! - cgroup_skb data starts at the IP header: [`LinkType::Raw`].
//! - Kernel timestamps are CLOCK_BOOTTIME; the offset to the wall clock is taken once at start.
//! - Bytes between two local sockets are seen at the sender's egress and at the receiver's ingress,
//!   often cut into other packets (GSO): [`Dedup`] keeps the egress view (its owner is the sender:
//!   [`LocalEnd::Src`]) and drops ingress views of bytes it already carried.
//! - Empty port list = every TCP packet (`FILTER_ALL_TCP`), as with libpcap; the engine's probe then
//!   finds Kafka. Ports can change at run time ([`LiveSource::set_ports`]): ports are inserted before
//!   the filter is switched on and removed after, so no packet of a kept port is lost in between.
//!
//! [`CgroupResolver`]: crate::attribution::CgroupResolver
//! [`Dedup`]: crate::dedup::Dedup
//! [`LinkType::Raw`]: kwire_flow::LinkType::Raw
//! [`LocalEnd::Src`]: kwire_flow::LocalEnd::Src

use std::path::PathBuf;

use crate::live::LiveSource;

/// What the eBPF source captures.
#[derive(Debug, Clone, Default)]
pub struct EbpfOptions {
    /// Broker ports (empty = every TCP port).
    pub ports: Vec<u16>,
    /// cgroup v2 directory to attach the cgroup_skb programs to (default: the cgroup v2 root).
    pub cgroup: Option<PathBuf>,
    /// Bytes copied per packet at most (the rest is counted as truncated; 0 = the most the programs
    /// copy, 512 KiB: loopback GSO packets exceed 64 KiB).
    pub snap_len: u32,
}

/// Opens the eBPF source, or says why it cannot be used here.
pub fn open(opts: &EbpfOptions) -> Result<Box<dyn LiveSource>, String> {
    #[cfg(feature = "ebpf")]
    {
        EbpfSource::open(opts).map(|s| Box::new(s) as Box<dyn LiveSource>)
    }
    #[cfg(not(feature = "ebpf"))]
    {
        let _ = opts;
        Err(
            "this kwire was built without the eBPF source (cargo feature `ebpf` of kwire-capture)"
                .to_string(),
        )
    }
}

/// Linux capability numbers (linux/capability.h).
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// What the machine offers the eBPF source, read without loading anything.
#[derive(Debug, Clone, Default)]
pub struct Probe {
    pub euid: u32,
    /// Capabilities needed and missing from the effective set (names).
    pub missing_caps: Vec<&'static str>,
    pub kernel: String,
    /// `/sys/kernel/btf/vmlinux` exists (not needed by these programs, reported for diagnosis).
    pub btf: bool,
    /// Where cgroup v2 is mounted (`/sys/fs/cgroup` on unified hosts, `/sys/fs/cgroup/unified` in
    /// systemd's hybrid mode).
    pub cgroup2: Option<PathBuf>,
}

impl Probe {
    pub fn run() -> Probe {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
        };
        let euid = field("Uid:")
            .and_then(|v| v.split_whitespace().nth(1).and_then(|u| u.parse().ok()))
            .unwrap_or(u32::MAX);
        let caps = field("CapEff:")
            .and_then(|v| u64::from_str_radix(&v, 16).ok())
            .unwrap_or(0);
        let has = |c: u32| caps & (1u64 << c) != 0;
        let mut missing_caps = Vec::new();
        // CAP_SYS_ADMIN stands in for CAP_BPF and CAP_PERFMON (kernels before 5.8 know only it).
        if !has(CAP_BPF) && !has(CAP_SYS_ADMIN) {
            missing_caps.push("CAP_BPF");
        }
        if !has(CAP_PERFMON) && !has(CAP_SYS_ADMIN) {
            missing_caps.push("CAP_PERFMON");
        }
        if !has(CAP_NET_ADMIN) {
            missing_caps.push("CAP_NET_ADMIN");
        }
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        Probe {
            euid,
            missing_caps,
            kernel,
            btf: std::path::Path::new("/sys/kernel/btf/vmlinux").exists(),
            cgroup2: cgroup2_mount(),
        }
    }
}

/// The cgroup2 mount point from /proc/self/mountinfo (the shortest, if several).
pub fn cgroup2_mount() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines()
        .filter_map(|l| {
            // mount ID, parent ID, major:minor, root, mount point, options, optional fields, "-", fstype
            let (pre, post) = l.split_once(" - ")?;
            let fstype = post.split_whitespace().next()?;
            let mount_point = pre.split_whitespace().nth(4)?;
            (fstype == "cgroup2").then(|| PathBuf::from(unescape_mount(mount_point)))
        })
        .min_by_key(|p| p.as_os_str().len())
}

/// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(feature = "ebpf")]
pub use source::EbpfSource;

#[cfg(feature = "ebpf")]
mod source {
    use std::collections::BTreeSet;
    use std::fs::File;
    use std::io;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    use std::path::{Path, PathBuf};

    use aya::maps::{Array, HashMap, MapData, PerCpuArray, RingBuf};
    use aya::programs::{CgroupAttachMode, CgroupSkb, CgroupSkbAttachType, ProgramError};
    use aya::{Ebpf, EbpfLoader};
    use kwire_ebpf_common::{
        counter, Config, PacketHeader, DIR_EGRESS, FILTER_ALL_TCP, FILTER_PORTS, HEADER_LEN,
        MAP_CONFIG, MAP_COUNTERS, MAP_EVENTS, MAP_PORTS, MAX_PORTS, MAX_SNAP, PROG_EGRESS,
        PROG_INGRESS, RING_BYTES,
    };
    use kwire_flow::{LinkType, LocalEnd, Timestamp};

    use super::{EbpfOptions, Probe};
    use crate::attribution::{CgroupResolver, ResolverStats};
    use crate::dedup::{Dedup, Hook};
    use crate::live::{LivePacket, LiveSource, SourceStats};

    /// The kernel object built by build.rs (aya-build) from ebpf/kwire-ebpf.
    static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/kwire-ebpf"));

    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

    pub struct EbpfSource {
        /// Owns the programs and their links: dropping it detaches them.
        ebpf: Ebpf,
        ring: RingBuf<MapData>,
        ports_map: HashMap<MapData, u16, u8>,
        config: Array<MapData, Config>,
        counters: PerCpuArray<MapData, u64>,
        ports: BTreeSet<u16>,
        snap_len: u32,
        cgroup_dir: PathBuf,
        cgroup_id: u64,
        is_root: bool,
        prog_ids: Vec<u32>,
        boot_to_wall_ns: i64,
        resolver: CgroupResolver,
        dedup: Dedup,
        stats: SourceStats,
        why: String,
    }

    fn fail(what: &str, probe: &Probe, e: impl std::fmt::Display) -> String {
        format!(
            "eBPF: {what}: {e} (kernel {}, euid {}, BTF {})",
            probe.kernel,
            probe.euid,
            if probe.btf { "present" } else { "absent" }
        )
    }

    impl EbpfSource {
        pub fn open(opts: &EbpfOptions) -> Result<EbpfSource, String> {
            let probe = Probe::run();
            if !probe.missing_caps.is_empty() {
                return Err(format!(
                    "eBPF: missing {} (run as root or grant CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN)",
                    probe.missing_caps.join(", ")
                ));
            }
            let Some(mount) = probe.cgroup2.clone() else {
                return Err("eBPF: no cgroup v2 file system is mounted (the cgroup_skb hooks attach to a cgroup v2 directory)".into());
            };
            match aya::sys::is_map_supported(aya::maps::MapType::RingBuf) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(fail(
                        "ring buffer maps are not supported",
                        &probe,
                        "kernel 5.8 or later needed",
                    ))
                }
                Err(e) => return Err(fail("the bpf() system call failed", &probe, e)),
            }
            match aya::sys::is_program_supported(aya::programs::ProgramType::CgroupSkb) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(fail(
                        "cgroup_skb programs are not supported",
                        &probe,
                        "kernel without CONFIG_CGROUP_BPF",
                    ))
                }
                Err(e) => return Err(fail("probing cgroup_skb programs failed", &probe, e)),
            }
            let cgroup_dir = opts.cgroup.clone().unwrap_or_else(|| mount.clone());
            let dir = File::open(&cgroup_dir)
                .map_err(|e| format!("eBPF: cannot open cgroup {}: {e}", cgroup_dir.display()))?;
            if !is_cgroup2(&dir) {
                return Err(format!(
                    "eBPF: {} is not a cgroup v2 directory (cgroup2 is mounted at {})",
                    cgroup_dir.display(),
                    mount.display()
                ));
            }
            let cgroup_id = dir
                .metadata()
                .map_err(|e| format!("eBPF: {}: {e}", cgroup_dir.display()))?
                .ino();
            let is_root = std::fs::metadata(&mount).is_ok_and(|m| m.ino() == cgroup_id);

            let mut ebpf = EbpfLoader::new()
                .load(OBJECT)
                .map_err(|e| fail("loading the eBPF object failed", &probe, e))?;
            let snap_len = if opts.snap_len == 0 || opts.snap_len > MAX_SNAP {
                MAX_SNAP
            } else {
                opts.snap_len
            };
            let mut config: Array<MapData, Config> = Array::try_from(
                ebpf.take_map(MAP_CONFIG)
                    .ok_or_else(|| format!("eBPF: no map {MAP_CONFIG} in the object"))?,
            )
            .map_err(|e| fail("config map", &probe, e))?;
            let mut ports_map: HashMap<MapData, u16, u8> = HashMap::try_from(
                ebpf.take_map(MAP_PORTS)
                    .ok_or_else(|| format!("eBPF: no map {MAP_PORTS} in the object"))?,
            )
            .map_err(|e| fail("ports map", &probe, e))?;
            let ports: BTreeSet<u16> = opts.ports.iter().copied().collect();
            if ports.len() > MAX_PORTS as usize {
                return Err(format!("eBPF: at most {MAX_PORTS} ports"));
            }
            for p in &ports {
                ports_map
                    .insert(p, 1, 0)
                    .map_err(|e| fail("setting the ports", &probe, e))?;
            }
            config
                .set(0, filter_config(&ports, snap_len), 0)
                .map_err(|e| fail("setting the config", &probe, e))?;

            let mut prog_ids = Vec::new();
            for (name, attach) in [
                (PROG_EGRESS, CgroupSkbAttachType::Egress),
                (PROG_INGRESS, CgroupSkbAttachType::Ingress),
            ] {
                let prog: &mut CgroupSkb = ebpf
                    .program_mut(name)
                    .ok_or_else(|| format!("eBPF: no program {name} in the object"))?
                    .try_into()
                    .map_err(|e: ProgramError| fail(name, &probe, e))?;
                prog.load().map_err(|e| match &e {
                    ProgramError::LoadError {
                        io_error,
                        verifier_log,
                    } => fail(
                        &format!("the verifier rejected {name}"),
                        &probe,
                        format!("{io_error}; verifier log:\n{verifier_log}"),
                    ),
                    _ => fail(&format!("loading {name}"), &probe, e),
                })?;
                prog.attach(&dir, attach, CgroupAttachMode::Single)
                    .map_err(|e| {
                        fail(
                            &format!("attaching {name} to {}", cgroup_dir.display()),
                            &probe,
                            e,
                        )
                    })?;
                if let Ok(info) = prog.info() {
                    prog_ids.push(info.id());
                }
            }
            let ring = RingBuf::try_from(
                ebpf.take_map(MAP_EVENTS)
                    .ok_or_else(|| format!("eBPF: no map {MAP_EVENTS} in the object"))?,
            )
            .map_err(|e| fail("ring buffer", &probe, e))?;
            let counters = PerCpuArray::try_from(
                ebpf.take_map(MAP_COUNTERS)
                    .ok_or_else(|| format!("eBPF: no map {MAP_COUNTERS} in the object"))?,
            )
            .map_err(|e| fail("counters", &probe, e))?;
            let caps = if probe.euid == 0 {
                "root".to_string()
            } else {
                "CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN".to_string()
            };
            let why = format!(
                "chosen: {caps}, kernel {} with BPF links and ring buffers, cgroup v2 at {}{}",
                probe.kernel,
                mount.display(),
                if probe.btf { ", BTF present" } else { "" }
            );
            Ok(EbpfSource {
                ebpf,
                ring,
                ports_map,
                config,
                counters,
                ports,
                snap_len,
                cgroup_dir,
                cgroup_id,
                is_root,
                prog_ids,
                boot_to_wall_ns: boot_to_wall_offset(),
                resolver: CgroupResolver::new(mount),
                dedup: Dedup::default(),
                stats: SourceStats::default(),
                why,
            })
        }

        /// Kernel ids of the loaded programs (as `bpftool prog` lists them).
        pub fn program_ids(&self) -> &[u32] {
            &self.prog_ids
        }

        /// The cgroup the programs are attached to, and its id.
        pub fn cgroup(&self) -> (&Path, u64) {
            (&self.cgroup_dir, self.cgroup_id)
        }

        pub fn resolver_stats(&self) -> ResolverStats {
            self.resolver.stats()
        }

        /// Kernel-side counter, summed over CPUs.
        fn counter(&self, index: u32) -> u64 {
            self.counters
                .get(&index, 0)
                .map(|v| v.iter().sum())
                .unwrap_or(0)
        }

        /// Hands over what the ring holds now, up to `max` packets.
        fn drain(&mut self, max: usize, f: &mut dyn FnMut(&LivePacket<'_>)) -> usize {
            let EbpfSource {
                ring,
                resolver,
                dedup,
                stats,
                boot_to_wall_ns,
                ..
            } = self;
            let mut handed = 0;
            // Duplicates are skipped without counting against `max`; bound the work all the same.
            let mut budget = max.saturating_mul(4).max(64);
            while handed < max && budget > 0 {
                budget -= 1;
                let Some(item) = ring.next() else { break };
                let Some(h) = PacketHeader::read(&item) else {
                    stats.kernel_drops += 1;
                    continue;
                };
                let body = &item[HEADER_LEN..];
                let data = &body[..(h.cap_len as usize).min(body.len())];
                let ts = Timestamp((h.ts_boot_ns as i64).saturating_add(*boot_to_wall_ns));
                let (hook, end) = if h.direction == DIR_EGRESS {
                    (Hook::Egress, LocalEnd::Src)
                } else {
                    (Hook::Ingress, LocalEnd::Dst)
                };
                if dedup.is_duplicate(ts, hook, data, h.wire_len) {
                    stats.duplicates += 1;
                    continue;
                }
                let who = resolver.resolve(h.cgroup_id);
                stats.packets += 1;
                stats.bytes += data.len() as u64;
                if (data.len() as u64) < u64::from(h.wire_len) {
                    stats.truncated += 1;
                }
                f(&LivePacket {
                    ts,
                    link: LinkType::Raw,
                    data,
                    orig_len: h.wire_len,
                    owner: Some((end, who)),
                });
                handed += 1;
            }
            handed
        }
    }

    fn filter_config(ports: &BTreeSet<u16>, snap_len: u32) -> Config {
        Config {
            filter: if ports.is_empty() {
                FILTER_ALL_TCP
            } else {
                FILTER_PORTS
            },
            snap_len,
        }
    }

    fn is_cgroup2(dir: &File) -> bool {
        // SAFETY: fstatfs on an open descriptor into a zeroed struct.
        unsafe {
            let mut s: libc::statfs = std::mem::zeroed();
            libc::fstatfs(dir.as_raw_fd(), &mut s) == 0 && s.f_type as i64 == CGROUP2_SUPER_MAGIC
        }
    }

    fn clock_ns(clock: libc::clockid_t) -> i64 {
        // SAFETY: clock_gettime into a zeroed timespec.
        unsafe {
            let mut t: libc::timespec = std::mem::zeroed();
            libc::clock_gettime(clock, &mut t);
            t.tv_sec as i64 * 1_000_000_000 + t.tv_nsec as i64
        }
    }

    /// CLOCK_REALTIME − CLOCK_BOOTTIME, from the tightest of a few bracketed readings.
    fn boot_to_wall_offset() -> i64 {
        let mut best = (i64::MAX, 0i64);
        for _ in 0..5 {
            let a = clock_ns(libc::CLOCK_REALTIME);
            let b = clock_ns(libc::CLOCK_BOOTTIME);
            let c = clock_ns(libc::CLOCK_REALTIME);
            let spread = c - a;
            if spread < best.0 {
                best = (spread, a + spread / 2 - b);
            }
        }
        best.1
    }

    impl LiveSource for EbpfSource {
        fn name(&self) -> &'static str {
            "ebpf"
        }

        fn describe(&self) -> String {
            let ports = if self.ports.is_empty() {
                "all TCP ports".to_string()
            } else {
                let list: Vec<String> = self.ports.iter().map(|p| p.to_string()).collect();
                format!("ports {}", list.join(","))
            };
            let scope = if self.is_root {
                " (the cgroup v2 root: every pod and container of the node)"
            } else {
                ""
            };
            format!(
                "eBPF cgroup_skb ingress+egress at {}{} (cgroup id {}), {ports}, snap {} B, ring {} MiB, programs {:?}; {}",
                self.cgroup_dir.display(),
                scope,
                self.cgroup_id,
                self.snap_len,
                RING_BYTES >> 20,
                self.prog_ids,
                self.why
            )
        }

        fn poll(
            &mut self,
            max: usize,
            timeout_ms: u32,
            f: &mut dyn FnMut(&LivePacket<'_>),
        ) -> io::Result<usize> {
            let n = self.drain(max, f);
            if n > 0 || timeout_ms == 0 || max == 0 {
                return Ok(n);
            }
            let mut pfd = libc::pollfd {
                fd: self.ring.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let timeout = i32::try_from(timeout_ms).unwrap_or(i32::MAX);
            // SAFETY: one valid pollfd.
            let r = unsafe { libc::poll(&mut pfd, 1, timeout) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    return Ok(0);
                }
                return Err(e);
            }
            Ok(self.drain(max, f))
        }

        fn stats(&self) -> SourceStats {
            let mut s = self.stats;
            s.ring_drops = self.counter(counter::RING_FULL);
            s.kernel_drops += self.counter(counter::LOAD_FAILED);
            s
        }

        fn set_ports(&mut self, ports: &[u16]) -> io::Result<()> {
            let new: BTreeSet<u16> = ports.iter().copied().collect();
            if new.len() > MAX_PORTS as usize {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("at most {MAX_PORTS} ports"),
                ));
            }
            let err = |e: aya::maps::MapError| io::Error::other(e.to_string());
            for p in new.difference(&self.ports) {
                self.ports_map.insert(p, 1, 0).map_err(err)?;
            }
            self.config
                .set(0, filter_config(&new, self.snap_len), 0)
                .map_err(err)?;
            for p in self.ports.difference(&new) {
                self.ports_map.remove(p).map_err(err)?;
            }
            self.ports = new;
            Ok(())
        }
    }

    impl Drop for EbpfSource {
        fn drop(&mut self) {
            // Detach explicitly before the maps go; the kernel would do the same on close().
            for name in [PROG_EGRESS, PROG_INGRESS] {
                if let Some(p) = self.ebpf.program_mut(name) {
                    if let Ok(p) = <&mut CgroupSkb>::try_from(p) {
                        let _ = p.unload();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mount(r"/sys/fs/cgroup"), "/sys/fs/cgroup");
        assert_eq!(unescape_mount(r"/a\040b"), "/a b");
        assert_eq!(unescape_mount(r"/a\\"), r"/a\\");
    }

    #[test]
    fn probe_reads_this_process() {
        let p = Probe::run();
        assert!(!p.kernel.is_empty());
        assert_ne!(p.euid, u32::MAX);
    }

    #[cfg(not(feature = "ebpf"))]
    #[test]
    fn without_the_feature_open_says_so() {
        let e = open(&EbpfOptions::default()).err().expect("no eBPF source");
        assert!(e.contains("feature"), "{e}");
    }
}
