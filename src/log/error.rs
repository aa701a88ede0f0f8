//! The log layer's one error type. The api edge maps each variant to a Kafka error code
//! (`api::errors`); nothing below it knows the codes.

use std::io;

use super::batch::BatchError;
use super::producers::ProducerError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogError {
    /// The fetch or lookup offset is outside [log start, high watermark].
    OffsetOutOfRange,
    /// A disk failure. When the disk was full (`is_out_of_space`) the log is as it was before
    /// the failed write and takes appends again once space frees; otherwise the partition takes
    /// no more writes until the broker restarts.
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

/// Whether an I/O error means the file system has no room for the write (ENOSPC, EDQUOT, or a
/// short write, see `segment::PlannedWrite::execute`). Such a failure leaves the log as it was,
/// so the partition stays online and the append can be retried once space frees; any other
/// error (EIO) may have left the disk in a state the broker cannot know, and takes the
/// partition offline until a restart's recovery. The kind survives `with_path` and glommio's
/// error conversion, which keep the kind but not the OS error number.
pub fn is_out_of_space(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) || matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ENOSPC and EDQUOT count as a full disk however they were wrapped; EIO does not.
    #[test]
    fn out_of_space_is_recognised() {
        let enospc = io::Error::from_raw_os_error(libc::ENOSPC);
        assert!(is_out_of_space(&enospc));
        assert!(is_out_of_space(&io::Error::from_raw_os_error(libc::EDQUOT)));
        let wrapped = crate::util::blocking::with_path(enospc, std::path::Path::new("/x.log"));
        assert!(is_out_of_space(&wrapped));
        assert!(!is_out_of_space(&io::Error::from_raw_os_error(libc::EIO)));
        assert!(!is_out_of_space(&io::Error::other("no space left")));
    }
}
