-- Data-parallel training in rounds: the first pass, a round, applying it,
-- chunks of rows, parallel plans, the driver, and every error.
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
-- the rows kept once as chunks (mtl_round_rows, grouped by mtl_round_chunk_key,
-- one chunk per page as mtl_fit_parallel keeps them): the same first pass,
-- the same round, the held-out rows' metrics
CREATE TABLE rounds_chunks WITH (fillfactor = 10) AS
SELECT mtl_round_rows(user_id, item_id, labels, uf, itf, ctx, :'config') AS c, repeat(' ', 1024) AS pad
FROM rounds_rows WHERE day <= 12 GROUP BY mtl_round_chunk_key(4000);
ALTER TABLE rounds_chunks SET (parallel_workers = 2);
SELECT count(*) AS chunks, pg_relation_size('rounds_chunks') / current_setting('block_size')::int AS pages FROM rounds_chunks;
SELECT (SELECT mtl_round_init(c, :'config') FROM rounds_chunks) = model AS chunk_init_same
FROM rounds_models WHERE round = 0;
SELECT mtl_train_round(m.model, r.user_id, r.item_id, r.labels, r.uf, r.itf, r.ctx, '{"round": 1, "row_fraction": 0.5}') =
	   (SELECT mtl_train_round(m2.model, k.c, '{"round": 1, "row_fraction": 0.5}') FROM rounds_models m2, rounds_chunks k WHERE m2.round = 0)
	   AS chunk_round_same
FROM rounds_models m, rounds_rows r WHERE m.round = 0 AND r.day <= 12;
-- the held-out rows of chunks: as mtl_evaluate of those rows, and as a round that keeps their scores
CREATE TABLE rounds_eval AS
SELECT (SELECT mtl_evaluate(m.model, k.c) FROM rounds_chunks k) AS chunks,
	   (SELECT mtl_evaluate(m.model, r.user_id, r.item_id, r.labels, r.uf, r.itf, r.ctx) FROM rounds_rows r
		 WHERE r.day <= 12 AND mtl_round_takes(m.model, '{"round": 1, "row_fraction": 0}', r.user_id, r.item_id)) AS rows,
	   (SELECT mtl_round_info(mtl_train_round(m.model, k.c, '{"round": 2, "row_fraction": 0, "metrics": true}')) FROM rounds_chunks k) AS round
FROM rounds_models m WHERE m.round = 1;
SELECT chunks = rows AS chunk_evaluate_same,
	   abs((round->'holdout'->0->>'auc')::float8 - (rows->'tasks'->'ctr'->>'auc')::float8) < 1e-4 AS round_auc_same,
	   abs((round->'holdout'->1->>'logloss')::float8 - (rows->'tasks'->'cvr'->>'logloss')::float8) < 1e-4 AS round_logloss_same,
	   (round->'holdout'->0->>'count')::int = (rows->'tasks'->'ctr'->>'count')::int AS round_count_same,
	   (round->>'validation_rows')::int = (rows->>'rows')::int AS validation_rows_same
FROM rounds_eval;
-- a row without ids, and one with features of one side only
SELECT (mtl_round_info(r)->>'rows')::int + (mtl_round_info(r)->>'validation_rows')::int AS rows_used
FROM (SELECT mtl_train_round(m.model, k.c, '{"round": 1}') AS r FROM rounds_models m,
	  (SELECT mtl_round_rows(u, i, l, uf, itf, ctx, :'config') AS c
	   FROM (VALUES (NULL::bigint, NULL::bigint, ARRAY[1, NULL]::float8[], NULL::jsonb, NULL::jsonb, NULL::jsonb),
					(1::bigint, 2::bigint, ARRAY[0, NULL]::float8[], NULL, '{}', NULL)) v(u, i, l, uf, itf, ctx)) k
	  WHERE m.round = 0) x;
-- rounds of row_fraction 0.3 train ceil(1 / 0.3) = 4 slices, every training row once
SELECT sum((mtl_round_info(r)->>'rows')::int) + max((mtl_round_info(r)->>'validation_rows')::int)
	   = (SELECT count(*) FROM rounds_rows WHERE day <= 12) AS slices_cover_rows,
	   count(*) FILTER (WHERE (mtl_round_info(r)->>'rows')::int > 0) AS slices
FROM (SELECT mtl_train_round(m.model, k.c, jsonb_build_object('round', n, 'row_fraction', 0.3)) AS r
	  FROM rounds_models m, rounds_chunks k, generate_series(1, 4) n WHERE m.round = 0 GROUP BY n) x;

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
SELECT mtl_train_round((SELECT model FROM rounds_models WHERE round = 0), c, '{"round": 1}') FROM rounds_chunks;
SELECT (mtl_round_info(r)->>'rows')::int + (mtl_round_info(r)->>'validation_rows')::int = (SELECT count(*) FROM rounds_rows WHERE day <= 12) AS every_row_once,
	   (mtl_round_info(r)->>'shares')::int AS shares
FROM (SELECT mtl_train_round((SELECT model FROM rounds_models WHERE round = 0), c, '{"round": 1}') AS r FROM rounds_chunks) x;
-- each worker streams its chunks out as they fill: grouping by the chunk key needs no sort or hash table
SET enable_hashagg = off;
EXPLAIN (COSTS OFF)
SELECT mtl_round_rows(user_id, item_id, labels, uf, itf, ctx, :'config') FROM rounds_rows GROUP BY mtl_round_chunk_key(4000);
SELECT (mtl_info(mtl_round_init(c, :'config'))->'training'->>'rows')::int = (SELECT count(*) FROM rounds_rows) AS every_row_kept,
	   count(*) >= 5 AS chunks
FROM (SELECT mtl_round_rows(user_id, item_id, labels, uf, itf, ctx, :'config') AS c FROM rounds_rows GROUP BY mtl_round_chunk_key(4000)) x;
RESET enable_hashagg;
SELECT mtl_info(mtl_round_init(user_id, item_id, labels, uf, itf, ctx, :'config'))->'features' =
	   (SELECT mtl_info(model)->'features' FROM rounds_models WHERE round = 0) AS parallel_first_pass_same
FROM rounds_rows WHERE day <= 12;
RESET parallel_leader_participation;

-- the driver: rows kept once as chunks, the first pass, rounds until the held-out loss stops falling
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

-- without a schema to keep the rows in, every round runs the query
SET max_parallel_workers_per_gather = 0;
SET search_path = '';
SELECT public.mtl_fit_parallel('rounds_nopath', 'SELECT user_id, item_id, labels FROM public.rounds_rows WHERE day <= 12',
	'{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "cvr", "type": "binary", "given": "ctr"}], "max_rounds": 2, "verbose": false}') AS version;
RESET search_path;
RESET max_parallel_workers_per_gather;
DELETE FROM mtl_deployments WHERE name = 'rounds_nopath';
DELETE FROM mtl_models WHERE name = 'rounds_nopath';
-- no held-out rows: no held-out metrics
SELECT mtl_fit_parallel('rounds_noval', 'SELECT user_id, item_id, labels FROM rounds_rows WHERE day <= 12',
	'{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "cvr", "type": "binary", "given": "ctr"}], "max_rounds": 2, "validation_fraction": 0, "verbose": false}') AS version;
SELECT metrics ? 'holdout' AS has_holdout, metrics->'rounds' AS rounds FROM mtl_models WHERE name = 'rounds_noval';
DELETE FROM mtl_deployments WHERE name = 'rounds_noval';
DELETE FROM mtl_models WHERE name = 'rounds_noval';

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
SELECT mtl_train_round(m.model, c, '{"round": 1, "metrics": 1}') FROM rounds_models m, rounds_chunks WHERE m.round = 0;
SELECT mtl_round_init(user_id, item_id, labels, NULL) FROM rounds_rows;
SELECT mtl_round_init(user_id, item_id, labels, '{"tasks": []}') FROM rounds_rows;
SELECT mtl_fit_parallel('rounds', 'SELECT user_id, item_id FROM rounds_rows', :'config');
SELECT mtl_fit_parallel('rounds', 'SELECT user_id, item_id, labels FROM rounds_rows WHERE false', :'config');
SELECT mtl_fit_parallel('rounds', 'SELECT user_id, item_id, labels FROM rounds_rows', jsonb_set(:'config', '{round_fraction}', '0'));
SELECT mtl_round_chunk_key(0);
SELECT mtl_round_rows(1, 2, ARRAY[1, 0, 1]::float8[], jsonb_set(:'config', '{sample_weight}', 'true'));
SELECT mtl_round_rows(1, 2, ARRAY[1]::float8[], '{"tasks": [{"name": "ctr", "type": "binary"}], "weight": 1}');
SELECT mtl_round_init(NULL::bytea, :'config');
SELECT mtl_round_init(c, NULL) FROM rounds_chunks;
SELECT mtl_round_init(c, :'config') FROM (SELECT mtl_round_rows(1, 2, ARRAY[1]::float8[], '{"tasks": [{"name": "ctr", "type": "binary"}]}') AS c) x;
SELECT mtl_round_init('\x00'::bytea, :'config');
-- damaged or truncated chunks: every prefix is refused, and a changed byte
-- anywhere is refused (the checksum), never a crash
CREATE FUNCTION pg_temp.outcome(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END $$;
CREATE TABLE rounds_small AS
SELECT mtl_round_rows(user_id, item_id, labels, uf, itf, ctx, :'config') AS c FROM (SELECT * FROM rounds_rows LIMIT 3) r;
SELECT pg_temp.outcome(format('SELECT mtl_train_round(%L::bytea, %L::bytea, ''{"round": 1}'')', m.model, substr(k.c, 1, n))) AS prefix,
	   count(*)
FROM rounds_models m, rounds_small k, generate_series(0, octet_length(k.c) - 1) n
WHERE m.round = 0 GROUP BY 1 ORDER BY 1;
SELECT pg_temp.outcome(format('SELECT mtl_evaluate(%L::bytea, %L::bytea)', m.model,
							  set_byte(k.c, n, get_byte(k.c, n) # 255))) AS flipped_byte,
	   count(*)
FROM rounds_models m, rounds_small k, generate_series(0, octet_length(k.c) - 1) n
WHERE m.round = 0 GROUP BY 1 ORDER BY 1;
SELECT pg_temp.outcome(format('SELECT mtl_round_init(%L::bytea, %L)', substr(k.c, 1, n), :'config')) AS init_prefix,
	   count(*)
FROM rounds_small k, generate_series(0, octet_length(k.c) - 1) n GROUP BY 1 ORDER BY 1;
SELECT mtl_evaluate(model, '\x00'::bytea) FROM rounds_models WHERE round = 0;
SELECT mtl_evaluate(NULL::bytea, c) IS NULL AS no_model_no_rows FROM rounds_chunks;
SELECT mtl_fit_parallel('rounds', 'SELECT user_id, item_id, labels FROM rounds_rows', jsonb_set(:'config', '{round_batch_size}', '0'));
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
DROP TABLE rounds_rows, rounds_models, rounds_results, rounds_chunks, rounds_eval, rounds_small;
DROP SCHEMA rounds_shop CASCADE;
