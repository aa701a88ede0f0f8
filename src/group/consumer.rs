//! KIP-848 consumer groups (`group.protocol=consumer`): the broker computes the assignment and
//! each member converges to it through ConsumerGroupHeartbeat. Pure, like `state.rs`.
//!
//! Epochs: every change to the group (a member joins or leaves, a subscription or a subscribed
//! topic's partition count changes) bumps the group epoch; the target assignment is recomputed
//! for it (the assignment epoch). A member moves to the target one heartbeat at a time and
//! never owns a partition another member still owns:
//! 1. if it owns partitions its target does not include, it is told to keep only the
//!    intersection and stays at its epoch until a heartbeat reports them released;
//! 2. then it takes the target epoch and gets the target partitions nobody else holds; those
//!    still held elsewhere are added on later heartbeats, once released.
//!
//! Members missing their session (`group.consumer.session.timeout.ms`) or not releasing
//! partitions within their rebalance timeout are removed. Static members (`group.instance.id`)
//! rejoining under a new member id take over the old one's assignment.
//!
//! Not persisted: after a restart members get UNKNOWN_MEMBER_ID and rejoin (committed offsets,
//! which are persisted, are what matters to consumers).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::Error;

/// Partitions by topic name.
pub type Assignment = BTreeMap<String, BTreeSet<i32>>;

/// The assignors a client may name; both are served by the one sticky, balanced assignor here.
pub const ASSIGNORS: &[&str] = &["uniform", "range"];

pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub epoch: i32,
    previous_epoch: i32,
    pub rebalance_timeout_ms: i32,
    pub topics: Vec<String>,
    pub regex: Option<String>,
    /// `regex`, compiled once when it is set.
    pattern: Option<regex::Regex>,
    /// The topics the member subscribes to: `topics` and those matching `regex`, resolved at
    /// its heartbeats (so regex subscriptions follow new topics within a heartbeat interval).
    subscribed: BTreeSet<String>,
    /// What the member owns now.
    pub assigned: Assignment,
    /// Partitions it was told to give up and has not yet reported released.
    pub revoking: Assignment,
    deadline: Instant,
    revoke_deadline: Option<Instant>,
    /// The assignment changed since the member was last told.
    changed: bool,
}

#[derive(Default)]
pub struct ConsumerGroup {
    pub epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, Member>,
    pub target: BTreeMap<String, Assignment>,
    /// Partition counts of the subscribed topics the target was computed from.
    counts: BTreeMap<String, i32>,
}

/// A ConsumerGroupHeartbeat, with topic ids already turned into names.
#[derive(Debug, Clone, Default)]
pub struct Heartbeat {
    pub member_id: String,
    pub epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    /// `None`: unchanged since the last heartbeat.
    pub topics: Option<Vec<String>>,
    pub regex: Option<String>,
    pub owned: Option<Assignment>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatOutcome {
    pub member_id: String,
    pub epoch: i32,
    /// The full assignment, when it changed (or on join).
    pub assignment: Option<Assignment>,
}

/// A refusal and its message for the client.
pub type Refusal = (Error, String);

pub type HeartbeatResult = Result<HeartbeatOutcome, Refusal>;

fn error(e: Error, msg: impl Into<String>) -> Refusal {
    (e, msg.into())
}

fn not_a_member(id: &str) -> Refusal {
    error(
        Error::UnknownMemberId,
        format!("member {id} is not in the group"),
    )
}

impl ConsumerGroup {
    /// Kafka's state names for consumer groups.
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self
            .members
            .values()
            .any(|m| m.epoch < self.assignment_epoch)
        {
            "Reconciling"
        } else if self.assignment_epoch < self.epoch {
            "Assigning"
        } else {
            "Stable"
        }
    }

    /// Handles one heartbeat. `partitions` gives the partition count of an existing topic;
    /// `topic_names` lists every topic (for regex subscriptions).
    pub fn heartbeat(
        &mut self,
        hb: Heartbeat,
        session_timeout: Duration,
        partitions: &dyn Fn(&str) -> Option<i32>,
        topic_names: &dyn Fn() -> Vec<String>,
        now: Instant,
    ) -> HeartbeatResult {
        if hb.epoch == -1 || hb.epoch == -2 {
            // Leaving (-2: a static member leaving for now; it is gone either way).
            let id = self
                .find(&hb.member_id, hb.instance_id.as_deref())
                .ok_or_else(|| error(Error::UnknownMemberId, "not a member"))?;
            self.remove(&id);
            return Ok(HeartbeatOutcome {
                member_id: id,
                epoch: hb.epoch,
                assignment: None,
            });
        }
        let pattern = match hb.regex.as_deref() {
            Some(r) => Some(compile(r)?),
            None => None,
        };
        // Whatever changes in this heartbeat makes one new group epoch.
        let mut bump = if hb.epoch == 0 {
            self.join(&hb, now)?
        } else {
            self.check_known(&hb)?;
            false
        };
        bump |= self.update_member(&hb, pattern, session_timeout, topic_names, now)?;
        // Subscribed topics appearing, disappearing or growing change the target too.
        let counts = self.subscribed_counts(partitions);
        if counts != self.counts {
            self.counts = counts;
            bump = true;
        }
        if bump {
            self.epoch += 1;
        }
        if self.assignment_epoch < self.epoch {
            self.compute_target();
        }
        let member_id = hb.member_id.clone();
        self.reconcile(&member_id, hb.owned.as_ref(), now);
        let Some(m) = self.members.get_mut(&member_id) else {
            return Err(not_a_member(&member_id));
        };
        let send = m.changed || hb.epoch == 0;
        m.changed = false;
        Ok(HeartbeatOutcome {
            member_id,
            epoch: m.epoch,
            assignment: send.then(|| m.assigned.clone()),
        })
    }

    /// A heartbeat of a known member (epoch > 0): the member exists, its instance id matches,
    /// and its epoch is the current one (or the previous one, while a response was lost).
    fn check_known(&self, hb: &Heartbeat) -> Result<(), Refusal> {
        let m = self
            .members
            .get(&hb.member_id)
            .ok_or_else(|| not_a_member(&hb.member_id))?;
        if let Some(instance) = &hb.instance_id {
            if m.instance_id.as_ref() != Some(instance) {
                return Err(error(Error::FencedInstanceId, "instance id mismatch"));
            }
        }
        if hb.epoch > m.epoch || (hb.epoch < m.epoch && hb.epoch != m.previous_epoch) {
            return Err(error(
                Error::FencedMemberEpoch,
                format!("epoch {} is not the member's epoch {}", hb.epoch, m.epoch),
            ));
        }
        Ok(())
    }

    /// Takes what a heartbeat says about its member (session, client, subscription). Returns
    /// whether the topics it subscribes to changed.
    fn update_member(
        &mut self,
        hb: &Heartbeat,
        pattern: Option<regex::Regex>,
        session_timeout: Duration,
        topic_names: &dyn Fn() -> Vec<String>,
        now: Instant,
    ) -> Result<bool, Refusal> {
        let m = self
            .members
            .get_mut(&hb.member_id)
            .ok_or_else(|| not_a_member(&hb.member_id))?;
        m.deadline = now + session_timeout;
        if hb.rebalance_timeout_ms >= 0 {
            m.rebalance_timeout_ms = hb.rebalance_timeout_ms;
        }
        m.client_id = hb.client_id.clone();
        m.client_host = hb.client_host.clone();
        if let Some(topics) = &hb.topics {
            m.topics = topics.clone();
        }
        if hb.regex.is_some() && m.regex != hb.regex {
            m.regex = hb.regex.clone();
            m.pattern = pattern;
        }
        let mut subscribed: BTreeSet<String> = m.topics.iter().cloned().collect();
        if let Some(re) = &m.pattern {
            subscribed.extend(
                topic_names()
                    .into_iter()
                    .filter(|n| !crate::catalog::is_internal(n) && re.is_match(n)),
            );
        }
        if m.subscribed == subscribed {
            return Ok(false);
        }
        m.subscribed = subscribed;
        Ok(true)
    }

    /// Epoch 0: a new member, a member starting over, or a static member's new incarnation.
    /// Returns whether the group changed (a static member's return does not change it).
    fn join(&mut self, hb: &Heartbeat, now: Instant) -> Result<bool, Refusal> {
        if hb.member_id.is_empty() {
            return Err(error(Error::InvalidRequest, "member id is required"));
        }
        if hb.topics.is_none() && hb.regex.is_none() {
            return Err(error(
                Error::InvalidRequest,
                "a joining member must give its subscription",
            ));
        }
        let mut member = Member {
            id: hb.member_id.clone(),
            instance_id: hb.instance_id.clone(),
            rack_id: hb.rack_id.clone(),
            client_id: hb.client_id.clone(),
            client_host: hb.client_host.clone(),
            epoch: 0,
            previous_epoch: -1,
            rebalance_timeout_ms: hb.rebalance_timeout_ms.max(0),
            topics: Vec::new(),
            regex: None,
            pattern: None,
            subscribed: BTreeSet::new(),
            assigned: Assignment::new(),
            revoking: Assignment::new(),
            deadline: now,
            revoke_deadline: None,
            changed: true,
        };
        if let Some(instance) = &hb.instance_id {
            let previous = self
                .members
                .values()
                .find(|m| m.instance_id.as_ref() == Some(instance))
                .map(|m| m.id.clone());
            if let Some(old) = previous.and_then(|id| self.members.remove(&id)) {
                // KIP-345 under KIP-848: the new incarnation takes over epoch and assignment.
                if let Some(t) = self.target.remove(&old.id) {
                    self.target.insert(member.id.clone(), t);
                }
                member.epoch = old.epoch;
                member.previous_epoch = old.previous_epoch;
                member.assigned = old.assigned;
                member.revoking = old.revoking;
                member.revoke_deadline = old.revoke_deadline;
                member.topics = old.topics;
                member.regex = old.regex;
                member.pattern = old.pattern;
                member.subscribed = old.subscribed;
                self.members.insert(member.id.clone(), member);
                return Ok(false);
            }
        }
        // A member rejoining with epoch 0 lost its partitions: it starts over.
        self.members.remove(&hb.member_id);
        self.members.insert(member.id.clone(), member);
        Ok(true)
    }

    fn find(&self, member_id: &str, instance: Option<&str>) -> Option<String> {
        if self.members.contains_key(member_id) {
            return Some(member_id.to_string());
        }
        let instance = instance?;
        self.members
            .values()
            .find(|m| m.instance_id.as_deref() == Some(instance))
            .map(|m| m.id.clone())
    }

    /// Removes a member; its partitions are free for the others at the next epoch.
    pub fn remove(&mut self, id: &str) {
        if self.members.remove(id).is_some() {
            self.target.remove(id);
            self.epoch += 1;
        }
    }

    fn subscribed_counts(&self, partitions: &dyn Fn(&str) -> Option<i32>) -> BTreeMap<String, i32> {
        let mut counts = BTreeMap::new();
        for t in self.members.values().flat_map(|m| &m.subscribed) {
            if let Some(n) = partitions(t) {
                counts.insert(t.clone(), n);
            }
        }
        counts
    }

    /// The target assignment for the current epoch: per topic, its partitions split evenly
    /// among the members subscribing to it, each keeping what it had in the previous target
    /// as far as its share allows (few partitions move on a rebalance).
    fn compute_target(&mut self) {
        let mut target: BTreeMap<String, Assignment> = self
            .members
            .keys()
            .map(|id| (id.clone(), Assignment::new()))
            .collect();
        for (topic, &count) in &self.counts {
            let members: Vec<&String> = self
                .members
                .values()
                .filter(|m| m.subscribed.contains(topic))
                .map(|m| &m.id)
                .collect();
            if members.is_empty() || count <= 0 {
                continue;
            }
            let previous = |id: &String| -> Vec<i32> {
                self.target
                    .get(id)
                    .and_then(|a| a.get(topic))
                    .map(|s| s.iter().copied().filter(|&p| p < count).collect())
                    .unwrap_or_default()
            };
            let k = members.len();
            let base = count as usize / k;
            let extra = count as usize % k;
            // The remainder goes to members that held the most before (less movement).
            let mut order: Vec<&String> = members.clone();
            order.sort_by_key(|id| std::cmp::Reverse(previous(id).len()));
            let quota: BTreeMap<&String, usize> = order
                .iter()
                .enumerate()
                .map(|(i, id)| (*id, base + usize::from(i < extra)))
                .collect();
            let mut taken = vec![false; count as usize];
            for id in &members {
                let keep: Vec<i32> = previous(id)
                    .into_iter()
                    .filter(|&p| !taken[p as usize])
                    .take(quota[id])
                    .collect();
                for &p in &keep {
                    taken[p as usize] = true;
                }
                target
                    .entry((*id).clone())
                    .or_default()
                    .entry(topic.clone())
                    .or_default()
                    .extend(keep);
            }
            let mut free = (0..count).filter(|&p| !taken[p as usize]);
            for id in &members {
                let mine = target
                    .entry((*id).clone())
                    .or_default()
                    .entry(topic.clone())
                    .or_default();
                while mine.len() < quota[id] {
                    match free.next() {
                        Some(p) => {
                            mine.insert(p);
                        }
                        None => break,
                    }
                }
            }
        }
        for a in target.values_mut() {
            a.retain(|_, ps| !ps.is_empty());
        }
        self.target = target;
        self.assignment_epoch = self.epoch;
    }

    /// Moves one member towards its target (see the module doc).
    fn reconcile(&mut self, id: &str, owned: Option<&Assignment>, now: Instant) {
        let held_elsewhere: BTreeSet<(String, i32)> = self
            .members
            .values()
            .filter(|m| m.id != id)
            .flat_map(|m| flatten(&m.assigned).chain(flatten(&m.revoking)))
            .collect();
        let target = self.target.get(id).cloned().unwrap_or_default();
        let assignment_epoch = self.assignment_epoch;
        let Some(m) = self.members.get_mut(id) else {
            return;
        };
        if !m.revoking.is_empty() {
            let released = owned.is_some_and(|owned| {
                flatten(&m.revoking).all(|(t, p)| !owned.get(&t).is_some_and(|s| s.contains(&p)))
            });
            if !released {
                return;
            }
            m.revoking.clear();
            m.revoke_deadline = None;
        }
        if m.epoch < assignment_epoch {
            let revoke = minus(&m.assigned, &target);
            if !revoke.is_empty() {
                m.assigned = intersect(&m.assigned, &target);
                m.revoking = revoke;
                m.revoke_deadline =
                    Some(now + Duration::from_millis(m.rebalance_timeout_ms as u64));
                m.changed = true;
                return;
            }
            m.previous_epoch = m.epoch;
            m.epoch = assignment_epoch;
            m.changed = true;
        }
        // Take the target partitions nobody else holds any more.
        for (t, p) in flatten(&target) {
            if !held_elsewhere.contains(&(t.clone(), p))
                && m.assigned.entry(t.clone()).or_default().insert(p)
            {
                m.changed = true;
            }
        }
        m.assigned.retain(|_, ps| !ps.is_empty());
    }

    /// The earliest session or revocation deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.members
            .values()
            .flat_map(|m| std::iter::once(m.deadline).chain(m.revoke_deadline))
            .min()
    }

    /// Removes members whose session expired or who did not release partitions in time.
    /// Returns the removed ids.
    pub fn tick(&mut self, now: Instant) -> Vec<String> {
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.deadline <= now || m.revoke_deadline.is_some_and(|d| d <= now))
            .map(|m| m.id.clone())
            .collect();
        for id in &gone {
            self.remove(id);
        }
        gone
    }
}

fn compile(r: &str) -> Result<regex::Regex, Refusal> {
    regex::Regex::new(&format!("^(?:{r})$"))
        .map_err(|e| error(Error::InvalidRegularExpression, e.to_string()))
}

fn flatten(a: &Assignment) -> impl Iterator<Item = (String, i32)> + '_ {
    a.iter()
        .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
}

fn minus(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = Assignment::new();
    for (t, p) in flatten(a) {
        if !b.get(&t).is_some_and(|s| s.contains(&p)) {
            out.entry(t).or_default().insert(p);
        }
    }
    out
}

fn intersect(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = Assignment::new();
    for (t, p) in flatten(a) {
        if b.get(&t).is_some_and(|s| s.contains(&p)) {
            out.entry(t).or_default().insert(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SESSION: Duration = Duration::from_secs(45);

    fn hb(id: &str, epoch: i32, owned: Option<&Assignment>) -> Heartbeat {
        Heartbeat {
            member_id: id.into(),
            epoch,
            rebalance_timeout_ms: 30_000,
            topics: (epoch == 0).then(|| vec!["t".to_string()]),
            owned: owned.cloned(),
            ..Heartbeat::default()
        }
    }

    fn beat(g: &mut ConsumerGroup, h: Heartbeat, now: Instant) -> HeartbeatOutcome {
        g.heartbeat(
            h,
            SESSION,
            &|t| (t == "t").then_some(6),
            &|| vec!["t".into()],
            now,
        )
        .expect("heartbeat")
    }

    fn count(a: &Assignment) -> usize {
        a.values().map(|s| s.len()).sum()
    }

    #[test]
    fn members_converge_without_owning_a_partition_twice() {
        let t0 = Instant::now();
        let mut g = ConsumerGroup::default();
        let a = beat(&mut g, hb("a", 0, None), t0);
        let a_parts = a.assignment.clone().unwrap();
        assert_eq!(count(&a_parts), 6);
        assert_eq!(a.epoch, 1);
        // b joins: the target splits 3/3, but b only gets partitions once a released them.
        let b = beat(&mut g, hb("b", 0, None), t0);
        assert_eq!(b.epoch, 2);
        assert_eq!(
            count(b.assignment.as_ref().unwrap()),
            0,
            "a still owns everything"
        );
        let a2 = beat(&mut g, hb("a", 1, None), t0);
        assert_eq!(a2.epoch, 1, "a stays at its epoch until it revokes");
        let kept = a2.assignment.clone().unwrap();
        assert_eq!(count(&kept), 3);
        // a reports it released the others.
        let a3 = beat(&mut g, hb("a", 1, Some(&kept)), t0);
        assert_eq!(a3.epoch, 2);
        let b2 = beat(&mut g, hb("b", 2, None), t0);
        let b_parts = b2.assignment.unwrap();
        assert_eq!(count(&b_parts), 3);
        assert!(flatten(&b_parts).all(|p| !flatten(&kept).any(|q| q == p)));
        assert_eq!(g.state_name(), "Stable");
        // b leaves: a gets everything back.
        beat(&mut g, hb("b", -1, None), t0);
        let a4 = beat(&mut g, hb("a", 2, None), t0);
        assert_eq!(count(a4.assignment.as_ref().unwrap()), 6);
    }

    #[test]
    fn fencing_and_expiry() {
        let t0 = Instant::now();
        let mut g = ConsumerGroup::default();
        beat(&mut g, hb("a", 0, None), t0);
        let err = g
            .heartbeat(hb("a", 7, None), SESSION, &|_| Some(6), &Vec::new, t0)
            .unwrap_err();
        assert_eq!(err.0, Error::FencedMemberEpoch);
        let err = g
            .heartbeat(hb("zz", 1, None), SESSION, &|_| Some(6), &Vec::new, t0)
            .unwrap_err();
        assert_eq!(err.0, Error::UnknownMemberId);
        assert_eq!(g.tick(t0 + SESSION), vec!["a".to_string()]);
        assert!(g.members.is_empty());
    }

    #[test]
    fn a_static_member_takes_over_its_assignment() {
        let t0 = Instant::now();
        let mut g = ConsumerGroup::default();
        let mut h = hb("a1", 0, None);
        h.instance_id = Some("i".into());
        let a = beat(&mut g, h, t0);
        let epoch = g.epoch;
        let mut h2 = hb("a2", 0, None);
        h2.instance_id = Some("i".into());
        let a2 = beat(&mut g, h2, t0);
        assert_eq!(a2.assignment, a.assignment);
        assert_eq!(g.epoch, epoch, "no new epoch for a static member's return");
        assert!(!g.members.contains_key("a1"));
    }

    #[test]
    fn regex_subscriptions_follow_new_topics() {
        let t0 = Instant::now();
        let mut g = ConsumerGroup::default();
        let mut h = hb("a", 0, None);
        h.topics = None;
        h.regex = Some("orders-.*".into());
        let topics = std::cell::RefCell::new(vec!["orders-1".to_string(), "other".to_string()]);
        let parts = |t: &str| Some(if t.starts_with("orders") { 2 } else { 1 });
        let names = || topics.borrow().clone();
        let a = g.heartbeat(h, SESSION, &parts, &names, t0).unwrap();
        assert_eq!(
            a.assignment.unwrap().keys().collect::<Vec<_>>(),
            ["orders-1"]
        );
        topics.borrow_mut().push("orders-2".into());
        let a = g
            .heartbeat(hb("a", a.epoch, None), SESSION, &parts, &names, t0)
            .unwrap();
        assert_eq!(a.assignment.unwrap().len(), 2);
    }

    #[test]
    fn target_is_sticky() {
        let t0 = Instant::now();
        let mut g = ConsumerGroup::default();
        for id in ["a", "b", "c"] {
            beat(&mut g, hb(id, 0, None), t0);
        }
        g.compute_target();
        let before = g.target.clone();
        g.remove("c");
        g.compute_target();
        for id in ["a", "b"] {
            let kept = intersect(&before[id], &g.target[id]);
            assert_eq!(count(&kept), 2, "{id} keeps its partitions");
            assert_eq!(count(&g.target[id]), 3);
        }
    }
}
