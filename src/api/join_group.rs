//! JoinGroup: a member joins (or rejoins) its group and waits for the rebalance to complete.
//! The state machine is `group::state`; this file maps the request and the versioned response.

use std::rc::Rc;

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::ResponseError;

use super::{errors, str_bytes, Broker, Ctx, Reply, Versions};
use crate::group::client;
use crate::group::state::{JoinOutcome, JoinRequest};

pub const VERSIONS: Versions = Versions { min: 0, max: 9 };

pub async fn handle(broker: &Rc<Broker>, ctx: Ctx, req: JoinGroupRequest) -> Reply {
    let group_id = req.group_id.0.to_string();
    let member_id = req.member_id.to_string();
    let outcome = if group_id.is_empty() {
        Err(ResponseError::InvalidGroupId)
    } else {
        let join = JoinRequest {
            member_id: member_id.clone(),
            instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
            client_id: ctx.client_id.to_string(),
            client_host: ctx.client_host.to_string(),
            session_timeout_ms: req.session_timeout_ms,
            // v0 has no rebalance timeout: the session timeout served as both.
            rebalance_timeout_ms: if ctx.version >= 1 {
                req.rebalance_timeout_ms
            } else {
                req.session_timeout_ms
            },
            protocol_type: req.protocol_type.to_string(),
            protocols: req
                .protocols
                .iter()
                .map(|p| (p.name.to_string(), p.metadata.clone()))
                .collect(),
            require_known_member_id: ctx.version >= 4,
        };
        let catalog = broker.catalog.get();
        client::join(&broker.shard, &catalog, group_id, join)
            .await
            .map_err(errors::group)
    };
    let (outcome, error) =
        errors::group_answer(outcome, |o| o.error, || JoinOutcome::failed(&member_id));
    let v = ctx.version;
    let mut resp = JoinGroupResponse::default()
        .with_error_code(error)
        .with_generation_id(outcome.generation)
        .with_leader(str_bytes(outcome.leader))
        .with_member_id(str_bytes(outcome.member_id))
        .with_members(
            outcome
                .members
                .into_iter()
                .map(|(id, instance, metadata)| {
                    JoinGroupResponseMember::default()
                        .with_member_id(str_bytes(id))
                        .with_group_instance_id(instance.filter(|_| v >= 5).map(str_bytes))
                        .with_metadata(metadata)
                })
                .collect(),
        );
    if v >= 7 {
        resp.protocol_type = outcome.protocol_type.map(str_bytes);
        resp.protocol_name = outcome.protocol.map(str_bytes);
    } else {
        resp.protocol_name = Some(str_bytes(outcome.protocol.unwrap_or_default()));
    }
    if v >= 9 {
        resp.skip_assignment = outcome.skip_assignment;
    }
    ctx.reply(&resp)
}
