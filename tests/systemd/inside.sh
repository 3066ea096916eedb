#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs INSIDE the container that run.sh boots (PID 1 is systemd): installs
# the `meson install --destdir` tree DEST over / (RAM only), then checks
# the project's own units under the real manager. One TAP line per check.
#
# Usage: inside.sh DEST TESTDIR BUILD_DIR
#   TESTDIR holds dirty-sd-call (a one-call client) and slowinit.so.
set -u
DEST=$1 T=$2
CALL=$T/dirty-sd-call
n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); failed=1; echo "not ok $n - $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else not_ok "$what"; fi; }
QUIET=0
waitfor() { # waitfor SECONDS CMD...: poll until CMD succeeds; on timeout, once more aloud
	local end=$((SECONDS + $1)); shift
	until QUIET=1 "$@"; do
		[ $SECONDS -ge $end ] && { "$@"; return 1; }
		sleep 0.2
	done
}
is() { # is EXPECTED CMD...: CMD's output is EXPECTED (else say what it was)
	local want=$1 got; shift
	got=$("$@" 2>&1)
	[ "$got" = "$want" ] && return 0
	[ "$QUIET" = 1 ] || echo "# expected '$want', got '$got'"
	return 1
}
call() { timeout 30 "$CALL" "$@"; }
S=dirty-arbiter.service
jfields() { journalctl -u $S -o json --no-pager "$@"; }

echo "# installing $DEST over / (RAM overlay)"
cp -a "$DEST/." / && ldconfig
APPDIR=$(dirname "$(find "$DEST" -name echo.so -path '*dirty-arbiter/apps/*' | head -n 1)")
APPDIR=${APPDIR#"$DEST"}
CONF=$(find "$DEST" -name dirty-arbiter.conf | head -n 1)
CONF=${CONF#"$DEST"}
SYSUNIT=$(find "$DEST" -path '*/systemd/system/dirty-arbiter.service' | head -n 1)
SYSUNIT=${SYSUNIT#"$DEST"}
cp "$T/slowinit.so" "$APPDIR/"

write_conf() { # write_conf APPS WORKERS
	printf '%s\n' '[dirty-arbiter]' "dirty_apps=$1" "dirty_workers=$2" > "$CONF"
}
write_conf 'echo:DirtyEchoApp;slow:DirtySlowApp' 2
# The test's drop-in: per-call debug records (off by default), and a short
# watchdog so that the SIGSTOP check takes seconds, not 30.
mkdir -p /etc/systemd/system/$S.d
cat > /etc/systemd/system/$S.d/50-test.conf <<EOT
[Service]
Environment=G_MESSAGES_DEBUG=dirty-arbiter
WatchdogSec=4s
EOT
systemctl daemon-reload

check "pid 1 is systemd" is systemd cat /proc/1/comm
check "the installed unit is used ($SYSUNIT)" is "$SYSUNIT" systemctl show -P FragmentPath $S
check "systemctl start dirty-arbiter.socket" systemctl start dirty-arbiter.socket
check "socket active" is active systemctl is-active dirty-arbiter.socket
check "service inactive until the first client" is inactive systemctl is-active $S
check "a call succeeds (activates the service)" is '"hello"' call echo:DirtyEchoApp echo '"hello"'
check "service active" is active systemctl is-active $S
check "StatusText shows the summary" waitfor 5 is "2/2 workers ready, 0 running, 0 queued" \
	systemctl show -P StatusText $S
check "a sandboxed dynamic user runs it" sh -c \
	'u=$(ps -o user= -p "$(systemctl show -P MainPID dirty-arbiter.service)"); [ "$u" != root ] && [ -n "$u" ]'
has_call_record() { # has_call_record APP ACTION EXTRA_REGEX
	jfields "DIRTY_APP=$1" | grep "\"DIRTY_ACTION\":\"$2\"" | grep '"DIRTY_REQUEST_ID":"[0-9]*"' |
		grep -q "$3"
}
check "journal: the call's records (DIRTY_APP, DIRTY_ACTION, DIRTY_REQUEST_ID, DIRTY_WORKER_PID)" \
	waitfor 5 has_call_record echo:DirtyEchoApp echo '"DIRTY_WORKER_PID":"[0-9]*"'
check "journal: worker start records (DIRTY_WORKER_PID, DIRTY_WORKER_ID, notice level)" waitfor 5 sh -c \
	"journalctl -u $S -o json --no-pager DIRTY_WORKER_ID=1 PRIORITY=5 | grep -q '\"DIRTY_WORKER_PID\":\"[0-9]*\"'"
check "a call past its deadline fails with timeout" sh -c \
	"timeout 30 '$CALL' --timeout 300 slow:DirtySlowApp sleep 5 | grep -q '^error: timeout:'"
check "journal: the failed call at notice level (DIRTY_APP, DIRTY_ACTION, DIRTY_REQUEST_ID)" \
	waitfor 5 has_call_record slow:DirtySlowApp sleep '"PRIORITY":"5"'
if waitfor 5 has_call_record slow:DirtySlowApp sleep '"DIRTY_ERROR_CODE":"timeout"'; then
	ok "journal: the failed call has DIRTY_ERROR_CODE=timeout"
else
	not_ok "journal: the failed call has DIRTY_ERROR_CODE=timeout"
fi

# watchdog: a stopped arbiter misses its pings
pid=$(systemctl show -P MainPID $S)
restarts=$(systemctl show -P NRestarts $S)
kill -STOP "$pid"
check "SIGSTOPped arbiter: watchdog kills it and it is restarted" waitfor 30 sh -c \
	"[ \$(systemctl show -P NRestarts $S) -gt $restarts ] && [ \$(systemctl is-active $S) = active ]"
check "the journal says: watchdog timeout" sh -c \
	"journalctl -u $S --no-pager | grep -q 'Watchdog timeout'"
check "new main pid after the restart" sh -c "[ \$(systemctl show -P MainPID $S) != $pid ]"
check "socket still active" is active systemctl is-active dirty-arbiter.socket
check "the old arbiter's workers are gone" sh -c "! ps -o pid= --ppid $pid | grep -q ."
check "the next call succeeds" is '[1,2]' call echo:DirtyEchoApp echo 1 2

# stop: the arbiter stops its workers and exits cleanly
check "systemctl stop dirty-arbiter.service dirty-arbiter.socket" \
	timeout 90 systemctl stop $S dirty-arbiter.socket
check "both inactive" is "inactive inactive" sh -c \
	"echo \$(systemctl is-active $S dirty-arbiter.socket)"
check "clean exit (Result=success, not killed at the stop timeout)" is success systemctl show -P Result $S
check "no dirty-worker process left" sh -c '! pgrep -x dirty-worker >/dev/null'
check "no dirty-arbiter process left" sh -c '! pgrep -x dirty-arbiter >/dev/null'
check "journal: the graceful shutdown is logged" sh -c \
	"journalctl -u $S --no-pager | grep -q 'graceful shutdown'"

# slow init: EXTEND_TIMEOUT_USEC keeps a short TimeoutStartSec= from failing it
write_conf 'slowinit:DirtySlowInitApp' 1
cat > /etc/systemd/system/$S.d/60-slowinit.conf <<EOT
[Service]
TimeoutStartSec=3s
Environment=DIRTY_TEST_INIT_SECONDS=8
EOT
systemctl daemon-reload
systemctl reset-failed $S 2>/dev/null
systemctl start dirty-arbiter.socket
( call --timeout 30000 slowinit:DirtySlowInitApp ping > /tmp/slowinit.out ) &
callpid=$!
starting() { is "activating Starting: 1/1 workers ready, 0 running, 1 queued" sh -c \
	"echo \$(systemctl is-active $S) \$(systemctl show -P StatusText $S)"; }
check "while init runs: activating, StatusText 'Starting: ...'" waitfor 5 starting
wait $callpid
check "a call waiting for an 8 s init with TimeoutStartSec=3s succeeds" is '"pong"' cat /tmp/slowinit.out
check "service active, never restarted (EXTEND_TIMEOUT_USEC)" is "active 0" sh -c \
	"echo \$(systemctl is-active $S) \$(systemctl show -P NRestarts $S)"
timeout 90 systemctl stop $S dirty-arbiter.socket
rm /etc/systemd/system/$S.d/60-slowinit.conf
write_conf 'echo:DirtyEchoApp' 1

# the user manager's units
if ! systemctl start user@0.service; then
	not_ok "start the user manager of root (user@0.service)"
	systemctl status --no-pager user@0.service 2>&1 | sed 's/^/# /'
else
	ok "start the user manager of root (user@0.service)"
	export XDG_RUNTIME_DIR=/run/user/0
	U=(systemctl --user)
	check "user unit is the installed one" sh -c \
		"systemctl --user show -P FragmentPath $S | grep -q '/systemd/user/$S\$'"
	check "systemctl --user start dirty-arbiter.socket" "${U[@]}" start dirty-arbiter.socket
	check "user service inactive until the first client" is inactive "${U[@]}" is-active $S
	check "a call on \$XDG_RUNTIME_DIR/dirty-arbiter.sock succeeds" is '"hi"' \
		call --socket /run/user/0/dirty-arbiter.sock echo:DirtyEchoApp echo '"hi"'
	check "user service active" is active "${U[@]}" is-active $S
	check "user StatusText shows the summary" waitfor 5 is "1/1 workers ready, 0 running, 0 queued" \
		"${U[@]}" show -P StatusText $S
	check "user journal has the call's records" waitfor 5 sh -c \
		"journalctl --user-unit $S -o json --no-pager DIRTY_APP=echo:DirtyEchoApp | grep -q '\"DIRTY_WORKER_PID\"'"
	check "systemctl --user stop: no worker left" sh -c \
		"timeout 90 systemctl --user stop $S dirty-arbiter.socket && ! pgrep -x dirty-worker >/dev/null"
fi

echo "1..$n"
exit $failed
