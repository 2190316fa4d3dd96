//! The shared vocabulary of the engine: the identities its state is keyed by and its findings name
//! (a connection, a client, a partition, a commit), and shared names.
//!
//! A client is its client.id plus its host (clients reconnect to other brokers over new connections, and
//! the timeline must continue across them); a partition is its topic name plus index; a name (client id,
//! topic, group) is an [`Name`], reference-counted and interned by [`Interner`], so that a finding, a
//! timeline row or a table key clones a pointer, never the bytes.
//!
//! Easy to get wrong: newer versions name topics by id; resolve through the cluster view when possible and
//! keep `id:<uuid>` otherwise, so that unresolved ids never collide with names. The interner is bounded:
//! past its bound a name is still returned (a fresh allocation), only not shared, and counted.

use std::cell::{Cell, RefCell};
use std::net::IpAddr;
use std::sync::Arc;

use rustc_hash::FxHashSet;
use serde::Serialize;

use kwire_flow::{Attribution, Endpoint, Timestamp};

/// A shared, immutable name: client id, topic, group, member id.
pub type Name = Arc<str>;

/// Names longer than this are cut (at a character boundary) before they are kept: a hostile client id of
/// megabytes must not be copied into every table and output line.
pub const MAX_NAME_BYTES: usize = 256;

/// Interns names so that every table and finding shares one allocation per distinct name. Bounded:
/// `max` distinct names (default 100,000); past it names are allocated per use and counted in
/// `not_interned`. Interior mutability so that read-only views (`&Cluster`) can resolve names too; the
/// engine is single-threaded.
#[derive(Debug)]
pub struct Interner {
    set: RefCell<FxHashSet<Name>>,
    max: usize,
    /// Lookups that allocated because the table was full.
    pub not_interned: Cell<u64>,
    /// Names cut at [`MAX_NAME_BYTES`].
    pub cut: Cell<u64>,
}

impl Default for Interner {
    fn default() -> Self {
        Interner::new(100_000)
    }
}

impl Interner {
    pub fn new(max: usize) -> Self {
        Interner {
            set: RefCell::new(FxHashSet::default()),
            max,
            not_interned: Cell::new(0),
            cut: Cell::new(0),
        }
    }

    /// The shared name for `s` (cut to [`MAX_NAME_BYTES`]).
    pub fn get(&self, s: &str) -> Name {
        let s = if s.len() > MAX_NAME_BYTES {
            self.cut.set(self.cut.get() + 1);
            let mut end = MAX_NAME_BYTES;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            &s[..end]
        } else {
            s
        };
        let mut set = self.set.borrow_mut();
        if let Some(n) = set.get(s) {
            return n.clone();
        }
        let n: Name = Arc::from(s);
        if set.len() < self.max {
            set.insert(n.clone());
        } else {
            self.not_interned.set(self.not_interned.get() + 1);
        }
        n
    }

    pub fn len(&self) -> usize {
        self.set.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One exchange as evidence links name it: what opens it in Wireshark (packet numbers, see
/// `Engine::number_frames`; 0 = not numbered) and in kwire's own lines (correlation id, request time).
/// Small and `Copy`: offset observations carry one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct XRef {
    pub api_key: i16,
    pub correlation_id: i32,
    pub request_ts: Timestamp,
    pub request_frame: u64,
    pub response_frame: u64,
}

impl XRef {
    pub fn of(x: &kwire_kafka::Exchange) -> XRef {
        XRef {
            api_key: x.api_key,
            correlation_id: x.correlation_id,
            request_ts: x.request_ts,
            request_frame: x.request.frame,
            response_frame: x.response.as_ref().map_or(0, |r| r.frame),
        }
    }
}

/// Identity of a connection as outputs name it.
#[derive(Debug, Clone)]
pub struct ConnCtx {
    pub id: u64,
    pub client: Endpoint,
    pub broker: Endpoint,
    /// Who owns the client's / the broker's socket, when a live source could tell (eBPF cgroup hooks).
    pub client_owner: Option<Arc<Attribution>>,
    pub broker_owner: Option<Arc<Attribution>>,
    /// Community ID v1 of the connection (`output::community_id`), computed once per connection;
    /// empty where a context is made up (tests).
    pub community_id: Arc<str>,
}

/// Two names are equal when they are the same allocation (interned names always are) or hold the same
/// bytes. `Arc<str>`'s own `==` compares the bytes every time: std's pointer shortcut only covers sized
/// types, and tables keyed by names compare on every lookup.
pub(crate) fn same_name(a: &Name, b: &Name) -> bool {
    Arc::ptr_eq(a, b) || **a == **b
}

/// A client: its client.id and the host it runs on.
// Hash stays derived: `eq` is the derived comparison with a shortcut, so equal keys still hash alike.
#[allow(clippy::derived_hash_with_manual_eq)]
#[derive(Debug, Clone, Eq, PartialOrd, Ord, Hash)]
pub struct ClientKey {
    pub client_id: Name,
    pub host: IpAddr,
}

impl PartialEq for ClientKey {
    fn eq(&self, other: &Self) -> bool {
        self.host == other.host && same_name(&self.client_id, &other.client_id)
    }
}

/// A topic partition.
// Hash stays derived: `eq` is the derived comparison with a shortcut, so equal keys still hash alike.
#[allow(clippy::derived_hash_with_manual_eq)]
#[derive(Debug, Clone, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Tp {
    pub topic: Name,
    pub partition: i32,
}

impl PartialEq for Tp {
    fn eq(&self, other: &Self) -> bool {
        self.partition == other.partition && same_name(&self.topic, &other.topic)
    }
}

impl Tp {
    /// A partition of a topic named by a fresh allocation (tests, rare paths); hot paths build `Tp`
    /// from an interned [`Name`].
    pub fn new(topic: &str, partition: i32) -> Tp {
        Tp {
            topic: Arc::from(topic),
            partition,
        }
    }

    pub fn of(topic: &Name, partition: i32) -> Tp {
        Tp {
            topic: topic.clone(),
            partition,
        }
    }
}

impl std::fmt::Display for Tp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// One committed offset of one partition, as the commit detectors see it (OffsetCommit and
/// TxnOffsetCommit alike).
#[derive(Debug, Clone, Copy)]
pub struct Commit<'a> {
    pub ts: Timestamp,
    pub group: &'a str,
    pub member_id: &'a str,
    pub generation: Option<i32>,
    pub tp: &'a Tp,
    pub offset: i64,
    pub error_code: Option<i16>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interner_shares_and_is_bounded() {
        let i = Interner::new(2);
        let a = i.get("orders");
        let b = i.get("orders");
        assert!(Arc::ptr_eq(&a, &b));
        i.get("payments");
        let c1 = i.get("third");
        let c2 = i.get("third");
        assert_eq!(&*c1, "third");
        assert!(!Arc::ptr_eq(&c1, &c2), "past the bound, not shared");
        assert_eq!(i.not_interned.get(), 2);
        assert_eq!(i.len(), 2);
    }

    #[test]
    fn long_names_are_cut_on_a_char_boundary() {
        let i = Interner::default();
        let long = "é".repeat(200); // 400 bytes
        let n = i.get(&long);
        assert!(n.len() <= MAX_NAME_BYTES);
        assert_eq!(n.len(), 256);
        assert_eq!(i.cut.get(), 1);
    }
}
