//! ListGroups: every group on the broker, optionally filtered by state (v4+) and by type (v5+:
//! "classic" or "consumer", the KIP-848 protocol).

use std::rc::Rc;

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::{str_bytes, Broker, Ctx, Reply, Versions};
use crate::group::client;

pub const VERSIONS: Versions = Versions { min: 0, max: 5 };

pub async fn handle(broker: &Rc<Broker>, ctx: Ctx, req: ListGroupsRequest) -> Reply {
    let v = ctx.version;
    let states: Vec<String> = if v >= 4 {
        req.states_filter.iter().map(|s| s.to_string()).collect()
    } else {
        Vec::new()
    };
    let types: Vec<String> = if v >= 5 {
        req.types_filter.iter().map(|s| s.to_string()).collect()
    } else {
        Vec::new()
    };
    let groups = client::list_all(&broker.shard, states)
        .await
        .into_iter()
        .filter(|g| types.is_empty() || types.iter().any(|t| t.eq_ignore_ascii_case(g.group_type)))
        .map(|g| {
            let mut l = ListedGroup::default()
                .with_group_id(GroupId(str_bytes(g.group_id)))
                .with_protocol_type(str_bytes(g.protocol_type));
            if v >= 4 {
                l.group_state = str_bytes(g.state);
            }
            if v >= 5 {
                l.group_type = str_bytes(g.group_type);
            }
            l
        })
        .collect();
    ctx.reply(&ListGroupsResponse::default().with_groups(groups))
}
