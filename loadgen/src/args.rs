//! The command line.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;

use crate::utils::finish::Finish;

#[derive(Parser, Debug)]
#[command(
    name = "loadgen",
    version,
    about = "Kafka-protocol load generator: produce, consume and end-to-end latency against Shardlog or any Kafka-compatible broker",
    long_about = None
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Produce records as fast as possible (or at --rate) and report throughput and ack latency.
    Produce(ProduceArgs),
    /// Read a topic (every partition by explicit assignment, or as a consumer group with --group)
    /// and report throughput.
    Consume(ConsumeArgs),
    /// Produce at a fixed rate and consume the same records, reporting end-to-end latency.
    E2e(E2eArgs),
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Acks {
    /// No acknowledgement: a record counts once written to the socket.
    #[value(name = "0")]
    #[serde(rename = "0")]
    None,
    /// The leader's acknowledgement.
    #[value(name = "1")]
    #[serde(rename = "1")]
    Leader,
    /// Every in-sync replica's acknowledgement.
    #[value(name = "all", alias = "-1")]
    #[serde(rename = "all")]
    All,
}

impl Acks {
    pub fn wire(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Codec {
    pub fn compression(self) -> kafka_protocol::records::Compression {
        use kafka_protocol::records::Compression as C;
        match self {
            Codec::None => C::None,
            Codec::Gzip => C::Gzip,
            Codec::Snappy => C::Snappy,
            Codec::Lz4 => C::Lz4,
            Codec::Zstd => C::Zstd,
        }
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum From {
    Earliest,
    Latest,
}

impl From {
    /// The ListOffsets timestamp.
    pub fn timestamp(self) -> i64 {
        match self {
            From::Earliest => -2,
            From::Latest => -1,
        }
    }
}

/// Options every command has.
#[derive(Args, Debug, Clone, Serialize)]
pub struct Common {
    /// Broker to bootstrap from (a comma-separated list is tried in order).
    #[arg(long, value_name = "HOST:PORT")]
    pub bootstrap: String,
    /// Topic to use.
    #[arg(long, value_name = "T", value_parser = topic_name)]
    pub topic: String,
    /// Also write the summary as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// glommio executors (threads), one per CPU by default.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
    /// Do not pin executors to CPUs.
    #[arg(long)]
    pub no_pin: bool,
    /// glommio io_memory per executor, in KiB (locked memory: keep it small).
    #[arg(long, value_name = "KIB", default_value_t = 512, value_parser = clap::value_parser!(u32).range(64..=1048576))]
    pub io_memory_kib: u32,
    /// Connect timeout, ms.
    #[arg(long, value_name = "MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub connect_timeout_ms: u64,
    /// Request timeout, ms (a request without a response by then kills its connection).
    #[arg(long, value_name = "MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub request_timeout_ms: u64,
    /// End the run when nothing completes for this long (s).
    #[arg(long, value_name = "S", default_value_t = 30.0, value_parser = positive_secs)]
    pub stall_timeout_s: f64,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
}

impl Common {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
    pub fn stall_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.stall_timeout_s)
    }
}

/// When the run ends: exactly one of the two.
#[derive(Args, Debug, Clone, Serialize)]
#[group(required = true, multiple = false)]
pub struct FinishArgs {
    /// Stop after N records (in total).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub records: Option<u64>,
    /// Stop after S seconds.
    #[arg(long, value_name = "S", value_parser = positive_secs)]
    pub duration_s: Option<f64>,
}

impl FinishArgs {
    pub fn finish(&self) -> Finish {
        match (self.records, self.duration_s) {
            (Some(n), _) => Finish::Records(n),
            (None, Some(s)) => Finish::Duration(Duration::from_secs_f64(s)),
            (None, None) => unreachable!("clap requires one of --records / --duration-s"),
        }
    }
}

/// Producer tuning shared by produce and e2e.
#[derive(Args, Debug, Clone, Serialize)]
pub struct ProducerTuning {
    /// Producer actors, each with its own connection(s), spread over the executors. Up to
    /// 16,384: bench.sh's connections-10000 runs 10,000 (raise `ulimit -n` to match).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16384))]
    pub producers: u32,
    /// Close a partition's batch at this many bytes (uncompressed estimate).
    #[arg(long, value_name = "N", default_value_t = 16384, value_parser = clap::value_parser!(u32).range(1..=(64 << 20)))]
    pub batch_bytes: u32,
    /// Send a batch at most this long after its first record (ms).
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub linger_ms: u64,
    /// Keys drawn uniformly from N distinct values ("0".."N-1"), partitioned by murmur2 like the
    /// Java client; without it records have no key and partitions are sticky per batch.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub keys: Option<u32>,
    /// Records waiting in a producer (batched or in flight) at most, in bytes.
    #[arg(long, value_name = "N", default_value_t = 4 << 20, value_parser = clap::value_parser!(u64).range(1..=(1 << 34)))]
    pub buffer_bytes: u64,
    /// Produce requests in flight per connection (at most 5 with --idempotent or
    /// --transactional-id: Kafka keeps the order of at most 5 per partition and producer).
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_in_flight: u32,
    /// Largest produce request, in bytes (Java's max.request.size).
    #[arg(long, value_name = "N", default_value_t = 1 << 20, value_parser = clap::value_parser!(u32).range(1024..=(256 << 20)))]
    pub max_request_bytes: u32,
    /// Idempotent producers (Java's enable.idempotence): each gets a producer id and epoch
    /// (InitProducerId) and numbers its batches per partition. Needs --acks all and a pipeline
    /// of at most 5 requests per connection (--max-in-flight), whose order the connection
    /// keeps; loadgen does not retry, so a failed batch leaves a gap the broker reports as
    /// OutOfOrderSequenceNumber on that partition's next batches.
    #[arg(long)]
    pub idempotent: bool,
    /// Transactional producers (idempotent too): producer i uses transactional id PREFIX-i,
    /// finds its coordinator (FindCoordinator), gets its producer id there, adds each partition
    /// to the transaction before first writing to it (AddPartitionsToTxn) and commits every
    /// --txn-records records (EndTxn, answered before the next transaction starts). e2e's
    /// consumers then read committed records only.
    #[arg(long, value_name = "PREFIX", value_parser = txn_prefix)]
    pub transactional_id: Option<String>,
    /// Records per transaction, per producer (with --transactional-id). A transaction must end
    /// within the 60 s transaction timeout loadgen asks for: at low rates, take fewer.
    #[arg(long, value_name = "N", default_value_t = 1000, requires = "transactional_id", value_parser = clap::value_parser!(u64).range(1..))]
    pub txn_records: u64,
}

impl ProducerTuning {
    /// Whether the producers are idempotent (--idempotent, or transactional).
    pub fn idempotent(&self) -> bool {
        self.idempotent || self.transactional_id.is_some()
    }
}

#[derive(Args, Debug, Clone, Serialize)]
pub struct ProduceArgs {
    #[command(flatten)]
    #[serde(flatten)]
    pub common: Common,
    /// Create the topic with N partitions if it is missing, and wait for their leaders.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..=100_000))]
    pub partitions: Option<i32>,
    /// Value size of each record.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=(64 << 20)))]
    pub record_bytes: u32,
    #[command(flatten)]
    #[serde(flatten)]
    pub finish: FinishArgs,
    /// Acknowledgement to wait for.
    #[arg(long, value_enum, default_value = "all", allow_negative_numbers = true)]
    pub acks: Acks,
    /// Records per second in total (open loop: latency counts from each record's scheduled time).
    #[arg(long, value_name = "RECORDS_PER_S", value_parser = positive_rate)]
    pub rate: Option<f64>,
    #[arg(long, value_enum, default_value = "none")]
    pub compression: Codec,
    #[command(flatten)]
    #[serde(flatten)]
    pub tuning: ProducerTuning,
}

#[derive(Args, Debug, Clone, Serialize)]
pub struct ConsumeArgs {
    #[command(flatten)]
    #[serde(flatten)]
    pub common: Common,
    /// Read as members of consumer group G (KIP-848 protocol: the broker assigns the partitions;
    /// each starts at the group's committed offset, or per --from when there is none; positions
    /// are committed every second and at the end).
    #[arg(long, value_name = "G", value_parser = group_name)]
    pub group: Option<String>,
    #[command(flatten)]
    #[serde(flatten)]
    pub finish: FinishArgs,
    /// Where to start in each partition.
    #[arg(long, value_enum, default_value = "earliest")]
    pub from: From,
    /// Consumer actors (partitions are dealt round-robin among them; with --group each is a
    /// group member).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub consumers: u32,
    /// Fetch max_wait_ms.
    #[arg(long, value_name = "MS", default_value_t = 500, value_parser = clap::value_parser!(u32).range(0..=60_000))]
    pub fetch_max_wait_ms: u32,
    /// Fetch partition_max_bytes.
    #[arg(long, value_name = "N", default_value_t = 1 << 20, value_parser = clap::value_parser!(u32).range(1024..=(256 << 20)))]
    pub partition_max_bytes: u32,
}

#[derive(Args, Debug, Clone, Serialize)]
pub struct E2eArgs {
    #[command(flatten)]
    #[serde(flatten)]
    pub common: Common,
    /// Create the topic with N partitions if it is missing, and wait for their leaders.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..=100_000))]
    pub partitions: Option<i32>,
    /// Value size of each record (at least 8: the send time travels in the first 8 bytes).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(8..=(64 << 20)))]
    pub record_bytes: u32,
    /// Records per second in total.
    #[arg(long, value_name = "R", value_parser = positive_rate)]
    pub rate: f64,
    #[command(flatten)]
    #[serde(flatten)]
    pub finish: FinishArgs,
    /// Acknowledgement to wait for.
    #[arg(long, value_enum, default_value = "all", allow_negative_numbers = true)]
    pub acks: Acks,
    #[arg(long, value_enum, default_value = "none")]
    pub compression: Codec,
    /// Consumer actors (partitions are dealt round-robin among them).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub consumers: u32,
    /// Fetch max_wait_ms.
    #[arg(long, value_name = "MS", default_value_t = 500, value_parser = clap::value_parser!(u32).range(0..=60_000))]
    pub fetch_max_wait_ms: u32,
    #[command(flatten)]
    #[serde(flatten)]
    pub tuning: ProducerTuning,
}

fn positive_secs(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !(v.is_finite() && v > 0.0 && v <= 1e7) {
        return Err(format!("'{s}': must be > 0 (and at most 1e7)"));
    }
    Ok(v)
}

fn positive_rate(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
    if !(v.is_finite() && v > 0.0 && v <= 1e9) {
        return Err(format!("'{s}': must be > 0 (and at most 1e9)"));
    }
    Ok(v)
}

fn txn_prefix(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("a transactional id prefix cannot be empty".into());
    }
    Ok(s.to_string())
}

fn group_name(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("a group id cannot be empty".into());
    }
    Ok(s.to_string())
}

fn topic_name(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 249 {
        return Err("a topic name has 1 to 249 characters".into());
    }
    if s == "." || s == ".." {
        return Err("a topic cannot be named '.' or '..'".into());
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '.' || *c == '_' || *c == '-'))
    {
        return Err(format!(
            "'{c}' is not allowed in a topic name (use a-z A-Z 0-9 . _ -)"
        ));
    }
    Ok(s.to_string())
}

/// Checks that span options (clap checks each option alone). Err: the message for exit code 2.
pub fn validate(cli: &Cli) -> Result<(), String> {
    let common = match &cli.command {
        Command::Produce(a) => &a.common,
        Command::Consume(a) => &a.common,
        Command::E2e(a) => &a.common,
    };
    for b in common.bootstrap.split(',') {
        let b = b.trim();
        let ok = b
            .rsplit_once(':')
            .map(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0))
            .unwrap_or(false);
        if !ok {
            return Err(format!("--bootstrap: '{b}' is not HOST:PORT"));
        }
    }
    let check_tuning = |t: &ProducerTuning, record_bytes: u32| -> Result<(), String> {
        check_idempotence(t)?;
        if t.max_request_bytes < t.batch_bytes {
            return Err(format!(
                "--max-request-bytes ({}) is smaller than --batch-bytes ({})",
                t.max_request_bytes, t.batch_bytes
            ));
        }
        if t.buffer_bytes < record_bytes as u64 {
            return Err(format!(
                "--buffer-bytes ({}) cannot hold one record of --record-bytes ({record_bytes})",
                t.buffer_bytes
            ));
        }
        Ok(())
    };
    match &cli.command {
        Command::Produce(a) => {
            check_tuning(&a.tuning, a.record_bytes)?;
            check_acks(&a.tuning, a.acks)?;
        }
        Command::E2e(a) => {
            check_tuning(&a.tuning, a.record_bytes)?;
            check_acks(&a.tuning, a.acks)?;
        }
        Command::Consume(_) => {}
    }
    Ok(())
}

/// Most produce requests an idempotent producer may have in flight per connection: Kafka keeps
/// the order (and the duplicates it recognises) of the last 5 batches per partition.
pub const MAX_IN_FLIGHT_IDEMPOTENT: u32 = 5;

/// Kafka's rules for idempotence: at most 5 requests in flight.
fn check_idempotence(t: &ProducerTuning) -> Result<(), String> {
    if t.idempotent() && t.max_in_flight > MAX_IN_FLIGHT_IDEMPOTENT {
        return Err(format!(
            "--max-in-flight {} is more than the {MAX_IN_FLIGHT_IDEMPOTENT} an idempotent producer may have (--idempotent, --transactional-id)",
            t.max_in_flight
        ));
    }
    Ok(())
}

/// Kafka's rules for idempotence: acks=all (the Java client refuses anything else).
fn check_acks(t: &ProducerTuning, acks: Acks) -> Result<(), String> {
    if t.idempotent() && acks != Acks::All {
        return Err(
            "an idempotent producer (--idempotent, --transactional-id) needs --acks all".into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("loadgen").chain(args.iter().copied()))
    }

    #[test]
    fn produce_parses_with_defaults() {
        let cli = parse(&[
            "produce",
            "--bootstrap",
            "127.0.0.1:9092",
            "--topic",
            "t",
            "--record-bytes",
            "1024",
            "--records",
            "10",
        ])
        .unwrap();
        let Command::Produce(a) = &cli.command else {
            panic!()
        };
        assert_eq!(a.acks, Acks::All);
        assert_eq!(a.tuning.batch_bytes, 16384);
        assert_eq!(a.tuning.linger_ms, 5);
        assert_eq!(a.tuning.max_in_flight, 5);
        assert_eq!(a.compression, Codec::None);
        assert_eq!(a.finish.finish(), Finish::Records(10));
        assert!(validate(&cli).is_ok());
        let json = serde_json::to_value(a).unwrap();
        assert_eq!(json["acks"], "all");
        assert_eq!(json["record_bytes"], 1024);
        assert_eq!(json["records"], 10);
        assert_eq!(json["bootstrap"], "127.0.0.1:9092");
    }

    #[test]
    fn bad_arguments_are_usage_errors() {
        use clap::error::ErrorKind;
        let base = [
            "produce",
            "--bootstrap",
            "h:1",
            "--topic",
            "t",
            "--record-bytes",
            "10",
        ];
        // Neither or both of --records / --duration-s.
        assert!(parse(&base).is_err());
        let mut both = base.to_vec();
        both.extend(["--records", "1", "--duration-s", "2"]);
        assert_eq!(
            parse(&both).unwrap_err().kind(),
            ErrorKind::ArgumentConflict
        );
        for bad in [
            &["--records", "0"][..],
            &["--duration-s", "-1"],
            &["--records", "1", "--acks", "2"],
            &["--records", "1", "--compression", "brotli"],
            &["--records", "1", "--rate", "0"],
            &["--records", "1", "--partitions", "0"],
        ] {
            let mut v = base.to_vec();
            v.extend_from_slice(bad);
            let e = parse(&v).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
        let cli = parse(&[
            "consume",
            "--bootstrap",
            "nohost",
            "--topic",
            "t",
            "--records",
            "1",
        ])
        .unwrap();
        assert!(validate(&cli).is_err());
        assert!(parse(&[
            "consume",
            "--bootstrap",
            "h:1",
            "--topic",
            "a/b",
            "--records",
            "1"
        ])
        .is_err());
        // e2e needs a rate and room for the time stamp.
        assert!(parse(&[
            "e2e",
            "--bootstrap",
            "h:1",
            "--topic",
            "t",
            "--record-bytes",
            "100",
            "--records",
            "1"
        ])
        .is_err());
        assert!(parse(&[
            "e2e",
            "--bootstrap",
            "h:1",
            "--topic",
            "t",
            "--record-bytes",
            "4",
            "--rate",
            "5",
            "--records",
            "1"
        ])
        .is_err());
        assert!(parse(&[
            "e2e",
            "--bootstrap",
            "h:1",
            "--topic",
            "t",
            "--record-bytes",
            "8",
            "--rate",
            "5",
            "--records",
            "1"
        ])
        .is_ok());
    }

    fn produce(extra: &[&str]) -> Result<Cli, clap::Error> {
        let mut v = vec![
            "produce",
            "--bootstrap",
            "h:1",
            "--topic",
            "t",
            "--record-bytes",
            "10",
            "--records",
            "1",
        ];
        v.extend_from_slice(extra);
        parse(&v)
    }

    fn tuning(cli: &Cli) -> &ProducerTuning {
        match &cli.command {
            Command::Produce(a) => &a.tuning,
            Command::E2e(a) => &a.tuning,
            Command::Consume(_) => panic!("no producer"),
        }
    }

    #[test]
    fn idempotence_and_transactions() {
        let cli = produce(&[]).unwrap();
        let t = tuning(&cli);
        assert!(!t.idempotent() && t.transactional_id.is_none());
        assert_eq!(t.txn_records, 1000);
        let json = serde_json::to_value(t).unwrap();
        assert_eq!(json["idempotent"], false);
        assert!(json["transactional_id"].is_null());

        let cli = produce(&["--idempotent"]).unwrap();
        assert!(tuning(&cli).idempotent());
        assert!(validate(&cli).is_ok());

        let cli = produce(&["--transactional-id", "bench", "--txn-records", "50"]).unwrap();
        let t = tuning(&cli);
        assert!(t.idempotent(), "transactional implies idempotent");
        assert_eq!(t.transactional_id.as_deref(), Some("bench"));
        assert_eq!(t.txn_records, 50);
        assert!(validate(&cli).is_ok());
        let json = serde_json::to_value(t).unwrap();
        assert_eq!(json["transactional_id"], "bench");
        assert_eq!(json["txn_records"], 50);

        // Kafka's rules: at most 5 in flight, acks=all.
        for bad in [
            &["--idempotent", "--max-in-flight", "6"][..],
            &["--idempotent", "--acks", "1"],
            &["--transactional-id", "x", "--acks", "0"],
            &["--transactional-id", "x", "--max-in-flight", "10"],
        ] {
            let cli = produce(bad).unwrap();
            assert!(validate(&cli).is_err(), "{bad:?}");
        }
        assert!(validate(&produce(&["--idempotent", "--max-in-flight", "5"]).unwrap()).is_ok());
        assert!(validate(&produce(&["--max-in-flight", "6", "--acks", "1"]).unwrap()).is_ok());
        // --txn-records needs --transactional-id; the prefix cannot be empty; N >= 1.
        assert!(produce(&["--txn-records", "5"]).is_err());
        assert!(produce(&["--transactional-id", ""]).is_err());
        assert!(produce(&["--transactional-id", "x", "--txn-records", "0"]).is_err());
        // e2e has them too.
        let cli = parse(&[
            "e2e",
            "--bootstrap",
            "h:1",
            "--topic",
            "t",
            "--record-bytes",
            "16",
            "--rate",
            "10",
            "--records",
            "1",
            "--transactional-id",
            "e",
        ])
        .unwrap();
        assert!(tuning(&cli).idempotent());
        assert!(validate(&cli).is_ok());
    }

    #[test]
    fn acks_values() {
        for (s, want) in [("0", 0), ("1", 1), ("all", -1), ("-1", -1)] {
            let cli = parse(&[
                "produce",
                "--bootstrap",
                "h:1",
                "--topic",
                "t",
                "--record-bytes",
                "1",
                "--records",
                "1",
                "--acks",
                s,
            ])
            .unwrap();
            let Command::Produce(a) = &cli.command else {
                panic!()
            };
            assert_eq!(a.acks.wire(), want);
        }
    }
}
