//! The log layer's one error type. The api edge maps each variant to a Kafka error code
//! (`api::errors`); nothing below it knows the codes.

use super::batch::BatchError;
use super::producers::ProducerError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogError {
    /// The fetch or lookup offset is outside [log start, high watermark].
    OffsetOutOfRange,
    /// A disk failure; the partition takes no more writes.
    Storage(String),
    /// The partition is being deleted or the broker is stopping.
    Closed,
    /// The catalog has no such topic or partition (it may have been deleted meanwhile).
    UnknownPartition,
    /// The catalog has the partition but its shard has not opened it (yet).
    NotOpen,
    /// The records a producer sent do not pass validation.
    Batch(BatchError),
    /// A produce that carried no records for a partition.
    NoRecords,
    /// A producer's batch that its producer state refuses (epoch, sequence, transaction).
    Producer(ProducerError),
}

impl std::fmt::Display for LogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogError::OffsetOutOfRange => write!(f, "offset out of range"),
            LogError::Storage(e) => write!(f, "storage error: {e}"),
            LogError::Closed => write!(f, "partition closed"),
            LogError::UnknownPartition => write!(f, "unknown topic or partition"),
            LogError::NotOpen => write!(f, "partition is not open on its shard"),
            LogError::Batch(e) => write!(f, "{e}"),
            LogError::NoRecords => write!(f, "no records"),
            LogError::Producer(e) => write!(f, "{e}"),
        }
    }
}

impl From<BatchError> for LogError {
    fn from(e: BatchError) -> LogError {
        LogError::Batch(e)
    }
}
