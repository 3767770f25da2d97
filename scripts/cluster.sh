#!/bin/bash
# A private PostgreSQL 15 cluster for tests and the demo, run as the postgres
# user when invoked as root (the server refuses to run as root).
#   scripts/cluster.sh start DIR PORT   initdb into DIR/data if needed, start on PORT, socket in DIR
#   scripts/cluster.sh stop DIR
# MTL_PG_OPTS adds server options (e.g. "-c shared_preload_libraries=citus").
# It listens on its socket in DIR and on loopback TCP (pgbench tests); initdb's
# trust authentication means any local user can connect: throwaway data only.
set -euo pipefail
BIN=/usr/lib/postgresql/15/bin
cmd=$1
dir=$2

as_owner() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
start)
	port=$3
	mkdir -p "$dir"
	[ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
	if [ ! -f "$dir/data/PG_VERSION" ]; then
		as_owner "$BIN/initdb" -D "$dir/data" -A trust -U postgres --no-sync >"$dir/initdb.log" 2>&1 ||
			{ cat "$dir/initdb.log"; exit 1; }
	fi
	as_owner "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start \
		-o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_parallel_workers_per_gather=2 ${MTL_PG_OPTS:-}" \
		>/dev/null || { cat "$dir/server.log"; exit 1; }
	;;
stop)
	as_owner "$BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
	;;
*)
	echo "usage: $0 start DIR PORT | stop DIR" >&2
	exit 2
	;;
esac
