//! Seed inputs for both fuzz targets, built from real captures: the committed fixtures
//! (`tests/fixtures/harness/*.pcap`) and the shared public corpus (`../shared/pcaps/public`, pcap and
//! pcapng). Used by `cargo xtask fuzz` (which writes them to `fuzz/seeds/<target>/`) and by the
//! `fuzz_smoke` tests (which run them), both through `#[path]`; needs kwire-flow, kwire-capture and the
//! sibling `format` module (`super::format`).
//!
//! - `engine_packets`: each capture's packets, in windows of at most [`MAX_SEED`] bytes (the first window
//!   holds the handshakes, later ones join mid-stream); each TCP connection's packets on their own.
//! - `kafka_stream`: each TCP connection's payloads, client side (the SYN's sender, else the higher
//!   port) as "to the broker", sequence holes as gaps, retransmitted bytes dropped; in windows of at most
//!   [`MAX_SEED`] bytes; the first with the start the capture shows (handshake if a SYN was seen), plus
//!   its tiny-limits twin; and one decoder-mode seed per API key.
//!
//! Easy to get wrong: captures may lack the SYN, hold retransmissions or lose segments; the order of the
//! seeds must not depend on hash order (same files, same seeds).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kwire_capture::PcapFile;
use kwire_flow::{decode_tcp, Endpoint};

use super::format;

/// Largest seed written (bytes); `cargo xtask fuzz` passes a `-max_len` above it.
pub const MAX_SEED: usize = 16 * 1024;

/// One captured packet.
pub struct Pkt {
    pub ts_ns: i64,
    pub dlt: u32,
    pub data: Vec<u8>,
}

/// The capture files seeds come from: `<root>/tests/fixtures/harness/*.pcap` and every pcap/pcapng
/// under `<shared>/pcaps/public` (if present), sorted.
pub fn capture_files(root: &Path, shared: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![
        root.join("tests/fixtures/harness"),
        shared.join("pcaps/public"),
    ];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Every packet of a capture (what can be read of a damaged one).
pub fn read_capture(path: &Path) -> Vec<Pkt> {
    let mut out = Vec::new();
    let Ok(mut f) = PcapFile::open(path) else {
        return out;
    };
    while let Ok(Some(p)) = f.next_packet() {
        out.push(Pkt {
            ts_ns: p.ts.0,
            dlt: p.link.to_dlt(),
            data: p.data.to_vec(),
        });
    }
    out
}

/// Packets as `engine_packets` inputs cut at [`MAX_SEED`] bytes (config byte `flags`).
fn engine_windows(pkts: &[&Pkt], flags: u8, out: &mut Vec<Vec<u8>>) {
    let mut cur = vec![flags];
    let mut prev: Option<i64> = None;
    for p in pkts {
        if cur.len() > 1 && cur.len() + p.data.len() + 7 > MAX_SEED {
            out.push(std::mem::replace(&mut cur, vec![flags]));
            prev = None;
        }
        let dt = prev.map_or(0, |t| p.ts_ns.saturating_sub(t));
        if format::packet_record(&mut cur, p.dlt, dt, &p.data) {
            prev = Some(p.ts_ns);
        }
    }
    if cur.len() > 1 {
        out.push(cur);
    }
}

/// (lower endpoint, higher endpoint) of a TCP packet, or None if it is not one.
fn conn_key(p: &Pkt) -> Option<(Endpoint, Endpoint)> {
    let seg = decode_tcp(kwire_flow::LinkType::from_dlt(p.dlt), &p.data).ok()?;
    Some(if seg.src <= seg.dst {
        (seg.src, seg.dst)
    } else {
        (seg.dst, seg.src)
    })
}

/// `engine_packets` seeds of one capture.
pub fn engine_seeds(pkts: &[Pkt]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let all: Vec<&Pkt> = pkts.iter().collect();
    engine_windows(&all, 0, &mut out);
    let mut conns: BTreeMap<(Endpoint, Endpoint), Vec<&Pkt>> = BTreeMap::new();
    for p in pkts {
        if let Some(k) = conn_key(p) {
            conns.entry(k).or_default().push(p);
        }
    }
    if conns.len() > 1 {
        for (i, c) in conns.values().enumerate() {
            let mut w = Vec::new();
            // Alternate the configurations: tiny bounds, the port filter.
            engine_windows(c, (i % 4) as u8, &mut w);
            out.extend(w.into_iter().take(2));
        }
    }
    out
}

/// `kafka_stream` seeds of one capture.
pub fn stream_seeds(pkts: &[Pkt]) -> Vec<Vec<u8>> {
    struct Side {
        next: Option<u32>,
    }
    struct Conn {
        client: Option<Endpoint>,
        syn: bool,
        sides: [Side; 2],
        /// (to_client, dt ms, bytes) or a gap (bytes None, length).
        steps: Vec<(bool, u8, Option<Vec<u8>>, u64)>,
        last_ts: Option<i64>,
    }
    let mut conns: BTreeMap<(Endpoint, Endpoint), Conn> = BTreeMap::new();
    for p in pkts {
        let Ok(seg) = decode_tcp(kwire_flow::LinkType::from_dlt(p.dlt), &p.data) else {
            continue;
        };
        let key = if seg.src <= seg.dst {
            (seg.src, seg.dst)
        } else {
            (seg.dst, seg.src)
        };
        let c = conns.entry(key).or_insert(Conn {
            client: None,
            syn: false,
            sides: [Side { next: None }, Side { next: None }],
            steps: Vec::new(),
            last_ts: None,
        });
        if seg.flags.syn() && !seg.flags.ack() {
            c.client = Some(seg.src);
            c.syn = true;
        }
        let client = *c.client.get_or_insert(if seg.src.port > seg.dst.port {
            seg.src
        } else {
            seg.dst
        });
        let to_client = seg.src != client;
        let side = &mut c.sides[usize::from(to_client)];
        let mut seq = seg.seq.wrapping_add(u32::from(seg.flags.syn()));
        if seg.flags.syn() {
            side.next = Some(seq);
        }
        let mut payload = seg.payload;
        if payload.is_empty() {
            continue;
        }
        let next = *side.next.get_or_insert(seq);
        let ahead = seq.wrapping_sub(next) as i32;
        if ahead < 0 {
            // Retransmitted bytes: keep only what is new.
            let old = (-(ahead as i64)) as usize;
            if old >= payload.len() {
                continue;
            }
            payload = &payload[old..];
            seq = next;
        }
        let ms = c.last_ts.map_or(0, |t| {
            (p.ts_ns.saturating_sub(t) / 1_000_000).clamp(0, 31) as u8
        });
        c.last_ts = Some(p.ts_ns);
        if ahead > 0 {
            c.steps.push((to_client, ms, None, ahead as u64));
        }
        c.steps.push((to_client, ms, Some(payload.to_vec()), 0));
        side.next = Some(seq.wrapping_add(payload.len() as u32));
    }
    let mut out = Vec::new();
    for c in conns.values() {
        if !c.steps.iter().any(|s| s.2.is_some()) {
            continue;
        }
        let first_mode = if c.syn { 0 } else { format::STREAM_MIDSTREAM };
        let mut cur = vec![first_mode];
        let mut windows = Vec::new();
        for (to_client, ms, bytes, gap) in &c.steps {
            if cur.len() > 1 && cur.len() + bytes.as_ref().map_or(2, |b| b.len() + 4) > MAX_SEED {
                windows.push(std::mem::replace(&mut cur, vec![format::STREAM_MIDSTREAM]));
            }
            match bytes {
                Some(b) => {
                    let b = &b[..b.len().min(MAX_SEED)];
                    format::stream_data(&mut cur, *to_client, *ms, b)
                }
                None => format::stream_record(
                    &mut cur,
                    *to_client,
                    format::OP_GAP,
                    *ms,
                    &[u8::try_from(*gap).unwrap_or(0)],
                ),
            }
        }
        windows.push(cur);
        let mut tiny = windows[0].clone();
        tiny[0] |= format::STREAM_TINY_LIMITS;
        out.extend(windows);
        out.push(tiny);
    }
    out
}

/// Decoder-mode `kafka_stream` seeds: every API key, request and response, an empty and a zero body.
pub fn decoder_seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for key in 0u8..94 {
        for dir in 0u8..2 {
            let mut s = vec![format::STREAM_DECODE, dir, key, 0];
            s.extend_from_slice(&[0; 16]);
            out.push(s);
        }
    }
    out
}
