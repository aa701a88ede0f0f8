"""Shared pieces of the Python compatibility scripts: start, stop and restart a Shardlog broker,
checks with a PASS/FAIL summary, a watchdog, and polling with a deadline.

    from harness import Broker, Checks, add_broker_args, start_watchdog, wait_until

    ap = argparse.ArgumentParser()
    add_broker_args(ap)             # --broker (default $SHARDLOG_BIN, else target/release/shardlog
    args = ap.parse_args()          # under the repo root) and --timeout (default 170 s)
    run_checked("group_x", args, main_test)   # main_test(args, checks), under the watchdog;
                                              # an exception is a failure with its traceback
    # in main_test:
    broker = Broker.from_args(args, checks=checks,
                              overrides={"group.initial.rebalance.delay.ms": 0})
    broker.start()                  # waits until the port accepts connections
    checks.check(cond, "what", "detail when it fails")
    wait_until(lambda: cond(), 30)  # polls; never a fixed sleep before an assertion
    broker.restart(kill=True)       # SIGKILL (default SIGTERM) and start on the same data dir
    checks.finish()                 # prints "PASS: ..." or "FAIL: ..." and, last,
                                    # "N passed, M failed"; stops the broker; exits 0 or 1

The broker runs like in crash_restart.sh: a temporary data dir, a free loopback port kept
across restarts, --shards 2 and --override shardlog.io.memory.bytes=65536 (so it starts without
a large memlock limit), its output in broker-<n>.log in the temporary folder. The folder is
removed when every check passed, and kept (its path printed) on a failure or with KEEP_TMP=1.
At the first failed check the broker log's last lines are printed.
"""

import atexit
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# The overrides every script's broker gets: a small glommio io_memory per shard, so the broker
# starts on machines with the default memlock limit.
BASE_OVERRIDES = {"shardlog.io.memory.bytes": 65536}


def log(msg):
    print(msg, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def broker_binary(path=None):
    """The broker binary: the argument, else $SHARDLOG_BIN, else target/release/shardlog; a
    relative path is taken from the repository root."""
    path = path or os.environ.get("SHARDLOG_BIN") or "target/release/shardlog"
    return path if os.path.isabs(path) else os.path.join(REPO, path)


def add_broker_args(ap):
    ap.add_argument("--broker", default=None,
                    help="broker binary (default $SHARDLOG_BIN, else target/release/shardlog "
                         "under the repository root)")
    ap.add_argument("--timeout", type=float, default=170.0,
                    help="overall limit in seconds (a watchdog fails the run past it)")


def wait_until(predicate, timeout, interval=0.05, step=None):
    """Polls predicate() until it is true or timeout seconds passed; returns its last value.
    step(), when given, runs between polls instead of sleeping (e.g. a consumer's poll). An
    exception from predicate() counts as not yet (a broker restarting, a coordinator loading);
    if the last call at the deadline still raises, that exception is raised."""
    end = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
            error = None
        except Exception as e:  # retried until the deadline
            value, error = None, e
        if value or time.monotonic() >= end:
            if error is not None:
                raise error
            return value
        if step is not None:
            step()
        else:
            time.sleep(interval)


class Checks:
    """Counts checks; finish() prints the summary line and exits 0 only when all passed."""

    def __init__(self, name):
        self.name = name
        self.failures = []
        self.count = 0
        self.started = time.monotonic()
        self.on_failure = []  # callables run once, at the first failure (e.g. broker log tail)
        self.cleanup = []  # callables run by finish()

    def check(self, ok, what, detail=""):
        self.count += 1
        if ok:
            log(f"ok   {what}")
        else:
            first = not self.failures
            self.failures.append(what)
            log(f"FAIL {what}" + (f": {detail}" if detail else ""))
            if first:
                for fn in self.on_failure:
                    try:
                        fn()
                    except Exception as e:  # pragma: no cover - diagnostics only
                        log(f"     (diagnostics failed: {e})")
        return bool(ok)

    def require(self, ok, what, detail=""):
        """A check the rest of the run depends on: a failure ends the run."""
        if not self.check(ok, what, detail):
            self.finish()
        return True

    def finish(self, summary=""):
        for fn in self.cleanup:
            try:
                fn(bool(self.failures))
            except Exception as e:  # pragma: no cover - cleanup only
                log(f"     (cleanup failed: {e})")
        elapsed = time.monotonic() - self.started
        summary = f"{self.name}" + (f" {summary}" if summary else "")
        failed = len(self.failures)
        if failed:
            log(f"FAIL: {summary}: {failed} of {self.count} checks failed "
                f"({'; '.join(self.failures)}) in {elapsed:.1f}s")
        else:
            log(f"PASS: {summary}: {self.count} checks passed in {elapsed:.1f}s")
        # The closing line the other compat scripts print too (and test runners read).
        log(f"{self.count - failed} passed, {failed} failed")
        sys.stdout.flush()
        os._exit(1 if failed else 0)


def start_watchdog(checks, seconds):
    """Fails the run if it overshoots its limit (a hung client call)."""

    def watch():
        time.sleep(seconds)
        log(f"FAIL watchdog: the run did not finish within {seconds:.0f}s")
        checks.failures.append(f"finished within {seconds:.0f}s")
        checks.finish()

    threading.Thread(target=watch, daemon=True).start()


def run_checked(name, args, main_test):
    """Runs `main_test(args, checks)` under the watchdog; an exception (a client error or a
    broken expectation) is a failure with its traceback, not a crash."""
    checks = Checks(name)
    start_watchdog(checks, args.timeout)
    try:
        main_test(args, checks)
    except Exception as e:
        import traceback
        traceback.print_exc(file=sys.stdout)
        checks.check(False, "no unexpected exception", f"{type(e).__name__}: {e}")
        checks.finish()


class Broker:
    """A Shardlog broker process on a temporary data dir and a fixed free loopback port."""

    def __init__(self, binary, overrides=None, shards=2, tmp=None, extra_args=()):
        self.binary = binary
        self.overrides = dict(BASE_OVERRIDES)
        self.overrides.update(overrides or {})
        self.shards = shards
        self.extra_args = list(extra_args)
        self.tmp = tmp or tempfile.mkdtemp(prefix="shardlog-compat.")
        self.data_dir = os.path.join(self.tmp, "data")
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.proc = None
        self.runs = 0
        self.log_path = None
        atexit.register(self._kill_quietly)

    @classmethod
    def from_args(cls, args, overrides=None, checks=None, **kw):
        """A broker from add_broker_args' --broker; with checks, the broker's log tail is printed
        at the first failure and the temporary folder is removed only when everything passed."""
        binary = broker_binary(args.broker)
        if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
            log(f"FAIL: broker binary {binary} is missing (cargo build --release -p shardlog, "
                f"or set SHARDLOG_BIN / --broker)")
            sys.exit(2)
        broker = cls(binary, overrides=overrides, **kw)
        if checks is not None:
            checks.on_failure.append(lambda: broker.print_log_tail())
            checks.cleanup.append(lambda failed: broker.close(keep=failed))
        return broker

    def command(self):
        cmd = [self.binary, "--data-dir", self.data_dir, "--listen", self.bootstrap,
               "--advertise", self.bootstrap, "--shards", str(self.shards)]
        for key, value in self.overrides.items():
            cmd += ["--override", f"{key}={value}"]
        return cmd + self.extra_args

    def start(self, timeout=30.0):
        """Starts the broker and waits until its port accepts connections."""
        self.runs += 1
        self.log_path = os.path.join(self.tmp, f"broker-{self.runs}.log")
        env = dict(os.environ, NO_COLOR="1")
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                self.print_log_tail()
                raise RuntimeError(f"broker start #{self.runs} exited early with "
                                   f"{self.proc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                log(f"     broker start #{self.runs}: pid {self.proc.pid} on {self.bootstrap}, "
                    f"log {self.log_path}")
                return self
            except OSError:
                time.sleep(0.05)
        self.print_log_tail()
        raise RuntimeError(f"broker start #{self.runs}: not listening on {self.bootstrap} "
                           f"after {timeout:.0f}s")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, kill=False, timeout=30.0):
        """SIGKILL (kill=True) or SIGTERM, and waits; returns the exit status (None if it did not
        stop in time, then it is killed)."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is not None:
            return proc.returncode
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return None

    def restart(self, kill=False):
        """Stops (SIGKILL or SIGTERM) and starts again on the same data dir and port. Returns
        the exit status of the stop."""
        status = self.stop(kill=kill)
        self.start()
        return status

    def log_tail(self, lines=20):
        if not self.log_path or not os.path.exists(self.log_path):
            return []
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace").splitlines()[-lines:]

    def print_log_tail(self, lines=20):
        for line in self.log_tail(lines):
            log(f"     broker: {line}")

    def close(self, keep=False):
        self.stop(kill=True)
        if keep or os.environ.get("KEEP_TMP") == "1":
            log(f"     kept {self.tmp} (data dir, broker logs)")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _kill_quietly(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()


class CappedHandler(logging.Handler):
    """librdkafka's log lines: the first few of each kind are printed to stderr with a prefix,
    the rest only counted (a broker that is down floods the output with reconnects)."""

    def __init__(self, prefix, cap=5):
        super().__init__()
        self.prefix = prefix
        self.cap = cap
        self.seen = {}

    def emit(self, record):
        text = record.getMessage()
        kind = text.split("]: ", 1)[-1][:60]
        self.seen[kind] = self.seen.get(kind, 0) + 1
        if self.seen[kind] <= self.cap:
            print(f"{self.prefix}: {text}", file=sys.stderr, flush=True)


def with_debug(conf):
    """conf with librdkafka's "debug" set from $GROUP_DEBUG (e.g. cgrp,protocol), if any."""
    if os.environ.get("GROUP_DEBUG"):
        conf = dict(conf, debug=os.environ["GROUP_DEBUG"])
    return conf


def rdkafka_logger(name="librdkafka", cap=5):
    """A logger for a librdkafka client's "logger" setting (see CappedHandler)."""
    logger = logging.getLogger(name)
    if not logger.handlers:
        # Debug logs are asked for to be read whole.
        logger.addHandler(CappedHandler(name, 10**9 if os.environ.get("GROUP_DEBUG") else cap))
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
    return logger
