#!/usr/bin/env python3
"""Acknowledged records must survive a broker crash (kill -9) in the middle of producing.

  acked_durability.py --bootstrap HOST:PORT --topic T --mode produce --acked-file F [--seconds 20]
  acked_durability.py --bootstrap HOST:PORT --topic T --mode verify  --acked-file F

produce: creates the topic (--partitions, default 4) if missing, then produces keyed records
(acks=all, enable.idempotence=false, lz4) as fast as delivery allows and appends
"partition offset n" to --acked-file for every record whose delivery report succeeded. It stops
after --seconds, or soon after the broker goes away (that is the point: the caller kills the
broker with SIGKILL while this runs). Exit 0 if at least one record was acknowledged.

verify (after the broker restarted on the same data dir): reads every partition from offset 0 to
its high watermark and checks that every acknowledged record is there, at the offset its report
gave, with its key and value; offsets are dense from 0. Records that were written but never
acknowledged may or may not be there.

Prints one line per check and a last line "PASS: ..." or "FAIL: ..."; exits 0 only on PASS.
"""

import argparse
import os
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def key_of(n):
    return f"d-{n}".encode()


def value_of(n):
    return f"durable-{n}-".encode() + (b"%08x" % (n * 2654435761 % (1 << 32))) * (1 + n % 5)


def log(msg):
    print(msg, flush=True)


def watchdog(seconds):
    def fire():
        log(f"FAIL: overall timeout of {seconds:.0f}s exceeded (watchdog)")
        os._exit(3)
    t = threading.Timer(seconds, fire)
    t.daemon = True
    t.start()


def produce(args):
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    if args.topic not in admin.list_topics(timeout=10).topics:
        admin.create_topics([NewTopic(args.topic, num_partitions=args.partitions,
                                      replication_factor=1)])[args.topic].result(timeout=30)
    acked_file = open(args.acked_file, "w")
    state = {"acked": 0, "failed": 0, "last_ok": time.monotonic()}

    def on_delivery(err, msg):
        if err is None:
            n = int(msg.key()[2:])
            acked_file.write(f"{msg.partition()} {msg.offset()} {n}\n")
            state["acked"] += 1
            state["last_ok"] = time.monotonic()
        else:
            state["failed"] += 1

    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "acks": "all",
        "enable.idempotence": False,
        "compression.type": "lz4",
        "linger.ms": 2,
        "message.timeout.ms": 5000,
        "reconnect.backoff.max.ms": 500,
    })
    started = time.monotonic()
    n = 0
    while time.monotonic() - started < args.seconds:
        if time.monotonic() - state["last_ok"] > 3 and state["acked"]:
            break  # the broker is gone: nothing more will be acknowledged
        try:
            producer.produce(args.topic, key=key_of(n), value=value_of(n), on_delivery=on_delivery)
            n += 1
        except BufferError:
            producer.poll(0.05)
            continue
        if n % 100 == 0:
            producer.poll(0)
            acked_file.flush()  # lets the caller see progress and pick its moment
            # Keep the in-flight window modest so most produced records get a verdict.
            while len(producer) > 5000 and time.monotonic() - started < args.seconds:
                producer.poll(0.05)
    producer.flush(10)
    acked_file.flush()
    os.fsync(acked_file.fileno())
    acked_file.close()
    log(f"produced {n} records: {state['acked']} acknowledged, {state['failed']} failed, "
        f"{len(producer)} without a verdict")
    if state["acked"] == 0:
        log("FAIL: produce: no record was acknowledged")
        return 1
    log(f"PASS: produce: {state['acked']} records acknowledged")
    return 0


def verify(args):
    acked = {}
    with open(args.acked_file) as f:
        for line in f:
            p, o, n = map(int, line.split())
            acked[(p, o)] = n
    parts = sorted({p for p, _ in acked} | set(range(args.partitions)))
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": "shardlog-durability-assign-only",  # required by the Python client; unused
        "enable.auto.commit": False,
        "auto.offset.reset": "error",
        "check.crcs": True,
    })
    failures = []
    try:
        marks = {p: consumer.get_watermark_offsets(TopicPartition(args.topic, p), timeout=30,
                                                   cached=False) for p in parts}
        consumer.assign([TopicPartition(args.topic, p, 0) for p in parts])
        got = {}
        done = {p for p in parts if marks[p][1] == 0}
        deadline = time.monotonic() + args.seconds + 60
        while len(done) < len(parts) and time.monotonic() < deadline:
            for msg in consumer.consume(1000, 1.0):
                if msg.error():
                    if msg.error().code() != KafkaError._PARTITION_EOF:
                        failures.append(f"consume error: {msg.error()}")
                    continue
                p = msg.partition()
                got[(p, msg.offset())] = (msg.key(), msg.value())
                if msg.offset() + 1 >= marks[p][1]:
                    done.add(p)
    finally:
        consumer.close()

    def check(ok, what, detail=""):
        log(f"ok   {what}" if ok else f"FAIL {what}: {detail}")
        if not ok:
            failures.append(what)

    check(len(done) == len(parts), "every partition read to its high watermark",
          f"unfinished {sorted(set(parts) - done)}")
    short = {p: (max(o for q, o in acked if q == p) + 1, marks[p][1]) for p in parts
             if any(q == p for q, _ in acked) and marks[p][1] <= max(o for q, o in acked if q == p)}
    check(not short, "every high watermark is past the partition's last acknowledged offset",
          f"(needed, high) by partition: {short}")
    gaps = [p for p in parts
            if sorted(o for q, o in got if q == p) != list(range(marks[p][1]))]
    check(not gaps, "offsets dense from 0 in every partition", f"partitions {gaps}")
    lost = [(p, o, n) for (p, o), n in acked.items() if (p, o) not in got]
    wrong = [(p, o, n) for (p, o), n in acked.items()
             if (p, o) in got and got[(p, o)] != (key_of(n), value_of(n))]
    check(not lost, f"all {len(acked)} acknowledged records survived the crash",
          f"{len(lost)} lost, e.g. {sorted(lost)[:5]}")
    check(not wrong, "every acknowledged record has its key and value at its offset",
          f"{len(wrong)} differ, e.g. {sorted(wrong)[:5]}")
    extra = len(got) - len(acked)
    summary = (f"verify topic={args.topic}: {len(acked)} acknowledged, {len(got)} stored "
               f"({extra} written but not acknowledged)")
    if failures:
        log(f"FAIL: {summary}: {', '.join(failures)}")
        return 1
    log(f"PASS: {summary}")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--topic", default="durability")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--mode", choices=["produce", "verify"], required=True)
    ap.add_argument("--acked-file", required=True)
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()
    watchdog(args.seconds + 120)
    rc = produce(args) if args.mode == "produce" else verify(args)
    sys.stdout.flush()
    os._exit(rc)


if __name__ == "__main__":
    main()
