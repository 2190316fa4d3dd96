//! eBPF live source (placeholder until the aya loader lands): `open` reports why it cannot be used, so
//! `kwire run --source auto` falls back to libpcap and says so.

use std::path::PathBuf;

use crate::live::LiveSource;

/// What the eBPF source captures.
#[derive(Debug, Clone, Default)]
pub struct EbpfOptions {
    /// Broker ports (empty = every TCP port).
    pub ports: Vec<u16>,
    /// cgroup v2 directory to attach the cgroup_skb programs to (default: the cgroup v2 root).
    pub cgroup: Option<PathBuf>,
    /// Bytes copied per packet at most (the rest is counted as truncated).
    pub snap_len: u32,
}

/// Opens the eBPF source, or says why it cannot be used here.
pub fn open(_opts: &EbpfOptions) -> Result<Box<dyn LiveSource>, String> {
    Err("this kwire was built without the eBPF source".to_string())
}
