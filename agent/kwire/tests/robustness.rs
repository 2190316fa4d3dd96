//! Bad input is normal input. Real captures of ../shared/pcaps/public (read in place) are damaged in a temp
//! directory — cut short, not captures at all, dropped, reordered, duplicated, joined mid-stream,
//! snaplen-cut, odd record headers, unknown API versions, re-segmented into 1-byte TCP segments, shifted
//! across the 2^32 sequence wrap — and replayed with the real `kwire` binary.
//! The answer must be a clear message and a counter, never a panic, and nothing already read may be lost.
//!
//! The expectations are computed, not guessed: an independent model (below, [`Model`]) maps every Kafka
//! frame of a source capture to the packets that carry it, then says for a set of kept packets which
//! exchanges must be found, which must be answered and which responses must be orphans. The model follows
//! the documented behaviour of the pipeline (a request framed where framing was not known from the
//! handshake, or after a lost request, counts only once a response confirms it or an earlier request of
//! the same unbroken chain; a response is matched by correlation id against requests still waiting; after a loss the broker side resynchronises only on a response it is waiting for; a connection
//! joined mid-stream may take its very first response as a frame start; a connection silent for longer
//! than the idle timeout is a new one). Connections with a frame only partly kept are "uncertain": there
//! the tests only check that nothing is invented.
//!
//! These tests found three bugs, fixed with regression tests beside them (kwire-engine/tests/pipeline_props.rs,
//! kwire-kafka/tests/fuzz_smoke.rs): a broker's response taken for a request when it is the first thing
//! seen (roles reversed: `mid_stream_join`, `dropped_packets`), a header in 1-byte segments never
//! recognised without a handshake (`one_byte_segments_and_sequence_wrap`), and request/response sizes of 0
//! for frames cut by the capture (`snaplen_truncated_packets`).
//!
//! Easy to get wrong: a cut exactly at a record boundary is a complete, shorter file (exit 0); the damage
//! offset reported is the start of the record the cut falls in, not the cut itself; swapping a packet
//! before the packet whose data it acknowledges is not a "reorder" the pipeline can undo (it is a loss,
//! see `ack_before_data_is_a_counted_loss`).

mod common;
#[path = "../../kwire-engine/tests/support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use common::{public, replay, Run};
use kwire_capture::PcapFile;
use kwire_flow::{decode_tcp, LinkType};
use serde_json::Value;
use support::{Ep, Rng};

// ---------------------------------------------------------------------------------------------------------
// Captures in memory, a classic pcap writer, a temp directory.
// ---------------------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Pkt {
    /// Nanoseconds since the epoch.
    ts: i64,
    data: Vec<u8>,
    orig_len: u32,
}

#[derive(Clone)]
struct Capture {
    link: u32,
    pkts: Vec<Pkt>,
}

impl Capture {
    fn read(path: &Path) -> Capture {
        let mut f = PcapFile::open(path).unwrap_or_else(|e| panic!("{e}"));
        let mut link = None;
        let mut pkts = Vec::new();
        while let Some(p) = f
            .next_packet()
            .unwrap_or_else(|e| panic!("source must read cleanly: {e}"))
        {
            let l = p.link.to_dlt();
            assert!(
                link.is_none_or(|x| x == l),
                "one link type per source capture"
            );
            link = Some(l);
            pkts.push(Pkt {
                ts: p.ts.0,
                data: p.data.to_vec(),
                orig_len: p.orig_len,
            });
        }
        Capture {
            link: link.expect("source has packets"),
            pkts,
        }
    }

    fn public(rel: &str) -> Capture {
        Capture::read(&public(rel))
    }

    fn keep(&self, kept: &[bool]) -> Capture {
        let pkts = self
            .pkts
            .iter()
            .zip(kept)
            .filter(|(_, k)| **k)
            .map(|(p, _)| p.clone())
            .collect();
        Capture {
            link: self.link,
            pkts,
        }
    }

    fn with_pkts(&self, pkts: Vec<Pkt>) -> Capture {
        Capture {
            link: self.link,
            pkts,
        }
    }

    /// Classic pcap, little-endian, nanosecond timestamps (magic a1b23c4d) so no precision is lost.
    /// Returns the bytes and the offset of every record header.
    fn pcap(&self) -> (Vec<u8>, Vec<usize>) {
        let mut b = Vec::new();
        b.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes()); // magic: ns resolution
        b.extend_from_slice(&2u16.to_le_bytes()); // version major
        b.extend_from_slice(&4u16.to_le_bytes()); // version minor
        b.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        b.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        b.extend_from_slice(&262_144u32.to_le_bytes()); // snaplen
        b.extend_from_slice(&self.link.to_le_bytes()); // LINKTYPE of the source
        let mut starts = Vec::with_capacity(self.pkts.len());
        for p in &self.pkts {
            starts.push(b.len());
            b.extend_from_slice(&(p.ts.div_euclid(1_000_000_000) as u32).to_le_bytes()); // ts seconds
            b.extend_from_slice(&(p.ts.rem_euclid(1_000_000_000) as u32).to_le_bytes()); // ts nanoseconds
            b.extend_from_slice(&(p.data.len() as u32).to_le_bytes()); // caplen
            b.extend_from_slice(&p.orig_len.to_le_bytes()); // orig len
            b.extend_from_slice(&p.data);
        }
        (b, starts)
    }
}

/// A fresh directory under the system temp dir, removed when the test passes (kept for inspection when
/// it fails).
struct Tmp(PathBuf);

impl Tmp {
    fn new(name: &str) -> Tmp {
        let d =
            std::env::temp_dir().join(format!("kwire-robustness-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("create temp dir");
        Tmp(d)
    }
    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).expect("write temp file");
        p
    }
    fn replay(&self, name: &str, bytes: &[u8]) -> Run {
        replay(&self.write(name, bytes), &[])
    }
    fn replay_capture(&self, name: &str, c: &Capture) -> Run {
        self.replay(name, &c.pcap().0)
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("robustness: damaged files kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Output helpers.
// ---------------------------------------------------------------------------------------------------------

/// A line as JSON text without its packet numbers (`request_frame`, `response_frame`, also inside an
/// alert's `evidence`): they name packets of the file replayed, so dropping, swapping or re-segmenting
/// packets renumbers them while every conclusion stays the same.
fn no_frames(l: &Value) -> String {
    let mut l = l.clone();
    common::strip_frames(&mut l);
    l.to_string()
}

/// Every line except the summary and a trailing `capture_damaged` notice, as JSON text (output order).
fn event_lines(r: &Run) -> Vec<String> {
    r.lines
        .iter()
        .filter(|l| l["type"] != "summary" && l["notice"] != "capture_damaged")
        .map(no_frames)
        .collect()
}

fn exchange_lines(r: &Run) -> Vec<String> {
    r.exchanges().iter().map(|l| no_frames(l)).collect()
}

/// Exchange lines without the given fields, sorted (for variants that may legitimately change them).
fn exchanges_without(r: &Run, fields: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = r
        .exchanges()
        .iter()
        .map(|l| {
            let mut l = (*l).clone();
            for f in fields {
                l.as_object_mut().unwrap().remove(*f);
            }
            no_frames(&l)
        })
        .collect();
    v.sort();
    v
}

fn counters(r: &Run, section: &str) -> Value {
    r.summary()[section].clone()
}

fn n(r: &Run, section: &str, field: &str) -> i64 {
    r.summary()[section][field]
        .as_i64()
        .unwrap_or_else(|| panic!("no {section}.{field}"))
}

/// "client_addr>broker_addr" of an output line.
fn label(l: &Value) -> String {
    format!(
        "{}>{}",
        l["client_addr"].as_str().unwrap(),
        l["broker_addr"].as_str().unwrap()
    )
}

/// (connection label, correlation id) -> answered, from the exchange lines.
fn found(r: &Run) -> BTreeMap<(String, i64), bool> {
    let mut m = BTreeMap::new();
    for e in r.exchanges() {
        let k = (label(e), e["correlation_id"].as_i64().unwrap());
        let prev = m.insert(k.clone(), !e["response_ts"].is_null());
        assert!(prev.is_none(), "exchange {k:?} reported twice");
    }
    m
}

/// Orphan notices per connection label.
fn orphans_by_conn(r: &Run) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for l in r.of_type("notice") {
        if l["notice"] == "orphan" {
            *m.entry(label(l)).or_insert(0) += 1;
        }
    }
    m
}

fn assert_clean_exit(r: &Run, what: &str) {
    assert_eq!(r.status, 0, "{what}: exit status; stderr: {}", r.stderr);
    assert!(
        r.stderr.is_empty(),
        "{what}: nothing on stderr, got {}",
        r.stderr
    );
    let _ = r.summary();
}

// ---------------------------------------------------------------------------------------------------------
// The model: Kafka frames of a source capture, and what must be found when only some packets are kept.
// ---------------------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Conn {
    client: Ep,
    broker: Ep,
}

impl Conn {
    fn label(&self) -> String {
        format!("{}>{}", self.client, self.broker)
    }
}

#[derive(Clone, Debug)]
struct Seg {
    /// Packet time (ns).
    ts: i64,
    conn: Conn,
    to_broker: bool,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: Vec<u8>,
}

fn ep(e: kwire_flow::Endpoint) -> Ep {
    match e.ip {
        IpAddr::V4(ip) => Ep { ip, port: e.port },
        IpAddr::V6(_) => panic!("the model handles IPv4 sources only"),
    }
}

/// Decodes every packet of `c` (all must be TCP with one end on port 9092).
fn segments(c: &Capture) -> Vec<Seg> {
    let link = LinkType::from_dlt(c.link);
    c.pkts
        .iter()
        .map(|p| {
            let s = decode_tcp(link, &p.data).expect("source packets are TCP");
            let (src, dst) = (ep(s.src), ep(s.dst));
            let to_broker = dst.port == 9092;
            assert!(to_broker || src.port == 9092, "one end on port 9092");
            let conn = if to_broker {
                Conn {
                    client: src,
                    broker: dst,
                }
            } else {
                Conn {
                    client: dst,
                    broker: src,
                }
            };
            Seg {
                ts: p.ts,
                conn,
                to_broker,
                seq: s.seq,
                ack: s.ack,
                flags: s.flags.bits(),
                payload: s.payload.to_vec(),
            }
        })
        .collect()
}

#[derive(Clone, Debug)]
struct Frame {
    conn: Conn,
    to_broker: bool,
    /// Stream offsets (relative to the direction's first payload byte) `[start, end)`.
    start: i64,
    end: i64,
    corr: i32,
}

/// Per (connection, direction): base sequence number of the stream.
type Dir = (Conn, bool);

/// The engine's default idle timeout (kwire_flow::FlowTableConfig): a flow silent this long is expired.
const IDLE_TIMEOUT_NS: i64 = 300 * 1_000_000_000;

struct Model {
    segs: Vec<Seg>,
    frames: Vec<Frame>,
    base: BTreeMap<Dir, u32>,
}

impl Model {
    fn new(c: &Capture) -> Model {
        let segs = segments(c);
        let mut base: BTreeMap<Dir, u32> = BTreeMap::new();
        let mut data: BTreeMap<Dir, Vec<(i64, &[u8])>> = BTreeMap::new();
        for s in segs.iter().filter(|s| !s.payload.is_empty()) {
            let b = *base.entry((s.conn, s.to_broker)).or_insert(s.seq);
            data.entry((s.conn, s.to_broker))
                .or_default()
                .push((s.seq.wrapping_sub(b) as i32 as i64, &s.payload));
        }
        let mut frames = Vec::new();
        for (dir, mut pieces) in data {
            pieces.sort_by_key(|p| p.0);
            let first = pieces[0].0;
            assert_eq!(first, 0, "{dir:?}: stream starts with its first packet");
            let mut stream: Vec<u8> = Vec::new();
            for (rel, bytes) in pieces {
                let have = stream.len() as i64;
                assert!(rel <= have, "{dir:?}: the source has a hole at {have}");
                let skip = (have - rel) as usize;
                if skip < bytes.len() {
                    stream.extend_from_slice(&bytes[skip..]);
                }
            }
            let mut pos = 0usize;
            while pos < stream.len() {
                let len = i32::from_be_bytes(stream[pos..pos + 4].try_into().unwrap()) as usize;
                let end = pos + 4 + len;
                assert!(
                    end <= stream.len(),
                    "{dir:?}: the source ends inside a frame"
                );
                let at = if dir.1 { pos + 8 } else { pos + 4 };
                let corr = i32::from_be_bytes(stream[at..at + 4].try_into().unwrap());
                frames.push(Frame {
                    conn: dir.0,
                    to_broker: dir.1,
                    start: pos as i64,
                    end: end as i64,
                    corr,
                });
                pos = end;
            }
        }
        Model { segs, frames, base }
    }

    fn rel(&self, s: &Seg) -> i64 {
        let b = self
            .base
            .get(&(s.conn, s.to_broker))
            .copied()
            .unwrap_or(s.seq);
        s.seq.wrapping_sub(b) as i32 as i64
    }

    /// How much of `f` the kept packets carry: (fully, partly), and the capture index at which it is complete.
    fn coverage(&self, f: &Frame, kept: &[bool]) -> (bool, bool, usize) {
        let mut iv: Vec<(i64, i64, usize)> = Vec::new();
        for (i, s) in self.segs.iter().enumerate() {
            if kept[i] && s.conn == f.conn && s.to_broker == f.to_broker && !s.payload.is_empty() {
                let a = self.rel(s);
                let b = a + s.payload.len() as i64;
                if a < f.end && b > f.start {
                    iv.push((a.max(f.start), b.min(f.end), i));
                }
            }
        }
        if iv.is_empty() {
            return (false, false, 0);
        }
        // Complete at the first capture index by which [start, end) is covered.
        let mut by_index = iv.clone();
        by_index.sort_by_key(|x| x.2);
        for k in 0..by_index.len() {
            let mut upto: Vec<(i64, i64)> = by_index[..=k].iter().map(|x| (x.0, x.1)).collect();
            upto.sort();
            let mut cur = f.start;
            for (a, b) in upto {
                if a > cur {
                    break;
                }
                cur = cur.max(b);
            }
            if cur >= f.end {
                return (true, true, by_index[k].2);
            }
        }
        (false, true, 0)
    }

    /// What the pipeline must report when only the packets with `kept[i]` are replayed.
    fn expect(&self, kept: &[bool]) -> Expect {
        let mut e = Expect::default();
        let conns: BTreeSet<Conn> = self.segs.iter().map(|s| s.conn).collect();
        let life = self.lives(kept);
        for conn in conns {
            let lives: BTreeSet<usize> = (0..self.segs.len())
                .filter(|&i| kept[i] && self.segs[i].conn == conn)
                .map(|i| life[i])
                .collect();
            for l in lives {
                let kept: Vec<bool> = (0..self.segs.len())
                    .map(|i| kept[i] && life[i] == l)
                    .collect();
                if self.expect_instance(conn, &kept, &mut e).is_err() {
                    e.uncertain.insert(conn);
                }
            }
        }
        e
    }

    /// A connection silent for longer than the idle timeout is expired: what follows is a new connection
    /// (joined mid-stream) for the pipeline. Returns, per kept packet, an id of the connection's life it
    /// belongs to (usize::MAX for packets not kept).
    fn lives(&self, kept: &[bool]) -> Vec<usize> {
        let mut life = vec![usize::MAX; self.segs.len()];
        let mut last: BTreeMap<Conn, (i64, usize)> = BTreeMap::new();
        let mut next_id = 0;
        for (i, s) in self.segs.iter().enumerate().filter(|(i, _)| kept[*i]) {
            let id = match last.get(&s.conn) {
                Some(&(t, id)) if s.ts - t <= IDLE_TIMEOUT_NS => id,
                _ => {
                    next_id += 1;
                    next_id
                }
            };
            last.insert(s.conn, (s.ts, id));
            life[i] = id;
        }
        life
    }

    /// One connection as the pipeline sees it (`kept`: its packets that reach it). Err when a frame is only
    /// partly kept (the outcome then depends on probing).
    fn expect_instance(&self, conn: Conn, kept: &[bool], e: &mut Expect) -> Result<(), ()> {
        let kept_segs: Vec<(usize, &Seg)> = self
            .segs
            .iter()
            .enumerate()
            .filter(|(i, _)| kept[*i])
            .collect();
        let saw_syn = kept_segs.iter().any(|(_, s)| s.flags & 0x02 != 0);
        let mut events: Vec<(usize, &Frame)> = Vec::new();
        // Responses in stream order: (frame, kept whole, capture index at which it is complete).
        let mut responses: Vec<(&Frame, bool, usize)> = Vec::new();
        for f in self.frames.iter().filter(|f| f.conn == conn) {
            let (full, touched, at) = self.coverage(f, kept);
            if touched && !full {
                return Err(());
            }
            if full {
                events.push((at, f));
            }
            if !f.to_broker {
                responses.push((f, full, at));
            }
        }
        // A lost response is a gap (the broker side then resynchronises on a response it is waiting for)
        // when the reassembler already knew where the broker's stream was: a broker segment (any, a bare
        // ACK or the SYN+ACK too) at or before it was seen before the next kept response.
        let mut gap_before: BTreeSet<i64> = BTreeSet::new();
        let mut lost: Vec<&Frame> = Vec::new();
        for (f, full, at) in &responses {
            if !*full {
                lost.push(f);
                continue;
            }
            let known = |l: &Frame| {
                kept_segs
                    .iter()
                    .any(|(i, s)| !s.to_broker && *i < *at && self.rel(s) <= l.start)
            };
            if lost.iter().any(|l| known(l)) {
                gap_before.insert(f.start);
            }
            lost.clear();
        }
        events.sort_by_key(|x| (x.0, x.1.start));
        // The client side's sync epochs: each request frame lost whole (a gap the reassembler reports)
        // ends one; a request framed in an epoch the pipeline did not start from the handshake is trusted
        // only once a response confirms it or an earlier request of its epoch.
        let mut req_epoch: BTreeMap<i64, u32> = BTreeMap::new();
        let mut epoch = 0u32;
        let mut reqs: Vec<&Frame> = self
            .frames
            .iter()
            .filter(|f| f.conn == conn && f.to_broker)
            .collect();
        reqs.sort_by_key(|f| f.start);
        for f in reqs {
            if self.coverage(f, kept).0 {
                req_epoch.insert(f.start, epoch);
            } else {
                epoch += 1;
            }
        }
        let (mut dir_epoch, mut dir_trusted) = (0u32, saw_syn);
        #[derive(PartialEq)]
        enum Mode {
            Start,
            InSync,
            Resync,
        }
        let mut mode = if saw_syn { Mode::InSync } else { Mode::Start };
        // (correlation id, trusted, epoch) of the requests waiting.
        let mut pending: Vec<(i32, bool, u32)> = Vec::new();
        let label = conn.label();
        for (_, f) in events {
            if f.to_broker {
                let ep = req_epoch[&f.start];
                if ep != dir_epoch {
                    (dir_epoch, dir_trusted) = (ep, false);
                }
                pending.push((f.corr, dir_trusted, ep));
                continue;
            }
            if gap_before.contains(&f.start) {
                mode = Mode::Resync;
            }
            let waiting = pending.iter().position(|c| c.0 == f.corr);
            let accept = match mode {
                Mode::InSync => true,
                Mode::Start => pending.is_empty() || waiting.is_some(),
                Mode::Resync => waiting.is_some(),
            };
            if !accept {
                mode = Mode::Resync;
                continue;
            }
            mode = Mode::InSync;
            match waiting {
                Some(i) => {
                    let (_, trusted, ep) = pending[i];
                    for (c, t, _) in pending.drain(..=i).take(i) {
                        if t {
                            e.found.insert((label.clone(), c as i64), false);
                        }
                    }
                    if !trusted {
                        for p in pending.iter_mut().filter(|p| p.2 == ep) {
                            p.1 = true;
                        }
                        if ep == dir_epoch {
                            dir_trusted = true;
                        }
                    }
                    e.found.insert((label.clone(), f.corr as i64), true);
                }
                None => *e.orphans.entry(label.clone()).or_insert(0) += 1,
            }
        }
        for (c, t, _) in pending {
            if t {
                e.found.insert((label.clone(), c as i64), false);
            }
        }
        Ok(())
    }

    /// (connection label, correlation id) of every request of the source.
    fn requests(&self) -> BTreeSet<(String, i64)> {
        self.frames
            .iter()
            .filter(|f| f.to_broker)
            .map(|f| (f.conn.label(), f.corr as i64))
            .collect()
    }
}

#[derive(Default, Debug)]
struct Expect {
    /// (connection label, correlation id) -> answered.
    found: BTreeMap<(String, i64), bool>,
    orphans: BTreeMap<String, usize>,
    /// Connections with a frame only partly kept: only "nothing invented" is checked there.
    uncertain: BTreeSet<Conn>,
}

impl Expect {
    fn answered(&self) -> usize {
        self.found.values().filter(|a| **a).count()
    }
    fn unanswered(&self) -> usize {
        self.found.values().filter(|a| !**a).count()
    }
    fn orphans(&self) -> usize {
        self.orphans.values().sum()
    }
}

/// Checks a run against the model's expectation for `kept`. Returns the expectation for literal checks.
fn check_model(what: &str, m: &Model, kept: &[bool], r: &Run) -> Expect {
    let e = m.expect(kept);
    let uncertain: BTreeSet<String> = e.uncertain.iter().map(|c| c.label()).collect();
    let got = found(r);
    let all = m.requests();
    for x in r.exchanges() {
        let k = (label(x), x["correlation_id"].as_i64().unwrap());
        assert!(all.contains(&k), "{what}: invented exchange {x}");
    }
    let got_certain: BTreeMap<_, _> = got
        .iter()
        .filter(|(k, _)| !uncertain.contains(&k.0))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert_eq!(
        got_certain, e.found,
        "{what}: exchanges found (client, correlation id) -> answered"
    );
    let orph: BTreeMap<_, _> = orphans_by_conn(r)
        .into_iter()
        .filter(|(c, _)| !uncertain.contains(c))
        .collect();
    assert_eq!(orph, e.orphans, "{what}: orphan responses per connection");
    if e.uncertain.is_empty() {
        assert_eq!(
            n(r, "kafka", "orphans") as usize,
            e.orphans(),
            "{what}: orphan counter"
        );
        assert_eq!(
            n(r, "kafka", "requests") as usize,
            e.found.len(),
            "{what}: request counter"
        );
        assert_eq!(
            n(r, "kafka", "responses") as usize,
            e.answered(),
            "{what}: response counter"
        );
        assert_eq!(
            n(r, "kafka", "unanswered") as usize,
            e.unanswered(),
            "{what}: unanswered counter"
        );
    }
    e
}

// ---------------------------------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------------------------------

const SOURCES: [&str; 5] = [
    "wireshark-wiki/produce.pcapng",
    "wireshark-wiki/fetch.pcapng",
    "wireshark-wiki/metadata.pcapng",
    "ndpi/kafka.pcapng",
    "deepflow/mixed-with-unsupported.pcap",
];

/// The pcap writer of these tests is faithful: a source rewritten as classic pcap decodes the same, and the
/// model agrees with the pipeline on the undamaged capture.
#[test]
fn rewritten_sources_decode_identically() {
    let tmp = Tmp::new("rewrite");
    for src in SOURCES {
        let orig = replay(&public(src), &[]);
        let c = Capture::public(src);
        let r = tmp.replay_capture("copy.pcap", &c);
        assert_clean_exit(&r, src);
        assert_eq!(
            event_lines(&r),
            event_lines(&orig),
            "{src}: same exchanges and notices"
        );
        for s in ["packets", "flows", "tcp", "kafka", "apis", "clients"] {
            assert_eq!(counters(&r, s), counters(&orig, s), "{src}: summary.{s}");
        }
        let m = Model::new(&c);
        check_model(src, &m, &vec![true; c.pkts.len()], &r);
    }
}

/// A file cut short anywhere: at a record boundary it is a shorter capture (exit 0); inside the file
/// header, a record header or a record it is damage (exit 2, stderr names the file and the offset of the
/// record), and in both cases every exchange carried by the complete records is reported exactly as if
/// the file had ended cleanly after them, followed by the summary.
#[test]
fn pcap_cut_short_at_many_offsets() {
    let tmp = Tmp::new("cut-pcap");
    let c = Capture::public("wireshark-wiki/produce.pcapng");
    let m = Model::new(&c);
    let (bytes, starts) = c.pcap();
    let total = bytes.len();
    // Reference outputs: the first k packets written cleanly.
    let prefix: Vec<Run> = (0..=c.pkts.len())
        .map(|k| tmp.replay_capture("prefix.pcap", &c.with_pkts(c.pkts[..k].to_vec())))
        .collect();
    let mut cuts: BTreeSet<usize> = (1..24).collect(); // inside the file header
    for (i, &s) in starts.iter().enumerate() {
        let len = c.pkts[i].data.len();
        for d in [0, 1, 7, 8, 15, 16, 17, 16 + len / 2, 16 + len - 1] {
            cuts.insert(s + d);
        }
    }
    cuts.insert(total - 1);
    let path = tmp.0.join("cut.pcap");
    let mut checked = 0;
    for &cut in &cuts {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let r = replay(&path, &[]);
        let what = format!("cut at byte {cut} of {total}");
        if cut < 24 {
            assert_eq!(r.status, 2, "{what}: exit status");
            assert!(r.lines.is_empty(), "{what}: nothing to report");
            assert!(
                r.stderr.contains(&path.display().to_string()),
                "{what}: stderr names the file: {}",
                r.stderr
            );
            let why = if cut < 4 {
                format!("only {cut} bytes long")
            } else {
                "damaged at byte 0".to_string()
            };
            assert!(r.stderr.contains(&why), "{what}: {}", r.stderr);
            continue;
        }
        let k = starts.iter().filter(|&&s| s < cut).count();
        // Records complete before the cut.
        let complete = starts
            .iter()
            .enumerate()
            .filter(|(i, &s)| s + 16 + c.pkts[*i].data.len() <= cut)
            .count();
        let boundary = starts.contains(&cut);
        let want = &prefix[complete];
        assert_eq!(
            event_lines(&r),
            event_lines(want),
            "{what}: same lines as the first {complete} packets"
        );
        assert_eq!(
            counters(&r, "kafka"),
            counters(want, "kafka"),
            "{what}: same Kafka counters"
        );
        assert_eq!(
            r.summary()["file"]["packets"],
            complete as i64,
            "{what}: packets read"
        );
        let mut kept = vec![false; c.pkts.len()];
        kept[..complete].iter_mut().for_each(|k| *k = true);
        check_model(&what, &m, &kept, &r);
        if boundary {
            assert_clean_exit(&r, &what);
            assert!(r.summary()["file"]["damage"].is_null());
        } else {
            let rec = starts[k - 1];
            assert_eq!(r.status, 2, "{what}: exit status");
            assert_eq!(
                r.stderr.lines().count(),
                1,
                "{what}: one line on stderr: {}",
                r.stderr
            );
            assert!(
                r.stderr.contains(&path.display().to_string()),
                "{what}: stderr names the file: {}",
                r.stderr
            );
            assert!(
                r.stderr.contains(&format!("damaged at byte {rec}")),
                "{what}: damage offset: {}",
                r.stderr
            );
            assert!(
                r.stderr.contains(&format!("truncated at byte {cut}")),
                "{what}: cut offset: {}",
                r.stderr
            );
            let dmg = r.summary()["file"]["damage"]
                .as_str()
                .expect("summary.file.damage");
            assert!(
                dmg.contains(&format!("damaged at byte {rec}")),
                "{what}: {dmg}"
            );
            let last_notice = r.of_type("notice").last().map(|n| n["notice"].clone());
            assert_eq!(
                last_notice,
                Some("capture_damaged".into()),
                "{what}: damage notice before the summary"
            );
        }
        checked += 1;
    }
    assert!(checked > 500, "{checked} cuts");
    // Real values: produce.pcapng has 8 exchanges on 8 connections of 10 packets each (packets 4/6 carry
    // request/response of the first). A cut inside packet 6 (the first response) leaves its request
    // unanswered; a cut in the last packet loses nothing Kafka.
    let inside = |i: usize| replay(&tmp.write("x.pcap", &bytes[..starts[i] + 20]), &[]);
    let r = inside(5);
    assert_eq!(
        (r.status, r.exchanges().len(), n(&r, "kafka", "unanswered")),
        (2, 1, 1)
    );
    let r = inside(6);
    assert_eq!(
        (r.status, r.exchanges().len(), n(&r, "kafka", "responses")),
        (2, 1, 1)
    );
    let r = inside(c.pkts.len() - 1);
    assert_eq!(
        (r.status, r.exchanges().len(), n(&r, "kafka", "responses")),
        (2, 8, 8)
    );
}

/// pcapng cut at every block boundary, inside every block header and inside every block.
#[test]
fn pcapng_cut_short_at_many_offsets() {
    let tmp = Tmp::new("cut-pcapng");
    for src in ["ndpi/kafka.pcapng", "wireshark-wiki/metadata.pcapng"] {
        let bytes = std::fs::read(public(src)).unwrap();
        let c = Capture::public(src);
        // Blocks: (offset, length, type); this corpus is little-endian.
        let mut blocks = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let t = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
            let l = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
            blocks.push((at, l, t));
            at += l;
        }
        let prefix: Vec<Run> = (0..=c.pkts.len())
            .map(|k| tmp.replay_capture("prefix.pcap", &c.with_pkts(c.pkts[..k].to_vec())))
            .collect();
        let path = tmp.0.join("cut.pcapng");
        for &(start, len, _) in &blocks {
            for d in [0, 1, 4, 8, 11, 12, 13, len / 2, len - 4, len - 1] {
                let cut = start + d;
                if cut == 0 || d >= len {
                    continue;
                }
                std::fs::write(&path, &bytes[..cut]).unwrap();
                let r = replay(&path, &[]);
                let what = format!("{src} cut at byte {cut}");
                assert_eq!(
                    r.status,
                    if d == 0 { 0 } else { 2 },
                    "{what}: exit status, stderr {}",
                    r.stderr
                );
                if start == 0 && d < 12 {
                    // Inside the first Section Header Block: nothing can be read.
                    assert!(r.lines.is_empty());
                    let why = if cut < 4 {
                        format!("only {cut} bytes long")
                    } else {
                        "damaged at byte 0".to_string()
                    };
                    assert!(r.stderr.contains(&why), "{what}: {}", r.stderr);
                    continue;
                }
                let complete = blocks
                    .iter()
                    .filter(|b| b.2 == 6 && b.0 + b.1 <= cut)
                    .count();
                assert_eq!(
                    event_lines(&r),
                    event_lines(&prefix[complete]),
                    "{what}: lines of the first {complete} packets"
                );
                if d != 0 {
                    assert!(
                        r.stderr.contains(&path.display().to_string()),
                        "{what}: {}",
                        r.stderr
                    );
                    assert!(
                        r.stderr.contains(&format!("damaged at byte {start}")),
                        "{what}: {}",
                        r.stderr
                    );
                    assert!(
                        r.stderr.contains(&format!("truncated at byte {cut}")),
                        "{what}: {}",
                        r.stderr
                    );
                    assert!(r.summary()["file"]["damage"].is_string());
                }
            }
        }
    }
}

/// Files that are not captures at all: exit 2 and a single clear line naming the file; no output.
#[test]
fn not_a_capture_is_one_clear_line() {
    let tmp = Tmp::new("not-capture");
    let mut rng = Rng(7);
    let mut random = rng.bytes(4096);
    random[0] = 0x00; // no magic (nor compressor signature) by chance
    let mut gzip = vec![0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03];
    gzip.extend(rng.bytes(100));
    let text = b"Kafka capture notes\nproduce.pcapng: 8 exchanges\n".to_vec();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("random.pcap", random, "pcapng/pcap magic not found"),
        ("empty.pcap", Vec::new(), "empty"),
        ("capture.pcap.gz", gzip, "gzip"),
        ("notes.txt", text, "text"),
        ("short.pcap", vec![0xd4, 0xc3], "only 2 bytes"),
        (
            "header-only.pcap",
            vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0],
            "pcap file header truncated",
        ),
        (
            "bad-bom.pcapng",
            [0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 1, 2, 3, 4].to_vec(),
            "byte-order magic",
        ),
    ];
    let mut all: Vec<(PathBuf, &str)> = cases
        .iter()
        .map(|(name, b, w)| (tmp.write(name, b), *w))
        .collect();
    all.push((tmp.0.join("missing.pcap"), "No such file"));
    let dir = tmp.0.join("a-directory.pcap");
    std::fs::create_dir_all(&dir).unwrap();
    all.push((dir, "Is a directory"));
    for (path, word) in all {
        let r = replay(&path, &[]);
        let what = path.display().to_string();
        assert_eq!(r.status, 2, "{what}: exit status");
        assert!(r.lines.is_empty(), "{what}: no output");
        assert_eq!(
            r.stderr.lines().count(),
            1,
            "{what}: one line: {}",
            r.stderr
        );
        assert!(r.stderr.starts_with("kwire: "), "{what}: {}", r.stderr);
        assert!(
            r.stderr.contains(&what),
            "{what}: names the file: {}",
            r.stderr
        );
        assert!(
            r.stderr.contains(word),
            "{what}: says {word:?}: {}",
            r.stderr
        );
        assert!(!r.stderr.contains("panicked"), "{what}: {}", r.stderr);
    }
    // A valid pcap of an unsupported link type is not an error: every packet is counted.
    let mut c = Capture::public("wireshark-wiki/heartbeat.pcapng");
    c.link = 147; // LINKTYPE_USER0
    let r = tmp.replay_capture("user0.pcap", &c);
    assert_clean_exit(&r, "LINKTYPE_USER0");
    assert_eq!(n(&r, "packets", "unsupported_link"), c.pkts.len() as i64);
    assert_eq!(r.exchanges().len(), 0);
}

/// Drop every Nth packet (all phases), then single packets carrying a request or a response.
#[test]
fn dropped_packets() {
    let tmp = Tmp::new("drop");
    let mut literal = Vec::new();
    for src in SOURCES {
        let c = Capture::public(src);
        let m = Model::new(&c);
        for every in 2..=7 {
            for phase in 0..every {
                let kept: Vec<bool> = (0..c.pkts.len()).map(|i| i % every != phase).collect();
                let r = tmp.replay_capture("drop.pcap", &c.keep(&kept));
                let what = format!("{src}: every {every}th packet dropped (phase {phase})");
                assert_clean_exit(&r, &what);
                let e = check_model(&what, &m, &kept, &r);
                // A lost data segment is a counted gap when its direction's position was known (an earlier
                // kept segment of that direction) and a later kept ACK covers it, in the same life of the
                // connection (not across the idle timeout).
                let life = m.lives(&kept);
                let lost = m.segs.iter().enumerate().any(|(i, s)| {
                    !kept[i]
                        && !s.payload.is_empty()
                        // (not when a kept retransmission carries the same bytes)
                        && !m.segs.iter().enumerate().any(|(k, u)| {
                            kept[k] && u.conn == s.conn && u.to_broker == s.to_broker && u.seq == s.seq && u.payload.len() >= s.payload.len()
                        })
                        && m.segs.iter().enumerate().skip(i + 1).any(|(j, t)| {
                            kept[j]
                                && t.conn == s.conn
                                && t.to_broker != s.to_broker
                                && t.flags & 0x10 != 0
                                && (t.ack.wrapping_sub(s.seq.wrapping_add(s.payload.len() as u32)) as i32) >= 0
                                && m.segs.iter().enumerate().take(i).any(|(k, u)| {
                                    kept[k] && u.conn == s.conn && u.to_broker == s.to_broker && life[k] == life[j]
                                })
                        })
                });
                if lost {
                    assert!(
                        n(&r, "tcp", "gaps") > 0,
                        "{what}: the loss is counted as a TCP gap"
                    );
                }
                if src == "wireshark-wiki/produce.pcapng" && every == 3 && phase == 0 {
                    literal.push((e.answered(), e.unanswered(), e.orphans()));
                }
            }
        }
    }
    // Real values for one variant: produce.pcapng with packets 1, 4, 7, ... dropped loses the requests in
    // packets 4, 31, 64 (their responses 6, 33, 66 are orphans) and the responses in packets 13, 46, 73
    // (unanswered); the exchanges of packets 24/26 and 51/53 are intact.
    assert_eq!(literal, vec![(2, 3, 3)], "answered, unanswered, orphans");

    // One specific packet: the Produce request of the second connection (packet 11), then its response
    // (packet 13). Exactly that exchange changes; the 7 others are intact.
    let c = Capture::public("wireshark-wiki/produce.pcapng");
    let m = Model::new(&c);
    let base = tmp.replay_capture("base.pcap", &c);
    for (idx, what) in [(10, "request"), (12, "response")] {
        assert_eq!(
            c.pkts[idx].data.len(),
            if what == "request" { 187 } else { 116 }
        );
        let mut kept = vec![true; c.pkts.len()];
        kept[idx] = false;
        let r = tmp.replay_capture("drop1.pcap", &c.keep(&kept));
        assert_clean_exit(&r, what);
        check_model(what, &m, &kept, &r);
        let k = |r: &Run| {
            (
                n(r, "kafka", "requests"),
                n(r, "kafka", "responses"),
                n(r, "kafka", "orphans"),
                n(r, "kafka", "unanswered"),
                n(r, "kafka", "desyncs"),
            )
        };
        if what == "request" {
            assert_eq!(
                k(&r),
                (7, 7, 1, 0, 1),
                "{what}: requests, responses, orphans, unanswered, desyncs"
            );
        } else {
            assert_eq!(
                k(&r),
                (8, 7, 0, 1, 1),
                "{what}: requests, responses, orphans, unanswered, desyncs"
            );
        }
        assert_eq!(n(&r, "tcp", "gaps"), 1, "{what}: one gap");
        assert_eq!(
            n(&r, "tcp", "gap_bytes"),
            c.pkts[idx].data.len() as i64 - 66,
            "{what}: the lost payload"
        );
        // Every other exchange is reported exactly as before.
        let others = |r: &Run| -> Vec<String> {
            r.exchanges()
                .iter()
                .filter(|e| e["client_addr"] != "127.0.0.1:34128")
                .map(|e| no_frames(e))
                .collect()
        };
        assert_eq!(
            others(&r),
            others(&base),
            "{what}: the other exchanges are untouched"
        );
    }
}

/// Adjacent packets less than a second apart swapped (when the second does not acknowledge the first: a
/// capture cannot be more disordered than causality allows without it being a loss; each position keeps
/// its timestamp, as a capture would stamp them) and every packet duplicated: the same exchanges as the original. Swapping
/// changes which packet completes a frame, so the times of an exchange may move; connection ids follow
/// first sight and may be renumbered.
#[test]
fn reordered_and_duplicated_packets_change_nothing() {
    let tmp = Tmp::new("reorder");
    let moved = ["conn", "ts", "response_ts", "latency_us"];
    for src in SOURCES {
        let c = Capture::public(src);
        let m = Model::new(&c);
        let orig = tmp.replay_capture("orig.pcap", &c);
        let mut total_swaps = 0;
        for phase in 0..2 {
            let mut pkts = c.pkts.clone();
            let mut swaps = 0;
            let mut i = phase;
            while i + 1 < pkts.len() {
                let (a, b) = (&m.segs[i], &m.segs[i + 1]);
                let a_occupies = !a.payload.is_empty() || a.flags & 0x03 != 0;
                let b_acks_a = b.conn == a.conn
                    && b.to_broker != a.to_broker
                    && b.flags & 0x10 != 0
                    && a_occupies
                    && (b.ack.wrapping_sub(a.seq) as i32) > 0;
                // Reordering happens between packets close in time (not across the idle timeout).
                let close = (b.ts - a.ts).abs() < 1_000_000_000;
                if !b_acks_a && close {
                    pkts.swap(i, i + 1);
                    let (ta, tb) = (pkts[i].ts, pkts[i + 1].ts);
                    pkts[i].ts = tb;
                    pkts[i + 1].ts = ta;
                    swaps += 1;
                }
                i += 2;
            }
            let r = tmp.replay_capture("swapped.pcap", &c.with_pkts(pkts));
            let what = format!("{src}: {swaps} adjacent swaps (phase {phase})");
            assert_clean_exit(&r, &what);
            total_swaps += swaps;
            assert_eq!(
                exchanges_without(&r, &moved),
                exchanges_without(&orig, &moved),
                "{what}"
            );
            assert_eq!(
                counters(&r, "kafka"),
                counters(&orig, "kafka"),
                "{what}: Kafka counters"
            );
            assert_eq!(n(&r, "tcp", "gaps"), 0, "{what}: no gap");
        }
        assert!(total_swaps >= 3, "{src}: {total_swaps} swaps");
        let doubled: Vec<Pkt> = c.pkts.iter().flat_map(|p| [p.clone(), p.clone()]).collect();
        let r = tmp.replay_capture("doubled.pcap", &c.with_pkts(doubled));
        let what = format!("{src}: every packet twice");
        assert_clean_exit(&r, &what);
        assert_eq!(
            event_lines(&r),
            event_lines(&orig),
            "{what}: same lines, same order"
        );
        assert_eq!(counters(&r, "kafka"), counters(&orig, "kafka"), "{what}");
        let payload: i64 = m.segs.iter().map(|s| s.payload.len() as i64).sum();
        let dup_in_source = n(&orig, "tcp", "retransmitted_bytes");
        assert_eq!(
            n(&r, "tcp", "retransmitted_bytes"),
            payload + dup_in_source,
            "{what}: every copy counted"
        );
        assert_eq!(
            n(&r, "tcp", "bytes_delivered"),
            n(&orig, "tcp", "bytes_delivered"),
            "{what}"
        );
    }
}

/// Documents the one disorder that is a loss: a response seen before the request it acknowledges. The
/// request is declared lost when the ACK passes it and trimmed when it arrives late (reassembly.rs); the
/// response becomes an orphan. Counted, never a panic, and the other exchanges are untouched.
#[test]
fn ack_before_data_is_a_counted_loss() {
    let tmp = Tmp::new("ack-first");
    let c = Capture::public("wireshark-wiki/produce.pcapng");
    let mut pkts = c.pkts.clone();
    // Packets 11 (Produce request) .. 13 (its response): put the response first.
    pkts.swap(10, 12);
    let r = tmp.replay_capture("ack-first.pcap", &c.with_pkts(pkts));
    assert_clean_exit(&r, "ack first");
    assert_eq!(r.exchanges().len(), 7);
    assert_eq!(
        (n(&r, "kafka", "orphans"), n(&r, "kafka", "requests")),
        (1, 7)
    );
    assert_eq!(n(&r, "tcp", "gaps"), 1);
    assert_eq!(
        n(&r, "tcp", "retransmitted_bytes"),
        121,
        "the late request is trimmed as already covered"
    );
}

/// Joined mid-stream: the first K packets of every connection are missing (SYN, handshake, first
/// requests). Later exchanges are found; responses to the missing requests are orphans.
#[test]
fn mid_stream_join() {
    let tmp = Tmp::new("midstream");
    let mut literal = BTreeMap::new();
    for src in SOURCES {
        let c = Capture::public(src);
        let m = Model::new(&c);
        for k in 1..=8 {
            let mut per_conn: BTreeMap<Conn, usize> = BTreeMap::new();
            let kept: Vec<bool> = m
                .segs
                .iter()
                .map(|s| {
                    let seen = per_conn.entry(s.conn).or_insert(0);
                    *seen += 1;
                    *seen > k
                })
                .collect();
            let r = tmp.replay_capture("mid.pcap", &c.keep(&kept));
            let what = format!("{src}: first {k} packets of each connection missing");
            assert_clean_exit(&r, &what);
            let e = check_model(&what, &m, &kept, &r);
            if src == "ndpi/kafka.pcapng" {
                literal.insert(k, (e.answered(), e.unanswered(), e.orphans()));
            }
        }
    }
    // ndpi/kafka.pcapng with 4 packets missing per connection: the console-producer connection (SYN,
    // SYN+ACK, ACK, ApiVersions request, ...) keeps InitProducerId, Metadata and Produce (3 answered) and
    // its ApiVersions response is an orphan; of the librdkafka connections (1-5 packets each, no
    // handshake) three keep one last response each: 131 (already an orphan), 142 (a copy of its
    // retransmitted response) and 3 (the second Produce): 4 orphans.
    assert_eq!(
        literal[&4],
        (3, 0, 4),
        "answered, unanswered, orphans with 4 packets missing"
    );
    let c = Capture::public("ndpi/kafka.pcapng");
    let m = Model::new(&c);
    let kept: Vec<bool> = (0..c.pkts.len()).map(|i| i >= 26).collect(); // from packet 27 on
    let r = tmp.replay_capture("producer.pcap", &c.keep(&kept));
    check_model("console-producer from its 2nd request", &m, &kept, &r);
    let apis: Vec<&str> = r
        .exchanges()
        .iter()
        .map(|e| e["api"].as_str().unwrap())
        .collect();
    assert_eq!(apis, ["InitProducerId", "Metadata", "Produce"]);
    assert!(r.exchanges().iter().all(|e| !e["response_ts"].is_null()));
    assert_eq!(n(&r, "kafka", "orphans"), 1, "the ApiVersions response");
}

/// Snaplen: some packets captured to 60 bytes (inside the TCP header of these captures: the packet is
/// counted as truncated and lost), others to 110 bytes (44 payload bytes: headers survive, bodies are
/// lost and counted; the exchanges are still found and answered).
#[test]
fn snaplen_truncated_packets() {
    let tmp = Tmp::new("snaplen");
    let c = Capture::public("wireshark-wiki/produce.pcapng");
    let m = Model::new(&c);
    let base = tmp.replay_capture("base.pcap", &c);
    // 60 bytes: every other packet that carries data.
    let mut cut = c.clone();
    let mut kept = vec![true; c.pkts.len()];
    let mut nth = 0;
    for (i, p) in cut.pkts.iter_mut().enumerate() {
        if !m.segs[i].payload.is_empty() {
            nth += 1;
            if nth % 2 == 0 {
                p.data.truncate(60);
                kept[i] = false;
            }
        }
    }
    let r = tmp.replay_capture("snap60.pcap", &cut);
    assert_clean_exit(&r, "snaplen 60");
    assert_eq!(r.summary()["file"]["truncated_packets"], 8);
    assert_eq!(
        n(&r, "packets", "truncated"),
        8,
        "cut inside the TCP header: counted as truncated"
    );
    check_model("snaplen 60", &m, &kept, &r);
    // 110 bytes: every packet.
    let mut cut = c.clone();
    let mut lost = 0;
    let mut damaged = 0;
    for (i, p) in cut.pkts.iter_mut().enumerate() {
        if p.data.len() > 110 {
            lost += p.data.len() as i64 - 110;
            damaged += 1;
            assert!(m.segs[i].payload.len() > 44);
            p.data.truncate(110);
        }
    }
    let r = tmp.replay_capture("snap110.pcap", &cut);
    assert_clean_exit(&r, "snaplen 110");
    assert_eq!(r.summary()["file"]["truncated_packets"], damaged);
    assert_eq!(n(&r, "tcp", "truncated_bytes"), lost);
    assert_eq!(n(&r, "kafka", "damaged_frames"), damaged);
    assert_eq!(r.exchanges().len(), 8);
    assert_eq!(
        n(&r, "kafka", "responses"),
        8,
        "responses matched by correlation id from their header"
    );
    let skipped = r
        .exchanges()
        .iter()
        .filter(|e| e["request_status"] == "skipped: capture_gap")
        .count()
        + r.exchanges()
            .iter()
            .filter(|e| e["response_status"] == "skipped: capture_gap")
            .count();
    assert_eq!(
        skipped as i64, damaged,
        "every cut frame is reported as skipped"
    );
    let ids = |r: &Run| {
        exchanges_without(
            r,
            &[
                "request",
                "response",
                "request_status",
                "response_status",
                "error_codes",
                "errors",
            ],
        )
    };
    assert_eq!(ids(&r), ids(&base), "same exchanges, bodies aside");
}

/// Record headers: caplen > origlen is tolerated and counted; an absurd caplen is damage at that record.
#[test]
fn odd_record_headers() {
    let tmp = Tmp::new("records");
    let c = Capture::public("wireshark-wiki/produce.pcapng");
    let base = tmp.replay_capture("base.pcap", &c);
    let (bytes, starts) = c.pcap();
    // orig_len smaller than caplen on three records.
    let mut b = bytes.clone();
    for i in [3, 10, 40] {
        let at = starts[i] + 12;
        let caplen = c.pkts[i].data.len() as u32;
        b[at..at + 4].copy_from_slice(&(caplen - 10).to_le_bytes());
    }
    let r = tmp.replay("caplen-gt-origlen.pcap", &b);
    assert_clean_exit(&r, "caplen > origlen");
    assert_eq!(r.summary()["file"]["caplen_exceeds_origlen"], 3);
    assert_eq!(event_lines(&r), event_lines(&base));
    // An absurd caplen on record 45: damage reported at its offset, the 44 packets before are decoded.
    for (i, caplen) in [(45usize, 0xFFFF_FFF0u32), (45, 300 << 20), (0, 0x8000_0000)] {
        let mut b = bytes.clone();
        let at = starts[i] + 8;
        b[at..at + 4].copy_from_slice(&caplen.to_le_bytes());
        let r = tmp.replay("absurd.pcap", &b);
        let what = format!("caplen {caplen} on record {i}");
        assert_eq!(r.status, 2, "{what}");
        assert!(
            r.stderr.contains(&format!("damaged at byte {}", starts[i])),
            "{what}: {}",
            r.stderr
        );
        assert!(
            r.stderr.contains(&format!("caplen {caplen}")),
            "{what}: {}",
            r.stderr
        );
        let want = tmp.replay_capture("prefix.pcap", &c.with_pkts(c.pkts[..i].to_vec()));
        assert_eq!(event_lines(&r), event_lines(&want), "{what}");
        assert_eq!(r.summary()["file"]["packets"], i as i64);
    }
}

/// Unknown API versions: the Produce requests of produce.pcapng rewritten to version 99 (no Kafka has it)
/// and to the newest known version + 1 (a newer client). Reported by header, skipped by length, answered,
/// counted; the Metadata exchanges around them are untouched.
#[test]
fn unknown_api_versions_are_reported_by_header() {
    let tmp = Tmp::new("versions");
    let c = Capture::public("wireshark-wiki/produce.pcapng");
    let base = tmp.replay_capture("base.pcap", &c);
    let newest = kwire_kafka::api::max_known_version(0).expect("Produce is known");
    for version in [99i16, newest + 1] {
        let mut v = c.clone();
        let mut rewritten = 0;
        for p in &mut v.pkts {
            let s = decode_tcp(LinkType::from_dlt(c.link), &p.data).unwrap();
            let at = s.payload.as_ptr() as usize - p.data.as_ptr() as usize;
            if s.dst.port == 9092 && s.payload.len() >= 8 && s.payload[4..6] == [0, 0] {
                p.data[at + 6..at + 8].copy_from_slice(&version.to_be_bytes());
                rewritten += 1;
            }
        }
        assert_eq!(rewritten, 4);
        let r = tmp.replay_capture("versions.pcap", &v);
        let what = format!("Produce v{version}");
        assert_clean_exit(&r, &what);
        assert_eq!(n(&r, "kafka", "unknown_versions"), 4, "{what}");
        assert_eq!(
            (n(&r, "kafka", "requests"), n(&r, "kafka", "responses")),
            (8, 8),
            "{what}"
        );
        assert_eq!(
            (n(&r, "kafka", "desyncs"), n(&r, "kafka", "decode_errors")),
            (0, 0),
            "{what}"
        );
        let produce: Vec<&Value> = r
            .exchanges()
            .into_iter()
            .filter(|e| e["api"] == "Produce")
            .collect();
        assert_eq!(produce.len(), 4);
        for e in produce {
            assert_eq!(e["api_version"], version, "{what}");
            assert_eq!(e["request_status"], "unknown_version", "{what}");
            assert_eq!(e["response_status"], "unknown_version", "{what}");
            assert!(
                e["response_bytes"].as_i64().unwrap() > 8,
                "{what}: the response is matched"
            );
        }
        let metadata = |r: &Run| -> Vec<String> {
            r.exchanges()
                .iter()
                .filter(|e| e["api"] == "Metadata")
                .map(|e| e.to_string())
                .collect()
        };
        assert_eq!(metadata(&r), metadata(&base), "{what}");
    }
}

// ---------------------------------------------------------------------------------------------------------
// Captures rebuilt from scratch: the same conversations in 1-byte segments, and across the sequence wrap.
// ---------------------------------------------------------------------------------------------------------

/// Rebuilds every packet of `c` (Ethernet/IPv4/TCP, no options) with its payload cut into `seg`-byte
/// segments (each with the packet's timestamp, so frames complete at the same time) and the sequence
/// numbers of each direction shifted so that the middle of its largest frame sits on the 2^32 wrap when
/// `wrap` is set.
fn rebuild(c: &Capture, seg: usize, wrap: bool) -> Capture {
    let m = Model::new(c);
    let mut delta: BTreeMap<Dir, u32> = BTreeMap::new();
    if wrap {
        for (dir, base) in &m.base {
            let f = m
                .frames
                .iter()
                .filter(|f| (f.conn, f.to_broker) == *dir)
                .max_by_key(|f| f.end - f.start)
                .unwrap();
            let mid = base.wrapping_add(((f.start + f.end) / 2) as u32);
            delta.insert(*dir, 0u32.wrapping_sub(mid));
        }
    }
    let mut pkts = Vec::new();
    for (p, s) in c.pkts.iter().zip(&m.segs) {
        let (src, dst) = if s.to_broker {
            (s.conn.client, s.conn.broker)
        } else {
            (s.conn.broker, s.conn.client)
        };
        let d_seq = delta.get(&(s.conn, s.to_broker)).copied().unwrap_or(0);
        let d_ack = delta.get(&(s.conn, !s.to_broker)).copied().unwrap_or(0);
        let ack = if s.flags & support::ACK != 0 {
            s.ack.wrapping_add(d_ack)
        } else {
            s.ack
        };
        let seq = s.seq.wrapping_add(d_seq);
        let mut push = |seq: u32, flags: u8, payload: &[u8]| {
            let data = support::tcp_frame(src, dst, seq, ack, flags, payload);
            pkts.push(Pkt {
                ts: p.ts,
                orig_len: data.len() as u32,
                data,
            });
        };
        if s.payload.is_empty() {
            push(seq, s.flags, &[]);
            continue;
        }
        let chunks: Vec<&[u8]> = s.payload.chunks(seg).collect();
        let mut off = 0u32;
        for (i, ch) in chunks.iter().enumerate() {
            let last = i + 1 == chunks.len();
            // FIN and PSH belong to the last piece.
            let flags = if last {
                s.flags
            } else {
                s.flags & !(support::FIN | support::PSH)
            };
            push(seq.wrapping_add(off), flags, ch);
            off += ch.len() as u32;
        }
    }
    Capture { link: 1, pkts }
}

#[test]
fn one_byte_segments_and_sequence_wrap() {
    let tmp = Tmp::new("rebuilt");
    for src in [
        "ndpi/kafka.pcapng",
        "wireshark-wiki/metadata.pcapng",
        "wireshark-wiki/fetch.pcapng",
    ] {
        let orig = replay(&public(src), &[]);
        let c = Capture::public(src);
        for (seg, wrap) in [
            (usize::MAX, false),
            (1, false),
            (7, false),
            (usize::MAX, true),
            (1, true),
            (3, true),
        ] {
            let rc = rebuild(&c, seg, wrap);
            let r = tmp.replay_capture("rebuilt.pcap", &rc);
            let what = format!(
                "{src}: rebuilt in {seg}-byte segments, wrap {wrap} ({} packets)",
                rc.pkts.len()
            );
            assert_clean_exit(&r, &what);
            assert_eq!(
                exchange_lines(&r),
                exchange_lines(&orig),
                "{what}: identical exchanges"
            );
            assert_eq!(
                counters(&r, "kafka"),
                counters(&orig, "kafka"),
                "{what}: Kafka counters"
            );
            assert_eq!(n(&r, "tcp", "gaps"), 0, "{what}");
            assert_eq!(n(&r, "tcp", "resyncs"), 0, "{what}");
        }
    }
}
