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
