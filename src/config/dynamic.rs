//! Dynamic broker configs: the values AlterConfigs sets at runtime on BROKER resources, layered
//! over the static config as Kafka's `DynamicBrokerConfig` layers them (this broker's own value
//! beats the cluster-wide default, which beats server.properties / `--override`, which beats
//! the key's default), and the rules a resource's new set must pass. Where the values are kept
//! (the catalog) is not this module's business.

use std::collections::BTreeMap;

use super::keys::{broker_key, topic_key, Binding, Key, Update, KEYS};
use super::value::{ConfigType, Source};
use super::{one_line, Config};

/// The dynamic layers a [`Config`] was built with, as stored (values as given). Only values
/// that check are kept (see [`Config::with_dynamic`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DynamicLayers {
    /// This broker's own values (resource name = its id): DYNAMIC_BROKER_CONFIG.
    pub broker: BTreeMap<String, String>,
    /// The cluster-wide defaults (resource name ""): DYNAMIC_DEFAULT_BROKER_CONFIG.
    pub cluster_default: BTreeMap<String, String>,
}

impl DynamicLayers {
    /// Where the dynamic value of key `name` comes from, when it has one.
    pub fn source(&self, name: &str) -> Option<Source> {
        if self.broker.contains_key(name) {
            Some(Source::DynamicBroker)
        } else if self.cluster_default.contains_key(name) {
            Some(Source::DynamicDefaultBroker)
        } else {
            None
        }
    }

    /// The dynamic value of key `name` and where it comes from, highest precedence first.
    pub fn get(&self, name: &str) -> Option<(&str, Source)> {
        self.broker
            .get(name)
            .map(|v| (v.as_str(), Source::DynamicBroker))
            .or_else(|| {
                self.cluster_default
                    .get(name)
                    .map(|v| (v.as_str(), Source::DynamicDefaultBroker))
            })
    }
}

impl Config {
    /// This (static) config with the dynamic layers applied: `cluster_default` (resource "")
    /// and `broker` (resource "<this node id>"), the latter winning. The values come back from
    /// the catalog: one that no longer checks (a hand-edited file, a key no longer dynamic) is
    /// skipped with a warning, as Kafka ignores invalid dynamic configs when it loads them.
    pub fn with_dynamic(
        &self,
        cluster_default: &BTreeMap<String, String>,
        broker: Option<&BTreeMap<String, String>>,
    ) -> Config {
        let mut config = self.clone();
        let none = BTreeMap::new();
        config.dynamic = DynamicLayers {
            broker: usable(broker.unwrap_or(&none), true),
            cluster_default: usable(cluster_default, false),
        };
        for key in KEYS.iter().filter(|k| k.dynamic) {
            let Binding::Broker(field) = key.binding else {
                continue;
            };
            let Some((raw, _)) = config.dynamic.get(key.name) else {
                continue;
            };
            // Checked by `usable`, so the parse repeats that check.
            let Ok(value) = key.ty.parse(raw.trim()) else {
                continue;
            };
            // Cannot fail: each key's bounds fit its field (a unit test checks it).
            if let Err(expected) = (field.set)(&mut config, &value) {
                tracing::warn!(key = key.name, %value, "dynamic broker config not applied: expected {expected}");
            }
        }
        config
    }

    /// The entries of the cluster-wide dynamic defaults (DescribeConfigs on broker ""): only
    /// the keys set there, with their values as given, as Kafka reports that resource.
    pub fn dynamic_default_entries(&self) -> Vec<super::ConfigEntry> {
        self.dynamic
            .cluster_default
            .iter()
            .filter_map(|(name, value)| {
                let key = broker_key(name)?;
                let synonym = super::ConfigSynonym {
                    name: name.clone(),
                    value: value.clone(),
                    source: Source::DynamicDefaultBroker,
                };
                Some(super::ConfigEntry {
                    name: name.clone(),
                    value: value.clone(),
                    source: Source::DynamicDefaultBroker,
                    read_only: !key.dynamic,
                    config_type: key.ty.config_type(),
                    documentation: key.doc,
                    synonyms: vec![synonym],
                })
            })
            .collect()
    }
}

/// The broker key `name` when AlterConfigs may change it here.
fn dynamic_key(name: &str) -> Option<&'static Key> {
    broker_key(name).filter(|k| k.dynamic)
}

/// The stored values that still pass [`check_one`].
fn usable(stored: &BTreeMap<String, String>, per_broker: bool) -> BTreeMap<String, String> {
    stored
        .iter()
        .filter(|(name, value)| match check_one(name, value, per_broker) {
            Ok(()) => true,
            Err(why) => {
                tracing::warn!(key = %name, "ignoring a stored dynamic broker config: {why}");
                false
            }
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// One stored value: a dynamic key, a value its type accepts, at a level its mode allows.
fn check_one(name: &str, value: &str, per_broker: bool) -> Result<(), String> {
    let one: BTreeMap<String, String> = [(name.to_string(), value.to_string())].into();
    validate_dynamic_broker_configs(&one, per_broker)
}

/// Checks the whole dynamic set a BROKER resource would have after AlterConfigs, with Kafka's
/// rules and messages (`DynamicBrokerConfig.validateConfigs`), in its order: keys that cannot
/// change at runtime (here: every key not marked dynamic, unknown ones included), then each
/// value's type and bounds, then per-broker keys set at the cluster-wide level (`per_broker`
/// false: resource name ""). Kafka answers each with INVALID_REQUEST (KAFKA-13609).
pub fn validate_dynamic_broker_configs(
    configs: &BTreeMap<String, String>,
    per_broker: bool,
) -> Result<(), String> {
    let fixed: Vec<String> = configs
        .keys()
        .filter(|name| dynamic_key(name).is_none())
        .map(|name| one_line(name))
        .collect();
    if !fixed.is_empty() {
        return Err(format!(
            "Cannot update these configs dynamically: {}",
            scala_set(&fixed)
        ));
    }
    for (name, value) in configs {
        let Some(key) = dynamic_key(name) else {
            continue;
        };
        key.ty.parse(value.trim()).map_err(|expected| {
            format!(
                "Invalid value {} for configuration {name}: expected {expected}",
                one_line(value)
            )
        })?;
    }
    if !per_broker {
        let per: Vec<String> = configs
            .keys()
            .filter(|name| dynamic_key(name).is_some_and(|k| k.update == Update::PerBroker))
            .cloned()
            .collect();
        if !per.is_empty() {
            return Err(format!(
                "Cannot update these configs at default cluster level, broker id must be specified: {}",
                scala_set(&per)
            ));
        }
    }
    Ok(())
}

/// True when IncrementalAlterConfigs may APPEND to or SUBTRACT from key `name` of a topic
/// (`topic`) or a broker: its Kafka type is LIST.
pub fn is_list_config(name: &str, topic: bool) -> bool {
    let key = if topic {
        topic_key(name)
    } else {
        broker_key(name)
    };
    key.is_some_and(|k| k.ty.config_type() == ConfigType::List)
}

/// Names as Kafka prints a Scala set in its messages: `Set(a, b)`.
fn scala_set(names: &[String]) -> String {
    format!("Set({})", names.join(", "))
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

    fn config(overrides: &[&str]) -> Config {
        let args = overrides.iter().flat_map(|o| ["--override", o]);
        Config::from_args(std::iter::once("shardlog").chain(args)).expect("config parses")
    }

    /// Only keys marked dynamic pass, with values of their type; the refusals carry Kafka's
    /// messages, read-only and unknown keys first.
    #[test]
    fn validation_follows_kafka() {
        assert_eq!(
            validate_dynamic_broker_configs(
                &map(&[
                    ("log.retention.ms", "1000"),
                    ("log.cleanup.policy", "compact")
                ]),
                false
            ),
            Ok(())
        );
        assert_eq!(
            validate_dynamic_broker_configs(
                &map(&[
                    ("log.dirs", "/x"),
                    ("log.retention.ms", "soon"),
                    ("no.such.key", "1")
                ]),
                true
            ),
            Err("Cannot update these configs dynamically: Set(log.dirs, no.such.key)".into())
        );
        // Kafka makes only the highest-precedence name of a synonym group dynamic.
        assert!(
            validate_dynamic_broker_configs(&map(&[("log.retention.hours", "1")]), false)
                .is_err_and(|e| e.starts_with("Cannot update these configs dynamically"))
        );
        assert_eq!(
            validate_dynamic_broker_configs(&map(&[("log.retention.ms", "soon")]), false),
            Err(
                "Invalid value soon for configuration log.retention.ms: expected an integer >= -1"
                    .into()
            )
        );
        assert!(
            validate_dynamic_broker_configs(&map(&[("log.segment.bytes", "13")]), false).is_err()
        );
        // Keys acted on but fixed once the broker runs stay read-only.
        for fixed in [
            "listeners",
            "log.retention.check.interval.ms",
            "num.partitions",
        ] {
            assert!(
                validate_dynamic_broker_configs(&map(&[(fixed, "1")]), true).is_err(),
                "{fixed}"
            );
        }
    }

    /// Every dynamic key is an acted-on broker key that Kafka can change at runtime, stored in
    /// a typed field or read through the topic keys that derive from it (never resolved with
    /// the listeners at start-up); the only exceptions are the SASL listener settings Kafka
    /// takes at runtime even on a broker without a SASL listener (`INERT_DYNAMIC_KEYS`).
    #[test]
    fn dynamic_keys_are_acted_on() {
        for key in KEYS.iter().filter(|k| k.dynamic) {
            let inert = crate::config::keys::INERT_DYNAMIC_KEYS.contains(&key.name);
            assert!((key.acted_on || inert) && !key.is_topic(), "{}", key.name);
            assert!(
                matches!(key.update, Update::PerBroker | Update::ClusterWide),
                "{}",
                key.name
            );
            assert!(
                matches!(key.binding, Binding::Broker(_) | Binding::None),
                "{}",
                key.name
            );
        }
    }

    /// A dynamic key without a field of its own (log.roll.ms, the cleaner's topic defaults)
    /// reaches the topics that derive from it.
    #[test]
    fn dynamic_keys_without_a_field_reach_topics() {
        let layered = config(&["log.roll.hours=2"]).with_dynamic(
            &map(&[
                ("log.roll.ms", "60000"),
                ("log.cleaner.delete.retention.ms", "1000"),
            ]),
            None,
        );
        let topic = layered.topic_config_entries(&BTreeMap::new());
        let find = |name: &str| topic.iter().find(|e| e.name == name).expect("entry");
        assert_eq!(
            (find("segment.ms").value.as_str(), find("segment.ms").source),
            ("60000", Source::DynamicDefaultBroker)
        );
        assert_eq!(find("delete.retention.ms").value, "1000");
        let broker = layered.broker_config_entries();
        let roll = broker
            .iter()
            .find(|e| e.name == "log.roll.ms")
            .expect("entry");
        assert_eq!(
            (roll.value.as_str(), roll.source, roll.read_only),
            ("60000", Source::DynamicDefaultBroker, false)
        );
    }

    /// The layers apply in Kafka's precedence: this broker's value, then the cluster-wide
    /// default, then the static setting; each value reports its source, and topics without an
    /// override inherit the winner.
    #[test]
    fn layers_apply_in_precedence() {
        let base = config(&["log.retention.hours=24", "log.segment.bytes=1048576"]);
        let layered = base.with_dynamic(
            &map(&[
                ("log.retention.ms", "5000"),
                ("log.segment.bytes", "2097152"),
            ]),
            Some(&map(&[("log.segment.bytes", "4194304")])),
        );
        assert_eq!(layered.log_retention_ms, 5000);
        assert_eq!(layered.log_segment_bytes, 4_194_304);
        let entries = layered.broker_config_entries();
        let find = |name: &str| entries.iter().find(|e| e.name == name).expect("entry");
        let retention = find("log.retention.ms");
        assert_eq!(
            (
                retention.value.as_str(),
                retention.source,
                retention.read_only
            ),
            ("5000", Source::DynamicDefaultBroker, false)
        );
        let sources: Vec<(&str, &str, Source)> = find("log.segment.bytes")
            .synonyms
            .iter()
            .map(|s| (s.name.as_str(), s.value.as_str(), s.source))
            .collect();
        assert_eq!(
            sources,
            [
                ("log.segment.bytes", "4194304", Source::DynamicBroker),
                ("log.segment.bytes", "2097152", Source::DynamicDefaultBroker),
                ("log.segment.bytes", "1048576", Source::StaticBroker),
                ("log.segment.bytes", "1073741824", Source::Default),
            ]
        );
        assert!(find("log.retention.hours").read_only);
        let topic = layered.topic_config_entries(&map(&[("segment.bytes", "1024")]));
        let find = |name: &str| topic.iter().find(|e| e.name == name).expect("entry");
        assert_eq!(
            (
                find("retention.ms").value.as_str(),
                find("retention.ms").source
            ),
            ("5000", Source::DynamicDefaultBroker)
        );
        assert_eq!(find("segment.bytes").source, Source::TopicOverride);
        // The cluster-wide resource lists only what is set there.
        let defaults = layered.dynamic_default_entries();
        let names: Vec<&str> = defaults.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["log.retention.ms", "log.segment.bytes"]);
        assert!(defaults
            .iter()
            .all(|e| e.source == Source::DynamicDefaultBroker && e.synonyms.len() == 1));
        // No layers: the static config unchanged.
        let plain = base.with_dynamic(&BTreeMap::new(), None);
        assert_eq!(plain.log_retention_ms, 86_400_000);
        assert_eq!(plain.dynamic, DynamicLayers::default());
    }

    /// Stored values that no longer check are skipped, not half-applied.
    #[test]
    fn stored_values_that_do_not_check_are_skipped() {
        let base = config(&[]);
        let layered = base.with_dynamic(
            &map(&[("log.retention.ms", "soon"), ("log.dirs", "/elsewhere")]),
            None,
        );
        assert_eq!(layered.log_retention_ms, base.log_retention_ms);
        assert_eq!(layered.data_dir, base.data_dir);
        assert!(layered.dynamic.cluster_default.is_empty());
    }

    /// APPEND and SUBTRACT apply to Kafka's LIST keys only.
    #[test]
    fn list_keys() {
        assert!(is_list_config("cleanup.policy", true));
        assert!(is_list_config("log.cleanup.policy", false));
        assert!(!is_list_config("retention.ms", true));
        assert!(!is_list_config("log.retention.ms", false));
        assert!(!is_list_config("no.such.key", false));
    }
}
