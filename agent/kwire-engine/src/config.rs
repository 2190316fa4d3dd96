//! Engine configuration: every bound of the pipeline in one place, with its documented default.

use kwire_flow::{FlowTableConfig, ReassemblyLimits};
use kwire_kafka::KafkaConfig;

use serde::Deserialize;

use crate::analysis::detectors::DetectorConfig;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Only TCP traffic to or from these ports is considered; empty = every port, Kafka found by probing.
    pub ports: Vec<u16>,
    pub flows: FlowTableConfig,
    pub reassembly: ReassemblyLimits,
    pub kafka: KafkaConfig,
    /// Bytes held per connection while we cannot yet tell client from broker. Default 64 KiB; past it the
    /// connection is judged not Kafka.
    pub max_undecided_bytes: usize,
    /// Bytes buffered by all connections together (out-of-order TCP bytes, Kafka frames being gathered,
    /// bytes held while undecided). Default 64 MiB. Past it a frame is decoded by header only, the
    /// earliest out-of-order hole is given up, an undecided connection is given up; each counted.
    pub memory_budget_bytes: u64,
    /// Emit `notice` outputs for orphans, gaps and desyncs (they are always counted). Default true.
    pub notices: bool,
    /// Emit `timeline` outputs (offset observations per client and partition). Default false.
    pub timeline: bool,
    /// Resolve each exchange's messaging facts (`ExchangeRecord::facts`: operation, group, topic
    /// names, offsets, records) for exporters. Default false (costs a few allocations per exchange).
    pub exchange_facts: bool,
    pub detectors: DetectorConfig,
    pub limits: AnalysisLimits,
    /// Alerts held back and counted (the `[[suppress]]` tables). Default none.
    pub suppress: Vec<crate::analysis::suppress::SuppressRule>,
    /// Which connections this agent analyses in a fleet (`fleet.rs`). Default: off, all of them.
    pub fleet: crate::fleet::FleetConfig,
    /// TLS secrets (an NSS key log, `--tls-keylog`): TLS connections whose client random it names are
    /// decrypted and their plaintext decoded as Kafka. Default none: TLS connections are only counted.
    /// Its `Debug` shows counts only.
    pub tls_keys: Option<std::sync::Arc<kwire_tls::KeyLog>>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            ports: Vec::new(),
            flows: FlowTableConfig::default(),
            reassembly: ReassemblyLimits::default(),
            kafka: KafkaConfig::default(),
            max_undecided_bytes: 64 * 1024,
            memory_budget_bytes: kwire_flow::DEFAULT_BUDGET_BYTES,
            notices: true,
            timeline: false,
            exchange_facts: false,
            detectors: DetectorConfig::default(),
            limits: AnalysisLimits::default(),
            suppress: Vec::new(),
            fleet: Default::default(),
            tls_keys: None,
        }
    }
}

/// Bounds of the analysis state (the `[limits]` table of the config file).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AnalysisLimits {
    /// Clients (client.id + host) with a timeline. Default 10000.
    pub max_clients: usize,
    /// Partitions per client timeline. Default 10000.
    pub max_partitions_per_client: usize,
    /// Consumer groups tracked. Default 10000.
    pub max_groups: usize,
    /// Members per group. Default 1000.
    pub max_members_per_group: usize,
    /// Partitions in the cluster view (leaders, topic ids). Default 100000.
    pub max_partitions: usize,
    /// (client, topic, acks) weak-acks producers tracked. Default 10000.
    pub max_weak_producers: usize,
    /// Partitions whose acknowledged offsets are remembered (`acknowledged_then_lost`). Default 10000;
    /// each keeps at most 32 spans of acknowledged offsets (the oldest forgotten first, counted).
    pub max_acked_partitions: usize,
    /// Refused or unanswered Produce batches waiting to be acknowledged on a retry
    /// (`produce_rejected`). Default 10000.
    pub max_rejected_batches: usize,
}

impl Default for AnalysisLimits {
    fn default() -> Self {
        AnalysisLimits {
            max_clients: 10_000,
            max_partitions_per_client: 10_000,
            max_groups: 10_000,
            max_members_per_group: 1000,
            max_partitions: 100_000,
            max_weak_producers: 10_000,
            max_acked_partitions: 10_000,
            max_rejected_batches: 10_000,
        }
    }
}
