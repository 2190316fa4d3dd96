//! Per-client offset timelines: for each (client, topic, partition), what the client was told (ListOffsets
//! latest/earliest, Fetch high watermark, last stable offset, log start offset), what it was served (record
//! batches returned), what it committed and read back. A client is client.id + host, so the timeline
//! continues across reconnections to other brokers.
//!
//! Easy to get wrong: compare like with like — the read_uncommitted end (ListOffsets isolation 0, Fetch
//! HWM) and the read_committed end (ListOffsets isolation 1, Fetch LSO) are two series. "Served" is the end
//! of complete batches only (a batch cut at max_bytes was not delivered). Tables are bounded.

use hashbrown::hash_map::EntryRef;
use hashbrown::HashMap;
use rustc_hash::FxBuildHasher;

use kwire_flow::{Endpoint, Timestamp};

use crate::analysis::detectors::listoffsets_regression::EndDrop;
use crate::model::{ClientKey, Tp};

/// Where an offset observation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Listoffsets,
    FetchHwm,
    FetchLso,
    Fetched,
    Committed,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Listoffsets => "listoffsets",
            Source::FetchHwm => "fetch_hwm",
            Source::FetchLso => "fetch_lso",
            Source::Fetched => "fetched",
            Source::Committed => "committed",
        }
    }
}

/// One offset observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Obs {
    pub offset: i64,
    pub ts: Timestamp,
    pub source: Source,
    pub broker: Endpoint,
    pub conn: u64,
    pub epoch: Option<i32>,
    /// The exchange that told it (evidence links).
    pub xref: crate::model::XRef,
}

/// Which end-of-log series a told offset belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    Uncommitted = 0,
    Committed = 1,
}

/// What one client knows of one partition.
#[derive(Debug, Default, Clone)]
pub struct PartState {
    /// Highest end of log told, per series.
    pub told: [Option<Obs>; 2],
    /// The open drop of the end of log per series (`listoffsets_regression`'s incident state; boxed: rare,
    /// and every client partition has the field).
    pub drop: [Option<Box<EndDrop>>; 2],
    /// Highest end of complete batches served to the client.
    pub served: Option<Obs>,
    /// Last commit the broker accepted from this client.
    pub committed: Option<Obs>,
    /// A Fetch that got OFFSET_OUT_OF_RANGE, waiting to see where the consumer goes next.
    pub out_of_range: Option<(i64, Timestamp)>,
}

impl PartState {
    pub fn raise_served(&mut self, o: Obs) {
        if self.served.is_none_or(|s| o.offset > s.offset) {
            self.served = Some(o);
        }
    }

    pub fn set_committed(&mut self, o: Obs) {
        self.committed = Some(o);
    }
}

/// All clients' partition states, bounded. hashbrown's `entry_ref` finds (or makes room for) a state with
/// one lookup per level and clones a key only when it is inserted: every Fetch partition of every exchange
/// comes here.
#[derive(Debug, Default)]
pub struct Timelines {
    clients: HashMap<ClientKey, HashMap<Tp, PartState, FxBuildHasher>, FxBuildHasher>,
    max_clients: usize,
    max_partitions_per_client: usize,
    /// Observations not kept because a bound was hit.
    pub dropped: u64,
}

impl Timelines {
    pub fn new(max_clients: usize, max_partitions_per_client: usize) -> Self {
        Timelines {
            clients: HashMap::default(),
            max_clients,
            max_partitions_per_client,
            dropped: 0,
        }
    }

    pub fn get(&self, c: &ClientKey, tp: &Tp) -> Option<&PartState> {
        self.clients.get(c)?.get(tp)
    }

    /// The state of (client, partition), created if there is room.
    pub fn entry(&mut self, c: &ClientKey, tp: &Tp) -> Option<&mut PartState> {
        let full = self.clients.len() >= self.max_clients;
        let parts = match self.clients.entry_ref(c) {
            EntryRef::Occupied(o) => o.into_mut(),
            EntryRef::Vacant(_) if full => {
                self.dropped += 1;
                return None;
            }
            EntryRef::Vacant(v) => v.insert_with_key(c.clone(), HashMap::default()),
        };
        let full = parts.len() >= self.max_partitions_per_client;
        match parts.entry_ref(tp) {
            EntryRef::Occupied(o) => Some(o.into_mut()),
            EntryRef::Vacant(_) if full => {
                self.dropped += 1;
                None
            }
            EntryRef::Vacant(v) => Some(v.insert_with_key(tp.clone(), PartState::default())),
        }
    }
}
