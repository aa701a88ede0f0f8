//! The admin tools end to end: the `bin/kafka-*.sh` wrappers (through `bash`, as
//! librdkafka's test suite runs them) and `shardlog topics|groups|configs` against a real
//! broker over TCP, checked against what rdkafka clients see.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Broker, CALL_TIMEOUT};

/// The `shardlog` binary the tools run: this build's, unless `SHARDLOG_BIN` names another
/// (engineers sharing one target directory overwrite each other's `target/debug/shardlog`;
/// a copy taken right after building is stable).
fn shardlog_bin() -> String {
    std::env::var("SHARDLOG_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_shardlog").to_string())
}

/// Runs `bin/<script>` with `args` through bash, with the test's `shardlog` binary.
fn tool(script: &str, args: &[&str]) -> Output {
    let path = format!("{}/bin/{script}", env!("CARGO_MANIFEST_DIR"));
    Command::new("bash")
        .arg(&path)
        .args(args)
        .env("SHARDLOG_BIN", shardlog_bin())
        .output()
        .unwrap_or_else(|e| panic!("running {path}: {e}"))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs a tool and asserts it exited 0; returns its stdout.
fn ok(script: &str, args: &[&str]) -> String {
    let o = tool(script, args);
    assert!(
        o.status.success(),
        "{script} {args:?} exited {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// kafka-topics.sh: create (librdkafka's exact command line) with configs, describe, list,
/// alter partitions and delete, with Kafka's output and exit codes; rdkafka sees the result.
#[test]
fn topics_create_describe_alter_delete() {
    let b = Broker::start(&[]);
    let bs = b.bootstrap();
    let out = ok(
        "kafka-topics.sh",
        &[
            "--bootstrap-server",
            &bs,
            "--create",
            "--topic",
            "orders",
            "--replication-factor",
            "1",
            "--partitions",
            "2",
            "--config",
            "retention.ms=123456",
            "--config",
            "cleanup.policy=compact",
        ],
    );
    assert_eq!(out, "Created topic orders.\n");
    assert_eq!(b.partition_count("orders"), Some(2));

    // The way librdkafka's test.c runs it: through /bin/sh, $KAFKA_PATH/bin/..., exit status only.
    let status = Command::new("sh")
        .arg("-c")
        .arg(
            "$KAFKA_PATH/bin/kafka-topics.sh --bootstrap-server $BROKERS --create --topic \"tstopic\" --replication-factor 1 --partitions 1 --config message.timestamp.type=LogAppendTime"
        )
        .env("KAFKA_PATH", env!("CARGO_MANIFEST_DIR"))
        .env("BROKERS", &bs)
        .env("SHARDLOG_BIN", shardlog_bin())
        .status()
        .expect("sh");
    assert!(status.success());
    assert_eq!(b.partition_count("tstopic"), Some(1));

    let out = ok(
        "kafka-topics.sh",
        &["--bootstrap-server", &bs, "--describe", "--topic", "orders"],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let first: Vec<&str> = lines[0].split('\t').collect();
    assert_eq!(first[0], "Topic: orders");
    assert!(
        first[1].starts_with("TopicId: ") && first[1].len() == "TopicId: ".len() + 22,
        "{out}"
    );
    assert_eq!(first[2], "PartitionCount: 2");
    assert_eq!(first[3], "ReplicationFactor: 1");
    assert_eq!(
        first[4],
        "Configs: cleanup.policy=compact,retention.ms=123456"
    );
    for (p, line) in lines[1..].iter().enumerate() {
        assert_eq!(
            *line,
            format!("\tTopic: orders\tPartition: {p}\tLeader: 0\tReplicas: 0\tIsr: 0\tElr: N/A\tLastKnownElr: N/A")
        );
    }

    let out = ok(
        "kafka-topics.sh",
        &["--bootstrap-server", &bs, "--list", "--exclude-internal"],
    );
    assert_eq!(out, "orders\ntstopic\n");

    // Creating it again fails as Kafka's tool does, unless --if-not-exists.
    let again = tool(
        "kafka-topics.sh",
        &["--bootstrap-server", &bs, "--create", "--topic", "orders"],
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stdout(&again).starts_with("Error while executing topic command : "),
        "{}",
        stdout(&again)
    );
    ok(
        "kafka-topics.sh",
        &[
            "--bootstrap-server",
            &bs,
            "--create",
            "--topic",
            "orders",
            "--if-not-exists",
        ],
    );

    let out = ok(
        "kafka-topics.sh",
        &[
            "--bootstrap-server",
            &bs,
            "--alter",
            "--topic",
            "orders",
            "--partitions",
            "5",
        ],
    );
    assert_eq!(out, "");
    assert_eq!(b.partition_count("orders"), Some(5));

    // A topic that does not exist: an error, or nothing with --if-exists.
    let missing = tool(
        "kafka-topics.sh",
        &["--bootstrap-server", &bs, "--describe", "--topic", "nope"],
    );
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(
        stdout(&missing),
        "Error while executing topic command : Topic 'nope' does not exist as expected\n"
    );
    ok(
        "kafka-topics.sh",
        &[
            "--bootstrap-server",
            &bs,
            "--delete",
            "--topic",
            "nope",
            "--if-exists",
        ],
    );

    let out = ok(
        "kafka-topics.sh",
        &["--bootstrap-server", &bs, "--delete", "--topic", "orders"],
    );
    assert_eq!(out, "");
    let deadline = Instant::now() + CALL_TIMEOUT;
    while b.partition_count("orders").is_some() {
        assert!(
            Instant::now() < deadline,
            "orders still listed after --delete"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        ok(
            "kafka-topics.sh",
            &["--bootstrap-server", &bs, "--list", "--exclude-internal"]
        ),
        "tstopic\n"
    );
}

/// `shardlog --help` names the admin subcommands, and a usage error of a tool exits 1 before
/// connecting anywhere (as Kafka's tools exit on usage errors).
#[test]
fn help_and_usage_errors() {
    let help = Command::new(shardlog_bin()).arg("--help").output().unwrap();
    assert!(help.status.success());
    let text = stdout(&help);
    assert!(
        text.contains("shardlog topics"),
        "--help does not mention the tools:\n{text}"
    );
    let o = tool("kafka-topics.sh", &["--bootstrap-server", "127.0.0.1:1"]);
    assert_eq!(o.status.code(), Some(1), "no action is a usage error");
    let o = tool("kafka-topics.sh", &["--help"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("--replication-factor"));
}
