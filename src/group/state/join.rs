//! The join phase of a rebalance: members join (new, known, or static members returning
//! under a new id), the group waits for everyone (or its deadline), picks a protocol and a
//! leader, and answers every join with the new generation.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::channel::oneshot;

use super::{ms, Error, Group, GroupState, JoinOutcome, JoinRequest, Limits, Member, SyncOutcome};

impl Group {
    /// Protocols every member supports, in the first member's order of preference.
    pub(super) fn candidates(&self) -> Vec<String> {
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
    pub(super) fn accepts(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
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
    pub(super) fn select_protocol(&self) -> Option<String> {
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

    pub(super) fn full(&self, limits: &Limits) -> bool {
        self.members.len() + self.pending.len() >= limits.max_size
    }

    /// The answer a member gets for the current generation.
    pub(super) fn current_outcome(&self, member: usize) -> JoinOutcome {
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

    pub(super) fn update_member(
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

    pub(super) fn add_member(
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
    pub(super) fn replace_static(
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
    pub(super) fn prepare_rebalance(
        &mut self,
        initial_delay: Duration,
        now: Instant,
        wall_ms: i64,
    ) {
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
        let rebalance_timeout = self.rebalance_timeout();
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
    pub(super) fn try_complete_join(&mut self, now: Instant, wall_ms: i64) {
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
        self.sync_deadline = Some(now + self.rebalance_timeout());
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

    /// The group's rebalance timeout: the longest any member asked for, as in Kafka.
    fn rebalance_timeout(&self) -> Duration {
        self.members
            .iter()
            .map(|m| ms(m.rebalance_timeout_ms))
            .max()
            .unwrap_or_default()
    }

    /// Removes a member without changing state; its waiters learn it is gone.
    pub(super) fn drop_member(&mut self, id: &str) {
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
    pub(super) fn remove_member(&mut self, id: &str, now: Instant, wall_ms: i64) {
        self.drop_member(id);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(Duration::ZERO, now, wall_ms)
            }
            GroupState::PreparingRebalance => self.try_complete_join(now, wall_ms),
            GroupState::Empty | GroupState::Dead => {}
        }
    }
}
