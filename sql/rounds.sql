-- Data-parallel training in rounds: the first pass, a round, applying it,
-- encoded rows, parallel plans, the driver, and every error.
SET client_min_messages = warning;
SELECT mtl_demo_shop('rounds_shop', 300, 80, 20000, 0.7);
RESET client_min_messages;
CREATE TABLE rounds_rows AS
SELECT i.user_id, i.item_id, ARRAY[i.clicked, CASE WHEN i.clicked = 1 THEN i.purchased END]::float8[] AS labels,
	   to_jsonb(u) - 'user_id' AS uf, to_jsonb(it) - 'item_id' AS itf,
	   jsonb_build_object('scenario', i.scenario) AS ctx, i.day
FROM rounds_shop.impressions i JOIN rounds_shop.users u USING (user_id) JOIN rounds_shop.items it USING (item_id)
ORDER BY i.impression_id;
\set config '{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "cvr", "type": "binary", "given": "ctr"}], "scenario": "scenario", "seed": 5}'
SET max_parallel_workers_per_gather = 0;

-- the first pass: vocabularies, statistics and initial parameters, no training
CREATE TABLE rounds_models AS
SELECT 0 AS round, mtl_round_init(user_id, item_id, labels, uf, itf, ctx, :'config') AS model
FROM rounds_rows WHERE day <= 12;
SELECT (mtl_info(model)->>'users')::int = (SELECT count(DISTINCT user_id) FROM rounds_rows WHERE day <= 12) AS all_users,
	   (mtl_info(model)->>'items')::int = (SELECT count(DISTINCT item_id) FROM rounds_rows WHERE day <= 12) AS all_items,
	   mtl_info(model)->'training'->'epochs' AS epochs,
	   jsonb_array_length(mtl_info(model)->'features') AS features
FROM rounds_models;
-- its vocabularies are those mtl_train builds from the same rows
SELECT mtl_info(r.model)->'features' = mtl_info(t.model)->'features' AS same_features
FROM rounds_models r,
	 (SELECT mtl_train(user_id, item_id, labels, uf, itf, ctx, jsonb_set(:'config', '{epochs}', '1')) AS model
	  FROM rounds_rows WHERE day <= 12) t;

-- a round: rows, the start model's held-out loss, and the model after it
CREATE TABLE rounds_results AS
SELECT 1 AS round, mtl_train_round(m.model, r.user_id, r.item_id, r.labels, r.uf, r.itf, r.ctx, '{"round": 1, "row_fraction": 0.5}') AS result
FROM rounds_models m, rounds_rows r WHERE m.round = 0 AND r.day <= 12;
SELECT (i->>'rows')::int BETWEEN 5000 AND 9000 AS half_the_rows, (i->>'validation_rows')::int > 1000 AS held_out,
	   (i->>'loss')::float8 > 0 AS has_loss, (i->>'validation_loss')::float8 > 0 AS has_validation_loss,
	   (i->>'embedding_rows_updated')::int > 300 AS rows_updated, i->'round' AS round
FROM rounds_results, mtl_round_info(result) i;
INSERT INTO rounds_models
SELECT 1, mtl_round_apply(m.model, r.result) FROM rounds_models m, rounds_results r WHERE m.round = 0;
SELECT mtl_info(model)->'training'->'epochs' AS epochs, octet_length(model) = (SELECT octet_length(model) FROM rounds_models WHERE round = 0) AS same_size,
	   (SELECT bool_and(s[1] BETWEEN 0 AND 1 AND s[2] BETWEEN 0 AND 1)
		  FROM rounds_rows r, mtl_predict(m.model, r.user_id, r.item_id, r.uf, r.itf, r.ctx) s WHERE r.day > 12) AS scores
FROM rounds_models m WHERE round = 1;
-- the same rows in the same order: the same round, byte for byte
SELECT mtl_train_round(m.model, r.user_id, r.item_id, r.labels, r.uf, r.itf, r.ctx, '{"round": 1, "row_fraction": 0.5}') = res.result AS reproducible
FROM rounds_models m, rounds_rows r, rounds_results res WHERE m.round = 0 AND r.day <= 12 GROUP BY res.result;
-- the model passed on the first row only (mtl_round_model, as for Citus): the same round
SELECT mtl_train_round(mtl_round_model(m.model), r.user_id, r.item_id, r.labels, r.uf, r.itf, r.ctx, '{"round": 1, "row_fraction": 0.5}') = res.result AS first_row_model_same,
	   count(*) FILTER (WHERE mtl_round_model(m.model) IS NOT NULL) AS rows_with_model
FROM rounds_models m, rounds_rows r, rounds_results res WHERE m.round = 0 AND r.day <= 12 GROUP BY res.result;
SELECT mtl_round_model(NULL) IS NULL AS null_stays_null;
-- rows encoded once train the same round as the rows themselves
CREATE TABLE rounds_encoded AS
SELECT mtl_round_encode(m.model, r.user_id, r.item_id, r.labels, r.uf, r.itf, r.ctx) AS e
FROM rounds_models m, (SELECT * FROM rounds_rows WHERE day <= 12 ORDER BY user_id, item_id, day) r WHERE m.round = 0;
SELECT mtl_train_round(m.model, r.user_id, r.item_id, r.labels, r.uf, r.itf, r.ctx, '{"round": 1, "row_fraction": 0.5}') =
	   (SELECT mtl_train_round(m2.model, e.e, '{"round": 1, "row_fraction": 0.5}') FROM rounds_models m2, rounds_encoded e WHERE m2.round = 0)
	   AS encoded_same
FROM rounds_models m, (SELECT * FROM rounds_rows WHERE day <= 12 ORDER BY user_id, item_id, day) r WHERE m.round = 0;
-- rows packed once (mtl_round_pack): the same first pass and the same encoded rows
CREATE TABLE rounds_packed AS
SELECT mtl_round_pack(user_id, item_id, labels, uf, itf, ctx) AS p, user_id, item_id, labels, uf, itf, ctx
FROM rounds_rows WHERE day <= 12;
SELECT (SELECT mtl_round_init(p, :'config') FROM rounds_packed) = model AS packed_init_same
FROM rounds_models WHERE round = 0;
SELECT bool_and(mtl_round_encode(m.model, k.p) = mtl_round_encode(m.model, k.user_id, k.item_id, k.labels, k.uf, k.itf, k.ctx)) AS packed_encode_same,
	   count(*) AS rows
FROM rounds_models m, rounds_packed k WHERE m.round = 0;
SELECT (SELECT mtl_evaluate(m.model, k.p) FROM rounds_packed k) =
	   (SELECT mtl_evaluate(m.model, k.user_id, k.item_id, k.labels, k.uf, k.itf, k.ctx) FROM rounds_packed k)
	   AS packed_evaluate_same
FROM rounds_models m WHERE m.round = 1;
-- without ids or features, and with features of one side only
SELECT mtl_round_encode(m.model, mtl_round_pack(NULL, NULL, ARRAY[1, NULL]::float8[])) =
	   mtl_round_encode(m.model, NULL, NULL, ARRAY[1, NULL]::float8[]) AS no_ids_same,
	   mtl_round_encode(m.model, mtl_round_pack(r.user_id, r.item_id, r.labels, NULL, '{}')) =
	   mtl_round_encode(m.model, r.user_id, r.item_id, r.labels, NULL, '{}') AS one_side_same
FROM rounds_models m, (SELECT * FROM rounds_rows LIMIT 1) r WHERE m.round = 0;
-- a slice per row: held-out rows -1, the rest spread over ceil(1 / row_fraction) slices
SELECT array_agg(s ORDER BY s) AS slices
FROM (SELECT DISTINCT mtl_round_slice(m.model, e.e, 0.3) AS s FROM rounds_models m, rounds_encoded e WHERE m.round = 0) x;
SELECT sum(CASE WHEN mtl_round_slice(m.model, e.e, 0.5) = 0 THEN 1 END) =
	   (SELECT (mtl_round_info(result)->>'rows')::bigint FROM rounds_results) AS slice_is_round_1
FROM rounds_models m, rounds_encoded e WHERE m.round = 0;

-- round 2 measures round 1's model: its held-out loss is lower than round 0's
SELECT (mtl_round_info(mtl_train_round(m.model, r.user_id, r.item_id, r.labels, r.uf, r.itf, r.ctx, '{"round": 2, "row_fraction": 0}'))->>'validation_loss')::float8
	   < (SELECT (mtl_round_info(result)->>'validation_loss')::float8 FROM rounds_results) AS learned,
	   mtl_round_info(mtl_train_round(m.model, r.user_id, r.item_id, r.labels, r.uf, r.itf, r.ctx, '{"round": 2, "row_fraction": 0}'))->'rows' AS trained_rows
FROM rounds_models m, rounds_rows r WHERE m.round = 1 AND r.day <= 12;

-- under a parallel plan each worker trains its share, and the shares are merged
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF)
SELECT mtl_train_round((SELECT model FROM rounds_models WHERE round = 0), e.e, '{"round": 1}') FROM rounds_encoded e;
SELECT (mtl_round_info(r)->>'rows')::int + (mtl_round_info(r)->>'validation_rows')::int = (SELECT count(*) FROM rounds_encoded) AS every_row_once
FROM (SELECT mtl_train_round((SELECT model FROM rounds_models WHERE round = 0), e.e, '{"round": 1}') AS r FROM rounds_encoded e) x;
SELECT mtl_info(mtl_round_init(user_id, item_id, labels, uf, itf, ctx, :'config'))->'features' =
	   (SELECT mtl_info(model)->'features' FROM rounds_models WHERE round = 0) AS parallel_first_pass_same
FROM rounds_rows WHERE day <= 12;
RESET parallel_leader_participation;

-- the driver: the first pass, rows encoded once, rounds until the held-out loss stops falling
SET client_min_messages = warning;
SELECT mtl_fit_parallel('rounds', 'SELECT user_id, item_id, labels, uf, itf, ctx FROM rounds_rows WHERE day <= 12',
	jsonb_set(jsonb_set(:'config', '{round_fraction}', '0.5'), '{verbose}', 'false')) AS version;
SELECT mtl_fit_parallel('rounds', 'SELECT user_id, item_id, labels FROM rounds_rows WHERE day <= 12;',
	'{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "cvr", "type": "binary", "given": "ctr"}], "max_rounds": 3, "cache_rows": false, "verbose": false}') AS version;
RESET client_min_messages;
SELECT name, version, (metrics->'holdout'->'ctr'->>'auc')::float8 > 0.55 AS held_out_auc,
	   (metrics->'holdout'->'ctr'->>'rows')::int = (metrics->>'validation_rows')::int AS held_out_rows,
	   (metrics->>'rounds')::int >= 1 AS rounds, config->'round_fraction' AS round_fraction,
	   (SELECT count(*) FROM pg_class WHERE relname LIKE 'mtl_round_rows%') AS tables_left
FROM mtl_models WHERE name = 'rounds' ORDER BY version;
SELECT round(mtl_auc((mtl_predict('rounds', user_id, item_id))[1], labels[1])::numeric, 1) >= 0.6 AS learned_something
FROM rounds_rows WHERE day > 12;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;

-- without a schema to create the encoded rows in, every round runs the query
SET max_parallel_workers_per_gather = 0;
SET search_path = '';
SELECT public.mtl_fit_parallel('rounds_nopath', 'SELECT user_id, item_id, labels FROM public.rounds_rows WHERE day <= 12',
	'{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "cvr", "type": "binary", "given": "ctr"}], "max_rounds": 2, "verbose": false}') AS version;
RESET search_path;
RESET max_parallel_workers_per_gather;
DELETE FROM mtl_deployments WHERE name = 'rounds_nopath';
DELETE FROM mtl_models WHERE name = 'rounds_nopath';

-- errors
\set VERBOSITY sqlstate
SELECT mtl_train_round(m.model, r.user_id, r.item_id, r.labels, '{}') FROM rounds_models m, rounds_rows r WHERE m.round = 0;
SELECT mtl_train_round(m.model, r.user_id, r.item_id, r.labels, '{"round": 0}') FROM rounds_models m, rounds_rows r WHERE m.round = 0;
SELECT mtl_train_round(m.model, r.user_id, r.item_id, r.labels, '{"round": 1.5}') FROM rounds_models m, rounds_rows r WHERE m.round = 0;
SELECT mtl_train_round(m.model, r.user_id, r.item_id, r.labels, '{"round": 1, "row_fraction": 2}') FROM rounds_models m, rounds_rows r WHERE m.round = 0;
SELECT mtl_train_round(m.model, r.user_id, r.item_id, r.labels, '{"round": 1, "train_rows": -5}') FROM rounds_models m, rounds_rows r WHERE m.round = 0;
SELECT mtl_train_round(m.model, r.user_id, r.item_id, r.labels, '{"round": 1, "speed": 2}') FROM rounds_models m, rounds_rows r WHERE m.round = 0;
SELECT mtl_train_round(m.model, r.user_id, r.item_id, r.labels, '{"round": "one"}') FROM rounds_models m, rounds_rows r WHERE m.round = 0;
SELECT mtl_train_round(m.model, r.user_id, r.item_id, r.labels, '[1]') FROM rounds_models m, rounds_rows r WHERE m.round = 0;
SELECT mtl_train_round(NULL, r.user_id, r.item_id, r.labels, '{"round": 1}') FROM rounds_rows r;
-- a NULL model is taken only after a round's first row
SELECT mtl_train_round(CASE WHEN r.day > 1 THEN m.model END, r.user_id, r.item_id, r.labels, '{"round": 1}')
FROM rounds_models m, (SELECT * FROM rounds_rows ORDER BY day) r WHERE m.round = 0;
SELECT mtl_train_round(m.model, r.user_id, r.item_id, NULL, '{"round": 1}') FROM rounds_models m, rounds_rows r WHERE m.round = 0;
SELECT mtl_train_round(m.model, r.user_id, r.item_id, ARRAY[1]::float8[], '{"round": 1}') FROM rounds_models m, rounds_rows r WHERE m.round = 0;
SELECT mtl_train_round('\x01'::bytea, r.user_id, r.item_id, r.labels, '{"round": 1}') FROM rounds_rows r;
-- two models in one round
SELECT mtl_train_round(m.model, r.user_id, r.item_id, r.labels, '{"round": 1}') FROM rounds_models m, rounds_rows r;
-- damaged, truncated or foreign states and rows
SELECT mtl_round_info('\x00'::bytea);
SELECT mtl_round_info(substr(result, 1, 100)) FROM rounds_results;
SELECT mtl_round_info(overlay(result placing '\xff'::bytea from 60)) FROM rounds_results;
SELECT mtl_round_apply(m.model, r.result) FROM rounds_models m, rounds_results r WHERE m.round = 1;
SELECT mtl_round_apply(m.model, '\x00'::bytea) FROM rounds_models m WHERE m.round = 0;
SELECT mtl_train_round(m.model, '\x0001'::bytea, '{"round": 1}') FROM rounds_models m WHERE m.round = 0;
SELECT mtl_train_round(m.model, overlay(e.e placing '\xffffff7f'::bytea from 9), '{"round": 1}')
FROM rounds_models m, (SELECT e FROM rounds_encoded LIMIT 1) e WHERE m.round = 0;
SELECT mtl_train_round(m.model, overlay(e.e placing '\x000000000000f07f'::bytea from 1), '{"round": 1}')
FROM rounds_models m, (SELECT e FROM rounds_encoded LIMIT 1) e WHERE m.round = 0;
SELECT mtl_round_init(user_id, item_id, labels, NULL) FROM rounds_rows;
SELECT mtl_round_init(user_id, item_id, labels, '{"tasks": []}') FROM rounds_rows;
SELECT mtl_fit_parallel('rounds', 'SELECT user_id, item_id FROM rounds_rows', :'config');
SELECT mtl_fit_parallel('rounds', 'SELECT user_id, item_id, labels FROM rounds_rows WHERE false', :'config');
SELECT mtl_fit_parallel('rounds', 'SELECT user_id, item_id, labels FROM rounds_rows', jsonb_set(:'config', '{round_fraction}', '0'));
SELECT mtl_round_encode(NULL, 1, 2, ARRAY[1, 0]::float8[]);
SELECT mtl_round_encode(model, 1, 2, NULL) FROM rounds_models WHERE round = 0;
SELECT mtl_round_encode(model, 1, 2, ARRAY[1]::float8[]) FROM rounds_models WHERE round = 0;
SELECT mtl_round_encode('\x0102'::bytea, 1, 2, ARRAY[1, 0]::float8[]);
SELECT mtl_round_pack(1, 2, NULL);
SELECT mtl_round_pack(1, 2, ARRAY['NaN']::float8[]);
SELECT mtl_round_pack(1, 2, ARRAY[[1, 0]]::float8[]);
SELECT mtl_round_pack(1, 2, ARRAY[1, 0]::float8[], '[1]', NULL);
SELECT mtl_round_pack(1, 2, ARRAY[1, 0]::float8[], '{"a": [true]}', NULL);
SELECT mtl_round_init(NULL::bytea, :'config');
SELECT mtl_round_init(p, NULL) FROM rounds_packed;
SELECT mtl_round_init(mtl_round_pack(1, 2, ARRAY[1]::float8[]), :'config');
SELECT mtl_round_init(mtl_round_pack(1, 2, ARRAY[2, 0]::float8[]), :'config');
SELECT mtl_round_encode(model, NULL::bytea) FROM rounds_models WHERE round = 0;
SELECT mtl_round_encode(model, '\x00'::bytea) FROM rounds_models WHERE round = 0;
-- damaged or truncated packed rows: every prefix is refused, and a changed
-- byte anywhere is refused or read as another valid row, never a crash
CREATE FUNCTION pg_temp.outcome(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END $$;
SELECT pg_temp.outcome(format('SELECT mtl_round_encode(%L::bytea, %L::bytea)', m.model, substr(k.p, 1, n))) AS prefix,
	   count(*)
FROM rounds_models m, (SELECT p FROM rounds_packed LIMIT 1) k, generate_series(0, octet_length(k.p) - 1) n
WHERE m.round = 0 GROUP BY 1 ORDER BY 1;
SELECT pg_temp.outcome(format('SELECT mtl_round_encode(%L::bytea, %L::bytea)', m.model,
							  set_byte(k.p, n, get_byte(k.p, n) # 255))) IN ('ok', 'XX001', '22000', '2202E') AS flipped_byte_handled,
	   count(*)
FROM rounds_models m, (SELECT p FROM rounds_packed LIMIT 1) k, generate_series(0, octet_length(k.p) - 1) n
WHERE m.round = 0 GROUP BY 1;
SELECT mtl_evaluate(model, '\x00'::bytea) FROM rounds_models WHERE round = 0;
SELECT mtl_evaluate(m.model, substr(k.p, 1, 20)) FROM rounds_models m, (SELECT p FROM rounds_packed LIMIT 1) k WHERE m.round = 0;
SELECT mtl_evaluate(NULL::bytea, p) IS NULL AS no_model_no_rows FROM rounds_packed;
SELECT mtl_fit_parallel('rounds', 'SELECT user_id, item_id, labels FROM rounds_rows', jsonb_set(:'config', '{round_batch_size}', '0'));
SELECT mtl_round_slice(model, '\x00'::bytea, 0.5) FROM rounds_models WHERE round = 0;
SELECT mtl_round_slice(m.model, e.e, 0) FROM rounds_models m, (SELECT e FROM rounds_encoded LIMIT 1) e WHERE m.round = 0;
SELECT mtl_round_takes(NULL, '{"round": 1}', 1, 2);
SELECT mtl_round_takes(model, NULL, 1, 2) FROM rounds_models WHERE round = 0;
SELECT mtl_round_takes(model, '{"round": 1, "validate": "yes"}', 1, 2) FROM rounds_models WHERE round = 0;
SELECT mtl_round_takes('\x0102'::bytea, '{"round": 1}', 1, 2);
SELECT mtl_query_columns(NULL);
SELECT mtl_query_columns('DELETE FROM rounds_rows');
SELECT mtl_query_columns('SELECT user_id, item_id, labels, uf FROM rounds_rows');
SELECT mtl_fit_parallel(NULL, 'SELECT 1', '{}');
SELECT mtl_fit_parallel('', 'SELECT 1', '{}');
\set VERBOSITY default
-- an empty input gives NULL
SELECT mtl_round_init(user_id, item_id, labels, :'config') IS NULL AS init_null,
	   mtl_train_round((SELECT model FROM rounds_models WHERE round = 0), user_id, item_id, labels, '{"round": 1}') IS NULL AS round_null
FROM rounds_rows WHERE false;

DELETE FROM mtl_deployments WHERE name = 'rounds';
DELETE FROM mtl_models WHERE name = 'rounds';
DROP TABLE rounds_rows, rounds_models, rounds_results, rounds_encoded;
DROP SCHEMA rounds_shop CASCADE;
