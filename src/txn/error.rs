//! The transaction layer's one error type. The api edge maps each variant to a Kafka error
//! code (`api::errors::txn`); nothing here knows the codes.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnError {
    /// `__transaction_state` does not exist yet, or the coordinator cannot write it.
    CoordinatorNotAvailable,
    /// This broker is stopping.
    NotCoordinator,
    /// The coordinator's partition is still being loaded.
    CoordinatorLoadInProgress,
    /// Another operation on the transactional id is in flight (markers being written).
    ConcurrentTransactions,
    /// The producer id is not the one the transactional id has.
    InvalidProducerIdMapping,
    /// A newer producer with the same transactional id exists (or the transaction timed out).
    ProducerFenced,
    /// The request is not valid in the transaction's state.
    InvalidTxnState,
    /// The transaction timeout is not within `1..=transaction.max.timeout.ms`.
    InvalidTransactionTimeout,
    /// Writing the transaction log, or allocating a producer id, failed.
    Storage(String),
}

impl std::fmt::Display for TxnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TxnError::CoordinatorNotAvailable => write!(f, "transaction coordinator not available"),
            TxnError::NotCoordinator => write!(f, "not the transaction coordinator"),
            TxnError::CoordinatorLoadInProgress => write!(f, "transaction coordinator loading"),
            TxnError::ConcurrentTransactions => {
                write!(
                    f,
                    "another operation on this transactional id is in progress"
                )
            }
            TxnError::InvalidProducerIdMapping => {
                write!(f, "the producer id does not match the transactional id")
            }
            TxnError::ProducerFenced => {
                write!(f, "a newer producer with this transactional id exists")
            }
            TxnError::InvalidTxnState => write!(f, "invalid transaction state"),
            TxnError::InvalidTransactionTimeout => write!(
                f,
                "transaction timeout outside 1..=transaction.max.timeout.ms"
            ),
            TxnError::Storage(e) => write!(f, "transaction log: {e}"),
        }
    }
}
