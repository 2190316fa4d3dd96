//! Live packet sources (libpcap, eBPF) behind one trait, so that `kwire run` and every stage after capture
//! are the same whichever source is in use — and the same as replay.
//!
//! Easy to get wrong: `poll` never blocks for long (the agent must stay responsive to signals, health
//! checks and timers); timestamps come from the kernel's capture time, not from when we read the packet;
//! every drop (kernel, ring buffer, deduplication) is counted, and a source says why it was chosen.

use std::io;
use std::sync::Arc;

use kwire_flow::{Attribution, Endpoint, LinkType, LocalEnd, Timestamp};

/// One packet from a live source, or one chunk of TLS plaintext (`plain` set).
#[derive(Debug, Clone, Copy)]
pub struct LivePacket<'a> {
    pub ts: Timestamp,
    pub link: LinkType,
    pub data: &'a [u8],
    /// Length on the wire (≥ data.len() when cut by the snap length).
    pub orig_len: u32,
    /// The local socket this packet was seen at, and who owns it (eBPF cgroup hooks), when known.
    pub owner: Option<(LocalEnd, &'a Arc<Attribution>)>,
    /// Set when `data` is not a packet but application bytes of a TLS connection, as an OpenSSL
    /// call wrote or read them (eBPF uprobes): feed it to `Engine::on_plaintext`, never to a pcap
    /// file. `link` is then meaningless.
    pub plain: Option<Plain>,
}

/// Where a plaintext chunk belongs: it went from `src` to `dst`, seen by the process at `at`
/// (`Src` for a write, `Dst` for a read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plain {
    pub src: Endpoint,
    pub dst: Endpoint,
    pub at: LocalEnd,
}

/// Counters of a source (monotonic).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SourceStats {
    pub packets: u64,
    pub bytes: u64,
    /// Dropped by the kernel before we could read them (libpcap ps_drop, or the BPF program's counter).
    pub kernel_drops: u64,
    /// Lost because the ring buffer was full (eBPF).
    pub ring_drops: u64,
    /// Dropped by the interface (libpcap ps_ifdrop).
    pub interface_drops: u64,
    /// Copies of one segment seen at several hooks, removed.
    pub duplicates: u64,
    /// Packets cut to the copy bound.
    pub truncated: u64,
    /// TLS libraries and binaries with OpenSSL uprobes attached (eBPF), and those that failed.
    #[serde(skip_serializing_if = "is_zero")]
    pub tls_libraries: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub tls_attach_failed: u64,
    /// TLS plaintext chunks and bytes handed over (eBPF uprobes).
    #[serde(skip_serializing_if = "is_zero")]
    pub plaintext_chunks: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub plaintext_bytes: u64,
    /// Plaintext chunks lost: the plaintext ring was full, or the copy from the process failed
    /// (also counted in `ring_drops` / `kernel_drops`).
    #[serde(skip_serializing_if = "is_zero")]
    pub plaintext_ring_drops: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub plaintext_copy_failed: u64,
    /// SSL calls not tied to a TCP connection (no send/recv seen for their SSL object; a write on a
    /// memory BIO whose send did not follow within its hold time).
    #[serde(skip_serializing_if = "is_zero")]
    pub plaintext_no_socket: u64,
    /// Chunks of writes on a memory BIO (asyncio, Node) tied to their connection by the thread's
    /// next TCP send.
    #[serde(skip_serializing_if = "is_zero")]
    pub plaintext_bound_by_send: u64,
    /// SSL calls longer than the per-call copy bound (512 KiB): their rest is lost.
    #[serde(skip_serializing_if = "is_zero")]
    pub plaintext_truncated_calls: u64,
    /// Plaintext chunks handed over before their reordering hold because the buffer was full.
    #[serde(skip_serializing_if = "is_zero")]
    pub plaintext_released_early: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

pub trait LiveSource: Send {
    /// "pcap" or "ebpf".
    fn name(&self) -> &'static str;
    /// One line: what it captures and why this source was chosen.
    fn describe(&self) -> String;
    /// Hands over up to `max` packets available now, waiting at most `timeout_ms` for the first one.
    /// Returns how many were handed over.
    fn poll(
        &mut self,
        max: usize,
        timeout_ms: u32,
        f: &mut dyn FnMut(&LivePacket<'_>),
    ) -> io::Result<usize>;
    fn stats(&self) -> SourceStats;
    /// Hands over whatever the source still holds back (the eBPF source's plaintext reorder
    /// buffer): called once after the last `poll`, before the engine finishes.
    fn flush(&mut self, f: &mut dyn FnMut(&LivePacket<'_>)) -> usize {
        let _ = f;
        0
    }
    /// Changes the broker ports captured (empty = all TCP), where the source supports it at run time.
    fn set_ports(&mut self, ports: &[u16]) -> io::Result<()>;
}
