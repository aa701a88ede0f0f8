//! OffsetDelete: removes a group's committed offsets for some partitions, unless members
//! still subscribe to the topic (GROUP_SUBSCRIBED_TO_TOPIC).

use std::rc::Rc;

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use kafka_protocol::ResponseError;

use super::{by_topic, topic_name, Ctx, Reply, Versions};
use crate::group::{self, Op, Out};
use crate::shard::Shard;

pub const VERSIONS: Versions = Versions { min: 0, max: 0 };

pub async fn handle(shard: &Rc<Shard>, ctx: Ctx, req: OffsetDeleteRequest) -> Reply {
    let topics = req
        .topics
        .iter()
        .map(|t| {
            (
                t.name.0.to_string(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    let mut resp = OffsetDeleteResponse::default();
    match group::call(shard, &req.group_id.0, Op::DeleteOffsets(topics)).await {
        Ok(Out::Partitions(results)) => {
            resp.topics = by_topic(results.into_iter().map(|(t, p, c)| (t, (p, c))))
                .into_iter()
                .map(|(t, parts)| {
                    OffsetDeleteResponseTopic::default()
                        .with_name(topic_name(&t))
                        .with_partitions(
                            parts
                                .into_iter()
                                .map(|(p, c)| {
                                    OffsetDeleteResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_error_code(c)
                                })
                                .collect(),
                        )
                })
                .collect();
        }
        Ok(_) => resp.error_code = ResponseError::UnknownServerError.code(),
        Err(c) => resp.error_code = c,
    }
    ctx.reply(&resp)
}
