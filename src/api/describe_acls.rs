//! DescribeAcls: the catalog's bindings a filter matches, grouped by resource pattern as Kafka
//! answers them.

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};

use super::{str_bytes, Broker, Ctx, Reply, Versions};
use crate::catalog::acl::AclFilter;

pub const VERSIONS: Versions = Versions { min: 1, max: 3 };

pub fn filter_of(
    resource_type: i8,
    name: Option<&kafka_protocol::protocol::StrBytes>,
    pattern_type: i8,
    principal: Option<&kafka_protocol::protocol::StrBytes>,
    host: Option<&kafka_protocol::protocol::StrBytes>,
    operation: i8,
    permission: i8,
) -> AclFilter {
    AclFilter {
        resource_type,
        resource_name: name.map(|s| s.to_string()),
        pattern_type,
        principal: principal.map(|s| s.to_string()),
        host: host.map(|s| s.to_string()),
        operation,
        permission,
    }
}

pub async fn handle(broker: &Rc<Broker>, ctx: Ctx, req: DescribeAclsRequest) -> Reply {
    let filter = filter_of(
        req.resource_type_filter,
        req.resource_name_filter.as_ref(),
        req.pattern_type_filter,
        req.principal_filter.as_ref(),
        req.host_filter.as_ref(),
        req.operation,
        req.permission_type,
    );
    let catalog = broker.catalog.get();
    let mut by_resource: BTreeMap<(i8, &str, i8), Vec<AclDescription>> = BTreeMap::new();
    for b in catalog.acls.iter().filter(|b| filter.matches(b)) {
        by_resource
            .entry((b.resource_type, b.resource_name.as_str(), b.pattern_type))
            .or_default()
            .push(
                AclDescription::default()
                    .with_principal(str_bytes(b.principal.clone()))
                    .with_host(str_bytes(b.host.clone()))
                    .with_operation(b.operation)
                    .with_permission_type(b.permission),
            );
    }
    let resources = by_resource
        .into_iter()
        .map(|((rt, name, pt), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(rt)
                .with_resource_name(str_bytes(name.to_string()))
                .with_pattern_type(pt)
                .with_acls(acls)
        })
        .collect();
    ctx.reply(&DescribeAclsResponse::default().with_resources(resources))
}
