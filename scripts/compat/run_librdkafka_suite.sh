#!/usr/bin/env bash
# Runs librdkafka's integration test suite (shared/compat/librdkafka-suite.sh) against a Shardlog
# broker that this script starts and supervises.
#
#   scripts/compat/run_librdkafka_suite.sh [TEST_NUMBER ...]     (default: every test)
#
# The broker runs with --shards 2 on $BOOTSTRAP (default 127.0.0.1:9092) with a fresh data dir
# under $WORK. If it dies during the run, the death (with the tests running at the time and the
# log's last lines) is recorded in $WORK/broker-deaths.txt and a new broker is started on a new,
# fresh data dir, so one crash does not fail every later test.
#
# Environment:
#   SHARDLOG_BIN     broker binary (default target/release/shardlog under the repo root)
#   SUITE            the suite script (default ../shared/compat/librdkafka-suite.sh beside the repo)
#   BOOTSTRAP        default 127.0.0.1:9092
#   WORK             where broker data and logs go (default /tmp/shardlog-librdkafka)
#   TEST_TIMEOUT_S   per-test limit, passed on (default 120: 0091 takes 64 s of built-in waits,
#                    0033 58 s of initial rebalance delays, as against Kafka)
#   RESULTS_FILE     per-test results, passed on (default $WORK/results.csv)
#   KAFKA_PATH       where tests find bin/kafka-*.sh (default: this repository's bin/ wrappers);
#                    BROKERS is set to the bootstrap address for them
#   BROKER_ARGS      extra broker arguments (default: what librdkafka's trivup harness gives
#                    Kafka: num.partitions=4, since e.g. 0012 and 0015 produce to partitions 1-3
#                    of auto-created topics; the group settings are Kafka's defaults, spelled
#                    out so the scenario is written down; and replication factors clamped to 1,
#                    since the transaction tests (0103) create topics with 3 replicas, as trivup
#                    starts 3 brokers for them)
#
# The suite's own last line "N passed, M failed, K skipped" is this script's last line too.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin="${SHARDLOG_BIN:-target/release/shardlog}"
case "$bin" in /*) ;; *) bin="$repo/$bin" ;; esac
suite="${SUITE:-$repo/../shared/compat/librdkafka-suite.sh}"
bootstrap="${BOOTSTRAP:-127.0.0.1:9092}"
work="${WORK:-/tmp/shardlog-librdkafka}"
export TEST_TIMEOUT_S="${TEST_TIMEOUT_S:-120}"
# The tests that call Kafka's tools (0052, 0077: $KAFKA_PATH/bin/kafka-topics.sh --bootstrap-server
# $BROKERS) find our wrappers in bin/ (README "Admin tools"), which run this broker binary.
export KAFKA_PATH="${KAFKA_PATH:-$repo}"
export BROKERS="${BROKERS:-${BOOTSTRAP:-127.0.0.1:9092}}"
export SHARDLOG_BIN="$bin"
export RESULTS_FILE="${RESULTS_FILE:-$work/results.csv}"
compat_dir="${COMPAT_DIR:-$HOME/.cache/shardlog-compat}"
broker_args="${BROKER_ARGS---override num.partitions=4 --override auto.create.topics.enable=true --override group.initial.rebalance.delay.ms=3000 --override group.min.session.timeout.ms=6000 --override group.max.session.timeout.ms=1800000 --override offsets.topic.num.partitions=50 --override shardlog.replication.factor.clamp=true}"

[ -x "$bin" ] || { echo "broker binary $bin is missing" >&2; exit 2; }
[ -f "$suite" ] || { echo "suite script $suite is missing" >&2; exit 2; }
mkdir -p "$work"
deaths="$work/broker-deaths.txt"
: >"$deaths"

broker_pid=""
suite_pid=""
run=0
cleanup() {
    [ -n "$suite_pid" ] && kill -0 "$suite_pid" 2>/dev/null && kill -- "-$suite_pid" 2>/dev/null
    if [ -n "$broker_pid" ] && kill -0 "$broker_pid" 2>/dev/null; then
        kill -TERM "$broker_pid"
        for _ in $(seq 1 100); do kill -0 "$broker_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$broker_pid" 2>/dev/null
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_broker() {
    run=$((run + 1))
    local data="$work/data-$run"
    rm -rf "$data"
    blog="$work/broker-$run.log"
    NO_COLOR=1 "$bin" --data-dir "$data" --listen "$bootstrap" --advertise "$bootstrap" \
        --shards 2 $broker_args >"$blog" 2>&1 &
    broker_pid=$!
    local port="${bootstrap##*:}" host="${bootstrap%:*}"
    for _ in $(seq 1 300); do
        kill -0 "$broker_pid" 2>/dev/null || break
        if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
            echo "broker #$run started (pid $broker_pid, data $data, log $blog)" >&2
            return 0
        fi
        sleep 0.1
    done
    echo "broker #$run did not start; log $blog:" >&2
    tail -n 20 "$blog" >&2
    return 1
}

start_broker || exit 2
suite_out="$work/suite-output.txt"
# setsid: the suite and its test-runner get their own process group, ended as one on exit.
setsid bash "$suite" "$bootstrap" "$@" >"$suite_out" 2>&1 &
suite_pid=$!
shown=0
while kill -0 "$suite_pid" 2>/dev/null; do
    sleep 2
    lines=$(wc -l <"$suite_out")
    if [ "$lines" -gt "$shown" ]; then
        sed -n "$((shown + 1)),${lines}p" "$suite_out"
        shown=$lines
    fi
    if ! kill -0 "$broker_pid" 2>/dev/null; then
        wait "$broker_pid"
        rc=$?
        # The test running now is the one whose log was written last.
        current=$(ls -t "$compat_dir/logs/" 2>/dev/null | head -n 1)
        {
            echo "== broker #$run (log $blog) died with exit status $rc during ${current%.log}" \
                "(after: $(tail -n 1 "$suite_out"))"
            tail -n 40 "$blog"
            echo
        } >>"$deaths"
        echo "broker #$run died (exit $rc) during ${current%.log}: restarting on a fresh data dir" >&2
        start_broker || { echo "cannot restart the broker" >&2; break; }
    fi
done
wait "$suite_pid"
suite_rc=$?
suite_pid=""
lines=$(wc -l <"$suite_out")
[ "$lines" -gt "$shown" ] && sed -n "$((shown + 1)),${lines}p" "$suite_out"
if [ -s "$deaths" ]; then
    echo "the broker died $(grep -c '^== broker' "$deaths") time(s): see $deaths" >&2
fi
tail -n 1 "$suite_out" | grep -q 'passed,' || echo "0 passed, 1 failed (the suite did not finish)"
exit "$suite_rc"
