#!/usr/bin/env bash
# A/B: the same e2e load (fixed offered rate, all cores) against the broker before and after.
set -u
out=/tmp/ab-e2e; rm -rf $out; mkdir -p $out
lg=/work/main/target/release/loadgen
port=39092
for rep in 1 2 3; do
 for rate in 180000 220000; do
  for which in before after; do
    bin=/work/baseline/target/release/shardlog; [ $which = after ] && bin=/work/main/target/release/shardlog
    data=$(mktemp -d /tmp/ab-data.XXXX)
    $bin --data-dir $data --listen 127.0.0.1:$port 2>$out/broker.log &
    pid=$!
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
    $lg e2e --bootstrap 127.0.0.1:$port --topic e2e --partitions 8 --record-bytes 1024 --rate $rate \
       --duration-s 10 --acks all --producers 4 --json $out/$which-$rate-$rep.json >/dev/null 2>&1
    kill $pid; wait $pid; rm -rf $data
  done
 done
done
echo DONE > $out/done
