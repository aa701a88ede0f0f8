//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), or the first offset at or after
//! a timestamp, answered by the owning shard.

use std::rc::Rc;

use futures::channel::oneshot;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;

use super::{Ctx, Reply, Versions};
use crate::shard::{Shard, ShardRequest};

pub const VERSIONS: Versions = Versions { min: 1, max: 7 };

pub const LATEST_TIMESTAMP: i64 = -1;
pub const EARLIEST_TIMESTAMP: i64 = -2;
pub const MAX_TIMESTAMP: i64 = -3;

/// Per requested slot: (offset, timestamp) or the error.
pub type OwnerAnswers = Vec<(usize, Result<(i64, i64), ResponseError>)>;

pub struct OwnerListOffsets {
    /// (slot, topic, partition, timestamp)
    pub parts: Vec<(usize, String, i32, i64)>,
    pub reply: oneshot::Sender<OwnerAnswers>,
}

pub async fn handle(shard: &Rc<Shard>, ctx: Ctx, req: ListOffsetsRequest) -> Reply {
    let catalog = shard.catalog();
    let mut layout = Vec::with_capacity(req.topics.len());
    let mut owned = Vec::new();
    let mut answers: Vec<Result<(i64, i64), ResponseError>> = Vec::new();
    for t in &req.topics {
        let topic = t.name.0.to_string();
        let known = catalog.topic(&topic).map(|t| t.partitions);
        let mut indexes = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let slot = answers.len();
            indexes.push(p.partition_index);
            match known {
                Some(n) if p.partition_index >= 0 && p.partition_index < n => {
                    answers.push(Err(ResponseError::UnknownServerError));
                    owned.push((
                        shard.owner(&topic, p.partition_index),
                        (slot, topic.clone(), p.partition_index, p.timestamp),
                    ));
                }
                _ => answers.push(Err(ResponseError::UnknownTopicOrPartition)),
            }
        }
        layout.push((topic, indexes));
    }
    let replies = shard
        .scatter(owned, |parts, reply| {
            ShardRequest::ListOffsets(OwnerListOffsets { parts, reply })
        })
        .await;
    for r in futures::future::join_all(replies).await {
        for (slot, answer) in r.unwrap_or_default() {
            answers[slot] = answer;
        }
    }
    let mut answers = answers.into_iter();
    let topics = layout
        .into_iter()
        .map(|(name, indexes)| {
            let partitions = indexes
                .into_iter()
                .map(|index| {
                    let mut p = ListOffsetsPartitionResponse::default().with_partition_index(index);
                    if ctx.version >= 4 {
                        p.leader_epoch = 0;
                    }
                    match answers
                        .next()
                        .unwrap_or(Err(ResponseError::UnknownServerError))
                    {
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

pub fn on_owner(shard: &Rc<Shard>, req: OwnerListOffsets) {
    let shard = shard.clone();
    glommio::spawn_local(async move {
        let mut out = Vec::with_capacity(req.parts.len());
        for (slot, topic, partition, ts) in req.parts {
            let Some(log) = shard.partition(&topic, partition) else {
                out.push((slot, Err(shard.missing_partition_error(&topic, partition))));
                continue;
            };
            let answer = match ts {
                LATEST_TIMESTAMP => Ok((log.high_watermark(), -1)),
                EARLIEST_TIMESTAMP => Ok((log.log_start_offset(), -1)),
                MAX_TIMESTAMP => log
                    .offset_of_max_timestamp()
                    .await
                    .map(|found| found.unwrap_or((-1, -1)))
                    .map_err(|e| super::produce::log_error_code(&e)),
                ts if ts >= 0 => log
                    .offset_for_timestamp(ts)
                    .await
                    // No record that recent: Kafka answers offset -1, timestamp -1.
                    .map(|found| found.unwrap_or((-1, -1)))
                    .map_err(|e| super::produce::log_error_code(&e)),
                _ => Err(ResponseError::UnsupportedVersion),
            };
            out.push((slot, answer));
        }
        let _ = req.reply.send(out);
    })
    .detach();
}
