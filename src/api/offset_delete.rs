//! OffsetDelete: removes a group's committed offsets for some partitions, unless members
//! still subscribe to the topic (GROUP_SUBSCRIBED_TO_TOPIC).

use std::rc::Rc;

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use super::{by_topic, errors, topic_name, Broker, Ctx, Reply, Versions};
use crate::group::client;

pub const VERSIONS: Versions = Versions { min: 0, max: 0 };

pub async fn handle(broker: &Rc<Broker>, ctx: Ctx, req: OffsetDeleteRequest) -> Reply {
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
    let catalog = broker.catalog.get();
    let group_id = req.group_id.0.to_string();
    match client::delete_offsets(&broker.shard, &catalog, group_id, topics).await {
        Ok(results) => {
            let results = results.into_iter();
            resp.topics = by_topic(results.map(|(t, p, r)| (t, (p, errors::group_code(r)))))
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
        Err(e) => resp.error_code = errors::group(e).code(),
    }
    ctx.reply(&resp)
}
