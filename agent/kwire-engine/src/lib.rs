//! kwire-engine: connections, exchanges and (later) the state and judgement built on them. Time is an
//! argument: every call takes the packet's timestamp, nothing here reads the clock or does IO, so replay is
//! deterministic and live capture gives the same answers.
//!
//! Easy to get wrong: output order must not depend on hash-map iteration (use first-seen order), and a
//! connection's roles (who is the client) may only become known after some of its bytes were seen.

pub mod alert;
pub mod analyzer;
pub mod cluster;
pub mod config;
pub mod conn;
pub mod detectors;
pub mod engine;
pub mod facts;
pub mod groups;
pub mod incident;
pub mod model;
pub mod output;
pub mod stats;
#[cfg(test)]
mod testutil;
pub mod timeline;

pub use alert::{Alert, AlertKind, Severity};
pub use config::EngineConfig;
pub use engine::Engine;
pub use output::{ExchangeRecord, NoticeRecord, Output};
pub use stats::Summary;
pub use timeline::TimelineRecord;
