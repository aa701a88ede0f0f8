//! ACLs and the authorizer, as Kafka's `StandardAuthorizer` decides: the bindings live in the
//! catalog (so they are persisted with it and installed on every shard), and every shard
//! answers "may this principal, from this host, do this operation on this resource?" from its
//! own copy, without asking anyone.
//!
//! The rules (Kafka's `AclAuthorizer`/`StandardAuthorizer`):
//! - a binding applies to a resource of its type when its pattern is LITERAL and names the
//!   resource or is `*`, or is PREFIXED and the resource's name starts with it; and to a
//!   request when its principal is the request's or `User:*`, and its host is the request's
//!   or `*`;
//! - a DENY binding of the operation (or of ALL) that applies refuses, whatever allows;
//! - else an ALLOW binding of the operation, or of ALL, or of an operation that implies it
//!   (READ, WRITE, DELETE and ALTER imply DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS),
//!   allows;
//! - else, when no binding at all applies to the resource (whatever its principal, host or
//!   operation), the request is allowed when `allow.everyone.if.no.acl.found` is true (our
//!   default: a broker without ACLs serves everyone, as Kafka does without an authorizer);
//! - else it is refused.
//!
//! Codes are Kafka's wire codes (`org.apache.kafka.common.acl.AclOperation` and friends).

use serde::{Deserialize, Serialize};

/// Resource types.
pub const RESOURCE_ANY: i8 = 1;
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_GROUP: i8 = 3;
pub const RESOURCE_CLUSTER: i8 = 4;
pub const RESOURCE_TRANSACTIONAL_ID: i8 = 5;
pub const RESOURCE_DELEGATION_TOKEN: i8 = 6;
pub const RESOURCE_USER: i8 = 7;
/// The one cluster resource's name.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// Pattern types.
pub const PATTERN_ANY: i8 = 1;
pub const PATTERN_MATCH: i8 = 2;
pub const PATTERN_LITERAL: i8 = 3;
pub const PATTERN_PREFIXED: i8 = 4;

/// Operations.
pub const OP_ANY: i8 = 1;
pub const OP_ALL: i8 = 2;
pub const OP_READ: i8 = 3;
pub const OP_WRITE: i8 = 4;
pub const OP_CREATE: i8 = 5;
pub const OP_DELETE: i8 = 6;
pub const OP_ALTER: i8 = 7;
pub const OP_DESCRIBE: i8 = 8;
pub const OP_CLUSTER_ACTION: i8 = 9;
pub const OP_DESCRIBE_CONFIGS: i8 = 10;
pub const OP_ALTER_CONFIGS: i8 = 11;
pub const OP_IDEMPOTENT_WRITE: i8 = 12;
pub const OP_CREATE_TOKENS: i8 = 13;
pub const OP_DESCRIBE_TOKENS: i8 = 14;

/// Permission types.
pub const PERMISSION_ANY: i8 = 1;
pub const PERMISSION_DENY: i8 = 2;
pub const PERMISSION_ALLOW: i8 = 3;

/// The literal name that stands for every resource of a type.
pub const WILDCARD: &str = "*";
/// The principal that stands for every principal.
pub const WILDCARD_PRINCIPAL: &str = "User:*";
/// The principal of a PLAINTEXT connection (no authentication).
pub const ANONYMOUS: &str = "User:ANONYMOUS";

/// One ACL binding, as stored.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: i8,
    pub resource_name: String,
    pub pattern_type: i8,
    pub principal: String,
    pub host: String,
    pub operation: i8,
    pub permission: i8,
}

/// Why a binding cannot be created (Kafka answers INVALID_REQUEST with the message).
pub fn validate(b: &AclBinding) -> Result<(), String> {
    if !matches!(b.resource_type, RESOURCE_TOPIC..=RESOURCE_USER) {
        return Err(format!("unknown resource type {}", b.resource_type));
    }
    if !matches!(b.pattern_type, PATTERN_LITERAL | PATTERN_PREFIXED) {
        return Err("the pattern type must be LITERAL or PREFIXED".to_string());
    }
    if b.resource_name.is_empty() {
        return Err("the resource name must not be empty".to_string());
    }
    if b.resource_type == RESOURCE_CLUSTER && b.resource_name != CLUSTER_NAME {
        return Err(format!("the cluster resource is named '{CLUSTER_NAME}'"));
    }
    if !matches!(b.operation, OP_ALL..=OP_DESCRIBE_TOKENS) {
        return Err(format!("unknown operation {}", b.operation));
    }
    if !matches!(b.permission, PERMISSION_DENY | PERMISSION_ALLOW) {
        return Err("the permission type must be ALLOW or DENY".to_string());
    }
    match b.principal.split_once(':') {
        Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {}
        _ => {
            return Err(format!(
                "principal '{}' is not TYPE:NAME (e.g. User:alice)",
                b.principal
            ))
        }
    }
    if b.host.is_empty() {
        return Err("the host must not be empty ('*' for any)".to_string());
    }
    Ok(())
}

/// What DescribeAcls and DeleteAcls match bindings with; `None` fields match anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: i8,
    pub resource_name: Option<String>,
    pub pattern_type: i8,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: i8,
    pub permission: i8,
}

impl AclFilter {
    /// Whether `b` matches, as Kafka's `AclBindingFilter.matches`: ANY matches every value;
    /// a MATCH pattern matches the bindings that would apply to the named resource (literal of
    /// the name or `*`, prefixes of the name).
    pub fn matches(&self, b: &AclBinding) -> bool {
        let any_or = |filter: i8, any: i8, value: i8| filter == any || filter == value;
        let name_ok = match (&self.resource_name, self.pattern_type) {
            (None, _) => true,
            (Some(name), PATTERN_MATCH) => pattern_applies(b, name),
            (Some(name), _) => *name == b.resource_name,
        };
        let pattern_ok = match self.pattern_type {
            PATTERN_ANY | PATTERN_MATCH => true,
            p => p == b.pattern_type,
        };
        any_or(self.resource_type, RESOURCE_ANY, b.resource_type)
            && name_ok
            && pattern_ok
            && self.principal.as_ref().is_none_or(|p| *p == b.principal)
            && self.host.as_ref().is_none_or(|h| *h == b.host)
            && any_or(self.operation, OP_ANY, b.operation)
            && any_or(self.permission, PERMISSION_ANY, b.permission)
    }
}

/// Whether `b`'s pattern covers a resource named `name` (of its type).
fn pattern_applies(b: &AclBinding, name: &str) -> bool {
    match b.pattern_type {
        PATTERN_LITERAL => b.resource_name == name || b.resource_name == WILDCARD,
        PATTERN_PREFIXED => name.starts_with(&b.resource_name),
        _ => false,
    }
}

/// Operations an ALLOW of `granted` also allows.
fn implies(granted: i8, wanted: i8) -> bool {
    granted == wanted
        || granted == OP_ALL
        || (wanted == OP_DESCRIBE && matches!(granted, OP_READ | OP_WRITE | OP_DELETE | OP_ALTER))
        || (wanted == OP_DESCRIBE_CONFIGS && granted == OP_ALTER_CONFIGS)
}

/// Who asks.
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    pub principal: &'a str,
    /// The client's IP address, as text ("127.0.0.1").
    pub host: &'a str,
}

/// The authorizer's answer for `operation` on the resource `(resource_type, name)`.
pub fn authorize(
    acls: &[AclBinding],
    allow_if_no_acl: bool,
    who: Requester<'_>,
    operation: i8,
    resource_type: i8,
    name: &str,
) -> bool {
    let mut on_resource = acls
        .iter()
        .filter(|b| b.resource_type == resource_type && pattern_applies(b, name))
        .peekable();
    if on_resource.peek().is_none() {
        return allow_if_no_acl;
    }
    let applies = |b: &&AclBinding| {
        (b.principal == who.principal || b.principal == WILDCARD_PRINCIPAL)
            && (b.host == who.host || b.host == WILDCARD)
    };
    let mut allowed = false;
    for b in on_resource.filter(applies) {
        match b.permission {
            PERMISSION_DENY if b.operation == operation || b.operation == OP_ALL => return false,
            PERMISSION_ALLOW if implies(b.operation, operation) => allowed = true,
            _ => {}
        }
    }
    allowed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(rt: i8, name: &str, pt: i8, principal: &str, op: i8, perm: i8) -> AclBinding {
        AclBinding {
            resource_type: rt,
            resource_name: name.into(),
            pattern_type: pt,
            principal: principal.into(),
            host: "*".into(),
            operation: op,
            permission: perm,
        }
    }

    const ALICE: Requester = Requester {
        principal: "User:alice",
        host: "10.0.0.1",
    };

    #[test]
    fn deny_wins_implications_allow_and_no_acl_means_everyone() {
        let acls = vec![
            binding(
                RESOURCE_TOPIC,
                "t",
                PATTERN_LITERAL,
                "User:*",
                OP_DESCRIBE,
                PERMISSION_ALLOW,
            ),
            binding(
                RESOURCE_TOPIC,
                "t",
                PATTERN_LITERAL,
                "User:*",
                OP_READ,
                PERMISSION_DENY,
            ),
            binding(
                RESOURCE_TOPIC,
                "w",
                PATTERN_PREFIXED,
                "User:alice",
                OP_WRITE,
                PERMISSION_ALLOW,
            ),
            binding(
                RESOURCE_TOPIC,
                "x",
                PATTERN_LITERAL,
                "User:*",
                OP_ALL,
                PERMISSION_DENY,
            ),
        ];
        let can = |op, name| authorize(&acls, true, ALICE, op, RESOURCE_TOPIC, name);
        // librdkafka 0119: Describe allowed, Read denied.
        assert!(can(OP_DESCRIBE, "t"));
        assert!(!can(OP_READ, "t"));
        assert!(
            !can(OP_WRITE, "t"),
            "bindings on the topic, none allowing Write"
        );
        // A prefix allows Write, and Write implies Describe; other operations are refused.
        assert!(can(OP_WRITE, "wanted") && can(OP_DESCRIBE, "wanted"));
        assert!(!can(OP_READ, "wanted"));
        // librdkafka 0109: deny All.
        assert!(!can(OP_DESCRIBE, "x") && !can(OP_WRITE, "x"));
        // No binding on the resource: as configured.
        assert!(can(OP_READ, "other"));
        assert!(!authorize(
            &acls,
            false,
            ALICE,
            OP_READ,
            RESOURCE_TOPIC,
            "other"
        ));
        // Hosts and principals must match.
        let bob = Requester {
            principal: "User:bob",
            host: "10.0.0.1",
        };
        assert!(!authorize(
            &acls,
            true,
            bob,
            OP_WRITE,
            RESOURCE_TOPIC,
            "wanted"
        ));
        let mut host_bound = acls.clone();
        host_bound.push(AclBinding {
            host: "10.0.0.9".into(),
            ..binding(
                RESOURCE_GROUP,
                "g",
                PATTERN_LITERAL,
                "User:*",
                OP_READ,
                PERMISSION_ALLOW,
            )
        });
        assert!(!authorize(
            &host_bound,
            true,
            ALICE,
            OP_READ,
            RESOURCE_GROUP,
            "g"
        ));
        // A wildcard literal covers every name.
        let star = vec![binding(
            RESOURCE_TOPIC,
            "*",
            PATTERN_LITERAL,
            "User:*",
            OP_ALL,
            PERMISSION_DENY,
        )];
        assert!(!authorize(
            &star,
            true,
            ALICE,
            OP_DESCRIBE,
            RESOURCE_TOPIC,
            "anything"
        ));
    }

    #[test]
    fn filters_match_as_kafka_does() {
        let b = binding(
            RESOURCE_TOPIC,
            "orders",
            PATTERN_PREFIXED,
            "User:a",
            OP_READ,
            PERMISSION_ALLOW,
        );
        let all = AclFilter {
            resource_type: RESOURCE_ANY,
            resource_name: None,
            pattern_type: PATTERN_ANY,
            principal: None,
            host: None,
            operation: OP_ANY,
            permission: PERMISSION_ANY,
        };
        assert!(all.matches(&b));
        let named = |name: &str, pattern| AclFilter {
            resource_name: Some(name.into()),
            pattern_type: pattern,
            ..all.clone()
        };
        assert!(!named("orders-eu", PATTERN_LITERAL).matches(&b));
        assert!(
            named("orders-eu", PATTERN_MATCH).matches(&b),
            "the prefix applies to it"
        );
        assert!(named("orders", PATTERN_PREFIXED).matches(&b));
        assert!(!AclFilter {
            operation: OP_WRITE,
            ..all.clone()
        }
        .matches(&b));
        assert!(!AclFilter {
            principal: Some("User:b".into()),
            ..all
        }
        .matches(&b));
    }

    #[test]
    fn bindings_are_checked() {
        let ok = binding(
            RESOURCE_TOPIC,
            "t",
            PATTERN_LITERAL,
            "User:*",
            OP_ALL,
            PERMISSION_DENY,
        );
        assert_eq!(validate(&ok), Ok(()));
        assert!(validate(&AclBinding {
            principal: "alice".into(),
            ..ok.clone()
        })
        .is_err());
        assert!(validate(&AclBinding {
            pattern_type: PATTERN_MATCH,
            ..ok.clone()
        })
        .is_err());
        assert!(validate(&AclBinding {
            operation: OP_ANY,
            ..ok.clone()
        })
        .is_err());
        assert!(validate(&AclBinding {
            resource_type: RESOURCE_CLUSTER,
            ..ok
        })
        .is_err());
    }
}
