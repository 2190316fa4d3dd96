//! The `engine_packets` fuzz harness of `fuzz/` (cargo-fuzz, nightly) run here on stable as deterministic
//! tests: the seeds `cargo xtask fuzz` starts from (the packets of the committed fixtures and the public
//! captures, whole and per connection) and the committed regression inputs
//! (`fuzz/regressions/engine_packets/`), each as is and with deterministic damage (bit flips, cut
//! tails, repeated stretches, time going backwards), through `Engine::on_packet`, `Engine::finish` and
//! the JSON encoder, with notices, timeline rows and exchange facts on. And issue #10's one-packet
//! hijacks and clock anomalies in the fuzz input format (also committed as regression inputs, so they
//! seed every fuzz run).

#[allow(dead_code)]
#[path = "../../../fuzz/src/format.rs"]
mod format;
mod support;

#[path = "../../../fuzz/src/engine_packets.rs"]
mod harness;
#[allow(dead_code)]
#[path = "../../../fuzz/src/seeds.rs"]
mod seeds;

use std::path::{Path, PathBuf};

use support::{tcp_frame, Ep, KafkaApi, Pair, ACK, PSH, RST, SYN};

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
}

/// A few deterministic damages of an input: bit flips anywhere (packet bytes, lengths, link types, time
/// deltas), a cut tail, a stretch repeated.
fn mutations(rng: &mut Rng, input: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if input.len() < 2 {
        return out;
    }
    for _ in 0..3 {
        let mut m = input.to_vec();
        for _ in 0..1 + rng.below(8) {
            let i = rng.below(m.len());
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

/// The seeds of `cargo xtask fuzz`: every fixture's and public capture's packets, as is (real traffic:
/// each fixture's seeds report exchanges; two runs write the same bytes) and damaged; each also under
/// tiny bounds and the port filter.
#[test]
fn seeds_from_captures() {
    let files = seeds::capture_files(&repo(), &shared());
    let fixtures = files
        .iter()
        .filter(|f| f.to_string_lossy().contains("fixtures/harness"))
        .count();
    assert!(fixtures >= 20, "the committed fixtures: {files:?}");
    let mut rng = Rng(0x6b77_6972_6504);
    let (mut seeds_run, mut exchanges) = (0, 0);
    for f in &files {
        let mut from_file = 0;
        for s in seeds::engine_seeds(&seeds::read_capture(f)) {
            // Same input, same output, byte for byte.
            let (mut a, mut b) = (Vec::new(), Vec::new());
            from_file += harness::run_lines(&s, &mut |l| a.extend_from_slice(l));
            harness::run_lines(&s, &mut |l| b.extend_from_slice(l));
            assert!(a == b, "{}: two runs of a seed differ", f.display());
            seeds_run += 1;
            let mut other = s.clone();
            other[0] ^= format::ENGINE_TINY_LIMITS | format::ENGINE_PORT_FILTER;
            harness::run(&other);
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
    assert!(
        seeds_run > 50 && exchanges > 1000,
        "{seeds_run} seeds, {exchanges} exchanges"
    );
}

/// One seed through the format by hand: a packet, the same packet a second earlier (time going
/// backwards), then 20 years later.
#[test]
fn time_going_backwards_and_jumping() {
    let f = repo().join("tests/fixtures/harness/produce-aiokafka-mock.pcap");
    let pkts = seeds::read_capture(&f);
    assert!(pkts.len() > 20, "{}", f.display());
    let mut input = vec![0u8];
    for (i, p) in pkts.iter().enumerate() {
        let dt = match i {
            10 => -1_000_000_000,
            15 => 20 * 365 * 86_400 * 1_000_000_000,
            _ => 1_000_000,
        };
        assert!(format::packet_record(&mut input, p.dlt, dt, &p.data));
    }
    assert!(harness::run(&input) > 0);
}

/// Inputs the fuzzer found (fixed since): `fuzz/regressions/engine_packets/`.
#[test]
fn regressions() {
    let dir = repo().join("fuzz/regressions/engine_packets");
    let mut n = 0;
    for e in std::fs::read_dir(&dir)
        .expect("fuzz/regressions/engine_packets")
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

/// Issue #10's recipes in the `engine_packets` format: a conversation of 5 Metadata exchanges with a
/// blind RST and a stray SYN in the middle, a response 10 years late and a request a minute early.
/// Every exchange is still found. `KWIRE_FUZZ_WRITE_REGRESSIONS=1` (re)writes the committed copy in
/// `fuzz/regressions/engine_packets/`.
#[test]
fn hostile_recipes_in_the_fuzz_format() {
    const CLIENT: Ep = Ep::new(10, 0, 0, 2, 40000);
    const BROKER: Ep = Ep::new(10, 0, 0, 1, 9092);
    let pairs: Vec<Pair> = (0..5)
        .map(|i| Pair::new(KafkaApi::Metadata, 100 + i, "hostile-client", i as u32))
        .collect();
    let ms = 1_000_000i64;
    let mut input = vec![0u8];
    let mut push = |dt: i64, frame: Vec<u8>| {
        assert!(format::packet_record(&mut input, 1, dt, &frame));
    };
    let (mut c, mut b) = (1001u32, 5001u32);
    push(0, tcp_frame(CLIENT, BROKER, 1000, 0, SYN, &[]));
    push(ms, tcp_frame(BROKER, CLIENT, 5000, c, SYN | ACK, &[]));
    push(ms, tcp_frame(CLIENT, BROKER, c, b, ACK, &[]));
    for (i, p) in pairs.iter().enumerate() {
        // Pair 3's request a minute early; pair 1's response 10 years late (and back again after it).
        let early = if i == 3 { -60_000 * ms } else { ms };
        push(
            early,
            tcp_frame(CLIENT, BROKER, c, b, ACK | PSH, &p.request),
        );
        c += p.request.len() as u32;
        let late = if i == 1 {
            10 * 365 * 86_400_000 * ms
        } else {
            ms
        };
        push(
            late,
            tcp_frame(BROKER, CLIENT, b, c, ACK | PSH, &p.response),
        );
        b += p.response.len() as u32;
        let back = if i == 1 {
            -10 * 365 * 86_400_000 * ms
        } else if i == 3 {
            60_000 * ms
        } else {
            ms
        };
        push(back, tcp_frame(CLIENT, BROKER, c, b, ACK, &[]));
        if i == 1 {
            push(
                ms,
                tcp_frame(BROKER, CLIENT, b.wrapping_add(1 << 31), 0, RST, &[]),
            );
            push(ms, tcp_frame(CLIENT, BROKER, 0xDEAD_BEEF, 0, SYN, &[]));
        }
    }
    assert_eq!(harness::run(&input), 5);
    let mut tiny = input.clone();
    tiny[0] = format::ENGINE_TINY_LIMITS | format::ENGINE_PORT_FILTER;
    harness::run(&tiny);
    if std::env::var_os("KWIRE_FUZZ_WRITE_REGRESSIONS").is_some() {
        let dir = repo().join("fuzz/regressions/engine_packets");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("blind-rst-stray-syn-clock-jumps"), &input).unwrap();
        std::fs::write(dir.join("blind-rst-stray-syn-clock-jumps-tiny"), &tiny).unwrap();
    }
}
