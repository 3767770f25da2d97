-- The architectures on the census-like data (features only, two binary
-- tasks; tests/bench/census.sql): test AUC with mtl's defaults (early
-- stopping), mean of seeds 1-3.
\set ON_ERROR_STOP 1
SET max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE census_family AS
SELECT m.model AS name, s.seed,
	   mtl_train(NULL::bigint, NULL::bigint, ARRAY[c.y1, c.y2], c.features, NULL::jsonb,
		 jsonb_build_object('model', m.model, 'seed', s.seed,
			'tasks', '[{"name": "t1", "type": "binary"}, {"name": "t2", "type": "binary"}]'::jsonb)) AS model
FROM census c,
	 unnest(ARRAY['single_task', 'shared_bottom', 'mmoe', 'ple']) WITH ORDINALITY AS m(model, ord),
	 generate_series(1, 3) AS s(seed)
WHERE NOT c.test
GROUP BY m.model, s.seed;

SELECT name, round(avg(t1)::numeric, 4) AS auc_t1,
	   round(min(t1)::numeric, 3) || '-' || round(max(t1)::numeric, 3) AS t1_range,
	   round(avg(t2)::numeric, 4) AS auc_t2,
	   round(min(t2)::numeric, 3) || '-' || round(max(t2)::numeric, 3) AS t2_range
FROM (SELECT f.name, f.seed, mtl_auc(s[1], c.y1) AS t1, mtl_auc(s[2], c.y2) AS t2
	  FROM census_family f
	  CROSS JOIN LATERAL (SELECT c.y1, c.y2, mtl_predict(f.model, NULL, NULL, c.features, NULL) AS s
						  FROM census c WHERE c.test OFFSET 0) c
	  GROUP BY f.name, f.seed) x
GROUP BY name
ORDER BY array_position(ARRAY['single_task', 'shared_bottom', 'mmoe', 'ple'], name);
SELECT 'oracle' AS name, round(mtl_auc(p1, y1)::numeric, 4) AS auc_t1, round(mtl_auc(p2, y2)::numeric, 4) AS auc_t2
FROM census WHERE test;
