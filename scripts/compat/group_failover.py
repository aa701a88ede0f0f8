#!/usr/bin/env python3
"""Consumer-group failover through Shardlog with confluent-kafka (librdkafka 2.x).

  group_failover.py [--broker PATH] [--records 3000] [--timeout 170]
                    [--strategy range|roundrobin|cooperative-sticky]

1. starts a broker (harness.Broker: temporary data dir, free port, --shards 2) with
   group.initial.rebalance.delay.ms=1000;
2. creates a 6-partition topic and produces --records keyed records (k-<n> / v-<n>);
3. starts three consumer processes (this script with --consumer NAME) in one group
   (session.timeout.ms=6000, enable.auto.commit=false, a synchronous commit after each batch
   it processed); each reports its assignment, the records it got and its commits on stdout.
   Checks the group settles with 2 partitions each, all 6 covered, and DescribeGroups says
   Stable with 3 members;
4. SIGKILLs one of them (no LeaveGroup) while a producer keeps writing, and checks its
   partitions go to the other two (3 each) within the session timeout plus a margin;
5. checks every delivered record was consumed at least once (duplicates are counted and
   reported: the killed member's uncommitted records are read again), and that the committed
   offsets (AdminClient list_consumer_group_offsets: OffsetFetch) reach the high watermarks;
   in between, the broker is restarted (SIGTERM, exit 0) under the two live members: they go
   on consuming what is produced after it (whether they rebalance is printed, not required);
6. stops the two consumers cleanly (LeaveGroup: the group becomes Empty), SIGKILLs the broker
   and starts it again on the same data dir: the committed offsets must be as before; then
   produces more records and a new member of the group must start exactly at the committed
   offsets (nothing produced before the restart is read again) and read every new record.

Prints one line per check and a last line "PASS: ..." or "FAIL: ..."; exits 0 only on PASS.
GROUP_DEBUG=cgrp (any librdkafka debug contexts) writes the clients' debug logs to the
consumers' stderr files in the temporary folder (kept on failure).
"""

import argparse
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Broker, add_broker_args, log, rdkafka_logger, run_checked, \
    wait_until, with_debug  # noqa: E402

try:
    from confluent_kafka import (Consumer, ConsumerGroupTopicPartitions, KafkaError,
                                 KafkaException, Producer, TopicPartition)
    from confluent_kafka.admin import AdminClient, NewTopic
except ImportError:  # pragma: no cover - depends on the machine
    print("FAIL: the confluent-kafka module is missing (pip install confluent-kafka)")
    sys.exit(2)

TOPIC = "failover"
GROUP = "failover-group"
PARTITIONS = 6
SESSION_TIMEOUT_MS = 6000
# How much longer than the session timeout reassignment may take: the survivors learn of the
# rebalance on their next heartbeat (heartbeat.interval.ms 1000), then rejoin and sync.
REASSIGN_MARGIN_S = 10.0


def key_of(n):
    return f"k-{n}"


def value_of(n):
    return f"v-{n}"


# `--strategy consumer`: the KIP-848 protocol (group.protocol=consumer), where the broker
# assigns and sets the session and heartbeat timing (see BROKER_OVERRIDES).
KIP848 = "consumer"


def consumer_config(bootstrap, name, strategy):
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": GROUP,
        "client.id": name,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 100,
    }
    if strategy == KIP848:
        conf["group.protocol"] = "consumer"
    else:
        conf.update({
            "partition.assignment.strategy": strategy,
            "session.timeout.ms": SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": 1000,
        })
    return with_debug(conf)


def broker_overrides():
    return {
        "group.initial.rebalance.delay.ms": 1000,
        "group.consumer.session.timeout.ms": SESSION_TIMEOUT_MS,
        "group.consumer.heartbeat.interval.ms": 1000,
    }


# ---- the consumer process ------------------------------------------------------------------

def run_consumer(bootstrap, name, strategy):
    """One group member. Reports on stdout, one event a line:
    A <p,p,..> assigned (its whole assignment) / V <p,..> revoked / L <p,..> lost /
    R <p> <offset> <key> a record / E <text> a consume error or a value not matching its key /
    C ok|<error> a commit / X closed. Stops (close(): LeaveGroup) on "stop" or EOF on stdin."""
    out_lock = threading.Lock()

    def emit(line):
        with out_lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def parts(ps):
        return ",".join(str(tp.partition) for tp in ps)

    stop = threading.Event()

    def read_stdin():
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        stop.set()

    threading.Thread(target=read_stdin, daemon=True).start()
    consumer = Consumer(dict(consumer_config(bootstrap, name, strategy),
                             logger=rdkafka_logger(name, 50)))
    held = set()
    incremental = strategy in ("cooperative-sticky", KIP848)

    def on_assign(c, ps):
        # Eager protocols hand the whole assignment, cooperative-sticky what is added.
        if not incremental:
            held.clear()
        held.update(tp.partition for tp in ps)
        emit(f"A {','.join(map(str, sorted(held)))}")

    def on_revoke(c, ps, kind="V"):
        held.difference_update(tp.partition for tp in ps)
        emit(f"{kind} {parts(ps)}")

    consumer.subscribe([TOPIC], on_assign=on_assign, on_revoke=on_revoke,
                       on_lost=lambda c, ps: on_revoke(c, ps, "L"))
    pending = False  # records processed since the last successful commit
    while not stop.is_set():
        msgs = consumer.consume(num_messages=500, timeout=0.2)
        lines = []
        for m in msgs:
            if m.error():
                if m.error().code() != KafkaError._PARTITION_EOF:
                    emit(f"E {m.error()}")
                continue
            key = m.key().decode()
            if m.value() != value_of(int(key[2:])).encode():
                emit(f"E p{m.partition()}@{m.offset()}: key {key} has value {m.value()[:40]!r}")
            lines.append(f"R {m.partition()} {m.offset()} {key}")
        if lines:
            emit("\n".join(lines))
            pending = True
        if pending:
            try:
                consumer.commit(asynchronous=False)
                emit("C ok")
                pending = False
            except KafkaException as e:
                err = e.args[0]
                if err.code() == KafkaError._NO_OFFSET:
                    pending = False
                else:  # e.g. REBALANCE_IN_PROGRESS during a rebalance: retried next round
                    emit(f"C {err.name()}")
    consumer.close()
    emit("X")
    return 0


# ---- the test --------------------------------------------------------------------------------

class Member:
    """A consumer process and what it reported."""

    def __init__(self, name, bootstrap, tmp, state, strategy):
        self.name = name
        self.state = state
        self.assignment = set()
        self.commits_ok = 0
        self.commit_errors = {}
        self.errors = []
        self.closed = False
        self.stderr_path = os.path.join(tmp, f"{name}.err")
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--consumer", name,
                 "--bootstrap", bootstrap, "--strategy", strategy],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            kind, _, rest = line.rstrip("\n").partition(" ")
            ps = {int(p) for p in rest.split(",") if p} if kind in "AVL" else set()
            with self.state.lock:
                if kind == "A":
                    self.assignment = set(ps)
                    self.state.events.append((time.monotonic(), self.name, "assign", ps))
                elif kind in ("V", "L"):
                    self.assignment -= ps
                    self.state.events.append((time.monotonic(), self.name,
                                              "revoke" if kind == "V" else "lost", ps))
                elif kind == "R":
                    p, o, key = rest.split(" ")
                    self.state.record(self.name, int(p), int(o), key)
                elif kind == "C":
                    if rest == "ok":
                        self.commits_ok += 1
                    else:
                        self.commit_errors[rest] = self.commit_errors.get(rest, 0) + 1
                elif kind == "E":
                    self.errors.append(rest)
                elif kind == "X":
                    self.closed = True

    def stop(self, timeout=30):
        try:
            self.proc.stdin.write("stop\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = None
        self.reader.join(5)
        return rc

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.reader.join(5)

    def stderr_tail(self, lines=15):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode(errors="replace").splitlines()[-lines:]
        except OSError:
            return []


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.events = []
        self.seen = {}  # key -> times consumed
        self.total = 0
        self.by_partition = {}  # partition -> offsets consumed

    def record(self, name, p, o, key):
        self.seen[key] = self.seen.get(key, 0) + 1
        self.total += 1
        self.by_partition.setdefault(p, []).append(o)


class Producing:
    """A producer thread writing k-<n> from a starting n until stopped."""

    def __init__(self, bootstrap, start):
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                                  "enable.idempotence": False, "linger.ms": 5,
                                  "logger": rdkafka_logger("producer")})
        self.next = start
        self.delivered = set()
        self.failed = []
        self.stop_flag = threading.Event()
        self.thread = None

    def _report(self, err, msg):
        if err is None:
            self.delivered.add(msg.key().decode())
        else:
            self.failed.append((msg.key(), str(err)))

    def produce(self, count):
        for _ in range(count):
            self.produce_one()
        self.producer.flush(60)

    def produce_one(self):
        n = self.next
        self.next += 1
        self.producer.produce(TOPIC, key=key_of(n), value=value_of(n), on_delivery=self._report)
        self.producer.poll(0)

    def start_background(self, per_second=300):
        self.stop_flag.clear()

        def run():
            while not self.stop_flag.is_set():
                self.produce_one()
                time.sleep(1.0 / per_second)  # pacing only; nothing is asserted on time here
            self.producer.flush(60)

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def stop_background(self):
        self.stop_flag.set()
        self.thread.join(90)


def committed_offsets(admin, timeout):
    """The group's committed offsets {partition: offset} via list_consumer_group_offsets."""
    req = ConsumerGroupTopicPartitions(
        GROUP, [TopicPartition(TOPIC, p) for p in range(PARTITIONS)])
    result = admin.list_consumer_group_offsets([req], request_timeout=timeout)[GROUP].result(
        timeout)
    out = {}
    for tp in result.topic_partitions:
        if tp.error:
            raise KafkaException(tp.error)
        out[tp.partition] = tp.offset
    return out


def high_watermarks(bootstrap):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "failover-watermarks",
                  "logger": rdkafka_logger("watermarks")})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10, cached=False)[1]
                for p in range(PARTITIONS)}
    finally:
        c.close()


def describe(admin):
    d = admin.describe_consumer_groups([GROUP], request_timeout=10)[GROUP].result(10)
    return d.state.name, sorted(m.client_id for m in d.members)


def wait_group(admin, state, members=None, timeout=15):
    """Polls DescribeGroups until the group is in `state` (with `members` client ids); returns
    (ok, the last description)."""
    last = []

    def good():
        last[:] = [describe(admin)]
        return last[0][0] == state and (members is None or last[0][1] == members)

    ok = wait_until(good, timeout, interval=0.2)
    return ok, last[0] if last else None


def main_test(args, checks):
    broker = Broker.from_args(args, checks=checks,
                              overrides=broker_overrides())
    broker.start()
    members = []

    def show_members():
        for m in members:
            for line in m.stderr_tail():
                log(f"     {m.name} stderr: {line}")

    checks.on_failure.append(show_members)
    checks.cleanup.insert(0, lambda failed: [m.proc.kill() for m in members
                                              if m.proc.poll() is None])
    bootstrap = broker.bootstrap
    admins = []  # every AdminClient made, kept referenced (see new_admin)

    def new_admin():
        """An AdminClient, made anew after each broker restart: librdkafka 2.16's admin client
        re-bootstraps when its only broker goes away and can leave a decommissioned broker
        handle behind that swallows the next group request (it is never sent: the call times
        out after request_timeout with _TIMED_OUT, the broker sees nothing). The old clients
        stay referenced, so that destroying one cannot block on that handle."""
        admins.append(AdminClient(with_debug({"bootstrap.servers": bootstrap,
                                              "logger": rdkafka_logger("admin")})))
        return admins[-1]

    admin = new_admin()
    fs = admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)], request_timeout=30)
    try:
        fs[TOPIC].result(30)
        checks.check(True, f"created topic {TOPIC} with {PARTITIONS} partitions")
    except Exception as e:
        checks.require(False, f"create topic {TOPIC}", str(e))

    state = State()
    producer = Producing(bootstrap, 0)
    producer.produce(args.records)
    checks.require(len(producer.delivered) == args.records and not producer.failed,
                   f"produced {args.records} keyed records",
                   f"{len(producer.delivered)} delivered, failures {producer.failed[:3]}")

    # -- three members split the partitions --
    t0 = time.monotonic()
    members.extend(Member(f"c{i}", bootstrap, broker.tmp, state, args.strategy)
                   for i in (1, 2, 3))

    def split_evenly(ms, each):
        with state.lock:
            sets = [set(m.assignment) for m in ms]
        union = set().union(*sets)
        return all(len(s) == each for s in sets) and union == set(range(PARTITIONS)) \
            and sum(map(len, sets)) == PARTITIONS

    ok = wait_until(lambda: split_evenly(members, 2), 45)
    checks.require(ok, f"3 members get 2 partitions each, all {PARTITIONS} covered "
                       f"({time.monotonic() - t0:.1f}s)",
                   f"assignments {[(m.name, sorted(m.assignment)) for m in members]}")
    log(f"     assignment: {', '.join(f'{m.name}={sorted(m.assignment)}' for m in members)}")
    ok, desc = wait_group(admin, "STABLE", ["c1", "c2", "c3"])
    checks.check(ok, "DescribeGroups: Stable with members c1, c2, c3", f"{desc}")
    ok = wait_until(lambda: len(state.seen) >= args.records, 60)
    checks.check(ok, f"the {args.records} records produced before are consumed",
                 f"{len(state.seen)} distinct keys consumed")

    # -- SIGKILL one member while producing --
    producer.start_background()
    victim, survivors = members[2], members[:2]
    lost = sorted(victim.assignment)
    before = {m.name: sorted(m.assignment) for m in survivors}
    victim.kill()
    t_kill = time.monotonic()
    log(f"     SIGKILLed {victim.name} (partitions {lost}) at "
        f"{len(producer.delivered)} delivered records")
    limit = SESSION_TIMEOUT_MS / 1000 + REASSIGN_MARGIN_S
    ok = wait_until(lambda: split_evenly(survivors, 3), limit + 20)
    took = time.monotonic() - t_kill
    checks.check(ok and took <= limit,
                 f"the killed member's partitions {lost} go to the other two within "
                 f"{limit:.0f}s (session timeout {SESSION_TIMEOUT_MS / 1000:.0f}s + "
                 f"{REASSIGN_MARGIN_S:.0f}s): {took:.1f}s",
                 f"after {took:.1f}s: {[(m.name, sorted(m.assignment)) for m in survivors]} "
                 f"(before {before})")
    log(f"     assignment: {', '.join(f'{m.name}={sorted(m.assignment)}' for m in survivors)}")
    kept = all(set(before[m.name]) <= m.assignment for m in survivors)
    log(f"     survivors kept their earlier partitions: {kept}")
    if args.strategy == "cooperative-sticky":
        checks.check(kept, "cooperative-sticky: the survivors keep their partitions",
                     f"before {before}, after "
                     f"{[(m.name, sorted(m.assignment)) for m in survivors]}")
    ok, desc = wait_group(admin, "STABLE", [m.name for m in survivors])
    checks.check(ok, "DescribeGroups: Stable with the 2 survivors", f"{desc}")

    # Keep producing a little after the reassignment, then stop.
    mark = producer.next
    wait_until(lambda: producer.next >= mark + 300, 30)
    producer.stop_background()
    checks.check(not producer.failed, "no produce failures while a member was killed",
                 f"{len(producer.failed)}: {producer.failed[:3]}")

    # -- a broker restart (SIGTERM) under the two live members --
    # The producer is paused across it, so that no request is in flight when the broker stops
    # (a retried produce could then be written twice, and the high watermarks below are exact).
    assigned = {m.name: set(m.assignment) for m in survivors}
    t_restart = time.monotonic()
    status = broker.restart()
    checks.check(status == 0, "broker stopped with SIGTERM (exit 0) and started again under "
                              "two live members", f"exit status {status}")
    admin = new_admin()
    producer.start_background()
    mark = producer.next
    wait_until(lambda: producer.next >= mark + 300, 30)
    producer.stop_background()
    checks.check(not producer.failed, "no produce failures after the broker restart",
                 f"{len(producer.failed)}: {producer.failed[:3]}")
    with state.lock:
        moved = [(round(t - t_restart, 1), name, kind, sorted(ps))
                 for t, name, kind, ps in state.events if t >= t_restart]
    log(f"     rebalance callbacks after the broker restart: {moved or 'none'}; assignment "
        f"unchanged: {all(m.assignment == assigned[m.name] for m in survivors)}")
    delivered = set(producer.delivered)
    ok = wait_until(lambda: delivered <= set(state.seen), 60)
    missing = sorted(delivered - set(state.seen), key=lambda k: int(k[2:]))
    with state.lock:
        dupes = state.total - len(state.seen)
        unexpected = set(state.seen) - delivered
    checks.check(ok, f"every one of {len(delivered)} delivered records consumed at least once "
                     f"({dupes} duplicates)",
                 f"{len(missing)} missing, e.g. {missing[:10]}")
    checks.check(not unexpected, "no record consumed that was not delivered",
                 f"{sorted(unexpected)[:10]}")

    marks = high_watermarks(bootstrap)
    checks.check(sum(marks.values()) == len(delivered),
                 f"high watermarks add up to the {len(delivered)} delivered records", f"{marks}")
    ok = wait_until(lambda: committed_offsets(admin, 10) == marks, 30, interval=0.2)
    committed = committed_offsets(admin, 10)
    checks.check(ok, "committed offsets (OffsetFetch) reach the high watermarks",
                 f"committed {committed}, high watermarks {marks}")
    for m in survivors:
        rc = m.stop()
        checks.check(rc == 0 and m.closed, f"{m.name} closes cleanly",
                     f"exit {rc}, closed {m.closed}")
        log(f"     {m.name}: {m.commits_ok} commits, failed commits {m.commit_errors or 'none'}")
        checks.check(not m.errors,
                     f"{m.name} saw no consume errors, and every value matched its key",
                     f"{m.errors[:5]}")
    ok, desc = wait_group(admin, "EMPTY", [])
    checks.check(ok, "DescribeGroups after both left: Empty, no members", f"{desc}")

    # -- broker restart: the commits survive and a new member resumes from them --
    status = broker.restart(kill=True)
    checks.check(status == -signal.SIGKILL, "broker SIGKILLed and started again on its data dir",
                 f"exit status {status}")
    admin = new_admin()
    try:
        after = wait_until(lambda: committed_offsets(admin, 10), 30, interval=0.2)
    except KafkaException as e:
        after = f"error {e}"
    checks.check(after == committed, "committed offsets survive the restart",
                 f"before {committed}, after {after}")
    first_new = producer.next
    producer = Producing(bootstrap, first_new)
    producer.produce(300)
    new_keys = set(producer.delivered)
    checks.check(len(new_keys) == 300 and not producer.failed,
                 "produced 300 records after the restart", f"failures {producer.failed[:3]}")

    consumer = Consumer(dict(consumer_config(bootstrap, "c4", args.strategy),
                             logger=rdkafka_logger("c4")))
    consumer.subscribe([TOPIC])
    got = []
    first_offset = {}

    def step():
        for m in consumer.consume(num_messages=500, timeout=0.2):
            if m.error():
                continue
            got.append(m.key().decode())
            first_offset.setdefault(m.partition(), m.offset())

    ok = wait_until(lambda: new_keys <= set(got), 60, step=step)
    consumer.close()
    old = [k for k in got if k not in new_keys]
    checks.check(ok, "a new member reads all 300 new records",
                 f"{len(set(got) & new_keys)} of 300")
    checks.check(not old, "it reads nothing produced before the restart",
                 f"{len(old)} old records, e.g. {old[:10]}")
    wrong = {p: (o, committed.get(p)) for p, o in first_offset.items() if o != committed.get(p)}
    checks.check(not wrong, "it starts every partition at the committed offset",
                 f"(first offset read, committed): {wrong}")
    checks.finish(f"strategy={args.strategy} records={len(delivered)} duplicates={dupes} "
                  f"reassigned_in={took:.1f}s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_broker_args(ap)
    ap.add_argument("--records", type=int, default=3000)
    ap.add_argument("--strategy", default="range",
                    help="partition.assignment.strategy: range (default), roundrobin or "
                         "cooperative-sticky (incremental rebalancing); or consumer for the "
                         "KIP-848 protocol (group.protocol=consumer, broker-side assignment)")
    ap.add_argument("--consumer", help=argparse.SUPPRESS)
    ap.add_argument("--bootstrap", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.consumer:
        sys.exit(run_consumer(args.bootstrap, args.consumer, args.strategy))
    run_checked("group_failover", args, main_test)


if __name__ == "__main__":
    main()
