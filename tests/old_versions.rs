//! Request versions Kafka 3.9 still serves and kafka-protocol no longer encodes (ListOffsets v0,
//! OffsetCommit v0-1, OffsetFetch v0), sent hand-encoded on raw TCP to a running broker, as
//! lag monitors built on old client libraries send them; what they commit is what a modern
//! client reads back.

mod common;

use std::time::Duration;

use common::{put_string, raw_call, Broker, Msg, WireReader};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{ApiKey, GroupId, OffsetFetchRequest, OffsetFetchResponse};
use rdkafka::admin::{NewTopic, TopicReplication};

const API_LIST_OFFSETS: i16 = 2;
const API_OFFSET_COMMIT: i16 = 8;
const API_OFFSET_FETCH: i16 = 9;
const API_FIND_COORDINATOR: i16 = 10;
const API_VERSIONS: i16 = 18;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const UNSUPPORTED_VERSION: i16 = 35;

/// ListOffsets v0 for one topic: (partition, timestamp, max_num_offsets) each.
fn list_offsets_v0(
    broker: &Broker,
    topic: &str,
    parts: &[(i32, i64, i32)],
) -> Vec<(i32, i16, Vec<i64>)> {
    let mut body = Vec::new();
    body.extend_from_slice(&(-1i32).to_be_bytes()); // replica_id: a consumer
    body.extend_from_slice(&1i32.to_be_bytes());
    put_string(&mut body, Some(topic));
    body.extend_from_slice(&(parts.len() as i32).to_be_bytes());
    for (p, ts, max) in parts {
        body.extend_from_slice(&p.to_be_bytes());
        body.extend_from_slice(&ts.to_be_bytes());
        body.extend_from_slice(&max.to_be_bytes());
    }
    let response = raw_call(broker.addr(), API_LIST_OFFSETS, 0, &body);
    let mut r = WireReader(&response);
    assert_eq!(r.i32(), 1, "topic count");
    assert_eq!(r.string(), topic);
    let n = r.i32();
    let out = (0..n)
        .map(|_| {
            let partition = r.i32();
            let error = r.i16();
            let count = r.i32();
            (partition, error, (0..count).map(|_| r.i64()).collect())
        })
        .collect();
    assert!(
        r.is_empty(),
        "bytes after the v0 body (no throttle time in v0)"
    );
    out
}

/// ApiVersions advertises ListOffsets, OffsetCommit and OffsetFetch from v0, as Kafka 3.9 does.
#[test]
fn api_versions_advertise_the_old_versions() {
    let broker = Broker::start(&[]);
    let response = raw_call(broker.addr(), API_VERSIONS, 0, &[]);
    let mut r = WireReader(&response);
    assert_eq!(r.i16(), 0, "error code");
    let n = r.i32();
    let ranges: Vec<(i16, i16, i16)> = (0..n).map(|_| (r.i16(), r.i16(), r.i16())).collect();
    for key in [API_LIST_OFFSETS, API_OFFSET_COMMIT, API_OFFSET_FETCH] {
        let (_, min, max) = ranges
            .iter()
            .find(|r| r.0 == key)
            .copied()
            .unwrap_or_else(|| panic!("API {key} advertised"));
        assert_eq!(min, 0, "API {key} minimum");
        assert!(max >= 9, "API {key} maximum {max}");
    }
}

/// ListOffsets v0 answers Kafka's legacy list, newest first: latest (-1) is the high
/// watermark then the older segments' base offsets, bounded by max_num_offsets; earliest (-2)
/// is the log start alone; a partition asked twice is answered twice; a timestamp older than every segment is an empty list and one past
/// them all is the whole list; a timestamp below -2 is UNSUPPORTED_VERSION and an unknown
/// topic UNKNOWN_TOPIC_OR_PARTITION, each for its partition.
#[test]
fn list_offsets_v0_answers_the_legacy_list() {
    let mut broker = Broker::start(&[]);
    let topic = "legacy-offsets";
    let admin = broker.admin();
    let created = futures::executor::block_on(admin.create_topics(
        &[NewTopic::new(topic, 1, TopicReplication::Fixed(1)).set("segment.bytes", "1024")],
        &common::admin_options(),
    ))
    .expect("CreateTopics");
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
    // Each record, over half a segment, is a batch that rolls into a segment of its own.
    let producer = broker.producer(&[("acks", "all"), ("linger.ms", "0")]);
    for i in 0..3 {
        producer.send(topic, Some(0), &Msg::kv(format!("k{i}"), vec![b'v'; 700]));
        assert_eq!(producer.flush_ok(Duration::from_secs(15)).len(), 1);
    }
    assert_eq!(broker.watermarks(topic, 0), (0, 3));

    let got = list_offsets_v0(&broker, topic, &[(0, -1, 10)]);
    assert_eq!(got, vec![(0, 0, vec![3, 2, 1, 0])]);
    assert_eq!(
        list_offsets_v0(&broker, topic, &[(0, -1, 1)]),
        vec![(0, 0, vec![3])]
    );
    assert_eq!(
        list_offsets_v0(&broker, topic, &[(0, -1, 2)]),
        vec![(0, 0, vec![3, 2])]
    );
    assert_eq!(
        list_offsets_v0(&broker, topic, &[(0, -1, 0)]),
        vec![(0, 0, vec![])]
    );
    assert_eq!(
        list_offsets_v0(&broker, topic, &[(0, -2, 10)]),
        vec![(0, 0, vec![0])]
    );
    assert_eq!(
        list_offsets_v0(&broker, topic, &[(0, 0, 10)]),
        vec![(0, 0, vec![])]
    );
    assert_eq!(
        list_offsets_v0(&broker, topic, &[(0, i64::MAX, 10)]),
        vec![(0, 0, vec![3, 2, 1, 0])]
    );
    // A partition asked twice is answered twice, as Kafka's v0 path does.
    assert_eq!(
        list_offsets_v0(&broker, topic, &[(0, -2, 10), (0, -1, 1)]),
        vec![(0, 0, vec![0]), (0, 0, vec![3])]
    );
    assert_eq!(
        list_offsets_v0(&broker, topic, &[(0, -3, 10)]),
        vec![(0, UNSUPPORTED_VERSION, vec![])]
    );
    assert_eq!(
        list_offsets_v0(&broker, "no-such-topic", &[(0, -1, 1)]),
        vec![(0, UNKNOWN_TOPIC_OR_PARTITION, vec![])]
    );
    broker.assert_running();
}

/// OffsetCommit v0-1 body for one topic's (partition, offset, metadata); v1 with `member`
/// (generation, member id) and a commit timestamp per partition.
fn commit_body(
    version: i16,
    group: &str,
    member: (i32, &str),
    topic: &str,
    parts: &[(i32, i64, Option<&str>)],
) -> Vec<u8> {
    let mut body = Vec::new();
    put_string(&mut body, Some(group));
    if version == 1 {
        body.extend_from_slice(&member.0.to_be_bytes());
        put_string(&mut body, Some(member.1));
    }
    body.extend_from_slice(&1i32.to_be_bytes());
    put_string(&mut body, Some(topic));
    body.extend_from_slice(&(parts.len() as i32).to_be_bytes());
    for (p, offset, metadata) in parts {
        body.extend_from_slice(&p.to_be_bytes());
        body.extend_from_slice(&offset.to_be_bytes());
        if version == 1 {
            body.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
        }
        put_string(&mut body, *metadata);
    }
    body
}

/// Sends OffsetCommit v0 or v1 and returns each partition's error code (v0-1 layout: no
/// throttle time).
fn commit(broker: &Broker, version: i16, body: &[u8], topic: &str) -> Vec<(i32, i16)> {
    let response = raw_call(broker.addr(), API_OFFSET_COMMIT, version, body);
    let mut r = WireReader(&response);
    assert_eq!(r.i32(), 1, "topic count");
    assert_eq!(r.string(), topic);
    let n = r.i32();
    let out = (0..n).map(|_| (r.i32(), r.i16())).collect();
    assert!(r.is_empty(), "bytes after the v{version} body");
    out
}

/// OffsetFetch v0 or v1 (one layout): each partition's (index, offset, metadata, error).
fn fetch(
    broker: &Broker,
    version: i16,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> Vec<(i32, i64, Option<String>, i16)> {
    let mut body = Vec::new();
    put_string(&mut body, Some(group));
    body.extend_from_slice(&1i32.to_be_bytes());
    put_string(&mut body, Some(topic));
    body.extend_from_slice(&(partitions.len() as i32).to_be_bytes());
    for p in partitions {
        body.extend_from_slice(&p.to_be_bytes());
    }
    let response = raw_call(broker.addr(), API_OFFSET_FETCH, version, &body);
    let mut r = WireReader(&response);
    assert_eq!(r.i32(), 1, "topic count");
    assert_eq!(r.string(), topic);
    let n = r.i32();
    let out = (0..n)
        .map(|_| (r.i32(), r.i64(), r.nullable_string(), r.i16()))
        .collect();
    assert!(
        r.is_empty(),
        "bytes after the v{version} body (no group error before v2)"
    );
    out
}

/// What OffsetFetch v8 (kafka-protocol, as modern clients ask) reads for `group`.
fn fetch_v8(
    broker: &Broker,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> Vec<(i32, i64, String)> {
    let req = OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
        .with_group_id(GroupId(group.to_string().into()))
        .with_topics(Some(vec![OffsetFetchRequestTopics::default()
            .with_name(kafka_protocol::messages::TopicName(
                topic.to_string().into(),
            ))
            .with_partition_indexes(partitions.to_vec())]))]);
    let resp: OffsetFetchResponse = common::call(broker.addr(), ApiKey::OffsetFetch, 8, &req);
    let g = &resp.groups[0];
    assert_eq!(g.error_code, 0);
    g.topics[0]
        .partitions
        .iter()
        .map(|p| {
            assert_eq!(p.error_code, 0);
            (
                p.partition_index,
                p.committed_offset,
                p.metadata.as_deref().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// FindCoordinator v0 for `group`, as old clients ask before committing, until it answers
/// (the first one creates `__consumer_offsets`).
fn find_coordinator_v0(broker: &Broker, group: &str) {
    let mut body = Vec::new();
    put_string(&mut body, Some(group));
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let response = raw_call(broker.addr(), API_FIND_COORDINATOR, 0, &body);
        let error = WireReader(&response).i16();
        if error == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "FindCoordinator error {error}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// OffsetCommit v0 (a simple commit: no generation or member) and v1 (generation -1, no
/// member: the same, as an admin tool sends it) are stored like v2+ commits: OffsetFetch v0
/// and v1 read them back with their metadata, and so does OffsetFetch v8, as modern clients
/// ask. A v1 commit naming a member the group does not have is refused and stores nothing.
#[test]
fn offsets_committed_in_v0_and_v1_read_back_in_every_version() {
    let mut broker = Broker::start(&[]);
    let topic = "legacy-commits";
    broker.create_topic(topic, 2);
    for group in ["g-v0", "g-v1", "g-none"] {
        find_coordinator_v0(&broker, group);
    }

    let body = commit_body(
        0,
        "g-v0",
        (-1, ""),
        topic,
        &[(0, 5, Some("m0")), (1, 7, None)],
    );
    assert_eq!(commit(&broker, 0, &body, topic), vec![(0, 0), (1, 0)]);
    let body = commit_body(
        1,
        "g-v1",
        (-1, ""),
        topic,
        &[(0, 11, Some("m1")), (1, 13, Some(""))],
    );
    assert_eq!(commit(&broker, 1, &body, topic), vec![(0, 0), (1, 0)]);
    let body = commit_body(1, "g-v1", (4, "ghost"), topic, &[(0, 99, None)]);
    let refused = commit(&broker, 1, &body, topic);
    assert_eq!(refused.len(), 1);
    assert_ne!(refused[0].1, 0, "a commit by an unknown member is refused");

    for version in [0, 1] {
        assert_eq!(
            fetch(&broker, version, "g-v0", topic, &[0, 1]),
            vec![(0, 5, Some("m0".into()), 0), (1, 7, Some("".into()), 0)],
            "g-v0 read in v{version}"
        );
        assert_eq!(
            fetch(&broker, version, "g-v1", topic, &[0, 1]),
            vec![(0, 11, Some("m1".into()), 0), (1, 13, Some("".into()), 0)],
            "g-v1 read in v{version}"
        );
        // Nothing committed: -1, which makes a consumer's auto.offset.reset apply.
        assert_eq!(
            fetch(&broker, version, "g-none", topic, &[0]),
            vec![(0, -1, Some("".into()), 0)]
        );
    }
    assert_eq!(
        fetch_v8(&broker, "g-v0", topic, &[0, 1]),
        vec![(0, 5, "m0".into()), (1, 7, "".into())]
    );
    assert_eq!(
        fetch_v8(&broker, "g-v1", topic, &[0, 1]),
        vec![(0, 11, "m1".into()), (1, 13, "".into())]
    );
    // They are in __consumer_offsets like any commit: a restart keeps them.
    broker.restart();
    assert_eq!(
        fetch(&broker, 0, "g-v1", topic, &[0, 1]),
        vec![(0, 11, Some("m1".into()), 0), (1, 13, Some("".into()), 0)]
    );
    broker.assert_running();
}
