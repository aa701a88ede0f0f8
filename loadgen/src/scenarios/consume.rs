//! `loadgen consume`: consumers only, every partition by explicit assignment.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::Result;

use super::{
    deal, discover, elapsed, launch, on_executor, supervise, threads, ActorConfigs, ActorSpec,
    RunState,
};
use crate::actors::{ConsumerConfig, ConsumerSpec};
use crate::analytics::metrics::{Flow, Lat};
use crate::analytics::report::{LatencySummary, Report};
use crate::args::ConsumeArgs;

/// Fetch max_bytes (the Java consumer's fetch.max.bytes default).
pub const FETCH_MAX_BYTES: i32 = 50 << 20;

pub fn consumer_specs(partitions: &[i32], consumers: usize) -> Vec<ConsumerSpec> {
    let n = consumers.min(partitions.len()).max(1);
    deal(partitions, n)
        .into_iter()
        .enumerate()
        .filter(|(_, p)| !p.is_empty())
        .map(|(id, partitions)| ConsumerSpec { id, partitions })
        .collect()
}

pub fn run(args: &ConsumeArgs) -> Result<Report> {
    // TODO(consumer groups): with --group, join the group (FindCoordinator, JoinGroup, SyncGroup,
    // Heartbeat, OffsetFetch/OffsetCommit) once the broker has a group coordinator; main() refuses
    // --group until then.
    assert!(
        args.group.is_none(),
        "consumer groups are not supported yet"
    );
    let common = &args.common;
    let finish = args.finish.finish();
    let run = Arc::new(RunState::new(0, finish.records()));
    let cluster = {
        let (b, t) = (common.bootstrap.clone(), common.topic.clone());
        let (ct, rt) = (common.connect_timeout(), common.request_timeout());
        on_executor(common, move || discover(b, t, None, false, ct, rt))?
    };
    let partitions: Vec<i32> = cluster.topic.partitions.iter().map(|p| p.id).collect();
    let specs = consumer_specs(&partitions, args.consumers as usize);
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
        extra: vec![],
        notes: run.notes(),
    })
}
