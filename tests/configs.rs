//! Dynamic broker configs end to end: AlterConfigs and IncrementalAlterConfigs on BROKER
//! resources, through rdkafka's AdminClient (which names brokers by id) and through raw
//! requests (for the cluster-wide resource "", which the rdkafka crate cannot name, and to
//! read error codes the crate reports as success). What is set is reported with its source by
//! DescribeConfigs, reaches the open partitions at once, and survives kill -9.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{admin_options, call, Broker, Msg};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ApiKey, DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AlterConfig, ConfigSource, NewTopic, ResourceSpecifier, TopicReplication};

const FLUSH: Duration = Duration::from_secs(15);
const WAIT: Duration = Duration::from_secs(20);

const RESOURCE_BROKER: i8 = 4;
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const INVALID_REQUEST: i16 = 42;
const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// IncrementalAlterConfigs v1 on one broker resource: its error code and message.
fn alter_broker(
    broker: &Broker,
    name: &str,
    ops: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> (i16, Option<String>) {
    let configs = ops
        .iter()
        .map(|(key, op, value)| {
            AlterableConfig::default()
                .with_name(StrBytes::from_string(key.to_string()))
                .with_config_operation(*op)
                .with_value(value.map(|v| StrBytes::from_string(v.to_string())))
        })
        .collect();
    let request = IncrementalAlterConfigsRequest::default()
        .with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(RESOURCE_BROKER)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configs(configs)])
        .with_validate_only(validate_only);
    let response: IncrementalAlterConfigsResponse =
        call(broker.addr(), ApiKey::IncrementalAlterConfigs, 1, &request);
    let r = &response.responses[0];
    (
        r.error_code,
        r.error_message.as_ref().map(|m| m.to_string()),
    )
}

/// DescribeConfigs v4 of broker resource `name`: (key, value, source, read-only) per entry.
fn describe_broker_raw(broker: &Broker, name: &str) -> (i16, Vec<(String, String, i8, bool)>) {
    let request =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(RESOURCE_BROKER)
            .with_resource_name(StrBytes::from_string(name.to_string()))]);
    let response: DescribeConfigsResponse =
        call(broker.addr(), ApiKey::DescribeConfigs, 4, &request);
    let result = &response.results[0];
    let entries = result
        .configs
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                c.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                c.config_source,
                c.read_only,
            )
        })
        .collect();
    (result.error_code, entries)
}

/// DescribeConfigs through rdkafka: value, source and read-only flag per key.
fn describe(
    broker: &Broker,
    resource: ResourceSpecifier<'_>,
) -> HashMap<String, (String, ConfigSource, bool)> {
    let admin = broker.admin();
    let found = futures::executor::block_on(admin.describe_configs(&[resource], &admin_options()))
        .expect("DescribeConfigs");
    let resource = found
        .into_iter()
        .next()
        .expect("one resource")
        .expect("described");
    resource
        .entries
        .into_iter()
        .map(|e| {
            (
                e.name,
                (e.value.unwrap_or_default(), e.source, e.is_read_only),
            )
        })
        .collect()
}

/// Takes one key's entry out of a description.
fn entry(
    entries: &mut HashMap<String, (String, ConfigSource, bool)>,
    name: &str,
) -> (String, ConfigSource, bool) {
    entries
        .remove(name)
        .unwrap_or_else(|| panic!("{name} described"))
}

/// Waits (bounded) until `done` holds.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Produces one 5000-byte record and returns its delivery error, if any.
fn produce_large(broker: &Broker, topic: &str) -> Option<String> {
    let producer = broker.producer(&[("linger.ms", "0"), ("message.send.max.retries", "0")]);
    producer.send(topic, Some(0), &Msg::kv("k", vec![b'x'; 5000]));
    producer.flush(FLUSH);
    producer
        .take_deliveries()
        .into_iter()
        .next()
        .expect("a delivery report")
        .error
}

/// A cluster-wide dynamic default (log.retention.ms, set on broker "") is reported with its
/// dynamic source on the broker and inherited by a topic without an override, whose old
/// segments retention then deletes, while a topic that overrides the key keeps its own; a
/// per-broker value set through rdkafka's AdminClient (message.max.bytes) bounds produce at
/// once; read-only keys, other brokers' ids and validate-only requests change nothing; all of
/// it survives kill -9, and a deleted key falls back to the static default.
#[test]
fn dynamic_broker_configs() {
    let mut broker = Broker::start(&["--override", "log.retention.check.interval.ms=200"]);
    let admin = broker.admin();
    let topics = [
        NewTopic::new("inherits", 1, TopicReplication::Fixed(1)).set("segment.bytes", "1024"),
        NewTopic::new("keeps", 1, TopicReplication::Fixed(1))
            .set("segment.bytes", "1024")
            .set("retention.ms", "604800000"),
    ];
    let created = futures::executor::block_on(admin.create_topics(&topics, &admin_options()))
        .expect("CreateTopics");
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
    let producer = broker.producer(&[("linger.ms", "0")]);
    let hour_ago = now_ms() - 3_600_000;
    for topic in ["inherits", "keeps"] {
        for i in 0..20 {
            let mut m = Msg::kv("k", format!("old {i} ").repeat(10));
            m.timestamp = Some(hour_ago);
            producer.send(topic, Some(0), &m);
            // One batch each, so that the 1 KiB segments roll.
            producer.flush_ok(FLUSH);
        }
    }
    // The static default (7 days) keeps hour-old records.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(broker.watermarks("inherits", 0), (0, 20));

    // Cluster-wide default, through the resource rdkafka cannot name.
    assert_eq!(
        alter_broker(
            &broker,
            "",
            &[("log.retention.ms", OP_SET, Some("60000"))],
            false
        ),
        (0, None)
    );
    assert_eq!(
        describe_broker_raw(&broker, ""),
        (
            0,
            vec![(
                "log.retention.ms".to_string(),
                "60000".to_string(),
                SOURCE_DYNAMIC_DEFAULT_BROKER,
                false
            )]
        )
    );
    let mut inherits = describe(&broker, ResourceSpecifier::Topic("inherits"));
    assert_eq!(
        entry(&mut inherits, "retention.ms"),
        ("60000".into(), ConfigSource::DynamicDefaultBroker, false)
    );
    let mut keeps = describe(&broker, ResourceSpecifier::Topic("keeps"));
    assert_eq!(
        entry(&mut keeps, "retention.ms"),
        ("604800000".into(), ConfigSource::DynamicTopic, false)
    );
    // The open partition took the new default: retention deletes its hour-old segments.
    wait_until("retention by the dynamic default", || {
        broker.watermarks("inherits", 0).0 > 0
    });
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(broker.watermarks("keeps", 0).0, 0, "the override wins");

    // Per broker, through rdkafka's AdminClient (AlterConfigs: the broker's whole set).
    let per_broker =
        AlterConfig::new(ResourceSpecifier::Broker(0)).set("message.max.bytes", "2000");
    let altered = futures::executor::block_on(admin.alter_configs(&[per_broker], &admin_options()))
        .expect("AlterConfigs");
    assert!(altered.iter().all(|r| r.is_ok()), "{altered:?}");
    let mut own = describe(&broker, ResourceSpecifier::Broker(0));
    assert_eq!(
        entry(&mut own, "message.max.bytes"),
        ("2000".into(), ConfigSource::DynamicBroker, false)
    );
    assert_eq!(
        entry(&mut own, "log.retention.ms"),
        ("60000".into(), ConfigSource::DynamicDefaultBroker, false)
    );
    assert!(entry(&mut own, "log.dirs").2, "log.dirs is read-only");
    let refused = produce_large(&broker, "inherits").expect("a 5000-byte batch is refused");
    assert!(refused.contains("too large"), "{refused}");

    // Read-only keys are refused with Kafka's message, and nothing changes. (The rdkafka
    // crate reports the refusal as success: describing shows that nothing changed.)
    assert_eq!(
        alter_broker(
            &broker,
            "",
            &[("log.dirs", OP_SET, Some("/elsewhere"))],
            false
        ),
        (
            INVALID_REQUEST,
            Some("Cannot update these configs dynamically: Set(log.dirs)".into())
        )
    );
    let read_only = AlterConfig::new(ResourceSpecifier::Broker(0)).set("num.partitions", "3");
    let _ = futures::executor::block_on(admin.alter_configs(&[read_only], &admin_options()));
    let mut own = describe(&broker, ResourceSpecifier::Broker(0));
    assert_eq!(
        entry(&mut own, "num.partitions"),
        ("1".into(), ConfigSource::Default, true)
    );
    assert_eq!(entry(&mut own, "message.max.bytes").0, "2000");
    // Another broker's id, and a validate-only request, change nothing either.
    let (code, message) = alter_broker(
        &broker,
        "7",
        &[("log.retention.ms", OP_SET, Some("1"))],
        false,
    );
    assert_eq!(
        (code, message.as_deref()),
        (
            INVALID_REQUEST,
            Some("Unexpected broker id, expected 0, but received 7")
        )
    );
    assert_eq!(
        alter_broker(
            &broker,
            "",
            &[("log.segment.bytes", OP_SET, Some("1048576"))],
            true
        ),
        (0, None)
    );
    assert_eq!(describe_broker_raw(&broker, "").1.len(), 1);

    // kill -9: the catalog holds the dynamic configs, applied before partitions open.
    broker.kill9();
    broker.restart();
    assert_eq!(
        entry(
            &mut describe(&broker, ResourceSpecifier::Topic("inherits")),
            "retention.ms"
        ),
        ("60000".into(), ConfigSource::DynamicDefaultBroker, false)
    );
    assert_eq!(
        entry(
            &mut describe(&broker, ResourceSpecifier::Broker(0)),
            "message.max.bytes"
        ),
        ("2000".into(), ConfigSource::DynamicBroker, false)
    );
    assert!(produce_large(&broker, "keeps").is_some());

    // Deleted keys fall back to the static default, also after a restart.
    assert_eq!(
        alter_broker(&broker, "", &[("log.retention.ms", OP_DELETE, None)], false),
        (0, None)
    );
    assert_eq!(
        alter_broker(
            &broker,
            "0",
            &[("message.max.bytes", OP_DELETE, None)],
            false
        ),
        (0, None)
    );
    broker.restart();
    assert_eq!(describe_broker_raw(&broker, ""), (0, vec![]));
    assert_eq!(
        entry(
            &mut describe(&broker, ResourceSpecifier::Topic("inherits")),
            "retention.ms"
        ),
        ("604800000".into(), ConfigSource::Default, false)
    );
    assert_eq!(produce_large(&broker, "keeps"), None);
}
