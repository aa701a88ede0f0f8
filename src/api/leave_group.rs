//! LeaveGroup: members leave at once instead of waiting out their session (v3+: several
//! members, by member id or by `group.instance.id`).

use std::rc::Rc;

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::ResponseError;

use super::{Ctx, Reply, Versions};
use crate::group::{self, Op, Out};
use crate::shard::Shard;

pub const VERSIONS: Versions = Versions { min: 0, max: 5 };

pub async fn handle(shard: &Rc<Shard>, ctx: Ctx, req: LeaveGroupRequest) -> Reply {
    let group_id = req.group_id.0.to_string();
    let members: Vec<(String, Option<String>)> = if ctx.version >= 3 {
        req.members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|s| s.to_string()),
                )
            })
            .collect()
    } else {
        vec![(req.member_id.to_string(), None)]
    };
    let result = if group_id.is_empty() {
        Err(ResponseError::InvalidGroupId.code())
    } else {
        match group::call(shard, &group_id, Op::Leave(members.clone())).await {
            Ok(Out::Codes(codes)) => Ok(codes),
            Ok(_) => Err(ResponseError::UnknownServerError.code()),
            Err(c) => Err(c),
        }
    };
    let mut resp = LeaveGroupResponse::default();
    match result {
        Err(c) => resp.error_code = c,
        Ok(codes) if ctx.version >= 3 => {
            resp.members = members
                .into_iter()
                .zip(codes)
                .map(|((id, instance), c)| {
                    MemberResponse::default()
                        .with_member_id(super::str_bytes(id))
                        .with_group_instance_id(instance.map(super::str_bytes))
                        .with_error_code(c)
                })
                .collect();
        }
        Ok(codes) => resp.error_code = codes.first().copied().unwrap_or(0),
    }
    ctx.reply(&resp)
}
