//! Fuzz harnesses of kwire, shared by the cargo-fuzz targets (`fuzz_targets/*.rs`), by the deterministic
//! `fuzz_smoke` tests of `agent/kwire-kafka/tests/` and `agent/kwire-engine/tests/` (which include these
//! files with `#[path]`) and, for the input formats, by `cargo xtask fuzz` (which writes the seeds).
//!
//! - [`kafka_stream`]: one Kafka connection's two byte streams, with gaps, through
//!   `kwire_kafka::KafkaConnection` (and, in decoder mode, the body decoders and parsers);
//! - [`engine_packets`]: captured packets of any link type through `kwire_engine::Engine` and the JSON
//!   encoder;
//! - [`format`]: how the bytes of an input become packets or stream steps;
//! - `seeds.rs` (not part of this crate: it reads captures): the seeds, built from real captures.
//!
//! Easy to get wrong: the files are compiled in three crates, so they name each other only as
//! `crate::format` and carry no crate-level attributes.

pub mod engine_packets;
pub mod format;
pub mod kafka_stream;
