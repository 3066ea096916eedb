#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# sandbox.sh: runs one command inside a throwaway container whose PID 1 is
# a real systemd (system instance, journald, D-Bus system bus), booted
# from the host's own OS seen through a RAM overlay, and always tears the
# container down again. Nothing written inside reaches the host's disk
# except through --bind.
#
# Usage: sandbox.sh [--bind DIR]... [--bind-ro DIR]... [--timeout S]
#                   [--save-journal FILE] -- COMMAND [ARG...]
#
# Exit status: COMMAND's; 124 when it ran out of time; 125 when the
# sandbox itself failed (not root, no usable cgroups, boot failed).
#
# Needs root, systemd-nspawn (package systemd-container, installed with
# apt-get when missing), dbus, and cgroup v2 or the v1 name=systemd
# hierarchy. How it works:
#  1. unshare -m: a private mount namespace, where a tmpfs holds an
#     overlayfs upper layer over the host's / (read-only lower layer), so
#     the container boots the host's OS and writes only to RAM. Per boot:
#     a new machine-id, an empty fstab, no timers, journald without rate
#     limits, and a small target (basic.target + dbus.service).
#  2. systemd-nspawn --boot --private-network --register=no --keep-unit,
#     in a cgroup of its own below the caller's; with PR_SET_PDEATHSIG, so
#     a killed harness still stops the container.
#  3. Waits, bounded, for `systemctl is-system-running --wait` and the bus.
#  4. Runs COMMAND in all the container's namespaces (nsenter --no-fork +
#     unshare --fork --kill-child: nsenter's own fork would mirror the
#     SIGSTOP that systemd-shutdown sends everything onto itself).
#  5. Stops the container (SIGTERM to nspawn; SIGKILL after 15 s) and
#     removes its cgroups and temporary directory.
set -u -o pipefail
PROG=dirty-sandbox
SELF=$(readlink -f -- "${BASH_SOURCE[0]}")
die() { echo "$PROG: error: $*" >&2; exit 125; }
info() { echo "$PROG: $*" >&2; }
now_ms() { local s; s=$(date +%s%N); echo $(( s / 1000000 )); }

# ---- inner part: in the private mount namespace, becomes systemd-nspawn ----
if [ "${1:-}" = --inner ]; then
	state=$2 cgdirs=$3; shift 3
	set -e
	mkdir -p /run/systemd/nspawn
	mount -t tmpfs -o mode=0755,size=16m $PROG-run /run/systemd/nspawn
	m=$state/mnt
	mount -t tmpfs -o mode=0755,size=4G $PROG-overlay "$m"
	mkdir "$m/upper" "$m/work" "$m/root"
	mount -t overlay $PROG-root -o "lowerdir=/,upperdir=$m/upper,workdir=$m/work" "$m/root"
	r=$m/root
	systemd-id128 new > "$r/etc/machine-id"
	: > "$r/etc/fstab"
	rm -rf "$r/etc/systemd/system/timers.target.wants"
	mkdir -p "$r/etc/systemd/system" "$r/etc/systemd/journald.conf.d"
	printf '%s\n' '[Unit]' 'Description=dirty-arbiter test sandbox' 'Requires=basic.target' \
		'Wants=dbus.service' 'After=basic.target dbus.service' 'AllowIsolate=yes' \
		> "$r/etc/systemd/system/$PROG.target"
	printf '%s\n' '[Journal]' 'RateLimitIntervalSec=0' \
		> "$r/etc/systemd/journald.conf.d/50-$PROG.conf"
	IFS='|' read -r -a cgs <<< "$cgdirs"
	for d in "${cgs[@]}"; do mkdir -p "$d"; echo "$BASHPID" > "$d/cgroup.procs"; done
	set +e
	exec setpriv --pdeathsig TERM -- systemd-nspawn "$@" --directory="$r" "systemd.unit=$PROG.target"
	exit 125
fi

BINDS=() TIMEOUT=180 SAVE_JOURNAL=""
while [ $# -gt 0 ]; do
	case $1 in
	--bind) BINDS+=("--bind=$(readlink -f -- "$2")"); shift 2 ;;
	--bind-ro) BINDS+=("--bind-ro=$(readlink -f -- "$2")"); shift 2 ;;
	--timeout) TIMEOUT=$2; shift 2 ;;
	--save-journal) SAVE_JOURNAL=$2; shift 2 ;;
	--) shift; break ;;
	*) die "unknown option $1" ;;
	esac
done
[ $# -gt 0 ] || die "no command given"
[ "$(id -u)" = 0 ] || die "must run as root"

# ---- dependencies ----
missing=()
command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
command -v dbus-daemon >/dev/null || missing+=(dbus)
if [ ${#missing[@]} -gt 0 ]; then
	command -v apt-get >/dev/null || die "missing ${missing[*]}, and no apt-get to install them"
	info "installing ${missing[*]}"
	apt=(env DEBIAN_FRONTEND=noninteractive apt-get -y -qq -o DPkg::Lock::Timeout=300)
	if ! timeout 600 "${apt[@]}" install --no-install-recommends "${missing[@]}" >/tmp/$PROG-apt.log 2>&1; then
		timeout 600 "${apt[@]}" update >>/tmp/$PROG-apt.log 2>&1
		timeout 600 "${apt[@]}" install --no-install-recommends "${missing[@]}" >>/tmp/$PROG-apt.log 2>&1 ||
			{ tail -n 20 /tmp/$PROG-apt.log >&2; die "apt-get install ${missing[*]} failed"; }
	fi
fi

# ---- a private cgroup for this run, below the caller's ----
NAME=$PROG-$(tr -dc 'a-z0-9' < /dev/urandom | head -c 8)
CGDIRS=()
if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
	CGDIRS=("/sys/fs/cgroup$(sed -n 's/^0::\(.*\)$/\1/p' /proc/self/cgroup | sed 's|/$||')/$NAME")
elif [ "$(stat -fc %T /sys/fs/cgroup/systemd 2>/dev/null)" = cgroupfs ]; then
	CGDIRS=("/sys/fs/cgroup/systemd$(sed -n 's/^[0-9]*:name=systemd:\(.*\)$/\1/p' /proc/self/cgroup | sed 's|/$||')/$NAME")
	[ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ] &&
		CGDIRS+=("/sys/fs/cgroup/unified$(sed -n 's/^0::\(.*\)$/\1/p' /proc/self/cgroup | sed 's|/$||')/$NAME")
else
	die "no cgroup v2 on /sys/fs/cgroup and no v1 name=systemd hierarchy"
fi

STATE=$(mktemp -d "/tmp/$PROG.XXXXXX") || die "mktemp failed"
mkdir "$STATE/mnt"
NSPAWN_PID="" LEADER="" CMD_PID="" TORN=0
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null &&
	! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
inside() { nsenter --target "$LEADER" --all -- "$@"; }

teardown() {
	[ $TORN = 1 ] && return 0
	TORN=1
	trap '' INT TERM HUP
	if [ -n "$SAVE_JOURNAL" ] && alive "$LEADER"; then
		timeout 30 nsenter --target "$LEADER" --all -- journalctl -b --no-pager \
			-o short-precise > "$SAVE_JOURNAL" 2>&1
	fi
	alive "$CMD_PID" && kill -TERM "$CMD_PID" 2>/dev/null
	if alive "$NSPAWN_PID"; then
		kill -TERM "$NSPAWN_PID" 2>/dev/null
		local end=$(( $(now_ms) + 15000 ))
		while alive "$NSPAWN_PID" && [ "$(now_ms)" -lt $end ]; do
			# systemd-shutdown stops everything once; keep the command going
			alive "$CMD_PID" && kill -CONT "$CMD_PID" 2>/dev/null
			sleep 0.1
		done
		if alive "$NSPAWN_PID"; then
			info "warning: the container did not stop within 15 s: killing it"
			alive "$LEADER" && kill -KILL "$LEADER" 2>/dev/null
			kill -KILL "$NSPAWN_PID" 2>/dev/null
		fi
	fi
	alive "$CMD_PID" && kill -KILL "$CMD_PID" 2>/dev/null
	wait 2>/dev/null
	local d _
	for d in "${CGDIRS[@]}"; do
		for _ in $(seq 1 50); do
			[ -d "$d" ] || break
			find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
			[ -d "$d" ] && sleep 0.1
		done
		[ -d "$d" ] && info "warning: could not remove cgroup $d"
	done
	mountpoint -q "$STATE/mnt" || rm -rf --one-file-system "$STATE"
}
trap teardown EXIT
trap 'info "interrupted"; exit 130' INT
trap 'info "terminated"; exit 143' TERM HUP

boot_fail() {
	echo "$PROG: error: $*" >&2
	tail -n 30 "$STATE/console.log" 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g' >&2
	exit 125
}

T0=$(now_ms)
NSPAWN_ARGS=(--quiet --boot --register=no --keep-unit "--machine=$NAME" --link-journal=no
	--console=read-only --private-network --setenv=SYSTEMD_COLORS=0 "${BINDS[@]}")
unshare --mount --propagation private -- bash "$SELF" --inner "$STATE" \
	"$(IFS='|'; echo "${CGDIRS[*]}")" "${NSPAWN_ARGS[@]}" </dev/null >"$STATE/console.log" 2>&1 &
NSPAWN_PID=$!
DEADLINE=$(( T0 + 60000 ))
while [ -z "$LEADER" ]; do
	alive "$NSPAWN_PID" || boot_fail "systemd-nspawn exited during boot"
	for c in $(ps -o pid= --ppid "$NSPAWN_PID" 2>/dev/null); do
		[ "$(awk '/^NSpid:/{print $NF}' "/proc/$c/status" 2>/dev/null)" = 1 ] &&
			[ "$(cat "/proc/$c/comm" 2>/dev/null)" = systemd ] && LEADER=$c
	done
	[ "$(now_ms)" -ge $DEADLINE ] && boot_fail "no systemd PID 1 within 60 s"
	[ -z "$LEADER" ] && sleep 0.05
done
while :; do
	alive "$LEADER" || boot_fail "the container's systemd exited during boot"
	left=$(( (DEADLINE - $(now_ms)) / 1000 ))
	[ $left -ge 1 ] || boot_fail "not booted within 60 s"
	st=$(timeout "$left" nsenter --target "$LEADER" --all -- systemctl is-system-running --wait 2>/dev/null)
	case $st in running|degraded) break ;; maintenance|stopping) boot_fail "systemd is $st" ;; esac
	sleep 0.1
done
until timeout 5 nsenter --target "$LEADER" --all -- busctl --system --timeout=2 call \
	org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus GetId >/dev/null 2>&1; do
	[ "$(now_ms)" -ge $DEADLINE ] && boot_fail "the D-Bus system bus did not answer within 60 s"
	sleep 0.1
done
info "container $NAME booted in $(( $(now_ms) - T0 )) ms ($st)"

exec 3<&0
nsenter --target "$LEADER" --all --no-fork -- unshare --fork --kill-child -- \
	env -u NOTIFY_SOCKET -u LISTEN_PID -u LISTEN_FDS -u LISTEN_FDNAMES -u WATCHDOG_PID \
	-u WATCHDOG_USEC -u INVOCATION_ID -u JOURNAL_STREAM -u XDG_RUNTIME_DIR \
	-u DBUS_SESSION_BUS_ADDRESS --chdir=/ -- DIRTY_SANDBOX=1 "$@" <&3 3<&- &
CMD_PID=$!
exec 3<&-
END=$(( $(now_ms) + TIMEOUT * 1000 )) RC=""
while alive "$CMD_PID"; do
	if [ "$(now_ms)" -ge $END ]; then
		info "error: the command ran out of time (${TIMEOUT} s)"
		timeout 10 nsenter --target "$LEADER" --all -- journalctl -b --no-pager -n 80 >&2
		RC=124
		break
	fi
	sleep 0.1
done
if [ -z "$RC" ]; then
	wait "$CMD_PID"
	RC=$?
fi
[ "$RC" = 124 ] || CMD_PID=""
teardown
info "done in $(( $(now_ms) - T0 )) ms"
exit "$RC"
