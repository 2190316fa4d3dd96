//! Records and constants shared by the kernel programs (`ebpf/kwire-ebpf`, built for the BPF target)
//! and their loader (`kwire-capture`'s `ebpf` module). `no_std`, no dependencies on the kernel side;
//! the `user` feature adds `aya::Pod` so the loader can put these types in maps.
//!
//! Easy to get wrong: every type here is `#[repr(C)]` with explicit padding and 8-byte alignment
//! (ring buffer records start 8-aligned), and both sides must agree on it byte for byte: change a
//! field here, and both the kernel object and the loader are rebuilt from this one definition. Map
//! names are strings in the object file: the loader finds maps and programs by these names.

#![no_std]

/// Name of the ring buffer map the programs copy packets into.
pub const MAP_EVENTS: &str = "EVENTS";
/// Name of the hash map of captured TCP ports (key: port in host byte order, value: 1).
pub const MAP_PORTS: &str = "PORTS";
/// Name of the one-entry array holding [`Config`].
pub const MAP_CONFIG: &str = "CONFIG";
/// Name of the per-CPU array of counters (indices in [`counter`]).
pub const MAP_COUNTERS: &str = "COUNTERS";
/// Program attached at the cgroup's egress hook (packets leaving a socket of the cgroup).
pub const PROG_EGRESS: &str = "kwire_egress";
/// Program attached at the cgroup's ingress hook (packets arriving at a socket of the cgroup).
pub const PROG_INGRESS: &str = "kwire_ingress";

/// Default ring buffer size (a power of two of pages); the loader may change it before loading.
pub const RING_BYTES: u32 = 32 << 20;
/// Most ports the filter holds.
pub const MAX_PORTS: u32 = 1024;
/// The largest packet copy. Packets seen at cgroup hooks are GSO super-packets, not wire frames: on
/// loopback with BIG TCP (Linux 6.3+) an IPv4 packet can exceed 64 KiB (total length field 0), up to
/// the device's `tso_max_size` (512 KiB); bigger ones are truncated to this.
pub const MAX_SNAP: u32 = 512 * 1024;

/// [`Config::filter`]: capture every TCP packet.
pub const FILTER_ALL_TCP: u32 = 0;
/// [`Config::filter`]: capture TCP packets whose source or destination port is in the ports map.
pub const FILTER_PORTS: u32 = 1;

/// Run-time settings, the single entry of the config array (all zero = all TCP, default snap).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// [`FILTER_ALL_TCP`] or [`FILTER_PORTS`].
    pub filter: u32,
    /// Bytes copied per packet at most (0 or more than [`MAX_SNAP`] = [`MAX_SNAP`]).
    pub snap_len: u32,
}

/// [`PacketHeader::direction`]: seen leaving a local socket (cgroup_skb egress).
pub const DIR_EGRESS: u32 = 0;
/// [`PacketHeader::direction`]: seen arriving at a local socket (cgroup_skb ingress).
pub const DIR_INGRESS: u32 = 1;

/// What precedes every packet in the ring buffer; `cap_len` packet bytes follow, starting at the IP
/// header (cgroup_skb programs see no link-layer header).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketHeader {
    /// `bpf_ktime_get_boot_ns()`: CLOCK_BOOTTIME nanoseconds (the loader converts to wall clock).
    pub ts_boot_ns: u64,
    /// `bpf_skb_cgroup_id()`: cgroup v2 id of the socket's cgroup (= inode of its directory).
    pub cgroup_id: u64,
    /// `bpf_get_socket_cookie()`: the local socket's cookie (stable for the socket's life).
    pub socket_cookie: u64,
    /// Length of the packet (IP header included) as the hook saw it.
    pub wire_len: u32,
    /// Bytes that follow this header (≤ wire_len, ≤ snap length).
    pub cap_len: u32,
    /// [`DIR_EGRESS`] or [`DIR_INGRESS`].
    pub direction: u32,
    /// Explicit padding (keeps the size a multiple of 8).
    pub _pad: u32,
}

/// Size of [`PacketHeader`] in the ring buffer.
pub const HEADER_LEN: usize = core::mem::size_of::<PacketHeader>();

const _: () = assert!(HEADER_LEN == 40);
const _: () = assert!(core::mem::size_of::<Config>() == 8);

impl PacketHeader {
    /// Reads a header from the start of a ring buffer record (None when too short). Unaligned-safe.
    pub fn read(record: &[u8]) -> Option<PacketHeader> {
        if record.len() < HEADER_LEN {
            return None;
        }
        // SAFETY: the length was checked; PacketHeader is repr(C) plain integers (every bit
        // pattern valid) and read_unaligned needs no alignment.
        Some(unsafe { core::ptr::read_unaligned(record.as_ptr().cast::<PacketHeader>()) })
    }
}

/// Indices of the per-CPU counters array.
pub mod counter {
    /// TCP packets that passed the port filter.
    pub const MATCHED: u32 = 0;
    /// Packets lost because the ring buffer was full.
    pub const RING_FULL: u32 = 1;
    /// Packets lost because `bpf_skb_load_bytes` failed.
    pub const LOAD_FAILED: u32 = 2;
    /// Packets copied only in part (longer than the snap length).
    pub const TRUNCATED: u32 = 3;
    /// Number of counters.
    pub const COUNT: u32 = 4;
}

#[cfg(feature = "user")]
// SAFETY: repr(C) structs of plain integers with explicit padding: any bit pattern is valid.
unsafe impl aya::Pod for Config {}
#[cfg(feature = "user")]
// SAFETY: as above.
unsafe impl aya::Pod for PacketHeader {}
