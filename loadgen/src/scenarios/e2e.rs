//! `loadgen e2e`: produce at a fixed rate and consume the same records concurrently; latency is
//! from each record's scheduled send time (carried in its value) to its arrival at a consumer in
//! this process (same monotonic clock).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::Result;

use super::consume::{consumer_specs, FETCH_MAX_BYTES};
use super::produce::{expected_records, latency_words, producer_config, producer_specs};
use super::{
    discover, elapsed, launch, on_executor, supervise, threads, ActorConfigs, ActorSpec, RunState,
};
use crate::actors::ConsumerConfig;
use crate::analytics::metrics::{Flow, Lat};
use crate::analytics::report::{LatencySummary, Report};
use crate::args::{Acks, E2eArgs};

pub fn run(args: &E2eArgs) -> Result<Report> {
    let common = &args.common;
    let finish = args.finish.finish();
    let np = args.tuning.producers as usize;
    let run = Arc::new(RunState::new(np, None));
    let cluster = {
        let (b, t, p) = (
            common.bootstrap.clone(),
            common.topic.clone(),
            args.partitions,
        );
        let (ct, rt) = (common.connect_timeout(), common.request_timeout());
        on_executor(common, move || discover(b, t, p, true, ct, rt))?
    };
    let pcfg = producer_config(
        common,
        &args.tuning,
        cluster.topic.clone(),
        cluster.versions,
        args.record_bytes,
        args.acks,
        args.compression,
        finish,
    );
    let pspecs = producer_specs(np, finish, Some(args.rate));
    let expected = expected_records(&pspecs, finish);
    let partitions: Vec<i32> = cluster.topic.partitions.iter().map(|p| p.id).collect();
    let cspecs = consumer_specs(&partitions, args.consumers as usize);
    let ccfg = ConsumerConfig {
        topic: cluster.topic.clone(),
        versions: cluster.versions,
        from: -1,
        max_wait_ms: args.fetch_max_wait_ms as i32,
        partition_max_bytes: 1 << 20,
        max_bytes: FETCH_MAX_BYTES,
        request_timeout: common.request_timeout(),
        connect_timeout: common.connect_timeout(),
        finish,
        e2e: true,
        group: None,
    };
    // Producers first, then consumers, round-robin over the executors: with two executors, one
    // producer and one consumer get one each.
    let actors: Vec<ActorSpec> = pspecs
        .iter()
        .cloned()
        .map(ActorSpec::Producer)
        .chain(cspecs.into_iter().map(ActorSpec::Consumer))
        .collect();
    let t = threads(common).min(actors.len());
    let placement = super::deal(&actors, t);
    let cfgs = ActorConfigs {
        producer: Some(Arc::new(pcfg)),
        consumer: Some(Arc::new(ccfg)),
    };
    let launched = launch(common, &run, placement, cfgs)?;
    let outcome = supervise(common, &run, launched, Flow::Consumed, Lat::E2e, finish);

    let m = &run.metrics;
    let agg = m.snapshot();
    let consumed = m.flow(Flow::Consumed).records.load(Ordering::Relaxed);
    let produced = m.flow(Flow::Produced).records.load(Ordering::Relaxed);
    let errors = m.errors.load(Ordering::Relaxed);
    let shortfall = expected.map_or(0, |e| e.saturating_sub(consumed + errors));
    let mut parameters = serde_json::to_value(args)?;
    parameters["partitions_used"] = partitions.len().into();
    parameters["threads_used"] = t.into();
    parameters["versions"] = serde_json::to_value(cluster.versions)?;
    let mut other = vec![(
        "produce_latency_us".to_string(),
        latency_words(args.acks, Some(args.rate)),
        LatencySummary::of(&agg.latency[Lat::Produce as usize]),
    )];
    if args.acks != Acks::None {
        other.push((
            "request_latency_us".into(),
            "produce request sent → response".into(),
            LatencySummary::of(&agg.latency[Lat::Request as usize]),
        ));
    }
    other.push((
        "fetch_latency_us".into(),
        "fetch request sent → response (long poll included)".into(),
        LatencySummary::of(&agg.latency[Lat::Fetch as usize]),
    ));
    Ok(Report {
        command: "e2e".into(),
        parameters,
        records: consumed,
        bytes: m.flow(Flow::Consumed).bytes.load(Ordering::Relaxed),
        wire_bytes: m.flow(Flow::Produced).wire_bytes.load(Ordering::Relaxed),
        elapsed_s: elapsed(&run, Flow::Consumed, finish, &outcome).as_secs_f64(),
        latency_kind: "record's scheduled send time → consumed (end to end)".into(),
        latency: LatencySummary::of(&agg.latency[Lat::E2e as usize]),
        other_latencies: other,
        errors,
        error_kinds: agg.error_kinds.clone(),
        expected,
        shortfall,
        aborted: run.abort_reason(),
        series: agg.series[Flow::Consumed as usize].clone(),
        extra: vec![("produced".into(), produced.into())],
        notes: run.notes(),
    })
}
