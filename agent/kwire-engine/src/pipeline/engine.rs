//! The engine: raw packets in, [`Output`]s out. Owns the flow table and, per connection, the TCP
//! reassembly and the Kafka state; turns Kafka events into exchange and notice records and counts
//! everything into the [`Summary`].
//!
//! TLS plaintext from a live uprobe source comes in through [`Engine::on_plaintext`]: it skips TCP
//! reassembly (the bytes are already in order, as the application wrote or read them) and feeds the
//! connection's Kafka stage directly; everything after it (analysis, alerts, export) is shared.
//!
//! Easy to get wrong: everything is driven by packet time (expiry sweeps included), and connections are
//! finished in first-seen order at the end so that the same capture gives the same output byte for byte.
//! A connection seen as TLS packets and as plaintext is analysed once, from the plaintext: its first
//! plaintext chunk restarts its application state (the TLS verdict goes), later packets only keep the
//! TCP state (FIN, RST, expiry) and are counted as covered. When both ends of one connection are local
//! and use OpenSSL (a client and a TLS proxy), the same bytes come from both: per direction, the end
//! seen first feeds it (the writer, whenever its library is probed: a write comes before the read of
//! the same bytes), the other end's chunks are counted and dropped. Not one end for both directions:
//! a client that closes without reading its last responses never reads them, its peer wrote them.

use std::collections::BTreeMap;
use std::sync::Arc;

use kwire_flow::{
    decode_tcp, Attribution, Budget, BudgetStats, Chunk, Endpoint, FlowKey, FlowState, FlowTable,
    LinkType, LocalEnd, Side, TcpConnection, Timestamp,
};
use kwire_kafka::body::{error_name, RequestBody};
use kwire_kafka::{api, Decoded, KafkaEvent, NoticeKind};

use crate::analysis::{Analyzer, Finding};
use crate::config::EngineConfig;
use crate::model::{ConnCtx, XRef, MAX_NAME_BYTES};
use crate::output::alert::Evidence;
use crate::output::{ExchangeRecord, Notice, NoticeRecord, Output};
use crate::pipeline::conn::{AppKind, AppState};
use crate::pipeline::stats::{ApiCount, ClientCount, ErrorCount, Summary};

/// How often (in packet time) idle flows are swept.
const SWEEP_INTERVAL_NS: i64 = 1_000_000_000;
/// Rows of the summary's per-client table (10,000); new client ids past it count under "(other)".
pub const MAX_SUMMARY_CLIENTS: usize = 10_000;
/// Rows of the summary's per-(API, version) table (1,024); past it "(other)".
pub const MAX_SUMMARY_APIS: usize = 1024;
/// Rows of the summary's error-code and acks tables (256 each); past it one row keyed i16::MIN.
pub const MAX_SUMMARY_SMALL: usize = 256;

/// `s` cut to [`MAX_NAME_BYTES`] at a character boundary.
fn cut_name(s: &str) -> &str {
    if s.len() <= MAX_NAME_BYTES {
        return s;
    }
    let mut end = MAX_NAME_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Distinct client ids remembered per connection (to count connections per client).
const MAX_CLIENT_IDS_PER_CONN: usize = 8;

pub struct ConnState {
    tcp: TcpConnection,
    app: AppState,
    client_ids: Vec<String>,
    /// The fleet rule's verdict, taken at the first Kafka event and kept (None: not yet taken).
    fleet: Option<bool>,
    /// Analysed from TLS plaintext ([`Engine::on_plaintext`]): per sending side (A, B), the side whose
    /// process feeds that direction, once seen. Its packets then only keep the TCP state.
    plain: Option<[Option<Side>; 2]>,
}

impl FlowState for ConnState {
    fn is_closed(&self) -> bool {
        // A connection analysed from plaintext ends by expiry, port reuse or the end of input, not
        // by its FIN: the live source holds plaintext back for reordering, so the last chunks of a
        // closing connection come after its FIN packets.
        self.plain.is_none() && self.tcp.is_closed()
    }
}

pub struct Engine {
    cfg: EngineConfig,
    analyzer: Analyzer,
    flows: FlowTable<ConnState>,
    next_conn_id: u64,
    summary: Summary,
    last_sweep: Option<Timestamp>,
    last_ts: Timestamp,
    first_ts: Option<Timestamp>,
    /// Number the next packet gets (as Wireshark numbers a file's packets, from 1); None: packets are
    /// not numbered (a live capture written to no file).
    next_frame: Option<u64>,
    /// Number of the packet being handled (0 = not numbered).
    frame: u64,
    /// Bytes buffered by all connections (`EngineConfig::memory_budget_bytes`).
    budget: Budget,
}

/// Everything an event handler needs besides the connection itself.
struct Sink<'a, F: FnMut(Output)> {
    summary: &'a mut Summary,
    analyzer: &'a mut Analyzer,
    notices: bool,
    exchange_facts: bool,
    out: &'a mut F,
}

impl<'a, F: FnMut(Output)> Sink<'a, F> {
    fn new(
        cfg: &EngineConfig,
        summary: &'a mut Summary,
        analyzer: &'a mut Analyzer,
        out: &'a mut F,
    ) -> Self {
        Sink {
            summary,
            analyzer,
            notices: cfg.notices,
            exchange_facts: cfg.exchange_facts,
            out,
        }
    }
}

impl Engine {
    pub fn new(cfg: EngineConfig) -> Self {
        let flows = FlowTable::new(cfg.flows);
        let cfg_budget = cfg.memory_budget_bytes;
        let analyzer = Analyzer::new(cfg.detectors.clone(), &cfg.limits, cfg.timeline)
            .with_suppressions(cfg.suppress.clone());
        Engine {
            cfg,
            analyzer,
            flows,
            next_conn_id: 1,
            summary: Summary::default(),
            last_sweep: None,
            last_ts: Timestamp(0),
            first_ts: None,
            next_frame: Some(1),
            frame: 0,
            budget: Budget::new(cfg_budget),
        }
    }

    /// The global memory budget: its bound, what is held now, its peak and what it refused.
    pub fn budget(&self) -> BudgetStats {
        self.budget.stats()
    }

    /// How packets are numbered from the next one on: `Some(n)` gives it number n and counts up from
    /// there (a replay of several files sets each packet's number in its own file; a live capture the
    /// number in its `--write-pcap` file), `None` numbers nothing. By default packets are numbered from 1
    /// in the order they come, as Wireshark numbers one file's packets.
    pub fn number_frames(&mut self, next: Option<u64>) {
        self.next_frame = next;
    }

    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Timestamp of the first packet seen (None before any).
    pub fn first_ts(&self) -> Option<Timestamp> {
        self.first_ts
    }

    /// Timestamp of the latest packet seen.
    pub fn last_ts(&self) -> Timestamp {
        self.last_ts
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// The counters so far including open connections' own (the summary adds a connection's TCP and
    /// Kafka counters only when it ends; a live agent's connections last for hours). For periodic
    /// metrics: costs one pass over the flow table.
    pub fn live_summary(&self) -> Summary {
        let mut s = self.summary.clone();
        for st in self.flows.values() {
            s.tcp.add(st.tcp.reassembler(Side::A).stats());
            s.tcp.add(st.tcp.reassembler(Side::B).stats());
            if let Some(k) = &st.app.kafka {
                s.kafka.add(&k.stats());
            }
        }
        s.alerts = self.analyzer.alert_counts.clone();
        s.incidents = self.analyzer.incidents.report();
        s.suppressed = self.analyzer.suppressions.report();
        s.flows.set_table(self.flows.stats());
        s.set_fidelity(&self.analyzer);
        s.set_memory(&self.budget.stats());
        s
    }

    /// Flows currently tracked.
    pub fn flows_tracked(&self) -> usize {
        self.flows.len()
    }

    /// One captured packet.
    pub fn on_packet(
        &mut self,
        ts: Timestamp,
        link: LinkType,
        data: &[u8],
        out: &mut impl FnMut(Output),
    ) {
        self.on_packet_owned(ts, link, data, None, out)
    }

    /// One captured packet whose local socket's owner a live source knows (eBPF cgroup hooks).
    pub fn on_packet_owned(
        &mut self,
        ts: Timestamp,
        link: LinkType,
        data: &[u8],
        owner: Option<(LocalEnd, &Arc<Attribution>)>,
        out: &mut impl FnMut(Output),
    ) {
        self.frame = match self.next_frame {
            Some(n) => {
                self.next_frame = Some(n + 1);
                n
            }
            None => 0,
        };
        self.summary.packets.packets += 1;
        self.summary.packets.bytes += data.len() as u64;
        if ts > self.last_ts {
            self.last_ts = ts;
        }
        self.first_ts.get_or_insert(ts);
        let seg = match decode_tcp(link, data) {
            Ok(s) => s,
            Err(e) => {
                self.summary.packets.count_error(&e);
                return;
            }
        };
        self.summary.packets.tcp_segments += 1;
        if seg.encap > 0 {
            self.summary.packets.decapsulated += 1;
        }
        if !self.cfg.ports.is_empty()
            && !self.cfg.ports.contains(&seg.src.port)
            && !self.cfg.ports.contains(&seg.dst.port)
        {
            self.summary.packets.filtered_by_port += 1;
            return;
        }
        self.maybe_sweep(ts, out);
        let (key, side) = FlowKey::from_segment(&seg);
        let Engine {
            cfg,
            flows,
            next_conn_id,
            summary,
            analyzer,
            frame,
            budget,
            ..
        } = self;
        let frame = *frame;
        let mut sink = Sink::new(cfg, summary, analyzer, out);

        // Port reuse: a new SYN on a known key ends the old connection first.
        if seg.flags.syn() {
            let reuse = flows
                .get_mut(&key, ts)
                .is_some_and(|st| st.tcp.is_port_reuse(side, &seg));
            if reuse {
                if let Some(old) = flows.remove(&key) {
                    sink.summary.flows.port_reuse += 1;
                    finish_conn(cfg, old, ts, frame, &mut sink);
                }
            }
        }
        let Some(st) = conn_state(
            flows,
            &key,
            Stamp { ts, frame },
            next_conn_id,
            budget,
            cfg,
            &mut sink,
        ) else {
            return;
        };
        if st.plain.is_some() {
            // Its plaintext is analysed: keep only the TCP state (FIN, RST), drop the TLS records.
            sink.summary.plaintext.tls_packets_covered += 1;
            st.tcp
                .on_segment(ts, side, &seg, &mut |_s: Side, _c: Chunk<'_>| {});
            return;
        }
        if st.app.ignores_packets() {
            st.app.ignored_bytes += seg.payload.len() as u64;
            return;
        }
        if seg.flags.syn() {
            st.app.on_syn(side, seg.flags.ack());
        }
        if let Some((end, who)) = owner {
            // The sender's socket on egress, the receiver's on ingress.
            let owner_side = match end {
                LocalEnd::Src => side,
                LocalEnd::Dst => side.other(),
            };
            st.app.set_owner(owner_side, who);
        }
        let ConnState {
            tcp,
            app,
            client_ids,
            fleet,
            ..
        } = st;
        tcp.on_segment(ts, side, &seg, &mut |s: Side, chunk: Chunk<'_>| {
            app.on_chunk(cfg, s, ts, frame, chunk, &mut |ctx, ev| {
                fleet_event(cfg, fleet, client_ids, ctx, ev, &mut sink)
            });
        });
    }

    /// Plaintext of a TLS connection, as the application at one end wrote or read it (a live uprobe
    /// source on OpenSSL): `data` went from `src` to `dst`, seen by the process owning the socket at
    /// `at` (`LocalEnd::Src` for a write, `LocalEnd::Dst` for a read), owned by `owner` when known. No
    /// reassembly: chunks of one direction must come in the order the application saw them. Not a
    /// packet: it gets no packet number and does not count in `packets`.
    #[allow(clippy::too_many_arguments)]
    pub fn on_plaintext(
        &mut self,
        ts: Timestamp,
        src: Endpoint,
        dst: Endpoint,
        at: LocalEnd,
        data: &[u8],
        owner: Option<&Arc<Attribution>>,
        out: &mut impl FnMut(Output),
    ) {
        self.frame = 0;
        self.summary.plaintext.chunks += 1;
        self.summary.plaintext.bytes += data.len() as u64;
        if ts > self.last_ts {
            self.last_ts = ts;
        }
        self.first_ts.get_or_insert(ts);
        if !self.cfg.ports.is_empty()
            && !self.cfg.ports.contains(&src.port)
            && !self.cfg.ports.contains(&dst.port)
        {
            self.summary.plaintext.filtered_by_port += 1;
            return;
        }
        self.maybe_sweep(ts, out);
        let (key, side) = FlowKey::new(src, dst);
        let at_side = match at {
            LocalEnd::Src => side,
            LocalEnd::Dst => side.other(),
        };
        let Engine {
            cfg,
            flows,
            next_conn_id,
            summary,
            analyzer,
            budget,
            ..
        } = self;
        let mut sink = Sink::new(cfg, summary, analyzer, out);
        let Some(st) = conn_state(
            flows,
            &key,
            Stamp { ts, frame: 0 },
            next_conn_id,
            budget,
            cfg,
            &mut sink,
        ) else {
            return;
        };
        let ends = match &mut st.plain {
            None if st.app.kind == AppKind::Kafka => {
                // Plain Kafka in its packets already (a uprobe on a library this connection does not
                // use for it): the packets stay the source.
                sink.summary.plaintext.on_plain_kafka += 1;
                return;
            }
            None => {
                // From now on the plaintext is the source: the TLS verdict and held bytes go.
                st.app = AppState::new(st.app.id, key).with_budget(budget);
                sink.summary.plaintext.connections += 1;
                st.plain.insert([None, None])
            }
            Some(ends) => ends,
        };
        match ends[side as usize] {
            None => ends[side as usize] = Some(at_side),
            Some(s) if s != at_side => {
                sink.summary.plaintext.other_end_chunks += 1;
                return;
            }
            Some(_) => {}
        }
        if let Some(who) = owner {
            st.app.set_owner(at_side, who);
        }
        let ConnState {
            app,
            client_ids,
            fleet,
            ..
        } = st;
        app.on_chunk(cfg, side, ts, 0, Chunk::Data(data), &mut |ctx, ev| {
            fleet_event(cfg, fleet, client_ids, ctx, ev, &mut sink)
        });
    }

    fn maybe_sweep(&mut self, ts: Timestamp, out: &mut impl FnMut(Output)) {
        // The flow table's clock: monotonic, and deaf to a lone timestamp years ahead.
        let ts = self.flows.clock(ts);
        match self.last_sweep {
            Some(last) if ts.nanos_since(last) < SWEEP_INTERVAL_NS => return,
            _ => {}
        }
        self.last_sweep = Some(ts);
        {
            let mut emit = |f: Finding| out(finding_output(f));
            self.analyzer.tick(ts, &mut emit);
        }
        let Engine {
            cfg,
            flows,
            summary,
            analyzer,
            frame,
            ..
        } = self;
        let frame = *frame;
        let mut sink = Sink::new(cfg, summary, analyzer, out);
        flows.expire(ts, |_k, st| {
            sink.summary.flows.expired += 1;
            finish_conn(cfg, st, ts, frame, &mut sink);
        });
    }

    /// End of input: every connection is flushed and finished, in first-seen order.
    pub fn finish(&mut self, out: &mut impl FnMut(Output)) {
        let ts = self.last_ts;
        let Engine {
            cfg,
            flows,
            summary,
            analyzer,
            frame,
            ..
        } = self;
        let frame = *frame;
        let mut sink = Sink::new(cfg, summary, analyzer, out);
        flows.drain(|_k, st| finish_conn(cfg, st, ts, frame, &mut sink));
        sink.summary.flows.set_table(flows.stats());
        let mut emit = |f: Finding| (sink.out)(finding_output(f));
        sink.analyzer.finish(&mut emit);
        sink.summary.alerts = sink.analyzer.alert_counts.clone();
        sink.summary.incidents = sink.analyzer.incidents.report();
        sink.summary.suppressed = sink.analyzer.suppressions.report();
        sink.summary.set_fidelity(sink.analyzer);
        sink.summary.set_memory(&self.budget.stats());
    }

    /// The analysis state (cluster, groups, timelines).
    pub fn analyzer(&self) -> &Analyzer {
        &self.analyzer
    }
}

/// When, and in which packet (0: not a packet), something reached the engine.
#[derive(Clone, Copy)]
struct Stamp {
    ts: Timestamp,
    frame: u64,
}

/// The state of `key`'s connection, made when new. A full table finishes its oldest connection first
/// (counted `evicted_full`) or refuses (counted `refused_table_full`: None).
fn conn_state<'t, F: FnMut(Output)>(
    flows: &'t mut FlowTable<ConnState>,
    key: &FlowKey,
    at: Stamp,
    next_conn_id: &mut u64,
    budget: &Budget,
    cfg: &EngineConfig,
    sink: &mut Sink<'_, F>,
) -> Option<&'t mut ConnState> {
    let Stamp { ts, frame } = at;
    let made = flows.lookup_or_insert(
        key,
        ts,
        || {
            let id = *next_conn_id;
            *next_conn_id += 1;
            ConnState {
                tcp: TcpConnection::new(*key, ts, cfg.reassembly).with_budget(budget),
                app: AppState::new(id, *key).with_budget(budget),
                client_ids: Vec::new(),
                fleet: None,
                plain: None,
            }
        },
        |_k, old| {
            sink.summary.flows.evicted_full += 1;
            finish_conn(cfg, old, ts, frame, sink)
        },
    );
    match made {
        Ok(st) => Some(st),
        Err(_) => {
            sink.summary.flows.refused_table_full += 1;
            None
        }
    }
}

/// One Kafka event of a connection, if the fleet rule gives the connection to this agent (the verdict
/// is taken at its first event and kept; a skipped connection is counted once).
fn fleet_event<F: FnMut(Output)>(
    cfg: &EngineConfig,
    fleet: &mut Option<bool>,
    client_ids: &mut Vec<String>,
    ctx: ConnCtx,
    ev: KafkaEvent,
    sink: &mut Sink<'_, F>,
) {
    let mine = *fleet.get_or_insert_with(|| {
        let v = cfg.fleet.verdict(&ctx).analyse();
        if !v {
            sink.summary.flows.fleet_skipped += 1;
        }
        v
    });
    if mine {
        on_event(client_ids, ctx, ev, sink)
    }
}

fn finish_conn<F: FnMut(Output)>(
    cfg: &EngineConfig,
    st: ConnState,
    ts: Timestamp,
    frame: u64,
    sink: &mut Sink<'_, F>,
) {
    let ConnState {
        mut tcp,
        mut app,
        mut client_ids,
        mut fleet,
        plain,
    } = st;
    if plain.is_some() {
        // TLS records of a connection analysed from its plaintext.
        tcp.flush(&mut |_s: Side, _c: Chunk<'_>| {});
    } else {
        tcp.flush(&mut |s: Side, chunk: Chunk<'_>| {
            app.on_chunk(cfg, s, ts, frame, chunk, &mut |ctx, ev| {
                fleet_event(cfg, &mut fleet, &mut client_ids, ctx, ev, sink)
            });
        });
    }
    app.close(cfg, ts, &mut |ctx, ev| {
        fleet_event(cfg, &mut fleet, &mut client_ids, ctx, ev, sink)
    });
    let s = &mut sink.summary;
    s.flows.tcp_connections += 1;
    match app.kind {
        AppKind::Kafka => s.flows.kafka += 1,
        AppKind::Tls => s.flows.tls += 1,
        AppKind::NotKafka | AppKind::Undecided => s.flows.not_kafka += 1,
    }
    s.flows.ignored_bytes += app.ignored_bytes;
    if app.kind == AppKind::Tls {
        s.tls.add_conn(app.tls.as_deref(), cfg.tls_keys.is_some());
    }
    if plain.is_none() && matches!(app.kind, AppKind::Kafka | AppKind::Undecided) {
        let (a, b) = (tcp.reassembler(Side::A), tcp.reassembler(Side::B));
        if (a.has_state() || b.has_state()) && a.isn().is_none() && b.isn().is_none() {
            s.fidelity.midstream_connections += 1;
        }
        let (da, db) = (a.stats().bytes_delivered, b.stats().bytes_delivered);
        if (da == 0) != (db == 0) {
            s.fidelity.one_direction_connections += 1;
        }
    }
    s.tcp.add(tcp.reassembler(Side::A).stats());
    s.tcp.add(tcp.reassembler(Side::B).stats());
    if let Some(k) = &app.kafka {
        s.kafka.add(&k.stats());
    }
}

/// The summary row of an API and version seen for the first time (bounded: hostile traffic can invent
/// any number of versions; past the bound, new keys go to one "(other)" row and are counted).
fn api_row<'a>(
    apis: &'a mut BTreeMap<(i16, i16), ApiCount>,
    overflow: &mut u64,
    mut key: (i16, i16),
) -> &'a mut ApiCount {
    if apis.len() >= MAX_SUMMARY_APIS {
        *overflow += 1;
        key = (i16::MIN, i16::MIN);
    }
    apis.entry(key).or_insert_with(|| ApiCount {
        api_key: key.0,
        api: if key.0 == i16::MIN {
            "(other)"
        } else {
            api::api_name(key.0)
        },
        api_version: key.1,
        ..ApiCount::default()
    })
}

/// The summary row of a client id seen for the first time (bounded like [`api_row`]: past
/// MAX_SUMMARY_CLIENTS new ids count under "(other)").
fn client_row<'a, 'c>(
    clients: &'a mut rustc_hash::FxHashMap<String, ClientCount>,
    overflow: &mut u64,
    cid: &'c str,
) -> (&'c str, &'a mut ClientCount) {
    let cid = if clients.len() >= MAX_SUMMARY_CLIENTS {
        *overflow += 1;
        "(other)"
    } else {
        cid
    };
    let c = clients
        .entry(cid.to_string())
        .or_insert_with(|| ClientCount {
            client_id: cid.to_string(),
            ..Default::default()
        });
    (cid, c)
}

fn on_event<F: FnMut(Output)>(
    client_ids: &mut Vec<String>,
    ctx: ConnCtx,
    ev: KafkaEvent,
    sink: &mut Sink<'_, F>,
) {
    let s = &mut *sink.summary;
    match ev {
        KafkaEvent::Exchange(e) => {
            // Bounded tables (hostile traffic can invent any number of API versions and client ids):
            // past the bound, new keys go to one "other" row and are counted.
            // One lookup for a known row (every exchange but the first of its kind).
            let api_key = (e.api_key, e.api_version);
            let a = match s.apis.get_mut(&api_key) {
                Some(a) => a,
                None => api_row(&mut s.apis, &mut s.overflow.apis, api_key),
            };
            a.requests += 1;
            if e.response.is_some() {
                a.responses += 1;
            }
            // Looked up by &str: a known client costs one lookup and no allocation. Ids are cut to
            // MAX_NAME_BYTES; past MAX_SUMMARY_CLIENTS new ids count under "(other)".
            let cid = cut_name(e.request.client_id.as_deref().unwrap_or_default());
            let (cid, c) = match s.clients.get_mut(cid) {
                Some(c) => (cid, c),
                None => client_row(&mut s.clients, &mut s.overflow.clients, cid),
            };
            c.exchanges += 1;
            if !client_ids.iter().any(|k| k == cid) && client_ids.len() < MAX_CLIENT_IDS_PER_CONN {
                c.connections += 1;
                client_ids.push(cid.to_string());
            }
            if let Decoded::Full(RequestBody::Produce(p)) = &e.request.body {
                // acks is -1, 0 or 1 on real clients; any other value counts under i16::MIN past the bound.
                let acks = if s.produce_acks.contains_key(&p.acks)
                    || s.produce_acks.len() < MAX_SUMMARY_SMALL
                {
                    p.acks
                } else {
                    s.overflow.produce_acks += 1;
                    i16::MIN
                };
                *s.produce_acks.entry(acks).or_insert(0) += 1;
            }
            let mut findings = Vec::new();
            sink.analyzer
                .on_exchange(&ctx, &e, &mut |f| findings.push(f));
            let facts = sink.exchange_facts.then(|| {
                let cid = sink.analyzer.cluster.cluster_id_of(&ctx.broker);
                let group = match (&e.request.body, e.request.client_id.as_deref()) {
                    (Decoded::Full(RequestBody::Fetch(_)), Some(client_id)) => sink
                        .analyzer
                        .groups
                        .group_of_client(ctx.client.ip, client_id),
                    _ => None,
                };
                Box::new(crate::analysis::facts::exchange_facts(
                    &e,
                    &sink.analyzer.cluster,
                    cid,
                    group,
                ))
            });
            let rec = ExchangeRecord {
                conn: ctx,
                exchange: e,
                facts,
            };
            for mut code in rec.failure_codes() {
                if !s.errors.contains_key(&code) && s.errors.len() >= MAX_SUMMARY_SMALL {
                    s.overflow.errors += 1;
                    code = i16::MIN;
                }
                s.errors
                    .entry(code)
                    .or_insert_with(|| ErrorCount {
                        error_code: code,
                        error: error_name(code),
                        count: 0,
                    })
                    .count += 1;
            }
            let key = (
                rec.conn.id,
                rec.exchange.correlation_id,
                rec.exchange.request_ts,
            );
            // Built only when something was found (most exchanges raise nothing).
            let trigger = (!findings.is_empty()).then(|| Evidence {
                role: "trigger",
                conn: rec.conn.id,
                broker: rec.conn.broker,
                xref: XRef::of(&rec.exchange),
                offset: None,
            });
            (sink.out)(Output::Exchange(rec));
            for mut f in findings {
                if let Finding::Alert(a) = &mut f {
                    a.exchange.get_or_insert(key);
                    if let Some(t) =
                        trigger.filter(|_| !a.evidence.iter().any(|e| e.role == "trigger"))
                    {
                        a.evidence.push(t);
                    }
                }
                (sink.out)(finding_output(f));
            }
        }
        KafkaEvent::RequestSent(r) => sink.analyzer.on_request_sent(&ctx, &r),
        KafkaEvent::Orphan {
            ts,
            correlation_id,
            bytes,
        } => {
            if sink.notices {
                let mut n = NoticeRecord::of(ts, Notice::Orphan).on_conn(&ctx);
                n.correlation_id = Some(correlation_id);
                n.bytes = Some(u64::from(bytes));
                (sink.out)(Output::Notice(n));
            }
        }
        KafkaEvent::Notice { ts, dir, kind } => {
            if !sink.notices {
                return;
            }
            let bytes = match kind {
                NoticeKind::Resync { skipped_bytes } => Some(skipped_bytes),
                NoticeKind::FrameDamaged { len }
                | NoticeKind::OversizedFrame { len }
                | NoticeKind::OverBudget { len } => Some(len),
                NoticeKind::FrameTruncated { have, .. } => Some(have),
                _ => None,
            };
            let mut n = NoticeRecord::of(ts, Notice::Stream(kind))
                .on_conn(&ctx)
                .dir(dir);
            n.bytes = bytes;
            (sink.out)(Output::Notice(n));
        }
    }
}

fn finding_output(f: Finding) -> Output {
    match f {
        Finding::Alert(a) => Output::Alert(Box::new(a)),
        Finding::Timeline(t) => Output::Timeline(Box::new(t)),
        Finding::Group(g) => Output::Group(Box::new(g)),
    }
}
