//! kwire's kernel programs: `cgroup_skb` ingress and egress hooks that keep TCP packets whose source
//! or destination port is in the `PORTS` map (or every TCP packet when the filter is off), and copy
//! each into the `EVENTS` ring buffer behind a [`PacketHeader`] (boot-time timestamp, the socket's
//! cgroup id and cookie, direction, wire and captured length). No Kafka parsing here: the agent does
//! everything else in user space.
//!
//! And the TLS plaintext programs: uprobes at the entry of OpenSSL's `SSL_write`, `SSL_write_ex`,
//! `SSL_read`, `SSL_read_ex` remember the call (`SSL*`, buffer, `_ex` byte-count pointer) per thread
//! in `SSL_CALLS` (only in processes of the configured cgroup's subtree, as `--ebpf-cgroup` scopes the
//! packet hooks); the `sock:sock_send_length` / `sock:sock_recv_length` tracepoints, fired by the
//! send or receive the call makes in the same thread, read the connection's addresses and ports
//! from the `struct sock` (and `SSL_SOCKS` remembers them per `SSL*`: a read served from OpenSSL's
//! own buffer makes no receive; a write on a memory BIO, which sends nothing itself, is bound to the
//! thread's next TCP send by `kwire_sock_send`, see there); one uretprobe, at the return of all four, copies the bytes the call
//! wrote or read into the `PLAIN` ring in chunks of at most 16 KiB behind a [`PlainHeader`], one
//! chunk per program run: the next chunk is copied by `kwire_ssl_more`, tail-called through `JUMP`.
//!
//! Easy to get wrong:
//! - Both programs always return 1 (let the packet through): kwire observes, it never drops traffic.
//! - cgroup_skb sees packets from the IP header on (no link layer); IPv6 extension headers are not
//!   walked (a TCP segment behind one is not captured), nor are IPv4 fragments after the first.
//! - The verifier wants every ring buffer reservation to have a constant size, so a packet goes into
//!   the smallest of a few fixed record classes (128 B .. 512 KiB, each 4× the last) that holds it; the copy length is
//!   re-checked against the class right before `bpf_skb_load_bytes` so the verifier can see the bound.
//! - Uprobe and uretprobe programs read `pt_regs`: the object is built for the host's architecture
//!   (x86_64 here; aya-ebpf picks the register layout at build time).
//! - The return probe reads the count at the return (`SSL_read` returns it; `_ex` variants return 1
//!   and store it through their last argument): the entry's `num` is only what the caller offered.
//! - A call longer than 32 chunks (512 KiB; the kernel allows 33 tail calls) is cut and counted; a failed copy or a full ring is
//!   counted: user space then knows the stream of that connection has a hole.
//! - Counters are per-CPU and plain increments: a program interrupted by another on the same CPU can
//!   lose one increment, never corrupt a packet (each packet has its own reservation, no shared scratch).

#![no_std]
#![no_main]

use core::ffi::c_void;
use core::ptr::addr_of_mut;

use aya_ebpf::bindings::__sk_buff;
use aya_ebpf::helpers::{
    bpf_get_current_cgroup_id, bpf_get_current_pid_tgid, bpf_get_socket_cookie,
    bpf_ktime_get_boot_ns, bpf_probe_read_kernel, bpf_probe_read_user, bpf_skb_cgroup_id,
    bpf_skb_load_bytes,
};
use aya_ebpf::macros::{cgroup_skb, map, tracepoint, uprobe, uretprobe};
use aya_ebpf::maps::{Array, HashMap, LruHashMap, PerCpuArray, ProgramArray, RingBuf};
use aya_ebpf::programs::{ProbeContext, RetProbeContext, SkBuffContext, TracePointContext};
use aya_ebpf::EbpfContext;
use kwire_ebpf_common::{
    counter, Config, PacketHeader, PlainHeader, SockTuple, SslCall, Unbound, DIR_BIND, DIR_EGRESS,
    DIR_INGRESS, DIR_READ, DIR_WRITE, FILTER_PORTS, MAX_PORTS, MAX_SNAP, MAX_SSL_CALLS,
    MAX_SSL_SOCKS, MAX_UNBOUND, PLAIN_CHUNK, PLAIN_MAX_CHUNKS, PLAIN_RING_BYTES, RING_BYTES,
    UNBOUND_WINDOW_NS,
};

#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(RING_BYTES, 0);

#[map]
static PORTS: HashMap<u16, u8> = HashMap::with_max_entries(MAX_PORTS, 0);

#[map]
static CONFIG: Array<Config> = Array::with_max_entries(1, 0);

#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

#[map]
static PLAIN: RingBuf = RingBuf::with_byte_size(PLAIN_RING_BYTES, 0);

#[map]
static SSL_CALLS: HashMap<u64, SslCall> = HashMap::with_max_entries(MAX_SSL_CALLS, 0);

#[map]
static SSL_SOCKS: LruHashMap<u64, SockTuple> = LruHashMap::with_max_entries(MAX_SSL_SOCKS, 0);

#[map]
static UNBOUND: LruHashMap<u64, Unbound> = LruHashMap::with_max_entries(MAX_UNBOUND, 0);

#[cgroup_skb(egress)]
pub fn kwire_egress(ctx: SkBuffContext) -> i32 {
    capture(&ctx, DIR_EGRESS);
    1
}

#[cgroup_skb(ingress)]
pub fn kwire_ingress(ctx: SkBuffContext) -> i32 {
    capture(&ctx, DIR_INGRESS);
    1
}

const IPPROTO_TCP: u8 = 6;

#[inline(always)]
fn bump(index: u32) {
    if let Some(p) = COUNTERS.get_ptr_mut(index) {
        // SAFETY: a valid per-CPU slot returned by the map lookup.
        unsafe { *p += 1 };
    }
}

#[inline(always)]
fn capture(ctx: &SkBuffContext, direction: u32) {
    let _ = try_capture(ctx, direction);
}

#[inline(always)]
fn try_capture(ctx: &SkBuffContext, direction: u32) -> Result<(), i64> {
    let cfg = match CONFIG.get(0) {
        Some(c) => *c,
        None => return Ok(()),
    };
    let vihl: u8 = ctx.load(0)?;
    let (l4, proto) = match vihl >> 4 {
        4 => {
            let ihl = (vihl & 0x0f) as usize * 4;
            if ihl < 20 {
                return Ok(());
            }
            let frag: [u8; 2] = ctx.load(6)?;
            if u16::from_be_bytes(frag) & 0x1fff != 0 {
                return Ok(()); // a later fragment: no TCP header here
            }
            let proto: u8 = ctx.load(9)?;
            (ihl, proto)
        }
        6 => {
            let next: u8 = ctx.load(6)?;
            (40usize, next)
        }
        _ => return Ok(()),
    };
    if proto != IPPROTO_TCP {
        return Ok(());
    }
    if cfg.filter == FILTER_PORTS {
        let ports: [u8; 4] = ctx.load(l4)?;
        let src = u16::from_be_bytes([ports[0], ports[1]]);
        let dst = u16::from_be_bytes([ports[2], ports[3]]);
        if PORTS.get_ptr(src).is_none() && PORTS.get_ptr(dst).is_none() {
            return Ok(());
        }
    }
    bump(counter::MATCHED);

    let wire_len = ctx.len();
    let snap = if cfg.snap_len == 0 || cfg.snap_len > MAX_SNAP {
        MAX_SNAP
    } else {
        cfg.snap_len
    };
    let cap_len = if wire_len > snap {
        bump(counter::TRUNCATED);
        snap
    } else {
        wire_len
    };
    let skb = ctx.skb.skb;
    // SAFETY: helpers called with the program's own context pointer.
    let hdr = unsafe {
        PacketHeader {
            ts_boot_ns: bpf_ktime_get_boot_ns(),
            cgroup_id: bpf_skb_cgroup_id(skb),
            socket_cookie: bpf_get_socket_cookie(skb.cast::<c_void>()),
            wire_len,
            cap_len,
            direction,
            _pad: 0,
        }
    };
    // 64-bit from here on: comparisons on a zero-extended 32-bit copy would not bound the register
    // the helper receives.
    let cap = u64::from(cap_len);
    if cap <= 128 {
        emit::<128>(skb, &hdr, cap);
    } else if cap <= 512 {
        emit::<512>(skb, &hdr, cap);
    } else if cap <= 2048 {
        emit::<2048>(skb, &hdr, cap);
    } else if cap <= 8192 {
        emit::<8192>(skb, &hdr, cap);
    } else if cap <= 32768 {
        emit::<32768>(skb, &hdr, cap);
    } else if cap <= 131072 {
        emit::<131072>(skb, &hdr, cap);
    } else {
        emit::<{ MAX_SNAP as usize }>(skb, &hdr, cap);
    }
    Ok(())
}

/// One ring buffer record: the header, then up to `N` packet bytes.
#[repr(C)]
struct Record<const N: usize> {
    hdr: PacketHeader,
    data: [u8; N],
}

#[inline(always)]
fn emit<const N: usize>(skb: *mut __sk_buff, hdr: &PacketHeader, cap: u64) {
    let Some(mut entry) = EVENTS.reserve::<Record<N>>(0) else {
        bump(counter::RING_FULL);
        return;
    };
    // The bound the verifier must see on the copy length: 1 ..= N. black_box keeps LLVM from
    // dropping this check as redundant with the class choice (the verifier cannot see that one).
    let len = core::hint::black_box(cap);
    if len == 0 || len > N as u64 {
        entry.discard(0);
        return;
    }
    let rec = entry.as_mut_ptr();
    // SAFETY: `rec` points at a reserved record of size_of::<Record<N>>() bytes; `len` ≤ N.
    let ret = unsafe {
        addr_of_mut!((*rec).hdr).write(*hdr);
        bpf_skb_load_bytes(
            skb.cast::<c_void>(),
            0,
            addr_of_mut!((*rec).data).cast::<c_void>(),
            len as u32,
        )
    };
    if ret != 0 {
        bump(counter::LOAD_FAILED);
        entry.discard(0);
        return;
    }
    entry.submit(0);
}

// ---------------------------------------------------------------------------------------------------
// TLS plaintext: OpenSSL uprobes.
// ---------------------------------------------------------------------------------------------------

#[uprobe]
pub fn kwire_ssl_write(ctx: ProbeContext) -> u32 {
    ssl_enter(&ctx, DIR_WRITE, false);
    0
}

#[uprobe]
pub fn kwire_ssl_write_ex(ctx: ProbeContext) -> u32 {
    ssl_enter(&ctx, DIR_WRITE, true);
    0
}

#[uprobe]
pub fn kwire_ssl_read(ctx: ProbeContext) -> u32 {
    ssl_enter(&ctx, DIR_READ, false);
    0
}

#[uprobe]
pub fn kwire_ssl_read_ex(ctx: ProbeContext) -> u32 {
    ssl_enter(&ctx, DIR_READ, true);
    0
}

/// `SSL_free`: the `SSL*` is gone, and the next `SSL` may be allocated at the same address (a client
/// closing its bootstrap connection and opening the next one): its remembered socket would send that
/// connection's bytes to the old one.
#[uprobe]
pub fn kwire_ssl_free(ctx: ProbeContext) -> u32 {
    let ssl: u64 = ctx.arg(0).unwrap_or(0);
    if ssl != 0 {
        let _ = SSL_SOCKS.remove(&ssl);
    }
    0
}

#[inline(always)]
fn ssl_enter(ctx: &ProbeContext, direction: u32, ex: bool) {
    let ssl: u64 = ctx.arg(0).unwrap_or(0);
    let buf: u64 = ctx.arg(1).unwrap_or(0);
    let len_ptr: u64 = if ex { ctx.arg(3).unwrap_or(0) } else { 0 };
    if ssl == 0 || buf == 0 {
        return;
    }
    if let Some(cfg) = CONFIG.get(0) {
        // SAFETY: a helper with a plain integer argument (a level deeper than the process's
        // cgroup gives 0, which is no cgroup's id).
        if cfg.scope_level != 0
            && unsafe {
                aya_ebpf::helpers::generated::bpf_get_current_ancestor_cgroup_id(
                    cfg.scope_level as i32,
                )
            } != cfg.scope_cgroup_id
        {
            return;
        }
    }
    let call = SslCall {
        ssl,
        buf,
        len_ptr,
        direction,
        has_sock: 0,
        tuple: SockTuple::default(),
        sock_ts: 0,
    };
    let id = bpf_get_current_pid_tgid();
    if SSL_CALLS.insert(&id, &call, 0).is_err() {
        bump(counter::SSL_CALLS_FULL);
    }
}

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

/// `sock:sock_recv_length` (fields: sk at 8, family at 16, protocol at 18): while an SSL call is in
/// progress in this thread, the socket it receives from.
#[tracepoint]
pub fn kwire_sock_len(ctx: TracePointContext) -> u32 {
    in_call(&ctx, bpf_get_current_pid_tgid());
    0
}

/// When thread `id` is inside an SSL call, gives the call this record's connection. Whether it was.
#[inline(always)]
fn in_call(ctx: &TracePointContext, id: u64) -> bool {
    let Some(call) = SSL_CALLS.get_ptr_mut(&id) else {
        return false;
    };
    if let Ok(t) = read_sock(ctx) {
        // SAFETY: this thread's entry; plain integers.
        unsafe {
            (*call).tuple = t;
            (*call).has_sock = 1;
            (*call).sock_ts = bpf_ktime_get_boot_ns();
        }
    }
    true
}

/// `sock:sock_send_length`: as [`kwire_sock_len`] while an SSL call is in progress; outside one,
/// the first TCP send of a thread whose last write had no socket (a memory BIO: asyncio's
/// `SSLObject`, Node's TLS sockets write into memory and send the ciphertext right after, from the
/// same thread) binds that write's `SSL*` to this connection: remembered in `SSL_SOCKS` and told to
/// user space by a [`DIR_BIND`] record, which gives the waiting chunks their connection. Only a send
/// within [`UNBOUND_WINDOW_NS`] and at least as long as the write's plaintext binds (a shorter one is
/// another socket's, or a partial send: the write's chunk is then dropped, counted, not misplaced).
#[tracepoint]
pub fn kwire_sock_send(ctx: TracePointContext) -> u32 {
    let id = bpf_get_current_pid_tgid();
    if in_call(&ctx, id) {
        return 0;
    }
    // SAFETY: copied out at once.
    let Some(u) = (unsafe { UNBOUND.get(&id) }).copied() else {
        return 0;
    };
    let _ = UNBOUND.remove(&id);
    // SAFETY: a helper without arguments.
    let now = unsafe { bpf_ktime_get_boot_ns() };
    if now.saturating_sub(u.ts) > UNBOUND_WINDOW_NS {
        return 0;
    }
    // SAFETY: a read of the tracepoint record at the offset of its format file (`int ret`).
    let sent = unsafe { ctx.read_at::<i32>(20) }.unwrap_or(0);
    if sent <= 0 || (sent as u64) < u.len {
        return 0;
    }
    let Ok(t) = read_sock(&ctx) else {
        return 0;
    };
    let _ = SSL_SOCKS.insert(&u.ssl, &t, 0);
    let Some(mut entry) = PLAIN.reserve::<PlainHeader>(0) else {
        bump(counter::PLAIN_RING_FULL);
        return 0;
    };
    // SAFETY: a helper without arguments.
    let cgroup_id = unsafe { bpf_get_current_cgroup_id() };
    entry.write(PlainHeader {
        ts_boot_ns: now,
        cgroup_id,
        pid_tgid: id,
        ssl: u.ssl,
        tuple: t,
        call_len: 0,
        offset: 0,
        len: 0,
        direction: DIR_BIND,
        _pad: 0,
    });
    entry.submit(0);
    bump(counter::PLAIN_BOUND);
    0
}

/// The TCP connection of the tracepoint record's `struct sock` (Err: not TCP, no address, a failed
/// read, an IPv6 socket without the offsets).
#[inline(always)]
fn read_sock(ctx: &TracePointContext) -> Result<SockTuple, i64> {
    // SAFETY: reads of the tracepoint record at the offsets of its format file.
    let (sk, family, protocol) = unsafe {
        (
            ctx.read_at::<u64>(8).map_err(i64::from)?,
            ctx.read_at::<u16>(16).map_err(i64::from)?,
            ctx.read_at::<u16>(18).map_err(i64::from)?,
        )
    };
    if protocol != IPPROTO_TCP as u16 || sk == 0 {
        return Err(0);
    }
    let mut t = SockTuple {
        family,
        ..SockTuple::default()
    };
    // SAFETY: kernel reads through bpf_probe_read_kernel (a bad pointer gives an error, no fault).
    unsafe {
        // struct sock_common: skc_daddr, skc_rcv_saddr, skc_hash, skc_dport (network order), skc_num.
        let head: [u8; 16] = bpf_probe_read_kernel(sk as *const [u8; 16]).map_err(i64::from)?;
        t.rport = u16::from_be_bytes([head[12], head[13]]);
        t.lport = u16::from_ne_bytes([head[14], head[15]]);
        if family == AF_INET {
            t.raddr[..4].copy_from_slice(&head[0..4]);
            t.laddr[..4].copy_from_slice(&head[4..8]);
        } else if family == AF_INET6 {
            let Some(cfg) = CONFIG.get(0) else {
                return Err(0);
            };
            if cfg.v6_daddr_off == 0 || cfg.v6_saddr_off == 0 {
                return Err(0);
            }
            t.raddr = bpf_probe_read_kernel((sk + u64::from(cfg.v6_daddr_off)) as *const [u8; 16])
                .map_err(i64::from)?;
            t.laddr = bpf_probe_read_kernel((sk + u64::from(cfg.v6_saddr_off)) as *const [u8; 16])
                .map_err(i64::from)?;
        } else {
            return Err(0);
        }
    }
    Ok(t)
}

/// The return of SSL_write, SSL_write_ex, SSL_read, SSL_read_ex.
#[uretprobe]
pub fn kwire_ssl_ret(ctx: RetProbeContext) -> u32 {
    let _ = try_ssl_ret(&ctx);
    0
}

#[inline(always)]
fn try_ssl_ret(ctx: &RetProbeContext) -> Result<(), i64> {
    let id = bpf_get_current_pid_tgid();
    // SAFETY: the value is copied out at once (no reference kept across map updates).
    let call = match unsafe { SSL_CALLS.get(&id) } {
        Some(c) => *c,
        None => return Ok(()),
    };
    let _ = SSL_CALLS.remove(&id);
    // All four return a C int: only the low 32 bits of the register are the value (-1 is
    // 0x00000000ffffffff in rax).
    let ret = i64::from(ctx.ret::<i32>());
    let n: u64 = if call.len_ptr != 0 {
        if ret != 1 {
            return Ok(());
        }
        // SAFETY: a user read through the helper (a bad pointer gives an error).
        unsafe { bpf_probe_read_user(call.len_ptr as *const u64) }.map_err(i64::from)?
    } else {
        if ret <= 0 {
            return Ok(());
        }
        ret as u64
    };
    if n == 0 {
        return Ok(());
    }
    // SAFETY: helpers without arguments.
    let (now, cgroup_id) = unsafe { (bpf_ktime_get_boot_ns(), bpf_get_current_cgroup_id()) };
    let tuple = if call.has_sock != 0 {
        let _ = SSL_SOCKS.insert(&call.ssl, &call.tuple, 0);
        call.tuple
    } else {
        // SAFETY: as above.
        match unsafe { SSL_SOCKS.get(&call.ssl) } {
            Some(t) => *t,
            // A write that sent nothing and whose SSL* is new: a memory BIO. Its bytes go out now
            // without a connection (family 0, the port filter applied in user space once bound);
            // the thread's next TCP send binds the SSL* (`kwire_sock_send`).
            None if call.direction == DIR_WRITE => {
                let u = Unbound {
                    ssl: call.ssl,
                    ts: now,
                    len: n,
                };
                if UNBOUND.insert(&id, &u, 0).is_err() {
                    bump(counter::PLAIN_NO_SOCK);
                    return Ok(());
                }
                SockTuple::default()
            }
            None => {
                bump(counter::PLAIN_NO_SOCK);
                return Ok(());
            }
        }
    };
    let cfg = match CONFIG.get(0) {
        Some(c) => *c,
        None => return Ok(()),
    };
    if tuple.family != 0
        && cfg.filter == FILTER_PORTS
        && PORTS.get_ptr(tuple.lport).is_none()
        && PORTS.get_ptr(tuple.rport).is_none()
    {
        return Ok(());
    }
    let ts_boot_ns = if call.sock_ts != 0 { call.sock_ts } else { now };
    let Some(st) = PLAIN_STATE.get_ptr_mut(0) else {
        return Ok(());
    };
    // SAFETY: this CPU's slot of the per-CPU scratch (a uretprobe is not re-entered on one CPU).
    unsafe {
        (*st).hdr = PlainHeader {
            ts_boot_ns,
            cgroup_id,
            pid_tgid: id,
            ssl: call.ssl,
            tuple,
            call_len: n.min(u64::from(u32::MAX)) as u32,
            offset: 0,
            len: 0,
            direction: call.direction,
            _pad: 0,
        };
        (*st).buf = call.buf;
        (*st).n = n;
    }
    emit_next(ctx);
    Ok(())
}

/// The next chunks of a long SSL call: tail-called by [`kwire_ssl_ret`] and by itself (never
/// attached; loaded so that user space can put it in `JUMP`).
#[uprobe]
pub fn kwire_ssl_more(ctx: ProbeContext) -> u32 {
    emit_next(&ctx);
    0
}

/// Where a long call's copy stands, per CPU: the header of its next chunk, the buffer, the count.
#[repr(C)]
struct PlainState {
    hdr: PlainHeader,
    buf: u64,
    n: u64,
}

#[map]
static PLAIN_STATE: PerCpuArray<PlainState> = PerCpuArray::with_max_entries(1, 0);

/// Tail calls continue a long copy: one chunk per program run keeps each run small for the
/// verifier (a loop over 64 chunks exceeded its 1M-instruction budget). The kernel allows 33 tail
/// calls in a row, so one call copies at most 34 chunks.
#[map]
static JUMP: ProgramArray = ProgramArray::with_max_entries(1, 0);

/// Copies the chunk the per-CPU state points at, then tail-calls for the next one.
#[inline(always)]
fn emit_next<C: EbpfContext>(ctx: &C) {
    let Some(st) = PLAIN_STATE.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's slot; plain integers.
    let (hdr, buf, n) = unsafe { ((*st).hdr, (*st).buf, (*st).n) };
    let off = u64::from(hdr.offset);
    if off >= n {
        return;
    }
    let chunk = u64::from(PLAIN_CHUNK);
    let left = n - off;
    let len = if left > chunk { chunk } else { left };
    let mut h = hdr;
    h.len = len as u32;
    let src = buf + off;
    if len <= 256 {
        emit_plain::<256>(&h, src, len);
    } else if len <= 2048 {
        emit_plain::<2048>(&h, src, len);
    } else {
        emit_plain::<{ PLAIN_CHUNK as usize }>(&h, src, len);
    }
    let next = off + len;
    if next >= n {
        return;
    }
    if next >= u64::from(PLAIN_MAX_CHUNKS) * chunk {
        bump(counter::PLAIN_TRUNCATED);
        return;
    }
    // SAFETY: as above.
    unsafe { (*st).hdr.offset = next as u32 };
    // SAFETY: a tail call with our own context; on success it does not return.
    unsafe { JUMP.tail_call(ctx, 0) };
    // The kernel's tail call limit (33) or an empty JUMP slot: the rest is lost.
    bump(counter::PLAIN_TRUNCATED);
}

#[repr(C)]
struct PlainRecord<const N: usize> {
    hdr: PlainHeader,
    data: [u8; N],
}

#[inline(always)]
fn emit_plain<const N: usize>(hdr: &PlainHeader, src: u64, len: u64) {
    let Some(mut entry) = PLAIN.reserve::<PlainRecord<N>>(0) else {
        bump(counter::PLAIN_RING_FULL);
        return;
    };
    let len = core::hint::black_box(len);
    if len == 0 || len > N as u64 {
        entry.discard(0);
        return;
    }
    let rec = entry.as_mut_ptr();
    // SAFETY: `rec` points at a reserved record of size_of::<PlainRecord<N>>() bytes; `len` ≤ N.
    let ret = unsafe {
        addr_of_mut!((*rec).hdr).write(*hdr);
        aya_ebpf::helpers::generated::bpf_probe_read_user(
            addr_of_mut!((*rec).data).cast::<c_void>(),
            len as u32,
            src as *const c_void,
        )
    };
    if ret != 0 {
        bump(counter::PLAIN_READ_FAILED);
        entry.discard(0);
        return;
    }
    bump(counter::PLAIN_CHUNKS);
    entry.submit(0);
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // SAFETY: no code path above panics (the verifier would reject a reachable loop anyway).
    unsafe { core::hint::unreachable_unchecked() }
}

/// GPL-compatible, as the kernel asks of programs that may use GPL-only helpers (none today).
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
