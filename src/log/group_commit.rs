//! Group commit: one fdatasync per dirty segment file covers every request that wrote to it
//! before the sync began. Requests with acks=1/all wait here before they are answered; the
//! shard runs one sync round at a time, so concurrent producers share the cost of each sync.
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

use glommio::io::DmaFile;

use crate::util::Notify;

pub struct GroupCommit {
    /// Files written since the last sync round began. Few per shard (one per active segment).
    dirty: RefCell<Vec<Rc<DmaFile>>>,
    /// Number of the newest round that has started.
    started: Cell<u64>,
    /// Number of the newest round that has finished, and whether it failed.
    finished: Cell<u64>,
    failed_round: Cell<Option<u64>>,
    /// Whether the last round failed: failures are logged when they start and end, not once
    /// per round.
    failing: Cell<bool>,
    /// Wakes the syncer (work to do) and the waiters (a round finished).
    work: Notify,
    done: Notify,
    /// The newest round some waiter needs; the syncer idles while it is finished.
    wanted: Cell<u64>,
    stopped: Cell<bool>,
}

impl GroupCommit {
    pub fn new() -> Rc<GroupCommit> {
        Rc::new(GroupCommit {
            dirty: RefCell::new(Vec::new()),
            started: Cell::new(0),
            finished: Cell::new(0),
            failed_round: Cell::new(None),
            failing: Cell::new(false),
            work: Notify::new(),
            done: Notify::new(),
            wanted: Cell::new(0),
            stopped: Cell::new(false),
        })
    }

    /// Records that `file` holds bytes a later `durable()` must cover. Call after the write
    /// completed.
    pub fn mark_dirty(&self, file: &Rc<DmaFile>) {
        let mut dirty = self.dirty.borrow_mut();
        if !dirty.iter().any(|f| Rc::ptr_eq(f, file)) {
            dirty.push(file.clone());
        }
    }

    /// Returns once every write that completed before this call is on stable storage.
    pub async fn durable(&self) -> io::Result<()> {
        // A round that has already started may have taken the dirty list before our write was
        // marked, so only a round that starts after now is sure to cover it.
        let needed = self.started.get() + 1;
        self.wanted.set(self.wanted.get().max(needed));
        self.work.notify_all();
        while self.finished.get() < needed {
            if self.stopped.get() {
                return Err(io::Error::other("broker is shutting down"));
            }
            self.done.notified().await;
        }
        match self.failed_round.get() {
            Some(r) if r >= needed => Err(io::Error::other("fdatasync failed: see the broker log")),
            _ => Ok(()),
        }
    }

    /// The syncer task: one per shard, runs until `stop`.
    pub async fn run(self: Rc<Self>) {
        loop {
            while self.wanted.get() <= self.finished.get() && !self.stopped.get() {
                self.work.notified().await;
            }
            if self.stopped.get() {
                return;
            }
            let round = self.started.get() + 1;
            self.started.set(round);
            let files = std::mem::take(&mut *self.dirty.borrow_mut());
            let results = futures::future::join_all(files.iter().map(|f| f.fdatasync())).await;
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
                    self.failed_round.set(Some(round));
                    // Synced again by the next round (see the module doc).
                    self.mark_dirty(file);
                }
            }
            if self.failing.replace(failed) && !failed {
                tracing::info!("fdatasync succeeds again");
            }
            self.finished.set(round);
            self.done.notify_all();
        }
    }

    /// Runs one final round for whatever is dirty and lets the syncer end.
    pub async fn flush_and_stop(&self) -> io::Result<()> {
        let files = std::mem::take(&mut *self.dirty.borrow_mut());
        for f in &files {
            f.fdatasync().await?;
        }
        self.stopped.set(true);
        self.work.notify_all();
        self.done.notify_all();
        Ok(())
    }
}
