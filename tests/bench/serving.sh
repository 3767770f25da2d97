#!/bin/bash
# Serving benchmark: one-row statements as an application sends them, through
# pgbench (1 client, loopback TCP), side by side in one run:
#   - mtl_predict by name (the registry's deployed version, cached per backend)
#   - mtl_predict with the model read from a table in the statement (decoded
#     once per statement: the per-call-site cache lives for one statement)
#   - mtl_recommend by name, top 20 of the 800-item catalog
# and mtl_update against a full retrain (tests/bench/update.sql), and the
# cold-start figures (tests/bench/coldstart.sql).
#
#   tests/bench/serving.sh [seconds per run]     (default 10)
#
# Prints figures; asserts nothing. Builds and installs mtl, starts a
# throwaway cluster on port 5495 and stops it at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-10}
dir=/tmp/mtl-serving
port=5495
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
scripts/install_deps.sh >/dev/null
make -s
$sudo make -s install >/dev/null
scripts/cluster.sh start "$dir" "$port"
work=$(mktemp -d /tmp/mtl-serving-data.XXXXXX)
trap 'scripts/cluster.sh stop "$dir"; rm -rf "$dir" "$work"' EXIT
export PGHOST=$dir PGPORT=$port PGUSER=postgres
run() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }
pgbench=/usr/lib/postgresql/15/bin/pgbench


run <<'SQL'
CREATE EXTENSION mtl;
CREATE EXTENSION IF NOT EXISTS mtl_demo;
SET client_min_messages = warning;
SELECT mtl_demo_shop('shop', users => 3000, items => 800, impressions => 200000, seed => 0.42);
SELECT mtl_fit('shop', $$SELECT i.user_id, i.item_id,
		ARRAY[i.clicked, CASE WHEN i.clicked = 1 THEN i.purchased END]::float8[],
		to_jsonb(u) - 'user_id', to_jsonb(it) - 'item_id'
	FROM shop.impressions i JOIN shop.users u USING (user_id) JOIN shop.items it USING (item_id)$$,
	'{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "cvr", "type": "binary", "given": "ctr"}]}');
CREATE TABLE models AS SELECT name, model FROM mtl_models;
SQL
echo "model: $(run -c "SELECT octet_length(model) FROM models") bytes"

bench() {					# label, statement
	printf '\\set u random(1, 3000)\n\\set i random(1, 800)\n%s\n' "$2" > "$work/script.sql"
	"$pgbench" -h 127.0.0.1 -n -c 1 -T "$seconds" -f "$work/script.sql" postgres > "$work/out" 2>&1 ||
		{ cat "$work/out"; exit 1; }
	printf '%-48s latency %7s ms, %6s statements/s\n' "$1" \
		"$(awk '/latency average/ {print $4}' "$work/out")" "$(awk '/^tps/ {print int($3)}' "$work/out")"
}
bench "mtl_predict('shop', user, item)" "SELECT mtl_predict('shop', :u, :i);"
bench "mtl_predict(model from a table, user, item)" "SELECT mtl_predict(model, :u, :i) FROM models WHERE name = 'shop';"
bench "mtl_recommend('shop', user, 20, 'ctr*cvr')" "SELECT * FROM mtl_recommend('shop', :u, 20, 'ctr*cvr');"

echo "mtl_update vs a full retrain (tests/bench/update.sql):"
run -f tests/bench/update.sql
echo "cold start (tests/bench/coldstart.sql):"
run -f tests/bench/coldstart.sql
