//! The fleet rule: which agent of a DaemonSet analyses a connection, so that each connection is analysed
//! (its exchanges, alerts, spans and metric points produced) by exactly one agent when brokers run in
//! the cluster too and both ends of a connection are seen by an agent.
//!
//! The rule (README "A fleet of agents"): an agent analyses a connection when
//! 1. the client's socket is on this node: the live source attributed the client's end to a local
//!    socket (eBPF), or the client's address is one of this node's addresses (libpcap); or
//! 2. the client is outside the cluster (its address is in none of `cluster_cidrs`) and the broker's
//!    socket is on this node (same test on the broker's end).
//!
//! Every client inside the cluster runs on a node with an agent (a DaemonSet tolerating every taint), so
//! rule 1 covers it there and rule 2 never claims it; a client outside has no agent of its own, and only
//! the broker's node sees it. A connection neither rule claims (neither end local: traffic merely routed
//! through this node, or a client in the cluster seen from the broker's side) is skipped and counted.
//!
//! Easy to get wrong:
//! - the rule is off (every connection analysed, as a single agent or `kwire replay` wants) unless
//!   `cluster_cidrs` is given: an empty list would make every client "outside" and double-count again;
//! - the verdict is taken once per connection, at its first Kafka event, and kept: an eBPF attribution
//!   arriving later must not move a connection between agents halfway (half its exchanges on each);
//! - this crate does no IO: the node's own addresses come in as configuration (the bin reads them from
//!   the OS); loopback connections are always the node's own (both ends local: rule 1).

use std::net::IpAddr;

pub use ipnet::IpNet;

use crate::model::ConnCtx;

/// The fleet rule's inputs. `cluster_cidrs` empty = rule off.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetConfig {
    /// The cluster's networks (pod, service and node CIDRs): clients inside are analysed on their node.
    pub cluster_cidrs: Vec<IpNet>,
    /// This node's addresses and networks (the bin adds the interfaces' addresses; a chart may add the
    /// node's pod CIDR, whose addresses live in the pods' own network namespaces).
    pub local: Vec<IpNet>,
}

/// Why a connection is (or is not) this agent's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Rule off: every connection is analysed.
    All,
    /// Rule 1: the client's socket is on this node.
    LocalClient,
    /// Rule 2: a client outside the cluster, the broker's socket on this node.
    OutsideClientLocalBroker,
    /// Another agent's (or nobody's: routed through this node): skipped.
    Skip,
}

impl Verdict {
    pub fn analyse(self) -> bool {
        self != Verdict::Skip
    }
}

/// Parses a comma- or space-separated list of CIDRs (a bare address is a /32 or /128).
pub fn parse_cidrs(s: &str) -> Result<Vec<IpNet>, String> {
    s.split([',', ' '])
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| {
            x.parse::<IpNet>()
                .or_else(|_| x.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{x:?} is not a CIDR (like 10.0.0.0/8) or an address"))
        })
        .collect()
}

impl FleetConfig {
    pub fn enabled(&self) -> bool {
        !self.cluster_cidrs.is_empty()
    }

    fn is_local(&self, ip: IpAddr) -> bool {
        ip.is_loopback() || self.local.iter().any(|n| n.contains(&ip))
    }

    fn in_cluster(&self, ip: IpAddr) -> bool {
        self.cluster_cidrs.iter().any(|n| n.contains(&ip))
    }

    /// The verdict for one connection (client and broker known, owners as the source saw them).
    pub fn verdict(&self, ctx: &ConnCtx) -> Verdict {
        if !self.enabled() {
            return Verdict::All;
        }
        if ctx.client_owner.is_some() || self.is_local(ctx.client.ip) {
            return Verdict::LocalClient;
        }
        let broker_local = ctx.broker_owner.is_some() || self.is_local(ctx.broker.ip);
        if broker_local && !self.in_cluster(ctx.client.ip) {
            return Verdict::OutsideClientLocalBroker;
        }
        Verdict::Skip
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kwire_flow::Endpoint;

    fn ctx(client: &str, broker: &str) -> ConnCtx {
        ConnCtx {
            id: 1,
            client: Endpoint {
                ip: client.parse().unwrap(),
                port: 40000,
            },
            broker: Endpoint {
                ip: broker.parse().unwrap(),
                port: 9092,
            },
            client_owner: None,
            broker_owner: None,
            community_id: std::sync::Arc::from(""),
        }
    }

    fn node(local: &str) -> FleetConfig {
        FleetConfig {
            cluster_cidrs: parse_cidrs("10.0.0.0/8, fd00::/8").unwrap(),
            local: parse_cidrs(local).unwrap(),
        }
    }

    /// Client pod on node A (10.1.0.0/24), broker pod on node B (10.2.0.0/24): A analyses, B skips.
    #[test]
    fn in_cluster_connection_is_the_client_nodes() {
        let c = ctx("10.1.0.7", "10.2.0.9");
        let a = node("10.1.0.0/24,192.168.0.1");
        let b = node("10.2.0.0/24,192.168.0.2");
        assert_eq!(a.verdict(&c), Verdict::LocalClient);
        assert_eq!(b.verdict(&c), Verdict::Skip);
        // Exactly one of the two.
        assert_eq!(
            [a.verdict(&c).analyse(), b.verdict(&c).analyse()],
            [true, false]
        );
    }

    /// A client outside the cluster: only the broker's node has it.
    #[test]
    fn outside_client_is_the_broker_nodes() {
        let c = ctx("203.0.113.5", "10.2.0.9");
        assert_eq!(
            node("10.2.0.0/24").verdict(&c),
            Verdict::OutsideClientLocalBroker
        );
        assert_eq!(node("10.1.0.0/24").verdict(&c), Verdict::Skip);
    }

    /// A broker outside the cluster: the client's node, as rule 1 says.
    #[test]
    fn outside_broker_is_the_client_nodes() {
        let c = ctx("10.1.0.7", "198.51.100.1");
        assert_eq!(node("10.1.0.0/24").verdict(&c), Verdict::LocalClient);
        assert_eq!(node("10.2.0.0/24").verdict(&c), Verdict::Skip);
    }

    /// eBPF: the client's socket attributed on this node wins over addresses (pod IPs need not be
    /// in `local`).
    #[test]
    fn ebpf_owner_marks_the_local_end() {
        let mut c = ctx("10.1.0.7", "10.2.0.9");
        let n = node("192.168.0.1");
        assert_eq!(n.verdict(&c), Verdict::Skip);
        c.client_owner = Some(std::sync::Arc::new(Default::default()));
        assert_eq!(n.verdict(&c), Verdict::LocalClient);
        let mut c = ctx("203.0.113.5", "10.2.0.9");
        c.broker_owner = Some(std::sync::Arc::new(Default::default()));
        assert_eq!(n.verdict(&c), Verdict::OutsideClientLocalBroker);
    }

    #[test]
    fn off_without_cluster_cidrs_and_loopback_is_local() {
        let off = FleetConfig::default();
        assert_eq!(off.verdict(&ctx("10.1.0.7", "10.2.0.9")), Verdict::All);
        assert_eq!(
            node("192.168.0.1").verdict(&ctx("127.0.0.1", "127.0.0.1")),
            Verdict::LocalClient
        );
        assert_eq!(
            parse_cidrs("10.0.0.0/8,10.0.0.1 fd00::/8").unwrap().len(),
            3
        );
        assert!(parse_cidrs("10.0.0.0/33").is_err());
        assert!(parse_cidrs("node-a").is_err());
    }
}
