//! DescribeGroups: state, protocol and members (with metadata and assignment once stable).

use std::rc::Rc;

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::ResponseError;

use super::{errors, str_bytes, Broker, Ctx, Reply, Versions};
use crate::group::client;

pub const VERSIONS: Versions = Versions { min: 0, max: 6 };

pub async fn handle(broker: &Rc<Broker>, ctx: Ctx, req: DescribeGroupsRequest) -> Reply {
    let v = ctx.version;
    let mut groups = Vec::with_capacity(req.groups.len());
    let catalog = broker.catalog.get();
    for id in req.groups {
        let mut d = DescribedGroup::default().with_group_id(id.clone());
        match client::describe(&broker.shard, &catalog, id.0.to_string()).await {
            Ok(Some(g)) => {
                d.group_state = str_bytes(g.state);
                d.protocol_type = str_bytes(g.protocol_type);
                d.protocol_data = str_bytes(g.protocol);
                d.members = g
                    .members
                    .into_iter()
                    .map(|m| {
                        DescribedGroupMember::default()
                            .with_member_id(str_bytes(m.member_id))
                            .with_group_instance_id(m.instance_id.filter(|_| v >= 4).map(str_bytes))
                            .with_client_id(str_bytes(m.client_id))
                            .with_client_host(str_bytes(m.client_host))
                            .with_member_metadata(m.metadata)
                            .with_member_assignment(m.assignment)
                    })
                    .collect();
            }
            Ok(None) => {
                // Kafka describes an unknown group as Dead; v6 says so with an error.
                d.group_state = str_bytes("Dead");
                if v >= 6 {
                    d.error_code = ResponseError::GroupIdNotFound.code();
                    d.error_message = Some(str_bytes(format!("group '{}' not found", id.0)));
                }
            }
            Err(e) => d.error_code = errors::group(e).code(),
        }
        groups.push(d);
    }
    ctx.reply(&DescribeGroupsResponse::default().with_groups(groups))
}
