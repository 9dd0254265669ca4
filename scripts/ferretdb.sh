#!/usr/bin/env bash
# Manages a FerretDB (MongoDB-compatible server on SQLite files) for tests.
#
#   scripts/ferretdb.sh start   ensure one answers on $FERRETDB_ADDR and print its URI
#   scripts/ferretdb.sh stop    stop the one this script started
#
# start reuses any MongoDB-compatible server already answering on the address
# (checked with a real hello handshake). Otherwise it builds devstack/cmd/ferretdb
# into bin/ferretdb and starts it fully detached, with its data under
# .tmp/ferretdb-data and its log in .tmp/ferretdb.log, and waits for it.
# The URI is the only line written to stdout, so URI=$(scripts/ferretdb.sh start)
# works.
#
# Environment: FERRETDB_ADDR  listen address (default 127.0.0.1:27017)
#              FERRETDB_WAIT  seconds to wait for a started server (default 30)
#              FERRETDB_GOGC  GOGC of the started server (default 400)
#
# FerretDB v1 decodes every stored document of a collection for each query but an
# _id lookup (it uses no index), allocating heavily: with the default GOGC=100 a
# third of its CPU goes to the garbage collector. Serving the same notification
# list workload (1,000 documents per query, 16 clients), bin/ferretdb used 21.6 s
# of CPU with GOGC=400 against 32.4 s with the default, for 177 MB resident
# instead of 55 MB.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ADDR=${FERRETDB_ADDR:-127.0.0.1:27017}
WAIT_SECONDS=${FERRETDB_WAIT:-30}
GC_PERCENT=${FERRETDB_GOGC:-400}
TMP_DIR=$ROOT/.tmp
# A server on another address gets files of its own, so two never share them.
SUFFIX=""
if [ "$ADDR" != "127.0.0.1:27017" ]; then
	SUFFIX=-$(printf '%s' "$ADDR" | tr -c 'A-Za-z0-9' '_')
fi
PID_FILE=$TMP_DIR/ferretdb$SUFFIX.pid
LOG_FILE=$TMP_DIR/ferretdb$SUFFIX.log
DATA_DIR=$TMP_DIR/ferretdb-data$SUFFIX
BIN=$ROOT/bin/ferretdb
URI="mongodb://$ADDR/"

log() {
	echo "ferretdb.sh: $*" >&2
}

build() {
	mkdir -p "$ROOT/bin"
	(cd "$ROOT" && GOWORK=off go -C devstack build -o ../bin/ferretdb ./cmd/ferretdb)
}

# answers: a MongoDB-compatible server completes a hello handshake on ADDR.
answers() {
	"$BIN" -ping "$ADDR" -ping-timeout 2s 2>/dev/null
}

# port_open: anything accepts TCP connections on ADDR.
port_open() {
	local host=${ADDR%:*} port=${ADDR##*:}
	host=${host#[}
	host=${host%]}
	timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$port" 2>/dev/null
}

# our_pid: prints the pid from the pid file if that process is still the
# ferretdb this script started for ADDR.
our_pid() {
	local pid
	[ -f "$PID_FILE" ] || return 1
	pid=$(cat "$PID_FILE")
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "ferretdb -listen $ADDR " || return 1
	echo "$pid"
}

start() {
	local pid deadline

	build

	if answers; then
		if pid=$(our_pid); then
			log "already running on $ADDR (pid $pid)"
		else
			log "reusing the MongoDB-compatible server already answering on $ADDR"
		fi
		echo "$URI"
		return 0
	fi

	if ! pid=$(our_pid); then
		if port_open; then
			log "something that is not a MongoDB-compatible server listens on $ADDR"
			return 1
		fi

		rm -f "$PID_FILE"
		mkdir -p "$TMP_DIR" "$DATA_DIR"

		# setsid and nohup detach it from this shell's session and hangups;
		# no inherited stdin/stdout/stderr, so nobody waits on its pipes.
		GOGC=$GC_PERCENT setsid nohup "$BIN" -listen "$ADDR" -sqlite-dir "$DATA_DIR" </dev/null >>"$LOG_FILE" 2>&1 &
		pid=$!
		echo "$pid" >"$PID_FILE"
		log "started pid $pid on $ADDR (log $LOG_FILE)"
	fi

	deadline=$((SECONDS + WAIT_SECONDS))
	until answers; do
		if ! kill -0 "$pid" 2>/dev/null; then
			log "FerretDB exited; last lines of $LOG_FILE:"
			tail -n 20 "$LOG_FILE" >&2 || true
			rm -f "$PID_FILE"
			return 1
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			log "FerretDB does not answer on $ADDR after ${WAIT_SECONDS}s (see $LOG_FILE)"
			return 1
		fi
		sleep 0.2
	done

	echo "$URI"
}

stop() {
	local pid deadline

	if ! pid=$(our_pid); then
		rm -f "$PID_FILE"
		log "no FerretDB started by this script is running"
		return 0
	fi

	kill -TERM "$pid"
	deadline=$((SECONDS + 10))
	while kill -0 "$pid" 2>/dev/null; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			log "pid $pid did not stop after SIGTERM, killing it"
			kill -KILL "$pid" 2>/dev/null || true
			break
		fi
		sleep 0.1
	done

	rm -f "$PID_FILE"
	log "stopped pid $pid"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*)
	echo "usage: $0 start|stop" >&2
	exit 2
	;;
esac
