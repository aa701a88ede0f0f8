//! A partition's log: its segments, the single writer task that appends to them in arrival
//! order, and the reads (fetch, offset lookups) served from the segment files.
//!
//! Appends are queued and written by one task per partition. It takes every job queued since
//! its last write and writes them together (one aligned write per segment touched), so
//! pipelined producers get coalesced writes and offsets are assigned in the order requests
//! reached the owning shard. Readers see data up to the high watermark, which moves only after
//! the bytes are in the file.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures::channel::oneshot;

use super::batch::{self, BatchHeader};
use super::error::LogError;
use super::group_commit::{GroupCommit, Pending};
use super::producer_snapshot;
use super::producers::{Checked, ProducerStates};
use super::records;
use super::segment::{self, Scan, Segment};
use super::tail_cache::{self, Cached, TailBudget, TailCache};
use super::txn_index::{self, AbortedTxn};
use crate::util::scatter::{Part, Pieces};
use crate::util::{blocking, checkpoint, Notify};

/// Per-topic settings the log applies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogConfig {
    pub segment_bytes: u32,
    pub index_interval_bytes: u32,
    pub max_message_bytes: u32,
    /// The most bytes one coalesced write carries and one read takes at a time: both take
    /// their aligned buffer from the shard's glommio `io_memory` pool, and a buffer larger than
    /// the pool falls back to a fresh heap allocation that costs ~20x more to fill (measured by
    /// benches/append_buffer.rs). See `io_buffer_bytes`.
    pub io_buffer_bytes: u32,
    /// How long a producer's state is kept after its last batch (`producer.id.expiration.ms`).
    pub producer_id_expiration_ms: i64,
    /// Time and size retention (`retention.ms`, `retention.bytes`; -1: unlimited), applied
    /// only when `cleanup.policy` includes `delete`.
    pub retention: Retention,
    /// Age at which the active segment rolls (`segment.ms`; for a compacted topic no more
    /// than `max.compaction.lag.ms`, as Kafka's `LogConfig.maxSegmentMs`).
    pub segment_ms: i64,
    /// `segment.jitter.ms`: each new segment takes a random part of it off `segment_ms`.
    pub segment_jitter_ms: i64,
    /// What the cleaner does with this log (`cleanup.policy` `compact` and its settings).
    pub compaction: Compaction,
    /// `message.timestamp.type=LogAppendTime`: each batch's timestamp is the broker's clock
    /// when it is appended (`batch::set_log_append_time`), as Kafka's LogValidator does.
    pub log_append_time: bool,
}

impl LogConfig {
    /// A log that rolls by size only and is never cleaned or trimmed (tests, benches).
    pub fn plain(segment_bytes: u32, io_buffer_bytes: u32) -> LogConfig {
        LogConfig {
            segment_bytes,
            index_interval_bytes: 4096,
            max_message_bytes: 1 << 20,
            io_buffer_bytes,
            producer_id_expiration_ms: 86_400_000,
            retention: Retention::KEEP_ALL,
            segment_ms: i64::MAX,
            segment_jitter_ms: 0,
            compaction: Compaction::OFF,
            log_append_time: false,
        }
    }
}

/// A partition's compaction settings (`cleanup.policy` with `compact`, and the topic keys
/// the cleaner reads).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Compaction {
    pub compact: bool,
    /// `delete.retention.ms`: how long a tombstone stays after its segment's newest record.
    pub delete_retention_ms: i64,
    /// `min.cleanable.dirty.ratio`.
    pub min_cleanable_ratio: f64,
    /// `min.compaction.lag.ms`: records younger than this are not cleaned.
    pub min_lag_ms: i64,
    /// `max.compaction.lag.ms`: a log whose oldest uncleaned record is older than this is
    /// cleaned whatever its dirty ratio.
    pub max_lag_ms: i64,
}

impl Compaction {
    /// Not compacted.
    pub const OFF: Compaction = Compaction {
        compact: false,
        delete_retention_ms: 86_400_000,
        min_cleanable_ratio: 0.5,
        min_lag_ms: 0,
        max_lag_ms: i64::MAX,
    };
}

/// A sealed segment as the cleaner plans with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentInfo {
    pub base_offset: i64,
    pub next_offset: i64,
    pub size: u32,
    pub max_timestamp: i64,
    /// The first batch's largest timestamp (the first time-index entry).
    pub first_timestamp: Option<i64>,
}

/// What retention deletes: whole segments, never the active one, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub delete: bool,
    pub ms: i64,
    pub bytes: i64,
}

impl Retention {
    /// No retention: the log only grows (compacted topics, tests).
    pub const KEEP_ALL: Retention = Retention {
        delete: false,
        ms: -1,
        bytes: -1,
    };
}

/// Smallest and largest `LogConfig::io_buffer_bytes`: below 128 KiB writes and reads get
/// small for the disk; above 8 MiB a single write holds up its partition's later appends.
pub const IO_BUFFER_MIN_BYTES: usize = 128 << 10;
pub const IO_BUFFER_MAX_BYTES: usize = 8 << 20;

/// The per-operation buffer for a shard with `io_memory_bytes` of glommio io memory: a quarter
/// of the pool, so a write and a few reads in flight together still fit in it.
pub fn io_buffer_bytes(io_memory_bytes: usize) -> u32 {
    (io_memory_bytes / 4).clamp(IO_BUFFER_MIN_BYTES, IO_BUFFER_MAX_BYTES) as u32
}

#[derive(Debug, Clone, Copy)]
pub struct AppendOutcome {
    pub base_offset: i64,
    pub log_start_offset: i64,
}

pub type AppendReceiver = oneshot::Receiver<Result<AppendOutcome, LogError>>;

/// Who wrote an append, which decides what the writer checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A producer: batches with a producer id are checked against the producer state.
    Client,
    /// The broker's own records (group commits, transaction state).
    Broker,
    /// A transaction marker, written by a transaction coordinator.
    Marker(Marker),
}

/// A transaction marker: the end of a producer's transaction in a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub coordinator_epoch: i32,
    pub commit: bool,
}

type AppendReply = oneshot::Sender<Result<AppendOutcome, LogError>>;

struct AppendJob {
    records: Bytes,
    /// The size of the request frame `records` are a slice of (0 when they are not): whether
    /// the tail cache may keep them (`tail_cache::may_reference`).
    frame_bytes: usize,
    headers: Vec<BatchHeader>,
    origin: Origin,
    reply: AppendReply,
    /// Counted by the group commit until the job is answered (dropped).
    _pending: Pending,
}

/// Jobs bound for the active segment, with the offsets and positions their batches will get.
#[derive(Default)]
struct Run {
    jobs: Vec<(AppendJob, i64)>,
    batches: Vec<PendingBatch>,
    bytes: usize,
    /// Retried batches already in the log (or in this run): answered with their first offset
    /// once the run is written, so the answer never precedes the original's write.
    duplicates: Vec<(AppendReply, i64)>,
    /// Markers in this run, at their offsets: their transactions end when the run is written.
    markers: Vec<(Marker, i64)>,
}

struct PendingBatch {
    base_offset: i64,
    position: u32,
    /// The batch's max timestamp: the producer's, or with `log_append_time` the broker's,
    /// written into the batch when the run is written.
    max_timestamp: i64,
    log_append_time: bool,
    next_offset: i64,
}

struct LogState {
    segments: Vec<Segment>,
    log_start_offset: i64,
    /// One past the last offset whose bytes are in the file.
    high_watermark: i64,
}

impl LogState {
    /// The segment taking appends. `open` creates one when the directory has none and `roll`
    /// only ever adds one, so there always is one.
    fn active(&self) -> &Segment {
        self.segments
            .last()
            .expect("a partition always has an active segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .last_mut()
            .expect("a partition always has an active segment")
    }
}

pub struct ReadOutcome {
    /// Whole batches: from the tail cache, or ranges of segment files.
    pub records: Pieces,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// For a read_committed read: the aborted transactions with records in what was read.
    pub aborted: Vec<AbortedTxn>,
}

/// Which records a read may see (Fetch's isolation level).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Up to the high watermark.
    ReadUncommitted,
    /// Up to the last stable offset, with the aborted transactions in the range.
    ReadCommitted,
}

/// Where ListOffsets v0's walk back through the segments starts (`offsets_before`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetsFrom {
    /// The newest entry: the high watermark.
    Latest,
    /// The oldest entry: the log start offset.
    Earliest,
    /// The newest segment whose time is at or before this one (ms).
    Time(i64),
}

pub struct PartitionLog {
    pub topic: String,
    pub partition: i32,
    dir: PathBuf,
    config: Cell<LogConfig>,
    state: RefCell<LogState>,
    queue: RefCell<VecDeque<AppendJob>>,
    queued: Notify,
    appended: Notify,
    commit: Rc<GroupCommit>,
    closed: Cell<bool>,
    writer_done: Notify,
    writer_running: Cell<bool>,
    /// Set by `roll_if_old` for the writer: roll the active segment when it is old.
    roll_requested: Cell<bool>,
    /// Set by `request_checkpoint` for the writer: record the recovery point.
    checkpoint_requested: Cell<bool>,
    /// The high watermark of the last recovery point recorded (or of the open).
    checkpointed: Cell<i64>,
    /// A recovery point is being written (by its own task: see `start_checkpoint`).
    checkpoint_in_flight: Cell<bool>,
    checkpoint_done: Notify,
    /// Why the partition takes no more appends: a write failed in a way that may have left
    /// the disk in a state this process cannot know (EIO, not a full disk). Until a restart.
    failed: RefCell<Option<String>>,
    /// Whether the last write failed for want of space: appends are refused one by one (not
    /// for good) and the transitions are logged once each, not per request.
    disk_full: Cell<bool>,
    /// Aborted transactions whose `.txnindex` append failed (a full disk), by the base offset
    /// of the segment holding their markers: appended before anything else is, and before any
    /// producer snapshot past their markers (which would stop a restart from finding them).
    unindexed_aborts: RefCell<Vec<(i64, AbortedTxn)>>,
    producers: RefCell<ProducerStates>,
    /// The batches written last, for tail reads without a disk read.
    tail: RefCell<TailCache>,
    /// Held by what changes the sealed segments or the log start (DeleteRecords, retention,
    /// the cleaner), so they run one at a time: the log-start checkpoint ends with the largest
    /// value, and the cleaner's segments are not deleted under it.
    lifecycle: futures::lock::Mutex<()>,
    /// When a tombstone the cleaner kept becomes removable (`delete.retention.ms` after its
    /// segment's newest record): the cleaner runs again then, whatever the dirty ratio.
    tombstones_due_at: Cell<Option<i64>>,
}

/// What the cleaner sees of a partition: its sealed segments, the active segment's base and
/// the log start offset.
pub(super) struct SealedView {
    pub segments: Vec<SealedSegment>,
    pub active_base: i64,
    pub log_start: i64,
}

pub(super) struct SealedSegment {
    pub info: SegmentInfo,
    pub file: Rc<glommio::io::DmaFile>,
}

/// The most offsets one segment spans: relative offsets in its index are 32-bit, and Kafka
/// reads them as signed (`canConvertToRelativeOffset`).
const MAX_SEGMENT_OFFSETS: i64 = i32::MAX as i64;

/// How many offsets a job's batches take.
fn job_offsets(job: &AppendJob) -> i64 {
    job.headers
        .iter()
        .map(|h| i64::from(h.last_offset_delta) + 1)
        .sum()
}

/// The partition's log start offset when DeleteRecords moved it (a `util::checkpoint` line).
const LOG_START_FILE: &str = "log-start-offset";
const LOG_START_HINT: &str =
    "remove it to serve the partition from its first segment again (deleted records reappear)";

pub fn partition_dir(data_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{partition}"))
}

impl PartitionLog {
    /// Opens (recovering the last segment) or creates the partition's directory, and starts
    /// its writer task on the current shard.
    pub async fn open(
        data_dir: &Path,
        topic: &str,
        partition: i32,
        config: LogConfig,
        commit: Rc<GroupCommit>,
        cache: Rc<TailBudget>,
    ) -> io::Result<Rc<PartitionLog>> {
        let dir = partition_dir(data_dir, topic, partition);
        let created = !dir.exists();
        blocking::create_dir_all(&dir).await?;
        // A cleaning that committed its swap but did not finish it is finished now; one that
        // did not commit leaves only files that are removed.
        super::swap::recover_swaps(&dir).await?;
        let mut bases: Vec<i64> = blocking::list_dir(&dir)
            .await?
            .iter()
            .filter_map(|name| segment::parse_log_file_name(name))
            .collect();
        bases.sort_unstable();
        let mut segments = Vec::with_capacity(bases.len().max(1));
        for (i, base) in bases.iter().enumerate() {
            let last = i + 1 == bases.len();
            let path = dir.join(segment::log_file_name(*base));
            segments.push(
                Segment::open(
                    &path,
                    *base,
                    last,
                    config.index_interval_bytes,
                    config.io_buffer_bytes,
                )
                .await?,
            );
        }
        if segments.is_empty() {
            segments.push(Segment::create(&dir, 0).await?);
        }
        if created {
            blocking::sync_dir(data_dir).await?;
        }
        blocking::sync_dir(&dir).await?;
        let high_watermark = segments.last().map_or(0, |s| s.next_offset);
        // DeleteRecords may have moved the start past the first segment's base.
        let deleted_below = checkpoint::read(&dir.join(LOG_START_FILE), LOG_START_HINT).await?;
        let log_start_offset = deleted_below
            .unwrap_or(0)
            .clamp(segments[0].base_offset, high_watermark);
        let producers = recover_producers(&dir, &segments, high_watermark, &config).await?;
        let log = Rc::new(PartitionLog {
            topic: topic.to_string(),
            partition,
            dir,
            config: Cell::new(config),
            state: RefCell::new(LogState {
                segments,
                log_start_offset,
                high_watermark,
            }),
            queue: RefCell::new(VecDeque::new()),
            queued: Notify::new(),
            appended: Notify::new(),
            commit,
            closed: Cell::new(false),
            writer_done: Notify::new(),
            writer_running: Cell::new(true),
            roll_requested: Cell::new(false),
            checkpoint_requested: Cell::new(false),
            checkpointed: Cell::new(high_watermark),
            checkpoint_in_flight: Cell::new(false),
            checkpoint_done: Notify::new(),
            failed: RefCell::new(None),
            disk_full: Cell::new(false),
            unindexed_aborts: RefCell::new(Vec::new()),
            producers: RefCell::new(producers),
            tail: RefCell::new(TailCache::new(cache)),
            lifecycle: futures::lock::Mutex::new(()),
            tombstones_due_at: Cell::new(None),
        });
        glommio::spawn_local(log.clone().writer()).detach();
        Ok(log)
    }

    pub fn config(&self) -> LogConfig {
        self.config.get()
    }

    /// New settings for the topic (AlterConfigs): appends and retention use them from now on.
    pub fn set_config(&self, config: LogConfig) {
        self.config.set(config);
    }

    pub fn high_watermark(&self) -> i64 {
        self.state.borrow().high_watermark
    }

    pub fn log_start_offset(&self) -> i64 {
        self.state.borrow().log_start_offset
    }

    /// Bytes of record batches in the segments, and how many segments there are.
    pub fn size_and_segments(&self) -> (u64, usize) {
        let state = self.state.borrow();
        let size = state.segments.iter().map(|s| u64::from(s.size)).sum();
        (size, state.segments.len())
    }

    /// The first offset whose transaction is still open, or the high watermark: how far a
    /// read_committed consumer may read.
    pub fn last_stable_offset(&self) -> i64 {
        let hw = self.high_watermark();
        self.producers
            .borrow()
            .first_unstable_offset()
            .map_or(hw, |first| first.min(hw))
    }

    /// DeleteRecords: moves the log start offset up to `offset` (-1: the high watermark), so
    /// records before it are no longer served, and persists it before answering. Returns the
    /// new low watermark. Segments wholly below it stay on disk until retention removes them.
    pub async fn delete_records(&self, offset: i64) -> Result<i64, LogError> {
        let hw = self.high_watermark();
        let target = if offset == -1 { hw } else { offset };
        if !(0..=hw).contains(&target) {
            return Err(LogError::OffsetOutOfRange);
        }
        let _one_writer = self.lifecycle.lock().await;
        let start = self.log_start_offset().max(target);
        // Durable first, then served: a failed write (a full disk) leaves the start where it
        // was, in memory as on disk.
        checkpoint::write(&self.dir.join(LOG_START_FILE), start)
            .await
            .map_err(|e| LogError::Storage(e.to_string()))?;
        let mut state = self.state.borrow_mut();
        state.log_start_offset = state.log_start_offset.max(start);
        Ok(state.log_start_offset)
    }

    /// Deletes the oldest segments that retention no longer keeps (Kafka's
    /// `deleteOldSegments`): those wholly below the log start offset (DeleteRecords), older than
    /// `retention.ms` by their largest timestamp, or beyond `retention.bytes` of the log's size;
    /// never the active segment. The new log start offset is made durable before any file goes,
    /// so a crash in between leaves files that the next start skips, never a gap. Returns how
    /// many segments went.
    pub async fn enforce_retention(&self, now_ms: i64) -> io::Result<usize> {
        let retention = self.config.get().retention;
        let _one_writer = self.lifecycle.lock().await;
        let (count, new_start) = {
            let state = self.state.borrow();
            let mut size: u64 = state.segments.iter().map(|s| u64::from(s.size)).sum();
            let mut count = 0;
            // `count + 1 < len`: the active segment stays.
            while count + 1 < state.segments.len() {
                let s = &state.segments[count];
                let below_start = s.next_offset <= state.log_start_offset;
                // A segment without timestamps (-1) is never too old: Kafka falls back to the
                // file's modification time, which a restart's recovery does not keep here.
                let old = retention.delete
                    && retention.ms >= 0
                    && s.max_timestamp >= 0
                    && now_ms.saturating_sub(s.max_timestamp) > retention.ms;
                let big = retention.delete
                    && retention.bytes >= 0
                    && size - u64::from(s.size) >= retention.bytes as u64;
                if !(below_start || old || big) {
                    break;
                }
                size -= u64::from(s.size);
                count += 1;
            }
            let next_base = state.segments.get(count).map_or(0, |s| s.base_offset);
            (count, next_base.max(state.log_start_offset))
        };
        if count == 0 {
            return Ok(0);
        }
        checkpoint::write(&self.dir.join(LOG_START_FILE), new_start).await?;
        let removed: Vec<Segment> = {
            let mut state = self.state.borrow_mut();
            state.log_start_offset = state.log_start_offset.max(new_start);
            state.segments.drain(..count).collect()
        };
        self.producers.borrow_mut().forget_aborted_below(new_start);
        for s in &removed {
            for path in [
                s.path.clone(),
                s.path.with_extension("index"),
                s.path.with_extension("timeindex"),
                self.dir.join(txn_index::file_name(s.base_offset)),
            ] {
                blocking::remove_file(&path).await;
            }
        }
        tracing::info!(topic = %self.topic, partition = self.partition, segments = count, log_start_offset = new_start, "retention deleted old segments");
        Ok(count)
    }

    /// The lock the cleaner holds while it rewrites sealed segments.
    pub(super) fn lifecycle(&self) -> &futures::lock::Mutex<()> {
        &self.lifecycle
    }

    /// Every segment but the active one, oldest first, with the active segment's base offset
    /// and the log start offset: what the cleaner plans and reads from.
    pub(super) fn sealed_view(&self) -> SealedView {
        let state = self.state.borrow();
        let n = state.segments.len().saturating_sub(1);
        SealedView {
            segments: state.segments[..n]
                .iter()
                .map(|s| SealedSegment {
                    info: SegmentInfo {
                        base_offset: s.base_offset,
                        next_offset: s.next_offset,
                        size: s.size,
                        max_timestamp: s.max_timestamp,
                        first_timestamp: s.index.first_timestamp(),
                    },
                    file: s.file.clone(),
                })
                .collect(),
            active_base: state.active().base_offset,
            log_start: state.log_start_offset,
        }
    }

    /// The aborted transactions with records in `[from, to)`.
    pub(super) fn aborted_between(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        self.producers.borrow().aborted_between(from, to)
    }

    pub(super) fn tombstones_due_at(&self) -> Option<i64> {
        self.tombstones_due_at.get()
    }

    pub(super) fn set_tombstones_due_at(&self, at: Option<i64>) {
        self.tombstones_due_at.set(at);
    }

    /// Puts a cleaned segment in place of the segments it replaces (those based in
    /// `[base, end)`), once its files are in place on disk. Readers holding the old files
    /// finish on them.
    pub(super) fn install_cleaned(&self, base: i64, end: i64, segment: Segment) {
        let mut state = self.state.borrow_mut();
        let first = state.segments.partition_point(|s| s.base_offset < base);
        let last = state.segments.partition_point(|s| s.base_offset < end);
        // The active segment is never replaced: it starts at or after `end`.
        let last = last.min(state.segments.len().saturating_sub(1));
        if first < last {
            state.segments.splice(first..last, std::iter::once(segment));
        }
        // Reads of what the cleaner rewrote go to the new segment, not the cache.
        self.tail.borrow_mut().drop_below(end);
    }

    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// The producers this partition knows (DescribeProducers).
    pub fn producers(&self) -> Vec<super::producers::ProducerView> {
        self.producers.borrow().describe()
    }

    /// Forgets producers idle for longer than `producer.id.expiration.ms`.
    pub fn expire_producers(&self, now_ms: i64) -> usize {
        let expiration = self.config.get().producer_id_expiration_ms;
        self.producers.borrow_mut().expire(now_ms, expiration)
    }

    /// Queues validated batches for the writer; resolves once they are written to the file
    /// (not yet synced: see `GroupCommit::durable`).
    pub async fn append(
        &self,
        records: Bytes,
        headers: Vec<BatchHeader>,
    ) -> Result<AppendOutcome, LogError> {
        self.enqueue(records, headers, Origin::Client, 0)?
            .await
            .unwrap_or(Err(LogError::Closed))
    }

    /// Queues validated batches for the writer now, so appends keep the order of the calls;
    /// the receiver resolves once they are written. `frame_bytes`: the size of the request
    /// frame `records` are a slice of, 0 when they are not (`tail_cache::may_reference`).
    pub fn enqueue(
        &self,
        records: Bytes,
        headers: Vec<BatchHeader>,
        origin: Origin,
        frame_bytes: usize,
    ) -> Result<AppendReceiver, LogError> {
        if self.closed.get() {
            return Err(LogError::Closed);
        }
        if let Some(e) = self.failed.borrow().as_ref() {
            return Err(LogError::Storage(e.clone()));
        }
        let (reply, rx) = oneshot::channel();
        self.queue.borrow_mut().push_back(AppendJob {
            records,
            frame_bytes,
            headers,
            origin,
            reply,
            _pending: self.commit.pending(),
        });
        self.queued.notify_all();
        Ok(rx)
    }

    /// Waits until every write so far is on stable storage.
    pub async fn durable(&self) -> Result<(), LogError> {
        self.commit
            .durable()
            .await
            .map_err(|e| LogError::Storage(e.to_string()))
    }

    async fn writer(self: Rc<Self>) {
        loop {
            while self.queue.borrow().is_empty()
                && !self.closed.get()
                && !self.roll_requested.get()
                && !self.checkpoint_requested.get()
            {
                self.queued.notified().await;
            }
            if self.checkpoint_requested.replace(false) && self.failed.borrow().is_none() {
                self.start_checkpoint();
            }
            if self.roll_requested.replace(false) && self.failed.borrow().is_none() {
                let due = {
                    let state = self.state.borrow();
                    let now = crate::util::now_ms();
                    state
                        .active()
                        .due_by_time(self.config.get().segment_ms, now, now, None)
                };
                if due {
                    if let Err(e) = self.roll().await {
                        // A full disk: tried again at the next check (logged once); anything
                        // else takes the partition offline, as a failed append's roll does.
                        let _ = self.storage_failed(&e);
                    }
                }
            }
            if self.queue.borrow().is_empty() && self.closed.get() {
                break;
            }
            if self.queue.borrow().is_empty() {
                continue;
            }
            let mut jobs = Vec::new();
            let mut bytes = 0usize;
            let coalesce_max = self.config.get().io_buffer_bytes as usize;
            {
                let mut queue = self.queue.borrow_mut();
                while let Some(job) = queue.front() {
                    if !jobs.is_empty() && bytes + job.records.len() > coalesce_max {
                        break;
                    }
                    bytes += job.records.len();
                    jobs.extend(queue.pop_front());
                }
            }
            self.write_jobs(jobs).await;
        }
        self.writer_running.set(false);
        self.writer_done.notify_all();
    }

    /// Writes a run of jobs, rolling segments where one does not fit, and answers each job.
    async fn write_jobs(&self, jobs: Vec<AppendJob>) {
        let segment_bytes = self.config.get().segment_bytes as usize;
        let mut run = Run::default();
        for job in jobs {
            if let Some(e) = self.failed.borrow().as_ref() {
                let _ = job.reply.send(Err(LogError::Storage(e.clone())));
                continue;
            }
            if self.must_roll_for(&job, &run, segment_bytes) {
                let rolled = match self.flush(&mut run).await {
                    Ok(()) => self.roll().await,
                    Err(e) => Err(e),
                };
                if let Err(e) = rolled {
                    // The run's own jobs were answered by `flush`; this one was not written.
                    let _ = job.reply.send(Err(self.storage_failed(&e)));
                    continue;
                }
            }
            if job_offsets(&job) > MAX_SEGMENT_OFFSETS {
                // Several batches in one produce whose counts add up past what one segment's
                // 32-bit relative offsets can hold, even in a new segment.
                let _ = job
                    .reply
                    .send(Err(LogError::Batch(batch::BatchError::Invalid(
                        "the batches claim more records than a segment can hold",
                    ))));
                continue;
            }
            let (segment_size, segment_next) = {
                let state = self.state.borrow();
                (state.active().size, state.active().next_offset)
            };
            let base_offset = run.batches.last().map_or(segment_next, |b| b.next_offset);
            // What the check records is undone if the run's write fails (`write_run`).
            self.producers.borrow_mut().begin_write();
            match self.check_producer(&job, base_offset) {
                Ok(Checked::Append) => {}
                Ok(Checked::Duplicate { first_offset }) => {
                    run.duplicates.push((job.reply, first_offset));
                    continue;
                }
                Err(e) => {
                    tracing::debug!(topic = %self.topic, partition = self.partition, error = %e, "refused a producer's batch");
                    let _ = job.reply.send(Err(e));
                    continue;
                }
            }
            if let Origin::Marker(marker) = job.origin {
                run.markers.push((marker, base_offset));
            }
            let mut next = base_offset;
            let mut position = segment_size + run.bytes as u32;
            // The broker's clock for a LogAppendTime topic's client batches (markers and the
            // broker's own records keep theirs).
            let append_time = (self.config.get().log_append_time && job.origin == Origin::Client)
                .then(batch::wall_clock_ms);
            for h in &job.headers {
                let after = next + i64::from(h.last_offset_delta) + 1;
                run.batches.push(PendingBatch {
                    base_offset: next,
                    position,
                    max_timestamp: append_time.unwrap_or(h.max_timestamp),
                    log_append_time: append_time.is_some(),
                    next_offset: after,
                });
                next = after;
                position += h.total_bytes;
            }
            run.bytes += job.records.len();
            run.jobs.push((job, base_offset));
        }
        // A failure was answered to every job of the run and logged by `flush`.
        let _ = self.flush(&mut run).await;
    }

    /// Whether the active segment must roll before `job` (Kafka's `shouldRoll`): it would grow
    /// past `segment.bytes`, it is older than `segment.ms` (less its jitter), or the job's
    /// offsets would not fit its 32-bit relative offsets. Never for an empty segment.
    fn must_roll_for(&self, job: &AppendJob, run: &Run, segment_bytes: usize) -> bool {
        let config = self.config.get();
        let state = self.state.borrow();
        let active = state.active();
        let filled = active.size as usize + run.bytes;
        if filled == 0 {
            return false;
        }
        let next = run
            .batches
            .last()
            .map_or(active.next_offset, |b| b.next_offset);
        let span = next - active.base_offset + job_offsets(job);
        let incoming_ts = job
            .headers
            .iter()
            .map(|h| h.max_timestamp)
            .max()
            .unwrap_or(-1);
        let first_pending = run.batches.first().map(|b| b.max_timestamp);
        filled + job.records.len() > segment_bytes
            || span > MAX_SEGMENT_OFFSETS
            || active.due_by_time(
                config.segment_ms,
                crate::util::now_ms(),
                incoming_ts,
                first_pending,
            )
    }

    /// Rolls the active segment if it is older than `segment.ms` and not empty, even with no
    /// append coming (Kafka rolls only on the next append; rolling a quiet partition lets
    /// retention and the cleaner reach its last records, as Redpanda does). The writer does
    /// it, in turn with appends.
    /// Asks the writer to record the recovery point, if anything was written since the last.
    pub fn request_checkpoint(&self) {
        if self.high_watermark() > self.checkpointed.get() {
            self.checkpoint_requested.set(true);
            self.queued.notify_all();
        }
    }

    /// Starts recording the recovery point (Kafka's recovery-point checkpoint), called by the
    /// writer between runs, when the active segment's index, the producer state and the high
    /// watermark describe the same bytes: they are taken now, and a task of their own syncs
    /// what was written and then writes the index files and the producer snapshot, while the
    /// writer goes on (the files only ever point at synced bytes). A restart after a crash then
    /// recovers from the last index entry and replays producers from the snapshot. Rolls and
    /// close wait for a recording in flight (`wait_checkpoint`): it writes the files of the
    /// segment that was active when it began.
    fn start_checkpoint(self: &Rc<Self>) {
        let high_watermark = self.high_watermark();
        if high_watermark <= self.checkpointed.get() || self.checkpoint_in_flight.get() {
            return;
        }
        let files = self.state.borrow().active().index_files();
        // A snapshot past markers whose aborts are not indexed would hide them from a restart:
        // with some pending (a failed .txnindex append), only the index files are written.
        let snapshot = self
            .unindexed_aborts
            .borrow()
            .is_empty()
            .then(|| self.producer_snapshot_bytes());
        self.checkpoint_in_flight.set(true);
        let this = self.clone();
        glommio::spawn_local(async move {
            let recorded = async {
                this.commit.durable().await?;
                files.write().await?;
                if let Some(bytes) = snapshot {
                    // Unsynced, like the index files: a damaged or missing snapshot (after a
                    // power loss) fails its CRC and the start replays from an older one.
                    this.write_snapshot(high_watermark, bytes, false).await?;
                }
                io::Result::Ok(())
            }
            .await;
            match recorded {
                Ok(()) => this.checkpointed.set(high_watermark),
                // Nothing is lost: a restart scans from the previous point.
                Err(e) => tracing::warn!(topic = %this.topic, partition = this.partition, error = %e, "cannot record the recovery point; trying again at the next interval"),
            }
            this.checkpoint_in_flight.set(false);
            this.checkpoint_done.notify_all();
        })
        .detach();
    }

    /// Waits for a recovery point being recorded.
    async fn wait_checkpoint(&self) {
        while self.checkpoint_in_flight.get() {
            self.checkpoint_done.notified().await;
        }
    }

    pub fn roll_if_old(&self, now_ms: i64) {
        let due = {
            let state = self.state.borrow();
            state
                .active()
                .due_by_time(self.config.get().segment_ms, now_ms, now_ms, None)
        };
        if due {
            self.roll_requested.set(true);
            self.queued.notify_all();
        }
    }

    /// Checks a producer's batch against the producer state at the offset it would get, and
    /// records it there (`producers`). Batches without a producer id, and the broker's own,
    /// pass as they are.
    fn check_producer(&self, job: &AppendJob, base_offset: i64) -> Result<Checked, LogError> {
        if job.headers.iter().all(|h| h.producer_id < 0) {
            return Ok(Checked::Append);
        }
        if job.origin != Origin::Client {
            // The broker's own transactional writes (offset commits of a transaction) open
            // the transaction here like a producer's, unchecked.
            let mut producers = self.producers.borrow_mut();
            let mut offset = base_offset;
            for h in job.headers.iter().filter(|h| !h.is_control()) {
                producers.record(h, offset);
                offset += i64::from(h.last_offset_delta) + 1;
            }
            return Ok(Checked::Append);
        }
        // Kafka takes one batch per partition from a producer; with several, a retried one
        // could not be answered alone.
        let [h] = job.headers.as_slice() else {
            return Err(LogError::Batch(batch::BatchError::Invalid(
                "a producer with an id sends one batch per partition",
            )));
        };
        self.producers
            .borrow_mut()
            .check(h, base_offset)
            .map_err(LogError::Producer)
    }

    /// The error an append gets for a failed write (or roll), logged once per transition rather
    /// than per request. A full disk leaves the log as it was (the failed write cut back off,
    /// the producer state undone), so the partition stays online and the next append tries
    /// again; any other error takes the partition offline until a restart, whose recovery
    /// cuts whatever the failure left at the end of the log.
    fn storage_failed(&self, e: &io::Error) -> LogError {
        if self.failed.borrow().is_some() {
            return LogError::Storage(e.to_string());
        }
        if super::error::is_out_of_space(e) {
            if !self.disk_full.replace(true) {
                tracing::error!(topic = %self.topic, partition = self.partition, error = %e, data_dir = %self.dir.parent().unwrap_or(&self.dir).display(), "disk full: appends to this partition are answered KAFKA_STORAGE_ERROR until space is freed in the data directory; nothing acknowledged is lost");
            } else {
                tracing::debug!(topic = %self.topic, partition = self.partition, error = %e, "disk still full");
            }
        } else {
            tracing::error!(topic = %self.topic, partition = self.partition, error = %e, "write failed; the partition takes no more appends until the broker restarts (recovery then checks the log)");
            *self.failed.borrow_mut() = Some(e.to_string());
        }
        LogError::Storage(e.to_string())
    }

    /// A write succeeded: the end of a full disk, if there was one, is logged.
    fn storage_ok(&self) {
        if self.disk_full.replace(false) {
            tracing::info!(topic = %self.topic, partition = self.partition, "disk space available again: appends to this partition resumed");
        }
    }

    /// Writes a run to the active segment (its batches copied once, straight into the aligned
    /// buffer, with their offsets written in), then publishes it: index, ended transactions,
    /// high watermark, waiting fetches, and the jobs' replies. On failure every job of the run
    /// (and every duplicate waiting on it) is answered with the error.
    async fn flush(&self, run: &mut Run) -> io::Result<()> {
        let duplicates = std::mem::take(&mut run.duplicates);
        let result = self.write_run(run).await;
        let outcome = |base_offset| match &result {
            Ok(log_start_offset) => Ok(AppendOutcome {
                base_offset,
                log_start_offset: *log_start_offset,
            }),
            Err(e) => Err(LogError::Storage(e.to_string())),
        };
        for (reply, first_offset) in duplicates {
            let _ = reply.send(outcome(first_offset));
        }
        result.map(|_| ())
    }

    /// `flush` without the duplicates: returns the log start offset the replies report.
    async fn write_run(&self, run: &mut Run) -> io::Result<i64> {
        if run.jobs.is_empty() {
            self.producers.borrow_mut().end_write(true);
            return Ok(self.log_start_offset());
        }
        let run_start = run.batches.first().map_or(0, |b| b.position);
        let cache_it = self.tail.borrow().enabled();
        // The cache keeps the producers' own bytes (and the prefix written into them apart)
        // when it may keep every job's; else one copy of the run.
        let by_reference = cache_it
            && !run.batches.iter().any(|b| b.log_append_time)
            && run
                .jobs
                .iter()
                .all(|(j, _)| tail_cache::may_reference(j.records.len(), j.frame_bytes));
        let mut run_bytes: Option<Bytes> = None;
        let mut heads: Vec<u8> = Vec::new();
        let planned = {
            let state = self.state.borrow();
            state.active().plan_write(run.bytes, |buf| {
                let mut at = 0;
                for (job, _) in &run.jobs {
                    buf[at..at + job.records.len()].copy_from_slice(&job.records);
                    at += job.records.len();
                }
                for b in &run.batches {
                    let at = &mut buf[(b.position - run_start) as usize..];
                    batch::assign_offset(at, b.base_offset, 0);
                    if b.log_append_time {
                        batch::set_log_append_time(at, b.max_timestamp);
                    }
                }
                if by_reference {
                    heads.reserve(run.batches.len() * batch::BROKER_ASSIGNED_PREFIX_BYTES);
                    for b in &run.batches {
                        let at = (b.position - run_start) as usize;
                        heads.extend_from_slice(&buf[at..at + batch::BROKER_ASSIGNED_PREFIX_BYTES]);
                    }
                } else if cache_it {
                    run_bytes = Some(Bytes::copy_from_slice(buf));
                }
            })
        };
        let result = match planned {
            Ok(p) => p.execute().await,
            Err(e) => Err(e),
        };
        let jobs = std::mem::take(&mut run.jobs);
        let batches = std::mem::take(&mut run.batches);
        let markers = std::mem::take(&mut run.markers);
        let run_len = std::mem::take(&mut run.bytes);
        self.producers.borrow_mut().end_write(result.is_ok());
        let written = match result {
            Ok(written) => written,
            Err(e) => {
                // The segment is as before the run (its size, tail block and index were not
                // touched, and the file was cut back to its size), so the next run writes the
                // same tail block again, at the same offsets.
                let error = self.storage_failed(&e);
                for (job, _) in jobs {
                    let _ = job.reply.send(Err(error.clone()));
                }
                return Err(e);
            }
        };
        self.storage_ok();
        if by_reference {
            let cached = referenced_batches(&jobs, &batches, run_start, Bytes::from(heads));
            self.tail.borrow_mut().push_batches(cached);
        } else if let Some(bytes) = run_bytes {
            // The run's batches, in order, each a range of the one copy.
            let ends = batches
                .iter()
                .skip(1)
                .map(|b| (b.position - run_start) as usize)
                .chain(std::iter::once(bytes.len()));
            let cached: Vec<Cached> = batches
                .iter()
                .zip(ends)
                .map(|(b, end)| Cached {
                    base_offset: b.base_offset,
                    last_offset: b.next_offset - 1,
                    head: None,
                    run: bytes.clone(),
                    range: (b.position - run_start) as usize..end,
                })
                .collect();
            self.tail.borrow_mut().push_batches(cached);
        }
        let file = written.file().clone();
        let interval = self.config.get().index_interval_bytes;
        let (log_start_offset, aborted, segment_base) = {
            let mut state = self.state.borrow_mut();
            let active = state.active_mut();
            for b in batches {
                assert!(b.base_offset >= active.next_offset, "offsets only grow");
                active.max_timestamp = active.max_timestamp.max(b.max_timestamp);
                let rel = u32::try_from(b.base_offset - active.base_offset).unwrap_or(u32::MAX);
                let max_so_far = active.max_timestamp;
                active
                    .index
                    .on_append(rel, b.position, max_so_far, interval);
                active.next_offset = b.next_offset;
            }
            active.commit_write(written);
            let next = active.next_offset;
            let segment_base = active.base_offset;
            // Transactions end before the high watermark moves past their markers, so a
            // read_committed reader never sees an aborted record as stable.
            let mut producers = self.producers.borrow_mut();
            let aborted: Vec<AbortedTxn> = markers
                .iter()
                .filter_map(|(m, offset)| {
                    producers.complete(
                        m.producer_id,
                        m.producer_epoch,
                        m.coordinator_epoch,
                        m.commit,
                        *offset,
                        next,
                    )
                })
                .collect();
            state.high_watermark = next;
            (state.log_start_offset, aborted, segment_base)
        };
        self.commit.mark_dirty(&file, run_len);
        self.appended.notify_all();
        if !aborted.is_empty() {
            self.unindexed_aborts
                .borrow_mut()
                .extend(aborted.iter().map(|a| (segment_base, *a)));
        }
        if !self.unindexed_aborts.borrow().is_empty() {
            // Before the marker's reply: the coordinator counts the transaction as ended in
            // this partition once answered, and a later snapshot relies on the index. A failed
            // append (a full disk) does not fail the run: the markers are in the log and the
            // aborts in memory, and the entries are appended before any snapshot past them, so
            // until then a restart finds them by replaying the markers.
            match self.index_aborted().await {
                Ok(()) => {}
                Err(e) if self.unindexed_aborts.borrow().len() > aborted.len() => {
                    tracing::debug!(topic = %self.topic, partition = self.partition, error = %e, "still cannot append to the aborted transaction index");
                }
                Err(e) => {
                    tracing::warn!(topic = %self.topic, partition = self.partition, error = %e, "cannot append to the aborted transaction index yet; retrying with the next write and before the next roll");
                }
            }
        }
        for (job, base_offset) in jobs {
            let _ = job.reply.send(Ok(AppendOutcome {
                base_offset,
                log_start_offset,
            }));
        }
        Ok(log_start_offset)
    }

    /// Appends the aborted transactions not indexed yet to the `.txnindex` of the segment
    /// holding their markers (in order: all of one segment's in one append).
    async fn index_aborted(&self) -> io::Result<()> {
        loop {
            let (segment_base, bytes, count) = {
                let pending = self.unindexed_aborts.borrow();
                let Some(&(segment_base, _)) = pending.first() else {
                    return Ok(());
                };
                let same: Vec<&AbortedTxn> = pending
                    .iter()
                    .take_while(|(base, _)| *base == segment_base)
                    .map(|(_, a)| a)
                    .collect();
                let bytes: Vec<u8> = same.iter().flat_map(|a| txn_index::encode(a)).collect();
                (segment_base, bytes, same.len())
            };
            let path = self.dir.join(txn_index::file_name(segment_base));
            blocking::append_synced(&path, bytes, txn_index::ENTRY_BYTES).await?;
            self.unindexed_aborts.borrow_mut().drain(..count);
        }
    }

    /// Seals the active segment and starts a new one at the next offset. A failure (a full
    /// disk) leaves the active segment taking appends, as it was: the sealed index files
    /// written so far are valid for it, and recovery reads past them; the next segment's file
    /// is removed again, because a start takes the segment before the last as sealed and the
    /// last as the log's end, so an empty next file left behind while appends went on into
    /// this one would hide them.
    async fn roll(&self) -> io::Result<()> {
        self.wait_checkpoint().await;
        // The snapshot below is past this segment's markers: their aborts must be indexed.
        self.index_aborted().await?;
        let (seal, next_offset) = {
            let mut state = self.state.borrow_mut();
            let active = state.active_mut();
            (active.seal_plan(), active.next_offset)
        };
        seal.execute().await?;
        let path = self.dir.join(segment::log_file_name(next_offset));
        let created = match Segment::create(&self.dir, next_offset).await {
            Ok(segment) => {
                let rest = match self.write_producer_snapshot(next_offset).await {
                    Ok(()) => blocking::sync_dir(&self.dir).await,
                    Err(e) => Err(e),
                };
                rest.map(|()| segment)
            }
            Err(e) => Err(e),
        };
        let mut segment = match created {
            Ok(segment) => segment,
            Err(e) => {
                if let Err(removing) = blocking::remove_file_if_exists(&path).await {
                    return Err(io::Error::other(format!(
                        "{e}; then removing the unfinished next segment failed too: {removing}"
                    )));
                }
                return Err(e);
            }
        };
        let config = self.config.get();
        segment.roll_jitter_ms =
            crate::util::random_below(config.segment_jitter_ms.min(config.segment_ms));
        self.state.borrow_mut().segments.push(segment);
        tracing::debug!(topic = %self.topic, partition = self.partition, base_offset = next_offset, "rolled segment");
        Ok(())
    }

    /// Resolves when the high watermark passes `offset`, or after `timeout`.
    pub async fn wait_for_data(&self, offset: i64, timeout: Duration) {
        if self.high_watermark() > offset || self.closed.get() {
            return;
        }
        let notified = self.appended.notified();
        let timer = glommio::timer::sleep(timeout);
        futures::pin_mut!(notified);
        futures::pin_mut!(timer);
        futures::future::select(notified, timer).await;
    }

    /// Reads whole batches starting with the one that holds `offset`, up to `max_bytes` (the
    /// first batch is returned whole even when larger, so a consumer always makes progress).
    pub async fn read(
        &self,
        offset: i64,
        max_bytes: u32,
        isolation: Isolation,
    ) -> Result<ReadOutcome, LogError> {
        let last_stable_offset = self.last_stable_offset();
        let (high_watermark, log_start_offset) = {
            let state = self.state.borrow();
            if offset < state.log_start_offset || offset > state.high_watermark {
                return Err(LogError::OffsetOutOfRange);
            }
            (state.high_watermark, state.log_start_offset)
        };
        let limit = match isolation {
            Isolation::ReadUncommitted => high_watermark,
            Isolation::ReadCommitted => last_stable_offset,
        };
        let mut out = Pieces::default();
        let mut outcome = ReadOutcome {
            records: Pieces::default(),
            high_watermark,
            last_stable_offset,
            log_start_offset,
            aborted: Vec::new(),
        };
        if offset >= limit {
            return Ok(outcome);
        }
        let cached = self.tail.borrow().read(offset, limit, max_bytes as usize);
        if let Some((records, last_read)) = cached {
            if isolation == Isolation::ReadCommitted && !records.is_empty() {
                outcome.aborted = self
                    .producers
                    .borrow()
                    .aborted_between(offset, last_read + 1);
            }
            outcome.records = records;
            return Ok(outcome);
        }
        let mut last_read = offset;
        // Everything below `covered` has been read or skipped. Each step reads the segment
        // holding `covered`, found by base offset every time: retention may remove segments at
        // the front, and the cleaner may swap a group of segments for one, while this read
        // waits for the disk (a read that went on "after the segment it read" could skip the
        // rest of a swapped group).
        //
        // Segment data is not copied: the read walks the batch headers through the page cache
        // (on the blocking pool, where a disk read may wait) and answers with file ranges,
        // which the connection sends with sendfile. The descriptor it holds keeps the bytes
        // readable even if the segment is deleted or swapped before they are sent.
        let mut covered = offset;
        loop {
            let seg = {
                let state = self.state.borrow();
                let at = state
                    .segments
                    .partition_point(|s| s.base_offset <= covered)
                    .saturating_sub(1);
                let mut seg = state.segments.get(at);
                if seg.is_some_and(|s| s.next_offset <= covered) {
                    seg = state.segments.get(at + 1);
                }
                match seg {
                    None => None,
                    Some(s) => {
                        let rel =
                            u32::try_from((covered - s.base_offset).max(0)).unwrap_or(u32::MAX);
                        let reader = s.reader().map_err(|e| LogError::Storage(e.to_string()))?;
                        Some((reader, s.index.lookup(rel).position, s.size, s.next_offset))
                    }
                }
            };
            let Some((file, from, size, next_offset)) = seg else {
                break;
            };
            let (room, first) = (
                (max_bytes as usize).saturating_sub(out.len()),
                out.is_empty(),
            );
            let walk = {
                let file = file.clone();
                blocking::run(move || {
                    segment::walk_batches(&file, from, size, covered, limit, room, first)
                })
                .await
                .map_err(|e| LogError::Storage(e.to_string()))?
            };
            if let Some(last) = walk.last_offset {
                last_read = last;
                let len = walk.ends.last().copied().unwrap_or(0);
                out.push(
                    Part::File {
                        file,
                        pos: u64::from(walk.start),
                        len,
                    },
                    walk.ends,
                );
            }
            if walk.full || out.len() >= max_bytes as usize || next_offset <= covered {
                break;
            }
            covered = next_offset.max(last_read + 1);
        }
        if isolation == Isolation::ReadCommitted && !out.is_empty() {
            outcome.aborted = self
                .producers
                .borrow()
                .aborted_between(offset, last_read + 1);
        }
        outcome.records = out;
        Ok(outcome)
    }

    /// ListOffsets v0 (Kafka's `UnifiedLog.legacyFetchOffsetsBefore`): up to `max_offsets`
    /// offsets, newest first, from a list of one entry per segment (its base offset, or the
    /// log start if that is higher, with the segment's time) and, when the active segment
    /// holds records, the high watermark with the time `now_ms`. `Latest` starts the walk
    /// back at the last entry, `Earliest` at the first (so it answers the log start alone),
    /// and a time at the last entry whose time is at or before it (none: an empty list).
    ///
    /// Kafka takes a segment's time from its file's mtime, which is when it was last
    /// written; this takes the largest record timestamp in it (its creation time while it is
    /// empty), which is the same for LogAppendTime and close to it for producers' CreateTime.
    /// Segments wholly below the log start (DeleteRecords moved it past them and retention has
    /// not yet removed them) are left out, where Kafka would repeat the log start for each.
    pub fn offsets_before(&self, from: OffsetsFrom, max_offsets: usize, now_ms: i64) -> Vec<i64> {
        let state = self.state.borrow();
        let log_start = state.log_start_offset;
        let last = state.segments.len().saturating_sub(1);
        let mut entries: Vec<(i64, i64)> = state
            .segments
            .iter()
            .enumerate()
            .filter(|(i, s)| *i == last || s.next_offset > log_start)
            .map(|(_, s)| {
                let time = if s.size > 0 {
                    s.max_timestamp
                } else {
                    s.created_ms
                };
                (s.base_offset.max(log_start), time)
            })
            .collect();
        if state.active().size > 0 {
            entries.push((state.high_watermark, now_ms));
        }
        let start = match from {
            OffsetsFrom::Latest => entries.len().checked_sub(1),
            OffsetsFrom::Earliest => (!entries.is_empty()).then_some(0),
            OffsetsFrom::Time(ts) => entries.iter().rposition(|&(_, time)| time <= ts),
        };
        let Some(start) = start else {
            return Vec::new();
        };
        let mut offsets: Vec<i64> = entries[..=start]
            .iter()
            .rev()
            .take(max_offsets)
            .map(|&(offset, _)| offset)
            .collect();
        // Descending, as Kafka sorts them; the log start can stand for two entries.
        offsets.sort_unstable_by(|a, b| b.cmp(a));
        offsets.dedup();
        offsets
    }

    /// ListOffsets by time (Kafka's `UnifiedLog.fetchOffsetByTimestamp`): the offset and
    /// timestamp of the first record, in offset order and at or after the log start offset,
    /// whose timestamp is at or after `ts`; `None` when there is none.
    ///
    /// Producers set CreateTime, so timestamps may go backwards within and across segments:
    /// the answer is the first match by offset, not the record with the nearest timestamp.
    /// Segments are taken in offset order, skipping those whose largest timestamp is older
    /// than `ts` or that lie wholly below the log start; within one, the time index (largest
    /// timestamp so far) and the offset index (the log start) say where the scan may begin,
    /// and a batch whose largest timestamp is older is skipped without decoding. Kafka
    /// searches only the first segment whose largest timestamp is new enough, and so answers
    /// none when the records that made it qualify lie below a log start moved by DeleteRecords;
    /// this goes on to the next segments, which is what ListOffsets promises.
    pub async fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, LogError> {
        let (log_start, candidates) = {
            let state = self.state.borrow();
            let log_start = state.log_start_offset;
            let candidates: Vec<_> = state
                .segments
                .iter()
                .filter(|s| s.next_offset > log_start && s.max_timestamp >= ts)
                .map(|s| {
                    let from = s
                        .index
                        .lookup_time(ts)
                        .position
                        .max(scan_start(s, log_start));
                    (s.file.clone(), from, s.size)
                })
                .collect();
            (log_start, candidates)
        };
        for (file, from, size) in candidates {
            let found = self
                .first_record_at_or_after(&file, from, size, ts, log_start)
                .await?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// In one segment file, scanning `[from, size)`: the offset and timestamp of the first
    /// record at or after `log_start` whose timestamp is at or after `ts`.
    async fn first_record_at_or_after(
        &self,
        file: &glommio::io::DmaFile,
        from: u32,
        size: u32,
        ts: i64,
        log_start: i64,
    ) -> Result<Option<(i64, i64)>, LogError> {
        let window = self.config.get().io_buffer_bytes;
        let mut found = None;
        segment::scan(file, from, size, false, window, |_, header, bytes| {
            if header.max_timestamp < ts || header.last_offset() < log_start {
                return Scan::Continue;
            }
            found = record_times(header, bytes)
                .into_iter()
                .find(|&(offset, t)| t >= ts && offset >= log_start);
            if found.is_some() {
                Scan::Stop
            } else {
                Scan::Continue
            }
        })
        .await
        .map_err(|e| LogError::Storage(e.to_string()))?;
        Ok(found)
    }

    /// ListOffsets -3 (KIP-734): the offset and timestamp of the record with the largest
    /// timestamp at or after the log start offset; when several records share it, the first
    /// in offset order (Kafka takes the first segment with the largest timestamp, and in it
    /// the first record that has it). `None` when the log holds no record.
    pub async fn offset_of_max_timestamp(&self) -> Result<Option<(i64, i64)>, LogError> {
        let (log_start, segments) = {
            let state = self.state.borrow();
            let log_start = state.log_start_offset;
            let segments: Vec<_> = state
                .segments
                .iter()
                .filter(|s| s.size > 0 && s.next_offset > log_start)
                .map(|s| {
                    let below_start = s.base_offset < log_start;
                    let from = scan_start(s, log_start);
                    (s.file.clone(), from, s.size, s.max_timestamp, below_start)
                })
                .collect();
            (log_start, segments)
        };
        let window = self.config.get().io_buffer_bytes;
        // The largest timestamp and the segment holding it first. A segment that starts below
        // the log start may owe its largest timestamp to records no longer served: scan it.
        let mut best: Option<(i64, usize)> = None;
        for (i, (file, from, size, max_timestamp, below_start)) in segments.iter().enumerate() {
            let largest = if *below_start {
                let mut largest: Option<i64> = None;
                segment::scan(file, *from, *size, false, window, |_, header, bytes| {
                    if header.last_offset() < log_start {
                        return Scan::Continue;
                    }
                    let in_batch = if header.base_offset >= log_start {
                        Some(header.max_timestamp)
                    } else {
                        record_times(header, bytes)
                            .into_iter()
                            .filter(|&(offset, _)| offset >= log_start)
                            .map(|(_, t)| t)
                            .max()
                    };
                    largest = largest.max(in_batch);
                    Scan::Continue
                })
                .await
                .map_err(|e| LogError::Storage(e.to_string()))?;
                largest
            } else {
                Some(*max_timestamp)
            };
            if let Some(largest) = largest {
                if best.is_none_or(|(b, _)| largest > b) {
                    best = Some((largest, i));
                }
            }
        }
        let Some((max_ts, i)) = best else {
            return Ok(None);
        };
        let Some((file, from, size, _, _)) = segments.get(i) else {
            return Ok(None);
        };
        self.first_record_at_or_after(file, *from, *size, max_ts, log_start)
            .await
    }

    /// Stops taking appends, lets the writer finish what is queued, and seals the active
    /// segment so the next start needs no recovery scan.
    pub async fn close(&self) -> io::Result<()> {
        self.closed.set(true);
        self.queued.notify_all();
        self.appended.notify_all();
        while self.writer_running.get() {
            self.writer_done.notified().await;
        }
        self.wait_checkpoint().await;
        self.tail.borrow_mut().clear();
        let seal = {
            let mut state = self.state.borrow_mut();
            state.segments.last_mut().map(|s| s.seal_plan())
        };
        if let Some(seal) = seal {
            seal.execute().await?;
        }
        if self.failed.borrow().is_none() {
            // A snapshot past markers whose aborts are not indexed would hide them from the
            // next start; without one, the start replays the markers and indexes them.
            self.index_aborted().await?;
            self.write_producer_snapshot(self.high_watermark()).await?;
        }
        Ok(())
    }

    /// Saves the producer state as of `offset` (everything before it written and published),
    /// so a start replays only the batches after it. Expired producers are dropped first.
    async fn write_producer_snapshot(&self, offset: i64) -> io::Result<()> {
        let bytes = self.producer_snapshot_bytes();
        self.write_snapshot(offset, bytes, true).await
    }

    /// The producer state as a snapshot file's bytes, expired producers dropped first.
    fn producer_snapshot_bytes(&self) -> Vec<u8> {
        self.expire_producers(crate::util::now_ms());
        producer_snapshot::encode(&self.producers.borrow().snapshot())
    }

    /// Writes a snapshot of the producer state as of `offset` (`synced` or not), and removes
    /// all but the newest older one.
    async fn write_snapshot(&self, offset: i64, bytes: Vec<u8>, synced: bool) -> io::Result<()> {
        let path = self.dir.join(producer_snapshot::file_name(offset));
        if synced {
            segment::write_file_synced(&path, &bytes).await?;
        } else {
            segment::write_file_replaced(&path, bytes).await?;
        }
        // The newest two are enough: a start uses the newest at or below the log end, which
        // only a lost tail of the active segment could put below the newest.
        let mut older: Vec<i64> = blocking::list_dir(&self.dir)
            .await?
            .iter()
            .filter_map(|n| producer_snapshot::parse_file_name(n))
            .filter(|o| *o < offset)
            .collect();
        older.sort_unstable();
        older.pop();
        for o in older {
            blocking::remove_file(&self.dir.join(producer_snapshot::file_name(o))).await;
        }
        Ok(())
    }

    /// Queues a transaction marker (a control batch the broker builds) for the writer.
    pub fn enqueue_marker(&self, marker: Marker) -> Result<AppendReceiver, LogError> {
        let records = batch::encode_marker(
            marker.producer_id,
            marker.producer_epoch,
            marker.coordinator_epoch,
            marker.commit,
            crate::util::now_ms(),
        )
        .map_err(LogError::Storage)?;
        let header = BatchHeader::parse(&records).ok_or(LogError::Storage(
            "a marker the broker built does not parse".into(),
        ))?;
        self.enqueue(
            Bytes::from(records),
            vec![header],
            Origin::Marker(marker),
            0,
        )
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Hands every record from the log start to the high watermark to `visit`, in order,
    /// decoded (and decompressed): how a coordinator rebuilds its state from its internal
    /// partition. Stops at a batch that does not decode, with an error log naming it.
    pub async fn replay(
        &self,
        mut visit: impl FnMut(kafka_protocol::records::Record),
    ) -> Result<(), LogError> {
        let mut offset = self.log_start_offset();
        let end = self.high_watermark();
        let window = self.config().io_buffer_bytes;
        while offset < end {
            let records = self
                .read(offset, window, Isolation::ReadUncommitted)
                .await?
                .records;
            let mut buf = blocking::run(move || records.to_bytes())
                .await
                .map_err(|e| LogError::Storage(e.to_string()))?;
            if buf.is_empty() {
                break;
            }
            let mut next = offset;
            while !buf.is_empty() {
                let set = match kafka_protocol::records::RecordBatchDecoder::decode(&mut buf) {
                    Ok(set) => set,
                    Err(e) => {
                        tracing::error!(topic = %self.topic, partition = self.partition, offset = next, error = %e, "cannot decode a batch; the rest of the partition is not replayed");
                        return Ok(());
                    }
                };
                // A read starts with the whole batch holding `offset`: skip what was replayed.
                for r in set.records.into_iter().filter(|r| r.offset >= offset) {
                    next = r.offset + 1;
                    visit(r);
                }
            }
            if next <= offset {
                break;
            }
            offset = next;
        }
        Ok(())
    }
}

/// Rebuilds a partition's producer state at open: the newest snapshot at or below the high
/// watermark, the aborted transactions indexed before it, and every batch after it replayed
/// from the segments (Kafka's `loadProducerState`). Snapshots past the high watermark (a cut
/// tail) and older ones are removed. Aborted transactions found by the replay that the index
/// lacks (a crash between marker and index) are indexed now.
async fn recover_producers(
    dir: &Path,
    segments: &[Segment],
    high_watermark: i64,
    config: &LogConfig,
) -> io::Result<ProducerStates> {
    let names = blocking::list_dir(dir).await?;
    let mut snapshots: Vec<i64> = names
        .iter()
        .filter_map(|n| producer_snapshot::parse_file_name(n))
        .collect();
    snapshots.sort_unstable();
    let mut chosen: Option<(i64, ProducerStates)> = None;
    for &offset in snapshots.iter().rev().filter(|&&o| o <= high_watermark) {
        let path = dir.join(producer_snapshot::file_name(offset));
        let Some(bytes) = blocking::read_if_exists(&path).await else {
            continue;
        };
        match producer_snapshot::decode(&bytes) {
            Ok(entries) => {
                chosen = Some((offset, ProducerStates::from_snapshot(&entries)));
                break;
            }
            Err(why) => {
                tracing::warn!(file = %path.display(), error = why, "ignoring a damaged producer snapshot; replaying the log instead");
            }
        }
    }
    let log_start = segments.first().map_or(0, |s| s.base_offset);
    let (start, mut states) = chosen.unwrap_or((log_start, ProducerStates::default()));
    for &offset in snapshots.iter().filter(|&&o| o != start) {
        blocking::remove_file(&dir.join(producer_snapshot::file_name(offset))).await;
    }
    let mut indexed = Vec::new();
    for name in names.iter().filter(|n| n.ends_with(".txnindex")) {
        if let Some(bytes) = blocking::read_if_exists(&dir.join(name)).await {
            indexed.extend(txn_index::decode_all(&bytes));
        }
    }
    states.restore_aborted(indexed.iter().filter(|a| a.last_offset < start).cloned());
    let mut missing: Vec<(i64, AbortedTxn)> = Vec::new();
    for seg in segments.iter().filter(|s| s.next_offset > start) {
        let from = if start > seg.base_offset {
            let rel = u32::try_from(start - seg.base_offset).unwrap_or(u32::MAX);
            seg.index.lookup(rel).position
        } else {
            0
        };
        let mut batches: Vec<(BatchHeader, Option<(bool, i32)>)> = Vec::new();
        segment::scan(
            &seg.file,
            from,
            seg.size,
            false,
            config.io_buffer_bytes,
            |_, h, bytes| {
                if h.last_offset() >= start && h.producer_id >= 0 {
                    let marker = if h.is_control() {
                        batch::parse_marker(bytes)
                    } else {
                        None
                    };
                    batches.push((*h, marker));
                }
                Scan::Continue
            },
        )
        .await?;
        for (h, marker) in batches {
            match marker {
                Some((commit, coordinator_epoch)) => {
                    let ended = states.complete(
                        h.producer_id,
                        h.producer_epoch,
                        coordinator_epoch,
                        commit,
                        h.base_offset,
                        high_watermark,
                    );
                    missing.extend(
                        ended
                            .filter(|a| !indexed.contains(a))
                            .map(|a| (seg.base_offset, a)),
                    );
                }
                None if !h.is_control() => states.record(&h, h.base_offset),
                None => {}
            }
        }
    }
    for (segment_base, aborted) in missing {
        let path = dir.join(txn_index::file_name(segment_base));
        blocking::append_synced(
            &path,
            txn_index::encode(&aborted).to_vec(),
            txn_index::ENTRY_BYTES,
        )
        .await?;
    }
    Ok(states)
}

/// The offset and timestamp of each record of a stored batch, in offset order, through the
/// bounded record walk (`records`); the records before one that does not parse, or none when
/// the batch does not decompress (these bytes come from disk: nothing here panics). In a
/// LogAppendTime batch every record has the batch's largest timestamp, as Kafka's
/// `DefaultRecordBatch` reports it.
fn record_times(header: &BatchHeader, batch_bytes: &[u8]) -> Vec<(i64, i64)> {
    let Ok(body) = records::body(header, batch_bytes) else {
        return Vec::new();
    };
    let log_append_time = header.is_log_append_time();
    records::walk(&body)
        .map_while(Result::ok)
        .map(|r| {
            let offset = header.base_offset.saturating_add(i64::from(r.offset_delta));
            let t = if log_append_time {
                header.max_timestamp
            } else {
                header.base_timestamp.saturating_add(r.timestamp_delta)
            };
            (offset, t)
        })
        .collect()
}

/// Where a scan of segment `s` for records at or after `log_start` may begin: the offset
/// index entry at or before it, or the segment's start.
fn scan_start(s: &Segment, log_start: i64) -> u32 {
    if log_start <= s.base_offset {
        return 0;
    }
    let relative = u32::try_from(log_start - s.base_offset).unwrap_or(u32::MAX);
    s.index.lookup(relative).position
}

/// A written run's batches for the tail cache as the producers' own bytes: each batch is its
/// prefix as written (`heads`, one `BROKER_ASSIGNED_PREFIX_BYTES` slice per batch, in order)
/// and the rest of it in its job's records. The jobs' records are the run, in order.
fn referenced_batches(
    jobs: &[(AppendJob, i64)],
    batches: &[PendingBatch],
    run_start: u32,
    heads: Bytes,
) -> Vec<Cached> {
    const PREFIX: usize = batch::BROKER_ASSIGNED_PREFIX_BYTES;
    let mut cached = Vec::with_capacity(batches.len());
    let (mut job, mut job_start) = (0usize, 0usize);
    for (i, b) in batches.iter().enumerate() {
        let at = (b.position - run_start) as usize;
        while job < jobs.len() && at >= job_start + jobs[job].0.records.len() {
            job_start += jobs[job].0.records.len();
            job += 1;
        }
        let Some((j, _)) = jobs.get(job) else { break };
        let end = batches
            .get(i + 1)
            .map_or(usize::MAX, |n| (n.position - run_start) as usize)
            .min(job_start + j.records.len());
        cached.push(Cached {
            base_offset: b.base_offset,
            last_offset: b.next_offset - 1,
            head: Some(heads.slice(i * PREFIX..(i + 1) * PREFIX)),
            run: j.records.clone(),
            range: at - job_start + PREFIX..end - job_start,
        });
    }
    cached
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::tests::make_batch;
    use crate::log::segment::fault::{self, WriteFault};
    use kafka_protocol::records::Compression;

    use crate::log::test_support::{open_log, run};

    fn config(segment_bytes: u32) -> LogConfig {
        LogConfig {
            index_interval_bytes: 256,
            ..LogConfig::plain(segment_bytes, 256 << 10)
        }
    }

    async fn open(dir: &Path, segment_bytes: u32) -> Rc<PartitionLog> {
        open_log(dir, config(segment_bytes)).await
    }

    async fn append(log: &PartitionLog, records: usize) -> i64 {
        let b = make_batch(records, 40, Compression::None);
        let headers = batch::validate_produce(&b, 1 << 20).expect("valid");
        let out = log.append(Bytes::from(b), headers).await.expect("append");
        log.durable().await.expect("durable");
        out.base_offset
    }

    /// The active segment's file runs ahead of its data in zeros (so appends overwrite written
    /// blocks, which ext4 does inline); a close cuts them off, and appends after a reopen go
    /// on at the right place.
    #[test]
    fn zeros_run_ahead_of_the_data_and_a_close_cuts_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        run(move || async move {
            let log = open(&path, 64 << 20).await;
            for _ in 0..200 {
                append(&log, 5).await;
            }
            let file = segment_path(&path, 0);
            // Zeros are written in the background after the write that asks for them.
            let mut ahead = 0;
            for _ in 0..1000 {
                let size = u64::from(log.state.borrow().active().size);
                ahead = std::fs::metadata(&file)
                    .expect("stat")
                    .len()
                    .saturating_sub(size);
                if ahead > 0 {
                    break;
                }
                glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
            }
            assert!(ahead >= 4096, "zeros ahead of the data: {ahead} bytes");
            let size = u64::from(log.state.borrow().active().size);
            log.close().await.expect("close");
            assert_eq!(std::fs::metadata(&file).expect("stat").len(), size);
            let log = open(&path, 64 << 20).await;
            assert_eq!(log.high_watermark(), 1000);
            assert_eq!(append(&log, 1).await, 1000);
            assert_eq!(read_all(&log, 0).await.len(), 201);
            log.close().await.expect("close");
        });
    }

    /// A power loss keeps what was synced and any part of the rest, torn at 512-byte sectors:
    /// every acknowledged record (its append answered, then `durable()` returned) survives
    /// recovery, nothing appears that was never written, and recovery never panics, whatever
    /// subset of the unsynced writes the device kept. The checker has teeth: acknowledging
    /// appends without the sync loses records for some of the same losses.
    #[test]
    fn a_power_loss_keeps_every_acknowledged_record() {
        let lost = |sync_before_ack: bool| -> usize {
            (0..12u64)
                .filter(|&seed| !power_loss_keeps_acknowledged(seed, sync_before_ack))
                .count()
        };
        assert_eq!(
            lost(true),
            0,
            "acknowledged records lost with fdatasync before the ack"
        );
        assert!(
            lost(false) > 0,
            "without the sync, some loss must lose acknowledged records"
        );
    }

    /// One run of the scenario above; true when every acknowledged batch was found.
    fn power_loss_keeps_acknowledged(seed: u64, sync_before_ack: bool) -> bool {
        use crate::log::segment::fault::{self, Event};
        let mut rng = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut next = move |n: u64| {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (rng >> 33) % n.max(1)
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let before = dir.path().join("before");
        let after = dir.path().join("after");
        let (tx, rx) = std::sync::mpsc::channel();
        let (b, a) = (before.clone(), after.clone());
        run(move || async move {
            std::fs::create_dir_all(&b).expect("dir");
            fault::record_from_now();
            let log = open(&b, 64 << 20).await;
            // (base offset, bytes as sent) of every batch written, and how many are acked.
            let mut written: Vec<(i64, Vec<u8>)> = Vec::new();
            let mut acked = 0usize;
            // The power goes after a random number of appends.
            for i in 0..10 + next(40) {
                let n = 1 + next(4) as usize;
                let records = (0..n).map(|j| {
                    let key = bytes::Bytes::from(format!("k{i}-{j}"));
                    let value = bytes::Bytes::from(vec![i as u8; 100 + next(3000) as usize]);
                    (Some(key), Some(value), 1_000 + i as i64)
                });
                let b = batch::encode_batch(records, Compression::None);
                let headers = batch::validate_produce(&b, 1 << 20).expect("valid");
                let out = log
                    .append(Bytes::from(b.clone()), headers)
                    .await
                    .expect("append");
                written.push((out.base_offset, b));
                if !sync_before_ack {
                    acked = written.len();
                } else if next(3) == 0 {
                    log.durable().await.expect("durable");
                    acked = written.len();
                }
            }
            let events = fault::take_recorded();
            // No close: the power goes. Each segment file's image: the writes a completed sync
            // covered, then any sectors of the others, the later over the earlier.
            std::fs::create_dir_all(a.join("t-0")).expect("dir");
            let mut files: Vec<std::path::PathBuf> =
                events.iter().map(|(p, _)| p.clone()).collect();
            files.sort();
            files.dedup();
            for path in files {
                let mut durable: Vec<u8> = Vec::new();
                let mut pending: Vec<(usize, u64, Vec<u8>)> = Vec::new();
                let apply =
                    |image: &mut Vec<u8>, pos: u64, bytes: &[u8], keep: &dyn Fn(usize) -> bool| {
                        let end = pos as usize + bytes.len();
                        if image.len() < end {
                            image.resize(end, 0);
                        }
                        for (k, sector) in bytes.chunks(512).enumerate() {
                            if keep(k) {
                                let at = pos as usize + k * 512;
                                image[at..at + sector.len()].copy_from_slice(sector);
                            }
                        }
                    };
                for (idx, (p, e)) in events.iter().enumerate() {
                    if *p != path {
                        continue;
                    }
                    match e {
                        Event::Write { pos, bytes } => pending.push((idx, *pos, bytes.clone())),
                        Event::Sync { covers } => {
                            let (done, rest): (Vec<_>, Vec<_>) =
                                pending.drain(..).partition(|(i, _, _)| i < covers);
                            for (_, pos, bytes) in done {
                                apply(&mut durable, pos, &bytes, &|_| true);
                            }
                            pending = rest;
                        }
                    }
                }
                let mut image = durable;
                for (_, pos, bytes) in pending {
                    let choice = next(3);
                    let kept: Vec<bool> = (0..bytes.len().div_ceil(512))
                        .map(|_| match choice {
                            0 => false,
                            1 => true,
                            _ => next(2) == 0,
                        })
                        .collect();
                    apply(&mut image, pos, &bytes, &|k| kept[k]);
                }
                let name = path.file_name().expect("name");
                std::fs::write(a.join("t-0").join(name), &image).expect("image");
            }
            let recovered = open(&a, 64 << 20).await;
            let mut found = 0usize;
            let mut at = 0;
            while at < recovered.high_watermark() {
                let r = recovered
                    .read(at, 1 << 20, Isolation::ReadUncommitted)
                    .await
                    .expect("read");
                let bytes = r.records.to_bytes().expect("records");
                if bytes.is_empty() {
                    break;
                }
                let mut rest = &bytes[..];
                while let Some(h) = batch::check_stored_batch(rest) {
                    let stored = &rest[..h.total_bytes as usize];
                    let (base, sent) = written
                        .iter()
                        .find(|(base, _)| *base == h.base_offset)
                        .expect("every served batch was written");
                    assert_eq!(*base, h.base_offset);
                    assert_eq!(&stored[16..], &sent[16..], "a served batch is as written");
                    found += 1;
                    at = h.last_offset() + 1;
                    rest = &rest[h.total_bytes as usize..];
                }
                assert!(rest.is_empty(), "whole batches only");
            }
            tx.send(found >= acked).expect("send");
        });
        rx.recv().expect("result")
    }

    /// A sync round wanted while another partition's append is still queued or being written
    /// waits for it, so one fdatasync answers both; a round with nothing pending starts at
    /// once (the hour-long wait allowed here would otherwise hold the test).
    #[test]
    fn one_round_covers_appends_still_being_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        run(move || async move {
            crate::log::segment::probe_device(&path, 0)
                .await
                .expect("probe");
            let commit = GroupCommit::new(crate::log::group_commit::Gather {
                max_wait: std::time::Duration::from_secs(3600),
                max_bytes: usize::MAX,
            });
            glommio::spawn_local(commit.clone().run()).detach();
            let mut logs = Vec::new();
            for p in 0..2 {
                let log = PartitionLog::open(
                    &path,
                    "t",
                    p,
                    config(1 << 20),
                    commit.clone(),
                    TailBudget::new(0),
                );
                logs.push(log.await.expect("open"));
            }
            append(&logs[0], 3).await;
            assert_eq!(
                commit.rounds(),
                1,
                "alone, the append is synced by one round"
            );

            let enqueue = |log: &PartitionLog| {
                let b = make_batch(2, 40, Compression::None);
                let headers = batch::validate_produce(&b, 1 << 20).expect("valid");
                log.enqueue(Bytes::from(b), headers, Origin::Client, 0)
                    .expect("enqueue")
            };
            let first = enqueue(&logs[0]);
            let second = enqueue(&logs[1]);
            first.await.expect("answered").expect("written");
            let log = logs[0].clone();
            let first_synced = glommio::spawn_local(async move { log.durable().await });
            second.await.expect("answered").expect("written");
            logs[1].durable().await.expect("second synced");
            first_synced.await.expect("first synced");
            assert_eq!(commit.rounds(), 2, "one round for both appends");
            for log in logs {
                log.close().await.expect("close");
            }
        });
    }

    /// Recovery and reads walk the file in windows: whatever the window size, a batch header
    /// that straddles a window boundary is read on from the next window, never taken for a
    /// torn tail (which cut acknowledged batches off after a kill -9).
    #[test]
    fn scans_find_every_batch_whatever_the_window() {
        run(|| async {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().to_path_buf();
            let log = open(&path, 1 << 30).await;
            for n in 1..=40 {
                append(&log, n % 7 + 1).await;
            }
            let expected = read_all(&log, 0).await.len();
            let file = log.state.borrow().active().file.clone();
            let size = log.state.borrow().active().size;
            for window in (100..3000).step_by(7) {
                let mut seen = 0;
                let end = segment::scan(&file, 0, size, true, window, |_, _, _| {
                    seen += 1;
                    Scan::Continue
                })
                .await
                .expect("scan");
                assert_eq!(
                    (seen, end.position),
                    (expected, size),
                    "window of {window} bytes"
                );
            }
            log.close().await.expect("close");
        });
    }

    /// A partition written a little reserves disk in proportion to what it holds, not a
    /// whole preallocation step: ten thousand such partitions must not reserve 40 GB.
    #[test]
    fn a_small_segment_reserves_little() {
        use std::os::unix::fs::MetadataExt;
        run(|| async {
            let dir = tempfile::tempdir().expect("tempdir");
            let log = open(dir.path(), 1 << 30).await;
            append(&log, 10).await;
            let path = log.state.borrow().active().path.clone();
            let allocated = std::fs::metadata(&path).expect("stat").blocks() * 512;
            assert!(
                allocated <= segment::PREALLOCATE_MIN_BYTES,
                "{allocated} bytes allocated for one small batch"
            );
            assert!(allocated > 0);
            log.close().await.expect("close");
        });
    }

    /// Every batch read back from the log, with its base offset.
    async fn read_all(log: &PartitionLog, from: i64) -> Vec<BatchHeader> {
        let mut out = Vec::new();
        let mut offset = from;
        while offset < log.high_watermark() {
            let r = log
                .read(offset, 1000, Isolation::ReadUncommitted)
                .await
                .expect("read");
            let records = r.records.to_bytes().expect("records");
            let mut rest = &records[..];
            assert!(
                !rest.is_empty(),
                "read at {offset} below the high watermark returned nothing"
            );
            while !rest.is_empty() {
                let h = batch::check_stored_batch(rest).expect("stored batches check");
                offset = h.last_offset() + 1;
                rest = &rest[h.total_bytes as usize..];
                out.push(h);
            }
        }
        out
    }

    /// Offsets are assigned densely, reads from inside a batch return that whole batch, and
    /// segments roll at the configured size.
    #[test]
    fn append_read_and_roll() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        run(move || async move {
            let log = open(&path, 2048).await;
            let mut expected = 0;
            for i in 0..30 {
                assert_eq!(append(&log, 1 + i % 4).await, expected);
                expected += 1 + (i as i64) % 4;
            }
            assert_eq!(log.high_watermark(), expected);
            let batches = read_all(&log, 0).await;
            assert_eq!(batches.len(), 30);
            assert!(batches
                .windows(2)
                .all(|w| w[1].base_offset == w[0].last_offset() + 1));
            // Offset 2 sits inside the second batch (offsets 1-2): that batch comes back whole.
            let r = log
                .read(2, 1, Isolation::ReadUncommitted)
                .await
                .expect("read");
            let h =
                batch::check_stored_batch(&r.records.to_bytes().expect("records")).expect("batch");
            assert_eq!((h.base_offset, h.last_offset()), (1, 2));
            assert!(matches!(
                log.read(expected + 1, 100, Isolation::ReadUncommitted)
                    .await,
                Err(LogError::OffsetOutOfRange)
            ));
            assert!(log
                .read(expected, 100, Isolation::ReadUncommitted)
                .await
                .expect("at end")
                .records
                .is_empty());
            let segments = std::fs::read_dir(path.join("t-0"))
                .expect("dir")
                .filter(|e| {
                    e.as_ref()
                        .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "log"))
                })
                .count();
            assert!(segments >= 3, "expected several segments, found {segments}");
            log.close().await.expect("close");
        });
    }

    /// A clean close and reopen keeps every batch, and appends continue at the next offset.
    #[test]
    fn reopen_after_close() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        run(move || async move {
            let log = open(&path, 4096).await;
            for _ in 0..20 {
                append(&log, 3).await;
            }
            log.close().await.expect("close");
            let log = open(&path, 4096).await;
            assert_eq!(log.high_watermark(), 60);
            assert_eq!(read_all(&log, 0).await.len(), 20);
            assert_eq!(append(&log, 1).await, 60);
            log.close().await.expect("close");
        });
    }

    /// Recovery cuts the last segment at the first batch that fails its CRC, rebuilds a missing
    /// index, and the log continues densely after the last valid batch.
    #[test]
    fn recovery_truncates_torn_tail_and_rebuilds_index() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        run(move || async move {
            let log = open(&path, 1 << 20).await;
            for _ in 0..10 {
                append(&log, 2).await;
            }
            log.close().await.expect("close");
            let seg = path.join("t-0").join(crate::log::segment::log_file_name(0));
            let mut bytes = std::fs::read(&seg).expect("segment");
            let batch_len = bytes.len() / 10;
            // Damage the 9th batch and leave garbage after the end, as a crash might.
            bytes[8 * batch_len + 70] ^= 0xff;
            bytes.extend_from_slice(&[7u8; 100]);
            std::fs::write(&seg, &bytes).expect("write");
            std::fs::remove_file(seg.with_extension("index")).expect("rm index");
            let log = open(&path, 1 << 20).await;
            assert_eq!(log.high_watermark(), 16);
            assert_eq!(read_all(&log, 0).await.len(), 8);
            assert_eq!(
                std::fs::metadata(&seg).expect("stat").len() as usize,
                8 * batch_len
            );
            assert_eq!(append(&log, 1).await, 16);
            log.close().await.expect("close");
        });
    }

    /// Zero padding left by an unclean stop (the tail block written whole) is cut on recovery.
    #[test]
    fn recovery_cuts_zero_padding() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        run(move || async move {
            let log = open(&path, 1 << 20).await;
            for _ in 0..3 {
                append(&log, 5).await;
            }
            // No close: the file still ends in the zero-padded tail block.
            let seg = path.join("t-0").join(crate::log::segment::log_file_name(0));
            assert_eq!(std::fs::metadata(&seg).expect("stat").len() % 512, 0);
            let reopened = open(&path, 1 << 20).await;
            assert_eq!(reopened.high_watermark(), 15);
            assert_eq!(read_all(&reopened, 0).await.len(), 3);
        });
    }

    /// One idempotent batch of `n` records from producer `pid` (epoch 0) at sequence `seq`.
    fn idempotent_batch(pid: i64, seq: i32, n: usize) -> Vec<u8> {
        use kafka_protocol::records::{
            Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
        };
        let records: Vec<Record> = (0..n)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: pid,
                producer_epoch: 0,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: seq + i as i32,
                timestamp: crate::util::now_ms(),
                key: None,
                value: Some(Bytes::from(vec![b'x'; 60])),
                headers: Default::default(),
            })
            .collect();
        let mut buf = bytes::BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encode");
        buf.to_vec()
    }

    async fn append_idempotent(log: &PartitionLog, pid: i64, seq: i32) -> Result<i64, LogError> {
        let b = idempotent_batch(pid, seq, 3);
        let headers = batch::validate_produce(&b, 1 << 20).expect("valid");
        let out = log.append(Bytes::from(b), headers).await?;
        log.durable().await.expect("durable");
        Ok(out.base_offset)
    }

    /// A retried batch is answered with its first offset and not written again, a gap is
    /// refused, and both still hold after a crash (no close: the state comes from the snapshot
    /// of the last roll plus the replayed log), with at most two snapshots kept.
    #[test]
    fn producer_state_survives_a_crash() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        run(move || async move {
            let log = open(&path, 2048).await;
            let mut offsets = Vec::new();
            for i in 0..30 {
                offsets.push(append_idempotent(&log, 7, i * 3).await.expect("append"));
            }
            let end = log.high_watermark();
            assert_eq!(append_idempotent(&log, 7, 29 * 3).await, Ok(offsets[29]));
            assert_eq!(log.high_watermark(), end, "a duplicate is not written");
            assert!(matches!(
                append_idempotent(&log, 7, 100).await,
                Err(LogError::Producer(_))
            ));
            // No close: as after a kill -9.
            let reopened = open(&path, 2048).await;
            assert_eq!(
                append_idempotent(&reopened, 7, 29 * 3).await,
                Ok(offsets[29])
            );
            assert_eq!(
                append_idempotent(&reopened, 7, 28 * 3).await,
                Ok(offsets[28])
            );
            assert_eq!(append_idempotent(&reopened, 7, 30 * 3).await, Ok(end));
            let snapshots = std::fs::read_dir(path.join("t-0"))
                .expect("dir")
                .filter(|e| {
                    e.as_ref()
                        .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".snapshot"))
                })
                .count();
            assert!((1..=2).contains(&snapshots), "{snapshots} snapshots");
            reopened.close().await.expect("close");
        });
    }

    /// After a recovery point, a restart without a close (as after a kill -9) scans the active
    /// segment only from the checkpoint's last index entry and replays producers only from its
    /// snapshot, and still has every batch (those after the checkpoint too) and the producer
    /// state that answers a retried batch with its offset; without one it scans from the start.
    #[test]
    fn a_checkpoint_bounds_the_recovery_scan() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        run(move || async move {
            let log = open(&path, 1 << 20).await;
            let mut offsets = Vec::new();
            for i in 0..30 {
                offsets.push(append_idempotent(&log, 7, i * 3).await.expect("append"));
            }
            // No checkpoint yet: a crash scans the whole segment.
            let first = open(&path, 1 << 20).await;
            assert_eq!(first.state.borrow().active().recovery_scan_from, Some(0));
            drop(first);

            let checkpointed = log.high_watermark();
            log.request_checkpoint();
            for _ in 0..1000 {
                if log.checkpointed.get() == checkpointed {
                    break;
                }
                glommio::timer::sleep(Duration::from_millis(1)).await;
            }
            assert_eq!(
                log.checkpointed.get(),
                checkpointed,
                "the writer recorded the point"
            );
            for i in 30..35 {
                offsets.push(append_idempotent(&log, 7, i * 3).await.expect("append"));
            }
            let end = log.high_watermark();
            let size_at_checkpoint = {
                let state = log.state.borrow();
                state.active().index.last().map(|e| e.position).unwrap_or(0)
            };
            assert!(size_at_checkpoint > 0, "the index has entries");

            // No close: as after a kill -9.
            let reopened = open(&path, 1 << 20).await;
            let from = reopened.state.borrow().active().recovery_scan_from;
            assert!(
                from.is_some_and(|f| f > 0 && f <= size_at_checkpoint),
                "recovery began at {from:?}"
            );
            assert_eq!(reopened.high_watermark(), end, "every batch is there");
            assert_eq!(
                append_idempotent(&reopened, 7, 34 * 3).await,
                Ok(offsets[34])
            );
            assert_eq!(
                append_idempotent(&reopened, 7, 31 * 3).await,
                Ok(offsets[31])
            );
            assert_eq!(append_idempotent(&reopened, 7, 35 * 3).await, Ok(end));
            reopened.close().await.expect("close");
        });
    }

    /// A read served from the tail cache returns exactly what the same read returns from the
    /// segment files, at every offset and size, across a roll.
    #[test]
    fn tail_cache_reads_match_the_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        run(move || async move {
            let log = open(&path, 4096).await;
            for n in 0..30 {
                append(&log, n % 5 + 1).await;
            }
            assert_cached_reads_match_the_files(&log, &[1, 300, 5000]).await;
            log.close().await.expect("close");
        });
    }

    /// Reads at every offset with each of `maxes` from the tail cache (which must hold the
    /// whole log), then from the files: the same bytes.
    async fn assert_cached_reads_match_the_files(log: &PartitionLog, maxes: &[u32]) {
        /// Every read: (offset, max, the bytes).
        async fn reads(log: &PartitionLog, maxes: &[u32]) -> Vec<(i64, u32, Bytes)> {
            let mut out = Vec::new();
            for offset in 0..log.high_watermark() {
                for &max in maxes {
                    let r = log
                        .read(offset, max, Isolation::ReadUncommitted)
                        .await
                        .expect("read");
                    out.push((offset, max, r.records.to_bytes().expect("records")));
                }
            }
            out
        }
        let cached = reads(log, maxes).await;
        let hw = log.high_watermark();
        assert!(
            log.tail.borrow().read(0, hw, 1).is_some(),
            "all of it cached"
        );
        log.tail.borrow_mut().clear();
        for (from_cache, from_files) in cached.iter().zip(reads(log, maxes).await) {
            assert_eq!(
                *from_cache,
                from_files,
                "offset, max: {:?}",
                (from_files.0, from_files.1)
            );
        }
    }

    /// Batches that are most of their request frame are cached as the frame's own bytes (the
    /// broker's prefix kept apart), several requests per write, and read back exactly as the
    /// files hold them.
    #[test]
    fn the_tail_cache_keeps_large_requests_own_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        run(move || async move {
            let log = open(&path, 1 << 20).await;
            let mut frames = Vec::new();
            let mut waiting = Vec::new();
            for n in 0..6 {
                // A frame: a request header's worth of bytes, then two batches.
                let mut frame = vec![9u8; 40];
                frame.extend(make_batch(n % 3 + 1, 9000, Compression::None));
                frame.extend(make_batch(2, 9000, Compression::None));
                let frame = Bytes::from(frame);
                let records = frame.slice(40..);
                assert!(tail_cache::may_reference(records.len(), frame.len()));
                let headers = batch::validate_produce(&records, 1 << 20).expect("valid");
                let rx = log.enqueue(records, headers, Origin::Client, frame.len());
                waiting.push(rx.expect("queued"));
                frames.push(frame);
            }
            for rx in waiting {
                rx.await.expect("answered").expect("appended");
            }
            let hw = log.high_watermark();
            let (pieces, _) = log.tail.borrow().read(0, hw, usize::MAX).expect("cached");
            let frame_bytes = |p: &Part| {
                frames.iter().any(|f| match p {
                    Part::Memory(b) => f.as_ptr_range().contains(&b.as_ptr()),
                    Part::File { .. } => false,
                })
            };
            let kept = pieces.parts().iter().filter(|p| frame_bytes(p)).count();
            assert_eq!(kept, 12, "every batch's rest is its frame's bytes");
            assert_cached_reads_match_the_files(&log, &[1, 20_000, 1 << 20]).await;
            log.close().await.expect("close");
        });
    }

    /// Compressed batches claiming huge record counts (their records are not counted at
    /// produce) cannot overflow a segment's 32-bit relative offsets: the writer rolls before
    /// one would, ordinary appends after them work, and a restart recovers every batch.
    #[test]
    fn huge_record_counts_roll_instead_of_overflowing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        run(move || async move {
            let log = open(&path, 1 << 30).await;
            let claim = |count: i32| {
                let mut b = make_batch(1, 10, Compression::Gzip);
                b[23..27].copy_from_slice(&(count - 1).to_be_bytes());
                b[57..61].copy_from_slice(&count.to_be_bytes());
                let crc = crc32c::crc32c(&b[21..]);
                b[17..21].copy_from_slice(&crc.to_be_bytes());
                b
            };
            let mut expected = Vec::new();
            for _ in 0..3 {
                let b = claim(i32::MAX - 10);
                let headers = batch::validate_produce(&b, 1 << 20).expect("valid");
                let out = log.append(Bytes::from(b), headers).await.expect("append");
                expected.push(out.base_offset);
                expected.push(append(&log, 3).await);
            }
            log.durable().await.expect("durable");
            let segments = log.state.borrow().segments.len();
            assert!(segments >= 3, "{segments} segments");
            let hw = log.high_watermark();
            assert!(hw > 3 * i64::from(i32::MAX) - 100, "{hw}");
            let read: Vec<i64> = read_all(&log, 0)
                .await
                .iter()
                .map(|h| h.base_offset)
                .collect();
            assert_eq!(read, expected);
            log.close().await.expect("close");
            let reopened = open(&path, 1 << 30).await;
            assert_eq!(reopened.high_watermark(), hw);
            let read: Vec<i64> = read_all(&reopened, 0)
                .await
                .iter()
                .map(|h| h.base_offset)
                .collect();
            assert_eq!(read, expected);
            reopened.close().await.expect("close");
        });
    }

    /// Retention deletes the oldest whole segments by time and by size, never the active one;
    /// reads below the new start are out of range, and the start survives a reopen.
    #[test]
    fn retention_deletes_whole_old_segments() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        run(move || async move {
            let log = open(&path, 2048).await;
            for _ in 0..40 {
                append(&log, 3).await; // timestamps 1000..1002: long ago
            }
            let segments = |log: &PartitionLog| log.state.borrow().segments.len();
            let before = segments(&log);
            assert!(before >= 4, "{before} segments");
            let hw = log.high_watermark();
            // Size: keep at least two segments' worth.
            let two = {
                let state = log.state.borrow();
                let n = state.segments.len();
                u64::from(state.segments[n - 2].size) + u64::from(state.segments[n - 1].size)
            };
            let mut c = log.config();
            c.retention = Retention {
                delete: true,
                ms: -1,
                bytes: two as i64,
            };
            log.config.set(c);
            let gone = log
                .enforce_retention(crate::util::now_ms())
                .await
                .expect("retention");
            assert_eq!(gone, before - 2);
            assert_eq!(segments(&log), 2);
            let start = log.log_start_offset();
            assert_eq!(start, log.state.borrow().segments[0].base_offset);
            assert!(matches!(
                log.read(start - 1, 100, Isolation::ReadUncommitted).await,
                Err(LogError::OffsetOutOfRange)
            ));
            assert_eq!(
                read_all(&log, start)
                    .await
                    .last()
                    .map(|h| h.last_offset() + 1),
                Some(hw)
            );
            // Time: everything is old, but the active segment stays.
            c.retention = Retention {
                delete: true,
                ms: 60_000,
                bytes: -1,
            };
            log.config.set(c);
            assert_eq!(
                log.enforce_retention(crate::util::now_ms())
                    .await
                    .expect("retention"),
                1
            );
            assert_eq!(segments(&log), 1);
            let files = std::fs::read_dir(path.join("t-0"))
                .expect("dir")
                .filter(|e| {
                    e.as_ref()
                        .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "log"))
                })
                .count();
            assert_eq!(files, 1, "the deleted segments' files are gone");
            let start = log.log_start_offset();
            // Compacted topics (no `delete`) keep everything.
            c.retention.delete = false;
            log.config.set(c);
            assert_eq!(log.enforce_retention(i64::MAX).await.expect("retention"), 0);
            log.close().await.expect("close");
            let reopened = open(&path, 2048).await;
            assert_eq!(reopened.log_start_offset(), start);
            assert_eq!(reopened.high_watermark(), hw);
            reopened.close().await.expect("close");
        });
    }

    /// Appends one batch of `records` records; the error when its write fails.
    async fn try_append(log: &PartitionLog, records: usize) -> Result<i64, LogError> {
        let b = make_batch(records, 40, Compression::None);
        let headers = batch::validate_produce(&b, 1 << 20).expect("valid");
        let out = log.append(Bytes::from(b), headers).await?;
        log.durable().await?;
        Ok(out.base_offset)
    }

    fn segment_path(dir: &Path, base_offset: i64) -> PathBuf {
        dir.join("t-0").join(segment::log_file_name(base_offset))
    }

    /// A full disk fails one append without damaging the log: the whole write reached the
    /// file before the error, and it is cut back off; the segment's size and partly filled
    /// tail block are as before, so the next appends get the same offsets and write correct
    /// bytes (every stored batch passes its CRC), also after a crash.
    #[test]
    fn a_full_disk_fails_one_append_and_the_next_ones_work() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        run(move || async move {
            let log = open(&path, 1 << 20).await;
            for n in 1..=5 {
                append(&log, n).await;
            }
            let hw = log.high_watermark();
            let size = log.state.borrow().active().size;
            assert_ne!(size % 512, 0, "the tail block is partly filled");
            fault::fail_next_write(WriteFault {
                partial_bytes: usize::MAX,
                errno: libc::ENOSPC,
            });
            let failed = try_append(&log, 40).await;
            assert!(matches!(failed, Err(LogError::Storage(_))), "{failed:?}");
            assert_eq!(log.high_watermark(), hw);
            assert_eq!(log.state.borrow().active().size, size);
            let on_disk = std::fs::metadata(segment_path(&path, 0))
                .expect("stat")
                .len();
            assert_eq!(on_disk, u64::from(size), "the failed write is cut off");
            // Still online: the next appends take the offsets the failed one would have had.
            assert_eq!(try_append(&log, 2).await, Ok(hw));
            assert_eq!(try_append(&log, 3).await, Ok(hw + 2));
            let batches = read_all(&log, 0).await;
            assert_eq!(batches.len(), 7);
            assert!(batches
                .windows(2)
                .all(|w| w[1].base_offset == w[0].last_offset() + 1));
            // No close: as after a kill -9.
            let reopened = open(&path, 1 << 20).await;
            assert_eq!(reopened.high_watermark(), hw + 5);
            assert_eq!(read_all(&reopened, 0).await.len(), 7);
            reopened.close().await.expect("close");
        });
    }

    /// A producer's batch whose write failed for want of space is not remembered: its retry is
    /// written (not answered as a duplicate pointing at offsets that hold nothing), and the
    /// sequence goes on from it, across a crash too.
    #[test]
    fn a_failed_write_is_not_taken_for_a_duplicate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        run(move || async move {
            let log = open(&path, 1 << 20).await;
            assert_eq!(append_idempotent(&log, 7, 0).await, Ok(0));
            assert_eq!(append_idempotent(&log, 7, 3).await, Ok(3));
            fault::fail_next_write(WriteFault {
                partial_bytes: 512,
                errno: libc::ENOSPC,
            });
            assert!(matches!(
                append_idempotent(&log, 7, 6).await,
                Err(LogError::Storage(_))
            ));
            assert_eq!(append_idempotent(&log, 7, 6).await, Ok(6));
            assert_eq!(log.high_watermark(), 9);
            assert_eq!(read_all(&log, 0).await.len(), 3);
            let reopened = open(&path, 1 << 20).await;
            assert_eq!(append_idempotent(&reopened, 7, 6).await, Ok(6));
            assert_eq!(append_idempotent(&reopened, 7, 9).await, Ok(9));
            reopened.close().await.expect("close");
        });
    }

    /// Any other write error (EIO) takes the partition offline: later appends are refused
    /// without a write, and a restart recovers everything acknowledged and takes appends.
    #[test]
    fn an_io_error_takes_the_partition_offline_until_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        run(move || async move {
            let log = open(&path, 1 << 20).await;
            for _ in 0..3 {
                append(&log, 3).await;
            }
            fault::fail_next_write(WriteFault {
                partial_bytes: 4096,
                errno: libc::EIO,
            });
            assert!(matches!(
                try_append(&log, 3).await,
                Err(LogError::Storage(_))
            ));
            assert!(matches!(
                try_append(&log, 3).await,
                Err(LogError::Storage(_))
            ));
            assert_eq!(log.high_watermark(), 9);
            let reopened = open(&path, 1 << 20).await;
            assert_eq!(reopened.high_watermark(), 9);
            assert_eq!(read_all(&reopened, 0).await.len(), 3);
            assert_eq!(try_append(&reopened, 1).await, Ok(9));
            reopened.close().await.expect("close");
        });
    }

    /// A roll that fails once the next segment's file exists (its producer snapshot hit a full
    /// disk) removes that file again, so a start cannot take it for the end of the log, and
    /// leaves the active segment as it was; a later append rolls, and a crash loses nothing.
    #[test]
    fn a_failed_roll_leaves_the_log_as_it_was() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        run(move || async move {
            let log = open(&path, 2048).await;
            let batch_len = make_batch(3, 40, Compression::None).len() as u32;
            while log.state.borrow().active().size + batch_len <= 2048 {
                append(&log, 3).await;
            }
            let hw = log.high_watermark();
            // The seal's offset and time indexes are written, the snapshot fails.
            fault::script_synced_writes(&[None, None, Some(libc::ENOSPC)]);
            assert!(matches!(
                try_append(&log, 3).await,
                Err(LogError::Storage(_))
            ));
            assert_eq!(log.state.borrow().segments.len(), 1);
            assert!(
                !segment_path(&path, hw).exists(),
                "the next segment is removed"
            );
            assert_eq!(log.high_watermark(), hw);
            assert_eq!(try_append(&log, 3).await, Ok(hw));
            assert_eq!(log.state.borrow().segments.len(), 2);
            assert_eq!(try_append(&log, 3).await, Ok(hw + 3));
            let reopened = open(&path, 2048).await;
            assert_eq!(reopened.high_watermark(), hw + 6);
            let batches = read_all(&reopened, 0).await;
            assert_eq!(batches.len() as i64, (hw + 6) / 3);
            reopened.close().await.expect("close");
        });
    }

    /// An aborted transaction index append that a full disk cut short leaves a partial entry;
    /// the next append overwrites it instead of shifting every later entry off its boundary.
    #[test]
    fn txn_index_appends_overwrite_a_torn_entry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join(txn_index::file_name(0));
        run(move || async move {
            let entry = |n: i64| AbortedTxn {
                producer_id: n,
                first_offset: n,
                last_offset: n + 1,
                last_stable_offset: n + 2,
            };
            let mut bytes = txn_index::encode(&entry(1)).to_vec();
            bytes.extend_from_slice(&txn_index::encode(&entry(2))[..20]);
            std::fs::write(&file, &bytes).expect("write");
            blocking::append_synced(
                &file,
                txn_index::encode(&entry(3)).to_vec(),
                txn_index::ENTRY_BYTES,
            )
            .await
            .expect("append");
            let stored = std::fs::read(&file).expect("read");
            assert_eq!(txn_index::decode_all(&stored), vec![entry(1), entry(3)]);
        });
    }

    /// A lookup by timestamp finds the first record at or after it, inside a batch.
    #[test]
    fn offset_for_timestamp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        run(move || async move {
            let log = open(&path, 1 << 20).await;
            append(&log, 5).await; // timestamps 1000..1004 at offsets 0..4
            append(&log, 5).await; // timestamps 1000..1004 at offsets 5..9
            assert_eq!(
                log.offset_for_timestamp(1002).await.expect("ts"),
                Some((2, 1002))
            );
            assert_eq!(
                log.offset_for_timestamp(0).await.expect("ts"),
                Some((0, 1000))
            );
            assert_eq!(log.offset_for_timestamp(5000).await.expect("ts"), None);
            log.close().await.expect("close");
        });
    }

    /// Appends one batch whose records have these CreateTime timestamps.
    async fn append_times(log: &PartitionLog, timestamps: &[i64]) {
        let records = timestamps
            .iter()
            .map(|&t| (None, Some(Bytes::from_static(b"v")), t));
        let b = batch::try_encode_batch_as(records, Compression::None, None).expect("encode");
        let headers = batch::validate_produce(&b, 1 << 20).expect("valid");
        log.append(Bytes::from(b), headers).await.expect("append");
    }

    /// Timestamps that go backwards within and across segments: a lookup answers the first
    /// record in offset order whose timestamp is at or after the target (not the nearest
    /// timestamp), max timestamp answers the first record holding the largest, and neither
    /// answers a record below the log start offset once DeleteRecords moved it, even inside
    /// a segment, while later segments still answer.
    #[test]
    fn lookups_by_time_with_timestamps_out_of_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        run(move || async move {
            // Tiny segments: each batch rolls into a segment of its own.
            let log = open(&path, 100).await;
            append_times(&log, &[1000, 3000, 2000]).await; // offsets 0..=2
            append_times(&log, &[1500, 1200, 4000]).await; // offsets 3..=5
            append_times(&log, &[500, 2500, 4000]).await; // offsets 6..=8
            append_times(&log, &[100, 200]).await; // offsets 9..=10
            assert_eq!(log.state.borrow().segments.len(), 4);
            let at = |ts: i64| {
                let log = log.clone();
                async move { log.offset_for_timestamp(ts).await.expect("lookup") }
            };
            assert_eq!(at(0).await, Some((0, 1000)));
            assert_eq!(at(150).await, Some((0, 1000)));
            assert_eq!(at(1001).await, Some((1, 3000)));
            assert_eq!(at(2000).await, Some((1, 3000)));
            assert_eq!(at(3500).await, Some((5, 4000)));
            assert_eq!(at(4000).await, Some((5, 4000)));
            assert_eq!(at(4001).await, None);
            let max = || {
                let log = log.clone();
                async move { log.offset_of_max_timestamp().await.expect("max") }
            };
            // Offsets 5 and 8 share the largest timestamp: the first one, as Kafka.
            assert_eq!(max().await, Some((5, 4000)));

            // The log start inside the second segment: offsets 3.. only.
            assert_eq!(log.delete_records(4).await.expect("delete"), 4);
            assert_eq!(at(0).await, Some((4, 1200)));
            assert_eq!(at(2000).await, Some((5, 4000)));
            assert_eq!(max().await, Some((5, 4000)));
            // Past the first record with the largest timestamp.
            log.delete_records(6).await.expect("delete");
            assert_eq!(at(2000).await, Some((7, 2500)));
            assert_eq!(at(3000).await, Some((8, 4000)));
            assert_eq!(max().await, Some((8, 4000)));
            // Inside the last segment, past its largest timestamp.
            log.delete_records(10).await.expect("delete");
            assert_eq!(at(150).await, Some((10, 200)));
            assert_eq!(at(300).await, None);
            assert_eq!(max().await, Some((10, 200)));
            log.delete_records(11).await.expect("delete");
            assert_eq!(at(0).await, None);
            assert_eq!(max().await, None);
            log.close().await.expect("close");
        });
    }

    /// ListOffsets v0's list, as Kafka's `legacyFetchOffsetsBefore` builds it: latest walks
    /// back from the high watermark through the segment bases, earliest answers the log start
    /// alone, a time starts at the newest segment no newer than it, and `max_offsets` bounds
    /// the list; a log start moved by DeleteRecords stands for the segment it is in.
    #[test]
    fn offsets_before_walks_back_through_segments() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        run(move || async move {
            let log = open(&path, 100).await;
            let now = 1_000_000;
            let before = |from, max| log.offsets_before(from, max, now);
            // An empty log: one empty segment, created now (its time).
            assert_eq!(before(OffsetsFrom::Latest, 10), vec![0]);
            assert_eq!(before(OffsetsFrom::Earliest, 10), vec![0]);
            assert_eq!(before(OffsetsFrom::Time(0), 10), Vec::<i64>::new());
            // Each batch rolls into a segment of its own: bases 0, 3, 6, 9; high watermark 11.
            append_times(&log, &[1000, 3000, 2000]).await;
            append_times(&log, &[1500, 1200, 4000]).await;
            append_times(&log, &[500, 2500, 4500]).await;
            append_times(&log, &[5000, 5100]).await;
            assert_eq!(before(OffsetsFrom::Latest, 10), vec![11, 9, 6, 3, 0]);
            assert_eq!(before(OffsetsFrom::Latest, 1), vec![11]);
            assert_eq!(before(OffsetsFrom::Latest, 3), vec![11, 9, 6]);
            assert_eq!(before(OffsetsFrom::Latest, 0), Vec::<i64>::new());
            assert_eq!(before(OffsetsFrom::Earliest, 10), vec![0]);
            // Segment times 3000, 4000, 4500, 5100, then the high watermark at `now`.
            assert_eq!(before(OffsetsFrom::Time(2999), 10), Vec::<i64>::new());
            assert_eq!(before(OffsetsFrom::Time(3000), 10), vec![0]);
            assert_eq!(before(OffsetsFrom::Time(4600), 10), vec![6, 3, 0]);
            assert_eq!(before(OffsetsFrom::Time(4600), 2), vec![6, 3]);
            assert_eq!(before(OffsetsFrom::Time(now), 10), vec![11, 9, 6, 3, 0]);
            // The log start inside the second segment: it stands for that segment.
            log.delete_records(4).await.expect("delete");
            assert_eq!(before(OffsetsFrom::Latest, 10), vec![11, 9, 6, 4]);
            assert_eq!(before(OffsetsFrom::Earliest, 10), vec![4]);
            // Everything deleted: the log start and the high watermark are one offset.
            log.delete_records(11).await.expect("delete");
            assert_eq!(before(OffsetsFrom::Latest, 10), vec![11]);
            assert_eq!(before(OffsetsFrom::Earliest, 10), vec![11]);
            log.close().await.expect("close");
        });
    }

    /// Inside one segment, the time index lets a lookup skip what cannot match, and it stays
    /// right across a restart (the index read back from disk) with timestamps that dip.
    #[test]
    fn lookup_by_time_through_the_time_index() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        run(move || async move {
            let log = open(&path, 1 << 20).await;
            // Index entries every 256 bytes: 40 batches give several entries.
            let stamps: Vec<i64> = (0..40)
                .map(|i| if i % 5 == 4 { 10 } else { 1000 + i })
                .collect();
            for t in &stamps {
                append_times(&log, &[*t]).await;
            }
            let expect = |target: i64| {
                stamps
                    .iter()
                    .enumerate()
                    .find(|(_, t)| **t >= target)
                    .map(|(o, t)| (o as i64, *t))
            };
            for target in [0, 10, 11, 1000, 1003, 1004, 1005, 1020, 1038, 1039, 1040] {
                assert_eq!(
                    log.offset_for_timestamp(target).await.expect("lookup"),
                    expect(target),
                    "{target}"
                );
            }
            log.close().await.expect("close");
            let log = open(&path, 1 << 20).await;
            for target in [11, 1021, 1038] {
                assert_eq!(
                    log.offset_for_timestamp(target).await.expect("lookup"),
                    expect(target),
                    "{target}"
                );
            }
            log.close().await.expect("close");
        });
    }
}

#[cfg(test)]
mod recovery_fuzz {
    use super::*;
    use crate::log::batch::tests::make_batch;
    use kafka_protocol::records::Compression;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Whatever happens to the bytes of the last segment (cut anywhere, bytes flipped, garbage
        /// appended), recovery never panics, keeps exactly the longest prefix of intact batches,
        /// and serves only batches whose CRC checks.
        #[test]
        fn recovery_keeps_the_intact_prefix(
            cut in prop::option::of(0usize..4000),
            flips in prop::collection::vec((0usize..4000, 1u8..=255), 0..3),
            garbage in prop::collection::vec(any::<u8>(), 0..300),
            index_garbage in prop::collection::vec(any::<u8>(), 0..40),
            // Small scan windows put batch headers across window boundaries.
            window in prop::option::of(100u32..3000),
        ) {
            let dir = tempfile::tempdir().expect("tempdir");
            let seg_dir = dir.path().join("t-0");
            std::fs::create_dir_all(&seg_dir).expect("dir");
            // A segment of 12 batches with offsets assigned, as the writer leaves it.
            let mut pristine = Vec::new();
            let mut bounds = Vec::new();
            let mut offset = 0i64;
            for i in 0..12 {
                let mut b = make_batch(1 + i % 3, 30, if i % 2 == 0 { Compression::None } else { Compression::Lz4 });
                batch::assign_offset(&mut b, offset, 0);
                offset += 1 + (i as i64) % 3;
                pristine.extend_from_slice(&b);
                bounds.push(pristine.len());
            }
            let mut file = pristine.clone();
            if let Some(c) = cut { file.truncate(c.min(file.len())); }
            for (at, x) in &flips { if *at < file.len() { file[*at] ^= x; } }
            file.extend_from_slice(&garbage);
            // The first byte that differs from the original decides how much must survive.
            let original_len = bounds[11];
            // The leader epoch (bytes 12..16 of a batch) is outside the CRC: a flip there is
            // not damage recovery can see, so it does not count.
            let starts: Vec<usize> = std::iter::once(0).chain(bounds.iter().copied()).collect();
            let in_epoch = |i: usize| starts.iter().any(|&s| i >= s + 12 && i < s + 16);
            let first_diff = file
                .iter()
                .zip(pristine.iter())
                .enumerate()
                .position(|(i, (a, b))| a != b && !in_epoch(i))
                .unwrap_or(file.len().min(original_len));
            let intact_batches = bounds.iter().filter(|&&end| end <= first_diff).count();
            std::fs::write(seg_dir.join(crate::log::segment::log_file_name(0)), &file).expect("write");
            std::fs::write(seg_dir.join(crate::log::segment::log_file_name(0)).with_extension("index"), &index_garbage).expect("write");

            let path = dir.path().to_path_buf();
            let (tx, rx) = std::sync::mpsc::channel();
            glommio::LocalExecutorBuilder::default()
                .io_memory(64 << 10)
                .spawn(move || async move {
                    crate::log::segment::probe_device(&path, 0).await.expect("probe");
                    let commit = GroupCommit::new(crate::log::group_commit::Gather::NONE);
                    glommio::spawn_local(commit.clone().run()).detach();
                    let log = PartitionLog::open(&path, "t", 0, LogConfig { index_interval_bytes: 100, ..LogConfig::plain(1 << 20, window.unwrap_or(256 << 10)) }, commit, TailBudget::new(0)).await.expect("open");
                    let mut served = Vec::new();
                    let mut at = 0;
                    while at < log.high_watermark() {
                        let r = log.read(at, 10_000, Isolation::ReadUncommitted).await.expect("read");
                        let records = r.records.to_bytes().expect("records");
                        let mut rest = &records[..];
                        if rest.is_empty() { break; }
                        while !rest.is_empty() {
                            let h = batch::check_stored_batch(rest).expect("only intact batches are served");
                            at = h.last_offset() + 1;
                            rest = &rest[h.total_bytes as usize..];
                            served.push(h.base_offset);
                        }
                    }
                    tx.send((served.len(), log.high_watermark())).expect("send");
                })
                .expect("executor")
                .join()
                .expect("join");
            let (served, hw) = rx.recv().expect("result");
            // A flip inside a batch can only shorten the prefix; one that keeps the CRC valid is
            // practically impossible, so the prefix is exact.
            prop_assert_eq!(served, intact_batches);
            let expected_hw: i64 = (0..intact_batches).map(|i| 1 + (i as i64) % 3).sum();
            prop_assert_eq!(hw, expected_hw);
        }
    }
}
