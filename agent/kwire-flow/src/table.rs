//! Flow table: [`FlowTable<T>`] maps a [`FlowKey`] to per-flow state `T`, with a capacity and expiry
//! driven by packet time (never the clock).
//!
//! Layout: a slab (`Vec` of slots reused through a free list) plus an `FxHashMap<FlowKey, slot index>`,
//! and a one-entry cache of the last key looked up (consecutive packets usually belong to the same flow,
//! so a hit costs one key comparison and no hashing).
//!
//! What is easy to get wrong:
//! * Determinism: everything that produces output (expiry, eviction, drain) walks flows in first-seen
//!   order (a per-table insertion counter), never in `HashMap` order, so the same input always gives the
//!   same output byte for byte.
//! * Eviction when full: the least recently used flow is evicted only if it is *idle* (closed, or no
//!   packet for `evict_min_idle`, default 10 s of packet time); otherwise the new flow is refused
//!   ([`TableFull`], counted in `refused_full`). This protects long-lived Kafka connections from a burst of
//!   new flows. Finding the LRU flow is an O(n) scan, done only when the table is full; after a scan that
//!   found nothing idle, no scan is repeated until packet time could have made the oldest flow idle.
//! * Evicted and expired flows are handed back to the caller (callbacks), which must flush them: dropping
//!   them would silently lose buffered data.
//! * `expire` is meant to be called about once per second of packet time; it is an O(n) sweep.

use rustc_hash::FxHashMap;

use crate::flow_key::FlowKey;
use crate::time::Timestamp;

/// What the table needs to know about a flow's state.
pub trait FlowState {
    /// Closed flows (FIN both ways, RST) expire after `closed_timeout` instead of `idle_timeout`.
    fn is_closed(&self) -> bool {
        false
    }
}

/// Limits and timeouts (all times are packet time, in nanoseconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowTableConfig {
    /// Maximum flows held (default 65536).
    pub max_flows: usize,
    /// A flow with no packet for this long expires (default 300 s).
    pub idle_timeout_ns: i64,
    /// A closed flow expires after this long without packets (default 5 s).
    pub closed_timeout_ns: i64,
    /// When full, the LRU flow may be evicted only if idle for this long or closed (default 10 s).
    pub evict_min_idle_ns: i64,
}

impl Default for FlowTableConfig {
    fn default() -> Self {
        FlowTableConfig {
            max_flows: 65_536,
            idle_timeout_ns: 300 * Timestamp::NANOS_PER_SEC,
            closed_timeout_ns: 5 * Timestamp::NANOS_PER_SEC,
            evict_min_idle_ns: 10 * Timestamp::NANOS_PER_SEC,
        }
    }
}

/// The table is full and no flow is idle enough to evict; the new flow was not created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableFull;

impl std::fmt::Display for TableFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("flow table full")
    }
}
impl std::error::Error for TableFull {}

/// Counters (monotonic).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowTableStats {
    /// Flows created.
    pub inserted: u64,
    /// Flows removed by `expire` (idle or closed timeout).
    pub expired: u64,
    /// Flows evicted to make room for a new one (table full).
    pub evicted_full: u64,
    /// New flows refused because the table was full and nothing was idle.
    pub refused_full: u64,
    /// Lookups answered by the last-flow cache.
    pub cache_hits: u64,
}

#[derive(Debug)]
struct Slot<T> {
    key: FlowKey,
    value: T,
    order: u64,
    last_ts: Timestamp,
}

/// Bounded flow table with packet-time expiry.
#[derive(Debug)]
pub struct FlowTable<T> {
    cfg: FlowTableConfig,
    map: FxHashMap<FlowKey, u32>,
    slots: Vec<Option<Slot<T>>>,
    free: Vec<u32>,
    next_order: u64,
    last: Option<(FlowKey, u32)>,
    no_evict_before: Timestamp,
    scratch: Vec<(u64, u32)>,
    stats: FlowTableStats,
}

impl<T: FlowState> Default for FlowTable<T> {
    fn default() -> Self {
        FlowTable::new(FlowTableConfig::default())
    }
}

impl<T: FlowState> FlowTable<T> {
    pub fn new(cfg: FlowTableConfig) -> Self {
        FlowTable {
            cfg,
            map: FxHashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
            next_order: 0,
            last: None,
            no_evict_before: Timestamp(i64::MIN),
            scratch: Vec::new(),
            stats: FlowTableStats::default(),
        }
    }

    pub fn config(&self) -> &FlowTableConfig {
        &self.cfg
    }
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    pub fn stats(&self) -> &FlowTableStats {
        &self.stats
    }

    fn find(&mut self, key: &FlowKey) -> Option<u32> {
        if let Some((k, idx)) = &self.last {
            if k == key {
                self.stats.cache_hits += 1;
                return Some(*idx);
            }
        }
        let idx = *self.map.get(key)?;
        self.last = Some((*key, idx));
        Some(idx)
    }

    /// The flow's state if present (refreshes its last-seen time to `ts` if later).
    pub fn get_mut(&mut self, key: &FlowKey, ts: Timestamp) -> Option<&mut T> {
        let idx = self.find(key)?;
        let slot = self.slots.get_mut(idx as usize)?.as_mut()?;
        if ts > slot.last_ts {
            slot.last_ts = ts;
        }
        Some(&mut slot.value)
    }

    /// The flow's state, created with `make` if absent. When the table is full, the least recently used
    /// idle flow is removed and handed to `evicted` (which must flush it); if none is idle: `TableFull`.
    pub fn lookup_or_insert(
        &mut self,
        key: &FlowKey,
        ts: Timestamp,
        make: impl FnOnce() -> T,
        evicted: impl FnOnce(FlowKey, T),
    ) -> Result<&mut T, TableFull> {
        let idx = match self.find(key) {
            Some(idx) => idx,
            None => {
                if self.map.len() >= self.cfg.max_flows {
                    let (k, v) = self.evict_one(ts)?;
                    evicted(k, v);
                }
                self.insert_new(*key, ts, make())
            }
        };
        let slot = self
            .slots
            .get_mut(idx as usize)
            .and_then(|s| s.as_mut())
            .ok_or(TableFull)?;
        if ts > slot.last_ts {
            slot.last_ts = ts;
        }
        Ok(&mut slot.value)
    }

    fn insert_new(&mut self, key: FlowKey, ts: Timestamp, value: T) -> u32 {
        let slot = Slot {
            key,
            value,
            order: self.next_order,
            last_ts: ts,
        };
        self.next_order += 1;
        self.stats.inserted += 1;
        let idx = match self.free.pop() {
            Some(idx) => {
                if let Some(s) = self.slots.get_mut(idx as usize) {
                    *s = Some(slot);
                }
                idx
            }
            None => {
                self.slots.push(Some(slot));
                (self.slots.len() - 1) as u32
            }
        };
        self.map.insert(key, idx);
        self.last = Some((key, idx));
        idx
    }

    fn take(&mut self, idx: u32) -> Option<(FlowKey, T)> {
        let slot = self.slots.get_mut(idx as usize)?.take()?;
        self.map.remove(&slot.key);
        self.free.push(idx);
        if matches!(&self.last, Some((_, i)) if *i == idx) {
            self.last = None;
        }
        Some((slot.key, slot.value))
    }

    fn evict_one(&mut self, now: Timestamp) -> Result<(FlowKey, T), TableFull> {
        if self.cfg.max_flows == 0 || now < self.no_evict_before {
            self.stats.refused_full += 1;
            return Err(TableFull);
        }
        // Closed flows first, then least recently used; ties by first-seen order (deterministic).
        let mut best: Option<(bool, Timestamp, u64, u32)> = None;
        for (i, s) in self.slots.iter().enumerate() {
            if let Some(s) = s {
                let cand = (!s.value.is_closed(), s.last_ts, s.order, i as u32);
                if best.is_none_or(|b| (cand.0, cand.1, cand.2) < (b.0, b.1, b.2)) {
                    best = Some(cand);
                }
            }
        }
        let Some((open, last_ts, _, idx)) = best else {
            self.stats.refused_full += 1;
            return Err(TableFull);
        };
        if open && now.nanos_since(last_ts) < self.cfg.evict_min_idle_ns {
            self.no_evict_before = last_ts.add_nanos(self.cfg.evict_min_idle_ns);
            self.stats.refused_full += 1;
            return Err(TableFull);
        }
        let kv = self.take(idx).ok_or(TableFull)?;
        self.stats.evicted_full += 1;
        Ok(kv)
    }

    /// Removes flows idle for `idle_timeout` (closed ones after `closed_timeout`), in first-seen order,
    /// handing each to `evicted`. Call about once per second of packet time.
    pub fn expire<F: FnMut(FlowKey, T)>(&mut self, now: Timestamp, mut evicted: F) {
        let mut due = std::mem::take(&mut self.scratch);
        due.clear();
        for (i, s) in self.slots.iter().enumerate() {
            if let Some(s) = s {
                let idle = now.nanos_since(s.last_ts);
                let limit = if s.value.is_closed() {
                    self.cfg.closed_timeout_ns
                } else {
                    self.cfg.idle_timeout_ns
                };
                if idle >= limit {
                    due.push((s.order, i as u32));
                }
            }
        }
        due.sort_unstable();
        for &(_, idx) in &due {
            if let Some((k, v)) = self.take(idx) {
                self.stats.expired += 1;
                evicted(k, v);
            }
        }
        self.scratch = due;
    }

    /// Removes one flow.
    /// Every flow tracked now (order unspecified: callers only aggregate).
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.slots
            .iter()
            .filter_map(|s| s.as_ref().map(|s| &s.value))
    }

    pub fn remove(&mut self, key: &FlowKey) -> Option<T> {
        let idx = *self.map.get(key)?;
        self.take(idx).map(|(_, v)| v)
    }

    /// Removes every flow, in first-seen order (end of input).
    pub fn drain<F: FnMut(FlowKey, T)>(&mut self, mut f: F) {
        let mut all: Vec<(u64, u32)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|s| (s.order, i as u32)))
            .collect();
        all.sort_unstable();
        for (_, idx) in all {
            if let Some((k, v)) = self.take(idx) {
                f(k, v);
            }
        }
        self.slots.clear();
        self.free.clear();
        self.last = None;
    }
}
