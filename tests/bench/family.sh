#!/bin/bash
# Evidence for the model family (prints figures, asserts nothing):
# 1. The MMoE paper's synthetic experiment: shared_bottom, mmoe and ple test
#    MSE at task correlation p = 1, 0.9, 0.5 over seeds 1-5 (mmoe_synthetic.py
#    makes the data, mmoe_synthetic.sql trains and scores); draws
#    docs/mmoe_synthetic.png with gnuplot.
# 2. The demo shop: every architecture, CVR on clicks vs CVR given CTR
#    (ESMM-style), and scenario-blind vs scenario-aware per scenario
#    (shop_family.sql), on the demo shop and on a sparser one (60000
#    impressions).
# 3. The census-like data of run.sh: the architectures with their defaults.
#
#   tests/bench/family.sh
#
# Installs gnuplot and python3-numpy, builds and installs mtl, starts a
# throwaway cluster on port 5496 and stops it at the end. About 8 minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=/tmp/mtl-family
port=5496
work=$(mktemp -d /tmp/mtl-family-data.XXXXXX)
chmod 777 "$work"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"

scripts/install_deps.sh gnuplot-nox python3-numpy >/dev/null
make -s
$sudo make -s install >/dev/null
trap 'scripts/cluster.sh stop "$dir" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
scripts/cluster.sh stop "$dir" >/dev/null 2>&1 || true
scripts/cluster.sh start "$dir" "$port" >/dev/null
export PGHOST=$dir PGPORT=$port PGUSER=postgres
psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
psql_q -c "CREATE EXTENSION IF NOT EXISTS mtl" -c "CREATE EXTENSION IF NOT EXISTS mtl_demo"

echo "== MMoE synthetic data: d = 100, 8000 training and 2000 test rows per (p, seed)"
/usr/bin/python3 tests/bench/mmoe_synthetic.py "$work/syn.csv" --seeds 5
psql_q -c "DROP TABLE IF EXISTS syn" -c "CREATE TABLE syn (p float8, seed int, split text, y1 float8, y2 float8, x float8[])" \
	-c "\\copy syn FROM '$work/syn.csv' CSV HEADER"
start=$(date +%s)
psql_q -At -F ' ' -f tests/bench/mmoe_synthetic.sql > "$work/syn.txt"
echo "45 trainings and scorings in $(( $(date +%s) - start )) s"
echo "test MSE (mean of the two tasks), mean over seeds 1-5 (min - max):"
printf "%-14s %-5s %-8s %s\n" model p mse range
awk '{ k = $1 " " $2; s[k] += $4; n[k]++; if (!(k in lo) || $4 < lo[k]) lo[k] = $4; if ($4 > hi[k]) hi[k] = $4 }
	END { for (k in s) printf "%s %.4f %.4f-%.4f\n", k, s[k] / n[k], lo[k], hi[k] }' "$work/syn.txt" \
	| sort -k1,1 -k2,2nr | tee "$work/means.txt" | awk '{ printf "%-14s %-5s %-8s %s\n", $1, $2, $3, $4 }'
mkdir -p docs
for m in shared_bottom mmoe ple; do
	awk -v m="$m" '$1 == m { print $2, $3 }' "$work/means.txt" | sort -k1,1nr > "$work/$m.dat"
done
gnuplot <<GP
set terminal pngcairo size 640,420 font ",11"
set output "docs/mmoe_synthetic.png"
set title "MMoE synthetic data: test MSE by task correlation (mean of 5 seeds)"
set xlabel "task correlation p"
set ylabel "test MSE"
set xrange [1.02:0.48]
set xtics ("1" 1, "0.9" 0.9, "0.5" 0.5)
set key top left
set grid ytics
plot "$work/shared_bottom.dat" using 1:2 with linespoints lw 2 pt 7 title "shared-bottom", \
	 "$work/mmoe.dat" using 1:2 with linespoints lw 2 pt 5 title "MMoE", \
	 "$work/ple.dat" using 1:2 with linespoints lw 2 pt 9 title "PLE"
GP
echo "plot: docs/mmoe_synthetic.png"

echo
echo "== demo shop: 3000 users, 800 items, 200000 impressions; train days 1-12, test days 13-14"
psql_q -c "SET client_min_messages = warning" \
	-c "SELECT mtl_demo_shop('shop', users => 3000, items => 800, impressions => 200000, seed => 0.42)" >/dev/null
psql_q -f tests/bench/shop_family.sql

echo
echo "== sparse demo shop: the same with 60000 impressions (fewer clicks for the CVR tower)"
psql_q -c "SET client_min_messages = warning" \
	-c "SELECT mtl_demo_shop('shop', users => 3000, items => 800, impressions => 60000, seed => 0.42)" >/dev/null
psql_q -f tests/bench/shop_family.sql

echo
echo "== census-like data (features only: 30 categorical + 7 numeric fields, two tasks; 160k train, 40k test rows)"
psql_q -v rows=200000 -f tests/bench/census.sql >/dev/null
psql_q -f tests/bench/census_family.sql
