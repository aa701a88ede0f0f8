//! Metadata: this broker, and the topics asked for (all when none are named). Unknown topics
//! are created when the request allows it and `auto.create.topics.enable` is set.

use std::rc::Rc;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};
use kafka_protocol::ResponseError;

use super::{authorized, str_bytes, topic_authorized, topic_name, Broker, Ctx, Reply, Versions};
use crate::catalog::acl;
use crate::catalog::change::{self, Change, NewTopic};
use crate::catalog::Catalog;
use crate::config::Config;

pub const VERSIONS: Versions = Versions { min: 0, max: 12 };

/// The cluster id Metadata and DescribeCluster report. Stable for a data directory.
pub fn cluster_id(config: &Config) -> String {
    let digest = crc32c::crc32c(config.data_dir.to_string_lossy().as_bytes());
    format!("shardlog-{digest:08x}")
}

pub async fn handle(broker: &Rc<Broker>, ctx: Ctx, req: MetadataRequest) -> Reply {
    let shard = &broker.shard;
    let mut catalog = broker.catalog.get();
    // v0 has no null topic list: an empty list means all topics there.
    let wanted: Option<Vec<String>> = match req.topics {
        None => None,
        Some(t) if t.is_empty() && ctx.version == 0 => None,
        Some(t) => Some(
            t.iter()
                .map(|t| match &t.name {
                    Some(n) => n.0.to_string(),
                    None => catalog
                        .topic_by_id(t.topic_id)
                        .map(|(n, _)| n.to_string())
                        .unwrap_or_default(),
                })
                .collect(),
        ),
    };
    let auto_create = shard.config.auto_create_topics_enable
        && (req.allow_auto_topic_creation || ctx.version < 4);
    let describable = |catalog: &Catalog, name: &str| {
        topic_authorized(catalog, &shard.config, &ctx, acl::OP_DESCRIBE, name)
    };
    if let (Some(names), true) = (&wanted, auto_create) {
        let missing: Vec<NewTopic> = names
            .iter()
            .filter(|n| {
                !n.is_empty()
                    && describable(&catalog, n)
                    && (authorized(
                        &catalog,
                        &shard.config,
                        &ctx,
                        acl::OP_CREATE,
                        acl::RESOURCE_CLUSTER,
                        acl::CLUSTER_NAME,
                    ) || topic_authorized(&catalog, &shard.config, &ctx, acl::OP_CREATE, n))
                    && !crate::catalog::is_internal(n)
                    && catalog.topic(n).is_none()
                    && crate::catalog::validate_topic_name(n).is_ok()
            })
            .map(|n| NewTopic {
                name: n.clone(),
                partitions: shard.config.num_partitions,
                configs: Default::default(),
            })
            .collect();
        if !missing.is_empty() {
            let change = Change::CreateTopics {
                topics: missing,
                validate_only: false,
            };
            for (name, result) in change::request(shard, change).await.unwrap_or_default() {
                match result {
                    Ok(()) => tracing::info!(topic = %name, "auto-created topic"),
                    Err(why) => tracing::debug!(topic = %name, %why, "auto-create skipped"),
                }
            }
            catalog = broker.catalog.get();
        }
    }
    // Topics the client may not describe: named, they answer TOPIC_AUTHORIZATION_FAILED;
    // in a listing of all topics they are left out (as Kafka does).
    let topics = match wanted {
        Some(names) => names
            .iter()
            .map(|n| match describable(&catalog, n) {
                true => topic_entry(&catalog, n, shard.config.node_id, ctx.version),
                false => MetadataResponseTopic::default()
                    .with_name(Some(topic_name(n)))
                    .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                    .with_topic_authorized_operations(i32::MIN),
            })
            .collect(),
        None => catalog
            .topics
            .keys()
            .filter(|n| describable(&catalog, n))
            .map(|n| topic_entry(&catalog, n, shard.config.node_id, ctx.version))
            .collect(),
    };
    let c = &shard.config;
    let broker = MetadataResponseBroker::default()
        .with_node_id(BrokerId(c.node_id))
        .with_host(str_bytes(c.advertise_host.clone()))
        .with_port(i32::from(c.advertise_port));
    let resp = MetadataResponse::default()
        .with_brokers(vec![broker])
        .with_cluster_id(if ctx.version >= 2 {
            Some(str_bytes(cluster_id(c)))
        } else {
            None
        })
        .with_controller_id(BrokerId(if ctx.version >= 1 { c.node_id } else { -1 }))
        .with_topics(topics)
        .with_cluster_authorized_operations(i32::MIN);
    ctx.reply(&resp)
}

fn topic_entry(catalog: &Catalog, name: &str, node_id: i32, version: i16) -> MetadataResponseTopic {
    let entry = MetadataResponseTopic::default()
        .with_name(Some(topic_name(name)))
        .with_topic_authorized_operations(i32::MIN);
    let Some(topic) = catalog.topic(name) else {
        let code = if crate::catalog::validate_topic_name(name).is_err() {
            ResponseError::InvalidTopicException
        } else {
            ResponseError::UnknownTopicOrPartition
        };
        return entry.with_error_code(code.code());
    };
    let partitions = (0..topic.partitions)
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(BrokerId(node_id))
                .with_leader_epoch(if version >= 7 { 0 } else { -1 })
                .with_replica_nodes(vec![BrokerId(node_id)])
                .with_isr_nodes(vec![BrokerId(node_id)])
        })
        .collect();
    let is_internal = crate::catalog::is_internal(name);
    let entry = entry
        .with_is_internal(is_internal && version >= 1)
        .with_partitions(partitions);
    if version >= 10 {
        entry.with_topic_id(topic.id)
    } else {
        entry
    }
}
