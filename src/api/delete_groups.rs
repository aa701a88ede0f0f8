//! DeleteGroups: removes empty groups and their committed offsets (NON_EMPTY_GROUP while a
//! group has members).

use std::rc::Rc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use super::{errors, Broker, Ctx, Reply, Versions};
use crate::group::client;

pub const VERSIONS: Versions = Versions { min: 0, max: 2 };

pub async fn handle(broker: &Rc<Broker>, ctx: Ctx, req: DeleteGroupsRequest) -> Reply {
    let mut results = Vec::with_capacity(req.groups_names.len());
    let catalog = broker.catalog.get();
    for id in req.groups_names {
        let deleted = client::delete(&broker.shard, &catalog, id.0.to_string()).await;
        let code = errors::group_code(deleted);
        results.push(
            DeletableGroupResult::default()
                .with_group_id(id)
                .with_error_code(code),
        );
    }
    ctx.reply(&DeleteGroupsResponse::default().with_results(results))
}
