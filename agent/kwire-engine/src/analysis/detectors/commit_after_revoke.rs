//! `commit_after_revoke`: a group member commits an offset for a partition a rebalance took from it, after
//! the revocation was complete (it rejoined, moved to a later generation/epoch, acknowledged the revoke, or
//! the partition went to another member). The commit made in a cooperative revoke callback — after the
//! SyncGroup that drops the partition, before the member rejoins and before anyone else owns it — is the
//! recommended hand-off and stays quiet. `critical` when the broker accepted it (brokers check the
//! generation, never ownership, so a stale commit silently rewinds or skips the new owner's progress);
//! `info` when the broker rejected it.

use crate::analysis::groups::Group;
use crate::model::{Commit, ConnCtx, Tp};
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
    let mut a = Alert::new(
        AlertKind::CommitAfterRevoke,
        sev,
        c.ts,
        format!(
            "group {}: member {} committed offset {} for {} which a rebalance had taken from it (revoked {}), {}",
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
    .field("broker_error_code", c.error_code.map(serde_json::Value::from).unwrap_or(serde_json::Value::Null))
    .field("accepted", accepted);
    if let Some(n) = &next {
        let (committed, served) = owner_progress(n, c.tp);
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
    Some(a)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::analysis::groups::Groups;
    use crate::testutil::{ctx, t};

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
        );
        // Rebalance: m1 keeps only t-0.
        gs.on_assignment(t(10), "g", "m1", 2, set(&[("t", 0)]), &c, Some("c1"));
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
        gs.on_assignment(t(11), "g", "m2", 2, set(&[("t", 1)]), &ctx(), Some("c2"));
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
        gs.on_assignment(t(1), "g", "m1", 1, set(&[("t", 0)]), &c, Some("c1"));
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
}
