#!/usr/bin/env bash
# Benchmarks Shardlog with loadgen and records everything in results/<date>-<set>/.
#
#   scripts/bench.sh [--quick] [--set NAME] [--layouts "pinned all-cores"] [--only cleaner]
#
# --only cleaner runs produce-1k (for the rate) and the two cleaner scenarios only.
#
# Baselines measured in the same run, so figures are read as ratios on this shared, noisy
# machine: fio O_DIRECT sequential write and read (and a 16 KiB write + fdatasync, the floor of
# a durable produce) on the data directory's file system, iperf3 over loopback.
# Scenarios (each against a fresh broker and data directory):
#   produce-1k      durable (acks=all) 1 KiB records to 8 partitions, maximum rate (4 producer
#                   connections: one connection is bound by its pipeline depth, not the broker)
#   produce-1k-idempotent  produce-1k with idempotent producers (--idempotent: a producer id
#                   each, every batch numbered per partition; at most 5 requests in flight, as
#                   in produce-1k); the summary gives its rate as a ratio to produce-1k's
#   produce-1k-txn  produce-1k with transactional producers (--transactional-id bench
#                   --txn-records 1000: producer i is bench-i, commits every 1,000 of its
#                   records and waits for the commit before the next transaction); ratio to
#                   produce-1k's rate likewise
#   produce-100b    100-byte records to 8 partitions, maximum rate
#   e2e-25/50/75    end-to-end latency at 25, 50 and 75% of produce-1k's measured rate
#   consume-tail    consumer at the log end while a producer writes at 50% of the maximum
#   consume-catchup consumer reading data written earlier. Segments are written with O_DIRECT
#                   and read with O_DIRECT, so the page cache never holds them: the read is
#                   cold by construction (the device's own cache aside); the page cache is
#                   also dropped when the kernel allows it.
#   produce-1k-cleaning  produce-1k at 50% of its maximum rate while a second producer writes
#                   1 KiB records of 1,000 keys at 2,000 records/s to a compacted topic (1 MiB
#                   segments, min.cleanable.dirty.ratio 0.01) and the cleaner cleans it every
#                   0.5 s on the same shard; produce-1k-cleaner-off is the same with
#                   log.cleaner.enable=false. The summary gives the produce p99 of the first as
#                   a ratio to the second's: what the cleaner costs producers.
#   partitions-1000 produce to a topic of 1,000 partitions
#   connections-1000 1,000 producer connections (64 KiB of buffer each, so that loadgen does not
#                   spend the run filling 4 GiB of buffers before it sends)
# Layouts: "pinned" runs the broker with one shard on CPU 0 and loadgen on CPU 1 (taskset);
# "all-cores" runs the broker with its default shards and loadgen unpinned.
# Full runs take 20 s per scenario (about 14 minutes in all); --quick runs every scenario
# briefly (about 5 minutes in all). A scenario the broker does not support (an API missing
# from its ApiVersions) leaves no JSON; it is listed in failures.txt and the summary.
# Installs fio, iperf3 and matplotlib when missing. Prints where the results went.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

quick=0
only=""
set_name=""
layouts="pinned all-cores"
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --set) set_name="$2"; shift ;;
        --layouts) layouts="$2"; shift ;;
        --only) only="$2"; shift ;;
        *) echo "usage: scripts/bench.sh [--quick] [--set NAME] [--layouts \"pinned all-cores\"] [--only cleaner]" >&2; exit 2 ;;
    esac
    shift
done
[ -n "$set_name" ] || set_name=$([ $quick = 1 ] && echo quick || echo full)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
need=()
command -v fio >/dev/null || need+=(fio)
command -v iperf3 >/dev/null || need+=(iperf3)
if [ ${#need[@]} -gt 0 ]; then as_root apt-get update -qq; as_root apt-get install -y -qq "${need[@]}" >/dev/null; fi
python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install -q matplotlib \
    || python3 -m pip install -q --break-system-packages matplotlib
python3 -c 'import confluent_kafka' 2>/dev/null || python3 -m pip install -q confluent-kafka \
    || python3 -m pip install -q --break-system-packages confluent-kafka

cargo build --release --bin shardlog -p shardlog -p loadgen >/dev/null
broker_bin="$repo/target/release/shardlog"
loadgen_bin="$repo/target/release/loadgen"

out="$repo/results/$(date -u +%F)-$set_name"
mkdir -p "$out"
work=$(mktemp -d /tmp/shardlog-bench.XXXXXX)
broker_pid=""
data=""
cleanup() { [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

if [ $quick = 1 ]; then dur=5; warm=2; fio_size=256M; base_s=4; else dur=20; warm=5; fio_size=2G; base_s=10; fi
port=19500

{
    echo "date: $(date -u +%FT%TZ)"
    echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (dirty)')"
    echo "command: scripts/bench.sh $([ $quick = 1 ] && echo --quick) --set $set_name --layouts \"$layouts\"$([ -n "$only" ] && echo " --only $only")"
    echo "kernel: $(uname -r)"
    echo "cpus: $(nproc) ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
    echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
    echo "data fs: $(df -T /tmp | awk 'NR==2 {print $2, $1}')"
    echo "memlock: $(ulimit -l)"
} > "$out/machine.txt"

echo "== baselines"
fio --name=seqwrite --directory="$work" --rw=write --bs=1M --size=$fio_size --direct=1 \
    --ioengine=io_uring --iodepth=8 --time_based --runtime=$base_s --output-format=json > "$out/fio-seqwrite.json"
fio --name=seqread --directory="$work" --rw=read --bs=1M --size=$fio_size --direct=1 \
    --ioengine=io_uring --iodepth=8 --time_based --runtime=$base_s --output-format=json > "$out/fio-seqread.json"
fio --name=syncwrite --directory="$work" --rw=write --bs=16k --size=256M --direct=1 --fdatasync=1 \
    --ioengine=psync --time_based --runtime=$base_s --output-format=json > "$out/fio-syncwrite.json"
rm -f "$work"/seq* "$work"/sync*
iperf3 -s -1 -p 19599 >/dev/null 2>&1 &
sleep 0.5
iperf3 -c 127.0.0.1 -p 19599 -t $base_s -J > "$out/iperf3-loopback.json"

start_broker() { # layout, extra args...
    local layout=$1; shift
    data="$work/data-$RANDOM"
    if [ "$layout" = pinned ]; then
        taskset -c 0 "$broker_bin" --data-dir "$data" --listen 127.0.0.1:$port --shards 1 "$@" 2>"$work/broker.log" &
    else
        "$broker_bin" --data-dir "$data" --listen 127.0.0.1:$port "$@" 2>"$work/broker.log" &
    fi
    broker_pid=$!
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && return 0; sleep 0.1; done
    echo "broker did not start" >&2; cat "$work/broker.log" >&2; exit 1
}
# Each scenario's data goes with its broker: a full run writes tens of GiB in all.
stop_broker() { kill "$broker_pid"; wait "$broker_pid" || true; broker_pid=""; rm -rf "$data"; }
lg() { # layout, args... A scenario the broker cannot keep up with is a result, not an abort:
    # loadgen still writes its JSON (with "ok": false), and the failure is listed.
    local layout=$1; shift
    local rc=0
    if [ "$layout" = pinned ]; then taskset -c 1 "$loadgen_bin" "$@" || rc=$?; else "$loadgen_bin" "$@" || rc=$?; fi
    [ $rc -eq 0 ] || echo "$layout: loadgen $* exited $rc" >> "$out/failures.txt"
    return 0
}
rate_of() { python3 -c "import json,sys; print(int(json.load(open(sys.argv[1]))['records_per_s']))" "$1"; }

for layout in $layouts; do
    echo "== layout $layout"
    d="$out/$layout"; mkdir -p "$d"

    start_broker "$layout"
    lg "$layout" produce --bootstrap 127.0.0.1:$port --topic p1k --partitions 8 --record-bytes 1024 \
        --duration-s $dur --acks all --producers 4 --json "$d/produce-1k.json"
    stop_broker
    max=$(rate_of "$d/produce-1k.json")

    # produce-1k at half rate beside a compacted topic being written, cleaner off then on.
    for cleaner in off on; do
        name=$([ $cleaner = on ] && echo produce-1k-cleaning || echo produce-1k-cleaner-off)
        start_broker "$layout" --override log.cleaner.backoff.ms=500 \
            --override log.cleaner.enable=$([ $cleaner = on ] && echo true || echo false)
        python3 - "$port" <<'PY'
import sys
from confluent_kafka.admin import AdminClient, NewTopic
admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{sys.argv[1]}"})
configs = {"cleanup.policy": "compact", "segment.bytes": "1048576", "min.cleanable.dirty.ratio": "0.01"}
for f in admin.create_topics([NewTopic("table", 1, 1, config=configs)]).values():
    f.result(30)
PY
        lg "$layout" produce --bootstrap 127.0.0.1:$port --topic table --partitions 1 --record-bytes 1024 \
            --keys 1000 --rate 2000 --duration-s $((dur + warm + 2)) --acks all >/dev/null 2>&1 &
        keyed=$!
        sleep $warm
        lg "$layout" produce --bootstrap 127.0.0.1:$port --topic p1k --partitions 8 --record-bytes 1024 \
            --rate $((max / 2)) --duration-s $dur --acks all --producers 4 --json "$d/$name.json"
        wait $keyed || true
        grep -c "cleaned topic=table" "$work/broker.log" > "$d/$name.cleanings" || true
        stop_broker
    done
    [ "$only" = cleaner ] && continue

    start_broker "$layout"
    lg "$layout" produce --bootstrap 127.0.0.1:$port --topic p1k --partitions 8 --record-bytes 1024 \
        --duration-s $dur --acks all --producers 4 --idempotent --json "$d/produce-1k-idempotent.json"
    stop_broker

    start_broker "$layout"
    lg "$layout" produce --bootstrap 127.0.0.1:$port --topic p1k --partitions 8 --record-bytes 1024 \
        --duration-s $dur --acks all --producers 4 --transactional-id bench --txn-records 1000 \
        --json "$d/produce-1k-txn.json"
    stop_broker

    start_broker "$layout"
    lg "$layout" produce --bootstrap 127.0.0.1:$port --topic p100 --partitions 8 --record-bytes 100 \
        --duration-s $dur --acks all --producers 4 --json "$d/produce-100b.json"
    stop_broker

    for pct in 25 50 75; do
        start_broker "$layout"
        lg "$layout" e2e --bootstrap 127.0.0.1:$port --topic e2e --partitions 8 --record-bytes 1024 \
            --rate $((max * pct / 100)) --duration-s $dur --acks all --producers 4 --json "$d/e2e-$pct.json"
        stop_broker
    done

    start_broker "$layout"
    lg "$layout" produce --bootstrap 127.0.0.1:$port --topic tail --partitions 8 --record-bytes 1024 \
        --duration-s $((dur + warm + 2)) --rate $((max / 2)) --acks all >/dev/null 2>&1 &
    producer=$!
    sleep 1
    lg "$layout" consume --bootstrap 127.0.0.1:$port --topic tail --from latest --duration-s $dur \
        --json "$d/consume-tail.json"
    wait $producer || true
    stop_broker

    start_broker "$layout"
    lg "$layout" produce --bootstrap 127.0.0.1:$port --topic catchup --partitions 8 --record-bytes 1024 \
        --duration-s $dur --acks 1 --json "$d/catchup-fill.json" >/dev/null
    n=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['records'])" "$d/catchup-fill.json")
    sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
    lg "$layout" consume --bootstrap 127.0.0.1:$port --topic catchup --from earliest --records "$n" \
        --json "$d/consume-catchup.json"
    stop_broker

    start_broker "$layout"
    lg "$layout" produce --bootstrap 127.0.0.1:$port --topic wide --partitions 1000 --record-bytes 1024 \
        --duration-s $dur --acks all --producers 4 --json "$d/partitions-1000.json"
    stop_broker

    start_broker "$layout"
    lg "$layout" produce --bootstrap 127.0.0.1:$port --topic conns --partitions 8 --record-bytes 1024 \
        --duration-s $dur --acks all --producers 1000 --buffer-bytes 65536 --json "$d/connections-1000.json"
    stop_broker
done

python3 scripts/bench_report.py "$out"
echo "results in $out"
