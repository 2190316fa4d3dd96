//! The analysis: decoded exchanges in, state (cluster, groups, per-client timelines) updated, alerts and
//! timeline rows out. Called by the engine for every exchange (at response time) and for group requests
//! at the moment they are sent.
//!
//! Why this file is long: `Analyzer` routes each decoded exchange, by API, to the cluster view, the groups,
//! the timelines and the detectors; the state lives in the submodules, the routing is read here in one place.
//!
//! Easy to get wrong: every check compares packet timestamps (a commit's request time against a
//! revocation's time), never the order in which exchanges complete; broker-to-broker traffic (Fetch with a
//! replica id) is not a client's timeline; topic ids are resolved through the cluster view.

pub mod cluster;
pub mod detectors;
pub mod facts;
pub mod groups;
pub mod incident;
#[cfg(test)]
mod loss_tests;
pub mod remediation;
pub mod suppress;
pub mod timeline;

use std::collections::{BTreeMap, BTreeSet};

use kwire_flow::Timestamp;
use kwire_kafka::body::{RequestBody, ResponseBody};
use kwire_kafka::{Decoded, Exchange, RequestSent};

use crate::analysis::cluster::Cluster;
use crate::analysis::detectors::acknowledged_then_lost::{self as acked, AckLedger, EndTold, Told};
use crate::analysis::detectors::commit_after_revoke;
use crate::analysis::detectors::produce_rejected::{self, ProduceRejects};
use crate::analysis::detectors::weak_acks::WeakAcks;
use crate::analysis::detectors::{
    commit_ahead_of_fetch, committed_offset_regression, listoffsets_regression, log_truncated,
    offset_reset_jump, stale_owner_commit, DetectorConfig,
};
use crate::analysis::groups::Groups;
use crate::analysis::incident::{Closed, Condition, Incidents};
use crate::analysis::timeline::{Obs, PartState, Series, Source, Timelines};
use crate::config::AnalysisLimits;
use crate::model::Commit;
use crate::model::ConnCtx;
use crate::model::{ClientKey, Name, Tp, XRef};
use crate::output::alert::{Alert, AlertKind, Evidence};
use crate::output::TimelineRecord;

/// What the analysis produces besides exchanges.
#[derive(Debug, Clone)]
pub enum Finding {
    Alert(Alert),
    Timeline(TimelineRecord),
    Group(crate::output::GroupEventRecord),
}

pub struct Analyzer {
    detectors: DetectorConfig,
    timeline_rows: bool,
    pub cluster: Cluster,
    pub groups: Groups,
    pub timelines: Timelines,
    /// The weak_acks detector's producers.
    pub weak: WeakAcks,
    /// The acknowledged_then_lost detector's acknowledged offsets and deletions.
    pub acked: AckLedger,
    /// The produce_rejected detector's batches waiting for an acknowledgement.
    pub rejects: ProduceRejects,
    /// Alerts raised per (kind, severity), for the summary.
    pub alert_counts: BTreeMap<(AlertKind, crate::output::alert::Severity), u64>,
    /// Repeated observations of one condition, told as one incident.
    pub incidents: Incidents,
    /// The `[[suppress]]` rules and what they held back.
    pub suppressions: suppress::Suppressions,
    /// Client software (name, version) each client announced in ApiVersions v3+, for the alerts'
    /// remediation; bounded by `max_clients` (past it not kept, counted in `software_dropped`).
    software: BTreeMap<ClientKey, (Name, Name)>,
    max_software: usize,
    pub software_dropped: u64,
    /// The exchange being analysed (observations and evidence name it).
    cur: XRef,
}

type Out<'a> = &'a mut dyn FnMut(Finding);

impl Analyzer {
    pub fn new(detectors: DetectorConfig, limits: &AnalysisLimits, timeline_rows: bool) -> Self {
        Analyzer {
            incidents: Incidents::new(detectors.incidents.clone()),
            detectors,
            timeline_rows,
            cluster: Cluster::new(limits.max_partitions),
            groups: Groups::new(limits.max_groups, limits.max_members_per_group),
            timelines: Timelines::new(limits.max_clients, limits.max_partitions_per_client),
            weak: WeakAcks::new(limits.max_weak_producers),
            acked: AckLedger::new(limits.max_acked_partitions),
            rejects: ProduceRejects::new(limits.max_rejected_batches),
            alert_counts: BTreeMap::new(),
            suppressions: suppress::Suppressions::default(),
            software: BTreeMap::new(),
            max_software: limits.max_clients,
            software_dropped: 0,
            cur: XRef::default(),
        }
    }

    /// Alerts matching one of `rules` are counted, not written.
    pub fn with_suppressions(mut self, rules: Vec<suppress::SuppressRule>) -> Self {
        self.suppressions = suppress::Suppressions::new(rules);
        self
    }

    /// An observation of `cond`: an alert line unless it repeats what its incident already said.
    fn alert(&mut self, a: Alert, cond: Condition, out: Out<'_>) {
        if !self.detectors.enabled(a.kind) {
            return;
        }
        if self.suppressions.suppress(&a) {
            return;
        }
        let Some(a) = self.incidents.observe(a, cond) else {
            return;
        };
        let a = self.advise(a);
        *self.alert_counts.entry((a.kind, a.severity)).or_insert(0) += 1;
        out(Finding::Alert(a));
    }

    /// What to do about an alert (`remediation`, library-specific when the client announced its
    /// software: `client_software`), and for end-of-log regressions the broker's role for the partition
    /// (`broker_role`: leader, follower, unknown) from the cluster view.
    fn advise(&self, mut a: Alert) -> Alert {
        let sw = a
            .client_id
            .clone()
            .zip(a.client)
            .and_then(|(client_id, ep)| {
                self.software.get(&ClientKey {
                    client_id,
                    host: ep.ip,
                })
            });
        if let Some((n, v)) = sw {
            a = a.field("client_software", format!("{n}/{v}"));
        }
        if a.kind == AlertKind::ListOffsetsRegression {
            if let (Some(b), Some(t), Some(p)) = (a.broker, a.topic.clone(), a.partition) {
                let role = self.broker_role(&Tp::of(&t, p), b);
                a = a.field("broker_role", role);
            }
        }
        let lib = remediation::Library::of(sw.map(|(n, _)| &**n));
        let text = remediation::remediation(a.kind, lib);
        a.field("remediation", text)
    }

    /// The software (name, version) each client announced in ApiVersions v3+, in client order.
    pub fn client_software(&self) -> impl Iterator<Item = (&ClientKey, &Name, &Name)> {
        self.software.iter().map(|(k, (n, v))| (k, n, v))
    }

    /// The role of the broker at `b` for `tp` as the cluster view knows it.
    fn broker_role(&self, tp: &Tp, b: kwire_flow::Endpoint) -> &'static str {
        let addr = b.to_string();
        let Some(leader) = self.cluster.leader(tp) else {
            return "unknown";
        };
        match self.cluster.brokers.get(&leader.id) {
            Some(l) if *l == addr => "leader",
            Some(_) if self.cluster.brokers.values().any(|x| *x == addr) => "follower",
            _ => "unknown",
        }
    }

    /// A client announced its software (ApiVersions v3+).
    fn note_software(&mut self, client: &ClientKey, v: &kwire_kafka::body::ApiVersionsRequest) {
        let Some(name) = v.client_software_name.as_deref() else {
            return;
        };
        if !self.software.contains_key(client) && self.software.len() >= self.max_software {
            self.software_dropped += 1;
            return;
        }
        let version = v.client_software_version.as_deref().unwrap_or_default();
        let entry = (
            self.cluster.names.get(name),
            self.cluster.names.get(version),
        );
        self.software.insert(client.clone(), entry);
    }

    /// The exchange being analysed as the evidence of a deliberate deletion.
    fn deletion_evidence(&self, ctx: &ConnCtx) -> Evidence {
        Evidence {
            role: "deletion",
            conn: ctx.id,
            broker: ctx.broker,
            xref: self.cur,
            offset: None,
        }
    }

    /// A timeline row, built only when rows were asked for (`kwire timeline`): the hot path never
    /// pays for a row nobody reads.
    fn row(&self, out: Out<'_>, build: impl FnOnce() -> TimelineRecord) {
        if self.timeline_rows {
            out(Finding::Timeline(build()));
        }
    }

    /// A group request at the moment it is sent.
    pub fn on_request_sent(&mut self, _ctx: &ConnCtx, r: &RequestSent) {
        match &r.body {
            RequestBody::JoinGroup(j) => {
                self.groups
                    .on_join_request(r.ts, &j.group_id, &j.member_id, &j.protocol_type)
            }
            RequestBody::LeaveGroup(l) => {
                if let Some(m) = &l.member_id {
                    self.groups.on_leave(r.ts, &l.group_id, m);
                }
                for m in &l.members {
                    self.groups.on_leave(r.ts, &l.group_id, &m.member_id);
                }
            }
            RequestBody::ConsumerGroupHeartbeat(h) => {
                self.groups.mark_kip848(&h.group_id);
                let owned: Option<BTreeSet<Tp>> = h.topic_partitions.as_ref().map(|tps| {
                    tps.iter()
                        .flat_map(|t| {
                            let topic = self.cluster.topic(t.name.as_deref(), t.topic_id.as_ref());
                            t.partitions.iter().map(move |p| Tp {
                                topic: topic.clone(),
                                partition: *p,
                            })
                        })
                        .collect()
                });
                self.groups.on_heartbeat_owned(
                    r.ts,
                    &h.group_id,
                    &h.member_id,
                    h.member_epoch,
                    owned.as_ref(),
                );
            }
            _ => {}
        }
    }

    /// A completed exchange (response received, or none will come).
    pub fn on_exchange(&mut self, ctx: &ConnCtx, x: &Exchange, out: Out<'_>) {
        let Decoded::Full(req) = &x.request.body else {
            return;
        };
        self.cur = XRef::of(x);
        let resp = x.response.as_ref().and_then(|r| r.body.full());
        let rts = x.response.as_ref().map(|r| r.ts).unwrap_or(x.request_ts);
        let client = ClientKey {
            client_id: self
                .cluster
                .names
                .get(x.request.client_id.as_deref().unwrap_or_default()),
            host: ctx.client.ip,
        };
        let cid = x.request.client_id.as_deref();
        if self.timeline_rows {
            if let Some(g) = self.group_event(ctx, x, req, resp, &client, rts) {
                out(Finding::Group(g));
            }
        }
        match (req, resp) {
            (_, Some(ResponseBody::Metadata(m))) => {
                if let Some(id) = m.cluster_id.as_deref() {
                    self.cluster.note_cluster_id(ctx.broker, id);
                }
                self.cluster.on_metadata(rts, m)
            }
            (RequestBody::Produce(p), resp) => self.on_produce(ctx, x, p, resp, cid, rts, out),
            (RequestBody::Fetch(f), Some(ResponseBody::Fetch(r))) => {
                self.on_fetch(ctx, x, f, r, &client, cid, rts, out)
            }
            (RequestBody::Fetch(f), None) => self.on_fetch_request(ctx, x, f, &client, cid, out),
            (RequestBody::ListOffsets(l), Some(ResponseBody::ListOffsets(r))) => {
                self.on_list_offsets(ctx, l, r, &client, cid, (x.request_ts, rts), out)
            }
            (RequestBody::OffsetForLeaderEpoch(q), Some(ResponseBody::OffsetForLeaderEpoch(r))) => {
                self.on_epoch_answer(ctx, q, r, &client, cid, (x.request_ts, rts), out)
            }
            (RequestBody::DeleteTopics(d), resp) => {
                for t in &d.topics {
                    let refused = match resp {
                        Some(ResponseBody::DeleteTopics(r)) => r.topics.iter().any(|rt| {
                            rt.name == t.name && rt.topic_id == t.topic_id && rt.error_code != 0
                        }),
                        _ => false,
                    };
                    if refused {
                        continue;
                    }
                    let topic = self.cluster.topic(t.name.as_deref(), t.topic_id.as_ref());
                    self.acked.on_deletion(acked::Deletion {
                        ts: x.request_ts,
                        topic,
                        records: None,
                        client_id: client.client_id.clone(),
                        client: ctx.client,
                        evidence: Some(self.deletion_evidence(ctx)),
                    });
                }
            }
            (RequestBody::DeleteRecords(d), _) => {
                for t in &d.topics {
                    let topic = self.cluster.names.get(&t.name);
                    for p in &t.partitions {
                        self.acked.on_deletion(acked::Deletion {
                            ts: x.request_ts,
                            topic: topic.clone(),
                            records: Some((p.partition, p.offset)),
                            client_id: client.client_id.clone(),
                            client: ctx.client,
                            evidence: Some(self.deletion_evidence(ctx)),
                        });
                    }
                }
            }
            (RequestBody::OffsetCommit(c), resp) => {
                let errors = commit_errors(&self.cluster, resp);
                let generation = c.generation_id_or_member_epoch;
                let member = c.member_id.clone().unwrap_or_default();
                for t in &c.topics {
                    let topic = self.cluster.topic(t.name.as_deref(), t.topic_id.as_ref());
                    for p in &t.partitions {
                        let tp = Tp {
                            topic: topic.clone(),
                            partition: p.partition,
                        };
                        let err = resp.map(|_| errors.get(&tp).copied().unwrap_or(0));
                        let commit = Commit {
                            ts: x.request_ts,
                            group: &c.group_id,
                            member_id: &member,
                            generation,
                            tp: &tp,
                            offset: p.committed_offset,
                            error_code: err,
                        };
                        self.on_commit(ctx, &client, cid, &commit, out);
                    }
                }
            }
            (RequestBody::TxnOffsetCommit(c), resp) => {
                let errors = commit_errors(&self.cluster, resp);
                let member = c.member_id.clone().unwrap_or_default();
                for t in &c.topics {
                    for p in &t.partitions {
                        let tp = Tp::new(&t.name, p.partition);
                        let err = resp.map(|_| errors.get(&tp).copied().unwrap_or(0));
                        let commit = Commit {
                            ts: x.request_ts,
                            group: &c.group_id,
                            member_id: &member,
                            generation: c.generation_id,
                            tp: &tp,
                            offset: p.committed_offset,
                            error_code: err,
                        };
                        self.on_commit(ctx, &client, cid, &commit, out);
                    }
                }
            }
            (RequestBody::OffsetFetch(_), Some(ResponseBody::OffsetFetch(r))) => {
                for g in &r.groups {
                    for t in &g.topics {
                        let topic = self.cluster.topic(t.name.as_deref(), t.topic_id.as_ref());
                        for p in &t.partitions {
                            if p.error_code == 0 && p.committed_offset >= 0 {
                                self.row(out, || {
                                    let tp = Tp::of(&topic, p.partition);
                                    let mut row = TimelineRecord::new(
                                        rts,
                                        &client.client_id,
                                        ctx,
                                        &tp,
                                        "offset_fetch",
                                        p.committed_offset,
                                    );
                                    row.group =
                                        g.group_id.as_deref().map(|g| self.cluster.names.get(g));
                                    row
                                });
                            }
                        }
                    }
                }
            }
            (RequestBody::ApiVersions(v), _) => self.note_software(&client, v),
            (RequestBody::JoinGroup(j), Some(ResponseBody::JoinGroup(r))) if r.error_code == 0 => {
                self.groups.on_join_response(
                    &j.group_id,
                    r.generation_id,
                    r.protocol_name.as_deref(),
                    &r.member_id,
                    ctx,
                    cid,
                );
            }
            (RequestBody::SyncGroup(s), Some(ResponseBody::SyncGroup(r))) if r.error_code == 0 => {
                let assigned: BTreeSet<Tp> = r
                    .assignment
                    .iter()
                    .flat_map(|a| a.partitions.iter())
                    .flat_map(|t| t.partitions.iter().map(move |p| Tp::new(&t.topic, *p)))
                    .collect();
                if r.assignment.is_some() || r.assignment_len == 0 {
                    self.groups.on_assignment(
                        rts,
                        &s.group_id,
                        &s.member_id,
                        s.generation_id,
                        assigned,
                        ctx,
                        cid,
                        Some(self.cur),
                    );
                }
            }
            (
                RequestBody::ConsumerGroupHeartbeat(h),
                Some(ResponseBody::ConsumerGroupHeartbeat(r)),
            ) if r.error_code == 0 => {
                self.groups.mark_kip848(&h.group_id);
                let member = r
                    .member_id
                    .clone()
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| h.member_id.clone());
                if let Some(a) = &r.assignment {
                    let assigned: BTreeSet<Tp> = a
                        .topic_partitions
                        .iter()
                        .flat_map(|t| {
                            let topic = self.cluster.topic(t.name.as_deref(), t.topic_id.as_ref());
                            t.partitions.iter().map(move |p| Tp {
                                topic: topic.clone(),
                                partition: *p,
                            })
                        })
                        .collect();
                    self.groups.on_assignment(
                        rts,
                        &h.group_id,
                        &member,
                        r.member_epoch,
                        assigned,
                        ctx,
                        cid,
                        Some(self.cur),
                    );
                }
            }
            _ => {}
        }
    }

    /// The group event an exchange is (`kwire timeline`), read before the exchange changes the group
    /// state: a sync's `revoked` are the partitions the member owned before and is not given again.
    fn group_event(
        &self,
        ctx: &ConnCtx,
        x: &Exchange,
        req: &RequestBody,
        resp: Option<&ResponseBody>,
        client: &ClientKey,
        rts: Timestamp,
    ) -> Option<crate::output::GroupEventRecord> {
        let err = |c: i16| (c != 0).then(|| kwire_kafka::body::error_name(c));
        let owned_before = |group: &str, member: &str| -> BTreeSet<Tp> {
            self.groups
                .get(group)
                .and_then(|g| g.members.get(member))
                .map(|m| m.owned.clone())
                .unwrap_or_default()
        };
        let mut ev = crate::output::GroupEventRecord {
            ts: rts,
            client_id: client.client_id.clone(),
            client: ctx.client,
            broker: ctx.broker,
            conn: ctx.id,
            group: self.cluster.names.get(""),
            what: "join",
            member_id: None,
            generation: None,
            protocol: None,
            assigned: Vec::new(),
            revoked: Vec::new(),
            error: None,
        };
        match (req, resp) {
            (RequestBody::JoinGroup(j), r) => {
                let r = match r {
                    Some(ResponseBody::JoinGroup(r)) => Some(r),
                    _ => None,
                };
                ev.ts = x.request_ts;
                ev.group = self.cluster.names.get(&j.group_id);
                let member = r
                    .map(|r| r.member_id.as_str())
                    .filter(|m| !m.is_empty())
                    .unwrap_or(&j.member_id);
                ev.member_id = Some(member.to_string()).filter(|m| !m.is_empty());
                ev.generation = r.filter(|r| r.error_code == 0).map(|r| r.generation_id);
                ev.protocol = r.and_then(|r| r.protocol_name.clone());
                ev.error = r.and_then(|r| err(r.error_code));
            }
            (RequestBody::SyncGroup(sg), r) => {
                let r = match r {
                    Some(ResponseBody::SyncGroup(r)) => Some(r),
                    _ => None,
                };
                ev.what = "sync";
                ev.group = self.cluster.names.get(&sg.group_id);
                ev.member_id = Some(sg.member_id.clone());
                ev.generation = Some(sg.generation_id);
                ev.error = r.and_then(|r| err(r.error_code));
                if let Some(r) = r.filter(|r| r.error_code == 0) {
                    let assigned: BTreeSet<Tp> = r
                        .assignment
                        .iter()
                        .flat_map(|a| a.partitions.iter())
                        .flat_map(|t| t.partitions.iter().map(move |p| Tp::new(&t.topic, *p)))
                        .collect();
                    let before = owned_before(&sg.group_id, &sg.member_id);
                    ev.revoked = before.difference(&assigned).cloned().collect();
                    ev.assigned = assigned.into_iter().collect();
                }
            }
            (RequestBody::LeaveGroup(l), r) => {
                ev.what = "leave";
                ev.ts = x.request_ts;
                ev.group = self.cluster.names.get(&l.group_id);
                let members: Vec<&str> = l
                    .member_id
                    .as_deref()
                    .into_iter()
                    .chain(l.members.iter().map(|m| m.member_id.as_str()))
                    .collect();
                // No `revoked`: the leave was applied when the request was sent.
                ev.member_id = Some(members.join(",")).filter(|m| !m.is_empty());
                ev.error = match r {
                    Some(ResponseBody::LeaveGroup(r)) => err(r.error_code),
                    _ => None,
                };
            }
            (RequestBody::Heartbeat(h), Some(ResponseBody::Heartbeat(r))) if r.error_code != 0 => {
                ev.what = "heartbeat";
                ev.group = self.cluster.names.get(&h.group_id);
                ev.member_id = Some(h.member_id.clone());
                ev.generation = Some(h.generation_id);
                ev.error = err(r.error_code);
            }
            (
                RequestBody::ConsumerGroupHeartbeat(h),
                Some(ResponseBody::ConsumerGroupHeartbeat(r)),
            ) if r.error_code != 0 || r.assignment.is_some() => {
                ev.what = if r.error_code != 0 {
                    "heartbeat"
                } else {
                    "assignment"
                };
                ev.group = self.cluster.names.get(&h.group_id);
                let member = r
                    .member_id
                    .clone()
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| h.member_id.clone());
                ev.generation = Some(if r.error_code == 0 {
                    r.member_epoch
                } else {
                    h.member_epoch
                });
                ev.error = err(r.error_code);
                if let Some(a) = r.assignment.as_ref().filter(|_| r.error_code == 0) {
                    let assigned: BTreeSet<Tp> = a
                        .topic_partitions
                        .iter()
                        .flat_map(|t| {
                            let topic = self.cluster.topic(t.name.as_deref(), t.topic_id.as_ref());
                            t.partitions.iter().map(move |p| Tp {
                                topic: topic.clone(),
                                partition: *p,
                            })
                        })
                        .collect();
                    let before = owned_before(&h.group_id, &member);
                    ev.revoked = before.difference(&assigned).cloned().collect();
                    ev.assigned = assigned.into_iter().collect();
                }
                ev.member_id = Some(member);
            }
            _ => return None,
        }
        Some(ev)
    }

    #[allow(clippy::too_many_arguments)]
    fn on_produce(
        &mut self,
        ctx: &ConnCtx,
        x: &Exchange,
        p: &kwire_kafka::body::ProduceRequest,
        resp: Option<&ResponseBody>,
        cid: Option<&str>,
        rts: Timestamp,
        out: Out<'_>,
    ) {
        let answer = match resp {
            Some(ResponseBody::Produce(r)) => Some(r),
            _ => None,
        };
        // Leader moves reported by the response.
        if let Some(r) = answer {
            for t in &r.topics {
                let topic = self.cluster.topic(t.name.as_deref(), t.topic_id.as_ref());
                for part in &t.partitions {
                    let tp = Tp {
                        topic: topic.clone(),
                        partition: part.partition,
                    };
                    self.cluster
                        .on_partition_error(&tp, rts, part.error_code, part.current_leader);
                    if part.error_code == 0 && part.base_offset >= 0 {
                        self.row(out, || {
                            let client_id = self.cluster.names.get(cid.unwrap_or_default());
                            TimelineRecord::new(
                                rts,
                                &client_id,
                                ctx,
                                &tp,
                                "produced",
                                part.base_offset,
                            )
                        });
                    }
                }
            }
        }
        let client_id = self.cluster.names.get(cid.unwrap_or_default());
        // What each partition's batches became: acknowledged (remembered), refused or unanswered
        // (watched until acknowledged). A response that did not decode tells nothing.
        let unanswered = x.response.is_none();
        if answer.is_some() || unanswered {
            let client = ClientKey {
                client_id: client_id.clone(),
                host: ctx.client.ip,
            };
            let mut losses = Vec::new();
            for t in &p.topics {
                let topic = self.cluster.topic(t.name.as_deref(), t.topic_id.as_ref());
                for part in &t.partitions {
                    let rp = answer.and_then(|r| {
                        r.topics
                            .iter()
                            .filter(|rt| rt.name == t.name && rt.topic_id == t.topic_id)
                            .flat_map(|rt| rt.partitions.iter())
                            .find(|rp| rp.partition == part.partition)
                    });
                    if answer.is_some() && rp.is_none() {
                        continue;
                    }
                    let tp = Tp::of(&topic, part.partition);
                    let outcome = produce_rejected::Outcome::of(rp.map(|rp| rp.error_code));
                    if outcome != produce_rejected::Outcome::Acknowledged
                        || !self.rejects.is_empty()
                    {
                        for b in part.batches.iter().filter(|b| !b.truncated) {
                            let id = produce_rejected::BatchId {
                                producer_id: b.producer_id,
                                base_sequence: b.base_sequence,
                                crc: b.crc,
                                record_count: b.record_count,
                                first_timestamp: b.first_timestamp,
                            };
                            self.rejects
                                .observe(&client, &tp, id, outcome, ctx, p.acks, rts, self.cur);
                        }
                    }
                    let Some(rp) = rp.filter(|rp| rp.error_code == 0 && p.acks != 0) else {
                        continue;
                    };
                    let records: i64 = part
                        .batches
                        .iter()
                        .map(|b| i64::from(b.record_count.max(0)))
                        .sum();
                    let Some(b0) = part.batches.first() else {
                        continue;
                    };
                    let ack = acked::Ack {
                        base_offset: rp.base_offset,
                        records,
                        who: acked::Producer {
                            client_id: client_id.clone(),
                            client: ctx.client,
                            acks: p.acks,
                            leader: ctx.broker,
                            epoch: self.cluster.leader(&tp).and_then(|l| l.epoch),
                            producer_id: b0.producer_id,
                            transactional: b0.transactional || p.transactional_id.is_some(),
                        },
                        base_sequence: b0.base_sequence,
                        request_ts: x.request_ts,
                        ts: rts,
                        evidence: Some(Evidence {
                            role: "acknowledged",
                            conn: ctx.id,
                            broker: ctx.broker,
                            xref: self.cur,
                            offset: Some(rp.base_offset),
                        }),
                    };
                    let cluster = &self.cluster;
                    let same = |a, b| same_cluster(cluster, a, b);
                    if let Some(l) = self.acked.on_ack(&tp, ack, same) {
                        losses.push(l);
                    }
                }
            }
            for l in losses {
                let cond = acked::condition(&l);
                self.alert(acked::alert(&l), cond, out);
            }
        }
        if p.acks != 0 && p.acks != 1 {
            return;
        }
        for t in &p.topics {
            let topic = self.cluster.topic(t.name.as_deref(), t.topic_id.as_ref());
            self.weak
                .observe(ctx, cid, &client_id, topic, p, t, x.request_ts, self.cur);
        }
    }

    /// An end of log told for `tp` by the broker at `ctx.broker`: acknowledged records below it gone?
    #[allow(clippy::too_many_arguments)]
    fn told_end(
        &mut self,
        ctx: &ConnCtx,
        client: &ClientKey,
        tp: &Tp,
        end: i64,
        source: Told,
        committed_series: bool,
        epoch: Option<i32>,
        (request_ts, rts): (Timestamp, Timestamp),
        out: Out<'_>,
    ) {
        let cluster = &self.cluster;
        let told = || EndTold {
            end,
            source,
            committed_series,
            broker: ctx.broker,
            epoch: epoch.or_else(|| cluster.leader(tp).and_then(|l| l.epoch)),
            request_ts,
            ts: rts,
            client_id: client.client_id.clone(),
            client: ctx.client,
        };
        let loss = self.acked.on_end(
            tp,
            told,
            || is_leader(cluster, tp, ctx.broker),
            |a, b| same_cluster(cluster, a, b),
        );
        if let Some(l) = loss {
            let cond = acked::condition(&l);
            self.alert(acked::alert(&l), cond, out);
        }
    }

    /// An OffsetForLeaderEpoch answer: acknowledged records of that epoch beyond its end are gone
    /// (`acknowledged_then_lost`); a consumer that had read beyond it found the log truncated
    /// (`log_truncated`).
    #[allow(clippy::too_many_arguments)]
    fn on_epoch_answer(
        &mut self,
        ctx: &ConnCtx,
        q: &kwire_kafka::body::OffsetForLeaderEpochRequest,
        r: &kwire_kafka::body::OffsetForLeaderEpochResponse,
        client: &ClientKey,
        cid: Option<&str>,
        (request_ts, rts): (Timestamp, Timestamp),
        out: Out<'_>,
    ) {
        if q.replica_id.is_some_and(|id| id >= 0) {
            return;
        }
        for t in &r.topics {
            let topic = self.cluster.names.get(&t.name);
            for p in &t.partitions {
                if p.error_code != 0 || p.end_offset < 0 {
                    continue;
                }
                let Some(asked) = q
                    .topics
                    .iter()
                    .filter(|qt| qt.name == t.name)
                    .flat_map(|qt| qt.partitions.iter())
                    .find(|qp| qp.partition == p.partition)
                    .map(|qp| qp.leader_epoch)
                else {
                    continue;
                };
                let tp = Tp::of(&topic, p.partition);
                if self.acked.watching(&tp) {
                    let told = EndTold {
                        end: p.end_offset,
                        source: Told::OffsetForLeaderEpoch,
                        committed_series: false,
                        broker: ctx.broker,
                        epoch: Some(asked),
                        request_ts,
                        ts: rts,
                        client_id: client.client_id.clone(),
                        client: ctx.client,
                    };
                    let cluster = &self.cluster;
                    let same = |a, b| same_cluster(cluster, a, b);
                    if let Some(l) = self.acked.on_epoch_end(&tp, asked, told, same) {
                        let cond = acked::condition(&l);
                        self.alert(acked::alert(&l), cond, out);
                    }
                }
                let read_to = self
                    .timelines
                    .get(client, &tp)
                    .and_then(|s| s.served.map(|o| o.offset));
                if let Some(a) = log_truncated::check(
                    log_truncated::Via::OffsetForLeaderEpoch,
                    read_to,
                    asked,
                    p.end_offset,
                    &tp,
                    ctx,
                    cid,
                    rts,
                ) {
                    let cond = log_truncated::condition(client, &tp, p.end_offset);
                    self.alert(a, cond, out);
                }
            }
        }
    }

    fn on_fetch_request(
        &mut self,
        ctx: &ConnCtx,
        x: &Exchange,
        f: &kwire_kafka::body::FetchRequest,
        client: &ClientKey,
        cid: Option<&str>,
        out: Out<'_>,
    ) {
        // Nothing to do for a request's partitions unless a row is wanted or an OFFSET_OUT_OF_RANGE
        // waits (the response's partitions make the client's partition states).
        if f.replica_id.is_some_and(|r| r >= 0)
            || !(self.timeline_rows || self.timelines.any_out_of_range())
        {
            return;
        }
        for t in &f.topics {
            let topic = self.cluster.topic(t.name.as_deref(), t.topic_id.as_ref());
            for p in &t.partitions {
                let tp = Tp {
                    topic: topic.clone(),
                    partition: p.partition,
                };
                let pending = self.timelines.take_out_of_range(client, &tp);
                if let Some((wanted, wanted_ts)) = pending {
                    if let Some(a) = offset_reset_jump::check(
                        &self.detectors.offset_reset_jump,
                        wanted,
                        wanted_ts,
                        p.fetch_offset,
                        x.request_ts,
                        &tp,
                        ctx,
                        cid,
                    ) {
                        self.alert(a, offset_reset_jump::condition(client, &tp), out);
                    }
                }
                self.row(out, || {
                    TimelineRecord::new(
                        x.request_ts,
                        &client.client_id,
                        ctx,
                        &tp,
                        "fetch_request",
                        p.fetch_offset,
                    )
                });
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_fetch(
        &mut self,
        ctx: &ConnCtx,
        x: &Exchange,
        f: &kwire_kafka::body::FetchRequest,
        r: &kwire_kafka::body::FetchResponse,
        client: &ClientKey,
        cid: Option<&str>,
        rts: Timestamp,
        out: Out<'_>,
    ) {
        self.on_fetch_request(ctx, x, f, client, cid, out);
        let replica = f.replica_id.is_some_and(|r| r >= 0);
        for t in &r.topics {
            let topic = self.cluster.topic(t.name.as_deref(), t.topic_id.as_ref());
            for p in &t.partitions {
                let tp = Tp {
                    topic: topic.clone(),
                    partition: p.partition,
                };
                self.cluster
                    .on_partition_error(&tp, rts, p.error_code, p.current_leader);
                // The leader's epoch as known now (nothing below moves it): one lookup for both uses.
                let epoch = self.cluster.leader(&tp).and_then(|l| l.epoch);
                if p.error_code == 0 && p.high_watermark >= 0 {
                    self.told_end(
                        ctx,
                        client,
                        &tp,
                        p.high_watermark,
                        Told::FetchHwm,
                        false,
                        epoch,
                        (x.request_ts, rts),
                        out,
                    );
                }
                if replica {
                    continue;
                }
                if let Some(d) = p.diverging_epoch.filter(|_| p.error_code == 0) {
                    let fetch_offset = f
                        .topics
                        .iter()
                        .filter(|rt| {
                            self.cluster.topic(rt.name.as_deref(), rt.topic_id.as_ref()) == tp.topic
                        })
                        .flat_map(|rt| rt.partitions.iter())
                        .find(|rp| rp.partition == tp.partition)
                        .map(|rp| rp.fetch_offset);
                    if let Some(a) = log_truncated::check(
                        log_truncated::Via::DivergingEpoch,
                        fetch_offset,
                        d.epoch,
                        d.end_offset,
                        &tp,
                        ctx,
                        cid,
                        rts,
                    ) {
                        self.alert(a, log_truncated::condition(client, &tp, d.end_offset), out);
                    }
                }
                let obs = |offset, source| Obs {
                    offset,
                    ts: rts,
                    source,
                    broker: ctx.broker,
                    conn: ctx.id,
                    epoch,
                    xref: self.cur,
                };
                let out_of_range =
                    p.error_code == kwire_kafka::body::error_code::OFFSET_OUT_OF_RANGE;
                if out_of_range {
                    // Where the OFFSET_OUT_OF_RANGE was: the offset the request asked for.
                    let wanted = f
                        .topics
                        .iter()
                        .filter(|rt| {
                            self.cluster.topic(rt.name.as_deref(), rt.topic_id.as_ref()) == tp.topic
                        })
                        .flat_map(|rt| rt.partitions.iter())
                        .find(|rp| rp.partition == tp.partition)
                        .map(|rp| rp.fetch_offset);
                    if let Some(w) = wanted {
                        self.timelines.mark_out_of_range(client, &tp, w, rts);
                        self.row(out, || {
                            let mut row = TimelineRecord::new(
                                rts,
                                &client.client_id,
                                ctx,
                                &tp,
                                "fetch_error",
                                w,
                            );
                            row.error = Some("OFFSET_OUT_OF_RANGE");
                            row
                        });
                    }
                } else if p.error_code != 0 {
                    continue;
                }
                // Served first (records delivered), then the end of log the same response tells. An
                // OFFSET_OUT_OF_RANGE answer delivers nothing, but a high watermark it carries is told
                // (librdkafka keeps it and, from a follower, reverts to the leader).
                let served_end = p
                    .batches
                    .iter()
                    .filter(|b| !b.truncated && !out_of_range)
                    .map(|b| {
                        b.base_offset
                            .saturating_add(i64::from(b.last_offset_delta))
                            .saturating_add(1)
                    })
                    .max();
                let mut alerts = Vec::new();
                let mut rows: [Option<(&'static str, i64)>; 4] = [None; 4];
                if let Some(st) = self.timelines.entry(client, &tp) {
                    if let Some(end) = served_end {
                        st.raise_served(obs(end, Source::Fetched));
                        rows[0] = Some(("fetched", end));
                    }
                    if p.high_watermark >= 0 {
                        rows[1] = Some(("fetch_hwm", p.high_watermark));
                        let o = obs(p.high_watermark, Source::FetchHwm);
                        let told = end_of_log(
                            &self.detectors,
                            &mut self.incidents,
                            st,
                            client,
                            Series::Uncommitted,
                            o,
                            &tp,
                            ctx,
                            cid,
                        );
                        if let Some((a, cond)) = told {
                            let r = p.preferred_read_replica.unwrap_or(-1);
                            alerts.push((a.field("preferred_read_replica", r), cond));
                        }
                    }
                    if let Some(ls) = p.log_start_offset.filter(|l| *l >= 0 && !out_of_range) {
                        rows[2] = Some(("fetch_log_start", ls));
                    }
                    if let Some(lso) = p.last_stable_offset.filter(|l| *l >= 0 && !out_of_range) {
                        rows[3] = Some(("fetch_lso", lso));
                        let o = obs(lso, Source::FetchLso);
                        alerts.extend(end_of_log(
                            &self.detectors,
                            &mut self.incidents,
                            st,
                            client,
                            Series::Committed,
                            o,
                            &tp,
                            ctx,
                            cid,
                        ));
                    }
                }
                for (what, off) in rows.into_iter().flatten() {
                    self.row(out, || {
                        let mut row =
                            TimelineRecord::new(rts, &client.client_id, ctx, &tp, what, off);
                        row.leader_epoch = epoch;
                        row
                    });
                }
                for (a, cond) in alerts {
                    self.alert(a, cond, out);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_list_offsets(
        &mut self,
        ctx: &ConnCtx,
        l: &kwire_kafka::body::ListOffsetsRequest,
        r: &kwire_kafka::body::ListOffsetsResponse,
        client: &ClientKey,
        cid: Option<&str>,
        (request_ts, rts): (Timestamp, Timestamp),
        out: Out<'_>,
    ) {
        if l.replica_id >= 0 {
            return;
        }
        let series = if l.isolation_level == Some(1) {
            Series::Committed
        } else {
            Series::Uncommitted
        };
        for t in &r.topics {
            let topic = self.cluster.names.get(&t.name);
            for p in &t.partitions {
                let tp = Tp::of(&topic, p.partition);
                if p.error_code != 0 {
                    continue;
                }
                let offset = p.offset.or_else(|| {
                    p.old_style_offsets
                        .as_ref()
                        .and_then(|o| o.first().copied())
                });
                let Some(offset) = offset.filter(|o| *o >= 0) else {
                    continue;
                };
                // What the request asked for this partition: latest (-1), earliest (-2) or a time.
                let asked = l
                    .topics
                    .iter()
                    .filter(|lt| lt.name == t.name)
                    .flat_map(|lt| lt.partitions.iter())
                    .find(|lp| lp.partition == p.partition)
                    .map(|lp| lp.timestamp);
                let what = match asked {
                    Some(-1) => "listoffsets_latest",
                    Some(-2) => "listoffsets_earliest",
                    _ => "listoffsets_time",
                };
                self.row(out, || {
                    let mut row =
                        TimelineRecord::new(rts, &client.client_id, ctx, &tp, what, offset);
                    row.leader_epoch = p.leader_epoch.filter(|e| *e >= 0);
                    row
                });
                if what != "listoffsets_latest" {
                    continue;
                }
                self.told_end(
                    ctx,
                    client,
                    &tp,
                    offset,
                    Told::ListOffsets,
                    series == Series::Committed,
                    p.leader_epoch.filter(|e| *e >= 0),
                    (request_ts, rts),
                    out,
                );
                let o = Obs {
                    offset,
                    ts: rts,
                    source: Source::Listoffsets,
                    broker: ctx.broker,
                    conn: ctx.id,
                    epoch: p.leader_epoch.filter(|e| *e >= 0),
                    xref: self.cur,
                };
                let alert = match self.timelines.entry(client, &tp) {
                    Some(st) => end_of_log(
                        &self.detectors,
                        &mut self.incidents,
                        st,
                        client,
                        series,
                        o,
                        &tp,
                        ctx,
                        cid,
                    ),
                    None => None,
                };
                if let Some((a, cond)) = alert {
                    self.alert(a, cond, out);
                }
            }
        }
    }

    fn on_commit(
        &mut self,
        ctx: &ConnCtx,
        client: &ClientKey,
        cid: Option<&str>,
        c: &Commit<'_>,
        out: Out<'_>,
    ) {
        let accepted = c.error_code == Some(0);
        let mut alerts = Vec::new();
        if let Some(g) = self.groups.get(c.group) {
            if !c.member_id.is_empty() {
                let timelines = &self.timelines;
                let progress = |member: &str, tp: &Tp| {
                    let m = g.members.get(member);
                    let committed = m.and_then(|m| m.committed.get(tp).copied());
                    let served = m
                        .and_then(|m| {
                            Some(ClientKey {
                                client_id: Name::from(m.client_id.as_deref()?),
                                host: m.ctx.as_ref()?.client.ip,
                            })
                        })
                        .and_then(|k| {
                            timelines
                                .get(&k, tp)
                                .and_then(|s| s.served.map(|o| o.offset))
                        });
                    (committed, served)
                };
                if let Some(a) = commit_after_revoke::check(g, c, ctx, cid, progress) {
                    alerts.push((a, commit_after_revoke::condition(g, c)));
                } else if let Some(a) = stale_owner_commit::check(g, c, ctx, cid) {
                    alerts.push((a, stale_owner_commit::condition(g, c)));
                }
            }
        }
        if accepted && c.offset >= 0 {
            // What was served to the group member the commit is for: its own consumer client when known
            // (a transactional producer commits on behalf of a consumer), else the committing client.
            let member_client = self
                .groups
                .get(c.group)
                .and_then(|g| g.members.get(c.member_id))
                .and_then(|m| {
                    Some(ClientKey {
                        client_id: Name::from(m.client_id.as_deref()?),
                        host: m.ctx.as_ref()?.client.ip,
                    })
                });
            let (served_by, st) = match member_client.as_ref().and_then(|k| {
                self.timelines
                    .get(k, c.tp)
                    .filter(|s| s.served.is_some())
                    .map(|s| (k, s))
            }) {
                Some((k, s)) => (k, Some(s)),
                None => (client, self.timelines.get(client, c.tp)),
            };
            if let Some(mut a) =
                commit_ahead_of_fetch::check(&self.detectors.commit_ahead_of_fetch, st, c, ctx, cid)
            {
                if served_by != client {
                    a = a.field("consumer_client_id", served_by.client_id.clone());
                }
                let cond = commit_ahead_of_fetch::condition(self.groups.get(c.group), c);
                alerts.push((a, cond));
            }
            let previous =
                self.groups
                    .on_commit_accepted(c.ts, c.group, c.member_id, c.tp, c.offset);
            if let Some(a) = committed_offset_regression::check(
                &self.detectors.committed_offset_regression,
                previous.as_ref(),
                c,
                ctx,
                cid,
            ) {
                alerts.push((a, committed_offset_regression::condition(c)));
            }
            if let Some(st) = self.timelines.entry(client, c.tp) {
                st.set_committed(Obs {
                    offset: c.offset,
                    ts: c.ts,
                    source: Source::Committed,
                    broker: ctx.broker,
                    conn: ctx.id,
                    epoch: None,
                    xref: self.cur,
                });
            }
        }
        self.row(out, || {
            let mut row = TimelineRecord::new(
                c.ts,
                &client.client_id,
                ctx,
                c.tp,
                if accepted {
                    "committed"
                } else {
                    "commit_rejected"
                },
                c.offset,
            );
            row.group = Some(self.cluster.names.get(c.group));
            row.error = c
                .error_code
                .filter(|e| *e != 0)
                .map(kwire_kafka::body::error_name);
            row
        });
        for (a, cond) in alerts {
            self.alert(a, cond, out);
        }
    }

    /// End of input: alerts that summarise traffic (weak acks); every incident closes.
    pub fn finish(&mut self, out: Out<'_>) {
        self.report_weak(None, out);
        self.report_rejected(None, out);
        self.incidents.finish();
    }

    /// Packet time advanced to `now` (called about once a second): weak-acks producers first seen more than
    /// `report_after_s` ago are reported with their counts so far, so a long-running agent raises them.
    pub fn tick(&mut self, now: Timestamp, out: Out<'_>) {
        self.report_weak(Some(now), out);
        self.report_rejected(Some(now), out);
        self.incidents.expire(now);
    }

    /// Raises the produce_rejected alerts that are due (at the end: every refused batch).
    fn report_rejected(&mut self, now: Option<Timestamp>, out: Out<'_>) {
        for (a, cond) in self.rejects.due(&self.detectors.produce_rejected, now) {
            self.alert(a, cond, out);
        }
    }

    /// Raises the weak-acks alerts that are due (all of them at the end: `now` None).
    fn report_weak(&mut self, now: Option<Timestamp>, out: Out<'_>) {
        for (a, cond) in self.weak.due(&self.detectors.weak_acks, &self.cluster, now) {
            self.alert(a, cond, out);
        }
    }
}

/// Whether two brokers are of one cluster: the same address, or the same cluster id (Metadata).
fn same_cluster(cluster: &Cluster, a: kwire_flow::Endpoint, b: kwire_flow::Endpoint) -> bool {
    a == b
        || matches!(
            (cluster.cluster_id_of(&a), cluster.cluster_id_of(&b)),
            (Some(x), Some(y)) if x == y
        )
}

/// Whether the broker at `b` leads `tp` in the cluster view (None: the view does not know). Compares
/// the address the view holds with `b` written into a stack buffer: no allocation (it runs on the hot
/// path when acknowledged records are at stake).
fn is_leader(cluster: &Cluster, tp: &Tp, b: kwire_flow::Endpoint) -> Option<bool> {
    use std::fmt::Write as _;
    /// Room for "[<IPv6>]:<port>" (at most 47 + 6 bytes).
    struct Stack {
        b: [u8; 64],
        n: usize,
    }
    impl std::fmt::Write for Stack {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            let end = self.n + s.len();
            let dst = self.b.get_mut(self.n..end).ok_or(std::fmt::Error)?;
            dst.copy_from_slice(s.as_bytes());
            self.n = end;
            Ok(())
        }
    }
    let leader = cluster.leader(tp)?;
    let addr = cluster.brokers.get(&leader.id)?;
    let mut w = Stack { b: [0; 64], n: 0 };
    write!(w, "{b}").ok()?;
    Some(addr.as_bytes() == &w.b[..w.n])
}

/// `listoffsets_regression` on one told end of log: the alert and its incident, or the end of a drop.
#[allow(clippy::too_many_arguments)]
fn end_of_log(
    det: &DetectorConfig,
    incidents: &mut Incidents,
    st: &mut PartState,
    client: &ClientKey,
    series: Series,
    o: Obs,
    tp: &Tp,
    ctx: &ConnCtx,
    cid: Option<&str>,
) -> Option<(Alert, Condition)> {
    let quiet = incidents.config().quiet_ns();
    let cfg = &det.listoffsets_regression;
    match listoffsets_regression::observe(cfg, quiet, st, series, o, tp, ctx, cid) {
        listoffsets_regression::Outcome::Quiet => None,
        listoffsets_regression::Outcome::Alert(a, harm) => Some((
            *a,
            Condition {
                key: listoffsets_regression::key(client, tp, series),
                harm,
            },
        )),
        listoffsets_regression::Outcome::Recovered => {
            incidents.close(
                &listoffsets_regression::key(client, tp, series),
                Closed::Recovered,
            );
            None
        }
    }
}

/// Per-partition error codes of an OffsetCommit / TxnOffsetCommit response.
fn commit_errors(cluster: &Cluster, resp: Option<&ResponseBody>) -> BTreeMap<Tp, i16> {
    let topics = match resp {
        Some(ResponseBody::OffsetCommit(r)) => &r.topics,
        Some(ResponseBody::TxnOffsetCommit(r)) => &r.topics,
        _ => return BTreeMap::new(),
    };
    topics
        .iter()
        .flat_map(|t| {
            let name = cluster.topic(t.name.as_deref(), t.topic_id.as_ref());
            t.partitions
                .iter()
                .map(move |p| (Tp::new(&name, p.partition), p.error_code))
        })
        .collect()
}
