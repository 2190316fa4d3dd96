//! Community ID v1 (<https://github.com/corelight/community-id-spec>): one string that names a TCP
//! connection the same way in kwire, Zeek, Suricata and Wireshark, so an exchange or alert line can be
//! joined with their logs. Computed once per connection (`AppState`), never per exchange.
//!
//! Written here rather than taken from a crate: the only crates implementing it pull in their own packet
//! types; the algorithm is ten lines over the well-kept `sha1` and `base64` crates.
//!
//! Easy to get wrong: the endpoints are ordered (lower address first, then lower port) so both
//! directions give the same id; the seed (0) and the padding byte after the protocol number are part of
//! the hashed bytes; IPv4 and IPv6 addresses are hashed as their raw bytes (4 or 16).

use std::net::IpAddr;

use base64::Engine as _;
use kwire_flow::Endpoint;
use sha1::{Digest, Sha1};

/// IANA protocol number of TCP.
const TCP: u8 = 6;

fn ip_bytes(ip: &IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// The Community ID v1 of a TCP connection between `x` and `y` (either order), seed 0: "1:" then the
/// base64 of a SHA-1.
pub fn tcp(x: Endpoint, y: Endpoint) -> String {
    let (xa, ya) = (ip_bytes(&x.ip), ip_bytes(&y.ip));
    let ((a, pa), (b, pb)) = if (&xa, x.port) <= (&ya, y.port) {
        ((xa, x.port), (ya, y.port))
    } else {
        ((ya, y.port), (xa, x.port))
    };
    let mut h = Sha1::new();
    h.update(0u16.to_be_bytes());
    h.update(&a);
    h.update(&b);
    h.update([TCP, 0]);
    h.update(pa.to_be_bytes());
    h.update(pb.to_be_bytes());
    format!(
        "1:{}",
        base64::engine::general_purpose::STANDARD.encode(h.finalize())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(s: &str, port: u16) -> Endpoint {
        Endpoint::new(s.parse().unwrap(), port)
    }

    #[test]
    fn the_specification_baseline() {
        // community-id-spec baseline (tcp.pcap, seed 0): 128.232.110.120:34855 -> 66.35.250.204:80.
        let want = "1:LQU9qZlK+B5F3KDmev6m5PMibrg=";
        assert_eq!(
            tcp(ep("128.232.110.120", 34855), ep("66.35.250.204", 80)),
            want
        );
        assert_eq!(
            tcp(ep("66.35.250.204", 80), ep("128.232.110.120", 34855)),
            want
        );
    }

    #[test]
    fn other_connections_differ() {
        let a = tcp(ep("10.0.0.2", 40000), ep("10.0.0.1", 9092));
        assert_eq!(a, "1:WQa1zh3YfEa5/N2P5QZ6l/Os6H0=");
        assert_ne!(a, tcp(ep("10.0.0.2", 40001), ep("10.0.0.1", 9092)));
        assert!(tcp(ep("::1", 40000), ep("::1", 9092)).starts_with("1:"));
    }
}
