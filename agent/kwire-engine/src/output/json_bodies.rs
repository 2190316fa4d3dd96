//! The writer of exchange lines ([`W`], also used for the envelope by `json::write_exchange`) and the
//! decoded bodies of the hottest exchanges (Produce and Fetch, requests and responses: nearly every
//! exchange of a busy node) written straight into the JSON line; every other body goes through serde
//! (sonic-rs).
//!
//! Why: measured under callgrind on realistic traffic, serialising a Produce request through serde cost
//! about 5,000 instructions, 3,000 of them for one 12-field `BatchInfo` (a generic state machine, a
//! key serializer and an escape scan for every field name). Here field names are byte literals (a
//! fixed-size copy each), integers go through `itoa`, and only topic names and other free strings go
//! through sonic-rs's escaper.
//!
//! Easy to get wrong: this restates the `Serialize` derives of `kwire_kafka::body::{produce, fetch}` and
//! `records::BatchInfo`, field order and `skip_serializing_if` rules included. Kept honest by the
//! `engine_packets` fuzz harness (and so `fuzz_smoke`, over every fixture and public capture, damaged
//! too), which compares every line with serde_json writing the derives, and by the golden outputs. A
//! field added to one of these structs must be added here too: the harness fails until it is.

use kwire_kafka::body::{
    FetchPartition, FetchPartitionResponse, FetchRequest, FetchResponse, FetchTopic,
    FetchTopicResponse, LeaderAndEpoch, ProducePartition, ProducePartitionResponse, ProduceRequest,
    ProduceResponse, ProduceTopic, ProduceTopicResponse, RequestBody, ResponseBody,
};
use kwire_kafka::records::BatchInfo;
use kwire_kafka::wire::Uuid;

type Result = std::result::Result<(), sonic_rs::Error>;

/// A topic of a Produce or Fetch body: its name, its id and its partitions.
trait Topic {
    type Part;
    fn parts(&self) -> (Option<&str>, Option<&Uuid>, &[Self::Part]);
}

macro_rules! topic {
    ($t:ty, $p:ty) => {
        impl Topic for $t {
            type Part = $p;
            fn parts(&self) -> (Option<&str>, Option<&Uuid>, &[$p]) {
                (
                    self.name.as_deref(),
                    self.topic_id.as_ref(),
                    &self.partitions,
                )
            }
        }
    };
}
topic!(ProduceTopic, ProducePartition);
topic!(ProduceTopicResponse, ProducePartitionResponse);
topic!(FetchTopic, FetchPartition);
topic!(FetchTopicResponse, FetchPartitionResponse);

/// The JSON line being written and a reused integer formatter: what the exchange envelope
/// (`json::write_exchange`) and the hot bodies below write with.
pub(super) struct W<'a> {
    pub(super) buf: &'a mut Vec<u8>,
    int: itoa::Buffer,
}

impl<'a> W<'a> {
    pub(super) fn new(buf: &'a mut Vec<u8>) -> Self {
        W {
            buf,
            int: itoa::Buffer::new(),
        }
    }

    /// Bytes that need no escaping (keys, punctuation).
    #[inline]
    pub(super) fn lit(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    #[inline]
    pub(super) fn int<I: itoa::Integer>(&mut self, v: I) {
        self.buf.extend_from_slice(self.int.format(v).as_bytes());
    }

    /// An optional integer that is written either way: its digits or `null`.
    #[inline]
    pub(super) fn int_or_null<I: itoa::Integer>(&mut self, v: Option<I>) {
        match v {
            Some(v) => self.int(v),
            None => self.lit(b"null"),
        }
    }

    /// A request body (`null` when it did not decode), as `Option<&RequestBody>` serialises.
    pub(super) fn request(&mut self, body: Option<&RequestBody>) -> Result {
        match body {
            Some(RequestBody::Produce(p)) => self.produce_request(p),
            Some(RequestBody::Fetch(f)) => self.fetch_request(f),
            other => sonic_rs::to_writer(&mut *self.buf, &other),
        }
    }

    /// A response body (`null` when it did not decode), as `Option<&ResponseBody>` serialises.
    pub(super) fn response(&mut self, body: Option<&ResponseBody>) -> Result {
        match body {
            Some(ResponseBody::Produce(p)) => self.produce_response(p),
            Some(ResponseBody::Fetch(f)) => self.fetch_response(f),
            other => sonic_rs::to_writer(&mut *self.buf, &other),
        }
    }

    /// `key` (a literal: `,"name":`) and the value, when there is one (`skip_serializing_if =
    /// "Option::is_none"`).
    #[inline]
    fn opt<I: itoa::Integer>(&mut self, key: &[u8], v: Option<I>) {
        if let Some(v) = v {
            self.lit(key);
            self.int(v);
        }
    }

    #[inline]
    fn bool(&mut self, v: bool) {
        self.lit(if v { b"true" } else { b"false" });
    }

    /// A free string (a topic name, a rack): escaped as serde_json does.
    pub(super) fn str(&mut self, s: &str) -> Result {
        sonic_rs::to_writer(&mut *self.buf, s)
    }

    fn uuid(&mut self, u: &Uuid) {
        self.buf.push(b'"');
        self.buf.extend_from_slice(&u.hex());
        self.buf.push(b'"');
    }

    /// A list: `[`, each element by `f` with commas between, `]`.
    fn list<T>(&mut self, items: &[T], mut f: impl FnMut(&mut Self, &T) -> Result) -> Result {
        self.buf.push(b'[');
        for (i, it) in items.iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            f(self, it)?;
        }
        self.buf.push(b']');
        Ok(())
    }

    /// A list of topics: each `{"name":..,"topic_id":..,"partitions":[..]}` (name and id only when
    /// present), every partition written by `part`.
    fn topics<T: Topic>(
        &mut self,
        topics: &[T],
        mut part: impl FnMut(&mut Self, &T::Part) -> Result,
    ) -> Result {
        self.list(topics, |w, t| {
            let (name, id, parts) = t.parts();
            w.buf.push(b'{');
            w.topic_ref(name, id)?;
            w.list(parts, &mut part)?;
            w.buf.push(b'}');
            Ok(())
        })
    }

    /// The name and id of a topic (each only when present), then `"partitions":`; `{` already written.
    fn topic_ref(&mut self, name: Option<&str>, id: Option<&Uuid>) -> Result {
        let mut first = true;
        if let Some(n) = name {
            self.lit(b"\"name\":");
            self.str(n)?;
            first = false;
        }
        if let Some(u) = id {
            self.lit(if first {
                b"\"topic_id\":"
            } else {
                b",\"topic_id\":"
            });
            self.uuid(u);
            first = false;
        }
        self.lit(if first {
            b"\"partitions\":"
        } else {
            b",\"partitions\":"
        });
        Ok(())
    }

    /// The record-set fields shared by a Produce partition and a Fetch partition response, from
    /// `"record_bytes"` on.
    fn records(
        &mut self,
        bytes: usize,
        batches: &[BatchInfo],
        omitted: u32,
        malformed: bool,
    ) -> Result {
        self.lit(b",\"record_bytes\":");
        self.int(bytes);
        self.lit(b",\"batches\":");
        self.list(batches, |w, b| {
            w.batch(b);
            Ok(())
        })?;
        if omitted != 0 {
            self.lit(b",\"batches_omitted\":");
            self.int(omitted);
        }
        if malformed {
            self.lit(b",\"records_malformed\":true");
        }
        Ok(())
    }

    fn batch(&mut self, b: &BatchInfo) {
        self.lit(b"{\"base_offset\":");
        self.int(b.base_offset);
        self.lit(b",\"last_offset_delta\":");
        self.int(b.last_offset_delta);
        self.lit(b",\"record_count\":");
        self.int(b.record_count);
        self.lit(b",\"producer_id\":");
        self.int(b.producer_id);
        self.lit(b",\"producer_epoch\":");
        self.int(b.producer_epoch);
        self.lit(b",\"base_sequence\":");
        self.int(b.base_sequence);
        // Codec names are lowercase ASCII words: nothing to escape.
        self.lit(b",\"compression\":\"");
        self.lit(b.compression.as_str().as_bytes());
        self.lit(b"\",\"magic\":");
        self.int(b.magic);
        self.lit(b",\"transactional\":");
        self.bool(b.transactional);
        self.lit(b",\"control\":");
        self.bool(b.control);
        self.lit(b",\"batch_length\":");
        self.int(b.batch_length);
        self.lit(b",\"truncated\":");
        self.bool(b.truncated);
        self.buf.push(b'}');
    }

    fn leader(&mut self, key: &[u8], l: Option<&LeaderAndEpoch>) {
        if let Some(l) = l {
            self.lit(key);
            self.lit(b"{\"leader_id\":");
            self.int(l.leader_id);
            self.lit(b",\"leader_epoch\":");
            self.int(l.leader_epoch);
            self.buf.push(b'}');
        }
    }

    fn produce_request(&mut self, p: &ProduceRequest) -> Result {
        self.buf.push(b'{');
        if let Some(t) = &p.transactional_id {
            self.lit(b"\"transactional_id\":");
            self.str(t)?;
            self.buf.push(b',');
        }
        self.lit(b"\"acks\":");
        self.int(p.acks);
        self.lit(b",\"timeout_ms\":");
        self.int(p.timeout_ms);
        self.lit(b",\"topics\":");
        self.topics(&p.topics, |w, p: &ProducePartition| {
            w.lit(b"{\"partition\":");
            w.int(p.partition);
            w.records(
                p.record_bytes,
                &p.batches,
                p.batches_omitted,
                p.records_malformed,
            )?;
            w.buf.push(b'}');
            Ok(())
        })?;
        self.buf.push(b'}');
        Ok(())
    }

    fn produce_response(&mut self, p: &ProduceResponse) -> Result {
        self.lit(b"{\"topics\":");
        self.topics(&p.topics, |w, p: &ProducePartitionResponse| {
            w.lit(b"{\"partition\":");
            w.int(p.partition);
            w.lit(b",\"error_code\":");
            w.int(p.error_code);
            w.lit(b",\"base_offset\":");
            w.int(p.base_offset);
            w.opt(b",\"log_append_time_ms\":", p.log_append_time_ms);
            w.opt(b",\"log_start_offset\":", p.log_start_offset);
            if p.record_errors != 0 {
                w.lit(b",\"record_errors\":");
                w.int(p.record_errors);
            }
            if let Some(m) = &p.error_message {
                w.lit(b",\"error_message\":");
                w.str(m)?;
            }
            w.leader(b",\"current_leader\":", p.current_leader.as_ref());
            w.buf.push(b'}');
            Ok(())
        })?;
        self.opt(b",\"throttle_time_ms\":", p.throttle_time_ms);
        if !p.node_endpoints.is_empty() {
            self.lit(b",\"node_endpoints\":");
            sonic_rs::to_writer(&mut *self.buf, &p.node_endpoints)?;
        }
        self.buf.push(b'}');
        Ok(())
    }

    fn fetch_request(&mut self, f: &FetchRequest) -> Result {
        self.buf.push(b'{');
        if let Some(r) = f.replica_id {
            self.lit(b"\"replica_id\":");
            self.int(r);
            self.buf.push(b',');
        }
        self.lit(b"\"max_wait_ms\":");
        self.int(f.max_wait_ms);
        self.lit(b",\"min_bytes\":");
        self.int(f.min_bytes);
        self.opt(b",\"max_bytes\":", f.max_bytes);
        self.opt(b",\"isolation_level\":", f.isolation_level);
        self.opt(b",\"session_id\":", f.session_id);
        self.opt(b",\"session_epoch\":", f.session_epoch);
        self.lit(b",\"topics\":");
        self.topics(&f.topics, |w, p: &FetchPartition| {
            w.lit(b"{\"partition\":");
            w.int(p.partition);
            w.opt(b",\"current_leader_epoch\":", p.current_leader_epoch);
            w.lit(b",\"fetch_offset\":");
            w.int(p.fetch_offset);
            w.opt(b",\"last_fetched_epoch\":", p.last_fetched_epoch);
            w.opt(b",\"log_start_offset\":", p.log_start_offset);
            w.lit(b",\"partition_max_bytes\":");
            w.int(p.partition_max_bytes);
            w.buf.push(b'}');
            Ok(())
        })?;
        if f.forgotten_topics != 0 {
            self.lit(b",\"forgotten_topics\":");
            self.int(f.forgotten_topics);
        }
        if let Some(r) = &f.rack_id {
            self.lit(b",\"rack_id\":");
            self.str(r)?;
        }
        if let Some(c) = &f.cluster_id {
            self.lit(b",\"cluster_id\":");
            self.str(c)?;
        }
        self.buf.push(b'}');
        Ok(())
    }

    fn fetch_response(&mut self, f: &FetchResponse) -> Result {
        self.buf.push(b'{');
        if let Some(t) = f.throttle_time_ms {
            self.lit(b"\"throttle_time_ms\":");
            self.int(t);
            self.buf.push(b',');
        }
        if let Some(e) = f.error_code {
            self.lit(b"\"error_code\":");
            self.int(e);
            self.buf.push(b',');
        }
        if let Some(s) = f.session_id {
            self.lit(b"\"session_id\":");
            self.int(s);
            self.buf.push(b',');
        }
        self.lit(b"\"topics\":");
        self.topics(&f.topics, |w, p: &FetchPartitionResponse| {
            w.lit(b"{\"partition\":");
            w.int(p.partition);
            w.lit(b",\"error_code\":");
            w.int(p.error_code);
            w.lit(b",\"high_watermark\":");
            w.int(p.high_watermark);
            w.opt(b",\"last_stable_offset\":", p.last_stable_offset);
            w.opt(b",\"log_start_offset\":", p.log_start_offset);
            w.opt(b",\"aborted_transactions\":", p.aborted_transactions);
            w.opt(b",\"preferred_read_replica\":", p.preferred_read_replica);
            if let Some(d) = &p.diverging_epoch {
                w.lit(b",\"diverging_epoch\":{\"epoch\":");
                w.int(d.epoch);
                w.lit(b",\"end_offset\":");
                w.int(d.end_offset);
                w.buf.push(b'}');
            }
            w.leader(b",\"current_leader\":", p.current_leader.as_ref());
            w.records(
                p.record_bytes,
                &p.batches,
                p.batches_omitted,
                p.records_malformed,
            )?;
            w.buf.push(b'}');
            Ok(())
        })?;
        if !f.node_endpoints.is_empty() {
            self.lit(b",\"node_endpoints\":");
            sonic_rs::to_writer(&mut *self.buf, &f.node_endpoints)?;
        }
        self.buf.push(b'}');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kwire_kafka::body::{EpochEndOffset, Inline, NodeEndpoint};
    use kwire_kafka::records::Compression;

    fn serde_bytes<T: serde::Serialize>(v: &T) -> String {
        serde_json::to_string(v).unwrap()
    }

    fn batches() -> Vec<BatchInfo> {
        let mut b = BatchInfo::empty();
        b.base_offset = 42;
        b.last_offset_delta = 3;
        b.record_count = 4;
        b.producer_id = 7;
        b.producer_epoch = 1;
        b.base_sequence = 9;
        b.compression = Compression::Unknown(6);
        b.magic = 2;
        b.transactional = true;
        b.control = true;
        b.batch_length = 300;
        b.truncated = true;
        vec![b, BatchInfo::empty()]
    }

    fn endpoints() -> Vec<NodeEndpoint> {
        vec![NodeEndpoint {
            node_id: 1,
            host: "b\"1".into(),
            port: 9092,
            rack: Some("r".into()),
        }]
    }

    /// Every optional field present, then every one absent: the bytes serde_json writes from the derives.
    #[test]
    fn hot_bodies_write_what_serde_writes() {
        let leader = Some(LeaderAndEpoch {
            leader_id: 2,
            leader_epoch: 5,
        });
        let id = Some(Uuid([7; 16]));
        let full = [
            RequestBody::Produce(ProduceRequest {
                transactional_id: Some("tx\n".into()),
                acks: -1,
                timeout_ms: 30000,
                topics: Inline::from_vec(vec![ProduceTopic {
                    name: Some("t\u{1}é".into()),
                    topic_id: id,
                    partitions: Inline::from_vec(vec![ProducePartition {
                        partition: 3,
                        record_bytes: 900,
                        batches: batches().into(),
                        batches_omitted: 2,
                        records_malformed: true,
                    }]),
                }]),
            }),
            RequestBody::Produce(ProduceRequest {
                transactional_id: None,
                acks: 1,
                timeout_ms: 0,
                topics: Inline::from_vec(vec![
                    ProduceTopic {
                        name: None,
                        topic_id: id,
                        partitions: Inline::from_vec(vec![]),
                    },
                    ProduceTopic {
                        name: None,
                        topic_id: None,
                        partitions: Inline::from_vec(vec![ProducePartition {
                            partition: 0,
                            record_bytes: 0,
                            batches: Default::default(),
                            batches_omitted: 0,
                            records_malformed: false,
                        }]),
                    },
                ]),
            }),
            RequestBody::Fetch(FetchRequest {
                replica_id: Some(-1),
                max_wait_ms: 500,
                min_bytes: 1,
                max_bytes: Some(52428800),
                isolation_level: Some(1),
                session_id: Some(0),
                session_epoch: Some(-1),
                topics: vec![FetchTopic {
                    name: Some("orders".into()),
                    topic_id: id,
                    partitions: vec![FetchPartition {
                        partition: 1,
                        current_leader_epoch: Some(4),
                        fetch_offset: 100,
                        last_fetched_epoch: Some(3),
                        log_start_offset: Some(-1),
                        partition_max_bytes: 1048576,
                    }],
                }],
                forgotten_topics: 2,
                rack_id: Some("rack\\1".into()),
                cluster_id: Some("c".into()),
            }),
            RequestBody::Fetch(FetchRequest {
                replica_id: None,
                max_wait_ms: 0,
                min_bytes: 0,
                max_bytes: None,
                isolation_level: None,
                session_id: None,
                session_epoch: None,
                topics: vec![FetchTopic {
                    name: None,
                    topic_id: None,
                    partitions: vec![FetchPartition {
                        partition: 1,
                        current_leader_epoch: None,
                        fetch_offset: 100,
                        last_fetched_epoch: None,
                        log_start_offset: None,
                        partition_max_bytes: 1,
                    }],
                }],
                forgotten_topics: 0,
                rack_id: None,
                cluster_id: None,
            }),
        ];
        for b in &full {
            let mut ours = Vec::new();
            W::new(&mut ours).request(Some(b)).unwrap();
            assert_eq!(String::from_utf8(ours).unwrap(), serde_bytes(&Some(b)));
        }
        let responses = [
            ResponseBody::Produce(ProduceResponse {
                topics: Inline::from_vec(vec![ProduceTopicResponse {
                    name: Some("t".into()),
                    topic_id: id,
                    partitions: Inline::from_vec(vec![ProducePartitionResponse {
                        partition: 0,
                        error_code: 6,
                        base_offset: -1,
                        log_append_time_ms: Some(-1),
                        log_start_offset: Some(0),
                        record_errors: 2,
                        error_message: Some("not \"leader\"".into()),
                        current_leader: leader,
                    }]),
                }]),
                throttle_time_ms: Some(0),
                node_endpoints: endpoints(),
            }),
            ResponseBody::Produce(ProduceResponse {
                topics: Inline::from_vec(vec![ProduceTopicResponse {
                    name: None,
                    topic_id: None,
                    partitions: Inline::from_vec(vec![ProducePartitionResponse {
                        partition: 0,
                        error_code: 0,
                        base_offset: 10,
                        log_append_time_ms: None,
                        log_start_offset: None,
                        record_errors: 0,
                        error_message: None,
                        current_leader: None,
                    }]),
                }]),
                throttle_time_ms: None,
                node_endpoints: vec![],
            }),
            ResponseBody::Fetch(FetchResponse {
                throttle_time_ms: Some(1),
                error_code: Some(0),
                session_id: Some(77),
                topics: vec![FetchTopicResponse {
                    name: Some("orders".into()),
                    topic_id: id,
                    partitions: vec![FetchPartitionResponse {
                        partition: 1,
                        error_code: 0,
                        high_watermark: 1000,
                        last_stable_offset: Some(999),
                        log_start_offset: Some(0),
                        aborted_transactions: Some(0),
                        preferred_read_replica: Some(-1),
                        diverging_epoch: Some(EpochEndOffset {
                            epoch: 3,
                            end_offset: 50,
                        }),
                        current_leader: leader,
                        record_bytes: 1200,
                        batches: batches().into(),
                        batches_omitted: 1,
                        records_malformed: true,
                    }],
                }],
                node_endpoints: endpoints(),
            }),
            ResponseBody::Fetch(FetchResponse {
                throttle_time_ms: None,
                error_code: None,
                session_id: None,
                topics: vec![],
                node_endpoints: vec![],
            }),
        ];
        for b in &responses {
            let mut ours = Vec::new();
            W::new(&mut ours).response(Some(b)).unwrap();
            assert_eq!(String::from_utf8(ours).unwrap(), serde_bytes(&Some(b)));
        }
        let mut none = Vec::new();
        W::new(&mut none).request(None).unwrap();
        W::new(&mut none).response(None).unwrap();
        assert_eq!(none, b"nullnull");
    }
}
