//! AddPartitionsToTxn: puts partitions in a producer's transaction before it writes to them.
//! v0-3 come from producers, one transaction per request. v4+ (KIP-890) batch transactions;
//! their `verify_only` form asks whether partitions are already in the open transaction (how
//! a partition leader refuses a late write of an ended transaction), without adding them.

use std::rc::Rc;

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};
use kafka_protocol::ResponseError;

use super::{by_topic, errors, name, topic_name, Broker, Ctx, Reply, Versions};
use crate::catalog::{self, Catalog};
use crate::txn::{self, TxnError};

/// v5 (KIP-890 part 2) is Kafka 4's; Kafka 3.9 serves 0-4.
pub const VERSIONS: Versions = Versions { min: 0, max: 4 };

/// Per partition of one transaction: the topic, the partition and its error code.
type Results = Vec<(String, i32, i16)>;

pub async fn handle(broker: &Rc<Broker>, ctx: Ctx, req: AddPartitionsToTxnRequest) -> Reply {
    let catalog = broker.catalog.get();
    if ctx.version <= 3 {
        let results = add(
            broker,
            &catalog,
            req.v3_and_below_transactional_id.0.to_string(),
            (
                req.v3_and_below_producer_id.0,
                req.v3_and_below_producer_epoch,
            ),
            &req.v3_and_below_topics,
            false,
        )
        .await;
        return ctx.reply(
            &AddPartitionsToTxnResponse::default()
                .with_results_by_topic_v3_and_below(topic_results(results)),
        );
    }
    let mut by_txn = Vec::with_capacity(req.transactions.len());
    for t in &req.transactions {
        let id = t.transactional_id.0.to_string();
        let producer = (t.producer_id.0, t.producer_epoch);
        let results = add(broker, &catalog, id, producer, &t.topics, t.verify_only).await;
        by_txn.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(t.transactional_id.clone())
                .with_topic_results(topic_results(results)),
        );
    }
    ctx.reply(&AddPartitionsToTxnResponse::default().with_results_by_transaction(by_txn))
}

/// Adds (or, `verify_only`, checks) one transaction's partitions. Unknown partitions fail
/// alone; the others then get OPERATION_NOT_ATTEMPTED, as Kafka answers.
async fn add(
    broker: &Rc<Broker>,
    catalog: &Catalog,
    id: String,
    producer: (i64, i16),
    topics: &[AddPartitionsToTxnTopic],
    verify_only: bool,
) -> Results {
    let parts: Vec<(String, i32)> = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (name(&t.name), *p)))
        .collect();
    let unknown: Vec<bool> = parts
        .iter()
        .map(|(t, p)| !catalog.has_partition(t, *p) || catalog::is_internal(t))
        .collect();
    if unknown.iter().any(|u| *u) {
        return parts
            .into_iter()
            .zip(unknown)
            .map(|((t, p), u)| {
                let e = if u {
                    ResponseError::UnknownTopicOrPartition
                } else {
                    ResponseError::OperationNotAttempted
                };
                (t, p, e.code())
            })
            .collect();
    }
    let shard = &broker.shard;
    if verify_only {
        let answer = txn::client::verify(shard, catalog, id, producer, parts.clone()).await;
        return match answer {
            Ok(found) => parts
                .into_iter()
                .zip(found)
                .map(|((t, p), ok)| {
                    let code = if ok {
                        0
                    } else {
                        ResponseError::InvalidTxnState.code()
                    };
                    (t, p, code)
                })
                .collect(),
            Err(e) => all(parts, &e),
        };
    }
    match txn::client::add_partitions(shard, catalog, id, producer, parts.clone()).await {
        Ok(()) => parts.into_iter().map(|(t, p)| (t, p, 0)).collect(),
        Err(e) => all(parts, &e),
    }
}

fn all(parts: Vec<(String, i32)>, e: &TxnError) -> Results {
    let code = errors::txn(e).code();
    parts.into_iter().map(|(t, p)| (t, p, code)).collect()
}

fn topic_results(results: Results) -> Vec<AddPartitionsToTxnTopicResult> {
    by_topic(results.into_iter().map(|(t, p, c)| (t, (p, c))))
        .into_iter()
        .map(|(t, parts)| {
            AddPartitionsToTxnTopicResult::default()
                .with_name(topic_name(&t))
                .with_results_by_partition(
                    parts
                        .into_iter()
                        .map(|(p, c)| {
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(p)
                                .with_partition_error_code(c)
                        })
                        .collect(),
                )
        })
        .collect()
}
