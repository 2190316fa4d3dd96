//! The replay summary: every counter the pipeline keeps, aggregated, in deterministic order. Printed as
//! the last `{"type":"summary"}` line with `--json` and as the human summary otherwise.
//!
//! Easy to get wrong: per-connection counters are added when a connection ends (closed, evicted or end of
//! input), so the summary is only complete after `Engine::finish`.

use std::collections::BTreeMap;

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

#[derive(Debug, Default, Clone, Serialize)]
pub struct KafkaCounts {
    pub requests: u64,
    pub responses: u64,
    pub orphans: u64,
    pub unanswered: u64,
    pub pending_evicted: u64,
    pub desyncs: u64,
    pub resync_skipped_bytes: u64,
    pub damaged_frames: u64,
    pub oversized_frames: u64,
    pub malformed_headers: u64,
    pub decode_errors: u64,
    pub unknown_versions: u64,
    pub sasl_raw_bytes: u64,
    pub tls_bytes: u64,
}

impl KafkaCounts {
    pub fn add(&mut self, k: &KafkaStats) {
        self.requests += k.requests;
        self.responses += k.responses;
        self.orphans += k.orphans;
        self.unanswered += k.unanswered;
        self.pending_evicted += k.pending_evicted;
        self.desyncs += k.desyncs;
        self.resync_skipped_bytes += k.resync_skipped_bytes;
        self.damaged_frames += k.damaged_frames;
        self.oversized_frames += k.oversized_frames;
        self.malformed_headers += k.malformed_headers;
        self.decode_errors += k.decode_errors;
        self.unknown_versions += k.unknown_versions;
        self.sasl_raw_bytes += k.sasl_raw_bytes;
        self.tls_bytes += k.tls_bytes;
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

/// Everything counted during a run.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub packets: PacketCounts,
    pub flows: FlowCounts,
    pub tcp: TcpCounts,
    pub kafka: KafkaCounts,
    pub apis: BTreeMap<(i16, i16), ApiCount>,
    pub clients: BTreeMap<String, ClientCount>,
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
        m.serialize_entry("clients", &self.clients.values().collect::<Vec<_>>())?;
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
        m.end()
    }
}
