//! The config entries DescribeConfigs (and CreateTopics) report, generated from the table in
//! `keys.rs`: effective value, source, read-only flag, type, documentation and synonyms, built
//! as Kafka's `ConfigHelper` builds them. The wire codes are the api layer's business.

use std::collections::BTreeMap;

use super::keys::{Key, Scope, KEYS};
use super::topic::{override_value, topic_value};
use super::value::{ConfigType, Source};
use super::Config;

/// One value that contributes to an entry, highest precedence first (Kafka's
/// `DescribeConfigsSynonym`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigSynonym {
    pub name: String,
    pub value: String,
    pub source: Source,
}

/// One config as DescribeConfigs reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Kafka's key name.
    pub name: String,
    /// The effective value, printed as Kafka prints it.
    pub value: String,
    /// Where the effective value came from.
    pub source: Source,
    /// True for broker keys that cannot change at runtime (not [`super::Key::dynamic`]);
    /// false for topic keys, as Kafka reports them.
    pub read_only: bool,
    pub config_type: ConfigType,
    pub documentation: &'static str,
    /// The values behind this one, highest precedence first: for a topic key its override,
    /// then the broker keys it derives from that are set, then their default; for a broker key
    /// its value (or a synonym's) as given, then its default.
    pub synonyms: Vec<ConfigSynonym>,
}

impl ConfigEntry {
    /// True when nobody set the value.
    pub fn is_default(&self) -> bool {
        self.source == Source::Default
    }
}

impl Config {
    /// Every broker key that has a value (set, or a default), sorted by name.
    pub fn broker_config_entries(&self) -> Vec<ConfigEntry> {
        let mut entries: Vec<ConfigEntry> = KEYS
            .iter()
            .filter(|key| !key.is_topic())
            .filter_map(|key| self.broker_entry(key))
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        entries
    }

    /// `--print-config`: every broker key with its effective value and where the value comes
    /// from (the file and line, `--override`, a dedicated flag, or the default), as aligned
    /// columns, sorted by key.
    pub fn print_config(&self) -> String {
        let rows: Vec<(String, String, String)> = self
            .broker_config_entries()
            .into_iter()
            .map(|e| {
                let source = if e.is_default() {
                    "default".to_string()
                } else {
                    // The key itself, or the synonym it was set through (`log.dir`).
                    std::iter::once(e.name.as_str())
                        .chain(e.synonyms.iter().map(|s| s.name.as_str()))
                        .find_map(|name| {
                            self.origins.get(name).map(|o| match name == e.name {
                                true => o.clone(),
                                false => format!("{o} (as {name})"),
                            })
                        })
                        .unwrap_or_else(|| "set".to_string())
                };
                (e.name, e.value, source)
            })
            .collect();
        let name_width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        let value_width = rows
            .iter()
            .map(|r| r.1.len())
            .filter(|&w| w <= 60)
            .max()
            .unwrap_or(0);
        let mut out = format!("{:name_width$}  {:value_width$}  SOURCE\n", "KEY", "VALUE");
        for (name, value, source) in rows {
            out.push_str(&format!(
                "{name:name_width$}  {value:value_width$}  {source}\n"
            ));
        }
        out
    }

    /// Every topic key for a topic with these overrides, sorted by name.
    pub fn topic_config_entries(&self, overrides: &BTreeMap<String, String>) -> Vec<ConfigEntry> {
        let mut entries: Vec<ConfigEntry> = KEYS
            .iter()
            .filter(|key| key.is_topic())
            .filter_map(|key| self.topic_entry(key, overrides))
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        entries
    }

    /// The effective default of every topic key (what a topic without overrides gets), derived
    /// from the broker config where Kafka derives it; sorted by name.
    pub fn topic_config_defaults(&self) -> Vec<(String, String)> {
        self.topic_config_entries(&BTreeMap::new())
            .into_iter()
            .map(|e| (e.name, e.value))
            .collect()
    }

    fn broker_entry(&self, key: &Key) -> Option<ConfigEntry> {
        let (value, _) = key.broker_value(self)?;
        let synonyms = self.broker_synonyms(key);
        Some(ConfigEntry {
            name: key.name.to_string(),
            value: value.to_string(),
            source: synonyms.first().map_or(Source::Default, |s| s.source),
            read_only: !key.dynamic,
            config_type: key.ty.config_type(),
            documentation: key.doc,
            synonyms,
        })
    }

    fn topic_entry(&self, key: &Key, overrides: &BTreeMap<String, String>) -> Option<ConfigEntry> {
        let (value, source) = topic_value(key, self, overrides)?;
        let mut synonyms = Vec::new();
        if let Some(value) = override_value(key, overrides) {
            synonyms.push(ConfigSynonym {
                name: key.name.to_string(),
                value: value.to_string(),
                source: Source::TopicOverride,
            });
        }
        if let Scope::TopicFrom(broker) = key.scope {
            if let Some(broker) = super::keys::broker_key(broker) {
                synonyms.extend(self.broker_synonyms(broker));
            }
        }
        Some(ConfigEntry {
            name: key.name.to_string(),
            value: value.to_string(),
            source,
            read_only: false,
            config_type: key.ty.config_type(),
            documentation: key.doc,
            synonyms,
        })
    }

    /// The values behind a broker key, as Kafka's `ConfigHelper.configSynonyms` lists them: by
    /// source (this broker's dynamic value, the cluster-wide dynamic default, the static
    /// setting), each of its names set there as given in precedence order, then the default of
    /// the first name that has one.
    fn broker_synonyms(&self, key: &Key) -> Vec<ConfigSynonym> {
        let layers = [
            (&self.dynamic.broker, Source::DynamicBroker),
            (&self.dynamic.cluster_default, Source::DynamicDefaultBroker),
        ];
        let mut synonyms: Vec<ConfigSynonym> = layers
            .iter()
            .flat_map(|(layer, source)| {
                key.names().filter_map(move |(name, _)| {
                    layer.get(name).map(|raw| ConfigSynonym {
                        name: name.to_string(),
                        value: raw.clone(),
                        source: *source,
                    })
                })
            })
            .collect();
        synonyms.extend(key.names().filter_map(|(name, _)| {
            self.explicit.get(name).map(|raw| ConfigSynonym {
                name: name.to_string(),
                value: raw.clone(),
                source: Source::StaticBroker,
            })
        }));
        if let Some((name, value, _)) = key.default_value(self) {
            synonyms.push(ConfigSynonym {
                name: name.to_string(),
                value: value.to_string(),
                source: Source::Default,
            });
        }
        synonyms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::value::ConfigType;

    fn config(overrides: &[&str]) -> Config {
        let args = overrides.iter().flat_map(|o| ["--override", o]);
        Config::from_args(std::iter::once("shardlog").chain(args)).expect("config parses")
    }

    fn find(entries: &[ConfigEntry], name: &str) -> ConfigEntry {
        entries
            .iter()
            .find(|e| e.name == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} reported"))
    }

    fn synonym(name: &str, value: &str, source: Source) -> ConfigSynonym {
        ConfigSynonym {
            name: name.to_string(),
            value: value.to_string(),
            source,
        }
    }

    /// A broker key that nobody set reports its default as its only synonym; one set reports
    /// the value as given, then the default, even when the value equals the default.
    #[test]
    fn broker_entry_synonyms() {
        let entries =
            config(&["num.partitions=4", "group.max.size=2147483647"]).broker_config_entries();
        let segment = find(&entries, "log.segment.bytes");
        assert_eq!(
            (segment.value.as_str(), segment.source, segment.read_only),
            ("1073741824", Source::Default, false)
        );
        assert!(find(&entries, "num.partitions").read_only);
        assert_eq!(segment.config_type, ConfigType::Int);
        assert_eq!(
            segment.synonyms,
            vec![synonym("log.segment.bytes", "1073741824", Source::Default)]
        );
        let partitions = find(&entries, "num.partitions");
        assert_eq!(partitions.source, Source::StaticBroker);
        assert_eq!(
            partitions.synonyms,
            vec![
                synonym("num.partitions", "4", Source::StaticBroker),
                synonym("num.partitions", "1", Source::Default),
            ]
        );
        assert!(!find(&entries, "group.max.size").is_default());
        // A compatibility key without a default is reported only when set.
        assert!(entries.iter().all(|e| e.name != "num.io.threads"));
        assert!(entries.iter().all(|e| !e.documentation.is_empty()));
    }

    /// Synonyms follow Kafka's precedence (log.retention.ms > .minutes > .hours): the entry of
    /// the main key shows the synonym that was set, converted, and lists it before the default.
    #[test]
    fn broker_entry_through_a_synonym() {
        let entries =
            config(&["log.retention.hours=24", "log.retention.minutes=90"]).broker_config_entries();
        let retention = find(&entries, "log.retention.ms");
        assert_eq!(
            (retention.value.as_str(), retention.source),
            ("5400000", Source::StaticBroker)
        );
        assert_eq!(
            retention.synonyms,
            vec![
                synonym("log.retention.minutes", "90", Source::StaticBroker),
                synonym("log.retention.hours", "24", Source::StaticBroker),
                synonym("log.retention.ms", "604800000", Source::Default),
            ]
        );
        let hours = find(&entries, "log.retention.hours");
        assert_eq!(
            hours.synonyms,
            vec![
                synonym("log.retention.hours", "24", Source::StaticBroker),
                synonym("log.retention.hours", "168", Source::Default),
            ]
        );
        // A dedicated flag counts as a static setting of the key it stands for.
        let flagged = Config::from_args(["shardlog", "--data-dir", "/srv/data"]).expect("parses");
        let dirs = find(&flagged.broker_config_entries(), "log.dirs");
        assert_eq!(
            (dirs.value.as_str(), dirs.source),
            ("/srv/data", Source::StaticBroker)
        );
    }

    /// A topic key reports its override first, then the broker keys it derives from that are
    /// set, then their default; a key with no broker synonym has none (as Kafka reports it).
    #[test]
    fn topic_entry_synonyms() {
        let config = config(&["log.segment.bytes=1048576", "log.roll.hours=2"]);
        let overrides: BTreeMap<String, String> = [
            ("segment.bytes".to_string(), "4096".to_string()),
            ("cleanup.policy".to_string(), "compact, delete".to_string()),
        ]
        .into();
        let entries = config.topic_config_entries(&overrides);
        let segment = find(&entries, "segment.bytes");
        assert_eq!(
            (segment.value.as_str(), segment.source, segment.read_only),
            ("4096", Source::TopicOverride, false)
        );
        assert_eq!(
            segment.synonyms,
            vec![
                synonym("segment.bytes", "4096", Source::TopicOverride),
                synonym("log.segment.bytes", "1048576", Source::StaticBroker),
                synonym("log.segment.bytes", "1073741824", Source::Default),
            ]
        );
        let policy = find(&entries, "cleanup.policy");
        assert_eq!(
            (policy.value.as_str(), policy.config_type),
            ("compact,delete", ConfigType::List)
        );
        // Derived from a broker key through its synonym, converted from hours.
        let roll = find(&entries, "segment.ms");
        assert_eq!(
            (roll.value.as_str(), roll.source),
            ("7200000", Source::StaticBroker)
        );
        assert_eq!(
            roll.synonyms,
            vec![
                synonym("log.roll.hours", "2", Source::StaticBroker),
                synonym("log.roll.hours", "168", Source::Default),
            ]
        );
        let index = find(&entries, "index.interval.bytes");
        assert_eq!(
            (index.value.as_str(), index.source),
            ("4096", Source::Default)
        );
        assert_eq!(
            index.synonyms,
            vec![synonym("log.index.interval.bytes", "4096", Source::Default)]
        );
        let tombstones = find(&entries, "delete.retention.ms");
        assert_eq!(
            (tombstones.value.as_str(), tombstones.source),
            ("86400000", Source::Default)
        );
        assert_eq!(
            tombstones.synonyms,
            vec![synonym(
                "log.cleaner.delete.retention.ms",
                "86400000",
                Source::Default
            )]
        );
        // A topic key with no broker key behind it has no synonym.
        let preallocate = find(&entries, "preallocate");
        assert!(preallocate.synonyms.is_empty());
        // Every topic key is reported, and none is read-only.
        assert_eq!(entries.len(), KEYS.iter().filter(|k| k.is_topic()).count());
        assert!(entries.iter().all(|e| !e.read_only));
    }

    /// Topic defaults follow the broker keys they derive from.
    #[test]
    fn topic_defaults_derive_from_broker_keys() {
        let config = config(&[
            "log.retention.hours=24",
            "message.max.bytes=2000000",
            "compression.type=zstd",
        ]);
        let defaults = config.topic_config_defaults();
        let get = |key: &str| {
            defaults
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("retention.ms"), Some("86400000"));
        assert_eq!(get("max.message.bytes"), Some("2000000"));
        assert_eq!(get("compression.type"), Some("zstd"));
        assert_eq!(get("flush.ms"), Some("9223372036854775807"));
    }
}
