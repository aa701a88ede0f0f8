//! The group coordinator: consumer groups (classic protocol) and their committed offsets.
//!
//! A group belongs to partition `partition_for(group)` of the internal topic
//! `__consumer_offsets` (Kafka's hash: Java's `String.hashCode`, so a group maps to the same
//! partition as on a Kafka cluster), and the shard owning that partition is the group's
//! coordinator. Every group request is routed there by message passing, like a produce to that
//! partition; the coordinator's state lives on that shard only, without locks.
//!
//! Commits and group membership are records in that partition (`records.rs`, Kafka's formats),
//! appended through the same log as any topic: commits are answered once durable, so they
//! survive a restart or a kill -9. When a shard opens a `__consumer_offsets` partition it
//! replays it (last record wins) before the partition serves, so groups come back as they were
//! at their last stable point. The topic is created on the first FindCoordinator for a group.
//!
//! Time: a per-shard timer sleeps until the earliest deadline of its groups (a session, a join
//! or sync phase, a pending member id) and runs them then, to the millisecond as Kafka does;
//! a request that sets an earlier deadline wakes it. Every
//! `offsets.retention.check.interval.ms` it also removes the offsets of groups that have been
//! empty for `offsets.retention.minutes`.

pub mod consumer;
pub mod records;
pub mod state;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::channel::oneshot;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use kafka_protocol::ResponseError;

use crate::log::{batch, LogError, PartitionLog};
use crate::shard::{Shard, ShardRequest};
use records::{Entry, OffsetValue};
use state::{Committed, Group, GroupState, JoinOutcome, JoinRequest, Limits, SyncOutcome};

/// The internal topic holding commits and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Longest the timer sleeps when nothing is due (it is woken for anything sooner).
const TIMER_IDLE: Duration = Duration::from_secs(3600);

/// Longest commit metadata string kept (Kafka's `offset.metadata.max.bytes` default).
pub const OFFSET_METADATA_MAX_BYTES: usize = 4096;

/// The `__consumer_offsets` partition of a group: Kafka's `abs(groupId.hashCode) % partitions`.
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    let hash = group
        .encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32));
    // Kafka's Utils.abs: Math.abs, with Integer.MIN_VALUE mapped to 0.
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions.max(1)
}

fn code(e: ResponseError) -> i16 {
    e.code()
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A topic's partitions named in a request.
pub type TopicPartitions = Vec<(String, Vec<i32>)>;

/// One partition's commit in an OffsetCommit.
pub struct CommitPartition {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

/// A group request, as the coordinator shard runs it.
pub enum Op {
    Join(JoinRequest),
    Sync {
        member_id: String,
        instance_id: Option<String>,
        generation: i32,
        protocol_type: Option<String>,
        protocol: Option<String>,
        assignments: Vec<(String, Bytes)>,
    },
    Heartbeat {
        member_id: String,
        instance_id: Option<String>,
        generation: i32,
    },
    Leave(Vec<(String, Option<String>)>),
    Commit {
        member_id: String,
        instance_id: Option<String>,
        generation: i32,
        partitions: Vec<CommitPartition>,
    },
    /// Committed offsets of these partitions, or of every partition when `None`.
    FetchOffsets(Option<TopicPartitions>),
    Describe,
    Delete,
    DeleteOffsets(TopicPartitions),
    /// Every group this shard coordinates, filtered by state names (any case; empty = all).
    List(Vec<String>),
    /// KIP-848 ConsumerGroupHeartbeat.
    ConsumerHeartbeat(consumer::Heartbeat),
    /// KIP-848 ConsumerGroupDescribe.
    DescribeConsumer,
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

/// A group request's answer.
pub enum Out {
    Join(JoinOutcome),
    Sync(SyncOutcome),
    /// Heartbeat, DeleteGroups.
    Code(i16),
    /// LeaveGroup: one code per member.
    Codes(Vec<i16>),
    /// OffsetCommit, OffsetDelete: one code per partition.
    Partitions(Vec<(String, i32, i16)>),
    Offsets(Vec<(String, i32, Option<Committed>)>),
    /// DescribeGroups: `None` when the group does not exist.
    Described(Option<Described>),
    Listed(Vec<Listed>),
    ConsumerHeartbeat(consumer::HeartbeatResult),
    /// ConsumerGroupDescribe: an error code and message when not a KIP-848 group.
    DescribedConsumer(Result<DescribedConsumer, (i16, String)>),
}

pub type OpResult = Result<Out, i16>;

/// A shard's coordinator state: the groups of the `__consumer_offsets` partitions it owns.
#[derive(Default)]
pub struct Coordinator {
    groups: RefCell<HashMap<String, Group>>,
    /// The broker is stopping: waiting joins and syncs were answered NOT_COORDINATOR.
    stopping: Cell<bool>,
    next_expiry_check: Cell<Option<Instant>>,
    /// When the timer wakes next, and the way to wake it sooner.
    timer_at: Cell<Option<Instant>>,
    timer_wake: crate::shard::notify::Notify,
}

/// Runs `op` for `group` on its coordinator shard and returns the answer. `Err` is a
/// request-level error code (COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR).
pub async fn call(shard: &Rc<Shard>, group: &str, op: Op) -> OpResult {
    let catalog = shard.catalog();
    let Some(topic) = catalog.topic(OFFSETS_TOPIC) else {
        return Err(code(ResponseError::CoordinatorNotAvailable));
    };
    let partition = partition_for(group, topic.partitions);
    let owner = shard.owner(OFFSETS_TOPIC, partition);
    ask(shard, owner, partition, group, op).await
}

/// Every group on every shard (ListGroups).
pub async fn list_all(shard: &Rc<Shard>, states: Vec<String>) -> Vec<Listed> {
    let mut out = Vec::new();
    for owner in 0..shard.count {
        if let Ok(Out::Listed(groups)) = ask(shard, owner, -1, "", Op::List(states.clone())).await {
            out.extend(groups);
        }
    }
    out
}

async fn ask(shard: &Rc<Shard>, owner: usize, partition: i32, group: &str, op: Op) -> OpResult {
    let (tx, rx) = oneshot::channel();
    shard
        .send(
            owner,
            ShardRequest::Group {
                partition,
                group: group.to_string(),
                op,
                reply: tx,
            },
        )
        .await;
    let result = rx
        .await
        .unwrap_or(Err(code(ResponseError::CoordinatorNotAvailable)));
    if let Err(e) = result {
        tracing::debug!(group, owner, partition, error = e, "group request refused");
    }
    result
}

/// Runs on the coordinator shard: answers `op` in a task (joins and syncs wait for the rest of
/// the group).
pub fn on_owner(
    shard: &Rc<Shard>,
    partition: i32,
    group: String,
    op: Op,
    reply: oneshot::Sender<OpResult>,
) {
    let shard = shard.clone();
    glommio::spawn_local(async move {
        let result = run(&shard, partition, &group, op).await;
        let _ = reply.send(result);
    })
    .detach();
}

impl Coordinator {
    fn limits(shard: &Shard) -> Limits {
        let g = &shard.config.groups;
        Limits {
            initial_rebalance_delay: Duration::from_millis(g.initial_rebalance_delay_ms),
            min_session_timeout_ms: g.min_session_timeout_ms,
            max_session_timeout_ms: g.max_session_timeout_ms,
            max_size: g.max_size.max(1) as usize,
        }
    }

    /// The broker is stopping: answer everyone waiting so connections can drain.
    pub fn shutdown(&self) {
        self.stopping.set(true);
        self.timer_wake.notify_all();
        for g in self.groups.borrow_mut().values_mut() {
            g.fail_waiters(code(ResponseError::NotCoordinator));
        }
    }

    /// Rebuilds the groups of one `__consumer_offsets` partition from its records.
    pub async fn load(&self, log: &PartitionLog) -> Result<(), LogError> {
        let start = Instant::now();
        let mut offset = log.log_start_offset();
        let end = log.high_watermark();
        let mut applied = 0usize;
        let now = Instant::now();
        while offset < end {
            let read = log.read(offset, log.config().io_buffer_bytes).await?;
            let mut buf = read.records;
            if buf.is_empty() {
                break;
            }
            let mut next = offset;
            while !buf.is_empty() {
                let set = match RecordBatchDecoder::decode(&mut buf) {
                    Ok(set) => set,
                    Err(e) => {
                        tracing::error!(partition = log.partition, offset = next, error = %e, "cannot decode a batch of {OFFSETS_TOPIC}; the rest of the partition is not loaded");
                        return Ok(());
                    }
                };
                for r in set.records {
                    if r.offset < offset {
                        continue;
                    }
                    next = r.offset + 1;
                    let Some(key) = r.key.as_deref() else {
                        continue;
                    };
                    match Entry::decode(key, r.value.as_deref()) {
                        Some(entry) => {
                            self.apply(entry, now);
                            applied += 1;
                        }
                        None => {
                            tracing::warn!(partition = log.partition, offset = r.offset, "skipping a record of {OFFSETS_TOPIC} that is not a commit or group metadata")
                        }
                    }
                }
            }
            if next <= offset {
                break;
            }
            offset = next;
        }
        if applied > 0 {
            tracing::info!(
                partition = log.partition,
                records = applied,
                elapsed_ms = start.elapsed().as_millis() as u64,
                "loaded groups from {OFFSETS_TOPIC}"
            );
        }
        Ok(())
    }

    fn apply(&self, entry: Entry, now: Instant) {
        let mut groups = self.groups.borrow_mut();
        match entry {
            Entry::Offset {
                group,
                topic,
                partition,
                value,
            } => match value {
                Some(v) => {
                    groups
                        .entry(group.clone())
                        .or_insert_with(|| Group::new(&group, v.commit_timestamp))
                        .offsets
                        .insert(
                            (topic, partition),
                            Committed {
                                offset: v.offset,
                                leader_epoch: v.leader_epoch,
                                metadata: v.metadata,
                                commit_timestamp: v.commit_timestamp,
                            },
                        );
                }
                None => {
                    if let Some(g) = groups.get_mut(&group) {
                        g.offsets.remove(&(topic, partition));
                    }
                }
            },
            Entry::Group { group, value } => match value {
                Some(v) => {
                    let offsets = groups.remove(&group).map(|g| g.offsets).unwrap_or_default();
                    let mut g = Group::restore(&group, v, now);
                    g.offsets = offsets;
                    groups.insert(group, g);
                }
                None => {
                    groups.remove(&group);
                }
            },
        }
    }

    /// The per-shard timer: deadlines every `TICK`, offset expiry every check interval.
    pub async fn run_timer(shard: Rc<Shard>) {
        let interval =
            Duration::from_millis(shard.config.groups.offsets_retention_check_interval_ms);
        let co = &shard.groups;
        co.next_expiry_check.set(Some(Instant::now() + interval));
        loop {
            if co.stopping.get() {
                return;
            }
            let now = Instant::now();
            let wall = wall_ms();
            let mut dirty = Vec::new();
            for g in co.groups.borrow_mut().values_mut() {
                g.tick(now, wall);
                if g.dirty {
                    dirty.push(g.id.clone());
                }
            }
            for id in dirty {
                co.persist_group(&shard, &id);
            }
            if co.next_expiry_check.get().is_some_and(|at| now >= at) {
                co.expire_offsets(&shard, wall).await;
                co.next_expiry_check.set(Some(Instant::now() + interval));
            }
            let next = co
                .groups
                .borrow()
                .values()
                .filter_map(Group::next_deadline)
                .chain(co.next_expiry_check.get())
                .min()
                .unwrap_or_else(|| Instant::now() + TIMER_IDLE);
            co.timer_at.set(Some(next));
            let woken = co.timer_wake.notified();
            let sleep = glommio::timer::sleep(next.saturating_duration_since(Instant::now()));
            futures::pin_mut!(woken);
            futures::pin_mut!(sleep);
            futures::future::select(woken, sleep).await;
        }
    }

    /// Wakes the timer if `group` now has a deadline before the timer's next wake-up.
    fn schedule(&self, group: &str) {
        let deadline = self
            .groups
            .borrow()
            .get(group)
            .and_then(Group::next_deadline);
        if deadline.is_some_and(|d| self.timer_at.get().is_none_or(|at| d < at)) {
            self.timer_at.set(deadline);
            self.timer_wake.notify_all();
        }
    }

    /// Removes the offsets of groups empty for longer than `offsets.retention.minutes`, and
    /// groups left with nothing.
    async fn expire_offsets(&self, shard: &Rc<Shard>, wall: i64) {
        let retention = shard.config.groups.offsets_retention_ms;
        let mut tombstones: Vec<Entry> = Vec::new();
        {
            let mut groups = self.groups.borrow_mut();
            let mut vacant = Vec::new();
            for g in groups.values_mut() {
                let expired = g.expired_offsets(retention, wall);
                for (topic, partition) in expired {
                    g.offsets.remove(&(topic.clone(), partition));
                    tombstones.push(Entry::Offset {
                        group: g.id.clone(),
                        topic,
                        partition,
                        value: None,
                    });
                }
                if g.is_vacant() {
                    vacant.push(g.id.clone());
                }
            }
            for id in vacant {
                groups.remove(&id);
                tombstones.push(Entry::Group {
                    group: id,
                    value: None,
                });
            }
        }
        if tombstones.is_empty() {
            return;
        }
        tracing::info!(
            records = tombstones.len(),
            "expired offsets of empty groups"
        );
        // Tombstones of one shard's groups, possibly in several partitions.
        let catalog = shard.catalog();
        let Some(topic) = catalog.topic(OFFSETS_TOPIC) else {
            return;
        };
        let mut by_partition: BTreeMap<i32, Vec<Entry>> = BTreeMap::new();
        for t in tombstones {
            let group = match &t {
                Entry::Offset { group, .. } | Entry::Group { group, .. } => group.clone(),
            };
            by_partition
                .entry(partition_for(&group, topic.partitions))
                .or_default()
                .push(t);
        }
        for (p, entries) in by_partition {
            if let Err(e) = write(shard, p, &entries).await {
                tracing::warn!(partition = p, error = %e, "cannot write offset expiry tombstones");
            }
        }
    }

    /// Appends the group's membership (or its tombstone) if it changed. Appends are queued in
    /// call order; durability follows in the background (a lost membership record costs a
    /// rebalance after a crash, never an offset).
    fn persist_group(&self, shard: &Rc<Shard>, id: &str) {
        let entry = {
            let mut groups = self.groups.borrow_mut();
            let Some(g) = groups.get_mut(id) else { return };
            if !g.dirty {
                return;
            }
            g.dirty = false;
            Entry::Group {
                group: id.to_string(),
                value: Some(g.to_value()),
            }
        };
        let Some(topic) = shard.catalog().topic(OFFSETS_TOPIC).map(|t| t.partitions) else {
            return;
        };
        let p = partition_for(id, topic);
        match enqueue(shard, p, &[entry]) {
            Ok(rx) => {
                let shard = shard.clone();
                glommio::spawn_local(async move {
                    if let Err(e) = finish(&shard, p, rx).await {
                        tracing::warn!(partition = p, error = %e, "cannot write group metadata");
                    }
                })
                .detach();
            }
            Err(e) => tracing::warn!(partition = p, error = %e, "cannot write group metadata"),
        }
    }
}

/// Queues `entries` as one batch on this shard's `__consumer_offsets` partition `p`.
fn enqueue(
    shard: &Shard,
    p: i32,
    entries: &[Entry],
) -> Result<crate::log::AppendReceiver, LogError> {
    let log = shard.partition(OFFSETS_TOPIC, p).ok_or(LogError::Closed)?;
    let ts = wall_ms();
    let records = entries.iter().map(|e| {
        let (k, v) = e.encode();
        (Some(k), v, ts)
    });
    let bytes = batch::try_encode_batch(records, Compression::None)
        .map_err(|e| LogError::Storage(format!("encoding group records: {e}")))?;
    let headers = batch::validate_produce(&bytes, u32::MAX)
        .map_err(|e| LogError::Storage(format!("encoding group records: {e:?}")))?;
    log.enqueue(Bytes::from(bytes), headers)
}

/// Waits until a queued append is written and, when acks wait for the disk, durable.
async fn finish(shard: &Shard, p: i32, rx: crate::log::AppendReceiver) -> Result<(), LogError> {
    rx.await.unwrap_or(Err(LogError::Closed))?;
    if shard.config.group_commit {
        if let Some(log) = shard.partition(OFFSETS_TOPIC, p) {
            log.durable().await?;
        }
    }
    Ok(())
}

async fn write(shard: &Shard, p: i32, entries: &[Entry]) -> Result<(), LogError> {
    let rx = enqueue(shard, p, entries)?;
    finish(shard, p, rx).await
}

/// Runs one group request on its coordinator shard.
async fn run(shard: &Rc<Shard>, partition: i32, group: &str, op: Op) -> OpResult {
    let co = &shard.groups;
    if co.stopping.get() {
        return Err(code(ResponseError::NotCoordinator));
    }
    if let Op::List(states) = op {
        return Ok(Out::Listed(co.list(&states)));
    }
    if shard.partition(OFFSETS_TOPIC, partition).is_none() {
        // In the catalog but not open yet: this shard is still opening (and loading) it after
        // the topic was created or the broker started. Clients retry this error.
        let known = shard
            .catalog()
            .topic(OFFSETS_TOPIC)
            .is_some_and(|t| partition < t.partitions);
        return Err(code(if known {
            ResponseError::CoordinatorLoadInProgress
        } else {
            ResponseError::CoordinatorNotAvailable
        }));
    }
    let now = Instant::now();
    let wall = wall_ms();
    let limits = Coordinator::limits(shard);
    let out = match op {
        Op::Join(req) => {
            let (tx, rx) = oneshot::channel();
            co.with_group(group, true, |g| g.join(req, &limits, now, wall, tx));
            co.persist_group(shard, group);
            co.schedule(group);
            let outcome = rx
                .await
                .map_err(|_| code(ResponseError::CoordinatorNotAvailable))?;
            // The join may have completed a rebalance that emptied the group.
            co.persist_group(shard, group);
            Out::Join(outcome)
        }
        Op::Sync {
            member_id,
            instance_id,
            generation,
            protocol_type,
            protocol,
            assignments,
        } => {
            let (tx, rx) = oneshot::channel();
            let found = co.with_group(group, false, |g| {
                g.sync(
                    &member_id,
                    instance_id.as_deref(),
                    generation,
                    protocol_type.as_deref(),
                    protocol.as_deref(),
                    assignments,
                    now,
                    wall,
                    tx,
                )
            });
            if found.is_none() {
                return Ok(Out::Sync(SyncOutcome {
                    error: code(ResponseError::UnknownMemberId),
                    ..SyncOutcome::default()
                }));
            }
            co.persist_group(shard, group);
            co.schedule(group);
            Out::Sync(
                rx.await
                    .map_err(|_| code(ResponseError::CoordinatorNotAvailable))?,
            )
        }
        Op::Heartbeat {
            member_id,
            instance_id,
            generation,
        } => Out::Code(
            co.with_group(group, false, |g| {
                g.heartbeat(&member_id, instance_id.as_deref(), generation, now)
            })
            .unwrap_or(code(ResponseError::UnknownMemberId)),
        ),
        Op::Leave(members) => {
            let codes = co
                .with_group(group, false, |g| g.leave(&members, now, wall))
                .unwrap_or_else(|| vec![code(ResponseError::UnknownMemberId); members.len()]);
            co.persist_group(shard, group);
            co.schedule(group);
            Out::Codes(codes)
        }
        Op::Commit {
            member_id,
            instance_id,
            generation,
            partitions,
        } => {
            co.commit(
                shard,
                partition,
                group,
                &member_id,
                instance_id.as_deref(),
                generation,
                partitions,
                now,
                wall,
            )
            .await
        }
        Op::FetchOffsets(topics) => Out::Offsets(co.fetch_offsets(group, topics)),
        Op::Describe => Out::Described(co.describe(group)),
        Op::Delete => co.delete(shard, partition, group).await,
        Op::DeleteOffsets(topics) => co.delete_offsets(shard, partition, group, topics).await?,
        Op::List(_) => unreachable!("answered above"),
        Op::ConsumerHeartbeat(hb) => {
            let catalog = shard.catalog();
            let session = Duration::from_millis(
                shard.config.groups.consumer_session_timeout_ms.max(0) as u64,
            );
            let partitions = |t: &str| catalog.topic(t).map(|t| t.partitions);
            let names = || catalog.topics.keys().cloned().collect::<Vec<_>>();
            let result = co
                .with_group(group, true, |g| {
                    if !g.members.is_empty() || g.state != GroupState::Empty {
                        return Err((
                            code(ResponseError::GroupIdNotFound),
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
                .unwrap_or_else(|| Err((code(ResponseError::UnknownServerError), String::new())));
            co.schedule(group);
            Out::ConsumerHeartbeat(result)
        }
        Op::DescribeConsumer => Out::DescribedConsumer(co.describe_consumer(group)),
    };
    Ok(out)
}

impl Coordinator {
    /// Runs `f` on the group, created first when `create`; `None` when it does not exist.
    /// A group created for a request that left nothing in it is dropped again.
    fn with_group<R>(&self, id: &str, create: bool, f: impl FnOnce(&mut Group) -> R) -> Option<R> {
        let mut groups = self.groups.borrow_mut();
        if create && !groups.contains_key(id) {
            groups.insert(id.to_string(), Group::new(id, wall_ms()));
        }
        let g = groups.get_mut(id)?;
        let r = f(g);
        if g.generation == 0 && g.is_vacant() && !g.dirty {
            groups.remove(id);
        }
        Some(r)
    }

    fn list(&self, states: &[String]) -> Vec<Listed> {
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

    fn describe(&self, id: &str) -> Option<Described> {
        let groups = self.groups.borrow();
        let g = groups.get(id)?;
        if let Some(c) = &g.consumer {
            return Some(Described {
                state: g.state_name(),
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
            });
        }
        let protocol = g.protocol.clone().unwrap_or_default();
        // Metadata and assignments only mean something once the group is stable.
        let stable = g.state == GroupState::Stable;
        Some(Described {
            state: g.state_name(),
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol: protocol.clone(),
            members: g
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
        })
    }

    fn describe_consumer(&self, id: &str) -> Result<DescribedConsumer, (i16, String)> {
        let groups = self.groups.borrow();
        let not_found = || {
            (
                code(ResponseError::GroupIdNotFound),
                format!("group '{id}' is not a consumer (KIP-848) group"),
            )
        };
        let g = groups.get(id).ok_or_else(not_found)?;
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

    fn fetch_offsets(
        &self,
        id: &str,
        topics: Option<TopicPartitions>,
    ) -> Vec<(String, i32, Option<Committed>)> {
        let groups = self.groups.borrow();
        let g = groups.get(id);
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

    #[allow(clippy::too_many_arguments)]
    async fn commit(
        &self,
        shard: &Rc<Shard>,
        partition: i32,
        group: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        partitions: Vec<CommitPartition>,
        now: Instant,
        wall: i64,
    ) -> Out {
        let catalog = shard.catalog();
        let mut results = Vec::with_capacity(partitions.len());
        let mut entries = Vec::new();
        {
            let mut groups = self.groups.borrow_mut();
            let error = match groups.get_mut(group) {
                Some(g) => g.check_commit(member_id, instance_id, generation, now),
                // A group Kafka does not know only takes commits from outside any generation.
                None if generation >= 0 => code(ResponseError::IllegalGeneration),
                None => {
                    groups.insert(group.to_string(), Group::new(group, wall));
                    0
                }
            };
            for c in partitions {
                let e = if error != 0 {
                    error
                } else if !catalog
                    .topic(&c.topic)
                    .is_some_and(|t| c.partition >= 0 && c.partition < t.partitions)
                {
                    code(ResponseError::UnknownTopicOrPartition)
                } else if c
                    .metadata
                    .as_ref()
                    .is_some_and(|m| m.len() > OFFSET_METADATA_MAX_BYTES)
                {
                    code(ResponseError::OffsetMetadataTooLarge)
                } else {
                    0
                };
                if e == 0 {
                    let value = OffsetValue {
                        offset: c.offset,
                        leader_epoch: c.leader_epoch,
                        metadata: c.metadata.unwrap_or_default(),
                        commit_timestamp: wall,
                    };
                    entries.push(Entry::Offset {
                        group: group.to_string(),
                        topic: c.topic.clone(),
                        partition: c.partition,
                        value: Some(value),
                    });
                }
                results.push((c.topic, c.partition, e));
            }
            if let Some(g) = groups.get_mut(group) {
                for e in &entries {
                    if let Entry::Offset {
                        topic,
                        partition,
                        value: Some(v),
                        ..
                    } = e
                    {
                        g.offsets.insert(
                            (topic.clone(), *partition),
                            Committed {
                                offset: v.offset,
                                leader_epoch: v.leader_epoch,
                                metadata: v.metadata.clone(),
                                commit_timestamp: v.commit_timestamp,
                            },
                        );
                    }
                }
                if g.generation == 0 && g.is_vacant() {
                    groups.remove(group);
                }
            }
        }
        if !entries.is_empty() {
            if let Err(e) = write(shard, partition, &entries).await {
                tracing::warn!(group, error = %e, "cannot write committed offsets");
                let failed = code(ResponseError::CoordinatorNotAvailable);
                for r in &mut results {
                    if r.2 == 0 {
                        r.2 = failed;
                    }
                }
            }
        }
        Out::Partitions(results)
    }

    async fn delete(&self, shard: &Rc<Shard>, partition: i32, group: &str) -> Out {
        let entries = {
            let mut groups = self.groups.borrow_mut();
            let Some(g) = groups.get(group) else {
                return Out::Code(code(ResponseError::GroupIdNotFound));
            };
            if !g.is_empty() {
                return Out::Code(code(ResponseError::NonEmptyGroup));
            }
            let Some(g) = groups.remove(group) else {
                return Out::Code(code(ResponseError::GroupIdNotFound));
            };
            let mut entries: Vec<Entry> = g
                .offsets
                .into_keys()
                .map(|(topic, partition)| Entry::Offset {
                    group: group.to_string(),
                    topic,
                    partition,
                    value: None,
                })
                .collect();
            entries.push(Entry::Group {
                group: group.to_string(),
                value: None,
            });
            entries
        };
        match write(shard, partition, &entries).await {
            Ok(()) => Out::Code(0),
            Err(e) => {
                tracing::warn!(group, error = %e, "cannot write the tombstones of a deleted group");
                Out::Code(code(ResponseError::CoordinatorNotAvailable))
            }
        }
    }

    async fn delete_offsets(
        &self,
        shard: &Rc<Shard>,
        partition: i32,
        group: &str,
        topics: TopicPartitions,
    ) -> OpResult {
        let mut results = Vec::new();
        let mut entries = Vec::new();
        {
            let mut groups = self.groups.borrow_mut();
            let Some(g) = groups.get_mut(group) else {
                return Err(code(ResponseError::GroupIdNotFound));
            };
            let subscribed = if g.is_empty() {
                Vec::new()
            } else if let Some(c) = g.consumer_members() {
                c.members.values().flat_map(|m| m.topics.clone()).collect()
            } else if g.protocol_type.as_deref() == Some("consumer") {
                subscribed_topics(g)
            } else {
                return Err(code(ResponseError::NonEmptyGroup));
            };
            for (topic, parts) in topics {
                for p in parts {
                    let e = if subscribed.contains(&topic) {
                        code(ResponseError::GroupSubscribedToTopic)
                    } else {
                        if g.offsets.remove(&(topic.clone(), p)).is_some() {
                            entries.push(Entry::Offset {
                                group: group.to_string(),
                                topic: topic.clone(),
                                partition: p,
                                value: None,
                            });
                        }
                        0
                    };
                    results.push((topic.clone(), p, e));
                }
            }
        }
        if !entries.is_empty() {
            if let Err(e) = write(shard, partition, &entries).await {
                tracing::warn!(group, error = %e, "cannot write offset tombstones");
                return Err(code(ResponseError::CoordinatorNotAvailable));
            }
        }
        Ok(Out::Partitions(results))
    }
}

/// Topics the members of a consumer-protocol group subscribe to, from their metadata.
fn subscribed_topics(g: &Group) -> Vec<String> {
    use kafka_protocol::messages::ConsumerProtocolSubscription;
    use kafka_protocol::protocol::Decodable;
    let protocol = g.protocol.clone().unwrap_or_default();
    let mut topics = Vec::new();
    for m in &g.members {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka's partition for a group: `Utils.abs("my-group".hashCode()) % 50`.
    #[test]
    fn partition_matches_kafka() {
        // "my-group".hashCode() == -1906497762 in Java; abs % 50 == 12.
        assert_eq!(partition_for("my-group", 50), 12);
        assert_eq!(partition_for("", 50), 0);
        // -10784275 in Java.
        assert_eq!(
            partition_for("consumer-group-with-a-rather-long-name", 50),
            25
        );
    }
}
