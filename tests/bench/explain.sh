#!/bin/bash
# Explanations (prints figures, asserts nothing): the model of scripts/demo.sh
# (days 1-12) explained on held-out rows (days 13-14) by mtl_explain_global
# per scenario (the demo's clicks follow taste and segment fit on the home
# feed, price in search, the discount on ads), the completeness error, and
# what an explanation costs next to a score.
#
#   tests/bench/explain.sh          # about 1 minute
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/bench_cluster.sh
bench_cluster /tmp/mtl-explain 5494
q <<'SQL'
CREATE EXTENSION mtl;
CREATE EXTENSION mtl_demo;
\i tests/bench/demo_model.sql
CREATE TEMP TABLE r AS
SELECT i.*, to_jsonb(u) - 'user_id' AS uf, to_jsonb(it) - 'item_id' AS itf
FROM shop.impressions i JOIN shop.users u USING (user_id) JOIN shop.items it USING (item_id)
WHERE i.day > 12 ORDER BY i.impression_id LIMIT 3000;
CREATE TEMP TABLE g AS
SELECT r.scenario, mtl_explain_global(m.model, r.user_id, r.item_id, r.uf, r.itf,
									  jsonb_build_object('scenario', r.scenario)) AS g
FROM demo_model m, r GROUP BY r.scenario;
\echo '== ctr: mean |attribution| per input and scenario (3,000 held-out rows), the inputs in the order of the overall mean'
SELECT x.input, round(avg(x.mean_abs) FILTER (WHERE g.scenario = 'home')::numeric, 3) AS home,
	   round(avg(x.mean_abs) FILTER (WHERE g.scenario = 'search')::numeric, 3) AS search,
	   round(avg(x.mean_abs) FILTER (WHERE g.scenario = 'ads')::numeric, 3) AS ads
FROM g, jsonb_to_recordset(g.g #> '{tasks,ctr}') x(input text, mean_abs float8)
GROUP BY x.input ORDER BY avg(x.mean_abs) DESC;
\echo '== completeness: |sum of attributions - logit difference| over the tolerance 0.002 + 0.01 |difference|, and steps'
SELECT t AS task, round(max((e #>> ARRAY['tasks', t, 'error'])::numeric
				 / (0.002 + 0.01 * abs((e #>> ARRAY['tasks', t, 'logit'])::numeric - (e #>> ARRAY['tasks', t, 'baseline_logit'])::numeric))), 3) AS worst_share_of_tolerance,
	   round(avg((e->>'steps')::int), 1) AS mean_steps, max((e->>'steps')::int) AS max_steps
FROM (SELECT mtl_explain(m.model, r.user_id, r.item_id, r.uf, r.itf, jsonb_build_object('scenario', r.scenario)) AS e
	  FROM demo_model m, r) s, unnest(ARRAY['ctr', 'cvr', 'rating']) t GROUP BY t ORDER BY t;
\echo '== cost: 3,000 rows explained and scored (explanations per second, and their ratio)'
RESET client_min_messages;
DO $$
DECLARE started timestamptz; explain_s float8; predict_s float8; n bigint;
BEGIN
	started := clock_timestamp();
	PERFORM count(mtl_explain(m.model, r.user_id, r.item_id, r.uf, r.itf, jsonb_build_object('scenario', r.scenario)))
	FROM demo_model m, r;
	explain_s := extract(epoch FROM clock_timestamp() - started);
	started := clock_timestamp();
	FOR i IN 1..20 LOOP
		PERFORM count(mtl_predict(m.model, r.user_id, r.item_id, r.uf, r.itf, jsonb_build_object('scenario', r.scenario)))
		FROM demo_model m, r;
	END LOOP;
	predict_s := extract(epoch FROM clock_timestamp() - started) / 20;
	SELECT count(*) INTO n FROM r;
	RAISE NOTICE 'mtl_explain % rows/s, mtl_predict % rows/s: an explanation costs % scores',
		round(n / explain_s), round(n / predict_s), round((explain_s / predict_s)::numeric, 1);
END $$;
SQL
