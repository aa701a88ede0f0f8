//! CreateTopics: validated (name, partition count, replication factor, configs) and applied on
//! the control shard; `validate_only` checks without creating.

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::ResponseError;

use super::{describe_configs, errors, str_bytes, Broker, Ctx, Reply, Versions};
use crate::catalog::change::{self, Change, NewTopic};
use crate::config::Config;

pub const VERSIONS: Versions = Versions { min: 2, max: 7 };

pub async fn handle(broker: &Rc<Broker>, ctx: Ctx, req: CreateTopicsRequest) -> Reply {
    let shard = &broker.shard;
    let mut results: Vec<CreatableTopicResult> = Vec::with_capacity(req.topics.len());
    let mut topics = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for t in &req.topics {
        let result = CreatableTopicResult::default()
            .with_name(t.name.clone())
            .with_num_partitions(-1)
            .with_replication_factor(-1);
        let topic = if seen.insert(t.name.0.to_string()) {
            new_topic(&shard.config, t)
        } else {
            let why = format!("topic '{}' appears twice in the request", t.name.0.as_str());
            Err((ResponseError::InvalidRequest, why))
        };
        match topic {
            Ok(topic) => {
                results.push(
                    result
                        .with_num_partitions(topic.partitions)
                        .with_replication_factor(1),
                );
                topics.push(topic);
            }
            Err((code, why)) => results.push(
                result
                    .with_error_code(code.code())
                    .with_error_message(Some(str_bytes(why))),
            ),
        }
    }
    if !topics.is_empty() {
        let change = Change::CreateTopics {
            topics,
            validate_only: req.validate_only,
        };
        let outcome = change::request(shard, change).await.unwrap_or_default();
        let catalog = broker.catalog.get();
        let effective = catalog.broker_config(&shard.config);
        for (name, r) in outcome {
            let Some(slot) = results
                .iter_mut()
                .find(|x| x.name.0.as_str() == name && x.error_code == 0)
            else {
                continue;
            };
            match r {
                Ok(()) => {
                    if let (Some(t), true) = (catalog.topic(&name), ctx.version >= 7) {
                        slot.topic_id = t.id;
                    }
                    if ctx.version >= 5 {
                        let overrides = catalog
                            .topic(&name)
                            .map(|t| t.configs.clone())
                            .unwrap_or_default();
                        slot.configs = Some(effective_configs(&effective, &overrides));
                    }
                }
                Err(e) => {
                    slot.error_code = errors::change(&e).code();
                    slot.error_message = Some(str_bytes(e.to_string()));
                    slot.num_partitions = -1;
                    slot.replication_factor = -1;
                }
            }
        }
    }
    if ctx.version < 5 {
        for r in &mut results {
            r.num_partitions = -1;
            r.replication_factor = -1;
        }
    }
    ctx.reply(&CreateTopicsResponse::default().with_topics(results))
}

/// The topic a request asks for, checked for what only this broker can judge (one node:
/// replication factor 1, every replica on this node); the catalog checks the rest.
fn new_topic(config: &Config, t: &CreatableTopic) -> Result<NewTopic, (ResponseError, String)> {
    let clamped = config.replication_factor_clamp && t.replication_factor > 1;
    if t.replication_factor != -1 && t.replication_factor != 1 && !clamped {
        return Err((
            ResponseError::InvalidReplicationFactor,
            format!(
                "replication factor {} is larger than the 1 available broker",
                t.replication_factor
            ),
        ));
    }
    let partitions = if !t.assignments.is_empty() {
        if t.num_partitions != -1 || t.replication_factor != -1 {
            return Err((
                ResponseError::InvalidRequest,
                "give either assignments or partition count and replication factor".into(),
            ));
        }
        let bad = t.assignments.iter().enumerate().any(|(i, a)| {
            a.partition_index != i as i32
                || a.broker_ids.len() != 1
                || a.broker_ids[0].0 != config.node_id
        });
        if bad {
            return Err((
                ResponseError::InvalidReplicaAssignment,
                format!(
                    "replicas must be exactly [{}] for partitions 0..n",
                    config.node_id
                ),
            ));
        }
        t.assignments.len() as i32
    } else if t.num_partitions == -1 {
        config.num_partitions
    } else {
        t.num_partitions
    };
    let mut configs = BTreeMap::new();
    for c in &t.configs {
        let Some(v) = &c.value else {
            let why = format!("config '{}' has no value", c.name.as_str());
            return Err((ResponseError::InvalidConfig, why));
        };
        configs.insert(c.name.to_string(), v.to_string());
    }
    Ok(NewTopic {
        name: t.name.0.to_string(),
        partitions,
        configs,
    })
}

/// Every topic key's effective value and its source, as DescribeConfigs reports them.
fn effective_configs(
    config: &Config,
    overrides: &BTreeMap<String, String>,
) -> Vec<CreatableTopicConfigs> {
    config
        .topic_config_entries(overrides)
        .into_iter()
        .map(|e| {
            CreatableTopicConfigs::default()
                .with_name(str_bytes(e.name))
                .with_value(Some(str_bytes(e.value)))
                .with_read_only(e.read_only)
                .with_config_source(describe_configs::source_code(e.source))
                .with_is_sensitive(false)
        })
        .collect()
}
