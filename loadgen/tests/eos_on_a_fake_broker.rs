//! The `loadgen` binary as an idempotent and a transactional producer, against a small fake
//! broker that speaks the transaction APIs the real one does not serve yet (issue 9):
//! ApiVersions, Metadata, InitProducerId, FindCoordinator, AddPartitionsToTxn, EndTxn and
//! Produce. The fake checks every request as Kafka would (CRC, producer id and epoch, sequence
//! per producer and partition, transactional batches only for partitions added to the open
//! transaction, the transactional id in Produce) and records what it saw; the tests assert
//! that it saw no violation and the exact counts. Once the broker serves these APIs, the
//! ignored tests of `against_shardlog.rs` check the same against it.
//!
//! No test asserts a speed or a latency value; every wait is bounded.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use common::Loadgen;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, ApiVersionsResponse, BrokerId,
    EndTxnRequest, EndTxnResponse, FindCoordinatorRequest, FindCoordinatorResponse,
    InitProducerIdRequest, InitProducerIdResponse, MetadataRequest, MetadataResponse,
    ProduceRequest, ProduceResponse, RequestHeader, RequestKind, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::RecordBatchDecoder;

const PARTITIONS: i32 = 4;
const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
const INVALID_TXN_STATE: i16 = 48;
const CONCURRENT_TRANSACTIONS: i16 = 51;
const INVALID_PRODUCER_EPOCH: i16 = 47;

/// Versions the fake offers (beyond what loadgen speaks, to see it cap them).
const OFFERED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 9),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 1, 12),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::AddPartitionsToTxn, 0, 5),
    (ApiKey::EndTxn, 0, 5),
];

/// What the fake saw.
#[derive(Default, Debug)]
struct Seen {
    next_pid: i64,
    /// Transactional id → producer id.
    txn_ids: BTreeMap<String, i64>,
    /// Producer ids given with a null transactional id.
    idempotent: BTreeSet<i64>,
    /// InitProducerId: (transactional id, transaction timeout).
    inits: Vec<(Option<String>, i32)>,
    /// Producer id → partitions in its open transaction.
    open: BTreeMap<i64, BTreeSet<i32>>,
    /// Producer id → records in its open transaction.
    open_records: BTreeMap<i64, i64>,
    /// (producer id, partition) → next expected sequence.
    next_seq: BTreeMap<(i64, i32), i32>,
    /// Records stored per partition.
    records: BTreeMap<i32, i64>,
    batches: u64,
    transactional_batches: u64,
    committed_txns: u64,
    committed_records: i64,
    /// Versions loadgen used, per API.
    versions: BTreeMap<String, BTreeSet<i16>>,
    /// Reply CONCURRENT_TRANSACTIONS to the next AddPartitionsToTxn of a producer (set after
    /// each EndTxn, as Kafka may while it writes the markers).
    busy_after_end: bool,
    busy: BTreeSet<i64>,
    retried_add_partitions: u64,
    violations: Vec<String>,
}

impl Seen {
    fn violation(&mut self, why: String) {
        if self.violations.len() < 20 {
            self.violations.push(why);
        }
    }
}

struct Fake {
    addr: String,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    dir: tempfile::TempDir,
}

impl Fake {
    fn start(busy_after_end: bool) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Seen {
            next_pid: 1000,
            busy_after_end,
            ..Default::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (seen, stop, addr) = (seen.clone(), stop.clone(), addr.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((s, _)) => {
                            let (seen, addr) = (seen.clone(), addr.clone());
                            std::thread::spawn(move || serve(s, &addr, &seen));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            });
        }
        Fake {
            addr,
            seen,
            stop,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, name: &str, args: &[&str]) -> common::Run {
        Loadgen::spawn_at(&self.addr, self.dir.path(), name, args).wait()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Answers one connection's requests in order until it closes.
fn serve(mut s: TcpStream, addr: &str, seen: &Mutex<Seen>) {
    s.set_nodelay(true).ok();
    loop {
        let mut size = [0u8; 4];
        if s.read_exact(&mut size).is_err() {
            return;
        }
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        if s.read_exact(&mut body).is_err() {
            return;
        }
        let mut body = Bytes::from(body);
        let key = ApiKey::try_from(i16::from_be_bytes([body[0], body[1]])).unwrap();
        let version = i16::from_be_bytes([body[2], body[3]]);
        let header = RequestHeader::decode(&mut body, key.request_header_version(version)).unwrap();
        seen.lock()
            .unwrap()
            .versions
            .entry(format!("{key:?}"))
            .or_default()
            .insert(version);
        let req = RequestKind::decode(key, &mut body, version)
            .unwrap_or_else(|e| panic!("fake: decoding {key:?} v{version}: {e}"));
        assert_eq!(body.remaining(), 0, "{key:?} v{version} fully decoded");
        let mut out = BytesMut::new();
        out.put_i32(0);
        ResponseHeader::default()
            .with_correlation_id(header.correlation_id)
            .encode(&mut out, key.response_header_version(version))
            .unwrap();
        let mut seen = seen.lock().unwrap();
        match req {
            RequestKind::ApiVersions(_) => api_versions().encode(&mut out, version),
            RequestKind::Metadata(r) => metadata(&r, addr).encode(&mut out, version),
            RequestKind::InitProducerId(r) => {
                init_producer_id(&r, &mut seen).encode(&mut out, version)
            }
            RequestKind::FindCoordinator(r) => {
                find_coordinator(&r, version, addr, &mut seen).encode(&mut out, version)
            }
            RequestKind::AddPartitionsToTxn(r) => {
                add_partitions(&r, version, &mut seen).encode(&mut out, version)
            }
            RequestKind::EndTxn(r) => end_txn(&r, &mut seen).encode(&mut out, version),
            RequestKind::Produce(r) => {
                let resp = produce(&r, &mut seen);
                if r.acks == 0 {
                    continue;
                }
                resp.encode(&mut out, version)
            }
            other => panic!("fake: no answer for {other:?}"),
        }
        .unwrap();
        drop(seen);
        let n = (out.len() - 4) as i32;
        out[..4].copy_from_slice(&n.to_be_bytes());
        if s.write_all(&out).is_err() {
            return;
        }
    }
}

fn api_versions() -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(
        OFFERED
            .iter()
            .map(|&(k, lo, hi)| {
                ApiVersion::default()
                    .with_api_key(k as i16)
                    .with_min_version(lo)
                    .with_max_version(hi)
            })
            .collect(),
    )
}

fn metadata(r: &MetadataRequest, addr: &str) -> MetadataResponse {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let topics = r.topics.clone().unwrap_or_default();
    MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(0))
            .with_host(StrBytes::from_string(host.into()))
            .with_port(port.parse().unwrap())])
        .with_controller_id(BrokerId(0))
        .with_topics(
            topics
                .iter()
                .map(|t| {
                    MetadataResponseTopic::default()
                        .with_name(t.name.clone())
                        .with_partitions(
                            (0..PARTITIONS)
                                .map(|p| {
                                    MetadataResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_leader_id(BrokerId(0))
                                        .with_replica_nodes(vec![BrokerId(0)])
                                        .with_isr_nodes(vec![BrokerId(0)])
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
}

fn init_producer_id(r: &InitProducerIdRequest, seen: &mut Seen) -> InitProducerIdResponse {
    let txn = r.transactional_id.as_ref().map(|t| t.0.to_string());
    seen.inits.push((txn.clone(), r.transaction_timeout_ms));
    if r.producer_id.0 != -1 || r.producer_epoch != -1 {
        seen.violation(format!("InitProducerId of a new producer with {r:?}"));
    }
    let pid = seen.next_pid;
    seen.next_pid += 1;
    match txn {
        Some(t) => {
            if seen.txn_ids.insert(t.clone(), pid).is_some() {
                seen.violation(format!("InitProducerId twice for {t}"));
            }
        }
        None => {
            seen.idempotent.insert(pid);
        }
    }
    InitProducerIdResponse::default()
        .with_producer_id(pid.into())
        .with_producer_epoch(0)
}

fn find_coordinator(
    r: &FindCoordinatorRequest,
    version: i16,
    addr: &str,
    seen: &mut Seen,
) -> FindCoordinatorResponse {
    if r.key_type != 1 {
        seen.violation(format!("FindCoordinator key type {}", r.key_type));
    }
    let (host, port) = addr.rsplit_once(':').unwrap();
    let host = StrBytes::from_string(host.into());
    let port: i32 = port.parse().unwrap();
    if version >= 4 {
        FindCoordinatorResponse::default().with_coordinators(
            r.coordinator_keys
                .iter()
                .map(|k| {
                    Coordinator::default()
                        .with_key(k.clone())
                        .with_node_id(BrokerId(0))
                        .with_host(host.clone())
                        .with_port(port)
                })
                .collect(),
        )
    } else {
        FindCoordinatorResponse::default()
            .with_node_id(BrokerId(0))
            .with_host(host)
            .with_port(port)
    }
}

/// The producer id of transactional id `id` if `pid`/`epoch` are its own; else a violation.
fn txn_producer(seen: &mut Seen, what: &str, id: &str, pid: i64, epoch: i16) -> Option<i64> {
    match seen.txn_ids.get(id) {
        Some(&p) if p == pid && epoch == 0 => Some(p),
        other => {
            seen.violation(format!(
                "{what}: {id} with producer {pid}/{epoch}, known {other:?}"
            ));
            None
        }
    }
}

fn add_partitions(
    r: &AddPartitionsToTxnRequest,
    version: i16,
    seen: &mut Seen,
) -> AddPartitionsToTxnResponse {
    if version > 3 {
        seen.violation(format!("AddPartitionsToTxn v{version}"));
    }
    let pid = txn_producer(
        seen,
        "AddPartitionsToTxn",
        r.v3_and_below_transactional_id.0.as_str(),
        r.v3_and_below_producer_id.0,
        r.v3_and_below_producer_epoch,
    );
    let busy = pid.is_some_and(|p| seen.busy.remove(&p));
    if busy {
        seen.retried_add_partitions += 1;
    }
    let mut topics = Vec::new();
    for t in &r.v3_and_below_topics {
        let mut results = Vec::new();
        for &p in &t.partitions {
            let code = match pid {
                None => INVALID_PRODUCER_EPOCH,
                Some(_) if busy => CONCURRENT_TRANSACTIONS,
                Some(pid) => {
                    if !seen.open.entry(pid).or_default().insert(p) {
                        seen.violation(format!("partition {p} added twice to {pid}'s transaction"));
                    }
                    0
                }
            };
            results.push(
                AddPartitionsToTxnPartitionResult::default()
                    .with_partition_index(p)
                    .with_partition_error_code(code),
            );
        }
        topics.push(
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(results),
        );
    }
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(topics)
}

fn end_txn(r: &EndTxnRequest, seen: &mut Seen) -> EndTxnResponse {
    let Some(pid) = txn_producer(
        seen,
        "EndTxn",
        r.transactional_id.0.as_str(),
        r.producer_id.0,
        r.producer_epoch,
    ) else {
        return EndTxnResponse::default().with_error_code(INVALID_PRODUCER_EPOCH);
    };
    if !r.committed {
        seen.violation(format!("{pid}: transaction aborted"));
    }
    let parts = seen.open.remove(&pid).unwrap_or_default();
    let n = seen.open_records.remove(&pid).unwrap_or(0);
    if parts.is_empty() || n == 0 {
        seen.violation(format!("{pid}: EndTxn of an empty transaction"));
    }
    seen.committed_txns += 1;
    seen.committed_records += n;
    if seen.busy_after_end {
        seen.busy.insert(pid);
    }
    EndTxnResponse::default()
}

fn produce(r: &ProduceRequest, seen: &mut Seen) -> ProduceResponse {
    if r.acks != -1 {
        seen.violation(format!("Produce with acks {}", r.acks));
    }
    let txn_id = r.transactional_id.as_ref().map(|t| t.0.to_string());
    let mut responses = Vec::new();
    for t in &r.topic_data {
        let mut parts = Vec::new();
        for pd in &t.partition_data {
            let code = produce_batch(
                seen,
                txn_id.as_deref(),
                pd.index,
                pd.records.clone().unwrap(),
            );
            let base = *seen.records.get(&pd.index).unwrap_or(&0);
            parts.push(
                PartitionProduceResponse::default()
                    .with_index(pd.index)
                    .with_error_code(code)
                    .with_base_offset(base),
            );
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(t.name.clone())
                .with_partition_responses(parts),
        );
    }
    ProduceResponse::default().with_responses(responses)
}

/// Checks and stores one partition's batch; the error code to answer.
fn produce_batch(seen: &mut Seen, txn_id: Option<&str>, partition: i32, records: Bytes) -> i16 {
    let info = RecordBatchDecoder::decode_batch_info(&mut records.clone()).unwrap();
    assert_eq!(info.len(), 1, "one batch per partition");
    let info = &info[0];
    // The full decode checks the CRC.
    let set = RecordBatchDecoder::decode(&mut records.clone())
        .unwrap_or_else(|e| panic!("partition {partition}: bad batch: {e}"));
    let n = set.records.len() as i32;
    let pid = info.producer_id;
    let known_txn = seen.txn_ids.values().any(|&p| p == pid);
    if !(seen.idempotent.contains(&pid) || known_txn) || info.producer_epoch != 0 {
        seen.violation(format!(
            "partition {partition}: unknown producer {pid}/{}",
            info.producer_epoch
        ));
        return INVALID_PRODUCER_EPOCH;
    }
    if info.transactional != known_txn {
        seen.violation(format!(
            "partition {partition}: producer {pid} transactional={}",
            info.transactional
        ));
    }
    if info.transactional {
        let ok = txn_id.is_some_and(|t| seen.txn_ids.get(t) == Some(&pid));
        if !ok {
            seen.violation(format!("partition {partition}: transactional batch of {pid} with transactional id {txn_id:?}"));
            return INVALID_TXN_STATE;
        }
        if !seen.open.get(&pid).is_some_and(|s| s.contains(&partition)) {
            seen.violation(format!(
                "partition {partition}: {pid} wrote before adding it to its transaction"
            ));
            return INVALID_TXN_STATE;
        }
        *seen.open_records.entry(pid).or_default() += n as i64;
        seen.transactional_batches += 1;
    }
    let want = seen.next_seq.entry((pid, partition)).or_insert(0);
    if info.base_sequence != *want {
        let why = format!(
            "partition {partition}: {pid} sequence {} expected {want}",
            info.base_sequence
        );
        seen.violation(why);
        return OUT_OF_ORDER_SEQUENCE_NUMBER;
    }
    *want = if *want > i32::MAX - n {
        n - (i32::MAX - *want) - 1
    } else {
        *want + n
    };
    *seen.records.entry(partition).or_default() += n as i64;
    seen.batches += 1;
    0
}

fn produce_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "produce",
        "--topic",
        "t",
        "--partitions",
        "4",
        "--record-bytes",
        "100",
        "--records",
        "3000",
        "--keys",
        "10",
        "--batch-bytes",
        "1000",
        "--producers",
        "2",
    ];
    v.extend_from_slice(extra);
    v
}

/// Proves an idempotent run asks one producer id per producer (null transactional id) and
/// numbers its batches per producer and partition without gap, so the broker takes every one.
#[test]
fn idempotent_producers_number_their_batches() {
    let fake = Fake::start(false);
    let r = fake.run("idempotent", &produce_args(&["--idempotent"]));
    let seen = fake.seen.lock().unwrap();
    assert!(seen.violations.is_empty(), "{:#?}", seen.violations);
    r.assert_ok();
    assert_eq!(r.records(), 3000);
    assert_eq!(seen.records.values().sum::<i64>(), 3000);
    assert_eq!(seen.idempotent.len(), 2, "a producer id per producer");
    assert!(seen.txn_ids.is_empty());
    assert_eq!(seen.inits, vec![(None, -1), (None, -1)]);
    assert!(
        seen.batches > 8,
        "several batches per partition: {}",
        seen.batches
    );
    assert_eq!(seen.transactional_batches, 0);
    // Versions: the highest offered up to the first transaction protocol.
    assert_eq!(seen.versions["InitProducerId"], BTreeSet::from([4]));
    assert_eq!(r.json["parameters"]["versions"]["init_producer_id"], 4);
    assert_eq!(r.json["parameters"]["idempotent"], true);
    assert!(r.json.get("transactions").is_none());
}

/// Proves a transactional run finds its coordinator, gets a producer id per transactional id
/// (PREFIX-i, with the transaction timeout), adds every partition once per transaction before
/// writing to it (retrying the CONCURRENT_TRANSACTIONS Kafka may answer right after a
/// commit), sends transactional batches with its transactional id, and commits every
/// --txn-records records: 1,500 records a producer, 400 a transaction, so 4 transactions
/// each, the last one partial.
#[test]
fn transactional_producers_commit_every_n_records() {
    let fake = Fake::start(true);
    let r = fake.run(
        "transactional",
        &produce_args(&["--transactional-id", "lg", "--txn-records", "400"]),
    );
    let seen = fake.seen.lock().unwrap();
    assert!(seen.violations.is_empty(), "{:#?}", seen.violations);
    r.assert_ok();
    assert_eq!(r.records(), 3000);
    let ids: Vec<&String> = seen.txn_ids.keys().collect();
    assert_eq!(ids, ["lg-0", "lg-1"]);
    assert!(seen.idempotent.is_empty());
    assert!(
        seen.inits.iter().all(|(_, t)| *t == 60_000),
        "{:?}",
        seen.inits
    );
    assert_eq!(seen.committed_txns, 8, "4 transactions per producer");
    assert_eq!(
        seen.committed_records, 3000,
        "every record in a committed transaction"
    );
    assert!(
        seen.open.is_empty() && seen.open_records.is_empty(),
        "nothing left open"
    );
    assert!(
        seen.retried_add_partitions >= 6,
        "retried after each commit but the last"
    );
    assert_eq!(seen.transactional_batches, seen.batches);
    for (api, v) in [
        ("FindCoordinator", 6),
        ("InitProducerId", 4),
        ("AddPartitionsToTxn", 3),
        ("EndTxn", 4),
    ] {
        assert_eq!(seen.versions[api], BTreeSet::from([v]), "{api}");
    }
    let p = &r.json["parameters"];
    assert_eq!(p["transactional_id"], "lg");
    assert_eq!(p["txn_records"], 400);
    assert_eq!(p["transaction_timeout_ms"], 60_000);
    assert_eq!(p["versions"]["end_txn"], 4);
    assert_eq!(p["versions"]["add_partitions_to_txn"], 3);
    assert_eq!(r.json["transactions"]["committed"], 8);
    assert_eq!(r.json["transactions"]["aborted"], 0);
    assert_eq!(r.json["end_txn_latency_us"]["count"], 8);
}

/// Proves a timed transactional run at a rate commits its last, partial transaction too.
#[test]
fn transactional_timed_run_commits_the_last_transaction() {
    let fake = Fake::start(false);
    let r = fake.run(
        "transactional-timed",
        &[
            "produce",
            "--topic",
            "t",
            "--record-bytes",
            "50",
            "--duration-s",
            "1",
            "--rate",
            "1500",
            "--transactional-id",
            "timed",
            "--txn-records",
            "200",
        ],
    );
    let seen = fake.seen.lock().unwrap();
    assert!(seen.violations.is_empty(), "{:#?}", seen.violations);
    r.assert_ok();
    assert_eq!(r.records(), 1500);
    assert_eq!(seen.committed_records, 1500);
    assert_eq!(seen.committed_txns, 8, "7 of 200 and one of 100");
}
