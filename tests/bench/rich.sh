#!/bin/bash
# Tags, titles and behaviour sequences (prints figures, asserts nothing).
# On the demo shop with rich features (mtl_demo_shop(..., rich_features =>
# true): 5,000 users, 1,000 items, 200,000 impressions; days 13-14 held out):
# 1. held-out CTR AUC without the new fields, with tags, with the title as
#    text, with the history mean-pooled, with DIN attention, and with all
#    (rich_mtl.sql; seeds 1-2, mean and range);
# 2. scoring speed with a 50-item history (rich_speed.sql): mtl_predict rows/s
#    and mtl_recommend item scores/s for DIN, mean pooling and no history.
#
#   tests/bench/rich.sh          # about 10 minutes
set -euo pipefail
cd "$(dirname "$0")/../.."
seeds=${MTL_RICH_SEEDS:-2}
. tests/bench/bench_cluster.sh
bench_cluster /tmp/mtl-rich-bench 5496
q -c "CREATE EXTENSION mtl" -c "CREATE EXTENSION mtl_demo" -c "SET client_min_messages = warning" \
	-c "SELECT mtl_demo_shop('rich', 5000, 1000, 200000, 0.42, rich_features => true)" >/dev/null
q -c "SELECT count(*) AS impressions, round(avg(clicked), 4) AS click_rate FROM rich.impressions"
echo "== held-out CTR AUC by the fields the model sees ($seeds seeds)"
q -v schema=rich -v seeds="$seeds" -f tests/bench/rich_mtl.sql
echo "== scoring with a 50-item history (one core)"
q -v schema=rich -v rows=20000 -f tests/bench/rich_speed.sql
