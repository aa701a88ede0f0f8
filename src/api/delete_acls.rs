//! DeleteAcls: every binding a filter matches is removed from the catalog (on the control
//! shard, installed everywhere before the answer); each filter's answer lists what it matched.
//! The list is taken from the catalog just before the change, so two DeleteAcls racing may
//! both report a binding that one of them removed.

use std::rc::Rc;

use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse};
use kafka_protocol::ResponseError;

use super::describe_acls::filter_of;
use super::{str_bytes, Broker, Ctx, Reply, Versions};
use crate::catalog::change::{self, Change};

pub const VERSIONS: Versions = Versions { min: 1, max: 3 };

pub async fn handle(broker: &Rc<Broker>, ctx: Ctx, req: DeleteAclsRequest) -> Reply {
    let filters: Vec<_> = req
        .filters
        .iter()
        .map(|f| {
            filter_of(
                f.resource_type_filter,
                f.resource_name_filter.as_ref(),
                f.pattern_type_filter,
                f.principal_filter.as_ref(),
                f.host_filter.as_ref(),
                f.operation,
                f.permission_type,
            )
        })
        .collect();
    let catalog = broker.catalog.get();
    let matched: Vec<Vec<DeleteAclsMatchingAcl>> = filters
        .iter()
        .map(|f| {
            catalog
                .acls
                .iter()
                .filter(|b| f.matches(b))
                .map(|b| {
                    DeleteAclsMatchingAcl::default()
                        .with_resource_type(b.resource_type)
                        .with_resource_name(str_bytes(b.resource_name.clone()))
                        .with_pattern_type(b.pattern_type)
                        .with_principal(str_bytes(b.principal.clone()))
                        .with_host(str_bytes(b.host.clone()))
                        .with_operation(b.operation)
                        .with_permission_type(b.permission)
                })
                .collect()
        })
        .collect();
    let applied = filters.is_empty()
        || change::request(&broker.shard, Change::DeleteAcls { filters })
            .await
            .is_ok();
    let results = matched
        .into_iter()
        .map(|acls| {
            let r = DeleteAclsFilterResult::default();
            if applied {
                r.with_matching_acls(acls)
            } else {
                r.with_error_code(ResponseError::UnknownServerError.code())
                    .with_error_message(Some(str_bytes("the broker is stopping")))
            }
        })
        .collect();
    ctx.reply(&DeleteAclsResponse::default().with_filter_results(results))
}
