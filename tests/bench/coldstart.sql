-- Cold start figures (the README's): the setup of the pg_regress test
-- coldstart, printing the numbers that test only compares. A fifth of the
-- users and items are left out of training; their rows are scored with and
-- without their features.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SELECT mtl_demo_shop('cold_shop', 600, 150, 40000, 0.8);
RESET client_min_messages;
CREATE TEMP TABLE cold_rows AS
SELECT i.*, to_jsonb(u) - 'user_id' AS uf, to_jsonb(it) - 'item_id' AS itf
FROM cold_shop.impressions i JOIN cold_shop.users u USING (user_id) JOIN cold_shop.items it USING (item_id);
CREATE TEMP TABLE cold_model AS
SELECT mtl_train(user_id, item_id, ARRAY[clicked]::float8[], uf, itf,
	'{"tasks": [{"name": "ctr", "type": "binary"}], "epochs": 8}') AS model
FROM cold_rows WHERE user_id % 5 <> 0 AND item_id % 5 <> 0;
\echo 'cold users on warm items: ctr AUC and mean predicted ctr, with features and without (the population fallback)'
SELECT round(mtl_auc(w, clicked)::numeric, 3) AS auc_with_features,
	   round(mtl_auc(wo, clicked)::numeric, 3) AS auc_fallback,
	   round(avg(w)::numeric, 3) AS mean_with_features, round(avg(wo)::numeric, 3) AS mean_fallback,
	   round(avg(clicked)::numeric, 3) AS click_rate, count(*) AS rows
FROM (SELECT r.clicked, (mtl_predict(m.model, r.user_id, r.item_id, r.uf, NULL))[1] AS w,
			 (mtl_predict(m.model, r.user_id, r.item_id))[1] AS wo
	  FROM cold_model m, cold_rows r WHERE r.user_id % 5 = 0 AND r.item_id % 5 <> 0) x;
\echo 'cold items for warm users: ctr AUC with the item features and without'
SELECT round(mtl_auc((mtl_predict(m.model, r.user_id, r.item_id, NULL, r.itf))[1], r.clicked)::numeric, 3) AS auc_with_features,
	   round(mtl_auc((mtl_predict(m.model, r.user_id, r.item_id))[1], r.clicked)::numeric, 3) AS auc_fallback
FROM cold_model m, cold_rows r WHERE r.user_id % 5 <> 0 AND r.item_id % 5 = 0;
SET client_min_messages = warning;
DROP SCHEMA cold_shop CASCADE;
