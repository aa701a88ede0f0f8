//! The partition log: segments of RecordBatch v2 bytes, their indexes, appends through one
//! writer per partition, reads, recovery at start, and group commit.

pub mod batch;
pub mod group_commit;
pub mod index;
pub mod partition;
pub mod segment;

pub use partition::{AppendReceiver, LogConfig, LogError, PartitionLog};
