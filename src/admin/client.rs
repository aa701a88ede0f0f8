//! A small blocking Kafka client for the admin commands: one `std::net::TcpStream` per broker,
//! ApiVersions on connect, and one request at a time, encoded and decoded with kafka-protocol.
//!
//! It speaks to any broker (Shardlog or Apache Kafka): each call names the version range the
//! command can use and the highest version both sides know is sent. What it reads from the
//! wire is bounded by [`RESPONSE_BYTES_MAX`].

use std::collections::HashMap;
use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse,
    RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

/// Largest response frame read. Kafka's own admin client reads whatever size a broker
/// announces; a Metadata response for 100 000 partitions is about 10 MB, so 100 MiB (Kafka's
/// `socket.request.max.bytes` default) leaves room without letting a bad size prefix make the
/// tool allocate gigabytes.
pub const RESPONSE_BYTES_MAX: u32 = 100 * 1024 * 1024;
/// How long a TCP connect to one broker may take.
pub const CONNECT_TIMEOUT_MS: u64 = 10_000;
/// How long one response may take: long enough for CreateTopics and DeleteTopics, which a
/// broker answers once done (they are sent with [`OPERATION_TIMEOUT_MS`]).
pub const RESPONSE_TIMEOUT_MS: u64 = 60_000;
/// The `timeout_ms` put in CreateTopics, DeleteTopics and CreatePartitions: the admin client's
/// default in Kafka's tools. It is below [`RESPONSE_TIMEOUT_MS`], so a slow broker answers
/// REQUEST_TIMED_OUT before the tool gives up on the connection.
pub const OPERATION_TIMEOUT_MS: i32 = 30_000;
const _: () = assert!((OPERATION_TIMEOUT_MS as u64) < RESPONSE_TIMEOUT_MS);

/// The client id the tools send.
const CLIENT_ID: &str = "shardlog-admin";

/// What went wrong talking to a broker.
#[derive(Debug)]
pub enum AdminError {
    /// Connecting, writing or reading failed.
    Io { addr: String, error: std::io::Error },
    /// The broker sent something this client cannot use (bad frame, undecodable body).
    Protocol(String),
    /// No version of an API both sides know.
    Unsupported { api: ApiKey, wanted: (i16, i16) },
    /// The broker answered with an error code (and maybe a message).
    Kafka {
        error: ResponseError,
        message: Option<String>,
    },
    /// A problem found by the tool itself (an unknown topic, a bad argument value).
    Invalid(String),
}

impl AdminError {
    /// The error for a response's error code, `None` for 0.
    pub fn from_code(code: i16, message: Option<&StrBytes>) -> Option<AdminError> {
        ResponseError::try_from_code(code).map(|error| AdminError::Kafka {
            error,
            message: message.map(|m| m.to_string()).filter(|m| !m.is_empty()),
        })
    }

    /// `Err` for a non-zero error code.
    pub fn check(code: i16, message: Option<&StrBytes>) -> Result<(), AdminError> {
        match AdminError::from_code(code, message) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminError::Io { addr, error } => write!(f, "{addr}: {error}"),
            AdminError::Protocol(m) => write!(f, "protocol error: {m}"),
            AdminError::Unsupported { api, wanted } => write!(
                f,
                "the broker does not support {api:?} versions {} to {}",
                wanted.0, wanted.1
            ),
            // The broker's message when it sent one (as Kafka's tools print it), else the
            // error's standard description.
            AdminError::Kafka {
                message: Some(m), ..
            } => f.write_str(m),
            AdminError::Kafka { error, .. } => write!(f, "{error}"),
            AdminError::Invalid(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for AdminError {}

/// One connection to one broker, with the API versions it announced.
struct Connection {
    addr: String,
    stream: TcpStream,
    versions: HashMap<i16, (i16, i16)>,
    next_correlation_id: i32,
}

impl Connection {
    fn open(addr: &str) -> Result<Connection, AdminError> {
        let io = |error| AdminError::Io {
            addr: addr.to_string(),
            error,
        };
        let mut last = None;
        let mut stream = None;
        for sock in addr.to_socket_addrs().map_err(io)? {
            match TcpStream::connect_timeout(&sock, Duration::from_millis(CONNECT_TIMEOUT_MS)) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let stream = match stream {
            Some(s) => s,
            None => {
                return Err(io(last.unwrap_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::NotFound, "no address")
                })))
            }
        };
        stream
            .set_read_timeout(Some(Duration::from_millis(RESPONSE_TIMEOUT_MS)))
            .map_err(io)?;
        stream
            .set_write_timeout(Some(Duration::from_millis(RESPONSE_TIMEOUT_MS)))
            .map_err(io)?;
        let _ = stream.set_nodelay(true);
        let mut conn = Connection {
            addr: addr.to_string(),
            stream,
            versions: HashMap::new(),
            next_correlation_id: 1,
        };
        // ApiVersions v0 is understood by every broker since 0.10 (and its response header is
        // always v0), so it needs no negotiation of its own.
        let resp: ApiVersionsResponse = conn.send(&ApiVersionsRequest::default(), 0)?;
        AdminError::check(resp.error_code, None)?;
        conn.versions = resp
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Ok(conn)
    }

    /// The highest version in `wanted` that the broker serves.
    fn version(&self, api: ApiKey, wanted: (i16, i16)) -> Result<i16, AdminError> {
        let (min, max) = self
            .versions
            .get(&(api as i16))
            .copied()
            .ok_or(AdminError::Unsupported { api, wanted })?;
        let v = max.min(wanted.1);
        if v < min.max(wanted.0) {
            return Err(AdminError::Unsupported { api, wanted });
        }
        Ok(v)
    }

    fn send<R: Request>(&mut self, req: &R, version: i16) -> Result<R::Response, AdminError> {
        let addr = self.addr.clone();
        let io = |error| AdminError::Io {
            addr: addr.clone(),
            error,
        };
        let api = ApiKey::try_from(R::KEY)
            .map_err(|_| AdminError::Protocol(format!("unknown API key {}", R::KEY)))?;
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let mut body = BytesMut::with_capacity(256);
        body.extend_from_slice(&[0; 4]);
        let encode = |e: anyhow::Error| AdminError::Protocol(format!("encoding {api:?}: {e}"));
        RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)))
            .encode(&mut body, R::header_version(version))
            .map_err(encode)?;
        req.encode(&mut body, version).map_err(encode)?;
        let size = u32::try_from(body.len() - 4)
            .map_err(|_| AdminError::Protocol("request too large".into()))?;
        body[..4].copy_from_slice(&size.to_be_bytes());
        self.stream.write_all(&body).map_err(io)?;

        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).map_err(io)?;
        let size = u32::from_be_bytes(size);
        if size > RESPONSE_BYTES_MAX {
            return Err(AdminError::Protocol(format!(
                "{api:?} response of {size} bytes is larger than {RESPONSE_BYTES_MAX}"
            )));
        }
        let mut buf = vec![0u8; size as usize];
        self.stream.read_exact(&mut buf).map_err(io)?;
        let mut buf = Bytes::from(buf);
        let decode = |e: anyhow::Error| AdminError::Protocol(format!("decoding {api:?}: {e}"));
        let header = ResponseHeader::decode(&mut buf, R::Response::header_version(version))
            .map_err(decode)?;
        if header.correlation_id != correlation_id {
            return Err(AdminError::Protocol(format!(
                "{api:?} response has correlation id {}, expected {correlation_id}",
                header.correlation_id
            )));
        }
        R::Response::decode(&mut buf, version).map_err(decode)
    }
}

/// Where a request goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The broker the client bootstrapped from (any broker forwards admin requests).
    Any,
    /// A broker by its node id, as Metadata named it.
    Node(i32),
}

/// Connections to the brokers of one cluster, opened as needed.
pub struct Client {
    bootstrap_addr: String,
    connections: HashMap<String, Connection>,
    /// Node id to `host:port`, from the last Metadata response.
    brokers: HashMap<i32, String>,
}

impl Client {
    /// Connects to the first reachable address of a comma-separated `host:port` list.
    pub fn connect(bootstrap: &str) -> Result<Client, AdminError> {
        let mut last = None;
        for addr in bootstrap
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            match Connection::open(addr) {
                Ok(conn) => {
                    let mut connections = HashMap::new();
                    connections.insert(addr.to_string(), conn);
                    return Ok(Client {
                        bootstrap_addr: addr.to_string(),
                        connections,
                        brokers: HashMap::new(),
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| AdminError::Invalid("--bootstrap-server is empty".into())))
    }

    /// Remembers where a broker is (from FindCoordinator) without a Metadata round trip.
    pub fn learn_broker(&mut self, node_id: i32, host: &str, port: i32) {
        self.brokers.insert(node_id, format!("{host}:{port}"));
    }

    fn addr_of(&mut self, target: Target) -> Result<String, AdminError> {
        match target {
            Target::Any => Ok(self.bootstrap_addr.clone()),
            Target::Node(id) => {
                if !self.brokers.contains_key(&id) {
                    self.metadata(Some(Vec::new()))?;
                }
                self.brokers.get(&id).cloned().ok_or_else(|| {
                    AdminError::Protocol(format!("broker {id} is not in the cluster's metadata"))
                })
            }
        }
    }

    fn connection(&mut self, target: Target) -> Result<&mut Connection, AdminError> {
        let addr = self.addr_of(target)?;
        if !self.connections.contains_key(&addr) {
            let conn = Connection::open(&addr)?;
            self.connections.insert(addr.clone(), conn);
        }
        Ok(self
            .connections
            .get_mut(&addr)
            .expect("the connection was just inserted"))
    }

    /// Sends the request `build` makes for the version chosen (the highest of `wanted` the
    /// broker serves) and returns the response with that version.
    pub fn call<R: Request>(
        &mut self,
        target: Target,
        wanted: (i16, i16),
        build: impl FnOnce(i16) -> R,
    ) -> Result<(i16, R::Response), AdminError> {
        let api = ApiKey::try_from(R::KEY)
            .map_err(|_| AdminError::Protocol(format!("unknown API key {}", R::KEY)))?;
        let conn = self.connection(target)?;
        let version = conn.version(api, wanted)?;
        let req = build(version);
        let resp = conn.send(&req, version)?;
        Ok((version, resp))
    }

    /// Metadata for `topics` (`None`: every topic; `Some(vec![])`: none, only the brokers),
    /// never creating topics; remembers the brokers it lists.
    pub fn metadata(
        &mut self,
        topics: Option<Vec<String>>,
    ) -> Result<MetadataResponse, AdminError> {
        use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
        use kafka_protocol::messages::TopicName;
        // v1 is the first where "all topics" (null) and "no topics" (empty) differ; v10 adds
        // topic ids.
        let (_, resp) = self.call(Target::Any, (1, 12), |_| {
            MetadataRequest::default()
                .with_topics(topics.map(|names| {
                    names
                        .into_iter()
                        .map(|n| {
                            MetadataRequestTopic::default()
                                .with_name(Some(TopicName(StrBytes::from_string(n))))
                        })
                        .collect()
                }))
                .with_allow_auto_topic_creation(false)
        })?;
        for b in &resp.brokers {
            self.brokers
                .insert(b.node_id.0, format!("{}:{}", b.host.as_str(), b.port));
        }
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A broker that announces a frame larger than the bound gets an error, not an allocation
    /// of that size.
    #[test]
    fn oversized_response_is_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut size = [0u8; 4];
            s.read_exact(&mut size).unwrap();
            let mut req = vec![0u8; u32::from_be_bytes(size) as usize];
            s.read_exact(&mut req).unwrap();
            s.write_all(&(RESPONSE_BYTES_MAX + 1).to_be_bytes())
                .unwrap();
        });
        match Client::connect(&addr) {
            Err(AdminError::Protocol(m)) => assert!(m.contains("larger than"), "{m}"),
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("an oversized response was accepted"),
        }
        server.join().unwrap();
    }

    /// The version sent is the highest both sides know, and no common version is an error.
    #[test]
    fn version_is_the_highest_common_one() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let mut conn = Connection {
            addr: "x".into(),
            stream,
            versions: HashMap::new(),
            next_correlation_id: 1,
        };
        conn.versions.insert(ApiKey::Metadata as i16, (0, 12));
        assert_eq!(conn.version(ApiKey::Metadata, (1, 9)).unwrap(), 9);
        assert_eq!(conn.version(ApiKey::Metadata, (1, 13)).unwrap(), 12);
        conn.versions.insert(ApiKey::Metadata as i16, (4, 12));
        assert!(conn.version(ApiKey::Metadata, (1, 3)).is_err());
        assert!(conn.version(ApiKey::ListGroups, (0, 5)).is_err());
    }
}
