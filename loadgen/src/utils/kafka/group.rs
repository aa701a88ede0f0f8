//! Consumer-group requests (KIP-848 protocol): FindCoordinator, ConsumerGroupHeartbeat,
//! OffsetFetch and OffsetCommit.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Result};
use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{
    ApiKey, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, GroupId, OffsetCommitRequest, OffsetCommitResponse,
    OffsetFetchRequest, OffsetFetchResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::admin::{code, error_name, topic_name};
use super::{Connection, GroupVersions};

/// FindCoordinator key type of a consumer group.
pub const KEY_TYPE_GROUP: i8 = 0;
/// FindCoordinator key type of a transactional id.
pub const KEY_TYPE_TRANSACTION: i8 = 1;

/// A new member id: a random (version 4) UUID in text, as KIP-1082 asks clients to make.
pub fn new_member_id() -> String {
    let mut bytes = [0u8; 16];
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        // RandomState is seeded randomly per process (and per instance).
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(now);
        h.write_u32(std::process::id());
        h.write_usize(i);
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Whether a group error goes away by retrying (the coordinator is loading or moving).
pub fn retriable(error: i16) -> bool {
    matches!(
        error,
        code::COORDINATOR_LOAD_IN_PROGRESS
            | code::COORDINATOR_NOT_AVAILABLE
            | code::NOT_COORDINATOR
    )
}

/// The coordinator ("host:port") of `key`, a group ([`KEY_TYPE_GROUP`]) or a transactional id
/// ([`KEY_TYPE_TRANSACTION`]), asked with FindCoordinator `version`; retriable errors are
/// retried until `wait` has passed.
pub async fn find_coordinator(
    conn: &Connection,
    version: i16,
    key_type: i8,
    key: &str,
    timeout: Duration,
    wait: Duration,
) -> Result<String> {
    let deadline = std::time::Instant::now() + wait;
    let what = match key_type {
        KEY_TYPE_GROUP => "group",
        _ => "transactional id",
    };
    loop {
        let k = StrBytes::from_string(key.to_string());
        let mut req = FindCoordinatorRequest::default().with_key_type(key_type);
        if version >= 4 {
            req.coordinator_keys = vec![k];
        } else {
            req.key = k;
        }
        let resp: FindCoordinatorResponse = conn
            .request(ApiKey::FindCoordinator, version, &req, timeout)
            .await?;
        let (error, message, host, port) = if version >= 4 {
            let c = resp
                .coordinators
                .first()
                .ok_or_else(|| anyhow!("FindCoordinator: empty answer"))?;
            (
                c.error_code,
                c.error_message.clone(),
                c.host.clone(),
                c.port,
            )
        } else {
            (resp.error_code, resp.error_message, resp.host, resp.port)
        };
        if error == 0 {
            return Ok(format!("{}:{port}", host.as_str()));
        }
        let why = format!(
            "FindCoordinator for {what} {key}: {}{}",
            error_name(error),
            message.map(|m| format!(" ({m})")).unwrap_or_default()
        );
        if !retriable(error) || std::time::Instant::now() >= deadline {
            bail!("{why}");
        }
        glommio::timer::sleep(Duration::from_millis(200)).await;
    }
}

/// One ConsumerGroupHeartbeat. `owned`: the partitions of `topic_id` the member owns, when they
/// must be reported (on joining, and whenever they changed since the last report); `join`:
/// the first heartbeat (epoch 0), which also gives the subscription.
#[allow(clippy::too_many_arguments)]
pub fn heartbeat_request(
    group: &str,
    member_id: &str,
    epoch: i32,
    topic: &str,
    topic_id: &str,
    rebalance_timeout_ms: i32,
    owned: Option<&BTreeSet<i32>>,
) -> Result<ConsumerGroupHeartbeatRequest> {
    let mut req = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_member_id(StrBytes::from_string(member_id.to_string()))
        .with_member_epoch(epoch)
        .with_rebalance_timeout_ms(if epoch == 0 { rebalance_timeout_ms } else { -1 });
    if epoch == 0 {
        req.subscribed_topic_names = Some(vec![topic_name(topic)]);
    }
    if let Some(owned) = owned {
        req.topic_partitions = Some(if owned.is_empty() {
            vec![]
        } else {
            vec![TopicPartitions::default()
                .with_topic_id(
                    topic_id
                        .parse()
                        .map_err(|e| anyhow!("topic id {topic_id}: {e}"))?,
                )
                .with_partitions(owned.iter().copied().collect())]
        });
    }
    Ok(req)
}

/// The partitions of `topic_id` in a heartbeat response's assignment, if it carries one.
pub fn assigned(resp: &ConsumerGroupHeartbeatResponse, topic_id: &str) -> Option<BTreeSet<i32>> {
    resp.assignment.as_ref().map(|a| {
        a.topic_partitions
            .iter()
            .filter(|tp| tp.topic_id.to_string() == topic_id)
            .flat_map(|tp| tp.partitions.iter().copied())
            .collect()
    })
}

/// The group's committed offsets for `partitions` (-1 where nothing is committed).
#[allow(clippy::too_many_arguments)]
pub async fn offset_fetch(
    conn: &Connection,
    v: &GroupVersions,
    group: &str,
    member_id: &str,
    epoch: i32,
    topic: &str,
    partitions: &[i32],
    timeout: Duration,
) -> Result<BTreeMap<i32, i64>> {
    let g = OffsetFetchRequestGroup::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_member_id(Some(StrBytes::from_string(member_id.to_string())))
        .with_member_epoch(epoch)
        .with_topics(Some(vec![OffsetFetchRequestTopics::default()
            .with_name(topic_name(topic))
            .with_partition_indexes(partitions.to_vec())]));
    let req = OffsetFetchRequest::default()
        .with_groups(vec![g])
        .with_require_stable(false);
    let resp: OffsetFetchResponse = conn
        .request(ApiKey::OffsetFetch, v.offset_fetch, &req, timeout)
        .await?;
    let g = resp
        .groups
        .first()
        .ok_or_else(|| anyhow!("OffsetFetch: no answer for group {group}"))?;
    if g.error_code != 0 {
        bail!(
            "OffsetFetch for group {group}: {}",
            error_name(g.error_code)
        );
    }
    let mut out = BTreeMap::new();
    for t in g.topics.iter().filter(|t| t.name.0.as_str() == topic) {
        for p in &t.partitions {
            if p.error_code != 0 {
                bail!(
                    "OffsetFetch {group} {topic}/{}: {}",
                    p.partition_index,
                    error_name(p.error_code)
                );
            }
            out.insert(p.partition_index, p.committed_offset);
        }
    }
    for p in partitions {
        if !out.contains_key(p) {
            bail!("OffsetFetch {group} {topic}/{p}: no answer for the partition");
        }
    }
    Ok(out)
}

/// Commits `offsets` (partition → next offset to read) as member `member_id` at `epoch`;
/// returns the partitions that failed, with their error.
#[allow(clippy::too_many_arguments)]
pub async fn offset_commit(
    conn: &Connection,
    v: &GroupVersions,
    group: &str,
    member_id: &str,
    epoch: i32,
    topic: &str,
    offsets: &BTreeMap<i32, i64>,
    timeout: Duration,
) -> Result<Vec<(i32, i16)>> {
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_generation_id_or_member_epoch(epoch)
        .with_member_id(StrBytes::from_string(member_id.to_string()))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(
                offsets
                    .iter()
                    .map(|(&p, &o)| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(p)
                            .with_committed_offset(o)
                            .with_committed_leader_epoch(-1)
                    })
                    .collect(),
            )]);
    let resp: OffsetCommitResponse = conn
        .request(ApiKey::OffsetCommit, v.offset_commit, &req, timeout)
        .await?;
    let mut failed = Vec::new();
    let mut answered = BTreeSet::new();
    for t in &resp.topics {
        for p in &t.partitions {
            answered.insert(p.partition_index);
            if p.error_code != 0 {
                failed.push((p.partition_index, p.error_code));
            }
        }
    }
    for p in offsets.keys() {
        if !answered.contains(p) {
            failed.push((*p, -1));
        }
    }
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_ids_are_distinct_v4_uuids() {
        let a = new_member_id();
        let b = new_member_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!("89ab".contains(&a[19..20]));
        let parts: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(parts, vec![8, 4, 4, 4, 12]);
    }

    #[test]
    fn heartbeat_requests() {
        let id = "0b6c1e8e-6a4b-4a8f-9d0c-3c0f1f2a3b4c";
        let join = heartbeat_request("g", "m", 0, "t", id, 30_000, Some(&BTreeSet::new())).unwrap();
        assert_eq!(join.member_epoch, 0);
        assert_eq!(join.rebalance_timeout_ms, 30_000);
        assert_eq!(join.subscribed_topic_names.as_ref().unwrap().len(), 1);
        assert_eq!(join.topic_partitions, Some(vec![]));
        let owned: BTreeSet<i32> = [1, 3].into_iter().collect();
        let hb = heartbeat_request("g", "m", 5, "t", id, 30_000, Some(&owned)).unwrap();
        assert!(hb.subscribed_topic_names.is_none());
        let tps = hb.topic_partitions.unwrap();
        assert_eq!(tps[0].topic_id.to_string(), id);
        assert_eq!(tps[0].partitions, vec![1, 3]);
        let hb = heartbeat_request("g", "m", 5, "t", id, 30_000, None).unwrap();
        assert!(hb.topic_partitions.is_none());
    }
}
