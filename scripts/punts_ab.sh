#!/usr/bin/env bash
# A/B of two broker builds on the produce path: alternates runs of each, and prints per run the
# records/s, produce requests, io-wq punts (the io_uring:io_uring_queue_async_work tracepoint,
# counted for the broker's pid with perf) and latency percentiles.
#
#   scripts/punts_ab.sh A_BIN B_BIN [RUNS] [RATE]
#
# The broker runs with one shard pinned to CPU 0, loadgen on CPU 1: 8 partitions, 4 producers,
# acks=all, 1 KiB records, 8 s per run; RATE (records/s) fixes the offered load (default: as
# fast as possible). Needs perf (Debian: linux-perf) and tracefs (mounted here if missing).
# Also prints, for the last run of each, which io_uring opcodes were punted.
set -euo pipefail
cd "$(dirname "$0")/.."
a=$1; b=$2; runs=${3:-3}; rate=${4:-}
loadgen=${LOADGEN_BIN:-target/release/loadgen}
[ -x "$loadgen" ] || cargo build --release -p loadgen >/dev/null
[ -d /sys/kernel/tracing/events/io_uring ] || mount -t tracefs nodev /sys/kernel/tracing
out=$(mktemp -d /tmp/punts-ab.XXXXXX)
port=19711
one() { # bin label record?
    local bin=$1 label=$2 record=${3:-}
    local data; data=$(mktemp -d /tmp/punts-data.XXXXXX)
    taskset -c 0 "$bin" --data-dir "$data" --listen 127.0.0.1:$port --shards 1 2>"$out/$label.log" &
    local pid=$!
    for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
    if [ -n "$record" ]; then
        perf record -q -e io_uring:io_uring_queue_async_work -p $pid -o "$out/$label.data" >/dev/null 2>&1 &
    else
        perf stat -x, -e io_uring:io_uring_queue_async_work -p $pid -o "$out/$label.punts" &
    fi
    local perfpid=$!
    sleep 0.5
    taskset -c 1 "$loadgen" produce --bootstrap 127.0.0.1:$port --topic p --partitions 8 \
        --record-bytes 1024 --duration-s 8 --acks all --producers 4 ${rate:+--rate $rate} \
        --json "$out/$label.json" --quiet >/dev/null 2>&1 || true
    kill -INT $perfpid; wait $perfpid 2>/dev/null || true
    kill $pid; wait $pid 2>/dev/null || true
    rm -rf "$data"
}
for i in $(seq "$runs"); do one "$a" "a$i"; one "$b" "b$i"; done
one "$a" a-opcodes record; one "$b" b-opcodes record
python3 - "$out" "$runs" <<'PY'
import json, sys
out, runs = sys.argv[1], int(sys.argv[2])
for i in range(1, runs + 1):
    for side in "ab":
        j = json.load(open(f"{out}/{side}{i}.json"))
        punts = int(next(l for l in open(f"{out}/{side}{i}.punts") if "io_uring" in l).split(",")[0])
        req = j["request_latency_us"]["count"]
        lat = j["latency_us"]
        print(f"{side}{i}: {j['records_per_s']:,.0f} rec/s, {req} requests, {punts} punts "
              f"({punts / max(req, 1):.2f}/request), record latency p50 {lat['p50']/1000:.1f} ms "
              f"p99 {lat['p99']/1000:.1f} ms p99.9 {lat['p999']/1000:.1f} ms")
PY
for side in a b; do
    echo "$side: punted opcodes"
    perf script -i "$out/$side-opcodes.data" 2>/dev/null | grep -o "opcode [A-Z_]*" | sort | uniq -c | sort -rn
done
rm -rf "$out"
