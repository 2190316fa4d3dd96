//! Per-client offset timelines: for each (client, topic, partition), what the client was told (ListOffsets
//! latest/earliest, Fetch high watermark, last stable offset, log start offset), what it was served (record
//! batches returned), what it committed and read back. A client is client.id + host, so the timeline
//! continues across reconnections to other brokers.
//!
//! Easy to get wrong: compare like with like — the read_uncommitted end (ListOffsets isolation 0, Fetch
//! HWM) and the read_committed end (ListOffsets isolation 1, Fetch LSO) are two series. "Served" is the end
//! of complete batches only (a batch cut at max_bytes was not delivered). Tables are bounded.

use std::hash::{Hash, Hasher};

use hashbrown::hash_map::EntryRef;
use hashbrown::{Equivalent, HashMap};
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
    /// A Fetch that got OFFSET_OUT_OF_RANGE, waiting to see where the consumer goes next (set and taken
    /// through [`Timelines::mark_out_of_range`] / [`Timelines::take_out_of_range`], which count them).
    out_of_range: Option<(i64, Timestamp)>,
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

/// All clients' partition states, bounded. One table keyed by (client, partition): every Fetch partition
/// of every exchange comes here, so a state is found with one hash and one probe (a table per client took
/// two of each); hashbrown's `entry_ref` clones a key only when it is inserted. The per-client count is
/// touched only when a state is made (the bounds).
#[derive(Debug, Default)]
pub struct Timelines {
    parts: HashMap<PartKey, PartState, FxBuildHasher>,
    /// States per client (bounded by `max_partitions_per_client`); its length is the clients' bound.
    per_client: HashMap<ClientKey, usize, FxBuildHasher>,
    max_clients: usize,
    max_partitions_per_client: usize,
    /// Observations not kept because a bound was hit.
    pub dropped: u64,
    /// States whose `out_of_range` is set: while none is, a Fetch request's partitions need no lookup
    /// (the usual case: every Fetch request would otherwise look up each of its partitions for nothing).
    /// A mark never taken (the partition never fetched again) keeps the lookups on: slower, never wrong.
    out_of_range_pending: usize,
}

/// The key of one client's partition state.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PartKey {
    client: ClientKey,
    tp: Tp,
}

/// A borrowed [`PartKey`] for lookups: hashes the same fields in the same order as the derived `Hash`
/// (a table must find a key by either form).
struct PartKeyRef<'a> {
    client: &'a ClientKey,
    tp: &'a Tp,
}

impl Hash for PartKeyRef<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.client.hash(h);
        self.tp.hash(h);
    }
}

impl Equivalent<PartKey> for PartKeyRef<'_> {
    fn equivalent(&self, k: &PartKey) -> bool {
        *self.tp == k.tp && *self.client == k.client
    }
}

impl Timelines {
    pub fn new(max_clients: usize, max_partitions_per_client: usize) -> Self {
        Timelines {
            parts: HashMap::default(),
            per_client: HashMap::default(),
            max_clients,
            max_partitions_per_client,
            dropped: 0,
            out_of_range_pending: 0,
        }
    }

    pub fn get(&self, c: &ClientKey, tp: &Tp) -> Option<&PartState> {
        self.parts.get(&PartKeyRef { client: c, tp })
    }

    /// (client, partition) got OFFSET_OUT_OF_RANGE for `wanted` at `ts` (its state made if there is room).
    pub fn mark_out_of_range(&mut self, c: &ClientKey, tp: &Tp, wanted: i64, ts: Timestamp) {
        let Some(st) = self.entry(c, tp) else {
            return;
        };
        if st.out_of_range.replace((wanted, ts)).is_none() {
            self.out_of_range_pending += 1;
        }
    }

    /// Takes the OFFSET_OUT_OF_RANGE waiting on (client, partition), if any.
    pub fn take_out_of_range(&mut self, c: &ClientKey, tp: &Tp) -> Option<(i64, Timestamp)> {
        if self.out_of_range_pending == 0 {
            return None;
        }
        let taken = self
            .parts
            .get_mut(&PartKeyRef { client: c, tp })?
            .out_of_range
            .take()?;
        self.out_of_range_pending -= 1;
        Some(taken)
    }

    /// Whether any OFFSET_OUT_OF_RANGE waits for the consumer's next Fetch.
    pub fn any_out_of_range(&self) -> bool {
        self.out_of_range_pending > 0
    }

    /// The state of (client, partition), created if there is room.
    pub fn entry(&mut self, c: &ClientKey, tp: &Tp) -> Option<&mut PartState> {
        let k = PartKeyRef { client: c, tp };
        let v = match self.parts.entry_ref(&k) {
            EntryRef::Occupied(o) => return Some(o.into_mut()),
            EntryRef::Vacant(v) => v,
        };
        let full = self.per_client.len() >= self.max_clients;
        let n = match self.per_client.entry_ref(c) {
            EntryRef::Occupied(o) => o.into_mut(),
            EntryRef::Vacant(_) if full => {
                self.dropped += 1;
                return None;
            }
            EntryRef::Vacant(e) => e.insert_with_key(c.clone(), 0),
        };
        if *n >= self.max_partitions_per_client {
            self.dropped += 1;
            return None;
        }
        *n += 1;
        let key = PartKey {
            client: c.clone(),
            tp: tp.clone(),
        };
        Some(v.insert_with_key(key, PartState::default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::Arc;

    fn client(id: &str) -> ClientKey {
        ClientKey {
            client_id: Arc::from(id),
            host: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)),
        }
    }

    #[test]
    fn states_are_kept_per_client_and_partition_within_bounds() {
        let mut t = Timelines::new(2, 2);
        let (a, b, c) = (client("app-a"), client("app-b"), client("app-c"));
        assert!(!t.any_out_of_range());
        t.mark_out_of_range(&a, &Tp::new("orders", 0), 42, Timestamp(7));
        assert!(t.any_out_of_range());
        assert!(t.entry(&a, &Tp::new("orders", 1)).is_some());
        // A third partition of the same client is over its bound; a known one is still found.
        assert!(t.entry(&a, &Tp::new("orders", 2)).is_none());
        assert_eq!(t.dropped, 1);
        // Equal keys in fresh allocations find the same state.
        let again = t.entry(&client("app-a"), &Tp::new("orders", 0)).unwrap();
        assert_eq!(again.out_of_range, Some((42, Timestamp(7))));
        assert_eq!(t.dropped, 1);
        // The same partition of another client is another state; a third client is over the bound.
        assert!(t
            .entry(&b, &Tp::new("orders", 0))
            .unwrap()
            .out_of_range
            .is_none());
        assert!(t.entry(&c, &Tp::new("orders", 0)).is_none());
        assert_eq!(t.dropped, 2);
        assert!(t.get(&c, &Tp::new("orders", 0)).is_none());
        assert!(t.get(&b, &Tp::new("orders", 0)).is_some());
        // Same client id on another host is another client.
        let other_host = ClientKey {
            host: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 8)),
            ..a.clone()
        };
        assert!(t.get(&other_host, &Tp::new("orders", 0)).is_none());
        // Taken once, by the same client only; then none waits.
        assert_eq!(t.take_out_of_range(&b, &Tp::new("orders", 0)), None);
        assert_eq!(
            t.take_out_of_range(&client("app-a"), &Tp::new("orders", 0)),
            Some((42, Timestamp(7)))
        );
        assert_eq!(t.take_out_of_range(&a, &Tp::new("orders", 0)), None);
        assert!(!t.any_out_of_range());
        // Marked twice before the next Fetch: one waits (the later).
        t.mark_out_of_range(&a, &Tp::new("orders", 1), 5, Timestamp(8));
        t.mark_out_of_range(&a, &Tp::new("orders", 1), 6, Timestamp(9));
        assert_eq!(
            t.take_out_of_range(&a, &Tp::new("orders", 1)),
            Some((6, Timestamp(9)))
        );
        assert!(!t.any_out_of_range());
        // Over the bound: not kept, nothing waits.
        t.mark_out_of_range(&c, &Tp::new("orders", 0), 1, Timestamp(10));
        assert!(!t.any_out_of_range());
    }
}
