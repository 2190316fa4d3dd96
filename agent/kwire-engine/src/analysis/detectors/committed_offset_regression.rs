//! `committed_offset_regression`: the group's committed offset for a partition moves backwards (an
//! accepted commit lower than the previous accepted one). The group will re-process those records: `info`
//! (a deliberate seek back does this too). One incident per (group, partition) while regressions keep
//! coming; every regression moved the committed offset, so each is a line of its own.

use crate::analysis::detectors::Threshold;
use crate::analysis::incident::{Condition, Harm, IncidentKey};
use crate::model::Commit;
use crate::model::ConnCtx;
use crate::output::alert::{Alert, AlertKind, Severity};
use kwire_flow::Timestamp;

pub fn check(
    cfg: &Threshold,
    previous: Option<&(i64, String, Timestamp)>,
    c: &Commit<'_>,
    ctx: &ConnCtx,
    client_id: Option<&str>,
) -> Option<Alert> {
    let (prev, prev_member, prev_ts) = previous?;
    let delta = prev.saturating_sub(c.offset);
    if !cfg.enabled || delta < cfg.min_delta.max(1) || c.offset < 0 {
        return None;
    }
    Some(
        Alert::new(
            AlertKind::CommittedOffsetRegression,
            Severity::Info,
            c.ts,
            format!(
                "group {}: committed offset of {} moved back from {} to {} ({} records will be processed again)",
                c.group, c.tp, prev, c.offset, delta
            ),
        )
        .on(ctx, client_id)
        .tp(c.tp)
        .field("group", c.group)
        .field("member_id", c.member_id)
        .field("previous_offset", *prev)
        .field("previous_member_id", prev_member.clone())
        .field("previous_ts", prev_ts.to_rfc3339())
        .field("committed_offset", c.offset)
        .field("delta", delta),
    )
}

/// The incident: the committed offset of one partition of one group going back.
pub fn condition(c: &Commit<'_>) -> Condition {
    Condition {
        key: IncidentKey::new(
            AlertKind::CommittedOffsetRegression,
            format!(
                "group={:?} topic={:?} partition={}",
                c.group, c.tp.topic, c.tp.partition
            ),
        ),
        harm: Harm::New,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Tp;
    use crate::testutil::{ctx, t};

    #[test]
    fn fires_backwards_quiet_forwards() {
        let tp = Tp::new("t", 0);
        let c = |off| Commit {
            ts: t(2),
            group: "g",
            member_id: "m",
            generation: Some(1),
            tp: &tp,
            offset: off,
            error_code: Some(0),
        };
        let prev = (100, "m0".to_string(), t(1));
        assert!(check(&Threshold::default(), Some(&prev), &c(100), &ctx(), None).is_none());
        assert!(check(&Threshold::default(), Some(&prev), &c(120), &ctx(), None).is_none());
        assert!(check(&Threshold::default(), None, &c(10), &ctx(), None).is_none());
        let a = check(&Threshold::default(), Some(&prev), &c(60), &ctx(), None).unwrap();
        assert_eq!(a.fields["delta"], 40);
        assert_eq!(a.severity, Severity::Info);
    }

    /// Offsets are wire values: a hostile previous commit far above saturates the delta, never overflows.
    #[test]
    fn extreme_offsets_saturate() {
        let tp = Tp::new("t", 0);
        let c = |off| Commit {
            ts: t(2),
            group: "g",
            member_id: "m",
            generation: Some(1),
            tp: &tp,
            offset: off,
            error_code: Some(0),
        };
        let prev = (i64::MAX, "m0".to_string(), t(1));
        // A negative commit is "no offset": quiet.
        assert!(check(&Threshold::default(), Some(&prev), &c(-1), &ctx(), None).is_none());
        let a = check(&Threshold::default(), Some(&prev), &c(0), &ctx(), None).unwrap();
        assert_eq!(a.fields["delta"], i64::MAX);
        let prev = (i64::MIN, "m0".to_string(), t(1));
        assert!(check(
            &Threshold::default(),
            Some(&prev),
            &c(i64::MAX),
            &ctx(),
            None
        )
        .is_none());
    }
}
