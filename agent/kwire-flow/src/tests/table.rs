use std::net::{IpAddr, Ipv4Addr};

use crate::flow_key::FlowKey;
use crate::packet::Endpoint;
use crate::table::*;
use crate::time::Timestamp;

#[derive(Debug, PartialEq)]
struct F {
    id: u32,
    closed: bool,
}
impl FlowState for F {
    fn is_closed(&self) -> bool {
        self.closed
    }
}

fn key(n: u16) -> FlowKey {
    FlowKey::new(
        Endpoint::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 9092),
        Endpoint::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 40000 + n),
    )
    .0
}

const S: i64 = 1_000_000_000;

fn ins(t: &mut FlowTable<F>, n: u16, ts: i64, ev: &mut Vec<u32>) -> Result<u32, TableFull> {
    t.lookup_or_insert(
        &key(n),
        Timestamp(ts),
        || F {
            id: n as u32,
            closed: false,
        },
        |_, v| ev.push(v.id),
    )
    .map(|f| f.id)
}

#[test]
fn insert_lookup_cache_remove() {
    let mut t = FlowTable::<F>::default();
    let mut ev = Vec::new();
    assert_eq!(ins(&mut t, 1, 0, &mut ev), Ok(1));
    assert_eq!(ins(&mut t, 1, 1, &mut ev), Ok(1));
    assert_eq!(t.stats().cache_hits, 1);
    assert_eq!(ins(&mut t, 2, 2, &mut ev), Ok(2));
    assert_eq!(ins(&mut t, 1, 3, &mut ev), Ok(1));
    assert_eq!(t.len(), 2);
    assert_eq!(t.stats().inserted, 2);
    assert_eq!(
        t.remove(&key(1)),
        Some(F {
            id: 1,
            closed: false
        })
    );
    assert_eq!(t.remove(&key(1)), None);
    // the cache must not return the removed flow
    assert!(t.get_mut(&key(1), Timestamp(4)).is_none());
    assert_eq!(ins(&mut t, 3, 5, &mut ev), Ok(3));
    assert_eq!(t.get_mut(&key(2), Timestamp(5)).map(|f| f.id), Some(2));
    assert_eq!(t.len(), 2);
}

#[test]
fn expire_idle_and_closed_in_first_seen_order() {
    let mut t = FlowTable::<F>::default();
    let mut ev = Vec::new();
    for n in [5, 3, 9, 1] {
        ins(&mut t, n, 0, &mut ev).unwrap();
    }
    t.get_mut(&key(9), Timestamp(0)).unwrap().closed = true;
    let mut out = Vec::new();
    t.expire(Timestamp(4 * S), |_, v| out.push(v.id));
    assert_eq!(out, Vec::<u32>::new());
    t.expire(Timestamp(5 * S), |_, v| out.push(v.id));
    assert_eq!(out, vec![9]);
    // keep 1 alive
    ins(&mut t, 1, 200 * S, &mut ev).unwrap();
    t.expire(Timestamp(300 * S), |_, v| out.push(v.id));
    assert_eq!(out, vec![9, 5, 3]);
    assert_eq!(t.stats().expired, 3);
    let mut d = Vec::new();
    ins(&mut t, 7, 301 * S, &mut ev).unwrap();
    ins(&mut t, 4, 301 * S, &mut ev).unwrap();
    t.drain(|_, v| d.push(v.id));
    assert_eq!(d, vec![1, 7, 4]);
    assert!(t.is_empty());
}

#[test]
fn full_table_evicts_lru_idle_or_refuses() {
    let cfg = FlowTableConfig {
        max_flows: 3,
        ..FlowTableConfig::default()
    };
    let mut t = FlowTable::<F>::new(cfg);
    let mut ev = Vec::new();
    ins(&mut t, 1, 0, &mut ev).unwrap();
    ins(&mut t, 2, S, &mut ev).unwrap();
    ins(&mut t, 3, 2 * S, &mut ev).unwrap();
    ins(&mut t, 1, 3 * S, &mut ev).unwrap(); // 1 is now most recent; 2 is LRU
                                             // nothing idle for 10 s yet: refused
    assert_eq!(ins(&mut t, 4, 5 * S, &mut ev), Err(TableFull));
    assert_eq!(t.stats().refused_full, 1);
    // before 2 could have become idle, no rescan (still refused)
    assert_eq!(ins(&mut t, 4, 10 * S, &mut ev), Err(TableFull));
    assert_eq!(t.stats().refused_full, 2);
    // at 11 s flow 2 (last seen 1 s) is idle: evicted
    assert_eq!(ins(&mut t, 4, 11 * S, &mut ev), Ok(4));
    assert_eq!(ev, vec![2]);
    assert_eq!(t.stats().evicted_full, 1);
    // a closed flow is evicted first even if recent
    t.get_mut(&key(1), Timestamp(11 * S)).unwrap().closed = true;
    assert_eq!(ins(&mut t, 5, 11 * S, &mut ev), Ok(5));
    assert_eq!(ev, vec![2, 1]);
    assert_eq!(t.len(), 3);
}

/// Key of churn flow `n` (distinct client addresses, one broker).
fn churn_key(n: u32) -> FlowKey {
    FlowKey::new(
        Endpoint::new(
            IpAddr::V4(Ipv4Addr::new(10, (n >> 16) as u8, (n >> 8) as u8, n as u8)),
            40000,
        ),
        Endpoint::new(IpAddr::V4(Ipv4Addr::new(10, 255, 0, 1)), 9092),
    )
    .0
}

/// The churn recipe at 1/16 scale: a full 4,096-flow table, then waves of new one-packet flows
/// 11 s of packet time apart. Every new flow evicts exactly the least recently used flow of the previous
/// wave, in order, while a long-lived flow that keeps sending (the table's other slot) is never touched.
#[test]
fn churn_at_a_full_table_evicts_the_previous_wave_in_lru_order() {
    const N: u32 = 4096;
    // One slot is the long-lived flow's: a wave is the rest of the table.
    const W: u32 = N - 1;
    const WAVES: u32 = 6;
    let cfg = FlowTableConfig {
        max_flows: N as usize,
        ..FlowTableConfig::default()
    };
    let mut t = FlowTable::<F>::new(cfg);
    let live = churn_key(0xFF_FFFF);
    let mut evicted = Vec::new();
    for wave in 0..WAVES {
        let base = i64::from(wave) * 11 * S;
        for i in 0..W {
            let ts = Timestamp(base + i64::from(i) * 1_000);
            // The long-lived connection sends every 256 packets.
            if i % 256 == 0 {
                let r = t.lookup_or_insert(
                    &live,
                    ts,
                    || F {
                        id: u32::MAX,
                        closed: false,
                    },
                    |_, v| evicted.push(v.id),
                );
                assert_eq!(r.map(|f| f.id), Ok(u32::MAX));
            }
            let n = wave * W + i;
            let r = t.lookup_or_insert(
                &churn_key(n),
                ts,
                || F {
                    id: n,
                    closed: false,
                },
                |_, v| evicted.push(v.id),
            );
            assert_eq!(r.map(|f| f.id), Ok(n), "wave {wave} flow {i}");
        }
    }
    let s = t.stats().clone();
    assert_eq!(s.refused_full, 0);
    assert_eq!(s.inserted, u64::from(WAVES * W + 1));
    assert_eq!(s.evicted_full, u64::from((WAVES - 1) * W));
    // Wave w's flows are evicted by wave w + 1, oldest first; the live flow never.
    let expected: Vec<u32> = (0..(WAVES - 1) * W).collect();
    assert_eq!(evicted, expected);
    assert_eq!(t.len(), N as usize);
    assert_eq!(s.time_backwards + s.time_jumps, 0);
    // At the end, everything left goes in first-seen order: the live flow, then the last wave.
    let mut d = Vec::new();
    t.drain(|_, v| d.push(v.id));
    let last: Vec<u32> = std::iter::once(u32::MAX)
        .chain((WAVES - 1) * W..WAVES * W)
        .collect();
    assert_eq!(d, last);
}

/// Nothing idle enough and nothing closed: a burst of new flows is refused (counted) and never displaces
/// the table's flows; once one closes, it is the one evicted, whatever its age.
#[test]
fn burst_on_a_full_busy_table_is_refused_then_closed_flows_go_first() {
    let cfg = FlowTableConfig {
        max_flows: 64,
        ..FlowTableConfig::default()
    };
    let mut t = FlowTable::<F>::new(cfg);
    let mut ev = Vec::new();
    for n in 0..64 {
        ins(&mut t, n, i64::from(n) * 1_000_000, &mut ev).unwrap();
    }
    for n in 100..1100 {
        assert_eq!(ins(&mut t, n, 9 * S, &mut ev), Err(TableFull));
    }
    assert_eq!(t.stats().refused_full, 1000);
    assert!(ev.is_empty());
    // Flow 30 closes (recent or not, it goes first), then flow 0 (the LRU open flow) once idle.
    t.get_mut(&key(30), Timestamp(9 * S)).unwrap().closed = true;
    assert_eq!(ins(&mut t, 2000, 9 * S, &mut ev), Ok(2000));
    assert_eq!(ins(&mut t, 2001, 9 * S, &mut ev), Err(TableFull));
    assert_eq!(ins(&mut t, 2001, 10 * S, &mut ev), Ok(2001));
    assert_eq!(ev, vec![30, 0]);
}

/// Packet time going backwards never moves the table's clock back (flows are stamped with the clock,
/// counted); a jump years ahead is counted and taken only when the next packet confirms it.
#[test]
fn time_backwards_and_jumps_are_counted_and_clock_stays_monotonic() {
    let mut t = FlowTable::<F>::default();
    let mut ev = Vec::new();
    ins(&mut t, 1, 100 * S, &mut ev).unwrap();
    // 50 s earlier: handled as 100 s.
    ins(&mut t, 2, 50 * S, &mut ev).unwrap();
    assert_eq!(t.stats().time_backwards, 1);
    assert_eq!(t.now(), Some(Timestamp(100 * S)));
    // An expiry called with an earlier time expires nothing and keeps the clock.
    let mut out = Vec::new();
    t.expire(Timestamp(0), |_, v| out.push(v.id));
    assert!(out.is_empty());
    // Flow 2 counts as seen at 100 s: idle 299 s at 399 s, not expired; both go at 400 s.
    t.expire(Timestamp(399 * S), |_, v| out.push(v.id));
    assert!(out.is_empty());
    // One packet ten years ahead: counted, not taken; the sweep at that time expires nothing.
    let ten_years = 10 * 365 * 86_400 * S;
    ins(&mut t, 3, ten_years, &mut ev).unwrap();
    assert_eq!(t.stats().time_jumps, 1);
    assert_eq!(t.now(), Some(Timestamp(399 * S)));
    t.expire(Timestamp(ten_years), |_, v| out.push(v.id));
    assert!(out.is_empty());
    // Back to normal time: the clock goes on from there.
    ins(&mut t, 4, 399 * S + 1, &mut ev).unwrap();
    t.expire(Timestamp(400 * S), |_, v| out.push(v.id));
    assert_eq!(out, vec![1, 2]);
    assert_eq!(t.stats().time_backwards, 1);
    // Two packets in a row that far ahead: the capture's time really moved; the clock takes it.
    ins(&mut t, 5, ten_years, &mut ev).unwrap();
    ins(&mut t, 5, ten_years + 1, &mut ev).unwrap();
    assert_eq!(t.stats().time_jumps, 2);
    assert_eq!(t.now(), Some(Timestamp(ten_years + 1)));
    t.expire(Timestamp(ten_years + 2), |_, v| out.push(v.id));
    assert_eq!(out, vec![1, 2, 3, 4]);
    assert_eq!(t.len(), 1);
}
