#!/bin/sh
# Kafka's kafka-consumer-groups.sh, served by `shardlog groups` (same flags; see README "Admin tools").
exec "$(dirname "$0")/shardlog-admin" groups "$@"
