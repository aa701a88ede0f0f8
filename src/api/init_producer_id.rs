//! InitProducerId: a producer id and epoch for an idempotent producer (a fresh id from this
//! shard's block), or for a transactional one from its transactional id's coordinator (the
//! id's producer with its epoch bumped, fencing older producers; KIP-360 retries).

use std::rc::Rc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::{errors, Broker, Ctx, Reply, Versions};
use crate::txn::{self, InitRequest};

pub const VERSIONS: Versions = Versions { min: 0, max: 5 };

pub async fn handle(broker: &Rc<Broker>, ctx: Ctx, req: InitProducerIdRequest) -> Reply {
    let answer = match req.transactional_id {
        None => txn::client::new_producer_id(&broker.shard).await,
        Some(id) => {
            // v3+ carries the producer's current id and epoch (-1 when it has none).
            let expected = (ctx.version >= 3 && req.producer_id.0 >= 0)
                .then_some((req.producer_id.0, req.producer_epoch));
            let init = InitRequest {
                timeout_ms: req.transaction_timeout_ms,
                expected,
            };
            let catalog = broker.catalog.get();
            txn::client::init_producer_id(&broker.shard, &catalog, id.0.to_string(), init).await
        }
    };
    let code = errors::txn_code(&answer);
    let (pid, epoch) = answer.unwrap_or((-1, -1));
    ctx.reply(
        &InitProducerIdResponse::default()
            .with_error_code(code)
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch),
    )
}
