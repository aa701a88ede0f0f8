//! ConsumerGroupHeartbeat (KIP-848, `group.protocol=consumer`): join, leave and heartbeat in
//! one API; the broker computes the assignment (`group::consumer`). Topics travel as ids on
//! the wire and as names inside the broker.

use std::rc::Rc;

use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::ResponseError;

use super::{errors, str_bytes, Broker, Ctx, Reply, Versions};
use crate::catalog::Catalog;
use crate::group::client;
use crate::group::consumer::{self, Heartbeat, HeartbeatOutcome, ASSIGNORS};

pub const VERSIONS: Versions = Versions { min: 0, max: 1 };

pub async fn handle(broker: &Rc<Broker>, ctx: Ctx, req: ConsumerGroupHeartbeatRequest) -> Reply {
    let catalog = broker.catalog.get();
    let result = heartbeat(broker, &ctx, &catalog, req).await;
    let mut resp = ConsumerGroupHeartbeatResponse::default();
    match result {
        Ok(o) => {
            resp.member_id = Some(str_bytes(o.member_id));
            resp.member_epoch = o.epoch;
            resp.heartbeat_interval_ms = broker.shard.config.groups.consumer_heartbeat_interval_ms;
            resp.assignment = o
                .assignment
                .map(|a| Assignment::default().with_topic_partitions(to_ids(&catalog, &a)));
        }
        Err((code, message)) => {
            resp.error_code = code.code();
            resp.error_message = Some(str_bytes(message));
        }
    }
    ctx.reply(&resp)
}

async fn heartbeat(
    broker: &Rc<Broker>,
    ctx: &Ctx,
    catalog: &Catalog,
    req: ConsumerGroupHeartbeatRequest,
) -> Result<HeartbeatOutcome, (ResponseError, String)> {
    let group_id = req.group_id.0.to_string();
    if group_id.is_empty() {
        return Err((ResponseError::InvalidGroupId, "group id is empty".into()));
    }
    if let Some(a) = &req.server_assignor {
        if !ASSIGNORS.contains(&a.as_str()) {
            return Err((
                ResponseError::UnsupportedAssignor,
                format!("server assignor '{a}' is not one of {ASSIGNORS:?}"),
            ));
        }
    }
    let mut member_id = req.member_id.to_string();
    if member_id.is_empty() && req.member_epoch == 0 && ctx.version == 0 {
        // v0: the broker names new members (v1 clients bring their own id, KIP-1082).
        member_id = uuid::Uuid::new_v4().to_string();
    }
    let owned = req.topic_partitions.map(|tps| {
        let mut a = consumer::Assignment::new();
        for tp in tps {
            if let Some((name, _)) = catalog.topic_by_id(tp.topic_id) {
                a.entry(name.to_string()).or_default().extend(tp.partitions);
            }
        }
        a
    });
    let hb = Heartbeat {
        member_id,
        epoch: req.member_epoch,
        instance_id: req.instance_id.map(|s| s.to_string()),
        rack_id: req.rack_id.map(|s| s.to_string()),
        client_id: ctx.client_id.to_string(),
        client_host: ctx.client_host.to_string(),
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        topics: req
            .subscribed_topic_names
            .map(|ts| ts.into_iter().map(|t| t.0.to_string()).collect()),
        regex: req
            .subscribed_topic_regex
            .filter(|r| !r.is_empty())
            .map(|r| r.to_string()),
        owned,
    };
    client::consumer_heartbeat(&broker.shard, catalog, group_id, hb)
        .await
        .map_err(|(e, message)| (errors::group(e), message))
}

/// An assignment by topic id, for the wire; topics deleted meanwhile are left out.
pub fn to_ids(catalog: &Catalog, a: &consumer::Assignment) -> Vec<TopicPartitions> {
    a.iter()
        .filter_map(|(name, parts)| {
            catalog.topic(name).map(|t| {
                TopicPartitions::default()
                    .with_topic_id(t.id)
                    .with_partitions(parts.iter().copied().collect())
            })
        })
        .collect()
}
