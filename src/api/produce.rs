//! Produce: batches are validated and appended on the shard owning each partition; acks=1/all
//! are answered once the shard's group commit has synced them, acks=0 not at all.
//!
//! The request is split by owner and one operation goes to each owning shard, in request
//! order, before the connection reads its next request: pipelined produce requests from one
//! connection are appended in the order they were sent.

use std::rc::Rc;

use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::ResponseError;

use super::partitioned::Plan;
use super::{errors, spawn, Broker, Ctx, Reply, ReplyTask, Versions};
use crate::catalog;
use crate::log::batch::{BatchError, BatchHeader};
use crate::log::ops::AppendPart;
use crate::log::{LogError, Partitions};
use crate::txn::{self, TxnError};

/// v0-2 carry message sets (format v0/v1), up-converted in `old_versions` (`message_sets`).
pub const VERSIONS: Versions = Versions { min: 0, max: 9 };

/// A partition refused before routing (a message set that could not be up-converted):
/// topic, partition, error and its message.
pub type Refused = (String, i32, ResponseError, String);

/// One partition's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// `None` when the records were appended (and synced, for acks=1/all).
    pub error: Option<ResponseError>,
    pub base_offset: i64,
    pub log_start_offset: i64,
    pub message: Option<String>,
    /// The records refused (KIP-467): their indexes in the batch.
    pub record_errors: Vec<i32>,
}

impl Answer {
    fn error(error: ResponseError, message: impl Into<String>) -> Answer {
        Answer {
            error: Some(error),
            base_offset: -1,
            log_start_offset: -1,
            message: Some(message.into()),
            record_errors: Vec::new(),
        }
    }

    fn log_error(e: &LogError) -> Answer {
        let mut answer = Answer::error(errors::log(e), e.to_string());
        if let LogError::Batch(BatchError::Records { indexes, .. }) = e {
            answer.record_errors = indexes.clone();
        }
        answer
    }
}

/// The in-order part: route each partition to its owner. Returns the task that gathers the
/// answers and builds the response.
pub async fn start(broker: &Rc<Broker>, ctx: Ctx, req: ProduceRequest) -> ReplyTask {
    start_refusing(broker, ctx, req, Vec::new()).await
}

/// `start`, with partitions refused up front (`Refused`) answered with their error.
pub async fn start_refusing(
    broker: &Rc<Broker>,
    ctx: Ctx,
    req: ProduceRequest,
    refused_up_front: Vec<Refused>,
) -> ReplyTask {
    let acks = req.acks;
    let catalog = broker.catalog.get();
    let shard = &broker.shard;
    let refused = match &req.transactional_id {
        Some(id) => verify_transaction(broker, &catalog, id.0.to_string(), &req).await,
        None => Vec::new(),
    };
    let mut plan: Plan<AppendPart, Answer> = Plan::new(shard.count);
    for t in req.topic_data {
        let topic = t.name.0.to_string();
        plan.topic(topic.clone());
        for p in t.partition_data {
            if let Some((_, _, e, message)) = refused_up_front
                .iter()
                .find(|(t, i, _, _)| *t == topic && *i == p.index)
            {
                plan.answer(p.index, Answer::error(*e, message.clone()));
            } else if !matches!(acks, -1..=1) {
                let e = Answer::error(
                    ResponseError::InvalidRequiredAcks,
                    "acks must be -1, 0 or 1",
                );
                plan.answer(p.index, e);
            } else if !super::topic_authorized(
                &catalog,
                &shard.config,
                &ctx,
                catalog::acl::OP_WRITE,
                &topic,
            ) {
                let e = Answer::error(
                    ResponseError::TopicAuthorizationFailed,
                    "not authorized to write to the topic",
                );
                plan.answer(p.index, e);
            } else if catalog::is_internal(&topic) {
                // Only the broker writes its internal topics (Kafka answers the same).
                let e = Answer::error(
                    ResponseError::InvalidTopicException,
                    "cannot produce to an internal topic",
                );
                plan.answer(p.index, e);
            } else if let Some((_, _, e)) = refused
                .iter()
                .find(|(t, i, _)| *t == topic && *i == p.index)
            {
                let e = Answer::error(*e, "the partition is not in the producer's transaction");
                plan.answer(p.index, e);
            } else if !catalog.has_partition(&topic, p.index) {
                let e = Answer::error(
                    ResponseError::UnknownTopicOrPartition,
                    "unknown topic or partition",
                );
                plan.answer(p.index, e);
            } else {
                let owner = catalog::owner_shard(&topic, p.index, shard.count);
                let part = AppendPart {
                    topic: topic.clone(),
                    partition: p.index,
                    records: p.records,
                    frame_bytes: ctx.frame_bytes,
                };
                plan.route(p.index, owner, part);
            }
        }
    }
    let durable = acks != 0;
    let pending = plan
        .scatter(shard, |parts| {
            move |partitions: &Rc<Partitions>| {
                let appended = partitions.append(parts, durable);
                Box::pin(async move {
                    let answers = appended.await.into_iter().map(|r| match r {
                        Ok(o) => Answer {
                            error: None,
                            base_offset: o.base_offset,
                            log_start_offset: o.log_start_offset,
                            message: None,
                            record_errors: Vec::new(),
                        },
                        Err(e) => Answer::log_error(&e),
                    });
                    answers.collect()
                }) as futures::future::LocalBoxFuture<'static, Vec<Answer>>
            }
        })
        .await;
    spawn(async move {
        let answers = pending.gather().await;
        tracing::trace!(correlation_id = ctx.correlation_id, answers = ?answers.iter().map(|(_, a)| a.error).collect::<Vec<_>>(), "produce answered");
        if acks == 0 {
            return Reply::Nothing;
        }
        // An owner that stopped before answering: the client retries elsewhere.
        let missing = || Answer::error(ResponseError::NotLeaderOrFollower, "partition moved");
        let response = build_response(plan.respond(answers, missing), ctx.version);
        if ctx.version < 3 {
            return ctx.reply(&super::old_versions::LegacyProduceResponse(response));
        }
        ctx.reply(&response)
    })
}

fn build_response(topics: Vec<(String, Vec<(i32, Answer)>)>, version: i16) -> ProduceResponse {
    let topics = topics
        .into_iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|(index, a)| {
                    let mut p = PartitionProduceResponse::default()
                        .with_index(index)
                        .with_error_code(a.error.map_or(0, |e| e.code()))
                        .with_base_offset(a.base_offset)
                        .with_log_append_time_ms(-1);
                    // Fields newer than the request's version must stay at their defaults.
                    if version >= 5 {
                        p.log_start_offset = a.log_start_offset;
                    }
                    if version >= 8 {
                        let message = a.message.clone().map(super::str_bytes);
                        p.record_errors = a
                            .record_errors
                            .iter()
                            .map(|i| {
                                BatchIndexAndErrorMessage::default()
                                    .with_batch_index(*i)
                                    .with_batch_index_error_message(message.clone())
                            })
                            .collect();
                        p.error_message = message;
                    }
                    p
                })
                .collect();
            TopicProduceResponse::default()
                .with_name(super::topic_name(&name))
                .with_partition_responses(partitions)
        })
        .collect();
    ProduceResponse::default().with_responses(topics)
}

/// KIP-890 part 1: a transactional producer's batches are written only to partitions that
/// its open transaction includes, as the coordinator answers now. This refuses a late (retried)
/// write of a transaction that has ended, which would otherwise open a transaction no one ends
/// and hold the partition's last stable offset back for good. Returns the refused partitions.
async fn verify_transaction(
    broker: &Rc<Broker>,
    catalog: &crate::catalog::Catalog,
    id: String,
    req: &ProduceRequest,
) -> Vec<(String, i32, ResponseError)> {
    let mut producer = None;
    let mut parts = Vec::new();
    for t in &req.topic_data {
        for p in &t.partition_data {
            let header = p.records.as_deref().and_then(BatchHeader::parse);
            if let Some(h) = header.filter(|h| h.is_transactional() && h.producer_id >= 0) {
                producer = Some((h.producer_id, h.producer_epoch));
                parts.push((t.name.0.to_string(), p.index));
            }
        }
    }
    let Some(producer) = producer else {
        return Vec::new();
    };
    match txn::client::verify(&broker.shard, catalog, id, producer, parts.clone()).await {
        Ok(found) => parts
            .into_iter()
            .zip(found)
            .filter(|(_, ok)| !ok)
            .map(|((t, p), _)| (t, p, ResponseError::InvalidTxnState))
            .collect(),
        Err(e) => {
            // An older epoch is what the partition itself refuses with INVALID_PRODUCER_EPOCH
            // (clients take it as fenced); PRODUCER_FENCED on a produce only aborts.
            let code = match e {
                TxnError::ProducerFenced => ResponseError::InvalidProducerEpoch,
                e => errors::txn(&e),
            };
            parts.into_iter().map(|(t, p)| (t, p, code)).collect()
        }
    }
}
