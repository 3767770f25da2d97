-- mtl_predict: ids, features, unseen and anonymous ids, NULLs, the per-call-site cache
CREATE TABLE p_rows (user_id bigint, item_id bigint, segment text, price float8, clicked float8, rating float8);
INSERT INTO p_rows
SELECT u, i, CASE WHEN u % 2 = 0 THEN 'even' ELSE 'odd' END, 10 + i,
	   CASE WHEN (u + i) % 2 = 0 THEN 1 ELSE 0 END,
	   CASE WHEN (u + i) % 2 = 0 THEN 4 + (i % 2) END
FROM generate_series(1, 40) u, generate_series(1, 20) i;

CREATE TABLE p_models AS
SELECT mtl_train(user_id, item_id, ARRAY[clicked, rating],
	jsonb_build_object('segment', segment), jsonb_build_object('price', price),
	'{"tasks": [{"name": "click", "type": "binary"}, {"name": "rating", "type": "regression"}], "epochs": 30, "seed": 3, "validation_fraction": 0}') AS model
FROM p_rows;

-- the parity pattern is learned from ids
SELECT mtl_auc((mtl_predict(model, user_id, item_id))[1], clicked) > 0.9 AS learned
FROM p_rows, p_models;

-- regression scores are on the label scale
SELECT avg((mtl_predict(model, user_id, item_id))[2]) BETWEEN 3.5 AND 5.5 AS rating_scale
FROM p_rows, p_models WHERE clicked = 1;

-- ids alone use the stored features: same as passing them
SELECT bool_and(mtl_predict(model, user_id, item_id) =
				mtl_predict(model, user_id, item_id, jsonb_build_object('segment', segment),
							jsonb_build_object('price', price))) AS stored_features_used
FROM p_rows, p_models;

-- NULL feature objects keep the stored features; unknown keys are ignored
SELECT mtl_predict(model, 3, 4, NULL, NULL) = mtl_predict(model, 3, 4) AS null_objects,
	   mtl_predict(model, 3, 4, '{"segment": "odd", "colour": "red"}', '{"price": 14, "weight": 2}')
		   = mtl_predict(model, 3, 4) AS unknown_keys_ignored
FROM p_models;

-- unseen ids fall back to anonymous (no id embedding): same as NULL ids
SELECT mtl_predict(model, 999999, 888888) = mtl_predict(model, NULL, NULL) AS unseen_is_anonymous,
	   array_length(mtl_predict(model, NULL, NULL), 1) AS scores,
	   (mtl_predict(model, NULL, NULL))[1] BETWEEN 0 AND 1 AS probability
FROM p_models;

-- features of an unseen user change its scores
SELECT mtl_predict(model, 999999, 5, '{"segment": "odd"}', NULL)
	   <> mtl_predict(model, 999999, 5, '{"segment": "even"}', NULL) AS features_matter
FROM p_models;

-- NULL model: NULL scores
SELECT mtl_predict(NULL, 1, 2) IS NULL AS null_model, mtl_predict(NULL, 1, 2, NULL, NULL) IS NULL AS null_model_features;

-- one call site fed different models in turn scores each with its own
-- (six models: more than the four a call site keeps)
CREATE TABLE p_two AS
SELECT seed, mtl_train(user_id, item_id, ARRAY[clicked, rating],
	jsonb_build_object('tasks', '[{"name": "click", "type": "binary"}, {"name": "rating", "type": "regression"}]'::jsonb,
					   'epochs', 2, 'seed', seed)) AS model
FROM p_rows, generate_series(1, 6) s(seed) GROUP BY seed;
-- each model scored once, in its own call: the reference
CREATE TABLE p_ref AS SELECT seed, mtl_predict(model, 1, 1) AS s FROM p_two;
SELECT count(DISTINCT s) AS distinct_models FROM p_ref;
-- one call site, models in the order 1 2 1 2 3 4 5 6 1 2: hits, then evictions
CREATE FUNCTION score_in_turn() RETURNS TABLE (seed int, same bool) LANGUAGE plpgsql AS $$
DECLARE
	k int;
	m bytea;
	got float8[];
BEGIN
	FOREACH k IN ARRAY ARRAY[1, 2, 1, 2, 3, 4, 5, 6, 1, 2] LOOP
		m := (SELECT model FROM p_two WHERE p_two.seed = k);
		-- a simple expression: its call site (and cache) lives across the loop
		got := mtl_predict(m, 1, 1);
		seed := k;
		same := got = (SELECT s FROM p_ref WHERE p_ref.seed = k);
		RETURN NEXT;
	END LOOP;
END $$;
SELECT * FROM score_in_turn();
SELECT (SELECT mtl_predict(model, 1, 1) FROM p_two WHERE seed = 1)
	   <> (SELECT mtl_predict(model, 1, 1) FROM p_two WHERE seed = 2) AS models_differ;

-- a model stored out of line (TOAST) scores the same as its in-memory copy
CREATE TABLE p_stored (model bytea);
ALTER TABLE p_stored ALTER COLUMN model SET STORAGE EXTERNAL;
INSERT INTO p_stored SELECT model FROM p_models;
SELECT bool_and(mtl_predict(s.model, r.user_id, r.item_id) = mtl_predict(m.model, r.user_id, r.item_id)) AS toasted_same
FROM p_rows r, p_stored s, p_models m;
