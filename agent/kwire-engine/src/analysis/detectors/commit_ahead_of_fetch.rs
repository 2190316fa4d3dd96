//! `commit_ahead_of_fetch`: a consumer commits an offset beyond the end of what it was served for that
//! partition: the records in between were never delivered to it and are now skipped for the group.
//! Quiet when the client was never seen fetching the partition (we cannot know what it consumed), and when
//! the commit is at or below the served end. `warning`. One incident per (group, member, partition): a
//! commit that moved the group's committed offset or committed another offset is a line of its own, the
//! same offset again with nothing moved is counted.

use crate::analysis::detectors::commit_after_revoke::commit_harm;
use crate::analysis::detectors::Threshold;
use crate::analysis::groups::Group;
use crate::analysis::incident::{Condition, Harm, IncidentKey};
use crate::analysis::timeline::PartState;
use crate::model::Commit;
use crate::model::ConnCtx;
use crate::output::alert::{Alert, AlertKind, Evidence, Severity};

pub fn check(
    cfg: &Threshold,
    st: Option<&PartState>,
    c: &Commit<'_>,
    ctx: &ConnCtx,
    client_id: Option<&str>,
) -> Option<Alert> {
    let served = st?.served?;
    let skipped = c.offset.saturating_sub(served.offset);
    if !cfg.enabled || skipped < cfg.min_delta.max(1) {
        return None;
    }
    Some(
        Alert::new(
            AlertKind::CommitAheadOfFetch,
            Severity::Warning,
            c.ts,
            format!(
                "group {}: {} committed offset {} but was only served records up to {} (at {}): {} records skipped without being consumed",
                c.group,
                c.tp,
                c.offset,
                served.offset,
                served.ts.to_rfc3339(),
                skipped
            ),
        )
        .on(ctx, client_id)
        .tp(c.tp)
        .field("group", c.group)
        .field("member_id", c.member_id)
        .field("committed_offset", c.offset)
        .field("served_offset", served.offset)
        .field("served_ts", served.ts.to_rfc3339())
        .field("skipped", skipped)
        .field("accepted", c.error_code == Some(0))
        // The Fetch that served the last records before the commit.
        .evidence(Evidence::of_obs("served", &served)),
    )
}

/// The incident: one member committing ahead of what it was served on one partition (the group's state
/// before the commit is recorded; a group not tracked makes every commit a line).
pub fn condition(g: Option<&Group>, c: &Commit<'_>) -> Condition {
    Condition {
        key: IncidentKey::new(
            AlertKind::CommitAheadOfFetch,
            format!(
                "group={:?} member={:?} topic={:?} partition={}",
                c.group, c.member_id, c.tp.topic, c.tp.partition
            ),
        ),
        harm: g.map(|g| commit_harm(g, c)).unwrap_or(Harm::New),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::timeline::Source;
    use crate::model::Tp;
    use crate::testutil::{ctx, obs, t};

    #[test]
    fn fires_beyond_served_and_quiet_at_served() {
        let tp = Tp::new("t", 0);
        let mut st = PartState::default();
        st.raise_served(obs(100, 1, Source::Fetched));
        let c = |off| Commit {
            ts: t(2),
            group: "g",
            member_id: "m",
            generation: Some(1),
            tp: &tp,
            offset: off,
            error_code: Some(0),
        };
        assert!(check(&Threshold::default(), Some(&st), &c(100), &ctx(), None).is_none());
        assert!(check(&Threshold::default(), Some(&st), &c(90), &ctx(), None).is_none());
        let a = check(&Threshold::default(), Some(&st), &c(150), &ctx(), None).unwrap();
        assert_eq!(a.fields["skipped"], 50);
        // Never fetched: quiet.
        assert!(check(&Threshold::default(), None, &c(150), &ctx(), None).is_none());
    }

    /// Offsets are wire values: a hostile commit far from what was served saturates, never overflows.
    #[test]
    fn extreme_offsets_saturate() {
        let tp = Tp::new("t", 0);
        let mut st = PartState::default();
        st.raise_served(obs(-10, 1, Source::Fetched));
        let c = |off| Commit {
            ts: t(2),
            group: "g",
            member_id: "m",
            generation: Some(1),
            tp: &tp,
            offset: off,
            error_code: Some(0),
        };
        let a = check(&Threshold::default(), Some(&st), &c(i64::MAX), &ctx(), None).unwrap();
        assert_eq!(a.fields["skipped"], i64::MAX);
        assert!(check(&Threshold::default(), Some(&st), &c(i64::MIN), &ctx(), None).is_none());
    }
}
