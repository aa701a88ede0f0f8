//! ACLs end to end: bindings created, described and deleted over the Kafka protocol, kept
//! across a restart, and enforced on real clients (rdkafka) as Kafka's authorizer does:
//! librdkafka's own scenarios (tests 0109, 0115, 0119) of a topic denied to everyone, and of a
//! topic that may be described but not read.

mod common;

use std::time::Duration;

use common::{call, Broker, Msg};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse, MetadataRequest, MetadataResponse,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;

const ALL: i8 = 2;
const READ: i8 = 3;
const DESCRIBE: i8 = 8;
const DENY: i8 = 2;
const ALLOW: i8 = 3;
const TOPIC: i8 = 2;
const LITERAL: i8 = 3;
const TOPIC_AUTHORIZATION_FAILED: i16 = 29;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn creation(topic: &str, op: i8, permission: i8) -> AclCreation {
    AclCreation::default()
        .with_resource_type(TOPIC)
        .with_resource_name(s(topic))
        .with_resource_pattern_type(LITERAL)
        .with_principal(s("User:*"))
        .with_host(s("*"))
        .with_operation(op)
        .with_permission_type(permission)
}

fn create(broker: &Broker, creations: Vec<AclCreation>) -> CreateAclsResponse {
    call(
        broker.addr(),
        ApiKey::CreateAcls,
        3,
        &CreateAclsRequest::default().with_creations(creations),
    )
}

/// Every binding on `topic`, as (operation, permission).
fn described(broker: &Broker, topic: &str) -> Vec<(i8, i8)> {
    let resp: DescribeAclsResponse = call(
        broker.addr(),
        ApiKey::DescribeAcls,
        3,
        &DescribeAclsRequest::default()
            .with_resource_type_filter(TOPIC)
            .with_resource_name_filter(Some(s(topic)))
            .with_pattern_type_filter(LITERAL)
            // Null matches any; kafka-protocol's default is "" (which matches only "").
            .with_principal_filter(None)
            .with_host_filter(None)
            .with_operation(1)
            .with_permission_type(1),
    );
    assert_eq!(resp.error_code, 0, "{resp:?}");
    let mut out: Vec<(i8, i8)> = resp
        .resources
        .iter()
        .flat_map(|r| r.acls.iter().map(|a| (a.operation, a.permission_type)))
        .collect();
    out.sort();
    out
}

fn metadata_error(broker: &Broker, topic: &str) -> i16 {
    let resp: MetadataResponse = call(
        broker.addr(),
        ApiKey::Metadata,
        9,
        &MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(s(topic).into()))
        ])),
    );
    resp.topics[0].error_code
}

fn listed_topics(broker: &Broker) -> Vec<String> {
    // A null topic list asks for all topics.
    let resp: MetadataResponse = call(
        broker.addr(),
        ApiKey::Metadata,
        9,
        &MetadataRequest::default().with_topics(None),
    );
    let mut names: Vec<String> = resp
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
        .collect();
    names.sort();
    names
}

/// librdkafka 0109/0115: a topic denied to everyone (All) is left out of a listing of all
/// topics, named it answers TOPIC_AUTHORIZATION_FAILED, and a producer's records to it fail
/// with that error; other topics are untouched; the bindings survive a restart, and deleting
/// them opens the topic again.
#[test]
fn a_topic_denied_to_everyone_is_hidden_and_refuses_writes() {
    let mut broker = Broker::start(&[]);
    broker.create_topic("secret", 1);
    broker.create_topic("open", 1);
    let created = create(&broker, vec![creation("secret", ALL, DENY)]);
    assert!(
        created.results.iter().all(|r| r.error_code == 0),
        "{created:?}"
    );
    assert_eq!(described(&broker, "secret"), vec![(ALL, DENY)]);

    assert_eq!(listed_topics(&broker), vec!["open".to_string()]);
    assert_eq!(
        metadata_error(&broker, "secret"),
        TOPIC_AUTHORIZATION_FAILED
    );
    assert_eq!(metadata_error(&broker, "open"), 0);

    let producer = broker.producer(&[("message.timeout.ms", "10000")]);
    producer.send("secret", Some(0), &Msg::kv("k", "v"));
    producer.send("open", Some(0), &Msg::kv("k", "v"));
    let _ = producer.try_flush(Duration::from_secs(15));
    let deliveries = producer.take_deliveries();
    let secret = deliveries
        .iter()
        .find(|d| d.topic == "secret")
        .expect("a report for secret");
    let error = secret.error.clone().unwrap_or_default();
    assert!(
        error.contains("authoriz") || error.contains("Authoriz"),
        "{deliveries:?}"
    );
    let open = deliveries
        .iter()
        .find(|d| d.topic == "open")
        .expect("a report for open");
    assert_eq!(open.error, None, "{deliveries:?}");

    broker.restart();
    assert_eq!(
        described(&broker, "secret"),
        vec![(ALL, DENY)],
        "kept across a restart"
    );
    assert_eq!(
        metadata_error(&broker, "secret"),
        TOPIC_AUTHORIZATION_FAILED
    );

    let deleted: DeleteAclsResponse = call(
        broker.addr(),
        ApiKey::DeleteAcls,
        3,
        &DeleteAclsRequest::default().with_filters(vec![DeleteAclsFilter::default()
            .with_resource_type_filter(TOPIC)
            .with_resource_name_filter(Some(s("secret")))
            .with_pattern_type_filter(1)
            .with_principal_filter(None)
            .with_host_filter(None)
            .with_operation(1)
            .with_permission_type(1)]),
    );
    assert_eq!(deleted.filter_results[0].matching_acls.len(), 1);
    assert!(described(&broker, "secret").is_empty());
    assert_eq!(metadata_error(&broker, "secret"), 0);
    assert_eq!(
        listed_topics(&broker),
        vec!["open".to_string(), "secret".to_string()]
    );
}

/// librdkafka 0119: Describe allowed and Read denied: the topic is visible, a consumer gets
/// TOPIC_AUTHORIZATION_FAILED for its partitions and no record; a bad binding is refused.
#[test]
fn a_topic_that_may_be_described_but_not_read() {
    let broker = Broker::start(&[]);
    broker.create_topic("readless", 3);
    let producer = broker.producer(&[]);
    for p in 0..3 {
        producer.send("readless", Some(p), &Msg::kv("k", "v"));
    }
    assert!(producer
        .flush_ok(Duration::from_secs(15))
        .iter()
        .all(|d| d.error.is_none()));
    let created = create(
        &broker,
        vec![
            creation("readless", DESCRIBE, ALLOW),
            creation("readless", READ, DENY),
            creation("readless", READ, DENY).with_principal(s("alice")),
        ],
    );
    let codes: Vec<i16> = created.results.iter().map(|r| r.error_code).collect();
    assert_eq!(
        codes,
        vec![0, 0, 42],
        "the last binding's principal is not TYPE:NAME"
    );
    assert_eq!(
        described(&broker, "readless"),
        vec![(READ, DENY), (DESCRIBE, ALLOW)]
    );
    assert_eq!(metadata_error(&broker, "readless"), 0);

    let consumer = broker.consumer(&[("group.id", "readers"), ("auto.offset.reset", "earliest")]);
    consumer.subscribe(&["readless"]).expect("subscribe");
    let mut refused = std::collections::HashSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while refused.len() < 3 && std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => panic!(
                "read a record of a topic denied Read: offset {}",
                m.offset()
            ),
            Some(Err(KafkaError::MessageConsumption(
                RDKafkaErrorCode::TopicAuthorizationFailed,
            ))) => {
                refused.insert("readless");
                // librdkafka reports one error per partition; the topic is what matters here.
                break;
            }
            Some(Err(e)) => {
                let text = e.to_string();
                if text.contains("authoriz") || text.contains("Authoriz") {
                    refused.insert("readless");
                    break;
                }
            }
            None => {}
        }
    }
    assert!(
        !refused.is_empty(),
        "the consumer was never told it may not read"
    );
}
