//! Broker configuration: the server.properties keys (Kafka's names), the CLI flags, the defaults
//! and their validation, all read from one table of keys (`keys.rs`).
//!
//! Settings are layered as defaults < `--config` file < `--override KEY=VALUE` < the dedicated flags
//! (`--data-dir`, `--listen`, `--advertise`, `--shards`). Every key is checked when it is read, so a
//! typo or a bad value is reported with where it came from instead of silently falling back to a default.
//!
//! - `keys.rs`: the table: each key's type and bounds, default, scope, synonyms, doc.
//! - `value.rs`: value types and their checks; `defaults.rs`: the named defaults and bounds.
//! - `settings.rs`: keys collected from the file and `--override`; `properties.rs`: the file parser.
//! - `listeners.rs`: listen and advertised addresses; `io_memory.rs`: glommio io_memory sizing.
//! - `topic.rs`: a topic's typed config; `describe.rs`: the entries DescribeConfigs reports.
//! - `dynamic.rs`: broker keys changed at runtime (AlterConfigs), layered over the rest.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

mod defaults;
mod describe;
mod dynamic;
mod io_memory;
mod keys;
mod listeners;
mod properties;
mod settings;
mod topic;
mod value;
pub use value::parse_address_counts;

pub use defaults::*;
pub use describe::{ConfigEntry, ConfigSynonym};
pub use dynamic::{is_list_config, validate_dynamic_broker_configs, DynamicLayers};
pub use io_memory::*;
pub use keys::{Binding, Convert, DefaultValue, Key, Scope, Synonym, Update, KEYS};
pub use topic::TopicConfig;
pub use value::Source;
pub use value::{ConfigType, Type, Value, CLEANUP_POLICIES};

use keys::topic_key;
use listeners::{advertised_address, listen_address, PLAINTEXT};
use settings::{Origin, Settings};

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
    /// `allow.everyone.if.no.acl.found`: a resource no ACL binding applies to is open to all.
    pub allow_everyone_if_no_acl_found: bool,
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
    /// `queued.max.request.bytes`: bytes of requests held at once over all shards; -1: no limit.
    pub queued_max_request_bytes: i64,
    /// `fetch.max.bytes`: most bytes one fetch response holds.
    pub fetch_max_bytes: u32,
    /// `connections.max.idle.ms`: an idle connection is closed after this.
    pub connections_max_idle_ms: u64,
    /// `shardlog.request.read.timeout.ms`: a started request must arrive whole within this.
    pub request_read_timeout_ms: u64,
    /// `max.connections`: connections held at once, over all shards.
    pub max_connections: i32,
    /// `max.connections.per.ip`: connections from one address held at once.
    pub max_connections_per_ip: i32,
    /// `max.connections.per.ip.overrides`: `IP:count,...`, checked at start-up.
    pub max_connections_per_ip_overrides: String,
    /// `shardlog.http.listen` / `--http-listen`: the admin HTTP listener's address (metrics,
    /// health, topics, groups, console); empty: none.
    pub http_listen: String,
    /// `shardlog.lag.sample.interval.ms`: how often the lag monitor reads committed offsets
    /// and log end offsets.
    pub lag_sample_interval_ms: u64,
    /// `shardlog.lag.window.commits`: commits per partition the lag status looks at (Burrow's
    /// `intervals`).
    pub lag_window_commits: i32,
    /// `shardlog.metrics.per.partition`: `/metrics` has a series per partition.
    pub metrics_per_partition: bool,
    /// `log.retention.ms` / `.minutes` / `.hours`; -1 means unlimited.
    pub log_retention_ms: i64,
    /// `log.retention.bytes`; -1 means unlimited.
    pub log_retention_bytes: i64,
    /// `log.retention.check.interval.ms`: how often each partition applies retention.
    pub log_retention_check_interval_ms: u64,
    /// `log.flush.offset.checkpoint.interval.ms`: how often each partition with new data
    /// records its recovery point.
    pub log_flush_offset_checkpoint_interval_ms: u64,
    /// `log.cleanup.policy`: "delete", "compact" or both, comma-separated.
    pub log_cleanup_policy: String,
    /// `log.flush.interval.messages`; stored and reported.
    pub log_flush_interval_messages: i64,
    /// `shardlog.fsync.on.ack`: acks=1/all wait for fdatasync; false acks once the write reaches the file.
    pub group_commit: bool,
    /// `shardlog.group.commit.max.wait.us`: how long a sync round waits for pending appends.
    pub group_commit_max_wait_us: u64,
    /// `shardlog.group.commit.max.bytes`: bytes written that end that wait.
    pub group_commit_max_bytes: u64,
    /// `shardlog.replication.factor.clamp`: CreateTopics with more replicas than brokers
    /// creates one replica instead of failing with INVALID_REPLICATION_FACTOR.
    pub replication_factor_clamp: bool,
    /// `shardlog.io.memory.bytes`: glommio io_memory per shard.
    pub io_memory_bytes: usize,
    /// `shardlog.tail.cache.bytes`: memory per shard for recently written batches.
    pub tail_cache_bytes: u64,
    /// The consumer-group coordinator's settings (`offsets.*` and `group.*`).
    pub groups: GroupConfig,
    /// Producer ids and the transaction coordinator (`transaction.*`, `producer.id.*`).
    pub txn: TxnConfig,
    /// The log cleaner (compaction of `cleanup.policy=compact` topics).
    pub cleaner: CleanerConfig,
    /// Every key that was set explicitly (file, --override, or the dedicated flag that stands for
    /// it: `--data-dir` for `log.dirs`, `--listen` for `listeners`, `--advertise` for
    /// `advertised.listeners`), with its winning value as given; for DescribeConfigs.
    pub explicit: BTreeMap<String, String>,
    /// Where each key of `explicit` came from, for `--print-config`.
    pub origins: BTreeMap<String, String>,
    /// `--print-config`: print the effective configuration and exit.
    pub print_only: bool,
    /// The dynamic broker configs applied over the static ones ([`Config::with_dynamic`]);
    /// empty in the static config a broker starts from.
    pub dynamic: DynamicLayers,
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

/// The transaction coordinator's and the producer state's settings, with Kafka's key names
/// and defaults.
/// The log cleaner's broker settings (`log.cleaner.*`); the per-topic ones are topic keys.
#[derive(Clone, Debug, PartialEq)]
pub struct CleanerConfig {
    /// `log.cleaner.enable`.
    pub enable: bool,
    /// `log.cleaner.backoff.ms`: the sleep between checks when nothing needs cleaning.
    pub backoff_ms: u64,
    /// `log.cleaner.dedupe.buffer.size`: the key maps' memory, split between the shards.
    pub dedupe_buffer_bytes: u64,
    /// `log.cleaner.io.max.bytes.per.second`, split between the shards.
    pub io_max_bytes_per_second: f64,
}

impl Default for CleanerConfig {
    fn default() -> CleanerConfig {
        CleanerConfig {
            enable: DEFAULT_LOG_CLEANER_ENABLE,
            backoff_ms: DEFAULT_LOG_CLEANER_BACKOFF_MS,
            dedupe_buffer_bytes: DEFAULT_LOG_CLEANER_DEDUPE_BUFFER_BYTES,
            io_max_bytes_per_second: f64::MAX,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnConfig {
    /// `transaction.state.log.num.partitions`: partitions of `__transaction_state`.
    pub state_log_num_partitions: i32,
    /// `transaction.state.log.segment.bytes`: segment size of `__transaction_state`.
    pub state_log_segment_bytes: u64,
    /// `transaction.max.timeout.ms`: the longest transaction timeout a producer may ask for.
    pub max_timeout_ms: i32,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`: how often the coordinator
    /// looks for transactions open past their timeout (and aborts them).
    pub abort_timed_out_interval_ms: u64,
    /// `transactional.id.expiration.ms`: how long an idle transactional id is kept.
    pub transactional_id_expiration_ms: i64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`: how often idle
    /// transactional ids are looked for (and removed).
    pub remove_expired_interval_ms: u64,
    /// `producer.id.expiration.ms`: how long a partition keeps an idle producer's state.
    pub producer_id_expiration_ms: i64,
}

impl Default for TxnConfig {
    fn default() -> TxnConfig {
        TxnConfig {
            state_log_num_partitions: DEFAULT_TRANSACTION_STATE_LOG_NUM_PARTITIONS,
            state_log_segment_bytes: DEFAULT_TRANSACTION_STATE_LOG_SEGMENT_BYTES,
            max_timeout_ms: DEFAULT_TRANSACTION_MAX_TIMEOUT_MS,
            abort_timed_out_interval_ms: DEFAULT_TRANSACTION_ABORT_INTERVAL_MS,
            transactional_id_expiration_ms: DEFAULT_TRANSACTIONAL_ID_EXPIRATION_MS,
            remove_expired_interval_ms: DEFAULT_TRANSACTION_REMOVE_EXPIRED_INTERVAL_MS,
            producer_id_expiration_ms: DEFAULT_PRODUCER_ID_EXPIRATION_MS,
        }
    }
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
#[command(
    name = "shardlog",
    bin_name = "shardlog",
    version,
    after_help = "Admin tools (Kafka's kafka-topics.sh, kafka-consumer-groups.sh, kafka-configs.sh and kafka-acls.sh flags):\n  shardlog topics --bootstrap-server HOST:PORT --create|--list|--describe|--alter|--delete ...\n  shardlog groups --bootstrap-server HOST:PORT --list|--describe|--delete|--reset-offsets ...\n  shardlog configs --bootstrap-server HOST:PORT --describe|--alter --entity-type topics|brokers ...\n  shardlog acls --bootstrap-server HOST:PORT --add|--remove|--list --topic T|--group G|--cluster ...\nEach takes --help."
)]
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
    /// Address of the admin HTTP listener: /metrics, /v1/health, /v1/topics, /v1/groups and a
    /// console page (overrides shardlog.http.listen) [default: none].
    #[arg(long, value_name = "HOST:PORT")]
    http_listen: Option<String>,
    /// Print the effective configuration (every key, its value and where the value comes from)
    /// and exit without starting.
    #[arg(long)]
    print_config: bool,
    /// Set a config key, as if it were in the --config file; may be repeated.
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
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

    /// A configuration with every default. The key table names the same `DEFAULT_*` constants
    /// as its defaults; `keys::tests::declared_defaults_are_the_config_defaults` checks that the
    /// two agree.
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
            allow_everyone_if_no_acl_found: true,
            default_replication_factor: DEFAULT_REPLICATION_FACTOR,
            log_segment_bytes: DEFAULT_LOG_SEGMENT_BYTES,
            log_index_interval_bytes: DEFAULT_LOG_INDEX_INTERVAL_BYTES,
            message_max_bytes: DEFAULT_MESSAGE_MAX_BYTES,
            socket_request_max_bytes: DEFAULT_SOCKET_REQUEST_MAX_BYTES,
            queued_max_request_bytes: DEFAULT_QUEUED_MAX_REQUEST_BYTES,
            fetch_max_bytes: DEFAULT_FETCH_MAX_BYTES,
            connections_max_idle_ms: DEFAULT_CONNECTIONS_MAX_IDLE_MS,
            request_read_timeout_ms: DEFAULT_REQUEST_READ_TIMEOUT_MS,
            max_connections: i32::MAX,
            max_connections_per_ip: i32::MAX,
            max_connections_per_ip_overrides: String::new(),
            http_listen: String::new(),
            lag_sample_interval_ms: DEFAULT_LAG_SAMPLE_INTERVAL_MS,
            lag_window_commits: DEFAULT_LAG_WINDOW_COMMITS,
            metrics_per_partition: false,
            log_retention_ms: DEFAULT_LOG_RETENTION_MS,
            log_retention_bytes: DEFAULT_LOG_RETENTION_BYTES,
            log_retention_check_interval_ms: DEFAULT_LOG_RETENTION_CHECK_INTERVAL_MS,
            log_flush_offset_checkpoint_interval_ms:
                DEFAULT_LOG_FLUSH_OFFSET_CHECKPOINT_INTERVAL_MS,
            log_cleanup_policy: DEFAULT_LOG_CLEANUP_POLICY.to_string(),
            log_flush_interval_messages: DEFAULT_LOG_FLUSH_INTERVAL_MESSAGES,
            group_commit: DEFAULT_GROUP_COMMIT,
            group_commit_max_wait_us: DEFAULT_GROUP_COMMIT_MAX_WAIT_US,
            group_commit_max_bytes: DEFAULT_GROUP_COMMIT_MAX_BYTES,
            replication_factor_clamp: DEFAULT_REPLICATION_FACTOR_CLAMP,
            io_memory_bytes,
            tail_cache_bytes: DEFAULT_TAIL_CACHE_BYTES,
            groups: GroupConfig::default(),
            txn: TxnConfig::default(),
            cleaner: CleanerConfig::default(),
            explicit: BTreeMap::new(),
            origins: BTreeMap::new(),
            print_only: false,
            dynamic: DynamicLayers::default(),
        }
    }

    /// Applies the collected settings and the dedicated flags over the defaults.
    fn resolve(cli: &Cli, settings: &Settings) -> Result<Config, ConfigError> {
        if cli
            .data_dir
            .as_ref()
            .is_some_and(|dir| dir.as_os_str().is_empty())
        {
            return Err(invalid_flag("--data-dir", "", "a directory path"));
        }
        let (listen_address, listen) = listen_address(cli.listen.as_deref(), settings)?;
        let advertise = advertised_address(cli.advertise.as_deref(), settings, &listen_address)?;
        let shards = match &cli.shards {
            Some(text) => parse_shards(text)?,
            None => default_shards(),
        };
        check_node_ids(settings)?;

        let mut config = Config::with_defaults(
            PathBuf::from(DEFAULT_DATA_DIR),
            listen,
            advertise.host.clone(),
            advertise.port,
            shards,
            default_io_memory_bytes(shards),
        );
        config.explicit = settings.explicit();
        config.origins = settings.origins();
        config.print_only = cli.print_config;
        config.apply_settings(settings)?;
        check_session_timeouts(&config.groups)?;

        // The dedicated flags beat the keys they stand for, and are reported as those keys.
        if let Some(dir) = &cli.data_dir {
            config.data_dir = dir.clone();
            config
                .explicit
                .insert("log.dirs".to_string(), dir.display().to_string());
            config
                .origins
                .insert("log.dirs".to_string(), "--data-dir".to_string());
        }
        if let Some(text) = &cli.listen {
            config
                .explicit
                .insert("listeners".to_string(), format!("{PLAINTEXT}://{text}"));
            config
                .origins
                .insert("listeners".to_string(), "--listen".to_string());
        }
        if let Some(text) = &cli.http_listen {
            if text.parse::<std::net::SocketAddr>().is_err() {
                return Err(invalid_flag(
                    "--http-listen",
                    text,
                    "IP:PORT (e.g. 127.0.0.1:9644)",
                ));
            }
            config.http_listen = text.clone();
            config
                .explicit
                .insert("shardlog.http.listen".to_string(), text.clone());
            config.origins.insert(
                "shardlog.http.listen".to_string(),
                "--http-listen".to_string(),
            );
        }
        if let Some(text) = &cli.advertise {
            config.explicit.insert(
                "advertised.listeners".to_string(),
                format!("{PLAINTEXT}://{text}"),
            );
            config.origins.insert(
                "advertised.listeners".to_string(),
                "--advertise".to_string(),
            );
        }
        Ok(config)
    }

    /// Stores every key that has a field of its own and was set (itself or through a synonym,
    /// by Kafka's precedence) into that field.
    fn apply_settings(&mut self, settings: &Settings) -> Result<(), ConfigError> {
        for key in KEYS.iter().filter(|key| !key.is_topic()) {
            let Binding::Broker(field) = key.binding else {
                continue;
            };
            let Some((name, raw, value)) = key.explicit_value(&self.explicit) else {
                continue;
            };
            let raw = raw.to_string();
            (field.set)(self, &value).map_err(|expected| {
                let origin = settings
                    .get(name)
                    .map_or(Origin::Override, |s| s.origin.clone());
                invalid_value(name, &raw, &origin, &expected)
            })?;
        }
        Ok(())
    }
}

/// Parses `--shards`.
fn parse_shards(text: &str) -> Result<usize, ConfigError> {
    text.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (MIN_SHARDS..=MAX_SHARDS).contains(n))
        .ok_or_else(|| {
            invalid_flag(
                "--shards",
                text,
                &format!("an integer between {MIN_SHARDS} and {MAX_SHARDS}"),
            )
        })
}

/// node.id and broker.id name the same thing; if both are set they must agree, as in Kafka.
fn check_node_ids(settings: &Settings) -> Result<(), ConfigError> {
    if let (Some((Value::Int(node), _)), Some((Value::Int(broker), _))) =
        (settings.value("node.id"), settings.value("broker.id"))
    {
        if node != broker {
            return Err(invalid(format!(
                "node.id {node} and broker.id {broker} differ: set one of them, or both to the same value"
            )));
        }
    }
    Ok(())
}

/// The session-timeout bounds must form a range, or every JoinGroup would be refused.
fn check_session_timeouts(groups: &GroupConfig) -> Result<(), ConfigError> {
    if groups.min_session_timeout_ms > groups.max_session_timeout_ms {
        return Err(invalid(format!(
            "group.min.session.timeout.ms {} is greater than group.max.session.timeout.ms {}: the minimum must not exceed the maximum",
            groups.min_session_timeout_ms, groups.max_session_timeout_ms
        )));
    }
    Ok(())
}

/// Checks one topic-level config (CreateTopics configs, AlterConfigs on a topic). The error is one
/// line saying what is wrong, suitable as the error_message of INVALID_CONFIG.
pub fn validate_topic_config(key: &str, value: &str) -> Result<(), String> {
    let known =
        topic_key(key).ok_or_else(|| format!("unknown topic config key '{}'", one_line(key)))?;
    known.ty.parse(value.trim()).map(drop).map_err(|expected| {
        format!(
            "invalid value '{}' for '{}': expected {expected}",
            one_line(value),
            one_line(key)
        )
    })
}

#[cfg(test)]
mod tests;
