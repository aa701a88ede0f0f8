//! DescribeProducers: the producers each partition knows (id, epoch, last sequence and
//! timestamp, open transaction), from the partitions' owners.

use std::rc::Rc;

use futures::future::LocalBoxFuture;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};
use kafka_protocol::ResponseError;

use super::partitioned::Plan;
use super::{errors, topic_name, Broker, Ctx, Reply, Versions};
use crate::catalog;
use crate::log::producers::ProducerView;
use crate::log::Partitions;

pub const VERSIONS: Versions = Versions { min: 0, max: 0 };

type Answer = Result<Vec<ProducerView>, ResponseError>;

pub async fn handle(broker: &Rc<Broker>, ctx: Ctx, req: DescribeProducersRequest) -> Reply {
    let catalog = broker.catalog.get();
    let shard = &broker.shard;
    let mut plan: Plan<(String, i32), Answer> = Plan::new(shard.count);
    for t in &req.topics {
        let topic = t.name.0.to_string();
        plan.topic(topic.clone());
        for &p in &t.partition_indexes {
            if catalog.has_partition(&topic, p) {
                let owner = catalog::owner_shard(&topic, p, shard.count);
                plan.route(p, owner, (topic.clone(), p));
            } else {
                plan.answer(p, Err(ResponseError::UnknownTopicOrPartition));
            }
        }
    }
    let missing = || Err(ResponseError::NotLeaderOrFollower);
    let topics = plan
        .run(
            shard,
            |parts| {
                move |partitions: &Rc<Partitions>| {
                    let found: Vec<Answer> = partitions
                        .producers(&parts)
                        .into_iter()
                        .map(|r| r.map_err(|e| errors::log(&e)))
                        .collect();
                    Box::pin(std::future::ready(found)) as LocalBoxFuture<'static, Vec<Answer>>
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
                    let p = PartitionResponse::default().with_partition_index(index);
                    match a {
                        Ok(views) => p.with_active_producers(
                            views
                                .into_iter()
                                .map(|v| {
                                    ProducerState::default()
                                        .with_producer_id(ProducerId(v.producer_id))
                                        .with_producer_epoch(i32::from(v.epoch))
                                        .with_last_sequence(v.last_sequence)
                                        .with_last_timestamp(v.last_timestamp)
                                        .with_coordinator_epoch(v.coordinator_epoch)
                                        .with_current_txn_start_offset(v.txn_first_offset)
                                })
                                .collect(),
                        ),
                        Err(e) => p.with_error_code(e.code()),
                    }
                })
                .collect();
            TopicResponse::default()
                .with_name(topic_name(&t))
                .with_partitions(partitions)
        })
        .collect();
    ctx.reply(&DescribeProducersResponse::default().with_topics(topics))
}
