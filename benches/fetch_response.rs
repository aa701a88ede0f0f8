//! Measures encoding a Fetch v12 response of 8 partitions x 1 MiB of records into a response
//! frame: through `Ctx::reply_referencing`, the path every fetch response takes (the records
//! go into the frame by reference), against copying them into one buffer, as responses were
//! built before.

#[path = "common/mod.rs"]
mod common;

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchResponse, ResponseHeader, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};
use shardlog::api::{Ctx, Reply};
use shardlog::util::scatter::{Part, Pieces};

use common::MIB;

const PARTITIONS: i32 = 8;
const VERSION: i16 = 12;

/// The response `fetch::build_response` builds for 8 partitions that each returned 1 MiB.
fn response() -> (FetchResponse, usize) {
    let batch = common::batch_of_size(MIB, 100);
    let mut records_bytes = 0;
    let partitions = (0..PARTITIONS)
        .map(|p| {
            // A buffer per partition, as separate reads return.
            let records = Bytes::copy_from_slice(&batch);
            records_bytes += records.len();
            PartitionData::default()
                .with_partition_index(p)
                .with_error_code(0)
                .with_high_watermark(1_000_000)
                .with_last_stable_offset(1_000_000)
                .with_log_start_offset(0)
                .with_aborted_transactions(Some(Vec::new()))
                .with_preferred_read_replica(BrokerId(-1))
                .with_records(Some(records))
        })
        .collect();
    let resp = FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
        .with_topic(TopicName(StrBytes::from_static_str("bench-topic")))
        .with_partitions(partitions)]);
    (resp, records_bytes)
}

/// The response encoded into one buffer sized up front from `compute_size`, records copied:
/// how responses were built before they referenced the records.
fn reply_presized(ctx: &Ctx, body: &FetchResponse) -> Bytes {
    let header_version = ctx.api_key.response_header_version(ctx.version);
    let header = ResponseHeader::default().with_correlation_id(ctx.correlation_id);
    let size = header.compute_size(header_version).expect("size")
        + body.compute_size(ctx.version).expect("size");
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_i32(size as i32);
    header.encode(&mut buf, header_version).expect("header");
    body.encode(&mut buf, ctx.version).expect("body");
    buf.freeze()
}

fn bench(c: &mut Criterion) {
    let (resp, records_bytes) = response();
    let ctx = Ctx {
        api_key: ApiKey::Fetch,
        version: VERSION,
        layout_version: VERSION,
        correlation_id: 7,
        client_id: Default::default(),
        client_host: std::rc::Rc::from(""),
        frame_bytes: 0,
    };
    let records = || {
        resp.responses[0]
            .partitions
            .iter()
            .filter_map(|p| p.records.clone())
            .map(|b| {
                let len = b.len() as u32;
                (b.clone(), Pieces::memory(b, vec![len]))
            })
            .collect::<Vec<_>>()
    };
    let Reply::Frame(parts) = ctx.reply_referencing(&resp, records()) else {
        panic!("the response does not encode");
    };
    let frame = reply_presized(&ctx, &resp);
    assert!(frame.len() > records_bytes);
    let flat: Vec<u8> = parts
        .iter()
        .flat_map(|p| match p {
            Part::Memory(b) => b.to_vec(),
            Part::File { .. } => panic!("no files here"),
        })
        .collect();
    assert_eq!(flat, frame.to_vec(), "same frame both ways");

    let mut group = c.benchmark_group("fetch_response");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    group.throughput(Throughput::Bytes(frame.len() as u64));
    group.bench_function("records_referenced_v12_8x1MiB", |b| {
        b.iter(|| ctx.reply_referencing(black_box(&resp), records()))
    });
    group.bench_function("records_copied_v12_8x1MiB", |b| {
        b.iter(|| reply_presized(&ctx, black_box(&resp)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
