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

-- record_seconds keeps the training time
SELECT (mtl_info(mtl_train(user_id, item_id, ARRAY[clicked]::float8[],
	'{"tasks": [{"name": "ctr", "type": "binary"}], "epochs": 1, "record_seconds": true}'))
	#>> '{training,seconds}')::float8 >= 0 AS seconds_recorded
FROM i_rows;

-- default mmoe architecture
SELECT mtl_info(mtl_train(user_id, item_id, ARRAY[clicked]::float8[],
	'{"tasks": [{"name": "ctr", "type": "binary"}], "epochs": 1}')) - 'bytes' - 'training' - 'parameters'
	- 'embedding_parameters' - 'features' AS defaults
FROM i_rows;
SELECT mtl_info(NULL) IS NULL AS strict;
