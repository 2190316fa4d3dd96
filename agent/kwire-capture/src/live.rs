//! Live packet sources (libpcap, eBPF) behind one trait, so that `kwire run` and every stage after capture
//! are the same whichever source is in use — and the same as replay.
//!
//! Easy to get wrong: `poll` never blocks for long (the agent must stay responsive to signals, health
//! checks and timers); timestamps come from the kernel's capture time, not from when we read the packet;
//! every drop (kernel, ring buffer, deduplication) is counted, and a source says why it was chosen.

use std::io;
use std::sync::Arc;

use kwire_flow::{Attribution, LinkType, LocalEnd, Timestamp};

/// One packet from a live source.
#[derive(Debug, Clone, Copy)]
pub struct LivePacket<'a> {
    pub ts: Timestamp,
    pub link: LinkType,
    pub data: &'a [u8],
    /// Length on the wire (≥ data.len() when cut by the snap length).
    pub orig_len: u32,
    /// The local socket this packet was seen at, and who owns it (eBPF cgroup hooks), when known.
    pub owner: Option<(LocalEnd, &'a Arc<Attribution>)>,
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
    /// Changes the broker ports captured (empty = all TCP), where the source supports it at run time.
    fn set_ports(&mut self, ports: &[u16]) -> io::Result<()>;
}
