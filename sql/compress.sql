-- mtl_compress: fp16 and int8 models, smaller, scoring within the stated AUC loss
SET client_min_messages = warning;
SELECT mtl_demo_shop('comp', 2000, 300, 60000, 0.33);
RESET client_min_messages;
CREATE TABLE co_model AS
SELECT mtl_train(i.user_id, i.item_id, ARRAY[i.clicked, CASE WHEN i.clicked = 1 THEN i.purchased END]::float8[],
	to_jsonb(u) - 'user_id', to_jsonb(it) - 'item_id', jsonb_build_object('scenario', i.scenario),
	'{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "cvr", "type": "binary", "given": "ctr"}],
	  "scenario": "scenario", "embedding_dim": 16, "seed": 2}') AS model
FROM comp.impressions i JOIN comp.users u USING (user_id) JOIN comp.items it USING (item_id) WHERE i.day <= 11;
CREATE TABLE co_models AS
SELECT m AS method, CASE WHEN m = 'none' THEN model ELSE mtl_compress(model, m) END AS model
FROM co_model, unnest(ARRAY['none', 'fp16', 'int8']) m;
SELECT method, mtl_info(model) ->> 'compression' AS compression,
	   round(octet_length(model)::numeric / (SELECT octet_length(model) FROM co_model), 2) AS size_ratio
FROM co_models ORDER BY octet_length(model) DESC;
CREATE TABLE co_scored AS
SELECT c.method, i.impression_id, i.clicked,
	   (mtl_predict(c.model, i.user_id, i.item_id, NULL, NULL, jsonb_build_object('scenario', i.scenario)))[1] AS ctr
FROM co_models c, comp.impressions i WHERE i.day > 11;
-- the held-out CTR AUC loss: at most 0.001 (fp16) and 0.003 (int8); each score close to the float32 model's
SELECT c.method,
	   (SELECT mtl_auc(ctr, clicked) FROM co_scored WHERE method = 'none') - mtl_auc(c.ctr, c.clicked)
		   <= CASE c.method WHEN 'int8' THEN 0.003 ELSE 0.001 END AS within_bound,
	   max(abs(c.ctr - n.ctr)) < CASE c.method WHEN 'int8' THEN 0.05 ELSE 0.005 END AS scores_close
FROM co_scored c JOIN co_scored n ON n.impression_id = c.impression_id AND n.method = 'none'
GROUP BY c.method ORDER BY c.method;
-- mtl_recommend, mtl_evaluate and mtl_embeddings read compressed models
SELECT c.method, count(r.*) AS recommended,
	   (SELECT count(*) FROM mtl_embeddings(c.model, 'item')) AS item_vectors
FROM co_models c, LATERAL mtl_recommend(c.model, 7, 5) r GROUP BY c.method, c.model ORDER BY c.method;
SELECT method, (mtl_evaluate(c.model, i.user_id, i.item_id, ARRAY[i.clicked]::float8[] || ARRAY[NULL]::float8[], NULL, NULL,
							 jsonb_build_object('scenario', i.scenario)) #>> '{tasks,ctr,count}')::int AS evaluated
FROM co_models c, comp.impressions i WHERE i.day > 11 GROUP BY method ORDER BY method;
-- mtl_update continues a compressed model in float32
SELECT mtl_info(mtl_update(c.model, i.user_id, i.item_id, ARRAY[i.clicked, NULL]::float8[], NULL, NULL,
						   jsonb_build_object('scenario', i.scenario), '{"epochs": 1}')) ->> 'compression' AS updated
FROM (SELECT model FROM co_models WHERE method = 'int8') c, comp.impressions i WHERE i.day = 12;
-- back to float32, and again: the same bytes as one compression
SELECT mtl_compress(mtl_compress(model, 'none'), 'fp16') = mtl_compress(model, 'fp16') AS idempotent FROM co_model;
SELECT mtl_compress(NULL, 'fp16') IS NULL AS null_in_null_out;
\set VERBOSITY sqlstate
SELECT mtl_compress(model, 'int4') FROM co_model;
SELECT mtl_compress(substr(mtl_compress(model, 'int8'), 1, 300), 'none') FROM co_model;
SELECT mtl_predict(substr(mtl_compress(model, 'int8'), 1, 300), 1, 1) FROM co_model;
\set VERBOSITY default
SELECT mtl_compress(model, 'int4') FROM co_model;
