//! The group operations, as the coordinator shard runs them: each takes its own request and
//! returns its own typed answer. The state machines (`state`, `consumer`) decide; this file
//! creates and drops groups around them, persists what changed and keeps the timer in step.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::channel::oneshot;

use super::consumer::{self, Heartbeat, HeartbeatOutcome, Refusal};
use super::coordinator::Coordinator;
use super::records::{Entry, OffsetValue};
use super::state::{Committed, Group, GroupState, JoinOutcome, JoinRequest, SyncOutcome};
use super::{wall_ms, Error, OFFSET_METADATA_MAX_BYTES};

/// A topic's partitions named in a request.
pub type TopicPartitions = Vec<(String, Vec<i32>)>;

/// Per partition: the topic, the partition, and whether it was done.
pub type PartitionResults = Vec<(String, i32, Result<(), Error>)>;

/// A SyncGroup, as the coordinator needs it.
pub struct SyncRequest {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub assignments: Vec<(String, Bytes)>,
}

/// Who commits: a member of a generation (or of a KIP-848 epoch), or no one (a simple commit).
pub struct MemberRef {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub generation: i32,
}

/// One partition's commit in an OffsetCommit.
pub struct CommitPartition {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

impl CommitPartition {
    /// What a commit of this partition must pass, in a transaction or not: the partition
    /// exists and the metadata is within `offset.metadata.max.bytes`.
    pub(super) fn check(&self, catalog: &crate::catalog::Catalog) -> Result<(), Error> {
        if !catalog.has_partition(&self.topic, self.partition) {
            Err(Error::UnknownTopicOrPartition)
        } else if self
            .metadata
            .as_ref()
            .is_some_and(|m| m.len() > OFFSET_METADATA_MAX_BYTES)
        {
            Err(Error::OffsetMetadataTooLarge)
        } else {
            Ok(())
        }
    }
}

pub struct Described {
    pub state: &'static str,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<DescribedMember>,
}

pub struct DescribedMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

/// A group as the admin listener shows it.
pub struct GroupOverview {
    pub group_id: String,
    pub state: &'static str,
    pub protocol_type: String,
    /// (member id, client id, client host).
    pub members: Vec<(String, String, String)>,
    /// (topic, partition, committed offset, commit timestamp in ms).
    pub offsets: Vec<(String, i32, i64, i64)>,
}

pub struct Listed {
    pub group_id: String,
    pub protocol_type: String,
    pub state: &'static str,
    /// "classic" or "consumer" (KIP-848).
    pub group_type: &'static str,
}

/// A KIP-848 group as ConsumerGroupDescribe reports it.
pub struct DescribedConsumer {
    pub state: &'static str,
    pub epoch: i32,
    pub assignment_epoch: i32,
    pub members: Vec<DescribedConsumerMember>,
}

pub struct DescribedConsumerMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub epoch: i32,
    pub client_id: String,
    pub client_host: String,
    pub topics: Vec<String>,
    pub regex: Option<String>,
    pub assignment: consumer::Assignment,
    pub target: consumer::Assignment,
}

impl Coordinator {
    /// JoinGroup: answers once the rebalance completes (or at once on an error).
    pub async fn join(&self, group: &str, req: JoinRequest) -> Result<JoinOutcome, Error> {
        let (tx, rx) = oneshot::channel();
        let limits = self.limits();
        let (now, wall) = (Instant::now(), wall_ms());
        self.with_group(group, true, |g| g.join(req, &limits, now, wall, tx));
        self.persist_group(group);
        self.schedule(group);
        let outcome = rx.await.map_err(|_| Error::CoordinatorNotAvailable)?;
        // The join may have completed a rebalance that emptied the group.
        self.persist_group(group);
        Ok(outcome)
    }

    /// SyncGroup: answers once the leader's assignment is in (or at once on an error).
    pub async fn sync(&self, group: &str, req: SyncRequest) -> Result<SyncOutcome, Error> {
        let (tx, rx) = oneshot::channel();
        let (now, wall) = (Instant::now(), wall_ms());
        let found = self.with_group(group, false, |g| {
            g.sync(
                &req.member_id,
                req.instance_id.as_deref(),
                req.generation,
                req.protocol_type.as_deref(),
                req.protocol.as_deref(),
                req.assignments,
                now,
                wall,
                tx,
            )
        });
        if found.is_none() {
            return Ok(SyncOutcome::error(Error::UnknownMemberId));
        }
        self.persist_group(group);
        self.schedule(group);
        let answer = rx.await.map_err(|_| Error::CoordinatorNotAvailable);
        tracing::trace!(group, member = %req.member_id, ok = answer.is_ok(), "sync answered");
        answer
    }

    pub fn heartbeat(
        &self,
        group: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), Error> {
        let now = Instant::now();
        self.with_group(group, false, |g| {
            g.heartbeat(member_id, instance_id, generation, now)
        })
        .unwrap_or(Err(Error::UnknownMemberId))
    }

    /// LeaveGroup: one result per `(member id, instance id)`.
    pub fn leave(
        &self,
        group: &str,
        members: &[(String, Option<String>)],
    ) -> Vec<Result<(), Error>> {
        let (now, wall) = (Instant::now(), wall_ms());
        let results = self
            .with_group(group, false, |g| g.leave(members, now, wall))
            .unwrap_or_else(|| vec![Err(Error::UnknownMemberId); members.len()]);
        self.persist_group(group);
        self.schedule(group);
        results
    }

    /// OffsetCommit: validates the committer and each partition, then writes the accepted
    /// commits to the group's `__consumer_offsets` partition and answers once they are durable.
    pub async fn commit(
        &self,
        partition: i32,
        group: &str,
        who: MemberRef,
        partitions: Vec<CommitPartition>,
    ) -> PartitionResults {
        let (mut results, entries) = self.accept_commits(group, who, partitions);
        if !entries.is_empty() {
            if let Err(e) = self.write(partition, &entries).await {
                tracing::warn!(group, error = %e, "cannot write committed offsets");
                for r in results.iter_mut().filter(|r| r.2.is_ok()) {
                    r.2 = Err(Error::CoordinatorNotAvailable);
                }
            }
        }
        results
    }

    /// The commit's checks and its effect on the group in memory: the result per partition,
    /// and the records to write for those accepted.
    fn accept_commits(
        &self,
        group: &str,
        who: MemberRef,
        partitions: Vec<CommitPartition>,
    ) -> (PartitionResults, Vec<Entry>) {
        let (now, wall) = (Instant::now(), wall_ms());
        let catalog = self.catalog.get();
        let mut groups = self.groups.borrow_mut();
        let checked = match groups.get_mut(group) {
            Some(g) => g.check_commit(
                &who.member_id,
                who.instance_id.as_deref(),
                who.generation,
                now,
            ),
            // A group Kafka does not know only takes commits from outside any generation.
            None if who.generation >= 0 => Err(Error::IllegalGeneration),
            None => {
                groups.insert(group.to_string(), Group::new(group, wall));
                Ok(())
            }
        };
        let mut results = Vec::with_capacity(partitions.len());
        let mut entries = Vec::new();
        for c in partitions {
            let r = checked.and_then(|()| c.check(&catalog));
            if r.is_ok() {
                let value = OffsetValue {
                    offset: c.offset,
                    leader_epoch: c.leader_epoch,
                    metadata: c.metadata.unwrap_or_default(),
                    commit_timestamp: wall,
                };
                if let Some(g) = groups.get_mut(group) {
                    g.offsets.insert(
                        (c.topic.clone(), c.partition),
                        Committed::from(value.clone()),
                    );
                }
                entries.push(Entry::Offset {
                    group: group.to_string(),
                    topic: c.topic.clone(),
                    partition: c.partition,
                    value: Some(value),
                });
            }
            results.push((c.topic, c.partition, r));
        }
        if groups
            .get(group)
            .is_some_and(|g| g.generation == 0 && g.is_vacant())
        {
            groups.remove(group);
        }
        (results, entries)
    }

    /// Committed offsets of these partitions (`None` where nothing was committed), or of
    /// every partition the group has committed when `topics` is `None`.
    pub fn fetch_offsets(
        &self,
        group: &str,
        topics: Option<TopicPartitions>,
    ) -> Vec<(String, i32, Option<Committed>)> {
        let groups = self.groups.borrow();
        let g = groups.get(group);
        match topics {
            Some(topics) => topics
                .into_iter()
                .flat_map(|(t, parts)| parts.into_iter().map(move |p| (t.clone(), p)))
                .map(|(t, p)| {
                    let c = g.and_then(|g| g.offsets.get(&(t.clone(), p)).cloned());
                    (t, p, c)
                })
                .collect(),
            None => g
                .map(|g| {
                    g.offsets
                        .iter()
                        .map(|((t, p), c)| (t.clone(), *p, Some(c.clone())))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// DeleteGroups for one group: only an empty one; its offsets go with it.
    pub async fn delete(&self, partition: i32, group: &str) -> Result<(), Error> {
        let entries = {
            let mut groups = self.groups.borrow_mut();
            match groups.get(group) {
                None => return Err(Error::GroupIdNotFound),
                Some(g) if !g.is_empty() => return Err(Error::NonEmptyGroup),
                Some(_) => {}
            }
            let Some(g) = groups.remove(group) else {
                return Err(Error::GroupIdNotFound);
            };
            let mut entries: Vec<Entry> = g
                .offsets
                .into_keys()
                .map(|(topic, p)| Entry::offset_tombstone(group, topic, p))
                .collect();
            entries.push(Entry::Group {
                group: group.to_string(),
                value: None,
            });
            entries
        };
        self.write(partition, &entries).await.map_err(|e| {
            tracing::warn!(group, error = %e, "cannot write the tombstones of a deleted group");
            Error::CoordinatorNotAvailable
        })
    }

    /// OffsetDelete: removes offsets of topics no member subscribes to.
    pub async fn delete_offsets(
        &self,
        partition: i32,
        group: &str,
        topics: TopicPartitions,
    ) -> Result<PartitionResults, Error> {
        let mut results = Vec::new();
        let mut entries = Vec::new();
        {
            let mut groups = self.groups.borrow_mut();
            let g = groups.get_mut(group).ok_or(Error::GroupIdNotFound)?;
            let subscribed = if g.is_empty() {
                Vec::new()
            } else if let Some(c) = g.consumer_members() {
                c.members.values().flat_map(|m| m.topics.clone()).collect()
            } else if g.protocol_type.as_deref() == Some("consumer") {
                g.subscribed_topics()
            } else {
                return Err(Error::NonEmptyGroup);
            };
            for (topic, parts) in topics {
                for p in parts {
                    let r = if subscribed.contains(&topic) {
                        Err(Error::GroupSubscribedToTopic)
                    } else {
                        if g.offsets.remove(&(topic.clone(), p)).is_some() {
                            entries.push(Entry::offset_tombstone(group, topic.clone(), p));
                        }
                        Ok(())
                    };
                    results.push((topic.clone(), p, r));
                }
            }
        }
        if !entries.is_empty() {
            self.write(partition, &entries).await.map_err(|e| {
                tracing::warn!(group, error = %e, "cannot write offset tombstones");
                Error::CoordinatorNotAvailable
            })?;
        }
        Ok(results)
    }

    /// Every group this shard coordinates, filtered by state names (any case; empty = all).
    pub fn list(&self, states: &[String]) -> Vec<Listed> {
        self.groups
            .borrow()
            .values()
            .filter(|g| {
                states.is_empty()
                    || states
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case(g.state_name()))
            })
            .map(|g| Listed {
                group_id: g.id.clone(),
                protocol_type: match g.consumer {
                    Some(_) => "consumer".to_string(),
                    None => g.protocol_type.clone().unwrap_or_default(),
                },
                state: g.state_name(),
                group_type: if g.consumer.is_some() {
                    "consumer"
                } else {
                    "classic"
                },
            })
            .collect()
    }

    /// Every group this shard coordinates with its members and committed offsets, for the
    /// admin listener (`observe`).
    pub fn overview(&self) -> Vec<GroupOverview> {
        self.groups
            .borrow()
            .values()
            .map(|g| {
                let described = g.describe();
                GroupOverview {
                    group_id: g.id.clone(),
                    state: g.state_name(),
                    protocol_type: described.protocol_type,
                    members: described
                        .members
                        .into_iter()
                        .map(|m| (m.member_id, m.client_id, m.client_host))
                        .collect(),
                    offsets: g
                        .offsets
                        .iter()
                        .map(|((t, p), c)| (t.clone(), *p, c.offset, c.commit_timestamp))
                        .collect(),
                }
            })
            .collect()
    }

    /// DescribeGroups for one group; `None` when it does not exist.
    pub fn describe(&self, group: &str) -> Option<Described> {
        let groups = self.groups.borrow();
        let g = groups.get(group)?;
        Some(g.describe())
    }

    /// KIP-848 ConsumerGroupHeartbeat.
    pub fn consumer_heartbeat(
        &self,
        group: &str,
        hb: Heartbeat,
    ) -> Result<HeartbeatOutcome, Refusal> {
        let catalog = self.catalog.get();
        let session = Duration::from_millis(
            self.shard.config.groups.consumer_session_timeout_ms.max(0) as u64,
        );
        let partitions = |t: &str| catalog.topic(t).map(|t| t.partitions);
        let names = || catalog.topics.keys().cloned().collect::<Vec<_>>();
        let now = Instant::now();
        let result = self
            .with_group(group, true, |g| {
                if !g.members.is_empty() || g.state != GroupState::Empty {
                    return Err((
                        Error::GroupIdNotFound,
                        format!("group '{group}' is a classic group with members"),
                    ));
                }
                g.consumer.get_or_insert_with(Default::default).heartbeat(
                    hb,
                    session,
                    &partitions,
                    &names,
                    now,
                )
            })
            .unwrap_or_else(|| Err((Error::CoordinatorNotAvailable, String::new())));
        self.schedule(group);
        result
    }

    /// KIP-848 ConsumerGroupDescribe for one group.
    pub fn describe_consumer(&self, group: &str) -> Result<DescribedConsumer, Refusal> {
        let groups = self.groups.borrow();
        let not_found = || {
            (
                Error::GroupIdNotFound,
                format!("group '{group}' is not a consumer (KIP-848) group"),
            )
        };
        let g = groups.get(group).ok_or_else(not_found)?;
        let c = g.consumer.as_ref().ok_or_else(not_found)?;
        Ok(DescribedConsumer {
            state: c.state_name(),
            epoch: c.epoch,
            assignment_epoch: c.assignment_epoch,
            members: c
                .members
                .values()
                .map(|m| DescribedConsumerMember {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    rack_id: m.rack_id.clone(),
                    epoch: m.epoch,
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    topics: m.topics.clone(),
                    regex: m.regex.clone(),
                    assignment: m.assigned.clone(),
                    target: c.target.get(&m.id).cloned().unwrap_or_default(),
                })
                .collect(),
        })
    }
}

impl Group {
    /// The group as DescribeGroups reports it.
    fn describe(&self) -> Described {
        if let Some(c) = &self.consumer {
            return Described {
                state: self.state_name(),
                protocol_type: "consumer".to_string(),
                protocol: String::new(),
                members: c
                    .members
                    .values()
                    .map(|m| DescribedMember {
                        member_id: m.id.clone(),
                        instance_id: m.instance_id.clone(),
                        client_id: m.client_id.clone(),
                        client_host: m.client_host.clone(),
                        metadata: Bytes::new(),
                        assignment: Bytes::new(),
                    })
                    .collect(),
            };
        }
        let protocol = self.protocol.clone().unwrap_or_default();
        // Metadata and assignments only mean something once the group is stable.
        let stable = self.state == GroupState::Stable;
        Described {
            state: self.state_name(),
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol: protocol.clone(),
            members: self
                .members
                .iter()
                .map(|m| DescribedMember {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if stable {
                        m.metadata(&protocol)
                    } else {
                        Bytes::new()
                    },
                    assignment: if stable {
                        m.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                })
                .collect(),
        }
    }

    /// Topics the members of a consumer-protocol group subscribe to, from their metadata.
    fn subscribed_topics(&self) -> Vec<String> {
        use kafka_protocol::messages::ConsumerProtocolSubscription;
        use kafka_protocol::protocol::Decodable;
        let protocol = self.protocol.clone().unwrap_or_default();
        let mut topics = Vec::new();
        for m in &self.members {
            let mut meta = m.metadata(&protocol);
            if meta.len() < 2 {
                continue;
            }
            let version = i16::from_be_bytes([meta[0], meta[1]]).clamp(0, 3);
            bytes::Buf::advance(&mut meta, 2);
            if let Ok(sub) = ConsumerProtocolSubscription::decode(&mut meta, version) {
                topics.extend(sub.topics.into_iter().map(|t| t.to_string()));
            }
        }
        topics
    }
}
