//! The table of config keys: every broker and topic key shardlog knows, declared once with its
//! type and bounds, default, scope, synonyms, whether it is acted on, whether Kafka can change it
//! at runtime, where its value goes, and one line of documentation. Parsing, validation,
//! `--override`, topic configs and DescribeConfigs all read [`KEYS`].

use std::collections::BTreeMap;

use super::defaults::*;
use super::io_memory::{default_io_memory_bytes, MAX_IO_MEMORY_BYTES, MIN_IO_MEMORY_BYTES};
use super::listeners::{url_host, PLAINTEXT};
use super::topic::TopicConfig;
use super::value::Source;
use super::value::{
    format_double, parse_list, parse_positive_double, FromValue, ToValue, Type, Value,
};
use super::Config;

/// Which resource a key configures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// A broker key (server.properties, `--override`).
    Broker,
    /// A topic key whose default is a constant (Kafka's `LogConfig.CONFIGS_WITH_NO_SERVER_DEFAULTS`,
    /// or a broker synonym shardlog does not accept).
    Topic,
    /// A topic key whose default is the effective value of this broker key (Kafka's
    /// `ServerTopicConfigSynonyms`), or the key's own default when the broker key has none.
    TopicFrom(&'static str),
}

/// A key's default.
#[derive(Clone, Copy, Debug)]
pub enum DefaultValue {
    /// No default: the key has a value only when it is set (or, for a topic key, derived).
    None,
    Int(i64),
    Bool(bool),
    Text(&'static str),
    /// Computed from the rest of the broker config (io_memory from the memlock limit and the
    /// shard count, listeners from the default listen address).
    Computed(fn(&Config) -> Value),
}

/// How a synonym's value converts to the unit of the key it stands in for (Kafka's
/// `ConfigSynonym` converters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Convert {
    Same,
    MinutesToMs,
    HoursToMs,
}

/// A lower-precedence name for a key: set only when the key itself is not (Kafka's precedence:
/// `log.retention.ms` > `log.retention.minutes` > `log.retention.hours`).
#[derive(Clone, Copy, Debug)]
pub struct Synonym {
    pub name: &'static str,
    pub convert: Convert,
}

/// Dynamic broker keys that change nothing here: SASL listener settings, which Kafka lets each
/// broker change at runtime (`DynamicBrokerConfig`'s listener configs) even when it has no SASL
/// listener. Shardlog serves no SASL listener, so AlterConfigs stores them and DescribeConfigs
/// reports them, as Kafka does on a broker without one (librdkafka's 0081 sets one).
#[cfg(test)]
pub const INERT_DYNAMIC_KEYS: &[&str] = &["sasl.kerberos.min.time.before.relogin"];

/// Whether Kafka can change a key at runtime (its "update mode", `DynamicBrokerConfig`). Shardlog
/// changes at runtime only the keys marked [`Key::dynamic`]: a subset of Kafka's dynamic keys
/// that it acts on and can apply safely while serving; every other key is read-only here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Update {
    ReadOnly,
    PerBroker,
    ClusterWide,
    /// Topic keys: set per topic by CreateTopics (and AlterConfigs, later).
    PerTopic,
}

/// A typed field of `T` that a key is stored into and reported from.
pub struct Field<T> {
    pub set: fn(&mut T, &Value) -> Result<(), String>,
    pub get: fn(&T) -> Value,
}

// Manual impls: a derive would require `T: Clone`, which `Config` need not be for this.
impl<T> Clone for Field<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Field<T> {}

/// Where a key's value goes.
#[derive(Clone, Copy)]
pub enum Binding {
    /// Nowhere: stored in [`Config::explicit`] and reported as given.
    None,
    /// A field of [`Config`].
    Broker(Field<Config>),
    /// A field of [`TopicConfig`].
    Topic(Field<TopicConfig>),
    /// Resolved together with other keys and the dedicated flags by code in `mod.rs` and
    /// `listeners.rs`; its effective value is read back from [`Config`].
    Report(fn(&Config) -> Value),
}

/// One config key.
#[derive(Clone, Copy)]
pub struct Key {
    /// Kafka's name.
    pub name: &'static str,
    /// What a value must look like, and the type DescribeConfigs reports.
    pub ty: Type,
    pub default: DefaultValue,
    pub scope: Scope,
    /// Lower-precedence names of the same setting, highest first.
    pub synonyms: &'static [Synonym],
    /// False for keys accepted so that real server.properties files load, but not acted on yet.
    pub acted_on: bool,
    /// Kafka's update mode for this key.
    pub update: Update,
    /// True when AlterConfigs may change this broker key at runtime here (as a cluster-wide
    /// default, or for this broker when Kafka's mode is per-broker): acted on, dynamic in Kafka,
    /// and read again by what uses it (the partitions' `LogConfig`, recomputed when the dynamic
    /// configs change), so a new value applies without a restart.
    pub dynamic: bool,
    pub binding: Binding,
    /// One line for DescribeConfigs' `documentation`.
    pub doc: &'static str,
}

impl Key {
    /// A broker key with no default, accepted for compatibility only.
    const fn broker(name: &'static str, ty: Type, doc: &'static str) -> Key {
        Key {
            name,
            ty,
            default: DefaultValue::None,
            scope: Scope::Broker,
            synonyms: &[],
            acted_on: false,
            update: Update::ReadOnly,
            dynamic: false,
            binding: Binding::None,
            doc,
        }
    }

    /// A topic key with no default, not acted on.
    const fn topic(name: &'static str, ty: Type, doc: &'static str) -> Key {
        Key {
            scope: Scope::Topic,
            update: Update::PerTopic,
            ..Key::broker(name, ty, doc)
        }
    }

    const fn default(self, default: DefaultValue) -> Key {
        Key { default, ..self }
    }

    const fn default_int(self, n: i64) -> Key {
        self.default(DefaultValue::Int(n))
    }

    const fn default_bool(self, b: bool) -> Key {
        self.default(DefaultValue::Bool(b))
    }

    const fn default_text(self, s: &'static str) -> Key {
        self.default(DefaultValue::Text(s))
    }

    /// Makes a topic key derive its default from `broker`.
    const fn derives_from(self, broker: &'static str) -> Key {
        Key {
            scope: Scope::TopicFrom(broker),
            ..self
        }
    }

    const fn synonyms(self, synonyms: &'static [Synonym]) -> Key {
        Key { synonyms, ..self }
    }

    const fn acted(self) -> Key {
        Key {
            acted_on: true,
            ..self
        }
    }

    const fn update(self, update: Update) -> Key {
        Key { update, ..self }
    }

    /// Lets AlterConfigs change this broker key at runtime (see [`Key::dynamic`]).
    const fn dynamic(self) -> Key {
        Key {
            dynamic: true,
            ..self
        }
    }

    const fn field(self, field: Field<Config>) -> Key {
        Key {
            binding: Binding::Broker(field),
            ..self
        }
    }

    const fn topic_field(self, field: Field<TopicConfig>) -> Key {
        Key {
            binding: Binding::Topic(field),
            ..self
        }
    }

    const fn report(self, get: fn(&Config) -> Value) -> Key {
        Key {
            binding: Binding::Report(get),
            ..self
        }
    }

    /// True for topic keys.
    pub fn is_topic(&self) -> bool {
        !matches!(self.scope, Scope::Broker)
    }

    /// This key and its synonyms, in precedence order, each with its conversion to this key's unit.
    pub fn names(&self) -> impl Iterator<Item = (&'static str, Convert)> + '_ {
        std::iter::once((self.name, Convert::Same))
            .chain(self.synonyms.iter().map(|s| (s.name, s.convert)))
    }

    /// The value this key was given, through the first of its names that is set in `explicit`:
    /// that name, its value as given, and the value converted to this key's unit.
    pub fn explicit_value<'a>(
        &self,
        explicit: &'a BTreeMap<String, String>,
    ) -> Option<(&'static str, &'a str, Value)> {
        self.names().find_map(|(name, convert)| {
            let raw = explicit.get(name)?;
            // Every explicit value was checked on entry, so this parse only repeats that check.
            let value = broker_key(name)?.ty.parse(raw).ok()?;
            Some((name, raw.as_str(), convert.apply(value)))
        })
    }

    /// The default of this key, or else of the first synonym that has one: that name, its
    /// default in its own unit, and the default converted to this key's unit.
    pub fn default_value(&self, config: &Config) -> Option<(&'static str, Value, Value)> {
        self.names().find_map(|(name, convert)| {
            let key = if name == self.name {
                self
            } else {
                broker_key(name)?
            };
            let value = key.own_default(config)?;
            Some((name, value.clone(), convert.apply(value)))
        })
    }

    /// This key's own default, without looking at synonyms.
    pub fn own_default(&self, config: &Config) -> Option<Value> {
        match self.default {
            DefaultValue::None => None,
            DefaultValue::Int(n) => Some(Value::Int(n)),
            DefaultValue::Bool(b) => Some(Value::Bool(b)),
            DefaultValue::Text(s) => Some(Value::Text(s.to_string())),
            DefaultValue::Computed(compute) => Some(compute(config)),
        }
    }

    /// The effective value of a broker key and where it came from: the typed field for keys
    /// that have one, else the dynamic value, else the value given (through synonyms), else
    /// the default.
    pub fn broker_value(&self, config: &Config) -> Option<(Value, Source)> {
        let explicit = self.explicit_value(&config.explicit);
        let source = if let Some(dynamic) = config.dynamic.source(self.name) {
            dynamic
        } else if explicit.is_some() {
            Source::StaticBroker
        } else {
            Source::Default
        };
        match self.binding {
            Binding::Broker(field) => Some(((field.get)(config), source)),
            Binding::Report(get) => Some((get(config), source)),
            Binding::None | Binding::Topic(_) => {
                // A dynamic value (checked when it was set and when it was loaded) wins.
                if let Some((raw, dynamic)) = config.dynamic.get(self.name) {
                    if let Ok(value) = self.ty.parse(raw.trim()) {
                        return Some((value, dynamic));
                    }
                }
                match explicit {
                    Some((_, _, value)) => Some((value, source)),
                    None => self
                        .default_value(config)
                        .map(|(_, _, value)| (value, Source::Default)),
                }
            }
        }
    }
}

impl Convert {
    /// Converts a synonym's value; durations saturate, and negative ones (Kafka's "unlimited")
    /// stay negative.
    fn apply(self, value: Value) -> Value {
        let factor = match self {
            Convert::Same => return value,
            Convert::MinutesToMs => MS_PER_MINUTE,
            Convert::HoursToMs => MS_PER_HOUR,
        };
        match value {
            Value::Int(n) => Value::Int(n.saturating_mul(factor)),
            other => other,
        }
    }
}

/// The broker key named `name`.
pub fn broker_key(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name && !k.is_topic())
}

/// The topic key named `name`.
pub fn topic_key(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name && k.is_topic())
}

/// Binds a key to a field of [`Config`] or [`TopicConfig`] (a number, a boolean or text): stores
/// the checked value into it and reports it back.
macro_rules! field {
    ($($field:ident).+) => {
        Field {
            set: |c, v| {
                c.$($field).+ = FromValue::from_value(v)?;
                Ok(())
            },
            get: |c| ToValue::to_value(&c.$($field).+),
        }
    };
}

/// A whole number of Kafka's SHORT type within `min..=max`.
const fn short(min: i64, max: i64) -> Type {
    Type::Short { min, max }
}
/// A whole number of Kafka's INT type from `min` up to the type's limit.
const fn int(min: i64) -> Type {
    Type::Int {
        min,
        max: KAFKA_INT_MAX,
    }
}
/// A whole number of Kafka's INT type within `min..=max`.
const fn int_within(min: i64, max: i64) -> Type {
    Type::Int { min, max }
}
/// A whole number of Kafka's LONG type from `min` up to the type's limit.
const fn long(min: i64) -> Type {
    Type::Long {
        min,
        max: KAFKA_LONG_MAX,
    }
}
/// A whole number of Kafka's LONG type within `min..=max`.
const fn long_within(min: i64, max: i64) -> Type {
    Type::Long { min, max }
}
const fn same(name: &'static str) -> Synonym {
    Synonym {
        name,
        convert: Convert::Same,
    }
}
const fn minutes(name: &'static str) -> Synonym {
    Synonym {
        name,
        convert: Convert::MinutesToMs,
    }
}
const fn hours(name: &'static str) -> Synonym {
    Synonym {
        name,
        convert: Convert::HoursToMs,
    }
}

/// `log.dirs`: shardlog keeps one data directory, the first entry, and says so when given more.
fn set_data_dir(config: &mut Config, value: &Value) -> Result<(), String> {
    let text = value.to_string();
    let dirs = parse_list(&text)?;
    if dirs.len() > 1 {
        tracing::warn!(value = %text, "shardlog uses one data directory; using the first entry only");
    }
    if let Some(first) = dirs.into_iter().next() {
        config.data_dir = first.into();
    }
    Ok(())
}

/// `log.retention.ms` (or a synonym converted to ms); any negative value means unlimited.
fn set_log_retention_ms(config: &mut Config, value: &Value) -> Result<(), String> {
    let ms = i64::from_value(value)?;
    config.log_retention_ms = if ms < 0 { RETENTION_UNLIMITED } else { ms };
    Ok(())
}

/// `log.cleaner.io.max.bytes.per.second`: a positive number of bytes per second.
fn set_cleaner_io_max(config: &mut Config, value: &Value) -> Result<(), String> {
    config.cleaner.io_max_bytes_per_second = parse_positive_double(&value.to_string())?;
    Ok(())
}

/// `offsets.retention.minutes` is kept in milliseconds.
fn set_offsets_retention(config: &mut Config, value: &Value) -> Result<(), String> {
    let minutes = i64::from_value(value)?;
    config.groups.offsets_retention_ms = minutes.saturating_mul(MS_PER_MINUTE);
    Ok(())
}

/// `listeners` and `advertised.listeners` when neither they nor the flags are given.
fn default_listener(_: &Config) -> Value {
    Value::Text(format!("{PLAINTEXT}://{DEFAULT_LISTEN}"))
}

/// The listener URL of an address, as `listeners` / `advertised.listeners` print it.
fn listener_url(host: &str, port: u16) -> Value {
    Value::Text(format!("{PLAINTEXT}://{}:{port}", url_host(host)))
}

/// Every config key shardlog accepts. Broker keys first (acted on, then accepted for
/// compatibility), then topic keys; a name may appear once per scope (`compression.type` is both).
#[rustfmt::skip]
pub static KEYS: &[Key] = &[
    // --- Broker keys acted on ---------------------------------------------------------------
    Key::broker("log.dirs", Type::StringList, "Directory holding the partition logs; shardlog uses the first entry only.")
        .default_text(DEFAULT_DATA_DIR).synonyms(&[same("log.dir")]).acted()
        .field(Field { set: set_data_dir, get: |c| c.data_dir.to_value() }),
    Key::broker("log.dir", Type::StringList, "Data directory, used when log.dirs is not set.").acted(),
    Key::broker("listeners", Type::Listeners, "Address to accept clients on: the first PLAINTEXT listener that is not a controller listener.")
        .default(DefaultValue::Computed(default_listener))
        .acted().update(Update::PerBroker)
        .report(|c| Value::Text(format!("{PLAINTEXT}://{}", c.listen))),
    Key::broker("advertised.listeners", Type::Listeners, "Address put in Metadata responses; the listen address when not set.")
        .default(DefaultValue::Computed(default_listener))
        .acted().update(Update::PerBroker)
        .report(|c| listener_url(&c.advertise_host, c.advertise_port)),
    Key::broker("listener.security.protocol.map", Type::ProtocolMap, "Security protocol of each listener name; only PLAINTEXT is served.")
        .acted().update(Update::PerBroker),
    Key::broker("controller.listener.names", Type::StringList, "Listeners that are skipped: shardlog runs no KRaft controller.")
        .acted(),
    Key::broker("node.id", int(MIN_NODE_ID as i64), "Id of this broker in Metadata.")
        .default_int(DEFAULT_NODE_ID as i64).synonyms(&[same("broker.id")]).acted()
        .field(field!(node_id)),
    Key::broker("broker.id", int(MIN_NODE_ID as i64), "Id of this broker; must equal node.id when both are set.")
        .default_int(DEFAULT_NODE_ID as i64).acted()
        .report(|c| c.node_id.to_value()),
    Key::broker("num.partitions", int(MIN_ONE), "Partitions of an auto-created topic.")
        .default_int(DEFAULT_NUM_PARTITIONS as i64).acted().field(field!(num_partitions)),
    Key::broker("allow.everyone.if.no.acl.found", Type::Boolean, "A resource that no ACL binding applies to is open to every client. true by default here, where ACLs are always checked: a broker with no ACLs serves everyone, as Kafka does without an authorizer.")
        .default_bool(true).acted().field(field!(allow_everyone_if_no_acl_found)),
    Key::broker("auto.create.topics.enable", Type::Boolean, "Metadata requests create topics that do not exist.")
        .default_bool(DEFAULT_AUTO_CREATE_TOPICS_ENABLE).acted().field(field!(auto_create_topics_enable)),
    Key::broker("default.replication.factor", Type::SingleReplica, "Replicas of an auto-created topic; must be 1 (single node).")
        .default_int(DEFAULT_REPLICATION_FACTOR as i64).acted().field(field!(default_replication_factor)),
    Key::broker("log.segment.bytes", int_within(MIN_LOG_SEGMENT_BYTES as i64, MAX_LOG_SEGMENT_BYTES as i64), "Size at which a segment rolls.")
        .default_int(DEFAULT_LOG_SEGMENT_BYTES as i64).acted().update(Update::ClusterWide).dynamic()
        .field(field!(log_segment_bytes)),
    Key::broker("log.index.interval.bytes", int(MIN_ZERO), "Bytes of records between two offset-index entries.")
        .default_int(DEFAULT_LOG_INDEX_INTERVAL_BYTES as i64).acted().update(Update::ClusterWide).dynamic()
        .field(field!(log_index_interval_bytes)),
    Key::broker("message.max.bytes", int(MIN_ZERO), "Largest record batch accepted.")
        .default_int(DEFAULT_MESSAGE_MAX_BYTES as i64).acted().update(Update::ClusterWide).dynamic()
        .field(field!(message_max_bytes)),
    Key::broker("socket.request.max.bytes", int(MIN_SOCKET_REQUEST_MAX_BYTES as i64), "Largest request frame; a larger one closes the connection.")
        .default_int(DEFAULT_SOCKET_REQUEST_MAX_BYTES as i64).acted().field(field!(socket_request_max_bytes)),
    Key::broker("queued.max.request.bytes", long(-1), "Bytes of requests the broker holds at once, split evenly over its shards; a shard whose share is held stops reading from its connections until requests are answered. -1: no limit.")
        .default_int(DEFAULT_QUEUED_MAX_REQUEST_BYTES).acted().field(field!(queued_max_request_bytes)),
    Key::broker("fetch.max.bytes", int(MIN_FETCH_MAX_BYTES as i64), "Most bytes one fetch response holds, whatever the request asks (its max_bytes and each partition's are kept within it).")
        .default_int(DEFAULT_FETCH_MAX_BYTES as i64).acted().field(field!(fetch_max_bytes)),
    Key::broker("connections.max.idle.ms", long(MIN_ONE), "A connection with no request in flight that sends nothing for this long is closed.")
        .default_int(DEFAULT_CONNECTIONS_MAX_IDLE_MS as i64).acted().field(field!(connections_max_idle_ms)),
    Key::broker("shardlog.request.read.timeout.ms", long(MIN_ONE), "A request must arrive whole within this once its first bytes have; a connection trickling bytes (slowloris) is closed.")
        .default_int(DEFAULT_REQUEST_READ_TIMEOUT_MS as i64).acted().field(field!(request_read_timeout_ms)),
    Key::broker("max.connections", int(MIN_ZERO), "Connections the broker holds at once; a connection past it is closed as soon as it is accepted.")
        .default_int(i32::MAX as i64).acted().field(field!(max_connections)),
    Key::broker("max.connections.per.ip", int(MIN_ZERO), "Connections from one IP address the broker holds at once (unless max.connections.per.ip.overrides names the address); a connection past it is closed as soon as it is accepted.")
        .default_int(i32::MAX as i64).acted().field(field!(max_connections_per_ip)),
    Key::broker("max.connections.per.ip.overrides", Type::AddressCounts, "Per-address limits instead of max.connections.per.ip: a comma-separated list of IP:count.")
        .default_text("").acted().field(field!(max_connections_per_ip_overrides)),
    Key::broker("shardlog.http.listen", Type::OptionalAddress, "HOST:PORT of the admin HTTP listener (Prometheus /metrics, /v1/health, /v1/topics, /v1/groups, a console page at /), served by shard 0; empty: none. Keep it on loopback or a management network: it has no authentication.")
        .default_text("").acted().field(field!(http_listen)),
    Key::broker("shardlog.lag.sample.interval.ms", long(MIN_ONE), "How often the lag monitor reads every group's committed offsets and the log end offsets: each new commit it sees enters the partition's window, with its lag at that time.")
        .default_int(DEFAULT_LAG_SAMPLE_INTERVAL_MS as i64).acted().field(field!(lag_sample_interval_ms)),
    Key::broker("shardlog.lag.window.commits", int(MIN_ONE), "Commits per partition the lag status is evaluated over (Burrow's intervals).")
        .default_int(DEFAULT_LAG_WINDOW_COMMITS as i64).acted().field(field!(lag_window_commits)),
    Key::broker("shardlog.metrics.per.partition", Type::Boolean, "/metrics adds series per partition (log offsets, size, segments) and per group partition (committed offset, lag): one series each, so off by default.")
        .default_bool(false).acted().field(field!(metrics_per_partition)),
    Key::broker("shardlog.fsync.on.ack", Type::Boolean, "acks=1/all wait for fdatasync (group commit); false acks once written to the file.")
        .default_bool(DEFAULT_GROUP_COMMIT).acted().field(field!(group_commit)),
    Key::broker("shardlog.group.commit.max.wait.us", long_within(0, MAX_GROUP_COMMIT_MAX_WAIT_US), "How long an fdatasync round waits for appends still being written on its shard, so they share it; 0 starts each round at once.")
        .default_int(DEFAULT_GROUP_COMMIT_MAX_WAIT_US as i64).acted().field(field!(group_commit_max_wait_us)),
    Key::broker("shardlog.group.commit.max.bytes", long_within(0, i64::MAX), "Bytes written since the last fdatasync round that start the next one without waiting for more appends.")
        .default_int(DEFAULT_GROUP_COMMIT_MAX_BYTES as i64).acted().field(field!(group_commit_max_bytes)),
    Key::broker("shardlog.tail.cache.bytes", long_within(0, MAX_TAIL_CACHE_BYTES), "Memory per shard for the batches partitions wrote last, which tail consumers read without a disk read; 0 turns the cache off.")
        .default_int(DEFAULT_TAIL_CACHE_BYTES as i64).acted().field(field!(tail_cache_bytes)),
    Key::broker("shardlog.replication.factor.clamp", Type::Boolean, "Create topics asked with more replicas than brokers with one replica instead of refusing them (test suites written for 3-broker clusters).")
        .default_bool(DEFAULT_REPLICATION_FACTOR_CLAMP).acted().field(field!(replication_factor_clamp)),
    Key::broker("shardlog.io.memory.bytes", long_within(MIN_IO_MEMORY_BYTES as i64, MAX_IO_MEMORY_BYTES as i64), "glommio io_memory per shard; by default sized to fit the memlock limit.")
        .default(DefaultValue::Computed(|c| default_io_memory_bytes(c.shards).to_value()))
        .acted().field(field!(io_memory_bytes)),
    Key::broker("offsets.topic.num.partitions", int_within(MIN_ONE, MAX_OFFSETS_TOPIC_NUM_PARTITIONS as i64), "Partitions of the internal topic __consumer_offsets.")
        .default_int(DEFAULT_OFFSETS_TOPIC_NUM_PARTITIONS as i64).acted()
        .field(field!(groups.offsets_topic_num_partitions)),
    Key::broker("offsets.topic.segment.bytes", int_within(MIN_LOG_SEGMENT_BYTES as i64, MAX_LOG_SEGMENT_BYTES as i64), "Segment size of __consumer_offsets.")
        .default_int(DEFAULT_OFFSETS_TOPIC_SEGMENT_BYTES as i64).acted()
        .field(field!(groups.offsets_topic_segment_bytes)),
    Key::broker("offsets.retention.minutes", int(MIN_ONE), "How long committed offsets of an empty group are kept.")
        .default_int(DEFAULT_OFFSETS_RETENTION_MINUTES).acted()
        .field(Field { set: set_offsets_retention, get: |c| Value::Int(c.groups.offsets_retention_ms / MS_PER_MINUTE) }),
    Key::broker("offsets.retention.check.interval.ms", long(MIN_ONE), "How often expired offsets are looked for.")
        .default_int(DEFAULT_OFFSETS_RETENTION_CHECK_INTERVAL_MS as i64).acted()
        .field(field!(groups.offsets_retention_check_interval_ms)),
    Key::broker("group.initial.rebalance.delay.ms", int(MIN_ZERO), "How long a new group waits for more members before its first rebalance.")
        .default_int(DEFAULT_GROUP_INITIAL_REBALANCE_DELAY_MS as i64).acted()
        .field(field!(groups.initial_rebalance_delay_ms)),
    Key::broker("group.min.session.timeout.ms", int(MIN_ZERO), "Smallest session timeout a member may ask for.")
        .default_int(DEFAULT_GROUP_MIN_SESSION_TIMEOUT_MS as i64).acted()
        .field(field!(groups.min_session_timeout_ms)),
    Key::broker("group.max.session.timeout.ms", int(MIN_ZERO), "Largest session timeout a member may ask for; at least the minimum.")
        .default_int(DEFAULT_GROUP_MAX_SESSION_TIMEOUT_MS as i64).acted()
        .field(field!(groups.max_session_timeout_ms)),
    Key::broker("group.max.size", int(MIN_ONE), "Most members in one group.")
        .default_int(DEFAULT_GROUP_MAX_SIZE as i64).acted().field(field!(groups.max_size)),
    Key::broker("group.consumer.heartbeat.interval.ms", int(MIN_ONE), "Heartbeat interval KIP-848 members are told.")
        .default_int(DEFAULT_GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS as i64).acted()
        .field(field!(groups.consumer_heartbeat_interval_ms)),
    Key::broker("group.consumer.session.timeout.ms", int(MIN_ONE), "KIP-848 members silent this long are removed.")
        .default_int(DEFAULT_GROUP_CONSUMER_SESSION_TIMEOUT_MS as i64).acted()
        .field(field!(groups.consumer_session_timeout_ms)),

    Key::broker("transaction.state.log.num.partitions", int_within(MIN_ONE, MAX_OFFSETS_TOPIC_NUM_PARTITIONS as i64), "Partitions of the internal topic __transaction_state.")
        .default_int(DEFAULT_TRANSACTION_STATE_LOG_NUM_PARTITIONS as i64).acted()
        .field(field!(txn.state_log_num_partitions)),
    Key::broker("transaction.state.log.segment.bytes", int_within(MIN_LOG_SEGMENT_BYTES as i64, MAX_LOG_SEGMENT_BYTES as i64), "Segment size of __transaction_state.")
        .default_int(DEFAULT_TRANSACTION_STATE_LOG_SEGMENT_BYTES as i64).acted()
        .field(field!(txn.state_log_segment_bytes)),
    Key::broker("transaction.max.timeout.ms", int(MIN_ONE), "Longest transaction timeout a producer may ask for.")
        .default_int(DEFAULT_TRANSACTION_MAX_TIMEOUT_MS as i64).acted()
        .field(field!(txn.max_timeout_ms)),
    Key::broker("transaction.abort.timed.out.transaction.cleanup.interval.ms", int(MIN_ONE), "How often transactions open past their timeout are looked for and aborted.")
        .default_int(DEFAULT_TRANSACTION_ABORT_INTERVAL_MS as i64).acted()
        .field(field!(txn.abort_timed_out_interval_ms)),
    Key::broker("transactional.id.expiration.ms", int(MIN_ONE), "How long the coordinator keeps a transactional id that has not been used.")
        .default_int(DEFAULT_TRANSACTIONAL_ID_EXPIRATION_MS).acted()
        .field(field!(txn.transactional_id_expiration_ms)),
    Key::broker("transaction.remove.expired.transaction.cleanup.interval.ms", int(MIN_ONE), "How often transactional ids idle past transactional.id.expiration.ms are removed.")
        .default_int(DEFAULT_TRANSACTION_REMOVE_EXPIRED_INTERVAL_MS as i64).acted()
        .field(field!(txn.remove_expired_interval_ms)),
    Key::broker("producer.id.expiration.ms", int(MIN_ONE), "How long a partition keeps the state of a producer that has not written to it.")
        .default_int(DEFAULT_PRODUCER_ID_EXPIRATION_MS).acted().update(Update::ClusterWide).dynamic()
        .field(field!(txn.producer_id_expiration_ms)),

    Key::broker("log.retention.ms", long(RETENTION_UNLIMITED), "How long a log is kept; -1 is unlimited.")
        .default_int(DEFAULT_LOG_RETENTION_MS).synonyms(&[minutes("log.retention.minutes"), hours("log.retention.hours")])
        .acted().update(Update::ClusterWide).dynamic().field(Field { set: set_log_retention_ms, get: |c| c.log_retention_ms.to_value() }),
    Key::broker("log.retention.minutes", int(RETENTION_UNLIMITED), "log.retention.ms in minutes, when that is not set."),
    Key::broker("log.retention.hours", int(RETENTION_UNLIMITED), "log.retention.ms in hours, when neither it nor log.retention.minutes is set.")
        .default_int(DEFAULT_LOG_RETENTION_HOURS),
    Key::broker("log.retention.bytes", long(RETENTION_UNLIMITED), "Largest size a partition log is kept at; -1 is unlimited.")
        .default_int(DEFAULT_LOG_RETENTION_BYTES).acted().update(Update::ClusterWide).dynamic().field(field!(log_retention_bytes)),
    Key::broker("log.cleanup.policy", Type::CleanupPolicy, "delete old segments, compact by key, or both.")
        .default_text(DEFAULT_LOG_CLEANUP_POLICY).acted().update(Update::ClusterWide).dynamic().field(field!(log_cleanup_policy)),
    Key::broker("log.retention.check.interval.ms", long(MIN_ONE), "How often retention is checked.")
        .default_int(DEFAULT_LOG_RETENTION_CHECK_INTERVAL_MS as i64).acted()
        .field(field!(log_retention_check_interval_ms)),
    Key::broker("log.flush.offset.checkpoint.interval.ms", int(MIN_ONE), "How often each partition with new data records its recovery point (the active segment's index and a producer snapshot), so a restart after a crash scans only what came after.")
        .default_int(DEFAULT_LOG_FLUSH_OFFSET_CHECKPOINT_INTERVAL_MS as i64).acted()
        .field(field!(log_flush_offset_checkpoint_interval_ms)),

    Key::broker("log.roll.ms", long(MIN_ONE), "Age at which a segment rolls.")
        .synonyms(&[hours("log.roll.hours")]).acted().update(Update::ClusterWide).dynamic(),
    Key::broker("log.roll.hours", int(MIN_ONE), "log.roll.ms in hours, when that is not set.")
        .default_int(DEFAULT_LOG_ROLL_HOURS),
    Key::broker("log.roll.jitter.ms", long(MIN_ZERO), "Most random time taken off log.roll.ms per segment.")
        .synonyms(&[hours("log.roll.jitter.hours")]).acted().update(Update::ClusterWide).dynamic(),
    Key::broker("log.roll.jitter.hours", int(MIN_ZERO), "log.roll.jitter.ms in hours, when that is not set.")
        .default_int(DEFAULT_LOG_ROLL_JITTER_HOURS),
    Key::broker("log.cleaner.enable", Type::Boolean, "Whether compacted topics are cleaned.")
        .default_bool(DEFAULT_LOG_CLEANER_ENABLE).acted().field(field!(cleaner.enable)),
    Key::broker("log.cleaner.backoff.ms", long(MIN_ZERO), "How long the cleaner sleeps when no log needs cleaning.")
        .default_int(DEFAULT_LOG_CLEANER_BACKOFF_MS as i64).acted().update(Update::ClusterWide)
        .field(field!(cleaner.backoff_ms)),
    Key::broker("log.cleaner.dedupe.buffer.size", long(MIN_CLEANER_DEDUPE_BUFFER_BYTES), "Memory for the cleaner's key map, shared by all shards.")
        .default_int(DEFAULT_LOG_CLEANER_DEDUPE_BUFFER_BYTES as i64).acted().update(Update::ClusterWide)
        .field(field!(cleaner.dedupe_buffer_bytes)),
    Key::broker("log.cleaner.io.max.bytes.per.second", Type::PositiveDouble, "Most bytes per second the cleaner reads and writes, shared by all shards.")
        .default_text(DEFAULT_LOG_CLEANER_IO_MAX_BYTES_PER_SECOND).acted().update(Update::ClusterWide)
        .field(Field { set: set_cleaner_io_max, get: |c| Value::Text(format_double(c.cleaner.io_max_bytes_per_second)) }),
    Key::broker("log.cleaner.threads", int(MIN_ZERO), "Kafka's cleaner threads; shardlog cleans on each shard instead.")
        .default_int(1).update(Update::ClusterWide),
    Key::broker("log.cleaner.delete.retention.ms", long(MIN_ZERO), "How long tombstones are kept in a compacted topic.")
        .default_int(DEFAULT_DELETE_RETENTION_MS).acted().update(Update::ClusterWide).dynamic(),
    Key::broker("log.cleaner.min.cleanable.ratio", Type::Ratio, "Share of uncompacted log that triggers compaction.")
        .default_text(DEFAULT_MIN_CLEANABLE_DIRTY_RATIO).acted().update(Update::ClusterWide).dynamic(),
    Key::broker("log.cleaner.min.compaction.lag.ms", long(MIN_ZERO), "Shortest a record stays uncompacted.")
        .default_int(DEFAULT_MIN_COMPACTION_LAG_MS).acted().update(Update::ClusterWide).dynamic(),
    Key::broker("log.cleaner.max.compaction.lag.ms", long(MIN_ONE), "Longest a record stays uncompacted.")
        .default_int(DEFAULT_MAX_COMPACTION_LAG_MS).acted().update(Update::ClusterWide).dynamic(),

    // --- Broker keys checked, stored and reported, not acted on yet -------------------------
    Key::broker("log.flush.interval.messages", long(MIN_ONE), "Messages written before a partition is flushed.")
        .default_int(DEFAULT_LOG_FLUSH_INTERVAL_MESSAGES).update(Update::ClusterWide)
        .field(field!(log_flush_interval_messages)),
    Key::broker("log.flush.interval.ms", long(MIN_ZERO), "Time a message stays unflushed before a flush.")
        .update(Update::ClusterWide),
    Key::broker("log.message.format.version", Type::String, "Deprecated in Kafka 3.0 and ignored: batches are always stored in format v2.")
        .default_text(DEFAULT_MESSAGE_FORMAT_VERSION).update(Update::ClusterWide),
    Key::broker("log.message.timestamp.type", Type::OneOf(TIMESTAMP_TYPES), "Whether record timestamps are the producer's or the broker's.")
        .default_text(DEFAULT_MESSAGE_TIMESTAMP_TYPE).acted().update(Update::ClusterWide),
    Key::broker("compression.type", Type::OneOf(COMPRESSION_TYPES), "Compression of stored batches; producer keeps what the producer sent.")
        .default_text(DEFAULT_COMPRESSION_TYPE).update(Update::ClusterWide),
    Key::broker("min.insync.replicas", int(MIN_ONE), "Replicas that must acknowledge an acks=all write.")
        .default_int(DEFAULT_MIN_INSYNC_REPLICAS as i64).update(Update::ClusterWide),
    Key::broker("unclean.leader.election.enable", Type::Boolean, "Whether a replica out of sync may become leader.")
        .default_bool(DEFAULT_UNCLEAN_LEADER_ELECTION_ENABLE).update(Update::ClusterWide),
    Key::broker("process.roles", Type::List, "KRaft roles of this node."),
    Key::broker("controller.quorum.voters", Type::String, "KRaft controller quorum."),
    Key::broker("inter.broker.listener.name", Type::String, "Listener brokers talk to each other on."),
    // See INERT_DYNAMIC_KEYS.
    Key::broker("sasl.kerberos.min.time.before.relogin", long(MIN_ZERO), "Login thread sleep time between refresh attempts (SASL/Kerberos; not served).")
        .default_int(60_000).update(Update::PerBroker).dynamic(),
    Key::broker("num.network.threads", int(MIN_ONE), "Kafka's network threads; shardlog runs one executor per shard instead.")
        .update(Update::ClusterWide),
    Key::broker("num.io.threads", int(MIN_ONE), "Kafka's request threads; shardlog runs one executor per shard instead.")
        .update(Update::ClusterWide),
    Key::broker("socket.send.buffer.bytes", int(MIN_MINUS_ONE), "SO_SNDBUF of client sockets; -1 is the OS default."),
    Key::broker("socket.receive.buffer.bytes", int(MIN_MINUS_ONE), "SO_RCVBUF of client sockets; -1 is the OS default."),
    Key::broker("num.recovery.threads.per.data.dir", int(MIN_ONE), "Threads that recover logs at start-up.")
        .update(Update::ClusterWide),
    Key::broker("offsets.topic.replication.factor", short(MIN_ONE, KAFKA_SHORT_MAX), "Replicas of __consumer_offsets."),
    Key::broker("transaction.state.log.replication.factor", short(MIN_ONE, KAFKA_SHORT_MAX), "Replicas of __transaction_state."),
    Key::broker("transaction.state.log.min.isr", int(MIN_ONE), "min.insync.replicas of __transaction_state."),
    Key::broker("delete.topic.enable", Type::Boolean, "Whether DeleteTopics is allowed."),
    Key::broker("zookeeper.connect", Type::String, "ZooKeeper address of pre-KRaft Kafka."),
    Key::broker("zookeeper.connection.timeout.ms", int(MIN_ZERO), "ZooKeeper connection timeout of pre-KRaft Kafka."),
    Key::broker("auto.leader.rebalance.enable", Type::Boolean, "Whether leadership moves back to preferred replicas."),

    // --- Topic keys (CreateTopics configs, DescribeConfigs on a topic) ----------------------
    Key::topic("cleanup.policy", Type::CleanupPolicy, "delete old segments, compact by key, or both.")
        .derives_from("log.cleanup.policy").acted().topic_field(field!(cleanup_policy)),
    Key::topic("compression.type", Type::OneOf(COMPRESSION_TYPES), "Compression of stored batches; producer keeps what the producer sent.")
        .derives_from("compression.type"),
    Key::topic("delete.retention.ms", long(MIN_ZERO), "How long tombstones are kept in a compacted topic.")
        .derives_from("log.cleaner.delete.retention.ms").acted().topic_field(field!(delete_retention_ms)),
    Key::topic("file.delete.delay.ms", long(MIN_ZERO), "Delay before a deleted segment's file is removed.")
        .default_int(DEFAULT_FILE_DELETE_DELAY_MS),
    Key::topic("flush.messages", long(MIN_ONE), "Messages written before the partition is flushed.")
        .derives_from("log.flush.interval.messages").topic_field(field!(flush_messages)),
    Key::topic("flush.ms", long(MIN_ZERO), "Time a message stays unflushed before a flush.")
        .default_int(DEFAULT_FLUSH_MS).derives_from("log.flush.interval.ms"),
    Key::topic("follower.replication.throttled.replicas", Type::ThrottledReplicas, "Replicas whose follower traffic is throttled.")
        .default_text(DEFAULT_THROTTLED_REPLICAS),
    Key::topic("index.interval.bytes", int(MIN_ZERO), "Bytes of records between two offset-index entries.")
        .derives_from("log.index.interval.bytes").acted().topic_field(field!(index_interval_bytes)),
    Key::topic("leader.replication.throttled.replicas", Type::ThrottledReplicas, "Replicas whose leader traffic is throttled.")
        .default_text(DEFAULT_THROTTLED_REPLICAS),
    Key::topic("local.retention.bytes", long(MIN_LOCAL_RETENTION), "Tiered storage: bytes kept locally; -2 is retention.bytes.")
        .default_int(LOCAL_RETENTION_SAME_AS_TOTAL),
    Key::topic("local.retention.ms", long(MIN_LOCAL_RETENTION), "Tiered storage: time kept locally; -2 is retention.ms.")
        .default_int(LOCAL_RETENTION_SAME_AS_TOTAL),
    Key::topic("max.compaction.lag.ms", long(MIN_ONE), "Longest a record stays uncompacted.")
        .derives_from("log.cleaner.max.compaction.lag.ms").acted().topic_field(field!(max_compaction_lag_ms)),
    Key::topic("max.message.bytes", int(MIN_ZERO), "Largest record batch accepted.")
        .derives_from("message.max.bytes").acted().topic_field(field!(max_message_bytes)),
    Key::topic("message.downconversion.enable", Type::Boolean, "Whether fetches of old versions down-convert batches.")
        .default_bool(DEFAULT_MESSAGE_DOWNCONVERSION_ENABLE),
    Key::topic("message.timestamp.after.max.ms", long(MIN_ZERO), "How far in the future a record timestamp may be.")
        .default_int(DEFAULT_MESSAGE_TIMESTAMP_MAX_MS),
    Key::topic("message.timestamp.before.max.ms", long(MIN_ZERO), "How far in the past a record timestamp may be.")
        .default_int(DEFAULT_MESSAGE_TIMESTAMP_MAX_MS),
    Key::topic("message.timestamp.difference.max.ms", long(MIN_ZERO), "How far a record timestamp may be from the broker's clock.")
        .default_int(DEFAULT_MESSAGE_TIMESTAMP_MAX_MS),
    Key::topic("message.format.version", Type::String, "Deprecated in Kafka 3.0 and ignored: batches are always stored in format v2.")
        .derives_from("log.message.format.version"),
    Key::topic("message.timestamp.type", Type::OneOf(TIMESTAMP_TYPES), "Whether record timestamps are the producer's or the broker's.")
        .derives_from("log.message.timestamp.type").acted().topic_field(field!(message_timestamp_type)),
    Key::topic("min.cleanable.dirty.ratio", Type::Ratio, "Share of uncompacted log that triggers compaction.")
        .derives_from("log.cleaner.min.cleanable.ratio").acted().topic_field(field!(min_cleanable_dirty_ratio)),
    Key::topic("min.compaction.lag.ms", long(MIN_ZERO), "Shortest a record stays uncompacted.")
        .derives_from("log.cleaner.min.compaction.lag.ms").acted().topic_field(field!(min_compaction_lag_ms)),
    Key::topic("min.insync.replicas", int(MIN_ONE), "Replicas that must acknowledge an acks=all write.")
        .derives_from("min.insync.replicas"),
    Key::topic("preallocate", Type::Boolean, "Whether segment files are preallocated.")
        .default_bool(DEFAULT_PREALLOCATE),
    Key::topic("remote.storage.enable", Type::Boolean, "Whether the topic uses tiered storage.")
        .default_bool(DEFAULT_REMOTE_STORAGE_ENABLE),
    Key::topic("retention.bytes", long(RETENTION_UNLIMITED), "Largest size a partition log is kept at; -1 is unlimited.")
        .derives_from("log.retention.bytes").acted().topic_field(field!(retention_bytes)),
    Key::topic("retention.ms", long(RETENTION_UNLIMITED), "How long a log is kept; -1 is unlimited.")
        .derives_from("log.retention.ms").acted().topic_field(field!(retention_ms)),
    Key::topic("segment.bytes", int(MIN_LOG_SEGMENT_BYTES as i64), "Size at which a segment rolls.")
        .derives_from("log.segment.bytes").acted().topic_field(field!(segment_bytes)),
    Key::topic("segment.index.bytes", int(MIN_SEGMENT_INDEX_BYTES), "Size of a segment's offset index.")
        .default_int(DEFAULT_SEGMENT_INDEX_BYTES as i64),
    Key::topic("segment.jitter.ms", long(MIN_ZERO), "Most random time taken off segment.ms per segment.")
        .derives_from("log.roll.jitter.ms").acted().topic_field(field!(segment_jitter_ms)),
    Key::topic("segment.ms", long(MIN_ONE), "Age at which a segment rolls.")
        .derives_from("log.roll.ms").acted().topic_field(field!(segment_ms)),
    Key::topic("unclean.leader.election.enable", Type::Boolean, "Whether a replica out of sync may become leader.")
        .derives_from("unclean.leader.election.enable"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn from_args(args: &[&str]) -> Config {
        Config::from_args(std::iter::once("shardlog").chain(args.iter().copied()))
            .expect("config parses")
    }

    /// A name appears once per scope, and every name a key points at (a synonym, the broker
    /// key a topic key derives from) is a broker key of the table.
    #[test]
    fn names_are_unique_and_references_resolve() {
        let mut seen = BTreeSet::new();
        for key in KEYS {
            assert!(
                seen.insert((key.name, key.is_topic())),
                "{} twice",
                key.name
            );
            assert!(
                !key.doc.is_empty() && !key.doc.contains('\n'),
                "{}",
                key.name
            );
            for synonym in key.synonyms {
                let target = broker_key(synonym.name).expect("synonym is a broker key");
                assert!(
                    target.synonyms.is_empty(),
                    "{} chains synonyms",
                    synonym.name
                );
                assert!(matches!(target.binding, Binding::None | Binding::Report(_)));
            }
            if let Scope::TopicFrom(broker) = key.scope {
                assert!(
                    broker_key(broker).is_some(),
                    "{} derives from {broker}",
                    key.name
                );
            }
            assert_eq!(
                key.is_topic(),
                key.update == Update::PerTopic,
                "{}",
                key.name
            );
            assert!(!matches!(key.binding, Binding::Topic(_)) || key.is_topic());
            assert!(
                !matches!(key.binding, Binding::Broker(_) | Binding::Report(_)) || !key.is_topic()
            );
        }
    }

    /// Every default passes its own key's check, so a default can never be refused if set.
    #[test]
    fn defaults_check_against_their_type() {
        let config = from_args(&[]);
        for key in KEYS {
            if let Some(value) = key.own_default(&config) {
                let printed = value.to_string();
                assert_eq!(key.ty.parse(&printed), Ok(value), "{}", key.name);
            }
        }
    }

    /// The defaults the table declares are the ones `Config` starts from: a broker started with
    /// no settings reports every key as a default whose value is the declared one.
    #[test]
    fn declared_defaults_are_the_config_defaults() {
        let config = from_args(&[]);
        for key in KEYS.iter().filter(|k| !k.is_topic()) {
            let Some((value, source)) = key.broker_value(&config) else {
                continue;
            };
            assert_eq!(source, Source::Default, "{}", key.name);
            if let Some((_, _, default)) = key.default_value(&config) {
                assert_eq!(value, default, "{}", key.name);
            }
        }
        for entry in config.broker_config_entries() {
            assert!(entry.is_default(), "{}", entry.name);
        }
    }

    /// Each field can hold every value its key's bounds allow, so storing a checked value
    /// cannot fail; and every topic field gets a value.
    #[test]
    fn bounds_fit_fields() {
        let extremes = |ty: Type| match ty {
            Type::Short { min, max } | Type::Int { min, max } | Type::Long { min, max } => {
                vec![Value::Int(min), Value::Int(max)]
            }
            Type::Boolean => vec![Value::Bool(false), Value::Bool(true)],
            Type::SingleReplica => vec![Value::Int(1)],
            Type::CleanupPolicy => vec![Value::Text("compact,delete".to_string())],
            Type::Ratio => vec![Value::Text("0".to_string()), Value::Text("1".to_string())],
            Type::PositiveDouble => vec![
                Value::Text("0.001".to_string()),
                Value::Text("1.7976931348623157E308".to_string()),
            ],
            _ => vec![Value::Text("/a,/b".to_string())],
        };
        let mut config = from_args(&[]);
        let mut topic = TopicConfig::default();
        for key in KEYS {
            match key.binding {
                Binding::Broker(field) => {
                    for value in extremes(key.ty) {
                        assert_eq!(
                            (field.set)(&mut config, &value),
                            Ok(()),
                            "{} {value}",
                            key.name
                        );
                    }
                }
                Binding::Topic(field) => {
                    for value in extremes(key.ty) {
                        assert_eq!(
                            (field.set)(&mut topic, &value),
                            Ok(()),
                            "{} {value}",
                            key.name
                        );
                    }
                    let none = BTreeMap::new();
                    assert!(super::super::topic::topic_value(key, &config, &none).is_some());
                }
                Binding::None | Binding::Report(_) => {}
            }
        }
    }

    /// README's "Config keys" section names every key the table acts on, so the two cannot
    /// drift apart.
    #[test]
    fn readme_lists_every_acted_on_key() {
        let readme = include_str!("../../README.md");
        let start = readme
            .find("## Config keys")
            .expect("README has a Config keys section");
        let section = &readme[start..];
        let end = section[3..].find("\n## ").map_or(section.len(), |i| i + 3);
        let section = &section[..end];
        for key in KEYS.iter().filter(|k| k.acted_on) {
            assert!(
                section.contains(&format!("`{}`", key.name)),
                "README 'Config keys' does not mention `{}`",
                key.name
            );
        }
    }
}
