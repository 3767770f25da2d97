#!/bin/bash
# Upgrade from 0.1: install mtl 0.1 from its released script, train and
# register models (one through 0.1's registry, one stored by the 0.1 library:
# tests/data/model_v1.mtl), ALTER EXTENSION mtl UPDATE, and check that
# - every stored model scores exactly as before, by bytes and by name;
# - the registry's rows, versions and deployments survive;
# - the registry is no longer readable by PUBLIC, and the demo generator left
#   mtl (its schema and data stay);
# - the upgraded extension's objects and privileges equal a fresh 0.2 install.
# Needs PGHOST/PGPORT/PGUSER of a running cluster with mtl installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
db=mtl_upgrade_test
fresh=mtl_upgrade_fresh
psql -X -q -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" \
	-c "DROP DATABASE IF EXISTS $fresh" -c "CREATE DATABASE $fresh"
trap 'psql -X -q -c "DROP DATABASE IF EXISTS $db" -c "DROP DATABASE IF EXISTS $fresh"' EXIT
run() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }
fail() { echo "FAIL: $*"; exit 1; }
v1_hex=$(od -An -tx1 -v tests/data/model_v1.mtl | tr -d ' \n')

run -d $db -v v1="$v1_hex" >/dev/null <<'SQL'
CREATE EXTENSION mtl VERSION '0.1';
SET client_min_messages = warning;
SELECT mtl_demo_shop('shop', 200, 60, 8000, 0.3);
SELECT mtl_fit('up', 'SELECT user_id, item_id, ARRAY[clicked, CASE WHEN clicked = 1 THEN purchased END]::float8[],
	to_jsonb(u) - ''user_id'', to_jsonb(it) - ''item_id'' FROM shop.impressions JOIN shop.users u USING (user_id)
	JOIN shop.items it USING (item_id)',
	'{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "cvr", "type": "binary", "given": "ctr"}], "epochs": 2}');
SELECT mtl_registry_add('old', decode(:'v1', 'hex'), NULL, NULL, NULL);
SELECT mtl_registry_add('old', decode(:'v1', 'hex'), NULL, NULL, NULL);
SELECT mtl_deploy('old', 2);
CREATE TABLE before AS
SELECT m.name, m.version, u AS user_id, i AS item_id, mtl_predict(m.model, u, i) AS by_bytes,
	   CASE WHEN m.version = mtl_deployed_version(m.name) THEN mtl_predict(m.name, u, i) END AS by_name
FROM mtl_models m, generate_series(1, 40) u, generate_series(1, 30) i;
CREATE TABLE registry_before AS SELECT name, version, md5(model) AS model, info, metrics FROM mtl_models;
SQL
[ "$(run -d $db -c "SELECT has_table_privilege('public', 'mtl_models', 'SELECT')")" = f ] ||
	fail "the 0.1 install script lets every role read the registry"
# a database installed from 0.1 as first released, whose script granted the
# registry to every role: the update must take that back
run -d $db -c "GRANT SELECT ON mtl_models, mtl_deployments, mtl_versions TO PUBLIC"

run -d $db -c "ALTER EXTENSION mtl UPDATE"
[ "$(run -d $db -c "SELECT extversion FROM pg_extension WHERE extname = 'mtl'")" = 0.2 ] || fail "not updated to 0.2"

same=$(run -d $db -c "SELECT count(*) FILTER (WHERE b.by_bytes = mtl_predict(m.model, b.user_id, b.item_id)
		AND b.by_name IS NOT DISTINCT FROM CASE WHEN b.by_name IS NOT NULL THEN mtl_predict(b.name, b.user_id, b.item_id) END)
	|| '/' || count(*) FROM before b JOIN mtl_models m USING (name, version)")
echo "scores identical after the update: $same"
[ "${same%/*}" = "${same#*/}" ] || fail "scores changed"
kept=$(run -d $db -c "SELECT count(*) FROM registry_before r JOIN mtl_models m USING (name, version)
	WHERE r.model = md5(m.model) AND r.info = m.info AND r.metrics = m.metrics")
[ "$kept" = 3 ] || fail "registry rows changed: $kept of 3 kept"
[ "$(run -d $db -c "SELECT mtl_deployed_version('old') || ',' || mtl_deployed_version('up')")" = "2,1" ] ||
	fail "deployments changed"
[ "$(run -d $db -c "SELECT has_table_privilege('public', 'mtl_models', 'SELECT') OR has_table_privilege('public', 'mtl_versions', 'SELECT')")" = f ] ||
	fail "the registry is still readable by PUBLIC"
[ "$(run -d $db -c "SELECT count(*) FROM pg_proc WHERE proname = 'mtl_demo_shop'")" = 0 ] ||
	fail "mtl_demo_shop is still installed with mtl"
[ "$(run -d $db -c "SELECT count(*) FROM shop.impressions")" = 8000 ] || fail "the demo data was touched"

# the upgraded extension equals a fresh install: objects, their definitions and privileges
run -d $fresh -c "CREATE EXTENSION mtl"
catalog() {
	run -d "$1" <<'SQL'
SELECT pg_describe_object(classid, objid, 0) || ' ' || coalesce(
	(SELECT md5(pg_get_functiondef(p.oid)) || ' ' || coalesce(p.proacl::text, 'default') FROM pg_proc p
	  WHERE classid = 'pg_proc'::regclass AND p.oid = objid AND p.prokind <> 'a'),
	(SELECT coalesce(c.relacl::text, 'default') || ' ' || coalesce(md5(pg_get_viewdef(c.oid)), '')
	   FROM pg_class c WHERE classid = 'pg_class'::regclass AND c.oid = objid), '')
FROM pg_depend WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'mtl')
ORDER BY 1;
SQL
}
if ! diff <(catalog $db) <(catalog $fresh); then
	fail "the upgraded extension differs from a fresh 0.2 install (lines above)"
fi
echo "upgrade from 0.1: $(catalog $db | wc -l) objects equal to a fresh install; registry kept; scores identical"
