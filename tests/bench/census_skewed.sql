-- log_skewed on the census-like data (census.sql): as it is (x1-x3 are
-- log-normal, t1 depends on ln(x1)), and with two columns like census-income's
-- capital gains and dividends (mostly 0, a long tail) that t1 depends on.
-- log_skewed on and off, seeds 1-3; mean test AUC of each task.
SET client_min_messages = warning;
SET max_parallel_workers_per_gather = 0;  -- rows in one order: the same models every run
SELECT setseed(0.3) AS seeded \gset
CREATE TEMP TABLE census_money AS
SELECT id, test, features || jsonb_build_object('gains', g, 'dividends', d) AS features, y2,
	   (random() < 1 / (1 + exp(-(ln(p1 / (1 - p1)) + CASE WHEN g > 5000 THEN 2.0 WHEN g > 0 THEN 0.5 ELSE 0 END
								 + 0.3 * ln(1 + d) - 0.6))))::int::float8 AS y1
FROM (SELECT c.*,
			 CASE WHEN random() < 0.05 THEN round(exp(8 + 2.4 * (random() + random() + random() - 1.5))) ELSE 0 END AS g,
			 CASE WHEN random() < 0.1 THEN round(exp(5 + 3 * (random() + random() - 1))) ELSE 0 END AS d
	  FROM census c) x;
CREATE TEMP TABLE census_both AS
SELECT 'census-like' AS data, id, test, features, y1, y2 FROM census
UNION ALL SELECT 'with money columns', id, test, features, y1, y2 FROM census_money;
CREATE TEMP TABLE skew_models AS
SELECT d.data, v.log_skewed, s AS seed,
	   (SELECT mtl_train(NULL::bigint, NULL::bigint, ARRAY[y1, y2], features, NULL::jsonb,
			jsonb_build_object('tasks', '[{"name": "t1", "type": "binary"}, {"name": "t2", "type": "binary"}]'::jsonb,
							   'log_skewed', v.log_skewed, 'seed', s))
		FROM census_both b WHERE b.data = d.data AND NOT test) AS model
FROM (VALUES ('census-like'), ('with money columns')) d(data), (VALUES (true), (false)) v(log_skewed),
	 generate_series(1, 3) s;
SELECT data, log_skewed, round(avg(t1)::numeric, 4) AS t1, round(avg(t2)::numeric, 4) AS t2,
	   round(min(t1)::numeric, 4) || '-' || round(max(t1)::numeric, 4) AS t1_range
FROM (SELECT data, log_skewed, seed, mtl_auc(p[1], y1) AS t1, mtl_auc(p[2], y2) AS t2
	  FROM (SELECT m.data, m.log_skewed, m.seed, b.y1, b.y2, mtl_predict(m.model, NULL, NULL, b.features, NULL) AS p
			FROM census_both b JOIN skew_models m USING (data) WHERE b.test OFFSET 0) x
	  GROUP BY 1, 2, 3) y
GROUP BY 1, 2 ORDER BY 1, 2 DESC;
