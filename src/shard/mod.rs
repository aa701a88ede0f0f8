//! The shard transport: one glommio executor per core (`runtime`), the channel mesh between
//! them, and `invoke_on`, which runs an operation on the shard that owns the state it needs.
//!
//! This layer knows nothing of Kafka, partitions or groups. A layer above that keeps per-shard
//! state registers it here as a *service* (`Shard::provide`), one instance per shard, and
//! reaches another shard's instance by sending it an operation: a `Send` closure that gets the
//! target's instance and returns the (shard-local) future of its answer, as Seastar's
//! `sharded<T>::invoke_on` and Redpanda's services do. The closure's synchronous part runs in
//! the order operations reach the target from one sender (the mesh is FIFO per shard pair),
//! before the next operation is taken: a layer puts what must keep arrival order there (the
//! log queues appends) and the waiting in the future. When the target is the current shard the
//! operation runs in place, without the mesh.
//!
//! Operations for one peer are batched: the first one queued in a turn of the executor starts a
//! sender task for that peer, which yields once (so that the operations other tasks queue in the
//! same turn join it) and then sends everything queued as one mesh message, in order, again and
//! again until nothing is left. One message and one wake-up of the peer per batch, not per
//! operation; the order per shard pair is kept, as one task sends for each peer.
//!
//! Replies travel on a oneshot channel carried by the operation, never on the mesh, so a shard
//! that sends while it receives cannot deadlock (glommio #555). A requester that drops the
//! reply cancels the operation's future on the target (a long poll that is no longer wanted).

pub mod runtime;

use std::any::{Any, TypeId};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use futures::channel::oneshot;
use futures::future::LocalBoxFuture;
use glommio::channels::channel_mesh::Senders;

use crate::config::Config;
use crate::util::Notify;

/// Messages each mesh channel holds before a sender waits. Large enough that bursts of
/// pipelined produce and fetch requests from all connections rarely wait; small enough to
/// bound queued payload references per shard pair. (glommio #555: tiny sizes can deadlock
/// designs where receivers also send; ours never send from the receive loop.)
pub const MESH_CHANNEL_CAPACITY: usize = 1024;

/// An operation for another shard: runs on the target with that shard's handle.
type Job = Box<dyn FnOnce(&Rc<Shard>) + Send>;

/// What travels on the mesh.
pub(crate) enum Message {
    /// Start-up: tells a peer which shard id sits behind this mesh peer index.
    Hello {
        shard: usize,
    },
    Run(Job),
    /// Several operations, run in order.
    Batch(Vec<Job>),
}

/// The target shard could not run an operation: it is stopping (its mesh or the operation's
/// reply channel closed), or it has no such service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unreachable;

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the target shard is stopping")
    }
}

/// The answer of an operation sent with `Shard::submit_to`: resolves when the target replies.
pub struct Reply<R>(oneshot::Receiver<R>);

impl<R> Future for Reply<R> {
    type Output = Result<R, Unreachable>;
    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.map_err(|_| Unreachable))
    }
}

/// One executor's handle: who it is, the way to the others, its services, and whether the
/// broker is stopping.
pub struct Shard {
    pub id: usize,
    pub count: usize,
    pub config: Arc<Config>,
    senders: Senders<Message>,
    /// Mesh peer index of each shard id.
    peer_of_shard: Vec<usize>,
    /// One instance per service type, registered at start-up (`provide`).
    services: RefCell<Vec<(TypeId, Rc<dyn Any>)>>,
    /// Operations queued for each peer (by shard id), and whether its sender task runs.
    outbox: RefCell<Vec<Vec<Job>>>,
    sending: RefCell<Vec<bool>>,
    stopping: Cell<bool>,
    stop_notify: Notify,
}

impl Shard {
    pub(crate) fn new(
        id: usize,
        config: Arc<Config>,
        senders: Senders<Message>,
        peer_of_shard: Vec<usize>,
    ) -> Shard {
        let peers = peer_of_shard.len();
        Shard {
            id,
            count: config.shards,
            config,
            senders,
            peer_of_shard,
            services: RefCell::new(Vec::new()),
            outbox: RefCell::new((0..peers).map(|_| Vec::new()).collect()),
            sending: RefCell::new(vec![false; peers]),
            stopping: Cell::new(false),
            stop_notify: Notify::new(),
        }
    }

    /// Registers this shard's instance of a service, so that operations sent to this shard
    /// for `S` find it. Done at start-up, before the shard serves.
    pub fn provide<S: 'static>(&self, service: Rc<S>) {
        let mut services = self.services.borrow_mut();
        services.retain(|(t, _)| *t != TypeId::of::<S>());
        services.push((TypeId::of::<S>(), service));
    }

    /// This shard's instance of service `S`, if one was provided.
    pub fn service<S: 'static>(&self) -> Option<Rc<S>> {
        let services = self.services.borrow();
        let (_, any) = services.iter().find(|(t, _)| *t == TypeId::of::<S>())?;
        any.clone().downcast::<S>().ok()
    }

    /// Sends `op` to shard `to` for its instance of `S`, and returns once it is queued for
    /// `to`, after every operation queued for `to` before it (on this shard: once its
    /// synchronous part has run). The returned `Reply` resolves with the operation's answer.
    pub async fn submit_to<S, R, F>(self: &Rc<Self>, to: usize, op: F) -> Reply<R>
    where
        S: 'static,
        R: Send + 'static,
        F: FnOnce(&Rc<S>) -> LocalBoxFuture<'static, R> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |shard: &Rc<Shard>| {
            let Some(service) = shard.service::<S>() else {
                tracing::error!(
                    shard = shard.id,
                    service = std::any::type_name::<S>(),
                    "no such service on this shard"
                );
                return;
            };
            let answer = op(&service);
            glommio::spawn_local(answer_unless_cancelled(answer, tx)).detach();
        });
        self.send(to, job).await;
        Reply(rx)
    }

    /// `submit_to`, then waits for the answer.
    pub async fn invoke_on<S, R, F>(self: &Rc<Self>, to: usize, op: F) -> Result<R, Unreachable>
    where
        S: 'static,
        R: Send + 'static,
        F: FnOnce(&Rc<S>) -> LocalBoxFuture<'static, R> + Send + 'static,
    {
        self.submit_to(to, op).await.await
    }

    async fn send(self: &Rc<Self>, to: usize, job: Job) {
        if to == self.id {
            job(self);
            return;
        }
        if to >= self.peer_of_shard.len() {
            tracing::error!(to, count = self.count, "no such shard");
            return;
        }
        self.outbox.borrow_mut()[to].push(job);
        let start = !std::mem::replace(&mut self.sending.borrow_mut()[to], true);
        if start {
            glommio::spawn_local(self.clone().send_queued(to)).detach();
        }
    }

    /// The sender task for peer `to` (see the module doc).
    async fn send_queued(self: Rc<Self>, to: usize) {
        let peer = self.peer_of_shard[to];
        yield_once().await;
        loop {
            let mut jobs = std::mem::take(&mut self.outbox.borrow_mut()[to]);
            let message = match (jobs.pop(), jobs.is_empty()) {
                (None, _) => break,
                (Some(job), true) => Message::Run(job),
                (Some(job), false) => {
                    jobs.push(job);
                    Message::Batch(jobs)
                }
            };
            if self.senders.send_to(peer, message).await.is_err() {
                // The peer's receiver is gone only while the broker stops; the dropped jobs'
                // reply channels tell their callers.
                tracing::debug!(to, "shard mesh closed");
            }
        }
        self.sending.borrow_mut()[to] = false;
    }

    /// Runs an operation that arrived from a peer.
    pub(crate) fn run(self: &Rc<Self>, message: Message) {
        match message {
            Message::Hello { .. } => {}
            Message::Run(job) => job(self),
            Message::Batch(jobs) => {
                for job in jobs {
                    job(self);
                }
            }
        }
    }

    /// True once the broker is stopping: connections stop reading, waits end early.
    pub fn stopping(&self) -> bool {
        self.stopping.get()
    }

    /// Resolves when the broker starts stopping (at once if it already has).
    pub async fn stopped(&self) {
        while !self.stopping.get() {
            self.stop_notify.notified().await;
        }
    }

    /// Marks this shard as stopping and wakes everything waiting in `stopped`.
    pub fn begin_stop(&self) {
        self.stopping.set(true);
        self.stop_notify.notify_all();
    }
}

/// Lets the other tasks ready now run once before going on.
async fn yield_once() {
    let mut yielded = false;
    futures::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}

/// Runs `answer` and sends its result, unless the requester drops its `Reply` first: then the
/// answer's future is dropped, which cancels whatever it was waiting for.
async fn answer_unless_cancelled<R>(
    answer: LocalBoxFuture<'static, R>,
    mut tx: oneshot::Sender<R>,
) {
    let cancelled = tx.cancellation();
    futures::pin_mut!(cancelled);
    if let futures::future::Either::Left((r, _)) = futures::future::select(answer, cancelled).await
    {
        let _ = tx.send(r);
    }
}
