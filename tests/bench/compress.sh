#!/bin/bash
# Compressed models (prints figures, asserts nothing): the model of
# scripts/demo.sh (days 1-12) stored as float32, fp16 and int8 (mtl_compress):
# bytes, and held-out (days 13-14) AUC of each task and its change.
#
#   tests/bench/compress.sh          # about 1 minute
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/bench_cluster.sh
bench_cluster /tmp/mtl-compress 5498
q <<'SQL'
CREATE EXTENSION mtl;
CREATE EXTENSION mtl_demo;
\i tests/bench/demo_model.sql
CREATE TEMP TABLE c AS
SELECT k AS method, CASE WHEN k = 'none' THEN model ELSE mtl_compress(model, k) END AS model
FROM demo_model m, unnest(ARRAY['none', 'fp16', 'int8']) WITH ORDINALITY u(k, o);
CREATE TEMP TABLE e AS
SELECT c.method, octet_length(c.model) AS bytes,
	   mtl_evaluate(c.model, i.user_id, i.item_id,
		   ARRAY[i.clicked, CASE WHEN i.clicked = 1 THEN i.purchased END, i.rating]::float8[],
		   NULL, NULL, jsonb_build_object('scenario', i.scenario)) AS r
FROM c, shop.impressions i WHERE i.day > 12 GROUP BY c.method, c.model;
\echo '== the demo model stored three ways; held-out days 13-14'
SELECT e.method, e.bytes, round(e.bytes::numeric / n.bytes, 3) AS size_ratio,
	   round((e.r #>> '{tasks,ctr,auc}')::numeric, 5) AS ctr_auc,
	   round((e.r #>> '{tasks,ctr,auc}')::numeric - (n.r #>> '{tasks,ctr,auc}')::numeric, 5) AS ctr_auc_change,
	   round((e.r #>> '{tasks,cvr,auc}')::numeric - (n.r #>> '{tasks,cvr,auc}')::numeric, 5) AS cvr_auc_change,
	   round((e.r #>> '{tasks,rating,rmse}')::numeric - (n.r #>> '{tasks,rating,rmse}')::numeric, 5) AS rating_rmse_change
FROM e, e n WHERE n.method = 'none' ORDER BY e.bytes DESC;
SQL
