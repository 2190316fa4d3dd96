//! Detectors: one file per alert kind. Each is a small deterministic function of the analysis state at the
//! moment of an exchange (or at the end of input), configured by [`DetectorConfig`] and tested both ways
//! (one case that fires, one that stays quiet). Detectors see decoded exchanges and state, never bytes.

pub mod acknowledged_then_lost;
pub mod commit_after_revoke;
pub mod commit_ahead_of_fetch;
pub mod committed_offset_regression;
pub mod listoffsets_regression;
pub mod log_truncated;
pub mod offset_reset_jump;
pub mod produce_rejected;
pub mod stale_owner_commit;
pub mod weak_acks;

use serde::Deserialize;

use crate::analysis::incident::IncidentConfig;
use crate::output::alert::AlertKind;

/// On/off and thresholds for every detector (the `[detectors]` table of the config file).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorConfig {
    pub listoffsets_regression: Threshold,
    pub commit_after_revoke: Toggle,
    pub stale_owner_commit: Toggle,
    pub weak_acks: WeakAcksConfig,
    pub commit_ahead_of_fetch: Threshold,
    pub offset_reset_jump: Threshold,
    pub committed_offset_regression: Threshold,
    pub acknowledged_then_lost: Toggle,
    pub produce_rejected: ProduceRejectedConfig,
    pub log_truncated: Toggle,
    /// How repeated observations of one condition become one incident (`[detectors.incidents]`).
    pub incidents: IncidentConfig,
}

impl DetectorConfig {
    pub fn enabled(&self, k: AlertKind) -> bool {
        match k {
            AlertKind::ListOffsetsRegression => self.listoffsets_regression.enabled,
            AlertKind::CommitAfterRevoke => self.commit_after_revoke.enabled,
            AlertKind::StaleOwnerCommit => self.stale_owner_commit.enabled,
            AlertKind::WeakAcks => self.weak_acks.enabled,
            AlertKind::CommitAheadOfFetch => self.commit_ahead_of_fetch.enabled,
            AlertKind::OffsetResetJump => self.offset_reset_jump.enabled,
            AlertKind::CommittedOffsetRegression => self.committed_offset_regression.enabled,
            AlertKind::AcknowledgedThenLost => self.acknowledged_then_lost.enabled,
            AlertKind::ProduceRejected => self.produce_rejected.enabled,
            AlertKind::LogTruncated => self.log_truncated.enabled,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Toggle {
    pub enabled: bool,
}

impl Default for Toggle {
    fn default() -> Self {
        Toggle { enabled: true }
    }
}

/// A detector with a minimum size (offsets) below which it stays quiet.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Threshold {
    pub enabled: bool,
    /// Smallest difference in offsets that raises the alert. Default 1.
    pub min_delta: i64,
}

impl Default for Threshold {
    fn default() -> Self {
        Threshold {
            enabled: true,
            min_delta: 1,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WeakAcksConfig {
    pub enabled: bool,
    /// Alert on acks=0 producers. Default true.
    pub acks0: bool,
    /// Alert on acks=1 producers. Default true.
    pub acks1: bool,
    /// A leader change of a partition within this many seconds of weak-acks traffic to it makes the alert
    /// critical. Default 30.
    pub leader_change_window_s: u64,
    /// A producer's alert is raised this long (packet time) after its first weak-acks request, with the
    /// counts so far, or at the end of a replay if that comes first; raised again only if it later becomes
    /// critical. Default 60.
    pub report_after_s: u64,
}

impl Default for WeakAcksConfig {
    fn default() -> Self {
        WeakAcksConfig {
            enabled: true,
            acks0: true,
            acks1: true,
            leader_change_window_s: 30,
            report_after_s: 60,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ProduceRejectedConfig {
    pub enabled: bool,
    /// A batch refused (or never answered) is reported when it has not been acknowledged this long
    /// (packet time) after its last failed attempt; refused batches still waiting at the end of a replay
    /// are reported then (unanswered ones only when the capture went on that long after them: it may
    /// just have ended). Default 60.
    pub resend_window_s: u64,
}

impl Default for ProduceRejectedConfig {
    fn default() -> Self {
        ProduceRejectedConfig {
            enabled: true,
            resend_window_s: 60,
        }
    }
}
