//! The group coordinator: consumer groups (classic and KIP-848) and their committed offsets.
//!
//! A group belongs to partition `partition_for(group)` of the internal topic
//! `__consumer_offsets` (Kafka's hash: Java's `String.hashCode`, so a group maps to the same
//! partition as on a Kafka cluster), and the shard owning that partition is the group's
//! coordinator. Every group request is routed there by message passing, like a produce to that
//! partition; the coordinator's state lives on that shard only, without locks.
//!
//! Commits and group membership are records in that partition (`records.rs`, Kafka's formats),
//! appended through the same log as any topic: commits are answered once durable, so they
//! survive a restart or a kill -9. When a shard opens a `__consumer_offsets` partition it
//! replays it (last record wins) before the partition serves, so groups come back as they were
//! at their last stable point. The topic is created on the first FindCoordinator for a group.
//!
//! Time: a per-shard timer sleeps until the earliest deadline of its groups (a session, a join
//! or sync phase, a pending member id) and runs them then, to the millisecond as Kafka does;
//! a request that sets an earlier deadline wakes it. Every
//! `offsets.retention.check.interval.ms` it also removes the offsets of groups that have been
//! empty for `offsets.retention.minutes`.

pub mod client;
pub mod consumer;
pub mod coordinator;
pub mod error;
pub mod ops;
pub mod records;
pub mod state;
pub mod txn_offsets;

pub use crate::catalog::OFFSETS_TOPIC;
pub use coordinator::Coordinator;
pub use error::Error;

/// Longest commit metadata string kept (Kafka's `offset.metadata.max.bytes` default).
pub const OFFSET_METADATA_MAX_BYTES: usize = 4096;

/// The `__consumer_offsets` partition of a group: Kafka's `abs(groupId.hashCode) % partitions`.
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    crate::util::key_partition(group, partitions)
}

fn wall_ms() -> i64 {
    crate::util::now_ms()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka's partition for a group: `Utils.abs("my-group".hashCode()) % 50`.
    #[test]
    fn partition_matches_kafka() {
        // "my-group".hashCode() == -1906497762 in Java; abs % 50 == 12.
        assert_eq!(partition_for("my-group", 50), 12);
        assert_eq!(partition_for("", 50), 0);
        // -10784275 in Java.
        assert_eq!(
            partition_for("consumer-group-with-a-rather-long-name", 50),
            25
        );
    }
}
