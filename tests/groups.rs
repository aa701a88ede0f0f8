//! Consumer groups end to end with librdkafka (rdkafka crate): members split partitions and
//! rebalance, commits survive a restart, a fresh group follows auto.offset.reset, static
//! members come back without a rebalance, and the admin APIs see and delete groups.
//! Every wait is bounded; nothing asserts on elapsed time. `GROUPS_DEBUG=cgrp,protocol` sets
//! librdkafka's `debug` on the group consumers.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{admin_options, Broker, Msg};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};

/// Generous bound for a rebalance to settle (librdkafka heartbeats every 500 ms here).
const SETTLE: Duration = Duration::from_secs(30);

fn broker() -> Broker {
    Broker::start(&["--override", "group.initial.rebalance.delay.ms=0"])
}

/// Counts the rebalance callbacks a consumer sees.
#[derive(Clone, Default)]
struct Rebalances(Arc<AtomicUsize>);

impl ClientContext for Rebalances {}
impl ConsumerContext for Rebalances {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, _: &Rebalance<'_>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn group_consumer(b: &Broker, group: &str, extra: &[(&str, &str)]) -> BaseConsumer<Rebalances> {
    let mut c = b.client_config();
    c.set("group.id", group)
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "200");
    if let Ok(d) = std::env::var("GROUPS_DEBUG") {
        c.set("debug", d);
    }
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create_with_context(Rebalances::default())
        .expect("create group consumer")
}

fn assigned(c: &BaseConsumer<Rebalances>) -> BTreeSet<i32> {
    c.assignment()
        .map(|tpl| tpl.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default()
}

/// Polls every consumer (they only make progress while polled) until `done` holds for the
/// consumers and the records each got so far; returns those records. Panics at the deadline.
fn poll_until(
    consumers: &[&BaseConsumer<Rebalances>],
    what: &str,
    mut done: impl FnMut(&[&BaseConsumer<Rebalances>], &[Vec<(i32, i64)>]) -> bool,
) -> Vec<Vec<(i32, i64)>> {
    let deadline = Instant::now() + SETTLE;
    let mut got = vec![Vec::new(); consumers.len()];
    loop {
        for (i, c) in consumers.iter().enumerate() {
            while let Some(r) = c.poll(Duration::from_millis(50)) {
                match r {
                    Ok(m) => got[i].push((m.partition(), m.offset())),
                    Err(e) => panic!("consumer {i} error while waiting for {what}: {e}"),
                }
            }
        }
        if done(consumers, &got) {
            return got;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
    }
}

fn committed(c: &BaseConsumer<Rebalances>, topic: &str, partitions: i32) -> Vec<Offset> {
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = c
        .committed_offsets(tpl, common::CALL_TIMEOUT)
        .expect("OffsetFetch");
    (0..partitions)
        .map(|p| got.find_partition(topic, p).expect("partition").offset())
        .collect()
}

/// Records `k{i}`/`v{i}` for each `i`, record `i` to partition `i % partitions`, acks=all.
fn produce_round_robin(b: &Broker, topic: &str, partitions: i32, records: std::ops::Range<i32>) {
    let p = b.producer(&[("acks", "all")]);
    for i in records {
        p.send(
            topic,
            Some(i % partitions),
            &Msg::kv(format!("k{i}"), format!("v{i}")),
        );
    }
    p.flush_ok(Duration::from_secs(10));
}

#[test]
fn members_split_partitions_and_take_over_from_a_leaver() {
    let b = broker();
    let topic = "split";
    b.create_topic(topic, 4);
    let a = group_consumer(&b, "g-split", &[]);
    a.subscribe(&[topic]).expect("subscribe");
    poll_until(&[&a], "a alone owns all 4 partitions", |c, _| {
        assigned(c[0]).len() == 4
    });
    let c2 = group_consumer(&b, "g-split", &[]);
    c2.subscribe(&[topic]).expect("subscribe");
    poll_until(&[&a, &c2], "a and c2 own 2 partitions each", |c, _| {
        let (x, y) = (assigned(c[0]), assigned(c[1]));
        x.len() == 2 && y.len() == 2 && x.is_disjoint(&y)
    });
    // DescribeGroups sees both members, stable, with the consumer protocol.
    let groups = a
        .fetch_group_list(Some("g-split"), common::CALL_TIMEOUT)
        .expect("DescribeGroups");
    let g = &groups.groups()[0];
    assert_eq!(g.state(), "Stable");
    assert_eq!(g.protocol_type(), "consumer");
    assert_eq!(g.members().len(), 2);
    assert!(g.members().iter().all(|m| m.client_host() == "/127.0.0.1"));
    // c2 leaves (close sends LeaveGroup): a gets everything back.
    drop(c2);
    poll_until(&[&a], "a owns all 4 partitions again", |c, _| {
        assigned(c[0]).len() == 4
    });
}

#[test]
fn commits_survive_a_restart_and_a_new_member_resumes_from_them() {
    let mut b = broker();
    let topic = "resume";
    b.create_topic(topic, 2);
    produce_round_robin(&b, topic, 2, 0..20);
    let c = group_consumer(&b, "g-resume", &[]);
    c.subscribe(&[topic]).expect("subscribe");
    assert_eq!(
        committed(&c, topic, 2),
        vec![Offset::Invalid, Offset::Invalid],
        "a fresh group has no committed offsets"
    );
    let got = poll_until(&[&c], "all 20 records", |_, got| got[0].len() >= 20);
    assert_eq!(got[0].len(), 20);
    c.commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
        .expect("commit");
    assert_eq!(
        committed(&c, topic, 2),
        vec![Offset::Offset(10), Offset::Offset(10)]
    );
    drop(c);
    b.restart();
    // Ten more records; a new member of the group gets exactly those.
    produce_round_robin(&b, topic, 2, 20..30);
    let c = group_consumer(&b, "g-resume", &[]);
    c.subscribe(&[topic]).expect("subscribe");
    assert_eq!(
        committed(&c, topic, 2),
        vec![Offset::Offset(10), Offset::Offset(10)],
        "commits survive the restart"
    );
    let got = poll_until(&[&c], "the 10 new records", |_, got| got[0].len() >= 10);
    let mut offsets: Vec<i64> = got[0].iter().map(|(_, o)| *o).collect();
    offsets.sort();
    assert_eq!(
        offsets,
        [10, 10, 11, 11, 12, 12, 13, 13, 14, 14],
        "resumed exactly at the commits"
    );
}

#[test]
fn a_fresh_group_follows_auto_offset_reset() {
    let b = broker();
    let topic = "reset";
    b.create_topic(topic, 1);
    let p = b.producer(&[]);
    for i in 0..5 {
        p.send(topic, Some(0), &Msg::kv("old", format!("{i}")));
    }
    p.flush_ok(Duration::from_secs(10));
    let earliest = group_consumer(&b, "g-earliest", &[("auto.offset.reset", "earliest")]);
    earliest.subscribe(&[topic]).expect("subscribe");
    let got = poll_until(&[&earliest], "earliest reads the old records", |_, g| {
        g[0].len() >= 5
    });
    assert_eq!(got[0][0], (0, 0));
    // enable.partition.eof: the consumer reports when its reset position reached the end.
    let latest = group_consumer(
        &b,
        "g-latest",
        &[
            ("auto.offset.reset", "latest"),
            ("enable.partition.eof", "true"),
        ],
    );
    latest.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + SETTLE;
    loop {
        match latest.poll(Duration::from_millis(100)) {
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(0))) => break,
            Some(Ok(m)) => panic!("latest read an old record at offset {}", m.offset()),
            Some(Err(e)) => panic!("consumer error: {e}"),
            None => assert!(Instant::now() < deadline, "no end of partition reported"),
        }
    }
    p.send(topic, Some(0), &Msg::kv("new", "5"));
    p.flush_ok(Duration::from_secs(10));
    let got = poll_until(&[&latest], "latest reads only the new record", |_, g| {
        !g[0].is_empty()
    });
    assert_eq!(got[0], vec![(0, 5)]);
}

#[test]
fn a_static_member_restarting_keeps_its_partitions_without_a_rebalance() {
    let b = broker();
    let topic = "static";
    b.create_topic(topic, 4);
    let static_conf = [("group.instance.id", "instance-a")];
    let a = group_consumer(&b, "g-static", &static_conf);
    a.subscribe(&[topic]).expect("subscribe");
    poll_until(&[&a], "a owns all 4 partitions", |c, _| {
        assigned(c[0]).len() == 4
    });
    let other = group_consumer(&b, "g-static", &[("group.instance.id", "instance-b")]);
    other.subscribe(&[topic]).expect("subscribe");
    poll_until(
        &[&a, &other],
        "two static members share the partitions",
        |c, _| assigned(c[0]).len() == 2 && assigned(c[1]).len() == 2,
    );
    let a_parts = assigned(&a);
    let other_parts = assigned(&other);
    let other_rebalances = other.context().0.load(Ordering::SeqCst);
    // a restarts: librdkafka does not send LeaveGroup for a static member, and the new
    // incarnation joins with the same instance id within the session timeout.
    drop(a);
    let a2 = group_consumer(&b, "g-static", &static_conf);
    a2.subscribe(&[topic]).expect("subscribe");
    poll_until(&[&a2, &other], "a2 gets a's partitions back", |c, _| {
        assigned(c[0]) == a_parts
    });
    // Keep both polling a few heartbeats' worth: the other member must not be rebalanced.
    let until = Instant::now() + Duration::from_secs(3);
    poll_until(&[&a2, &other], "three seconds of heartbeats", |_, _| {
        Instant::now() >= until
    });
    assert_eq!(assigned(&other), other_parts);
    assert_eq!(
        other.context().0.load(Ordering::SeqCst),
        other_rebalances,
        "the other static member saw no rebalance"
    );
}

#[test]
fn admin_lists_describes_and_deletes_groups() {
    let b = broker();
    let topic = "admin";
    b.create_topic(topic, 1);
    let c = group_consumer(&b, "g-admin", &[]);
    c.subscribe(&[topic]).expect("subscribe");
    poll_until(&[&c], "assigned", |c, _| assigned(c[0]).len() == 1);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(0))
        .unwrap();
    c.commit(&tpl, rdkafka::consumer::CommitMode::Sync)
        .expect("commit");
    let all = c
        .fetch_group_list(None, common::CALL_TIMEOUT)
        .expect("ListGroups");
    assert!(all.groups().iter().any(|g| g.name() == "g-admin"));
    let admin = b.admin();
    let delete = |name: &'static str| {
        futures::executor::block_on(admin.delete_groups(&[name], &admin_options()))
            .expect("DeleteGroups")
            .remove(0)
    };
    let busy = delete("g-admin");
    assert!(
        matches!(
            busy,
            Err((_, rdkafka::types::RDKafkaErrorCode::NonEmptyGroup))
        ),
        "{busy:?}"
    );
    drop(c);
    // The leave makes the group empty; then it can go.
    let deadline = Instant::now() + SETTLE;
    loop {
        match delete("g-admin") {
            Ok(_) => break,
            Err(e) => assert!(
                Instant::now() < deadline,
                "group never became deletable: {e:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let unknown = delete("g-admin");
    assert!(
        matches!(
            unknown,
            Err((_, rdkafka::types::RDKafkaErrorCode::GroupIdNotFound))
        ),
        "{unknown:?}"
    );
    // The offsets went with it.
    let probe = group_consumer(&b, "g-admin", &[]);
    assert_eq!(committed(&probe, topic, 1), vec![Offset::Invalid]);
}

/// KIP-848 (`group.protocol=consumer`): the broker assigns; members converge by heartbeats.
#[test]
fn consumer_protocol_members_split_partitions_and_commit() {
    let b = Broker::start(&["--override", "group.consumer.heartbeat.interval.ms=500"]);
    let topic = "kip848";
    b.create_topic(topic, 4);
    produce_round_robin(&b, topic, 4, 0..40);
    let consumer = |b: &Broker| {
        let mut c = b.client_config();
        c.set("group.id", "g-848")
            .set("group.protocol", "consumer")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "200");
        if let Ok(d) = std::env::var("GROUPS_DEBUG") {
            c.set("debug", d);
        }
        let c: BaseConsumer<Rebalances> = c
            .create_with_context(Rebalances::default())
            .expect("create consumer");
        c.subscribe(&[topic]).expect("subscribe");
        c
    };
    let a = consumer(&b);
    let got = poll_until(&[&a], "a reads all 40 records", |c, got| {
        assigned(c[0]).len() == 4 && got[0].len() >= 40
    });
    assert_eq!(got[0].len(), 40);
    a.commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
        .expect("commit with the member epoch");
    assert_eq!(committed(&a, topic, 4), vec![Offset::Offset(10); 4]);
    let c2 = consumer(&b);
    poll_until(&[&a, &c2], "a and c2 own 2 partitions each", |c, _| {
        let (x, y) = (assigned(c[0]), assigned(c[1]));
        x.len() == 2 && y.len() == 2 && x.is_disjoint(&y)
    });
    drop(c2);
    poll_until(&[&a], "a owns all 4 partitions again", |c, _| {
        assigned(c[0]).len() == 4
    });
}
