//! Group commit: one fdatasync per dirty segment file covers every request that wrote to it
//! before the sync began. Requests with acks=1/all wait here before they are answered; the
//! shard runs one sync round at a time, so concurrent producers share the cost of each sync.

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
            for (file, result) in files.iter().zip(results) {
                if let Err(e) = result {
                    let path = file
                        .path()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default();
                    tracing::error!(file = %path, error = %e, "fdatasync failed; acknowledging nothing written since");
                    self.failed_round.set(Some(round));
                }
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
