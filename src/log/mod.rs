//! The partition log: segments of RecordBatch v2 bytes, their indexes, appends through one
//! writer per partition, reads, recovery at start, and group commit; and the shard's
//! partition service (`partitions`) with the operations other layers run on a partition's
//! owner (`ops`).

pub mod batch;
pub mod cleaner;
pub mod error;
pub mod group_commit;
pub mod index;
pub mod ops;
pub mod partition;
pub mod partitions;
pub mod producer_snapshot;
pub mod producers;
pub mod records;
pub mod segment;
pub mod swap;
pub mod tail_cache;
#[cfg(test)]
pub(crate) mod test_support;
pub mod txn_index;

pub use error::LogError;
pub use partition::{AppendReceiver, Isolation, LogConfig, Marker, Origin, PartitionLog};
pub use partitions::Partitions;
