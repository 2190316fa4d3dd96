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
//! - TLS plaintext (`EbpfOptions::tls_uprobes`): uprobes on OpenSSL's `SSL_write`/`SSL_read` (and
//!   `_ex`) in every file found mapped by a process ([`crate::tls`]), attached once per file by
//!   offset (local `.symtab` symbols included) for every process, and found again every
//!   `tls_rescan` for processes started or libraries loaded later; two `sock` tracepoints tie each
//!   call to its TCP connection. Chunks come out of their own ring as [`LivePacket`]s with `plain`
//!   set. Uprobes are perf-event links owned by our descriptors: they go with the process, SIGKILL
//!   included. A process that loads OpenSSL and talks within one rescan interval can lose its first
//!   exchanges (the Kafka stage then joins mid-stream).
//!
//! Why this file is long: the `source` module owns aya's loaded object and every map and ring it reads
//! (packets, plaintext, counters, the port filter) as one struct, and each of its parts needs them all;
//! the TLS file discovery and symbol offsets already live apart (`crate::tls`). The next split is the
//! plaintext ring reader and its reordering buffer into their own module.
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
    /// Attach the OpenSSL uprobes (TLS plaintext).
    pub tls_uprobes: bool,
    /// Files to attach at start besides those found mapped (libssl, a static librdkafka, ...).
    pub tls_libs: Vec<PathBuf>,
    /// How often running processes are scanned for new OpenSSL files (0 = every second).
    pub tls_rescan_ms: u64,
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
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    use aya::maps::{Array, HashMap, MapData, PerCpuArray, ProgramArray, RingBuf};
    use aya::programs::uprobe::UProbeScope;
    use aya::programs::{
        CgroupAttachMode, CgroupSkb, CgroupSkbAttachType, ProgramError, TracePoint, UProbe,
    };
    use aya::{Ebpf, EbpfLoader};
    use kwire_ebpf_common::{
        counter, Config, PacketHeader, PlainHeader, SockTuple, DIR_BIND, DIR_EGRESS, DIR_WRITE,
        FILTER_ALL_TCP, FILTER_PORTS, HEADER_LEN, MAP_CONFIG, MAP_COUNTERS, MAP_EVENTS, MAP_JUMP,
        MAP_PLAIN, MAP_PORTS, MAX_PORTS, MAX_SNAP, PLAIN_HEADER_LEN, PROG_EGRESS, PROG_INGRESS,
        PROG_SOCK_LEN, PROG_SOCK_SEND, PROG_SSL_FREE, PROG_SSL_MORE, PROG_SSL_READ,
        PROG_SSL_READ_EX, PROG_SSL_RET, PROG_SSL_WRITE, PROG_SSL_WRITE_EX, RING_BYTES,
    };
    use kwire_flow::{Endpoint, LinkType, LocalEnd, Timestamp};

    use super::{EbpfOptions, Probe};
    use crate::attribution::{CgroupResolver, ResolverStats};
    use crate::dedup::{Dedup, Hook};
    use crate::live::{LivePacket, LiveSource, Plain, SourceStats};
    use crate::tls;

    /// Entry programs in the order of [`tls::SSL_FUNCS`] (all but the last have the return probe).
    const SSL_ENTRY_PROGS: [&str; 5] = [
        PROG_SSL_WRITE,
        PROG_SSL_WRITE_EX,
        PROG_SSL_READ,
        PROG_SSL_READ_EX,
        PROG_SSL_FREE,
    ];
    /// `struct sock_common` offsets of `skc_v6_daddr` and `skc_v6_rcv_saddr` on x86_64 Linux 5.x-6.x,
    /// used when the kernel has no BTF to read them from (`v6_offsets`); the IPv4 fields before them
    /// never moved.
    const V6_DADDR_OFF: u32 = 56;
    const V6_SADDR_OFF: u32 = 72;

    /// Where the running kernel's `struct sock_common` keeps the IPv6 addresses (`skc_v6_daddr`,
    /// `skc_v6_rcv_saddr`), read from its BTF (/sys/kernel/btf/vmlinux, mapped, not parsed whole);
    /// the x86_64 defaults without BTF or without those members (a kernel without IPv6).
    pub(super) fn v6_offsets() -> ((u32, u32), &'static str) {
        btf_v6_offsets().map_or(((V6_DADDR_OFF, V6_SADDR_OFF), "defaults"), |o| (o, "BTF"))
    }

    fn btf_v6_offsets() -> Option<(u32, u32)> {
        let btf =
            btf_rs::Btf::from_file_with_backend("/sys/kernel/btf/vmlinux", btf_rs::Backend::Mmap)
                .ok()?;
        let types = btf.resolve_types_by_name("sock_common").ok()?;
        let s = types.iter().find_map(|t| match t {
            btf_rs::Type::Struct(s) => Some(s),
            _ => None,
        })?;
        let (mut daddr, mut saddr) = (None, None);
        for m in &s.members {
            // Anonymous members (the unions before them) have no name: skipped.
            match btf.resolve_name(m).unwrap_or_default().as_str() {
                "skc_v6_daddr" => daddr = Some(m.bit_offset() / 8),
                "skc_v6_rcv_saddr" => saddr = Some(m.bit_offset() / 8),
                _ => {}
            }
        }
        Some((daddr?, saddr?))
    }

    /// Plaintext chunks are held this long (wall time since their send/recv) and handed over in
    /// timestamp order: the two ends of a connection submit their chunks when their calls return,
    /// which under load can be after the peer already read and answered. 200 ms.
    const PLAIN_HOLD_NS: i64 = 200_000_000;
    /// Bounds of the reorder buffer (past them the oldest chunks go out early, counted).
    const MAX_PENDING_CHUNKS: usize = 65_536;
    const MAX_PENDING_BYTES: usize = 64 << 20;

    /// A plaintext chunk waiting in the reorder buffer.
    struct Pending {
        data: Vec<u8>,
        plain: Plain,
        cgroup_id: u64,
    }

    /// The TLS uprobes' state: files looked at, what was attached, the plaintext ring.
    struct TlsState {
        ring: RingBuf<MapData>,
        /// Reorder buffer: (timestamp, arrival number) → chunk.
        pending: std::collections::BTreeMap<(i64, u64), Pending>,
        pending_bytes: usize,
        seq: u64,
        /// Chunks handed over before their hold time because the buffer was full.
        released_early: u64,
        /// (device, inode) → attached. Bounded by [`tls::MAX_FILES`].
        files: std::collections::HashMap<(u64, u64), bool>,
        scan: tls::ScanStats,
        attached: u64,
        failed: u64,
        files_bound_hit: u64,
        /// Attached files (paths as first seen), for `describe` and the check.
        libraries: Vec<String>,
        /// The first attach errors (at most 8), for the log.
        errors: Vec<String>,
        last_scan: Instant,
        rescan: Duration,
        /// Plaintext chunks and bytes handed over.
        chunks: u64,
        bytes: u64,
        /// Writes on a memory BIO waiting for their connection: (bytes, direction, cgroup id).
        binder: tls::Binder<(Vec<u8>, u32, u64)>,
    }

    impl TlsState {
        /// Puts a chunk of connection `tuple` in the reorder buffer.
        fn hold(
            &mut self,
            ts: i64,
            tuple: &SockTuple,
            direction: u32,
            cgroup_id: u64,
            data: Vec<u8>,
        ) {
            let (Some(local), Some(remote)) = (
                endpoint(tuple, tuple.laddr, tuple.lport),
                endpoint(tuple, tuple.raddr, tuple.rport),
            ) else {
                return;
            };
            let plain = if direction == DIR_WRITE {
                Plain {
                    src: local,
                    dst: remote,
                    at: LocalEnd::Src,
                }
            } else {
                Plain {
                    src: remote,
                    dst: local,
                    at: LocalEnd::Dst,
                }
            };
            self.seq += 1;
            self.pending_bytes += data.len();
            self.pending.insert(
                (ts, self.seq),
                Pending {
                    data,
                    plain,
                    cgroup_id,
                },
            );
        }
    }

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
        /// The subtree the TLS uprobes follow (that of `cgroup_dir`).
        scope: Scope,
        /// `struct sock_common` offsets of the IPv6 addresses, and where they came from.
        v6: (u32, u32),
        v6_from: &'static str,
        is_root: bool,
        prog_ids: Vec<u32>,
        boot_to_wall_ns: i64,
        resolver: CgroupResolver,
        dedup: Dedup,
        stats: SourceStats,
        why: String,
        tls: Option<TlsState>,
        /// Why the TLS uprobes asked for could not start (the packet source runs without them).
        tls_unavailable: Option<String>,
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
            let (v6, v6_from) = v6_offsets();
            let scope = if is_root {
                Scope::default()
            } else {
                Scope {
                    level: cgroup_level(&mount, &cgroup_dir)?,
                    id: cgroup_id,
                }
            };

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
                .set(0, filter_config(&ports, snap_len, scope, v6), 0)
                .map_err(|e| fail("setting the config", &probe, e))?;
            // The TLS uprobes are an addition: when they cannot start (no tracefs and no right to
            // mount it, a kernel without uprobes), the packet source runs without them and says why.
            let (tls, tls_unavailable) = if opts.tls_uprobes {
                match open_tls(&mut ebpf, opts, &probe) {
                    Ok(t) => (Some(t), None),
                    Err(e) => (None, Some(e)),
                }
            } else {
                (None, None)
            };

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
                scope,
                v6,
                v6_from,
                is_root,
                prog_ids,
                boot_to_wall_ns: boot_to_wall_offset(),
                resolver: CgroupResolver::new(mount),
                dedup: Dedup::default(),
                stats: SourceStats::default(),
                why,
                tls,
                tls_unavailable,
            })
        }

        /// Files with OpenSSL uprobes attached (paths as first seen), and attach errors.
        pub fn tls_libraries(&self) -> (&[String], &[String]) {
            match &self.tls {
                Some(t) => (&t.libraries, &t.errors),
                None => (&[], &[]),
            }
        }

        /// Scans running processes for OpenSSL files when the rescan interval has passed.
        fn maybe_rescan(&mut self) {
            let due = self
                .tls
                .as_ref()
                .is_some_and(|t| t.last_scan.elapsed() >= t.rescan);
            if due {
                rescan(&mut self.ebpf, self.tls.as_mut().expect("checked"));
            }
        }

        /// Moves what the TLS ring holds into the reorder buffer, then hands over, in timestamp
        /// order, the chunks older than [`PLAIN_HOLD_NS`] (all of them with `all`), up to `max`.
        fn drain_plain(
            &mut self,
            max: usize,
            all: bool,
            f: &mut dyn FnMut(&LivePacket<'_>),
        ) -> usize {
            let EbpfSource {
                tls,
                resolver,
                boot_to_wall_ns,
                ports,
                ..
            } = self;
            let Some(t) = tls.as_mut() else { return 0 };
            let mut taken = 0;
            while taken < max.saturating_mul(4).max(256) {
                let Some(item) = t.ring.next() else { break };
                taken += 1;
                let Some(h) = PlainHeader::read(&item) else {
                    continue;
                };
                let body = &item[PLAIN_HEADER_LEN..];
                let data = body[..(h.len as usize).min(body.len())].to_vec();
                drop(item);
                let ts = (h.ts_boot_ns as i64).saturating_add(*boot_to_wall_ns);
                // (process, SSL*): SSL pointers are per process.
                let key = ((h.pid_tgid >> 32) as u32, h.ssl);
                if h.direction == DIR_BIND {
                    let waited = t.binder.bind(key, h.tuple);
                    // The kernel's port filter saw no ports for these chunks: applied here, once.
                    let p = &h.tuple;
                    if ports.is_empty() || ports.contains(&p.lport) || ports.contains(&p.rport) {
                        for (ts, tuple, (data, direction, cgroup_id)) in waited {
                            t.hold(ts, &tuple, direction, cgroup_id, data);
                        }
                    }
                } else if h.tuple.family == 0 {
                    let n = data.len();
                    t.binder
                        .arrive(key, ts, n, (data, h.direction, h.cgroup_id));
                } else {
                    t.hold(ts, &h.tuple, h.direction, h.cgroup_id, data);
                }
            }
            let horizon = clock_ns(libc::CLOCK_REALTIME) - PLAIN_HOLD_NS;
            if all {
                t.binder.expire(i64::MAX);
            } else {
                t.binder.expire(horizon);
            }
            let mut handed = 0;
            while handed < max {
                let over =
                    t.pending.len() > MAX_PENDING_CHUNKS || t.pending_bytes > MAX_PENDING_BYTES;
                let Some(entry) = t.pending.first_entry() else {
                    break;
                };
                if !all && !over && entry.key().0 > horizon {
                    break;
                }
                if over {
                    t.released_early += 1;
                }
                let ((ts, _), p) = entry.remove_entry();
                t.pending_bytes -= p.data.len();
                let who = resolver.resolve(p.cgroup_id);
                t.chunks += 1;
                t.bytes += p.data.len() as u64;
                f(&LivePacket {
                    ts: Timestamp(ts),
                    link: LinkType::Raw,
                    data: &p.data,
                    orig_len: p.data.len() as u32,
                    owner: Some((p.plain.at, who)),
                    plain: Some(p.plain),
                });
                handed += 1;
            }
            handed
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
                    plain: None,
                });
                handed += 1;
            }
            handed
        }
    }

    /// The cgroup subtree the TLS uprobes follow: the `--ebpf-cgroup` directory's depth below the
    /// cgroup2 root and its id (level 0: the root, every process).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    struct Scope {
        level: u32,
        id: u64,
    }

    /// How deep `dir` is below the cgroup2 mount `root` (the root is 0).
    fn cgroup_level(root: &Path, dir: &Path) -> Result<u32, String> {
        let canon = |p: &Path| {
            std::fs::canonicalize(p).map_err(|e| format!("eBPF: cgroup {}: {e}", p.display()))
        };
        let (root, dir) = (canon(root)?, canon(dir)?);
        let below = dir.strip_prefix(&root).map_err(|_| {
            format!(
                "eBPF: cgroup {} is not under the cgroup2 mount {}",
                dir.display(),
                root.display()
            )
        })?;
        Ok(below.components().count() as u32)
    }

    fn filter_config(ports: &BTreeSet<u16>, snap_len: u32, scope: Scope, v6: (u32, u32)) -> Config {
        Config {
            filter: if ports.is_empty() {
                FILTER_ALL_TCP
            } else {
                FILTER_PORTS
            },
            snap_len,
            v6_daddr_off: v6.0,
            v6_saddr_off: v6.1,
            scope_level: scope.level,
            _pad: 0,
            scope_cgroup_id: scope.id,
        }
    }

    fn endpoint(t: &SockTuple, addr: [u8; 16], port: u16) -> Option<Endpoint> {
        let ip = match t.family {
            2 => IpAddr::V4(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3])),
            10 => {
                let v6 = Ipv6Addr::from(addr);
                // A v4-mapped address is the IPv4 connection the packets show.
                match v6.to_ipv4_mapped() {
                    Some(v4) => IpAddr::V4(v4),
                    None => IpAddr::V6(v6),
                }
            }
            _ => return None,
        };
        Some(Endpoint::new(ip, port))
    }

    /// tracefs must be mounted for tracepoints to be attached by name; mount it where the kernel
    /// expects it when it is not (root only; a no-op when it is).
    fn ensure_tracefs() -> Result<(), String> {
        for dir in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
            if Path::new(dir).join("events").is_dir() {
                return Ok(());
            }
        }
        let (src, dst, fs) = (c"nodev", c"/sys/kernel/tracing", c"tracefs");
        // SAFETY: mount(2) with NUL-terminated strings and no data.
        let r =
            unsafe { libc::mount(src.as_ptr(), dst.as_ptr(), fs.as_ptr(), 0, std::ptr::null()) };
        if r != 0 {
            return Err(format!(
                "tracefs is not mounted and mounting it at /sys/kernel/tracing failed: {}",
                io::Error::last_os_error()
            ));
        }
        Ok(())
    }

    fn load_err(name: &str, probe: &Probe, e: ProgramError) -> String {
        match &e {
            ProgramError::LoadError {
                io_error,
                verifier_log,
            } => fail(
                &format!("the verifier rejected {name}"),
                probe,
                format!("{io_error}; verifier log:\n{verifier_log}"),
            ),
            _ => fail(&format!("loading {name}"), probe, e),
        }
    }

    /// Loads the TLS programs, attaches the tracepoints, the files given and those found mapped.
    fn open_tls(ebpf: &mut Ebpf, opts: &EbpfOptions, probe: &Probe) -> Result<TlsState, String> {
        ensure_tracefs().map_err(|e| fail("TLS uprobes", probe, e))?;
        for name in SSL_ENTRY_PROGS
            .iter()
            .chain([&PROG_SSL_RET, &PROG_SSL_MORE])
        {
            let prog: &mut UProbe = ebpf
                .program_mut(name)
                .ok_or_else(|| format!("eBPF: no program {name} in the object"))?
                .try_into()
                .map_err(|e: ProgramError| fail(name, probe, e))?;
            prog.load().map_err(|e| load_err(name, probe, e))?;
        }
        // The continuation of long copies, tail-called through JUMP.
        let more = ebpf
            .program(PROG_SSL_MORE)
            .ok_or_else(|| format!("eBPF: no program {PROG_SSL_MORE} in the object"))?
            .fd()
            .and_then(|fd| fd.try_clone().map_err(ProgramError::from))
            .map_err(|e| fail(PROG_SSL_MORE, probe, e))?;
        let mut jump: ProgramArray<&mut MapData> = ProgramArray::try_from(
            ebpf.map_mut(MAP_JUMP)
                .ok_or_else(|| format!("eBPF: no map {MAP_JUMP} in the object"))?,
        )
        .map_err(|e| fail("JUMP map", probe, e))?;
        jump.set(0, &more, 0)
            .map_err(|e| fail("setting the JUMP map", probe, e))?;
        for (prog, event) in [
            (PROG_SOCK_SEND, "sock_send_length"),
            (PROG_SOCK_LEN, "sock_recv_length"),
        ] {
            let tp: &mut TracePoint = ebpf
                .program_mut(prog)
                .ok_or_else(|| format!("eBPF: no program {prog} in the object"))?
                .try_into()
                .map_err(|e: ProgramError| fail(prog, probe, e))?;
            tp.load().map_err(|e| load_err(prog, probe, e))?;
            tp.attach("sock", event)
                .map_err(|e| fail(&format!("attaching tracepoint sock:{event}"), probe, e))?;
        }
        let ring = RingBuf::try_from(
            ebpf.take_map(MAP_PLAIN)
                .ok_or_else(|| format!("eBPF: no map {MAP_PLAIN} in the object"))?,
        )
        .map_err(|e| fail("plaintext ring buffer", probe, e))?;
        let every = Duration::from_millis(if opts.tls_rescan_ms == 0 {
            1000
        } else {
            opts.tls_rescan_ms
        });
        let mut t = TlsState {
            ring,
            pending: std::collections::BTreeMap::new(),
            pending_bytes: 0,
            seq: 0,
            released_early: 0,
            files: std::collections::HashMap::new(),
            scan: tls::ScanStats::default(),
            attached: 0,
            failed: 0,
            files_bound_hit: 0,
            libraries: Vec::new(),
            errors: Vec::new(),
            last_scan: Instant::now(),
            rescan: every,
            chunks: 0,
            bytes: 0,
            binder: tls::Binder::default(),
        };
        for lib in &opts.tls_libs {
            let md = std::fs::metadata(lib)
                .map_err(|e| format!("eBPF: --tls-lib {}: {e}", lib.display()))?;
            let c = tls::Candidate {
                target: lib.clone(),
                path: lib.display().to_string(),
                dev: md.dev(),
                ino: md.ino(),
                pid: 0,
            };
            consider(ebpf, &mut t, c);
        }
        rescan(ebpf, &mut t);
        Ok(t)
    }

    fn rescan(ebpf: &mut Ebpf, t: &mut TlsState) {
        t.last_scan = Instant::now();
        for c in tls::scan(Path::new("/proc"), &t.files, &mut t.scan) {
            consider(ebpf, t, c);
        }
    }

    /// Looks at one file once: attaches the uprobes when it holds OpenSSL's functions.
    fn consider(ebpf: &mut Ebpf, t: &mut TlsState, c: tls::Candidate) {
        let key = (c.dev, c.ino);
        if t.files.contains_key(&key) {
            return;
        }
        if t.files.len() >= tls::MAX_FILES {
            t.files_bound_hit += 1;
            return;
        }
        let offsets = match tls::read_offsets(&c.target) {
            Ok(o) if o.usable() => o,
            Ok(_) => {
                t.files.insert(key, false);
                return;
            }
            Err(e) => {
                t.files.insert(key, false);
                note_error(t, format!("{}: {e}", c.path));
                return;
            }
        };
        if t.attached as usize >= tls::MAX_ATTACHED {
            t.files_bound_hit += 1;
            return;
        }
        t.files.insert(key, true);
        match attach_file(ebpf, &c.target, &offsets) {
            Ok(()) => {
                t.attached += 1;
                t.libraries.push(c.path);
            }
            Err(e) => {
                t.failed += 1;
                note_error(t, format!("{}: {e}", c.path));
            }
        }
    }

    fn note_error(t: &mut TlsState, e: String) {
        if t.errors.len() < 8 {
            t.errors.push(e);
        }
    }

    fn attach_file(ebpf: &mut Ebpf, target: &Path, o: &tls::SslOffsets) -> Result<(), String> {
        for (i, off) in o.0.iter().enumerate() {
            let Some(off) = *off else { continue };
            let entry = SSL_ENTRY_PROGS[i];
            // SSL_free needs no return probe: nothing to copy.
            let progs: &[&str] = if entry == PROG_SSL_FREE {
                &[entry]
            } else {
                &[entry, PROG_SSL_RET]
            };
            for &name in progs {
                let prog: &mut UProbe = ebpf
                    .program_mut(name)
                    .ok_or_else(|| format!("no program {name}"))?
                    .try_into()
                    .map_err(|e: ProgramError| e.to_string())?;
                prog.attach(off, target, UProbeScope::AllProcesses)
                    .map_err(|e| format!("{name} at {off:#x}: {e}"))?;
            }
        }
        Ok(())
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
            let tls = match &self.tls {
                Some(t) if t.attached == 0 && t.failed == 0 => {
                    "; TLS uprobes on: no OpenSSL in running processes yet (processes started later are watched)"
                        .to_string()
                }
                Some(t) => format!(
                    "; TLS uprobes on OpenSSL in {} files ({} failed): {}",
                    t.attached,
                    t.failed,
                    t.libraries.join(", ")
                ),
                None => match &self.tls_unavailable {
                    Some(why) => format!("; TLS uprobes unavailable ({why})"),
                    None => "; TLS uprobes off".to_string(),
                },
            };
            format!(
                "eBPF cgroup_skb ingress+egress at {}{} (cgroup id {}), {ports}, snap {} B, ring {} MiB, programs {:?}{tls}; {}; IPv6 socket offsets {}/{} ({})",
                self.cgroup_dir.display(),
                scope,
                self.cgroup_id,
                self.snap_len,
                RING_BYTES >> 20,
                self.prog_ids,
                self.why,
                self.v6.0,
                self.v6.1,
                self.v6_from
            )
        }

        fn poll(
            &mut self,
            max: usize,
            timeout_ms: u32,
            f: &mut dyn FnMut(&LivePacket<'_>),
        ) -> io::Result<usize> {
            self.maybe_rescan();
            let n = self.drain_plain(max, false, f) + self.drain(max, f);
            if n > 0 || timeout_ms == 0 || max == 0 {
                return Ok(n);
            }
            let mut pfds = [
                libc::pollfd {
                    fd: self.ring.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.tls.as_ref().map_or(-1, |t| t.ring.as_raw_fd()),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            let mut timeout = i32::try_from(timeout_ms).unwrap_or(i32::MAX);
            if self.tls.as_ref().is_some_and(|t| !t.pending.is_empty()) {
                // Held plaintext becomes due without any new event.
                timeout = timeout.min(20);
            }
            // SAFETY: two pollfds (a negative fd is ignored by poll(2)).
            let r = unsafe { libc::poll(pfds.as_mut_ptr(), 2, timeout) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    return Ok(0);
                }
                return Err(e);
            }
            Ok(self.drain_plain(max, false, f) + self.drain(max, f))
        }

        fn stats(&self) -> SourceStats {
            let mut s = self.stats;
            s.ring_drops = self.counter(counter::RING_FULL);
            s.kernel_drops += self.counter(counter::LOAD_FAILED);
            if let Some(t) = &self.tls {
                s.tls_libraries = t.attached;
                s.tls_attach_failed = t.failed;
                s.plaintext_chunks = t.chunks;
                s.plaintext_bytes = t.bytes;
                s.plaintext_ring_drops = self.counter(counter::PLAIN_RING_FULL);
                s.plaintext_copy_failed = self.counter(counter::PLAIN_READ_FAILED);
                s.plaintext_no_socket = self.counter(counter::PLAIN_NO_SOCK) + t.binder.dropped;
                s.plaintext_bound_by_send = t.binder.bound_chunks;
                s.plaintext_truncated_calls = self.counter(counter::PLAIN_TRUNCATED);
                s.plaintext_released_early = t.released_early;
                s.ring_drops += s.plaintext_ring_drops;
                s.kernel_drops += s.plaintext_copy_failed;
            }
            s
        }

        fn flush(&mut self, f: &mut dyn FnMut(&LivePacket<'_>)) -> usize {
            self.drain_plain(usize::MAX, true, f)
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
                .set(
                    0,
                    filter_config(&new, self.snap_len, self.scope, self.v6),
                    0,
                )
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

    /// The kernel's BTF names both IPv6 fields of `struct sock_common`, one `in6_addr` after the other
    /// past the IPv4 fields, where the probes read them.
    #[cfg(feature = "ebpf")]
    #[test]
    fn ipv6_offsets_from_this_kernels_btf() {
        if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
            return; // no BTF here: the defaults are used (and said so in the description)
        }
        let ((daddr, saddr), from) = source::v6_offsets();
        assert_eq!(from, "BTF");
        assert!(daddr >= 16, "{daddr}");
        assert_eq!(saddr, daddr + 16);
    }

    #[cfg(not(feature = "ebpf"))]
    #[test]
    fn without_the_feature_open_says_so() {
        let e = open(&EbpfOptions::default()).err().expect("no eBPF source");
        assert!(e.contains("feature"), "{e}");
    }
}
