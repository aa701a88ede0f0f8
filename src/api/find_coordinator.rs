//! FindCoordinator: until the group and transaction coordinators exist (issue #4 and later),
//! every key is answered with COORDINATOR_NOT_AVAILABLE, which clients retry.
//!
//! It is advertised anyway because clients infer broker features from it: librdkafka only
//! compresses with LZ4 when the broker lists FindCoordinator (rdkafka_feature.c), and would
//! otherwise send LZ4 batches uncompressed without a word.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::ResponseError;

use super::{str_bytes, Ctx, Reply, Versions};

pub const VERSIONS: Versions = Versions { min: 0, max: 6 };

const NOT_YET: &str = "consumer groups and transactions are not implemented yet";

pub fn handle(ctx: Ctx, req: FindCoordinatorRequest) -> Reply {
    let code = ResponseError::CoordinatorNotAvailable.code();
    let mut resp = FindCoordinatorResponse::default()
        .with_node_id(BrokerId(-1))
        .with_port(-1);
    if ctx.version >= 4 {
        // Batched keys (KIP-699): one answer per key.
        resp.coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| {
                Coordinator::default()
                    .with_key(key)
                    .with_node_id(BrokerId(-1))
                    .with_port(-1)
                    .with_error_code(code)
                    .with_error_message(Some(str_bytes(NOT_YET)))
            })
            .collect();
    } else {
        resp.error_code = code;
        if ctx.version >= 1 {
            resp.error_message = Some(str_bytes(NOT_YET));
        }
    }
    ctx.reply(&resp)
}
