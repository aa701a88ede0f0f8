"""Pieces shared by idempotent_producers.py and transactions.py: a script made of parts, each
on a broker of its own; a confluent-kafka reader of a whole topic; and the record batch headers
of a partition read with raw Fetch requests (producer id, epoch, sequence, transactional and
control flags), which no client library shows.

    parts = Parts(args, checks)     # in main_test(args, checks), see harness.run_checked
    parts.run("name", fn)           # fn(parts): parts.broker(overrides) starts a broker for it;
                                    # an exception fails the part, the next part still runs
    checks.finish(parts.summary())

    reader = Reader(bootstrap, topic, 3, "read_committed")   # every partition from offset 0
    reader.read_to_end(30)          # until each partition's end (read_committed: its LSO)
    reader.records                  # [(partition, offset, key, value)], reader.errors

    log_of(bootstrap, topic, p)     # Log: .batches (Batch: producer_id, producer_epoch,
                                    # base_sequence, count, transactional, control, marker),
                                    # .high_watermark, .last_stable_offset, .aborted
"""

import socket
import struct
import sys
import time
import traceback

from harness import Broker, log, rdkafka_logger, wait_until

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition


# ---- parts, each on its own broker -----------------------------------------------------------

class Parts:
    """Runs a script's parts one after the other. Each part starts the broker(s) it needs with
    broker(); they are SIGKILLed when the part ends and their data kept until checks.finish()
    (the temporary folders are removed only when every check passed). An exception ends its
    part as a failed check, with its traceback; the next part still runs. When a part failed,
    the log tails of its brokers are printed at its end (the harness prints only the first
    failure's)."""

    def __init__(self, args, checks):
        self.args = args
        self.checks = checks
        self.brokers = []  # this part's
        self.printed = set()
        self.timings = []
        checks.cleanup.insert(0, lambda failed: failed and self.print_tails())

    def broker(self, overrides=None):
        broker = Broker.from_args(self.args, overrides=overrides)
        self.checks.cleanup.append(lambda failed: broker.close(keep=failed))
        self.brokers.append(broker)
        broker.start()
        return broker

    def print_tails(self):
        for broker in self.brokers:
            if id(broker) not in self.printed:
                self.printed.add(id(broker))
                log(f"     last lines of {broker.log_path}:")
                broker.print_log_tail()

    def run(self, name, fn):
        log(f"-- {name}")
        failed_before = len(self.checks.failures)
        started = time.monotonic()
        try:
            fn(self)
        except Exception as e:
            traceback.print_exc(file=sys.stdout)
            self.checks.check(False, f"{name}: no unexpected exception",
                              f"{type(e).__name__}: {e}")
        took = time.monotonic() - started
        failed = len(self.checks.failures) > failed_before
        self.timings.append(f"{name} {'FAIL' if failed else 'ok'} {took:.1f}s")
        if failed:
            self.print_tails()
        for broker in self.brokers:
            broker.stop(kill=True)
        self.brokers = []

    def summary(self):
        return ", ".join(self.timings)


def create_topic(bootstrap, name, partitions):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap, "logger": rdkafka_logger("admin")})
    admin.create_topics([NewTopic(name, partitions, 1)], request_timeout=30)[name].result(30)


# ---- reading a topic back --------------------------------------------------------------------

class Reader:
    """A confluent-kafka consumer assigned every partition of a topic from offset 0 (its group
    id is only a formality: nothing is committed), with isolation.level read_committed or
    read_uncommitted. Collects records and errors other than partition EOF."""

    def __init__(self, bootstrap, topic, partitions, isolation, name=None):
        self.topic = topic
        self.partitions = partitions
        self.records = []  # (partition, offset, key, value)
        self.errors = []
        self.eof = {}  # partition -> offset of its last end-of-partition event
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": name or f"reader-{topic}-{isolation}",
            "enable.auto.commit": False,
            "isolation.level": isolation,
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 100,
            "reconnect.backoff.max.ms": 1000,
            "logger": rdkafka_logger(name or "reader"),
        })
        self.consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING)
                              for p in range(partitions)])

    def step(self):
        for m in self.consumer.consume(num_messages=1000, timeout=0.2):
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    self.eof[m.partition()] = m.offset()
                else:
                    self.errors.append(str(m.error()))
                continue
            key = m.key().decode(errors="replace") if m.key() is not None else None
            value = m.value().decode(errors="replace") if m.value() is not None else None
            self.records.append((m.partition(), m.offset(), key, value))

    def wait_for(self, predicate, timeout):
        """Consumes until predicate() or timeout seconds; returns predicate()'s last value."""
        return wait_until(predicate, timeout, step=self.step)

    def high_watermarks(self):
        return {p: self.consumer.get_watermark_offsets(TopicPartition(self.topic, p),
                                                       timeout=10, cached=False)[1]
                for p in range(self.partitions)}

    def read_to_end(self, timeout):
        """Reads until every partition reported its end at (or past) the high watermark asked
        for now: for read_committed that is reached only when no transaction is open on it
        (librdkafka reports the end at the last stable offset). Returns whether it got there."""
        marks = self.high_watermarks()
        return self.wait_for(lambda: all(self.eof.get(p, -1) >= marks[p] for p in marks),
                             timeout)

    def values(self):
        return [v for _, _, _, v in self.records]

    def close(self):
        self.consumer.close()


# ---- record batch headers through raw Fetch requests -----------------------------------------

class Batch:
    """A record batch's header (magic 2). count: its offsets (last offset delta + 1), which is
    also what its sequence numbers span; marker: for a control batch, "COMMIT" or "ABORT"."""

    def __init__(self, base_offset, count, attributes, producer_id, producer_epoch,
                 base_sequence, marker=None):
        self.base_offset = base_offset
        self.count = count
        self.attributes = attributes
        self.producer_id = producer_id
        self.producer_epoch = producer_epoch
        self.base_sequence = base_sequence
        self.marker = marker

    @property
    def transactional(self):
        return bool(self.attributes & 0x10)

    @property
    def control(self):
        return bool(self.attributes & 0x20)

    def __repr__(self):
        kind = f"control {self.marker}" if self.control else f"{self.count} records"
        return (f"<@{self.base_offset} {kind} pid {self.producer_id} epoch "
                f"{self.producer_epoch} seq {self.base_sequence}"
                f"{' txn' if self.transactional else ''}>")


class Log:
    """What raw Fetch requests (v4) saw of one partition."""

    def __init__(self):
        self.batches = []
        self.high_watermark = None
        self.last_stable_offset = None
        self.aborted = []  # (producer_id, first_offset), from read_committed fetches

    def data(self):
        return [b for b in self.batches if not b.control]

    def markers(self):
        return [b for b in self.batches if b.control]


def _varint(buf, pos):
    """A zigzag varint (record fields) at pos: (value, next pos)."""
    shift = result = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
    return (result >> 1) ^ -(result & 1), pos


def _parse_batches(records):
    """The complete magic-2 batches in a Fetch response's records (a partial last one is
    dropped, as clients do)."""
    batches = []
    pos = 0
    while pos + 61 <= len(records):
        base_offset, length = struct.unpack_from(">qi", records, pos)
        end = pos + 12 + length
        if end > len(records):
            break
        magic = records[pos + 16]
        if magic != 2:
            raise ValueError(f"batch at offset {base_offset} has magic {magic}")
        (attributes, last_delta, _, _, producer_id, producer_epoch, base_sequence,
         count) = struct.unpack_from(">hiqqqhii", records, pos + 21)
        marker = None
        if attributes & 0x20 and count > 0:
            # The control record: length, attributes, timestamp delta, offset delta, key
            # (version int16, type int16: 0 abort, 1 commit).
            rpos = pos + 61
            _, rpos = _varint(records, rpos)
            rpos += 1
            _, rpos = _varint(records, rpos)
            _, rpos = _varint(records, rpos)
            key_len, rpos = _varint(records, rpos)
            if key_len >= 4:
                _, kind = struct.unpack_from(">hh", records, rpos)
                marker = {0: "ABORT", 1: "COMMIT"}.get(kind, f"type {kind}")
        batches.append(Batch(base_offset, last_delta + 1, attributes, producer_id,
                             producer_epoch, base_sequence, marker))
        pos = end
    return batches


def _string(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def _fetch_v4(sock, correlation, topic, partition, offset, isolation, max_bytes=4 << 20):
    body = struct.pack(">hhi", 1, 4, correlation) + _string("shardlog-compat-rawfetch")
    body += struct.pack(">iiiib", -1, 0, 0, max_bytes, isolation)
    body += struct.pack(">i", 1) + _string(topic)
    body += struct.pack(">iiqi", 1, partition, offset, max_bytes)
    sock.sendall(struct.pack(">i", len(body)) + body)
    size = struct.unpack(">i", _read_exactly(sock, 4))[0]
    resp = _read_exactly(sock, size)
    got_correlation, _throttle, topics = struct.unpack_from(">iii", resp, 0)
    if got_correlation != correlation or topics != 1:
        raise ValueError(f"unexpected Fetch response (correlation {got_correlation}, "
                         f"{topics} topics)")
    pos = 12
    name_len = struct.unpack_from(">h", resp, pos)[0]
    pos += 2 + name_len
    pos += 4  # partitions count (1)
    _, error, high, lso, n_aborted = struct.unpack_from(">ihqqi", resp, pos)
    pos += 26
    aborted = []
    for _ in range(max(n_aborted, 0)):
        aborted.append(struct.unpack_from(">qq", resp, pos))
        pos += 16
    records_len = struct.unpack_from(">i", resp, pos)[0]
    pos += 4
    records = resp[pos:pos + max(records_len, 0)]
    return error, high, lso, aborted, records


def _read_exactly(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        buf += chunk
    return buf


def log_of(bootstrap, topic, partition, isolation=0, timeout=10.0):
    """Every batch header of a partition from offset 0 up to its high watermark
    (isolation 0, read_uncommitted) or last stable offset (1, read_committed; the aborted
    transactions the broker lists then are collected too), with raw Fetch v4 requests to the
    broker (a single broker leads every partition)."""
    host, port = bootstrap.rsplit(":", 1)
    result = Log()
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        offset, correlation = 0, 0
        while True:
            correlation += 1
            error, high, lso, aborted, records = _fetch_v4(sock, correlation, topic,
                                                           partition, offset, isolation)
            if error:
                raise ValueError(f"Fetch {topic}/{partition} at {offset}: error code {error}")
            result.high_watermark, result.last_stable_offset = high, lso
            result.aborted.extend(a for a in aborted if a not in result.aborted)
            batches = _parse_batches(records)
            if not batches:
                return result
            result.batches.extend(batches)
            last = batches[-1]
            offset = last.base_offset + last.count
            if offset >= (lso if isolation else high):
                return result
