#!/usr/bin/env bash
# Two broker builds, alternated, on the fetch path: bench.sh's consume-catchup (8 partitions of
# 1 KiB records written for FILL_S seconds at acks=1, page cache dropped, one consumer reading
# them all from the earliest offset) and consume-tail (a producer at RATE records/s of 1 KiB
# to 8 partitions, acks=all, and a consumer from the log end for 10 s). The broker is pinned to
# CPU 0 with one shard and loadgen to CPU 1. Prints, per run, the consumed rate and the
# broker's CPU per GB consumed (utime + stime from /proc/<pid>/stat, its whole run).
#
#   A=/path/to/shardlog-a B=/path/to/shardlog-b [ROUNDS=2] [RATE=100000] [FILL_S=8] \
#       scripts/fetch_ab.sh
set -u
cd "$(dirname "$0")/.."
a=${A:?A=<broker binary>}; b=${B:?B=<broker binary>}
loadgen=${LOADGEN_BIN:-target/release/loadgen}
rate=${RATE:-100000}; fill_s=${FILL_S:-8}; rounds=${ROUNDS:-2}; port=19731
out=$(mktemp -d /tmp/fetch-ab.XXXXXX)
ticks() { sed 's/.*) //' /proc/$1/stat | awk '{print $12 + $13}'; }
start() { # binary data-dir
  taskset -c 0 "$1" --data-dir "$2" --listen 127.0.0.1:$port --shards 1 2>/dev/null &
  pid=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && return; sleep 0.1; done
  echo "broker did not start" >&2; exit 1
}
report() { # label json ticks
  python3 - "$1" "$2" "$3" "$(getconf CLK_TCK)" <<'PY'
import json, sys
label, path, ticks, hz = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
j = json.load(open(path)); l = j.get("latency_us", {})
gb = j["bytes"] / 1e9
print(f"{label:14} {j['bytes_per_s'] / 2**20:8.1f} MiB/s  {ticks / hz / gb if gb else float('nan'):6.3f} broker core-s/GB"
      f"  p50 {l.get('p50')} us  p99 {l.get('p99')} us")
PY
}
catchup() { # label binary
  local d; d=$(mktemp -d /tmp/fetch-ab-data.XXXX)
  start "$2" "$d"
  taskset -c 1 "$loadgen" produce --bootstrap 127.0.0.1:$port --topic catchup --partitions 8 \
    --record-bytes 1024 --duration-s "$fill_s" --acks 1 --quiet --json "$out/fill.json" >/dev/null 2>&1
  local n; n=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['records'])" "$out/fill.json")
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  local t0; t0=$(ticks $pid)
  taskset -c 1 "$loadgen" consume --bootstrap 127.0.0.1:$port --topic catchup --from earliest \
    --records "$n" --quiet --json "$out/c.json" >/dev/null 2>&1
  local t1; t1=$(ticks $pid)
  kill $pid; wait $pid 2>/dev/null; rm -rf "$d"
  report "catchup-$1" "$out/c.json" $((t1 - t0))
}
tail_() { # label binary
  local d; d=$(mktemp -d /tmp/fetch-ab-data.XXXX)
  start "$2" "$d"
  taskset -c 1 "$loadgen" produce --bootstrap 127.0.0.1:$port --topic tail --partitions 8 \
    --record-bytes 1024 --duration-s 13 --rate "$rate" --acks all --quiet >/dev/null 2>&1 &
  local prod=$!
  sleep 1
  local t0; t0=$(ticks $pid)
  taskset -c 1 "$loadgen" consume --bootstrap 127.0.0.1:$port --topic tail --from latest \
    --duration-s 10 --quiet --json "$out/t.json" >/dev/null 2>&1
  local t1; t1=$(ticks $pid)
  wait $prod
  kill $pid; wait $pid 2>/dev/null; rm -rf "$d"
  report "tail-$1" "$out/t.json" $((t1 - t0))
}
echo "A=$a"; echo "B=$b"; echo "rate=$rate fill_s=$fill_s rounds=$rounds $(date -u +%FT%TZ)"
for i in $(seq "$rounds"); do
  catchup A$i "$a"; catchup B$i "$b"; tail_ A$i "$a"; tail_ B$i "$b"
done
rm -rf "$out"
