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
use super::{errors, old_versions, Broker, Ctx, Reply, Versions};
use crate::catalog;
use crate::log::ops::{FoundOffset, OffsetQuery};
use crate::log::partition::OffsetsFrom;
use crate::log::{Isolation, LogError, Partitions};

/// v0 (a list of offsets per partition, `handle_v0`) is decoded by `old_versions`, as
/// kafka-protocol no longer knows it. v8 and v9 only allow -4 and -5; v10 adds a timeout for
/// tiered-storage lookups, which a log without tiered storage never waits on.
pub const VERSIONS: Versions = Versions { min: 0, max: 10 };

pub const LATEST_TIMESTAMP: i64 = -1;
pub const EARLIEST_TIMESTAMP: i64 = -2;
pub const MAX_TIMESTAMP: i64 = -3;
pub const EARLIEST_LOCAL_TIMESTAMP: i64 = -4;
pub const LATEST_TIERED_TIMESTAMP: i64 = -5;

/// The replica id of a consumer's request: only consumers are bound by isolation.
const CONSUMER_REPLICA_ID: i32 = -1;

/// The first version that may ask a special timestamp (Kafka's
/// `ReplicaManager.timestampMinSupportedVersion`); `None` for a value Kafka gives no meaning.
fn min_version(timestamp: i64) -> Option<i16> {
    match timestamp {
        LATEST_TIMESTAMP | EARLIEST_TIMESTAMP => Some(0),
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
    let read_committed = req.isolation_level == 1 && req.replica_id.0 == CONSUMER_REPLICA_ID;
    let version = ctx.version;
    let asks = req.topics.iter().map(|t| {
        t.partitions
            .iter()
            .map(|p| query(p.timestamp, version, read_committed))
    });
    let found = answers(broker, &ctx, &req, true, asks, Partitions::offsets).await;
    let topics = found
        .into_iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|(index, a)| {
                    let mut p = ListOffsetsPartitionResponse::default().with_partition_index(index);
                    match a.map(answer) {
                        Ok((offset, timestamp)) => {
                            // The leader epoch of what was found (always 0 on a single
                            // node); -1 with no answer, as Kafka leaves it.
                            if version >= 4 && offset >= 0 {
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

/// ListOffsets v0 (decoded by `old_versions`: `req` as v1 would ask it, and each partition's
/// `max_num_offsets` in request order): the same path as `handle`, asking each owner for
/// Kafka's legacy list of offsets (`PartitionLog::offsets_before`) instead of one offset.
/// A timestamp below -2 is UNSUPPORTED_VERSION for its partition, as Kafka answers it; a
/// partition asked twice is answered twice (Kafka's v0 path does not look for duplicates).
pub async fn handle_v0(
    broker: &Rc<Broker>,
    ctx: Ctx,
    req: ListOffsetsRequest,
    max_num_offsets: Vec<i32>,
) -> Reply {
    let mut max = max_num_offsets.into_iter();
    let asks: Vec<Vec<Option<(OffsetsFrom, usize)>>> = req
        .topics
        .iter()
        .map(|t| {
            t.partitions
                .iter()
                .map(|p| {
                    // A negative count asks for nothing (Kafka fails that partition on a
                    // negative array size).
                    let max = usize::try_from(max.next().unwrap_or(1)).unwrap_or(0);
                    let from = match p.timestamp {
                        LATEST_TIMESTAMP => OffsetsFrom::Latest,
                        EARLIEST_TIMESTAMP => OffsetsFrom::Earliest,
                        ts if ts < 0 => return None,
                        ts => OffsetsFrom::Time(ts),
                    };
                    Some((from, max))
                })
                .collect()
        })
        .collect();
    let found = answers(broker, &ctx, &req, false, asks, Partitions::offsets_before).await;
    let topics = found
        .into_iter()
        .map(|(name, partitions)| old_versions::ListOffsetsV0Topic {
            name,
            partitions: partitions
                .into_iter()
                .map(|(index, a)| match a {
                    Ok(offsets) => (index, 0, offsets),
                    Err(e) => (index, e.code(), Vec::new()),
                })
                .collect(),
        })
        .collect();
    ctx.reply(&old_versions::ListOffsetsV0Response { topics })
}

/// What an owner shard runs on its parts of a ListOffsets: `Partitions::offsets` (v1+) or
/// `Partitions::offsets_before` (v0).
type OwnerOp<Q, A> =
    fn(&Rc<Partitions>, Vec<(String, i32, Q)>) -> LocalBoxFuture<'static, Vec<Result<A, LogError>>>;

/// The path every version takes: plans `req`'s partitions in request order with what `asks`
/// says of each (topic by topic; `None` is UNSUPPORTED_VERSION), refusing unknown partitions
/// and, when `refuse_duplicates`, each partition asked more than once; has each owner shard answer its parts with `run`; and gathers the
/// answers by topic in request order.
async fn answers<Q, A>(
    broker: &Rc<Broker>,
    ctx: &Ctx,
    req: &ListOffsetsRequest,
    refuse_duplicates: bool,
    asks: impl IntoIterator<Item = impl IntoIterator<Item = Option<Q>>>,
    run: OwnerOp<Q, A>,
) -> Vec<(String, Vec<(i32, Result<A, ResponseError>)>)>
where
    Q: Send + 'static,
    A: Send + 'static,
{
    let catalog = broker.catalog.get();
    let shard = &broker.shard;
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
    let mut plan: Plan<(String, i32, Q), Result<A, ResponseError>> = Plan::new(shard.count);
    for (t, asks) in req.topics.iter().zip(asks) {
        let topic = t.name.0.to_string();
        plan.topic(topic.clone());
        let describable = super::topic_authorized(
            &catalog,
            &shard.config,
            ctx,
            crate::catalog::acl::OP_DESCRIBE,
            &topic,
        );
        for (p, ask) in t.partitions.iter().zip(asks) {
            let index = p.partition_index;
            match ask {
                _ if !describable => {
                    plan.answer(index, Err(ResponseError::TopicAuthorizationFailed))
                }
                _ if refuse_duplicates && duplicated.contains(&(topic.as_str(), index)) => {
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
    plan.run(
        shard,
        |parts| {
            move |partitions: &Rc<Partitions>| {
                let answers = run(partitions, parts);
                Box::pin(async move {
                    let answers = answers.await.into_iter();
                    answers.map(|r| r.map_err(|e| errors::log(&e))).collect()
                }) as LocalBoxFuture<'static, Vec<Result<A, ResponseError>>>
            }
        },
        missing,
    )
    .await
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
