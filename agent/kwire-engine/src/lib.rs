//! kwire-engine: packets in, typed findings out. Time is an argument: every call takes the packet's
//! timestamp, nothing here reads the clock or does IO, so replay is deterministic and live capture gives
//! the same answers.
//!
//! Rooms:
//! - `pipeline/`: the per-connection path (flow table, reassembly, role decision, Kafka framing, the
//!   engine loop, the summary counters);
//! - `analysis/`: judgement over exchanges (cluster view, consumer groups, per-client timelines, one
//!   file per detector with its own state);
//! - `output/`: the typed findings handed to the edge (exchanges, notices, alerts, timeline rows) and the
//!   JSON encoder; the readable summary, the timeline table and OTLP are sibling encoders in the
//!   `kwire` binary and `kwire-export`;
//! - `model`: the shared vocabulary (connection, client, partition, commit, interned names);
//! - `config`: every bound with its default.
//!
//! Easy to get wrong: output order must not depend on hash-map iteration (use first-seen order); a
//! connection's roles (who is the client) may only become known after some of its bytes were seen; and
//! nothing is formatted here: findings carry timestamps, socket addresses, numbers and shared names, and
//! a row nobody asked for is never built.

pub mod analysis;
pub mod config;
pub mod fleet;
pub mod model;
pub mod output;
pub mod pipeline;
#[cfg(test)]
mod testutil;

pub use analysis::{cluster, detectors, facts, groups, incident, timeline, Analyzer};
pub use config::{AnalysisLimits, EngineConfig};
pub use output::alert::{self, Alert, AlertKind, Severity};
pub use output::{ExchangeRecord, NoticeRecord, Output, TimelineRecord};
pub use pipeline::stats::{self, Summary};
pub use pipeline::{conn, engine, engine::Engine};
