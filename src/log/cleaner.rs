//! The log cleaner: compaction of `cleanup.policy=compact` partitions, on the shard that owns
//! them. See README "Compaction" for what it keeps.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::AsyncWriteExt;
use glommio::io::DmaStreamWriterBuilder;

use super::batch::BatchHeader;
use super::index::SegmentIndex;
use super::partition::{
    Compaction, LogConfig, PartitionLog, SealedSegment, SealedView, SegmentInfo,
};
use super::records::{self, RecordRef};
use super::segment::{self, Scan, Segment};
use super::swap::{cleaned_path, finish_swap, remove_cleaned, swap, swap_marker};
use super::txn_index::{self, AbortedTxn};
use crate::util::blocking::{self, with_path};
use crate::util::checkpoint;

/// The partition's cleaner checkpoint: the first offset not yet cleaned (Kafka's
/// `cleaner-offset-checkpoint`, one per partition here).
pub const CHECKPOINT_FILE: &str = "cleaner-offset";
const CHECKPOINT_HINT: &str = "remove it and the cleaner starts over from the log start";

/// What one cleaning covers: keys are mapped from `first_dirty` up to `end` (the first offset
/// that may not be cleaned yet), and every sealed segment below `end` is rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub first_dirty: i64,
    pub end: i64,
}

/// Where a partition's log starts and where cleaning must stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub active_base: i64,
    pub log_start: i64,
    /// The last stable offset: records of open transactions are not cleaned.
    pub stable: i64,
}

/// Whether a compacted partition needs cleaning now, and over what range (Kafka's
/// `LogCleanerManager.cleanableOffsets` and `grabFilthiestCompactedLog`). Cleanable is what
/// lies below the active segment, below the last stable offset (open transactions are not
/// cleaned), and in segments whose newest record is older than `min.compaction.lag.ms`. It is
/// due when the dirty share of the cleanable bytes reaches `min.cleanable.dirty.ratio`, when its
/// oldest dirty record is older than `max.compaction.lag.ms`, or when a kept tombstone's
/// `delete.retention.ms` has passed (`tombstones_due`).
pub fn plan(
    sealed: &[SegmentInfo],
    bounds: Bounds,
    checkpoint: Option<i64>,
    now: i64,
    c: &Compaction,
    tombstones_due: bool,
) -> Option<Plan> {
    let Bounds {
        active_base,
        log_start,
        stable,
    } = bounds;
    if !c.compact || sealed.is_empty() {
        return None;
    }
    let first = sealed[0].base_offset.max(log_start);
    let first_dirty = checkpoint.unwrap_or(first).clamp(first, active_base);
    let mut end = active_base.min(stable);
    if c.min_lag_ms > 0 {
        if let Some(young) = sealed
            .iter()
            .find(|s| s.max_timestamp > now.saturating_sub(c.min_lag_ms))
        {
            end = end.min(young.base_offset);
        }
    }
    let end = end.max(first_dirty);
    let size = |s: &&SegmentInfo| u64::from(s.size);
    let clean: u64 = sealed
        .iter()
        .filter(|s| s.next_offset <= first_dirty)
        .map(|s| size(&s))
        .sum();
    let dirty_segments = || {
        sealed
            .iter()
            .filter(move |s| s.next_offset > first_dirty && s.base_offset < end)
    };
    let dirty: u64 = dirty_segments().map(|s| size(&s)).sum();
    let ratio = if clean + dirty == 0 {
        0.0
    } else {
        dirty as f64 / (clean + dirty) as f64
    };
    let overdue = dirty_segments()
        .next()
        .and_then(|s| s.first_timestamp)
        .is_some_and(|t| t >= 0 && now.saturating_sub(t) > c.max_lag_ms);
    let due = (dirty > 0 && (ratio >= c.min_cleanable_ratio || overdue)) || tombstones_due;
    due.then_some(Plan { first_dirty, end })
}

/// The most bytes the cleaner reads, or gathers to write, between two chances for the shard's
/// other tasks to run: its work between awaits is synchronous (decompressing, hashing), and a
/// long stretch of it would hold up produce and fetch on the same core.
const CLEANER_STEP_BYTES: usize = 64 << 10;

/// Bytes counted per key-map entry: a 16-byte key hash and an 8-byte offset, as Kafka's
/// SkimpyOffsetMap, plus the hash table's own overhead.
pub const MAP_ENTRY_BYTES: u64 = 32;
/// The share of the map's slots filled before a cleaning stops mapping (Kafka's
/// `log.cleaner.io.buffer.load.factor` default).
const MAP_LOAD_FACTOR: f64 = 0.9;

/// The key map: for each key (by a 128-bit hash, so memory does not depend on key sizes) the
/// last offset at which it was written in the dirty range. Bounded: it stops taking keys when
/// full, and the cleaning then covers only what was mapped.
pub struct OffsetMap {
    offsets: HashMap<u128, i64>,
    capacity: usize,
}

impl OffsetMap {
    /// A map of at most `memory_bytes`.
    pub fn with_memory(memory_bytes: u64) -> OffsetMap {
        let slots = memory_bytes / MAP_ENTRY_BYTES;
        OffsetMap {
            offsets: HashMap::new(),
            capacity: ((slots as f64 * MAP_LOAD_FACTOR) as usize).max(1),
        }
    }

    fn clear(&mut self) {
        self.offsets.clear();
        // Give memory back between cleanings of big logs.
        if self.offsets.capacity() > 1 << 16 {
            self.offsets.shrink_to(1 << 16);
        }
    }

    /// Records `key` at `offset`; false when the map is full and `key` is new.
    fn put(&mut self, key: &[u8], offset: i64) -> bool {
        let hash = key_hash(key);
        if self.offsets.len() >= self.capacity && !self.offsets.contains_key(&hash) {
            return false;
        }
        self.offsets.insert(hash, offset);
        true
    }

    fn get(&self, key: &[u8]) -> Option<i64> {
        self.offsets.get(&key_hash(key)).copied()
    }
}

/// A 128-bit hash of a key: two SipHash passes with fixed keys, so two keys share an entry
/// with a chance of about 2^-128 per pair (Kafka uses MD5's 128 bits the same way).
fn key_hash(key: &[u8]) -> u128 {
    use std::collections::hash_map::DefaultHasher;
    use std::hash::Hasher;
    let mut a = DefaultHasher::new();
    a.write(key);
    let mut b = DefaultHasher::new();
    b.write_u8(0x5b);
    b.write(key);
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}

/// Spreads the cleaner's reads and writes to at most a rate (`log.cleaner.io.max.bytes.per.second`
/// over the shards), sleeping when ahead of it.
struct Throttle {
    bytes_per_second: f64,
    started: Instant,
    bytes: f64,
}

impl Throttle {
    fn new(bytes_per_second: f64) -> Throttle {
        Throttle {
            bytes_per_second,
            started: Instant::now(),
            bytes: 0.0,
        }
    }

    async fn account(&mut self, bytes: usize) {
        self.bytes += bytes as f64;
        let due = Duration::from_secs_f64((self.bytes / self.bytes_per_second).min(3600.0));
        let elapsed = self.started.elapsed();
        if due > elapsed {
            glommio::timer::sleep(due - elapsed).await;
        }
    }
}

/// What one cleaning did, for the log line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub segments_before: usize,
    pub segments_after: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub records_removed: u64,
    /// The first offset not cleaned: the new checkpoint.
    pub end: i64,
}

/// One shard's cleaner: its key map and I/O budget, used for one partition at a time.
pub struct Cleaner {
    map: OffsetMap,
    bytes_per_second: f64,
}

/// What decides a record's fate while a group is rewritten.
struct Rules<'a> {
    map: &'a OffsetMap,
    /// Records at or past this offset were not mapped and are kept.
    end: i64,
    now: i64,
    delete_retention_ms: i64,
    aborted: &'a [AbortedTxn],
    /// Per producer id: whether a batch of its transaction under way (since its last marker)
    /// was kept in this cleaning, which keeps the marker that ends it.
    txn_kept: RefCell<HashMap<i64, bool>>,
}

/// What became of one batch.
enum Kept {
    Whole,
    Part(Vec<u8>),
    Nothing,
}

impl Cleaner {
    pub fn new(map_memory_bytes: u64, bytes_per_second: f64) -> Cleaner {
        Cleaner {
            map: OffsetMap::with_memory(map_memory_bytes),
            bytes_per_second,
        }
    }

    /// Cleans `log` if its plan says it is due (see `plan`): maps the dirty range's keys, then
    /// rewrites the sealed segments below the mapped end, group by group, each swapped in
    /// crash-safely (see `swap`). Holds the log's lifecycle lock throughout, so retention and
    /// DeleteRecords wait for it. Returns what it did, or `None` when nothing was due.
    pub async fn clean(&mut self, log: &PartitionLog, now: i64) -> io::Result<Option<Stats>> {
        let config = log.config();
        if !config.compaction.compact || log.is_closed() {
            return Ok(None);
        }
        let _one_at_a_time = log.lifecycle().lock().await;
        let view = log.sealed_view();
        let dir = log.dir().to_path_buf();
        let checkpoint_path = dir.join(CHECKPOINT_FILE);
        let checkpoint = checkpoint::read(&checkpoint_path, CHECKPOINT_HINT).await?;
        let infos: Vec<SegmentInfo> = view.segments.iter().map(|s| s.info).collect();
        let tombstones_due = log.tombstones_due_at().is_some_and(|at| now >= at);
        let bounds = Bounds {
            active_base: view.active_base,
            log_start: view.log_start,
            stable: log.last_stable_offset(),
        };
        let Some(plan) = plan(
            &infos,
            bounds,
            checkpoint,
            now,
            &config.compaction,
            tombstones_due,
        ) else {
            return Ok(None);
        };
        let mut throttle = Throttle::new(self.bytes_per_second);
        self.map.clear();
        let aborted = log.aborted_between(view.log_start, plan.end.max(plan.first_dirty));
        let end = self
            .build_map(log, &view, plan, &aborted, &mut throttle)
            .await?;
        // Every sealed segment with records below `end`, from the log start on.
        let targets: Vec<&SealedSegment> = view
            .segments
            .iter()
            .filter(|s| s.info.next_offset > view.log_start && s.info.base_offset < end)
            .collect();
        let mut stats = Stats {
            end,
            ..Stats::default()
        };
        let rules = Rules {
            map: &self.map,
            end,
            now,
            delete_retention_ms: config.compaction.delete_retention_ms,
            aborted: &aborted,
            txn_kept: RefCell::new(HashMap::new()),
        };
        let mut tombstones_due_at: Option<i64> = None;
        for group in group_segments(&targets, config.segment_bytes) {
            // A group ends where the next segment (sealed or active) begins.
            let last = group[group.len() - 1].info.base_offset;
            let group_end = view
                .segments
                .iter()
                .map(|s| s.info.base_offset)
                .chain(std::iter::once(view.active_base))
                .find(|b| *b > last)
                .unwrap_or(view.active_base);
            let target = Group {
                segments: &group,
                last_before_active: group_end >= view.active_base,
            };
            let base = group[0].info.base_offset;
            let cleaned = clean_group(&dir, &target, &rules, &config, &mut throttle, &mut stats);
            let due = match cleaned.await {
                Ok(due) => due,
                Err(e) => {
                    // Not committed: the cleaned files would only take space until a restart.
                    remove_cleaned(&dir, base).await;
                    return Err(e);
                }
            };
            if let Err(e) = swap(&dir, base, group_end).await {
                if !blocking::exists(&swap_marker(&dir, base)).await {
                    remove_cleaned(&dir, base).await;
                    return Err(e);
                }
                // Committed: finish it now, or the next start does.
                tracing::warn!(dir = %dir.display(), base, error = %e, "finishing a committed swap failed; trying once more");
                finish_swap(&dir, base, group_end).await?;
            }
            tombstones_due_at = match (tombstones_due_at, due) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let path = dir.join(segment::log_file_name(base));
            let cleaned = Segment::open(
                &path,
                base,
                false,
                config.index_interval_bytes,
                config.io_buffer_bytes,
            )
            .await?;
            log.install_cleaned(base, group_end, cleaned);
        }
        checkpoint::write(&checkpoint_path, end).await?;
        log.set_tombstones_due_at(tombstones_due_at);
        Ok(Some(stats))
    }

    /// Maps each key of the dirty range `[first_dirty, plan.end)` to its last offset, skipping
    /// control batches and aborted transactions' records. Returns the first offset not mapped:
    /// `plan.end`, or where the map filled up.
    async fn build_map(
        &mut self,
        log: &PartitionLog,
        view: &SealedView,
        plan: Plan,
        aborted: &[AbortedTxn],
        throttle: &mut Throttle,
    ) -> io::Result<i64> {
        let map = &mut self.map;
        for s in view
            .segments
            .iter()
            .filter(|s| s.info.next_offset > plan.first_dirty && s.info.base_offset < plan.end)
        {
            let mut full_at: Option<i64> = None;
            let mut done = false;
            let mut from = 0u32;
            // In steps of CLEANER_STEP_BYTES, yielding between them.
            loop {
                let mut taken = 0usize;
                let scanned = segment::scan(
                    &s.file,
                    from,
                    s.info.size,
                    false,
                    CLEANER_STEP_BYTES as u32,
                    |_, header, bytes| {
                        if taken >= CLEANER_STEP_BYTES {
                            return Scan::Stop;
                        }
                        taken += bytes.len();
                        if header.base_offset >= plan.end {
                            done = true;
                            return Scan::Stop;
                        }
                        if header.last_offset() < plan.first_dirty
                            || header.is_control()
                            || is_aborted(header, aborted)
                        {
                            return Scan::Continue;
                        }
                        // A batch that does not decode maps no keys: its keys' older records
                        // are kept.
                        let Ok(body) = records::body(header, bytes) else {
                            return Scan::Continue;
                        };
                        for record in records::walk(&body) {
                            let Ok(record) = record else { break };
                            let offset = header.base_offset + i64::from(record.offset_delta);
                            if offset < plan.first_dirty || offset >= plan.end {
                                continue;
                            }
                            let Some(key) = record.key else { continue };
                            if !map.put(key, offset) {
                                full_at = Some(offset);
                                return Scan::Stop;
                            }
                        }
                        Scan::Continue
                    },
                )
                .await
                .map_err(|e| with_path(e, &segment_path(log.dir(), s.info.base_offset)))?;
                throttle.account((scanned.position - from) as usize).await;
                glommio::yield_if_needed().await;
                let stuck = scanned.position == from && taken == 0;
                if done || full_at.is_some() || scanned.position >= s.info.size || stuck {
                    break;
                }
                from = scanned.position;
            }
            if let Some(at) = full_at {
                tracing::info!(topic = %log.topic, partition = log.partition, mapped_up_to = at, "the cleaner's key map is full (log.cleaner.dedupe.buffer.size); cleaning up to there");
                return Ok(at.max(plan.first_dirty + 1).min(plan.end));
            }
            if done {
                break;
            }
        }
        Ok(plan.end)
    }
}

fn segment_path(dir: &Path, base: i64) -> PathBuf {
    dir.join(segment::log_file_name(base))
}

/// Whether a transactional batch belongs to an aborted transaction.
fn is_aborted(header: &BatchHeader, aborted: &[AbortedTxn]) -> bool {
    header.is_transactional()
        && !header.is_control()
        && aborted.iter().any(|a| {
            a.producer_id == header.producer_id
                && a.first_offset <= header.base_offset
                && header.base_offset <= a.last_offset
        })
}

/// Consecutive segments that fit together in one cleaned segment: at most `segment.bytes`
/// before cleaning, and an offset span the 32-bit relative offsets can hold (Kafka's
/// `groupSegmentsBySize`).
fn group_segments<'a>(
    segments: &[&'a SealedSegment],
    segment_bytes: u32,
) -> Vec<Vec<&'a SealedSegment>> {
    let mut groups: Vec<Vec<&SealedSegment>> = Vec::new();
    for s in segments {
        let fits = groups.last().is_some_and(|g| {
            let bytes: u64 = g.iter().map(|x| u64::from(x.info.size)).sum();
            bytes + u64::from(s.info.size) <= u64::from(segment_bytes)
                && s.info.next_offset - g[0].info.base_offset <= i64::from(i32::MAX)
        });
        match groups.last_mut() {
            Some(g) if fits => g.push(s),
            _ => groups.push(vec![s]),
        }
    }
    groups
}

/// Decides the fate of one batch's records. Returns what is kept, and the time at which a
/// tombstone kept here becomes removable.
fn filter_batch(
    header: &BatchHeader,
    bytes: &[u8],
    segment_max_timestamp: i64,
    rules: &Rules<'_>,
    removed: &mut u64,
) -> (Kept, Option<i64>) {
    if header.base_offset >= rules.end {
        return (Kept::Whole, None);
    }
    let tombstone_removable_at = segment_max_timestamp.saturating_add(rules.delete_retention_ms);
    if header.is_control() {
        return filter_marker(header, tombstone_removable_at, rules, removed);
    }
    if is_aborted(header, rules.aborted) {
        *removed += header.record_count.max(0) as u64;
        return (Kept::Nothing, None);
    }
    let (kept, due) = filter_records(header, bytes, tombstone_removable_at, rules, removed);
    if header.is_transactional() && !matches!(kept, Kept::Nothing) {
        rules.txn_kept.borrow_mut().insert(header.producer_id, true);
    }
    (kept, due)
}

/// A transaction marker goes as Kafka's cleaner removes it: once no batch of its transaction
/// is left before it (aborted records always go; committed ones when superseded) and the
/// segment holding it is older than `delete.retention.ms`, so a read_committed reader that
/// started within that time still sees the transaction end. Until then it stays.
fn filter_marker(
    header: &BatchHeader,
    removable_at: i64,
    rules: &Rules<'_>,
    removed: &mut u64,
) -> (Kept, Option<i64>) {
    let data_kept = rules
        .txn_kept
        .borrow_mut()
        .remove(&header.producer_id)
        .unwrap_or(false);
    if data_kept {
        return (Kept::Whole, None);
    }
    if rules.now >= removable_at {
        *removed += header.record_count.max(0) as u64;
        return (Kept::Nothing, None);
    }
    (Kept::Whole, Some(removable_at))
}

/// The records of a data batch that stay: not superseded in the key map, with a key, and not a
/// tombstone past `delete.retention.ms`.
fn filter_records(
    header: &BatchHeader,
    bytes: &[u8],
    tombstone_removable_at: i64,
    rules: &Rules<'_>,
    removed: &mut u64,
) -> (Kept, Option<i64>) {
    let Ok(body) = records::body(header, bytes) else {
        return (Kept::Whole, None);
    };
    let mut kept: Vec<RecordRef<'_>> = Vec::new();
    let mut count = 0usize;
    let mut due = None;
    for record in records::walk(&body) {
        let Ok(record) = record else {
            // Not walkable to the end: keep the batch as it is.
            return (Kept::Whole, None);
        };
        count += 1;
        let offset = header.base_offset + i64::from(record.offset_delta);
        let keep = if offset >= rules.end {
            true
        } else {
            match record.key {
                // Kafka's cleaner drops records without a key.
                None => false,
                Some(key) if rules.map.get(key).is_some_and(|last| last > offset) => false,
                Some(_) if !record.has_value => {
                    if rules.now >= tombstone_removable_at {
                        false
                    } else {
                        due = Some(tombstone_removable_at);
                        true
                    }
                }
                Some(_) => true,
            }
        };
        if keep {
            kept.push(record);
        }
    }
    *removed += (count - kept.len()) as u64;
    if kept.len() == count {
        return (Kept::Whole, due);
    }
    if kept.is_empty() {
        return (Kept::Nothing, None);
    }
    match records::rebuild(header, bytes, &kept) {
        Ok(rebuilt) => (Kept::Part(rebuilt), due),
        Err(_) => (Kept::Whole, None),
    }
}

/// Consecutive sealed segments cleaned into one.
#[derive(Clone, Copy)]
struct Group<'a> {
    segments: &'a [&'a SealedSegment],
    /// Nothing but the active segment follows.
    last_before_active: bool,
}

/// Writes the cleaned copy of one group of segments next to them (`.cleaned` files, synced),
/// ready for `swap`. Returns when a tombstone it kept becomes removable.
async fn clean_group(
    dir: &Path,
    target: &Group<'_>,
    rules: &Rules<'_>,
    config: &LogConfig,
    throttle: &mut Throttle,
    stats: &mut Stats,
) -> io::Result<Option<i64>> {
    let Group {
        segments: group,
        last_before_active,
    } = *target;
    let base = group[0].info.base_offset;
    let log_path = cleaned_path(dir, base, "log");
    let file = glommio::io::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .dma_open(&log_path)
        .await
        .map_err(|e| with_path(e.into(), &log_path))?;
    let mut writer = DmaStreamWriterBuilder::new(file)
        .with_buffer_size(128 << 10)
        .build();
    let window = CLEANER_STEP_BYTES as u32;
    let mut index = SegmentIndex::new();
    let mut position: u32 = 0;
    let mut max_timestamp: i64 = -1;
    let mut last_offset: Option<i64> = None;
    let mut due: Option<i64> = None;
    let mut txn_index: Vec<u8> = Vec::new();
    // The last batch when it was removed: its offsets are kept by an empty batch when nothing
    // follows it before the active segment.
    let mut dropped_last: Option<Vec<u8>> = None;
    for s in group {
        stats.segments_before += 1;
        stats.bytes_before += u64::from(s.info.size);
        if let Some(bytes) =
            blocking::read_if_exists(&dir.join(txn_index::file_name(s.info.base_offset))).await
        {
            txn_index.extend_from_slice(&bytes);
        }
        let mut from = 0u32;
        loop {
            let mut out: Vec<u8> = Vec::new();
            let scanned = segment::scan(
                &s.file,
                from,
                s.info.size,
                false,
                window,
                |_, header, bytes| {
                    if out.len() >= window as usize {
                        return Scan::Stop;
                    }
                    let (kept, tombstone_due) = filter_batch(
                        header,
                        bytes,
                        s.info.max_timestamp,
                        rules,
                        &mut stats.records_removed,
                    );
                    if let Some(at) = tombstone_due {
                        due = Some(due.map_or(at, |d: i64| d.min(at)));
                    }
                    let kept: &[u8] = match &kept {
                        Kept::Whole => bytes,
                        Kept::Part(rebuilt) => rebuilt,
                        Kept::Nothing => {
                            dropped_last = records::empty_batch(bytes);
                            return Scan::Continue;
                        }
                    };
                    dropped_last = None;
                    let Some(h) = BatchHeader::parse(kept) else {
                        return Scan::Continue;
                    };
                    let rel = u32::try_from(h.base_offset - base).unwrap_or(u32::MAX);
                    max_timestamp = max_timestamp.max(h.max_timestamp);
                    index.on_append(
                        rel,
                        position + out.len() as u32,
                        max_timestamp,
                        config.index_interval_bytes,
                    );
                    last_offset = Some(h.last_offset());
                    out.extend_from_slice(kept);
                    Scan::Continue
                },
            )
            .await
            .map_err(|e| with_path(e, &segment_path(dir, s.info.base_offset)))?;
            writer
                .write_all(&out)
                .await
                .map_err(|e| with_path(e, &log_path))?;
            position += out.len() as u32;
            throttle
                .account((scanned.position - from) as usize + out.len())
                .await;
            glommio::yield_if_needed().await;
            if scanned.position >= s.info.size || scanned.torn || scanned.position == from {
                if scanned.position < s.info.size {
                    tracing::warn!(segment = %segment_path(dir, s.info.base_offset).display(), position = scanned.position, "the cleaner found unreadable bytes in a sealed segment; they are left out");
                }
                break;
            }
            from = scanned.position;
        }
    }
    if let Some(empty) = dropped_last.filter(|_| last_before_active) {
        if let Some(h) = BatchHeader::parse(&empty) {
            let rel = u32::try_from(h.base_offset - base).unwrap_or(u32::MAX);
            max_timestamp = max_timestamp.max(h.max_timestamp);
            index.on_append(rel, position, max_timestamp, config.index_interval_bytes);
            last_offset = Some(h.last_offset());
            writer
                .write_all(&empty)
                .await
                .map_err(|e| with_path(e, &log_path))?;
            position += empty.len() as u32;
        }
    }
    writer.close().await.map_err(|e| with_path(e, &log_path))?;
    blocking::sync_file(&log_path).await?;
    if let Some(last) = last_offset {
        index.seal_time(max_timestamp, u32::try_from(last - base).unwrap_or(0));
    }
    segment::write_file_synced(&cleaned_path(dir, base, "index"), &index.encode_offsets()).await?;
    segment::write_file_synced(&cleaned_path(dir, base, "timeindex"), &index.encode_times())
        .await?;
    if !txn_index.is_empty() {
        segment::write_file_synced(&cleaned_path(dir, base, "txnindex"), &txn_index).await?;
    }
    stats.segments_after += 1;
    stats.bytes_after += u64::from(position);
    Ok(due)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch;
    use crate::log::partition::Isolation;
    use bytes::Bytes;
    use kafka_protocol::records::Compression;
    use std::collections::BTreeMap;

    use crate::log::swap::SEGMENT_EXTENSIONS;
    use crate::log::test_support::{open_log as open, run};

    fn compacted(segment_bytes: u32) -> LogConfig {
        LogConfig {
            index_interval_bytes: 256,
            compaction: Compaction {
                compact: true,
                delete_retention_ms: 60_000,
                min_cleanable_ratio: 0.5,
                ..Compaction::OFF
            },
            ..LogConfig::plain(segment_bytes, 64 << 10)
        }
    }

    /// Appends one batch of `(key, value)` records (value `None`: a tombstone) at time `ts`.
    async fn put(
        log: &PartitionLog,
        records: &[(String, Option<String>)],
        ts: i64,
        c: Compression,
    ) {
        let b = batch::encode_batch(
            records
                .iter()
                .map(|(k, v)| (Some(Bytes::from(k.clone())), v.clone().map(Bytes::from), ts)),
            c,
        );
        let headers = batch::validate_produce(&b, 1 << 20).expect("valid");
        log.append(Bytes::from(b), headers).await.expect("append");
    }

    /// Every data record from the log start: (offset, key, value). Reads go on after each
    /// batch's last offset, as clients do (empty batches and markers included).
    async fn read_all(log: &PartitionLog) -> Vec<(i64, String, Option<String>)> {
        let mut out = Vec::new();
        let mut offset = log.log_start_offset();
        while offset < log.high_watermark() {
            let mut buf = log
                .read(offset, 1 << 20, Isolation::ReadUncommitted)
                .await
                .expect("read")
                .records
                .to_bytes()
                .expect("records");
            if buf.is_empty() {
                break;
            }
            let mut next = offset;
            while !buf.is_empty() {
                let header = BatchHeader::parse(&buf).expect("a batch");
                next = next.max(header.last_offset() + 1);
                let set =
                    kafka_protocol::records::RecordBatchDecoder::decode(&mut buf).expect("decodes");
                for r in set
                    .records
                    .into_iter()
                    .filter(|r| r.offset >= offset && !r.control)
                {
                    let s = |b: Option<Bytes>| b.map(|b| String::from_utf8_lossy(&b).into_owned());
                    out.push((r.offset, s(r.key).unwrap_or_default(), s(r.value)));
                }
            }
            offset = next;
        }
        out
    }

    /// The latest record of each key, as a compacted log should read back.
    fn latest(
        records: &[(i64, String, Option<String>)],
    ) -> BTreeMap<String, (i64, Option<String>)> {
        records
            .iter()
            .map(|(o, k, v)| (k.clone(), (*o, v.clone())))
            .collect()
    }

    /// 20 keys x 40 versions in batches of 10 (mixed codecs) over many small segments, and
    /// tombstones for 5 keys: cleaning keeps each key's latest record at its offset, keeps the
    /// tombstones until `delete.retention.ms` has passed, then drops them; reopening reads the
    /// same.
    #[test]
    fn cleaning_keeps_each_keys_latest_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        run(move || async move {
            let log = open(&path, compacted(1024)).await;
            let codecs = [
                Compression::None,
                Compression::Gzip,
                Compression::Snappy,
                Compression::Lz4,
                Compression::Zstd,
            ];
            for version in 0..40 {
                for half in 0..2 {
                    let records: Vec<_> = (0..10)
                        .map(|k| {
                            (
                                format!("key-{}", half * 10 + k),
                                Some(format!("v{version}")),
                            )
                        })
                        .collect();
                    put(
                        &log,
                        &records,
                        1_000 + version,
                        codecs[version as usize % 5],
                    )
                    .await;
                }
            }
            let tombstones: Vec<_> = (0..5).map(|k| (format!("key-{k}"), None)).collect();
            put(&log, &tombstones, 2_000, Compression::None).await;
            // One more record rolls the tombstones out of the active segment.
            log.roll_if_old(i64::MAX);
            put(
                &log,
                &[("key-19".into(), Some("v40".into()))],
                2_001,
                Compression::None,
            )
            .await;
            let before = read_all(&log).await;
            let expected = latest(&before);
            let segments_before = log.sealed_view().segments.len();
            assert!(segments_before > 10, "{segments_before} segments");

            let mut cleaner = Cleaner::new(1 << 20, f64::MAX);
            let now = 2_500; // tombstones younger than delete.retention.ms
            let stats = cleaner.clean(&log, now).await.expect("clean").expect("due");
            assert!(stats.records_removed > 700, "{stats:?}");
            let after = read_all(&log).await;
            assert_eq!(latest(&after), expected);
            // Below the active segment one record per key stays, tombstones included (key-19's
            // newest is in the active segment, which is not mapped).
            let active_base = log.sealed_view().active_base;
            let sealed: Vec<_> = after.iter().filter(|r| r.0 < active_base).collect();
            assert_eq!(sealed.len(), 20, "{sealed:?}");
            assert_eq!(
                cleaner.clean(&log, now).await.expect("clean"),
                None,
                "nothing due"
            );

            // Past delete.retention.ms the tombstones go.
            let later = 2_000 + 60_001;
            assert!(log.tombstones_due_at().is_some_and(|at| at <= later));
            cleaner
                .clean(&log, later)
                .await
                .expect("clean")
                .expect("tombstones due");
            let after = read_all(&log).await;
            let live: Vec<_> = after.iter().filter(|r| r.2.is_some()).collect();
            assert_eq!(live.len(), after.len(), "no tombstone left: {after:?}");
            assert_eq!(latest(&after).len(), 15);
            // Groups are sized by the segments' sizes before cleaning (as Kafka's): the second
            // cleaning merges what the first left small.
            let segments_after = log.sealed_view().segments.len();
            assert!(segments_after <= 2, "{segments_after} of {segments_before}");
            for (k, (o, v)) in latest(&after) {
                assert_eq!(expected[&k], (o, v), "{k}");
            }
            log.close().await.expect("close");
            let reopened = open(&path, compacted(1024)).await;
            assert_eq!(read_all(&reopened).await, after);
            reopened.close().await.expect("close");
        });
    }

    /// Transactions are cleaned as Kafka's cleaner does: an aborted transaction's records go
    /// and, past `delete.retention.ms`, its marker with them; a committed transaction's marker
    /// stays while any of its records does, and goes once they are all superseded.
    #[test]
    fn transactions_are_cleaned_as_kafka_does() {
        use crate::log::partition::{Marker, Origin};
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        run(move || async move {
            let config = LogConfig {
                segment_ms: 1,
                ..compacted(1 << 20)
            };
            let log = open(&path, config).await;
            let txn = |pid: i64, keys: &[&str], value: &str| {
                let b = batch::try_encode_batch_as(
                    keys.iter().map(|k| {
                        (
                            Some(Bytes::from(k.to_string())),
                            Some(Bytes::from(value.to_string())),
                            1_000,
                        )
                    }),
                    Compression::None,
                    Some((pid, 0)),
                )
                .expect("encode");
                let headers = batch::validate_produce(&b, 1 << 20).expect("valid");
                log.enqueue(Bytes::from(b), headers, Origin::Broker, 0)
                    .expect("queued")
            };
            let end = |pid: i64, commit: bool| {
                log.enqueue_marker(Marker {
                    producer_id: pid,
                    producer_epoch: 0,
                    coordinator_epoch: 0,
                    commit,
                })
                .expect("queued")
            };
            txn(7, &["a", "b"], "aborted").await.expect("w").expect("w");
            end(7, false).await.expect("w").expect("w");
            txn(8, &["c", "d"], "committed")
                .await
                .expect("w")
                .expect("w");
            end(8, true).await.expect("w").expect("w");
            txn(9, &["e"], "committed").await.expect("w").expect("w");
            end(9, true).await.expect("w").expect("w");
            put(
                &log,
                &[("e".into(), Some("later".into()))],
                1_000,
                Compression::None,
            )
            .await;
            log.roll_if_old(crate::util::now_ms());
            put(
                &log,
                &[("z".into(), Some("last".into()))],
                1_000,
                Compression::None,
            )
            .await;
            let markers = |log: std::rc::Rc<PartitionLog>| async move {
                let mut pids = Vec::new();
                let mut offset = log.log_start_offset();
                let records = log
                    .read(offset, 1 << 20, Isolation::ReadUncommitted)
                    .await
                    .expect("read")
                    .records
                    .to_bytes()
                    .expect("records");
                let mut rest = &records[..];
                while let Some(h) = BatchHeader::parse(rest) {
                    if h.is_control() && h.record_count > 0 {
                        pids.push(h.producer_id);
                    }
                    offset = h.last_offset() + 1;
                    rest = &rest[h.total_bytes as usize..];
                }
                let _ = offset;
                pids
            };
            assert_eq!(markers(log.clone()).await, vec![7, 8, 9]);
            // Within delete.retention.ms: the aborted records go, the markers stay.
            Cleaner::new(1 << 20, f64::MAX)
                .clean(&log, 1_500)
                .await
                .expect("clean")
                .expect("due");
            assert_eq!(markers(log.clone()).await, vec![7, 8, 9]);
            let values: Vec<_> = read_all(&log)
                .await
                .into_iter()
                .map(|r| (r.1, r.2))
                .collect();
            assert!(
                !values.iter().any(|(_, v)| v.as_deref() == Some("aborted")),
                "{values:?}"
            );
            // Past it: the markers of transactions with nothing left go; 8's stays.
            // (Markers carry the broker's clock, so the horizon is from now.)
            let later = crate::util::now_ms() + 60_001;
            Cleaner::new(1 << 20, f64::MAX)
                .clean(&log, later)
                .await
                .expect("clean")
                .expect("due");
            assert_eq!(markers(log.clone()).await, vec![8]);
            let table = latest(&read_all(&log).await);
            let kept: Vec<(&str, Option<&str>)> = table
                .iter()
                .map(|(k, (_, v))| (k.as_str(), v.as_deref()))
                .collect();
            assert_eq!(
                kept,
                vec![
                    ("c", Some("committed")),
                    ("d", Some("committed")),
                    ("e", Some("later")),
                    ("z", Some("last")),
                ]
            );
            log.close().await.expect("close");
        });
    }

    /// A kill -9 at any point of a swap leaves the old segments or the new one: files as the
    /// cleaner leaves them at each step are put together from a log before and after
    /// cleaning, and each opens to exactly one of the two.
    #[test]
    fn an_interrupted_swap_opens_to_old_or_new() {
        let root = tempfile::tempdir().expect("tempdir");
        let root_path = root.path().to_path_buf();
        run(move || async move {
            let live = root_path.join("live");
            std::fs::create_dir_all(&live).expect("mkdir");
            let log = open(&live, compacted(1024)).await;
            for version in 0..30 {
                let records: Vec<_> = (0..8)
                    .map(|k| (format!("k{k}"), Some(format!("v{version}"))))
                    .collect();
                put(&log, &records, 1_000 + version, Compression::Gzip).await;
            }
            log.close().await.expect("close");
            let part = |root: &Path| root.join("t-0");
            let old_dir = root_path.join("old");
            copy_dir(&part(&live), &part(&old_dir));
            let log = open(&live, compacted(1024)).await;
            let old_records = read_all(&log).await;
            // One group: every sealed segment fits in one cleaned segment.
            log.set_config(LogConfig {
                segment_bytes: 1 << 20,
                ..compacted(1024)
            });
            let end = log.sealed_view().active_base;
            Cleaner::new(1 << 20, f64::MAX)
                .clean(&log, 5_000)
                .await
                .expect("clean")
                .expect("due");
            let new_records = read_all(&log).await;
            log.close().await.expect("close");
            assert_ne!(old_records, new_records);
            let new_dir = part(&live);
            let base = 0i64;
            // The cleaned files as they were before the swap.
            let stage = |name: &str, with_marker: bool, finished: &[&str]| {
                let d = root_path.join(name);
                copy_dir(&part(&old_dir), &part(&d));
                for ext in SEGMENT_EXTENSIONS {
                    let src = new_dir.join(format!("{base:020}.{ext}"));
                    if src.exists() && !finished.contains(&ext) {
                        std::fs::copy(&src, part(&d).join(format!("{base:020}.{ext}.cleaned")))
                            .expect("copy");
                    } else if src.exists() {
                        std::fs::copy(&src, part(&d).join(format!("{base:020}.{ext}")))
                            .expect("copy");
                    }
                }
                if with_marker {
                    std::fs::write(
                        part(&d).join(format!("{base:020}.swap")),
                        checkpoint::encode(end),
                    )
                    .expect("marker");
                }
                d
            };
            let uncommitted = stage("uncommitted", false, &[]);
            let committed = stage("committed", true, &[]);
            let halfway = stage("halfway", true, &["index", "timeindex"]);
            // Committed, and the other old segments already removed.
            let removed = stage("removed", true, &[]);
            for name in std::fs::read_dir(part(&removed)).expect("dir").flatten() {
                let n = name.file_name().to_string_lossy().into_owned();
                if segment::parse_log_file_name(&n).is_some_and(|b| b > base && b < end) {
                    std::fs::remove_file(name.path()).expect("rm");
                }
            }
            for (dir, expected) in [
                (&uncommitted, &old_records),
                (&committed, &new_records),
                (&halfway, &new_records),
                (&removed, &new_records),
            ] {
                let log = open(dir, compacted(1024)).await;
                assert_eq!(&read_all(&log).await, expected, "{}", dir.display());
                log.close().await.expect("close");
                let leftovers: Vec<String> = std::fs::read_dir(part(dir))
                    .expect("dir")
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap"))
                    .collect();
                assert!(leftovers.is_empty(), "{leftovers:?}");
            }
        });
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for e in std::fs::read_dir(from).expect("dir").flatten() {
            std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
        }
    }

    fn info(base: i64, next: i64, size: u32, max_ts: i64) -> SegmentInfo {
        SegmentInfo {
            base_offset: base,
            next_offset: next,
            size,
            max_timestamp: max_ts,
            first_timestamp: Some(max_ts),
        }
    }

    /// Kafka's rules for when a log is cleaned and how far.
    #[test]
    fn plan_follows_kafkas_rules() {
        let segs = [
            info(0, 100, 1000, 10),
            info(100, 200, 1000, 20),
            info(200, 300, 1000, 30),
        ];
        let bounds = Bounds {
            active_base: 300,
            log_start: 0,
            stable: 300,
        };
        let c = Compaction {
            compact: true,
            ..Compaction::OFF
        };
        // Never cleaned: all dirty.
        assert_eq!(
            plan(&segs, bounds, None, 100, &c, false),
            Some(Plan {
                first_dirty: 0,
                end: 300
            })
        );
        // Two thirds clean: ratio 1/3 < 0.5.
        assert_eq!(plan(&segs, bounds, Some(200), 100, &c, false), None);
        let eager = Compaction {
            min_cleanable_ratio: 0.3,
            ..c
        };
        assert_eq!(
            plan(&segs, bounds, Some(200), 100, &eager, false),
            Some(Plan {
                first_dirty: 200,
                end: 300
            })
        );
        // An open transaction at 150 stops the cleaning there.
        let open_txn = Bounds {
            stable: 150,
            ..bounds
        };
        assert_eq!(
            plan(&segs, open_txn, None, 100, &c, false),
            Some(Plan {
                first_dirty: 0,
                end: 150
            })
        );
        // min.compaction.lag.ms: segments with records newer than now - lag are not cleaned.
        let lag = Compaction {
            min_lag_ms: 75,
            ..c
        };
        assert_eq!(
            plan(&segs, bounds, None, 100, &lag, false),
            Some(Plan {
                first_dirty: 0,
                end: 200
            })
        );
        // max.compaction.lag.ms: overdue dirty records are cleaned whatever the ratio.
        let max_lag = Compaction {
            max_lag_ms: 50,
            ..c
        };
        assert_eq!(
            plan(&segs, bounds, Some(200), 100, &max_lag, false),
            Some(Plan {
                first_dirty: 200,
                end: 300
            })
        );
        // Kept tombstones due: cleaned again with nothing dirty.
        assert_eq!(
            plan(&segs, bounds, Some(300), 100, &c, true),
            Some(Plan {
                first_dirty: 300,
                end: 300
            })
        );
        // Not compacted, or nothing sealed: never.
        assert_eq!(plan(&segs, bounds, None, 100, &Compaction::OFF, true), None);
        assert_eq!(plan(&[], bounds, None, 100, &c, true), None);
    }

    /// A full key map stops the mapping where it filled: what was mapped is cleaned, the
    /// rest kept, and the next cleaning goes on from there.
    #[test]
    fn a_full_key_map_cleans_in_steps() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        run(move || async move {
            let log = open(&path, compacted(1024)).await;
            for version in 0..20 {
                let records: Vec<_> = (0..50)
                    .map(|k| (format!("key-{k}"), Some(format!("v{version}"))))
                    .collect();
                put(&log, &records, 1_000 + version, Compression::None).await;
            }
            log.roll_if_old(i64::MAX);
            put(
                &log,
                &[("key-0".into(), Some("v20".into()))],
                2_000,
                Compression::None,
            )
            .await;
            let expected = latest(&read_all(&log).await);
            // Room for 20 keys of the 50.
            let mut cleaner =
                Cleaner::new(20 * MAP_ENTRY_BYTES * 10 / 9 + MAP_ENTRY_BYTES, f64::MAX);
            let mut steps = 0;
            while let Some(stats) = cleaner.clean(&log, 5_000).await.expect("clean") {
                steps += 1;
                assert_eq!(latest(&read_all(&log).await), expected);
                assert!(steps < 50, "{stats:?}");
            }
            assert!(steps > 1, "{steps} steps");
            let active_base = log.sealed_view().active_base;
            let sealed = read_all(&log)
                .await
                .into_iter()
                .filter(|r| r.0 < active_base)
                .count();
            assert!(
                sealed <= 50 + 20,
                "{sealed} records left below the active segment"
            );
            log.close().await.expect("close");
        });
    }
}
