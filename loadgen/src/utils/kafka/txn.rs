//! Idempotent and transactional producer requests: InitProducerId, AddPartitionsToTxn (the
//! v0-3 form: one transactional id, its producer id and epoch, its topics) and EndTxn (v0-4).
//! The coordinator of a transactional id is found with [`super::group::find_coordinator`]
//! (key type 1).
//!
//! Each request retries the errors Kafka's clients retry (the coordinator loading or moving, a
//! transaction still completing) until its `wait` has passed; any other error is the caller's.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, EndTxnRequest, EndTxnResponse,
    InitProducerIdRequest, InitProducerIdResponse, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use super::admin::{code, error_name, topic_name};
use super::Connection;

/// First wait before retrying (Java's producer retries AddPartitionsToTxn after 20 ms when a
/// transaction is still completing); doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_millis(200);
/// AddPartitionsToTxn's answer for a partition not tried because another one failed.
const OPERATION_NOT_ATTEMPTED: i16 = 55;

/// Transaction timeout a transactional producer asks for (Java's `transaction.timeout.ms`
/// default; Kafka accepts up to `transaction.max.timeout.ms`, 15 minutes by default).
pub const TRANSACTION_TIMEOUT_MS: i32 = 60_000;
/// `transaction_timeout_ms` of an idempotent producer's InitProducerId: Kafka ignores it when
/// the transactional id is null; librdkafka sends -1 (the Java client `Integer.MAX_VALUE`).
pub const NO_TRANSACTION_TIMEOUT_MS: i32 = -1;

/// Whether a transaction-API error goes away by retrying.
pub fn retriable(error: i16) -> bool {
    matches!(
        error,
        code::COORDINATOR_LOAD_IN_PROGRESS
            | code::COORDINATOR_NOT_AVAILABLE
            | code::NOT_COORDINATOR
            | code::CONCURRENT_TRANSACTIONS
    )
}

/// A producer id and epoch, as InitProducerId gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdEpoch {
    pub id: i64,
    pub epoch: i16,
}

/// A transactional producer's identity: what AddPartitionsToTxn and EndTxn name.
#[derive(Debug, Clone)]
pub struct TxnProducer {
    pub transactional_id: String,
    pub pid: ProducerIdEpoch,
}

impl TxnProducer {
    fn id(&self) -> TransactionalId {
        TransactionalId(StrBytes::from_string(self.transactional_id.clone()))
    }
}

/// Retries `attempt` while it answers a retriable error code, backing off, until `wait` has
/// passed; `what` names the request in errors.
async fn with_retries<T, F, Fut>(what: &str, wait: Duration, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<std::result::Result<T, i16>>>,
{
    let deadline = Instant::now() + wait;
    let mut backoff = FIRST_BACKOFF;
    loop {
        let error = match attempt().await? {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if !retriable(error) || Instant::now() + backoff > deadline {
            bail!("{what}: {}", error_name(error));
        }
        glommio::timer::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// The InitProducerId request: `transactional_id` None for an idempotent producer (timeout
/// [`NO_TRANSACTION_TIMEOUT_MS`]), Some for a transactional one; a new producer (v3+: producer
/// id and epoch -1).
pub fn init_producer_id_request(
    transactional_id: Option<&str>,
    transaction_timeout_ms: i32,
) -> InitProducerIdRequest {
    InitProducerIdRequest::default()
        .with_transactional_id(
            transactional_id.map(|t| TransactionalId(StrBytes::from_string(t.to_string()))),
        )
        .with_transaction_timeout_ms(transaction_timeout_ms)
        .with_producer_id((-1).into())
        .with_producer_epoch(-1)
}

/// A producer id and epoch from InitProducerId `version` on `conn` (for a transactional id:
/// its coordinator's connection).
pub async fn init_producer_id(
    conn: &Connection,
    version: i16,
    transactional_id: Option<&str>,
    transaction_timeout_ms: i32,
    timeout: Duration,
    wait: Duration,
) -> Result<ProducerIdEpoch> {
    let req = init_producer_id_request(transactional_id, transaction_timeout_ms);
    let what = match transactional_id {
        Some(t) => format!("InitProducerId for transactional id {t}"),
        None => "InitProducerId".to_string(),
    };
    with_retries(&what, wait, || async {
        let resp: InitProducerIdResponse = conn
            .request(ApiKey::InitProducerId, version, &req, timeout)
            .await?;
        Ok(match resp.error_code {
            0 => Ok(ProducerIdEpoch {
                id: resp.producer_id.0,
                epoch: resp.producer_epoch,
            }),
            e => Err(e),
        })
    })
    .await
    .and_then(|p| {
        if p.id < 0 || p.epoch < 0 {
            bail!("{what}: no producer id in the answer ({p:?})");
        }
        Ok(p)
    })
}

/// The AddPartitionsToTxn request (v0-3 form) adding `partitions` of `topic`.
pub fn add_partitions_request(
    txn: &TxnProducer,
    topic: &str,
    partitions: &[i32],
) -> AddPartitionsToTxnRequest {
    AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(txn.id())
        .with_v3_and_below_producer_id(txn.pid.id.into())
        .with_v3_and_below_producer_epoch(txn.pid.epoch)
        .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(partitions.to_vec())])
}

/// The first error of an AddPartitionsToTxn answer for `partitions` (0: every one added):
/// a retriable one if any partition's is (the others then say "not attempted"), and an error
/// for a partition the answer leaves out.
pub fn add_partitions_error(resp: &AddPartitionsToTxnResponse, partitions: &[i32]) -> i16 {
    let results: Vec<(i32, i16)> = resp
        .results_by_topic_v3_and_below
        .iter()
        .flat_map(|t| t.results_by_partition.iter())
        .map(|r| (r.partition_index, r.partition_error_code))
        .collect();
    let codes = results
        .iter()
        .map(|&(_, c)| c)
        .filter(|&c| c != 0 && c != OPERATION_NOT_ATTEMPTED);
    if let Some(c) = codes
        .clone()
        .find(|&c| !retriable(c))
        .or(codes.clone().next())
    {
        return c;
    }
    if results.iter().any(|&(_, c)| c == OPERATION_NOT_ATTEMPTED) {
        return OPERATION_NOT_ATTEMPTED;
    }
    if partitions
        .iter()
        .any(|p| !results.iter().any(|&(q, _)| q == *p))
    {
        return code::UNKNOWN_TOPIC_OR_PARTITION;
    }
    0
}

/// Adds `partitions` of `topic` to `txn`'s transaction (AddPartitionsToTxn `version`, 0-3, on
/// the coordinator's connection).
pub async fn add_partitions_to_txn(
    conn: &Connection,
    version: i16,
    txn: &TxnProducer,
    topic: &str,
    partitions: &[i32],
    timeout: Duration,
    wait: Duration,
) -> Result<()> {
    if version > 3 {
        return Err(anyhow!(
            "AddPartitionsToTxn v{version}: this client sends v0-3 only"
        ));
    }
    let req = add_partitions_request(txn, topic, partitions);
    let what = format!(
        "AddPartitionsToTxn for transactional id {} ({topic} {partitions:?})",
        txn.transactional_id
    );
    with_retries(&what, wait, || async {
        let resp: AddPartitionsToTxnResponse = conn
            .request(ApiKey::AddPartitionsToTxn, version, &req, timeout)
            .await?;
        Ok(match add_partitions_error(&resp, partitions) {
            0 => Ok(()),
            e => Err(e),
        })
    })
    .await
}

/// The EndTxn request ending `txn`'s transaction: committed, or aborted.
pub fn end_txn_request(txn: &TxnProducer, commit: bool) -> EndTxnRequest {
    EndTxnRequest::default()
        .with_transactional_id(txn.id())
        .with_producer_id(txn.pid.id.into())
        .with_producer_epoch(txn.pid.epoch)
        .with_committed(commit)
}

/// Ends `txn`'s transaction (EndTxn `version` on the coordinator's connection).
pub async fn end_txn(
    conn: &Connection,
    version: i16,
    txn: &TxnProducer,
    commit: bool,
    timeout: Duration,
    wait: Duration,
) -> Result<()> {
    let req = end_txn_request(txn, commit);
    let what = format!(
        "EndTxn ({}) for transactional id {}",
        if commit { "commit" } else { "abort" },
        txn.transactional_id
    );
    with_retries(&what, wait, || async {
        let resp: EndTxnResponse = conn.request(ApiKey::EndTxn, version, &req, timeout).await?;
        Ok(match resp.error_code {
            0 => Ok(()),
            e => Err(e),
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::add_partitions_to_txn_response::{
        AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
    };
    use kafka_protocol::protocol::Encodable;

    fn txn() -> TxnProducer {
        TxnProducer {
            transactional_id: "bench-3".into(),
            pid: ProducerIdEpoch { id: 77, epoch: 2 },
        }
    }

    /// Asserts that `m` encodes in `version` (the encoder fails on a field the version lacks).
    fn encodes<T: Encodable>(m: &T, version: i16) {
        let mut buf = BytesMut::new();
        m.encode(&mut buf, version)
            .unwrap_or_else(|e| panic!("v{version}: {e}"));
        assert!(!buf.is_empty());
    }

    #[test]
    fn init_producer_id_requests() {
        // Idempotent: null transactional id, a new producer (id and epoch -1).
        let r = init_producer_id_request(None, NO_TRANSACTION_TIMEOUT_MS);
        assert_eq!(r.transactional_id, None);
        assert_eq!(r.transaction_timeout_ms, -1);
        assert_eq!((r.producer_id.0, r.producer_epoch), (-1, -1));
        for v in 0..=4 {
            encodes(&r, v);
        }
        let r = init_producer_id_request(Some("bench-0"), TRANSACTION_TIMEOUT_MS);
        assert_eq!(r.transactional_id.as_ref().unwrap().0.as_str(), "bench-0");
        assert_eq!(r.transaction_timeout_ms, 60_000);
        for v in 0..=4 {
            encodes(&r, v);
        }
    }

    #[test]
    fn add_partitions_and_end_txn_requests() {
        let r = add_partitions_request(&txn(), "t", &[0, 5]);
        assert_eq!(r.v3_and_below_transactional_id.0.as_str(), "bench-3");
        assert_eq!(r.v3_and_below_producer_id.0, 77);
        assert_eq!(r.v3_and_below_producer_epoch, 2);
        assert_eq!(r.v3_and_below_topics.len(), 1);
        assert_eq!(r.v3_and_below_topics[0].name.0.as_str(), "t");
        assert_eq!(r.v3_and_below_topics[0].partitions, vec![0, 5]);
        assert!(r.transactions.is_empty());
        for v in 0..=3 {
            encodes(&r, v);
        }
        let r = end_txn_request(&txn(), true);
        assert_eq!(r.transactional_id.0.as_str(), "bench-3");
        assert_eq!(
            (r.producer_id.0, r.producer_epoch, r.committed),
            (77, 2, true)
        );
        for v in 0..=4 {
            encodes(&r, v);
        }
        assert!(!end_txn_request(&txn(), false).committed);
    }

    fn answer(codes: &[(i32, i16)]) -> AddPartitionsToTxnResponse {
        AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(vec![
            AddPartitionsToTxnTopicResult::default()
                .with_name(topic_name("t"))
                .with_results_by_partition(
                    codes
                        .iter()
                        .map(|&(p, c)| {
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(p)
                                .with_partition_error_code(c)
                        })
                        .collect(),
                ),
        ])
    }

    #[test]
    fn add_partitions_errors() {
        assert_eq!(add_partitions_error(&answer(&[(0, 0), (1, 0)]), &[0, 1]), 0);
        // A retriable error with the others not attempted: retriable.
        let r = answer(&[
            (0, code::CONCURRENT_TRANSACTIONS),
            (1, OPERATION_NOT_ATTEMPTED),
        ]);
        assert_eq!(
            add_partitions_error(&r, &[0, 1]),
            code::CONCURRENT_TRANSACTIONS
        );
        assert!(retriable(add_partitions_error(&r, &[0, 1])));
        // A fatal error wins over a retriable one.
        let r = answer(&[(0, code::CONCURRENT_TRANSACTIONS), (1, 47)]);
        assert_eq!(add_partitions_error(&r, &[0, 1]), 47);
        // A partition left out of the answer.
        assert_eq!(
            add_partitions_error(&answer(&[(0, 0)]), &[0, 1]),
            code::UNKNOWN_TOPIC_OR_PARTITION
        );
    }
}
