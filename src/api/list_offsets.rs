//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), or the first offset at or after
//! a timestamp, answered by the owning shard.

use std::rc::Rc;

use futures::future::LocalBoxFuture;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;

use super::partitioned::Plan;
use super::{errors, Broker, Ctx, Reply, Versions};
use crate::catalog;
use crate::log::ops::{FoundOffset, OffsetQuery};
use crate::log::Partitions;

pub const VERSIONS: Versions = Versions { min: 1, max: 7 };

pub const LATEST_TIMESTAMP: i64 = -1;
pub const EARLIEST_TIMESTAMP: i64 = -2;
pub const MAX_TIMESTAMP: i64 = -3;

/// One partition's answer: offset and timestamp (-1 when none), or the error.
type Answer = Result<(i64, i64), ResponseError>;

/// The query a request's timestamp stands for; `None` for a value Kafka gives no meaning.
/// `read_committed` asks the latest stable offset instead of the high watermark.
fn query(timestamp: i64, read_committed: bool) -> Option<OffsetQuery> {
    match timestamp {
        LATEST_TIMESTAMP if read_committed => Some(OffsetQuery::LatestStable),
        LATEST_TIMESTAMP => Some(OffsetQuery::Latest),
        EARLIEST_TIMESTAMP => Some(OffsetQuery::Earliest),
        MAX_TIMESTAMP => Some(OffsetQuery::MaxTimestamp),
        ts if ts >= 0 => Some(OffsetQuery::Timestamp(ts)),
        _ => None,
    }
}

/// No record that recent: Kafka answers offset -1, timestamp -1.
fn answer(found: Option<FoundOffset>) -> (i64, i64) {
    found.map_or((-1, -1), |f| (f.offset, f.timestamp.unwrap_or(-1)))
}

pub async fn handle(broker: &Rc<Broker>, ctx: Ctx, req: ListOffsetsRequest) -> Reply {
    let catalog = broker.catalog.get();
    let shard = &broker.shard;
    let mut plan: Plan<(String, i32, OffsetQuery), Answer> = Plan::new(shard.count);
    for t in &req.topics {
        let topic = t.name.0.to_string();
        plan.topic(topic.clone());
        for p in &t.partitions {
            let index = p.partition_index;
            match query(p.timestamp, req.isolation_level == 1) {
                _ if !catalog.has_partition(&topic, index) => {
                    plan.answer(index, Err(ResponseError::UnknownTopicOrPartition))
                }
                None => plan.answer(index, Err(ResponseError::UnsupportedVersion)),
                Some(q) => {
                    let owner = catalog::owner_shard(&topic, index, shard.count);
                    plan.route(index, owner, (topic.clone(), index, q));
                }
            }
        }
    }
    let missing = || Err(ResponseError::NotLeaderOrFollower);
    let topics = plan
        .run(
            shard,
            |parts| {
                move |partitions: &Rc<Partitions>| {
                    let offsets = partitions.offsets(parts);
                    Box::pin(async move {
                        let answers = offsets.await.into_iter();
                        answers
                            .map(|r| r.map(answer).map_err(|e| errors::log(&e)))
                            .collect()
                    }) as LocalBoxFuture<'static, Vec<Answer>>
                }
            },
            missing,
        )
        .await
        .into_iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|(index, a)| {
                    let mut p = ListOffsetsPartitionResponse::default().with_partition_index(index);
                    if ctx.version >= 4 {
                        p.leader_epoch = 0;
                    }
                    match a {
                        Ok((offset, timestamp)) => p.with_offset(offset).with_timestamp(timestamp),
                        Err(e) => p
                            .with_error_code(e.code())
                            .with_offset(-1)
                            .with_timestamp(-1),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(super::topic_name(&name))
                .with_partitions(partitions)
        })
        .collect();
    ctx.reply(&ListOffsetsResponse::default().with_topics(topics))
}
