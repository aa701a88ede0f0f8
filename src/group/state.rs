//! One consumer group's state machine: the classic rebalance protocol as Kafka's
//! GroupCoordinator answers it. Pure: no I/O and no clock of its own (every call takes `now`),
//! so it is tested directly below. The coordinator (`super`) routes requests here, persists
//! what changed (`Group::dirty`) and drives time with `tick`.
//!
//! States: Empty → PreparingRebalance (members join; the first rebalance of an empty group
//! waits `group.initial.rebalance.delay.ms` for more) → CompletingRebalance (join answered:
//! the leader got every member's metadata and computes the assignment) → Stable (the leader's
//! SyncGroup stored it; every member got its part). A member joining, leaving, changing its
//! metadata or missing its session timeout sends the group back to PreparingRebalance; members
//! that do not rejoin within the rebalance timeout are dropped. Static members
//! (`group.instance.id`, KIP-345) keep their place across a restart: a rejoin with a new member
//! id takes over the old one's assignment without a rebalance.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::records::{GroupValue, MemberValue, OffsetValue};
use super::Error;
use bytes::Bytes;
use futures::channel::oneshot;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The name Kafka reports (DescribeGroups, ListGroups).
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// Broker settings the state machine applies.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub initial_rebalance_delay: Duration,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub max_size: usize,
}

/// A JoinGroup, as the state machine needs it.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new dynamic member first gets MEMBER_ID_REQUIRED (KIP-394).
    pub require_known_member_id: bool,
}

/// The answer to a JoinGroup.
#[derive(Debug, Clone, Default)]
pub struct JoinOutcome {
    pub error: Option<Error>,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// For the leader: every member with its metadata for the chosen protocol.
    pub members: Vec<(String, Option<String>, Bytes)>,
    /// The leader need not compute an assignment (a static leader's rejoin, JoinGroup v9).
    pub skip_assignment: bool,
}

impl JoinOutcome {
    pub fn error(error: Error, member_id: &str) -> JoinOutcome {
        JoinOutcome {
            error: Some(error),
            ..JoinOutcome::failed(member_id)
        }
    }

    /// The rest of an answer that carries only an error: no generation, no members.
    pub fn failed(member_id: &str) -> JoinOutcome {
        JoinOutcome {
            generation: -1,
            member_id: member_id.to_string(),
            ..JoinOutcome::default()
        }
    }
}

/// The answer to a SyncGroup.
#[derive(Debug, Clone, Default)]
pub struct SyncOutcome {
    pub error: Option<Error>,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub assignment: Bytes,
}

impl SyncOutcome {
    pub fn error(error: Error) -> SyncOutcome {
        SyncOutcome {
            error: Some(error),
            ..SyncOutcome::default()
        }
    }
}

pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// Supported protocols in preference order, with their metadata.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    join: Option<oneshot::Sender<JoinOutcome>>,
    sync: Option<oneshot::Sender<SyncOutcome>>,
    /// When the session expires without a heartbeat.
    deadline: Instant,
}

impl Member {
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    fn touch(&mut self, now: Instant) {
        self.deadline = now + ms(self.session_timeout_ms);
    }

    fn awaiting(&self) -> bool {
        self.join.is_some() || self.sync.is_some()
    }
}

fn ms(v: i32) -> Duration {
    Duration::from_millis(v.max(0) as u64)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
}

impl From<OffsetValue> for Committed {
    fn from(v: OffsetValue) -> Committed {
        Committed {
            offset: v.offset,
            leader_epoch: v.leader_epoch,
            metadata: v.metadata,
            commit_timestamp: v.commit_timestamp,
        }
    }
}

pub struct Group {
    pub id: String,
    pub state: GroupState,
    /// Wall-clock milliseconds of the last state change (offset expiry of empty groups).
    pub state_timestamp: i64,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// In join order: the first one leads when the leader is gone.
    pub members: Vec<Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, until they join or time out.
    pending: Vec<(String, Instant)>,
    /// PreparingRebalance: when the join completes even if members are missing.
    join_deadline: Option<Instant>,
    /// The first rebalance of an empty group: the latest the initial delay may stretch to.
    initial_limit: Option<Instant>,
    /// CompletingRebalance: members that have not sent SyncGroup by then are dropped.
    sync_deadline: Option<Instant>,
    pub offsets: BTreeMap<(String, i32), Committed>,
    /// Membership changed since it was last persisted.
    pub dirty: bool,
    /// Set when the group uses the KIP-848 protocol (`group.protocol=consumer`); its members
    /// live there and the classic fields above stay empty.
    pub consumer: Option<super::consumer::ConsumerGroup>,
}

impl Group {
    pub fn new(id: &str, wall_ms: i64) -> Group {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            state_timestamp: wall_ms,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: Vec::new(),
            pending: Vec::new(),
            join_deadline: None,
            initial_limit: None,
            sync_deadline: None,
            offsets: BTreeMap::new(),
            dirty: false,
            consumer: None,
        }
    }

    /// A group as persisted at its last stable point; members get a fresh session.
    pub fn restore(id: &str, value: GroupValue, now: Instant) -> Group {
        let mut g = Group::new(id, value.state_timestamp);
        g.generation = value.generation;
        g.protocol_type = (!value.protocol_type.is_empty()).then_some(value.protocol_type);
        g.protocol = value.protocol.clone();
        g.leader = value.leader;
        let protocol = value.protocol.unwrap_or_default();
        g.members = value
            .members
            .into_iter()
            .map(|m| Member {
                id: m.member_id,
                instance_id: m.instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                session_timeout_ms: m.session_timeout_ms,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                protocols: vec![(protocol.clone(), m.subscription)],
                assignment: m.assignment,
                join: None,
                sync: None,
                deadline: now + ms(m.session_timeout_ms),
            })
            .collect();
        g.state = if g.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        g
    }

    /// The group's membership as persisted.
    pub fn to_value(&self) -> GroupValue {
        let protocol = self.protocol.clone().unwrap_or_default();
        GroupValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            state_timestamp: self.state_timestamp,
            members: self
                .members
                .iter()
                .map(|m| MemberValue {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    fn set_state(&mut self, state: GroupState, wall_ms: i64) {
        self.state = state;
        self.state_timestamp = wall_ms;
    }

    fn member_index(&self, id: &str) -> Option<usize> {
        self.members.iter().position(|m| m.id == id)
    }

    fn static_index(&self, instance: &str) -> Option<usize> {
        self.members
            .iter()
            .position(|m| m.instance_id.as_deref() == Some(instance))
    }

    /// Finds `member_id`, checking a static member's instance id: UNKNOWN_MEMBER_ID when it is
    /// not a member, FENCED_INSTANCE_ID when the instance now belongs to another member id.
    fn check_member(&self, member_id: &str, instance: Option<&str>) -> Result<usize, Error> {
        if let Some(instance) = instance {
            if let Some(i) = self.static_index(instance) {
                if self.members[i].id != member_id {
                    return Err(Error::FencedInstanceId);
                }
                return Ok(i);
            }
        }
        self.member_index(member_id).ok_or(Error::UnknownMemberId)
    }

    pub fn is_leader(&self, id: &str) -> bool {
        self.leader.as_deref() == Some(id)
    }

    /// Protocols every member supports, in the first member's order of preference.
    fn candidates(&self) -> Vec<String> {
        let Some(first) = self.members.first() else {
            return Vec::new();
        };
        first
            .protocols
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| {
                self.members
                    .iter()
                    .all(|m| m.protocols.iter().any(|(p, _)| p == n))
            })
            .collect()
    }

    /// Whether a member with these protocols can join.
    fn accepts(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        let candidates = self.candidates();
        protocols.iter().any(|(p, _)| candidates.contains(p))
    }

    /// The protocol with the most first-choice votes among those all members support.
    fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidates();
        let mut best: Option<(usize, &String)> = None;
        for c in &candidates {
            let votes = self
                .members
                .iter()
                .filter(|m| {
                    m.protocols
                        .iter()
                        .find(|(p, _)| candidates.contains(p))
                        .map(|(p, _)| p)
                        == Some(c)
                })
                .count();
            if best.is_none_or(|(v, _)| votes > v) {
                best = Some((votes, c));
            }
        }
        best.map(|(_, c)| c.clone())
    }

    fn full(&self, limits: &Limits) -> bool {
        self.members.len() + self.pending.len() >= limits.max_size
    }

    /// The answer a member gets for the current generation.
    fn current_outcome(&self, member: usize) -> JoinOutcome {
        let id = &self.members[member].id;
        let is_leader = self.is_leader(id);
        let protocol = self.protocol.clone().unwrap_or_default();
        JoinOutcome {
            error: None,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: id.clone(),
            members: if is_leader {
                self.members
                    .iter()
                    .map(|m| (m.id.clone(), m.instance_id.clone(), m.metadata(&protocol)))
                    .collect()
            } else {
                Vec::new()
            },
            skip_assignment: false,
        }
    }

    pub fn join(
        &mut self,
        req: JoinRequest,
        limits: &Limits,
        now: Instant,
        wall_ms: i64,
        reply: oneshot::Sender<JoinOutcome>,
    ) {
        let fail = |reply: oneshot::Sender<JoinOutcome>, e: Error| {
            let _ = reply.send(JoinOutcome::error(e, &req.member_id));
        };
        if req.session_timeout_ms < limits.min_session_timeout_ms
            || req.session_timeout_ms > limits.max_session_timeout_ms
        {
            return fail(reply, Error::InvalidSessionTimeout);
        }
        if self.state == GroupState::Dead {
            return fail(reply, Error::CoordinatorNotAvailable);
        }
        if self.consumer_members().is_some() {
            // A KIP-848 group with members; Kafka answers the same without online migration.
            return fail(reply, Error::InconsistentGroupProtocol);
        }
        self.consumer = None;
        if !self.accepts(&req.protocol_type, &req.protocols) {
            return fail(reply, Error::InconsistentGroupProtocol);
        }
        if req.member_id.is_empty() {
            let prefix = req.instance_id.as_deref().unwrap_or(&req.client_id);
            let new_id = format!("{prefix}-{}", uuid::Uuid::new_v4());
            if let Some(instance) = req.instance_id.clone() {
                if let Some(i) = self.static_index(&instance) {
                    return self.replace_static(i, new_id, req, limits, now, wall_ms, reply);
                }
            } else if req.require_known_member_id {
                if self.full(limits) {
                    return fail(reply, Error::GroupMaxSizeReached);
                }
                self.pending
                    .push((new_id.clone(), now + ms(req.session_timeout_ms)));
                let _ = reply.send(JoinOutcome::error(Error::MemberIdRequired, &new_id));
                return;
            }
            if self.full(limits) {
                return fail(reply, Error::GroupMaxSizeReached);
            }
            return self.add_member(new_id, req, limits, now, wall_ms, reply);
        }
        if let Some(p) = self.pending.iter().position(|(id, _)| *id == req.member_id) {
            self.pending.remove(p);
            let id = req.member_id.clone();
            return self.add_member(id, req, limits, now, wall_ms, reply);
        }
        let i = match self.check_member(&req.member_id, req.instance_id.as_deref()) {
            Ok(i) => i,
            Err(e) => {
                let _ = reply.send(JoinOutcome::error(e, &req.member_id));
                return;
            }
        };
        match self.state {
            GroupState::PreparingRebalance => {
                self.update_member(i, &req, now, Some(reply));
                self.try_complete_join(now, wall_ms);
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                let unchanged = self.members[i].protocols == req.protocols;
                let leader_in_stable =
                    self.state == GroupState::Stable && self.is_leader(&req.member_id);
                if unchanged && !leader_in_stable {
                    // A rejoin with the same metadata (a lost response, say): answer with the
                    // current generation.
                    self.members[i].touch(now);
                    let _ = reply.send(self.current_outcome(i));
                } else {
                    self.update_member(i, &req, now, Some(reply));
                    self.prepare_rebalance(Duration::ZERO, now, wall_ms);
                }
            }
            GroupState::Empty | GroupState::Dead => {
                fail(reply, Error::UnknownMemberId);
            }
        }
    }

    fn update_member(
        &mut self,
        i: usize,
        req: &JoinRequest,
        now: Instant,
        reply: Option<oneshot::Sender<JoinOutcome>>,
    ) {
        let m = &mut self.members[i];
        m.client_id = req.client_id.clone();
        m.client_host = req.client_host.clone();
        m.session_timeout_ms = req.session_timeout_ms;
        m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        m.protocol_type = req.protocol_type.clone();
        m.protocols = req.protocols.clone();
        if let Some(reply) = reply {
            if let Some(old) = m.join.replace(reply) {
                // The same member joined again before its first join was answered.
                let _ = old.send(JoinOutcome::error(Error::UnknownMemberId, &req.member_id));
            }
        }
        m.touch(now);
    }

    fn add_member(
        &mut self,
        id: String,
        req: JoinRequest,
        limits: &Limits,
        now: Instant,
        wall_ms: i64,
        reply: oneshot::Sender<JoinOutcome>,
    ) {
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(id.clone());
        }
        self.members.push(Member {
            id,
            instance_id: req.instance_id,
            client_id: req.client_id,
            client_host: req.client_host,
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            protocol_type: req.protocol_type,
            protocols: req.protocols,
            assignment: Bytes::new(),
            join: Some(reply),
            sync: None,
            deadline: now + ms(req.session_timeout_ms),
        });
        match self.state {
            GroupState::PreparingRebalance => {
                if let Some(limit) = self.initial_limit {
                    // Still in the initial delay: wait a little longer for more members.
                    self.join_deadline = Some((now + limits.initial_rebalance_delay).min(limit));
                }
                self.try_complete_join(now, wall_ms);
            }
            _ => self.prepare_rebalance(limits.initial_rebalance_delay, now, wall_ms),
        }
    }

    /// A static member rejoined without its member id (it restarted): the new id takes over.
    #[allow(clippy::too_many_arguments)]
    fn replace_static(
        &mut self,
        i: usize,
        new_id: String,
        req: JoinRequest,
        limits: &Limits,
        now: Instant,
        wall_ms: i64,
        reply: oneshot::Sender<JoinOutcome>,
    ) {
        let fenced = Error::FencedInstanceId;
        let old_id = std::mem::replace(&mut self.members[i].id, new_id.clone());
        if let Some(j) = self.members[i].join.take() {
            let _ = j.send(JoinOutcome::error(fenced, &old_id));
        }
        if let Some(s) = self.members[i].sync.take() {
            let _ = s.send(SyncOutcome::error(fenced));
        }
        if self.is_leader(&old_id) {
            self.leader = Some(new_id.clone());
        }
        let unchanged = self.members[i].protocols == req.protocols;
        let req = JoinRequest {
            member_id: new_id,
            ..req
        };
        match self.state {
            GroupState::Stable if unchanged => {
                // KIP-345: same instance, same subscription: keep the assignment, no rebalance.
                self.update_member(i, &req, now, None);
                let mut outcome = self.current_outcome(i);
                outcome.skip_assignment = self.is_leader(&req.member_id);
                self.dirty = true;
                let _ = reply.send(outcome);
            }
            GroupState::PreparingRebalance => {
                self.update_member(i, &req, now, Some(reply));
                self.try_complete_join(now, wall_ms);
            }
            _ => {
                self.update_member(i, &req, now, Some(reply));
                self.prepare_rebalance(limits.initial_rebalance_delay, now, wall_ms);
            }
        }
    }

    /// Starts a rebalance. `initial_delay` applies only when the group was Empty (its first
    /// rebalance gathers members for that long, up to the rebalance timeout).
    fn prepare_rebalance(&mut self, initial_delay: Duration, now: Instant, wall_ms: i64) {
        if self.state == GroupState::CompletingRebalance {
            // The assignment being computed is stale: members waiting for it must rejoin.
            for m in &mut self.members {
                m.assignment = Bytes::new();
                if let Some(s) = m.sync.take() {
                    let _ = s.send(SyncOutcome::error(Error::RebalanceInProgress));
                }
            }
        }
        self.sync_deadline = None;
        let rebalance_timeout = self
            .members
            .iter()
            .map(|m| ms(m.rebalance_timeout_ms))
            .max()
            .unwrap_or_default();
        if self.state == GroupState::Empty {
            self.join_deadline = Some(now + initial_delay.min(rebalance_timeout));
            self.initial_limit = Some(now + rebalance_timeout);
        } else {
            self.join_deadline = Some(now + rebalance_timeout);
            self.initial_limit = None;
        }
        self.set_state(GroupState::PreparingRebalance, wall_ms);
        self.try_complete_join(now, wall_ms);
    }

    /// Completes the join phase when every member has rejoined (or, for the first rebalance,
    /// when the initial delay is over), or when the rebalance timeout has passed.
    fn try_complete_join(&mut self, now: Instant, wall_ms: i64) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        let past_deadline = self.join_deadline.is_none_or(|d| now >= d);
        let all_joined = self.members.iter().all(|m| m.join.is_some()) && self.pending.is_empty();
        let ready = if self.initial_limit.is_some() {
            past_deadline
        } else {
            all_joined || past_deadline
        };
        if !ready {
            return;
        }
        // Members that did not rejoin in time are out.
        let gone: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.join.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            tracing::info!(group = %self.id, member = %id, "member did not rejoin within the rebalance timeout; removed");
            self.drop_member(&id);
        }
        self.join_deadline = None;
        self.initial_limit = None;
        self.generation += 1;
        if self.members.is_empty() {
            self.protocol = None;
            self.leader = None;
            self.set_state(GroupState::Empty, wall_ms);
            self.dirty = true;
            return;
        }
        self.protocol = self.select_protocol();
        if self
            .leader
            .as_ref()
            .is_none_or(|l| self.member_index(l).is_none())
        {
            self.leader = Some(self.members[0].id.clone());
        }
        self.set_state(GroupState::CompletingRebalance, wall_ms);
        let rebalance_timeout = self
            .members
            .iter()
            .map(|m| ms(m.rebalance_timeout_ms))
            .max()
            .unwrap_or_default();
        self.sync_deadline = Some(now + rebalance_timeout);
        tracing::debug!(group = %self.id, generation = self.generation, members = self.members.len(), protocol = ?self.protocol, "join complete");
        for i in 0..self.members.len() {
            let outcome = self.current_outcome(i);
            let m = &mut self.members[i];
            m.touch(now);
            if let Some(j) = m.join.take() {
                let _ = j.send(outcome);
            }
        }
    }

    /// Removes a member without changing state; its waiters learn it is gone.
    fn drop_member(&mut self, id: &str) {
        let Some(i) = self.member_index(id) else {
            return;
        };
        let m = self.members.remove(i);
        let unknown = Error::UnknownMemberId;
        if let Some(j) = m.join {
            let _ = j.send(JoinOutcome::error(unknown, &m.id));
        }
        if let Some(s) = m.sync {
            let _ = s.send(SyncOutcome::error(unknown));
        }
        if self.is_leader(id) {
            self.leader = self.members.first().map(|m| m.id.clone());
        }
    }

    /// Removes a member (left or expired) and rebalances the rest.
    fn remove_member(&mut self, id: &str, now: Instant, wall_ms: i64) {
        self.drop_member(id);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(Duration::ZERO, now, wall_ms)
            }
            GroupState::PreparingRebalance => self.try_complete_join(now, wall_ms),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        protocol_type: Option<&str>,
        protocol: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
        wall_ms: i64,
        reply: oneshot::Sender<SyncOutcome>,
    ) {
        let fail = |reply: oneshot::Sender<SyncOutcome>, e: Error| {
            let _ = reply.send(SyncOutcome::error(e));
        };
        if self.state == GroupState::Dead {
            return fail(reply, Error::CoordinatorNotAvailable);
        }
        let i = match self.check_member(member_id, instance) {
            Ok(i) => i,
            Err(e) => return fail(reply, e),
        };
        if generation != self.generation {
            return fail(reply, Error::IllegalGeneration);
        }
        if protocol_type.is_some_and(|t| Some(t) != self.protocol_type.as_deref())
            || protocol.is_some_and(|p| Some(p) != self.protocol.as_deref())
        {
            return fail(reply, Error::InconsistentGroupProtocol);
        }
        match self.state {
            GroupState::Empty | GroupState::Dead => fail(reply, Error::UnknownMemberId),
            GroupState::PreparingRebalance => fail(reply, Error::RebalanceInProgress),
            GroupState::Stable => {
                self.members[i].touch(now);
                let _ = reply.send(self.sync_outcome(i));
            }
            GroupState::CompletingRebalance => {
                self.members[i].touch(now);
                self.members[i].sync = Some(reply);
                if !self.is_leader(member_id) {
                    return;
                }
                let mut assignments: BTreeMap<String, Bytes> = assignments.into_iter().collect();
                for m in &mut self.members {
                    m.assignment = assignments.remove(&m.id).unwrap_or_default();
                }
                self.sync_deadline = None;
                self.set_state(GroupState::Stable, wall_ms);
                self.dirty = true;
                for i in 0..self.members.len() {
                    let outcome = self.sync_outcome(i);
                    if let Some(s) = self.members[i].sync.take() {
                        let _ = s.send(outcome);
                    }
                }
            }
        }
    }

    fn sync_outcome(&self, i: usize) -> SyncOutcome {
        SyncOutcome {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            assignment: self.members[i].assignment.clone(),
        }
    }

    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Result<(), Error> {
        match self.state {
            GroupState::Dead => return Err(Error::CoordinatorNotAvailable),
            GroupState::Empty => return Err(Error::UnknownMemberId),
            _ => {}
        }
        let i = self.check_member(member_id, instance)?;
        if generation != self.generation {
            return Err(Error::IllegalGeneration);
        }
        self.members[i].touch(now);
        if self.state == GroupState::PreparingRebalance {
            Err(Error::RebalanceInProgress)
        } else {
            Ok(())
        }
    }

    /// LeaveGroup for each `(member id, instance id)`; one result each.
    pub fn leave(
        &mut self,
        members: &[(String, Option<String>)],
        now: Instant,
        wall_ms: i64,
    ) -> Vec<Result<(), Error>> {
        members
            .iter()
            .map(|(member_id, instance)| {
                if self.state == GroupState::Dead {
                    return Err(Error::CoordinatorNotAvailable);
                }
                if let Some(p) = self.pending.iter().position(|(id, _)| id == member_id) {
                    self.pending.remove(p);
                    self.try_complete_join(now, wall_ms);
                    return Ok(());
                }
                let found = if member_id.is_empty() {
                    instance
                        .as_deref()
                        .and_then(|inst| self.static_index(inst))
                        .ok_or(Error::UnknownMemberId)
                } else {
                    self.check_member(member_id, instance.as_deref())
                };
                let i = found?;
                let id = self.members[i].id.clone();
                tracing::debug!(group = %self.id, member = %id, "member left");
                self.remove_member(&id, now, wall_ms);
                Ok(())
            })
            .collect()
    }

    /// Checks an OffsetCommit's member and generation (Kafka's validateOffsetCommit).
    pub fn check_commit(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Result<(), Error> {
        if self.state == GroupState::Dead {
            return Err(Error::CoordinatorNotAvailable);
        }
        if let Some(c) = self.consumer_members() {
            // KIP-848: the generation field carries the member epoch.
            if generation < 0 && member_id.is_empty() {
                return Err(Error::UnknownMemberId);
            }
            let Some(m) = c.members.get(member_id) else {
                return Err(Error::UnknownMemberId);
            };
            return match generation.cmp(&m.epoch) {
                std::cmp::Ordering::Greater => Err(Error::FencedMemberEpoch),
                std::cmp::Ordering::Less => Err(Error::StaleMemberEpoch),
                std::cmp::Ordering::Equal => Ok(()),
            };
        }
        if generation >= 0 || !member_id.is_empty() || instance.is_some() {
            let i = self.check_member(member_id, instance)?;
            if generation != self.generation {
                return Err(Error::IllegalGeneration);
            }
            self.members[i].touch(now);
        } else if self.state != GroupState::Empty {
            // Commits from outside the group are only taken while it has no members.
            return Err(Error::UnknownMemberId);
        }
        if self.state == GroupState::CompletingRebalance {
            return Err(Error::RebalanceInProgress);
        }
        Ok(())
    }

    /// Expires sessions and pending member ids, and ends join and sync phases whose time is up.
    pub fn tick(&mut self, now: Instant, wall_ms: i64) {
        if let Some(c) = &mut self.consumer {
            for id in c.tick(now) {
                tracing::info!(group = %self.id, member = %id, "member session or revocation timed out; removed");
            }
        }
        let before = self.pending.len();
        self.pending.retain(|(_, deadline)| *deadline > now);
        if self.pending.len() != before {
            self.try_complete_join(now, wall_ms);
        }
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|m| !m.awaiting() && m.deadline <= now)
            .map(|m| m.id.clone())
            .collect();
        for id in expired {
            tracing::info!(group = %self.id, member = %id, "member session expired; removed");
            self.remove_member(&id, now, wall_ms);
        }
        self.try_complete_join(now, wall_ms);
        if self.state == GroupState::CompletingRebalance
            && self.sync_deadline.is_some_and(|d| now >= d)
        {
            let late: Vec<String> = self
                .members
                .iter()
                .filter(|m| m.sync.is_none())
                .map(|m| m.id.clone())
                .collect();
            for id in late {
                tracing::info!(group = %self.id, member = %id, "member did not send SyncGroup within the rebalance timeout; removed");
                self.remove_member(&id, now, wall_ms);
            }
        }
    }

    /// Offsets to remove under `offsets.retention.minutes`: all those of a group that has had no
    /// members for `retention_ms` and that were not committed within it either (KIP-211).
    pub fn expired_offsets(&self, retention_ms: i64, wall_ms: i64) -> Vec<(String, i32)> {
        if !self.is_empty() {
            return Vec::new();
        }
        let since = self.state_timestamp;
        self.offsets
            .iter()
            .filter(|(_, c)| since.max(c.commit_timestamp).saturating_add(retention_ms) <= wall_ms)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The earliest time `tick` has something to do for this group.
    pub fn next_deadline(&self) -> Option<Instant> {
        let sessions = self
            .members
            .iter()
            .filter(|m| !m.awaiting())
            .map(|m| m.deadline);
        let pending = self.pending.iter().map(|(_, d)| *d);
        let phase = match self.state {
            GroupState::PreparingRebalance => self.join_deadline,
            GroupState::CompletingRebalance => self.sync_deadline,
            _ => None,
        };
        let consumer = self.consumer.as_ref().and_then(|c| c.next_deadline());
        sessions.chain(pending).chain(phase).chain(consumer).min()
    }

    /// Whether the group holds nothing worth keeping: no members and no offsets.
    pub fn is_vacant(&self) -> bool {
        self.members.is_empty()
            && self.pending.is_empty()
            && self.offsets.is_empty()
            && self.consumer.as_ref().is_none_or(|c| c.members.is_empty())
    }

    /// Whether the group has no members under either protocol (offsets may remain).
    pub fn is_empty(&self) -> bool {
        self.state == GroupState::Empty && self.consumer_members().is_none()
    }

    /// The KIP-848 part of the group, if it has members.
    pub fn consumer_members(&self) -> Option<&super::consumer::ConsumerGroup> {
        self.consumer.as_ref().filter(|c| !c.members.is_empty())
    }

    /// The state name Kafka reports, for either protocol.
    pub fn state_name(&self) -> &'static str {
        match &self.consumer {
            Some(c) => c.state_name(),
            None => self.state.name(),
        }
    }

    /// Answers every waiting member with `error` (the coordinator is going away).
    pub fn fail_waiters(&mut self, error: Error) {
        for m in &mut self.members {
            if let Some(j) = m.join.take() {
                let _ = j.send(JoinOutcome::error(error, &m.id));
            }
            if let Some(s) = m.sync.take() {
                let _ = s.send(SyncOutcome::error(error));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(delay_ms: u64) -> Limits {
        Limits {
            initial_rebalance_delay: Duration::from_millis(delay_ms),
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            max_size: 100,
        }
    }

    fn req(member_id: &str, instance: Option<&str>, protocols: &[&str]) -> JoinRequest {
        JoinRequest {
            member_id: member_id.to_string(),
            instance_id: instance.map(str::to_string),
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            protocol_type: "consumer".into(),
            protocols: protocols
                .iter()
                .map(|p| (p.to_string(), Bytes::from(format!("meta-{p}"))))
                .collect(),
            require_known_member_id: true,
        }
    }

    fn join(g: &mut Group, r: JoinRequest, now: Instant) -> oneshot::Receiver<JoinOutcome> {
        let (tx, rx) = oneshot::channel();
        g.join(r, &limits(0), now, 0, tx);
        rx
    }

    fn ready<T>(rx: &mut oneshot::Receiver<T>) -> Option<T> {
        rx.try_recv().ok().flatten()
    }

    /// A dynamic member: MEMBER_ID_REQUIRED, then the real join.
    fn join_new(
        g: &mut Group,
        protocols: &[&str],
        now: Instant,
    ) -> (String, oneshot::Receiver<JoinOutcome>) {
        let mut rx = join(g, req("", None, protocols), now);
        let first = ready(&mut rx).expect("answered at once");
        assert_eq!(first.error, Some(Error::MemberIdRequired));
        let id = first.member_id.clone();
        (id.clone(), join(g, req(&id, None, protocols), now))
    }

    fn sync(
        g: &mut Group,
        id: &str,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> oneshot::Receiver<SyncOutcome> {
        let (tx, rx) = oneshot::channel();
        g.sync(id, None, generation, None, None, assignments, now, 0, tx);
        rx
    }

    #[test]
    fn two_members_join_sync_and_one_leaves() {
        let t0 = Instant::now();
        let mut g = Group::new("g", 0);
        let (a, mut ja) = join_new(&mut g, &["range"], t0);
        // Initial delay 0: the first member's join completes alone (generation 1).
        let oa = ready(&mut ja).unwrap();
        assert_eq!(
            (oa.error, oa.generation, oa.leader.as_str()),
            (None, 1, a.as_str())
        );
        assert_eq!(oa.members.len(), 1);
        // A second member joins: rebalance; the first learns from its heartbeat.
        let (b, mut jb) = join_new(&mut g, &["roundrobin", "range"], t0);
        assert!(ready(&mut jb).is_none());
        assert_eq!(g.state, GroupState::PreparingRebalance);
        assert_eq!(
            g.heartbeat(&a, None, 1, t0),
            Err(Error::RebalanceInProgress)
        );
        let mut ja = join(&mut g, req(&a, None, &["range"]), t0);
        let (oa, ob) = (ready(&mut ja).unwrap(), ready(&mut jb).unwrap());
        assert_eq!((oa.generation, ob.generation), (2, 2));
        assert_eq!(
            oa.protocol.as_deref(),
            Some("range"),
            "the only protocol both support"
        );
        assert_eq!(oa.members.len(), 2, "the leader sees every member");
        assert!(ob.members.is_empty());
        // Follower syncs first and waits for the leader's assignment.
        let mut sb = sync(&mut g, &b, 2, vec![], t0);
        assert!(ready(&mut sb).is_none());
        let mut sa = sync(
            &mut g,
            &a,
            2,
            vec![
                (a.clone(), Bytes::from_static(b"A")),
                (b.clone(), Bytes::from_static(b"B")),
            ],
            t0,
        );
        assert_eq!(ready(&mut sa).unwrap().assignment, Bytes::from_static(b"A"));
        assert_eq!(ready(&mut sb).unwrap().assignment, Bytes::from_static(b"B"));
        assert_eq!(g.state, GroupState::Stable);
        assert!(g.dirty);
        assert_eq!(g.heartbeat(&b, None, 2, t0), Ok(()));
        assert_eq!(g.heartbeat(&b, None, 1, t0), Err(Error::IllegalGeneration));
        // b leaves: a alone rebalances into generation 3.
        assert_eq!(g.leave(&[(b.clone(), None)], t0, 0), vec![Ok(())]);
        assert_eq!(g.state, GroupState::PreparingRebalance);
        let mut ja = join(&mut g, req(&a, None, &["range"]), t0);
        assert_eq!(ready(&mut ja).unwrap().generation, 3);
        assert_eq!(g.heartbeat(&b, None, 3, t0), Err(Error::UnknownMemberId));
    }

    #[test]
    fn session_expiry_removes_a_silent_member() {
        let t0 = Instant::now();
        let mut g = Group::new("g", 0);
        let (a, mut ja) = join_new(&mut g, &["range"], t0);
        ready(&mut ja).unwrap();
        let (b, mut jb) = join_new(&mut g, &["range"], t0);
        let mut ja = join(&mut g, req(&a, None, &["range"]), t0);
        ready(&mut ja).unwrap();
        ready(&mut jb).unwrap();
        let mut sa = sync(&mut g, &a, 2, vec![], t0);
        let mut sb = sync(&mut g, &b, 2, vec![], t0);
        ready(&mut sa).unwrap();
        ready(&mut sb).unwrap();
        // a keeps heartbeating, b goes silent.
        let t1 = t0 + Duration::from_secs(8);
        assert_eq!(g.heartbeat(&a, None, 2, t1), Ok(()));
        let t2 = t0 + Duration::from_secs(11);
        g.tick(t2, 0);
        assert_eq!(g.members.len(), 1);
        assert_eq!(g.state, GroupState::PreparingRebalance);
        let mut ja = join(&mut g, req(&a, None, &["range"]), t2);
        assert_eq!(ready(&mut ja).unwrap().generation, 3);
    }

    #[test]
    fn members_that_do_not_rejoin_are_dropped_at_the_rebalance_timeout() {
        let t0 = Instant::now();
        let mut g = Group::new("g", 0);
        let (a, mut ja) = join_new(&mut g, &["range"], t0);
        ready(&mut ja).unwrap();
        let mut sa = sync(&mut g, &a, 1, vec![], t0);
        ready(&mut sa).unwrap();
        let (_b, mut jb) = join_new(&mut g, &["range"], t0);
        // a keeps heartbeating (REBALANCE_IN_PROGRESS) but never rejoins.
        let t1 = t0 + Duration::from_secs(9);
        assert_eq!(
            g.heartbeat(&a, None, 1, t1),
            Err(Error::RebalanceInProgress)
        );
        g.tick(t1, 0);
        assert!(ready(&mut jb).is_none());
        let t2 = t0 + Duration::from_secs(31);
        assert_eq!(
            g.heartbeat(&a, None, 1, t2 - Duration::from_secs(1)),
            Err(Error::RebalanceInProgress)
        );
        g.tick(t2, 0);
        let ob = ready(&mut jb).unwrap();
        assert_eq!((ob.error, ob.generation, ob.members.len()), (None, 2, 1));
        assert_eq!(g.heartbeat(&a, None, 1, t2), Err(Error::UnknownMemberId));
    }

    #[test]
    fn initial_delay_gathers_members() {
        let t0 = Instant::now();
        let mut g = Group::new("g", 0);
        let l = limits(3000);
        let mut rxs = Vec::new();
        for _ in 0..3 {
            let (tx, mut rx) = oneshot::channel();
            g.join(req("", None, &["range"]), &l, t0, 0, tx);
            let id = ready(&mut rx).unwrap().member_id;
            let (tx, rx) = oneshot::channel();
            g.join(
                req(&id, None, &["range"]),
                &l,
                t0 + Duration::from_millis(100),
                0,
                tx,
            );
            rxs.push(rx);
        }
        g.tick(t0 + Duration::from_millis(2000), 0);
        assert!(rxs.iter_mut().all(|rx| ready(rx).is_none()));
        g.tick(t0 + Duration::from_millis(3200), 0);
        let outs: Vec<_> = rxs.iter_mut().map(|rx| ready(rx).unwrap()).collect();
        assert!(outs.iter().all(|o| o.generation == 1 && o.error.is_none()));
        assert_eq!(
            outs.iter().filter(|o| !o.members.is_empty()).count(),
            1,
            "one leader"
        );
    }

    #[test]
    fn static_member_restart_keeps_its_assignment_without_rebalance() {
        let t0 = Instant::now();
        let mut g = Group::new("g", 0);
        let mut ja = join(&mut g, req("", Some("i-a"), &["range"]), t0);
        let a = ready(&mut ja).unwrap();
        assert_eq!(a.error, None, "static members skip MEMBER_ID_REQUIRED");
        let (b, mut jb) = join_new(&mut g, &["range"], t0);
        let mut ja = join(&mut g, req(&a.member_id, Some("i-a"), &["range"]), t0);
        let (oa, _ob) = (ready(&mut ja).unwrap(), ready(&mut jb).unwrap());
        let mut sa = sync(
            &mut g,
            &oa.member_id,
            oa.generation,
            vec![
                (oa.member_id.clone(), Bytes::from_static(b"A")),
                (b.clone(), Bytes::from_static(b"B")),
            ],
            t0,
        );
        let mut sb = sync(&mut g, &b, oa.generation, vec![], t0);
        ready(&mut sa).unwrap();
        ready(&mut sb).unwrap();
        let generation = g.generation;
        // The static member restarts: new join without member id, same instance id.
        let mut ja2 = join(
            &mut g,
            req("", Some("i-a"), &["range"]),
            t0 + Duration::from_secs(2),
        );
        let oa2 = ready(&mut ja2).unwrap();
        assert_eq!(oa2.error, None);
        assert_ne!(oa2.member_id, oa.member_id);
        assert_eq!(oa2.generation, generation, "no rebalance");
        assert_eq!(g.state, GroupState::Stable);
        assert_eq!(
            g.heartbeat(&b, None, generation, t0),
            Ok(()),
            "the other member is undisturbed"
        );
        let (tx, mut s2) = oneshot::channel();
        g.sync(
            &oa2.member_id,
            Some("i-a"),
            generation,
            None,
            None,
            vec![],
            t0,
            0,
            tx,
        );
        assert_eq!(ready(&mut s2).unwrap().assignment, Bytes::from_static(b"A"));
        // The old incarnation is fenced.
        assert_eq!(
            g.heartbeat(&oa.member_id, Some("i-a"), generation, t0),
            Err(Error::FencedInstanceId)
        );
    }

    #[test]
    fn commits_are_checked_against_membership() {
        let t0 = Instant::now();
        let mut g = Group::new("g", 0);
        assert_eq!(
            g.check_commit("", None, -1, t0),
            Ok(()),
            "simple commit to an empty group"
        );
        let (a, mut ja) = join_new(&mut g, &["range"], t0);
        ready(&mut ja).unwrap();
        assert_eq!(
            g.check_commit(&a, None, 1, t0),
            Err(Error::RebalanceInProgress)
        );
        let mut sa = sync(&mut g, &a, 1, vec![], t0);
        ready(&mut sa).unwrap();
        assert_eq!(g.check_commit(&a, None, 1, t0), Ok(()));
        assert_eq!(
            g.check_commit(&a, None, 0, t0),
            Err(Error::IllegalGeneration)
        );
        assert_eq!(
            g.check_commit("x", None, 1, t0),
            Err(Error::UnknownMemberId)
        );
        assert_eq!(
            g.check_commit("", None, -1, t0),
            Err(Error::UnknownMemberId)
        );
    }

    #[test]
    fn inconsistent_protocols_and_bad_session_timeouts_are_refused() {
        let t0 = Instant::now();
        let mut g = Group::new("g", 0);
        let (_a, mut ja) = join_new(&mut g, &["range"], t0);
        ready(&mut ja).unwrap();
        let mut jx = join(&mut g, req("", None, &["sticky"]), t0);
        assert_eq!(
            ready(&mut jx).unwrap().error,
            Some(Error::InconsistentGroupProtocol)
        );
        let mut r = req("", None, &["range"]);
        r.session_timeout_ms = 10;
        let mut jy = join(&mut g, r, t0);
        assert_eq!(
            ready(&mut jy).unwrap().error,
            Some(Error::InvalidSessionTimeout)
        );
    }

    #[test]
    fn offsets_expire_only_once_the_group_stayed_empty() {
        let t0 = Instant::now();
        let mut g = Group::new("g", 1_000);
        let committed = |ts| Committed {
            offset: 1,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: ts,
        };
        g.offsets.insert(("t".into(), 0), committed(1_000));
        g.offsets.insert(("t".into(), 1), committed(5_000));
        assert!(g.expired_offsets(10_000, 10_999).is_empty());
        assert_eq!(
            g.expired_offsets(10_000, 11_000),
            vec![("t".to_string(), 0)]
        );
        // With a member the group keeps everything, however old.
        let (_a, mut ja) = join_new(&mut g, &["range"], t0);
        ready(&mut ja).unwrap();
        assert!(g.expired_offsets(10_000, 1_000_000).is_empty());
    }

    #[test]
    fn persisted_group_restores_stable() {
        let t0 = Instant::now();
        let mut g = Group::new("g", 0);
        let (a, mut ja) = join_new(&mut g, &["range"], t0);
        ready(&mut ja).unwrap();
        let mut sa = sync(
            &mut g,
            &a,
            1,
            vec![(a.clone(), Bytes::from_static(b"A"))],
            t0,
        );
        ready(&mut sa).unwrap();
        let restored = Group::restore("g", g.to_value(), t0);
        assert_eq!(restored.state, GroupState::Stable);
        assert_eq!(restored.generation, 1);
        assert_eq!(restored.members[0].assignment, Bytes::from_static(b"A"));
        assert_eq!(
            restored.members[0].metadata("range"),
            Bytes::from_static(b"meta-range")
        );
    }
}
