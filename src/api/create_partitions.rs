//! CreatePartitions: grows a topic's partition count; the new partitions open on their owners.

use std::rc::Rc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::ResponseError;

use super::{errors, str_bytes, Broker, Ctx, Reply, Versions};
use crate::catalog::change::{self, Change};

pub const VERSIONS: Versions = Versions { min: 0, max: 3 };

pub async fn handle(broker: &Rc<Broker>, ctx: Ctx, req: CreatePartitionsRequest) -> Reply {
    let shard = &broker.shard;
    let mut results = Vec::with_capacity(req.topics.len());
    let mut asks = Vec::new();
    for t in &req.topics {
        let r = CreatePartitionsTopicResult::default().with_name(t.name.clone());
        let bad_assignment = t.assignments.as_ref().is_some_and(|a| {
            a.iter()
                .any(|x| x.broker_ids.len() != 1 || x.broker_ids[0].0 != shard.config.node_id)
        });
        if bad_assignment {
            results.push(
                r.with_error_code(ResponseError::InvalidReplicaAssignment.code())
                    .with_error_message(Some(str_bytes(format!(
                        "replicas must be exactly [{}]",
                        shard.config.node_id
                    )))),
            );
            continue;
        }
        asks.push((t.name.0.to_string(), t.count));
        results.push(r);
    }
    if !asks.is_empty() {
        let change = Change::CreatePartitions {
            topics: asks,
            validate_only: req.validate_only,
        };
        let outcome = change::request(shard, change).await;
        for (name, r) in outcome.unwrap_or_default() {
            if let (Some(slot), Err(e)) =
                (results.iter_mut().find(|r| r.name.0.as_str() == name), r)
            {
                slot.error_code = errors::change(&e).code();
                slot.error_message = Some(str_bytes(e.to_string()));
            }
        }
    }
    ctx.reply(&CreatePartitionsResponse::default().with_results(results))
}
