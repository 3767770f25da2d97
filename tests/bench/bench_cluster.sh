# Sourced by the benchmarks from the repository's top directory:
#   bench_cluster DIR PORT [CLEANUP]
# builds and installs mtl, starts a fresh private cluster in DIR on PORT,
# stopped on exit (after running the CLEANUP command, if given), exports
# PGHOST, PGPORT and PGUSER, and defines q: psql that stops at the first error.
bench_cluster() {
	local dir=$1 port=$2 sudo=""
	[ "$(id -u)" -ne 0 ] && sudo="sudo"
	make -s
	$sudo make -s install >/dev/null
	# shellcheck disable=SC2064  # the trap keeps this call's values
	trap "scripts/cluster.sh stop '$dir' >/dev/null 2>&1 || true; ${3:-true}" EXIT
	scripts/cluster.sh stop "$dir" >/dev/null 2>&1 || true
	rm -rf "$dir"
	scripts/cluster.sh start "$dir" "$port" >/dev/null
	export PGHOST=$dir PGPORT=$port PGUSER=postgres
}
q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
