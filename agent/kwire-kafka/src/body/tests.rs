//! Body decoder tests: byte arrays with a comment per field for the hand-written decoders (house rule 11),
//! cross-checks against kafka-protocol's encoders, truncation at every prefix, and random bytes for
//! every api key / version (no panic).
//!
//! Easy to get wrong: the crate only encodes the versions it knows (Produce 3+, Fetch 4+, ...), so the
//! legacy versions are covered by the hand-built byte arrays only.

use super::*;
use crate::records::Compression;
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages as km;
use kafka_protocol::protocol::{Encodable, StrBytes};

/// Byte builder: one call per wire field, so each test line can carry the field's comment.
#[derive(Default, Clone)]
struct B(Vec<u8>);
impl B {
    fn new() -> Self {
        B(Vec::new())
    }
    fn i8(mut self, v: i8) -> Self {
        self.0.push(v as u8);
        self
    }
    #[allow(dead_code)]
    fn bool(self, v: bool) -> Self {
        self.i8(v as i8)
    }
    fn i16(mut self, v: i16) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn i32(mut self, v: i32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn i64(mut self, v: i64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn uvar(mut self, mut v: u32) -> Self {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(b);
                return self;
            }
            self.0.push(b | 0x80);
        }
    }
    /// classic string (i16 length)
    fn s(self, s: &str) -> Self {
        self.i16(s.len() as i16).raw(s.as_bytes())
    }
    /// classic null string
    fn ns(self) -> Self {
        self.i16(-1)
    }
    /// compact string
    fn cs(self, s: &str) -> Self {
        self.uvar(s.len() as u32 + 1).raw(s.as_bytes())
    }
    /// compact null string
    fn cns(self) -> Self {
        self.uvar(0)
    }
    /// classic array length
    fn arr(self, n: i32) -> Self {
        self.i32(n)
    }
    /// compact array length
    fn carr(self, n: u32) -> Self {
        self.uvar(n + 1)
    }
    /// classic bytes (i32 length)
    fn bytes(self, b: &[u8]) -> Self {
        self.i32(b.len() as i32).raw(b)
    }
    /// compact bytes
    fn cbytes(self, b: &[u8]) -> Self {
        self.uvar(b.len() as u32 + 1).raw(b)
    }
    /// empty tagged-field section
    fn tags0(self) -> Self {
        self.uvar(0)
    }
    fn uuid(self, u: [u8; 16]) -> Self {
        self.raw(&u)
    }
    fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    fn done(self) -> Vec<u8> {
        self.0
    }
}

const TID: [u8; 16] = [
    0x8f, 0x1e, 0x6a, 0x2b, 0x44, 0x4c, 0x4d, 0x5e, 0x9f, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
];

fn v2_batch(base: i64, attrs: i16, lod: i32, count: i32, n_body: usize) -> Vec<u8> {
    B::new()
        .i64(base) // base_offset
        .i32(49 + n_body as i32) // batch_length
        .i32(0) // partition_leader_epoch
        .i8(2) // magic
        .i32(0) // crc (not checked)
        .i16(attrs) // attributes
        .i32(lod) // last_offset_delta
        .i64(1_700_000_000_000) // base_timestamp
        .i64(1_700_000_000_000) // max_timestamp
        .i64(4242) // producer_id
        .i16(1) // producer_epoch
        .i32(0) // base_sequence
        .i32(count) // records_count
        .raw(&vec![0x55; n_body]) // records: never read
        .done()
}

fn legacy_msg(offset: i64, magic: i8, attrs: i8, value: &[u8]) -> Vec<u8> {
    let mut m = B::new()
        .i32(0) // crc
        .i8(magic) // magic
        .i8(attrs); // attributes
    if magic == 1 {
        m = m.i64(1_500_000_000_000); // timestamp
    }
    let m = m
        .i32(-1) // key: null
        .bytes(value) // value
        .done();
    B::new()
        .i64(offset) // offset
        .i32(m.len() as i32) // message_size
        .raw(&m)
        .done()
}

fn req(k: i16, v: i16, b: &[u8]) -> RequestBody {
    decode_request_strict(k, v, b).unwrap_or_else(|e| panic!("api {k} v{v}: {e}"))
}
fn resp(k: i16, v: i16, b: &[u8]) -> ResponseBody {
    decode_response_strict(k, v, b).unwrap_or_else(|e| panic!("api {k} v{v}: {e}"))
}

// ------------------------------------------------------------------ Produce

#[test]
fn produce_v0_request_magic0() {
    let set = legacy_msg(0, 0, 0, b"hello");
    let b = B::new()
        .i16(1) // acks
        .i32(30_000) // timeout_ms
        .arr(1) // topics
        .s("orders") // name
        .arr(1) // partitions
        .i32(3) // partition
        .bytes(&set) // records (magic 0 message set)
        .done();
    let RequestBody::Produce(p) = req(0, 0, &b) else {
        panic!()
    };
    assert_eq!(p.transactional_id, None);
    assert_eq!((p.acks, p.timeout_ms), (1, 30_000));
    let part = &p.topics[0].partitions[0];
    assert_eq!(p.topics[0].name.as_deref(), Some("orders"));
    assert_eq!(part.partition, 3);
    assert_eq!(part.record_bytes, set.len());
    assert_eq!(part.batches[0].magic, 0);
}

#[test]
fn produce_v2_request_magic1_gzip() {
    let set = legacy_msg(7, 1, 1, &[0x1f, 0x8b, 0, 0]);
    let b = B::new()
        .i16(-1) // acks = all
        .i32(1000) // timeout_ms
        .arr(1) // topics
        .s("t") // name
        .arr(1) // partitions
        .i32(0) // partition
        .bytes(&set) // records (magic 1 gzip wrapper)
        .done();
    let RequestBody::Produce(p) = req(0, 2, &b) else {
        panic!()
    };
    let bi = &p.topics[0].partitions[0].batches[0];
    assert_eq!(
        (bi.magic, bi.compression, bi.record_count, bi.base_offset),
        (1, Compression::Gzip, 1, 7)
    );
}

#[test]
fn produce_v3_request_and_v9_flexible() {
    let batch = v2_batch(0, 0x13, 2, 3, 30); // lz4 | transactional
    let b = B::new()
        .s("txn-1") // transactional_id
        .i16(-1) // acks
        .i32(5000) // timeout_ms
        .arr(1) // topics
        .s("t") // name
        .arr(1) // partitions
        .i32(1) // partition
        .bytes(&batch) // records
        .done();
    let RequestBody::Produce(p) = req(0, 3, &b) else {
        panic!()
    };
    assert_eq!(p.transactional_id.as_deref(), Some("txn-1"));
    let bi = &p.topics[0].partitions[0].batches[0];
    assert_eq!(
        (
            bi.compression,
            bi.transactional,
            bi.record_count,
            bi.producer_id
        ),
        (Compression::Lz4, true, 3, 4242)
    );

    let b = B::new()
        .cns() // transactional_id: null
        .i16(1) // acks
        .i32(5000) // timeout_ms
        .carr(1) // topics
        .cs("t") // name
        .carr(1) // partitions
        .i32(1) // partition
        .cbytes(&batch) // records
        .tags0() // partition tagged fields
        .tags0() // topic tagged fields
        .tags0() // request tagged fields
        .done();
    let RequestBody::Produce(p) = req(0, 9, &b) else {
        panic!()
    };
    assert_eq!(p.transactional_id, None);
    assert_eq!(p.topics[0].partitions[0].batches.len(), 1);
}

#[test]
fn produce_responses_v0_v2_v9_v10() {
    let b = B::new()
        .arr(1) // topics
        .s("t") // name
        .arr(1) // partitions
        .i32(0) // partition
        .i16(6) // error_code NOT_LEADER_OR_FOLLOWER
        .i64(-1) // base_offset
        .done();
    let r = resp(0, 0, &b);
    assert_eq!(r.error_codes(), vec![6]);
    assert_eq!(r.throttle_time_ms(), None);

    let b = B::new()
        .arr(1) // topics
        .s("t") // name
        .arr(1) // partitions
        .i32(0) // partition
        .i16(0) // error_code
        .i64(100) // base_offset
        .i64(-1) // log_append_time_ms
        .i32(5) // throttle_time_ms
        .done();
    let ResponseBody::Produce(p) = resp(0, 2, &b) else {
        panic!()
    };
    assert_eq!(p.topics[0].partitions[0].log_append_time_ms, Some(-1));
    assert_eq!(p.throttle_time_ms, Some(5));

    let b = B::new()
        .carr(1) // topics
        .cs("t") // name
        .carr(1) // partitions
        .i32(2) // partition
        .i16(0) // error_code
        .i64(100) // base_offset
        .i64(-1) // log_append_time_ms
        .i64(0) // log_start_offset
        .carr(0) // record_errors
        .cns() // error_message
        .tags0() // partition tags
        .tags0() // topic tags
        .i32(0) // throttle_time_ms
        .tags0() // response tags
        .done();
    let ResponseBody::Produce(p) = resp(0, 9, &b) else {
        panic!()
    };
    assert_eq!(p.topics[0].partitions[0].log_start_offset, Some(0));

    let leader = B::new().i32(3).i32(12).tags0().done(); // leader_id, leader_epoch, tags
    let endpoints = B::new()
        .carr(1) // node_endpoints
        .i32(3) // node_id
        .cs("b3") // host
        .i32(9092) // port
        .cns() // rack
        .tags0()
        .done();
    let b = B::new()
        .carr(1) // topics
        .cs("t") // name
        .carr(1) // partitions
        .i32(2) // partition
        .i16(6) // error_code NOT_LEADER_OR_FOLLOWER
        .i64(-1) // base_offset
        .i64(-1) // log_append_time_ms
        .i64(-1) // log_start_offset
        .carr(0) // record_errors
        .cns() // error_message
        .uvar(1) // 1 tagged field
        .uvar(0) // tag 0: current_leader
        .uvar(leader.len() as u32) // size
        .raw(&leader)
        .tags0() // topic tags
        .i32(0) // throttle_time_ms
        .uvar(1) // 1 tagged field
        .uvar(0) // tag 0: node_endpoints
        .uvar(endpoints.len() as u32) // size
        .raw(&endpoints)
        .done();
    let ResponseBody::Produce(p) = resp(0, 10, &b) else {
        panic!()
    };
    assert_eq!(
        p.topics[0].partitions[0].current_leader,
        Some(LeaderAndEpoch {
            leader_id: 3,
            leader_epoch: 12
        })
    );
    assert_eq!(p.node_endpoints[0].host, "b3");
}

// ------------------------------------------------------------------ Fetch

#[test]
fn fetch_v0_request_and_response() {
    let b = B::new()
        .i32(-1) // replica_id
        .i32(500) // max_wait_ms
        .i32(1) // min_bytes
        .arr(1) // topics
        .s("t") // topic
        .arr(1) // partitions
        .i32(0) // partition
        .i64(42) // fetch_offset
        .i32(1 << 20) // partition_max_bytes
        .done();
    let RequestBody::Fetch(f) = req(1, 0, &b) else {
        panic!()
    };
    assert_eq!(
        (f.replica_id, f.max_bytes, f.isolation_level),
        (Some(-1), None, None)
    );
    assert_eq!(f.topics[0].partitions[0].fetch_offset, 42);

    let mut set = legacy_msg(42, 0, 0, b"a");
    set.extend(legacy_msg(43, 0, 0, b"b"));
    let cut = legacy_msg(44, 0, 0, b"cccccc");
    set.extend_from_slice(&cut[..cut.len() - 3]); // partial message at the end (max_bytes)
    let b = B::new()
        .arr(1) // topics
        .s("t") // topic
        .arr(1) // partitions
        .i32(0) // partition
        .i16(0) // error_code
        .i64(45) // high_watermark
        .bytes(&set) // records
        .done();
    let ResponseBody::Fetch(f) = resp(1, 0, &b) else {
        panic!()
    };
    let p = &f.topics[0].partitions[0];
    assert_eq!(f.throttle_time_ms, None);
    assert_eq!(p.high_watermark, 45);
    assert_eq!(p.batches.len(), 3);
    assert!(p.batches[2].truncated && !p.batches[1].truncated);
}

#[test]
fn fetch_v4_request_and_response() {
    let b = B::new()
        .i32(-1) // replica_id
        .i32(500) // max_wait_ms
        .i32(1) // min_bytes
        .i32(52_428_800) // max_bytes
        .i8(1) // isolation_level READ_COMMITTED
        .arr(1) // topics
        .s("t") // topic
        .arr(1) // partitions
        .i32(0) // partition
        .i64(42) // fetch_offset
        .i32(1 << 20) // partition_max_bytes
        .done();
    let RequestBody::Fetch(f) = req(1, 4, &b) else {
        panic!()
    };
    assert_eq!(
        (f.max_bytes, f.isolation_level),
        (Some(52_428_800), Some(1))
    );

    let batch = v2_batch(42, 0x04, 9, 10, 100);
    let b = B::new()
        .i32(0) // throttle_time_ms
        .arr(1) // topics
        .s("t") // topic
        .arr(1) // partitions
        .i32(0) // partition
        .i16(0) // error_code
        .i64(52) // high_watermark
        .i64(50) // last_stable_offset
        .arr(1) // aborted_transactions
        .i64(4242) // producer_id
        .i64(40) // first_offset
        .bytes(&batch) // records
        .done();
    let ResponseBody::Fetch(f) = resp(1, 4, &b) else {
        panic!()
    };
    let p = &f.topics[0].partitions[0];
    assert_eq!(
        (p.last_stable_offset, p.aborted_transactions),
        (Some(50), Some(1))
    );
    assert_eq!(p.batches[0].compression, Compression::Zstd);
    assert_eq!(p.batches[0].last_offset(), 51);
}

#[test]
fn fetch_v12_and_v13_flexible() {
    let b = B::new()
        .i32(-1) // replica_id
        .i32(500) // max_wait_ms
        .i32(1) // min_bytes
        .i32(1000) // max_bytes
        .i8(0) // isolation_level
        .i32(77) // session_id
        .i32(3) // session_epoch
        .carr(1) // topics
        .cs("t") // topic
        .carr(1) // partitions
        .i32(0) // partition
        .i32(5) // current_leader_epoch
        .i64(42) // fetch_offset
        .i32(4) // last_fetched_epoch
        .i64(-1) // log_start_offset
        .i32(1000) // partition_max_bytes
        .tags0() // partition tags
        .tags0() // topic tags
        .carr(1) // forgotten_topics_data
        .cs("old") // topic
        .carr(2) // partitions
        .i32(0) // partition
        .i32(1) // partition
        .tags0() // forgotten topic tags
        .cs("rack-a") // rack_id
        .tags0() // request tags
        .done();
    let RequestBody::Fetch(f) = req(1, 12, &b) else {
        panic!()
    };
    assert_eq!(
        (f.session_id, f.session_epoch, f.forgotten_topics),
        (Some(77), Some(3), 2)
    );
    assert_eq!(f.rack_id.as_deref(), Some("rack-a"));
    assert_eq!(f.topics[0].partitions[0].last_fetched_epoch, Some(4));

    let div = B::new().i32(4).i64(40).tags0().done(); // epoch, end_offset, tags
    let b = B::new()
        .i32(0) // throttle_time_ms
        .i16(0) // error_code
        .i32(77) // session_id
        .carr(1) // topics
        .uuid(TID) // topic_id (v13)
        .carr(1) // partitions
        .i32(0) // partition
        .i16(0) // error_code
        .i64(52) // high_watermark
        .i64(52) // last_stable_offset
        .i64(0) // log_start_offset
        .cns() // aborted_transactions: null
        .i32(-1) // preferred_read_replica
        .cbytes(&[]) // records: empty
        .uvar(1) // 1 tagged field
        .uvar(0) // tag 0: diverging_epoch
        .uvar(div.len() as u32) // size
        .raw(&div)
        .tags0() // topic tags
        .tags0() // response tags
        .done();
    let ResponseBody::Fetch(f) = resp(1, 13, &b) else {
        panic!()
    };
    let t = &f.topics[0];
    assert_eq!(
        t.topic_id.map(|u| u.to_string()).as_deref(),
        Some("8f1e6a2b-444c-4d5e-9f01-020304050607")
    );
    assert_eq!(t.name, None);
    assert_eq!(
        t.partitions[0].diverging_epoch,
        Some(EpochEndOffset {
            epoch: 4,
            end_offset: 40
        })
    );
    assert_eq!(t.partitions[0].aborted_transactions, None);
    let json = serde_json::to_string(&ResponseBody::Fetch(f.clone())).unwrap();
    assert!(
        json.contains("\"topic_id\":\"8f1e6a2b-444c-4d5e-9f01-020304050607\""),
        "{json}"
    );
    assert!(!json.contains("\"name\""), "{json}");

    let b = B::new()
        .i32(-1) // replica_id
        .i32(500) // max_wait_ms
        .i32(1) // min_bytes
        .i32(1000) // max_bytes
        .i8(0) // isolation_level
        .i32(0) // session_id
        .i32(-1) // session_epoch
        .carr(1) // topics
        .uuid(TID) // topic_id
        .carr(0) // partitions
        .tags0() // topic tags
        .carr(0) // forgotten_topics_data
        .cs("") // rack_id
        .tags0() // request tags
        .done();
    let RequestBody::Fetch(f) = req(1, 13, &b) else {
        panic!()
    };
    assert!(f.topics[0].topic_id.is_some());
}

// ------------------------------------------------------------------ ListOffsets

#[test]
fn list_offsets_v0_and_v1() {
    let b = B::new()
        .i32(-1) // replica_id
        .arr(1) // topics
        .s("t") // name
        .arr(1) // partitions
        .i32(0) // partition
        .i64(-1) // timestamp LATEST
        .i32(1) // max_num_offsets
        .done();
    let RequestBody::ListOffsets(l) = req(2, 0, &b) else {
        panic!()
    };
    assert_eq!(l.topics[0].partitions[0].max_num_offsets, Some(1));
    let b = B::new()
        .arr(1) // topics
        .s("t") // name
        .arr(1) // partitions
        .i32(0) // partition
        .i16(0) // error_code
        .arr(1) // old_style_offsets
        .i64(1234) // offset
        .done();
    let ResponseBody::ListOffsets(l) = resp(2, 0, &b) else {
        panic!()
    };
    assert_eq!(
        l.topics[0].partitions[0].old_style_offsets,
        Some(vec![1234])
    );

    let b = B::new()
        .i32(-1) // replica_id
        .arr(1) // topics
        .s("t") // name
        .arr(1) // partitions
        .i32(0) // partition
        .i64(-2) // timestamp EARLIEST
        .done();
    let RequestBody::ListOffsets(l) = req(2, 1, &b) else {
        panic!()
    };
    assert_eq!(
        (
            l.topics[0].partitions[0].timestamp,
            l.topics[0].partitions[0].max_num_offsets
        ),
        (-2, None)
    );
    let b = B::new()
        .arr(1) // topics
        .s("t") // name
        .arr(1) // partitions
        .i32(0) // partition
        .i16(1) // error_code OFFSET_OUT_OF_RANGE
        .i64(-1) // timestamp
        .i64(99) // offset
        .done();
    let r = resp(2, 1, &b);
    assert_eq!(r.error_codes(), vec![1]);
    let ResponseBody::ListOffsets(l) = r else {
        panic!()
    };
    assert_eq!(l.topics[0].partitions[0].offset, Some(99));
}

// ------------------------------------------------------------------ OffsetCommit

#[test]
fn offset_commit_v0_v1_v8() {
    let b = B::new()
        .s("g") // group_id
        .arr(1) // topics
        .s("t") // name
        .arr(1) // partitions
        .i32(0) // partition
        .i64(10) // committed_offset
        .s("meta") // committed_metadata
        .done();
    let RequestBody::OffsetCommit(c) = req(8, 0, &b) else {
        panic!()
    };
    assert_eq!(c.generation_id_or_member_epoch, None);
    assert_eq!(c.topics[0].partitions[0].committed_metadata_len, Some(4));

    let b = B::new()
        .s("g") // group_id
        .i32(5) // generation_id
        .s("m-1") // member_id
        .arr(1) // topics
        .s("t") // name
        .arr(1) // partitions
        .i32(0) // partition
        .i64(10) // committed_offset
        .i64(1_600_000_000_000) // commit_timestamp (v1 only)
        .ns() // committed_metadata: null
        .done();
    let RequestBody::OffsetCommit(c) = req(8, 1, &b) else {
        panic!()
    };
    assert_eq!(c.generation_id_or_member_epoch, Some(5));
    assert_eq!(
        c.topics[0].partitions[0].commit_timestamp,
        Some(1_600_000_000_000)
    );

    let b = B::new()
        .cs("g") // group_id
        .i32(5) // generation_id_or_member_epoch
        .cs("m-1") // member_id
        .cns() // group_instance_id
        .carr(1) // topics
        .cs("t") // name
        .carr(1) // partitions
        .i32(0) // partition
        .i64(10) // committed_offset
        .i32(3) // committed_leader_epoch
        .cs("") // committed_metadata
        .tags0()
        .tags0()
        .tags0()
        .done();
    let RequestBody::OffsetCommit(c) = req(8, 8, &b) else {
        panic!()
    };
    assert_eq!(c.topics[0].partitions[0].committed_leader_epoch, Some(3));

    let b = B::new()
        .arr(1) // topics
        .s("t") // name
        .arr(1) // partitions
        .i32(0) // partition
        .i16(22) // error_code ILLEGAL_GENERATION
        .done();
    assert_eq!(resp(8, 0, &b).error_codes(), vec![22]);
    assert_eq!(resp(8, 1, &b).error_codes(), vec![22]);
    let b = B::new()
        .i32(0) // throttle_time_ms
        .carr(1) // topics
        .cs("t") // name
        .carr(1) // partitions
        .i32(0) // partition
        .i16(25) // error_code UNKNOWN_MEMBER_ID
        .tags0()
        .tags0()
        .tags0()
        .done();
    assert_eq!(resp(8, 8, &b).error_codes(), vec![25]);
}

// ------------------------------------------------------------------ groups

#[test]
fn sync_group_v0_assignment_exact_and_follower() {
    let a = crate::assignment::tests::assignment_bytes(0, &[("orders", &[0, 1])]);
    let b = B::new()
        .i32(0) // throttle_time_ms (v1)
        .i16(0) // error_code
        .bytes(&a) // assignment
        .done();
    let ResponseBody::SyncGroup(s) = resp(14, 1, &b) else {
        panic!()
    };
    assert_eq!(s.assignment.unwrap().partitions[0].partitions, vec![0, 1]);
    // follower request: no assignments
    let b = B::new()
        .s("g") // group_id
        .i32(3) // generation_id
        .s("m") // member_id
        .arr(0) // assignments
        .done();
    let RequestBody::SyncGroup(s) = req(14, 0, &b) else {
        panic!()
    };
    assert!(s.assignments.is_empty());
    // error response: empty assignment bytes = no assignment
    let b = B::new()
        .i16(27) // error_code REBALANCE_IN_PROGRESS
        .bytes(&[]) // assignment
        .done();
    let r = resp(14, 0, &b);
    assert_eq!(r.error_codes(), vec![27]);
    let ResponseBody::SyncGroup(s) = r else {
        panic!()
    };
    assert_eq!(s.assignment, None);
}

#[test]
fn join_group_v5_with_subscription() {
    let sub = crate::assignment::tests::subscription_v3(&["orders"], &[("orders", &[2])], 4);
    let b = B::new()
        .s("g") // group_id
        .i32(10_000) // session_timeout_ms
        .i32(300_000) // rebalance_timeout_ms
        .s("") // member_id
        .ns() // group_instance_id
        .s("consumer") // protocol_type
        .arr(1) // protocols
        .s("cooperative-sticky") // name
        .bytes(&sub) // metadata
        .done();
    let RequestBody::JoinGroup(j) = req(11, 5, &b) else {
        panic!()
    };
    let s = j.protocols[0].subscription.as_ref().unwrap();
    assert_eq!(s.owned_partitions[0].partitions, vec![2]);
    // leader's response (v5: no protocol_type) with one member: exact parse decides
    let b = B::new()
        .i32(0) // throttle_time_ms
        .i16(0) // error_code
        .i32(5) // generation_id
        .s("cooperative-sticky") // protocol_name
        .s("m-1") // leader
        .s("m-1") // member_id
        .arr(1) // members
        .s("m-1") // member_id
        .ns() // group_instance_id
        .bytes(&sub) // metadata
        .done();
    let ResponseBody::JoinGroup(j) = resp(11, 5, &b) else {
        panic!()
    };
    assert_eq!(j.members[0].subscription.as_ref().unwrap().generation_id, 4);
}

#[test]
fn consumer_group_heartbeat_v0() {
    let b = B::new()
        .i32(0) // throttle_time_ms
        .i16(0) // error_code
        .cns() // error_message
        .cs("m-uuid") // member_id
        .i32(7) // member_epoch
        .i32(5000) // heartbeat_interval_ms
        .i8(1) // assignment present
        .carr(1) // topic_partitions
        .uuid(TID) // topic_id
        .carr(2) // partitions
        .i32(0)
        .i32(3)
        .tags0() // topic partition tags
        .tags0() // assignment tags
        .tags0() // response tags
        .done();
    let ResponseBody::ConsumerGroupHeartbeat(c) = resp(68, 0, &b) else {
        panic!()
    };
    assert_eq!(c.member_epoch, 7);
    assert_eq!(
        c.assignment.unwrap().topic_partitions[0].partitions,
        vec![0, 3]
    );
}

#[test]
fn api_versions_unknown_version_answered_with_v0() {
    let b = B::new()
        .i16(35) // error_code UNSUPPORTED_VERSION
        .arr(1) // api_keys
        .i16(18) // api_key
        .i16(0) // min_version
        .i16(3) // max_version
        .done();
    let r = resp(18, 4, &b);
    assert_eq!(r.error_codes(), vec![35]);
}

/// librdkafka asks for ApiVersions v3; a broker without it answers UNSUPPORTED_VERSION in a v0 body,
/// which also parses as v3 (an empty compact array, then the list's bytes as a throttle time): it is
/// read as v0, the broker's range of ApiVersions kept, no invented throttle time.
#[test]
fn api_versions_v0_answer_to_v3_is_read_as_v0() {
    // What a Kafka broker sends: every API, Produce (key 0) first. Read as v3 this is an empty
    // compact array (the length's first byte), a throttle time of 512 (00 00 02 00) and no tagged
    // fields (Produce's key), the rest left over.
    let b = B::new()
        .i16(35) // error_code UNSUPPORTED_VERSION
        .arr(2) // api_keys (v0: int32 length)
        .i16(0) // Produce
        .i16(0)
        .i16(9)
        .i16(18) // ApiVersions
        .i16(0)
        .i16(2)
        .done();
    let ResponseBody::ApiVersions(r) = resp(18, 3, &b) else {
        panic!()
    };
    assert_eq!(r.error_code, 35);
    assert_eq!(r.throttle_time_ms, None);
    let range = |api_key, max_version| ApiVersionRange {
        api_key,
        min_version: 0,
        max_version,
    };
    assert_eq!(r.api_keys, vec![range(0, 9), range(18, 2)]);
    // A v3 answer that succeeds is still read as v3.
    let ok = B::new()
        .i16(0)
        .carr(1)
        .i16(18)
        .i16(0)
        .i16(3)
        .tags0()
        .i32(0)
        .tags0()
        .done();
    let ResponseBody::ApiVersions(r) = resp(18, 3, &ok) else {
        panic!()
    };
    assert_eq!(
        (r.error_code, r.throttle_time_ms, r.api_keys.len()),
        (0, Some(0), 1)
    );
}

#[test]
fn other_apis_and_errors() {
    // DescribeCluster (60): throttle_time_ms, error_code, ...
    let b = B::new().i32(10).i16(31).cns().done();
    let r = decode_response(60, 0, &b).unwrap();
    assert_eq!(
        (r.error_codes(), r.throttle_time_ms()),
        (vec![31], Some(10))
    );
    // LeaderAndIsr (4), removed from the crate: error_code first
    assert_eq!(
        decode_response(4, 1, &[0, 6]).unwrap().error_codes(),
        vec![6]
    );
    // unknown api: Other, no fields, no error
    assert_eq!(
        decode_request(99, 0, &[1, 2, 3]).unwrap(),
        RequestBody::Other(OtherRequest {})
    );
    assert_eq!(
        serde_json::to_string(&RequestBody::Other(OtherRequest {})).unwrap(),
        "{}"
    );
    assert_eq!(
        decode_request(0, 14, &[]),
        Err(BodyError::UnsupportedVersion)
    );
    assert_eq!(error_name(0), "NONE");
    assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
    assert_eq!(error_name(6), "NOT_LEADER_OR_FOLLOWER");
    assert_eq!(error_name(110), "FENCED_MEMBER_EPOCH");
    assert_eq!(error_name(74), "FENCED_LEADER_EPOCH");
    assert_eq!(error_name(9999), "UNKNOWN");
    // trailing bytes: lenient Ok, strict error, checked reports consumed
    let b = B::new().i16(0).i32(0).i32(0).raw(&[9, 9]).done(); // ApiVersions v0 + 2 stray bytes... as Heartbeat v0 resp
    let (res, consumed) = decode_response_checked(12, 0, &b);
    assert!(res.is_ok());
    assert_eq!(consumed, 2);
    assert_eq!(
        decode_response_strict(12, 0, &b),
        Err(BodyError::Trailing { bytes: b.len() - 2 })
    );
}

// ------------------------------------------------------------------ cross-checks with kafka-protocol

fn enc<T: Encodable>(m: &T, v: i16) -> Vec<u8> {
    let mut buf = BytesMut::new();
    m.encode(&mut buf, v).unwrap();
    buf.to_vec()
}

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn crate_uuid() -> uuid::Uuid {
    uuid::Uuid::from_bytes(TID)
}

fn two_batches() -> Bytes {
    let mut b = v2_batch(100, 0x02, 4, 5, 40); // snappy
    b.extend(v2_batch(105, 0x00, 0, 1, 10));
    Bytes::from(b)
}

#[test]
fn produce_crosscheck_with_kafka_protocol() {
    use km::produce_request::{PartitionProduceData, TopicProduceData};
    use km::produce_response::*;
    let mut part = PartitionProduceData::default();
    part.index = 4;
    part.records = Some(two_batches());
    let mut topic = TopicProduceData::default();
    topic.name = km::TopicName(sb("orders"));
    topic.topic_id = crate_uuid();
    topic.partition_data = vec![part];
    let mut m = km::ProduceRequest::default();
    m.transactional_id = Some(km::TransactionalId(sb("tx")));
    m.acks = -1;
    m.timeout_ms = 1234;
    m.topic_data = vec![topic];

    let mut pr = PartitionProduceResponse::default();
    pr.index = 4;
    pr.error_code = 6;
    pr.base_offset = 100;
    pr.log_append_time_ms = 77;
    pr.log_start_offset = 3;
    let mut re = BatchIndexAndErrorMessage::default();
    re.batch_index = 1;
    pr.record_errors = vec![re];
    pr.error_message = Some(sb("boom"));
    pr.current_leader.leader_id = km::BrokerId(2);
    pr.current_leader.leader_epoch = 9;
    let mut tr = TopicProduceResponse::default();
    tr.name = km::TopicName(sb("orders"));
    tr.topic_id = crate_uuid();
    tr.partition_responses = vec![pr];
    let mut ne = NodeEndpoint::default();
    ne.node_id = km::BrokerId(2);
    ne.host = sb("b2");
    ne.port = 9093;
    let mut r = km::ProduceResponse::default();
    r.responses = vec![tr];
    r.throttle_time_ms = 8;
    r.node_endpoints = vec![ne];

    for v in 3..=13 {
        let RequestBody::Produce(ours) = req(0, v, &enc(&m, v)) else {
            panic!()
        };
        assert_eq!(ours.transactional_id.as_deref(), Some("tx"));
        assert_eq!((ours.acks, ours.timeout_ms), (-1, 1234));
        let t = &ours.topics[0];
        if v >= 13 {
            assert_eq!(
                (t.name.as_deref(), t.topic_id.map(|u| u.0)),
                (None, Some(TID))
            );
        } else {
            assert_eq!((t.name.as_deref(), t.topic_id), (Some("orders"), None));
        }
        let p = &t.partitions[0];
        assert_eq!(
            (p.partition, p.record_bytes, p.batches.len()),
            (4, two_batches().len(), 2)
        );
        assert_eq!(
            (p.batches[0].base_offset, p.batches[0].compression),
            (100, Compression::Snappy)
        );
        assert_eq!(
            (p.batches[1].base_offset, p.batches[1].record_count),
            (105, 1)
        );

        let ResponseBody::Produce(ours) = resp(0, v, &enc(&r, v)) else {
            panic!()
        };
        assert_eq!(ours.throttle_time_ms, Some(8));
        let p = &ours.topics[0].partitions[0];
        assert_eq!((p.partition, p.error_code, p.base_offset), (4, 6, 100));
        assert_eq!(p.log_append_time_ms, Some(77));
        assert_eq!(p.log_start_offset, if v >= 5 { Some(3) } else { None });
        assert_eq!(p.record_errors, if v >= 8 { 1 } else { 0 });
        assert_eq!(
            p.error_message.as_deref(),
            if v >= 8 { Some("boom") } else { None }
        );
        if v >= 10 {
            assert_eq!(
                p.current_leader,
                Some(LeaderAndEpoch {
                    leader_id: 2,
                    leader_epoch: 9
                })
            );
            assert_eq!(ours.node_endpoints.len(), 1);
            assert_eq!(ours.node_endpoints[0].port, 9093);
        } else {
            assert_eq!(p.current_leader, None);
        }
    }
}

#[test]
fn fetch_crosscheck_with_kafka_protocol() {
    use km::fetch_request::{FetchPartition as FP, FetchTopic as FT, ForgottenTopic};
    use km::fetch_response::*;
    let mut fp = FP::default();
    fp.partition = 7;
    fp.current_leader_epoch = 11;
    fp.fetch_offset = 500;
    fp.last_fetched_epoch = 10;
    fp.log_start_offset = 5;
    fp.partition_max_bytes = 1 << 20;
    let mut ft = FT::default();
    ft.topic = km::TopicName(sb("orders"));
    ft.topic_id = crate_uuid();
    ft.partitions = vec![fp];
    let mut fg = ForgottenTopic::default();
    fg.topic = km::TopicName(sb("gone"));
    fg.topic_id = crate_uuid();
    fg.partitions = vec![1, 2, 3];
    let mut m = km::FetchRequest::default();
    m.replica_id = km::BrokerId(-1);
    m.max_wait_ms = 500;
    m.min_bytes = 1;
    m.max_bytes = 1000;
    m.isolation_level = 1;
    m.session_id = 9;
    m.session_epoch = 2;
    m.topics = vec![ft];
    m.forgotten_topics_data = vec![fg];
    m.rack_id = sb("r1");

    let mut pd = PartitionData::default();
    pd.partition_index = 7;
    pd.error_code = 74;
    pd.high_watermark = 600;
    pd.last_stable_offset = 590;
    pd.log_start_offset = 5;
    let mut at = AbortedTransaction::default();
    at.producer_id = km::ProducerId(4242);
    at.first_offset = 550;
    pd.aborted_transactions = Some(vec![at]);
    pd.preferred_read_replica = km::BrokerId(3);
    pd.diverging_epoch.epoch = 10;
    pd.diverging_epoch.end_offset = 480;
    pd.current_leader.leader_id = km::BrokerId(1);
    pd.current_leader.leader_epoch = 11;
    let mut recs = two_batches().to_vec();
    recs.extend_from_slice(&v2_batch(106, 0, 3, 4, 200)[..90]); // partial batch cut by max_bytes
    pd.records = Some(Bytes::from(recs.clone()));
    let mut tr = FetchableTopicResponse::default();
    tr.topic = km::TopicName(sb("orders"));
    tr.topic_id = crate_uuid();
    tr.partitions = vec![pd];
    let mut r = km::FetchResponse::default();
    r.throttle_time_ms = 4;
    r.error_code = 0;
    r.session_id = 9;
    r.responses = vec![tr];
    let mut ne = NodeEndpoint::default();
    ne.node_id = km::BrokerId(3);
    ne.host = sb("b3");
    r.node_endpoints = vec![ne];

    for v in 4..=18 {
        // The crate refuses to encode a non-default field the version lacks: reset those.
        let mut m = m.clone();
        let mut r = r.clone();
        {
            let t = &mut m.topics[0];
            let rt = &mut r.responses[0];
            if v >= 13 {
                t.topic = Default::default();
                rt.topic = Default::default();
                m.forgotten_topics_data[0].topic = Default::default();
            } else {
                t.topic_id = Default::default();
                rt.topic_id = Default::default();
                m.forgotten_topics_data[0].topic_id = Default::default();
            }
            let p = &mut t.partitions[0];
            let rp = &mut rt.partitions[0];
            if v < 5 {
                p.log_start_offset = -1;
                rp.log_start_offset = -1;
            }
            if v < 7 {
                m.session_id = 0;
                m.session_epoch = -1;
                m.forgotten_topics_data.clear();
                r.session_id = 0;
            }
            if v < 9 {
                p.current_leader_epoch = -1;
            }
            if v < 11 {
                m.rack_id = Default::default();
                rp.preferred_read_replica = km::BrokerId(-1);
            }
            if v < 12 {
                p.last_fetched_epoch = -1;
                rp.diverging_epoch = Default::default();
                rp.current_leader = Default::default();
            }
            if v < 16 {
                r.node_endpoints.clear();
            }
        }
        if v >= 15 {
            m.replica_id = km::BrokerId(-1);
            m.replica_state.replica_id = km::BrokerId(2);
            m.replica_state.replica_epoch = 1;
        }
        let RequestBody::Fetch(ours) = req(1, v, &enc(&m, v)) else {
            panic!()
        };
        assert_eq!(ours.replica_id, Some(if v >= 15 { 2 } else { -1 }));
        assert_eq!(
            (ours.max_wait_ms, ours.min_bytes, ours.max_bytes),
            (500, 1, Some(1000))
        );
        assert_eq!(ours.isolation_level, Some(1));
        assert_eq!(ours.session_id, if v >= 7 { Some(9) } else { None });
        assert_eq!(ours.forgotten_topics, if v >= 7 { 3 } else { 0 });
        assert_eq!(
            ours.rack_id.as_deref(),
            if v >= 11 { Some("r1") } else { None }
        );
        let t = &ours.topics[0];
        assert_eq!(t.name.is_some(), v < 13);
        assert_eq!(t.topic_id.is_some(), v >= 13);
        let p = &t.partitions[0];
        assert_eq!(
            (p.partition, p.fetch_offset, p.partition_max_bytes),
            (7, 500, 1 << 20)
        );
        assert_eq!(p.current_leader_epoch, if v >= 9 { Some(11) } else { None });
        assert_eq!(p.last_fetched_epoch, if v >= 12 { Some(10) } else { None });
        assert_eq!(p.log_start_offset, if v >= 5 { Some(5) } else { None });

        let ResponseBody::Fetch(ours) = resp(1, v, &enc(&r, v)) else {
            panic!()
        };
        assert_eq!(ours.throttle_time_ms, Some(4));
        assert_eq!(ours.session_id, if v >= 7 { Some(9) } else { None });
        let p = &ours.topics[0].partitions[0];
        assert_eq!((p.partition, p.error_code, p.high_watermark), (7, 74, 600));
        assert_eq!(p.last_stable_offset, Some(590));
        assert_eq!(p.log_start_offset, if v >= 5 { Some(5) } else { None });
        assert_eq!(p.aborted_transactions, Some(1));
        assert_eq!(
            p.preferred_read_replica,
            if v >= 11 { Some(3) } else { None }
        );
        if v >= 12 {
            assert_eq!(
                p.diverging_epoch,
                Some(super::EpochEndOffset {
                    epoch: 10,
                    end_offset: 480
                })
            );
            assert_eq!(
                p.current_leader,
                Some(LeaderAndEpoch {
                    leader_id: 1,
                    leader_epoch: 11
                })
            );
        }
        assert_eq!(ours.node_endpoints.len(), if v >= 16 { 1 } else { 0 });
        assert_eq!(p.record_bytes, recs.len());
        assert_eq!(p.batches.len(), 3);
        assert!(p.batches[2].truncated && !p.batches[1].truncated);
        assert_eq!(ours.topics[0].topic_id.is_some(), v >= 13);
        assert_eq!(resp(1, v, &enc(&r, v)).error_codes(), vec![74]);
    }
}

#[test]
fn metadata_and_offset_fetch_crosscheck() {
    use km::metadata_response::*;
    let mut p = MetadataResponsePartition::default();
    p.error_code = 0;
    p.partition_index = 1;
    p.leader_id = km::BrokerId(2);
    p.leader_epoch = 6;
    p.replica_nodes = vec![km::BrokerId(1), km::BrokerId(2)];
    p.isr_nodes = vec![km::BrokerId(2)];
    p.offline_replicas = vec![km::BrokerId(1)];
    let mut t = MetadataResponseTopic::default();
    t.error_code = 3;
    t.name = Some(km::TopicName(sb("orders")));
    t.topic_id = crate_uuid();
    t.partitions = vec![p];
    let mut b = MetadataResponseBroker::default();
    b.node_id = km::BrokerId(2);
    b.host = sb("h2");
    b.port = 9092;
    b.rack = Some(sb("a"));
    let mut m = km::MetadataResponse::default();
    m.brokers = vec![b];
    m.cluster_id = Some(sb("c1"));
    m.controller_id = km::BrokerId(1);
    m.topics = vec![t];
    for v in 0..=13 {
        let r = resp(3, v, &enc(&m, v));
        assert_eq!(r.error_codes(), vec![3]);
        let ResponseBody::Metadata(ours) = r else {
            panic!()
        };
        let p = &ours.topics[0].partitions[0];
        assert_eq!(
            (p.leader_id, p.replica_nodes.clone(), p.isr_nodes.clone()),
            (2, vec![1, 2], vec![2])
        );
        assert_eq!(p.leader_epoch, if v >= 7 { Some(6) } else { None });
        assert_eq!(ours.topics[0].topic_id.is_some(), v >= 10);
        assert_eq!(
            ours.brokers[0].rack.as_deref(),
            if v >= 1 { Some("a") } else { None }
        );
    }

    use km::offset_fetch_response::*;
    let mut pp = OffsetFetchResponsePartitions::default();
    pp.partition_index = 2;
    pp.committed_offset = 77;
    pp.error_code = 0;
    let mut tt = OffsetFetchResponseTopics::default();
    tt.name = km::TopicName(sb("orders"));
    tt.partitions = vec![pp];
    let mut g = OffsetFetchResponseGroup::default();
    g.group_id = km::GroupId(sb("g"));
    g.topics = vec![tt];
    g.error_code = 16;
    let mut m = km::OffsetFetchResponse::default();
    m.groups = vec![g];
    for v in 8..=9 {
        let r = resp(9, v, &enc(&m, v));
        assert_eq!(r.error_codes(), vec![16]);
        let ResponseBody::OffsetFetch(o) = r else {
            panic!()
        };
        assert_eq!(o.groups[0].group_id.as_deref(), Some("g"));
        assert_eq!(o.groups[0].topics[0].partitions[0].committed_offset, 77);
    }
}

/// Encode each summarised API's `Default` message with the crate at every version it knows and check that
/// our decoder consumes exactly the same bytes (catches misplaced / missing fields per version).
#[test]
fn defaults_roundtrip_every_version() {
    use kafka_protocol::protocol::Message;
    fn check<T: Encodable + Default + Message>(k: i16, is_req: bool) {
        let r = T::VERSIONS;
        for v in r.min..=r.max {
            let mut buf = BytesMut::new();
            if T::default().encode(&mut buf, v).is_err() {
                continue;
            }
            let res = if is_req {
                decode_request_strict(k, v, &buf).map(|_| ())
            } else {
                decode_response_strict(k, v, &buf).map(|_| ())
            };
            assert_eq!(
                res,
                Ok(()),
                "api {k} v{v} {}",
                if is_req { "request" } else { "response" }
            );
        }
    }
    macro_rules! both {
        ($k:expr, $req:ty, $resp:ty) => {
            check::<$req>($k, true);
            check::<$resp>($k, false);
        };
    }
    both!(0, km::ProduceRequest, km::ProduceResponse);
    both!(1, km::FetchRequest, km::FetchResponse);
    both!(2, km::ListOffsetsRequest, km::ListOffsetsResponse);
    both!(3, km::MetadataRequest, km::MetadataResponse);
    both!(8, km::OffsetCommitRequest, km::OffsetCommitResponse);
    both!(9, km::OffsetFetchRequest, km::OffsetFetchResponse);
    both!(10, km::FindCoordinatorRequest, km::FindCoordinatorResponse);
    both!(11, km::JoinGroupRequest, km::JoinGroupResponse);
    both!(12, km::HeartbeatRequest, km::HeartbeatResponse);
    both!(13, km::LeaveGroupRequest, km::LeaveGroupResponse);
    both!(14, km::SyncGroupRequest, km::SyncGroupResponse);
    both!(15, km::DescribeGroupsRequest, km::DescribeGroupsResponse);
    both!(16, km::ListGroupsRequest, km::ListGroupsResponse);
    both!(17, km::SaslHandshakeRequest, km::SaslHandshakeResponse);
    both!(18, km::ApiVersionsRequest, km::ApiVersionsResponse);
    both!(19, km::CreateTopicsRequest, km::CreateTopicsResponse);
    both!(20, km::DeleteTopicsRequest, km::DeleteTopicsResponse);
    both!(21, km::DeleteRecordsRequest, km::DeleteRecordsResponse);
    both!(22, km::InitProducerIdRequest, km::InitProducerIdResponse);
    both!(
        23,
        km::OffsetForLeaderEpochRequest,
        km::OffsetForLeaderEpochResponse
    );
    both!(
        24,
        km::AddPartitionsToTxnRequest,
        km::AddPartitionsToTxnResponse
    );
    both!(25, km::AddOffsetsToTxnRequest, km::AddOffsetsToTxnResponse);
    both!(26, km::EndTxnRequest, km::EndTxnResponse);
    both!(28, km::TxnOffsetCommitRequest, km::TxnOffsetCommitResponse);
    both!(
        36,
        km::SaslAuthenticateRequest,
        km::SaslAuthenticateResponse
    );
    both!(
        68,
        km::ConsumerGroupHeartbeatRequest,
        km::ConsumerGroupHeartbeatResponse
    );
}

// ------------------------------------------------------------------ robustness

/// A few valid bodies (api key, version, is_request, bytes) for the truncation and mutation tests.
fn corpus() -> Vec<(i16, i16, bool, Vec<u8>)> {
    let mut c = Vec::new();
    let mut part = km::produce_request::PartitionProduceData::default();
    part.records = Some(two_batches());
    let mut topic = km::produce_request::TopicProduceData::default();
    topic.name = km::TopicName(sb("orders"));
    topic.partition_data = vec![part];
    let mut m = km::ProduceRequest::default();
    m.topic_data = vec![topic];
    for v in [3, 9, 13] {
        c.push((0, v, true, enc(&m, v)));
    }
    let mut pd = km::fetch_response::PartitionData::default();
    pd.records = Some(two_batches());
    pd.aborted_transactions = Some(vec![Default::default()]);
    pd.diverging_epoch.epoch = 3;
    let mut tr = km::fetch_response::FetchableTopicResponse::default();
    tr.topic = km::TopicName(sb("orders"));
    tr.partitions = vec![pd];
    let mut r = km::FetchResponse::default();
    r.responses = vec![tr];
    for v in [4, 12, 13, 16] {
        c.push((1, v, false, enc(&r, v)));
    }
    let a = crate::assignment::tests::assignment_bytes(1, &[("orders", &[0, 1, 2])]);
    let mut s = km::SyncGroupResponse::default();
    s.assignment = Bytes::from(a);
    for v in [0, 3, 4, 5] {
        c.push((14, v, false, enc(&s, v)));
    }
    let sub = crate::assignment::tests::subscription_v3(&["orders"], &[("orders", &[2])], 4);
    let mut p = km::join_group_request::JoinGroupRequestProtocol::default();
    p.name = sb("range");
    p.metadata = Bytes::from(sub);
    let mut j = km::JoinGroupRequest::default();
    j.protocol_type = sb("consumer");
    j.protocols = vec![p];
    for v in [0, 5, 6, 9] {
        c.push((11, v, true, enc(&j, v)));
    }
    c
}

#[test]
fn every_prefix_decodes_or_fails_without_panic() {
    for (k, v, is_req, bytes) in corpus() {
        if is_req {
            assert!(decode_request_strict(k, v, &bytes).is_ok(), "api {k} v{v}");
        } else {
            assert!(decode_response_strict(k, v, &bytes).is_ok(), "api {k} v{v}");
        }
        for n in 0..bytes.len() {
            let _ = decode_request_checked(k, v, &bytes[..n]);
            let _ = decode_response_checked(k, v, &bytes[..n]);
        }
    }
}

/// xorshift: deterministic pseudo-random bytes without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_bytes_every_api_and_version_no_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for k in 0..=100i16 {
        for v in 0..=20i16 {
            for _ in 0..40 {
                let len = (rng.next() % 160) as usize;
                let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                let _ = decode_request(k, v, &bytes);
                let _ = decode_response(k, v, &bytes);
            }
        }
    }
    // mutations of valid bodies reach deeper than pure noise
    for (k, v, _, bytes) in corpus() {
        for _ in 0..300 {
            let mut b = bytes.clone();
            for _ in 0..1 + rng.next() % 4 {
                let i = (rng.next() as usize) % b.len().max(1);
                if let Some(x) = b.get_mut(i) {
                    *x = rng.next() as u8;
                }
            }
            let _ = decode_request(k, v, &b);
            let _ = decode_response(k, v, &b);
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 2000, ..Default::default() })]
    #[test]
    fn proptest_no_panic(k in 0i16..=100, v in 0i16..=20, bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
        let _ = decode_request(k, v, &bytes);
        let _ = decode_response(k, v, &bytes);
        let _ = crate::records::scan_record_set(&bytes);
        let _ = crate::assignment::decode_subscription(&bytes);
        let _ = crate::assignment::decode_assignment_exact(&bytes);
    }
}

// ------------------------------------------------------------------ OffsetForLeaderEpoch, DeleteRecords

#[test]
fn offset_for_leader_epoch_v2_and_v4() {
    let b = B::new()
        .arr(1) // topics
        .s("orders") // topic
        .arr(1) // partitions
        .i32(3) // partition
        .i32(7) // current_leader_epoch (v2+)
        .i32(5) // leader_epoch asked
        .done();
    let RequestBody::OffsetForLeaderEpoch(q) = req(23, 2, &b) else {
        panic!()
    };
    assert_eq!(q.replica_id, None);
    assert_eq!(q.topics[0].name, "orders");
    assert_eq!(
        q.topics[0].partitions[0],
        EpochPartition {
            partition: 3,
            current_leader_epoch: Some(7),
            leader_epoch: 5
        }
    );
    let b = B::new()
        .i32(0) // throttle_time_ms (v2+)
        .arr(1) // topics
        .s("orders") // topic
        .arr(1) // partitions
        .i16(0) // error_code
        .i32(3) // partition
        .i32(5) // leader_epoch
        .i64(42) // end_offset
        .done();
    let ResponseBody::OffsetForLeaderEpoch(r) = resp(23, 2, &b) else {
        panic!()
    };
    assert_eq!(r.throttle_time_ms, Some(0));
    assert_eq!(
        r.topics[0].partitions[0],
        EpochPartitionResult {
            error_code: 0,
            partition: 3,
            leader_epoch: Some(5),
            end_offset: 42
        }
    );
    // v4: flexible, replica_id first.
    let b = B::new()
        .i32(-1) // replica_id (v3+)
        .carr(1) // topics
        .cs("orders") // topic
        .carr(1) // partitions
        .i32(0) // partition
        .i32(2) // current_leader_epoch
        .i32(1) // leader_epoch
        .uvar(0) // partition tagged fields
        .uvar(0) // topic tagged fields
        .uvar(0) // tagged fields
        .done();
    let RequestBody::OffsetForLeaderEpoch(q) = req(23, 4, &b) else {
        panic!()
    };
    assert_eq!(q.replica_id, Some(-1));
    assert_eq!(q.topics[0].partitions[0].leader_epoch, 1);
}

#[test]
fn offset_for_leader_epoch_crosscheck_with_kafka_protocol() {
    use km::offset_for_leader_epoch_response::*;
    let mut p = EpochEndOffset::default();
    p.error_code = 0;
    p.partition = 2;
    p.leader_epoch = 4;
    p.end_offset = 17;
    let mut t = OffsetForLeaderTopicResult::default();
    t.topic = km::TopicName(sb("orders"));
    t.partitions = vec![p];
    let mut m = km::OffsetForLeaderEpochResponse::default();
    m.topics = vec![t];
    for v in 2..=4 {
        let ResponseBody::OffsetForLeaderEpoch(r) = resp(23, v, &enc(&m, v)) else {
            panic!()
        };
        let got = r.topics[0].partitions[0];
        assert_eq!(
            (got.partition, got.leader_epoch, got.end_offset),
            (2, Some(4), 17)
        );
    }
}

#[test]
fn delete_records_v0_and_v2() {
    let b = B::new()
        .arr(1) // topics
        .s("orders") // name
        .arr(1) // partitions
        .i32(1) // partition
        .i64(9) // offset: delete before 9
        .i32(5000) // timeout_ms
        .done();
    let RequestBody::DeleteRecords(d) = req(21, 0, &b) else {
        panic!()
    };
    assert_eq!(d.topics[0].name, "orders");
    assert_eq!(
        d.topics[0].partitions[0],
        DeleteRecordsPartition {
            partition: 1,
            offset: 9
        }
    );
    assert_eq!(d.timeout_ms, 5000);
    let b = B::new()
        .i32(0) // throttle_time_ms
        .carr(1) // topics
        .cs("orders") // name
        .carr(1) // partitions
        .i32(1) // partition
        .i64(9) // low_watermark
        .i16(0) // error_code
        .uvar(0) // partition tagged fields
        .uvar(0) // topic tagged fields
        .uvar(0) // tagged fields
        .done();
    let ResponseBody::DeleteRecords(d) = resp(21, 2, &b) else {
        panic!()
    };
    assert_eq!(d.topics[0].partitions[0].low_watermark, 9);
}

#[test]
fn batch_identity_fields_are_read_and_not_serialised() {
    let mut b = v2_batch(100, 0x00, 0, 1, 10);
    b[12..16].copy_from_slice(&7i32.to_be_bytes()); // partition_leader_epoch
    b[17..21].copy_from_slice(&0xdead_beef_u32.to_be_bytes()); // crc
    let s = crate::records::scan_record_set(&b);
    let info = &s.batches[0];
    assert_eq!(info.crc, 0xdead_beef);
    assert_eq!(info.first_timestamp, 1_700_000_000_000);
    assert_eq!(info.partition_leader_epoch, 7);
    let json = serde_json::to_string(info).unwrap();
    assert!(
        !json.contains("crc") && !json.contains("first_timestamp"),
        "{json}"
    );
}
