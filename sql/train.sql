-- training on a small demo shop: a model that beats chance, empty input, reproducibility
SELECT mtl_demo_shop('regress_shop', 400, 120, 30000, 0.1);
SELECT count(*) AS impressions, sum(clicked) > 0 AS some_clicks, sum(purchased) > 0 AS some_orders
FROM regress_shop.impressions;

CREATE TABLE models (name text PRIMARY KEY, model bytea);
INSERT INTO models
SELECT 'shop', mtl_train(i.user_id, i.item_id,
	ARRAY[i.clicked, i.purchased, i.rating]::float8[],
	to_jsonb(u) - 'user_id', to_jsonb(it) - 'item_id',
	'{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "ctcvr", "type": "binary"},
				{"name": "rating", "type": "regression"}], "epochs": 4}')
FROM regress_shop.impressions i
JOIN regress_shop.users u USING (user_id)
JOIN regress_shop.items it USING (item_id)
WHERE i.day <= 10;

-- held-out days: clearly better than chance and not better than the oracle
CREATE TABLE scored AS
SELECT i.*, mtl_predict(m.model, i.user_id, i.item_id) AS s
FROM regress_shop.impressions i, models m
WHERE i.day > 10 AND m.name = 'shop';
SELECT mtl_auc(s[1], clicked) > 0.55 AS ctr_learned,
	   mtl_auc(s[1], clicked) < mtl_auc(p_click, clicked) + 0.01 AS ctr_below_oracle,
	   mtl_auc(s[2], purchased) > 0.6 AS ctcvr_learned,
	   sqrt(avg((s[3] - rating) ^ 2)) < 1.2 AS rating_rmse_ok,
	   bool_and(s[1] BETWEEN 0 AND 1 AND s[2] BETWEEN 0 AND 1) AS probabilities,
	   bool_and(array_length(s, 1) = 3) AS one_score_per_task
FROM scored;

-- ids only, four-argument form
SELECT length(mtl_train(user_id, item_id, ARRAY[clicked]::float8[],
	'{"tasks": [{"name": "ctr", "type": "binary"}], "epochs": 1}')) > 0 AS ids_only
FROM regress_shop.impressions;

-- no rows: NULL, without calling the transition function
SELECT mtl_train(user_id, item_id, ARRAY[clicked]::float8[],
	'{"tasks": [{"name": "ctr", "type": "binary"}]}') IS NULL AS empty_is_null
FROM regress_shop.impressions WHERE false;

-- same data and seed: same bytes; another seed: other bytes
CREATE FUNCTION train_sample(seed int, threads int DEFAULT 1) RETURNS bytea LANGUAGE sql AS $$
	SELECT mtl_train(user_id, item_id, ARRAY[clicked, rating]::float8[],
		jsonb_build_object('tasks', '[{"name": "ctr", "type": "binary"}, {"name": "rating", "type": "regression"}]'::jsonb,
						   'epochs', 2, 'seed', seed, 'threads', threads))
	FROM (SELECT * FROM regress_shop.impressions ORDER BY impression_id LIMIT 5000) i
$$;
SELECT train_sample(1) = train_sample(1) AS same_seed_same_bytes,
	   train_sample(1) <> train_sample(2) AS other_seed_other_bytes;

-- on two threads (each batch split by rows): a seed still gives the same
-- bytes, and other bytes than on one thread (other sums, other masks)
SELECT train_sample(1, 2) = train_sample(1, 2) AS two_threads_same_bytes,
	   train_sample(1, 2) <> train_sample(1) AS two_threads_other_bytes;

-- rows with features only (no ids) train and predict
SELECT mtl_auc((mtl_predict(m, NULL, NULL, to_jsonb(u) - 'user_id', to_jsonb(it) - 'item_id'))[1], i.clicked) > 0.55
	AS features_only_learned
FROM (SELECT mtl_train(NULL::bigint, NULL::bigint, ARRAY[i.clicked]::float8[],
			to_jsonb(u) - 'user_id', to_jsonb(it) - 'item_id',
			'{"tasks": [{"name": "ctr", "type": "binary"}], "epochs": 3}') AS m
	  FROM regress_shop.impressions i
	  JOIN regress_shop.users u USING (user_id)
	  JOIN regress_shop.items it USING (item_id)
	  WHERE i.day <= 10) model,
	 regress_shop.impressions i
JOIN regress_shop.users u USING (user_id)
JOIN regress_shop.items it USING (item_id)
WHERE i.day > 10;

