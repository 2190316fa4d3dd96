//! kwire-tls (CORE: no IO, no clock): TLS 1.2 and 1.3 records of one captured TCP connection decrypted
//! with the secrets of an NSS key log (the file `SSLKEYLOGFILE` / Python's `SSLContext.keylog_filename` /
//! Node's `--tls-keylog` write), so that the Kafka stage sees the plaintext a client and broker exchanged.
//!
//! - [`keylog`]: the key log file's text parsed into a map client random → secrets ([`KeyLog`]);
//!   secrets never leave it except as derived record keys, and nothing here prints them (no `Debug` of
//!   key material).
//! - [`crypto`]: cipher suites, the TLS 1.3 key schedule (HKDF-Expand-Label), the TLS 1.2 PRF key
//!   block, record protection (AES-128/256-GCM, ChaCha20-Poly1305) opened in place.
//! - [`stream`]: [`TlsStream`], one connection's two byte streams (as TCP reassembly delivers them) →
//!   records (split across segments or many per segment) → hellos followed → application data
//!   plaintext, with [`TlsStats`] counting what could not be decrypted and why.
//!
//! Easy to get wrong: a record that cannot be opened (no key, unknown suite, authentication failure,
//! bytes lost by the capture) is counted, never guessed at, and never panics; the plaintext stream of a
//! direction then has a hole, said as [`Plain::Lost`] so the Kafka layer resynchronises as after a TCP
//! gap.

pub mod crypto;
pub mod keylog;
pub mod stream;

pub use keylog::KeyLog;
pub use stream::{Plain, Sender, TlsStats, TlsStream};
