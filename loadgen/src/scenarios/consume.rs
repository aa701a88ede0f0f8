//! `loadgen consume`: consumers only, every partition by explicit assignment, or (`--group`) as
//! members of a consumer group that the broker assigns partitions to (KIP-848 protocol).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use super::{
    deal, discover, elapsed, launch, on_executor, supervise, threads, ActorConfigs, ActorSpec,
    RunState,
};
use crate::actors::consumer::{GroupConfig, GroupStats};
use crate::actors::{ConsumerConfig, ConsumerSpec};
use crate::analytics::metrics::{Flow, Lat};
use crate::analytics::report::{LatencySummary, Report};
use crate::args::ConsumeArgs;
use crate::utils::kafka::group::find_coordinator;
use crate::utils::kafka::Connection;

/// Fetch max_bytes (the Java consumer's fetch.max.bytes default).
pub const FETCH_MAX_BYTES: i32 = 50 << 20;
/// How often group members commit their positions.
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);
/// The rebalance timeout group members announce (a member gives partitions up at once).
const REBALANCE_TIMEOUT_MS: i32 = 30_000;
/// How long setup waits for the group coordinator to become available.
const COORDINATOR_WAIT: Duration = Duration::from_secs(30);

pub fn consumer_specs(partitions: &[i32], consumers: usize) -> Vec<ConsumerSpec> {
    let n = consumers.min(partitions.len()).max(1);
    deal(partitions, n)
        .into_iter()
        .enumerate()
        .filter(|(_, p)| !p.is_empty())
        .map(|(id, partitions)| ConsumerSpec { id, partitions })
        .collect()
}

/// Members of a group: one per consumer actor, with no partitions until the group assigns some.
pub fn member_specs(consumers: usize) -> Vec<ConsumerSpec> {
    (0..consumers.max(1))
        .map(|id| ConsumerSpec {
            id,
            partitions: vec![],
        })
        .collect()
}

pub fn run(args: &ConsumeArgs) -> Result<Report> {
    let common = &args.common;
    let finish = args.finish.finish();
    let run = Arc::new(RunState::new(0, finish.records()));
    let (cluster, coordinator) = {
        let (b, t) = (common.bootstrap.clone(), common.topic.clone());
        let (ct, rt) = (common.connect_timeout(), common.request_timeout());
        let group = args.group.clone();
        on_executor(common, move || async move {
            let cluster = discover(b.clone(), t, None, false, ct, rt).await?;
            let Some(group) = group else {
                return Ok((cluster, None));
            };
            let v = cluster.versions.group.ok_or_else(|| {
                anyhow!("the broker does not offer consumer groups in versions this client speaks (FindCoordinator v1-6, ConsumerGroupHeartbeat v0-1, OffsetCommit v9, OffsetFetch v8-9)")
            })?;
            if cluster.versions.metadata < 10
                || cluster.topic.id.bytes().all(|c| c == b'0' || c == b'-')
            {
                bail!(
                    "consumer groups need topic ids (Metadata v10+); the broker gave none for {}",
                    cluster.topic.name
                );
            }
            // Ask the first bootstrap address that answers where the coordinator is.
            let mut last_err = None;
            for addr in b.split(',').map(str::trim) {
                let conn = match Connection::connect(addr, ct).await {
                    Ok(c) => c,
                    Err(e) => {
                        last_err = Some(e);
                        continue;
                    }
                };
                let c = find_coordinator(&conn, &v, &group, rt, COORDINATOR_WAIT.max(rt))
                    .await
                    .with_context(|| format!("finding the coordinator of group {group}"))?;
                return Ok((cluster, Some(c)));
            }
            Err(last_err.unwrap_or_else(|| anyhow!("no bootstrap address")))
        })?
    };
    let partitions: Vec<i32> = cluster.topic.partitions.iter().map(|p| p.id).collect();
    let stats = Arc::new(Mutex::new(GroupStats::default()));
    let group = match (&args.group, coordinator) {
        (Some(g), Some(coordinator)) => Some(GroupConfig {
            group: g.clone(),
            coordinator,
            versions: cluster.versions.group.expect("checked in setup"),
            rebalance_timeout_ms: REBALANCE_TIMEOUT_MS,
            commit_interval: COMMIT_INTERVAL,
            stats: stats.clone(),
        }),
        _ => None,
    };
    let specs = match &group {
        Some(_) => member_specs(args.consumers as usize),
        None => consumer_specs(&partitions, args.consumers as usize),
    };
    let t = threads(common).min(specs.len());
    let placement = deal(
        &specs
            .into_iter()
            .map(ActorSpec::Consumer)
            .collect::<Vec<_>>(),
        t,
    );
    let cfg = ConsumerConfig {
        topic: cluster.topic.clone(),
        versions: cluster.versions,
        from: args.from.timestamp(),
        max_wait_ms: args.fetch_max_wait_ms as i32,
        partition_max_bytes: args.partition_max_bytes as i32,
        max_bytes: FETCH_MAX_BYTES,
        request_timeout: common.request_timeout(),
        connect_timeout: common.connect_timeout(),
        finish,
        e2e: false,
        group: group.clone(),
    };
    let cfgs = ActorConfigs {
        producer: None,
        consumer: Some(Arc::new(cfg)),
    };
    let launched = launch(common, &run, placement, cfgs)?;
    let outcome = supervise(common, &run, launched, Flow::Consumed, Lat::Fetch, finish);

    let m = &run.metrics;
    let agg = m.snapshot();
    let records = m.flow(Flow::Consumed).records.load(Ordering::Relaxed);
    let expected = finish.records();
    let shortfall = expected.map_or(0, |e| e.saturating_sub(records));
    let mut parameters = serde_json::to_value(args)?;
    parameters["partitions_used"] = partitions.len().into();
    parameters["threads_used"] = t.into();
    parameters["versions"] = serde_json::to_value(cluster.versions)?;
    let mut extra = vec![];
    if let Some(g) = &group {
        parameters["group_versions"] = serde_json::to_value(g.versions)?;
        let s = stats.lock().unwrap().clone();
        extra.push((
            "group".to_string(),
            serde_json::json!({
                "coordinator": g.coordinator,
                "records_by_partition": s.records,
                "started_at": s.started_at,
                "committed": s.committed,
                "heartbeats": s.heartbeats,
                "assignments": s.assignments,
                "commit_errors": s.commit_errors,
            }),
        ));
    }
    Ok(Report {
        command: "consume".into(),
        parameters,
        records,
        bytes: m.flow(Flow::Consumed).bytes.load(Ordering::Relaxed),
        wire_bytes: m.flow(Flow::Consumed).wire_bytes.load(Ordering::Relaxed),
        elapsed_s: elapsed(&run, Flow::Consumed, finish, &outcome).as_secs_f64(),
        latency_kind: "fetch request sent → response (long poll included)".into(),
        latency: LatencySummary::of(&agg.latency[Lat::Fetch as usize]),
        other_latencies: vec![],
        errors: m.errors.load(Ordering::Relaxed),
        error_kinds: agg.error_kinds.clone(),
        expected,
        shortfall,
        aborted: run.abort_reason(),
        series: agg.series[Flow::Consumed as usize].clone(),
        extra,
        notes: run.notes(),
    })
}
