#!/bin/bash
# Quality where users are seen a few times (prints figures, asserts nothing).
# 1. The sparse shop (sparse_shop.sql: 20,000 users with about 16 training
#    impressions each, 4,000 items of power-law popularity, 3 scenarios; every
#    fifth impression is the test split): mtl's defaults, mtl as in 0.1
#    (interaction "ids", one L2 of 1e-6), mtl with the fm cross; then XGBoost
#    with target-encoded ids, PyTorch DeepFM and a PyTorch MMoE of mtl's
#    default shape on the same split (sparse_baselines.py). Seeds 1-3 each; mean and range of held-out AUC.
# 2. The demo shop of 200,000 impressions (days 13-14 held out): the same mtl
#    variants; then what each interaction costs to score and to train
#    (sparse_speed.sql); and the census-like data of run.sh with the
#    defaults and the 0.1 settings (census_defaults.sql), and log_skewed on
#    and off, also with two money-like columns added (census_skewed.sql).
#
#   tests/bench/sparse.sh                 # about 10 minutes
#   MTL_SPARSE_USERS=40000 MTL_SPARSE_SEED=0.23 tests/bench/sparse.sh   # the shop's size and setseed
set -euo pipefail
cd "$(dirname "$0")/../.."
users=${MTL_SPARSE_USERS:-20000}
shop_seed=${MTL_SPARSE_SEED:-0.17}
seeds=${MTL_SPARSE_SEEDS:-3}
dir=/tmp/mtl-sparse-bench
port=5497
work=$(mktemp -d /tmp/mtl-sparse-data.XXXXXX)
chmod 777 "$work"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
scripts/install_deps.sh python3-xgboost python3-torch python3-sklearn python3-numpy >/dev/null
make -s
$sudo make -s install >/dev/null
trap 'scripts/cluster.sh stop "$dir" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
scripts/cluster.sh stop "$dir" >/dev/null 2>&1 || true
rm -rf "$dir"
scripts/cluster.sh start "$dir" "$port" >/dev/null
export PGHOST=$dir PGPORT=$port PGUSER=postgres
q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
q -c "CREATE EXTENSION mtl" -c "CREATE EXTENSION mtl_demo"
# schema $2: demo shop $1 in sparse_mtl.sql's shape, days 13-14 the test split
held_out_days() {
	q -c "CREATE SCHEMA $2" \
		-c "CREATE TABLE $2.impressions AS SELECT impression_id, user_id, item_id, scenario, clicked, purchased,
			p_click, p_buy_given_click, day > 12 AS test FROM $1.impressions" \
		-c "CREATE VIEW $2.users AS SELECT * FROM $1.users" -c "CREATE VIEW $2.items AS SELECT * FROM $1.items"
}
variants='{"mtl defaults": {}, "mtl as in 0.1 (ids, l2 1e-6)": {"interaction": "ids", "embedding_l2": 1e-6}, "mtl, fm": {"interaction": "fm"}}'

echo "== sparse shop: $users users, 4000 items, about 20 impressions per user (16 training)"
q -v schema=sparse -v users="$users" -v items=4000 -v per_user=20 -v seed="$shop_seed" -f tests/bench/sparse_shop.sql >/dev/null
q -c "SELECT count(*) AS impressions, round(avg(clicked), 4) AS click_rate, round(avg(purchased), 4) AS purchase_rate,
	round(count(*) FILTER (WHERE NOT test)::numeric / count(DISTINCT user_id), 1) AS training_rows_per_user
	FROM sparse.impressions"
q -v schema=sparse -v seeds="$seeds" -v variants="$variants" -f tests/bench/sparse_mtl.sql
q -c "\\copy (SELECT i.impression_id, i.user_id, i.item_id, i.scenario, u.age_band, u.gender, u.city,
	it.category, it.brand, it.price, i.clicked, i.purchased, i.test::int AS test
	FROM sparse.impressions i JOIN sparse.users u USING (user_id) JOIN sparse.items it USING (item_id)
	ORDER BY impression_id) TO '$work/sparse.csv' CSV HEADER"
/usr/bin/python3 tests/bench/sparse_baselines.py "$work/sparse.csv" --seeds "$seeds" | /usr/bin/python3 -c '
import json, sys
runs = [json.loads(l) for l in sys.stdin]
print(" model   | ctr_auc | ctr_range     | ctcvr_auc | ctcvr_range   | train_seconds")
for m in sorted(set(r["model"] for r in runs)):
    rs = [r for r in runs if r["model"] == m]
    c = [r["ctr_auc"] for r in rs]; v = [r["ctcvr_auc"] for r in rs]
    print(" %-7s | %.4f  | %.4f-%.4f | %.4f    | %.4f-%.4f | %.1f" % (m, sum(c) / len(c), min(c), max(c),
          sum(v) / len(v), min(v), max(v), sum(r["seconds"] for r in rs) / len(rs)))'

echo "== demo shop: 5000 users, 1000 items, 200000 impressions (days 13-14 held out)"
q -c "SET client_min_messages = warning" -c "SELECT mtl_demo_shop('shop')" >/dev/null
held_out_days shop demo
q -v schema=demo -v seeds="$seeds" -v variants="$variants" -f tests/bench/sparse_mtl.sql

echo "== what the cross costs on the demo shop: seconds to score 200,000 rows, and to train 3 epochs"
q -f tests/bench/sparse_speed.sql

echo "== census-like data, features only (200000 rows): the defaults against the 0.1 settings"
q -v rows=200000 -f tests/bench/census.sql >/dev/null 2>&1
q -f tests/bench/census_defaults.sql
echo "== census-like data: skewed numeric fields logged (log_skewed) or not, seeds 1-3"
q -f tests/bench/census_skewed.sql

# 3. With MTL_SPARSE_5M=1: the demo shop of 5M impressions (200,000 users seen
#    about 22 times), seed 1, mtl's defaults against mtl as in 0.1 (also no
#    checks inside an epoch), then the same baselines (one thread each). About
#    an hour more.
if [ "${MTL_SPARSE_5M:-0}" = 1 ]; then
	echo "== demo shop: 200000 users, 20000 items, 5000000 impressions (days 13-14 held out)"
	q -c "SET client_min_messages = warning" -c "SELECT mtl_demo_shop('big', 200000, 20000, 5000000, 0.3)" >/dev/null
	held_out_days big big5m
	q -v schema=big5m -v seeds=1 -v variants='{"mtl defaults": {"verbose": true}, "mtl as in 0.1 (ids, l2 1e-6, epoch-end checks)": {"interaction": "ids", "embedding_l2": 1e-6, "validate_every": 0, "verbose": true}}' \
		-f tests/bench/sparse_mtl.sql
	q -c "\\copy (SELECT i.impression_id, i.user_id, i.item_id, i.scenario, u.segment, u.region,
		u.member::text AS member, it.category, it.brand, it.on_sale::text AS on_sale, it.price, i.clicked,
		i.purchased, (i.day > 12)::int AS test
		FROM big.impressions i JOIN big.users u USING (user_id) JOIN big.items it USING (item_id)
		ORDER BY impression_id) TO '$work/big.csv' CSV HEADER"
	/usr/bin/python3 tests/bench/sparse_baselines.py "$work/big.csv" --seeds 1 --threads 1 \
		--cats scenario,segment,region,member,category,brand,on_sale
fi
