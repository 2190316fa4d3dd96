//! Who a local socket belongs to: the cgroup, container and Kubernetes pod (and process, when known) of
//! one end of a connection, as a live source resolved it. Plain data: resolving it (reading
//! /sys/fs/cgroup, /var/log/pods, /proc) is the capture side's IO; the core only carries it to outputs.
//!
//! Easy to get wrong: a connection has two ends and only a local socket can be attributed; a packet seen
//! on egress belongs to its source endpoint's socket, on ingress to its destination's ([`LocalEnd`]).

use serde::Serialize;

/// Which endpoint of a packet is the local socket the attribution describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalEnd {
    /// The packet's source (seen leaving the socket: egress).
    Src,
    /// The packet's destination (seen arriving at the socket: ingress).
    Dst,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Attribution {
    pub cgroup_id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
}
