//! Small shard-local utilities every layer may use; nothing here knows of Kafka, partitions or
//! shards. The bottom of the dependency picture (ARCHITECTURE "Layers").

pub mod blocking;
pub mod checkpoint;
pub mod dir_lock;
pub mod fd_limit;
pub mod frame_pool;
pub mod memory;
pub mod metrics;
pub mod notify;
pub mod read;
pub mod scatter;

pub use notify::Notify;

use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock milliseconds since the epoch (record timestamps, expiry); 0 before 1970.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A random number below `bound` (0 when `bound` <= 0), from the standard library's per-process
/// random hash keys: enough for jitter, not for secrets.
pub fn random_below(bound: i64) -> i64 {
    use std::hash::{BuildHasher, Hasher};
    if bound <= 0 {
        return 0;
    }
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i64(now_ms());
    (h.finish() % bound as u64) as i64
}

/// The partition of an internal topic that a coordinator key (a group id, a transactional
/// id) belongs to: Kafka's `Utils.abs(key.hashCode) % partitions`, with Java's `String.hashCode`,
/// so a key maps to the same partition as on a Kafka cluster.
pub fn key_partition(key: &str, partitions: i32) -> i32 {
    let hash = key
        .encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32));
    // Kafka's Utils.abs: Math.abs, with Integer.MIN_VALUE mapped to 0.
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions.max(1)
}
