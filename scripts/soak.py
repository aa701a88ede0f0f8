#!/usr/bin/env python3
"""Soak (issue 12): hostile and idle connections beside good clients.

  scripts/soak.py [--broker BIN] [--loadgen BIN] [--seconds S] [--connections N] [--rate R]
                  [--out DIR]

Starts a broker on a fresh data directory (one shard per CPU, defaults otherwise, plus short
connection deadlines so that they act during the run), then for S seconds (default 120):

- N connections (default 2,000) held by this script: half idle (an ApiVersions, then nothing),
  a quarter slowloris (a frame's size, then one byte every few seconds, reconnecting when
  closed), a quarter sending garbage (random size prefixes and bodies, reconnecting when
  closed);
- `loadgen e2e` producing R records/s (default 20,000) of 1 KiB with acks=all and consuming
  them, which counts errors and checks every record arrives;
- the broker's VmRSS sampled every second.

Writes DIR/soak.json (and prints it): loadgen's summary, the broker's peak and final RSS, how
many hostile connections were closed by the broker, and the broker's WARN/ERROR lines. Exits 1
if loadgen saw an error or the broker died. Nothing but the standard library."""
import argparse
import json
import os
import random
import resource
import selectors
import socket
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def api_versions_frame(correlation):
    client = b"soak"
    header = struct.pack(">hhih", 18, 0, correlation, len(client)) + client
    return struct.pack(">i", len(header)) + header


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class Hostiles:
    """The script's connections, driven by one selector."""

    def __init__(self, addr, n):
        self.addr = addr
        self.sel = selectors.DefaultSelector()
        self.closed_by_broker = {"idle": 0, "slowloris": 0, "garbage": 0}
        self.kinds = ["idle"] * (n // 2) + ["slowloris"] * (n // 4)
        self.kinds += ["garbage"] * (n - len(self.kinds))
        self.next_trickle = {}
        for i, kind in enumerate(self.kinds):
            self.open(i, kind)

    def open(self, i, kind):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(self.addr)
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            return
        self.sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, (i, kind, "new"))

    def step(self, now):
        for key, events in self.sel.select(timeout=0.05):
            s = key.fileobj
            i, kind, state = key.data
            if events & selectors.EVENT_READ:
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    self.sel.unregister(s)
                    s.close()
                    self.closed_by_broker[kind] += 1
                    self.open(i, kind)
                    continue
            if events & selectors.EVENT_WRITE and state == "new":
                try:
                    if kind == "idle":
                        s.send(api_versions_frame(i))
                    elif kind == "slowloris":
                        s.send(struct.pack(">i", 200) + b"\x00\x12")
                        self.next_trickle[i] = (s, now + random.uniform(1, 5))
                    else:
                        size = random.choice([-5, 0, 3, 50, 2**31 - 1, random.randrange(1 << 20)])
                        s.send(struct.pack(">i", size) + os.urandom(random.randrange(64, 4096)))
                except OSError:
                    pass
                self.sel.modify(s, selectors.EVENT_READ, (i, kind, "sent"))
        for i, (s, at) in list(self.next_trickle.items()):
            if at <= now and s.fileno() >= 0:
                try:
                    s.send(b"\x00")
                except OSError:
                    pass
                self.next_trickle[i] = (s, now + random.uniform(1, 5))
            elif s.fileno() < 0:
                del self.next_trickle[i]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--broker", default=os.path.join(ROOT, "target/release/shardlog"))
    p.add_argument("--loadgen", default=os.path.join(ROOT, "target/release/loadgen"))
    p.add_argument("--seconds", type=int, default=120)
    p.add_argument("--connections", type=int, default=2000)
    p.add_argument("--rate", type=int, default=20000)
    p.add_argument("--out", default=None)
    a = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    work = tempfile.mkdtemp(prefix="soak.")
    out = a.out or work
    os.makedirs(out, exist_ok=True)
    port = 19900 + random.randrange(90)
    log = open(os.path.join(work, "broker.log"), "w")
    broker = subprocess.Popen(
        [a.broker, "--data-dir", os.path.join(work, "data"), "--listen", f"127.0.0.1:{port}",
         "--override", "shardlog.request.read.timeout.ms=10000",
         "--override", "connections.max.idle.ms=60000"],
        stdout=log, stderr=subprocess.STDOUT)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    hostiles = Hostiles(("127.0.0.1", port), a.connections)
    e2e_json = os.path.join(out, "soak-e2e.json")
    good = subprocess.Popen(
        [a.loadgen, "e2e", "--bootstrap", f"127.0.0.1:{port}", "--topic", "soak",
         "--record-bytes", "1024", "--rate", str(a.rate), "--duration-s", str(a.seconds),
         "--json", e2e_json, "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0
    samples = []
    started = time.time()
    next_sample = started
    while good.poll() is None:
        now = time.time()
        hostiles.step(now)
        if now >= next_sample:
            r = rss_kib(broker.pid)
            if r is None:
                break
            peak = max(peak, r)
            samples.append(r)
            next_sample += 1
    good_err = good.stderr.read() if good.stderr else ""
    alive = broker.poll() is None
    final = rss_kib(broker.pid)
    broker.terminate()
    broker.wait(timeout=60)
    log.close()
    lines = open(os.path.join(work, "broker.log")).read().splitlines()
    warnings = [l for l in lines if " WARN " in l or " ERROR " in l]
    summary = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "command": " ".join(sys.argv),
        "seconds": a.seconds, "connections": a.connections, "rate": a.rate,
        "broker_alive_at_end": alive,
        "broker_rss_kib_peak": peak, "broker_rss_kib_final": final,
        "broker_rss_kib_median": sorted(samples)[len(samples) // 2] if samples else None,
        "hostile_closed_by_broker": hostiles.closed_by_broker,
        "loadgen_exit": good.returncode, "loadgen_stderr": good_err[-2000:],
        "e2e": json.load(open(e2e_json)) if os.path.exists(e2e_json) else None,
        "broker_warn_error_lines": len(warnings),
        "broker_warn_error_kinds": sorted({l.split(": ", 1)[-1][:120] for l in warnings})[:20],
    }
    with open(os.path.join(out, "soak.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps({k: v for k, v in summary.items() if k != "e2e"}, indent=1))
    e2e = summary["e2e"] or {}
    ok = alive and good.returncode == 0 and e2e.get("errors", 1) == 0 and e2e.get("ok") is True
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
