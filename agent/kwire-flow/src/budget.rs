//! One bound on the bytes every connection buffers together: out-of-order TCP bytes, Kafka frames being
//! gathered, bytes held while a connection is undecided. Per-connection bounds times `max_flows` is not
//! a bound an operator can plan with (65,536 flows x 1 MiB of out-of-order bytes each); this is.
//!
//! Each holder keeps what it has charged and settles it against what it really holds ([`Charge`]), so
//! a forgotten release cannot leak: the next settle (or the holder's drop) gives it back. A holder asks
//! [`Budget::fits`] before it grows; when the answer is no it degrades as its own bound would make it
//! (drops the earliest hole, keeps only a frame's header) and counts it ([`Budget::deny`]).
//!
//! Easy to get wrong: the budget is shared by every connection of one engine (clones share it); it is
//! single-threaded in use but `Sync` (atomics, relaxed) so that an engine can move between threads;
//! memory already allocated is charged even past the limit (the limit gates growth, it cannot undo it).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// Default bound on buffered bytes for one engine: 64 MiB.
pub const DEFAULT_BUDGET_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, Default)]
struct Inner {
    limit: u64,
    used: AtomicU64,
    peak: AtomicU64,
    denied: AtomicU64,
    denied_bytes: AtomicU64,
}

/// A shared bound on buffered bytes (cheap to clone: clones share it).
#[derive(Debug, Clone)]
pub struct Budget(Arc<Inner>);

impl Default for Budget {
    /// No bound (tests, tools); engines make a bounded one.
    fn default() -> Self {
        Budget::new(u64::MAX)
    }
}

/// What a budget has seen, for the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BudgetStats {
    pub limit: u64,
    pub used: u64,
    pub peak: u64,
    /// Times a holder was refused growth and degraded (a frame cut to its header, a hole given up, an
    /// undecided connection given up).
    pub denied: u64,
    /// Bytes those refusals concerned.
    pub denied_bytes: u64,
}

impl Budget {
    pub fn new(limit: u64) -> Budget {
        Budget(Arc::new(Inner {
            limit,
            ..Inner::default()
        }))
    }

    /// Would `more` bytes fit under the limit now?
    pub fn fits(&self, more: u64) -> bool {
        self.0.used.load(Relaxed).saturating_add(more) <= self.0.limit
    }

    /// A holder was refused `bytes` and degraded.
    pub fn deny(&self, bytes: u64) {
        self.0.denied.fetch_add(1, Relaxed);
        self.0.denied_bytes.fetch_add(bytes, Relaxed);
    }

    fn add(&self, n: u64) {
        let now = self.0.used.fetch_add(n, Relaxed) + n;
        self.0.peak.fetch_max(now, Relaxed);
    }

    fn sub(&self, n: u64) {
        self.0.used.fetch_sub(n, Relaxed);
    }

    pub fn stats(&self) -> BudgetStats {
        BudgetStats {
            limit: self.0.limit,
            used: self.0.used.load(Relaxed),
            peak: self.0.peak.load(Relaxed),
            denied: self.0.denied.load(Relaxed),
            denied_bytes: self.0.denied_bytes.load(Relaxed),
        }
    }
}

/// What one holder has charged to a budget. Dropping it gives everything back.
#[derive(Debug, Default)]
pub struct Charge {
    budget: Option<Budget>,
    charged: u64,
}

impl Charge {
    pub fn new(budget: &Budget) -> Charge {
        Charge {
            budget: Some(budget.clone()),
            charged: 0,
        }
    }

    /// The budget, if any (a holder made without one is unbounded and charges nothing).
    pub fn budget(&self) -> Option<&Budget> {
        self.budget.as_ref()
    }

    /// Bytes charged now.
    pub fn charged(&self) -> u64 {
        self.charged
    }

    /// Would growing by `more` bytes fit? (Always, without a budget.)
    pub fn fits(&self, more: u64) -> bool {
        self.budget.as_ref().is_none_or(|b| b.fits(more))
    }

    /// Counts a refusal of `bytes`.
    pub fn deny(&self, bytes: u64) {
        if let Some(b) = &self.budget {
            b.deny(bytes);
        }
    }

    /// The holder now holds `held` bytes: charge or give back the difference.
    pub fn settle(&mut self, held: u64) {
        let Some(b) = &self.budget else { return };
        if held > self.charged {
            b.add(held - self.charged);
        } else {
            b.sub(self.charged - held);
        }
        self.charged = held;
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.settle(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_settle_and_drop_gives_back() {
        let b = Budget::new(100);
        let mut x = Charge::new(&b);
        let mut y = Charge::new(&b);
        x.settle(60);
        assert!(b.fits(40) && !b.fits(41));
        y.settle(30);
        x.settle(10);
        assert_eq!(b.stats().used, 40);
        assert_eq!(b.stats().peak, 90);
        drop(y);
        assert_eq!(b.stats().used, 10);
        b.deny(5);
        assert_eq!((b.stats().denied, b.stats().denied_bytes), (1, 5));
        drop(x);
        assert_eq!(b.stats().used, 0);
        // Without a budget nothing is charged and everything fits.
        let mut free = Charge::default();
        free.settle(1 << 40);
        assert!(free.fits(u64::MAX));
    }
}
