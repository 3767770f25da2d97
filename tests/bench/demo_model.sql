-- The demo shop of scripts/demo.sh (schema shop) and the model it trains on
-- days 1-12, in the temporary table demo_model: what the benchmarks of the
-- analyst tools (calibration, compress, explain) measure. Needs the mtl and
-- mtl_demo extensions.
SET client_min_messages = warning;
-- rows in one order, so the same model every run
SET max_parallel_workers_per_gather = 0;
DO $$ BEGIN PERFORM mtl_demo_shop('shop', users => 3000, items => 800, impressions => 200000, seed => 0.42); END $$;
CREATE TEMP TABLE demo_model AS
SELECT mtl_train(i.user_id, i.item_id,
	ARRAY[i.clicked, CASE WHEN i.clicked = 1 THEN i.purchased END, i.rating]::float8[],
	to_jsonb(u) - 'user_id', to_jsonb(it) - 'item_id', jsonb_build_object('scenario', i.scenario),
	'{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "cvr", "type": "binary", "given": "ctr"},
				{"name": "rating", "type": "regression"}], "scenario": "scenario"}') AS model
FROM shop.impressions i JOIN shop.users u USING (user_id) JOIN shop.items it USING (item_id)
WHERE i.day <= 12;
