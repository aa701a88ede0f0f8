//! CreateAcls: bindings added to the catalog on the control shard and installed on every
//! shard before the answer, so the next request anywhere is authorized by them
//! (`catalog::acl`). A binding the authorizer cannot hold gets INVALID_REQUEST with why.

use std::rc::Rc;

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};
use kafka_protocol::ResponseError;

use super::{errors, str_bytes, Broker, Ctx, Reply, Versions};
use crate::catalog::acl::{AclBinding, PATTERN_LITERAL};
use crate::catalog::change::{self, Change};

pub const VERSIONS: Versions = Versions { min: 1, max: 3 };

pub async fn handle(broker: &Rc<Broker>, ctx: Ctx, req: CreateAclsRequest) -> Reply {
    let bindings: Vec<AclBinding> = req
        .creations
        .iter()
        .map(|c| AclBinding {
            resource_type: c.resource_type,
            resource_name: c.resource_name.to_string(),
            // v0 had no pattern type: literal.
            pattern_type: if ctx.version >= 1 {
                c.resource_pattern_type
            } else {
                PATTERN_LITERAL
            },
            principal: c.principal.to_string(),
            host: c.host.to_string(),
            operation: c.operation,
            permission: c.permission_type,
        })
        .collect();
    let n = bindings.len();
    let outcome = if n == 0 {
        Vec::new()
    } else {
        change::request(&broker.shard, Change::CreateAcls { bindings })
            .await
            .unwrap_or_default()
    };
    let results = (0..n)
        .map(|i| match outcome.get(i).map(|(_, r)| r) {
            Some(Ok(())) => AclCreationResult::default(),
            Some(Err(e)) => AclCreationResult::default()
                .with_error_code(errors::change(e).code())
                .with_error_message(Some(str_bytes(e.to_string()))),
            None => AclCreationResult::default()
                .with_error_code(ResponseError::UnknownServerError.code())
                .with_error_message(Some(str_bytes("the broker is stopping"))),
        })
        .collect();
    ctx.reply(&CreateAclsResponse::default().with_results(results))
}
