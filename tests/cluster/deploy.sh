#!/bin/bash
# Deploy visibility across sessions: 8 sessions score by name while another
# deploys and rolls back. Every statement that starts after a deploy returned
# scores with that version; a statement never mixes versions; no errors.
# Needs PGHOST/PGPORT/PGUSER of a running cluster with mtl installed.
set -euo pipefail
db=mtl_deploy_test
sessions=8
switches=${MTL_DEPLOY_SWITCHES:-12}
psql -X -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
work=$(mktemp -d /tmp/mtl-deploy.XXXXXX)
cleanup() {
	kill $(jobs -p) 2> /dev/null || true
	wait
	psql -X -q -c "DROP DATABASE IF EXISTS $db"
	rm -rf "$work"
}
trap cleanup EXIT
run() { psql -X -q -A -t -v ON_ERROR_STOP=1 -d $db "$@"; }

run <<'SQL'
CREATE EXTENSION mtl;
CREATE EXTENSION IF NOT EXISTS mtl_demo;
SET client_min_messages = warning;
SELECT mtl_demo_shop('shop', 300, 100, 15000, 0.3);
\set query 'SELECT user_id, item_id, ARRAY[clicked]::float8[] FROM shop.impressions'
SELECT mtl_fit('dep', :'query', '{"tasks": [{"name": "ctr", "type": "binary"}], "epochs": 2, "seed": 1}');
SELECT mtl_fit('dep', :'query', '{"tasks": [{"name": "ctr", "type": "binary"}], "epochs": 2, "seed": 2}');
-- each version's score of one pair tells which version scored a statement
CREATE TABLE version_score AS
SELECT version, (mtl_predict(model, 1, 2))[1] AS score FROM mtl_models WHERE name = 'dep';
CREATE TABLE deploy_log (started timestamptz, finished timestamptz, version int);
CREATE UNLOGGED TABLE score_log (pid int, started timestamptz, low float8, high float8);
INSERT INTO deploy_log VALUES ('-infinity', clock_timestamp(), 1);
SQL
[ "$(run -c "SELECT count(DISTINCT score) FROM version_score")" = 2 ] ||
	{ echo "FAIL: the two versions score the probe pair alike"; exit 1; }

# scoring sessions: each statement scores the probe pair 5,000 times
for s in $(seq $sessions); do
	(
		for i in $(seq 400); do
			echo "INSERT INTO score_log SELECT pg_backend_pid(), statement_timestamp(), min(x), max(x)
				  FROM (SELECT (mtl_predict('dep', 1, 2))[1] AS x FROM generate_series(1, 5000)) t;"
		done | run > "$work/session$s.out" 2>&1
		echo $? > "$work/session$s.rc"
	) &
done

# the deploying session: switch versions, logging when each call started and returned
sleep 0.5
for i in $(seq $switches); do
	v=$((2 - i % 2))
	run > /dev/null <<SQL
SELECT clock_timestamp() AS t0 \\gset
SELECT mtl_deploy('dep', $v);
INSERT INTO deploy_log VALUES (:'t0', clock_timestamp(), $v);
SQL
	sleep 0.25
done
wait

for s in $(seq $sessions); do
	if [ "$(cat "$work/session$s.rc")" != 0 ]; then
		echo "FAIL: scoring session $s failed:"; cat "$work/session$s.out"; exit 1
	fi
done
run <<'SQL'
SELECT count(*) AS statements, count(DISTINCT pid) AS sessions,
	   min(started) < (SELECT min(started) FROM deploy_log WHERE started > '-infinity') AS began_before_deploys,
	   max(started) > (SELECT max(finished) FROM deploy_log) AS ended_after_deploys
FROM score_log;
SQL
# a statement that started after a deploy returned (and before the next began)
# must use that version; one that overlapped a deploy may use either
bad=$(run <<'SQL'
WITH windows AS (
	SELECT finished AS from_t, lead(started, 1, 'infinity') OVER (ORDER BY finished) AS to_t, version
	FROM deploy_log)
SELECT count(*) FILTER (WHERE s.low <> s.high) AS mixed,
	   count(*) FILTER (WHERE w.version IS NOT NULL AND s.low <> v.score) AS stale,
	   count(*) FILTER (WHERE w.version IS NOT NULL) AS checked,
	   count(*) FILTER (WHERE w.version IS NULL) AS overlapping
FROM score_log s
LEFT JOIN windows w ON s.started > w.from_t AND s.started < w.to_t
LEFT JOIN version_score v ON v.version = w.version
SQL
)
echo "mixed|stale|checked|overlapping: $bad"
IFS='|' read -r mixed stale checked overlapping <<< "$bad"
[ "$mixed" = 0 ] || { echo "FAIL: $mixed statements mixed versions"; exit 1; }
[ "$stale" = 0 ] || { echo "FAIL: $stale statements used a version other than the deployed one"; exit 1; }
[ "$checked" -gt 100 ] || { echo "FAIL: only $checked statements fell between deploys"; exit 1; }
echo "deploy visibility: ok ($sessions sessions, $switches deploys)"

# scoring by name in parallel workers (each looks the name up in the
# transaction's snapshot) gives what a serial plan gives
force_parallel="SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
	SET max_parallel_workers_per_gather = 2; SET parallel_leader_participation = off;"
query="SELECT sum((mtl_predict('dep', user_id, item_id))[1]) FROM shop.impressions"
launched=$(run -c "$force_parallel EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) $query" | grep "Workers Launched")
echo "$launched"
echo "$launched" | grep -q "Workers Launched: [12]" || { echo "FAIL: no parallel worker scored"; exit 1; }
parallel=$(run -c "$force_parallel $query")
serial=$(run -c "SET max_parallel_workers_per_gather = 0; $query")
awk -v p="$parallel" -v s="$serial" 'BEGIN { exit !(p - s < 1e-6 && s - p < 1e-6) }' ||
	{ echo "FAIL: parallel scoring by name $parallel, serial $serial"; exit 1; }
echo "scoring by name in parallel workers: ok ($parallel)"
