//! Broker configuration: owns the server.properties keys (Kafka's names), the CLI flags,
//! the defaults and their validation.
//!
//! Settings are layered as defaults < `--config` file < `--override KEY=VALUE` < the dedicated flags
//! (`--data-dir`, `--listen`, `--advertise`, `--shards`). Every key is checked when it is read, so a
//! typo or a bad value is reported with where it came from instead of silently falling back to a default.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use clap::Parser;

mod io_memory;
mod listeners;
mod properties;

pub use io_memory::*;
use listeners::{
    parse_flag_host_port, parse_host_port, parse_listeners, parse_protocol_map, resolve_listen,
    url_host, HostPort, PLAINTEXT, SECURITY_PROTOCOLS,
};
use properties::{parse_properties, PropertyEntry};

// ---------------------------------------------------------------------------------------------
// Defaults and bounds
// ---------------------------------------------------------------------------------------------

/// Data directory used when neither `--data-dir` nor `log.dirs` / `log.dir` is given.
pub const DEFAULT_DATA_DIR: &str = "./shardlog-data";
/// Listen address used when neither `--listen` nor `listeners` is given: Kafka's port on loopback,
/// so that a fresh install is not reachable from the network until someone asks for it.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9092";
/// Fewest shards (executor threads) a broker can run with.
pub const MIN_SHARDS: usize = 1;
/// Most shards a broker can run with; partition-to-shard maps and per-shard buffers are sized for at most this many.
pub const MAX_SHARDS: usize = 256;
/// `node.id` / `broker.id` when neither is set.
pub const DEFAULT_NODE_ID: i32 = 0;
/// Smallest node id; Kafka reserves negative ids for "no node".
pub const MIN_NODE_ID: i32 = 0;
/// `num.partitions`: partitions of an auto-created topic (Kafka's default).
pub const DEFAULT_NUM_PARTITIONS: i32 = 1;
/// `auto.create.topics.enable` (Kafka's default).
pub const DEFAULT_AUTO_CREATE_TOPICS_ENABLE: bool = true;
/// `default.replication.factor`, and the only value accepted: shardlog is a single node.
pub const DEFAULT_REPLICATION_FACTOR: i16 = 1;
/// `log.segment.bytes`: 1 GiB, Kafka's default.
pub const DEFAULT_LOG_SEGMENT_BYTES: u64 = 1_073_741_824;
/// Smallest `log.segment.bytes` / `segment.bytes`: Kafka's minimum, the overhead of one v0 record.
pub const MIN_LOG_SEGMENT_BYTES: u64 = 14;
/// Largest `log.segment.bytes`: the key is an INT in Kafka, and segment-relative offsets are 32-bit.
pub const MAX_LOG_SEGMENT_BYTES: u64 = i32::MAX as u64;
/// `log.index.interval.bytes`: bytes of records between two offset-index entries (Kafka's default).
pub const DEFAULT_LOG_INDEX_INTERVAL_BYTES: u32 = 4096;
/// `message.max.bytes`: largest record batch accepted (Kafka's default, 1 MiB plus batch overhead).
pub const DEFAULT_MESSAGE_MAX_BYTES: u32 = 1_048_588;
/// `socket.request.max.bytes`: largest request frame accepted (Kafka's default, 100 MiB).
pub const DEFAULT_SOCKET_REQUEST_MAX_BYTES: u32 = 104_857_600;
/// Smallest `socket.request.max.bytes` (Kafka's minimum).
pub const MIN_SOCKET_REQUEST_MAX_BYTES: u32 = 1;
/// `log.retention.hours` when no retention key is set (Kafka's default, one week).
pub const DEFAULT_LOG_RETENTION_HOURS: i64 = 168;
/// Milliseconds in a minute, to turn `log.retention.minutes` and `offsets.retention.minutes` into milliseconds.
pub const MS_PER_MINUTE: i64 = 60_000;
/// Milliseconds in an hour, to turn `log.retention.hours` into milliseconds.
pub const MS_PER_HOUR: i64 = 3_600_000;
/// Effective `log.retention.ms` when no retention key is set.
pub const DEFAULT_LOG_RETENTION_MS: i64 = DEFAULT_LOG_RETENTION_HOURS * MS_PER_HOUR;
/// The value of the retention keys that means "no limit" (Kafka's convention).
pub const RETENTION_UNLIMITED: i64 = -1;
/// `log.retention.bytes` (Kafka's default: no size limit).
pub const DEFAULT_LOG_RETENTION_BYTES: i64 = RETENTION_UNLIMITED;
/// `log.cleanup.policy` (Kafka's default).
pub const DEFAULT_LOG_CLEANUP_POLICY: &str = "delete";
/// The words `log.cleanup.policy` / `cleanup.policy` may list.
pub const CLEANUP_POLICIES: &[&str] = &["delete", "compact"];
/// `log.flush.interval.messages` (Kafka's default, Long.MAX_VALUE: leave flushing to the OS).
pub const DEFAULT_LOG_FLUSH_INTERVAL_MESSAGES: i64 = i64::MAX;
/// `shardlog.fsync.on.ack`: acks=1/all wait for fdatasync unless turned off.
pub const DEFAULT_GROUP_COMMIT: bool = true;

// Consumer-group coordinator defaults (Kafka's), gathered in [`GroupConfig`].

/// `offsets.topic.num.partitions`: partitions of the internal topic `__consumer_offsets` (Kafka's default).
pub const DEFAULT_OFFSETS_TOPIC_NUM_PARTITIONS: i32 = 50;
/// Largest `offsets.topic.num.partitions` shardlog accepts (Kafka sets no upper bound).
pub const MAX_OFFSETS_TOPIC_NUM_PARTITIONS: i32 = 10_000;
/// `offsets.topic.segment.bytes`: segment size of `__consumer_offsets` (Kafka's default, 100 MiB).
pub const DEFAULT_OFFSETS_TOPIC_SEGMENT_BYTES: u64 = 104_857_600;
/// `offsets.retention.minutes`: how long committed offsets of an empty group are kept (Kafka's default, one week).
pub const DEFAULT_OFFSETS_RETENTION_MINUTES: i64 = 10_080;
/// Effective offsets retention in milliseconds when `offsets.retention.minutes` is not set.
pub const DEFAULT_OFFSETS_RETENTION_MS: i64 = DEFAULT_OFFSETS_RETENTION_MINUTES * MS_PER_MINUTE;
/// `offsets.retention.check.interval.ms`: how often expired offsets are looked for (Kafka's default, ten minutes).
pub const DEFAULT_OFFSETS_RETENTION_CHECK_INTERVAL_MS: u64 = 600_000;
/// `group.initial.rebalance.delay.ms`: how long a new group waits for more members before its first rebalance (Kafka's default).
pub const DEFAULT_GROUP_INITIAL_REBALANCE_DELAY_MS: u64 = 3_000;
/// `group.min.session.timeout.ms`: smallest session timeout a member may ask for (Kafka's default, six seconds).
pub const DEFAULT_GROUP_MIN_SESSION_TIMEOUT_MS: i32 = 6_000;
/// `group.max.session.timeout.ms`: largest session timeout a member may ask for (Kafka's default, 30 minutes).
pub const DEFAULT_GROUP_MAX_SESSION_TIMEOUT_MS: i32 = 1_800_000;
/// `group.max.size`: most members in one group (Kafka's default, Int.MAX_VALUE: no limit).
pub const DEFAULT_GROUP_MAX_SIZE: i32 = i32::MAX;
/// `group.consumer.heartbeat.interval.ms`: how often KIP-848 members heartbeat (Kafka's default).
pub const DEFAULT_GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS: i32 = 5_000;
/// `group.consumer.session.timeout.ms`: a KIP-848 member missing heartbeats this long is
/// removed (Kafka's default).
pub const DEFAULT_GROUP_CONSUMER_SESSION_TIMEOUT_MS: i32 = 45_000;

/// Shards used by [`Config::for_tests`]: two, so cross-shard paths are exercised.
pub const FOR_TESTS_SHARDS: usize = 2;
/// Listen address used by [`Config::for_tests`]: an ephemeral loopback port.
pub const FOR_TESTS_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
/// io_memory per shard used by [`Config::for_tests`]: glommio's minimum, because tests run many
/// brokers at once and locked memory is charged per user, so a larger value would make ring
/// creation in a concurrently starting broker fail.
pub const FOR_TESTS_IO_MEMORY_BYTES: usize = MIN_IO_MEMORY_BYTES;

// Topic-level defaults (Kafka 3.x documentation), for keys that do not derive from a broker key.

/// `compression.type` default: keep whatever the producer sent.
pub const DEFAULT_COMPRESSION_TYPE: &str = "producer";
/// `message.timestamp.type` default.
pub const DEFAULT_MESSAGE_TIMESTAMP_TYPE: &str = "CreateTime";
/// `min.insync.replicas` default.
pub const DEFAULT_MIN_INSYNC_REPLICAS: i32 = 1;
/// `delete.retention.ms` default: one day.
pub const DEFAULT_DELETE_RETENTION_MS: i64 = 86_400_000;
/// `file.delete.delay.ms` default: one minute.
pub const DEFAULT_FILE_DELETE_DELAY_MS: i64 = 60_000;
/// `flush.ms` default (Long.MAX_VALUE: leave flushing to the OS).
pub const DEFAULT_FLUSH_MS: i64 = i64::MAX;
/// `segment.ms` default: one week.
pub const DEFAULT_SEGMENT_MS: i64 = 604_800_000;
/// `segment.index.bytes` default: 10 MiB.
pub const DEFAULT_SEGMENT_INDEX_BYTES: i32 = 10_485_760;
/// `segment.jitter.ms` default.
pub const DEFAULT_SEGMENT_JITTER_MS: i64 = 0;
/// `min.cleanable.dirty.ratio` default.
pub const DEFAULT_MIN_CLEANABLE_DIRTY_RATIO: &str = "0.5";
/// `max.compaction.lag.ms` default (Long.MAX_VALUE).
pub const DEFAULT_MAX_COMPACTION_LAG_MS: i64 = i64::MAX;
/// `min.compaction.lag.ms` default.
pub const DEFAULT_MIN_COMPACTION_LAG_MS: i64 = 0;
/// `local.retention.ms` / `local.retention.bytes` default: -2 means "same as retention.*".
pub const LOCAL_RETENTION_SAME_AS_TOTAL: i64 = -2;
/// `message.timestamp.difference.max.ms`, `.before.max.ms` and `.after.max.ms` default (Long.MAX_VALUE).
pub const DEFAULT_MESSAGE_TIMESTAMP_MAX_MS: i64 = i64::MAX;

// Generic bounds of Kafka's typed keys.

/// Largest value of a Kafka INT key.
const KAFKA_INT_MAX: i64 = i32::MAX as i64;
/// Largest value of a Kafka SHORT key (replication factors).
const KAFKA_SHORT_MAX: i64 = i16::MAX as i64;
/// Largest value of a Kafka LONG key.
const KAFKA_LONG_MAX: i64 = i64::MAX;
/// Smallest value of counts: threads, partitions, replicas, messages, intervals that must tick.
const MIN_ONE: i64 = 1;
/// Smallest value of sizes and delays where zero is meaningful.
const MIN_ZERO: i64 = 0;
/// Smallest value of keys where -1 means "no limit" or "use the OS default".
const MIN_MINUS_ONE: i64 = -1;
/// Smallest value of the tiered-storage `local.retention.*` keys.
const MIN_LOCAL_RETENTION: i64 = LOCAL_RETENTION_SAME_AS_TOTAL;
/// Smallest `segment.index.bytes`: one index entry (Kafka's minimum).
const MIN_SEGMENT_INDEX_BYTES: i64 = 4;

/// Values of `compression.type` (broker and topic).
const COMPRESSION_TYPES: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
/// Values of `message.timestamp.type` / `log.message.timestamp.type`.
const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];

/// Kafka keys accepted for compatibility with real server.properties files. They are stored in
/// [`Config::explicit`] and reported by DescribeConfigs, but not acted on yet (except `listeners`,
/// `advertised.listeners`, `listener.security.protocol.map` and `controller.listener.names`, which
/// choose the listen and advertised addresses). Values are checked for type where it is obvious.
pub const COMPAT_KEYS: &[&str] = &[
    "listeners",
    "advertised.listeners",
    "process.roles",
    "controller.quorum.voters",
    "controller.listener.names",
    "listener.security.protocol.map",
    "inter.broker.listener.name",
    "num.network.threads",
    "num.io.threads",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "num.recovery.threads.per.data.dir",
    "offsets.topic.replication.factor",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    "log.retention.check.interval.ms",
    "log.flush.interval.ms",
    "min.insync.replicas",
    "delete.topic.enable",
    "log.roll.hours",
    "log.roll.ms",
    "compression.type",
    "log.message.timestamp.type",
    "zookeeper.connect",
    "zookeeper.connection.timeout.ms",
    "unclean.leader.election.enable",
    "auto.leader.rebalance.enable",
];

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/// The broker's effective configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// `--data-dir`, or the first entry of `log.dirs` / `log.dir`.
    pub data_dir: PathBuf,
    /// `--listen HOST:PORT`, or the first PLAINTEXT entry of `listeners`.
    pub listen: SocketAddr,
    /// Host put in Metadata responses: `--advertise`, `advertised.listeners`, or the listen host as given.
    pub advertise_host: String,
    /// Port put in Metadata responses.
    pub advertise_port: u16,
    /// `--shards N`: executor threads, one per usable CPU by default.
    pub shards: usize,
    /// `node.id` or `broker.id`.
    pub node_id: i32,
    /// `num.partitions`: partitions of an auto-created topic.
    pub num_partitions: i32,
    /// `auto.create.topics.enable`.
    pub auto_create_topics_enable: bool,
    /// `default.replication.factor`; always 1.
    pub default_replication_factor: i16,
    /// `log.segment.bytes`.
    pub log_segment_bytes: u64,
    /// `log.index.interval.bytes`.
    pub log_index_interval_bytes: u32,
    /// `message.max.bytes`.
    pub message_max_bytes: u32,
    /// `socket.request.max.bytes`.
    pub socket_request_max_bytes: u32,
    /// `log.retention.ms` / `.minutes` / `.hours`; -1 means unlimited.
    pub log_retention_ms: i64,
    /// `log.retention.bytes`; -1 means unlimited.
    pub log_retention_bytes: i64,
    /// `log.cleanup.policy`: "delete", "compact" or both, comma-separated.
    pub log_cleanup_policy: String,
    /// `log.flush.interval.messages`; stored and reported.
    pub log_flush_interval_messages: i64,
    /// `shardlog.fsync.on.ack`: acks=1/all wait for fdatasync; false acks once the write reaches the file.
    pub group_commit: bool,
    /// `shardlog.io.memory.bytes`: glommio io_memory per shard.
    pub io_memory_bytes: usize,
    /// The consumer-group coordinator's settings (`offsets.*` and `group.*`).
    pub groups: GroupConfig,
    /// Every key that was set explicitly (file or --override), with its value, for DescribeConfigs.
    pub explicit: BTreeMap<String, String>,
}

/// The consumer-group coordinator's settings, with Kafka's key names and defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupConfig {
    /// `offsets.topic.num.partitions`: partitions of the internal topic `__consumer_offsets`.
    pub offsets_topic_num_partitions: i32,
    /// `offsets.topic.segment.bytes`: segment size of `__consumer_offsets`.
    pub offsets_topic_segment_bytes: u64,
    /// `offsets.retention.minutes`, in milliseconds: how long committed offsets of an empty group are kept.
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms`: how often expired offsets are looked for.
    pub offsets_retention_check_interval_ms: u64,
    /// `group.initial.rebalance.delay.ms`: how long a new group waits for more members before its first rebalance.
    pub initial_rebalance_delay_ms: u64,
    /// `group.min.session.timeout.ms`: smallest session timeout a member may ask for.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`: largest session timeout a member may ask for; at least the minimum.
    pub max_session_timeout_ms: i32,
    /// `group.max.size`: most members in one group.
    pub max_size: i32,
    /// `group.consumer.heartbeat.interval.ms` (KIP-848 groups).
    pub consumer_heartbeat_interval_ms: i32,
    /// `group.consumer.session.timeout.ms` (KIP-848 groups).
    pub consumer_session_timeout_ms: i32,
}

impl Default for GroupConfig {
    fn default() -> GroupConfig {
        GroupConfig {
            offsets_topic_num_partitions: DEFAULT_OFFSETS_TOPIC_NUM_PARTITIONS,
            offsets_topic_segment_bytes: DEFAULT_OFFSETS_TOPIC_SEGMENT_BYTES,
            offsets_retention_ms: DEFAULT_OFFSETS_RETENTION_MS,
            offsets_retention_check_interval_ms: DEFAULT_OFFSETS_RETENTION_CHECK_INTERVAL_MS,
            initial_rebalance_delay_ms: DEFAULT_GROUP_INITIAL_REBALANCE_DELAY_MS,
            min_session_timeout_ms: DEFAULT_GROUP_MIN_SESSION_TIMEOUT_MS,
            max_session_timeout_ms: DEFAULT_GROUP_MAX_SESSION_TIMEOUT_MS,
            max_size: DEFAULT_GROUP_MAX_SIZE,
            consumer_heartbeat_interval_ms: DEFAULT_GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS,
            consumer_session_timeout_ms: DEFAULT_GROUP_CONSUMER_SESSION_TIMEOUT_MS,
        }
    }
}

/// One broker config as DescribeConfigs reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Kafka's key name.
    pub name: String,
    /// The effective value, printed as Kafka prints it.
    pub value: String,
    /// True when the key was not set and the value is the default.
    pub is_default: bool,
    /// True when the key cannot be changed at runtime (all of them, for now).
    pub read_only: bool,
}

/// Why a configuration could not be built.
#[derive(Debug)]
pub enum ConfigError {
    /// Command-line parsing ended: a usage error, or `--help` / `--version`; the caller calls `e.exit()`.
    Clap(clap::Error),
    /// A bad file, key or value; the message is one line that names it.
    Invalid(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Clap(e) => write!(f, "{e}"),
            ConfigError::Invalid(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Clap(e) => Some(e),
            ConfigError::Invalid(_) => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------

/// A Kafka-wire-compatible broker. Settings: defaults < --config file < --override < dedicated flags.
#[derive(Parser, Debug)]
#[command(name = "shardlog", bin_name = "shardlog", version)]
struct Cli {
    /// server.properties-style file of Kafka config keys (key=value, key: value, # comments).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory holding the partition logs (overrides log.dirs / log.dir).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address to accept Kafka clients on (overrides listeners) [default: 127.0.0.1:9092].
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// Address clients are told to connect to (overrides advertised.listeners) [default: the listen address].
    #[arg(long, value_name = "HOST:PORT")]
    advertise: Option<String>,
    /// Executor threads, 1 to 256 [default: CPUs this process may use].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    shards: Option<String>,
    /// Set a config key, as if it were in the --config file; may be repeated.
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Key kinds and value checks
// ---------------------------------------------------------------------------------------------

/// What a key's value must look like.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// A whole number within inclusive bounds (Kafka's SHORT, INT and LONG types).
    Int { min: i64, max: i64 },
    /// `true` or `false`, in any letter case, as Kafka's ConfigDef accepts.
    Bool,
    /// Any non-empty text; the key is only reported, so its content is not interpreted.
    Text,
    /// A comma-separated list of non-empty entries.
    List,
    /// `delete` and/or `compact`.
    CleanupPolicy,
    /// `NAME://HOST:PORT,...`.
    Listeners,
    /// `NAME:PROTOCOL,...`.
    ProtocolMap,
    /// One of a fixed set of words, matched exactly.
    OneOf(&'static [&'static str]),
    /// A number between 0 and 1.
    Ratio,
    /// Empty, `*`, or a list of `partition:broker` pairs.
    ThrottledReplicas,
    /// Exactly 1, because shardlog is a single node.
    SingleReplica,
}

/// Shorthand for [`Kind::Int`], to keep the key tables one entry per line.
const fn int(min: i64, max: i64) -> Kind {
    Kind::Int { min, max }
}

/// The keys that set a typed [`Config`] field (or choose between fields), with their checks.
const TYPED_KEYS: &[(&str, Kind)] = &[
    ("log.dirs", Kind::List),
    ("log.dir", Kind::List),
    ("node.id", int(MIN_NODE_ID as i64, KAFKA_INT_MAX)),
    ("broker.id", int(MIN_NODE_ID as i64, KAFKA_INT_MAX)),
    ("num.partitions", int(MIN_ONE, KAFKA_INT_MAX)),
    ("auto.create.topics.enable", Kind::Bool),
    ("default.replication.factor", Kind::SingleReplica),
    (
        "log.segment.bytes",
        int(MIN_LOG_SEGMENT_BYTES as i64, MAX_LOG_SEGMENT_BYTES as i64),
    ),
    ("log.index.interval.bytes", int(MIN_ZERO, KAFKA_INT_MAX)),
    ("message.max.bytes", int(MIN_ZERO, KAFKA_INT_MAX)),
    (
        "socket.request.max.bytes",
        int(MIN_SOCKET_REQUEST_MAX_BYTES as i64, KAFKA_INT_MAX),
    ),
    ("log.retention.ms", int(RETENTION_UNLIMITED, KAFKA_LONG_MAX)),
    (
        "log.retention.minutes",
        int(RETENTION_UNLIMITED, KAFKA_INT_MAX),
    ),
    (
        "log.retention.hours",
        int(RETENTION_UNLIMITED, KAFKA_INT_MAX),
    ),
    (
        "log.retention.bytes",
        int(RETENTION_UNLIMITED, KAFKA_LONG_MAX),
    ),
    ("log.cleanup.policy", Kind::CleanupPolicy),
    ("log.flush.interval.messages", int(MIN_ONE, KAFKA_LONG_MAX)),
    ("shardlog.fsync.on.ack", Kind::Bool),
    (
        "shardlog.io.memory.bytes",
        int(MIN_IO_MEMORY_BYTES as i64, MAX_IO_MEMORY_BYTES as i64),
    ),
    (
        "offsets.topic.num.partitions",
        int(MIN_ONE, MAX_OFFSETS_TOPIC_NUM_PARTITIONS as i64),
    ),
    (
        "offsets.topic.segment.bytes",
        int(MIN_LOG_SEGMENT_BYTES as i64, MAX_LOG_SEGMENT_BYTES as i64),
    ),
    ("offsets.retention.minutes", int(MIN_ONE, KAFKA_INT_MAX)),
    (
        "offsets.retention.check.interval.ms",
        int(MIN_ONE, KAFKA_LONG_MAX),
    ),
    (
        "group.initial.rebalance.delay.ms",
        int(MIN_ZERO, KAFKA_INT_MAX),
    ),
    ("group.min.session.timeout.ms", int(MIN_ZERO, KAFKA_INT_MAX)),
    ("group.max.session.timeout.ms", int(MIN_ZERO, KAFKA_INT_MAX)),
    ("group.max.size", int(MIN_ONE, KAFKA_INT_MAX)),
    (
        "group.consumer.heartbeat.interval.ms",
        int(MIN_ONE, KAFKA_INT_MAX),
    ),
    (
        "group.consumer.session.timeout.ms",
        int(MIN_ONE, KAFKA_INT_MAX),
    ),
];

/// The check for a [`COMPAT_KEYS`] key: numeric and boolean keys are checked, the rest need only be non-empty.
fn compat_kind(key: &str) -> Kind {
    match key {
        "listeners" | "advertised.listeners" => Kind::Listeners,
        "listener.security.protocol.map" => Kind::ProtocolMap,
        "process.roles" | "controller.listener.names" => Kind::List,
        "num.network.threads"
        | "num.io.threads"
        | "num.recovery.threads.per.data.dir"
        | "transaction.state.log.min.isr"
        | "min.insync.replicas"
        | "log.roll.hours" => int(MIN_ONE, KAFKA_INT_MAX),
        "offsets.topic.replication.factor" | "transaction.state.log.replication.factor" => {
            int(MIN_ONE, KAFKA_SHORT_MAX)
        }
        "socket.send.buffer.bytes" | "socket.receive.buffer.bytes" => {
            int(MIN_MINUS_ONE, KAFKA_INT_MAX)
        }
        "zookeeper.connection.timeout.ms" => int(MIN_ZERO, KAFKA_INT_MAX),
        "log.retention.check.interval.ms" | "log.roll.ms" => int(MIN_ONE, KAFKA_LONG_MAX),
        "log.flush.interval.ms" => int(MIN_ZERO, KAFKA_LONG_MAX),
        "delete.topic.enable"
        | "unclean.leader.election.enable"
        | "auto.leader.rebalance.enable" => Kind::Bool,
        "compression.type" => Kind::OneOf(COMPRESSION_TYPES),
        "log.message.timestamp.type" => Kind::OneOf(TIMESTAMP_TYPES),
        _ => Kind::Text,
    }
}

/// The check for a broker key, or None when the key is unknown.
fn broker_kind(key: &str) -> Option<Kind> {
    if let Some((_, kind)) = TYPED_KEYS.iter().find(|(name, _)| *name == key) {
        return Some(*kind);
    }
    COMPAT_KEYS.contains(&key).then(|| compat_kind(key))
}

/// Kafka's topic-level keys that CreateTopics / DescribeConfigs / AlterConfigs accept, with their checks.
const TOPIC_KEYS: &[(&str, Kind)] = &[
    ("cleanup.policy", Kind::CleanupPolicy),
    ("compression.type", Kind::OneOf(COMPRESSION_TYPES)),
    ("delete.retention.ms", int(MIN_ZERO, KAFKA_LONG_MAX)),
    ("file.delete.delay.ms", int(MIN_ZERO, KAFKA_LONG_MAX)),
    ("flush.messages", int(MIN_ONE, KAFKA_LONG_MAX)),
    ("flush.ms", int(MIN_ZERO, KAFKA_LONG_MAX)),
    (
        "follower.replication.throttled.replicas",
        Kind::ThrottledReplicas,
    ),
    ("index.interval.bytes", int(MIN_ZERO, KAFKA_INT_MAX)),
    (
        "leader.replication.throttled.replicas",
        Kind::ThrottledReplicas,
    ),
    (
        "local.retention.bytes",
        int(MIN_LOCAL_RETENTION, KAFKA_LONG_MAX),
    ),
    (
        "local.retention.ms",
        int(MIN_LOCAL_RETENTION, KAFKA_LONG_MAX),
    ),
    ("max.compaction.lag.ms", int(MIN_ONE, KAFKA_LONG_MAX)),
    ("max.message.bytes", int(MIN_ZERO, KAFKA_INT_MAX)),
    ("message.downconversion.enable", Kind::Bool),
    (
        "message.timestamp.after.max.ms",
        int(MIN_ZERO, KAFKA_LONG_MAX),
    ),
    (
        "message.timestamp.before.max.ms",
        int(MIN_ZERO, KAFKA_LONG_MAX),
    ),
    (
        "message.timestamp.difference.max.ms",
        int(MIN_ZERO, KAFKA_LONG_MAX),
    ),
    ("message.timestamp.type", Kind::OneOf(TIMESTAMP_TYPES)),
    ("min.cleanable.dirty.ratio", Kind::Ratio),
    ("min.compaction.lag.ms", int(MIN_ZERO, KAFKA_LONG_MAX)),
    ("min.insync.replicas", int(MIN_ONE, KAFKA_INT_MAX)),
    ("preallocate", Kind::Bool),
    ("remote.storage.enable", Kind::Bool),
    ("retention.bytes", int(RETENTION_UNLIMITED, KAFKA_LONG_MAX)),
    ("retention.ms", int(RETENTION_UNLIMITED, KAFKA_LONG_MAX)),
    (
        "segment.bytes",
        int(MIN_LOG_SEGMENT_BYTES as i64, KAFKA_INT_MAX),
    ),
    (
        "segment.index.bytes",
        int(MIN_SEGMENT_INDEX_BYTES, KAFKA_INT_MAX),
    ),
    ("segment.jitter.ms", int(MIN_ZERO, KAFKA_LONG_MAX)),
    ("segment.ms", int(MIN_ONE, KAFKA_LONG_MAX)),
    ("unclean.leader.election.enable", Kind::Bool),
];

/// Checks `value` against `kind`; the error says what was expected, to follow "expected ".
fn check(kind: Kind, value: &str) -> Result<(), String> {
    match kind {
        Kind::Int { min, max } => parse_int(value, min, max).map(drop),
        Kind::Bool => parse_bool(value).map(drop),
        Kind::Text => {
            if value.is_empty() {
                Err("a non-empty value".to_string())
            } else {
                Ok(())
            }
        }
        Kind::List => parse_list(value).map(drop),
        Kind::CleanupPolicy => parse_cleanup_policy(value).map(drop),
        Kind::Listeners => parse_listeners(value).map(drop),
        Kind::ProtocolMap => parse_protocol_map(value).map(drop),
        Kind::OneOf(words) => {
            if words.contains(&value) {
                Ok(())
            } else {
                Err(format!("one of {}", words.join(", ")))
            }
        }
        Kind::Ratio => match value.parse::<f64>() {
            Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(()),
            _ => Err("a number between 0 and 1".to_string()),
        },
        Kind::ThrottledReplicas => parse_throttled_replicas(value),
        Kind::SingleReplica => match value.parse::<i64>() {
            Ok(1) => Ok(()),
            _ => Err("1, because shardlog is a single node".to_string()),
        },
    }
}

/// Parses a whole number within `min..=max`. The expectation names only the lower bound when the
/// upper one is just the type's limit, unless the value actually went over it.
fn parse_int(value: &str, min: i64, max: i64) -> Result<i64, String> {
    let lower_only = || format!("an integer >= {min}");
    let both = || format!("an integer between {min} and {max}");
    let describe = || {
        if max == KAFKA_INT_MAX || max == KAFKA_LONG_MAX {
            lower_only()
        } else {
            both()
        }
    };
    match value.parse::<i64>() {
        Ok(n) if n < min => Err(describe()),
        Ok(n) if n > max => Err(both()),
        Ok(n) => Ok(n),
        // A number too large even for i64 is still "an integer", just out of range.
        Err(_)
            if !value.is_empty()
                && value
                    .trim_start_matches(['+', '-'])
                    .bytes()
                    .all(|b| b.is_ascii_digit()) =>
        {
            Err(both())
        }
        Err(_) => Err(describe()),
    }
}

/// Parses `true` / `false` in any letter case.
fn parse_bool(value: &str) -> Result<bool, String> {
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err("true or false".to_string())
    }
}

/// Splits a comma-separated list, trimming entries; empty entries are rejected rather than skipped.
fn parse_list(value: &str) -> Result<Vec<String>, String> {
    let entries: Vec<String> = value
        .split(',')
        .map(|entry| entry.trim().to_string())
        .collect();
    if entries.iter().any(String::is_empty) {
        return Err("a comma-separated list of non-empty entries".to_string());
    }
    Ok(entries)
}

/// Parses `delete`, `compact`, or both, and returns the policy in canonical form (no spaces).
fn parse_cleanup_policy(value: &str) -> Result<String, String> {
    let expected = || "delete, compact, or delete,compact".to_string();
    let entries = parse_list(value).map_err(|_| expected())?;
    let mut seen: Vec<&str> = Vec::new();
    for entry in &entries {
        if !CLEANUP_POLICIES.contains(&entry.as_str()) || seen.contains(&entry.as_str()) {
            return Err(expected());
        }
        seen.push(entry);
    }
    Ok(seen.join(","))
}

/// Parses Kafka's throttled-replica list: empty, `*`, or `partition:broker` pairs.
fn parse_throttled_replicas(value: &str) -> Result<(), String> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed == "*" {
        return Ok(());
    }
    let expected = || "empty, *, or a comma-separated list of PARTITION:BROKER pairs".to_string();
    for entry in trimmed.split(',') {
        let (partition, broker) = entry.trim().split_once(':').ok_or_else(expected)?;
        let is_number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !is_number(partition.trim()) || !is_number(broker.trim()) {
            return Err(expected());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Collected settings
// ---------------------------------------------------------------------------------------------

/// Where a setting came from, so that errors can point at it.
#[derive(Clone, Debug)]
enum Origin {
    File { path: PathBuf, line: usize },
    Override,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(
                f,
                "in {} line {line}",
                one_line(&path.display().to_string())
            ),
            Origin::Override => f.write_str("--override"),
        }
    }
}

/// One key's winning value and where it came from.
#[derive(Clone, Debug)]
struct Setting {
    value: String,
    origin: Origin,
}

/// Keys set by the file and `--override`, later ones replacing earlier ones; each checked on entry.
#[derive(Default, Debug)]
struct Settings {
    map: BTreeMap<String, Setting>,
}

impl Settings {
    /// Records one key, rejecting unknown keys and malformed values at once, so that a bad entry
    /// is reported even when a later layer replaces it.
    fn set(&mut self, key: &str, value: &str, origin: Origin) -> Result<(), ConfigError> {
        if key.is_empty() {
            return Err(invalid(format!(
                "empty config key ({origin}): expected KEY=VALUE"
            )));
        }
        let kind = broker_kind(key).ok_or_else(|| {
            invalid(format!(
                "unknown config key '{}' ({origin}): see README 'Config keys'",
                one_line(key)
            ))
        })?;
        check(kind, value).map_err(|expected| invalid_value(key, value, &origin, &expected))?;
        self.map.insert(
            key.to_string(),
            Setting {
                value: value.to_string(),
                origin,
            },
        );
        Ok(())
    }

    /// Reads a properties file and records every entry in it.
    fn load_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let shown = one_line(&path.display().to_string());
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid(format!("cannot read config file '{shown}': {e}")))?;
        let entries = parse_properties(&text)
            .map_err(|(line, problem)| invalid(format!("{problem} (in {shown} line {line})")))?;
        for PropertyEntry { line, key, value } in entries {
            self.set(
                &key,
                &value,
                Origin::File {
                    path: path.to_path_buf(),
                    line,
                },
            )?;
        }
        Ok(())
    }

    /// Records one `--override KEY=VALUE`.
    fn apply_override(&mut self, raw: &str) -> Result<(), ConfigError> {
        let (key, value) = raw.split_once('=').ok_or_else(|| {
            invalid(format!(
                "invalid --override '{}': expected KEY=VALUE",
                one_line(raw)
            ))
        })?;
        self.set(key.trim(), value.trim(), Origin::Override)
    }

    fn get(&self, key: &str) -> Option<&Setting> {
        self.map.get(key)
    }

    /// The value of an integer key converted to its field's type, or None when unset.
    fn int<T: TryFrom<i64>>(&self, key: &str) -> Result<Option<T>, ConfigError> {
        let Some(setting) = self.get(key) else {
            return Ok(None);
        };
        let (min, max) = match broker_kind(key) {
            Some(Kind::Int { min, max }) => (min, max),
            Some(Kind::SingleReplica) => (1, 1),
            _ => {
                return Err(invalid(format!(
                    "internal error: config key '{key}' is not an integer"
                )))
            }
        };
        let n = parse_int(&setting.value, min, max)
            .map_err(|expected| invalid_value(key, &setting.value, &setting.origin, &expected))?;
        T::try_from(n).map(Some).map_err(|_| {
            invalid_value(
                key,
                &setting.value,
                &setting.origin,
                &format!("an integer between {min} and {max}"),
            )
        })
    }

    /// The value of a boolean key, or None when unset.
    fn bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        let Some(setting) = self.get(key) else {
            return Ok(None);
        };
        parse_bool(&setting.value)
            .map(Some)
            .map_err(|expected| invalid_value(key, &setting.value, &setting.origin, &expected))
    }

    /// The first entry of a list key, warning when later entries are ignored.
    fn first_dir(&self, key: &str) -> Result<Option<PathBuf>, ConfigError> {
        let Some(setting) = self.get(key) else {
            return Ok(None);
        };
        let dirs = parse_list(&setting.value)
            .map_err(|expected| invalid_value(key, &setting.value, &setting.origin, &expected))?;
        if dirs.len() > 1 {
            tracing::warn!(key, value = %setting.value, "shardlog uses one data directory; using the first entry only");
        }
        Ok(dirs.into_iter().next().map(PathBuf::from))
    }

    /// The first PLAINTEXT listener of `listeners` / `advertised.listeners`, skipping controller
    /// listeners (shardlog runs no KRaft quorum) and rejecting any other protocol, which we cannot serve.
    fn plaintext_listener(&self, key: &str) -> Result<Option<HostPort>, ConfigError> {
        let Some(setting) = self.get(key) else {
            return Ok(None);
        };
        let bad = |expected: &str| invalid_value(key, &setting.value, &setting.origin, expected);
        let listeners = parse_listeners(&setting.value).map_err(|e| bad(&e))?;
        let protocols: Vec<(String, String)> = match self.get("listener.security.protocol.map") {
            Some(map) => parse_protocol_map(&map.value).map_err(|e| {
                invalid_value(
                    "listener.security.protocol.map",
                    &map.value,
                    &map.origin,
                    &e,
                )
            })?,
            None => Vec::new(),
        };
        let controllers: Vec<String> = match self.get("controller.listener.names") {
            Some(names) => parse_list(&names.value)
                .map_err(|e| {
                    invalid_value("controller.listener.names", &names.value, &names.origin, &e)
                })?
                .into_iter()
                .map(|name| name.to_ascii_uppercase())
                .collect(),
            None => Vec::new(),
        };
        let mut usable = Vec::new();
        for listener in listeners {
            if controllers.contains(&listener.name) {
                continue;
            }
            let protocol = match protocols.iter().find(|(name, _)| *name == listener.name) {
                Some((_, protocol)) => protocol.clone(),
                None if SECURITY_PROTOCOLS.contains(&listener.name.as_str()) => listener.name.clone(),
                None => {
                    return Err(invalid(format!(
                        "listener '{}' in '{key}' ({}) has no security protocol: map it in 'listener.security.protocol.map'",
                        listener.name, setting.origin
                    )))
                }
            };
            if protocol != PLAINTEXT {
                return Err(invalid(format!(
                    "invalid value '{}' for '{key}' ({}): only PLAINTEXT listeners are supported, but listener '{}' uses {protocol}",
                    one_line(&setting.value),
                    setting.origin,
                    listener.name
                )));
            }
            usable.push(listener.address);
        }
        let mut usable = usable.into_iter();
        let first = usable.next().ok_or_else(|| {
            bad("at least one PLAINTEXT listener that is not a controller listener")
        })?;
        for extra in usable {
            tracing::warn!(key, host = %extra.host, port = extra.port, "shardlog serves one listener; ignoring this one");
        }
        Ok(Some(first))
    }
}

/// Renders text on one line by escaping control characters, so every error stays one line.
fn one_line(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

fn invalid(message: String) -> ConfigError {
    ConfigError::Invalid(message)
}

fn invalid_value(key: &str, value: &str, origin: &Origin, expected: &str) -> ConfigError {
    invalid(format!(
        "invalid value '{}' for '{}' ({origin}): expected {expected}",
        one_line(value),
        one_line(key)
    ))
}

fn invalid_flag(flag: &str, value: &str, expected: &str) -> ConfigError {
    invalid(format!(
        "invalid value '{}' for {flag}: expected {expected}",
        one_line(value)
    ))
}

/// Shards when `--shards` is not given: the CPUs this process may use, within the allowed range.
fn default_shards() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(MIN_SHARDS)
        .clamp(MIN_SHARDS, MAX_SHARDS)
}

// ---------------------------------------------------------------------------------------------
// Building the configuration
// ---------------------------------------------------------------------------------------------

impl Config {
    /// Builds the configuration from command-line arguments; `args[0]` is the program name.
    /// `--help` and `--version` come back as `Err(ConfigError::Clap(e))` for the caller to `e.exit()`.
    pub fn from_args<I, T>(args: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let cli = Cli::try_parse_from(args).map_err(ConfigError::Clap)?;
        let mut settings = Settings::default();
        if let Some(path) = &cli.config {
            settings.load_file(path)?;
        }
        for raw in &cli.overrides {
            settings.apply_override(raw)?;
        }
        Config::resolve(&cli, &settings)
    }

    /// A configuration with every default, listening on an ephemeral loopback port with two shards.
    pub fn for_tests(data_dir: PathBuf) -> Config {
        Config::with_defaults(
            data_dir,
            FOR_TESTS_LISTEN,
            FOR_TESTS_LISTEN.ip().to_string(),
            FOR_TESTS_LISTEN.port(),
            FOR_TESTS_SHARDS,
            FOR_TESTS_IO_MEMORY_BYTES,
        )
    }

    fn with_defaults(
        data_dir: PathBuf,
        listen: SocketAddr,
        advertise_host: String,
        advertise_port: u16,
        shards: usize,
        io_memory_bytes: usize,
    ) -> Config {
        Config {
            data_dir,
            listen,
            advertise_host,
            advertise_port,
            shards,
            node_id: DEFAULT_NODE_ID,
            num_partitions: DEFAULT_NUM_PARTITIONS,
            auto_create_topics_enable: DEFAULT_AUTO_CREATE_TOPICS_ENABLE,
            default_replication_factor: DEFAULT_REPLICATION_FACTOR,
            log_segment_bytes: DEFAULT_LOG_SEGMENT_BYTES,
            log_index_interval_bytes: DEFAULT_LOG_INDEX_INTERVAL_BYTES,
            message_max_bytes: DEFAULT_MESSAGE_MAX_BYTES,
            socket_request_max_bytes: DEFAULT_SOCKET_REQUEST_MAX_BYTES,
            log_retention_ms: DEFAULT_LOG_RETENTION_MS,
            log_retention_bytes: DEFAULT_LOG_RETENTION_BYTES,
            log_cleanup_policy: DEFAULT_LOG_CLEANUP_POLICY.to_string(),
            log_flush_interval_messages: DEFAULT_LOG_FLUSH_INTERVAL_MESSAGES,
            group_commit: DEFAULT_GROUP_COMMIT,
            io_memory_bytes,
            groups: GroupConfig::default(),
            explicit: BTreeMap::new(),
        }
    }

    /// Applies the collected settings and the dedicated flags over the defaults.
    fn resolve(cli: &Cli, settings: &Settings) -> Result<Config, ConfigError> {
        // Data directory: flag, then log.dirs, then log.dir (Kafka prefers log.dirs too).
        let data_dir = match &cli.data_dir {
            Some(dir) if dir.as_os_str().is_empty() => {
                return Err(invalid_flag("--data-dir", "", "a directory path"));
            }
            Some(dir) => dir.clone(),
            None => match settings.first_dir("log.dirs")? {
                Some(dir) => dir,
                None => settings
                    .first_dir("log.dir")?
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            },
        };

        // Listen address: flag, then listeners, then the default. An empty listener host means all interfaces.
        let (listen_address, listen_source) = match &cli.listen {
            Some(text) => (
                parse_flag_host_port("--listen", text)?,
                "--listen".to_string(),
            ),
            None => match settings.plaintext_listener("listeners")? {
                Some(mut address) => {
                    if address.host.is_empty() {
                        address.host = Ipv4Addr::UNSPECIFIED.to_string();
                    }
                    let origin = settings
                        .get("listeners")
                        .map(|s| s.origin.to_string())
                        .unwrap_or_default();
                    (address, format!("'listeners' {origin}"))
                }
                None => (
                    parse_host_port(DEFAULT_LISTEN).ok_or_else(|| {
                        invalid(format!(
                            "internal error: bad DEFAULT_LISTEN '{DEFAULT_LISTEN}'"
                        ))
                    })?,
                    "default".to_string(),
                ),
            },
        };
        let listen = resolve_listen(&listen_address, &listen_source)?;

        // Advertised address: flag, then advertised.listeners, then the listen host and port as given.
        let advertise = match &cli.advertise {
            Some(text) => {
                let address = parse_flag_host_port("--advertise", text)?;
                if address.port == 0 {
                    return Err(invalid_flag(
                        "--advertise",
                        text,
                        "HOST:PORT with a port between 1 and 65535",
                    ));
                }
                address
            }
            None => match settings.plaintext_listener("advertised.listeners")? {
                Some(address) => {
                    if address.port == 0 {
                        let setting = settings.get("advertised.listeners");
                        let (value, origin) = setting
                            .map(|s| (s.value.as_str(), s.origin.clone()))
                            .unwrap_or(("", Origin::Override));
                        return Err(invalid_value(
                            "advertised.listeners",
                            value,
                            &origin,
                            "a port between 1 and 65535",
                        ));
                    }
                    if address.host.is_empty() {
                        HostPort {
                            host: listen_address.host.clone(),
                            port: address.port,
                        }
                    } else {
                        address
                    }
                }
                None => listen_address.clone(),
            },
        };
        if advertise
            .host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified())
        {
            tracing::warn!(
                host = %advertise.host,
                "advertising an unspecified address; clients on other machines cannot connect (set --advertise)"
            );
        }

        let shards = match &cli.shards {
            Some(text) => text
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (MIN_SHARDS..=MAX_SHARDS).contains(n))
                .ok_or_else(|| {
                    invalid_flag(
                        "--shards",
                        text,
                        &format!("an integer between {MIN_SHARDS} and {MAX_SHARDS}"),
                    )
                })?,
            None => default_shards(),
        };

        // node.id and broker.id name the same thing; if both are set they must agree, as in Kafka.
        let node_id = match (
            settings.int::<i32>("node.id")?,
            settings.int::<i32>("broker.id")?,
        ) {
            (Some(node), Some(broker)) if node != broker => {
                return Err(invalid(format!(
                    "node.id {node} and broker.id {broker} differ: set one of them, or both to the same value"
                )));
            }
            (Some(id), _) | (None, Some(id)) => id,
            (None, None) => DEFAULT_NODE_ID,
        };

        // Kafka's precedence: log.retention.ms, then .minutes, then .hours; any negative means unlimited.
        let retention_ms = match settings.int::<i64>("log.retention.ms")? {
            Some(ms) => ms,
            None => match settings.int::<i64>("log.retention.minutes")? {
                Some(minutes) => minutes.saturating_mul(MS_PER_MINUTE),
                None => settings
                    .int::<i64>("log.retention.hours")?
                    .map_or(DEFAULT_LOG_RETENTION_MS, |hours| {
                        hours.saturating_mul(MS_PER_HOUR)
                    }),
            },
        };
        let log_retention_ms = if retention_ms < 0 {
            RETENTION_UNLIMITED
        } else {
            retention_ms
        };

        let log_cleanup_policy = match settings.get("log.cleanup.policy") {
            Some(setting) => parse_cleanup_policy(&setting.value).map_err(|e| {
                invalid_value("log.cleanup.policy", &setting.value, &setting.origin, &e)
            })?,
            None => DEFAULT_LOG_CLEANUP_POLICY.to_string(),
        };

        // Consumer-group coordinator settings. offsets.retention.minutes is kept in milliseconds.
        let mut groups = GroupConfig::default();
        if let Some(v) = settings.int("offsets.topic.num.partitions")? {
            groups.offsets_topic_num_partitions = v;
        }
        if let Some(v) = settings.int("offsets.topic.segment.bytes")? {
            groups.offsets_topic_segment_bytes = v;
        }
        if let Some(minutes) = settings.int::<i64>("offsets.retention.minutes")? {
            groups.offsets_retention_ms = minutes.saturating_mul(MS_PER_MINUTE);
        }
        if let Some(v) = settings.int("offsets.retention.check.interval.ms")? {
            groups.offsets_retention_check_interval_ms = v;
        }
        if let Some(v) = settings.int("group.initial.rebalance.delay.ms")? {
            groups.initial_rebalance_delay_ms = v;
        }
        if let Some(v) = settings.int("group.min.session.timeout.ms")? {
            groups.min_session_timeout_ms = v;
        }
        if let Some(v) = settings.int("group.max.session.timeout.ms")? {
            groups.max_session_timeout_ms = v;
        }
        if let Some(v) = settings.int("group.consumer.heartbeat.interval.ms")? {
            groups.consumer_heartbeat_interval_ms = v;
        }
        if let Some(v) = settings.int("group.consumer.session.timeout.ms")? {
            groups.consumer_session_timeout_ms = v;
        }
        if let Some(v) = settings.int("group.max.size")? {
            groups.max_size = v;
        }
        // The session-timeout bounds must form a range, or every JoinGroup would be refused.
        if groups.min_session_timeout_ms > groups.max_session_timeout_ms {
            return Err(invalid(format!(
                "group.min.session.timeout.ms {} is greater than group.max.session.timeout.ms {}: the minimum must not exceed the maximum",
                groups.min_session_timeout_ms, groups.max_session_timeout_ms
            )));
        }

        let io_memory_bytes = match settings.int::<usize>("shardlog.io.memory.bytes")? {
            Some(bytes) => bytes,
            None => default_io_memory_bytes(shards),
        };

        let mut config = Config::with_defaults(
            data_dir,
            listen,
            advertise.host,
            advertise.port,
            shards,
            io_memory_bytes,
        );
        config.node_id = node_id;
        config.log_retention_ms = log_retention_ms;
        config.log_cleanup_policy = log_cleanup_policy;
        config.groups = groups;
        if let Some(v) = settings.int("num.partitions")? {
            config.num_partitions = v;
        }
        if let Some(v) = settings.bool("auto.create.topics.enable")? {
            config.auto_create_topics_enable = v;
        }
        if let Some(v) = settings.int("default.replication.factor")? {
            config.default_replication_factor = v;
        }
        if let Some(v) = settings.int("log.segment.bytes")? {
            config.log_segment_bytes = v;
        }
        if let Some(v) = settings.int("log.index.interval.bytes")? {
            config.log_index_interval_bytes = v;
        }
        if let Some(v) = settings.int("message.max.bytes")? {
            config.message_max_bytes = v;
        }
        if let Some(v) = settings.int("socket.request.max.bytes")? {
            config.socket_request_max_bytes = v;
        }
        if let Some(v) = settings.int("log.retention.bytes")? {
            config.log_retention_bytes = v;
        }
        if let Some(v) = settings.int("log.flush.interval.messages")? {
            config.log_flush_interval_messages = v;
        }
        if let Some(v) = settings.bool("shardlog.fsync.on.ack")? {
            config.group_commit = v;
        }
        config.explicit = settings
            .map
            .iter()
            .map(|(key, setting)| (key.clone(), setting.value.clone()))
            .collect();
        Ok(config)
    }

    // -----------------------------------------------------------------------------------------
    // Reporting
    // -----------------------------------------------------------------------------------------

    /// Every broker key we know, with its effective value as Kafka prints it, plus every explicitly
    /// set compatibility key; sorted by name. For DescribeConfigs on the broker resource.
    pub fn broker_config_entries(&self) -> Vec<ConfigEntry> {
        let mut entries: BTreeMap<String, ConfigEntry> = BTreeMap::new();
        let mut add = |name: &str, value: String, default: String| {
            let is_default = !self.explicit.contains_key(name) && value == default;
            entries.insert(
                name.to_string(),
                ConfigEntry {
                    name: name.to_string(),
                    value,
                    is_default,
                    read_only: true,
                },
            );
        };
        let default_listener = format!("{PLAINTEXT}://{DEFAULT_LISTEN}");
        add(
            "advertised.listeners",
            format!(
                "{PLAINTEXT}://{}:{}",
                url_host(&self.advertise_host),
                self.advertise_port
            ),
            default_listener.clone(),
        );
        add(
            "listeners",
            format!("{PLAINTEXT}://{}", self.listen),
            default_listener,
        );
        add(
            "auto.create.topics.enable",
            self.auto_create_topics_enable.to_string(),
            DEFAULT_AUTO_CREATE_TOPICS_ENABLE.to_string(),
        );
        add(
            "broker.id",
            self.node_id.to_string(),
            DEFAULT_NODE_ID.to_string(),
        );
        add(
            "node.id",
            self.node_id.to_string(),
            DEFAULT_NODE_ID.to_string(),
        );
        add(
            "default.replication.factor",
            self.default_replication_factor.to_string(),
            DEFAULT_REPLICATION_FACTOR.to_string(),
        );
        add(
            "log.cleanup.policy",
            self.log_cleanup_policy.clone(),
            DEFAULT_LOG_CLEANUP_POLICY.to_string(),
        );
        add(
            "log.dirs",
            self.data_dir.display().to_string(),
            DEFAULT_DATA_DIR.to_string(),
        );
        add(
            "log.flush.interval.messages",
            self.log_flush_interval_messages.to_string(),
            DEFAULT_LOG_FLUSH_INTERVAL_MESSAGES.to_string(),
        );
        add(
            "log.index.interval.bytes",
            self.log_index_interval_bytes.to_string(),
            DEFAULT_LOG_INDEX_INTERVAL_BYTES.to_string(),
        );
        add(
            "log.retention.bytes",
            self.log_retention_bytes.to_string(),
            DEFAULT_LOG_RETENTION_BYTES.to_string(),
        );
        add(
            "log.retention.ms",
            self.log_retention_ms.to_string(),
            DEFAULT_LOG_RETENTION_MS.to_string(),
        );
        add(
            "log.segment.bytes",
            self.log_segment_bytes.to_string(),
            DEFAULT_LOG_SEGMENT_BYTES.to_string(),
        );
        add(
            "message.max.bytes",
            self.message_max_bytes.to_string(),
            DEFAULT_MESSAGE_MAX_BYTES.to_string(),
        );
        add(
            "num.partitions",
            self.num_partitions.to_string(),
            DEFAULT_NUM_PARTITIONS.to_string(),
        );
        add(
            "socket.request.max.bytes",
            self.socket_request_max_bytes.to_string(),
            DEFAULT_SOCKET_REQUEST_MAX_BYTES.to_string(),
        );
        add(
            "shardlog.fsync.on.ack",
            self.group_commit.to_string(),
            DEFAULT_GROUP_COMMIT.to_string(),
        );
        add(
            "shardlog.io.memory.bytes",
            self.io_memory_bytes.to_string(),
            default_io_memory_bytes(self.shards).to_string(),
        );
        // Consumer-group coordinator keys; offsets.retention.minutes is reported in minutes, as given.
        add(
            "offsets.topic.num.partitions",
            self.groups.offsets_topic_num_partitions.to_string(),
            DEFAULT_OFFSETS_TOPIC_NUM_PARTITIONS.to_string(),
        );
        add(
            "offsets.topic.segment.bytes",
            self.groups.offsets_topic_segment_bytes.to_string(),
            DEFAULT_OFFSETS_TOPIC_SEGMENT_BYTES.to_string(),
        );
        add(
            "offsets.retention.minutes",
            (self.groups.offsets_retention_ms / MS_PER_MINUTE).to_string(),
            DEFAULT_OFFSETS_RETENTION_MINUTES.to_string(),
        );
        add(
            "offsets.retention.check.interval.ms",
            self.groups.offsets_retention_check_interval_ms.to_string(),
            DEFAULT_OFFSETS_RETENTION_CHECK_INTERVAL_MS.to_string(),
        );
        add(
            "group.initial.rebalance.delay.ms",
            self.groups.initial_rebalance_delay_ms.to_string(),
            DEFAULT_GROUP_INITIAL_REBALANCE_DELAY_MS.to_string(),
        );
        add(
            "group.min.session.timeout.ms",
            self.groups.min_session_timeout_ms.to_string(),
            DEFAULT_GROUP_MIN_SESSION_TIMEOUT_MS.to_string(),
        );
        add(
            "group.max.session.timeout.ms",
            self.groups.max_session_timeout_ms.to_string(),
            DEFAULT_GROUP_MAX_SESSION_TIMEOUT_MS.to_string(),
        );
        add(
            "group.max.size",
            self.groups.max_size.to_string(),
            DEFAULT_GROUP_MAX_SIZE.to_string(),
        );
        add(
            "group.consumer.heartbeat.interval.ms",
            self.groups.consumer_heartbeat_interval_ms.to_string(),
            DEFAULT_GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS.to_string(),
        );
        add(
            "group.consumer.session.timeout.ms",
            self.groups.consumer_session_timeout_ms.to_string(),
            DEFAULT_GROUP_CONSUMER_SESSION_TIMEOUT_MS.to_string(),
        );
        // Keys set explicitly but not listed above (compatibility keys, log.dir, log.retention.hours
        // and .minutes) are reported as given.
        for (name, value) in &self.explicit {
            entries.entry(name.clone()).or_insert_with(|| ConfigEntry {
                name: name.clone(),
                value: value.clone(),
                is_default: false,
                read_only: true,
            });
        }
        entries.into_values().collect()
    }

    /// The effective default of every topic-level key, derived from the broker config where Kafka
    /// derives it, and Kafka's documented defaults otherwise; sorted by name.
    pub fn topic_config_defaults(&self) -> Vec<(&'static str, String)> {
        let mut defaults = vec![
            ("cleanup.policy", self.log_cleanup_policy.clone()),
            ("compression.type", DEFAULT_COMPRESSION_TYPE.to_string()),
            (
                "delete.retention.ms",
                DEFAULT_DELETE_RETENTION_MS.to_string(),
            ),
            (
                "file.delete.delay.ms",
                DEFAULT_FILE_DELETE_DELAY_MS.to_string(),
            ),
            (
                "flush.messages",
                self.log_flush_interval_messages.to_string(),
            ),
            ("flush.ms", DEFAULT_FLUSH_MS.to_string()),
            ("follower.replication.throttled.replicas", String::new()),
            (
                "index.interval.bytes",
                self.log_index_interval_bytes.to_string(),
            ),
            ("leader.replication.throttled.replicas", String::new()),
            (
                "local.retention.bytes",
                LOCAL_RETENTION_SAME_AS_TOTAL.to_string(),
            ),
            (
                "local.retention.ms",
                LOCAL_RETENTION_SAME_AS_TOTAL.to_string(),
            ),
            (
                "max.compaction.lag.ms",
                DEFAULT_MAX_COMPACTION_LAG_MS.to_string(),
            ),
            ("max.message.bytes", self.message_max_bytes.to_string()),
            ("message.downconversion.enable", true.to_string()),
            (
                "message.timestamp.after.max.ms",
                DEFAULT_MESSAGE_TIMESTAMP_MAX_MS.to_string(),
            ),
            (
                "message.timestamp.before.max.ms",
                DEFAULT_MESSAGE_TIMESTAMP_MAX_MS.to_string(),
            ),
            (
                "message.timestamp.difference.max.ms",
                DEFAULT_MESSAGE_TIMESTAMP_MAX_MS.to_string(),
            ),
            (
                "message.timestamp.type",
                DEFAULT_MESSAGE_TIMESTAMP_TYPE.to_string(),
            ),
            (
                "min.cleanable.dirty.ratio",
                DEFAULT_MIN_CLEANABLE_DIRTY_RATIO.to_string(),
            ),
            (
                "min.compaction.lag.ms",
                DEFAULT_MIN_COMPACTION_LAG_MS.to_string(),
            ),
            (
                "min.insync.replicas",
                DEFAULT_MIN_INSYNC_REPLICAS.to_string(),
            ),
            ("preallocate", false.to_string()),
            ("remote.storage.enable", false.to_string()),
            ("retention.bytes", self.log_retention_bytes.to_string()),
            ("retention.ms", self.log_retention_ms.to_string()),
            ("segment.bytes", self.log_segment_bytes.to_string()),
            (
                "segment.index.bytes",
                DEFAULT_SEGMENT_INDEX_BYTES.to_string(),
            ),
            ("segment.jitter.ms", DEFAULT_SEGMENT_JITTER_MS.to_string()),
            ("segment.ms", DEFAULT_SEGMENT_MS.to_string()),
            ("unclean.leader.election.enable", false.to_string()),
        ];
        defaults.sort_by_key(|(name, _)| *name);
        defaults
    }
}

/// Checks one topic-level config (CreateTopics configs, AlterConfigs on a topic). The error is one
/// line saying what is wrong, suitable as the error_message of INVALID_CONFIG.
pub fn validate_topic_config(key: &str, value: &str) -> Result<(), String> {
    let (_, kind) = TOPIC_KEYS
        .iter()
        .find(|(name, _)| *name == key)
        .ok_or_else(|| format!("unknown topic config key '{}'", one_line(key)))?;
    check(*kind, value.trim()).map_err(|expected| {
        format!(
            "invalid value '{}' for '{}': expected {expected}",
            one_line(value),
            one_line(key)
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests;
