-- bad input gives errors, never a crash
CREATE TABLE e_rows AS SELECT 1::bigint AS user_id, 2::bigint AS item_id;
CREATE TABLE e_model AS
SELECT mtl_train(user_id, item_id, ARRAY[1, 3.5]::float8[],
	'{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "rating", "type": "regression"}], "epochs": 1}') AS model
FROM e_rows;

-- labels
SELECT mtl_train(user_id, item_id, NULL, '{"tasks": [{"name": "ctr", "type": "binary"}]}') FROM e_rows;
SELECT mtl_train(user_id, item_id, ARRAY[1, 0]::float8[], '{"tasks": [{"name": "ctr", "type": "binary"}]}') FROM e_rows;
SELECT mtl_train(user_id, item_id, '{}'::float8[], '{"tasks": [{"name": "ctr", "type": "binary"}]}') FROM e_rows;
SELECT mtl_train(user_id, item_id, ARRAY[[1]]::float8[], '{"tasks": [{"name": "ctr", "type": "binary"}]}') FROM e_rows;
SELECT mtl_train(user_id, item_id, ARRAY[0.5]::float8[], '{"tasks": [{"name": "ctr", "type": "binary"}]}') FROM e_rows;
SELECT mtl_train(user_id, item_id, ARRAY['NaN']::float8[], '{"tasks": [{"name": "ctr", "type": "binary"}]}') FROM e_rows;
SELECT mtl_train(user_id, item_id, ARRAY['Infinity']::float8[], '{"tasks": [{"name": "r", "type": "regression"}]}') FROM e_rows;
-- a row whose labels are all NULL is fine
SELECT mtl_train(user_id, item_id, ARRAY[NULL]::float8[], '{"tasks": [{"name": "ctr", "type": "binary"}], "epochs": 1}') IS NOT NULL AS all_missing_ok FROM e_rows;

-- features
SELECT mtl_train(user_id, item_id, ARRAY[1]::float8[], '[1, 2]', NULL, '{"tasks": [{"name": "ctr", "type": "binary"}]}') FROM e_rows;
SELECT mtl_train(user_id, item_id, ARRAY[1]::float8[], NULL, '"text"', '{"tasks": [{"name": "ctr", "type": "binary"}]}') FROM e_rows;
SELECT mtl_train(user_id, item_id, ARRAY[1]::float8[], '{"address": {"city": "x"}}', NULL, '{"tasks": [{"name": "ctr", "type": "binary"}]}') FROM e_rows;
SELECT mtl_train(user_id, item_id, ARRAY[1]::float8[], '{"tags": [["a"]]}', NULL, '{"tasks": [{"name": "ctr", "type": "binary"}]}') FROM e_rows;
SELECT mtl_train(user_id, item_id, ARRAY[1]::float8[], jsonb_build_object(repeat('k', 300), 1), NULL, '{"tasks": [{"name": "ctr", "type": "binary"}]}') FROM e_rows;
SELECT mtl_predict(model, 1, 2, '[1]', NULL) FROM e_model;
SELECT mtl_predict(model, 1, 2, NULL, '{"price": [1]}') FROM e_model;
-- JSON null features are missing values, not errors
SELECT array_length(mtl_predict(model, 1, 2, '{"segment": null}', '{}'), 1) AS scores FROM e_model;

-- models that are not models
SELECT mtl_predict('\x'::bytea, 1, 2);
SELECT mtl_predict('hello'::bytea, 1, 2);
SELECT mtl_info('\x00'::bytea);
SELECT mtl_info(substr(model, 1, length(model) - 1)) FROM e_model;
SELECT mtl_info(model || '\x00'::bytea) FROM e_model;
SELECT mtl_info(overlay(model placing '\xff'::bytea from 60 for 1)) FROM e_model;
SELECT mtl_info(overlay(model placing '\x09'::bytea from 5 for 1)) FROM e_model;
SELECT mtl_predict(overlay(model placing '\x00'::bytea from 1 for 1), 1, 2) FROM e_model;

-- hundreds of corrupted models: every one an error, the backend stays up
CREATE FUNCTION corrupt_all(model bytea) RETURNS TABLE (tried int, rejected int) LANGUAGE plpgsql AS $$
DECLARE
	bad bytea;
	n int := length(model);
BEGIN
	tried := 0;
	rejected := 0;
	FOR k IN 1..300 LOOP
		IF k % 3 = 0 THEN
			bad := substr(model, 1, (k * 7919) % n);
		ELSE
			bad := set_byte(model, (k * 104729) % n, (get_byte(model, (k * 104729) % n) + 1 + k % 255) % 256);
		END IF;
		tried := tried + 1;
		BEGIN
			PERFORM mtl_predict(bad, 1, 2);
		EXCEPTION WHEN data_corrupted THEN
			rejected := rejected + 1;
		END;
	END LOOP;
	RETURN NEXT;
END $$;
SELECT * FROM corrupt_all((SELECT model FROM e_model));
SELECT 1 AS still_alive;

-- mtl_auc: hand-computed cases, NULLs skipped, one class or no rows give NULL, bad input errors
SELECT mtl_auc(s, l) AS auc_075 FROM (VALUES (0.1, 0), (0.4, 0), (0.35, 1), (0.8, 1)) v(s, l);
SELECT mtl_auc(s, l) AS auc_ties_075 FROM (VALUES (0.2, 1), (0.2, 0), (0.9, 1), (0.1, 0), (0.7, NULL), (0.3, 0)) v(s, l);
SELECT mtl_auc(s, l) IS NULL AS one_class_null FROM (VALUES (0.1, 1), (0.4, 1)) v(s, l);
SELECT mtl_auc(s, l) IS NULL AS no_rows_null FROM (VALUES (0.1, 1)) v(s, l) WHERE false;
SELECT mtl_auc(s, l) FROM (VALUES ('NaN'::float8, 1), (0.4, 0)) v(s, l);
SELECT mtl_auc(s, l) FROM (VALUES (0.5, 2), (0.4, 0)) v(s, l);

-- mtl_demo_shop arguments
SELECT mtl_demo_shop('bad_shop', 0, 10, 10);
SELECT mtl_demo_shop('bad_shop', 10, 10, 10, 5);

-- each class of the core's errors and its SQLSTATE (the one table: src/pg/errors.c)
\set VERBOSITY sqlstate
-- corrupted bytes: XX001
SELECT mtl_info(substr(model, 1, 40)) FROM e_model;
-- a format version this build does not read: 0A000
SELECT mtl_info(set_byte(model, 4, 99)) FROM e_model;
-- the scenario key in no row's context: 22023
SELECT mtl_train(user_id, item_id, ARRAY[1, 2]::float8[], NULL, NULL, '{"where": "home"}',
	'{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "rating", "type": "regression"}], "scenario": "scenario"}') FROM e_rows;
-- more memory than max_memory_mb: 54000
SELECT mtl_train(g, g, ARRAY[1, 2]::float8[],
	'{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "rating", "type": "regression"}], "max_memory_mb": 0.01}')
FROM generate_series(1, 50) g;
-- values that do not belong together (a round's result and another model): 22000
SELECT mtl_round_apply(m.model, (SELECT mtl_train_round(model, user_id, item_id, ARRAY[1, 2]::float8[], '{"round": 1}')
								 FROM e_model, e_rows))
FROM (SELECT mtl_train(g, g, ARRAY[1, 2]::float8[],
	'{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "rating", "type": "regression"}], "epochs": 1}') AS model
	  FROM generate_series(1, 5) g) m;
-- an operation the model's type cannot do (new tasks for single_task): 0A000
SELECT mtl_update(m.model, user_id, item_id, ARRAY[1, 2, 0]::float8[],
	'{"add_tasks": [{"name": "cart", "type": "binary"}]}')
FROM (SELECT mtl_train(user_id, item_id, ARRAY[1, 2]::float8[],
	'{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "rating", "type": "regression"}], "model": "single_task", "epochs": 1}') AS model
	  FROM e_rows) m, e_rows;
-- a ranking objective that does not parse: 22023
SELECT * FROM mtl_recommend((SELECT model FROM e_model), 1, 5, 'ctr*nothing');
\set VERBOSITY default
