#!/usr/bin/env bash
# Ensures that the local PostgreSQL (127.0.0.1:5432), MariaDB (127.0.0.1:3306)
# and Redis (127.0.0.1:6379) servers used by the tests are answering. A server
# that does not answer is started with the command that starts it on this kind
# of machine (no systemd), then waited for. Prints one line per server and
# exits non-zero, naming the server, if one cannot be reached.
#
# Environment: ENSURE_SERVERS_WAIT  seconds to wait for a started server (default 30)
set -euo pipefail

WAIT_SECONDS=${ENSURE_SERVERS_WAIT:-30}

postgres_up() {
	pg_isready -q -h 127.0.0.1 -p 5432 -t 2 >/dev/null 2>&1
}

# mysqladmin ping exits 0 whenever the server answers, even with "access denied".
mariadb_up() {
	timeout 5 mysqladmin --connect-timeout=2 --protocol=tcp -h127.0.0.1 -P3306 -uroot ping >/dev/null 2>&1
}

redis_up() {
	[ "$(timeout 3 redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]
}

postgres_start() {
	local version
	version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
	if [ -z "$version" ]; then
		echo "no cluster under /etc/postgresql" >&2
		return 1
	fi
	pg_ctlcluster --skip-systemctl-redirect "$version" main start
}

mariadb_start() {
	mkdir -p /run/mysqld &&
		chown mysql:mysql /run/mysqld &&
		start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- \
			--user=mysql --bind-address=127.0.0.1
}

redis_start() {
	mkdir -p /var/lib/redis /var/log/redis &&
		redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
			--dir /var/lib/redis --logfile /var/log/redis/ci.log
}

# ensure NAME ADDR: checks NAME, starts it if needed and waits for it.
ensure() {
	local name=$1 addr=$2 log deadline

	if "${name}_up"; then
		echo "$name: up (already running)"
		return 0
	fi

	# The output goes to a file, not a pipe: a daemon that kept a pipe open
	# would make the script wait for it.
	log=$(mktemp)
	if ! "${name}_start" </dev/null >"$log" 2>&1; then
		echo "$name: start command failed: $(tr '\n' ' ' <"$log")" >&2
	fi
	rm -f "$log"

	deadline=$((SECONDS + WAIT_SECONDS))
	until "${name}_up"; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "ensure-servers: $name does not answer on $addr after ${WAIT_SECONDS}s" >&2
			return 1
		fi
		sleep 0.5
	done

	echo "$name: started"
}

failed=()
ensure postgres 127.0.0.1:5432 || failed+=(postgres)
ensure mariadb 127.0.0.1:3306 || failed+=(mariadb)
ensure redis 127.0.0.1:6379 || failed+=(redis)

if [ "${#failed[@]}" -gt 0 ]; then
	echo "ensure-servers: not reachable: ${failed[*]}" >&2
	exit 1
fi
