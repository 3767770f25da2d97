-- Scoring with a 50-item history (rich.sh): a DIN model and a mean-pooled one
-- trained on :schema with histories of 50 of the user's earlier items, and one
-- without a history; mtl_predict over :rows rows (rows/s) and mtl_recommend
-- over the catalog for :users users (item scores/s), side by side.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SET max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE sp_rows AS
SELECT h.user_id, h.item_id, h.clicked, h.itf,
	   jsonb_build_object('scenario', h.scenario, 'recent_items',
		   COALESCE((SELECT jsonb_agg(x ORDER BY k DESC) FROM unnest(h.prev) WITH ORDINALITY AS t(x, k)), '[]'))
		   AS ctx
FROM (SELECT i.*, to_jsonb(it) - 'item_id' AS itf,
			 array_agg(i.item_id) OVER (PARTITION BY i.user_id ORDER BY i.day, i.impression_id
										ROWS BETWEEN 50 PRECEDING AND 1 PRECEDING) AS prev
	  FROM :"schema".impressions i JOIN :"schema".items it USING (item_id)) h
WHERE h.impression_id % 4 = 0;
SELECT round(avg(jsonb_array_length(ctx->'recent_items')), 1) AS mean_history,
	   count(*) FILTER (WHERE jsonb_array_length(ctx->'recent_items') = 50) AS rows_with_50
FROM sp_rows;
CREATE TEMP TABLE sp_models AS
SELECT p AS pooling,
	   mtl_train(user_id, item_id, ARRAY[clicked]::float8[], NULL, itf,
				 CASE WHEN p = 'none' THEN ctx - 'recent_items' ELSE ctx END,
				 jsonb_build_object('tasks', '[{"name": "ctr", "type": "binary"}]'::jsonb,
					 'scenario', 'scenario', 'epochs', 2)
				 || CASE WHEN p = 'none' THEN '{}' ELSE jsonb_build_object(
					 'sequences', '{"recent_items": "item"}'::jsonb, 'sequence_length', 50,
					 'sequence_pooling', p) END) AS model
FROM sp_rows, (VALUES ('din'), ('mean'), ('none')) v(p) GROUP BY p;
-- rows to score: full histories of 50 only, taken again in turn up to :rows
-- (the demo shop has a few thousand), so a query's set-up is spread as a batch
-- job's would be
CREATE TEMP TABLE sp_score AS
WITH full_rows AS (SELECT * FROM sp_rows WHERE jsonb_array_length(ctx->'recent_items') = 50)
SELECT s.* FROM full_rows s,
	generate_series(1, (SELECT ceil(:rows::float8 / greatest(count(*), 1))::int FROM full_rows))
LIMIT :rows;
SELECT count(*) AS scored_rows FROM sp_score;
CREATE TEMP TABLE sp_times (pooling text, what text, n bigint, seconds float8);
DO $$
DECLARE m record; t timestamptz; n bigint; k int;
BEGIN
	FOR rep IN 1..2 LOOP
		FOR m IN SELECT * FROM sp_models ORDER BY pooling LOOP
			t := clock_timestamp();
			SELECT count(mtl_predict(m.model, s.user_id, s.item_id, NULL, s.itf,
									 CASE WHEN m.pooling = 'none' THEN s.ctx - 'recent_items' ELSE s.ctx END))
			INTO n FROM sp_score s;
			INSERT INTO sp_times VALUES (m.pooling, 'mtl_predict rows/s', n, extract(epoch FROM clock_timestamp() - t));
			t := clock_timestamp();
			SELECT count(*) INTO n FROM (SELECT DISTINCT ON (user_id) * FROM sp_score ORDER BY user_id LIMIT 200) s,
				LATERAL mtl_recommend(m.model, s.user_id, 10, context =>
					CASE WHEN m.pooling = 'none' THEN s.ctx - 'recent_items' ELSE s.ctx END) r;
			SELECT count(*) INTO k FROM (SELECT DISTINCT ON (user_id) user_id FROM sp_score ORDER BY user_id LIMIT 200) s;
			INSERT INTO sp_times VALUES (m.pooling, 'mtl_recommend item scores/s',
				k * (mtl_info(m.model)->>'items')::bigint, extract(epoch FROM clock_timestamp() - t));
		END LOOP;
	END LOOP;
END $$;
-- the better of two runs
SELECT what, pooling, round(max(n / seconds)) AS per_second
FROM sp_times GROUP BY what, pooling ORDER BY what, pooling;
