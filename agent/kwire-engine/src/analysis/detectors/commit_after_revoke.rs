//! `commit_after_revoke`: a group member commits an offset for a partition a rebalance took from it, after
//! the revocation was complete (it rejoined, moved to a later generation/epoch, acknowledged the revoke, or
//! the partition went to another member). The commit made in a cooperative revoke callback — after the
//! SyncGroup that drops the partition, before the member rejoins and before anyone else owns it — is the
//! recommended hand-off and stays quiet. `critical` when the broker accepted it (brokers check the
//! generation, never ownership, so a stale commit silently rewinds or skips the new owner's progress);
//! `info` when the broker rejected it.
//!
//! Every late commit is an occurrence of one incident per (group, member, partition, revocation): an
//! alert line of its own when it does new harm — it moved the group's committed offset, or committed
//! another offset, or the broker answered differently — and counted only when it repeats the last line
//! (the same offset again, nothing changed since). A commit below the new owner's committed offset (or,
//! before it committed, its served end) says by how many records it rewinds it (`records_reread`); one
//! beyond everything the new owner was served says how many it skips (`records_skipped`).
//!
//! Easy to get wrong: the harm is judged against the group's committed offset *before* this commit
//! (the caller records the commit afterwards); a rejected commit changes nothing, so it rewinds and
//! skips nothing.

use crate::analysis::groups::Group;
use crate::analysis::incident::{Condition, Harm, IncidentKey};
use crate::model::ConnCtx;
use crate::model::{Commit, Tp};
use crate::output::alert::{ts_value, Alert, AlertKind, Severity};

/// The new owner's progress, looked up by the caller: (last committed, last served end).
pub type OwnerProgress = (Option<i64>, Option<i64>);

pub fn check(
    g: &Group,
    c: &Commit<'_>,
    ctx: &ConnCtx,
    client_id: Option<&str>,
    owner_progress: impl Fn(&str, &Tp) -> OwnerProgress,
) -> Option<Alert> {
    let m = g.members.get(c.member_id)?;
    if m.owned.contains(c.tp) {
        return None;
    }
    let r = m.revoked.get(c.tp)?;
    let complete = r.complete_ts.filter(|t| *t <= c.ts)?;
    let accepted = c.error_code == Some(0);
    let sev = if accepted {
        Severity::Critical
    } else {
        Severity::Info
    };
    let next = r.next_owner.clone().or_else(|| {
        g.owners
            .get(c.tp)
            .filter(|o| o.member_id != c.member_id)
            .map(|o| o.member_id.clone())
    });
    let verdict = match c.error_code {
        Some(0) => {
            "the broker ACCEPTED it (brokers check the generation, not ownership)".to_string()
        }
        Some(e) => format!(
            "the broker rejected it ({})",
            kwire_kafka::body::error_name(e)
        ),
        None => "no response was seen".to_string(),
    };
    let progress = next.as_deref().map(|n| (n, owner_progress(n, c.tp)));
    // What the accepted commit does to the new owner's progress: rewinds its committed offset (or, before
    // it committed, its served end), or skips beyond everything it was served.
    let (mut reread, mut skipped) = (None, None);
    let mut effect = String::new();
    if let (true, Some((n, (committed, served)))) = (accepted, progress) {
        if let Some((what, p)) = committed
            .map(|p| ("committed offset", p))
            .or(served.map(|p| ("served end", p)))
            .filter(|(_, p)| c.offset < *p)
        {
            reread = Some(p.saturating_sub(c.offset));
            effect = format!(
                ": it rewinds the new owner {n}'s {what} {p}, {} records will be processed again",
                p.saturating_sub(c.offset)
            );
        } else if let Some(p) = committed.max(served).filter(|p| c.offset > *p) {
            skipped = Some(c.offset.saturating_sub(p));
            effect = format!(
                ": it is {} beyond everything the new owner {n} was served or committed ({p}), those records will be skipped",
                c.offset.saturating_sub(p)
            );
        }
    }
    let mut a = Alert::new(
        AlertKind::CommitAfterRevoke,
        sev,
        c.ts,
        format!(
            "group {}: member {} committed offset {} for {} which a rebalance had taken from it (revoked {}), {}{effect}",
            c.group,
            c.member_id,
            c.offset,
            c.tp,
            r.told_ts.to_rfc3339(),
            verdict
        ),
    )
    .on(ctx, client_id)
    .tp(c.tp)
    .field("group", c.group)
    .field("member_id", c.member_id)
    .field("generation", c.generation.map(serde_json::Value::from).unwrap_or(serde_json::Value::Null))
    .field("committed_offset", c.offset)
    .field("revoked_ts", r.told_ts.to_rfc3339())
    .field("revoked_generation", r.generation)
    .field("revocation_complete_ts", ts_value(Some(complete)))
    .field("new_owner", next.clone().map(serde_json::Value::from).unwrap_or(serde_json::Value::Null))
    .field(
        "new_owner_client_id",
        next.as_deref()
            .and_then(|n| g.members.get(n))
            .and_then(|m| m.client_id.clone()),
    )
    .field("broker_error_code", c.error_code.map(serde_json::Value::from).unwrap_or(serde_json::Value::Null))
    .field("accepted", accepted);
    if let Some((_, (committed, served))) = progress {
        a = a.field(
            "new_owner_committed_offset",
            committed
                .map(serde_json::Value::from)
                .unwrap_or(serde_json::Value::Null),
        );
        a = a.field(
            "new_owner_served_offset",
            served
                .map(serde_json::Value::from)
                .unwrap_or(serde_json::Value::Null),
        );
    }
    if let Some(n) = reread {
        a = a.field("records_reread", n);
    }
    if let Some(n) = skipped {
        a = a.field("records_skipped", n);
    }
    // The answer that told the member it lost the partition (the late commit is the trigger).
    if let Some(e) = r.told_by {
        a = a.evidence(e);
    }
    Some(a)
}

/// The incident of a late commit: one per (group, member, partition, revocation).
pub fn condition(g: &Group, c: &Commit<'_>) -> Condition {
    let revoked = g
        .members
        .get(c.member_id)
        .and_then(|m| m.revoked.get(c.tp))
        .map(|r| r.told_ts.to_rfc3339())
        .unwrap_or_default();
    Condition {
        key: IncidentKey::new(
            AlertKind::CommitAfterRevoke,
            format!(
                "group={:?} member={:?} topic={:?} partition={} revoked_ts={revoked}",
                c.group, c.member_id, c.tp.topic, c.tp.partition
            ),
        ),
        harm: commit_harm(g, c),
    }
}

/// A late commit's harm: its offset, and whether the broker accepted it and it moved the group's
/// committed offset (compared before the commit is recorded). The same offset again, answered the same
/// way, moving nothing, is a repeat.
pub fn commit_harm(g: &Group, c: &Commit<'_>) -> Harm {
    let before = g.committed.get(c.tp).map(|(o, _, _)| *o);
    Harm::Commit {
        offset: c.offset,
        moved: c.error_code == Some(0) && before != Some(c.offset),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::analysis::groups::Groups;
    use crate::testutil::{alert_json, ctx, t};

    fn set(tps: &[(&str, i32)]) -> BTreeSet<Tp> {
        tps.iter().map(|(t, p)| Tp::new(t, *p)).collect()
    }

    fn coop_group() -> Groups {
        let mut gs = Groups::new(10, 10);
        let c = ctx();
        gs.on_join_response("g", 1, Some("cooperative-sticky"), "m1", &c, Some("c1"));
        gs.on_assignment(
            t(1),
            "g",
            "m1",
            1,
            set(&[("t", 0), ("t", 1)]),
            &c,
            Some("c1"),
            None,
        );
        // Rebalance: m1 keeps only t-0.
        gs.on_assignment(t(10), "g", "m1", 2, set(&[("t", 0)]), &c, Some("c1"), None);
        gs
    }

    fn commit<'a>(tp: &'a Tp, ts: i64, err: i16) -> Commit<'a> {
        Commit {
            ts: t(ts),
            group: "g",
            member_id: "m1",
            generation: Some(2),
            tp,
            offset: 42,
            error_code: Some(err),
        }
    }

    #[test]
    fn quiet_for_the_cooperative_hand_off_commit() {
        let gs = coop_group();
        let tp = Tp::new("t", 1);
        // Revoke callback commit: after the SyncGroup that dropped t-1, before rejoining.
        assert!(check(
            gs.get("g").unwrap(),
            &commit(&tp, 11, 0),
            &ctx(),
            Some("c1"),
            |_, _| (None, None)
        )
        .is_none());
        // And commits of partitions it still owns are quiet.
        let tp0 = Tp::new("t", 0);
        assert!(check(
            gs.get("g").unwrap(),
            &commit(&tp0, 30, 0),
            &ctx(),
            Some("c1"),
            |_, _| (None, None)
        )
        .is_none());
    }

    #[test]
    fn fires_after_rejoin_and_after_hand_over() {
        let mut gs = coop_group();
        gs.on_join_request(t(12), "g", "m1", "consumer");
        let tp = Tp::new("t", 1);
        let a = check(
            gs.get("g").unwrap(),
            &commit(&tp, 13, 0),
            &ctx(),
            Some("c1"),
            |_, _| (None, None),
        )
        .unwrap();
        assert_eq!(a.severity, Severity::Critical);
        assert_eq!(a.fields["committed_offset"], 42);
        assert_eq!(a.fields["accepted"], true);
        // The broker rejecting it makes it info.
        let a = check(
            gs.get("g").unwrap(),
            &commit(&tp, 13, 22),
            &ctx(),
            Some("c1"),
            |_, _| (None, None),
        )
        .unwrap();
        assert_eq!(a.severity, Severity::Info);

        let mut gs = coop_group();
        gs.on_assignment(
            t(11),
            "g",
            "m2",
            2,
            set(&[("t", 1)]),
            &ctx(),
            Some("c2"),
            None,
        );
        let a = check(
            gs.get("g").unwrap(),
            &commit(&tp, 12, 0),
            &ctx(),
            Some("c1"),
            |_, _| (Some(7), Some(9)),
        )
        .unwrap();
        assert_eq!(a.fields["new_owner"], "m2");
        assert_eq!(a.fields["new_owner_committed_offset"], 7);
        assert_eq!(a.fields["new_owner_served_offset"], 9);
    }

    #[test]
    fn eager_rejoin_completes_revocation_at_once() {
        let mut gs = Groups::new(10, 10);
        let c = ctx();
        gs.on_join_response("g", 1, Some("range"), "m1", &c, Some("c1"));
        gs.on_assignment(t(1), "g", "m1", 1, set(&[("t", 0)]), &c, Some("c1"), None);
        let tp = Tp::new("t", 0);
        // Commit in onPartitionsRevoked, before JoinGroup: quiet.
        assert!(check(
            gs.get("g").unwrap(),
            &commit(&tp, 5, 0),
            &c,
            None,
            |_, _| (None, None)
        )
        .is_none());
        gs.on_join_request(t(6), "g", "m1", "consumer");
        assert!(check(
            gs.get("g").unwrap(),
            &commit(&tp, 7, 27),
            &c,
            None,
            |_, _| (None, None)
        )
        .is_some());
    }

    /// The story: after the hand-over, m1 commits 6 (rewinding m2's 7), 6 again (nothing moves),
    /// then 5 after m2 committed 9, and a refused 5; and 12, beyond all m2 was served.
    #[test]
    fn each_late_commit_says_what_it_rewinds_or_skips_and_repeats_are_the_same_harm() {
        let mut gs = coop_group();
        gs.on_assignment(
            t(11),
            "g",
            "m2",
            2,
            set(&[("t", 1)]),
            &ctx(),
            Some("c2"),
            None,
        );
        let tp = Tp::new("t", 1);
        gs.on_commit_accepted(t(12), "g", "m2", &tp, 7);
        let late = |offset, err| Commit {
            offset,
            ..commit(&tp, 13, err)
        };
        let g = gs.get("g").unwrap();
        let a = check(g, &late(6, 0), &ctx(), Some("c1"), |_, _| {
            (Some(7), Some(7))
        })
        .unwrap();
        let j = alert_json(&a);
        assert_eq!(
            (&j["records_reread"], &j["new_owner_committed_offset"]),
            (&1.into(), &7.into())
        );
        assert!(j.get("records_skipped").is_none());
        assert!(j["explanation"]
            .as_str()
            .unwrap()
            .contains("1 records will be processed again"));
        assert_eq!(
            commit_harm(g, &late(6, 0)),
            Harm::Commit {
                offset: 6,
                moved: true
            }
        );
        // Recorded: the same 6 again moves nothing (a repeat for the incident).
        gs.on_commit_accepted(t(13), "g", "m1", &tp, 6);
        let g = gs.get("g").unwrap();
        assert_eq!(
            commit_harm(g, &late(6, 0)),
            Harm::Commit {
                offset: 6,
                moved: false
            }
        );
        // m2 moves on to 9; m1 commits 5: rewinds 9 by 4, and moves the committed offset.
        gs.on_commit_accepted(t(14), "g", "m2", &tp, 9);
        let g = gs.get("g").unwrap();
        let j =
            alert_json(&check(g, &late(5, 0), &ctx(), None, |_, _| (Some(9), Some(9))).unwrap());
        assert_eq!(j["records_reread"], 4);
        assert_eq!(
            commit_harm(g, &late(5, 0)),
            Harm::Commit {
                offset: 5,
                moved: true
            }
        );
        // Refused: info, nothing rewound, nothing moved.
        let a = check(g, &late(5, 22), &ctx(), None, |_, _| (Some(9), Some(9))).unwrap();
        assert_eq!(a.severity, Severity::Info);
        assert!(alert_json(&a).get("records_reread").is_none());
        assert_eq!(
            commit_harm(g, &late(5, 22)),
            Harm::Commit {
                offset: 5,
                moved: false
            }
        );
        // Beyond everything m2 was served or committed: skips.
        let j =
            alert_json(&check(g, &late(12, 0), &ctx(), None, |_, _| (Some(9), Some(10))).unwrap());
        assert_eq!(j["records_skipped"], 2);
        assert!(j.get("records_reread").is_none());
        // Before m2 committed anything, its served end is what is rewound.
        let j = alert_json(&check(g, &late(3, 0), &ctx(), None, |_, _| (None, Some(8))).unwrap());
        assert_eq!(j["records_reread"], 5);
        // One incident per revocation: the condition names the member, the partition and when it was told.
        let c = condition(g, &late(5, 0));
        assert_eq!(c.key.kind, AlertKind::CommitAfterRevoke);
        assert!(c.key.scope.contains("member=\"m1\"") && c.key.scope.contains("partition=1"));
        assert!(c.key.scope.contains(&t(10).to_rfc3339()));
    }
}
