//! Fetch: reads whole batches from the owning shards; long-polls (`max_wait_ms`, `min_bytes`)
//! until an append on any requested partition wakes it, or the wait ends. Each owner reads and,
//! with nothing to answer, waits on its own partitions in the same operation
//! (`Partitions::read_or_wait`), so a wake-up costs a read of what changed, not another round
//! of reads of every partition. The response takes the record bytes by reference (from the
//! tail cache or the read buffer) and the connection writes them with a vectored send: no copy
//! of records while the response is built.

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::channel::oneshot;
use futures::future::LocalBoxFuture;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId};
use kafka_protocol::ResponseError;

use super::partitioned::Plan;
use super::{errors, Broker, Ctx, Reply, Versions};
use crate::catalog;
use crate::log::batch;
use crate::log::ops::{ReadAnswer, ReadPart};
use crate::log::{Isolation, Partitions};
use crate::util::scatter::{Pieces, PLACEHOLDER_BYTES_MAX};

/// v0-3 read message format v0/v1: decoded in `old_versions`, answered down-converted
/// (`legacy_reply`).
pub const VERSIONS: Versions = Versions { min: 0, max: 12 };

/// The longest a fetch waits for data, whatever the client asks: bounds how long a request
/// (and the connection behind it) can be held, and so how long a shutdown drains.
pub const FETCH_MAX_WAIT_CAP_MS: u64 = 30_000;

/// One partition's answer.
pub struct Answer {
    pub error: Option<ResponseError>,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// Whole batches, in memory or in segment files.
    pub records: Pieces,
    /// read_committed: the aborted transactions among the records, as (producer id, first
    /// offset); empty for read_uncommitted. (Kafka sends null there; kafka-python 3 then reads
    /// nothing at all from the partition.)
    pub aborted: Vec<(i64, i64)>,
}

impl Answer {
    fn error(e: ResponseError) -> Answer {
        Answer {
            error: Some(e),
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            records: Pieces::default(),
            aborted: Vec::new(),
        }
    }

    fn from_read(r: ReadAnswer, isolation: Isolation) -> Answer {
        Answer {
            error: r.error.as_ref().map(errors::log),
            high_watermark: r.high_watermark,
            last_stable_offset: r.last_stable_offset,
            log_start_offset: r.log_start_offset,
            records: r.records,
            aborted: match isolation {
                Isolation::ReadCommitted => r
                    .aborted
                    .iter()
                    .map(|a| (a.producer_id, a.first_offset))
                    .collect(),
                Isolation::ReadUncommitted => Vec::new(),
            },
        }
    }
}

pub async fn handle(broker: &Rc<Broker>, ctx: Ctx, req: FetchRequest) -> Reply {
    let catalog = broker.catalog.get();
    let shard = &broker.shard;
    let wait_ms = u64::try_from(req.max_wait_ms)
        .unwrap_or(0)
        .min(FETCH_MAX_WAIT_CAP_MS);
    let deadline = Instant::now() + Duration::from_millis(wait_ms);
    let min_bytes = usize::try_from(req.min_bytes).unwrap_or(0);
    // The request's limit within the broker's (`fetch.max.bytes`), as Kafka's KafkaApis does.
    let response_max = req
        .max_bytes
        .min(i32::try_from(shard.config.fetch_max_bytes).unwrap_or(i32::MAX));
    let max_bytes = usize::try_from(response_max).unwrap_or(0);
    let isolation = if req.isolation_level == 1 {
        Isolation::ReadCommitted
    } else {
        Isolation::ReadUncommitted
    };

    // Partitions we cannot serve are answered right away.
    let mut plan: Plan<ReadPart, Answer> = Plan::new(shard.count);
    for t in &req.topics {
        let topic = t.topic.0.to_string();
        plan.topic(topic.clone());
        let readable = super::topic_authorized(
            &catalog,
            &shard.config,
            &ctx,
            crate::catalog::acl::OP_READ,
            &topic,
        );
        for p in &t.partitions {
            if !readable {
                plan.answer(
                    p.partition,
                    Answer::error(ResponseError::TopicAuthorizationFailed),
                );
                continue;
            }
            if !catalog.has_partition(&topic, p.partition) {
                plan.answer(
                    p.partition,
                    Answer::error(ResponseError::UnknownTopicOrPartition),
                );
                continue;
            }
            let part = ReadPart {
                topic: topic.clone(),
                partition: p.partition,
                offset: p.fetch_offset,
                // No partition may fill more than the whole response may hold (the trim
                // below then fits the sum, as Kafka does), nor more than a stand-in of the
                // response frame can stand for (a larger answer would be read into memory).
                max_bytes: u32::try_from(p.partition_max_bytes.min(response_max))
                    .unwrap_or(0)
                    .min(PLACEHOLDER_BYTES_MAX as u32),
                isolation,
            };
            plan.route(
                p.partition,
                catalog::owner_shard(&topic, p.partition, shard.count),
                part,
            );
        }
    }

    // Each owner reads its partitions and, short of min_bytes, waits on them itself; once the
    // owners that answered bring min_bytes (or an error), the others' waits stop and they
    // answer at once with what they have. Short of min_bytes in all, it goes round again, each
    // owner waiting for data past what it read.
    let answers = loop {
        let now = Instant::now();
        let wait = deadline.saturating_duration_since(now);
        let wait = if shard.stopping() {
            Duration::ZERO
        } else {
            wait
        };
        let (stops, mut waits): (Vec<_>, Vec<_>) =
            (0..shard.count).map(|_| oneshot::channel::<()>()).unzip();
        waits.reverse();
        let scattered = plan
            .scatter_copies(shard, |parts| {
                let stop = waits.pop().unwrap_or_else(|| oneshot::channel().1);
                move |partitions: &Rc<Partitions>| {
                    let read = partitions.read_or_wait(parts, min_bytes, wait, stop);
                    Box::pin(async move {
                        let answers = read.await.into_iter();
                        answers.map(|r| Answer::from_read(r, isolation)).collect()
                    }) as LocalBoxFuture<'static, Vec<Answer>>
                }
            })
            .await;
        let stops = std::cell::RefCell::new(Some(stops));
        let stop_all = || {
            let taken = stops.borrow_mut().take();
            for s in taken.into_iter().flatten() {
                let _ = s.send(());
            }
        };
        let so_far = std::cell::Cell::new(0usize);
        let gathered = scattered.gather_watching(|answers| {
            so_far.set(so_far.get() + answers.iter().map(|a| a.records.len()).sum::<usize>());
            if so_far.get() >= min_bytes.max(1) || answers.iter().any(|a| a.error.is_some()) {
                stop_all();
            }
        });
        futures::pin_mut!(gathered);
        let read = {
            let stopping = shard.stopped();
            futures::pin_mut!(stopping);
            match futures::future::select(gathered, stopping).await {
                futures::future::Either::Left((read, _)) => read,
                futures::future::Either::Right(((), gathered)) => {
                    // The broker is stopping: the waits end now, with what they have.
                    stop_all();
                    gathered.await
                }
            }
        };
        let total: usize = read.iter().map(|(_, r)| r.records.len()).sum();
        let any_error = read.iter().any(|(_, r)| r.error.is_some());
        if total >= min_bytes.max(1)
            || any_error
            || Instant::now() >= deadline
            || plan.nothing_routed()
            || shard.stopping()
        {
            break read;
        }
    };
    let missing = || Answer::error(ResponseError::NotLeaderOrFollower);
    let mut topics = plan.respond(answers, missing);
    trim_to_max_bytes(
        topics
            .iter_mut()
            .flat_map(|(_, ps)| ps.iter_mut().map(|(_, a)| a)),
        max_bytes,
    );
    if ctx.version < 4 {
        return legacy_reply(&ctx, &req, topics).await;
    }
    // The record bytes go into the frame by reference: the response holds a stand-in for each
    // partition's records, which the frame replaces by the records' pieces.
    let records: Vec<(Bytes, Pieces)> = topics
        .iter_mut()
        .flat_map(|(_, ps)| ps.iter_mut().map(|(_, a)| a))
        .map(|a| {
            let stand_in = a.records.stand_in().unwrap_or_else(|| {
                // Longer than any stand-in: read into memory (blocking). Reads stop at
                // PLACEHOLDER_BYTES_MAX, so only a single batch larger than that (KIP-74: the
                // first batch goes whole) comes here.
                let bytes = a.records.to_bytes().unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "cannot read a batch larger than a frame stand-in; the partition answers without records");
                    Bytes::new()
                });
                let ends = batch::batch_ends(&bytes);
                a.records =
                    Pieces::memory(bytes.slice(..ends.last().map_or(0, |&e| e as usize)), ends);
                a.records.stand_in().unwrap_or_default()
            });
            (stand_in, a.records.clone())
        })
        .collect();
    ctx.reply_referencing(
        &build_response(topics, &records, ctx.version),
        records.iter().cloned(),
    )
}

/// The answer to Fetch v0-3: each partition's batches down-converted to message format v0
/// (Fetch v0-1) or v1 (v2-3), in memory (`message_sets::down_convert`). This costs CPU on every
/// fetch (decompressing and often compressing again) and reads file ranges into memory: old
/// clients get no zero-copy path, as with Kafka. The reads and the conversion run on the
/// shard's blocking pool, off the reactor. A partition whose batches cannot be read or
/// converted answers CORRUPT_MESSAGE.
async fn legacy_reply(
    ctx: &Ctx,
    req: &FetchRequest,
    topics: Vec<(String, Vec<(i32, Answer)>)>,
) -> Reply {
    use super::message_sets;
    use super::old_versions::LegacyFetchResponse;
    let magic = if ctx.version >= 2 { 1 } else { 0 };
    let fetch_offset = |topic: &str, partition: i32| {
        req.topics
            .iter()
            .filter(|t| t.topic.0.as_str() == topic)
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition == partition)
            .map_or(0, |p| p.fetch_offset)
    };
    let work: Vec<(Pieces, i64)> = topics
        .iter()
        .flat_map(|(name, ps)| {
            ps.iter()
                .map(move |(index, a)| (a.records.clone(), fetch_offset(name, *index)))
        })
        .collect();
    let mut converted = crate::util::blocking::run(move || {
        work.into_iter()
            .map(|(records, offset)| {
                let bytes = records.to_bytes().map_err(|e| e.to_string())?;
                message_sets::down_convert(&bytes, offset, magic).map_err(|e| e.to_string())
            })
            .collect::<Vec<_>>()
    })
    .await
    .into_iter();
    let topics = topics
        .into_iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|(index, a)| {
                    let converted = converted
                        .next()
                        .unwrap_or_else(|| Err("no conversion".to_string()));
                    let (error, set) = match converted {
                        Ok(set) => (a.error.map_or(0, |e| e.code()), Bytes::from(set)),
                        Err(e) => {
                            tracing::warn!(topic = %name, partition = index, error = %e, "cannot down-convert for an old fetch");
                            (ResponseError::CorruptMessage.code(), Bytes::new())
                        }
                    };
                    (index, error, a.high_watermark, set)
                })
                .collect();
            (name, partitions)
        })
        .collect();
    ctx.reply(&LegacyFetchResponse { topics })
}

/// Enforces the response's `max_bytes` in request order, as Kafka does (KIP-74): each
/// partition keeps the whole batches that fit in what is left, and only the first batch of the
/// first partition with data may exceed the limit (so a consumer always makes progress).
fn trim_to_max_bytes<'a>(answers: impl Iterator<Item = &'a mut Answer>, max_bytes: usize) {
    let mut total = 0usize;
    for r in answers {
        if r.records.is_empty() {
            continue;
        }
        let left = max_bytes.saturating_sub(total);
        let mut keep = r.records.whole_within(left);
        if keep == 0 && total == 0 {
            keep = r.records.first_unit();
        }
        r.records.truncate(keep);
        total += keep;
    }
}

/// The response, with `stand_ins` (one per partition, in order) where the records go.
fn build_response(
    topics: Vec<(String, Vec<(i32, Answer)>)>,
    stand_ins: &[(Bytes, Pieces)],
    version: i16,
) -> FetchResponse {
    let mut stand_ins = stand_ins.iter().map(|(b, _)| b.clone());
    let topics = topics
        .into_iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|(index, r)| {
                    let aborted = r
                        .aborted
                        .into_iter()
                        .map(|(producer_id, first_offset)| {
                            AbortedTransaction::default()
                                .with_producer_id(ProducerId(producer_id))
                                .with_first_offset(first_offset)
                        })
                        .collect();
                    PartitionData::default()
                        .with_partition_index(index)
                        .with_error_code(r.error.map_or(0, |e| e.code()))
                        .with_high_watermark(r.high_watermark)
                        .with_last_stable_offset(r.last_stable_offset)
                        .with_log_start_offset(if version >= 5 { r.log_start_offset } else { -1 })
                        .with_aborted_transactions(Some(aborted))
                        .with_preferred_read_replica(BrokerId(-1))
                        .with_records(Some(stand_ins.next().unwrap_or_default()))
                })
                .collect();
            FetchableTopicResponse::default()
                .with_topic(super::topic_name(&name))
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

    fn result(records: Bytes) -> Answer {
        let ends = batch::batch_ends(&records);
        Answer {
            error: None,
            high_watermark: 0,
            last_stable_offset: 0,
            log_start_offset: 0,
            records: Pieces::memory(records, ends),
            aborted: Vec::new(),
        }
    }

    fn sizes(results: &[Answer]) -> Vec<usize> {
        results.iter().map(|r| r.records.len()).collect()
    }

    /// Whole batches fill the response limit in request order; later partitions get nothing.
    #[test]
    fn whole_batches_fit_the_response_limit_in_order() {
        let (three, one) = batches(3, 100);
        let mut results = vec![result(three.clone()), result(three.clone()), result(three)];
        trim_to_max_bytes(results.iter_mut(), 2 * one + one / 2);
        assert_eq!(sizes(&results), [2 * one, 0, 0]);
    }

    /// The first batch with data goes out whole even when it alone exceeds the limit (KIP-74).
    #[test]
    fn the_first_batch_goes_out_whole_even_over_the_limit() {
        let (big, one) = batches(2, 5000);
        let (small, _) = batches(1, 10);
        let mut results = vec![result(Bytes::new()), result(big), result(small)];
        trim_to_max_bytes(results.iter_mut(), 100);
        assert_eq!(sizes(&results), [0, one, 0]);
    }
}
