#!/usr/bin/env python3
"""Static group membership (KIP-345, group.instance.id) through Shardlog with confluent-kafka.

  group_static.py [--broker PATH] [--timeout 170]

1. starts a broker (harness.Broker) with group.initial.rebalance.delay.ms=0 and creates a
   4-partition topic;
2. two consumers with group.instance.id "static-a" and "static-b" (session.timeout.ms=10000,
   heartbeat.interval.ms=500) settle with 2 partitions each; DescribeGroups shows both instance
   ids, Stable;
3. restarts each of them in turn (one of the two is the group's leader): close() (a static
   member sends no LeaveGroup) and a new consumer with the same group.instance.id at once,
   well within the session timeout. The new one must get the same partitions back, with a new
   member id, and the other member must see no rebalance: no revoke or assign callback and an
   unchanged rebalance count in librdkafka's statistics (cgrp.rebalance_cnt), over an
   observation window of several heartbeats after the restarted one got its partitions;
   DescribeGroups still shows the two instance ids (the old member id gone), Stable;
4. records produced afterwards are all consumed, each by the member owning its partition;
5. fencing: a third consumer joining with "static-b" while static-b runs takes its place; the
   old static-b gets the fatal error FENCED_INSTANCE_ID.

Prints one line per check and a last line "PASS: ..." or "FAIL: ..."; exits 0 only on PASS.
GROUP_DEBUG=cgrp (any librdkafka debug contexts) prints the clients' debug logs on stderr.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Broker, add_broker_args, log, rdkafka_logger, run_checked, \
    wait_until, with_debug  # noqa: E402

try:
    from confluent_kafka import Consumer, KafkaError, Producer
    from confluent_kafka.admin import AdminClient, NewTopic
except ImportError:  # pragma: no cover - depends on the machine
    print("FAIL: the confluent-kafka module is missing (pip install confluent-kafka)")
    sys.exit(2)

TOPIC = "static"
GROUP = "static-group"
PARTITIONS = 4
SESSION_TIMEOUT_MS = 10000
HEARTBEAT_MS = 500
# After a restart, how long the other member is watched for a rebalance it should not see:
# several heartbeats (a rebalance reaches a member through its heartbeat's error).
QUIET_WINDOW_S = 6 * HEARTBEAT_MS / 1000
# A fenced static member's error: librdkafka reports it as _FATAL (whose fatal() is not always
# set on the Python object), the original code is FENCED_INSTANCE_ID.
FATAL_CODES = (KafkaError._FATAL, KafkaError.FENCED_INSTANCE_ID)


class Static:
    """One consumer with a group.instance.id, and what its callbacks saw."""

    def __init__(self, bootstrap, instance, incarnation):
        self.instance = instance
        self.name = f"{instance}#{incarnation}"
        self.assignment = set()
        self.assigns = 0
        self.revokes = 0
        self.losts = 0
        self.rebalance_cnt = None
        self.stats_seen = 0
        self.fatal = []
        self.records = []
        self.closed = False
        conf = {
            "bootstrap.servers": bootstrap,
            "group.id": GROUP,
            "group.instance.id": instance,
            "client.id": self.name,
            "session.timeout.ms": SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": HEARTBEAT_MS,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
            "auto.commit.interval.ms": 500,
            "fetch.wait.max.ms": 100,
            "statistics.interval.ms": 200,
            "stats_cb": self._stats,
            "error_cb": self._error,
            "logger": rdkafka_logger(self.name, 50),
        }
        self.consumer = Consumer(with_debug(conf))
        self.consumer.subscribe([TOPIC], on_assign=self._assign, on_revoke=self._revoke,
                                on_lost=self._lost)

    def _assign(self, consumer, parts):
        self.assigns += 1
        self.assignment = {tp.partition for tp in parts}
        log(f"     {self.name}: assigned {sorted(self.assignment)}")

    def _revoke(self, consumer, parts):
        self.revokes += 1
        self.assignment -= {tp.partition for tp in parts}
        log(f"     {self.name}: revoked {sorted(tp.partition for tp in parts)}")

    def _lost(self, consumer, parts):
        self.losts += 1
        self.assignment -= {tp.partition for tp in parts}
        log(f"     {self.name}: lost {sorted(tp.partition for tp in parts)}")

    def _stats(self, text):
        cgrp = json.loads(text).get("cgrp") or {}
        if "rebalance_cnt" in cgrp:
            self.rebalance_cnt = cgrp["rebalance_cnt"]
            self.stats_seen += 1

    def _error(self, err):
        if err.fatal() or err.code() in FATAL_CODES:
            self.fatal.append(err)

    def poll(self):
        if self.closed:
            return
        try:
            for m in self.consumer.consume(num_messages=500, timeout=0.05):
                if not m.error():
                    self.records.append((m.partition(), m.key().decode()))
                elif m.error().fatal() or m.error().code() in FATAL_CODES:
                    self.fatal.append(m.error())
        except Exception as e:  # a fatal error is raised by consume() too
            self.fatal.append(e)

    def memberid(self):
        try:
            return self.consumer.memberid()
        except Exception:
            return None

    def close(self):
        if not self.closed:
            self.closed = True
            self.consumer.close()

    def counters(self):
        return (self.assigns, self.revokes, self.losts, self.rebalance_cnt)


def main_test(args, checks):
    broker = Broker.from_args(args, checks=checks,
                              overrides={"group.initial.rebalance.delay.ms": 0})
    broker.start()
    bootstrap = broker.bootstrap
    admin = AdminClient({"bootstrap.servers": bootstrap, "logger": rdkafka_logger("admin")})
    admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)], request_timeout=30)[TOPIC].result(30)
    checks.check(True, f"created topic {TOPIC} with {PARTITIONS} partitions")

    members = {"static-a": Static(bootstrap, "static-a", 1),
               "static-b": Static(bootstrap, "static-b", 1)}
    incarnations = {"static-a": 1, "static-b": 1}
    spare = []  # consumers outside `members` that must be polled too
    checks.cleanup.insert(0, lambda failed: [m.close() for m in
                                             list(members.values()) + spare if not failed])

    def poll_all():
        for m in list(members.values()) + spare:
            m.poll()

    def describe():
        d = admin.describe_consumer_groups([GROUP], request_timeout=10)[GROUP].result(10)
        return (d.state.name,
                sorted((m.group_instance_id, m.member_id) for m in d.members))

    def settled():
        sets = [m.assignment for m in members.values()]
        return all(len(s) == PARTITIONS // 2 for s in sets) and \
            set().union(*sets) == set(range(PARTITIONS))

    def fresh_stats(member):
        """Polls until member has emitted two more statistics (the second one made after now)."""
        seen = member.stats_seen
        if not wait_until(lambda: member.stats_seen >= seen + 2, 10, step=poll_all):
            checks.require(False, f"{member.name} emits statistics (statistics.interval.ms)",
                           f"{member.stats_seen - seen} in 10s")

    def stable_with(instances):
        state, ms = describe()
        return state == "STABLE" and [i for i, _ in ms] == sorted(instances)

    t0 = time.monotonic()
    ok = wait_until(settled, 45, step=poll_all)
    checks.require(ok, f"two static members get {PARTITIONS // 2} partitions each "
                       f"({time.monotonic() - t0:.1f}s)",
                   f"{[(m.name, sorted(m.assignment)) for m in members.values()]}")
    ok = wait_until(lambda: all(m.rebalance_cnt is not None for m in members.values())
                    and stable_with(members), 15, step=poll_all)
    checks.check(ok, "DescribeGroups: Stable, members static-a and static-b", f"{describe()}")

    restart_times = []
    for instance, other in (("static-a", "static-b"), ("static-b", "static-a")):
        old = members[instance]
        watcher = members[other]
        parts_before = set(old.assignment)
        old_id = old.memberid()
        # The statistics are periodic: take the baseline from a sample made from now on.
        fresh_stats(watcher)
        baseline = watcher.counters()
        t_restart = time.monotonic()
        old.close()
        incarnations[instance] += 1
        new = members[instance] = Static(bootstrap, instance, incarnations[instance])
        ok = wait_until(lambda: new.assigns > 0, SESSION_TIMEOUT_MS / 1000, step=poll_all)
        took = time.monotonic() - t_restart
        restart_times.append(took)
        checks.check(ok and new.assignment == parts_before,
                     f"restarted {instance} gets its partitions {sorted(parts_before)} back "
                     f"within the session timeout ({took:.1f}s)",
                     f"after {took:.1f}s: {sorted(new.assignment)} ({new.assigns} assigns)")
        # The absence of a rebalance can only be watched for a while: several heartbeats.
        window_end = time.monotonic() + QUIET_WINDOW_S
        wait_until(lambda: time.monotonic() >= window_end, QUIET_WINDOW_S + 1, step=poll_all)
        fresh_stats(watcher)
        checks.check(watcher.counters()[:3] == baseline[:3] and watcher.assignment,
                     f"{other} sees no revoke, assign or lost while {instance} restarts",
                     f"(assigns, revokes, losts) {baseline[:3]} -> {watcher.counters()[:3]}, "
                     f"assignment {sorted(watcher.assignment)}")
        checks.check(watcher.counters()[3] == baseline[3],
                     f"{other}'s rebalance count (librdkafka statistics) is unchanged",
                     f"{baseline[3]} -> {watcher.counters()[3]}")
        checks.check(new.revokes == 0 and new.assigns == 1,
                     f"restarted {instance} is assigned once and not revoked",
                     f"{new.assigns} assigns, {new.revokes} revokes")
        new_id = new.memberid()
        checks.check(new_id and new_id != old_id,
                     f"restarted {instance} has a new member id", f"{old_id} -> {new_id}")
        state, ms = describe()
        ids = dict(ms)
        checks.check(state == "STABLE" and sorted(ids) == ["static-a", "static-b"]
                     and ids.get(instance) == new_id,
                     f"DescribeGroups: Stable, {instance} now under its new member id",
                     f"{state} {ms}")

    # Records produced now are consumed, each by the member that owns its partition.
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                         "enable.idempotence": False, "logger": rdkafka_logger("producer")})
    keys = [f"s-{n}" for n in range(400)]
    for k in keys:
        producer.produce(TOPIC, key=k, value=k)
    checks.check(producer.flush(30) == 0, "produced 400 records after the restarts")
    for m in members.values():
        m.records.clear()
    ok = wait_until(lambda: {k for m in members.values() for _, k in m.records} >= set(keys), 30,
                    step=poll_all)
    got = {k for m in members.values() for _, k in m.records}
    checks.check(ok, "all 400 are consumed by the two members",
                 f"{len(set(keys) & got)} of 400")
    wrong = [(m.name, p) for m in members.values() for p, _ in m.records
             if p not in m.assignment]
    checks.check(not wrong, "each from a partition its consumer owns", f"{wrong[:5]}")

    # Fencing: a second live consumer with static-b's instance id replaces it.
    old_b = members["static-b"]
    fresh_stats(members["static-a"])
    a_baseline = members["static-a"].counters()
    intruder = Static(bootstrap, "static-b", "intruder")
    spare.append(intruder)
    ok = wait_until(lambda: old_b.fatal, 30, step=poll_all)
    # librdkafka raises it as a fatal error (_FATAL) whose text is FENCED_INSTANCE_ID's.
    fenced = [e for e in old_b.fatal if "fenced" in str(e)]
    checks.check(ok and fenced,
                 "a second consumer with static-b's group.instance.id fences the first "
                 "(fatal FENCED_INSTANCE_ID)", f"errors of the first: {old_b.fatal}")
    ok = wait_until(lambda: intruder.assignment == old_b.assignment or
                    (intruder.assigns and len(intruder.assignment) == PARTITIONS // 2), 30,
                    step=poll_all)
    checks.check(ok, "the new static-b consumer gets static-b's partitions",
                 f"{sorted(intruder.assignment)}")
    fresh_stats(members["static-a"])
    checks.check(members["static-a"].counters() == a_baseline,
                 "static-a sees no rebalance meanwhile",
                 f"(assigns, revokes, losts, rebalance_cnt) {a_baseline} -> "
                 f"{members['static-a'].counters()}")
    old_b.closed = True  # fenced: its close() would only repeat the fatal error
    spare.remove(intruder)
    members["static-b"] = intruder
    for m in members.values():
        m.close()
    checks.finish(f"restarts took {', '.join(f'{t:.1f}s' for t in restart_times)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_broker_args(ap)
    args = ap.parse_args()
    run_checked("group_static", args, main_test)


if __name__ == "__main__":
    main()
