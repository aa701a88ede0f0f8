//! Shardlog: a Kafka-wire-compatible message broker, thread-per-core on io_uring.
//!
//! # Layout
//! Layers, top to bottom; each imports only the layers below it (`tests/architecture.rs`
//! checks it, and `../shared/ARCHITECTURE.md` draws it):
//! - `server`: the broker put together: every shard's services, its listener, the stop.
//! - `observe`: the admin HTTP listener (Prometheus metrics, health, topics, groups with lag
//!   statuses evaluated as Burrow does, a console page), on shard 0; it reads the shards'
//!   services through `invoke_on` like any other layer.
//! - `net`: listener, connection loop, framing, in-order responses.
//! - `api`: one file per Kafka API, the only layer that knows wire versions and error codes;
//!   the ApiVersions table is built from the handlers' version ranges; `api::partitioned` plans,
//!   scatters and gathers per-partition requests.
//! - `txn`: producer ids and the transaction coordinator, on the shards owning
//!   `__transaction_state`; it tells group coordinators when a transaction's offsets commit.
//! - `group`: the consumer group coordinator, on the shards owning `__consumer_offsets`.
//! - `log`: partition logs (segments, indexes, appends, reads, recovery, group commit) and the
//!   shard's partition service with the operations run on a partition's owner.
//! - `catalog`: topics, their partition counts and configs, which shard owns each partition;
//!   persisted by the control shard and installed on every shard.
//! - `shard`: the transport: pinned executors, the mesh, and `invoke_on(shard, op)` to run an
//!   operation on the shard that owns the state; knows nothing of Kafka.
//! - `config`: one table of config keys (server.properties names): CLI flags, defaults,
//!   validation, topic configs and the entries DescribeConfigs reports.
//! - `util`, `alloc_guard`: small shard-local utilities (wake-ups, blocking file-system
//!   calls) and the allocation guard; used by everything.
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
pub mod observe;
pub mod server;
pub mod shard;
pub mod txn;
pub mod util;

/// Starts a broker (every shard listening) and returns its handle; `Running::stop` stops it.
/// The one entry point for `main`, tests and tools that run a broker in process.
pub use server::{start, Running};

#[global_allocator]
static GLOBAL: alloc_guard::GuardedAlloc = alloc_guard::GuardedAlloc;
