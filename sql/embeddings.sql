-- mtl_embeddings: each known id's vector, as scoring pools it
CREATE TABLE em_rows AS
SELECT u AS user_id, i AS item_id, ((u * 7 + i * 3) % 5 < 2)::int::float8 AS clicked,
	   jsonb_build_object('segment', 's' || u % 3) AS uf, jsonb_build_object('category', 'c' || i % 4) AS itf
FROM generate_series(1, 30) u, generate_series(1, 12) i;
CREATE TABLE em_model AS
SELECT mtl_train(user_id, item_id, ARRAY[clicked], uf, itf,
	'{"tasks": [{"name": "ctr", "type": "binary"}], "epochs": 2, "embedding_dim": 6}') AS model
FROM em_rows;
SELECT count(*) AS items, count(DISTINCT id) AS distinct_ids, min(id), max(id),
	   bool_and(array_length(embedding, 1) = 6) AS six_floats,
	   count(*) = (SELECT (mtl_info(model) ->> 'items')::int FROM em_model) AS every_item
FROM em_model, mtl_embeddings(model, 'item');
SELECT count(*) AS users FROM em_model, mtl_embeddings(model, 'user');
-- items of one category share its embedding: nearer to each other than to the rest
WITH v AS (SELECT e.id, e.embedding FROM em_model, mtl_embeddings(model, 'item') e),
d AS (SELECT a.id AS a, b.id AS b, (a.id % 4 = b.id % 4) AS same,
			 sqrt((SELECT sum((x - y) ^ 2) FROM unnest(a.embedding, b.embedding) t(x, y))) AS dist
	  FROM v a, v b WHERE a.id < b.id)
SELECT avg(dist) FILTER (WHERE same) < avg(dist) FILTER (WHERE NOT same) AS same_category_nearer FROM d;
-- NULL arguments: no rows
SELECT count(*) FROM mtl_embeddings(NULL, 'item');
SELECT count(*) FROM em_model, mtl_embeddings(model, NULL);
\set VERBOSITY sqlstate
SELECT count(*) FROM em_model, mtl_embeddings(model, 'items');
SELECT count(*) FROM em_model, mtl_embeddings(substr(model, 1, 50), 'item');
\set VERBOSITY default
SELECT count(*) FROM em_model, mtl_embeddings(model, 'items');
