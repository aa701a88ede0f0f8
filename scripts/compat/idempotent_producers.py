#!/usr/bin/env python3
"""Idempotent producers of three clients through Shardlog: every record exactly once, in order,
across a broker crash (kill -9) in the middle of producing.

  idempotent_producers.py [--broker PATH] [--records 3000] [--timeout 300]
                          [--only kafka-python,aiokafka,confluent-kafka] [--no-idempotence]

Each client runs on a broker of its own (harness.Broker), on topics of its own with 3
partitions; record n has the value "<client>-<n>" and goes to partition n % 3:
  * kafka-python's KafkaProducer with its defaults (kafka-python 3.x: enable_idempotence=True,
    acks=all, retries unlimited, delivery_timeout_ms 120 s; only an older version's False
    default is overridden, and the script says so), aiokafka's AIOKafkaProducer with
    enable_idempotence=True set explicitly (its default is False; request_timeout_ms 60 s, its
    batches' time to live too), confluent-kafka with enable.idempotence=true (acks=all and
    retries unlimited follow; message.timeout.ms 120 s);
  * basic, no kill: 300 records, all acknowledged; read back (confluent-kafka consumer from
    offset 0 to the high watermarks) each value exactly once, each partition in order, at the
    offset its delivery report gave; raw Fetch requests show every batch carries the one
    producer id (>= 0) and an epoch, and each partition's sequence numbers run from 0 without
    gap or repeat;
  * kill -9: --records records, paced, and when a third are acknowledged the broker is
    SIGKILLed and started again on its data dir while the producer goes on (retrying);
    every record is acknowledged, and read back each value appears exactly once (no loss, no
    duplicate), each partition's values in increasing order, at the offsets the delivery
    reports gave; the log's batches carry producer ids and, per producer id, epoch and
    partition, sequence numbers from 0 without gap or repeat.
--no-idempotence runs the same with idempotence off: a self-test of the harness and of these
checks on a broker without the feature (the producer-id checks are skipped; duplicates across
the kill are then possible, not certain).

Prints one line per check and a last line "PASS: ..." or "FAIL: ..."; exits 0 only on PASS.
"""

import argparse
import asyncio
import collections
import functools
import inspect
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import add_broker_args, log, rdkafka_logger, run_checked, \
    wait_until  # noqa: E402

missing = []
try:
    import confluent_kafka
    from confluent_kafka import KafkaException, Producer
except ImportError:  # pragma: no cover - depends on the machine
    missing.append("confluent-kafka")
try:
    import kafka
    from kafka import KafkaProducer
except ImportError:  # pragma: no cover
    missing.append("kafka-python")
try:
    import aiokafka
    from aiokafka import AIOKafkaProducer
except ImportError:  # pragma: no cover
    missing.append("aiokafka")
if missing:
    print(f"FAIL: Python modules missing: {', '.join(missing)} (pip install {' '.join(missing)})")
    sys.exit(2)

from eos import Parts, Reader, create_topic, log_of  # noqa: E402

PARTITIONS = 3
BASIC_RECORDS = 300
STEP_TIMEOUT = 30.0  # bound of each wait that is not the whole run's verdicts
VERDICT_TIMEOUT = 60.0  # every record's verdict, from the kill on
PACE_EVERY, PACE_S = 10, 0.01  # at most ~1000 records/s, so that the kill falls mid-run


def value_of(prefix, n):
    return f"{prefix}-{n:06d}"


def number_of(prefix, value):
    head, _, n = (value or "").rpartition("-")
    return int(n) if head == prefix and n.isdigit() else None


class Deliveries:
    """Delivery reports: n -> (partition, offset), and failures (n, error). No lock: a dict
    store and a list append are atomic, and confluent-kafka can run a delivery callback with
    an exception pending (after a fatal error), which may break out of a with-block without
    releasing its lock."""

    def __init__(self):
        self.ok = {}
        self.failed = []
        self.fatal = None  # the producer's fatal error, if it raised one

    def done(self, n, partition, offset):
        self.ok[n] = (partition, offset)

    def fail(self, n, error):
        self.failed.append((n, str(error)))

    def verdicts(self):
        return len(self.ok) + len(self.failed)


# ---- clients -----------------------------------------------------------------------------------

class ConfluentClient:
    name = "confluent-kafka"

    def __init__(self, bootstrap, topic, prefix, idempotent):
        self.topic, self.prefix = topic, prefix
        self.deliveries = Deliveries()
        # enable.idempotence=true implies acks=all, retries unlimited (the default,
        # INT32_MAX) and at most 5 requests in flight; message.timeout.ms bounds the retries.
        self.producer = Producer({
            "bootstrap.servers": bootstrap,
            "client.id": f"{prefix}-producer",
            "enable.idempotence": idempotent,
            "acks": "all",
            "message.timeout.ms": 120000,
            "request.timeout.ms": 30000,
            "linger.ms": 5,
            "reconnect.backoff.max.ms": 1000,
            "logger": rdkafka_logger(prefix),
        })
        self.setting = f"enable.idempotence={str(idempotent).lower()}"

    def _report(self, n, err, msg):
        # msg is not touched on an error: after a fatal error its methods can raise (the
        # error is pending as the next call's exception).
        if err is None:
            self.deliveries.done(n, msg.partition(), msg.offset())
        else:
            self.deliveries.fail(n, err)

    def send(self, n):
        try:
            while True:
                try:
                    self.producer.produce(self.topic, value=value_of(self.prefix, n),
                                          partition=n % PARTITIONS,
                                          on_delivery=functools.partial(self._report, n))
                    break
                except BufferError:
                    self.producer.poll(0.05)
            self.producer.poll(0)
        except Exception as e:  # a fatal error, raised by the next call (see finish)
            cause = e if isinstance(e, KafkaException) else e.__context__
            if not isinstance(cause, KafkaException):
                raise
            self.deliveries.fatal = str(cause.args[0])
            if n not in self.deliveries.ok:
                self.deliveries.fail(n, cause)

    def finish(self, timeout):
        # A fatal error (e.g. no InitProducerId) is raised from flush: the remaining
        # records' reports still come.
        end = time.monotonic() + timeout
        while len(self.producer) and time.monotonic() < end:
            try:
                self.producer.flush(max(end - time.monotonic(), 0))
            except Exception as e:
                # A callback that ran with the error pending raises a SystemError instead.
                cause = e if isinstance(e, KafkaException) else e.__context__
                if isinstance(cause, KafkaException):
                    self.deliveries.fatal = str(cause.args[0])
                log(f"     {self.name}: {type(e).__name__}: {e}")

    def close(self):
        try:
            self.producer.flush(0)
        except Exception:
            pass


class KafkaPythonClient:
    name = "kafka-python"

    def __init__(self, bootstrap, topic, prefix, idempotent):
        self.topic, self.prefix = topic, prefix
        self.deliveries = Deliveries()
        kw = {}
        if not idempotent:
            kw["enable_idempotence"] = False
        elif not KafkaProducer.DEFAULT_CONFIG.get("enable_idempotence"):
            # kafka-python before 3.0 defaults to enable_idempotence=False: ask for it.
            kw["enable_idempotence"] = True
        # Otherwise its defaults, which 3.x makes idempotent: enable_idempotence=True,
        # acks=all, retries unlimited, 5 in flight, delivery_timeout_ms 120 s. Setting acks,
        # retries=0 or more in flight would silently turn idempotence off. A faster reconnect
        # after the restart does not touch it.
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, client_id=f"{prefix}-producer",
                                      reconnect_backoff_max_ms=1000, **kw)
        self.idempotent = bool(self.producer.config["enable_idempotence"])
        self.setting = (f"enable_idempotence={self.idempotent} "
                        f"({'set' if kw else 'the default'}), "
                        f"acks={self.producer.config['acks']}, "
                        f"retries={self.producer.config['retries']}, broker version inferred "
                        f"{self.producer.config['api_version']}")

    def send(self, n):
        try:
            future = self.producer.send(self.topic, value=value_of(self.prefix, n).encode(),
                                        partition=n % PARTITIONS)
        except Exception as e:  # e.g. no metadata within max_block_ms
            self.deliveries.fail(n, f"{type(e).__name__}: {e}")
            return
        future.add_callback(lambda md: self.deliveries.done(n, md.partition, md.offset))
        future.add_errback(lambda e: self.deliveries.fail(n, f"{type(e).__name__}: {e}"))

    def finish(self, timeout):
        self.producer.flush(timeout)

    def close(self):
        self.producer.close(timeout=2)


def run_sync(checks, what, client, count, broker=None):
    """Produces count records from a thread; with a broker, SIGKILLs and restarts it once a
    third of them are acknowledged. Returns when every record has its verdict, or a wait
    timed out (a failed check)."""
    d = client.deliveries
    stop = threading.Event()

    def produce():
        for n in range(count):
            if stop.is_set():
                return
            client.send(n)
            if n % PACE_EVERY == PACE_EVERY - 1:
                time.sleep(PACE_S)  # pacing only, so that the kill falls in the middle

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    if broker is not None:
        third = count // 3
        wait_until(lambda: len(d.ok) >= third or d.failed, STEP_TIMEOUT)
        if not checks.check(len(d.ok) >= third and not d.failed,
                            f"{what}: a third of the records acknowledged before the kill",
                            f"{len(d.ok)} acknowledged, {len(d.failed)} failed, "
                            f"e.g. {d.failed[:3]}"):
            stop.set()
            thread.join(10)
            return
        acked = len(d.ok)
        status = broker.restart(kill=True)
        checks.check(status == -signal.SIGKILL,
                     f"{what}: broker killed -9 at {acked} of {count} acknowledged and started "
                     f"again", f"exit status {status}")
    end = time.monotonic() + (VERDICT_TIMEOUT if broker is not None else STEP_TIMEOUT)
    thread.join(end - time.monotonic())
    try:
        client.finish(max(end - time.monotonic(), 1))
    except Exception as e:  # kafka-python raises on a flush timeout
        log(f"     flush: {type(e).__name__}: {e}")
    wait_until(lambda: d.verdicts() >= count, 5)


async def run_aiokafka(checks, what, bootstrap, topic, prefix, count, idempotent, broker=None):
    """run_sync for aiokafka: returns (deliveries, setting); no deliveries (None) when the
    producer did not start (it gets its producer id in start())."""
    d = Deliveries()
    # aiokafka's default is enable_idempotence=False: set True explicitly (acks=all follows;
    # it retries until a batch's time to live, request_timeout_ms, runs out).
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, client_id=f"{prefix}-producer",
                                enable_idempotence=idempotent, request_timeout_ms=60000)
    default = inspect.signature(AIOKafkaProducer.__init__).parameters["enable_idempotence"]
    setting = f"enable_idempotence={idempotent} (set; default {default.default})"
    loop = asyncio.get_running_loop()

    async def poll_until(predicate, timeout):
        end = loop.time() + timeout
        while not predicate() and loop.time() < end:
            await asyncio.sleep(0.05)
        return predicate()

    try:
        await asyncio.wait_for(producer.start(), STEP_TIMEOUT)
    except Exception as e:
        checks.check(False, f"{what}: producer starts (InitProducerId)",
                     f"{type(e).__name__}: {e}")
        await producer.stop()
        return None, setting
    futures = []

    def report(n, fut):
        if fut.cancelled():
            d.fail(n, "cancelled")
        elif fut.exception() is not None:
            d.fail(n, f"{type(fut.exception()).__name__}: {fut.exception()}")
        else:
            d.done(n, fut.result().partition, fut.result().offset)

    async def produce():
        for n in range(count):
            try:
                fut = await producer.send(topic, value=value_of(prefix, n).encode(),
                                          partition=n % PARTITIONS)
            except Exception as e:
                d.fail(n, f"{type(e).__name__}: {e}")
                continue
            fut.add_done_callback(functools.partial(report, n))
            futures.append(fut)
            if n % PACE_EVERY == PACE_EVERY - 1:
                await asyncio.sleep(PACE_S)  # pacing only, so that the kill falls mid-run

    task = asyncio.create_task(produce())
    try:
        if broker is not None:
            third = count // 3
            await poll_until(lambda: len(d.ok) >= third or d.failed or task.done(),
                             STEP_TIMEOUT)
            if not checks.check(len(d.ok) >= third and not d.failed,
                                f"{what}: a third of the records acknowledged before the kill",
                                f"{len(d.ok)} acknowledged, {len(d.failed)} failed, "
                                f"e.g. {d.failed[:3]}"):
                return d, setting
            acked = len(d.ok)
            status = await loop.run_in_executor(None, functools.partial(broker.restart,
                                                                        kill=True))
            checks.check(status == -signal.SIGKILL,
                         f"{what}: broker killed -9 at {acked} of {count} acknowledged and "
                         f"started again", f"exit status {status}")
        end = loop.time() + (VERDICT_TIMEOUT if broker is not None else STEP_TIMEOUT)
        await asyncio.wait_for(task, end - loop.time())
        await poll_until(lambda: d.verdicts() >= count, max(end - loop.time(), 1))
    except asyncio.TimeoutError:
        log(f"     {what}: timed out waiting for the records' verdicts")
    finally:
        task.cancel()
        try:
            await asyncio.wait_for(producer.stop(), 10)
        except Exception as e:
            log(f"     aiokafka stop: {type(e).__name__}: {e}")
    return d, setting


# ---- checks ----------------------------------------------------------------------------------

def check_acknowledged(checks, what, d, count):
    return checks.check(len(d.ok) == count and not d.failed,
                        f"{what}: all {count} records acknowledged",
                        f"{len(d.ok)} acknowledged, {len(d.failed)} failed (e.g. "
                        f"{d.failed[:3]}), {count - d.verdicts()} without a verdict"
                        + (f"; the producer's fatal error: {d.fatal}" if d.fatal else ""))


def check_read_back(checks, what, bootstrap, topic, prefix, count, d):
    """Exactly once, in order per partition, on the partition and at the offset reported."""
    reader = Reader(bootstrap, topic, PARTITIONS, "read_committed", name=f"{prefix}-reader")
    try:
        done = reader.read_to_end(STEP_TIMEOUT)
    finally:
        reader.close()
    checks.check(done, f"{what}: read back to the high watermarks",
                 f"got to {reader.eof} ({len(reader.records)} records)")
    checks.check(not reader.errors, f"{what}: no consume errors", f"{reader.errors[:5]}")
    seen = collections.Counter(number_of(prefix, v) for _, _, _, v in reader.records)
    foreign = [v for _, _, _, v in reader.records if number_of(prefix, v) is None]
    lost = [n for n in range(count) if n not in seen]
    dupes = {n: c for n, c in seen.items() if c > 1 and n is not None}
    checks.check(not lost, f"{what}: no record lost ({count} distinct values read)",
                 f"{len(lost)} missing, e.g. {lost[:10]}")
    checks.check(not dupes, f"{what}: no record duplicated",
                 f"{len(dupes)} values read more than once, e.g. {sorted(dupes.items())[:10]}")
    checks.check(not foreign, f"{what}: no value that was not produced", f"{foreign[:5]}")
    by_partition = collections.defaultdict(list)
    for p, o, _, v in sorted(reader.records):
        by_partition[p].append(number_of(prefix, v))
    disorder = {p: [(a, b) for a, b in zip(ns, ns[1:]) if a is not None and b is not None
                    and a >= b][:3] for p, ns in by_partition.items()}
    disorder = {p: pairs for p, pairs in disorder.items() if pairs}
    checks.check(not disorder, f"{what}: each partition's values in increasing order",
                 f"(value, next value) out of order: {disorder}")
    misplaced = [(n, p) for p, _, _, v in reader.records
                 for n in [number_of(prefix, v)] if n is not None and p != n % PARTITIONS]
    checks.check(not misplaced, f"{what}: each record on the partition it was sent to",
                 f"(n, partition) {misplaced[:5]}")
    at = {}
    for p, o, _, v in reader.records:
        at.setdefault(number_of(prefix, v), (p, o))
    wrong = [(n, d.ok[n], at.get(n)) for n in sorted(d.ok) if at.get(n) != d.ok[n]]
    checks.check(not wrong, f"{what}: every delivery report's offset is where the record is",
                 f"{len(wrong)} differ, (n, reported, read) e.g. {wrong[:5]}")


def check_batches(checks, what, bootstrap, topic, one_producer):
    """The batch headers: producer ids, epochs, and sequences from 0 without gap or repeat per
    (producer id, epoch, partition)."""
    logs = {p: log_of(bootstrap, topic, p) for p in range(PARTITIONS)}
    batches = [(p, b) for p in range(PARTITIONS) for b in logs[p].data()]
    no_pid = [(p, b) for p, b in batches if b.producer_id < 0 or b.producer_epoch < 0]
    checks.check(batches and not no_pid,
                 f"{what}: every one of the {len(batches)} batches carries a producer id and "
                 f"epoch", f"{len(no_pid)} without, e.g. {no_pid[:3]}")
    ids = sorted({(b.producer_id, b.producer_epoch) for _, b in batches})
    log(f"     {what}: (producer id, epoch) in the log: {ids[:10]}")
    if one_producer:
        checks.check(len({pid for pid, _ in ids}) == 1,
                     f"{what}: one producer id for the producer's batches", f"{ids}")
    runs = collections.defaultdict(list)
    for p, b in batches:
        runs[(b.producer_id, b.producer_epoch, p)].append(b)
    broken = []
    for key, bs in runs.items():
        expect = 0
        for b in bs:
            if b.base_sequence != expect:
                broken.append((key, f"batch @{b.base_offset} seq {b.base_sequence}, expected "
                                    f"{expect}"))
                break
            expect = b.base_sequence + b.count
    checks.check(not broken, f"{what}: per producer id, epoch and partition the batches' "
                             f"sequence numbers run from 0 without gap or repeat",
                 f"{broken[:5]}")


# ---- one client --------------------------------------------------------------------------------

def test_client(parts, args, name, prefix):
    checks = parts.checks
    broker = parts.broker()
    bootstrap = broker.bootstrap
    idempotent = not args.no_idempotence
    basic_topic, kill_topic = f"idem-{prefix}-basic", f"idem-{prefix}-kill"
    for topic in (basic_topic, kill_topic):
        create_topic(bootstrap, topic, PARTITIONS)
    checks.check(True, f"{name}: created {basic_topic} and {kill_topic} ({PARTITIONS} "
                       f"partitions each)")

    def produce(topic, count, kill):
        what = f"{name} {'kill -9' if kill else 'basic'}"
        target = broker if kill else None
        if name == "aiokafka":
            d, setting = asyncio.run(run_aiokafka(checks, what, bootstrap, topic, prefix,
                                                  count, idempotent, target))
        else:
            cls = KafkaPythonClient if name == "kafka-python" else ConfluentClient
            client = cls(bootstrap, topic, prefix, idempotent)
            setting = client.setting
            if name == "kafka-python" and idempotent:
                checks.check(client.idempotent, f"{what}: the producer is idempotent",
                             f"{setting}")
            try:
                run_sync(checks, what, client, count, target)
            finally:
                client.close()
            d = client.deliveries
        log(f"     {what}: {setting}")
        return what, d

    what, d = produce(basic_topic, BASIC_RECORDS, kill=False)
    if d is None or not check_acknowledged(checks, what, d, BASIC_RECORDS):
        log(f"     {name}: the basic run failed; the kill -9 run is skipped")
        return
    check_read_back(checks, what, bootstrap, basic_topic, prefix, BASIC_RECORDS, d)
    if idempotent:
        check_batches(checks, what, bootstrap, basic_topic, one_producer=True)

    what, d = produce(kill_topic, args.records, kill=True)
    if d is None:
        return
    check_acknowledged(checks, what, d, args.records)
    check_read_back(checks, what, bootstrap, kill_topic, prefix, args.records, d)
    if idempotent:
        check_batches(checks, what, bootstrap, kill_topic, one_producer=False)


CLIENTS = (("kafka-python", "kp"), ("aiokafka", "aio"), ("confluent-kafka", "ck"))


def main_test(args, checks):
    log(f"     kafka-python {kafka.__version__}, aiokafka {aiokafka.__version__}, "
        f"confluent-kafka {confluent_kafka.version()} (librdkafka "
        f"{confluent_kafka.libversion()[0]})")
    parts = Parts(args, checks)
    only = set(args.only.split(",")) if args.only else {name for name, _ in CLIENTS}
    unknown = only - {name for name, _ in CLIENTS}
    checks.require(not unknown, "--only names known parts", f"unknown {sorted(unknown)}")
    for name, prefix in CLIENTS:
        if name in only:
            parts.run(name, lambda parts, name=name, prefix=prefix:
                      test_client(parts, args, name, prefix))
    mode = "idempotence off (self-test)" if args.no_idempotence else "idempotent"
    checks.finish(f"{mode} records={args.records}: {parts.summary()}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_broker_args(ap)
    ap.set_defaults(timeout=300.0)
    ap.add_argument("--records", type=int, default=3000)
    ap.add_argument("--only", help="comma-separated parts: kafka-python,aiokafka,confluent-kafka")
    ap.add_argument("--no-idempotence", action="store_true",
                    help="the same runs with idempotence off (a self-test of the harness and "
                         "checks; producer-id checks skipped)")
    args = ap.parse_args()
    run_checked("idempotent_producers", args, main_test)


if __name__ == "__main__":
    main()
