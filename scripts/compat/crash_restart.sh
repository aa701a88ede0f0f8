#!/usr/bin/env bash
# Crash/restart compatibility check of a Shardlog broker with real clients (kcat, confluent-kafka).
#
#   scripts/compat/crash_restart.sh
#
# 1. starts the broker (--shards 2, a temporary data dir, a free loopback port);
# 2. kcat round trip: `kcat -L` lists the broker, `kcat -P` then `kcat -C -e` gives the same lines
#    back, and `kcat -L` then lists the topic;
# 3. confluent_roundtrip.py produce-and-verify (40,000 records, 8 partitions, 4 codecs);
# 4. kill -9 the broker, restart it on the same data dir and port;
# 5. confluent_roundtrip.py verify-only, and the kcat lines again;
# 6. acked_durability.py produces with acks=all while the broker is killed with SIGKILL in the
#    middle; after a restart every acknowledged record must be there (and the round trip's
#    records still verify);
# 7. SIGTERM: the broker must exit 0.
#
# Environment:
#   SHARDLOG_BIN   broker binary (default target/release/shardlog under the repo root)
#   PYTHON         python interpreter (default python3)
#   RECORDS        records for the round trip (default 40000)
#   KEEP_TMP=1     keep the temporary folder (data dir, logs) even when everything passed
#
# Prints one line per check and, last, "N passed, M failed". Exits 1 if any check failed.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin="${SHARDLOG_BIN:-target/release/shardlog}"
case "$bin" in /*) ;; *) bin="$repo/$bin" ;; esac
python="${PYTHON:-python3}"
records="${RECORDS:-40000}"

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
finish() {
    if [ -n "${tmp:-}" ] && { [ "$failed" -ne 0 ] || [ "${KEEP_TMP:-0}" = 1 ]; }; then
        echo "kept $tmp (data dir, broker logs, client outputs)" >&2
    fi
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

# ---- prerequisites --------------------------------------------------------------------------
if [ ! -x "$bin" ]; then
    fail "broker binary $bin is missing (build it with cargo build --release, or set SHARDLOG_BIN)"
    finish
fi
if ! command -v kcat >/dev/null 2>&1; then
    echo "installing kcat" >&2
    if [ "$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi
    $sudo apt-get install -y -qq kcat >/dev/null 2>&1 \
        || { $sudo apt-get update -qq >/dev/null 2>&1 && $sudo apt-get install -y -qq kcat >/dev/null 2>&1; }
fi
command -v kcat >/dev/null 2>&1 || { fail "kcat is not installed and could not be"; finish; }
if ! "$python" -c 'import confluent_kafka' >/dev/null 2>&1; then
    echo "installing confluent-kafka" >&2
    "$python" -m pip install -q confluent-kafka >&2
fi
"$python" -c 'import confluent_kafka' >/dev/null 2>&1 \
    || { fail "the confluent-kafka Python module is missing and could not be installed"; finish; }

# ---- broker control -------------------------------------------------------------------------
tmp="$(mktemp -d /tmp/shardlog-crash.XXXXXX)"
data="$tmp/data"
port="$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
bootstrap="127.0.0.1:$port"
pid=""
run=0

producer=""
cleanup() {
    if [ -n "$producer" ] && kill -0 "$producer" 2>/dev/null; then
        kill -9 "$producer" 2>/dev/null
    fi
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    if [ "$failed" -eq 0 ] && [ "${KEEP_TMP:-0}" != 1 ]; then
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts the broker and waits (30 s at most) until its port accepts connections.
start_broker() {
    run=$((run + 1))
    blog="$tmp/broker-$run.log"
    NO_COLOR=1 "$bin" --data-dir "$data" --listen "$bootstrap" --advertise "$bootstrap" --shards 2 \
        >"$blog" 2>&1 &
    pid=$!
    for _ in $(seq 1 300); do
        if ! kill -0 "$pid" 2>/dev/null; then
            fail "broker start #$run: it exited early; last log lines:"
            tail -n 20 "$blog" | sed 's/^/    /'
            pid=""
            return 1
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            pass "broker start #$run: listening on $bootstrap (pid $pid, log $blog)"
            return 0
        fi
        sleep 0.1
    done
    fail "broker start #$run: not listening on $bootstrap after 30s; last log lines:"
    tail -n 20 "$blog" | sed 's/^/    /'
    return 1
}

show_log_tail() {
    [ -n "${blog:-}" ] && [ -f "$blog" ] && tail -n 15 "$blog" | sed -e 's/\x1b\[[0-9;]*m//g' -e 's/^/    broker: /'
}

# ---- kcat -----------------------------------------------------------------------------------
kcat_topic="kcat-lines"
kcat_lines="$tmp/kcat-lines.txt"
for i in $(seq 1 200); do echo "kcat line $i $(printf '%0*d' $((i % 40)) 0)"; done >"$kcat_lines"

kcat_list_broker() {
    local out
    out="$(timeout 30 kcat -L -b "$bootstrap" -m 20 2>&1)"
    if grep -Eq "broker [0-9]+ at $bootstrap" <<<"$out"; then
        pass "kcat -L lists the broker at $bootstrap"
    else
        fail "kcat -L does not list the broker at $bootstrap:"; sed 's/^/    /' <<<"$out"
    fi
}

kcat_list_topic() {
    local out
    out="$(timeout 30 kcat -L -b "$bootstrap" -t "$kcat_topic" -m 20 2>&1)"
    if grep -Eq "topic \"$kcat_topic\" with [0-9]+ partitions" <<<"$out" \
        && ! grep -q "Broker: " <<<"$out"; then
        pass "kcat -L -t $kcat_topic lists the topic"
    else
        fail "kcat -L -t $kcat_topic does not list the topic:"; sed 's/^/    /' <<<"$out"
    fi
}

kcat_produce() {
    local err
    if err="$(timeout 60 kcat -P -b "$bootstrap" -t "$kcat_topic" -X acks=all \
            -X enable.idempotence=false -X topic.metadata.refresh.interval.ms=1000 \
            <"$kcat_lines" 2>&1)"; then
        pass "kcat -P wrote $(wc -l <"$kcat_lines") lines to $kcat_topic"
    else
        fail "kcat -P to $kcat_topic failed:"; sed 's/^/    /' <<<"$err"
    fi
}

kcat_consume() {
    local what="$1"
    local got="$tmp/kcat-got-$run.txt"
    timeout 60 kcat -C -b "$bootstrap" -t "$kcat_topic" -o beginning -e -q \
        >"$got" 2>"$got.err"
    local rc=$?
    if [ $rc -eq 0 ] && cmp -s "$kcat_lines" "$got"; then
        pass "kcat -C -e $what returns the same $(wc -l <"$got") lines"
    else
        fail "kcat -C -e $what (exit $rc): $(wc -l <"$got") lines, differs from what was produced:"
        diff "$kcat_lines" "$got" | head -n 10 | sed 's/^/    /'
        head -n 5 "$got.err" | sed 's/^/    /'
    fi
}

roundtrip() {
    local mode="$1"
    local out="$tmp/roundtrip-$mode.txt"
    "$python" "$here/confluent_roundtrip.py" --bootstrap "$bootstrap" --topic roundtrip \
        --records "$records" --partitions 8 --mode "$mode" --timeout 300 >"$out" 2>&1
    local rc=$?
    local summary
    summary="$(grep -E '^(PASS|FAIL):' "$out" | tail -n 1)"
    if [ $rc -eq 0 ] && [[ "$summary" == PASS:* ]]; then
        pass "confluent_roundtrip.py $mode: $summary"
    else
        fail "confluent_roundtrip.py $mode (exit $rc): ${summary:-no summary line}"
        grep -E '^FAIL ' "$out" | head -n 10 | sed 's/^/    /'
        [ -z "$summary" ] && tail -n 10 "$out" | sed 's/^/    /'
        show_log_tail
    fi
}

# ---- the run --------------------------------------------------------------------------------
echo "broker $bin, data $data, bootstrap $bootstrap" >&2
start_broker || finish

kcat_list_broker
kcat_produce
kcat_list_topic
kcat_consume "before the crash"

roundtrip produce-and-verify

if kill -0 "$pid" 2>/dev/null; then
    kill -9 "$pid"
    wait "$pid" 2>/dev/null
    pass "broker survived the round trip and was killed with SIGKILL"
else
    fail "broker had already died before the SIGKILL"; show_log_tail
fi
pid=""

start_broker || finish
roundtrip verify-only
kcat_consume "after the restart"

# A crash in the middle of producing: acknowledged records must survive it.
acked="$tmp/acked.txt"
"$python" "$here/acked_durability.py" --bootstrap "$bootstrap" --topic durability \
    --mode produce --acked-file "$acked" --seconds 30 >"$tmp/durability-produce.txt" 2>&1 &
producer=$!
# Kill once records are being acknowledged (at most 20 s of waiting).
for _ in $(seq 1 200); do
    [ -s "$acked" ] && [ "$(wc -l <"$acked")" -gt 2000 ] && break
    kill -0 "$producer" 2>/dev/null || break
    sleep 0.1
done
sleep 0.5
if kill -0 "$pid" 2>/dev/null; then
    kill -9 "$pid"
    wait "$pid" 2>/dev/null
    pass "broker killed with SIGKILL while a producer was writing ($(wc -l <"$acked" 2>/dev/null || echo 0) records acknowledged so far)"
else
    fail "broker had already died before the second SIGKILL"; show_log_tail
fi
pid=""
wait "$producer"
prc=$?
producer=""
if [ $prc -eq 0 ]; then
    pass "durability producer: $(grep -E '^produced' "$tmp/durability-produce.txt")"
else
    fail "durability producer (exit $prc): $(tail -n 3 "$tmp/durability-produce.txt" | tr '\n' ' ')"
fi

start_broker || finish
out="$tmp/durability-verify.txt"
"$python" "$here/acked_durability.py" --bootstrap "$bootstrap" --topic durability \
    --mode verify --acked-file "$acked" >"$out" 2>&1
rc=$?
summary="$(grep -E '^(PASS|FAIL):' "$out" | tail -n 1)"
if [ $rc -eq 0 ] && [[ "$summary" == PASS:* ]]; then
    pass "acked_durability.py verify after a crash mid-produce: $summary"
else
    fail "acked_durability.py verify (exit $rc): ${summary:-no summary line}"
    grep -E '^FAIL ' "$out" | head -n 10 | sed 's/^/    /'
    show_log_tail
fi
roundtrip verify-only

kill -TERM "$pid"
rc=""
for _ in $(seq 1 300); do
    if ! kill -0 "$pid" 2>/dev/null; then wait "$pid"; rc=$?; break; fi
    sleep 0.1
done
if [ -z "$rc" ]; then
    fail "broker did not stop within 30s of SIGTERM"; show_log_tail
elif [ "$rc" -eq 0 ]; then
    pass "broker stopped on SIGTERM with exit code 0"
else
    fail "broker stopped on SIGTERM with exit code $rc"; show_log_tail
fi
pid=""
finish
