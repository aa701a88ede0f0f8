//! One segment of a partition's log: a file of RecordBatch v2 bytes named by its base offset,
//! written with O_DIRECT through glommio, and its index.
//!
//! # On disk
//! `<base offset, 20 digits>.log` holds batches back to back, exactly as fetched by clients.
//! Writes go in whole aligned blocks: the partly filled last block is kept in memory (`tail`)
//! and rewritten with each append. Zeros are written ahead of the data in steps that grow with
//! the segment (`ZeroAhead`), so the active segment's file ends in zeros past the last batch
//! (padding, then zeros ahead) until it is rolled or closed, when it is truncated to its
//! logical size. Recovery stops at the first batch whose length or CRC does not check, which
//! the zeros never pass.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use glommio::io::DmaFile;

use super::batch::{self, BatchHeader, BATCH_HEADER_BYTES, BATCH_LENGTH_PREFIX_BYTES};
use super::index::SegmentIndex;
use crate::util::blocking;
pub use crate::util::blocking::with_path;

/// Zeros are written ahead of the writes (see `ZeroAhead`), so the file system does not
/// allocate block by block as the segment grows and the writes overwrite written blocks: up to the next power of two of the segment's size, from
/// `PREALLOCATE_MIN_BYTES`, then in steps of `PREALLOCATE_STEP_BYTES` (see
/// `preallocation_target`). A segment thus holds at most as much reserved past its data as it
/// holds data (and at least the minimum), never a whole step: with a full step reserved for
/// every partition written once, 10,000 partitions holding 1.3 GB of data reserved 40 GB of
/// disk (bench.sh's partitions-10000), and at 16 MiB steps a 1,000-partition benchmark filled
/// the disk with reservations.
pub const PREALLOCATE_STEP_BYTES: u64 = 4 << 20;
/// The first step of zeros of a segment: a few writes of the usual 16 KiB batches.
pub const PREALLOCATE_MIN_BYTES: u64 = 64 << 10;
const _: () =
    assert!(PREALLOCATE_MIN_BYTES.is_power_of_two() && PREALLOCATE_STEP_BYTES.is_power_of_two());
const _: () = assert!(PREALLOCATE_MIN_BYTES <= PREALLOCATE_STEP_BYTES);

/// How far to write zeros ahead once its data ends at `end_bytes`: the next power of
/// two at or above it (at least `PREALLOCATE_MIN_BYTES`), or past `PREALLOCATE_STEP_BYTES` the
/// next multiple of the step. What is reserved past the data is thus under the data's own size
/// (and under one step), while the number of reservations stays logarithmic then one per step.
pub fn preallocation_target(end_bytes: u64) -> u64 {
    let step = end_bytes
        .next_power_of_two()
        .clamp(PREALLOCATE_MIN_BYTES, PREALLOCATE_STEP_BYTES);
    end_bytes.div_ceil(step).max(1) * step
}

/// Settles, once per shard and before any segment is opened, whether glommio may use its poll
/// ring (IOPOLL) for the data directory's device. glommio decides on the first file it opens
/// on a device by reading its first block; on an empty file that read succeeds without
/// touching the device, so glommio wrongly enables IOPOLL and every later read fails with
/// EOPNOTSUPP on devices without poll queues. Opening a file with a real first block first
/// makes the probe honest.
pub async fn probe_device(data_dir: &Path, shard: usize) -> io::Result<()> {
    let path = data_dir.join(format!(".iopoll-probe-{shard}"));
    blocking::write(&path, vec![0u8; 4096]).await?;
    let opened = glommio::io::OpenOptions::new()
        .read(true)
        .dma_open(&path)
        .await;
    blocking::remove_file(&path).await;
    let file = opened.map_err(|e| with_path(e.into(), &path))?;
    file.close().await.map_err(|e| with_path(e.into(), &path))?;
    Ok(())
}

pub fn log_file_name(base_offset: i64) -> String {
    format!("{base_offset:020}.log")
}

pub fn parse_log_file_name(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".log")?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

pub struct Segment {
    pub base_offset: i64,
    pub path: PathBuf,
    pub file: Rc<DmaFile>,
    /// Bytes of complete batches in the file; everything a reader may see.
    pub size: u32,
    /// One past the last offset stored here (the base offset when empty).
    pub next_offset: i64,
    pub max_timestamp: i64,
    pub index: SegmentIndex,
    /// When this segment was created or opened (wall clock, ms): its age for rolling while it
    /// has no timestamped batch.
    pub created_ms: i64,
    /// Taken off the roll age for this segment (random below `segment.jitter.ms`), so
    /// partitions created together do not all roll at once.
    pub roll_jitter_ms: i64,
    /// The bytes of the last, partly filled block: `size % alignment` of them.
    tail: Vec<u8>,
    zeros: Rc<ZeroAhead>,
    /// The same file opened again without O_DIRECT, for reads through the page cache that are
    /// sent with `sendfile`; opened at the first such read.
    reader: RefCell<Option<Arc<std::fs::File>>>,
    /// Where the open's recovery scan began (its last index entry): everything before it was
    /// taken as it is. `None` for a segment created, not opened.
    pub recovery_scan_from: Option<u32>,
}

/// What a scan over stored batches found.
pub enum Scan {
    Continue,
    Stop,
}

pub struct ScanEnd {
    /// Where the first batch that was not accepted starts (or where the scan stopped).
    pub position: u32,
    /// True when the scan ended on a batch that failed its checks (or ran past the end).
    pub torn: bool,
}

impl Segment {
    pub async fn create(dir: &Path, base_offset: i64) -> io::Result<Segment> {
        let path = dir.join(log_file_name(base_offset));
        let file = glommio::io::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .dma_open(&path)
            .await
            .map_err(|e| with_path(e.into(), &path))?;
        Ok(Segment {
            base_offset,
            path,
            file: Rc::new(file),
            size: 0,
            next_offset: base_offset,
            max_timestamp: -1,
            index: SegmentIndex::new(),
            created_ms: crate::util::now_ms(),
            roll_jitter_ms: 0,
            tail: Vec::new(),
            zeros: ZeroAhead::new(0),
            reader: RefCell::new(None),
            recovery_scan_from: None,
        })
    }

    /// Opens an existing segment. `recover` scans from the last index entry and cuts the file at
    /// the first batch that fails its checks (the last segment of a partition); otherwise the
    /// segment was sealed at roll and is taken as it is.
    pub async fn open(
        path: &Path,
        base_offset: i64,
        recover: bool,
        interval_bytes: u32,
        window_bytes: u32,
    ) -> io::Result<Segment> {
        let file = glommio::io::OpenOptions::new()
            .read(true)
            .write(true)
            .dma_open(path)
            .await
            .map_err(|e| with_path(e.into(), path))?;
        let physical = file
            .file_size()
            .await
            .map_err(|e| with_path(e.into(), path))?;
        let physical = u32::try_from(physical).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: larger than 4 GiB", path.display()),
            )
        })?;
        let index_bytes = blocking::read_if_exists(&path.with_extension("index"))
            .await
            .unwrap_or_default();
        let time_bytes = blocking::read_if_exists(&path.with_extension("timeindex"))
            .await
            .unwrap_or_default();
        let index = SegmentIndex::decode(&index_bytes, &time_bytes, physical);
        let mut seg = Segment {
            base_offset,
            path: path.to_path_buf(),
            file: Rc::new(file),
            size: physical,
            next_offset: base_offset,
            max_timestamp: -1,
            index,
            created_ms: crate::util::now_ms(),
            roll_jitter_ms: 0,
            tail: Vec::new(),
            zeros: ZeroAhead::new(0),
            reader: RefCell::new(None),
            recovery_scan_from: None,
        };
        seg.recover(recover, interval_bytes, window_bytes).await?;
        Ok(seg)
    }

    /// The segment's file opened for reads through the page cache (see `walk_batches`). It is
    /// opened through `/proc/self/fd` of the segment's own descriptor, so it is the same file
    /// even when the cleaner has put another in its place under the same name. An open of a
    /// file already open: no disk access, so it is done in place.
    pub fn reader(&self) -> io::Result<Arc<std::fs::File>> {
        if let Some(r) = &*self.reader.borrow() {
            return Ok(r.clone());
        }
        let proc_path = format!("/proc/self/fd/{}", self.file.as_raw_fd());
        let file = std::fs::File::open(&proc_path).map_err(|e| with_path(e, &self.path))?;
        let file = Arc::new(file);
        *self.reader.borrow_mut() = Some(file.clone());
        Ok(file)
    }

    /// Rebuilds the in-memory state from the file: from the last index entry on (or from the
    /// start when the index is missing), checking every batch when `check` is set. An index
    /// entry whose batch does not check is stale and dropped, and the scan starts again from
    /// the entry before it.
    async fn recover(
        &mut self,
        check: bool,
        interval_bytes: u32,
        window_bytes: u32,
    ) -> io::Result<()> {
        let physical = self.size;
        loop {
            let entry = self.index.last().unwrap_or(super::index::OffsetEntry {
                relative_offset: 0,
                position: 0,
            });
            let mut index = self.index.clone();
            index.truncate_to_position(entry.position);
            let base = self.base_offset;
            let mut expected = base + i64::from(entry.relative_offset);
            let mut max_ts = index.max_timestamp();
            let mut batches = 0u64;
            let end = scan(
                &self.file,
                entry.position,
                physical,
                check,
                window_bytes,
                |pos, header, _| {
                    // The base offset is not covered by the CRC, so density is its check: in
                    // the segment being recovered (the active one, which compaction never
                    // rewrites) every batch starts right after the one before it. A sealed
                    // segment may have gaps where the cleaner removed batches; its offsets
                    // only grow.
                    let Ok(rel) = u32::try_from(header.base_offset - base) else {
                        return Scan::Stop;
                    };
                    let in_order = if check {
                        header.base_offset == expected
                    } else {
                        header.base_offset >= expected
                    };
                    if !in_order || header.last_offset() < header.base_offset {
                        return Scan::Stop;
                    }
                    max_ts = max_ts.max(header.max_timestamp);
                    index.on_append(rel, pos, max_ts, interval_bytes);
                    expected = header.last_offset() + 1;
                    batches += 1;
                    Scan::Continue
                },
            )
            .await?;
            if batches == 0 && entry.position > 0 {
                self.index.truncate_to_position(entry.position);
                continue;
            }
            if end.position < physical && !check {
                // A sealed segment is not cut: what follows is left unread.
                tracing::warn!(
                    segment = %self.path.display(),
                    valid_bytes = end.position,
                    file_bytes = physical,
                    "a sealed segment has bytes after its last readable batch; they are not served"
                );
            } else if end.position < physical {
                if check {
                    tracing::warn!(
                        segment = %self.path.display(),
                        valid_bytes = end.position,
                        file_bytes = physical,
                        "truncating the segment after its last valid batch"
                    );
                }
                self.file
                    .truncate(u64::from(end.position))
                    .await
                    .map_err(|e| with_path(e.into(), &self.path))?;
            }
            if check {
                tracing::debug!(segment = %self.path.display(), from = entry.position, to = end.position, "recovered the active segment");
            }
            self.recovery_scan_from = Some(entry.position);
            self.index = index;
            self.size = end.position;
            self.next_offset = expected;
            self.max_timestamp = max_ts;
            self.tail = read_tail(&self.file, self.size).await?;
            // Every block up to the data's is written; zeros go on from there.
            self.zeros = ZeroAhead::new(self.file.align_up(u64::from(self.size)));
            return Ok(());
        }
    }

    /// Plans the write of `len` new bytes after the segment's data: the aligned blocks to write,
    /// beginning with the partly filled last block. `fill` writes the new bytes (batches with
    /// their offsets) into the buffer. The caller awaits the write with no borrow of the segment
    /// held, then hands the result to `commit_write`. Planning changes nothing in the segment:
    /// a write that fails (a full disk) leaves it as it was, so the next append rewrites the
    /// same tail block from the same bytes.
    pub fn plan_write(&self, len: usize, fill: impl FnOnce(&mut [u8])) -> io::Result<PlannedWrite> {
        let start_block = self.file.align_down(u64::from(self.size));
        let new_size = u64::from(self.size) + len as u64;
        let new_size = u32::try_from(new_size).map_err(|_| {
            io::Error::other(format!(
                "{}: segment would exceed 4 GiB",
                self.path.display()
            ))
        })?;
        let end_block = self.file.align_up(u64::from(new_size));
        let mut buf = self
            .file
            .alloc_dma_buffer((end_block - start_block) as usize);
        let bytes = buf.as_bytes_mut();
        let tail_len = self.tail.len();
        debug_assert_eq!(tail_len as u64, u64::from(self.size) - start_block);
        bytes[..tail_len].copy_from_slice(&self.tail);
        fill(&mut bytes[tail_len..tail_len + len]);
        bytes[tail_len + len..].fill(0);
        let new_tail_start = (self.file.align_down(u64::from(new_size)) - start_block) as usize;
        let new_tail_end = (u64::from(new_size) - start_block) as usize;
        let new_tail = bytes[new_tail_start..new_tail_end].to_vec();
        let zeros = &self.zeros;
        let ahead_soon = zeros.wanted_after(end_block);
        let start_ahead = ahead_soon && !zeros.pending.get() && !zeros.stopped.get();
        if start_ahead {
            zeros.pending.set(true);
        }
        Ok(PlannedWrite {
            file: self.file.clone(),
            path: self.path.clone(),
            buf,
            position: start_block,
            old_size: self.size,
            new_size,
            new_tail,
            end_block,
            zeros: self.zeros.clone(),
            start_ahead,
        })
    }

    /// Whether this segment is old enough to roll (Kafka's `LogSegment.shouldRoll` by time):
    /// by record time when it holds a timestamped batch (`incoming_max_ts` minus its first
    /// batch's), else by the wall clock since it was created; never when empty.
    /// `first_pending_ts` is the first batch of a write not yet in the segment, if any.
    pub fn due_by_time(
        &self,
        segment_ms: i64,
        now_ms: i64,
        incoming_max_ts: i64,
        first_pending_ts: Option<i64>,
    ) -> bool {
        let empty = self.size == 0 && first_pending_ts.is_none();
        if empty {
            return false;
        }
        let waited = match self.index.first_timestamp().or(first_pending_ts) {
            Some(first) if first >= 0 && incoming_max_ts >= 0 => incoming_max_ts - first,
            _ => now_ms - self.created_ms,
        };
        waited > segment_ms.saturating_sub(self.roll_jitter_ms)
    }

    /// Records a write that completed: the segment's size, its new partly filled last block,
    /// and how far extents are reserved.
    pub fn commit_write(&mut self, written: Written) {
        assert!(
            Rc::ptr_eq(&self.file, &written.file),
            "a write is committed to the segment it was planned on"
        );
        assert!(written.new_size >= self.size, "a segment only grows");
        debug_assert_eq!(
            written.new_tail.len() as u64,
            u64::from(written.new_size) - self.file.align_down(u64::from(written.new_size))
        );
        self.size = written.new_size;
        self.tail = written.new_tail;
    }

    /// The index files as they stand, the segment still taking appends: a restart after a
    /// crash recovers from their last entry instead of scanning the whole segment.
    pub fn index_files(&self) -> IndexFiles {
        IndexFiles {
            path: self.path.clone(),
            offsets: self.index.encode_offsets(),
            times: self.index.encode_times(),
        }
    }

    /// The index and seal data of a segment taking no more appends.
    pub fn seal_plan(&mut self) -> SealPlan {
        let last_rel = u32::try_from(self.next_offset - 1 - self.base_offset).unwrap_or(0);
        if self.size > 0 {
            self.index.seal_time(self.max_timestamp, last_rel);
        }
        SealPlan {
            file: self.file.clone(),
            path: self.path.clone(),
            zeros: self.zeros.clone(),
            size: self.size,
            offsets: self.index.encode_offsets(),
            times: self.index.encode_times(),
        }
    }
}

/// A write prepared under a short borrow of the segment and carried out without one.
pub struct PlannedWrite {
    file: Rc<DmaFile>,
    path: PathBuf,
    buf: glommio::io::DmaBuffer,
    position: u64,
    /// The segment's size when planned: where the file is cut back to if the write fails.
    old_size: u32,
    new_size: u32,
    new_tail: Vec<u8>,
    /// Where the write's last block ends.
    end_block: u64,
    zeros: Rc<ZeroAhead>,
    /// Whether this write starts writing the next step of zeros, in the background.
    start_ahead: bool,
}

/// A write that completed, for `Segment::commit_write`.
pub struct Written {
    file: Rc<DmaFile>,
    new_size: u32,
    new_tail: Vec<u8>,
}

impl Written {
    /// The file written, for the group commit to sync.
    pub fn file(&self) -> &Rc<DmaFile> {
        &self.file
    }
}

impl PlannedWrite {
    /// What `execute` returns when the write completes, without writing: for a benchmark of
    /// the planning alone (`benches/append_buffer.rs`).
    pub fn skip_write(self) -> Written {
        if self.start_ahead {
            self.zeros.pending.set(false);
        }
        Written {
            file: self.file,
            new_size: self.new_size,
            new_tail: self.new_tail,
        }
    }
}

impl PlannedWrite {
    /// Writes the planned blocks. On failure the file is cut back to the segment's size, so
    /// that no part of a write that was refused (a full disk fails a direct write part way, or
    /// shortens it) is left past the data, where a restart's recovery could take it for
    /// batches; an error that is not `is_out_of_space` then means the cut failed too.
    pub async fn execute(self) -> io::Result<Written> {
        // Direct writes that overwrite written blocks inside the file's size are the only ones
        // ext4 does without blocking; io_uring hands any other (one that extends the file, or
        // lands on extents fallocate reserved, which stay unwritten until written, with or
        // without KEEP_SIZE) to an io-wq worker thread: measured, about one punt per write
        // either way. So the space ahead of the data is written with zeros, a step at a time,
        // in the background before the writes reach it (see `ZeroAhead`); a write that
        // overtakes them waits for a step under way and goes on punted.
        let zeros = self.zeros.clone();
        let overtaking = zeros.cover(self.end_block).await;
        let want = self.buf.len();
        #[cfg(test)]
        if let Some(fault) = fault::take_write() {
            let failed = fault.apply(&self.file, &self.buf, self.position).await;
            drop(overtaking);
            zeros.pending.set(zeros.pending.get() && !self.start_ahead);
            return Err(cut_back(&self.file, &self.path, self.old_size, failed, &zeros).await);
        }
        #[cfg(test)]
        fault::record(&self.path, || fault::Event::Write {
            pos: self.position,
            bytes: self.buf.as_bytes().to_vec(),
        });
        let failed = match self.file.write_at(self.buf, self.position).await {
            Ok(n) if n >= want => {
                zeros.written_to(self.end_block);
                drop(overtaking);
                if self.start_ahead {
                    glommio::spawn_local(zeros.clone().step(self.file.clone())).detach();
                }
                return Ok(Written {
                    file: self.file,
                    new_size: self.new_size,
                    new_tail: self.new_tail,
                });
            }
            // A short direct write to a regular file is how a file system that ran out of
            // blocks (or quota) part way through reports it.
            Ok(n) => io::Error::new(
                io::ErrorKind::StorageFull,
                format!(
                    "{}: short write ({n} of {want} bytes): no space left",
                    self.path.display()
                ),
            ),
            Err(e) => with_path(e.into(), &self.path),
        };
        // The cut takes the lock this write may hold; the step it was to start is not started.
        drop(overtaking);
        zeros.pending.set(zeros.pending.get() && !self.start_ahead);
        Err(cut_back(&self.file, &self.path, self.old_size, failed, &zeros).await)
    }
}

/// The zeros written ahead of one segment's data. Zeros are only ever written past the blocks
/// holding data (a crash between a zero write and a data write must not lose acknowledged
/// batches), never at the same time as a data write over the same blocks, and never after the
/// file was cut (a seal, or the cut-back of a failed write), so `lock` is held by each step and
/// by each cut.
pub struct ZeroAhead {
    /// Below this, every block has been written (data or zeros).
    frontier: Cell<u64>,
    lock: futures::lock::Mutex<()>,
    /// A background step is queued or running.
    pending: Cell<bool>,
    /// No more zeros: the segment was sealed, or a step failed (a full disk: the writes then
    /// allocate as they go, and are punted).
    stopped: Cell<bool>,
}

impl ZeroAhead {
    fn new(frontier: u64) -> Rc<ZeroAhead> {
        Rc::new(ZeroAhead {
            frontier: Cell::new(frontier),
            lock: futures::lock::Mutex::new(()),
            pending: Cell::new(false),
            stopped: Cell::new(false),
        })
    }

    /// Before a data write ending at `end_block`: when it goes past the frontier, waits for a
    /// step under way and returns the lock, to hold until the write is done, so no step writes
    /// zeros over it meanwhile. (That write extends the file, or lands on unwritten blocks,
    /// and is punted: the zeros did not keep up.)
    async fn cover(&self, end_block: u64) -> Option<futures::lock::MutexGuard<'_, ()>> {
        if end_block <= self.frontier.get() {
            return None;
        }
        Some(self.lock.lock().await)
    }

    /// Whether a data write ending at `end_block` should start the next step: the zeros
    /// left ahead of it are under half a step (`preallocation_target` doubles the zeros with
    /// the data up to `PREALLOCATE_STEP_BYTES`, then goes a step at a time), so the step is
    /// written before the writes reach it.
    fn wanted_after(&self, end_block: u64) -> bool {
        let frontier = self.frontier.get();
        let margin = (frontier / 2).clamp(PREALLOCATE_MIN_BYTES / 2, PREALLOCATE_STEP_BYTES / 2);
        end_block + margin > frontier
    }

    /// One step of zeros past the frontier, in the background, to `preallocation_target`: a
    /// partition with little data writes few zeros.
    async fn step(self: Rc<Self>, file: Rc<DmaFile>) {
        {
            let _cutting_or_zeroing = self.lock.lock().await;
            if !self.stopped.get() {
                let from = self.frontier.get();
                let to = preallocation_target(from + 1);
                let reached = write_zeros(&file, from, to).await;
                if reached < to {
                    self.stopped.set(true);
                }
                self.frontier.set(self.frontier.get().max(reached));
            }
        }
        self.pending.set(false);
    }

    /// After a data write up to `end_block`: those blocks are written.
    fn written_to(&self, end_block: u64) {
        self.frontier.set(self.frontier.get().max(end_block));
    }

    /// Cuts the file at `size` with no zero step under way, and stops (`seal`) or restarts the
    /// zeros from there.
    async fn cut(&self, file: &DmaFile, size: u64, seal: bool) -> std::io::Result<()> {
        let _cutting_or_zeroing = self.lock.lock().await;
        if seal {
            self.stopped.set(true);
        }
        let cut = file.truncate(size).await;
        self.frontier.set(file.align_up(size));
        cut.map_err(Into::into)
    }
}

/// `fallocate` mode (Linux 6.17) that allocates written, zeroed extents with the device's
/// write-zeroes command: the blocks count as written (so data writes over them are overwrites,
/// done inline) without the zeros crossing the bus. Not in the libc crate yet.
const FALLOC_FL_WRITE_ZEROES: libc::c_int = 0x80;

/// Whether `FALLOC_FL_WRITE_ZEROES` works for the data directory: 0 not tried, 1 yes, 2 no
/// (an older kernel, or a device without write-zeroes-unmap, like this project's test VM).
static WRITE_ZEROES: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Zeros `[from, to)` (aligned): with `FALLOC_FL_WRITE_ZEROES` where the kernel and device
/// support it, else by writing zeros in chunks. Returns how far it got (a failure stops it
/// quietly: zeros ahead are an optimisation).
async fn write_zeros(file: &DmaFile, from: u64, to: u64) -> u64 {
    use std::sync::atomic::Ordering::Relaxed;
    if WRITE_ZEROES.load(Relaxed) != 2 {
        let fd = file.as_raw_fd();
        let (offset, len) = (from as libc::off_t, (to - from) as libc::off_t);
        // The file stays open meanwhile: `file` is borrowed until this returns.
        let result = blocking::run(move || {
            // SAFETY: a plain syscall on a descriptor the caller keeps open.
            if unsafe { libc::fallocate(fd, FALLOC_FL_WRITE_ZEROES, offset, len) } == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        })
        .await;
        match result {
            Ok(()) => {
                WRITE_ZEROES.store(1, Relaxed);
                return to;
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EINVAL)) => {
                if WRITE_ZEROES.swap(2, Relaxed) == 0 {
                    tracing::debug!(error = %e, "FALLOC_FL_WRITE_ZEROES is not supported here: zeros ahead of segment data are written");
                }
            }
            Err(_) => return from,
        }
    }
    // Written from a static region of zeros on the blocking pool: a zero step extends the
    // file, which io_uring would hand to a worker thread anyway, and no buffer is filled.
    let fd = file.as_raw_fd();
    blocking::run(move || {
        let mut at = from;
        while at < to {
            let len = (to - at).min(ZEROS_BYTES as u64) as usize;
            // SAFETY: the static is aligned for O_DIRECT and lives forever; the descriptor is
            // kept open by the caller until this returns.
            let n = unsafe { libc::pwrite(fd, ZEROS.0.as_ptr().cast(), len, at as libc::off_t) };
            if n <= 0 {
                if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                break;
            }
            at += n as u64;
        }
        at
    })
    .await
}

/// Bytes of `ZEROS`.
const ZEROS_BYTES: usize = 1 << 20;

/// Zeros aligned for O_DIRECT writes (all-zero, so in .bss: no memory is touched to hold them).
#[repr(C, align(4096))]
struct AlignedZeros([u8; ZEROS_BYTES]);
static ZEROS: AlignedZeros = AlignedZeros([0; ZEROS_BYTES]);

/// Cuts a file whose write failed back to `size`, and returns the error to report: the write's,
/// or, when the cut fails too, one that is not `is_out_of_space` (the file may now hold part
/// of a refused write past its data, so the partition must go offline until recovery).
async fn cut_back(
    file: &DmaFile,
    path: &Path,
    size: u32,
    failed: io::Error,
    zeros: &ZeroAhead,
) -> io::Error {
    match zeros.cut(file, u64::from(size), false).await {
        Ok(()) => failed,
        Err(cut) => io::Error::other(format!(
            "{failed}; then cutting {} back to {size} bytes failed too: {cut}",
            path.display()
        )),
    }
}

pub struct SealPlan {
    file: Rc<DmaFile>,
    path: PathBuf,
    zeros: Rc<ZeroAhead>,
    size: u32,
    offsets: Vec<u8>,
    times: Vec<u8>,
}

impl SealPlan {
    /// Cuts the padding after the last batch, syncs, and writes both index files.
    pub async fn execute(self) -> io::Result<()> {
        self.zeros
            .cut(&self.file, u64::from(self.size), true)
            .await
            .map_err(|e| with_path(e, &self.path))?;
        self.file
            .fdatasync()
            .await
            .map_err(|e| with_path(e.into(), &self.path))?;
        write_index_files(&self.path, &self.offsets, &self.times).await
    }
}

/// Writes a segment's offset and time index files durably.
async fn write_index_files(path: &Path, offsets: &[u8], times: &[u8]) -> io::Result<()> {
    write_file_synced(&path.with_extension("index"), offsets).await?;
    write_file_synced(&path.with_extension("timeindex"), times).await
}

/// The index files of the active segment as they stand, for a recovery point.
pub struct IndexFiles {
    path: PathBuf,
    offsets: Vec<u8>,
    times: Vec<u8>,
}

impl IndexFiles {
    /// Replaces them, unsynced, after the data they point into was synced (see
    /// `PartitionLog::start_checkpoint`). A process crash keeps what was written; a power loss
    /// may leave old, torn or no files, and recovery copes with each: it takes the entries
    /// that are in order and inside the file, and when the last one does not start a valid
    /// batch it falls back to the one before, down to the segment's start. Every entry that
    /// was ever written points at synced data, so none can lead it past lost bytes.
    pub async fn write(self) -> io::Result<()> {
        write_file_replaced(&self.path.with_extension("index"), self.offsets).await?;
        write_file_replaced(&self.path.with_extension("timeindex"), self.times).await
    }
}

/// Replaces `path` with `bytes` (a temporary file renamed over it), not synced: for files a
/// restart checks and can do without (recovery points).
pub(super) async fn write_file_replaced(path: &Path, bytes: Vec<u8>) -> io::Result<()> {
    let (path, tmp) = (path.to_path_buf(), path.with_extension("tmp"));
    blocking::run(move || {
        let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, &path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.map_err(|e| with_path(e, &path))
    })
    .await
}

/// Reads the last partly filled block of a file of `size` bytes.
async fn read_tail(file: &DmaFile, size: u32) -> io::Result<Vec<u8>> {
    let start = file.align_down(u64::from(size));
    let len = (u64::from(size) - start) as usize;
    if len == 0 {
        return Ok(Vec::new());
    }
    let rr = file.read_at(start, len).await?;
    if rr.len() < len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "short read of the segment tail",
        ));
    }
    Ok(rr[..len].to_vec())
}

/// Replaces `path` with `bytes` durably (a temporary file, fdatasync, rename). On failure
/// (a full disk) the temporary file is removed, giving its space back, and `path` is as it was.
pub(super) async fn write_file_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    #[cfg(test)]
    if let Some(errno) = fault::take_synced() {
        return Err(with_path(io::Error::from_raw_os_error(errno), &tmp));
    }
    let result = write_tmp_synced(&tmp, bytes).await;
    if result.is_err() {
        blocking::remove_file(&tmp).await;
        return result;
    }
    blocking::rename(&tmp, path).await
}

async fn write_tmp_synced(tmp: &Path, bytes: &[u8]) -> io::Result<()> {
    let file = glommio::io::BufferedFile::create(tmp)
        .await
        .map_err(|e| with_path(e.into(), tmp))?;
    let written = file
        .write_at(bytes.to_vec(), 0)
        .await
        .map_err(|e| with_path(e.into(), tmp));
    let synced = match written {
        Ok(n) if n < bytes.len() => Err(io::Error::new(
            io::ErrorKind::StorageFull,
            format!("{}: short write: no space left", tmp.display()),
        )),
        Ok(_) => file.fdatasync().await.map_err(|e| with_path(e.into(), tmp)),
        Err(e) => Err(e),
    };
    let closed = file.close().await.map_err(|e| with_path(e.into(), tmp));
    synced.and(closed)
}

/// Walks the batches of `file` in `[from, end)`, handing each complete batch to `visit`.
/// With `check`, each batch's CRC is verified and a failing one ends the scan as torn.
/// `window_bytes` is how much one read takes (a batch larger than that is read on its own).
pub async fn scan<F>(
    file: &DmaFile,
    from: u32,
    end: u32,
    check: bool,
    window_bytes: u32,
    mut visit: F,
) -> io::Result<ScanEnd>
where
    F: FnMut(u32, &BatchHeader, &[u8]) -> Scan,
{
    let mut pos = from;
    while pos < end {
        let want = ((end - pos) as usize).min(window_bytes as usize);
        let window = file.read_at(u64::from(pos), want).await?;
        let mut at = 0usize;
        let mut progressed = false;
        while at + BATCH_LENGTH_PREFIX_BYTES <= window.len() {
            let rest = &window[at..];
            if rest.len() < BATCH_HEADER_BYTES
                && at > 0
                && pos as usize + at + BATCH_HEADER_BYTES <= end as usize
            {
                // The next header runs past this window: read on from it. (Taking it for a
                // torn tail made recovery cut acknowledged batches off.)
                break;
            }
            let Some(header) = BatchHeader::parse(rest) else {
                return Ok(ScanEnd {
                    position: pos + at as u32,
                    torn: rest.len() >= BATCH_HEADER_BYTES
                        || pos as usize + at + BATCH_HEADER_BYTES > end as usize,
                });
            };
            let total = header.total_bytes as usize;
            if u64::from(pos) + (at + total) as u64 > u64::from(end) {
                return Ok(ScanEnd {
                    position: pos + at as u32,
                    torn: true,
                });
            }
            if total > rest.len() {
                if at == 0 {
                    // A batch larger than the window: read it whole.
                    let whole = file.read_at(u64::from(pos), total).await?;
                    if whole.len() < total {
                        return Ok(ScanEnd {
                            position: pos,
                            torn: true,
                        });
                    }
                    if check && batch::check_stored_batch(&whole[..total]).is_none() {
                        return Ok(ScanEnd {
                            position: pos,
                            torn: true,
                        });
                    }
                    if let Scan::Stop = visit(pos, &header, &whole[..total]) {
                        return Ok(ScanEnd {
                            position: pos,
                            torn: false,
                        });
                    }
                    at = total;
                    progressed = true;
                }
                break;
            }
            let bytes = &rest[..total];
            if check && batch::check_stored_batch(bytes).is_none() {
                return Ok(ScanEnd {
                    position: pos + at as u32,
                    torn: true,
                });
            }
            if let Scan::Stop = visit(pos + at as u32, &header, bytes) {
                return Ok(ScanEnd {
                    position: pos + at as u32,
                    torn: false,
                });
            }
            at += total;
            progressed = true;
        }
        if !progressed {
            return Ok(ScanEnd {
                position: pos,
                torn: true,
            });
        }
        pos += at as u32;
    }
    Ok(ScanEnd {
        position: pos,
        torn: false,
    })
}

/// Test-only fault injection: the next segment writes (or small synced file writes) on this
/// thread fail as a full disk or a failing device would make them fail.
#[cfg(test)]
pub mod fault {
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::io;

    use glommio::io::DmaFile;

    /// How one write fails: `partial_bytes` of it reach the file first (rounded down to the
    /// alignment), then the write reports `errno`.
    #[derive(Debug, Clone, Copy)]
    pub struct WriteFault {
        pub partial_bytes: usize,
        pub errno: i32,
    }

    thread_local! {
        static WRITES: RefCell<VecDeque<WriteFault>> = const { RefCell::new(VecDeque::new()) };
        /// Per small synced file write (indexes, snapshots), in order: `Some(errno)` fails it.
        static SYNCED: RefCell<VecDeque<Option<i32>>> = const { RefCell::new(VecDeque::new()) };
    }

    /// Makes the next segment write on this thread fail with `fault`.
    pub fn fail_next_write(fault: WriteFault) {
        WRITES.with(|w| w.borrow_mut().push_back(fault));
    }

    /// Decides the next small synced file writes on this thread: each `Some(errno)` fails one,
    /// each `None` lets one through.
    pub fn script_synced_writes(script: &[Option<i32>]) {
        SYNCED.with(|s| s.borrow_mut().extend(script.iter().copied()));
    }

    /// What reached segment files while recording (`record_from_now`), in order: for the
    /// power-loss test, which rebuilds what a device could hold after losing power.
    #[derive(Debug, Clone)]
    pub enum Event {
        /// A direct write completed (recorded as it is issued; the test issues no failing one).
        Write { pos: u64, bytes: Vec<u8> },
        /// An fdatasync of the file completed; it covers the events recorded before it began
        /// (the first `covers` of the recording).
        Sync { covers: usize },
    }

    thread_local! {
        static RECORDED: RefCell<Option<Vec<(std::path::PathBuf, Event)>>> = const { RefCell::new(None) };
    }

    /// Starts recording segment writes and syncs on this thread.
    pub fn record_from_now() {
        RECORDED.with(|r| *r.borrow_mut() = Some(Vec::new()));
    }

    /// Stops recording and returns what was recorded.
    pub fn take_recorded() -> Vec<(std::path::PathBuf, Event)> {
        RECORDED.with(|r| r.borrow_mut().take().unwrap_or_default())
    }

    /// Events recorded so far (0 when not recording).
    pub fn recorded_len() -> usize {
        RECORDED.with(|r| r.borrow().as_ref().map_or(0, Vec::len))
    }

    /// Records `event()` for `path` when recording (the event is not built otherwise).
    pub fn record(path: &std::path::Path, event: impl FnOnce() -> Event) {
        RECORDED.with(|r| {
            if let Some(events) = r.borrow_mut().as_mut() {
                events.push((path.to_path_buf(), event()));
            }
        });
    }

    pub(super) fn take_write() -> Option<WriteFault> {
        WRITES.with(|w| w.borrow_mut().pop_front())
    }

    pub(super) fn take_synced() -> Option<i32> {
        SYNCED.with(|s| s.borrow_mut().pop_front()).flatten()
    }

    impl WriteFault {
        pub(super) async fn apply(
            &self,
            file: &DmaFile,
            buf: &glommio::io::DmaBuffer,
            position: u64,
        ) -> io::Error {
            let partial = file.align_down(self.partial_bytes.min(buf.len()) as u64) as usize;
            if partial > 0 {
                let mut part = file.alloc_dma_buffer(partial);
                part.as_bytes_mut()
                    .copy_from_slice(&buf.as_bytes()[..partial]);
                if let Err(e) = file.write_at(part, position).await {
                    return e.into();
                }
            }
            io::Error::from_raw_os_error(self.errno)
        }
    }
}

/// What `walk_batches` chose: one run of whole batches of the file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Walk {
    /// Where the run starts in the file (meaningful when `ends` is not empty).
    pub start: u32,
    /// The end of each batch of the run, from `start`.
    pub ends: Vec<u32>,
    /// The last offset of the last batch taken.
    pub last_offset: Option<i64>,
    /// It stopped at `limit` or for lack of room, not at the end of the file.
    pub full: bool,
}

/// Bytes a read of batch headers takes after a small batch: many headers in one read.
const WALK_WINDOW_BYTES: usize = 64 * 1024;
/// How many reads' worth of the file a walk asks the kernel to read ahead: this one and the
/// next.
const WALK_PREFETCH_FETCHES: usize = 2;
/// A batch at least this large is followed by a read of just the next header: copying its
/// bytes to find where the next one starts would cost more than the system call saved.
const WALK_LARGE_BATCH_BYTES: usize = 4096;

/// Which whole batches of `file` in `[from, end)` a read sends, reading their headers
/// (through the page cache: a blocking call, for the blocking pool): the batches from the one
/// holding `covered`, before `limit`, while they fit in `room` bytes, except that the first
/// batch of a read (`first`) is taken whole however large. A batch that does not parse or
/// runs past `end` ends the walk. After a large batch only the next header is read, so the
/// walk reads little more than the headers of large batches.
pub fn walk_batches(
    file: &std::fs::File,
    from: u32,
    end: u32,
    covered: i64,
    limit: i64,
    room: usize,
    first: bool,
) -> io::Result<Walk> {
    // Ask the kernel to read the whole range the walk may take (and sendfile then sends) at
    // once, and as much again after it: the device gets a few large reads in flight, not
    // readahead behind each header, and a consumer reading on finds its next fetch read while
    // it takes in this one. Advice only: its failure changes nothing.
    let span = (u64::from(end) - u64::from(from)).min(
        room.max(BATCH_HEADER_BYTES)
            .saturating_mul(WALK_PREFETCH_FETCHES) as u64,
    );
    // SAFETY: a plain system call on an open descriptor.
    unsafe {
        libc::posix_fadvise(
            std::os::fd::AsRawFd::as_raw_fd(file),
            libc::off_t::from(from),
            span as libc::off_t,
            libc::POSIX_FADV_WILLNEED,
        );
    }
    let mut walk = Walk::default();
    let mut window = vec![0u8; WALK_WINDOW_BYTES];
    let (mut window_pos, mut window_len) = (0u64, 0usize);
    let mut pos = u64::from(from);
    let mut taken = 0usize;
    let mut last_total = 0usize;
    while pos + BATCH_HEADER_BYTES as u64 <= u64::from(end) {
        if pos < window_pos || pos + BATCH_HEADER_BYTES as u64 > window_pos + window_len as u64 {
            let step = if last_total >= WALK_LARGE_BATCH_BYTES {
                BATCH_HEADER_BYTES
            } else {
                WALK_WINDOW_BYTES
            };
            let want = (u64::from(end) - pos).min(step as u64) as usize;
            window_len = read_full_at(file, &mut window[..want], pos)?;
            window_pos = pos;
            if window_len < BATCH_HEADER_BYTES {
                break;
            }
        }
        let at = (pos - window_pos) as usize;
        let Some(header) = BatchHeader::parse(&window[at..window_len]) else {
            break;
        };
        let total = header.total_bytes as usize;
        if pos + total as u64 > u64::from(end) {
            break;
        }
        last_total = total;
        if header.last_offset() < covered {
            pos += total as u64;
            continue;
        }
        if header.base_offset >= limit {
            walk.full = true;
            break;
        }
        if (taken > 0 || !first) && taken + total > room {
            walk.full = true;
            break;
        }
        if walk.ends.is_empty() {
            walk.start = pos as u32;
        }
        taken += total;
        walk.ends.push(taken as u32);
        walk.last_offset = Some(header.last_offset());
        pos += total as u64;
    }
    Ok(walk)
}

/// Reads until `buf` is full or the file ends; the bytes read.
fn read_full_at(file: &std::fs::File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], pos + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod walk_tests {
    use super::*;
    use crate::log::batch::tests::make_batch;
    use kafka_protocol::records::Compression;

    /// A file of batches, small and large in turn, with dense offsets: the file and each
    /// batch's (position, length, base offset, last offset).
    fn log_file() -> (std::fs::File, Vec<(u32, u32, i64, i64)>) {
        let mut bytes = Vec::new();
        let mut batches = Vec::new();
        let mut offset = 0i64;
        for i in 0..40 {
            let (n, value) = if i % 3 == 0 { (4, 3000) } else { (3, 20) };
            let mut b = make_batch(n, value, Compression::None);
            batch::assign_offset(&mut b, offset, 0);
            batches.push((
                bytes.len() as u32,
                b.len() as u32,
                offset,
                offset + n as i64 - 1,
            ));
            offset += n as i64;
            bytes.extend_from_slice(&b);
        }
        let mut f = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut f, &bytes).unwrap();
        (f, batches)
    }

    /// The walk takes exactly the batches a read must send (from the one holding `covered`,
    /// before `limit`, within `room` but the first whole), small ones read in windows and
    /// large ones header by header, and stops at a torn end.
    #[test]
    fn walk_takes_the_batches_a_read_sends() {
        let (f, batches) = log_file();
        let end = batches.last().map(|b| b.0 + b.1).unwrap();
        let expect = |covered: i64, limit: i64, room: usize, first: bool| {
            let mut taken = Vec::new();
            let mut used = 0usize;
            for &(pos, len, base, last) in &batches {
                if last < covered {
                    continue;
                }
                if base >= limit || ((used > 0 || !first) && used + len as usize > room) {
                    break;
                }
                used += len as usize;
                taken.push((pos, used as u32, last));
            }
            taken
        };
        for covered in [0i64, 1, 5, 7, 50, 119, 200] {
            for limit in [3i64, 60, 1000] {
                for room in [0usize, 100, 5000, 40_000, 1 << 20] {
                    for first in [true, false] {
                        let w = walk_batches(&f, 0, end, covered, limit, room, first).unwrap();
                        let want = expect(covered, limit, room, first);
                        let got_ends: Vec<u32> = w.ends.clone();
                        assert_eq!(
                            got_ends,
                            want.iter().map(|t| t.1).collect::<Vec<_>>(),
                            "covered {covered} limit {limit} room {room} first {first}"
                        );
                        if let Some(t) = want.first() {
                            assert_eq!(w.start, t.0);
                            assert_eq!(w.last_offset, want.last().map(|t| t.2));
                        } else {
                            assert_eq!(w.last_offset, None);
                        }
                    }
                }
            }
        }
        // A torn last batch (cut short) ends the walk before it.
        let (last_pos, last_len, ..) = *batches.last().unwrap();
        let w = walk_batches(
            &f,
            0,
            last_pos + last_len - 1,
            0,
            i64::MAX,
            usize::MAX,
            true,
        )
        .unwrap();
        assert_eq!(w.ends.last().copied(), Some(last_pos));
        assert!(!w.full);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reservations follow the segment's size: a partition written once reserves 64 KiB, not a
    /// whole 4 MiB step, and past the step they go one step at a time; what is reserved past
    /// the data never exceeds the data (beyond the minimum) nor one step.
    #[test]
    fn preallocation_grows_with_the_segment() {
        assert_eq!(preallocation_target(4096), 64 << 10);
        assert_eq!(preallocation_target(64 << 10), 64 << 10);
        assert_eq!(preallocation_target((64 << 10) + 4096), 128 << 10);
        assert_eq!(preallocation_target(3 << 20), 4 << 20);
        assert_eq!(preallocation_target(4 << 20), 4 << 20);
        assert_eq!(preallocation_target((4 << 20) + 4096), 8 << 20);
        assert_eq!(preallocation_target((1 << 30) - 4096), 1 << 30);
        for end in (4096..(64u64 << 20)).step_by(4096 * 7) {
            let target = preallocation_target(end);
            assert!(target >= end, "{end}: reserves what is written");
            let ahead = target - end;
            assert!(ahead < PREALLOCATE_STEP_BYTES, "{end}: {ahead} ahead");
            assert!(
                ahead < end.max(PREALLOCATE_MIN_BYTES),
                "{end}: {ahead} ahead"
            );
        }
    }
}
