//! Identities the analysis keys its state by: a client is its client.id plus its host (clients reconnect to
//! other brokers over new connections, and the timeline must continue across them), a partition is its topic
//! name plus index.
//!
//! Easy to get wrong: newer versions name topics by id; resolve through the cluster view when possible and
//! keep `id:<uuid>` otherwise, so that unresolved ids never collide with names.

use std::net::IpAddr;

use serde::Serialize;

/// A client: its client.id and the host it runs on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientKey {
    pub client_id: String,
    pub host: IpAddr,
}

/// A topic partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Tp {
    pub topic: String,
    pub partition: i32,
}

impl Tp {
    pub fn new(topic: &str, partition: i32) -> Tp {
        Tp {
            topic: topic.to_string(),
            partition,
        }
    }
}

impl std::fmt::Display for Tp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}
