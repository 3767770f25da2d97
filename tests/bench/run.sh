#!/bin/bash
# Benchmark: mtl beside a PyTorch implementation of the same model on the same
# data, in one run, plus the machine's OpenBLAS sgemm GFLOP/s.
#
#   tests/bench/run.sh [impressions]        (default 200000, as the demo shop)
#   MTL_BENCH_USERS=20000 MTL_BENCH_ITEMS=4000 tests/bench/run.sh   # a larger catalog
#
# Prints figures; asserts nothing. Installs what it needs (Debian's
# python3-torch, python3-sklearn, python3-numpy), builds and installs mtl,
# starts a throwaway cluster on port 5497 and stops it at the end.
#
# What is compared (demo shop: 3000 users, 800 items; MMoE, 4 experts of 64,
# towers of 32, embedding 8, batch 512, Adam lr 0.003, 10 epochs; tasks ctr,
# cvr given click, ctcvr, rating):
# - training: rows x epochs per second. mtl's time is the whole mtl_train
#   aggregate in SQL (reading rows, jsonb features, vocabularies, training,
#   encoding); PyTorch's is its training loop alone, on tensors already built.
#   mtl with its default of 1 thread, and again with "threads": 2 (each
#   batch split by rows over two threads); PyTorch with 2 threads.
# - scoring 1M (user, item) pairs: mtl_predict called once per row in a query
#   (one backend, one core, the time includes the table scan); PyTorch's
#   in-memory batch prediction (batches of 8192, 2 threads) on tensors.
# - held-out AUC of both on days 13-14 (and the oracle's).
# Then the same on a census-like data set with features only (no ids: 30
# categorical and 7 numeric fields, two tasks, 160k training rows, 40k test
# rows; tests/bench/census.sql), scoring all 200k rows with
# mtl_predict(model, NULL, NULL, features, NULL).
set -euo pipefail
cd "$(dirname "$0")/../.."
impressions=${1:-200000}
users=${MTL_BENCH_USERS:-3000}
items=${MTL_BENCH_ITEMS:-800}
dir=/tmp/mtl-bench
port=5497
work=$(mktemp -d /tmp/mtl-bench-data.XXXXXX)
chmod 777 "$work"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"

scripts/install_deps.sh python3-torch python3-sklearn python3-numpy >/dev/null
make -s
$sudo make -s install >/dev/null
gcc -O2 -I/usr/include/x86_64-linux-gnu/openblas-pthread -o "$work/sgemm" \
	tests/bench/sgemm_gflops.c -lopenblas

trap 'scripts/cluster.sh stop "$dir" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
scripts/cluster.sh stop "$dir" >/dev/null 2>&1 || true
scripts/cluster.sh start "$dir" "$port" >/dev/null
export PGHOST=$dir PGPORT=$port PGUSER=postgres
psql_q() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }

echo "== machine"
echo "cores: $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
for t in 1 2; do OPENBLAS_NUM_THREADS=$t "$work/sgemm"; done

echo
echo "== data: demo shop with $impressions impressions, $users users, $items items"
psql_q -v impressions="$impressions" -v users="$users" -v items="$items" -f tests/bench/setup.sql >/dev/null
train_rows=$(psql_q -c "SELECT count(*) FROM shop.impressions WHERE day <= 12")
echo "training rows (days 1-12): $train_rows; pairs to score: 1000000"
rows_query="SELECT i.user_id, i.item_id, u.segment, u.region, u.member::int AS member,
	it.category, it.brand, it.price::float8 AS price, it.on_sale::int AS on_sale,
	i.scenario, i.day, i.clicked, CASE WHEN i.clicked = 1 THEN i.purchased END AS cvr,
	i.purchased, i.rating, i.p_click, i.p_buy_given_click, i.p_purchase
	FROM shop.impressions i JOIN shop.users u USING (user_id) JOIN shop.items it USING (item_id)"
psql_q -c "\\copy ($rows_query WHERE i.day <= 12 ORDER BY i.impression_id) TO '$work/train.csv' CSV HEADER"
psql_q -c "\\copy ($rows_query WHERE i.day > 12 ORDER BY i.impression_id) TO '$work/test.csv' CSV HEADER"

echo
echo "== mtl"
mtl=$(psql_q -f tests/bench/mtl.sql)
echo "$mtl"

echo
echo "== PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)')"
torch=$(/usr/bin/python3 tests/bench/torch_mtl.py "$work/train.csv" "$work/test.csv" \
	--threads 2 --predict-rows 1000000)
echo "$torch"

echo
echo "== features only: census-like data, 200000 rows"
psql_q -v rows=200000 -f tests/bench/census.sql >/dev/null
cols=$(for k in $(seq 1 30); do printf "features->>'c%d' AS c%d, " "$k" "$k"; done
	for k in $(seq 1 7); do printf "(features->>'x%d')::float8 AS x%d, " "$k" "$k"; done)
psql_q -c "\\copy (SELECT $cols y1, y2 FROM census WHERE NOT test ORDER BY id) TO '$work/ctrain.csv' CSV HEADER"
psql_q -c "\\copy (SELECT $cols y1, y2 FROM census WHERE test ORDER BY id) TO '$work/ctest.csv' CSV HEADER"
census_mtl=$(psql_q -f tests/bench/census_mtl.sql)
echo "$census_mtl"
spec=$(/usr/bin/python3 -c 'import json; print(json.dumps({"cats": ["c%d" % k for k in range(1, 31)], "nums": ["x%d" % k for k in range(1, 8)], "tasks": [["t1", "y1", "binary"], ["t2", "y2", "binary"]]}))')
census_torch=$(/usr/bin/python3 tests/bench/torch_mtl.py "$work/ctrain.csv" "$work/ctest.csv" \
	--threads 2 --columns "$spec" --predict-rows 200000)
echo "$census_torch"

echo
echo "== side by side"
MTL="$mtl" TORCH="$torch" CMTL="$census_mtl" CTORCH="$census_torch" /usr/bin/python3 - <<'EOF'
import json, os
raw = dict(line.split("=", 1) for line in os.environ["MTL"].splitlines() if "=" in line)
t = json.loads(os.environ["TORCH"])
m = {k: float(v) for k, v in raw.items() if not k.startswith("seed_")}
print(f"{'':34s}{'mtl':>12s}{'PyTorch':>12s}{'ratio':>8s}")
def row(label, a, b, fmt="{:12,.0f}"):
    print(f"{label:34s}{fmt.format(a)}{fmt.format(b)}{a / b:8.2f}")
row("training rows x epochs / s", m["train_samples_per_s"], t["train_samples_per_s"])
row("  mtl on 2 threads too", m["train_samples_per_s_2_threads"], t["train_samples_per_s"])
row("scoring rows / s (ids)", m["predict_ids_rows_per_s"], t["predict_rows_per_s"])
row("scoring rows / s (ids + features)", m["predict_features_rows_per_s"], t["predict_rows_per_s"])
print(f"{'held-out AUC':34s}{'mtl':>12s}{'PyTorch':>12s}{'oracle':>8s}")
for task in ["ctr", "cvr", "ctcvr"]:
    print(f"  {task:32s}{m['auc_' + task]:12.4f}{t['auc_' + task]:12.4f}{m['oracle_' + task]:8.4f}")
print(f"  {'rating RMSE':32s}{m['rmse_rating']:12.4f}{t['rmse_rating']:12.4f}")
print("mtl held-out AUC by seed (10 epochs):", "; ".join(
    f"seed {k[5:]}: {v}" for k, v in sorted(raw.items()) if k.startswith("seed_")))
cm = {k: float(v) for k, v in (l.split("=", 1) for l in os.environ["CMTL"].splitlines() if "=" in l)}
ct = json.loads(os.environ["CTORCH"])
print()
print("features only (census-like)")
print(f"{'':34s}{'mtl':>12s}{'PyTorch':>12s}{'ratio':>8s}")
row("training rows x epochs / s", cm["train_samples_per_s"], ct["train_samples_per_s"])
row("  mtl on 2 threads too", cm["train_samples_per_s_2_threads"], ct["train_samples_per_s"])
row("scoring rows / s (features)", cm["predict_rows_per_s"], ct["predict_rows_per_s"])
print(f"{'held-out AUC, 10 epochs':34s}{'mtl':>12s}{'PyTorch':>12s}{'oracle':>8s}")
for task in ["t1", "t2"]:
    print(f"  {task:32s}{cm['auc_' + task]:12.4f}{ct['auc_' + task]:12.4f}{cm['oracle_' + task]:8.4f}")
print(f"{'held-out AUC, mtl defaults':34s}")
for task in ["t1", "t2"]:
    print(f"  {task:32s}{cm['default_auc_' + task]:12.4f}")
EOF
