//! DescribeConfigs: a topic's effective configs (its overrides over the broker's defaults) and
//! the broker's. Read-only for now.

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::ResponseError;

use super::{str_bytes, Broker, Ctx, Reply, Versions};

pub const VERSIONS: Versions = Versions { min: 1, max: 4 };

/// Kafka's resource types and config sources.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const SOURCE_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

pub fn handle(broker: &Broker, ctx: Ctx, req: DescribeConfigsRequest) -> Reply {
    let catalog = broker.catalog.get();
    let shard = &broker.shard;
    let results = req
        .resources
        .iter()
        .map(|r| {
            let name = r.resource_name.to_string();
            let base = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let entries: Vec<(String, String, i8)> = match r.resource_type {
                RESOURCE_TOPIC => match catalog.topic(&name) {
                    Some(t) => shard
                        .config
                        .topic_config_defaults()
                        .into_iter()
                        .map(|(k, default)| match t.configs.get(k) {
                            Some(v) => (k.to_string(), v.clone(), SOURCE_TOPIC),
                            None => (k.to_string(), default, SOURCE_DEFAULT),
                        })
                        .collect(),
                    None => {
                        return base
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_error_message(Some(str_bytes(format!(
                                "topic '{name}' does not exist"
                            ))))
                    }
                },
                RESOURCE_BROKER if name.is_empty() || name == shard.config.node_id.to_string() => {
                    shard
                        .config
                        .broker_config_entries()
                        .into_iter()
                        .map(|e| {
                            let source = if e.is_default {
                                SOURCE_DEFAULT
                            } else {
                                SOURCE_STATIC_BROKER
                            };
                            (e.name, e.value, source)
                        })
                        .collect()
                }
                RESOURCE_BROKER => {
                    return base
                        .with_error_code(ResponseError::InvalidRequest.code())
                        .with_error_message(Some(str_bytes(format!(
                            "broker '{name}' is not this broker"
                        ))))
                }
                other => {
                    return base
                        .with_error_code(ResponseError::InvalidRequest.code())
                        .with_error_message(Some(str_bytes(format!(
                            "resource type {other} is not supported"
                        ))))
                }
            };
            let keys = r.configuration_keys.as_ref();
            let configs = entries
                .into_iter()
                .filter(|(k, _, _)| keys.is_none_or(|keys| keys.iter().any(|x| x.as_str() == k)))
                .map(|(k, v, source)| {
                    DescribeConfigsResourceResult::default()
                        .with_name(str_bytes(k))
                        .with_value(Some(str_bytes(v)))
                        .with_read_only(r.resource_type == RESOURCE_BROKER)
                        .with_config_source(source)
                })
                .collect();
            base.with_configs(configs)
        })
        .collect();
    ctx.reply(&DescribeConfigsResponse::default().with_results(results))
}
