//! The bytes of requests a shard holds at once (`queued.max.request.bytes`, split over the
//! shards): a connection takes its next frame's size from the budget as soon as the size is
//! known, before reading the rest, and gives it back once the request is answered (written to
//! its partitions and synced, for a produce). When the budget is spent the connection stops
//! reading, so TCP pushes back on the client instead of the broker's memory growing, as Kafka
//! mutes a channel whose request its memory pool cannot take.
//!
//! A frame larger than the whole budget is let in when nothing else is held (Kafka's
//! non-strict pool does the same), so every request the frame limit allows makes progress.

use std::cell::Cell;
use std::rc::Rc;

use crate::util::Notify;

pub struct RequestBudget {
    /// Bytes this shard may hold; `usize::MAX`: no limit.
    limit: usize,
    held: Cell<usize>,
    freed: Notify,
    /// Connections waiting now: a wait is logged when the first starts, not once per frame.
    waiting: Cell<usize>,
}

impl RequestBudget {
    pub fn new(limit: usize) -> Rc<RequestBudget> {
        Rc::new(RequestBudget {
            limit,
            held: Cell::new(0),
            freed: Notify::new(),
            waiting: Cell::new(0),
        })
    }

    /// The shard's share of `queued.max.request.bytes` (negative: no limit, as in Kafka).
    pub fn per_shard(queued_max_request_bytes: i64, shards: usize) -> usize {
        match usize::try_from(queued_max_request_bytes) {
            Ok(total) => (total / shards.max(1)).max(1),
            Err(_) => usize::MAX,
        }
    }

    /// Bytes held now.
    pub fn held(&self) -> usize {
        self.held.get()
    }

    /// Takes `bytes` from the budget, waiting while it is spent (see the module doc).
    pub async fn take(self: &Rc<Self>, bytes: usize) -> Held {
        if !self.fits(bytes) {
            if self.waiting.replace(self.waiting.get() + 1) == 0 {
                tracing::debug!(
                    held = self.held.get(),
                    limit = self.limit,
                    "queued.max.request.bytes reached: connections wait before reading more"
                );
            }
            while !self.fits(bytes) {
                self.freed.notified().await;
            }
            self.waiting.set(self.waiting.get() - 1);
        }
        self.held.set(self.held.get() + bytes);
        crate::util::metrics::request_bytes_held(self.held.get());
        Held {
            budget: self.clone(),
            bytes,
        }
    }

    fn fits(&self, bytes: usize) -> bool {
        let held = self.held.get();
        held == 0 || held.saturating_add(bytes) <= self.limit
    }
}

/// Bytes taken from a `RequestBudget`, given back when dropped.
pub struct Held {
    budget: Rc<RequestBudget>,
    bytes: usize,
}

impl Drop for Held {
    fn drop(&mut self) {
        let b = &self.budget;
        b.held.set(b.held.get() - self.bytes);
        crate::util::metrics::request_bytes_held(b.held.get());
        b.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes wait while the budget is spent and go on once bytes are given back; a take
    /// larger than the budget goes through when nothing is held.
    #[test]
    fn takes_wait_for_room() {
        let executor = glommio::LocalExecutorBuilder::default().io_memory(64 << 10);
        let test = executor.spawn(|| async {
            let budget = RequestBudget::new(100);
            let a = budget.take(60).await;
            let b = budget.take(40).await;
            assert_eq!(budget.held(), 100);
            let waiting = {
                let budget = budget.clone();
                glommio::spawn_local(async move { budget.take(30).await })
            };
            glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
            assert_eq!(budget.held(), 100, "no room: the third take waits");
            drop(a);
            let c = waiting.await;
            assert_eq!(budget.held(), 70);
            drop((b, c));
            assert_eq!(budget.held(), 0);
            let huge = budget.take(1000).await;
            assert_eq!(
                budget.held(),
                1000,
                "alone, a take larger than the budget goes through"
            );
            drop(huge);
        });
        test.expect("executor").join().expect("join");
        assert_eq!(RequestBudget::per_shard(-1, 4), usize::MAX);
        assert_eq!(RequestBudget::per_shard(400, 4), 100);
    }
}
