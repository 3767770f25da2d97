-- mtl_info: what a model is
CREATE TABLE i_rows AS
SELECT u AS user_id, i AS item_id, (u + i) % 2 AS clicked, 'seg' || (u % 3) AS segment, (i % 2 = 0) AS promo, 5.0 * i AS price
FROM generate_series(1, 30) u, generate_series(1, 10) i;
CREATE TABLE i_model AS
SELECT mtl_train(user_id, item_id, ARRAY[clicked]::float8[],
	jsonb_build_object('segment', segment), jsonb_build_object('promo', promo, 'price', price),
	'{"tasks": [{"name": "ctr", "type": "binary", "weight": 2}], "model": "shared_bottom",
	  "bottom_units": [16, 8], "tower_units": [4], "embedding_dim": 4, "epochs": 3}') AS model
FROM i_rows;

SELECT jsonb_pretty(mtl_info(model) - 'bytes' - 'training') FROM i_model;
SELECT (mtl_info(model) -> 'bytes')::int = length(model) AS bytes_match,
	   mtl_info(model) #> '{training,rows}' AS rows,
	   mtl_info(model) #> '{training,epochs}' AS epochs,
	   jsonb_array_length(mtl_info(model) #> '{training,loss}') AS losses,
	   mtl_info(model) #> '{training,seconds}' AS seconds
FROM i_model;
-- 10% of the rows held out by default: their loss per epoch and the epoch kept
SELECT mtl_info(model) #> '{training,validation_rows}' AS validation_rows,
	   jsonb_array_length(mtl_info(model) #> '{training,validation_loss}') AS validation_losses,
	   (mtl_info(model) #>> '{training,best_epoch}')::int BETWEEN 1 AND 3 AS best_epoch_kept,
	   mtl_info(model) #> '{training,patience}' AS patience
FROM i_model;
-- without validation: no validation losses, the last epoch is kept
SELECT (mtl_info(mtl_train(user_id, item_id, ARRAY[clicked]::float8[],
	'{"tasks": [{"name": "ctr", "type": "binary"}], "epochs": 2, "validation_fraction": 0}'))
	-> 'training') - 'loss'::text AS no_validation
FROM i_rows;

-- record_seconds keeps the training time, and the seconds of each phase
CREATE TEMP TABLE timed AS
SELECT mtl_info(mtl_train(user_id, item_id, ARRAY[clicked]::float8[],
	'{"tasks": [{"name": "ctr", "type": "binary"}], "epochs": 1, "record_seconds": true}'))
	-> 'training' AS t
FROM i_rows;
SELECT (t ->> 'seconds')::float8 >= 0 AS seconds_recorded,
	   array_agg(p.key ORDER BY p.key) AS phases,
	   bool_and(p.value::float8 >= 0) AS phases_recorded,
	   sum(p.value::float8) FILTER (WHERE p.key IN ('vocabulary', 'encode_rows', 'epochs', 'validation', 'measure'))
		 <= (t ->> 'seconds')::float8 + 0.001 AS within_training
FROM timed, jsonb_each_text(t -> 'phase_seconds') p GROUP BY t;

-- default mmoe architecture
SELECT mtl_info(mtl_train(user_id, item_id, ARRAY[clicked]::float8[],
	'{"tasks": [{"name": "ctr", "type": "binary"}], "epochs": 1}')) - 'bytes' - 'training' - 'parameters'
	- 'embedding_parameters' - 'features' AS defaults
FROM i_rows;
SELECT mtl_info(NULL) IS NULL AS strict;

-- a non-negative field with a long tail (spend) is standardised after log1p,
-- one without (age) and one with negative values (balance) as they are;
-- log_skewed false keeps every field plain
CREATE TEMP TABLE skewed AS
SELECT g AS user_id, g % 7 AS item_id, (g % 3 = 0)::int AS clicked,
	   jsonb_build_object('spend', CASE WHEN g % 20 = 0 THEN 5000 + g ELSE g % 3 END,
						  'age', 20 + g % 40, 'balance', CASE WHEN g % 20 = 0 THEN 5000 ELSE -1 END) AS f
FROM generate_series(1, 400) g;
SELECT c.log_skewed, f ->> 'name' AS field, f ->> 'transform' AS transform,
	   round((f ->> 'mean')::numeric, 3) AS mean
FROM (VALUES (true), (false)) c(log_skewed),
	 LATERAL (SELECT mtl_train(user_id, item_id, ARRAY[clicked]::float8[], f, NULL::jsonb,
						 jsonb_build_object('tasks', '[{"name": "ctr", "type": "binary"}]'::jsonb,
											'epochs', 1, 'log_skewed', c.log_skewed)) AS m FROM skewed) t,
	 jsonb_array_elements(mtl_info(t.m) -> 'features') f
ORDER BY 1 DESC, 2;
SELECT mtl_train(user_id, item_id, ARRAY[clicked]::float8[], '{"tasks": [{"name": "ctr", "type": "binary"}], "log_skewed": 1}') FROM skewed;

-- numbers in feature objects are read exactly enough: one row each, its mean is the value
SELECT x::float8 AS x, abs((mtl_info(m) #>> '{features,0,mean}')::float8 - x::float8)
		  <= 1e-8 * abs(x::float8) AS same
FROM (SELECT x, (SELECT mtl_train(NULL::bigint, NULL::bigint, ARRAY[1]::float8[],
						 jsonb_build_object('x', one.y), NULL::jsonb,
						 '{"tasks": [{"name": "p", "type": "binary"}], "epochs": 1, "validation_fraction": 0}') FROM (SELECT x) AS one(y)) AS m
	  FROM (VALUES (0::numeric), (1), (-1), (0.001), (123456.789), (-5e10), (1e-20),
				   (12345678901234567890), (-0.5), (9999.9999), (10000), (3.14159265358979323846),
				   (2.5e-7), (-987654321.123456789), (1e30), (-1e-30),
				   -- long headers: scale or weight beyond the short form's 63
				   (1e-70), (-1.5e300), (123.45678901234567890123456789012345678901234567890123456789012345678)) AS v(x)) t;
