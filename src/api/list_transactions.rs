//! ListTransactions: every transactional id of every shard's coordinator, filtered by state,
//! producer id and (v1) how long the transaction has been open.

use std::rc::Rc;

use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{ListTransactionsRequest, ListTransactionsResponse, ProducerId};

use super::describe_transactions::state_name;
use super::{str_bytes, Broker, Ctx, Reply, Versions};
use crate::txn;

/// v2 (a transactional id pattern) is Kafka 4's.
pub const VERSIONS: Versions = Versions { min: 0, max: 1 };

const STATES: &[&str] = &[
    "Empty",
    "Ongoing",
    "PrepareCommit",
    "PrepareAbort",
    "CompleteCommit",
    "CompleteAbort",
    "Dead",
    "PrepareEpochFence",
];

pub async fn handle(broker: &Rc<Broker>, ctx: Ctx, req: ListTransactionsRequest) -> Reply {
    let states: Vec<String> = req.state_filters.iter().map(|s| s.to_string()).collect();
    let unknown: Vec<_> = states
        .iter()
        .filter(|s| !STATES.contains(&s.as_str()))
        .map(|s| str_bytes(s.clone()))
        .collect();
    let pids: Vec<i64> = req.producer_id_filters.iter().map(|p| p.0).collect();
    // v1: only transactions open longer than this (-1: any).
    let min_duration = if ctx.version >= 1 {
        req.duration_filter
    } else {
        -1
    };
    let now = crate::util::now_ms();
    let listed = txn::client::list(&broker.shard)
        .await
        .into_iter()
        .filter(|v| states.is_empty() || states.iter().any(|s| s == state_name(v.meta.status)))
        .filter(|v| pids.is_empty() || pids.contains(&v.meta.producer_id))
        .filter(|v| {
            min_duration < 0 || (v.meta.start_ms >= 0 && now - v.meta.start_ms > min_duration)
        })
        .map(|v| {
            TransactionState::default()
                .with_transactional_id(kafka_protocol::messages::TransactionalId(str_bytes(
                    v.transactional_id,
                )))
                .with_producer_id(ProducerId(v.meta.producer_id))
                .with_transaction_state(str_bytes(state_name(v.meta.status)))
        })
        .collect();
    ctx.reply(
        &ListTransactionsResponse::default()
            .with_unknown_state_filters(unknown)
            .with_transaction_states(listed),
    )
}
