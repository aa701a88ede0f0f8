#!/usr/bin/env python3
"""Round trip through Shardlog with confluent-kafka (librdkafka 2.x).

  confluent_roundtrip.py --bootstrap HOST:PORT --topic T [--records 40000] [--partitions 8]
                         [--mode produce-and-verify|verify-only] [--timeout 300]

produce-and-verify: creates the topic (AdminClient) if it is missing, produces --records keyed
records split into four equal groups, each from its own producer with compression gzip, snappy,
lz4 and zstd (acks=all, enable.idempotence=false), checks every delivery report, then reads every
partition from the beginning to its high watermark with assign() and checks:
  * the total is --records and the high watermarks add up to it;
  * every key k-<n> is there exactly once with the value (and headers) derived from n;
  * offsets in each partition are dense from 0 (no gaps, no duplicates);
  * each key is in the partition librdkafka's default partitioner (consistent_random: CRC32 of
    the key modulo the partition count) picks, and in produce mode in the partition and at the
    offset its delivery report gave.
verify-only: the same reading and checks without producing (e.g. after a broker restart).

The broker has no consumer groups, transactions or idempotent producer yet, so the consumer has
a group.id only
because the Python client requires one: it uses assign() only and never commits and the producers set enable.idempotence=false.

Prints one line per check and a last line "PASS: ..." or "FAIL: ..."; exits 0 only on PASS.
Every step is bounded by --timeout (a watchdog ends the process with FAIL when it runs out).
"""

import argparse
import hashlib
import os
import sys
import threading
import time
import zlib

try:
    from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
except ImportError:  # pragma: no cover - depends on the machine
    print("FAIL: the confluent-kafka module is missing (pip install confluent-kafka)")
    sys.exit(2)

CODECS = ["gzip", "snappy", "lz4", "zstd"]


def log(msg):
    print(msg, flush=True)


class Deadline:
    def __init__(self, seconds):
        self.end = time.monotonic() + seconds
        self.seconds = seconds

    def left(self, cap=None):
        left = max(0.0, self.end - time.monotonic())
        return left if cap is None else min(left, cap)

    def expired(self):
        return time.monotonic() >= self.end


def start_watchdog(deadline, grace=15.0):
    """Ends the process if the whole run overshoots its deadline (a hung client call)."""

    def watch():
        while True:
            left = deadline.end + grace - time.monotonic()
            if left <= 0:
                log(f"FAIL: overall timeout of {deadline.seconds:.0f}s exceeded (watchdog)")
                sys.stdout.flush()
                os._exit(3)
            time.sleep(min(left, 1.0))

    threading.Thread(target=watch, daemon=True).start()


# ---- the deterministic expectation --------------------------------------------------------

def codec_of(n, records):
    return CODECS[n * len(CODECS) // records]


def key_of(n):
    return f"k-{n}".encode()


def value_of(n, records):
    """A value derived from n only: the codec name, n, and a compressible run of a digest."""
    codec = codec_of(n, records)
    digest = hashlib.sha256(f"shardlog-{n}".encode()).hexdigest()
    filler = (digest[: 8 + n % 24]) * (1 + n % 7)
    return f"v-{n}-{codec}-{filler}".encode()


def headers_of(n, records):
    return [("codec", codec_of(n, records).encode()), ("n", str(n).encode())]


def expected_partition(key, partitions):
    """librdkafka's default partitioner (consistent_random) for a non-empty key."""
    return (zlib.crc32(key) & 0xFFFFFFFF) % partitions


# ---- steps ----------------------------------------------------------------------------------

class Checks:
    def __init__(self):
        self.failures = []
        self.count = 0

    def check(self, ok, what, detail=""):
        self.count += 1
        if ok:
            log(f"ok   {what}")
        else:
            self.failures.append(what)
            log(f"FAIL {what}" + (f": {detail}" if detail else ""))
        return ok


def ensure_topic(args, deadline, checks):
    admin = AdminClient({"bootstrap.servers": args.bootstrap, "socket.timeout.ms": 30000})
    md = admin.list_topics(timeout=deadline.left(30))
    topic = md.topics.get(args.topic)
    if topic is None or topic.error is not None:
        futures = admin.create_topics(
            [NewTopic(args.topic, num_partitions=args.partitions, replication_factor=1)],
            operation_timeout=deadline.left(30), request_timeout=deadline.left(30))
        try:
            futures[args.topic].result(timeout=deadline.left(60))
            log(f"created topic {args.topic} with {args.partitions} partitions")
        except KafkaException as e:
            err = e.args[0]
            if err.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                checks.check(False, "create topic", str(err))
                return False
        # Wait until the metadata shows every partition.
        while not deadline.expired():
            md = admin.list_topics(topic=args.topic, timeout=deadline.left(10))
            t = md.topics.get(args.topic)
            if t is not None and t.error is None and len(t.partitions) == args.partitions:
                break
            time.sleep(0.2)
    md = admin.list_topics(topic=args.topic, timeout=deadline.left(30))
    t = md.topics[args.topic]
    return checks.check(
        t.error is None and len(t.partitions) == args.partitions,
        f"topic {args.topic} has {args.partitions} partitions",
        f"error={t.error} partitions={len(t.partitions)}")


def produce(args, deadline, checks):
    """Produces the four codec groups concurrently; returns {n: (partition, offset)}."""
    per_group = args.records // len(CODECS)
    reports = {}
    errors = []
    lock = threading.Lock()

    def run(group):
        codec = CODECS[group]
        producer = Producer({
            "bootstrap.servers": args.bootstrap,
            "client.id": f"roundtrip-{codec}",
            "acks": "all",
            "enable.idempotence": False,
            "compression.type": codec,
            "linger.ms": 5,
            "message.timeout.ms": int(max(10.0, deadline.left(120)) * 1000),
            "queue.buffering.max.messages": args.records,
        })

        def on_delivery(err, msg, n):
            with lock:
                if err is not None:
                    errors.append(f"k-{n}: {err}")
                elif n in reports:
                    errors.append(f"k-{n}: a second delivery report")
                else:
                    reports[n] = (msg.partition(), msg.offset())

        for n in range(group * per_group, (group + 1) * per_group):
            while True:
                try:
                    producer.produce(args.topic, key=key_of(n), value=value_of(n, args.records),
                                     headers=headers_of(n, args.records),
                                     on_delivery=lambda err, msg, n=n: on_delivery(err, msg, n))
                    break
                except BufferError:
                    producer.poll(0.1)
                    if deadline.expired():
                        return
            producer.poll(0)
        left = producer.flush(deadline.left(180))
        if left:
            with lock:
                errors.append(f"{codec} producer: {left} records undelivered at the deadline")

    started = time.monotonic()
    threads = [threading.Thread(target=run, args=(g,)) for g in range(len(CODECS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(deadline.left())
    elapsed = time.monotonic() - started
    checks.check(not errors, "every delivery report succeeded",
                 f"{len(errors)} errors, first: {errors[:5]}")
    checks.check(len(reports) == args.records,
                 f"{args.records} delivery reports ({elapsed:.1f}s, "
                 f"{args.records / max(elapsed, 1e-6):.0f} records/s)",
                 f"got {len(reports)}")
    wrong = [(n, p) for n, (p, _) in reports.items()
             if p != expected_partition(key_of(n), args.partitions)]
    checks.check(not wrong, "delivery reports name the default partitioner's partition",
                 f"{len(wrong)} differ, e.g. {wrong[:5]}")
    return reports


def consume(args, deadline, checks):
    """Reads every partition from the beginning to its high watermark.
    Returns ({partition: [(offset, key, value, headers)]}, {partition: (low, high)})."""
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "client.id": "roundtrip-verify",
        # The Python client insists on a group.id; with assign() and no commits librdkafka
        # joins no group (and sends no FindCoordinator to a broker that does not offer it).
        "group.id": "shardlog-roundtrip-assign-only",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "error",
        "check.crcs": True,
        "fetch.wait.max.ms": 100,
    })
    try:
        marks = {}
        for p in range(args.partitions):
            marks[p] = consumer.get_watermark_offsets(TopicPartition(args.topic, p),
                                                      timeout=deadline.left(30), cached=False)
        consumer.assign([TopicPartition(args.topic, p, 0 if args.from_zero else -2)
                         for p in range(args.partitions)])
        got = {p: [] for p in range(args.partitions)}
        done = {p for p, (_, high) in marks.items() if high == 0}
        errors = []
        while len(done) < args.partitions and not deadline.expired():
            for msg in consumer.consume(num_messages=1000, timeout=deadline.left(1.0)):
                if msg.error():
                    if msg.error().code() != KafkaError._PARTITION_EOF:
                        errors.append(str(msg.error()))
                    continue
                p = msg.partition()
                got[p].append((msg.offset(), msg.key(), msg.value(), msg.headers() or []))
                if msg.offset() + 1 >= marks[p][1]:
                    done.add(p)
            if len(errors) > 20:
                break
        checks.check(not errors, "no consume errors", f"{len(errors)}: {errors[:5]}")
        checks.check(len(done) == args.partitions,
                     "every partition read to its high watermark",
                     f"unfinished: {sorted(set(range(args.partitions)) - done)}, "
                     f"read {[len(got[p]) for p in range(args.partitions)]} of "
                     f"{[marks[p][1] for p in range(args.partitions)]}")
        return got, marks
    finally:
        consumer.close()


def verify(args, got, marks, reports, checks):
    total_high = sum(high for _, high in marks.values())
    total = sum(len(v) for v in got.values())
    checks.check(all(low == 0 for low, _ in marks.values()), "every low watermark is 0",
                 f"{marks}")
    checks.check(total_high == args.records, f"high watermarks add up to {args.records}",
                 f"{total_high} ({ {p: h for p, (_, h) in marks.items()} })")
    checks.check(total == args.records, f"read {args.records} records in total", f"read {total}")

    gaps = []
    for p, recs in got.items():
        offsets = [r[0] for r in recs]
        if offsets != list(range(len(offsets))):
            bad = next(i for i, o in enumerate(offsets) if o != i) if offsets else 0
            gaps.append(f"p{p}: at index {bad} offset {offsets[bad] if offsets else None}")
    checks.check(not gaps, "offsets dense from 0 in every partition (no gaps, no duplicates)",
                 "; ".join(gaps[:8]))

    seen = {}
    bad_key, bad_value, bad_headers, dupes, bad_part, bad_report = [], [], [], [], [], []
    for p, recs in got.items():
        for offset, key, value, headers in recs:
            try:
                text = key.decode()
                assert text.startswith("k-")
                n = int(text[2:])
                assert 0 <= n < args.records and key == key_of(n)
            except Exception:
                bad_key.append((p, offset, key))
                continue
            if n in seen:
                dupes.append((n, seen[n], (p, offset)))
                continue
            seen[n] = (p, offset)
            if value != value_of(n, args.records):
                bad_value.append((n, p, offset, value[:40] if value else value))
            if [(k, bytes(v) if v is not None else None) for k, v in headers] != \
                    headers_of(n, args.records):
                bad_headers.append((n, headers))
            if p != expected_partition(key, args.partitions):
                bad_part.append((n, p))
            if reports is not None and n in reports and reports[n] != (p, offset):
                bad_report.append((n, reports[n], (p, offset)))
    missing = [n for n in range(args.records) if n not in seen]
    checks.check(not bad_key, "every key is k-<n> in range", f"{len(bad_key)}: {bad_key[:5]}")
    checks.check(not dupes, "no key appears twice", f"{len(dupes)}: {dupes[:5]}")
    checks.check(not missing, f"all {args.records} keys present",
                 f"{len(missing)} missing, e.g. {missing[:10]}")
    checks.check(not bad_value, "every value matches its key", f"{len(bad_value)}: {bad_value[:3]}")
    checks.check(not bad_headers, "every record's headers match",
                 f"{len(bad_headers)}: {bad_headers[:3]}")
    checks.check(not bad_part, "every key is in the default partitioner's partition",
                 f"{len(bad_part)}: {bad_part[:5]}")
    if reports is not None:
        checks.check(not bad_report, "every record is at the partition/offset its report gave",
                     f"{len(bad_report)}: {bad_report[:5]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--topic", default="roundtrip")
    ap.add_argument("--records", type=int, default=40000)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--mode", choices=["produce-and-verify", "verify-only"],
                    default="produce-and-verify")
    ap.add_argument("--timeout", type=float, default=300.0, help="overall limit in seconds")
    ap.add_argument("--from-zero", action="store_true",
                    help="assign at offset 0 instead of OFFSET_BEGINNING (skips ListOffsets)")
    args = ap.parse_args()
    if args.records <= 0 or args.records % len(CODECS):
        ap.error(f"--records must be a positive multiple of {len(CODECS)}")

    deadline = Deadline(args.timeout)
    start_watchdog(deadline)
    checks = Checks()
    started = time.monotonic()
    summary = f"{args.mode} topic={args.topic} records={args.records} partitions={args.partitions}"
    try:
        import confluent_kafka
        log(f"confluent-kafka {confluent_kafka.version()}, "
            f"librdkafka {confluent_kafka.libversion()[0]}; {summary}")
        reports = None
        if args.mode == "produce-and-verify":
            if ensure_topic(args, deadline, checks):
                reports = produce(args, deadline, checks)
        else:
            admin = AdminClient({"bootstrap.servers": args.bootstrap})
            t = admin.list_topics(topic=args.topic, timeout=deadline.left(30)).topics.get(
                args.topic)
            checks.check(t is not None and t.error is None and
                         len(t.partitions) == args.partitions,
                         f"topic {args.topic} exists with {args.partitions} partitions",
                         f"{t.error if t else 'missing'}, "
                         f"{len(t.partitions) if t else 0} partitions")
        if not checks.failures:
            got, marks = consume(args, deadline, checks)
            verify(args, got, marks, reports, checks)
    except Exception as e:  # a client error or a broken expectation: a failure, not a crash
        checks.check(False, "no unexpected exception", f"{type(e).__name__}: {e}")
    if deadline.expired():
        checks.check(False, f"finished within {args.timeout:.0f}s")
    elapsed = time.monotonic() - started
    if checks.failures:
        log(f"FAIL: {summary}: {len(checks.failures)} of {checks.count} checks failed "
            f"({', '.join(checks.failures)}) in {elapsed:.1f}s")
        sys.stdout.flush()
        os._exit(1)
    log(f"PASS: {summary}: {checks.count} checks passed in {elapsed:.1f}s")
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
