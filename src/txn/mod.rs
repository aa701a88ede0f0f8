//! Producer ids, idempotence and transactions: the coordinator side.
//!
//! - `ids`: producer ids, granted in blocks by the control shard and never repeated, even
//!   across a kill -9 (Kafka's `AllocateProducerIds`).
//! - `coordinator`: the transaction coordinator. A transactional id belongs to partition
//!   `abs(hash(id)) % transaction.state.log.num.partitions` of the internal compacted topic
//!   `__transaction_state` (Kafka's placement), and the shard owning that partition coordinates
//!   it; its state is stored there in Kafka's record formats (`records`) and replayed when the
//!   partition opens. `state` holds the rules, as pure functions.
//! - `client`: how other layers reach a transactional id's coordinator.
//!
//! The per-partition side of idempotence and transactions (sequence checks, duplicates, the
//! last stable offset, aborted transactions) is partition state and lives with the partition
//! in `log::producers`: it is checked where offsets are assigned, and rebuilt with the log.

pub mod client;
pub mod coordinator;
pub mod error;
pub mod ids;
pub mod records;
pub mod state;

pub use coordinator::TxnCoordinator;
pub use error::TxnError;
pub use ids::ProducerIds;
pub use records::TxnStatus;
pub use state::InitRequest;
