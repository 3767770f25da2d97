-- mtl's side of rich.sh: on :schema (a demo shop with rich_features; days 13-14
-- held out), train each variant of which fields the model sees with seeds
-- 1..:seeds and print held-out CTR AUC (mean and range), and the truth's.
-- The history (each impression's recent_items) is passed as context.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SELECT set_config('rb.seeds', :'seeds', false) AS rb_seeds \gset
CREATE TEMP TABLE rb_rows AS
SELECT i.user_id, i.item_id, i.clicked, i.p_click, i.day > 12 AS test,
	   to_jsonb(u) - 'user_id' AS uf,
	   to_jsonb(it) - 'item_id' - 'tags' - 'title' AS itf_plain,
	   it.tags, it.title, i.recent_items, i.scenario
FROM :"schema".impressions i JOIN :"schema".users u USING (user_id) JOIN :"schema".items it USING (item_id);
-- variant: the item keys it adds, whether the history goes in, and config keys
CREATE TEMP TABLE rb_variants (name text, tags bool, title bool, history bool, config jsonb);
INSERT INTO rb_variants VALUES
	('1 no tags, title or history', false, false, false, '{}'),
	('2 + tags', true, false, false, '{}'),
	('3 + title (text)', false, true, false, '{"text": ["title"]}'),
	('4 + history, mean', false, false, true, '{"sequences": {"recent_items": "item"}, "sequence_length": 10, "sequence_pooling": "mean"}'),
	('5 + history, DIN', false, false, true, '{"sequences": {"recent_items": "item"}, "sequence_length": 10, "sequence_pooling": "din"}'),
	('6 all, DIN', true, true, true, '{"text": ["title"], "sequences": {"recent_items": "item"}, "sequence_length": 10}');
CREATE TEMP TABLE rb_trained (name text, seed int, seconds float8, model bytea);
DO $$
DECLARE v record; started timestamptz; m bytea;
BEGIN
	FOR v IN SELECT * FROM rb_variants ORDER BY name LOOP
		FOR s IN 1..current_setting('rb.seeds')::int LOOP
			started := clock_timestamp();
			SELECT mtl_train(user_id, item_id, ARRAY[clicked]::float8[], uf,
							 itf_plain || CASE WHEN v.tags THEN jsonb_build_object('tags', tags) ELSE '{}' END
									   || CASE WHEN v.title THEN jsonb_build_object('title', title) ELSE '{}' END,
							 jsonb_build_object('scenario', scenario)
							 || CASE WHEN v.history THEN jsonb_build_object('recent_items', recent_items) ELSE '{}' END,
							 v.config || jsonb_build_object('seed', s, 'scenario', 'scenario',
								 'tasks', '[{"name": "ctr", "type": "binary"}]'::jsonb))
			INTO m FROM rb_rows WHERE NOT test;
			INSERT INTO rb_trained VALUES (v.name, s, extract(epoch FROM clock_timestamp() - started), m);
		END LOOP;
	END LOOP;
END $$;
CREATE TEMP TABLE rb_scored AS
SELECT t.name, t.seed, t.seconds, mtl_auc(x.ctr, x.clicked) AS auc
FROM rb_trained t JOIN rb_variants v USING (name)
CROSS JOIN LATERAL (
	SELECT r.clicked, (mtl_predict(t.model, r.user_id, r.item_id, r.uf,
				r.itf_plain || CASE WHEN v.tags THEN jsonb_build_object('tags', r.tags) ELSE '{}' END
							|| CASE WHEN v.title THEN jsonb_build_object('title', r.title) ELSE '{}' END,
				jsonb_build_object('scenario', r.scenario)
				|| CASE WHEN v.history THEN jsonb_build_object('recent_items', r.recent_items) ELSE '{}' END))[1] AS ctr
	FROM rb_rows r WHERE r.test OFFSET 0) x
GROUP BY t.name, t.seed, t.seconds;
SELECT name, round(avg(auc)::numeric, 4) AS ctr_auc,
	   round(min(auc)::numeric, 4) || '-' || round(max(auc)::numeric, 4) AS ctr_range,
	   round(avg(seconds)::numeric, 1) AS train_seconds
FROM rb_scored GROUP BY name ORDER BY name;
SELECT 'truth' AS name, round(mtl_auc(p_click, clicked)::numeric, 4) AS ctr_auc FROM rb_rows WHERE test;
