//! Heartbeat: keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin.

use std::rc::Rc;

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use kafka_protocol::ResponseError;

use super::{errors, Broker, Ctx, Reply, Versions};
use crate::group::client;
use crate::group::ops::MemberRef;

pub const VERSIONS: Versions = Versions { min: 0, max: 4 };

pub async fn handle(broker: &Rc<Broker>, ctx: Ctx, req: HeartbeatRequest) -> Reply {
    let group_id = req.group_id.0.to_string();
    let error = if group_id.is_empty() {
        ResponseError::InvalidGroupId.code()
    } else {
        let member = MemberRef {
            member_id: req.member_id.to_string(),
            instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
            generation: req.generation_id,
        };
        let catalog = broker.catalog.get();
        errors::group_code(client::heartbeat(&broker.shard, &catalog, group_id, member).await)
    };
    ctx.reply(&HeartbeatResponse::default().with_error_code(error))
}
