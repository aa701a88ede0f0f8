//! A minimal Kafka connection on glommio: 4-byte size-prefixed frames, correlation ids, and
//! pipelined requests whose responses are matched in order.
//!
//! A writer task sends queued frames (coalescing what is queued into one write); a reader task
//! reads response frames and hands each to the oldest waiting request after checking that its
//! correlation id is the one expected (Kafka answers in order on a connection). Any error, EOF,
//! mismatch or request timeout kills the connection: every waiting request fails at once, and
//! the socket is closed when the connection is dropped.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::channel::{mpsc, oneshot};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use glommio::net::TcpStream;
use glommio::Task;
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::utils::wait::with_timeout;

/// Largest response frame accepted (a fetch response is bounded by its max_bytes).
pub const MAX_RESPONSE_BYTES: usize = 256 << 20;
/// The read buffer grows by at least this much.
const READ_CHUNK_BYTES: usize = 128 << 10;
/// Frames queued together are coalesced into writes of about this size.
const WRITE_COALESCE_BYTES: usize = 256 << 10;

pub const CLIENT_ID: &str = "shardlog-loadgen";

struct Outgoing {
    frame: Bytes,
    /// Told when the frame has been written (for requests with no response: acks=0).
    written: Option<oneshot::Sender<()>>,
}

struct Pending {
    correlation_id: i32,
    api_key: ApiKey,
    tx: oneshot::Sender<Result<Bytes, String>>,
}

struct Inner {
    pending: RefCell<VecDeque<Pending>>,
    dead: RefCell<Option<String>>,
}

impl Inner {
    fn fail(&self, why: String) {
        if self.dead.borrow().is_none() {
            *self.dead.borrow_mut() = Some(why.clone());
        }
        let drained: Vec<Pending> = self.pending.borrow_mut().drain(..).collect();
        for p in drained {
            let _ = p.tx.send(Err(why.clone()));
        }
    }
}

/// A response on its way; await it with [`Connection::wait`].
pub struct ResponseFuture {
    rx: oneshot::Receiver<Result<Bytes, String>>,
    api_key: ApiKey,
    version: i16,
    pub sent_at: Instant,
    /// Bytes of the request frame.
    pub request_bytes: usize,
}

pub struct Connection {
    pub addr: SocketAddr,
    inner: Rc<Inner>,
    out: mpsc::UnboundedSender<Outgoing>,
    next_correlation_id: Cell<i32>,
    client_id: StrBytes,
    tasks: RefCell<Vec<Task<()>>>,
}

impl Connection {
    /// Connects to `addr` ("host:port"), within `timeout`.
    pub async fn connect(addr: &str, timeout: Duration) -> Result<Connection> {
        let sock = addr
            .to_socket_addrs()
            .with_context(|| format!("resolving {addr}"))?
            .next()
            .ok_or_else(|| anyhow!("{addr}: no address"))?;
        let stream = with_timeout(timeout, TcpStream::connect_timeout(sock, timeout))
            .await
            .ok_or_else(|| anyhow!("connecting to {addr}: timed out after {timeout:?}"))?
            .map_err(|e| anyhow!("connecting to {addr}: {e}"))?;
        stream.set_nodelay(true).ok();
        let (reader, writer) = stream.split();
        let inner = Rc::new(Inner {
            pending: RefCell::new(VecDeque::new()),
            dead: RefCell::new(None),
        });
        let (tx, rx) = mpsc::unbounded();
        let w = glommio::spawn_local(write_loop(inner.clone(), writer, rx));
        let r = glommio::spawn_local(read_loop(inner.clone(), reader));
        Ok(Connection {
            addr: sock,
            inner,
            out: tx,
            next_correlation_id: Cell::new(1),
            client_id: StrBytes::from_static_str(CLIENT_ID),
            tasks: RefCell::new(vec![w, r]),
        })
    }

    /// Why the connection is dead, if it is.
    pub fn dead(&self) -> Option<String> {
        self.inner.dead.borrow().clone()
    }

    /// Fails everything waiting and closes the socket.
    pub fn kill(&self, why: &str) {
        self.inner.fail(why.to_string());
        self.out.close_channel();
        self.tasks.borrow_mut().clear();
    }

    fn frame<R: Encodable>(&self, api_key: ApiKey, version: i16, req: &R) -> Result<(i32, Bytes)> {
        let correlation_id = self.next_correlation_id.get();
        self.next_correlation_id
            .set(correlation_id.wrapping_add(1).max(1));
        let header = RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.client_id.clone()));
        let mut buf = BytesMut::with_capacity(64 + req.compute_size(version).unwrap_or(0));
        buf.put_i32(0);
        header.encode(&mut buf, api_key.request_header_version(version))?;
        req.encode(&mut buf, version)
            .with_context(|| format!("encoding {api_key:?} v{version}"))?;
        let size = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        Ok((correlation_id, buf.freeze()))
    }

    /// Queues a request; its response comes through the returned future, in order.
    pub fn start<R: Encodable>(
        &self,
        api_key: ApiKey,
        version: i16,
        req: &R,
    ) -> Result<ResponseFuture> {
        if let Some(why) = self.dead() {
            bail!("connection to {} is dead: {why}", self.addr);
        }
        let (correlation_id, frame) = self.frame(api_key, version, req)?;
        let (tx, rx) = oneshot::channel();
        let request_bytes = frame.len();
        self.inner.pending.borrow_mut().push_back(Pending {
            correlation_id,
            api_key,
            tx,
        });
        self.out
            .unbounded_send(Outgoing {
                frame,
                written: None,
            })
            .map_err(|_| anyhow!("connection to {} is closed", self.addr))?;
        Ok(ResponseFuture {
            rx,
            api_key,
            version,
            sent_at: Instant::now(),
            request_bytes,
        })
    }

    /// Queues a request that gets no response (Produce with acks=0); the receiver completes when
    /// it has been written to the socket. Returns it and the frame size.
    pub fn send_only<R: Encodable>(
        &self,
        api_key: ApiKey,
        version: i16,
        req: &R,
    ) -> Result<(oneshot::Receiver<()>, usize)> {
        if let Some(why) = self.dead() {
            bail!("connection to {} is dead: {why}", self.addr);
        }
        let (_, frame) = self.frame(api_key, version, req)?;
        let len = frame.len();
        let (tx, rx) = oneshot::channel();
        self.out
            .unbounded_send(Outgoing {
                frame,
                written: Some(tx),
            })
            .map_err(|_| anyhow!("connection to {} is closed", self.addr))?;
        Ok((rx, len))
    }

    /// Waits for a response (killing the connection if it takes longer than `timeout`) and
    /// decodes it. Also returns the response frame size.
    pub async fn wait<T: Decodable>(
        &self,
        fut: ResponseFuture,
        timeout: Duration,
    ) -> Result<(T, usize)> {
        let api_key = fut.api_key;
        let version = fut.version;
        let body = match with_timeout(timeout, fut.rx).await {
            None => {
                let why = format!("{api_key:?} request timed out after {timeout:?}");
                self.kill(&why);
                bail!("{}: {why}", self.addr);
            }
            Some(Err(_)) => bail!("{}: connection closed", self.addr),
            Some(Ok(Err(why))) => bail!("{}: {why}", self.addr),
            Some(Ok(Ok(body))) => body,
        };
        let len = body.len() + 4;
        let decoded = decode_response::<T>(body, api_key, version).with_context(|| {
            format!(
                "decoding {api_key:?} v{version} response from {}",
                self.addr
            )
        });
        match decoded {
            Ok(v) => Ok((v, len)),
            Err(e) => {
                self.kill("undecodable response");
                Err(e)
            }
        }
    }

    /// `start` then `wait`.
    pub async fn request<R: Encodable, T: Decodable>(
        &self,
        api_key: ApiKey,
        version: i16,
        req: &R,
        timeout: Duration,
    ) -> Result<T> {
        let fut = self.start(api_key, version, req)?;
        Ok(self.wait::<T>(fut, timeout).await?.0)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.inner.fail("connection dropped".into());
    }
}

/// Decodes a response frame body (header, then the message).
pub fn decode_response<T: Decodable>(mut body: Bytes, api_key: ApiKey, version: i16) -> Result<T> {
    ResponseHeader::decode(&mut body, api_key.response_header_version(version))?;
    let v = T::decode(&mut body, version)?;
    Ok(v)
}

async fn write_loop(
    inner: Rc<Inner>,
    mut writer: futures::io::WriteHalf<TcpStream>,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
) {
    let mut notify = Vec::new();
    while let Some(first) = rx.next().await {
        notify.clear();
        notify.extend(first.written);
        let mut frame = first.frame;
        // Coalesce whatever else is queued already.
        if frame.len() < WRITE_COALESCE_BYTES {
            let mut more = None;
            if let Ok(next) = rx.try_recv() {
                more = Some(next);
            }
            if let Some(next) = more {
                let mut buf = BytesMut::with_capacity(
                    WRITE_COALESCE_BYTES.max(frame.len() + next.frame.len()),
                );
                buf.put_slice(&frame);
                buf.put_slice(&next.frame);
                notify.extend(next.written);
                while buf.len() < WRITE_COALESCE_BYTES {
                    match rx.try_recv() {
                        Ok(n) => {
                            buf.put_slice(&n.frame);
                            notify.extend(n.written);
                        }
                        _ => break,
                    }
                }
                frame = buf.freeze();
            }
        }
        if let Err(e) = writer.write_all(&frame).await {
            inner.fail(format!("write failed: {e}"));
            return;
        }
        for tx in notify.drain(..) {
            let _ = tx.send(());
        }
    }
}

async fn read_loop(inner: Rc<Inner>, mut reader: futures::io::ReadHalf<TcpStream>) {
    // `buf[..filled]` holds bytes read; `buf[filled..]` is zeroed room for the next reads,
    // added only when none is left, so each byte is zeroed once however large the response.
    let mut buf = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut filled = 0usize;
    let mut missing = 0usize;
    loop {
        while filled >= 4 {
            let size = i32::from_be_bytes(buf[..4].try_into().unwrap());
            if size < 4 || size as usize > MAX_RESPONSE_BYTES {
                inner.fail(format!("bad response frame size {size}"));
                return;
            }
            let size = size as usize;
            if filled < 4 + size {
                missing = 4 + size - filled;
                break;
            }
            buf.advance(4);
            let body = buf.split_to(size).freeze();
            filled -= 4 + size;
            let correlation_id = i32::from_be_bytes(body[..4].try_into().unwrap());
            let next = inner.pending.borrow_mut().pop_front();
            match next {
                None => {
                    inner.fail(format!(
                        "response with correlation id {correlation_id} but no request waiting"
                    ));
                    return;
                }
                Some(p) if p.correlation_id != correlation_id => {
                    inner.fail(format!(
                        "{:?} response out of order: correlation id {correlation_id}, expected {}",
                        p.api_key, p.correlation_id
                    ));
                    let _ = p.tx.send(Err("response out of order".into()));
                    return;
                }
                Some(p) => {
                    let _ = p.tx.send(Ok(body));
                }
            }
        }
        if buf.len() == filled {
            buf.resize(filled + missing.max(READ_CHUNK_BYTES), 0);
        }
        missing = 0;
        match reader.read(&mut buf[filled..]).await {
            Ok(0) => {
                inner.fail("connection closed by the broker".into());
                return;
            }
            Ok(n) => filled += n,
            Err(e) => {
                inner.fail(format!("read failed: {e}"));
                return;
            }
        }
    }
}
