//! The batches a partition wrote last, kept in memory as the writer wrote them (offsets
//! assigned), so that consumers at the tail read them without a disk read. Each shard gives
//! its partitions one memory budget (`shardlog.tail.cache.bytes`); a partition that cannot get
//! room for a write gives back its own oldest batches first, and when that is not enough it
//! drops its cache: what a partition caches is always contiguous and ends at its high
//! watermark, so a read that starts in it can be served from it alone.

use std::cell::Cell;
use std::collections::VecDeque;
use std::ops::Range;
use std::rc::Rc;

use bytes::Bytes;

use crate::util::scatter::{Part, Pieces};

/// One shard's room for cached batches, shared by its partitions.
pub struct TailBudget {
    limit: usize,
    used: Cell<usize>,
}

impl TailBudget {
    pub fn new(limit: usize) -> Rc<TailBudget> {
        Rc::new(TailBudget {
            limit,
            used: Cell::new(0),
        })
    }

    pub fn enabled(&self) -> bool {
        self.limit > 0
    }

    /// Bytes held by all the shard's caches.
    pub fn used(&self) -> usize {
        self.used.get()
    }

    fn take(&self, n: usize) -> bool {
        let used = self.used.get();
        if used + n > self.limit {
            return false;
        }
        self.used.set(used + n);
        true
    }

    fn give_back(&self, n: usize) {
        self.used.set(self.used.get().saturating_sub(n));
    }
}

/// One cached batch.
pub struct Cached {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The batch's first bytes as written (base offset, length, leader epoch), when the rest
    /// is kept apart: the producer's own bytes, which have the producer's base offset and
    /// epoch in those places (see `PartitionLog::write_run`).
    pub head: Option<Bytes>,
    /// The bytes the batch (or its rest) is a range of, shared by the batches of a write, and
    /// the range.
    pub run: Bytes,
    pub range: Range<usize>,
}

impl Cached {
    fn len(&self) -> usize {
        self.head.as_ref().map_or(0, Bytes::len) + self.range.len()
    }
}

/// Whether a cache may keep `records`, a slice of a request frame of `frame_bytes`, instead of
/// a copy: only when they are at least half of the memory they keep alive. A frame larger than
/// a connection's read buffer has a buffer of its own, rounded up to a power of two
/// (`util::frame_pool`); a smaller one shares a read buffer of up to `SHARED_READ_BYTES`. So
/// the memory a cache holds is at most twice what it counts, even when a partition gone idle
/// keeps its last batch of a large request for good.
pub fn may_reference(records: usize, frame_bytes: usize) -> bool {
    /// The most a frame that shares a connection's read buffer keeps alive.
    const SHARED_READ_BYTES: usize = 32 * 1024;
    frame_bytes > 0 && records * 2 >= frame_bytes.next_power_of_two().max(SHARED_READ_BYTES)
}

/// One partition's cached batches.
pub struct TailCache {
    budget: Rc<TailBudget>,
    batches: VecDeque<Cached>,
    bytes: usize,
}

impl TailCache {
    pub fn new(budget: Rc<TailBudget>) -> TailCache {
        TailCache {
            budget,
            batches: VecDeque::new(),
            bytes: 0,
        }
    }

    pub fn enabled(&self) -> bool {
        self.budget.enabled()
    }

    /// Adds a write's batches: `run` is what was written, and each batch is `(base offset,
    /// last offset, its range in run)`, in order, following what is cached.
    #[cfg(test)]
    pub fn push(
        &mut self,
        run: Bytes,
        batches: impl IntoIterator<Item = (i64, i64, Range<usize>)>,
    ) {
        let batches = batches
            .into_iter()
            .map(|(base_offset, last_offset, range)| Cached {
                base_offset,
                last_offset,
                head: None,
                run: run.clone(),
                range,
            });
        self.push_batches(batches.collect());
    }

    /// Adds a write's batches, in order, following what is cached.
    pub fn push_batches(&mut self, batches: Vec<Cached>) {
        let n: usize = batches.iter().map(Cached::len).sum();
        if n == 0 {
            return;
        }
        while !self.budget.take(n) {
            if !self.evict_oldest() {
                // No room even with nothing of ours cached: this write is not cached, and what
                // follows is cached again once there is room (the cache stays contiguous).
                return;
            }
        }
        self.bytes += n;
        self.batches.extend(batches);
    }

    fn evict_oldest(&mut self) -> bool {
        match self.batches.pop_front() {
            Some(b) => {
                self.bytes -= b.len();
                self.budget.give_back(b.len());
                true
            }
            None => false,
        }
    }

    /// Drops the batches that begin below `offset` (the cleaner rewrote them on disk).
    pub fn drop_below(&mut self, offset: i64) {
        while self.batches.front().is_some_and(|b| b.base_offset < offset) {
            self.evict_oldest();
        }
    }

    /// Drops everything cached (the partition closes, or a write was not cached).
    pub fn clear(&mut self) {
        while self.evict_oldest() {}
    }

    /// The whole batches from the one holding `offset` on, below `limit`, up to `max_bytes`
    /// (the first whole even when larger), with the last offset read; `None` when the cache
    /// does not hold the batch with `offset`. Nothing is copied: the pieces are slices of the
    /// cached writes (one per run of adjacent batches of one write).
    pub fn read(&self, offset: i64, limit: i64, max_bytes: usize) -> Option<(Pieces, i64)> {
        let first = self.batches.front()?;
        if offset < first.base_offset {
            return None;
        }
        let start = self.batches.partition_point(|b| b.last_offset < offset);
        let mut out = Pieces::default();
        let mut len = 0usize;
        // The slice being grown: a write's bytes, the range so far, and its batches' ends.
        let mut current: Option<(&Bytes, Range<usize>, Vec<u32>)> = None;
        let mut last_read = offset;
        for b in self.batches.range(start..) {
            if b.base_offset >= limit {
                break;
            }
            if len > 0 && len + b.len() > max_bytes {
                break;
            }
            match (&mut current, &b.head) {
                (Some((run, range, ends)), None)
                    if std::ptr::eq(run.as_ptr(), b.run.as_ptr()) && range.end == b.range.start =>
                {
                    range.end = b.range.end;
                    ends.push(range.len() as u32);
                }
                (_, None) => {
                    if let Some((run, range, ends)) = current.take() {
                        out.push(Part::Memory(run.slice(range)), ends);
                    }
                    current = Some((&b.run, b.range.clone(), vec![b.len() as u32]));
                }
                (_, Some(head)) => {
                    if let Some((run, range, ends)) = current.take() {
                        out.push(Part::Memory(run.slice(range)), ends);
                    }
                    let rest = Part::Memory(b.run.slice(b.range.clone()));
                    out.push_unit([Part::Memory(head.clone()), rest]);
                }
            }
            len += b.len();
            last_read = b.last_offset;
            if len >= max_bytes {
                break;
            }
        }
        if let Some((run, range, ends)) = current {
            out.push(Part::Memory(run.slice(range)), ends);
        }
        Some((out, last_read))
    }
}

impl Drop for TailCache {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pushes each batch as a write of its own.
    fn push(c: &mut TailCache, batches: &[(i64, i64, usize)]) {
        let total: usize = batches.iter().map(|b| b.2).sum();
        let run = Bytes::from(vec![7u8; total]);
        let mut at = 0;
        let ranges: Vec<_> = batches
            .iter()
            .map(|&(base, last, len)| {
                at += len;
                (base, last, at - len..at)
            })
            .collect();
        c.push(run, ranges);
    }

    fn batch(base: i64, last: i64, len: usize) -> (i64, i64, usize) {
        (base, last, len)
    }

    /// Reads start at the batch holding the offset, stop at the limit and at max_bytes (the
    /// first batch whole), and offsets before the cache are not served.
    #[test]
    fn reads_whole_batches_from_the_offset() {
        let budget = TailBudget::new(1 << 20);
        let mut c = TailCache::new(budget.clone());
        push(&mut c, &[batch(10, 14, 100), batch(15, 15, 50)]);
        push(&mut c, &[batch(16, 20, 100)]);
        assert_eq!(budget.used(), 250);
        assert!(c.read(9, 21, 1000).is_none());
        let (bytes, last) = c.read(12, 21, 1000).expect("cached");
        assert_eq!((bytes.len(), last), (250, 20));
        assert_eq!(bytes.parts().len(), 2, "one slice per write");
        assert_eq!(bytes.whole_within(200), 150, "batch ends kept");
        let (bytes, last) = c.read(15, 21, 120).expect("cached");
        assert_eq!((bytes.len(), last), (50, 15));
        let (bytes, _) = c.read(16, 21, 10).expect("cached");
        assert_eq!(bytes.len(), 100, "the first batch whole");
        let (bytes, _) = c.read(12, 16, 1000).expect("cached");
        assert_eq!(bytes.len(), 150, "below the limit (an LSO, say)");
        drop(c);
        assert_eq!(budget.used(), 0);
    }

    /// A partition makes room from its own oldest batches; with no room at all it caches
    /// nothing, and the shard's budget never goes over.
    #[test]
    fn stays_within_the_shard_budget() {
        let budget = TailBudget::new(300);
        let mut a = TailCache::new(budget.clone());
        let mut b = TailCache::new(budget.clone());
        push(&mut a, &[batch(0, 0, 100), batch(1, 1, 100)]);
        push(&mut b, &[batch(0, 0, 100)]);
        push(&mut a, &[batch(2, 2, 100)]);
        assert_eq!(budget.used(), 300);
        assert!(a.read(0, 10, 1000).is_none(), "evicted to make room");
        assert!(a.read(1, 10, 1000).is_some());
        push(&mut b, &[batch(1, 1, 400)]);
        assert!(b.read(0, 10, 1000).is_none());
        assert!(
            b.read(1, 10, 1000).is_none(),
            "too large for the budget: not cached"
        );
        assert!(budget.used() <= 300);
    }
}
