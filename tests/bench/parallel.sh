#!/bin/bash
# Data-parallel rounds against serial mtl_train on one machine: the demo shop
# of 5M impressions (200,000 users, 20,000 items), the same config (ctr, cvr
# given ctr, scenario towers, 3 epochs, no early stop), trained on days 1-12.
#   serial: INSERT ... SELECT mtl_train(...) FROM the join (parallel workers
#           collect the rows; one backend trains)
#   rounds: mtl_fit_parallel (rows kept once as chunks, first pass, rounds of
#           round_fraction of the rows on the parallel workers, 1 by
#           default as in mtl_fit_parallel: MTL_ROUND_FRACTION)
# Prints wall time of each whole statement, their ratio, and the held-out
# ctr AUC on days 13-14 of both. Asserts nothing. About 10 minutes.
#   tests/bench/parallel.sh                       # 5M impressions
#   MTL_PARALLEL_ROWS=1000000 tests/bench/parallel.sh
#   MTL_ROUND_BATCH=256 tests/bench/parallel.sh     # shares step every 256 rows
#   MTL_ROUND_CONFIG='{"embedding_l2": 0}' tests/bench/parallel.sh   # config keys of the rounds only
set -euo pipefail
cd "$(dirname "$0")/../.."
rows=${MTL_PARALLEL_ROWS:-5000000}
fraction=${MTL_ROUND_FRACTION:-1.0}
# a share's batch (round_batch_size); empty: mtl_fit_parallel's default
share_batch=${MTL_ROUND_BATCH:-}
round_config=${MTL_ROUND_CONFIG:-'{}'}
dir=/tmp/mtl-parallel-bench
port=5498
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
make -s
$sudo make -s install >/dev/null
trap 'scripts/cluster.sh stop "$dir" >/dev/null 2>&1 || true' EXIT
scripts/cluster.sh stop "$dir" >/dev/null 2>&1 || true
rm -rf "$dir"
scripts/cluster.sh start "$dir" "$port" >/dev/null
export PGHOST=$dir PGPORT=$port PGUSER=postgres
q() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
q -c "CREATE EXTENSION mtl" -c "CREATE EXTENSION mtl_demo" -c "SET client_min_messages = warning" \
	-c "SELECT mtl_demo_shop('shop', $((rows / 25)), $((rows / 250)), $rows, 0.3)" >/dev/null
config='{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "cvr", "type": "binary", "given": "ctr"}], "scenario": "scenario", "epochs": 3, "patience": 0, "validate_every": 0, "record_seconds": true}'
query="SELECT i.user_id, i.item_id, ARRAY[i.clicked, CASE WHEN i.clicked = 1 THEN i.purchased END]::float8[],
	to_jsonb(u) - 'user_id', to_jsonb(it) - 'item_id', jsonb_build_object('scenario', i.scenario)
	FROM shop.impressions i JOIN shop.users u USING (user_id) JOIN shop.items it USING (item_id) WHERE i.day <= 12"
q -c "CREATE TABLE models (name text, model bytea)"
start=$(date +%s.%N)
q -v c="$config" <<< "INSERT INTO models SELECT 'serial', mtl_train(q.u, q.i, q.l, q.uf, q.itf, q.ctx, :'c') FROM ($query) q(u, i, l, uf, itf, ctx)"
serial=$(awk -v a="$(date +%s.%N)" -v b="$start" 'BEGIN {printf "%.1f", a - b}')
echo "  serial phases (s): $(q -c "SELECT string_agg(key || ' ' || round(value::numeric, 1), ', ' ORDER BY key)
	FROM models, jsonb_each_text(mtl_info(model)->'training'->'phase_seconds') WHERE name = 'serial'")"
start=$(date +%s.%N)
q -v c="$config" -v q="$query" -v f="$fraction" -v rc="$round_config" 2>&1 <<< "SELECT mtl_fit_parallel('rounds', :'q', jsonb_set(:'c'::jsonb, '{round_fraction}', :'f')
	|| CASE WHEN '$share_batch' = '' THEN '{}' ELSE jsonb_build_object('round_batch_size', '${share_batch:-0}'::int) END
	|| :'rc'::jsonb)" |
	grep -E "kept in|vocabularies|measured|round [0-9]" | sed 's/^.*mtl_fit_parallel: /  /'
rounds=$(awk -v a="$(date +%s.%N)" -v b="$start" 'BEGIN {printf "%.1f", a - b}')
q -c "INSERT INTO models SELECT 'rounds', mtl_model('rounds')"
aucs=$(q <<'SQL'
SET max_parallel_workers_per_gather = 0;
SELECT string_agg(name || ' ' || round(auc::numeric, 4), ', ' ORDER BY name) FROM (
	SELECT m.name, mtl_auc((mtl_predict(m.model, i.user_id, i.item_id, to_jsonb(u) - 'user_id', to_jsonb(it) - 'item_id',
			jsonb_build_object('scenario', i.scenario)))[1], i.clicked) AS auc
	FROM models m, shop.impressions i JOIN shop.users u USING (user_id) JOIN shop.items it USING (item_id)
	WHERE i.day > 12 GROUP BY m.name) x
SQL
)
echo "== $rows impressions, 3 epochs: serial mtl_train ${serial} s, mtl_fit_parallel (round_fraction $fraction${share_batch:+, round_batch_size $share_batch}) ${rounds} s:" \
	"$(awk -v a="$serial" -v b="$rounds" 'BEGIN {printf "%.2fx", a / b}'); held-out ctr AUC: $aucs"
