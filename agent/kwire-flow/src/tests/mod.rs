//! Unit tests of kwire-flow (kept under src/ so they can see crate internals). Test data is built as
//! byte arrays with etherparse's `PacketBuilder` (a comment per hand-written field).

mod connection;
mod packet;
mod reassembly;
mod table;
