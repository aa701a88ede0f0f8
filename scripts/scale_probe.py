#!/usr/bin/env python3
"""Kafka-protocol probes for bench.sh's scale scenarios, with nothing but the standard library
(so that what is timed is the broker, not a client's bootstrap and backoff).

  scale_probe.py hold HOST:PORT N TOPIC
      Opens N connections, sends ApiVersions v0 then Metadata v1 (for TOPIC) on each and reads
      both answers, prints "held N" on stdout once all are open and answered, then holds them
      until stdin closes (bench.sh keeps a pipe open and closes it). Raises its own soft
      RLIMIT_NOFILE to the hard limit.

  scale_probe.py serving HOST:PORT TOPIC PARTITIONS SINCE TIMEOUT_S JSON
      Measures how long after SINCE (a wall-clock time, `date +%s.%N`, taken just before the
      broker was started) the broker serves: the first accepted connection, the first Metadata
      v1 answer naming all PARTITIONS of TOPIC with a leader and no error, and the first
      acks=all Produce v3 of one 1 KiB record to partition 0 answered without error. Polls every
      5 ms; writes the three times (seconds since SINCE) as JSON."""
import json
import os
import resource
import socket
import struct
import sys
import time

CLIENT_ID = b"scale-probe"


def request(api_key, version, correlation, body):
    """A request frame with header v1 (api key, version, correlation id, client id)."""
    header = struct.pack(">hhih", api_key, version, correlation, len(CLIENT_ID)) + CLIENT_ID
    return struct.pack(">i", len(header) + len(body)) + header + body


def read_frame(sock):
    size = struct.unpack(">i", read_exact(sock, 4))[0]
    return read_exact(sock, size)


def read_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by the broker")
        buf += chunk
    return bytes(buf)


def string(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def api_versions():
    return request(18, 0, 1, b"")


def metadata(topic):
    return request(3, 1, 2, struct.pack(">i", 1) + string(topic))


class Reader:
    def __init__(self, b):
        self.b, self.at = b, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.b, self.at)
        self.at += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def string(self):
        n = self.take(">h")
        if n < 0:
            return None
        s = self.b[self.at:self.at + n].decode()
        self.at += n
        return s


def served_partitions(frame, topic):
    """Partitions of `topic` with a leader and no error in a Metadata v1 response frame."""
    r = Reader(frame)
    r.take(">i")  # correlation id
    for _ in range(r.take(">i")):  # brokers: node id, host, port, rack
        r.take(">i"), r.string(), r.take(">i"), r.string()
    r.take(">i")  # controller id
    served = 0
    for _ in range(r.take(">i")):
        error, name, _internal = r.take(">h"), r.string(), r.take(">b")
        for _ in range(r.take(">i")):
            p_error, _p, leader = r.take(">hii")
            r.at += 4 * r.take(">i")  # replicas
            r.at += 4 * r.take(">i")  # isr
            if name == topic and error == 0 and p_error == 0 and leader >= 0:
                served += 1
    return served


# CRC-32C (Castagnoli), which RecordBatch v2 carries.
CRC32C_TABLE = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    CRC32C_TABLE.append(c)


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = CRC32C_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def varint(v):
    v = (v << 1) ^ (v >> 63)  # zigzag
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def record_batch(value):
    """One RecordBatch v2 holding one record without key or headers."""
    now = int(time.time() * 1000)
    record = b"\x00" + varint(0) + varint(0) + varint(-1) + varint(len(value)) + value + varint(0)
    record = varint(len(record)) + record
    after_crc = struct.pack(">hiqqqhii", 0, 0, now, now, -1, -1, -1, 1) + record
    after_length = struct.pack(">ibI", 0, 2, crc32c(after_crc)) + after_crc
    return struct.pack(">qi", 0, len(after_length)) + after_length


def produce(topic, partition, value):
    batch = record_batch(value)
    body = (struct.pack(">hhi", -1, -1, 30_000)  # no transactional id, acks=all, timeout
            + struct.pack(">i", 1) + string(topic)
            + struct.pack(">i", 1) + struct.pack(">i", partition) + struct.pack(">i", len(batch)) + batch)
    return request(0, 3, 3, body)


def produce_error(frame):
    r = Reader(frame)
    r.take(">i")  # correlation id
    r.take(">i")  # topics
    r.string()
    r.take(">i")  # partitions
    _p, error = r.take(">ih")
    return error


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def hold(addr, n, topic):
    raise_nofile()
    host, port = addr.rsplit(":", 1)
    socks = []
    for i in range(n):
        s = None
        for attempt in range(50):  # a full accept queue drops SYNs: try again
            try:
                s = socket.create_connection((host, int(port)), timeout=10)
                break
            except OSError:
                if attempt == 49:
                    raise
                time.sleep(0.1)
        s.sendall(api_versions())
        read_frame(s)
        s.sendall(metadata(topic))
        read_frame(s)
        socks.append(s)
    print(f"held {len(socks)}", flush=True)
    sys.stdin.read()  # until bench.sh closes the pipe
    for s in socks:
        s.close()


def serving(addr, topic, partitions, since, timeout_s, out):
    host, port = addr.rsplit(":", 1)
    deadline = since + timeout_s
    result = {"connect_s": None, "metadata_s": None, "produce_s": None, "timeout_s": timeout_s}
    value = os.urandom(1024)
    while time.time() < deadline:
        try:
            with socket.create_connection((host, int(port)), timeout=max(0.1, deadline - time.time())) as s:
                if result["connect_s"] is None:
                    result["connect_s"] = time.time() - since
                if result["metadata_s"] is None:
                    s.sendall(metadata(topic))
                    if served_partitions(read_frame(s), topic) < partitions:
                        time.sleep(0.005)
                        continue
                    result["metadata_s"] = time.time() - since
                s.sendall(produce(topic, 0, value))
                if produce_error(read_frame(s)) == 0:
                    result["produce_s"] = time.time() - since
                    break
        except OSError:
            pass
        time.sleep(0.005)
    json.dump(result, open(out, "w"), indent=1)
    return result["produce_s"] is not None


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "hold":
        hold(args[0], int(args[1]), args[2])
    elif cmd == "serving":
        ok = serving(args[0], args[1], int(args[2]), float(args[3]), float(args[4]), args[5])
        sys.exit(0 if ok else 1)
    else:
        sys.exit(__doc__)
