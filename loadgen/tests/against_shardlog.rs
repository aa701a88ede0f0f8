//! The `loadgen` binary against the real Shardlog broker, started in this process: each test
//! runs loadgen as a user would (`--json` report, exit code) and then checks both what the
//! report says and what the broker really holds, read back with another client.
//!
//! No test asserts a speed or a latency value; every wait is bounded.

mod common;

use std::collections::BTreeSet;

use common::{loadgen, Broker, Loadgen, Run};
use kafka_protocol::records::Compression;

/// Keys "0".."n-1", as loadgen's `--keys n` draws them.
fn key_names(n: usize) -> Vec<String> {
    (0..n).map(|k| k.to_string()).collect()
}

/// Proves a keyed, batched, pipelined produce run lands every record exactly once on the
/// broker, each on the partition the Java client would pick for its key, in batches of
/// several records that respect --batch-bytes.
#[test]
fn produce_batches_pipelines_and_partitions_by_key() {
    let b = Broker::start();
    let r = loadgen(
        &b,
        "produce",
        &[
            "produce",
            "--topic",
            "t",
            "--partitions",
            "4",
            "--record-bytes",
            "100",
            "--records",
            "3000",
            "--keys",
            "10",
            "--batch-bytes",
            "1000",
            "--max-in-flight",
            "5",
        ],
    );
    r.assert_ok();
    assert_eq!(r.records(), 3000);
    assert_eq!(r.json["latency_us"]["count"], 3000, "every record timed");
    assert!(r.json["request_latency_us"]["count"].as_u64().unwrap() > 0);
    let series: u64 = r.json["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["records"].as_u64().unwrap())
        .sum();
    assert_eq!(series, 3000, "the per-second series add up to the records");
    assert_eq!(r.json["parameters"]["acks"], "all");
    assert_eq!(r.json["parameters"]["partitions_used"], 4);

    // The broker holds exactly the acknowledged records.
    let hw = b.high_watermarks("t");
    assert_eq!(hw.len(), 4);
    assert_eq!(hw.iter().sum::<i64>(), 3000, "high watermarks {hw:?}");
    let records = b.read_all("t");
    let keys = key_names(10);
    let java = b.java_partitions(&keys, 4);
    let mut bytes = 0;
    for rec in &records {
        let key = rec.key.as_ref().expect("every record is keyed");
        let want = java
            .get(key)
            .unwrap_or_else(|| panic!("key {key:?} is not one of --keys 10"));
        assert_eq!(rec.partition, *want, "key {key:?} at offset {}", rec.offset);
        assert_eq!(rec.value.len(), 100, "--record-bytes is the value size");
        bytes += key.len() + rec.value.len();
    }
    assert_eq!(
        r.json["bytes"], bytes,
        "reported payload = keys + values held"
    );

    // Batching: valid v2 batches (the broker checked their CRC), several records each, none
    // above --batch-bytes (loadgen's per-record estimate is an upper bound, uncompressed).
    let mut batches = 0;
    for p in 0..4 {
        let stored = b.batches("t", p);
        assert_eq!(
            stored.iter().map(|x| x.records).sum::<i64>(),
            hw[p as usize]
        );
        for x in &stored {
            assert_eq!(x.compression, Compression::None);
            assert!(
                x.records == 1 || x.bytes <= 1000,
                "partition {p}: batch {x:?} above --batch-bytes 1000"
            );
        }
        batches += stored.len();
    }
    assert!(
        batches < 3000 / 2,
        "records were batched: {batches} batches for 3000 records"
    );
    // Pipelining (several produce requests in flight on one connection, at most
    // --max-in-flight) is not asserted: the broker does not expose it and loadgen's report
    // does not count requests in flight.
    // Likewise the acks of each request: the report's parameters say acks=all.
}

/// Proves an unkeyed acks=0 zstd run from two producers delivers every record, zstd
/// compressed, spread over every partition by the sticky partitioner.
#[test]
fn produce_unkeyed_acks0_compressed() {
    let b = Broker::start();
    let r = loadgen(
        &b,
        "produce",
        &[
            "produce",
            "--topic",
            "t",
            "--partitions",
            "4",
            "--record-bytes",
            "200",
            "--records",
            "2000",
            "--acks",
            "0",
            "--compression",
            "zstd",
            "--batch-bytes",
            "2000",
            "--producers",
            "2",
        ],
    );
    r.assert_ok();
    assert_eq!(r.records(), 2000);
    assert!(
        r.json.get("request_latency_us").is_none(),
        "acks=0 has no responses to time"
    );
    // acks=0: loadgen is done once the requests are written; wait for the broker to have them.
    let hw = b.wait_for_records("t", 2000);
    assert_eq!(hw.iter().sum::<i64>(), 2000, "high watermarks {hw:?}");
    assert!(
        hw.iter().all(|&n| n > 0),
        "every partition got records: {hw:?}"
    );
    for rec in b.read_all("t") {
        assert_eq!(rec.key, None, "unkeyed");
        assert_eq!(rec.value.len(), 200);
    }
    for p in 0..4 {
        for x in b.batches("t", p) {
            assert_eq!(x.compression, Compression::Zstd, "partition {p}: {x:?}");
        }
    }
}

/// Proves a rate-limited timed run sends exactly rate × duration records and the broker holds
/// exactly those (how long it took is not asserted).
#[test]
fn produce_at_a_rate_for_a_duration() {
    let b = Broker::start();
    let r = loadgen(
        &b,
        "produce",
        &[
            "produce",
            "--topic",
            "t",
            "--partitions",
            "2",
            "--record-bytes",
            "50",
            "--duration-s",
            "1",
            "--rate",
            "1500",
        ],
    );
    r.assert_ok();
    assert_eq!(r.records(), 1500);
    assert_eq!(r.json["expected_records"], 1500);
    assert_eq!(r.json["latency_us"]["count"], 1500);
    assert_eq!(b.high_watermarks("t").iter().sum::<i64>(), 1500);
}

/// Checks the data batches of `topic` as stored: each written by one of `producers` producer
/// ids (epoch >= 0), transactional or not as `transactional` says, and numbered without gap
/// per producer and partition from 0. Returns the data records and the transaction markers
/// (commit or not) per partition.
fn assert_sequenced(
    b: &Broker,
    topic: &str,
    partitions: i32,
    producers: usize,
    transactional: bool,
) -> (Vec<i64>, Vec<Vec<Option<bool>>>) {
    let mut pids = BTreeSet::new();
    let mut data = vec![0; partitions as usize];
    let mut markers = vec![Vec::new(); partitions as usize];
    for p in 0..partitions {
        let mut next: std::collections::BTreeMap<i64, i32> = Default::default();
        for x in b.batches(topic, p) {
            assert!(x.producer_id >= 0 && x.producer_epoch >= 0, "{p}: {x:?}");
            if x.control {
                markers[p as usize].push(x.commit);
                continue;
            }
            assert_eq!(x.transactional, transactional, "partition {p}: {x:?}");
            pids.insert(x.producer_id);
            let want = next.entry(x.producer_id).or_insert(0);
            assert_eq!(
                x.base_sequence, *want,
                "partition {p}: sequence gap at {x:?}"
            );
            *want += x.records as i32;
            data[p as usize] += x.records;
        }
    }
    assert_eq!(
        pids.len(),
        producers,
        "one producer id per producer: {pids:?}"
    );
    (data, markers)
}

/// Proves an idempotent run (two producers, keyed, pipelined) gets one producer id per
/// producer and lands every record once, in batches numbered per producer and partition
/// without gaps.
#[test]
fn produce_idempotent() {
    let b = Broker::start();
    let r = loadgen(
        &b,
        "idempotent",
        &[
            "produce",
            "--topic",
            "t",
            "--partitions",
            "4",
            "--record-bytes",
            "100",
            "--records",
            "3000",
            "--keys",
            "10",
            "--batch-bytes",
            "1000",
            "--producers",
            "2",
            "--idempotent",
        ],
    );
    r.assert_ok();
    assert_eq!(r.records(), 3000);
    assert_eq!(r.json["parameters"]["idempotent"], true);
    assert!(r.json["parameters"]["versions"]["init_producer_id"].is_i64());
    assert!(r.json.get("transactions").is_none(), "not transactional");
    let hw = b.high_watermarks("t");
    assert_eq!(hw.iter().sum::<i64>(), 3000, "high watermarks {hw:?}");
    let (data, markers) = assert_sequenced(&b, "t", 4, 2, false);
    assert_eq!(data, hw);
    assert!(
        markers.iter().all(|m| m.is_empty()),
        "no transaction markers"
    );
    assert_eq!(b.read_all("t").len(), 3000);
}

/// Proves a transactional run (two producers, 500 records per transaction) commits every
/// transaction: the report counts 6 commits, the broker holds every record once in
/// transactional batches numbered per producer and partition, and a commit marker on each
/// partition for each transaction that wrote to it (keyed records reach every partition in
/// each transaction), readable by a read_committed consumer.
#[test]
fn produce_transactional() {
    let b = Broker::start();
    let r = loadgen(
        &b,
        "transactional",
        &[
            "produce",
            "--topic",
            "t",
            "--partitions",
            "4",
            "--record-bytes",
            "100",
            "--records",
            "3000",
            "--keys",
            "10",
            "--batch-bytes",
            "1000",
            "--producers",
            "2",
            "--transactional-id",
            "lg",
            "--txn-records",
            "500",
        ],
    );
    r.assert_ok();
    assert_eq!(r.records(), 3000);
    assert_eq!(r.json["parameters"]["transactional_id"], "lg");
    assert_eq!(r.json["parameters"]["txn_records"], 500);
    assert_eq!(r.json["parameters"]["transaction_timeout_ms"], 60000);
    for v in [
        "init_producer_id",
        "find_coordinator",
        "add_partitions_to_txn",
        "end_txn",
    ] {
        assert!(r.json["parameters"]["versions"][v].is_i64(), "{v}");
    }
    assert_eq!(
        r.json["transactions"]["committed"], 6,
        "1,500 records each, 500 a transaction"
    );
    assert_eq!(r.json["transactions"]["aborted"], 0);
    assert_eq!(r.json["end_txn_latency_us"]["count"], 6);
    let (data, markers) = assert_sequenced(&b, "t", 4, 2, true);
    assert_eq!(data.iter().sum::<i64>(), 3000, "data records {data:?}");
    for (p, m) in markers.iter().enumerate() {
        assert_eq!(m.len(), 6, "partition {p}: a marker per transaction: {m:?}");
        assert!(
            m.iter().all(|&c| c == Some(true)),
            "partition {p}: commits: {m:?}"
        );
    }
    // The high watermarks count the markers too (one offset each).
    let hw = b.high_watermarks("t");
    assert_eq!(
        hw.iter().sum::<i64>(),
        3000 + 4 * 6,
        "high watermarks {hw:?}"
    );
    // rdkafka reads read_committed by default: every record, no marker.
    assert_eq!(b.read_all("t").len(), 3000);
}

/// Proves consume reads back every record the broker holds (lz4 batches, two consumers),
/// and that asking for more than there is ends at the stall timeout with the shortfall
/// reported and exit code 1.
#[test]
fn consume_reads_everything_and_reports_a_shortfall() {
    let b = Broker::start();
    let p = loadgen(
        &b,
        "produce",
        &[
            "produce",
            "--topic",
            "t",
            "--partitions",
            "3",
            "--record-bytes",
            "300",
            "--records",
            "2500",
            "--compression",
            "lz4",
        ],
    );
    p.assert_ok();
    let hw = b.high_watermarks("t");
    assert_eq!(hw.iter().sum::<i64>(), 2500);
    for part in 0..3 {
        for x in b.batches("t", part) {
            assert_eq!(x.compression, Compression::Lz4, "partition {part}: {x:?}");
        }
    }

    let consume = |name: &str, n: &str, extra: &[&str]| {
        let mut args = vec![
            "consume",
            "--topic",
            "t",
            "--records",
            n,
            "--fetch-max-wait-ms",
            "100",
        ];
        args.extend_from_slice(extra);
        loadgen(&b, name, &args)
    };
    let c = consume("all", "2500", &["--consumers", "2"]);
    c.assert_ok();
    assert_eq!(c.records(), 2500);
    assert_eq!(c.json["bytes"], 2500 * 300);
    assert_eq!(c.json["parameters"]["partitions_used"], 3);

    let c = consume("more", "2600", &["--stall-timeout-s", "0.5"]);
    assert_eq!(c.status.code(), Some(1), "a shortfall exits 1");
    assert_eq!(c.json["ok"], false);
    assert_eq!(c.records(), 2500);
    assert_eq!(c.json["shortfall"], 100);
    assert!(c.json["aborted"].is_string(), "{}", c.json);

    let c = consume(
        "latest",
        "10",
        &["--from", "latest", "--stall-timeout-s", "0.3"],
    );
    assert_eq!(c.records(), 0, "nothing after the end");
    assert_eq!(c.json["shortfall"], 10);
}

/// Proves e2e consumes and times every record it produces, and the broker holds exactly
/// those records, all tagged with the run's id.
#[test]
fn e2e_times_every_record() {
    let b = Broker::start();
    let r = loadgen(
        &b,
        "e2e",
        &[
            "e2e",
            "--topic",
            "t",
            "--partitions",
            "2",
            "--record-bytes",
            "64",
            "--rate",
            "2000",
            "--records",
            "1000",
            "--fetch-max-wait-ms",
            "50",
        ],
    );
    r.assert_ok();
    assert_eq!(r.records(), 1000);
    assert_eq!(r.json["produced"], 1000);
    assert_eq!(r.json["latency_us"]["count"], 1000, "every record timed");
    assert_eq!(r.json["produce_latency_us"]["count"], 1000);
    assert!(r.json["fetch_latency_us"]["count"].as_u64().unwrap() > 0);
    let records = b.read_all("t");
    assert_eq!(records.len(), 1000);
    // Bytes 8..16 of a value are the run id: one run wrote them all.
    let runs: BTreeSet<&[u8]> = records.iter().map(|r| &r.value[8..16]).collect();
    assert_eq!(runs.len(), 1);
}

/// Arguments of a `consume --group` run.
fn group_args<'a>(group: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "consume",
        "--topic",
        "t",
        "--group",
        group,
        "--fetch-max-wait-ms",
        "50",
    ];
    args.extend_from_slice(extra);
    args
}

/// Produces `records` keyed records (16 keys, 100-byte values) to topic "t" of 4 partitions,
/// the data every group test reads.
fn produce_keyed(b: &Broker, name: &str, records: &str) {
    loadgen(
        b,
        name,
        &[
            "produce",
            "--topic",
            "t",
            "--partitions",
            "4",
            "--record-bytes",
            "100",
            "--records",
            records,
            "--keys",
            "16",
        ],
    )
    .assert_ok();
}

/// Each partition's end as a committed offset: what a group holds once it has read everything.
fn ends(hw: &[i64]) -> Vec<Option<i64>> {
    hw.iter().map(|&o| Some(o)).collect()
}

/// Asserts that two runs of a group read each partition's records (up to `hw`) exactly once
/// between them, per their reports.
fn assert_read_once_between(hw: &[i64], (name1, run1): (&str, &Run), (name2, run2): (&str, &Run)) {
    let (r1, r2) = (
        run1.group_map("records_by_partition"),
        run2.group_map("records_by_partition"),
    );
    for (p, &end) in hw.iter().enumerate() {
        let p = p as i32;
        assert_eq!(
            r1.get(&p).unwrap_or(&0) + r2.get(&p).unwrap_or(&0),
            end,
            "partition {p}: {name1} {r1:?} {name2} {r2:?}"
        );
    }
}

/// Asserts that `run` started each of the 4 partitions once, at its end (`hw`).
fn assert_started_at_the_end(run: &Run, hw: &[i64]) {
    assert_eq!(run.started_at().len(), 4, "{}", run.group());
    for (p, starts) in run.started_at() {
        assert_eq!(
            starts,
            vec![hw[p as usize]],
            "partition {p} started at the end"
        );
    }
}

/// Proves group runs commit exactly what they read (OffsetFetch on the broker), the next run
/// of the group resumes there so nothing is read twice or skipped, every member leaves, and a
/// new group starts per --from.
#[test]
fn consume_group_commits_and_resumes() {
    let b = Broker::start();
    produce_keyed(&b, "produce", "3000");
    let hw = b.high_watermarks("t");
    assert_eq!(hw.iter().sum::<i64>(), 3000);

    let (c1, committed1) = read_part_and_commit(&b);
    let c2 = read_the_rest_from_the_commits(&b, &committed1);
    // Exactly once: the two runs read each partition's records between them, and the group
    // has committed the end of every partition.
    assert_read_once_between(&hw, ("c1", &c1), ("c2", &c2));
    assert_eq!(b.committed("g", "t"), ends(&hw), "every record committed");
    assert!(
        b.describe_group("g").members.is_empty(),
        "both members left"
    );

    nothing_left_for_a_third_run(&b, &hw);
    new_groups_start_per_from(&b, &hw);
}

/// Part of the topic first: one member reads exactly 1000 records of group "g", commits
/// exactly that far (its report and the broker agree) and leaves. Returns its run and the
/// offsets committed.
fn read_part_and_commit(b: &Broker) -> (Run, Vec<Option<i64>>) {
    let c1 = loadgen(b, "c1", &group_args("g", &["--records", "1000"]));
    c1.assert_ok();
    assert_eq!(c1.records(), 1000);
    assert_eq!(c1.group()["coordinator"], b.addr.as_str());
    assert_eq!(c1.group()["commit_errors"], 0);
    let committed = b.committed("g", "t");
    let sum: i64 = committed.iter().map(|o| o.unwrap_or(0)).sum();
    assert_eq!(sum, 1000, "committed right after the last record read");
    for (p, o) in c1.group_map("committed") {
        assert_eq!(committed[p as usize], Some(o), "report and broker agree");
    }
    for (p, n) in c1.group_map("records_by_partition") {
        assert_eq!(committed[p as usize], Some(n), "started at 0, read {n}");
    }
    assert!(b.describe_group("g").members.is_empty(), "the member left");
    (c1, committed)
}

/// Two members of group "g" read the remaining 2000 records, each partition resuming at the
/// offset `committed` before.
fn read_the_rest_from_the_commits(b: &Broker, committed: &[Option<i64>]) -> Run {
    let c2 = loadgen(
        b,
        "c2",
        &group_args("g", &["--records", "2000", "--consumers", "2"]),
    );
    c2.assert_ok();
    assert_eq!(c2.records(), 2000);
    assert_eq!(c2.group()["commit_errors"], 0);
    for (p, starts) in c2.started_at() {
        assert_eq!(
            starts[0],
            committed[p as usize].unwrap_or(0),
            "partition {p} resumed at the committed offset"
        );
    }
    c2
}

/// A third run of group "g" finds nothing old left: it starts every partition at its end,
/// reads nothing, and ends at the stall timeout with the shortfall (exit code 1).
fn nothing_left_for_a_third_run(b: &Broker, hw: &[i64]) {
    let c3 = loadgen(
        b,
        "c3",
        &group_args("g", &["--records", "1", "--stall-timeout-s", "1"]),
    );
    assert_eq!(c3.status.code(), Some(1));
    assert_eq!(c3.records(), 0);
    assert_eq!(c3.json["shortfall"], 1);
    assert_started_at_the_end(&c3, hw);
}

/// Another group starts per --from: earliest reads (and commits) everything, latest nothing.
fn new_groups_start_per_from(b: &Broker, hw: &[i64]) {
    let o = loadgen(b, "other", &group_args("other", &["--records", "3000"]));
    o.assert_ok();
    assert_eq!(o.records(), 3000);
    assert_eq!(b.committed("other", "t"), ends(hw));
    let l = loadgen(
        b,
        "latest",
        &group_args(
            "latest",
            &[
                "--records",
                "1",
                "--from",
                "latest",
                "--stall-timeout-s",
                "1",
            ],
        ),
    );
    assert_eq!(l.records(), 0);
    assert_started_at_the_end(&l, hw);
}

/// Proves a second `consume --group` process joining a running one gets half the partitions
/// once the first has committed and released them, starts at the committed offsets, and that
/// the two processes read every record exactly once between them.
#[test]
fn consume_group_rebalances_between_processes() {
    let b = Broker::start();
    produce_keyed(&b, "produce1", "2000");
    let hw1 = b.high_watermarks("t");
    assert!(
        hw1.iter().all(|&n| n > 0),
        "every partition has records: {hw1:?}"
    );

    // A reads everything there is and commits it. Its duration only has to outlast the steps
    // below (each bounded); the test fails, not hangs, if a slow machine breaks that.
    let mut a = Loadgen::spawn(&b, "a", &group_args("g", &["--duration-s", "12"]));
    b.wait_for_commits("g", "t", &hw1);
    b.wait_for_group("g", "one member owning every partition", |g| {
        g.members.len() == 1 && g.members[0].1 == vec![0, 1, 2, 3]
    });

    // B joins: A must release two partitions (committing them) before B gets them.
    let mut bb = Loadgen::spawn(&b, "b", &group_args("g", &["--duration-s", "8"]));
    b.wait_for_group("g", "two members with two partitions each", |g| {
        g.state == "Stable"
            && g.members.len() == 2
            && g.members.iter().all(|(_, parts)| parts.len() == 2)
    });
    let hw2 = more_records_read_while_split(&b, &hw1, &mut a, &mut bb);

    let (a, bb) = (a.wait(), bb.wait());
    assert_read_everything_once(&a, &bb, &hw2);
    assert_b_took_half_from_a(&a, &bb, &hw1);
    assert!(b.describe_group("g").members.is_empty(), "both left");
    assert_eq!(b.committed("g", "t"), ends(&hw2));
}

/// With the partitions split between members A and B of group "g": 2000 more records, read
/// by both members from their own partitions and all committed while both are still in the
/// group. Returns the new ends.
fn more_records_read_while_split(
    b: &Broker,
    hw1: &[i64],
    a: &mut Loadgen,
    bb: &mut Loadgen,
) -> Vec<i64> {
    let split = b.describe_group("g");
    produce_keyed(b, "produce2", "2000");
    let hw2 = b.high_watermarks("t");
    assert_eq!(hw2.iter().sum::<i64>(), 4000);
    assert!(
        hw1.iter().zip(&hw2).all(|(x, y)| y > x),
        "every partition got new records: {hw1:?} → {hw2:?}"
    );
    b.wait_for_commits("g", "t", &hw2);
    assert!(
        a.running() && bb.running(),
        "both members were still in the group when everything was committed (durations too short for this machine?)"
    );
    assert_eq!(
        b.describe_group("g").members.len(),
        2,
        "still the same two members: {split:?}"
    );
    hw2
}

/// Asserts that processes A and B both succeeded without commit errors and read all 4000
/// records (up to `hw2`) exactly once between them.
fn assert_read_everything_once(a: &Run, bb: &Run, hw2: &[i64]) {
    a.assert_ok();
    bb.assert_ok();
    assert_eq!(a.group()["commit_errors"], 0);
    assert_eq!(bb.group()["commit_errors"], 0);
    assert_eq!(
        a.records() + bb.records(),
        4000,
        "a {} b {}",
        a.records(),
        bb.records()
    );
    // Exactly once, per partition.
    assert_read_once_between(hw2, ("a", a), ("b", bb));
}

/// Asserts that A started with every partition and gave two up to B, which started them
/// where A had committed: the end of the first 2000 records (`hw1`).
fn assert_b_took_half_from_a(a: &Run, bb: &Run, hw1: &[i64]) {
    let (ra, rb) = (
        a.group_map("records_by_partition"),
        bb.group_map("records_by_partition"),
    );
    assert_eq!(ra.len(), 4, "A started with every partition: {ra:?}");
    assert_eq!(rb.len(), 2, "B got half: {rb:?}");
    let starts = bb.started_at();
    for p in rb.keys() {
        assert_eq!(starts[p][0], hw1[*p as usize], "partition {p}: {starts:?}");
    }
    // A gave partitions up once (and got them back when B left): more than its first assignment.
    assert!(
        a.group()["assignments"].as_u64().unwrap() >= 2,
        "{}",
        a.group()
    );
}
