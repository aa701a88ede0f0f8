//! SyncGroup: the leader hands in the assignment; every member gets its part.

use std::rc::Rc;

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::ResponseError;

use super::{errors, str_bytes, Broker, Ctx, Reply, Versions};
use crate::group::client;
use crate::group::ops::SyncRequest;
use crate::group::state::SyncOutcome;

pub const VERSIONS: Versions = Versions { min: 0, max: 5 };

pub async fn handle(broker: &Rc<Broker>, ctx: Ctx, req: SyncGroupRequest) -> Reply {
    let group_id = req.group_id.0.to_string();
    let outcome = if group_id.is_empty() {
        Err(ResponseError::InvalidGroupId)
    } else {
        let sync = SyncRequest {
            member_id: req.member_id.to_string(),
            instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
            generation: req.generation_id,
            protocol_type: req.protocol_type.as_ref().map(|s| s.to_string()),
            protocol: req.protocol_name.as_ref().map(|s| s.to_string()),
            assignments: req
                .assignments
                .into_iter()
                .map(|a| (a.member_id.to_string(), a.assignment))
                .collect(),
        };
        let catalog = broker.catalog.get();
        client::sync(&broker.shard, &catalog, group_id, sync)
            .await
            .map_err(errors::group)
    };
    let (outcome, error) = errors::group_answer(outcome, |o| o.error, SyncOutcome::default);
    let mut resp = SyncGroupResponse::default()
        .with_error_code(error)
        .with_assignment(outcome.assignment);
    if ctx.version >= 5 {
        resp.protocol_type = outcome.protocol_type.map(str_bytes);
        resp.protocol_name = outcome.protocol.map(str_bytes);
    }
    ctx.reply(&resp)
}
