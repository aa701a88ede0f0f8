//! Requests of members within a generation: SyncGroup (the leader hands in the assignment),
//! Heartbeat, LeaveGroup, and the member checks of an OffsetCommit.

use std::collections::BTreeMap;
use std::time::Instant;

use bytes::Bytes;
use futures::channel::oneshot;

use super::{Error, Group, GroupState, SyncOutcome};

impl Group {
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

    pub(super) fn sync_outcome(&self, i: usize) -> SyncOutcome {
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
}
