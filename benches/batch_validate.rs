//! Measures `log::batch::validate_produce`, which every produced batch passes before it is
//! appended (CRC32C over the batch, framing, and for uncompressed batches a walk of the record
//! lengths): it runs on the produce path for every byte a producer sends, so its bytes/s bounds
//! a shard's ingest rate. Compressed batches only get the CRC, so they show the CRC32C speed.

#[path = "common/mod.rs"]
mod common;

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use kafka_protocol::records::Compression;
use shardlog::log::batch::{check_stored_batch, validate_produce};

use common::{KIB, MIB};

/// Kafka's default max.message.bytes is about 1 MiB; the benches allow a little more so the
/// 1 MiB batch passes.
const MAX_BATCH_BYTES: u32 = 2 << 20;

fn bench(c: &mut Criterion) {
    let lz4 = {
        // About 1 MiB of 100-byte text records before compression.
        let b = common::batch(MIB / 108, 100, Compression::Lz4);
        assert_eq!(b[22] & 0x7, 3, "lz4 attribute");
        b
    };
    let cases = [
        (
            "uncompressed_16KiB_100B_records",
            common::batch_of_size(16 * KIB, 100),
        ),
        (
            "uncompressed_1MiB_100B_records",
            common::batch_of_size(MIB, 100),
        ),
        ("lz4_1MiB_before_compression", lz4),
    ];
    let mut group = c.benchmark_group("batch_validate");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (name, batch) in &cases {
        let headers = validate_produce(batch, MAX_BATCH_BYTES).expect("valid batch");
        assert_eq!(headers.len(), 1, "{name}: one batch");
        group.throughput(Throughput::Bytes(batch.len() as u64));
        group.bench_function(*name, |b| {
            b.iter(|| validate_produce(black_box(batch), MAX_BATCH_BYTES))
        });
    }
    // The check recovery and segment scans run on stored batches: CRC and length only.
    let (_, big) = &cases[1];
    group.throughput(Throughput::Bytes(big.len() as u64));
    group.bench_function("check_stored_batch_1MiB", |b| {
        b.iter(|| check_stored_batch(black_box(big)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
