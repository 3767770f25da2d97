-- mtl_update: continue training a model on new rows
SET client_min_messages = warning;
SELECT mtl_demo_shop('upd_shop', 200, 80, 8000, 0.6);
RESET client_min_messages;
\set labels 'ARRAY[clicked, CASE WHEN clicked = 1 THEN purchased END]::float8[]'
CREATE TABLE upd_models AS
SELECT 'old' AS name, mtl_train(user_id, item_id, :labels,
	'{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "cvr", "type": "binary", "given": "ctr"}], "epochs": 3}') AS model
FROM upd_shop.impressions WHERE day <= 10 AND user_id <= 150 AND item_id <= 60;

-- new users and items join the vocabularies; the architecture and settings stay
INSERT INTO upd_models
SELECT 'updated', mtl_update((SELECT model FROM upd_models WHERE name = 'old'), user_id, item_id, :labels, '{}')
FROM upd_shop.impressions WHERE day > 10;
SELECT name, mtl_info(model)->'users' AS users, mtl_info(model)->'items' AS items,
	   mtl_info(model)->'model' AS model, mtl_info(model)->'training'->'rows' AS rows_trained,
	   mtl_info(model)->'training'->'learning_rate' AS lr
FROM upd_models ORDER BY name;
-- a user the old model never saw now has scores of its own (not the anonymous ones)
SELECT (mtl_predict(o.model, 190, 5))[1] = (mtl_predict(o.model, NULL, 5))[1] AS old_sees_anonymous,
	   (mtl_predict(u.model, 190, 5))[1] <> (mtl_predict(u.model, NULL, 5))[1] AS updated_knows_user
FROM upd_models o, upd_models u WHERE o.name = 'old' AND u.name = 'updated';
-- updated on days 11-12, the model scores days 13-14 better than the stale one
-- (measured: AUC 0.571 against 0.549)
WITH u AS (SELECT mtl_update((SELECT model FROM upd_models WHERE name = 'old'), user_id, item_id, :labels, '{}') AS model
		   FROM upd_shop.impressions WHERE day BETWEEN 11 AND 12)
SELECT mtl_auc((mtl_predict(u.model, i.user_id, i.item_id))[1], i.clicked) >
	   mtl_auc((mtl_predict(o.model, i.user_id, i.item_id))[1], i.clicked) + 0.01 AS update_beats_stale
FROM u, upd_models o, upd_shop.impressions i WHERE o.name = 'old' AND i.day > 12;
-- the same update twice gives the same bytes
SELECT mtl_update((SELECT model FROM upd_models WHERE name = 'old'), user_id, item_id, :labels, '{}') =
	   (SELECT model FROM upd_models WHERE name = 'updated') AS reproducible
FROM upd_shop.impressions WHERE day > 10;
-- training settings can change; freeze "shared" trains the towers only
INSERT INTO upd_models
SELECT 'frozen', mtl_update((SELECT model FROM upd_models WHERE name = 'old'), user_id, item_id, :labels,
	'{"freeze": "shared", "learning_rate": 0.001, "epochs": 2, "seed": 5}')
FROM upd_shop.impressions WHERE day > 10;
SELECT mtl_info(model)->'training'->'learning_rate' AS lr, mtl_info(model)->'training'->'seed' AS seed,
	   (mtl_info(model)->'training'->>'epochs')::int <= 2 AS epochs_capped
FROM upd_models WHERE name = 'frozen';
-- with frozen embeddings, a new user still scores as an anonymous one
SELECT (mtl_predict(model, 190, 5))[1] = (mtl_predict(model, NULL, 5))[1] AS new_user_still_anonymous
FROM upd_models WHERE name = 'frozen';

-- adding a task: labels hold the old tasks, then the new ones
INSERT INTO upd_models
SELECT 'with rating', mtl_update((SELECT model FROM upd_models WHERE name = 'old'), user_id, item_id,
	ARRAY[clicked, CASE WHEN clicked = 1 THEN purchased END, rating]::float8[],
	'{"add_tasks": [{"name": "rating", "type": "regression"}]}')
FROM upd_shop.impressions WHERE day > 10;
SELECT jsonb_path_query_array(mtl_info(model), '$.tasks[*].name') AS tasks,
	   array_length(mtl_predict(model, 3, 4), 1) AS outputs,
	   (mtl_predict(model, 3, 4))[3] BETWEEN 1 AND 5 AS rating_in_range
FROM upd_models WHERE name = 'with rating';
-- the added task learned something: better than predicting the mean rating
SELECT sqrt(avg(((mtl_predict(m.model, i.user_id, i.item_id))[3] - i.rating) ^ 2)) <
	   (SELECT stddev_pop(rating) FROM upd_shop.impressions WHERE day > 10 AND rating IS NOT NULL) AS beats_mean
FROM upd_models m, upd_shop.impressions i WHERE m.name = 'with rating' AND i.day > 10 AND i.rating IS NOT NULL;
-- an added conditional task may be given an old one
SELECT mtl_info(mtl_update((SELECT model FROM upd_models WHERE name = 'old'), user_id, item_id,
	ARRAY[clicked, CASE WHEN clicked = 1 THEN purchased END, CASE WHEN clicked = 1 THEN purchased END]::float8[],
	'{"add_tasks": [{"name": "buy2", "type": "binary", "given": "ctr"}], "epochs": 1}'))->'tasks'->2->'given' AS given
FROM upd_shop.impressions WHERE day > 10;
-- features, context and no rows
SELECT mtl_update((SELECT model FROM upd_models WHERE name = 'old'), user_id, item_id, :labels,
	'{"segment": "a"}', NULL, '{"scenario": "home"}', '{"epochs": 1}') IS NOT NULL AS with_context
FROM upd_shop.impressions WHERE day > 12;
SELECT mtl_update((SELECT model FROM upd_models WHERE name = 'old'), user_id, item_id, :labels, '{}') IS NULL AS no_rows
FROM upd_shop.impressions WHERE false;

-- errors
SELECT mtl_update(NULL, user_id, item_id, :labels, '{}') FROM upd_shop.impressions WHERE day > 13;
SELECT mtl_update('\x00'::bytea, user_id, item_id, :labels, '{}') FROM upd_shop.impressions WHERE day > 13;
SELECT mtl_update(model, 1, 2, ARRAY[1, 0]::float8[], NULL) FROM upd_models WHERE name = 'old';
SELECT mtl_update(model, 1, 2, ARRAY[1, 0]::float8[], '[]') FROM upd_models WHERE name = 'old';
SELECT mtl_update(model, 1, 2, ARRAY[1, 0]::float8[], '{"embedding_dim": 16}') FROM upd_models WHERE name = 'old';
SELECT mtl_update(model, 1, 2, ARRAY[1, 0]::float8[], '{"tasks": []}') FROM upd_models WHERE name = 'old';
SELECT mtl_update(model, 1, 2, ARRAY[1, 0]::float8[], '{"nope": 1}') FROM upd_models WHERE name = 'old';
SELECT mtl_update(model, 1, 2, ARRAY[1, 0]::float8[], '{"freeze": "all"}') FROM upd_models WHERE name = 'old';
SELECT mtl_update(model, 1, 2, ARRAY[1, 0]::float8[], '{"learning_rate": -1}') FROM upd_models WHERE name = 'old';
SELECT mtl_update(model, 1, 2, ARRAY[1, 0]::float8[], '{"add_tasks": [{"name": "ctr", "type": "binary"}]}') FROM upd_models WHERE name = 'old';
SELECT mtl_update(model, 1, 2, ARRAY[1, 0]::float8[], '{"add_tasks": [{"name": "x", "type": "regression", "given": "ctr"}]}') FROM upd_models WHERE name = 'old';
SELECT mtl_update(model, 1, 2, ARRAY[1, 0]::float8[], '{"add_tasks": [{"name": "x", "type": "binary"}]}') FROM upd_models WHERE name = 'old';
SELECT mtl_update(model, 1, 2, ARRAY[1, 0, 1]::float8[], '{}') FROM upd_models WHERE name = 'old';
WITH s AS (SELECT mtl_train(user_id, item_id, ARRAY[clicked, purchased]::float8[],
	'{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "buy", "type": "binary"}], "model": "single_task", "epochs": 1}') AS m
	FROM upd_shop.impressions WHERE day > 13)
SELECT mtl_update(s.m, 1, 2, ARRAY[1, 0, 1]::float8[], '{"add_tasks": [{"name": "x", "type": "binary"}]}') FROM s;
