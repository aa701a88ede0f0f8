//! FindCoordinator: this broker coordinates every group (key type 0), through the shard that
//! owns the group's `__consumer_offsets` partition. The topic is created on the first request,
//! with `offsets.topic.num.partitions` partitions, as Kafka does. Transaction coordinators
//! (key type 1) do not exist yet: COORDINATOR_NOT_AVAILABLE, which clients retry.
//!
//! Advertised from the start because clients infer broker features from it: librdkafka only
//! compresses with LZ4 when the broker lists FindCoordinator (rdkafka_feature.c).

use std::rc::Rc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{errors, str_bytes, Broker, Ctx, Reply, Versions};
use crate::catalog::change::{self, Change, ChangeError, NewTopic};
use crate::catalog::OFFSETS_TOPIC;

pub const VERSIONS: Versions = Versions { min: 0, max: 6 };

const KEY_TYPE_GROUP: i8 = 0;

pub async fn handle(broker: &Rc<Broker>, ctx: Ctx, req: FindCoordinatorRequest) -> Reply {
    // v0 has no key type: always a group.
    let key_type = if ctx.version >= 1 {
        req.key_type
    } else {
        KEY_TYPE_GROUP
    };
    let answer = if key_type == KEY_TYPE_GROUP {
        ensure_offsets_topic(broker).await
    } else {
        Err((
            ResponseError::CoordinatorNotAvailable.code(),
            "transactions are not implemented yet".to_string(),
        ))
    };
    let config = &broker.shard.config;
    let node = BrokerId(config.node_id);
    let host = str_bytes(config.advertise_host.clone());
    let port = i32::from(config.advertise_port);
    let coordinator = |key: StrBytes| {
        let c = Coordinator::default().with_key(key);
        match &answer {
            Ok(()) => c.with_node_id(node).with_host(host.clone()).with_port(port),
            Err((code, msg)) => c
                .with_node_id(BrokerId(-1))
                .with_port(-1)
                .with_error_code(*code)
                .with_error_message(Some(str_bytes(msg.clone()))),
        }
    };
    let mut resp = FindCoordinatorResponse::default();
    if ctx.version >= 4 {
        // Batched keys (KIP-699): one answer per key.
        resp.coordinators = req.coordinator_keys.into_iter().map(coordinator).collect();
    } else {
        let c = coordinator(req.key);
        resp.error_code = c.error_code;
        resp.node_id = c.node_id;
        resp.host = c.host;
        resp.port = c.port;
        if ctx.version >= 1 {
            resp.error_message = c.error_message;
        }
    }
    ctx.reply(&resp)
}

/// Creates `__consumer_offsets` if it does not exist yet.
async fn ensure_offsets_topic(broker: &Rc<Broker>) -> Result<(), (i16, String)> {
    if broker.catalog.get().topic(OFFSETS_TOPIC).is_some() {
        return Ok(());
    }
    let groups = &broker.shard.config.groups;
    let topic = NewTopic {
        name: OFFSETS_TOPIC.to_string(),
        partitions: groups.offsets_topic_num_partitions,
        configs: [
            ("cleanup.policy".to_string(), "compact".to_string()),
            (
                "segment.bytes".to_string(),
                groups.offsets_topic_segment_bytes.to_string(),
            ),
        ]
        .into(),
    };
    let change = Change::CreateTopics {
        topics: vec![topic],
        validate_only: false,
    };
    let result = change::request(&broker.shard, change)
        .await
        .unwrap_or_default();
    match result.into_iter().next() {
        Some((_, Ok(()))) => {
            tracing::info!(
                partitions = groups.offsets_topic_num_partitions,
                "created {OFFSETS_TOPIC}"
            );
            Ok(())
        }
        // Another connection created it first.
        Some((_, Err(ChangeError::AlreadyExists(_)))) => Ok(()),
        Some((_, Err(e))) => {
            tracing::error!(error = %e, code = ?errors::change(&e), "cannot create {OFFSETS_TOPIC}");
            Err((ResponseError::CoordinatorNotAvailable.code(), e.to_string()))
        }
        None => Err((
            ResponseError::CoordinatorNotAvailable.code(),
            format!("cannot create {OFFSETS_TOPIC}"),
        )),
    }
}
