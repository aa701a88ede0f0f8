//! `loadgen produce`: producers only; throughput and acknowledgement latency.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use super::{
    deal, discover, elapsed, launch, on_executor, supervise, threads, ActorConfigs, ActorSpec,
    RunState,
};
use crate::actors::{ProducerConfig, ProducerSpec};
use crate::analytics::metrics::{Flow, Lat};
use crate::analytics::report::{LatencySummary, Report};
use crate::args::{Acks, Common, ProduceArgs, ProducerTuning};
use crate::utils::finish::{share, Finish};
use crate::utils::kafka::TopicInfo;
use crate::utils::kafka::Versions;
use crate::utils::rate::RateLimiter;

#[allow(clippy::too_many_arguments)]
pub fn producer_config(
    common: &Common,
    tuning: &ProducerTuning,
    topic: TopicInfo,
    versions: Versions,
    record_bytes: u32,
    acks: Acks,
    compression: crate::args::Codec,
    finish: Finish,
) -> ProducerConfig {
    ProducerConfig {
        topic,
        versions,
        record_bytes: record_bytes as usize,
        acks: acks.wire(),
        batch_bytes: tuning.batch_bytes as usize,
        linger: Duration::from_millis(tuning.linger_ms),
        compression: compression.compression(),
        keys: tuning.keys,
        buffer_bytes: tuning.buffer_bytes as usize,
        max_in_flight: tuning.max_in_flight as usize,
        max_request_bytes: tuning.max_request_bytes as usize,
        request_timeout: common.request_timeout(),
        connect_timeout: common.connect_timeout(),
        finish,
    }
}

/// Producer specs: shares of the records and of the rate.
pub fn producer_specs(n: usize, finish: Finish, rate: Option<f64>) -> Vec<ProducerSpec> {
    let rates = rate.map(|r| RateLimiter::split(r, n));
    (0..n)
        .map(|i| ProducerSpec {
            id: i,
            records: finish.records().map(|t| share(t, n, i)),
            rate: rates.as_ref().map(|v| v[i]),
        })
        .collect()
}

/// Records a run is expected to complete: the total, or what the rate schedules in the window;
/// None for a timed run without a rate (as many as it can).
pub fn expected_records(specs: &[ProducerSpec], finish: Finish) -> Option<u64> {
    match finish {
        Finish::Records(n) => Some(n),
        Finish::Duration(d) => specs
            .iter()
            .map(|s| s.rate.map(|r| r.count_before(d.as_nanos() as u64)))
            .sum(),
    }
}

pub fn latency_words(acks: Acks, rate: Option<f64>) -> String {
    format!(
        "{} → {}",
        if rate.is_some() {
            "record's scheduled send time"
        } else {
            "record handed to the producer"
        },
        if acks == Acks::None {
            "written to the socket (acks=0)"
        } else {
            "its batch acknowledged"
        }
    )
}

pub fn run(args: &ProduceArgs) -> Result<Report> {
    let common = &args.common;
    let finish = args.finish.finish();
    let n = args.tuning.producers as usize;
    let run = Arc::new(RunState::new(n, None));
    let cluster = {
        let (b, t, p) = (
            common.bootstrap.clone(),
            common.topic.clone(),
            args.partitions,
        );
        let (ct, rt) = (common.connect_timeout(), common.request_timeout());
        on_executor(common, move || discover(b, t, p, true, ct, rt))?
    };
    let cfg = producer_config(
        common,
        &args.tuning,
        cluster.topic.clone(),
        cluster.versions,
        args.record_bytes,
        args.acks,
        args.compression,
        finish,
    );
    let specs = producer_specs(n, finish, args.rate);
    let expected = expected_records(&specs, finish);
    let t = threads(common).min(n);
    let placement = deal(
        &specs
            .iter()
            .cloned()
            .map(ActorSpec::Producer)
            .collect::<Vec<_>>(),
        t,
    );
    let cfgs = ActorConfigs {
        producer: Some(Arc::new(cfg)),
        consumer: None,
    };
    let launched = launch(common, &run, placement, cfgs)?;
    let outcome = supervise(common, &run, launched, Flow::Produced, Lat::Produce, finish);

    let m = &run.metrics;
    let agg = m.snapshot();
    let records = m.flow(Flow::Produced).records.load(Ordering::Relaxed);
    let errors = m.errors.load(Ordering::Relaxed);
    let generated = m.generated.load(Ordering::Relaxed);
    let expected = expected.or(Some(generated));
    let shortfall = expected.map_or(0, |e| e.saturating_sub(records + errors));
    let mut parameters = serde_json::to_value(args)?;
    parameters["partitions_used"] = cluster.topic.partitions.len().into();
    parameters["threads_used"] = t.into();
    parameters["versions"] = serde_json::to_value(cluster.versions)?;
    Ok(Report {
        command: "produce".into(),
        parameters,
        records,
        bytes: m.flow(Flow::Produced).bytes.load(Ordering::Relaxed),
        wire_bytes: m.flow(Flow::Produced).wire_bytes.load(Ordering::Relaxed),
        elapsed_s: elapsed(&run, Flow::Produced, finish, &outcome).as_secs_f64(),
        latency_kind: latency_words(args.acks, args.rate),
        latency: LatencySummary::of(&agg.latency[Lat::Produce as usize]),
        other_latencies: if args.acks == Acks::None {
            vec![]
        } else {
            vec![(
                "request_latency_us".into(),
                "produce request sent → response".into(),
                LatencySummary::of(&agg.latency[Lat::Request as usize]),
            )]
        },
        errors,
        error_kinds: agg.error_kinds.clone(),
        expected,
        shortfall,
        aborted: run.abort_reason(),
        series: agg.series[Flow::Produced as usize].clone(),
        extra: vec![("generated".into(), generated.into())],
        notes: run.notes(),
    })
}
