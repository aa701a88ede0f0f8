//! TxnOffsetCommit: a transactional producer commits a group's offsets inside its
//! transaction (`send_offsets_to_transaction`); they become the group's committed offsets only
//! when the transaction commits.

use std::rc::Rc;

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use super::{by_topic, errors, topic_name, Broker, Ctx, Reply, Versions};
use kafka_protocol::ResponseError;

use crate::catalog::{Catalog, OFFSETS_TOPIC};
use crate::group::ops::{CommitPartition, MemberRef};
use crate::group::{self, client};
use crate::txn;

/// v5 is Kafka 4's; Kafka 3.9 serves 0-4.
pub const VERSIONS: Versions = Versions { min: 0, max: 4 };

pub async fn handle(broker: &Rc<Broker>, ctx: Ctx, req: TxnOffsetCommitRequest) -> Reply {
    let partitions: Vec<CommitPartition> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| CommitPartition {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if ctx.version >= 2 {
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
    // v3+ names the member (KIP-447); before, no generation is checked.
    let member = MemberRef {
        member_id: if ctx.version >= 3 {
            req.member_id.to_string()
        } else {
            String::new()
        },
        instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        generation: if ctx.version >= 3 {
            req.generation_id
        } else {
            -1
        },
    };
    let producer = (req.producer_id.0, req.producer_epoch);
    let catalog = broker.catalog.get();
    let group = req.group_id.0.to_string();
    let id = req.transactional_id.0.to_string();
    let results: Vec<(String, i32, i16)> = match verify(broker, &catalog, id, producer, &group)
        .await
    {
        Err(code) => keys.into_iter().map(|(t, p)| (t, p, code)).collect(),
        Ok(()) => {
            let committed =
                client::txn_commit(&broker.shard, &catalog, group, producer, member, partitions);
            match committed.await {
                Ok(r) => r
                    .into_iter()
                    .map(|(t, p, r)| (t, p, errors::group_code(r)))
                    .collect(),
                Err(e) => {
                    let code = errors::group(e).code();
                    keys.into_iter().map(|(t, p)| (t, p, code)).collect()
                }
            }
        }
    };
    let topics = by_topic(results.into_iter().map(|(t, p, c)| (t, (p, c))))
        .into_iter()
        .map(|(t, parts)| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(topic_name(&t))
                .with_partitions(
                    parts
                        .into_iter()
                        .map(|(p, c)| {
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p)
                                .with_error_code(c)
                        })
                        .collect(),
                )
        })
        .collect();
    ctx.reply(&TxnOffsetCommitResponse::default().with_topics(topics))
}

/// KIP-890 part 1 for offsets: the group's `__consumer_offsets` partition must be in the
/// producer's open transaction (AddOffsetsToTxn). Otherwise offsets that no marker will ever
/// end would stay pending, and OffsetFetch with `require_stable` would answer
/// UNSTABLE_OFFSET_COMMIT for them for good. `Err` is the code for every partition.
async fn verify(
    broker: &Rc<Broker>,
    catalog: &Catalog,
    id: String,
    producer: (i64, i16),
    group: &str,
) -> Result<(), i16> {
    let Some(topic) = catalog.topic(OFFSETS_TOPIC) else {
        return Err(ResponseError::CoordinatorNotAvailable.code());
    };
    let part = (
        OFFSETS_TOPIC.to_string(),
        group::partition_for(group, topic.partitions),
    );
    match txn::client::verify(&broker.shard, catalog, id, producer, vec![part]).await {
        Ok(found) if found.iter().all(|ok| *ok) => Ok(()),
        Ok(_) => Err(ResponseError::InvalidTxnState.code()),
        Err(e) => Err(errors::txn(&e).code()),
    }
}
