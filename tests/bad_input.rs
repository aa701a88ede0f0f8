//! Hostile bytes on raw TCP connections: the broker closes or answers the offending
//! connection, stays up, and keeps serving new connections (checked with a hand-written
//! ApiVersions request and a real rdkafka produce/consume round trip).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use common::{Broker, Msg};
use kafka_protocol::records::Compression;

const IO_TIMEOUT: Duration = Duration::from_secs(10);
const API_PRODUCE: i16 = 0;
const API_FETCH: i16 = 1;
const API_METADATA: i16 = 3;
const API_VERSIONS: i16 = 18;
const UNSUPPORTED_VERSION: i16 = 35;
const CORRUPT_MESSAGE: i16 = 2;
const MESSAGE_TOO_LARGE: i16 = 10;

fn connect(broker: &Broker) -> TcpStream {
    let s = TcpStream::connect_timeout(&broker.addr(), IO_TIMEOUT).expect("connect");
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Request header v1 (non-flexible): api_key, api_version, correlation_id, client_id.
fn header_v1(api_key: i16, version: i16, correlation_id: i32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&api_key.to_be_bytes());
    h.extend_from_slice(&version.to_be_bytes());
    h.extend_from_slice(&correlation_id.to_be_bytes());
    let client = b"bad-input-test";
    h.extend_from_slice(&(client.len() as i16).to_be_bytes());
    h.extend_from_slice(client);
    h
}

/// Request header v2 (flexible): v1 plus an empty tagged-field section.
fn header_v2(api_key: i16, version: i16, correlation_id: i32) -> Vec<u8> {
    let mut h = header_v1(api_key, version, correlation_id);
    h.push(0);
    h
}

/// Size-prefixed frame.
fn frame(parts: &[&[u8]]) -> Vec<u8> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut f = (len as i32).to_be_bytes().to_vec();
    for p in parts {
        f.extend_from_slice(p);
    }
    f
}

fn unsigned_varint(mut v: u32) -> Vec<u8> {
    let mut out = Vec::new();
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out
}

/// Reads one response frame (without its size prefix).
fn read_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut size = [0u8; 4];
    s.read_exact(&mut size)?;
    let size = i32::from_be_bytes(size);
    assert!((0..=16 << 20).contains(&size), "response frame size {size}");
    let mut body = vec![0u8; size as usize];
    s.read_exact(&mut body)?;
    Ok(body)
}

/// Waits (bounded) for the broker to close the connection; returns any bytes it sent first.
fn expect_closed(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return got,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("connection still open {IO_TIMEOUT:?} after bad input (got {got:?})")
            }
            Err(e) => panic!("unexpected read error: {e}"),
        }
    }
}

/// Big-endian cursor over a response.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        assert!(self.0.len() >= N, "response truncated");
        let (a, b) = self.0.split_at(N);
        self.0 = b;
        a.try_into().unwrap()
    }
    fn i16(&mut self) -> i16 {
        i16::from_be_bytes(self.take())
    }
    fn i32(&mut self) -> i32 {
        i32::from_be_bytes(self.take())
    }
    fn i64(&mut self) -> i64 {
        i64::from_be_bytes(self.take())
    }
    fn string(&mut self) -> String {
        let len = self.i16();
        assert!(len >= 0, "null string");
        let len = len as usize;
        assert!(self.0.len() >= len, "response truncated");
        let (a, b) = self.0.split_at(len);
        self.0 = b;
        String::from_utf8(a.to_vec()).unwrap()
    }
}

/// Parses an ApiVersions v0 response body (after the size prefix): correlation id, error
/// code, and the (key, min, max) list; asserts nothing is left over.
fn parse_api_versions_v0(body: &[u8]) -> (i32, i16, Vec<(i16, i16, i16)>) {
    let mut c = Cursor(body);
    let corr = c.i32();
    let error = c.i16();
    let n = c.i32();
    assert!((0..1000).contains(&n), "api count {n}");
    let apis = (0..n).map(|_| (c.i16(), c.i16(), c.i16())).collect();
    assert!(c.0.is_empty(), "{} bytes after the v0 body", c.0.len());
    (corr, error, apis)
}

/// A hand-written ApiVersions v0 on a NEW connection is answered without error.
fn assert_api_versions_ok(broker: &Broker) {
    let mut s = connect(broker);
    s.write_all(&frame(&[&header_v1(API_VERSIONS, 0, 4242)]))
        .expect("send ApiVersions");
    let body = read_frame(&mut s).expect("ApiVersions response on a new connection");
    let (corr, error, apis) = parse_api_versions_v0(&body);
    assert_eq!(corr, 4242);
    assert_eq!(error, 0);
    assert!(apis.iter().any(|a| a.0 == API_PRODUCE), "{apis:?}");
}

/// The process is alive and serves new connections: raw ApiVersions and an rdkafka round trip.
fn assert_broker_serves(broker: &mut Broker) {
    broker.assert_running();
    assert_api_versions_ok(broker);
    let producer = broker.producer(&[("acks", "all")]);
    producer.send("alive", Some(0), &Msg::kv("still", "here"));
    let d = producer.flush_ok(Duration::from_secs(15));
    assert_eq!(d.len(), 1);
    let offset = d[0].offset;
    let got = broker.consume_all("alive", 0, offset, 1, Duration::from_secs(15));
    assert_eq!(got[0].value.as_deref(), Some(&b"here"[..]));
    broker.assert_running();
}

/// A frame whose size prefix is negative gets the connection closed, and the broker lives on.
#[test]
fn negative_frame_size_closes_connection() {
    let mut broker = Broker::start(&[]);
    let mut s = connect(&broker);
    s.write_all(&(-2i32).to_be_bytes()).unwrap();
    let _ = s.write_all(&[0u8; 16]);
    let got = expect_closed(&mut s);
    assert!(got.is_empty(), "unexpected response {got:?}");
    assert_broker_serves(&mut broker);
}

/// A frame larger than socket.request.max.bytes gets the connection closed before the body is
/// read, and the broker lives on.
#[test]
fn oversized_frame_closes_connection() {
    let mut broker = Broker::start(&["--override", "socket.request.max.bytes=1024"]);
    let mut s = connect(&broker);
    s.write_all(&2048i32.to_be_bytes()).unwrap();
    // The broker may already have closed: a failed write is fine.
    let mut body = header_v1(API_VERSIONS, 0, 1);
    body.resize(2048, 0);
    let _ = s.write_all(&body);
    let got = expect_closed(&mut s);
    assert!(got.is_empty(), "unexpected response {got:?}");
    assert_broker_serves(&mut broker);
}

/// ApiVersions v3 requests with a garbage body, or cut off right after the first 8 header
/// bytes, are rejected (answered or closed, never left hanging) without harming the broker.
#[test]
fn api_versions_with_garbage_body() {
    let mut broker = Broker::start(&[]);
    let garbage: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02, 0x03];
    let truncated: Vec<u8> = header_v1(API_VERSIONS, 3, 7)[..8].to_vec();
    for request in [
        frame(&[&header_v2(API_VERSIONS, 3, 7), garbage]),
        frame(&[&truncated]),
        frame(&[&header_v2(API_VERSIONS, 3, 7), &[0x05, b'a']]),
    ] {
        let mut s = connect(&broker);
        s.write_all(&request).unwrap();
        let got = expect_closed(&mut s);
        if !got.is_empty() {
            // An answer is acceptable if it is a well-formed frame for our correlation id.
            assert!(got.len() >= 8, "partial response {got:?}");
            let size = i32::from_be_bytes(got[..4].try_into().unwrap());
            assert_eq!(size as usize, got.len() - 4, "response frame size");
            assert_eq!(&got[4..8], &7i32.to_be_bytes(), "correlation id");
        }
        broker.assert_running();
    }
    assert_broker_serves(&mut broker);
}

/// Array counts of 0x7fffffff with no bytes behind them (Metadata v9 compact array, Metadata v1
/// and Produce v3 classic arrays) must not make the decoder reserve its way into an abort:
/// the connection is closed and the process lives on.
#[test]
fn huge_array_count_does_not_abort() {
    let mut broker = Broker::start(&[]);
    let requests: Vec<(&str, Vec<u8>)> = vec![
        (
            "Metadata v9 (compact array)",
            frame(&[
                &header_v2(API_METADATA, 9, 11),
                &unsigned_varint(0x7fff_ffff),
            ]),
        ),
        (
            "Metadata v9 (compact array, count+1 = 2^32-1)",
            frame(&[
                &header_v2(API_METADATA, 9, 12),
                &unsigned_varint(0xffff_fffe),
            ]),
        ),
        (
            "Metadata v1 (classic array)",
            frame(&[
                &header_v1(API_METADATA, 1, 13),
                &0x7fff_ffffi32.to_be_bytes(),
            ]),
        ),
        (
            "Produce v3 (topic array)",
            frame(&[
                &header_v1(API_PRODUCE, 3, 14),
                &(-1i16).to_be_bytes(),
                &1i16.to_be_bytes(),
                &5000i32.to_be_bytes(),
                &0x7fff_ffffi32.to_be_bytes(),
            ]),
        ),
    ];
    for (what, request) in requests {
        let mut s = connect(&broker);
        s.write_all(&request).unwrap();
        let got = expect_closed(&mut s);
        assert!(got.is_empty(), "{what}: unexpected response {got:?}");
        broker.assert_running();
    }
    assert_broker_serves(&mut broker);
}

/// The old versions decoded by hand (Produce v0-2, Fetch v0-3, ListOffsets v0, OffsetCommit
/// v0-1, OffsetFetch v0) with
/// forged counts (2^31-1 topics or partitions with no bytes behind them), a negative count,
/// or cut off inside a partition get the connection closed, and the broker lives on.
#[test]
fn forged_old_version_requests_close_the_connection() {
    const API_LIST_OFFSETS: i16 = 2;
    const API_OFFSET_COMMIT: i16 = 8;
    const API_OFFSET_FETCH: i16 = 9;
    let mut broker = Broker::start(&[]);
    let huge = 0x7fff_ffffi32.to_be_bytes();
    let string = |s: &str| {
        let mut b = (s.len() as i16).to_be_bytes().to_vec();
        b.extend_from_slice(s.as_bytes());
        b
    };
    let consumer = (-1i32).to_be_bytes();
    let one = 1i32.to_be_bytes();
    let topic = string("t");
    let group = string("g");
    let member = [&3i32.to_be_bytes()[..], &string("m")].concat();
    let cut_partition = [0u8, 0, 0, 0, 0xff, 0xff];
    let acks_timeout = [0u8, 1, 0, 0, 0x13, 0x88];
    // Fetch v0-3: replica_id, max_wait_ms, min_bytes.
    let fetch_head = [&consumer[..], &[0; 4], &one].concat();
    let requests: Vec<(&str, Vec<u8>)> = vec![
        (
            "ListOffsets v0, huge topic count",
            frame(&[&header_v1(API_LIST_OFFSETS, 0, 51), &consumer, &huge]),
        ),
        (
            "ListOffsets v0, huge partition count",
            frame(&[
                &header_v1(API_LIST_OFFSETS, 0, 52),
                &consumer,
                &one,
                &topic,
                &huge,
            ]),
        ),
        (
            "ListOffsets v0, negative topic count",
            frame(&[&header_v1(API_LIST_OFFSETS, 0, 53), &consumer, &consumer]),
        ),
        (
            "ListOffsets v0, cut inside a partition",
            frame(&[
                &header_v1(API_LIST_OFFSETS, 0, 54),
                &consumer,
                &one,
                &topic,
                &one,
                &cut_partition,
            ]),
        ),
        (
            "OffsetCommit v0, huge topic count",
            frame(&[&header_v1(API_OFFSET_COMMIT, 0, 55), &group, &huge]),
        ),
        (
            "OffsetCommit v1, huge partition count",
            frame(&[
                &header_v1(API_OFFSET_COMMIT, 1, 56),
                &group,
                &member,
                &one,
                &topic,
                &huge,
            ]),
        ),
        (
            "OffsetCommit v1, cut inside a partition",
            frame(&[
                &header_v1(API_OFFSET_COMMIT, 1, 57),
                &group,
                &member,
                &one,
                &topic,
                &one,
                &cut_partition,
            ]),
        ),
        (
            "OffsetFetch v0, huge partition count",
            frame(&[
                &header_v1(API_OFFSET_FETCH, 0, 58),
                &group,
                &one,
                &topic,
                &huge,
            ]),
        ),
        (
            "Produce v0, huge topic count",
            frame(&[&header_v1(API_PRODUCE, 0, 59), &acks_timeout, &huge]),
        ),
        (
            "Produce v1, huge partition count",
            frame(&[
                &header_v1(API_PRODUCE, 1, 60),
                &acks_timeout,
                &one,
                &topic,
                &huge,
            ]),
        ),
        (
            "Produce v2, message set size past the request",
            frame(&[
                &header_v1(API_PRODUCE, 2, 61),
                &acks_timeout,
                &one,
                &topic,
                &one,
                &0i32.to_be_bytes(),
                &huge,
                &[0; 16],
            ]),
        ),
        (
            "Produce v0, negative message set size",
            frame(&[
                &header_v1(API_PRODUCE, 0, 62),
                &acks_timeout,
                &one,
                &topic,
                &one,
                &0i32.to_be_bytes(),
                &(-7i32).to_be_bytes(),
            ]),
        ),
        (
            "Fetch v0, huge topic count",
            frame(&[&header_v1(API_FETCH, 0, 63), &fetch_head, &huge]),
        ),
        (
            "Fetch v2, huge partition count",
            frame(&[
                &header_v1(API_FETCH, 2, 64),
                &fetch_head,
                &one,
                &topic,
                &huge,
            ]),
        ),
        (
            "Fetch v3, cut inside a partition",
            frame(&[
                &header_v1(API_FETCH, 3, 65),
                &fetch_head,
                &one, // v3's max_bytes
                &one,
                &topic,
                &one,
                &cut_partition,
            ]),
        ),
    ];
    for (what, request) in requests {
        let mut s = connect(&broker);
        s.write_all(&request).unwrap();
        let got = expect_closed(&mut s);
        assert!(got.is_empty(), "{what}: unexpected response {got:?}");
        broker.assert_running();
    }
    assert_broker_serves(&mut broker);
}

/// An unknown API key (9999) gets the connection closed, and the broker lives on.
#[test]
fn unknown_api_key_closes_connection() {
    let mut broker = Broker::start(&[]);
    let mut s = connect(&broker);
    s.write_all(&frame(&[&header_v1(9999, 0, 3)])).unwrap();
    let got = expect_closed(&mut s);
    assert!(got.is_empty(), "unexpected response {got:?}");
    assert_broker_serves(&mut broker);
}

/// ApiVersions v99 is answered per KIP-511: a v0 response (header v0) with UNSUPPORTED_VERSION
/// and the full list of supported APIs.
#[test]
fn api_versions_unknown_version_answers_v0() {
    let mut broker = Broker::start(&[]);
    let mut s = connect(&broker);
    // A client newer than us sends its newest (flexible) header and body.
    let body = [0x01u8, 0x01, 0x00]; // two empty compact strings, no tagged fields
    s.write_all(&frame(&[&header_v2(API_VERSIONS, 99, 777), &body]))
        .unwrap();
    let response = read_frame(&mut s).expect("an ApiVersions response");
    let (corr, error, apis) = parse_api_versions_v0(&response);
    assert_eq!(corr, 777);
    assert_eq!(error, UNSUPPORTED_VERSION);
    assert!(!apis.is_empty());
    let av = apis
        .iter()
        .find(|a| a.0 == API_VERSIONS)
        .expect("ApiVersions in the list");
    assert!(av.1 == 0 && av.2 >= 3, "ApiVersions range {av:?}");
    assert!(apis.iter().all(|a| a.1 <= a.2), "ranges {apis:?}");
    // The connection stays usable: a supported version is then answered normally.
    s.write_all(&frame(&[&header_v1(API_VERSIONS, 0, 778)]))
        .unwrap();
    let (corr, error, _) = parse_api_versions_v0(&read_frame(&mut s).expect("second response"));
    assert_eq!((corr, error), (778, 0));
    assert_broker_serves(&mut broker);
}

fn record_batch(n: i64) -> Vec<u8> {
    let records = (0..n).map(|i| {
        let key = Bytes::from(format!("key-{i}"));
        (
            Some(key),
            Some(Bytes::from(format!("value-{i}"))),
            1_700_000_000_000 + i,
        )
    });
    shardlog::log::batch::encode_batch(records, Compression::None)
}

/// A Produce request of `version` (0 or 3: v0 has no transactional id), acks=1, of `records`
/// (a message set for v0, record batches for v3) to partition 0 of `topic`.
fn produce_request(version: i16, correlation_id: i32, topic: &str, records: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    if version >= 3 {
        body.extend_from_slice(&(-1i16).to_be_bytes()); // transactional_id: null
    }
    body.extend_from_slice(&1i16.to_be_bytes()); // acks
    body.extend_from_slice(&5000i32.to_be_bytes()); // timeout_ms
    body.extend_from_slice(&1i32.to_be_bytes()); // one topic
    body.extend_from_slice(&(topic.len() as i16).to_be_bytes());
    body.extend_from_slice(topic.as_bytes());
    body.extend_from_slice(&1i32.to_be_bytes()); // one partition
    body.extend_from_slice(&0i32.to_be_bytes()); // index 0
    body.extend_from_slice(&(records.len() as i32).to_be_bytes());
    body.extend_from_slice(records);
    frame(&[&header_v1(API_PRODUCE, version, correlation_id), &body])
}

/// Parses a Produce response of `version` (0 or 3) with one topic and one partition:
/// (error_code, base_offset). v3 adds the log append time and the throttle time.
fn parse_produce(version: i16, body: &[u8], correlation_id: i32, topic: &str) -> (i16, i64) {
    let mut c = Cursor(body);
    assert_eq!(c.i32(), correlation_id);
    assert_eq!(c.i32(), 1, "topic count");
    assert_eq!(c.string(), topic);
    assert_eq!(c.i32(), 1, "partition count");
    assert_eq!(c.i32(), 0, "partition index");
    let error = c.i16();
    let base_offset = c.i64();
    if version >= 3 {
        let _log_append_time = c.i64();
        let _throttle = c.i32();
    }
    assert!(
        c.0.is_empty(),
        "{} bytes after the v{version} body",
        c.0.len()
    );
    (error, base_offset)
}

/// A record batch whose CRC does not match is refused with CORRUPT_MESSAGE for its partition
/// and nothing of it is stored; the same batch intact is then appended at offset 0.
#[test]
fn produce_with_bad_crc_is_corrupt_message() {
    let mut broker = Broker::start(&[]);
    let topic = "crc-check";
    broker.create_topic(topic, 1);
    let good = record_batch(3);
    // Flip a bit of the last value byte: covered by the CRC, length fields untouched.
    let mut bad = good.clone();
    *bad.last_mut().unwrap() ^= 0x01;
    let mut s = connect(&broker);
    s.write_all(&produce_request(3, 21, topic, &bad)).unwrap();
    let (error, _) = parse_produce(3, &read_frame(&mut s).expect("produce response"), 21, topic);
    assert_eq!(
        error, CORRUPT_MESSAGE,
        "error code for a batch with a bad CRC"
    );

    // Corrupt CRC field itself.
    let mut bad_crc = good.clone();
    bad_crc[17] ^= 0x80;
    s.write_all(&produce_request(3, 22, topic, &bad_crc))
        .unwrap();
    let (error, _) = parse_produce(3, &read_frame(&mut s).expect("produce response"), 22, topic);
    assert_eq!(
        error, CORRUPT_MESSAGE,
        "error code for a batch with a bad CRC field"
    );

    // Same connection, intact batch: stored at offset 0 (nothing of the bad ones was kept).
    s.write_all(&produce_request(3, 23, topic, &good)).unwrap();
    let (error, base) = parse_produce(3, &read_frame(&mut s).expect("produce response"), 23, topic);
    assert_eq!((error, base), (0, 0));
    assert_eq!(broker.watermarks(topic, 0), (0, 3));
    let got = broker.consume_all(topic, 0, 0, 3, Duration::from_secs(15));
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.key.as_deref(), Some(format!("key-{i}").as_bytes()));
        assert_eq!(r.value.as_deref(), Some(format!("value-{i}").as_bytes()));
    }
    assert_broker_serves(&mut broker);
}

/// A Metadata v4 request for `count` topics that do not exist (no auto-creation), of about
/// `count` x 120 bytes.
fn metadata_for_missing_topics(count: usize, correlation_id: i32) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(count as i32).to_be_bytes());
    for i in 0..count {
        let name = format!("no-such-topic-{i:06}-{}", "x".repeat(100));
        body.extend_from_slice(&(name.len() as i16).to_be_bytes());
        body.extend_from_slice(name.as_bytes());
    }
    body.push(0); // allow_auto_topic_creation: false
    frame(&[&header_v1(API_METADATA, 4, correlation_id), &body])
}

/// `queued.max.request.bytes`: while one connection holds its shard's whole budget with a
/// frame it has not finished sending, another connection's large request is not read (the
/// broker stops reading instead of holding more); once the first connection goes away, the
/// request is read and answered.
#[test]
fn a_spent_request_budget_holds_other_requests_until_it_is_given_back() {
    let broker = Broker::start(&[
        "--shards",
        "1",
        "--override",
        "queued.max.request.bytes=1048576",
    ]);
    let mut holder = connect(&broker);
    // The size of a 900 KiB frame, and a little of it.
    holder.write_all(&(900i32 << 10).to_be_bytes()).unwrap();
    holder.write_all(&[0u8; 1000]).unwrap();
    std::thread::sleep(Duration::from_millis(200));

    let mut waiting = connect(&broker);
    let request = metadata_for_missing_topics(5000, 42);
    assert!(request.len() > 500 << 10);
    waiting.write_all(&request).unwrap();
    waiting
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut size = [0u8; 4];
    match waiting.read(&mut size) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("answered while the budget was held: {other:?}"),
    }

    drop(holder);
    waiting.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    waiting
        .read_exact(&mut size)
        .expect("answered once the budget is given back");
    let mut response = vec![0u8; i32::from_be_bytes(size) as usize];
    waiting.read_exact(&mut response).expect("response");
    assert_eq!(&response[..4], &42i32.to_be_bytes(), "correlation id");
    assert!(response.len() > 5000 * 100, "every topic answered");
}

/// A compressed batch whose header claims more records than it holds (here 2^31 - 11, which
/// would push a segment's relative offsets past 32 bits) is refused with INVALID_RECORD, as
/// Kafka's LogValidator refuses it, and nothing of it is stored; so is one claiming one record
/// more or less. Ordinary traffic after them goes on at offset 0 and survives a restart.
#[test]
fn a_compressed_batch_must_hold_the_records_it_claims() {
    const INVALID_RECORD: i16 = 87;
    let mut broker = Broker::start(&[]);
    let topic = "counted";
    broker.create_topic(topic, 1);
    let records = |n: i64| {
        (0..n).map(|i| {
            (
                Some(Bytes::from(format!("key-{i}"))),
                Some(Bytes::from(format!("value-{i}"))),
                1_700_000_000_000 + i,
            )
        })
    };
    let gzip = shardlog::log::batch::encode_batch(records(3), Compression::Gzip);
    let reseal = |b: &mut Vec<u8>| {
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
    };
    let mut s = connect(&broker);
    for (i, claim) in [i32::MAX - 10, 4, 2].into_iter().enumerate() {
        let mut forged = gzip.clone();
        forged[23..27].copy_from_slice(&(claim - 1).to_be_bytes()); // last offset delta
        forged[57..61].copy_from_slice(&claim.to_be_bytes()); // record count
        reseal(&mut forged);
        let corr = 30 + i as i32;
        s.write_all(&produce_request(3, corr, topic, &forged))
            .unwrap();
        let (error, _) = parse_produce(
            3,
            &read_frame(&mut s).expect("produce response"),
            corr,
            topic,
        );
        assert_eq!(
            error, INVALID_RECORD,
            "a batch claiming {claim} records of 3"
        );
    }
    s.write_all(&produce_request(3, 41, topic, &gzip)).unwrap();
    let (error, base) = parse_produce(3, &read_frame(&mut s).expect("produce response"), 41, topic);
    assert_eq!((error, base), (0, 0));
    s.write_all(&produce_request(3, 42, topic, &record_batch(3)))
        .unwrap();
    let (error, base) = parse_produce(3, &read_frame(&mut s).expect("produce response"), 42, topic);
    assert_eq!((error, base), (0, 3));
    broker.restart();
    assert_eq!(broker.watermarks(topic, 0), (0, 6));
    let got = broker.consume_all(topic, 0, 0, 6, Duration::from_secs(15));
    assert_eq!(got.len(), 6);
    assert_broker_serves(&mut broker);
}

/// Sends ApiVersions v0 on `s` and reads its answer.
fn api_versions_answered(s: &mut TcpStream, correlation_id: i32) -> std::io::Result<()> {
    s.write_all(&frame(&[&header_v1(API_VERSIONS, 0, correlation_id)]))?;
    let (corr, error, _) = parse_api_versions_v0(&read_frame(s)?);
    assert_eq!((corr, error), (correlation_id, 0));
    Ok(())
}

/// `max.connections.per.ip` and its overrides: connections past the limit of their address
/// are closed at once (no answer); closing one makes room for the next. The test's
/// connections all come from 127.0.0.1.
#[test]
fn connections_past_the_per_address_limit_are_closed() {
    for (args, limit) in [
        (vec!["--override", "max.connections.per.ip=3"], 3),
        (
            vec![
                "--override",
                "max.connections.per.ip=1",
                "--override",
                "max.connections.per.ip.overrides=127.0.0.1:4,10.1.2.3:1",
            ],
            4,
        ),
        (vec!["--override", "max.connections=2"], 2),
    ] {
        let mut broker = Broker::start(&args);
        // The fixture's readiness probe may still be counted for a moment.
        let mut held: Vec<TcpStream> = Vec::new();
        let deadline = std::time::Instant::now() + IO_TIMEOUT;
        while held.len() < limit {
            let mut s = connect(&broker);
            if api_versions_answered(&mut s, 1).is_ok() {
                held.push(s);
            } else {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{args:?}: {} admitted",
                    held.len()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let mut refused = connect(&broker);
        let _ = refused.write_all(&frame(&[&header_v1(API_VERSIONS, 0, 2)]));
        assert!(
            expect_closed(&mut refused).is_empty(),
            "{args:?}: answered past the limit"
        );
        drop(held.pop());
        let deadline = std::time::Instant::now() + IO_TIMEOUT;
        loop {
            let mut s = connect(&broker);
            if api_versions_answered(&mut s, 3).is_ok() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{args:?}: no room after a close"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(broker.log().contains("closing new connections"), "{args:?}");
        broker.assert_running();
    }
}

/// `connections.max.idle.ms`: a connection with nothing in flight that sends nothing is
/// closed; `shardlog.request.read.timeout.ms`: so is one that starts a request and never
/// finishes it (slowloris), with a log line.
#[test]
fn idle_and_trickling_connections_are_closed() {
    let mut broker = Broker::start(&[
        "--override",
        "connections.max.idle.ms=300",
        "--override",
        "shardlog.request.read.timeout.ms=300",
    ]);
    let mut idle = connect(&broker);
    api_versions_answered(&mut idle, 5).expect("answered");
    assert!(
        expect_closed(&mut idle).is_empty(),
        "idle connection closed"
    );

    let mut trickling = connect(&broker);
    trickling.write_all(&100i32.to_be_bytes()).unwrap();
    trickling.write_all(&header_v1(API_VERSIONS, 0, 6)).unwrap();
    assert!(
        expect_closed(&mut trickling).is_empty(),
        "unfinished request closed"
    );
    assert!(
        broker.log().contains("a request did not arrive whole"),
        "{}",
        broker.log()
    );
    assert_broker_serves(&mut broker);
}

/// A message format v1 message (offset, size, crc, magic 1, attributes, timestamp, key, value).
fn legacy_message(attributes: i8, key: Option<&[u8]>, value: Option<&[u8]>) -> Vec<u8> {
    let mut m = vec![1u8, attributes as u8];
    m.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
    for field in [key, value] {
        match field {
            Some(b) => {
                m.extend_from_slice(&(b.len() as i32).to_be_bytes());
                m.extend_from_slice(b);
            }
            None => m.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    let mut crc = flate2::Crc::new();
    crc.update(&m);
    let mut out = 0i64.to_be_bytes().to_vec();
    out.extend_from_slice(&(m.len() as i32 + 4).to_be_bytes());
    out.extend_from_slice(&crc.sum().to_be_bytes());
    out.extend_from_slice(&m);
    out
}

/// Message sets that cannot be up-converted are refused for their partition, never appended,
/// and the connection goes on: a truncated set, a message whose size or key length is forged
/// past the set, a bad CRC and a compressed message whose value does not decompress are
/// CORRUPT_MESSAGE; a gzip message inflating past the bound (64 MiB) is MESSAGE_TOO_LARGE,
/// found without inflating it all. A good set on the same connection is then appended at 0.
#[test]
fn legacy_message_sets_that_do_not_convert_are_refused() {
    use std::io::Write as _;
    let mut broker = Broker::start(&[]);
    let topic = "legacy-bad";
    broker.create_topic(topic, 1);
    let good = legacy_message(0, Some(b"k"), Some(b"v"));
    let mut forged_size = good.clone();
    forged_size[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
    let mut forged_key = good.clone();
    forged_key[26..30].copy_from_slice(&1_000_000i32.to_be_bytes());
    let mut bad_crc = good.clone();
    *bad_crc.last_mut().unwrap() ^= 1;
    let not_gzip = legacy_message(1, None, Some(b"not gzip at all"));
    let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..65 {
        bomb.write_all(&zeros).unwrap();
    }
    let bomb = legacy_message(1, None, Some(&bomb.finish().unwrap()));
    let cases: Vec<(&str, Vec<u8>, i16)> = vec![
        (
            "truncated",
            good[..good.len() - 3].to_vec(),
            CORRUPT_MESSAGE,
        ),
        ("forged message size", forged_size, CORRUPT_MESSAGE),
        ("forged key length", forged_key, CORRUPT_MESSAGE),
        ("bad CRC", bad_crc, CORRUPT_MESSAGE),
        ("compressed garbage", not_gzip, CORRUPT_MESSAGE),
        ("gzip bomb", bomb, MESSAGE_TOO_LARGE),
    ];
    let mut s = connect(&broker);
    for (i, (what, set, want)) in cases.into_iter().enumerate() {
        let corr = 70 + i as i32;
        s.write_all(&produce_request(0, corr, topic, &set)).unwrap();
        let response = read_frame(&mut s).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            parse_produce(0, &response, corr, topic),
            (want, -1),
            "{what}"
        );
    }
    s.write_all(&produce_request(0, 90, topic, &good)).unwrap();
    let response = read_frame(&mut s).expect("produce response");
    assert_eq!(parse_produce(0, &response, 90, topic), (0, 0));
    assert_eq!(broker.watermarks(topic, 0), (0, 1));
    assert_broker_serves(&mut broker);
}
