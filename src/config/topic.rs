//! A topic's typed config: its overrides (CreateTopics configs, kept in the catalog) over the
//! broker's defaults, each key resolved as the table in `keys.rs` says.

use std::collections::BTreeMap;

use super::keys::{broker_key, Binding, Key, Scope, KEYS};
use super::value::Source;
use super::value::Value;
use super::Config;

/// The settings of one topic that shardlog acts on or is about to (retention, cleanup).
/// Built by [`TopicConfig::resolve`]; every field is set from its key in the table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopicConfig {
    /// `segment.bytes`: size at which a segment rolls.
    pub segment_bytes: u32,
    /// `index.interval.bytes`: bytes of records between two offset-index entries.
    pub index_interval_bytes: u32,
    /// `max.message.bytes`: largest record batch accepted.
    pub max_message_bytes: u32,
    /// `retention.ms`; -1 means unlimited.
    pub retention_ms: i64,
    /// `retention.bytes`; -1 means unlimited.
    pub retention_bytes: i64,
    /// `cleanup.policy`: "delete", "compact" or "compact,delete".
    pub cleanup_policy: String,
    /// `flush.messages`.
    pub flush_messages: i64,
    /// `segment.ms`: age at which a segment rolls.
    pub segment_ms: i64,
    /// `segment.jitter.ms`: most random time taken off `segment.ms` per segment.
    pub segment_jitter_ms: i64,
    /// `delete.retention.ms`: how long the cleaner keeps tombstones.
    pub delete_retention_ms: i64,
    /// `min.cleanable.dirty.ratio`, as given (a number between 0 and 1).
    pub min_cleanable_dirty_ratio: String,
    /// `min.compaction.lag.ms`.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`.
    pub max_compaction_lag_ms: i64,
    /// `message.timestamp.type`: "CreateTime" (the producer's) or "LogAppendTime" (the
    /// broker's, written into each batch as it is appended).
    pub message_timestamp_type: String,
}

impl TopicConfig {
    /// The config of a topic with these overrides. Overrides were checked when the topic was
    /// created, but they come back from disk: one that no longer checks is skipped with a
    /// warning and the broker's default used, rather than stopping the partition.
    pub fn resolve(config: &Config, overrides: &BTreeMap<String, String>) -> TopicConfig {
        let mut topic = TopicConfig::default();
        for key in KEYS {
            let Binding::Topic(field) = key.binding else {
                continue;
            };
            // Every key bound to a field has a value (a unit test checks it).
            let Some((value, _)) = topic_value(key, config, overrides) else {
                continue;
            };
            // Cannot fail: each key's bounds fit its field (a unit test checks it).
            if let Err(expected) = (field.set)(&mut topic, &value) {
                tracing::warn!(key = key.name, %value, "topic config not applied: expected {expected}");
            }
        }
        topic
    }
}

/// The effective value of topic key `key` for a topic with these overrides, and where it came
/// from: the override, else the broker key it derives from, else the key's own default.
pub fn topic_value(
    key: &Key,
    config: &Config,
    overrides: &BTreeMap<String, String>,
) -> Option<(Value, Source)> {
    if let Some(value) = override_value(key, overrides) {
        return Some((value, Source::TopicOverride));
    }
    if let Scope::TopicFrom(broker) = key.scope {
        if let Some(found) = broker_key(broker).and_then(|b| b.broker_value(config)) {
            return Some(found);
        }
    }
    key.own_default(config)
        .map(|value| (value, Source::Default))
}

/// The topic's override of `key`, parsed; None when unset or no longer valid.
pub(super) fn override_value(key: &Key, overrides: &BTreeMap<String, String>) -> Option<Value> {
    let raw = overrides.get(key.name)?;
    match key.ty.parse(raw.trim()) {
        Ok(value) => Some(value),
        Err(expected) => {
            tracing::warn!(key = key.name, value = %raw, "ignoring a stored topic config: expected {expected}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overrides(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A topic's overrides beat the broker's defaults, key by key, and the rest follow the
    /// broker keys they derive from.
    #[test]
    fn overrides_over_broker_defaults() {
        let config = Config::from_args([
            "shardlog",
            "--override",
            "log.segment.bytes=1048576",
            "--override",
            "log.retention.minutes=5",
        ])
        .expect("parses");
        let topic = TopicConfig::resolve(
            &config,
            &overrides(&[("max.message.bytes", "2000"), ("cleanup.policy", "compact")]),
        );
        assert_eq!(
            topic,
            TopicConfig {
                segment_bytes: 1_048_576,
                index_interval_bytes: 4096,
                max_message_bytes: 2000,
                retention_ms: 300_000,
                retention_bytes: -1,
                cleanup_policy: "compact".to_string(),
                flush_messages: i64::MAX,
                segment_ms: 7 * 24 * 3_600_000,
                segment_jitter_ms: 0,
                delete_retention_ms: 86_400_000,
                min_cleanable_dirty_ratio: "0.5".to_string(),
                min_compaction_lag_ms: 0,
                max_compaction_lag_ms: i64::MAX,
                message_timestamp_type: "CreateTime".to_string(),
            }
        );
    }

    /// An override read back from disk that no longer checks (here: a hand-edited catalog) is
    /// skipped, not half-parsed: the broker's default applies.
    #[test]
    fn invalid_stored_override_falls_back() {
        let config = Config::for_tests("/tmp/x".into());
        let topic = TopicConfig::resolve(
            &config,
            &overrides(&[
                ("segment.bytes", "13"),
                ("index.interval.bytes", "lots"),
                ("retention.ms", " 1000 "),
            ]),
        );
        assert_eq!(topic.segment_bytes as u64, config.log_segment_bytes);
        assert_eq!(topic.index_interval_bytes, config.log_index_interval_bytes);
        assert_eq!(topic.retention_ms, 1000);
    }
}
