#!/bin/bash
# Scale-out on Citus: a coordinator and 2 workers on localhost ports, with
# impressions distributed by user_id (Citus's default of 32 shards) and
# users and items as reference tables.
# Checks that
# - distributed training (mtl_fit_parallel: the first pass and every round
#   run on the shards) reaches a held-out ctr AUC within 0.005 of
#   single-node mtl_train on the same rows;
# - EXPLAIN VERBOSE of a round shows worker_partial_agg on the shards, not a
#   row gather, and mtl_predict runs on the shards;
# - the training's CPU time is spent on the workers, not the coordinator.
# Uses an installed Citus or builds it once (scripts/citus.sh); skipped with
# a message when neither is possible. Starts its own three clusters.
# MTL_CITUS_SHOP sets the shop's users, items and impressions (default
# "2500 400 120000"), MTL_CITUS_FRACTION the round_fraction (default 1.0)
# and MTL_CITUS_SEED the config's seed (default 3); MTL_CITUS_CONFIG adds
# config keys.
# MTL_CITUS_SHARDS sets the impressions' shard count (default 32, Citus's
# citus.shard_count; 2 is one per worker).
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! why=$(scripts/citus.sh 2>&1); then
	echo "SKIPPED (Citus): $why"
	exit 0
fi
base=$(mktemp -d /tmp/mtl-citus.XXXXXX)
chmod 755 "$base"
p0=$((42000 + RANDOM % 5000))
shards=${MTL_CITUS_SHARDS:-32}
read -r shop_users shop_items shop_rows <<< "${MTL_CITUS_SHOP:-2500 400 120000}"
fraction=${MTL_CITUS_FRACTION:-1.0}
stop() {
	for n in 0 1 2; do scripts/cluster.sh stop "$base/n$n"; done
	rm -rf "$base"
}
trap stop EXIT
for n in 0 1 2; do
	MTL_PG_OPTS="-c shared_preload_libraries=citus -c max_worker_processes=16" \
		scripts/cluster.sh start "$base/n$n" $((p0 + n))
done
node() { local n=$1; shift; psql -X -q -v ON_ERROR_STOP=1 -At -h "$base/n$n" -p $((p0 + n)) -U postgres "$@"; }
fail() { echo "FAIL: $*"; exit 1; }
for n in 0 1 2; do node $n -c "CREATE EXTENSION citus"; done
node 0 -c "SELECT citus_set_coordinator_host('127.0.0.1', $p0)" \
	-c "SELECT citus_add_node('127.0.0.1', $((p0 + 1)))" -c "SELECT citus_add_node('127.0.0.1', $((p0 + 2)))" >/dev/null

node 0 -v shards="$shards" -v users="$shop_users" -v items="$shop_items" -v rows="$shop_rows" >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION mtl;
CREATE EXTENSION mtl_demo;
-- a shop no other test uses
SELECT mtl_demo_shop('shop', :users, :items, :rows, -0.37);
CREATE SCHEMA single;
CREATE TABLE single.impressions AS SELECT * FROM shop.impressions;
CREATE TABLE single.users AS SELECT * FROM shop.users;
CREATE TABLE single.items AS SELECT * FROM shop.items;
SELECT create_reference_table('shop.users');
SELECT create_reference_table('shop.items');
-- each shard is a share of every round (see README, Scaling out)
SELECT create_distributed_table('shop.impressions', 'user_id', shard_count := :shards);
SELECT truncate_local_data_after_distributing_table('shop.impressions');
SQL
[ "$(node 0 -c "SELECT count(*) FROM citus_shards WHERE table_name = 'shop.impressions'::regclass")" -ge 2 ] ||
	fail "impressions are not distributed"
[ "$(node 1 -c "SELECT count(*) FROM pg_extension WHERE extname = 'mtl'")" = 1 ] ||
	fail "CREATE EXTENSION mtl did not reach the workers"

# MTL_CITUS_CONFIG: more config keys for both trainings, e.g. '"embedding_l2": 0'
extra=${MTL_CITUS_CONFIG:+, $MTL_CITUS_CONFIG}
config='{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "cvr", "type": "binary", "given": "ctr"}], "scenario": "scenario", "seed": '"${MTL_CITUS_SEED:-3}$extra"'}'
query() {
	echo "SELECT i.user_id, i.item_id, ARRAY[i.clicked, CASE WHEN i.clicked = 1 THEN i.purchased END]::float8[],
		to_jsonb(u) - 'user_id', to_jsonb(it) - 'item_id', jsonb_build_object('scenario', i.scenario)
		FROM $1.impressions i JOIN $1.users u USING (user_id) JOIN $1.items it USING (item_id) WHERE i.day <= 12"
}
# CPU seconds of a node's server processes: live ones and those that exited
cpu() {
	local pm clk
	pm=$(head -1 "$base/n$1/data/postmaster.pid")
	clk=$(getconf CLK_TCK)
	{
		awk '{print $14 + $15 + $16 + $17}' /proc/$pm/stat
		for c in $(pgrep -P "$pm"); do awk '{print $14 + $15}' /proc/$c/stat 2>/dev/null || true; done
	} | awk -v clk="$clk" '{s += $1} END {printf "%.1f", s / clk}'
}

node 0 -v q="$(query single)" -v c="$config" >/dev/null <<< "SELECT mtl_fit('single', :'q', :'c')"
before=($(cpu 0) $(cpu 1) $(cpu 2))
start=$(date +%s.%N)
node 0 -v q="$(query shop)" -v c="$config" >/dev/null <<< "SET client_min_messages = warning;
	SELECT mtl_fit_parallel('distributed', :'q', jsonb_set(jsonb_set(:'c'::jsonb, '{round_fraction}', '$fraction'), '{verbose}', 'false'))"
seconds=$(awk -v a="$(date +%s.%N)" -v b="$start" 'BEGIN {printf "%.1f", a - b}')
after=($(cpu 0) $(cpu 1) $(cpu 2))
coordinator=$(awk -v a="${after[0]}" -v b="${before[0]}" 'BEGIN {printf "%.1f", a - b}')
workers=$(awk -v a="${after[1]}" -v b="${before[1]}" -v c="${after[2]}" -v d="${before[2]}" 'BEGIN {printf "%.1f", a - b + c - d}')

aucs=$(node 0 <<'SQL'
SELECT string_agg(round(auc::numeric, 4)::text, ' ' ORDER BY name) FROM (
	SELECT m.name, mtl_auc((mtl_predict(m.model, i.user_id, i.item_id, to_jsonb(u) - 'user_id', to_jsonb(it) - 'item_id',
			jsonb_build_object('scenario', i.scenario)))[1], i.clicked) AS auc
	FROM mtl_models m, single.impressions i JOIN single.users u USING (user_id) JOIN single.items it USING (item_id)
	WHERE i.day > 12 GROUP BY m.name) x
SQL
)
read -r auc_distributed auc_single <<< "$aucs"
echo "held-out ctr AUC: distributed over $shards shards $auc_distributed, single node $auc_single; distributed training ${seconds}s"
echo "CPU seconds during distributed training: coordinator $coordinator, workers $workers"
awk -v a="$auc_distributed" -v b="$auc_single" 'BEGIN {d = a - b; exit !(d > -0.005 && d < 0.005)}' ||
	fail "distributed AUC is not within 0.005 of single-node training"
awk -v c="$coordinator" -v w="$workers" 'BEGIN {exit !(w > 2 * c)}' ||
	fail "the coordinator used as much CPU as the workers"

# the plans: partial aggregates on the shards, scoring on the shards
plan=$(node 0 -v q="$(query shop)" <<'SQL'
SELECT model AS m FROM mtl_models WHERE name = 'distributed' \gset
PREPARE r(bytea, jsonb) AS SELECT mtl_train_round($1, q.c1::bigint, q.c2::bigint, q.c3, q.c4, q.c5, q.c6, $2)
	FROM (:q) AS q(c1, c2, c3, c4, c5, c6);
EXPLAIN VERBOSE EXECUTE r(:'m', '{"round": 1}');
EXPLAIN VERBOSE SELECT mtl_predict(:'m'::bytea, user_id, item_id) FROM shop.impressions;
SQL
)
grep -q "worker_partial_agg" <<< "$plan" || fail "a round is not pushed down as worker_partial_agg"
grep -q "coord_combine_agg" <<< "$plan" || fail "a round is not combined on the coordinator"
grep -qi "Task Count: [1-9]" <<< "$plan" || fail "no tasks on the shards"
grep "Query:" <<< "$plan" | grep -c "mtl_predict" >/dev/null || fail "mtl_predict does not run on the shards"
echo "plans: rounds run as worker_partial_agg on $(grep -m1 -o 'Task Count: [0-9]*' <<< "$plan" | grep -o '[0-9]*') shards and coord_combine_agg; mtl_predict runs on the shards"
echo "citus: ok"
