-- the model family, conditional tasks, scenarios and training controls
SET client_min_messages = warning;
SELECT mtl_demo_shop('family_shop', 300, 100, 20000, 0.3);
RESET client_min_messages;
CREATE TABLE f_rows AS
SELECT i.user_id, i.item_id, i.day, i.scenario, i.clicked, i.purchased,
	   CASE WHEN i.clicked = 1 THEN i.purchased END AS bought_after_click,
	   to_jsonb(u) - 'user_id' AS uf, to_jsonb(it) - 'item_id' AS itf,
	   jsonb_build_object('scenario', i.scenario) AS ctx
FROM family_shop.impressions i
JOIN family_shop.users u USING (user_id)
JOIN family_shop.items it USING (item_id);

CREATE TABLE f_models (name text PRIMARY KEY, model bytea);
-- every architecture trains with a conditional task and scores probabilities
INSERT INTO f_models
SELECT m, mtl_train(user_id, item_id, ARRAY[clicked, bought_after_click]::float8[], uf, itf,
	jsonb_build_object('model', m, 'epochs', 3, 'tasks', '[{"name": "ctr", "type": "binary"},
		{"name": "cvr", "type": "binary", "given": "ctr"}]'::jsonb))
FROM f_rows, unnest(ARRAY['shared_bottom', 'mmoe', 'ple', 'single_task', 'esmm']) AS m
WHERE day <= 10
GROUP BY m;
SELECT name, mtl_info(model) ->> 'model' AS model,
	   mtl_info(model) -> 'tasks' -> 1 ->> 'given' AS cvr_given,
	   jsonb_array_length(mtl_info(model) -> 'gates' -> 'outputs') AS gated_outputs
FROM f_models ORDER BY name;
SELECT name, bool_and(s[1] > 0 AND s[1] < 1 AND s[2] > 0 AND s[2] < 1) AS probabilities,
	   mtl_auc(s[1], clicked) > 0.55 AS ctr_learned,
	   mtl_auc(s[1] * s[2], purchased) > 0.55 AS ctcvr_learned
FROM (SELECT name, clicked, purchased, mtl_predict(model, user_id, item_id) AS s
	  FROM f_rows, f_models WHERE day > 10) x
GROUP BY name ORDER BY name;

-- ple: levels and expert counts, shared gates on all but the last level
SELECT jsonb_pretty(jsonb_build_object(
	'levels', i -> 'levels', 'shared_experts', i -> 'shared_experts', 'task_experts', i -> 'task_experts',
	'outputs', (SELECT jsonb_agg(jsonb_build_object('level', o -> 'level', 'output', o -> 'output',
		'experts', (SELECT jsonb_agg(k ORDER BY k) FROM jsonb_object_keys(o -> 'experts') k)))
		FROM jsonb_array_elements(i -> 'gates' -> 'outputs') o))) AS ple
FROM (SELECT mtl_info(model) AS i FROM f_models WHERE name = 'ple') x;
-- gate utilisation is a distribution over each output's experts
SELECT bool_and(abs(s - 1) < 1e-4) AS gates_sum_to_one
FROM (SELECT (SELECT sum(v::float8) FROM jsonb_each_text(o -> 'experts') e(k, v)) AS s
	  FROM f_models, jsonb_array_elements(mtl_info(model) -> 'gates' -> 'outputs') o) x;

-- single_task shares nothing: one embedding copy per task
SELECT (mtl_info(st.model) ->> 'embedding_parameters')::int =
	   2 * (mtl_info(es.model) ->> 'embedding_parameters')::int AS own_embeddings
FROM f_models st, f_models es WHERE st.name = 'single_task' AND es.name = 'esmm';

-- scenarios: context in training, scoring and evaluation
INSERT INTO f_models
SELECT 'scenario', mtl_train(user_id, item_id, ARRAY[clicked]::float8[], uf, itf, ctx,
	'{"tasks": [{"name": "ctr", "type": "binary"}], "scenario": "scenario", "epochs": 3}')
FROM f_rows WHERE day <= 10;
SELECT mtl_info(model) -> 'scenario' AS scenario_key, mtl_info(model) -> 'scenarios' AS scenarios,
	   (SELECT jsonb_agg(f -> 'side') FROM jsonb_array_elements(mtl_info(model) -> 'features') f
		WHERE f ->> 'name' = 'scenario') AS side
FROM f_models WHERE name = 'scenario';
-- an unseen scenario falls back to the shared towers: the same as no context
SELECT mtl_predict(model, 1, 1, NULL, NULL, '{"scenario": "newsletter"}') =
	   mtl_predict(model, 1, 1, NULL, NULL, NULL) AS unseen_is_shared,
	   mtl_predict(model, 1, 1, NULL, NULL, '{"scenario": "search"}') <>
	   mtl_predict(model, 1, 1, NULL, NULL, '{"scenario": "ads"}') AS scenarios_differ
FROM f_models WHERE name = 'scenario';
-- mtl_evaluate with context equals mtl_auc over mtl_predict with context
SELECT abs((mtl_evaluate(model, user_id, item_id, ARRAY[clicked]::float8[], uf, itf, ctx)
		-> 'tasks' -> 'ctr' ->> 'auc')::float8 -
	   (SELECT mtl_auc((mtl_predict(m.model, user_id, item_id, uf, itf, ctx))[1], clicked)
		FROM f_rows WHERE day > 10)) < 1e-9 AS evaluate_matches
FROM f_rows, f_models m WHERE day > 10 AND m.name = 'scenario' GROUP BY m.model;

-- training controls: loss weighting, dropout, decay, clipping, pos_weight
SELECT w, round((SELECT sum(v::float8) FROM jsonb_each_text(i -> 'training' -> 'loss_weights') e(k, v))::numeric, 4) AS weight_sum,
	   i -> 'training' ->> 'loss_weighting' AS weighting,
	   jsonb_array_length(i -> 'training' -> 'task_loss' -> 'cvr') = (i -> 'training' ->> 'epochs')::int AS per_epoch
FROM (SELECT w, mtl_info(mtl_train(user_id, item_id, ARRAY[clicked, bought_after_click]::float8[],
		jsonb_build_object('loss_weighting', w, 'epochs', 3, 'validation_fraction', 0,
			'tasks', '[{"name": "ctr", "type": "binary"}, {"name": "cvr", "type": "binary"}]'::jsonb))) AS i
	  FROM f_rows, unnest(ARRAY['fixed', 'dwa', 'gradnorm']) AS w WHERE day <= 10 GROUP BY w) x
ORDER BY w;
-- uncertainty learns weights away from 1
SELECT (i -> 'training' -> 'loss_weights' ->> 'ctr')::float8 <> 1 AS learned
FROM (SELECT mtl_info(mtl_train(user_id, item_id, ARRAY[clicked, bought_after_click]::float8[],
		'{"loss_weighting": "uncertainty", "epochs": 2, "tasks": [{"name": "ctr", "type": "binary"},
		  {"name": "cvr", "type": "binary"}]}')) AS i FROM f_rows WHERE day <= 10) x;
-- a positive weight raises the predicted rate of rare positives
SELECT avg((mtl_predict(w.model, user_id, item_id))[1]) > avg((mtl_predict(p.model, user_id, item_id))[1]) AS pos_weight_raises
FROM f_rows,
	 (SELECT mtl_train(user_id, item_id, ARRAY[purchased]::float8[],
		'{"tasks": [{"name": "buy", "type": "binary", "pos_weight": 5}], "epochs": 2}') AS model FROM f_rows) w,
	 (SELECT mtl_train(user_id, item_id, ARRAY[purchased]::float8[],
		'{"tasks": [{"name": "buy", "type": "binary"}], "epochs": 2}') AS model FROM f_rows) p
WHERE day > 10;
-- every control at once, reproducible from the seed
SELECT count(DISTINCT model) AS distinct_models
FROM (SELECT mtl_train(user_id, item_id, ARRAY[clicked, bought_after_click]::float8[], uf, itf, ctx,
		'{"model": "ple", "scenario": "scenario", "dropout": 0.2, "lr_decay": 0.8, "clip_norm": 1,
		  "epochs": 2, "tasks": [{"name": "ctr", "type": "binary"}, {"name": "cvr", "type": "binary", "given": "ctr"}]}') AS model
	  FROM f_rows, generate_series(1, 2) g WHERE day <= 10 GROUP BY g) x;

-- errors
SELECT mtl_train(user_id, item_id, ARRAY[clicked, purchased]::float8[],
	'{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "cvr", "type": "binary", "given": "click"}]}') FROM f_rows;
SELECT mtl_train(user_id, item_id, ARRAY[clicked, purchased]::float8[],
	'{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "rating", "type": "regression", "given": "ctr"}]}') FROM f_rows;
SELECT mtl_train(user_id, item_id, ARRAY[clicked, purchased]::float8[],
	'{"tasks": [{"name": "a", "type": "binary", "given": "b"}, {"name": "b", "type": "binary", "given": "a"}]}') FROM f_rows;
SELECT mtl_train(user_id, item_id, ARRAY[clicked]::float8[],
	'{"tasks": [{"name": "ctr", "type": "binary", "given": "ctr"}]}') FROM f_rows;
SELECT mtl_train(user_id, item_id, ARRAY[clicked]::float8[],
	'{"tasks": [{"name": "ctr", "type": "binary", "given": 1}]}') FROM f_rows;
SELECT mtl_train(user_id, item_id, ARRAY[clicked]::float8[],
	'{"tasks": [{"name": "ctr", "type": "binary", "pos_weight": 0}]}') FROM f_rows;
SELECT mtl_train(user_id, item_id, ARRAY[clicked]::float8[],
	'{"tasks": [{"name": "ctr", "type": "binary"}], "model": "single_task", "loss_weighting": "gradnorm"}') FROM f_rows;
SELECT mtl_train(user_id, item_id, ARRAY[clicked]::float8[],
	'{"tasks": [{"name": "ctr", "type": "binary"}], "loss_weighting": "equal"}') FROM f_rows;
SELECT mtl_train(user_id, item_id, ARRAY[clicked]::float8[],
	'{"tasks": [{"name": "ctr", "type": "binary"}], "model": "ple", "task_experts": 40, "shared_experts": 30}') FROM f_rows;
SELECT mtl_train(user_id, item_id, ARRAY[clicked]::float8[],
	'{"tasks": [{"name": "ctr", "type": "binary"}], "levels": 5}') FROM f_rows;
SELECT mtl_train(user_id, item_id, ARRAY[clicked]::float8[],
	'{"tasks": [{"name": "ctr", "type": "binary"}], "dropout": 0.95}') FROM f_rows;
SELECT mtl_train(user_id, item_id, ARRAY[clicked]::float8[],
	'{"tasks": [{"name": "ctr", "type": "binary"}], "lr_decay": 0}') FROM f_rows;
SELECT mtl_train(user_id, item_id, ARRAY[clicked]::float8[],
	'{"tasks": [{"name": "ctr", "type": "binary"}], "scenario": ""}') FROM f_rows;
SELECT mtl_train(user_id, item_id, ARRAY[clicked]::float8[], uf, itf, ctx,
	'{"tasks": [{"name": "ctr", "type": "binary"}], "scenario": "placement"}') FROM f_rows;
SELECT mtl_train(user_id, item_id, ARRAY[clicked]::float8[], uf, itf, '[1, 2]',
	'{"tasks": [{"name": "ctr", "type": "binary"}]}') FROM f_rows;
SELECT mtl_predict(model, 1, 1, NULL, NULL, '"search"') FROM f_models WHERE name = 'scenario';

DROP TABLE f_rows, f_models;
DROP SCHEMA family_shop CASCADE;
