#!/usr/bin/env bash
# Checks that loadgen speaks the real Kafka protocol: what it produces (keyed, lz4, acks=all)
# reads back whole with kcat, and loadgen's own consumer reads the same count.
#
#   SHARDLOG_BIN=target/release/shardlog LOADGEN_BIN=target/release/loadgen scripts/compat/loadgen_kcat.sh
#
# Prints one line per check and, last, "N passed, M failed". Exits 1 if any check failed.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin="${SHARDLOG_BIN:-$repo/target/release/shardlog}"
lg="${LOADGEN_BIN:-$repo/target/release/loadgen}"
records=10000
work=$(mktemp -d /tmp/loadgen-kcat.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
passed=0; failed=0
check() { if eval "$2"; then passed=$((passed+1)); echo "PASS $1"; else failed=$((failed+1)); echo "FAIL $1"; fi; }
NO_COLOR=1 "$bin" --data-dir "$work/data" --listen 127.0.0.1:$port --shards 2 \
    --override shardlog.io.memory.bytes=65536 2>"$work/broker.log" &
broker=$!
trap 'kill $broker 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done

check "loadgen produce $records keyed lz4 records (acks=all)" \
    "timeout 120 '$lg' produce --bootstrap 127.0.0.1:$port --topic lg --partitions 4 --record-bytes 200 \
        --records $records --keys 100 --compression lz4 --io-memory-kib 64 --quiet --json '$work/p.json' >/dev/null 2>&1"
kcat_out=$(timeout 60 kcat -b 127.0.0.1:$port -C -t lg -e -q -f '%p %k\n' 2>/dev/null)
check "kcat reads back all $records records" "[ \$(printf '%s\n' \"\$kcat_out\" | grep -c .) -eq $records ]"
check "every record has one of the 100 keys" "[ \$(printf '%s\n' \"\$kcat_out\" | awk '{print \$2}' | sort -u | wc -l) -eq 100 ]"
check "each key lives on one partition" "[ \$(printf '%s\n' \"\$kcat_out\" | sort -u | wc -l) -eq 100 ]"
check "loadgen consume reads $records records" \
    "timeout 120 '$lg' consume --bootstrap 127.0.0.1:$port --topic lg --from earliest --records $records \
        --io-memory-kib 64 --quiet >/dev/null 2>&1"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
