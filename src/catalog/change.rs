//! Topic changes (create, delete, add partitions): validated and applied on the control shard,
//! persisted, then installed on every shard before the requester is answered, so the next
//! request on any connection sees them.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use uuid::Uuid;

use super::{validate_topic_name, Catalog, Replica, Topic, PARTITIONS_PER_TOPIC_MAX};
use crate::shard::{Shard, Unreachable};

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
    /// AlterConfigs (`replace`: the topic's overrides become exactly the ops' `Set`s) and
    /// IncrementalAlterConfigs (the ops applied to the current overrides), per topic.
    AlterTopicConfigs {
        topics: Vec<(String, bool, Vec<ConfigOp>)>,
        validate_only: bool,
    },
}

/// One change to a topic's config overrides (IncrementalAlterConfigs' operations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOp {
    Set(String, String),
    /// Back to the default (the broker's value, or the key's own).
    Delete(String),
    /// List keys: add the value to the list unless it is there.
    Append(String, String),
    /// List keys: remove the value from the list.
    Subtract(String, String),
}

/// A topic's overrides after `ops`, or why they cannot be applied.
fn apply_config_ops(
    current: &BTreeMap<String, String>,
    replace: bool,
    ops: &[ConfigOp],
) -> Result<BTreeMap<String, String>, ChangeError> {
    let mut next = if replace {
        BTreeMap::new()
    } else {
        current.clone()
    };
    let list = |v: Option<&String>| -> Vec<String> {
        v.map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
    };
    for op in ops {
        match op {
            ConfigOp::Set(k, v) => {
                next.insert(k.clone(), v.clone());
            }
            ConfigOp::Delete(k) => {
                next.remove(k);
            }
            ConfigOp::Append(k, v) => {
                let mut items = list(next.get(k));
                if !items.contains(v) {
                    items.push(v.clone());
                }
                next.insert(k.clone(), items.join(","));
            }
            ConfigOp::Subtract(k, v) => {
                let items: Vec<String> = list(next.get(k)).into_iter().filter(|i| i != v).collect();
                next.insert(k.clone(), items.join(","));
            }
        }
    }
    for (k, v) in &next {
        crate::config::validate_topic_config(k, v).map_err(ChangeError::InvalidConfig)?;
    }
    Ok(next)
}

/// Why a topic change was refused. Each carries a message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeError {
    /// A bad topic name, or a name that collides with an existing one.
    InvalidName(String),
    AlreadyExists(String),
    /// Internal topics cannot be deleted or repartitioned.
    Internal(String),
    UnknownTopic(String),
    InvalidPartitions(String),
    InvalidConfig(String),
    /// The catalog could not be persisted; nothing changed.
    Storage(String),
}

impl std::fmt::Display for ChangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChangeError::InvalidName(m)
            | ChangeError::AlreadyExists(m)
            | ChangeError::Internal(m)
            | ChangeError::UnknownTopic(m)
            | ChangeError::InvalidPartitions(m)
            | ChangeError::InvalidConfig(m)
            | ChangeError::Storage(m) => f.write_str(m),
        }
    }
}

/// Per topic, in request order.
pub type ChangeResult = Vec<(String, Result<(), ChangeError>)>;

/// Sends a change to the control shard and waits until every shard has installed it.
pub async fn request(shard: &Rc<Shard>, change: Change) -> Result<ChangeResult, Unreachable> {
    shard
        .invoke_on(CONTROL_SHARD, move |control: &Rc<Control>| {
            Box::pin(control.clone().apply(change))
        })
        .await
}

/// The control plane of the catalog: on `CONTROL_SHARD`, applies one change at a time.
pub struct Control {
    shard: Rc<Shard>,
    replica: Rc<Replica>,
    /// Serialises changes.
    lock: glommio::sync::Semaphore,
}

impl Control {
    pub fn new(shard: Rc<Shard>, replica: Rc<Replica>) -> Rc<Control> {
        Rc::new(Control {
            shard,
            replica,
            lock: glommio::sync::Semaphore::new(1),
        })
    }

    /// Validates, persists, and installs the change on every shard.
    async fn apply(self: Rc<Self>, change: Change) -> ChangeResult {
        let _permit = self.lock.acquire_permit(1).await;
        let (next, results) = plan(&self.replica.get(), change);
        let Some(next) = next else {
            return results;
        };
        let data_dir = self.shard.config.data_dir.clone();
        let saved = {
            let next = next.clone();
            glommio::executor()
                .spawn_blocking(move || next.save(&data_dir))
                .await
        };
        if let Err(e) = saved {
            tracing::error!(error = %e, "cannot persist the topic catalog; change not applied");
            let why = format!("catalog not saved: {e}");
            return results
                .into_iter()
                .map(|(n, r)| (n, r.and(Err(ChangeError::Storage(why.clone())))))
                .collect();
        }
        let mut installed = Vec::with_capacity(self.shard.count);
        for to in 0..self.shard.count {
            let next = next.clone();
            installed.push(
                self.shard
                    .submit_to(to, move |replica: &Rc<Replica>| {
                        let replica = replica.clone();
                        Box::pin(async move { replica.install(next).await })
                    })
                    .await,
            );
        }
        for done in installed {
            // A shard that is stopping installs nothing more; its catalog is on disk.
            let _ = done.await;
        }
        results
    }
}

/// The catalog after `change`, when anything changed, and the result per topic.
fn plan(current: &Catalog, change: Change) -> (Option<Arc<Catalog>>, ChangeResult) {
    let mut next: Catalog = current.clone();
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
                    Err(ChangeError::Internal(format!(
                        "'{name}' is an internal topic and cannot be deleted"
                    )))
                } else if next.topics.remove(&name).is_some() {
                    changed = true;
                    Ok(())
                } else {
                    Err(ChangeError::UnknownTopic(format!(
                        "topic '{name}' does not exist"
                    )))
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
                    Some(_) if super::is_internal(&name) => Err(ChangeError::Internal(format!(
                        "'{name}' is an internal topic; its partition count is fixed"
                    ))),
                    None => Err(ChangeError::UnknownTopic(format!(
                        "topic '{name}' does not exist"
                    ))),
                    Some(t) if count <= t.partitions => {
                        Err(ChangeError::InvalidPartitions(format!(
                            "topic '{name}' has {} partitions; the new count must be larger",
                            t.partitions
                        )))
                    }
                    Some(_) if count > PARTITIONS_PER_TOPIC_MAX => {
                        Err(ChangeError::InvalidPartitions(format!(
                            "at most {PARTITIONS_PER_TOPIC_MAX} partitions per topic"
                        )))
                    }
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
        Change::AlterTopicConfigs {
            topics,
            validate_only,
        } => {
            for (name, replace, ops) in topics {
                let r = match next.topics.get_mut(&name) {
                    None => Err(ChangeError::UnknownTopic(format!(
                        "topic '{name}' does not exist"
                    ))),
                    Some(t) => apply_config_ops(&t.configs, replace, &ops).map(|configs| {
                        if !validate_only && configs != t.configs {
                            t.configs = configs;
                            changed = true;
                        }
                    }),
                };
                results.push((name, r));
            }
        }
    }
    (changed.then(|| Arc::new(next)), results)
}

fn validate_new_topic(catalog: &Catalog, t: &NewTopic) -> Result<(), ChangeError> {
    if let Err(why) = validate_topic_name(&t.name) {
        return Err(ChangeError::InvalidName(why));
    }
    if catalog.topics.contains_key(&t.name) {
        return Err(ChangeError::AlreadyExists(format!(
            "topic '{}' already exists",
            t.name
        )));
    }
    // Kafka refuses names that collide once '.' and '_' are treated alike (metric names).
    let folded = t.name.replace('.', "_");
    if let Some(other) = catalog
        .topics
        .keys()
        .find(|n| n.replace('.', "_") == folded)
    {
        return Err(ChangeError::InvalidName(format!(
            "topic '{}' collides with existing topic '{other}'",
            t.name
        )));
    }
    if t.partitions < 1 || t.partitions > PARTITIONS_PER_TOPIC_MAX {
        return Err(ChangeError::InvalidPartitions(format!(
            "partition count must be between 1 and {PARTITIONS_PER_TOPIC_MAX}, got {}",
            t.partitions
        )));
    }
    for (k, v) in &t.configs {
        if let Err(why) = crate::config::validate_topic_config(k, v) {
            return Err(ChangeError::InvalidConfig(why));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Incremental ops change single keys, a replace keeps only what it sets, list keys take
    /// appends and subtractions, and a value the config table refuses refuses the whole change.
    #[test]
    fn config_ops() {
        let current = map(&[("retention.ms", "1000"), ("cleanup.policy", "delete")]);
        let set = |k: &str, v: &str| ConfigOp::Set(k.into(), v.into());
        assert_eq!(
            apply_config_ops(&current, false, &[set("segment.bytes", "2048")]),
            Ok(map(&[
                ("retention.ms", "1000"),
                ("cleanup.policy", "delete"),
                ("segment.bytes", "2048")
            ]))
        );
        assert_eq!(
            apply_config_ops(&current, true, &[set("segment.bytes", "2048")]),
            Ok(map(&[("segment.bytes", "2048")]))
        );
        assert_eq!(
            apply_config_ops(&current, false, &[ConfigOp::Delete("retention.ms".into())]),
            Ok(map(&[("cleanup.policy", "delete")]))
        );
        let appended = apply_config_ops(
            &current,
            false,
            &[ConfigOp::Append("cleanup.policy".into(), "compact".into())],
        )
        .expect("append");
        assert_eq!(appended["cleanup.policy"], "delete,compact");
        let subtracted = apply_config_ops(
            &appended,
            false,
            &[ConfigOp::Subtract("cleanup.policy".into(), "delete".into())],
        )
        .expect("subtract");
        assert_eq!(subtracted["cleanup.policy"], "compact");
        assert!(matches!(
            apply_config_ops(&current, false, &[set("segment.bytes", "not-a-number")]),
            Err(ChangeError::InvalidConfig(_))
        ));
        assert!(matches!(
            apply_config_ops(&current, false, &[set("no.such.key", "1")]),
            Err(ChangeError::InvalidConfig(_))
        ));
    }
}
