//! Streaming walk of the two big frames — Produce requests (v3+) and Fetch responses (v4+) — that keeps
//! their *skeleton* (every field but the record bytes) and summarises each record set from its batch
//! headers as the bytes go by, so a frame of any size is decoded without ever being held: the record bytes
//! (almost all of it) are skipped by count and never copied.
//!
//! The skeleton is a valid frame of the same API and version whose `records` fields are empty; it is
//! decoded by the ordinary body decoder and then each partition gets back its record-set summary (real
//! size, batch headers) in wire order ([`Skeleton::patch_request`] / [`Skeleton::patch_response`]).
//!
//! Easy to get wrong: fields are parsed only once wholly present (a field split across packets is parsed
//! when its last byte arrives); record bytes arriving in the same chunk as skeleton fields must not be
//! copied into the skeleton; flexible versions use compact lengths (uvarint, +1) and tagged fields,
//! including inside each aborted-transaction entry of a Fetch response.

use crate::api::key;
use crate::body::{FetchResponse, ProduceRequest};
use crate::parse::{parse_try, Parse};
use crate::records::{RecordSetSummary, RecordSetWalker};

/// Which frame is walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    ProduceRequest,
    FetchResponse,
}

impl Shape {
    /// The shape for this direction's frame, if it is one we walk.
    pub fn of(api_key: i16, api_version: i16, request: bool) -> Option<Shape> {
        match (api_key, request) {
            (key::PRODUCE, true) if (3..=13).contains(&api_version) => Some(Shape::ProduceRequest),
            (key::FETCH, false) if (4..=18).contains(&api_version) => Some(Shape::FetchResponse),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Header,
    Top,
    Topics,
    Topic,
    Part,
    Records,
    PartTags,
    TopicTags,
    TopTags,
    Done,
}

/// Bytes appended to the skeleton per step: bounds what a record set's first bytes cost in copying.
const STEP: usize = 256;
/// Initial capacity of a skeleton (bytes).
const SKEL_START: usize = 1024;

#[derive(Debug)]
pub struct Skeleton {
    shape: Shape,
    version: i16,
    flex: bool,
    header_flex: bool,
    /// The frame minus its record bytes (length prefix excluded).
    pub skel: Vec<u8>,
    pos: usize,
    stage: Stage,
    topics_left: u32,
    parts_left: u32,
    records_left: Option<(u64, u64)>,
    rs: Option<RecordSetWalker>,
    /// Per records field in wire order: real size and summary.
    pub sets: Vec<(u64, RecordSetSummary)>,
    /// Set when the structure did not parse (the frame is then reported as not decoded).
    pub failed: bool,
    max_skel: usize,
    /// Skeleton length at the end of the last records length prefix, before it was rewritten: bytes
    /// appended past it were record bytes.
    consumed_before_records: usize,
}

/// What a records length prefix said (its `Done` spans the prefix).
enum Records {
    /// Null or empty: nothing to skip.
    Empty,
    /// `len` record bytes follow the prefix.
    Bytes(u64),
}

/// A cursor over the skeleton: a field not wholly there yet is [`Parse::NeedMore`].
struct Cur<'a> {
    b: &'a [u8],
    p: usize,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Parse<&'a [u8]> {
        match self
            .p
            .checked_add(n)
            .and_then(|end| self.b.get(self.p..end))
        {
            Some(s) => {
                self.p += n;
                Parse::Done(s, n)
            }
            None => Parse::NeedMore(Some(self.p.saturating_add(n).saturating_sub(self.b.len()))),
        }
    }
    fn skip(&mut self, n: usize) -> Parse<()> {
        self.take(n).map(|_| ())
    }
    fn i16(&mut self) -> Parse<i16> {
        self.take(2).map(|s| i16::from_be_bytes([s[0], s[1]]))
    }
    fn i32(&mut self) -> Parse<i32> {
        self.take(4)
            .map(|s| i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn uvarint(&mut self) -> Parse<u32> {
        let mut v: u32 = 0;
        for i in 0..5 {
            let Some(&b) = self.b.get(self.p + i) else {
                return Parse::MORE;
            };
            v |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                self.p += i + 1;
                return Parse::Done(v, i + 1);
            }
        }
        Parse::broken(self.p + 4, "varint longer than 5 bytes")
    }
    /// The unit that began at `start` is whole.
    fn done(&self, start: usize) -> Parse<()> {
        Parse::Done((), self.p - start)
    }
}

impl Skeleton {
    /// `header_flex`: the frame's header has tagged fields (request header v2 / response header v1).
    pub fn new(shape: Shape, version: i16, header_flex: bool, max_skel: usize) -> Self {
        let flex = match shape {
            Shape::ProduceRequest => version >= 9,
            Shape::FetchResponse => version >= 12,
        };
        Skeleton {
            shape,
            version,
            flex,
            header_flex,
            // Room for a typical skeleton at once (a Fetch response of a few partitions is a few hundred
            // bytes once its records are cut out): growing from empty in STEP-sized appends reallocated
            // three times per walked frame (1.5% of a realistic replay's instructions).
            skel: Vec::with_capacity(SKEL_START.min(max_skel)),
            pos: 0,
            stage: Stage::Header,
            topics_left: 0,
            parts_left: 0,
            records_left: None,
            rs: None,
            sets: Vec::new(),
            failed: false,
            max_skel,
            consumed_before_records: 0,
        }
    }

    /// The skeleton parsed to its end.
    pub fn complete(&self) -> bool {
        self.stage == Stage::Done && self.records_left.is_none()
    }

    /// The next bytes of the frame (after its length prefix).
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.failed {
                return;
            }
            if let Some((left, real)) = self.records_left {
                let n = (left.min(data.len() as u64)) as usize;
                if let Some(rs) = self.rs.as_mut() {
                    rs.feed(&data[..n]);
                }
                data = &data[n..];
                let left = left - n as u64;
                if left == 0 {
                    self.end_records(real);
                } else {
                    self.records_left = Some((left, real));
                }
                continue;
            }
            if self.stage == Stage::Done {
                // Bytes after the structure's end: keep them (the decoder reports trailing bytes).
                self.skel.extend_from_slice(data);
                return;
            }
            let step = data.len().min(STEP);
            self.skel.extend_from_slice(&data[..step]);
            let appended_end = self.skel.len();
            self.advance();
            if self.skel.len() > self.max_skel {
                self.failed = true;
                return;
            }
            if self.records_left.is_some() {
                // The bytes of this step past the records length prefix are record bytes: give them back.
                let extra = appended_end.saturating_sub(self.consumed_before_records);
                data = &data[step - extra.min(step)..];
            } else {
                data = &data[step..];
            }
        }
    }

    fn end_records(&mut self, real: u64) {
        let s = self
            .rs
            .take()
            .map(RecordSetWalker::finish)
            .unwrap_or_default();
        self.sets.push((real, s));
        self.records_left = None;
        self.stage = Stage::PartTags;
        self.advance();
    }

    /// Parses whole units at `pos` while there are bytes.
    fn advance(&mut self) {
        loop {
            if self.stage == Stage::Done {
                return;
            }
            // The skeleton is moved out while a unit is parsed so that the parsers may update counters.
            let skel = std::mem::take(&mut self.skel);
            let mut c = Cur {
                b: &skel,
                p: self.pos,
            };
            let r = match self.stage {
                Stage::Header => self.header(&mut c),
                Stage::Top => self.top(&mut c),
                Stage::Topics => self.topics(&mut c),
                Stage::Topic => self.topic(&mut c),
                Stage::Part => self.part(&mut c),
                Stage::PartTags | Stage::TopicTags | Stage::TopTags => self.tags(&mut c),
                Stage::Records => {
                    let start = self.pos;
                    let rec = self.records(&mut c);
                    self.skel = skel;
                    match rec {
                        Parse::NeedMore(_) => return,
                        Parse::Broken { .. } => {
                            self.failed = true;
                            return;
                        }
                        Parse::Done(Records::Empty, n) => {
                            self.pos = start + n;
                            self.sets.push((0, RecordSetSummary::default()));
                            self.stage = Stage::PartTags;
                            continue;
                        }
                        Parse::Done(Records::Bytes(len), n) => {
                            let after = start + n;
                            self.consumed_before_records = after;
                            self.skel.truncate(start);
                            if self.flex {
                                self.skel.push(1); // compact length 0 + 1
                            } else {
                                self.skel.extend_from_slice(&0i32.to_be_bytes());
                            }
                            self.pos = self.skel.len();
                            self.rs = Some(RecordSetWalker::new());
                            self.records_left = Some((len, len));
                            return;
                        }
                    }
                }
                Stage::Done => Parse::MORE,
            };
            let end = c.p;
            self.skel = skel;
            match r {
                Parse::NeedMore(_) => return,
                Parse::Broken { .. } => {
                    self.failed = true;
                    return;
                }
                Parse::Done(..) => {
                    self.pos = end;
                    self.next_stage();
                }
            }
        }
    }

    fn next_stage(&mut self) {
        self.stage = match self.stage {
            Stage::Header => Stage::Top,
            Stage::Top => Stage::Topics,
            Stage::Topics | Stage::TopicTags => {
                if self.stage == Stage::TopicTags {
                    self.topics_left = self.topics_left.saturating_sub(1);
                }
                if self.topics_left == 0 {
                    if self.flex {
                        Stage::TopTags
                    } else {
                        Stage::Done
                    }
                } else {
                    Stage::Topic
                }
            }
            Stage::Topic | Stage::PartTags => {
                if self.stage == Stage::PartTags {
                    self.parts_left = self.parts_left.saturating_sub(1);
                }
                if self.parts_left == 0 {
                    if self.flex {
                        Stage::TopicTags
                    } else {
                        // No topic tags: the topic is done.
                        self.topics_left = self.topics_left.saturating_sub(1);
                        if self.topics_left == 0 {
                            Stage::Done
                        } else {
                            Stage::Topic
                        }
                    }
                } else {
                    Stage::Part
                }
            }
            Stage::Part => Stage::Records,
            Stage::Records => Stage::PartTags,
            Stage::TopTags | Stage::Done => Stage::Done,
        };
        // Non-flexible versions have no tag stages: PartTags is a pass-through handled in advance().
    }

    fn topics(&mut self, c: &mut Cur<'_>) -> Parse<()> {
        let start = c.p;
        self.topics_left = parse_try!(self.array_len(c));
        c.done(start)
    }

    fn tags(&self, c: &mut Cur<'_>) -> Parse<()> {
        let start = c.p;
        if self.flex {
            parse_try!(skip_tags(c));
        }
        c.done(start)
    }

    fn header(&self, c: &mut Cur<'_>) -> Parse<()> {
        let start = c.p;
        match self.shape {
            Shape::ProduceRequest => {
                parse_try!(c.skip(8)); // api key, version, correlation id
                let len = parse_try!(c.i16());
                if len > 0 {
                    parse_try!(c.skip(len as usize));
                } else if len < -1 {
                    return Parse::broken(c.p - 2, "client id length");
                }
            }
            Shape::FetchResponse => parse_try!(c.skip(4)),
        }
        if self.header_flex {
            parse_try!(skip_tags(c));
        }
        c.done(start)
    }

    fn top(&self, c: &mut Cur<'_>) -> Parse<()> {
        let start = c.p;
        match self.shape {
            Shape::ProduceRequest => {
                parse_try!(self.skip_string(c, Nullable::Yes));
                parse_try!(c.skip(2 + 4)); // acks, timeout
            }
            Shape::FetchResponse => {
                parse_try!(c.skip(4)); // throttle
                if self.version >= 7 {
                    parse_try!(c.skip(2 + 4)); // error code, session id
                }
            }
        }
        c.done(start)
    }

    fn topic(&mut self, c: &mut Cur<'_>) -> Parse<()> {
        let start = c.p;
        if self.version >= 13 {
            parse_try!(c.skip(16)); // topic id
        } else {
            parse_try!(self.skip_string(c, Nullable::No));
        }
        self.parts_left = parse_try!(self.array_len(c));
        c.done(start)
    }

    fn part(&self, c: &mut Cur<'_>) -> Parse<()> {
        let start = c.p;
        match self.shape {
            Shape::ProduceRequest => parse_try!(c.skip(4)),
            Shape::FetchResponse => {
                parse_try!(c.skip(4 + 2 + 8 + 8)); // index, error, high watermark, last stable offset
                if self.version >= 5 {
                    parse_try!(c.skip(8)); // log start offset
                }
                // aborted transactions (nullable array of producer id, first offset [, tags])
                let n = parse_try!(self.array_len(c));
                for _ in 0..n {
                    parse_try!(c.skip(16));
                    if self.flex {
                        parse_try!(skip_tags(c));
                    }
                }
                if self.version >= 11 {
                    parse_try!(c.skip(4)); // preferred read replica
                }
            }
        }
        c.done(start)
    }

    /// The records length prefix: a non-empty record set is replaced in the skeleton by an empty one and
    /// its bytes are walked as they come.
    fn records(&self, c: &mut Cur<'_>) -> Parse<Records> {
        let start = c.p;
        let len: i64 = if self.flex {
            i64::from(parse_try!(c.uvarint())) - 1
        } else {
            i64::from(parse_try!(c.i32()))
        };
        if len < -1 {
            return Parse::broken(start, "records length");
        }
        let n = c.p - start;
        if len <= 0 {
            return Parse::Done(Records::Empty, n);
        }
        Parse::Done(Records::Bytes(len as u64), n)
    }

    fn array_len(&self, c: &mut Cur<'_>) -> Parse<u32> {
        let start = c.p;
        if self.flex {
            c.uvarint().map(|v| v.saturating_sub(1))
        } else {
            let n = parse_try!(c.i32());
            if n < -1 {
                Parse::broken(start, "array length")
            } else {
                Parse::Done(n.max(0) as u32, 4)
            }
        }
    }

    fn skip_string(&self, c: &mut Cur<'_>, nullable: Nullable) -> Parse<()> {
        let start = c.p;
        if self.flex {
            let n = parse_try!(c.uvarint());
            if n == 0 {
                return match nullable {
                    Nullable::Yes => c.done(start),
                    Nullable::No => Parse::broken(start, "null string"),
                };
            }
            parse_try!(c.skip(n as usize - 1));
        } else {
            let n = parse_try!(c.i16());
            if n >= 0 {
                parse_try!(c.skip(n as usize));
            } else if n != -1 || nullable == Nullable::No {
                return Parse::broken(start, "string length");
            }
        }
        c.done(start)
    }

    /// Gives each partition of the decoded skeleton its record-set summary back.
    pub fn patch_request(&self, p: &mut ProduceRequest) {
        let mut sets = self.sets.iter();
        for part in p.topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
            if let Some((real, s)) = sets.next() {
                part.record_bytes = *real as usize;
                part.batches = s.batches.clone();
                part.batches_omitted = s.batches_omitted;
                part.records_malformed = s.malformed;
            }
        }
    }

    pub fn patch_response(&self, f: &mut FetchResponse) {
        let mut sets = self.sets.iter();
        for part in f.topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
            if let Some((real, s)) = sets.next() {
                part.record_bytes = *real as usize;
                part.batches = s.batches.clone();
                part.batches_omitted = s.batches_omitted;
                part.records_malformed = s.malformed;
            }
        }
    }
}

/// May a string field be null?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nullable {
    Yes,
    No,
}

fn skip_tags(c: &mut Cur<'_>) -> Parse<()> {
    let start = c.p;
    let n = parse_try!(c.uvarint());
    for _ in 0..n {
        parse_try!(c.uvarint()); // tag
        let size = parse_try!(c.uvarint());
        parse_try!(c.skip(size as usize));
    }
    c.done(start)
}

#[cfg(test)]
mod tests {
    //! The walk must give exactly what a whole-frame decode gives, for every version, whatever the chunking.
    use super::*;
    use crate::body::{decode_request, decode_response, RequestBody, ResponseBody};
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::messages as km;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    /// A v2 batch: header (61 bytes) then `n_body` bytes of fake records.
    fn batch(base: i64, count: i32, n_body: usize) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&base.to_be_bytes());
        v.extend_from_slice(&((49 + n_body) as i32).to_be_bytes());
        v.extend_from_slice(&0i32.to_be_bytes()); // leader epoch
        v.push(2); // magic
        v.extend_from_slice(&0u32.to_be_bytes()); // crc
        v.extend_from_slice(&1i16.to_be_bytes()); // gzip
        v.extend_from_slice(&(count - 1).to_be_bytes()); // last offset delta
        v.extend_from_slice(&[0; 16]); // timestamps
        v.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
        v.extend_from_slice(&(-1i16).to_be_bytes());
        v.extend_from_slice(&(-1i32).to_be_bytes());
        v.extend_from_slice(&count.to_be_bytes());
        v.extend(std::iter::repeat_n(0xEEu8, n_body));
        v
    }

    fn records(seed: i64) -> Bytes {
        let mut r = batch(seed, 10, 3000);
        r.extend(batch(seed + 10, 5, 9000));
        r.extend(&batch(seed + 15, 5, 4000)[..1000]); // cut short, as brokers do at max_bytes
        Bytes::from(r)
    }

    fn sb(s: &str) -> StrBytes {
        StrBytes::from_string(s.to_string())
    }

    fn enc<T: Encodable>(m: &T, v: i16) -> Vec<u8> {
        let mut b = BytesMut::new();
        m.encode(&mut b, v).unwrap();
        b.to_vec()
    }

    fn produce(v: i16) -> Vec<u8> {
        use km::produce_request::{PartitionProduceData, TopicProduceData};
        let mut topics = Vec::new();
        for (t, name) in ["orders", "payments"].iter().enumerate() {
            let mut parts = Vec::new();
            for p in 0..3 {
                let mut pd = PartitionProduceData::default();
                pd.index = p;
                pd.records = if p == 1 {
                    None
                } else {
                    Some(records(100 * t as i64 + p as i64))
                };
                parts.push(pd);
            }
            let mut td = TopicProduceData::default();
            if v >= 13 {
                td.topic_id = uuid::Uuid::from_bytes([7; 16]);
            } else {
                td.name = km::TopicName(sb(name));
            }
            td.partition_data = parts;
            topics.push(td);
        }
        let mut m = km::ProduceRequest::default();
        m.transactional_id = Some(km::TransactionalId(sb("tx-1")));
        m.acks = 1;
        m.timeout_ms = 30000;
        m.topic_data = topics;
        let mut f = Vec::new();
        f.extend_from_slice(&0i16.to_be_bytes());
        f.extend_from_slice(&v.to_be_bytes());
        f.extend_from_slice(&77i32.to_be_bytes());
        f.extend_from_slice(&[0, 3, b'c', b'i', b'd']);
        if v >= 9 {
            f.push(0); // header tags
        }
        f.extend(enc(&m, v));
        f
    }

    fn fetch(v: i16) -> Vec<u8> {
        use km::fetch_response::*;
        let mut topics = Vec::new();
        for (t, name) in ["orders", "payments"].iter().enumerate() {
            let mut parts = Vec::new();
            for p in 0..3 {
                let mut pd = PartitionData::default();
                pd.partition_index = p;
                pd.high_watermark = 1000 + p as i64;
                pd.last_stable_offset = 990;
                if v >= 5 {
                    pd.log_start_offset = 5;
                }
                let mut at = AbortedTransaction::default();
                at.producer_id = km::ProducerId(9);
                at.first_offset = 50;
                pd.aborted_transactions = Some(vec![at.clone(), at]);
                pd.preferred_read_replica = km::BrokerId(-1);
                pd.records = if p == 2 {
                    None
                } else {
                    Some(records(1000 * t as i64 + p as i64))
                };
                parts.push(pd);
            }
            let mut tr = FetchableTopicResponse::default();
            if v >= 13 {
                tr.topic_id = uuid::Uuid::from_bytes([7; 16]);
            } else {
                tr.topic = km::TopicName(sb(name));
            }
            tr.partitions = parts;
            topics.push(tr);
        }
        let mut m = km::FetchResponse::default();
        m.throttle_time_ms = 0;
        if v >= 7 {
            m.session_id = 12;
        }
        m.responses = topics;
        let mut f = 42i32.to_be_bytes().to_vec();
        if v >= 12 {
            f.push(0); // header tags
        }
        f.extend(enc(&m, v));
        f
    }

    fn walk(shape: Shape, v: i16, header_flex: bool, frame: &[u8], chunk: usize) -> Skeleton {
        let mut w = Skeleton::new(shape, v, header_flex, 1 << 20);
        for c in frame.chunks(chunk) {
            w.feed(c);
        }
        assert!(w.complete() && !w.failed, "{shape:?} v{v} chunk {chunk}");
        w
    }

    #[test]
    fn produce_walk_equals_whole_decode() {
        for v in 3..=13i16 {
            let frame = produce(v);
            let hdr = crate::header::parse_request_header(&frame).unwrap().1;
            let RequestBody::Produce(want) = decode_request(0, v, &frame[hdr..]).unwrap() else {
                panic!()
            };
            for chunk in [1, 7, 100, 1448, 65536] {
                let w = walk(Shape::ProduceRequest, v, v >= 9, &frame, chunk);
                assert!(
                    w.skel.len() < 600,
                    "skeleton keeps no record bytes: {}",
                    w.skel.len()
                );
                let RequestBody::Produce(mut got) = decode_request(0, v, &w.skel[hdr..]).unwrap()
                else {
                    panic!()
                };
                w.patch_request(&mut got);
                assert_eq!(got, want, "Produce v{v} in chunks of {chunk}");
            }
            assert_eq!(want.topics[0].partitions[0].batches.len(), 3);
            assert!(want.topics[0].partitions[0].batches[2].truncated);
        }
    }

    #[test]
    fn fetch_walk_equals_whole_decode() {
        for v in 4..=18i16 {
            let frame = fetch(v);
            let hdr = if v >= 12 { 5 } else { 4 };
            let ResponseBody::Fetch(want) = decode_response(1, v, &frame[hdr..]).unwrap() else {
                panic!()
            };
            for chunk in [1, 13, 1448, 65536] {
                let w = walk(Shape::FetchResponse, v, v >= 12, &frame, chunk);
                let ResponseBody::Fetch(mut got) = decode_response(1, v, &w.skel[hdr..]).unwrap()
                else {
                    panic!()
                };
                w.patch_response(&mut got);
                assert_eq!(got, want, "Fetch v{v} in chunks of {chunk}");
            }
            assert_eq!(want.topics[1].partitions[0].high_watermark, 1000);
        }
    }

    #[test]
    fn garbage_never_panics_and_is_bounded() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..2000 {
            let mut data = Vec::new();
            for _ in 0..(seed % 300) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                data.push(seed as u8);
            }
            for shape in [Shape::ProduceRequest, Shape::FetchResponse] {
                let mut w = Skeleton::new(shape, (seed % 19) as i16, seed.is_multiple_of(2), 4096);
                w.feed(&data);
                assert!(w.skel.len() <= 4096 + STEP);
            }
        }
    }
}
