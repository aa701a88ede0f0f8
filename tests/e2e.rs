//! End-to-end tests: a real `shardlog` process driven by librdkafka (rdkafka) clients.
//!
//! Each test starts its own broker (two shards, fresh data directory, free port); every wait
//! is bounded so a broken broker fails a test instead of hanging the suite.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{admin_options, assign, poll_records, Broker, Consumed, Msg};
use rdkafka::admin::{ConfigSource, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::consumer::Consumer;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

const FLUSH: Duration = Duration::from_secs(15);
const READ: Duration = Duration::from_secs(20);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Asserts `got` are the records `sent`, in order, at dense offsets from `first_offset`.
fn assert_records(got: &[Consumed], sent: &[Msg], first_offset: i64) {
    assert_eq!(got.len(), sent.len(), "record count");
    for (i, (g, s)) in got.iter().zip(sent).enumerate() {
        let at = first_offset + i as i64;
        assert_eq!(g.offset, at, "offset of record {i}");
        assert_eq!(g.key, s.key, "key at offset {at}");
        assert_eq!(g.value, s.value, "value at offset {at}");
        assert_eq!(g.headers, s.headers, "headers at offset {at}");
        if let Some(ts) = s.timestamp {
            assert_eq!(g.timestamp, Some(ts), "timestamp at offset {at}");
        }
    }
}

/// Asserts delivery reports acknowledged `n` records at dense offsets from `first`, in send order.
fn assert_dense_deliveries(d: &[common::Delivery], first: i64, n: usize) {
    assert_eq!(d.len(), n, "delivery reports");
    let mut offsets: Vec<i64> = d.iter().map(|d| d.offset).collect();
    offsets.sort_unstable();
    let want: Vec<i64> = (first..first + n as i64).collect();
    assert_eq!(offsets, want, "acknowledged offsets");
}

/// Records with keys, several headers (one with a null value) and compressible values of
/// varying size, plus one record with a null key and one with a null value.
fn varied_records(tag: &str, n: usize) -> Vec<Msg> {
    (0..n)
        .map(|i| {
            let mut m = Msg::kv(
                format!("{tag}-key-{i}"),
                format!("{tag} value {i} ").repeat(1 + (i * 7) % 40),
            );
            m.headers = vec![
                ("trace".to_string(), Some(format!("t-{i}").into_bytes())),
                ("empty".to_string(), Some(Vec::new())),
                ("null".to_string(), None),
            ];
            if i == 3 {
                m.key = None;
            }
            if i == 4 {
                m.value = None;
            }
            m
        })
        .collect()
}

/// Every compression codec round-trips: each record comes back with its key, value, headers
/// and dense offsets, and the batches really were stored with that codec.
#[test]
fn produce_consume_every_codec() {
    let broker = Broker::start(&[]);
    let mut not_compressed = Vec::new();
    for (codec, attr) in [
        ("none", 0),
        ("gzip", 1),
        ("snappy", 2),
        ("lz4", 3),
        ("zstd", 4),
    ] {
        let topic = format!("codec-{codec}");
        let producer = broker.producer(&[
            ("compression.type", codec),
            ("linger.ms", "50"),
            ("acks", "all"),
        ]);
        let sent = varied_records(codec, 60);
        for m in &sent {
            producer.send(&topic, Some(0), m);
        }
        let d = producer.flush_ok(FLUSH);
        assert_dense_deliveries(&d, 0, sent.len());
        let got = broker.consume_all(&topic, 0, 0, sent.len(), READ);
        assert_records(&got, &sent, 0);
        let codecs = common::stored_codecs(&broker.data_dir(), &topic, 0);
        if !codecs.contains(&attr) {
            not_compressed.push(format!(
                "{codec}: stored batches use codecs {codecs:?}, expected {attr}"
            ));
        }
    }
    // Checked last so one codec that the client silently did not use does not hide the
    // round trips of the others. librdkafka falls back to no compression when it believes
    // the broker lacks a codec (it infers that from the ApiVersions list).
    assert!(
        not_compressed.is_empty(),
        "the producer did not compress: {not_compressed:?}"
    );
}

/// Produce with acks=0, 1 and all (-1): every record is readable afterwards.
#[test]
fn every_acks_level_is_readable() {
    let broker = Broker::start(&[]);
    for acks in ["0", "1", "all"] {
        let topic = format!("acks-{acks}");
        // Create first: with acks=0 nothing would tell us about a produce to a missing topic.
        broker.create_topic(&topic, 1);
        let producer = broker.producer(&[("acks", acks), ("linger.ms", "5")]);
        let sent: Vec<Msg> = (0..40)
            .map(|i| Msg::kv(format!("k{i}"), format!("acks {acks} record {i}")))
            .collect();
        for m in &sent {
            producer.send(&topic, Some(0), m);
        }
        let d = producer.flush_ok(FLUSH);
        assert_eq!(d.len(), sent.len());
        if acks != "0" {
            assert_dense_deliveries(&d, 0, sent.len());
        }
        // For acks=0 this waits (bounded) until the records show up.
        let got = broker.consume_all(&topic, 0, 0, sent.len(), READ);
        assert_records(&got, &sent, 0);
        assert_eq!(broker.watermarks(&topic, 0), (0, sent.len() as i64));
    }
}

/// On a 2-shard broker, partitions on both shards are reachable from every connection: several
/// independent producers and consumers (connections the kernel spreads over the shards'
/// SO_REUSEPORT listeners) each write to and read from every partition.
#[test]
fn partitions_on_both_shards_from_any_connection() {
    const PARTITIONS: i32 = 6;
    const CLIENTS: usize = 4;
    const PER_CLIENT: usize = 5;
    let broker = Broker::start(&[]);
    let topic = "spread";
    broker.create_topic(topic, PARTITIONS);
    assert_eq!(broker.partition_count(topic), Some(PARTITIONS as usize));

    let producers: Vec<_> = (0..CLIENTS)
        .map(|_| broker.producer(&[("acks", "all"), ("linger.ms", "5")]))
        .collect();
    for (c, producer) in producers.iter().enumerate() {
        for p in 0..PARTITIONS {
            for i in 0..PER_CLIENT {
                producer.send(
                    topic,
                    Some(p),
                    &Msg::kv(format!("c{c}-p{p}-{i}"), format!("from client {c}")),
                );
            }
        }
    }
    let mut acked: BTreeMap<(i32, i64), Vec<u8>> = BTreeMap::new();
    for producer in &producers {
        for d in producer.flush_ok(FLUSH) {
            assert!(
                acked
                    .insert((d.partition, d.offset), d.key.unwrap())
                    .is_none(),
                "offset {}/{} acknowledged twice",
                d.partition,
                d.offset
            );
        }
    }
    let per_partition = CLIENTS * PER_CLIENT;
    for p in 0..PARTITIONS {
        let offsets: Vec<i64> = acked.keys().filter(|k| k.0 == p).map(|k| k.1).collect();
        assert_eq!(offsets, (0..per_partition as i64).collect::<Vec<_>>());
    }

    for c in 0..CLIENTS {
        let consumer = broker.consumer(&[]);
        let parts: Vec<_> = (0..PARTITIONS)
            .map(|p| (topic, p, Offset::Offset(0)))
            .collect();
        assign(&consumer, &parts);
        let total = per_partition * PARTITIONS as usize;
        let (got, errors) = poll_records(&consumer, total, READ);
        assert!(errors.is_empty(), "consumer {c}: {errors:?}");
        assert_eq!(
            got.len(),
            total,
            "consumer {c} read {} of {total}",
            got.len()
        );
        let read: BTreeMap<(i32, i64), Vec<u8>> = got
            .into_iter()
            .map(|r| ((r.partition, r.offset), r.key.unwrap()))
            .collect();
        assert_eq!(read, acked, "consumer {c} saw different records");
    }
}

/// A fetch from an offset inside a batch delivers exactly that offset first: the records of the
/// batch before it are skipped, and the rest of the batch arrives.
#[test]
fn consume_from_the_middle_of_a_batch() {
    let broker = Broker::start(&[]);
    let topic = "mid-batch";
    broker.create_topic(topic, 1);
    let producer = broker.producer(&[
        ("linger.ms", "2000"),
        ("batch.num.messages", "100"),
        ("acks", "all"),
    ]);
    let sent: Vec<Msg> = (0..10)
        .map(|i| Msg::kv(format!("k{i}"), format!("v{i}")))
        .collect();
    for m in &sent {
        producer.send(topic, Some(0), m);
    }
    let d = producer.flush_ok(FLUSH);
    assert_dense_deliveries(&d, 0, 10);

    let consumer = broker.consumer(&[]);
    assign(&consumer, &[(topic, 0, Offset::Offset(5))]);
    let (got, errors) = poll_records(&consumer, 5, READ);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        got.first().map(|r| r.offset),
        Some(5),
        "first delivered offset"
    );
    assert_records(&got, &sent[5..], 5);
}

/// A long-polling fetch (fetch.wait.max.ms=10000) parked at the log end is woken by an append:
/// the record arrives long before the wait would expire.
#[test]
fn long_poll_is_woken_by_append() {
    let broker = Broker::start(&[]);
    let topic = "long-poll";
    broker.create_topic(topic, 1);
    let producer = broker.producer(&[("acks", "1")]);
    for i in 0..3 {
        producer.send(topic, Some(0), &Msg::kv(format!("pre{i}"), "x"));
    }
    producer.flush_ok(FLUSH);
    let end = broker.watermarks(topic, 0).1;
    assert_eq!(end, 3);

    let consumer = broker.consumer(&[
        ("fetch.wait.max.ms", "10000"),
        ("socket.timeout.ms", "30000"),
    ]);
    assign(&consumer, &[(topic, 0, Offset::Offset(end))]);
    let started = Instant::now();
    let bootstrap_producer = broker.producer(&[("acks", "1"), ("linger.ms", "0")]);
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1000));
        let sent_at = Instant::now();
        bootstrap_producer.send(topic, Some(0), &Msg::kv("late", "woken"));
        bootstrap_producer.flush_ok(FLUSH);
        sent_at
    });
    let mut received = None;
    let mut errors = Vec::new();
    while received.is_none() && started.elapsed() < Duration::from_secs(25) {
        match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(m)) => received = Some((Consumed::of(&m), Instant::now())),
            Some(Err(e)) => errors.push(e),
            None => {}
        }
    }
    let sent_at = writer.join().expect("producer thread");
    assert!(errors.is_empty(), "{errors:?}");
    let (record, at) = received.expect("the record never arrived");
    assert_eq!(record.offset, end);
    assert_eq!(record.value.as_deref(), Some(&b"woken"[..]));
    let latency = at.saturating_duration_since(sent_at);
    eprintln!("long poll: record arrived {latency:?} after the produce started");
    assert!(
        latency < Duration::from_secs(5),
        "record arrived {latency:?} after it was produced: the parked fetch was not woken"
    );
}

/// Records survive a clean stop (SIGTERM, exit 0) and restart at the same offsets, and new
/// records continue the offsets densely.
#[test]
fn restart_keeps_records_and_offsets() {
    let mut broker = Broker::start(&[]);
    let topic = "restart";
    let sent: Vec<Msg> = varied_records("restart", 120);
    {
        let producer = broker.producer(&[("acks", "all"), ("linger.ms", "5")]);
        for m in &sent {
            producer.send(topic, Some(0), m);
        }
        assert_dense_deliveries(&producer.flush_ok(FLUSH), 0, sent.len());
    }
    broker.stop();
    broker.restart();
    let got = broker.consume_all(topic, 0, 0, sent.len(), READ);
    assert_records(&got, &sent, 0);
    assert_eq!(broker.watermarks(topic, 0), (0, sent.len() as i64));

    let more: Vec<Msg> = varied_records("after", 50);
    let producer = broker.producer(&[("acks", "all"), ("linger.ms", "5")]);
    for m in &more {
        producer.send(topic, Some(0), m);
    }
    assert_dense_deliveries(&producer.flush_ok(FLUSH), sent.len() as i64, more.len());
    let all: Vec<Msg> = sent.iter().chain(&more).cloned().collect();
    let got = broker.consume_all(topic, 0, 0, all.len(), READ);
    assert_records(&got, &all, 0);
}

/// A broker started under a soft open-files limit smaller than its partitions need (each
/// holds a segment's descriptor) raises it to the hard limit, so every partition opens and
/// takes records, before and after a restart, instead of staying offline with EMFILE.
#[test]
fn raises_the_open_files_limit_for_many_partitions() {
    let soft = 256;
    let hard = std::fs::read_to_string("/proc/self/limits")
        .expect("limits")
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4)?.parse::<u64>().ok());
    if hard.is_some_and(|h| h < 4 * soft) {
        eprintln!("skipped: the hard open-files limit {hard:?} leaves no room above {soft}");
        return;
    }
    let mut broker = Broker::start_with_soft_nofile(soft, &[]);
    let limits = |broker: &Broker| {
        let text =
            std::fs::read_to_string(format!("/proc/{}/limits", broker.pid().expect("running")))
                .expect("broker limits");
        let line = text
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .expect("open files line")
            .to_string();
        let v: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        (v[3].clone(), v[4].clone())
    };
    let (s, h) = limits(&broker);
    assert_eq!(s, h, "soft limit raised to the hard one");
    assert!(broker.log().contains("raised the open-files limit"));
    let topic = "wide";
    let partitions = 3 * soft as i32;
    broker.create_topic(topic, partitions);
    let last = partitions - 1;
    let producer = broker.producer(&[("acks", "all")]);
    producer.send(topic, Some(last), &Msg::kv("k", "v"));
    assert_dense_deliveries(&producer.flush_ok(FLUSH), 0, 1);
    drop(producer);
    broker.stop();
    broker.restart();
    let (s, h) = limits(&broker);
    assert_eq!(s, h);
    assert_eq!(broker.watermarks(topic, last), (0, 1));
    assert!(
        !broker.log().contains("Too many open files"),
        "{}",
        broker.log()
    );
}

/// With tiny segments the log rolls many times; after a restart every record is read back,
/// from the start and from an offset in a later segment, and ListOffsets earliest/latest are
/// right.
#[test]
fn segment_roll_and_restart() {
    let mut broker = Broker::start(&["--override", "log.segment.bytes=4096"]);
    let topic = "rolled";
    let sent: Vec<Msg> = (0..400)
        .map(|i| Msg::kv(format!("key-{i:04}"), format!("{i:04}-").repeat(20)))
        .collect();
    let producer = broker.producer(&[
        ("acks", "all"),
        ("linger.ms", "5"),
        ("batch.num.messages", "5"),
    ]);
    for m in &sent {
        producer.send(topic, Some(0), m);
    }
    assert_dense_deliveries(&producer.flush_ok(FLUSH), 0, sent.len());
    drop(producer);
    let segments = common::segment_files(&broker.data_dir(), topic, 0);
    assert!(
        segments.len() >= 4,
        "expected several segments, found {segments:?}"
    );
    assert_eq!(broker.watermarks(topic, 0), (0, sent.len() as i64));

    broker.restart();
    assert_eq!(broker.watermarks(topic, 0), (0, sent.len() as i64));
    let got = broker.consume_all(topic, 0, 0, sent.len(), READ);
    assert_records(&got, &sent, 0);
    let got = broker.consume_all(topic, 0, 333, sent.len() - 333, READ);
    assert_records(&got, &sent[333..], 333);

    // Appends after the restart go on from the right offset in the right segment.
    let producer = broker.producer(&[("acks", "all")]);
    producer.send(topic, Some(0), &Msg::kv("tail", "after restart"));
    assert_dense_deliveries(&producer.flush_ok(FLUSH), sent.len() as i64, 1);
    assert_eq!(broker.watermarks(topic, 0), (0, sent.len() as i64 + 1));
}

/// A SIGKILL during acks=all production loses no acknowledged record: after restart each one
/// is at its acknowledged offset with its key and value, and the whole log reads back densely
/// without errors (no torn batch is served).
#[test]
fn crash_keeps_every_acknowledged_record() {
    let mut broker = Broker::start(&[]);
    let topic = "crash";
    broker.create_topic(topic, 1);
    let producer = broker.producer(&[
        ("acks", "all"),
        ("linger.ms", "1"),
        ("message.timeout.ms", "20000"),
        ("retry.backoff.ms", "100"),
    ]);
    let stop = Arc::new(AtomicBool::new(false));
    let stop_writer = stop.clone();
    let writer = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(40);
        let mut i = 0u64;
        while !stop_writer.load(Ordering::Relaxed) && Instant::now() < deadline && i < 200_000 {
            producer.send(
                topic,
                Some(0),
                &Msg::kv(
                    format!("k{i}"),
                    format!("value {i} ").repeat(1 + i as usize % 30),
                ),
            );
            i += 1;
            if i.is_multiple_of(20) {
                producer.poll();
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        // Flush errors (records that timed out while the broker was down) are expected here;
        // only the acknowledged records count.
        let _ = producer.try_flush(Duration::from_secs(30));
        (i, producer.take_deliveries())
    });

    // Let a good number of records be acknowledged, then kill mid-stream.
    let wait_until = Instant::now() + Duration::from_secs(20);
    while broker.watermarks(topic, 0).1 < 500 && Instant::now() < wait_until {
        std::thread::sleep(Duration::from_millis(50));
    }
    broker.kill9();
    let killed_at = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    broker.restart();
    // Keep producing against the restarted broker for a moment (in-flight records retry).
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    let (queued, deliveries) = writer.join().expect("writer thread");

    let acked: Vec<_> = deliveries.iter().filter(|d| d.error.is_none()).collect();
    assert!(
        acked.len() >= 500,
        "only {} of {queued} records acknowledged",
        acked.len()
    );
    let (low, high) = broker.watermarks(topic, 0);
    eprintln!(
        "crash: {queued} queued, {} acknowledged ({} before the kill), log end {high}",
        acked.len(),
        acked.iter().filter(|d| d.at < killed_at).count()
    );
    assert_eq!(low, 0);
    let max_acked = acked.iter().map(|d| d.offset).max().unwrap();
    assert!(
        high > max_acked,
        "high watermark {high} but offset {max_acked} was acknowledged"
    );

    let consumer = broker.consumer(&[]);
    assign(&consumer, &[(topic, 0, Offset::Offset(0))]);
    let (got, errors) = poll_records(&consumer, high as usize, Duration::from_secs(30));
    assert!(errors.is_empty(), "errors reading the log back: {errors:?}");
    assert_eq!(got.len() as i64, high, "records read back");
    let by_offset: HashMap<i64, &Consumed> = got.iter().map(|r| (r.offset, r)).collect();
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.offset, i as i64, "offsets are dense");
    }
    for d in &acked {
        let r = by_offset
            .get(&d.offset)
            .unwrap_or_else(|| panic!("acknowledged offset {} missing", d.offset));
        assert_eq!(r.key, d.key, "key at acknowledged offset {}", d.offset);
        assert_eq!(
            r.value, d.value,
            "value at acknowledged offset {}",
            d.offset
        );
    }
}

/// ListOffsets by timestamp (offsets_for_times) returns the first offset whose timestamp is at
/// or after the one asked for, and the log end past the last record.
#[test]
fn offsets_for_times_finds_first_at_or_after() {
    let broker = Broker::start(&[]);
    let topic = "times";
    broker.create_topic(topic, 1);
    let base = now_ms() - 3_600_000;
    let producer = broker.producer(&[("acks", "all"), ("batch.num.messages", "4")]);
    let sent: Vec<Msg> = (0..20)
        .map(|i| {
            let mut m = Msg::kv(format!("k{i}"), format!("v{i}"));
            m.timestamp = Some(base + i * 1000);
            m
        })
        .collect();
    for m in &sent {
        producer.send(topic, Some(0), m);
    }
    assert_dense_deliveries(&producer.flush_ok(FLUSH), 0, sent.len());
    let got = broker.consume_all(topic, 0, 0, sent.len(), READ);
    assert_records(&got, &sent, 0);

    let consumer = broker.consumer(&[]);
    let cases = [
        (base - 10_000, Offset::Offset(0)),
        (base, Offset::Offset(0)),
        (base + 1, Offset::Offset(1)),
        (base + 5_000, Offset::Offset(5)),
        (base + 5_500, Offset::Offset(6)),
        (base + 19_000, Offset::Offset(19)),
        (base + 19_001, Offset::End),
    ];
    for (ts, want) in cases {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Offset(ts))
            .unwrap();
        let res = consumer
            .offsets_for_times(tpl, common::CALL_TIMEOUT)
            .unwrap_or_else(|e| panic!("offsets_for_times({ts}): {e}"));
        let elem = res.find_partition(topic, 0).expect("partition in answer");
        assert!(elem.error().is_ok(), "ts {ts}: {:?}", elem.error());
        assert_eq!(
            elem.offset(),
            want,
            "offset for timestamp base+{}",
            ts - base
        );
    }
}

/// ListOffsets by time with CreateTime timestamps that go backwards within and across
/// segments (1 KiB segments, several batches each): every answer is what Kafka's rules give,
/// the first record in offset order whose timestamp is at or after the target (computed here
/// from what was sent), both through rdkafka's offsets_for_times and raw; max timestamp (-3)
/// is the first record holding the largest; special timestamps need their versions; and once
/// DeleteRecords moved the log start into a segment, nothing below it is answered.
#[test]
fn offsets_for_times_with_timestamps_out_of_order() {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::{ApiKey, ListOffsetsRequest, ListOffsetsResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;

    let broker = Broker::start(&[]);
    let admin = broker.admin();
    let topic = "shuffled";
    let new = [NewTopic::new(topic, 1, TopicReplication::Fixed(1)).set("segment.bytes", "1024")];
    let created = futures::executor::block_on(admin.create_topics(&new, &admin_options()))
        .expect("CreateTopics");
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
    // 12 batches of 3 records, timestamps scrambled (a permutation of 0..36 seconds, so the
    // largest is unique) with a dip to the base in every batch.
    let base = now_ms() - 3_600_000;
    let stamps: Vec<i64> = (0..36)
        .map(|i: i64| {
            if i % 3 == 1 {
                base
            } else {
                base + ((i * 7) % 36) * 1000
            }
        })
        .collect();
    let producer = broker.producer(&[("linger.ms", "0")]);
    for batch in stamps.chunks(3) {
        for (i, ts) in batch.iter().enumerate() {
            let mut m = Msg::kv(format!("k{i}"), format!("{ts} ").repeat(20));
            m.timestamp = Some(*ts);
            producer.send(topic, Some(0), &m);
        }
        producer.flush_ok(FLUSH);
    }
    let segments = common::segment_files(&broker.data_dir(), topic, 0).len();
    assert!(segments >= 4, "{segments} segments");
    assert_eq!(broker.watermarks(topic, 0), (0, 36));

    // Kafka's answer: the first offset at or after the log start whose timestamp is at or
    // after the target.
    let expect = |target: i64, log_start: usize| {
        stamps
            .iter()
            .enumerate()
            .skip(log_start)
            .find(|(_, t)| **t >= target)
            .map_or(Offset::End, |(o, _)| Offset::Offset(o as i64))
    };
    let consumer = broker.consumer(&[]);
    let check = |log_start: usize| {
        let max = *stamps.iter().max().expect("stamps");
        let mut targets: Vec<i64> = stamps.clone();
        targets.extend([base - 1, base + 1, base + 17_500, max + 1]);
        for target in targets {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(topic, 0, Offset::Offset(target))
                .expect("tpl");
            let res = consumer
                .offsets_for_times(tpl, common::CALL_TIMEOUT)
                .unwrap_or_else(|e| panic!("offsets_for_times({target}): {e}"));
            let elem = res.find_partition(topic, 0).expect("partition in answer");
            assert!(elem.error().is_ok(), "{:?}", elem.error());
            assert_eq!(
                elem.offset(),
                expect(target, log_start),
                "target base+{} with log start {log_start}",
                target - base
            );
        }
    };
    check(0);

    let list = |timestamp: i64, version: i16| {
        let request = ListOffsetsRequest::default()
            .with_replica_id((-1).into())
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("shuffled")))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(timestamp)])]);
        let response: ListOffsetsResponse =
            common::call(broker.addr(), ApiKey::ListOffsets, version, &request);
        let p = &response.topics[0].partitions[0];
        (p.error_code, p.offset, p.timestamp)
    };
    // The largest timestamp (35 s, at the first offset that has it).
    let max = *stamps.iter().max().expect("stamps");
    let first_max = stamps.iter().position(|t| *t == max).expect("max") as i64;
    assert_eq!(list(-3, 7), (0, first_max, max));
    const UNSUPPORTED_VERSION: i16 = 35;
    assert_eq!(list(-3, 6).0, UNSUPPORTED_VERSION);
    assert_eq!(list(-4, 7).0, UNSUPPORTED_VERSION);
    assert_eq!(list(-4, 8), (0, 0, -1));
    assert_eq!(list(-5, 9), (0, -1, -1));
    assert_eq!(list(-6, 10).0, UNSUPPORTED_VERSION);
    // A lookup by time at the newest version, with the found record's timestamp.
    let mid = stamps
        .iter()
        .position(|t| *t >= base + 17_500)
        .expect("a match");
    assert_eq!(list(base + 17_500, 10), (0, mid as i64, stamps[mid]));

    // DeleteRecords into the middle of a segment, past the first record with the largest
    // timestamp: lookups answer only from the new log start.
    let log_start = first_max as usize + 1;
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(topic, 0, Offset::Offset(log_start as i64))
        .expect("offset");
    let deleted = futures::executor::block_on(admin.delete_records(&offsets, &admin_options()))
        .expect("DeleteRecords");
    assert!(deleted
        .find_partition(topic, 0)
        .expect("partition")
        .error()
        .is_ok());
    check(log_start);
    let rest_max = *stamps[log_start..].iter().max().expect("rest");
    let rest_first = log_start
        + stamps[log_start..]
            .iter()
            .position(|t| *t == rest_max)
            .expect("max");
    assert_eq!(list(-3, 7), (0, rest_first as i64, rest_max));
    assert_eq!(list(-2, 7), (0, log_start as i64, -1));
}

/// The admin APIs: CreateTopics with 3 partitions shows in Metadata, a second create gives
/// TopicAlreadyExists, CreatePartitions grows the topic, DeleteTopics removes it.
#[test]
fn admin_create_describe_grow_delete() {
    let broker = Broker::start(&[]);
    let admin = broker.admin();
    let topic = "admin-topic";
    let new = [NewTopic::new(topic, 3, TopicReplication::Fixed(1))];
    let res = futures::executor::block_on(admin.create_topics(&new, &admin_options()))
        .expect("CreateTopics");
    assert_eq!(res, vec![Ok(topic.to_string())]);
    assert_eq!(broker.partition_count(topic), Some(3));

    let res = futures::executor::block_on(admin.create_topics(&new, &admin_options()))
        .expect("CreateTopics again");
    assert_eq!(
        res,
        vec![Err((
            topic.to_string(),
            RDKafkaErrorCode::TopicAlreadyExists
        ))]
    );
    assert_eq!(broker.partition_count(topic), Some(3));

    let grow = [NewPartitions::new(topic, 5)];
    let res = futures::executor::block_on(admin.create_partitions(&grow, &admin_options()))
        .expect("CreatePartitions");
    assert_eq!(res, vec![Ok(topic.to_string())]);
    assert_eq!(broker.partition_count(topic), Some(5));
    // The new partitions take records.
    let producer = broker.producer(&[("acks", "all")]);
    producer.send(topic, Some(4), &Msg::kv("k", "in partition 4"));
    assert_dense_deliveries(&producer.flush_ok(FLUSH), 0, 1);
    drop(producer);

    let res = futures::executor::block_on(admin.delete_topics(&[topic], &admin_options()))
        .expect("DeleteTopics");
    assert_eq!(res, vec![Ok(topic.to_string())]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while broker.partition_count(topic).is_some() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(broker.partition_count(topic), None, "topic still listed");
}

/// DescribeConfigs through a real client (librdkafka asks v1 with synonyms): a topic's override
/// is a topic config, a topic key derived from a broker key set by --override is a static broker
/// config, the rest are defaults; broker keys that cannot change at runtime are read-only,
/// topic keys are not.
#[test]
fn describe_configs_sources() {
    let broker = Broker::start(&["--override", "log.retention.hours=24"]);
    let admin = broker.admin();
    let topic = "described";
    let new = [NewTopic::new(topic, 1, TopicReplication::Fixed(1)).set("segment.bytes", "1048576")];
    let res = futures::executor::block_on(admin.create_topics(&new, &admin_options()))
        .expect("CreateTopics");
    assert_eq!(res, vec![Ok(topic.to_string())]);

    let resources = [
        ResourceSpecifier::Topic(topic),
        ResourceSpecifier::Broker(0),
    ];
    let res = futures::executor::block_on(admin.describe_configs(&resources, &admin_options()))
        .expect("DescribeConfigs");
    let described = res[0].as_ref().expect("topic described");
    let entry = |name: &str| {
        let e = described
            .get(name)
            .unwrap_or_else(|| panic!("{name} described"));
        (
            e.value.clone().unwrap_or_default(),
            &e.source,
            e.is_read_only,
        )
    };
    assert_eq!(
        entry("segment.bytes"),
        ("1048576".to_string(), &ConfigSource::DynamicTopic, false)
    );
    assert_eq!(
        entry("retention.ms"),
        ("86400000".to_string(), &ConfigSource::StaticBroker, false)
    );
    assert_eq!(
        entry("max.message.bytes"),
        ("1048588".to_string(), &ConfigSource::Default, false)
    );

    let described = res[1].as_ref().expect("broker described");
    let retention = described.get("log.retention.hours").expect("reported");
    assert_eq!(
        (
            retention.value.as_deref(),
            &retention.source,
            retention.is_read_only
        ),
        (Some("24"), &ConfigSource::StaticBroker, true)
    );
    let partitions = described.get("num.partitions").expect("reported");
    assert_eq!(
        (
            partitions.value.as_deref(),
            &partitions.source,
            partitions.is_default
        ),
        (Some("1"), &ConfigSource::Default, true)
    );
}

/// DescribeConfigs v4 on raw TCP (no client library asks v3+ here): the broker answers with
/// each key's Kafka type, its documentation when asked, and its synonyms when asked.
#[test]
fn describe_configs_v4_types_and_documentation() {
    use bytes::{Buf, BytesMut};
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_protocol::messages::{
        ApiKey, DescribeConfigsRequest, DescribeConfigsResponse, RequestHeader, ResponseHeader,
    };
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
    use std::io::{Read, Write};

    const VERSION: i16 = 4;
    const CONFIG_TYPE_INT: i8 = 3;
    const CONFIG_TYPE_LONG: i8 = 5;
    const SOURCE_STATIC_BROKER: i8 = 4;
    const SOURCE_DEFAULT: i8 = 5;
    let broker = Broker::start(&["--override", "log.retention.minutes=90"]);
    let keys = ["log.retention.ms", "num.partitions"].map(StrBytes::from_static_str);
    let request = DescribeConfigsRequest::default()
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(StrBytes::from_static_str("0"))
            .with_configuration_keys(Some(keys.to_vec()))])
        .with_include_synonyms(true)
        .with_include_documentation(true);
    let key = ApiKey::DescribeConfigs;
    let mut buf = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(VERSION)
        .with_correlation_id(7)
        .encode(&mut buf, key.request_header_version(VERSION))
        .expect("encode header");
    request.encode(&mut buf, VERSION).expect("encode request");

    let mut stream = std::net::TcpStream::connect(broker.addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut framed = (buf.len() as i32).to_be_bytes().to_vec();
    framed.extend_from_slice(&buf);
    stream.write_all(&framed).expect("send");
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).expect("response size");
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut body).expect("response body");
    let mut body = bytes::Bytes::from(body);
    let header = ResponseHeader::decode(&mut body, key.response_header_version(VERSION))
        .expect("response header");
    assert_eq!(header.correlation_id, 7);
    let response = DescribeConfigsResponse::decode(&mut body, VERSION).expect("response");
    assert_eq!(body.remaining(), 0);

    let result = &response.results[0];
    assert_eq!(result.error_code, 0);
    let names: Vec<&str> = result.configs.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["log.retention.ms", "num.partitions"]);
    let retention = &result.configs[0];
    assert_eq!(retention.value.as_deref(), Some("5400000"));
    assert_eq!(
        (
            retention.config_source,
            retention.config_type,
            retention.read_only
        ),
        (SOURCE_STATIC_BROKER, CONFIG_TYPE_LONG, false)
    );
    assert!(retention
        .documentation
        .as_ref()
        .is_some_and(|d| !d.is_empty()));
    let synonyms: Vec<(&str, Option<&str>, i8)> = retention
        .synonyms
        .iter()
        .map(|s| (s.name.as_str(), s.value.as_deref(), s.source))
        .collect();
    assert_eq!(
        synonyms,
        [
            ("log.retention.minutes", Some("90"), SOURCE_STATIC_BROKER),
            ("log.retention.ms", Some("604800000"), SOURCE_DEFAULT),
        ]
    );
    let partitions = &result.configs[1];
    assert_eq!(
        (partitions.config_source, partitions.config_type),
        (SOURCE_DEFAULT, CONFIG_TYPE_INT)
    );
}

/// DeleteRecords moves the low watermark: ListOffsets earliest and a consumer starting at the
/// beginning begin there, a fetch below it is out of range, and the new start survives a
/// kill -9 and restart.
#[test]
fn delete_records_moves_the_low_watermark() {
    let mut broker = Broker::start(&[]);
    broker.create_topic("trim", 1);
    let producer = broker.producer(&[("linger.ms", "0")]);
    let sent: Vec<Msg> = (0..20).map(|i| Msg::kv("k", format!("v{i}"))).collect();
    for m in &sent {
        producer.send("trim", Some(0), m);
    }
    producer.flush_ok(FLUSH);
    let admin = broker.admin();
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset("trim", 0, Offset::Offset(12))
        .expect("offset");
    let result = futures::executor::block_on(admin.delete_records(&offsets, &admin_options()))
        .expect("DeleteRecords");
    let low = result.find_partition("trim", 0).expect("partition");
    assert!(low.error().is_ok(), "{:?}", low.error());
    assert_eq!(low.offset(), Offset::Offset(12));
    assert_eq!(broker.watermarks("trim", 0), (12, 20));
    broker.kill9();
    broker.restart();
    assert_eq!(broker.watermarks("trim", 0), (12, 20));
    let consumer = broker.consumer(&[("auto.offset.reset", "earliest")]);
    assign(&consumer, &[("trim", 0, Offset::Beginning)]);
    let (got, errors) = poll_records(&consumer, 8, READ);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(got.first().map(|r| r.offset), Some(12));
    assert_eq!(got.len(), 8);
}

/// Retention by time deletes a topic's old segments: the low watermark moves past records
/// older than `retention.ms`, a consumer from the beginning starts there, and the segment files
/// are gone, while the active segment and newer records stay.
#[test]
fn retention_deletes_old_segments() {
    let broker = Broker::start(&["--override", "log.retention.check.interval.ms=200"]);
    let admin = broker.admin();
    let topic = NewTopic::new("aged", 1, TopicReplication::Fixed(1))
        .set("retention.ms", "60000")
        .set("segment.bytes", "1024");
    let created = futures::executor::block_on(admin.create_topics(&[topic], &admin_options()))
        .expect("CreateTopics");
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
    let producer = broker.producer(&[("linger.ms", "0")]);
    let hour_ago = now_ms() - 3_600_000;
    for i in 0..30 {
        let mut m = Msg::kv("k", format!("old {i} ").repeat(10));
        m.timestamp = Some(hour_ago);
        producer.send("aged", Some(0), &m);
        // One batch each, so that the 1 KiB segments roll.
        producer.flush_ok(FLUSH);
    }
    let fresh = Msg::kv("k", "fresh");
    producer.send("aged", Some(0), &fresh);
    producer.flush_ok(FLUSH);
    // (The segments roll every few records and retention may already have run: the low
    // watermark and the files left say what it did.)
    let deadline = Instant::now() + READ;
    while broker.watermarks("aged", 0).0 == 0 {
        assert!(Instant::now() < deadline, "retention never ran");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (low, high) = broker.watermarks("aged", 0);
    assert_eq!(high, 31);
    assert!(low > 0 && low <= 30, "low watermark {low}");
    assert_eq!(
        common::segment_files(&broker.data_dir(), "aged", 0).len(),
        1
    );
    let got = broker.consume_all("aged", 0, low, (high - low) as usize, READ);
    assert_eq!(got.first().map(|r| r.offset), Some(low));
    assert_eq!(got.last().and_then(|r| r.value.clone()), fresh.value);
}

/// Retention on 1 MiB segments, by time (`retention.ms=2000`) and by size
/// (`retention.bytes=1 MiB`): the old segments go within the check interval, the earliest
/// offset moves, and a group consumer whose committed offset retention passed restarts, with
/// `auto.offset.reset=earliest`, from the new earliest offset.
#[test]
fn retention_passes_a_consumer_by() {
    let broker = Broker::start(&[
        "--override",
        "log.retention.check.interval.ms=500",
        "--override",
        "group.initial.rebalance.delay.ms=0",
    ]);
    let admin = broker.admin();
    let topics = [
        NewTopic::new("by-time", 1, TopicReplication::Fixed(1))
            .set("retention.ms", "2000")
            .set("segment.bytes", "1048576"),
        NewTopic::new("by-size", 1, TopicReplication::Fixed(1))
            .set("retention.bytes", "1048576")
            .set("segment.bytes", "1048576"),
    ];
    let created = futures::executor::block_on(admin.create_topics(&topics, &admin_options()))
        .expect("CreateTopics");
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
    for topic in ["by-time", "by-size"] {
        // A group reads the first 10 records and commits, then goes away.
        let producer = broker.producer(&[("linger.ms", "5")]);
        for i in 0..10 {
            producer.send(topic, Some(0), &Msg::kv(format!("{i}"), "first"));
        }
        producer.flush_ok(FLUSH);
        let group = |broker: &Broker| {
            let c = broker.consumer(&[
                ("group.id", "passed-by"),
                ("auto.offset.reset", "earliest"),
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "true"),
            ]);
            c.subscribe(&[topic]).expect("subscribe");
            c
        };
        let consumer = group(&broker);
        let (first, errors) = poll_records(&consumer, 10, READ);
        assert!(errors.is_empty() && first.len() == 10, "{errors:?}");
        consumer
            .commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
            .expect("commit");
        drop(consumer);
        // 4 MiB more: four sealed segments of 1 MiB.
        let value = "r".repeat(1000);
        for i in 0..4200 {
            producer.send(topic, Some(0), &Msg::kv(format!("{i}"), value.clone()));
        }
        producer.flush_ok(FLUSH);
        let deadline = Instant::now() + READ;
        while broker.watermarks(topic, 0).0 <= 10 {
            assert!(
                Instant::now() < deadline,
                "retention never passed offset 10 of {topic}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let (low, high) = broker.watermarks(topic, 0);
        let files = common::segment_files(&broker.data_dir(), topic, 0).len();
        if topic == "by-size" {
            // At least retention.bytes is kept.
            assert!(files >= 2, "{files} segments of {topic}");
        }
        // The committed offset 10 is gone: the group starts again at the earliest offset.
        let consumer = group(&broker);
        let (again, errors) = poll_records(&consumer, 1, READ);
        assert!(errors.is_empty(), "{errors:?}");
        let restarted_at = again.first().expect("a record").offset;
        let low_now = broker.watermarks(topic, 0).0;
        assert!(
            restarted_at >= low && restarted_at <= low_now && restarted_at < high,
            "{topic}: restarted at {restarted_at}, earliest {low}..{low_now}"
        );
    }
}

/// AlterConfigs changes a topic's overrides at runtime: DescribeConfigs reports the new value
/// as a topic override, the partitions use it at once (a smaller `segment.bytes` makes the
/// next appends roll), it survives a restart, and an invalid value is refused.
#[test]
fn alter_topic_configs_at_runtime() {
    let mut broker = Broker::start(&[]);
    broker.create_topic("tuned", 1);
    let admin = broker.admin();
    let alter = |key: &str, value: &str| {
        let config =
            rdkafka::admin::AlterConfig::new(ResourceSpecifier::Topic("tuned")).set(key, value);
        futures::executor::block_on(admin.alter_configs(&[config], &admin_options()))
            .expect("AlterConfigs")
            .into_iter()
            .next()
            .expect("one result")
    };
    // (Refusals are checked in catalog::change's unit tests: the rdkafka crate reports them
    // as success; confluent-kafka shows INVALID_CONFIG with the message.)
    assert!(alter("segment.bytes", "1024").is_ok());
    let producer = broker.producer(&[("linger.ms", "0")]);
    for i in 0..20 {
        producer.send("tuned", Some(0), &Msg::kv("k", format!("{i} ").repeat(40)));
        producer.flush_ok(FLUSH);
    }
    let segments = common::segment_files(&broker.data_dir(), "tuned", 0).len();
    assert!(segments > 3, "{segments} segments after segment.bytes=1024");
    let describe = |broker: &Broker| {
        let admin = broker.admin();
        let found = futures::executor::block_on(
            admin.describe_configs(&[ResourceSpecifier::Topic("tuned")], &admin_options()),
        )
        .expect("DescribeConfigs");
        let resource = found.into_iter().next().expect("one").expect("described");
        let entry = resource
            .entries
            .into_iter()
            .find(|e| e.name == "segment.bytes")
            .expect("segment.bytes");
        (entry.value, entry.source)
    };
    assert_eq!(
        describe(&broker),
        (Some("1024".to_string()), ConfigSource::DynamicTopic)
    );
    broker.restart();
    assert_eq!(
        describe(&broker),
        (Some("1024".to_string()), ConfigSource::DynamicTopic)
    );
}

/// Fetch responses of many megabytes arrive whole and correct when the client reads them
/// late: the broker writes the records by reference (vectored), and when the socket is full it
/// waits for room and goes on where it stopped. Both the tail cache and the segment files
/// serve (the second broker has no cache).
#[test]
fn large_fetch_responses_arrive_whole_to_a_late_reader() {
    use kafka_protocol::messages::{ApiKey, FetchResponse};
    use kafka_protocol::records::RecordBatchDecoder;

    const PARTITIONS: i32 = 8;
    const RECORDS: usize = 24;
    const VALUE_BYTES: usize = 128 * 1024;
    let value = |p: i32, i: usize| -> Vec<u8> {
        (0..VALUE_BYTES)
            .map(|j| (j as u8) ^ (p as u8 * 31) ^ (i as u8 * 7))
            .collect()
    };
    for cache in ["67108864", "0"] {
        let broker = Broker::start(&["--override", &format!("shardlog.tail.cache.bytes={cache}")]);
        let topic = "bulk";
        broker.create_topic(topic, PARTITIONS);
        let producer = broker.producer(&[("acks", "all"), ("linger.ms", "5")]);
        for p in 0..PARTITIONS {
            for i in 0..RECORDS {
                producer.send(topic, Some(p), &Msg::kv(format!("{p}-{i}"), value(p, i)));
            }
        }
        producer.flush_ok(FLUSH);

        let req = fetch_v12("bulk", (0..PARTITIONS).map(|p| (p, 0, 4 << 20)));
        let resp: FetchResponse = common::call_reading_late(
            broker.addr(),
            ApiKey::Fetch,
            12,
            &req,
            Duration::from_millis(500),
        );
        let parts = &resp.responses[0].partitions;
        assert_eq!(parts.len(), PARTITIONS as usize);
        for part in parts {
            let p = part.partition_index;
            assert_eq!(part.error_code, 0, "cache {cache}, partition {p}");
            assert_eq!(part.high_watermark, RECORDS as i64);
            let mut records = part.records.clone().expect("records");
            let mut i = 0;
            for set in RecordBatchDecoder::decode_all(&mut records).expect("decode") {
                for r in set.records {
                    assert_eq!(r.offset, i as i64, "cache {cache}, partition {p}");
                    let v = r.value.expect("value");
                    assert!(
                        v[..] == value(p, i)[..],
                        "cache {cache}: partition {p} record {i} differs"
                    );
                    i += 1;
                }
            }
            assert_eq!(i, RECORDS, "cache {cache}: records of partition {p}");
        }
    }
}

/// With no tail cache, a consumer at the log end reads through the page cache of the segment
/// the producer is writing (O_DIRECT, the partly filled last block rewritten with each batch):
/// it sees every record, intact (librdkafka checks each batch's CRC) and in order, never the
/// stale or zeroed bytes a cached page of the old block would hold.
#[test]
fn tail_reads_through_the_page_cache_see_each_write() {
    const RECORDS: usize = 1500;
    let broker = Broker::start(&["--override", "shardlog.tail.cache.bytes=0"]);
    let topic = "tail-files";
    broker.create_topic(topic, 1);
    let consumer = broker.consumer(&[("fetch.wait.max.ms", "50"), ("fetch.min.bytes", "1")]);
    assign(&consumer, &[(topic, 0, Offset::Offset(0))]);
    let value = |i: usize| format!("{i:06}-{}", "v".repeat(i % 700));
    let producer = broker.producer(&[("acks", "1"), ("linger.ms", "0")]);
    let writer = std::thread::spawn(move || {
        // One small batch at a time: each write rewrites the segment's last block.
        for i in 0..RECORDS {
            producer.send(topic, Some(0), &Msg::kv(format!("k{i}"), value(i)));
            if i % 10 == 0 {
                producer.flush_ok(FLUSH);
            }
        }
        producer.flush_ok(FLUSH);
    });
    let (got, errors) = poll_records(&consumer, RECORDS, Duration::from_secs(60));
    writer.join().expect("producer thread");
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(got.len(), RECORDS, "records read at the tail");
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.value.as_deref(), Some(value(i).as_bytes()), "offset {i}");
    }
}

/// `fetch.max.bytes`: a response holds no more than the broker allows, whatever the request
/// asks, except that its first batch comes whole (KIP-74, so a consumer always progresses);
/// a consumer still reads everything, one response at a time. Both the tail cache and the
/// segment files serve.
#[test]
fn fetch_max_bytes_bounds_what_a_response_holds() {
    use kafka_protocol::messages::{ApiKey, FetchResponse};

    for cache in ["67108864", "0"] {
        let broker = Broker::start(&[
            "--override",
            "fetch.max.bytes=4096",
            "--override",
            &format!("shardlog.tail.cache.bytes={cache}"),
        ]);
        let topic = "capped";
        broker.create_topic(topic, 1);
        // Five batches of one 3 KiB record each.
        let producer = broker.producer(&[("acks", "all"), ("linger.ms", "0")]);
        for i in 0..5 {
            producer.send(topic, Some(0), &Msg::kv(format!("k{i}"), vec![b'v'; 3000]));
            producer.flush_ok(FLUSH);
        }
        let batches_from = |offset: i64| -> usize {
            let req = fetch_v12("capped", [(0, offset, 64 << 20)]);
            let resp: FetchResponse = common::call(broker.addr(), ApiKey::Fetch, 12, &req);
            let records = resp.responses[0].partitions[0]
                .records
                .clone()
                .expect("records");
            let mut rest = &records[..];
            let mut n = 0;
            while let Some(h) = shardlog::log::batch::check_stored_batch(rest) {
                rest = &rest[h.total_bytes as usize..];
                n += 1;
            }
            assert!(rest.is_empty(), "cache {cache}: whole batches only");
            n
        };
        assert_eq!(
            batches_from(0),
            1,
            "cache {cache}: 4 KiB hold one 3 KiB batch"
        );
        assert_eq!(batches_from(3), 1, "cache {cache}");
        let got = broker.consume_all(topic, 0, 0, 5, READ);
        assert_eq!(got.len(), 5, "cache {cache}");
    }
}

/// A Fetch v12 request (no wait, up to 64 MiB) for `(partition, offset, partition max bytes)`
/// of `topic`.
fn fetch_v12(
    topic: &'static str,
    partitions: impl IntoIterator<Item = (i32, i64, i32)>,
) -> kafka_protocol::messages::FetchRequest {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{FetchRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    FetchRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(64 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str(topic)))
            .with_partitions(
                partitions
                    .into_iter()
                    .map(|(p, offset, max)| {
                        FetchPartition::default()
                            .with_partition(p)
                            .with_fetch_offset(offset)
                            .with_partition_max_bytes(max)
                    })
                    .collect(),
            )])
}

/// `message.timestamp.type=LogAppendTime` (librdkafka's 0052): records produced with an old
/// timestamp are read back at the broker's clock when they were appended; a CreateTime topic
/// keeps the producer's.
#[test]
fn log_append_time_topics_take_the_brokers_clock() {
    let broker = Broker::start(&[]);
    let admin = broker.admin();
    let created = futures::executor::block_on(
        admin.create_topics(
            &[
                NewTopic::new("appended", 1, TopicReplication::Fixed(1))
                    .set("message.timestamp.type", "LogAppendTime"),
                NewTopic::new("created", 1, TopicReplication::Fixed(1))
                    .set("message.timestamp.type", "CreateTime"),
            ],
            &admin_options(),
        ),
    )
    .expect("create topics");
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
    let old = 1_000_000i64;
    let producer = broker.producer(&[]);
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for name in ["appended", "created"] {
        for i in 0..5 {
            let msg = Msg {
                timestamp: Some(old + i),
                ..Msg::kv(format!("k{i}"), "v")
            };
            producer.send(name, Some(0), &msg);
        }
    }
    assert!(producer
        .flush_ok(Duration::from_secs(15))
        .iter()
        .all(|d| d.error.is_none()));
    let after = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let appended = broker.consume_all("appended", 0, 0, 5, Duration::from_secs(15));
    for r in &appended {
        let t = r.timestamp.expect("a timestamp");
        assert!(
            (before..=after).contains(&t),
            "appended at {t}, not within {before}..{after}"
        );
    }
    let created = broker.consume_all("created", 0, 0, 5, Duration::from_secs(15));
    let times: Vec<i64> = created
        .iter()
        .map(|r| r.timestamp.expect("a timestamp"))
        .collect();
    assert_eq!(times, (0..5).map(|i| old + i).collect::<Vec<_>>());
}
