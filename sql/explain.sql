-- mtl_explain: integrated gradients per input and task, summing to the
-- logit difference from the anonymous row; the gates; mtl_explain_global
SET client_min_messages = warning;
SELECT mtl_demo_shop('ex', 1500, 300, 40000, 0.37, rich_features => true);
RESET client_min_messages;
CREATE TABLE ex_rows AS
SELECT i.impression_id, i.user_id, i.item_id, i.clicked, i.purchased,
	   to_jsonb(u) - 'user_id' AS uf, to_jsonb(it) - 'item_id' AS itf,
	   i.scenario, i.recent_items
FROM ex.impressions i JOIN ex.users u USING (user_id) JOIN ex.items it USING (item_id);
-- the context: the scenario, and the history for the model that has one
CREATE FUNCTION ex_ctx(model text, scenario text, recent jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_build_object('scenario', scenario)
		   || CASE WHEN model = 'mmoe' THEN jsonb_build_object('recent_items', recent) ELSE '{}' END
$$;
-- an MMoE with scenario towers and a DIN history, and a PLE with the fm cross and text
CREATE TABLE ex_models AS
SELECT name, mtl_train(user_id, item_id, ARRAY[clicked, CASE WHEN clicked = 1 THEN purchased END]::float8[],
					   uf, itf, ex_ctx(name, scenario, recent_items), config) AS model
FROM ex_rows, (VALUES
	('mmoe', '{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "cvr", "type": "binary", "given": "ctr"}],
			   "scenario": "scenario", "sequences": {"recent_items": "item"}, "sequence_length": 10,
			   "epochs": 2, "seed": 3}'::jsonb),
	('ple', '{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "cvr", "type": "binary", "given": "ctr"}],
			  "model": "ple", "interaction": "fm", "text": ["title"], "scenario": "scenario",
			  "epochs": 2, "seed": 3}'::jsonb)) v(name, config)
GROUP BY name;

-- one row: every input is named, each task has its gates
SELECT name, t AS task, (SELECT string_agg(k, ', ' ORDER BY k) FROM jsonb_object_keys(e #> ARRAY['tasks', t, 'attributions']) k) AS inputs,
	   jsonb_array_length(e #> ARRAY['tasks', t, 'gates']) AS gated_levels,
	   (SELECT string_agg(x, ', ') FROM jsonb_array_elements_text(e #> ARRAY['tasks', t, 'gates', '0', 'experts']) x) AS experts
FROM ex_models m, LATERAL mtl_explain(m.model, 3, 5, NULL, NULL, ex_ctx(m.name, 'search', '[5, 9]')) e,
	 unnest(ARRAY['ctr', 'cvr']) t ORDER BY 1, 2;

-- completeness, checked against mtl_predict: the attributions of each task sum
-- to logit(score) - logit(the anonymous row's score) within the tolerance
-- 0.002 + 0.01 |difference|; the row's own logit and score are mtl_predict's
CREATE TABLE ex_checked AS
SELECT m.name, r.impression_id, t.i AS task, t.name AS task_name, e,
	   (SELECT sum(value::float8) FROM jsonb_each_text(e #> ARRAY['tasks', t.name, 'attributions'])) AS total,
	   ln(p.s[t.i] / (1 - p.s[t.i])) - ln(b.s[t.i] / (1 - b.s[t.i])) AS delta,
	   p.s[t.i] AS score
FROM ex_models m
CROSS JOIN LATERAL (SELECT * FROM ex_rows ORDER BY impression_id LIMIT 60) r
CROSS JOIN (VALUES (1, 'ctr'), (2, 'cvr')) t(i, name)
CROSS JOIN LATERAL (SELECT CASE WHEN r.impression_id % 4 = 0 THEN NULL ELSE r.uf END AS uf,
						   CASE WHEN r.impression_id % 6 = 0 THEN NULL
								ELSE ex_ctx(m.name, r.scenario, r.recent_items) END AS ctx,
						   CASE WHEN r.impression_id % 5 = 0 THEN r.user_id + 1000000 ELSE r.user_id END AS user_id) v
CROSS JOIN LATERAL mtl_explain(m.model, v.user_id, r.item_id, v.uf, r.itf, v.ctx) e
CROSS JOIN LATERAL (SELECT mtl_predict(m.model, v.user_id, r.item_id, v.uf, r.itf, v.ctx) AS s) p
CROSS JOIN LATERAL (SELECT mtl_predict(m.model, NULL, NULL) AS s) b;
SELECT name, count(*) AS explained,
	   bool_and(abs(total - delta) <= 0.002 + 0.01 * abs(delta)) AS sums_to_difference,
	   bool_and((e #>> ARRAY['tasks', task_name, 'error'])::float8 <= 0.002 + 0.01 * abs(delta)) AS reported_error_within,
	   bool_and(abs((e #>> ARRAY['tasks', task_name, 'score'])::float8 - score) < 1e-6) AS score_is_predicts,
	   max(abs(delta)) > 0.3 AS rows_differ,
	   bool_and((e->>'steps')::int BETWEEN 32 AND 1024) AS steps
FROM ex_checked GROUP BY name ORDER BY name;
-- the gates of a task over its experts sum to 1
SELECT name, bool_and(abs(w - 1) < 1e-5) AS gates_sum_to_1
FROM (SELECT name, (SELECT sum(x::float8) FROM jsonb_array_elements_text(g->'weights') x) AS w
	  FROM ex_checked, jsonb_array_elements(e #> ARRAY['tasks', task_name, 'gates']) g) s
GROUP BY name ORDER BY name;
-- an unknown user's id, like every input the row shares with the anonymous row, gets nothing
SELECT name, bool_and((e #>> ARRAY['tasks', task_name, 'attributions', 'user_id'])::float8 = 0) AS unknown_user_nothing
FROM ex_checked WHERE impression_id % 5 = 0 GROUP BY name ORDER BY name;
-- the anonymous row itself: its logit is the baseline, every attribution 0
SELECT name, (e #>> '{tasks,ctr,logit}')::float8 = (e #>> '{tasks,ctr,baseline_logit}')::float8 AS same_logit,
	   (SELECT bool_and(value::float8 = 0) FROM jsonb_each_text(e #> '{tasks,ctr,attributions}')) AS all_zero
FROM ex_models, LATERAL mtl_explain(model, NULL, NULL) e ORDER BY name;

-- global importance: per task every input, by mean |attribution|, largest first
CREATE TABLE ex_global AS
SELECT m.name, mtl_explain_global(m.model, r.user_id, r.item_id, r.uf, r.itf,
								  ex_ctx(m.name, r.scenario, r.recent_items)) AS g
FROM ex_models m, (SELECT * FROM ex_rows ORDER BY impression_id LIMIT 200) r GROUP BY m.name;
SELECT name, (g->>'rows')::int AS rows, jsonb_array_length(g #> '{tasks,ctr}') AS inputs,
	   (SELECT bool_and(a.mean_abs >= b.mean_abs)
		FROM ROWS FROM (jsonb_to_recordset(g #> '{tasks,ctr}') AS (input text, mean_abs float8))
			 WITH ORDINALITY a(input, mean_abs, n)
		JOIN ROWS FROM (jsonb_to_recordset(g #> '{tasks,ctr}') AS (input text, mean_abs float8))
			 WITH ORDINALITY b(input, mean_abs, n) ON b.n = a.n + 1) AS ranked
FROM ex_global ORDER BY name;
-- its means are those of mtl_explain row by row
SELECT c.name, bool_and(abs(g.mean_abs - c.mean_abs) < 1e-6 * greatest(1, c.mean_abs)) AS means_agree
FROM (SELECT m.name, a.key AS input, avg(abs(a.value::float8)) AS mean_abs
	  FROM ex_models m, (SELECT * FROM ex_rows ORDER BY impression_id LIMIT 200) r,
		   LATERAL jsonb_each_text(mtl_explain(m.model, r.user_id, r.item_id, r.uf, r.itf,
											   ex_ctx(m.name, r.scenario, r.recent_items)) #> '{tasks,ctr,attributions}') a
	  GROUP BY m.name, a.key) c
JOIN ex_global x ON x.name = c.name
JOIN LATERAL jsonb_to_recordset(x.g #> '{tasks,ctr}') g(input text, mean_abs float8) ON g.input = c.input
GROUP BY c.name ORDER BY c.name;
-- no rows: NULL
SELECT mtl_explain_global(model, 1, 1) IS NULL AS no_rows FROM ex_models WHERE false;
-- rows with a NULL model are skipped
SELECT (mtl_explain_global(CASE WHEN g % 2 = 0 THEN m.model END, 3, 5) ->> 'rows')::int AS rows_explained
FROM ex_models m, generate_series(1, 4) g WHERE m.name = 'mmoe';
-- a compressed model explains as it scores: complete, the same inputs
SELECT m.name, abs((SELECT sum(value::float8) FROM jsonb_each_text(e #> '{tasks,ctr,attributions}'))
				   - ((e #>> '{tasks,ctr,logit}')::float8 - (e #>> '{tasks,ctr,baseline_logit}')::float8))
			   <= 0.002 + 0.01 * abs((e #>> '{tasks,ctr,logit}')::float8 - (e #>> '{tasks,ctr,baseline_logit}')::float8)
			   AS int8_complete,
	   (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(e #> '{tasks,ctr,attributions}') k)
	   = (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(mtl_explain(m.model, 3, 5) #> '{tasks,ctr,attributions}') k)
	   AS same_inputs
FROM ex_models m, LATERAL mtl_explain(mtl_compress(m.model, 'int8'), 3, 5, NULL, NULL, ex_ctx(m.name, 'ads', '[7]')) e
ORDER BY m.name;

-- bad input
SELECT mtl_explain(NULL::bytea, 1, 2) IS NULL AS null_model;
\set VERBOSITY sqlstate
SELECT mtl_explain('\x00'::bytea, 1, 2);
SELECT mtl_explain(substr(model, 1, 200), 1, 2) FROM ex_models WHERE name = 'mmoe';
SELECT mtl_explain(model, 1, 2, '[1, 2]', NULL) FROM ex_models WHERE name = 'mmoe';
SELECT mtl_explain(model, 1, 2, NULL, NULL, '"search"') FROM ex_models WHERE name = 'mmoe';
SELECT mtl_explain('no such model', 1, 2);
SELECT mtl_explain_global(m.model, 1, 2) FROM ex_models m;
\set VERBOSITY default
