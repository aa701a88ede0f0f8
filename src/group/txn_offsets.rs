//! Offsets committed inside a transaction (TxnOffsetCommit): written to the group's
//! `__consumer_offsets` partition as a transactional batch of the producer, held pending, and
//! made the group's committed offsets when the transaction's commit marker is written there
//! (dropped on abort), as Kafka's `GroupMetadata.pendingTransactionalOffsetCommits`.
//!
//! While offsets are pending for a partition, OffsetFetch with `require_stable` answers
//! UNSTABLE_OFFSET_COMMIT for it, and the consumer asks again (KIP-447).

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use kafka_protocol::records::Compression;

use super::coordinator::Coordinator;
use super::ops::{CommitPartition, MemberRef, PartitionResults};
use super::records::{Entry, OffsetValue};
use super::state::{Committed, Group};
use super::{partition_for, wall_ms, Error, OFFSETS_TOPIC};
use crate::log::{batch, LogError};

/// One pending offset: the group, the partition it is for, and the offset.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingOffset {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub committed: Committed,
}

/// Pending transactional offsets of one coordinator shard, by producer id.
#[derive(Debug, Default)]
pub struct PendingOffsets {
    by_producer: HashMap<i64, Vec<PendingOffset>>,
}

impl PendingOffsets {
    pub fn add(&mut self, producer_id: i64, offset: PendingOffset) {
        self.by_producer
            .entry(producer_id)
            .or_default()
            .push(offset);
    }

    /// Takes the producer's pending offsets of groups in `__consumer_offsets` partition
    /// `partition` (`partitions` in all).
    pub fn take(
        &mut self,
        producer_id: i64,
        partition: i32,
        partitions: i32,
    ) -> Vec<PendingOffset> {
        let Some(list) = self.by_producer.get_mut(&producer_id) else {
            return Vec::new();
        };
        let (taken, kept): (Vec<_>, Vec<_>) = list
            .drain(..)
            .partition(|o| partition_for(&o.group, partitions) == partition);
        *list = kept;
        if list.is_empty() {
            self.by_producer.remove(&producer_id);
        }
        taken
    }

    /// Whether any transaction has an offset pending for the group's partition.
    pub fn is_pending(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.by_producer
            .values()
            .flatten()
            .any(|o| o.group == group && o.topic == topic && o.partition == partition)
    }
}

/// Makes pending offsets a group's committed ones.
pub fn apply(groups: &mut HashMap<String, Group>, offsets: Vec<PendingOffset>) {
    for o in offsets {
        let wall = o.committed.commit_timestamp;
        groups
            .entry(o.group.clone())
            .or_insert_with(|| Group::new(&o.group, wall))
            .offsets
            .insert((o.topic, o.partition), o.committed);
    }
}

impl Coordinator {
    /// TxnOffsetCommit: checks the committer (when it names a generation) and each partition,
    /// writes the offsets as the producer's transactional batch, and holds them pending.
    pub async fn txn_commit(
        &self,
        partition: i32,
        group: &str,
        producer: (i64, i16),
        who: MemberRef,
        partitions: Vec<CommitPartition>,
    ) -> PartitionResults {
        let checked = self.check_txn_committer(group, &who);
        let catalog = self.catalog.get();
        let wall = wall_ms();
        let mut results = Vec::with_capacity(partitions.len());
        let mut accepted = Vec::new();
        for c in partitions {
            let r = checked.and_then(|()| c.check(&catalog));
            if r.is_ok() {
                accepted.push(PendingOffset {
                    group: group.to_string(),
                    topic: c.topic.clone(),
                    partition: c.partition,
                    committed: Committed::from(OffsetValue {
                        offset: c.offset,
                        leader_epoch: c.leader_epoch,
                        metadata: c.metadata.unwrap_or_default(),
                        commit_timestamp: wall,
                    }),
                });
            }
            results.push((c.topic, c.partition, r));
        }
        if accepted.is_empty() {
            return results;
        }
        if let Err(e) = self.write_pending(partition, producer, &accepted).await {
            tracing::warn!(group, error = %e, "cannot write transactional offsets");
            for r in results.iter_mut().filter(|r| r.2.is_ok()) {
                r.2 = Err(Error::CoordinatorNotAvailable);
            }
            return results;
        }
        let mut pending = self.pending_txn.borrow_mut();
        for o in accepted {
            pending.add(producer.0, o);
        }
        results
    }

    /// A transactional commit names the group's generation only from v3 on; with one, it must
    /// be the group's current member and generation, as for OffsetCommit.
    fn check_txn_committer(&self, group: &str, who: &MemberRef) -> Result<(), Error> {
        if who.generation < 0 && who.member_id.is_empty() {
            return Ok(());
        }
        let mut groups = self.groups.borrow_mut();
        match groups.get_mut(group) {
            Some(g) => g.check_commit(
                &who.member_id,
                who.instance_id.as_deref(),
                who.generation,
                Instant::now(),
            ),
            None => Err(Error::IllegalGeneration),
        }
    }

    /// Appends the offsets as one transactional batch of the producer and waits until durable.
    async fn write_pending(
        &self,
        partition: i32,
        producer: (i64, i16),
        offsets: &[PendingOffset],
    ) -> Result<(), LogError> {
        let ts = wall_ms();
        let records = offsets.iter().map(|o| {
            let (k, v) = Entry::Offset {
                group: o.group.clone(),
                topic: o.topic.clone(),
                partition: o.partition,
                value: Some(OffsetValue {
                    offset: o.committed.offset,
                    leader_epoch: o.committed.leader_epoch,
                    metadata: o.committed.metadata.clone(),
                    commit_timestamp: o.committed.commit_timestamp,
                }),
            }
            .encode();
            (Some(k), v, ts)
        });
        let bytes = batch::try_encode_batch_as(records, Compression::None, Some(producer))
            .map_err(|e| LogError::Storage(format!("encoding transactional offsets: {e}")))?;
        let rx = self
            .partitions
            .enqueue_own(OFFSETS_TOPIC, partition, Bytes::from(bytes))?;
        rx.await.unwrap_or(Err(LogError::Closed))?;
        self.partitions.commit_durable().await
    }

    /// The transaction's marker is durable in `partition`: its offsets there become committed
    /// (commit) or are dropped (abort).
    pub fn complete_transaction(&self, partition: i32, producer_id: i64, commit: bool) {
        let Some(count) = self
            .catalog
            .get()
            .topic(OFFSETS_TOPIC)
            .map(|t| t.partitions)
        else {
            return;
        };
        let taken = self
            .pending_txn
            .borrow_mut()
            .take(producer_id, partition, count);
        if commit && !taken.is_empty() {
            apply(&mut self.groups.borrow_mut(), taken);
        }
    }

    /// Whether a transaction has an offset pending for the group's partition.
    pub fn offset_pending(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.pending_txn
            .borrow()
            .is_pending(group, topic, partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(group: &str, partition: i32, offset: i64) -> PendingOffset {
        PendingOffset {
            group: group.to_string(),
            topic: "t".to_string(),
            partition,
            committed: Committed {
                offset,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp: 1,
            },
        }
    }

    /// Pending offsets are taken per producer and per `__consumer_offsets` partition, and are
    /// visible as pending until then.
    #[test]
    fn take_by_producer_and_partition() {
        let mut p = PendingOffsets::default();
        p.add(1, pending("g", 0, 10));
        p.add(2, pending("g", 1, 20));
        assert!(p.is_pending("g", "t", 0));
        let gp = partition_for("g", 50);
        assert!(p.take(1, (gp + 1) % 50, 50).is_empty());
        let taken = p.take(1, gp, 50);
        assert_eq!(taken.len(), 1);
        assert!(!p.is_pending("g", "t", 0));
        assert!(p.is_pending("g", "t", 1));
        let mut groups = HashMap::new();
        apply(&mut groups, taken);
        assert_eq!(groups["g"].offsets[&("t".to_string(), 0)].offset, 10);
    }
}
