//! The replay summary: every counter the pipeline keeps, aggregated, in deterministic order. Printed as
//! the last `{"type":"summary"}` line with `--json` and as the human summary otherwise.
//!
//! Easy to get wrong: per-connection counters are added when a connection ends (closed, evicted or end of
//! input), so the summary is only complete after `Engine::finish`.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use serde::Serialize;

use kwire_flow::{FlowTableStats, PacketError, ReassemblyStats};
use kwire_kafka::KafkaStats;

#[derive(Debug, Default, Clone, Serialize)]
pub struct PacketCounts {
    pub packets: u64,
    pub bytes: u64,
    pub tcp_segments: u64,
    pub not_ip: u64,
    pub not_tcp: u64,
    pub truncated: u64,
    pub ip_fragments: u64,
    pub unsupported_link: u64,
    pub malformed: u64,
    pub filtered_by_port: u64,
    /// TCP segments found inside a tunnel (VXLAN, Geneve, IP-in-IP, GRE).
    pub decapsulated: u64,
    /// Packets with tunnels nested deeper than kwire_flow::MAX_ENCAP_DEPTH.
    pub tunnel_too_deep: u64,
}

impl PacketCounts {
    pub fn count_error(&mut self, e: &PacketError) {
        match e {
            PacketError::Truncated => self.truncated += 1,
            PacketError::NotIp => self.not_ip += 1,
            PacketError::NotTcp => self.not_tcp += 1,
            PacketError::Fragment => self.ip_fragments += 1,
            PacketError::UnsupportedLink(_) => self.unsupported_link += 1,
            PacketError::Malformed => self.malformed += 1,
            PacketError::TunnelTooDeep => self.tunnel_too_deep += 1,
        }
    }
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct FlowCounts {
    pub tcp_connections: u64,
    pub kafka: u64,
    pub tls: u64,
    pub not_kafka: u64,
    pub expired: u64,
    pub evicted_full: u64,
    pub refused_table_full: u64,
    pub port_reuse: u64,
    pub ignored_bytes: u64,
    /// Packets stamped earlier than the flow table's clock (handled at the clock).
    pub time_backwards: u64,
    /// Forward jumps of packet time over the table's `max_time_jump` (held back one packet).
    pub time_jumps: u64,
    /// Kafka connections left to another agent by the fleet rule (`fleet.rs`); absent when none.
    #[serde(skip_serializing_if = "is_zero")]
    pub fleet_skipped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl FlowCounts {
    /// The flow table's own counters (cumulative: set, not added).
    pub fn set_table(&mut self, t: &FlowTableStats) {
        self.time_backwards = t.time_backwards;
        self.time_jumps = t.time_jumps;
    }
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct TcpCounts {
    pub bytes_delivered: u64,
    pub retransmitted_bytes: u64,
    pub overlap_bytes: u64,
    pub out_of_order_segments: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
    pub ooo_dropped_bytes: u64,
    pub truncated_bytes: u64,
    pub after_close_bytes: u64,
    pub resyncs: u64,
    pub overlap_mismatch_bytes: u64,
    pub overlap_mismatch_segments: u64,
    pub rst_ignored: u64,
    pub syn_ignored: u64,
}

impl TcpCounts {
    pub fn add(&mut self, r: &ReassemblyStats) {
        self.bytes_delivered += r.bytes_delivered;
        self.retransmitted_bytes += r.retransmitted_bytes;
        self.overlap_bytes += r.overlap_bytes;
        self.out_of_order_segments += r.ooo_segments;
        self.gaps += r.gaps;
        self.gap_bytes += r.gap_bytes;
        self.ooo_dropped_bytes += r.ooo_dropped_bytes;
        self.truncated_bytes += r.truncated_bytes;
        self.after_close_bytes += r.after_close_bytes;
        self.resyncs += r.resyncs;
        self.overlap_mismatch_bytes += r.overlap_mismatch_bytes;
        self.overlap_mismatch_segments += r.overlap_mismatch_segments;
        self.rst_ignored += r.rst_ignored;
        self.syn_ignored += r.syn_ignored;
    }
}

/// Exchanges of one API key and version.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ApiCount {
    pub api_key: i16,
    pub api: &'static str,
    pub api_version: i16,
    pub requests: u64,
    pub responses: u64,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct ClientCount {
    pub client_id: String,
    pub exchanges: u64,
    pub connections: u64,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct ErrorCount {
    pub error_code: i16,
    pub error: &'static str,
    pub count: u64,
}

/// Analysis state not kept because a bound of `[limits]` (or the name table) was full: alerts that
/// needed it may be missing.
#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct LimitsHit {
    /// Offset observations not kept (`max_clients`, `max_partitions_per_client`).
    pub timelines_dropped: u64,
    /// Group members or groups not tracked (`max_groups`, `max_members_per_group`).
    pub groups_dropped: u64,
    /// Partitions missing from the cluster view (`max_partitions`).
    pub cluster_dropped: u64,
    /// Producers with weak acks not tracked (`max_weak_producers`).
    pub weak_producers_dropped: u64,
    /// Names allocated per use because the name table was full (costs memory, loses nothing).
    pub names_not_interned: u64,
    /// Partitions whose acknowledged offsets were not remembered (`max_acked_partitions`); listed only
    /// when not zero.
    #[serde(skip_serializing_if = "is_zero")]
    pub acked_partitions_dropped: u64,
    /// Spans of acknowledged offsets forgotten, oldest first (32 per partition); listed only when not
    /// zero.
    #[serde(skip_serializing_if = "is_zero")]
    pub acked_spans_forgotten: u64,
    /// Refused or unanswered Produce batches not watched (`max_rejected_batches`); listed only when not
    /// zero.
    #[serde(skip_serializing_if = "is_zero")]
    pub rejected_batches_dropped: u64,
}

impl LimitsHit {
    /// Bounds whose hit may hide an alert (not `names_not_interned`).
    pub fn any(&self) -> bool {
        self.timelines_dropped
            + self.groups_dropped
            + self.cluster_dropped
            + self.weak_producers_dropped
            + self.acked_partitions_dropped
            + self.rejected_batches_dropped
            > 0
    }
}

/// Capture fidelity: what may make conclusions incomplete, with figures. `complete` when none applies.
///
/// Easy to get wrong: `snaplen_cut_packets` comes from the capture file (the edge sets it; the engine
/// only sees the bytes that are there); connections are counted when they end, like the other
/// per-connection counters; the connection counts are of Kafka (and still undecided) connections only:
/// a web server's traffic cut mid-stream changes nothing kwire concludes.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Fidelity {
    /// Packets the capture cut short of their length on the wire (snaplen), from the file's records.
    pub snaplen_cut_packets: u64,
    /// TCP payload bytes missing from cut packets.
    pub snaplen_cut_bytes: u64,
    /// Holes in TCP streams and the bytes they lost (snaplen cuts included: a cut packet leaves a hole).
    pub gaps: u64,
    pub gap_bytes: u64,
    /// The bytes of `gap_bytes` not explained by snaplen cuts: packets not captured at all.
    pub lost_bytes: u64,
    /// Connections whose start (SYN) was not captured: group membership and what the client was told
    /// before may be unknown.
    pub midstream_connections: u64,
    /// Connections with bytes in one direction only (requests without responses or the reverse).
    pub one_direction_connections: u64,
    /// Requests found by probing (mid-stream join, resync) that no response confirmed: left out of every
    /// output and analysis, since record bytes can read as requests.
    pub unconfirmed_requests: u64,
    /// Times the global memory budget refused a buffer (a frame cut to its header, an out-of-order hole
    /// given up, an undecided connection given up).
    pub memory_budget_denied: u64,
    /// Flows evicted from, or refused by, a full flow table (`max_flows`).
    pub flows_evicted: u64,
    pub flows_refused: u64,
    /// Packets lost before kwire saw them (live capture: kernel, ring and interface drops).
    pub kernel_drops: u64,
    pub limits: LimitsHit,
    /// TLS connections not decrypted for want of keys (a key log, `--tls-keylog`, would show them).
    pub tls_without_keys: u64,
    /// TLS records with keys that could not be decrypted (failed authentication), plus directions
    /// whose records could no longer be read (after a capture gap).
    pub tls_records_lost: u64,
}

impl Fidelity {
    /// What applies, as short names, in a fixed order.
    pub fn reasons(&self) -> Vec<&'static str> {
        let mut r = Vec::new();
        if self.snaplen_cut_packets + self.snaplen_cut_bytes > 0 {
            r.push("snaplen");
        }
        if self.lost_bytes > 0 {
            r.push("gaps");
        }
        if self.kernel_drops > 0 {
            r.push("kernel_drops");
        }
        if self.midstream_connections > 0 {
            r.push("midstream");
        }
        if self.one_direction_connections > 0 {
            r.push("one_direction");
        }
        if self.unconfirmed_requests > 0 {
            r.push("unconfirmed_requests");
        }
        if self.memory_budget_denied > 0 {
            r.push("memory_budget");
        }
        if self.flows_evicted + self.flows_refused > 0 {
            r.push("flow_table_full");
        }
        if self.limits.any() {
            r.push("analysis_limits");
        }
        if self.tls_without_keys > 0 {
            r.push("tls_without_keys");
        }
        if self.tls_records_lost > 0 {
            r.push("tls_records_lost");
        }
        r
    }

    pub fn complete(&self) -> bool {
        self.reasons().is_empty()
    }
}

impl Serialize for Fidelity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("complete", &self.complete())?;
        m.serialize_entry("reasons", &self.reasons())?;
        m.serialize_entry("snaplen_cut_packets", &self.snaplen_cut_packets)?;
        m.serialize_entry("snaplen_cut_bytes", &self.snaplen_cut_bytes)?;
        m.serialize_entry("gaps", &self.gaps)?;
        m.serialize_entry("gap_bytes", &self.gap_bytes)?;
        m.serialize_entry("lost_bytes", &self.lost_bytes)?;
        m.serialize_entry("midstream_connections", &self.midstream_connections)?;
        m.serialize_entry("one_direction_connections", &self.one_direction_connections)?;
        m.serialize_entry("unconfirmed_requests", &self.unconfirmed_requests)?;
        m.serialize_entry("memory_budget_denied", &self.memory_budget_denied)?;
        m.serialize_entry("flows_evicted", &self.flows_evicted)?;
        m.serialize_entry("flows_refused", &self.flows_refused)?;
        m.serialize_entry("kernel_drops", &self.kernel_drops)?;
        m.serialize_entry("limits", &self.limits)?;
        // Absent unless TLS was seen (older outputs stay byte for byte the same).
        if self.tls_without_keys > 0 {
            m.serialize_entry("tls_without_keys", &self.tls_without_keys)?;
        }
        if self.tls_records_lost > 0 {
            m.serialize_entry("tls_records_lost", &self.tls_records_lost)?;
        }
        m.end()
    }
}

/// TLS connections and what decryption with a key log (`--tls-keylog`) made of them. In the summary
/// only when a TLS connection was seen. No key material: counts only.
#[derive(Debug, Default, Clone, Serialize)]
pub struct TlsCounts {
    /// TLS connections seen (the same as `flows.tls`).
    pub connections: u64,
    /// Whether a key log was given.
    pub keylog: bool,
    /// Connections with application data decrypted.
    pub decrypted: u64,
    /// Connections the key log has no secret for (all of them without a key log).
    pub without_keys: u64,
    /// Connections of a version or cipher suite not decrypted (see kwire-tls).
    pub unsupported: u64,
    pub records_decrypted: u64,
    pub records_no_key: u64,
    pub records_unsupported: u64,
    /// Records that did not authenticate under the logged keys (wrong key log, damaged bytes).
    pub records_failed: u64,
    /// Directions whose records could no longer be read (a capture gap, an unreadable record
    /// header), and the bytes after it.
    pub directions_stopped: u64,
    pub bytes_after_stop: u64,
    pub plaintext_bytes: u64,
}

impl TlsCounts {
    /// One TLS connection ended: `tls` is its decryption state (None: no key log was given).
    pub fn add_conn(&mut self, tls: Option<&kwire_tls::TlsStream>, keylog: bool) {
        use kwire_tls::stream::KeyState;
        self.connections += 1;
        self.keylog |= keylog;
        let Some(t) = tls else {
            self.without_keys += 1;
            return;
        };
        let st = t.stats();
        match t.key_state() {
            KeyState::Keys if t.decrypted() => self.decrypted += 1,
            KeyState::Keys => {}
            KeyState::Unsupported => self.unsupported += 1,
            KeyState::NoKeys | KeyState::Handshake => self.without_keys += 1,
        }
        self.records_decrypted += st.records_decrypted;
        self.records_no_key += st.records_no_key;
        self.records_unsupported += st.records_unsupported;
        self.records_failed += st.records_failed;
        self.directions_stopped += st.directions_stopped;
        self.bytes_after_stop += st.bytes_after_stop;
        self.plaintext_bytes += st.plaintext_bytes;
    }
}

/// Everything counted during a run.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub packets: PacketCounts,
    pub flows: FlowCounts,
    pub tcp: TcpCounts,
    pub kafka: KafkaStats,
    pub apis: BTreeMap<(i16, i16), ApiCount>,
    /// Per client id, hashed (looked up for every exchange; the ids share long prefixes, which a B-tree
    /// compares at every level); listed sorted by [`Summary::clients_sorted`].
    pub clients: FxHashMap<String, ClientCount>,
    pub errors: BTreeMap<i16, ErrorCount>,
    /// Produce requests per acks value.
    pub produce_acks: BTreeMap<i16, u64>,
    /// Alerts raised per kind and severity.
    pub alerts: BTreeMap<
        (
            crate::output::alert::AlertKind,
            crate::output::alert::Severity,
        ),
        u64,
    >,
    /// Incidents: repeated observations of one condition, with their counts and first/last times.
    pub incidents: crate::analysis::incident::IncidentReport,
    /// Every `[[suppress]]` rule with the alerts it held back.
    pub suppressed: Vec<crate::analysis::suppress::Suppressed>,
    /// What may make conclusions incomplete (the edge adds the capture's own figures).
    pub fidelity: Fidelity,
    /// Entries folded into the "(other)" row of a bounded table (clients, apis, errors, produce_acks).
    pub overflow: TableOverflow,
    /// The global memory budget (`memory_budget_bytes`).
    pub memory: MemoryCounts,
    /// TLS connections and their decryption (written only when one was seen).
    pub tls: TlsCounts,
    /// TLS plaintext from a live uprobe source (`Engine::on_plaintext`); listed only when some came.
    pub plaintext: PlaintextCounts,
}

/// Plaintext chunks of TLS connections (OpenSSL uprobes) and what became of them.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct PlaintextCounts {
    /// Chunks and bytes handed to `Engine::on_plaintext`.
    pub chunks: u64,
    pub bytes: u64,
    /// Connections analysed from plaintext (each also counted in `flows` when it ends).
    pub connections: u64,
    /// TLS packets of those connections, not analysed (the plaintext is).
    pub tls_packets_covered: u64,
    /// Chunks seen at the other end of a connection whose plaintext another end already feeds (both
    /// ends use OpenSSL on this node, e.g. a client and a TLS proxy): dropped, the bytes are the same.
    pub other_end_chunks: u64,
    /// Chunks of a connection already decoded as plaintext Kafka from its packets: dropped.
    pub on_plain_kafka: u64,
    /// Chunks filtered out by `--ports`.
    pub filtered_by_port: u64,
}

/// The global bound on buffered bytes and what it did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct MemoryCounts {
    pub budget_bytes: u64,
    /// Most bytes buffered at once (all connections).
    pub peak_bytes: u64,
    /// Buffered now (0 after the end of input).
    pub held_bytes: u64,
    /// Refusals and the bytes they concerned (frames cut, holes given up, undecided connections).
    pub denied: u64,
    pub denied_bytes: u64,
}

/// Keys not given a row of their own because their table was full (see `MAX_SUMMARY_*` in engine.rs).
#[derive(Debug, Default, Clone, Serialize)]
pub struct TableOverflow {
    pub clients: u64,
    pub apis: u64,
    pub errors: u64,
    pub produce_acks: u64,
}

impl Summary {
    /// The client rows in client id order (byte order).
    pub fn clients_sorted(&self) -> Vec<&ClientCount> {
        let mut v: Vec<(&String, &ClientCount)> = self.clients.iter().collect();
        v.sort_unstable_by(|a, b| a.0.cmp(b.0));
        v.into_iter().map(|(_, c)| c).collect()
    }

    /// Fills the fidelity figures the other counters already hold (TCP, flows) and the analysis bounds.
    /// The global memory budget's figures (and the fidelity reason when it refused anything).
    pub fn set_memory(&mut self, b: &kwire_flow::BudgetStats) {
        self.memory = MemoryCounts {
            budget_bytes: b.limit,
            peak_bytes: b.peak,
            held_bytes: b.used,
            denied: b.denied,
            denied_bytes: b.denied_bytes,
        };
        self.fidelity.memory_budget_denied = b.denied;
    }

    pub fn set_fidelity(&mut self, a: &crate::analysis::Analyzer) {
        let f = &mut self.fidelity;
        f.snaplen_cut_bytes = self.tcp.truncated_bytes;
        f.gaps = self.tcp.gaps;
        f.gap_bytes = self.tcp.gap_bytes;
        f.lost_bytes = self.tcp.gap_bytes.saturating_sub(self.tcp.truncated_bytes);
        f.unconfirmed_requests = self.kafka.unconfirmed_requests;
        f.flows_evicted = self.flows.evicted_full;
        f.flows_refused = self.flows.refused_table_full;
        f.tls_without_keys = self.tls.without_keys;
        f.tls_records_lost = self.tls.records_failed + self.tls.directions_stopped;
        f.limits = LimitsHit {
            timelines_dropped: a.timelines.dropped,
            groups_dropped: a.groups.dropped,
            cluster_dropped: a.cluster.dropped,
            weak_producers_dropped: a.weak.dropped,
            names_not_interned: a.cluster.names.not_interned.get(),
            acked_partitions_dropped: a.acked.partitions_dropped,
            acked_spans_forgotten: a.acked.spans_forgotten,
            rejected_batches_dropped: a.rejects.dropped,
        };
    }
}

impl Serialize for Summary {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", "summary")?;
        m.serialize_entry("packets", &self.packets)?;
        m.serialize_entry("flows", &self.flows)?;
        m.serialize_entry("tcp", &self.tcp)?;
        m.serialize_entry("kafka", &self.kafka)?;
        m.serialize_entry("apis", &self.apis.values().collect::<Vec<_>>())?;
        m.serialize_entry("clients", &self.clients_sorted())?;
        m.serialize_entry("errors", &self.errors.values().collect::<Vec<_>>())?;
        let acks: BTreeMap<String, u64> = self
            .produce_acks
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        m.serialize_entry("produce_acks", &acks)?;
        let alerts: Vec<serde_json::Value> = self
            .alerts
            .iter()
            .map(|((k, s), n)| serde_json::json!({"alert": k.as_str(), "severity": s.as_str(), "count": n}))
            .collect();
        m.serialize_entry("alerts", &alerts)?;
        m.serialize_entry("incidents", &self.incidents)?;
        m.serialize_entry("suppressed", &self.suppressed)?;
        m.serialize_entry("fidelity", &self.fidelity)?;
        m.serialize_entry("table_overflow", &self.overflow)?;
        m.serialize_entry("memory", &self.memory)?;
        if self.tls.connections > 0 {
            m.serialize_entry("tls", &self.tls)?;
        }
        if self.plaintext != PlaintextCounts::default() {
            m.serialize_entry("plaintext", &self.plaintext)?;
        }
        m.end()
    }
}
