//! OffsetFetch: a group's committed offsets; -1 (and empty metadata) where nothing was
//! committed, which is what makes `auto.offset.reset` apply on the client. v8+ asks for
//! several groups at once.

use std::rc::Rc;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse};

use super::{by_topic, errors, str_bytes, topic_name, Broker, Ctx, Reply, Versions};
use crate::group::client;
use crate::group::ops::TopicPartitions;
use crate::group::state::Committed;
use kafka_protocol::ResponseError;

/// v0 (which Kafka 4 dropped) has v1's layout and meaning: `old_versions` has kafka-protocol
/// decode and encode it as v1.
pub const VERSIONS: Versions = Versions { min: 0, max: 9 };

/// One partition's answer: offset, leader epoch, metadata, error.
struct Answer {
    partition: i32,
    offset: i64,
    leader_epoch: i32,
    metadata: String,
    error: i16,
}

pub async fn handle(broker: &Rc<Broker>, ctx: Ctx, req: OffsetFetchRequest) -> Reply {
    let v = ctx.version;
    // v7+ (KIP-447): partitions with offsets pending in a transaction answer
    // UNSTABLE_OFFSET_COMMIT, and the consumer asks again.
    let stable = v >= 7 && req.require_stable;
    if v >= 8 {
        let mut groups = Vec::with_capacity(req.groups.len());
        for g in req.groups {
            let topics = g.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes))
                    .collect()
            });
            let (answers, error) = fetch(broker, &g.group_id.0, topics, stable).await;
            groups.push(
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id)
                    .with_error_code(error)
                    .with_topics(
                        answers
                            .into_iter()
                            .map(|(t, parts)| {
                                OffsetFetchResponseTopics::default()
                                    .with_name(topic_name(&t))
                                    .with_partitions(
                                        parts
                                            .into_iter()
                                            .map(|a| {
                                                OffsetFetchResponsePartitions::default()
                                                    .with_partition_index(a.partition)
                                                    .with_committed_offset(a.offset)
                                                    .with_committed_leader_epoch(a.leader_epoch)
                                                    .with_metadata(Some(str_bytes(a.metadata)))
                                                    .with_error_code(a.error)
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    ),
            );
        }
        return ctx.reply(&OffsetFetchResponse::default().with_groups(groups));
    }
    let GroupId(group_id) = req.group_id;
    let topics = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    let (answers, error) = fetch(broker, &group_id, topics, stable).await;
    let mut resp = OffsetFetchResponse::default().with_topics(
        answers
            .into_iter()
            .map(|(t, parts)| {
                OffsetFetchResponseTopic::default()
                    .with_name(topic_name(&t))
                    .with_partitions(
                        parts
                            .into_iter()
                            .map(|a| {
                                let mut p = OffsetFetchResponsePartition::default()
                                    .with_partition_index(a.partition)
                                    .with_committed_offset(a.offset)
                                    .with_metadata(Some(str_bytes(a.metadata)))
                                    // v0-1 have no group-level error: every partition carries it.
                                    .with_error_code(if v >= 2 {
                                        a.error
                                    } else {
                                        a.error.max(error)
                                    });
                                if v >= 5 {
                                    p.committed_leader_epoch = a.leader_epoch;
                                }
                                p
                            })
                            .collect(),
                    )
            })
            .collect(),
    );
    if v >= 2 {
        resp.error_code = error;
    }
    ctx.reply(&resp)
}

/// The answers for one group, by topic, and the group-level error.
async fn fetch(
    broker: &Rc<Broker>,
    group_id: &str,
    topics: Option<TopicPartitions>,
    require_stable: bool,
) -> (Vec<(String, Vec<Answer>)>, i16) {
    let asked: Vec<(String, i32)> = topics
        .iter()
        .flatten()
        .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
        .collect();
    let catalog = broker.catalog.get();
    let result = client::fetch_offsets(&broker.shard, &catalog, group_id.to_string(), topics).await;
    let (found, error) = match result {
        Ok(found) => (found, 0),
        Err(e) => (
            asked.into_iter().map(|(t, p)| (t, p, None)).collect(),
            errors::group(e).code(),
        ),
    };
    let mut pending = vec![false; found.len()];
    if require_stable && error == 0 && !found.is_empty() {
        let parts = found.iter().map(|(t, p, _)| (t.clone(), *p)).collect();
        let group = group_id.to_string();
        if let Ok(p) = client::pending_offsets(&broker.shard, &catalog, group, parts).await {
            pending = p;
        }
    }
    let answers = found.into_iter().zip(pending).map(
        |((t, p, c), pending): ((String, i32, Option<Committed>), bool)| {
            let a = match c {
                _ if pending => Answer {
                    partition: p,
                    offset: -1,
                    leader_epoch: -1,
                    metadata: String::new(),
                    error: ResponseError::UnstableOffsetCommit.code(),
                },
                Some(c) => Answer {
                    partition: p,
                    offset: c.offset,
                    leader_epoch: c.leader_epoch,
                    metadata: c.metadata,
                    error: 0,
                },
                None => Answer {
                    partition: p,
                    offset: -1,
                    leader_epoch: -1,
                    metadata: String::new(),
                    error: 0,
                },
            };
            (t, a)
        },
    );
    (by_topic(answers), error)
}
