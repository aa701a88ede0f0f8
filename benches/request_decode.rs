//! Measures `api::decode_request`, the pure decoder every request frame goes through on the
//! shard that accepted its connection, for the requests that dominate a broker's traffic
//! (Produce, Fetch, Metadata): its cost is paid once per request before any handler runs.

#[path = "common/mod.rs"]
mod common;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, MetadataRequest, ProduceRequest, RequestHeader, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use shardlog::api::{decode_request, Decoded};

use common::KIB;

/// A request frame as the connection hands it to the decoder: header and body, no size prefix.
fn frame<R: Encodable>(key: ApiKey, version: i16, body: &R) -> Bytes {
    let mut buf = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(42)
        .with_client_id(Some(StrBytes::from_static_str("bench-client")))
        .encode(&mut buf, key.request_header_version(version))
        .expect("encode header");
    body.encode(&mut buf, version).expect("encode body");
    buf.freeze()
}

fn topic() -> TopicName {
    TopicName(StrBytes::from_static_str("bench-topic"))
}

/// Produce v9 (acks=all) with one 16 KiB batch for each of `partitions` partitions.
fn produce(partitions: i32) -> Bytes {
    let batch = common::batch_of_size(16 * KIB, 100);
    let data = (0..partitions)
        .map(|p| {
            PartitionProduceData::default()
                .with_index(p)
                .with_records(Some(batch.clone()))
        })
        .collect();
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic())
            .with_partition_data(data)]);
    frame(ApiKey::Produce, 9, &req)
}

/// Fetch v12 for 8 partitions of one topic, as a consumer sends it.
fn fetch() -> Bytes {
    let partitions = (0..8)
        .map(|p| {
            FetchPartition::default()
                .with_partition(p)
                .with_current_leader_epoch(0)
                .with_fetch_offset(1_000_000 + i64::from(p))
                .with_last_fetched_epoch(-1)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(1 << 20)
        })
        .collect();
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(52_428_800)
        .with_isolation_level(0)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic())
            .with_partitions(partitions)]);
    frame(ApiKey::Fetch, 12, &req)
}

/// Metadata v12 for one named topic, as a client sends it before producing.
fn metadata() -> Bytes {
    let req = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic()))
        ]))
        .with_allow_auto_topic_creation(true);
    frame(ApiKey::Metadata, 12, &req)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("request_decode");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let cases = [
        ("produce_v9_1x16KiB", produce(1)),
        ("produce_v9_8x16KiB", produce(8)),
        ("fetch_v12_8_partitions", fetch()),
        ("metadata_v12_1_topic", metadata()),
    ];
    for (name, frame) in cases {
        // Each frame must decode as a request, or the numbers measure an error path.
        assert!(
            matches!(decode_request(frame.clone()), Ok(Decoded::Request(..))),
            "{name} does not decode"
        );
        group.throughput(Throughput::Bytes(frame.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| decode_request(black_box(frame.clone())))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
