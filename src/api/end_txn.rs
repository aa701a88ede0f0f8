//! EndTxn: commits or aborts a producer's transaction; answered once every partition of it has
//! its marker and the coordinator has written the transaction complete.

use std::rc::Rc;

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};

use super::{errors, Broker, Ctx, Reply, Versions};
use crate::txn;

/// v5 (KIP-890 part 2: an epoch bump per transaction) is Kafka 4's; Kafka 3.9 serves 0-4.
pub const VERSIONS: Versions = Versions { min: 0, max: 4 };

pub async fn handle(broker: &Rc<Broker>, ctx: Ctx, req: EndTxnRequest) -> Reply {
    let catalog = broker.catalog.get();
    let producer = (req.producer_id.0, req.producer_epoch);
    let id = req.transactional_id.0.to_string();
    let answer = txn::client::end_txn(&broker.shard, &catalog, id, producer, req.committed).await;
    ctx.reply(&EndTxnResponse::default().with_error_code(errors::txn_code(&answer)))
}
