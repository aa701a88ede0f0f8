//! LeaveGroup: members leave at once instead of waiting out their session (v3+: several
//! members, by member id or by `group.instance.id`).

use std::rc::Rc;

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::ResponseError;

use super::{errors, Broker, Ctx, Reply, Versions};
use crate::group::client;

pub const VERSIONS: Versions = Versions { min: 0, max: 5 };

pub async fn handle(broker: &Rc<Broker>, ctx: Ctx, req: LeaveGroupRequest) -> Reply {
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
        Err(ResponseError::InvalidGroupId)
    } else {
        let catalog = broker.catalog.get();
        client::leave(&broker.shard, &catalog, group_id, members.clone())
            .await
            .map_err(errors::group)
    };
    let mut resp = LeaveGroupResponse::default();
    match result {
        Err(e) => resp.error_code = e.code(),
        Ok(results) if ctx.version >= 3 => {
            resp.members = members
                .into_iter()
                .zip(results)
                .map(|((id, instance), r)| {
                    MemberResponse::default()
                        .with_member_id(super::str_bytes(id))
                        .with_group_instance_id(instance.map(super::str_bytes))
                        .with_error_code(errors::group_code(r))
                })
                .collect();
        }
        Ok(results) => resp.error_code = results.into_iter().next().map_or(0, errors::group_code),
    }
    ctx.reply(&resp)
}
