-- rows beyond rows_memory_mb spill to a temporary file and epochs stream them
-- back in shuffled chunks: the model is as good as one trained in memory,
-- a fixed seed reproduces it, temp_file_limit holds, and no file is left
SELECT mtl_demo_shop('spill_shop', 600, 150, 60000, 0.3);
SET max_parallel_workers_per_gather = 0;
CREATE TABLE spill_models AS
SELECT s.name, mtl_train(i.user_id, i.item_id,
	ARRAY[i.clicked, CASE WHEN i.clicked = 1 THEN i.purchased END]::float8[],
	to_jsonb(u) - 'user_id', to_jsonb(it) - 'item_id', jsonb_build_object('scenario', i.scenario),
	jsonb_build_object('tasks', '[{"name": "ctr", "type": "binary"}, {"name": "cvr", "type": "binary", "given": "ctr"}]'::jsonb,
					   'scenario', 'scenario', 'epochs', 4, 'rows_memory_mb', s.mb,
					   'validate_every', s.every)) AS model
FROM (VALUES ('memory', 1024, 0), ('streamed', 0, 0), ('streamed again', 0, 0),
			 ('streamed, checked every 5000 rows', 0, 5000), ('streamed, checked again', 0, 5000)) s(name, mb, every)
CROSS JOIN spill_shop.impressions i JOIN spill_shop.users u USING (user_id) JOIN spill_shop.items it USING (item_id)
WHERE i.day <= 12
GROUP BY s.name;

-- the same rows and validation share either way; a fixed seed gives the same bytes
SELECT name, (mtl_info(model) #>> '{training,rows}')::int + (mtl_info(model) #>> '{training,validation_rows}')::int AS rows,
	   abs((mtl_info(model) #>> '{training,validation_rows}')::float8 / 48000 - 0.1) < 0.01 AS tenth_held_out
FROM spill_models ORDER BY name;
SELECT a.model = b.model AS streamed_reproducible
FROM spill_models a, spill_models b WHERE a.name = 'streamed' AND b.name = 'streamed again';
-- checks inside an epoch read the streamed rows through a second reader while
-- training streams them: reproducible, the held-out rows all measured, and it
-- learns (patience counts checks: 2 of them 5000 rows apart stop it early)
SELECT a.model = b.model AS checked_reproducible, a.model <> c.model AS checks_changed_it,
	   (mtl_info(a.model) #>> '{training,holdout,ctr,rows}')::int =
	   (mtl_info(a.model) #>> '{training,validation_rows}')::int AS holdout_measured,
	   (mtl_info(a.model) #>> '{training,holdout,ctr,auc}')::float8 > 0.6 AS learns
FROM spill_models a, spill_models b, spill_models c
WHERE a.name = 'streamed, checked every 5000 rows' AND b.name = 'streamed, checked again' AND c.name = 'streamed';

-- held-out days: streamed training is as good as in memory (within the seed spread)
SELECT abs(m.ctr - s.ctr) < 0.02 AS ctr_close, m.ctr > 0.6 AND s.ctr > 0.6 AS both_learn
FROM (SELECT m.name, mtl_auc((mtl_predict(m.model, i.user_id, i.item_id, NULL, NULL,
								jsonb_build_object('scenario', i.scenario)))[1], i.clicked) AS ctr
	  FROM spill_models m, spill_shop.impressions i WHERE i.day > 12 GROUP BY m.name) m,
	 (SELECT m.name, mtl_auc((mtl_predict(m.model, i.user_id, i.item_id, NULL, NULL,
								jsonb_build_object('scenario', i.scenario)))[1], i.clicked) AS ctr
	  FROM spill_models m, spill_shop.impressions i WHERE i.day > 12 GROUP BY m.name) s
WHERE m.name = 'memory' AND s.name = 'streamed';

-- temp_file_limit: a clear error, and the file is gone with it
SET temp_file_limit = '64kB';
\set VERBOSITY sqlstate
SELECT mtl_train(user_id, item_id, ARRAY[clicked]::float8[],
				 '{"tasks": [{"name": "ctr", "type": "binary"}], "rows_memory_mb": 0}')
FROM spill_shop.impressions;
\set VERBOSITY default
SELECT mtl_train(user_id, item_id, ARRAY[clicked]::float8[],
				 '{"tasks": [{"name": "ctr", "type": "binary"}], "rows_memory_mb": 0}')
FROM spill_shop.impressions;
RESET temp_file_limit;
SELECT count(*) AS temp_files_left FROM pg_ls_tmpdir();

-- the key is checked like the others
SELECT mtl_train(user_id, item_id, ARRAY[clicked]::float8[],
				 '{"tasks": [{"name": "ctr", "type": "binary"}], "rows_memory_mb": -1}')
FROM spill_shop.impressions;

RESET max_parallel_workers_per_gather;
DROP TABLE spill_models;
DROP SCHEMA spill_shop CASCADE;
