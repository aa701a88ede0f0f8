#!/usr/bin/env bash
# Runs every test: unit and end-to-end tests (cargo test, with real rdkafka clients over TCP),
# then the script checks against a release build: loadgen's output read back by kcat, and
# kcat and confluent-kafka (Python) round trips including a kill -9 and restart, and consumer
# groups with real clients (confluent-kafka, kafka-python, aiokafka, kcat -G): failover,
# static membership, commits surviving restarts. Then idempotent producers of the three Python
# clients (each record exactly once across a kill -9) and confluent-kafka transactions (commit
# and abort, consume-transform-produce across kills, timeouts, fencing). Then the admin HTTP
# listener: /metrics parsed by Prometheus' Python parsers, lag statuses of groups committing in
# each pattern, and the console page in headless Chromium. Last, the Debian package: built with
# cargo-deb (installed when missing), installed, started from its default config, purged.
# Installs what the tests need when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

need_apt=()
command -v kcat >/dev/null || need_apt+=(kcat)
command -v cmake >/dev/null || need_apt+=(cmake)
command -v python3 >/dev/null || need_apt+=(python3 python3-pip)
# The console page's test drives a headless Chromium.
command -v chromium >/dev/null || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
python3 -c 'import confluent_kafka' 2>/dev/null || python3 -m pip install -q confluent-kafka \
    || python3 -m pip install -q --break-system-packages confluent-kafka
python3 -c 'import kafka, aiokafka' 2>/dev/null || python3 -m pip install -q kafka-python aiokafka \
    || python3 -m pip install -q --break-system-packages kafka-python aiokafka
# /metrics is parsed with Prometheus' own Python parsers; the browser is driven over DevTools.
python3 -c 'import prometheus_client, websocket' 2>/dev/null \
    || python3 -m pip install -q prometheus-client websocket-client \
    || python3 -m pip install -q --break-system-packages prometheus-client websocket-client

cargo build --release -p shardlog -p loadgen
cargo test --workspace
SHARDLOG_BIN=target/release/shardlog LOADGEN_BIN=target/release/loadgen bash scripts/compat/loadgen_kcat.sh
SHARDLOG_BIN=target/release/shardlog bash scripts/compat/crash_restart.sh
SHARDLOG_BIN=target/release/shardlog python3 scripts/compat/group_failover.py
SHARDLOG_BIN=target/release/shardlog python3 scripts/compat/group_failover.py --strategy cooperative-sticky
SHARDLOG_BIN=target/release/shardlog python3 scripts/compat/group_failover.py --strategy consumer
SHARDLOG_BIN=target/release/shardlog python3 scripts/compat/group_static.py
SHARDLOG_BIN=target/release/shardlog python3 scripts/compat/group_clients.py
SHARDLOG_BIN=target/release/shardlog python3 scripts/compat/idempotent_producers.py
SHARDLOG_BIN=target/release/shardlog python3 scripts/compat/transactions.py
SHARDLOG_BIN=target/release/shardlog python3 scripts/compat/observe.py
SHARDLOG_BIN=target/release/shardlog python3 scripts/compat/console_browser.py
bash scripts/package_test.sh
