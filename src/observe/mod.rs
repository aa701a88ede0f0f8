//! The admin HTTP listener (`--http-listen` / `shardlog.http.listen`), served by shard 0 in a
//! task queue of its own with a small share, so a scrape never competes evenly with clients:
//!
//! - `/metrics`: Prometheus (OpenMetrics text) figures of every shard (`metrics`);
//! - `/v1/health`: alive and ready; `/v1/topics`: partitions with their offsets and sizes;
//! - `/v1/groups`, `/v1/groups/{group}`: committed offsets, lag and a lag status evaluated as
//!   Burrow does (`lag`), from a window of commits the lag monitor keeps;
//! - `/`: a console page (`console.html`, no build step, no external assets).
//!
//! Everything is gathered when asked, from each shard's services through `invoke_on` (the
//! shards' own state is never read from here), and the lag monitor samples the same way every
//! `shardlog.lag.sample.interval.ms`.

pub mod lag;
mod metrics;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use futures::future::{select, Either};
use futures::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use serde::Serialize;

use crate::catalog::Replica;
use crate::group::ops::GroupOverview;
use crate::group::Coordinator;
use crate::log::Partitions;
use crate::shard::Shard;
use crate::util::metrics::Snapshot;
use lag::{Commit, Status, Window};

/// The most bytes of a request head (request line and headers) read; a longer one is refused.
const REQUEST_HEAD_BYTES_MAX: usize = 16 * 1024;
/// Headers parsed at most.
const REQUEST_HEADERS_MAX: usize = 64;
/// A client must send its whole request head within this.
const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Share of shard 0's time the listener's task queue gets when clients want the rest (glommio
/// shares: the default queue has 1000).
const TASK_QUEUE_SHARES: usize = 100;

/// One partition as a shard reports it.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionView {
    pub topic: String,
    pub partition: i32,
    pub shard: usize,
    pub log_start_offset: i64,
    /// The high watermark: what consumers can read up to, and what lag is measured against.
    pub log_end_offset: i64,
    pub size_bytes: u64,
    pub segments: usize,
}

/// What one shard reports.
struct ShardView {
    shard: usize,
    metrics: Snapshot,
    partitions: Vec<PartitionView>,
    groups: Vec<GroupOverview>,
    tail_cache_bytes: usize,
}

/// The listener's state on shard 0: the lag windows, by (group, topic, partition).
pub struct Observer {
    shard: Rc<Shard>,
    catalog: Rc<Replica>,
    windows: RefCell<HashMap<(String, String, i32), Window>>,
}

impl Observer {
    pub fn new(shard: Rc<Shard>, catalog: Rc<Replica>) -> Rc<Observer> {
        Rc::new(Observer {
            shard,
            catalog,
            windows: RefCell::new(HashMap::new()),
        })
    }

    /// Every shard's figures, partitions and groups.
    async fn gather(&self) -> Vec<ShardView> {
        let mut views = Vec::with_capacity(self.shard.count);
        for i in 0..self.shard.count {
            let partitions = self
                .shard
                .invoke_on::<Partitions, _, _>(i, move |p: &Rc<Partitions>| {
                    let owned: Vec<PartitionView> = p
                        .owned()
                        .iter()
                        .map(|log| {
                            let (size_bytes, segments) = log.size_and_segments();
                            PartitionView {
                                topic: log.topic.clone(),
                                partition: log.partition,
                                shard: i,
                                log_start_offset: log.log_start_offset(),
                                log_end_offset: log.high_watermark(),
                                size_bytes,
                                segments,
                            }
                        })
                        .collect();
                    let answer = (
                        owned,
                        p.tail_cache_bytes(),
                        crate::util::metrics::snapshot(),
                    );
                    Box::pin(async move { answer })
                })
                .await;
            let groups = self
                .shard
                .invoke_on::<Coordinator, _, _>(i, |c: &Rc<Coordinator>| {
                    let groups = c.overview();
                    Box::pin(async move { groups })
                })
                .await;
            // A shard that is stopping has nothing to report.
            let (Ok((partitions, tail_cache_bytes, metrics)), Ok(groups)) = (partitions, groups)
            else {
                continue;
            };
            views.push(ShardView {
                shard: i,
                metrics,
                partitions,
                groups,
                tail_cache_bytes,
            });
        }
        views
    }

    /// Gathers, and feeds every group partition's current commit into its window.
    async fn sample(&self) -> Sample {
        let views = self.gather().await;
        let size = usize::try_from(self.shard.config.lag_window_commits)
            .unwrap_or(1)
            .max(1);
        let log_ends: HashMap<(&str, i32), i64> = views
            .iter()
            .flat_map(|v| &v.partitions)
            .map(|p| ((p.topic.as_str(), p.partition), p.log_end_offset))
            .collect();
        let mut windows = self.windows.borrow_mut();
        let mut seen = Vec::new();
        for g in views.iter().flat_map(|v| &v.groups) {
            for (topic, partition, offset, timestamp_ms) in &g.offsets {
                let Some(&end) = log_ends.get(&(topic.as_str(), *partition)) else {
                    continue;
                };
                let key = (g.group_id.clone(), topic.clone(), *partition);
                windows
                    .entry(key.clone())
                    .or_default()
                    .observe(*offset, *timestamp_ms, end, size);
                seen.push(key);
            }
        }
        // Windows of groups and offsets that are gone go with them.
        let seen: std::collections::HashSet<_> = seen.into_iter().collect();
        windows.retain(|k, _| seen.contains(k));
        drop(windows);
        Sample { views }
    }

    /// The lag monitor: samples every `shardlog.lag.sample.interval.ms` until the broker stops.
    pub async fn monitor(self: Rc<Self>) {
        let every = Duration::from_millis(self.shard.config.lag_sample_interval_ms);
        loop {
            let tick = glommio::timer::sleep(every);
            let stop = self.shard.stopped();
            futures::pin_mut!(tick);
            futures::pin_mut!(stop);
            if let Either::Right(_) = select(tick, stop).await {
                return;
            }
            self.sample().await;
        }
    }

    /// Groups with lag and status, from a fresh sample.
    async fn groups(&self) -> (Vec<GroupReport>, Sample) {
        let sample = self.sample().await;
        let now_ms = wall_ms();
        let log_ends: HashMap<(&str, i32), i64> = sample
            .views
            .iter()
            .flat_map(|v| &v.partitions)
            .map(|p| ((p.topic.as_str(), p.partition), p.log_end_offset))
            .collect();
        let windows = self.windows.borrow();
        let mut reports: Vec<GroupReport> = sample
            .views
            .iter()
            .flat_map(|v| &v.groups)
            .map(|g| {
                let partitions: Vec<PartitionLag> = g
                    .offsets
                    .iter()
                    .map(|(topic, partition, offset, _)| {
                        let end = log_ends.get(&(topic.as_str(), *partition)).copied();
                        let lag = end.map(|e| (e - offset).max(0));
                        let window = windows.get(&(g.group_id.clone(), topic.clone(), *partition));
                        let status =
                            window.map_or(Status::Ok, |w| w.status(lag.unwrap_or(0), now_ms));
                        PartitionLag {
                            topic: topic.clone(),
                            partition: *partition,
                            committed_offset: *offset,
                            log_end_offset: end,
                            lag,
                            status: status.name(),
                            window: window
                                .map(|w| w.commits.iter().copied().collect())
                                .unwrap_or_default(),
                            rank: status,
                        }
                    })
                    .collect();
                GroupReport::new(g, partitions)
            })
            .collect();
        reports.sort_by(|a, b| a.group.cmp(&b.group));
        drop(windows);
        (reports, sample)
    }
}

struct Sample {
    views: Vec<ShardView>,
}

/// A group as `/v1/groups` reports it.
#[derive(Serialize)]
pub struct GroupReport {
    pub group: String,
    pub state: &'static str,
    pub protocol_type: String,
    pub members: Vec<Member>,
    /// The worst partition status, STOP/STALL/REWIND reported as ERROR (Burrow's group status).
    pub status: &'static str,
    pub total_lag: i64,
    /// The partition with the most lag.
    pub max_lag: Option<MaxLag>,
    pub partitions: Vec<PartitionLag>,
}

#[derive(Serialize)]
pub struct Member {
    pub member_id: String,
    pub client_id: String,
    pub host: String,
}

#[derive(Serialize)]
pub struct MaxLag {
    pub topic: String,
    pub partition: i32,
    pub lag: i64,
}

#[derive(Serialize)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    pub committed_offset: i64,
    /// `None` when the partition is not open (deleted, or its shard is stopping).
    pub log_end_offset: Option<i64>,
    pub lag: Option<i64>,
    pub status: &'static str,
    /// The commits the status was evaluated over, oldest first.
    pub window: Vec<Commit>,
    #[serde(skip)]
    rank: Status,
}

impl GroupReport {
    fn new(g: &GroupOverview, partitions: Vec<PartitionLag>) -> GroupReport {
        let worst = partitions
            .iter()
            .map(|p| p.rank.for_group())
            .max()
            .unwrap_or(Status::Ok);
        let max_lag = partitions
            .iter()
            .filter_map(|p| p.lag.map(|lag| (p, lag)))
            .max_by_key(|(_, lag)| *lag)
            .map(|(p, lag)| MaxLag {
                topic: p.topic.clone(),
                partition: p.partition,
                lag,
            });
        GroupReport {
            group: g.group_id.clone(),
            state: g.state,
            protocol_type: g.protocol_type.clone(),
            members: g
                .members
                .iter()
                .map(|(member_id, client_id, host)| Member {
                    member_id: member_id.clone(),
                    client_id: client_id.clone(),
                    host: host.clone(),
                })
                .collect(),
            status: worst.name(),
            total_lag: partitions.iter().filter_map(|p| p.lag).sum(),
            max_lag,
            partitions,
        }
    }
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Binds the listener (on the calling shard: shard 0), so that a bad address fails the start.
pub fn bind(addr: &str) -> io::Result<TcpListener> {
    let parsed: SocketAddr = addr.parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("shardlog.http.listen / --http-listen: '{addr}' is not HOST:PORT (e.g. 127.0.0.1:9644)"),
        )
    })?;
    TcpListener::bind(parsed).map_err(|e| {
        io::Error::other(format!(
            "cannot listen for the admin HTTP listener (shardlog.http.listen / --http-listen) on {addr}: {e}"
        ))
    })
}

/// Serves the listener until the broker stops.
pub async fn serve(observer: Rc<Observer>, listener: TcpListener) {
    let queue = glommio::executor().create_task_queue(
        glommio::Shares::Static(TASK_QUEUE_SHARES),
        glommio::Latency::NotImportant,
        "admin-http",
    );
    let monitor = glommio::spawn_local_into(observer.clone().monitor(), queue);
    loop {
        let accept = listener.accept();
        let stop = observer.shard.stopped();
        futures::pin_mut!(accept);
        futures::pin_mut!(stop);
        let stream = match select(accept, stop).await {
            Either::Left((Ok(s), _)) => s,
            Either::Left((Err(e), _)) => {
                tracing::debug!(error = %e, "admin HTTP accept failed");
                continue;
            }
            Either::Right(_) => break,
        };
        let o = observer.clone();
        if let Ok(task) = glommio::spawn_local_into(handle(o, stream), queue) {
            task.detach();
        }
    }
    if let Ok(m) = monitor {
        m.await;
    }
}

/// One request, answered, then the connection closed.
async fn handle(observer: Rc<Observer>, mut stream: TcpStream) {
    let head = {
        let read = read_head(&mut stream);
        let timeout = glommio::timer::sleep(REQUEST_HEAD_TIMEOUT);
        futures::pin_mut!(read);
        futures::pin_mut!(timeout);
        match select(read, timeout).await {
            Either::Left((Some(head), _)) => head,
            _ => return,
        }
    };
    let mut headers = [httparse::EMPTY_HEADER; REQUEST_HEADERS_MAX];
    let mut req = httparse::Request::new(&mut headers);
    let response = match req.parse(&head) {
        Ok(httparse::Status::Complete(_)) => match (req.method, req.path) {
            (Some("GET"), Some(path)) => route(&observer, path).await,
            _ => Response::text(405, "only GET is served\n"),
        },
        _ => Response::text(400, "bad request\n"),
    };
    let _ = response.write_to(&mut stream).await;
    let _ = stream.close().await;
}

/// Reads until the end of the request head; `None` when the client closes first or sends
/// more than `REQUEST_HEAD_BYTES_MAX` without ending it.
async fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; REQUEST_HEAD_BYTES_MAX];
    let mut filled = 0;
    while filled < buf.len() {
        let n = stream.read(&mut buf[filled..]).await.ok()?;
        if n == 0 {
            return None;
        }
        filled += n;
        if buf[..filled].windows(4).any(|w| w == b"\r\n\r\n") {
            buf.truncate(filled);
            return Some(buf);
        }
    }
    None
}

async fn route(observer: &Observer, path: &str) -> Response {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    match path {
        "/" => Response {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body: include_str!("console.html").as_bytes().to_vec(),
        },
        "/metrics" => {
            let (groups, sample) = observer.groups().await;
            let per_partition = observer.shard.config.metrics_per_partition
                || query.split('&').any(|kv| kv == "partitions=true");
            match metrics::render(&sample.views_for_metrics(), &groups, per_partition) {
                Ok(text) => Response {
                    status: 200,
                    content_type: metrics::CONTENT_TYPE,
                    body: text.into_bytes(),
                },
                Err(_) => Response::text(500, "cannot encode the metrics\n"),
            }
        }
        "/v1/health" => {
            let stopping = observer.shard.stopping();
            let body = serde_json::json!({
                "alive": true,
                "ready": !stopping,
                "shards": observer.shard.count,
            });
            Response::json(if stopping { 503 } else { 200 }, &body)
        }
        "/v1/topics" => {
            let sample = observer.gather().await;
            let catalog = observer.catalog.get();
            let mut by_topic: BTreeMap<&str, Vec<&PartitionView>> = BTreeMap::new();
            for p in sample.iter().flat_map(|v| &v.partitions) {
                by_topic.entry(p.topic.as_str()).or_default().push(p);
            }
            let topics: Vec<serde_json::Value> = catalog
                .topics
                .iter()
                .map(|(name, t)| {
                    let mut parts = by_topic.remove(name.as_str()).unwrap_or_default();
                    parts.sort_by_key(|p| p.partition);
                    serde_json::json!({
                        "topic": name,
                        "id": t.id.to_string(),
                        "partitions": t.partitions,
                        "configs": t.configs,
                        "internal": crate::catalog::is_internal(name),
                        "offsets": parts,
                    })
                })
                .collect();
            Response::json(200, &serde_json::json!({ "topics": topics }))
        }
        "/v1/groups" => {
            let (groups, sample) = observer.groups().await;
            let shards: Vec<serde_json::Value> = sample
                .views
                .iter()
                .map(|v| {
                    serde_json::json!({
                        "shard": v.shard,
                        "partitions": v.partitions.len(),
                        "groups": v.groups.len(),
                        "connections": v.metrics.connections_accepted - v.metrics.connections_closed,
                        "requests": v.metrics.requests.values().sum::<u64>(),
                        "bytes_in": v.metrics.bytes_in,
                        "bytes_out": v.metrics.bytes_out,
                    })
                })
                .collect();
            Response::json(
                200,
                &serde_json::json!({ "groups": groups, "shards": shards }),
            )
        }
        _ => match path.strip_prefix("/v1/groups/") {
            Some(name) => {
                let name = percent_decode(name);
                let (groups, _) = observer.groups().await;
                match groups.into_iter().find(|g| g.group == name) {
                    Some(g) => Response::json(200, &g),
                    None => Response::json(
                        404,
                        &serde_json::json!({ "error": format!("no group '{name}'") }),
                    ),
                }
            }
            None => Response::text(404, "not found\n"),
        },
    }
}

impl Sample {
    fn views_for_metrics(&self) -> Vec<metrics::ShardFigures<'_>> {
        self.views
            .iter()
            .map(|v| metrics::ShardFigures {
                shard: v.shard,
                metrics: &v.metrics,
                partitions: &v.partitions,
                tail_cache_bytes: v.tail_cache_bytes,
            })
            .collect()
    }
}

/// `%xx` escapes decoded (group ids may hold any character); a bad escape stays as it is.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct Response {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Response {
    fn text(status: u16, body: &str) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.as_bytes().to_vec(),
        }
    }

    fn json(status: u16, body: &impl Serialize) -> Response {
        match serde_json::to_vec_pretty(body) {
            Ok(body) => Response {
                status,
                content_type: "application/json",
                body,
            },
            Err(_) => Response::text(500, "cannot encode the answer\n"),
        }
    }

    async fn write_to(&self, stream: &mut TcpStream) -> io::Result<()> {
        let reason = match self.status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            503 => "Service Unavailable",
            _ => "Internal Server Error",
        };
        let head = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
            self.status,
            self.content_type,
            self.body.len()
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&self.body).await?;
        stream.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_are_decoded() {
        assert_eq!(percent_decode("my%20group%2F1"), "my group/1");
        assert_eq!(percent_decode("bad%zz%4"), "bad%zz%4");
    }
}
