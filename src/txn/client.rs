//! How other layers reach a transactional id's coordinator: each operation is routed to the
//! shard owning the id's `__transaction_state` partition (Kafka's placement: the id's hash
//! modulo `transaction.state.log.num.partitions`) and answers with its own type.

use std::rc::Rc;

use futures::future::LocalBoxFuture;

use super::coordinator::{TxnCoordinator, TxnView};
use super::error::TxnError;
use super::ids::ProducerIds;
use super::state::{InitRequest, TxnMeta};
use crate::catalog::{self, Catalog, TRANSACTION_STATE_TOPIC};
use crate::shard::Shard;

/// The `__transaction_state` partition of a transactional id, once the topic exists.
pub fn partition_of(catalog: &Catalog, id: &str) -> Option<i32> {
    let topic = catalog.topic(TRANSACTION_STATE_TOPIC)?;
    Some(crate::util::key_partition(id, topic.partitions))
}

/// Runs `op` on the coordinator of `id`, giving it the coordinator and the id's partition.
async fn on_coordinator<R, F>(
    shard: &Rc<Shard>,
    catalog: &Catalog,
    id: &str,
    op: F,
) -> Result<R, TxnError>
where
    R: Send + 'static,
    F: FnOnce(Rc<TxnCoordinator>, i32) -> LocalBoxFuture<'static, Result<R, TxnError>>
        + Send
        + 'static,
{
    let partition = partition_of(catalog, id).ok_or(TxnError::CoordinatorNotAvailable)?;
    let owner = catalog::owner_shard(TRANSACTION_STATE_TOPIC, partition, shard.count);
    shard
        .invoke_on(owner, move |co: &Rc<TxnCoordinator>| {
            match co.serving(partition) {
                Ok(()) => op(co.clone(), partition),
                Err(e) => Box::pin(std::future::ready(Err(e))),
            }
        })
        .await
        .unwrap_or(Err(TxnError::NotCoordinator))
}

/// InitProducerId without a transactional id (an idempotent producer): a fresh producer id
/// from this shard's block, epoch 0, as Kafka answers.
pub async fn new_producer_id(shard: &Rc<Shard>) -> Result<(i64, i16), TxnError> {
    let ids = shard
        .service::<ProducerIds>()
        .ok_or(TxnError::CoordinatorNotAvailable)?;
    let id = ids
        .allocate()
        .await
        .map_err(|e| TxnError::Storage(e.to_string()))?;
    Ok((id, 0))
}

pub async fn init_producer_id(
    shard: &Rc<Shard>,
    catalog: &Catalog,
    id: String,
    req: InitRequest,
) -> Result<(i64, i16), TxnError> {
    let key = id.clone();
    on_coordinator(shard, catalog, &key, move |co, partition| {
        Box::pin(async move { co.init_producer_id(partition, id, req).await })
    })
    .await
}

pub async fn add_partitions(
    shard: &Rc<Shard>,
    catalog: &Catalog,
    id: String,
    producer: (i64, i16),
    parts: Vec<(String, i32)>,
) -> Result<(), TxnError> {
    let key = id.clone();
    on_coordinator(shard, catalog, &key, move |co, partition| {
        Box::pin(async move {
            co.add_partitions(partition, id, producer.0, producer.1, parts)
                .await
        })
    })
    .await
}

/// Whether each of `parts` is in the producer's open transaction (KIP-890 verification).
pub async fn verify(
    shard: &Rc<Shard>,
    catalog: &Catalog,
    id: String,
    producer: (i64, i16),
    parts: Vec<(String, i32)>,
) -> Result<Vec<bool>, TxnError> {
    let key = id.clone();
    on_coordinator(shard, catalog, &key, move |co, _| {
        let answer = co.verify(&id, producer.0, producer.1, &parts);
        Box::pin(std::future::ready(answer))
    })
    .await
}

pub async fn end_txn(
    shard: &Rc<Shard>,
    catalog: &Catalog,
    id: String,
    producer: (i64, i16),
    commit: bool,
) -> Result<(), TxnError> {
    let key = id.clone();
    on_coordinator(shard, catalog, &key, move |co, partition| {
        Box::pin(async move {
            co.end_txn(partition, id, producer.0, producer.1, commit)
                .await
        })
    })
    .await
}

/// One transactional id's state; `Ok(None)` when the coordinator does not know it.
pub async fn describe(
    shard: &Rc<Shard>,
    catalog: &Catalog,
    id: String,
) -> Result<Option<TxnMeta>, TxnError> {
    let key = id.clone();
    on_coordinator(shard, catalog, &key, move |co, _| {
        Box::pin(std::future::ready(Ok(co.describe(&id))))
    })
    .await
}

/// Every transactional id of every shard's coordinator.
pub async fn list(shard: &Rc<Shard>) -> Vec<TxnView> {
    let mut out = Vec::new();
    for owner in 0..shard.count {
        let views = shard
            .invoke_on(owner, |co: &Rc<TxnCoordinator>| {
                Box::pin(std::future::ready(co.list()))
            })
            .await
            .unwrap_or_default();
        out.extend(views);
    }
    out
}
