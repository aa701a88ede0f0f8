//! Test fixture: the real Shardlog broker, started in this process (`shardlog::start`), the
//! `loadgen` binary run against it, and ways to read back what the broker really holds: rdkafka
//! for watermarks (ListOffsets), records and committed offsets (OffsetFetch), and a few raw
//! requests (kafka-protocol) for what rdkafka does not show: record batches as stored, and
//! KIP-848 group membership (ConsumerGroupDescribe).
//!
//! Every wait has a deadline and fails instead of hanging.
//!
//! Locked memory: glommio pins each executor's io_memory three times plus about 512 KiB of
//! rings, and the kernel charges it per user (8 MiB here). The broker's two shards (64 KiB
//! io_memory each) and a loadgen run (`--io-memory-kib 64`, at most 2 executors) take about
//! 1.4 MiB each, so broker-backed tests run one at a time (a process-wide lock held by
//! [`Broker`]); the most a test then holds is one broker and three loadgen processes.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_group_describe_request::ConsumerGroupDescribeRequest;
use kafka_protocol::messages::consumer_group_describe_response::ConsumerGroupDescribeResponse;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, GroupId, RequestHeader, ResponseHeader,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

/// Bound for one rdkafka or raw request.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound for reading a topic back or for the broker to reach a state a test waits for.
pub const WAIT: Duration = Duration::from_secs(30);
/// Bound for one loadgen process (its own timeouts end it well before).
pub const LOADGEN_TIMEOUT: Duration = Duration::from_secs(90);
/// KIP-848 heartbeat interval the test broker gives members (Kafka's 5 s would make a
/// rebalance between two loadgen processes take many seconds).
pub const HEARTBEAT_INTERVAL_MS: i32 = 500;

/// Serializes broker-backed tests (locked memory; see the module comment).
static SERIAL: Mutex<()> = Mutex::new(());

/// A Shardlog broker running in this process on a fresh data directory and loopback port;
/// stopped (and checked to stop cleanly) on drop.
pub struct Broker {
    running: Option<shardlog::Running>,
    /// `host:port`, as loadgen's `--bootstrap` and rdkafka's `bootstrap.servers` want it.
    pub addr: String,
    dir: tempfile::TempDir,
    /// Last, so the next test starts only once this broker has stopped.
    _serial: MutexGuard<'static, ()>,
}

impl Broker {
    /// Starts a broker from `Config::for_tests` (two shards, smallest io_memory) on a loopback
    /// port the kernel picks; the broker advertises that port in Metadata.
    pub fn start() -> Broker {
        // A test that failed while holding the lock poisons it; the next test is still valid.
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::Builder::new()
            .prefix("loadgen-test-")
            .tempdir()
            .expect("tempdir");
        let mut config = shardlog::config::Config::for_tests(dir.path().join("data"));
        config.groups.consumer_heartbeat_interval_ms = HEARTBEAT_INTERVAL_MS;
        let running = shardlog::start(config).expect("start the broker");
        let port = running.local_addr.port();
        Broker {
            running: Some(running),
            addr: format!("127.0.0.1:{port}"),
            dir,
            _serial: serial,
        }
    }

    /// A fresh path for a loadgen `--json` report.
    pub fn json_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.json"))
    }

    fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.addr)
            .set("socket.timeout.ms", "10000")
            .set("reconnect.backoff.max.ms", "500");
        c
    }

    /// A consumer for assign() and OffsetFetch only (never joins `group`).
    fn consumer(&self, group: &str) -> BaseConsumer {
        self.client_config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "error")
            .set("check.crcs", "true")
            .set("fetch.wait.max.ms", "100")
            .create()
            .expect("create rdkafka consumer")
    }

    /// Creates `topic` with `partitions` partitions (rdkafka's CreateTopics).
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> =
            self.client_config().create().expect("create admin client");
        let opts = AdminOptions::new()
            .request_timeout(Some(CALL_TIMEOUT))
            .operation_timeout(Some(CALL_TIMEOUT));
        let results = futures::executor::block_on(admin.create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &opts,
        ))
        .expect("CreateTopics");
        for r in results {
            r.unwrap_or_else(|(t, e)| panic!("creating {t}: {e:?}"));
        }
    }

    /// Partition count of `topic` per Metadata.
    pub fn partitions(&self, topic: &str) -> i32 {
        let md = self
            .consumer("loadgen-test-reader")
            .fetch_metadata(Some(topic), CALL_TIMEOUT)
            .expect("Metadata");
        let t = &md.topics()[0];
        assert!(t.error().is_none(), "metadata of {topic}: {:?}", t.error());
        t.partitions().len() as i32
    }

    /// High watermark of every partition of `topic` (ListOffsets latest), after checking that
    /// the log starts at 0 (ListOffsets earliest).
    pub fn high_watermarks(&self, topic: &str) -> Vec<i64> {
        let c = self.consumer("loadgen-test-reader");
        (0..self.partitions(topic))
            .map(|p| {
                let (low, high) = c
                    .fetch_watermarks(topic, p, CALL_TIMEOUT)
                    .unwrap_or_else(|e| panic!("ListOffsets {topic}/{p}: {e}"));
                assert_eq!(low, 0, "{topic}/{p} starts at 0");
                high
            })
            .collect()
    }

    /// Waits until the high watermarks of `topic` add up to `total` (acks=0 produce: the
    /// broker may still be appending when loadgen ends); returns them.
    pub fn wait_for_records(&self, topic: &str, total: i64) -> Vec<i64> {
        let deadline = Instant::now() + WAIT;
        loop {
            let hw = self.high_watermarks(topic);
            if hw.iter().sum::<i64>() == total || Instant::now() >= deadline {
                return hw;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every record of `topic` an application sees, read with rdkafka from offset 0 until each
    /// partition reports its end at its high watermark (transaction markers take offsets but
    /// are not records, so the count can be below the watermarks' sum).
    pub fn read_all(&self, topic: &str) -> Vec<Rec> {
        let hw = self.high_watermarks(topic);
        let c: BaseConsumer = self
            .client_config()
            .set("group.id", "loadgen-test-reader")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "error")
            .set("check.crcs", "true")
            .set("fetch.wait.max.ms", "100")
            .set("enable.partition.eof", "true")
            .create()
            .expect("create rdkafka consumer");
        let mut tpl = TopicPartitionList::new();
        for p in 0..hw.len() as i32 {
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .expect("tpl");
        }
        c.assign(&tpl).expect("assign");
        let deadline = Instant::now() + WAIT;
        let mut out = Vec::new();
        let mut at_end = vec![false; hw.len()];
        while !at_end.iter().all(|e| *e) {
            assert!(
                Instant::now() < deadline,
                "read {} records of {topic} within {WAIT:?}; partitions at their end: {at_end:?}",
                out.len()
            );
            match c.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => out.push(Rec {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(|k| k.to_vec()),
                    value: m.payload().map(|v| v.to_vec()).unwrap_or_default(),
                }),
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                    let position = c
                        .position()
                        .ok()
                        .and_then(|tpl| tpl.find_partition(topic, p).map(|e| e.offset()));
                    if let (Some(Offset::Offset(o)), Some(end)) = (position, hw.get(p as usize)) {
                        if o >= *end {
                            at_end[p as usize] = true;
                        }
                    }
                }
                Some(Err(e)) => panic!("reading {topic}: {e}"),
                None => {}
            }
        }
        out
    }

    /// The offsets `group` has committed for each partition of `topic` (OffsetFetch), None
    /// where it has committed nothing.
    pub fn committed(&self, group: &str, topic: &str) -> Vec<Option<i64>> {
        let n = self.partitions(topic);
        let mut tpl = TopicPartitionList::new();
        for p in 0..n {
            tpl.add_partition(topic, p);
        }
        let got = self
            .consumer(group)
            .committed_offsets(tpl, CALL_TIMEOUT)
            .unwrap_or_else(|e| panic!("OffsetFetch {group}: {e}"));
        (0..n)
            .map(
                |p| match got.find_partition(topic, p).expect("asked").offset() {
                    Offset::Offset(o) => Some(o),
                    Offset::Invalid => None,
                    other => panic!("{group} {topic}/{p}: committed {other:?}"),
                },
            )
            .collect()
    }

    /// Waits until `group` has committed exactly `want` on every partition of `topic`.
    pub fn wait_for_commits(&self, group: &str, topic: &str, want: &[i64]) {
        let want: Vec<Option<i64>> = want.iter().map(|&o| Some(o)).collect();
        let deadline = Instant::now() + WAIT;
        loop {
            let got = self.committed(group, topic);
            if got == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "group {group} committed {got:?}, not {want:?}, within {WAIT:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Where librdkafka's `murmur2` partitioner (the Java client's) puts each of `keys` in a
    /// topic of `partitions` partitions: it produces them to a topic of their own and reads
    /// them back.
    pub fn java_partitions(&self, keys: &[String], partitions: i32) -> BTreeMap<Vec<u8>, i32> {
        let topic = "murmur2-oracle";
        self.create_topic(topic, partitions);
        let producer: BaseProducer = self
            .client_config()
            .set("partitioner", "murmur2")
            .set("message.timeout.ms", "10000")
            .create()
            .expect("create rdkafka producer");
        for k in keys {
            producer
                .send(BaseRecord::<str, str>::to(topic).key(k).payload("x"))
                .map_err(|(e, _)| e)
                .expect("queue a record");
        }
        producer.flush(CALL_TIMEOUT).expect("flush");
        let records = self.read_all(topic);
        assert_eq!(records.len(), keys.len());
        records
            .into_iter()
            .map(|r| (r.key.expect("keyed"), r.partition))
            .collect()
    }

    /// Every record batch of `topic`/`partition` as stored, via raw Fetch (v11) requests.
    pub fn batches(&self, topic: &str, partition: i32) -> Vec<Batch> {
        let hw = self.high_watermarks(topic)[partition as usize];
        let mut conn = Raw::connect(&self.addr);
        let mut out = Vec::new();
        let mut offset = 0;
        let deadline = Instant::now() + WAIT;
        while offset < hw {
            assert!(Instant::now() < deadline, "fetching {topic}/{partition}");
            let req = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(100)
                .with_min_bytes(1)
                .with_max_bytes(1 << 20)
                .with_isolation_level(0)
                .with_session_id(0)
                .with_session_epoch(-1)
                .with_topics(vec![FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.into())))
                    .with_partitions(vec![FetchPartition::default()
                        .with_partition(partition)
                        .with_current_leader_epoch(-1)
                        .with_fetch_offset(offset)
                        .with_log_start_offset(-1)
                        .with_partition_max_bytes(1 << 20)])]);
            let resp: FetchResponse = conn.request(ApiKey::Fetch, 11, &req);
            assert_eq!(resp.error_code, 0, "Fetch {topic}/{partition}");
            let part = &resp.responses[0].partitions[0];
            assert_eq!(part.error_code, 0, "Fetch {topic}/{partition}");
            let mut records = part.records.clone().unwrap_or_default();
            while records.len() >= 12 {
                let size = 12 + i32::from_be_bytes(records[8..12].try_into().unwrap()) as usize;
                if records.len() < size {
                    break; // cut at the byte limit: fetched again from its offset
                }
                let mut one = records.split_to(size);
                let base = i64::from_be_bytes(one[..8].try_into().unwrap());
                let set = RecordBatchDecoder::decode(&mut one)
                    .unwrap_or_else(|e| panic!("{topic}/{partition} at {base}: {e:?}"));
                let n = set.records.len() as i64;
                if base + n > offset {
                    let first = &set.records[0];
                    let commit = match (first.control, &first.key) {
                        // Control record key: version (i16), type (i16: 0 abort, 1 commit).
                        (true, Some(k)) if k.len() >= 4 => Some(k[2..4] == [0, 1]),
                        _ => None,
                    };
                    out.push(Batch {
                        base_offset: base,
                        bytes: size,
                        records: n,
                        compression: set.compression,
                        producer_id: first.producer_id,
                        producer_epoch: first.producer_epoch,
                        base_sequence: first.sequence,
                        transactional: first.transactional,
                        control: first.control,
                        commit,
                    });
                }
                offset = offset.max(base + n);
            }
        }
        out
    }

    /// The KIP-848 group `group` as the coordinator describes it (ConsumerGroupDescribe v0).
    pub fn describe_group(&self, group: &str) -> GroupView {
        // Ask the coordinator; on one broker that is the broker itself.
        let mut conn = Raw::connect(&self.addr);
        let req = ConsumerGroupDescribeRequest::default()
            .with_group_ids(vec![GroupId(StrBytes::from_string(group.into()))]);
        let resp: ConsumerGroupDescribeResponse =
            conn.request(ApiKey::ConsumerGroupDescribe, 0, &req);
        let g = &resp.groups[0];
        assert!(
            g.error_code == 0 || g.error_code == 69, // GROUP_ID_NOT_FOUND: never had members
            "ConsumerGroupDescribe {group}: error {}",
            g.error_code
        );
        GroupView {
            state: g.group_state.to_string(),
            members: g
                .members
                .iter()
                .map(|m| {
                    let mut parts: Vec<i32> = m
                        .assignment
                        .topic_partitions
                        .iter()
                        .flat_map(|t| t.partitions.iter().copied())
                        .collect();
                    parts.sort_unstable();
                    (m.member_id.to_string(), parts)
                })
                .collect(),
        }
    }

    /// Waits until `group` is described as `want` says (or fails after [`WAIT`]).
    pub fn wait_for_group(&self, group: &str, what: &str, want: impl Fn(&GroupView) -> bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            let g = self.describe_group(group);
            if want(&g) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "group {group}: not {what} within {WAIT:?}: {g:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            let stopped = r.stop();
            if !std::thread::panicking() {
                stopped.expect("the broker stops cleanly");
            }
        }
    }
}

/// A record read back from the broker.
#[derive(Debug, Clone)]
pub struct Rec {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
}

/// A record batch as stored.
#[derive(Debug, Clone)]
pub struct Batch {
    pub base_offset: i64,
    /// Bytes of the whole batch (header included) as stored.
    pub bytes: usize,
    pub records: i64,
    pub compression: Compression,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub transactional: bool,
    /// A control batch (a transaction marker).
    pub control: bool,
    /// A transaction marker's type: Some(true) commit, Some(false) abort; None for data.
    pub commit: Option<bool>,
}

/// A KIP-848 group as described.
#[derive(Debug, Clone)]
pub struct GroupView {
    pub state: String,
    /// (member id, partitions it owns).
    pub members: Vec<(String, Vec<i32>)>,
}

/// A blocking connection for raw requests.
struct Raw {
    stream: TcpStream,
    correlation_id: i32,
}

impl Raw {
    fn connect(addr: &str) -> Raw {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream.set_read_timeout(Some(CALL_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(CALL_TIMEOUT)).unwrap();
        Raw {
            stream,
            correlation_id: 0,
        }
    }

    fn request<Req: Encodable, Resp: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        req: &Req,
    ) -> Resp {
        self.correlation_id += 1;
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("loadgen-test")))
            .encode(&mut buf, key.request_header_version(version))
            .expect("encode header");
        req.encode(&mut buf, version).expect("encode request");
        let n = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&n.to_be_bytes());
        self.stream.write_all(&buf).expect("send request");
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).expect("response size");
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut body).expect("response body");
        let mut body = Bytes::from(body);
        let header = ResponseHeader::decode(&mut body, key.response_header_version(version))
            .expect("decode response header");
        assert_eq!(header.correlation_id, self.correlation_id);
        let resp = Resp::decode(&mut body, version).expect("decode response");
        assert_eq!(body.remaining(), 0, "{key:?} response fully decoded");
        resp
    }
}

/// Options every loadgen run of the tests gets: no progress line, no pinning (tests share the
/// CPUs), small locked memory, at most two executors.
const COMMON: &[&str] = &[
    "--quiet",
    "--no-pin",
    "--io-memory-kib",
    "64",
    "--threads",
    "2",
];

/// A finished loadgen run.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    /// The `--json` report.
    pub json: Value,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn records(&self) -> u64 {
        self.json["records"].as_u64().expect("records")
    }

    /// Asserts that the run exited 0 and its report says ok with no errors and no shortfall.
    pub fn assert_ok(&self) {
        assert!(
            self.status.success() && self.json["ok"] == true,
            "loadgen did not succeed ({}):\n{}\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        assert_eq!(self.json["errors"], 0);
        assert_eq!(self.json["shortfall"], 0);
        assert!(self.json["aborted"].is_null());
    }

    /// The `group` object of a `consume --group` report.
    pub fn group(&self) -> &Value {
        let g = &self.json["group"];
        assert!(g.is_object(), "no group in the report: {}", self.json);
        g
    }

    /// A `{partition: number}` object of the group report as a map.
    pub fn group_map(&self, field: &str) -> BTreeMap<i32, i64> {
        self.group()[field]
            .as_object()
            .unwrap_or_else(|| panic!("group.{field}: {}", self.json))
            .iter()
            .map(|(p, n)| (p.parse().unwrap(), n.as_i64().unwrap()))
            .collect()
    }

    /// `group.started_at`: the offsets each partition was started at, in order.
    pub fn started_at(&self) -> BTreeMap<i32, Vec<i64>> {
        self.group()["started_at"]
            .as_object()
            .unwrap_or_else(|| panic!("group.started_at: {}", self.json))
            .iter()
            .map(|(p, v)| {
                let offsets = v
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|o| o.as_i64().unwrap())
                    .collect();
                (p.parse().unwrap(), offsets)
            })
            .collect()
    }
}

/// A loadgen process running in the background.
pub struct Loadgen {
    child: Option<Child>,
    json: PathBuf,
    out: PathBuf,
    err: PathBuf,
}

impl Loadgen {
    /// Starts `loadgen ARGS... --bootstrap ADDR --json broker_dir/NAME.json` plus [`COMMON`].
    pub fn spawn(broker: &Broker, name: &str, args: &[&str]) -> Loadgen {
        Loadgen::spawn_at(&broker.addr, broker.dir.path(), name, args)
    }

    /// Starts `loadgen ARGS... --bootstrap ADDR --json DIR/NAME.json` plus [`COMMON`].
    pub fn spawn_at(addr: &str, dir: &std::path::Path, name: &str, args: &[&str]) -> Loadgen {
        let json = dir.join(format!("{name}.json"));
        let out = dir.join(format!("{name}.stdout"));
        let err = dir.join(format!("{name}.stderr"));
        let child = Command::new(env!("CARGO_BIN_EXE_loadgen"))
            .args(args)
            .args(["--bootstrap", addr])
            .arg("--json")
            .arg(&json)
            .args(COMMON)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .expect("start loadgen");
        Loadgen {
            child: Some(child),
            json,
            out,
            err,
        }
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        let child = self.child.as_mut().expect("not waited for yet");
        child.try_wait().expect("try_wait").is_none()
    }

    /// Waits (at most [`LOADGEN_TIMEOUT`]) for the process and reads its report.
    pub fn wait(mut self) -> Run {
        let mut child = self.child.take().expect("waited once");
        let deadline = Instant::now() + LOADGEN_TIMEOUT;
        let status = loop {
            if let Some(s) = child.try_wait().expect("try_wait") {
                break s;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "loadgen still running after {LOADGEN_TIMEOUT:?}:\n{}",
                    std::fs::read_to_string(&self.err).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = std::fs::read_to_string(&self.out).unwrap_or_default();
        let stderr = std::fs::read_to_string(&self.err).unwrap_or_default();
        let text = std::fs::read_to_string(&self.json).unwrap_or_else(|e| {
            panic!("no report ({e}); exit {status}:\n{stdout}\n{stderr}");
        });
        let json = serde_json::from_str(&text).expect("the report is JSON");
        Run {
            status,
            json,
            stdout,
            stderr,
        }
    }
}

impl Drop for Loadgen {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs loadgen to completion (see [`Loadgen::spawn`]).
pub fn loadgen(broker: &Broker, name: &str, args: &[&str]) -> Run {
    Loadgen::spawn(broker, name, args).wait()
}
