//! Scenarios (produce, consume, e2e) and what they share: the run state every actor sees, the
//! setup step, starting actors on glommio executors, supervising the run (progress line, stall
//! and deadline watchdogs) and turning the measurements into a report.

pub mod consume;
pub mod e2e;
pub mod produce;

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use glommio::{LocalExecutorBuilder, Placement};
use serde::Serialize;
use serde_json::Value;

use crate::actors::{
    Consumer, ConsumerConfig, ConsumerSpec, Producer, ProducerConfig, ProducerSpec,
};
use crate::analytics::metrics::{Aggregate, Flow, Lat, Meter, Metrics};
use crate::analytics::progress::Progress;
use crate::analytics::report::{LatencySummary, Report};
use crate::args::Common;
use crate::utils::finish::{Budget, Finish};
use crate::utils::kafka::{admin, Connection, TopicInfo, Versions};

/// How often executors move their measurements into the run-wide aggregate.
const FLUSH_EVERY: Duration = Duration::from_millis(500);
/// After the duration of a timed run, how long outstanding work may still finish.
const DRAIN_GRACE: Duration = Duration::from_secs(5);
/// After an abort, how long to wait for executors to wind down before reporting anyway.
const ABORT_GRACE: Duration = Duration::from_secs(3);
/// How long setup waits for a topic's partitions to have leaders.
const TOPIC_WAIT: Duration = Duration::from_secs(30);

/// What every actor of a run sees (shared across executors).
pub struct RunState {
    pub metrics: Arc<Metrics>,
    pub abort_flag: AtomicBool,
    abort_reason: Mutex<Option<String>>,
    notes: Mutex<Vec<String>>,
    /// Distinguishes this run's records from others' (bytes 8..16 of each value).
    pub run_id: u64,
    /// Wall clock at the origin, ms since the Unix epoch (for record CreateTime).
    pub origin_wall_ms: i64,
    pub producers: usize,
    pub producers_done: AtomicUsize,
    /// consume --records: the total still to read.
    pub consume_budget: Option<Budget>,
}

impl RunState {
    pub fn new(producers: usize, consume_records: Option<u64>) -> RunState {
        let origin = Instant::now();
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        RunState {
            metrics: Arc::new(Metrics::new(origin)),
            abort_flag: AtomicBool::new(false),
            abort_reason: Mutex::new(None),
            notes: Mutex::new(Vec::new()),
            run_id: (wall.as_nanos() as u64) ^ ((std::process::id() as u64) << 32) | 1,
            origin_wall_ms: wall.as_millis() as i64,
            producers,
            producers_done: AtomicUsize::new(0),
            consume_budget: consume_records.map(Budget::new),
        }
    }

    /// Ends the run early; the first reason is the one reported.
    pub fn abort(&self, why: impl Into<String>) {
        let mut r = self.abort_reason.lock().unwrap();
        if r.is_none() {
            *r = Some(why.into());
        }
        self.abort_flag.store(true, Ordering::Release);
    }

    pub fn aborted(&self) -> bool {
        self.abort_flag.load(Ordering::Acquire)
    }

    pub fn abort_reason(&self) -> Option<String> {
        self.abort_reason.lock().unwrap().clone()
    }

    /// Something worth telling at the end (printed once per distinct message).
    pub fn note(&self, msg: String) {
        let mut n = self.notes.lock().unwrap();
        if n.len() < 20 && !n.contains(&msg) {
            n.push(msg);
        }
    }

    pub fn notes(&self) -> Vec<String> {
        self.notes.lock().unwrap().clone()
    }

    /// Waits for the start signal; None if the run is aborted first.
    pub async fn wait_start(&self) -> Option<Instant> {
        loop {
            if self.aborted() {
                return None;
            }
            if let Some(s) = self.metrics.start.get() {
                crate::utils::wait::sleep_until(*s).await;
                return Some(*s);
            }
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
    }

    pub fn producer_done(&self) {
        self.producers_done.fetch_add(1, Ordering::AcqRel);
    }

    /// e2e: every producer finished and every record they got acknowledged has been consumed.
    pub fn e2e_caught_up(&self) -> bool {
        self.producers_done.load(Ordering::Acquire) >= self.producers
            && self
                .metrics
                .flow(Flow::Consumed)
                .records
                .load(Ordering::Acquire)
                >= self
                    .metrics
                    .flow(Flow::Produced)
                    .records
                    .load(Ordering::Acquire)
    }
}

/// An actor to start on an executor.
#[derive(Debug, Clone)]
pub enum ActorSpec {
    Producer(ProducerSpec),
    Consumer(ConsumerSpec),
}

#[derive(Clone, Default)]
pub struct ActorConfigs {
    pub producer: Option<Arc<ProducerConfig>>,
    pub consumer: Option<Arc<ConsumerConfig>>,
}

/// The executors to use: `--threads`, or one per CPU.
fn threads(common: &Common) -> usize {
    common
        .threads
        .map(|t| t as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn builder(common: &Common, name: String, cpu: Option<usize>) -> LocalExecutorBuilder {
    let placement = match cpu {
        Some(c) => Placement::Fixed(c),
        None => Placement::Unbound,
    };
    LocalExecutorBuilder::new(placement)
        .name(&name)
        .io_memory(common.io_memory_kib as usize * 1024)
}

/// Runs `f` on a short-lived executor and returns its result (the setup step: bootstrap,
/// ApiVersions, topic creation and metadata). Every step inside is bounded by its timeout.
pub fn on_executor<T, F, Fut>(common: &Common, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T>> + 'static,
{
    let handle = builder(common, "loadgen-setup".into(), None)
        .spawn(f)
        .map_err(|e| anyhow!("cannot start a glommio executor: {e} (locked memory: try a smaller --io-memory-kib)"))?;
    handle
        .join()
        .map_err(|e| anyhow!("setup executor failed: {e}"))?
}

/// What setup found.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub versions: Versions,
    pub topic: TopicInfo,
}

/// Where setup reaches the cluster, from the command line (owned, so it can move onto the setup
/// executor).
#[derive(Debug, Clone)]
pub struct Bootstrap {
    /// Comma-separated "host:port" addresses.
    pub addrs: String,
    pub topic: String,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
}

impl Bootstrap {
    /// The bootstrap addresses, topic and timeouts of the command line.
    pub fn of(common: &Common) -> Bootstrap {
        Bootstrap {
            addrs: common.bootstrap.clone(),
            topic: common.topic.clone(),
            connect_timeout: common.connect_timeout(),
            request_timeout: common.request_timeout(),
        }
    }

    /// Connects to the first bootstrap address that answers; returns it and its address (or
    /// the last connect error).
    pub async fn connect(&self) -> Result<(&str, Connection)> {
        let mut last_err = None;
        for addr in self.addrs.split(',').map(str::trim) {
            match Connection::connect(addr, self.connect_timeout).await {
                Ok(conn) => return Ok((addr, conn)),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow!("no bootstrap address")))
    }

    /// Connects to the first bootstrap address that answers, learns the API versions and makes
    /// sure the topic is there (creating it when `partitions` is given and it is missing).
    pub async fn discover(&self, partitions: Option<i32>, auto_create: bool) -> Result<Cluster> {
        let (addr, conn) = self.connect().await?;
        let versions = admin::api_versions(&conn, self.request_timeout)
            .await
            .with_context(|| format!("ApiVersions with {addr}"))?;
        let topic = admin::ensure_topic(
            &conn,
            &versions,
            &self.topic,
            partitions,
            auto_create,
            self.request_timeout,
            TOPIC_WAIT.max(self.request_timeout),
        )
        .await?;
        Ok(Cluster { versions, topic })
    }
}

/// The setup step of the scenarios that produce: API versions and the topic, created with
/// `partitions` partitions if it is missing.
pub fn setup_topic(common: &Common, partitions: Option<i32>) -> Result<Cluster> {
    let bootstrap = Bootstrap::of(common);
    on_executor(common, move || async move {
        bootstrap.discover(partitions, true).await
    })
}

/// Executors started and connected, waiting for the start signal.
struct Launched {
    executors: usize,
    done: mpsc::Receiver<()>,
}

/// Sends on drop, so the main thread learns an executor ended even if it panicked.
struct DoneGuard(mpsc::Sender<()>);
impl Drop for DoneGuard {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// Starts one executor per non-empty entry of `placement`, connects every actor, and returns once
/// all are connected (or the first failure).
fn launch(
    common: &Common,
    run: &Arc<RunState>,
    placement: Vec<Vec<ActorSpec>>,
    cfgs: ActorConfigs,
) -> Result<Launched> {
    let (ready_tx, ready_rx) = mpsc::channel::<std::result::Result<(), String>>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    // The CPUs this process may run on (taskset): executors are pinned among them, never to
    // a CPU outside (in bench.sh's pinned layout, the broker's).
    let mut cpus: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    cpus.sort_unstable();
    let mut executors = 0;
    for (i, actors) in placement.into_iter().enumerate() {
        if actors.is_empty() {
            continue;
        }
        let run = run.clone();
        let cfgs = cfgs.clone();
        let ready = ready_tx.clone();
        let done = DoneGuard(done_tx.clone());
        let cpu = (!common.no_pin && !cpus.is_empty()).then(|| cpus[i % cpus.len()]);
        let spawn = |cpu| {
            let run = run.clone();
            let cfgs = cfgs.clone();
            let ready = ready.clone();
            let actors = actors.clone();
            builder(common, format!("loadgen-{i}"), cpu).spawn(move || async move {
                executor_main(actors, cfgs, run, ready).await;
            })
        };
        let handle = match spawn(cpu) {
            Ok(h) => Ok(h),
            // Pinning can fail (CPU outside the affinity mask): run unpinned instead.
            Err(_) if cpu.is_some() => spawn(None),
            Err(e) => Err(e),
        }
        .map_err(|e| {
            anyhow!("cannot start executor {i}: {e} (locked memory: try a smaller --io-memory-kib)")
        })?;
        // Tell the main thread when the executor thread ends.
        std::thread::spawn(move || {
            let _done = done;
            let _ = handle.join();
        });
        executors += 1;
    }
    drop(ready_tx);
    // A producer connects to its leaders and, when transactional, finds its coordinator,
    // connects to it and gets its producer id there.
    let limit =
        common.connect_timeout() * 2 + common.request_timeout() * 3 + Duration::from_secs(5);
    let deadline = Instant::now() + limit;
    for _ in 0..executors {
        let left = deadline.saturating_duration_since(Instant::now());
        match ready_rx.recv_timeout(left) {
            Ok(Ok(())) => {}
            Ok(Err(why)) => {
                run.abort(why.clone());
                bail!("{why}");
            }
            Err(_) => {
                run.abort("connecting timed out");
                bail!("actors did not connect within {limit:?}");
            }
        }
    }
    Ok(Launched {
        executors,
        done: done_rx,
    })
}

async fn executor_main(
    actors: Vec<ActorSpec>,
    cfgs: ActorConfigs,
    run: Arc<RunState>,
    ready: mpsc::Sender<std::result::Result<(), String>>,
) {
    let meter = Rc::new(Meter::new(run.metrics.clone()));
    let mut runs: Vec<Pin<Box<dyn Future<Output = ()>>>> = Vec::new();
    for a in actors {
        let connected: Result<Pin<Box<dyn Future<Output = ()>>>> = match a {
            ActorSpec::Producer(spec) => {
                let cfg = cfgs.producer.clone().expect("producer config");
                Producer::connect(spec, cfg, run.clone(), meter.clone())
                    .await
                    .map(|p| Box::pin(p.run()) as Pin<Box<dyn Future<Output = ()>>>)
            }
            ActorSpec::Consumer(spec) => {
                let cfg = cfgs.consumer.clone().expect("consumer config");
                Consumer::connect(spec, cfg, run.clone(), meter.clone())
                    .await
                    .map(|c| Box::pin(c.run()) as Pin<Box<dyn Future<Output = ()>>>)
            }
        };
        match connected {
            Ok(f) => runs.push(f),
            Err(e) => {
                let _ = ready.send(Err(format!("{e:#}")));
                return;
            }
        }
    }
    let _ = ready.send(Ok(()));
    let flusher = {
        let meter = meter.clone();
        glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(FLUSH_EVERY).await;
                meter.flush();
            }
        })
    };
    let tasks: Vec<_> = runs.into_iter().map(glommio::spawn_local).collect();
    for t in tasks {
        t.await;
    }
    drop(flusher);
    meter.flush();
}

/// How supervision ended.
struct Outcome {
    end: Instant,
}

/// Starts the run, prints progress about once a second, and ends it: when every executor is
/// done, or on a stall (nothing completes for `--stall-timeout-s`, records runs), or at
/// `hard_deadline` (timed runs: the duration plus a grace period), after which executors get a
/// few seconds to wind down and are then left behind.
fn supervise(
    common: &Common,
    run: &Arc<RunState>,
    launched: Launched,
    progress_flow: Flow,
    progress_lat: Lat,
    finish: Finish,
) -> Outcome {
    let m = run.metrics.clone();
    let start = Instant::now() + Duration::from_millis(5);
    m.start.set(start).expect("start set once");
    let hard_deadline = finish.duration().map(|d| start + d + DRAIN_GRACE);
    let stall = common.stall_timeout();
    let mut progress = Progress::new(progress_flow, progress_lat);
    let mut next_tick = start + Duration::from_secs(1);
    let mut finished = 0;
    let mut last_count = 0u64;
    let mut last_change = start;
    let mut abort_seen: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let wait = next_tick
            .saturating_duration_since(now)
            .min(Duration::from_millis(100));
        match launched.done.recv_timeout(wait) {
            Ok(()) => {
                finished += 1;
                if finished >= launched.executors {
                    break;
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        let now = Instant::now();
        if now >= next_tick {
            if !common.quiet {
                if let Some(line) = progress.line(&m, now) {
                    eprintln!("{line}");
                }
            }
            next_tick += Duration::from_secs(1);
            if next_tick < now {
                next_tick = now + Duration::from_secs(1);
            }
        }
        let count = m.flow(Flow::Produced).records.load(Ordering::Relaxed)
            + m.flow(Flow::Consumed).records.load(Ordering::Relaxed)
            + m.errors.load(Ordering::Relaxed);
        if count != last_count {
            last_count = count;
            last_change = now;
        } else if finish.records().is_some() && now - last_change > stall && !run.aborted() {
            run.abort(format!(
                "no record completed for {:.1} s (--stall-timeout-s)",
                stall.as_secs_f64()
            ));
        }
        if let Some(d) = hard_deadline {
            if now >= d && !run.aborted() {
                run.abort(format!(
                    "work still outstanding {:.1} s after the duration ended",
                    DRAIN_GRACE.as_secs_f64()
                ));
            }
        }
        if run.aborted() {
            let seen = *abort_seen.get_or_insert(now);
            if now - seen > ABORT_GRACE {
                break;
            }
        }
    }
    Outcome {
        end: Instant::now(),
    }
}

/// What a run is watched by: the flow whose records it counts and the latency it reports first
/// (the progress line shows the same two), and how it finishes.
#[derive(Debug, Clone, Copy)]
pub struct Watch {
    pub flow: Flow,
    pub lat: Lat,
    pub finish: Finish,
}

/// A run that has ended: its measurements, read once, for the report.
pub struct Ended {
    run: Arc<RunState>,
    /// Every executor's histograms, series and error kinds, merged.
    agg: Aggregate,
    /// Executors used.
    threads: usize,
    watch: Watch,
    outcome: Outcome,
}

/// Deals `actors` round-robin over the executors (no more executors than actors), starts and
/// connects them, and supervises the run to its end.
pub fn run_actors(
    common: &Common,
    run: &Arc<RunState>,
    actors: Vec<ActorSpec>,
    cfgs: ActorConfigs,
    watch: Watch,
) -> Result<Ended> {
    let threads = threads(common).min(actors.len());
    let placement = deal(&actors, threads);
    let launched = launch(common, run, placement, cfgs)?;
    let outcome = supervise(common, run, launched, watch.flow, watch.lat, watch.finish);
    Ok(Ended {
        run: run.clone(),
        agg: run.metrics.snapshot(),
        threads,
        watch,
        outcome,
    })
}

impl Ended {
    /// Records completed in `flow`.
    pub fn records(&self, flow: Flow) -> u64 {
        self.run.metrics.flow(flow).records.load(Ordering::Relaxed)
    }

    /// Records that failed.
    pub fn errors(&self) -> u64 {
        self.run.metrics.errors.load(Ordering::Relaxed)
    }

    /// Transactions committed and aborted.
    pub fn transactions(&self) -> (u64, u64) {
        let m = &self.run.metrics;
        (
            m.txn_committed.load(Ordering::Relaxed),
            m.txn_aborted.load(Ordering::Relaxed),
        )
    }

    /// Bytes on the wire of `flow`: produce request frames, or fetch response frames.
    pub fn wire_bytes(&self, flow: Flow) -> u64 {
        self.run
            .metrics
            .flow(flow)
            .wire_bytes
            .load(Ordering::Relaxed)
    }

    /// Percentiles of latency `lat`.
    pub fn latency(&self, lat: Lat) -> LatencySummary {
        LatencySummary::of(&self.agg.latency[lat as usize])
    }

    /// The report's parameters: the command line `args` (every option, defaults included)
    /// plus the partitions, executors and API versions used.
    pub fn parameters(&self, args: &impl Serialize, cluster: &Cluster) -> Result<Value> {
        let mut parameters = serde_json::to_value(args)?;
        parameters["partitions_used"] = cluster.topic.partitions.len().into();
        parameters["threads_used"] = self.threads.into();
        parameters["versions"] = serde_json::to_value(cluster.versions)?;
        Ok(parameters)
    }

    /// The report of `command` as far as the measurements give it: the watched flow's
    /// records, bytes and wire bytes over the time it took, the watched latency, errors, the
    /// series, why the run was cut short, notes. What only the scenario knows is left empty
    /// for it to fill in: `latency_kind`, `other_latencies`, `expected`, `shortfall`, `extra`.
    pub fn report(&self, command: &str, parameters: Value) -> Report {
        let Watch { flow, lat, finish } = self.watch;
        Report {
            command: command.into(),
            parameters,
            records: self.records(flow),
            bytes: self.run.metrics.flow(flow).bytes.load(Ordering::Relaxed),
            wire_bytes: self.wire_bytes(flow),
            elapsed_s: elapsed(&self.run, flow, finish, &self.outcome).as_secs_f64(),
            latency_kind: String::new(),
            latency: self.latency(lat),
            other_latencies: vec![],
            errors: self.errors(),
            error_kinds: self.agg.error_kinds.clone(),
            expected: None,
            shortfall: 0,
            aborted: self.run.abort_reason(),
            series: self.agg.series[flow as usize].clone(),
            extra: vec![],
            notes: self.run.notes(),
        }
    }
}

/// Seconds the run is measured over: to the last completion of `flow` (records runs), or the
/// duration (timed runs; longer if completions went on after it), never past the end.
fn elapsed(run: &RunState, flow: Flow, finish: Finish, outcome: &Outcome) -> Duration {
    let m = &run.metrics;
    let start = *m.start.get().expect("started");
    let last = m.last(flow);
    let end = match finish {
        Finish::Records(_) => last.unwrap_or(outcome.end).min(outcome.end),
        // A timed run lasts its duration even if its last records (on a slow schedule) were done
        // before the end, unless it was cut short.
        Finish::Duration(d) if run.aborted() => last
            .map_or(start + d, |l| l.max(start + d))
            .min(outcome.end),
        Finish::Duration(d) => last.map_or(start + d, |l| l.max(start + d)),
    };
    end.saturating_duration_since(start)
}

/// Deals `items` round-robin into `n` groups.
pub fn deal<T: Clone>(items: &[T], n: usize) -> Vec<Vec<T>> {
    let mut out = vec![Vec::new(); n];
    for (i, x) in items.iter().enumerate() {
        out[i % n].push(x.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dealing() {
        assert_eq!(deal(&[1, 2, 3, 4, 5], 2), vec![vec![1, 3, 5], vec![2, 4]]);
        assert_eq!(deal(&[1], 3), vec![vec![1], vec![], vec![]]);
    }

    #[test]
    fn abort_keeps_the_first_reason() {
        let r = RunState::new(1, None);
        assert!(!r.aborted());
        r.abort("first");
        r.abort("second");
        assert!(r.aborted());
        assert_eq!(r.abort_reason().as_deref(), Some("first"));
    }
}
