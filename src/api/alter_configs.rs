//! AlterConfigs (replace a resource's configs) and IncrementalAlterConfigs (set, delete, append
//! to or subtract from single keys), for topics and for the broker's dynamic configs (resource
//! name "" for the cluster-wide defaults, or this broker's id). Requests are checked here as
//! Kafka's `ConfigAdminManager.preprocess` checks them; the values are validated through the
//! config table on the control shard, persisted in the catalog and applied by the partitions
//! at once.

use std::collections::BTreeSet;
use std::rc::Rc;

use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{errors, str_bytes, Broker, Ctx, Reply, Versions};
use crate::catalog::change::{self, Change, ConfigOp, ConfigResource};

pub const VERSIONS: Versions = Versions { min: 0, max: 2 };
pub const INCREMENTAL_VERSIONS: Versions = Versions { min: 0, max: 1 };

/// Kafka's resource types.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const RESOURCE_BROKER_LOGGER: i8 = 8;

/// IncrementalAlterConfigs' operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// One resource's answer: its type and name, the error code and message.
type Outcome = (i8, StrBytes, i16, Option<String>);

/// One resource as decoded: its type and name, whether its configs are replaced, the key
/// names as sent, and the ops, or why they are not valid.
struct Asked {
    ty: i8,
    name: StrBytes,
    replace: bool,
    keys: Vec<String>,
    ops: Result<Vec<ConfigOp>, String>,
}

pub async fn handle(broker: &Rc<Broker>, ctx: Ctx, req: AlterConfigsRequest) -> Reply {
    let asked = req
        .resources
        .into_iter()
        .map(|r| {
            let keys = r.configs.iter().map(|c| c.name.to_string()).collect();
            let nulls: Vec<String> = r
                .configs
                .iter()
                .filter(|c| c.value.is_none())
                .map(|c| c.name.to_string())
                .collect();
            let ops = if nulls.is_empty() {
                Ok(r.configs
                    .into_iter()
                    .filter_map(|c| Some(ConfigOp::Set(c.name.to_string(), c.value?.to_string())))
                    .collect())
            } else {
                Err(null_values(&nulls))
            };
            Asked {
                ty: r.resource_type,
                name: r.resource_name,
                replace: true,
                keys,
                ops,
            }
        })
        .collect();
    let outcomes = alter(broker, asked, req.validate_only).await;
    let responses = outcomes
        .into_iter()
        .map(|(ty, name, code, message)| {
            alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(ty)
                .with_resource_name(name)
                .with_error_code(code)
                .with_error_message(message.map(str_bytes))
        })
        .collect();
    ctx.reply(&AlterConfigsResponse::default().with_responses(responses))
}

pub async fn handle_incremental(
    broker: &Rc<Broker>,
    ctx: Ctx,
    req: IncrementalAlterConfigsRequest,
) -> Reply {
    let asked = req
        .resources
        .into_iter()
        .map(|r| {
            let keys = r.configs.iter().map(|c| c.name.to_string()).collect();
            let nulls: Vec<String> = r
                .configs
                .iter()
                .filter(|c| c.config_operation != OP_DELETE && c.value.is_none())
                .map(|c| c.name.to_string())
                .collect();
            let ops = if nulls.is_empty() {
                r.configs
                    .into_iter()
                    .map(|c| {
                        let (key, value) = (c.name.to_string(), c.value.map(|v| v.to_string()));
                        match (c.config_operation, value) {
                            (OP_SET, Some(v)) => Ok(ConfigOp::Set(key, v)),
                            (OP_DELETE, _) => Ok(ConfigOp::Delete(key)),
                            (OP_APPEND, Some(v)) => Ok(ConfigOp::Append(key, v)),
                            (OP_SUBTRACT, Some(v)) => Ok(ConfigOp::Subtract(key, v)),
                            (op, _) => Err(format!("Unknown operations type {op}")),
                        }
                    })
                    .collect()
            } else {
                Err(null_values(&nulls))
            };
            Asked {
                ty: r.resource_type,
                name: r.resource_name,
                replace: false,
                keys,
                ops,
            }
        })
        .collect();
    let outcomes = alter(broker, asked, req.validate_only).await;
    let responses = outcomes
        .into_iter()
        .map(|(ty, name, code, message)| {
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(ty)
                .with_resource_name(name)
                .with_error_code(code)
                .with_error_message(message.map(str_bytes))
        })
        .collect();
    ctx.reply(&IncrementalAlterConfigsResponse::default().with_responses(responses))
}

/// Kafka's refusal of a config without a value (other than IncrementalAlterConfigs' DELETE).
fn null_values(names: &[String]) -> String {
    format!("Null value not supported for : {}", names.join(", "))
}

/// What a resource type and name stand for, or why the request is refused (Kafka's messages).
fn resource(ty: i8, name: &str, node_id: i32) -> Result<ConfigResource, String> {
    match ty {
        RESOURCE_TOPIC => Ok(ConfigResource::Topic(name.to_string())),
        RESOURCE_BROKER if name.is_empty() => Ok(ConfigResource::Broker(None)),
        RESOURCE_BROKER => match name.parse::<i32>() {
            Ok(id) if id == node_id => Ok(ConfigResource::Broker(Some(id))),
            Ok(_) => Err(format!(
                "Unexpected broker id, expected {node_id}, but received {name}"
            )),
            Err(_) => Err(format!(
                "Node id must be an integer, but it is: {}",
                name.escape_debug()
            )),
        },
        RESOURCE_BROKER_LOGGER => {
            Err("broker logger levels cannot be changed at runtime: shardlog logs through tracing (RUST_LOG)".into())
        }
        other => Err(format!("Unknown resource type {other}")),
    }
}

/// Checks every resource as Kafka's `ConfigAdminManager.preprocess` does before anything is
/// applied: each resource at most once, each key at most once per resource of an
/// IncrementalAlterConfigs, ops with values, a known resource. A legacy AlterConfigs that names
/// a key twice is taken with the last value, as ZooKeeper-mode Kafka took it (KRaft's
/// preprocess refuses it): librdkafka's own pattern of describing a resource and sending back
/// every entry plus the changed one (its test 0092) sends duplicates. Per resource, in request order: what to apply, or why not.
fn preprocess(
    asked: &[Asked],
    node_id: i32,
) -> Vec<Result<(ConfigResource, Vec<ConfigOp>), String>> {
    let mut seen = BTreeSet::new();
    let duplicated: BTreeSet<(i8, &str)> = asked
        .iter()
        .map(|a| (a.ty, a.name.as_str()))
        .filter(|id| !seen.insert(*id))
        .collect();
    asked
        .iter()
        .map(|a| {
            let mut keys = BTreeSet::new();
            if duplicated.contains(&(a.ty, a.name.as_str())) {
                Err("Each resource must appear at most once.".to_string())
            } else if !a.replace && !a.keys.iter().all(|k| keys.insert(k.as_str())) {
                Err("Error due to duplicate config keys".to_string())
            } else {
                let ops = a.ops.clone()?;
                Ok((resource(a.ty, a.name.as_str(), node_id)?, ops))
            }
        })
        .collect()
}

/// Applies the resources that pass [`preprocess`] in one catalog change; answers every
/// resource in request order.
async fn alter(broker: &Rc<Broker>, asked: Vec<Asked>, validate_only: bool) -> Vec<Outcome> {
    let checked = preprocess(&asked, broker.shard.config.node_id);
    let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(asked.len());
    let mut accepted: Vec<(i8, StrBytes, ConfigResource, bool, Vec<ConfigOp>)> = Vec::new();
    for (a, checked) in asked.into_iter().zip(checked) {
        match checked {
            Err(why) => outcomes.push(Some((
                a.ty,
                a.name,
                ResponseError::InvalidRequest.code(),
                Some(why),
            ))),
            Ok((resource, ops)) => {
                outcomes.push(None);
                accepted.push((a.ty, a.name, resource, a.replace, ops));
            }
        }
    }
    let results = if accepted.is_empty() {
        Vec::new()
    } else {
        let change = Change::AlterConfigs {
            resources: accepted
                .iter()
                .map(|(_, _, resource, replace, ops)| (resource.clone(), *replace, ops.clone()))
                .collect(),
            validate_only,
        };
        change::request(&broker.shard, change)
            .await
            .unwrap_or_default()
    };
    let mut results = results.into_iter();
    let mut accepted = accepted.into_iter();
    outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or_else(|| {
                let (ty, name) = accepted
                    .next()
                    .map(|(ty, name, ..)| (ty, name))
                    .unwrap_or_default();
                match results.next() {
                    Some((_, Ok(()))) => (ty, name, 0, None),
                    Some((_, Err(e))) => (ty, name, errors::change(&e).code(), Some(e.to_string())),
                    None => (
                        ty,
                        name,
                        ResponseError::NotController.code(),
                        Some("the broker is stopping".into()),
                    ),
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resource names map as Kafka's ConfigAdminManager maps them.
    #[test]
    fn resources() {
        assert_eq!(
            resource(RESOURCE_TOPIC, "t", 0),
            Ok(ConfigResource::Topic("t".into()))
        );
        assert_eq!(
            resource(RESOURCE_BROKER, "", 0),
            Ok(ConfigResource::Broker(None))
        );
        assert_eq!(
            resource(RESOURCE_BROKER, "3", 3),
            Ok(ConfigResource::Broker(Some(3)))
        );
        assert_eq!(
            resource(RESOURCE_BROKER, "4", 3),
            Err("Unexpected broker id, expected 3, but received 4".into())
        );
        assert_eq!(
            resource(RESOURCE_BROKER, "x", 3),
            Err("Node id must be an integer, but it is: x".into())
        );
        assert!(resource(RESOURCE_BROKER_LOGGER, "3", 3).is_err());
        assert_eq!(resource(99, "x", 3), Err("Unknown resource type 99".into()));
    }

    fn asked(ty: i8, name: &'static str, keys: &[&str]) -> Asked {
        Asked {
            ty,
            name: StrBytes::from_static_str(name),
            replace: false,
            keys: keys.iter().map(|k| k.to_string()).collect(),
            ops: Ok(keys
                .iter()
                .map(|k| ConfigOp::Set(k.to_string(), "1".into()))
                .collect()),
        }
    }

    /// A resource named twice is refused both times, a key named twice in one resource is
    /// refused, and the rest go on; the messages are Kafka's.
    #[test]
    fn preprocess_refuses_duplicates() {
        let mut nulls = asked(RESOURCE_BROKER, "", &["log.retention.ms"]);
        nulls.ops = Err(null_values(&["log.retention.ms".to_string()]));
        let checked = preprocess(
            &[
                asked(RESOURCE_TOPIC, "t", &["retention.ms"]),
                asked(RESOURCE_TOPIC, "t", &["segment.bytes"]),
                asked(
                    RESOURCE_BROKER,
                    "0",
                    &["message.max.bytes", "message.max.bytes"],
                ),
                asked(RESOURCE_BROKER, "", &["log.retention.ms"]),
                nulls,
                asked(RESOURCE_TOPIC, "u", &["retention.ms"]),
                asked(RESOURCE_BROKER, "1", &["log.retention.ms"]),
            ],
            0,
        );
        let twice = Err("Each resource must appear at most once.".to_string());
        assert_eq!(checked[0], twice);
        assert_eq!(checked[1], twice);
        assert_eq!(
            checked[2],
            Err("Error due to duplicate config keys".to_string())
        );
        assert_eq!(checked[3], twice);
        assert_eq!(checked[4], twice);
        assert_eq!(
            checked[5],
            Ok((
                ConfigResource::Topic("u".into()),
                vec![ConfigOp::Set("retention.ms".into(), "1".into())]
            ))
        );
        assert!(checked[6].is_err());
        // A legacy AlterConfigs (replace) takes a key named twice, the last value winning.
        let mut legacy = asked(RESOURCE_TOPIC, "v", &["retention.ms", "retention.ms"]);
        legacy.replace = true;
        assert!(preprocess(&[legacy], 0)[0].is_ok());
        assert_eq!(
            null_values(&["a".into(), "b".into()]),
            "Null value not supported for : a, b"
        );
    }
}
