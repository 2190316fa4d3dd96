//! kwire-kafka: sans-IO Kafka protocol decoding. Bytes of one direction of a TCP connection go in, framed
//! and correlated Kafka events come out. No IO, no clock: timestamps are passed in by the caller.
//!
//! Easy to get wrong: a response carries only its correlation id (the api key and version come from the
//! request we remember), the response header version follows the API (ApiVersions always v0), and a
//! connection may be joined in the middle of a frame.

pub mod api;
pub mod assignment;
pub mod body;
pub mod header;
pub mod legacy;
pub mod parse;
pub mod pending;
pub mod probe;
pub mod records;
pub mod skeleton;
pub mod stream;
pub mod wire;

pub use stream::{
    Decoded, DesyncReason, Exchange, KafkaConfig, KafkaConnection, KafkaEvent, KafkaStats,
    NoticeKind, RequestInfo, RequestSent, ResponseInfo, SkipReason, StreamStart,
};
