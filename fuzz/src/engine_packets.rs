//! The `engine_packets` harness: bytes → a sequence of captured packets (link type, timestamp, frame
//! bytes; time may go backwards or jump years) → `kwire_engine::Engine::on_packet`, then
//! `Engine::finish`, with notices, timeline rows and exchange facts on, every `Output` written with the
//! JSON encoder (`output::json::write_line`) as `kwire replay --json` would. Config byte: defaults, or
//! tiny bounds that make every table and buffer overflow, and with or without a port filter. Input
//! format: `format.rs`. Shared with `agent/kwire-engine/tests/fuzz_smoke.rs`, which includes this file
//! and `format.rs` with `#[path]` (so: no crate-level attributes, only kwire-flow, kwire-engine and
//! serde_json, and `crate::format` must be the format module).
//!
//! Invariants: nothing panics; every output serialises to one line of valid JSON (an object with a
//! string `type`), the same bytes as serde_json writes from the `Serialize` impls (the encoder's fast
//! path for exchange lines is checked against them).
//!
//! Easy to get wrong: the packet time of the first packet is fixed (2023-11-14), later ones move by the
//! record's signed delta, saturating rather than overflowing, as a capture's clock never wraps.

use kwire_engine::output::json::write_line;
use kwire_engine::{EngineConfig, Output};
use kwire_flow::{LinkType, Timestamp};

use crate::format;

/// The engine configuration an input's first byte chooses.
pub fn config(flags: u8) -> EngineConfig {
    let mut cfg = EngineConfig {
        notices: true,
        timeline: true,
        exchange_facts: true,
        ..EngineConfig::default()
    };
    if flags & format::ENGINE_PORT_FILTER != 0 {
        cfg.ports = vec![9092];
    }
    if flags & format::ENGINE_TINY_LIMITS != 0 {
        cfg.flows.max_flows = 4;
        cfg.flows.evict_min_idle_ns = 1_000_000;
        cfg.flows.idle_timeout_ns = 1_000_000_000;
        cfg.flows.closed_timeout_ns = 10_000_000;
        cfg.flows.max_time_jump_ns = 60_000_000_000;
        cfg.reassembly.max_ooo_bytes = 256;
        cfg.reassembly.max_ooo_segments = 3;
        cfg.reassembly.overlap_check_bytes = 64;
        cfg.kafka.max_frame_bytes = 256;
        cfg.kafka.oversized_peek_bytes = 32;
        cfg.kafka.max_pending = 3;
        cfg.kafka.resync_window = 64;
        cfg.kafka.pending_max_age_ns = 5_000_000;
        cfg.max_undecided_bytes = 128;
        cfg.limits.max_clients = 2;
        cfg.limits.max_partitions_per_client = 2;
        cfg.limits.max_groups = 2;
        cfg.limits.max_members_per_group = 2;
        cfg.limits.max_partitions = 4;
        cfg.limits.max_weak_producers = 2;
    }
    cfg
}

/// Runs one `engine_packets` input; returns the number of exchange lines written.
pub fn run(data: &[u8]) -> usize {
    run_lines(data, &mut |_| {})
}

/// [`run`], handing each checked JSON line to `each` (the smoke tests compare two runs byte for byte).
pub fn run_lines(data: &[u8], each: &mut dyn FnMut(&[u8])) -> usize {
    let Some((&flags, rest)) = data.split_first() else {
        return 0;
    };
    let mut exchanges = 0;
    let mut engine = kwire_engine::Engine::new(config(flags));
    let mut line = Vec::with_capacity(4096);
    let mut write = |o: Output| {
        line.clear();
        write_line(&mut line, &o).expect("every output serialises");
        check_line(&line);
        // The encoder's fast path for exchange lines writes what the `Serialize` impls write.
        let mut slow = serde_json::to_vec(&o).expect("every output serialises");
        slow.push(b'\n');
        assert!(
            line == slow,
            "write_line differs from serde:\n{}\n{}",
            String::from_utf8_lossy(&line),
            String::from_utf8_lossy(&slow)
        );
        each(&line);
        exchanges += usize::from(matches!(o, Output::Exchange(_)));
    };
    let mut ts: i64 = 1_700_000_000_000_000_000;
    for p in format::packets(rest) {
        ts = ts.saturating_add(p.dt_ns);
        let link = LinkType::from_dlt(format::LINKS[p.link]);
        engine.on_packet(Timestamp(ts), link, p.data, &mut write);
    }
    engine.finish(&mut write);
    exchanges
}

/// One JSON line: valid JSON, an object with a string `type`, one newline at the end and none inside.
fn check_line(line: &[u8]) {
    assert_eq!(line.last(), Some(&b'\n'), "a line ends with a newline");
    let body = &line[..line.len() - 1];
    assert!(!body.contains(&b'\n'), "one output, one line");
    let v: serde_json::Value = serde_json::from_slice(body).expect("valid JSON");
    assert!(
        v.get("type").is_some_and(|t| t.is_string()),
        "every output has a type: {v}"
    );
}
