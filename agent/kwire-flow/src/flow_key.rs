//! Flow identity: [`FlowKey`] is the canonical (direction-independent) identity of a TCP connection.
//!
//! The key stores the lower endpoint first (by `Ord` on [`Endpoint`]: IP then port), so both directions of
//! a connection map to the same key; [`Side`] says which of the two canonical endpoints sent a segment.
//! The protocol is always TCP (this crate only tracks TCP), so the "5-tuple" is two endpoints.
//!
//! What is easy to get wrong: `Side` is *not* client/server. Which side is the client is learned from the
//! SYN (the engine's `pipeline::conn`) or guessed by the caller (e.g. the Kafka port); [`Direction`] is that judgement.
//! Mixing the two up swaps requests and responses. An IPv4 address and its IPv4-mapped IPv6 form are
//! different keys (we never normalise addresses).

use crate::packet::{Endpoint, TcpSegment};

/// Canonical TCP connection key: `a < b`. Derives `Hash`: use it with `rustc_hash::FxHashMap`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    /// The lower endpoint.
    pub a: Endpoint,
    /// The higher endpoint.
    pub b: Endpoint,
}

/// Which endpoint of the canonical key sent a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// Sent by `key.a`.
    A,
    /// Sent by `key.b`.
    B,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// Direction of a segment relative to the (known or guessed) server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    ToServer,
    ToClient,
}

impl FlowKey {
    /// Builds the key from the two endpoints (any order) and says which side `src` is.
    pub fn new(src: Endpoint, dst: Endpoint) -> (FlowKey, Side) {
        if src <= dst {
            (FlowKey { a: src, b: dst }, Side::A)
        } else {
            (FlowKey { a: dst, b: src }, Side::B)
        }
    }

    /// Key and sending side of a decoded segment.
    pub fn from_segment(seg: &TcpSegment<'_>) -> (FlowKey, Side) {
        FlowKey::new(seg.src, seg.dst)
    }

    /// The endpoint on `side`.
    pub fn endpoint(&self, side: Side) -> Endpoint {
        match side {
            Side::A => self.a,
            Side::B => self.b,
        }
    }
}

impl std::fmt::Display for FlowKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} <-> {}", self.a, self.b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    #[test]
    fn canonical_both_directions() {
        let c = Endpoint::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 50000);
        let s = Endpoint::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 9092);
        let (k1, s1) = FlowKey::new(c, s);
        let (k2, s2) = FlowKey::new(s, c);
        assert_eq!(k1, k2);
        assert_eq!(k1.a, s);
        assert_eq!(s1, Side::B);
        assert_eq!(s2, Side::A);
        assert_eq!(k1.endpoint(s1), c);
        assert_eq!(k1.to_string(), "10.0.0.1:9092 <-> 10.0.0.2:50000");
        let v6 = Endpoint::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 9092);
        assert_eq!(v6.to_string(), "[::1]:9092");
        // same IP: port decides
        let x = Endpoint::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9092);
        let y = Endpoint::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40000);
        assert_eq!(FlowKey::new(y, x), (FlowKey { a: x, b: y }, Side::B));
    }
}
