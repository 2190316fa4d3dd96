//! The per-connection pipeline: packets → flows → reassembled bytes → role decision → Kafka events →
//! exchanges handed to the analysis and to the output, with every counter of the summary.
//!
//! Easy to get wrong: connections are finished in first-seen order (determinism), and a connection's
//! counters reach the summary only when it ends (`Engine::live_summary` adds the open ones).

pub mod conn;
pub mod engine;
pub mod stats;
