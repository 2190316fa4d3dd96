//! Hostile traffic through the whole core pipeline (`Engine::on_packet`): flow churn at a full table,
//! overlapping copies with different bytes, timestamps going backwards or years ahead, one-packet TCP
//! state hijacks (a blind RST, a stray SYN), and Kafka inside overlay networks (VXLAN, Geneve, IP-in-IP,
//! GRE). Every input is synthetic and built here (support's hand-written Ethernet/IPv4/TCP frames and
//! Kafka frames; the tunnel headers below, field by field). Each case asserts what is delivered (the
//! exchanges, with their correlation ids) and the counters; each has a quiet counterpart.
//!
//! Easy to get wrong: the summary's per-connection counters are only complete after `Engine::finish`;
//! the flow table's `max_flows` is made small here (4,096) so that churn stays cheap in a debug build.

mod support;

use kwire_engine::{Engine, EngineConfig, Output, Summary};
use kwire_flow::{LinkType, Timestamp};
use support::{tcp_frame, Ep, KafkaApi, Pair, ACK, FIN, PSH, RST, SYN};

const CLIENT: Ep = Ep::new(10, 0, 0, 2, 40000);
const BROKER: Ep = Ep::new(10, 0, 0, 1, 9092);
const CISN: u32 = 1000;
const BISN: u32 = 5000;
const T0: i64 = 1_700_000_000_000_000_000;
const SEC: i64 = 1_000_000_000;

/// One packet: when (ns after T0) and its Ethernet frame.
struct P {
    t: i64,
    frame: Vec<u8>,
}

fn pairs(n: usize) -> Vec<Pair> {
    (0..n)
        .map(|i| {
            Pair::new(
                KafkaApi::Metadata,
                100 + i as i32,
                "hostile-client",
                i as u32,
            )
        })
        .collect()
}

/// Handshake, then each request and its response in one segment each, with ACKs; packets 1 ms apart.
/// Returns the packets and, per pair, the index of the packet after its response (where to inject).
fn conversation(pairs: &[Pair]) -> (Vec<P>, Vec<usize>) {
    let mut v = Vec::new();
    let mut t = 0;
    let mut push = |v: &mut Vec<P>, frame: Vec<u8>| {
        v.push(P { t, frame });
        t += 1_000_000;
    };
    push(&mut v, tcp_frame(CLIENT, BROKER, CISN, 0, SYN, &[]));
    push(
        &mut v,
        tcp_frame(BROKER, CLIENT, BISN, CISN + 1, SYN | ACK, &[]),
    );
    push(
        &mut v,
        tcp_frame(CLIENT, BROKER, CISN + 1, BISN + 1, ACK, &[]),
    );
    let (mut c, mut b) = (CISN + 1, BISN + 1);
    let mut after = Vec::new();
    for p in pairs {
        push(
            &mut v,
            tcp_frame(CLIENT, BROKER, c, b, ACK | PSH, &p.request),
        );
        c += p.request.len() as u32;
        push(
            &mut v,
            tcp_frame(BROKER, CLIENT, b, c, ACK | PSH, &p.response),
        );
        b += p.response.len() as u32;
        push(&mut v, tcp_frame(CLIENT, BROKER, c, b, ACK, &[]));
        after.push(v.len());
    }
    (v, after)
}

/// Sequence numbers (client, broker) after pair `k` (0-based) of `pairs`.
fn seqs_after(pairs: &[Pair], k: usize) -> (u32, u32) {
    let c: usize = pairs[..=k].iter().map(|p| p.request.len()).sum();
    let b: usize = pairs[..=k].iter().map(|p| p.response.len()).sum();
    (CISN + 1 + c as u32, BISN + 1 + b as u32)
}

struct Run {
    /// (correlation id, answered) of every exchange, in output order.
    exchanges: Vec<(i32, bool)>,
    orphans: usize,
    summary: Summary,
}

fn run_with(cfg: EngineConfig, link: LinkType, packets: &[P]) -> Run {
    let mut engine = Engine::new(cfg);
    let mut outs = Vec::new();
    for p in packets {
        engine.on_packet(Timestamp(T0 + p.t), link, &p.frame, &mut |o| outs.push(o));
    }
    engine.finish(&mut |o| outs.push(o));
    let mut r = Run {
        exchanges: Vec::new(),
        orphans: 0,
        summary: engine.summary().clone(),
    };
    for o in outs {
        match o {
            Output::Exchange(e) => r
                .exchanges
                .push((e.exchange.correlation_id, e.exchange.response.is_some())),
            Output::Notice(n) if n.notice.name() == "orphan" => r.orphans += 1,
            _ => {}
        }
    }
    r
}

fn run(packets: &[P]) -> Run {
    run_with(EngineConfig::default(), LinkType::Ethernet, packets)
}

fn all_answered(n: usize) -> Vec<(i32, bool)> {
    (0..n).map(|i| (100 + i as i32, true)).collect()
}

// ---------------------------------------------------------------------------------------------------------
// 1. Flow churn at a full table
// ---------------------------------------------------------------------------------------------------------

/// A 4,096-flow table full of one-packet SYN-less flows, then waves of 4,095 new ones 11 s apart: each new
/// flow evicts one of the previous wave (idle > 10 s), none is refused, and the Kafka connection that keeps
/// talking through it all is never evicted: every exchange is found.
#[test]
fn churn_at_a_full_table_evicts_idle_flows_and_spares_the_live_connection() {
    const N: usize = 4096;
    const W: u32 = N as u32 - 1;
    const WAVES: u32 = 4;
    let mut cfg = EngineConfig::default();
    cfg.flows.max_flows = N;
    let ps = pairs(WAVES as usize * 2);
    let (conv, after) = conversation(&ps);
    let mut packets = Vec::new();
    let mut next = 0;
    for wave in 0..WAVES {
        let base = i64::from(wave) * 11 * SEC;
        // Two pairs of the live conversation at the start of each wave, then the wave.
        let end = after[wave as usize * 2 + 1];
        for p in &conv[next..end] {
            packets.push(P {
                t: base + p.t - conv[next].t,
                frame: p.frame.clone(),
            });
        }
        next = end;
        for i in 0..W {
            let n = wave * W + i;
            let src = Ep::new(10, 1 + (n >> 16) as u8, (n >> 8) as u8, n as u8, 50000);
            packets.push(P {
                t: base + 100_000_000 + i64::from(i) * 1_000,
                frame: tcp_frame(src, BROKER, 7, 7, ACK | PSH, b"not-kafka-bytes!"),
            });
        }
    }
    let r = run_with(cfg, LinkType::Ethernet, &packets);
    assert_eq!(r.exchanges, all_answered(ps.len()));
    assert_eq!(r.orphans, 0);
    let f = &r.summary.flows;
    assert_eq!(f.refused_table_full, 0);
    assert_eq!(f.evicted_full, u64::from((WAVES - 1) * W));
    assert_eq!(f.expired, 0);
    // Every flow ended once: evicted, or at the end of input.
    assert_eq!(f.tcp_connections, u64::from(WAVES * W) + 1);
    assert_eq!(f.kafka, 1);
    assert_eq!(f.time_backwards + f.time_jumps, 0);
}

// ---------------------------------------------------------------------------------------------------------
// 4b. Overlapping copies with different bytes
// ---------------------------------------------------------------------------------------------------------

/// A garbage copy of the second request arrives first: it is what the stream carries (first copy wins),
/// and the real request that follows differs in every byte of the overlap: counted.
#[test]
fn garbage_copy_first_is_counted_as_overlap_with_different_data() {
    let ps = pairs(3);
    let (mut conv, after) = conversation(&ps);
    let (c, b) = seqs_after(&ps, 0);
    let real = &ps[1].request;
    let garbage: Vec<u8> = real.iter().map(|x| !x).collect();
    conv.insert(
        after[0],
        P {
            t: conv[after[0]].t - 500_000,
            frame: tcp_frame(CLIENT, BROKER, c, b, ACK | PSH, &garbage),
        },
    );
    let r = run(&conv);
    let t = &r.summary.tcp;
    assert_eq!(t.overlap_mismatch_bytes, real.len() as u64);
    assert_eq!(t.overlap_mismatch_segments, 1);
    assert_eq!(t.retransmitted_bytes, real.len() as u64);
    // The garbage took request 101's place: its response is an orphan, the others are intact.
    assert_eq!(r.exchanges, vec![(100, true), (102, true)]);
    assert_eq!(r.orphans, 1);
}

/// The quiet case: an identical retransmission of the same request.
#[test]
fn identical_retransmission_is_not_a_mismatch() {
    let ps = pairs(3);
    let (mut conv, after) = conversation(&ps);
    let dup = P {
        t: conv[after[1] - 1].t + 1,
        frame: conv[after[1] - 3].frame.clone(),
    };
    conv.insert(after[1], dup);
    let r = run(&conv);
    assert_eq!(r.exchanges, all_answered(3));
    assert_eq!(
        r.summary.tcp.retransmitted_bytes,
        ps[1].request.len() as u64
    );
    assert_eq!(r.summary.tcp.overlap_mismatch_bytes, 0);
    assert_eq!(r.summary.tcp.overlap_mismatch_segments, 0);
}

// ---------------------------------------------------------------------------------------------------------
// 4c. Packet time going backwards or years ahead
// ---------------------------------------------------------------------------------------------------------

/// One response stamped ten years ahead, one request stamped a minute in the past: counted; the
/// connection is not expired by the jump (one connection, every exchange answered), expiry keeps
/// working on the real time line.
#[test]
fn timestamps_backwards_and_years_ahead_are_counted_and_change_nothing() {
    let ps = pairs(4);
    let (mut conv, after) = conversation(&ps);
    // The response of pair 1 (the packet before the ACK that follows it).
    let i = after[1] - 2;
    conv[i].t += 10 * 365 * 86_400 * SEC;
    // The request of pair 3, a minute early.
    let j = after[3] - 3;
    conv[j].t -= 60 * SEC;
    // And a second connection that idles out for real, 400 s later.
    let other = Ep::new(10, 0, 0, 3, 40001);
    let last = conv.last().map_or(0, |p| p.t);
    conv.push(P {
        t: last + SEC,
        frame: tcp_frame(other, BROKER, 1, 1, ACK, &[]),
    });
    conv.push(P {
        t: last + 401 * SEC,
        frame: tcp_frame(other, BROKER, 1, 1, ACK, &[]),
    });
    let r = run(&conv);
    assert_eq!(r.exchanges, all_answered(4));
    assert_eq!(r.orphans, 0);
    let f = &r.summary.flows;
    assert_eq!(f.time_jumps, 1);
    assert_eq!(f.time_backwards, 1);
    // The Kafka connection idled out at last + 301 s (not at the jump); the other one twice: at
    // last + 301 s too, and its second packet starts a new flow that ends with the input.
    assert_eq!(f.expired, 2);
    assert_eq!(f.tcp_connections, 3);
    assert_eq!(f.kafka, 1);
}

/// The quiet case: monotonic time counts nothing.
#[test]
fn monotonic_time_counts_no_time_anomaly() {
    let ps = pairs(2);
    let (conv, _) = conversation(&ps);
    let r = run(&conv);
    assert_eq!(r.exchanges, all_answered(2));
    assert_eq!(
        r.summary.flows.time_jumps + r.summary.flows.time_backwards,
        0
    );
}

// ---------------------------------------------------------------------------------------------------------
// 5. TCP state hijacked by one packet
// ---------------------------------------------------------------------------------------------------------

/// A blind RST (sequence number half the space away) and a stray SYN with a new ISN in the middle of a
/// live connection: both ignored and counted; every exchange is found, no orphan.
#[test]
fn blind_rst_and_stray_syn_do_not_end_a_connection() {
    let ps = pairs(5);
    let (mut conv, after) = conversation(&ps);
    let (_, b) = seqs_after(&ps, 1);
    let t = conv[after[1] - 1].t;
    conv.insert(
        after[1],
        P {
            t: t + 1,
            frame: tcp_frame(BROKER, CLIENT, b.wrapping_add(1 << 31), 0, RST, &[]),
        },
    );
    conv.insert(
        after[1] + 1,
        P {
            t: t + 2,
            frame: tcp_frame(CLIENT, BROKER, 0xDEAD_BEEF, 0, SYN, &[]),
        },
    );
    let r = run(&conv);
    assert_eq!(r.exchanges, all_answered(5));
    assert_eq!(r.orphans, 0);
    let s = &r.summary;
    assert_eq!(s.tcp.rst_ignored, 1);
    assert_eq!(s.tcp.syn_ignored, 1);
    assert_eq!(s.tcp.resyncs, 0);
    assert_eq!(s.flows.port_reuse, 0);
    assert_eq!(s.flows.tcp_connections, 1);
}

/// The quiet case: an RST at the broker's next sequence number is honoured: the broker's direction ends
/// there (its later responses are after-close bytes, never decoded), nothing is counted as ignored.
#[test]
fn rst_at_the_next_sequence_number_ends_the_connection() {
    let ps = pairs(4);
    let (mut conv, after) = conversation(&ps);
    let (_, b) = seqs_after(&ps, 1);
    let t = conv[after[1] - 1].t;
    conv.insert(
        after[1],
        P {
            t: t + 1,
            frame: tcp_frame(BROKER, CLIENT, b, 0, RST, &[]),
        },
    );
    let r = run(&conv);
    assert_eq!(
        r.exchanges,
        vec![(100, true), (101, true), (102, false), (103, false)]
    );
    let s = &r.summary;
    assert_eq!(s.tcp.rst_ignored, 0);
    assert_eq!(s.tcp.syn_ignored, 0);
    assert_eq!(
        s.tcp.after_close_bytes,
        (ps[2].response.len() + ps[3].response.len()) as u64
    );
}

// ---------------------------------------------------------------------------------------------------------
// 7. Overlays
// ---------------------------------------------------------------------------------------------------------

/// Ethernet II with `ether_type`, then `payload`.
fn eth(ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x0B, 0x02, 0, 0, 0, 0, 0x0A]; // dst MAC, src MAC
    f.extend_from_slice(&ether_type.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// IPv4 between two nodes (192.168.0.1 → .2) carrying `proto` (checksum 0: not verified).
fn ipv4(proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x45, 0]; // version 4 IHL 5, DSCP
    f.extend_from_slice(&((20 + payload.len()) as u16).to_be_bytes()); // total length
    f.extend_from_slice(&[0, 0, 0x40, 0]); // identification, DF
    f.extend_from_slice(&[64, proto, 0, 0]); // TTL, protocol, checksum
    f.extend_from_slice(&[192, 168, 0, 1, 192, 168, 0, 2]); // addresses
    f.extend_from_slice(payload);
    f
}

/// IPv6 between two nodes carrying `next`.
fn ipv6(next: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x60, 0, 0, 0]; // version 6, traffic class, flow label
    f.extend_from_slice(&(payload.len() as u16).to_be_bytes()); // payload length
    f.extend_from_slice(&[next, 64]); // next header, hop limit
    f.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    f.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    f.extend_from_slice(payload);
    f
}

/// UDP (source port 51000, checksum 0) to `port`.
fn udp(port: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = 51000u16.to_be_bytes().to_vec();
    f.extend_from_slice(&port.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

/// The inner frame without its Ethernet header (and padding: the IPv4 total length says where it ends).
fn ip_of(frame: &[u8]) -> &[u8] {
    let len = usize::from(u16::from_be_bytes([frame[16], frame[17]]));
    &frame[14..14 + len]
}

type Wrap = fn(&[u8]) -> Vec<u8>;

#[test]
fn kafka_inside_overlays_is_decoded() {
    let wraps: [(&str, Wrap); 7] = [
        ("vxlan 4789", |f| {
            let mut v = vec![0x08, 0, 0, 0, 0, 0x10, 0, 0]; // flags I, VNI 4096
            v.extend_from_slice(f);
            eth(0x0800, &ipv4(17, &udp(4789, &v)))
        }),
        ("vxlan 8472 (flannel) over ipv6", |f| {
            let mut v = vec![0x08, 0, 0, 0, 0, 0, 1, 0]; // flags I, VNI 1
            v.extend_from_slice(f);
            eth(0x86DD, &ipv6(17, &udp(8472, &v)))
        }),
        ("geneve with an option", |f| {
            // ver 0 opt len 1 word, protocol 0x6558, VNI 9; option class 0x0102 type 1 len 0.
            let mut v = vec![0x01, 0, 0x65, 0x58, 0, 0, 9, 0, 0x01, 0x02, 0x01, 0x00];
            v.extend_from_slice(f);
            eth(0x0800, &ipv4(17, &udp(6081, &v)))
        }),
        ("ipip (4)", |f| eth(0x0800, &ipv4(4, ip_of(f)))),
        ("ipv4 in ipv6 (4)", |f| eth(0x86DD, &ipv6(4, ip_of(f)))),
        ("gre ethernet with key", |f| {
            let mut v = vec![0x20, 0x00, 0x65, 0x58, 0, 0, 0, 42]; // K, transparent bridging, key 42
            v.extend_from_slice(f);
            eth(0x0800, &ipv4(47, &v))
        }),
        ("gre ip", |f| {
            let mut v = vec![0x00, 0x00, 0x08, 0x00]; // no flags, IPv4
            v.extend_from_slice(ip_of(f));
            eth(0x0800, &ipv4(47, &v))
        }),
    ];
    let ps = pairs(3);
    let (conv, _) = conversation(&ps);
    for (name, wrap) in wraps {
        let wrapped: Vec<P> = conv
            .iter()
            .map(|p| P {
                t: p.t,
                frame: wrap(&p.frame),
            })
            .collect();
        let r = run(&wrapped);
        assert_eq!(r.exchanges, all_answered(3), "{name}");
        let p = &r.summary.packets;
        assert_eq!(p.decapsulated, conv.len() as u64, "{name}");
        assert_eq!(p.tcp_segments, conv.len() as u64, "{name}");
        assert_eq!(p.not_tcp + p.tunnel_too_deep, 0, "{name}");
    }
    // Plain: nothing decapsulated.
    let r = run(&conv);
    assert_eq!(r.exchanges, all_answered(3));
    assert_eq!(r.summary.packets.decapsulated, 0);
}

/// Three tunnels deep (IP-in-IP around GRE around VXLAN): refused and counted, nothing decoded.
#[test]
fn tunnels_three_deep_are_counted_not_decoded() {
    let ps = pairs(1);
    let (conv, _) = conversation(&ps);
    let deep: Vec<P> = conv
        .iter()
        .map(|p| {
            let mut v = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
            v.extend_from_slice(&p.frame);
            let vx = eth(0x0800, &ipv4(17, &udp(4789, &v)));
            let mut g = vec![0x00, 0x00, 0x65, 0x58];
            g.extend_from_slice(&vx);
            P {
                t: p.t,
                frame: eth(0x0800, &ipv4(4, &ipv4(47, &g))),
            }
        })
        .collect();
    let r = run(&deep);
    assert!(r.exchanges.is_empty());
    assert_eq!(r.summary.packets.tunnel_too_deep, conv.len() as u64);
    assert_eq!(r.summary.packets.tcp_segments, 0);
}

// ---------------------------------------------------------------------------------------------------------
// 2. Bounded summary tables
// ---------------------------------------------------------------------------------------------------------

/// One connection whose 10,050 requests each carry a unique 1 KB client id: the summary keeps at most
/// MAX_SUMMARY_CLIENTS rows of its own plus one "(other)" row, counts the 50 folded ids, cuts every id
/// to 256 bytes, and still counts every exchange.
#[test]
fn unique_client_ids_fold_into_other_past_the_bound() {
    use kwire_engine::engine::MAX_SUMMARY_CLIENTS;
    let n = MAX_SUMMARY_CLIENTS + 50;
    let ps: Vec<Pair> = (0..n)
        .map(|i| {
            let id = format!("{i:06}-{}", "x".repeat(1024));
            Pair::new(KafkaApi::Metadata, 100 + i as i32, &id, i as u32)
        })
        .collect();
    let (packets, _) = conversation(&ps);
    let r = run(&packets);
    assert_eq!(r.exchanges.len(), n);
    let s = &r.summary;
    assert_eq!(s.clients.len(), MAX_SUMMARY_CLIENTS + 1);
    assert_eq!(s.overflow.clients, 50);
    let other = &s.clients["(other)"];
    assert_eq!(other.exchanges, 50);
    assert!(s.clients.keys().all(|k| k.len() <= 256));
    assert_eq!(
        s.clients.values().map(|c| c.exchanges).sum::<u64>(),
        n as u64
    );
}

/// The quiet case: a handful of clients, nothing folded.
#[test]
fn few_client_ids_have_their_own_rows() {
    let (packets, _) = conversation(&pairs(5));
    let r = run(&packets);
    assert_eq!(r.summary.clients.len(), 1);
    assert_eq!(r.summary.overflow.clients, 0);
    assert_eq!(r.summary.overflow.apis, 0);
}

// ---------------------------------------------------------------------------------------------------------
// 4a. A frame cut by the end of its connection
// ---------------------------------------------------------------------------------------------------------

/// A request whose length prefix claims 100 MB, then 4 KiB of it, then FIN: the partial frame is counted
/// and told (`frame_truncated`, with the bytes that arrived and the bytes missing), never silently gone.
#[test]
fn a_frame_cut_by_the_connection_end_is_counted_and_told() {
    let ps = pairs(2);
    let (mut packets, _) = conversation(&ps);
    let (c, b) = seqs_after(&ps, 1);
    let mut big = (100_000_000u32 - 4).to_be_bytes().to_vec();
    big.extend_from_slice(&ps[0].request[4..]); // a plausible header
    big.resize(4096, 0x41);
    let t = packets.last().unwrap().t;
    packets.push(P {
        t: t + 1_000_000,
        frame: tcp_frame(CLIENT, BROKER, c, b, ACK | PSH, &big),
    });
    packets.push(P {
        t: t + 2_000_000,
        frame: tcp_frame(CLIENT, BROKER, c + big.len() as u32, b, ACK | FIN, &[]),
    });
    let mut engine = Engine::new(EngineConfig::default());
    let mut notices = Vec::new();
    for p in &packets {
        engine.on_packet(
            Timestamp(T0 + p.t),
            LinkType::Ethernet,
            &p.frame,
            &mut |o| {
                if let Output::Notice(n) = o {
                    notices.push(n)
                }
            },
        );
    }
    engine.finish(&mut |o| {
        if let Output::Notice(n) = o {
            notices.push(n)
        }
    });
    assert_eq!(engine.summary().kafka.truncated_frames, 1);
    let cut: Vec<_> = notices
        .iter()
        .filter(|n| n.notice.name() == "frame_truncated")
        .collect();
    assert_eq!(cut.len(), 1, "{notices:?}");
    assert_eq!(cut[0].bytes, Some(4096));
    // The quiet case: the two whole exchanges before it lose nothing.
    let (packets, _) = conversation(&ps);
    assert_eq!(run(&packets).summary.kafka.truncated_frames, 0);
}

// ---------------------------------------------------------------------------------------------------------
// 6. One memory budget for every connection
// ---------------------------------------------------------------------------------------------------------

/// `n` connections (handshake each) whose client sends the header of a Metadata request claiming
/// `claimed` bytes, then `chunks` segments of 16 KiB of its body, the connections interleaved segment by
/// segment; nothing ever completes. Returns the packets.
fn half_frames(n: u16, claimed: u32, chunks: usize) -> Vec<P> {
    let mut v = Vec::new();
    let mut t = 0;
    let mut seqs = Vec::new();
    for i in 0..n {
        let client = Ep::new(10, 0, 9, 1, 41000 + i);
        v.push(P {
            t,
            frame: tcp_frame(client, BROKER, CISN, 0, SYN, &[]),
        });
        v.push(P {
            t: t + 1000,
            frame: tcp_frame(BROKER, client, BISN, CISN + 1, SYN | ACK, &[]),
        });
        t += 1_000_000;
        let mut head = (claimed - 4).to_be_bytes().to_vec();
        head.extend_from_slice(&[0, 3, 0, 1, 0, 0, 0, 7, 0, 1, b'h']); // Metadata v1, corr 7, "h"
        v.push(P {
            t,
            frame: tcp_frame(client, BROKER, CISN + 1, BISN + 1, ACK | PSH, &head),
        });
        seqs.push((client, CISN + 1 + head.len() as u32));
    }
    let body = vec![0x41u8; 16 * 1024];
    for _ in 0..chunks {
        for (client, seq) in seqs.iter_mut() {
            t += 100_000;
            v.push(P {
                t,
                frame: tcp_frame(*client, BROKER, *seq, BISN + 1, ACK, &body),
            });
            *seq += body.len() as u32;
        }
    }
    v
}

/// 40 connections each gathering a 15.9 MB frame (the recipe, with 512 KiB of each sent here):
/// with a 16 MiB budget one frame is admitted (its whole size reserved), the other 39 are decoded by
/// header only, each counted and told (`over_budget`); what was buffered never passed the budget.
#[test]
fn forty_half_frames_stay_within_the_global_budget() {
    let cfg = EngineConfig {
        memory_budget_bytes: 16 << 20,
        ..EngineConfig::default()
    };
    let packets = half_frames(40, 15_900_000, 32);
    let mut engine = Engine::new(cfg);
    let mut over = 0;
    let mut peak_seen = 0;
    for p in &packets {
        engine.on_packet(
            Timestamp(T0 + p.t),
            LinkType::Ethernet,
            &p.frame,
            &mut |o| {
                if let Output::Notice(n) = o {
                    if n.notice.name() == "over_budget" {
                        over += 1;
                    }
                }
            },
        );
        peak_seen = peak_seen.max(engine.budget().used);
    }
    engine.finish(&mut |_| {});
    let b = engine.budget();
    assert_eq!(over, 39);
    assert_eq!((b.denied, b.limit), (39, 16 << 20));
    assert!(b.peak <= 16 << 20, "peak {}", b.peak);
    assert!(
        peak_seen >= 15_900_000,
        "the admitted frame was reserved whole"
    );
    assert_eq!(b.used, 0, "everything given back at the end");
    let s = engine.summary();
    assert_eq!(s.kafka.budget_cut_frames, 39);
    assert_eq!(s.memory.denied, 39);
    assert!(s.fidelity.reasons().contains(&"memory_budget"));
    // The one admitted frame is cut by the end of input: counted and told as such.
    assert_eq!(s.kafka.truncated_frames, 1);
}

/// The quiet case: the same half frames on one connection, or small frames on many, never bite.
#[test]
fn frames_within_the_budget_are_gathered_whole() {
    let cfg = EngineConfig {
        memory_budget_bytes: 16 << 20,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(cfg);
    for p in &half_frames(1, 15_900_000, 32) {
        engine.on_packet(
            Timestamp(T0 + p.t),
            LinkType::Ethernet,
            &p.frame,
            &mut |_| {},
        );
    }
    engine.finish(&mut |_| {});
    assert_eq!(engine.budget().denied, 0);
    assert_eq!(engine.summary().kafka.budget_cut_frames, 0);
    assert!(!engine
        .summary()
        .fidelity
        .reasons()
        .contains(&"memory_budget"));
    // Many connections with frames split across segments, each small: nothing refused.
    let (packets, _) = conversation(&pairs(200));
    let r = run(&packets);
    assert_eq!(r.summary.memory.denied, 0);
    assert_eq!(r.exchanges, all_answered(200));
}

/// Out-of-order bytes count too: many connections each holding a hole in front of buffered bytes stop
/// growing at the budget (the earliest hole is given up, as the per-connection bound does).
#[test]
fn out_of_order_bytes_count_against_the_budget() {
    let cfg = EngineConfig {
        memory_budget_bytes: 1 << 20,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(cfg);
    let body = vec![0x42u8; 8 * 1024];
    let mut t = 0;
    for i in 0..64u16 {
        let client = Ep::new(10, 0, 8, 1, 42000 + i);
        let mut push = |engine: &mut Engine, frame: Vec<u8>| {
            t += 1000;
            engine.on_packet(Timestamp(T0 + t), LinkType::Ethernet, &frame, &mut |_| {});
        };
        push(&mut engine, tcp_frame(client, BROKER, CISN, 0, SYN, &[]));
        push(
            &mut engine,
            tcp_frame(BROKER, client, BISN, CISN + 1, SYN | ACK, &[]),
        );
        // A 1-byte hole at the start, then 4 x 8 KiB out of order (32 KiB per connection, 2 MiB in all).
        for k in 0..4u32 {
            let seq = CISN + 2 + k * body.len() as u32;
            push(
                &mut engine,
                tcp_frame(client, BROKER, seq, BISN + 1, ACK, &body),
            );
        }
        assert!(
            engine.budget().used <= 1 << 20,
            "conn {i}: {:?} {:?}",
            engine.budget(),
            engine.summary().tcp
        );
    }
    let b = engine.budget();
    assert!(b.denied > 0 && b.peak <= 1 << 20, "{b:?}");
    engine.finish(&mut |_| {});
    assert!(engine.summary().tcp.ooo_dropped_bytes > 0);
    assert_eq!(engine.budget().used, 0);
}
