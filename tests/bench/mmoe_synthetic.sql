-- The MMoE paper's synthetic experiment in mtl: shared_bottom, mmoe and ple
-- on two regression tasks of correlation p, several seeds; test MSE (mean of
-- the two tasks) per model, p and seed. Expects table syn (from the CSV).
\set ON_ERROR_STOP 1
CREATE TEMP TABLE syn_rows AS
SELECT p, seed, split, y1, y2,
	   (SELECT jsonb_object_agg('x' || i, v) FROM unnest(x) WITH ORDINALITY t(v, i)) AS f
FROM syn;

-- the paper's sizes: shared-bottom of 113 units, 8 experts of 16, towers of 8;
-- batches of 128 and patience 10: with 8000 rows, batches of 512 gave too
-- few steps (still improving after 100 epochs; runs stuck on an early plateau)
CREATE TEMP TABLE configs (model text, config jsonb);
INSERT INTO configs VALUES
	('shared_bottom', '{"model": "shared_bottom", "bottom_units": [113]}'),
	('mmoe', '{"model": "mmoe", "experts": 8, "expert_units": [16]}'),
	('ple', '{"model": "ple", "levels": 2, "shared_experts": 4, "task_experts": 2, "expert_units": [16]}');

CREATE TEMP TABLE syn_models AS
SELECT c.model, r.p, r.seed,
	   mtl_train(NULL::bigint, NULL::bigint, ARRAY[r.y1, r.y2], r.f, NULL,
		 c.config || jsonb_build_object('tower_units', jsonb_build_array(8), 'epochs', 200, 'patience', 10,
			'batch_size', 128,
			'seed', r.seed, 'tasks', '[{"name": "t1", "type": "regression"}, {"name": "t2", "type": "regression"}]'::jsonb)) AS m
FROM syn_rows r, configs c
WHERE r.split = 'train'
GROUP BY c.model, r.p, r.seed;

SELECT m.model, m.p, m.seed,
	   round(avg(((s[1] - r.y1) ^ 2 + (s[2] - r.y2) ^ 2) / 2)::numeric, 4) AS test_mse
FROM syn_models m
JOIN syn_rows r ON r.p = m.p AND r.seed = m.seed AND r.split = 'test'
CROSS JOIN LATERAL (SELECT mtl_predict(m.m, NULL, NULL, r.f, NULL) AS s) x
GROUP BY m.model, m.p, m.seed
ORDER BY m.model, m.p DESC, m.seed;
