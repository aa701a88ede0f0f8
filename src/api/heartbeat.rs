//! Heartbeat: keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin.

use std::rc::Rc;

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use kafka_protocol::ResponseError;

use super::{Ctx, Reply, Versions};
use crate::group::{self, Op, Out};
use crate::shard::Shard;

pub const VERSIONS: Versions = Versions { min: 0, max: 4 };

pub async fn handle(shard: &Rc<Shard>, ctx: Ctx, req: HeartbeatRequest) -> Reply {
    let group_id = req.group_id.0.to_string();
    let error = if group_id.is_empty() {
        ResponseError::InvalidGroupId.code()
    } else {
        let op = Op::Heartbeat {
            member_id: req.member_id.to_string(),
            instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
            generation: req.generation_id,
        };
        match group::call(shard, &group_id, op).await {
            Ok(Out::Code(c)) => c,
            Ok(_) => ResponseError::UnknownServerError.code(),
            Err(c) => c,
        }
    };
    ctx.reply(&HeartbeatResponse::default().with_error_code(error))
}
