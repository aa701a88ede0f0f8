//! The topic catalog: every topic's id, partition count and configs, the dynamic broker configs,
//! and which shard owns each partition (`placement`). Each shard holds an immutable snapshot (`Replica`); the control
//! shard applies changes, persists them, and installs the new snapshot on every shard
//! (`change`). Layers that keep per-partition state (the log, the group coordinator) subscribe
//! to the replica and follow its changes.
//!
//! # On disk
//! `<data dir>/catalog.json`, replaced atomically (write `catalog.json.tmp`, fsync, rename,
//! fsync the directory), so a crash leaves either the old or the new catalog, never a mix.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

pub mod acl;
pub mod change;
pub mod placement;
pub mod replica;

pub use placement::owner_shard;
pub use replica::Replica;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::Config;

pub const CATALOG_FILE: &str = "catalog.json";
/// Kafka's limit on topic names (the directory `<topic>-<partition>` must fit a file name).
pub const TOPIC_NAME_MAX_BYTES: usize = 249;
/// The most partitions one topic may have. Each partition costs a directory, open files and a
/// writer task on its shard; beyond this a typo in a count would exhaust file descriptors.
pub const PARTITIONS_PER_TOPIC_MAX: i32 = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topic {
    pub id: Uuid,
    pub partitions: i32,
    /// Topic-level overrides (CreateTopics configs); defaults come from the broker config.
    pub configs: BTreeMap<String, String>,
}

/// Broker configs set at runtime (AlterConfigs on BROKER resources), as Kafka keeps them in its
/// metadata: the cluster-wide defaults (resource name "") and each broker's own (resource name:
/// its id). Values as the client gave them, checked by the config table before they get here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerConfigs {
    #[serde(default)]
    pub cluster_default: BTreeMap<String, String>,
    #[serde(default)]
    pub per_broker: BTreeMap<i32, BTreeMap<String, String>>,
}

impl BrokerConfigs {
    pub fn is_empty(&self) -> bool {
        self.cluster_default.is_empty() && self.per_broker.values().all(BTreeMap::is_empty)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    pub topics: BTreeMap<String, Topic>,
    /// Absent from catalogs written before dynamic broker configs existed.
    #[serde(default, skip_serializing_if = "BrokerConfigs::is_empty")]
    pub broker_configs: BrokerConfigs,
    /// ACL bindings, sorted, no repeats (`acl`). Absent from catalogs written before ACLs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acls: Vec<acl::AclBinding>,
}

impl Catalog {
    /// The broker's effective config: `static_config` (file, `--override`, flags) with this
    /// catalog's dynamic broker configs for its node id applied over it.
    pub fn broker_config(&self, static_config: &Config) -> Config {
        let own = self.broker_configs.per_broker.get(&static_config.node_id);
        static_config.with_dynamic(&self.broker_configs.cluster_default, own)
    }

    pub fn topic(&self, name: &str) -> Option<&Topic> {
        self.topics.get(name)
    }

    /// True when `topic` exists and has a partition `partition`.
    pub fn has_partition(&self, topic: &str, partition: i32) -> bool {
        self.topic(topic)
            .is_some_and(|t| partition >= 0 && partition < t.partitions)
    }

    pub fn topic_by_id(&self, id: Uuid) -> Option<(&str, &Topic)> {
        self.topics
            .iter()
            .find(|(_, t)| t.id == id)
            .map(|(n, t)| (n.as_str(), t))
    }

    pub fn load(data_dir: &Path) -> io::Result<Catalog> {
        let path = data_dir.join(CATALOG_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: not a valid catalog ({e}); restore it from a backup or move it away",
                        path.display()
                    ),
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Catalog::default()),
            Err(e) => Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
        }
    }

    /// Persists the catalog atomically. Blocking: the control shard runs it on its executor's
    /// blocking pool (`change`), never on the reactor.
    pub fn save(&self, data_dir: &Path) -> io::Result<()> {
        use std::io::Write;
        let path = data_dir.join(CATALOG_FILE);
        let tmp: PathBuf = data_dir.join(format!("{CATALOG_FILE}.tmp"));
        let bytes = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        let mut f = std::fs::File::create(&tmp)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", tmp.display())))?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(data_dir)?.sync_all()?;
        Ok(())
    }
}

/// Kafka's internal topics: flagged `is_internal` in Metadata, written only by the broker,
/// never auto-created by Metadata, deleted or repartitioned (a group's coordinator is the
/// hash of its name over the partition count).
pub const INTERNAL_TOPICS: &[&str] = &[OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC];

/// The internal topic holding consumer groups' commits and metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// The internal topic holding transaction coordinators' state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

pub fn is_internal(name: &str) -> bool {
    INTERNAL_TOPICS.contains(&name)
}

/// Kafka's rule for topic names: 1 to 249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("topic name is empty".into());
    }
    if name == "." || name == ".." {
        return Err(format!("topic name '{name}' is not allowed"));
    }
    if name.len() > TOPIC_NAME_MAX_BYTES {
        return Err(format!(
            "topic name is longer than {TOPIC_NAME_MAX_BYTES} characters"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '.' || *c == '_' || *c == '-'))
    {
        return Err(format!("topic name '{name}' contains '{c}': only ASCII letters, digits, '.', '_' and '-' are allowed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A saved catalog loads back equal, and a missing file is an empty catalog.
    #[test]
    fn save_and_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            Catalog::load(dir.path()).expect("empty"),
            Catalog::default()
        );
        let mut c = Catalog::default();
        c.topics.insert(
            "t".into(),
            Topic {
                id: Uuid::new_v4(),
                partitions: 3,
                configs: [("retention.ms".to_string(), "1000".to_string())].into(),
            },
        );
        c.save(dir.path()).expect("save");
        assert_eq!(Catalog::load(dir.path()).expect("load"), c);
        c.broker_configs
            .cluster_default
            .insert("log.retention.ms".into(), "1000".into());
        c.broker_configs.per_broker.insert(
            0,
            [("message.max.bytes".to_string(), "2000".to_string())].into(),
        );
        c.save(dir.path()).expect("save");
        assert_eq!(Catalog::load(dir.path()).expect("load"), c);
    }

    /// A catalog written before dynamic broker configs existed loads with none.
    #[test]
    fn loads_a_catalog_without_broker_configs() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(CATALOG_FILE), r#"{"topics":{}}"#).expect("write");
        let c = Catalog::load(dir.path()).expect("load");
        assert!(c.broker_configs.is_empty());
    }

    /// The effective config takes the cluster-wide default, and this broker's own value over
    /// it; another broker's values do not apply.
    #[test]
    fn broker_config_layers() {
        let mut c = Catalog::default();
        let configs = &mut c.broker_configs;
        configs
            .cluster_default
            .insert("log.retention.ms".into(), "1000".into());
        configs
            .cluster_default
            .insert("message.max.bytes".into(), "3000".into());
        configs.per_broker.insert(
            0,
            [("log.retention.ms".to_string(), "2000".to_string())].into(),
        );
        configs.per_broker.insert(
            7,
            [("message.max.bytes".to_string(), "9000".to_string())].into(),
        );
        let base = Config::for_tests("/tmp/x".into());
        assert_eq!(base.node_id, 0);
        let effective = c.broker_config(&base);
        assert_eq!(
            (effective.log_retention_ms, effective.message_max_bytes),
            (2000, 3000)
        );
    }

    /// Topic names follow Kafka's rules.
    #[test]
    fn topic_names() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        for bad in ["", ".", "..", "a b", "a/b", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
    }
}
