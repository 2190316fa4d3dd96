//! `offset_reset_jump`: after OFFSET_OUT_OF_RANGE a consumer resumes fetching further ahead
//! (auto.offset.reset=latest, or to a log start that moved): the records between the offset it wanted and
//! where it resumed are skipped. Quiet when it resumes at or before the offset it wanted (reprocessing, not
//! loss). `warning`. One incident per (client, partition) while resets keep coming; each reset is a line.

use kwire_flow::Timestamp;

use crate::analysis::detectors::Threshold;
use crate::analysis::incident::{Condition, Harm, IncidentKey};
use crate::model::ConnCtx;
use crate::model::{ClientKey, Tp};
use crate::output::alert::{Alert, AlertKind, Severity};

// The detector's inputs, each a different fact (threshold, the two offsets and times, where, who).
#[allow(clippy::too_many_arguments)]
pub fn check(
    cfg: &Threshold,
    wanted: i64,
    wanted_ts: Timestamp,
    resumed: i64,
    ts: Timestamp,
    tp: &Tp,
    ctx: &ConnCtx,
    client_id: Option<&str>,
) -> Option<Alert> {
    let skipped = resumed.saturating_sub(wanted);
    if !cfg.enabled || skipped < cfg.min_delta.max(1) {
        return None;
    }
    Some(
        Alert::new(
            AlertKind::OffsetResetJump,
            Severity::Warning,
            ts,
            format!(
                "{tp}: offset {wanted} was out of range and the consumer jumped ahead to {resumed}: {skipped} records skipped"
            ),
        )
        .on(ctx, client_id)
        .tp(tp)
        .field("out_of_range_offset", wanted)
        .field("out_of_range_ts", wanted_ts.to_rfc3339())
        .field("resumed_offset", resumed)
        .field("skipped", skipped),
    )
}

/// The incident: one client's resets on one partition.
pub fn condition(client: &ClientKey, tp: &Tp) -> Condition {
    Condition {
        key: IncidentKey::new(
            AlertKind::OffsetResetJump,
            format!(
                "client={:?}@{} topic={:?} partition={}",
                client.client_id, client.host, tp.topic, tp.partition
            ),
        ),
        harm: Harm::New,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{ctx, t};

    #[test]
    fn fires_forward_quiet_backward() {
        let tp = Tp::new("t", 0);
        let a = check(
            &Threshold::default(),
            100,
            t(1),
            250,
            t(2),
            &tp,
            &ctx(),
            Some("c"),
        )
        .unwrap();
        assert_eq!(a.fields["skipped"], 150);
        assert!(check(
            &Threshold::default(),
            100,
            t(1),
            0,
            t(2),
            &tp,
            &ctx(),
            Some("c")
        )
        .is_none());
        assert!(check(
            &Threshold::default(),
            100,
            t(1),
            100,
            t(2),
            &tp,
            &ctx(),
            Some("c")
        )
        .is_none());
    }

    /// Found by the `engine_packets` fuzzer (`fuzz/regressions/engine_packets/offset-reset-jump-overflow`):
    /// the fetch offsets are wire values, `resumed - wanted` overflowed.
    #[test]
    fn extreme_offsets_saturate() {
        let tp = Tp::new("t", 0);
        let check = |wanted, resumed| {
            check(
                &Threshold::default(),
                wanted,
                t(1),
                resumed,
                t(2),
                &tp,
                &ctx(),
                Some("c"),
            )
        };
        let a = check(i64::MIN, i64::MAX).unwrap();
        assert_eq!(a.fields["skipped"], i64::MAX);
        assert!(check(i64::MAX, i64::MIN).is_none());
    }
}
