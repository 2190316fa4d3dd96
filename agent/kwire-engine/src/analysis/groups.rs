//! Consumer groups as their members lived them: generations (classic protocol) or member epochs (KIP-848),
//! the assignor, each member's assignment, every revocation (when the member was told, when the revocation
//! was complete, who owns the partition next), and the group's committed offsets.
//!
//! A revocation is *told* when a member learns a partition is no longer its own: for an eager assignor when
//! it rejoins (it gives up everything before JoinGroup), for cooperative-sticky when a SyncGroup response
//! leaves the partition out, for KIP-848 when a heartbeat response's assignment leaves it out. It is
//! *complete* when the member has acted on it: it rejoined or moved to a later generation/epoch
//! (cooperative), acknowledged it in a heartbeat (KIP-848), or the partition was handed to another member.
//! Commits between told and complete are the recommended hand-off (the revoke callback) and stay quiet.
//!
//! Easy to get wrong: state changes when the member *sends* JoinGroup/heartbeat (request time), not when the
//! broker answers, and every comparison is by packet timestamps, never by processing order. Brokers check
//! only the generation of a commit, never ownership: that is exactly what we check here.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use rustc_hash::FxHashMap;

use kwire_flow::Timestamp;

use crate::model::ConnCtx;
use crate::model::Tp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebalanceProtocol {
    /// range, roundrobin, sticky: a member gives up all partitions when it rejoins.
    Eager,
    /// cooperative-sticky: only the partitions a SyncGroup takes away are given up.
    Cooperative,
    /// KIP-848 `consumer` protocol: assignments arrive in ConsumerGroupHeartbeat responses.
    Consumer,
}

#[derive(Debug, Clone)]
pub struct Revocation {
    pub told_ts: Timestamp,
    /// Generation or member epoch at which the member lost the partition.
    pub generation: i32,
    pub complete_ts: Option<Timestamp>,
    /// Who owns it now, when known.
    pub next_owner: Option<String>,
    /// The exchange whose answer told the member it lost the partition (SyncGroup, KIP-848 heartbeat);
    /// None when the member gave it up itself (eager rejoin, leave).
    pub told_by: Option<crate::output::alert::Evidence>,
}

#[derive(Debug, Clone)]
pub struct Member {
    pub member_id: String,
    pub client_id: Option<String>,
    pub ctx: Option<ConnCtx>,
    /// Generation (or member epoch) of the member's current assignment.
    pub generation: i32,
    pub assigned_ts: Option<Timestamp>,
    pub owned: BTreeSet<Tp>,
    pub revoked: BTreeMap<Tp, Revocation>,
    /// Last accepted commit per partition by this member.
    pub committed: BTreeMap<Tp, i64>,
}

impl Member {
    /// The member gives up everything it owns now (eager rejoin, LeaveGroup, KIP-848 leave): each
    /// revocation is told and complete at once.
    fn give_up_all(&mut self, ts: Timestamp, generation: i32) {
        for tp in std::mem::take(&mut self.owned) {
            self.revoked.insert(
                tp,
                Revocation {
                    told_ts: ts,
                    generation,
                    complete_ts: Some(ts),
                    next_owner: None,
                    told_by: None,
                },
            );
        }
    }

    fn new(member_id: &str) -> Self {
        Member {
            member_id: member_id.to_string(),
            client_id: None,
            ctx: None,
            generation: -1,
            assigned_ts: None,
            owned: BTreeSet::new(),
            revoked: BTreeMap::new(),
            committed: BTreeMap::new(),
        }
    }
}

/// Who the group's latest assignment gives a partition to.
#[derive(Debug, Clone)]
pub struct Owner {
    pub member_id: String,
    pub generation: i32,
    pub since: Timestamp,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub group_id: String,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub generation: i32,
    pub members: BTreeMap<String, Member>,
    pub owners: BTreeMap<Tp, Owner>,
    /// Last accepted committed offset per partition: (offset, member id, ts).
    pub committed: BTreeMap<Tp, (i64, String, Timestamp)>,
    pub kip848: bool,
}

impl Group {
    fn new(id: &str) -> Self {
        Group {
            group_id: id.to_string(),
            protocol_type: None,
            protocol_name: None,
            generation: -1,
            members: BTreeMap::new(),
            owners: BTreeMap::new(),
            committed: BTreeMap::new(),
            kip848: false,
        }
    }

    pub fn protocol(&self) -> RebalanceProtocol {
        if self.kip848 {
            return RebalanceProtocol::Consumer;
        }
        match self.protocol_name.as_deref() {
            Some(n) if n.contains("cooperative") => RebalanceProtocol::Cooperative,
            _ => RebalanceProtocol::Eager,
        }
    }
}

/// All groups, bounded.
#[derive(Debug, Default)]
pub struct Groups {
    groups: BTreeMap<String, Group>,
    max_groups: usize,
    max_members: usize,
    pub dropped: u64,
    /// client id -> host -> how many members of each group joined with that id from that host: what
    /// [`Groups::group_of_client`] answers from (it runs per Fetch; scanning every member of every group
    /// was O(groups x members) each time). Kept as members' client ids and connections are set; bounded
    /// by the member tables (one count per member at most).
    /// FxHash like every engine table: no per-process random seed, so a run does the same work each time.
    by_client: FxHashMap<String, FxHashMap<IpAddr, BTreeMap<String, u32>>>,
}

/// The (host, client id) a member is indexed under, when both are known.
fn client_of(m: &Member) -> Option<(IpAddr, String)> {
    Some((m.ctx.as_ref()?.client.ip, m.client_id.clone()?))
}

impl Groups {
    pub fn new(max_groups: usize, max_members: usize) -> Self {
        Groups {
            groups: BTreeMap::new(),
            max_groups,
            max_members,
            dropped: 0,
            by_client: FxHashMap::default(),
        }
    }

    /// A member of `group` moved from `old` to `new` (host, client id) in the index.
    fn reindex(
        &mut self,
        group: &str,
        old: Option<(IpAddr, String)>,
        new: Option<(IpAddr, String)>,
    ) {
        if old == new {
            return;
        }
        if let Some((ip, id)) = old {
            if let Some(hosts) = self.by_client.get_mut(&id) {
                if let Some(groups) = hosts.get_mut(&ip) {
                    if let Some(n) = groups.get_mut(group) {
                        *n -= 1;
                        if *n == 0 {
                            groups.remove(group);
                        }
                    }
                    if groups.is_empty() {
                        hosts.remove(&ip);
                    }
                }
                if hosts.is_empty() {
                    self.by_client.remove(&id);
                }
            }
        }
        if let Some((ip, id)) = new {
            *self
                .by_client
                .entry(id)
                .or_default()
                .entry(ip)
                .or_default()
                .entry(group.to_string())
                .or_insert(0) += 1;
        }
    }

    pub fn get(&self, group: &str) -> Option<&Group> {
        self.groups.get(group)
    }

    /// The one group a consumer belongs to, found by its client id and host (the address of the
    /// connection it joined the group on): a consumer fetches on other connections than the one to its
    /// coordinator, so this is how a Fetch learns its group. None when no member matches or when members
    /// of two different groups do (the same client id on one host in two groups is ambiguous). Two hash
    /// lookups (the `by_client` index); called only when exchange facts are on.
    pub fn group_of_client(&self, client_ip: IpAddr, client_id: &str) -> Option<&str> {
        let groups = self.by_client.get(client_id)?.get(&client_ip)?;
        match (groups.len(), groups.keys().next()) {
            (1, Some(g)) => Some(g.as_str()),
            _ => None,
        }
    }

    pub fn group_mut(&mut self, group: &str) -> Option<&mut Group> {
        if !self.groups.contains_key(group) {
            if self.groups.len() >= self.max_groups {
                self.dropped += 1;
                return None;
            }
            self.groups.insert(group.to_string(), Group::new(group));
        }
        self.groups.get_mut(group)
    }

    fn member_mut<'a>(
        g: &'a mut Group,
        max: usize,
        dropped: &mut u64,
        member_id: &str,
    ) -> Option<&'a mut Member> {
        if member_id.is_empty() {
            return None;
        }
        if !g.members.contains_key(member_id) {
            if g.members.len() >= max {
                *dropped += 1;
                return None;
            }
            g.members
                .insert(member_id.to_string(), Member::new(member_id));
        }
        g.members.get_mut(member_id)
    }

    /// A member sent JoinGroup (rejoining when `member_id` is set).
    pub fn on_join_request(
        &mut self,
        ts: Timestamp,
        group: &str,
        member_id: &str,
        protocol_type: &str,
    ) {
        let (max, mut dropped) = (self.max_members, 0);
        let Some(g) = self.group_mut(group) else {
            return;
        };
        if !protocol_type.is_empty() {
            g.protocol_type = Some(protocol_type.to_string());
        }
        let proto = g.protocol();
        let generation = g.generation;
        if let Some(m) = Self::member_mut(g, max, &mut dropped, member_id) {
            match proto {
                RebalanceProtocol::Eager => {
                    // An eager member gives up everything before it rejoins: told and complete now.
                    m.give_up_all(ts, generation);
                }
                RebalanceProtocol::Cooperative | RebalanceProtocol::Consumer => {
                    for r in m.revoked.values_mut() {
                        r.complete_ts.get_or_insert(ts);
                    }
                }
            }
        }
        self.dropped += dropped;
    }

    /// JoinGroup answered: generation, assignor, member id ↔ client.
    pub fn on_join_response(
        &mut self,
        group: &str,
        generation: i32,
        protocol_name: Option<&str>,
        member_id: &str,
        ctx: &ConnCtx,
        client_id: Option<&str>,
    ) {
        let (max, mut dropped) = (self.max_members, 0);
        let Some(g) = self.group_mut(group) else {
            return;
        };
        if generation > g.generation {
            g.generation = generation;
        }
        if let Some(p) = protocol_name.filter(|p| !p.is_empty()) {
            g.protocol_name = Some(p.to_string());
        }
        let mut moved = None;
        if let Some(m) = Self::member_mut(g, max, &mut dropped, member_id) {
            let old = client_of(m);
            m.ctx = Some(ctx.clone());
            m.client_id = client_id.map(str::to_string);
            moved = Some((old, client_of(m)));
        }
        self.dropped += dropped;
        if let Some((old, new)) = moved {
            self.reindex(group, old, new);
        }
    }

    /// A member received its assignment (SyncGroup response, or KIP-848 heartbeat response with one).
    // Each argument is one fact of the answer; a struct would only restate them at the two call sites.
    #[allow(clippy::too_many_arguments)]
    pub fn on_assignment(
        &mut self,
        ts: Timestamp,
        group: &str,
        member_id: &str,
        generation: i32,
        assigned: BTreeSet<Tp>,
        ctx: &ConnCtx,
        client_id: Option<&str>,
        told_by: Option<crate::model::XRef>,
    ) {
        let (max, mut dropped) = (self.max_members, 0);
        let Some(g) = self.group_mut(group) else {
            return;
        };
        if generation > g.generation {
            g.generation = generation;
        }
        let Some(m) = Self::member_mut(g, max, &mut dropped, member_id) else {
            self.dropped += dropped;
            return;
        };
        let old = client_of(m);
        m.ctx = Some(ctx.clone());
        if client_id.is_some() {
            m.client_id = client_id.map(str::to_string);
        }
        let new = client_of(m);
        let lost: Vec<Tp> = m.owned.difference(&assigned).cloned().collect();
        for tp in lost {
            m.revoked.insert(
                tp,
                Revocation {
                    told_ts: ts,
                    generation,
                    complete_ts: None,
                    next_owner: None,
                    told_by: told_by.map(|xref| crate::output::alert::Evidence {
                        role: "revocation",
                        conn: ctx.id,
                        broker: ctx.broker,
                        xref,
                        offset: None,
                    }),
                },
            );
        }
        for tp in &assigned {
            m.revoked.remove(tp);
        }
        m.owned = assigned.clone();
        m.generation = generation;
        m.assigned_ts = Some(ts);
        // Hand-over: whoever had these partitions has now completed its revocation.
        for tp in &assigned {
            for (id, other) in g.members.iter_mut() {
                if id == member_id {
                    continue;
                }
                if let Some(r) = other.revoked.get_mut(tp) {
                    r.complete_ts.get_or_insert(ts);
                    r.next_owner = Some(member_id.to_string());
                }
            }
            g.owners.insert(
                tp.clone(),
                Owner {
                    member_id: member_id.to_string(),
                    generation,
                    since: ts,
                },
            );
        }
        self.dropped += dropped;
        self.reindex(group, old, new);
    }

    /// KIP-848: a member's heartbeat request lists the partitions it still owns (None = unchanged).
    pub fn on_heartbeat_owned(
        &mut self,
        ts: Timestamp,
        group: &str,
        member_id: &str,
        epoch: i32,
        owned: Option<&BTreeSet<Tp>>,
    ) {
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        g.kip848 = true;
        let Some(m) = g.members.get_mut(member_id) else {
            return;
        };
        for (tp, r) in m.revoked.iter_mut() {
            let acked = owned.is_some_and(|o| !o.contains(tp)) || epoch < 0;
            if acked {
                r.complete_ts.get_or_insert(ts);
            }
        }
        if epoch < 0 {
            // Leaving the group: everything it owned is given up now.
            m.give_up_all(ts, epoch);
        }
    }

    pub fn mark_kip848(&mut self, group: &str) {
        if let Some(g) = self.group_mut(group) {
            g.kip848 = true;
        }
    }

    /// A member left (LeaveGroup sent).
    pub fn on_leave(&mut self, ts: Timestamp, group: &str, member_id: &str) {
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        let generation = g.generation;
        let Some(m) = g.members.get_mut(member_id) else {
            return;
        };
        m.give_up_all(ts, generation);
    }

    /// Records an accepted commit; returns the group's previous committed offset for the partition.
    pub fn on_commit_accepted(
        &mut self,
        ts: Timestamp,
        group: &str,
        member_id: &str,
        tp: &Tp,
        offset: i64,
    ) -> Option<(i64, String, Timestamp)> {
        let g = self.group_mut(group)?;
        if let Some(m) = g.members.get_mut(member_id) {
            m.committed.insert(tp.clone(), offset);
        }
        g.committed
            .insert(tp.clone(), (offset, member_id.to_string(), ts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{ctx, t};

    /// What `group_of_client` answered before the index: a scan of every member of every group.
    fn scan<'a>(g: &'a Groups, ip: IpAddr, id: &str) -> Option<&'a str> {
        let mut found: Option<&str> = None;
        for grp in g.groups.values() {
            let member = grp.members.values().any(|m| {
                m.client_id.as_deref() == Some(id)
                    && m.ctx.as_ref().is_some_and(|c| c.client.ip == ip)
            });
            if member {
                match found {
                    Some(f) if f != grp.group_id => return None,
                    _ => found = Some(&grp.group_id),
                }
            }
        }
        found
    }

    #[test]
    fn group_of_client_follows_members_as_they_join_move_and_share_ids() {
        let mut g = Groups::new(10, 10);
        let here = ctx();
        let mut there = ctx();
        there.client.ip = "10.0.0.9".parse().unwrap();
        let (ip, ip2) = (here.client.ip, there.client.ip);
        let check = |g: &Groups, expect: [Option<&str>; 3]| {
            let got = [
                g.group_of_client(ip, "c1"),
                g.group_of_client(ip2, "c1"),
                g.group_of_client(ip, "c2"),
            ];
            assert_eq!(got, expect);
            assert_eq!(
                got,
                [scan(g, ip, "c1"), scan(g, ip2, "c1"), scan(g, ip, "c2")]
            );
        };
        check(&g, [None, None, None]);
        g.on_join_response("orders", 1, Some("range"), "m1", &here, Some("c1"));
        check(&g, [Some("orders"), None, None]);
        // A second member of the same group with the same id and host: still that one group.
        g.on_join_response("orders", 1, Some("range"), "m2", &here, Some("c1"));
        check(&g, [Some("orders"), None, None]);
        // The same id and host in another group: ambiguous.
        g.on_join_response("audit", 1, Some("range"), "a1", &here, Some("c1"));
        check(&g, [None, None, None]);
        // That member moves to another host (its SyncGroup came from there): unambiguous again here.
        g.on_assignment(
            t(5),
            "audit",
            "a1",
            1,
            BTreeSet::new(),
            &there,
            Some("c1"),
            None,
        );
        check(&g, [Some("orders"), Some("audit"), None]);
        // A member whose client id changes leaves the old id's entry.
        g.on_join_response("orders", 2, Some("range"), "m1", &here, Some("c2"));
        g.on_join_response("orders", 2, Some("range"), "m2", &here, Some("c2"));
        check(&g, [None, Some("audit"), Some("orders")]);
        assert!(!g.by_client.contains_key("c1") || !g.by_client["c1"].contains_key(&ip));
    }
}
