//! kwire-capture: the IO crate. Packet sources that produce [`RawPacket`]s (timestamp from the capture,
//! link type, captured bytes): pcap and pcapng files ([`pcap_file`]); live sources behind [`LiveSource`]:
//! libpcap ([`pcap_live`]) and eBPF ([`ebpf`]), so everything downstream is identical for live and replay.
//! [`pcap_writer`] records what a live source saw, as pcap, for a later replay.
//!
//! What is easy to get wrong: a source never interprets the bytes beyond its own framing; the link type
//! travels with every packet (a pcapng file can mix link types across interfaces and sections).

pub mod attribution;
pub mod dedup;
pub mod ebpf;
pub mod live;
pub mod pcap_file;
#[cfg(feature = "pcap-live")]
pub mod pcap_live;
pub mod pcap_writer;
#[cfg(feature = "ebpf")]
pub mod tls;

pub use live::{LivePacket, LiveSource, Plain, SourceStats};
pub use pcap_file::{CaptureError, FileStats, PcapFile, RawPacket, ReadMode};
#[cfg(feature = "pcap-live")]
pub use pcap_live::{PcapLive, PcapOptions};
pub use pcap_writer::{PcapWriter, WriterOptions, WriterStats};

#[cfg(test)]
mod tests;
