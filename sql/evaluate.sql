-- mtl_evaluate: every metric against an independent computation in SQL
CREATE TABLE ev_rows AS
SELECT u AS user_id, i AS item_id,
	   ((u * 7 + i * 3) % 5 < 2)::int::float8 AS clicked,
	   CASE WHEN (u + i) % 3 = 0 THEN 1 + (u * i) % 5 END::float8 AS rating
FROM generate_series(1, 20) u, generate_series(1, 12) i;
CREATE TABLE ev_model AS
SELECT mtl_train(user_id, item_id, ARRAY[clicked, rating],
	'{"tasks": [{"name": "ctr", "type": "binary", "weight": 2}, {"name": "rating", "type": "regression"}],
	  "epochs": 5, "seed": 7}') AS model
FROM ev_rows;
CREATE TABLE ev_scored AS
SELECT r.*, (mtl_predict(m.model, r.user_id, r.item_id))[1] AS p,
	   (mtl_predict(m.model, r.user_id, r.item_id))[2] AS v
FROM ev_rows r, ev_model m;
CREATE TABLE ev_result AS
SELECT mtl_evaluate(m.model, r.user_id, r.item_id, ARRAY[r.clicked, r.rating]) AS e
FROM ev_rows r, ev_model m;

-- AUC by counting pairs: positive above negative, ties one half
CREATE FUNCTION ev_pair_auc(rows_user bigint) RETURNS float8 LANGUAGE sql AS $$
	SELECT (sum(CASE WHEN a.p > b.p THEN 1 WHEN a.p = b.p THEN 0.5 ELSE 0 END) / count(*))::float8
	FROM ev_scored a, ev_scored b
	WHERE a.clicked = 1 AND b.clicked = 0
	  AND (rows_user IS NULL OR (a.user_id = rows_user AND b.user_id = rows_user)) $$;
WITH per_user AS (
	SELECT user_id, count(*) AS n, ev_pair_auc(user_id) AS auc
	FROM ev_scored GROUP BY user_id HAVING min(clicked) = 0 AND max(clicked) = 1
), expect AS (
	SELECT ev_pair_auc(NULL) AS auc,
		   (SELECT sum(n * auc) / sum(n) FROM per_user) AS gauc,
		   (SELECT count(*) FROM per_user) AS gauc_users,
		   avg(-(clicked * ln(p) + (1 - clicked) * ln(1 - p))) AS logloss,
		   avg(((p >= 0.5)::int = clicked)::int) AS accuracy,
		   2.0 * sum(((p >= 0.5) AND clicked = 1)::int)
			   / (2.0 * sum(((p >= 0.5) AND clicked = 1)::int) + sum(((p >= 0.5) AND clicked = 0)::int)
				  + sum(((p < 0.5) AND clicked = 1)::int)) AS f1,
		   (SELECT sqrt(avg((v - rating) ^ 2)) FROM ev_scored WHERE rating IS NOT NULL) AS rmse,
		   (SELECT avg(abs(v - rating)) FROM ev_scored WHERE rating IS NOT NULL) AS mae
	FROM ev_scored
)
SELECT abs((e #>> '{tasks,ctr,auc}')::float8 - auc) < 1e-9 AS auc,
	   abs((e #>> '{tasks,ctr,gauc}')::float8 - gauc) < 1e-9 AS gauc,
	   (e #>> '{tasks,ctr,gauc_users}')::int = gauc_users AS gauc_users,
	   abs((e #>> '{tasks,ctr,logloss}')::float8 - logloss) < 1e-9 AS logloss,
	   abs((e #>> '{tasks,ctr,accuracy}')::float8 - accuracy) < 1e-9 AS accuracy,
	   abs((e #>> '{tasks,ctr,f1}')::float8 - f1) < 1e-9 AS f1,
	   abs((e #>> '{tasks,rating,rmse}')::float8 - rmse) < 1e-9 AS rmse,
	   abs((e #>> '{tasks,rating,mae}')::float8 - mae) < 1e-9 AS mae,
	   abs((e #>> '{fused}')::float8 - (2 * auc + 1 / (1 + rmse)) / 3) < 1e-9 AS fused,
	   e #> '{tasks,ctr,count}' AS ctr_count, e #> '{tasks,rating,count}' AS rating_count, e -> 'rows' AS rows
FROM ev_result, expect;

-- ranking per user (NDCG@k, recall@k, MRR over the users with a click) and
-- calibration (means, ECE over 10 equal-width bins), against SQL
CREATE TABLE ev_ranked AS
SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY p DESC) AS rank,
	   sum(clicked) OVER (PARTITION BY user_id) AS positives
FROM ev_scored;
CREATE FUNCTION ev_ranking(k int) RETURNS TABLE (ndcg float8, recall float8, mrr float8, users bigint)
LANGUAGE sql AS $$
	SELECT avg(dcg / idcg), avg(hits / positives), avg(1.0 / first_rank), count(*)
	FROM (SELECT user_id, positives,
				 sum(CASE WHEN rank <= k THEN clicked / log(2, rank + 1) ELSE 0 END)::float8 AS dcg,
				 sum(CASE WHEN rank <= k THEN clicked ELSE 0 END) AS hits,
				 min(CASE WHEN clicked = 1 THEN rank END) AS first_rank,
				 (SELECT sum(1 / log(2, i + 1)) FROM generate_series(1, least(k, positives::int)) i)::float8 AS idcg
		  FROM ev_ranked WHERE positives > 0 GROUP BY user_id, positives) u $$;
CREATE TABLE ev_options AS
SELECT mtl_evaluate(m.model, r.user_id, r.item_id, ARRAY[r.clicked, r.rating], NULL, NULL, NULL,
					'{"k": [3, 5], "calibration_bins": true}') AS e
FROM ev_rows r, ev_model m;
WITH k10 AS (SELECT * FROM ev_ranking(10)), k3 AS (SELECT * FROM ev_ranking(3)), k5 AS (SELECT * FROM ev_ranking(5)),
cal AS (
	SELECT sum(abs(sp - sc)) / (SELECT count(*) FROM ev_scored) AS ece
	FROM (SELECT sum(p) AS sp, sum(clicked) AS sc FROM ev_scored GROUP BY least(floor(p * 10), 9)) b
)
SELECT abs((r.e #>> '{tasks,ctr,ndcg@10}')::float8 - k10.ndcg) < 1e-9 AS ndcg10,
	   abs((r.e #>> '{tasks,ctr,recall@10}')::float8 - k10.recall) < 1e-9 AS recall10,
	   abs((r.e #>> '{tasks,ctr,mrr}')::float8 - k10.mrr) < 1e-9 AS mrr,
	   (r.e #>> '{tasks,ctr,ranking_users}')::int = k10.users AS users,
	   abs((o.e #>> '{tasks,ctr,ndcg@3}')::float8 - k3.ndcg) < 1e-9 AS ndcg3,
	   abs((o.e #>> '{tasks,ctr,recall@5}')::float8 - k5.recall) < 1e-9 AS recall5,
	   o.e #> '{tasks,ctr}' ? 'ndcg@10' AS ndcg10_with_k_3_5,
	   abs((r.e #>> '{tasks,ctr,mean_predicted}')::float8 - (SELECT avg(p) FROM ev_scored)) < 1e-9 AS mean_predicted,
	   abs((r.e #>> '{tasks,ctr,observed}')::float8 - (SELECT avg(clicked) FROM ev_scored)) < 1e-9 AS observed,
	   abs((r.e #>> '{tasks,ctr,ece}')::float8 - cal.ece) < 1e-9 AS ece,
	   r.e #> '{tasks,ctr}' ? 'calibration_bins' AS bins_by_default,
	   jsonb_array_length(o.e #> '{tasks,ctr,calibration_bins}') AS bins,
	   (SELECT sum((b ->> 'count')::int) FROM jsonb_array_elements(o.e #> '{tasks,ctr,calibration_bins}') b) AS binned_rows,
	   o.e #> '{tasks,rating}' ? 'mrr' AS regression_ranked
FROM ev_result r, ev_options o, k10, k3, k5, cal;
-- each bin against SQL
SELECT (b ->> 'lower')::float8 AS lower, (b ->> 'count')::int = coalesce(x.n, 0) AS count,
	   (b ->> 'mean_predicted') IS NULL AND x.n IS NULL OR abs((b ->> 'mean_predicted')::float8 - x.mp) < 1e-9 AS mean_predicted,
	   (b ->> 'observed') IS NULL AND x.n IS NULL OR abs((b ->> 'observed')::float8 - x.ob) < 1e-9 AS observed
FROM ev_options o, jsonb_array_elements(o.e #> '{tasks,ctr,calibration_bins}') b
LEFT JOIN (SELECT least(floor(p * 10), 9) / 10 AS lower, count(*) AS n, avg(p) AS mp, avg(clicked) AS ob
		   FROM ev_scored GROUP BY 1) x ON abs(x.lower - (b ->> 'lower')::float8) < 1e-9
ORDER BY 1;

-- with feature objects: the same as mtl_predict with them
SELECT abs((mtl_evaluate(m.model, r.user_id, r.item_id, ARRAY[r.clicked, r.rating], NULL, NULL)
			#>> '{tasks,ctr,auc}')::float8 - ev_pair_auc(NULL)) < 1e-9 AS features_form
FROM ev_rows r, ev_model m;

-- one class only: AUC and GAUC null, not an error; no rows: NULL
SELECT e #> '{tasks,ctr,auc}' AS auc, e #> '{tasks,ctr,gauc}' AS gauc, e #> '{tasks,ctr,count}' AS n
FROM (SELECT mtl_evaluate(m.model, r.user_id, r.item_id, ARRAY[1, r.rating]) AS e
	  FROM ev_rows r, ev_model m) x;
SELECT mtl_evaluate(m.model, r.user_id, r.item_id, ARRAY[r.clicked, r.rating]) IS NULL AS empty
FROM ev_rows r, ev_model m WHERE false;
-- rows with a NULL model or NULL labels are skipped
SELECT mtl_evaluate(CASE WHEN r.user_id > 1 THEN m.model END, r.user_id, r.item_id,
					CASE WHEN r.item_id > 1 THEN ARRAY[r.clicked, r.rating] END) -> 'rows' AS rows
FROM ev_rows r, ev_model m;

-- errors
SELECT mtl_evaluate(m.model, r.user_id, r.item_id, ARRAY[r.clicked]) FROM ev_rows r, ev_model m;
SELECT mtl_evaluate(m.model, r.user_id, r.item_id, ARRAY[2, r.rating]) FROM ev_rows r, ev_model m;
SELECT mtl_evaluate(CASE WHEN r.user_id % 2 = 0 THEN m.model ELSE n.model END,
					r.user_id, r.item_id, ARRAY[r.clicked, r.rating])
FROM ev_rows r, ev_model m, (SELECT mtl_train(user_id, item_id, ARRAY[clicked, rating],
	'{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "rating", "type": "regression"}], "epochs": 1}') AS model
	FROM ev_rows) n;
SELECT mtl_evaluate('\x00'::bytea, 1, 1, ARRAY[1, 1]::float8[]);
-- options: errors with their SQLSTATEs; NULL options are the defaults
SELECT (mtl_evaluate(m.model, r.user_id, r.item_id, ARRAY[r.clicked, r.rating], NULL, NULL, NULL, NULL)
		#> '{tasks,ctr}') ? 'ndcg@10' AS null_options
FROM ev_rows r, ev_model m;
\set VERBOSITY sqlstate
SELECT mtl_evaluate(m.model, r.user_id, r.item_id, ARRAY[r.clicked, r.rating], NULL, NULL, NULL, '{"top": 5}')
FROM ev_rows r, ev_model m;
SELECT mtl_evaluate(m.model, r.user_id, r.item_id, ARRAY[r.clicked, r.rating], NULL, NULL, NULL, '{"k": 0}')
FROM ev_rows r, ev_model m;
SELECT mtl_evaluate(m.model, r.user_id, r.item_id, ARRAY[r.clicked, r.rating], NULL, NULL, NULL, '{"k": 2.5}')
FROM ev_rows r, ev_model m;
SELECT mtl_evaluate(m.model, r.user_id, r.item_id, ARRAY[r.clicked, r.rating], NULL, NULL, NULL, '{"k": "10"}')
FROM ev_rows r, ev_model m;
SELECT mtl_evaluate(m.model, r.user_id, r.item_id, ARRAY[r.clicked, r.rating], NULL, NULL, NULL, '{"k": [[5]]}')
FROM ev_rows r, ev_model m;
SELECT mtl_evaluate(m.model, r.user_id, r.item_id, ARRAY[r.clicked, r.rating], NULL, NULL, NULL, '{"k": {"top": 5}}')
FROM ev_rows r, ev_model m;
SELECT mtl_evaluate(m.model, r.user_id, r.item_id, ARRAY[r.clicked, r.rating], NULL, NULL, NULL, '{"k": []}')
FROM ev_rows r, ev_model m;
SELECT mtl_evaluate(m.model, r.user_id, r.item_id, ARRAY[r.clicked, r.rating], NULL, NULL, NULL,
					'{"k": [1, 2, 3, 4, 5, 6, 7, 8, 9]}')
FROM ev_rows r, ev_model m;
SELECT mtl_evaluate(m.model, r.user_id, r.item_id, ARRAY[r.clicked, r.rating], NULL, NULL, NULL,
					'{"calibration_bins": "yes"}')
FROM ev_rows r, ev_model m;
SELECT mtl_evaluate(m.model, r.user_id, r.item_id, ARRAY[r.clicked, r.rating], NULL, NULL, NULL, '[10]')
FROM ev_rows r, ev_model m;
\set VERBOSITY default
SELECT mtl_evaluate(m.model, r.user_id, r.item_id, ARRAY[r.clicked, r.rating], NULL, NULL, NULL, '{"k": 0}')
FROM ev_rows r, ev_model m;
-- the scored rows it holds are bounded by mtl.evaluate_max_memory_mb
SET mtl.evaluate_max_memory_mb = 1;
SELECT mtl_evaluate(m.model, g % 20, g % 12, ARRAY[(g % 2)::float8, NULL])
FROM ev_model m, generate_series(1, 50000) g;
SELECT (mtl_evaluate(m.model, g % 20, g % 12, ARRAY[(g % 2)::float8, NULL]) ->> 'rows')::int AS rows_within_limit
FROM ev_model m, generate_series(1, 30000) g;
RESET mtl.evaluate_max_memory_mb;
