//! Flow table: [`FlowTable<T>`] maps a [`FlowKey`] to per-flow state `T`, with a capacity and expiry
//! driven by packet time (never the clock).
//!
//! Layout: a slab (`Vec` of slots reused through a free list) plus a hash table of slot indices
//! (`hashbrown::HashTable<u32>`, Fx hash of the key, kept in the slot), a one-entry cache of the last key looked up (consecutive packets usually belong to the same flow, so a
//! hit costs one key comparison and no hashing), and two intrusive doubly-linked LRU lists threaded
//! through the slots (`prev`/`next` slot indices): one of open flows, one of closed flows, most recently
//! used at the head. Every operation is O(1) except `expire` (O(k log k) for the k flows it removes) and
//! `drain` (O(n log n), once, at the end of input). A touched flow moves to the head of its list. The
//! index table is 4 bytes a bucket (a full default table's fits in a few hundred KiB of cache), and
//! removing a flow finds its bucket by hash and index, never reading a key: evicting a flow idle for
//! seconds costs no cache miss on its key.
//!
//! Packet time: the table keeps its own clock, the latest packet time it accepted. It never goes
//! backwards: a packet older than the clock is handled as if it came at the clock (counted in
//! `time_backwards`), so flows are only ever stamped with, and expired against, monotonic time, and the
//! LRU lists stay sorted by last activity. A forward step larger than `max_time_jump` (default 1 h) is
//! counted in `time_jumps` and held back: the clock takes it only if the next packet confirms it (is also
//! that far ahead); a single packet stamped years ahead therefore cannot expire every flow at once nor
//! freeze the clock for the rest of the capture.
//!
//! What is easy to get wrong:
//! * Determinism: everything that produces output walks flows in an order that depends only on the input:
//!   `expire` and `drain` hand flows over in first-seen order (a per-table insertion counter; `expire`
//!   takes the due flows from the LRU tails, then sorts only those), eviction takes the least recently
//!   touched flow (list order, itself a function of the packet sequence). Never `HashMap` order.
//! * Eviction when full: closed flows go first (the least recently used closed flow), then the least
//!   recently used open flow, but only if it is *idle* (no packet for `evict_min_idle`, default 10 s of
//!   packet time); otherwise the new flow is refused ([`TableFull`], counted in `refused_full`). This
//!   protects long-lived Kafka connections from a burst of new flows, at O(1) per new flow.
//! * Closed or open: the table learns a flow's [`FlowState::is_closed`] lazily. The flow handed out last
//!   (the only one whose state can have changed since) is re-filed into the open or closed list at the
//!   start of the next call. So `is_closed` must depend only on the value, changed through the `&mut T`
//!   this table handed out.
//! * Time anomalies are counted by `lookup_or_insert` only (call it once per packet); `get_mut` and
//!   `expire` follow ordinary forward steps but never take a jump or a step back.
//! * Evicted and expired flows are handed back to the caller (callbacks), which must flush them: dropping
//!   them would silently lose buffered data.

use std::hash::BuildHasher;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

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
    /// A forward step of packet time larger than this is a jump: counted, and taken by the table's clock
    /// only when the next packet confirms it (default 3600 s).
    pub max_time_jump_ns: i64,
}

impl Default for FlowTableConfig {
    fn default() -> Self {
        FlowTableConfig {
            max_flows: 65_536,
            idle_timeout_ns: 300 * Timestamp::NANOS_PER_SEC,
            closed_timeout_ns: 5 * Timestamp::NANOS_PER_SEC,
            evict_min_idle_ns: 10 * Timestamp::NANOS_PER_SEC,
            max_time_jump_ns: 3600 * Timestamp::NANOS_PER_SEC,
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
    /// Packets whose time was earlier than the table's clock (handled as if they came at the clock).
    pub time_backwards: u64,
    /// Forward steps of packet time larger than `max_time_jump` (each held back one packet).
    pub time_jumps: u64,
}

/// No slot (end of a list).
const NIL: u32 = u32::MAX;

#[derive(Debug)]
struct Entry<T> {
    key: FlowKey,
    /// Fx hash of `key`.
    hash: u64,
    value: T,
    order: u64,
    last_ts: Timestamp,
    /// Which list the flow is filed in.
    closed: bool,
}

#[derive(Debug)]
struct Slot<T> {
    entry: Option<Entry<T>>,
    /// Towards the head (more recently used).
    prev: u32,
    /// Towards the tail (less recently used).
    next: u32,
}

/// Head = most recently used, tail = least recently used.
#[derive(Clone, Copy, Debug)]
struct List {
    head: u32,
    tail: u32,
}

impl List {
    const EMPTY: List = List {
        head: NIL,
        tail: NIL,
    };
}

/// Bounded flow table with packet-time expiry.
#[derive(Debug)]
pub struct FlowTable<T> {
    cfg: FlowTableConfig,
    map: HashTable<u32>,
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    next_order: u64,
    last: Option<(FlowKey, u32)>,
    open: List,
    closed: List,
    /// The slot handed out last: its open/closed state is re-read at the next call.
    touched: u32,
    /// The table's clock (None before the first packet).
    now: Option<Timestamp>,
    /// A forward jump seen on the previous packet, waiting for confirmation.
    held_jump: bool,
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
            map: HashTable::new(),
            slots: Vec::new(),
            free: Vec::new(),
            next_order: 0,
            last: None,
            open: List::EMPTY,
            closed: List::EMPTY,
            touched: NIL,
            now: None,
            held_jump: false,
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
    /// The table's clock: the latest packet time it took (monotonic; None before the first packet).
    pub fn now(&self) -> Option<Timestamp> {
        self.now
    }

    /// The table's time for a packet stamped `ts` without counting anything: `ts` if it is an ordinary
    /// step forward (the clock takes it), else the clock (a step back, or a jump not yet confirmed). For
    /// callers that schedule work on packet time (sweeps) and must not follow a lone outlier.
    pub fn clock(&mut self, ts: Timestamp) -> Timestamp {
        self.observe(ts, false)
    }

    /// Moves the clock for a packet stamped `ts` and returns the time the table uses for it. `count`:
    /// this is the once-per-packet call (anomalies counted, jumps confirmed or held).
    fn observe(&mut self, ts: Timestamp, count: bool) -> Timestamp {
        let Some(now) = self.now else {
            self.now = Some(ts);
            return ts;
        };
        if ts <= now {
            if count {
                if ts < now {
                    self.stats.time_backwards += 1;
                }
                self.held_jump = false;
            }
            return now;
        }
        if ts.nanos_since(now) <= self.cfg.max_time_jump_ns {
            self.now = Some(ts);
            if count {
                self.held_jump = false;
            }
            return ts;
        }
        if !count {
            return now;
        }
        if self.held_jump {
            // Second packet in a row that far ahead: the capture's time really moved.
            self.held_jump = false;
            self.now = Some(ts);
            return ts;
        }
        self.stats.time_jumps += 1;
        self.held_jump = true;
        now
    }

    fn entry(&self, idx: u32) -> Option<&Entry<T>> {
        self.slots.get(idx as usize)?.entry.as_ref()
    }

    fn list_mut(&mut self, closed: bool) -> &mut List {
        if closed {
            &mut self.closed
        } else {
            &mut self.open
        }
    }

    fn unlink(&mut self, idx: u32) {
        let Some(slot) = self.slots.get(idx as usize) else {
            return;
        };
        let (prev, next) = (slot.prev, slot.next);
        let closed = slot.entry.as_ref().is_some_and(|e| e.closed);
        if let Some(p) = self.slots.get_mut(prev as usize) {
            p.next = next;
        } else {
            self.list_mut(closed).head = next;
        }
        if let Some(n) = self.slots.get_mut(next as usize) {
            n.prev = prev;
        } else {
            self.list_mut(closed).tail = prev;
        }
        if let Some(slot) = self.slots.get_mut(idx as usize) {
            slot.prev = NIL;
            slot.next = NIL;
        }
    }

    fn push_head(&mut self, idx: u32) {
        let Some(closed) = self.entry(idx).map(|e| e.closed) else {
            return;
        };
        let old = self.list_mut(closed).head;
        if let Some(slot) = self.slots.get_mut(idx as usize) {
            slot.prev = NIL;
            slot.next = old;
        }
        if let Some(h) = self.slots.get_mut(old as usize) {
            h.prev = idx;
        } else {
            self.list_mut(closed).tail = idx;
        }
        self.list_mut(closed).head = idx;
    }

    /// Re-files the flow handed out last into the open or closed list.
    fn settle(&mut self) {
        let idx = std::mem::replace(&mut self.touched, NIL);
        let Some(e) = self.slots.get(idx as usize).and_then(|s| s.entry.as_ref()) else {
            return;
        };
        let closed = e.value.is_closed();
        if closed != e.closed {
            self.unlink(idx);
            if let Some(e) = self
                .slots
                .get_mut(idx as usize)
                .and_then(|s| s.entry.as_mut())
            {
                e.closed = closed;
            }
            // It was used last: the head of its new list keeps the list sorted by last activity.
            self.push_head(idx);
        }
    }

    /// Marks a flow used at `now`: head of its list, handed out.
    fn touch(&mut self, idx: u32, now: Timestamp) {
        if self.touched != idx {
            self.settle();
        }
        let Some(e) = self
            .slots
            .get_mut(idx as usize)
            .and_then(|s| s.entry.as_mut())
        else {
            return;
        };
        if now > e.last_ts {
            e.last_ts = now;
        }
        let closed = e.closed;
        if self.list_mut(closed).head != idx {
            self.unlink(idx);
            self.push_head(idx);
        }
        self.touched = idx;
    }

    fn find(&mut self, key: &FlowKey) -> Option<u32> {
        if let Some((k, idx)) = &self.last {
            if k == key {
                self.stats.cache_hits += 1;
                return Some(*idx);
            }
        }
        let idx = self.index_of(key)?;
        self.last = Some((*key, idx));
        Some(idx)
    }

    fn index_of(&self, key: &FlowKey) -> Option<u32> {
        let slots = &self.slots;
        self.map
            .find(FxBuildHasher.hash_one(key), |&i| {
                slots
                    .get(i as usize)
                    .and_then(|s| s.entry.as_ref())
                    .is_some_and(|e| e.key == *key)
            })
            .copied()
    }

    fn value_mut(&mut self, idx: u32) -> Option<&mut T> {
        self.slots
            .get_mut(idx as usize)?
            .entry
            .as_mut()
            .map(|e| &mut e.value)
    }

    /// The flow's state if present (marks it used at `ts`, or at the table's clock if `ts` is earlier).
    pub fn get_mut(&mut self, key: &FlowKey, ts: Timestamp) -> Option<&mut T> {
        let now = self.observe(ts, false);
        let idx = self.find(key)?;
        self.touch(idx, now);
        self.value_mut(idx)
    }

    /// The flow's state, created with `make` if absent. When the table is full, a closed flow or the least
    /// recently used idle flow is removed and handed to `evicted` (which must flush it); if none is idle:
    /// `TableFull`. Call once per packet: this is where time anomalies are counted.
    pub fn lookup_or_insert(
        &mut self,
        key: &FlowKey,
        ts: Timestamp,
        make: impl FnOnce() -> T,
        evicted: impl FnOnce(FlowKey, T),
    ) -> Result<&mut T, TableFull> {
        let now = self.observe(ts, true);
        let idx = match self.find(key) {
            Some(idx) => {
                self.touch(idx, now);
                idx
            }
            None => {
                self.settle();
                if self.map.len() >= self.cfg.max_flows {
                    let (k, v) = self.evict_one(now)?;
                    evicted(k, v);
                }
                self.insert_new(*key, now, make())
            }
        };
        self.value_mut(idx).ok_or(TableFull)
    }

    fn insert_new(&mut self, key: FlowKey, ts: Timestamp, value: T) -> u32 {
        let hash = FxBuildHasher.hash_one(key);
        let entry = Entry {
            key,
            hash,
            value,
            order: self.next_order,
            last_ts: ts,
            closed: false,
        };
        self.next_order += 1;
        self.stats.inserted += 1;
        let idx = match self.free.pop() {
            Some(idx) => {
                if let Some(s) = self.slots.get_mut(idx as usize) {
                    s.entry = Some(entry);
                }
                idx
            }
            None => {
                self.slots.push(Slot {
                    entry: Some(entry),
                    prev: NIL,
                    next: NIL,
                });
                (self.slots.len() - 1) as u32
            }
        };
        self.push_head(idx);
        let slots = &self.slots;
        self.map.insert_unique(hash, idx, |&i| {
            slots
                .get(i as usize)
                .and_then(|s| s.entry.as_ref())
                .map_or(0, |e| e.hash)
        });
        self.last = Some((key, idx));
        self.touched = idx;
        idx
    }

    fn take(&mut self, idx: u32) -> Option<(FlowKey, T)> {
        self.entry(idx)?;
        self.unlink(idx);
        let e = self.slots.get_mut(idx as usize)?.entry.take()?;
        if let Ok(bucket) = self.map.find_entry(e.hash, |&i| i == idx) {
            bucket.remove();
        }
        self.free.push(idx);
        if matches!(&self.last, Some((_, i)) if *i == idx) {
            self.last = None;
        }
        if self.touched == idx {
            self.touched = NIL;
        }
        Some((e.key, e.value))
    }

    /// O(1): the closed list's tail, else the open list's tail if idle long enough.
    fn evict_one(&mut self, now: Timestamp) -> Result<(FlowKey, T), TableFull> {
        let idx = if self.closed.tail != NIL {
            Some(self.closed.tail)
        } else {
            self.entry(self.open.tail)
                .filter(|e| now.nanos_since(e.last_ts) >= self.cfg.evict_min_idle_ns)
                .map(|_| self.open.tail)
        };
        let Some((k, v)) = idx.and_then(|idx| self.take(idx)) else {
            self.stats.refused_full += 1;
            return Err(TableFull);
        };
        self.stats.evicted_full += 1;
        Ok((k, v))
    }

    /// Removes flows idle for `idle_timeout` (closed ones after `closed_timeout`), in first-seen order,
    /// handing each to `evicted`. Call about once per second of packet time; costs O(k log k) for the k
    /// flows removed (they are the tails of the LRU lists).
    pub fn expire<F: FnMut(FlowKey, T)>(&mut self, now: Timestamp, mut evicted: F) {
        let now = self.observe(now, false);
        self.settle();
        let mut due = std::mem::take(&mut self.scratch);
        due.clear();
        for (mut idx, limit) in [
            (self.open.tail, self.cfg.idle_timeout_ns),
            (self.closed.tail, self.cfg.closed_timeout_ns),
        ] {
            while let Some(slot) = self.slots.get(idx as usize) {
                let Some(e) = &slot.entry else { break };
                if now.nanos_since(e.last_ts) < limit {
                    break;
                }
                due.push((e.order, idx));
                idx = slot.prev;
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

    /// Every flow tracked now (order unspecified: callers only aggregate).
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.slots
            .iter()
            .filter_map(|s| s.entry.as_ref().map(|e| &e.value))
    }

    /// Removes one flow.
    pub fn remove(&mut self, key: &FlowKey) -> Option<T> {
        self.settle();
        let idx = self.index_of(key)?;
        self.take(idx).map(|(_, v)| v)
    }

    /// Removes every flow, in first-seen order (end of input).
    pub fn drain<F: FnMut(FlowKey, T)>(&mut self, mut f: F) {
        self.settle();
        let mut all: Vec<(u64, u32)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.entry.as_ref().map(|e| (e.order, i as u32)))
            .collect();
        all.sort_unstable();
        for (_, idx) in all {
            if let Some((k, v)) = self.take(idx) {
                f(k, v);
            }
        }
        self.slots.clear();
        self.free.clear();
        self.map.clear();
        self.open = List::EMPTY;
        self.closed = List::EMPTY;
        self.last = None;
        self.touched = NIL;
    }
}
