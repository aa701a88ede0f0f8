//! Shardlog: a Kafka-wire-compatible message broker, thread-per-core on io_uring.
//!
//! # Layout
//! - `config`: one table of config keys (server.properties names): CLI flags, defaults,
//!   validation, topic configs and the entries DescribeConfigs reports.
//! - `shard`: executors pinned per core (`shard::runtime`: start-up, shutdown), partition
//!   placement, the cross-shard mesh.
//! - `net`: listener, connection loop, framing, in-order responses.
//! - `api`: one file per Kafka API; the ApiVersions table is built from their version ranges.
//! - `log`: partition logs: segments, indexes, appends, reads, recovery, group commit.
//! - `catalog`: topics, their partition counts and configs, persisted and shared by shards.
//! - `group`: the consumer group coordinator, on the shards owning `__consumer_offsets`.
//!
//! A request is decoded on the shard that accepted its connection, split by partition owner,
//! and sent to the owning shards; their replies are gathered and written back in request order.

pub mod alloc_guard;
pub mod api;
pub mod catalog;
pub mod config;
pub mod group;
pub mod log;
pub mod net;
pub mod shard;

/// Starts a broker (every shard listening) and returns its handle; `Running::stop` stops it.
/// The one entry point for `main`, tests and tools that run a broker in process.
pub use shard::runtime::{start, Running};

#[global_allocator]
static GLOBAL: alloc_guard::GuardedAlloc = alloc_guard::GuardedAlloc;
