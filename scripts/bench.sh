#!/usr/bin/env bash
# Benchmarks Shardlog with loadgen and records everything in results/<date>-<set>/.
#
#   scripts/bench.sh [--quick] [--set NAME] [--layouts "pinned all-cores"] [--only cleaner|scale]
#                    [--scale "partitions connections restart"]
#
# --only cleaner runs produce-1k (for the rate) and the two cleaner scenarios only; --only scale
# runs the scale scenarios only (below; pinned layout only, as in a full run). The baselines
# run either way. --scale picks some of the scale scenarios (all three by default).
# CARGO_TARGET_DIR, when set, is where the binaries are built and taken from.
#
# Baselines measured in the same run, so figures are read as ratios on this shared, noisy
# machine: fio O_DIRECT sequential write and read (and a 16 KiB write + fdatasync, the floor of
# a durable produce, whose fdatasync latency percentiles p50..p99.99 the summary sets beside the
# produce and end-to-end percentiles) on the data directory's file system, iperf3 over loopback.
# Scenarios (each against a fresh broker and data directory):
#   produce-1k      durable (acks=all) 1 KiB records to 8 partitions, maximum rate (4 producer
#                   connections: one connection is bound by its pipeline depth, not the broker),
#                   in the Java client's default 16 KiB batches (loadgen's default --batch-bytes)
#   produce-1k-1m-batches  produce-1k in 1 MiB batches (--batch-bytes 1048576), one batch per
#                   request as with librdkafka's 1,000,000-byte request limit, 32 MiB of buffer
#                   per producer (Java's default buffer.memory) so that batches fill: beside
#                   produce-1k, it tells per-request from per-byte broker cost
#   produce-1k-idempotent  produce-1k with idempotent producers (--idempotent: a producer id
#                   each, every batch numbered per partition; at most 5 requests in flight, as
#                   in produce-1k); the summary gives its rate as a ratio to produce-1k's
#   produce-1k-txn  produce-1k with transactional producers (--transactional-id bench
#                   --txn-records 1000: producer i is bench-i, commits every 1,000 of its
#                   records and waits for the commit before the next transaction); ratio to
#                   produce-1k's rate likewise
#   produce-100b    100-byte records to 8 partitions, maximum rate
#   e2e-25/50/75    end-to-end latency at 25, 50 and 75% of produce-1k's measured rate, the
#                   producers lingering 1 ms (--linger-ms 1, not loadgen's default 5) so that
#                   client batching does not hide the broker's latency
#   consume-tail    consumer at the log end while a producer writes at 50% of the maximum
#   consume-catchup consumer reading data written earlier. Segments are written with O_DIRECT,
#                   so the page cache does not hold what was written; history is read through
#                   the page cache and sent with sendfile, and the page cache is dropped before
#                   the read (when the kernel allows it), so the read starts cold.
#   produce-1k-cleaning  produce-1k at 50% of its maximum rate while a second producer writes
#                   1 KiB records of 1,000 keys at 2,000 records/s to a compacted topic (1 MiB
#                   segments, min.cleanable.dirty.ratio 0.01) and the cleaner cleans it every
#                   0.5 s on the same shard; produce-1k-cleaner-off is the same with
#                   log.cleaner.enable=false. The summary gives the produce p99 of the first as
#                   a ratio to the second's: what the cleaner costs producers.
#   partitions-1000 produce to a topic of 1,000 partitions
#   connections-1000 1,000 producer connections (64 KiB of buffer each, so that loadgen does not
#                   spend the run filling 4 GiB of buffers before it sends)
# Scale scenarios (issue 11's goals: 10k partitions and 10k connections served with an idle RSS
# of at most 1 GiB; a restart with 10 GB of log serving in at most 2 s), pinned layout only, in
# a full run and with --only scale. The soft `ulimit -n` is raised to the hard limit for them
# (the broker also raises its own). Idle RSS: VmRSS (and VmHWM, the peak) from
# /proc/<pid>/status, with the open file descriptors, once the broker has been idle (under 2
# clock ticks of CPU in a second) after each step, in <scenario>.idle.json:
#   partitions-10000 a topic of 10,000 partitions created (CreateTopics, timed), then durable
#                   produce to it as partitions-1000 does; idle RSS at start, after the topic
#                   is created and after the produce run
#   connections-10000 10,000 producer connections producing durably to 8 partitions (16 KiB
#                   of buffer each: one batch in flight per connection), then the idle RSS after
#                   they closed and with 10,000 idle connections open (scripts/scale_probe.py
#                   hold: ApiVersions and Metadata on each, then held)
#   restart-10g     10 GiB of log over 1,000 partitions (1 KiB records, acks=all; 1 GiB with
#                   --quick, restart-1g), then kill -9 and a restart timed to serving (the
#                   recovery path: no index was ever written), then SIGTERM (timed) and a
#                   restart timed again (the clean path). Serving: scripts/scale_probe.py
#                   serving, the first Metadata answering every partition with a leader and the
#                   first acks=all produce answered, in seconds from the broker's exec, in
#                   restart-10g.json; the fill is restart-10g-fill(.broker).json.
# Broker cost, per scenario, over its measured loadgen run (the consume of consume-catchup, not
# the fill before it), in <scenario>.broker.json beside the scenario's JSON:
#   - CPU: utime + stime of the broker process (every thread, io-wq workers included) from
#     /proc/<pid>/stat just before and just after the run, in clock ticks (getconf CLK_TCK);
#     the summary divides it by the scenario's payload bytes ("bytes" in loadgen's JSON:
#     produced for produce scenarios, consumed for consume and e2e) as broker core-s/GB. The
#     broker's work for a side load (the producer of consume-tail, the compacted topic's
#     producer and cleaner) is in it too.
#   - io-wq punts: requests io_uring hands to its worker threads instead of completing inline,
#     the tracepoint io_uring:io_uring_queue_async_work counted for the broker pid by
#     `perf stat -p` (linux-perf installed when perf is missing, tracefs mounted when it is
#     not); where the tracepoint cannot be counted, machine.txt and the summary say why and the
#     run goes on without it. The summary also divides them by loadgen's produce requests.
# Layouts: "pinned" runs the broker with one shard on CPU 0 and loadgen on CPU 1 (taskset);
# "all-cores" runs the broker with its default shards and loadgen unpinned.
# Full runs take 20 s per scenario (about 15 minutes in all); --quick runs every scenario
# briefly (about 5 minutes in all). A scenario the broker does not support (an API missing
# from its ApiVersions) leaves no JSON; it is listed in failures.txt and the summary.
# Installs fio, iperf3 and matplotlib when missing. Prints where the results went.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

quick=0
only=""
scale="partitions connections restart"
set_name=""
layouts="pinned all-cores"
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --set) set_name="$2"; shift ;;
        --layouts) layouts="$2"; shift ;;
        --only) only="$2"; shift ;;
        --scale) scale="$2"; shift ;;
        *) echo "usage: scripts/bench.sh [--quick] [--set NAME] [--layouts \"pinned all-cores\"] [--only cleaner|scale] [--scale \"partitions connections restart\"]" >&2; exit 2 ;;
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

# io-wq punts are counted with perf on a tracepoint: perf from linux-perf, the tracepoint from
# tracefs. Without either the run goes on, and says so.
punts_event=io_uring:io_uring_queue_async_work
command -v perf >/dev/null || { as_root apt-get update -qq && as_root apt-get install -y -qq linux-perf >/dev/null; } || true
[ -d /sys/kernel/tracing/events ] || as_root mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
punts_why="" # why punts are not counted; empty when they are
if ! command -v perf >/dev/null; then
    punts_why="perf is not installed (apt-get install linux-perf failed)"
elif ! perf_check=$(perf stat -x, -e "$punts_event" -a true 2>&1 >/dev/null) \
    || ! grep -q "^[0-9]*,,$punts_event," <<<"$perf_check"; then
    punts_why="perf cannot count $punts_event here: $(head -c 200 <<<"$perf_check" | tr '\n' ' ')"
fi

cargo build --release -p shardlog -p loadgen --bin shardlog --bin loadgen >/dev/null
target_dir=${CARGO_TARGET_DIR:-$repo/target}
broker_bin="$target_dir/release/shardlog"
loadgen_bin="$target_dir/release/loadgen"
# 10,000 connections (and loadgen's 10,000 sockets beside them) need more descriptors than
# the usual soft limit of 1,024.
ulimit -n "$(ulimit -Hn)"

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
    echo "command: scripts/bench.sh $([ $quick = 1 ] && echo --quick) --set $set_name --layouts \"$layouts\"$([ -n "$only" ] && echo " --only $only") --scale \"$scale\""
    echo "kernel: $(uname -r)"
    echo "cpus: $(nproc) ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
    echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
    echo "data fs: $(df -T /tmp | awk 'NR==2 {print $2, $1}')"
    echo "memlock: $(ulimit -l)"
    echo "nofile: $(ulimit -Sn) (hard $(ulimit -Hn))"
    echo "broker cpu: utime+stime of the broker pid from /proc/<pid>/stat, CLK_TCK $(getconf CLK_TCK)"
    if [ -z "$punts_why" ]; then
        echo "io-wq punts: perf stat -e $punts_event -p <broker pid> ($(perf --version))"
    else
        echo "io-wq punts: not counted: $punts_why"
    fi
} > "$out/machine.txt"

echo "== baselines"
fio --name=seqwrite --directory="$work" --rw=write --bs=1M --size=$fio_size --direct=1 \
    --ioengine=io_uring --iodepth=8 --time_based --runtime=$base_s --output-format=json > "$out/fio-seqwrite.json"
fio --name=seqread --directory="$work" --rw=read --bs=1M --size=$fio_size --direct=1 \
    --ioengine=io_uring --iodepth=8 --time_based --runtime=$base_s --output-format=json > "$out/fio-seqread.json"
fio --name=syncwrite --directory="$work" --rw=write --bs=16k --size=256M --direct=1 --fdatasync=1 \
    --ioengine=psync --time_based --runtime=$base_s --percentile_list=50:75:90:95:99:99.5:99.9:99.95:99.99 \
    --output-format=json > "$out/fio-syncwrite.json"
rm -f "$work"/seq* "$work"/sync*
iperf3 -s -1 -p 19599 >/dev/null 2>&1 &
sleep 0.5
iperf3 -c 127.0.0.1 -p 19599 -t $base_s -J > "$out/iperf3-loopback.json"

launch_broker() { # layout, extra args...: starts the broker on $data, its log appended
    local layout=$1; shift
    if [ "$layout" = pinned ]; then
        taskset -c 0 "$broker_bin" --data-dir "$data" --listen 127.0.0.1:$port --shards 1 "$@" 2>>"$work/broker.log" &
    else
        "$broker_bin" --data-dir "$data" --listen 127.0.0.1:$port "$@" 2>>"$work/broker.log" &
    fi
    broker_pid=$!
}
start_broker() { # layout, extra args...
    data="$work/data-$RANDOM"
    : > "$work/broker.log"
    launch_broker "$@"
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
# The broker's CPU (utime + stime, clock ticks) so far, all its threads; empty if it is gone.
broker_ticks() { sed 's/.*) //' "/proc/$broker_pid/stat" 2>/dev/null | awk '{print $12 + $13}' || true; }
measure_begin() { # starts counting the broker's CPU and io-wq punts
    perf_pid=""
    if [ -z "$punts_why" ]; then
        perf stat -x, -o "$work/punts.txt" -e "$punts_event" -p "$broker_pid" 2>/dev/null &
        perf_pid=$!
        # The load starts once perf has its counters on the broker's threads (it enables them
        # right after opening them).
        for _ in $(seq 100); do
            ls -l "/proc/$perf_pid/fd" 2>/dev/null | grep -q perf_event && break
            sleep 0.02
        done
        sleep 0.05
    fi
    ticks0=$(broker_ticks); t0=$(date +%s.%N)
}
measure_end() { # scenario name: writes $d/<name>.broker.json
    local ticks1 t1 punts=null
    ticks1=$(broker_ticks); t1=$(date +%s.%N)
    if [ -n "$perf_pid" ]; then
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" 2>/dev/null || true
        punts=$(awk -F, -v ev="$punts_event" '$3 == ev && $1 ~ /^[0-9]+$/ {print $1}' "$work/punts.txt")
        [ -n "$punts" ] || punts=null
    fi
    python3 - "$d/$1.broker.json" "${ticks0:-}" "${ticks1:-}" "$(getconf CLK_TCK)" "$t0" "$t1" "$punts" "$punts_why" <<'PY'
import json, sys
path, t0, t1, hz, w0, w1, punts, why = sys.argv[1:]
ticks = int(t1) - int(t0) if t0 and t1 else None
json.dump({
    "cpu_ticks": ticks, "clk_tck": int(hz), "cpu_s": ticks / int(hz) if ticks is not None else None,
    "wall_s": round(float(w1) - float(w0), 3),
    "io_wq_punts": None if punts == "null" else int(punts),
    "io_wq_punts_not_counted": why or None,
}, open(path, "w"), indent=1)
PY
}
measured() { # scenario name, command...: runs the command with the broker's cost measured
    local name=$1; shift
    measure_begin
    "$@"
    measure_end "$name"
}
rate_of() { python3 -c "import json,sys; print(int(json.load(open(sys.argv[1]))['records_per_s']))" "$1"; }
on_loadgen_cpu() { # layout, command...: runs a helper where loadgen runs
    local layout=$1; shift
    if [ "$layout" = pinned ]; then taskset -c 1 "$@"; else "$@"; fi
}

# Scale scenarios' helpers.
# Waits until the broker is idle: under 2 clock ticks of CPU in a second, for at most 60 s;
# prints the seconds it waited.
wait_idle() {
    local t0 a b
    t0=$(date +%s.%N)
    a=$(broker_ticks)
    for _ in $(seq 60); do
        sleep 1
        b=$(broker_ticks)
        [ -n "$a" ] && [ -n "$b" ] && [ $((b - a)) -lt 2 ] && break
        a=$b
    done
    python3 -c "import sys, time; print(round(time.time() - float(sys.argv[1]), 1))" "$t0"
}
idle_sample() { # scenario, step, [key=value...]: the idle broker's memory and descriptors,
    # merged into $d/<scenario>.idle.json under "step" (with the extra figures given)
    local name=$1 step=$2; shift 2
    local settle
    settle=$(wait_idle)
    python3 - "$d/$name.idle.json" "$step" "/proc/$broker_pid" "$settle" "$@" <<'PY'
import json, os, sys
path, step, proc, settle, *extra = sys.argv[1:]
status = dict(l.split(":", 1) for l in open(os.path.join(proc, "status")) if ":" in l)
kib = lambda k: int(status[k].split()[0])
doc = json.load(open(path)) if os.path.exists(path) else {}
doc[step] = {
    "rss_kib": kib("VmRSS"), "hwm_kib": kib("VmHWM"), "fds": len(os.listdir(os.path.join(proc, "fd"))),
    "threads": int(status["Threads"]), "settle_s": float(settle),
    **{k: float(v) for k, v in (e.split("=", 1) for e in extra)},
}
json.dump(doc, open(path, "w"), indent=1)
PY
}
create_topic() { # name, partitions: CreateTopics, printing the seconds it took
    python3 - "$port" "$1" "$2" <<'PY'
import sys, time
from confluent_kafka.admin import AdminClient, NewTopic
admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{sys.argv[1]}"})
t0 = time.time()
for f in admin.create_topics([NewTopic(sys.argv[2], int(sys.argv[3]), 1)], request_timeout=600,
                             operation_timeout=600).values():
    f.result(600)
print(round(time.time() - t0, 2))
PY
}
restart_timed() { # layout, topic, partitions, label: restarts the broker on $data and times it
    # to serving, into $work/serving-<label>.json
    local t0
    t0=$(date +%s.%N)
    launch_broker "$1"
    on_loadgen_cpu "$1" python3 scripts/scale_probe.py serving 127.0.0.1:$port "$2" "$3" "$t0" 300 \
        "$work/serving-$4.json" || echo "$1: restart ($4) not serving within 300 s" >> "$out/failures.txt"
}
stop_timed() { # SIGTERM to the broker; sets stop_s to the seconds to its exit. Not to be run in
    # a subshell ($(...)): only this shell can wait for the broker.
    local t0
    t0=$(date +%s.%N)
    kill "$broker_pid"; wait "$broker_pid" || true; broker_pid=""
    stop_s=$(python3 -c "import sys, time; print(round(time.time() - float(sys.argv[1]), 2))" "$t0")
}

scale_scenarios() { # layout
    local layout=$1 secs hold_pid fill_gib records name
    if [[ " $scale " == *" partitions "* ]]; then
    start_broker "$layout"
    idle_sample partitions-10000 started
    secs=$(create_topic wide 10000)
    idle_sample partitions-10000 created create_s="$secs"
    measured partitions-10000 lg "$layout" produce --bootstrap 127.0.0.1:$port --topic wide \
        --partitions 10000 --record-bytes 1024 --duration-s $dur --acks all --producers 4 \
        --json "$d/partitions-10000.json"
    idle_sample partitions-10000 after-run data_bytes="$(du -sb "$data" | cut -f1)"
    stop_broker
    fi

    if [[ " $scale " == *" connections "* ]]; then
    start_broker "$layout"
    measured connections-10000 lg "$layout" produce --bootstrap 127.0.0.1:$port --topic conns \
        --partitions 8 --record-bytes 1024 --duration-s $dur --acks all --producers 10000 \
        --buffer-bytes 16384 --json "$d/connections-10000.json"
    idle_sample connections-10000 after-run
    rm -f "$work/hold.in"; mkfifo "$work/hold.in"
    on_loadgen_cpu "$layout" python3 scripts/scale_probe.py hold 127.0.0.1:$port 10000 conns \
        <"$work/hold.in" >"$work/hold.out" 2>&1 &
    hold_pid=$!
    exec 7>"$work/hold.in"
    for _ in $(seq 600); do
        grep -q '^held' "$work/hold.out" 2>/dev/null && break
        kill -0 $hold_pid 2>/dev/null || break
        sleep 0.5
    done
    if grep -q '^held' "$work/hold.out"; then
        idle_sample connections-10000 held connections=10000
    else
        echo "$layout: connections-10000 hold: $(tail -c 300 "$work/hold.out")" >> "$out/failures.txt"
    fi
    exec 7>&-
    wait $hold_pid || true
    stop_broker
    fi

    [[ " $scale " == *" restart "* ]] || return 0
    # 10 GiB of log (1 GiB with --quick), written without a clean stop: kill -9, restart
    # (recovery of every partition's only segment), SIGTERM, restart (clean).
    fill_gib=$([ $quick = 1 ] && echo 1 || echo 10)
    name=restart-${fill_gib}g
    records=$((fill_gib * 1024 * 1024))
    if [ "$(df -B1G --output=avail "$work" | tail -1)" -lt $((fill_gib + 5)) ]; then
        echo "$layout: $name skipped: less than $((fill_gib + 5)) GiB free in $work" >> "$out/failures.txt"
        return 0
    fi
    start_broker "$layout"
    measured "$name-fill" lg "$layout" produce --bootstrap 127.0.0.1:$port --topic restart \
        --partitions 1000 --record-bytes 1024 --records $records --acks all --producers 4 \
        --json "$d/$name-fill.json"
    local log_bytes
    log_bytes=$(du -sb "$data" | cut -f1)
    kill -9 "$broker_pid"; wait "$broker_pid" 2>/dev/null || true
    restart_timed "$layout" restart 1000 kill9
    idle_sample "$name" after-recovery
    stop_timed
    secs=$stop_s
    restart_timed "$layout" restart 1000 clean
    idle_sample "$name" after-clean-restart
    stop_broker
    python3 - "$d/$name.json" "$work" "$log_bytes" "$records" "$secs" \
        "$(grep -c 'truncating the segment' "$work/broker.log" || true)" <<'PY'
import json, sys
path, work, log_bytes, records, stop_s, truncated = sys.argv[1:]
load = lambda label: json.load(open(f"{work}/serving-{label}.json"))
json.dump({
    "log_bytes": int(log_bytes), "records": int(records), "partitions": 1000, "record_bytes": 1024,
    "kill9": load("kill9"), "sigterm_stop_s": float(stop_s), "clean": load("clean"),
    "segments_truncated": int(truncated), "goal_serving_s": 2.0,
}, open(path, "w"), indent=1)
PY
}

for layout in $layouts; do
    if [ "$only" = scale ] && [ "$layout" != pinned ]; then continue; fi
    echo "== layout $layout"
    d="$out/$layout"; mkdir -p "$d"
    if [ "$only" = scale ]; then scale_scenarios "$layout"; continue; fi

    start_broker "$layout"
    measured produce-1k lg "$layout" produce --bootstrap 127.0.0.1:$port --topic p1k --partitions 8 \
        --record-bytes 1024 --duration-s $dur --acks all --producers 4 --json "$d/produce-1k.json"
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
        measured "$name" lg "$layout" produce --bootstrap 127.0.0.1:$port --topic p1k --partitions 8 \
            --record-bytes 1024 --rate $((max / 2)) --duration-s $dur --acks all --producers 4 \
            --json "$d/$name.json"
        wait $keyed || true
        grep -c "cleaned topic=table" "$work/broker.log" > "$d/$name.cleanings" || true
        stop_broker
    done
    [ "$only" = cleaner ] && continue

    start_broker "$layout"
    measured produce-1k-1m-batches lg "$layout" produce --bootstrap 127.0.0.1:$port --topic p1k \
        --partitions 8 --record-bytes 1024 --duration-s $dur --acks all --producers 4 \
        --batch-bytes 1048576 --max-request-bytes 1048576 --buffer-bytes 33554432 \
        --json "$d/produce-1k-1m-batches.json"
    stop_broker

    start_broker "$layout"
    measured produce-1k-idempotent lg "$layout" produce --bootstrap 127.0.0.1:$port --topic p1k \
        --partitions 8 --record-bytes 1024 --duration-s $dur --acks all --producers 4 --idempotent \
        --json "$d/produce-1k-idempotent.json"
    stop_broker

    start_broker "$layout"
    measured produce-1k-txn lg "$layout" produce --bootstrap 127.0.0.1:$port --topic p1k --partitions 8 \
        --record-bytes 1024 --duration-s $dur --acks all --producers 4 --transactional-id bench \
        --txn-records 1000 --json "$d/produce-1k-txn.json"
    stop_broker

    start_broker "$layout"
    measured produce-100b lg "$layout" produce --bootstrap 127.0.0.1:$port --topic p100 --partitions 8 \
        --record-bytes 100 --duration-s $dur --acks all --producers 4 --json "$d/produce-100b.json"
    stop_broker

    for pct in 25 50 75; do
        start_broker "$layout"
        measured "e2e-$pct" lg "$layout" e2e --bootstrap 127.0.0.1:$port --topic e2e --partitions 8 \
            --record-bytes 1024 --rate $((max * pct / 100)) --duration-s $dur --acks all --producers 4 \
            --linger-ms 1 --json "$d/e2e-$pct.json"
        stop_broker
    done

    start_broker "$layout"
    lg "$layout" produce --bootstrap 127.0.0.1:$port --topic tail --partitions 8 --record-bytes 1024 \
        --duration-s $((dur + warm + 2)) --rate $((max / 2)) --acks all >/dev/null 2>&1 &
    producer=$!
    sleep 1
    measured consume-tail lg "$layout" consume --bootstrap 127.0.0.1:$port --topic tail --from latest \
        --duration-s $dur --json "$d/consume-tail.json"
    wait $producer || true
    stop_broker

    start_broker "$layout"
    lg "$layout" produce --bootstrap 127.0.0.1:$port --topic catchup --partitions 8 --record-bytes 1024 \
        --duration-s $dur --acks 1 --json "$d/catchup-fill.json" >/dev/null
    n=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['records'])" "$d/catchup-fill.json")
    sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
    measured consume-catchup lg "$layout" consume --bootstrap 127.0.0.1:$port --topic catchup \
        --from earliest --records "$n" --json "$d/consume-catchup.json"
    stop_broker

    start_broker "$layout"
    measured partitions-1000 lg "$layout" produce --bootstrap 127.0.0.1:$port --topic wide \
        --partitions 1000 --record-bytes 1024 --duration-s $dur --acks all --producers 4 \
        --json "$d/partitions-1000.json"
    stop_broker

    start_broker "$layout"
    measured connections-1000 lg "$layout" produce --bootstrap 127.0.0.1:$port --topic conns \
        --partitions 8 --record-bytes 1024 --duration-s $dur --acks all --producers 1000 \
        --buffer-bytes 65536 --json "$d/connections-1000.json"
    stop_broker

    if [ "$layout" = pinned ]; then scale_scenarios "$layout"; fi
done

python3 scripts/bench_report.py "$out"
echo "results in $out"
