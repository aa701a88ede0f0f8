//! AddOffsetsToTxn: puts the group's `__consumer_offsets` partition in the producer's
//! transaction, so the offsets it then commits there (TxnOffsetCommit) end with it.

use std::rc::Rc;

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};
use kafka_protocol::ResponseError;

use super::{errors, Broker, Ctx, Reply, Versions};
use crate::catalog::OFFSETS_TOPIC;
use crate::{group, txn};

/// v4 is Kafka 4's; Kafka 3.9 serves 0-3.
pub const VERSIONS: Versions = Versions { min: 0, max: 3 };

pub async fn handle(broker: &Rc<Broker>, ctx: Ctx, req: AddOffsetsToTxnRequest) -> Reply {
    // The group may never have had a coordinator (offsets sent for a group no consumer
    // joined): the topic is created then, as FindCoordinator would.
    let created = super::find_coordinator::ensure_offsets_topic(broker).await;
    let catalog = broker.catalog.get();
    let code = match catalog.topic(OFFSETS_TOPIC) {
        _ if created.is_err() => ResponseError::CoordinatorNotAvailable.code(),
        None => ResponseError::CoordinatorNotAvailable.code(),
        Some(topic) => {
            let partition = group::partition_for(&req.group_id.0, topic.partitions);
            let parts = vec![(OFFSETS_TOPIC.to_string(), partition)];
            let producer = (req.producer_id.0, req.producer_epoch);
            let id = req.transactional_id.0.to_string();
            let answer =
                txn::client::add_partitions(&broker.shard, &catalog, id, producer, parts).await;
            errors::txn_code(&answer)
        }
    };
    ctx.reply(&AddOffsetsToTxnResponse::default().with_error_code(code))
}
