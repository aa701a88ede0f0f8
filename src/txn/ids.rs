//! Producer ids: unique for the life of the data directory, never handed out twice, even
//! across a kill -9.
//!
//! Ids are granted in blocks, as Kafka's controller grants them to brokers
//! (`AllocateProducerIds`): the control shard keeps the first id no block has covered yet in
//! `<data dir>/producer-ids` and makes the next value durable before it grants a block, so a
//! crash can only skip ids, never repeat them. Each shard takes ids from its own block and asks
//! the control shard for another when it runs out.
//!
//! # On disk
//! `producer-ids` holds the next unallocated id as a `util::checkpoint` line, replaced whole.

use std::cell::Cell;
use std::io;
use std::path::PathBuf;
use std::rc::Rc;

use crate::catalog::change::CONTROL_SHARD;
use crate::shard::Shard;
use crate::util::checkpoint;

/// Ids per block: Kafka's `ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE`.
pub const BLOCK_SIZE: i64 = 1000;

const FILE_NAME: &str = "producer-ids";

/// A shard's producer id source.
pub struct ProducerIds {
    shard: Rc<Shard>,
    /// This shard's current block: the next id and one past the last.
    next: Cell<i64>,
    end: Cell<i64>,
    /// On the control shard: the first id no block has covered, once read from disk.
    unallocated: Cell<Option<i64>>,
    /// On the control shard: a grant is being made durable (grants run one at a time).
    granting: Cell<bool>,
    granted: crate::util::Notify,
}

impl ProducerIds {
    pub fn new(shard: Rc<Shard>) -> Rc<ProducerIds> {
        Rc::new(ProducerIds {
            shard,
            next: Cell::new(0),
            end: Cell::new(0),
            unallocated: Cell::new(None),
            granting: Cell::new(false),
            granted: crate::util::Notify::new(),
        })
    }

    /// A producer id no one has had.
    pub async fn allocate(&self) -> io::Result<i64> {
        loop {
            let next = self.next.get();
            if next < self.end.get() {
                self.next.set(next + 1);
                return Ok(next);
            }
            let start = self
                .shard
                .invoke_on(CONTROL_SHARD, |ids: &Rc<ProducerIds>| {
                    let ids = ids.clone();
                    Box::pin(async move { ids.grant_block().await.map_err(|e| e.to_string()) })
                })
                .await
                .map_err(|_| io::Error::other("the control shard is stopping"))?
                .map_err(io::Error::other)?;
            // Another allocation may have refilled the block meanwhile: keep the larger.
            if self.next.get() >= self.end.get() {
                self.next.set(start);
                self.end.set(start + BLOCK_SIZE);
            }
        }
    }

    /// On the control shard: the first id of a new block, made durable before it is granted.
    async fn grant_block(&self) -> io::Result<i64> {
        while self.granting.get() {
            self.granted.notified().await;
        }
        self.granting.set(true);
        let result = self.grant_one().await;
        self.granting.set(false);
        self.granted.notify_all();
        result
    }

    async fn grant_one(&self) -> io::Result<i64> {
        let start = match self.unallocated.get() {
            Some(start) => start,
            None => read(&self.path()).await?,
        };
        let end = start
            .checked_add(BLOCK_SIZE)
            .ok_or_else(|| io::Error::other("producer ids are exhausted"))?;
        write(&self.path(), end).await?;
        self.unallocated.set(Some(end));
        Ok(start)
    }

    fn path(&self) -> PathBuf {
        self.shard.config.data_dir.join(FILE_NAME)
    }
}

/// The first unallocated id: 0 for a new data directory. A damaged file is an error, never a
/// restart from 0 (which would repeat ids).
async fn read(path: &std::path::Path) -> io::Result<i64> {
    let hint = "restore it, or write a line for a value above every producer id in use \
                (removing it would hand out ids again from 0)";
    Ok(checkpoint::read(path, hint).await?.unwrap_or(0))
}

async fn write(path: &std::path::Path, next: i64) -> io::Result<()> {
    checkpoint::write(path, next).await
}
