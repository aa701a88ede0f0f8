//! Cluster-level requests: ApiVersions, Metadata, CreateTopics, ListOffsets.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use super::conn::{decode_response, Connection};

/// Kafka error codes this client acts on.
pub mod code {
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const LEADER_NOT_AVAILABLE: i16 = 5;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const NOT_COORDINATOR: i16 = 16;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const CONCURRENT_TRANSACTIONS: i16 = 51;
    pub const FENCED_MEMBER_EPOCH: i16 = 110;
}

/// The name of a Kafka error code ("NotLeaderOrFollower", "UNKNOWN(1234)").
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".into(),
        Some(ResponseError::Unknown(c)) => format!("UNKNOWN({c})"),
        Some(e) => format!("{e:?}"),
    }
}

/// Versions this client speaks, per API (inclusive).
const OURS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 9),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 1, 12),
    (ApiKey::CreateTopics, 2, 7),
    // Consumer groups (KIP-848), for consume --group only.
    (ApiKey::FindCoordinator, 1, 6),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::OffsetCommit, 9, 9),
    (ApiKey::OffsetFetch, 8, 9),
    // Idempotent and transactional producers (--idempotent, --transactional-id). The highest
    // versions are those of Kafka's first transaction protocol: EndTxn v5 and AddPartitionsToTxn
    // v4+ belong to the second (KIP-890: a new epoch at every commit, partitions added by the
    // broker), which this client does not speak; Produce stays below v12 likewise.
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::AddPartitionsToTxn, 0, 3),
    (ApiKey::EndTxn, 0, 4),
];

/// The versions of the consumer-group APIs (KIP-848 protocol).
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct GroupVersions {
    pub find_coordinator: i16,
    pub consumer_group_heartbeat: i16,
    pub offset_commit: i16,
    pub offset_fetch: i16,
}

/// The versions of the transaction APIs (transactional producers; InitProducerId is apart, as
/// idempotent producers need it alone).
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct TxnVersions {
    pub find_coordinator: i16,
    pub add_partitions_to_txn: i16,
    pub end_txn: i16,
}

/// The version of each API to use with the cluster: the highest both sides support.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Versions {
    pub produce: i16,
    pub fetch: i16,
    pub list_offsets: i16,
    pub metadata: i16,
    /// None when the broker does not offer CreateTopics in a version we speak.
    pub create_topics: Option<i16>,
    /// None when the broker does not offer every consumer-group API in a version we speak
    /// (not in the report: only `consume --group` uses them, and it reports them itself).
    #[serde(skip)]
    pub group: Option<GroupVersions>,
    /// None when the broker does not offer InitProducerId in v0-4 (not in the report unless
    /// the run is idempotent or transactional: the produce scenarios add it then).
    #[serde(skip)]
    pub init_producer_id: Option<i16>,
    /// None unless the broker offers FindCoordinator v1-6, AddPartitionsToTxn v0-3 and EndTxn
    /// v0-4 (reported by transactional runs only, like `init_producer_id`).
    #[serde(skip)]
    pub txn: Option<TxnVersions>,
}

impl Versions {
    /// Picks versions from the broker's ApiVersions ranges.
    pub fn negotiate(broker: &BTreeMap<i16, (i16, i16)>) -> Result<Versions> {
        let pick = |key: ApiKey| -> Option<i16> {
            let (_, lo, hi) = OURS.iter().find(|(k, _, _)| *k == key)?;
            let (bmin, bmax) = broker.get(&(key as i16))?;
            let v = (*hi).min(*bmax);
            (v >= (*lo).max(*bmin)).then_some(v)
        };
        let need = |key: ApiKey| -> Result<i16> {
            pick(key).ok_or_else(|| {
                let ours = OURS.iter().find(|(k, _, _)| *k == key).unwrap();
                anyhow!(
                    "the broker offers {key:?} {} but this client speaks v{}-{}",
                    broker
                        .get(&(key as i16))
                        .map(|(a, b)| format!("v{a}-{b}"))
                        .unwrap_or_else(|| "not at all".into()),
                    ours.1,
                    ours.2
                )
            })
        };
        Ok(Versions {
            produce: need(ApiKey::Produce)?,
            fetch: need(ApiKey::Fetch)?,
            list_offsets: need(ApiKey::ListOffsets)?,
            metadata: need(ApiKey::Metadata)?,
            create_topics: pick(ApiKey::CreateTopics),
            group: (|| {
                Some(GroupVersions {
                    find_coordinator: pick(ApiKey::FindCoordinator)?,
                    consumer_group_heartbeat: pick(ApiKey::ConsumerGroupHeartbeat)?,
                    offset_commit: pick(ApiKey::OffsetCommit)?,
                    offset_fetch: pick(ApiKey::OffsetFetch)?,
                })
            })(),
            init_producer_id: pick(ApiKey::InitProducerId),
            txn: (|| {
                Some(TxnVersions {
                    find_coordinator: pick(ApiKey::FindCoordinator)?,
                    add_partitions_to_txn: pick(ApiKey::AddPartitionsToTxn)?,
                    end_txn: pick(ApiKey::EndTxn)?,
                })
            })(),
        })
    }
}

/// Asks the broker which versions it supports (ApiVersions v3, falling back to the v0 answer a
/// broker gives when it does not support v3).
pub async fn api_versions(conn: &Connection, timeout: Duration) -> Result<Versions> {
    let req = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("shardlog-loadgen"))
        .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
    let fut = conn.start(ApiKey::ApiVersions, 3, &req)?;
    let (resp, _) = conn.wait::<RawBody>(fut, timeout).await?;
    // The response header of ApiVersions is always v0: 4 bytes of correlation id, already gone.
    let body = resp.0;
    let error = body.get(..2).map(|b| i16::from_be_bytes([b[0], b[1]]));
    let resp = if error == Some(code::UNSUPPORTED_VERSION) {
        ApiVersionsResponse::decode(&mut body.clone(), 0)?
    } else {
        ApiVersionsResponse::decode(&mut body.clone(), 3)?
    };
    if resp.error_code != 0 && resp.api_keys.is_empty() {
        bail!("ApiVersions failed: {}", error_name(resp.error_code));
    }
    let map: BTreeMap<i16, (i16, i16)> = resp
        .api_keys
        .iter()
        .map(|k| (k.api_key, (k.min_version, k.max_version)))
        .collect();
    Versions::negotiate(&map)
}

/// A response body left undecoded.
struct RawBody(Bytes);
impl Decodable for RawBody {
    fn decode<B: kafka_protocol::protocol::buf::ByteBuf>(
        buf: &mut B,
        _version: i16,
    ) -> Result<Self> {
        Ok(RawBody(buf.copy_to_bytes(buf.remaining())))
    }
}

#[derive(Debug, Clone)]
pub struct PartitionInfo {
    pub id: i32,
    pub leader: i32,
}

/// What a run needs to know about its topic.
#[derive(Debug, Clone)]
pub struct TopicInfo {
    pub name: String,
    /// The topic id (Metadata v10+; all zeros before), as text: kafka-protocol's `Uuid` fields
    /// take it with `parse()` and give it back with `to_string()`.
    pub id: String,
    /// Sorted by partition id.
    pub partitions: Vec<PartitionInfo>,
    /// node id → "host:port"
    pub brokers: BTreeMap<i32, String>,
}

impl TopicInfo {
    pub fn leader_addr(&self, node: i32) -> Result<&str> {
        self.brokers
            .get(&node)
            .map(|s| s.as_str())
            .ok_or_else(|| anyhow!("leader {node} is not in the broker list"))
    }

    /// The distinct leader nodes, in order.
    pub fn leaders(&self) -> Vec<i32> {
        let mut v: Vec<i32> = self.partitions.iter().map(|p| p.leader).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// One Metadata request for `topic`.
pub async fn metadata(
    conn: &Connection,
    v: &Versions,
    topic: &str,
    auto_create: bool,
    timeout: Duration,
) -> Result<MetadataResponse> {
    let req = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic_name(topic)))
        ]))
        .with_allow_auto_topic_creation(auto_create);
    conn.request(ApiKey::Metadata, v.metadata, &req, timeout)
        .await
}

/// The topic as Metadata shows it: Ok(None) while it does not exist or has partitions without a
/// leader; Err for other errors.
fn topic_info(resp: &MetadataResponse, topic: &str) -> Result<Option<TopicInfo>> {
    let t = resp
        .topics
        .iter()
        .find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some(topic))
        .ok_or_else(|| anyhow!("Metadata response does not mention topic {topic}"))?;
    match t.error_code {
        0 => {}
        code::UNKNOWN_TOPIC_OR_PARTITION | code::LEADER_NOT_AVAILABLE => return Ok(None),
        c => bail!("Metadata for topic {topic}: {}", error_name(c)),
    }
    let mut partitions: Vec<PartitionInfo> = t
        .partitions
        .iter()
        .map(|p| PartitionInfo {
            id: p.partition_index,
            leader: p.leader_id.0,
        })
        .collect();
    if partitions.is_empty() || partitions.iter().any(|p| p.leader < 0) {
        return Ok(None);
    }
    partitions.sort_by_key(|p| p.id);
    let brokers = resp
        .brokers
        .iter()
        .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
        .collect();
    Ok(Some(TopicInfo {
        name: topic.to_string(),
        id: t.topic_id.to_string(),
        partitions,
        brokers,
    }))
}

/// Creates the topic with `partitions` partitions (broker default replication).
pub async fn create_topic(
    conn: &Connection,
    v: &Versions,
    topic: &str,
    partitions: i32,
    timeout: Duration,
) -> Result<()> {
    let version = v
        .create_topics
        .ok_or_else(|| anyhow!("the broker does not support CreateTopics v2-7"))?;
    let t = CreatableTopic::default()
        .with_name(topic_name(topic))
        .with_num_partitions(partitions)
        .with_replication_factor(if version >= 4 { -1 } else { 1 });
    let req = CreateTopicsRequest::default()
        .with_topics(vec![t])
        .with_timeout_ms(timeout.as_millis().min(i32::MAX as u128) as i32);
    let resp: CreateTopicsResponse = conn
        .request(ApiKey::CreateTopics, version, &req, timeout)
        .await?;
    for t in &resp.topics {
        match t.error_code {
            0 | code::TOPIC_ALREADY_EXISTS => {}
            c => bail!(
                "CreateTopics {topic}: {}{}",
                error_name(c),
                t.error_message
                    .as_ref()
                    .map(|m| format!(" ({})", m.as_str()))
                    .unwrap_or_default()
            ),
        }
    }
    Ok(())
}

/// Makes sure the topic exists and every partition has a leader, within `wait`.
/// With `partitions`, creates it with that many when missing (and warns if it exists with another
/// count); otherwise relies on auto-creation when `auto_create`, or fails if it does not exist.
pub async fn ensure_topic(
    conn: &Connection,
    v: &Versions,
    topic: &str,
    partitions: Option<i32>,
    auto_create: bool,
    request_timeout: Duration,
    wait: Duration,
) -> Result<TopicInfo> {
    let deadline = Instant::now() + wait;
    let mut created = false;
    loop {
        let allow = auto_create && partitions.is_none();
        let resp = metadata(conn, v, topic, allow, request_timeout).await?;
        let exists = resp.topics.iter().any(|t| {
            t.name.as_ref().map(|n| n.0.as_str()) == Some(topic)
                && t.error_code != code::UNKNOWN_TOPIC_OR_PARTITION
        });
        if let Some(info) = topic_info(&resp, topic)? {
            match partitions {
                Some(n) if (info.partitions.len() as i32) < n && created => {}
                Some(n) if info.partitions.len() as i32 != n => {
                    eprintln!(
                        "loadgen: warning: topic {topic} exists with {} partitions, not {n}; using {}",
                        info.partitions.len(),
                        info.partitions.len()
                    );
                    return Ok(info);
                }
                _ => return Ok(info),
            }
        } else if !exists {
            match partitions {
                Some(n) if !created => {
                    create_topic(conn, v, topic, n, request_timeout)
                        .await
                        .with_context(|| format!("creating topic {topic}"))?;
                    created = true;
                    continue;
                }
                Some(_) => {}
                None if !auto_create => bail!("topic {topic} does not exist"),
                None => {}
            }
        }
        if Instant::now() >= deadline {
            bail!("topic {topic}: partitions still without a leader after {wait:?}");
        }
        glommio::timer::sleep(Duration::from_millis(100)).await;
    }
}

/// Offsets at `timestamp` (-2 earliest, -1 latest) for `partitions` of `topic`, from their leader.
pub async fn list_offsets(
    conn: &Connection,
    v: &Versions,
    topic: &str,
    partitions: &[i32],
    timestamp: i64,
    timeout: Duration,
) -> Result<BTreeMap<i32, i64>> {
    let t = ListOffsetsTopic::default()
        .with_name(topic_name(topic))
        .with_partitions(
            partitions
                .iter()
                .map(|&p| {
                    ListOffsetsPartition::default()
                        .with_partition_index(p)
                        .with_timestamp(timestamp)
                })
                .collect(),
        );
    let req = ListOffsetsRequest::default()
        .with_replica_id((-1).into())
        .with_isolation_level(0)
        .with_topics(vec![t]);
    let resp: ListOffsetsResponse = conn
        .request(ApiKey::ListOffsets, v.list_offsets, &req, timeout)
        .await?;
    let mut out = BTreeMap::new();
    for t in &resp.topics {
        for p in &t.partitions {
            if p.error_code != 0 {
                bail!(
                    "ListOffsets {topic}/{}: {}",
                    p.partition_index,
                    error_name(p.error_code)
                );
            }
            out.insert(p.partition_index, p.offset);
        }
    }
    for p in partitions {
        if !out.contains_key(p) {
            bail!("ListOffsets {topic}/{p}: no answer for the partition");
        }
    }
    Ok(out)
}

/// Decodes a raw response (for tests and tools).
#[allow(dead_code)]
pub fn decode<T: Decodable>(body: Bytes, api_key: ApiKey, version: i16) -> Result<T> {
    decode_response(body, api_key, version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_the_highest_common_version() {
        let broker: BTreeMap<i16, (i16, i16)> = [
            (ApiKey::Produce as i16, (3, 9)),
            (ApiKey::Fetch as i16, (4, 17)),
            (ApiKey::ListOffsets as i16, (1, 7)),
            (ApiKey::Metadata as i16, (0, 12)),
            (ApiKey::CreateTopics as i16, (2, 7)),
        ]
        .into_iter()
        .collect();
        let v = Versions::negotiate(&broker).unwrap();
        assert_eq!(v.produce, 9);
        assert_eq!(v.fetch, 12);
        assert_eq!(v.metadata, 12);
        assert_eq!(v.create_topics, Some(7));
        assert_eq!(v.init_producer_id, None);
        assert!(v.txn.is_none());
        // Transaction APIs: capped at Kafka's first transaction protocol.
        let mut eos = broker.clone();
        eos.insert(ApiKey::InitProducerId as i16, (0, 5));
        eos.insert(ApiKey::FindCoordinator as i16, (0, 6));
        eos.insert(ApiKey::AddPartitionsToTxn as i16, (0, 5));
        eos.insert(ApiKey::EndTxn as i16, (0, 5));
        let v = Versions::negotiate(&eos).unwrap();
        assert_eq!(v.init_producer_id, Some(4));
        let t = v.txn.unwrap();
        assert_eq!(
            (t.find_coordinator, t.add_partitions_to_txn, t.end_txn),
            (6, 3, 4)
        );
        // A broker that offers only the second protocol's AddPartitionsToTxn: no transactions.
        eos.insert(ApiKey::AddPartitionsToTxn as i16, (4, 5));
        assert!(Versions::negotiate(&eos).unwrap().txn.is_none());
        let mut old = broker.clone();
        old.insert(ApiKey::Produce as i16, (0, 2));
        assert!(Versions::negotiate(&old).is_err());
        old.insert(ApiKey::Produce as i16, (3, 5));
        old.remove(&(ApiKey::CreateTopics as i16));
        let v = Versions::negotiate(&old).unwrap();
        assert_eq!(v.produce, 5);
        assert_eq!(v.create_topics, None);
    }

    #[test]
    fn error_names() {
        assert_eq!(error_name(6), "NotLeaderOrFollower");
        assert_eq!(error_name(-1), "UnknownServerError");
        assert_eq!(error_name(9999), "UNKNOWN(9999)");
    }
}
