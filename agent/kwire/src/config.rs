//! The config file (TOML) and how it combines with flags and environment variables: flags and `KWIRE_*`
//! variables win over the file, the file wins over the defaults.
//!
//! ```toml
//! ports = [9092, 9093]
//! max_frame_bytes = 16777216
//! max_flows = 65536
//! memory_budget_mb = 64
//! tls_keylog = "/tmp/sslkeys.log"
//! [limits]
//! max_clients = 10000
//! [detectors.weak_acks]
//! enabled = true
//! leader_change_window_s = 30
//! [detectors.listoffsets_regression]
//! min_delta = 1
//! [[suppress]]
//! alert = "weak_acks"
//! client = "batch-*"
//! reason = "acks=1 by design"
//! [fleet]
//! cluster_cidrs = ["10.0.0.0/8"]
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use kwire_engine::detectors::DetectorConfig;
use kwire_engine::AnalysisLimits;
use kwire_engine::EngineConfig;

use crate::EngineArgs;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    pub ports: Vec<u16>,
    pub max_frame_bytes: Option<usize>,
    pub max_flows: Option<usize>,
    /// Bytes all connections may buffer together, in MiB (default 64).
    pub memory_budget_mb: Option<u64>,
    /// TLS key log file (NSS format) for replay, timeline and report (`--tls-keylog`).
    pub tls_keylog: Option<std::path::PathBuf>,
    pub limits: AnalysisLimits,
    pub detectors: DetectorConfig,
    /// OpenTelemetry export (`kwire_export::OtlpFileConfig`).
    pub otlp: kwire_export::OtlpFileConfig,
    /// `[[suppress]]` tables: alerts held back, counted in the summary.
    pub suppress: Vec<kwire_engine::analysis::suppress::SuppressRule>,
    /// The fleet rule (`kwire run` only; `kwire_engine::fleet`).
    pub fleet: FleetFile,
}

/// `[fleet]`: which connections this agent analyses when every node runs one.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FleetFile {
    /// The cluster's networks (pods, services, nodes). Empty: the rule is off.
    pub cluster_cidrs: Vec<String>,
    /// Networks of this node besides its interfaces' addresses (e.g. its pod CIDR).
    pub node_cidrs: Vec<String>,
}

/// The `[fleet]` section of the config file (defaults without a file).
pub fn fleet_config(path: Option<&Path>) -> Result<FleetFile, String> {
    Ok(match path {
        Some(p) => load(p)?.fleet,
        None => Default::default(),
    })
}

/// The `[otlp]` section of the config file (defaults without a file).
pub fn otlp_config(path: Option<&Path>) -> Result<kwire_export::OtlpFileConfig, String> {
    Ok(match path {
        Some(p) => load(p)?.otlp,
        None => Default::default(),
    })
}

pub fn load(path: &Path) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read config: {e}", path.display()))?;
    let cfg: FileConfig = toml::from_str(&text).map_err(|e| {
        format!(
            "{}: invalid config: {}",
            path.display(),
            e.to_string().trim()
        )
    })?;
    kwire_engine::analysis::suppress::validate(&cfg.suppress)
        .map_err(|e| format!("{}: invalid config: {e}", path.display()))?;
    Ok(cfg)
}

/// The engine configuration from defaults, the config file, then flags/env. `tls_keylog` is the
/// `--tls-keylog` of a replay (a config file's `tls_keylog` applies when it is None).
pub fn engine_config(
    args: &EngineArgs,
    tls_keylog: Option<&PathBuf>,
) -> Result<EngineConfig, String> {
    let file = match &args.config {
        Some(p) => load(p)?,
        None => FileConfig::default(),
    };
    let ports = if args.ports.is_empty() {
        file.ports
    } else {
        args.ports.clone()
    };
    let mut cfg = EngineConfig {
        ports,
        limits: file.limits,
        detectors: file.detectors,
        suppress: file.suppress,
        ..EngineConfig::default()
    };
    if let Some(m) = args.max_frame_bytes.or(file.max_frame_bytes) {
        cfg.kafka.max_frame_bytes = m;
    }
    if let Some(m) = args.max_flows.or(file.max_flows) {
        cfg.flows.max_flows = m.max(1);
    }
    if let Some(m) = args.memory_budget_mb.or(file.memory_budget_mb) {
        cfg.memory_budget_bytes = m.max(1).saturating_mul(1024 * 1024);
    }
    if let Some(p) = tls_keylog.or(file.tls_keylog.as_ref()) {
        cfg.tls_keys = Some(std::sync::Arc::new(read_keylog(p)?));
    }
    Ok(cfg)
}

/// Reads a TLS key log. Errors name the file, never its content (it holds secrets).
pub fn read_keylog(path: &Path) -> Result<kwire_tls::KeyLog, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("{}: cannot read TLS key log: {}", path.display(), e.kind()))?;
    let keys = kwire_tls::KeyLog::parse(&String::from_utf8_lossy(&bytes));
    if keys.is_empty() {
        return Err(format!(
            "{}: no TLS secrets in this file (expected NSS key log lines such as \
             CLIENT_RANDOM or CLIENT_TRAFFIC_SECRET_0, as SSLKEYLOGFILE writes them)",
            path.display()
        ));
    }
    Ok(keys)
}
