//! Fetch: reads whole batches from the owning shards; long-polls (`max_wait_ms`, `min_bytes`)
//! until an append on any requested partition wakes it, or the wait ends.

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::channel::oneshot;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
use kafka_protocol::ResponseError;

use super::{Ctx, Reply, Versions};
use crate::log::batch;
use crate::shard::{Shard, ShardRequest};

pub const VERSIONS: Versions = Versions { min: 4, max: 12 };

/// The longest a fetch waits for data, whatever the client asks: bounds how long a request
/// (and the connection behind it) can be held, and so how long a shutdown drains.
pub const FETCH_MAX_WAIT_CAP_MS: u64 = 30_000;

#[derive(Clone)]
pub struct FetchPart {
    pub slot: usize,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub max_bytes: u32,
}

pub struct OwnerFetch {
    pub parts: Vec<FetchPart>,
    pub reply: oneshot::Sender<Vec<PartResult>>,
}

/// Wait until any of `parts` has data past its offset, or `timeout`.
pub struct OwnerWait {
    pub parts: Vec<(String, i32, i64)>,
    pub timeout: Duration,
    pub reply: oneshot::Sender<()>,
}

pub struct PartResult {
    pub slot: usize,
    pub error: Option<ResponseError>,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub records: Bytes,
}

impl PartResult {
    fn error(slot: usize, e: ResponseError) -> PartResult {
        PartResult {
            slot,
            error: Some(e),
            high_watermark: -1,
            log_start_offset: -1,
            records: Bytes::new(),
        }
    }
}

pub async fn handle(shard: &Rc<Shard>, ctx: Ctx, req: FetchRequest) -> Reply {
    let catalog = shard.catalog();
    let wait_ms = u64::try_from(req.max_wait_ms)
        .unwrap_or(0)
        .min(FETCH_MAX_WAIT_CAP_MS);
    let deadline = Instant::now() + Duration::from_millis(wait_ms);
    let min_bytes = usize::try_from(req.min_bytes).unwrap_or(0);
    let max_bytes = usize::try_from(req.max_bytes).unwrap_or(0);

    // Slots in request order; partitions we cannot serve are answered right away.
    let mut layout: Vec<(String, Vec<i32>)> = Vec::with_capacity(req.topics.len());
    let mut parts = Vec::new();
    let mut results: Vec<Option<PartResult>> = Vec::new();
    for t in &req.topics {
        let topic = t.topic.0.to_string();
        let known = catalog.topic(&topic).map(|t| t.partitions);
        let mut indexes = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let slot = results.len();
            indexes.push(p.partition);
            match known {
                Some(n) if p.partition >= 0 && p.partition < n => {
                    results.push(None);
                    parts.push(FetchPart {
                        slot,
                        topic: topic.clone(),
                        partition: p.partition,
                        offset: p.fetch_offset,
                        // No partition may fill more than the whole response may hold
                        // (the trim below then fits the sum, as Kafka does).
                        max_bytes: u32::try_from(p.partition_max_bytes.min(req.max_bytes))
                            .unwrap_or(0),
                    });
                }
                _ => results.push(Some(PartResult::error(
                    slot,
                    ResponseError::UnknownTopicOrPartition,
                ))),
            }
        }
        layout.push((topic, indexes));
    }

    loop {
        let read = read_all(shard, &parts).await;
        let total: usize = read.iter().map(|r| r.records.len()).sum();
        let any_error = read.iter().any(|r| r.error.is_some());
        let now = Instant::now();
        if total >= min_bytes.max(1)
            || any_error
            || now >= deadline
            || parts.is_empty()
            || shard.stopping.get()
        {
            for r in read {
                let slot = r.slot;
                results[slot] = Some(r);
            }
            break;
        }
        // Nothing (or not enough) yet: wait for an append on any of the partitions, then read again.
        let waiting: Vec<FetchPart> = parts
            .iter()
            .map(|p| {
                let mut p = p.clone();
                if let Some(r) = read.iter().find(|r| r.slot == p.slot) {
                    p.offset = p.offset.max(r.high_watermark);
                }
                p
            })
            .collect();
        wait_any(shard, &waiting, deadline - now).await;
    }
    trim_to_max_bytes(&mut results, max_bytes);
    ctx.reply(&build_response(&layout, results, ctx.version))
}

/// Enforces the response's `max_bytes` in request order, as Kafka does (KIP-74): each
/// partition keeps the whole batches that fit in what is left, and only the first batch of the
/// first partition with data may exceed the limit (so a consumer always makes progress).
fn trim_to_max_bytes(results: &mut [Option<PartResult>], max_bytes: usize) {
    let mut total = 0usize;
    for r in results.iter_mut().flatten() {
        if r.records.is_empty() {
            continue;
        }
        let left = max_bytes.saturating_sub(total);
        let mut keep = batch::whole_batches_within(&r.records, left);
        if keep == 0 && total == 0 {
            keep = batch::BatchHeader::parse(&r.records).map_or(r.records.len(), |h| {
                (h.total_bytes as usize).min(r.records.len())
            });
        }
        r.records = r.records.slice(..keep);
        total += keep;
    }
}

/// Reads every part from its owner, all owners at once.
async fn read_all(shard: &Rc<Shard>, parts: &[FetchPart]) -> Vec<PartResult> {
    let owned = parts
        .iter()
        .map(|p| (shard.owner(&p.topic, p.partition), p.clone()));
    let replies = shard
        .scatter(owned, |parts, reply| {
            ShardRequest::Fetch(OwnerFetch { parts, reply })
        })
        .await;
    let mut out = Vec::with_capacity(parts.len());
    for r in futures::future::join_all(replies).await {
        out.extend(r.unwrap_or_default());
    }
    out
}

/// Returns when any owner reports data on one of `parts`, or after `timeout`.
async fn wait_any(shard: &Rc<Shard>, parts: &[FetchPart], timeout: Duration) {
    let owned = parts.iter().map(|p| {
        (
            shard.owner(&p.topic, p.partition),
            (p.topic.clone(), p.partition, p.offset),
        )
    });
    let waits = shard
        .scatter(owned, |parts, reply| {
            ShardRequest::FetchWait(OwnerWait {
                parts,
                timeout,
                reply,
            })
        })
        .await;
    if waits.is_empty() {
        return;
    }
    let stop = shard.stop_notify.notified();
    futures::pin_mut!(stop);
    // Dropping the other receivers cancels the other owners' waits.
    futures::future::select(futures::future::select_all(waits), stop).await;
}

/// On the owning shard: read each part.
pub fn on_owner(shard: &Rc<Shard>, req: OwnerFetch) {
    let shard = shard.clone();
    glommio::spawn_local(async move {
        let mut out = Vec::with_capacity(req.parts.len());
        for p in req.parts {
            let Some(log) = shard.partition(&p.topic, p.partition) else {
                out.push(PartResult::error(
                    p.slot,
                    shard.missing_partition_error(&p.topic, p.partition),
                ));
                continue;
            };
            out.push(match log.read(p.offset, p.max_bytes).await {
                Ok(r) => PartResult {
                    slot: p.slot,
                    error: None,
                    high_watermark: r.high_watermark,
                    log_start_offset: r.log_start_offset,
                    records: r.records,
                },
                Err(e) => {
                    if let crate::log::LogError::Storage(why) = &e {
                        tracing::error!(topic = %p.topic, partition = p.partition, error = %why, "fetch read failed");
                    }
                    PartResult {
                    slot: p.slot,
                    error: Some(super::produce::log_error_code(&e)),
                    high_watermark: log.high_watermark(),
                    log_start_offset: log.log_start_offset(),
                    records: Bytes::new(),
                }
                }
            });
        }
        let _ = req.reply.send(out);
    })
    .detach();
}

/// On the owning shard: wait for data on any of the parts, the timeout, or the requester giving up.
pub fn wait_on_owner(shard: &Rc<Shard>, req: OwnerWait) {
    let shard = shard.clone();
    glommio::spawn_local(async move {
        let OwnerWait {
            parts,
            timeout,
            mut reply,
        } = req;
        let logs: Vec<_> = parts
            .iter()
            .filter_map(|(t, p, o)| shard.partition(t, *p).map(|l| (l, *o)))
            .collect();
        if logs.is_empty() {
            let _ = reply.send(());
            return;
        }
        {
            let waits = futures::future::select_all(
                logs.iter()
                    .map(|(l, o)| Box::pin(l.wait_for_data(*o, timeout))),
            );
            let cancelled = reply.cancellation();
            futures::pin_mut!(cancelled);
            futures::future::select(waits, cancelled).await;
        }
        let _ = reply.send(());
    })
    .detach();
}

fn build_response(
    layout: &[(String, Vec<i32>)],
    results: Vec<Option<PartResult>>,
    version: i16,
) -> FetchResponse {
    let mut results = results.into_iter();
    let topics = layout
        .iter()
        .map(|(name, indexes)| {
            let partitions = indexes
                .iter()
                .map(|&index| {
                    let r = results
                        .next()
                        .flatten()
                        .unwrap_or_else(|| PartResult::error(0, ResponseError::UnknownServerError));
                    PartitionData::default()
                        .with_partition_index(index)
                        .with_error_code(r.error.map_or(0, |e| e.code()))
                        .with_high_watermark(r.high_watermark)
                        .with_last_stable_offset(r.high_watermark)
                        .with_log_start_offset(if version >= 5 { r.log_start_offset } else { -1 })
                        .with_aborted_transactions(Some(Vec::new()))
                        .with_preferred_read_replica(BrokerId(-1))
                        .with_records(Some(r.records))
                })
                .collect();
            FetchableTopicResponse::default()
                .with_topic(super::topic_name(name))
                .with_partitions(partitions)
        })
        .collect();
    FetchResponse::default().with_responses(topics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::Compression;

    /// `n` batches of one record with a `value_bytes` value each, as stored.
    fn batches(n: usize, value_bytes: usize) -> (Bytes, usize) {
        let mut out = Vec::new();
        let mut one = 0;
        for _ in 0..n {
            let b = batch::encode_batch(
                [(None, Some(Bytes::from(vec![b'x'; value_bytes])), 0)],
                Compression::None,
            );
            one = b.len();
            out.extend_from_slice(&b);
        }
        (Bytes::from(out), one)
    }

    fn result(slot: usize, records: Bytes) -> Option<PartResult> {
        Some(PartResult {
            slot,
            error: None,
            high_watermark: 0,
            log_start_offset: 0,
            records,
        })
    }

    fn sizes(results: &[Option<PartResult>]) -> Vec<usize> {
        results.iter().flatten().map(|r| r.records.len()).collect()
    }

    #[test]
    fn whole_batches_fit_the_response_limit_in_order() {
        let (three, one) = batches(3, 100);
        let mut results = vec![
            result(0, three.clone()),
            result(1, three.clone()),
            result(2, three),
        ];
        trim_to_max_bytes(&mut results, 2 * one + one / 2);
        assert_eq!(sizes(&results), [2 * one, 0, 0]);
    }

    #[test]
    fn the_first_batch_goes_out_whole_even_over_the_limit() {
        let (big, one) = batches(2, 5000);
        let (small, _) = batches(1, 10);
        let mut results = vec![result(0, Bytes::new()), result(1, big), result(2, small)];
        trim_to_max_bytes(&mut results, 100);
        assert_eq!(sizes(&results), [0, one, 0]);
    }
}
