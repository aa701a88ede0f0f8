//! Start-up and shutdown: one pinned glommio executor per shard, the mesh between them, each
//! shard's listener (SO_REUSEPORT, so the kernel spreads connections), and the two-phase stop
//! (every shard drains its connections, then every shard closes its logs).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::rc::Rc;
use std::sync::Arc;

use futures::channel::oneshot;
use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{LocalExecutorBuilder, Placement};

use super::notify::Notify;
use super::{Shard, ShardRequest, MESH_CHANNEL_CAPACITY};
use crate::catalog::Catalog;
use crate::config::Config;
use crate::log::group_commit::GroupCommit;

/// Handles to the running shards, for the thread that owns the process (signals, exit code).
pub struct Running {
    stop: Vec<oneshot::Sender<()>>,
    drained: Vec<oneshot::Receiver<()>>,
    finish: Vec<oneshot::Sender<()>>,
    threads: Vec<glommio::ExecutorJoinHandle<io::Result<()>>>,
    /// The address every shard listens on (the port is known once bound, for `--listen :0`).
    pub local_addr: std::net::SocketAddr,
}

impl Running {
    /// Stops accepting, lets in-flight requests finish, flushes, and waits for every shard.
    pub fn stop(self) -> io::Result<()> {
        for s in self.stop {
            let _ = s.send(());
        }
        for d in self.drained {
            let _ = futures::executor::block_on(d);
        }
        for f in self.finish {
            let _ = f.send(());
        }
        let mut result = Ok(());
        for t in self.threads {
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(e),
                Err(e) => result = Err(io::Error::other(format!("shard failed: {e}"))),
            }
        }
        result
    }
}

/// Pending connections the kernel queues per shard's listener before refusing more.
const LISTEN_BACKLOG: i32 = 1024;

/// A listening socket with SO_REUSEPORT (every shard binds the same address and the kernel
/// spreads connections) and SO_REUSEADDR (a restart binds despite connections in TIME_WAIT).
fn bind_listener(addr: std::net::SocketAddr) -> io::Result<socket2::Socket> {
    let socket = bind_socket(addr)?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket)
}

/// A bound socket that does not listen: it checks the address and resolves port 0 without
/// ever accepting a connection (a client reaching a socket that is then closed would see a
/// reset before the broker is up).
fn bind_socket(addr: std::net::SocketAddr) -> io::Result<socket2::Socket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_cloexec(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
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

/// Starts every shard and returns once all of them listen.
pub fn start(config: Config) -> io::Result<Running> {
    let config = Arc::new(config);
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot create data directory {} (--data-dir / log.dirs): {e}",
                config.data_dir.display()
            ),
        )
    })?;
    let catalog = Arc::new(Catalog::load(&config.data_dir)?);
    let cpus = usable_cpus();
    if config.shards > cpus.len() {
        tracing::warn!(
            shards = config.shards,
            cpus = cpus.len(),
            "more shards than usable CPUs: shards share CPUs round-robin"
        );
    }
    // Bind once here so a bad address is reported before any thread starts, and so `:0`
    // resolves to one port that every shard then binds with SO_REUSEPORT.
    let probe = bind_socket(config.listen).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot listen on {} (--listen / listeners): {e}",
                config.listen
            ),
        )
    })?;
    let local_addr = probe
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("listener has no IP address"))?;
    drop(probe);

    let mesh = MeshBuilder::full(config.shards, MESH_CHANNEL_CAPACITY);
    let mut running = Running {
        stop: vec![],
        drained: vec![],
        finish: vec![],
        threads: vec![],
        local_addr,
    };
    let mut ready = Vec::new();
    for id in 0..config.shards {
        let (stop_tx, stop_rx) = oneshot::channel();
        let (drained_tx, drained_rx) = oneshot::channel();
        let (finish_tx, finish_rx) = oneshot::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<()>>();
        let cpu = cpus[id % cpus.len()];
        let config = config.clone();
        let catalog = catalog.clone();
        let mesh = mesh.clone();
        let handle = LocalExecutorBuilder::new(Placement::Fixed(cpu))
            .name(&format!("shard-{id}"))
            .io_memory(config.io_memory_bytes)
            .spawn(move || async move {
                let result = shard_main(
                    id,
                    config,
                    catalog,
                    mesh,
                    local_addr,
                    ready_tx.clone(),
                    stop_rx,
                    drained_tx,
                    finish_rx,
                )
                .await;
                if let Err(e) = &result {
                    let _ = ready_tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                }
                result
            })
            .map_err(|e| {
                io::Error::other(format!(
                    "cannot start shard {id} on CPU {cpu}: {e} (see README: memlock)"
                ))
            })?;
        running.stop.push(stop_tx);
        running.drained.push(drained_rx);
        running.finish.push(finish_tx);
        running.threads.push(handle);
        ready.push(ready_rx);
    }
    for r in ready {
        match r.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(io::Error::other("a shard stopped during start-up")),
        }
    }
    Ok(running)
}

#[allow(clippy::too_many_arguments)]
async fn shard_main(
    id: usize,
    config: Arc<Config>,
    catalog: Arc<Catalog>,
    mesh: MeshBuilder<ShardRequest, glommio::channels::channel_mesh::Full>,
    addr: std::net::SocketAddr,
    ready: std::sync::mpsc::Sender<io::Result<()>>,
    stop: oneshot::Receiver<()>,
    drained: oneshot::Sender<()>,
    finish: oneshot::Receiver<()>,
) -> io::Result<()> {
    let (senders, mut receivers) = mesh
        .join()
        .await
        .map_err(|_| io::Error::other("joining the shard mesh failed"))?;
    // Learn which shard sits behind each mesh peer index.
    let count = config.shards;
    for peer in 0..senders.nr_consumers() {
        if peer != senders.peer_id() {
            senders
                .send_to(peer, ShardRequest::Hello { shard: id })
                .await
                .map_err(|_| io::Error::other("shard mesh closed during start-up"))?;
        }
    }
    let mut peer_of_shard = vec![usize::MAX; count];
    peer_of_shard[id] = senders.peer_id();
    let streams = receivers.streams();
    let mut peer_streams = Vec::with_capacity(streams.len());
    for (peer, stream) in streams {
        match stream.recv().await {
            Some(ShardRequest::Hello { shard }) if shard < count => peer_of_shard[shard] = peer,
            _ => {
                return Err(io::Error::other(
                    "unexpected first message on the shard mesh",
                ))
            }
        }
        peer_streams.push(stream);
    }
    crate::log::segment::probe_device(&config.data_dir, id).await?;
    let commit = GroupCommit::new();
    glommio::spawn_local(commit.clone().run()).detach();
    let shard = Rc::new(Shard {
        id,
        count,
        config: config.clone(),
        catalog: RefCell::new(catalog),
        partitions: RefCell::new(HashMap::new()),
        commit: commit.clone(),
        senders,
        peer_of_shard,
        control_lock: glommio::sync::Semaphore::new(1),
        stopping: Cell::new(false),
        stop_notify: Notify::new(),
        connections: Cell::new(0),
        connections_notify: Notify::new(),
        groups: Default::default(),
    });
    shard.open_owned_partitions().await;
    glommio::spawn_local(crate::group::Coordinator::run_timer(shard.clone())).detach();

    // Requests from peers, in arrival order: the in-order part runs in the loop, waiting parts
    // in tasks. What is in flight is bounded upstream: each connection has at most
    // `CONNECTION_REQUESTS_IN_FLIGHT_MAX` requests open, and each mesh channel holds
    // `MESH_CHANNEL_CAPACITY` messages before its senders wait.
    for stream in peer_streams {
        let shard = shard.clone();
        glommio::spawn_local(async move {
            while let Some(req) = stream.recv().await {
                shard.handle(req);
            }
        })
        .detach();
    }

    let listener = bind_listener(addr).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("shard {id}: cannot listen on {addr}: {e}"),
        )
    })?;
    // SAFETY: the descriptor is a listening TCP socket we own; ownership moves to glommio.
    let listener = unsafe {
        <glommio::net::TcpListener as std::os::fd::FromRawFd>::from_raw_fd(
            std::os::fd::IntoRawFd::into_raw_fd(listener),
        )
    };
    tracing::info!(shard = id, %addr, partitions = shard.owned_partitions().len(), "shard serving");
    let _ = ready.send(Ok(()));

    // Accept until told to stop.
    let accept = {
        let shard = shard.clone();
        async move {
            loop {
                match listener.accept().await {
                    Ok(stream) => {
                        let shard = shard.clone();
                        glommio::spawn_local(crate::net::connection::serve(shard, stream)).detach();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
                    }
                }
            }
        }
    };
    // Boxed so that it (and the listener it owns) is dropped as soon as the stop arrives: new
    // connections are refused from then on instead of being accepted and dropped mid-drain.
    let accept = Box::pin(accept);
    let _ = futures::future::select(accept, stop).await;

    // Phase 1: stop reading new requests and let in-flight ones finish.
    shard.stopping.set(true);
    shard.stop_notify.notify_all();
    shard.groups.shutdown();
    while shard.connections.get() > 0 {
        shard.connections_notify.notified().await;
    }
    let _ = drained.send(());
    // Phase 2 (every shard drained, so no peer will ask us for more): close the logs.
    let _ = finish.await;
    for log in shard.owned_partitions() {
        if let Err(e) = log.close().await {
            tracing::error!(topic = %log.topic, partition = log.partition, error = %e, "closing partition");
        }
    }
    commit.flush_and_stop().await?;
    tracing::info!(shard = id, "shard stopped");
    Ok(())
}
