//! What `kwire report` keeps of the engine's outputs while a capture (or live traffic) goes by: alert
//! lines, per-client offset points (the timeline rows), consumer group events, and per-bucket aggregates
//! of produce / fetch / latency / rebalances for the context charts. Every table is bounded, every bound
//! counted in [`Dropped`], so `kwire run --report-dir` can keep a collector for days.
//!
//! Easy to get wrong:
//! - the engine emits an exchange *before* the timeline rows, group events and alerts it caused: the last
//!   exchange seen ([`XRef`]) names their correlation id (and, once exchange lines carry them, their
//!   frame numbers); a row is matched to it only when its connection is the same;
//! - offset points are kept when their value changes (like `kwire timeline` without `--all`) plus the
//!   latest observation of each run of one value (the one detectors name as `previous_ts`); commits and
//!   errors always; a series drops its oldest points past its bound;
//! - the aggregates share one time grid ([`Rollup`]): when time runs past the last bucket, every series
//!   merges pairs of buckets and the width doubles, so the grid is the same for every series and the
//!   result depends on the packets only, not on when rendering happens.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;

use kwire_engine::model::Name;
use kwire_engine::{Alert, ExchangeRecord, Output};
use kwire_flow::{Endpoint, Timestamp};
use kwire_kafka::body::RequestBody;
use kwire_kafka::Decoded;

use crate::OutputFilter;

/// Offset series (client, topic, partition) kept.
pub const MAX_SERIES: usize = 1024;
/// Points per offset series (the oldest are dropped).
pub const MAX_POINTS_PER_SERIES: usize = 1024;
/// Points over all series.
pub const MAX_POINTS: usize = 262_144;
/// Groups, and events per group (the oldest dropped).
pub const MAX_GROUPS: usize = 256;
pub const MAX_GROUP_EVENTS: usize = 2048;
/// Alert lines kept.
pub const MAX_ALERTS: usize = 10_000;
/// Clients, brokers and topics listed.
pub const MAX_CLIENTS: usize = 2000;
pub const MAX_BROKERS: usize = 1024;
pub const MAX_TOPICS: usize = 2000;
/// Addresses remembered per client.
const MAX_ADDRS_PER_CLIENT: usize = 8;
/// Buckets of the context charts' time grid, and the first bucket width.
pub const BUCKETS: usize = 120;
const FIRST_WIDTH_NS: i64 = 10_000_000;
/// Aggregate series (topic x what, api x broker, group, producer x acks).
pub const MAX_ROLLUP_SERIES: usize = 2048;

/// The exchange a finding came from: what the evidence table shows of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XRef {
    pub conn: u64,
    pub correlation_id: i32,
    pub api_key: i16,
    pub api_version: i16,
    pub request_ts: Timestamp,
    pub response_ts: Option<Timestamp>,
    pub client: Endpoint,
    pub broker: Endpoint,
    /// Frame numbers of the request and the response in the capture file (Wireshark's `frame.number`).
    pub request_frame: Option<u64>,
    pub response_frame: Option<u64>,
}

/// Frame numbers of an exchange's request and response: the packets that completed each frame, as
/// Wireshark numbers them (None when packets are not numbered: live without `--write-pcap`).
pub fn frames(x: &ExchangeRecord) -> (Option<u64>, Option<u64>) {
    let e = &x.exchange;
    let n = |f: u64| (f > 0).then_some(f);
    (
        n(e.request.frame),
        e.response.as_ref().and_then(|r| n(r.frame)),
    )
}

impl XRef {
    fn of(x: &ExchangeRecord) -> XRef {
        let e = &x.exchange;
        let (request_frame, response_frame) = frames(x);
        XRef {
            conn: x.conn.id,
            correlation_id: e.correlation_id,
            api_key: e.api_key,
            api_version: e.api_version,
            request_ts: e.request_ts,
            response_ts: e.response.as_ref().map(|r| r.ts),
            client: x.conn.client,
            broker: x.conn.broker,
            request_frame,
            response_frame,
        }
    }

    pub fn api(&self) -> &'static str {
        kwire_kafka::api::api_name(self.api_key)
    }
}

/// One offset observation of a client (a `kwire timeline` row).
#[derive(Debug, Clone)]
pub struct Point {
    pub ts: Timestamp,
    pub what: &'static str,
    pub offset: i64,
    pub broker: Endpoint,
    pub epoch: Option<i32>,
    pub error: Option<&'static str>,
    pub x: Option<XRef>,
    /// The latest of a run of equal values (moved forward by each new observation of the run).
    pub repeat: bool,
}

/// One consumer group event and its exchange.
#[derive(Debug, Clone)]
pub struct GroupEv {
    pub e: kwire_engine::output::GroupEventRecord,
    pub x: Option<XRef>,
}

/// An alert line and the exchange that raised it.
#[derive(Debug, Clone)]
pub struct AlertLine {
    pub a: Alert,
    pub x: Option<XRef>,
}

#[derive(Debug, Default, Clone)]
pub struct ClientInfo {
    pub addrs: BTreeSet<Endpoint>,
    pub exchanges: u64,
    pub pod: Option<String>,
    pub first_ts: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
}

#[derive(Debug, Default, Clone)]
pub struct BrokerInfo {
    pub exchanges: u64,
    pub clients: BTreeSet<Name>,
}

#[derive(Debug, Default, Clone)]
pub struct TopicInfo {
    pub partitions: BTreeSet<i32>,
    pub produce_requests: u64,
    pub produced_records: u64,
    pub produced_bytes: u64,
    pub fetched_records: u64,
    pub producers: BTreeSet<Name>,
    pub consumers: BTreeSet<Name>,
}

/// What a bound left out.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub points: u64,
    pub series: u64,
    pub group_events: u64,
    pub alerts: u64,
    pub clients: u64,
    pub brokers: u64,
    pub topics: u64,
    pub rollup_series: u64,
}

impl Dropped {
    pub fn any(&self) -> bool {
        *self != Dropped::default()
    }
}

/// Sum, count and maximum of the values that fell in one bucket.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Agg {
    pub n: u64,
    pub sum: u64,
    pub max: u64,
}

impl Agg {
    fn add(&mut self, v: u64) {
        self.n += 1;
        self.sum += v;
        self.max = self.max.max(v);
    }

    fn merge(&mut self, o: &Agg) {
        self.n += o.n;
        self.sum += o.sum;
        self.max = self.max.max(o.max);
    }
}

/// What an aggregate series counts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    /// Records produced to a topic (n = requests, sum = records).
    Produce(Name),
    /// Records fetched from a topic by consumers.
    Fetch(Name),
    /// Produce requests of one client to one topic with one acks value (sum = records).
    Acks {
        topic: Name,
        acks: i16,
        client: Name,
    },
    /// Latency of an API at a broker, in microseconds.
    Latency { api: &'static str, broker: Endpoint },
    /// JoinGroup answers (rebalances) of a group.
    Joins(Name),
}

/// Aggregates on one shared time grid of [`BUCKETS`] buckets (see the module doc).
#[derive(Debug, Clone, Default)]
pub struct Rollup {
    pub origin: Option<Timestamp>,
    pub width_ns: i64,
    pub series: BTreeMap<Key, Vec<Agg>>,
}

impl Rollup {
    fn add(&mut self, ts: Timestamp, key: Key, v: u64, dropped: &mut u64) {
        let origin = *self.origin.get_or_insert(ts);
        if self.width_ns == 0 {
            self.width_ns = FIRST_WIDTH_NS;
        }
        let since = ts.nanos_since(origin).max(0);
        while since / self.width_ns >= BUCKETS as i64 {
            self.coarsen();
        }
        let i = (since / self.width_ns) as usize;
        if !self.series.contains_key(&key) && self.series.len() >= MAX_ROLLUP_SERIES {
            *dropped += 1;
            return;
        }
        self.series
            .entry(key)
            .or_insert_with(|| vec![Agg::default(); BUCKETS])[i]
            .add(v);
    }

    /// Every series merges pairs of buckets; the width doubles.
    fn coarsen(&mut self) {
        for v in self.series.values_mut() {
            for i in 0..BUCKETS / 2 {
                let mut a = v[2 * i];
                a.merge(&v[2 * i + 1]);
                v[i] = a;
            }
            for b in &mut v[BUCKETS / 2..] {
                *b = Agg::default();
            }
        }
        self.width_ns = self.width_ns.saturating_mul(2);
    }

    /// The start time of bucket `i`.
    pub fn bucket_ts(&self, i: usize) -> Timestamp {
        self.origin
            .unwrap_or_default()
            .add_nanos(self.width_ns.saturating_mul(i as i64))
    }
}

/// Everything the report keeps; see the module doc.
#[derive(Default)]
pub struct Collector {
    filter: OutputFilter,
    pub first_ts: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
    cur: Option<XRef>,
    pub alerts: Vec<AlertLine>,
    pub offsets: BTreeMap<(Name, Name, i32), VecDeque<Point>>,
    points: usize,
    pub groups: BTreeMap<Name, VecDeque<GroupEv>>,
    pub clients: BTreeMap<(Name, IpAddr), ClientInfo>,
    pub brokers: BTreeMap<Endpoint, BrokerInfo>,
    pub topics: BTreeMap<Name, TopicInfo>,
    pub rollup: Rollup,
    pub dropped: Dropped,
    /// Notices by kind (gaps, desyncs...), for the fidelity box.
    pub notices: BTreeMap<&'static str, u64>,
}

impl Collector {
    pub fn new(filter: OutputFilter) -> Self {
        Collector {
            filter,
            ..Default::default()
        }
    }

    pub fn filter(&self) -> &OutputFilter {
        &self.filter
    }

    fn seen(&mut self, ts: Timestamp) {
        if self.first_ts.is_none_or(|f| ts < f) {
            self.first_ts = Some(ts);
        }
        if self.last_ts.is_none_or(|l| ts > l) {
            self.last_ts = Some(ts);
        }
    }

    /// The exchange a finding on connection `conn` came from, if it is the last one seen.
    fn xref(&self, conn: u64) -> Option<XRef> {
        self.cur.filter(|x| x.conn == conn)
    }

    pub fn add(&mut self, o: &Output) {
        match o {
            Output::Exchange(x) => self.on_exchange(x),
            Output::Timeline(t) => {
                self.seen(t.ts);
                let x = self.xref(t.conn);
                self.on_point(t, x);
            }
            Output::Group(g) => {
                self.seen(g.ts);
                let x = self.xref(g.conn);
                self.on_group(g, x);
            }
            Output::Alert(a) => {
                if !self.filter.alert(a) {
                    return;
                }
                let x = match (a.exchange, self.cur) {
                    (Some((conn, corr, _)), Some(c))
                        if c.conn == conn && c.correlation_id == corr =>
                    {
                        Some(c)
                    }
                    _ => None,
                };
                if self.alerts.len() >= MAX_ALERTS {
                    self.dropped.alerts += 1;
                    return;
                }
                self.alerts.push(AlertLine {
                    a: (**a).clone(),
                    x,
                });
            }
            Output::Notice(n) => *self.notices.entry(n.notice.name()).or_insert(0) += 1,
        }
    }

    fn on_exchange(&mut self, x: &ExchangeRecord) {
        let e = &x.exchange;
        self.cur = Some(XRef::of(x));
        if !self.filter.exchange(x) {
            return;
        }
        self.seen(e.request_ts);
        let client_id: Name = Name::from(e.request.client_id.as_deref().unwrap_or(""));
        // Clients.
        let ck = (client_id.clone(), x.conn.client.ip);
        if !self.clients.contains_key(&ck) && self.clients.len() >= MAX_CLIENTS {
            self.dropped.clients += 1;
        } else {
            let c = self.clients.entry(ck).or_default();
            c.exchanges += 1;
            if c.addrs.len() < MAX_ADDRS_PER_CLIENT {
                c.addrs.insert(x.conn.client);
            }
            if let Some(p) = x.conn.client_owner.as_ref().and_then(|o| o.pod.as_ref()) {
                let ns = x
                    .conn
                    .client_owner
                    .as_ref()
                    .and_then(|o| o.namespace.clone());
                c.pod = Some(match ns {
                    Some(ns) => format!("{ns}/{p}"),
                    None => p.clone(),
                });
            }
            c.first_ts.get_or_insert(e.request_ts);
            c.last_ts = Some(e.request_ts);
        }
        // Brokers.
        if !self.brokers.contains_key(&x.conn.broker) && self.brokers.len() >= MAX_BROKERS {
            self.dropped.brokers += 1;
        } else {
            let b = self.brokers.entry(x.conn.broker).or_default();
            b.exchanges += 1;
            if b.clients.len() < MAX_CLIENTS {
                b.clients.insert(client_id.clone());
            }
        }
        // Latency per API and broker.
        if let Some(us) = x.latency_us() {
            let key = Key::Latency {
                api: kwire_kafka::api::api_name(e.api_key),
                broker: x.conn.broker,
            };
            self.rollup.add(
                e.request_ts,
                key,
                u64::try_from(us).unwrap_or(0),
                &mut self.dropped.rollup_series,
            );
        }
        let acks = match &e.request.body {
            Decoded::Full(RequestBody::Produce(p)) => Some(p.acks),
            _ => None,
        };
        let Some(f) = x.facts.as_deref() else {
            return;
        };
        use kwire_engine::facts::Operation;
        // Per topic: one aggregate per exchange and topic.
        let mut per_topic: BTreeMap<&str, (u64, u64, BTreeSet<i32>)> = BTreeMap::new();
        for p in &f.parts {
            let t = per_topic.entry(&*p.topic).or_default();
            t.0 += p.records;
            t.1 += p.bytes;
            t.2.insert(p.partition);
        }
        for (topic, (records, bytes, parts)) in per_topic {
            if topic.is_empty() {
                continue;
            }
            let name: Name = Name::from(topic);
            if !self.topics.contains_key(&name) && self.topics.len() >= MAX_TOPICS {
                self.dropped.topics += 1;
                continue;
            }
            let ti = self.topics.entry(name.clone()).or_default();
            if ti.partitions.len() < 4096 {
                ti.partitions.extend(parts);
            }
            match f.operation {
                Operation::Send => {
                    ti.produce_requests += 1;
                    ti.produced_records += records;
                    ti.produced_bytes += bytes;
                    if ti.producers.len() < 256 {
                        ti.producers.insert(client_id.clone());
                    }
                    let d = &mut self.dropped.rollup_series;
                    self.rollup
                        .add(e.request_ts, Key::Produce(name.clone()), records, d);
                    if let Some(acks) = acks {
                        let key = Key::Acks {
                            topic: name.clone(),
                            acks,
                            client: client_id.clone(),
                        };
                        self.rollup.add(e.request_ts, key, records, d);
                    }
                }
                Operation::Receive => {
                    ti.fetched_records += records;
                    if ti.consumers.len() < 256 {
                        ti.consumers.insert(client_id.clone());
                    }
                    self.rollup.add(
                        e.request_ts,
                        Key::Fetch(name.clone()),
                        records,
                        &mut self.dropped.rollup_series,
                    );
                }
                _ => {}
            }
        }
    }

    fn on_point(&mut self, t: &kwire_engine::TimelineRecord, x: Option<XRef>) {
        let key = (t.client_id.clone(), t.topic.clone(), t.partition);
        if !self.offsets.contains_key(&key) && self.offsets.len() >= MAX_SERIES {
            self.dropped.series += 1;
            return;
        }
        let always = matches!(
            t.what,
            "committed" | "commit_rejected" | "fetch_error" | "offset_fetch"
        );
        let series = self.offsets.entry(key).or_default();
        let mut repeat = false;
        if !always {
            // A run of one value is kept as its first and its latest observation: the latest is the
            // one a detector names (`previous_ts`), the first is where the chart's step starts.
            if let Some(last) = series.iter_mut().rev().find(|p| p.what == t.what) {
                if last.offset == t.offset
                    && last.broker == t.broker
                    && last.epoch == t.leader_epoch
                {
                    if last.repeat {
                        last.ts = t.ts;
                        last.x = x;
                        return;
                    }
                    repeat = true;
                }
            }
        }
        if series.len() >= MAX_POINTS_PER_SERIES || self.points >= MAX_POINTS {
            if series.pop_front().is_none() {
                self.dropped.points += 1;
                return;
            }
            self.points -= 1;
            self.dropped.points += 1;
        }
        series.push_back(Point {
            ts: t.ts,
            what: t.what,
            offset: t.offset,
            broker: t.broker,
            epoch: t.leader_epoch,
            error: t.error,
            x,
            repeat,
        });
        self.points += 1;
    }

    fn on_group(&mut self, g: &kwire_engine::output::GroupEventRecord, x: Option<XRef>) {
        if !self.groups.contains_key(&g.group) && self.groups.len() >= MAX_GROUPS {
            self.dropped.group_events += 1;
            return;
        }
        if g.what == "join" && g.error.is_none() {
            self.rollup.add(
                g.ts,
                Key::Joins(g.group.clone()),
                1,
                &mut self.dropped.rollup_series,
            );
        }
        let v = self.groups.entry(g.group.clone()).or_default();
        if v.len() >= MAX_GROUP_EVENTS {
            v.pop_front();
            self.dropped.group_events += 1;
        }
        v.push_back(GroupEv { e: g.clone(), x });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollup_grid_coarsens_for_every_series_alike() {
        let mut r = Rollup::default();
        let mut d = 0;
        let t0 = Timestamp(1_000_000_000_000);
        r.add(t0, Key::Joins(Name::from("g")), 1, &mut d);
        // 1.2 s later: past 120 buckets of 10 ms, the width doubles to 20 ms.
        r.add(
            t0.add_nanos(1_200_000_000),
            Key::Fetch(Name::from("t")),
            5,
            &mut d,
        );
        assert_eq!(r.width_ns, 20_000_000);
        assert_eq!(r.series[&Key::Joins(Name::from("g"))][0].n, 1);
        assert_eq!(r.series[&Key::Fetch(Name::from("t"))][60].sum, 5);
        // A day later: still 120 buckets.
        r.add(
            t0.add_nanos(86_400 * 1_000_000_000),
            Key::Joins(Name::from("g")),
            1,
            &mut d,
        );
        let v = &r.series[&Key::Joins(Name::from("g"))];
        assert_eq!(v.len(), BUCKETS);
        assert_eq!(v.iter().map(|a| a.n).sum::<u64>(), 2);
        assert_eq!(v[0].n, 1);
        assert!(r.width_ns * BUCKETS as i64 > 86_400 * 1_000_000_000);
        assert_eq!(d, 0);
    }
}
