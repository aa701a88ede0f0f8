#!/bin/sh
# Kafka's kafka-configs.sh, served by `shardlog configs` (same flags; see README "Admin tools").
exec "$(dirname "$0")/shardlog-admin" configs "$@"
