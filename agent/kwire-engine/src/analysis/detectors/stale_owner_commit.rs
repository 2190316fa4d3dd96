//! `stale_owner_commit`: a member commits a partition it still believes it owns (its last assignment has
//! it, no revoke ever reached it — e.g. its SyncGroups failed) while the group's current assignment gives it
//! to another member from a later generation: split brain. `critical` when the broker accepted it.
//! One incident per (group, member, partition, owner's generation); a commit is a line of its own when it
//! does new harm, as for `commit_after_revoke` (a zombie's auto-commit of the same offset is counted).

use crate::analysis::detectors::commit_after_revoke::commit_harm;
use crate::analysis::groups::Group;
use crate::analysis::incident::{Condition, IncidentKey};
use crate::model::Commit;
use crate::model::ConnCtx;
use crate::output::alert::{Alert, AlertKind, Severity};

pub fn check(g: &Group, c: &Commit<'_>, ctx: &ConnCtx, client_id: Option<&str>) -> Option<Alert> {
    let m = g.members.get(c.member_id)?;
    if !m.owned.contains(c.tp) {
        return None;
    }
    let owner = g.owners.get(c.tp)?;
    if owner.member_id == c.member_id || owner.generation <= m.generation || owner.since > c.ts {
        return None;
    }
    let accepted = c.error_code == Some(0);
    let sev = if accepted {
        Severity::Critical
    } else {
        Severity::Info
    };
    Some(
        Alert::new(
            AlertKind::StaleOwnerCommit,
            sev,
            c.ts,
            format!(
                "group {}: member {} (assignment of generation {}) committed {} for {}, which generation {} gives to {}: two members act as owner{}",
                c.group,
                c.member_id,
                m.generation,
                c.offset,
                c.tp,
                owner.generation,
                owner.member_id,
                if accepted { " and the broker accepted the stale commit" } else { "" }
            ),
        )
        .on(ctx, client_id)
        .tp(c.tp)
        .field("group", c.group)
        .field("member_id", c.member_id)
        .field("member_generation", m.generation)
        .field("committed_offset", c.offset)
        .field("current_owner", owner.member_id.clone())
        .field("current_generation", owner.generation)
        .field("broker_error_code", c.error_code.map(serde_json::Value::from).unwrap_or(serde_json::Value::Null))
        .field("accepted", accepted),
    )
}

/// The incident: one member committing one partition that another member's generation owns.
pub fn condition(g: &Group, c: &Commit<'_>) -> Condition {
    let owner = g.owners.get(c.tp).map(|o| o.generation).unwrap_or(-1);
    Condition {
        key: IncidentKey::new(
            AlertKind::StaleOwnerCommit,
            format!(
                "group={:?} member={:?} topic={:?} partition={} owner_generation={owner}",
                c.group, c.member_id, c.tp.topic, c.tp.partition
            ),
        ),
        harm: commit_harm(g, c),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::analysis::groups::Groups;
    use crate::model::Tp;
    use crate::testutil::{ctx, t};

    #[test]
    fn fires_on_split_brain_and_stays_quiet_for_the_owner() {
        let mut gs = Groups::new(10, 10);
        let c = ctx();
        let tp = Tp::new("t", 0);
        let one: BTreeSet<Tp> = [tp.clone()].into_iter().collect();
        gs.on_join_response("g", 1, Some("range"), "m1", &c, None);
        gs.on_assignment(t(1), "g", "m1", 1, one.clone(), &c, None, None);
        let commit = |member: &'static str, ts: i64| Commit {
            ts: t(ts),
            group: "g",
            member_id: member,
            generation: Some(1),
            tp: &tp,
            offset: 5,
            error_code: Some(0),
        };
        // The owner commits: quiet.
        assert!(check(gs.get("g").unwrap(), &commit("m1", 2), &c, None).is_none());
        // Generation 2 hands t-0 to m2; m1 never heard of it.
        gs.on_assignment(t(3), "g", "m2", 2, one, &c, None, None);
        let a = check(gs.get("g").unwrap(), &commit("m1", 4), &c, None).unwrap();
        assert_eq!(a.severity, Severity::Critical);
        assert_eq!(a.fields["current_owner"], "m2");
        // The new owner's own commit: quiet.
        assert!(check(gs.get("g").unwrap(), &commit("m2", 5), &c, None).is_none());
    }
}
