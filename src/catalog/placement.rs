//! Which shard owns a partition: a pure function of (topic, partition, shard count) that every
//! shard computes the same way, so routing needs no lookup on another core.

/// The owning shard of `topic`'s partition `partition`. A topic's partitions go round-robin
/// from a start shard picked by the topic name's CRC32C, so consecutive partitions land on
/// different shards and different topics start on different shards.
pub fn owner_shard(topic: &str, partition: i32, shard_count: usize) -> usize {
    assert!(shard_count > 0, "at least one shard");
    let start = u64::from(crc32c::crc32c(topic.as_bytes()));
    ((start + u64::from(partition.unsigned_abs())) % shard_count as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Partitions of one topic spread evenly over the shards.
    #[test]
    fn partitions_spread_round_robin() {
        let mut per_shard = [0usize; 2];
        for p in 0..8 {
            per_shard[owner_shard("orders", p, 2)] += 1;
        }
        assert_eq!(per_shard, [4, 4]);
        assert_ne!(owner_shard("orders", 0, 2), owner_shard("orders", 1, 2));
        assert_eq!(owner_shard("x", 5, 1), 0);
    }
}
