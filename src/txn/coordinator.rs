//! A shard's transaction coordinator: the transactional ids of the `__transaction_state`
//! partitions it owns, loaded from them when they open, changed only after the change is
//! durable in them, and ended by writing markers to every partition of a transaction.
//!
//! A transaction ends in two steps, as in Kafka: `PrepareCommit` / `PrepareAbort` is written
//! to the transaction log, then a marker to each partition (on whichever shard owns it, all
//! durable), then `CompleteCommit` / `CompleteAbort`. A crash between the two finds the
//! prepared state at load and writes the markers again (a marker for a transaction a
//! partition already ended changes nothing there). EndTxn is answered once the transaction is
//! complete, so a client never has to retry CONCURRENT_TRANSACTIONS after its own commit.
//!
//! Transactions open longer than their timeout are aborted by a timer that runs every
//! `transaction.abort.timed.out.transaction.cleanup.interval.ms`, with the producer's epoch
//! bumped so its later writes are fenced.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::{Rc, Weak};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::records::Compression;

use super::error::TxnError;
use super::ids::ProducerIds;
use super::records::{self, TxnStatus};
use super::state::{InitRequest, InitStep, TxnMeta};
use crate::catalog::{self, Replica, OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC};
use crate::group;
use crate::log::{batch, LogError, Marker, PartitionLog, Partitions};
use crate::shard::Shard;
use crate::util::now_ms;

/// How long a failed marker write waits before it is tried again.
const MARKER_RETRY: Duration = Duration::from_millis(200);

/// A transactional id as DescribeTransactions and ListTransactions report it.
#[derive(Debug, Clone)]
pub struct TxnView {
    pub transactional_id: String,
    pub meta: TxnMeta,
}

pub struct TxnCoordinator {
    shard: Rc<Shard>,
    catalog: Rc<Replica>,
    partitions: Rc<Partitions>,
    ids: Rc<ProducerIds>,
    txns: RefCell<HashMap<String, TxnMeta>>,
    /// Transactional ids with a write of their state (or their markers) in flight.
    busy: RefCell<HashSet<String>>,
    /// `__transaction_state` partitions of this shard whose ids are loaded.
    loaded: RefCell<HashSet<i32>>,
    stopping: Cell<bool>,
}

impl TxnCoordinator {
    /// The shard's coordinator, following the catalog after `partitions` does, with its
    /// timeout timer running.
    pub fn new(
        shard: Rc<Shard>,
        catalog: Rc<Replica>,
        partitions: Rc<Partitions>,
        ids: Rc<ProducerIds>,
    ) -> Rc<TxnCoordinator> {
        let co = Rc::new(TxnCoordinator {
            shard,
            catalog: catalog.clone(),
            partitions,
            ids,
            txns: RefCell::new(HashMap::new()),
            busy: RefCell::new(HashSet::new()),
            loaded: RefCell::new(HashSet::new()),
            stopping: Cell::new(false),
        });
        let this: Weak<TxnCoordinator> = Rc::downgrade(&co);
        catalog.subscribe(Rc::new(move |_, _| {
            let this = this.clone();
            Box::pin(async move {
                if let Some(this) = this.upgrade() {
                    this.load_new_partitions().await;
                }
            })
        }));
        glommio::spawn_local(co.clone().run_timer()).detach();
        co
    }

    /// The broker is stopping: refuse new work.
    pub fn shutdown(&self) {
        self.stopping.set(true);
    }

    /// Whether this shard serves the ids of `partition` now.
    pub(super) fn serving(&self, partition: i32) -> Result<(), TxnError> {
        if self.stopping.get() {
            return Err(TxnError::NotCoordinator);
        }
        if self.loaded.borrow().contains(&partition) {
            return Ok(());
        }
        let known = self
            .catalog
            .get()
            .has_partition(TRANSACTION_STATE_TOPIC, partition);
        Err(if known {
            TxnError::CoordinatorLoadInProgress
        } else {
            TxnError::CoordinatorNotAvailable
        })
    }

    fn get(&self, id: &str) -> Option<TxnMeta> {
        self.txns.borrow().get(id).cloned()
    }

    /// Runs `f` with the id marked busy, so no other operation on it interleaves with its
    /// writes (they get CONCURRENT_TRANSACTIONS).
    async fn exclusive<R>(
        &self,
        id: &str,
        f: impl std::future::Future<Output = Result<R, TxnError>>,
    ) -> Result<R, TxnError> {
        if !self.busy.borrow_mut().insert(id.to_string()) {
            return Err(TxnError::ConcurrentTransactions);
        }
        // Released on every way out, a cancelled wait included: a forgotten mark would refuse
        // the id with CONCURRENT_TRANSACTIONS for good.
        struct Release<'a>(&'a RefCell<HashSet<String>>, &'a str);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.0.borrow_mut().remove(self.1);
            }
        }
        let _release = Release(&self.busy, id);
        f.await
    }

    /// InitProducerId for a transactional id: a new producer id for a new id, else the
    /// id's producer with its epoch bumped (fencing older producers), an open transaction
    /// aborted first.
    pub async fn init_producer_id(
        self: &Rc<Self>,
        partition: i32,
        id: String,
        req: InitRequest,
    ) -> Result<(i64, i16), TxnError> {
        let max = self.shard.config.txn.max_timeout_ms;
        if req.timeout_ms <= 0 || req.timeout_ms > max {
            return Err(TxnError::InvalidTransactionTimeout);
        }
        let this = self.clone();
        let key = id.clone();
        self.exclusive(&key, async move {
            loop {
                let now = now_ms();
                let current = match this.get(&id) {
                    Some(m) => m,
                    None => {
                        let pid = this.allocate().await?;
                        TxnMeta::new(pid, req.timeout_ms, now)
                    }
                };
                let next = match current.init(req, now)? {
                    InitStep::Answer(pid, epoch) => return Ok((pid, epoch)),
                    InitStep::AbortFirst => {
                        this.end_now(partition, &id, current, false, true).await?;
                        continue;
                    }
                    InitStep::Write(next) => next,
                    InitStep::NewProducerId(mut next) => {
                        next.producer_id = this.allocate().await?;
                        next
                    }
                };
                this.write(partition, &id, &next).await?;
                let answer = (next.producer_id, next.epoch);
                this.txns.borrow_mut().insert(id.clone(), next);
                tracing::debug!(transactional_id = %id, producer_id = answer.0, epoch = answer.1, "initialised producer id");
                return Ok(answer);
            }
        })
        .await
    }

    async fn allocate(&self) -> Result<i64, TxnError> {
        self.ids
            .allocate()
            .await
            .map_err(|e| TxnError::Storage(e.to_string()))
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: adds `parts` to the open transaction (opening
    /// one), durable before the answer.
    pub async fn add_partitions(
        &self,
        partition: i32,
        id: String,
        producer_id: i64,
        epoch: i16,
        parts: Vec<(String, i32)>,
    ) -> Result<(), TxnError> {
        let current = self.get(&id).ok_or(TxnError::InvalidProducerIdMapping)?;
        current.check_producer(producer_id, epoch)?;
        let Some(next) = current.add_partitions(&parts, now_ms())? else {
            return Ok(());
        };
        self.exclusive(&id, async {
            self.write(partition, &id, &next).await?;
            self.txns.borrow_mut().insert(id.clone(), next);
            Ok(())
        })
        .await
    }

    /// AddPartitionsToTxn v4+ verify-only (KIP-890): whether each partition is in the
    /// producer's open transaction, so a late write of an ended transaction is refused.
    pub fn verify(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        parts: &[(String, i32)],
    ) -> Result<Vec<bool>, TxnError> {
        let current = self.get(id).ok_or(TxnError::InvalidProducerIdMapping)?;
        current.check_producer(producer_id, epoch)?;
        Ok(current.verify(parts))
    }

    /// EndTxn: commits or aborts the open transaction; answered once it is complete.
    pub async fn end_txn(
        self: &Rc<Self>,
        partition: i32,
        id: String,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<(), TxnError> {
        let current = self.get(&id).ok_or(TxnError::InvalidProducerIdMapping)?;
        current.check_producer(producer_id, epoch)?;
        if !current.end(commit)? {
            return Ok(());
        }
        let this = self.clone();
        let key = id.clone();
        self.exclusive(&key, async move {
            this.end_now(partition, &id, current, commit, false).await
        })
        .await
    }

    /// Ends `current`'s open transaction: prepared state, markers, complete state.
    async fn end_now(
        &self,
        partition: i32,
        id: &str,
        current: TxnMeta,
        commit: bool,
        fence: bool,
    ) -> Result<(), TxnError> {
        let prepared = current.prepare(commit, fence, now_ms());
        self.write(partition, id, &prepared).await?;
        self.txns
            .borrow_mut()
            .insert(id.to_string(), prepared.clone());
        self.complete(partition, id, prepared).await
    }

    /// Writes the markers of a prepared transaction and its complete state.
    async fn complete(&self, partition: i32, id: &str, prepared: TxnMeta) -> Result<(), TxnError> {
        let commit = prepared.status == TxnStatus::PrepareCommit;
        self.write_markers(&prepared, commit).await?;
        let done = prepared.complete(now_ms());
        self.write(partition, id, &done).await?;
        tracing::debug!(transactional_id = %id, producer_id = done.producer_id, commit, "transaction complete");
        self.txns.borrow_mut().insert(id.to_string(), done);
        Ok(())
    }

    /// Writes a marker to every partition of the transaction, on the shards that own them,
    /// retrying until each is durable (or its topic is gone). Committed offsets of the
    /// transaction are then made visible (or dropped) by their group coordinators.
    async fn write_markers(&self, txn: &TxnMeta, commit: bool) -> Result<(), TxnError> {
        let marker = Marker {
            producer_id: txn.producer_id,
            producer_epoch: txn.epoch,
            coordinator_epoch: 0,
            commit,
        };
        let mut left: Vec<(String, i32)> = txn.partitions.iter().cloned().collect();
        while !left.is_empty() {
            if self.shard.stopping() || self.stopping.get() {
                return Err(TxnError::NotCoordinator);
            }
            let mut by_owner: BTreeMap<usize, Vec<(String, i32, Marker)>> = BTreeMap::new();
            for (t, p) in &left {
                let owner = catalog::owner_shard(t, *p, self.shard.count);
                by_owner
                    .entry(owner)
                    .or_default()
                    .push((t.clone(), *p, marker));
            }
            let mut failed = Vec::new();
            for (owner, parts) in by_owner {
                let asked: Vec<(String, i32)> =
                    parts.iter().map(|(t, p, _)| (t.clone(), *p)).collect();
                let answers = self
                    .shard
                    .invoke_on(owner, move |partitions: &Rc<Partitions>| {
                        partitions.write_markers(parts)
                    })
                    .await
                    .unwrap_or_else(|_| vec![Err(LogError::Closed); asked.len()]);
                for ((t, p), answer) in asked.into_iter().zip(answers) {
                    match answer {
                        Ok(()) | Err(LogError::UnknownPartition) => {}
                        Err(e) => {
                            tracing::warn!(topic = %t, partition = p, error = %e, "cannot write a transaction marker yet; retrying");
                            failed.push((t, p));
                        }
                    }
                }
            }
            left = failed;
            if !left.is_empty() {
                glommio::timer::sleep(MARKER_RETRY).await;
            }
        }
        for (_, p) in txn.partitions.iter().filter(|(t, _)| t == OFFSETS_TOPIC) {
            group::client::complete_transaction(&self.shard, *p, txn.producer_id, commit).await;
        }
        Ok(())
    }

    /// Appends the id's state to its `__transaction_state` partition and waits until durable.
    async fn write(&self, partition: i32, id: &str, meta: &TxnMeta) -> Result<(), TxnError> {
        self.write_record(partition, id, Some(meta)).await
    }

    /// Appends the id's record (its state, or `None`: the tombstone that removes it) and
    /// waits until durable.
    async fn write_record(
        &self,
        partition: i32,
        id: &str,
        meta: Option<&TxnMeta>,
    ) -> Result<(), TxnError> {
        let key = records::encode_key(id);
        let value = meta.map(|m| records::encode_value(&m.to_value()));
        let bytes = batch::try_encode_batch([(Some(key), value, now_ms())], Compression::None)
            .map_err(TxnError::Storage)?;
        let storage = |e: LogError| TxnError::Storage(e.to_string());
        let rx = self
            .partitions
            .enqueue_own(TRANSACTION_STATE_TOPIC, partition, Bytes::from(bytes))
            .map_err(storage)?;
        rx.await.unwrap_or(Err(LogError::Closed)).map_err(storage)?;
        self.partitions.commit_durable().await.map_err(storage)
    }

    /// Every transactional id this shard coordinates.
    pub fn list(&self) -> Vec<TxnView> {
        self.txns
            .borrow()
            .iter()
            .map(|(id, meta)| TxnView {
                transactional_id: id.clone(),
                meta: meta.clone(),
            })
            .collect()
    }

    /// One transactional id's state.
    pub fn describe(&self, id: &str) -> Option<TxnMeta> {
        self.get(id)
    }

    /// Loads the ids of every `__transaction_state` partition this shard has opened since,
    /// then finishes the transactions a crash left prepared.
    async fn load_new_partitions(self: &Rc<Self>) {
        for (p, log) in self.partitions.open_of(TRANSACTION_STATE_TOPIC) {
            if self.loaded.borrow().contains(&p) {
                continue;
            }
            match self.load(&log).await {
                Ok(loaded) => {
                    self.loaded.borrow_mut().insert(p);
                    self.resume(p, loaded);
                }
                Err(e) => {
                    tracing::error!(partition = p, error = %e, "cannot load transactional ids; their coordinator stays unavailable");
                }
            }
        }
    }

    /// Reads one partition's records (last one per id wins; a null value removes the id).
    async fn load(&self, log: &PartitionLog) -> Result<Vec<String>, LogError> {
        let mut found: HashMap<String, Option<TxnMeta>> = HashMap::new();
        log.replay(|r| {
            if let Some(id) = r.key.as_deref().and_then(records::decode_key) {
                let value = r.value.as_deref().and_then(records::decode_value);
                found.insert(id, value.map(|v| TxnMeta::from_value(&v)));
            }
        })
        .await?;
        let mut txns = self.txns.borrow_mut();
        let mut ids = Vec::new();
        for (id, meta) in found {
            match meta {
                Some(m) => {
                    ids.push(id.clone());
                    txns.insert(id, m);
                }
                None => {
                    txns.remove(&id);
                }
            }
        }
        if !ids.is_empty() {
            tracing::info!(
                partition = log.partition,
                ids = ids.len(),
                "loaded transactional ids"
            );
        }
        Ok(ids)
    }

    /// Finishes, in the background, the transactions of `ids` that a stop left prepared
    /// (their markers may not all be written). In the background because other shards may
    /// not serve yet while the catalog is being installed.
    fn resume(self: &Rc<Self>, partition: i32, ids: Vec<String>) {
        for id in ids {
            let Some(meta) = self.get(&id) else { continue };
            if !meta.is_preparing() {
                continue;
            }
            let mut meta = meta;
            if meta.status == TxnStatus::PrepareEpochFence {
                meta.status = TxnStatus::PrepareAbort;
            }
            let this = self.clone();
            glommio::spawn_local(async move {
                let key = id.clone();
                let r = this
                    .exclusive(&key, this.complete(partition, &id, meta))
                    .await;
                if let Err(e) = r {
                    tracing::warn!(transactional_id = %id, error = %e, "cannot finish a prepared transaction");
                }
            })
            .detach();
        }
    }

    /// Removes the transactional ids unused for `transactional.id.expiration.ms` (Kafka's
    /// `removeExpiredTransactionalIds`): a tombstone each, then gone from memory.
    async fn remove_expired(&self) {
        let expiration = self.shard.config.txn.transactional_id_expiration_ms;
        let now = now_ms();
        let expired: Vec<String> = self
            .txns
            .borrow()
            .iter()
            .filter(|(id, m)| m.expired(now, expiration) && !self.busy.borrow().contains(*id))
            .map(|(id, _)| id.clone())
            .collect();
        let Some(topic) = self.catalog.get().topic(TRANSACTION_STATE_TOPIC).cloned() else {
            return;
        };
        for id in expired {
            let partition = crate::util::key_partition(&id, topic.partitions);
            let removed = self.exclusive(&id, async {
                // Used again since it was picked: keep it.
                if !self.get(&id).is_some_and(|m| m.expired(now, expiration)) {
                    return Ok(());
                }
                self.write_record(partition, &id, None).await?;
                self.txns.borrow_mut().remove(&id);
                Ok(())
            });
            match removed.await {
                Ok(()) => {
                    tracing::info!(transactional_id = %id, "removed an expired transactional id")
                }
                Err(e) => {
                    tracing::warn!(transactional_id = %id, error = %e, "cannot remove an expired transactional id")
                }
            }
        }
    }

    /// Aborts, every check interval, the transactions open longer than their timeout.
    async fn run_timer(self: Rc<Self>) {
        let config = &self.shard.config.txn;
        let interval = Duration::from_millis(config.abort_timed_out_interval_ms.max(1));
        let expiry_interval = Duration::from_millis(config.remove_expired_interval_ms.max(1));
        let mut next_expiry = std::time::Instant::now() + expiry_interval;
        while !self.stopping.get() {
            glommio::timer::sleep(interval).await;
            if std::time::Instant::now() >= next_expiry {
                self.remove_expired().await;
                next_expiry = std::time::Instant::now() + expiry_interval;
            }
            let now = now_ms();
            let expired: Vec<(String, TxnMeta)> = self
                .txns
                .borrow()
                .iter()
                .filter(|(id, m)| m.timed_out(now) && !self.busy.borrow().contains(*id))
                .map(|(id, m)| (id.clone(), m.clone()))
                .collect();
            for (id, meta) in expired {
                let Some(topic) = self.catalog.get().topic(TRANSACTION_STATE_TOPIC).cloned() else {
                    break;
                };
                let partition = crate::util::key_partition(&id, topic.partitions);
                tracing::info!(transactional_id = %id, producer_id = meta.producer_id, timeout_ms = meta.timeout_ms, "aborting a transaction open past its timeout");
                let this = self.clone();
                glommio::spawn_local(async move {
                    let key = id.clone();
                    let r = this
                        .exclusive(&key, this.end_now(partition, &id, meta, false, true))
                        .await;
                    if let Err(e) = r {
                        tracing::warn!(transactional_id = %id, error = %e, "cannot abort a timed-out transaction");
                    }
                })
                .detach();
            }
        }
    }
}
