//! The admin tools end to end: the `bin/kafka-*.sh` wrappers (through `bash`, as
//! librdkafka's test suite runs them) and `shardlog topics|groups|configs|acls` against a real
//! broker over TCP, checked against what rdkafka clients see.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{admin_options, assign, Broker, Msg, CALL_TIMEOUT};
use rdkafka::admin::{ConfigSource, ResourceSpecifier};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

/// How long a group may take to settle (join, assignment, leave).
const SETTLE: Duration = Duration::from_secs(30);

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

/// The rows of a `--describe` offsets table, each split into its columns, keyed by topic and
/// partition.
fn describe_rows(out: &str) -> Vec<Vec<String>> {
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .expect("a header line")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID"
        ],
        "{out}"
    );
    let mut rows: Vec<Vec<String>> = lines
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    for r in &rows {
        assert_eq!(r.len(), 9, "a row with 9 columns: {r:?}\n{out}");
    }
    rows.sort_by(|a, b| (&a[1], &a[2]).cmp(&(&b[1], &b[2])));
    rows
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

/// A consumer of `group` that commits by hand.
fn group_consumer(b: &Broker, group: &str) -> BaseConsumer {
    let mut c = b.client_config();
    c.set("group.id", group)
        .set("client.id", "lag-checker")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    c.create().expect("create group consumer")
}

fn tpl(topic: &str, offsets: &[(i32, i64)]) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for (p, o) in offsets {
        tpl.add_partition_offset(topic, *p, Offset::Offset(*o))
            .unwrap();
    }
    tpl
}

/// The group's committed offsets as rdkafka reads them (OffsetFetch from another client).
fn committed(b: &Broker, group: &str, topic: &str, partitions: &[i32]) -> Vec<i64> {
    let c = b.consumer(&[("group.id", group)]);
    let asked = tpl(
        topic,
        &partitions.iter().map(|p| (*p, 0)).collect::<Vec<_>>(),
    );
    let mut asked = asked;
    for p in partitions {
        asked
            .set_partition_offset(topic, *p, Offset::Invalid)
            .unwrap();
    }
    let got = c
        .committed_offsets(asked, CALL_TIMEOUT)
        .expect("committed offsets");
    partitions
        .iter()
        .map(|p| match got.find_partition(topic, *p).unwrap().offset() {
            Offset::Offset(o) => o,
            other => panic!("partition {p}: committed {other:?}"),
        })
        .collect()
}

/// kafka-consumer-groups.sh: --describe shows Kafka's columns and the right lag, for an active
/// and for a stopped group; --reset-offsets is refused while members are active, its dry run
/// changes nothing, and --execute moves the committed offsets to the log start (which
/// DeleteRecords moved); --list and --delete.
#[test]
fn groups_describe_lag_and_reset() {
    let b = Broker::start(&["--override", "group.initial.rebalance.delay.ms=0"]);
    let bs = b.bootstrap();
    let (topic, group) = ("lagged", "lag-group");
    b.create_topic(topic, 2);
    let producer = b.producer(&[]);
    for (p, n) in [(0, 10), (1, 6)] {
        for i in 0..n {
            producer.send(topic, Some(p), &Msg::kv(format!("k{i}"), format!("v{i}")));
        }
    }
    producer.flush_ok(CALL_TIMEOUT);

    // A live member: assigned both partitions, commits 4 and 2.
    let consumer = group_consumer(&b, group);
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + SETTLE;
    while consumer.assignment().map(|a| a.count()).unwrap_or(0) < 2 {
        assert!(Instant::now() < deadline, "no assignment within {SETTLE:?}");
        let _ = consumer.poll(Duration::from_millis(100));
    }
    consumer
        .commit(&tpl(topic, &[(0, 4), (1, 2)]), CommitMode::Sync)
        .expect("commit");

    let out = ok(
        "kafka-consumer-groups.sh",
        &["--bootstrap-server", &bs, "--describe", "--group", group],
    );
    assert!(
        out.starts_with("\nGROUP ") && out.ends_with('\n'),
        "{out:?}"
    );
    let rows = describe_rows(&out);
    assert_eq!(rows.len(), 2, "{out}");
    for (row, (p, current, end)) in rows.iter().zip([(0, 4, 10), (1, 2, 6)]) {
        assert_eq!(
            row[..6],
            [
                group.to_string(),
                topic.into(),
                p.to_string(),
                current.to_string(),
                end.to_string(),
                (end - current).to_string()
            ],
            "{out}"
        );
        assert_ne!(row[6], "-", "an active member owns partition {p}: {out}");
        assert_eq!(row[8], "lag-checker");
    }

    // Resetting an active group is refused with Kafka's message.
    let refused = tool(
        "kafka-consumer-groups.sh",
        &[
            "--bootstrap-server",
            &bs,
            "--reset-offsets",
            "--group",
            group,
            "--all-topics",
            "--to-earliest",
            "--execute",
        ],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stdout(&refused).contains(&format!("Error: Assignments can only be reset if the group '{group}' is inactive, but the current state is Stable.")),
        "{}",
        stdout(&refused)
    );
    assert_eq!(committed(&b, group, topic, &[0, 1]), [4, 2]);

    // Stop the member; the group empties (LeaveGroup) and keeps its offsets.
    drop(consumer);
    let deadline = Instant::now() + SETTLE;
    let out = loop {
        let o = tool(
            "kafka-consumer-groups.sh",
            &["--bootstrap-server", &bs, "--describe", "--group", group],
        );
        if stderr(&o).contains(&format!("Consumer group '{group}' has no active members.")) {
            assert!(o.status.success());
            break stdout(&o);
        }
        assert!(
            Instant::now() < deadline,
            "the group did not empty: {}",
            stderr(&o)
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let rows = describe_rows(&out);
    for (row, (p, current, end)) in rows.iter().zip([(0, 4, 10), (1, 2, 6)]) {
        assert_eq!(
            row[..],
            [
                group.to_string(),
                topic.into(),
                p.to_string(),
                current.to_string(),
                end.to_string(),
                (end - current).to_string(),
                "-".into(),
                "-".into(),
                "-".into()
            ],
            "{out}"
        );
    }

    // The log of partition 0 now starts at 3.
    let admin = b.admin();
    futures::executor::block_on(admin.delete_records(&tpl(topic, &[(0, 3)]), &admin_options()))
        .expect("DeleteRecords");
    assert_eq!(b.watermarks(topic, 0), (3, 10));

    // The dry run (the default) warns, shows the plan and changes nothing.
    let dry = tool(
        "kafka-consumer-groups.sh",
        &[
            "--bootstrap-server",
            &bs,
            "--reset-offsets",
            "--group",
            group,
            "--all-topics",
            "--to-earliest",
        ],
    );
    assert!(dry.status.success());
    assert!(
        stderr(&dry)
            .starts_with("WARN: No action will be performed as the --execute option is missing."),
        "{}",
        stderr(&dry)
    );
    let plan = format!(
        "\n{:<30} {:<30} {:<10} {:<15}\n{group:<30} {topic:<30} {:<10} {:<15}\n{group:<30} {topic:<30} {:<10} {:<15}\n",
        "GROUP", "TOPIC", "PARTITION", "NEW-OFFSET", 0, 3, 1, 0
    );
    assert_eq!(stdout(&dry), plan);
    assert_eq!(committed(&b, group, topic, &[0, 1]), [4, 2]);
    let dry = ok(
        "kafka-consumer-groups.sh",
        &[
            "--bootstrap-server",
            &bs,
            "--reset-offsets",
            "--group",
            group,
            "--topic",
            &format!("{topic}:1"),
            "--shift-by",
            "3",
            "--dry-run",
        ],
    );
    assert!(
        dry.contains(&format!("\n{group:<30} {topic:<30} {:<10} {:<15}\n", 1, 5)),
        "{dry}"
    );
    assert_eq!(committed(&b, group, topic, &[0, 1]), [4, 2]);

    // --execute applies it.
    let out = ok(
        "kafka-consumer-groups.sh",
        &[
            "--bootstrap-server",
            &bs,
            "--reset-offsets",
            "--group",
            group,
            "--all-topics",
            "--to-earliest",
            "--execute",
        ],
    );
    assert_eq!(out, plan);
    assert_eq!(committed(&b, group, topic, &[0, 1]), [3, 0]);
    let rows = describe_rows(&ok(
        "kafka-consumer-groups.sh",
        &["--bootstrap-server", &bs, "--describe", "--group", group],
    ));
    assert_eq!(rows[0][3..6], ["3", "10", "7"]);
    assert_eq!(rows[1][3..6], ["0", "6", "6"]);

    // A consumer of the group now starts where the reset put it.
    let reader = group_consumer(&b, group);
    assign(&reader, &[(topic, 1, Offset::Stored)]);
    match reader.poll(CALL_TIMEOUT) {
        Some(Ok(m)) => assert_eq!(m.offset(), 0, "the reset offset is where the group resumes"),
        Some(Err(e)) => panic!("consumer error: {e}"),
        None => panic!("no record within {CALL_TIMEOUT:?}"),
    }
    drop(reader);

    assert!(ok(
        "kafka-consumer-groups.sh",
        &["--bootstrap-server", &bs, "--list"]
    )
    .lines()
    .any(|l| l == group));
    assert_eq!(
        ok(
            "kafka-consumer-groups.sh",
            &["--bootstrap-server", &bs, "--delete", "--group", group]
        ),
        format!("Deletion of requested consumer groups ('{group}') was successful.\n")
    );
    let gone = tool(
        "kafka-consumer-groups.sh",
        &["--bootstrap-server", &bs, "--describe", "--group", group],
    );
    assert_eq!(gone.status.code(), Some(1));
    assert_eq!(
        stdout(&gone),
        format!("\nError: Consumer group '{group}' does not exist.\n")
    );
}

/// The topic's configs as rdkafka's DescribeConfigs reports them: its overrides only.
fn topic_overrides(b: &Broker, topic: &str) -> Vec<(String, String)> {
    let admin = b.admin();
    let res = futures::executor::block_on(
        admin.describe_configs(&[ResourceSpecifier::Topic(topic)], &admin_options()),
    )
    .expect("DescribeConfigs");
    let r = res.into_iter().next().unwrap().expect("topic configs");
    let mut out: Vec<(String, String)> = r
        .entries
        .iter()
        .filter(|e| matches!(e.source, ConfigSource::DynamicTopic))
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
        .collect();
    out.sort();
    out
}

/// kafka-configs.sh: --describe and --alter (--add-config with a list value, --delete-config)
/// round trip on a topic, as rdkafka sees it, and on the brokers' cluster-wide default.
#[test]
fn configs_describe_alter_round_trip() {
    let b = Broker::start(&[]);
    let bs = b.bootstrap();
    b.create_topic("tuned", 1);
    let describe = [
        "--bootstrap-server",
        &bs,
        "--describe",
        "--entity-type",
        "topics",
        "--entity-name",
        "tuned",
    ];
    assert_eq!(
        ok("kafka-configs.sh", &describe),
        "Dynamic configs for topic tuned are:\n"
    );

    let out = ok(
        "kafka-configs.sh",
        &[
            "--bootstrap-server",
            &bs,
            "--alter",
            "--entity-type",
            "topics",
            "--entity-name",
            "tuned",
            "--add-config",
            "retention.ms=60000,cleanup.policy=[compact,delete]",
        ],
    );
    assert_eq!(out, "Completed updating config for topic tuned.\n");
    assert_eq!(
        topic_overrides(&b, "tuned"),
        [
            ("cleanup.policy".into(), "compact,delete".into()),
            ("retention.ms".into(), "60000".into())
        ]
    );
    let out = ok("kafka-configs.sh", &describe);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[1].starts_with("  cleanup.policy=compact,delete sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:cleanup.policy=compact,delete"), "{out}");
    assert!(lines[2].starts_with("  retention.ms=60000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=60000, "), "{out}");

    let out = ok(
        "kafka-configs.sh",
        &[
            "--bootstrap-server",
            &bs,
            "--alter",
            "--topic",
            "tuned",
            "--delete-config",
            "retention.ms",
        ],
    );
    assert_eq!(out, "Completed updating config for topic tuned.\n");
    assert_eq!(
        topic_overrides(&b, "tuned"),
        [("cleanup.policy".into(), "compact,delete".into())]
    );

    // Only keys that are set can be deleted, as Kafka's tool checks.
    let bad = tool(
        "kafka-configs.sh",
        &[
            "--bootstrap-server",
            &bs,
            "--alter",
            "--topic",
            "tuned",
            "--delete-config",
            "retention.ms",
        ],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(stderr(&bad), "Invalid config(s): retention.ms\n");
    // A key the broker refuses: an error and exit 1.
    let bad = tool(
        "kafka-configs.sh",
        &[
            "--bootstrap-server",
            &bs,
            "--alter",
            "--topic",
            "tuned",
            "--add-config",
            "no.such.key=1",
        ],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).starts_with("Error while executing config command with args '"),
        "{}",
        stderr(&bad)
    );

    // Brokers: the cluster-wide default.
    let out = ok(
        "kafka-configs.sh",
        &[
            "--bootstrap-server",
            &bs,
            "--alter",
            "--entity-type",
            "brokers",
            "--entity-default",
            "--add-config",
            "log.retention.ms=3600000",
        ],
    );
    assert_eq!(
        out,
        "Completed updating default config for brokers in the cluster.\n"
    );
    // --command-config is accepted and ignored, with a note on stderr.
    let o = tool(
        "kafka-configs.sh",
        &[
            "--bootstrap-server",
            &bs,
            "--describe",
            "--entity-type",
            "brokers",
            "--entity-default",
            "--command-config",
            "/dev/null",
        ],
    );
    assert!(o.status.success());
    assert!(
        stderr(&o).contains("--command-config /dev/null is ignored"),
        "{}",
        stderr(&o)
    );
    let out = stdout(&o);
    assert_eq!(
        out,
        "Default configs for brokers in the cluster are:\n  log.retention.ms=3600000 sensitive=false synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:log.retention.ms=3600000}\n"
    );
}

/// `shardlog --help` names the admin subcommands, and a usage error of a tool exits 1 before
/// connecting anywhere (as Kafka's tools exit on usage errors).
#[test]
fn help_and_usage_errors() {
    let help = Command::new(shardlog_bin()).arg("--help").output().unwrap();
    assert!(help.status.success());
    let text = stdout(&help);
    for sub in [
        "shardlog topics",
        "shardlog groups",
        "shardlog configs",
        "shardlog acls",
    ] {
        assert!(text.contains(sub), "--help does not mention {sub}:\n{text}");
    }
    let o = tool(
        "kafka-consumer-groups.sh",
        &[
            "--bootstrap-server",
            "127.0.0.1:1",
            "--reset-offsets",
            "--group",
            "g",
            "--to-earliest",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("One of the reset scopes should be defined: --all-topics, --topic."),
        "{}",
        stderr(&o)
    );
    let o = tool("kafka-topics.sh", &["--bootstrap-server", "127.0.0.1:1"]);
    assert_eq!(o.status.code(), Some(1), "no action is a usage error");
    let o = tool("kafka-topics.sh", &["--help"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("--replication-factor"));
    let o = tool(
        "kafka-acls.sh",
        &["--bootstrap-server", "127.0.0.1:1", "--add", "--topic", "T"],
    );
    assert_eq!(o.status.code(), Some(1), "an ACL needs a principal");
    assert!(
        stderr(&o).contains(
            "You must specify one of: --allow-principal, --deny-principal when trying to add ACLs."
        ),
        "{}",
        stderr(&o)
    );
    let o = tool("kafka-acls.sh", &["--help"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("--deny-principal"));
}

/// Runs `bin/kafka-acls.sh` with `args`, `stdin` as its input.
fn acls_with_input(args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let path = format!("{}/bin/kafka-acls.sh", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new("bash")
        .arg(&path)
        .args(args)
        .env("SHARDLOG_BIN", shardlog_bin())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {path}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("writing stdin");
    child.wait_with_output().expect("kafka-acls.sh output")
}

/// kafka-acls.sh: librdkafka's three command lines (tests 0109, 0115, 0119), through `sh -c`
/// with `$KAFKA_PATH` and `$BROKERS` as its test harness runs them, then `--list` (Kafka 3.9's
/// text), `--remove` answered `y` on stdin, and `--remove --force` of every ACL of the topic.
#[test]
fn acls_librdkafka_command_lines_list_remove() {
    let b = Broker::start(&[]);
    let bs = b.bootstrap();
    for line in [
        "$KAFKA_PATH/bin/kafka-acls.sh --bootstrap-server $BROKERS --add --deny-principal 'User:*' --operation All --deny-host '*' --topic 'acl_t'",
        "$KAFKA_PATH/bin/kafka-acls.sh --bootstrap-server $BROKERS --add --allow-principal 'User:*' --operation Describe --allow-host '*' --topic 'acl_t'",
        "$KAFKA_PATH/bin/kafka-acls.sh --bootstrap-server $BROKERS --add --deny-principal 'User:*' --operation Read --deny-host '*' --topic 'acl_t'",
    ] {
        let o = Command::new("sh")
            .arg("-c")
            .arg(line)
            .env("KAFKA_PATH", env!("CARGO_MANIFEST_DIR"))
            .env("BROKERS", &bs)
            .env("SHARDLOG_BIN", shardlog_bin())
            .output()
            .expect("sh");
        assert!(
            o.status.success(),
            "{line}: exited {}\nstdout:\n{}\nstderr:\n{}",
            o.status,
            stdout(&o),
            stderr(&o)
        );
        assert!(
            stdout(&o).starts_with("Adding ACLs for resource `ResourcePattern(resourceType=TOPIC, name=acl_t, patternType=LITERAL)`: \n \t(principal=User:*, host=*, operation="),
            "{}",
            stdout(&o)
        );
    }
    let resource = "`ResourcePattern(resourceType=TOPIC, name=acl_t, patternType=LITERAL)`";
    let list = [
        "--bootstrap-server",
        bs.as_str(),
        "--list",
        "--topic",
        "acl_t",
    ];
    assert_eq!(
        ok("kafka-acls.sh", &list),
        format!(
            "Current ACLs for resource {resource}: \n \
             \t(principal=User:*, host=*, operation=ALL, permissionType=DENY)\n\
             \t(principal=User:*, host=*, operation=READ, permissionType=DENY)\n\
             \t(principal=User:*, host=*, operation=DESCRIBE, permissionType=ALLOW) \n\n"
        )
    );
    // Every ACL of the cluster: the same three.
    assert_eq!(
        ok("kafka-acls.sh", &["--bootstrap-server", &bs, "--list"]),
        ok("kafka-acls.sh", &list)
    );

    // --remove without --force asks, and `y` goes ahead.
    let o = acls_with_input(
        &[
            "--bootstrap-server",
            &bs,
            "--remove",
            "--deny-principal",
            "User:*",
            "--operation",
            "Read",
            "--topic",
            "acl_t",
        ],
        "y\n",
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(
        stdout(&o),
        "Are you sure you want to remove ACLs: \n \t(principal=User:*, host=*, operation=READ, permissionType=DENY) \n from resource filter `ResourcePatternFilter(resourceType=TOPIC, name=acl_t, patternType=LITERAL)`? (y/n)\n"
    );
    assert_eq!(
        ok("kafka-acls.sh", &list),
        format!(
            "Current ACLs for resource {resource}: \n \
             \t(principal=User:*, host=*, operation=ALL, permissionType=DENY)\n\
             \t(principal=User:*, host=*, operation=DESCRIBE, permissionType=ALLOW) \n\n"
        )
    );
    // `n` leaves them.
    let o = acls_with_input(
        &["--bootstrap-server", &bs, "--remove", "--topic", "acl_t"],
        "n\n",
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(ok("kafka-acls.sh", &list).contains("operation=ALL"));
    // --force removes every ACL of the topic without asking.
    assert_eq!(
        ok(
            "kafka-acls.sh",
            &[
                "--bootstrap-server",
                &bs,
                "--remove",
                "--force",
                "--topic",
                "acl_t"
            ]
        ),
        ""
    );
    assert_eq!(ok("kafka-acls.sh", &list), "");
}
