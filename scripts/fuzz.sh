#!/usr/bin/env bash
# Runs the cargo-fuzz targets under fuzz/ (issue 12), each for SECONDS (default 600), two at a
# time, and writes each run's log into OUT (default results/<date>-fuzz/). Needs the nightly
# toolchain and cargo-fuzz (`cargo install cargo-fuzz`). A crash leaves its input under
# fuzz/artifacts/<target>/: minimize it (`cargo +nightly fuzz tmin <target> <file>`) and add it
# to the target's unit or e2e regression tests.
#
#   scripts/fuzz.sh [SECONDS] [OUT] [TARGET ...]
#
# Targets: decode_request (every request frame, every API key and version we serve),
# produce_batches (produce payloads: framing, CRC, counts, decompression, record counting),
# segment_recovery (a partition opened on any segment and index bytes; every served batch must
# check).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-600}; out=${2:-../results/$(date -u +%F)-fuzz}; shift 2 || shift $# || true
targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(decode_request produce_batches segment_recovery)
mkdir -p "$out"
cargo +nightly fuzz build
run() {
    local t=$1 max_len=65536
    [ "$t" = segment_recovery ] && max_len=16384
    cargo +nightly fuzz run "$t" -- -max_total_time="$secs" -max_len=$max_len -rss_limit_mb=2048 \
        -print_final_stats=1 > "$out/$t.log" 2>&1 && echo "rc=0" >> "$out/$t.log" \
        || echo "rc=$?" >> "$out/$t.log"
}
i=0
for t in "${targets[@]}"; do
    run "$t" & i=$((i + 1))
    if [ $((i % 2)) -eq 0 ]; then wait; fi
done
wait
for t in "${targets[@]}"; do
    echo "$t: $(grep -E '^Done' "$out/$t.log" || echo 'no Done line'); $(grep -E '^rc=' "$out/$t.log")"
done
