//! DescribeConfigs: a topic's effective configs (its overrides over the broker's defaults), the
//! broker's (resource name: its id) and the cluster-wide dynamic defaults (resource name ""),
//! as the config table reports them (`config::ConfigEntry`), dynamic broker configs included.

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::ResponseError;

use super::{str_bytes, Broker, Ctx, Reply, Versions};
use crate::config::{ConfigEntry, ConfigType, Source};

pub const VERSIONS: Versions = Versions { min: 1, max: 4 };

/// Kafka's resource types.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

pub fn handle(broker: &Broker, ctx: Ctx, req: DescribeConfigsRequest) -> Reply {
    let catalog = broker.catalog.get();
    let node_id = broker.shard.config.node_id;
    // The static config with the catalog's dynamic broker configs over it.
    let config = catalog.broker_config(&broker.shard.config);
    let results = req
        .resources
        .iter()
        .map(|r| {
            let name = r.resource_name.to_string();
            let base = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let entries: Vec<ConfigEntry> = match r.resource_type {
                RESOURCE_TOPIC => match catalog.topic(&name) {
                    Some(t) => config.topic_config_entries(&t.configs),
                    None => {
                        return base
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_error_message(Some(str_bytes(format!(
                                "topic '{name}' does not exist"
                            ))))
                    }
                },
                // As Kafka: "" is the cluster-wide dynamic defaults alone.
                RESOURCE_BROKER if name.is_empty() => config.dynamic_default_entries(),
                RESOURCE_BROKER if name.parse::<i32>() == Ok(node_id) => {
                    config.broker_config_entries()
                }
                RESOURCE_BROKER => {
                    let why = match name.parse::<i32>() {
                        Ok(_) => format!("Unexpected broker id, expected {node_id} or empty string, but received {name}"),
                        Err(_) => format!("Broker id must be an integer, but it is: {}", name.escape_debug()),
                    };
                    return base
                        .with_error_code(ResponseError::InvalidRequest.code())
                        .with_error_message(Some(str_bytes(why)));
                }
                other => {
                    return base
                        .with_error_code(ResponseError::InvalidRequest.code())
                        .with_error_message(Some(str_bytes(format!(
                            "resource type {other} is not supported"
                        ))))
                }
            };
            // As Kafka: no key list, or an empty one, asks for every key.
            let keys = r
                .configuration_keys
                .as_ref()
                .filter(|keys| !keys.is_empty());
            let configs = entries
                .into_iter()
                .filter(|e| keys.is_none_or(|keys| keys.iter().any(|k| k.as_str() == e.name)))
                .map(|e| resource_result(e, &req))
                .collect();
            base.with_configs(configs)
        })
        .collect();
    ctx.reply(&DescribeConfigsResponse::default().with_results(results))
}

/// One entry on the wire. `config_type` and `documentation` only exist from v3 on; the encoder
/// leaves them out of older versions.
fn resource_result(e: ConfigEntry, req: &DescribeConfigsRequest) -> DescribeConfigsResourceResult {
    let synonyms = if req.include_synonyms {
        e.synonyms
            .into_iter()
            .map(|s| {
                DescribeConfigsSynonym::default()
                    .with_name(str_bytes(s.name))
                    .with_value(Some(str_bytes(s.value)))
                    .with_source(source_code(s.source))
            })
            .collect()
    } else {
        Vec::new()
    };
    let documentation = req
        .include_documentation
        .then(|| str_bytes(e.documentation));
    DescribeConfigsResourceResult::default()
        .with_name(str_bytes(e.name))
        .with_value(Some(str_bytes(e.value)))
        .with_read_only(e.read_only)
        .with_config_source(source_code(e.source))
        .with_is_sensitive(false)
        .with_synonyms(synonyms)
        .with_config_type(config_type_code(e.config_type))
        .with_documentation(documentation)
}

/// Kafka's `ConfigSource` codes (DescribeConfigs, CreateTopics v5+).
pub fn source_code(source: Source) -> i8 {
    match source {
        Source::TopicOverride => 1,        // DYNAMIC_TOPIC_CONFIG
        Source::DynamicBroker => 2,        // DYNAMIC_BROKER_CONFIG
        Source::DynamicDefaultBroker => 3, // DYNAMIC_DEFAULT_BROKER_CONFIG
        Source::StaticBroker => 4,         // STATIC_BROKER_CONFIG
        Source::Default => 5,              // DEFAULT_CONFIG
    }
}

/// Kafka's `ConfigType` codes (DescribeConfigs v3+).
fn config_type_code(config_type: ConfigType) -> i8 {
    match config_type {
        ConfigType::Boolean => 1,
        ConfigType::String => 2,
        ConfigType::Int => 3,
        ConfigType::Short => 4,
        ConfigType::Long => 5,
        ConfigType::Double => 6,
        ConfigType::List => 7,
    }
}
