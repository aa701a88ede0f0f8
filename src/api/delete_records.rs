//! DeleteRecords: moves partitions' log start offsets forward (the low watermark Fetch and
//! ListOffsets report), on their owning shards, persisted before the answer.

use std::rc::Rc;

use futures::future::LocalBoxFuture;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::ResponseError;

use super::partitioned::Plan;
use super::{errors, topic_name, Broker, Ctx, Reply, Versions};
use crate::catalog;
use crate::log::Partitions;

pub const VERSIONS: Versions = Versions { min: 0, max: 2 };

/// One partition's answer: the new low watermark, or the error.
type Answer = Result<i64, ResponseError>;

pub async fn handle(broker: &Rc<Broker>, ctx: Ctx, req: DeleteRecordsRequest) -> Reply {
    let catalog = broker.catalog.get();
    let shard = &broker.shard;
    let mut plan: Plan<(String, i32, i64), Answer> = Plan::new(shard.count);
    for t in &req.topics {
        let topic = t.name.0.to_string();
        plan.topic(topic.clone());
        for p in &t.partitions {
            let index = p.partition_index;
            if !catalog.has_partition(&topic, index) {
                plan.answer(index, Err(ResponseError::UnknownTopicOrPartition));
            } else if catalog::is_internal(&topic) {
                // The broker's own records (groups, transactions) are not the clients' to cut.
                plan.answer(index, Err(ResponseError::InvalidTopicException));
            } else {
                let owner = catalog::owner_shard(&topic, index, shard.count);
                plan.route(index, owner, (topic.clone(), index, p.offset));
            }
        }
    }
    let missing = || Err(ResponseError::NotLeaderOrFollower);
    let topics = plan
        .run(
            shard,
            |parts| {
                move |partitions: &Rc<Partitions>| {
                    let deleted = partitions.delete_records(parts);
                    Box::pin(async move {
                        let answers = deleted.await.into_iter();
                        answers.map(|r| r.map_err(|e| errors::log(&e))).collect()
                    }) as LocalBoxFuture<'static, Vec<Answer>>
                }
            },
            missing,
        )
        .await
        .into_iter()
        .map(|(t, parts)| {
            let partitions = parts
                .into_iter()
                .map(|(index, a)| {
                    let p = DeleteRecordsPartitionResult::default().with_partition_index(index);
                    match a {
                        Ok(low) => p.with_low_watermark(low),
                        Err(e) => p.with_low_watermark(-1).with_error_code(e.code()),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(topic_name(&t))
                .with_partitions(partitions)
        })
        .collect();
    ctx.reply(&DeleteRecordsResponse::default().with_topics(topics))
}
