//! Group commit: one fdatasync per dirty segment file covers every request that wrote to it
//! before the sync began. Requests with acks=1/all wait here before they are answered; the
//! shard runs one sync round at a time, so concurrent producers share the cost of each sync.
//!
//! # Gathering a round
//! A round wanted while appends are still queued or being written on the shard (`Pending`)
//! waits for them first, up to `shardlog.group.commit.max.wait.us`, or until
//! `shardlog.group.commit.max.bytes` were written since the last round began: an append a few
//! microseconds from done joins this round instead of waiting a whole round for the next one.
//! With nothing pending a round starts at once, so an idle broker adds no delay.
//!
//! # A failed fdatasync
//! Every request the round covered is answered with the error: nothing is acknowledged that
//! the round did not make durable. The file stays dirty and the next round syncs it again, and
//! a success then covers the earlier writes too. That retry is sound here, unlike the retry of
//! a failed fsync after buffered writes (where Linux may have marked the dirty pages clean and
//! dropped their data, so the second fsync succeeds without writing them): segments are
//! written with O_DIRECT, so a write that completed put its data on the device, and what a sync
//! adds is the device cache flush and the file system metadata that finds the data (extents,
//! the file size), which stay in the journal until a commit succeeds; a journal that cannot
//! commit aborts the file system, and then every later sync fails too. A full disk should not
//! fail a sync of O_DIRECT writes at all: their blocks were allocated (and reserved extents
//! converted) before the write completed.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::time::Duration;

use glommio::io::DmaFile;

use crate::util::Notify;

/// How long a round waits for pending appends, and how many bytes end the wait.
#[derive(Debug, Clone, Copy)]
pub struct Gather {
    pub max_wait: Duration,
    pub max_bytes: usize,
}

impl Gather {
    /// No waiting: each round starts as soon as it is wanted (tests of the rounds themselves).
    pub const NONE: Gather = Gather {
        max_wait: Duration::ZERO,
        max_bytes: 0,
    };
}

pub struct GroupCommit {
    gather: Gather,
    /// Files written since the last sync round began. Few per shard (one per active segment).
    dirty: RefCell<Vec<Rc<DmaFile>>>,
    /// Bytes written since the last sync round began.
    dirty_bytes: Cell<usize>,
    /// Appends queued or being written (`Pending` guards alive).
    pending: Cell<usize>,
    /// Wakes a gathering round: no append pending, or enough bytes written.
    gathered: Notify,
    /// Writes marked dirty so far: a write's number is this count once it is marked.
    written: Cell<u64>,
    /// The writes the round under way (or the last one) took: every write numbered up to it.
    taken: Cell<u64>,
    /// Every write numbered up to this is on stable storage.
    synced: Cell<u64>,
    /// Rounds finished, and the latest failed one (its number, and what it had taken).
    finished: Cell<u64>,
    failed_round: Cell<Option<(u64, u64)>>,
    /// Whether the last round failed: failures are logged when they start and end, not once
    /// per round.
    failing: Cell<bool>,
    /// Wakes the syncer (work to do) and the waiters (a round finished).
    work: Notify,
    done: Notify,
    /// The highest write number some waiter needs synced; the syncer idles while it is.
    wanted: Cell<u64>,
    stopped: Cell<bool>,
}

impl GroupCommit {
    pub fn new(gather: Gather) -> Rc<GroupCommit> {
        Rc::new(GroupCommit {
            gather,
            dirty: RefCell::new(Vec::new()),
            dirty_bytes: Cell::new(0),
            pending: Cell::new(0),
            gathered: Notify::new(),
            written: Cell::new(0),
            taken: Cell::new(0),
            synced: Cell::new(0),
            finished: Cell::new(0),
            failed_round: Cell::new(None),
            failing: Cell::new(false),
            work: Notify::new(),
            done: Notify::new(),
            wanted: Cell::new(0),
            stopped: Cell::new(false),
        })
    }

    /// Records that `file` holds `bytes` more that a later `durable()` must cover. Call after
    /// the write completed.
    pub fn mark_dirty(&self, file: &Rc<DmaFile>, bytes: usize) {
        {
            let mut dirty = self.dirty.borrow_mut();
            if !dirty.iter().any(|f| Rc::ptr_eq(f, file)) {
                dirty.push(file.clone());
            }
        }
        self.written.set(self.written.get() + 1);
        let total = self.dirty_bytes.get() + bytes;
        self.dirty_bytes.set(total);
        if total >= self.gather.max_bytes {
            self.gathered.notify_all();
        }
    }

    /// Counts an append as pending until the guard is dropped (its write done or failed):
    /// a round wanted meanwhile waits for it (see the module doc).
    pub fn pending(self: &Rc<Self>) -> Pending {
        self.pending.set(self.pending.get() + 1);
        Pending(self.clone())
    }

    /// Waits, within the gathering bounds, until no append is pending.
    async fn gather(&self) {
        if self.gather.max_wait.is_zero() {
            return;
        }
        let deadline = std::time::Instant::now() + self.gather.max_wait;
        while self.pending.get() > 0
            && self.dirty_bytes.get() < self.gather.max_bytes
            && !self.stopped.get()
        {
            let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) else {
                return;
            };
            let timer = glommio::timer::sleep(left);
            futures::pin_mut!(timer);
            let woken = self.gathered.notified();
            futures::pin_mut!(woken);
            futures::future::select(timer, woken).await;
        }
    }

    /// Returns once every write that completed before this call is on stable storage: once a
    /// round that took it (started after it was marked dirty) has synced. Fails when the round
    /// that took it fails while this waits.
    pub async fn durable(&self) -> io::Result<()> {
        let needed = self.written.get();
        let seen = self.finished.get();
        while self.synced.get() < needed {
            if let Some((round, taken)) = self.failed_round.get() {
                if round > seen && taken >= needed {
                    return Err(io::Error::other("fdatasync failed: see the broker log"));
                }
            }
            if self.stopped.get() {
                return Err(io::Error::other("broker is shutting down"));
            }
            if self.wanted.get() < needed {
                self.wanted.set(needed);
                self.work.notify_all();
            }
            self.done.notified().await;
        }
        Ok(())
    }

    /// The syncer task: one per shard, runs until `stop`.
    pub async fn run(self: Rc<Self>) {
        loop {
            while self.wanted.get() <= self.synced.get() && !self.stopped.get() {
                self.work.notified().await;
            }
            if self.stopped.get() {
                return;
            }
            self.gather().await;
            let round = self.finished.get() + 1;
            self.taken.set(self.written.get());
            self.dirty_bytes.set(0);
            let files = std::mem::take(&mut *self.dirty.borrow_mut());
            #[cfg(test)]
            let covers = crate::log::segment::fault::recorded_len();
            let started = std::time::Instant::now();
            let results = futures::future::join_all(files.iter().map(|f| f.fdatasync())).await;
            let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            #[cfg(test)]
            for (file, result) in files.iter().zip(&results) {
                if let (Some(path), Ok(())) = (file.path(), result) {
                    crate::log::segment::fault::record(&path, || {
                        crate::log::segment::fault::Event::Sync { covers }
                    });
                }
            }
            let mut failed = false;
            for (file, result) in files.iter().zip(results) {
                if let Err(e) = result {
                    failed = true;
                    if !self.failing.get() {
                        let path = file
                            .path()
                            .map(|p| p.display().to_string())
                            .unwrap_or_default();
                        tracing::error!(file = %path, error = %e, "fdatasync failed; acknowledging nothing written since, and syncing again with the next round");
                    }
                    // Synced again by the next round (see the module doc).
                    let mut dirty = self.dirty.borrow_mut();
                    if !dirty.iter().any(|f| Rc::ptr_eq(f, file)) {
                        dirty.push(file.clone());
                    }
                }
            }
            if failed {
                self.failed_round.set(Some((round, self.taken.get())));
                if self.wanted.get() <= self.taken.get() {
                    // Every waiter it took was answered with the error: no retry until a
                    // waiter asks again (a failing disk is not synced in a loop).
                    self.wanted.set(self.synced.get());
                }
            } else {
                let writes = self.taken.get() - self.synced.get();
                crate::util::metrics::synced(writes, elapsed_us);
                self.synced.set(self.taken.get());
            }
            if self.failing.replace(failed) && !failed {
                tracing::info!("fdatasync succeeds again");
            }
            self.finished.set(round);
            self.done.notify_all();
        }
    }

    /// Sync rounds finished so far.
    pub fn rounds(&self) -> u64 {
        self.finished.get()
    }

    /// Runs one final round for whatever is dirty and lets the syncer end.
    pub async fn flush_and_stop(&self) -> io::Result<()> {
        let files = std::mem::take(&mut *self.dirty.borrow_mut());
        let written = self.written.get();
        for f in &files {
            f.fdatasync().await?;
        }
        self.synced.set(self.synced.get().max(written));
        self.stopped.set(true);
        self.work.notify_all();
        self.done.notify_all();
        Ok(())
    }
}

/// An append counted as pending by its shard's group commit (`GroupCommit::pending`).
pub struct Pending(Rc<GroupCommit>);

impl Drop for Pending {
    fn drop(&mut self) {
        let left = self.0.pending.get() - 1;
        self.0.pending.set(left);
        if left == 0 {
            self.0.gathered.notify_all();
        }
    }
}
