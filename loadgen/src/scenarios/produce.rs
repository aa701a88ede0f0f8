//! `loadgen produce`: producers only; throughput and acknowledgement latency.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use super::{run_actors, setup_topic, ActorConfigs, ActorSpec, Ended, RunState, Watch};
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

/// `other_latencies` of a report on produce requests: their round trip, when there are
/// responses to time (not with acks=0).
pub fn request_latency(ended: &Ended, acks: Acks) -> Vec<(String, String, LatencySummary)> {
    if acks == Acks::None {
        return vec![];
    }
    vec![(
        "request_latency_us".into(),
        "produce request sent → response".into(),
        ended.latency(Lat::Request),
    )]
}

/// `loadgen produce`: sets up the topic, runs the producers and reports what was acknowledged.
pub fn run(args: &ProduceArgs) -> Result<Report> {
    let common = &args.common;
    let finish = args.finish.finish();
    let n = args.tuning.producers as usize;
    let run = Arc::new(RunState::new(n, None));
    let cluster = setup_topic(common, args.partitions)?;
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
    let actors = specs.into_iter().map(ActorSpec::Producer).collect();
    let cfgs = ActorConfigs {
        producer: Some(Arc::new(cfg)),
        consumer: None,
    };
    let watch = Watch {
        flow: Flow::Produced,
        lat: Lat::Produce,
        finish,
    };
    let ended = run_actors(common, &run, actors, cfgs, watch)?;

    let records = ended.records(Flow::Produced);
    let errors = ended.errors();
    let generated = run.metrics.generated.load(Ordering::Relaxed);
    let expected = expected.or(Some(generated));
    Ok(Report {
        latency_kind: latency_words(args.acks, args.rate),
        other_latencies: request_latency(&ended, args.acks),
        expected,
        shortfall: expected.map_or(0, |e| e.saturating_sub(records + errors)),
        extra: vec![("generated".into(), generated.into())],
        ..ended.report("produce", ended.parameters(args, &cluster)?)
    })
}
