//! Measures `SegmentIndex::lookup` (offset to file position) and `lookup_time` (timestamp to
//! file position) on the index of a full 1 GiB segment with an entry every 4 KiB (250,000
//! entries): every fetch and every ListOffsets-by-time starts with one of these lookups.
//! Throughput is in bytes of index entries searched over (a binary search touches log2 of them).

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use shardlog::log::index::{SegmentIndex, OFFSET_ENTRY_BYTES, TIME_ENTRY_BYTES};

const ENTRIES: u32 = 250_000;
const INTERVAL_BYTES: u32 = 4096;
/// Offsets per index entry: 4 KiB batches of about 40 records of 100 bytes.
const OFFSETS_PER_ENTRY: u32 = 40;
const TARGETS: usize = 4096;

fn targets(limit: u64) -> Vec<u64> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..TARGETS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % limit
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut index = SegmentIndex::new();
    for i in 0..ENTRIES {
        // One batch per interval, so every append gets an entry; timestamps grow by 1 ms.
        index.on_append(
            i * OFFSETS_PER_ENTRY,
            i * INTERVAL_BYTES,
            1_700_000_000_000 + i64::from(i),
            INTERVAL_BYTES,
        );
    }
    assert_eq!(index.len(), ENTRIES as usize);
    let offsets: Vec<u32> = targets(u64::from(ENTRIES * OFFSETS_PER_ENTRY))
        .into_iter()
        .map(|t| t as u32)
        .collect();
    let times: Vec<i64> = targets(u64::from(ENTRIES))
        .into_iter()
        .map(|t| 1_700_000_000_000 + t as i64)
        .collect();

    let mut group = c.benchmark_group("index_lookup");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));

    group.throughput(Throughput::Bytes(
        u64::from(ENTRIES) * OFFSET_ENTRY_BYTES as u64,
    ));
    group.bench_function("lookup_250k_entries_random", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = (i + 1) % TARGETS;
            index.lookup(black_box(offsets[i]))
        })
    });

    // Searches the time index, then the offset index.
    group.throughput(Throughput::Bytes(
        u64::from(ENTRIES) * (TIME_ENTRY_BYTES + OFFSET_ENTRY_BYTES) as u64,
    ));
    group.bench_function("lookup_time_250k_entries_random", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = (i + 1) % TARGETS;
            index.lookup_time(black_box(times[i]))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
