//! The NSS key log format (`SSLKEYLOGFILE`): one secret per line, `LABEL <client_random hex>
//! <secret hex>`, `#` comments. TLS 1.2 writes `CLIENT_RANDOM <random> <master secret>`; TLS 1.3 writes
//! `CLIENT_HANDSHAKE_TRAFFIC_SECRET`, `SERVER_HANDSHAKE_TRAFFIC_SECRET`, `CLIENT_TRAFFIC_SECRET_0`,
//! `SERVER_TRAFFIC_SECRET_0` (and `EXPORTER_SECRET`, `CLIENT_EARLY_TRAFFIC_SECRET`, not needed here).
//!
//! Easy to get wrong: the secrets are the keys to the traffic. [`KeyLog`] and [`Secrets`] have no
//! `Debug` that shows them (only counts), no `Serialize`, and the parser's error messages name line
//! numbers, never content. Lines this parser does not understand are counted, not fatal: key log files
//! are appended to by several processes and may end in a half-written line. Bounded: at most
//! [`MAX_CLIENT_RANDOMS`] connections are kept, the rest counted.

use std::collections::HashMap;
use std::fmt;

/// Connections (client randoms) a key log may name (1,000,000, about 200 MB of secrets at most);
/// lines past it are counted in [`KeyLog::dropped`].
pub const MAX_CLIENT_RANDOMS: usize = 1_000_000;

/// Longest secret accepted, in bytes (SHA-384 secrets are 48; the TLS 1.2 master secret is 48).
const MAX_SECRET: usize = 64;

/// The secrets logged for one connection (its client random).
#[derive(Clone, Default)]
pub struct Secrets {
    /// TLS 1.2 master secret (`CLIENT_RANDOM`).
    pub master: Option<Box<[u8]>>,
    pub client_handshake: Option<Box<[u8]>>,
    pub server_handshake: Option<Box<[u8]>>,
    pub client_traffic_0: Option<Box<[u8]>>,
    pub server_traffic_0: Option<Box<[u8]>>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secrets([redacted])")
    }
}

/// Secrets per client random, from a key log file's text.
#[derive(Clone, Default)]
pub struct KeyLog {
    map: HashMap<[u8; 32], Secrets>,
    /// Lines used.
    pub lines: u64,
    /// Lines not understood (unknown label, bad hex, wrong lengths), blank and comment lines excluded.
    pub ignored: u64,
    /// Lines of connections past [`MAX_CLIENT_RANDOMS`].
    pub dropped: u64,
}

impl fmt::Debug for KeyLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Counts only: a Debug print (a log line, a panic message) must never carry a secret.
        f.debug_struct("KeyLog")
            .field("connections", &self.map.len())
            .field("lines", &self.lines)
            .field("ignored", &self.ignored)
            .finish()
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 2 * MAX_SECRET.max(32) {
        return None;
    }
    let b = s.as_bytes();
    let nib = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    b.chunks(2)
        .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
        .collect()
}

impl KeyLog {
    /// Parses a key log file's text (never fails: what is not understood is counted).
    pub fn parse(text: &str) -> KeyLog {
        let mut k = KeyLog::default();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if !k.add_line(line) {
                k.ignored += 1;
            }
        }
        k
    }

    fn add_line(&mut self, line: &str) -> bool {
        let mut it = line.split_ascii_whitespace();
        let (Some(label), Some(cr), Some(secret), None) =
            (it.next(), it.next(), it.next(), it.next())
        else {
            return false;
        };
        let Some(cr) = unhex(cr).and_then(|v| <[u8; 32]>::try_from(v).ok()) else {
            return false;
        };
        let Some(secret) = unhex(secret).filter(|s| !s.is_empty() && s.len() <= MAX_SECRET) else {
            return false;
        };
        let secret = secret.into_boxed_slice();
        if !self.map.contains_key(&cr) && self.map.len() >= MAX_CLIENT_RANDOMS {
            self.dropped += 1;
            return true;
        }
        let slot: fn(&mut Secrets) -> &mut Option<Box<[u8]>> = match label {
            "CLIENT_RANDOM" => |s: &mut Secrets| &mut s.master,
            "CLIENT_HANDSHAKE_TRAFFIC_SECRET" => |s: &mut Secrets| &mut s.client_handshake,
            "SERVER_HANDSHAKE_TRAFFIC_SECRET" => |s: &mut Secrets| &mut s.server_handshake,
            "CLIENT_TRAFFIC_SECRET_0" => |s: &mut Secrets| &mut s.client_traffic_0,
            "SERVER_TRAFFIC_SECRET_0" => |s: &mut Secrets| &mut s.server_traffic_0,
            // Logged by OpenSSL, not needed to read the traffic (0-RTT data is not decrypted).
            "EXPORTER_SECRET" | "CLIENT_EARLY_TRAFFIC_SECRET" | "EARLY_EXPORTER_SECRET" => {
                self.lines += 1;
                return true;
            }
            _ => return false,
        };
        *slot(self.map.entry(cr).or_default()) = Some(secret);
        self.lines += 1;
        true
    }

    /// The secrets logged for a connection, by its ClientHello's random.
    pub fn get(&self, client_random: &[u8; 32]) -> Option<&Secrets> {
        self.map.get(client_random)
    }

    /// Connections (client randoms) with at least one secret.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CR: &str = "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20";

    #[test]
    fn parses_tls12_and_tls13_lines_and_counts_the_rest() {
        let text = format!(
            "# SSL/TLS secrets log file\n\
             CLIENT_RANDOM {CR} {m}\n\
             CLIENT_HANDSHAKE_TRAFFIC_SECRET {CR} {s}\n\
             SERVER_TRAFFIC_SECRET_0 {CR} {s}\n\
             EXPORTER_SECRET {CR} {s}\n\
             BOGUS {CR} {s}\n\
             CLIENT_RANDOM 0102 {m}\n\
             CLIENT_RANDOM {CR} zz\n\
             CLIENT_TRAFFIC_SECRET_0 {CR}",
            m = "ab".repeat(48),
            s = "cd".repeat(32)
        );
        let k = KeyLog::parse(&text);
        assert_eq!(k.len(), 1);
        assert_eq!((k.lines, k.ignored), (4, 4));
        let s = k.get(&unhex(CR).unwrap().try_into().unwrap()).unwrap();
        assert_eq!(s.master.as_deref(), Some(&[0xab; 48][..]));
        assert_eq!(s.client_handshake.as_deref(), Some(&[0xcd; 32][..]));
        assert!(s.server_handshake.is_none());
        assert_eq!(s.server_traffic_0.as_deref(), Some(&[0xcd; 32][..]));
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let k = KeyLog::parse(&format!("CLIENT_RANDOM {CR} {}\n", "ab".repeat(48)));
        let d = format!("{k:?} {:?}", k.get(&unhex(CR).unwrap().try_into().unwrap()));
        assert!(!d.to_lowercase().contains("abab"), "{d}");
        assert!(!d.contains("171"), "{d}");
        assert!(d.contains("connections: 1"), "{d}");
    }
}
