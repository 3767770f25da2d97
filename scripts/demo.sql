-- The demo: a synthetic shop, one multi-task model, held-out AUC vs the oracle.
\timing off
DROP EXTENSION IF EXISTS mtl CASCADE;
CREATE EXTENSION mtl;
\echo 'generating a shop: 3000 users, 800 items, 200000 impressions over 14 days'
SET client_min_messages = warning;
SELECT mtl_demo_shop('shop', users => 3000, items => 800, impressions => 200000, seed => 0.42);
RESET client_min_messages;

\echo 'training on days 1-12: tasks ctr, cvr (given a click), ctcvr, rating'
\timing on
CREATE TABLE IF NOT EXISTS models (name text PRIMARY KEY, trained_at timestamptz DEFAULT now(), model bytea);
INSERT INTO models (name, model)
SELECT 'demo', mtl_train(i.user_id, i.item_id,
	ARRAY[i.clicked, CASE WHEN i.clicked = 1 THEN i.purchased END, i.purchased, i.rating]::float8[],
	to_jsonb(u) - 'user_id', to_jsonb(it) - 'item_id',
	'{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "cvr", "type": "binary"},
				{"name": "ctcvr", "type": "binary"}, {"name": "rating", "type": "regression"}],
	  "verbose": true}')
FROM shop.impressions i
JOIN shop.users u USING (user_id)
JOIN shop.items it USING (item_id)
WHERE i.day <= 12
ON CONFLICT (name) DO UPDATE SET model = excluded.model, trained_at = now();
\timing off
SELECT mtl_info(model) - 'features' - 'training' AS model FROM models WHERE name = 'demo';

\echo 'scoring days 13-14 in a query'
\timing on
CREATE TEMP TABLE scored AS
SELECT i.*, mtl_predict(m.model, i.user_id, i.item_id) AS s
FROM shop.impressions i, models m
WHERE i.day > 12 AND m.name = 'demo';
\timing off

\echo 'held-out quality (oracle: the generator''s true probabilities)'
SELECT 'ctr' AS task, round(mtl_auc(s[1], clicked)::numeric, 4) AS auc,
	   round(mtl_auc(p_click, clicked)::numeric, 4) AS oracle_auc, count(*) AS rows
FROM scored
UNION ALL
SELECT 'cvr (clicked rows)', round(mtl_auc(s[2], purchased)::numeric, 4),
	   round(mtl_auc(p_buy_given_click, purchased)::numeric, 4), count(*)
FROM scored WHERE clicked = 1
UNION ALL
SELECT 'ctcvr', round(mtl_auc(s[3], purchased)::numeric, 4),
	   round(mtl_auc(p_purchase, purchased)::numeric, 4), count(*)
FROM scored
UNION ALL
SELECT 'rating (RMSE)', round(sqrt(avg((s[4] - rating) ^ 2))::numeric, 4), NULL, count(rating)
FROM scored;

\echo 'the same held-out days with mtl_evaluate: every task at once'
SELECT jsonb_pretty(mtl_evaluate(m.model, i.user_id, i.item_id,
	ARRAY[i.clicked, CASE WHEN i.clicked = 1 THEN i.purchased END, i.purchased, i.rating]::float8[]))
	AS evaluation
FROM shop.impressions i, models m
WHERE i.day > 12 AND m.name = 'demo';
