//! ListOffsets: latest (-1), earliest (-2), max timestamp (-3, v7+), earliest local (-4, v8+),
//! latest tiered (-5, v9+), or the first offset at or after a timestamp, answered by the owning
//! shard with Kafka's rules (`ReplicaManager.fetchOffset`): a duplicated partition is
//! INVALID_REQUEST, a special timestamp older than its version or unknown is
//! UNSUPPORTED_VERSION, and a record found by time that the reader may not fetch yet is no
//! answer (offset and timestamp -1).

use std::rc::Rc;

use futures::future::LocalBoxFuture;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;

use super::partitioned::Plan;
use super::{errors, Broker, Ctx, Reply, Versions};
use crate::catalog;
use crate::log::ops::{FoundOffset, OffsetQuery};
use crate::log::{Isolation, Partitions};

/// v8 and v9 only allow -4 and -5; v10 adds a timeout for tiered-storage lookups, which a log
/// without tiered storage never waits on.
pub const VERSIONS: Versions = Versions { min: 1, max: 10 };

pub const LATEST_TIMESTAMP: i64 = -1;
pub const EARLIEST_TIMESTAMP: i64 = -2;
pub const MAX_TIMESTAMP: i64 = -3;
pub const EARLIEST_LOCAL_TIMESTAMP: i64 = -4;
pub const LATEST_TIERED_TIMESTAMP: i64 = -5;

/// The replica id of a consumer's request: only consumers are bound by isolation.
const CONSUMER_REPLICA_ID: i32 = -1;

/// One partition's answer: offset and timestamp (-1 when none), or the error.
type Answer = Result<(i64, i64), ResponseError>;

/// The first version that may ask a special timestamp (Kafka's
/// `ReplicaManager.timestampMinSupportedVersion`); `None` for a value Kafka gives no meaning.
fn min_version(timestamp: i64) -> Option<i16> {
    match timestamp {
        LATEST_TIMESTAMP | EARLIEST_TIMESTAMP => Some(1),
        MAX_TIMESTAMP => Some(7),
        EARLIEST_LOCAL_TIMESTAMP => Some(8),
        LATEST_TIERED_TIMESTAMP => Some(9),
        _ => None,
    }
}

/// The query a request's timestamp stands for at `version`; `None` when Kafka answers
/// UNSUPPORTED_VERSION. `read_committed` asks the latest stable offset instead of the high
/// watermark, and bounds what a lookup by time may answer by it.
fn query(timestamp: i64, version: i16, read_committed: bool) -> Option<OffsetQuery> {
    if timestamp < 0 && min_version(timestamp).is_none_or(|min| version < min) {
        return None;
    }
    let isolation = if read_committed {
        Isolation::ReadCommitted
    } else {
        Isolation::ReadUncommitted
    };
    Some(match timestamp {
        LATEST_TIMESTAMP if read_committed => OffsetQuery::LatestStable,
        LATEST_TIMESTAMP => OffsetQuery::Latest,
        EARLIEST_TIMESTAMP => OffsetQuery::Earliest,
        MAX_TIMESTAMP => OffsetQuery::MaxTimestamp(isolation),
        EARLIEST_LOCAL_TIMESTAMP => OffsetQuery::EarliestLocal,
        LATEST_TIERED_TIMESTAMP => OffsetQuery::LatestTiered,
        ts => OffsetQuery::Timestamp(ts, isolation),
    })
}

/// No record that recent: Kafka answers offset -1, timestamp -1.
fn answer(found: Option<FoundOffset>) -> (i64, i64) {
    found.map_or((-1, -1), |f| (f.offset, f.timestamp.unwrap_or(-1)))
}

pub async fn handle(broker: &Rc<Broker>, ctx: Ctx, req: ListOffsetsRequest) -> Reply {
    let catalog = broker.catalog.get();
    let shard = &broker.shard;
    let read_committed = req.isolation_level == 1 && req.replica_id.0 == CONSUMER_REPLICA_ID;
    // As Kafka: a partition asked twice is refused (each time it is asked).
    let mut seen = std::collections::HashSet::new();
    let duplicated: std::collections::HashSet<(&str, i32)> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.0.as_str(), p.partition_index))
        })
        .filter(|tp| !seen.insert(*tp))
        .collect();
    let mut plan: Plan<(String, i32, OffsetQuery), Answer> = Plan::new(shard.count);
    for t in &req.topics {
        let topic = t.name.0.to_string();
        plan.topic(topic.clone());
        for p in &t.partitions {
            let index = p.partition_index;
            match query(p.timestamp, ctx.version, read_committed) {
                _ if duplicated.contains(&(topic.as_str(), index)) => {
                    plan.answer(index, Err(ResponseError::InvalidRequest))
                }
                None => plan.answer(index, Err(ResponseError::UnsupportedVersion)),
                _ if !catalog.has_partition(&topic, index) => {
                    plan.answer(index, Err(ResponseError::UnknownTopicOrPartition))
                }
                Some(q) => {
                    let owner = catalog::owner_shard(&topic, index, shard.count);
                    plan.route(index, owner, (topic.clone(), index, q));
                }
            }
        }
    }
    let missing = || Err(ResponseError::NotLeaderOrFollower);
    let topics = plan
        .run(
            shard,
            |parts| {
                move |partitions: &Rc<Partitions>| {
                    let offsets = partitions.offsets(parts);
                    Box::pin(async move {
                        let answers = offsets.await.into_iter();
                        answers
                            .map(|r| r.map(answer).map_err(|e| errors::log(&e)))
                            .collect()
                    }) as LocalBoxFuture<'static, Vec<Answer>>
                }
            },
            missing,
        )
        .await
        .into_iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|(index, a)| {
                    let mut p = ListOffsetsPartitionResponse::default().with_partition_index(index);
                    match a {
                        Ok((offset, timestamp)) => {
                            // The leader epoch of what was found (always 0 on a single
                            // node); -1 with no answer, as Kafka leaves it.
                            if ctx.version >= 4 && offset >= 0 {
                                p.leader_epoch = 0;
                            }
                            p.with_offset(offset).with_timestamp(timestamp)
                        }
                        Err(e) => p
                            .with_error_code(e.code())
                            .with_offset(-1)
                            .with_timestamp(-1),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(super::topic_name(&name))
                .with_partitions(partitions)
        })
        .collect();
    ctx.reply(&ListOffsetsResponse::default().with_topics(topics))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Special timestamps need the version that introduced them, as Kafka checks; any other
    /// negative value is unsupported, and a timestamp lookup carries the reader's isolation.
    #[test]
    fn special_timestamps_by_version() {
        let rc = Isolation::ReadCommitted;
        let ru = Isolation::ReadUncommitted;
        assert_eq!(query(-1, 1, false), Some(OffsetQuery::Latest));
        assert_eq!(query(-1, 2, true), Some(OffsetQuery::LatestStable));
        assert_eq!(query(-2, 1, true), Some(OffsetQuery::Earliest));
        assert_eq!(query(-3, 6, false), None);
        assert_eq!(query(-3, 7, true), Some(OffsetQuery::MaxTimestamp(rc)));
        assert_eq!(query(-4, 7, false), None);
        assert_eq!(query(-4, 8, false), Some(OffsetQuery::EarliestLocal));
        assert_eq!(query(-5, 8, false), None);
        assert_eq!(query(-5, 9, false), Some(OffsetQuery::LatestTiered));
        assert_eq!(query(-6, 10, false), None);
        assert_eq!(query(i64::MIN, 10, false), None);
        assert_eq!(query(0, 1, false), Some(OffsetQuery::Timestamp(0, ru)));
        assert_eq!(
            query(1_700_000_000_000, 5, true),
            Some(OffsetQuery::Timestamp(1_700_000_000_000, rc))
        );
    }
}
