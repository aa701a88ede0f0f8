//! Idempotent and transactional producers and read_committed consumers, driven by librdkafka
//! (rdkafka) against a real `shardlog` process.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::{
    ApiKey, DescribeProducersRequest, DescribeProducersResponse, DescribeTransactionsRequest,
    DescribeTransactionsResponse, ListTransactionsRequest, ListTransactionsResponse, RequestHeader,
    ResponseHeader, TopicName, TransactionalId,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use common::{assign, poll_records, Broker, Msg};
use rdkafka::consumer::Consumer;
use rdkafka::producer::Producer as _;
use rdkafka::Offset;
use shardlog::txn::records::{encode_key, encode_value, TxnStatus, TxnValue};

const FLUSH: Duration = Duration::from_secs(15);
const READ: Duration = Duration::from_secs(20);
const TXN: Duration = Duration::from_secs(30);

fn values(records: &[common::Consumed]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect()
}

/// Reads a partition from the start with the given isolation level until `expected` records
/// arrived (and a little longer, so extra records would show), returning their values.
fn read_values(broker: &Broker, topic: &str, isolation: &str, expected: usize) -> Vec<String> {
    let consumer = broker.consumer(&[("isolation.level", isolation)]);
    assign(&consumer, &[(topic, 0, Offset::Beginning)]);
    let (mut got, errors) = poll_records(&consumer, expected, READ);
    assert!(errors.is_empty(), "consumer errors: {errors:?}");
    let (more, _) = poll_records(&consumer, 1, Duration::from_millis(1500));
    got.extend(more);
    values(&got)
}

/// An idempotent producer gets a producer id and writes every record once, with dense
/// offsets; DescribeProducers-level state survives a restart, so the producer continues its
/// sequence on the restarted broker without an error or a duplicate.
#[test]
fn idempotent_producer_writes_each_record_once_across_restart() {
    let mut broker = Broker::start(&[]);
    broker.create_topic("idem", 1);
    let sent: Vec<Msg> = (0..500)
        .map(|i| Msg::kv(format!("k{i}"), format!("v{i}")))
        .collect();
    let producer = broker.producer(&[("enable.idempotence", "true"), ("linger.ms", "2")]);
    for m in &sent[..250] {
        producer.send("idem", Some(0), m);
    }
    producer.flush_ok(FLUSH);
    broker.restart();
    for m in &sent[250..] {
        producer.send("idem", Some(0), m);
    }
    let d = producer.flush_ok(FLUSH);
    assert!(
        d.iter().all(|d| d.error.is_none()),
        "delivery errors: {d:?}"
    );
    let got = broker.consume_all("idem", 0, 0, sent.len(), READ);
    let want: Vec<String> = (0..500).map(|i| format!("v{i}")).collect();
    assert_eq!(values(&got), want);
    assert_eq!(broker.watermarks("idem", 0), (0, 500));
    let snapshots = std::fs::read_dir(broker.data_dir().join("idem-0"))
        .expect("partition dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".snapshot"))
        .count();
    assert!(snapshots >= 1, "a clean stop leaves a producer snapshot");
}

/// commit 100 / abort 100 / commit 100: read_committed sees the 200 committed records,
/// read_uncommitted all 300, and no control record reaches either application.
#[test]
fn read_committed_skips_aborted_transactions() {
    let broker = Broker::start(&[]);
    broker.create_topic("txn", 1);
    let producer = broker.producer(&[("transactional.id", "txn-e2e"), ("linger.ms", "2")]);
    producer
        .inner
        .init_transactions(TXN)
        .expect("init_transactions");
    let mut committed = Vec::new();
    for (round, commit) in [(0, true), (1, false), (2, true)] {
        producer.inner.begin_transaction().expect("begin");
        for i in 0..100 {
            let v = format!("r{round}-{i}");
            producer.send("txn", Some(0), &Msg::kv(format!("k{i}"), v.clone()));
            if commit {
                committed.push(v);
            }
        }
        if commit {
            producer.inner.commit_transaction(TXN).expect("commit");
        } else {
            producer.inner.flush(FLUSH).expect("flush");
            producer.inner.abort_transaction(TXN).expect("abort");
        }
    }
    let all: Vec<String> = (0..3)
        .flat_map(|r| (0..100).map(move |i| format!("r{r}-{i}")))
        .collect();
    assert_eq!(
        read_values(&broker, "txn", "read_committed", 200),
        committed
    );
    assert_eq!(read_values(&broker, "txn", "read_uncommitted", 300), all);
    // Three markers: the log end is past the 300 records.
    assert_eq!(broker.watermarks("txn", 0), (0, 303));
}

/// An open transaction holds read_committed consumers at its first offset; they see its
/// records once it commits.
#[test]
fn open_transaction_holds_the_stable_offset() {
    let broker = Broker::start(&[]);
    broker.create_topic("lso", 1);
    let producer = broker.producer(&[("transactional.id", "lso-e2e"), ("linger.ms", "0")]);
    producer
        .inner
        .init_transactions(TXN)
        .expect("init_transactions");
    producer.inner.begin_transaction().expect("begin");
    for i in 0..10 {
        producer.send("lso", Some(0), &Msg::kv("k", format!("open-{i}")));
    }
    producer.inner.flush(FLUSH).expect("flush");
    let consumer = broker.consumer(&[("isolation.level", "read_committed")]);
    assign(&consumer, &[("lso", 0, Offset::Beginning)]);
    let (early, _) = poll_records(&consumer, 1, Duration::from_secs(2));
    assert!(
        early.is_empty(),
        "read_committed saw uncommitted records: {early:?}"
    );
    // ListOffsets latest: the high watermark for read_uncommitted, the LSO for read_committed.
    let watermarks = |isolation| {
        broker
            .consumer(&[("isolation.level", isolation)])
            .fetch_watermarks("lso", 0, Duration::from_secs(10))
            .expect("ListOffsets")
    };
    assert_eq!(watermarks("read_uncommitted"), (0, 10));
    assert_eq!(watermarks("read_committed"), (0, 0));
    producer.inner.commit_transaction(TXN).expect("commit");
    assert_eq!(watermarks("read_committed"), (0, 11));
    let (got, errors) = poll_records(&consumer, 10, READ);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(got.len(), 10);
}

/// A second producer with the same transactional id fences the first: the first's commit
/// fails, its records are aborted, and the second's are committed.
#[test]
fn new_producer_fences_the_old_one() {
    let broker = Broker::start(&[]);
    broker.create_topic("fence", 1);
    let old = broker.producer(&[("transactional.id", "fence-e2e"), ("linger.ms", "0")]);
    old.inner.init_transactions(TXN).expect("init old");
    old.inner.begin_transaction().expect("begin old");
    old.send("fence", Some(0), &Msg::kv("k", "old"));
    old.inner.flush(FLUSH).expect("flush old");
    let new = broker.producer(&[("transactional.id", "fence-e2e"), ("linger.ms", "0")]);
    new.inner.init_transactions(TXN).expect("init new");
    new.inner.begin_transaction().expect("begin new");
    new.send("fence", Some(0), &Msg::kv("k", "new"));
    new.inner.commit_transaction(TXN).expect("commit new");
    let err = old
        .inner
        .commit_transaction(TXN)
        .expect_err("the old producer is fenced");
    let fenced = match &err {
        rdkafka::error::KafkaError::Transaction(e) => e.is_fatal() || e.txn_requires_abort(),
        _ => false,
    };
    assert!(fenced, "unexpected error: {err}");
    assert_eq!(
        read_values(&broker, "fence", "read_committed", 1),
        vec!["new"]
    );
}

/// A transaction left open past its timeout is aborted by the broker: read_committed
/// consumers move past it, and its producer can no longer commit it.
#[test]
fn timed_out_transaction_is_aborted() {
    let broker = Broker::start(&[
        "--override",
        "transaction.abort.timed.out.transaction.cleanup.interval.ms=200",
    ]);
    broker.create_topic("timeout", 1);
    let stale = broker.producer(&[
        ("transactional.id", "timeout-e2e"),
        ("transaction.timeout.ms", "2000"),
        // librdkafka wants its socket timeout within the transaction timeout.
        ("socket.timeout.ms", "2000"),
        ("message.timeout.ms", "2000"),
        ("linger.ms", "0"),
    ]);
    stale.inner.init_transactions(TXN).expect("init");
    stale.inner.begin_transaction().expect("begin");
    stale.send("timeout", Some(0), &Msg::kv("k", "abandoned"));
    stale.inner.flush(FLUSH).expect("flush");
    let other = broker.producer(&[("transactional.id", "timeout-other"), ("linger.ms", "0")]);
    other.inner.init_transactions(TXN).expect("init other");
    other.inner.begin_transaction().expect("begin other");
    other.send("timeout", Some(0), &Msg::kv("k", "later"));
    other.inner.commit_transaction(TXN).expect("commit other");
    assert_eq!(
        read_values(&broker, "timeout", "read_committed", 1),
        vec!["later"]
    );
    assert!(stale.inner.commit_transaction(TXN).is_err());
}

/// Offsets sent to a transaction become the group's committed offsets when it commits, and
/// do not when it aborts.
#[test]
fn offsets_commit_with_the_transaction() {
    let broker = Broker::start(&[]);
    broker.create_topic("in", 1);
    broker.create_topic("out", 1);
    let group_consumer =
        broker.consumer(&[("group.id", "ctp"), ("isolation.level", "read_committed")]);
    let producer = broker.producer(&[("transactional.id", "ctp-e2e"), ("linger.ms", "0")]);
    producer.inner.init_transactions(TXN).expect("init");
    let metadata = group_consumer.group_metadata().expect("group metadata");
    let mut offsets = rdkafka::TopicPartitionList::new();
    for (offset, commit) in [(5, false), (7, true)] {
        offsets
            .add_partition_offset("in", 0, Offset::Offset(offset))
            .expect("offset");
        producer.inner.begin_transaction().expect("begin");
        producer.send("out", Some(0), &Msg::kv("k", format!("upto-{offset}")));
        producer
            .inner
            .send_offsets_to_transaction(&offsets, &metadata, TXN)
            .expect("send offsets");
        producer.inner.flush(FLUSH).expect("flush");
        if commit {
            producer.inner.commit_transaction(TXN).expect("commit");
        } else {
            producer.inner.abort_transaction(TXN).expect("abort");
        }
        let mut ask = rdkafka::TopicPartitionList::new();
        ask.add_partition("in", 0);
        let committed = group_consumer
            .committed_offsets(ask, Duration::from_secs(10))
            .expect("committed offsets");
        let got = committed
            .find_partition("in", 0)
            .expect("partition")
            .offset();
        let want = if commit {
            Offset::Offset(7)
        } else {
            Offset::Invalid
        };
        assert_eq!(
            got, want,
            "after the transaction up to {offset} (commit={commit})"
        );
    }
    let out: BTreeSet<String> = read_values(&broker, "out", "read_committed", 1)
        .into_iter()
        .collect();
    assert_eq!(out, BTreeSet::from(["upto-7".to_string()]));
}

/// A kill -9 in the middle of a transaction over partitions of both shards leaves nothing
/// half-visible: after the restart the coordinator finds the transaction open, aborts it at
/// its timeout, and read_committed consumers move past its records to later commits.
#[test]
fn kill_mid_transaction_aborts_it_after_restart() {
    let mut broker = Broker::start(&[
        "--override",
        "transaction.abort.timed.out.transaction.cleanup.interval.ms=200",
    ]);
    broker.create_topic("midway", 1);
    broker.create_topic("midway-b", 4);
    let stale = broker.producer(&[
        ("transactional.id", "midway-e2e"),
        ("transaction.timeout.ms", "3000"),
        ("socket.timeout.ms", "3000"),
        ("message.timeout.ms", "3000"),
        ("linger.ms", "0"),
    ]);
    stale.inner.init_transactions(TXN).expect("init");
    stale.inner.begin_transaction().expect("begin");
    stale.send("midway", Some(0), &Msg::kv("k", "half-0"));
    for p in 0..4 {
        stale.send("midway-b", Some(p), &Msg::kv("k", format!("half-b{p}")));
    }
    stale.inner.flush(FLUSH).expect("flush");
    broker.kill9();
    drop(stale);
    broker.restart();
    assert_eq!(
        read_values(&broker, "midway", "read_uncommitted", 1),
        vec!["half-0"]
    );
    let other = broker.producer(&[("transactional.id", "midway-other"), ("linger.ms", "0")]);
    other.inner.init_transactions(TXN).expect("init other");
    other.inner.begin_transaction().expect("begin other");
    other.send("midway", Some(0), &Msg::kv("k", "after"));
    other.inner.commit_transaction(TXN).expect("commit other");
    assert_eq!(
        read_values(&broker, "midway", "read_committed", 1),
        vec!["after"]
    );
}

/// Sends one request with kafka-protocol's encoders and decodes its response.
fn call<Req, Resp>(broker: &Broker, key: ApiKey, version: i16, req: &Req) -> Resp
where
    Req: Encodable,
    Resp: Decodable,
{
    let mut stream = TcpStream::connect(broker.addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("txn-e2e")));
    let mut body = BytesMut::new();
    header
        .encode(&mut body, key.request_header_version(version))
        .expect("header");
    req.encode(&mut body, version).expect("request");
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    stream.write_all(&frame).expect("write");
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).expect("response size");
    let mut buf = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut buf).expect("response");
    let mut buf = Bytes::from(buf);
    ResponseHeader::decode(&mut buf, key.response_header_version(version)).expect("header");
    Resp::decode(&mut buf, version).expect("response body")
}

/// ListTransactions, DescribeTransactions and DescribeProducers report an open transaction as
/// Kafka's admin tools show it: its state, producer, partitions and first offset.
#[test]
fn admin_apis_describe_an_open_transaction() {
    let broker = Broker::start(&[]);
    broker.create_topic("adm", 2);
    let producer = broker.producer(&[("transactional.id", "adm-e2e"), ("linger.ms", "0")]);
    producer.inner.init_transactions(TXN).expect("init");
    producer.inner.begin_transaction().expect("begin");
    producer.send("adm", Some(1), &Msg::kv("k", "open"));
    producer.inner.flush(FLUSH).expect("flush");

    let listed: ListTransactionsResponse = call(
        &broker,
        ApiKey::ListTransactions,
        1,
        &ListTransactionsRequest::default(),
    );
    let ours: Vec<_> = listed
        .transaction_states
        .iter()
        .filter(|t| t.transactional_id.0.as_str() == "adm-e2e")
        .collect();
    assert_eq!(ours.len(), 1, "{listed:?}");
    assert_eq!(ours[0].transaction_state.as_str(), "Ongoing");
    let pid = ours[0].producer_id;

    let described: DescribeTransactionsResponse = call(
        &broker,
        ApiKey::DescribeTransactions,
        0,
        &DescribeTransactionsRequest::default()
            .with_transactional_ids(vec![TransactionalId(StrBytes::from_static_str("adm-e2e"))]),
    );
    let state = &described.transaction_states[0];
    assert_eq!((state.error_code, state.producer_id), (0, pid));
    assert_eq!(state.transaction_state.as_str(), "Ongoing");
    assert_eq!(state.topics.len(), 1);
    assert_eq!(state.topics[0].partitions, vec![1]);

    let producers: DescribeProducersResponse = call(
        &broker,
        ApiKey::DescribeProducers,
        0,
        &DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
            .with_name(TopicName(StrBytes::from_static_str("adm")))
            .with_partition_indexes(vec![0, 1])]),
    );
    let parts = &producers.topics[0].partitions;
    assert!(parts[0].active_producers.is_empty(), "{parts:?}");
    let active = &parts[1].active_producers;
    assert_eq!(active.len(), 1, "{parts:?}");
    assert_eq!(active[0].producer_id, pid);
    assert_eq!(active[0].current_txn_start_offset, 0);
    producer.inner.commit_transaction(TXN).expect("commit");
}

/// A transactional id unused for `transactional.id.expiration.ms` is removed: DescribeTransactions
/// no longer knows it, and a new producer with it starts afresh.
#[test]
fn idle_transactional_id_expires() {
    let broker = Broker::start(&[
        "--override",
        "transactional.id.expiration.ms=500",
        "--override",
        "transaction.remove.expired.transaction.cleanup.interval.ms=100",
        "--override",
        "transaction.abort.timed.out.transaction.cleanup.interval.ms=100",
    ]);
    broker.create_topic("expire", 1);
    let producer = broker.producer(&[("transactional.id", "expire-e2e"), ("linger.ms", "0")]);
    producer.inner.init_transactions(TXN).expect("init");
    producer.inner.begin_transaction().expect("begin");
    producer.send("expire", Some(0), &Msg::kv("k", "v"));
    producer.inner.commit_transaction(TXN).expect("commit");
    let describe = || -> i16 {
        let r: DescribeTransactionsResponse = call(
            &broker,
            ApiKey::DescribeTransactions,
            0,
            &DescribeTransactionsRequest::default().with_transactional_ids(vec![TransactionalId(
                StrBytes::from_static_str("expire-e2e"),
            )]),
        );
        r.transaction_states[0].error_code
    };
    assert_eq!(describe(), 0, "known right after its commit");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while describe() == 0 {
        assert!(std::time::Instant::now() < deadline, "the id never expired");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        describe(),
        kafka_protocol::ResponseError::TransactionalIdNotFound.code()
    );
}

/// A crash after the coordinator wrote PrepareCommit but before the markers: at start-up the
/// coordinator finds the prepared state, writes the markers and completes the commit, so the
/// transaction's records become visible to read_committed consumers. (The crash is staged by
/// appending the PrepareCommit record, in Kafka's format, to the stopped broker's
/// `__transaction_state` partition.)
#[test]
fn prepared_commit_is_finished_at_start() {
    let mut broker = Broker::start(&[]);
    broker.create_topic("resume", 1);
    let producer = broker.producer(&[("transactional.id", "resume-e2e"), ("linger.ms", "0")]);
    producer.inner.init_transactions(TXN).expect("init");
    producer.inner.begin_transaction().expect("begin");
    producer.send("resume", Some(0), &Msg::kv("k", "prepared"));
    producer.inner.flush(FLUSH).expect("flush");
    let describe = |broker: &Broker| {
        let r: DescribeTransactionsResponse = call(
            broker,
            ApiKey::DescribeTransactions,
            0,
            &DescribeTransactionsRequest::default().with_transactional_ids(vec![TransactionalId(
                StrBytes::from_static_str("resume-e2e"),
            )]),
        );
        r.transaction_states[0].clone()
    };
    let open = describe(&broker);
    assert_eq!(open.transaction_state.as_str(), "Ongoing");
    broker.stop();
    drop(producer);

    // What the coordinator writes first when EndTxn(commit) arrives.
    let prepared = TxnValue {
        producer_id: open.producer_id.0,
        producer_epoch: open.producer_epoch,
        timeout_ms: open.transaction_timeout_ms,
        status: TxnStatus::PrepareCommit,
        partitions: vec![("resume".to_string(), vec![0])],
        last_update_ms: open.transaction_start_time_ms,
        start_ms: open.transaction_start_time_ms,
    };
    let partition = shardlog::util::key_partition("resume-e2e", 50);
    let segment = common::segment_files(&broker.data_dir(), "__transaction_state", partition)
        .pop()
        .expect("a segment");
    let mut bytes = std::fs::read(&segment).expect("segment");
    let mut next_offset = 0;
    let mut at = 0;
    while let Some(h) = shardlog::log::batch::check_stored_batch(&bytes[at..]) {
        next_offset = h.last_offset() + 1;
        at += h.total_bytes as usize;
    }
    bytes.truncate(at);
    let mut record = shardlog::log::batch::encode_batch(
        [(
            Some(encode_key("resume-e2e")),
            Some(encode_value(&prepared)),
            0,
        )],
        kafka_protocol::records::Compression::None,
    );
    shardlog::log::batch::assign_offset(&mut record, next_offset, 0);
    bytes.extend_from_slice(&record);
    std::fs::write(&segment, &bytes).expect("write segment");

    broker.restart();
    assert_eq!(
        read_values(&broker, "resume", "read_committed", 1),
        vec!["prepared"]
    );
    let done = describe(&broker);
    assert_eq!(done.transaction_state.as_str(), "CompleteCommit");
}
