//! Executors: one pinned glommio executor per shard, joined into a full channel mesh, each
//! running the function the caller gives it. What a shard does (services, listeners, the stop
//! sequence) is the caller's business (`crate::broker`).

use std::future::Future;
use std::io;
use std::rc::Rc;
use std::sync::Arc;

use glommio::channels::channel_mesh::{Full, MeshBuilder};
use glommio::channels::shared_channel::ConnectedReceiver;
use glommio::{LocalExecutorBuilder, Placement};

use super::{Message, Shard, MESH_CHANNEL_CAPACITY};
use crate::config::Config;

/// The executors' threads; each returns what its shard's function returned.
pub type Threads = Vec<glommio::ExecutorJoinHandle<io::Result<()>>>;

/// Operations from the other shards, not read until `serve` is called: a shard registers its
/// services first, so no operation arrives before the service it is for.
pub struct Inbox {
    streams: Vec<ConnectedReceiver<Message>>,
}

impl Inbox {
    /// Runs operations from every peer as they arrive, in arrival order per peer: the
    /// operation's synchronous part runs in the receive loop, its waiting part as a task. What
    /// is in flight is bounded upstream: each connection has a bounded number of requests
    /// open, and each mesh channel holds `MESH_CHANNEL_CAPACITY` messages before senders wait.
    pub fn serve(self, shard: &Rc<Shard>) {
        for stream in self.streams {
            let shard = shard.clone();
            glommio::spawn_local(async move {
                while let Some(message) = stream.recv().await {
                    shard.run(message);
                }
            })
            .detach();
        }
    }
}

/// CPUs this process may run on, in order.
fn usable_cpus() -> Vec<usize> {
    let mut cpus: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    cpus.sort_unstable();
    if cpus.is_empty() {
        cpus.push(0);
    }
    cpus
}

/// Threads of each shard's blocking pool. It runs the file-system calls io_uring cannot make
/// and the `sendfile`s of fetches from segment files, whose reads of pages not in memory wait
/// for the disk: with one thread (glommio's default), one consumer's cold read would hold up
/// every other consumer's and the shard's directory syncs. A few let cold reads of different
/// consumers wait side by side; they stay on the shard's CPU, so a shard is still one core.
pub const BLOCKING_THREADS_PER_SHARD: usize = 4;

/// The blocking pool of the shard on `cpu`: `BLOCKING_THREADS_PER_SHARD` threads on that CPU.
fn blocking_pool(cpu: usize) -> glommio::PoolPlacement {
    match glommio::CpuSet::online() {
        Ok(set) => glommio::PoolPlacement::Custom(vec![
            set.filter(|l| l.cpu == cpu);
            BLOCKING_THREADS_PER_SHARD
        ]),
        // Where CPUs cannot be listed, neither can the shard be pinned: unbound threads.
        Err(_) => glommio::PoolPlacement::Unbound(BLOCKING_THREADS_PER_SHARD),
    }
}

/// Starts one executor per element of `inputs` (`config.shards` of them), pinned round-robin to
/// the usable CPUs, joins them into a mesh, and runs `main(shard, inbox, input)` on each.
pub fn spawn<T, F, Fut>(config: Arc<Config>, inputs: Vec<T>, main: F) -> io::Result<Threads>
where
    T: Send + 'static,
    F: FnOnce(Rc<Shard>, Inbox, T) -> Fut + Send + Clone + 'static,
    Fut: Future<Output = io::Result<()>> + 'static,
{
    if inputs.len() != config.shards {
        return Err(io::Error::other(format!(
            "{} shard inputs for {} shards",
            inputs.len(),
            config.shards
        )));
    }
    let cpus = usable_cpus();
    if config.shards > cpus.len() {
        tracing::warn!(
            shards = config.shards,
            cpus = cpus.len(),
            "more shards than usable CPUs: shards share CPUs round-robin"
        );
    }
    let mesh = MeshBuilder::full(config.shards, MESH_CHANNEL_CAPACITY);
    let mut threads = Vec::with_capacity(config.shards);
    for (id, input) in inputs.into_iter().enumerate() {
        let cpu = cpus[id % cpus.len()];
        let config = config.clone();
        let mesh = mesh.clone();
        let main = main.clone();
        let handle = LocalExecutorBuilder::new(Placement::Fixed(cpu))
            .name(&format!("shard-{id}"))
            .io_memory(config.io_memory_bytes)
            .blocking_thread_pool_placement(blocking_pool(cpu))
            .spawn(move || async move {
                let (shard, inbox) = join_mesh(id, config, mesh).await?;
                main(shard, inbox, input).await
            })
            .map_err(|e| {
                io::Error::other(format!(
                    "cannot start shard {id} on CPU {cpu}: {e} (see README: memlock)"
                ))
            })?;
        threads.push(handle);
    }
    Ok(threads)
}

/// Joins the mesh and learns which shard id sits behind each peer index.
async fn join_mesh(
    id: usize,
    config: Arc<Config>,
    mesh: MeshBuilder<Message, Full>,
) -> io::Result<(Rc<Shard>, Inbox)> {
    let (senders, mut receivers) = mesh
        .join()
        .await
        .map_err(|_| io::Error::other("joining the shard mesh failed"))?;
    let count = config.shards;
    for peer in 0..senders.nr_consumers() {
        if peer != senders.peer_id() {
            senders
                .send_to(peer, Message::Hello { shard: id })
                .await
                .map_err(|_| io::Error::other("shard mesh closed during start-up"))?;
        }
    }
    let mut peer_of_shard = vec![usize::MAX; count];
    peer_of_shard[id] = senders.peer_id();
    let mut streams = Vec::new();
    for (peer, stream) in receivers.streams() {
        match stream.recv().await {
            Some(Message::Hello { shard }) if shard < count => peer_of_shard[shard] = peer,
            _ => {
                return Err(io::Error::other(
                    "unexpected first message on the shard mesh",
                ))
            }
        }
        streams.push(stream);
    }
    let shard = Rc::new(Shard::new(id, config, senders, peer_of_shard));
    Ok((shard, Inbox { streams }))
}
