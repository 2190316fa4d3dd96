//! Application state of one TCP connection: who is the client, whether it carries Kafka, and its
//! [`KafkaConnection`]. Chunks of reassembled bytes come in tagged with the side that sent them.
//!
//! Roles are decided, in order of trust: the SYN (whoever sent it is the client), `--ports` (the endpoint on
//! a configured port is the broker), the Kafka request probe (whoever sends a plausible request header is
//! the client). Until one of these speaks, chunks are held (bounded); a connection that never shows a
//! Kafka request within `max_undecided_bytes` is judged not Kafka. After a SYN, the client's first bytes
//! decide alone: a plausible request header (any API key and version toward a broker port) makes the
//! connection Kafka, anything else (HTTP, SSH, Redis, random bytes) makes it "other", with no Kafka notice.
//!
//! Easy to get wrong: the held chunks must be replayed in arrival order once roles are known, and a gap
//! seen while undecided must be replayed too (it tells the Kafka layer its framing is unknown). The probe
//! judges the first bytes of a side, held bytes included (a header may come in 1-byte segments); a later
//! segment can reveal a request start but never "TLS" or "text" (it may begin with any byte of a frame). A
//! response with a small correlation id reads as a Produce request header: the side on a well-known Kafka
//! port is never taken for the client on the probe's word.
//!
//! TLS: a connection whose client opens with a TLS record is TLS. With a key log
//! (`EngineConfig::tls_keys`) its records go through a [`kwire_tls::TlsStream`] and the decrypted
//! application data of each direction is fed to the Kafka layer exactly as reassembled plaintext is
//! (a record that could not be opened is a gap there); without one, it is counted and its bytes
//! ignored. Easy to get wrong: the chunk that made the connection TLS, and the server's bytes held
//! before it, must reach the TLS stream too, in arrival order; frames decoded from a record carry the
//! number of the packet that completed the record.

use std::sync::Arc;

use kwire_flow::{Attribution, Budget, Charge, Chunk, Direction, FlowKey, Side, Timestamp};
use kwire_kafka::parse::Parse;
use kwire_kafka::probe::{self, Guess};
use kwire_kafka::{KafkaConnection, KafkaEvent, StreamStart};
use kwire_tls::{Plain, Sender, TlsStream};

use crate::config::EngineConfig;
use crate::model::ConnCtx;

/// Ports Kafka brokers commonly listen on (used only as a last resort to tell the broker side).
const KAFKA_PORTS: [u16; 6] = [9092, 9093, 9094, 9095, 19092, 29092];
/// Bytes of a side's first held data a probe looks at (a request header with a 16-byte client id needs 26).
const HEAD_BYTES: usize = 64;
/// Start of the ephemeral port range on Linux (net.ipv4.ip_local_port_range default).
const EPHEMERAL_START: u16 = 32768;

fn is_kafka_port(p: u16) -> bool {
    KAFKA_PORTS.contains(&p)
}

/// What a connection turned out to carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppKind {
    Undecided,
    Kafka,
    Tls,
    NotKafka,
}

enum Held {
    Data(Vec<u8>),
    Gap(u64),
}

/// The context of a connection whose client is on side `c` (the community ID computed at the first call).
fn make_ctx(
    id: u64,
    key: &FlowKey,
    owners: &[Option<Arc<Attribution>>; 2],
    community_id: &std::cell::OnceCell<Arc<str>>,
    c: Side,
) -> ConnCtx {
    ConnCtx {
        id,
        client: key.endpoint(c),
        broker: key.endpoint(c.other()),
        client_owner: owners[c as usize].clone(),
        broker_owner: owners[c.other() as usize].clone(),
        community_id: Arc::clone(
            community_id.get_or_init(|| Arc::from(crate::output::community_id::tcp(key.a, key.b))),
        ),
    }
}

pub struct AppState {
    pub id: u64,
    pub key: FlowKey,
    /// The client's side once known.
    pub client: Option<Side>,
    /// Roles came from a SYN: both streams start on a frame boundary.
    pub saw_syn: bool,
    pub kind: AppKind,
    pub kafka: Option<KafkaConnection>,
    /// Chunks held while undecided: side, packet time, packet number (see `Engine::number_frames`).
    held: Vec<(Side, Timestamp, u64, Held)>,
    held_bytes: usize,
    /// Bytes dropped because the connection was undecided too long or not Kafka.
    pub ignored_bytes: u64,
    /// Socket owners of endpoint A and B (live eBPF sources), first seen wins.
    owners: [Option<Arc<Attribution>>; 2],
    /// Community ID of the connection, computed at its first Kafka event (one SHA-1 per connection).
    community_id: std::cell::OnceCell<Arc<str>>,
    /// The engine's global memory budget (held bytes here, frame buffers in the Kafka layer).
    budget: Option<Budget>,
    /// Held bytes charged to it.
    charge: Charge,
    /// TLS records being decrypted (a TLS connection, with a key log configured).
    pub tls: Option<Box<TlsStream>>,
}

impl AppState {
    pub fn new(id: u64, key: FlowKey) -> Self {
        AppState {
            id,
            key,
            client: None,
            saw_syn: false,
            kind: AppKind::Undecided,
            kafka: None,
            held: Vec::new(),
            held_bytes: 0,
            ignored_bytes: 0,
            owners: [None, None],
            community_id: std::cell::OnceCell::new(),
            budget: None,
            charge: Charge::default(),
            tls: None,
        }
    }

    /// Whether this connection's packets can skip reassembly: not Kafka, or TLS without keys.
    pub fn ignores_packets(&self) -> bool {
        match self.kind {
            AppKind::NotKafka => true,
            AppKind::Tls => self.tls.is_none(),
            _ => false,
        }
    }

    /// Held bytes and the Kafka layer's frame buffers count against `budget`, shared by every
    /// connection of an engine.
    pub fn with_budget(mut self, budget: &Budget) -> Self {
        self.charge = Charge::new(budget);
        self.budget = Some(budget.clone());
        self
    }

    pub fn ctx(&self) -> Option<ConnCtx> {
        Some(make_ctx(
            self.id,
            &self.key,
            &self.owners,
            &self.community_id,
            self.client?,
        ))
    }

    /// The socket of `side` belongs to `who` (kept from the first packet that said so).
    pub fn set_owner(&mut self, side: Side, who: &Arc<Attribution>) {
        let slot = &mut self.owners[side as usize];
        if slot.is_none() {
            *slot = Some(Arc::clone(who));
        }
    }

    /// A SYN was seen from `side` (`ack` = it was a SYN+ACK).
    pub fn on_syn(&mut self, side: Side, ack: bool) {
        if self.client.is_none() && self.kind == AppKind::Undecided {
            self.client = Some(if ack { side.other() } else { side });
            self.saw_syn = true;
        }
    }

    /// One chunk of reassembled stream from `side`.
    pub fn on_chunk(
        &mut self,
        cfg: &EngineConfig,
        side: Side,
        ts: Timestamp,
        frame: u64,
        chunk: Chunk<'_>,
        out: &mut impl FnMut(ConnCtx, KafkaEvent),
    ) {
        match self.kind {
            AppKind::Tls if self.tls.is_some() => {
                self.on_tls_chunk(cfg, side, ts, frame, chunk, out);
                return;
            }
            AppKind::Tls | AppKind::NotKafka => {
                if let Chunk::Data(d) = chunk {
                    self.ignored_bytes += d.len() as u64;
                }
                return;
            }
            AppKind::Undecided => {
                if !self.decide(cfg, side, &chunk) {
                    self.hold(cfg, side, ts, frame, &chunk);
                    if self.kind == AppKind::Kafka {
                        // The fallback found the roles: replay what was held (this chunk included).
                        self.start_kafka(cfg, out);
                    }
                    return;
                }
                if self.kind == AppKind::Tls && self.start_tls(cfg, side, out) {
                    self.on_tls_chunk(cfg, side, ts, frame, chunk, out);
                    return;
                }
                if self.kind != AppKind::Kafka {
                    return;
                }
                self.start_kafka(cfg, out);
            }
            AppKind::Kafka => {}
        }
        self.feed(cfg, side, ts, frame, chunk, out);
    }

    fn feed(
        &mut self,
        cfg: &EngineConfig,
        side: Side,
        ts: Timestamp,
        frame: u64,
        chunk: Chunk<'_>,
        out: &mut impl FnMut(ConnCtx, KafkaEvent),
    ) {
        let Some(client) = self.client else {
            return;
        };
        let (id, key, owners, cid) = (self.id, &self.key, &self.owners, &self.community_id);
        let Some(k) = self.kafka.as_mut() else { return };
        let dir = if side == client {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        // The context is made per event, not per chunk: most chunks (a packet each) tell nothing.
        let mut emit = |ev| out(make_ctx(id, key, owners, cid, client), ev);
        k.set_frame(frame);
        match chunk {
            Chunk::Data(d) => k.on_data(&cfg.kafka, dir, ts, d, &mut emit),
            Chunk::Gap { len } => k.on_gap(dir, ts, len, &mut emit),
            Chunk::Fin | Chunk::Rst => {}
        }
        if k.is_tls() {
            self.kind = AppKind::Tls;
        }
    }

    /// Tries to learn the roles from this chunk. Returns true when the kind is decided.
    fn decide(&mut self, cfg: &EngineConfig, side: Side, chunk: &Chunk<'_>) -> bool {
        if let (Some(client), true) = (self.client, self.saw_syn) {
            if !self.client_gap_held(client) {
                return self.decide_after_syn(cfg, client, side, chunk);
            }
            // The capture lost the client's first bytes: judge them as a mid-stream join is judged.
        }
        if self.client.is_some() {
            self.kind = AppKind::Kafka;
            return true;
        }
        if !cfg.ports.is_empty() {
            let a = cfg.ports.contains(&self.key.endpoint(Side::A).port);
            let b = cfg.ports.contains(&self.key.endpoint(Side::B).port);
            if a != b {
                // The endpoint on a broker port is the server.
                self.client = Some(if a { Side::B } else { Side::A });
                self.kind = match chunk {
                    // With a key log, a TLS listener named by --ports is decrypted, not framed as Kafka.
                    Chunk::Data(d)
                        if cfg.tls_keys.is_some()
                            && self.client == Some(side)
                            && probe::is_tls_record(&self.head(side, d)) =>
                    {
                        AppKind::Tls
                    }
                    _ => AppKind::Kafka,
                };
                return true;
            }
        }
        let Chunk::Data(d) = chunk else { return false };
        // Judge on the first bytes of this side: held data of the same side comes first (a header may
        // arrive in several small segments). A later chunk can only reveal a request start (a join inside a
        // frame); it says nothing about TLS or text protocols (its first byte may be any byte of a frame).
        let held = self
            .held
            .iter()
            .any(|(s, _, _, h)| *s == side && matches!(h, Held::Data(_)));
        let verdict = if held {
            match probe::guess(&self.head(side, d), &cfg.kafka.probe) {
                Guess::Unsure if probe::probe_request(d, &cfg.kafka.probe).is_done() => {
                    Guess::KafkaRequest
                }
                v => v,
            }
        } else {
            probe::guess(d, &cfg.kafka.probe)
        };
        if verdict == Guess::KafkaRequest {
            // Confirm with a full decode when the whole frame is at hand: a response whose correlation id
            // reads as a request header does not decode as that request.
            let bytes = if held {
                self.side_bytes(side, d, usize::MAX)
            } else {
                d.to_vec()
            };
            // A length prefix that is no length (broken at 0) tells nothing here: the held bytes may come
            // from before a join inside a frame; only a header or body that fails to decode rejects.
            if matches!(probe::confirm_request(&bytes), Parse::Broken { at, .. } if at > 0) {
                return false;
            }
        }
        match verdict {
            Guess::KafkaRequest if self.on_kafka_port(side) => {
                // A broker port does not send requests: this is a response whose body happens to read as
                // a request header (correlation ids 0..=16 read as Produce v0..v16). Keep holding; the
                // client's own bytes, or the port fallback at the end, will tell.
                false
            }
            Guess::KafkaRequest => {
                self.client = Some(side);
                self.kind = AppKind::Kafka;
                true
            }
            Guess::Tls => {
                self.kind = AppKind::Tls;
                true
            }
            Guess::NotKafka => {
                self.kind = AppKind::NotKafka;
                true
            }
            Guess::Unsure => false,
        }
    }

    /// Roles known from the SYN: the client's first bytes are the start of its first message, and a Kafka
    /// client speaks first with a request. The connection is Kafka only when they read as a plausible
    /// request header; anything else (HTTP, SSH, Redis, random bytes) is
    /// not Kafka and raises no Kafka notice. Bytes of the server, sent before the client spoke, are held.
    fn decide_after_syn(
        &mut self,
        cfg: &EngineConfig,
        client: Side,
        side: Side,
        chunk: &Chunk<'_>,
    ) -> bool {
        let Chunk::Data(d) = chunk else { return false };
        if side != client {
            return false;
        }
        let head = self.head(client, d);
        if probe::is_tls_record(&head) {
            self.kind = AppKind::Tls;
            return true;
        }
        // On a broker port (`--ports`, or a well-known Kafka port), a request for an API or version no
        // broker knows is still Kafka (a client probing, Wireshark's sample of an unsupported version).
        let server = self.key.endpoint(client.other()).port;
        let on_broker_port = cfg.ports.contains(&server) || is_kafka_port(server);
        let verdict = if on_broker_port {
            probe::probe_request_any_api(&head, &cfg.kafka.probe)
        } else {
            probe::probe_request(&head, &cfg.kafka.probe)
        };
        match verdict {
            Parse::NeedMore(_) => false,
            // A body that does not decode is the Kafka layer's to count: the header made it Kafka.
            Parse::Done(..) => {
                self.kind = AppKind::Kafka;
                true
            }
            Parse::Broken { .. } => {
                self.kind = AppKind::NotKafka;
                true
            }
        }
    }

    /// A capture gap of the client's side is held: its first held bytes are not its first bytes.
    fn client_gap_held(&self, client: Side) -> bool {
        self.held
            .iter()
            .any(|(s, _, _, h)| *s == client && matches!(h, Held::Gap(_)))
    }

    fn hold(
        &mut self,
        cfg: &EngineConfig,
        side: Side,
        ts: Timestamp,
        frame: u64,
        chunk: &Chunk<'_>,
    ) {
        match chunk {
            Chunk::Data(d) => {
                let over_budget = !self.charge.fits(d.len() as u64);
                if over_budget {
                    self.charge.deny(d.len() as u64);
                }
                if over_budget || self.held_bytes + d.len() > cfg.max_undecided_bytes {
                    if !self.fallback_roles(cfg) {
                        self.give_up();
                        self.ignored_bytes += d.len() as u64;
                        return;
                    }
                    // Roles found: replay what was held, then this chunk (the caller's path).
                    self.held.push((side, ts, frame, Held::Data(d.to_vec())));
                    return;
                }
                self.held_bytes += d.len();
                self.held.push((side, ts, frame, Held::Data(d.to_vec())));
                self.charge.settle(self.held_bytes as u64);
            }
            Chunk::Gap { len } => self.held.push((side, ts, frame, Held::Gap(*len))),
            Chunk::Fin | Chunk::Rst => {}
        }
    }

    /// Last resort before giving up (held bytes overflow, or the connection ends undecided): a broker on a
    /// well-known Kafka port, or the only endpoint below the ephemeral port range, whose first bytes read as
    /// a plausible response (an asymmetric capture that saw only the broker's side).
    fn fallback_roles(&mut self, cfg: &EngineConfig) -> bool {
        if self.saw_syn {
            // Roles are known; the client never sent a Kafka request: not Kafka.
            return false;
        }
        let pa = self.key.endpoint(Side::A).port;
        let pb = self.key.endpoint(Side::B).port;
        let server = match (is_kafka_port(pa), is_kafka_port(pb)) {
            (true, false) => Side::A,
            (false, true) => Side::B,
            _ if pa < EPHEMERAL_START && pb >= EPHEMERAL_START => Side::A,
            _ if pb < EPHEMERAL_START && pa >= EPHEMERAL_START => Side::B,
            _ => return false,
        };
        let first = self.head(server, &[]);
        let plausible = !first.is_empty()
            && probe::probe_response(&first, &cfg.kafka.probe, |_| true).is_done();
        if !plausible {
            return false;
        }
        self.client = Some(server.other());
        self.kind = AppKind::Kafka;
        true
    }

    /// `side` is on a well-known Kafka port and its peer is not: it is the broker.
    fn on_kafka_port(&self, side: Side) -> bool {
        is_kafka_port(self.key.endpoint(side).port)
            && !is_kafka_port(self.key.endpoint(side.other()).port)
    }

    /// The first bytes (at most [`HEAD_BYTES`]) `side` sent since its last held gap, then `more`: what a
    /// probe needs to see when a header arrived in several small segments.
    fn head(&self, side: Side, more: &[u8]) -> Vec<u8> {
        self.side_bytes(side, more, HEAD_BYTES)
    }

    /// Like [`Self::head`], up to `cap` bytes.
    fn side_bytes(&self, side: Side, more: &[u8], cap: usize) -> Vec<u8> {
        let mut head = Vec::new();
        for (s, _, _, h) in &self.held {
            if *s != side {
                continue;
            }
            match h {
                Held::Gap(_) => head.clear(),
                Held::Data(d) if head.len() < cap => {
                    head.extend_from_slice(&d[..d.len().min(cap - head.len())]);
                }
                Held::Data(_) => {}
            }
        }
        head.extend_from_slice(&more[..more.len().min(cap.saturating_sub(head.len()))]);
        head
    }

    /// Undecided for too long: not Kafka as far as we can tell.
    fn give_up(&mut self) {
        self.kind = AppKind::NotKafka;
        self.ignored_bytes += self.held_bytes as u64;
        self.held.clear();
        self.held_bytes = 0;
        self.charge.settle(0);
    }

    /// A Kafka stage for this connection, charged to the engine's memory budget.
    fn kafka_stage(&self, cfg: &EngineConfig, start: StreamStart) -> KafkaConnection {
        let mut k = KafkaConnection::new(&cfg.kafka, start);
        if let Some(b) = &self.budget {
            k.set_budget(b);
        }
        k
    }

    /// What was held while the connection was undecided, handed back (its charge returned).
    fn take_held(&mut self) -> Vec<(Side, Timestamp, u64, Held)> {
        self.held_bytes = 0;
        self.charge.settle(0);
        std::mem::take(&mut self.held)
    }

    fn start_kafka(&mut self, cfg: &EngineConfig, out: &mut impl FnMut(ConnCtx, KafkaEvent)) {
        let start = if self.saw_syn {
            StreamStart::Handshake
        } else {
            StreamStart::MidStream
        };
        self.kafka = Some(self.kafka_stage(cfg, start));
        for (side, ts, frame, h) in self.take_held() {
            match h {
                Held::Data(d) => self.feed(cfg, side, ts, frame, Chunk::Data(&d), out),
                Held::Gap(len) => self.feed(cfg, side, ts, frame, Chunk::Gap { len }, out),
            }
        }
    }

    /// The connection was found to be TLS from `first`'s bytes: with a key log, set up decryption (roles
    /// from the SYN, else whoever spoke TLS first is the client) and replay what was held into it.
    /// False without a key log.
    fn start_tls(
        &mut self,
        cfg: &EngineConfig,
        first: Side,
        out: &mut impl FnMut(ConnCtx, KafkaEvent),
    ) -> bool {
        if cfg.tls_keys.is_none() {
            return false;
        }
        self.client.get_or_insert(first);
        // The plaintext starts where the TLS session does: on a frame boundary of both directions.
        self.kafka = Some(self.kafka_stage(cfg, StreamStart::Handshake));
        self.tls = Some(Box::default());
        for (side, ts, frame, h) in self.take_held() {
            match h {
                Held::Data(d) => self.on_tls_chunk(cfg, side, ts, frame, Chunk::Data(&d), out),
                Held::Gap(len) => self.on_tls_chunk(cfg, side, ts, frame, Chunk::Gap { len }, out),
            }
        }
        true
    }

    /// One chunk of a TLS connection being decrypted: records → plaintext → the Kafka layer.
    fn on_tls_chunk(
        &mut self,
        cfg: &EngineConfig,
        side: Side,
        ts: Timestamp,
        frame: u64,
        chunk: Chunk<'_>,
        out: &mut impl FnMut(ConnCtx, KafkaEvent),
    ) {
        let (Some(mut tls), Some(client), Some(keys)) =
            (self.tls.take(), self.client, cfg.tls_keys.as_deref())
        else {
            return;
        };
        let sender = if side == client {
            Sender::Client
        } else {
            Sender::Server
        };
        match chunk {
            Chunk::Data(d) => tls.on_data(keys, sender, d, &mut |p| match p {
                Plain::Data(b) => self.feed(cfg, side, ts, frame, Chunk::Data(b), out),
                Plain::Lost(len) => self.feed(cfg, side, ts, frame, Chunk::Gap { len }, out),
            }),
            Chunk::Gap { len } => {
                tls.on_gap(sender);
                self.feed(cfg, side, ts, frame, Chunk::Gap { len }, out);
            }
            Chunk::Fin | Chunk::Rst => {}
        }
        self.tls = Some(tls);
    }

    /// Connection over (closed, evicted or end of input).
    pub fn close(
        &mut self,
        cfg: &EngineConfig,
        ts: Timestamp,
        out: &mut impl FnMut(ConnCtx, KafkaEvent),
    ) {
        if self.kind == AppKind::Undecided {
            if self.fallback_roles(cfg) {
                self.start_kafka(cfg, out);
            } else {
                self.give_up();
            }
        }
        if let (Some(ctx), Some(k)) = (self.ctx(), self.kafka.as_mut()) {
            k.on_close(ts, &mut |ev| out(ctx.clone(), ev));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use kwire_flow::{Endpoint, FlowKey, Side};

    use super::AppState;

    fn key() -> (FlowKey, Side) {
        let client = Endpoint::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 40000);
        let broker = Endpoint::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 9092);
        FlowKey::new(client, broker)
    }

    /// The client-from-SYN rule: a SYN names its sender the client, a SYN+ACK names its sender the
    /// server; the first one seen decides.
    #[test]
    fn the_syn_names_the_client_and_a_syn_ack_the_server() {
        let (k, client) = key();
        let mut a = AppState::new(1, k);
        a.on_syn(client, false);
        a.on_syn(client.other(), false); // a later SYN from the broker does not change it
        assert_eq!((a.client, a.saw_syn), (Some(client), true));
        assert_eq!(a.ctx().unwrap().client, k.endpoint(client));
        assert_eq!(a.ctx().unwrap().broker.port, 9092);

        // The capture missed the SYN: the broker's SYN+ACK names the client all the same.
        let mut b = AppState::new(2, k);
        b.on_syn(client.other(), true);
        assert_eq!(b.client, Some(client));
        assert_eq!(b.ctx().unwrap().client.port, 40000);
    }

    /// Without a SYN nothing is named here (the port and the request probe decide later).
    #[test]
    fn without_a_syn_no_client_is_named() {
        let (k, _) = key();
        let a = AppState::new(1, k);
        assert_eq!((a.client, a.saw_syn), (None, false));
        assert!(a.ctx().is_none());
    }
}
