//! The one place where the layers' errors become Kafka error codes. Each layer below `api`
//! has its own error type and knows nothing of the codes; a handler maps what it gets here.

use kafka_protocol::ResponseError;

use crate::catalog::change::ChangeError;
use crate::group;
use crate::log::batch::BatchError;
use crate::log::producers::ProducerError;
use crate::log::LogError;
use crate::txn::TxnError;

/// A partition's log failure.
pub fn log(e: &LogError) -> ResponseError {
    match e {
        LogError::OffsetOutOfRange => ResponseError::OffsetOutOfRange,
        LogError::Storage(_) => ResponseError::KafkaStorageError,
        // Gone while the request was in flight, or not open here yet: clients retry.
        LogError::Closed | LogError::NotOpen => ResponseError::NotLeaderOrFollower,
        LogError::UnknownPartition => ResponseError::UnknownTopicOrPartition,
        LogError::Batch(b) => batch(b),
        LogError::NoRecords => ResponseError::CorruptMessage,
        LogError::Producer(p) => producer(p),
    }
}

/// A batch the producer state refused.
pub fn producer(e: &ProducerError) -> ResponseError {
    match e {
        ProducerError::FencedEpoch { .. } => ResponseError::InvalidProducerEpoch,
        ProducerError::OutOfOrder { .. } => ResponseError::OutOfOrderSequenceNumber,
        ProducerError::InvalidTxnState(_) => ResponseError::InvalidTxnState,
    }
}

/// A produced batch that failed validation.
pub fn batch(e: &BatchError) -> ResponseError {
    match e {
        BatchError::Corrupt(_) => ResponseError::CorruptMessage,
        BatchError::TooLarge { .. } => ResponseError::MessageTooLarge,
        BatchError::Invalid(_) | BatchError::Records { .. } => ResponseError::InvalidRecord,
    }
}

/// A group coordinator's refusal.
pub fn group(e: group::Error) -> ResponseError {
    use group::Error as G;
    match e {
        G::CoordinatorNotAvailable => ResponseError::CoordinatorNotAvailable,
        G::NotCoordinator => ResponseError::NotCoordinator,
        G::CoordinatorLoadInProgress => ResponseError::CoordinatorLoadInProgress,
        G::UnknownMemberId => ResponseError::UnknownMemberId,
        G::IllegalGeneration => ResponseError::IllegalGeneration,
        G::RebalanceInProgress => ResponseError::RebalanceInProgress,
        G::FencedInstanceId => ResponseError::FencedInstanceId,
        G::InconsistentGroupProtocol => ResponseError::InconsistentGroupProtocol,
        G::InvalidSessionTimeout => ResponseError::InvalidSessionTimeout,
        G::GroupMaxSizeReached => ResponseError::GroupMaxSizeReached,
        G::MemberIdRequired => ResponseError::MemberIdRequired,
        G::FencedMemberEpoch => ResponseError::FencedMemberEpoch,
        G::StaleMemberEpoch => ResponseError::StaleMemberEpoch,
        G::GroupIdNotFound => ResponseError::GroupIdNotFound,
        G::NonEmptyGroup => ResponseError::NonEmptyGroup,
        G::GroupSubscribedToTopic => ResponseError::GroupSubscribedToTopic,
        G::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
        G::OffsetMetadataTooLarge => ResponseError::OffsetMetadataTooLarge,
        G::InvalidRequest => ResponseError::InvalidRequest,
        G::InvalidRegularExpression => ResponseError::InvalidRegularExpression,
    }
}

/// A group answer that carries its own error (JoinGroup, SyncGroup), or a request-level
/// error with `failed()` as the rest of the answer: the answer and its error code.
pub fn group_answer<T>(
    answer: Result<T, ResponseError>,
    own_error: impl Fn(&T) -> Option<group::Error>,
    failed: impl FnOnce() -> T,
) -> (T, i16) {
    match answer {
        Ok(a) => {
            let code = own_error(&a).map_or(0, |e| group(e).code());
            (a, code)
        }
        Err(e) => (failed(), e.code()),
    }
}

/// The code of a group result: 0 for success.
pub fn group_code(r: Result<(), group::Error>) -> i16 {
    r.map_or_else(|e| group(e).code(), |()| 0)
}

/// A refused topic change.
pub fn change(e: &ChangeError) -> ResponseError {
    match e {
        ChangeError::InvalidName(_) | ChangeError::Internal(_) => {
            ResponseError::InvalidTopicException
        }
        ChangeError::AlreadyExists(_) => ResponseError::TopicAlreadyExists,
        ChangeError::UnknownTopic(_) => ResponseError::UnknownTopicOrPartition,
        ChangeError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
        ChangeError::InvalidConfig(_) => ResponseError::InvalidConfig,
        ChangeError::InvalidRequest(_) => ResponseError::InvalidRequest,
        ChangeError::Storage(_) => ResponseError::KafkaStorageError,
    }
}

/// A transaction coordinator's refusal.
pub fn txn(e: &TxnError) -> ResponseError {
    match e {
        TxnError::CoordinatorNotAvailable | TxnError::Storage(_) => {
            ResponseError::CoordinatorNotAvailable
        }
        TxnError::NotCoordinator => ResponseError::NotCoordinator,
        TxnError::CoordinatorLoadInProgress => ResponseError::CoordinatorLoadInProgress,
        TxnError::ConcurrentTransactions => ResponseError::ConcurrentTransactions,
        TxnError::InvalidProducerIdMapping => ResponseError::InvalidProducerIdMapping,
        TxnError::ProducerFenced => ResponseError::ProducerFenced,
        TxnError::InvalidTxnState => ResponseError::InvalidTxnState,
        TxnError::InvalidTransactionTimeout => ResponseError::InvalidTransactionTimeout,
    }
}

/// The code of a transaction result: 0 for success.
pub fn txn_code<T>(r: &Result<T, TxnError>) -> i16 {
    r.as_ref().map_or_else(|e| txn(e).code(), |_| 0)
}
