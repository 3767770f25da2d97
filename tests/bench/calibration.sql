-- calibration.sh's SQL: train the demo model, evaluate days 13-14 with ranking
-- metrics and reliability bins, and write the bins of at least 20 rows to
-- :work/*.dat for the plot.
\set ON_ERROR_STOP 1
\ir demo_model.sql
CREATE TEMP TABLE cb_eval AS
SELECT mtl_evaluate(m.model, i.user_id, i.item_id,
	ARRAY[i.clicked, CASE WHEN i.clicked = 1 THEN i.purchased END, i.rating]::float8[],
	NULL, NULL, jsonb_build_object('scenario', i.scenario), '{"k": [5, 10], "calibration_bins": true}') AS e
FROM shop.impressions i, demo_model m WHERE i.day > 12;
-- the true probabilities, as a model whose scores are the generator's p_click
CREATE TEMP TABLE cb_truth AS
SELECT (SELECT avg(p_click) FROM shop.impressions WHERE day > 12) AS mean_predicted,
	   (SELECT avg(clicked) FROM shop.impressions WHERE day > 12) AS observed,
	   sum(abs(sp - sc)) / sum(n) AS ece
FROM (SELECT sum(p_click) AS sp, sum(clicked) AS sc, count(*) AS n
	  FROM shop.impressions WHERE day > 12 GROUP BY least(floor(p_click * 10), 9)) b;
\echo '== held-out ranking per user (the user''s held-out impressions are the candidates) and calibration'
SELECT t.key AS task, (t.value ->> 'count')::int AS rows, round((t.value ->> 'auc')::numeric, 4) AS auc,
	   round((t.value ->> 'ndcg@5')::numeric, 4) AS ndcg_5, round((t.value ->> 'ndcg@10')::numeric, 4) AS ndcg_10,
	   round((t.value ->> 'recall@10')::numeric, 4) AS recall_10, round((t.value ->> 'mrr')::numeric, 4) AS mrr,
	   (t.value ->> 'ranking_users')::int AS users,
	   round((t.value ->> 'mean_predicted')::numeric, 4) AS mean_predicted,
	   round((t.value ->> 'observed')::numeric, 4) AS observed, round((t.value ->> 'ece')::numeric, 4) AS ece
FROM cb_eval, jsonb_each(e -> 'tasks') t WHERE t.value ->> 'type' = 'binary'
UNION ALL
SELECT 'ctr, true probabilities', NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	   round(mean_predicted::numeric, 4), round(observed::numeric, 4), round(ece::numeric, 4)
FROM cb_truth;
\echo '== reliability bins (rows, mean predicted, observed)'
SELECT t.key AS task, round((b ->> 'lower')::numeric, 1) AS lower, (b ->> 'count')::int AS rows,
	   round((b ->> 'mean_predicted')::numeric, 4) AS mean_predicted, round((b ->> 'observed')::numeric, 4) AS observed
FROM cb_eval, jsonb_each(e -> 'tasks') t, jsonb_array_elements(t.value -> 'calibration_bins') b
WHERE (b ->> 'count')::int > 0 ORDER BY 1, 2;
\set ctr_file :work '/ctr.dat'
\set cvr_file :work '/cvr.dat'
\set truth_file :work '/truth.dat'
COPY (SELECT b ->> 'mean_predicted', b ->> 'observed' FROM cb_eval, jsonb_array_elements(e #> '{tasks,ctr,calibration_bins}') b
	  WHERE (b ->> 'count')::int >= 20) TO :'ctr_file' (FORMAT text, DELIMITER ' ');
COPY (SELECT b ->> 'mean_predicted', b ->> 'observed' FROM cb_eval, jsonb_array_elements(e #> '{tasks,cvr,calibration_bins}') b
	  WHERE (b ->> 'count')::int >= 20) TO :'cvr_file' (FORMAT text, DELIMITER ' ');
COPY (SELECT avg(p_click), avg(clicked) FROM shop.impressions WHERE day > 12
	  GROUP BY least(floor(p_click * 10), 9) HAVING count(*) >= 20 ORDER BY 1) TO :'truth_file' (FORMAT text, DELIMITER ' ');
