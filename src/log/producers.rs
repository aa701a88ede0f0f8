//! A partition's producer state: per producer id, its epoch, the sequences and offsets of its
//! last batches (so a retried batch is answered with its first offsets, not written twice),
//! and its open transaction; plus the partition's ongoing transactions (the last stable offset)
//! and the aborted ones (what read_committed consumers skip).
//!
//! The rules are Kafka's (`ProducerStateManager`, `ProducerAppendInfo`): a batch of the
//! producer's current epoch must continue its sequence; a new epoch starts at sequence 0; an
//! older epoch is fenced; a producer this partition does not know (new, or expired) may start
//! anywhere. The writer checks and records a batch when it assigns its offsets, in the order
//! appends reached the shard, so checks see every batch ahead of them, written or not.
//! Transactions end when their marker is written (`complete`), never earlier: the last stable
//! offset must not pass records whose fate is not on disk.
//!
//! The state survives restarts as Kafka's does: a snapshot (`producer_snapshot`) at each
//! segment roll and clean close, and on open, the batches after the newest snapshot replayed.

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::batch::BatchHeader;
use super::producer_snapshot::SnapshotEntry;
use super::txn_index::AbortedTxn;

/// How many of a producer's last batches a partition remembers for duplicate detection: the
/// most a producer may have in flight to one partition (`max.in.flight.requests.per.connection`
/// is at most 5 with idempotence, in every client).
pub const BATCHES_KEPT: usize = 5;

/// Why a producer's batch is refused; each maps to one Kafka error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProducerError {
    /// The batch's epoch is older than the producer's: INVALID_PRODUCER_EPOCH.
    FencedEpoch { epoch: i16, current: i16 },
    /// A gap or a reordering in the sequence: OUT_OF_ORDER_SEQUENCE_NUMBER.
    OutOfOrder { expected: i64, got: i32 },
    /// A plain batch in the middle of the producer's transaction (or the reverse of what a
    /// marker expects): INVALID_TXN_STATE.
    InvalidTxnState(&'static str),
}

impl std::fmt::Display for ProducerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProducerError::FencedEpoch { epoch, current } => write!(
                f,
                "producer epoch {epoch} is older than the current epoch {current}"
            ),
            ProducerError::OutOfOrder { expected, got } => write!(
                f,
                "out of order sequence number: expected {expected}, got {got}"
            ),
            ProducerError::InvalidTxnState(why) => write!(f, "invalid transaction state: {why}"),
        }
    }
}

/// What a checked batch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// A new batch: it is appended at the offset it was checked for.
    Append,
    /// A retry of a batch already in the log, at this first offset: answered, not written.
    Duplicate { first_offset: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BatchMeta {
    first_seq: i32,
    last_seq: i32,
    first_offset: i64,
    last_offset: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Producer {
    epoch: i16,
    batches: VecDeque<BatchMeta>,
    coordinator_epoch: i32,
    /// The first offset of the producer's open transaction in this partition.
    txn_first_offset: Option<i64>,
    /// The largest timestamp of its last batch (what expiry compares, as Kafka).
    last_timestamp: i64,
}

impl Producer {
    fn new(epoch: i16) -> Producer {
        Producer {
            epoch,
            batches: VecDeque::with_capacity(BATCHES_KEPT),
            coordinator_epoch: -1,
            txn_first_offset: None,
            last_timestamp: -1,
        }
    }

    fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
    }

    fn remember(&mut self, meta: BatchMeta) {
        if self.batches.len() == BATCHES_KEPT {
            self.batches.pop_front();
        }
        self.batches.push_back(meta);
    }
}

/// Whether `next` follows `last`: sequences wrap from `i32::MAX` to 0.
fn in_sequence(last: i32, next: i32) -> bool {
    i64::from(next) == i64::from(last) + 1 || (next == 0 && last == i32::MAX)
}

/// The producer state of one partition.
#[derive(Debug, Default)]
pub struct ProducerStates {
    producers: HashMap<i64, Producer>,
    /// Open transactions by first offset: the smallest is where the unstable part starts.
    ongoing: BTreeMap<i64, i64>,
    /// Aborted transactions in the order their markers were written (so by last offset).
    aborted: Vec<AbortedTxn>,
    /// While a write is in flight: what its batches changed, to undo if it fails.
    journal: Option<Journal>,
}

/// The state a write's batches changed, as it was before them (`begin_write`). Batches are
/// checked and recorded when their offsets are assigned, before their write: a write that
/// fails (a full disk) must not leave them recorded, or the producer's retry would be answered
/// as a duplicate at offsets that hold nothing, or refused as out of sequence.
#[derive(Debug, Default)]
struct Journal {
    /// Each producer the write touched, as it was before its first batch (`None`: unknown).
    producers: Vec<(i64, Option<Producer>)>,
    /// Transactions the write opened, by first offset.
    opened: Vec<i64>,
}

impl ProducerStates {
    /// Checks a producer's batch (one with a producer id) that would be appended at
    /// `first_offset`, and records it when it is new.
    pub fn check(&mut self, h: &BatchHeader, first_offset: i64) -> Result<Checked, ProducerError> {
        let pid = h.producer_id;
        if let Some(p) = self.producers.get(&pid) {
            if h.producer_epoch < p.epoch {
                return Err(ProducerError::FencedEpoch {
                    epoch: h.producer_epoch,
                    current: p.epoch,
                });
            }
            if h.producer_epoch == p.epoch {
                let last_seq = h.last_sequence();
                if let Some(dup) = p
                    .batches
                    .iter()
                    .find(|b| b.first_seq == h.base_sequence && b.last_seq == last_seq)
                {
                    return Ok(Checked::Duplicate {
                        first_offset: dup.first_offset,
                    });
                }
                if let Some(last) = p.last_seq() {
                    if !in_sequence(last, h.base_sequence) {
                        return Err(ProducerError::OutOfOrder {
                            expected: (i64::from(last) + 1) % (i64::from(i32::MAX) + 1),
                            got: h.base_sequence,
                        });
                    }
                }
            } else if h.base_sequence != 0 {
                // A bumped epoch starts its sequence again.
                return Err(ProducerError::OutOfOrder {
                    expected: 0,
                    got: h.base_sequence,
                });
            }
            if p.txn_first_offset.is_some() && !h.is_transactional() {
                return Err(ProducerError::InvalidTxnState(
                    "a plain batch from a producer with an open transaction",
                ));
            }
        }
        self.record(h, first_offset);
        Ok(Checked::Append)
    }

    /// Starts journaling what `check` and `record` change, until `end_write`. Idempotent while
    /// a journal is open (a write of several jobs).
    pub fn begin_write(&mut self) {
        self.journal.get_or_insert_with(Journal::default);
    }

    /// Ends the journal of the write in flight: kept when the write completed, undone when it
    /// failed (so the state is what it was before its batches were checked).
    pub fn end_write(&mut self, completed: bool) {
        let Some(journal) = self.journal.take() else {
            return;
        };
        if completed {
            return;
        }
        for first_offset in journal.opened {
            self.ongoing.remove(&first_offset);
        }
        for (pid, before) in journal.producers {
            match before {
                Some(p) => self.producers.insert(pid, p),
                None => self.producers.remove(&pid),
            };
        }
    }

    /// Records a batch as written at `first_offset`: after `check`, and when replaying the log.
    pub fn record(&mut self, h: &BatchHeader, first_offset: i64) {
        if let Some(journal) = &mut self.journal {
            if !journal
                .producers
                .iter()
                .any(|(pid, _)| *pid == h.producer_id)
            {
                let before = self.producers.get(&h.producer_id).cloned();
                journal.producers.push((h.producer_id, before));
            }
        }
        let p = self
            .producers
            .entry(h.producer_id)
            .or_insert_with(|| Producer::new(h.producer_epoch));
        if h.producer_epoch != p.epoch {
            p.epoch = h.producer_epoch;
            p.batches.clear();
        }
        p.remember(BatchMeta {
            first_seq: h.base_sequence,
            last_seq: h.last_sequence(),
            first_offset,
            last_offset: first_offset + i64::from(h.last_offset_delta),
        });
        p.last_timestamp = p.last_timestamp.max(h.max_timestamp);
        if h.is_transactional() && p.txn_first_offset.is_none() {
            p.txn_first_offset = Some(first_offset);
            self.ongoing.insert(first_offset, h.producer_id);
            if let Some(journal) = &mut self.journal {
                journal.opened.push(first_offset);
            }
        }
    }

    /// Ends a producer's transaction in this partition with the marker written at `offset`
    /// (commit or abort, by the coordinator of `coordinator_epoch`). Returns the aborted
    /// transaction to index when it was an abort with records here.
    pub fn complete(
        &mut self,
        producer_id: i64,
        epoch: i16,
        coordinator_epoch: i32,
        commit: bool,
        offset: i64,
        high_watermark: i64,
    ) -> Option<AbortedTxn> {
        let p = self
            .producers
            .entry(producer_id)
            .or_insert_with(|| Producer::new(epoch));
        if epoch > p.epoch {
            // A marker of a bumped epoch (the coordinator fenced the producer): sequences
            // start again.
            p.epoch = epoch;
            p.batches.clear();
        }
        p.coordinator_epoch = coordinator_epoch;
        let first = p.txn_first_offset.take()?;
        self.ongoing.remove(&first);
        if commit {
            return None;
        }
        let lso = self.first_unstable_offset().unwrap_or(high_watermark);
        let aborted = AbortedTxn {
            producer_id,
            first_offset: first,
            last_offset: offset,
            last_stable_offset: lso.min(offset),
        };
        self.aborted.push(aborted);
        Some(aborted)
    }

    /// The first offset of the oldest open transaction: the last stable offset, unless the
    /// high watermark is lower.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.keys().next().copied()
    }

    /// Whether the producer has an open transaction in this partition.
    pub fn in_transaction(&self, producer_id: i64) -> bool {
        self.producers
            .get(&producer_id)
            .is_some_and(|p| p.txn_first_offset.is_some())
    }

    /// The aborted transactions with records in `[from, to)`, for a read_committed fetch.
    pub fn aborted_between(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        // Sorted by last offset: skip those that ended before `from`.
        let start = self.aborted.partition_point(|a| a.last_offset < from);
        self.aborted[start..]
            .iter()
            .filter(|a| a.first_offset < to)
            .cloned()
            .collect()
    }

    /// Forgets the aborted transactions that ended before `offset` (retention deleted their
    /// records).
    pub fn forget_aborted_below(&mut self, offset: i64) {
        self.aborted.retain(|a| a.last_offset >= offset);
    }

    /// Adds aborted transactions read back from the index files, in order.
    pub fn restore_aborted(&mut self, aborted: impl IntoIterator<Item = AbortedTxn>) {
        self.aborted.extend(aborted);
        self.aborted.sort_by_key(|a| a.last_offset);
    }

    /// Forgets producers whose last batch is older than `expiration_ms` before `now_ms` and
    /// that have no open transaction (`producer.id.expiration.ms`). Returns how many.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, p| {
            p.txn_first_offset.is_some() || now_ms.saturating_sub(p.last_timestamp) < expiration_ms
        });
        before - self.producers.len()
    }

    /// One entry per producer, as Kafka's snapshot keeps them: the last batch only.
    pub fn snapshot(&self) -> Vec<SnapshotEntry> {
        let mut out: Vec<SnapshotEntry> = self
            .producers
            .iter()
            .map(|(&producer_id, p)| {
                let last = p.batches.back().copied().unwrap_or(BatchMeta {
                    first_seq: -1,
                    last_seq: -1,
                    first_offset: -1,
                    last_offset: -1,
                });
                SnapshotEntry {
                    producer_id,
                    producer_epoch: p.epoch,
                    last_sequence: last.last_seq,
                    last_offset: last.last_offset,
                    offset_delta: last
                        .last_offset
                        .saturating_sub(last.first_offset)
                        .clamp(0, i64::from(i32::MAX)) as i32,
                    timestamp: p.last_timestamp,
                    coordinator_epoch: p.coordinator_epoch,
                    current_txn_first_offset: p.txn_first_offset.unwrap_or(-1),
                }
            })
            .collect();
        out.sort_by_key(|e| e.producer_id);
        out
    }

    /// The state a snapshot saved (aborted transactions come from the index files).
    pub fn from_snapshot(entries: &[SnapshotEntry]) -> ProducerStates {
        let mut states = ProducerStates::default();
        for e in entries {
            let mut p = Producer::new(e.producer_epoch);
            if e.last_offset >= 0 {
                let first_offset = e.last_offset - i64::from(e.offset_delta);
                let span = e.offset_delta;
                let first_seq = if e.last_sequence < 0 {
                    e.last_sequence
                } else {
                    // The inverse of `BatchHeader::last_sequence`'s wrap.
                    let f = i64::from(e.last_sequence) - i64::from(span);
                    if f < 0 {
                        (f + i64::from(i32::MAX) + 1) as i32
                    } else {
                        f as i32
                    }
                };
                p.remember(BatchMeta {
                    first_seq,
                    last_seq: e.last_sequence,
                    first_offset,
                    last_offset: e.last_offset,
                });
            }
            p.coordinator_epoch = e.coordinator_epoch;
            p.last_timestamp = e.timestamp;
            if e.current_txn_first_offset >= 0 {
                p.txn_first_offset = Some(e.current_txn_first_offset);
                states
                    .ongoing
                    .insert(e.current_txn_first_offset, e.producer_id);
            }
            states.producers.insert(e.producer_id, p);
        }
        states
    }

    /// How many producers the partition knows (DescribeProducers, tests).
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Every producer the partition knows, for DescribeProducers: id, epoch, last sequence,
    /// last timestamp, coordinator epoch, open transaction's first offset.
    pub fn describe(&self) -> Vec<ProducerView> {
        let mut out: Vec<ProducerView> = self
            .producers
            .iter()
            .map(|(&producer_id, p)| ProducerView {
                producer_id,
                epoch: p.epoch,
                last_sequence: p.last_seq().unwrap_or(-1),
                last_timestamp: p.last_timestamp,
                coordinator_epoch: p.coordinator_epoch,
                txn_first_offset: p.txn_first_offset.unwrap_or(-1),
            })
            .collect();
        out.sort_by_key(|v| v.producer_id);
        out
    }
}

/// One producer as DescribeProducers reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerView {
    pub producer_id: i64,
    pub epoch: i16,
    pub last_sequence: i32,
    pub last_timestamp: i64,
    pub coordinator_epoch: i32,
    pub txn_first_offset: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pid: i64, epoch: i16, seq: i32, records: i32, txn: bool) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            total_bytes: 100,
            magic: 2,
            crc: 0,
            attributes: if txn { 0x10 } else { 0 },
            last_offset_delta: records - 1,
            base_timestamp: 1_000,
            max_timestamp: 1_000,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            record_count: records,
        }
    }

    /// A retried batch among the last five is a duplicate answered with its first offset; an
    /// older one, a gap, or a new epoch not starting at 0 is refused.
    #[test]
    fn duplicates_gaps_and_epochs() {
        let mut s = ProducerStates::default();
        let mut offset = 0;
        for i in 0..7 {
            let h = header(7, 0, i * 3, 3, false);
            assert_eq!(s.check(&h, offset), Ok(Checked::Append));
            offset += 3;
        }
        // Batches 2..7 are remembered (seq 6..21): batch 3 (seq 9-11 at offset 9) is a duplicate.
        assert_eq!(
            s.check(&header(7, 0, 9, 3, false), 100),
            Ok(Checked::Duplicate { first_offset: 9 })
        );
        assert!(matches!(
            s.check(&header(7, 0, 0, 3, false), 100),
            Err(ProducerError::OutOfOrder { .. })
        ));
        assert!(matches!(
            s.check(&header(7, 0, 25, 1, false), 100),
            Err(ProducerError::OutOfOrder { expected: 21, .. })
        ));
        assert!(matches!(
            s.check(&header(7, 1, 5, 1, false), 100),
            Err(ProducerError::OutOfOrder { expected: 0, .. })
        ));
        assert_eq!(s.check(&header(7, 1, 0, 1, false), 21), Ok(Checked::Append));
        assert!(matches!(
            s.check(&header(7, 0, 21, 1, false), 22),
            Err(ProducerError::FencedEpoch { .. })
        ));
        // An unknown producer may start anywhere (its state may have expired).
        assert_eq!(
            s.check(&header(8, 3, 500, 1, false), 22),
            Ok(Checked::Append)
        );
    }

    /// Sequences wrap from i32::MAX to 0.
    #[test]
    fn sequence_wraps() {
        let mut s = ProducerStates::default();
        assert_eq!(
            s.check(&header(1, 0, i32::MAX - 1, 2, false), 0),
            Ok(Checked::Append)
        );
        assert_eq!(
            header(1, 0, i32::MAX - 1, 2, false).last_sequence(),
            i32::MAX
        );
        assert_eq!(s.check(&header(1, 0, 0, 1, false), 2), Ok(Checked::Append));
        assert_eq!(header(1, 0, i32::MAX, 3, false).last_sequence(), 1);
    }

    /// Open transactions hold the last stable offset back until their markers; an abort is
    /// indexed with the offsets a read_committed fetch needs.
    #[test]
    fn transactions_and_stable_offset() {
        let mut s = ProducerStates::default();
        s.check(&header(1, 0, 0, 2, true), 10).expect("txn 1");
        s.check(&header(2, 0, 0, 2, true), 12).expect("txn 2");
        assert_eq!(s.first_unstable_offset(), Some(10));
        assert!(matches!(
            s.check(&header(1, 0, 2, 1, false), 14),
            Err(ProducerError::InvalidTxnState(_))
        ));
        assert_eq!(s.complete(1, 0, 0, true, 14, 15), None);
        assert_eq!(s.first_unstable_offset(), Some(12));
        let aborted = s.complete(2, 0, 0, false, 15, 16).expect("aborted");
        assert_eq!((aborted.first_offset, aborted.last_offset), (12, 15));
        assert_eq!(s.first_unstable_offset(), None);
        assert_eq!(s.aborted_between(0, 100).len(), 1);
        assert!(s.aborted_between(16, 100).is_empty());
        assert!(s.aborted_between(0, 12).is_empty());
        // A marker without an open transaction (a retry of the coordinator) changes nothing.
        assert_eq!(s.complete(2, 0, 0, false, 16, 17), None);
    }

    /// A snapshot keeps what duplicate detection and the stable offset need.
    #[test]
    fn snapshot_round_trip() {
        let mut s = ProducerStates::default();
        s.check(&header(1, 2, 10, 5, false), 100).expect("append");
        s.check(&header(3, 0, 0, 2, true), 105).expect("txn");
        let restored = ProducerStates::from_snapshot(&s.snapshot());
        assert_eq!(restored.snapshot(), s.snapshot());
        let mut restored = restored;
        assert_eq!(
            restored.check(&header(1, 2, 10, 5, false), 200),
            Ok(Checked::Duplicate { first_offset: 100 })
        );
        assert_eq!(restored.first_unstable_offset(), Some(105));
    }

    /// A write that failed leaves the state as it was before its batches: the producer's retry
    /// is appended (not taken for a duplicate), a new producer is forgotten, and a transaction
    /// the write opened is not open; a completed write keeps what it recorded.
    #[test]
    fn failed_write_is_undone() {
        let mut s = ProducerStates::default();
        s.check(&header(1, 0, 0, 2, false), 0).expect("first");
        let before = s.snapshot();
        s.begin_write();
        s.check(&header(1, 0, 2, 2, false), 2).expect("second");
        s.check(&header(1, 0, 4, 1, false), 4).expect("third");
        s.check(&header(2, 0, 0, 1, true), 5).expect("txn");
        assert_eq!(s.first_unstable_offset(), Some(5));
        s.end_write(false);
        assert_eq!(s.snapshot(), before);
        assert_eq!(s.first_unstable_offset(), None);
        assert_eq!(s.check(&header(1, 0, 2, 2, false), 2), Ok(Checked::Append));
        s.begin_write();
        s.check(&header(2, 0, 0, 1, true), 4).expect("txn");
        s.end_write(true);
        assert_eq!(s.first_unstable_offset(), Some(4));
        // Outside a write nothing is journaled, and ending none changes nothing.
        s.end_write(false);
        assert_eq!(s.first_unstable_offset(), Some(4));
    }

    /// Expiry forgets idle producers but never one with an open transaction.
    #[test]
    fn expiry() {
        let mut s = ProducerStates::default();
        s.check(&header(1, 0, 0, 1, false), 0).expect("plain");
        s.check(&header(2, 0, 0, 1, true), 1).expect("txn");
        assert_eq!(s.expire(1_000 + 10_000, 10_000), 1);
        assert_eq!(s.len(), 1);
        assert!(s.in_transaction(2));
    }
}
