#!/bin/bash
# How training and scoring cost grow with the shop: demo shops of 0.2M, 1M,
# 5M and 20M impressions (1 user per 25 impressions, 1 item per 250), the
# same config at every size (ctr, cvr given ctr, scenario-aware MMoE, user and
# item features, 3 epochs, no early stop), trained on days 1-12.
#
#   tests/bench/scale.sh                 # about 35 minutes
#   MTL_SCALE_SIZES="200000 1000000" tests/bench/scale.sh
#   MTL_SCALE_SIZES="... 50000000" tests/bench/scale.sh    # add 50M (about 30 more minutes)
#
# Per size it prints: training rows/s of each epoch (the verbose line: the
# epoch's training steps alone), the seconds of each phase (mtl_info with
# record_seconds), the training backend's peak RSS (VmHWM of the leader;
# parallel workers only collect rows), the rows' bytes in memory and in
# temporary files, the held-out ctr AUC on days 13-14, and mtl_predict rows/s
# over 1M random (user, item) pairs of that shop. At 1M it also trains with
# the rows spilled to a temporary file (rows_memory_mb 0) beside the same in
# memory, two seeds each, and runs the PyTorch reference (tests/bench/
# torch_mtl.py, same architecture without scenario towers or the conditional
# task; 2 threads; its time is the training loop on tensors already built).
# Prints figures; asserts nothing. Throwaway cluster on port 5496.
set -euo pipefail
cd "$(dirname "$0")/../.."
sizes=${MTL_SCALE_SIZES:-"200000 1000000 5000000 20000000"}
torch_max=${MTL_SCALE_TORCH_MAX:-1000000}
dir=/tmp/mtl-scale
port=5496
work=$(mktemp -d /tmp/mtl-scale-data.XXXXXX)
chmod 777 "$work"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"

scripts/install_deps.sh python3-torch python3-sklearn python3-numpy >/dev/null
make -s
$sudo make -s install >/dev/null
trap 'scripts/cluster.sh stop "$dir" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
scripts/cluster.sh stop "$dir" >/dev/null 2>&1 || true
rm -rf "$dir"
scripts/cluster.sh start "$dir" "$port" >/dev/null
export PGHOST=$dir PGPORT=$port PGUSER=postgres
psql_q() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }
psql_q -c "CREATE EXTENSION mtl" -c "CREATE EXTENSION mtl_demo" -c "CREATE TABLE models (name text PRIMARY KEY, model bytea)"

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), OpenBLAS $(dpkg-query -W -f='${Version}' libopenblas0-pthread 2>/dev/null || echo '?')"

# train NAME SEED ROWS_MEMORY_MB: one training in its own backend; prints
# "rows/s per epoch | phases | peak RSS | rows memory | temp files"
train() {
	local name=$1 seed=$2 mb=$3 log
	log=$(psql -X -v ON_ERROR_STOP=1 -At 2>&1 <<-SQL
	INSERT INTO models SELECT '$name', mtl_train(i.user_id, i.item_id,
	  ARRAY[i.clicked, CASE WHEN i.clicked = 1 THEN i.purchased END]::float8[],
	  to_jsonb(u) - 'user_id', to_jsonb(it) - 'item_id', jsonb_build_object('scenario', i.scenario),
	  '{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "cvr", "type": "binary", "given": "ctr"}],
	    "scenario": "scenario", "epochs": 3, "patience": 0, "verbose": true, "record_seconds": true,
	    "interaction": "ids", "embedding_l2": 1e-6, "validate_every": 0,
	    "seed": $seed, "rows_memory_mb": $mb}')
	FROM scale.impressions i JOIN scale.users u USING (user_id) JOIN scale.items it USING (item_id)
	WHERE i.day <= 12;
	SELECT 'rss ' || substring(pg_read_file('/proc/self/status') from 'VmHWM:\s*(\d+) kB');
	SQL
	)
	local rates phases rss mem tmp
	rates=$(echo "$log" | grep -o '[0-9]* rows/s' | awk '{printf "%s%d", (NR > 1 ? " " : ""), $1}')
	rss=$(echo "$log" | grep '^rss ' | awk '{printf "%.0f", $2 / 1024}')
	mem=$(echo "$log" | grep -o '[0-9.]* MB in memory' | awk '{print $1}')
	tmp=$(echo "$log" | grep -o '[0-9.]* MB in temporary files' | awk '{print $1}')
	phases=$(psql_q -c "SELECT string_agg(key || ' ' || round(value::numeric, 1), ', ' ORDER BY key)
		FROM models, jsonb_each_text(mtl_info(model) #> '{training,phase_seconds}') WHERE name = '$name'")
	echo "rows/s per epoch: $rates | peak RSS ${rss} MB | rows ${mem} MB in memory, ${tmp} MB in temp files"
	echo "  phases (s): $phases"
}

heldout_auc() {
	psql_q -c "SET max_parallel_workers_per_gather = 0" -c "SELECT round(mtl_auc((mtl_predict(m.model, i.user_id, i.item_id,
		NULL, NULL, jsonb_build_object('scenario', i.scenario)))[1], i.clicked)::numeric, 4)
		FROM models m, scale.impressions i WHERE m.name = '$1' AND i.day > 12"
}

predict_rate() {
	psql_q -c "SET max_parallel_workers_per_gather = 0" -f tests/bench/timing.sql \
		-c "SELECT round(1000000 / min(pg_temp.seconds(\$q\$SELECT count(mtl_predict(m.model, p.user_id, p.item_id))
			FROM models m, pairs p WHERE m.name = '$1'\$q\$))) FROM generate_series(1, 2)"
}

summary=()
for n in $sizes; do
	users=$((n / 25))
	items=$((n / 250))
	echo
	echo "== $n impressions, $users users, $items items"
	start=$(date +%s)
	psql_q -c "SET client_min_messages = warning" -c "SELECT mtl_demo_shop('scale', $users, $items, $n, 0.3)" >/dev/null
	psql_q -c "SELECT setseed(0.5)" -c "DROP TABLE IF EXISTS pairs" \
		-c "CREATE TABLE pairs AS SELECT 1 + (random() * ($users - 1))::bigint AS user_id,
			1 + (random() * ($items - 1))::bigint AS item_id FROM generate_series(1, 1000000)" \
		-c "VACUUM ANALYZE pairs" -c "DELETE FROM models" >/dev/null
	echo "demo shop generated in $(($(date +%s) - start)) s; training rows (days 1-12): $(psql_q -c "SELECT count(*) FROM scale.impressions WHERE day <= 12")"
	line=$(train "n$n" 42 1024)
	echo "$line"
	auc=$(heldout_auc "n$n")
	rate=$(predict_rate "n$n")
	echo "held-out ctr AUC (days 13-14): $auc; mtl_predict over 1M pairs: $rate rows/s"
	summary+=("$n | $(echo "$line" | head -1 | sed 's/rows\/s per epoch: //') | AUC $auc | predict $rate rows/s")
	if [ "$n" = 1000000 ]; then
		echo "-- streamed (rows_memory_mb 0: every full chunk in a temporary file) beside in memory, seeds 42 and 7"
		echo "streamed, seed 42: $(train s42 42 0 | head -1)"
		echo "  held-out ctr AUC: $(heldout_auc s42)"
		train m7 7 1024 >/dev/null
		train s7 7 0 >/dev/null
		echo "in memory, seed 7: AUC $(heldout_auc m7); streamed, seed 7: AUC $(heldout_auc s7)"
	fi
	if [ "$n" -le "$torch_max" ]; then
		rows_query="SELECT i.user_id, i.item_id, u.segment, u.region, u.member::int AS member,
			it.category, it.brand, it.price::float8 AS price, it.on_sale::int AS on_sale,
			i.clicked, CASE WHEN i.clicked = 1 THEN i.purchased END AS cvr
			FROM scale.impressions i JOIN scale.users u USING (user_id) JOIN scale.items it USING (item_id)"
		psql_q -c "\\copy ($rows_query WHERE i.day <= 12 ORDER BY i.impression_id) TO '$work/train.csv' CSV HEADER"
		psql_q -c "\\copy ($rows_query WHERE i.day > 12 ORDER BY i.impression_id) TO '$work/test.csv' CSV HEADER"
		columns='{"cats": ["segment", "region", "member", "category", "brand", "on_sale"], "nums": ["price"],
			"tasks": [["ctr", "clicked", "binary"], ["cvr", "cvr", "binary"]]}'
		echo "PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)'), 3 epochs, 2 threads: $(/usr/bin/python3 tests/bench/torch_mtl.py "$work/train.csv" "$work/test.csv" \
			--epochs 3 --threads 2 --predict-rows 1000000 --columns "$columns")"
	fi
done

echo
echo "== summary: impressions | training rows/s per epoch | peak RSS | rows in memory / temp files | held-out AUC | scoring"
printf '%s\n' "${summary[@]}"
