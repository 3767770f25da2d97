#!/bin/bash
# Every test of mtl, on a fresh Debian 12 machine: installs what is missing,
# builds, runs the C unit tests, starts a throwaway PostgreSQL cluster as the
# postgres user, runs pg_regress and the cluster tests against it, runs the
# fuzzer briefly, stops the cluster, and runs the sanitizer checks.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"

scripts/install_deps.sh
make -s
$sudo make -s install
make -s unitcheck

tmp=$(mktemp -d /tmp/mtl-test.XXXXXX)
chmod 755 "$tmp"
port=$((50000 + RANDOM % 10000))
stop() { scripts/cluster.sh stop "$tmp"; rm -rf "$tmp"; }
trap stop EXIT
scripts/cluster.sh start "$tmp" "$port"
export PGHOST=$tmp PGPORT=$port PGUSER=postgres

if ! make -s installcheck; then
	cat regression.diffs
	exit 1
fi
for t in tests/cluster/*.sh; do
	echo "== $t"
	"$t"
done
tests/fuzz/run.sh 30
scripts/sanitize.sh
echo "all tests passed"
