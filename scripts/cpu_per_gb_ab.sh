#!/usr/bin/env bash
# Broker CPU seconds per GB of durable produce, for an A/B of two builds: one shard pinned to
# CPU 0, loadgen on CPU 1 (15 s, 8 partitions, 4 producers, 1 KiB records, acks=all); the
# broker's utime+stime from /proc/<pid>/stat over the run, divided by loadgen's payload GB.
# Run it alternately for the builds and several times: this machine is noisy.
#
#   scripts/cpu_per_gb_ab.sh BROKER_BIN BATCH_BYTES
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$1; batch=$2; port=19770
loadgen=${LOADGEN_BIN:-target/release/loadgen}
work=$(mktemp -d /tmp/cpuab.XXXXXX)
taskset -c 0 "$bin" --data-dir "$work/data" --listen 127.0.0.1:$port --shards 1 2>"$work/b.log" &
bp=$!
trap 'kill $bp 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
t0=$(awk '{print $14+$15}' /proc/$bp/stat)
taskset -c 1 "$loadgen" produce --bootstrap 127.0.0.1:$port --topic p1k --partitions 8 \
    --record-bytes 1024 --duration-s 15 --acks all --producers 4 --batch-bytes "$batch" > "$work/lg.txt" 2>&1
t1=$(awk '{print $14+$15}' /proc/$bp/stat)
mb=$(grep -oP '[\d.]+(?= MB/s \()' "$work/lg.txt" | head -1)
hz=$(getconf CLK_TCK)
python3 -c "t=($t1-$t0)/$hz; gb=$mb*15.0/1000; print(f'$(basename "$bin") batch=$batch cpu_s={t:.2f} MB/s={$mb} core_s_per_GB={t/gb:.3f}')"
