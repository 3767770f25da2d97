#!/bin/bash
# sqlsmith (Debian's) against a database with mtl, the demo shop and a
# registry: random queries that call mtl's functions and aggregates with
# whatever arguments the grammar finds, as a role without privileges beyond
# PUBLIC's and mtl_scorer's. Errors are expected; a backend crash is a
# failure. Prints the count of queries, errors and crashes.
# Needs PGHOST/PGPORT/PGUSER of a running cluster with mtl installed, whose
# server log is $PGHOST/server.log (scripts/cluster.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
queries=${MTL_SQLSMITH_QUERIES:-3000}
db=mtl_sqlsmith_test
if ! command -v sqlsmith >/dev/null; then
	scripts/install_deps.sh sqlsmith >/dev/null 2>&1 || true
fi
if ! command -v sqlsmith >/dev/null; then
	echo "SKIPPED (sqlsmith): not installed and cannot be installed"
	exit 0
fi
psql -X -q -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
trap 'psql -X -q -c "DROP DATABASE IF EXISTS $db" -c "DROP ROLE IF EXISTS mtl_smith" >/dev/null 2>&1 || true' EXIT
psql -X -q -v ON_ERROR_STOP=1 -d $db >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION mtl;
CREATE EXTENSION mtl_demo;
SELECT mtl_demo_shop('shop', 200, 50, 5000, 0.9);
CREATE TABLE models AS
SELECT 'demo'::text AS name, mtl_train(i.user_id, i.item_id, ARRAY[i.clicked, CASE WHEN i.clicked = 1 THEN i.purchased END]::float8[],
	to_jsonb(u) - 'user_id', to_jsonb(it) - 'item_id', jsonb_build_object('scenario', i.scenario),
	'{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "cvr", "type": "binary", "given": "ctr"}], "scenario": "scenario", "epochs": 2}') AS model
FROM shop.impressions i JOIN shop.users u USING (user_id) JOIN shop.items it USING (item_id);
SELECT mtl_registry_add('demo', model, NULL, NULL, NULL) FROM models;
DROP ROLE IF EXISTS mtl_smith;
CREATE ROLE mtl_smith LOGIN;
GRANT mtl_scorer TO mtl_smith;
GRANT USAGE ON SCHEMA shop TO mtl_smith;
GRANT SELECT ON ALL TABLES IN SCHEMA shop TO mtl_smith;
GRANT SELECT ON models TO mtl_smith;
SQL
log=$PGHOST/server.log
before=$(grep -c "terminated by signal" "$log" || true)
sqlsmith --target="host=$PGHOST port=$PGPORT dbname=$db user=mtl_smith options='-c statement_timeout=2000'" \
	--seed=42 --max-queries="$queries" --exclude-catalog >/dev/null 2>&1 || true
after=$(grep -c "terminated by signal" "$log" || true)
crashes=$((after - before))
echo "sqlsmith: $queries random queries as a role with PUBLIC's and mtl_scorer's rights; backend crashes: $crashes"
[ "$crashes" -eq 0 ] || { grep -B2 -A5 "terminated by signal" "$log" | tail -30; echo "FAIL: sqlsmith crashed a backend"; exit 1; }
