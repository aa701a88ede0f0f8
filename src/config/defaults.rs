//! Defaults and bounds of the config keys, named once and used by the table in `keys.rs`.
//! Kafka's own defaults unless a comment says why shardlog differs.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Data directory used when neither `--data-dir` nor `log.dirs` / `log.dir` is given.
pub const DEFAULT_DATA_DIR: &str = "./shardlog-data";
/// Listen address used when neither `--listen` nor `listeners` is given: Kafka's port on loopback,
/// so that a fresh install is not reachable from the network until someone asks for it.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9092";
/// Fewest shards (executor threads) a broker can run with.
pub const MIN_SHARDS: usize = 1;
/// Smallest explicit `shardlog.io.memory.bytes`: glommio rounds anything smaller up to this.
pub const MIN_IO_MEMORY_BYTES: usize = 64 * 1024;
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
/// `queued.max.request.bytes`: 512 MiB of requests held at once over all shards (Kafka's
/// default, -1, sets no limit; a broker here keeps to a memory budget).
pub const DEFAULT_QUEUED_MAX_REQUEST_BYTES: i64 = 512 << 20;
/// `fetch.max.bytes`: Kafka's default, 55 MiB.
pub const DEFAULT_FETCH_MAX_BYTES: u32 = 57_671_680;
/// Smallest `fetch.max.bytes` (Kafka's minimum).
pub const MIN_FETCH_MAX_BYTES: u32 = 1024;
/// `connections.max.idle.ms`: Kafka's default, 10 minutes.
pub const DEFAULT_CONNECTIONS_MAX_IDLE_MS: u64 = 600_000;
/// The lag monitor's sampling interval: shorter than the commit intervals clients use (Java's
/// auto-commit: 5 s), so most commits are seen, and cheap (one walk of the groups per shard).
pub const DEFAULT_LAG_SAMPLE_INTERVAL_MS: u64 = 2_000;
/// Commits per partition in the lag window: Burrow's default `intervals`.
pub const DEFAULT_LAG_WINDOW_COMMITS: i32 = 10;
/// `shardlog.request.read.timeout.ms`: 30 s for a request to arrive whole once it has begun.
pub const DEFAULT_REQUEST_READ_TIMEOUT_MS: u64 = 30_000;
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
/// `log.retention.check.interval.ms` (Kafka's default: five minutes).
pub const DEFAULT_LOG_RETENTION_CHECK_INTERVAL_MS: u64 = 300_000;
/// `log.flush.offset.checkpoint.interval.ms`: how often each partition with new data records
/// its recovery point (index of the active segment, producer snapshot). Kafka's default is
/// 60 s; 10 s bounds what a restart after a crash scans to 10 s of writes per partition, at a
/// few small synced writes per partition that changed.
pub const DEFAULT_LOG_FLUSH_OFFSET_CHECKPOINT_INTERVAL_MS: u64 = 10_000;
/// `log.cleanup.policy` (Kafka's default).
pub const DEFAULT_LOG_CLEANUP_POLICY: &str = "delete";
/// `log.flush.interval.messages` (Kafka's default, Long.MAX_VALUE: leave flushing to the OS).
pub const DEFAULT_LOG_FLUSH_INTERVAL_MESSAGES: i64 = i64::MAX;
/// `shardlog.fsync.on.ack`: acks=1/all wait for fdatasync unless turned off.
pub const DEFAULT_GROUP_COMMIT: bool = true;
/// `shardlog.group.commit.max.wait.us`: an fdatasync round waits up to 1 ms for appends still
/// being written on the shard (a round with none pending starts at once).
pub const DEFAULT_GROUP_COMMIT_MAX_WAIT_US: u64 = 1_000;
/// The most `shardlog.group.commit.max.wait.us` accepted: 1 s.
pub const MAX_GROUP_COMMIT_MAX_WAIT_US: i64 = 1_000_000;
/// `shardlog.group.commit.max.bytes`: 4 MiB written since the last round start the next one.
pub const DEFAULT_GROUP_COMMIT_MAX_BYTES: u64 = 4 << 20;
/// `shardlog.tail.cache.bytes`: 64 MiB per shard for recently written batches.
pub const DEFAULT_TAIL_CACHE_BYTES: u64 = 64 << 20;
/// The most `shardlog.tail.cache.bytes` accepted: 64 GiB.
pub const MAX_TAIL_CACHE_BYTES: i64 = 64 << 30;
/// `shardlog.replication.factor.clamp` default: refuse, as Kafka does.
pub const DEFAULT_REPLICATION_FACTOR_CLAMP: bool = false;

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

// Topic-level defaults (Kafka 3.x documentation), and the broker keys that topic keys derive from.

/// `compression.type` default: keep whatever the producer sent.
pub const DEFAULT_COMPRESSION_TYPE: &str = "producer";
/// `log.message.format.version` default: Kafka 3.x's, which it ignores (IBP 3.0 and later
/// always write v2), as Shardlog does.
pub const DEFAULT_MESSAGE_FORMAT_VERSION: &str = "3.0-IV1";
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
/// `log.roll.hours`: a segment older than this rolls (Kafka's default, one week; `segment.ms`
/// derives from it).
pub const DEFAULT_LOG_ROLL_HOURS: i64 = 168;
/// `log.roll.jitter.hours`: no jitter (Kafka's default).
pub const DEFAULT_LOG_ROLL_JITTER_HOURS: i64 = 0;
/// `log.cleaner.enable`.
pub const DEFAULT_LOG_CLEANER_ENABLE: bool = true;
/// `log.cleaner.backoff.ms`: how long the cleaner sleeps when nothing needs cleaning.
pub const DEFAULT_LOG_CLEANER_BACKOFF_MS: u64 = 15_000;
/// `log.cleaner.dedupe.buffer.size`: 128 MiB, shared by all shards as Kafka shares it by
/// cleaner threads.
pub const DEFAULT_LOG_CLEANER_DEDUPE_BUFFER_BYTES: u64 = 128 << 20;
/// Smallest `log.cleaner.dedupe.buffer.size` accepted (tests use small maps).
pub const MIN_CLEANER_DEDUPE_BUFFER_BYTES: i64 = 4096;
/// `log.cleaner.io.max.bytes.per.second`: unlimited (Java's Double.MAX_VALUE).
pub const DEFAULT_LOG_CLEANER_IO_MAX_BYTES_PER_SECOND: &str = "1.7976931348623157E308";
/// `unclean.leader.election.enable` (broker and topic).
pub const DEFAULT_UNCLEAN_LEADER_ELECTION_ENABLE: bool = false;
/// `message.downconversion.enable` default.
pub const DEFAULT_MESSAGE_DOWNCONVERSION_ENABLE: bool = true;
/// `preallocate` default.
pub const DEFAULT_PREALLOCATE: bool = false;
/// `remote.storage.enable` default.
pub const DEFAULT_REMOTE_STORAGE_ENABLE: bool = false;
/// `follower.replication.throttled.replicas` / `leader.replication.throttled.replicas` default:
/// no replica is throttled.
pub const DEFAULT_THROTTLED_REPLICAS: &str = "";

// Generic bounds of Kafka's typed keys.

/// Largest value of a Kafka INT key.
pub(super) const KAFKA_INT_MAX: i64 = i32::MAX as i64;
/// Largest value of a Kafka SHORT key (replication factors).
pub(super) const KAFKA_SHORT_MAX: i64 = i16::MAX as i64;
/// Largest value of a Kafka LONG key.
pub(super) const KAFKA_LONG_MAX: i64 = i64::MAX;
/// Smallest value of counts: threads, partitions, replicas, messages, intervals that must tick.
pub(super) const MIN_ONE: i64 = 1;
/// Smallest value of sizes and delays where zero is meaningful.
pub(super) const MIN_ZERO: i64 = 0;
/// Smallest value of keys where -1 means "no limit" or "use the OS default".
pub(super) const MIN_MINUS_ONE: i64 = -1;
/// Smallest value of the tiered-storage `local.retention.*` keys.
pub(super) const MIN_LOCAL_RETENTION: i64 = LOCAL_RETENTION_SAME_AS_TOTAL;
/// Smallest `segment.index.bytes`: one index entry (Kafka's minimum).
pub(super) const MIN_SEGMENT_INDEX_BYTES: i64 = 4;

/// Values of `compression.type` (broker and topic).
pub const COMPRESSION_TYPES: &[&str] =
    &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
/// Values of `message.timestamp.type` / `log.message.timestamp.type`.
pub const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];

/// `transaction.state.log.num.partitions` default (Kafka's).
pub const DEFAULT_TRANSACTION_STATE_LOG_NUM_PARTITIONS: i32 = 50;
/// `transaction.state.log.segment.bytes` default (Kafka's).
pub const DEFAULT_TRANSACTION_STATE_LOG_SEGMENT_BYTES: u64 = 104_857_600;
/// `transaction.max.timeout.ms` default (Kafka's: 15 minutes).
pub const DEFAULT_TRANSACTION_MAX_TIMEOUT_MS: i32 = 900_000;
/// `transaction.abort.timed.out.transaction.cleanup.interval.ms` default (Kafka's).
pub const DEFAULT_TRANSACTION_ABORT_INTERVAL_MS: u64 = 10_000;
/// `transactional.id.expiration.ms` default (Kafka's: 7 days).
pub const DEFAULT_TRANSACTIONAL_ID_EXPIRATION_MS: i64 = 604_800_000;
/// `transaction.remove.expired.transaction.cleanup.interval.ms` default (Kafka's: 1 hour).
pub const DEFAULT_TRANSACTION_REMOVE_EXPIRED_INTERVAL_MS: u64 = 3_600_000;
/// `producer.id.expiration.ms` default (Kafka's: 1 day).
pub const DEFAULT_PRODUCER_ID_EXPIRATION_MS: i64 = 86_400_000;
