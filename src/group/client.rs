//! How other layers reach a group's coordinator: each operation is routed to the shard owning
//! the group's `__consumer_offsets` partition and answers with its own type. `Err` is a
//! request-level refusal: no coordinator (yet), or the coordinator is stopping or loading.

use std::rc::Rc;

use futures::future::LocalBoxFuture;

use super::consumer::{Heartbeat, HeartbeatOutcome, Refusal};
use super::coordinator::Coordinator;
use super::ops::{
    CommitPartition, Described, DescribedConsumer, Listed, MemberRef, PartitionResults,
    SyncRequest, TopicPartitions,
};
use super::state::{Committed, JoinOutcome, JoinRequest, SyncOutcome};
use super::{partition_for, Error, OFFSETS_TOPIC};
use crate::catalog::{self, Catalog};
use crate::shard::Shard;

/// Runs `op` on the coordinator of `group`, giving it the coordinator, the group's
/// `__consumer_offsets` partition and the group id.
async fn on_coordinator<R, F>(
    shard: &Rc<Shard>,
    catalog: &Catalog,
    group: String,
    op: F,
) -> Result<R, Error>
where
    R: Send + 'static,
    F: FnOnce(Rc<Coordinator>, i32, String) -> LocalBoxFuture<'static, Result<R, Error>>
        + Send
        + 'static,
{
    let topic = catalog
        .topic(OFFSETS_TOPIC)
        .ok_or(Error::CoordinatorNotAvailable)?;
    let partition = partition_for(&group, topic.partitions);
    let owner = catalog::owner_shard(OFFSETS_TOPIC, partition, shard.count);
    let answer = shard
        .invoke_on(owner, move |co: &Rc<Coordinator>| {
            match co.serving(partition) {
                Ok(()) => op(co.clone(), partition, group),
                Err(e) => ready(Err(e)),
            }
        })
        .await
        .unwrap_or(Err(Error::CoordinatorNotAvailable));
    if let Err(e) = &answer {
        tracing::debug!(owner, partition, error = %e, "group request refused");
    }
    answer
}

/// An answer that is ready at once.
fn ready<T: 'static>(value: T) -> LocalBoxFuture<'static, T> {
    Box::pin(std::future::ready(value))
}

pub async fn join(
    shard: &Rc<Shard>,
    catalog: &Catalog,
    group: String,
    req: JoinRequest,
) -> Result<JoinOutcome, Error> {
    on_coordinator(shard, catalog, group, move |co, _, group| {
        Box::pin(async move { co.join(&group, req).await })
    })
    .await
}

pub async fn sync(
    shard: &Rc<Shard>,
    catalog: &Catalog,
    group: String,
    req: SyncRequest,
) -> Result<SyncOutcome, Error> {
    on_coordinator(shard, catalog, group, move |co, _, group| {
        Box::pin(async move { co.sync(&group, req).await })
    })
    .await
}

pub async fn heartbeat(
    shard: &Rc<Shard>,
    catalog: &Catalog,
    group: String,
    who: MemberRef,
) -> Result<(), Error> {
    on_coordinator(shard, catalog, group, move |co, _, group| {
        let r = co.heartbeat(
            &group,
            &who.member_id,
            who.instance_id.as_deref(),
            who.generation,
        );
        ready(r)
    })
    .await
}

pub async fn leave(
    shard: &Rc<Shard>,
    catalog: &Catalog,
    group: String,
    members: Vec<(String, Option<String>)>,
) -> Result<Vec<Result<(), Error>>, Error> {
    on_coordinator(shard, catalog, group, move |co, _, group| {
        ready(Ok(co.leave(&group, &members)))
    })
    .await
}

pub async fn commit(
    shard: &Rc<Shard>,
    catalog: &Catalog,
    group: String,
    who: MemberRef,
    partitions: Vec<CommitPartition>,
) -> Result<PartitionResults, Error> {
    on_coordinator(shard, catalog, group, move |co, p, group| {
        Box::pin(async move { Ok(co.commit(p, &group, who, partitions).await) })
    })
    .await
}

pub async fn fetch_offsets(
    shard: &Rc<Shard>,
    catalog: &Catalog,
    group: String,
    topics: Option<TopicPartitions>,
) -> Result<Vec<(String, i32, Option<Committed>)>, Error> {
    on_coordinator(shard, catalog, group, move |co, _, group| {
        ready(Ok(co.fetch_offsets(&group, topics)))
    })
    .await
}

pub async fn describe(
    shard: &Rc<Shard>,
    catalog: &Catalog,
    group: String,
) -> Result<Option<Described>, Error> {
    on_coordinator(shard, catalog, group, move |co, _, group| {
        ready(Ok(co.describe(&group)))
    })
    .await
}

pub async fn delete(shard: &Rc<Shard>, catalog: &Catalog, group: String) -> Result<(), Error> {
    on_coordinator(shard, catalog, group, move |co, p, group| {
        Box::pin(async move { co.delete(p, &group).await })
    })
    .await
}

pub async fn delete_offsets(
    shard: &Rc<Shard>,
    catalog: &Catalog,
    group: String,
    topics: TopicPartitions,
) -> Result<PartitionResults, Error> {
    on_coordinator(shard, catalog, group, move |co, p, group| {
        Box::pin(async move { co.delete_offsets(p, &group, topics).await })
    })
    .await
}

pub async fn consumer_heartbeat(
    shard: &Rc<Shard>,
    catalog: &Catalog,
    group: String,
    hb: Heartbeat,
) -> Result<HeartbeatOutcome, Refusal> {
    on_coordinator(shard, catalog, group, move |co, _, group| {
        ready(Ok(co.consumer_heartbeat(&group, hb)))
    })
    .await
    .unwrap_or_else(|e| Err((e, "the group coordinator is not available".into())))
}

pub async fn describe_consumer(
    shard: &Rc<Shard>,
    catalog: &Catalog,
    group: String,
) -> Result<DescribedConsumer, Refusal> {
    on_coordinator(shard, catalog, group, move |co, _, group| {
        ready(Ok(co.describe_consumer(&group)))
    })
    .await
    .unwrap_or_else(|e| Err((e, "the group coordinator is not available".into())))
}

/// Every group on every shard (ListGroups), filtered by state names.
pub async fn list_all(shard: &Rc<Shard>, states: Vec<String>) -> Vec<Listed> {
    let mut out = Vec::new();
    for owner in 0..shard.count {
        let states = states.clone();
        let listed = shard
            .invoke_on(owner, move |co: &Rc<Coordinator>| ready(co.list(&states)))
            .await;
        out.extend(listed.unwrap_or_default());
    }
    out
}

/// TxnOffsetCommit: offsets of a transaction, pending until it ends.
pub async fn txn_commit(
    shard: &Rc<Shard>,
    catalog: &Catalog,
    group: String,
    producer: (i64, i16),
    who: MemberRef,
    partitions: Vec<CommitPartition>,
) -> Result<PartitionResults, Error> {
    on_coordinator(shard, catalog, group, move |co, p, group| {
        Box::pin(async move { Ok(co.txn_commit(p, &group, producer, who, partitions).await) })
    })
    .await
}

/// Tells the coordinator of `__consumer_offsets` partition `partition` that the producer's
/// transaction ended there (its marker is durable).
pub async fn complete_transaction(
    shard: &Rc<Shard>,
    partition: i32,
    producer_id: i64,
    commit: bool,
) {
    let owner = catalog::owner_shard(OFFSETS_TOPIC, partition, shard.count);
    let _ = shard
        .invoke_on(owner, move |co: &Rc<Coordinator>| {
            co.complete_transaction(partition, producer_id, commit);
            ready(())
        })
        .await;
}

/// Which of the partitions have offsets pending in a transaction (OffsetFetch with
/// `require_stable`).
pub async fn pending_offsets(
    shard: &Rc<Shard>,
    catalog: &Catalog,
    group: String,
    partitions: Vec<(String, i32)>,
) -> Result<Vec<bool>, Error> {
    on_coordinator(shard, catalog, group, move |co, _, group| {
        let pending = partitions
            .iter()
            .map(|(t, p)| co.offset_pending(&group, t, *p))
            .collect();
        ready(Ok(pending))
    })
    .await
}
