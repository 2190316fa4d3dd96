//! kwire-flow: the CORE crate that turns captured link-layer frames into ordered TCP byte streams.
//!
//! Pipeline: [`packet::decode_tcp`] (link layer → [`packet::TcpSegment`]) → [`flow_key::FlowKey`]
//! (canonical 5-tuple, [`flow_key::Side`]) → [`table::FlowTable`] (bounded, expiry by packet time) →
//! [`connection::TcpConnection`] (two [`reassembly::Reassembler`]s) → [`reassembly::Chunk`]s
//! (`Data | Gap | Fin | Rst`) in stream order.
//!
//! What is easy to get wrong here: this crate does no IO and never reads the clock; all time is
//! [`time::Timestamp`] taken from packets, so the same input always gives the same output. Nothing in
//! here may panic on input, allocate per packet on the hot path, or grow without a bound and a counter.

pub mod attribution;
pub mod budget;
pub mod connection;
pub mod flow_key;
pub mod packet;
pub mod reassembly;
pub mod table;
pub mod time;

pub use attribution::{Attribution, LocalEnd};
pub use budget::{Budget, BudgetStats, Charge, DEFAULT_BUDGET_BYTES};
pub use connection::TcpConnection;
pub use flow_key::{Direction, FlowKey, Side};
pub use packet::{
    decode_tcp, Endpoint, LinkType, PacketError, TcpFlags, TcpSegment, MAX_ENCAP_DEPTH,
};
pub use reassembly::{Chunk, Reassembler, ReassemblyLimits, ReassemblyStats};
pub use table::{FlowState, FlowTable, FlowTableConfig, FlowTableStats, TableFull};
pub use time::Timestamp;

#[cfg(test)]
mod tests;
