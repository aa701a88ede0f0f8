#!/usr/bin/env python3
"""The admin HTTP listener, checked with real clients and a real Prometheus parser:

1. starts a broker (harness.Broker) with --http-listen and a 200 ms lag sampling interval;
2. produces with confluent-kafka, scrapes /metrics and parses it with prometheus_client's
   parsers (the classic text one and the strict OpenMetrics one); the request and byte
   counters move with more traffic;
3. four groups commit offsets of one partition (simple commits, as a consumer outside a
   generation does) while a producer keeps writing:
   - "caught-up" commits the log end offset: status OK;
   - "stalled" commits the same offset again and again: STALL;
   - "stopped" commits a few rising offsets and then nothing: STOP once the time since its
     last commit exceeds the span of its commits;
   - "rewound" commits a high offset, then a lower one, and stays there: REWIND;
   the lag /v1/groups reports is the log end offset (the partition's high watermark, as the
   client sees it) minus the committed offset, and /metrics' group_lag says the same;
4. /v1/topics, /v1/groups/{group} and /v1/health answer as documented;
5. kafka's own view (the consumer's committed() and get_watermark_offsets()) agrees.
"""

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Broker, add_broker_args, free_port, log, run_checked, wait_until  # noqa: E402

TOPIC = "observed"


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read().decode()


def get_json(port, path):
    try:
        status, _, body = get(port, path)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode() or "null")
    return status, json.loads(body)


def families(text):
    """The scrape parsed by both of prometheus_client's parsers; the strict OpenMetrics parser
    raises on anything malformed. Returns {sample name: [(labels, value)]}."""
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as strict
    from prometheus_client.parser import text_string_to_metric_families as classic
    list(strict(text))
    samples = {}
    for fam in classic(text):
        for s in fam.samples:
            samples.setdefault(s.name, []).append((s.labels, s.value))
    return samples


def total(samples, name, **labels):
    return sum(v for l, v in samples.get(name, []) if all(l.get(k) == w for k, w in labels.items()))


def main_test(args, checks):
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    http = free_port()
    broker = Broker.from_args(
        args, checks=checks,
        overrides={"shardlog.lag.sample.interval.ms": 200, "shardlog.lag.window.commits": 20},
        extra_args=["--http-listen", f"127.0.0.1:{http}"])
    broker.start()
    bootstrap = broker.bootstrap

    status, health = get_json(http, "/v1/health")
    checks.check(status == 200 and health.get("ready") is True, "/v1/health: alive and ready", str(health))

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=1)])[TOPIC].result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})

    def produce(n):
        for i in range(n):
            producer.produce(TOPIC, value=b"x" * 100, key=str(i).encode())
        producer.flush(30)

    produce(100)
    status, ctype, text = get(http, "/metrics")
    checks.check(status == 200 and ctype.startswith("application/openmetrics-text"),
                 "/metrics answers in the OpenMetrics text format", ctype)
    first = families(text)
    produce_requests = total(first, "shardlog_requests_total", api="Produce")
    received = total(first, "shardlog_network_received_bytes_total")
    checks.check(produce_requests >= 1, "Produce requests are counted", str(produce_requests))
    checks.check(total(first, "shardlog_request_duration_seconds_count", api="Produce") >= 1,
                 "Produce latency histogram has the requests")
    checks.check(total(first, "shardlog_fsync_duration_seconds_count") >= 1,
                 "fdatasync rounds are in their histogram")
    for name in ["shardlog_connections", "shardlog_partitions", "shardlog_log_size_bytes",
                 "shardlog_tail_cache_bytes", "shardlog_request_budget_held_bytes",
                 "shardlog_process_resident_memory_bytes"]:
        checks.check(name in first, f"/metrics has {name}")
    checks.check("shardlog_partition_log_end_offset" not in first,
                 "no per-partition series by default")

    produce(50)
    second = families(get(http, "/metrics")[2])
    checks.check(total(second, "shardlog_requests_total", api="Produce") > produce_requests,
                 "the Produce counter moves with traffic")
    checks.check(total(second, "shardlog_network_received_bytes_total") >= received + 50 * 100,
                 "received bytes move by at least the records' bytes")
    per_partition = families(get(http, "/metrics?partitions=true")[2])
    checks.check(total(per_partition, "shardlog_partition_log_end_offset", topic=TOPIC) == 150,
                 "per-partition series on request: log end offset 150")

    tp = TopicPartition(TOPIC, 0)

    def committer(group):
        return Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False})

    def commit(consumer, offset):
        consumer.commit(offsets=[TopicPartition(TOPIC, 0, offset)], asynchronous=False)

    def group(name):
        status, body = get_json(http, "/v1/groups/" + name)
        return body if status == 200 else None

    caught_up, stalled, stopped, rewound = (committer(g) for g in
                                            ["caught-up", "stalled", "stopped", "rewound"])
    # "stopped" commits a few rising offsets in quick succession, then nothing more.
    for offset in (10, 20, 30):
        commit(stopped, offset)
        time.sleep(0.3)
    # The others commit every 300 ms for a few seconds while records keep coming.
    commit(rewound, 120)
    for round_ in range(12):
        produce(5)
        _, end = caught_up.get_watermark_offsets(tp, timeout=10)
        commit(caught_up, end)
        commit(stalled, 40)
        if round_ >= 2:
            commit(rewound, 60)
        time.sleep(0.3)

    def status_of(name, want):
        g = group(name)
        return g is not None and g["partitions"] and g["partitions"][0]["status"] == want and g

    for name, want in [("caught-up", "OK"), ("stalled", "STALL"), ("stopped", "STOP"),
                       ("rewound", "REWIND")]:
        g = wait_until(lambda: status_of(name, want), 20)
        last = group(name)
        checks.check(bool(g), f"group {name}: partition status {want}",
                     json.dumps(last and last["partitions"], indent=None)[:600])
    # The group status is Burrow's: STOP/STALL/REWIND are ERROR.
    checks.check(group("stalled")["status"] == "ERROR", "a stalled group's status is ERROR")
    checks.check(group("caught-up")["status"] == "OK", "a caught-up group's status is OK")

    # Lag figures: log end offset (the high watermark) minus the committed offset.
    _, end = stalled.get_watermark_offsets(tp, timeout=10)
    committed = stalled.committed([tp], timeout=10)[0].offset
    g = group("stalled")
    p = g["partitions"][0]
    checks.check(committed == 40 and p["committed_offset"] == 40, "committed offset 40, as the client sees it",
                 f"client {committed}, broker {p['committed_offset']}")
    checks.check(p["log_end_offset"] == end and p["lag"] == end - 40 and g["total_lag"] == end - 40,
                 f"lag = log end offset {end} - committed 40", json.dumps(p)[:300])
    checks.check(g["max_lag"] == {"topic": TOPIC, "partition": 0, "lag": end - 40},
                 "max_lag names the partition", str(g["max_lag"]))
    scraped = families(get(http, "/metrics")[2])
    checks.check(total(scraped, "shardlog_group_lag", group="stalled") == end - 40,
                 "/metrics group_lag agrees")
    checks.check(total(scraped, "shardlog_group_status", group="stalled") == 2,
                 "/metrics group_status: 2 (ERROR) for the stalled group")

    status, missing = get_json(http, "/v1/groups/no-such-group")
    checks.check(status == 404, "an unknown group is 404", str(missing))
    _, listing = get_json(http, "/v1/groups")
    names = sorted(g["group"] for g in listing["groups"])
    checks.check(names == ["caught-up", "rewound", "stalled", "stopped"], "/v1/groups lists the groups", str(names))
    checks.check(len(listing["shards"]) == 2, "/v1/groups reports both shards")
    _, topics = get_json(http, "/v1/topics")
    mine = [t for t in topics["topics"] if t["topic"] == TOPIC]
    checks.check(len(mine) == 1 and mine[0]["offsets"][0]["log_end_offset"] == end,
                 "/v1/topics has the topic with its log end offset", json.dumps(mine)[:300])
    status, _, page = get(http, "/")
    checks.check(status == 200 and "<title>shardlog console</title>" in page, "/ serves the console page")
    for c in (caught_up, stalled, stopped, rewound):
        c.close()
    checks.finish()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    add_broker_args(ap)
    run_checked("observe", ap.parse_args(), main_test)
