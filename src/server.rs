//! The broker put together: start-up (every shard's services, in dependency order, then its
//! listener) and the two-phase stop (every shard drains its connections, then every shard
//! closes its logs). The only module that knows every layer; `main`, tests and in-process
//! tools start a broker here.

use std::io;
use std::rc::Rc;
use std::sync::Arc;

use futures::channel::oneshot;

use crate::api::Broker;
use crate::catalog::change::Control;
use crate::catalog::{Catalog, Replica};
use crate::config::Config;
use crate::group::Coordinator;
use crate::log::Partitions;
use crate::net::admission::Admission;
use crate::net::listener::{self, Connections};
use crate::net::request_budget::RequestBudget;
use crate::shard::runtime::{self, Inbox};
use crate::shard::Shard;
use crate::txn::{ProducerIds, TxnCoordinator};
use crate::util::dir_lock::DirLock;

/// Handles to the running shards, for the thread that owns the process (signals, exit code).
pub struct Running {
    stop: Vec<oneshot::Sender<()>>,
    drained: Vec<oneshot::Receiver<()>>,
    finish: Vec<oneshot::Sender<()>>,
    threads: runtime::Threads,
    /// The address every shard listens on (the port is known once bound, for `--listen :0`).
    pub local_addr: std::net::SocketAddr,
    /// The data directory's lock, let go when the process ends (after `stop`).
    _lock: DirLock,
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

/// One shard's side of the start and stop handshakes with the owning thread.
struct Lifecycle {
    /// Sent twice: once the shard has loaded (its partitions open, its coordinators loaded),
    /// and once it listens. An error ends the start.
    ready: std::sync::mpsc::Sender<io::Result<()>>,
    /// Every shard has loaded: listen. No shard takes clients before all can serve them (a
    /// client of the first shard to load could otherwise need one still recovering).
    listen: oneshot::Receiver<()>,
    stop: oneshot::Receiver<()>,
    drained: oneshot::Sender<()>,
    finish: oneshot::Receiver<()>,
    /// The broker-wide connection counts, shared by every shard's listener.
    admission: Arc<Admission>,
}

/// Starts every shard and returns once all of them listen.
pub fn start(mut config: Config) -> io::Result<Running> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot create data directory {} (--data-dir / log.dirs): {e}",
                config.data_dir.display()
            ),
        )
    })?;
    let lock = DirLock::acquire(&config.data_dir)?;
    let catalog = Arc::new(Catalog::load(&config.data_dir)?);
    check_open_files_limit(&catalog);
    // Bound once here so a bad address is reported before any thread starts, and so `:0`
    // resolves to one port that every shard then binds with SO_REUSEPORT.
    let local_addr = listener::check_address(config.listen)?;
    if config.advertise_port == 0 {
        // Listening on port 0: clients must be told the port the kernel picked.
        config.advertise_port = local_addr.port();
    }
    let config = Arc::new(config);

    let mut running = Running {
        stop: vec![],
        drained: vec![],
        finish: vec![],
        threads: vec![],
        local_addr,
        _lock: lock,
    };
    let admission = Admission::new(&config);
    let mut ready = Vec::new();
    let mut lifecycles = Vec::new();
    let mut listen_all = Vec::new();
    for _ in 0..config.shards {
        let (listen_tx, listen) = oneshot::channel();
        listen_all.push(listen_tx);
        let (stop_tx, stop) = oneshot::channel();
        let (drained, drained_rx) = oneshot::channel();
        let (finish_tx, finish) = oneshot::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        running.stop.push(stop_tx);
        running.drained.push(drained_rx);
        running.finish.push(finish_tx);
        ready.push(ready_rx);
        lifecycles.push(Lifecycle {
            ready: ready_tx,
            listen,
            stop,
            drained,
            finish,
            admission: admission.clone(),
        });
    }
    running.threads = runtime::spawn(
        config,
        lifecycles,
        move |shard, inbox, lifecycle| async move {
            let ready = lifecycle.ready.clone();
            let result = shard_main(shard, inbox, catalog, local_addr, lifecycle).await;
            if let Err(e) = &result {
                let _ = ready.send(Err(io::Error::new(e.kind(), e.to_string())));
            }
            result
        },
    )?;
    // Every shard loaded, then every shard listening.
    for phase in 0..2 {
        for r in &ready {
            match r.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(io::Error::other("a shard stopped during start-up")),
            }
        }
        if phase == 0 {
            for l in listen_all.drain(..) {
                let _ = l.send(());
            }
        }
    }
    Ok(running)
}

/// Descriptors kept beside one per partition before the start-up warns that the open-files
/// limit is near: connections, and each shard's rings, listener and small files.
const OPEN_FILES_RESERVE: u64 = 1024;

/// Raises the soft open-files limit to the hard one (every segment and every connection holds
/// a descriptor), and warns, naming the limit, when the catalog's partitions alone come near
/// it: partitions that cannot open stay offline (`Partitions`), which is better said at once.
fn check_open_files_limit(catalog: &Catalog) {
    use crate::util::fd_limit;
    match fd_limit::raise_to_hard() {
        Ok((before, after)) if before != after => tracing::info!(
            from = ?before,
            to = ?after,
            "raised the open-files limit (RLIMIT_NOFILE) to its hard limit"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-files limit (RLIMIT_NOFILE)"),
    }
    let partitions: u64 = catalog
        .topics
        .values()
        .map(|t| u64::try_from(t.partitions).unwrap_or(0))
        .sum();
    if let Ok((Some(soft), _)) = fd_limit::limits() {
        if partitions + OPEN_FILES_RESERVE > soft {
            tracing::warn!(
                partitions,
                "too few descriptors for every partition and {OPEN_FILES_RESERVE} more: {}",
                fd_limit::hint()
            );
        }
    }
}

/// One shard's life: services in dependency order (catalog, log, groups), the catalog loaded
/// into them, operations from the other shards, the listener; then the stop.
async fn shard_main(
    shard: Rc<Shard>,
    inbox: Inbox,
    catalog: Arc<Catalog>,
    addr: std::net::SocketAddr,
    lifecycle: Lifecycle,
) -> io::Result<()> {
    crate::log::segment::probe_device(&shard.config.data_dir, shard.id).await?;
    let replica = Replica::new();
    let partitions = Partitions::new(shard.id, shard.count, shard.config.clone(), replica.clone());
    let groups = Coordinator::new(shard.clone(), replica.clone(), partitions.clone());
    let ids = ProducerIds::new(shard.clone());
    let txns = TxnCoordinator::new(
        shard.clone(),
        replica.clone(),
        partitions.clone(),
        ids.clone(),
    );
    shard.provide(replica.clone());
    shard.provide(Control::new(shard.clone(), replica.clone()));
    shard.provide(partitions.clone());
    shard.provide(groups.clone());
    shard.provide(ids);
    shard.provide(txns.clone());
    // Partitions open and groups load before the shard serves.
    replica.install(catalog).await;
    inbox.serve(&shard);
    let _ = lifecycle.ready.send(Ok(()));
    lifecycle
        .listen
        .await
        .map_err(|_| io::Error::other("start-up was abandoned"))?;

    let broker = Rc::new(Broker {
        shard: shard.clone(),
        catalog: replica,
    });
    let connections = Rc::new(Connections::new(
        RequestBudget::new(RequestBudget::per_shard(
            shard.config.queued_max_request_bytes,
            shard.count,
        )),
        lifecycle.admission.clone(),
    ));
    let admin_http = match shard.id {
        0 if !shard.config.http_listen.is_empty() => {
            Some(crate::observe::bind(&shard.config.http_listen)?)
        }
        _ => None,
    };
    let tcp = listener::listen(addr).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("shard {}: cannot listen on {addr}: {e}", shard.id),
        )
    })?;
    tracing::info!(shard = shard.id, %addr, partitions = partitions.owned().len(), "shard serving");
    let _ = lifecycle.ready.send(Ok(()));
    let observing = admin_http.map(|l| {
        tracing::info!(addr = %shard.config.http_listen, "admin HTTP listener serving (/metrics, /v1/health, /v1/topics, /v1/groups, /)");
        let observer = crate::observe::Observer::new(shard.clone(), broker.catalog.clone());
        glommio::spawn_local(crate::observe::serve(observer, l))
    });
    let accepting = glommio::spawn_local(listener::accept(broker, connections.clone(), tcp));
    #[cfg(debug_assertions)]
    test_panic(&shard);
    if shard.id == 0 {
        // One process-wide trim of free memory, from one shard (see util::memory).
        let s = shard.clone();
        glommio::spawn_local(async move { crate::util::memory::trim_until(s.stopped()).await })
            .detach();
    }

    // Phase 1: stop reading new requests and let in-flight ones finish.
    let _ = lifecycle.stop.await;
    shard.begin_stop();
    accepting.await;
    if let Some(o) = observing {
        o.await;
    }
    groups.shutdown();
    txns.shutdown();
    connections.drained().await;
    let _ = lifecycle.drained.send(());
    // Phase 2 (every shard drained, so no peer will ask us for more): close the logs.
    let _ = lifecycle.finish.await;
    partitions.close_all().await?;
    tracing::info!(shard = shard.id, "shard stopped");
    Ok(())
}

/// Debug builds only (what the tests run): `SHARDLOG_TEST_PANIC_SHARD=<id>` makes that shard
/// panic once it serves, for the test that a panicking shard ends the process.
#[cfg(debug_assertions)]
fn test_panic(shard: &Rc<Shard>) {
    let wanted = std::env::var("SHARDLOG_TEST_PANIC_SHARD").ok();
    if wanted.and_then(|w| w.parse::<usize>().ok()) == Some(shard.id) {
        glommio::spawn_local(async {
            glommio::timer::sleep(std::time::Duration::from_millis(200)).await;
            panic!("SHARDLOG_TEST_PANIC_SHARD: this shard was asked to panic");
        })
        .detach();
    }
}
