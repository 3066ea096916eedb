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
# the "dirty" group of the system socket (sysusers.d, as a package would)
systemd-sysusers
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
check "socket 0660, group dirty" is "660 dirty" stat -c "%a %G" /run/dirty-arbiter.sock
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

# reload: `systemctl reload` while a client calls in a loop fails no call
write_conf 'echo:DirtyEchoApp' 2
systemctl reset-failed $S 2>/dev/null
systemctl start dirty-arbiter.socket
call echo:DirtyEchoApp echo 0 >/dev/null
pid=$(systemctl show -P MainPID $S)
call_loop() { # call_loop SECONDS OUT: one call after another, "calls failures" to OUT
	local end=$((SECONDS + $1)) i=0 bad=0 got
	while [ $SECONDS -lt $end ]; do
		i=$((i + 1))
		got=$(call echo:DirtyEchoApp echo "$i" 2>&1)
		[ "$got" = "$i" ] || { bad=$((bad + 1)); echo "# call $i: $got" >&2; }
	done
	echo "$i $bad" > "$2"
}
call_loop 8 /tmp/reload.out &
looppid=$!
sleep 1
reloads=0
for _ in 1 2; do
	systemctl reload $S && reloads=$((reloads + 1))
	waitfor 10 is "2/2 workers ready, 0 running, 0 queued" systemctl show -P StatusText $S >/dev/null
	sleep 1
done
wait $looppid
read -r calls bad < /tmp/reload.out
check "two systemctl reloads during $calls calls in a loop: 0 failed (got $bad)" \
	sh -c "[ $reloads = 2 ] && [ $bad = 0 ] && [ $calls -gt 20 ]"
check "reload: same main pid, generation 3 ready" sh -c \
	"[ \$(systemctl show -P MainPID $S) = $pid ] && journalctl -u $S --no-pager | grep -q 'reload: generation 3 ready'"
timeout 90 systemctl stop $S dirty-arbiter.socket

# restart: client connections survive `systemctl restart` (fd store).
# 8 clients, one connection each, 2 threads per connection, call without
# pause (every 10th call a 0.2 s sleep, so calls are in flight at each
# SIGTERM and the other thread's requests arrive meanwhile) through 10
# restarts.
write_conf 'echo:DirtyEchoApp;slow:DirtySlowApp' 2
systemctl reset-failed $S dirty-arbiter.socket 2>/dev/null
systemctl start dirty-arbiter.socket
call echo:DirtyEchoApp echo 0 >/dev/null
check "restart: the unit has an fd store (FileDescriptorStoreMax=4096)" is 4096 \
	systemctl show -P FileDescriptorStoreMax $S
rm -f /tmp/load.stop
"$T/dirty-sd-load" --clients 8 --threads 2 --slow-every 10 /tmp/load.stop > /tmp/load.out 2>&1 &
loadpid=$!
sleep 1
restarts=0 firstpid=$(systemctl show -P MainPID $S)
# 2.5 s apart: systemd refuses a 6th start within 10 s (StartLimitBurst=5)
for _ in $(seq 10); do
	next=$(($(date +%s%N) / 1000000 + 2500))
	timeout 60 systemctl restart $S && restarts=$((restarts + 1))
	while [ $(($(date +%s%N) / 1000000)) -lt $next ]; do sleep 0.1; done
done
sleep 1
touch /tmp/load.stop
wait $loadpid
sed 's/^/# /' /tmp/load.out
read -r calls errors lost clients_lost <<< "$(sed -n \
	's/^total: \([0-9]*\) calls, \([0-9]*\) error answers, \([0-9]*\) connection errors, \([0-9]*\) clients.*/\1 \2 \3 \4/p' \
	/tmp/load.out)"
check "restart: 10 systemctl restarts, a new main pid" sh -c \
	"[ $restarts = 10 ] && [ \$(systemctl show -P MainPID $S) != $firstpid ]"
check "restart: the 8 clients made ${calls:-?} calls across them" sh -c "[ '${calls:-0}' -gt 200 ]"
check "restart: clients that saw a connection error: ${clients_lost:-?} of 8 (${lost:-?} errors, target 0)" \
	sh -c "[ '${lost:-x}' = 0 ]"
check "restart: calls with an error answer: ${errors:-?} (target 0)" sh -c "[ '${errors:-x}' = 0 ]"
handed=$(journalctl -u $S --no-pager | grep -c 'handoff: took back 8 client connections')
check "restart: each new arbiter took the 8 connections back ($handed of 10)" sh -c "[ $handed -ge 10 ]"
held=$(journalctl -u $S --no-pager | sed -n 's/.*in the fd store for the next start (\([0-9]*\) bytes read.*/\1/p' |
	awk '{ s += $1 } END { print s + 0 }')
check "restart: requests that came during the handoff went with their connections ($held bytes)" \
	sh -c "[ $held -gt 0 ]"
check "restart: the store is empty once taken back (NFileDescriptorStore=0)" is 0 \
	systemctl show -P NFileDescriptorStore $S
# restart with memfds: 128 KiB bytes args travel as memfds (SCM_RIGHTS);
# requests read during a handoff go to the store with their memfds
# ("attach-N") and the next arbiter serves them. 5 restarts; every echo
# compared, no connection error, no shutting-down answer.
rm -f /tmp/memfd.stop
"$T/dirty-sd-load" --clients 4 --threads 2 --slow-every 10 --bytes 131072 /tmp/memfd.stop \
	> /tmp/memfd.out 2>&1 &
loadpid=$!
sleep 1
restarts=0
for _ in $(seq 5); do
	next=$(($(date +%s%N) / 1000000 + 2500))
	timeout 60 systemctl restart $S && restarts=$((restarts + 1))
	while [ $(($(date +%s%N) / 1000000)) -lt $next ]; do sleep 0.1; done
done
sleep 1
touch /tmp/memfd.stop
wait $loadpid
sed 's/^/# /' /tmp/memfd.out
read -r calls errors lost clients_lost <<< "$(sed -n \
	's/^total: \([0-9]*\) calls, \([0-9]*\) error answers, \([0-9]*\) connection errors, \([0-9]*\) clients.*/\1 \2 \3 \4/p' \
	/tmp/memfd.out)"
shut=$(sed -n 's/^shutting-down answers: \([0-9]*\)$/\1/p' /tmp/memfd.out)
check "restart with memfds: 5 restarts, ${calls:-?} calls of 128 KiB echoed" sh -c \
	"[ $restarts = 5 ] && [ '${calls:-0}' -gt 50 ]"
check "restart with memfds: ${lost:-?} connection errors, ${errors:-?} error answers (${shut:-?} shutting-down), target 0" \
	sh -c "[ '${lost:-x}' = 0 ] && [ '${errors:-x}' = 0 ] && [ '${shut:-x}' = 0 ]"
attached=$(journalctl -u $S --no-pager | sed -n 's/.*handoff: \([0-9]*\) memfds of requests read.*/\1/p' |
	awk '{ s += $1 } END { print s + 0 }')
check "restart with memfds: memfds of requests read during a handoff went to the store ($attached)" \
	sh -c "[ $attached -gt 0 ]"
check "restart with memfds: the store is empty once taken back (NFileDescriptorStore=0)" is 0 \
	systemctl show -P NFileDescriptorStore $S
# stop: the store is dropped, an idle client sees the connection closed
/usr/bin/python3 - > /tmp/idle.out 2>&1 <<'EOP' &
import socket, time
s = socket.socket(socket.AF_UNIX)
s.connect("/run/dirty-arbiter.sock")
s.settimeout(60)
start = time.monotonic()
print("eof" if s.recv(1) == b"" else "data", round(time.monotonic() - start))
EOP
idlepid=$!
sleep 1
check "stop with a connection open: clean exit (Result=success)" sh -c \
	"timeout 90 systemctl stop $S && [ \$(systemctl show -P Result $S) = success ]"
wait $idlepid
check "stop: the idle client's connection is closed, not kept ($(cat /tmp/idle.out))" \
	grep -q '^eof' /tmp/idle.out
check "stop: nothing left in the fd store (NFileDescriptorStore=0)" is 0 \
	systemctl show -P NFileDescriptorStore $S
timeout 90 systemctl stop $S dirty-arbiter.socket

# unit mode: the documented drop-in and polkit rule, two workers of one thread
DROPIN=$(find "$DEST" -name unit-mode.conf -path '*unit-mode*' | head -n 1)
RULES=$(find "$DEST" -name dirty-arbiter-unit-mode.rules | head -n 1)
cp "${DROPIN#"$DEST"}" /etc/systemd/system/$S.d/unit-mode.conf
cp "${RULES#"$DEST"}" /etc/polkit-1/rules.d/
SYSUSERS=$(find "$DEST" -name dirty-arbiter-unit-mode.sysusers | head -n 1)
mkdir -p /etc/sysusers.d
cp "${SYSUSERS#"$DEST"}" /etc/sysusers.d/dirty-arbiter-unit-mode.conf
systemd-sysusers
write_conf 'echo:DirtyEchoApp;slow:DirtySlowApp' 2
systemctl daemon-reload
systemctl reset-failed $S 2>/dev/null
systemctl start dirty-arbiter.socket
check "unit mode: a call succeeds" is '"unit"' call echo:DirtyEchoApp echo '"unit"'
workers() { systemctl list-units --state=active --no-legend --plain 'dirty-worker@*' | awk '{print $1}' | sort | xargs; }
check "unit mode: list-units shows dirty-worker@1 and @2 active" waitfor 10 is \
	"dirty-worker@1.service dirty-worker@2.service" workers
check "unit mode: the workers are not the arbiter's children" sh -c \
	"! ps -o comm= --ppid \$(systemctl show -P MainPID $S) | grep -q dirty-worker"
check "unit mode: journal says worker 1 connected after the peer check" waitfor 5 sh -c \
	"journalctl -u $S --no-pager | grep -q 'worker 1 .*connected (peer credentials checked'"
check "unit mode: a worker outside its unit is refused (permission-denied)" sh -c \
	"$(find "$DEST" -name dirty-worker -type f | head -n 1 | sed "s|^$DEST||") \
	 --connect=/run/dirty-arbiter/workers.sock --worker-id=1 2>&1 | grep -q 'refused this worker: permission-denied'"
check "unit mode: the refusal is in the journal" waitfor 5 sh -c \
	"journalctl -u $S --no-pager | grep -q 'worker socket: rejected a connection from pid'"
# both workers busy with a slow call each; kill worker 1's main process
old1=$(systemctl show -P MainPID dirty-worker@1.service)
( call --timeout 20000 slow:DirtySlowApp sleep 4 > /tmp/slow1.out ) &
( call --timeout 20000 slow:DirtySlowApp sleep 4 > /tmp/slow2.out ) &
check "unit mode: two slow calls running" waitfor 5 is "2/2 workers ready, 2 running, 0 queued" \
	systemctl show -P StatusText $S
[ "${old1:-0}" -gt 1 ] && kill -KILL "$old1"
wait
check "unit mode: the killed worker's call got worker-lost, the other succeeded" sh -c \
	"cat /tmp/slow1.out /tmp/slow2.out | sort | tr '\n' ' ' | grep -q '^[^e].* error: worker-lost:'"
sed 's/^/# /' /tmp/slow1.out /tmp/slow2.out
new1() { p=$(systemctl show -P MainPID dirty-worker@1.service); [ "$p" != 0 ] && [ "$p" != "$old1" ] &&
	is "2/2 workers ready, 0 running, 0 queued" systemctl show -P StatusText $S; }
check "unit mode: a new dirty-worker@1.service comes up" waitfor 15 new1
check "unit mode: the next calls succeed (both workers)" sh -c \
	"for i in 1 2 3 4; do [ \"\$(timeout 30 '$CALL' echo:DirtyEchoApp echo \$i)\" = \$i ] || exit 1; done"
# restart in unit mode: the client connections and the workers are kept.
# 2 clients calling without pause (every 10th call a 0.2 s sleep) through
# 5 restarts; the workers' units must keep their main pids.
wpids() { echo $(systemctl show -P MainPID dirty-worker@1.service dirty-worker@2.service); }
before=$(wpids)
rm -f /tmp/unitload.stop
"$T/dirty-sd-load" --clients 2 --threads 2 --slow-every 10 /tmp/unitload.stop > /tmp/unitload.out 2>&1 &
loadpid=$!
sleep 1
pid=$(systemctl show -P MainPID $S)
restarts=0 same=0 stores=""
for _ in 1 2 3 4 5; do
	next=$(($(date +%s%N) / 1000000 + 2500))
	timeout 60 systemctl restart $S && restarts=$((restarts + 1))
	[ "$(wpids)" = "$before" ] && same=$((same + 1))
	waitfor 10 is "2/2 workers ready" sh -c "systemctl show -P StatusText $S | cut -d, -f1" >/dev/null
	stores="$stores $(systemctl show -P NFileDescriptorStore $S)"
	while [ $(($(date +%s%N) / 1000000)) -lt $next ]; do sleep 0.1; done
done
touch /tmp/unitload.stop
wait $loadpid
sed 's/^/# /' /tmp/unitload.out
echo "# worker main pids before: $before, after: $(wpids); fd store after each takeover:$stores"
check "unit mode: 5 systemctl restarts, a new main pid" sh -c \
	"[ $restarts = 5 ] && [ \$(systemctl show -P MainPID $S) != $pid ]"
check "unit mode: 2 clients calling through 5 restarts: 0 error answers, 0 connection errors" \
	grep -q '^total: [1-9][0-9]* calls, 0 error answers, 0 connection errors' /tmp/unitload.out
check "unit mode: dirty-worker@1 and @2 kept their main pids through every restart ($same of 5: $before)" \
	sh -c "[ $same = 5 ] && [ '$(wpids)' = '$before' ]"
kept=$(journalctl -u $S --no-pager | grep -c 'handoff: took back 2 workers from the fd store (2 kept, 0 replaced')
check "unit mode: each new arbiter took the 2 workers back, started none ($kept of 5)" sh -c "[ $kept -ge 5 ]"
check "unit mode: each new arbiter took its 2 client connections back" sh -c \
	"[ \$(journalctl -u $S --no-pager | grep -c 'took back 2 client connections') -ge 5 ]"
check "unit mode: the fd store is empty after each takeover (NFileDescriptorStore:$stores)" \
	sh -c "[ '$stores' = ' 0 0 0 0 0' ]"
check "unit mode: a call succeeds on the kept workers" is '"kept"' call echo:DirtyEchoApp echo '"kept"'
# a worker that dies while the arbiter restarts (SIGKILL while the next
# one is still in ExecStartPre=): systemd drops its connection from the
# store (it polls them), the next arbiter keeps the other worker and
# starts a new one in the dead one's place
printf '%s\n' '[Service]' 'ExecStartPre=/bin/sleep 2' > /etc/systemd/system/$S.d/70-slow-start.conf
systemctl daemon-reload
w2=$(systemctl show -P MainPID dirty-worker@2.service)
systemctl restart --no-block $S
waitfor 30 is activating systemctl is-active $S >/dev/null
kill -KILL "$(systemctl show -P MainPID dirty-worker@1.service)"
check "unit mode: a worker killed during the restart: the new arbiter keeps the other, starts one" \
	waitfor 30 sh -c "journalctl -u $S --no-pager | grep -q 'took back 1 workers from the fd store (1 kept, 0 replaced.*, 1 new'"
check "unit mode: both workers ready again, dirty-worker@2 the same process ($w2)" waitfor 20 sh -c \
	"[ \$(systemctl show -P MainPID dirty-worker@2.service) = $w2 ] && [ \"\$(systemctl show -P StatusText $S)\" = '2/2 workers ready, 0 running, 0 queued' ]"
check "unit mode: a call succeeds after it" is '"again"' call echo:DirtyEchoApp echo '"again"'
rm /etc/systemd/system/$S.d/70-slow-start.conf
systemctl daemon-reload
# a restart with other apps: the kept workers no longer match and are
# replaced as in a reload (new workers 3 and 4, the old ones leave)
write_conf 'echo:DirtyEchoApp' 2
check "unit mode: restart with another dirty_apps" timeout 60 systemctl restart $S
check "unit mode: the old workers are replaced by dirty-worker@3 and @4" waitfor 20 is \
	"dirty-worker@3.service dirty-worker@4.service" workers
check "unit mode: the journal says 2 replaced as in a reload" sh -c \
	"journalctl -u $S --no-pager | grep -q 'took back 2 workers from the fd store (0 kept, 2 replaced'"
check "unit mode: a call succeeds after the replacement" is '"new"' call echo:DirtyEchoApp echo '"new"'
check "unit mode: systemctl stop dirty-arbiter.service" timeout 90 systemctl stop $S dirty-arbiter.socket
check "unit mode: no dirty-worker@ unit active, no dirty-worker process" sh -c \
	"[ -z \"\$(systemctl list-units --state=active --no-legend 'dirty-worker@*')\" ] && ! pgrep -x dirty-worker >/dev/null"
check "unit mode: nothing left in the fd store after the stop" is 0 \
	systemctl show -P NFileDescriptorStore $S
check "unit mode: clean exit (Result=success)" is success systemctl show -P Result $S
rm -f /etc/systemd/system/$S.d/unit-mode.conf /etc/polkit-1/rules.d/dirty-arbiter-unit-mode.rules
systemctl daemon-reload
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
