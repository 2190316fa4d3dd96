//! kwire-capture: the IO crate. Packet sources that produce [`RawPacket`]s (timestamp from the capture,
//! link type, captured bytes). Today: pcap and pcapng files ([`pcap_file`]). Live capture and eBPF come
//! later and produce the same `RawPacket`, so everything downstream is identical for live and replay.
//!
//! What is easy to get wrong: a source never interprets the bytes beyond its own framing; the link type
//! travels with every packet (a pcapng file can mix link types across interfaces and sections).

pub mod ebpf;
pub mod live;
pub mod pcap_file;

pub use live::{LivePacket, LiveSource, SourceStats};
pub use pcap_file::{CaptureError, FileStats, PcapFile, RawPacket, ReadMode};

#[cfg(test)]
mod tests;
