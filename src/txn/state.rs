//! One transactional id's state and the rules for moving it (Kafka's `TransactionMetadata`
//! and `TransactionCoordinator`), as pure functions: the coordinator persists what they
//! return before it takes effect.

use std::collections::BTreeSet;

use super::error::TxnError;
use super::records::{TxnStatus, TxnValue};

/// A transactional id's state as the coordinator holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMeta {
    pub producer_id: i64,
    pub epoch: i16,
    /// The epoch before the last bump by InitProducerId, so a retried InitProducerId whose
    /// answer was lost gets the same answer (KIP-360); -1 when none.
    pub last_epoch: i16,
    pub timeout_ms: i32,
    pub status: TxnStatus,
    pub partitions: BTreeSet<(String, i32)>,
    pub start_ms: i64,
    pub last_update_ms: i64,
}

/// What InitProducerId asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitRequest {
    pub timeout_ms: i32,
    /// The producer's current id and epoch (v3+, KIP-360), when it has them.
    pub expected: Option<(i64, i16)>,
}

/// The next step of an InitProducerId.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitStep {
    /// Answer with this (already current) id and epoch: a retry.
    Answer(i64, i16),
    /// Persist this state, then answer with its id and epoch.
    Write(TxnMeta),
    /// A transaction is open: abort it (fencing its producer), then try again.
    AbortFirst,
    /// A new id is needed: the epoch is exhausted (or the id is new).
    NewProducerId(TxnMeta),
}

impl TxnMeta {
    /// A new transactional id's state.
    pub fn new(producer_id: i64, timeout_ms: i32, now_ms: i64) -> TxnMeta {
        TxnMeta {
            producer_id,
            epoch: -1,
            last_epoch: -1,
            timeout_ms,
            status: TxnStatus::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now_ms,
        }
    }

    pub fn to_value(&self) -> TxnValue {
        let mut partitions: Vec<(String, Vec<i32>)> = Vec::new();
        for (topic, p) in &self.partitions {
            match partitions.last_mut() {
                Some((t, ps)) if t == topic => ps.push(*p),
                _ => partitions.push((topic.clone(), vec![*p])),
            }
        }
        TxnValue {
            producer_id: self.producer_id,
            producer_epoch: self.epoch,
            timeout_ms: self.timeout_ms,
            status: self.status,
            partitions,
            last_update_ms: self.last_update_ms,
            start_ms: self.start_ms,
        }
    }

    pub fn from_value(v: &TxnValue) -> TxnMeta {
        TxnMeta {
            producer_id: v.producer_id,
            epoch: v.producer_epoch,
            last_epoch: -1,
            timeout_ms: v.timeout_ms,
            status: v.status,
            partitions: v
                .partitions
                .iter()
                .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
                .collect(),
            start_ms: v.start_ms,
            last_update_ms: v.last_update_ms,
        }
    }

    /// Whether markers are being (or must be) written: the transaction has ended but its
    /// partitions do not all know yet.
    pub fn is_preparing(&self) -> bool {
        matches!(
            self.status,
            TxnStatus::PrepareCommit | TxnStatus::PrepareAbort | TxnStatus::PrepareEpochFence
        )
    }

    /// InitProducerId on an existing id (Kafka's `prepareInitProducerIdTransit`).
    pub fn init(&self, req: InitRequest, now_ms: i64) -> Result<InitStep, TxnError> {
        if self.is_preparing() {
            return Err(TxnError::ConcurrentTransactions);
        }
        if let Some((pid, epoch)) = req.expected {
            if pid == self.producer_id && epoch == self.last_epoch && self.last_epoch >= 0 {
                return Ok(InitStep::Answer(self.producer_id, self.epoch));
            }
            if pid != self.producer_id || epoch != self.epoch {
                return Err(TxnError::ProducerFenced);
            }
        }
        if self.status == TxnStatus::Ongoing {
            return Ok(InitStep::AbortFirst);
        }
        let mut next = self.clone();
        next.status = TxnStatus::Empty;
        next.partitions.clear();
        next.timeout_ms = req.timeout_ms;
        next.start_ms = -1;
        next.last_update_ms = now_ms;
        if self.epoch >= i16::MAX - 1 {
            next.epoch = 0;
            next.last_epoch = -1;
            return Ok(InitStep::NewProducerId(next));
        }
        next.last_epoch = self.epoch;
        next.epoch = self.epoch + 1;
        Ok(InitStep::Write(next))
    }

    /// Checks that a request comes from the id's current producer.
    pub fn check_producer(&self, producer_id: i64, epoch: i16) -> Result<(), TxnError> {
        if producer_id != self.producer_id {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if epoch != self.epoch {
            return Err(TxnError::ProducerFenced);
        }
        Ok(())
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: the state with `parts` in the transaction, or
    /// `None` when nothing changes (all already in an open transaction).
    pub fn add_partitions(
        &self,
        parts: &[(String, i32)],
        now_ms: i64,
    ) -> Result<Option<TxnMeta>, TxnError> {
        if self.is_preparing() {
            return Err(TxnError::ConcurrentTransactions);
        }
        if self.status == TxnStatus::Dead {
            return Err(TxnError::InvalidTxnState);
        }
        let open = self.status == TxnStatus::Ongoing;
        if open && parts.iter().all(|p| self.partitions.contains(p)) {
            return Ok(None);
        }
        let mut next = self.clone();
        if !open {
            next.partitions.clear();
            next.start_ms = now_ms;
        }
        next.status = TxnStatus::Ongoing;
        next.partitions.extend(parts.iter().cloned());
        next.last_update_ms = now_ms;
        Ok(Some(next))
    }

    /// Whether every one of `parts` is in the open transaction (AddPartitionsToTxn v4+
    /// verify-only, KIP-890).
    pub fn verify(&self, parts: &[(String, i32)]) -> Vec<bool> {
        let open = self.status == TxnStatus::Ongoing;
        parts
            .iter()
            .map(|p| open && self.partitions.contains(p))
            .collect()
    }

    /// EndTxn: `Ok(true)` to end the open transaction; `Ok(false)` when it already ended the
    /// same way (a retry).
    pub fn end(&self, commit: bool) -> Result<bool, TxnError> {
        match self.status {
            TxnStatus::Ongoing => Ok(true),
            TxnStatus::CompleteCommit if commit => Ok(false),
            TxnStatus::CompleteAbort if !commit => Ok(false),
            TxnStatus::PrepareCommit | TxnStatus::PrepareAbort | TxnStatus::PrepareEpochFence => {
                Err(TxnError::ConcurrentTransactions)
            }
            _ => Err(TxnError::InvalidTxnState),
        }
    }

    /// The state that ends the open transaction (its markers still to write). `fence` bumps the
    /// epoch first, so the producer's later requests are refused (a timeout, a new producer).
    pub fn prepare(&self, commit: bool, fence: bool, now_ms: i64) -> TxnMeta {
        let mut next = self.clone();
        if fence && next.epoch < i16::MAX - 1 {
            next.epoch += 1;
            next.last_epoch = -1;
        }
        next.status = if commit {
            TxnStatus::PrepareCommit
        } else {
            TxnStatus::PrepareAbort
        };
        next.last_update_ms = now_ms;
        next
    }

    /// The state once every partition has its marker.
    pub fn complete(&self, now_ms: i64) -> TxnMeta {
        let mut next = self.clone();
        next.status = if self.status == TxnStatus::PrepareCommit {
            TxnStatus::CompleteCommit
        } else {
            TxnStatus::CompleteAbort
        };
        next.partitions.clear();
        next.last_update_ms = now_ms;
        next
    }

    /// Whether the id may be forgotten (`transactional.id.expiration.ms`): no transaction open
    /// or ending, and unused for longer than `expiration_ms`.
    pub fn expired(&self, now_ms: i64, expiration_ms: i64) -> bool {
        matches!(
            self.status,
            TxnStatus::Empty | TxnStatus::CompleteCommit | TxnStatus::CompleteAbort
        ) && now_ms.saturating_sub(self.last_update_ms) > expiration_ms
    }

    /// Whether the open transaction has outlived its timeout.
    pub fn timed_out(&self, now_ms: i64) -> bool {
        self.status == TxnStatus::Ongoing
            && self.start_ms >= 0
            && now_ms.saturating_sub(self.start_ms) > i64::from(self.timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(list: &[(&str, i32)]) -> Vec<(String, i32)> {
        list.iter().map(|(t, p)| (t.to_string(), *p)).collect()
    }

    fn initialised() -> TxnMeta {
        match TxnMeta::new(7, 60_000, 0)
            .init(
                InitRequest {
                    timeout_ms: 60_000,
                    expected: None,
                },
                1,
            )
            .expect("init")
        {
            InitStep::Write(m) => m,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// A transaction goes Empty -> Ongoing -> PrepareCommit -> CompleteCommit, and a retried
    /// EndTxn after the end is answered without a second end.
    #[test]
    fn commit_path() {
        let m = initialised();
        assert_eq!((m.epoch, m.status), (0, TxnStatus::Empty));
        let m = m
            .add_partitions(&parts(&[("a", 0), ("a", 1)]), 5)
            .expect("add")
            .expect("changed");
        assert_eq!(m.status, TxnStatus::Ongoing);
        assert_eq!(m.start_ms, 5);
        assert_eq!(m.add_partitions(&parts(&[("a", 1)]), 6), Ok(None));
        assert_eq!(m.verify(&parts(&[("a", 0), ("b", 0)])), vec![true, false]);
        assert_eq!(m.end(true), Ok(true));
        let p = m.prepare(true, false, 7);
        assert_eq!(p.end(true), Err(TxnError::ConcurrentTransactions));
        let c = p.complete(8);
        assert_eq!(c.status, TxnStatus::CompleteCommit);
        assert!(c.partitions.is_empty());
        assert_eq!(c.end(true), Ok(false));
        assert_eq!(c.end(false), Err(TxnError::InvalidTxnState));
    }

    /// A second InitProducerId bumps the epoch; an open transaction is aborted first; a stale
    /// producer is fenced; a lost answer's retry gets the same epoch.
    #[test]
    fn init_fences_and_retries() {
        let m = initialised();
        let req = |expected| InitRequest {
            timeout_ms: 1000,
            expected,
        };
        let InitStep::Write(m2) = m.init(req(None), 2).expect("init") else {
            panic!("expected a write")
        };
        assert_eq!((m2.epoch, m2.last_epoch), (1, 0));
        assert_eq!(m2.init(req(Some((7, 0))), 3), Ok(InitStep::Answer(7, 1)));
        assert_eq!(m2.init(req(Some((8, 1))), 3), Err(TxnError::ProducerFenced));
        let open = m2
            .add_partitions(&parts(&[("a", 0)]), 4)
            .expect("add")
            .expect("changed");
        assert_eq!(open.init(req(None), 5), Ok(InitStep::AbortFirst));
        let fenced = open.prepare(false, true, 6);
        assert_eq!((fenced.epoch, fenced.status), (2, TxnStatus::PrepareAbort));
        assert_eq!(fenced.check_producer(7, 1), Err(TxnError::ProducerFenced));
    }

    /// Timeouts count from the transaction's start; an exhausted epoch needs a new id.
    #[test]
    fn timeout_and_epoch_exhaustion() {
        let open = initialised()
            .add_partitions(&parts(&[("a", 0)]), 100)
            .expect("add")
            .expect("changed");
        assert!(!open.timed_out(100 + 60_000));
        assert!(open.timed_out(100 + 60_001));
        assert!(
            !open.expired(i64::MAX, 1),
            "an open transaction's id never expires"
        );
        let done = open.prepare(true, false, 200).complete(300);
        assert!(!done.expired(300 + 1000, 1000));
        assert!(done.expired(300 + 1001, 1000));
        let mut old = initialised();
        old.epoch = i16::MAX - 1;
        let step = old.init(
            InitRequest {
                timeout_ms: 1,
                expected: None,
            },
            1,
        );
        assert!(matches!(step, Ok(InitStep::NewProducerId(m)) if m.epoch == 0));
    }

    /// The state survives its log record.
    #[test]
    fn value_round_trip() {
        let m = initialised()
            .add_partitions(&parts(&[("a", 0), ("a", 2), ("b", 1)]), 9)
            .expect("add")
            .expect("changed");
        let back = TxnMeta::from_value(&m.to_value());
        assert_eq!(back.partitions, m.partitions);
        assert_eq!(
            (back.producer_id, back.epoch, back.status),
            (7, 0, TxnStatus::Ongoing)
        );
    }
}
