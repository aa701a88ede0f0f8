//! DescribeTransactions: each transactional id's state, producer, timeout, start and the
//! partitions of its open transaction, from the id's coordinator.

use std::rc::Rc;

use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId,
};
use kafka_protocol::ResponseError;

use super::{by_topic, errors, str_bytes, topic_name, Broker, Ctx, Reply, Versions};
use crate::txn::{self, TxnStatus};

pub const VERSIONS: Versions = Versions { min: 0, max: 0 };

/// Kafka's name of a transaction state (`TransactionState.name`).
pub fn state_name(s: TxnStatus) -> &'static str {
    match s {
        TxnStatus::Empty => "Empty",
        TxnStatus::Ongoing => "Ongoing",
        TxnStatus::PrepareCommit => "PrepareCommit",
        TxnStatus::PrepareAbort => "PrepareAbort",
        TxnStatus::CompleteCommit => "CompleteCommit",
        TxnStatus::CompleteAbort => "CompleteAbort",
        TxnStatus::Dead => "Dead",
        TxnStatus::PrepareEpochFence => "PrepareEpochFence",
    }
}

pub async fn handle(broker: &Rc<Broker>, ctx: Ctx, req: DescribeTransactionsRequest) -> Reply {
    let catalog = broker.catalog.get();
    let mut states = Vec::with_capacity(req.transactional_ids.len());
    for id in req.transactional_ids {
        let answer = txn::client::describe(&broker.shard, &catalog, id.0.to_string()).await;
        let state = TransactionState::default().with_transactional_id(id);
        states.push(match answer {
            Ok(Some(m)) => {
                let topics = by_topic(m.partitions.iter().map(|(t, p)| (t.clone(), *p)))
                    .into_iter()
                    .map(|(t, ps)| {
                        TopicData::default()
                            .with_topic(topic_name(&t))
                            .with_partitions(ps)
                    })
                    .collect();
                state
                    .with_transaction_state(str_bytes(state_name(m.status)))
                    .with_transaction_timeout_ms(m.timeout_ms)
                    .with_transaction_start_time_ms(m.start_ms)
                    .with_producer_id(ProducerId(m.producer_id))
                    .with_producer_epoch(m.epoch)
                    .with_topics(topics)
            }
            Ok(None) => state.with_error_code(ResponseError::TransactionalIdNotFound.code()),
            Err(e) => state.with_error_code(errors::txn(&e).code()),
        });
    }
    ctx.reply(&DescribeTransactionsResponse::default().with_transaction_states(states))
}
