//! Topic changes (create, delete, add partitions): validated and applied on shard 0, persisted,
//! then installed on every shard before the requester is answered, so the next request on any
//! connection sees them.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use futures::channel::oneshot;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::{validate_topic_name, Catalog, Topic, PARTITIONS_PER_TOPIC_MAX};
use crate::shard::{Shard, ShardRequest};

/// The shard that applies catalog changes.
pub const CONTROL_SHARD: usize = 0;

pub struct NewTopic {
    pub name: String,
    pub partitions: i32,
    pub configs: BTreeMap<String, String>,
}

pub enum Change {
    CreateTopics {
        topics: Vec<NewTopic>,
        validate_only: bool,
    },
    DeleteTopics {
        names: Vec<String>,
    },
    CreatePartitions {
        topics: Vec<(String, i32)>,
        validate_only: bool,
    },
}

/// Per topic, in request order: `Ok` or a Kafka error code with a message.
pub type ChangeResult = Vec<(String, Result<(), (i16, String)>)>;

fn err(e: ResponseError, msg: impl Into<String>) -> Result<(), (i16, String)> {
    Err((e.code(), msg.into()))
}

/// Sends a change to the control shard and waits for its result.
pub async fn request(shard: &Rc<Shard>, change: Change) -> ChangeResult {
    let (tx, rx) = oneshot::channel();
    shard
        .send(CONTROL_SHARD, ShardRequest::CatalogChange(change, tx))
        .await;
    rx.await.unwrap_or_default()
}

/// Runs on the control shard: validates, persists, and installs the change everywhere.
pub async fn apply(shard: &Rc<Shard>, change: Change) -> ChangeResult {
    let _permit = shard.control_lock.acquire_permit(1).await;
    let current = shard.catalog();
    let mut next: Catalog = (*current).clone();
    let mut results = ChangeResult::new();
    let mut changed = false;
    match change {
        Change::CreateTopics {
            topics,
            validate_only,
        } => {
            for t in topics {
                let r = validate_new_topic(&next, &t);
                if r.is_ok() && !validate_only {
                    next.topics.insert(
                        t.name.clone(),
                        Topic {
                            id: Uuid::new_v4(),
                            partitions: t.partitions,
                            configs: t.configs,
                        },
                    );
                    changed = true;
                }
                results.push((t.name, r));
            }
        }
        Change::DeleteTopics { names } => {
            for name in names {
                let r = if super::is_internal(&name) {
                    err(
                        ResponseError::InvalidTopicException,
                        format!("'{name}' is an internal topic and cannot be deleted"),
                    )
                } else if next.topics.remove(&name).is_some() {
                    changed = true;
                    Ok(())
                } else {
                    err(
                        ResponseError::UnknownTopicOrPartition,
                        format!("topic '{name}' does not exist"),
                    )
                };
                results.push((name, r));
            }
        }
        Change::CreatePartitions {
            topics,
            validate_only,
        } => {
            for (name, count) in topics {
                let r = match next.topics.get_mut(&name) {
                    Some(_) if super::is_internal(&name) => err(
                        ResponseError::InvalidTopicException,
                        format!("'{name}' is an internal topic; its partition count is fixed"),
                    ),
                    None => err(
                        ResponseError::UnknownTopicOrPartition,
                        format!("topic '{name}' does not exist"),
                    ),
                    Some(t) if count <= t.partitions => err(
                        ResponseError::InvalidPartitions,
                        format!(
                            "topic '{name}' has {} partitions; the new count must be larger",
                            t.partitions
                        ),
                    ),
                    Some(_) if count > PARTITIONS_PER_TOPIC_MAX => err(
                        ResponseError::InvalidPartitions,
                        format!("at most {PARTITIONS_PER_TOPIC_MAX} partitions per topic"),
                    ),
                    Some(t) => {
                        if !validate_only {
                            t.partitions = count;
                            changed = true;
                        }
                        Ok(())
                    }
                };
                results.push((name, r));
            }
        }
    }
    if !changed {
        return results;
    }
    if let Err(e) = next.save(&shard.config.data_dir) {
        tracing::error!(error = %e, "cannot persist the topic catalog; change not applied");
        return results
            .into_iter()
            .map(|(n, r)| {
                (
                    n,
                    r.and_then(|_| {
                        err(
                            ResponseError::KafkaStorageError,
                            format!("catalog not saved: {e}"),
                        )
                    }),
                )
            })
            .collect();
    }
    let next = Arc::new(next);
    let mut acks = Vec::with_capacity(shard.count);
    for to in (0..shard.count).filter(|&s| s != shard.id) {
        let (tx, rx) = oneshot::channel();
        shard
            .send(to, ShardRequest::CatalogUpdate(next.clone(), tx))
            .await;
        acks.push(rx);
    }
    shard.install_catalog(next).await;
    for ack in acks {
        let _ = ack.await;
    }
    results
}

fn validate_new_topic(catalog: &Catalog, t: &NewTopic) -> Result<(), (i16, String)> {
    if let Err(why) = validate_topic_name(&t.name) {
        return err(ResponseError::InvalidTopicException, why);
    }
    if catalog.topics.contains_key(&t.name) {
        return err(
            ResponseError::TopicAlreadyExists,
            format!("topic '{}' already exists", t.name),
        );
    }
    // Kafka refuses names that collide once '.' and '_' are treated alike (metric names).
    let folded = t.name.replace('.', "_");
    if let Some(other) = catalog
        .topics
        .keys()
        .find(|n| n.replace('.', "_") == folded)
    {
        return err(
            ResponseError::InvalidTopicException,
            format!("topic '{}' collides with existing topic '{other}'", t.name),
        );
    }
    if t.partitions < 1 || t.partitions > PARTITIONS_PER_TOPIC_MAX {
        return err(
            ResponseError::InvalidPartitions,
            format!(
                "partition count must be between 1 and {PARTITIONS_PER_TOPIC_MAX}, got {}",
                t.partitions
            ),
        );
    }
    for (k, v) in &t.configs {
        if let Err(why) = crate::config::validate_topic_config(k, v) {
            return err(ResponseError::InvalidConfig, why);
        }
    }
    Ok(())
}
