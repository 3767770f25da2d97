-- The model registry: mtl_fit, versions, deploy and rollback, scoring by name
SET client_min_messages = warning;
SELECT mtl_demo_shop('reg_shop', 150, 60, 6000, 0.3);
RESET client_min_messages;
\set query 'SELECT user_id, item_id, ARRAY[clicked, CASE WHEN clicked = 1 THEN purchased END]::float8[] FROM reg_shop.impressions'
\set config '{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "cvr", "type": "binary", "given": "ctr"}], "epochs": 3}'

-- the first version of a name is deployed; the next is stored but not deployed
SELECT mtl_fit('reg', :'query', :'config') AS version;
SELECT mtl_fit('reg', :'query', jsonb_set(:'config', '{seed}', '7')) AS version;
SELECT name, version, deployed, bytes > 1000 AS has_model, created_by = current_user AS by_me,
	   train_seconds > 0 AS timed, query = :'query' AS query_kept
FROM mtl_versions WHERE name = 'reg' ORDER BY version;
-- metrics: held-out rows and metrics per task, from the model's own mtl_info
SELECT version, metrics->'training_rows' AS training_rows, metrics->'validation_rows' AS validation_rows,
	   jsonb_object_keys(metrics->'holdout') AS task,
	   (metrics->'holdout'->'ctr'->>'auc')::float8 BETWEEN 0.5 AND 1 AS ctr_auc_sane,
	   metrics->'holdout' = info->'training'->'holdout' AS same_as_info
FROM mtl_models WHERE name = 'reg' ORDER BY version, task;
-- the same training through the aggregate gives the same model bytes
SELECT (SELECT model FROM mtl_models WHERE name = 'reg' AND version = 1) =
	   (SELECT mtl_train(user_id, item_id, ARRAY[clicked, CASE WHEN clicked = 1 THEN purchased END]::float8[], :'config')
		  FROM reg_shop.impressions) AS same_as_aggregate;

-- scoring by name uses the deployed version, and follows deploy and rollback
CREATE TABLE reg_pairs AS SELECT u AS user_id, i AS item_id FROM generate_series(1, 20) u, generate_series(1, 10) i;
CREATE FUNCTION reg_matches(v int) RETURNS bool LANGUAGE sql AS $$
	SELECT bool_and(mtl_predict('reg', p.user_id, p.item_id) = mtl_predict(m.model, p.user_id, p.item_id))
	FROM reg_pairs p, mtl_models m WHERE m.name = 'reg' AND m.version = v $$;
SELECT mtl_deployed_version('reg') AS deployed, reg_matches(1) AS v1, reg_matches(2) AS v2;
SELECT mtl_deploy('reg', 2);
SELECT mtl_deployed_version('reg') AS deployed, reg_matches(1) AS v1, reg_matches(2) AS v2;
SELECT mtl_rollback('reg') AS back_to;
SELECT mtl_deployed_version('reg') AS deployed, reg_matches(1) AS v1, reg_matches(2) AS v2;
-- a deploy rolled back with its transaction leaves the old version in place
BEGIN;
SELECT mtl_deploy('reg', 2);
SELECT reg_matches(2) AS inside_v2;
ROLLBACK;
SELECT mtl_deployed_version('reg') AS deployed, reg_matches(1) AS v1;
-- a PL/pgSQL loop sees each deploy at its next statement
DO $$
DECLARE got float8[]; want float8[];
BEGIN
	FOR v IN 1..2 LOOP
		PERFORM mtl_deploy('reg', v);
		SELECT mtl_predict('reg', 3, 4) INTO got;
		SELECT mtl_predict(model, 3, 4) INTO want FROM mtl_models WHERE name = 'reg' AND version = v;
		RAISE NOTICE 'deployed %: named scoring uses it: %', v, got = want;
	END LOOP;
END $$;
SELECT mtl_rollback('reg'), mtl_rollback('reg');
SELECT id > 0 AS has_id, version, rolled_back_at IS NOT NULL AS rolled_back FROM mtl_deployments WHERE name = 'reg' ORDER BY id;
-- the feature overloads and mtl_recommend by name equal the bytea forms
SELECT bool_and(mtl_predict('reg', user_id, item_id, '{}', NULL) = mtl_predict(mtl_model('reg'), user_id, item_id, '{}', NULL))
	   AND bool_and(mtl_predict('reg', user_id, item_id, NULL, NULL, '{}') = mtl_predict(mtl_model('reg'), user_id, item_id, NULL, NULL, '{}'))
	   AS features_same
FROM reg_pairs;
SELECT bool_and(a.item_id = b.item_id AND a.score = b.score) AS recommend_same, count(*)
FROM (SELECT row_number() OVER () n, * FROM mtl_recommend('reg', 5, 8, 'ctr*cvr')) a
JOIN (SELECT row_number() OVER () n, * FROM (SELECT mtl_model('reg') m OFFSET 0) x, mtl_recommend(x.m, 5, 8, 'ctr*cvr')) b USING (n);
-- mtl_model with a version; a NULL name scores NULL
SELECT mtl_model('reg', 2) = (SELECT model FROM mtl_models WHERE name = 'reg' AND version = 2) AS by_version,
	   mtl_predict(NULL::text, 1, 2) IS NULL AS null_name;
SELECT count(*) FROM mtl_recommend(NULL::text, 1, 5);

-- one statement scores with one version at all its call sites, even when the
-- name is deployed again between them (here by the statement itself)
SELECT mtl_deployed_version('reg') AS deployed;
SELECT a = b AS same_version, a = (SELECT mtl_predict(model, 3, 4) FROM mtl_models WHERE name = 'reg' AND version = 1) AS first_version
FROM (SELECT mtl_predict('reg', 3, 4) AS a, mtl_deploy('reg', 2) AS d, mtl_predict('reg', 3, 4) AS b OFFSET 0) x WHERE d IS NOT NULL;
SELECT mtl_deployed_version('reg') AS deployed, reg_matches(2) AS v2;
SELECT mtl_rollback('reg') AS back_to;
-- a PL/pgSQL assignment sees a deploy made earlier in its transaction
DO $$
DECLARE x float8[]; y float8[]; v1 float8[]; v2 float8[];
BEGIN
	SELECT mtl_predict(model, 3, 4) INTO v1 FROM mtl_models WHERE name = 'reg' AND version = 1;
	SELECT mtl_predict(model, 3, 4) INTO v2 FROM mtl_models WHERE name = 'reg' AND version = 2;
	x := mtl_predict('reg', 3, 4);
	PERFORM mtl_deploy('reg', 2);
	y := mtl_predict('reg', 3, 4);
	RAISE NOTICE 'before the deploy: version 1 %; after it: version 2 %', x = v1, y = v2;
END $$;
SELECT mtl_rollback('reg') AS back_to;
-- a statement keeps its version while other names push its model out of the
-- backend's cache (8 names): here 'reg' is scored once every 9 rows
SELECT count(*) FROM (SELECT mtl_registry_add('reg_many_' || g, model, NULL, NULL, NULL)
	FROM mtl_models, generate_series(1, 9) g WHERE name = 'reg' AND version = 1) x;
SELECT count(s) AS pinned_calls, count(other) AS other_calls,
	   bool_and(s = (SELECT mtl_predict(model, 3, 4) FROM mtl_models
					 WHERE name = 'reg' AND version = mtl_deployed_version('reg'))) AS right
FROM (SELECT CASE WHEN n = 1 THEN mtl_predict('reg', 3, 4) END AS s, mtl_predict('reg_many_' || n, 3, 4) AS other
	  FROM (SELECT rep, n FROM generate_series(1, 3) rep, generate_series(1, 9) n ORDER BY rep, n OFFSET 0) x) y;

-- errors
SELECT mtl_predict('nope', 1, 2);
SELECT * FROM mtl_recommend('nope', 1, 5);
SELECT mtl_model('nope');
SELECT mtl_model('reg', 9);
SELECT mtl_deploy('reg', 9);
SELECT mtl_deploy('nope', 1);
SELECT mtl_rollback('nope');
SELECT mtl_deploy(NULL, 1);
SELECT mtl_deploy('reg', NULL);
SELECT mtl_rollback(NULL);
SELECT mtl_model(NULL);
SELECT mtl_registry_add('reg', NULL, NULL, NULL, NULL);
SELECT mtl_registry_add('reg', '\x4d544c4d00'::bytea, NULL, NULL, NULL);
SELECT mtl_registry_add('', (SELECT model FROM mtl_models WHERE name = 'reg' AND version = 1), NULL, NULL, NULL);
SELECT mtl_fit(NULL, :'query', :'config');
SELECT mtl_fit('reg', NULL, :'config');
SELECT mtl_fit('reg', :'query', NULL);
SELECT mtl_fit('', :'query', :'config');
SELECT mtl_fit('reg', :'query', '{"tasks": ["ctr"]}');
SELECT mtl_fit('reg', 'SELEC 1', :'config');
SELECT mtl_fit('reg', 'DELETE FROM reg_pairs', :'config');
SELECT mtl_fit('reg', 'SELECT 1; SELECT 2', :'config');
SELECT mtl_fit('reg', 'SELECT user_id, item_id FROM reg_pairs', :'config');
SELECT mtl_fit('reg', 'SELECT user_id::text, item_id, ARRAY[1, 0]::float8[] FROM reg_pairs', :'config');
SELECT mtl_fit('reg', 'SELECT user_id, item_id, ARRAY[1, 0] FROM reg_pairs', :'config');
SELECT mtl_fit('reg', 'SELECT user_id, item_id, ARRAY[1, 0]::float8[], 1, 2 FROM reg_pairs', :'config');
SELECT mtl_fit('reg', 'SELECT user_id, item_id, ARRAY[1, 0]::float8[] FROM reg_pairs WHERE false', :'config');
SELECT mtl_fit('reg', 'SELECT user_id, item_id, ARRAY[1]::float8[] FROM reg_pairs', :'config');
-- int4 ids are taken as bigint; nothing was stored by the failed calls
SELECT mtl_fit('reg_int', 'SELECT user_id::int, item_id::int, ARRAY[(user_id + item_id) % 2, NULL]::float8[] FROM reg_pairs', :'config');
SELECT name, count(*) FROM mtl_models WHERE name LIKE 'reg%' GROUP BY name ORDER BY name;

-- row-level security: mtl_fit runs the query as the calling user
CREATE TABLE reg_private AS SELECT user_id, item_id, ARRAY[clicked, NULL]::float8[] AS labels FROM reg_shop.impressions;
ALTER TABLE reg_private ENABLE ROW LEVEL SECURITY;
CREATE POLICY reg_low_users ON reg_private FOR SELECT USING (user_id <= 50);
CREATE ROLE mtl_regress_analyst;
CREATE ROLE mtl_regress_outsider;
GRANT SELECT ON reg_private TO mtl_regress_analyst;
GRANT mtl_trainer TO mtl_regress_analyst, mtl_regress_outsider;
SET ROLE mtl_regress_analyst;
SELECT mtl_fit('reg_rls', 'SELECT user_id, item_id, labels FROM reg_private', :'config') AS version;
-- with row_security off the query is refused rather than run without the policy
SET row_security = off;
SELECT mtl_fit('reg_rls', 'SELECT user_id, item_id, labels FROM reg_private', :'config');
RESET row_security;
RESET ROLE;
-- the model saw only the rows the policy shows: users 1..50
SELECT (m.metrics->>'training_rows')::int + (m.metrics->>'validation_rows')::int = v.rows AS rows_visible_only,
	   (m.info->>'users')::int AS users, created_by
FROM mtl_models m, (SELECT count(*) AS rows FROM reg_private WHERE user_id <= 50) v WHERE m.name = 'reg_rls';
-- without SELECT on the table: permission denied
SET ROLE mtl_regress_outsider;
SELECT mtl_fit('reg_rls', 'SELECT user_id, item_id, labels FROM reg_private', :'config');
RESET ROLE;
-- mtl_fit does not run with its owner's rights
SELECT prosecdef FROM pg_proc WHERE proname = 'mtl_fit';
REVOKE mtl_trainer FROM mtl_regress_analyst, mtl_regress_outsider;
DROP TABLE reg_private;
DROP ROLE mtl_regress_analyst;
DROP ROLE mtl_regress_outsider;
