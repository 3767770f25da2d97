-- multi-valued features: lists of tags, value -> weight objects, and texts
CREATE TABLE f_items AS
SELECT i AS item_id,
	   (ARRAY['["linen", "summer"]', '["wool", "winter", "sale"]', '["linen"]', '[]'])[1 + i % 4]::jsonb AS tags,
	   (ARRAY['Light linen summer dress', 'Warm woollen winter coats', 'Linen shirts', 'Socks'])[1 + i % 4] AS title
FROM generate_series(1, 40) i;
-- users of even ids click linen, odd ids wool (deterministic labels)
CREATE TABLE f_rows AS
SELECT u AS user_id, i.item_id, i.tags, i.title,
	   CASE WHEN (u % 2 = 0 AND i.tags ? 'linen') OR (u % 2 = 1 AND i.tags ? 'wool')
			THEN 1 ELSE (u * 7 + i.item_id) % 5 / 4 END::float8 AS clicked
FROM generate_series(1, 60) u, f_items i;
CREATE TABLE f_model AS
SELECT mtl_train(user_id, item_id, ARRAY[clicked],
				 jsonb_build_object('parity', (user_id % 2)::text),
				 jsonb_build_object('tags', tags, 'title', title),
				 '{"tasks": [{"name": "ctr", "type": "binary"}], "epochs": 12, "bag_size": 4,
				   "text": ["title"], "text_buckets": 1024, "validation_fraction": 0}') AS model
FROM f_rows;

-- the fields, their kinds and vocabularies: 4 tags (the empty list adds none);
-- english stems of the titles' words (light, linen, summer, dress, warm,
-- woollen, winter, coat, shirt, sock)
SELECT f->>'name' AS name, f->>'kind' AS kind, f->>'values' AS values, f->>'bag_size' AS bag_size
FROM f_model, jsonb_array_elements(mtl_info(model)->'features') f ORDER BY 1;

-- an unseen item scored from its tags: parity 0 users prefer linen
SELECT round((mtl_predict(model, NULL, NULL, '{"parity": "0"}', '{"tags": ["linen"]}'))[1]::numeric, 1)
	   > round((mtl_predict(model, NULL, NULL, '{"parity": "0"}', '{"tags": ["wool"]}'))[1]::numeric, 1)
	   AS linen_over_wool
FROM f_model;
-- unseen values are skipped: a list of unseen values is the empty list, which is missing
SELECT mtl_predict(model, NULL, NULL, NULL, '{"tags": ["never", "seen"]}')
	   = mtl_predict(model, NULL, NULL, NULL, '{"tags": []}') AS unseen_skipped,
	   mtl_predict(model, NULL, NULL, NULL, '{"tags": []}')
	   = mtl_predict(model, NULL, NULL, NULL, '{}') AS empty_is_missing,
	   mtl_predict(model, NULL, NULL, NULL, '{"tags": ["linen", "never"]}')
	   = mtl_predict(model, NULL, NULL, NULL, '{"tags": ["linen"]}') AS mean_of_known
FROM f_model;
-- a list is the mean of its values; an object weighs them as given (jsonb
-- orders an object's keys, so the sums differ in their last bits)
SELECT round((mtl_predict(model, NULL, NULL, NULL, '{"tags": ["linen", "wool"]}'))[1]::numeric, 6)
	   = round((mtl_predict(model, NULL, NULL, NULL, '{"tags": {"linen": 0.5, "wool": 0.5}}'))[1]::numeric, 6)
	   AS mean_is_half_weights,
	   mtl_predict(model, NULL, NULL, NULL, '{"tags": {"linen": 2}}')
	   <> mtl_predict(model, NULL, NULL, NULL, '{"tags": ["linen"]}') AS weights_count,
	   mtl_predict(model, NULL, NULL, NULL, '{"tags": {"linen": 1}}')
	   = mtl_predict(model, NULL, NULL, NULL, '{"tags": ["linen"]}') AS weight_one_is_single
FROM f_model;
-- a known item's stored tags score as if passed
SELECT mtl_predict(model, 2, 1) = mtl_predict(model, 2, 1, NULL,
			(SELECT jsonb_build_object('tags', tags, 'title', title) FROM f_items WHERE item_id = 1))
	   AS stored_tags
FROM f_model;
-- text: stemmed words, in any order and case, are the same words
SELECT mtl_predict(model, NULL, NULL, NULL, '{"title": "Summer DRESSES of linen"}')
	   = mtl_predict(model, NULL, NULL, NULL, '{"title": "linen dress, summer"}') AS same_words
FROM f_model;
-- recommend ranks the catalog with the stored tags
SELECT count(*) AS items FROM f_model, mtl_recommend(model, 2, 40);

-- chunks of rows (the data-parallel path) carry lists and texts as mtl_train
-- reads them: a round over a chunk is the round over the rows themselves
SELECT (SELECT mtl_train_round(m.model, r.user_id, r.item_id, ARRAY[r.clicked], jsonb_build_object('parity', (r.user_id % 2)::text),
							   jsonb_build_object('tags', r.tags, 'title', r.title), '{"round": 1}') FROM f_rows r)
	   = (SELECT mtl_train_round(m.model, k.c, '{"round": 1}')
		  FROM (SELECT mtl_round_rows(r.user_id, r.item_id, ARRAY[r.clicked], jsonb_build_object('parity', (r.user_id % 2)::text),
									  jsonb_build_object('tags', r.tags, 'title', r.title),
									  '{"tasks": [{"name": "ctr", "type": "binary"}], "bag_size": 4, "text": ["title"], "text_buckets": 1024}') AS c
				FROM f_rows r) k) AS chunk_round_same
FROM f_model m;

-- behaviour sequences: a user's recent items (item ids, newest first) as a
-- user feature; users of even ids click linen items, and their histories hold
-- linen items (odd ids: wool items)
CREATE TABLE f_hist AS
SELECT r.*, jsonb_build_object('recent',
		   (SELECT jsonb_agg(i.item_id ORDER BY i.item_id DESC) FROM f_items i
			WHERE (r.user_id % 2 = 0 AND i.tags ? 'linen' OR r.user_id % 2 = 1 AND i.tags ? 'wool')
			  AND (i.item_id + r.user_id) % 3 = 0)) AS uf
FROM f_rows r;
CREATE TABLE f_seq AS
SELECT p AS pooling,
	   mtl_train(user_id, item_id, ARRAY[clicked], uf, jsonb_build_object('tags', tags),
				 jsonb_build_object('tasks', '[{"name": "ctr", "type": "binary"}]'::jsonb, 'epochs', 8,
									'sequences', '{"recent": "item"}'::jsonb, 'sequence_length', 12,
									'sequence_pooling', p, 'validation_fraction', 0)) AS model
FROM f_hist, (VALUES ('din'), ('mean')) v(p) GROUP BY p;
SELECT pooling, f->>'kind' AS kind, f->>'side' AS side, f->>'pooling' AS field_pooling, f->>'sequence_length' AS length
FROM f_seq, jsonb_array_elements(mtl_info(model)->'features') f WHERE f->>'name' = 'recent' ORDER BY 1;
-- an unseen user scored from a history alone: a linen history ranks linen first
SELECT pooling,
	   (mtl_predict(model, NULL, 1, '{"recent": [33, 29, 21, 9, 5]}', NULL))[1]
	   > (mtl_predict(model, NULL, 2, '{"recent": [33, 29, 21, 9, 5]}', NULL))[1] AS linen_history_prefers_linen,
	   (mtl_predict(model, NULL, 2, '{"recent": [38, 34, 26, 14, 6]}', NULL))[1]
	   > (mtl_predict(model, NULL, 1, '{"recent": [38, 34, 26, 14, 6]}', NULL))[1] AS wool_history_prefers_wool
FROM f_seq ORDER BY 1;
-- unknown item ids are skipped; an empty history is missing
SELECT pooling,
	   mtl_predict(model, NULL, 1, '{"recent": [33, 999999]}', NULL)
	   = mtl_predict(model, NULL, 1, '{"recent": [33]}', NULL) AS unknown_skipped,
	   mtl_predict(model, NULL, 1, '{"recent": []}', NULL)
	   = mtl_predict(model, NULL, 1, '{}', NULL) AS empty_is_missing
FROM f_seq ORDER BY 1;
-- the catalog for a history given: the same scores as mtl_predict row by row
SELECT pooling, bool_and(abs(r.score - (mtl_predict(model, NULL, r.item_id, '{"recent": [33, 29, 21]}', NULL))[1]) < 1e-6)
	   AS recommend_equals_predict, count(*) AS items
FROM f_seq, mtl_recommend(model, NULL, 40, user_features => '{"recent": [33, 29, 21]}') r
GROUP BY pooling ORDER BY 1;
-- packed rows (the data-parallel path) carry histories as their jsonb twins do
SELECT pooling, mtl_round_encode(model, mtl_round_pack(2, 5, ARRAY[1]::float8[], '{"recent": [33, 29]}', NULL))
	   = mtl_round_encode(model, 2, 5, ARRAY[1]::float8[], '{"recent": [33, 29]}', NULL) AS packed_history_same
FROM f_seq ORDER BY 1;
-- a known user's stored history, and passed features replacing it
SELECT pooling,
	   (SELECT array_agg(item_id ORDER BY score DESC) FROM mtl_recommend(model, 2, 5))
	   = (SELECT array_agg(item_id ORDER BY score DESC)
		  FROM mtl_recommend(model, 2, 5, user_features => (SELECT uf FROM f_hist WHERE user_id = 2 LIMIT 1)))
	   AS stored_history
FROM f_seq ORDER BY 1;

-- mtl_update grows the vocabularies of lists, and takes new items
-- into histories: a new tag, and a new item (1001) in a history
CREATE TABLE f_updated AS
SELECT f.pooling, mtl_update(f.model, n.user_id, n.item_id, ARRAY[n.clicked], n.uf,
							 jsonb_build_object('tags', n.tags), '{"epochs": 2}') AS model
FROM f_seq f, (
	SELECT user_id, CASE WHEN item_id = 1 THEN 1001 ELSE item_id END AS item_id, clicked,
		   uf || jsonb_build_object('recent', jsonb_build_array(1001) || (uf->'recent')) AS uf,
		   CASE WHEN item_id = 1 THEN tags || '["organic"]' ELSE tags END AS tags
	FROM f_hist WHERE user_id <= 10) n
GROUP BY f.pooling, f.model;
SELECT u.pooling,
	   (SELECT (f->>'values')::int FROM jsonb_array_elements(mtl_info(u.model)->'features') f WHERE f->>'name' = 'tags')
	   - (SELECT (f->>'values')::int FROM jsonb_array_elements(mtl_info(s.model)->'features') f WHERE f->>'name' = 'tags')
	   AS new_tags,
	   (mtl_info(u.model)->>'items')::int - (mtl_info(s.model)->>'items')::int AS new_items,
	   mtl_predict(u.model, NULL, 2, '{"recent": [1001, 33]}', NULL)
	   <> mtl_predict(u.model, NULL, 2, '{"recent": [33]}', NULL) AS new_item_in_history_counts
FROM f_updated u JOIN f_seq s USING (pooling) ORDER BY 1;

-- the demo shop with rich features: items' tags and titles, and each
-- impression's recent items, taken from the user's earlier impressions only
SET client_min_messages = warning;
SELECT mtl_demo_shop('rich_shop', 200, 60, 4000, 0.3, rich_features => true);
RESET client_min_messages;
SELECT count(*) FILTER (WHERE jsonb_typeof(tags) = 'array' AND title ~ '^[A-Z][a-z]+ [a-z]+ [a-z]+ [a-z]+$')
	   = count(*) AS items_have_tags_and_titles
FROM rich_shop.items;
SELECT bool_and(jsonb_array_length(i.recent_items) <= 10) AS at_most_10,
	   bool_and(NOT EXISTS (
		   SELECT 1 FROM jsonb_array_elements(i.recent_items) WITH ORDINALITY AS x(item, k)
		   WHERE NOT EXISTS (
			   SELECT 1 FROM rich_shop.impressions j
			   WHERE j.user_id = i.user_id AND (j.day, j.impression_id) < (i.day, i.impression_id)
				 AND j.item_id = x.item::bigint))) AS only_the_past,
	   bool_and(i.recent_items->0 IS NULL OR i.recent_items->>0 = (
		   SELECT j.item_id::text FROM rich_shop.impressions j
		   WHERE j.user_id = i.user_id AND (j.day, j.impression_id) < (i.day, i.impression_id)
		   ORDER BY j.day DESC, j.impression_id DESC LIMIT 1)) AS newest_first
FROM rich_shop.impressions i;

-- errors, with their SQLSTATEs
\set VERBOSITY sqlstate
SELECT mtl_predict(model, NULL, NULL, NULL, '{"tags": [1, 2]}') FROM f_model;
SELECT mtl_predict(model, NULL, NULL, NULL, '{"tags": ["a", null]}') FROM f_model;
SELECT mtl_predict(model, NULL, NULL, NULL, '{"tags": {"a": "heavy"}}') FROM f_model;
SELECT mtl_predict(model, NULL, NULL, NULL, '{"tags": ["a", "b", "c", "d", "e"]}') FROM f_model;
SELECT mtl_predict(model, NULL, NULL, NULL, '{"title": ["linen"]}') FROM f_model;
SELECT mtl_predict(model, NULL, NULL, NULL, '{"title": 3}') FROM f_model;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], NULL, jsonb_build_object('tags', tags),
				 '{"tasks": [{"name": "ctr", "type": "binary"}], "bag_size": 2}') FROM f_rows;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "bag_size": 0}') FROM f_rows;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "bag_size": 257}') FROM f_rows;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "text": "title"}') FROM f_rows;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "text": [1]}') FROM f_rows;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "text_config": "klingon"}') FROM f_rows;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "text_buckets": 0}') FROM f_rows;
SELECT mtl_predict(model, NULL, 1, '{"recent": ["33"]}', NULL) FROM f_seq WHERE pooling = 'din';
SELECT mtl_predict(model, NULL, 1, '{"recent": [33.5]}', NULL) FROM f_seq WHERE pooling = 'din';
SELECT mtl_predict(model, NULL, 1, '{"recent": 33}', NULL) FROM f_seq WHERE pooling = 'din';
SELECT mtl_predict(model, NULL, 1, jsonb_build_object('recent', (SELECT jsonb_agg(g) FROM generate_series(1, 13) g)), NULL)
FROM f_seq WHERE pooling = 'din';
SELECT mtl_predict(model, NULL, 1, NULL, '{"recent": [33]}') FROM f_seq WHERE pooling = 'din';
SELECT count(*) FROM f_seq, mtl_recommend(model, 2, 5, user_features => '[33]') WHERE pooling = 'din';
SELECT count(*) FROM f_seq, mtl_recommend(model, 2, 5, user_features => '{"recent": [1.5]}') WHERE pooling = 'din';
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "sequences": ["recent"]}') FROM f_rows;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "sequences": {"recent": "user"}}') FROM f_rows;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "sequence_pooling": "max"}') FROM f_rows;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "sequence_length": 0}') FROM f_rows;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "attention_units": 0}') FROM f_rows;
-- a list of numbers for a key that is not a sequence
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"recent": [1, 2]}', NULL, '{"tasks": [{"name": "ctr", "type": "binary"}]}') FROM f_rows;
\set VERBOSITY default
