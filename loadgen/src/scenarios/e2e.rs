//! `loadgen e2e`: produce at a fixed rate and consume the same records concurrently; latency is
//! from each record's scheduled send time (carried in its value) to its arrival at a consumer in
//! this process (same monotonic clock).

use std::sync::Arc;

use anyhow::Result;

use super::consume::{consumer_specs, FETCH_LATENCY_WORDS, FETCH_MAX_BYTES};
use super::produce::{
    eos_parameters, expected_records, latency_words, producer_config, producer_specs,
    request_latency, txn_report,
};
use super::{run_actors, setup_topic, ActorConfigs, ActorSpec, Cluster, Ended, RunState, Watch};
use crate::actors::{ConsumerConfig, EosConfig};
use crate::analytics::metrics::{Flow, Lat};
use crate::analytics::report::Report;
use crate::args::E2eArgs;

/// `loadgen e2e`: sets up the topic, runs producers and consumers together and reports the
/// records consumed, timed end to end.
pub fn run(args: &E2eArgs) -> Result<Report> {
    let common = &args.common;
    let finish = args.finish.finish();
    let np = args.tuning.producers as usize;
    let run = Arc::new(RunState::new(np, None));
    let cluster = setup_topic(common, args.partitions)?;
    let pcfg = producer_config(
        common,
        &args.tuning,
        cluster.topic.clone(),
        cluster.versions,
        args.record_bytes,
        args.acks,
        args.compression,
        finish,
    )?;
    let eos = pcfg.eos.clone();
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
        // Transactions: records count once their transaction is committed.
        isolation_level: if args.tuning.transactional_id.is_some() {
            1
        } else {
            0
        },
        group: None,
    };
    // Producers first, then consumers, round-robin over the executors: with two executors, one
    // producer and one consumer get one each.
    let actors: Vec<ActorSpec> = pspecs
        .into_iter()
        .map(ActorSpec::Producer)
        .chain(cspecs.into_iter().map(ActorSpec::Consumer))
        .collect();
    let cfgs = ActorConfigs {
        producer: Some(Arc::new(pcfg)),
        consumer: Some(Arc::new(ccfg)),
    };
    let watch = Watch {
        flow: Flow::Consumed,
        lat: Lat::E2e,
        finish,
    };
    let ended = run_actors(common, &run, actors, cfgs, watch)?;
    report(args, &cluster, &ended, expected, eos.as_ref())
}

/// The e2e report: records consumed, timed from their scheduled send, with the produce,
/// request and fetch latencies beside; the wire bytes are those of the produce requests.
fn report(
    args: &E2eArgs,
    cluster: &Cluster,
    ended: &Ended,
    expected: Option<u64>,
    eos: Option<&EosConfig>,
) -> Result<Report> {
    let consumed = ended.records(Flow::Consumed);
    let errors = ended.errors();
    let mut other = vec![(
        "produce_latency_us".to_string(),
        latency_words(args.acks, Some(args.rate)),
        ended.latency(Lat::Produce),
    )];
    other.extend(request_latency(ended, args.acks));
    other.push((
        "fetch_latency_us".into(),
        FETCH_LATENCY_WORDS.into(),
        ended.latency(Lat::Fetch),
    ));
    let mut extra = vec![("produced".into(), ended.records(Flow::Produced).into())];
    txn_report(ended, eos, &mut other, &mut extra);
    let mut parameters = ended.parameters(args, cluster)?;
    eos_parameters(&mut parameters, eos);
    Ok(Report {
        wire_bytes: ended.wire_bytes(Flow::Produced),
        latency_kind: "record's scheduled send time → consumed (end to end)".into(),
        other_latencies: other,
        expected,
        shortfall: expected.map_or(0, |e| e.saturating_sub(consumed + errors)),
        extra,
        ..ended.report("e2e", parameters)
    })
}
