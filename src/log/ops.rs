//! The operations other layers run on the shard that owns a partition: append, read, wait for
//! data, look up offsets. Each takes the parts one shard owns and answers in their order.
//!
//! Each returns the future of its answers after doing synchronously whatever must keep the
//! order in which operations reach the shard (`append` queues every part before returning), so
//! the transport can run that part in arrival order and the waiting as a task.

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures::channel::oneshot;
use futures::future::LocalBoxFuture;

use super::partition::{AppendOutcome, AppendReceiver, Isolation, Marker, OffsetsFrom};
use super::partitions::Partitions;
use super::txn_index::AbortedTxn;
use super::LogError;
use crate::util::scatter::Pieces;

/// Which sync an append waits for after its write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sync {
    /// The group commit, unless `shardlog.fsync.on.ack=false`.
    AsConfigured,
    /// The group commit whatever the config says (transaction markers).
    Always,
}

/// One partition's records in a produce.
pub struct AppendPart {
    pub topic: String,
    pub partition: i32,
    pub records: Option<Bytes>,
    /// The size of the request frame `records` are a slice of (see `Ctx::frame_bytes`).
    pub frame_bytes: usize,
}

/// One partition to read in a fetch.
#[derive(Clone)]
pub struct ReadPart {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub max_bytes: u32,
    pub isolation: Isolation,
}

/// What a read found. On an error the watermarks are still reported when the partition is
/// open (-1 otherwise), as Kafka does.
pub struct ReadAnswer {
    pub error: Option<LogError>,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// Whole batches, in memory or in segment files.
    pub records: Pieces,
    /// For read_committed: the aborted transactions among the records.
    pub aborted: Vec<AbortedTxn>,
}

impl ReadAnswer {
    fn failed(
        error: LogError,
        high_watermark: i64,
        last_stable_offset: i64,
        log_start_offset: i64,
    ) -> ReadAnswer {
        ReadAnswer {
            error: Some(error),
            high_watermark,
            last_stable_offset,
            log_start_offset,
            records: Pieces::default(),
            aborted: Vec::new(),
        }
    }
}

/// What ListOffsets asks of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetQuery {
    /// The high watermark.
    Latest,
    /// The last stable offset (ListOffsets with read_committed).
    LatestStable,
    /// The log start offset.
    Earliest,
    /// The start of the local log (KIP-405): the log start offset, as there is no tiered
    /// storage.
    EarliestLocal,
    /// The last offset in tiered storage (KIP-1005): none, as there is no tiered storage.
    LatestTiered,
    /// The record with the largest timestamp, if a reader with this isolation may see it.
    MaxTimestamp(Isolation),
    /// The first record with a timestamp at or after this one, if a reader with this
    /// isolation may see it.
    Timestamp(i64, Isolation),
}

/// An offset found by ListOffsets, with the record's timestamp when the query was by time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoundOffset {
    pub offset: i64,
    pub timestamp: Option<i64>,
}

impl Partitions {
    /// Validates and queues every part now (keeping arrival order), then waits for the writes
    /// and, when `durable`, for the shard's group commit to make them stable.
    pub fn append(
        self: &Rc<Self>,
        parts: Vec<AppendPart>,
        durable: bool,
    ) -> LocalBoxFuture<'static, Vec<Result<AppendOutcome, LogError>>> {
        let queued: Vec<_> = parts
            .into_iter()
            .map(|part| {
                let records = part.records.ok_or(LogError::NoRecords)?;
                self.enqueue(&part.topic, part.partition, records, part.frame_bytes)
                    .inspect_err(|e| {
                        tracing::debug!(topic = %part.topic, partition = part.partition, error = %e, "rejected produce");
                    })
            })
            .collect();
        let this = self.clone();
        Box::pin(async move {
            let sync = durable.then_some(Sync::AsConfigured);
            this.written(queued, sync).await
        })
    }

    /// Waits for each queued append in order, then, when asked and any succeeded, for the
    /// shard's group commit; a failed sync fails every append it covered.
    async fn written(
        &self,
        queued: Vec<Result<AppendReceiver, LogError>>,
        sync: Option<Sync>,
    ) -> Vec<Result<AppendOutcome, LogError>> {
        let mut written = Vec::with_capacity(queued.len());
        for q in queued {
            written.push(match q {
                Ok(rx) => rx.await.unwrap_or(Err(LogError::Closed)),
                Err(e) => Err(e),
            });
        }
        let Some(sync) = sync.filter(|_| written.iter().any(Result::is_ok)) else {
            return written;
        };
        let synced = match sync {
            Sync::AsConfigured => self.durable().await,
            Sync::Always => self.commit_durable().await,
        };
        if let Err(e) = synced {
            for w in written.iter_mut().filter(|w| w.is_ok()) {
                *w = Err(e.clone());
            }
        }
        written
    }

    /// Reads each part: whole batches from its offset, up to its byte limit.
    pub fn read(self: &Rc<Self>, parts: Vec<ReadPart>) -> LocalBoxFuture<'static, Vec<ReadAnswer>> {
        let this = self.clone();
        Box::pin(async move { this.read_all(&parts).await })
    }

    /// A long poll's part on this shard, in one operation: reads each part; unless that found
    /// `min_bytes` (or an error), waits until one of them gets more, `timeout` passes or `stop`
    /// fires (the fetch has enough from other shards), then reads again only the parts that
    /// have something new and gives the others their current watermarks.
    pub fn read_or_wait(
        self: &Rc<Self>,
        parts: Vec<ReadPart>,
        min_bytes: usize,
        timeout: Duration,
        stop: oneshot::Receiver<()>,
    ) -> LocalBoxFuture<'static, Vec<ReadAnswer>> {
        let this = self.clone();
        Box::pin(async move {
            let mut out = this.read_all(&parts).await;
            let bytes: usize = out.iter().map(|a| a.records.len()).sum();
            let failed = out.iter().any(|a| a.error.is_some());
            if timeout.is_zero() || failed || bytes >= min_bytes.max(1) {
                return out;
            }
            let logs: Vec<_> = parts
                .iter()
                .zip(&out)
                .filter_map(|(p, a)| {
                    // Past what was read: data beyond the high watermark seen.
                    let log = this.get(&p.topic, p.partition)?;
                    Some((log, p.offset.max(a.high_watermark)))
                })
                .collect();
            if logs.is_empty() {
                return out;
            }
            let data = futures::future::select_all(
                logs.iter()
                    .map(|(l, o)| Box::pin(l.wait_for_data(*o, timeout))),
            );
            futures::future::select(data, stop).await;
            for (p, a) in parts.iter().zip(out.iter_mut()) {
                let Some(log) = this.get(&p.topic, p.partition) else {
                    continue;
                };
                let visible = match p.isolation {
                    Isolation::ReadUncommitted => log.high_watermark(),
                    Isolation::ReadCommitted => log.last_stable_offset(),
                };
                if visible > p.offset {
                    *a = this.read_one(p).await;
                } else {
                    a.high_watermark = log.high_watermark();
                    a.last_stable_offset = log.last_stable_offset();
                    a.log_start_offset = log.log_start_offset();
                }
            }
            out
        })
    }

    /// Reads the parts side by side: reads from segment files wait for the disk, and waiting
    /// for them together keeps the device busy (one at a time, a catch-up consumer of many
    /// partitions reads at the speed of one read's latency).
    async fn read_all(&self, parts: &[ReadPart]) -> Vec<ReadAnswer> {
        futures::future::join_all(parts.iter().map(|p| self.read_one(p))).await
    }

    async fn read_one(&self, p: &ReadPart) -> ReadAnswer {
        let log = match self.lookup(&p.topic, p.partition) {
            Ok(log) => log,
            Err(e) => return ReadAnswer::failed(e, -1, -1, -1),
        };
        match log.read(p.offset, p.max_bytes, p.isolation).await {
            Ok(r) => ReadAnswer {
                error: None,
                high_watermark: r.high_watermark,
                last_stable_offset: r.last_stable_offset,
                log_start_offset: r.log_start_offset,
                records: r.records,
                aborted: r.aborted,
            },
            Err(e) => {
                if let LogError::Storage(why) = &e {
                    tracing::error!(topic = %p.topic, partition = p.partition, error = %why, "fetch read failed");
                }
                ReadAnswer::failed(
                    e,
                    log.high_watermark(),
                    log.last_stable_offset(),
                    log.log_start_offset(),
                )
            }
        }
    }

    /// Answers each ListOffsets query; `None` when no record is that recent.
    pub fn offsets(
        self: &Rc<Self>,
        parts: Vec<(String, i32, OffsetQuery)>,
    ) -> LocalBoxFuture<'static, Vec<Result<Option<FoundOffset>, LogError>>> {
        let this = self.clone();
        Box::pin(async move {
            let mut out = Vec::with_capacity(parts.len());
            for (topic, partition, query) in parts {
                out.push(this.offset(&topic, partition, query).await);
            }
            out
        })
    }

    /// Answers each ListOffsets v0 query: up to that many offsets, newest first
    /// (`PartitionLog::offsets_before`).
    pub fn offsets_before(
        self: &Rc<Self>,
        parts: Vec<(String, i32, (OffsetsFrom, usize))>,
    ) -> LocalBoxFuture<'static, Vec<Result<Vec<i64>, LogError>>> {
        let now_ms = crate::util::now_ms();
        let answers = parts
            .into_iter()
            .map(|(topic, partition, (from, max_offsets))| {
                let log = self.lookup(&topic, partition)?;
                Ok(log.offsets_before(from, max_offsets, now_ms))
            })
            .collect();
        Box::pin(std::future::ready(answers))
    }

    async fn offset(
        &self,
        topic: &str,
        partition: i32,
        query: OffsetQuery,
    ) -> Result<Option<FoundOffset>, LogError> {
        let log = self.lookup(topic, partition)?;
        // As Kafka's ReplicaManager: a record found by time at or past the last offset the
        // reader may fetch (the last stable offset for read_committed, else the high
        // watermark) is not answered.
        let by_time = |found: Option<(i64, i64)>, isolation: Isolation| {
            let fetchable = match isolation {
                Isolation::ReadCommitted => log.last_stable_offset(),
                Isolation::ReadUncommitted => log.high_watermark(),
            };
            found
                .filter(|&(offset, _)| offset < fetchable)
                .map(|(offset, ts)| FoundOffset {
                    offset,
                    timestamp: Some(ts),
                })
        };
        Ok(match query {
            OffsetQuery::Latest => Some(FoundOffset {
                offset: log.high_watermark(),
                timestamp: None,
            }),
            OffsetQuery::LatestStable => Some(FoundOffset {
                offset: log.last_stable_offset(),
                timestamp: None,
            }),
            OffsetQuery::Earliest | OffsetQuery::EarliestLocal => Some(FoundOffset {
                offset: log.log_start_offset(),
                timestamp: None,
            }),
            OffsetQuery::LatestTiered => None,
            OffsetQuery::MaxTimestamp(isolation) => {
                by_time(log.offset_of_max_timestamp().await?, isolation)
            }
            OffsetQuery::Timestamp(ts, isolation) => {
                by_time(log.offset_for_timestamp(ts).await?, isolation)
            }
        })
    }
}

impl Partitions {
    /// Writes a transaction marker to each partition (queued now, in arrival order) and
    /// answers once every marker is durable: the coordinator completes a transaction only when
    /// each of its partitions has ended it.
    pub fn write_markers(
        self: &Rc<Self>,
        parts: Vec<(String, i32, Marker)>,
    ) -> LocalBoxFuture<'static, Vec<Result<(), LogError>>> {
        let queued: Vec<_> = parts
            .into_iter()
            .map(|(topic, partition, marker)| {
                self.lookup(&topic, partition)
                    .and_then(|log| log.enqueue_marker(marker))
            })
            .collect();
        let this = self.clone();
        Box::pin(async move {
            let written = this.written(queued, Some(Sync::Always)).await;
            written.into_iter().map(|w| w.map(|_| ())).collect()
        })
    }

    /// The producers each partition knows (DescribeProducers).
    pub fn producers(
        &self,
        parts: &[(String, i32)],
    ) -> Vec<Result<Vec<super::producers::ProducerView>, LogError>> {
        parts
            .iter()
            .map(|(t, p)| self.lookup(t, *p).map(|log| log.producers()))
            .collect()
    }
}

impl Partitions {
    /// DeleteRecords on each part `(topic, partition, offset)`: the new low watermarks.
    pub fn delete_records(
        self: &Rc<Self>,
        parts: Vec<(String, i32, i64)>,
    ) -> LocalBoxFuture<'static, Vec<Result<i64, LogError>>> {
        let this = self.clone();
        Box::pin(async move {
            let mut out = Vec::with_capacity(parts.len());
            for (topic, partition, offset) in parts {
                out.push(match this.lookup(&topic, partition) {
                    Ok(log) => log.delete_records(offset).await,
                    Err(e) => Err(e),
                });
            }
            out
        })
    }
}
