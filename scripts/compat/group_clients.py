#!/usr/bin/env python3
"""Consumer groups of other clients through Shardlog: kafka-python, aiokafka and kcat -G, and
the group admin APIs (ListGroups, DescribeGroups, OffsetDelete, DeleteGroups).

  group_clients.py [--broker PATH] [--timeout 170]
                   [--only kafka-python,aiokafka,kcat,admin,errors]

Starts a broker (harness.Broker) with group.initial.rebalance.delay.ms=0. Records are produced
with confluent-kafka (acks=all, enable.idempotence=false). For kafka-python's KafkaConsumer and
aiokafka's AIOKafkaConsumer, each on a 3-partition topic of its own:
  * a group subscribes with auto_offset_reset=earliest, reads the records produced beforehand,
    commits (OffsetCommit) and the committed offsets it reads back are the high watermarks;
  * after more records, a second run of the same group starts exactly at the committed offsets
    and reads only the new records;
  * a fresh group with auto_offset_reset=latest reads only records produced after it got its
    partitions; a fresh group with earliest reads everything from offset 0.
kcat -G (librdkafka's balanced consumer, auto commit on close): a group reads every line once
and exits at the end (-e); a second run of the group reads nothing; after more lines a third
run reads just those.
Admin: ListGroups shows those groups Empty; OffsetDelete (kafka-python's
delete_group_offsets) removes one partition's offset; DeleteGroups (confluent-kafka) removes a
group and its offsets.
Errors: INVALID_SESSION_TIMEOUT for a session timeout under the broker's minimum; standalone
commits (assign() and commit, alter_consumer_group_offsets) are kept for a group without
members and refused with UNKNOWN_MEMBER_ID for one with members, which DeleteGroups refuses
with NON_EMPTY_GROUP; ListGroups filters on state; an unknown group is Dead to DescribeGroups,
has no offsets, and DeleteGroups answers GROUP_ID_NOT_FOUND.

Prints one line per check and a last line "PASS: ..." or "FAIL: ..."; exits 0 only on PASS.
"""

import argparse
import asyncio
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Broker, add_broker_args, log, rdkafka_logger, run_checked, \
    wait_until  # noqa: E402

missing = []
try:
    from confluent_kafka import ConsumerGroupTopicPartitions, Producer
    from confluent_kafka import TopicPartition as CTopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
except ImportError:  # pragma: no cover - depends on the machine
    missing.append("confluent-kafka")
try:
    import kafka
    from kafka import KafkaAdminClient, KafkaConsumer
    from kafka import TopicPartition as KTopicPartition
except ImportError:  # pragma: no cover
    missing.append("kafka-python")
try:
    import aiokafka
    from aiokafka import AIOKafkaConsumer
except ImportError:  # pragma: no cover
    missing.append("aiokafka")
if missing:
    print(f"FAIL: Python modules missing: {', '.join(missing)} (pip install {' '.join(missing)})")
    sys.exit(2)

PARTITIONS = 3
STEP_TIMEOUT = 30.0  # generous bound for each poll loop


class Topic:
    """A topic, its producer and the records produced so far (key -> (partition, offset))."""

    def __init__(self, bootstrap, admin, name, prefix):
        self.name = name
        self.prefix = prefix
        self.bootstrap = bootstrap
        admin.create_topics([NewTopic(name, PARTITIONS, 1)], request_timeout=30)[name].result(30)
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                                  "enable.idempotence": False,
                                  "logger": rdkafka_logger("producer")})
        self.produced = {}
        self.next = 0
        self.failed = []

    def produce(self, count):
        """Produces count records and returns their keys."""
        keys = []

        def report(err, msg):
            if err is None:
                self.produced[msg.key().decode()] = (msg.partition(), msg.offset())
            else:
                self.failed.append(str(err))

        for _ in range(count):
            key = f"{self.prefix}-{self.next}"
            self.next += 1
            keys.append(key)
            self.producer.produce(self.name, key=key, value=f"value of {key}", on_delivery=report)
        self.producer.flush(30)
        return keys

    def high_watermarks(self):
        marks = {p: 0 for p in range(PARTITIONS)}
        for p, o in self.produced.values():
            marks[p] = max(marks[p], o + 1)
        return marks


def group_offsets(admin, group, topic):
    """{partition: committed offset (-1001 for none)} of a group, via OffsetFetch."""
    req = ConsumerGroupTopicPartitions(group, [CTopicPartition(topic, p)
                                               for p in range(PARTITIONS)])
    res = admin.list_consumer_group_offsets([req], request_timeout=10)[group].result(10)
    return {tp.partition: tp.offset for tp in res.topic_partitions}


def check_run(checks, what, got, expected, first_offsets, start_offsets):
    """got: [(partition, offset, key)]; expected: the keys the run must read, no others;
    start_offsets: {partition: offset} each partition's first record must be at."""
    keys = [k for _, _, k in got]
    extra = [k for k in keys if k not in expected]
    missing_keys = sorted(set(expected) - set(keys))
    checks.check(not missing_keys, f"{what}: reads the {len(expected)} records",
                 f"{len(missing_keys)} missing, e.g. {missing_keys[:5]}")
    checks.check(not extra, f"{what}: reads no other record", f"{len(extra)}: {extra[:5]}")
    checks.check(len(keys) == len(set(keys)), f"{what}: no duplicates",
                 f"{len(keys) - len(set(keys))}")
    wrong = {p: (o, start_offsets.get(p)) for p, o in first_offsets.items()
             if o != start_offsets.get(p)}
    checks.check(not wrong, f"{what}: starts each partition at {start_offsets}",
                 f"(first offset read, expected): {wrong}")


# ---- kafka-python ----------------------------------------------------------------------------

def kafka_python_run(bootstrap, topic, group, reset, expected, on_assigned=None, commit=True):
    """One run of a KafkaConsumer in `group`: reads until every expected key is in (or the step
    timeout), commits, and returns (records, first offsets, committed offsets, error)."""
    consumer = KafkaConsumer(topic.name, bootstrap_servers=bootstrap, group_id=group,
                             client_id=f"kafka-python-{group}", auto_offset_reset=reset,
                             enable_auto_commit=False, fetch_max_wait_ms=100,
                             session_timeout_ms=10000, heartbeat_interval_ms=1000)
    # The topic's partitions known before the first poll: otherwise the first join can
    # assign nothing, kafka-python rejoins once the metadata arrives, and when that rejoin's
    # SyncGroup answer lands after poll() has returned, kafka-python 3.0.12 drops it (no
    # assignment, heartbeat left off: the member times out). Seen after a disk-heavy
    # `cargo test`, which slows the first Metadata; the broker answered every request.
    consumer.partitions_for_topic(topic.name)
    got, first = [], {}
    try:
        if on_assigned:
            ok = wait_until(lambda: len(consumer.assignment()) == PARTITIONS, STEP_TIMEOUT,
                            step=lambda: consumer.poll(timeout_ms=100) and None)
            if not ok:
                return got, first, {}, f"no assignment: {consumer.assignment()}"
            # position() resolves the reset (ListOffsets) before anything new is produced.
            for tp in consumer.assignment():
                consumer.position(tp)
            expected = on_assigned()

        def step():
            for tp, recs in consumer.poll(timeout_ms=200).items():
                for r in recs:
                    got.append((tp.partition, r.offset, r.key.decode()))
                    first.setdefault(tp.partition, r.offset)

        wait_until(lambda: set(expected) <= {k for _, _, k in got}, STEP_TIMEOUT, step=step)
        committed = {}
        if commit:
            consumer.commit()
            committed = {p: consumer.committed(KTopicPartition(topic.name, p))
                         for p in range(PARTITIONS)}
        return got, first, committed, None
    finally:
        consumer.close(autocommit=False)


def test_kafka_python(checks, bootstrap, admin):
    log(f"-- kafka-python {kafka.__version__} KafkaConsumer")
    topic = Topic(bootstrap, admin, "clients-kafka-python", "kp")
    first_batch = topic.produce(300)
    checks.check(not topic.failed, "kafka-python topic: produced 300 records", f"{topic.failed}")
    group = "kafka-python-group"
    got, first, committed, err = kafka_python_run(bootstrap, topic, group, "earliest",
                                                  first_batch)
    checks.check(err is None, "kafka-python: first run subscribed", err)
    check_run(checks, "kafka-python first run (earliest)", got, first_batch, first,
              {p: 0 for p in first})
    marks = topic.high_watermarks()
    checks.check(committed == marks, "kafka-python: committed offsets read back are the high "
                                     "watermarks", f"committed {committed}, marks {marks}")
    second_batch = topic.produce(100)
    got, first, committed2, err = kafka_python_run(bootstrap, topic, group, "earliest",
                                                   second_batch)
    check_run(checks, "kafka-python second run of the group", got, second_batch, first,
              {p: committed[p] for p in first})
    checks.check(committed2 == topic.high_watermarks(),
                 "kafka-python: second run's commit reaches the high watermarks",
                 f"{committed2} vs {topic.high_watermarks()}")

    late = []
    got, first, _, err = kafka_python_run(
        bootstrap, topic, "kafka-python-latest", "latest", [],
        on_assigned=lambda: late.extend(topic.produce(50)) or late, commit=False)
    checks.check(err is None, "kafka-python latest: subscribed", err)
    check_run(checks, "kafka-python fresh group, latest", got, late, first,
              {p: committed2[p] for p in first})
    everything = first_batch + second_batch + late
    got, first, _, err = kafka_python_run(bootstrap, topic, "kafka-python-earliest", "earliest",
                                          everything, commit=False)
    check_run(checks, "kafka-python fresh group, earliest", got, everything, first,
              {p: 0 for p in first})
    return [group]


# ---- aiokafka --------------------------------------------------------------------------------

async def aiokafka_run(bootstrap, topic, group, reset, expected, on_assigned=None, commit=True):
    consumer = AIOKafkaConsumer(topic.name, bootstrap_servers=bootstrap, group_id=group,
                                client_id=f"aiokafka-{group}", auto_offset_reset=reset,
                                enable_auto_commit=False, fetch_max_wait_ms=100,
                                session_timeout_ms=10000, heartbeat_interval_ms=1000)
    got, first = [], {}
    await consumer.start()
    try:
        end = time.monotonic() + STEP_TIMEOUT
        if on_assigned:
            while len(consumer.assignment()) < PARTITIONS and time.monotonic() < end:
                await consumer.getmany(timeout_ms=100)
            if len(consumer.assignment()) < PARTITIONS:
                return got, first, {}, f"no assignment: {consumer.assignment()}"
            for tp in consumer.assignment():
                await consumer.position(tp)
            expected = await asyncio.get_running_loop().run_in_executor(None, on_assigned)
        while not set(expected) <= {k for _, _, k in got} and time.monotonic() < end:
            batches = await consumer.getmany(timeout_ms=200)
            for tp, recs in batches.items():
                for r in recs:
                    got.append((tp.partition, r.offset, r.key.decode()))
                    first.setdefault(tp.partition, r.offset)
        committed = {}
        if commit:
            await consumer.commit()
            for p in range(PARTITIONS):
                committed[p] = await consumer.committed(
                    aiokafka.TopicPartition(topic.name, p))
        return got, first, committed, None
    finally:
        await consumer.stop()


def test_aiokafka(checks, bootstrap, admin):
    log(f"-- aiokafka {aiokafka.__version__} AIOKafkaConsumer")
    topic = Topic(bootstrap, admin, "clients-aiokafka", "aio")
    first_batch = topic.produce(300)
    checks.check(not topic.failed, "aiokafka topic: produced 300 records", f"{topic.failed}")
    group = "aiokafka-group"
    got, first, committed, err = asyncio.run(
        aiokafka_run(bootstrap, topic, group, "earliest", first_batch))
    check_run(checks, "aiokafka first run (earliest)", got, first_batch, first,
              {p: 0 for p in first})
    marks = topic.high_watermarks()
    checks.check(committed == marks, "aiokafka: committed offsets read back are the high "
                                     "watermarks", f"committed {committed}, marks {marks}")
    second_batch = topic.produce(100)
    got, first, committed2, err = asyncio.run(
        aiokafka_run(bootstrap, topic, group, "earliest", second_batch))
    check_run(checks, "aiokafka second run of the group", got, second_batch, first,
              {p: committed[p] for p in first})
    checks.check(committed2 == topic.high_watermarks(),
                 "aiokafka: second run's commit reaches the high watermarks",
                 f"{committed2} vs {topic.high_watermarks()}")
    late = []
    got, first, _, err = asyncio.run(aiokafka_run(
        bootstrap, topic, "aiokafka-latest", "latest", [],
        on_assigned=lambda: late.extend(topic.produce(50)) or late, commit=False))
    checks.check(err is None, "aiokafka latest: subscribed", err)
    check_run(checks, "aiokafka fresh group, latest", got, late, first,
              {p: committed2[p] for p in first})
    everything = first_batch + second_batch + late
    got, first, _, err = asyncio.run(aiokafka_run(bootstrap, topic, "aiokafka-earliest",
                                                  "earliest", everything, commit=False))
    check_run(checks, "aiokafka fresh group, earliest", got, everything, first,
              {p: 0 for p in first})
    return [group]


# ---- kcat -G ---------------------------------------------------------------------------------

def test_kcat(checks, bootstrap, admin):
    log("-- kcat -G")
    topic = Topic(bootstrap, admin, "clients-kcat", "kcat")
    group = "kcat-group"

    def run(what, expected):
        # Not "-o beginning": with -G, kcat seeks every assigned partition to -o's offset,
        # committed or not. A fresh group starts at the beginning through auto.offset.reset.
        cmd = ["kcat", "-b", bootstrap, "-G", group, topic.name, "-e", "-q",
               "-X", "auto.offset.reset=earliest", "-X", "fetch.wait.max.ms=100",
               "-f", "%p %o %k\\n"]
        t = time.monotonic()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired as e:
            checks.check(False, f"kcat -G {what}: exits at the end of the partitions (-e)",
                         f"still running after 60s; stderr: {(e.stderr or '')[-500:]}")
            return
        lines = [line.split(" ") for line in proc.stdout.splitlines() if line]
        got = [(int(p), int(o), k) for p, o, k in lines]
        checks.check(proc.returncode == 0, f"kcat -G {what}: exits 0 at the end "
                                           f"({time.monotonic() - t:.1f}s)",
                     f"exit {proc.returncode}; stderr: {proc.stderr[-500:]}")
        keys = [k for _, _, k in got]
        checks.check(sorted(keys) == sorted(expected),
                     f"kcat -G {what}: reads exactly the {len(expected)} expected records",
                     f"read {len(keys)} ({len(set(keys) - set(expected))} unexpected, "
                     f"{len(set(expected) - set(keys))} missing, "
                     f"{len(keys) - len(set(keys))} duplicates)")

    first = topic.produce(200)
    checks.check(not topic.failed, "kcat topic: produced 200 records", f"{topic.failed}")
    run("first run", first)
    committed = group_offsets(admin, group, topic.name)
    checks.check(committed == topic.high_watermarks(),
                 "kcat -G committed the high watermarks on exit (OffsetFetch)",
                 f"committed {committed}, high watermarks {topic.high_watermarks()}")
    run("second run of the group", [])
    more = topic.produce(50)
    run("third run after 50 more records", more)
    return [group]


# ---- admin -----------------------------------------------------------------------------------

def test_admin(checks, bootstrap, admin, groups):
    log("-- group admin APIs")
    listed = {g.group_id: g for g in admin.list_consumer_groups(request_timeout=10)
              .result(10).valid}
    absent = [g for g in groups if g not in listed]
    checks.check(not absent, f"ListGroups lists the groups {groups}",
                 f"missing {absent}; listed {sorted(listed)}")
    not_empty = {g: listed[g].state.name for g in groups if g in listed
                 and listed[g].state.name != "EMPTY"}
    checks.check(not not_empty, "and they are Empty", f"{not_empty}")
    if not groups:
        return
    group = groups[0]
    topic = "clients-kafka-python" if group.startswith("kafka-python") else None
    if topic is None:
        return

    def offsets(g):
        return group_offsets(admin, g, topic)

    before = offsets(group)
    checks.check(all(o > 0 for o in before.values()), f"{group} has committed offsets",
                 f"{before}")
    kadmin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="kafka-python-admin")
    try:
        result = kadmin.delete_group_offsets(group, [KTopicPartition(topic, 0)])
        log(f"     delete_group_offsets: {result}")
        after = offsets(group)
        checks.check(after.get(0) == -1001 and all(after[p] == before[p]
                                                   for p in range(1, PARTITIONS)),
                     "OffsetDelete (kafka-python delete_group_offsets) removes partition 0's "
                     "offset only", f"before {before}, after {after}")
    except Exception as e:
        checks.check(False, "OffsetDelete (kafka-python delete_group_offsets)",
                     f"{type(e).__name__}: {e}")
    finally:
        kadmin.close()
    fs = admin.delete_consumer_groups([group], request_timeout=10)
    try:
        fs[group].result(10)
        checks.check(True, f"DeleteGroups deletes {group}")
    except Exception as e:
        checks.check(False, f"DeleteGroups deletes {group}", f"{e}")
    listed = [g.group_id for g in admin.list_consumer_groups(request_timeout=10).result(10).valid]
    checks.check(group not in listed, f"ListGroups no longer lists {group}", f"{listed}")
    after = offsets(group)
    checks.check(all(o == -1001 for o in after.values()),
                 f"OffsetFetch of the deleted {group} finds no offsets", f"{after}")


# ---- error answers -----------------------------------------------------------------------------

def test_errors(checks, bootstrap, admin):
    """What the coordinator answers to requests it must refuse or that name nothing, with
    Kafka's error codes."""
    from confluent_kafka import Consumer, ConsumerGroupState, KafkaError, KafkaException
    log("-- error answers and standalone commits")
    topic = "clients-errors"
    admin.create_topics([NewTopic(topic, 2, 1)], request_timeout=30)[topic].result(30)
    base = {"bootstrap.servers": bootstrap, "logger": rdkafka_logger("errors"),
            "enable.auto.commit": False}

    def error_of(fn):
        try:
            fn()
            return None
        except KafkaException as e:
            return e.args[0].code()
        except Exception as e:  # futures raise the KafkaError itself
            return e.args[0].code() if e.args and hasattr(e.args[0], "code") else repr(e)

    # A session timeout below group.min.session.timeout.ms (6000 by default).
    c = Consumer(dict(base, **{"group.id": "errors-short-session", "session.timeout.ms": 1000,
                               "heartbeat.interval.ms": 300}))
    c.subscribe([topic])
    seen = []

    def poll_error():
        try:
            m = c.poll(0.2)
            if m is not None and m.error():
                seen.append(m.error().code())
        except KafkaException as e:
            seen.append(e.args[0].code())
        return seen

    wait_until(poll_error, STEP_TIMEOUT, step=lambda: None)
    c.close()
    checks.check(KafkaError.INVALID_SESSION_TIMEOUT in seen,
                 "JoinGroup with session.timeout.ms 1000 < group.min.session.timeout.ms: "
                 "INVALID_SESSION_TIMEOUT", f"errors {seen}")

    # A standalone consumer (assign(), no membership) commits to a group nobody is in.
    s = Consumer(dict(base, **{"group.id": "errors-standalone"}))
    s.assign([CTopicPartition(topic, 0, 0)])
    err = error_of(lambda: s.commit(offsets=[CTopicPartition(topic, 0, 7)], asynchronous=False))
    got = s.committed([CTopicPartition(topic, 0)], timeout=10)
    s.close()
    checks.check(err is None and got[0].offset == 7,
                 "a standalone consumer's commit (generation -1) to an unused group is kept",
                 f"error {err}, committed {got}")
    # The admin client's OffsetCommit (alter_consumer_group_offsets) likewise.
    err = error_of(lambda: admin.alter_consumer_group_offsets(
        [ConsumerGroupTopicPartitions("errors-altered", [CTopicPartition(topic, 1, 42)])],
        request_timeout=10)["errors-altered"].result(10))
    got = group_offsets(admin, "errors-altered", topic)
    checks.check(err is None and got.get(1) == 42,
                 "alter_consumer_group_offsets on an unused group is kept",
                 f"error {err}, committed {got}")

    # A group with a live member: outsiders may not commit and it may not be deleted.
    member = Consumer(dict(base, **{"group.id": "errors-busy"}))
    member.subscribe([topic])
    ok = wait_until(lambda: member.assignment(), STEP_TIMEOUT, step=lambda: member.poll(0.1))
    checks.check(ok, "errors-busy: a member joins", "no assignment")
    outsider = Consumer(dict(base, **{"group.id": "errors-busy"}))
    err = error_of(lambda: outsider.commit(offsets=[CTopicPartition(topic, 0, 3)],
                                           asynchronous=False))
    outsider.close()
    checks.check(err == KafkaError.UNKNOWN_MEMBER_ID,
                 "a standalone commit to a group with members: UNKNOWN_MEMBER_ID", f"{err}")
    res = admin.alter_consumer_group_offsets(
        [ConsumerGroupTopicPartitions("errors-busy", [CTopicPartition(topic, 1, 42)])],
        request_timeout=10)["errors-busy"]
    try:
        codes = [tp.error.code() if tp.error else None for tp in res.result(10).topic_partitions]
    except Exception as e:
        codes = [e.args[0].code() if e.args and hasattr(e.args[0], "code") else repr(e)]
    checks.check(codes == [KafkaError.UNKNOWN_MEMBER_ID],
                 "alter_consumer_group_offsets on a group with members: UNKNOWN_MEMBER_ID",
                 f"{codes}")
    err = error_of(lambda: admin.delete_consumer_groups(["errors-busy"], request_timeout=10)
                   ["errors-busy"].result(10))
    checks.check(err == KafkaError.NON_EMPTY_GROUP,
                 "DeleteGroups of a group with members: NON_EMPTY_GROUP", f"{err}")
    listed = admin.list_consumer_groups(states={ConsumerGroupState.STABLE},
                                        request_timeout=10).result(10).valid
    checks.check([g.group_id for g in listed] == ["errors-busy"],
                 "ListGroups filtered on Stable lists only errors-busy",
                 f"{[(g.group_id, g.state) for g in listed]}")
    member.close()

    # Groups that do not exist.
    d = admin.describe_consumer_groups(["errors-none"], request_timeout=10)["errors-none"]
    d = d.result(10)
    checks.check(d.state == ConsumerGroupState.DEAD and not d.members,
                 "DescribeGroups of an unknown group: Dead, no members", f"{d.state} {d.members}")
    got = group_offsets(admin, "errors-none", topic)
    checks.check(all(o == -1001 for o in got.values()),
                 "OffsetFetch of an unknown group: no offsets (-1)", f"{got}")
    err = error_of(lambda: admin.delete_consumer_groups(["errors-none"], request_timeout=10)
                   ["errors-none"].result(10))
    checks.check(err == KafkaError.GROUP_ID_NOT_FOUND,
                 "DeleteGroups of an unknown group: GROUP_ID_NOT_FOUND", f"{err}")
    return []


def main_test(args, checks):
    broker = Broker.from_args(args, checks=checks,
                              overrides={"group.initial.rebalance.delay.ms": 0})
    broker.start()
    bootstrap = broker.bootstrap
    admin = AdminClient({"bootstrap.servers": bootstrap, "logger": rdkafka_logger("admin")})
    only = set(args.only.split(",")) if args.only else {"kafka-python", "aiokafka", "kcat",
                                                        "admin", "errors"}
    groups = []
    timings = []
    for name, fn in (("kafka-python", test_kafka_python), ("aiokafka", test_aiokafka),
                     ("kcat", test_kcat)):
        if name in only:
            t = time.monotonic()
            groups += fn(checks, bootstrap, admin)
            timings.append(f"{name} {time.monotonic() - t:.1f}s")
    if "admin" in only:
        test_admin(checks, bootstrap, admin, groups)
    if "errors" in only:
        t = time.monotonic()
        test_errors(checks, bootstrap, admin)
        timings.append(f"errors {time.monotonic() - t:.1f}s")
    checks.finish(", ".join(timings))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_broker_args(ap)
    ap.add_argument("--only",
                    help="comma-separated parts: kafka-python,aiokafka,kcat,admin,errors")
    args = ap.parse_args()
    run_checked("group_clients", args, main_test)


if __name__ == "__main__":
    main()
