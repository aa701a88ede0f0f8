//! Unit tests of the configuration: parsing, precedence, errors, reporting.

use super::io_memory::io_memory_for_memlock_limit;
use super::properties::{parse_properties, PropertyEntry};
use super::*;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Writes `contents` to a fresh file under the temp dir and returns its path.
fn temp_properties(contents: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!(
        "shardlog-config-test-{}-{n}.properties",
        std::process::id()
    ));
    std::fs::write(&path, contents).expect("write temp properties file");
    path
}

fn parse(args: &[&str]) -> Result<Config, ConfigError> {
    Config::from_args(std::iter::once("shardlog").chain(args.iter().copied()))
}

fn error_of(args: &[&str]) -> String {
    match parse(args) {
        Ok(config) => panic!("expected an error, got {config:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn defaults() {
    let config = parse(&[]).expect("defaults parse");
    assert_eq!(config.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
    assert_eq!(
        config.listen,
        "127.0.0.1:9092".parse::<SocketAddr>().expect("addr")
    );
    assert_eq!(
        (config.advertise_host.as_str(), config.advertise_port),
        ("127.0.0.1", 9092)
    );
    assert_eq!(config.shards, default_shards());
    assert!((MIN_SHARDS..=MAX_SHARDS).contains(&config.shards));
    assert_eq!(config.node_id, 0);
    assert_eq!(config.num_partitions, 1);
    assert!(config.auto_create_topics_enable);
    assert_eq!(config.default_replication_factor, 1);
    assert_eq!(config.log_segment_bytes, 1_073_741_824);
    assert_eq!(config.log_index_interval_bytes, 4096);
    assert_eq!(config.message_max_bytes, 1_048_588);
    assert_eq!(config.socket_request_max_bytes, 104_857_600);
    assert_eq!(config.log_retention_ms, 168 * 3_600_000);
    assert_eq!(config.log_retention_bytes, -1);
    assert_eq!(config.log_cleanup_policy, "delete");
    assert_eq!(config.log_flush_interval_messages, i64::MAX);
    assert!(config.group_commit);
    assert_eq!(
        config.io_memory_bytes,
        default_io_memory_bytes(config.shards)
    );
    assert_eq!(config.groups.offsets_topic_num_partitions, 50);
    assert_eq!(config.groups.offsets_topic_segment_bytes, 104_857_600);
    assert_eq!(config.groups.offsets_retention_ms, 7 * 24 * 3_600_000);
    assert_eq!(config.groups.offsets_retention_check_interval_ms, 600_000);
    assert_eq!(config.groups.initial_rebalance_delay_ms, 3_000);
    assert_eq!(config.groups.min_session_timeout_ms, 6_000);
    assert_eq!(config.groups.max_session_timeout_ms, 1_800_000);
    assert_eq!(config.groups.max_size, i32::MAX);
    assert_eq!(config.groups, GroupConfig::default());
    assert!(config.explicit.is_empty());

    let for_tests = Config::for_tests(PathBuf::from("/tmp/x"));
    assert_eq!(for_tests.listen.port(), 0);
    assert_eq!(for_tests.shards, 2);
    assert_eq!(for_tests.num_partitions, DEFAULT_NUM_PARTITIONS);
    assert_eq!(for_tests.groups, GroupConfig::default());
}

#[test]
fn file_parsing() {
    let path = temp_properties(
        "# a comment\n\
         ! another comment\n\
         \n\
         num.partitions=3\n\
         \x20\x20log.segment.bytes : 1048576  \n\
         message.max.bytes 2000000\n\
         auto.create.topics.enable=FALSE\n\
         log.cleanup.policy = compact, delete\n\
         process.roles=broker,\\\n\
         \x20\x20\x20\x20controller\n\
         log.dirs=/var/lib/a,/var/lib/b\n",
    );
    let config = parse(&["--config", path.to_str().expect("utf-8 path")]).expect("file parses");
    assert_eq!(config.num_partitions, 3);
    assert_eq!(config.log_segment_bytes, 1_048_576);
    assert_eq!(config.message_max_bytes, 2_000_000);
    assert!(!config.auto_create_topics_enable);
    assert_eq!(config.log_cleanup_policy, "compact,delete");
    assert_eq!(
        config.explicit.get("process.roles").map(String::as_str),
        Some("broker,controller")
    );
    assert_eq!(config.data_dir, PathBuf::from("/var/lib/a"));
    assert_eq!(
        config.explicit.get("log.segment.bytes").map(String::as_str),
        Some("1048576")
    );
    let _ = std::fs::remove_file(path);
}

#[test]
fn missing_file_names_the_file() {
    let message = error_of(&["--config", "/nonexistent/shardlog.properties"]);
    assert!(
        message.contains("/nonexistent/shardlog.properties"),
        "{message}"
    );
    assert!(message.contains("No such file"), "{message}");
}

#[test]
fn precedence_file_then_override_then_flag() {
    let path = temp_properties("num.partitions=3\nlog.dirs=/from/file\nmessage.max.bytes=100\n");
    let file = path.to_str().expect("utf-8 path");
    let config = parse(&[
        "--config",
        file,
        "--override",
        "num.partitions=5",
        "--override",
        "log.dirs=/from/override",
        "--data-dir",
        "/from/flag",
        "--shards",
        "3",
    ])
    .expect("parses");
    assert_eq!(config.num_partitions, 5);
    assert_eq!(config.message_max_bytes, 100);
    assert_eq!(config.data_dir, PathBuf::from("/from/flag"));
    assert_eq!(config.shards, 3);
    assert_eq!(
        config.explicit.get("num.partitions").map(String::as_str),
        Some("5")
    );

    let config =
        parse(&["--config", file, "--override", "log.dirs=/from/override"]).expect("parses");
    assert_eq!(config.data_dir, PathBuf::from("/from/override"));
    let _ = std::fs::remove_file(path);
}

#[test]
fn unknown_key_names_the_key_and_place() {
    let path = temp_properties("num.partitions=1\n\n# c\nlog.segmnt.bytes=100\n");
    let file = path.to_str().expect("utf-8 path");
    let message = error_of(&["--config", file]);
    assert_eq!(
        message,
        format!(
            "unknown config key 'log.segmnt.bytes' (in {file} line 4): see README 'Config keys'"
        )
    );
    let message = error_of(&["--override", "cluster.id=abc"]);
    assert!(
        message.contains("'cluster.id'") && message.contains("--override"),
        "{message}"
    );
    assert!(!message.contains('\n'));
    let _ = std::fs::remove_file(path);
}

#[test]
fn bad_values_name_key_and_value() {
    assert_eq!(
        error_of(&["--override", "num.partitions=abc"]),
        "invalid value 'abc' for 'num.partitions' (--override): expected an integer >= 1"
    );
    let message = error_of(&["--override", "log.segment.bytes=10"]);
    assert!(
        message.contains("'10'") && message.contains("'log.segment.bytes'"),
        "{message}"
    );
    let message = error_of(&["--override", "default.replication.factor=3"]);
    assert!(
        message.contains("'default.replication.factor'"),
        "{message}"
    );
    let message = error_of(&["--override", "num.io.threads=many"]);
    assert!(message.contains("'num.io.threads'"), "{message}");
    let message = error_of(&["--override", "log.cleanup.policy=shred"]);
    assert!(message.contains("'shred'"), "{message}");
    assert!(error_of(&["--override", "num.partitions"]).contains("expected KEY=VALUE"));
    assert!(error_of(&["--shards", "0"]).contains("--shards"));
    assert!(error_of(&["--shards", "257"]).contains("between 1 and 256"));
    assert!(error_of(&["--listen", "nohostport"]).contains("--listen"));
    let message = error_of(&["--override", "node.id=1", "--override", "broker.id=2"]);
    assert!(
        message.contains("node.id") && message.contains("broker.id"),
        "{message}"
    );
}

#[test]
fn help_and_version_are_clap_errors() {
    assert!(matches!(parse(&["--help"]), Err(ConfigError::Clap(_))));
    assert!(matches!(parse(&["--version"]), Err(ConfigError::Clap(_))));
    assert!(matches!(parse(&["--bogus"]), Err(ConfigError::Clap(_))));
}

#[test]
fn listeners() {
    // Kafka's stock KRaft combined-mode server.properties.
    let path = temp_properties(
        "process.roles=broker,controller\n\
         node.id=1\n\
         controller.quorum.voters=1@localhost:9093\n\
         listeners=PLAINTEXT://:9092,CONTROLLER://:9093\n\
         inter.broker.listener.name=PLAINTEXT\n\
         advertised.listeners=PLAINTEXT://localhost:9092\n\
         controller.listener.names=CONTROLLER\n\
         listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL\n",
    );
    let file = path.to_str().expect("utf-8 path");
    let config = parse(&["--config", file]).expect("stock file parses");
    assert_eq!(
        config.listen,
        "0.0.0.0:9092".parse::<SocketAddr>().expect("addr")
    );
    assert_eq!(
        (config.advertise_host.as_str(), config.advertise_port),
        ("localhost", 9092)
    );
    assert_eq!(config.node_id, 1);

    // Dedicated flags beat the keys.
    let config = parse(&[
        "--config",
        file,
        "--listen",
        "localhost:0",
        "--advertise",
        "broker.example:19092",
    ])
    .expect("parses");
    assert_eq!(
        config.listen,
        "127.0.0.1:0".parse::<SocketAddr>().expect("addr")
    );
    assert_eq!(
        (config.advertise_host.as_str(), config.advertise_port),
        ("broker.example", 19092)
    );

    // Without advertised.listeners the listen host is advertised as given.
    let config = parse(&["--listen", "localhost:9999"]).expect("parses");
    assert_eq!(
        (config.advertise_host.as_str(), config.advertise_port),
        ("localhost", 9999)
    );
    let config = parse(&["--override", "listeners=PLAINTEXT://127.0.0.1:9095"]).expect("parses");
    assert_eq!(config.listen.port(), 9095);
    assert_eq!(
        (config.advertise_host.as_str(), config.advertise_port),
        ("127.0.0.1", 9095)
    );

    let message = error_of(&["--override", "listeners=SSL://:9093"]);
    assert!(
        message.contains("'listeners'")
            && message.contains("only PLAINTEXT listeners are supported"),
        "{message}"
    );
    let message = error_of(&["--override", "advertised.listeners=SASL_SSL://host:9093"]);
    assert!(message.contains("'advertised.listeners'"), "{message}");
    let message = error_of(&["--override", "listeners=localhost:9092"]);
    assert!(message.contains("NAME://HOST:PORT"), "{message}");
    let _ = std::fs::remove_file(path);
}

#[test]
fn retention_precedence() {
    let hours = parse(&["--override", "log.retention.hours=2"]).expect("parses");
    assert_eq!(hours.log_retention_ms, 2 * MS_PER_HOUR);
    let minutes = parse(&[
        "--override",
        "log.retention.hours=2",
        "--override",
        "log.retention.minutes=3",
    ])
    .expect("parses");
    assert_eq!(minutes.log_retention_ms, 3 * MS_PER_MINUTE);
    let ms = parse(&[
        "--override",
        "log.retention.ms=1234",
        "--override",
        "log.retention.hours=2",
        "--override",
        "log.retention.minutes=3",
    ])
    .expect("parses");
    assert_eq!(ms.log_retention_ms, 1234);
    let unlimited = parse(&["--override", "log.retention.hours=-1"]).expect("parses");
    assert_eq!(unlimited.log_retention_ms, RETENTION_UNLIMITED);
}

#[test]
fn group_settings() {
    let path = temp_properties(
        "offsets.topic.num.partitions=3\n\
         offsets.topic.segment.bytes=1048576\n\
         offsets.retention.minutes=60\n\
         offsets.topic.replication.factor=1\n",
    );
    let file = path.to_str().expect("utf-8 path");
    let config = parse(&[
        "--config",
        file,
        "--override",
        "offsets.retention.check.interval.ms=1000",
        "--override",
        "group.initial.rebalance.delay.ms=0",
        "--override",
        "group.min.session.timeout.ms=100",
        "--override",
        "group.max.session.timeout.ms=200",
        "--override",
        "group.max.size=10",
    ])
    .expect("parses");
    assert_eq!(
        config.groups,
        GroupConfig {
            offsets_topic_num_partitions: 3,
            offsets_topic_segment_bytes: 1_048_576,
            offsets_retention_ms: 60 * MS_PER_MINUTE,
            offsets_retention_check_interval_ms: 1000,
            initial_rebalance_delay_ms: 0,
            min_session_timeout_ms: 100,
            max_session_timeout_ms: 200,
            max_size: 10,
            ..GroupConfig::default()
        }
    );
    // Still a compatibility key: accepted and reported, not typed.
    assert_eq!(
        config
            .explicit
            .get("offsets.topic.replication.factor")
            .map(String::as_str),
        Some("1")
    );
    let _ = std::fs::remove_file(path);

    // Equal bounds are a valid range; only min > max is refused.
    let equal = parse(&[
        "--override",
        "group.min.session.timeout.ms=5000",
        "--override",
        "group.max.session.timeout.ms=5000",
    ])
    .expect("parses");
    assert_eq!(equal.groups.min_session_timeout_ms, 5000);
    assert_eq!(equal.groups.max_session_timeout_ms, 5000);
    assert_eq!(
        error_of(&[
            "--override",
            "group.min.session.timeout.ms=7000",
            "--override",
            "group.max.session.timeout.ms=6999",
        ]),
        "group.min.session.timeout.ms 7000 is greater than group.max.session.timeout.ms 6999: the minimum must not exceed the maximum"
    );
    // Against the other bound's default too.
    let message = error_of(&["--override", "group.max.session.timeout.ms=1000"]);
    assert!(
        message.contains("6000") && message.contains("1000") && !message.contains('\n'),
        "{message}"
    );
}

/// Each consumer-group key refuses values outside its bounds, naming the key.
#[test]
fn group_settings_bounds() {
    assert_eq!(
        error_of(&["--override", "offsets.topic.num.partitions=0"]),
        "invalid value '0' for 'offsets.topic.num.partitions' (--override): expected an integer between 1 and 10000"
    );
    assert!(
        error_of(&["--override", "offsets.topic.num.partitions=10001"])
            .contains("between 1 and 10000")
    );
    assert!(error_of(&["--override", "offsets.topic.segment.bytes=13"])
        .contains("'offsets.topic.segment.bytes'"));
    assert!(
        error_of(&["--override", "offsets.topic.segment.bytes=2147483648"])
            .contains("'offsets.topic.segment.bytes'")
    );
    assert_eq!(
        error_of(&["--override", "offsets.retention.minutes=0"]),
        "invalid value '0' for 'offsets.retention.minutes' (--override): expected an integer >= 1"
    );
    assert!(
        error_of(&["--override", "offsets.retention.check.interval.ms=0"])
            .contains("'offsets.retention.check.interval.ms'")
    );
    assert!(
        error_of(&["--override", "group.initial.rebalance.delay.ms=-1"])
            .contains("expected an integer >= 0")
    );
    assert!(
        error_of(&["--override", "group.min.session.timeout.ms=soon"])
            .contains("'group.min.session.timeout.ms'")
    );
    assert!(
        error_of(&["--override", "group.max.session.timeout.ms=2147483648"])
            .contains("'group.max.session.timeout.ms'")
    );
    assert_eq!(
        error_of(&["--override", "group.max.size=0"]),
        "invalid value '0' for 'group.max.size' (--override): expected an integer >= 1"
    );
}

#[test]
fn io_memory_fits_an_8_mib_limit_with_2_shards() {
    let limit = 8 * 1024 * 1024;
    let per_shard = io_memory_for_memlock_limit(Some(limit), 2);
    assert_eq!(per_shard % IO_MEMORY_ALIGN_BYTES, 0);
    assert!(per_shard >= IO_MEMORY_FLOOR_BYTES);
    let locked =
        2 * (IO_MEMORY_REGISTRATIONS_PER_SHARD * per_shard + IO_RING_LOCKED_BYTES_PER_SHARD);
    assert!(locked + IO_MEMORY_HEADROOM_BYTES <= limit, "{locked}");
    assert_eq!(per_shard, 1024 * 1024);
    assert_eq!(io_memory_for_memlock_limit(None, 2), IO_MEMORY_CAP_BYTES);
    assert_eq!(
        io_memory_for_memlock_limit(Some(limit), 256),
        IO_MEMORY_FLOOR_BYTES
    );
    assert_eq!(
        io_memory_for_memlock_limit(Some(1 << 40), 1),
        IO_MEMORY_CAP_BYTES
    );
    let explicit = parse(&["--override", "shardlog.io.memory.bytes=524288"]).expect("parses");
    assert_eq!(explicit.io_memory_bytes, 524_288);
}

#[test]
fn broker_entries_are_sorted_and_report_explicit_keys() {
    let config = parse(&[
        "--override",
        "num.io.threads=8",
        "--override",
        "num.partitions=4",
    ])
    .expect("parses");
    let entries = config.broker_config_entries();
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
    let find = |name: &str| entries.iter().find(|e| e.name == name).cloned();
    let threads = find("num.io.threads").expect("compat key reported");
    assert_eq!(threads.value, "8");
    assert!(!threads.is_default());
    let partitions = find("num.partitions").expect("typed key reported");
    assert_eq!(
        (partitions.value.as_str(), partitions.is_default()),
        ("4", false)
    );
    let segment = find("log.segment.bytes").expect("typed key reported");
    // log.segment.bytes can change at runtime (AlterConfigs); num.partitions cannot.
    assert!(segment.is_default() && !segment.read_only);
    assert!(partitions.read_only);
    assert_eq!(
        find("log.retention.ms").map(|e| e.value),
        Some("604800000".to_string())
    );

    for (name, value) in [
        ("offsets.topic.num.partitions", "50"),
        ("offsets.topic.segment.bytes", "104857600"),
        ("offsets.retention.minutes", "10080"),
        ("offsets.retention.check.interval.ms", "600000"),
        ("group.initial.rebalance.delay.ms", "3000"),
        ("group.min.session.timeout.ms", "6000"),
        ("group.max.session.timeout.ms", "1800000"),
        ("group.max.size", "2147483647"),
    ] {
        let entry = find(name).expect("group key reported");
        assert_eq!(
            (entry.value.as_str(), entry.is_default()),
            (value, true),
            "{name}"
        );
    }
    let config = parse(&[
        "--override",
        "offsets.retention.minutes=90",
        "--override",
        "group.max.size=5",
        "--override",
        "group.initial.rebalance.delay.ms=3000",
    ])
    .expect("parses");
    let entries = config.broker_config_entries();
    let find = |name: &str| entries.iter().find(|e| e.name == name).cloned();
    let retention = find("offsets.retention.minutes").expect("reported");
    assert_eq!(
        (retention.value.as_str(), retention.is_default()),
        ("90", false)
    );
    let size = find("group.max.size").expect("reported");
    assert_eq!((size.value.as_str(), size.is_default()), ("5", false));
    // Set explicitly to the default value is still not a default.
    let delay = find("group.initial.rebalance.delay.ms").expect("reported");
    assert_eq!((delay.value.as_str(), delay.is_default()), ("3000", false));
    assert!(find("group.max.session.timeout.ms")
        .expect("reported")
        .is_default());
}

#[test]
fn topic_configs() {
    assert!(validate_topic_config("cleanup.policy", "compact,delete").is_ok());
    assert!(validate_topic_config("retention.ms", "-1").is_ok());
    assert!(validate_topic_config("compression.type", "zstd").is_ok());
    assert!(validate_topic_config("min.cleanable.dirty.ratio", "0.1").is_ok());
    assert!(validate_topic_config("leader.replication.throttled.replicas", "0:1, 1:1").is_ok());
    let message = validate_topic_config("retention.ms", "soon").expect_err("bad value");
    assert!(
        message.contains("'soon'") && message.contains("'retention.ms'"),
        "{message}"
    );
    assert!(validate_topic_config("compression.type", "brotli").is_err());
    assert!(validate_topic_config("message.timestamp.type", "createtime").is_err());
    assert!(validate_topic_config("segment.bytes", "13").is_err());
    assert!(validate_topic_config("retention.mss", "1")
        .expect_err("unknown")
        .contains("retention.mss"));

    let config = Config::for_tests(PathBuf::from("/tmp/x"));
    let defaults = config.topic_config_defaults();
    assert_eq!(defaults.len(), KEYS.iter().filter(|k| k.is_topic()).count());
    for (key, value) in &defaults {
        assert!(
            validate_topic_config(key, value).is_ok(),
            "default {key}={value} must validate"
        );
    }
    let get = |key: &str| {
        defaults
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        get("segment.bytes"),
        Some(DEFAULT_LOG_SEGMENT_BYTES.to_string())
    );
    assert_eq!(get("cleanup.policy"), Some("delete".to_string()));
}

#[test]
fn properties_escapes_and_continuations() {
    let entries = parse_properties("a\\ b = x\\ty\nc:\\u0041\nd=line\\\n   two\n").expect("parses");
    assert_eq!(
        entries,
        vec![
            PropertyEntry {
                line: 1,
                key: "a b".to_string(),
                value: "x\ty".to_string()
            },
            PropertyEntry {
                line: 2,
                key: "c".to_string(),
                value: "A".to_string()
            },
            PropertyEntry {
                line: 3,
                key: "d".to_string(),
                value: "linetwo".to_string()
            },
        ]
    );
    assert!(parse_properties("k=\\u00zz\n").is_err());
}

/// The admin HTTP listener is off unless asked for; its flag beats its key, and a bad address
/// in either is refused at start with one line naming it.
#[test]
fn http_listen_flag_and_key() {
    assert_eq!(parse(&[]).expect("defaults").http_listen, "");
    let keyed = parse(&["--override", "shardlog.http.listen=127.0.0.1:9644"]).expect("key");
    assert_eq!(keyed.http_listen, "127.0.0.1:9644");
    let flagged = parse(&[
        "--override",
        "shardlog.http.listen=127.0.0.1:9644",
        "--http-listen",
        "0.0.0.0:19644",
    ])
    .expect("flag");
    assert_eq!(flagged.http_listen, "0.0.0.0:19644");
    let e = error_of(&["--http-listen", "localhost"]);
    assert!(e.contains("--http-listen") && !e.contains('\n'), "{e}");
    let e = error_of(&["--override", "shardlog.http.listen=nowhere"]);
    assert!(e.contains("shardlog.http.listen"), "{e}");
}

/// `--print-config` shows every key with its effective value and where it came from: the file
/// and line, `--override`, a dedicated flag, or the default.
#[test]
fn print_config_names_each_values_source() {
    let file = temp_properties("num.partitions=3\nlog.dir=/tmp/from-file\n");
    let config = parse(&[
        "--config",
        file.to_str().expect("utf-8 path"),
        "--override",
        "log.retention.hours=5",
        "--listen",
        "127.0.0.1:19092",
        "--print-config",
    ])
    .expect("parse");
    assert!(config.print_only);
    let text = config.print_config();
    let line = |key: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("no line for {key} in\n{text}"))
            .to_string()
    };
    assert!(
        line("num.partitions").contains(" 3 "),
        "{}",
        line("num.partitions")
    );
    assert!(
        line("num.partitions").ends_with("line 1"),
        "{}",
        line("num.partitions")
    );
    assert!(
        line("log.dirs").contains("/tmp/from-file"),
        "{}",
        line("log.dirs")
    );
    assert!(
        line("log.dirs").ends_with("(as log.dir)"),
        "{}",
        line("log.dirs")
    );
    assert!(
        line("log.retention.hours").ends_with("--override"),
        "{}",
        line("log.retention.hours")
    );
    assert!(
        line("listeners").ends_with("--listen"),
        "{}",
        line("listeners")
    );
    assert!(
        line("message.max.bytes").ends_with("default"),
        "{}",
        line("message.max.bytes")
    );
}
