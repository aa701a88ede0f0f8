#!/bin/sh
# Kafka's kafka-acls.sh, served by `shardlog acls` (same flags; see README "Admin tools").
exec "$(dirname "$0")/shardlog-admin" acls "$@"
