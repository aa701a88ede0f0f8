//! The listening side: every shard binds the same address with SO_REUSEPORT (the kernel
//! spreads connections over them), accepts until the broker stops, and keeps count of its open
//! connections so a stop can wait for them to drain.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

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
}

impl Connections {
    pub fn new(requests: Rc<RequestBudget>) -> Connections {
        Connections {
            open: Cell::new(0),
            closed: Notify::new(),
            requests,
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
/// a socket that is then closed would see a reset before the broker is up.
pub fn check_address(addr: SocketAddr) -> io::Result<SocketAddr> {
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
                    connections.opened();
                    let open = Open(connections.clone());
                    let broker = broker.clone();
                    let requests = connections.requests.clone();
                    glommio::spawn_local(async move {
                        connection::serve(broker, requests, stream).await;
                        drop(open);
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
