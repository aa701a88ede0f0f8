//! The listening side: every shard binds the same address with SO_REUSEPORT (the kernel
//! spreads connections over them), accepts until the broker stops, and keeps count of its open
//! connections so a stop can wait for them to drain.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use super::admission::Admission;
use super::connection;
use super::request_budget::RequestBudget;
use crate::api::Broker;
use crate::util::Notify;

/// Pending connections the kernel queues per shard's listener before refusing more.
const LISTEN_BACKLOG: i32 = 1024;

/// The connections open on one shard, and the bytes of requests they may hold.
pub struct Connections {
    open: Cell<usize>,
    closed: Notify,
    pub requests: Rc<RequestBudget>,
    admission: Arc<Admission>,
}

impl Connections {
    pub fn new(requests: Rc<RequestBudget>, admission: Arc<Admission>) -> Connections {
        Connections {
            open: Cell::new(0),
            closed: Notify::new(),
            requests,
            admission,
        }
    }

    fn opened(&self) {
        self.open.set(self.open.get() + 1);
    }

    fn closed(&self) {
        self.open.set(self.open.get() - 1);
        self.closed.notify_all();
    }

    /// Resolves once no connection is open.
    pub async fn drained(&self) {
        while self.open.get() > 0 {
            self.closed.notified().await;
        }
    }
}

/// Counts a connection as open for as long as it lives.
struct Open(Rc<Connections>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.closed();
    }
}

/// Checks that `addr` can be bound and resolves port 0, without listening: a client reaching
/// a socket that is then closed would see a reset before the broker is up. The probe binds
/// without SO_REUSEPORT first, which fails while any other socket holds the address: the
/// shards' own SO_REUSEPORT would otherwise let this broker listen beside another process on
/// the same port (clients landing on either at random), which Kafka refuses.
pub fn check_address(addr: SocketAddr) -> io::Result<SocketAddr> {
    if addr.port() != 0 {
        exclusive_probe_patiently(addr).map_err(|e| {
            if e.kind() == io::ErrorKind::AddrInUse {
                io::Error::new(
                    e.kind(),
                    format!("cannot listen on {addr} (--listen / listeners): address already in use by another process (another broker?): stop it, or listen on another port"),
                )
            } else {
                io::Error::new(
                    e.kind(),
                    format!("cannot listen on {addr} (--listen / listeners): {e}"),
                )
            }
        })?;
    }
    let probe = bind_socket(addr).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot listen on {addr} (--listen / listeners): {e}"),
        )
    })?;
    probe
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("listener has no IP address"))
}

/// A bound socket with SO_REUSEPORT (every shard binds the same address) and SO_REUSEADDR (a
/// restart binds despite connections in TIME_WAIT).
fn bind_socket(addr: SocketAddr) -> io::Result<socket2::Socket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_cloexec(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// How long a start waits for an address held by another socket to be let go: the listener
/// of a broker killed a moment ago outlives its process while io_uring tears down the ring that
/// held its pending accept.
const ADDRESS_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// `exclusive_probe`, tried again for up to `ADDRESS_GRACE` while the address is in use.
fn exclusive_probe_patiently(addr: SocketAddr) -> io::Result<()> {
    let started = std::time::Instant::now();
    let mut said = false;
    loop {
        match exclusive_probe(addr) {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && started.elapsed() < ADDRESS_GRACE => {
                if !said {
                    tracing::info!(%addr, "address in use; waiting up to 5 s for it to be let go (a broker that just stopped?)");
                    said = true;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            result => return result,
        }
    }
}

/// Binds `addr` with SO_REUSEADDR only (connections in TIME_WAIT do not count), then lets go.
fn exclusive_probe(addr: SocketAddr) -> io::Result<()> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_cloexec(true)?;
    socket.bind(&addr.into())
}

/// This shard's listener on `addr`.
pub fn listen(addr: SocketAddr) -> io::Result<glommio::net::TcpListener> {
    let socket = bind_socket(addr)?;
    socket.listen(LISTEN_BACKLOG)?;
    // SAFETY: the descriptor is a listening TCP socket we own; ownership moves to glommio.
    Ok(unsafe {
        <glommio::net::TcpListener as std::os::fd::FromRawFd>::from_raw_fd(
            std::os::fd::IntoRawFd::into_raw_fd(socket),
        )
    })
}

/// Accepts connections and serves each on this shard until the broker starts stopping; then
/// the listener closes at once, so new connections are refused instead of accepted and dropped
/// mid-drain.
pub async fn accept(
    broker: Rc<Broker>,
    connections: Rc<Connections>,
    listener: glommio::net::TcpListener,
) {
    let shard = broker.shard.clone();
    let accepting = async move {
        loop {
            match listener.accept().await {
                Ok(stream) => {
                    let admitted = match stream.peer_addr() {
                        Ok(peer) => connections.admission.admit(peer.ip()),
                        Err(_) => continue, // already gone
                    };
                    let Ok(admitted) = admitted else {
                        drop(stream); // refused: closed at once (logged by `admit`)
                        continue;
                    };
                    connections.opened();
                    let open = Open(connections.clone());
                    let broker = broker.clone();
                    let requests = connections.requests.clone();
                    glommio::spawn_local(async move {
                        connection::serve(broker, requests, stream).await;
                        drop((open, admitted));
                    })
                    .detach();
                }
                Err(e) => {
                    let e = io::Error::from(e);
                    if crate::util::fd_limit::is_exhausted(&e) {
                        tracing::warn!(error = %e, "accept failed: out of file descriptors: {}", crate::util::fd_limit::hint());
                    } else {
                        tracing::warn!(error = %e, "accept failed");
                    }
                    glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
    };
    let stopped = shard.stopped();
    futures::pin_mut!(accepting);
    futures::pin_mut!(stopped);
    // Returning drops the accept loop, and the listener it owns, as soon as the stop begins.
    futures::future::select(accepting, stopped).await;
}
