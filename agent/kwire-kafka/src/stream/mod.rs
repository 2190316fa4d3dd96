//! One Kafka connection: the bytes of both directions in, [`KafkaEvent`]s out.
//!
//! - `events`: what comes out ([`KafkaEvent`], [`Exchange`], [`NoticeKind`], [`KafkaStats`]).
//! - `framer`: one direction's bytes in, frames out; one state enum per direction (joining, at a boundary,
//!   gathering, walking a big frame, skipping, scanning after lost sync).
//! - `connection`: [`KafkaConnection`], both framers and what their frames mean: requests wait, responses
//!   pair with them by correlation id, sync epochs hold requests found by probing until a response
//!   confirms them, SASL v0 raw tokens and TLS.
//!
//! Feeding bytes: [`KafkaConnection::on_data`] takes in-order bytes of ONE direction and the timestamp of
//! the packet that carried them; [`KafkaConnection::on_gap`] says the capture lost bytes there;
//! [`KafkaConnection::on_close`] ends the connection. Any source of plaintext (TCP reassembly, decrypted
//! TLS records, socket-level capture) feeds the same three calls.
//!
//! Easy to get wrong: the caller must say which direction is which (roles are decided before), feed each
//! direction's bytes in order and report losses as gaps rather than splicing what follows onto what came
//! before (a splice invents frames); frames from two sources of the same direction must never interleave.

mod connection;
mod events;
mod framer;
#[cfg(test)]
mod tests;

pub use connection::KafkaConnection;
pub use events::{
    Decoded, DesyncReason, Exchange, KafkaEvent, KafkaStats, NoticeKind, RequestInfo, RequestSent,
    ResponseInfo, SkipReason,
};

use crate::probe::ProbeLimits;

/// Limits of the Kafka layer (per connection unless said otherwise).
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// Largest frame gathered in memory to be decoded whole. Larger frames are decoded by header and
    /// skipped. Default 16 MiB.
    pub max_frame_bytes: usize,
    /// How much of an oversized frame is kept to decode its header. Default 4 KiB.
    pub oversized_peek_bytes: usize,
    /// Requests waiting for a response, per connection. Default 1024.
    pub max_pending: usize,
    /// A request without a response after this much packet time is completed as unanswered. Default 300 s.
    pub pending_max_age_ns: i64,
    /// Bytes kept while scanning for a frame boundary after a gap. Default 256 KiB.
    pub resync_window: usize,
    pub probe: ProbeLimits,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            max_frame_bytes: 16 * 1024 * 1024,
            oversized_peek_bytes: 4096,
            max_pending: 1024,
            pending_max_age_ns: 300 * 1_000_000_000,
            resync_window: 256 * 1024,
            probe: ProbeLimits::default(),
        }
    }
}

/// How a connection's byte streams begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamStart {
    /// The TCP handshake was seen: both directions start on a frame boundary.
    Handshake,
    /// Joined mid-stream: frame boundaries must be found.
    MidStream,
}
