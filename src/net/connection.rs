//! One client connection, served on the shard that accepted it for its whole life.
//!
//! The reader reads frames and dispatches them in order: the part of a request that must keep
//! arrival order (queueing appends on the owning shards) runs before the next frame is read;
//! the rest runs as a task. The writer awaits those tasks in request order and writes their
//! responses, so a client may pipeline requests and still gets responses in order.

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::rc::Rc;

use bytes::{Buf, Bytes, BytesMut};
use futures::{AsyncReadExt, AsyncWriteExt};
use glommio::channels::local_channel;
use glommio::net::TcpStream;

use super::frame;
use crate::api::{self, Broker};

/// Requests one connection may have in flight; the reader waits past this. Kafka clients keep
/// few (librdkafka: 5 produce requests per broker by default); the bound caps what one
/// connection can queue on the shards.
pub const CONNECTION_REQUESTS_IN_FLIGHT_MAX: usize = 64;
/// The read buffer grows by at least this much at a time.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Serves one client until it disconnects or the broker stops.
pub async fn serve(broker: Rc<Broker>, stream: TcpStream) {
    let shard = broker.shard.clone();
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    // As Kafka reports a member's host (DescribeGroups): "/" and the IP.
    let client_host: Rc<str> = stream
        .peer_addr()
        .map(|a| format!("/{}", a.ip()))
        .unwrap_or_default()
        .into();
    let _ = stream.set_nodelay(true);
    let fd = stream.as_raw_fd();
    let (mut reader, mut writer) = stream.split();
    let (tx, rx) = local_channel::new_bounded::<api::ReplyTask>(CONNECTION_REQUESTS_IN_FLIGHT_MAX);

    let write_loop = async move {
        while let Some(handle) = rx.recv().await {
            let response = match handle.await {
                Some(api::Reply::Frame(frame)) => frame,
                Some(api::Reply::Nothing) => continue,
                Some(api::Reply::Close) | None => break,
            };
            if let Err(e) = write_parts(fd, &mut writer, &response).await {
                tracing::debug!(error = %e, "write to client failed");
                return;
            }
        }
        let _ = writer.close().await;
    };
    let write_task = glommio::spawn_local(write_loop);

    let max_frame = shard.config.socket_request_max_bytes;
    let mut buf = BytesMut::with_capacity(READ_CHUNK_BYTES);
    // Bytes still to come of a frame whose size prefix has been read.
    let mut missing = 0usize;
    'read: loop {
        // Take every complete frame in the buffer.
        loop {
            let size = match frame::frame_size(&buf, max_frame) {
                Ok(Some(size)) => size as usize,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "closing connection");
                    break 'read;
                }
            };
            if buf.len() < frame::SIZE_PREFIX_BYTES + size {
                missing = frame::SIZE_PREFIX_BYTES + size - buf.len();
                break;
            }
            buf.advance(frame::SIZE_PREFIX_BYTES);
            let body = buf.split_to(size).freeze();
            match api::dispatch(&broker, &client_host, body).await {
                Ok(task) => {
                    if tx.send(task).await.is_err() {
                        break 'read;
                    }
                }
                Err(why) => {
                    tracing::warn!(%peer, reason = %why, "closing connection");
                    break 'read;
                }
            }
        }
        if shard.stopping() {
            break;
        }
        // Read room for the rest of the current frame (or a chunk): zero-filling only what
        // the next read may fill keeps the cost per byte constant for large frames.
        let start = buf.len();
        buf.resize(start + missing.max(READ_CHUNK_BYTES), 0);
        missing = 0;
        let read = {
            let stop = shard.stopped();
            let read = reader.read(&mut buf[start..]);
            futures::pin_mut!(stop);
            match futures::future::select(read, stop).await {
                futures::future::Either::Left((r, _)) => r,
                futures::future::Either::Right(_) => break,
            }
        };
        match read {
            Ok(0) => break,
            Ok(n) => buf.truncate(start + n),
            Err(e) => {
                tracing::debug!(%peer, error = %e, "read from client failed");
                break;
            }
        }
    }
    drop(tx);
    write_task.await;
}

/// The most parts one `sendmsg` takes (Linux's UIO_MAXIOV is 1024).
const WRITE_PARTS_MAX: usize = 64;

/// Writes a response's parts in order, as few system calls as the socket allows: a vectored
/// send of the parts while the socket takes them without waiting, and when it is full, one
/// write through glommio's stream, which waits for room.
async fn write_parts(
    fd: RawFd,
    writer: &mut (impl futures::AsyncWrite + Unpin),
    parts: &[Bytes],
) -> io::Result<()> {
    if let [one] = parts {
        return writer.write_all(one).await;
    }
    // SAFETY: `fd` is the connection's socket, open as long as `writer` (its write half) is,
    // which outlives this call.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let socket = socket2::SockRef::from(&fd);
    let (mut part, mut at) = (0usize, 0usize);
    while part < parts.len() {
        let slices: Vec<IoSlice> = std::iter::once(&parts[part][at..])
            .chain(parts[part + 1..].iter().map(|p| &p[..]))
            .take(WRITE_PARTS_MAX)
            .map(IoSlice::new)
            .collect();
        let sent = match socket
            .send_vectored_with_flags(&slices, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
        {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                match writer.write(&parts[part][at..]).await? {
                    0 => return Err(io::ErrorKind::WriteZero.into()),
                    n => n,
                }
            }
            Err(e) => return Err(e),
        };
        // Step past what went.
        let mut left = sent;
        while left > 0 {
            let rest = parts[part].len() - at;
            if left < rest {
                at += left;
                left = 0;
            } else {
                left -= rest;
                part += 1;
                at = 0;
            }
        }
    }
    Ok(())
}
