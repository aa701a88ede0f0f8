//! `loadgen produce`: producers only; throughput and acknowledgement latency.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Result};
use serde_json::{json, Value};

use super::{run_actors, setup_topic, ActorConfigs, ActorSpec, Ended, RunState, Watch};
use crate::actors::{EosConfig, ProducerConfig, ProducerSpec, TxnConfig};
use crate::analytics::metrics::{Flow, Lat};
use crate::analytics::report::{LatencySummary, Report};
use crate::args::{Acks, Common, ProduceArgs, ProducerTuning};
use crate::utils::finish::{share, Finish};
use crate::utils::kafka::txn::TRANSACTION_TIMEOUT_MS;
use crate::utils::kafka::TopicInfo;
use crate::utils::kafka::Versions;
use crate::utils::rate::RateLimiter;

/// Idempotent or transactional producers per `tuning` (None: plain ones), in the versions the
/// broker offers; an error if it does not offer the APIs they need.
pub fn eos_config(tuning: &ProducerTuning, versions: &Versions) -> Result<Option<EosConfig>> {
    if !tuning.idempotent() {
        return Ok(None);
    }
    let init_producer_id = versions.init_producer_id.ok_or_else(|| {
        anyhow!("idempotent producers need InitProducerId, which the broker does not offer in v0-4 (ApiVersions)")
    })?;
    let txn = match &tuning.transactional_id {
        None => None,
        Some(prefix) => {
            let v = versions.txn.ok_or_else(|| {
                anyhow!("transactional producers need FindCoordinator v1-6, AddPartitionsToTxn v0-3 and EndTxn v0-4, which the broker does not all offer (ApiVersions)")
            })?;
            Some(TxnConfig {
                id_prefix: prefix.clone(),
                records: tuning.txn_records,
                timeout_ms: TRANSACTION_TIMEOUT_MS,
                versions: v,
            })
        }
    };
    Ok(Some(EosConfig {
        init_producer_id,
        txn,
    }))
}

/// Adds what idempotent or transactional producers used to a report's `parameters`: the
/// versions of InitProducerId (and of the transaction APIs), the transaction timeout.
pub fn eos_parameters(parameters: &mut Value, eos: Option<&EosConfig>) {
    let Some(e) = eos else {
        return;
    };
    parameters["versions"]["init_producer_id"] = e.init_producer_id.into();
    if let Some(t) = &e.txn {
        parameters["versions"]["find_coordinator"] = t.versions.find_coordinator.into();
        parameters["versions"]["add_partitions_to_txn"] = t.versions.add_partitions_to_txn.into();
        parameters["versions"]["end_txn"] = t.versions.end_txn.into();
        parameters["transaction_timeout_ms"] = t.timeout_ms.into();
    }
}

/// What a transactional run adds to its report: transactions committed and aborted (`extra`)
/// and EndTxn's round trip (`other_latencies`).
pub fn txn_report(
    ended: &Ended,
    eos: Option<&EosConfig>,
    other: &mut Vec<(String, String, LatencySummary)>,
    extra: &mut Vec<(String, Value)>,
) {
    if eos.is_none_or(|e| e.txn.is_none()) {
        return;
    }
    let (committed, aborted) = ended.transactions();
    extra.push((
        "transactions".into(),
        json!({"committed": committed, "aborted": aborted}),
    ));
    other.push((
        "end_txn_latency_us".into(),
        "EndTxn sent → answered".into(),
        ended.latency(Lat::EndTxn),
    ));
}

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
) -> Result<ProducerConfig> {
    let eos = eos_config(tuning, &versions)?;
    Ok(ProducerConfig {
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
        eos,
    })
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
    )?;
    let eos = cfg.eos.clone();
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
    let mut parameters = ended.parameters(args, &cluster)?;
    eos_parameters(&mut parameters, eos.as_ref());
    let mut other = request_latency(&ended, args.acks);
    let mut extra = vec![("generated".into(), generated.into())];
    txn_report(&ended, eos.as_ref(), &mut other, &mut extra);
    Ok(Report {
        latency_kind: latency_words(args.acks, args.rate),
        other_latencies: other,
        expected,
        shortfall: expected.map_or(0, |e| e.saturating_sub(records + errors)),
        extra,
        ..ended.report("produce", parameters)
    })
}
