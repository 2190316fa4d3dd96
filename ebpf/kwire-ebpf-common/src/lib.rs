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

/// Name of the ring buffer the OpenSSL uprobes copy plaintext into ([`PlainHeader`] records).
pub const MAP_PLAIN: &str = "PLAIN";
/// Name of the hash map of SSL calls in progress (key: `bpf_get_current_pid_tgid()`, value: [`SslCall`]).
pub const MAP_SSL_CALLS: &str = "SSL_CALLS";
/// Name of the LRU hash map of the last socket seen per `SSL*` (key: the pointer, value: [`SockTuple`]).
pub const MAP_SSL_SOCKS: &str = "SSL_SOCKS";
/// Uprobe at `SSL_write` entry.
pub const PROG_SSL_WRITE: &str = "kwire_ssl_write";
/// Uprobe at `SSL_write_ex` entry.
pub const PROG_SSL_WRITE_EX: &str = "kwire_ssl_write_ex";
/// Uprobe at `SSL_read` entry.
pub const PROG_SSL_READ: &str = "kwire_ssl_read";
/// Uprobe at `SSL_read_ex` entry.
pub const PROG_SSL_READ_EX: &str = "kwire_ssl_read_ex";
/// Uprobe at `SSL_free` entry: forgets the `SSL*`'s socket (a new `SSL` can get its address).
pub const PROG_SSL_FREE: &str = "kwire_ssl_free";
/// Uretprobe at the return of all four: copies what was written or read (its first chunk).
pub const PROG_SSL_RET: &str = "kwire_ssl_ret";
/// The next chunks of a long call, tail-called through [`MAP_JUMP`] (loaded, never attached).
pub const PROG_SSL_MORE: &str = "kwire_ssl_more";
/// Name of the one-slot program array holding [`PROG_SSL_MORE`].
pub const MAP_JUMP: &str = "JUMP";
/// Tracepoint program for `sock:sock_recv_length`: the socket under an SSL call in progress in the
/// same thread.
pub const PROG_SOCK_LEN: &str = "kwire_sock_len";
/// Tracepoint program for `sock:sock_send_length`: as [`PROG_SOCK_LEN`], and the binding of a write
/// made on a memory BIO (no socket in the call: asyncio, Node) to the thread's next TCP send.
pub const PROG_SOCK_SEND: &str = "kwire_sock_send";
/// Name of the hash map of writes whose socket is not known yet, per thread (value: [`Unbound`]).
pub const MAP_UNBOUND: &str = "UNBOUND";

/// Size of the plaintext ring buffer.
pub const PLAIN_RING_BYTES: u32 = 32 << 20;
/// Bytes of plaintext per ring record at most.
pub const PLAIN_CHUNK: u32 = 16 * 1024;
/// Records per SSL call at most (PLAIN_CHUNK × this = 512 KiB per call; one tail call per record
/// after the first, and the kernel allows 33); the rest is counted.
pub const PLAIN_MAX_CHUNKS: u32 = 32;
/// SSL calls in progress at once (threads inside SSL_read/SSL_write).
pub const MAX_SSL_CALLS: u32 = 16 * 1024;
/// `SSL*` objects whose socket is remembered (LRU).
pub const MAX_SSL_SOCKS: u32 = 64 * 1024;
/// Threads with a write waiting for its socket (LRU).
pub const MAX_UNBOUND: u32 = 16 * 1024;
/// A write on a memory BIO binds to the thread's first TCP send at most this long after it returned
/// (asyncio and Node send the ciphertext at once, from the same thread). 50 ms.
pub const UNBOUND_WINDOW_NS: u64 = 50_000_000;

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
    /// [`FILTER_ALL_TCP`] or [`FILTER_PORTS`] (packets and plaintext alike).
    pub filter: u32,
    /// Bytes copied per packet at most (0 or more than [`MAX_SNAP`] = [`MAX_SNAP`]).
    pub snap_len: u32,
    /// Offsets in `struct sock_common` of `skc_v6_daddr` and `skc_v6_rcv_saddr` (from the kernel's
    /// BTF; 0 = IPv6 sockets are not tied to connections). The IPv4 fields and the ports are at the
    /// start of the struct, the same on every kernel.
    pub v6_daddr_off: u32,
    pub v6_saddr_off: u32,
    /// The TLS uprobes follow only processes in this cgroup v2 (id) or below it: its depth below the
    /// root (0 = every process: the root, no filter), as `--ebpf-cgroup` scopes the packet hooks.
    pub scope_level: u32,
    pub _pad: u32,
    pub scope_cgroup_id: u64,
}

/// One end's view of a TCP connection, as read from its `struct sock`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SockTuple {
    /// Local and remote address (IPv4: the first 4 bytes).
    pub laddr: [u8; 16],
    pub raddr: [u8; 16],
    /// Local and remote port, host byte order.
    pub lport: u16,
    pub rport: u16,
    /// AF_INET (2) or AF_INET6 (10); 0 = none.
    pub family: u16,
    pub _pad: u16,
}

/// An SSL call in progress in one thread.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SslCall {
    /// The `SSL*`.
    pub ssl: u64,
    /// The application's buffer.
    pub buf: u64,
    /// `_ex` variants: where the byte count is written (`size_t *`), else 0.
    pub len_ptr: u64,
    /// [`DIR_WRITE`] or [`DIR_READ`].
    pub direction: u32,
    /// 1 when `tuple` was filled by a send/recv of this call.
    pub has_sock: u32,
    pub tuple: SockTuple,
    /// Boot-time ns of the call's last send/recv (0: none): the chunk's timestamp, so that user
    /// space can put the chunks of both ends back in causal order (a write's return, where the
    /// chunk is submitted, can come after the peer already read and answered).
    pub sock_ts: u64,
}

/// [`PlainHeader::direction`]: the application wrote (SSL_write, the local end sends).
pub const DIR_WRITE: u32 = 0;
/// [`PlainHeader::direction`]: the application read (SSL_read, the local end receives).
pub const DIR_READ: u32 = 1;
/// [`PlainHeader::direction`] of a record without bytes: the `SSL*` of `pid_tgid`'s process is the
/// connection `tuple` (the chunks of that `SSL*` that came without a socket belong to it).
pub const DIR_BIND: u32 = 2;

/// A write whose call made no send (a memory BIO: the application sends the ciphertext itself,
/// after the call), waiting in [`MAP_UNBOUND`] for the thread's next TCP send.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Unbound {
    pub ssl: u64,
    /// Boot-time ns of the write's return.
    pub ts: u64,
    /// Plaintext bytes the write took: a send of fewer bytes is not its ciphertext (TLS adds to
    /// every record), so it binds nothing.
    pub len: u64,
}

/// What precedes every plaintext chunk in the plaintext ring buffer; `len` bytes follow.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlainHeader {
    /// `bpf_ktime_get_boot_ns()` at the call's last send/recv, else at its return.
    pub ts_boot_ns: u64,
    /// `bpf_get_current_cgroup_id()`: cgroup v2 id of the calling process.
    pub cgroup_id: u64,
    /// `bpf_get_current_pid_tgid()` (tgid in the high half).
    pub pid_tgid: u64,
    /// The `SSL*` (one TLS connection of the process).
    pub ssl: u64,
    /// The connection, seen from the calling process.
    pub tuple: SockTuple,
    /// Bytes the call wrote or read in all.
    pub call_len: u32,
    /// Where this chunk starts in the call's bytes.
    pub offset: u32,
    /// Bytes that follow this header.
    pub len: u32,
    /// [`DIR_WRITE`] or [`DIR_READ`].
    pub direction: u32,
    pub _pad: u64,
}

/// Size of [`PlainHeader`] in the ring buffer.
pub const PLAIN_HEADER_LEN: usize = core::mem::size_of::<PlainHeader>();

const _: () = assert!(PLAIN_HEADER_LEN == 96);
const _: () = assert!(core::mem::size_of::<SockTuple>() == 40);

impl PlainHeader {
    /// Reads a header from the start of a ring buffer record (None when too short). Unaligned-safe.
    pub fn read(record: &[u8]) -> Option<PlainHeader> {
        if record.len() < PLAIN_HEADER_LEN {
            return None;
        }
        // SAFETY: the length was checked; PlainHeader is repr(C) plain integers (every bit pattern
        // valid) and read_unaligned needs no alignment.
        Some(unsafe { core::ptr::read_unaligned(record.as_ptr().cast::<PlainHeader>()) })
    }
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
const _: () = assert!(core::mem::size_of::<Config>() == 32);

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
    /// Plaintext chunks put in the plaintext ring.
    pub const PLAIN_CHUNKS: u32 = 4;
    /// Plaintext chunks lost because the plaintext ring was full.
    pub const PLAIN_RING_FULL: u32 = 5;
    /// SSL calls whose socket was unknown (no send/recv in the call, none remembered for the SSL*):
    /// reads are dropped, writes go out without a socket and wait for a binding ([`super::DIR_BIND`]).
    pub const PLAIN_NO_SOCK: u32 = 6;
    /// SSL calls longer than PLAIN_CHUNK × PLAIN_MAX_CHUNKS (the rest is lost).
    pub const PLAIN_TRUNCATED: u32 = 7;
    /// Chunks lost because `bpf_probe_read_user` failed (buffer paged out).
    pub const PLAIN_READ_FAILED: u32 = 8;
    /// SSL calls not followed because the calls-in-progress map was full.
    pub const SSL_CALLS_FULL: u32 = 9;
    /// Writes without a socket bound to the thread's next TCP send ([`super::DIR_BIND`] records).
    pub const PLAIN_BOUND: u32 = 10;
    /// Number of counters.
    pub const COUNT: u32 = 11;
}

#[cfg(feature = "user")]
// SAFETY: repr(C) structs of plain integers with explicit padding: any bit pattern is valid.
unsafe impl aya::Pod for Config {}
#[cfg(feature = "user")]
// SAFETY: as above.
unsafe impl aya::Pod for PacketHeader {}
#[cfg(feature = "user")]
// SAFETY: as above.
unsafe impl aya::Pod for SockTuple {}
#[cfg(feature = "user")]
// SAFETY: as above.
unsafe impl aya::Pod for SslCall {}
#[cfg(feature = "user")]
// SAFETY: as above.
unsafe impl aya::Pod for Unbound {}
