//! OffsetCommit: a group's consumed positions, written to `__consumer_offsets` and answered
//! once durable.

use std::rc::Rc;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use super::{by_topic, errors, topic_name, Broker, Ctx, Reply, Versions};
use crate::group::client;
use crate::group::ops::{CommitPartition, MemberRef};

/// v0 and v1 (which Kafka 4 dropped) are decoded by `old_versions` into the request v2+
/// sends: v0 carries no generation or member, so it commits as a simple (standalone) commit.
pub const VERSIONS: Versions = Versions { min: 0, max: 9 };

pub async fn handle(broker: &Rc<Broker>, ctx: Ctx, req: OffsetCommitRequest) -> Reply {
    let group_id = req.group_id.0.to_string();
    let partitions: Vec<CommitPartition> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| CommitPartition {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if ctx.version >= 6 {
                    p.committed_leader_epoch
                } else {
                    -1
                },
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            })
        })
        .collect();
    let keys: Vec<(String, i32)> = partitions
        .iter()
        .map(|p| (p.topic.clone(), p.partition))
        .collect();
    let member = MemberRef {
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        generation: req.generation_id_or_member_epoch,
    };
    let catalog = broker.catalog.get();
    let results: Vec<(String, i32, i16)> =
        match client::commit(&broker.shard, &catalog, group_id, member, partitions).await {
            Ok(r) => r
                .into_iter()
                .map(|(t, p, r)| (t, p, errors::group_code(r)))
                .collect(),
            Err(e) => error_all(&keys, errors::group(e).code()),
        };
    let topics = by_topic(results.into_iter().map(|(t, p, c)| (t, (p, c))))
        .into_iter()
        .map(|(t, parts)| {
            OffsetCommitResponseTopic::default()
                .with_name(topic_name(&t))
                .with_partitions(
                    parts
                        .into_iter()
                        .map(|(p, c)| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(p)
                                .with_error_code(c)
                        })
                        .collect(),
                )
        })
        .collect();
    ctx.reply(&OffsetCommitResponse::default().with_topics(topics))
}

fn error_all(keys: &[(String, i32)], code: i16) -> Vec<(String, i32, i16)> {
    keys.iter().map(|(t, p)| (t.clone(), *p, code)).collect()
}
