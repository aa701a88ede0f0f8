#!/usr/bin/env bash
# The tail cache (shardlog.tail.cache.bytes) off and on, alternated, in one build: bench.sh's
# consume-tail (a producer at RATE records/s of 1 KiB to 8 partitions, acks=all, and a consumer
# from the log end for 10 s), broker pinned to CPU 0 and loadgen to CPU 1. Prints the consumed
# rate, the consumer's latency percentiles and the broker's CPU ticks while consuming.
#
#   RATE=100000 scripts/tail_cache_ab.sh
set -u
cd "$(dirname "$0")/.."
rate=${RATE:-100000}; port=19721
out=$(mktemp -d /tmp/tail-ab.XXXXXX)
one() { # label cache_bytes
  local D; D=$(mktemp -d /tmp/tail-data.XXXX)
  taskset -c 0 ${SHARDLOG_BIN:-target/release/shardlog} --data-dir $D --listen 127.0.0.1:$port --shards 1 --override shardlog.tail.cache.bytes=$2 2>/dev/null &
  local pid=$!
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  taskset -c 1 ${LOADGEN_BIN:-target/release/loadgen} produce --bootstrap 127.0.0.1:$port --topic tail --partitions 8 --record-bytes 1024 --duration-s 13 --rate $rate --acks all --quiet >/dev/null 2>&1 &
  local prod=$!
  sleep 1
  local t0; t0=$(awk '{print $14+$15}' /proc/$pid/stat)
  taskset -c 1 ${LOADGEN_BIN:-target/release/loadgen} consume --bootstrap 127.0.0.1:$port --topic tail --from latest --duration-s 10 --json $out/tail-$1.json --quiet >/dev/null 2>&1
  local t1; t1=$(awk '{print $14+$15}' /proc/$pid/stat)
  wait $prod
  kill $pid; wait $pid 2>/dev/null; rm -rf $D
  python3 -c "
import json; j=json.load(open('$out/tail-$1.json')); l=j.get('latency_us',{})
print('$1', f\"{j['records_per_s']:,.0f} rec/s consumed, {j['bytes_per_s']/2**20:.1f} MiB/s, broker cpu ticks during consume {$t1-$t0}\", {k:l.get(k) for k in ['p50','p99']})"
}
for i in 1 2; do one off$i 0; one on$i 67108864; done
rm -rf "$out"
