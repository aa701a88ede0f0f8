//! One consumer group's state machine: the classic rebalance protocol as Kafka's
//! GroupCoordinator answers it. Pure: no I/O and no clock of its own (every call takes `now`),
//! so it is tested directly (`tests.rs`). The coordinator routes requests here, persists
//! what changed (`Group::dirty`) and drives time with `tick`. The join phase is `join.rs`;
//! requests within a generation (sync, heartbeat, leave, commit checks) are `session.rs`.
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

use bytes::Bytes;
use futures::channel::oneshot;

use super::records::{GroupValue, MemberValue, OffsetValue};
use super::Error;

mod join;
mod session;
#[cfg(test)]
mod tests;

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
