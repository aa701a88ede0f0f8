//! The partitions one shard owns: their logs, opened and closed as the catalog changes, and
//! the shard's group commit. This is the log layer's per-shard service (`shard::Shard::provide`):
//! other layers reach a partition by sending an operation to its owner (`ops`).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::batch;
use super::cleaner::Cleaner;
use super::group_commit::{Gather, GroupCommit};
use super::partition::{
    io_buffer_bytes, AppendReceiver, Compaction, LogConfig, Origin, PartitionLog, Retention,
};
use super::tail_cache::TailBudget;
use super::LogError;
use crate::catalog::{self, Catalog, Replica, Topic};
use crate::config::Config;
use crate::util::blocking;

impl LogConfig {
    /// The log settings of one topic: its overrides, else the broker's defaults (the config
    /// table resolves and checks both). `config` is the effective broker config, dynamic
    /// broker configs included (`Catalog::broker_config`).
    pub fn for_topic(config: &Config, topic: &Topic) -> LogConfig {
        let topic = crate::config::TopicConfig::resolve(config, &topic.configs);
        let policy = |name: &str| topic.cleanup_policy.split(',').any(|p| p.trim() == name);
        let compaction = Compaction {
            compact: policy("compact"),
            delete_retention_ms: topic.delete_retention_ms,
            min_cleanable_ratio: topic
                .min_cleanable_dirty_ratio
                .trim()
                .parse()
                .unwrap_or(0.5),
            min_lag_ms: topic.min_compaction_lag_ms,
            max_lag_ms: topic.max_compaction_lag_ms,
        };
        let segment_ms = if compaction.compact {
            topic.segment_ms.min(topic.max_compaction_lag_ms)
        } else {
            topic.segment_ms
        };
        LogConfig {
            segment_bytes: topic.segment_bytes,
            index_interval_bytes: topic.index_interval_bytes,
            max_message_bytes: topic.max_message_bytes,
            io_buffer_bytes: io_buffer_bytes(config.io_memory_bytes),
            producer_id_expiration_ms: config.txn.producer_id_expiration_ms,
            retention: Retention {
                delete: policy("delete"),
                ms: topic.retention_ms,
                bytes: topic.retention_bytes,
            },
            segment_ms,
            segment_jitter_ms: topic.segment_jitter_ms,
            compaction,
            log_append_time: topic.message_timestamp_type == "LogAppendTime",
        }
    }
}

pub struct Partitions {
    /// This shard's id and the number of shards: which partitions are ours.
    shard_id: usize,
    shard_count: usize,
    /// The static broker config; the effective one adds the catalog's dynamic broker configs.
    config: Arc<Config>,
    catalog: Rc<Replica>,
    logs: RefCell<HashMap<String, HashMap<i32, Rc<PartitionLog>>>>,
    commit: Rc<GroupCommit>,
    /// The shard's room for its partitions' tail caches (`shardlog.tail.cache.bytes`).
    tail_cache: Rc<TailBudget>,
    /// Partitions this shard owns that did not open (a full disk: their directory or first
    /// segment could not be created), tried again every `OPEN_RETRY`.
    unopened: RefCell<HashSet<(String, i32)>>,
    /// Set by `close_all`: nothing opens any more.
    stopped: Cell<bool>,
}

/// Partitions a shard opens (or closes) at once: their file system work (recovery scans,
/// truncations, syncs) overlaps, and concurrent syncs share journal commits; a start or stop
/// with 1,000 partitions is not 1,000 of them in a row.
const OPEN_CLOSE_CONCURRENCY: usize = 32;

/// How often partitions that did not open are tried again. Opening one that still cannot is a
/// few failed system calls, and a partition that can is back within this long of the disk
/// having room again.
const OPEN_RETRY: Duration = Duration::from_secs(5);

impl Partitions {
    /// The shard's partition service, following `catalog` from now on. Opens nothing yet:
    /// partitions open when the catalog is installed.
    pub fn new(
        shard_id: usize,
        shard_count: usize,
        config: Arc<Config>,
        catalog: Rc<Replica>,
    ) -> Rc<Partitions> {
        let commit = GroupCommit::new(Gather {
            max_wait: std::time::Duration::from_micros(config.group_commit_max_wait_us),
            max_bytes: usize::try_from(config.group_commit_max_bytes).unwrap_or(usize::MAX),
        });
        glommio::spawn_local(commit.clone().run()).detach();
        let tail_cache = TailBudget::new(config.tail_cache_bytes as usize);
        let partitions = Rc::new(Partitions {
            shard_id,
            shard_count,
            config,
            catalog: catalog.clone(),
            logs: RefCell::new(HashMap::new()),
            tail_cache,
            commit,
            unopened: RefCell::new(HashSet::new()),
            stopped: Cell::new(false),
        });
        glommio::spawn_local(retry_opens(Rc::downgrade(&partitions))).detach();
        glommio::spawn_local(expire_producers(Rc::downgrade(&partitions))).detach();
        let check = Duration::from_millis(partitions.config.log_retention_check_interval_ms);
        glommio::spawn_local(enforce_retention(Rc::downgrade(&partitions), check)).detach();
        let every =
            Duration::from_millis(partitions.config.log_flush_offset_checkpoint_interval_ms);
        glommio::spawn_local(record_recovery_points(Rc::downgrade(&partitions), every)).detach();
        if partitions.config.cleaner.enable {
            spawn_cleaner(Rc::downgrade(&partitions), &partitions.config, shard_count);
        }
        let this: Weak<Partitions> = Rc::downgrade(&partitions);
        catalog.subscribe(Rc::new(move |previous, next| {
            let this = this.clone();
            Box::pin(async move {
                if let Some(this) = this.upgrade() {
                    this.follow(&previous, &next).await;
                }
            })
        }));
        partitions
    }

    /// A partition this shard owns and has open.
    pub fn get(&self, topic: &str, partition: i32) -> Option<Rc<PartitionLog>> {
        self.logs.borrow().get(topic)?.get(&partition).cloned()
    }

    /// The open partition, or why there is none: gone from the catalog (deleted meanwhile) is
    /// `UnknownPartition`, as Kafka answers; still in it means it is being opened here.
    pub fn lookup(&self, topic: &str, partition: i32) -> Result<Rc<PartitionLog>, LogError> {
        self.get(topic, partition).ok_or_else(|| {
            if self.catalog.get().has_partition(topic, partition) {
                LogError::NotOpen
            } else {
                LogError::UnknownPartition
            }
        })
    }

    /// The partitions of `topic` this shard has open, by partition number (a coordinator
    /// loading its internal topic's partitions).
    pub fn open_of(&self, topic: &str) -> Vec<(i32, Rc<PartitionLog>)> {
        let mut open: Vec<(i32, Rc<PartitionLog>)> = self
            .logs
            .borrow()
            .get(topic)
            .map(|m| m.iter().map(|(p, l)| (*p, l.clone())).collect())
            .unwrap_or_default();
        open.sort_by_key(|(p, _)| *p);
        open
    }

    /// Bytes held by this shard's tail caches.
    pub fn tail_cache_bytes(&self) -> usize {
        self.tail_cache.used()
    }

    /// Every partition this shard has open.
    pub fn owned(&self) -> Vec<Rc<PartitionLog>> {
        self.logs
            .borrow()
            .values()
            .flat_map(|m| m.values().cloned())
            .collect()
    }

    /// Validates `records` (a slice of a request frame of `frame_bytes`, or 0) and queues
    /// them on the partition now, so appends keep the order in which they were queued. The
    /// receiver resolves once they are written.
    pub fn enqueue(
        &self,
        topic: &str,
        partition: i32,
        records: Bytes,
        frame_bytes: usize,
    ) -> Result<AppendReceiver, LogError> {
        self.validate_and_enqueue(topic, partition, records, None, Origin::Client, frame_bytes)
    }

    /// Queues records the broker writes itself (group commits): validated for framing like a
    /// producer's, but not bounded by `max.message.bytes` (one commit of many partitions may
    /// exceed it; the request that carried them was bounded by `socket.request.max.bytes`).
    pub fn enqueue_own(
        &self,
        topic: &str,
        partition: i32,
        records: Bytes,
    ) -> Result<AppendReceiver, LogError> {
        self.validate_and_enqueue(topic, partition, records, Some(u32::MAX), Origin::Broker, 0)
    }

    /// Validates `records` against `max_bytes` (the topic's `max.message.bytes` when `None`)
    /// and queues them.
    fn validate_and_enqueue(
        &self,
        topic: &str,
        partition: i32,
        records: Bytes,
        max_bytes: Option<u32>,
        origin: Origin,
        frame_bytes: usize,
    ) -> Result<AppendReceiver, LogError> {
        let log = self.lookup(topic, partition)?;
        let max_bytes = max_bytes.unwrap_or(log.config().max_message_bytes);
        let headers = batch::validate_produce(&records, max_bytes)?;
        if origin == Origin::Client {
            for h in &headers {
                batch::check_producer_fields(h)?;
            }
            let compacted = log.config().compaction.compact;
            check_records(&records, &headers, compacted, topic, partition)?;
        }
        log.enqueue(records, headers, origin, frame_bytes)
    }

    /// Waits until everything written on this shard so far is on stable storage, unless the
    /// operator chose to acknowledge without it (`shardlog.fsync.on.ack=false`).
    pub async fn durable(&self) -> Result<(), LogError> {
        if !self.config.group_commit {
            return Ok(());
        }
        self.commit
            .durable()
            .await
            .map_err(|e| LogError::Storage(e.to_string()))
    }

    /// Waits until everything written on this shard so far is on stable storage, whatever
    /// `shardlog.fsync.on.ack` says: transaction markers end transactions for good.
    pub async fn commit_durable(&self) -> Result<(), LogError> {
        self.commit
            .durable()
            .await
            .map_err(|e| LogError::Storage(e.to_string()))
    }

    /// Opens the partitions this shard now owns, closes and deletes those whose topic is gone
    /// (or was re-created with a new id).
    async fn follow(&self, previous: &Catalog, next: &Catalog) {
        let gone: Vec<String> = previous
            .topics
            .iter()
            .filter(|(name, t)| next.topic(name).is_none_or(|n| n.id != t.id))
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            let removed = self.logs.borrow_mut().remove(&name);
            for (_, log) in removed.into_iter().flatten() {
                if let Err(e) = log.close().await {
                    tracing::warn!(topic = %name, error = %e, "closing a deleted partition");
                }
                if let Err(e) = blocking::remove_dir_all(log.dir()).await {
                    tracing::warn!(error = %e, "removing a deleted partition's directory");
                }
            }
        }
        // Partitions open, and take changed configs, with the broker's dynamic configs applied.
        let effective = next.broker_config(&self.config);
        self.apply_configs(previous, next, &effective);
        self.open_owned(next, &effective).await;
    }

    /// Topics whose configs changed (AlterConfigs on the topic), or every topic when the
    /// dynamic broker configs changed (their defaults may be what a topic inherits): their
    /// open partitions take the new settings at once (a new `segment.bytes` at the next roll,
    /// retention at its next check). A topic that overrides a key keeps its override.
    fn apply_configs(&self, previous: &Catalog, next: &Catalog, effective: &Config) {
        let brokers_changed = previous.broker_configs != next.broker_configs;
        if brokers_changed && self.shard_id == catalog::change::CONTROL_SHARD {
            tracing::info!(configs = ?next.broker_configs, "dynamic broker configs applied");
        }
        for (name, topic) in &next.topics {
            let Some(before) = previous.topic(name).filter(|p| p.id == topic.id) else {
                continue;
            };
            let own_changed = before.configs != topic.configs;
            if !own_changed && !brokers_changed {
                continue;
            }
            let config = LogConfig::for_topic(effective, topic);
            for log in self
                .logs
                .borrow()
                .get(name)
                .into_iter()
                .flat_map(|m| m.values())
            {
                log.set_config(config);
            }
            if own_changed {
                tracing::info!(topic = %name, "topic configs changed");
            }
        }
    }

    /// Opens every partition of `catalog` that this shard owns and has not opened, with the
    /// effective broker config `effective`. One that does not open is logged once (not at
    /// every retry) and tried again (`retry_opens`).
    async fn open_owned(&self, catalog: &Catalog, effective: &Config) {
        use futures::StreamExt;
        let (id, count) = (self.shard_id, self.shard_count);
        let mut wanted = Vec::new();
        for (name, topic) in &catalog.topics {
            for p in 0..topic.partitions {
                if catalog::owner_shard(name, p, count) != id || self.get(name, p).is_some() {
                    continue;
                }
                wanted.push((name.clone(), p, LogConfig::for_topic(effective, topic)));
            }
        }
        let unopened = RefCell::new(HashSet::new());
        futures::stream::iter(wanted)
            .for_each_concurrent(OPEN_CLOSE_CONCURRENCY, |(name, p, config)| {
                let unopened = &unopened;
                async move {
                    if self.stopped.get() {
                        return;
                    }
                    let retried = self.unopened.borrow().contains(&(name.clone(), p));
                    let opened = PartitionLog::open(
                        &self.config.data_dir,
                        &name,
                        p,
                        config,
                        self.commit.clone(),
                        self.tail_cache.clone(),
                    );
                    match opened.await {
                        Ok(log) => {
                            self.logs
                                .borrow_mut()
                                .entry(name.clone())
                                .or_default()
                                .insert(p, log);
                            if retried {
                                tracing::info!(topic = %name, partition = p, "opened partition after an earlier failure");
                            }
                        }
                        Err(e) => {
                            if retried {
                                tracing::debug!(topic = %name, partition = p, error = %e, "partition still does not open");
                            } else if crate::util::fd_limit::is_exhausted(&e) {
                                tracing::error!(topic = %name, partition = p, error = %e, "cannot open partition: out of file descriptors; it stays offline and is tried again every {}s: {}", OPEN_RETRY.as_secs(), crate::util::fd_limit::hint());
                            } else {
                                tracing::error!(topic = %name, partition = p, error = %e, "cannot open partition; it stays offline and is tried again every {}s (if the disk is full, free space in the data directory)", OPEN_RETRY.as_secs());
                            }
                            unopened.borrow_mut().insert((name, p));
                        }
                    }
                }
            })
            .await;
        *self.unopened.borrow_mut() = unopened.into_inner();
    }

    /// At the end of a stop, once no request can reach the shard: closes every partition
    /// (sealing its active segment) and makes everything durable.
    pub async fn close_all(&self) -> std::io::Result<()> {
        use futures::StreamExt;
        self.stopped.set(true);
        futures::stream::iter(self.owned())
            .for_each_concurrent(OPEN_CLOSE_CONCURRENCY, |log| async move {
                if let Err(e) = log.close().await {
                    tracing::error!(topic = %log.topic, partition = log.partition, error = %e, "closing partition");
                }
            })
            .await;
        self.commit.flush_and_stop().await
    }
}

/// Checks the records inside each batch that `validate_produce` could not look into without
/// decompressing (`records::check_produced`): every compressed batch, and on a compacted topic
/// every batch, which takes only records with a key (KIP-467: the cleaner could never tell
/// which of two keyless records is the latest). Keyless records are refused with their
/// indexes, as Kafka's LogValidator does.
fn check_records(
    records: &[u8],
    headers: &[batch::BatchHeader],
    compacted: bool,
    topic: &str,
    partition: i32,
) -> Result<(), batch::BatchError> {
    use super::records::RecordsError;
    let mut at = 0usize;
    let mut keyless = Vec::new();
    for h in headers {
        let bytes = &records[at..at + h.total_bytes as usize];
        at += h.total_bytes as usize;
        if h.compression() == 0 && !compacted {
            continue;
        }
        match super::records::check_produced(h, bytes) {
            Ok(indexes) if compacted => keyless.extend(indexes),
            Ok(_) => {}
            Err(RecordsError::Corrupt(why)) => return Err(batch::BatchError::Corrupt(why)),
            Err(RecordsError::Invalid(why)) => return Err(batch::BatchError::Invalid(why)),
            Err(RecordsError::TooLarge) => {
                return Err(batch::BatchError::Invalid(
                    "the batch decompresses to more than the broker holds at once",
                ))
            }
        }
    }
    if keyless.is_empty() {
        return Ok(());
    }
    Err(batch::BatchError::Records {
        message: format!(
            "Compacted topic cannot accept message without key in topic partition {topic}-{partition}."
        ),
        indexes: keyless,
    })
}

/// Runs for the life of the shard's partition service: while some partition did not open,
/// every `OPEN_RETRY` the shard follows its catalog again, which opens what can open now and
/// lets the coordinators load what opened.
async fn retry_opens(partitions: Weak<Partitions>) {
    loop {
        glommio::timer::sleep(OPEN_RETRY).await;
        let catalog = {
            let Some(partitions) = partitions.upgrade() else {
                return;
            };
            if partitions.stopped.get() {
                return;
            }
            if partitions.unopened.borrow().is_empty() {
                continue;
            }
            partitions.catalog.clone()
        };
        catalog.follow_again().await;
    }
}

/// How often each partition forgets producers idle past `producer.id.expiration.ms` (Kafka's
/// `producer.id.expiration.check.interval.ms` default); snapshots also drop them.
const PRODUCER_EXPIRY_CHECK: std::time::Duration = std::time::Duration::from_secs(600);

/// Runs for the life of the shard's partition service.
async fn expire_producers(partitions: Weak<Partitions>) {
    loop {
        glommio::timer::sleep(PRODUCER_EXPIRY_CHECK).await;
        let Some(partitions) = partitions.upgrade() else {
            return;
        };
        let now = crate::util::now_ms();
        let expired: usize = partitions
            .owned()
            .iter()
            .map(|log| log.expire_producers(now))
            .sum();
        if expired > 0 {
            tracing::debug!(expired, "forgot idle producers");
        }
    }
}

/// Parts each recovery-point interval is cut into: every partition written to records its
/// point once per interval, a tenth of the partitions at a time, so that 1,000 partitions do
/// not all sync and write their files in the same instant (a burst producers wait behind).
const CHECKPOINT_STEPS: u64 = 10;

/// Runs for the life of the shard's partition service: over each
/// `log.flush.offset.checkpoint.interval.ms`, each partition written to since its last recovery
/// point records a new one (`PartitionLog::request_checkpoint`; its writer takes it between
/// runs), the partitions spread over the interval by a hash of their name.
async fn record_recovery_points(partitions: Weak<Partitions>, every: Duration) {
    let step = every / CHECKPOINT_STEPS as u32;
    for tick in 0u64.. {
        glommio::timer::sleep(step).await;
        let Some(partitions) = partitions.upgrade() else {
            return;
        };
        for log in partitions.owned() {
            if checkpoint_step(&log.topic, log.partition) == tick % CHECKPOINT_STEPS {
                log.request_checkpoint();
            }
        }
    }
}

/// Which step of the interval a partition records its recovery point in.
fn checkpoint_step(topic: &str, partition: i32) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (topic, partition).hash(&mut h);
    h.finish() % CHECKPOINT_STEPS
}

/// Runs for the life of the shard's partition service: every
/// `log.retention.check.interval.ms`, each partition deletes what retention no longer keeps.
async fn enforce_retention(partitions: Weak<Partitions>, every: Duration) {
    loop {
        glommio::timer::sleep(every).await;
        let Some(partitions) = partitions.upgrade() else {
            return;
        };
        let now = crate::util::now_ms();
        for log in partitions.owned() {
            log.roll_if_old(now);
            if let Err(e) = log.enforce_retention(now).await {
                tracing::warn!(topic = %log.topic, partition = log.partition, error = %e, "retention could not delete old segments; trying again at the next check");
            }
        }
    }
}

/// Starts the shard's cleaner in a task queue of its own with a small share of the CPU, so
/// produce and fetch on the shard go first. Its key map and I/O rate are this shard's part of
/// `log.cleaner.dedupe.buffer.size` and `log.cleaner.io.max.bytes.per.second`.
fn spawn_cleaner(partitions: Weak<Partitions>, config: &Config, shard_count: usize) {
    let shards = shard_count.max(1);
    let cleaner = Cleaner::new(
        config.cleaner.dedupe_buffer_bytes / shards as u64,
        config.cleaner.io_max_bytes_per_second / shards as f64,
    );
    let backoff = Duration::from_millis(config.cleaner.backoff_ms);
    let queue = glommio::executor().create_task_queue(
        glommio::Shares::Static(CLEANER_SHARES),
        glommio::Latency::NotImportant,
        "cleaner",
    );
    let task = run_cleaner(partitions, cleaner, backoff);
    match glommio::spawn_local_into(task, queue) {
        Ok(t) => {
            t.detach();
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot start the log cleaner; compacted topics are not cleaned")
        }
    }
}

/// The cleaner's CPU share against the default queue's 1000 (glommio's default shares).
const CLEANER_SHARES: usize = 100;

/// Runs for the life of the shard's partition service: every `log.cleaner.backoff.ms`, rolls
/// compacted partitions' old active segments, then cleans each partition that is due. (Kafka
/// sleeps only when nothing was due; a partition whose dirty range ends inside a segment, at an
/// open transaction, stays due, and would be cleaned over and over without the pause.)
async fn run_cleaner(partitions: Weak<Partitions>, mut cleaner: Cleaner, backoff: Duration) {
    loop {
        glommio::timer::sleep(backoff).await;
        let Some(logs) = partitions.upgrade().map(|p| p.owned()) else {
            return;
        };
        let now = crate::util::now_ms();
        for log in logs.iter().filter(|l| l.config().compaction.compact) {
            log.roll_if_old(now);
            match cleaner.clean(log, now).await {
                Ok(Some(stats)) => {
                    tracing::info!(topic = %log.topic, partition = log.partition, segments_before = stats.segments_before, segments_after = stats.segments_after, bytes_before = stats.bytes_before, bytes_after = stats.bytes_after, records_removed = stats.records_removed, cleaned_up_to = stats.end, "cleaned");
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(topic = %log.topic, partition = log.partition, error = %e, "cleaning failed; the old segments stay and the cleaner tries again later");
                }
            }
        }
    }
}
