//! Produce: batches are validated and appended on the shard owning each partition; acks=1/all
//! are answered once the shard's group commit has synced them, acks=0 not at all.
//!
//! The request is split by owner and one message goes to each owning shard, in request order,
//! before the connection reads its next request: pipelined produce requests from one
//! connection are appended in the order they were sent.

use std::rc::Rc;

use bytes::Bytes;
use futures::channel::oneshot;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::ResponseError;

use super::{spawn, Ctx, Reply, ReplyTask, Versions};
use crate::log::batch::{self, BatchError};
use crate::log::LogError;
use crate::shard::{Shard, ShardRequest};

pub const VERSIONS: Versions = Versions { min: 3, max: 9 };

/// One partition's records, addressed by its slot in the request (topic index, partition index).
pub struct OwnerPart {
    pub slot: (usize, usize),
    pub topic: String,
    pub partition: i32,
    pub records: Option<Bytes>,
}

/// The partitions of one produce request that one shard owns.
pub struct OwnerProduce {
    pub acks: i16,
    pub parts: Vec<OwnerPart>,
    pub reply: oneshot::Sender<Vec<PartResult>>,
}

#[derive(Debug, Clone)]
pub struct PartResult {
    pub slot: (usize, usize),
    /// `None` when the records were appended (and synced, for acks=1/all).
    pub error: Option<ResponseError>,
    pub base_offset: i64,
    pub log_start_offset: i64,
    pub message: Option<String>,
}

impl PartResult {
    fn error(slot: (usize, usize), error: ResponseError, message: impl Into<String>) -> PartResult {
        PartResult {
            slot,
            error: Some(error),
            base_offset: -1,
            log_start_offset: -1,
            message: Some(message.into()),
        }
    }
}

/// Maps a log failure to the partition's error code.
pub fn log_error_code(e: &LogError) -> ResponseError {
    match e {
        LogError::OffsetOutOfRange => ResponseError::OffsetOutOfRange,
        LogError::Storage(_) => ResponseError::KafkaStorageError,
        LogError::Closed => ResponseError::NotLeaderOrFollower,
    }
}

fn batch_error_code(e: &BatchError) -> ResponseError {
    match e {
        BatchError::Corrupt(_) => ResponseError::CorruptMessage,
        BatchError::TooLarge { .. } => ResponseError::MessageTooLarge,
        BatchError::Invalid(_) => ResponseError::InvalidRecord,
    }
}

/// The in-order part: route each partition to its owner. Returns the task that gathers the
/// answers and builds the response.
pub async fn start(shard: &Rc<Shard>, ctx: Ctx, req: ProduceRequest) -> ReplyTask {
    let acks = req.acks;
    let catalog = shard.catalog();
    let mut owned = Vec::new();
    let mut immediate: Vec<PartResult> = Vec::new();
    let shape: Vec<(String, Vec<i32>)> = req
        .topic_data
        .iter()
        .map(|t| {
            (
                t.name.0.to_string(),
                t.partition_data.iter().map(|p| p.index).collect(),
            )
        })
        .collect();
    for (ti, t) in req.topic_data.into_iter().enumerate() {
        let topic = t.name.0.to_string();
        let known = catalog.topic(&topic).map(|t| t.partitions);
        for (pi, p) in t.partition_data.into_iter().enumerate() {
            let slot = (ti, pi);
            if !matches!(acks, -1..=1) {
                immediate.push(PartResult::error(
                    slot,
                    ResponseError::InvalidRequiredAcks,
                    "acks must be -1, 0 or 1",
                ));
                continue;
            }
            if crate::catalog::is_internal(&topic) {
                // Only the broker writes its internal topics (Kafka answers the same).
                immediate.push(PartResult::error(
                    slot,
                    ResponseError::InvalidTopicException,
                    "cannot produce to an internal topic",
                ));
                continue;
            }
            match known {
                Some(n) if p.index >= 0 && p.index < n => {
                    owned.push((
                        shard.owner(&topic, p.index),
                        OwnerPart {
                            slot,
                            topic: topic.clone(),
                            partition: p.index,
                            records: p.records,
                        },
                    ));
                }
                _ => immediate.push(PartResult::error(
                    slot,
                    ResponseError::UnknownTopicOrPartition,
                    "unknown topic or partition",
                )),
            }
        }
    }
    let pending = shard
        .scatter(owned, |parts, reply| {
            ShardRequest::Produce(OwnerProduce { acks, parts, reply })
        })
        .await;
    spawn(async move {
        let mut results = immediate;
        for rx in pending {
            // A dropped reply means the owner is stopping: the client retries elsewhere.
            results.extend(rx.await.unwrap_or_default());
        }
        if acks == 0 {
            return Reply::Nothing;
        }
        ctx.reply(&build_response(&shape, results, ctx.version))
    })
}

fn build_response(
    shape: &[(String, Vec<i32>)],
    results: Vec<PartResult>,
    version: i16,
) -> ProduceResponse {
    let mut topics: Vec<TopicProduceResponse> = shape
        .iter()
        .map(|(name, parts)| {
            TopicProduceResponse::default()
                .with_name(super::topic_name(name))
                .with_partition_responses(
                    parts
                        .iter()
                        .map(|&index| {
                            PartitionProduceResponse::default()
                                .with_index(index)
                                .with_error_code(ResponseError::NotLeaderOrFollower.code())
                                .with_base_offset(-1)
                                .with_log_append_time_ms(-1)
                        })
                        .collect(),
                )
        })
        .collect();
    for r in results {
        let Some(p) = topics
            .get_mut(r.slot.0)
            .and_then(|t| t.partition_responses.get_mut(r.slot.1))
        else {
            continue;
        };
        p.error_code = r.error.map_or(0, |e| e.code());
        p.base_offset = r.base_offset;
        // Fields newer than the request's version must stay at their defaults.
        if version >= 5 {
            p.log_start_offset = r.log_start_offset;
        }
        if version >= 8 {
            p.error_message = r.message.map(super::str_bytes);
        }
    }
    ProduceResponse::default().with_responses(topics)
}

/// On the owning shard: validate and queue every part now (keeping arrival order), then wait
/// for the writes and, for acks=1/all, the group commit.
pub fn on_owner(shard: &Rc<Shard>, req: OwnerProduce) {
    let mut waits = Vec::with_capacity(req.parts.len());
    let mut results = Vec::with_capacity(req.parts.len());
    for part in req.parts {
        let slot = part.slot;
        let Some(log) = shard.partition(&part.topic, part.partition) else {
            results.push(PartResult::error(
                slot,
                shard.missing_partition_error(&part.topic, part.partition),
                "partition is not open on its shard",
            ));
            continue;
        };
        let Some(records) = part.records else {
            results.push(PartResult::error(
                slot,
                ResponseError::CorruptMessage,
                "no records",
            ));
            continue;
        };
        let headers = match batch::validate_produce(&records, log.config().max_message_bytes) {
            Ok(h) => h,
            Err(e) => {
                tracing::debug!(topic = %part.topic, partition = part.partition, error = %e, "rejected produce");
                results.push(PartResult::error(slot, batch_error_code(&e), e.to_string()));
                continue;
            }
        };
        match log.enqueue(records, headers) {
            Ok(rx) => waits.push((slot, log, rx)),
            Err(e) => results.push(PartResult::error(slot, log_error_code(&e), e.to_string())),
        }
    }
    let wait_for_sync = req.acks != 0 && shard.config.group_commit;
    let reply = req.reply;
    glommio::spawn_local(async move {
        let mut synced_needed = false;
        let mut appended = Vec::with_capacity(waits.len());
        for (slot, log, rx) in waits {
            match rx.await.unwrap_or(Err(LogError::Closed)) {
                Ok(outcome) => {
                    synced_needed = true;
                    appended.push((slot, log, outcome));
                }
                Err(e) => results.push(PartResult::error(slot, log_error_code(&e), e.to_string())),
            }
        }
        let sync = if wait_for_sync && synced_needed {
            match appended.first() {
                Some((_, log, _)) => log.durable().await,
                None => Ok(()),
            }
        } else {
            Ok(())
        };
        for (slot, _, outcome) in appended {
            results.push(match &sync {
                Ok(()) => PartResult {
                    slot,
                    error: None,
                    base_offset: outcome.base_offset,
                    log_start_offset: outcome.log_start_offset,
                    message: None,
                },
                Err(e) => PartResult::error(slot, log_error_code(e), e.to_string()),
            });
        }
        let _ = reply.send(results);
    })
    .detach();
}
