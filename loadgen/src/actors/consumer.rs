//! A consumer actor: reads its partitions by explicit assignment (no consumer group), with one
//! fetch loop per partition leader.
//!
//! Start offsets come from ListOffsets (earliest or latest) before the run starts. Each loop keeps
//! one Fetch in flight (max_wait_ms, 1 byte minimum, partition_max_bytes per partition, no fetch
//! session), decodes every complete batch (CRC checked, decompressed) and counts the records at
//! or after its position. In an e2e run it also measures, for each record of this run, the time
//! from its scheduled send (carried in the value) to its arrival.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse};
use kafka_protocol::records::RecordBatchDecoder;

use crate::analytics::metrics::{Flow, Lat, Meter};
use crate::scenarios::RunState;
use crate::utils::batch::{complete_batches, value_tag};
use crate::utils::finish::Finish;
use crate::utils::kafka::admin::{code, error_name, list_offsets, topic_name};
use crate::utils::kafka::{Connection, TopicInfo, Versions};
use crate::utils::wait::{race, Race};

/// Largest partition_max_bytes a loop grows to when a single batch does not fit.
const MAX_PARTITION_BYTES: i32 = 64 << 20;
/// Pause after a fetch that returned partition errors.
const ERROR_BACKOFF: Duration = Duration::from_millis(100);

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
}

struct Leg {
    conn: Rc<Connection>,
    partitions: Vec<PartitionState>,
}

pub struct Consumer {
    spec: ConsumerSpec,
    cfg: Arc<ConsumerConfig>,
    run: Arc<RunState>,
    meter: Rc<Meter>,
    legs: Vec<Leg>,
}

impl Consumer {
    /// Connects to the leaders of its partitions and finds the start offsets.
    pub async fn connect(
        spec: ConsumerSpec,
        cfg: Arc<ConsumerConfig>,
        run: Arc<RunState>,
        meter: Rc<Meter>,
    ) -> Result<Consumer> {
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
            let offsets = list_offsets(
                &conn,
                &cfg.versions,
                &cfg.topic.name,
                &parts,
                cfg.from,
                cfg.request_timeout,
            )
            .await
            .with_context(|| format!("consumer {}", spec.id))?;
            legs.push(Leg {
                conn: Rc::new(conn),
                partitions: parts
                    .iter()
                    .map(|p| PartitionState {
                        id: *p,
                        offset: offsets[p],
                        max_bytes: cfg.partition_max_bytes,
                    })
                    .collect(),
            });
        }
        Ok(Consumer {
            spec,
            cfg,
            run,
            meter,
            legs,
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

    async fn fetch_loop(self, mut leg: Leg) {
        let version = self.cfg.versions.fetch;
        let timeout = self.cfg.request_timeout + Duration::from_millis(self.cfg.max_wait_ms as u64);
        while !self.done() {
            let req = FetchRequest::default()
                .with_replica_id((-1).into())
                .with_max_wait_ms(self.cfg.max_wait_ms)
                .with_min_bytes(1)
                .with_max_bytes(self.cfg.max_bytes)
                .with_isolation_level(0)
                .with_session_id(0)
                .with_session_epoch(-1)
                .with_topics(vec![FetchTopic::default()
                    .with_topic(topic_name(&self.cfg.topic.name))
                    .with_partitions(
                        leg.partitions
                            .iter()
                            .map(|p| {
                                FetchPartition::default()
                                    .with_partition(p.id)
                                    .with_fetch_offset(p.offset)
                                    .with_partition_max_bytes(p.max_bytes)
                            })
                            .collect(),
                    )]);
            let fut = match leg.conn.start(ApiKey::Fetch, version, &req) {
                Ok(f) => f,
                Err(e) => {
                    self.run.abort(format!("consumer {}: {e:#}", self.id));
                    break;
                }
            };
            let sent_at = fut.sent_at;
            let wait = leg.conn.wait::<FetchResponse>(fut, timeout);
            let (resp, len) = match race(wait, self.deadline, &self.run.abort_flag).await {
                Race::Done(Ok(r)) => r,
                Race::Done(Err(e)) => {
                    self.run.abort(format!("consumer {}: {e:#}", self.id));
                    break;
                }
                Race::Deadline | Race::Aborted => break,
            };
            let now = Instant::now();
            self.meter.latency_ns(
                Lat::Fetch,
                now.saturating_duration_since(sent_at).as_nanos() as u64,
            );
            self.meter.wire(Flow::Consumed, len as u64);
            if resp.error_code != 0 {
                self.meter.error(&error_name(resp.error_code), 1);
                glommio::timer::sleep(ERROR_BACKOFF).await;
                continue;
            }
            let mut had_error = false;
            for t in &resp.responses {
                for pd in &t.partitions {
                    let Some(st) = leg
                        .partitions
                        .iter_mut()
                        .find(|p| p.id == pd.partition_index)
                    else {
                        continue;
                    };
                    if pd.error_code != 0 {
                        had_error = true;
                        self.meter.error(&error_name(pd.error_code), 1);
                        if pd.error_code == code::OFFSET_OUT_OF_RANGE {
                            match list_offsets(
                                &leg.conn,
                                &self.cfg.versions,
                                &self.cfg.topic.name,
                                &[st.id],
                                -2,
                                self.cfg.request_timeout,
                            )
                            .await
                            {
                                Ok(o) => st.offset = o[&st.id],
                                Err(e) => {
                                    self.run.abort(format!("consumer {}: {e:#}", self.id));
                                    return;
                                }
                            }
                        }
                        continue;
                    }
                    if let Some(records) = &pd.records {
                        self.take_records(st, records, now);
                    }
                }
            }
            if had_error {
                glommio::timer::sleep(ERROR_BACKOFF).await;
            }
        }
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
            }
            if let Some(budget) = &self.run.consume_budget {
                let granted = budget.claim(count);
                if granted < count {
                    // Count only the records that complete the total.
                    bytes = bytes * granted / count.max(1);
                    count = granted;
                    lat.truncate(granted as usize);
                }
            }
            if !lat.is_empty() {
                self.meter
                    .latencies_since(Lat::E2e, now_ns, lat.into_iter());
            }
            self.meter.ok(Flow::Consumed, count, bytes, now);
            st.offset = h.next_offset();
        }
    }
}
