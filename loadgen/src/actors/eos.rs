//! What makes a producer idempotent or transactional: its producer id and epoch, its sequence
//! per partition and, when transactional, its transaction with the coordinator.
//!
//! An idempotent producer asks any broker (its first leader's connection) for a producer id
//! (InitProducerId with a null transactional id). A transactional producer finds the
//! coordinator of its transactional id (FindCoordinator, key type 1), connects to the address
//! it is given, and asks it for the producer id of that transactional id; then, transaction
//! after transaction, it adds each partition to the transaction before its first batch there
//! (AddPartitionsToTxn, awaited before the batch goes out) and ends the transaction once
//! `--txn-records` records have been acknowledged (EndTxn: a commit, or an abort if a batch of
//! the transaction failed), awaiting the answer before the next transaction starts.

use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::analytics::metrics::{Lat, Meter};
use crate::utils::batch::Sequences;
use crate::utils::kafka::group::{find_coordinator, KEY_TYPE_TRANSACTION};
use crate::utils::kafka::txn::{
    add_partitions_to_txn, end_txn, init_producer_id, TxnProducer, NO_TRANSACTION_TIMEOUT_MS,
};
use crate::utils::kafka::{Connection, TopicInfo, TxnVersions};

/// Idempotent (and maybe transactional) producers: what every producer of the run shares.
#[derive(Debug, Clone)]
pub struct EosConfig {
    /// InitProducerId version.
    pub init_producer_id: i16,
    /// Transactional producers: None for idempotent ones.
    pub txn: Option<TxnConfig>,
}

#[derive(Debug, Clone)]
pub struct TxnConfig {
    /// Producer i's transactional id is `<prefix>-<i>`.
    pub id_prefix: String,
    /// Records per transaction, per producer.
    pub records: u64,
    /// The transaction timeout asked for in InitProducerId.
    pub timeout_ms: i32,
    pub versions: TxnVersions,
}

impl TxnConfig {
    /// Producer `producer`'s transactional id.
    pub fn transactional_id(&self, producer: usize) -> String {
        format!("{}-{producer}", self.id_prefix)
    }
}

/// Timeouts of the producer's requests.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub request: Duration,
}

/// One producer's identity and sequences, and its transaction if it is transactional.
pub struct Eos {
    pub seq: Sequences,
    pub txn: Option<Txn>,
}

impl Eos {
    /// Gets producer `producer` its producer id: from any broker (`first`, a leader's
    /// connection) when idempotent, from its transactional id's coordinator when transactional.
    pub async fn init(
        cfg: &EosConfig,
        producer: usize,
        first: &Connection,
        partitions: usize,
        t: Timeouts,
    ) -> Result<Eos> {
        let Some(tc) = &cfg.txn else {
            let pid = init_producer_id(
                first,
                cfg.init_producer_id,
                None,
                NO_TRANSACTION_TIMEOUT_MS,
                t.request,
                t.request,
            )
            .await?;
            return Ok(Eos {
                seq: Sequences::new(pid.id, pid.epoch, partitions, false),
                txn: None,
            });
        };
        let id = tc.transactional_id(producer);
        let coordinator = find_coordinator(
            first,
            tc.versions.find_coordinator,
            KEY_TYPE_TRANSACTION,
            &id,
            t.request,
            t.request,
        )
        .await?;
        let conn = Connection::connect(&coordinator, t.connect)
            .await
            .with_context(|| format!("transaction coordinator of {id}"))?;
        let pid = init_producer_id(
            &conn,
            cfg.init_producer_id,
            Some(&id),
            tc.timeout_ms,
            t.request,
            t.request,
        )
        .await?;
        Ok(Eos {
            seq: Sequences::new(pid.id, pid.epoch, partitions, true),
            txn: Some(Txn {
                cfg: tc.clone(),
                producer: TxnProducer {
                    transactional_id: id,
                    pid,
                },
                conn: Rc::new(conn),
                added: vec![false; partitions],
                records: 0,
                timeouts: t,
            }),
        })
    }
}

/// A transactional producer's current transaction.
pub struct Txn {
    pub cfg: TxnConfig,
    pub producer: TxnProducer,
    /// The coordinator's connection.
    conn: Rc<Connection>,
    /// Indexed like the topic's partitions: whether each is in the transaction.
    added: Vec<bool>,
    /// Records generated into the transaction.
    pub records: u64,
    timeouts: Timeouts,
}

impl Txn {
    /// Records the transaction may still take.
    pub fn room(&self) -> u64 {
        self.cfg.records.saturating_sub(self.records)
    }

    /// Whether the transaction has all its records.
    pub fn full(&self) -> bool {
        self.room() == 0
    }

    /// Of `waiting` (partition indexes with records to send), those not in the transaction.
    pub fn to_add(&self, waiting: impl Iterator<Item = usize>) -> Vec<usize> {
        waiting.filter(|&p| !self.added[p]).collect()
    }

    /// Adds partitions `new` (indexes into `topic`'s partitions) to the transaction.
    pub async fn add(&mut self, new: &[usize], topic: &TopicInfo) -> Result<()> {
        let ids: Vec<i32> = new.iter().map(|&p| topic.partitions[p].id).collect();
        add_partitions_to_txn(
            &self.conn,
            self.cfg.versions.add_partitions_to_txn,
            &self.producer,
            &topic.name,
            &ids,
            self.timeouts.request,
            self.timeouts.request,
        )
        .await?;
        for &p in new {
            self.added[p] = true;
        }
        Ok(())
    }

    /// Ends the transaction (commits it, or aborts it), timing EndTxn, and starts the next.
    pub async fn end(&mut self, commit: bool, meter: &Meter) -> Result<()> {
        let sent = Instant::now();
        end_txn(
            &self.conn,
            self.cfg.versions.end_txn,
            &self.producer,
            commit,
            self.timeouts.request,
            self.timeouts.request,
        )
        .await?;
        meter.latency_ns(Lat::EndTxn, sent.elapsed().as_nanos() as u64);
        self.added.iter_mut().for_each(|a| *a = false);
        self.records = 0;
        Ok(())
    }
}
