-- The demo: a synthetic shop, one multi-task model, held-out AUC vs the oracle.
\timing off
DROP EXTENSION IF EXISTS mtl CASCADE;
CREATE EXTENSION mtl;
CREATE EXTENSION IF NOT EXISTS mtl_demo;
\echo 'generating a shop: 3000 users, 800 items, 200000 impressions over 14 days'
SET client_min_messages = warning;
SELECT mtl_demo_shop('shop', users => 3000, items => 800, impressions => 200000, seed => 0.42);
RESET client_min_messages;

\echo 'training on days 1-12: ctr, cvr given a click (ESMM-style), rating; scenario-aware (home/search/ads)'
\timing on
CREATE TABLE IF NOT EXISTS models (name text PRIMARY KEY, trained_at timestamptz DEFAULT now(), model bytea);
INSERT INTO models (name, model)
SELECT 'demo', mtl_train(i.user_id, i.item_id,
	ARRAY[i.clicked, CASE WHEN i.clicked = 1 THEN i.purchased END, i.rating]::float8[],
	to_jsonb(u) - 'user_id', to_jsonb(it) - 'item_id', jsonb_build_object('scenario', i.scenario),
	'{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "cvr", "type": "binary", "given": "ctr"},
				{"name": "rating", "type": "regression"}],
	  "scenario": "scenario", "verbose": true}')
FROM shop.impressions i
JOIN shop.users u USING (user_id)
JOIN shop.items it USING (item_id)
WHERE i.day <= 12
ON CONFLICT (name) DO UPDATE SET model = excluded.model, trained_at = now();
\timing off
SELECT mtl_info(model) - 'features' - 'training' - 'gates' AS model FROM models WHERE name = 'demo';
SELECT mtl_info(model) -> 'gates' AS gate_utilisation FROM models WHERE name = 'demo';

\echo 'scoring days 13-14 in a query (ids plus the scenario; stored features are used)'
\timing on
CREATE TEMP TABLE scored AS
SELECT i.*, mtl_predict(m.model, i.user_id, i.item_id, NULL, NULL, jsonb_build_object('scenario', i.scenario)) AS s
FROM shop.impressions i, models m
WHERE i.day > 12 AND m.name = 'demo';
\timing off

\echo 'held-out quality (oracle: the generator''s true probabilities); ctcvr = p(click) x p(buy | click)'
SELECT 'ctr' AS task, round(mtl_auc(s[1], clicked)::numeric, 4) AS auc,
	   round(mtl_auc(p_click, clicked)::numeric, 4) AS oracle_auc, count(*) AS rows
FROM scored
UNION ALL
SELECT 'cvr (clicked rows)', round(mtl_auc(s[2], purchased)::numeric, 4),
	   round(mtl_auc(p_buy_given_click, purchased)::numeric, 4), count(*)
FROM scored WHERE clicked = 1
UNION ALL
SELECT 'ctcvr', round(mtl_auc(s[1] * s[2], purchased)::numeric, 4),
	   round(mtl_auc(p_purchase, purchased)::numeric, 4), count(*)
FROM scored
UNION ALL
SELECT 'rating (RMSE)', round(sqrt(avg((s[3] - rating) ^ 2))::numeric, 4), NULL, count(rating)
FROM scored;

\echo 'the same held-out days with mtl_evaluate, per scenario: every task at once'
SELECT scenario, round((e -> 'tasks' -> 'ctr' ->> 'auc')::numeric, 4) AS ctr_auc,
	   round((e -> 'tasks' -> 'ctr' ->> 'gauc')::numeric, 4) AS ctr_gauc,
	   round((e -> 'tasks' -> 'cvr' ->> 'auc')::numeric, 4) AS cvr_auc,
	   round((e -> 'tasks' -> 'rating' ->> 'rmse')::numeric, 4) AS rating_rmse,
	   round((e ->> 'fused')::numeric, 4) AS fused, e ->> 'rows' AS rows
FROM (SELECT i.scenario, mtl_evaluate(m.model, i.user_id, i.item_id,
		ARRAY[i.clicked, CASE WHEN i.clicked = 1 THEN i.purchased END, i.rating]::float8[],
		NULL, NULL, jsonb_build_object('scenario', i.scenario)) AS e
	  FROM shop.impressions i, models m
	  WHERE i.day > 12 AND m.name = 'demo'
	  GROUP BY i.scenario) x
ORDER BY scenario;

\echo 'one group in full (ads):'
SELECT mtl_evaluate(m.model, i.user_id, i.item_id,
	ARRAY[i.clicked, CASE WHEN i.clicked = 1 THEN i.purchased END, i.rating]::float8[],
	NULL, NULL, jsonb_build_object('scenario', i.scenario)) AS ads
FROM shop.impressions i, models m
WHERE i.day > 12 AND m.name = 'demo' AND i.scenario = 'ads';

\echo 'serving: the model as version 1 of "demo" in the registry, scored by name'
SELECT mtl_registry_add('demo', model, NULL, NULL, NULL) AS version FROM models WHERE name = 'demo';
SELECT name, version, deployed, metrics -> 'holdout' AS holdout FROM mtl_versions WHERE name = 'demo';
\echo 'top 5 items for user 42 by expected purchases (ctr x cvr), every item scored in one call'
SELECT item_id, round(score::numeric, 4) AS p_purchase, round(scores[1]::numeric, 4) AS p_click
FROM mtl_recommend('demo', 42, 5, 'ctr*cvr');

\echo 'an order refreshes the buyer''s top 5 in a scores table (mtl_refresh_trigger)'
SET client_min_messages = warning;
DROP TABLE IF EXISTS orders, user_top;
RESET client_min_messages;
CREATE TABLE orders (order_id bigserial PRIMARY KEY, user_id bigint, item_id bigint, at timestamptz DEFAULT now());
CREATE TABLE user_top (user_id bigint, item_id bigint, score float8, PRIMARY KEY (user_id, item_id));
CREATE TRIGGER refresh_top AFTER INSERT ON orders FOR EACH ROW
EXECUTE FUNCTION mtl_refresh_trigger('demo', '5', 'user_top', 'user_id', 'item_id', 'score', 'ctr*cvr');
INSERT INTO orders (user_id, item_id) VALUES (42, 7);
SELECT user_id, item_id, round(score::numeric, 4) AS score FROM user_top ORDER BY score DESC;

