#!/bin/sh
# Kafka's kafka-topics.sh, served by `shardlog topics` (same flags; see README "Admin tools").
exec "$(dirname "$0")/shardlog-admin" topics "$@"
