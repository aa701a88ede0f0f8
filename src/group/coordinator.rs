//! A shard's coordinator: the groups of the `__consumer_offsets` partitions it owns, loaded
//! from those partitions when they open, kept in step with time by one timer, and written back
//! to them through the log.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::records::Compression;

use super::records::Entry;
use super::state::{Committed, Group, Limits};
use super::txn_offsets::{PendingOffset, PendingOffsets};
use super::{partition_for, wall_ms, Error, OFFSETS_TOPIC};
use crate::catalog::Replica;
use crate::log::{batch, LogError, PartitionLog, Partitions};
use crate::shard::Shard;
use crate::util::Notify;

/// Longest the timer sleeps when nothing is due (it is woken for anything sooner).
const TIMER_IDLE: Duration = Duration::from_secs(3600);

pub struct Coordinator {
    pub(super) shard: Rc<Shard>,
    pub(super) catalog: Rc<Replica>,
    pub(super) partitions: Rc<Partitions>,
    pub(super) groups: RefCell<HashMap<String, Group>>,
    /// Offsets committed in transactions not yet ended (`txn_offsets`).
    pub(super) pending_txn: RefCell<PendingOffsets>,
    /// `__consumer_offsets` partitions of this shard whose groups are loaded.
    loaded: RefCell<HashSet<i32>>,
    /// The broker is stopping: waiting joins and syncs were answered NOT_COORDINATOR.
    stopping: Cell<bool>,
    next_expiry_check: Cell<Option<Instant>>,
    /// When the timer wakes next, and the way to wake it sooner.
    timer_at: Cell<Option<Instant>>,
    timer_wake: Notify,
}

impl Coordinator {
    /// The shard's coordinator, following the catalog after `partitions` does (so the log of a
    /// new `__consumer_offsets` partition is open when its groups load), with its timer running.
    pub fn new(
        shard: Rc<Shard>,
        catalog: Rc<Replica>,
        partitions: Rc<Partitions>,
    ) -> Rc<Coordinator> {
        let co = Rc::new(Coordinator {
            shard,
            catalog: catalog.clone(),
            partitions,
            groups: RefCell::new(HashMap::new()),
            pending_txn: RefCell::new(PendingOffsets::default()),
            loaded: RefCell::new(HashSet::new()),
            stopping: Cell::new(false),
            next_expiry_check: Cell::new(None),
            timer_at: Cell::new(None),
            timer_wake: Notify::new(),
        });
        let this: Weak<Coordinator> = Rc::downgrade(&co);
        catalog.subscribe(Rc::new(move |_, _| {
            let this = this.clone();
            Box::pin(async move {
                if let Some(this) = this.upgrade() {
                    this.load_new_partitions().await;
                }
            })
        }));
        glommio::spawn_local(co.clone().run_timer()).detach();
        co
    }

    pub(super) fn limits(&self) -> Limits {
        let g = &self.shard.config.groups;
        Limits {
            initial_rebalance_delay: Duration::from_millis(g.initial_rebalance_delay_ms),
            min_session_timeout_ms: g.min_session_timeout_ms,
            max_session_timeout_ms: g.max_session_timeout_ms,
            max_size: g.max_size.max(1) as usize,
        }
    }

    /// Whether this shard serves groups of `partition` now: not while stopping, nor before the
    /// partition's groups are loaded (clients retry COORDINATOR_LOAD_IN_PROGRESS).
    pub(super) fn serving(&self, partition: i32) -> Result<(), Error> {
        if self.stopping.get() {
            return Err(Error::NotCoordinator);
        }
        if self.loaded.borrow().contains(&partition) {
            return Ok(());
        }
        let known = self.catalog.get().has_partition(OFFSETS_TOPIC, partition);
        Err(if known {
            Error::CoordinatorLoadInProgress
        } else {
            Error::CoordinatorNotAvailable
        })
    }

    /// The broker is stopping: answer everyone waiting so connections can drain.
    pub fn shutdown(&self) {
        self.stopping.set(true);
        self.timer_wake.notify_all();
        for g in self.groups.borrow_mut().values_mut() {
            g.fail_waiters(Error::NotCoordinator);
        }
    }

    /// Loads the groups of every `__consumer_offsets` partition this shard has opened since.
    async fn load_new_partitions(&self) {
        for (p, log) in self.partitions.open_of(OFFSETS_TOPIC) {
            if self.loaded.borrow().contains(&p) {
                continue;
            }
            match self.load(&log).await {
                Ok(()) => {
                    self.loaded.borrow_mut().insert(p);
                }
                Err(e) => {
                    tracing::error!(partition = p, error = %e, "cannot load consumer groups; their coordinator stays unavailable");
                }
            }
        }
    }

    /// Rebuilds the groups of one `__consumer_offsets` partition from its records.
    async fn load(&self, log: &PartitionLog) -> Result<(), LogError> {
        let start = Instant::now();
        let mut applied = 0usize;
        log.replay(|r| {
            if r.control {
                // A transaction's marker: its offsets here become committed or go.
                if let Some(commit) = batch::marker_of(r.key.as_deref()) {
                    self.complete_transaction(log.partition, r.producer_id, commit);
                }
                return;
            }
            let Some(key) = r.key.as_deref() else {
                return;
            };
            match Entry::decode(key, r.value.as_deref()) {
                Some(Entry::Offset {
                    group,
                    topic,
                    partition,
                    value: Some(v),
                }) if r.transactional => {
                    let pending = PendingOffset {
                        group,
                        topic,
                        partition,
                        committed: Committed::from(v),
                    };
                    self.pending_txn.borrow_mut().add(r.producer_id, pending);
                }
                Some(entry) => {
                    self.apply(entry, start);
                    applied += 1;
                }
                None => {
                    tracing::warn!(partition = log.partition, offset = r.offset, "skipping a record of {OFFSETS_TOPIC} that is not a commit or group metadata")
                }
            }
        })
        .await?;
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
                value: Some(v),
            } => {
                groups
                    .entry(group.clone())
                    .or_insert_with(|| Group::new(&group, v.commit_timestamp))
                    .offsets
                    .insert((topic, partition), Committed::from(v));
            }
            Entry::Offset {
                group,
                topic,
                partition,
                value: None,
            } => {
                if let Some(g) = groups.get_mut(&group) {
                    g.offsets.remove(&(topic, partition));
                }
            }
            Entry::Group {
                group,
                value: Some(v),
            } => {
                let offsets = groups.remove(&group).map(|g| g.offsets).unwrap_or_default();
                let mut g = Group::restore(&group, v, now);
                g.offsets = offsets;
                groups.insert(group, g);
            }
            Entry::Group { group, value: None } => {
                groups.remove(&group);
            }
        }
    }

    /// The per-shard timer: group deadlines when they fall due, offset expiry every check
    /// interval.
    async fn run_timer(self: Rc<Self>) {
        let interval =
            Duration::from_millis(self.shard.config.groups.offsets_retention_check_interval_ms);
        self.next_expiry_check.set(Some(Instant::now() + interval));
        while !self.stopping.get() {
            let now = Instant::now();
            let wall = wall_ms();
            let mut dirty = Vec::new();
            for g in self.groups.borrow_mut().values_mut() {
                g.tick(now, wall);
                if g.dirty {
                    dirty.push(g.id.clone());
                }
            }
            for id in dirty {
                self.persist_group(&id);
            }
            if self.next_expiry_check.get().is_some_and(|at| now >= at) {
                self.expire_offsets(wall).await;
                self.next_expiry_check.set(Some(Instant::now() + interval));
            }
            let next = self
                .groups
                .borrow()
                .values()
                .filter_map(Group::next_deadline)
                .chain(self.next_expiry_check.get())
                .min()
                .unwrap_or_else(|| Instant::now() + TIMER_IDLE);
            self.timer_at.set(Some(next));
            let woken = self.timer_wake.notified();
            let sleep = glommio::timer::sleep(next.saturating_duration_since(Instant::now()));
            futures::pin_mut!(woken);
            futures::pin_mut!(sleep);
            futures::future::select(woken, sleep).await;
        }
    }

    /// Wakes the timer if `group` now has a deadline before the timer's next wake-up.
    pub(super) fn schedule(&self, group: &str) {
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
    async fn expire_offsets(&self, wall: i64) {
        let retention = self.shard.config.groups.offsets_retention_ms;
        let mut tombstones: Vec<Entry> = Vec::new();
        {
            let mut groups = self.groups.borrow_mut();
            let mut vacant = Vec::new();
            for g in groups.values_mut() {
                for (topic, partition) in g.expired_offsets(retention, wall) {
                    g.offsets.remove(&(topic.clone(), partition));
                    tombstones.push(Entry::offset_tombstone(&g.id, topic, partition));
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
        let Some(topic) = self.offsets_partitions() else {
            return;
        };
        let mut by_partition: BTreeMap<i32, Vec<Entry>> = BTreeMap::new();
        for t in tombstones {
            by_partition
                .entry(partition_for(t.group(), topic))
                .or_default()
                .push(t);
        }
        for (p, entries) in by_partition {
            if let Err(e) = self.write(p, &entries).await {
                tracing::warn!(partition = p, error = %e, "cannot write offset expiry tombstones");
            }
        }
    }

    /// Appends the group's membership (or its tombstone) if it changed. Appends are queued in
    /// call order; durability follows in the background (a lost membership record costs a
    /// rebalance after a crash, never an offset).
    pub(super) fn persist_group(&self, id: &str) {
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
        let Some(topic) = self.offsets_partitions() else {
            return;
        };
        let p = partition_for(id, topic);
        match self.enqueue(p, &[entry]) {
            Ok(rx) => {
                let partitions = self.partitions.clone();
                glommio::spawn_local(async move {
                    if let Err(e) = finish(&partitions, rx).await {
                        tracing::warn!(partition = p, error = %e, "cannot write group metadata");
                    }
                })
                .detach();
            }
            Err(e) => tracing::warn!(partition = p, error = %e, "cannot write group metadata"),
        }
    }

    /// The partition count of `__consumer_offsets`, once it exists.
    fn offsets_partitions(&self) -> Option<i32> {
        self.catalog
            .get()
            .topic(OFFSETS_TOPIC)
            .map(|t| t.partitions)
    }

    /// Queues `entries` as one batch on this shard's `__consumer_offsets` partition `p`.
    fn enqueue(&self, p: i32, entries: &[Entry]) -> Result<crate::log::AppendReceiver, LogError> {
        let ts = wall_ms();
        let records = entries.iter().map(|e| {
            let (k, v) = e.encode();
            (Some(k), v, ts)
        });
        let bytes = batch::try_encode_batch(records, Compression::None)
            .map_err(|e| LogError::Storage(format!("encoding group records: {e}")))?;
        self.partitions
            .enqueue_own(OFFSETS_TOPIC, p, Bytes::from(bytes))
    }

    /// Appends `entries` to partition `p` and waits until they are durable.
    pub(super) async fn write(&self, p: i32, entries: &[Entry]) -> Result<(), LogError> {
        let rx = self.enqueue(p, entries)?;
        finish(&self.partitions, rx).await
    }

    /// Runs `f` on the group, created first when `create`; `None` when it does not exist.
    /// A group created for a request that left nothing in it is dropped again.
    pub(super) fn with_group<R>(
        &self,
        id: &str,
        create: bool,
        f: impl FnOnce(&mut Group) -> R,
    ) -> Option<R> {
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
}

/// Waits until a queued append is written and, when acks wait for the disk, durable.
async fn finish(partitions: &Partitions, rx: crate::log::AppendReceiver) -> Result<(), LogError> {
    rx.await.unwrap_or(Err(LogError::Closed))?;
    partitions.durable().await
}
