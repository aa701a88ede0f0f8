#!/usr/bin/env python3
"""The console page in a real browser: headless Chromium (Debian's `chromium`) driven over the
DevTools protocol (python websocket-client):

1. starts a broker with --http-listen, creates a topic, produces 30 records and commits offset
   10 for group "console-group" (lag 20);
2. loads http://<admin>/ in Chromium, waits for the page's script to fill its tables;
3. checks the page shows the group with lag 20 and its partition row, the topic with log end
   offset 30, and that the browser reported no console error, no uncaught exception and no
   failed load.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Broker, add_broker_args, free_port, log, run_checked, wait_until  # noqa: E402

TOPIC = "console-topic"
GROUP = "console-group"


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError("no Chromium: apt-get install chromium (scripts/test.sh does)")


class Browser:
    """A headless Chromium and one page, over the DevTools protocol."""

    def __init__(self):
        import websocket
        self.profile = tempfile.mkdtemp(prefix="shardlog-chromium.")
        self.proc = subprocess.Popen(
            [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run", "--remote-debugging-port=0",
             f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        wait_until(lambda: os.path.exists(port_file) and open(port_file).read().strip(), 60)
        port = open(port_file).read().split()[0]
        targets = wait_until(lambda: [t for t in json.load(urllib.request.urlopen(
            f"http://127.0.0.1:{port}/json/list", timeout=5)) if t["type"] == "page"], 30)
        self.ws = websocket.create_connection(targets[0]["webSocketDebuggerUrl"],
                                              suppress_origin=True, timeout=30)
        self.next_id = 0
        self.events = []
        for method in ("Runtime.enable", "Log.enable", "Page.enable"):
            self.call(method)

    def call(self, method, **params):
        self.next_id += 1
        want = self.next_id
        self.ws.send(json.dumps({"id": want, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == want:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def evaluate(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return r.get("result", {}).get("value")

    def problems(self):
        """Console errors, uncaught exceptions and error log entries (failed loads) so far."""
        out = []
        for e in self.events:
            m, p = e["method"], e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console." + p["type"] + ": " + " ".join(
                    str(a.get("value", a.get("description"))) for a in p.get("args", [])))
            elif m == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                out.append("exception: " + d.get("exception", {}).get("description", d.get("text", "")))
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append("log: " + p["entry"].get("text", ""))
        return out

    def close(self):
        try:
            self.call("Browser.close")
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


def main_test(args, checks):
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    http = free_port()
    broker = Broker.from_args(args, checks=checks,
                              overrides={"shardlog.lag.sample.interval.ms": 200},
                              extra_args=["--http-listen", f"127.0.0.1:{http}"])
    broker.start()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=1)])[TOPIC].result(30)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(30):
        producer.produce(TOPIC, value=b"v%d" % i)
    producer.flush(30)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": GROUP,
                         "enable.auto.commit": False})
    consumer.commit(offsets=[TopicPartition(TOPIC, 0, 10)], asynchronous=False)
    consumer.close()

    browser = Browser()
    checks.cleanup.append(lambda failed: browser.close())
    browser.call("Page.navigate", url=f"http://127.0.0.1:{http}/")
    lag_cell = f'document.querySelector(\'tr[data-group="{GROUP}"] td.lag\')?.textContent'
    lag = wait_until(lambda: browser.evaluate(lag_cell) == "20" and "20", 30)
    checks.check(lag == "20", "the console shows the group with lag 20", str(browser.evaluate(lag_cell)))
    rows = browser.evaluate("[...document.querySelectorAll('#group-partitions tbody tr')]"
                            ".map(r => [...r.cells].map(c => c.textContent).join('|'))")
    checks.check(rows == [f"{GROUP}|{TOPIC}|0|10|30|20|OK"] or
                 (len(rows or []) == 1 and rows[0].startswith(f"{GROUP}|{TOPIC}|0|10|30|20|")),
                 "its partition row: committed 10, log end 30, lag 20", str(rows))
    topics = browser.evaluate("[...document.querySelectorAll('#topics tbody tr')]"
                              ".map(r => r.cells[0].textContent + '|' + r.cells[4].textContent)")
    checks.check(f"{TOPIC}|30" in (topics or []), "the topics table has the topic at offset 30", str(topics))
    shards = browser.evaluate("document.querySelectorAll('#shards tbody tr').length")
    checks.check(shards == 2, "the shards table has both shards", str(shards))
    checks.check(browser.evaluate("document.querySelector('svg.lag-plot') !== null"),
                 "the group has a lag plot")
    problems = browser.problems()
    checks.check(not problems, "no console error, exception or failed load", "; ".join(problems))
    checks.finish()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    add_broker_args(ap)
    run_checked("console_browser", ap.parse_args(), main_test)
