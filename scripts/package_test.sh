#!/usr/bin/env bash
# The Debian package, installed and run: builds it with cargo-deb from the release build,
# installs it with dpkg, checks what it put in place (binary, unit, /etc/shardlog/server.properties,
# the kafka-*.sh wrappers, the `shardlog` user and its /var/lib/shardlog), verifies the unit with
# systemd-analyze, starts the broker as the unit does (its ExecStart, as its User) from the
# default config, round-trips records with kcat, asks the admin listener for health and the
# wrappers for the topic, stops it with SIGTERM (exit 0), and purges the package.
#
# This machine's PID 1 is not systemd, so the unit itself is verified, not started by systemctl.
# Run as root (or with sudo); expects target/release/shardlog built (scripts/test.sh does).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
fail() { echo "FAIL: package: $*" >&2; [ -n "${log:-}" ] && tail -20 "$log" >&2; exit 1; }
ok() { echo "ok   $*"; }

command -v cargo-deb >/dev/null || cargo install --locked cargo-deb
cargo deb --no-build --no-strip -o target/debian/ >/dev/null
deb=$(ls -t target/debian/shardlog_*.deb | head -1)
ok "built $deb"

# The test installs and purges the package and removes /var/lib/shardlog: never on a machine
# that runs the package for real.
if dpkg-query -W -f='${Status}' shardlog 2>/dev/null | grep -q installed || [ -e /var/lib/shardlog ]; then
    fail "the shardlog package or /var/lib/shardlog is already here; this test installs and purges them, so it stops"
fi
cleanup() {
    [ -n "${pid:-}" ] && as_root kill -9 "$pid" 2>/dev/null || true
    as_root pkill -9 -u shardlog 2>/dev/null || true
    as_root dpkg --purge shardlog >/dev/null 2>&1 || true
    as_root rm -rf /var/lib/shardlog
}
trap cleanup EXIT
as_root env DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" >/dev/null
ok "installed"

for f in /usr/bin/shardlog /etc/shardlog/server.properties /lib/systemd/system/shardlog.service \
         /usr/share/shardlog/bin/kafka-topics.sh /usr/share/shardlog/bin/kafka-consumer-groups.sh \
         /usr/share/shardlog/bin/kafka-configs.sh /usr/share/shardlog/bin/kafka-acls.sh; do
    [ -e "$f" ] || fail "$f missing"
done
ok "binary, unit, default config and wrappers in place"
dpkg-query -W -f='${Conffiles}\n' shardlog | grep -q /etc/shardlog/server.properties \
    || fail "/etc/shardlog/server.properties is not a conffile"
getent passwd shardlog >/dev/null || fail "no shardlog user"
[ "$(stat -c %U /var/lib/shardlog)" = shardlog ] || fail "/var/lib/shardlog not owned by shardlog"
ok "user shardlog owns /var/lib/shardlog; the config is a conffile"
if command -v systemd-analyze >/dev/null; then
    as_root systemd-analyze verify /lib/systemd/system/shardlog.service || fail "systemd-analyze verify"
    ok "systemd-analyze verify: the unit is valid"
fi
grep -q '^LimitMEMLOCK=infinity' /lib/systemd/system/shardlog.service || fail "no LimitMEMLOCK"
grep -q '^LimitNOFILE=' /lib/systemd/system/shardlog.service || fail "no LimitNOFILE"

/usr/bin/shardlog --config /etc/shardlog/server.properties --print-config > /tmp/shardlog-print-config.txt
grep -E '^log.dirs +/var/lib/shardlog +/etc/shardlog/server.properties line' /tmp/shardlog-print-config.txt >/dev/null \
    || fail "--print-config does not show log.dirs from the default config"
ok "--print-config shows the default config's values and their lines"

# Start as the unit does: its ExecStart, as its user (setpriv execs the broker in place, so $pid
# is the broker's and the SIGTERM below reaches it as systemd's would).
exec_start=$(sed -n 's/^ExecStart=//p' /lib/systemd/system/shardlog.service)
for port in 9092 9644; do
    if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
        fail "127.0.0.1:$port is taken: the default config listens there; stop what serves it"
    fi
done
log=$(mktemp /tmp/shardlog-package.XXXXXX.log)
chmod 666 "$log"
# Not through the as_root function: a backgrounded function is a subshell, whose pid is not
# the broker's (sudo relays signals to its command and exits with its status).
sudo_=(); [ "$(id -u)" = 0 ] || sudo_=(sudo)
# shellcheck disable=SC2086 # ExecStart is a command line to split
"${sudo_[@]}" setpriv --reuid shardlog --regid shardlog --init-groups $exec_start >"$log" 2>&1 &
pid=$!
for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/9092) 2>/dev/null && break; sleep 0.1; done
(exec 3<>/dev/tcp/127.0.0.1/9092) 2>/dev/null || fail "the broker does not listen on 127.0.0.1:9092"
ok "started from the default config as user shardlog"

printf 'k1:one\nk2:two\nk3:three\n' | kcat -b 127.0.0.1:9092 -P -t packaged -K: -X request.required.acks=all
got=$(kcat -b 127.0.0.1:9092 -C -t packaged -e -q -f '%k=%s\n' | sort | tr '\n' ' ')
[ "$got" = "k1=one k2=two k3=three " ] || fail "round trip gave '$got'"
ok "kcat round trip"
health=$(python3 -c 'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:9644/v1/health", timeout=10).read().decode())')
echo "$health" | grep -q '"ready": true' || fail "health: $health"
ok "admin listener from the default config: ready"
KAFKA_PATH=/usr/share/shardlog
"$KAFKA_PATH/bin/kafka-topics.sh" --bootstrap-server 127.0.0.1:9092 --list | grep -qx packaged \
    || fail "kafka-topics.sh --list does not list the topic"
ok "the packaged kafka-topics.sh lists the topic"
[ -n "$(find /var/lib/shardlog -path '*packaged-0*' -user shardlog -print -quit)" ] \
    || fail "no partition directory of the shardlog user under /var/lib/shardlog"
ok "data under /var/lib/shardlog, owned by shardlog"

as_root kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
pid=
[ "$rc" = 0 ] || fail "SIGTERM stop exited $rc"
grep -q "stopped cleanly" "$log" || fail "no clean stop in the log"
ok "SIGTERM: stopped cleanly, exit 0"

as_root dpkg --purge shardlog >/dev/null
[ ! -e /usr/bin/shardlog ] || fail "purge left /usr/bin/shardlog"
! getent passwd shardlog >/dev/null || fail "purge left the shardlog user"
ok "purged"
rm -f "$log"
echo "PASS: package"
