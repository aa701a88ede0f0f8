//! `loadgen consume`: consumers only, every partition by explicit assignment, or (`--group`) as
//! members of a consumer group that the broker assigns partitions to (KIP-848 protocol).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

use super::{
    deal, on_executor, run_actors, ActorConfigs, ActorSpec, Bootstrap, Cluster, RunState, Watch,
};
use crate::actors::consumer::{GroupConfig, GroupStats};
use crate::actors::{ConsumerConfig, ConsumerSpec};
use crate::analytics::metrics::{Flow, Lat};
use crate::analytics::report::Report;
use crate::args::{Common, ConsumeArgs};
use crate::utils::kafka::group::{find_coordinator, KEY_TYPE_GROUP};

/// Fetch max_bytes (the Java consumer's fetch.max.bytes default).
pub const FETCH_MAX_BYTES: i32 = 50 << 20;
/// What the fetch latency measures, in words.
pub const FETCH_LATENCY_WORDS: &str = "fetch request sent → response (long poll included)";
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

/// `loadgen consume`: finds the topic (and the group's coordinator), runs the consumers and
/// reports what they read.
pub fn run(args: &ConsumeArgs) -> Result<Report> {
    let common = &args.common;
    let finish = args.finish.finish();
    let run = Arc::new(RunState::new(0, finish.records()));
    let (cluster, coordinator) = setup(common, args.group.clone())?;
    let group = match (&args.group, coordinator) {
        (Some(g), Some(coordinator)) => Some(group_config(g, coordinator, &cluster)),
        _ => None,
    };
    let partitions: Vec<i32> = cluster.topic.partitions.iter().map(|p| p.id).collect();
    let specs = match &group {
        Some(_) => member_specs(args.consumers as usize),
        None => consumer_specs(&partitions, args.consumers as usize),
    };
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
        isolation_level: 0,
        group: group.clone(),
    };
    let actors = specs.into_iter().map(ActorSpec::Consumer).collect();
    let cfgs = ActorConfigs {
        producer: None,
        consumer: Some(Arc::new(cfg)),
    };
    let watch = Watch {
        flow: Flow::Consumed,
        lat: Lat::Fetch,
        finish,
    };
    let ended = run_actors(common, &run, actors, cfgs, watch)?;

    let records = ended.records(Flow::Consumed);
    let expected = finish.records();
    let mut parameters = ended.parameters(args, &cluster)?;
    let mut extra = vec![];
    if let Some(g) = &group {
        parameters["group_versions"] = serde_json::to_value(g.versions)?;
        extra.push(("group".to_string(), group_report(g)));
    }
    Ok(Report {
        latency_kind: FETCH_LATENCY_WORDS.into(),
        expected,
        shortfall: expected.map_or(0, |e| e.saturating_sub(records)),
        extra,
        ..ended.report("consume", parameters)
    })
}

/// The setup step: API versions and the topic (which must exist), and with `--group` where the
/// group's coordinator is.
fn setup(common: &Common, group: Option<String>) -> Result<(Cluster, Option<String>)> {
    let bootstrap = Bootstrap::of(common);
    on_executor(common, move || async move {
        let cluster = bootstrap.discover(None, false).await?;
        let coordinator = match group {
            Some(g) => Some(group_coordinator(&bootstrap, &cluster, &g).await?),
            None => None,
        };
        Ok((cluster, coordinator))
    })
}

/// The coordinator of `group` ("host:port"), asked of the first bootstrap address that
/// answers, once the broker is known to offer consumer groups (KIP-848) and topic ids.
async fn group_coordinator(
    bootstrap: &Bootstrap,
    cluster: &Cluster,
    group: &str,
) -> Result<String> {
    let v = cluster.versions.group.ok_or_else(|| {
        anyhow!("the broker does not offer consumer groups in versions this client speaks (FindCoordinator v1-6, ConsumerGroupHeartbeat v0-1, OffsetCommit v9, OffsetFetch v8-9)")
    })?;
    if cluster.versions.metadata < 10 || cluster.topic.id.bytes().all(|c| c == b'0' || c == b'-') {
        bail!(
            "consumer groups need topic ids (Metadata v10+); the broker gave none for {}",
            cluster.topic.name
        );
    }
    let (_, conn) = bootstrap.connect().await?;
    let rt = bootstrap.request_timeout;
    find_coordinator(
        &conn,
        v.find_coordinator,
        KEY_TYPE_GROUP,
        group,
        rt,
        COORDINATOR_WAIT.max(rt),
    )
    .await
    .with_context(|| format!("finding the coordinator of group {group}"))
}

/// Membership of `group` for the consumer actors, its coordinator found in setup.
fn group_config(group: &str, coordinator: String, cluster: &Cluster) -> GroupConfig {
    GroupConfig {
        group: group.to_string(),
        coordinator,
        versions: cluster.versions.group.expect("checked in setup"),
        rebalance_timeout_ms: REBALANCE_TIMEOUT_MS,
        commit_interval: COMMIT_INTERVAL,
        stats: Arc::new(Mutex::new(GroupStats::default())),
    }
}

/// The report's `group` object: the coordinator and what this process's members did.
fn group_report(g: &GroupConfig) -> Value {
    let s = g.stats.lock().unwrap().clone();
    json!({
        "coordinator": g.coordinator,
        "records_by_partition": s.records,
        "started_at": s.started_at,
        "committed": s.committed,
        "heartbeats": s.heartbeats,
        "assignments": s.assignments,
        "commit_errors": s.commit_errors,
    })
}
