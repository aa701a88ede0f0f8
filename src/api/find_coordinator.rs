//! FindCoordinator: this broker coordinates every group (key type 0) and every transactional
//! id (key type 1), through the shard that owns the key's partition of `__consumer_offsets`
//! or `__transaction_state`. Each topic is created on the first request for its kind, with
//! `offsets.topic.num.partitions` / `transaction.state.log.num.partitions` partitions, as
//! Kafka does.
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
use crate::catalog::{OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC};

pub const VERSIONS: Versions = Versions { min: 0, max: 6 };

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

pub async fn handle(broker: &Rc<Broker>, ctx: Ctx, req: FindCoordinatorRequest) -> Reply {
    // v0 has no key type: always a group.
    let key_type = if ctx.version >= 1 {
        req.key_type
    } else {
        KEY_TYPE_GROUP
    };
    let answer = match key_type {
        KEY_TYPE_GROUP => ensure_offsets_topic(broker).await,
        KEY_TYPE_TRANSACTION => ensure_transaction_topic(broker).await,
        _ => Err((
            ResponseError::InvalidRequest.code(),
            format!("unknown coordinator key type {key_type}"),
        )),
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
pub(super) async fn ensure_offsets_topic(broker: &Rc<Broker>) -> Result<(), (i16, String)> {
    let groups = &broker.shard.config.groups;
    let (partitions, segment_bytes) = (
        groups.offsets_topic_num_partitions,
        groups.offsets_topic_segment_bytes,
    );
    ensure_internal_topic(broker, OFFSETS_TOPIC, partitions, segment_bytes).await
}

/// Creates `__transaction_state` if it does not exist yet.
async fn ensure_transaction_topic(broker: &Rc<Broker>) -> Result<(), (i16, String)> {
    let txn = &broker.shard.config.txn;
    let (partitions, segment_bytes) = (txn.state_log_num_partitions, txn.state_log_segment_bytes);
    ensure_internal_topic(broker, TRANSACTION_STATE_TOPIC, partitions, segment_bytes).await
}

/// Creates an internal compacted topic if it does not exist yet.
async fn ensure_internal_topic(
    broker: &Rc<Broker>,
    name: &str,
    partitions: i32,
    segment_bytes: u64,
) -> Result<(), (i16, String)> {
    if broker.catalog.get().topic(name).is_some() {
        return Ok(());
    }
    let topic = NewTopic {
        name: name.to_string(),
        partitions,
        configs: [
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("segment.bytes".to_string(), segment_bytes.to_string()),
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
            tracing::info!(partitions, "created {name}");
            Ok(())
        }
        // Another connection created it first.
        Some((_, Err(ChangeError::AlreadyExists(_)))) => Ok(()),
        Some((_, Err(e))) => {
            tracing::error!(error = %e, code = ?errors::change(&e), "cannot create {name}");
            Err((ResponseError::CoordinatorNotAvailable.code(), e.to_string()))
        }
        None => Err((
            ResponseError::CoordinatorNotAvailable.code(),
            format!("cannot create {name}"),
        )),
    }
}
