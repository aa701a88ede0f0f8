//! The topic catalog: every topic's id, partition count and configs. Each shard holds an
//! immutable snapshot (`Arc<Catalog>`); shard 0 applies changes, persists them, and hands the
//! new snapshot to the other shards.
//!
//! # On disk
//! `<data dir>/catalog.json`, replaced atomically (write `catalog.json.tmp`, fsync, rename,
//! fsync the directory), so a crash leaves either the old or the new catalog, never a mix.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

pub mod change;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

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

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    pub topics: BTreeMap<String, Topic>,
}

impl Catalog {
    pub fn topic(&self, name: &str) -> Option<&Topic> {
        self.topics.get(name)
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

    /// Persists the catalog atomically. Blocking: called on the control-plane shard only, for
    /// topic changes, which are rare and small.
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

/// The log settings of one topic: its overrides, else the broker's defaults.
pub fn log_config(config: &crate::config::Config, topic: &Topic) -> crate::log::LogConfig {
    let topic = crate::config::TopicConfig::resolve(config, &topic.configs);
    crate::log::LogConfig {
        segment_bytes: topic.segment_bytes,
        index_interval_bytes: topic.index_interval_bytes,
        max_message_bytes: topic.max_message_bytes,
        io_buffer_bytes: crate::log::partition::io_buffer_bytes(config.io_memory_bytes),
    }
}

/// Kafka's internal topics: flagged `is_internal` in Metadata, written only by the broker,
/// never auto-created by Metadata, deleted or repartitioned (a group's coordinator is the
/// hash of its name over the partition count).
pub const INTERNAL_TOPICS: &[&str] = &[crate::group::OFFSETS_TOPIC, "__transaction_state"];

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
