//! The `kafka_stream` fuzz harness of `fuzz/` (cargo-fuzz, nightly) run here on stable as deterministic
//! tests: the seeds `cargo xtask fuzz` starts from (every TCP connection of the committed fixtures and
//! the public captures) and the committed regression inputs (`fuzz/regressions/kafka_stream/`), each as
//! is and mutated; plus a SplitMix64 generator feeding [`harness::run`] and [`harness::decode`] a
//! bounded number of inputs: raw random bytes, and programs built from valid Kafka frames (requests and
//! their responses, SASL handshakes that switch to raw tokens) that are then cut, mutated, interleaved
//! and punctured by gaps. Set KWIRE_FUZZ_SMOKE_ITERS to scale the iteration counts (default 1: a few
//! seconds in debug).
//!
//! Also here: minimal regression tests for bugs the property and robustness tests found in the Kafka stream (`stream/`).

#[allow(dead_code)]
#[path = "../../../fuzz/src/format.rs"]
mod format;
#[path = "../../../fuzz/src/kafka_stream.rs"]
mod harness;
#[allow(dead_code)]
#[path = "../../../fuzz/src/seeds.rs"]
mod seeds;

use std::path::{Path, PathBuf};

use format::{stream_record as record, OP_DATA, OP_DATA_LONG, OP_GAP, OP_WAIT};
use kwire_flow::{Direction, Timestamp};
use kwire_kafka::{KafkaConfig, KafkaConnection, KafkaEvent, StreamStart};

/// SplitMix64: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn scale() -> usize {
    std::env::var("KWIRE_FUZZ_SMOKE_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(&(s.len() as i16).to_be_bytes());
    b.extend_from_slice(s.as_bytes());
}

/// A request frame (length prefix, header v1 with client id "fz") and the response frame (header v0).
fn pair(kind: usize, corr: i32) -> (Vec<u8>, Vec<u8>) {
    let (key, version, req_body, resp_body): (i16, i16, Vec<u8>, Vec<u8>) = match kind {
        // ApiVersions v0: empty request; error_code, [key, min, max].
        0 => (18, 0, vec![], vec![0, 0, 0, 0, 0, 1, 0, 3, 0, 0, 0, 12]),
        // Metadata v1: topics null; brokers [1: node 1, "b", 9092, rack null], controller 1, topics [].
        1 => (3, 1, vec![0xff; 4], {
            let mut b = vec![0, 0, 0, 1, 0, 0, 0, 1];
            put_str(&mut b, "b");
            b.extend_from_slice(&[0, 0, 0x23, 0x84, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 0, 0]);
            b
        }),
        // Heartbeat v0: group "g", generation 3, member "m"; error_code 27.
        2 => (
            12,
            0,
            {
                let mut b = Vec::new();
                put_str(&mut b, "g");
                b.extend_from_slice(&3i32.to_be_bytes());
                put_str(&mut b, "m");
                b
            },
            vec![0, 27],
        ),
        // SaslHandshake v0 "PLAIN", accepted: raw SASL tokens follow in both directions.
        _ => (
            17,
            0,
            {
                let mut b = Vec::new();
                put_str(&mut b, "PLAIN");
                b
            },
            {
                let mut b = vec![0, 0, 0, 0, 0, 1];
                put_str(&mut b, "PLAIN");
                b
            },
        ),
    };
    let mut req = vec![0; 4];
    req.extend_from_slice(&key.to_be_bytes());
    req.extend_from_slice(&version.to_be_bytes());
    req.extend_from_slice(&corr.to_be_bytes());
    put_str(&mut req, "fz");
    req.extend_from_slice(&req_body);
    let len = (req.len() - 4) as i32;
    req[..4].copy_from_slice(&len.to_be_bytes());
    let mut resp = ((resp_body.len() + 4) as i32).to_be_bytes().to_vec();
    resp.extend_from_slice(&corr.to_be_bytes());
    resp.extend_from_slice(&resp_body);
    (req, resp)
}

/// A pipeline program built from valid frames, then damaged.
fn structured(rng: &mut Rng) -> Vec<u8> {
    // Mode: start and limits (bit 7, the decoder mode, is decode_smoke's).
    let mut p = vec![rng.next() as u8 & 3];
    let mut corr = rng.below(3) as i32 * 1000;
    let mut backlog: Vec<Vec<u8>> = Vec::new(); // responses not sent yet
    for _ in 0..1 + rng.below(12) {
        let roll = rng.below(20);
        let (to_client, mut bytes) = match roll {
            0..=7 => {
                let kind = if rng.below(8) == 0 { 3 } else { rng.below(3) };
                let (req, resp) = pair(kind, corr);
                corr += 1;
                backlog.push(resp);
                (false, req)
            }
            8..=14 if !backlog.is_empty() => (true, backlog.remove(0)),
            15 | 16 => {
                let n = rng.below(40);
                (rng.below(2) == 1, rng.bytes(n))
            }
            17 => {
                record(
                    &mut p,
                    rng.below(2) == 1,
                    OP_GAP,
                    rng.below(32) as u8,
                    &[rng.next() as u8],
                );
                continue;
            }
            18 => {
                record(&mut p, false, OP_WAIT, 0, &[]);
                continue;
            }
            _ => (false, Vec::new()),
        };
        // Damage: flip a byte, cut the tail.
        if !bytes.is_empty() && rng.below(6) == 0 {
            let i = rng.below(bytes.len());
            bytes[i] ^= 1 << rng.below(8);
        }
        if !bytes.is_empty() && rng.below(8) == 0 {
            bytes.truncate(rng.below(bytes.len()));
        }
        // Cut into 1..=4 chunks, each a data record.
        let mut at = 0;
        while at < bytes.len() {
            let n = if rng.below(3) == 0 {
                bytes.len() - at
            } else {
                1 + rng.below(bytes.len() - at)
            };
            let op = if n > 255 { OP_DATA_LONG } else { OP_DATA };
            record(
                &mut p,
                to_client,
                op,
                rng.below(4) as u8,
                &bytes[at..at + n],
            );
            at += n;
        }
    }
    p
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The shared corpus beside the repo (`../shared`), or KWIRE_SHARED, or /work/shared.
fn shared() -> PathBuf {
    if let Some(s) = std::env::var_os("KWIRE_SHARED") {
        return PathBuf::from(s);
    }
    let beside = repo().join("../shared");
    if beside.exists() {
        return beside;
    }
    PathBuf::from("/work/shared")
}

/// A few deterministic damages of an input: bit flips, a cut tail, a doubled middle.
fn mutations(rng: &mut Rng, input: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if input.len() < 2 {
        return out;
    }
    for _ in 0..3 {
        let mut m = input.to_vec();
        for _ in 0..1 + rng.below(4) {
            let i = 1 + rng.below(m.len() - 1);
            m[i] ^= 1 << rng.below(8);
        }
        out.push(m);
    }
    out.push(input[..1 + rng.below(input.len() - 1)].to_vec());
    let (a, b) = (rng.below(input.len()), rng.below(input.len()));
    let (a, b) = (a.min(b), a.max(b));
    let mut m = input[..b].to_vec();
    m.extend_from_slice(&input[a..]);
    out.push(m);
    out
}

/// The seeds of `cargo xtask fuzz`: every Kafka connection of every fixture and public capture, as is
/// (real traffic: the fixtures' connections report exchanges) and mutated.
#[test]
fn seeds_from_captures() {
    let files = seeds::capture_files(&repo(), &shared());
    let fixtures = files
        .iter()
        .filter(|f| f.to_string_lossy().contains("fixtures/harness"))
        .count();
    assert!(fixtures >= 20, "the committed fixtures: {files:?}");
    let mut rng = Rng(0x6b77_6972_6503);
    let (mut seeds_run, mut exchanges) = (0, 0);
    for f in &files {
        let mut from_file = 0;
        for s in seeds::stream_seeds(&seeds::read_capture(f)) {
            from_file += harness::run(&s);
            seeds_run += 1;
            for m in mutations(&mut rng, &s) {
                harness::run(&m);
            }
        }
        if f.to_string_lossy().contains("fixtures/harness") {
            assert!(
                from_file > 0,
                "{}: its seeds carry no exchange",
                f.display()
            );
        }
        exchanges += from_file;
    }
    for s in seeds::decoder_seeds() {
        harness::run(&s);
        seeds_run += 1;
    }
    assert!(
        seeds_run > 100 && exchanges > 1000,
        "{seeds_run} seeds, {exchanges} exchanges"
    );
}

/// Inputs the fuzzer found (fixed since): `fuzz/regressions/kafka_stream/`.
#[test]
fn regressions() {
    let dir = repo().join("fuzz/regressions/kafka_stream");
    let mut n = 0;
    for e in std::fs::read_dir(&dir)
        .expect("fuzz/regressions/kafka_stream")
        .flatten()
    {
        if e.path().extension().is_some_and(|x| x == "md") {
            continue;
        }
        harness::run(&std::fs::read(e.path()).unwrap());
        n += 1;
    }
    assert!(n > 0, "no regression input in {}", dir.display());
}

#[test]
fn pipeline_smoke() {
    let t = std::time::Instant::now();
    let mut rng = Rng(0x6b77_6972_6501);
    let n = 200_000 * scale();
    for i in 0..n {
        let input = if i % 3 == 0 {
            let n = rng.below(300);
            rng.bytes(n)
        } else {
            structured(&mut rng)
        };
        harness::run(&input);
    }
    eprintln!("pipeline: {n} inputs in {:?}", t.elapsed());
}

#[test]
fn decode_smoke() {
    let t = std::time::Instant::now();
    let mut rng = Rng(0x6b77_6972_6502);
    let mut n = 0;
    for _ in 0..scale() {
        // Every key (and a few that do not exist) x versions -1..=20, both directions, bodies of every
        // shape: empty, zeros, 0xff, small counts, random.
        for key in 0u8..96 {
            for version in 0u8..22 {
                for dir in 0u8..2 {
                    for shape in 0..6 {
                        let len = [0, 1, 7, 32, 128, 600][shape];
                        let mut body = match shape % 3 {
                            0 => vec![0u8; len],
                            1 => vec![0xffu8; len],
                            _ => rng.bytes(len),
                        };
                        if shape >= 3 && len >= 8 {
                            // Plausible small array counts / string lengths at the front.
                            body[..8].copy_from_slice(&[0, 0, 0, 1, 0, 1, b'x', 0]);
                        }
                        let mut input = vec![dir, key, version.wrapping_sub(1)];
                        input[0] |= if version == 0 { 4 } else { 0 }; // version -1 via the raw path
                        input.extend_from_slice(&body);
                        harness::decode(&input);
                        n += 1;
                    }
                }
            }
        }
        for _ in 0..300_000 {
            let len = rng.below(200);
            harness::decode(&rng.bytes(len));
            n += 1;
        }
    }
    eprintln!("decode: {n} inputs in {:?}", t.elapsed());
}

fn events(steps: &[(Direction, Option<&[u8]>, u64)]) -> Vec<KafkaEvent> {
    let cfg = KafkaConfig::default();
    let mut k = KafkaConnection::new(&cfg, StreamStart::MidStream);
    let mut out = Vec::new();
    for (i, (dir, data, gap)) in steps.iter().enumerate() {
        let ts = Timestamp(i as i64);
        match data {
            Some(d) => k.on_data(&cfg, *dir, ts, d, &mut |e| out.push(e)),
            None => k.on_gap(*dir, ts, *gap, &mut |e| out.push(e)),
        }
    }
    k.on_close(Timestamp(99), &mut |e| out.push(e));
    out
}

/// Found by pipeline_props: bytes held while judging the first header of a mid-stream direction must not
/// be glued to the bytes after a gap.
#[test]
fn start_mode_gap_does_not_glue_bytes_across_it() {
    use Direction::*;
    let ev = events(&[
        // ApiVersions v0, correlation id 0, client id "c": first 11 bytes, not enough to judge.
        (ToServer, Some(&[0, 0, 0, 11, 0, 18, 0, 0, 0, 0, 0]), 0),
        // The next 3 bytes (0, 0, 1) are lost.
        (ToServer, None, 3),
        // After the gap: 'c', then the next request (correlation id 1).
        (
            ToServer,
            Some(&[99, 0, 0, 0, 11, 0, 18, 0, 0, 0, 0, 0, 1, 0, 1, 99]),
            0,
        ),
        // The broker answers correlation id 1 (ApiVersions v0: error 0, no keys): a request found by
        // probing counts only once answered.
        (
            ToClient,
            Some(&[0, 0, 0, 10, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
            0,
        ),
    ]);
    let ex: Vec<(i16, i32, Option<String>)> = ev
        .iter()
        .filter_map(|e| match e {
            KafkaEvent::Exchange(x) => Some((
                x.api_key,
                x.correlation_id,
                x.request.client_id.as_deref().map(str::to_string),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        ex,
        vec![(18, 1, Some("c".to_string()))],
        "only the request after the gap; {ev:?}"
    );
}

/// Found by kwire/tests/robustness.rs `snaplen_truncated_packets`: a frame whose tail the capture lost
/// (gap exactly to the end of the frame) was reported with `bytes: 0` instead of its length.
#[test]
fn frame_lost_in_a_gap_keeps_its_size() {
    use Direction::*;
    let cfg = KafkaConfig::default();
    let mut k = KafkaConnection::new(&cfg, StreamStart::Handshake);
    let mut out = Vec::new();
    // Metadata v1 request (header v1, client id "c", topics: null) = 4 + 15 bytes, then its response.
    let req: &[u8] = &[
        0, 0, 0, 15, 0, 3, 0, 1, 0, 0, 0, 9, 0, 1, b'c', 0xff, 0xff, 0xff, 0xff,
    ];
    let resp: &[u8] = &[0, 0, 0, 16, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0];
    // The header (15 bytes with the length) arrives; the 4 bytes of the body are lost.
    k.on_data(&cfg, ToServer, Timestamp(1), &req[..15], &mut |e| {
        out.push(e)
    });
    k.on_gap(ToServer, Timestamp(1), 4, &mut |e| out.push(e));
    k.on_data(&cfg, ToClient, Timestamp(2), &resp[..10], &mut |e| {
        out.push(e)
    });
    k.on_gap(ToClient, Timestamp(2), 10, &mut |e| out.push(e));
    k.on_close(Timestamp(3), &mut |e| out.push(e));
    let ex: Vec<_> = out
        .iter()
        .filter_map(|e| match e {
            KafkaEvent::Exchange(x) => Some((
                x.correlation_id,
                x.request.bytes,
                x.response.as_ref().map(|r| r.bytes),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(ex, vec![(9, 19, Some(20))], "{out:?}");
}

/// Found by pipeline_props (`loss_never_invents_and_is_counted`): after a gap the resync scanner took the
/// first position whose bytes read as a plausible request header. Zero-rich Kafka bytes read as "Produce
/// v0" easily: here an ApiVersions v0 request that lost its first 2 bytes reads `00 0a 00 12 | 00 00 |
/// 00 00 | 0f 80 00 00 | 00 00` = length 655378, Produce v0, correlation id 0x0f800000, client id "". The
/// bogus frame swallowed the next, intact request. Fixed in stream.rs by the lead (a candidate must decode
/// as a whole frame, and a later valid candidate wins over one that runs past the buffer).
#[test]
fn resync_probe_false_positive() {
    use Direction::*;
    let tail_of_lost: &[u8] = &[0, 10, 0, 18, 0, 0, 0, 0, 15, 128, 0, 0];
    let next: &[u8] = &[0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 15, 129, 0, 0]; // ApiVersions v0, corr 3969, id ""
    let mut input = tail_of_lost.to_vec();
    input.extend_from_slice(next);
    let ev = events(&[
        (ToServer, None, 39),
        (ToServer, Some(&input), 0),
        (ToServer, None, 1),
        // The answer to correlation id 3969 (ApiVersions v0: error 0, no keys) confirms it.
        (
            ToClient,
            Some(&[0, 0, 0, 10, 0, 0, 15, 129, 0, 0, 0, 0, 0, 0]),
            0,
        ),
    ]);
    let ex: Vec<(i16, i32)> = ev
        .iter()
        .filter_map(|e| match e {
            KafkaEvent::Exchange(x) => Some((x.api_key, x.correlation_id)),
            _ => None,
        })
        .collect();
    assert_eq!(ex, vec![(18, 3969)], "{ev:?}");
}
