//! A fake Kafka broker for unit tests: one node, one topic with a fixed number of partitions,
//! in memory. It answers ApiVersions, Metadata, CreateTopics, Produce, ListOffsets and Fetch,
//! checks every produced batch (CRC, decoding) and records what it saw, so the actors can be
//! tested without a real broker. For consumer groups it answers FindCoordinator,
//! ConsumerGroupHeartbeat (a simplified KIP-848 coordinator: partitions dealt round-robin to
//! the members, a partition given to a member only once no other member holds it), OffsetFetch
//! and OffsetCommit (checking member id and epoch).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{decode_request_header_from_buffer, Decodable, Encodable, StrBytes};
use kafka_protocol::records::RecordBatchDecoder;

use crate::utils::batch::BatchHeader;

/// What the fake broker saw.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    pub produce_requests: u64,
    /// Most produce requests received on one connection but not yet answered.
    pub max_outstanding: usize,
    /// Records per partition.
    pub records: BTreeMap<i32, u64>,
    /// (key, partition) of every keyed record.
    pub keys: Vec<(Bytes, i32)>,
    /// Batches that failed to decode (CRC or format).
    pub bad_batches: u64,
    /// Produce requests that carried two batches for one partition.
    pub duplicate_partitions: u64,
    pub acks: Vec<i16>,
    pub fetches: u64,
    /// Consumer groups: every member id that joined (epoch 0), in order.
    pub joins: Vec<String>,
    pub leaves: Vec<String>,
    pub heartbeats: u64,
    /// Heartbeats reporting a partition that another member also reported owning.
    pub double_owned: u64,
    /// (partition, offset) of every accepted commit.
    pub commits: Vec<(i32, i64)>,
    /// Commits refused (unknown member or wrong epoch).
    pub bad_commits: u64,
    /// Heartbeats that reported giving partitions up.
    pub releases: u64,
}

/// The fake topic's id.
pub const TOPIC_ID: &str = "6f1c3c1e-2b7a-4c1d-9e8f-0a1b2c3d4e5f";

#[derive(Default)]
struct FakeMember {
    epoch: i32,
    /// What the member last reported owning.
    owned: BTreeSet<i32>,
    /// What it was last told.
    assigned: BTreeSet<i32>,
}

#[derive(Default)]
struct FakeGroup {
    epoch: i32,
    members: BTreeMap<String, FakeMember>,
    committed: BTreeMap<i32, i64>,
}

#[derive(Clone)]
pub struct FakeBroker {
    pub addr: String,
    pub seen: Arc<Mutex<Seen>>,
}

struct State {
    partitions: i32,
    addr: (String, i32),
    log: RefCell<BTreeMap<i32, Vec<(i64, Bytes)>>>,
    seen: Arc<Mutex<Seen>>,
    produce_delay: Duration,
    groups: RefCell<BTreeMap<String, FakeGroup>>,
}

/// Starts a fake broker on its own executor thread; it runs until the test process ends.
pub fn start(partitions: i32, produce_delay: Duration) -> FakeBroker {
    let (tx, rx) = std::sync::mpsc::channel();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let seen2 = seen.clone();
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(64 << 10)
        .name("fake-broker")
        .spawn(move || async move {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            tx.send(addr.to_string()).unwrap();
            let state = Rc::new(State {
                partitions,
                addr: (addr.ip().to_string(), addr.port() as i32),
                log: RefCell::new(BTreeMap::new()),
                seen: seen2,
                produce_delay,
                groups: RefCell::new(BTreeMap::new()),
            });
            loop {
                let stream = listener.accept().await.unwrap();
                glommio::spawn_local(serve(state.clone(), stream)).detach();
            }
        })
        .unwrap();
    let addr = rx.recv().unwrap();
    FakeBroker { addr, seen }
}

fn response<T: Encodable>(
    correlation_id: i32,
    header_version: i16,
    version: i16,
    body: &T,
) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, header_version)
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    let n = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&n.to_be_bytes());
    buf.freeze()
}

async fn serve(state: Rc<State>, stream: TcpStream) {
    let (mut reader, mut writer) = stream.split();
    let (tx, rx) =
        glommio::channels::local_channel::new_unbounded::<(Instant, glommio::Task<Bytes>)>();
    let outstanding = Rc::new(RefCell::new(0usize));
    let out2 = outstanding.clone();
    let state2 = state.clone();
    let writer_task = glommio::spawn_local(async move {
        while let Some((due, task)) = rx.recv().await {
            let frame = task.await;
            crate::utils::wait::sleep_until(due).await;
            if writer.write_all(&frame).await.is_err() {
                return;
            }
            *out2.borrow_mut() -= 1;
        }
        let _ = state2;
    });
    let mut buf = BytesMut::new();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        while buf.len() >= 4 {
            let size = i32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
            if buf.len() < 4 + size {
                break;
            }
            buf.advance(4);
            let mut body = buf.split_to(size).freeze();
            let header = decode_request_header_from_buffer(&mut body).unwrap();
            let key = ApiKey::try_from(header.request_api_key).unwrap();
            let v = header.request_api_version;
            let hv = key.response_header_version(v);
            let cid = header.correlation_id;
            let mut due = Instant::now();
            let frame: Option<Bytes> = match key {
                ApiKey::ApiVersions => {
                    let keys = [
                        (0, 3, 9),
                        (1, 4, 12),
                        (2, 1, 7),
                        (3, 1, 12),
                        (18, 0, 3),
                        (19, 2, 7),
                        (8, 2, 9),
                        (9, 1, 9),
                        (10, 0, 6),
                        (68, 0, 1),
                    ];
                    let r = ApiVersionsResponse::default().with_api_keys(
                        keys.iter()
                            .map(|&(k, a, b)| {
                                ApiVersion::default()
                                    .with_api_key(k)
                                    .with_min_version(a)
                                    .with_max_version(b)
                            })
                            .collect(),
                    );
                    Some(response(cid, hv, v, &r))
                }
                ApiKey::Metadata => {
                    let req = MetadataRequest::decode(&mut body, v).unwrap();
                    let name = req.topics.unwrap()[0].name.clone().unwrap();
                    let t = MetadataResponseTopic::default()
                        .with_name(Some(name))
                        .with_topic_id(TOPIC_ID.parse().unwrap())
                        .with_partitions(
                            (0..state.partitions)
                                .map(|p| {
                                    MetadataResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_leader_id(BrokerId(0))
                                        .with_replica_nodes(vec![BrokerId(0)])
                                        .with_isr_nodes(vec![BrokerId(0)])
                                })
                                .collect(),
                        );
                    let r = MetadataResponse::default()
                        .with_brokers(vec![MetadataResponseBroker::default()
                            .with_node_id(BrokerId(0))
                            .with_host(StrBytes::from_string(state.addr.0.clone()))
                            .with_port(state.addr.1)])
                        .with_topics(vec![t]);
                    Some(response(cid, hv, v, &r))
                }
                ApiKey::CreateTopics => {
                    let req = CreateTopicsRequest::decode(&mut body, v).unwrap();
                    let r = CreateTopicsResponse::default().with_topics(
                        req.topics
                            .iter()
                            .map(|t| {
                                CreatableTopicResult::default()
                                    .with_name(t.name.clone())
                                    .with_error_code(36)
                            })
                            .collect(),
                    );
                    Some(response(cid, hv, v, &r))
                }
                ApiKey::Produce => {
                    let req = ProduceRequest::decode(&mut body, v).unwrap();
                    let mut parts = Vec::new();
                    {
                        let mut seen = state.seen.lock().unwrap();
                        seen.produce_requests += 1;
                        seen.acks.push(req.acks);
                        for t in &req.topic_data {
                            let mut ids: Vec<i32> =
                                t.partition_data.iter().map(|p| p.index).collect();
                            ids.sort_unstable();
                            let n = ids.len();
                            ids.dedup();
                            seen.duplicate_partitions += (n - ids.len()) as u64;
                            for p in &t.partition_data {
                                let bytes = p.records.clone().unwrap_or_default();
                                let base = append(&state, p.index, &bytes);
                                match RecordBatchDecoder::decode_all(&mut bytes.clone()) {
                                    Ok(sets) => {
                                        for set in sets {
                                            *seen.records.entry(p.index).or_default() +=
                                                set.records.len() as u64;
                                            for r in set.records {
                                                if let Some(k) = r.key {
                                                    seen.keys.push((k, p.index));
                                                }
                                            }
                                        }
                                    }
                                    Err(_) => seen.bad_batches += 1,
                                }
                                parts.push(
                                    PartitionProduceResponse::default()
                                        .with_index(p.index)
                                        .with_base_offset(base),
                                );
                            }
                        }
                    }
                    if req.acks == 0 {
                        None
                    } else {
                        let r = ProduceResponse::default().with_responses(vec![
                            TopicProduceResponse::default()
                                .with_name(req.topic_data[0].name.clone())
                                .with_partition_responses(parts),
                        ]);
                        due += state.produce_delay;
                        Some(response(cid, hv, v, &r))
                    }
                }
                ApiKey::ListOffsets => {
                    let req = ListOffsetsRequest::decode(&mut body, v).unwrap();
                    let log = state.log.borrow();
                    let topics = req
                        .topics
                        .iter()
                        .map(|t| {
                            ListOffsetsTopicResponse::default()
                                .with_name(t.name.clone())
                                .with_partitions(
                                    t.partitions
                                        .iter()
                                        .map(|p| {
                                            let end = log_end(log.get(&p.partition_index));
                                            ListOffsetsPartitionResponse::default()
                                                .with_partition_index(p.partition_index)
                                                .with_offset(if p.timestamp == -2 {
                                                    0
                                                } else {
                                                    end
                                                })
                                        })
                                        .collect(),
                                )
                        })
                        .collect();
                    Some(response(
                        cid,
                        hv,
                        v,
                        &ListOffsetsResponse::default().with_topics(topics),
                    ))
                }
                ApiKey::Fetch => {
                    let req = FetchRequest::decode(&mut body, v).unwrap();
                    state.seen.lock().unwrap().fetches += 1;
                    let deadline = Instant::now() + Duration::from_millis(req.max_wait_ms as u64);
                    let st = state.clone();
                    // Long poll: answer when there is data or max_wait_ms has passed.
                    let task = glommio::spawn_local(async move {
                        loop {
                            let (topics, any) = fetch(&st, &req);
                            if any || Instant::now() >= deadline {
                                return response(
                                    cid,
                                    hv,
                                    v,
                                    &FetchResponse::default().with_responses(topics),
                                );
                            }
                            glommio::timer::sleep(Duration::from_millis(2)).await;
                        }
                    });
                    *outstanding.borrow_mut() += 1;
                    let _ = tx.try_send((due, task));
                    None
                }
                ApiKey::FindCoordinator => {
                    let req = FindCoordinatorRequest::decode(&mut body, v).unwrap();
                    assert!(v >= 4, "batched keys");
                    let r = FindCoordinatorResponse::default().with_coordinators(
                        req.coordinator_keys
                            .into_iter()
                            .map(|k| {
                                find_coordinator_response::Coordinator::default()
                                    .with_key(k)
                                    .with_node_id(BrokerId(0))
                                    .with_host(StrBytes::from_string(state.addr.0.clone()))
                                    .with_port(state.addr.1)
                            })
                            .collect(),
                    );
                    Some(response(cid, hv, v, &r))
                }
                ApiKey::ConsumerGroupHeartbeat => {
                    let req = ConsumerGroupHeartbeatRequest::decode(&mut body, v).unwrap();
                    let r = group_heartbeat(&state, req);
                    Some(response(cid, hv, v, &r))
                }
                ApiKey::OffsetCommit => {
                    let req = OffsetCommitRequest::decode(&mut body, v).unwrap();
                    assert_eq!(v, 9);
                    let mut groups = state.groups.borrow_mut();
                    let g = groups.entry(req.group_id.0.to_string()).or_default();
                    let error = match g.members.get(req.member_id.as_str()) {
                        None => 25,
                        Some(m) if m.epoch < req.generation_id_or_member_epoch => 110,
                        Some(m) if m.epoch > req.generation_id_or_member_epoch => 113,
                        Some(_) => 0,
                    };
                    let mut seen = state.seen.lock().unwrap();
                    let topics = req
                        .topics
                        .iter()
                        .map(|t| {
                            offset_commit_response::OffsetCommitResponseTopic::default()
                                .with_name(t.name.clone())
                                .with_partitions(
                                    t.partitions
                                        .iter()
                                        .map(|p| {
                                            if error == 0 {
                                                g.committed
                                                    .insert(p.partition_index, p.committed_offset);
                                                seen.commits
                                                    .push((p.partition_index, p.committed_offset));
                                            } else {
                                                seen.bad_commits += 1;
                                            }
                                            offset_commit_response::OffsetCommitResponsePartition::default()
                                                .with_partition_index(p.partition_index)
                                                .with_error_code(error)
                                        })
                                        .collect(),
                                )
                        })
                        .collect();
                    Some(response(
                        cid,
                        hv,
                        v,
                        &OffsetCommitResponse::default().with_topics(topics),
                    ))
                }
                ApiKey::OffsetFetch => {
                    let req = OffsetFetchRequest::decode(&mut body, v).unwrap();
                    let groups = state.groups.borrow();
                    let answers = req
                        .groups
                        .iter()
                        .map(|g| {
                            let committed = groups.get(g.group_id.0.as_str());
                            offset_fetch_response::OffsetFetchResponseGroup::default()
                                .with_group_id(g.group_id.clone())
                                .with_topics(
                                    g.topics
                                        .iter()
                                        .flatten()
                                        .map(|t| {
                                            offset_fetch_response::OffsetFetchResponseTopics::default()
                                                .with_name(t.name.clone())
                                                .with_partitions(
                                                    t.partition_indexes
                                                        .iter()
                                                        .map(|&p| {
                                                            offset_fetch_response::OffsetFetchResponsePartitions::default()
                                                                .with_partition_index(p)
                                                                .with_committed_offset(
                                                                    committed
                                                                        .and_then(|c| c.committed.get(&p))
                                                                        .copied()
                                                                        .unwrap_or(-1),
                                                                )
                                                        })
                                                        .collect(),
                                                )
                                        })
                                        .collect(),
                                )
                        })
                        .collect();
                    Some(response(
                        cid,
                        hv,
                        v,
                        &OffsetFetchResponse::default().with_groups(answers),
                    ))
                }
                other => panic!("fake broker: unexpected {other:?}"),
            };
            if let Some(frame) = frame {
                *outstanding.borrow_mut() += 1;
                let _ = tx.try_send((due, glommio::spawn_local(async move { frame })));
                if key == ApiKey::Produce {
                    let mut seen = state.seen.lock().unwrap();
                    seen.max_outstanding = seen.max_outstanding.max(*outstanding.borrow());
                }
            }
        }
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.put_slice(&chunk[..n]),
        }
    }
    drop(tx);
    let _ = writer_task.await;
}

/// A ConsumerGroupHeartbeat, simplified KIP-848: every join or leave makes a new group epoch;
/// a member's target is every partition p with p % members == its rank (member ids sorted), and
/// it is given the part of its target no other member owns or was told to own.
fn group_heartbeat(
    state: &State,
    req: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    let mut seen = state.seen.lock().unwrap();
    seen.heartbeats += 1;
    let mut groups = state.groups.borrow_mut();
    let g = groups.entry(req.group_id.0.to_string()).or_default();
    let id = req.member_id.to_string();
    let fail = |code: i16| {
        ConsumerGroupHeartbeatResponse::default()
            .with_error_code(code)
            .with_heartbeat_interval_ms(50)
    };
    match req.member_epoch {
        0 => {
            assert!(!id.is_empty(), "v1: the client names itself");
            assert!(req.subscribed_topic_names.is_some());
            assert!(req.rebalance_timeout_ms > 0);
            seen.joins.push(id.clone());
            g.members.insert(id.clone(), FakeMember::default());
            g.epoch += 1;
        }
        -1 => {
            seen.leaves.push(id.clone());
            if g.members.remove(&id).is_some() {
                g.epoch += 1;
            }
            return ConsumerGroupHeartbeatResponse::default()
                .with_member_id(Some(req.member_id))
                .with_member_epoch(-1);
        }
        e => match g.members.get(&id) {
            None => return fail(25),
            Some(m) if m.epoch != e => return fail(110),
            Some(_) => {}
        },
    }
    if let Some(tps) = &req.topic_partitions {
        let owned: BTreeSet<i32> = tps
            .iter()
            .filter(|tp| tp.topic_id.to_string() == TOPIC_ID)
            .flat_map(|tp| tp.partitions.iter().copied())
            .collect();
        let m = g.members.get_mut(&id).unwrap();
        if m.owned.difference(&owned).next().is_some() {
            seen.releases += 1;
        }
        m.owned = owned;
        let m = &g.members[&id];
        for (other, o) in &g.members {
            if *other != id && o.owned.intersection(&m.owned).next().is_some() {
                seen.double_owned += 1;
            }
        }
    }
    let n = g.members.len() as i32;
    let rank = g.members.keys().position(|k| *k == id).unwrap() as i32;
    let held: BTreeSet<i32> = g
        .members
        .iter()
        .filter(|(k, _)| **k != id)
        .flat_map(|(_, m)| m.owned.iter().chain(m.assigned.iter()).copied())
        .collect();
    let target: BTreeSet<i32> = (0..state.partitions)
        .filter(|p| p % n == rank && !held.contains(p))
        .collect();
    let epoch = g.epoch;
    let m = g.members.get_mut(&id).unwrap();
    let send = m.assigned != target || req.member_epoch == 0;
    m.assigned = target.clone();
    m.epoch = epoch;
    let mut r = ConsumerGroupHeartbeatResponse::default()
        .with_member_id(Some(req.member_id))
        .with_member_epoch(epoch)
        .with_heartbeat_interval_ms(50);
    if send {
        r.assignment = Some(
            consumer_group_heartbeat_response::Assignment::default().with_topic_partitions(vec![
                consumer_group_heartbeat_response::TopicPartitions::default()
                    .with_topic_id(TOPIC_ID.parse().unwrap())
                    .with_partitions(target.into_iter().collect()),
            ]),
        );
    }
    r
}

fn log_end(log: Option<&Vec<(i64, Bytes)>>) -> i64 {
    log.and_then(|l| l.last())
        .map(|(_, b)| BatchHeader::parse(b).unwrap().next_offset())
        .unwrap_or(0)
}

/// Appends the batches in `bytes` to a partition, assigning offsets; returns the base offset.
fn append(state: &State, partition: i32, bytes: &Bytes) -> i64 {
    let mut log = state.log.borrow_mut();
    let l = log.entry(partition).or_default();
    let base = log_end(Some(l));
    let mut next = base;
    let mut pos = 0;
    while pos < bytes.len() {
        let h = BatchHeader::parse(&bytes[pos..]).unwrap();
        let mut b = BytesMut::from(&bytes[pos..pos + h.total_bytes]);
        b[..8].copy_from_slice(&next.to_be_bytes());
        next += h.last_offset_delta as i64 + 1;
        l.push((next - h.last_offset_delta as i64 - 1, b.freeze()));
        pos += h.total_bytes;
    }
    base
}

fn fetch(state: &State, req: &FetchRequest) -> (Vec<FetchableTopicResponse>, bool) {
    let log = state.log.borrow();
    let mut any = false;
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let parts = t
                .partitions
                .iter()
                .map(|p| {
                    let l = log.get(&p.partition);
                    let mut out = BytesMut::new();
                    for (base, b) in l.into_iter().flatten() {
                        let h = BatchHeader::parse(b).unwrap();
                        if base + h.last_offset_delta as i64 >= p.fetch_offset
                            && (out.is_empty()
                                || out.len() + b.len() <= p.partition_max_bytes as usize)
                        {
                            out.put_slice(b);
                        }
                    }
                    any |= !out.is_empty();
                    PartitionData::default()
                        .with_partition_index(p.partition)
                        .with_high_watermark(log_end(l))
                        .with_records(Some(out.freeze()))
                })
                .collect();
            FetchableTopicResponse::default()
                .with_topic(t.topic.clone())
                .with_partitions(parts)
        })
        .collect();
    (topics, any)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use crate::scenarios;
    use crate::utils::partitioner::partition_for_key;
    use clap::Parser;

    fn cli(args: &[&str]) -> Cli {
        let common = [
            "--quiet",
            "--no-pin",
            "--io-memory-kib",
            "64",
            "--threads",
            "2",
        ];
        Cli::try_parse_from(
            std::iter::once("loadgen")
                .chain(args.iter().copied())
                .chain(common.iter().copied()),
        )
        .unwrap()
    }

    fn produce(addr: &str, extra: &[&str]) -> crate::analytics::report::Report {
        let mut args = vec![
            "produce",
            "--bootstrap",
            addr,
            "--topic",
            "t",
            "--partitions",
            "4",
        ];
        args.extend_from_slice(extra);
        let Command::Produce(a) = cli(&args).command else {
            unreachable!()
        };
        scenarios::produce::run(&a).unwrap()
    }

    /// Every record arrives once, in valid batches, one batch per partition per request, keys
    /// partitioned like the Java client, with pipelining bounded by --max-in-flight.
    #[test]
    fn produce_batches_pipelines_and_partitions_by_key() {
        let fb = start(4, Duration::from_millis(20));
        let r = produce(
            &fb.addr,
            &[
                "--record-bytes",
                "100",
                "--records",
                "3000",
                "--keys",
                "10",
                "--batch-bytes",
                "1000",
            ],
        );
        assert!(r.ok(), "{}", r.human());
        assert_eq!(r.records, 3000);
        assert_eq!(r.latency.count, 3000);
        let seen = fb.seen.lock().unwrap().clone();
        assert_eq!(seen.records.values().sum::<u64>(), 3000);
        assert_eq!(seen.bad_batches, 0);
        assert_eq!(seen.duplicate_partitions, 0);
        assert!(seen.max_outstanding > 1, "requests were pipelined");
        assert!(
            seen.max_outstanding <= 5,
            "at most 5 in flight: {}",
            seen.max_outstanding
        );
        assert!(seen.acks.iter().all(|&a| a == -1));
        assert_eq!(seen.keys.len(), 3000);
        for (k, p) in &seen.keys {
            assert_eq!(partition_for_key(k, 4) as i32, *p);
        }
        // Series add up to the records.
        assert_eq!(r.series.iter().map(|s| s.records).sum::<u64>(), 3000);
    }

    /// Without keys, acks=0 and a codec: records spread over every partition (sticky batches).
    #[test]
    fn produce_unkeyed_acks0_compressed() {
        let fb = start(4, Duration::ZERO);
        let r = produce(
            &fb.addr,
            &[
                "--record-bytes",
                "200",
                "--records",
                "2000",
                "--acks",
                "0",
                "--compression",
                "zstd",
                "--batch-bytes",
                "2000",
                "--producers",
                "2",
            ],
        );
        assert!(r.ok(), "{}", r.human());
        assert_eq!(r.records, 2000);
        // acks=0: nothing to wait for, but the fake broker must have every record.
        std::thread::sleep(Duration::from_millis(200));
        let seen = fb.seen.lock().unwrap().clone();
        assert_eq!(seen.records.values().sum::<u64>(), 2000);
        assert_eq!(
            seen.records.len(),
            4,
            "every partition got records: {:?}",
            seen.records
        );
        assert!(seen.acks.iter().all(|&a| a == 0));
        assert_eq!(seen.bad_batches, 0);
    }

    /// A rate-limited timed run sends exactly rate × duration records.
    #[test]
    fn produce_at_a_rate_for_a_duration() {
        let fb = start(2, Duration::from_millis(1));
        let r = produce(
            &fb.addr,
            &[
                "--record-bytes",
                "50",
                "--duration-s",
                "1",
                "--rate",
                "1500",
            ],
        );
        assert!(r.ok(), "{}", r.human());
        assert_eq!(r.records, 1500);
        assert_eq!(r.expected, Some(1500));
        assert!((r.elapsed_s - 1.0).abs() < 0.5, "{}", r.elapsed_s);
    }

    /// Consume reads back what was produced; asking for more ends at the stall timeout with the
    /// shortfall reported.
    #[test]
    fn consume_reads_everything_and_reports_a_shortfall() {
        let fb = start(3, Duration::ZERO);
        let r = produce(
            &fb.addr,
            &[
                "--record-bytes",
                "300",
                "--records",
                "2500",
                "--compression",
                "lz4",
            ],
        );
        assert!(r.ok(), "{}", r.human());
        let run = |n: &str, extra: &[&str]| {
            let mut args = vec![
                "consume",
                "--bootstrap",
                &fb.addr,
                "--topic",
                "t",
                "--records",
                n,
                "--fetch-max-wait-ms",
                "100",
            ];
            args.extend_from_slice(extra);
            let Command::Consume(a) = cli(&args).command else {
                unreachable!()
            };
            scenarios::consume::run(&a).unwrap()
        };
        let c = run("2500", &["--consumers", "2"]);
        assert!(c.ok(), "{}", c.human());
        assert_eq!(c.records, 2500);
        assert_eq!(c.bytes, 2500 * 300);
        let c = run("2600", &["--stall-timeout-s", "0.5"]);
        assert!(!c.ok());
        assert_eq!(c.records, 2500);
        assert_eq!(c.shortfall, 100);
        assert!(c.aborted.is_some());
        let c = run("10", &["--from", "latest", "--stall-timeout-s", "0.3"]);
        assert_eq!(c.records, 0);
    }

    /// e2e: every produced record is consumed and timed.
    #[test]
    fn e2e_times_every_record() {
        let fb = start(2, Duration::from_millis(2));
        let args = [
            "e2e",
            "--bootstrap",
            &fb.addr,
            "--topic",
            "t",
            "--record-bytes",
            "64",
            "--rate",
            "2000",
            "--records",
            "1000",
            "--fetch-max-wait-ms",
            "50",
        ];
        let Command::E2e(a) = cli(&args).command else {
            unreachable!()
        };
        let r = scenarios::e2e::run(&a).unwrap();
        assert!(r.ok(), "{}", r.human());
        assert_eq!(r.records, 1000);
        assert_eq!(r.latency.count, 1000);
        assert!(
            r.latency.p50 >= 2000,
            "at least the broker's 2 ms: {:?}",
            r.latency
        );
        let j = r.to_json();
        assert_eq!(j["produce_latency_us"]["count"], 1000);
    }

    fn consume_group(addr: &str, group: &str, extra: &[&str]) -> crate::analytics::report::Report {
        let mut args = vec![
            "consume",
            "--bootstrap",
            addr,
            "--topic",
            "t",
            "--group",
            group,
            "--fetch-max-wait-ms",
            "50",
        ];
        args.extend_from_slice(extra);
        let Command::Consume(a) = cli(&args).command else {
            unreachable!()
        };
        scenarios::consume::run(&a).unwrap()
    }

    fn group_json(r: &crate::analytics::report::Report) -> serde_json::Value {
        r.extra
            .iter()
            .find(|(k, _)| k == "group")
            .map(|(_, v)| v.clone())
            .expect("a group line")
    }

    /// Group members share the partitions, commit what they read, and leave; the next run of the
    /// group starts at the committed offsets, so nothing is read twice. With --records the
    /// position committed is right after the last record counted.
    #[test]
    fn consume_group_commits_and_resumes() {
        let fb = start(4, Duration::ZERO);
        let r = produce(&fb.addr, &["--record-bytes", "100", "--records", "3000"]);
        assert!(r.ok(), "{}", r.human());
        // Part of the topic first: exactly 1000 records, committed exactly that far.
        let c = consume_group(&fb.addr, "g", &["--records", "1000"]);
        assert!(c.ok(), "{}", c.human());
        assert_eq!(c.records, 1000);
        let committed: i64 = fb
            .seen
            .lock()
            .unwrap()
            .commits
            .iter()
            .fold(BTreeMap::new(), |mut m, &(p, o)| {
                m.insert(p, o);
                m
            })
            .values()
            .sum();
        assert_eq!(
            committed, 1000,
            "committed right after the last record read"
        );
        // Two members read the rest, each its share of the partitions.
        let c = consume_group(&fb.addr, "g", &["--records", "2000", "--consumers", "2"]);
        assert!(c.ok(), "{}", c.human());
        assert_eq!(c.records, 2000);
        let j = group_json(&c);
        assert_eq!(j["coordinator"], fb.addr.as_str());
        assert_eq!(j["commit_errors"], 0);
        // Nothing old is left for a third run.
        let c = consume_group(
            &fb.addr,
            "g",
            &["--records", "1", "--stall-timeout-s", "0.5"],
        );
        assert_eq!(c.records, 0);
        assert_eq!(c.shortfall, 1);
        let seen = fb.seen.lock().unwrap().clone();
        assert_eq!(seen.joins.len(), 4);
        let mut joined = seen.joins.clone();
        joined.sort();
        joined.dedup();
        assert_eq!(joined.len(), 4, "every member has its own id");
        assert_eq!(seen.leaves.len(), 4, "every member left");
        assert_eq!(seen.bad_commits, 0);
        assert_eq!(seen.double_owned, 0);
        let ends: i64 = (0..4)
            .map(|p| seen.commits.iter().rev().find(|c| c.0 == p).unwrap().1)
            .sum();
        assert_eq!(ends, 3000, "the group has committed every record");
        // Another group starts per --from.
        let c = consume_group(&fb.addr, "other", &["--records", "3000"]);
        assert_eq!(c.records, 3000);
        let c = consume_group(
            &fb.addr,
            "latest",
            &[
                "--records",
                "1",
                "--from",
                "latest",
                "--stall-timeout-s",
                "0.5",
            ],
        );
        assert_eq!(c.records, 0);
    }

    /// A member that joins while another reads gets half the partitions: the first one commits
    /// and gives them up (reporting them released), the second starts at the committed offsets;
    /// together they read every record once.
    #[test]
    fn consume_group_rebalances_between_processes() {
        let fb = start(4, Duration::ZERO);
        let r = produce(
            &fb.addr,
            &[
                "--record-bytes",
                "1000",
                "--records",
                "6000",
                "--batch-bytes",
                "2000",
            ],
        );
        assert!(r.ok(), "{}", r.human());
        let addr = fb.addr.clone();
        // Small fetches make the first member take a while, so the second one arrives midway.
        let small = ["--partition-max-bytes", "1024", "--duration-s", "4"];
        let a = std::thread::spawn(move || consume_group(&addr, "g", &small));
        std::thread::sleep(Duration::from_millis(300));
        let b = consume_group(&fb.addr, "g", &["--duration-s", "3.5"]);
        let a = a.join().unwrap();
        assert!(a.ok(), "{}", a.human());
        assert!(b.ok(), "{}", b.human());
        assert_eq!(
            a.records + b.records,
            6000,
            "a {} b {}",
            a.records,
            b.records
        );
        assert!(b.records > 0, "the second member read its share");
        let seen = fb.seen.lock().unwrap().clone();
        assert!(seen.releases >= 1, "the first member released partitions");
        assert_eq!(seen.double_owned, 0);
        assert_eq!(seen.bad_commits, 0);
        let (ja, jb) = (group_json(&a), group_json(&b));
        let pa: BTreeSet<String> = ja["records_by_partition"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        let pb: BTreeSet<String> = jb["records_by_partition"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(
            pa.len(),
            4,
            "the first member started with every partition: {ja}"
        );
        assert_eq!(pb.len(), 2, "the second got half: {jb}");
        // The second started where the first had committed.
        for (p, starts) in jb["started_at"].as_object().unwrap() {
            assert!(starts[0].as_i64().unwrap() > 0, "partition {p}: {jb}");
        }
    }
}
