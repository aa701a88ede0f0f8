#!/usr/bin/env python3
"""Transactions through Shardlog with confluent-kafka (librdkafka 2.x, transactional.id set):
commit and abort, a consume-transform-produce loop across two broker crashes, the broker
aborting a transaction that timed out, and a producer fenced by a newer instance.

  transactions.py [--broker PATH] [--input 2000] [--timeout 300]
                  [--only commit-abort,consume-transform-produce,timeout,fencing]

Each part runs on a broker of its own (harness.Broker):
  commit-abort: one producer, 3 transactions of 100 records each on a 3-partition topic,
    committed, aborted, committed (values tagged by transaction). A read_committed consumer
    reads exactly the 200 committed values, a read_uncommitted one all 300, each once; neither
    gets a record that is not ours (no control record reaches the application) or an error
    other than partition EOF. Raw Fetch requests show the batches transactional with the
    producer's id, each partition's markers COMMIT, ABORT, COMMIT right after each
    transaction's records, the aborted transaction listed (producer id, first offset) to a
    read_committed Fetch, and the last stable offset at the high watermark.
  consume-transform-produce: --input records produced plainly to a 3-partition input topic; a
    loop consumes them (group, read_committed, enable.auto.commit=false) and, in transactions
    of up to 50, produces "out-<n>" for "in-<n>" to the output topic (same partition), adds the
    consumer's positions with send_offsets_to_transaction(position, group metadata) and
    commits. The broker is SIGKILLed and restarted twice: once with a transaction's records
    produced but nothing else done, once after its offsets were sent and before its commit.
    The loop recovers as librdkafka documents: retriable errors are retried, an abortable one
    aborts the transaction and rewinds the consumer to its committed offsets, a fatal one
    (e.g. fenced) re-creates the producer (init_transactions) and rewinds. At the end the
    group's committed offsets are the input's end, and a read_committed consumer of the output
    reads each input record's transformed value exactly once, each partition in order.
  timeout: the broker runs with transaction.abort.timed.out.transaction.cleanup.interval.ms=500
    (transaction.max.timeout.ms its default). A producer with transaction.timeout.ms=3000
    begins a transaction, produces 10 records to a 1-partition topic, flushes, and never
    commits. Another transactional producer then commits 10 records to the same partition.
    While the abandoned transaction is open the last stable offset stays at its first record;
    within 30 s (and not before the 3 s timeout) a read_committed consumer reads past it:
    it gets the 10 committed records and none of the abandoned ones, which are in the log
    (read_uncommitted) followed by an ABORT marker. The abandoned producer's
    commit_transaction then fails (fatal or abortable: it was fenced by the abort).
  fencing: producer A (transactional.id X) begins a transaction and produces 10 records;
    producer B with the same transactional.id X calls init_transactions; A's commit then
    fails with a fatal _FENCED error; B commits its own transaction, and a read_committed
    consumer reads B's records and none of A's (which are in the log, aborted).

Prints one line per check and a last line "PASS: ..." or "FAIL: ..."; exits 0 only on PASS.
"""

import argparse
import collections
import functools
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import add_broker_args, log, rdkafka_logger, run_checked  # noqa: E402

try:
    import confluent_kafka
    from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException,
                                 Producer, TopicPartition)
except ImportError:  # pragma: no cover - depends on the machine
    print("FAIL: the confluent-kafka module is missing (pip install confluent-kafka)")
    sys.exit(2)

from eos import Parts, Reader, create_topic, log_of  # noqa: E402

PARTITIONS = 3
STEP_TIMEOUT = 30.0  # bound of each wait and of each blocking transactional call
TXN_RECORDS = 50  # consume-transform-produce: records per transaction, at most
LOOP_SECONDS = 120.0  # consume-transform-produce: the loop's limit (it takes ~20 s)


def describe(err):
    """A KafkaError with its flags."""
    if not isinstance(err, KafkaError):
        return f"{type(err).__name__}: {err}"
    flags = [name for name, on in (("fatal", err.fatal()), ("retriable", err.retriable()),
                                   ("txn_requires_abort", err.txn_requires_abort())) if on]
    return f"{err.name()} ({err.str()}){' [' + ', '.join(flags) + ']' if flags else ''}"


def error_of(e):
    """The KafkaError an exception carries: a KafkaException's, or that of the KafkaException
    a SystemError stands for (confluent-kafka raises one when a delivery callback ran with a
    fatal error pending); None for any other exception."""
    for x in (e, e.__context__):
        if isinstance(x, KafkaException) and x.args and isinstance(x.args[0], KafkaError):
            return x.args[0]
    return None


def txn_producer(bootstrap, txn_id, client_id=None, **conf):
    return Producer(dict({
        "bootstrap.servers": bootstrap,
        "transactional.id": txn_id,
        "client.id": client_id or txn_id,
        "reconnect.backoff.max.ms": 1000,
        "logger": rdkafka_logger(client_id or txn_id),
    }, **conf))


class Deliveries:
    """Delivery reports by value: value -> (partition, offset); failures (value, error). No
    lock, and msg not touched on an error: confluent-kafka can run a delivery callback with an
    exception pending (after a fatal error), which breaks the next Python call in it (and may
    leave a with-block's lock held)."""

    def __init__(self):
        self.ok = {}
        self.failed = []

    def report(self, value, err, msg):
        if err is None:
            self.ok[value] = (msg.partition(), msg.offset())
        else:
            self.failed.append((value, str(err)))


def produce_all(producer, topic, values, deliveries, partition_of):
    for i, value in enumerate(values):
        while True:
            try:
                producer.produce(topic, value=value, key=value.split("-")[0],
                                 partition=partition_of(i),
                                 on_delivery=functools.partial(deliveries.report, value))
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)


def call(checks, what, fn):
    """Runs a transactional call; a KafkaException is a failed check. Returns success."""
    try:
        fn()
    except Exception as e:
        return checks.check(False, what, describe(error_of(e) or e))
    return checks.check(True, what)


def read(bootstrap, topic, partitions, isolation, timeout=STEP_TIMEOUT):
    """(reader, reached the end) for a whole topic; the reader is closed."""
    reader = Reader(bootstrap, topic, partitions, isolation,
                    name=f"{topic}-{isolation.replace('_', '-')}")
    try:
        done = reader.read_to_end(timeout)
    finally:
        reader.close()
    return reader, done


def check_exactly(checks, what, reader, done, expected):
    """The reader got each expected value exactly once, nothing else, and no error."""
    got = collections.Counter(reader.values())
    missing = sorted(set(expected) - set(got))
    dupes = {v: c for v, c in got.items() if c > 1}
    foreign = sorted((v for v in got if v not in expected), key=str)
    checks.check(done, f"{what}: reads to the end of every partition",
                 f"ends reported {reader.eof}")
    checks.check(not missing and not dupes and not foreign,
                 f"{what}: exactly the {len(expected)} expected values, each once",
                 f"{len(missing)} missing (e.g. {missing[:5]}), {len(dupes)} duplicated "
                 f"(e.g. {sorted(dupes.items())[:5]}), {len(foreign)} not expected "
                 f"(e.g. {foreign[:5]})")
    checks.check(not reader.errors, f"{what}: no error but partition EOF",
                 f"{reader.errors[:5]}")


# ---- commit / abort / commit -------------------------------------------------------------------

def test_commit_abort(parts):
    checks = parts.checks
    broker = parts.broker()
    bootstrap = broker.bootstrap
    topic = "txn-commit-abort"
    create_topic(bootstrap, topic, PARTITIONS)
    producer = txn_producer(bootstrap, "commit-abort")
    if not call(checks, "commit-abort: init_transactions",
                lambda: producer.init_transactions(STEP_TIMEOUT)):
        return
    deliveries = Deliveries()
    plan = (("c1", True), ("a2", False), ("c3", True))
    tagged = {tag: [f"{tag}-{i:03d}" for i in range(100)] for tag, _ in plan}
    for tag, commit in plan:
        if not call(checks, f"commit-abort: begin transaction {tag}",
                    producer.begin_transaction):
            return
        produce_all(producer, topic, tagged[tag], deliveries, lambda i: i % PARTITIONS)
        producer.flush(STEP_TIMEOUT)  # the records are in the log before the commit or abort
        delivered = [v for v in tagged[tag] if v in deliveries.ok]
        checks.check(len(delivered) == 100,
                     f"commit-abort: transaction {tag}'s 100 records delivered before its "
                     f"{'commit' if commit else 'abort'}",
                     f"{len(delivered)} delivered, failures {deliveries.failed[:3]}")
        end = producer.commit_transaction if commit else producer.abort_transaction
        if not call(checks, f"commit-abort: {'commit' if commit else 'abort'} transaction {tag}",
                    lambda: end(STEP_TIMEOUT)):
            return
    committed = tagged["c1"] + tagged["c3"]
    reader, done = read(bootstrap, topic, PARTITIONS, "read_committed")
    check_exactly(checks, "commit-abort read_committed", reader, done, committed)
    reader_all, done = read(bootstrap, topic, PARTITIONS, "read_uncommitted")
    check_exactly(checks, "commit-abort read_uncommitted", reader_all, done,
                  committed + tagged["a2"])

    # The log itself: transactional batches, markers, the aborted transaction's listing.
    tag_at = {(p, o): v.split("-")[0] for p, o, _, v in reader_all.records}
    for p in range(PARTITIONS):
        lg = log_of(bootstrap, topic, p)
        pids = {b.producer_id for b in lg.batches}
        not_txn = [b for b in lg.data() if not b.transactional]
        checks.check(len(pids) == 1 and min(pids) >= 0 and lg.data() and not not_txn,
                     f"commit-abort partition {p}: every batch transactional, with the "
                     f"producer's id", f"producer ids {pids}, not transactional {not_txn[:3]}")
        seq = []
        for b in lg.batches:
            if b.control:
                seq.append(b.marker)
            else:
                tags = [tag_at.get((p, o), "?") for o in range(b.base_offset,
                                                               b.base_offset + b.count)]
                seq.extend(tags)
        runs = [t for i, t in enumerate(seq) if i == 0 or seq[i - 1] != t]
        checks.check(runs == ["c1", "COMMIT", "a2", "ABORT", "c3", "COMMIT"],
                     f"commit-abort partition {p}: markers COMMIT, ABORT, COMMIT each right "
                     f"after its transaction's records",
                     f"the log in order: {runs} ({lg.batches[:8]})")
        rc = log_of(bootstrap, topic, p, isolation=1)
        a2_first = min((o for (q, o), t in tag_at.items() if q == p and t == "a2"), default=None)
        checks.check([o for _, o in rc.aborted] == [a2_first] and rc.aborted
                     and rc.aborted[0][0] in pids,
                     f"commit-abort partition {p}: a read_committed Fetch lists the aborted "
                     f"transaction (producer id, first offset {a2_first})",
                     f"aborted transactions listed: {rc.aborted}")
        checks.check(rc.last_stable_offset == rc.high_watermark,
                     f"commit-abort partition {p}: last stable offset at the high watermark "
                     f"({rc.high_watermark}) with no transaction open",
                     f"LSO {rc.last_stable_offset}, high watermark {rc.high_watermark}")


# ---- consume-transform-produce across two broker crashes ---------------------------------------

class Loop:
    """The consume-transform-produce loop and its recovery."""

    def __init__(self, checks, broker, bootstrap, in_topic, out_topic, group):
        self.checks = checks
        self.broker = broker
        self.bootstrap = bootstrap
        self.in_topic, self.out_topic = in_topic, out_topic
        self.stats = collections.Counter()
        self.retired = []  # producers replaced after a fatal error, kept referenced (their
        # destruction must not block the loop)
        self.committed = {}  # partition -> offset, from our successful commits
        self.kills = []  # (moment, exit status)
        self.rebalances = []
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": "ctp-consumer",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 100,
            "reconnect.backoff.max.ms": 1000,
            "logger": rdkafka_logger("ctp-consumer"),
        })
        self.consumer.subscribe(
            [in_topic],
            on_assign=lambda c, ps: self.rebalances.append(("assign", len(ps))),
            on_revoke=lambda c, ps: self.rebalances.append(("revoke", len(ps))),
            on_lost=lambda c, ps: self.rebalances.append(("lost", len(ps))))
        self.producer = None

    def new_producer(self, deadline):
        """A transactional producer, init_transactions retried on retriable errors. Returns
        the error that ended the attempts, or None."""
        if self.producer is not None:
            self.retired.append(self.producer)
        # metadata.recovery.strategy=none: librdkafka 2.10+ re-bootstraps when every broker is
        # down (a single broker killed -9), decommissioning the broker cached as the group
        # coordinator, and send_offsets_to_transaction then hangs past its timeout
        # (confluentinc/librdkafka#5511, #5456; against Kafka as well). Without re-bootstrap the
        # client reconnects to the same broker, as it must here.
        self.producer = txn_producer(self.bootstrap, "ctp-txn",
                                     client_id=f"ctp-producer-{len(self.retired)}",
                                     **{"metadata.recovery.strategy": "none"})
        return self.retrying(lambda: self.producer.init_transactions(STEP_TIMEOUT), deadline)

    def retrying(self, fn, deadline):
        """fn() until it succeeds, retrying retriable errors until the deadline; returns None or
        the error (a KafkaError) that stopped it."""
        while True:
            try:
                fn()
                return None
            except Exception as e:
                err = error_of(e)
                if err is None:
                    raise
                if err.retriable() and not err.fatal() and time.monotonic() < deadline:
                    self.stats["retried " + err.name()] += 1
                    continue
                return err

    def rewind(self, deadline):
        """Seeks the consumer back to the group's committed offsets (the beginning where
        none), as after an aborted transaction: its records are processed again."""
        self.stats["rewinds"] += 1
        assignment = self.consumer.assignment()
        if not assignment:
            return
        committed = None
        while committed is None:
            try:
                committed = self.consumer.committed(assignment, timeout=STEP_TIMEOUT)
            except KafkaException as e:
                if time.monotonic() >= deadline:
                    raise
                log(f"     committed offsets: {describe(error_of(e) or e)}")
        for tp in committed:
            offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            try:
                self.consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
            except KafkaException as e:
                # Not fetching yet: it starts from the committed offset anyway.
                log(f"     seek {tp.partition} to {offset}: {describe(error_of(e) or e)}")

    def kill(self, moment):
        status = self.broker.restart(kill=True)
        self.kills.append((moment, status))
        log(f"     broker killed -9 {moment} (exit status {status}) and started again")

    def transaction(self, msgs, kill_when):
        """One transaction for msgs. Returns None on commit, else the error."""
        p = self.producer
        try:
            p.begin_transaction()
            for m in msgs:
                n = m.value().decode().split("-", 1)[1]
                while True:
                    try:
                        p.produce(self.out_topic, key=m.key(), value=f"out-{n}",
                                  partition=m.partition())
                        break
                    except BufferError:
                        p.poll(0.05)
            p.poll(0)
        except Exception as e:
            if error_of(e) is None:
                raise
            return error_of(e)
        if kill_when == "produced":
            self.kill("after a transaction's records were produced")
        deadline = time.monotonic() + 2 * STEP_TIMEOUT
        # The positions of the partitions this transaction read from: the offsets after its
        # records. The others' committed offsets stay as they are.
        read_from = {m.partition() for m in msgs}
        positions = [tp for tp in self.consumer.position(self.consumer.assignment())
                     if tp.partition in read_from and tp.offset >= 0]
        err = self.retrying(lambda: p.send_offsets_to_transaction(
            positions, self.consumer.consumer_group_metadata(), STEP_TIMEOUT), deadline)
        if err is not None:
            return err
        if kill_when == "offsets sent":
            self.kill("after a transaction's offsets were sent, before its commit")
        err = self.retrying(lambda: p.commit_transaction(STEP_TIMEOUT), deadline)
        if err is None:
            for tp in positions:
                self.committed[tp.partition] = tp.offset
        return err

    def recover(self, err, deadline):
        """After a failed transaction: abort it if the error asks for it (or is neither
        fatal nor abortable), re-create the producer if that fails or the error is fatal;
        then rewind the consumer."""
        self.stats[f"failed: {err.name()}"] += 1
        log(f"     transaction failed: {describe(err)}")
        if not err.fatal():
            abort_err = self.retrying(lambda: self.producer.abort_transaction(STEP_TIMEOUT),
                                      deadline)
            if abort_err is None:
                self.stats["aborted"] += 1
                self.rewind(deadline)
                return None
            log(f"     abort_transaction failed: {describe(abort_err)}")
        self.stats["producer re-created"] += 1
        init_err = self.new_producer(deadline)
        self.rewind(deadline)
        return init_err

    def run(self, ends, seconds):
        """Until the committed offsets reach ends (partition -> offset) or seconds pass;
        kills the broker at a third and two thirds of the input. Returns whether it got to the
        end; None when no producer could be had."""
        deadline = time.monotonic() + seconds
        err = self.new_producer(deadline)
        if err is not None:
            self.checks.check(False, "consume-transform-produce: init_transactions",
                              describe(err))
            return None
        total = sum(ends.values())
        pending = ["produced", "offsets sent"]

        def done():
            return all(self.committed.get(p, 0) >= end for p, end in ends.items())

        while not done() and time.monotonic() < deadline:
            msgs = self.consumer.consume(num_messages=TXN_RECORDS, timeout=0.5)
            for m in msgs:
                if m.error():
                    self.stats[f"consume error {m.error().name()}"] += 1
            msgs = [m for m in msgs if not m.error()]
            if not msgs:
                continue
            progress = sum(self.committed.values())
            kill_when = None
            if pending and progress >= total * (3 - len(pending)) // 3:
                kill_when = pending.pop(0)
            err = self.transaction(msgs, kill_when)
            if err is None:
                self.stats["committed"] += 1
                continue
            err = self.recover(err, deadline)
            if err is not None:
                self.checks.check(False, "consume-transform-produce: the producer recovers",
                                  describe(err))
                return False
        return done()


def test_consume_transform_produce(parts, args):
    checks = parts.checks
    broker = parts.broker(overrides={"group.initial.rebalance.delay.ms": 0})
    bootstrap = broker.bootstrap
    in_topic, out_topic, group = "ctp-input", "ctp-output", "ctp-group"
    create_topic(bootstrap, in_topic, PARTITIONS)
    create_topic(bootstrap, out_topic, PARTITIONS)
    plain = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": False,
                      "linger.ms": 5, "logger": rdkafka_logger("ctp-input")})
    deliveries = Deliveries()
    inputs = [f"in-{n:05d}" for n in range(args.input)]
    produce_all(plain, in_topic, inputs, deliveries, lambda i: i % PARTITIONS)
    plain.flush(STEP_TIMEOUT)
    checks.check(len(deliveries.ok) == args.input and not deliveries.failed,
                 f"consume-transform-produce: {args.input} input records produced plainly",
                 f"{len(deliveries.ok)} delivered, failures {deliveries.failed[:3]}")
    ends = {p: 0 for p in range(PARTITIONS)}
    for p, o in deliveries.ok.values():
        ends[p] = max(ends[p], o + 1)

    loop = Loop(checks, broker, bootstrap, in_topic, out_topic, group)
    started = time.monotonic()
    try:
        finished = loop.run(ends, LOOP_SECONDS)
        if finished is None:
            return
        took = time.monotonic() - started
        checks.check(finished, f"consume-transform-produce: the loop commits the whole input "
                               f"({took:.1f}s)",
                     f"committed {loop.committed}, input ends {ends}")
        log(f"     loop: {dict(loop.stats)}; rebalances {loop.rebalances}")
        for moment, status in loop.kills:
            checks.check(status == -signal.SIGKILL,
                         f"consume-transform-produce: broker killed -9 {moment}, started "
                         f"again", f"exit status {status}")
        if not finished:
            return
        checks.check(len(loop.kills) == 2, "consume-transform-produce: the broker was killed "
                                           "twice during the loop", f"{loop.kills}")
        got = loop.consumer.committed([TopicPartition(in_topic, p) for p in range(PARTITIONS)],
                                      timeout=STEP_TIMEOUT)
        got = {tp.partition: tp.offset for tp in got}
        checks.check(got == ends, "consume-transform-produce: the group's committed offsets "
                                  "(OffsetFetch) are the input's end",
                     f"committed {got}, input ends {ends}")
    finally:
        loop.consumer.close()

    expected = [f"out-{v.split('-')[1]}" for v in inputs]
    reader, done = read(bootstrap, out_topic, PARTITIONS, "read_committed")
    check_exactly(checks, "consume-transform-produce output, read_committed", reader, done,
                  expected)
    disorder = {}
    for p in range(PARTITIONS):
        ns = [v for q, _, _, v in sorted(reader.records) if q == p]
        bad = [(a, b) for a, b in zip(ns, ns[1:]) if a >= b]
        if bad:
            disorder[p] = bad[:3]
    checks.check(not disorder, "consume-transform-produce output: each partition in input "
                               "order", f"{disorder}")
    wrong = [(p, k, v) for p, _, k, v in reader.records
             if v is None or k != "in" or int(v.split("-")[1]) % PARTITIONS != p]
    checks.check(not wrong, "consume-transform-produce output: each record has its input's "
                            "key and partition", f"{wrong[:5]}")
    everything, _ = read(bootstrap, out_topic, PARTITIONS, "read_uncommitted")
    log(f"     the output log holds {len(everything.records)} records (read_uncommitted): "
        f"{len(everything.records) - len(reader.records)} in aborted transactions")


# ---- the broker aborts a transaction that timed out ---------------------------------------------

def test_timeout(parts):
    checks = parts.checks
    broker = parts.broker(overrides={
        "transaction.abort.timed.out.transaction.cleanup.interval.ms": 500})
    bootstrap = broker.bootstrap
    topic = "txn-timeout"
    create_topic(bootstrap, topic, 1)
    abandoned = txn_producer(bootstrap, "timeout-abandoned", **{"transaction.timeout.ms": 3000})
    if not call(checks, "timeout: init_transactions (transaction.timeout.ms=3000)",
                lambda: abandoned.init_transactions(STEP_TIMEOUT)):
        return
    deliveries = Deliveries()
    dropped = [f"abandoned-{i}" for i in range(10)]
    abandoned.begin_transaction()
    began = time.monotonic()
    produce_all(abandoned, topic, dropped, deliveries, lambda i: 0)
    abandoned.flush(STEP_TIMEOUT)
    checks.check(all(v in deliveries.ok for v in dropped),
                 "timeout: the abandoned transaction's 10 records delivered (then neither "
                 "commit nor abort)", f"failures {deliveries.failed[:3]}")
    first = min((o for v, (_, o) in deliveries.ok.items() if v in dropped), default=None)

    live = txn_producer(bootstrap, "timeout-live")
    kept = [f"live-{i}" for i in range(10)]
    if not call(checks, "timeout: another producer commits 10 records to the same partition",
                lambda: (live.init_transactions(STEP_TIMEOUT), live.begin_transaction(),
                         produce_all(live, topic, kept, deliveries, lambda i: 0),
                         live.commit_transaction(STEP_TIMEOUT))):
        return
    rc = log_of(bootstrap, topic, 0, isolation=1)
    if time.monotonic() - began < 2.5:
        checks.check(rc.last_stable_offset == first,
                     f"timeout: while the abandoned transaction is open, the last stable "
                     f"offset stays at its first record ({first})",
                     f"LSO {rc.last_stable_offset}, high watermark {rc.high_watermark}")
    else:
        log("     (the last stable offset is not checked: the machine took more than 2.5 s "
            "to get there, the transaction may be aborted already)")

    reader = Reader(bootstrap, topic, 1, "read_committed", name="timeout-read-committed")
    try:
        ok = reader.wait_for(lambda: set(kept) <= set(reader.values()), 30)
        took = time.monotonic() - began
    finally:
        reader.close()
    checks.check(ok, f"timeout: within 30 s a read_committed consumer reads past the abandoned "
                     f"transaction: it gets the 10 later committed records "
                     f"({took:.1f}s after the transaction began)",
                 f"read {reader.values()}, ends {reader.eof}")
    checks.check(took >= 3.0 or not ok, "timeout: and not before the transaction timed out "
                                        "(transaction.timeout.ms 3 s)", f"after {took:.1f}s")
    stray = [v for v in reader.values() if v in dropped]
    checks.check(not stray and not reader.errors,
                 "timeout: read_committed gets none of the abandoned records, and no error",
                 f"abandoned records read {stray}, errors {reader.errors[:3]}")
    everything, _ = read(bootstrap, topic, 1, "read_uncommitted")
    checks.check(set(dropped) <= set(everything.values()),
                 "timeout: the abandoned records are in the log (read_uncommitted)",
                 f"read {everything.values()}")
    lg = log_of(bootstrap, topic, 0)
    pid = {b.producer_id for b in lg.data() if b.base_offset == first}
    markers = [(b.producer_id, b.marker) for b in lg.markers()]
    checks.check(pid and (min(pid), "ABORT") in markers,
                 "timeout: the broker wrote an ABORT marker for the abandoned producer",
                 f"abandoned producer id {pid}, markers {markers}")
    try:
        abandoned.commit_transaction(STEP_TIMEOUT)
        err = None
    except Exception as e:
        err = error_of(e)
        if err is None:
            raise
    checks.check(err is not None and (err.fatal() or err.txn_requires_abort()),
                 "timeout: the abandoned producer's commit_transaction then fails (fenced or "
                 "abortable)", "it succeeded" if err is None else describe(err))
    if err is not None:
        log(f"     the abandoned producer's commit: {describe(err)}")


# ---- fencing -----------------------------------------------------------------------------------

def test_fencing(parts):
    checks = parts.checks
    broker = parts.broker()
    bootstrap = broker.bootstrap
    topic = "txn-fencing"
    create_topic(bootstrap, topic, PARTITIONS)
    deliveries = Deliveries()
    a = txn_producer(bootstrap, "fenced-id", client_id="producer-A")
    if not call(checks, "fencing: A init_transactions", lambda: a.init_transactions(STEP_TIMEOUT)):
        return
    a.begin_transaction()
    a_values = [f"A-{i}" for i in range(10)]
    produce_all(a, topic, a_values, deliveries, lambda i: i % PARTITIONS)
    a.flush(STEP_TIMEOUT)
    checks.check(all(v in deliveries.ok for v in a_values),
                 "fencing: A's transaction has its 10 records delivered",
                 f"failures {deliveries.failed[:3]}")

    b = txn_producer(bootstrap, "fenced-id", client_id="producer-B")
    if not call(checks, "fencing: B (the same transactional.id) init_transactions while A's "
                        "transaction is open", lambda: b.init_transactions(STEP_TIMEOUT)):
        return
    late = [f"A-late-{i}" for i in range(5)]
    try:
        produce_all(a, topic, late, deliveries, lambda i: i % PARTITIONS)
        a.commit_transaction(STEP_TIMEOUT)
        err = None
    except Exception as e:
        err = error_of(e)
        if err is None:
            raise
    checks.check(err is not None and err.fatal() and err.code() == KafkaError._FENCED,
                 "fencing: A's produce and commit fail with a fatal _FENCED error",
                 "the commit succeeded" if err is None else describe(err))
    if err is not None:
        log(f"     A's commit: {describe(err)}")

    b_values = [f"B-{i}" for i in range(10)]
    call(checks, "fencing: B commits a transaction of 10 records",
         lambda: (b.begin_transaction(), produce_all(b, topic, b_values, deliveries,
                                                     lambda i: i % PARTITIONS),
                  b.commit_transaction(STEP_TIMEOUT)))
    reader, done = read(bootstrap, topic, PARTITIONS, "read_committed")
    check_exactly(checks, "fencing read_committed", reader, done, b_values)
    everything, _ = read(bootstrap, topic, PARTITIONS, "read_uncommitted")
    checks.check(set(a_values) <= set(everything.values()),
                 "fencing: A's first 10 records are in the log (read_uncommitted), aborted",
                 f"read {sorted(everything.values())}")
    ids = sorted({(bt.producer_id, bt.producer_epoch, bt.marker)
                  for p in range(PARTITIONS) for bt in log_of(bootstrap, topic, p).markers()})
    log(f"     markers (producer id, epoch, kind): {ids}")


PARTS = ("commit-abort", "consume-transform-produce", "timeout", "fencing")


def main_test(args, checks):
    log(f"     confluent-kafka {confluent_kafka.version()} "
        f"(librdkafka {confluent_kafka.libversion()[0]})")
    parts = Parts(args, checks)
    only = set(args.only.split(",")) if args.only else set(PARTS)
    unknown = only - set(PARTS)
    checks.require(not unknown, "--only names known parts", f"unknown {sorted(unknown)}")
    fns = {"commit-abort": test_commit_abort,
           "consume-transform-produce": lambda parts: test_consume_transform_produce(parts,
                                                                                    args),
           "timeout": test_timeout, "fencing": test_fencing}
    for name in PARTS:
        if name in only:
            parts.run(name, fns[name])
    checks.finish(parts.summary())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_broker_args(ap)
    ap.set_defaults(timeout=300.0)
    ap.add_argument("--input", type=int, default=2000,
                    help="consume-transform-produce: input records")
    ap.add_argument("--only", help="comma-separated parts: " + ",".join(PARTS))
    args = ap.parse_args()
    run_checked("transactions", args, main_test)


if __name__ == "__main__":
    main()
