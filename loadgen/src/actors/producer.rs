//! A producer actor: generates records (as fast as it may, or on a rate schedule), batches them
//! per partition, and keeps up to `max_in_flight` produce requests in flight per connection.
//!
//! One actor has one connection per partition leader (one in all for a single broker). Batches
//! close at `batch_bytes` (uncompressed estimate) or `linger` after their first record; when a
//! leader's connection has room, every non-empty batch of its partitions goes out in one request
//! (one batch per partition, at most `max_request_bytes`), like the Java client's drain.
//! Records in batches and in flight are bounded by `buffer_bytes`; generation waits past it (on a
//! rate schedule, late records keep their scheduled time, so the wait shows as latency).
//!
//! Idempotent and transactional producers (see [`super::eos`]) number each batch when it is
//! encoded, per partition, in the order the batches go out on their leader's connection, which
//! keeps that order. A transactional producer generates `--txn-records` records into a
//! transaction, adds each partition to it before sending its first batch there, and once every
//! batch of the transaction is answered ends it and only then starts the next.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::channel::oneshot;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, TransactionalId};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;

use super::eos::{Eos, EosConfig, Timeouts, Txn};
use crate::analytics::metrics::{Flow, Lat, Meter, Metrics};
use crate::scenarios::RunState;
use crate::utils::batch::{
    encode_batch, BatchIdentity, PendingRecord, RecordGen, BATCH_HEADER_BYTES,
};
use crate::utils::finish::Finish;
use crate::utils::kafka::admin::{error_name, topic_name};
use crate::utils::kafka::conn::ResponseFuture;
use crate::utils::kafka::{Connection, TopicInfo, Versions};
use crate::utils::partitioner::{partition_for_key, Sticky};
use crate::utils::rate::RateLimiter;
use crate::utils::wait::{with_timeout, ABORT_POLL};

/// Records generated per loop turn at most, before looking at the network again.
const GENERATE_CHUNK: u64 = 512;
/// Shortest sleep between turns on a rate schedule (records due meanwhile go out together).
const MIN_TICK: Duration = Duration::from_micros(200);

/// What every producer of a run shares.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    pub topic: TopicInfo,
    pub versions: Versions,
    pub record_bytes: usize,
    pub acks: i16,
    pub batch_bytes: usize,
    pub linger: Duration,
    pub compression: Compression,
    pub keys: Option<u32>,
    pub buffer_bytes: usize,
    pub max_in_flight: usize,
    pub max_request_bytes: usize,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    pub finish: Finish,
    /// Idempotent or transactional producers (None: plain ones).
    pub eos: Option<EosConfig>,
}

/// One producer's part of the run.
#[derive(Debug, Clone)]
pub struct ProducerSpec {
    pub id: usize,
    /// Its share of `--records`.
    pub records: Option<u64>,
    /// Its share of `--rate`.
    pub rate: Option<RateLimiter>,
}

struct Batch {
    records: Vec<PendingRecord>,
    /// Estimated uncompressed bytes.
    est: usize,
    payload: usize,
    created: Instant,
}

impl Batch {
    fn new(now: Instant) -> Batch {
        Batch {
            records: Vec::new(),
            est: BATCH_HEADER_BYTES,
            payload: 0,
            created: now,
        }
    }
}

#[derive(Default)]
struct PartitionQueue {
    sealed: VecDeque<Batch>,
    open: Option<Batch>,
}

impl PartitionQueue {
    fn is_empty(&self) -> bool {
        self.next_est().is_none()
    }

    /// Estimated size of the batch that goes out next: the oldest sealed one, else the open one
    /// if it has records (None when the queue is empty).
    fn next_est(&self) -> Option<usize> {
        match self.sealed.front() {
            Some(b) => Some(b.est),
            None => self
                .open
                .as_ref()
                .filter(|b| !b.records.is_empty())
                .map(|b| b.est),
        }
    }
}

struct Node {
    conn: Rc<Connection>,
    /// Indexes into the topic's partitions led by this node.
    partitions: Vec<usize>,
    in_flight: Rc<Cell<usize>>,
    next_first: usize,
}

/// What the actor and its response tasks share.
#[derive(Default)]
struct Shared {
    buffered: Cell<usize>,
    notify: crate::utils::wait::Notify,
    first_failure: RefCell<Option<String>>,
    /// A batch failed since the transaction began (it is then aborted, not committed).
    txn_failed: Cell<bool>,
}

impl Shared {
    /// Keeps `why` if it is the first failure (told when the producer ends).
    fn note_failure(&self, why: &str) {
        self.first_failure
            .borrow_mut()
            .get_or_insert_with(|| why.to_string());
    }
}

/// Where record generation stands in a run: its schedule (`rate`; None for a closed loop), its
/// window, its target, and how far it got.
struct Generation {
    rate: Option<RateLimiter>,
    start: Instant,
    start_ns: u64,
    deadline: Option<Instant>,
    /// Records to generate in all (None: until the deadline).
    target: Option<u64>,
    generated: u64,
    /// Whether records are still to be generated.
    active: bool,
}

impl Generation {
    /// Generation for `spec`'s share of the run that starts at `start`.
    fn new(spec: &ProducerSpec, cfg: &ProducerConfig, start: Instant, m: &Metrics) -> Generation {
        let duration = cfg.finish.duration();
        // On a schedule with a duration: only the records scheduled inside the window.
        let scheduled_total = match (&spec.rate, duration) {
            (Some(r), Some(d)) => Some(r.count_before(d.as_nanos() as u64)),
            _ => None,
        };
        let target = match (spec.records, scheduled_total) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Generation {
            rate: spec.rate,
            start,
            start_ns: m.ns_since_origin(start),
            deadline: duration.map(|d| start + d),
            target,
            generated: 0,
            active: target != Some(0),
        }
    }

    /// Closed loop: generation ends at the deadline. On a schedule, `target` already holds
    /// exactly the records scheduled inside the window (the last ones may be generated just
    /// after it).
    fn end_at_deadline(&mut self, now: Instant) {
        if self.active && self.rate.is_none() && self.deadline.is_some_and(|d| now >= d) {
            self.active = false;
        }
    }

    /// Records due at `now` and not generated yet (closed loop: no limit), up to the target.
    fn due(&self, m: &Metrics, now: Instant) -> u64 {
        let mut want = match &self.rate {
            Some(r) => r
                .due(m.ns_since_origin(now).saturating_sub(self.start_ns))
                .saturating_sub(self.generated),
            None => u64::MAX,
        };
        if let Some(t) = self.target {
            want = want.min(t - self.generated);
        }
        want
    }

    /// The next record's send time, ns since the origin: its place on the schedule, or (closed
    /// loop) the moment it is generated.
    fn next_sched_ns(&self, m: &Metrics) -> u64 {
        match &self.rate {
            Some(r) => self.start_ns + r.scheduled_ns(self.generated),
            None => m.ns_since_origin(Instant::now()),
        }
    }

    /// When generation next has work (`room`: whether the buffer has room), and whether it has
    /// work right now (closed loop with room: generate again after yielding).
    fn wake(&self, room: bool, now: Instant) -> (Option<Instant>, bool) {
        match &self.rate {
            // With the buffer full, only a response can make progress: wait for it.
            Some(_) if !room => (None, false),
            Some(r) => {
                let next = self.start + Duration::from_nanos(r.scheduled_ns(self.generated));
                (Some(next.max(now + MIN_TICK)), false)
            }
            // Closed loop: the deadline ends generation.
            None => (self.deadline, room),
        }
    }
}

/// A batch that went out: what is needed to account for it.
struct SentBatch {
    partition: i32,
    sched_ns: Vec<u64>,
    payload: usize,
}

pub struct Producer {
    spec: ProducerSpec,
    cfg: Arc<ProducerConfig>,
    run: Arc<RunState>,
    meter: Rc<Meter>,
    nodes: Vec<Node>,
    queues: Vec<PartitionQueue>,
    sticky: Sticky,
    gen: RecordGen,
    shared: Rc<Shared>,
    /// Idempotent or transactional: identity, sequences, transaction.
    eos: Option<Eos>,
}

impl Producer {
    /// Connects to every leader of the topic.
    pub async fn connect(
        spec: ProducerSpec,
        cfg: Arc<ProducerConfig>,
        run: Arc<RunState>,
        meter: Rc<Meter>,
    ) -> Result<Producer> {
        let mut nodes: Vec<Node> = Vec::new();
        let leaders = cfg.topic.leaders();
        for &leader in &leaders {
            let addr = cfg.topic.leader_addr(leader)?;
            let conn = Connection::connect(addr, cfg.connect_timeout)
                .await
                .with_context(|| format!("producer {}", spec.id))?;
            nodes.push(Node {
                conn: Rc::new(conn),
                partitions: Vec::new(),
                in_flight: Rc::new(Cell::new(0)),
                next_first: spec.id,
            });
        }
        for (i, p) in cfg.topic.partitions.iter().enumerate() {
            let n = leaders.iter().position(|&l| l == p.leader).unwrap();
            nodes[n].partitions.push(i);
        }
        let partitions = cfg.topic.partitions.len();
        let eos = match &cfg.eos {
            None => None,
            Some(e) => {
                let t = Timeouts {
                    connect: cfg.connect_timeout,
                    request: cfg.request_timeout,
                };
                let eos = Eos::init(e, spec.id, &nodes[0].conn, partitions, t)
                    .await
                    .with_context(|| format!("producer {}", spec.id))?;
                Some(eos)
            }
        };
        let gen = RecordGen::new(
            cfg.record_bytes,
            cfg.keys,
            run.run_id,
            run.run_id ^ (spec.id as u64).wrapping_mul(0x9e37_79b9),
        );
        Ok(Producer {
            sticky: Sticky::new(spec.id, partitions),
            queues: (0..partitions).map(|_| PartitionQueue::default()).collect(),
            spec,
            cfg,
            run,
            meter,
            nodes,
            gen,
            shared: Rc::new(Shared::default()),
            eos,
        })
    }

    /// Generates records, batches them and sends the batches until the run's target or deadline
    /// (or an abort), then waits for the responses still due and signs off.
    pub async fn run(mut self) {
        let Some(start) = self.run.wait_start().await else {
            return;
        };
        let mut generation = Generation::new(&self.spec, &self.cfg, start, self.meter.metrics());
        while !self.run.aborted() {
            let now = Instant::now();
            generation.end_at_deadline(now);
            if generation.active && !self.txn_full() {
                self.generate(&mut generation, now);
            }
            let flush_all = !generation.active || self.buffer_full() || self.txn_full();
            if let Err(e) = self.add_to_txn().await {
                self.fail(format!("{e:#}"));
                break;
            }
            self.send_ready(Instant::now(), flush_all);
            if self.run.aborted() {
                break;
            }
            if self.queues.iter().all(|q| q.is_empty()) && self.in_flight() == 0 {
                // Everything sent is answered: a transaction with all its records (or the
                // last one) ends now, before anything else is generated.
                if self.txn_due(!generation.active) {
                    if let Err(e) = self.end_txn().await {
                        self.fail(format!("{e:#}"));
                        break;
                    }
                    continue;
                }
                if !generation.active {
                    break;
                }
            }
            let may_generate = generation.active && !self.txn_full();
            self.wait_for_work(&generation, may_generate, flush_all)
                .await;
        }
        self.finish().await;
    }

    /// Whether the transaction (if transactional) has taken all its records.
    fn txn_full(&self) -> bool {
        self.txn().is_some_and(|t| t.full())
    }

    fn txn(&self) -> Option<&Txn> {
        self.eos.as_ref().and_then(|e| e.txn.as_ref())
    }

    /// Whether the transaction is to end now that every batch is answered: it has records,
    /// and it is full or generation is over (`last`).
    fn txn_due(&self, last: bool) -> bool {
        self.txn()
            .is_some_and(|t| t.records > 0 && (t.full() || last))
    }

    /// Transactional: adds the partitions that have records waiting and are not in the
    /// transaction yet (awaited, so their first batches go out after it).
    async fn add_to_txn(&mut self) -> Result<()> {
        let Some(txn) = self.eos.as_mut().and_then(|e| e.txn.as_mut()) else {
            return Ok(());
        };
        let queues = &self.queues;
        let new = txn.to_add((0..queues.len()).filter(|&p| !queues[p].is_empty()));
        if new.is_empty() {
            return Ok(());
        }
        txn.add(&new, &self.cfg.topic).await
    }

    /// Ends the transaction: a commit, or an abort if one of its batches failed.
    async fn end_txn(&mut self) -> Result<()> {
        let commit = !self.shared.txn_failed.get();
        let txn = self
            .eos
            .as_mut()
            .and_then(|e| e.txn.as_mut())
            .expect("transactional");
        txn.end(commit, &self.meter).await?;
        self.shared.txn_failed.set(false);
        let m = self.meter.metrics();
        if commit {
            m.txn_committed.fetch_add(1, Ordering::Relaxed);
        } else {
            m.txn_aborted.fetch_add(1, Ordering::Relaxed);
            self.run.note(format!(
                "producer {}: transactions with failed batches were aborted",
                self.spec.id
            ));
        }
        Ok(())
    }

    /// Generates the records due now (at most [`GENERATE_CHUNK`], and only while the buffer has
    /// room) into their partitions' batches; ends generation once the target is reached.
    fn generate(&mut self, generation: &mut Generation, now: Instant) {
        let meter = self.meter.clone();
        let m = meter.metrics();
        let room = self.txn().map_or(u64::MAX, |t| t.room());
        let want = generation.due(m, now).min(GENERATE_CHUNK).min(room);
        let mut n = 0;
        while n < want && !self.buffer_full() {
            let sched_ns = generation.next_sched_ns(m);
            self.append(sched_ns, now);
            generation.generated += 1;
            n += 1;
        }
        self.meter.generated(n);
        if let Some(t) = self.eos.as_mut().and_then(|e| e.txn.as_mut()) {
            t.records += n;
        }
        if generation.target.is_some_and(|t| generation.generated >= t) {
            generation.active = false;
        }
    }

    /// Sends what is ready (see [`Producer::node_ready`]) on every connection, while it has
    /// fewer than `max_in_flight` requests out; a request that cannot be sent aborts the run.
    fn send_ready(&mut self, now: Instant, flush_all: bool) {
        for n in 0..self.nodes.len() {
            while self.nodes[n].in_flight.get() < self.cfg.max_in_flight
                && self.node_ready(n, now, flush_all)
            {
                if let Err(e) = self.send(n) {
                    self.fail(format!("{e:#}"));
                    break;
                }
            }
        }
    }

    /// Waits for the next thing to do: a record due (if it `may_generate`), a batch lingered,
    /// a response (responses notify). Never longer than [`ABORT_POLL`], so an abort is seen;
    /// closed-loop generation with room in the buffer only yields to the other tasks.
    async fn wait_for_work(&self, generation: &Generation, may_generate: bool, flush_all: bool) {
        let now = Instant::now();
        let (mut wake, busy) = match may_generate {
            true => generation.wake(!self.buffer_full(), now),
            false => (None, false),
        };
        if !flush_all {
            if let Some(due) = self.linger_due() {
                wake = Some(wake.map_or(due, |w| w.min(due)));
            }
        }
        if busy {
            glommio::executor().yield_task_queue_now().await;
            return;
        }
        let wait = wake
            .map(|w| w.saturating_duration_since(now))
            .unwrap_or(ABORT_POLL)
            .min(ABORT_POLL);
        if wait.is_zero() {
            glommio::executor().yield_task_queue_now().await;
        } else {
            with_timeout(wait, self.shared.notify.notified()).await;
        }
    }

    /// The earliest moment an open batch that could go out (its connection has room) has
    /// lingered long enough.
    fn linger_due(&self) -> Option<Instant> {
        self.nodes
            .iter()
            .filter(|node| node.in_flight.get() < self.cfg.max_in_flight)
            .flat_map(|node| node.partitions.iter())
            .filter_map(|&p| self.queues[p].open.as_ref())
            .filter(|b| !b.records.is_empty())
            .map(|b| b.created + self.cfg.linger)
            .min()
    }

    /// Waits for the responses still in flight unless the run is being cut short (an abort
    /// ends the wait within [`ABORT_POLL`]), tells the first failure, and signs off.
    async fn finish(self) {
        while self.in_flight() > 0 && !self.run.aborted() {
            with_timeout(ABORT_POLL, self.shared.notify.notified()).await;
        }
        if let Some(why) = self.shared.first_failure.borrow().as_ref() {
            eprintln!("loadgen: producer {}: {why}", self.spec.id);
        }
        self.run.producer_done();
    }

    /// Whether the records in batches and in flight have filled `buffer_bytes`.
    fn buffer_full(&self) -> bool {
        self.shared.buffered.get() >= self.cfg.buffer_bytes
    }

    fn in_flight(&self) -> usize {
        self.nodes.iter().map(|n| n.in_flight.get()).sum()
    }

    fn fail(&self, why: String) {
        self.shared.note_failure(&why);
        self.run.abort(format!("producer {}: {why}", self.spec.id));
    }

    /// Adds one record (scheduled at `sched_ns`) to its partition's batch.
    fn append(&mut self, sched_ns: u64, now: Instant) {
        let key = self.gen.key();
        let value = self.gen.value(sched_ns);
        let rec = PendingRecord {
            key,
            value,
            sched_ns,
        };
        let size = rec.batch_bytes();
        let payload = rec.payload_bytes();
        let keyed = rec.key.is_some();
        let mut p = match &rec.key {
            Some(k) => partition_for_key(k, self.queues.len()),
            None => self.sticky.current(),
        };
        // A record that does not fit closes the batch (and, without keys, moves on).
        if self.queues[p]
            .open
            .as_ref()
            .is_some_and(|b| !b.records.is_empty() && b.est + size > self.cfg.batch_bytes)
        {
            self.seal(p);
            if !keyed {
                p = self.sticky.current();
            }
        }
        let q = &mut self.queues[p];
        let b = q.open.get_or_insert_with(|| Batch::new(now));
        if b.records.is_empty() {
            b.created = now;
        }
        b.records.push(rec);
        b.est += size;
        b.payload += payload;
        self.shared
            .buffered
            .set(self.shared.buffered.get() + payload);
        // Without keys, close a batch as soon as the next record would not fit.
        if !keyed && b.est + size > self.cfg.batch_bytes {
            self.seal(p);
        }
    }

    fn seal(&mut self, p: usize) {
        let q = &mut self.queues[p];
        if let Some(b) = q.open.take() {
            if !b.records.is_empty() {
                q.sealed.push_back(b);
            }
        }
        if p == self.sticky.current() {
            self.sticky.advance();
        }
    }

    fn node_ready(&self, n: usize, now: Instant, flush_all: bool) -> bool {
        self.nodes[n].partitions.iter().any(|&p| {
            let q = &self.queues[p];
            !q.sealed.is_empty()
                || q.open.as_ref().is_some_and(|b| {
                    !b.records.is_empty() && (flush_all || b.created + self.cfg.linger <= now)
                })
        })
    }

    /// Sends one produce request to node `n` with one batch from each partition that has one.
    fn send(&mut self, n: usize) -> Result<()> {
        let taken = self.take_batches(n);
        let (data, sent) = self.encode(taken);
        if data.is_empty() {
            return Ok(());
        }
        let req = self.produce_request(data);
        self.dispatch(n, &req, sent)
    }

    /// Takes the batches of node `n`'s next request: the next batch of each of its partitions
    /// that has one, within `max_request_bytes` (but at least one). The partition to start at
    /// moves on by one each request, so none is always last to get room.
    fn take_batches(&mut self, n: usize) -> Vec<(usize, Batch)> {
        let parts = self.nodes[n].partitions.clone();
        let first = self.nodes[n].next_first;
        self.nodes[n].next_first = first.wrapping_add(1);
        let mut taken: Vec<(usize, Batch)> = Vec::new();
        let mut size = 0usize;
        for k in 0..parts.len() {
            let p = parts[(first + k) % parts.len()];
            let Some(est) = self.queues[p].next_est() else {
                continue;
            };
            if !taken.is_empty() && size + est > self.cfg.max_request_bytes {
                break;
            }
            size += est;
            taken.push((p, self.take_next(p)));
        }
        taken
    }

    /// Takes partition `p`'s next batch (see [`PartitionQueue::next_est`]). Taking the open
    /// batch of the sticky partition moves the sticky partitioner on, as sealing it would.
    fn take_next(&mut self, p: usize) -> Batch {
        if let Some(b) = self.queues[p].sealed.pop_front() {
            return b;
        }
        let b = self.queues[p]
            .open
            .take()
            .expect("next_est saw an open batch");
        if p == self.sticky.current() && self.cfg.keys.is_none() {
            self.sticky.advance();
        }
        b
    }

    /// Encodes each batch as its partition's entry of a produce request, keeping what is needed
    /// to account for it; a batch that cannot be encoded counts as errors and frees its buffer.
    /// Idempotent producers: each batch takes its partition's next sequence, once encoded.
    fn encode(
        &mut self,
        taken: Vec<(usize, Batch)>,
    ) -> (Vec<PartitionProduceData>, Vec<SentBatch>) {
        let origin_wall_ms = self.run.origin_wall_ms;
        let mut data = Vec::with_capacity(taken.len());
        let mut sent = Vec::with_capacity(taken.len());
        for (p, b) in taken {
            let partition = self.cfg.topic.partitions[p].id;
            let records = b.records.len() as u64;
            let id = self
                .eos
                .as_ref()
                .map_or(BatchIdentity::NONE, |e| e.seq.identity(p));
            match encode_batch(&b.records, origin_wall_ms, self.cfg.compression, id) {
                Ok(bytes) => {
                    if let Some(e) = self.eos.as_mut() {
                        e.seq.advance(p, b.records.len());
                    }
                    data.push(
                        PartitionProduceData::default()
                            .with_index(partition)
                            .with_records(Some(bytes)),
                    );
                    sent.push(SentBatch {
                        partition,
                        sched_ns: b.records.iter().map(|r| r.sched_ns).collect(),
                        payload: b.payload,
                    });
                }
                Err(e) => {
                    self.meter.error("EncodeFailed", records);
                    self.shared.txn_failed.set(true);
                    self.shared
                        .buffered
                        .set(self.shared.buffered.get() - b.payload);
                    self.shared.note_failure(&format!("{e:#}"));
                }
            }
        }
        (data, sent)
    }

    /// The produce request carrying `data` to the topic, with the run's acks and timeout (and
    /// the transactional id of a transactional producer).
    fn produce_request(&self, data: Vec<PartitionProduceData>) -> ProduceRequest {
        let transactional_id = self
            .txn()
            .map(|t| TransactionalId(StrBytes::from_string(t.producer.transactional_id.clone())));
        ProduceRequest::default()
            .with_transactional_id(transactional_id)
            .with_acks(self.cfg.acks)
            .with_timeout_ms(self.cfg.request_timeout.as_millis().min(i32::MAX as u128) as i32)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic_name(&self.cfg.topic.name))
                .with_partition_data(data)])
    }

    /// Queues `req` on node `n`'s connection (pipelined: it counts as in flight until its
    /// response, or for acks=0 its write, completes) and leaves the accounting for `sent` to a
    /// task. A request that cannot be queued fails its batches and is returned as the error.
    fn dispatch(&self, n: usize, req: &ProduceRequest, sent: Vec<SentBatch>) -> Result<()> {
        let node = &self.nodes[n];
        let conn = node.conn.clone();
        let in_flight = node.in_flight.clone();
        let version = self.cfg.versions.produce;
        in_flight.set(in_flight.get() + 1);
        let task = Completion {
            shared: self.shared.clone(),
            meter: self.meter.clone(),
            run: self.run.clone(),
            in_flight,
            sent,
            producer: self.spec.id,
        };
        let queued = if self.cfg.acks == 0 {
            conn.send_only(ApiKey::Produce, version, req)
                .map(|(written, len)| (Outstanding::Write(written), len))
        } else {
            conn.start(ApiKey::Produce, version, req).map(|fut| {
                let len = fut.request_bytes;
                (Outstanding::Response(conn, fut), len)
            })
        };
        let (outstanding, len) = match queued {
            Ok(v) => v,
            Err(e) => {
                task.failed("ConnectionError", &format!("{e:#}"));
                return Err(e);
            }
        };
        self.meter.wire(Flow::Produced, len as u64);
        let timeout = self.cfg.request_timeout;
        glommio::spawn_local(task.complete(outstanding, timeout)).detach();
        Ok(())
    }
}

/// What a queued produce request still waits for.
enum Outstanding {
    /// acks=0: its write to the socket (the connection is not kept alive for it).
    Write(oneshot::Receiver<()>),
    /// Its response on this connection.
    Response(Rc<Connection>, ResponseFuture),
}

/// Accounts for one produce request when its response (or failure) comes.
struct Completion {
    shared: Rc<Shared>,
    meter: Rc<Meter>,
    run: Arc<RunState>,
    in_flight: Rc<Cell<usize>>,
    sent: Vec<SentBatch>,
    producer: usize,
}

impl Completion {
    /// Waits (at most `timeout`) for what the request still waits for and accounts for it.
    async fn complete(self, outstanding: Outstanding, timeout: Duration) {
        match outstanding {
            Outstanding::Write(written) => self.written(written, timeout).await,
            Outstanding::Response(conn, fut) => self.answered(conn, fut, timeout).await,
        }
    }

    /// acks=0: the request counts as acknowledged once written; a write that fails or times
    /// out fails its records (without aborting the run).
    async fn written(self, written: oneshot::Receiver<()>, timeout: Duration) {
        match with_timeout(timeout, written).await {
            Some(Ok(())) => self.acked(None),
            Some(Err(_)) => self.failed("ConnectionError", "connection closed while writing"),
            None => self.failed("RequestTimedOut", "write timed out"),
        }
    }

    /// Times and accounts for the response; a request that gets none aborts the run.
    async fn answered(self, conn: Rc<Connection>, fut: ResponseFuture, timeout: Duration) {
        let sent_at = fut.sent_at;
        match conn.wait::<ProduceResponse>(fut, timeout).await {
            Ok((resp, _)) => {
                let now = Instant::now();
                self.meter.latency_ns(
                    Lat::Request,
                    now.saturating_duration_since(sent_at).as_nanos() as u64,
                );
                self.acked(Some(&resp));
            }
            Err(e) => {
                let why = format!("{e:#}");
                let kind = if why.contains("timed out") {
                    "RequestTimedOut"
                } else {
                    "ConnectionError"
                };
                self.run.abort(format!("producer {}: {why}", self.producer));
                self.failed(kind, &why);
            }
        }
    }

    /// Success (with per-partition error codes from `resp`; None for acks=0).
    fn acked(self, resp: Option<&ProduceResponse>) {
        let now = Instant::now();
        let now_ns = self.meter.metrics().ns_since_origin(now);
        let mut freed = 0;
        for b in &self.sent {
            let code = match resp {
                None => Some(0),
                Some(r) => r
                    .responses
                    .iter()
                    .flat_map(|t| t.partition_responses.iter())
                    .find(|p| p.index == b.partition)
                    .map(|p| p.error_code),
            };
            let n = b.sched_ns.len() as u64;
            match code {
                Some(0) => {
                    self.meter
                        .latencies_since(Lat::Produce, now_ns, b.sched_ns.iter().copied());
                    self.meter.ok(Flow::Produced, n, b.payload as u64, now);
                }
                Some(c) => {
                    self.meter.error(&error_name(c), n);
                    self.shared.txn_failed.set(true);
                }
                None => {
                    self.meter.error("MissingPartitionResponse", n);
                    self.shared.txn_failed.set(true);
                }
            }
            freed += b.payload;
        }
        self.release(freed);
    }

    fn failed(self, kind: &str, why: &str) {
        self.shared.txn_failed.set(true);
        let mut freed = 0;
        for b in &self.sent {
            self.meter.error(kind, b.sched_ns.len() as u64);
            freed += b.payload;
        }
        self.shared.note_failure(why);
        self.release(freed);
    }

    fn release(&self, freed: usize) {
        self.shared
            .buffered
            .set(self.shared.buffered.get().saturating_sub(freed));
        self.in_flight.set(self.in_flight.get() - 1);
        self.shared.notify.notify();
    }
}
