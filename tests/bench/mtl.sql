-- mtl's side of the benchmark: prints key=value lines.
\set ON_ERROR_STOP on
\ir timing.sql
-- the PyTorch reference's architecture: the id embeddings' product ("interaction": "ids"), and no
-- embedding penalty beyond its weight decay of 1e-6 (negligible either way)
-- scoring is measured on one backend, one core
SET max_parallel_workers_per_gather = 0;

SELECT unnest(ARRAY['train_seconds=' || round(s::numeric, 3),
	   'train_samples_per_s=' || round(n * 10 / s)])
FROM (SELECT pg_temp.seconds($q$
	INSERT INTO models
	SELECT 'bench', mtl_train(i.user_id, i.item_id,
		ARRAY[i.clicked, CASE WHEN i.clicked = 1 THEN i.purchased END, i.purchased, i.rating]::float8[],
		to_jsonb(u) - 'user_id', to_jsonb(it) - 'item_id',
		'{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "cvr", "type": "binary"},
					{"name": "ctcvr", "type": "binary"}, {"name": "rating", "type": "regression"}],
		  "model": "mmoe", "epochs": 10, "validation_fraction": 0, "interaction": "ids", "embedding_l2": 1e-6}')
	FROM shop.impressions i
	JOIN shop.users u USING (user_id)
	JOIN shop.items it USING (item_id)
	WHERE i.day <= 12$q$) AS s,
	(SELECT count(*) FROM shop.impressions WHERE day <= 12) AS n) AS t;

SELECT unnest(ARRAY['predict_ids_seconds=' || round(s::numeric, 3),
	   'predict_ids_rows_per_s=' || round(1000000 / s)])
FROM pg_temp.seconds($q$
	SELECT sum((mtl_predict(m.model, p.user_id, p.item_id))[1])
	FROM pairs p, models m WHERE m.name = 'bench'$q$) AS s;

SELECT unnest(ARRAY['predict_features_seconds=' || round(s::numeric, 3),
	   'predict_features_rows_per_s=' || round(1000000 / s)])
FROM pg_temp.seconds($q$
	SELECT sum((mtl_predict(m.model, p.user_id, p.item_id, p.user_features, p.item_features))[1])
	FROM pairs_features p, models m WHERE m.name = 'bench'$q$) AS s;

-- catalog-wide top 10 (by ctr x ctcvr) for every user: item scores per second
SELECT unnest(ARRAY['recommend_seconds=' || round(s::numeric, 3),
	   'recommend_item_scores_per_s=' || round(n / s)])
FROM pg_temp.seconds($q$
	SELECT count(*) FROM models m, shop.users u,
		LATERAL mtl_recommend(m.model, u.user_id, 10, 'ctr*ctcvr') r
	WHERE m.name = 'bench'$q$) AS s,
	(SELECT (SELECT count(*) FROM shop.users) * (SELECT count(DISTINCT item_id) FROM shop.impressions WHERE day <= 12) AS n) AS c;

CREATE TEMP TABLE scored AS
SELECT i.*, mtl_predict(m.model, i.user_id, i.item_id) AS s
FROM shop.impressions i, models m
WHERE i.day > 12 AND m.name = 'bench';
SELECT unnest(ARRAY['auc_ctr=' || round(mtl_auc(s[1], clicked)::numeric, 4),
	   'oracle_ctr=' || round(mtl_auc(p_click, clicked)::numeric, 4),
	   'auc_ctcvr=' || round(mtl_auc(s[3], purchased)::numeric, 4),
	   'oracle_ctcvr=' || round(mtl_auc(p_purchase, purchased)::numeric, 4),
	   'rmse_rating=' || round(sqrt(avg((s[4] - rating) ^ 2))::numeric, 4)])
FROM scored;
SELECT unnest(ARRAY['auc_cvr=' || round(mtl_auc(s[2], purchased)::numeric, 4),
	   'oracle_cvr=' || round(mtl_auc(p_buy_given_click, purchased)::numeric, 4)])
FROM scored WHERE clicked = 1;

-- how much the seed moves held-out AUC (10 epochs, no validation, as above)
-- and training time with 2 OpenBLAS threads instead of the default 1
CREATE TEMP TABLE seeded AS
SELECT seed, mtl_train(i.user_id, i.item_id,
		ARRAY[i.clicked, CASE WHEN i.clicked = 1 THEN i.purchased END, i.purchased, i.rating]::float8[],
		to_jsonb(u) - 'user_id', to_jsonb(it) - 'item_id',
		jsonb_build_object('seed', seed) || '{"tasks": [{"name": "ctr", "type": "binary"},
			{"name": "cvr", "type": "binary"}, {"name": "ctcvr", "type": "binary"},
			{"name": "rating", "type": "regression"}], "epochs": 10, "validation_fraction": 0, "interaction": "ids", "embedding_l2": 1e-6}') AS model
FROM generate_series(1, 3) seed, shop.impressions i
JOIN shop.users u USING (user_id) JOIN shop.items it USING (item_id)
WHERE i.day <= 12
GROUP BY seed;
SELECT 'seed_' || seed || '=ctr ' || round(mtl_auc(s[1], clicked)::numeric, 4)
	   || ' ctcvr ' || round(mtl_auc(s[3], purchased)::numeric, 4)
FROM (SELECT d.seed, i.clicked, i.purchased, mtl_predict(d.model, i.user_id, i.item_id) AS s
	  FROM seeded d, shop.impressions i WHERE i.day > 12) x
GROUP BY seed ORDER BY seed;
SELECT unnest(ARRAY['train_seconds_2_threads=' || round(s::numeric, 3),
	   'train_samples_per_s_2_threads=' || round(n * 10 / s)])
FROM (SELECT pg_temp.seconds($q$
	SELECT mtl_train(i.user_id, i.item_id,
		ARRAY[i.clicked, CASE WHEN i.clicked = 1 THEN i.purchased END, i.purchased, i.rating]::float8[],
		to_jsonb(u) - 'user_id', to_jsonb(it) - 'item_id',
		'{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "cvr", "type": "binary"},
					{"name": "ctcvr", "type": "binary"}, {"name": "rating", "type": "regression"}],
		  "epochs": 10, "validation_fraction": 0, "interaction": "ids", "embedding_l2": 1e-6, "threads": 2}')
	FROM shop.impressions i
	JOIN shop.users u USING (user_id)
	JOIN shop.items it USING (item_id)
	WHERE i.day <= 12$q$) AS s,
	(SELECT count(*) FROM shop.impressions WHERE day <= 12) AS n) AS t;
