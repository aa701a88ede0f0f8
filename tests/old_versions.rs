//! Request versions Kafka 3.9 still serves and kafka-protocol no longer encodes (Produce v0-2,
//! Fetch v0-3, ListOffsets v0, OffsetCommit v0-1, OffsetFetch v0), sent hand-encoded on raw
//! TCP to a running broker, as clients speaking the 0.9/0.10 protocol and lag monitors built on
//! old client libraries send them; what they write is what a modern client reads back, and
//! what a modern client wrote they read as message sets.

mod common;

use std::time::Duration;

use common::{put_string, raw_call, Broker, Msg, WireReader};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{ApiKey, GroupId, OffsetFetchRequest, OffsetFetchResponse};
use rdkafka::admin::{NewTopic, TopicReplication};

const API_PRODUCE: i16 = 0;
const API_FETCH: i16 = 1;
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

/// ApiVersions advertises Produce, Fetch, ListOffsets, OffsetCommit and OffsetFetch from v0,
/// as Kafka 3.9 does.
#[test]
fn api_versions_advertise_the_old_versions() {
    let broker = Broker::start(&[]);
    let response = raw_call(broker.addr(), API_VERSIONS, 0, &[]);
    let mut r = WireReader(&response);
    assert_eq!(r.i16(), 0, "error code");
    let n = r.i32();
    let ranges: Vec<(i16, i16, i16)> = (0..n).map(|_| (r.i16(), r.i16(), r.i16())).collect();
    for key in [
        API_PRODUCE,
        API_FETCH,
        API_LIST_OFFSETS,
        API_OFFSET_COMMIT,
        API_OFFSET_FETCH,
    ] {
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

/// CRC-32 (IEEE), as message format v0/v1 checks each message.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(data);
    crc.sum()
}

/// One message set entry, written by hand from the format's description (independent of the
/// broker's converter): offset, size, crc, magic, attributes, [timestamp], key, value.
fn message(
    offset: i64,
    magic: i8,
    attributes: i8,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Vec<u8> {
    let mut m = vec![magic as u8, attributes as u8];
    if magic == 1 {
        m.extend_from_slice(&timestamp.to_be_bytes());
    }
    for field in [key, value] {
        match field {
            Some(b) => {
                m.extend_from_slice(&(b.len() as i32).to_be_bytes());
                m.extend_from_slice(b);
            }
            None => m.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    let mut out = offset.to_be_bytes().to_vec();
    out.extend_from_slice(&(m.len() as i32 + 4).to_be_bytes());
    out.extend_from_slice(&crc32(&m).to_be_bytes());
    out.extend_from_slice(&m);
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

/// A gzip-compressed wrapper holding `inner` (a message set), as a 0.9/0.10 producer writes
/// it: its offset is the last inner offset.
fn gzip_wrapper(magic: i8, last_offset: i64, timestamp: i64, inner: &[u8]) -> Vec<u8> {
    message(last_offset, magic, 1, timestamp, None, Some(&gzip(inner)))
}

/// Produce `version` (0-2) of one message set to `topic`/0 with acks=1: (error, base offset,
/// log append time for v2 else None). Checks the response layout of the version.
fn produce_legacy(
    broker: &Broker,
    version: i16,
    topic: &str,
    set: &[u8],
) -> (i16, i64, Option<i64>) {
    let mut body = Vec::new();
    body.extend_from_slice(&1i16.to_be_bytes()); // acks
    body.extend_from_slice(&10_000i32.to_be_bytes());
    body.extend_from_slice(&1i32.to_be_bytes());
    put_string(&mut body, Some(topic));
    body.extend_from_slice(&1i32.to_be_bytes());
    body.extend_from_slice(&0i32.to_be_bytes());
    body.extend_from_slice(&(set.len() as i32).to_be_bytes());
    body.extend_from_slice(set);
    let response = raw_call(broker.addr(), API_PRODUCE, version, &body);
    let mut r = WireReader(&response);
    assert_eq!(r.i32(), 1, "topic count");
    assert_eq!(r.string(), topic);
    assert_eq!(r.i32(), 1, "partition count");
    assert_eq!(r.i32(), 0, "partition");
    let error = r.i16();
    let base_offset = r.i64();
    let log_append_time = (version >= 2).then(|| r.i64());
    if version >= 1 {
        assert_eq!(r.i32(), 0, "throttle time");
    }
    assert!(r.is_empty(), "bytes after the v{version} body");
    (error, base_offset, log_append_time)
}

/// A message as a fetch returns it, compressed sets expanded: (absolute offset, magic,
/// timestamp (None in v0), key, value).
type Fetched = (i64, i8, Option<i64>, Option<Vec<u8>>, Option<Vec<u8>>);

/// Parses a message set as a 0.9/0.10 consumer does: compressed messages (gzip, lz4) expand
/// into their inner messages; inner offsets are absolute in v0 and relative in v1 (the
/// wrapper's offset is the last). Returns the messages and each wrapper's codec, in order.
fn parse_message_set(mut set: &[u8]) -> (Vec<Fetched>, Vec<i8>) {
    let mut out = Vec::new();
    let mut codecs = Vec::new();
    while !set.is_empty() {
        let mut r = WireReader(set);
        let offset = r.i64();
        let size = r.i32() as usize;
        let m = &set[12..12 + size];
        set = &set[12 + size..];
        assert_eq!(
            crc32(&m[4..]),
            u32::from_be_bytes(m[..4].try_into().unwrap()),
            "crc"
        );
        let magic = m[4] as i8;
        let attributes = m[5] as i8;
        let mut r = WireReader(&m[6..]);
        let timestamp = (magic == 1).then(|| r.i64());
        let bytes = |r: &mut WireReader| {
            let len = r.i32();
            (len >= 0).then(|| {
                let (a, b) = r.0.split_at(len as usize);
                r.0 = b;
                a.to_vec()
            })
        };
        let key = bytes(&mut r);
        let value = bytes(&mut r);
        assert!(r.is_empty());
        let codec = attributes & 7;
        if codec == 0 {
            out.push((offset, magic, timestamp, key, value));
            continue;
        }
        codecs.push(codec);
        let value = value.expect("a compressed message has a value");
        let inner = match codec {
            1 => {
                let mut d = flate2::read::GzDecoder::new(&value[..]);
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut d, &mut v).expect("gunzip");
                v
            }
            3 => {
                // Message format v0 carries Kafka 0.8's broken LZ4 header checksum: fixed up
                // first, as librdkafka does.
                let value = if magic == 0 {
                    shardlog::api::message_sets::lz4_header_checksum(&value, false)
                        .expect("an LZ4 frame")
                } else {
                    value
                };
                let mut d = lz4::Decoder::new(&value[..]).expect("lz4");
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut d, &mut v).expect("lz4");
                v
            }
            c => panic!("codec {c}"),
        };
        let (inner, nested) = parse_message_set(&inner);
        assert!(nested.is_empty(), "no compressed message inside another");
        let last_inner = inner.last().expect("a wrapper holds messages").0;
        for (o, magic, ts, k, v) in inner {
            let abs = if magic == 1 {
                offset - last_inner + o
            } else {
                o
            };
            out.push((abs, magic, ts, k, v));
        }
    }
    (out, codecs)
}

/// Fetch `version` (0-3) of `topic`/0 from `offset`: (error, high watermark, message set).
fn fetch_legacy(broker: &Broker, version: i16, topic: &str, offset: i64) -> (i16, i64, Vec<u8>) {
    let mut body = Vec::new();
    body.extend_from_slice(&(-1i32).to_be_bytes()); // replica_id
    body.extend_from_slice(&100i32.to_be_bytes()); // max_wait_ms
    body.extend_from_slice(&1i32.to_be_bytes()); // min_bytes
    if version >= 3 {
        body.extend_from_slice(&(1i32 << 20).to_be_bytes());
    }
    body.extend_from_slice(&1i32.to_be_bytes());
    put_string(&mut body, Some(topic));
    body.extend_from_slice(&1i32.to_be_bytes());
    body.extend_from_slice(&0i32.to_be_bytes());
    body.extend_from_slice(&offset.to_be_bytes());
    body.extend_from_slice(&(1i32 << 20).to_be_bytes());
    let response = raw_call(broker.addr(), API_FETCH, version, &body);
    let mut r = WireReader(&response);
    if version >= 1 {
        assert_eq!(r.i32(), 0, "throttle time");
    }
    assert_eq!(r.i32(), 1, "topic count");
    assert_eq!(r.string(), topic);
    assert_eq!(r.i32(), 1, "partition count");
    assert_eq!(r.i32(), 0, "partition");
    let error = r.i16();
    let high_watermark = r.i64();
    let size = r.i32() as usize;
    let set = r.0[..size].to_vec();
    r.0 = &r.0[size..];
    assert!(r.is_empty(), "bytes after the v{version} body");
    (error, high_watermark, set)
}

fn create_topic(broker: &Broker, topic: &str) {
    let admin = broker.admin();
    let created = futures::executor::block_on(admin.create_topics(
        &[NewTopic::new(topic, 1, TopicReplication::Fixed(1))],
        &common::admin_options(),
    ))
    .expect("CreateTopics");
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
}

/// Produce v0, v1 and v2 of message sets (magic 0 and 1, uncompressed and gzip-compressed, as
/// a librdkafka client with `broker.version.fallback=0.9.0.0` or an 0.10 client sends them)
/// are up-converted and appended: a modern client reads the same keys and values at the
/// offsets the responses gave, with the v1 messages' timestamps, and none (-1) for v0
/// messages, as Kafka's up-conversion leaves them. A corrupt set is CORRUPT_MESSAGE for its
/// partition and the connection stays usable.
#[test]
fn produce_v0_v2_message_sets_are_read_back_by_a_modern_client() {
    let broker = Broker::start(&[]);
    let topic = "legacy-produce";
    create_topic(&broker, topic);
    let t = 1_700_000_000_000i64;
    let kv = |i: i64| (format!("k{i}").into_bytes(), format!("v{i}").into_bytes());
    let plain = |magic: i8, range: std::ops::Range<i64>, relative: bool| {
        let mut set = Vec::new();
        for i in range.clone() {
            let (k, v) = kv(i);
            let o = if relative { i - range.start } else { i };
            set.extend_from_slice(&message(o, magic, 0, t + i, Some(&k), Some(&v)));
        }
        set
    };
    // v0, magic 0, uncompressed: offsets 0-1.
    assert_eq!(
        produce_legacy(&broker, 0, topic, &plain(0, 0..2, false)),
        (0, 0, None)
    );
    // v1, magic 1, uncompressed: 2-3.
    assert_eq!(
        produce_legacy(&broker, 1, topic, &plain(1, 2..4, false)),
        (0, 2, None)
    );
    // v1, magic 1, gzip (relative inner offsets): 4-6.
    let set = gzip_wrapper(1, 2, t + 6, &plain(1, 4..7, true));
    assert_eq!(produce_legacy(&broker, 1, topic, &set), (0, 4, None));
    // v0, magic 0, gzip: 7-8.
    let set = gzip_wrapper(0, 1, 0, &plain(0, 7..9, true));
    assert_eq!(produce_legacy(&broker, 0, topic, &set), (0, 7, None));
    // v2, magic 1 with a null key: 9; CreateTime topic, so no log append time (-1).
    let set = message(0, 1, 0, t + 9, None, Some(b"v9"));
    assert_eq!(produce_legacy(&broker, 2, topic, &set), (0, 9, Some(-1)));
    // A corrupt set (bad CRC) is refused for its partition only.
    let mut bad = plain(1, 0..1, false);
    *bad.last_mut().unwrap() ^= 1;
    assert_eq!(produce_legacy(&broker, 2, topic, &bad), (2, -1, Some(-1)));

    let got = broker.consume_all(topic, 0, 0, 10, Duration::from_secs(20));
    for (i, c) in got.iter().enumerate() {
        let i = i as i64;
        assert_eq!(c.offset, i);
        let (k, v) = kv(i);
        if i == 9 {
            assert_eq!(
                (c.key.as_deref(), c.value.as_deref()),
                (None, Some(&b"v9"[..]))
            );
        } else {
            assert_eq!(
                (c.key.as_deref(), c.value.as_deref()),
                (Some(&k[..]), Some(&v[..]))
            );
        }
        let magic0 = i < 2 || (7..9).contains(&i);
        let want = if magic0 { -1 } else { t + i };
        assert_eq!(c.timestamp.unwrap_or(-1), want, "timestamp of offset {i}");
    }
    assert_eq!(broker.watermarks(topic, 0), (0, 10));
}

/// Fetch v0, v1 and v2 of what a modern client produced (v2 batches, lz4-compressed and not)
/// are down-converted: v0/v1 answer magic 0 messages (no timestamps), v2 magic 1 with the
/// records' timestamps; a compressed batch is one lz4 wrapper holding all its records (with
/// absolute inner offsets in v0, relative in v1), an uncompressed one a message per record
/// from the fetch offset on; the high watermark is the partition's. The same after a restart,
/// when the batches are read from the segment file.
#[test]
fn fetch_v0_v2_down_convert_batches_of_a_modern_client() {
    let mut broker = Broker::start(&[]);
    let topic = "legacy-fetch";
    create_topic(&broker, topic);
    let t = 1_700_000_000_000i64;
    // Values that compress (librdkafka sends a batch uncompressed when lz4 would not shrink it).
    let value = |i: i64| format!("v{i}").repeat(50).into_bytes();
    let msg = |i: i64| Msg {
        timestamp: Some(t + i),
        ..Msg::kv(format!("k{i}"), value(i))
    };
    // One batch each: sent when full (batch.num.messages), long before the linger ends.
    let lz4 = broker.producer(&[
        ("compression.type", "lz4"),
        ("linger.ms", "5000"),
        ("batch.num.messages", "3"),
    ]);
    for i in 0..3 {
        lz4.send(topic, Some(0), &msg(i));
    }
    assert_eq!(lz4.flush_ok(Duration::from_secs(15)).len(), 3);
    let plain = broker.producer(&[
        ("compression.type", "none"),
        ("linger.ms", "5000"),
        ("batch.num.messages", "2"),
    ]);
    for i in 3..5 {
        plain.send(topic, Some(0), &msg(i));
    }
    assert_eq!(plain.flush_ok(Duration::from_secs(15)).len(), 2);
    assert_eq!(broker.watermarks(topic, 0), (0, 5));
    let codecs = common::stored_codecs(&broker.data_dir(), topic, 0);
    assert_eq!(
        codecs,
        [0, 3].into_iter().collect(),
        "lz4 and uncompressed batches stored"
    );

    let expect = |i: i64, magic: i8| -> Fetched {
        let ts = (magic == 1).then_some(t + i);
        (
            i,
            magic,
            ts,
            Some(format!("k{i}").into_bytes()),
            Some(value(i)),
        )
    };
    for version in [0i16, 1, 2] {
        let magic = if version >= 2 { 1 } else { 0 };
        let (error, hw, set) = fetch_legacy(&broker, version, topic, 0);
        assert_eq!((error, hw), (0, 5), "v{version}");
        let (messages, codecs) = parse_message_set(&set);
        assert_eq!(codecs, vec![3], "v{version}: one lz4 wrapper");
        let want: Vec<Fetched> = (0..5).map(|i| expect(i, magic)).collect();
        assert_eq!(messages, want, "v{version}");
        // From inside the uncompressed records: only those from the fetch offset.
        let (_, _, set) = fetch_legacy(&broker, version, topic, 4);
        assert_eq!(
            parse_message_set(&set).0,
            vec![expect(4, magic)],
            "v{version} from 4"
        );
        // From inside the compressed batch: the whole wrapper, as Kafka answers.
        let (_, _, set) = fetch_legacy(&broker, version, topic, 1);
        let (messages, _) = parse_message_set(&set);
        assert_eq!(messages.first().map(|m| m.0), Some(0), "v{version} from 1");
        assert_eq!(messages.len(), 5);
    }
    // At the end: empty, no error.
    let (error, hw, set) = fetch_legacy(&broker, 3, topic, 5);
    assert_eq!((error, hw, set.len()), (0, 5, 0));
    // After a restart the batches come from the segment file, not the tail cache.
    broker.restart();
    let (error, hw, set) = fetch_legacy(&broker, 1, topic, 0);
    assert_eq!((error, hw), (0, 5), "after a restart");
    let want: Vec<Fetched> = (0..5).map(|i| expect(i, 0)).collect();
    assert_eq!(parse_message_set(&set).0, want, "after a restart");
}

/// librdkafka speaking the 0.9 protocol (`api.version.request=false`,
/// `broker.version.fallback=0.9.0.0`: Produce v1 of message format v0, Fetch v1) and the
/// 0.10.0 one (Produce v2 of message format v1, Fetch v2) round-trips with each codec old
/// clients have (none, gzip, snappy, lz4: v0's LZ4 with Kafka 0.8's header checksum): the same
/// keys and values at the same offsets, read by the old client (CRCs checked) and by a modern
/// one; timestamps are the producer's with 0.10 and absent with 0.9, as with Kafka.
#[test]
fn librdkafka_with_the_0_9_and_0_10_protocols_round_trips() {
    let broker = Broker::start(&[]);
    let t = 1_700_000_000_000i64;
    const N: i64 = 12;
    for fallback in ["0.9.0.0", "0.10.0.0"] {
        let old = [
            ("api.version.request", "false"),
            ("broker.version.fallback", fallback),
        ];
        for codec in ["none", "gzip", "snappy", "lz4"] {
            let topic = format!("legacy-rdkafka-{}-{codec}", fallback.replace('.', "_"));
            create_topic(&broker, &topic);
            let mut conf = old.to_vec();
            conf.extend([
                ("compression.type", codec),
                ("enable.idempotence", "false"),
                ("linger.ms", "50"),
                ("batch.num.messages", "5"),
            ]);
            let producer = broker.producer(&conf);
            for i in 0..N {
                let value = format!("value-{i}-").repeat(20);
                let msg = Msg {
                    timestamp: Some(t + i),
                    ..Msg::kv(format!("key-{i}"), value)
                };
                producer.send(&topic, Some(0), &msg);
            }
            let delivered = producer.flush_ok(Duration::from_secs(20));
            assert_eq!(delivered.len(), N as usize, "{topic}: {delivered:?}");
            assert!(
                delivered.iter().all(|d| d.error.is_none()),
                "{topic}: {delivered:?}"
            );
            let want_codec = ["none", "gzip", "snappy", "lz4"]
                .iter()
                .position(|c| *c == codec)
                .expect("a codec") as i16;
            let stored = common::stored_codecs(&broker.data_dir(), &topic, 0);
            assert_eq!(
                stored,
                [want_codec].into(),
                "{topic}: stored in the producer's codec"
            );
            let want_ts = |i: i64| (fallback == "0.10.0.0").then_some(t + i);
            let check = |got: &[common::Consumed], who: &str| {
                assert_eq!(got.len(), N as usize, "{topic} ({who})");
                for (i, c) in got.iter().enumerate() {
                    let i = i as i64;
                    assert_eq!(c.offset, i, "{topic} ({who})");
                    assert_eq!(c.key.as_deref(), Some(format!("key-{i}").as_bytes()));
                    let value = format!("value-{i}-").repeat(20);
                    assert_eq!(
                        c.value.as_deref(),
                        Some(value.as_bytes()),
                        "{topic} ({who})"
                    );
                    assert_eq!(
                        c.timestamp.filter(|ts| *ts >= 0),
                        want_ts(i),
                        "{topic} ({who}) timestamp of {i}"
                    );
                }
            };
            let consumer = broker.consumer(&old);
            common::assign(&consumer, &[(&topic, 0, rdkafka::Offset::Beginning)]);
            let (got, errors) =
                common::poll_records(&consumer, N as usize, Duration::from_secs(20));
            assert!(errors.is_empty(), "{topic} (old consumer): {errors:?}");
            check(&got, "old consumer");
            check(
                &broker.consume_all(&topic, 0, 0, N as usize, Duration::from_secs(20)),
                "modern consumer",
            );
        }
    }
}
