//! AlterConfigs (replace a resource's overrides) and IncrementalAlterConfigs (set, delete,
//! append to or subtract from single keys): topic configs, validated through the config table
//! on the control shard, persisted in the catalog and applied by the partitions at once.
//! Broker configs cannot be changed at runtime yet: such a resource gets INVALID_REQUEST.

use std::rc::Rc;

use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{errors, str_bytes, Broker, Ctx, Reply, Versions};
use crate::catalog::change::{self, Change, ConfigOp};

pub const VERSIONS: Versions = Versions { min: 0, max: 2 };
pub const INCREMENTAL_VERSIONS: Versions = Versions { min: 0, max: 1 };

const RESOURCE_TOPIC: i8 = 2;

/// One resource's answer: its type and name, the error code and message.
type Outcome = (i8, StrBytes, i16, Option<String>);

/// One resource asked to change: its type, name, whether its overrides are replaced, the ops.
type Asked = (i8, StrBytes, bool, Vec<ConfigOp>);

/// A resource as decoded: `Asked` with the ops, or why they are not valid.
type Decoded = (i8, StrBytes, bool, Result<Vec<ConfigOp>, String>);

pub async fn handle(broker: &Rc<Broker>, ctx: Ctx, req: AlterConfigsRequest) -> Reply {
    let asked = req
        .resources
        .into_iter()
        .map(|r| {
            // Keys left out (or given a null value) go back to their defaults.
            let ops = r
                .configs
                .into_iter()
                .filter_map(|c| Some(ConfigOp::Set(c.name.to_string(), c.value?.to_string())))
                .collect();
            (r.resource_type, r.resource_name, true, Ok(ops))
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
            let ops: Result<Vec<ConfigOp>, String> = r
                .configs
                .into_iter()
                .map(|c| {
                    let (key, value) = (c.name.to_string(), c.value.map(|v| v.to_string()));
                    match (c.config_operation, value) {
                        (0, Some(v)) => Ok(ConfigOp::Set(key, v)),
                        (1, _) => Ok(ConfigOp::Delete(key)),
                        (2, Some(v)) => Ok(ConfigOp::Append(key, v)),
                        (3, Some(v)) => Ok(ConfigOp::Subtract(key, v)),
                        (op, _) => Err(format!("operation {op} on '{key}' is not valid")),
                    }
                })
                .collect();
            (r.resource_type, r.resource_name, false, ops)
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

/// Applies the topic resources in one catalog change; answers every resource in order.
async fn alter(broker: &Rc<Broker>, asked: Vec<Decoded>, validate_only: bool) -> Vec<Outcome> {
    let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(asked.len());
    let mut topics: Vec<Asked> = Vec::new();
    for (ty, name, replace, ops) in asked {
        let refused =
            |code: ResponseError, why: String| Some((ty, name.clone(), code.code(), Some(why)));
        match ops {
            _ if ty != RESOURCE_TOPIC => outcomes.push(refused(
                ResponseError::InvalidRequest,
                "only topic configs can be changed at runtime".into(),
            )),
            Err(why) => outcomes.push(refused(ResponseError::InvalidRequest, why)),
            Ok(ops) => {
                outcomes.push(None);
                topics.push((ty, name, replace, ops));
            }
        }
    }
    let change = Change::AlterTopicConfigs {
        topics: topics
            .iter()
            .map(|(_, n, replace, ops)| (n.to_string(), *replace, ops.clone()))
            .collect(),
        validate_only,
    };
    let results = if topics.is_empty() {
        Vec::new()
    } else {
        change::request(&broker.shard, change)
            .await
            .unwrap_or_default()
    };
    let mut results = results.into_iter();
    let mut topics = topics.into_iter();
    outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or_else(|| {
                let (ty, name, _, _) = topics.next().unwrap_or_default();
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
