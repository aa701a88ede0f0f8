//! Helpers shared by the benches: record batches built the way a producer builds them.

#![allow(dead_code)]

use bytes::Bytes;
use kafka_protocol::records::Compression;

/// Deterministic filler: lowercase letters from a xorshift generator, so compressed batches
/// shrink about as much as typical text does instead of collapsing to nothing.
pub fn filler(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'a' + (x % 26) as u8
        })
        .collect()
}

/// One RecordBatch v2 of `count` records with `value_bytes`-byte values, as a producer sends
/// it (base offset 0, sequence = offset so every record stays in one batch).
pub fn batch(count: usize, value_bytes: usize, compression: Compression) -> Bytes {
    let records = (0..count).map(|i| {
        let value = Bytes::from(filler(value_bytes, i as u64 + 1));
        (None, Some(value), 1_700_000_000_000 + i as i64)
    });
    Bytes::from(shardlog::log::batch::encode_batch(records, compression))
}

/// An uncompressed batch of `value_bytes`-byte records as close to `target_bytes` as whole
/// records allow (never above it).
pub fn batch_of_size(target_bytes: usize, value_bytes: usize) -> Bytes {
    let one = batch(1, value_bytes, Compression::None).len();
    let per_record = batch(2, value_bytes, Compression::None).len() - one;
    let mut count = (target_bytes - (one - per_record)) / per_record + 1;
    loop {
        let b = batch(count, value_bytes, Compression::None);
        if b.len() <= target_bytes {
            return b;
        }
        count -= 1 + (b.len() - target_bytes) / per_record;
    }
}

pub const KIB: usize = 1 << 10;
pub const MIB: usize = 1 << 20;
