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

The broker has no consumer groups, transactions or idempotent producer yet, so the producers set
enable.idempotence=false and the consumer uses assign() at explicit offsets and never commits; it
has a group.id only because the Python client refuses to create a consumer without one.

Prints one line per check and a last line "PASS: ..." or "FAIL: ..."; exits 0 only on PASS.
Every step is bounded by --timeout (a watchdog ends the process with FAIL when it runs out).
"""

import argparse
import hashlib
import logging
import os
import socket
import struct
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


class CappedHandler(logging.Handler):
    """librdkafka's log lines: the first few of each kind are printed, the rest only counted, so
    a broker that is down does not flood the output with reconnect messages."""

    def __init__(self, cap=5):
        super().__init__()
        self.cap = cap
        self.seen = {}

    def emit(self, record):
        text = record.getMessage()
        kind = text.split("]: ", 1)[-1][:60]
        self.seen[kind] = self.seen.get(kind, 0) + 1
        if self.seen[kind] <= self.cap:
            print(f"librdkafka: {text}", file=sys.stderr, flush=True)


RDKAFKA_LOGGER = logging.getLogger("librdkafka")
RDKAFKA_LOGGER.addHandler(CappedHandler())
RDKAFKA_LOGGER.propagate = False
RDKAFKA_LOGGER.setLevel(logging.INFO)


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
    admin = AdminClient({"bootstrap.servers": args.bootstrap, "socket.timeout.ms": 30000,
                         "logger": RDKAFKA_LOGGER})
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
            "logger": RDKAFKA_LOGGER,
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
        # The Python client insists on a group.id. With assign() at explicit offsets and no
        # commits, librdkafka joins no group and needs no coordinator.
        "group.id": "shardlog-roundtrip-assign-only",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "error",
        "check.crcs": True,
        "fetch.wait.max.ms": 100,
        "logger": RDKAFKA_LOGGER,
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


CODEC_IDS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


def varint(buf, pos):
    """A zigzag varint (Kafka record fields): returns (value, next position)."""
    shift = result = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7


def uncompressed_keys(batch):
    """The keys of the records of an uncompressed RecordBatch v2."""
    count = struct.unpack_from(">i", batch, 57)[0]
    pos, keys = 61, []
    for _ in range(count):
        length, pos = varint(batch, pos)
        end = pos + length
        q = pos + 1  # attributes
        _, q = varint(batch, q)  # timestamp delta
        _, q = varint(batch, q)  # offset delta
        klen, q = varint(batch, q)
        keys.append(bytes(batch[q:q + klen]) if klen >= 0 else None)
        pos = end
    return keys


def raw_fetch_codecs(args, deadline, marks):
    """Reads every partition with plain Fetch v4 requests on a socket of its own and returns
    ({codec: records in batches with that codec}, {codec group: records of that group found in
    uncompressed batches}). librdkafka hides the codec from the application and sends a batch
    uncompressed when compressing does not make it smaller (a batch of one small record) or
    when it believes the broker lacks the codec, so this is the only way to see that each
    producer's codec was used and that the broker serves batches as they were produced."""
    host, port = args.bootstrap.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=deadline.left(30))
    counts, plain_by_group = {}, {}
    correlation = 0

    def recv_exact(n):
        buf = bytearray()
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise RuntimeError("raw fetch: broker closed the connection")
            buf += chunk
        return bytes(buf)

    def request(body):
        nonlocal correlation
        correlation += 1
        client = b"roundtrip-raw"
        msg = struct.pack(">hhih", 1, 4, correlation, len(client)) + client + body
        sock.settimeout(max(1.0, deadline.left(30)))
        sock.sendall(struct.pack(">i", len(msg)) + msg)
        data = recv_exact(struct.unpack(">i", recv_exact(4))[0])
        if struct.unpack(">i", data[:4])[0] != correlation:
            raise RuntimeError("raw fetch: correlation id mismatch")
        return data[4:]

    topic = args.topic.encode()
    try:
        for p in range(args.partitions):
            offset, high = 0, marks[p][1]
            while offset < high and not deadline.expired():
                # Fetch v4: replica -1, max wait 100 ms, min bytes 1, max bytes, read_uncommitted
                body = struct.pack(">iiiib", -1, 100, 1, 4 << 20, 0)
                body += struct.pack(">ih", 1, len(topic)) + topic
                body += struct.pack(">iiqi", 1, p, offset, 4 << 20)
                r = request(body)
                pos = 4 + 4  # throttle_time_ms, topic count
                pos += 2 + struct.unpack_from(">h", r, pos)[0] + 4  # name, partition count
                _, err, _hw, _lso = struct.unpack_from(">ihqq", r, pos)
                pos += 22
                aborted = struct.unpack_from(">i", r, pos)[0]
                pos += 4 + max(aborted, 0) * 16
                if err:
                    raise RuntimeError(f"raw fetch p{p}@{offset}: error code {err}")
                rlen = struct.unpack_from(">i", r, pos)[0]
                records = memoryview(r)[pos + 4:pos + 4 + max(rlen, 0)]
                q, progressed = 0, False
                while q + 61 <= len(records):
                    base, blen = struct.unpack_from(">qi", records, q)
                    if q + 12 + blen > len(records):
                        break  # a partial batch at the end of the response
                    attrs = struct.unpack_from(">h", records, q + 21)[0]
                    last_delta = struct.unpack_from(">i", records, q + 23)[0]
                    count = struct.unpack_from(">i", records, q + 57)[0]
                    codec = CODEC_IDS.get(attrs & 7, f"codec{attrs & 7}")
                    if base + last_delta >= offset:
                        counts[codec] = counts.get(codec, 0) + count
                        if codec == "none":
                            for key in uncompressed_keys(records[q:q + 12 + blen]):
                                n = int(key[2:]) if key and key.startswith(b"k-") else -1
                                group = codec_of(n, args.records) if 0 <= n < args.records \
                                    else "?"
                                plain_by_group[group] = plain_by_group.get(group, 0) + 1
                        offset = base + last_delta + 1
                        progressed = True
                    q += 12 + blen
                if not progressed:
                    raise RuntimeError(f"raw fetch p{p}@{offset}: no complete batch returned")
    finally:
        sock.close()
    return counts, plain_by_group


def check_codecs(args, deadline, marks, checks):
    try:
        counts, plain = raw_fetch_codecs(args, deadline, marks)
    except Exception as e:
        checks.check(False, "raw Fetch v4 of every partition", f"{type(e).__name__}: {e}")
        return
    group = args.records // len(CODECS)
    # Each group's records are in batches of its own codec, but for the few batches librdkafka
    # left uncompressed because compressing did not shrink them; most must be compressed.
    bad = [c for c in CODECS
           if counts.get(c, 0) + plain.get(c, 0) != group or counts.get(c, 0) < group // 2]
    checks.check(not bad and set(counts) <= set(CODECS) | {"none"},
                 f"each producer's records are served in batches of its codec "
                 f"({'/'.join(CODECS)}; uncompressed only where compression did not help)",
                 f"wrong for {bad}: records by batch codec {counts}, "
                 f"records in uncompressed batches by producer {plain}")


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
            admin = AdminClient({"bootstrap.servers": args.bootstrap, "logger": RDKAFKA_LOGGER})
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
            check_codecs(args, deadline, marks, checks)
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
