//! One client connection, served on the shard that accepted it for its whole life.
//!
//! The reader reads frames and dispatches them in order: the part of a request that must keep
//! arrival order (queueing appends on the owning shards) runs before the next frame is read;
//! the rest runs as a task. The writer awaits those tasks in request order and writes their
//! responses, so a client may pipeline requests and still gets responses in order.

use std::cell::Cell;
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use futures::{AsyncReadExt, AsyncWriteExt};
use glommio::channels::local_channel;
use glommio::net::TcpStream;

use super::frame;
use super::request_budget::{Held, RequestBudget};
use crate::api::{self, Broker};
use crate::util::blocking;
use crate::util::frame_pool::FrameBuf;
use crate::util::metrics;
use crate::util::scatter::Part;

/// Requests one connection may have in flight; the reader waits past this. Kafka clients keep
/// few (librdkafka: 5 produce requests per broker by default); the bound caps what one
/// connection can queue on the shards.
pub const CONNECTION_REQUESTS_IN_FLIGHT_MAX: usize = 64;
/// The read buffer grows by at least this much at a time (by the rest of a frame when larger):
/// room for a 16 KiB produce batch and the requests around it, and what an idle connection
/// holds (10,000 connections: 160 MiB).
const READ_CHUNK_BYTES: usize = 16 * 1024;

/// Serves one client until it disconnects or the broker stops.
pub async fn serve(broker: Rc<Broker>, requests: Rc<RequestBudget>, stream: TcpStream) {
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
    let socket = match Socket::of(&stream) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%peer, error = %e, "cannot set up the connection's socket; closing it");
            return;
        }
    };
    let activity = Rc::new(Activity::new());
    let watchdog = glommio::spawn_local(watch(
        activity.clone(),
        socket.0,
        Limits::of(&shard.config),
        peer.clone(),
    ));
    let (mut reader, mut writer) = stream.split();
    let (tx, rx) = local_channel::new_bounded::<InFlight>(CONNECTION_REQUESTS_IN_FLIGHT_MAX);
    metrics::connection_accepted();

    let written = activity.clone();
    let write_loop = async move {
        let activity = written;
        while let Some(request) = rx.recv().await {
            let answer = request.task.await;
            // The request is answered: what its response refers to is small or shared (record
            // bytes in the tail cache or in files).
            drop(request.held);
            let response = match answer {
                Some(api::Reply::Frame(frame)) => frame,
                Some(api::Reply::Nothing) => {
                    request.meta.answered(0);
                    activity.answered();
                    continue;
                }
                Some(api::Reply::Close) | None => break,
            };
            let sent = write_parts(&socket, &mut writer, &response).await;
            request.meta.answered(response.iter().map(Part::len).sum());
            activity.answered();
            if let Err(e) = sent {
                tracing::debug!(error = %e, "write to client failed");
                return;
            }
        }
        let _ = writer.close().await;
    };
    let write_task = glommio::spawn_local(write_loop);

    let max_frame = shard.config.socket_request_max_bytes;
    // `buf[..filled]` holds bytes read from the socket; `buf[filled..]` is room the next reads
    // fill (initialized: zeroed when added, only when none is left). Frames larger than
    // `READ_CHUNK_BYTES` go to a pooled buffer of their own (`large`), never zeroed again.
    let mut buf = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut filled = 0usize;
    // Bytes still to come of a frame whose size prefix has been read.
    let mut missing = 0usize;
    // The budget taken for the frame at the front of the buffer, once its size is known.
    let mut held: Option<Held> = None;
    // A frame larger than `READ_CHUNK_BYTES` being read into a buffer of its own: the buffer,
    // the bytes of the frame's body in it, and the body's size.
    let mut large: Option<(FrameBuf, usize, usize)> = None;
    let handover = Handover {
        broker: &broker,
        client_host: &client_host,
        peer: &peer,
        activity: &activity,
        tx: &tx,
    };
    'read: loop {
        // Take every complete frame in the buffer.
        loop {
            let size = match frame::frame_size(&buf[..filled], max_frame) {
                Ok(Some(size)) => size as usize,
                Ok(None) => break,
                Err(e) => {
                    if let Some(suppressed) = bad_input_warning() {
                        tracing::warn!(%peer, error = %e, suppressed, "closing connection");
                    }
                    break 'read;
                }
            };
            if held.is_none() {
                // Before the rest of the frame is read: a spent budget stops the reading here
                // (time the client is not to blame for: no read deadline meanwhile).
                activity.frame_started.set(None);
                let take = requests.take(frame::SIZE_PREFIX_BYTES + size);
                let stop = shard.stopped();
                futures::pin_mut!(take);
                futures::pin_mut!(stop);
                match futures::future::select(take, stop).await {
                    futures::future::Either::Left((h, _)) => held = Some(h),
                    futures::future::Either::Right(_) => break 'read,
                }
            }
            if filled < frame::SIZE_PREFIX_BYTES + size {
                if size > READ_CHUNK_BYTES {
                    // Read the rest straight into a pooled buffer of its own.
                    let mut own = FrameBuf::take(size);
                    let got = filled - frame::SIZE_PREFIX_BYTES;
                    own.bytes_mut()[..got].copy_from_slice(&buf[frame::SIZE_PREFIX_BYTES..filled]);
                    filled = 0;
                    large = Some((own, got, size));
                } else {
                    missing = frame::SIZE_PREFIX_BYTES + size - filled;
                }
                break;
            }
            buf.advance(frame::SIZE_PREFIX_BYTES);
            let body = buf.split_to(size).freeze();
            filled -= frame::SIZE_PREFIX_BYTES + size;
            if !handover.hand_over(body, held.take()).await {
                break 'read;
            }
        }
        if shard.stopping() {
            break;
        }
        // A frame partly read must be complete within the read deadline (`watch`).
        if filled == 0 && large.is_none() {
            activity.frame_started.set(None);
        } else if activity.frame_started.get().is_none() {
            activity.frame_started.set(Some(std::time::Instant::now()));
        }
        // Room for the rest of the current frame (or a chunk), when none is left.
        if large.is_none() && buf.len() == filled {
            buf.resize(filled + missing.max(READ_CHUNK_BYTES), 0);
        }
        missing = 0;
        let read = {
            let stop = shard.stopped();
            let room = match &mut large {
                Some((own, got, size)) => &mut own.bytes_mut()[*got..*size],
                None => &mut buf[filled..],
            };
            let read = reader.read(room);
            futures::pin_mut!(stop);
            match futures::future::select(read, stop).await {
                futures::future::Either::Left((r, _)) => r,
                futures::future::Either::Right(_) => break,
            }
        };
        match read {
            Ok(0) => break,
            Ok(n) => {
                activity.last.set(std::time::Instant::now());
                match &mut large {
                    Some((_, got, size)) => {
                        *got += n;
                        if *got == *size {
                            let Some((own, _, size)) = large.take() else {
                                break;
                            };
                            let body = own.freeze(size);
                            if !handover.hand_over(body, held.take()).await {
                                break;
                            }
                        }
                    }
                    None => filled += n,
                }
            }
            Err(e) => {
                tracing::debug!(%peer, error = %e, "read from client failed");
                break;
            }
        }
    }
    drop(tx);
    write_task.await;
    drop(watchdog);
    metrics::connection_closed();
}

/// A request read and not answered yet, in the writer's queue.
struct InFlight {
    task: api::ReplyTask,
    /// Its bytes in the shard's request budget.
    held: Held,
    meta: RequestMeta,
}

/// What the metrics say of a request once it is answered.
struct RequestMeta {
    api_key: i16,
    version: i16,
    frame_bytes: usize,
    read_at: Instant,
}

impl RequestMeta {
    /// `body`: a request frame without its size prefix (its header is checked by `dispatch`;
    /// a frame too short for one is never answered).
    fn of(body: &[u8]) -> RequestMeta {
        let field = |at: usize| {
            body.get(at..at + 2)
                .map_or(-1, |b| i16::from_be_bytes([b[0], b[1]]))
        };
        RequestMeta {
            api_key: field(0),
            version: field(2),
            frame_bytes: frame::SIZE_PREFIX_BYTES + body.len(),
            read_at: Instant::now(),
        }
    }

    fn answered(&self, response_bytes: usize) {
        let elapsed = u64::try_from(self.read_at.elapsed().as_micros()).unwrap_or(u64::MAX);
        metrics::request_answered(
            self.api_key,
            self.version,
            self.frame_bytes,
            response_bytes,
            elapsed,
        );
    }
}

/// What a connection's watchdog (`watch`) looks at.
struct Activity {
    /// When bytes were last read or a response last written.
    last: Cell<Instant>,
    /// Requests read and not answered yet.
    in_flight: Cell<usize>,
    /// Since when the frame being read has been arriving: `None` while no frame is partly
    /// read, or while the connection waits for its shard's request budget.
    frame_started: Cell<Option<Instant>>,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            last: Cell::new(Instant::now()),
            in_flight: Cell::new(0),
            frame_started: Cell::new(None),
        }
    }

    fn answered(&self) {
        self.in_flight.set(self.in_flight.get().saturating_sub(1));
        self.last.set(Instant::now());
    }
}

/// A connection's time limits.
#[derive(Clone, Copy)]
struct Limits {
    /// `connections.max.idle.ms`: no request in flight and nothing read for this long.
    idle: Duration,
    /// `shardlog.request.read.timeout.ms`: a request's frame, once it starts arriving, must
    /// be whole within this (a client trickling bytes, slowloris, holds the connection and
    /// its request budget otherwise).
    read: Duration,
}

impl Limits {
    fn of(config: &crate::config::Config) -> Limits {
        Limits {
            idle: Duration::from_millis(config.connections_max_idle_ms),
            read: Duration::from_millis(config.request_read_timeout_ms),
        }
    }
}

/// Closes the connection (shuts its socket down, which ends the reader's read) when it has
/// been idle for `limits.idle`, or a frame has been arriving for longer than `limits.read`.
/// Runs beside the connection and is dropped with it; sleeps until the next deadline, so an
/// idle connection costs one timer. A connection that goes idle while this sleeps for a
/// request in flight is closed within twice the idle limit.
async fn watch(activity: Rc<Activity>, fd: std::os::fd::RawFd, limits: Limits, peer: String) {
    loop {
        let now = Instant::now();
        let idle_at = if activity.in_flight.get() == 0 {
            activity.last.get() + limits.idle
        } else {
            now + limits.idle
        };
        let read_by = activity.frame_started.get().map(|t| t + limits.read);
        if read_by.is_some_and(|t| t <= now) {
            if let Some(suppressed) = bad_input_warning() {
                tracing::warn!(%peer, limit_ms = limits.read.as_millis() as u64, suppressed, "closing connection: a request did not arrive whole within shardlog.request.read.timeout.ms");
            }
            break;
        }
        if idle_at <= now {
            tracing::debug!(%peer, limit_ms = limits.idle.as_millis() as u64, "closing idle connection (connections.max.idle.ms)");
            break;
        }
        let next = read_by.map_or(idle_at, |t| t.min(idle_at));
        glommio::timer::sleep(next - now).await;
    }
    // SAFETY: the descriptor is the connection's socket, open while the connection (which
    // drops this task before its stream) lives. shutdown wakes its pending read with EOF.
    unsafe {
        libc::shutdown(fd, libc::SHUT_RDWR);
    }
}

/// The most parts one `sendmsg` takes (Linux's UIO_MAXIOV is 1024).
const WRITE_PARTS_MAX: usize = 64;

/// Writes a response's parts in order: runs of parts in memory with vectored sends while the
/// socket takes them without waiting (one write through glommio's stream, which waits for
/// room, when it is full), and ranges of files with `sendfile` (see `send_file_range`).
async fn write_parts(
    socket: &Socket,
    writer: &mut (impl futures::AsyncWrite + Unpin),
    parts: &[Part],
) -> io::Result<()> {
    if let [Part::Memory(one)] = parts {
        return writer.write_all(one).await;
    }
    let (mut part, mut at) = (0usize, 0usize);
    while part < parts.len() {
        if let Part::File { file, pos, len } = &parts[part] {
            send_file_range(socket, writer, file, *pos, *len).await?;
            part += 1;
            continue;
        }
        let slices: Vec<IoSlice> = parts[part..]
            .iter()
            .map_while(|p| match p {
                Part::Memory(b) => Some(&b[..]),
                Part::File { .. } => None,
            })
            .enumerate()
            .map(|(i, b)| if i == 0 { &b[at..] } else { b })
            .take(WRITE_PARTS_MAX)
            .map(IoSlice::new)
            .collect();
        let sent = match socket2::SockRef::from(&socket.borrowed())
            .send_vectored_with_flags(&slices, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
        {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // The run starts with a part in memory (file parts went above).
                let Part::Memory(b) = &parts[part] else {
                    continue;
                };
                match writer.write(&b[at..]).await? {
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

/// The connection's socket for the sends glommio does not make, in non-blocking mode so that a
/// `sendfile` to a full socket returns instead of holding a pool thread (glommio's own reads
/// and writes use MSG_DONTWAIT and poll for readiness, so they do not mind). The descriptor is
/// the stream's, valid while the stream lives; a send on the blocking pool takes a duplicate
/// (`owned`) for its run, so that it can never reach another connection's socket if this one
/// closes meanwhile (a closed descriptor's number is reused). Only those sends hold a second
/// descriptor: a connection does not count twice against the open-files limit.
struct Socket(std::os::fd::RawFd);

impl Socket {
    fn of(stream: &impl AsRawFd) -> io::Result<Socket> {
        let fd = stream.as_raw_fd();
        // SAFETY: the stream's descriptor is open while `stream` is borrowed.
        socket2::SockRef::from(&unsafe { BorrowedFd::borrow_raw(fd) }).set_nonblocking(true)?;
        Ok(Socket(fd))
    }

    fn borrowed(&self) -> BorrowedFd<'_> {
        // SAFETY: `Socket` lives inside the connection, no longer than its stream.
        unsafe { BorrowedFd::borrow_raw(self.0) }
    }

    fn owned(&self) -> io::Result<OwnedFd> {
        self.borrowed().try_clone_to_owned()
    }
}

/// Bytes a `sendfile` is asked for at once.
const SENDFILE_BYTES_MAX: u32 = 1 << 20;

/// What one turn of `send_file_range` on the blocking pool did.
enum FileSend {
    /// Bytes went from the file to the socket.
    Sent(usize),
    /// The socket is full: the next bytes of the range, read, to be written through glommio
    /// (which waits for room).
    Full(Vec<u8>),
}

/// What the reader hands each request's body to: `dispatch`, then the writer's queue.
struct Handover<'a> {
    broker: &'a Rc<Broker>,
    client_host: &'a Rc<str>,
    peer: &'a str,
    activity: &'a Activity,
    tx: &'a local_channel::LocalSender<InFlight>,
}

impl Handover<'_> {
    /// Dispatches a request's body and queues its answer for the writer; `false` when the
    /// connection is to close (a request it cannot take, or the writer gone).
    async fn hand_over(&self, body: bytes::Bytes, held: Option<Held>) -> bool {
        self.activity.frame_started.set(None);
        let meta = RequestMeta::of(&body);
        match api::dispatch(self.broker, self.client_host, body).await {
            Ok(task) => {
                // Taken before the frame was complete.
                let Some(held) = held else { return false };
                self.activity
                    .in_flight
                    .set(self.activity.in_flight.get() + 1);
                self.tx.send(InFlight { task, held, meta }).await.is_ok()
            }
            Err(why) => {
                if let Some(suppressed) = bad_input_warning() {
                    let peer = self.peer;
                    tracing::warn!(%peer, reason = %why, suppressed, "closing connection");
                }
                false
            }
        }
    }
}

/// Bytes read for a write through glommio when the socket is full: one turn of waiting costs
/// one small copy.
const FULL_SOCKET_READ_BYTES: usize = 16 * 1024;

/// Sends `len` bytes of `file` from `pos` with `sendfile` (from the page cache to the socket,
/// no copy in user space). It runs on the blocking pool, as a read of a page not in memory
/// waits for the disk; the socket is non-blocking, so a full socket does not hold the thread:
/// the bytes next in line are then read and written through glommio's stream, which waits
/// for room without blocking the shard.
async fn send_file_range(
    socket: &Socket,
    writer: &mut (impl futures::AsyncWrite + Unpin),
    file: &Arc<std::fs::File>,
    pos: u64,
    len: u32,
) -> io::Result<()> {
    let end = pos + u64::from(len);
    let mut pos = pos;
    let sock = Arc::new(socket.owned()?);
    while pos < end {
        let (sock, f) = (sock.clone(), file.clone());
        let want = (end - pos).min(u64::from(SENDFILE_BYTES_MAX)) as usize;
        let turn = blocking::run(move || -> io::Result<FileSend> {
            let mut off = pos as libc::off_t;
            loop {
                // SAFETY: both descriptors are open (held by the Arcs) and `off` is ours.
                let n = unsafe { libc::sendfile(sock.as_raw_fd(), f.as_raw_fd(), &mut off, want) };
                if n >= 0 {
                    return Ok(FileSend::Sent(n as usize));
                }
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => {
                        let mut buf = vec![0u8; want.min(FULL_SOCKET_READ_BYTES)];
                        f.read_exact_at(&mut buf, pos)?;
                        return Ok(FileSend::Full(buf));
                    }
                    _ => return Err(e),
                }
            }
        })
        .await?;
        pos += match turn {
            FileSend::Sent(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "a segment file ended before the range a fetch read",
                ))
            }
            FileSend::Sent(n) => n as u64,
            FileSend::Full(buf) => match writer.write(&buf).await? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => n as u64,
            },
        };
    }
    Ok(())
}

/// Warnings about connections closed for what their client sent are logged at most once a
/// second per shard, with how many were left out since the last one: a client sending garbage
/// in a loop must not fill the disk with log lines (`results/2026-11-30-soak`: 50 a second).
const BAD_INPUT_WARN_EVERY: Duration = Duration::from_secs(1);

thread_local! {
    static BAD_INPUT_WARNED: Cell<(Option<Instant>, u64)> = const { Cell::new((None, 0)) };
}

/// `Some(left out since the last warning)` when a warning may be logged now.
fn bad_input_warning() -> Option<u64> {
    BAD_INPUT_WARNED.with(|w| {
        let (last, suppressed) = w.get();
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < BAD_INPUT_WARN_EVERY) {
            w.set((last, suppressed + 1));
            None
        } else {
            w.set((Some(now), 0));
            Some(suppressed)
        }
    })
}
