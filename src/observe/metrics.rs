//! `/metrics`: every shard's figures in the OpenMetrics text format (which Prometheus scrapes,
//! and which its classic text parsers read), encoded by `prometheus-client` from a snapshot
//! gathered for the scrape.
//!
//! Names follow Prometheus conventions: a `shardlog_` prefix, counters ending in `_total`,
//! units in the name (`_seconds`, `_bytes`). Counters carry a `shard` label; histograms are
//! added up over the shards (a label per shard would multiply their buckets by the cores).
//! Series per partition and per group partition come only with
//! `shardlog.metrics.per.partition=true` (or `/metrics?partitions=true`): their number grows
//! with the topics, which is what a default must not do.

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use super::{GroupReport, PartitionView};
use crate::util::metrics::Snapshot;

pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the latency buckets, in seconds: 100 µs to 10 s.
const LATENCY_BUCKETS_S: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// Upper bounds of the writes-per-sync buckets.
const SYNC_WRITES_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0];

/// One shard's part of a scrape.
pub struct ShardFigures<'a> {
    pub shard: usize,
    pub metrics: &'a Snapshot,
    pub partitions: &'a [PartitionView],
    pub tail_cache_bytes: usize,
}

/// The scrape, as a `prometheus-client` collector: it holds the text of each family's
/// samples already decided, and encodes them in order.
#[derive(Debug, Default)]
struct Families {
    families: Vec<Family>,
}

#[derive(Debug)]
struct Family {
    name: &'static str,
    help: &'static str,
    unit: Option<Unit>,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Counter(Vec<(Labels, u64)>),
    Gauge(Vec<(Labels, i64)>),
    GaugeF(Vec<(Labels, f64)>),
    Histogram(Vec<(Labels, Buckets)>),
}

/// A histogram's sum, count and buckets (upper bound, count of its own range).
type Buckets = (f64, u64, Vec<(f64, u64)>);

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, String)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

impl prometheus_client::collector::Collector for Families {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for f in &self.families {
            let kind = match f.kind {
                Kind::Counter(_) => MetricType::Counter,
                Kind::Gauge(_) | Kind::GaugeF(_) => MetricType::Gauge,
                Kind::Histogram(_) => MetricType::Histogram,
            };
            let mut family = encoder.encode_descriptor(f.name, f.help, f.unit.as_ref(), kind)?;
            match &f.kind {
                Kind::Counter(samples) => {
                    for (l, v) in samples {
                        ConstCounter::new(*v).encode(family.encode_family(l)?)?;
                    }
                }
                Kind::Gauge(samples) => {
                    for (l, v) in samples {
                        ConstGauge::new(*v).encode(family.encode_family(l)?)?;
                    }
                }
                Kind::GaugeF(samples) => {
                    for (l, v) in samples {
                        ConstGauge::new(*v).encode(family.encode_family(l)?)?;
                    }
                }
                Kind::Histogram(samples) => {
                    for (l, (sum, count, buckets)) in samples {
                        family
                            .encode_family(l)?
                            .encode_histogram::<Labels>(*sum, *count, buckets, None)?;
                    }
                }
            }
        }
        Ok(())
    }
}

impl Families {
    fn add(&mut self, name: &'static str, help: &'static str, unit: Option<Unit>, kind: Kind) {
        self.families.push(Family {
            name,
            help,
            unit,
            kind,
        });
    }
}

/// An hdrhistogram as buckets at `bounds` (scaled by `scale` from its units), each with the
/// count of its own range (the encoder adds them up), the last one `+Inf` (`f64::MAX` to the
/// encoder); with its sum and count.
fn buckets(h: &hdrhistogram::Histogram<u64>, bounds: &[f64], scale: f64) -> Buckets {
    let mut below = 0;
    let mut out: Vec<(f64, u64)> = bounds
        .iter()
        .map(|&b| {
            let cumulative = h.count_between(0, (b / scale) as u64).max(below);
            let own = cumulative - below;
            below = cumulative;
            (b, own)
        })
        .collect();
    out.push((f64::MAX, h.len().saturating_sub(below)));
    (h.mean() * h.len() as f64 * scale, h.len(), out)
}

/// The text of a scrape.
pub fn render(
    shards: &[ShardFigures<'_>],
    groups: &[GroupReport],
    per_partition: bool,
) -> Result<String, std::fmt::Error> {
    let mut f = Families::default();
    let shard = |s: &ShardFigures<'_>| ("shard", s.shard.to_string());
    f.add(
        "requests",
        "Requests answered, by API and version.",
        None,
        Kind::Counter(
            shards
                .iter()
                .flat_map(|s| {
                    s.metrics.requests.iter().map(move |((api, version), n)| {
                        (
                            labels(&[
                                shard(s),
                                ("api", api_name(*api)),
                                ("version", version.to_string()),
                            ]),
                            *n,
                        )
                    })
                })
                .collect(),
        ),
    );
    let mut latency = Snapshot::default();
    for s in shards {
        latency.add(s.metrics);
    }
    f.add(
        "request_duration",
        "Time from a request's last byte read to its response's last byte written, by API (all shards).",
        Some(Unit::Seconds),
        Kind::Histogram(
            latency
                .request_latency_us
                .iter()
                .map(|(api, h)| {
                    (
                        labels(&[("api", api_name(*api))]),
                        buckets(h, LATENCY_BUCKETS_S, 1e-6),
                    )
                })
                .collect(),
        ),
    );
    let per_shard = |get: fn(&Snapshot) -> u64| -> Vec<(Labels, u64)> {
        shards
            .iter()
            .map(|s| (labels(&[shard(s)]), get(s.metrics)))
            .collect()
    };
    f.add(
        "network_received",
        "Request bytes read, size prefixes included.",
        Some(Unit::Bytes),
        Kind::Counter(per_shard(|m| m.bytes_in)),
    );
    f.add(
        "network_sent",
        "Response bytes written.",
        Some(Unit::Bytes),
        Kind::Counter(per_shard(|m| m.bytes_out)),
    );
    f.add(
        "connections_accepted",
        "Client connections accepted.",
        None,
        Kind::Counter(per_shard(|m| m.connections_accepted)),
    );
    f.add(
        "connections",
        "Client connections open.",
        None,
        Kind::Gauge(
            shards
                .iter()
                .map(|s| {
                    let open = s
                        .metrics
                        .connections_accepted
                        .saturating_sub(s.metrics.connections_closed);
                    (labels(&[shard(s)]), i64::try_from(open).unwrap_or(i64::MAX))
                })
                .collect(),
        ),
    );
    f.add(
        "fsync_duration",
        "fdatasync rounds of the group commit (all shards).",
        Some(Unit::Seconds),
        Kind::Histogram(vec![(
            Vec::new(),
            buckets(&latency.sync_latency_us, LATENCY_BUCKETS_S, 1e-6),
        )]),
    );
    f.add(
        "fsync_batch_writes",
        "Writes made durable by one fdatasync round (all shards).",
        None,
        Kind::Histogram(vec![(
            Vec::new(),
            buckets(&latency.sync_writes, SYNC_WRITES_BUCKETS, 1.0),
        )]),
    );
    f.add(
        "tail_cache",
        "Bytes held by the tail cache of recent batches.",
        Some(Unit::Bytes),
        Kind::Gauge(
            shards
                .iter()
                .map(|s| (labels(&[shard(s)]), s.tail_cache_bytes as i64))
                .collect(),
        ),
    );
    f.add(
        "request_budget_held",
        "Bytes of requests held in the shard's share of queued.max.request.bytes.",
        Some(Unit::Bytes),
        Kind::Gauge(
            shards
                .iter()
                .map(|s| {
                    let held = i64::try_from(s.metrics.request_bytes_held).unwrap_or(i64::MAX);
                    (labels(&[shard(s)]), held)
                })
                .collect(),
        ),
    );
    f.add(
        "partitions",
        "Partitions open.",
        None,
        Kind::Gauge(
            shards
                .iter()
                .map(|s| (labels(&[shard(s)]), s.partitions.len() as i64))
                .collect(),
        ),
    );
    f.add(
        "log_size",
        "Bytes of record batches in the segments of the shard's partitions.",
        Some(Unit::Bytes),
        Kind::Gauge(
            shards
                .iter()
                .map(|s| {
                    (
                        labels(&[shard(s)]),
                        s.partitions.iter().map(|p| p.size_bytes as i64).sum(),
                    )
                })
                .collect(),
        ),
    );
    let group_label = |g: &GroupReport| ("group", g.group.clone());
    f.add(
        "group_members",
        "Members of each consumer group.",
        None,
        Kind::Gauge(
            groups
                .iter()
                .map(|g| (labels(&[group_label(g)]), g.members.len() as i64))
                .collect(),
        ),
    );
    f.add("group_lag", "Records the group's committed offsets are behind the log end offsets, summed over its partitions.", None, Kind::Gauge(groups.iter().map(|g| (labels(&[group_label(g)]), g.total_lag)).collect()));
    f.add(
        "group_status",
        "The group's lag status (Burrow's): 0 OK, 1 WARNING, 2 ERROR.",
        None,
        Kind::Gauge(
            groups
                .iter()
                .map(|g| {
                    let code = match g.status {
                        "OK" => 0,
                        "WARNING" => 1,
                        _ => 2,
                    };
                    (labels(&[group_label(g)]), code)
                })
                .collect(),
        ),
    );
    if per_partition {
        let partition = |p: &PartitionView| {
            labels(&[
                ("topic", p.topic.clone()),
                ("partition", p.partition.to_string()),
            ])
        };
        let all: Vec<&PartitionView> = shards.iter().flat_map(|s| s.partitions.iter()).collect();
        f.add(
            "partition_log_start_offset",
            "A partition's log start offset.",
            None,
            Kind::Gauge(
                all.iter()
                    .map(|p| (partition(p), p.log_start_offset))
                    .collect(),
            ),
        );
        f.add(
            "partition_log_end_offset",
            "A partition's log end offset (high watermark).",
            None,
            Kind::Gauge(
                all.iter()
                    .map(|p| (partition(p), p.log_end_offset))
                    .collect(),
            ),
        );
        f.add(
            "partition_size",
            "Bytes of record batches in a partition's segments.",
            Some(Unit::Bytes),
            Kind::Gauge(
                all.iter()
                    .map(|p| (partition(p), p.size_bytes as i64))
                    .collect(),
            ),
        );
        f.add(
            "partition_segments",
            "A partition's segments.",
            None,
            Kind::Gauge(
                all.iter()
                    .map(|p| (partition(p), p.segments as i64))
                    .collect(),
            ),
        );
        let gp = |g: &GroupReport, p: &super::PartitionLag| {
            labels(&[
                ("group", g.group.clone()),
                ("topic", p.topic.clone()),
                ("partition", p.partition.to_string()),
            ])
        };
        f.add(
            "group_committed_offset",
            "A group's committed offset of a partition.",
            None,
            Kind::Gauge(
                groups
                    .iter()
                    .flat_map(|g| {
                        g.partitions
                            .iter()
                            .map(move |p| (gp(g, p), p.committed_offset))
                    })
                    .collect(),
            ),
        );
        f.add(
            "group_partition_lag",
            "A group's lag on a partition: log end offset minus committed offset.",
            None,
            Kind::Gauge(
                groups
                    .iter()
                    .flat_map(|g| {
                        g.partitions
                            .iter()
                            .filter_map(move |p| p.lag.map(|l| (gp(g, p), l)))
                    })
                    .collect(),
            ),
        );
    }
    let process = process_figures();
    f.add(
        "process_resident_memory",
        "Resident memory of the broker process.",
        Some(Unit::Bytes),
        Kind::Gauge(vec![(Vec::new(), process.resident_bytes)]),
    );
    f.add(
        "process_cpu",
        "CPU time of the broker process (user and system).",
        Some(Unit::Seconds),
        Kind::GaugeF(vec![(Vec::new(), process.cpu_seconds)]),
    );
    f.add(
        "process_open_fds",
        "Descriptors the broker process holds.",
        None,
        Kind::Gauge(vec![(Vec::new(), process.open_fds)]),
    );
    f.add(
        "process_threads",
        "Threads of the broker process.",
        None,
        Kind::Gauge(vec![(Vec::new(), process.threads)]),
    );

    let mut registry = Registry::with_prefix("shardlog");
    registry.register_collector(Box::new(f));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)?;
    Ok(text)
}

/// The Kafka name of an API key ("Produce"), or its number.
fn api_name(key: i16) -> String {
    kafka_protocol::messages::ApiKey::try_from(key)
        .map(|k| format!("{k:?}"))
        .unwrap_or_else(|_| key.to_string())
}

struct Process {
    resident_bytes: i64,
    cpu_seconds: f64,
    open_fds: i64,
    threads: i64,
}

/// The process's figures from `/proc/self`; zeros where it cannot be read.
fn process_figures() -> Process {
    // SAFETY: sysconf has no preconditions.
    let (page, tick) = unsafe {
        (
            libc::sysconf(libc::_SC_PAGESIZE),
            libc::sysconf(libc::_SC_CLK_TCK),
        )
    };
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces), from field 3 on.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |n: usize| {
        fields
            .get(n - 3)
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as i64);
    Process {
        resident_bytes: field(24) * page.max(0),
        cpu_seconds: (field(14) + field(15)) as f64 / tick.max(1) as f64,
        open_fds,
        threads: field(20),
    }
}
