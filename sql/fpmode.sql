-- training and scoring flush denormal floats to zero, and the session's own
-- arithmetic keeps them afterwards: on success, after an error inside
-- training, and after a cancel caught by a PL/pgSQL block
CREATE FUNCTION denormals_kept() RETURNS bool LANGUAGE sql AS
$$ SELECT 2.2250738585072014e-308::float8 / 4 > 0 $$;
SELECT denormals_kept() AS before_training;

SELECT mtl_demo_shop('fp_shop', 200, 60, 6000, 0.2);
CREATE TABLE fp_models AS
SELECT mtl_train(user_id, item_id, ARRAY[clicked]::float8[],
				 '{"tasks": [{"name": "ctr", "type": "binary"}], "epochs": 2, "threads": 2}') AS model
FROM fp_shop.impressions;
SELECT denormals_kept() AS after_training;

SELECT count(mtl_predict(model, user_id, item_id)) AS scored FROM fp_models, fp_shop.impressions;
SELECT denormals_kept() AS after_scoring;
SELECT count(*) AS recommended FROM fp_models, mtl_recommend(model, 1, 5);
SELECT denormals_kept() AS after_recommend;

-- a cancel in the middle of the epochs (on two threads) ends the transaction
SET statement_timeout = '500ms';
SELECT mtl_train(user_id, item_id, ARRAY[clicked]::float8[],
				 '{"tasks": [{"name": "ctr", "type": "binary"}], "epochs": 1024, "patience": 0, "threads": 2}')
FROM fp_shop.impressions, generate_series(1, 5);
RESET statement_timeout;
SELECT denormals_kept() AS after_cancel;

-- the same, caught in PL/pgSQL: the transaction goes on
SET statement_timeout = '500ms';
DO $$
BEGIN
	PERFORM mtl_train(user_id, item_id, ARRAY[clicked]::float8[],
					  '{"tasks": [{"name": "ctr", "type": "binary"}], "epochs": 1024, "patience": 0, "threads": 2}')
	FROM fp_shop.impressions, generate_series(1, 5);
	RAISE EXCEPTION 'training was not cancelled';
EXCEPTION WHEN query_canceled THEN
	RAISE NOTICE 'cancelled; denormals kept: %', denormals_kept();
END $$;
RESET statement_timeout;
SELECT denormals_kept() AS after_caught_cancel;

DROP TABLE fp_models;
DROP FUNCTION denormals_kept();
DROP SCHEMA fp_shop CASCADE;
