//! Compaction end to end: a real `shardlog` process cleaning compacted topics while real
//! rdkafka clients write and read them, across kill -9 and restarts.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{admin_options, assign, Broker, Consumed, Msg};
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::Offset;

const FLUSH: Duration = Duration::from_secs(15);
const WAIT: Duration = Duration::from_secs(60);

/// The cleaner every 100 ms, and a compacted topic's segments rolling small and fast.
const CLEANER: [&str; 2] = ["--override", "log.cleaner.backoff.ms=100"];

fn create_compacted(broker: &Broker, name: &str, extra: &[(&str, &str)]) {
    let admin = broker.admin();
    let mut topic = NewTopic::new(name, 1, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact")
        .set("segment.bytes", "16384")
        .set("min.cleanable.dirty.ratio", "0.01");
    for (k, v) in extra {
        topic = topic.set(k, v);
    }
    let created = futures::executor::block_on(admin.create_topics(&[topic], &admin_options()))
        .expect("CreateTopics");
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
}

/// Everything partition 0 of `topic` holds from its start, read until the end of the
/// partition (the high watermark when the read began).
fn read_partition(broker: &Broker, topic: &str) -> Vec<Consumed> {
    let consumer = broker.consumer(&[("enable.partition.eof", "true")]);
    assign(&consumer, &[(topic, 0, Offset::Beginning)]);
    let deadline = Instant::now() + WAIT;
    let mut out = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "never reached the end of {topic}"
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => out.push(Consumed::of(&m)),
            Some(Err(KafkaError::PartitionEOF(_))) => return out,
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => {}
        }
    }
}

/// The latest value of each key (a tombstone removes the key), as a table built from a
/// compacted topic.
fn table(records: &[Consumed]) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut t = BTreeMap::new();
    for r in records {
        let key = r
            .key
            .clone()
            .expect("records of a compacted topic have keys");
        match &r.value {
            Some(v) => t.insert(key, v.clone()),
            None => t.remove(&key),
        };
    }
    t
}

/// 20 keys x 400 versions and 5 tombstones on a compacted topic read back, once the cleaner
/// has run and `delete.retention.ms` has passed, as the 15 latest values and nothing else:
/// every older version and the tombstones are gone, and offsets are those the producer was
/// given.
#[test]
fn compacted_topic_reads_back_as_the_latest_values() {
    let broker = Broker::start(&CLEANER);
    create_compacted(
        &broker,
        "table",
        &[("delete.retention.ms", "1000"), ("segment.ms", "1000")],
    );
    let producer = broker.producer(&[("linger.ms", "5")]);
    let mut expected = BTreeMap::new();
    for version in 0..400 {
        for key in 0..20 {
            let m = Msg::kv(
                format!("key-{key:02}"),
                format!("value {version} of {key} ").repeat(3),
            );
            producer.send("table", Some(0), &m);
            expected.insert(m.key.clone().unwrap(), m.value.clone().unwrap());
        }
    }
    let mut delivered = producer.flush_ok(FLUSH);
    for key in 0..5 {
        let tombstone = Msg {
            value: None,
            ..Msg::kv(format!("key-{key:02}"), "")
        };
        producer.send("table", Some(0), &tombstone);
        expected.remove(tombstone.key.as_ref().unwrap());
    }
    delivered.extend(producer.flush_ok(FLUSH));
    assert_eq!(delivered.len(), 8005);
    let offsets: BTreeMap<Vec<u8>, i64> = delivered
        .iter()
        .map(|d| (d.key.clone().unwrap(), d.offset))
        .collect();
    // The cleaner rolls the quiet partition's segment after segment.ms, cleans it, and drops
    // the tombstones once delete.retention.ms has passed.
    let deadline = Instant::now() + WAIT;
    let records = loop {
        let records = read_partition(&broker, "table");
        if records.len() == 15 {
            break records;
        }
        assert!(
            Instant::now() < deadline,
            "{} records still there after {WAIT:?}",
            records.len()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(table(&records), expected);
    for r in &records {
        assert!(r.value.is_some(), "a tombstone is left at {}", r.offset);
        assert_eq!(
            Some(&r.offset),
            offsets.get(r.key.as_ref().unwrap()),
            "offset kept"
        );
    }
    assert!(
        broker.log().contains("cleaned"),
        "the cleaner logged its work"
    );
    let segments = common::segment_files(&broker.data_dir(), "table", 0).len();
    assert!(segments <= 4, "{segments} segments left");
}

/// kill -9 at random points while the cleaner works (slowed to 256 KiB/s so it is caught
/// mid-way): after each restart every key reads back with its last acknowledged value, and
/// no half-swapped file is left.
#[test]
fn kill9_during_cleaning_loses_nothing() {
    let mut broker = Broker::start(&[
        "--override",
        "log.cleaner.backoff.ms=50",
        "--override",
        "log.cleaner.io.max.bytes.per.second=262144",
    ]);
    create_compacted(&broker, "ledger", &[]);
    let mut expected = BTreeMap::new();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..6 {
        let producer =
            broker.producer(&[("linger.ms", "5"), ("acks", "all"), ("batch.size", "16000")]);
        for version in 0..40 {
            for key in 0..50 {
                let m = Msg::kv(
                    format!("k{key:02}"),
                    format!("round {round} version {version} ").repeat(4),
                );
                producer.send("ledger", Some(0), &m);
                expected.insert(m.key.clone().unwrap(), m.value.clone().unwrap());
            }
        }
        producer.flush_ok(FLUSH);
        drop(producer);
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(100 + seed % 900));
        broker.kill9();
        broker.restart();
        let leftovers: Vec<_> = std::fs::read_dir(broker.data_dir().join("ledger-0"))
            .expect("partition dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap"))
            .collect();
        assert!(leftovers.is_empty(), "after restart {round}: {leftovers:?}");
        let got = table(&read_partition(&broker, "ledger"));
        assert_eq!(got, expected, "after kill -9 number {round}");
    }
    // Left alone, the cleaner finishes, and what it leaves reads the same.
    let deadline = Instant::now() + WAIT;
    let since_last_start = |log: String| {
        let at = log.rfind("===== test fixture: start").unwrap_or(0);
        log[at..].to_string()
    };
    while !since_last_start(broker.log()).contains("cleaned topic=ledger") {
        assert!(Instant::now() < deadline, "the cleaner never finished");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(table(&read_partition(&broker, "ledger")), expected);
}

/// A record without a key sent to a compacted topic is refused with INVALID_RECORD
/// (KIP-467); records with keys are taken.
#[test]
fn compacted_topic_refuses_records_without_a_key() {
    let broker = Broker::start(&[]);
    create_compacted(&broker, "keyed", &[]);
    let producer = broker.producer(&[("linger.ms", "0"), ("retries", "0")]);
    producer.send(
        "keyed",
        Some(0),
        &Msg {
            key: None,
            ..Msg::kv("", "no key")
        },
    );
    producer.flush(FLUSH);
    let refused = producer.take_deliveries();
    assert_eq!(refused.len(), 1);
    let error = refused[0].error.clone().unwrap_or_default();
    assert!(
        error.contains(&format!("{:?}", RDKafkaErrorCode::InvalidRecord)),
        "{error}"
    );
    producer.send("keyed", Some(0), &Msg::kv("k", "with a key"));
    let taken = producer.flush_ok(FLUSH);
    assert_eq!(taken.len(), 1);
    assert_eq!(broker.watermarks("keyed", 0), (0, 1));
}

/// `__consumer_offsets` is compacted: after a consumer group's librdkafka auto-commits (every
/// 10 ms here, so that a few seconds write what 5-second commits of many partitions write in
/// minutes), the offsets partition is cleaned down to a few segments, a restart replays a
/// small fraction of the commits written, and the group's offsets are intact.
#[test]
fn consumer_offsets_are_compacted() {
    let mut broker = Broker::start(&[
        "--override",
        "log.cleaner.backoff.ms=100",
        "--override",
        "offsets.topic.num.partitions=1",
        "--override",
        "offsets.topic.segment.bytes=16384",
        "--override",
        "group.initial.rebalance.delay.ms=0",
    ]);
    broker.create_topic("events", 4);
    let producer = broker.producer(&[("linger.ms", "5")]);
    let total = 20_000;
    for i in 0..total {
        producer.send(
            "events",
            Some(i % 4),
            &Msg::kv(format!("k{i}"), "x".repeat(100)),
        );
    }
    producer.flush_ok(FLUSH);
    let consumer = broker.consumer(&[
        ("group.id", "committer"),
        ("enable.auto.commit", "true"),
        ("enable.auto.offset.store", "true"),
        ("auto.commit.interval.ms", "10"),
        ("auto.offset.reset", "earliest"),
        ("max.partition.fetch.bytes", "2048"),
    ]);
    consumer.subscribe(&["events"]).expect("subscribe");
    let deadline = Instant::now() + WAIT;
    let mut read = 0;
    while read < total {
        assert!(Instant::now() < deadline, "read {read} of {total}");
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(_)) => {
                read += 1;
                // Slow enough that every auto-commit has new positions to write.
                if read % 10 == 0 {
                    std::thread::sleep(Duration::from_millis(3));
                }
            }
            Some(Err(e)) => panic!("consuming: {e}"),
            None => {}
        }
    }
    // The last auto-commit, then the consumer leaves.
    std::thread::sleep(Duration::from_millis(200));
    drop(consumer);
    let (_, written) = broker.watermarks("__consumer_offsets", 0);
    assert!(written > 500, "only {written} offset records written");
    let deadline = Instant::now() + WAIT;
    loop {
        let files = common::segment_files(&broker.data_dir(), "__consumer_offsets", 0);
        let bytes: u64 = files.iter().map(|f| common::segment_data_bytes(f)).sum();
        if files.len() <= 4 && bytes < 40_000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "__consumer_offsets still {} segments, {bytes} bytes",
            files.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    broker.restart();
    let log = broker.log();
    let after_restart = &log[log.rfind("===== test fixture: start").unwrap_or(0)..];
    let loaded = after_restart
        .lines()
        .find(|l| l.contains("loaded groups from __consumer_offsets"))
        .expect("the coordinator loaded the group")
        .to_string();
    let records: i64 = loaded
        .split_whitespace()
        .find_map(|w| w.strip_prefix("records="))
        .and_then(|n| n.parse().ok())
        .expect("records=");
    eprintln!("{written} offset records written; at restart: {loaded}");
    assert!(
        records * 5 < written,
        "replayed {records} of {written} records"
    );
    let consumer = broker.consumer(&[("group.id", "committer")]);
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..4 {
        tpl.add_partition("events", p);
    }
    let committed = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("OffsetFetch");
    for e in committed.elements() {
        assert_eq!(
            e.offset(),
            Offset::Offset(5000),
            "partition {}",
            e.partition()
        );
    }
}
