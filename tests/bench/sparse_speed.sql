-- The cost of the cross slot on the demo shop (schema shop): scoring 200,000
-- rows by ids and with features, and 3 epochs of training, for each
-- interaction, repeated so the noise shows. Prints seconds.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SET max_parallel_workers_per_gather = 0;
\ir timing.sql
CREATE TEMP TABLE r AS SELECT i.user_id, i.item_id, to_jsonb(u) - 'user_id' AS uf, to_jsonb(it) - 'item_id' AS itf,
	jsonb_build_object('scenario', i.scenario) AS ctx, i.clicked, i.purchased
	FROM shop.impressions i JOIN shop.users u USING (user_id) JOIN shop.items it USING (item_id);
CREATE TEMP TABLE m AS SELECT v.key AS name, (SELECT mtl_train(user_id, item_id, ARRAY[clicked, CASE WHEN clicked = 1 THEN purchased END]::float8[], uf, itf, ctx,
	'{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "cvr", "type": "binary", "given": "ctr"}], "scenario": "scenario", "epochs": 2}'::jsonb || v.value) FROM r) AS model
	FROM jsonb_each('{"ids": {"interaction": "ids"}, "pooled": {"interaction": "pooled"}, "fm": {"interaction": "fm"}}') v;
SELECT rep, name, round(pg_temp.seconds(format($q$SELECT sum((mtl_predict(%L::bytea, user_id, item_id))[1]) FROM r$q$, model))::numeric, 3) AS ids_only_s,
	   round(pg_temp.seconds(format($q$SELECT sum((mtl_predict(%L::bytea, user_id, item_id, uf, itf, ctx))[1]) FROM r$q$, model))::numeric, 3) AS with_features_s
FROM generate_series(1, 3) rep, m ORDER BY rep, name;
SELECT rep, v.key AS name, round(pg_temp.seconds(format($q$SELECT mtl_train(user_id, item_id, ARRAY[clicked, CASE WHEN clicked = 1 THEN purchased END]::float8[], uf, itf, ctx,
	%L::jsonb) FROM r$q$, '{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "cvr", "type": "binary", "given": "ctr"}], "scenario": "scenario", "epochs": 3, "validation_fraction": 0}'::jsonb || v.value))::numeric, 2) AS train_3_epochs_s
FROM generate_series(1, 2) rep, jsonb_each('{"ids": {"interaction": "ids"}, "pooled": {"interaction": "pooled"}}') v ORDER BY rep, name;
