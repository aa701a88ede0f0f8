//! Catalog changes (create and delete topics, add partitions, alter topic and broker configs):
//! validated and applied on the control shard, persisted, then installed on every shard before
//! the requester is answered, so the next request on any connection sees them.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use uuid::Uuid;

use super::acl::{self, AclBinding, AclFilter};
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
    /// AlterConfigs (`replace`: the resource's configs become exactly the ops' `Set`s) and
    /// IncrementalAlterConfigs (the ops applied to the current configs), per resource.
    AlterConfigs {
        resources: Vec<(ConfigResource, bool, Vec<ConfigOp>)>,
        validate_only: bool,
    },
    /// CreateAcls: each binding checked and added (one already there is no change).
    CreateAcls {
        bindings: Vec<AclBinding>,
    },
    /// DeleteAcls: every binding a filter matches is removed.
    DeleteAcls {
        filters: Vec<AclFilter>,
    },
}

/// What an AlterConfigs resource names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigResource {
    /// A topic's overrides.
    Topic(String),
    /// The dynamic broker configs: the cluster-wide defaults (`None`, resource name "") or
    /// one broker's own (its node id). The api layer checks that the id is this broker's.
    Broker(Option<i32>),
}

impl ConfigResource {
    /// The resource name as Kafka spells it: the topic, "" or the broker id.
    pub fn name(&self) -> String {
        match self {
            ConfigResource::Topic(name) => name.clone(),
            ConfigResource::Broker(None) => String::new(),
            ConfigResource::Broker(Some(id)) => id.to_string(),
        }
    }
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

/// A resource's configs after `ops`, checked by the config table's rules for its kind, or why
/// they cannot be applied.
fn apply_config_ops(
    resource: &ConfigResource,
    current: &BTreeMap<String, String>,
    replace: bool,
    ops: &[ConfigOp],
) -> Result<BTreeMap<String, String>, ChangeError> {
    let topic = matches!(resource, ConfigResource::Topic(_));
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
            ConfigOp::Append(k, _) | ConfigOp::Subtract(k, _)
                if !crate::config::is_list_config(k, topic) =>
            {
                let op = if matches!(op, ConfigOp::Append(..)) {
                    "APPEND"
                } else {
                    "SUBTRACT"
                };
                return Err(ChangeError::InvalidConfig(format!(
                    "Can't {op} to key {} because its type is not LIST.",
                    one_line(k)
                )));
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
    match resource {
        ConfigResource::Topic(_) => {
            for (k, v) in &next {
                crate::config::validate_topic_config(k, v).map_err(ChangeError::InvalidConfig)?;
            }
        }
        ConfigResource::Broker(id) => {
            crate::config::validate_dynamic_broker_configs(&next, id.is_some())
                .map_err(ChangeError::InvalidRequest)?;
        }
    }
    Ok(next)
}

/// A name from the wire on one line, for a message.
fn one_line(text: &str) -> String {
    text.escape_debug().to_string()
}

/// Why a catalog change was refused. Each carries a message for the client.
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
    /// A well-formed request that cannot be applied (Kafka answers INVALID_REQUEST: a broker
    /// config that cannot change at runtime, or a value it refuses).
    InvalidRequest(String),
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
            | ChangeError::InvalidRequest(m)
            | ChangeError::Storage(m) => f.write_str(m),
        }
    }
}

/// Per topic (or config resource, by name), in request order.
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
        Change::AlterConfigs {
            resources,
            validate_only,
        } => {
            for (resource, replace, ops) in resources {
                let current = match &resource {
                    ConfigResource::Topic(name) => {
                        next.topics.get_mut(name).map(|t| &mut t.configs)
                    }
                    ConfigResource::Broker(None) => Some(&mut next.broker_configs.cluster_default),
                    ConfigResource::Broker(Some(id)) => {
                        Some(next.broker_configs.per_broker.entry(*id).or_default())
                    }
                };
                let r = match current {
                    None => Err(ChangeError::UnknownTopic(format!(
                        "topic '{}' does not exist",
                        resource.name()
                    ))),
                    Some(current) => {
                        apply_config_ops(&resource, current, replace, &ops).map(|configs| {
                            if !validate_only && configs != *current {
                                *current = configs;
                                changed = true;
                            }
                        })
                    }
                };
                results.push((resource.name(), r));
            }
            next.broker_configs.per_broker.retain(|_, c| !c.is_empty());
        }
        Change::CreateAcls { bindings } => {
            for (i, b) in bindings.into_iter().enumerate() {
                let r = acl::validate(&b).map_err(ChangeError::InvalidRequest);
                if r.is_ok() {
                    if let Err(at) = next.acls.binary_search(&b) {
                        next.acls.insert(at, b);
                        changed = true;
                    }
                }
                results.push((i.to_string(), r));
            }
        }
        Change::DeleteAcls { filters } => {
            let before = next.acls.len();
            next.acls.retain(|b| !filters.iter().any(|f| f.matches(b)));
            changed = next.acls.len() != before;
            results.extend((0..filters.len()).map(|i| (i.to_string(), Ok(()))));
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
        let topic = ConfigResource::Topic("t".into());
        let apply = |current: &BTreeMap<String, String>, replace: bool, ops: &[ConfigOp]| {
            apply_config_ops(&topic, current, replace, ops)
        };
        let current = map(&[("retention.ms", "1000"), ("cleanup.policy", "delete")]);
        let set = |k: &str, v: &str| ConfigOp::Set(k.into(), v.into());
        assert_eq!(
            apply(&current, false, &[set("segment.bytes", "2048")]),
            Ok(map(&[
                ("retention.ms", "1000"),
                ("cleanup.policy", "delete"),
                ("segment.bytes", "2048")
            ]))
        );
        assert_eq!(
            apply(&current, true, &[set("segment.bytes", "2048")]),
            Ok(map(&[("segment.bytes", "2048")]))
        );
        assert_eq!(
            apply(&current, false, &[ConfigOp::Delete("retention.ms".into())]),
            Ok(map(&[("cleanup.policy", "delete")]))
        );
        let appended = apply(
            &current,
            false,
            &[ConfigOp::Append("cleanup.policy".into(), "compact".into())],
        )
        .expect("append");
        assert_eq!(appended["cleanup.policy"], "delete,compact");
        let subtracted = apply(
            &appended,
            false,
            &[ConfigOp::Subtract("cleanup.policy".into(), "delete".into())],
        )
        .expect("subtract");
        assert_eq!(subtracted["cleanup.policy"], "compact");
        assert!(matches!(
            apply(&current, false, &[set("segment.bytes", "not-a-number")]),
            Err(ChangeError::InvalidConfig(_))
        ));
        assert!(matches!(
            apply(&current, false, &[set("no.such.key", "1")]),
            Err(ChangeError::InvalidConfig(_))
        ));
        // As Kafka: only LIST keys take APPEND and SUBTRACT.
        assert_eq!(
            apply(
                &current,
                false,
                &[ConfigOp::Append("retention.ms".into(), "5".into())]
            ),
            Err(ChangeError::InvalidConfig(
                "Can't APPEND to key retention.ms because its type is not LIST.".into()
            ))
        );
    }

    /// Broker resources follow the dynamic rules: a read-only key is refused with Kafka's
    /// INVALID_REQUEST message, and the whole resulting set is checked, not just the ops.
    #[test]
    fn broker_config_ops() {
        let default = ConfigResource::Broker(None);
        let set = |k: &str, v: &str| ConfigOp::Set(k.into(), v.into());
        let current = map(&[("log.retention.ms", "1000")]);
        assert_eq!(
            apply_config_ops(
                &default,
                &current,
                false,
                &[set("log.segment.bytes", "1048576")]
            ),
            Ok(map(&[
                ("log.retention.ms", "1000"),
                ("log.segment.bytes", "1048576")
            ]))
        );
        assert_eq!(
            apply_config_ops(&default, &current, false, &[set("log.dirs", "/x")]),
            Err(ChangeError::InvalidRequest(
                "Cannot update these configs dynamically: Set(log.dirs)".into()
            ))
        );
        // AlterConfigs replaces the resource's whole dynamic set.
        assert_eq!(
            apply_config_ops(
                &default,
                &current,
                true,
                &[set("message.max.bytes", "2000")]
            ),
            Ok(map(&[("message.max.bytes", "2000")]))
        );
        let own = ConfigResource::Broker(Some(0));
        assert_eq!(own.name(), "0");
        assert_eq!(default.name(), "");
        assert!(matches!(
            apply_config_ops(&own, &current, false, &[set("log.retention.ms", "-5")]),
            Err(ChangeError::InvalidRequest(_))
        ));
    }

    /// A broker config change lands in the catalog at its level, a validate-only one does
    /// not, and deleting a broker's last key leaves no empty entry behind.
    #[test]
    fn plan_alters_broker_configs() {
        let alter = |catalog: &Catalog, resource, ops, validate_only| {
            plan(
                catalog,
                Change::AlterConfigs {
                    resources: vec![(resource, false, ops)],
                    validate_only,
                },
            )
        };
        let set = vec![ConfigOp::Set("log.retention.ms".into(), "5000".into())];
        let (next, results) = alter(
            &Catalog::default(),
            ConfigResource::Broker(None),
            set.clone(),
            true,
        );
        assert!(next.is_none());
        assert_eq!(results, vec![(String::new(), Ok(()))]);
        let (next, _) = alter(
            &Catalog::default(),
            ConfigResource::Broker(Some(0)),
            set,
            false,
        );
        let next = next.expect("changed");
        assert_eq!(
            next.broker_configs.per_broker.get(&0),
            Some(&map(&[("log.retention.ms", "5000")]))
        );
        let delete = vec![ConfigOp::Delete("log.retention.ms".into())];
        let (next, _) = alter(&next, ConfigResource::Broker(Some(0)), delete, false);
        assert!(next.expect("changed").broker_configs.is_empty());
    }
}
