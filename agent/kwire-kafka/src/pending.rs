//! Requests waiting for their response, per connection, in the order they were sent.
//!
//! Kafka answers the requests of one connection in order, so a response for correlation id `c` also tells
//! us that every request sent before `c` and still waiting will never be answered (acks=0 Produce to an
//! Apache broker, or a response lost in a capture gap). The queue is bounded: when full, the oldest request
//! is completed as unanswered and counted.
//!
//! Easy to get wrong: some brokers (the librdkafka mock, tansu) DO answer acks=0 Produce; match a response
//! whenever one comes, and never wait for one that may not come. Correlation ids may repeat after a client
//! restart on a reused port: the first match from the oldest end wins.

use std::collections::VecDeque;

use kwire_flow::Timestamp;

/// A request waiting for its response.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingRequest<R> {
    pub correlation_id: i32,
    pub api_key: i16,
    pub api_version: i16,
    pub ts: Timestamp,
    /// False for acks=0 Produce: no response is required (but one may come).
    pub expects_response: bool,
    pub data: R,
}

/// What a lookup found.
pub struct Matched<R> {
    /// Requests sent before the matched one that will never be answered, oldest first.
    pub unanswered: Vec<PendingRequest<R>>,
    pub request: PendingRequest<R>,
}

/// Bounded FIFO of pending requests.
#[derive(Debug)]
pub struct PendingQueue<R> {
    queue: VecDeque<PendingRequest<R>>,
    max: usize,
    /// Requests completed without a response because the queue was full.
    pub evicted: u64,
}

impl<R> PendingQueue<R> {
    pub fn new(max: usize) -> Self {
        PendingQueue {
            queue: VecDeque::new(),
            max: max.max(1),
            evicted: 0,
        }
    }

    /// Adds a request; returns the oldest request if the queue was full (it is then unanswered).
    #[must_use]
    pub fn push(&mut self, req: PendingRequest<R>) -> Option<PendingRequest<R>> {
        let evicted = if self.queue.len() >= self.max {
            self.evicted += 1;
            self.queue.pop_front()
        } else {
            None
        };
        self.queue.push_back(req);
        evicted
    }

    /// Is a request with this correlation id waiting?
    pub fn contains(&self, correlation_id: i32) -> bool {
        self.queue
            .iter()
            .any(|p| p.correlation_id == correlation_id)
    }

    /// Correlation id of the oldest waiting request.
    pub fn oldest_correlation_id(&self) -> Option<i32> {
        self.queue.front().map(|p| p.correlation_id)
    }

    /// The api key and version of the waiting request with this correlation id.
    pub fn peek(&self, correlation_id: i32) -> Option<(i16, i16)> {
        self.queue
            .iter()
            .find(|p| p.correlation_id == correlation_id)
            .map(|p| (p.api_key, p.api_version))
    }

    /// Takes the request answered by `correlation_id` and every older one (which will never be answered).
    pub fn take(&mut self, correlation_id: i32) -> Option<Matched<R>> {
        let idx = self
            .queue
            .iter()
            .position(|p| p.correlation_id == correlation_id)?;
        self.take_at(idx)
    }

    /// The request at `idx` and every older one.
    fn take_at(&mut self, idx: usize) -> Option<Matched<R>> {
        let unanswered: Vec<_> = self.queue.drain(..idx).collect();
        let request = self.queue.pop_front()?;
        Some(Matched {
            unanswered,
            request,
        })
    }

    /// Like [`Self::take`], matching the newest waiting request with this correlation id: when the oldest
    /// one's framing is not trusted, a later one with the same id is the real request (record bytes can
    /// forge frames with the ids a client uses next).
    pub fn take_newest(&mut self, correlation_id: i32) -> Option<Matched<R>> {
        let idx = self
            .queue
            .iter()
            .rposition(|p| p.correlation_id == correlation_id)?;
        self.take_at(idx)
    }

    /// The waiting requests, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &PendingRequest<R>> + '_ {
        self.queue.iter()
    }

    /// Removes requests older than `max_age_ns` relative to `now` (oldest first).
    pub fn expire(
        &mut self,
        now: Timestamp,
        max_age_ns: i64,
        mut out: impl FnMut(PendingRequest<R>),
    ) {
        while let Some(front) = self.queue.front() {
            if now.0.saturating_sub(front.ts.0) <= max_age_ns {
                break;
            }
            if let Some(p) = self.queue.pop_front() {
                out(p);
            }
        }
    }

    /// The waiting requests, oldest first, to update in place.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut PendingRequest<R>> + '_ {
        self.queue.iter_mut()
    }

    /// Removes everything (connection closed or end of input), oldest first.
    pub fn drain(&mut self) -> impl Iterator<Item = PendingRequest<R>> + '_ {
        self.queue.drain(..)
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(c: i32, expects: bool) -> PendingRequest<()> {
        PendingRequest {
            correlation_id: c,
            api_key: 0,
            api_version: 3,
            ts: Timestamp(c as i64),
            expects_response: expects,
            data: (),
        }
    }

    #[test]
    fn in_order_matching_flushes_older() {
        let mut q = PendingQueue::new(8);
        assert!(q.push(req(1, false)).is_none()); // acks=0, Apache broker: never answered
        assert!(q.push(req(2, true)).is_none());
        assert!(q.push(req(3, true)).is_none());
        let m = q.take(2).unwrap();
        assert_eq!(
            m.unanswered
                .iter()
                .map(|p| p.correlation_id)
                .collect::<Vec<_>>(),
            vec![1]
        );
        assert_eq!(m.request.correlation_id, 2);
        assert!(q.take(7).is_none());
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn bounded() {
        let mut q = PendingQueue::new(2);
        assert!(q.push(req(1, true)).is_none());
        assert!(q.push(req(2, true)).is_none());
        assert_eq!(q.push(req(3, true)).map(|p| p.correlation_id), Some(1));
        assert_eq!(q.evicted, 1);
    }

    #[test]
    fn expiry() {
        let mut q = PendingQueue::new(8);
        let _ = q.push(req(1, true));
        let _ = q.push(req(50, true));
        let mut out = vec![];
        q.expire(Timestamp(60), 20, |p| out.push(p.correlation_id));
        assert_eq!(out, vec![1]);
    }
}
