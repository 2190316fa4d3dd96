//! kwire's kernel programs: `cgroup_skb` ingress and egress hooks that keep TCP packets whose source
//! or destination port is in the `PORTS` map (or every TCP packet when the filter is off), and copy
//! each into the `EVENTS` ring buffer behind a [`PacketHeader`] (boot-time timestamp, the socket's
//! cgroup id and cookie, direction, wire and captured length). No Kafka parsing here: the agent does
//! everything else in user space.
//!
//! Easy to get wrong:
//! - Both programs always return 1 (let the packet through): kwire observes, it never drops traffic.
//! - cgroup_skb sees packets from the IP header on (no link layer); IPv6 extension headers are not
//!   walked (a TCP segment behind one is not captured), nor are IPv4 fragments after the first.
//! - The verifier wants every ring buffer reservation to have a constant size, so a packet goes into
//!   the smallest of a few fixed record classes (128 B .. 512 KiB, each 4× the last) that holds it; the copy length is
//!   re-checked against the class right before `bpf_skb_load_bytes` so the verifier can see the bound.
//! - Counters are per-CPU and plain increments: a program interrupted by another on the same CPU can
//!   lose one increment, never corrupt a packet (each packet has its own reservation, no shared scratch).

#![no_std]
#![no_main]

use core::ffi::c_void;
use core::ptr::addr_of_mut;

use aya_ebpf::bindings::__sk_buff;
use aya_ebpf::helpers::{
    bpf_get_socket_cookie, bpf_ktime_get_boot_ns, bpf_skb_cgroup_id, bpf_skb_load_bytes,
};
use aya_ebpf::macros::{cgroup_skb, map};
use aya_ebpf::maps::{Array, HashMap, PerCpuArray, RingBuf};
use aya_ebpf::programs::SkBuffContext;
use kwire_ebpf_common::{
    counter, Config, PacketHeader, DIR_EGRESS, DIR_INGRESS, FILTER_PORTS, MAX_PORTS, MAX_SNAP,
    RING_BYTES,
};

#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(RING_BYTES, 0);

#[map]
static PORTS: HashMap<u16, u8> = HashMap::with_max_entries(MAX_PORTS, 0);

#[map]
static CONFIG: Array<Config> = Array::with_max_entries(1, 0);

#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

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
