//! DeleteGroups: removes empty groups and their committed offsets (NON_EMPTY_GROUP while a
//! group has members).

use std::rc::Rc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use kafka_protocol::ResponseError;

use super::{Ctx, Reply, Versions};
use crate::group::{self, Op, Out};
use crate::shard::Shard;

pub const VERSIONS: Versions = Versions { min: 0, max: 2 };

pub async fn handle(shard: &Rc<Shard>, ctx: Ctx, req: DeleteGroupsRequest) -> Reply {
    let mut results = Vec::with_capacity(req.groups_names.len());
    for id in req.groups_names {
        let code = match group::call(shard, &id.0, Op::Delete).await {
            Ok(Out::Code(c)) => c,
            Ok(_) => ResponseError::UnknownServerError.code(),
            Err(c) => c,
        };
        results.push(
            DeletableGroupResult::default()
                .with_group_id(id)
                .with_error_code(code),
        );
    }
    ctx.reply(&DeleteGroupsResponse::default().with_results(results))
}
