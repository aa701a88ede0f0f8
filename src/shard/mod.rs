//! Shards: one glommio executor per core, the partitions each owns, and the typed messages
//! between them over glommio's channel mesh.
//!
//! A shard owns its partitions outright (logs, writer tasks, waiting fetches). Work for a
//! partition owned elsewhere travels as a `ShardRequest` to the owner; the reply comes back on
//! a oneshot carried in the request, so replies never wait on the mesh (no send cycles, no
//! deadlock). When the owner is the current shard the request is handled in place.

pub mod notify;
pub mod placement;
pub mod runtime;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use futures::channel::oneshot;
use glommio::channels::channel_mesh::Senders;

use crate::api;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::log::group_commit::GroupCommit;
use crate::log::PartitionLog;
use notify::Notify;

/// Messages each mesh channel holds before a sender waits. Large enough that bursts of
/// pipelined produce and fetch requests from all connections rarely wait; small enough to
/// bound queued payload references per shard pair. (glommio #555: tiny sizes can deadlock
/// designs where receivers also send; ours never send from the receive loop.)
pub const MESH_CHANNEL_CAPACITY: usize = 1024;

/// The typed requests one shard sends another. Each carries its own reply channel.
pub enum ShardRequest {
    /// Start-up: tells a peer which shard id sits behind this mesh peer index.
    Hello {
        shard: usize,
    },
    Produce(api::produce::OwnerProduce),
    Fetch(api::fetch::OwnerFetch),
    FetchWait(api::fetch::OwnerWait),
    ListOffsets(api::list_offsets::OwnerListOffsets),
    /// To shard 0: apply a topic change, persist it and spread it.
    CatalogChange(
        crate::catalog::change::Change,
        oneshot::Sender<crate::catalog::change::ChangeResult>,
    ),
    /// From shard 0: the new catalog; open and close partitions to match it, then reply.
    CatalogUpdate(Arc<Catalog>, oneshot::Sender<()>),
    /// To a group's coordinator (the owner of its `__consumer_offsets` partition).
    Group {
        partition: i32,
        group: String,
        op: crate::group::Op,
        reply: oneshot::Sender<crate::group::OpResult>,
    },
}

pub struct Shard {
    pub id: usize,
    pub count: usize,
    pub config: Arc<Config>,
    catalog: RefCell<Arc<Catalog>>,
    partitions: RefCell<HashMap<String, HashMap<i32, Rc<PartitionLog>>>>,
    pub commit: Rc<GroupCommit>,
    senders: Senders<ShardRequest>,
    /// Mesh peer index of each shard id.
    peer_of_shard: Vec<usize>,
    /// Serialises catalog changes (used on shard 0 only).
    pub control_lock: glommio::sync::Semaphore,
    /// Set when the broker is stopping: connections stop reading new requests.
    pub stopping: Cell<bool>,
    pub stop_notify: Notify,
    /// Connections open on this shard, for the drain at shutdown.
    pub connections: Cell<usize>,
    pub connections_notify: Notify,
    /// Consumer groups of the `__consumer_offsets` partitions this shard owns.
    pub groups: crate::group::Coordinator,
}

impl Shard {
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.borrow().clone()
    }

    pub fn owner(&self, topic: &str, partition: i32) -> usize {
        placement::owner_shard(topic, partition, self.count)
    }

    /// A partition this shard owns.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<Rc<PartitionLog>> {
        self.partitions
            .borrow()
            .get(topic)?
            .get(&partition)
            .cloned()
    }

    /// The error for a partition this shard was asked about but has no log for: gone from the
    /// catalog (deleted meanwhile) is UNKNOWN_TOPIC_OR_PARTITION, as Kafka answers; still in it
    /// means the partition is being opened here, NOT_LEADER_OR_FOLLOWER, which clients retry.
    pub fn missing_partition_error(
        &self,
        topic: &str,
        partition: i32,
    ) -> kafka_protocol::ResponseError {
        let known = self
            .catalog()
            .topic(topic)
            .is_some_and(|t| partition >= 0 && partition < t.partitions);
        if known {
            kafka_protocol::ResponseError::NotLeaderOrFollower
        } else {
            kafka_protocol::ResponseError::UnknownTopicOrPartition
        }
    }

    /// Sends `req` to shard `to`, or handles it in place when `to` is this shard. Returns once
    /// the request is queued (remote) or its in-order part has run (local).
    pub async fn send(self: &Rc<Self>, to: usize, req: ShardRequest) {
        if to == self.id {
            self.handle(req);
            return;
        }
        let peer = self.peer_of_shard[to];
        if self.senders.send_to(peer, req).await.is_err() {
            // The peer's receiver is gone only while the broker stops; the dropped request's
            // reply channel tells the caller.
            tracing::debug!(to, "shard mesh closed");
        }
    }

    /// Sends one request to each shard owning some of `parts` (given as `(owner, part)`), built
    /// by `make` from that owner's parts, and returns the reply receivers. Owners are visited in
    /// shard order, so one caller's successive requests reach each owner in order.
    pub async fn scatter<P, R>(
        self: &Rc<Self>,
        parts: impl IntoIterator<Item = (usize, P)>,
        mut make: impl FnMut(Vec<P>, oneshot::Sender<R>) -> ShardRequest,
    ) -> Vec<oneshot::Receiver<R>> {
        let mut by_owner: Vec<Vec<P>> = (0..self.count).map(|_| Vec::new()).collect();
        for (owner, part) in parts {
            by_owner[owner].push(part);
        }
        let mut replies = Vec::new();
        for (owner, parts) in by_owner.into_iter().enumerate() {
            if parts.is_empty() {
                continue;
            }
            let (tx, rx) = oneshot::channel();
            self.send(owner, make(parts, tx)).await;
            replies.push(rx);
        }
        replies
    }

    /// Handles a request addressed to this shard. The part that must keep arrival order (queueing
    /// appends) runs before this returns; waiting parts run as tasks.
    pub fn handle(self: &Rc<Self>, req: ShardRequest) {
        match req {
            ShardRequest::Hello { .. } => {}
            ShardRequest::Produce(r) => api::produce::on_owner(self, r),
            ShardRequest::Fetch(r) => api::fetch::on_owner(self, r),
            ShardRequest::FetchWait(r) => api::fetch::wait_on_owner(self, r),
            ShardRequest::ListOffsets(r) => api::list_offsets::on_owner(self, r),
            ShardRequest::CatalogChange(change, reply) => {
                let shard = self.clone();
                glommio::spawn_local(async move {
                    let result = crate::catalog::change::apply(&shard, change).await;
                    let _ = reply.send(result);
                })
                .detach();
            }
            ShardRequest::Group {
                partition,
                group,
                op,
                reply,
            } => crate::group::on_owner(self, partition, group, op, reply),
            ShardRequest::CatalogUpdate(catalog, reply) => {
                let shard = self.clone();
                glommio::spawn_local(async move {
                    shard.install_catalog(catalog).await;
                    let _ = reply.send(());
                })
                .detach();
            }
        }
    }

    /// Adopts a new catalog: opens partitions this shard now owns, closes and deletes the ones
    /// whose topic is gone.
    pub async fn install_catalog(&self, catalog: Arc<Catalog>) {
        let previous = self.catalog.replace(catalog.clone());
        // Topics deleted (or re-created with a new id): close and remove their partitions.
        let gone: Vec<String> = previous
            .topics
            .iter()
            .filter(|(name, t)| catalog.topic(name).is_none_or(|n| n.id != t.id))
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            let removed = self.partitions.borrow_mut().remove(&name);
            for (_, log) in removed.into_iter().flatten() {
                if let Err(e) = log.close().await {
                    tracing::warn!(topic = %name, error = %e, "closing a deleted partition");
                }
                if let Err(e) = std::fs::remove_dir_all(log.dir()) {
                    tracing::warn!(dir = %log.dir().display(), error = %e, "removing a deleted partition's directory");
                }
            }
        }
        self.open_owned_partitions().await;
    }

    /// Opens every partition of the current catalog that this shard owns and has not opened.
    pub async fn open_owned_partitions(&self) {
        let catalog = self.catalog();
        for (name, topic) in &catalog.topics {
            for p in 0..topic.partitions {
                if self.owner(name, p) != self.id || self.partition(name, p).is_some() {
                    continue;
                }
                let log_config = crate::catalog::log_config(&self.config, topic);
                match PartitionLog::open(
                    &self.config.data_dir,
                    name,
                    p,
                    log_config,
                    self.commit.clone(),
                )
                .await
                {
                    Ok(log) => {
                        if name == crate::group::OFFSETS_TOPIC {
                            // Groups come back before the partition serves.
                            if let Err(e) = self.groups.load(&log).await {
                                tracing::error!(partition = p, error = %e, "cannot load consumer groups; their coordinator stays unavailable");
                                continue;
                            }
                        }
                        self.partitions
                            .borrow_mut()
                            .entry(name.clone())
                            .or_default()
                            .insert(p, log);
                    }
                    Err(e) => {
                        tracing::error!(topic = %name, partition = p, error = %e, "cannot open partition; it stays offline");
                    }
                }
            }
        }
    }

    /// Every partition this shard owns.
    pub fn owned_partitions(&self) -> Vec<Rc<PartitionLog>> {
        self.partitions
            .borrow()
            .values()
            .flat_map(|m| m.values().cloned())
            .collect()
    }
}
