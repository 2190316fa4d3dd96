use proptest::prelude::*;

use crate::packet::TcpFlags;
use crate::reassembly::*;

/// Owned form of a chunk; consecutive Data are merged so tests compare streams, not segmentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum O {
    D(Vec<u8>),
    G(u64),
    F,
    R,
}

#[derive(Default)]
pub(crate) struct Sink(pub Vec<O>);

impl Sink {
    pub fn take(&mut self, c: Chunk<'_>) {
        match c {
            Chunk::Data(d) => {
                assert!(!d.is_empty(), "empty Data chunk");
                if let Some(O::D(v)) = self.0.last_mut() {
                    v.extend_from_slice(d);
                } else {
                    self.0.push(O::D(d.to_vec()));
                }
            }
            Chunk::Gap { len } => self.0.push(O::G(len)),
            Chunk::Fin => self.0.push(O::F),
            Chunk::Rst => self.0.push(O::R),
        }
    }
}

const N: TcpFlags = TcpFlags::ACK;

fn run(r: &mut Reassembler, f: impl FnOnce(&mut Reassembler, &mut dyn FnMut(Chunk<'_>))) -> Vec<O> {
    let mut s = Sink::default();
    f(r, &mut |c| s.take(c));
    s.0
}

fn push(r: &mut Reassembler, seq: u32, flags: TcpFlags, p: &[u8]) -> Vec<O> {
    run(r, |r, out| {
        r.push(seq, flags, p, p.len() as u32, &mut |c| out(c))
    })
}

fn d(s: &[u8]) -> O {
    O::D(s.to_vec())
}

#[test]
fn in_order_is_zero_copy_and_needs_no_syn() {
    let mut r = Reassembler::default();
    let input = b"hello world".to_vec();
    let mut ptrs = Vec::new();
    r.push(5000, N, &input[..5], 5, &mut |c| {
        if let Chunk::Data(x) = c {
            ptrs.push(x.as_ptr());
        }
    });
    assert_eq!(
        ptrs,
        vec![input.as_ptr()],
        "in-order data must be the input slice"
    );
    assert_eq!(push(&mut r, 5005, N, b" world"), vec![d(b" world")]);
    assert_eq!(r.next_seq(), Some(5011));
    assert_eq!(r.stats().bytes_delivered, 11);
    assert_eq!(r.stats().segments, 2);
}

#[test]
fn syn_sets_isn_plus_one() {
    let mut r = Reassembler::default();
    assert_eq!(push(&mut r, 99, TcpFlags::SYN, b""), vec![]);
    assert_eq!(r.next_seq(), Some(100));
    assert_eq!(r.isn(), Some(99));
    // retransmitted SYN: nothing changes
    assert_eq!(push(&mut r, 99, TcpFlags::SYN, b""), vec![]);
    assert_eq!(push(&mut r, 100, N, b"abc"), vec![d(b"abc")]);
    assert_eq!(r.stats().resyncs, 0);
}

#[test]
fn out_of_order() {
    let mut r = Reassembler::default();
    assert_eq!(push(&mut r, 0, TcpFlags::SYN, b""), vec![]);
    assert_eq!(push(&mut r, 7, N, b"789"), vec![]);
    assert_eq!(push(&mut r, 4, N, b"456"), vec![]);
    assert_eq!(r.buffered_bytes(), 6);
    assert_eq!(push(&mut r, 1, N, b"123"), vec![d(b"123456789")]);
    assert_eq!(r.buffered_bytes(), 0);
    assert_eq!(r.stats().ooo_segments, 2);
    assert_eq!(r.stats().bytes_delivered, 9);
    assert_eq!(r.stats().gaps, 0);
}

#[test]
fn retransmit_and_overlap_first_copy_wins() {
    let mut r = Reassembler::default();
    push(&mut r, 0, TcpFlags::SYN, b"");
    assert_eq!(push(&mut r, 1, N, b"abcd"), vec![d(b"abcd")]);
    // full retransmission with different content: ignored
    assert_eq!(push(&mut r, 1, N, b"XXXX"), vec![]);
    assert_eq!(r.stats().retransmitted_bytes, 4);
    // overlap: 2 old bytes, 2 new
    assert_eq!(push(&mut r, 3, N, b"YYef"), vec![d(b"ef")]);
    assert_eq!(r.stats().overlap_bytes, 2);
    // buffered copy wins over a later in-order copy covering it
    assert_eq!(push(&mut r, 9, N, b"ij"), vec![]);
    assert_eq!(push(&mut r, 7, N, b"ghZZkl"), vec![d(b"ghijkl")]);
    assert_eq!(r.stats().overlap_bytes, 4);
    // overlapping out-of-order copies: first buffered wins
    assert_eq!(push(&mut r, 15, N, b"op"), vec![]);
    assert_eq!(push(&mut r, 14, N, b"nQQq"), vec![]);
    assert_eq!(push(&mut r, 15, N, b"RR"), vec![]); // entirely buffered already
    assert_eq!(r.stats().retransmitted_bytes, 6);
    assert_eq!(push(&mut r, 13, N, b"m"), vec![d(b"mnopq")]);
    assert_eq!(r.stats().bytes_delivered, 17);
}

#[test]
fn wraparound() {
    let mut r = Reassembler::default();
    let isn = u32::MAX - 5;
    push(&mut r, isn, TcpFlags::SYN, b"");
    // stream starts at u32::MAX - 4: 10 bytes cross the wrap
    assert_eq!(
        push(&mut r, isn.wrapping_add(1), N, b"abc"),
        vec![d(b"abc")]
    );
    // out of order across the wrap
    assert_eq!(push(&mut r, 3, N, b"ij"), vec![]);
    assert_eq!(push(&mut r, u32::MAX - 1, N, b"defgh"), vec![d(b"defghij")]);
    assert_eq!(r.next_seq(), Some(5));
    // old data from before the wrap is a retransmission
    assert_eq!(push(&mut r, u32::MAX - 3, N, b"bc"), vec![]);
    assert_eq!(r.stats().retransmitted_bytes, 2);
    // peer ack across the wrap
    assert_eq!(
        run(&mut r, |r, o| r.on_peer_ack(10, &mut |c| o(c))),
        vec![O::G(5)]
    );
}

#[test]
fn gap_by_peer_ack() {
    let mut r = Reassembler::default();
    push(&mut r, 0, TcpFlags::SYN, b"");
    push(&mut r, 1, N, b"ab");
    // 3..5 lost by the capture; 5..7 buffered
    assert_eq!(push(&mut r, 5, N, b"ef"), vec![]);
    // ack that does not reach past what we delivered: nothing
    assert_eq!(run(&mut r, |r, o| r.on_peer_ack(3, &mut |c| o(c))), vec![]);
    // ack of 9: hole 3..5 is lost, deliver buffered 5..7, then 7..9 lost too
    assert_eq!(
        run(&mut r, |r, o| r.on_peer_ack(9, &mut |c| o(c))),
        vec![O::G(2), d(b"ef"), O::G(2)]
    );
    assert_eq!(r.next_seq(), Some(9));
    assert_eq!(r.stats().gaps, 2);
    assert_eq!(r.stats().gap_bytes, 4);
    // the lost data turning up late is a retransmission
    assert_eq!(push(&mut r, 7, N, b"gh"), vec![]);
    assert_eq!(push(&mut r, 9, N, b"i"), vec![d(b"i")]);
    // an absurd ack (> 1 GiB ahead) is ignored
    assert_eq!(
        run(&mut r, |r, o| r.on_peer_ack(0x7000_0000, &mut |c| o(c))),
        vec![]
    );
}

#[test]
fn gap_by_bound() {
    let mut r = Reassembler::new(ReassemblyLimits {
        max_ooo_bytes: 10,
        max_ooo_segments: 3,
        ..ReassemblyLimits::default()
    });
    push(&mut r, 0, TcpFlags::SYN, b"");
    push(&mut r, 1, N, b"a");
    // hole at 2..4
    assert_eq!(push(&mut r, 4, N, b"defg"), vec![]);
    assert_eq!(push(&mut r, 8, N, b"hijk"), vec![]);
    // 12 bytes > 10: give up the hole, deliver the buffer from 4
    assert_eq!(push(&mut r, 13, N, b"mnop"), vec![O::G(2), d(b"defghijk")]);
    assert_eq!(r.stats().ooo_dropped_bytes, 2);
    assert_eq!(r.buffered_bytes(), 4);
    // segment-count bound: 3 pieces max
    assert_eq!(push(&mut r, 18, N, b"r"), vec![]);
    assert_eq!(push(&mut r, 20, N, b"t"), vec![]);
    // 4 pieces > 3: give up holes only until back within the bound
    assert_eq!(push(&mut r, 22, N, b"v"), vec![O::G(1), d(b"mnop")]);
    assert_eq!(r.stats().ooo_dropped_bytes, 3);
    // a segment larger than the whole buffer: gaps up to each buffered piece, then to it, then in order
    let big = [b'x'; 20];
    assert_eq!(
        push(&mut r, 30, N, &big),
        vec![
            O::G(1),
            d(b"r"),
            O::G(1),
            d(b"t"),
            O::G(1),
            d(b"v"),
            O::G(7),
            d(&big)
        ]
    );
    assert_eq!(r.next_seq(), Some(50));
    assert_eq!(r.stats().gap_bytes, 2 + 1 + 10);
    assert_eq!(r.stats().ooo_dropped_bytes, 13);
}

#[test]
fn fin_after_data_and_after_close() {
    let mut r = Reassembler::default();
    push(&mut r, 0, TcpFlags::SYN, b"");
    // FIN with data arrives before the data preceding it
    assert_eq!(push(&mut r, 4, TcpFlags::FIN | N, b"de"), vec![]);
    assert_eq!(push(&mut r, 1, N, b"abc"), vec![d(b"abcde"), O::F]);
    assert!(r.fin_delivered());
    // data after FIN (and retransmitted FIN): ignored, counted
    assert_eq!(push(&mut r, 6, N, b"zz"), vec![]);
    assert_eq!(push(&mut r, 4, TcpFlags::FIN | N, b"de"), vec![]);
    assert_eq!(r.stats().after_close_bytes, 4);
    // the peer acking fin+1 makes no gap
    assert_eq!(run(&mut r, |r, o| r.on_peer_ack(7, &mut |c| o(c))), vec![]);

    // bare FIN, peer ack of fin+1 with lost data before it
    let mut r = Reassembler::default();
    push(&mut r, 10, N, b"ab");
    assert_eq!(push(&mut r, 15, TcpFlags::FIN | N, b""), vec![]);
    assert_eq!(
        run(&mut r, |r, o| r.on_peer_ack(16, &mut |c| o(c))),
        vec![O::G(3), O::F]
    );
}

#[test]
fn rst_flushes_then_resets() {
    let mut r = Reassembler::default();
    push(&mut r, 1, N, b"ab");
    push(&mut r, 5, N, b"ef");
    assert_eq!(
        push(&mut r, 7, TcpFlags::RST, b""),
        vec![O::G(2), d(b"ef"), O::R]
    );
    assert!(r.rst_delivered());
    assert_eq!(push(&mut r, 7, N, b"gh"), vec![]);
    assert_eq!(r.stats().after_close_bytes, 2);
}

#[test]
fn truncated_segment() {
    let mut r = Reassembler::default();
    // 10 bytes sent, 4 captured
    assert_eq!(
        run(&mut r, |r, o| r.push(100, N, b"abcd", 10, &mut |c| o(c))),
        vec![d(b"abcd"), O::G(6)]
    );
    assert_eq!(r.stats().truncated_bytes, 6);
    assert_eq!(r.next_seq(), Some(110));
    // truncated out-of-order segment, then the hole
    assert_eq!(
        run(&mut r, |r, o| r.push(115, N, b"pq", 5, &mut |c| o(c))),
        vec![]
    );
    assert_eq!(
        push(&mut r, 110, N, b"klmno"),
        vec![d(b"klmno"), d(b"pq"), O::G(3)]
            .into_iter()
            .fold(Vec::new(), |mut v, x| {
                if let (Some(O::D(a)), O::D(b)) = (v.last_mut(), &x) {
                    a.extend_from_slice(b);
                } else {
                    v.push(x);
                }
                v
            })
    );
    assert_eq!(r.stats().truncated_bytes, 9);
    assert_eq!(r.stats().gap_bytes, 9);
    // a full copy later cannot replace the missing bytes (already skipped)
    assert_eq!(push(&mut r, 117, N, b"rst"), vec![]);
    assert_eq!(r.next_seq(), Some(120));
}

#[test]
fn resync_on_wild_jump() {
    let mut r = Reassembler::default();
    push(&mut r, 1000, N, b"ab");
    assert_eq!(
        push(&mut r, 1000 + (2 << 30), N, b"cd"),
        vec![O::G(0), d(b"cd")]
    );
    assert_eq!(r.stats().resyncs, 1);
    // new ISN on the same direction: resync as well
    assert_eq!(push(&mut r, 5, TcpFlags::SYN, b""), vec![O::G(0)]);
    assert_eq!(r.stats().resyncs, 2);
    assert_eq!(push(&mut r, 6, N, b"x"), vec![d(b"x")]);
}

#[test]
fn flush_delivers_buffer_with_gaps_and_pending_fin() {
    let mut r = Reassembler::default();
    push(&mut r, 1, N, b"a");
    push(&mut r, 4, N, b"d");
    push(&mut r, 8, TcpFlags::FIN | N, b"h");
    assert_eq!(
        run(&mut r, |r, o| r.flush(&mut |c| o(c))),
        vec![O::G(2), d(b"d"), O::G(3), d(b"h"), O::F]
    );
    assert_eq!(run(&mut r, |r, o| r.flush(&mut |c| o(c))), vec![]);
}

/// Random stream, random cuts, each segment kept / dropped / duplicated / truncated, shuffled.
/// (isn, stream, segment lengths, (fate, truncation) per segment, shuffle seeds, send a FIN)
type Scenario = (u32, Vec<u8>, Vec<usize>, Vec<(u8, u16)>, Vec<u16>, bool);

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop_oneof![any::<u32>(), Just(u32::MAX - 100), Just(u32::MAX)],
        prop::collection::vec(any::<u8>(), 0..3000),
        prop::collection::vec(1usize..400, 1..60),
        prop::collection::vec((0u8..10, any::<u16>()), 60),
        prop::collection::vec(any::<u16>(), 200),
        any::<bool>(),
    )
}

#[allow(clippy::too_many_arguments)]
fn check(
    isn: u32,
    stream: &[u8],
    cuts: &[usize],
    fates: &[(u8, u16)],
    shuffle: &[u16],
    fin: bool,
    limits: ReassemblyLimits,
    strict: bool,
) -> Result<(), TestCaseError> {
    // Cut the stream into segments.
    let mut segs: Vec<(usize, usize)> = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < stream.len() {
        let len = cuts[i % cuts.len()].min(stream.len() - at);
        segs.push((at, at + len));
        at += len;
        i += 1;
    }
    // (offset, captured end, end)
    let mut sent: Vec<(usize, usize, usize)> = Vec::new();
    let mut covered = vec![false; stream.len()];
    for (k, &(a, b)) in segs.iter().enumerate() {
        let (fate, x) = fates[k % fates.len()];
        match fate {
            0 => {} // dropped by the capture
            1 => {
                sent.push((a, b, b));
                sent.push((a, b, b));
            }
            2 => {
                let cap = a + (x as usize % (b - a + 1));
                sent.push((a, cap, b));
            }
            _ => sent.push((a, b, b)),
        }
        if fate != 0 {
            let cap = if fate == 2 {
                a + (x as usize % (b - a + 1))
            } else {
                b
            };
            for c in covered.iter_mut().take(cap).skip(a) {
                *c = true;
            }
        }
    }
    // Shuffle deterministically.
    for k in (1..sent.len()).rev() {
        let j = shuffle[k % shuffle.len()] as usize % (k + 1);
        sent.swap(k, j);
    }
    let mut r = Reassembler::new(limits);
    let mut sink = Sink::default();
    r.push(isn, TcpFlags::SYN, &[], 0, &mut |c| sink.take(c));
    let base = isn.wrapping_add(1);
    for &(a, cap, b) in &sent {
        let seq = base.wrapping_add(a as u32);
        r.push(seq, N, &stream[a..cap], (b - a) as u32, &mut |c| {
            sink.take(c)
        });
    }
    let end = base.wrapping_add(stream.len() as u32);
    if fin {
        r.push(end, TcpFlags::FIN | N, &[], 0, &mut |c| sink.take(c));
    }
    // The peer acknowledged everything; then end of input.
    r.on_peer_ack(end.wrapping_add(fin as u32), &mut |c| sink.take(c));
    r.flush(&mut |c| sink.take(c));

    // Rebuild: positions covered by Data must match the stream.
    let mut pos = 0usize;
    let mut data_bytes = 0u64;
    let mut gap_bytes = 0u64;
    let mut fins = 0;
    for o in &sink.0 {
        match o {
            O::D(v) => {
                prop_assert!(pos + v.len() <= stream.len(), "data beyond the stream");
                prop_assert_eq!(&stream[pos..pos + v.len()], &v[..]);
                pos += v.len();
                data_bytes += v.len() as u64;
            }
            O::G(n) => {
                prop_assert!(*n > 0, "no resync expected");
                // a gap only where the capture lost data (or, with small limits, the bound hit)
                if strict {
                    let end = (pos + *n as usize).min(covered.len());
                    let bad = covered[pos.min(end)..end].iter().position(|c| *c);
                    prop_assert!(
                        bad.is_none(),
                        "byte {:?} was captured but reported as gap",
                        bad.map(|b| b + pos)
                    );
                }
                pos += *n as usize;
                gap_bytes += n;
            }
            O::F => fins += 1,
            O::R => prop_assert!(false, "no RST sent"),
        }
    }
    prop_assert_eq!(pos, stream.len(), "lengths add up");
    prop_assert_eq!(data_bytes + gap_bytes, stream.len() as u64);
    prop_assert_eq!(r.stats().bytes_delivered, data_bytes);
    prop_assert_eq!(r.stats().gap_bytes, gap_bytes);
    prop_assert_eq!(fins, fin as usize);
    if fin {
        prop_assert_eq!(sink.0.last(), Some(&O::F));
    }
    prop_assert_eq!(r.buffered_bytes(), 0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_streams_reassemble((isn, stream, cuts, fates, shuffle, fin) in scenario()) {
        // Bounds large enough never to be hit: every captured byte must come out as data.
        let limits = ReassemblyLimits { max_ooo_bytes: 1 << 20, max_ooo_segments: 1 << 20, ..ReassemblyLimits::default() };
        check(isn, &stream, &cuts, &fates, &shuffle, fin, limits, true)?;
    }

    #[test]
    fn random_streams_small_bounds((isn, stream, cuts, fates, shuffle, fin) in scenario(),
                                   max_b in 0usize..600, max_s in 0usize..6) {
        check(isn, &stream, &cuts, &fates, &shuffle, fin,
              ReassemblyLimits { max_ooo_bytes: max_b, max_ooo_segments: max_s, ..ReassemblyLimits::default() }, false)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() })]

    /// Arbitrary operations (any seq, any flags, any truncation, wild acks): no panic, bounds hold,
    /// every Data chunk is non-empty, the counters agree with what came out.
    #[test]
    fn arbitrary_operations_keep_invariants(
        ops in prop::collection::vec((any::<u8>(), any::<u32>(), 0usize..300, 0u32..400, any::<u8>()), 1..80),
        near in any::<bool>(),
        max_b in 0usize..2000, max_s in 0usize..8,
    ) {
        let limits = ReassemblyLimits { max_ooo_bytes: max_b, max_ooo_segments: max_s, ..ReassemblyLimits::default() };
        let mut r = Reassembler::new(limits);
        let data = vec![7u8; 300];
        let mut delivered = 0u64;
        let mut gap_bytes = 0u64;
        let mut gaps = 0u64;
        let mut base = 0u32;
        for (i, &(kind, seq, len, extra, flags)) in ops.iter().enumerate() {
            // mostly near the stream so that reassembly is exercised, sometimes anywhere
            let seq = if near { base.wrapping_add(seq % 2000) } else { seq };
            let mut out = |c: Chunk<'_>| match c {
                Chunk::Data(d) => { assert!(!d.is_empty()); delivered += d.len() as u64 }
                Chunk::Gap { len } => { gaps += 1; gap_bytes += len }
                _ => {}
            };
            if i == 0 { base = seq; }
            match kind % 8 {
                0 => r.on_peer_ack(seq, &mut out),
                1 => r.flush(&mut out),
                _ => r.push(seq, TcpFlags(flags & 0x17), &data[..len], len as u32 + extra, &mut out),
            }
            prop_assert!(r.buffered_bytes() <= max_b);
        }
        prop_assert_eq!(r.stats().bytes_delivered, delivered);
        prop_assert_eq!(r.stats().gap_bytes, gap_bytes);
        prop_assert_eq!(r.stats().gaps, gaps);
    }
}

/// Overlapping copies with different bytes: the garbage copy came first and was delivered; the real
/// retransmission is trimmed (first copy wins) but its differing bytes are counted.
#[test]
fn overlap_with_different_data_is_counted_garbage_first() {
    let mut r = Reassembler::default();
    assert_eq!(push(&mut r, 100, N, b"GARBAGE!"), vec![d(b"GARBAGE!")]);
    // Whole retransmission of the same range with other bytes ("GARBAGE!" vs "GARDENS!": 4 differ).
    assert_eq!(push(&mut r, 100, N, b"GARDENS!"), vec![]);
    assert_eq!(r.stats().retransmitted_bytes, 8);
    assert_eq!(r.stats().overlap_mismatch_bytes, 4);
    assert_eq!(r.stats().overlap_mismatch_segments, 1);
    // Partly new: 4 old bytes (2 differ: "AGE!" vs "AXE?"), then 4 new ones delivered.
    assert_eq!(push(&mut r, 104, N, b"AXE?more"), vec![d(b"more")]);
    assert_eq!(r.stats().overlap_bytes, 4);
    assert_eq!(r.stats().overlap_mismatch_bytes, 6);
    assert_eq!(r.stats().overlap_mismatch_segments, 2);
    // An identical retransmission is quiet.
    assert_eq!(push(&mut r, 100, N, b"GARBAGE!more"), vec![]);
    assert_eq!(r.stats().overlap_mismatch_segments, 2);
    assert_eq!(r.stats().bytes_delivered, 12);
}

/// The same check against the out-of-order buffer: a second, different copy of buffered bytes.
#[test]
fn overlap_with_different_data_in_the_buffer_is_counted() {
    let mut r = Reassembler::default();
    assert_eq!(push(&mut r, 100, N, b"ab"), vec![d(b"ab")]);
    assert_eq!(push(&mut r, 110, N, b"WXYZ"), vec![]);
    // Overlaps the buffered piece by 2 bytes ("YZ" vs "yz") and extends it by 2.
    assert_eq!(push(&mut r, 112, N, b"yz12"), vec![]);
    assert_eq!(r.stats().overlap_mismatch_bytes, 2);
    assert_eq!(r.stats().overlap_mismatch_segments, 1);
    // The hole is filled: the first copy of every byte is delivered.
    assert_eq!(
        push(&mut r, 102, N, b"cdefghij"),
        vec![d(b"cdefghijWXYZ12")]
    );
    assert_eq!(r.stats().overlap_mismatch_bytes, 2);
    // The hole's filler overlapping buffered data with the same bytes: quiet.
    let mut q = Reassembler::default();
    push(&mut q, 100, N, b"ab");
    push(&mut q, 104, N, b"ef");
    assert_eq!(push(&mut q, 102, N, b"cdef"), vec![d(b"cdef")]);
    assert_eq!(q.stats().overlap_bytes, 2);
    assert_eq!(q.stats().overlap_mismatch_segments, 0);
}

/// Only the last `overlap_check_bytes` delivered are compared, and a gap empties them (what lies before
/// a gap is no longer next to the stream's end).
#[test]
fn overlap_check_is_bounded_and_reset_by_gaps() {
    let mut r = Reassembler::new(ReassemblyLimits {
        overlap_check_bytes: 4,
        ..ReassemblyLimits::default()
    });
    push(&mut r, 0, N, b"abcdefgh");
    // Bytes 0..4 are older than the ring: unchecked. Bytes 4..8 are checked ("efgh" vs "EFGH").
    assert_eq!(push(&mut r, 0, N, b"ABCDEFGH"), vec![]);
    assert_eq!(r.stats().overlap_mismatch_bytes, 4);
    // A hole the peer acknowledges: Gap, and the ring forgets.
    let mut out = Vec::new();
    r.on_peer_ack(20, &mut |c| out.push(format!("{c:?}")));
    assert_eq!(out, vec!["Gap { len: 12 }".to_string()]);
    assert_eq!(push(&mut r, 4, N, b"XXXX"), vec![]);
    assert_eq!(r.stats().overlap_mismatch_bytes, 4);
    // The ring wraps: after 6 more bytes it holds the last 4 delivered.
    push(&mut r, 20, N, b"uvw");
    push(&mut r, 23, N, b"xyz");
    // Stream 20..26 is "uvwxyz", the ring holds 22..26 ("wxyz"): an equal copy plus one new byte.
    assert_eq!(push(&mut r, 22, N, b"wxyz!"), vec![d(b"!")]);
    assert_eq!(r.stats().overlap_mismatch_bytes, 4);
    // Now the ring holds 23..27 ("xyz!", across the ring's end): "vWXYZ" at 21 differs in "XYZ"
    // (21 and 22 are older than the ring: unchecked).
    assert_eq!(push(&mut r, 21, N, b"vWXYZ"), vec![]);
    assert_eq!(r.stats().overlap_mismatch_bytes, 7);
    assert_eq!(r.stats().overlap_mismatch_segments, 2);
    // Turned off: nothing is kept or compared.
    let mut off = Reassembler::new(ReassemblyLimits {
        overlap_check_bytes: 0,
        ..ReassemblyLimits::default()
    });
    push(&mut off, 0, N, b"abcd");
    push(&mut off, 0, N, b"ABCD");
    assert_eq!(off.stats().retransmitted_bytes, 4);
    assert_eq!(off.stats().overlap_mismatch_bytes, 0);
}
