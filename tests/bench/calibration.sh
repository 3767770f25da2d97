#!/bin/bash
# Ranking and calibration on the demo shop (prints figures, asserts nothing):
# the model scripts/demo.sh trains (days 1-12), evaluated on days 13-14 with
# mtl_evaluate's ranking metrics (NDCG@5/10, recall@5/10, MRR per user) and
# calibration (mean predicted, observed rate, ECE over 10 bins), next to the
# generator's true probabilities; draws docs/reliability.png with gnuplot.
#
#   tests/bench/calibration.sh          # about 2 minutes
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d /tmp/mtl-calibration-data.XXXXXX)
chmod 777 "$work"
scripts/install_deps.sh gnuplot-nox >/dev/null
. tests/bench/bench_cluster.sh
bench_cluster /tmp/mtl-calibration 5497 "rm -rf '$work'"
q -c "CREATE EXTENSION mtl" -c "CREATE EXTENSION mtl_demo"
q -v work="$work" -f tests/bench/calibration.sql
mkdir -p docs
gnuplot <<GP
set terminal pngcairo size 640,440 font ",11"
set output "docs/reliability.png"
set title "Demo shop, days 13-14: reliability of the CTR and CVR scores"
set xlabel "mean predicted probability (10 equal-width bins)"
set ylabel "observed rate"
set xrange [0:1]
set yrange [0:1]
set key top left
set grid
plot x with lines dt 2 lc rgb "#888888" title "perfect calibration", \
	 "$work/ctr.dat" using 1:2 with linespoints lw 2 pt 7 title "CTR (mtl)", \
	 "$work/cvr.dat" using 1:2 with linespoints lw 2 pt 5 title "CVR given a click (mtl)", \
	 "$work/truth.dat" using 1:2 with linespoints lw 1 pt 6 dt 3 title "CTR (true probabilities)"
GP
echo "plot: docs/reliability.png"
