#!/usr/bin/env bash
# A perf profile of the broker under bench.sh's produce-1k (durable 1 KiB records to 8
# partitions, 4 producer connections, the Java default 16 KiB batches), pinned layout: the
# broker with one shard on CPU 0, loadgen on CPU 1. perf samples the broker's threads (io-wq
# workers included) for 10 s from the 3rd second of a 15 s run. Writes OUT (default
# results/<date>-profile-produce.txt): the command, loadgen's summary, the flat profile by
# symbol and the callers of the top entries.
#
#   scripts/profile_produce.sh [OUT] [extra loadgen produce args, e.g. --batch-bytes 1048576]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results/$(date -u +%F)-profile-produce.txt}; shift || true
broker=${SHARDLOG_BIN:-target/release/shardlog}; loadgen=${LOADGEN_BIN:-target/release/loadgen}
command -v perf >/dev/null || { echo "perf is missing: apt-get install linux-perf" >&2; exit 1; }
work=$(mktemp -d /tmp/profile-produce.XXXXXX); port=19761
trap 'kill $bp 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
taskset -c 0 "$broker" --data-dir "$work/data" --listen 127.0.0.1:$port --shards 1 2>"$work/broker.log" &
bp=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
taskset -c 1 "$loadgen" produce --bootstrap 127.0.0.1:$port --topic p1k --partitions 8 \
    --record-bytes 1024 --duration-s 15 --acks all --producers 4 "$@" > "$work/loadgen.txt" 2>&1 &
lp=$!
sleep 3
perf record -F 999 -g -p "$bp" -o "$work/perf.data" -- sleep 10 2>/dev/null >/dev/null
wait $lp
{
    echo "# perf profile of the broker under durable produce (pinned: 1 shard on CPU 0, loadgen on CPU 1)"
    echo "# command: scripts/profile_produce.sh $out $*"
    echo "#   loadgen produce --partitions 8 --record-bytes 1024 --duration-s 15 --acks all --producers 4 $*"
    echo "#   perf record -F 999 -g -p <broker> -- sleep 10 (seconds 3-13 of the run)"
    echo "# $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (dirty)'), $(nproc) CPUs, kernel $(uname -r)"
    echo "# loadgen result:"
    grep -E "records|p50" "$work/loadgen.txt" | sed 's/^/#     /'
    echo
    echo "## flat, by symbol (>= 1%)"
    perf report -i "$work/perf.data" --no-children --sort dso,sym --stdio --percent-limit 1 -g none 2>/dev/null \
        | grep -v '^#' | grep -v '^$'
    echo
    echo "## by thread"
    perf report -i "$work/perf.data" --no-children --sort comm --stdio -g none 2>/dev/null \
        | grep -v '^#' | grep -v '^$'
    echo
    echo "## callers of the top entries (>= 3%)"
    perf report -i "$work/perf.data" --no-children --sort sym --stdio --percent-limit 3 \
        -g caller,0.5,callee,function,percent 2>/dev/null | grep -v '^#' | grep -v '^$' | head -300
} > "$out"
echo "$out"
