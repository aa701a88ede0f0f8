//! ListGroups: every group on the broker, optionally filtered by state (v4+) and type (v5+;
//! all groups here are "classic").

use std::rc::Rc;

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::{str_bytes, Ctx, Reply, Versions};
use crate::group;
use crate::shard::Shard;

pub const VERSIONS: Versions = Versions { min: 0, max: 5 };

const GROUP_TYPE: &str = "classic";

pub async fn handle(shard: &Rc<Shard>, ctx: Ctx, req: ListGroupsRequest) -> Reply {
    let v = ctx.version;
    let types_match = v < 5
        || req.types_filter.is_empty()
        || req
            .types_filter
            .iter()
            .any(|t| t.eq_ignore_ascii_case(GROUP_TYPE));
    let states: Vec<String> = if v >= 4 {
        req.states_filter.iter().map(|s| s.to_string()).collect()
    } else {
        Vec::new()
    };
    let groups = if types_match {
        group::list_all(shard, states).await
    } else {
        Vec::new()
    };
    let groups = groups
        .into_iter()
        .map(|g| {
            let mut l = ListedGroup::default()
                .with_group_id(GroupId(str_bytes(g.group_id)))
                .with_protocol_type(str_bytes(g.protocol_type));
            if v >= 4 {
                l.group_state = str_bytes(g.state.name());
            }
            if v >= 5 {
                l.group_type = str_bytes(GROUP_TYPE);
            }
            l
        })
        .collect();
    ctx.reply(&ListGroupsResponse::default().with_groups(groups))
}
