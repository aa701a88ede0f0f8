//! A consumer actor: reads its partitions by explicit assignment, or as a member of a consumer
//! group (`--group`), with one fetch loop per partition leader.
//!
//! By explicit assignment, start offsets come from ListOffsets (earliest or latest) before the
//! run starts. In a group (KIP-848 protocol, see [`Member`]) the broker assigns the partitions:
//! each starts at the group's committed offset (or per `--from` when there is none), positions
//! are committed every second, when a partition is taken away, and at the end. Each loop keeps
//! one Fetch in flight (max_wait_ms, 1 byte minimum, partition_max_bytes per partition, no fetch
//! session), decodes every complete batch (CRC checked, decompressed) and counts the records at
//! or after its position. In an e2e run it also measures, for each record of this run, the time
//! from its scheduled send (carried in the value) to its arrival.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{
    ApiKey, ConsumerGroupHeartbeatResponse, FetchRequest, FetchResponse,
};
use kafka_protocol::records::RecordBatchDecoder;

use crate::analytics::metrics::{Flow, Lat, Meter};
use crate::scenarios::RunState;
use crate::utils::batch::{complete_batches, value_tag};
use crate::utils::finish::Finish;
use crate::utils::kafka::admin::{code, error_name, list_offsets, topic_name};
use crate::utils::kafka::group::{
    assigned, heartbeat_request, offset_commit, offset_fetch, retriable,
};
use crate::utils::kafka::{Connection, GroupVersions, TopicInfo, Versions};
use crate::utils::wait::{race, Race};

/// Largest partition_max_bytes a loop grows to when a single batch does not fit.
const MAX_PARTITION_BYTES: i32 = 64 << 20;
/// Pause after a fetch that returned partition errors.
const ERROR_BACKOFF: Duration = Duration::from_millis(100);
/// How often a fetch loop with no partitions (a group member waiting for some) looks again.
const IDLE_WAIT: Duration = Duration::from_millis(10);
/// How often a group member looks whether it is time to heartbeat, commit or stop.
const MEMBER_TICK: Duration = Duration::from_millis(10);
/// ListOffsets timestamp of a partition's earliest offset (where a fetch out of range restarts).
const EARLIEST: i64 = -2;

#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub topic: TopicInfo,
    pub versions: Versions,
    /// ListOffsets timestamp: -2 earliest, -1 latest.
    pub from: i64,
    pub max_wait_ms: i32,
    pub partition_max_bytes: i32,
    pub max_bytes: i32,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    pub finish: Finish,
    /// Measure end-to-end latency and count only this run's records.
    pub e2e: bool,
    /// Fetch isolation level: 0 read uncommitted, 1 read committed (records of transactions
    /// once committed; records of aborted transactions are not told apart).
    pub isolation_level: i8,
    /// Read as members of this consumer group instead of by explicit assignment.
    pub group: Option<GroupConfig>,
}

impl ConsumerConfig {
    /// Offsets at `timestamp` (-2 earliest, -1 latest) of `partitions` of the topic, asked of
    /// their leader on `conn`.
    async fn offsets_at(
        &self,
        conn: &Connection,
        partitions: &[i32],
        timestamp: i64,
    ) -> Result<BTreeMap<i32, i64>> {
        list_offsets(
            conn,
            &self.versions,
            &self.topic.name,
            partitions,
            timestamp,
            self.request_timeout,
        )
        .await
    }
}

#[derive(Debug, Clone)]
pub struct GroupConfig {
    pub group: String,
    /// The coordinator, "host:port" (from FindCoordinator).
    pub coordinator: String,
    pub versions: GroupVersions,
    pub rebalance_timeout_ms: i32,
    /// How often consumed positions are committed.
    pub commit_interval: Duration,
    /// What the members of this process did (for the report).
    pub stats: Arc<Mutex<GroupStats>>,
}

/// What this process's group members did, per partition.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct GroupStats {
    /// Records counted.
    pub records: BTreeMap<i32, u64>,
    /// The offset each partition was started at, each time it was assigned.
    pub started_at: BTreeMap<i32, Vec<i64>>,
    /// The last offset committed.
    pub committed: BTreeMap<i32, i64>,
    pub heartbeats: u64,
    /// Assignments applied (a heartbeat response that changed the partitions owned).
    pub assignments: u64,
    pub commit_errors: u64,
}

#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    pub id: usize,
    /// Partition ids to read.
    pub partitions: Vec<i32>,
}

struct PartitionState {
    id: i32,
    offset: i64,
    max_bytes: i32,
    /// Which assignment of the partition this is (a fetch answered after the partition was
    /// taken away, or taken away and given back, is not counted).
    incarnation: u64,
}

/// A partition as a fetch asked for it: which assignment of it, at which position.
struct Asked {
    id: i32,
    offset: i64,
    incarnation: u64,
}

impl Asked {
    /// What a fetch of `parts` asks for.
    fn of(parts: &[PartitionState]) -> Vec<Asked> {
        parts
            .iter()
            .map(|p| Asked {
                id: p.id,
                offset: p.offset,
                incarnation: p.incarnation,
            })
            .collect()
    }
}

/// The partition errors of one Fetch response.
#[derive(Default)]
struct FetchErrors {
    /// Whether any partition had one (the loop pauses before the next fetch).
    any: bool,
    /// (partition, incarnation) to restart from the earliest offset.
    out_of_range: Vec<(i32, u64)>,
}

/// The partitions read from one leader; a group member's change with each assignment.
type Partitions = Rc<RefCell<Vec<PartitionState>>>;

struct Leg {
    leader: i32,
    conn: Rc<Connection>,
    partitions: Partitions,
}

pub struct Consumer {
    spec: ConsumerSpec,
    cfg: Arc<ConsumerConfig>,
    run: Arc<RunState>,
    meter: Rc<Meter>,
    legs: Vec<Leg>,
    /// In a group: the connection to the coordinator.
    coordinator: Option<Rc<Connection>>,
}

impl Consumer {
    /// Connects to the leaders of its partitions and finds the start offsets.
    pub async fn connect(
        spec: ConsumerSpec,
        cfg: Arc<ConsumerConfig>,
        run: Arc<RunState>,
        meter: Rc<Meter>,
    ) -> Result<Consumer> {
        if let Some(g) = &cfg.group {
            // A group member: no partitions until the group assigns some.
            let coordinator = Connection::connect(&g.coordinator, cfg.connect_timeout)
                .await
                .with_context(|| format!("consumer {}: group coordinator", spec.id))?;
            let mut legs = Vec::new();
            for leader in cfg.topic.leaders() {
                let conn = Connection::connect(cfg.topic.leader_addr(leader)?, cfg.connect_timeout)
                    .await
                    .with_context(|| format!("consumer {}", spec.id))?;
                legs.push(Leg {
                    leader,
                    conn: Rc::new(conn),
                    partitions: Rc::new(RefCell::new(Vec::new())),
                });
            }
            return Ok(Consumer {
                spec,
                cfg,
                run,
                meter,
                legs,
                coordinator: Some(Rc::new(coordinator)),
            });
        }
        let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for &p in &spec.partitions {
            let info = cfg
                .topic
                .partitions
                .iter()
                .find(|x| x.id == p)
                .context("unknown partition")?;
            by_leader.entry(info.leader).or_default().push(p);
        }
        let mut legs = Vec::new();
        for (leader, parts) in by_leader {
            let addr = cfg.topic.leader_addr(leader)?;
            let conn = Connection::connect(addr, cfg.connect_timeout)
                .await
                .with_context(|| format!("consumer {}", spec.id))?;
            let offsets = cfg
                .offsets_at(&conn, &parts, cfg.from)
                .await
                .with_context(|| format!("consumer {}", spec.id))?;
            legs.push(Leg {
                leader,
                conn: Rc::new(conn),
                partitions: Rc::new(RefCell::new(
                    parts
                        .iter()
                        .map(|p| PartitionState {
                            id: *p,
                            offset: offsets[p],
                            max_bytes: cfg.partition_max_bytes,
                            incarnation: 0,
                        })
                        .collect(),
                )),
            });
        }
        Ok(Consumer {
            spec,
            cfg,
            run,
            meter,
            legs,
            coordinator: None,
        })
    }

    pub async fn run(self) {
        let Some(start) = self.run.wait_start().await else {
            return;
        };
        // e2e consumers read on past the duration until they have every acknowledged record
        // (the run's drain deadline bounds that); plain consumers stop at the duration.
        let deadline = match self.cfg.e2e {
            true => None,
            false => self.cfg.finish.duration().map(|d| start + d),
        };
        // A group member heartbeats and commits alongside the fetch loops, and commits and
        // leaves once they have ended.
        let stop = Rc::new(Cell::new(false));
        let member = match (&self.cfg.group, &self.coordinator) {
            (Some(g), Some(conn)) => Some(glommio::spawn_local(
                Member {
                    id: self.spec.id,
                    cfg: self.cfg.clone(),
                    g: g.clone(),
                    run: self.run.clone(),
                    conn: conn.clone(),
                    legs: self
                        .legs
                        .iter()
                        .map(|l| (l.leader, l.conn.clone(), l.partitions.clone()))
                        .collect(),
                    member_id: crate::utils::kafka::group::new_member_id(),
                    epoch: 0,
                    owned: BTreeSet::new(),
                    reported: None,
                    committed: BTreeMap::new(),
                    incarnations: 0,
                }
                .run(stop.clone()),
            )),
            _ => None,
        };
        let tasks: Vec<_> = self
            .legs
            .into_iter()
            .map(|leg| {
                let ctx = LegCtx {
                    id: self.spec.id,
                    cfg: self.cfg.clone(),
                    run: self.run.clone(),
                    meter: self.meter.clone(),
                    deadline,
                };
                glommio::spawn_local(ctx.fetch_loop(leg))
            })
            .collect();
        for t in tasks {
            t.await;
        }
        stop.set(true);
        if let Some(m) = member {
            m.await;
        }
    }
}

struct LegCtx {
    id: usize,
    cfg: Arc<ConsumerConfig>,
    run: Arc<RunState>,
    meter: Rc<Meter>,
    deadline: Option<Instant>,
}

impl LegCtx {
    /// Whether the run needs no more records.
    fn done(&self) -> bool {
        if self.run.aborted() {
            return true;
        }
        if let Some(b) = &self.run.consume_budget {
            if b.exhausted() {
                return true;
            }
        }
        self.cfg.e2e && self.run.e2e_caught_up()
    }

    /// Reads `leg`'s partitions until the run needs no more records, the deadline passes, or a
    /// request fails (which aborts the run): one Fetch in flight at a time.
    async fn fetch_loop(self, leg: Leg) {
        while !self.done() {
            let asked = Asked::of(&leg.partitions.borrow());
            if asked.is_empty() {
                // A group member with nothing (yet) to read from this leader.
                if self.deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                glommio::timer::sleep(IDLE_WAIT).await;
                continue;
            }
            let Some((resp, now)) = self.fetch(&leg).await else {
                break;
            };
            if resp.error_code != 0 {
                self.meter.error(&error_name(resp.error_code), 1);
                glommio::timer::sleep(ERROR_BACKOFF).await;
                continue;
            }
            let errors = self.take_response(&leg, &asked, &resp, now);
            if let Err(e) = self.restart_at_earliest(&leg, &errors.out_of_range).await {
                self.abort(&e);
                return;
            }
            if errors.any {
                glommio::timer::sleep(ERROR_BACKOFF).await;
            }
        }
    }

    /// One Fetch of `leg`'s partitions at their positions, timed; with the moment it was
    /// answered. None when the loop must end: the deadline passed, the run was aborted, or the
    /// request failed (which aborts the run).
    async fn fetch(&self, leg: &Leg) -> Option<(FetchResponse, Instant)> {
        let timeout = self.cfg.request_timeout + Duration::from_millis(self.cfg.max_wait_ms as u64);
        let req = self.fetch_request(&leg.partitions.borrow());
        let fut = match leg.conn.start(ApiKey::Fetch, self.cfg.versions.fetch, &req) {
            Ok(f) => f,
            Err(e) => {
                self.abort(&e);
                return None;
            }
        };
        let sent_at = fut.sent_at;
        let wait = leg.conn.wait::<FetchResponse>(fut, timeout);
        let (resp, len) = match race(wait, self.deadline, &self.run.abort_flag).await {
            Race::Done(Ok(r)) => r,
            Race::Done(Err(e)) => {
                self.abort(&e);
                return None;
            }
            Race::Deadline | Race::Aborted => return None,
        };
        let now = Instant::now();
        self.meter.latency_ns(
            Lat::Fetch,
            now.saturating_duration_since(sent_at).as_nanos() as u64,
        );
        self.meter.wire(Flow::Consumed, len as u64);
        Some((resp, now))
    }

    /// The Fetch request for `parts` at their positions: long poll up to max_wait_ms for at
    /// least one byte, no fetch session (session id 0, epoch -1), at the isolation level of the
    /// run (uncommitted records, but committed ones only in an e2e run of transactions).
    fn fetch_request(&self, parts: &[PartitionState]) -> FetchRequest {
        FetchRequest::default()
            .with_replica_id((-1).into())
            .with_max_wait_ms(self.cfg.max_wait_ms)
            .with_min_bytes(1)
            .with_max_bytes(self.cfg.max_bytes)
            .with_isolation_level(self.cfg.isolation_level)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(topic_name(&self.cfg.topic.name))
                .with_partitions(
                    parts
                        .iter()
                        .map(|p| {
                            FetchPartition::default()
                                .with_partition(p.id)
                                .with_fetch_offset(p.offset)
                                .with_partition_max_bytes(p.max_bytes)
                        })
                        .collect(),
                )])
    }

    /// Counts the records of each partition of `resp` that is still read as it was asked for
    /// (same incarnation, same position); a partition in other hands, or at another position,
    /// has moved on and its answer is dropped. Returns the partition errors met.
    fn take_response(
        &self,
        leg: &Leg,
        asked: &[Asked],
        resp: &FetchResponse,
        now: Instant,
    ) -> FetchErrors {
        let mut errors = FetchErrors::default();
        let mut parts = leg.partitions.borrow_mut();
        for pd in resp.responses.iter().flat_map(|t| t.partitions.iter()) {
            let Some(a) = asked.iter().find(|a| a.id == pd.partition_index) else {
                continue;
            };
            let Some(st) = parts
                .iter_mut()
                .find(|p| p.id == a.id && p.incarnation == a.incarnation && p.offset == a.offset)
            else {
                continue;
            };
            if pd.error_code != 0 {
                errors.any = true;
                self.meter.error(&error_name(pd.error_code), 1);
                if pd.error_code == code::OFFSET_OUT_OF_RANGE {
                    errors.out_of_range.push((st.id, st.incarnation));
                }
                continue;
            }
            if let Some(records) = &pd.records {
                self.take_records(st, records, now);
            }
        }
        errors
    }

    /// Moves each (partition, incarnation) of `out_of_range` still read to its earliest offset
    /// (ListOffsets), one at a time; the first failure ends it.
    async fn restart_at_earliest(&self, leg: &Leg, out_of_range: &[(i32, u64)]) -> Result<()> {
        for &(id, incarnation) in out_of_range {
            let o = self.cfg.offsets_at(&leg.conn, &[id], EARLIEST).await?;
            if let Some(st) = leg
                .partitions
                .borrow_mut()
                .iter_mut()
                .find(|p| p.id == id && p.incarnation == incarnation)
            {
                st.offset = o[&id];
            }
        }
        Ok(())
    }

    /// Aborts the run for `e`, naming this consumer.
    fn abort(&self, e: &anyhow::Error) {
        self.run.abort(format!("consumer {}: {e:#}", self.id));
    }

    /// Counts (and for e2e, times) the records of one partition's fetched bytes.
    fn take_records(&self, st: &mut PartitionState, records: &bytes::Bytes, now: Instant) {
        if records.is_empty() {
            return;
        }
        let batches = complete_batches(records);
        if batches.is_empty() {
            // Not even one whole batch fits in partition_max_bytes: ask for more next time.
            st.max_bytes = st.max_bytes.saturating_mul(2).min(MAX_PARTITION_BYTES);
            return;
        }
        let now_ns = self.meter.metrics().ns_since_origin(now);
        let run_id = self.run.run_id;
        for (h, mut b) in batches {
            if h.next_offset() <= st.offset {
                continue;
            }
            if h.control || h.record_count == 0 {
                st.offset = h.next_offset();
                continue;
            }
            let set = match RecordBatchDecoder::decode(&mut b) {
                Ok(s) => s,
                Err(e) => {
                    self.meter
                        .error("CorruptBatch", h.record_count.max(1) as u64);
                    self.run.note(format!(
                        "consumer {}: partition {} offset {}: undecodable batch: {e:#}",
                        self.id, st.id, h.base_offset
                    ));
                    st.offset = h.next_offset();
                    continue;
                }
            };
            let mut count = 0u64;
            let mut bytes = 0u64;
            let mut lat = Vec::new();
            // Offsets of the records counted (to stop exactly after the last one granted).
            let mut counted = Vec::new();
            for r in &set.records {
                if r.offset < st.offset || r.control {
                    continue;
                }
                let size =
                    r.key.as_ref().map_or(0, |k| k.len()) + r.value.as_ref().map_or(0, |v| v.len());
                if self.cfg.e2e {
                    // Only this run's records, timed from their scheduled send.
                    match r.value.as_deref().and_then(value_tag) {
                        Some((ts, Some(run))) if run == run_id && ts <= now_ns => lat.push(ts),
                        Some((ts, None)) if ts <= now_ns => lat.push(ts),
                        _ => continue,
                    }
                }
                count += 1;
                bytes += size as u64;
                counted.push(r.offset);
            }
            // Where the position ends up when the budget runs out within this batch.
            let mut cut = None;
            if let Some(budget) = &self.run.consume_budget {
                let granted = budget.claim(count);
                if granted < count {
                    // Count only the records that complete the total.
                    bytes = bytes * granted / count.max(1);
                    count = granted;
                    lat.truncate(granted as usize);
                    cut = Some(match granted {
                        0 => st.offset,
                        n => counted[n as usize - 1] + 1,
                    });
                }
            }
            if count > 0 {
                if let Some(g) = &self.cfg.group {
                    *g.stats.lock().unwrap().records.entry(st.id).or_default() += count;
                }
            }
            if !lat.is_empty() {
                self.meter
                    .latencies_since(Lat::E2e, now_ns, lat.into_iter());
            }
            self.meter.ok(Flow::Consumed, count, bytes, now);
            if let Some(o) = cut {
                // The position (what a group commits) stays right after the last record counted.
                st.offset = o;
                break;
            }
            st.offset = h.next_offset();
        }
    }
}

/// A consumer actor's life as a group member (KIP-848 protocol): it joins with epoch 0 and its
/// own member id, heartbeats every heartbeat_interval_ms with its epoch (and the partitions it
/// owns whenever they changed since it last said), applies every assignment a response carries
/// (the full set: partitions taken away are committed and dropped, new ones start at the
/// group's committed offset or per `--from`), commits positions every `commit_interval`, and
/// at the end commits and leaves (epoch -1).
struct Member {
    id: usize,
    cfg: Arc<ConsumerConfig>,
    g: GroupConfig,
    run: Arc<RunState>,
    conn: Rc<Connection>,
    /// (leader, connection, partitions read from it) — shared with the fetch loops.
    legs: Vec<(i32, Rc<Connection>, Partitions)>,
    member_id: String,
    /// 0 until joined (or after being fenced).
    epoch: i32,
    /// The partitions the member reads.
    owned: BTreeSet<i32>,
    /// What the coordinator last heard the member owns.
    reported: Option<BTreeSet<i32>>,
    /// Last offset committed per partition.
    committed: BTreeMap<i32, i64>,
    incarnations: u64,
}

impl Member {
    async fn run(mut self, stop: Rc<Cell<bool>>) {
        let mut next_heartbeat = Instant::now();
        let mut next_commit = Instant::now() + self.g.commit_interval;
        while !stop.get() {
            let now = Instant::now();
            if now >= next_heartbeat {
                match self.heartbeat().await {
                    Ok(wait) => next_heartbeat = Instant::now() + wait,
                    Err(e) => {
                        self.run.abort(format!(
                            "consumer {} (group {}): {e:#}",
                            self.id, self.g.group
                        ));
                        break;
                    }
                }
            }
            if now >= next_commit {
                self.commit(None).await;
                next_commit = Instant::now() + self.g.commit_interval;
            }
            let next = next_heartbeat.min(next_commit);
            glommio::timer::sleep(
                next.saturating_duration_since(Instant::now())
                    .min(MEMBER_TICK),
            )
            .await;
        }
        // The fetch loops have ended: the positions are final.
        self.commit(None).await;
        self.leave().await;
    }

    fn positions(&self) -> BTreeMap<i32, i64> {
        self.legs
            .iter()
            .flat_map(|(_, _, parts)| {
                parts
                    .borrow()
                    .iter()
                    .map(|p| (p.id, p.offset))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// One heartbeat; returns how long to wait for the next one.
    async fn heartbeat(&mut self) -> Result<Duration> {
        let report = (self.epoch == 0 || self.reported.as_ref() != Some(&self.owned))
            .then(|| self.owned.clone());
        let req = heartbeat_request(
            &self.g.group,
            &self.member_id,
            self.epoch,
            &self.cfg.topic.name,
            &self.cfg.topic.id,
            self.g.rebalance_timeout_ms,
            report.as_ref(),
        )?;
        let resp: ConsumerGroupHeartbeatResponse = self
            .conn
            .request(
                ApiKey::ConsumerGroupHeartbeat,
                self.g.versions.consumer_group_heartbeat,
                &req,
                self.cfg.request_timeout,
            )
            .await?;
        self.g.stats.lock().unwrap().heartbeats += 1;
        let interval = Duration::from_millis(resp.heartbeat_interval_ms.clamp(10, 60_000) as u64);
        if resp.error_code != 0 {
            let why = format!(
                "ConsumerGroupHeartbeat: {}{}",
                error_name(resp.error_code),
                resp.error_message
                    .as_ref()
                    .map(|m| format!(" ({})", m.as_str()))
                    .unwrap_or_default()
            );
            return match resp.error_code {
                c if retriable(c) => {
                    self.run
                        .note(format!("group {}: {why}; retried", self.g.group));
                    Ok(ERROR_BACKOFF * 5)
                }
                code::UNKNOWN_MEMBER_ID | code::FENCED_MEMBER_EPOCH => {
                    // Out of the group: its partitions are someone else's now (positions not
                    // committed since the last commit will be read again). Join again.
                    self.run.note(format!(
                        "group {}: consumer {} was fenced ({why}); it rejoined",
                        self.g.group, self.id
                    ));
                    self.drop_partitions(&self.owned.clone());
                    self.owned.clear();
                    self.reported = None;
                    self.epoch = 0;
                    Ok(Duration::ZERO)
                }
                _ => Err(anyhow::anyhow!("{why}")),
            };
        }
        if let Some(r) = report {
            self.reported = Some(r);
        }
        if let Some(id) = resp.member_id.as_ref().filter(|id| !id.is_empty()) {
            if id.as_str() != self.member_id {
                self.member_id = id.to_string();
            }
        }
        self.epoch = resp.member_epoch;
        if let Some(target) = assigned(&resp, &self.cfg.topic.id) {
            self.apply(target).await?;
        }
        // Tell the coordinator at once about partitions given up (it waits for that to move
        // them on).
        if self.reported.as_ref() != Some(&self.owned) {
            return Ok(Duration::ZERO);
        }
        Ok(interval)
    }

    /// Takes the partitions out of the fetch loops; returns their positions.
    fn drop_partitions(&self, gone: &BTreeSet<i32>) -> BTreeMap<i32, i64> {
        let mut out = BTreeMap::new();
        for (_, _, parts) in &self.legs {
            parts.borrow_mut().retain(|p| {
                if gone.contains(&p.id) {
                    out.insert(p.id, p.offset);
                    false
                } else {
                    true
                }
            });
        }
        out
    }

    /// Moves to the assignment `target` (the full set of partitions of the topic).
    async fn apply(&mut self, target: BTreeSet<i32>) -> Result<()> {
        let gone: BTreeSet<i32> = self.owned.difference(&target).copied().collect();
        let new: Vec<i32> = target.difference(&self.owned).copied().collect();
        if gone.is_empty() && new.is_empty() {
            return Ok(());
        }
        if !gone.is_empty() {
            let positions = self.drop_partitions(&gone);
            self.commit(Some(positions)).await;
            for p in &gone {
                self.owned.remove(p);
                self.committed.remove(p);
            }
        }
        if !new.is_empty() {
            let committed = offset_fetch(
                &self.conn,
                &self.g.versions,
                &self.g.group,
                &self.member_id,
                self.epoch,
                &self.cfg.topic.name,
                &new,
                self.cfg.request_timeout,
            )
            .await?;
            for (leader, conn, parts) in &self.legs {
                let mine: Vec<i32> = new
                    .iter()
                    .copied()
                    .filter(|p| {
                        self.cfg
                            .topic
                            .partitions
                            .iter()
                            .any(|x| x.id == *p && x.leader == *leader)
                    })
                    .collect();
                if mine.is_empty() {
                    continue;
                }
                let unset: Vec<i32> = mine
                    .iter()
                    .copied()
                    .filter(|p| committed.get(p).is_none_or(|&o| o < 0))
                    .collect();
                let reset = if unset.is_empty() {
                    BTreeMap::new()
                } else {
                    self.cfg.offsets_at(conn, &unset, self.cfg.from).await?
                };
                let mut stats = self.g.stats.lock().unwrap();
                let mut parts = parts.borrow_mut();
                for p in mine {
                    let offset = match committed.get(&p) {
                        Some(&o) if o >= 0 => {
                            self.committed.insert(p, o);
                            o
                        }
                        _ => reset[&p],
                    };
                    self.incarnations += 1;
                    parts.push(PartitionState {
                        id: p,
                        offset,
                        max_bytes: self.cfg.partition_max_bytes,
                        incarnation: self.incarnations,
                    });
                    stats.started_at.entry(p).or_default().push(offset);
                    self.owned.insert(p);
                }
            }
            for p in &new {
                if !self.owned.contains(p) {
                    self.run.note(format!(
                        "group {}: partition {p} was assigned but is not in the topic's metadata; not read",
                        self.g.group
                    ));
                }
            }
        }
        self.g.stats.lock().unwrap().assignments += 1;
        Ok(())
    }

    /// Commits `positions`, or (None) every owned position that moved since its last commit.
    async fn commit(&mut self, positions: Option<BTreeMap<i32, i64>>) {
        let mut offsets = positions.unwrap_or_else(|| self.positions());
        offsets.retain(|p, o| self.committed.get(p) != Some(o));
        if offsets.is_empty() || self.epoch <= 0 {
            return;
        }
        let result = offset_commit(
            &self.conn,
            &self.g.versions,
            &self.g.group,
            &self.member_id,
            self.epoch,
            &self.cfg.topic.name,
            &offsets,
            self.cfg.request_timeout,
        )
        .await;
        let failed = match result {
            Ok(f) => f,
            Err(e) => {
                self.g.stats.lock().unwrap().commit_errors += 1;
                self.run.note(format!(
                    "group {}: consumer {}: OffsetCommit failed: {e:#}",
                    self.g.group, self.id
                ));
                return;
            }
        };
        let mut stats = self.g.stats.lock().unwrap();
        for (p, o) in offsets {
            if let Some((_, c)) = failed.iter().find(|(fp, _)| *fp == p) {
                stats.commit_errors += 1;
                self.run.note(format!(
                    "group {}: OffsetCommit {}/{p}: {}",
                    self.g.group,
                    self.cfg.topic.name,
                    error_name(*c)
                ));
                continue;
            }
            self.committed.insert(p, o);
            stats.committed.insert(p, o);
        }
    }

    /// Leaves the group (epoch -1).
    async fn leave(&mut self) {
        if self.epoch <= 0 {
            return;
        }
        let req = match heartbeat_request(
            &self.g.group,
            &self.member_id,
            -1,
            &self.cfg.topic.name,
            &self.cfg.topic.id,
            self.g.rebalance_timeout_ms,
            None,
        ) {
            Ok(r) => r,
            Err(_) => return,
        };
        let resp = self
            .conn
            .request::<_, ConsumerGroupHeartbeatResponse>(
                ApiKey::ConsumerGroupHeartbeat,
                self.g.versions.consumer_group_heartbeat,
                &req,
                self.cfg.request_timeout,
            )
            .await;
        let why = match resp {
            Ok(r) if r.error_code == 0 => return,
            Ok(r) => error_name(r.error_code),
            Err(e) => format!("{e:#}"),
        };
        self.run.note(format!(
            "group {}: consumer {} could not leave: {why}",
            self.g.group, self.id
        ));
    }
}
